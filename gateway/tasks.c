/* SPDX-License-Identifier: MIT */
/* tasks.c - upgrade tasks: create from a validated JSON body, list with
 * per-state counts, publish to devices (records.c writes the records),
 * cancel. Publishing and cancelling are each one transaction: a refused
 * publish writes nothing.
 * Reads the device table directly (read-only: product and version of the
 * targets); devices.c remains its only writer.
 * Must not: send anything, move records other than through records.c. */
#define LOG_MOD "tasks"
#include "tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalogue.h"
#include "json_in.h"
#include "log.h"
#include "util.h"

#define TASK_NAMED_MAX 20         /* unknown ids quoted in a publish error */
#define TASK_NAMES_LEN 200        /* bytes of them, within OTAGW_ERR_TEXT_MAX */

#define TASK_WCOLS "id, firmware_id, product_id, name, mode, timeout_seconds, description," \
	" state, create_time, rollout"
#define TASK_COLS TASK_WCOLS ", origin, paused, pause_reason, wave, ack_failed"

static const char *const task_modes[] = { [TASK_PUSH] = "push", [TASK_PULL] = "pull" };
static const char *const task_states[] = {
	[TASK_CREATED] = "created",
	[TASK_PUBLISHED] = "published",
	[TASK_CANCELED] = "canceled",
};
static const char *const task_keys[] = { "id", "name", "mode", "timeoutSeconds",
					 "description", "rollout" };

/* One publish: the task, its firmware, the tally, and what was wrong with
 * the listed ids (reported after all of them were looked at). */
struct task_pub {
	struct task t;
	struct firmware fw;
	struct task_publish_result *res;
	size_t unknown, named;            /* listed ids that are no device; quoted */
	char names[TASK_NAMES_LEN];       /* the quoted ones, ", "-separated */
	char mismatch[OTAGW_ERR_TEXT_MAX]; /* the first device of another product */
};

static int task_lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	return -1;
}

void task_clear(struct task *t)
{
	if (!t)
		return;
	free(t->description);
	free(t->rollout);
	memset(t, 0, sizeof(*t));
}

const char *task_mode_name(enum task_mode m)
{
	return (unsigned)m < OTAGW_ARRAY_SIZE(task_modes) ? task_modes[m] : NULL;
}

const char *task_state_name(enum task_state s)
{
	return (unsigned)s < OTAGW_ARRAY_SIZE(task_states) ? task_states[s] : NULL;
}

/* A SQLite result that is not success as our code; never 0. */
static int task_err(int sqlite_rc)
{
	int rc = store_errno(sqlite_rc);

	return rc ? rc : -EIO;
}

/* Fills t from a row selected with TASK_COLS; t->description is malloc'ed. */
static int task_row(sqlite3_stmt *s, struct task *t)
{
	int mode = task_lookup(task_modes, OTAGW_ARRAY_SIZE(task_modes),
			       (const char *)sqlite3_column_text(s, 4));
	int state = task_lookup(task_states, OTAGW_ARRAY_SIZE(task_states),
				(const char *)sqlite3_column_text(s, 7));

	memset(t, 0, sizeof(*t));
	if (mode < 0 || state < 0)
		return -EIO;
	store_col_str(s, 0, t->id, sizeof(t->id));
	store_col_str(s, 1, t->firmware_id, sizeof(t->firmware_id));
	store_col_str(s, 2, t->product_id, sizeof(t->product_id));
	store_col_str(s, 3, t->name, sizeof(t->name));
	t->mode = (enum task_mode)mode;
	t->timeout_seconds = sqlite3_column_int64(s, 5);
	t->state = (enum task_state)state;
	t->create_time = sqlite3_column_int64(s, 8);
	t->cloud = !strcmp((const char *)sqlite3_column_text(s, 10) ?: "", "cloud");
	t->paused = sqlite3_column_int(s, 11) != 0;
	store_col_str(s, 12, t->pause_reason, sizeof(t->pause_reason));
	t->wave = sqlite3_column_int(s, 13);
	t->ack_failed = sqlite3_column_int64(s, 14);
	t->description = store_col_dup(s, 6);
	t->rollout = store_col_dup(s, 9);
	return t->description && t->rollout ? 0 : -ENOMEM;
}

