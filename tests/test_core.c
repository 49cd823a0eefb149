/* SPDX-License-Identifier: MIT */
/* test_core.c - the message core end to end on a real SQLite file, with a
 * fake transport that records what the core sends: every message type,
 * pull before any task, push on publish and on connect, progress and its
 * refusals, reports completing records, timeouts, device deletion. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "catalogue.h"
#include "core.h"
#include "devices.h"
#include "images.h"
#include "records.h"
#include "session.h"
#include "tasks.h"
#include "util.h"

#define FAKE_MAX 8

struct fake {
	struct session s;
	struct msg sent[FAKE_MAX];
	int nsent;
	int send_rc;          /* what send() answers */
	int closed;
};

static int fake_send(struct session *s, const struct msg *m)
{
	struct fake *f = (struct fake *)s;

	if (f->send_rc)
		return f->send_rc;
	assert_true(f->nsent < FAKE_MAX);
	f->sent[f->nsent] = *m;
	f->sent[f->nsent].parameters = m->parameters ? strdup(m->parameters) : NULL;
	f->sent[f->nsent].properties = m->properties ? strdup(m->properties) : NULL;
	f->sent[f->nsent].data = NULL;
	f->sent[f->nsent].data_len = 0;
	if (m->data_len)
		assert_int_equal(msg_set_data(&f->sent[f->nsent], m->data, m->data_len), 0);
	f->nsent++;
	return 0;
}

static void fake_close(struct session *s)
{
	((struct fake *)s)->closed++;
}

static const struct transport_ops fake_ops = { "fake", fake_send, fake_close, NULL };

struct fx {
	char dir[64];
	struct cache *cache;
	struct images *images;
	struct store *st;
	struct session_reg *reg;
	struct core core;
	struct fake dev1, dev2;
	char fw_id[OTAGW_ID_MAX];
};

static void fake_reset(struct fake *f)
{
	for (int i = 0; i < f->nsent; i++)
		msg_clear(&f->sent[i]);
	f->nsent = 0;
}

static cJSON *json(const char *text)
{
	cJSON *j = cJSON_Parse(text);

	assert_non_null(j);
	return j;
}

static void make_firmware(struct fx *x, const char *text, char *id_out)
{
	struct firmware fw = { 0 };
	cJSON *j = json(text);

	assert_int_equal(catalogue_create(x->st, j, &fw, NULL), 0);
	if (id_out)
		strcpy(id_out, fw.id);
	firmware_clear(&fw);
	cJSON_Delete(j);
}

static void make_device(struct fx *x, const char *text)
{
	struct device d = { 0 };
	cJSON *j = json(text);

	assert_int_equal(devices_create(x->st, j, &d, NULL), 0);
	device_clear(&d);
	cJSON_Delete(j);
}

