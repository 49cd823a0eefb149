/* SPDX-License-Identifier: MIT */
/* sync.c - the cloud's commands applied through the catalogue, tasks and
 * the core (see sync.h). One handler per command type, in a table; each
 * returns 0 with a result object, or a negative code and a detail that
 * become the REPLY's code (proto_reply_code) and message. */
#define LOG_MOD "sync"
#include "sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue.h"
#include "devices.h"
#include "images.h"
#include "json_in.h"
#include "log.h"
#include "records.h"
#include "tasks.h"
#include "util.h"

typedef int (*sync_fn)(struct sync *s, const struct proto_down *d, cJSON *res,
		       struct err_info *e);

static struct store *sync_st(const struct sync *s)
{
	return s->core->st;
}

/* Runs body(s, d, e) in one store transaction. */
static int sync_tx(struct sync *s, const struct proto_down *d, struct err_info *e,
		   int (*body)(struct sync *s, const struct proto_down *d, struct err_info *e))
{
	int rc = store_begin(sync_st(s));

	if (rc)
		return err_set(e, rc, "cannot begin a transaction");
	rc = body(s, d, e);
	if (rc) {
		store_rollback(sync_st(s));
		return rc;
	}
	rc = store_commit(sync_st(s));
	return rc ? err_set(e, rc, "cannot commit") : 0;
}

static void sync_prefetch(struct sync *s, const char *firmware_id)
{
	if (s->core->images && images_prefetch(s->core->images, firmware_id))
		LOGW("firmware %s: the image download could not be started", firmware_id);
}

/* ---- firmware ---------------------------------------------------------------- */

static int sync_fw_create(struct sync *s, const struct proto_down *d, struct err_info *e)
{
	struct firmware fw = { 0 };
	int rc = catalogue_create(sync_st(s), d->body, &fw, e);

	firmware_clear(&fw);
	if (!rc && (rc = catalogue_set_cloud(sync_st(s), d->firmware_id)))
		err_set(e, rc, "cannot mark firmware %s as the cloud's", d->firmware_id);
	return rc;
}

static bool sync_fw_image_changed(const struct firmware *a, const struct firmware *b)
{
	return strcmp(a->url, b->url) || a->size != b->size || strcmp(a->sign, b->sign) ||
	       strcmp(a->sign_method, b->sign_method);
}

static int sync_fw_upsert(struct sync *s, const struct proto_down *d, cJSON *res,
			  struct err_info *e)
{
	struct firmware old = { 0 }, now = { 0 };
	int rc = catalogue_get(sync_st(s), d->firmware_id, &old, NULL);
	bool created = rc == -ENOENT, changed = false;

	if (rc && !created)
		return err_set(e, rc, "cannot read firmware %s", d->firmware_id);
	if (!created && !old.cloud) {
		firmware_clear(&old);
		return err_set(e, -EPERM, "firmware %s was made on the gateway, not by the cloud",
			       d->firmware_id);
	}
	if (created) {
		rc = sync_tx(s, d, e, sync_fw_create);
	} else {
		rc = catalogue_update(sync_st(s), d->firmware_id, d->body, &now, e);
		changed = !rc && sync_fw_image_changed(&old, &now);
	}
	firmware_clear(&old);
	firmware_clear(&now);
	if (rc)
		return rc;
	if (changed && s->core->images)
		images_firmware_changed(s->core->images, d->firmware_id);
	sync_prefetch(s, d->firmware_id);
	cJSON_AddBoolToObject(res, "created", created);
	return 0;
}

static int sync_fw_delete(struct sync *s, const struct proto_down *d, cJSON *res,
			  struct err_info *e)
{
	struct firmware fw = { 0 };
	int rc = catalogue_get(sync_st(s), d->firmware_id, &fw, NULL);
	bool cloud = fw.cloud;

