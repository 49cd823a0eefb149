/* SPDX-License-Identifier: MIT */
/* records.c - the upgrade-record state machine; see records.h.
 * Legal moves are a const table of target masks indexed by state. Every
 * write (row + history) happens inside one store transaction, so a record
 * and its history never disagree.
 * Must not: decide when to move a record, hold a statement across a
 * callback (records_each() collects ids first), build SQL from input. */
#define LOG_MOD "records"
#include "records.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

static const char *const rec_names[REC_STATE_COUNT] = {
	[REC_WAITING] = "waiting",
	[REC_PROCESSING] = "processing",
	[REC_SUCCESS] = "success",
	[REC_FAILED] = "failed",
	[REC_CANCELED] = "canceled",
};

/* rec_moves[from]: the states `from` may move to. Final states: none. */
static const unsigned rec_moves[REC_STATE_COUNT] = {
	[REC_WAITING] = REC_MASK(REC_PROCESSING) | REC_MASK(REC_SUCCESS) | REC_MASK(REC_CANCELED),
	[REC_PROCESSING] = REC_MASK(REC_SUCCESS) | REC_MASK(REC_FAILED) | REC_MASK(REC_CANCELED),
	/* retried by the device (-> processing) or by a rollout (-> waiting) */
	[REC_FAILED] = REC_MASK(REC_PROCESSING) | REC_MASK(REC_WAITING),
};

/* States a record may be created in. */
#define REC_INITIAL (REC_MASK(REC_WAITING) | REC_MASK(REC_SUCCESS))
#define REC_FINAL (REC_MASK(REC_SUCCESS) | REC_MASK(REC_FAILED) | REC_MASK(REC_CANCELED))

/* Column list shared by every SELECT that fills a struct record (rec_row). */
#define REC_COLS "id, task_id, device_id, firmware_id, version, version_order," \
	" timeout_seconds, state, progress, error_reason, create_time, upgrade_time," \
	" complete_time, update_time"

/* What SELECTs read: the inserted columns, then the rollout's. */
#define REC_SCOLS REC_COLS ", wave, attempts"

/* Ids collected by a query, walked after its statement is finished. */
struct rec_ids {
	char (*v)[OTAGW_ID_MAX];
	size_t n, cap;
};

const char *record_state_name(enum record_state s)
{
	if ((unsigned)s >= REC_STATE_COUNT)
		return NULL;
	return rec_names[s];
}