/* Creates a task of the fixture's firmware and publishes it to ids. */
static void make_task(struct fx *x, const char *fw, const char *mode, int64_t timeout,
		      const char *ids_csv, char *task_out, struct core_publish_result *res)
{
	char body[256], list[128], *save = NULL;
	const char *ids[4];
	size_t n = 0;
	struct task t;
	cJSON *j;

	snprintf(body, sizeof(body), "{\"name\":\"t\",\"mode\":\"%s\",\"timeoutSeconds\":%lld}",
		 mode, (long long)timeout);
	j = json(body);
	assert_int_equal(tasks_create(x->st, fw, j, &t, NULL), 0);
	cJSON_Delete(j);
	strcpy(task_out, t.id);
	task_clear(&t);
	strcpy(list, ids_csv);
	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		ids[n++] = tok;
	assert_int_equal(core_publish(&x->core, task_out, false, ids, n, res, NULL), 0);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	char path[128];

	strcpy(x->dir, "/tmp/otagw-core-XXXXXX");
	if (!mkdtemp(x->dir))
		return -1;
	snprintf(path, sizeof(path), "%s/otagw.db", x->dir);
	if (store_open(&x->st, path, NULL) || session_reg_new(&x->reg))
		return -1;
	snprintf(path, sizeof(path), "%s/cache", x->dir);
	if (cache_open(&x->cache, path, NULL) ||
	    images_new(&x->images, x->st, x->cache, NULL, NULL,
		       &(struct images_cfg){ .max_bytes = 1 << 30, .max_downloads = 1 }, NULL))
		return -1;
	core_init(&x->core, x->st, x->reg, x->images);
	x->dev1.s.ops = &fake_ops;
	x->dev2.s.ops = &fake_ops;
	make_firmware(x, "{\"productId\":\"p1\",\"name\":\"fw\",\"version\":\"2.0\","
		      "\"versionOrder\":2,\"url\":\"http://gw/fw2.bin\",\"size\":1234,"
		      "\"sign\":\"9e107d9d372bb6826bd81d3542a419d6\",\"signMethod\":\"MD5\","
		      "\"properties\":{\"hw\":\"A2\"}}", x->fw_id);
	make_device(x, "{\"id\":\"d1\",\"productId\":\"p1\",\"firmwareVersion\":\"1.0\"}");
	make_device(x, "{\"id\":\"d2\",\"productId\":\"p1\",\"firmwareVersion\":\"1.0\"}");
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	char cmd[128];

	fake_reset(&x->dev1);
	fake_reset(&x->dev2);
	session_reg_free(x->reg);
	images_free(x->images);
	cache_close(x->cache);
	store_close(x->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", x->dir);
	free(x);
	return system(cmd) ? -1 : 0;
}

static void up_msg(struct msg *m, enum msg_type t, const char *dev, const char *version)
{
	msg_init(m, t);
	strcpy(m->device_id, dev);
	if (version)
		strcpy(m->version, version);
}

static enum record_state state_of(struct fx *x, const char *task, const char *dev)
{
	struct record r;

	assert_int_equal(record_find(x->st, dev, ~0u, NULL, NULL, true, &r), 0);
	assert_string_equal(r.task_id, task);
	return r.state;
}

static void test_pull_before_any_task(void **state)
{
	struct fx *x = *state;
	struct msg m;

	up_msg(&m, MSG_REQUEST_FIRMWARE, "d1", NULL);
	strcpy(m.message_id, "m1");
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, NULL), 0);
	assert_int_equal(x->dev1.nsent, 1);
	assert_int_equal(x->dev1.sent[0].type, MSG_REQUEST_FIRMWARE_REPLY);
	assert_string_equal(x->dev1.sent[0].message_id, "m1");
	assert_string_equal(x->dev1.sent[0].device_id, "d1");
	assert_false(x->dev1.sent[0].success);
	assert_string_equal(x->dev1.sent[0].code, "not_found");
	assert_non_null(strstr(x->dev1.sent[0].error_reason, "无固件更新"));
	msg_clear(&m);
}

static void test_pull_flow_and_progress(void **state)
{
	struct fx *x = *state;
	struct core_publish_result res;
	struct err_info e = { 0 };
	char task[OTAGW_ID_MAX];
	struct record r;
	struct msg m;

	make_task(x, x->fw_id, "pull", 0, "d1", task, &res);
	assert_int_equal(res.rec.added, 1);
	assert_int_equal(res.pushed, 0);           /* pull mode: nothing pushed */
	assert_int_equal(x->dev1.nsent, 0);
	assert_int_equal(state_of(x, task, "d1"), REC_WAITING);

	up_msg(&m, MSG_REQUEST_FIRMWARE, "d1", NULL);
	strcpy(m.message_id, "m7");
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, NULL), 0);
	assert_int_equal(x->dev1.nsent, 1);
	assert_true(x->dev1.sent[0].success);
	assert_string_equal(x->dev1.sent[0].message_id, "m7");
	assert_string_equal(x->dev1.sent[0].version, "2.0");
	assert_string_equal(x->dev1.sent[0].firmware_id, x->fw_id);
	assert_string_equal(x->dev1.sent[0].url, "http://gw/fw2.bin");
	assert_string_equal(x->dev1.sent[0].sign_method, "md5");
	assert_int_equal(x->dev1.sent[0].size, 1234);
	assert_non_null(strstr(x->dev1.sent[0].parameters, "A2"));
	assert_int_equal(state_of(x, task, "d1"), REC_PROCESSING);
	msg_clear(&m);

	/* progress of another version is refused; the record is untouched */
	up_msg(&m, MSG_UPGRADE_FIRMWARE_PROGRESS, "d1", "3.0");
	m.success = true;
	m.progress = 10;
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, &e), -ENOENT);
	assert_non_null(strstr(e.text, "3.0"));
	/* a wrong firmwareId too */
	strcpy(m.version, "2.0");
	strcpy(m.firmware_id, "other");
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, &e), -ENOENT);
	m.firmware_id[0] = '\0';
	m.progress = 40;
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, &e), 0);
	assert_int_equal(record_find(x->st, "d1", ~0u, NULL, NULL, true, &r), 0);
	assert_int_equal(r.progress, 40);
	assert_int_equal(r.state, REC_PROCESSING);
	m.progress = 100;
	m.complete = true;
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, &e), 0);
	assert_int_equal(state_of(x, task, "d1"), REC_SUCCESS);
	/* after completion, more progress is refused */
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, &e), -ENOENT);
	msg_clear(&m);
}