	firmware_clear(&fw);
	if (rc == -ENOENT) {
		cJSON_AddBoolToObject(res, "deleted", false);
		return 0;
	}
	if (rc)
		return err_set(e, rc, "cannot read firmware %s", d->firmware_id);
	if (!cloud)
		return err_set(e, -EPERM, "firmware %s was made on the gateway, not by the cloud",
			       d->firmware_id);
	rc = catalogue_delete(sync_st(s), d->firmware_id, e);
	if (!rc)
		cJSON_AddBoolToObject(res, "deleted", true);
	return rc;
}

/* ---- tasks -------------------------------------------------------------------- */

/* A task of the cloud's: 0, -ENOENT or -EPERM (made locally), e says which. */
static int sync_task_get(struct sync *s, const char *id, struct task *t, struct err_info *e)
{
	int rc = tasks_get(sync_st(s), id, t, e);

	if (rc)
		return rc;
	if (!t->cloud) {
		task_clear(t);
		return err_set(e, -EPERM, "task %s was made on the gateway, not by the cloud", id);
	}
	return 0;
}

/* An existing task and a TASK_CREATE of the same id: the same task? */
static bool sync_task_same(const struct task *t, const struct proto_down *d)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(d->body, "name");
	const cJSON *mode = cJSON_GetObjectItemCaseSensitive(d->body, "mode");
	const cJSON *tmo = cJSON_GetObjectItemCaseSensitive(d->body, "timeoutSeconds");
	int64_t timeout = cJSON_IsNumber(tmo) ? (int64_t)tmo->valuedouble : 0;

	return !strcmp(t->firmware_id, d->firmware_id) && cJSON_IsString(name) &&
	       !strcmp(t->name, name->valuestring) && cJSON_IsString(mode) &&
	       !strcmp(task_mode_name(t->mode), mode->valuestring) &&
	       t->timeout_seconds == timeout;
}

static int sync_task_insert(struct sync *s, const struct proto_down *d, struct err_info *e)
{
	struct task t = { 0 };
	int rc = tasks_create(sync_st(s), d->firmware_id, d->body, &t, e);

	task_clear(&t);
	if (!rc && (rc = tasks_set_cloud(sync_st(s), d->task_id)))
		err_set(e, rc, "cannot mark task %s as the cloud's", d->task_id);
	return rc;
}

static int sync_task_create(struct sync *s, const struct proto_down *d, cJSON *res,
			    struct err_info *e)
{
	struct task t = { 0 };
	int rc = sync_task_get(s, d->task_id, &t, e);
	bool same;

	if (rc == -ENOENT) {
		err_clear(e);
		rc = sync_tx(s, d, e, sync_task_insert);
		if (!rc)
			cJSON_AddBoolToObject(res, "created", true);
		return rc;
	}
	if (rc)
		return rc;
	same = sync_task_same(&t, d);
	task_clear(&t);
	if (!same)
		return err_set(e, -EEXIST, "task %s exists with other fields", d->task_id);
	cJSON_AddBoolToObject(res, "created", false);
	return 0;
}

static int sync_task_publish(struct sync *s, const struct proto_down *d, cJSON *res,
			     struct err_info *e)
{
	struct core_publish_result r = { 0 };
	struct task t = { 0 };
	int rc = sync_task_get(s, d->task_id, &t, e);

	if (rc)
		return rc;
	task_clear(&t);
	rc = core_publish(s->core, d->task_id, d->all, (const char *const *)d->device_ids,
			  d->n_device_ids, &r, e);
	if (rc)
		return rc;
	cJSON_AddNumberToObject(res, "added", r.rec.added);
	cJSON_AddNumberToObject(res, "already", r.rec.already);
	cJSON_AddNumberToObject(res, "upToDate", r.rec.up_to_date);
	return 0;
}

static int sync_task_cancel(struct sync *s, const struct proto_down *d, cJSON *res,
			    struct err_info *e)
{
	struct task t = { 0 };
	int n = 0, rc = sync_task_get(s, d->task_id, &t, e);
	bool was = !rc && t.state == TASK_CANCELED;