int record_state_parse(const char *s, enum record_state *out)
{
	if (!s)
		return -EINVAL;
	for (unsigned i = 0; i < REC_STATE_COUNT; i++) {
		if (!strcmp(s, rec_names[i])) {
			*out = (enum record_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool record_transition_legal(enum record_state from, enum record_state to)
{
	if ((unsigned)from >= REC_STATE_COUNT || (unsigned)to >= REC_STATE_COUNT)
		return false;
	return (rec_moves[from] & REC_MASK(to)) != 0;
}

/* The name of s, or "?" for a value outside the enum (error texts only). */
static const char *rec_name(enum record_state s)
{
	const char *n = record_state_name(s);

	return n ? n : "?";
}

/* Binds the names of mask's states to first .. first + REC_STATE_COUNT - 1
 * and NULL for the others, for "state IN (?a, ?b, ?c, ?d, ?e)". */
static void rec_bind_mask(sqlite3_stmt *s, int first, unsigned mask)
{
	for (unsigned i = 0; i < REC_STATE_COUNT; i++)
		store_bind_str(s, first + (int)i, (mask & REC_MASK(i)) ? rec_names[i] : NULL);
}

/* A SQLite result that is not success as our code; never 0. */
static int rec_err(int sqlite_rc)
{
	int rc = store_errno(sqlite_rc);

	return rc ? rc : -EIO;
}

/* Fills r from a row selected with REC_SCOLS. */
static int rec_row(sqlite3_stmt *s, struct record *r)
{
	char state[16];

	memset(r, 0, sizeof(*r));
	store_col_str(s, 0, r->id, sizeof(r->id));
	store_col_str(s, 1, r->task_id, sizeof(r->task_id));
	store_col_str(s, 2, r->device_id, sizeof(r->device_id));
	store_col_str(s, 3, r->firmware_id, sizeof(r->firmware_id));
	store_col_str(s, 4, r->version, sizeof(r->version));
	r->version_order = sqlite3_column_int64(s, 5);
	r->timeout_seconds = sqlite3_column_int64(s, 6);
	store_col_str(s, 7, state, sizeof(state));
	r->progress = sqlite3_column_int(s, 8);
	store_col_str(s, 9, r->error_reason, sizeof(r->error_reason));
	r->create_time = sqlite3_column_int64(s, 10);
	r->upgrade_time = sqlite3_column_int64(s, 11);
	r->complete_time = sqlite3_column_int64(s, 12);
	r->update_time = sqlite3_column_int64(s, 13);
	r->wave = sqlite3_column_int(s, 14);
	r->attempts = sqlite3_column_int(s, 15);
	return record_state_parse(state, &r->state) ? -EIO : 0;
}

/* Steps s once and expects SQLITE_DONE. 0 or an error code. */
static int rec_exec(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_DONE)
		return 0;
	return rc == SQLITE_ROW ? -EIO : rec_err(rc);
}

/* Steps s once expecting a single row whose column 0 is a count. */
static int rec_count(sqlite3_stmt *s, int64_t *out)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_ROW)
		return rec_err(rc);
	*out = sqlite3_column_int64(s, 0);
	return 0;
}

int record_get(struct store *st, const char *id, struct record *out)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT " REC_SCOLS " FROM record WHERE id = ?1");
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		rc = rec_row(s, out);
	else
		rc = rc == SQLITE_DONE ? -ENOENT : rec_err(rc);
	store_done(s);
	return rc;
}

static int rec_history_add(struct store *st, const struct record *r, const char *from,
			   const char *reason, int64_t t)
{
	sqlite3_stmt *s = store_stmt(st,
		"INSERT INTO record_history (record_id, task_id, device_id, from_state,"
		" to_state, progress, reason, time) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, r->id);
	store_bind_str(s, 2, r->task_id);
	store_bind_str(s, 3, r->device_id);
	store_bind_str(s, 4, from);
	store_bind_str(s, 5, rec_names[r->state]);
	sqlite3_bind_int(s, 6, r->progress);
	store_bind_str(s, 7, reason ? reason : "");
	sqlite3_bind_int64(s, 8, t);
	rc = rec_exec(s);
	store_done(s);
	return rc;
}

/* Tells the store's observer (the cloud outbox) inside the transaction. */
static int rec_notify(struct store *st, const struct record *r, const char *from)
{
	return store_emit_record_changed(st, r, from);
}

/* Inserts the row; a missing task (foreign key) is -ENOENT, a duplicate
 * (task, device) or id -EEXIST. */
static int rec_insert_row(struct store *st, const struct record *r)
{
	sqlite3_stmt *s = store_stmt(st,
		"INSERT INTO record (" REC_COLS ") VALUES"
		" (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)");
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, r->id);
	store_bind_str(s, 2, r->task_id);
	store_bind_str(s, 3, r->device_id);
	store_bind_str(s, 4, r->firmware_id);
	store_bind_str(s, 5, r->version);
	sqlite3_bind_int64(s, 6, r->version_order);
	sqlite3_bind_int64(s, 7, r->timeout_seconds);
	store_bind_str(s, 8, rec_names[r->state]);
	sqlite3_bind_int(s, 9, r->progress);
	store_bind_str(s, 10, r->error_reason);
	sqlite3_bind_int64(s, 11, r->create_time);
	sqlite3_bind_int64(s, 12, r->upgrade_time);
	sqlite3_bind_int64(s, 13, r->complete_time);
	sqlite3_bind_int64(s, 14, r->update_time);
	rc = sqlite3_step(s);
	store_done(s);
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		return -ENOENT;
	return rc == SQLITE_DONE ? 0 : rec_err(rc);
}