static void test_progress_failure(void **state)
{
	struct fx *x = *state;
	struct core_publish_result res;
	char task[OTAGW_ID_MAX];
	struct record r;
	struct msg m;

	make_task(x, x->fw_id, "pull", 0, "d1", task, &res);
	up_msg(&m, MSG_REQUEST_FIRMWARE, "d1", NULL);
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, NULL), 0);
	msg_clear(&m);
	up_msg(&m, MSG_UPGRADE_FIRMWARE_PROGRESS, "d1", "2.0");
	m.success = false;
	strcpy(m.error_reason, "flash write error");
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, NULL), 0);
	assert_int_equal(record_find(x->st, "d1", ~0u, NULL, NULL, true, &r), 0);
	assert_int_equal(r.state, REC_FAILED);
	assert_string_equal(r.error_reason, "flash write error");
	assert_true(r.complete_time > 0);
	msg_clear(&m);
}

static void test_report_completes_and_upserts(void **state)
{
	struct fx *x = *state;
	struct core_publish_result res;
	struct err_info e = { 0 };
	char task[OTAGW_ID_MAX];
	struct device d;
	struct msg m;

	make_task(x, x->fw_id, "pull", 0, "d2", task, &res);
	up_msg(&m, MSG_REQUEST_FIRMWARE, "d2", NULL);
	assert_int_equal(core_handle(&x->core, &x->dev2.s, &m, NULL), 0);
	msg_clear(&m);
	/* reporting another version changes the device, not the record */
	up_msg(&m, MSG_REPORT_FIRMWARE, "d2", "1.5");
	assert_int_equal(msg_set_properties(&m, "{\"hw\":\"B\"}"), 0);
	assert_int_equal(core_handle(&x->core, &x->dev2.s, &m, NULL), 0);
	assert_int_equal(devices_get(x->st, "d2", &d, NULL), 0);
	assert_string_equal(d.firmware_version, "1.5");
	assert_non_null(strstr(d.properties, "\"B\""));
	device_clear(&d);
	assert_int_equal(state_of(x, task, "d2"), REC_PROCESSING);
	/* reporting the target version completes it */
	strcpy(m.version, "2.0");
	assert_int_equal(core_handle(&x->core, &x->dev2.s, &m, NULL), 0);
	assert_int_equal(state_of(x, task, "d2"), REC_SUCCESS);
	msg_clear(&m);
	/* READ_FIRMWARE_REPLY is a report too */
	up_msg(&m, MSG_READ_FIRMWARE_REPLY, "d2", "2.1");
	assert_int_equal(core_handle(&x->core, &x->dev2.s, &m, NULL), 0);
	assert_int_equal(devices_get(x->st, "d2", &d, NULL), 0);
	assert_string_equal(d.firmware_version, "2.1");
	device_clear(&d);
	msg_clear(&m);
	/* an unknown device is created only when the product is known */
	up_msg(&m, MSG_REPORT_FIRMWARE, "d9", "1.0");
	assert_int_equal(core_handle(&x->core, &x->dev2.s, &m, &e), -ENOENT);
	strcpy(m.product_id, "p1");
	assert_int_equal(core_handle(&x->core, &x->dev2.s, &m, &e), 0);
	assert_int_equal(devices_get(x->st, "d9", &d, NULL), 0);
	assert_string_equal(d.product_id, "p1");
	device_clear(&d);
	msg_clear(&m);
}

/* The firmware's image is in the cache (pushes wait for that). */
static void image_ready(struct fx *x, const char *fw_id)
{
	sqlite3_stmt *s = store_stmt(x->st, "UPDATE firmware SET image_state = 'ready'"
				     " WHERE id = ?1");

	assert_non_null(s);
	store_bind_str(s, 1, fw_id);
	assert_int_equal(sqlite3_step(s), SQLITE_DONE);
	store_done(s);
}

/* A push waits until the image is cached, then goes out to the online
 * device from core_image_ready(). */
