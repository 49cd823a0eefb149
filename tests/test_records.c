/* SPDX-License-Identifier: MIT */
/* test_records.c - the record state machine on a real SQLite file: every
 * legal move, every illegal one, timestamps, progress, timeouts, cancel,
 * lookup order, paging, counts and history. */
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
#include "util.h"

#define S(dst, src) util_strlcpy(dst, src, sizeof(dst))

struct fx {
	char dir[64];
	char path[128];
	struct store *st;
};

static const char fx_seed[] =
	"INSERT INTO firmware (id, product_id, name, version, version_order, create_time,"
	" update_time) VALUES ('fw1', 'p1', 'fw', '2.0', 2, 1, 1),"
	" ('fw2', 'p1', 'fw', '3.0', 3, 1, 1);"
	"INSERT INTO task (id, firmware_id, product_id, name, mode, create_time) VALUES"
	" ('t1', 'fw1', 'p1', 'one', 'push', 1), ('t2', 'fw2', 'p1', 'two', 'pull', 2),"
	" ('t3', 'fw1', 'p1', 'three', 'pull', 3);";

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct err_info e = { 0 };

	assert_non_null(f);
	util_strlcpy(f->dir, "/tmp/otagw-records-XXXXXX", sizeof(f->dir));
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

/* Inserts a record of (task, device) in state s (waiting or success). */
static void mk(struct store *st, const char *task, const char *device, enum record_state s,
	       int64_t create_time, int64_t timeout, char id[OTAGW_ID_MAX])
{
	struct record r = { 0 };
	struct err_info e = { 0 };
	bool two = !strcmp(task, "t2");

	S(r.task_id, task);
	S(r.device_id, device);
	S(r.firmware_id, two ? "fw2" : "fw1");
	S(r.version, two ? "3.0" : "2.0");
	r.version_order = two ? 3 : 2;
	r.timeout_seconds = timeout;
	r.state = s;
	r.create_time = create_time;
	assert_int_equal(record_insert(st, &r, &e), 0);
	util_strlcpy(id, r.id, OTAGW_ID_MAX);
}

static void move(struct store *st, const char *id, enum record_state to, int64_t t)
{
	struct record_change why = { .progress = -1, .time = t };
	struct err_info e = { 0 };
	int rc = record_transition(st, id, to, &why, &e);

	if (rc)
		fail_msg("%s: %s", id, e.text);
}

/* A new record of device in t1 driven to state s along legal moves. */
static void mk_in(struct store *st, const char *device, enum record_state s,
		  char id[OTAGW_ID_MAX])
{
	mk(st, "t1", device, s == REC_SUCCESS ? REC_SUCCESS : REC_WAITING, 0, 0, id);
	if (s == REC_PROCESSING || s == REC_FAILED)
		move(st, id, REC_PROCESSING, 0);
	if (s == REC_FAILED || s == REC_CANCELED)
		move(st, id, s, 0);
}