static int rec_insert_check(const struct record *r, struct err_info *e)
{
	if (!util_id_valid(r->task_id) || !util_id_valid(r->device_id))
		return err_set(e, -EINVAL, "record: invalid task or device id");
	if (r->id[0] && !util_id_valid(r->id))
		return err_set(e, -EINVAL, "record: invalid id");
	if ((unsigned)r->state >= REC_STATE_COUNT || !(REC_INITIAL & REC_MASK(r->state)))
		return err_set(e, -OTAGW_ESTATE, "record of device %s: new -> %s is not allowed",
			       r->device_id, rec_name(r->state));
	if (r->progress < 0 || r->progress > 100)
		return err_set(e, -EINVAL, "record: progress %d is not within 0..100", r->progress);
	return 0;
}

int record_insert(struct store *st, struct record *r, struct err_info *e)
{
	int rc = rec_insert_check(r, e);

	if (rc)
		return rc;
	if (!r->id[0])
		util_new_id(r->id);
	if (!r->create_time)
		r->create_time = util_now_ms();
	r->update_time = r->create_time;
	r->upgrade_time = 0;
	r->complete_time = r->state == REC_SUCCESS ? r->create_time : 0;
	rc = store_begin(st);
	if (rc)
		return err_set(e, rc, "record: cannot begin transaction");
	rc = rec_insert_row(st, r);
	if (!rc)
		rc = rec_history_add(st, r, "", r->error_reason, r->create_time);
	if (!rc)
		rc = rec_notify(st, r, "");
	if (rc) {
		store_rollback(st);
		if (rc == -EEXIST)
			return err_set(e, rc, "task %s already has a record for device %s",
				       r->task_id, r->device_id);
		if (rc == -ENOENT)
			return err_set(e, rc, "task '%s' not found", r->task_id);
		return err_set(e, rc, "record: cannot insert: %s", otagw_strerror(rc));
	}
	rc = store_commit(st);
	return rc ? err_set(e, rc, "record: cannot commit: %s", otagw_strerror(rc)) : 0;
}

static int rec_update_row(struct store *st, const struct record *r)
{
	sqlite3_stmt *s = store_stmt(st,
		"UPDATE record SET state = ?2, progress = ?3, error_reason = ?4,"
		" upgrade_time = ?5, complete_time = ?6, update_time = ?7 WHERE id = ?1");
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, r->id);
	store_bind_str(s, 2, rec_names[r->state]);
	sqlite3_bind_int(s, 3, r->progress);
	store_bind_str(s, 4, r->error_reason);
	sqlite3_bind_int64(s, 5, r->upgrade_time);
	sqlite3_bind_int64(s, 6, r->complete_time);
	sqlite3_bind_int64(s, 7, r->update_time);
	rc = rec_exec(s);
	store_done(s);
	return rc;
}

/* Applies a legal move to r in memory. */
static void rec_apply(struct record *r, enum record_state to, const struct record_change *why,
		      int64_t t)
{
	r->state = to;
	if (why->progress >= 0)
		r->progress = why->progress;
	if (why->reason)
		util_strlcpy(r->error_reason, why->reason, sizeof(r->error_reason));
	if (to == REC_PROCESSING) {
		r->upgrade_time = t;
		r->complete_time = 0;
	}
	if (REC_FINAL & REC_MASK(to))
		r->complete_time = t;
	if (to == REC_WAITING)
		r->complete_time = 0;   /* a rollout retry */
	r->update_time = t;
}

/* The body of record_transition(), inside its transaction. */
static int rec_move(struct store *st, const char *id, enum record_state to,
		    const struct record_change *why, struct err_info *e)
{
	int64_t t = why->time ? why->time : util_now_ms();
	enum record_state from;
	struct record r;
	int rc = record_get(st, id, &r);

	if (rc == -ENOENT)
		return err_set(e, rc, "record %s not found", id);
	if (rc)
		return err_set(e, rc, "record %s: cannot read: %s", id, otagw_strerror(rc));
	if (!record_transition_legal(r.state, to))
		return err_set(e, -OTAGW_ESTATE, "record %s: %s -> %s is not allowed", id,
			       rec_name(r.state), rec_name(to));
	from = r.state;
	rec_apply(&r, to, why, t);
	rc = rec_update_row(st, &r);
	if (!rc)
		rc = rec_history_add(st, &r, rec_names[from], why->reason ? r.error_reason : "", t);
	if (!rc)
		rc = rec_notify(st, &r, rec_names[from]);
	if (rc)
		return err_set(e, rc, "record %s: cannot store: %s", id, otagw_strerror(rc));
	LOGD("record %s (task %s, device %s): %s -> %s", id, r.task_id, r.device_id,
	     rec_names[from], rec_names[to]);
	return 0;
}