/* Steps s once and expects SQLITE_DONE. */
static int task_exec(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_DONE)
		return 0;
	return rc == SQLITE_ROW ? -EIO : task_err(rc);
}

/* ---- create ---- */

/* The "rollout" object, checked and stored normalised ("" = none). */
static int task_parse_rollout(const cJSON *body, struct task *t, struct err_info *e)
{
	struct rollout r;
	cJSON *o;
	int rc = rollout_parse(cJSON_GetObjectItemCaseSensitive(body, "rollout"), &r, e);

	if (rc)
		return rc;
	o = r.set ? rollout_to_json(&r) : NULL;
	t->rollout = !r.set ? strdup("") : o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	rollout_clear(&r);
	if (!t->rollout)
		return err_set(e, -ENOMEM, "out of memory");
	if (strlen(t->rollout) > ROLLOUT_TEXT_MAX)
		return err_set(e, -EINVAL, "field 'rollout': longer than %d bytes", ROLLOUT_TEXT_MAX);
	return 0;
}

/* Fills the caller-settable fields of t from body. */
static int task_parse(const cJSON *body, struct task *t, struct err_info *e)
{
	char mode[16];
	int rc = json_in_check_keys(body, task_keys, OTAGW_ARRAY_SIZE(task_keys), e);

	if (!rc)
		rc = json_in_id(body, "id", false, t->id, e);
	if (rc >= 0)
		rc = json_in_str(body, "name", true, t->name, sizeof(t->name), e);
	if (rc >= 0)
		rc = json_in_str(body, "mode", true, mode, sizeof(mode), e);
	if (rc < 0)
		return rc;
	rc = task_lookup(task_modes, OTAGW_ARRAY_SIZE(task_modes), mode);
	if (rc < 0)
		return err_set(e, -EINVAL, "field 'mode': expected \"push\" or \"pull\"");
	t->mode = (enum task_mode)rc;
	rc = json_in_int(body, "timeoutSeconds", false, 0, OTAGW_TIMEOUT_MAX, &t->timeout_seconds,
			 e);
	if (rc >= 0)
		rc = json_in_strdup(body, "description", OTAGW_DESC_MAX - 1, &t->description, e);
	if (rc < 0)
		return rc;
	if (!t->description)
		t->description = strdup("");
	if (!t->description)
		return err_set(e, -ENOMEM, "out of memory");
	return task_parse_rollout(body, t, e);
}