static int64_t q_int(struct store *st, const char *sql, const char *arg)
{
	sqlite3_stmt *s;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static int64_t hist_count(struct store *st, const char *id)
{
	return q_int(st, "SELECT COUNT(*) FROM record_history WHERE record_id = ?1", id);
}

/* The newest history row of id as "from>to|progress|reason|time". */
static void hist_last(struct store *st, const char *id, char *out, size_t cap)
{
	sqlite3_stmt *s;

	assert_int_equal(sqlite3_prepare_v2(store_db(st),
		"SELECT from_state || '>' || to_state || '|' || progress || '|' || reason"
		" || '|' || time FROM record_history WHERE record_id = ?1 ORDER BY id DESC LIMIT 1",
		-1, &s, NULL), SQLITE_OK);
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	snprintf(out, cap, "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
}

static void get(struct store *st, const char *id, struct record *r)
{
	assert_int_equal(record_get(st, id, r), 0);
}

static void test_state_names(void **state)
{
	enum record_state s;

	for (int i = 0; i < REC_STATE_COUNT; i++) {
		const char *name = record_state_name((enum record_state)i);

		assert_non_null(name);
		assert_int_equal(record_state_parse(name, &s), 0);
		assert_int_equal(s, i);
	}
	assert_null(record_state_name(REC_STATE_COUNT));
	assert_null(record_state_name((enum record_state)-1));
	assert_int_equal(record_state_parse("Waiting", &s), -EINVAL);
	assert_int_equal(record_state_parse("", &s), -EINVAL);
	assert_int_equal(record_state_parse(NULL, &s), -EINVAL);
	assert_string_equal(record_state_name(REC_CANCELED), "canceled");
}

/* The legal moves, from the comment in records.h. */
static const struct {
	enum record_state from, to;
} legal[] = {
	{ REC_WAITING, REC_PROCESSING }, { REC_WAITING, REC_SUCCESS },
	{ REC_WAITING, REC_CANCELED }, { REC_PROCESSING, REC_SUCCESS },
	{ REC_PROCESSING, REC_FAILED }, { REC_PROCESSING, REC_CANCELED },
	{ REC_FAILED, REC_PROCESSING }, { REC_FAILED, REC_WAITING },
};

static bool is_legal(int from, int to)
{
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(legal); i++)
		if ((int)legal[i].from == from && (int)legal[i].to == to)
			return true;
	return false;
}

static void test_legal_table(void **state)
{
	for (int f = 0; f < REC_STATE_COUNT; f++)
		for (int t = 0; t < REC_STATE_COUNT; t++)
			assert_int_equal(record_transition_legal(f, t), is_legal(f, t));
	assert_false(record_transition_legal(REC_WAITING, REC_STATE_COUNT));
	assert_false(record_transition_legal(REC_STATE_COUNT, REC_WAITING));
}

static void test_insert(void **state)
{
	struct fx *f = *state;
	struct record r = { 0 }, g;
	struct err_info e = { 0 };
	char id[OTAGW_ID_MAX], h[256];

	mk(f->st, "t1", "d1", REC_WAITING, 0, 30, id);
	assert_int_equal(strlen(id), 32);
	get(f->st, id, &g);
	assert_int_equal(g.state, REC_WAITING);
	assert_int_equal(g.progress, 0);
	assert_int_equal(g.timeout_seconds, 30);
	assert_true(g.create_time > 0);
	assert_int_equal(g.update_time, g.create_time);
	assert_int_equal(g.upgrade_time, 0);
	assert_int_equal(g.complete_time, 0);
	assert_int_equal(hist_count(f->st, id), 1);
	hist_last(f->st, id, h, sizeof(h));
	assert_true(!strncmp(h, ">waiting|0||", 12));

	mk(f->st, "t1", "d2", REC_SUCCESS, 5000, 0, id);
	get(f->st, id, &g);
	assert_int_equal(g.state, REC_SUCCESS);
	assert_int_equal(g.create_time, 5000);
	assert_int_equal(g.complete_time, 5000);
	hist_last(f->st, id, h, sizeof(h));
	assert_string_equal(h, ">success|0||5000");

	/* Client-chosen id, then the same pair again. */
	S(r.id, "rec-1");
	S(r.task_id, "t2");
	S(r.device_id, "d1");
	S(r.version, "3.0");
	assert_int_equal(record_insert(f->st, &r, &e), 0);
	assert_string_equal(r.id, "rec-1");
	r.id[0] = '\0';
	assert_int_equal(record_insert(f->st, &r, &e), -EEXIST);
	assert_non_null(strstr(e.text, "d1"));

	r.id[0] = '\0';
	S(r.device_id, "d9");
	for (int s = REC_PROCESSING; s <= REC_STATE_COUNT; s++) {
		if (s == REC_SUCCESS)
			continue;
		r.state = (enum record_state)s;
		assert_int_equal(record_insert(f->st, &r, &e), -OTAGW_ESTATE);
	}
	r.state = REC_WAITING;
	r.progress = 101;
	assert_int_equal(record_insert(f->st, &r, &e), -EINVAL);
	r.progress = 0;
	S(r.task_id, "nope");
	assert_int_equal(record_insert(f->st, &r, &e), -ENOENT);
	S(r.task_id, "");
	assert_int_equal(record_insert(f->st, &r, &e), -EINVAL);
	S(r.task_id, "t1");
	S(r.id, "bad id");
	assert_int_equal(record_insert(f->st, &r, &e), -EINVAL);
	assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM record WHERE device_id = ?1", "d9"), 0);
}

static void test_every_legal_transition(void **state)
{
	struct fx *f = *state;

	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(legal); i++) {
		const char *fn = record_state_name(legal[i].from);
		const char *tn = record_state_name(legal[i].to);
		struct record_change why = { .progress = 40, .reason = "why", .time = 777000 };
		struct err_info e = { 0 };
		char id[OTAGW_ID_MAX], dev[64], h[256], want[256];
		struct record before, after;
		int64_t n;

		snprintf(dev, sizeof(dev), "d-%s-%s", fn, tn);
		mk_in(f->st, dev, legal[i].from, id);
		get(f->st, id, &before);
		n = hist_count(f->st, id);
		assert_int_equal(record_transition(f->st, id, legal[i].to, &why, &e), 0);
		assert_int_equal(hist_count(f->st, id), n + 1);
		hist_last(f->st, id, h, sizeof(h));
		snprintf(want, sizeof(want), "%s>%s|40|why|777000", fn, tn);
		assert_string_equal(h, want);
		get(f->st, id, &after);
		assert_int_equal(after.state, legal[i].to);
		assert_int_equal(after.progress, 40);
		assert_string_equal(after.error_reason, "why");
		assert_int_equal(after.update_time, 777000);
		assert_int_equal(after.create_time, before.create_time);
		assert_int_equal(after.upgrade_time,
				 legal[i].to == REC_PROCESSING ? 777000 : before.upgrade_time);
		/* back to processing or waiting (a retry): not complete */
		assert_int_equal(after.complete_time, legal[i].to == REC_PROCESSING ||
				 legal[i].to == REC_WAITING ? 0 : 777000);
	}
}

