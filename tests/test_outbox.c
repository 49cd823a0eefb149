/* SPDX-License-Identifier: MIT */
/* test_outbox.c - the cloud outbox on a real SQLite file, fed by the store's
 * observer hook: frames in seq order in the same transaction as the change,
 * a rolled-back change leaves no frame, progress coalesced per record and
 * flushed per task with counts, acks, renumbering, and seq never reused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msg.h"
#include "outbox.h"
#include "records.h"
#include "store.h"
#include "util.h"

#define S(dst, src) util_strlcpy(dst, src, sizeof(dst))

struct fx {
	char dir[64];
	char path[128];
	struct store *st;
	struct outbox *ob;
};

static const char fx_seed[] =
	"INSERT INTO firmware (id, product_id, name, version, version_order, create_time,"
	" update_time) VALUES ('fw1', 'p1', 'fw', '2.0', 2, 1, 1);"
	"INSERT INTO task (id, firmware_id, product_id, name, mode, create_time) VALUES"
	" ('t1', 'fw1', 'p1', 'one', 'push', 1), ('t2', 'fw1', 'p1', 'two', 'pull', 2);";

static int fx_open(struct fx *f)
{
	struct err_info e = { 0 };

	if (store_open(&f->st, f->path, &e) || outbox_new(&f->ob, f->st, "gw1", &e))
		return -1;
	assert_int_equal(store_add_events(f->st, &outbox_events, f->ob), 0);
	return 0;
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	S(f->dir, "/tmp/otagw-outbox-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/otagw.db", f->dir);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(sqlite3_exec(store_db(f->st), fx_seed, NULL, NULL, NULL), SQLITE_OK);
	*state = f;
	return 0;
}

static void fx_close(struct fx *f)
{
	store_remove_events(f->st, &outbox_events, f->ob);
	outbox_free(f->ob);
	store_close(f->st);
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	char p[160];

	fx_close(f);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void mk(struct fx *f, const char *task, const char *device, char id[OTAGW_ID_MAX])
{
	struct record r = { 0 };
	struct err_info e = { 0 };

	S(r.task_id, task);
	S(r.device_id, device);
	S(r.firmware_id, "fw1");
	S(r.version, "2.0");
	r.state = REC_WAITING;
	assert_int_equal(record_insert(f->st, &r, &e), 0);
	util_strlcpy(id, r.id, OTAGW_ID_MAX);
}

static void move(struct fx *f, const char *id, enum record_state to, const char *reason)
{
	struct record_change why = { .progress = -1, .reason = reason };
	struct err_info e = { 0 };

	if (record_transition(f->st, id, to, &why, &e))
		fail_msg("%s: %s", id, e.text);
}

/* Reads the frame after seq `after` into a cJSON object (caller deletes). */
static cJSON *next(struct fx *f, uint64_t after, uint64_t *seq)
{
	char *frame = NULL;
	size_t len = 0;
	cJSON *o;

	assert_int_equal(outbox_next(f->ob, after, &frame, &len, seq), 0);
	assert_int_equal(strlen(frame), len);
	o = cJSON_ParseWithLength(frame, len);
	free(frame);
	assert_non_null(o);
	assert_int_equal((uint64_t)cJSON_GetObjectItem(o, "seq")->valuedouble, *seq);
	return o;
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_state_changes_in_order(void **state)
{
	struct fx *f = *state;
	char id[OTAGW_ID_MAX];
	static const char *const want[][2] = {
		{ NULL, "waiting" }, { "waiting", "processing" }, { "processing", "failed" },
	};
	uint64_t seq = 0, prev = 0;
	int64_t frames, prog;

	mk(f, "t1", "d1", id);
	move(f, id, REC_PROCESSING, NULL);
	move(f, id, REC_FAILED, "timeout");
	for (size_t i = 0; i < 3; i++) {
		cJSON *o = next(f, prev, &seq);

		assert_true(seq > prev);
		assert_string_equal(str(o, "messageType"), "RECORD_STATE");
		assert_string_equal(str(o, "recordId"), id);
		assert_string_equal(str(o, "deviceId"), "d1");
		assert_string_equal(str(o, "taskId"), "t1");
		if (want[i][0])
			assert_string_equal(str(o, "from"), want[i][0]);
		else
			assert_null(cJSON_GetObjectItem(o, "from"));
		assert_string_equal(str(o, "to"), want[i][1]);
		if (i == 2)
			assert_string_equal(str(o, "errorReason"), "timeout");
		cJSON_Delete(o);
		prev = seq;
	}
	assert_int_equal(outbox_next(f->ob, prev, &(char *){ NULL }, &(size_t){ 0 }, &seq),
			 -ENOENT);
	assert_int_equal(outbox_last_seq(f->ob), prev);
	assert_int_equal(outbox_depth(f->ob, &frames, &prog), 0);
	assert_int_equal(frames, 3);
	/* an ack trims what it covers, and only that */
	assert_int_equal(outbox_ack(f->ob, prev - 1), 0);
	assert_int_equal(outbox_depth(f->ob, &frames, &prog), 0);
	assert_int_equal(frames, 1);
	assert_int_equal(outbox_ack(f->ob, prev), 0);
	assert_int_equal(outbox_depth(f->ob, &frames, &prog), 0);
	assert_int_equal(frames, 0);
}

/* An illegal move is rolled back, and so is its frame: none is queued. */
static void test_rolled_back_change_queues_nothing(void **state)
{
	struct fx *f = *state;
	char id[OTAGW_ID_MAX];
	struct err_info e = { 0 };
	uint64_t last;
	int64_t frames, prog;

	mk(f, "t1", "d1", id);
	last = outbox_last_seq(f->ob);
	assert_int_equal(record_transition(f->st, id, REC_FAILED, NULL, &e), -OTAGW_ESTATE);
	assert_int_equal(outbox_last_seq(f->ob), last);
	/* an outer transaction rolled back takes the frame with it */
	assert_int_equal(store_begin(f->st), 0);
	move(f, id, REC_PROCESSING, NULL);
	store_rollback(f->st);
	assert_int_equal(outbox_depth(f->ob, &frames, &prog), 0);
	assert_int_equal(frames, 1);
	assert_int_equal(outbox_last_seq(f->ob), last);
}

static int64_t count_of(const cJSON *batch, const char *state)
{
	return (int64_t)cJSON_GetObjectItem(cJSON_GetObjectItem(batch, "counts"), state)->valuedouble;
}

static void test_progress_coalesced_per_record(void **state)
{
	struct fx *f = *state;
	char a[OTAGW_ID_MAX], b[OTAGW_ID_MAX], c[OTAGW_ID_MAX];
	uint64_t seq, last;
	int64_t frames, prog;
	int n = -1;
	cJSON *o, *items;

	mk(f, "t1", "d1", a);
	mk(f, "t1", "d2", b);
	mk(f, "t2", "d3", c);
	move(f, a, REC_PROCESSING, NULL);
	move(f, b, REC_PROCESSING, NULL);
	move(f, c, REC_PROCESSING, NULL);
	last = outbox_last_seq(f->ob);
	for (int p = 1; p <= 50; p++) {
		assert_int_equal(record_progress(f->st, a, p, 1000 + p, NULL), 0);
		assert_int_equal(record_progress(f->st, b, p / 2, 1000 + p, NULL), 0);
	}
	assert_int_equal(record_progress(f->st, c, 7, 5000, NULL), 0);
	/* 101 updates: no frame yet, one pending row per record */
	assert_int_equal(outbox_last_seq(f->ob), last);
	assert_int_equal(outbox_depth(f->ob, &frames, &prog), 0);
	assert_int_equal(prog, 3);
	assert_int_equal(outbox_flush_progress(f->ob, &n), 0);
	assert_int_equal(n, 2);                    /* one batch per task */
	o = next(f, last, &seq);
	assert_string_equal(str(o, "messageType"), "PROGRESS_BATCH");
	assert_string_equal(str(o, "taskId"), "t1");
	items = cJSON_GetObjectItem(o, "items");
	assert_int_equal(cJSON_GetArraySize(items), 2);
	assert_string_equal(str(cJSON_GetArrayItem(items, 0), "deviceId"), "d1");
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "progress")->valueint, 50);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 1), "progress")->valueint, 25);
	assert_int_equal(count_of(o, "processing"), 2);
	assert_int_equal(count_of(o, "waiting"), 0);
	cJSON_Delete(o);
	o = next(f, seq, &seq);
	assert_string_equal(str(o, "taskId"), "t2");
	cJSON_Delete(o);
	assert_int_equal(outbox_depth(f->ob, &frames, &prog), 0);
	assert_int_equal(prog, 0);
	/* nothing pending: a flush queues nothing */
	assert_int_equal(outbox_flush_progress(f->ob, &n), 0);
	assert_int_equal(n, 0);
	/* a state change drops its record's pending progress */
	assert_int_equal(record_progress(f->st, a, 60, 6000, NULL), 0);
	move(f, a, REC_SUCCESS, NULL);
	assert_int_equal(outbox_depth(f->ob, &frames, &prog), 0);
	assert_int_equal(prog, 0);
}

