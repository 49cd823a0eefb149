/* SPDX-License-Identifier: MIT */
/* test_rollout.c - rollout policies with the clock injected: parsing and
 * its errors, the JSON round trip, maintenance windows opening and closing
 * (same day, past midnight, day filters, the wait until the next one),
 * waves by explicit ids and percentages, the start gate (schedule, window,
 * wave, slots, pause), and the judge: failure threshold pause, next wave,
 * a wave that cannot reach its success threshold, retries after their
 * delay, all against a real SQLite store in a mkdtemp dir. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "records.h"
#include "rollout.h"
#include "store.h"
#include "util.h"

struct fx {
	char dir[64];
	char path[128];
	struct store *st;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct err_info e = { 0 };

	assert_non_null(f);
	util_strlcpy(f->dir, "/tmp/otagw-rollout-XXXXXX", sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/otagw.db", f->dir);
	assert_int_equal(store_open(&f->st, f->path, &e), 0);
	assert_int_equal(sqlite3_exec(store_db(f->st),
		"INSERT INTO firmware (id, product_id, name, version, version_order, create_time,"
		" update_time) VALUES ('fw1', 'p1', 'fw', '2.0', 2, 1, 1);"
		"INSERT INTO task (id, firmware_id, product_id, name, mode, create_time, state)"
		" VALUES ('t1', 'fw1', 'p1', 'one', 'push', 1, 'published');",
		NULL, NULL, NULL), SQLITE_OK);
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

static int parse_text(const char *text, struct rollout *r, struct err_info *e)
{
	cJSON *o = cJSON_Parse(text);
	int rc;

	assert_non_null(o);
	rc = rollout_parse(o, r, e);
	cJSON_Delete(o);
	return rc;
}

/* A local time: wday 0 = Sunday. */
static struct tm at(int wday, int hour, int min)
{
	struct tm tm = { 0 };

	tm.tm_wday = wday;
	tm.tm_hour = hour;
	tm.tm_min = min;
	return tm;
}

static void test_parse_and_round_trip(void **state)
{
	struct rollout r, back;
	struct err_info e = { 0 };
	cJSON *o;
	char *text;

	assert_int_equal(parse_text("{\"maxConcurrent\":10,\"waves\":[{\"devices\":[\"a\",\"b\"]},"
				    "{\"percent\":50}],\"successThreshold\":80,\"failureThreshold\":20,"
				    "\"window\":{\"days\":[\"mon\",\"fri\"],\"from\":\"22:00\",\"to\":\"05:30\"},"
				    "\"retries\":{\"count\":3,\"delaySeconds\":30},\"startTime\":1000}",
				    &r, &e), 0);
	assert_true(r.set);
	assert_int_equal(r.max_concurrent, 10);
	assert_int_equal(r.nwaves, 2);
	assert_int_equal(r.waves[0].n, 2);
	assert_string_equal(r.waves[0].devices[1], "b");
	assert_int_equal(r.waves[1].percent, 50);
	assert_int_equal(r.success_threshold, 80);
	assert_int_equal(r.failure_threshold, 20);
	assert_int_equal(r.nwindows, 1);
	assert_int_equal(r.windows[0].days, (1 << 1) | (1 << 5));
	assert_int_equal(r.windows[0].from_min, 22 * 60);
	assert_int_equal(r.windows[0].to_min, 5 * 60 + 30);
	assert_int_equal(r.retries, 3);
	assert_int_equal(r.retry_delay_s, 30);
	assert_int_equal(r.start_time, 1000);
	o = rollout_to_json(&r);
	text = cJSON_PrintUnformatted(o);
	assert_int_equal(rollout_load(text, &back), 0);
	assert_int_equal(back.max_concurrent, 10);
	assert_int_equal(back.windows[0].days, r.windows[0].days);
	assert_int_equal(back.windows[0].to_min, r.windows[0].to_min);
	assert_string_equal(back.waves[0].devices[0], "a");
	assert_int_equal(back.failure_threshold, 20);
	free(text);
	cJSON_Delete(o);
	rollout_clear(&back);
	rollout_clear(&r);
	/* defaults: no cap, 100 % success, never pause */
	assert_int_equal(parse_text("{}", &r, &e), 0);
	assert_true(r.set);
	assert_int_equal(r.max_concurrent, 0);
	assert_int_equal(r.success_threshold, 100);
	assert_int_equal(r.failure_threshold, -1);
	rollout_clear(&r);
	assert_int_equal(rollout_parse(NULL, &r, &e), 0);
	assert_false(r.set);
	assert_int_equal(rollout_load("", &r), 0);
	assert_false(r.set);
	assert_int_equal(rollout_load("{not json", &r), -EIO);
}