static void test_every_illegal_transition(void **state)
{
	struct fx *f = *state;
	int refused = 0;

	for (int from = 0; from < REC_STATE_COUNT; from++) {
		for (int to = 0; to < REC_STATE_COUNT; to++) {
			const char *fn = record_state_name(from), *tn = record_state_name(to);
			struct record_change why = { .progress = 50, .reason = "x", .time = 9 };
			struct err_info e = { 0 };
			struct record before, after;
			char id[OTAGW_ID_MAX], dev[64], want[64];
			int64_t n;

			if (is_legal(from, to))
				continue;
			snprintf(dev, sizeof(dev), "i-%s-%s", fn, tn);
			mk_in(f->st, dev, (enum record_state)from, id);
			get(f->st, id, &before);
			n = hist_count(f->st, id);
			assert_int_equal(record_transition(f->st, id, to, &why, &e), -OTAGW_ESTATE);
			assert_int_equal(e.code, -OTAGW_ESTATE);
			snprintf(want, sizeof(want), "%s -> %s", fn, tn);
			assert_non_null(strstr(e.text, want));
			assert_non_null(strstr(e.text, id));
			get(f->st, id, &after);
			assert_memory_equal(&before, &after, sizeof(before));
			assert_int_equal(hist_count(f->st, id), n);
			refused++;
		}
	}
	assert_int_equal(refused, REC_STATE_COUNT * REC_STATE_COUNT - (int)OTAGW_ARRAY_SIZE(legal));
}

static void test_timestamps(void **state)
{
	struct fx *f = *state;
	struct record r;
	char id[OTAGW_ID_MAX];
	int64_t t0 = util_now_ms(), t1;

	mk(f->st, "t1", "d1", REC_WAITING, 0, 0, id);
	move(f->st, id, REC_PROCESSING, 0);
	t1 = util_now_ms();
	get(f->st, id, &r);
	assert_true(r.create_time >= t0 && r.create_time <= t1);
	assert_true(r.upgrade_time >= r.create_time && r.upgrade_time <= t1);
	assert_int_equal(r.update_time, r.upgrade_time);
	assert_int_equal(r.complete_time, 0);
	move(f->st, id, REC_SUCCESS, t1 + 5000);
	get(f->st, id, &r);
	assert_true(r.upgrade_time <= t1);
	assert_int_equal(r.complete_time, t1 + 5000);
	assert_int_equal(r.update_time, t1 + 5000);
	assert_int_equal(r.progress, 0);           /* complete does not force 100 */
	assert_string_equal(r.error_reason, "");   /* NULL reason keeps it */

	/* NULL why: keep progress and reason, time now. */
	mk(f->st, "t1", "d2", REC_WAITING, 0, 0, id);
	assert_int_equal(record_transition(f->st, id, REC_CANCELED, NULL, NULL), 0);
	get(f->st, id, &r);
	assert_int_equal(r.state, REC_CANCELED);
	assert_true(r.complete_time >= t0);
	assert_int_equal(r.upgrade_time, 0);
}

static void test_progress(void **state)
{
	struct fx *f = *state;
	struct record_change why = { .progress = 101, .time = 1 };
	struct err_info e = { 0 };
	struct record r;
	char id[OTAGW_ID_MAX];
	int64_t n;

	mk(f->st, "t1", "d1", REC_WAITING, 0, 0, id);
	assert_int_equal(record_progress(f->st, id, 10, 0, &e), -OTAGW_ESTATE);
	assert_non_null(strstr(e.text, "waiting"));
	move(f->st, id, REC_PROCESSING, 1000);
	n = hist_count(f->st, id);
	assert_int_equal(record_progress(f->st, id, 55, 2000, &e), 0);
	get(f->st, id, &r);
	assert_int_equal(r.progress, 55);
	assert_int_equal(r.update_time, 2000);
	assert_int_equal(r.upgrade_time, 1000);
	assert_int_equal(hist_count(f->st, id), n);  /* not a state change */
	assert_int_equal(record_progress(f->st, id, 0, 2500, &e), 0);
	assert_int_equal(record_progress(f->st, id, 100, 3000, &e), 0);
	assert_int_equal(record_progress(f->st, id, -1, 4000, &e), -EINVAL);
	assert_int_equal(record_progress(f->st, id, 101, 4000, &e), -EINVAL);
	get(f->st, id, &r);
	assert_int_equal(r.progress, 100);
	assert_int_equal(r.update_time, 3000);
	assert_int_equal(record_transition(f->st, id, REC_SUCCESS, &why, &e), -EINVAL);
	move(f->st, id, REC_SUCCESS, 5000);
	assert_int_equal(record_progress(f->st, id, 10, 6000, &e), -OTAGW_ESTATE);
	assert_non_null(strstr(e.text, "success"));
	assert_int_equal(record_progress(f->st, "nope", 10, 6000, &e), -ENOENT);
}

