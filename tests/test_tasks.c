/* SPDX-License-Identifier: MIT */
/* test_tasks.c - tasks on a real SQLite file: body validation, publish to
 * all / listed devices (refusals write nothing), republish, devices already
 * up to date, cancel, listing with counts. Firmware and devices are seeded
 * with SQL so this test does not depend on catalogue or devices input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "records.h"
#include "store.h"
#include "tasks.h"
#include "util.h"

#define S(dst, src) util_strlcpy(dst, src, sizeof(dst))

struct fx {
	char dir[64];
	char path[128];
	struct store *st;
};

/* fw1 is 2.0 of p1: d1, d2, d4 need it, d3 has it; e1 is of p2. */
static const char fx_seed[] =
	"INSERT INTO firmware (id, product_id, name, version, version_order, create_time,"
	" update_time) VALUES ('fw1', 'p1', 'fw', '2.0', 7, 1, 1),"
	" ('fw2', 'p2', 'fw', '1.0', 1, 1, 1);"
	"INSERT INTO device (id, product_id, firmware_version, create_time) VALUES"
	" ('d1', 'p1', '1.0', 1), ('d2', 'p1', '', 1), ('d3', 'p1', '2.0', 1),"
	" ('d4', 'p1', '1.5', 1), ('e1', 'p2', '0.9', 1);";

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct err_info e = { 0 };

	assert_non_null(f);
	S(f->dir, "/tmp/otagw-tasks-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/otagw.db", f->dir);
	assert_int_equal(store_open(&f->st, f->path, &e), 0);
	assert_int_equal(sqlite3_exec(store_db(f->st), fx_seed, NULL, NULL, NULL), SQLITE_OK);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	char p[160];

	store_close(f->st);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Creates a task from JSON text; returns tasks_create's code. */
static int create(struct store *st, const char *fw, const char *json, struct task *t,
		  struct err_info *e)
{
	cJSON *body = cJSON_Parse(json);
	int rc = tasks_create(st, fw, body, t, e);

	cJSON_Delete(body);
	return rc;
}

static void mk_task(struct store *st, const char *fw, const char *json, char id[OTAGW_ID_MAX])
{
	struct err_info e = { 0 };
	struct task t;

	if (create(st, fw, json, &t, &e))
		fail_msg("create: %s", e.text);
	util_strlcpy(id, t.id, OTAGW_ID_MAX);
	task_clear(&t);
}

