/* SPDX-License-Identifier: MIT */
/* proto.c - the northbound wire codec; see proto.h and northbound/PROTOCOL.md.
 * Decoding: the bytes are size-checked, checked by json_in_strict() (UTF-8,
 * control characters, \u0000, leading zeros) and for nesting depth, then
 * copied once into a NUL-terminated buffer so cJSON cannot read past len and
 * trailing garbage is refused. Each type has a table row: its name, whether
 * it is a command, its allowed keys (json_in_check_keys() also refuses
 * duplicates) and a function reading its own fields.
 * Encoding: a writer whose first failure sticks; numbers are written as
 * exact decimal text (cJSON prints doubles with 15 significant digits).
 * Must not: log, touch the store or sockets, keep state. */
#include "proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json_in.h"
#include "msg_json.h"
#include "util.h"

/* ---- helpers shared by both directions ----------------------------------- */

/* json_in reports -EINVAL; a bad field in a frame is -EBADMSG here. */
static int proto_bad(int rc, struct err_info *e)
{
	if (rc != -EINVAL)
		return rc;
	if (e)
		e->code = -EBADMSG;
	return -EBADMSG;
}

/* Prefixes e's detail with "in 'where': " (a nested object's field). */
static int proto_in(const char *where, int rc, struct err_info *e)
{
	char text[OTAGW_ERR_TEXT_MAX];

	if (rc >= 0 || !e)
		return rc;
	util_strlcpy(text, e->text, sizeof(text));
	return err_set(e, rc, "in '%s': %s", where, text);
}

/* ---- decoding: bytes to a JSON object ------------------------------------- */

/* True when no object or array in buf[len] is nested deeper than
 * PROTO_DEPTH_MAX. buf passed json_in_strict(), so strings end where a
 * quote not preceded by an escaping backslash is. */
static bool proto_depth_ok(const uint8_t *buf, size_t len)
{
	bool in_str = false;
	size_t depth = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = buf[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > PROTO_DEPTH_MAX)
				return false;
		} else if ((c == '}' || c == ']') && depth) {
			depth--;
		}
	}
	return true;
}

/* Checks the raw bytes, then parses them into the JSON object *root. */
static int proto_parse(const uint8_t *buf, size_t len, cJSON **root, struct err_info *e)
{
	struct err_info strict = { 0 };
	const char *end = NULL;
	char *tmp;

	if (len > PROTO_FRAME_MAX)
		return err_set(e, -EMSGSIZE, "frame of %zu bytes (max %d)", len, PROTO_FRAME_MAX);
	if (!len)
		return err_set(e, -EBADMSG, "empty frame");
	/* A NUL would end cJSON's view of the text early and hide what follows. */
	if (memchr(buf, '\0', len))
		return err_set(e, -EBADMSG, "NUL byte in frame");
	if (json_in_strict(buf, len, &strict))
		return err_set(e, -EBADMSG, "malformed JSON: %s", strict.text);
	if (!proto_depth_ok(buf, len))
		return err_set(e, -EBADMSG, "nested deeper than %d levels", PROTO_DEPTH_MAX);
	tmp = malloc(len + 1);
	if (!tmp)
		return err_set(e, -ENOMEM, "out of memory");
	memcpy(tmp, buf, len);
	tmp[len] = '\0';
	/* The length includes the NUL, which cJSON then requires right after
	 * the value: that is how trailing bytes are refused. */
	*root = cJSON_ParseWithLengthOpts(tmp, len + 1, &end, 1);
	free(tmp);
	if (!*root)
		return err_set(e, -EBADMSG, "malformed JSON");
	if (!cJSON_IsObject(*root))
		return err_set(e, -EBADMSG, "expected a JSON object");
	return 0;
}

/* ---- decoding: field readers ---------------------------------------------- */

/* Object field key of obj into *it; required: absent is an error. 1 when
 * absent and optional. */
static int proto_obj(const cJSON *obj, const char *key, bool required, cJSON **it,
		     struct err_info *e)
{
	*it = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!*it && !required)
		return 1;
	if (!*it)
		return err_set(e, -EBADMSG, "field '%s' is required", key);
	if (!cJSON_IsObject(*it))
		return err_set(e, -EBADMSG, "field '%s': expected an object", key);
	return 0;
}

/* Optional boolean field key into *out (untouched when absent). */
static int proto_bool(const cJSON *obj, const char *key, bool *out, struct err_info *e)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!it)
		return 0;
	if (!cJSON_IsBool(it))
		return err_set(e, -EBADMSG, "field '%s': expected a boolean", key);
	*out = cJSON_IsTrue(it);
	return 0;
}

/* An integer field 0..max into *out; 0 also when absent and optional. */
static int proto_uint(const cJSON *obj, const char *key, bool required, uint64_t max,
		      uint64_t *out, struct err_info *e)
{
	int64_t v = 0;
	int rc = json_in_int(obj, key, required, 0, (int64_t)max, &v, e);

	if (rc < 0)
		return proto_bad(rc, e);
	*out = (uint64_t)v;
	return 0;
}