static void test_expire(void **state)
{
	struct fx *f = *state;
	int64_t now = util_now_ms();
	char old[OTAGW_ID_MAX], none[OTAGW_ID_MAX], fresh[OTAGW_ID_MAX], wait[OTAGW_ID_MAX];
	char h[256], want[256];
	struct record r;
	int n = -1;

	mk(f->st, "t1", "d1", REC_WAITING, now - 5000, 1, old);
	move(f->st, old, REC_PROCESSING, now - 2000);
	mk(f->st, "t1", "d2", REC_WAITING, now - 5000, 0, none);
	move(f->st, none, REC_PROCESSING, now - 2000);
	mk(f->st, "t1", "d3", REC_WAITING, now - 5000, 1, fresh);
	move(f->st, fresh, REC_PROCESSING, now - 2000);
	assert_int_equal(record_progress(f->st, fresh, 5, now - 100, NULL), 0);
	mk(f->st, "t1", "d4", REC_WAITING, now - 5000, 1, wait);

	assert_int_equal(records_expire(f->st, now, &n), 0);
	assert_int_equal(n, 1);
	get(f->st, old, &r);
	assert_int_equal(r.state, REC_FAILED);
	assert_string_equal(r.error_reason, "timeout");
	assert_int_equal(r.complete_time, now);
	hist_last(f->st, old, h, sizeof(h));
	snprintf(want, sizeof(want), "processing>failed|0|timeout|%lld", (long long)now);
	assert_string_equal(h, want);
	get(f->st, none, &r);
	assert_int_equal(r.state, REC_PROCESSING);
	get(f->st, fresh, &r);
	assert_int_equal(r.state, REC_PROCESSING);
	get(f->st, wait, &r);
	assert_int_equal(r.state, REC_WAITING);

	/* Exactly on the deadline counts; a second run finds nothing more. */
	assert_int_equal(records_expire(f->st, now - 100 + 1000, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(records_expire(f->st, now + 10000, &n), 0);
	assert_int_equal(n, 0);
}

static void test_cancel(void **state)
{
	struct fx *f = *state;
	enum record_state states[] = { REC_WAITING, REC_PROCESSING, REC_SUCCESS, REC_FAILED,
				       REC_CANCELED };
	char ids[5][OTAGW_ID_MAX], other[OTAGW_ID_MAX], dev[16];
	struct err_info e = { 0 };
	struct record r;
	int n = -1;

	for (int i = 0; i < 5; i++) {
		snprintf(dev, sizeof(dev), "d%d", i);
		mk_in(f->st, dev, states[i], ids[i]);
	}
	mk(f->st, "t2", "d0", REC_WAITING, 0, 0, other);
	assert_int_equal(records_cancel(f->st, "t1", NULL, "stop", &n, &e), 0);
	assert_int_equal(n, 2);
	for (int i = 0; i < 5; i++) {
		get(f->st, ids[i], &r);
		assert_int_equal(r.state, i < 2 ? REC_CANCELED : states[i]);
		if (i < 2)
			assert_string_equal(r.error_reason, "stop");
	}
	get(f->st, other, &r);
	assert_int_equal(r.state, REC_WAITING);
	assert_int_equal(records_cancel(f->st, "t1", NULL, "stop", &n, &e), 0);
	assert_int_equal(n, 0);

	/* By device: every task's unfinished record of d0 and d7 only. */
	mk(f->st, "t3", "d0", REC_WAITING, 0, 0, ids[0]);
	move(f->st, ids[0], REC_PROCESSING, 0);
	mk(f->st, "t3", "d7", REC_WAITING, 0, 0, ids[1]);
	assert_int_equal(records_cancel(f->st, NULL, "d0", "device removed", &n, &e), 0);
	assert_int_equal(n, 2);
	get(f->st, other, &r);
	assert_int_equal(r.state, REC_CANCELED);
	assert_string_equal(r.error_reason, "device removed");
	get(f->st, ids[0], &r);
	assert_int_equal(r.state, REC_CANCELED);
	get(f->st, ids[1], &r);
	assert_int_equal(r.state, REC_WAITING);
	assert_int_equal(records_cancel(f->st, NULL, NULL, "x", &n, &e), -EINVAL);
}

static void test_find(void **state)
{
	struct fx *f = *state;
	char a[OTAGW_ID_MAX], b[OTAGW_ID_MAX], c[OTAGW_ID_MAX], x[OTAGW_ID_MAX];
	struct record r;

	mk(f->st, "t3", "d1", REC_WAITING, 3000, 0, c);   /* fw1 2.0 order 2, newer */
	mk(f->st, "t1", "d1", REC_WAITING, 1000, 0, a);   /* fw1 2.0 order 2, older */
	mk(f->st, "t2", "d1", REC_WAITING, 2000, 0, b);   /* fw2 3.0 order 3 */
	mk(f->st, "t1", "d2", REC_WAITING, 500, 0, x);

	assert_int_equal(record_find(f->st, "d1", REC_UNFINISHED, "", "", true, &r), 0);
	assert_string_equal(r.id, b);
	assert_int_equal(record_find(f->st, "d1", REC_UNFINISHED, NULL, NULL, false, &r), 0);
	assert_string_equal(r.id, a);
	assert_int_equal(record_find(f->st, "d1", REC_UNFINISHED, "3.0", "", false, &r), 0);
	assert_string_equal(r.id, b);
	assert_int_equal(record_find(f->st, "d1", REC_UNFINISHED, "", "fw1", true, &r), 0);
	assert_string_equal(r.id, a);
	assert_int_equal(record_find(f->st, "d1", REC_UNFINISHED, "2.0", "fw2", true, &r),
			 -ENOENT);
	assert_int_equal(record_find(f->st, "d1", REC_UNFINISHED, "9.9", "", true, &r), -ENOENT);

	move(f->st, b, REC_PROCESSING, 0);
	assert_int_equal(record_find(f->st, "d1", REC_MASK(REC_WAITING), "", "", true, &r), 0);
	assert_string_equal(r.id, a);
	assert_int_equal(record_find(f->st, "d1", REC_MASK(REC_PROCESSING), "", "", false, &r), 0);
	assert_string_equal(r.id, b);
	move(f->st, a, REC_CANCELED, 0);
	assert_int_equal(record_find(f->st, "d1", REC_MASK(REC_WAITING), "", "", false, &r), 0);
	assert_string_equal(r.id, c);
	assert_int_equal(record_find(f->st, "d1", REC_MASK(REC_CANCELED), "", "", false, &r), 0);
	assert_string_equal(r.id, a);
	assert_int_equal(record_find(f->st, "d1", REC_MASK(REC_FAILED), "", "", false, &r),
			 -ENOENT);
	assert_int_equal(record_find(f->st, "d1", 0, "", "", false, &r), -ENOENT);
	assert_int_equal(record_find(f->st, "nobody", REC_UNFINISHED, "", "", false, &r),
			 -ENOENT);
}

struct walk {
	char seen[8][OTAGW_ID_MAX];
	int n, stop_at;
};

static int walk_fn(struct store *st, const struct record *r, void *ctx)
{
	struct walk *w = ctx;

	util_strlcpy(w->seen[w->n++], r->device_id, OTAGW_ID_MAX);
	if (w->n == w->stop_at)
		return 42;
	/* Moving the record from inside the walk must work. */
	return record_transition(st, r->id, REC_PROCESSING, NULL, NULL);
}

static void test_each(void **state)
{
	struct fx *f = *state;
	char id[OTAGW_ID_MAX];
	struct walk w = { .stop_at = 0 };

	mk(f->st, "t1", "dc", REC_WAITING, 3000, 0, id);
	mk(f->st, "t1", "da", REC_WAITING, 1000, 0, id);
	mk(f->st, "t1", "db", REC_WAITING, 2000, 0, id);
	mk(f->st, "t1", "dd", REC_SUCCESS, 500, 0, id);
	mk(f->st, "t2", "da", REC_WAITING, 100, 0, id);

	assert_int_equal(records_each(f->st, "t1", NULL, REC_MASK(REC_WAITING), walk_fn, &w), 0);
	assert_int_equal(w.n, 3);
	assert_string_equal(w.seen[0], "da");
	assert_string_equal(w.seen[1], "db");
	assert_string_equal(w.seen[2], "dc");
	memset(&w, 0, sizeof(w));
	assert_int_equal(records_each(f->st, "t1", NULL, REC_MASK(REC_WAITING), walk_fn, &w), 0);
	assert_int_equal(w.n, 0);

	w.stop_at = 2;
	assert_int_equal(records_each(f->st, NULL, NULL, REC_MASK(REC_PROCESSING) |
				      REC_MASK(REC_WAITING), walk_fn, &w), 42);
	assert_int_equal(w.n, 2);
	assert_string_equal(w.seen[0], "da");   /* t2's, created first */
	memset(&w, 0, sizeof(w));
	w.stop_at = 99;
	assert_int_equal(records_each(f->st, NULL, "da", REC_MASK(REC_PROCESSING), walk_fn, &w),
			 -OTAGW_ESTATE);
}

static void test_list_and_counts(void **state)
{
	struct fx *f = *state;
	char id[OTAGW_ID_MAX], dev[16];
	int64_t counts[REC_STATE_COUNT], total = -1;
	cJSON *items = NULL;

	for (int i = 0; i < 25; i++) {
		snprintf(dev, sizeof(dev), "d%02d", i);
		mk(f->st, "t1", dev, i % 5 == 4 ? REC_SUCCESS : REC_WAITING, 1000 + i, 0, id);
		if (i % 5 == 1)
			move(f->st, id, REC_PROCESSING, 0);
		if (i % 5 == 2)
			move(f->st, id, REC_CANCELED, 0);
	}
	mk(f->st, "t2", "d00", REC_WAITING, 1, 0, id);

	assert_int_equal(records_counts(f->st, "t1", counts), 0);
	assert_int_equal(counts[REC_WAITING], 10);
	assert_int_equal(counts[REC_PROCESSING], 5);
	assert_int_equal(counts[REC_CANCELED], 5);
	assert_int_equal(counts[REC_SUCCESS], 5);
	assert_int_equal(counts[REC_FAILED], 0);
	assert_int_equal(records_counts(f->st, "t9", counts), 0);
	assert_int_equal(counts[REC_WAITING], 0);

	assert_int_equal(records_list(f->st, "t1", ~0u, 0, 10, &items, &total), 0);
	assert_int_equal(total, 25);
	assert_int_equal(cJSON_GetArraySize(items), 10);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "deviceId")
			    ->valuestring, "d00");
	cJSON_Delete(items);
	assert_int_equal(records_list(f->st, "t1", ~0u, 2, 10, &items, &total), 0);
	assert_int_equal(cJSON_GetArraySize(items), 5);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "deviceId")
			    ->valuestring, "d20");
	cJSON_Delete(items);
	assert_int_equal(records_list(f->st, "t1", ~0u, 3, 10, &items, &total), 0);
	assert_int_equal(cJSON_GetArraySize(items), 0);
	cJSON_Delete(items);
	assert_int_equal(records_list(f->st, "t1", REC_MASK(REC_PROCESSING), 0, 2, &items,
				      &total), 0);
	assert_int_equal(total, 5);
	assert_int_equal(cJSON_GetArraySize(items), 2);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 1), "deviceId")
			    ->valuestring, "d06");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 1), "state")
			    ->valuestring, "processing");
	cJSON_Delete(items);
	assert_int_equal(records_list(f->st, NULL, REC_MASK(REC_WAITING), 0, 0, &items, &total),
			 0);
	assert_int_equal(total, 11);
	assert_int_equal(cJSON_GetArraySize(items), 11);
	cJSON_Delete(items);
}