static void test_push_waits_for_image(void **state)
{
	struct fx *x = *state;
	struct core_publish_result res;
	char task[OTAGW_ID_MAX];

	assert_int_equal(core_session_bind(&x->core, &x->dev1.s, "d1", NULL), 0);
	make_task(x, x->fw_id, "push", 0, "d1", task, &res);
	assert_int_equal(res.pushed, 0);
	assert_int_equal(x->dev1.nsent, 0);
	assert_int_equal(state_of(x, task, "d1"), REC_WAITING);
	core_image_ready(&x->core, x->fw_id);      /* not ready yet: nothing */
	assert_int_equal(x->dev1.nsent, 0);
	image_ready(x, x->fw_id);
	core_image_ready(&x->core, x->fw_id);
	assert_int_equal(x->dev1.nsent, 1);
	assert_int_equal(x->dev1.sent[0].type, MSG_UPGRADE_FIRMWARE);
	assert_int_equal(state_of(x, task, "d1"), REC_PROCESSING);
}

static void test_push_on_publish_and_on_connect(void **state)
{
	struct fx *x = *state;
	struct core_publish_result res;
	char task[OTAGW_ID_MAX];
	struct device d;

	assert_int_equal(core_session_bind(&x->core, &x->dev1.s, "d1", NULL), 0);
	assert_int_equal(devices_get(x->st, "d1", &d, NULL), 0);
	assert_true(d.online);
	assert_string_equal(d.transport, "fake");
	device_clear(&d);
	image_ready(x, x->fw_id);
	make_task(x, x->fw_id, "push", 0, "d1,d2", task, &res);
	assert_int_equal(res.rec.added, 2);
	assert_int_equal(res.pushed, 1);            /* only d1 is online */
	assert_int_equal(x->dev1.nsent, 1);
	assert_int_equal(x->dev1.sent[0].type, MSG_UPGRADE_FIRMWARE);
	assert_string_equal(x->dev1.sent[0].version, "2.0");
	assert_true(x->dev1.sent[0].message_id[0] != '\0');
	assert_int_equal(state_of(x, task, "d1"), REC_PROCESSING);
	assert_int_equal(state_of(x, task, "d2"), REC_WAITING);
	/* d2 connects: its pending push goes out */
	assert_int_equal(core_session_bind(&x->core, &x->dev2.s, "d2", NULL), 0);
	assert_int_equal(x->dev2.nsent, 1);
	assert_int_equal(x->dev2.sent[0].type, MSG_UPGRADE_FIRMWARE);
	assert_int_equal(state_of(x, task, "d2"), REC_PROCESSING);
	core_session_gone(&x->core, &x->dev2.s);
	assert_int_equal(devices_get(x->st, "d2", &d, NULL), 0);
	assert_false(d.online);
	device_clear(&d);
	assert_null(session_reg_find(x->reg, "d2"));
}

static void test_push_send_failure_keeps_waiting(void **state)
{
	struct fx *x = *state;
	struct core_publish_result res;
	char task[OTAGW_ID_MAX];

	assert_int_equal(core_session_bind(&x->core, &x->dev1.s, "d1", NULL), 0);
	x->dev1.send_rc = -ENOBUFS;
	image_ready(x, x->fw_id);
	make_task(x, x->fw_id, "push", 0, "d1", task, &res);
	assert_int_equal(res.pushed, 0);
	assert_int_equal(state_of(x, task, "d1"), REC_WAITING);
	/* reconnecting with a working link delivers it */
	x->dev1.send_rc = 0;
	assert_int_equal(core_session_bind(&x->core, &x->dev1.s, "d1", NULL), 0);
	assert_int_equal(x->dev1.nsent, 1);
	assert_int_equal(state_of(x, task, "d1"), REC_PROCESSING);
}

static void test_upgrade_reply(void **state)
{
	struct fx *x = *state;
	struct core_publish_result res;
	char task[OTAGW_ID_MAX];
	struct err_info e = { 0 };
	struct record r;
	struct msg m;

	up_msg(&m, MSG_UPGRADE_FIRMWARE_REPLY, "d1", NULL);
	m.success = true;
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, &e), -ENOENT);
	assert_int_equal(core_session_bind(&x->core, &x->dev1.s, "d1", NULL), 0);
	image_ready(x, x->fw_id);
	make_task(x, x->fw_id, "push", 0, "d1", task, &res);
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, &e), 0);
	assert_int_equal(state_of(x, task, "d1"), REC_PROCESSING);
	m.success = false;
	strcpy(m.error_reason, "battery low");
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, &e), 0);
	assert_int_equal(record_find(x->st, "d1", ~0u, NULL, NULL, true, &r), 0);
	assert_int_equal(r.state, REC_FAILED);
	assert_string_equal(r.error_reason, "battery low");
	msg_clear(&m);
}