/* An id field into dst (untouched when absent and optional). */
static int proto_id(const cJSON *obj, const char *key, bool required, char dst[OTAGW_ID_MAX],
		    struct err_info *e)
{
	int rc = json_in_id(obj, key, required, dst, e);

	return rc < 0 ? proto_bad(rc, e) : 0;
}

/* A string field into dst[cap] (untouched when absent and optional). */
static int proto_str(const cJSON *obj, const char *key, bool required, char *dst, size_t cap,
		     struct err_info *e)
{
	int rc = json_in_str(obj, key, required, dst, cap, e);

	return rc < 0 ? proto_bad(rc, e) : 0;
}

/* ---- decoding: per type ---------------------------------------------------- */

static int proto_dec_hello_ack(const cJSON *root, struct proto_down *d, struct err_info *e)
{
	return proto_uint(root, "ackSeq", true, PROTO_INT_MAX, &d->ack, e);
}

static int proto_dec_ack(const cJSON *root, struct proto_down *d, struct err_info *e)
{
	return proto_uint(root, "ack", true, PROTO_INT_MAX, &d->ack, e);
}

static int proto_dec_error(const cJSON *root, struct proto_down *d, struct err_info *e)
{
	int rc = proto_str(root, "code", true, d->code, sizeof(d->code), e);

	if (!rc)
		rc = proto_str(root, "message", false, d->message, sizeof(d->message), e);
	if (!rc)
		rc = proto_uint(root, "seq", false, PROTO_INT_MAX, &d->seq, e);
	return rc;
}

/* A cloud url is fetched over the network, never a gateway-local path
 * ("/images/..." would be served to devices as it is). */
static bool proto_url_remote(const char *url)
{
	return !strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8);
}

/* The firmware's url, when it is a string (its type is the catalogue's
 * to check), must be remote. */
static int proto_fw_url(const cJSON *fw, struct err_info *e)
{
	const cJSON *url = cJSON_GetObjectItemCaseSensitive(fw, "url");

	if (cJSON_IsString(url) && url->valuestring && !proto_url_remote(url->valuestring))
		return err_set(e, -EBADMSG, "in 'firmware': field 'url': expected http:// or "
			       "https://");
	return 0;
}

/* Detaches obj[key] (an object) from root into d->body. */
static void proto_take_body(cJSON *root, const char *key, struct proto_down *d)
{
	d->body = cJSON_DetachItemFromObjectCaseSensitive(root, key);
}

static int proto_dec_fw_upsert(const cJSON *root, struct proto_down *d, struct err_info *e)
{
	cJSON *fw;
	int rc = proto_obj(root, "firmware", true, &fw, e);

	if (!rc)
		rc = proto_in("firmware", proto_id(fw, "id", true, d->firmware_id, e), e);
	if (!rc)
		rc = proto_fw_url(fw, e);
	if (!rc)
		proto_take_body((cJSON *)root, "firmware", d);
	return rc;
}

static int proto_dec_fw_delete(const cJSON *root, struct proto_down *d, struct err_info *e)
{
	return proto_id(root, "firmwareId", true, d->firmware_id, e);
}

/* The task object without firmwareId is what tasks_create() takes. */
static int proto_dec_task_create(const cJSON *root, struct proto_down *d, struct err_info *e)
{
	cJSON *task;
	int rc = proto_obj(root, "task", true, &task, e);

	if (!rc)
		rc = proto_in("task", proto_id(task, "id", true, d->task_id, e), e);
	if (!rc)
		rc = proto_in("task", proto_id(task, "firmwareId", true, d->firmware_id, e), e);
	if (rc)
		return rc;
	proto_take_body((cJSON *)root, "task", d);
	cJSON_DeleteItemFromObjectCaseSensitive(d->body, "firmwareId");
	/* a second one would stay in the body: the first is the one read */
	if (cJSON_GetObjectItemCaseSensitive(d->body, "firmwareId"))
		return err_set(e, -EBADMSG, "in 'task': duplicate field 'firmwareId'");
	return 0;
}

/* Checks every element of the deviceIds array and sums their lengths. */
static int proto_ids_check(const cJSON *arr, size_t *n, size_t *bytes, struct err_info *e)
{
	const cJSON *it;

	*n = 0;
	*bytes = 0;
	cJSON_ArrayForEach(it, arr) {
		if (*n == PROTO_DEVICE_IDS_MAX)
			return err_set(e, -E2BIG, "field 'deviceIds': more than %d ids",
				       PROTO_DEVICE_IDS_MAX);
		if (!cJSON_IsString(it) || !it->valuestring || !util_id_valid(it->valuestring))
			return err_set(e, -EBADMSG, "field 'deviceIds': element %zu is not an id "
				       "(1-64 characters of A-Z a-z 0-9 _ . : -)", *n);
		*bytes += strlen(it->valuestring) + 1;
		(*n)++;
	}
	if (!*n)
		return err_set(e, -EBADMSG, "field 'deviceIds': empty");
	return 0;
}