	if (rc)
		return rc;
	task_clear(&t);
	if (!was && (rc = core_cancel_task(s->core, d->task_id, &n, e)))
		return rc;
	cJSON_AddNumberToObject(res, "canceled", n);
	return 0;
}

/* ---- a direct upgrade of one child --------------------------------------------- */

struct sync_child {
	struct sync *s;
	const struct proto_down *d;
	char product[OTAGW_ID_MAX];
};

static int sync_child_fw(struct sync *s, const struct msg *m, const char *product,
			 struct err_info *e)
{
	struct firmware fw = { 0 };
	cJSON *b = cJSON_CreateObject();
	int rc = b ? 0 : -ENOMEM;

	if (!rc) {
		cJSON_AddStringToObject(b, "id", m->firmware_id);
		cJSON_AddStringToObject(b, "productId", product);
		cJSON_AddStringToObject(b, "name", m->version);
		cJSON_AddStringToObject(b, "version", m->version);
		cJSON_AddStringToObject(b, "url", m->url);
		if (m->size)
			cJSON_AddNumberToObject(b, "size", (double)m->size);
		if (m->sign[0])
			cJSON_AddStringToObject(b, "sign", m->sign);
		if (m->sign_method[0])
			cJSON_AddStringToObject(b, "signMethod", m->sign_method);
		if (m->parameters)
			cJSON_AddItemToObject(b, "properties", json_out_object_text(m->parameters));
		rc = catalogue_create(s->core->st, b, &fw, e);
	}
	cJSON_Delete(b);
	firmware_clear(&fw);
	if (!rc && (rc = catalogue_set_cloud(s->core->st, m->firmware_id)))
		err_set(e, rc, "cannot mark firmware %s as the cloud's", m->firmware_id);
	return rc;
}

/* Firmware (found or made) and the push task, in the caller's transaction. */
static int sync_child_setup(struct sync *s, const struct proto_down *d, struct err_info *e)
{
	const struct msg *m = &d->child;
	struct firmware fw = { 0 };
	struct device dev = { 0 };
	struct task t = { 0 };
	char name[OTAGW_NAME_MAX];
	cJSON *b;
	int rc = devices_get(s->core->st, m->device_id, &dev, NULL);

	if (rc)
		return err_set(e, rc == -ENOENT ? -ENOENT : rc, "child device %s is not known",
			       m->device_id);
	rc = catalogue_get(s->core->st, m->firmware_id, &fw, NULL);
	if (!rc && strcmp(fw.version, m->version))
		rc = err_set(e, -EEXIST, "firmware %s is version %s, not %s", m->firmware_id,
			     fw.version, m->version);
	else if (rc == -ENOENT)
		rc = sync_child_fw(s, m, dev.product_id, e);
	firmware_clear(&fw);
	device_clear(&dev);
	if (rc)
		return rc;
	if ((size_t)snprintf(name, sizeof(name), "upgrade %.40s to %.60s", m->device_id,
			     m->version) >= sizeof(name))
		util_strlcpy(name, "direct upgrade", sizeof(name));
	b = cJSON_CreateObject();
	if (!b)
		return -ENOMEM;
	cJSON_AddStringToObject(b, "id", d->message_id);
	cJSON_AddStringToObject(b, "name", name);
	cJSON_AddStringToObject(b, "mode", "push");
	cJSON_AddNumberToObject(b, "timeoutSeconds", (double)d->timeout_seconds);
	rc = tasks_create(s->core->st, m->firmware_id, b, &t, e);
	cJSON_Delete(b);
	task_clear(&t);
	if (!rc && (rc = tasks_set_cloud(s->core->st, d->message_id)))
		err_set(e, rc, "cannot mark task %s as the cloud's", d->message_id);
	return rc;
}