static void test_history(void **state)
{
	struct fx *f = *state;
	struct record_change why = { .progress = 30, .reason = "bad", .time = 3000 };
	char a[OTAGW_ID_MAX], b[OTAGW_ID_MAX];
	cJSON *items = NULL, *it;
	int64_t total = -1;

	mk(f->st, "t1", "d1", REC_WAITING, 1000, 0, a);
	move(f->st, a, REC_PROCESSING, 2000);
	assert_int_equal(record_transition(f->st, a, REC_FAILED, &why, NULL), 0);
	mk(f->st, "t2", "d1", REC_WAITING, 4000, 0, b);
	mk(f->st, "t2", "d2", REC_WAITING, 4000, 0, b);

	assert_int_equal(records_history(f->st, NULL, a, 0, 10, &items, &total), 0);
	assert_int_equal(total, 3);
	assert_int_equal(cJSON_GetArraySize(items), 3);
	it = cJSON_GetArrayItem(items, 0);
	assert_string_equal(cJSON_GetObjectItem(it, "from")->valuestring, "processing");
	assert_string_equal(cJSON_GetObjectItem(it, "to")->valuestring, "failed");
	assert_string_equal(cJSON_GetObjectItem(it, "reason")->valuestring, "bad");
	assert_int_equal(cJSON_GetObjectItem(it, "progress")->valueint, 30);
	assert_int_equal(cJSON_GetObjectItem(it, "time")->valuedouble, 3000);
	assert_string_equal(cJSON_GetObjectItem(it, "recordId")->valuestring, a);
	assert_string_equal(cJSON_GetObjectItem(it, "taskId")->valuestring, "t1");
	assert_string_equal(cJSON_GetObjectItem(it, "deviceId")->valuestring, "d1");
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(it, "id")));
	it = cJSON_GetArrayItem(items, 2);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(it, "from")));
	assert_string_equal(cJSON_GetObjectItem(it, "to")->valuestring, "waiting");
	cJSON_Delete(items);

	assert_int_equal(records_history(f->st, "d1", NULL, 0, 2, &items, &total), 0);
	assert_int_equal(total, 4);
	assert_int_equal(cJSON_GetArraySize(items), 2);
	it = cJSON_GetArrayItem(items, 0);
	assert_string_equal(cJSON_GetObjectItem(it, "taskId")->valuestring, "t2");
	cJSON_Delete(items);
	assert_int_equal(records_history(f->st, "d1", NULL, 1, 2, &items, &total), 0);
	assert_int_equal(cJSON_GetArraySize(items), 2);
	it = cJSON_GetArrayItem(items, 1);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(it, "from")));
	cJSON_Delete(items);
	assert_int_equal(records_history(f->st, "nobody", NULL, 0, 2, &items, &total), 0);
	assert_int_equal(total, 0);
	assert_int_equal(cJSON_GetArraySize(items), 0);
	cJSON_Delete(items);
	assert_int_equal(records_history(f->st, NULL, NULL, 0, 2, &items, &total), -EINVAL);
}