/* Copies the checked ids into one block: n pointers, then the strings. */
static int proto_ids_copy(const cJSON *arr, size_t n, size_t bytes, struct proto_down *d,
			  struct err_info *e)
{
	char **ids = malloc(n * sizeof(char *) + bytes);
	char *p;
	const cJSON *it;
	size_t i = 0;

	if (!ids)
		return err_set(e, -ENOMEM, "out of memory");
	p = (char *)(ids + n);
	cJSON_ArrayForEach(it, arr) {
		size_t len = strlen(it->valuestring) + 1;

		ids[i++] = p;
		memcpy(p, it->valuestring, len);
		p += len;
	}
	d->device_ids = ids;
	d->n_device_ids = n;
	return 0;
}

static int proto_dec_device_ids(const cJSON *root, struct proto_down *d, struct err_info *e)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "deviceIds");
	size_t n, bytes;
	int rc;

	if (d->all && arr)
		return err_set(e, -EBADMSG, "fields 'all' (true) and 'deviceIds' exclude each other");
	if (d->all)
		return 0;
	if (!arr)
		return err_set(e, -EBADMSG, "field 'deviceIds' is required unless 'all' is true");
	if (!cJSON_IsArray(arr))
		return err_set(e, -EBADMSG, "field 'deviceIds': expected an array");
	rc = proto_ids_check(arr, &n, &bytes, e);
	return rc ? rc : proto_ids_copy(arr, n, bytes, d, e);
}

static int proto_dec_task_publish(const cJSON *root, struct proto_down *d, struct err_info *e)
{
	int rc = proto_id(root, "taskId", true, d->task_id, e);

	if (!rc)
		rc = proto_bool(root, "all", &d->all, e);
	return rc ? rc : proto_dec_device_ids(root, d, e);
}

static int proto_dec_task_cancel(const cJSON *root, struct proto_down *d, struct err_info *e)
{
	return proto_id(root, "taskId", true, d->task_id, e);
}

/* Only UPGRADE_FIRMWARE may travel down inside CHILD. */
static int proto_child_type(const cJSON *cm, struct err_info *e)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(cm, "messageType");
	enum msg_type t;

	if (!cJSON_IsString(it) || !it->valuestring)
		return err_set(e, -EBADMSG, "in 'childDeviceMessage': field 'messageType' "
			       "is required (a string)");
	if (msg_type_parse(it->valuestring, &t) || t != MSG_UPGRADE_FIRMWARE)
		return err_set(e, -ENOTSUP, "in 'childDeviceMessage': only UPGRADE_FIRMWARE "
			       "is supported");
	return 0;
}

/* What otagw needs of the UPGRADE_FIRMWARE beyond what msg_json checks. */
static int proto_child_rules(struct proto_down *d, struct err_info *e)
{
	struct msg *m = &d->child;

	if (!m->firmware_id[0] || !util_id_valid(m->firmware_id))
		return err_set(e, -EBADMSG, "in 'childDeviceMessage': field 'firmwareId' is "
			       "required (1-64 characters of A-Z a-z 0-9 _ . : -)");
	if (!m->version[0])
		return err_set(e, -EBADMSG, "in 'childDeviceMessage': field 'version' is required");
	if (!m->url[0])
		return err_set(e, -EBADMSG, "in 'childDeviceMessage': field 'url' is required");
	if (!proto_url_remote(m->url))
		return err_set(e, -EBADMSG, "in 'childDeviceMessage': field 'url': expected "
			       "http:// or https://");
	if (m->message_id[0] && !util_id_valid(m->message_id))
		return err_set(e, -EBADMSG, "in 'childDeviceMessage': field 'messageId': "
			       "not an id");
	if (!m->message_id[0])
		util_strlcpy(m->message_id, d->message_id, sizeof(m->message_id));
	return 0;
}

/* The inner message through msg_json, as a device's would go; its deviceId
 * defaults to, and must equal, child_id. */
static int proto_child_msg(const cJSON *cm, const char *child_id, struct proto_down *d,
			   struct err_info *e)
{
	struct err_info inner = { 0 };
	char *text;
	int rc = proto_child_type(cm, e);

	if (rc)
		return rc;
	text = cJSON_PrintUnformatted(cm);
	if (!text)
		return err_set(e, -ENOMEM, "out of memory");
	rc = msg_json_decode_as((const uint8_t *)text, strlen(text), MSG_UPGRADE_FIRMWARE,
				child_id, &d->child, &inner);
	cJSON_free(text);
	if (rc == -EMSGSIZE)
		rc = -EBADMSG;          /* the frame fits; only this field is too big */
	if (rc)
		return err_set(e, rc, "in 'childDeviceMessage': %s", err_text(&inner));
	return 0;
}

