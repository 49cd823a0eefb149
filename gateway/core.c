/* SPDX-License-Identifier: MIT */
/* core.c - JetLinks firmware messages to state changes and replies.
 * Handlers are a table indexed by message type. */
#define LOG_MOD "core"
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "catalogue.h"
#include "devices.h"
#include "images.h"
#include "log.h"
#include "records.h"
#include "util.h"

#define CORE_NOT_FOUND_TEXT "no firmware update (无固件更新)"

typedef int (*core_handler)(struct core *c, struct session *s, const struct msg *in,
			    struct err_info *e);

void core_init(struct core *c, struct store *st, struct session_reg *sessions,
	       struct images *images)
{
	c->st = st;
	c->sessions = sessions;
	c->images = images;
}

static int64_t core_ts(const struct msg *m)
{
	return m->timestamp > 0 ? m->timestamp : util_now_ms();
}

/* Fills out with the firmware fields of record r (a push or a pull reply),
 * with the url the transport of s serves the image at. */
static int core_fill_firmware(struct core *c, struct session *s, const struct record *r,
			      struct msg *out, struct err_info *e)
{
	struct firmware fw;
	int rc = catalogue_get(c->st, r->firmware_id, &fw, e);

	if (rc)
		return rc;
	util_strlcpy(out->firmware_id, fw.id, sizeof(out->firmware_id));
	util_strlcpy(out->version, fw.version, sizeof(out->version));
	if (s->ops->image_url)
		rc = s->ops->image_url(s, fw.id, out->url, sizeof(out->url));
	else
		rc = util_strlcpy(out->url, fw.url, sizeof(out->url));
	if (rc) {
		firmware_clear(&fw);
		return err_set(e, rc, "image url too long");
	}
	util_strlcpy(out->sign, fw.sign, sizeof(out->sign));
	util_strlcpy(out->sign_method, fw.sign_method, sizeof(out->sign_method));
	out->size = fw.size;
	rc = msg_set_parameters(out, fw.properties);
	firmware_clear(&fw);
	return rc;
}

/* Sends UPGRADE_FIRMWARE for r on s and, once the transport took it, moves
 * r to processing. */
static int core_push_record(struct core *c, struct session *s, const struct record *r)
{
	struct err_info e = { 0 };
	struct msg m;
	char mid[33];
	int rc;

	msg_init(&m, MSG_UPGRADE_FIRMWARE);
	util_new_id(mid);
	util_strlcpy(m.message_id, mid, sizeof(m.message_id));
	util_strlcpy(m.device_id, r->device_id, sizeof(m.device_id));
	m.timestamp = util_now_ms();
	rc = core_fill_firmware(c, s, r, &m, &e);
	if (!rc)
		rc = s->ops->send(s, &m);
	msg_clear(&m);
	if (rc) {
		LOGW("push of record %s to device %s failed: %s", r->id, r->device_id,
		     e.code ? err_text(&e) : otagw_strerror(rc));
		return rc;
	}
	rc = record_transition(c->st, r->id, REC_PROCESSING,
			       &(struct record_change){ .progress = -1 }, &e);
	if (rc)
		LOGW("record %s: %s", r->id, err_text(&e));
	else
		LOGI("pushed %s to device %s (record %s)", r->version, r->device_id, r->id);
	return rc;
}

static int core_rollout_task(struct core *c, const char *task_id);

struct core_push_walk {
	struct core *c;
	int pushed;
	bool first_only;
	bool task_walk;               /* walking one task's records */
	const char *fw;               /* core_image_ready: only this firmware */
};

/* May record r of task t start now under the task's rollout (rollout.h)?
 * v says why not. 0, or a negative code (then it may not). */
static int core_gate(struct core *c, const struct task *t, const struct record *r,
		     struct rollout_verdict *v)
{
	struct rollout_task rt;
	int64_t now = util_now_ms();
	time_t secs = (time_t)(now / 1000);
	struct tm tm;
	int rc;