static void test_unknown(void **state)
{
	struct fx *f = *state;
	struct err_info e = { 0 };
	struct record r;

	assert_int_equal(record_get(f->st, "nope", &r), -ENOENT);
	assert_int_equal(record_transition(f->st, "nope", REC_PROCESSING, NULL, &e), -ENOENT);
	assert_non_null(strstr(e.text, "nope"));
	assert_int_equal(record_progress(f->st, "nope", 1, 0, &e), -ENOENT);
	assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM record_history WHERE ?1 IS NULL",
			       NULL), 0);
	assert_int_equal(q_int(f->st, "SELECT COUNT(*) FROM record WHERE ?1 IS NULL", NULL), 0);
}

static void test_to_json(void **state)
{
	static const char *const keys[] = {
		"id", "taskId", "deviceId", "firmwareId", "version", "versionOrder", "state",
		"progress", "errorReason", "createTime", "upgradeTime", "completeTime",
		"updateTime", "timeoutSeconds", "wave", "retries",
	};
	struct fx *f = *state;
	char id[OTAGW_ID_MAX];
	struct record r;
	cJSON *o;

	mk(f->st, "t2", "d1", REC_WAITING, 1234, 60, id);
	get(f->st, id, &r);
	o = record_to_json(&r);
	assert_non_null(o);
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(keys); i++)
		assert_non_null(cJSON_GetObjectItem(o, keys[i]));
	assert_int_equal(cJSON_GetArraySize(o), OTAGW_ARRAY_SIZE(keys));
	assert_string_equal(cJSON_GetObjectItem(o, "state")->valuestring, "waiting");
	assert_string_equal(cJSON_GetObjectItem(o, "version")->valuestring, "3.0");
	assert_int_equal(cJSON_GetObjectItem(o, "versionOrder")->valueint, 3);
	assert_int_equal(cJSON_GetObjectItem(o, "timeoutSeconds")->valueint, 60);
	assert_int_equal(cJSON_GetObjectItem(o, "createTime")->valuedouble, 1234);
	cJSON_Delete(o);
}