static int proto_dec_child(const cJSON *root, struct proto_down *d, struct err_info *e)
{
	char child_id[OTAGW_ID_MAX] = "";
	uint64_t timeout = 0;
	cJSON *cm;
	int rc = proto_id(root, "deviceId", false, d->gateway_id, e);

	if (!rc)
		rc = proto_id(root, "childDeviceId", true, child_id, e);
	if (!rc)
		rc = proto_uint(root, "timeoutSeconds", false, OTAGW_TIMEOUT_MAX, &timeout, e);
	if (!rc)
		rc = proto_obj(root, "childDeviceMessage", true, &cm, e);
	d->timeout_seconds = (int64_t)timeout;
	if (!rc)
		rc = proto_child_msg(cm, child_id, d, e);
	return rc ? rc : proto_child_rules(d, e);
}

/* ---- decoding: the type table ---------------------------------------------- */

typedef int (*proto_dec_fn)(const cJSON *root, struct proto_down *d, struct err_info *e);

struct proto_spec {
	const char *name;               /* messageType */
	bool command;                   /* messageId required, answered with REPLY */
	const char *const *keys;
	size_t n_keys;
	proto_dec_fn fields;
};

#define PROTO_CMD_KEYS "messageType", "timestamp", "messageId", "headers"
static const char *const proto_k_hello_ack[] = { "messageType", "timestamp", "ackSeq" };
static const char *const proto_k_ack[] = { "messageType", "timestamp", "ack" };
static const char *const proto_k_error[] = { "messageType", "timestamp", "messageId", "code",
					     "message", "seq" };
static const char *const proto_k_fw_upsert[] = { PROTO_CMD_KEYS, "firmware" };
static const char *const proto_k_fw_delete[] = { PROTO_CMD_KEYS, "firmwareId" };
static const char *const proto_k_task_create[] = { PROTO_CMD_KEYS, "task" };
static const char *const proto_k_task_publish[] = { PROTO_CMD_KEYS, "taskId", "all",
						    "deviceIds" };
static const char *const proto_k_task_cancel[] = { PROTO_CMD_KEYS, "taskId" };
static const char *const proto_k_child[] = { PROTO_CMD_KEYS, "deviceId", "childDeviceId",
					     "childDeviceMessage", "timeoutSeconds" };

#define PROTO_SPEC(n, cmd, k, fn) { n, cmd, k, OTAGW_ARRAY_SIZE(k), fn }
static const struct proto_spec proto_specs[PROTO_DOWN_TYPE_COUNT] = {
	[PROTO_DOWN_HELLO_ACK] = PROTO_SPEC("HELLO_ACK", false, proto_k_hello_ack,
					    proto_dec_hello_ack),
	[PROTO_DOWN_ACK] = PROTO_SPEC("ACK", false, proto_k_ack, proto_dec_ack),
	[PROTO_DOWN_ERROR] = PROTO_SPEC("ERROR", false, proto_k_error, proto_dec_error),
	[PROTO_DOWN_FIRMWARE_UPSERT] = PROTO_SPEC("FIRMWARE_UPSERT", true, proto_k_fw_upsert,
						  proto_dec_fw_upsert),
	[PROTO_DOWN_FIRMWARE_DELETE] = PROTO_SPEC("FIRMWARE_DELETE", true, proto_k_fw_delete,
						  proto_dec_fw_delete),
	[PROTO_DOWN_TASK_CREATE] = PROTO_SPEC("TASK_CREATE", true, proto_k_task_create,
					      proto_dec_task_create),
	[PROTO_DOWN_TASK_PUBLISH] = PROTO_SPEC("TASK_PUBLISH", true, proto_k_task_publish,
					       proto_dec_task_publish),
	[PROTO_DOWN_TASK_CANCEL] = PROTO_SPEC("TASK_CANCEL", true, proto_k_task_cancel,
					      proto_dec_task_cancel),
	[PROTO_DOWN_CHILD_UPGRADE] = PROTO_SPEC("CHILD", true, proto_k_child, proto_dec_child),
};

const char *proto_down_type_name(enum proto_down_type t)
{
	return (unsigned)t < PROTO_DOWN_TYPE_COUNT ? proto_specs[t].name : NULL;
}

bool proto_down_is_command(enum proto_down_type t)
{
	return (unsigned)t < PROTO_DOWN_TYPE_COUNT && proto_specs[t].command;
}

bool proto_down_wants_reply(int rc, const struct proto_down *d)
{
	if (!d || !d->message_id[0] || rc == -EMSGSIZE)
		return false;
	return proto_down_is_command(d->type) || (rc == -ENOTSUP && d->type == PROTO_DOWN_UNKNOWN);
}