	memset(v, 0, sizeof(*v));
	v->go = true;
	if (t->paused) {
		v->go = false;
		v->none_may = true;
		v->retry_after = 60;
		snprintf(v->why, sizeof(v->why), "the task is paused: %.120s", t->pause_reason);
		return 0;
	}
	if (!t->rollout || !t->rollout[0])
		return 0;
	localtime_r(&secs, &tm);
	rc = task_rollout_view(t, &rt);
	if (!rc)
		rc = rollout_may_start(c->st, &rt, r->wave, now, &tm, v);
	rollout_clear(&rt.policy);
	if (rc) {
		v->go = false;
		v->none_may = true;
		LOGW("task %s: rollout decision failed: %s", t->id, otagw_strerror(rc));
	}
	return rc;
}

/* records_each callback: push r if its task is push-mode and its device is
 * online. Stops after one push when first_only (one upgrade at a time per
 * device). */
static int core_push_walk_fn(struct store *st, const struct record *r, void *ctx)
{
	struct core_push_walk *w = ctx;
	struct session *s = session_reg_find(w->c->sessions, r->device_id);
	struct task t;
	int rc;

	if (!s)
		return 0;
	if (record_find(st, r->device_id, REC_MASK(REC_PROCESSING), NULL, NULL, true,
			&(struct record){ 0 }) == 0)
		return 0;      /* the device is busy with another upgrade */
	if (tasks_get(st, r->task_id, &t, NULL))
		return 0;
	rc = t.mode == TASK_PUSH && t.state != TASK_CANCELED;
	if (rc) {
		struct rollout_verdict v;

		(void)core_gate(w->c, &t, r, &v);
		if (!v.go) {
			task_clear(&t);
			/* a hold or full slots: no other record of the walk may go */
			return v.none_may && w->task_walk ? 1 : 0;
		}
	}
	task_clear(&t);
	/* devices get the gateway's own URL, so only for a cached image;
	 * core_image_ready() pushes what waited for it */
	if (rc && w->c->images && !images_ready(w->c->images, r->firmware_id))
		return 0;
	if (!rc || core_push_record(w->c, s, r))
		return 0;
	w->pushed++;
	return w->first_only ? 1 : 0;
}

/* Pushes the oldest pending push-mode record of device_id, if any. */
static void core_push_pending(struct core *c, const char *device_id)
{
	struct core_push_walk w = { .c = c, .first_only = true };

	if (session_reg_find(c->sessions, device_id))
		(void)records_each(c->st, NULL, device_id, REC_MASK(REC_WAITING),
				   core_push_walk_fn, &w);
}

static int core_complete(struct core *c, const struct record *r, enum record_state to,
			 int progress, const char *reason, int64_t ts, struct err_info *e)
{
	int rc = record_transition(c->st, r->id, to,
				   &(struct record_change){ .progress = progress, .reason = reason,
							    .time = ts }, e);

	if (rc)
		return rc;
	LOGI("device %s: record %s (task %s, version %s) is %s%s%s", r->device_id, r->id,
	     r->task_id, r->version, record_state_name(to), reason ? ": " : "", reason ? reason : "");
	core_push_pending(c, r->device_id);
	core_rollout_task(c, r->task_id);   /* a slot is free, a wave may be done */
	return 0;
}

/* One rollout pass over task_id (rollout_step), then its push-mode records
 * are pushed into the free slots. */
static int core_rollout_task(struct core *c, const char *task_id)
{
	struct err_info e = { 0 };
	struct rollout_task rt;
	struct task t;
	bool changed = false, push, paused;
	int rc;

	if (tasks_get(c->st, task_id, &t, NULL))
		return 0;
	if (!t.rollout || !t.rollout[0] || t.state != TASK_PUBLISHED) {
		task_clear(&t);
		return 0;
	}
	push = t.mode == TASK_PUSH;
	rc = task_rollout_view(&t, &rt);
	paused = t.paused;
	if (!rc)
		rc = rollout_step(c->st, &rt, util_now_ms(), &changed, &e);
	rollout_clear(&rt.policy);
	task_clear(&t);
	if (rc)
		LOGW("task %s: %s", task_id, e.code ? err_text(&e) : otagw_strerror(rc));
	if (changed && !tasks_get(c->st, task_id, &t, NULL)) {
		paused = t.paused;      /* this step may have paused it */
		task_clear(&t);
	}
	if (push && !paused && core_push_task(c, task_id, NULL))
		LOGD("task %s: push after the rollout step failed", task_id);
	return 0;
}