static void test_parse_errors(void **state)
{
	static const char *const bad[] = {
		"[]", "{\"maxConcurrent\":-1}", "{\"maxConcurrent\":1.5}", "{\"waves\":[]}",
		"{\"waves\":[{}]}", "{\"waves\":[{\"percent\":101}]}",
		"{\"waves\":[{\"percent\":5,\"devices\":[\"a\"]}]}", "{\"waves\":[{\"devices\":[]}]}",
		"{\"waves\":[{\"devices\":[\"a b\"]}]}", "{\"waves\":[{\"devices\":[\"a\"],\"x\":1}]}",
		"{\"successThreshold\":-1}", "{\"failureThreshold\":0}",
		"{\"window\":[]}", "{\"window\":{\"from\":\"1:00\",\"to\":\"02:00\"}}",
		"{\"window\":{\"from\":\"24:00\",\"to\":\"02:00\"}}",
		"{\"window\":{\"from\":\"01:60\",\"to\":\"02:00\"}}",
		"{\"window\":{\"from\":\"02:00\",\"to\":\"02:00\"}}",
		"{\"window\":{\"from\":\"01:00\",\"to\":\"02:00\",\"days\":[]}}",
		"{\"window\":{\"from\":\"01:00\",\"to\":\"02:00\",\"days\":[\"Mon\"]}}",
		"{\"retries\":{}}", "{\"retries\":{\"count\":101}}",
		"{\"retries\":{\"count\":1,\"delaySeconds\":-5}}", "{\"startTime\":\"soon\"}",
		"{\"other\":1}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rollout r;
		struct err_info e = { 0 };

		if (parse_text(bad[i], &r, &e) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_true(e.text[0] != '\0');
		assert_false(r.set);   /* cleared on failure */
	}
}

static void test_windows(void **state)
{
	struct rollout r;
	struct err_info e = { 0 };
	struct tm tm;

	/* 22:00-05:30 Monday and Friday nights */
	assert_int_equal(parse_text("{\"window\":{\"days\":[\"mon\",\"fri\"],\"from\":\"22:00\","
				    "\"to\":\"05:30\"}}", &r, &e), 0);
	tm = at(1, 21, 59);
	assert_false(rollout_window_open(&r, &tm));
	assert_int_equal(rollout_window_wait(&r, &tm), 60);
	tm = at(1, 22, 0);
	assert_true(rollout_window_open(&r, &tm));          /* opens */
	assert_int_equal(rollout_window_wait(&r, &tm), 0);
	tm = at(2, 5, 29);
	assert_true(rollout_window_open(&r, &tm));          /* past midnight, Tuesday */
	tm = at(2, 5, 30);
	assert_false(rollout_window_open(&r, &tm));         /* closes */
	tm = at(2, 23, 0);
	assert_false(rollout_window_open(&r, &tm));         /* not a Tuesday night */
	/* Tuesday 05:30 -> Friday 22:00: 3 days 16 h 30 min */
	tm = at(2, 5, 30);
	assert_int_equal(rollout_window_wait(&r, &tm), ((3 * 24 + 16) * 60 + 30) * 60);
	tm = at(6, 3, 0);
	assert_true(rollout_window_open(&r, &tm));          /* Saturday early: Friday's night */
	rollout_clear(&r);
	/* two windows, same day; 24:00 as an end */
	assert_int_equal(parse_text("{\"window\":[{\"from\":\"08:00\",\"to\":\"09:00\"},"
				    "{\"from\":\"23:00\",\"to\":\"24:00\"}]}", &r, &e), 0);
	tm = at(3, 8, 30);
	assert_true(rollout_window_open(&r, &tm));
	tm = at(3, 9, 0);
	assert_false(rollout_window_open(&r, &tm));
	tm.tm_sec = 15;
	assert_int_equal(rollout_window_wait(&r, &tm), 14 * 3600 - 15);
	tm = at(3, 23, 59);
	assert_true(rollout_window_open(&r, &tm));
	tm = at(4, 0, 0);
	assert_false(rollout_window_open(&r, &tm));
	rollout_clear(&r);
	/* no window: always open */
	rollout_init(&r);
	tm = at(0, 12, 0);
	assert_true(rollout_window_open(&r, &tm));
	assert_int_equal(rollout_window_wait(&r, &tm), 0);
}

/* Inserts records of t1 for devices d00..d(n-1) (waiting). */
static void mk_records(struct store *st, int n)
{
	for (int i = 0; i < n; i++) {
		struct record r = { 0 };
		struct err_info e = { 0 };

		snprintf(r.device_id, sizeof(r.device_id), "d%02d", i);
		util_strlcpy(r.task_id, "t1", sizeof(r.task_id));
		util_strlcpy(r.firmware_id, "fw1", sizeof(r.firmware_id));
		util_strlcpy(r.version, "2.0", sizeof(r.version));
		r.state = REC_WAITING;
		r.create_time = 1;
		assert_int_equal(record_insert(st, &r, &e), 0);
	}
}

static int wave_of(struct store *st, const char *device)
{
	struct record r;

	assert_int_equal(record_find(st, device, ~0u, NULL, NULL, true, &r), 0);
	return r.wave;
}

static void test_waves(void **state)
{
	struct fx *f = *state;
	struct rollout r;
	struct err_info e = { 0 };

	mk_records(f->st, 10);
	/* d09 and d00 listed first; the other 8 split 25 % / 25 % / rest */
	assert_int_equal(parse_text("{\"waves\":[{\"devices\":[\"d09\",\"d00\"]},{\"percent\":25},"
				    "{\"percent\":25},{\"percent\":50}]}", &r, &e), 0);
	assert_int_equal(rollout_assign_waves(f->st, "t1", &r), 0);
	assert_int_equal(wave_of(f->st, "d00"), 0);
	assert_int_equal(wave_of(f->st, "d09"), 0);
	assert_int_equal(wave_of(f->st, "d01"), 1);
	assert_int_equal(wave_of(f->st, "d02"), 1);
	assert_int_equal(wave_of(f->st, "d03"), 2);
	assert_int_equal(wave_of(f->st, "d04"), 2);
	for (int i = 5; i < 9; i++) {
		char id[8];

		snprintf(id, sizeof(id), "d%02d", i);
		assert_int_equal(wave_of(f->st, id), 3);
	}
	rollout_clear(&r);
	/* percents that add up to less than 100: the rest in the last wave */
	assert_int_equal(parse_text("{\"waves\":[{\"percent\":10},{\"percent\":10}]}", &r, &e), 0);
	assert_int_equal(rollout_assign_waves(f->st, "t1", &r), 0);
	assert_int_equal(wave_of(f->st, "d00"), 0);
	assert_int_equal(wave_of(f->st, "d01"), 1);
	assert_int_equal(wave_of(f->st, "d09"), 1);
	rollout_clear(&r);
}

static void move(struct store *st, const char *device, enum record_state to, int64_t t)
{
	struct record r;
	struct err_info e = { 0 };

	assert_int_equal(record_find(st, device, ~0u, NULL, NULL, true, &r), 0);
	if (record_transition(st, r.id, to, &(struct record_change){ .progress = -1,
								      .time = t }, &e))
		fail_msg("%s -> %s: %s", device, record_state_name(to), e.text);
}

static void test_gate(void **state)
{
	struct fx *f = *state;
	struct rollout_task t = { .id = "t1", .published = true, .push = true };
	struct rollout_verdict v;
	struct err_info e = { 0 };
	struct tm tm = at(1, 23, 0);
	int64_t now = 1000000;

	mk_records(f->st, 3);
	assert_int_equal(parse_text("{\"maxConcurrent\":2,\"startTime\":1005000,\"window\":"
				    "{\"from\":\"22:00\",\"to\":\"06:00\"}}", &t.policy, &e), 0);
	/* before the start time */
	assert_int_equal(rollout_may_start(f->st, &t, 0, now, &tm, &v), 0);
	assert_false(v.go);
	assert_true(v.none_may);
	assert_int_equal(v.retry_after, 5);
	assert_non_null(strstr(v.why, "scheduled"));
	/* started, inside the window */
	now = 1005000;
	assert_int_equal(rollout_may_start(f->st, &t, 0, now, &tm, &v), 0);
	assert_true(v.go);
	/* the window closes at 06:00: nothing new starts */
	tm = at(2, 6, 0);
	assert_int_equal(rollout_may_start(f->st, &t, 0, now, &tm, &v), 0);
	assert_false(v.go);
	assert_non_null(strstr(v.why, "maintenance window"));
	assert_int_equal(v.retry_after, 3600);   /* 16 h away, capped */
	tm = at(2, 21, 58);
	assert_int_equal(rollout_may_start(f->st, &t, 0, now, &tm, &v), 0);
	assert_int_equal(v.retry_after, 120);
	/* the window opens again */
	tm = at(2, 22, 0);
	assert_int_equal(rollout_may_start(f->st, &t, 0, now, &tm, &v), 0);
	assert_true(v.go);
	/* a later wave waits; the current one goes */
	assert_int_equal(rollout_may_start(f->st, &t, 1, now, &tm, &v), 0);
	assert_false(v.go);
	assert_false(v.none_may);
	assert_non_null(strstr(v.why, "wave 2"));
	/* slots: two processing fill the cap */
	move(f->st, "d00", REC_PROCESSING, now);
	assert_int_equal(rollout_may_start(f->st, &t, 0, now, &tm, &v), 0);
	assert_true(v.go);
	move(f->st, "d01", REC_PROCESSING, now);
	assert_int_equal(rollout_may_start(f->st, &t, 0, now, &tm, &v), 0);
	assert_false(v.go);
	assert_true(v.none_may);
	assert_non_null(strstr(v.why, "2 upgrade slots"));
	move(f->st, "d01", REC_SUCCESS, now);
	assert_int_equal(rollout_may_start(f->st, &t, 0, now, &tm, &v), 0);
	assert_true(v.go);
	/* paused */
	t.paused = true;
	assert_int_equal(rollout_may_start(f->st, &t, 0, now, &tm, &v), 0);
	assert_false(v.go);
	assert_non_null(strstr(v.why, "paused"));
	rollout_clear(&t.policy);
	/* no policy: always */
	rollout_init(&t.policy);
	assert_int_equal(rollout_may_start(f->st, &t, 5, now, &tm, &v), 0);
	assert_true(v.go);
}

static int64_t task_int(struct store *st, const char *col)
{
	char sql[96];
	sqlite3_stmt *s;
	int64_t v;

	snprintf(sql, sizeof(sql), "SELECT %s FROM task WHERE id = 't1'", col);
	assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static void test_judge(void **state)
{
	struct fx *f = *state;
	struct rollout_task t = { .id = "t1", .published = true, .push = true };
	struct err_info e = { 0 };
	bool changed;
	int64_t now = 5000000;

	/* 10 devices: waves of 2 / 8, next wave at 100 %, pause at 25 % failed */
	mk_records(f->st, 10);
	assert_int_equal(parse_text("{\"waves\":[{\"percent\":20},{\"percent\":80}],"
				    "\"failureThreshold\":25}", &t.policy, &e), 0);
	assert_int_equal(rollout_assign_waves(f->st, "t1", &t.policy), 0);
	assert_int_equal(rollout_step(f->st, &t, now, &changed, &e), 0);
	assert_false(changed);
	move(f->st, "d00", REC_PROCESSING, now);
	move(f->st, "d00", REC_SUCCESS, now);
	assert_int_equal(rollout_step(f->st, &t, now, &changed, &e), 0);
	assert_false(changed);                  /* 1 of 2: not yet */
	move(f->st, "d01", REC_PROCESSING, now);
	move(f->st, "d01", REC_SUCCESS, now);
	assert_int_equal(rollout_step(f->st, &t, now, &changed, &e), 0);
	assert_true(changed);                   /* wave 2 starts */
	assert_int_equal(task_int(f->st, "wave"), 1);
	t.wave = 1;
	/* wave 2 (8 devices): one failure is 12.5 %, two are 25 % */
	move(f->st, "d02", REC_PROCESSING, now);
	move(f->st, "d02", REC_FAILED, now);
	assert_int_equal(rollout_step(f->st, &t, now, &changed, &e), 0);
	assert_false(changed);
	/* the success threshold (100 %) can no longer be reached... but the
	 * failure threshold is judged first and is not crossed yet */
	assert_int_equal(task_int(f->st, "paused"), 0);
	move(f->st, "d03", REC_PROCESSING, now);
	move(f->st, "d03", REC_FAILED, now);
	assert_int_equal(rollout_step(f->st, &t, now, &changed, &e), 0);
	assert_true(changed);
	assert_int_equal(task_int(f->st, "paused"), 1);
	rollout_clear(&t.policy);
}

static void test_cannot_reach_and_retries(void **state)
{
	struct fx *f = *state;
	struct rollout_task t = { .id = "t1", .published = true, .push = true };
	struct err_info e = { 0 };
	struct record r;
	bool changed;
	int64_t now = 9000000;

	mk_records(f->st, 4);
	/* two waves of two; 100 % needed; one retry after 30 s */
	assert_int_equal(parse_text("{\"waves\":[{\"percent\":50},{\"percent\":50}],"
				    "\"retries\":{\"count\":1,\"delaySeconds\":30}}", &t.policy, &e), 0);
	assert_int_equal(rollout_assign_waves(f->st, "t1", &t.policy), 0);
	move(f->st, "d00", REC_PROCESSING, now);
	move(f->st, "d00", REC_FAILED, now);
	/* a failure with a retry left does not make the wave hopeless */
	assert_int_equal(rollout_step(f->st, &t, now + 29000, &changed, &e), 0);
	assert_false(changed);
	assert_int_equal(record_find(f->st, "d00", ~0u, NULL, NULL, true, &r), 0);
	assert_int_equal(r.state, REC_FAILED);
	/* the delay is over: back to waiting, counted */
	assert_int_equal(rollout_step(f->st, &t, now + 30000, &changed, &e), 0);
	assert_true(changed);
	assert_int_equal(record_find(f->st, "d00", ~0u, NULL, NULL, true, &r), 0);
	assert_int_equal(r.state, REC_WAITING);
	assert_int_equal(r.attempts, 1);
	assert_string_equal(r.error_reason, "retry 1 of 1");
	/* fails again: no retry left, the wave cannot reach 100 %: paused */
	move(f->st, "d00", REC_PROCESSING, now + 31000);
	move(f->st, "d00", REC_FAILED, now + 32000);
	assert_int_equal(rollout_step(f->st, &t, now + 100000, &changed, &e), 0);
	assert_true(changed);
	assert_int_equal(task_int(f->st, "paused"), 1);
	assert_int_equal(record_find(f->st, "d00", ~0u, NULL, NULL, true, &r), 0);
	assert_int_equal(r.state, REC_FAILED);
	/* paused: the judge does nothing more */
	t.paused = true;
	assert_int_equal(rollout_step(f->st, &t, now + 200000, &changed, &e), 0);
	assert_false(changed);
	rollout_clear(&t.policy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_round_trip),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_windows),
		cmocka_unit_test_setup_teardown(test_waves, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_gate, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_judge, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_cannot_reach_and_retries, fx_setup, fx_teardown),
	};

	gw_log_setup(LOG_LVL_WARN, 0, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