static int proto_type_lookup(const char *name, enum proto_down_type *out)
{
	for (unsigned t = PROTO_DOWN_UNKNOWN + 1; t < PROTO_DOWN_TYPE_COUNT; t++) {
		if (!strcmp(name, proto_specs[t].name)) {
			*out = (enum proto_down_type)t;
			return 0;
		}
	}
	return -ENOTSUP;
}

/* messageType and messageId, before anything else can fail: they decide
 * whether a refusal is answered with REPLY. */
static int proto_dec_head(const cJSON *root, struct proto_down *d, struct err_info *e)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "messageType");
	int known, rc;

	if (!cJSON_IsString(type) || !type->valuestring)
		return err_set(e, -EBADMSG, "field 'messageType' is required (a string)");
	known = proto_type_lookup(type->valuestring, &d->type);
	rc = proto_id(root, "messageId", false, d->message_id, e);
	if (rc)
		return rc;
	/* The unknown name is not echoed: it is outside text bound for a log. */
	if (known)
		return err_set(e, -ENOTSUP, "unknown messageType");
	if (proto_specs[d->type].command && !d->message_id[0])
		return err_set(e, -EBADMSG, "field 'messageId' is required");
	return 0;
}

/* The envelope common to every type, then the type's own fields. */
static int proto_dec_body(const cJSON *root, struct proto_down *d, struct err_info *e)
{
	const struct proto_spec *s = &proto_specs[d->type];
	uint64_t ts = 0;
	cJSON *hdr;
	int rc = proto_bad(json_in_check_keys(root, s->keys, s->n_keys, e), e);

	if (!rc)
		rc = proto_uint(root, "timestamp", false, PROTO_INT_MAX, &ts, e);
	d->timestamp = (int64_t)ts;
	if (!rc && s->command && proto_obj(root, "headers", false, &hdr, e) < 0)
		rc = -EBADMSG;
	return rc ? rc : s->fields(root, d, e);
}

int proto_decode(const uint8_t *buf, size_t len, struct proto_down *out, struct err_info *e)
{
	char message_id[OTAGW_ID_MAX];
	enum proto_down_type type;
	cJSON *root = NULL;
	int rc;

	err_clear(e);
	if (!out || (!buf && len))
		return err_set(e, -EINVAL, "invalid argument");
	memset(out, 0, sizeof(*out));
	rc = proto_parse(buf, len, &root, e);
	if (!rc)
		rc = proto_dec_head(root, out, e);
	if (!rc)
		rc = proto_dec_body(root, out, e);
	cJSON_Delete(root);
	if (!rc)
		return 0;
	type = out->type;
	memcpy(message_id, out->message_id, sizeof(message_id));
	proto_down_clear(out);
	out->type = type;
	memcpy(out->message_id, message_id, sizeof(message_id));
	return rc;
}

void proto_down_clear(struct proto_down *d)
{
	if (!d)
		return;
	cJSON_Delete(d->body);
	free(d->device_ids);
	msg_clear(&d->child);
	memset(d, 0, sizeof(*d));
}

/* ---- codes ------------------------------------------------------------------ */

struct proto_code {
	int err;
	const char *code;
};

static const struct proto_code proto_codes[] = {
	{ -EINVAL, "invalid" },     { -EBADMSG, "invalid" },     { -E2BIG, "invalid" },
	{ -EMSGSIZE, "invalid" },   { -ERANGE, "invalid" },      { -ENOENT, "not_found" },
	{ -EEXIST, "conflict" },    { -OTAGW_ESTATE, "conflict" }, { -EPERM, "conflict" },
	{ -EACCES, "conflict" },    { -EBUSY, "busy" },          { -ENOTSUP, "unsupported" },
};

const char *proto_reply_code(int err)
{
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(proto_codes); i++)
		if (proto_codes[i].err == err)
			return proto_codes[i].code;
	return "internal";
}

const char *proto_error_code(int err, enum proto_down_type type)
{
	(void)err;
	return type == PROTO_DOWN_UNKNOWN ? "malformed" : "invalid";
}

/* ---- encoding ------------------------------------------------------------- */

/* An object being written; the first failure sticks and later puts no-op. */
struct proto_w {
	cJSON *o;
	int rc;
};

static void proto_fail(struct proto_w *w, int rc)
{
	if (!w->rc)
		w->rc = rc;
}

/* Adds item (owned from here) as key; NULL item is ENOMEM. */
static void proto_put_item(struct proto_w *w, const char *key, cJSON *item)
{
	if (!item)
		proto_fail(w, -ENOMEM);
	if (w->rc || !cJSON_AddItemToObject(w->o, key, item)) {
		cJSON_Delete(item);
		proto_fail(w, -ENOMEM);
	}
}

/* A string of 1..max bytes (0..max when !required); NULL or "" is omitted
 * when !required. */
static void proto_put_str(struct proto_w *w, const char *key, const char *s, size_t max,
			  bool required)
{
	size_t n = s ? strlen(s) : 0;

	if (w->rc || (!n && !required))
		return;
	if (!n || n > max) {
		proto_fail(w, -EINVAL);
		return;
	}
	if (!cJSON_AddStringToObject(w->o, key, s))
		proto_fail(w, -ENOMEM);
}