static int task_insert(struct store *st, const struct task *t, struct err_info *e)
{
	sqlite3_stmt *s = store_stmt(st,
		"INSERT INTO task (" TASK_WCOLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
	int rc;

	if (!s)
		return err_set(e, -EIO, "cannot prepare task insert");
	store_bind_str(s, 1, t->id);
	store_bind_str(s, 2, t->firmware_id);
	store_bind_str(s, 3, t->product_id);
	store_bind_str(s, 4, t->name);
	store_bind_str(s, 5, task_modes[t->mode]);
	sqlite3_bind_int64(s, 6, t->timeout_seconds);
	store_bind_str(s, 7, t->description);
	store_bind_str(s, 8, task_states[t->state]);
	sqlite3_bind_int64(s, 9, t->create_time);
	store_bind_str(s, 10, t->rollout ? t->rollout : "");
	rc = task_exec(s);
	store_done(s);
	if (rc == -EEXIST)
		return err_set(e, rc, "task '%s' already exists", t->id);
	return rc ? err_set(e, rc, "cannot store task: %s", otagw_strerror(rc)) : 0;
}

int tasks_create(struct store *st, const char *firmware_id, const cJSON *body,
		 struct task *out, struct err_info *e)
{
	struct firmware fw;
	struct task t = { 0 };
	int rc = catalogue_get(st, firmware_id, &fw, e);

	if (out)
		memset(out, 0, sizeof(*out));
	if (!rc)
		rc = task_parse(body, &t, e);
	if (!rc) {
		if (!t.id[0])
			util_new_id(t.id);
		util_strlcpy(t.firmware_id, fw.id, sizeof(t.firmware_id));
		util_strlcpy(t.product_id, fw.product_id, sizeof(t.product_id));
		t.state = TASK_CREATED;
		t.create_time = util_now_ms();
		rc = task_insert(st, &t, e);
	}
	firmware_clear(&fw);
	if (rc || !out)
		task_clear(&t);
	else
		*out = t;
	return rc;
}

int tasks_get(struct store *st, const char *id, struct task *out, struct err_info *e)
{
	sqlite3_stmt *s;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!util_id_valid(id))
		return err_set(e, -ENOENT, "task not found");
	s = store_stmt(st, "SELECT " TASK_COLS " FROM task WHERE id = ?1");
	if (!s)
		return err_set(e, -EIO, "cannot read task '%s'", id);
	store_bind_str(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		rc = task_row(s, out);
	else
		rc = rc == SQLITE_DONE ? -ENOENT : task_err(rc);
	store_done(s);
	if (rc == -ENOENT)
		return err_set(e, rc, "task '%s' not found", id);
	return rc ? err_set(e, rc, "cannot read task '%s'", id) : 0;
}

/* ---- list and JSON ---- */

static bool task_counts_json(cJSON *o, const int64_t counts[REC_STATE_COUNT])
{
	cJSON *c = cJSON_AddObjectToObject(o, "counts");
	int64_t total = 0;

	if (!c)
		return false;
	for (unsigned i = 0; i < REC_STATE_COUNT; i++) {
		if (!cJSON_AddNumberToObject(c, record_state_name((enum record_state)i),
					     (double)counts[i]))
			return false;
		total += counts[i];
	}
	return cJSON_AddNumberToObject(c, "total", (double)total) != NULL;
}

cJSON *task_to_json(const struct task *t, const int64_t counts[REC_STATE_COUNT])
{
	const char *mode = task_mode_name(t->mode), *state = task_state_name(t->state);
	cJSON *o = cJSON_CreateObject();
	bool ok = o != NULL;

	ok = ok && cJSON_AddStringToObject(o, "id", t->id);
	ok = ok && cJSON_AddStringToObject(o, "firmwareId", t->firmware_id);
	ok = ok && cJSON_AddStringToObject(o, "productId", t->product_id);
	ok = ok && cJSON_AddStringToObject(o, "name", t->name);
	ok = ok && cJSON_AddStringToObject(o, "mode", mode ? mode : "");
	ok = ok && cJSON_AddNumberToObject(o, "timeoutSeconds", (double)t->timeout_seconds);
	ok = ok && cJSON_AddStringToObject(o, "description",
					   t->description ? t->description : "");
	ok = ok && cJSON_AddStringToObject(o, "state", state ? state : "");
	ok = ok && cJSON_AddNumberToObject(o, "createTime", (double)t->create_time);
	ok = ok && cJSON_AddStringToObject(o, "origin", t->cloud ? "cloud" : "local");
	if (ok && t->rollout && t->rollout[0]) {
		cJSON *r = cJSON_Parse(t->rollout);

		ok = r && cJSON_AddItemToObject(o, "rollout", r);
		if (!ok)
			cJSON_Delete(r);
	}
	/* any task can be paused, with a rollout policy or without one */
	ok = ok && cJSON_AddBoolToObject(o, "paused", t->paused);
	ok = ok && cJSON_AddStringToObject(o, "pauseReason", t->pause_reason);
	if (ok && counts)
		ok = task_counts_json(o, counts);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* The JSON of the task in the current row of s, with its counts. */
static int task_row_json(struct store *st, sqlite3_stmt *s, cJSON *arr)
{
	int64_t counts[REC_STATE_COUNT];
	struct task t;
	cJSON *item = NULL;
	int rc = task_row(s, &t);

	if (!rc)
		rc = records_counts(st, t.id, counts);
	if (!rc) {
		item = task_to_json(&t, counts);
		rc = item && cJSON_AddItemToArray(arr, item) ? 0 : -ENOMEM;
		if (rc)
			cJSON_Delete(item);
	}
	task_clear(&t);
	return rc;
}

static int task_page(struct store *st, sqlite3_stmt *s, cJSON **items)
{
	cJSON *arr = cJSON_CreateArray();
	int rc = arr ? SQLITE_ROW : -ENOMEM;

	while (rc == SQLITE_ROW) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW && task_row_json(st, s, arr))
			rc = -ENOMEM;
	}
	if (rc == SQLITE_DONE) {
		*items = arr;
		return 0;
	}
	cJSON_Delete(arr);
	return rc < 0 ? rc : task_err(rc);
}