static void test_refused_messages(void **state)
{
	struct fx *x = *state;
	static const enum msg_type down[] = { MSG_REQUEST_FIRMWARE_REPLY, MSG_UPGRADE_FIRMWARE,
					      MSG_READ_FIRMWARE };
	struct err_info e = { 0 };
	struct msg m;

	for (size_t i = 0; i < 3; i++) {
		up_msg(&m, down[i], "d1", "1.0");
		assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, &e), -EPROTO);
		assert_non_null(strstr(e.text, msg_type_name(down[i])));
		msg_clear(&m);
	}
	/* a session bound to d1 cannot speak for d2 */
	assert_int_equal(core_session_bind(&x->core, &x->dev1.s, "d1", NULL), 0);
	up_msg(&m, MSG_REPORT_FIRMWARE, "d2", "9.9");
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, &e), -EINVAL);
	msg_clear(&m);
	up_msg(&m, MSG_REPORT_FIRMWARE, "", "9.9");
	assert_int_equal(core_handle(&x->core, &x->dev2.s, &m, &e), -EINVAL);
	msg_clear(&m);
}

static void test_timeout_tick(void **state)
{
	struct fx *x = *state;
	struct core_publish_result res;
	char task[OTAGW_ID_MAX];
	struct record r;
	struct msg m;
	int n = -1;

	make_task(x, x->fw_id, "pull", 5, "d1", task, &res);
	up_msg(&m, MSG_REQUEST_FIRMWARE, "d1", NULL);
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, NULL), 0);
	msg_clear(&m);
	assert_int_equal(core_tick(&x->core, util_now_ms() + 1000, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(core_tick(&x->core, util_now_ms() + 6000, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(record_find(x->st, "d1", ~0u, NULL, NULL, true, &r), 0);
	assert_int_equal(r.state, REC_FAILED);
	assert_string_equal(r.error_reason, "timeout");
}

static void test_pull_latest_and_request_version(void **state)
{
	struct fx *x = *state;
	struct core_publish_result res;
	char t1[OTAGW_ID_MAX], t2[OTAGW_ID_MAX], fw3[OTAGW_ID_MAX];
	struct msg m;

	make_firmware(x, "{\"productId\":\"p1\",\"name\":\"fw\",\"version\":\"3.0\","
		      "\"versionOrder\":3,\"url\":\"http://gw/fw3.bin\"}", fw3);
	make_task(x, x->fw_id, "pull", 0, "d1", t1, &res);
	make_task(x, fw3, "pull", 0, "d1", t2, &res);
	up_msg(&m, MSG_REQUEST_FIRMWARE, "d1", NULL);
	strcpy(m.request_version, "9.9");
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, NULL), 0);
	assert_false(x->dev1.sent[0].success);
	m.request_version[0] = '\0';
	m.latest = true;
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, NULL), 0);
	assert_true(x->dev1.sent[1].success);
	assert_string_equal(x->dev1.sent[1].version, "3.0");
	strcpy(m.request_version, "2.0");
	m.latest = false;
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, NULL), 0);
	assert_string_equal(x->dev1.sent[2].version, "2.0");
	msg_clear(&m);
}

/* Fills img with n pseudo-random bytes and uploads them as fw's image. */
static void upload_image(struct fx *x, const char *fw, uint8_t *img, size_t n)
{
	struct images_upload *u;
	struct err_info e = { 0 };

	for (size_t i = 0; i < n; i++)
		img[i] = (uint8_t)(i * 2654435761u >> 13);
	assert_int_equal(images_upload_begin(x->images, fw, n, &u, &e), 0);
	assert_int_equal(images_upload_feed(u, img, 777, &e), 0);
	assert_int_equal(images_upload_feed(u, img + 777, n - 777, &e), 0);
	if (images_upload_end(u, &e))
		fail_msg("upload: %s", e.text);
}