static void proto_put_id(struct proto_w *w, const char *key, const char *id)
{
	if (!w->rc && (!id || !util_id_valid(id)))
		proto_fail(w, -EINVAL);
	proto_put_str(w, key, id, OTAGW_ID_MAX - 1, true);
}

static void proto_put_bool(struct proto_w *w, const char *key, bool v)
{
	if (!w->rc && !cJSON_AddBoolToObject(w->o, key, v))
		proto_fail(w, -ENOMEM);
}

/* Exact decimal text of v (0..PROTO_INT_MAX) into digits[24]. */
static const char *proto_digits(uint64_t v, char digits[24])
{
	char *p = digits + 23;

	*p = '\0';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return p;
}

/* Adds v to obj as exact decimal text; a failure is recorded in w. */
static void proto_put_uint_to(struct proto_w *w, cJSON *obj, const char *key, uint64_t v)
{
	char digits[24];

	if (w->rc)
		return;
	if (v > PROTO_INT_MAX) {
		proto_fail(w, -EINVAL);
		return;
	}
	if (!cJSON_AddRawToObject(obj, key, proto_digits(v, digits)))
		proto_fail(w, -ENOMEM);
}

static void proto_put_uint(struct proto_w *w, const char *key, uint64_t v)
{
	proto_put_uint_to(w, w->o, key, v);
}

/* A signed quantity that must be >= 0 (times, counts, progress). */
static void proto_put_nonneg(struct proto_w *w, const char *key, int64_t v, int64_t max)
{
	if (v < 0 || v > max)
		proto_fail(w, -EINVAL);
	proto_put_uint(w, key, (uint64_t)(v < 0 ? 0 : v));
}

/* Starts a frame: seq (0: not sequenced), messageType, timestamp. */
static void proto_begin(struct proto_w *w, uint64_t seq, bool sequenced, const char *type,
			int64_t ts)
{
	w->o = cJSON_CreateObject();
	w->rc = w->o ? 0 : -ENOMEM;
	if (sequenced && !seq)
		proto_fail(w, -EINVAL);
	if (sequenced)
		proto_put_uint(w, "seq", seq);
	proto_put_str(w, "messageType", type, 64, true);
	proto_put_nonneg(w, "timestamp", ts ? ts : util_now_ms(), (int64_t)PROTO_INT_MAX);
}

/* Prints the frame into a malloc'ed copy (callers free() it whatever
 * cJSON's allocator is) and frees the object. */
static int proto_end(struct proto_w *w, char **out, size_t *out_len)
{
	char *text = w->rc ? NULL : cJSON_PrintUnformatted(w->o);
	size_t n = text ? strlen(text) : 0;

	cJSON_Delete(w->o);
	if (!w->rc && !text)
		w->rc = -ENOMEM;
	if (!w->rc && n > PROTO_FRAME_MAX)
		w->rc = -EMSGSIZE;
	if (!w->rc) {
		*out = malloc(n + 1);
		if (*out)
			memcpy(*out, text, n + 1);
		w->rc = *out ? 0 : -ENOMEM;
		*out_len = *out ? n : 0;
	}
	cJSON_free(text);
	return w->rc;
}

/* Common argument check; clears the outputs. */
static int proto_out_ok(const void *in, char **out, size_t *out_len)
{
	if (!out || !out_len)
		return 0;
	*out = NULL;
	*out_len = 0;
	return in != NULL;
}

int proto_enc_hello(const struct proto_hello *h, char **out, size_t *out_len)
{
	struct proto_w w;

	if (!proto_out_ok(h, out, out_len))
		return -EINVAL;
	proto_begin(&w, 0, false, "GATEWAY_HELLO", h->timestamp);
	proto_put_id(&w, "gatewayId", h->gateway_id);
	proto_put_str(&w, "version", h->version, OTAGW_VERSION_MAX - 1, true);
	proto_put_uint(&w, "protocol", PROTO_VERSION);
	proto_put_uint(&w, "lastSeq", h->last_seq);
	return proto_end(&w, out, out_len);
}

int proto_enc_child(uint64_t seq, int64_t timestamp, const char *gateway_id,
		    const struct msg *m, char **out, size_t *out_len)
{
	struct proto_w w;
	char *inner = NULL;
	size_t n = 0;

	if (!proto_out_ok(m, out, out_len))
		return -EINVAL;
	proto_begin(&w, seq, true, "CHILD", timestamp);
	proto_put_id(&w, "deviceId", gateway_id);
	proto_put_id(&w, "childDeviceId", m->device_id);
	if (!w.rc)
		w.rc = msg_json_encode(m, &inner, &n);
	/* msg_json's output is one compact JSON object: embedded as it is. */
	if (!w.rc && !cJSON_AddRawToObject(w.o, "childDeviceMessage", inner))
		proto_fail(&w, -ENOMEM);
	free(inner);
	return proto_end(&w, out, out_len);
}