static int core_rollout_fn(void *ctx, const char *task_id)
{
	return core_rollout_task(ctx, task_id);
}

/* Tells the store's observer (the cloud outbox) about a device's report. */
static int core_notify_report(struct core *c, const struct msg *in, struct err_info *e)
{
	if (store_emit_device_report(c->st, in) >= 0)
		return 0;
	return err_set(e, -EIO, "the report of device %s cannot be queued for the cloud",
		       in->device_id);
}

static int core_on_report(struct core *c, struct session *s, const struct msg *in,
			  struct err_info *e)
{
	const char *product = in->product_id[0] ? in->product_id : s->product_id;
	struct record r;
	int rc;

	rc = store_begin(c->st);
	if (rc)
		return err_set(e, rc, "cannot begin transaction");
	rc = devices_report(c->st, in->device_id, product, in->version, in->properties,
			    core_ts(in), e);
	if (!rc)
		rc = core_notify_report(c, in, e);
	if (rc) {
		store_rollback(c->st);
		return rc;
	}
	rc = store_commit(c->st);
	if (rc)
		return err_set(e, rc, "cannot commit the report");
	if (record_find(c->st, in->device_id, REC_MASK(REC_PROCESSING), in->version, NULL, true,
			&r))
		return 0;
	/* running the target version: the upgrade is complete */
	return core_complete(c, &r, REC_SUCCESS, 100, NULL, core_ts(in), e);
}

static int core_send_reply(struct session *s, struct msg *reply)
{
	int rc = s->ops->send(s, reply);

	msg_clear(reply);
	return rc;
}

/* A failed record may be retried by its device (headers.force) unless its
 * task was canceled. */
static bool core_retryable(struct core *c, const struct record *r)
{
	struct task t;
	bool ok;

	if (r->state != REC_FAILED)
		return true;
	if (tasks_get(c->st, r->task_id, &t, NULL))
		return false;
	ok = t.state != TASK_CANCELED;
	task_clear(&t);
	return ok;
}

static int core_on_request(struct core *c, struct session *s, const struct msg *in,
			   struct err_info *e)
{
	unsigned mask = in->force ? ~0u : REC_UNFINISHED;
	struct msg reply;
	struct record r;
	int rc;

	msg_init(&reply, MSG_REQUEST_FIRMWARE_REPLY);
	util_strlcpy(reply.device_id, in->device_id, sizeof(reply.device_id));
	util_strlcpy(reply.message_id, in->message_id, sizeof(reply.message_id));
	reply.timestamp = util_now_ms();
	if (record_find(c->st, in->device_id, mask, in->request_version, NULL, in->latest, &r) ||
	    !core_retryable(c, &r) || core_fill_firmware(c, s, &r, &reply, NULL)) {
		reply.success = false;
		util_strlcpy(reply.code, "not_found", sizeof(reply.code));
		util_strlcpy(reply.error_reason, CORE_NOT_FOUND_TEXT, sizeof(reply.error_reason));
		return core_send_reply(s, &reply);
	}
	if (r.state == REC_WAITING || r.state == REC_FAILED) {
		struct rollout_verdict v;
		struct task t;

		if (!tasks_get(c->st, r.task_id, &t, NULL)) {
			(void)core_gate(c, &t, &r, &v);
			task_clear(&t);
			if (!v.go) {
				/* not this device's turn: "not yet, ask again later" */
				reply.success = false;
				util_strlcpy(reply.code, "not_yet", sizeof(reply.code));
				util_strlcpy(reply.error_reason, v.why, sizeof(reply.error_reason));
				reply.retry_after = v.retry_after ? v.retry_after : 10;
				return core_send_reply(s, &reply);
			}
		}
	}
	reply.success = true;
	rc = core_send_reply(s, &reply);
	if (rc || (r.state != REC_WAITING && r.state != REC_FAILED))
		return rc;
	rc = record_transition(c->st, r.id, REC_PROCESSING,
			       &(struct record_change){ .progress = r.state == REC_FAILED ? 0 : -1,
							.reason = r.state == REC_FAILED ? "" : NULL,
							.time = core_ts(in) }, e);
	if (!rc)
		LOGI("device %s %s %s (record %s)", r.device_id,
		     r.state == REC_FAILED ? "retries" : "pulled", r.version, r.id);
	return rc;
}