static int sync_child_record(struct store *st, const struct record *r, void *ctx)
{
	*(struct record *)ctx = *r;
	return 1;
}

static int sync_child(struct sync *s, const struct proto_down *d, cJSON *res,
		      struct err_info *e)
{
	const char *child = d->child.device_id;
	struct core_publish_result pr;
	struct record r = { 0 };
	struct task t = { 0 };
	int rc;

	if (d->gateway_id[0] && strcmp(d->gateway_id, s->gateway_id))
		return err_set(e, -EINVAL, "deviceId %s is not this gateway (%s)", d->gateway_id,
			       s->gateway_id);
	rc = tasks_get(sync_st(s), d->message_id, &t, NULL);
	if (!rc && (!t.cloud || strcmp(t.firmware_id, d->child.firmware_id)))
		rc = err_set(e, -EEXIST, "messageId %s names a task that is not this upgrade",
			     d->message_id);
	task_clear(&t);
	if (rc == -ENOENT) {
		rc = sync_tx(s, d, e, sync_child_setup);
		if (!rc)
			rc = core_publish(s->core, d->message_id, false, &child, 1, &pr, e);
	}
	if (rc)
		return rc;
	if (records_each(sync_st(s), d->message_id, child, ~0u, sync_child_record, &r) < 0)
		return err_set(e, -EIO, "cannot read the record of device %s", child);
	if (!r.id[0])
		return err_set(e, -EEXIST, "messageId %s is the task of another upgrade",
			       d->message_id);
	cJSON_AddStringToObject(res, "taskId", d->message_id);
	cJSON_AddStringToObject(res, "recordId", r.id);
	cJSON_AddStringToObject(res, "state", record_state_name(r.state));
	return 0;
}

/* ---- dispatch ------------------------------------------------------------------ */

static const sync_fn sync_fns[PROTO_DOWN_TYPE_COUNT] = {
	[PROTO_DOWN_FIRMWARE_UPSERT] = sync_fw_upsert,
	[PROTO_DOWN_FIRMWARE_DELETE] = sync_fw_delete,
	[PROTO_DOWN_TASK_CREATE] = sync_task_create,
	[PROTO_DOWN_TASK_PUBLISH] = sync_task_publish,
	[PROTO_DOWN_TASK_CANCEL] = sync_task_cancel,
	[PROTO_DOWN_CHILD_UPGRADE] = sync_child,
};

static int sync_reply(struct sync *s, const struct proto_down *d, int rc, const cJSON *result,
		      const struct err_info *e)
{
	struct proto_reply r = {
		.message_id = d->message_id, .reply_to = d->type, .success = !rc,
		.code = rc ? proto_reply_code(rc) : NULL,
		.message = rc ? (e && e->text[0] ? e->text : otagw_strerror(rc)) : NULL,
		.result = rc ? NULL : result,
	};

	if (rc)
		LOGW("cloud command %s (%s) refused: %s", d->message_id,
		     proto_down_type_name(d->type) ? proto_down_type_name(d->type) : "?", r.message);
	return outbox_add_reply(s->ob, &r);
}

int sync_apply(struct sync *s, const struct proto_down *d)
{
	struct err_info e = { 0 };
	cJSON *res;
	int rc;

	if ((unsigned)d->type >= PROTO_DOWN_TYPE_COUNT || !sync_fns[d->type])
		return sync_refuse(s, d, -ENOTSUP, NULL);
	res = cJSON_CreateObject();
	if (!res)
		return -ENOMEM;
	rc = sync_fns[d->type](s, d, res, &e);
	if (!rc)
		LOGI("cloud command %s (%s) applied", d->message_id, proto_down_type_name(d->type));
	rc = sync_reply(s, d, rc, res, &e);
	cJSON_Delete(res);
	return rc;
}

int sync_refuse(struct sync *s, const struct proto_down *d, int rc, const struct err_info *e)
{
	return sync_reply(s, d, rc, NULL, e);
}