/* A state name, or -EINVAL for an out-of-range state. */
static void proto_put_state(struct proto_w *w, const char *key, enum record_state s)
{
	const char *name = record_state_name(s);

	if (!name)
		proto_fail(w, -EINVAL);
	proto_put_str(w, key, name, 16, true);
}

int proto_enc_record_state(uint64_t seq, int64_t timestamp, const struct proto_record_state *r,
			   char **out, size_t *out_len)
{
	struct proto_w w;

	if (!proto_out_ok(r, out, out_len))
		return -EINVAL;
	proto_begin(&w, seq, true, "RECORD_STATE", timestamp);
	proto_put_id(&w, "taskId", r->task_id);
	proto_put_id(&w, "recordId", r->record_id);
	proto_put_id(&w, "deviceId", r->device_id);
	proto_put_id(&w, "firmwareId", r->firmware_id);
	proto_put_str(&w, "version", r->version, OTAGW_VERSION_MAX - 1, true);
	if (!r->created)
		proto_put_state(&w, "from", r->from);
	proto_put_state(&w, "to", r->to);
	proto_put_nonneg(&w, "progress", r->progress, 100);
	proto_put_str(&w, "errorReason", r->error_reason, OTAGW_REASON_MAX - 1, false);
	proto_put_nonneg(&w, "time", r->time ? r->time : util_now_ms(), (int64_t)PROTO_INT_MAX);
	return proto_end(&w, out, out_len);
}

int proto_enc_task_event(uint64_t seq, int64_t timestamp, const struct proto_task_event *ev,
			 char **out, size_t *out_len)
{
	struct proto_w w;

	if (!proto_out_ok(ev, out, out_len))
		return -EINVAL;
	proto_begin(&w, seq, true, "TASK_EVENT", timestamp);
	proto_put_id(&w, "taskId", ev->task_id);
	proto_put_str(&w, "event", ev->event, 16, true);
	proto_put_nonneg(&w, "wave", ev->wave, 1000);
	proto_put_str(&w, "reason", ev->reason, OTAGW_REASON_MAX - 1, false);
	proto_put_nonneg(&w, "time", ev->time ? ev->time : util_now_ms(), (int64_t)PROTO_INT_MAX);
	return proto_end(&w, out, out_len);
}

/* One {deviceId, progress, time} item appended to arr. */
static void proto_put_item_progress(struct proto_w *w, cJSON *arr,
				    const struct proto_progress_item *it)
{
	struct proto_w iw = { cJSON_CreateObject(), 0 };

	if (w->rc)
		goto out;
	if (!iw.o || !cJSON_AddItemToArray(arr, iw.o)) {
		proto_fail(w, -ENOMEM);
		goto out;
	}
	proto_put_id(&iw, "deviceId", it->device_id);
	proto_put_nonneg(&iw, "progress", it->progress, 100);
	proto_put_nonneg(&iw, "time", it->time ? it->time : util_now_ms(), (int64_t)PROTO_INT_MAX);
	proto_fail(w, iw.rc);
	return;
out:
	cJSON_Delete(iw.o);
}

static void proto_put_counts(struct proto_w *w, const int64_t counts[REC_STATE_COUNT])
{
	struct proto_w cw = { cJSON_CreateObject(), 0 };

	if (!cw.o)
		cw.rc = -ENOMEM;
	for (int s = 0; s < REC_STATE_COUNT; s++)
		proto_put_nonneg(&cw, record_state_name((enum record_state)s), counts[s],
				 (int64_t)PROTO_INT_MAX);
	if (cw.rc) {
		cJSON_Delete(cw.o);
		proto_fail(w, cw.rc);
		return;
	}
	proto_put_item(w, "counts", cw.o);
}

int proto_enc_progress(uint64_t seq, int64_t timestamp, const struct proto_progress_batch *b,
		       char **out, size_t *out_len)
{
	struct proto_w w;
	cJSON *items;

	if (!proto_out_ok(b, out, out_len) || (b->n_items && !b->items))
		return -EINVAL;
	if (b->n_items > PROTO_BATCH_MAX)
		return -E2BIG;
	proto_begin(&w, seq, true, "PROGRESS_BATCH", timestamp);
	proto_put_id(&w, "taskId", b->task_id);
	items = w.rc ? NULL : cJSON_AddArrayToObject(w.o, "items");
	if (!w.rc && !items)
		proto_fail(&w, -ENOMEM);
	for (size_t i = 0; !w.rc && i < b->n_items; i++)
		proto_put_item_progress(&w, items, &b->items[i]);
	proto_put_counts(&w, b->counts);
	return proto_end(&w, out, out_len);
}