/* The transport could not deliver the image of the device's processing
 * record of firmware_id: the record fails with reason. */
int core_delivery_failed(struct core *c, const char *device_id, const char *firmware_id,
			 const char *reason)
{
	struct err_info e = { 0 };
	struct record r;
	int rc;

	if (record_find(c->st, device_id, REC_MASK(REC_PROCESSING), NULL, firmware_id, true, &r))
		return -ENOENT;
	rc = core_complete(c, &r, REC_FAILED, -1, reason, util_now_ms(), &e);
	if (rc)
		LOGW("record %s: %s", r.id, err_text(&e));
	return rc;
}

static int core_on_progress(struct core *c, struct session *s, const struct msg *in,
			    struct err_info *e)
{
	const char *reason = in->error_reason[0] ? in->error_reason : "upgrade failed on the device";
	struct record r;
	int rc;

	if (record_find(c->st, in->device_id, REC_MASK(REC_PROCESSING), in->version,
			in->firmware_id, true, &r))
		return err_set(e, -ENOENT, "device %s has no upgrade to version %s%s%s in progress",
			       in->device_id, in->version, in->firmware_id[0] ? " of firmware " : "",
			       in->firmware_id);
	s->reports_progress = true;
	if (!in->success)
		return core_complete(c, &r, REC_FAILED, -1, reason, core_ts(in), e);
	if (in->complete)
		return core_complete(c, &r, REC_SUCCESS, in->progress, NULL, core_ts(in), e);
	rc = record_progress(c->st, r.id, in->progress, core_ts(in), e);
	if (!rc)
		LOGD("device %s: record %s at %d%%", r.device_id, r.id, in->progress);
	return rc;
}

static int core_on_upgrade_reply(struct core *c, struct session *s, const struct msg *in,
				 struct err_info *e)
{
	struct record r;

	if (record_find(c->st, in->device_id, REC_MASK(REC_PROCESSING), NULL, NULL, true, &r))
		return err_set(e, -ENOENT, "device %s has no upgrade in progress", in->device_id);
	if (in->success)
		return 0;     /* accepted; progress messages follow */
	return core_complete(c, &r, REC_FAILED, -1,
			     in->error_reason[0] ? in->error_reason : "upgrade refused by the device",
			     core_ts(in), e);
}

static int core_on_downlink(struct core *c, struct session *s, const struct msg *in,
			    struct err_info *e)
{
	return err_set(e, -EPROTO, "messageType %s is not accepted from devices",
		       msg_type_name(in->type));
}

/* Reads [offset, offset + want) of firmware_id's verified image into
 * m->data and its size into m->size. -EAGAIN while it downloads, -ENOENT
 * when there is none, -ERANGE past the end. */
static int core_read_image(struct core *c, const char *firmware_id, uint64_t offset,
			   uint32_t want, struct msg *m)
{
	uint8_t *data;
	ssize_t n = 0;
	int fd, rc;

	if (!c->images)
		return -ENOENT;
	rc = images_open(c->images, firmware_id, &fd, &m->size, NULL);
	if (rc)
		return rc;
	if (offset > m->size) {
		close(fd);
		return -ERANGE;
	}
	if (want > m->size - offset)
		want = (uint32_t)(m->size - offset);
	data = malloc(want ? want : 1);
	if (data && want)
		n = pread(fd, data, want, (off_t)offset);
	close(fd);
	rc = !data ? -ENOMEM : n != (ssize_t)want ? -EIO : msg_set_data(m, data, want);
	free(data);
	return rc;
}

/* Bytes [0, have) of size delivered: progress rises to that share, at most
 * 99 (only the device can say it is done), never down. */