int record_transition(struct store *st, const char *id, enum record_state to,
		      const struct record_change *why, struct err_info *e)
{
	static const struct record_change keep = { .progress = -1 };
	int rc;

	if (!why)
		why = &keep;
	if (!id)
		return err_set(e, -EINVAL, "record: no id");
	if (why->progress > 100)
		return err_set(e, -EINVAL, "record %s: progress %d is not within 0..100", id,
			       why->progress);
	rc = store_begin(st);
	if (rc)
		return err_set(e, rc, "record %s: cannot begin transaction", id);
	rc = rec_move(st, id, to, why, e);
	if (rc) {
		store_rollback(st);
		return rc;
	}
	rc = store_commit(st);
	return rc ? err_set(e, rc, "record %s: cannot commit: %s", id, otagw_strerror(rc)) : 0;
}

/* The UPDATE of record_progress(): 1 changed, 0 not processing, or < 0. */
static int rec_progress_row(struct store *st, const char *id, int progress, int64_t time)
{
	sqlite3_stmt *s = store_stmt(st, "UPDATE record SET progress = ?2, update_time = ?3"
				     " WHERE id = ?1 AND state = 'processing'");
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, id);
	sqlite3_bind_int(s, 2, progress);
	sqlite3_bind_int64(s, 3, time);
	rc = rec_exec(s);
	if (!rc)
		rc = sqlite3_changes(store_db(st)) > 0;
	store_done(s);
	return rc;
}

int record_progress(struct store *st, const char *id, int progress, int64_t time,
		    struct err_info *e)
{
	struct record r;
	int rc;

	if (progress < 0 || progress > 100)
		return err_set(e, -EINVAL, "record %s: progress %d is not within 0..100", id,
			       progress);
	if (!time)
		time = util_now_ms();
	rc = store_begin_relaxed(st);
	if (rc)
		return err_set(e, rc, "record %s: cannot begin transaction", id);
	rc = rec_progress_row(st, id, progress, time);
	if (rc == 1)
		rc = store_emit_record_progress(st, id, progress, time) < 0 ? -EIO : 1;
	if (rc < 0) {
		store_rollback(st);
		return err_set(e, rc, "record %s: cannot store progress: %s", id,
			       otagw_strerror(rc));
	}
	if (store_commit(st))
		return err_set(e, -EIO, "record %s: cannot commit progress", id);
	if (rc == 1)
		return 0;
	rc = record_get(st, id, &r);
	if (rc == -ENOENT)
		return err_set(e, rc, "record %s not found", id);
	if (rc)
		return err_set(e, rc, "record %s: cannot read", id);
	return err_set(e, -OTAGW_ESTATE, "record %s: progress while %s is not allowed", id,
		       rec_name(r.state));
}

int record_find(struct store *st, const char *device_id, unsigned state_mask,
		const char *version, const char *firmware_id, bool latest, struct record *out)
{
	/* Of several: latest = highest versionOrder first, else lowest; then oldest. */
	sqlite3_stmt *s = store_stmt(st,
		"SELECT " REC_SCOLS " FROM record WHERE device_id = ?1"
		" AND state IN (?2, ?3, ?4, ?5, ?6)"
		" AND (?7 = '' OR version = ?7) AND (?8 = '' OR firmware_id = ?8)"
		" ORDER BY CASE WHEN ?9 THEN version_order END DESC, version_order,"
		" create_time, rowid LIMIT 1");
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, device_id);
	rec_bind_mask(s, 2, state_mask);
	store_bind_str(s, 7, version ? version : "");
	store_bind_str(s, 8, firmware_id ? firmware_id : "");
	sqlite3_bind_int(s, 9, latest);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		rc = rec_row(s, out);
	else
		rc = rc == SQLITE_DONE ? -ENOENT : rec_err(rc);
	store_done(s);
	return rc;
}