/* ---- observers (store_add_events) and the census for /metrics ---------- */

struct obs_log {
	char text[512];
	int fail_changed;       /* return this from record_changed */
};

static void obs_note(struct obs_log *l, const char *what)
{
	size_t n = strlen(l->text);

	snprintf(l->text + n, sizeof(l->text) - n, "%s;", what);
}

static int obs_a_changed(void *arg, struct store *st, const struct record *r, const char *from)
{
	struct obs_log *l = arg;
	char b[96];

	snprintf(b, sizeof(b), "a:%s>%s", from, record_state_name(r->state));
	obs_note(l, b);
	return l->fail_changed;
}

static int obs_b_changed(void *arg, struct store *st, const struct record *r, const char *from)
{
	obs_note(arg, "b");
	return 0;
}

static int obs_b_progress(void *arg, struct store *st, const char *id, int progress, int64_t t)
{
	char b[32];

	snprintf(b, sizeof(b), "b:%d", progress);
	obs_note(arg, b);
	return 0;
}

static const struct store_events obs_a = { .record_changed = obs_a_changed };
static const struct store_events obs_b = { .record_changed = obs_b_changed,
					   .record_progress = obs_b_progress };

static void test_observers(void **state)
{
	struct fx *f = *state;
	struct obs_log l = { .text = "" };
	struct record_change why = { .progress = -1, .time = 5 };
	struct err_info e = { 0 };
	struct record r;
	char id[OTAGW_ID_MAX];

	assert_int_equal(store_add_events(f->st, &obs_a, &l), 0);
	assert_int_equal(store_add_events(f->st, &obs_b, &l), 0);
	mk(f->st, "t1", "d1", REC_WAITING, 1, 0, id);
	move(f->st, id, REC_PROCESSING, 2);
	assert_int_equal(record_progress(f->st, id, 30, 3, &e), 0);
	/* in the order added; a member left NULL is skipped */
	assert_string_equal(l.text, "a:>waiting;b;a:waiting>processing;b;b:30;");
	/* the first observer failing rolls the change back; the second is not asked */
	l.text[0] = '\0';
	l.fail_changed = -EIO;
	assert_int_not_equal(record_transition(f->st, id, REC_SUCCESS, &why, &e), 0);
	assert_string_equal(l.text, "a:processing>success;");
	assert_int_equal(record_get(f->st, id, &r), 0);
	assert_int_equal(r.state, REC_PROCESSING);
	/* removed: no longer called */
	l.text[0] = '\0';
	l.fail_changed = 0;
	store_remove_events(f->st, &obs_a, &l);
	store_remove_events(f->st, &obs_a, &l);     /* twice is harmless */
	move(f->st, id, REC_SUCCESS, 6);
	assert_string_equal(l.text, "b;");
	store_remove_events(f->st, &obs_b, &l);
	for (int i = 0; i < STORE_OBSERVERS_MAX; i++)
		assert_int_equal(store_add_events(f->st, &obs_b, &l), 0);
	assert_int_equal(store_add_events(f->st, &obs_b, &l), -ENOSPC);
	for (int i = 0; i < STORE_OBSERVERS_MAX; i++)
		store_remove_events(f->st, &obs_b, &l);
}