int tasks_list(struct store *st, const char *firmware_id, unsigned page, unsigned size,
	       cJSON **items, int64_t *total)
{
	sqlite3_stmt *c = store_stmt(st,
		"SELECT COUNT(*) FROM task WHERE (?1 IS NULL OR firmware_id = ?1)");
	sqlite3_stmt *s = store_stmt(st,
		"SELECT " TASK_COLS " FROM task WHERE (?1 IS NULL OR firmware_id = ?1)"
		" ORDER BY create_time DESC, rowid DESC LIMIT ?2 OFFSET ?3");
	int rc = -EIO;

	if (!size)
		size = OTAGW_PAGE_SIZE_DEFAULT;
	if (size > OTAGW_PAGE_SIZE_MAX)
		size = OTAGW_PAGE_SIZE_MAX;
	if (c && s) {
		store_bind_str(c, 1, firmware_id);
		rc = sqlite3_step(c);
		if (rc == SQLITE_ROW)
			*total = sqlite3_column_int64(c, 0);
		rc = rc == SQLITE_ROW ? 0 : task_err(rc);
	}
	if (!rc) {
		store_bind_str(s, 1, firmware_id);
		sqlite3_bind_int64(s, 2, size);
		sqlite3_bind_int64(s, 3, (int64_t)page * size);
		rc = task_page(st, s, items);
	}
	store_done(c);
	store_done(s);
	return rc;
}

/* ---- publish ---- */

static int task_set_state(struct store *st, const char *id, enum task_state state,
			  struct err_info *e)
{
	sqlite3_stmt *s = store_stmt(st, "UPDATE task SET state = ?2 WHERE id = ?1");
	int rc;

	if (!s)
		return err_set(e, -EIO, "cannot prepare task update");
	store_bind_str(s, 1, id);
	store_bind_str(s, 2, task_states[state]);
	rc = task_exec(s);
	store_done(s);
	return rc ? err_set(e, rc, "task %s: cannot store state: %s", id, otagw_strerror(rc)) : 0;
}

/* 1 when the task already has a record for device_id, 0 when not. */
static int task_has_record(struct store *st, const char *task_id, const char *device_id)
{
	sqlite3_stmt *s = store_stmt(st,
		"SELECT 1 FROM record WHERE task_id = ?1 AND device_id = ?2");
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, task_id);
	store_bind_str(s, 2, device_id);
	rc = sqlite3_step(s);
	store_done(s);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return rc == SQLITE_ROW;
	return task_err(rc);
}

/* Adds device_id (on firmware version dev_version) to the task. */
static int task_pub_one(struct store *st, struct task_pub *p, const char *device_id,
			const char *dev_version, struct err_info *e)
{
	struct record r = { 0 };
	bool up;
	int rc = task_has_record(st, p->t.id, device_id);

	if (rc < 0)
		return err_set(e, rc, "task %s: cannot read records", p->t.id);
	if (rc) {
		p->res->already++;
		return 0;
	}
	up = dev_version && !strcmp(dev_version, p->fw.version);
	util_strlcpy(r.task_id, p->t.id, sizeof(r.task_id));
	util_strlcpy(r.device_id, device_id, sizeof(r.device_id));
	util_strlcpy(r.firmware_id, p->fw.id, sizeof(r.firmware_id));
	util_strlcpy(r.version, p->fw.version, sizeof(r.version));
	r.version_order = p->fw.version_order;
	r.timeout_seconds = p->t.timeout_seconds;
	r.state = up ? REC_SUCCESS : REC_WAITING;
	r.progress = up ? 100 : 0;
	rc = record_insert(st, &r, e);
	if (rc)
		return rc;
	if (up)
		p->res->up_to_date++;
	else
		p->res->added++;
	return 0;
}

static int task_pub_all(struct store *st, struct task_pub *p, struct err_info *e)
{
	sqlite3_stmt *s = store_stmt(st,
		"SELECT id, firmware_version FROM device WHERE product_id = ?1 ORDER BY id");
	int rc;

	if (!s)
		return err_set(e, -EIO, "cannot prepare device query");
	store_bind_str(s, 1, p->t.product_id);
	for (;;) {
		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW)
			break;
		rc = task_pub_one(st, p, (const char *)sqlite3_column_text(s, 0),
				  (const char *)sqlite3_column_text(s, 1), e);
		if (rc)
			break;
	}
	store_done(s);
	if (rc == SQLITE_DONE)
		return 0;
	return rc < 0 ? rc : err_set(e, task_err(rc), "cannot read devices");
}