/* Appends column 0 of every row of s to ids. The caller finishes s. */
static int rec_ids_collect(sqlite3_stmt *s, struct rec_ids *ids)
{
	for (;;) {
		int rc = sqlite3_step(s);

		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_ROW)
			return rec_err(rc);
		if (ids->n == ids->cap) {
			size_t cap = ids->cap ? ids->cap * 2 : 16;
			void *v = reallocarray(ids->v, cap, sizeof(*ids->v));

			if (!v)
				return -ENOMEM;
			ids->v = v;
			ids->cap = cap;
		}
		store_col_str(s, 0, ids->v[ids->n++], OTAGW_ID_MAX);
	}
}

/* Calls fn for each collected record still in one of mask's states (an
 * earlier fn may have moved it). Frees ids. */
static int rec_ids_walk(struct store *st, struct rec_ids *ids, unsigned mask, record_fn fn,
			void *ctx)
{
	struct record r;
	int rc = 0;

	for (size_t i = 0; i < ids->n && !rc; i++) {
		rc = record_get(st, ids->v[i], &r);
		if (rc == -ENOENT || (!rc && !(mask & REC_MASK(r.state)))) {
			rc = 0;
			continue;
		}
		if (!rc)
			rc = fn(st, &r, ctx);
	}
	free(ids->v);
	ids->v = NULL;
	ids->n = ids->cap = 0;
	return rc;
}

int records_each(struct store *st, const char *task_id, const char *device_id,
		 unsigned state_mask, record_fn fn, void *ctx)
{
	sqlite3_stmt *s = store_stmt(st,
		"SELECT id FROM record WHERE (?1 IS NULL OR task_id = ?1)"
		" AND (?2 IS NULL OR device_id = ?2) AND state IN (?3, ?4, ?5, ?6, ?7)"
		" ORDER BY create_time, rowid");
	struct rec_ids ids = { 0 };
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, task_id);
	store_bind_str(s, 2, device_id);
	rec_bind_mask(s, 3, state_mask);
	rc = rec_ids_collect(s, &ids);
	store_done(s);
	if (rc) {
		free(ids.v);
		return rc;
	}
	return rec_ids_walk(st, &ids, state_mask, fn, ctx);
}

struct rec_batch {
	const char *reason;
	int64_t time;                 /* 0 = now */
	int n;                        /* records moved */
	bool failed;                  /* a move failed; e says why */
	struct err_info *e;
};

static int rec_cancel_one(struct store *st, const struct record *r, void *ctx)
{
	struct rec_batch *b = ctx;
	struct record_change why = { .progress = -1, .reason = b->reason, .time = b->time };
	int rc = record_transition(st, r->id, REC_CANCELED, &why, b->e);

	b->failed = rc != 0;
	if (!rc)
		b->n++;
	return rc;
}

int records_cancel(struct store *st, const char *task_id, const char *device_id,
		   const char *reason, int *n, struct err_info *e)
{
	struct rec_batch b = { .reason = reason, .e = e };
	int rc;

	*n = 0;
	if (task_id)
		device_id = NULL;
	else if (!device_id)
		return err_set(e, -EINVAL, "records: cancel needs a task or a device");
	rc = store_begin(st);
	if (rc)
		return err_set(e, rc, "records: cannot begin transaction");
	rc = records_each(st, task_id, device_id, REC_UNFINISHED, rec_cancel_one, &b);
	if (rc) {
		store_rollback(st);
		if (b.failed)
			return rc;
		return err_set(e, rc, "records: cannot cancel: %s", otagw_strerror(rc));
	}
	rc = store_commit(st);
	if (rc)
		return err_set(e, rc, "records: cannot commit: %s", otagw_strerror(rc));
	*n = b.n;
	return 0;
}