static void core_raise_progress(struct core *c, const struct record *r, uint64_t have,
				uint64_t size)
{
	int pct = have >= size ? 99 : (int)(have * 100 / size);

	if (pct > 99)
		pct = 99;
	if (pct > r->progress && record_progress(c->st, r->id, pct, util_now_ms(), NULL))
		LOGD("record %s: derived progress not stored", r->id);
}

/* The highest contiguous offset fetched becomes progress (at most 99: only
 * the device can say it is done) while the device reports none itself. */
static void core_derive_progress(struct core *c, struct session *s, const struct record *r,
				 uint64_t offset, size_t n, uint64_t size)
{
	if (strcmp(s->fetch_fw, r->firmware_id)) {
		/* A new connection resuming a fetch: what the record's progress
		 * says was fetched counts, and the device's resume offset within
		 * one percent past it (progress is rounded down). */
		uint64_t base = size ? (uint64_t)r->progress * size / 100 : 0;

		util_strlcpy(s->fetch_fw, r->firmware_id, sizeof(s->fetch_fw));
		s->fetch_contig = offset >= base && offset <= base + size / 100 + 1 ? offset : base;
	}
	if (offset <= s->fetch_contig && offset + n > s->fetch_contig)
		s->fetch_contig = offset + n;
	if (s->reports_progress || r->state != REC_PROCESSING || !size)
		return;
	core_raise_progress(c, r, s->fetch_contig, size);
}

int core_image_served(struct core *c, const char *device_id, const char *firmware_id,
		      uint64_t end, uint64_t size)
{
	struct record r;

	if (!size || record_find(c->st, device_id, REC_MASK(REC_PROCESSING), NULL, firmware_id,
				 true, &r))
		return -ENOENT;
	core_raise_progress(c, &r, end, size);
	return 0;
}

static int core_on_chunk(struct core *c, struct session *s, const struct msg *in,
			 struct err_info *e)
{
	static const struct { int rc; const char *code, *text; } fails[] = {
		{ -EAGAIN, "not_ready", "the image is still downloading: retry later" },
		{ -ENOENT, "not_ready", "the image is not on the gateway (not downloaded or "
					"uploaded yet)" },
		{ -ERANGE, "out_of_range", "offset is beyond the end of the image" },
	};
	uint32_t want = in->length < s->max_chunk ? in->length : s->max_chunk;
	struct msg reply;
	struct record r;
	int rc;

	msg_init(&reply, MSG_REQUEST_FIRMWARE_CHUNK_REPLY);
	util_strlcpy(reply.device_id, in->device_id, sizeof(reply.device_id));
	util_strlcpy(reply.message_id, in->message_id, sizeof(reply.message_id));
	util_strlcpy(reply.firmware_id, in->firmware_id, sizeof(reply.firmware_id));
	reply.offset = in->offset;
	reply.timestamp = util_now_ms();
	if (!s->max_chunk || record_find(c->st, in->device_id, REC_UNFINISHED, NULL,
					 in->firmware_id, true, &r)) {
		util_strlcpy(reply.code, "not_found", sizeof(reply.code));
		util_strlcpy(reply.error_reason, "no upgrade of this firmware is pending for the device",
			     sizeof(reply.error_reason));
		return core_send_reply(s, &reply);
	}
	rc = core_read_image(c, r.firmware_id, in->offset, want, &reply);
	for (size_t i = 0; rc && i < OTAGW_ARRAY_SIZE(fails); i++) {
		if (rc == fails[i].rc) {
			util_strlcpy(reply.code, fails[i].code, sizeof(reply.code));
			util_strlcpy(reply.error_reason, fails[i].text, sizeof(reply.error_reason));
			return core_send_reply(s, &reply);
		}
	}
	if (rc) {
		msg_clear(&reply);
		return err_set(e, rc, "cannot read the image of firmware %s", in->firmware_id);
	}
	reply.success = true;
	reply.length = (uint32_t)reply.data_len;
	reply.crc32 = (uint32_t)crc32(0L, reply.data, (uInt)reply.data_len);
	core_derive_progress(c, s, &r, in->offset, reply.data_len, reply.size);
	core_count_served(c, s->ops->name, reply.data_len);     /* every session has ops */
	return core_send_reply(s, &reply);
}