static void test_report_reply_status(void **state)
{
	struct fx *f = *state;
	struct proto_reply r = { .message_id = "c-1", .success = true };
	struct proto_status s = { .version = "0.1.0" };
	struct msg m;
	uint64_t seq;
	cJSON *o;

	msg_init(&m, MSG_REPORT_FIRMWARE);
	S(m.device_id, "d9");
	S(m.version, "1.0");
	assert_int_equal(outbox_events.device_report(f->ob, f->st, &m), 0);
	msg_clear(&m);
	assert_int_equal(outbox_add_reply(f->ob, &r), 0);
	assert_int_equal(outbox_add_status(f->ob, &s), 0);
	o = next(f, 0, &seq);
	assert_string_equal(str(o, "messageType"), "CHILD");
	assert_string_equal(str(o, "deviceId"), "gw1");
	assert_string_equal(str(o, "childDeviceId"), "d9");
	cJSON_Delete(o);
	o = next(f, seq, &seq);
	assert_string_equal(str(o, "messageType"), "REPLY");
	assert_string_equal(str(o, "messageId"), "c-1");
	cJSON_Delete(o);
	o = next(f, seq, &seq);
	assert_string_equal(str(o, "messageType"), "GATEWAY_STATUS");
	cJSON_Delete(o);
}