static int64_t q_int(struct store *st, const char *sql, const char *a, const char *b)
{
	sqlite3_stmt *s;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, b, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static int64_t n_records(struct store *st, const char *task)
{
	return q_int(st, "SELECT COUNT(*) FROM record WHERE ?1 IS NULL OR task_id = ?1", task,
		     NULL);
}

static int64_t n_history(struct store *st)
{
	return q_int(st, "SELECT COUNT(*) FROM record_history WHERE ?1 IS NULL", NULL, NULL);
}

/* The record of (task, device); fails the test when there is none. */
static void rec_of(struct store *st, const char *task, const char *device, struct record *r)
{
	sqlite3_stmt *s;
	char id[OTAGW_ID_MAX] = "";

	assert_int_equal(sqlite3_prepare_v2(store_db(st),
		"SELECT id FROM record WHERE task_id = ?1 AND device_id = ?2", -1, &s, NULL),
		SQLITE_OK);
	sqlite3_bind_text(s, 1, task, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, device, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		S(id, (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	assert_int_equal(record_get(st, id, r), 0);
}

static enum task_state state_of(struct store *st, const char *id)
{
	struct task t;
	enum task_state s;

	assert_int_equal(tasks_get(st, id, &t, NULL), 0);
	s = t.state;
	task_clear(&t);
	return s;
}

static void test_names(void **state)
{
	assert_string_equal(task_mode_name(TASK_PUSH), "push");
	assert_string_equal(task_mode_name(TASK_PULL), "pull");
	assert_null(task_mode_name((enum task_mode)2));
	assert_string_equal(task_state_name(TASK_CREATED), "created");
	assert_string_equal(task_state_name(TASK_PUBLISHED), "published");
	assert_string_equal(task_state_name(TASK_CANCELED), "canceled");
	assert_null(task_state_name((enum task_state)3));
}

static void test_create(void **state)
{
	struct fx *f = *state;
	struct err_info e = { 0 };
	struct task t, g;

	assert_int_equal(create(f->st, "fw1", "{\"name\":\"roll-out\",\"mode\":\"push\","
				"\"timeoutSeconds\":60,\"description\":\"first\"}", &t, &e), 0);
	assert_int_equal(strlen(t.id), 32);
	assert_string_equal(t.firmware_id, "fw1");
	assert_string_equal(t.product_id, "p1");
	assert_string_equal(t.name, "roll-out");
	assert_int_equal(t.mode, TASK_PUSH);
	assert_int_equal(t.timeout_seconds, 60);
	assert_string_equal(t.description, "first");
	assert_int_equal(t.state, TASK_CREATED);
	assert_true(t.create_time > 0);
	assert_int_equal(tasks_get(f->st, t.id, &g, &e), 0);
	assert_string_equal(g.id, t.id);
	assert_string_equal(g.product_id, "p1");
	assert_string_equal(g.description, "first");
	assert_int_equal(g.timeout_seconds, 60);
	assert_int_equal(g.create_time, t.create_time);
	task_clear(&g);
	task_clear(&t);

	assert_int_equal(create(f->st, "fw2", "{\"id\":\"task-1\",\"name\":\"n\",\"mode\":\"pull\","
				"\"timeoutSeconds\":null}", &t, &e), -EINVAL);
	assert_non_null(strstr(e.text, "null is not allowed"));
	assert_int_equal(create(f->st, "fw2", "{\"id\":\"task-1\",\"name\":\"n\",\"mode\":\"pull\"}",
				&t, &e), 0);
	assert_string_equal(t.id, "task-1");
	assert_string_equal(t.product_id, "p2");
	assert_int_equal(t.mode, TASK_PULL);
	assert_int_equal(t.timeout_seconds, 0);
	assert_string_equal(t.description, "");
	task_clear(&t);
	assert_int_equal(create(f->st, "fw1", "{\"id\":\"task-1\",\"name\":\"n\","
				"\"mode\":\"pull\"}", &t, &e), -EEXIST);
	assert_non_null(strstr(e.text, "task-1"));
	assert_null(t.description);

	assert_int_equal(tasks_get(f->st, "nope", &g, &e), -ENOENT);
	assert_non_null(strstr(e.text, "nope"));
	assert_int_equal(tasks_get(f->st, "bad id", &g, &e), -ENOENT);
	assert_int_equal(tasks_get(f->st, NULL, &g, &e), -ENOENT);
}

static void test_create_unknown_firmware(void **state)
{
	struct fx *f = *state;
	struct err_info e = { 0 };
	struct task t;

	assert_int_equal(create(f->st, "nofw", "{\"name\":\"n\",\"mode\":\"push\"}", &t, &e),
			 -ENOENT);
	assert_string_equal(e.text, "firmware 'nofw' not found");
	assert_int_equal(create(f->st, NULL, "{\"name\":\"n\",\"mode\":\"push\"}", &t, &e),
			 -ENOENT);
	assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM task WHERE ?1 IS NULL", NULL, NULL), 0);
}

static void test_create_validation(void **state)
{
	static const struct {
		const char *body;
		int code;
		const char *detail;     /* a substring of e.text */
	} cases[] = {
		{ "{\"mode\":\"push\"}", -EINVAL, "name" },
		{ "{\"name\":\"\",\"mode\":\"push\"}", -EINVAL, "name" },
		{ "{\"name\":null,\"mode\":\"push\"}", -EINVAL, "name" },
		{ "{\"name\":7,\"mode\":\"push\"}", -EINVAL, "name" },
		{ "{\"name\":[\"n\"],\"mode\":\"push\"}", -EINVAL, "name" },
		{ "{\"name\":\"n\"}", -EINVAL, "mode" },
		{ "{\"name\":\"n\",\"mode\":\"PUSH\"}", -EINVAL, "mode" },
		{ "{\"name\":\"n\",\"mode\":\"broadcast-to-everyone\"}", -EINVAL, "mode" },
		{ "{\"name\":\"n\",\"mode\":1}", -EINVAL, "mode" },
		{ "{\"name\":\"n\",\"mode\":\"push\",\"timeoutSeconds\":-1}", -EINVAL,
		  "timeoutSeconds" },
		{ "{\"name\":\"n\",\"mode\":\"push\",\"timeoutSeconds\":1.5}", -EINVAL,
		  "timeoutSeconds" },
		{ "{\"name\":\"n\",\"mode\":\"push\",\"timeoutSeconds\":\"60\"}", -EINVAL,
		  "timeoutSeconds" },
		{ "{\"name\":\"n\",\"mode\":\"push\",\"timeoutSeconds\":true}", -EINVAL,
		  "timeoutSeconds" },
		{ "{\"name\":\"n\",\"mode\":\"push\",\"timeoutSeconds\":2592001}", -EINVAL,
		  "timeoutSeconds" },
		{ "{\"name\":\"n\",\"mode\":\"push\",\"timeoutSeconds\":1e300}", -EINVAL,
		  "timeoutSeconds" },
		{ "{\"name\":\"n\",\"mode\":\"push\",\"description\":5}", -EINVAL, "description" },
		{ "{\"name\":\"n\",\"mode\":\"push\",\"extra\":1}", -EINVAL,
		  "unknown field 'extra'" },
		{ "{\"name\":\"n\",\"mode\":\"push\",\"Name\":\"x\"}", -EINVAL, "Name" },
		{ "{\"name\":\"n\",\"mode\":\"push\",\"firmwareId\":\"fw2\"}", -EINVAL,
		  "firmwareId" },
		{ "{\"name\":\"n\",\"mode\":\"push\",\"id\":\"bad id\"}", -EINVAL, "id" },
		{ "{\"name\":\"n\",\"mode\":\"push\",\"id\":5}", -EINVAL, "id" },
		{ "{\"name\":\"n\",\"mode\":\"push\",\"id\":\"\"}", -EINVAL, "id" },
		{ "[]", -EINVAL, "object" },
		{ "\"task\"", -EINVAL, "object" },
		{ "not json", -EINVAL, "object" },
	};
	struct fx *f = *state;
	char big[3000];
	struct task t;

	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(cases); i++) {
		struct err_info e = { 0 };
		int rc = create(f->st, "fw1", cases[i].body, &t, &e);

		if (rc != cases[i].code || !strstr(e.text, cases[i].detail))
			fail_msg("case %zu %s: rc %d, \"%s\"", i, cases[i].body, rc, e.text);
		assert_int_equal(e.code, cases[i].code);
		assert_null(t.description);
	}
	/* Length limits: 128 / 2048 bytes pass, one more is refused. */
	snprintf(big, sizeof(big), "{\"name\":\"%0128d\",\"mode\":\"push\"}", 0);
	assert_int_equal(create(f->st, "fw1", big, &t, NULL), 0);
	task_clear(&t);
	snprintf(big, sizeof(big), "{\"name\":\"%0129d\",\"mode\":\"push\"}", 0);
	assert_int_equal(create(f->st, "fw1", big, &t, NULL), -EINVAL);
	snprintf(big, sizeof(big), "{\"name\":\"n\",\"mode\":\"push\",\"description\":\"%02048d\"}",
		 0);
	assert_int_equal(create(f->st, "fw1", big, &t, NULL), 0);
	task_clear(&t);
	snprintf(big, sizeof(big), "{\"name\":\"n\",\"mode\":\"push\",\"description\":\"%02049d\"}",
		 0);
	assert_int_equal(create(f->st, "fw1", big, &t, NULL), -EINVAL);
	assert_int_equal(create(f->st, "fw1", "{\"name\":\"n\",\"mode\":\"push\","
				"\"timeoutSeconds\":2592000}", &t, NULL), 0);
	assert_int_equal(t.timeout_seconds, 2592000);
	task_clear(&t);
	assert_int_equal(tasks_create(f->st, "fw1", NULL, &t, NULL), -EINVAL);
	assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM task WHERE ?1 IS NULL", NULL, NULL), 3);
}

static void test_publish_all(void **state)
{
	struct fx *f = *state;
	struct task_publish_result res;
	struct err_info e = { 0 };
	char id[OTAGW_ID_MAX];
	struct record r;

	mk_task(f->st, "fw1", "{\"name\":\"n\",\"mode\":\"push\",\"timeoutSeconds\":90}", id);
	assert_int_equal(state_of(f->st, id), TASK_CREATED);
	assert_int_equal(tasks_publish(f->st, id, true, NULL, 0, &res, &e), 0);
	assert_int_equal(res.added, 3);
	assert_int_equal(res.up_to_date, 1);
	assert_int_equal(res.already, 0);
	assert_int_equal(state_of(f->st, id), TASK_PUBLISHED);
	assert_int_equal(n_records(f->st, id), 4);
	assert_int_equal(n_history(f->st), 4);

	rec_of(f->st, id, "d1", &r);
	assert_int_equal(r.state, REC_WAITING);
	assert_int_equal(r.progress, 0);
	assert_string_equal(r.firmware_id, "fw1");
	assert_string_equal(r.version, "2.0");
	assert_int_equal(r.version_order, 7);
	assert_int_equal(r.timeout_seconds, 90);
	rec_of(f->st, id, "d2", &r);
	assert_int_equal(r.state, REC_WAITING);
	rec_of(f->st, id, "d3", &r);
	assert_int_equal(r.state, REC_SUCCESS);
	assert_true(r.complete_time > 0);
	assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM record WHERE task_id = ?1 AND"
			       " device_id = ?2", id, "e1"), 0);

	/* Again: everyone is already in. */
	assert_int_equal(tasks_publish(f->st, id, true, NULL, 0, &res, &e), 0);
	assert_int_equal(res.already, 4);
	assert_int_equal(res.added + res.up_to_date, 0);
	assert_int_equal(n_history(f->st), 4);
}

static void test_publish_selected(void **state)
{
	struct fx *f = *state;
	const char *const first[] = { "d3", "d1", "d1" };
	const char *const second[] = { "d2", "d1" };
	struct task_publish_result res;
	struct err_info e = { 0 };
	char id[OTAGW_ID_MAX];
	struct record r;

	mk_task(f->st, "fw1", "{\"name\":\"n\",\"mode\":\"pull\"}", id);
	assert_int_equal(tasks_publish(f->st, id, false, first, 3, &res, &e), 0);
	assert_int_equal(res.added, 1);
	assert_int_equal(res.up_to_date, 1);
	assert_int_equal(res.already, 0);
	assert_int_equal(n_records(f->st, id), 2);
	rec_of(f->st, id, "d3", &r);
	assert_int_equal(r.state, REC_SUCCESS);
	assert_int_equal(r.timeout_seconds, 0);

	assert_int_equal(tasks_publish(f->st, id, false, second, 2, &res, &e), 0);
	assert_int_equal(res.added, 1);
	assert_int_equal(res.already, 1);
	assert_int_equal(res.up_to_date, 0);
	assert_int_equal(tasks_publish(f->st, id, true, NULL, 0, &res, &e), 0);
	assert_int_equal(res.added, 1);      /* d4 */
	assert_int_equal(res.already, 3);
	assert_int_equal(n_records(f->st, id), 4);
	assert_int_equal(tasks_publish(f->st, id, false, NULL, 0, &res, &e), 0);
	assert_int_equal(res.added + res.already + res.up_to_date, 0);
}

static void test_publish_refused(void **state)
{
	struct fx *f = *state;
	const char *const unknown[] = { "d1", "x2", "x1", "bad id", "d2" };
	const char *const other[] = { "d1", "e1", "d2" };
	const char *many[40];
	char names[40][16];
	struct task_publish_result res;
	struct err_info e = { 0 };
	char id[OTAGW_ID_MAX];

	mk_task(f->st, "fw1", "{\"name\":\"n\",\"mode\":\"push\"}", id);
	assert_int_equal(tasks_publish(f->st, id, false, unknown, 5, &res, &e), -EINVAL);
	assert_non_null(strstr(e.text, "unknown device ids: "));
	assert_non_null(strstr(e.text, "x1"));
	assert_non_null(strstr(e.text, "x2"));
	assert_null(strstr(e.text, "d1"));
	assert_int_equal(res.added + res.already + res.up_to_date, 0);
	assert_int_equal(n_records(f->st, id), 0);
	assert_int_equal(n_history(f->st), 0);
	assert_int_equal(state_of(f->st, id), TASK_CREATED);

	assert_int_equal(tasks_publish(f->st, id, false, other, 3, &res, &e), -EINVAL);
	assert_string_equal(e.text, "device e1 belongs to product p2, not p1");
	assert_int_equal(n_records(f->st, id), 0);
	assert_int_equal(state_of(f->st, id), TASK_CREATED);

	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "unknown-%02d", i);
		many[i] = names[i];
	}
	assert_int_equal(tasks_publish(f->st, id, false, many, 40, &res, &e), -EINVAL);
	assert_non_null(strstr(e.text, "unknown-00"));
	assert_non_null(strstr(e.text, " more"));
	assert_null(strstr(e.text, "unknown-39"));
	assert_true(strlen(e.text) < sizeof(e.text) - 1);   /* not cut off */

	assert_int_equal(tasks_publish(f->st, id, false, NULL, 3, &res, &e), -EINVAL);
	assert_int_equal(tasks_publish(f->st, id, false, many, OTAGW_PUBLISH_IDS_MAX + 1, &res,
				       &e), -EINVAL);
	assert_int_equal(tasks_publish(f->st, "nope", true, NULL, 0, &res, &e), -ENOENT);
	assert_int_equal(n_records(f->st, NULL), 0);
}