static int rec_expire_one(struct store *st, const struct record *r, void *ctx)
{
	struct rec_batch *b = ctx;
	struct record_change why = { .progress = -1, .reason = b->reason, .time = b->time };
	int rc = record_transition(st, r->id, REC_FAILED, &why, NULL);

	if (rc)
		return rc;
	LOGI("record %s (task %s, device %s): no progress for %lld s, failed", r->id,
	     r->task_id, r->device_id, (long long)r->timeout_seconds);
	b->n++;
	return 0;
}

int records_expire(struct store *st, int64_t now, int *n)
{
	sqlite3_stmt *s = store_stmt(st,
		"SELECT id FROM record WHERE state = 'processing' AND timeout_seconds > 0"
		" AND update_time + timeout_seconds * 1000 <= ?1 ORDER BY update_time, rowid");
	struct rec_batch b = { .reason = "timeout", .time = now };
	struct rec_ids ids = { 0 };
	int rc;

	*n = 0;
	if (!s)
		return -EIO;
	rc = store_begin(st);
	if (rc) {
		store_done(s);
		return rc;
	}
	sqlite3_bind_int64(s, 1, now);
	rc = rec_ids_collect(s, &ids);
	store_done(s);
	if (rc)
		free(ids.v);
	else
		rc = rec_ids_walk(st, &ids, REC_MASK(REC_PROCESSING), rec_expire_one, &b);
	if (rc) {
		store_rollback(st);
		return rc;
	}
	rc = store_commit(st);
	if (!rc)
		*n = b.n;
	return rc;
}

int records_counts(struct store *st, const char *task_id, int64_t counts[REC_STATE_COUNT])
{
	sqlite3_stmt *s = store_stmt(st,
		"SELECT state, COUNT(*) FROM record WHERE (?1 IS NULL OR task_id = ?1)"
		" GROUP BY state");
	int rc;

	memset(counts, 0, sizeof(counts[0]) * REC_STATE_COUNT);
	if (!s)
		return -EIO;
	store_bind_str(s, 1, task_id);
	for (;;) {
		enum record_state state;

		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW)
			break;
		if (!record_state_parse((const char *)sqlite3_column_text(s, 0), &state))
			counts[state] = sqlite3_column_int64(s, 1);
	}
	store_done(s);
	return rc == SQLITE_DONE ? 0 : rec_err(rc);
}

int records_census(struct store *st, size_t max,
		   void (*fn)(void *ctx, const char *task_id, const int64_t counts[REC_STATE_COUNT]),
		   void *ctx)
{
	/* rows come grouped by task (newest first); one callback per task */
	sqlite3_stmt *s = store_stmt(st,
		"SELECT r.task_id, r.state, COUNT(*) FROM record r JOIN task t ON t.id = r.task_id"
		" WHERE r.task_id IN (SELECT id FROM task ORDER BY create_time DESC, id LIMIT ?1)"
		" GROUP BY r.task_id, r.state ORDER BY t.create_time DESC, r.task_id");
	char cur[OTAGW_ID_MAX] = "";
	int64_t counts[REC_STATE_COUNT] = { 0 };
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *task = (const char *)sqlite3_column_text(s, 0);
		enum record_state state;

		if (!task)
			continue;
		if (strcmp(cur, task)) {
			if (cur[0])
				fn(ctx, cur, counts);
			util_strlcpy(cur, task, sizeof(cur));
			memset(counts, 0, sizeof(counts));
		}
		if (!record_state_parse((const char *)sqlite3_column_text(s, 1), &state))
			counts[state] = sqlite3_column_int64(s, 2);
	}
	store_done(s);
	if (rc != SQLITE_DONE)
		return rec_err(rc);
	if (cur[0])
		fn(ctx, cur, counts);
	return 0;
}

/* Clamps a requested page size: 0 = default, at most OTAGW_PAGE_SIZE_MAX. */
static unsigned rec_page_size(unsigned size)
{
	if (!size)
		return OTAGW_PAGE_SIZE_DEFAULT;
	return size > OTAGW_PAGE_SIZE_MAX ? OTAGW_PAGE_SIZE_MAX : size;
}