/* online: {"tcp": 3, ...}; a repeated transport name is the caller's bug. */
static void proto_put_online(struct proto_w *w, const struct proto_status *s)
{
	cJSON *on = w->rc ? NULL : cJSON_AddObjectToObject(w->o, "online");

	if (!w->rc && !on)
		proto_fail(w, -ENOMEM);
	if (s->n_online && !s->online)
		proto_fail(w, -EINVAL);
	for (size_t i = 0; !w->rc && i < s->n_online; i++) {
		const char *t = s->online[i].transport;
		size_t n = t ? strlen(t) : 0;

		if (!n || n >= OTAGW_TRANSPORT_MAX || cJSON_GetObjectItemCaseSensitive(on, t))
			proto_fail(w, -EINVAL);
		else
			proto_put_uint_to(w, on, t, s->online[i].count);
	}
}

static void proto_put_cache(struct proto_w *w, const struct proto_status *s)
{
	cJSON *c = w->rc ? NULL : cJSON_AddObjectToObject(w->o, "cache");

	if (!w->rc && !c)
		proto_fail(w, -ENOMEM);
	proto_put_uint_to(w, c, "usedBytes", s->cache_used);
	proto_put_uint_to(w, c, "quotaBytes", s->cache_quota);
	proto_put_uint_to(w, c, "images", s->cache_images);
}

int proto_enc_status(uint64_t seq, int64_t timestamp, const struct proto_status *s,
		     char **out, size_t *out_len)
{
	struct proto_w w;

	if (!proto_out_ok(s, out, out_len))
		return -EINVAL;
	proto_begin(&w, seq, true, "GATEWAY_STATUS", timestamp);
	proto_put_str(&w, "version", s->version, OTAGW_VERSION_MAX - 1, true);
	proto_put_uint(&w, "uptime", s->uptime);
	proto_put_online(&w, s);
	proto_put_uint(&w, "devices", s->devices);
	proto_put_cache(&w, s);
	proto_put_uint(&w, "outbox", s->outbox);
	return proto_end(&w, out, out_len);
}

/* success: result (a copy; {} when NULL); failure: code and message. */
static void proto_put_outcome(struct proto_w *w, const struct proto_reply *r)
{
	proto_put_bool(w, "success", r->success);
	if (!r->success) {
		proto_put_str(w, "code", r->code, OTAGW_CODE_MAX - 1, true);
		proto_put_str(w, "message", r->message, OTAGW_REASON_MAX - 1, false);
		return;
	}
	if (r->result && !cJSON_IsObject(r->result))
		proto_fail(w, -EINVAL);
	if (!w->rc)
		proto_put_item(w, "result", r->result ? cJSON_Duplicate(r->result, 1) :
			       cJSON_CreateObject());
}

int proto_enc_reply(uint64_t seq, int64_t timestamp, const struct proto_reply *r,
		    char **out, size_t *out_len)
{
	struct proto_w w;

	if (!proto_out_ok(r, out, out_len))
		return -EINVAL;
	proto_begin(&w, seq, true, "REPLY", timestamp);
	proto_put_id(&w, "messageId", r->message_id);
	if (r->reply_to != PROTO_DOWN_UNKNOWN && !proto_down_is_command(r->reply_to))
		proto_fail(&w, -EINVAL);
	proto_put_str(&w, "replyTo", proto_down_type_name(r->reply_to), 64, false);
	proto_put_outcome(&w, r);
	return proto_end(&w, out, out_len);
}

int proto_enc_error(int64_t timestamp, const char *code, const char *message,
		    const char *message_id, char **out, size_t *out_len)
{
	struct proto_w w;

	if (!proto_out_ok(code, out, out_len))
		return -EINVAL;
	proto_begin(&w, 0, false, "ERROR", timestamp);
	proto_put_str(&w, "code", code, OTAGW_CODE_MAX - 1, true);
	proto_put_str(&w, "message", message, OTAGW_REASON_MAX - 1, false);
	if (message_id && message_id[0])
		proto_put_id(&w, "messageId", message_id);
	return proto_end(&w, out, out_len);
}

int proto_set_seq(const char *frame, size_t len, uint64_t seq, char **out, size_t *out_len)
{
	struct proto_w w = { NULL, 0 };
	char digits[24];
	cJSON *raw;

	if (!proto_out_ok(frame, out, out_len) || !seq || seq > PROTO_INT_MAX)
		return -EINVAL;
	w.o = cJSON_ParseWithLength(frame, len);
	if (!cJSON_IsObject(w.o) || !cJSON_GetObjectItemCaseSensitive(w.o, "seq")) {
		cJSON_Delete(w.o);
		return -EINVAL;
	}
	raw = cJSON_CreateRaw(proto_digits(seq, digits));
	if (!raw || !cJSON_ReplaceItemInObjectCaseSensitive(w.o, "seq", raw)) {
		cJSON_Delete(raw);
		w.rc = -ENOMEM;
	}
	return proto_end(&w, out, out_len);
}