static void test_publish_canceled(void **state)
{
	struct fx *f = *state;
	const char *const ids[] = { "d1" };
	struct task_publish_result res;
	struct err_info e = { 0 };
	char id[OTAGW_ID_MAX], msg[128];
	int n = -1;

	mk_task(f->st, "fw1", "{\"name\":\"n\",\"mode\":\"push\"}", id);
	assert_int_equal(tasks_cancel(f->st, id, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_int_equal(state_of(f->st, id), TASK_CANCELED);
	assert_int_equal(tasks_publish(f->st, id, true, NULL, 0, &res, &e), -OTAGW_ESTATE);
	snprintf(msg, sizeof(msg), "task %s is canceled", id);
	assert_string_equal(e.text, msg);
	assert_int_equal(tasks_publish(f->st, id, false, ids, 1, &res, &e), -OTAGW_ESTATE);
	assert_int_equal(n_records(f->st, id), 0);
	assert_int_equal(state_of(f->st, id), TASK_CANCELED);
}

static void test_cancel(void **state)
{
	struct fx *f = *state;
	struct record_change fail = { .progress = -1, .reason = "flash error" };
	struct task_publish_result res;
	struct err_info e = { 0 };
	char id[OTAGW_ID_MAX], other[OTAGW_ID_MAX];
	struct record r;
	int n = -1;

	mk_task(f->st, "fw1", "{\"name\":\"n\",\"mode\":\"push\"}", id);
	mk_task(f->st, "fw1", "{\"name\":\"m\",\"mode\":\"push\"}", other);
	assert_int_equal(tasks_publish(f->st, id, true, NULL, 0, &res, &e), 0);
	assert_int_equal(tasks_publish(f->st, other, true, NULL, 0, &res, &e), 0);
	rec_of(f->st, id, "d1", &r);
	assert_int_equal(record_transition(f->st, r.id, REC_PROCESSING, NULL, &e), 0);
	rec_of(f->st, id, "d2", &r);
	assert_int_equal(record_transition(f->st, r.id, REC_PROCESSING, NULL, &e), 0);
	assert_int_equal(record_transition(f->st, r.id, REC_FAILED, &fail, &e), 0);

	assert_int_equal(tasks_cancel(f->st, id, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_int_equal(state_of(f->st, id), TASK_CANCELED);
	rec_of(f->st, id, "d1", &r);
	assert_int_equal(r.state, REC_CANCELED);
	assert_string_equal(r.error_reason, "task canceled");
	rec_of(f->st, id, "d4", &r);
	assert_int_equal(r.state, REC_CANCELED);
	rec_of(f->st, id, "d2", &r);
	assert_int_equal(r.state, REC_FAILED);
	assert_string_equal(r.error_reason, "flash error");
	rec_of(f->st, id, "d3", &r);
	assert_int_equal(r.state, REC_SUCCESS);
	rec_of(f->st, other, "d1", &r);
	assert_int_equal(r.state, REC_WAITING);
	assert_int_equal(state_of(f->st, other), TASK_PUBLISHED);

	assert_int_equal(tasks_cancel(f->st, id, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_int_equal(tasks_cancel(f->st, "nope", &n, &e), -ENOENT);
	assert_int_equal(n, 0);
}

static int64_t count_of(const cJSON *item, const char *key)
{
	const cJSON *c = cJSON_GetObjectItem(item, "counts");

	assert_non_null(c);
	assert_non_null(cJSON_GetObjectItem(c, key));
	return (int64_t)cJSON_GetObjectItem(c, key)->valuedouble;
}

static void test_list(void **state)
{
	struct fx *f = *state;
	struct task_publish_result res;
	char a[OTAGW_ID_MAX], b[OTAGW_ID_MAX], c[OTAGW_ID_MAX];
	cJSON *items = NULL, *it;
	int64_t total = -1;
	int n;

	mk_task(f->st, "fw1", "{\"name\":\"a\",\"mode\":\"push\"}", a);
	mk_task(f->st, "fw2", "{\"name\":\"b\",\"mode\":\"pull\"}", b);
	mk_task(f->st, "fw1", "{\"name\":\"c\",\"mode\":\"push\"}", c);
	assert_int_equal(tasks_publish(f->st, a, true, NULL, 0, &res, NULL), 0);
	assert_int_equal(tasks_cancel(f->st, a, &n, NULL), 0);

	assert_int_equal(tasks_list(f->st, NULL, 0, 10, &items, &total), 0);
	assert_int_equal(total, 3);
	assert_int_equal(cJSON_GetArraySize(items), 3);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "id")->valuestring,
			    c);
	it = cJSON_GetArrayItem(items, 2);
	assert_string_equal(cJSON_GetObjectItem(it, "id")->valuestring, a);
	assert_string_equal(cJSON_GetObjectItem(it, "state")->valuestring, "canceled");
	assert_int_equal(count_of(it, "canceled"), 3);
	assert_int_equal(count_of(it, "success"), 1);
	assert_int_equal(count_of(it, "waiting"), 0);
	assert_int_equal(count_of(it, "total"), 4);
	assert_int_equal(count_of(cJSON_GetArrayItem(items, 0), "total"), 0);
	cJSON_Delete(items);

	assert_int_equal(tasks_list(f->st, "fw1", 0, 10, &items, &total), 0);
	assert_int_equal(total, 2);
	assert_int_equal(cJSON_GetArraySize(items), 2);
	cJSON_Delete(items);
	assert_int_equal(tasks_list(f->st, NULL, 1, 1, &items, &total), 0);
	assert_int_equal(total, 3);
	assert_int_equal(cJSON_GetArraySize(items), 1);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "id")->valuestring,
			    b);
	cJSON_Delete(items);
	assert_int_equal(tasks_list(f->st, NULL, 5, 1, &items, &total), 0);
	assert_int_equal(cJSON_GetArraySize(items), 0);
	cJSON_Delete(items);
	assert_int_equal(tasks_list(f->st, "nofw", 0, 0, &items, &total), 0);
	assert_int_equal(total, 0);
	cJSON_Delete(items);
}

static void test_to_json(void **state)
{
	static const char *const keys[] = {
		"id", "firmwareId", "productId", "name", "mode", "timeoutSeconds", "description",
		"state", "createTime", "origin", "paused", "pauseReason",
	};
	struct task t = { .mode = TASK_PULL, .state = TASK_PUBLISHED, .timeout_seconds = 30,
			  .create_time = 1234 };
	int64_t counts[REC_STATE_COUNT] = { 1, 2, 3, 4, 5 };
	cJSON *o, *c;

	S(t.id, "t1");
	S(t.firmware_id, "fw1");
	S(t.product_id, "p1");
	S(t.name, "n");
	o = task_to_json(&t, NULL);
	assert_non_null(o);
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(keys); i++)
		assert_non_null(cJSON_GetObjectItem(o, keys[i]));
	assert_int_equal(cJSON_GetArraySize(o), OTAGW_ARRAY_SIZE(keys));
	assert_string_equal(cJSON_GetObjectItem(o, "mode")->valuestring, "pull");
	assert_string_equal(cJSON_GetObjectItem(o, "state")->valuestring, "published");
	assert_string_equal(cJSON_GetObjectItem(o, "description")->valuestring, "");
	assert_int_equal(cJSON_GetObjectItem(o, "timeoutSeconds")->valueint, 30);
	assert_string_equal(cJSON_GetObjectItem(o, "origin")->valuestring, "local");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(o, "paused")));   /* every task says */
	assert_string_equal(cJSON_GetObjectItem(o, "pauseReason")->valuestring, "");
	cJSON_Delete(o);
	t.cloud = true;
	o = task_to_json(&t, NULL);
	assert_string_equal(cJSON_GetObjectItem(o, "origin")->valuestring, "cloud");
	cJSON_Delete(o);

	o = task_to_json(&t, counts);
	c = cJSON_GetObjectItem(o, "counts");
	assert_int_equal(cJSON_GetArraySize(c), REC_STATE_COUNT + 1);
	assert_int_equal(count_of(o, "waiting"), 1);
	assert_int_equal(count_of(o, "processing"), 2);
	assert_int_equal(count_of(o, "success"), 3);
	assert_int_equal(count_of(o, "failed"), 4);
	assert_int_equal(count_of(o, "canceled"), 5);
	assert_int_equal(count_of(o, "total"), 15);
	cJSON_Delete(o);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		T(test_create),
		T(test_create_unknown_firmware),
		T(test_create_validation),
		T(test_publish_all),
		T(test_publish_selected),
		T(test_publish_refused),
		T(test_publish_canceled),
		T(test_cancel),
		T(test_list),
		cmocka_unit_test(test_to_json),
	};

	gw_log_setup(LOG_LVL_WARN, 0, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