/* seq survives a restart and an empty outbox: never reused. */
static void test_seq_never_reused(void **state)
{
	struct fx *f = *state;
	char id[OTAGW_ID_MAX];
	uint64_t last, seq;
	cJSON *o;

	mk(f, "t1", "d1", id);
	move(f, id, REC_PROCESSING, NULL);
	last = outbox_last_seq(f->ob);
	assert_int_equal(outbox_ack(f->ob, last), 0);
	fx_close(f);
	assert_int_equal(fx_open(f), 0);
	assert_int_equal(outbox_last_seq(f->ob), last);
	move(f, id, REC_SUCCESS, NULL);
	o = next(f, 0, &seq);
	assert_int_equal(seq, last + 1);
	cJSON_Delete(o);
}

/* The cloud saw more than we ever numbered: queued frames move above it. */
static void test_renumber(void **state)
{
	struct fx *f = *state;
	char id[OTAGW_ID_MAX];
	uint64_t seq;
	cJSON *o;

	mk(f, "t1", "d1", id);
	move(f, id, REC_PROCESSING, NULL);
	assert_int_equal(outbox_renumber(f->ob, 100), 0);
	o = next(f, 0, &seq);
	assert_int_equal(seq, 101);
	assert_string_equal(str(o, "to"), "waiting");
	cJSON_Delete(o);
	o = next(f, seq, &seq);
	assert_int_equal(seq, 102);
	assert_string_equal(str(o, "to"), "processing");
	cJSON_Delete(o);
	assert_int_equal(outbox_last_seq(f->ob), 102);
	move(f, id, REC_SUCCESS, NULL);
	o = next(f, 102, &seq);
	assert_int_equal(seq, 103);
	cJSON_Delete(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_state_changes_in_order, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_rolled_back_change_queues_nothing, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_progress_coalesced_per_record, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_report_reply_status, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_seq_never_reused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_renumber, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