static void chunk_req(struct msg *m, const char *fw, uint64_t off, uint32_t len)
{
	up_msg(m, MSG_REQUEST_FIRMWARE_CHUNK, "d1", NULL);
	strcpy(m->message_id, "c");
	strcpy(m->firmware_id, fw);
	m->offset = off;
	m->length = len;
}

static int progress_of(struct fx *x)
{
	struct record r;

	assert_int_equal(record_find(x->st, "d1", ~0u, NULL, NULL, true, &r), 0);
	return r.progress;
}

static void test_chunks_and_derived_progress(void **state)
{
	struct fx *x = *state;
	struct core_publish_result res;
	static uint8_t img[10000];
	char body[400], fw[OTAGW_ID_MAX], task[OTAGW_ID_MAX];
	struct msg m;
	struct fake *d = &x->dev1;

	snprintf(body, sizeof(body), "{\"productId\":\"p1\",\"name\":\"c\",\"version\":\"5.0\","
		 "\"size\":%zu}", sizeof(img));
	make_firmware(x, body, fw);
	upload_image(x, fw, img, sizeof(img));
	d->s.max_chunk = 4096;
	/* no record for this firmware yet: not_found, nothing read */
	chunk_req(&m, fw, 0, 4096);
	assert_int_equal(core_handle(&x->core, &d->s, &m, NULL), 0);
	assert_false(d->sent[0].success);
	assert_string_equal(d->sent[0].code, "not_found");
	make_task(x, fw, "pull", 0, "d1", task, &res);
	up_msg(&m, MSG_REQUEST_FIRMWARE, "d1", NULL);
	assert_int_equal(core_handle(&x->core, &d->s, &m, NULL), 0);   /* -> processing */
	fake_reset(d);
	const struct { uint64_t off; uint32_t len; size_t got; int pct; } steps[] = {
		{ 0, 9999, 4096, 40 },        /* clamped to max_chunk */
		{ 8192, 4096, 1808, 40 },     /* not contiguous: no progress */
		{ 4096, 4096, 4096, 81 },     /* contiguous to 8192 (the 8192.. piece is not kept) */
		{ 8192, 4096, 1808, 99 },     /* to the end: capped, only the device says done */
		{ 10000, 4096, 0, 99 },       /* the end */
	};
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(steps); i++) {
		chunk_req(&m, fw, steps[i].off, steps[i].len);
		assert_int_equal(core_handle(&x->core, &d->s, &m, NULL), 0);
		assert_int_equal(d->nsent, 1);
		assert_true(d->sent[0].success);
		assert_int_equal(d->sent[0].type, MSG_REQUEST_FIRMWARE_CHUNK_REPLY);
		assert_int_equal(d->sent[0].data_len, steps[i].got);
		assert_int_equal(d->sent[0].length, steps[i].got);
		assert_int_equal(d->sent[0].size, sizeof(img));
		assert_int_equal(d->sent[0].offset, steps[i].off);
		if (steps[i].got)
			assert_memory_equal(d->sent[0].data, img + steps[i].off, steps[i].got);
		assert_int_equal(d->sent[0].crc32,
				 (uint32_t)crc32(0L, img + steps[i].off, (uInt)steps[i].got));
		assert_int_equal(progress_of(x), steps[i].pct);
		fake_reset(d);
	}
	chunk_req(&m, fw, 10001, 10);
	assert_int_equal(core_handle(&x->core, &d->s, &m, NULL), 0);
	assert_false(d->sent[0].success);
	assert_string_equal(d->sent[0].code, "out_of_range");
	fake_reset(d);
	/* once the device reports progress itself, derivation stops */
	up_msg(&m, MSG_UPGRADE_FIRMWARE_PROGRESS, "d1", "5.0");
	m.success = true;
	m.progress = 10;
	assert_int_equal(core_handle(&x->core, &d->s, &m, NULL), 0);
	assert_int_equal(progress_of(x), 10);
	d->s.fetch_contig = 0;
	chunk_req(&m, fw, 0, 4096);
	assert_int_equal(core_handle(&x->core, &d->s, &m, NULL), 0);
	assert_int_equal(progress_of(x), 10);
	msg_clear(&m);
}