/* Appends to arr one item per row of s, made by row_json; finishes nothing. */
static int rec_rows_json(sqlite3_stmt *s, cJSON *arr, cJSON *(*row_json)(sqlite3_stmt *s))
{
	for (;;) {
		int rc = sqlite3_step(s);
		cJSON *item;

		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_ROW)
			return rec_err(rc);
		item = row_json(s);
		if (!item || !cJSON_AddItemToArray(arr, item)) {
			cJSON_Delete(item);
			return -ENOMEM;
		}
	}
}

static cJSON *rec_row_json(sqlite3_stmt *s)
{
	struct record r;

	return rec_row(s, &r) ? NULL : record_to_json(&r);
}

/* Runs a page query s (already bound except limit/offset at lim, lim + 1). */
static int rec_page(sqlite3_stmt *s, int lim, unsigned page, unsigned size,
		    cJSON *(*row_json)(sqlite3_stmt *s), cJSON **items)
{
	cJSON *arr = cJSON_CreateArray();
	int rc;

	if (!arr)
		return -ENOMEM;
	size = rec_page_size(size);
	sqlite3_bind_int64(s, lim, size);
	sqlite3_bind_int64(s, lim + 1, (int64_t)page * size);
	rc = rec_rows_json(s, arr, row_json);
	if (rc) {
		cJSON_Delete(arr);
		return rc;
	}
	*items = arr;
	return 0;
}

int records_list(struct store *st, const char *task_id, unsigned state_mask, unsigned page,
		 unsigned size, cJSON **items, int64_t *total)
{
	sqlite3_stmt *c = store_stmt(st,
		"SELECT COUNT(*) FROM record WHERE (?1 IS NULL OR task_id = ?1)"
		" AND state IN (?2, ?3, ?4, ?5, ?6)");
	sqlite3_stmt *s = store_stmt(st,
		"SELECT " REC_SCOLS " FROM record WHERE (?1 IS NULL OR task_id = ?1)"
		" AND state IN (?2, ?3, ?4, ?5, ?6) ORDER BY create_time, rowid"
		" LIMIT ?7 OFFSET ?8");
	int rc = -EIO;

	if (c && s) {
		store_bind_str(c, 1, task_id);
		rec_bind_mask(c, 2, state_mask);
		rc = rec_count(c, total);
	}
	if (!rc) {
		store_bind_str(s, 1, task_id);
		rec_bind_mask(s, 2, state_mask);
		rc = rec_page(s, 7, page, size, rec_row_json, items);
	}
	store_done(c);
	store_done(s);
	return rc;
}

static cJSON *rec_history_json(sqlite3_stmt *s)
{
	cJSON *o = cJSON_CreateObject();
	const char *from = (const char *)sqlite3_column_text(s, 4);
	const char *to = (const char *)sqlite3_column_text(s, 5);
	const char *reason = (const char *)sqlite3_column_text(s, 7);
	bool ok = o != NULL;

	ok = ok && cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(s, 0));
	ok = ok && cJSON_AddStringToObject(o, "recordId", (const char *)sqlite3_column_text(s, 1));
	ok = ok && cJSON_AddStringToObject(o, "taskId", (const char *)sqlite3_column_text(s, 2));
	ok = ok && cJSON_AddStringToObject(o, "deviceId", (const char *)sqlite3_column_text(s, 3));
	if (from && *from)
		ok = ok && cJSON_AddStringToObject(o, "from", from);
	else
		ok = ok && cJSON_AddNullToObject(o, "from");
	ok = ok && cJSON_AddStringToObject(o, "to", to ? to : "");
	ok = ok && cJSON_AddNumberToObject(o, "progress", sqlite3_column_int(s, 6));
	ok = ok && cJSON_AddStringToObject(o, "reason", reason ? reason : "");
	ok = ok && cJSON_AddNumberToObject(o, "time", (double)sqlite3_column_int64(s, 8));
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

#define REC_HIST_COLS "id, record_id, task_id, device_id, from_state, to_state, progress," \
	" reason, time"