static const core_handler core_handlers[MSG_TYPE_COUNT] = {
	[MSG_REPORT_FIRMWARE] = core_on_report,
	[MSG_REQUEST_FIRMWARE] = core_on_request,
	[MSG_REQUEST_FIRMWARE_REPLY] = core_on_downlink,
	[MSG_UPGRADE_FIRMWARE] = core_on_downlink,
	[MSG_UPGRADE_FIRMWARE_REPLY] = core_on_upgrade_reply,
	[MSG_UPGRADE_FIRMWARE_PROGRESS] = core_on_progress,
	[MSG_READ_FIRMWARE] = core_on_downlink,
	[MSG_READ_FIRMWARE_REPLY] = core_on_report,
	[MSG_REQUEST_FIRMWARE_CHUNK] = core_on_chunk,
	[MSG_REQUEST_FIRMWARE_CHUNK_REPLY] = core_on_downlink,
	[MSG_ERROR] = core_on_downlink,
};

static const char *const core_tr_names[CORE_TR_COUNT] = { "tcp", "http", "serial", "other" };

const char *core_transport_name(enum core_transport t)
{
	return (unsigned)t < CORE_TR_COUNT ? core_tr_names[t] : "other";
}

enum core_transport core_transport_of(const char *name)
{
	for (unsigned t = 0; name && t < CORE_TR_OTHER; t++)
		if (!strcmp(name, core_tr_names[t]))
			return (enum core_transport)t;
	return CORE_TR_OTHER;
}

void core_sync(struct core *c)
{
	(void)store_flush(c->st);       /* a failure is logged and counted there */
}

void core_count_served(struct core *c, const char *transport, uint64_t n)
{
	c->counters.image_bytes[core_transport_of(transport)] += n;
}

static int core_dispatch(struct core *c, struct session *s, const struct msg *in,
			 struct err_info *e)
{
	if ((unsigned)in->type >= MSG_TYPE_COUNT)
		return err_set(e, -EPROTO, "unknown message type");
	if (!util_id_valid(in->device_id))
		return err_set(e, -EINVAL, "message without a valid deviceId");
	if (s->device_id[0] && strcmp(s->device_id, in->device_id))
		return err_set(e, -EINVAL, "deviceId %s does not match the connection's device %s",
			       in->device_id, s->device_id);
	return core_handlers[in->type](c, s, in, e);
}

int core_handle(struct core *c, struct session *s, const struct msg *in, struct err_info *e)
{
	enum core_transport t = core_transport_of(s->ops ? s->ops->name : NULL);
	int rc = core_dispatch(c, s, in, e);

	c->counters.messages[t]++;
	if (rc < 0)
		c->counters.rejected[t]++;
	return rc;
}

int core_session_bind(struct core *c, struct session *s, const char *device_id,
		      struct err_info *e)
{
	struct session *old = NULL;
	int rc = devices_report(c->st, device_id, s->product_id, "", NULL, 0, e);

	if (rc == -ENOENT)
		return err_set(e, rc, "unknown device %s and no productId to create it with",
			       device_id);
	if (rc == -EINVAL)   /* another product than the row: the row wins */
		err_clear(e);
	else if (rc)
		return rc;
	rc = session_reg_bind(c->sessions, s, device_id, &old);
	if (rc)
		return err_set(e, rc, "cannot bind device id");
	if (old && old != s && old->ops->close)
		old->ops->close(old);
	rc = devices_set_online(c->st, device_id, s->ops->name, true, util_now_ms());
	if (rc && rc != -ENOENT)
		return err_set(e, rc, "cannot mark device %s online", device_id);
	core_push_pending(c, device_id);
	return 0;
}

void core_session_gone(struct core *c, struct session *s)
{
	if (!s->device_id[0] || session_reg_find(c->sessions, s->device_id) != s)
		return;
	session_reg_unbind(c->sessions, s);
	if (devices_set_online(c->st, s->device_id, s->ops->name, false, util_now_ms()))
		LOGD("device %s went offline but has no row", s->device_id);
}