static void test_missing_image_not_ready(void **state)
{
	struct fx *x = *state;
	struct core_publish_result res;
	char fw[OTAGW_ID_MAX], task[OTAGW_ID_MAX];
	struct msg m;

	make_firmware(x, "{\"productId\":\"p1\",\"name\":\"c\",\"version\":\"6.0\","
		      "\"url\":\"http://203.0.113.1/img.bin\"}", fw);
	make_task(x, fw, "pull", 0, "d1", task, &res);
	x->dev1.s.max_chunk = 512;
	chunk_req(&m, fw, 0, 100);
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, NULL), 0);
	assert_false(x->dev1.sent[0].success);
	assert_string_equal(x->dev1.sent[0].code, "not_ready");
	msg_clear(&m);
}

static int fake_image_url(struct session *s, const char *fw, char *buf, size_t cap)
{
	return snprintf(buf, cap, "chunk:%s", fw) < (int)cap ? 0 : -ENAMETOOLONG;
}

static const struct transport_ops fake_chunk_ops = { "fakec", fake_send, fake_close,
						     fake_image_url };

static void test_transport_image_url(void **state)
{
	struct fx *x = *state;
	struct core_publish_result res;
	char task[OTAGW_ID_MAX], want[80];
	struct msg m;

	x->dev1.s.ops = &fake_chunk_ops;
	make_task(x, x->fw_id, "pull", 0, "d1", task, &res);
	up_msg(&m, MSG_REQUEST_FIRMWARE, "d1", NULL);
	assert_int_equal(core_handle(&x->core, &x->dev1.s, &m, NULL), 0);
	snprintf(want, sizeof(want), "chunk:%s", x->fw_id);
	assert_string_equal(x->dev1.sent[0].url, want);
	msg_clear(&m);
}

static void test_bind_creates_and_auth(void **state)
{
	struct fx *x = *state;
	struct err_info e = { 0 };
	struct device d;
	cJSON *j;

	/* unknown device, no product: refused */
	assert_int_equal(core_session_bind(&x->core, &x->dev2.s, "new1", &e), -ENOENT);
	assert_null(session_reg_find(x->reg, "new1"));
	strcpy(x->dev2.s.product_id, "p7");
	assert_int_equal(core_session_bind(&x->core, &x->dev2.s, "new1", &e), 0);
	assert_int_equal(devices_get(x->st, "new1", &d, NULL), 0);
	assert_string_equal(d.product_id, "p7");
	assert_true(d.online);
	device_clear(&d);
	/* secrets: none set, wrong, right, unknown device */
	assert_int_equal(core_authenticate(&x->core, "d1", "s3cret"), -OTAGW_EAUTH);
	j = json("{\"secureKey\":\"s3cret\"}");
	assert_int_equal(devices_update(x->st, "d1", j, &d, NULL), 0);
	assert_true(d.has_secure_key);
	device_clear(&d);
	cJSON_Delete(j);
	assert_int_equal(core_authenticate(&x->core, "d1", "s3cret"), 0);
	assert_int_equal(core_authenticate(&x->core, "d1", "s3creT"), -OTAGW_EAUTH);
	assert_int_equal(core_authenticate(&x->core, "d1", ""), -OTAGW_EAUTH);
	assert_int_equal(core_authenticate(&x->core, "nobody", "s3cret"), -OTAGW_EAUTH);
}

static void test_delete_device(void **state)
{
	struct fx *x = *state;
	struct core_publish_result res;
	char task[OTAGW_ID_MAX];
	struct err_info e = { 0 };
	struct device d;

	assert_int_equal(core_session_bind(&x->core, &x->dev2.s, "d2", NULL), 0);
	make_task(x, x->fw_id, "pull", 0, "d2", task, &res);
	assert_int_equal(core_delete_device(&x->core, "d2", &e), 0);
	assert_int_equal(x->dev2.closed, 1);
	assert_int_equal(devices_get(x->st, "d2", &d, NULL), -ENOENT);
	assert_int_equal(state_of(x, task, "d2"), REC_CANCELED);
	assert_int_equal(core_delete_device(&x->core, "d2", &e), -ENOENT);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_pull_before_any_task),
		T(test_pull_flow_and_progress),
		T(test_progress_failure),
		T(test_report_completes_and_upserts),
		T(test_push_waits_for_image),
		T(test_push_on_publish_and_on_connect),
		T(test_push_send_failure_keeps_waiting),
		T(test_upgrade_reply),
		T(test_refused_messages),
		T(test_timeout_tick),
		T(test_pull_latest_and_request_version),
		T(test_delete_device),
		T(test_chunks_and_derived_progress),
		T(test_missing_image_not_ready),
		T(test_transport_image_url),
		T(test_bind_creates_and_auth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