int records_history(struct store *st, const char *device_id, const char *record_id,
		    unsigned page, unsigned size, cJSON **items, int64_t *total)
{
	/* Two literal pairs so each query can use its index. */
	const char *key = record_id ? record_id : device_id;
	sqlite3_stmt *c, *s;
	int rc = -EIO;

	if (!key)
		return -EINVAL;
	c = record_id ? store_stmt(st, "SELECT COUNT(*) FROM record_history WHERE record_id = ?1")
		      : store_stmt(st, "SELECT COUNT(*) FROM record_history WHERE device_id = ?1");
	s = record_id ? store_stmt(st, "SELECT " REC_HIST_COLS " FROM record_history"
				       " WHERE record_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3")
		      : store_stmt(st, "SELECT " REC_HIST_COLS " FROM record_history"
				       " WHERE device_id = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3");
	if (c && s) {
		store_bind_str(c, 1, key);
		rc = rec_count(c, total);
	}
	if (!rc) {
		store_bind_str(s, 1, key);
		rc = rec_page(s, 2, page, size, rec_history_json, items);
	}
	store_done(c);
	store_done(s);
	return rc;
}

cJSON *record_to_json(const struct record *r)
{
	cJSON *o = cJSON_CreateObject();
	bool ok = o != NULL;

	ok = ok && cJSON_AddStringToObject(o, "id", r->id);
	ok = ok && cJSON_AddStringToObject(o, "taskId", r->task_id);
	ok = ok && cJSON_AddStringToObject(o, "deviceId", r->device_id);
	ok = ok && cJSON_AddStringToObject(o, "firmwareId", r->firmware_id);
	ok = ok && cJSON_AddStringToObject(o, "version", r->version);
	ok = ok && cJSON_AddNumberToObject(o, "versionOrder", (double)r->version_order);
	ok = ok && cJSON_AddStringToObject(o, "state", rec_name(r->state));
	ok = ok && cJSON_AddNumberToObject(o, "progress", r->progress);
	ok = ok && cJSON_AddStringToObject(o, "errorReason", r->error_reason);
	ok = ok && cJSON_AddNumberToObject(o, "createTime", (double)r->create_time);
	ok = ok && cJSON_AddNumberToObject(o, "upgradeTime", (double)r->upgrade_time);
	ok = ok && cJSON_AddNumberToObject(o, "completeTime", (double)r->complete_time);
	ok = ok && cJSON_AddNumberToObject(o, "updateTime", (double)r->update_time);
	ok = ok && cJSON_AddNumberToObject(o, "wave", r->wave + 1);
	ok = ok && cJSON_AddNumberToObject(o, "retries", r->attempts);
	ok = ok && cJSON_AddNumberToObject(o, "timeoutSeconds", (double)r->timeout_seconds);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int records_history_since(struct store *st, int64_t since,
			  int (*fn)(void *ctx, const struct record_event *ev), void *ctx)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT h.id, h.record_id, h.from_state, h.to_state,"
				     " h.progress, h.reason, h.time FROM record_history h"
				     " WHERE h.time > ?1 ORDER BY h.id");
	int step, rc = 0;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, since);
	while (!rc && (step = sqlite3_step(s)) == SQLITE_ROW) {
		char rid[OTAGW_ID_MAX], from[16], to[16], reason[OTAGW_REASON_MAX];
		struct record r;
		struct record_event ev = { .r = &r, .from = from, .to = to, .reason = reason };

		ev.id = sqlite3_column_int64(s, 0);
		store_col_str(s, 1, rid, sizeof(rid));
		store_col_str(s, 2, from, sizeof(from));
		store_col_str(s, 3, to, sizeof(to));
		ev.progress = sqlite3_column_int(s, 4);
		store_col_str(s, 5, reason, sizeof(reason));
		ev.time = sqlite3_column_int64(s, 6);
		if (record_get(st, rid, &r))
			continue;           /* the record was deleted with its firmware */
		rc = fn(ctx, &ev);
	}
	store_done(s);
	return rc ? rc : step == SQLITE_DONE ? 0 : store_errno(step);
}