/* Product and firmware version of device id: 0 or -ENOENT. */
static int task_device(struct store *st, const char *id, char product[OTAGW_ID_MAX],
		       char version[OTAGW_VERSION_MAX])
{
	sqlite3_stmt *s = store_stmt(st,
		"SELECT product_id, firmware_version FROM device WHERE id = ?1");
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		store_col_str(s, 0, product, OTAGW_ID_MAX);
		store_col_str(s, 1, version, OTAGW_VERSION_MAX);
	}
	store_done(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : task_err(rc);
}

/* Remembers an unknown id; the first few are quoted in the error. */
static void task_note_unknown(struct task_pub *p, const char *id)
{
	size_t len = strlen(p->names);
	const char *shown = util_id_valid(id) ? id : "(invalid id)";

	p->unknown++;
	if (p->named >= TASK_NAMED_MAX || len + strlen(shown) + 3 > sizeof(p->names))
		return;
	snprintf(p->names + len, sizeof(p->names) - len, "%s%s", len ? ", " : "", shown);
	p->named++;
}

/* Looks at one listed id: notes what is wrong, or publishes to it. */
static int task_pub_listed(struct store *st, struct task_pub *p, const char *id,
			   struct err_info *e)
{
	char product[OTAGW_ID_MAX], version[OTAGW_VERSION_MAX];
	int rc = util_id_valid(id) ? task_device(st, id, product, version) : -ENOENT;

	if (rc == -ENOENT) {
		task_note_unknown(p, id);
		return 0;
	}
	if (rc)
		return err_set(e, rc, "cannot read device '%s'", id);
	if (strcmp(product, p->t.product_id)) {
		if (!p->mismatch[0])
			snprintf(p->mismatch, sizeof(p->mismatch),
				 "device %s belongs to product %s, not %s", id, product,
				 p->t.product_id);
		return 0;
	}
	if (p->unknown || p->mismatch[0])
		return 0;       /* it will be rolled back anyway */
	return task_pub_one(st, p, id, version, e);
}

static int task_cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int task_pub_ids(struct store *st, struct task_pub *p, const char *const *ids, size_t n,
			struct err_info *e)
{
	const char **v = n ? calloc(n, sizeof(*v)) : NULL;
	int rc = 0;

	if (n && !v)
		return err_set(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		v[i] = ids[i] ? ids[i] : "";
	/* Sorted, so a repeated id is met once. */
	if (n)
		qsort(v, n, sizeof(*v), task_cmp_str);
	for (size_t i = 0; i < n && !rc; i++)
		if (!i || strcmp(v[i], v[i - 1]))
			rc = task_pub_listed(st, p, v[i], e);
	free(v);
	if (rc)
		return rc;
	if (p->unknown > p->named)
		return err_set(e, -EINVAL, "unknown device ids: %s and %zu more", p->names,
			       p->unknown - p->named);
	if (p->unknown)
		return err_set(e, -EINVAL, "unknown device ids: %s", p->names);
	return p->mismatch[0] ? err_set(e, -EINVAL, "%s", p->mismatch) : 0;
}

/* Loads the task and its firmware; a canceled task cannot be published. */
static int task_pub_load(struct store *st, const char *id, struct task_pub *p,
			 struct err_info *e)
{
	int rc = tasks_get(st, id, &p->t, e);

	if (rc)
		return rc;
	if (p->t.state == TASK_CANCELED)
		return err_set(e, -OTAGW_ESTATE, "task %s is canceled", id);
	return catalogue_get(st, p->t.firmware_id, &p->fw, e);
}

/* A task with a rollout: its records go into waves, and the publish is
 * its first event. */
static int task_pub_rollout(struct store *st, struct task_pub *p, struct err_info *e)
{
	struct rollout_task rt;
	char why[96];
	int rc;

	if (!p->t.rollout || !p->t.rollout[0])
		return 0;
	if (task_rollout_view(&p->t, &rt))
		return err_set(e, -EIO, "task %s: its rollout policy cannot be read", p->t.id);
	rc = rollout_assign_waves(st, p->t.id, &rt.policy);
	snprintf(why, sizeof(why), "%d added, %d already in, %d up to date", p->res->added,
		 p->res->already, p->res->up_to_date);
	if (!rc)
		rc = rollout_event(st, p->t.id, util_now_ms(), "published", p->t.wave, why);
	rollout_clear(&rt.policy);
	return rc ? err_set(e, rc, "task %s: cannot place its records in waves", p->t.id) : 0;
}

int tasks_publish(struct store *st, const char *id, bool all, const char *const *ids, size_t n,
		  struct task_publish_result *res, struct err_info *e)
{
	struct task_pub p = { .res = res };
	int rc;