int core_device_seen(struct core *c, const char *device_id, const char *product_id,
		     const char *transport, struct err_info *e)
{
	int rc = devices_report(c->st, device_id, product_id, "", NULL, 0, e);

	if (rc)
		return rc;
	if (!session_reg_find(c->sessions, device_id) &&
	    devices_set_online(c->st, device_id, transport, false, util_now_ms()))
		LOGD("device %s: cannot store its transport", device_id);
	return 0;
}

int core_authenticate(struct core *c, const char *device_id, const char *secret)
{
	int rc = devices_check_key(c->st, device_id, secret);

	if (rc && rc != -OTAGW_EAUTH && rc != -ENOENT)
		return rc;
	return rc ? -OTAGW_EAUTH : 0;
}

int core_publish(struct core *c, const char *task_id, bool all, const char *const *ids,
		 size_t n, struct core_publish_result *res, struct err_info *e)
{
	int rc;

	memset(res, 0, sizeof(*res));
	rc = tasks_publish(c->st, task_id, all, ids, n, &res->rec, e);
	if (rc)
		return rc;
	rc = core_push_task(c, task_id, &res->pushed);
	LOGI("task %s published: %d added, %d already in, %d up to date, %d pushed", task_id,
	     res->rec.added, res->rec.already, res->rec.up_to_date, res->pushed);
	return rc < 0 ? rc : 0;
}

int core_push_task(struct core *c, const char *task_id, int *pushed)
{
	struct core_push_walk w = { .c = c, .task_walk = true };
	struct task t;
	int rc = tasks_get(c->st, task_id, &t, NULL);

	if (rc)
		return rc;
	if (c->images && images_prefetch(c->images, t.firmware_id))
		LOGW("task %s: cannot start fetching the image of firmware %s", task_id,
		     t.firmware_id);
	if (t.mode == TASK_PUSH)
		rc = records_each(c->st, task_id, NULL, REC_MASK(REC_WAITING), core_push_walk_fn, &w);
	task_clear(&t);
	if (pushed)
		*pushed = w.pushed;
	return rc < 0 ? rc : 0;
}

int core_cancel_task(struct core *c, const char *task_id, int *n, struct err_info *e)
{
	int rc = tasks_cancel(c->st, task_id, n, e);

	if (!rc)
		LOGI("task %s canceled: %d records", task_id, *n);
	return rc;
}

int core_delete_device(struct core *c, const char *device_id, struct err_info *e)
{
	struct session *s;
	int n = 0, rc;

	rc = store_begin(c->st);
	if (rc)
		return err_set(e, rc, "database busy");
	rc = records_cancel(c->st, NULL, device_id, "device deleted", &n, e);
	if (!rc)
		rc = devices_delete(c->st, device_id, e);
	if (rc) {
		store_rollback(c->st);
		return rc;
	}
	rc = store_commit(c->st);
	if (rc)
		return err_set(e, rc, "cannot commit");
	s = session_reg_find(c->sessions, device_id);
	if (s) {
		session_reg_unbind(c->sessions, s);
		if (s->ops->close)
			s->ops->close(s);
	}
	LOGI("device %s deleted (%d records canceled)", device_id, n);
	return 0;
}

int core_tick(struct core *c, int64_t now_ms, int *n)
{
	int rc = records_expire(c->st, now_ms, n);

	if (!rc && *n)
		LOGI("%d upgrade records timed out", *n);
	if (!rc)
		rc = tasks_each_rollout(c->st, core_rollout_fn, c);
	return rc;
}

/* images_on_ready(): push every waiting record of the push tasks of
 * firmware_id whose device is online. */
static int core_ready_walk_fn(struct store *st, const struct record *r, void *ctx)
{
	struct core_push_walk *w = ctx;

	if (strcmp(r->firmware_id, w->fw))
		return 0;
	return core_push_walk_fn(st, r, ctx);
}

void core_image_ready(void *arg, const char *firmware_id)
{
	struct core *c = arg;
	struct core_push_walk w = { .c = c, .fw = firmware_id };

	if (records_each(c->st, NULL, NULL, REC_MASK(REC_WAITING), core_ready_walk_fn, &w) < 0)
		LOGW("firmware %s: cannot push what waited for its image", firmware_id);
	else if (w.pushed)
		LOGI("firmware %s: image ready, %d pushes sent", firmware_id, w.pushed);
}