struct census_row {
	char task[OTAGW_ID_MAX];
	int64_t counts[REC_STATE_COUNT];
};

struct census_log {
	size_t n;
	struct census_row rows[8];
};

static void census_fn(void *ctx, const char *task_id, const int64_t counts[REC_STATE_COUNT])
{
	struct census_log *c = ctx;

	assert_true(c->n < OTAGW_ARRAY_SIZE(c->rows));
	S(c->rows[c->n].task, task_id);
	memcpy(c->rows[c->n++].counts, counts, sizeof(int64_t) * REC_STATE_COUNT);
}

static void test_census(void **state)
{
	struct fx *f = *state;
	struct census_log c = { 0 };
	char id[OTAGW_ID_MAX];

	assert_int_equal(records_census(f->st, 10, census_fn, &c), 0);
	assert_int_equal(c.n, 0);
	mk(f->st, "t1", "d1", REC_WAITING, 1, 0, id);
	mk(f->st, "t1", "d2", REC_WAITING, 1, 0, id);
	move(f->st, id, REC_PROCESSING, 2);
	mk(f->st, "t3", "d1", REC_SUCCESS, 1, 0, id);
	mk(f->st, "t2", "d9", REC_WAITING, 1, 0, id);
	assert_int_equal(records_census(f->st, 10, census_fn, &c), 0);
	/* newest task first (t3 created at 3, t2 at 2, t1 at 1), one row each */
	assert_int_equal(c.n, 3);
	assert_string_equal(c.rows[0].task, "t3");
	assert_int_equal(c.rows[0].counts[REC_SUCCESS], 1);
	assert_int_equal(c.rows[0].counts[REC_WAITING], 0);
	assert_string_equal(c.rows[1].task, "t2");
	assert_int_equal(c.rows[1].counts[REC_WAITING], 1);
	assert_string_equal(c.rows[2].task, "t1");
	assert_int_equal(c.rows[2].counts[REC_WAITING], 1);
	assert_int_equal(c.rows[2].counts[REC_PROCESSING], 1);
	/* at most max tasks: the newest */
	c.n = 0;
	assert_int_equal(records_census(f->st, 1, census_fn, &c), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.rows[0].task, "t3");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_legal_table),
		T(test_insert),
		T(test_every_legal_transition),
		T(test_every_illegal_transition),
		T(test_timestamps),
		T(test_progress),
		T(test_expire),
		T(test_cancel),
		T(test_find),
		T(test_each),
		T(test_list_and_counts),
		T(test_history),
		T(test_unknown),
		T(test_to_json),
		T(test_observers),
		T(test_census),
	};

	gw_log_setup(LOG_LVL_WARN, 0, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