	memset(res, 0, sizeof(*res));
	if (!all && n > OTAGW_PUBLISH_IDS_MAX)
		return err_set(e, -EINVAL, "too many device ids: %zu, at most %d", n,
			       OTAGW_PUBLISH_IDS_MAX);
	if (!all && n && !ids)
		return err_set(e, -EINVAL, "no device ids");
	rc = store_begin(st);
	if (rc)
		return err_set(e, rc, "task %s: cannot begin transaction", id ? id : "");
	rc = task_pub_load(st, id, &p, e);
	if (!rc)
		rc = all ? task_pub_all(st, &p, e) : task_pub_ids(st, &p, ids, n, e);
	if (!rc)
		rc = task_set_state(st, id, TASK_PUBLISHED, e);
	if (!rc)
		rc = task_pub_rollout(st, &p, e);
	if (rc) {
		store_rollback(st);
	} else {
		rc = store_commit(st);
		if (rc)
			err_set(e, rc, "task %s: cannot commit: %s", id, otagw_strerror(rc));
	}
	task_clear(&p.t);
	firmware_clear(&p.fw);
	if (rc)
		memset(res, 0, sizeof(*res));
	return rc;
}

/* ---- cancel ---- */

int tasks_cancel(struct store *st, const char *id, int *n, struct err_info *e)
{
	struct task t;
	int rc;

	*n = 0;
	rc = store_begin(st);
	if (rc)
		return err_set(e, rc, "task %s: cannot begin transaction", id ? id : "");
	rc = tasks_get(st, id, &t, e);
	task_clear(&t);
	if (!rc)
		rc = records_cancel(st, id, NULL, "task canceled", n, e);
	if (!rc)
		rc = task_set_state(st, id, TASK_CANCELED, e);
	if (rc) {
		store_rollback(st);
		*n = 0;
		return rc;
	}
	rc = store_commit(st);
	if (rc) {
		*n = 0;
		return err_set(e, rc, "task %s: cannot commit: %s", id, otagw_strerror(rc));
	}
	return 0;
}

int tasks_set_cloud(struct store *st, const char *id)
{
	return store_exec1(st, "UPDATE task SET origin = 'cloud' WHERE id = ?1", id);
}

/* Adds "rolloutStatus" (wave, slots, hold) to o. */
static int task_status_json(struct store *st, const struct task *t, cJSON *o)
{
	struct rollout_task rt;
	int64_t now = util_now_ms();
	time_t secs = (time_t)(now / 1000);
	struct tm tm;
	cJSON *s = NULL;

	localtime_r(&secs, &tm);
	if (!task_rollout_view(t, &rt))
		s = rollout_status_json(st, &rt, now, &tm);
	rollout_clear(&rt.policy);
	if (!s || !cJSON_AddItemToObject(o, "rolloutStatus", s)) {
		cJSON_Delete(s);
		return -ENOMEM;
	}
	return 0;
}

cJSON *tasks_json(struct store *st, const char *id, struct err_info *e)
{
	int64_t counts[REC_STATE_COUNT];
	struct task t;
	cJSON *o;

	if (tasks_get(st, id, &t, e))
		return NULL;
	if (records_counts(st, id, counts)) {
		task_clear(&t);
		err_set(e, -EIO, "cannot count records");
		return NULL;
	}
	o = task_to_json(&t, counts);
	if (o && t.rollout && t.rollout[0] && task_status_json(st, &t, o)) {
		cJSON_Delete(o);
		o = NULL;
	}
	task_clear(&t);
	if (!o)
		err_set(e, -ENOMEM, "out of memory");
	return o;
}

int task_rollout_view(const struct task *t, struct rollout_task *rt)
{
	memset(rt, 0, sizeof(*rt));
	rt->id = t->id;
	rt->published = t->state == TASK_PUBLISHED;
	rt->canceled = t->state == TASK_CANCELED;
	rt->push = t->mode == TASK_PUSH;
	rt->paused = t->paused;
	rt->wave = t->wave;
	rt->ack_failed = t->ack_failed;
	return rollout_load(t->rollout, &rt->policy);
}

/* Failures of t's started waves with no retry left (what a resume acknowledges). */
static int task_wave_failed(struct store *st, const struct task *t, const struct rollout *r,
			    int64_t *n)
{
	sqlite3_stmt *s = store_stmt(st,
		"SELECT COUNT(*) FROM record WHERE task_id = ?1 AND state = 'failed'"
		" AND attempts >= ?2 AND (?3 < 0 OR wave <= ?3)");
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, t->id);
	sqlite3_bind_int(s, 2, (int)r->retries);
	sqlite3_bind_int(s, 3, r->nwaves ? t->wave : -1);
	rc = sqlite3_step(s);
	*n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	store_done(s);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

static int task_set_paused(struct store *st, const char *id, bool paused, const char *reason,
			   struct err_info *e)
{
	struct rollout_task rt;
	struct task t;
	int64_t acked = 0;
	sqlite3_stmt *s;
	int rc = tasks_get(st, id, &t, e);

	if (rc)
		return rc;
	if (t.state != TASK_PUBLISHED || t.paused == paused) {
		rc = err_set(e, -OTAGW_ESTATE, "task %s is %s", id,
			     t.state != TASK_PUBLISHED ? task_state_name(t.state) :
			     paused ? "already paused" : "not paused");
		task_clear(&t);
		return rc;
	}
	rc = task_rollout_view(&t, &rt);
	if (!rc && !paused)
		rc = task_wave_failed(st, &t, &rt.policy, &acked);
	rollout_clear(&rt.policy);
	s = rc ? NULL : store_stmt(st, "UPDATE task SET paused = ?2, pause_reason = ?3,"
				   " ack_failed = CASE WHEN ?2 THEN ack_failed ELSE ?4 END"
				   " WHERE id = ?1");
	if (s) {
		store_bind_str(s, 1, id);
		sqlite3_bind_int(s, 2, paused);
		store_bind_str(s, 3, paused ? reason : "");
		sqlite3_bind_int64(s, 4, acked);
		rc = task_exec(s);
		store_done(s);
	} else if (!rc) {
		rc = -EIO;
	}
	if (!rc)
		rc = rollout_event(st, id, util_now_ms(), paused ? "paused" : "resumed", t.wave,
				   paused ? reason : "by the operator");
	task_clear(&t);
	return rc ? err_set(e, rc, "task %s: cannot %s", id, paused ? "pause" : "resume") : 0;
}

int tasks_pause(struct store *st, const char *id, const char *reason, struct err_info *e)
{
	return task_set_paused(st, id, true, reason, e);
}

int tasks_resume(struct store *st, const char *id, struct err_info *e)
{
	return task_set_paused(st, id, false, "", e);
}

int tasks_each_rollout(struct store *st, int (*fn)(void *ctx, const char *id), void *ctx)
{
	sqlite3_stmt *s = store_stmt(st,
		"SELECT id FROM task WHERE rollout != '' AND state = 'published' ORDER BY create_time");
	char (*ids)[OTAGW_ID_MAX] = NULL;
	size_t n = 0, cap = 0;
	int rc;

	if (!s)
		return -EIO;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			char (*nids)[OTAGW_ID_MAX] = realloc(ids, (cap ? cap * 2 : 16) * sizeof(*ids));

			if (!nids) {
				rc = SQLITE_NOMEM;
				break;
			}
			ids = nids;
			cap = cap ? cap * 2 : 16;
		}
		store_col_str(s, 0, ids[n++], OTAGW_ID_MAX);
	}
	store_done(s);
	/* walked after the statement is done: fn may write */
	for (size_t i = 0; rc == SQLITE_DONE && i < n; i++)
		if (fn(ctx, ids[i]) < 0)
			break;
	free(ids);
	return rc == SQLITE_DONE ? 0 : -EIO;
}
