/* SPDX-License-Identifier: MIT */
/* msg_json.c - the JetLinks JSON codec for struct msg (cJSON); see msg_json.h.
 * Input is untrusted: it is copied once into a NUL-terminated scratch buffer
 * (so cJSON cannot read past len, and trailing garbage is detectable), each
 * field's type is checked and each string is bounded by its buffer in
 * struct msg. Field tables, not strcmp chains, say which key goes where.
 * otagw extensions (southbound/PROTOCOL.md): headers.productId and
 * headers.secureKey are read on every type; REQUEST_FIRMWARE_CHUNK(_REPLY)
 * carry offset, length, crc32 (zlib's CRC-32) and base64 `data`; ERROR
 * carries code and message.
 * Chunk data may travel out of band (the frame codec's type 2): a reply
 * without "data" decodes with m->data NULL, and a message with m->data NULL
 * but length > 0 encodes without "data". The codecs insist on in-band data
 * where there is no other place for it.
 * Must not: keep state between calls, log, touch the store or sockets, or
 * ever write secure_key. */
#include "msg_json.h"

#include <cJSON.h>
#include <inttypes.h>
#include <mbedtls/base64.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "json_in.h"
#include "util.h"

/* 2^53: the largest integer a JSON number (an IEEE double) holds exactly. */
#define MSG_JSON_INT_MAX (UINT64_C(1) << 53)

/* What a messageType needs beyond the envelope (jetlinks-firmware.md 1, 2). */
enum {
	MSG_JSON_UP = 1 << 0,           /* sent by a device: deviceId required */
	MSG_JSON_NEED_VERSION = 1 << 1, /* version required */
	MSG_JSON_REPLY = 1 << 2,        /* success defaults to true */
	MSG_JSON_MESSAGE = 1 << 3,      /* `message` stands in for errorReason */
	MSG_JSON_NEED_FIRMWARE = 1 << 4, /* firmwareId required */
	MSG_JSON_NEED_CODE = 1 << 5,    /* code required */
};

static const unsigned char msg_json_rules[MSG_TYPE_COUNT] = {
	[MSG_REPORT_FIRMWARE] = MSG_JSON_UP | MSG_JSON_NEED_VERSION,
	[MSG_REQUEST_FIRMWARE] = MSG_JSON_UP,
	[MSG_REQUEST_FIRMWARE_REPLY] = MSG_JSON_REPLY | MSG_JSON_MESSAGE,
	[MSG_UPGRADE_FIRMWARE] = 0,
	[MSG_UPGRADE_FIRMWARE_REPLY] = MSG_JSON_UP | MSG_JSON_REPLY | MSG_JSON_MESSAGE,
	/* JetLinks: a progress message without `success` is a failure. */
	[MSG_UPGRADE_FIRMWARE_PROGRESS] = MSG_JSON_UP | MSG_JSON_NEED_VERSION | MSG_JSON_MESSAGE,
	[MSG_READ_FIRMWARE] = 0,
	[MSG_READ_FIRMWARE_REPLY] = MSG_JSON_UP | MSG_JSON_REPLY | MSG_JSON_MESSAGE,
	[MSG_REQUEST_FIRMWARE_CHUNK] = MSG_JSON_UP | MSG_JSON_NEED_FIRMWARE,
	[MSG_REQUEST_FIRMWARE_CHUNK_REPLY] = MSG_JSON_REPLY | MSG_JSON_MESSAGE,
	[MSG_ERROR] = MSG_JSON_MESSAGE | MSG_JSON_NEED_CODE,
};

/* A string key and the fixed buffer in struct msg it lands in. */
struct msg_json_str {
	const char *key;
	size_t off;
	size_t cap;                     /* buffer size, NUL included */
};

#define MSG_JSON_STR(k, member) \
	{ k, offsetof(struct msg, member), sizeof(((struct msg *)0)->member) }

static const struct msg_json_str msg_json_strs[] = {
	MSG_JSON_STR("deviceId", device_id),
	MSG_JSON_STR("messageId", message_id),
	MSG_JSON_STR("firmwareId", firmware_id),
	MSG_JSON_STR("version", version),
	MSG_JSON_STR("currentVersion", current_version),
	MSG_JSON_STR("requestVersion", request_version),
	MSG_JSON_STR("url", url),
	MSG_JSON_STR("sign", sign),
	MSG_JSON_STR("signMethod", sign_method),
	MSG_JSON_STR("code", code),
	MSG_JSON_STR("errorReason", error_reason),
};

/* ---- decoding ---------------------------------------------------------- */

/* The member key of obj, or NULL when it is absent or JSON null. */
static const cJSON *msg_json_get(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	return (!it || cJSON_IsNull(it)) ? NULL : it;
}

/* Copies string item it (NULL: no-op) into dst[cap]. */
static int msg_json_str_copy(const cJSON *it, const char *name, char *dst, size_t cap,
			     struct err_info *e)
{
	size_t n;

	if (!it)
		return 0;
	if (!cJSON_IsString(it) || !it->valuestring)
		return err_set(e, -EBADMSG, "field '%s': expected a string", name);
	n = strlen(it->valuestring);
	if (n >= cap)
		return err_set(e, -EBADMSG, "field '%s': too long (max %zu)", name, cap - 1);
	memcpy(dst, it->valuestring, n + 1);
	return 0;
}

/* Reads number item it (NULL: no-op) as an integer 0..max into *out. */
static int msg_json_uint(const cJSON *it, const char *name, uint64_t max, uint64_t *out,
			 struct err_info *e)
{
	double d;

	if (!it)
		return 0;
	if (!cJSON_IsNumber(it))
		return err_set(e, -EBADMSG, "field '%s': expected a number", name);
	d = it->valuedouble;
	/* Written so NaN and infinities fail the range test too. */
	if (!(d >= 0 && d <= (double)max) || (double)(uint64_t)d != d)
		return err_set(e, -EBADMSG, "field '%s': expected an integer 0..%" PRIu64,
			       name, max);
	*out = (uint64_t)d;
	return 0;
}

/* As msg_json_uint() for a field that must be present and at least min. */
static int msg_json_uint_req(const cJSON *obj, const char *name, uint64_t min, uint64_t max,
			     uint64_t *out, struct err_info *e)
{
	const cJSON *it = msg_json_get(obj, name);
	int rc;

	if (!it)
		return err_set(e, -EBADMSG, "field '%s': missing", name);
	rc = msg_json_uint(it, name, max, out, e);
	if (!rc && *out < min)
		return err_set(e, -EBADMSG, "field '%s': expected an integer %" PRIu64 "..%" PRIu64,
			       name, min, max);
	return rc;
}

/* Reads boolean item it (NULL: no-op) into *out. */
static int msg_json_bool(const cJSON *it, const char *name, bool *out, struct err_info *e)
{
	if (!it)
		return 0;
	if (!cJSON_IsBool(it))
		return err_set(e, -EBADMSG, "field '%s': expected a boolean", name);
	*out = cJSON_IsTrue(it);
	return 0;
}

/* Stores object item it (NULL: no-op) as compact JSON text in *slot. */
static int msg_json_obj_text(const cJSON *it, const char *name, char **slot, struct err_info *e)
{
	char *text;
	size_t n;

	if (!it)
		return 0;
	if (!cJSON_IsObject(it))
		return err_set(e, -EBADMSG, "field '%s': expected an object", name);
	text = cJSON_PrintUnformatted(it);
	if (!text)
		return err_set(e, -ENOMEM, "field '%s': out of memory", name);
	n = strlen(text);
	if (n >= OTAGW_PROPS_MAX) {
		cJSON_free(text);
		return err_set(e, -EBADMSG, "field '%s': too large (max %d bytes)", name,
			       OTAGW_PROPS_MAX - 1);
	}
	/* Own copy: m is freed with free(), whatever allocator cJSON was given. */
	*slot = malloc(n + 1);
	if (*slot)
		memcpy(*slot, text, n + 1);
	cJSON_free(text);
	return *slot ? 0 : err_set(e, -ENOMEM, "field '%s': out of memory", name);
}

/* Parses buf[len] into a JSON object *root, rejecting trailing bytes. */
static int msg_json_parse(const uint8_t *buf, size_t len, cJSON **root, struct err_info *e)
{
	struct err_info strict = { 0 };
	const char *end = NULL;
	char *tmp;

	if (!len)
		return err_set(e, -EBADMSG, "empty message");
	if (len > OTAGW_MSG_MAX)
		return err_set(e, -EMSGSIZE, "message of %zu bytes (max %d)", len, OTAGW_MSG_MAX);
	/* A NUL would end cJSON's view of the text early and hide what follows. */
	if (memchr(buf, '\0', len))
		return err_set(e, -EBADMSG, "NUL byte in message");
	if (json_in_strict(buf, len, &strict))
		return err_set(e, -EBADMSG, "malformed JSON: %s", strict.text);
	tmp = malloc(len + 1);
	if (!tmp)
		return err_set(e, -ENOMEM, "out of memory");
	memcpy(tmp, buf, len);
	tmp[len] = '\0';
	/* Length includes the NUL: cJSON then requires it right after the value
	 * and optional whitespace, which is how trailing garbage is refused. */
	*root = cJSON_ParseWithLengthOpts(tmp, len + 1, &end, 1);
	free(tmp);
	if (!*root)
		return err_set(e, -EBADMSG, "malformed JSON");
	if (!cJSON_IsObject(*root))
		return err_set(e, -EBADMSG, "expected a JSON object");
	return 0;
}

static int msg_json_dec_type(const cJSON *root, struct msg *m, struct err_info *e)
{
	const cJSON *it = msg_json_get(root, "messageType");

	if (!it)
		return err_set(e, -EBADMSG, "field 'messageType': missing");
	if (!cJSON_IsString(it) || !it->valuestring)
		return err_set(e, -EBADMSG, "field 'messageType': expected a string");
	/* The value is not echoed: it is outside text and may end up in a log. */
	if (msg_type_parse(it->valuestring, &m->type))
		return err_set(e, -EBADMSG, "field 'messageType': unknown type");
	return 0;
}

static int msg_json_dec_strings(const cJSON *root, struct msg *m, struct err_info *e)
{
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(msg_json_strs); i++) {
		const struct msg_json_str *f = &msg_json_strs[i];
		int rc = msg_json_str_copy(msg_json_get(root, f->key), f->key,
					   (char *)m + f->off, f->cap, e);

		if (rc)
			return rc;
	}
	return 0;
}

static int msg_json_dec_numbers(const cJSON *root, struct msg *m, struct err_info *e)
{
	/* The seed misspells timestamp; the correct key wins when both exist. */
	const char *ts_key = msg_json_get(root, "timestamp") ? "timestamp" : "timestampe";
	uint64_t ts = 0, progress = 0;
	int rc;

	rc = msg_json_uint(msg_json_get(root, ts_key), ts_key, MSG_JSON_INT_MAX, &ts, e);
	if (!rc)
		rc = msg_json_uint(msg_json_get(root, "size"), "size", MSG_JSON_INT_MAX, &m->size,
				   e);
	if (!rc)
		rc = msg_json_uint(msg_json_get(root, "progress"), "progress", 100, &progress, e);
	m->timestamp = (int64_t)ts;
	m->progress = (int)progress;
	return rc;
}

static int msg_json_dec_flags(const cJSON *root, struct msg *m, struct err_info *e)
{
	const cJSON *success = msg_json_get(root, "success");
	int rc;

	m->has_success = success != NULL;
	rc = msg_json_bool(success, "success", &m->success, e);
	if (!rc)
		rc = msg_json_bool(msg_json_get(root, "complete"), "complete", &m->complete, e);
	return rc;
}

/* headers.productId: an id, as util_id_valid() wants it. */
static int msg_json_dec_product(const cJSON *hdr, struct msg *m, struct err_info *e)
{
	const cJSON *it = msg_json_get(hdr, "productId");
	int rc = msg_json_str_copy(it, "headers.productId", m->product_id,
				   sizeof(m->product_id), e);

	if (!rc && it && !util_id_valid(m->product_id))
		return err_set(e, -EBADMSG, "field 'headers.productId': invalid id");
	return rc;
}

/* headers.secureKey: up to 128 bytes; "" is a (wrong) key, for the
 * session to refuse as such. Its value never appears in e. */
static int msg_json_dec_key(const cJSON *hdr, struct msg *m, struct err_info *e)
{
	const cJSON *it = msg_json_get(hdr, "secureKey");

	return msg_json_str_copy(it, "headers.secureKey", m->secure_key, sizeof(m->secure_key), e);
}

/* JetLinks' Headers: force/latest (REQUEST_FIRMWARE), and productId and
 * secureKey on whatever message opens a TCP session. */
static int msg_json_dec_headers(const cJSON *root, struct msg *m, struct err_info *e)
{
	const cJSON *hdr = msg_json_get(root, "headers");
	int rc;

	if (!hdr)
		return 0;
	if (!cJSON_IsObject(hdr))
		return err_set(e, -EBADMSG, "field 'headers': expected an object");
	rc = msg_json_bool(msg_json_get(hdr, "force"), "headers.force", &m->force, e);
	if (!rc)
		rc = msg_json_bool(msg_json_get(hdr, "latest"), "headers.latest", &m->latest, e);
	if (!rc)
		rc = msg_json_dec_product(hdr, m, e);
	if (!rc)
		rc = msg_json_dec_key(hdr, m, e);
	return rc;
}

static int msg_json_dec_objects(const cJSON *root, struct msg *m, struct err_info *e)
{
	int rc = msg_json_obj_text(msg_json_get(root, "properties"), "properties",
				   &m->properties, e);

	if (!rc)
		rc = msg_json_obj_text(msg_json_get(root, "parameters"), "parameters",
				       &m->parameters, e);
	return rc;
}

/* Per-type requirements and defaults, once every field is in place. */
static int msg_json_dec_rules(const cJSON *root, struct msg *m, struct err_info *e)
{
	unsigned rules = msg_json_rules[m->type];

	if ((rules & MSG_JSON_UP) && !m->device_id[0])
		return err_set(e, -EBADMSG, "field 'deviceId': missing");
	if (m->device_id[0] && !util_id_valid(m->device_id))
		return err_set(e, -EBADMSG, "field 'deviceId': invalid id");
	if ((rules & MSG_JSON_NEED_VERSION) && !m->version[0])
		return err_set(e, -EBADMSG, "field 'version': missing");
	if ((rules & MSG_JSON_NEED_FIRMWARE) && !m->firmware_id[0])
		return err_set(e, -EBADMSG, "field 'firmwareId': missing");
	if ((rules & MSG_JSON_NEED_CODE) && !m->code[0])
		return err_set(e, -EBADMSG, "field 'code': missing");
	if (!m->has_success)
		m->success = (rules & MSG_JSON_REPLY) != 0;
	if ((rules & MSG_JSON_MESSAGE) && !m->error_reason[0])
		return msg_json_str_copy(msg_json_get(root, "message"), "message",
					 m->error_reason, sizeof(m->error_reason), e);
	return 0;
}

static int msg_json_dec_chunk_req(const cJSON *root, struct msg *m, struct err_info *e)
{
	uint64_t len = 0;
	int rc = msg_json_uint_req(root, "offset", 0, MSG_JSON_INT_MAX, &m->offset, e);

	/* Up to 2^32 - 1 here: the core clamps to its [tcp] max_chunk. */
	if (!rc)
		rc = msg_json_uint_req(root, "length", 1, UINT32_MAX, &len, e);
	m->length = (uint32_t)len;
	return rc;
}

/* True when s[0..n) is standard base64 with padding (RFC 4648 section 4):
 * whole quads of the alphabet, '=' only as the last one or two bytes.
 * mbedTLS alone would also take spaces and line breaks. */
static bool msg_json_b64_valid(const char *s, size_t n)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				       "0123456789+/";
	size_t pad = 0;

	if (n % 4)
		return false;
	while (pad < 2 && pad < n && s[n - 1 - pad] == '=')
		pad++;
	for (size_t i = 0; i < n - pad; i++)
		if (!s[i] || !strchr(alphabet, s[i]))
			return false;
	return true;
}

/* "data" (it; NULL: out of band, nothing to do) into m->data, checked
 * against length and crc32, which are decoded already. */
static int msg_json_dec_data(const cJSON *it, struct msg *m, struct err_info *e)
{
	const char *s;
	size_t n, got = 0;
	uint8_t *bin = NULL;

	if (!it)
		return 0;
	if (!cJSON_IsString(it) || !it->valuestring)
		return err_set(e, -EBADMSG, "field 'data': expected a string");
	s = it->valuestring;
	n = strlen(s);
	if (!msg_json_b64_valid(s, n))
		return err_set(e, -EBADMSG, "field 'data': invalid base64");
	if (n) {
		bin = malloc(n / 4 * 3);
		if (!bin)
			return err_set(e, -ENOMEM, "field 'data': out of memory");
		if (mbedtls_base64_decode(bin, n / 4 * 3, &got, (const unsigned char *)s, n)) {
			free(bin);
			return err_set(e, -EBADMSG, "field 'data': invalid base64");
		}
	}
	m->data = bin;                  /* owned by m from here, freed by msg_clear */
	m->data_len = got;
	if (got != m->length)
		return err_set(e, -EBADMSG, "field 'data': %zu bytes, field 'length' says %" PRIu32,
			       got, m->length);
	if (crc32(0L, bin, (uInt)got) != m->crc32)
		return err_set(e, -EBADMSG, "field 'crc32': does not match data");
	return 0;
}

/* A failed reply carries code/message (and maybe offset) but no data. */
static int msg_json_dec_chunk_reply(const cJSON *root, struct msg *m, struct err_info *e)
{
	uint64_t len = 0, crc = 0;
	int rc;

	if (!m->success)
		return msg_json_uint(msg_json_get(root, "offset"), "offset", MSG_JSON_INT_MAX,
				     &m->offset, e);
	rc = msg_json_uint_req(root, "offset", 0, MSG_JSON_INT_MAX, &m->offset, e);
	if (!rc)
		rc = msg_json_uint_req(root, "length", 0, UINT32_MAX, &len, e);
	if (!rc)
		rc = msg_json_uint_req(root, "crc32", 0, UINT32_MAX, &crc, e);
	m->length = (uint32_t)len;
	m->crc32 = (uint32_t)crc;
	if (!rc)
		rc = msg_json_dec_data(msg_json_get(root, "data"), m, e);
	return rc;
}

typedef int (*msg_json_dec_step)(const cJSON *root, struct msg *m, struct err_info *e);

/* Fields only one type has, read after the rules (success is settled). */
static const msg_json_dec_step msg_json_dec_own[MSG_TYPE_COUNT] = {
	[MSG_REQUEST_FIRMWARE_CHUNK] = msg_json_dec_chunk_req,
	[MSG_REQUEST_FIRMWARE_CHUNK_REPLY] = msg_json_dec_chunk_reply,
};

static int msg_json_dec_type_fields(const cJSON *root, struct msg *m, struct err_info *e)
{
	return msg_json_dec_own[m->type] ? msg_json_dec_own[m->type](root, m, e) : 0;
}

/* In order: the type first (rules depend on it), the rules before the
 * type's own fields. */
static const msg_json_dec_step msg_json_dec_steps[] = {
	msg_json_dec_type,
	msg_json_dec_strings,
	msg_json_dec_numbers,
	msg_json_dec_flags,
	msg_json_dec_headers,
	msg_json_dec_objects,
	msg_json_dec_rules,
	msg_json_dec_type_fields,
};

/* Sets root[key] to s where key is absent or null. A null is replaced in
 * place: lookups find the first of two equal keys, so one added after it
 * would never be read. 0 or -ENOMEM. */
static int msg_json_default(cJSON *root, const char *key, const char *s)
{
	cJSON *v = cJSON_CreateString(s);
	bool ok = v && (cJSON_GetObjectItemCaseSensitive(root, key) ?
			cJSON_ReplaceItemInObjectCaseSensitive(root, key, v) :
			cJSON_AddItemToObject(root, key, v));

	if (!ok)
		cJSON_Delete(v);
	return ok ? 0 : -ENOMEM;
}

/* type < 0: messageType required; else it defaults to type and, when
 * given, must equal it. */
static int msg_json_decode_typed(const uint8_t *buf, size_t len, int type, const char *dev,
				 struct msg *m, struct err_info *e)
{
	const cJSON *given;
	cJSON *root = NULL;
	int rc;

	err_clear(e);
	if (!m || (!buf && len))
		return err_set(e, -EINVAL, "invalid argument");
	msg_init(m, MSG_REPORT_FIRMWARE);
	rc = msg_json_parse(buf, len, &root, e);
	if (!rc && type >= 0 && !msg_json_get(root, "messageType") &&
	    msg_json_default(root, "messageType", msg_type_name((enum msg_type)type)))
		rc = err_set(e, -ENOMEM, "out of memory");
	given = rc || !dev ? NULL : msg_json_get(root, "deviceId");
	if (!rc && dev && !given && msg_json_default(root, "deviceId", dev))
		rc = err_set(e, -ENOMEM, "out of memory");
	if (given && (!cJSON_IsString(given) || strcmp(given->valuestring, dev)))
		rc = err_set(e, -EBADMSG, "field 'deviceId': differs from the device it was sent for");
	for (size_t i = 0; !rc && i < OTAGW_ARRAY_SIZE(msg_json_dec_steps); i++)
		rc = msg_json_dec_steps[i](root, m, e);
	if (!rc && type >= 0 && m->type != (enum msg_type)type)
		rc = err_set(e, -EBADMSG, "field 'messageType': %s expected here",
			     msg_type_name((enum msg_type)type));
	cJSON_Delete(root);
	if (rc)
		msg_clear(m);
	return rc;
}

int msg_json_decode(const uint8_t *buf, size_t len, struct msg *m, struct err_info *e)
{
	return msg_json_decode_typed(buf, len, -1, NULL, m, e);
}

int msg_json_decode_as(const uint8_t *buf, size_t len, enum msg_type type,
		       const char *device_id, struct msg *m, struct err_info *e)
{
	return msg_json_decode_typed(buf, len, (int)type, device_id, m, e);
}

/* ---- encoding ---------------------------------------------------------- */

/* An object being written; the first failure sticks and later puts no-op. */
struct msg_json_w {
	cJSON *o;
	int rc;
};

static void msg_json_fail(struct msg_json_w *w, int rc)
{
	if (!w->rc)
		w->rc = rc;
}

/* Writes s; empty strings are omitted unless always. */
static void msg_json_put_str(struct msg_json_w *w, const char *key, const char *s, bool always)
{
	if (w->rc || (!s[0] && !always))
		return;
	if (!cJSON_AddStringToObject(w->o, key, s))
		msg_json_fail(w, -ENOMEM);
}

static void msg_json_put_bool(struct msg_json_w *w, const char *key, bool v)
{
	if (!w->rc && !cJSON_AddBoolToObject(w->o, key, v))
		msg_json_fail(w, -ENOMEM);
}

/* Written as exact decimal text: cJSON 1.7.15 prints doubles with 15
 * significant digits when that is "close enough", which changes integers
 * from 10^15 up. Above 2^53 a reader's double would lose digits: -EINVAL. */
static void msg_json_put_uint(struct msg_json_w *w, const char *key, uint64_t v)
{
	char digits[24];
	char *p = digits + sizeof(digits);

	if (w->rc)
		return;
	if (v > MSG_JSON_INT_MAX) {
		msg_json_fail(w, -EINVAL);
		return;
	}
	*--p = '\0';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (!cJSON_AddRawToObject(w->o, key, p))
		msg_json_fail(w, -ENOMEM);
}

/* Embeds JSON object text; NULL is {} when empty_default, else omitted. */
static void msg_json_put_obj(struct msg_json_w *w, const char *key, const char *text,
			     bool empty_default)
{
	cJSON *obj;

	if (w->rc || (!text && !empty_default))
		return;
	obj = text ? cJSON_ParseWithOpts(text, NULL, 1) : cJSON_CreateObject();
	if (!obj || !cJSON_IsObject(obj)) {
		/* Text that is not an object is the caller's bug, not ours to fix. */
		msg_json_fail(w, text ? -EINVAL : -ENOMEM);
		cJSON_Delete(obj);
		return;
	}
	if (!cJSON_AddItemToObject(w->o, key, obj)) {
		cJSON_Delete(obj);
		msg_json_fail(w, -ENOMEM);
	}
}

/* url, version ... parameters: what a device needs to fetch an image. */
static void msg_json_put_firmware(struct msg_json_w *w, const struct msg *m)
{
	msg_json_put_str(w, "firmwareId", m->firmware_id, false);
	msg_json_put_str(w, "version", m->version, false);
	msg_json_put_str(w, "url", m->url, false);
	msg_json_put_uint(w, "size", m->size);
	msg_json_put_str(w, "sign", m->sign, false);
	msg_json_put_str(w, "signMethod", m->sign_method, false);
	msg_json_put_obj(w, "parameters", m->parameters, true);
}

/* success, then code and message only on failure. */
static void msg_json_put_reply(struct msg_json_w *w, const struct msg *m)
{
	msg_json_put_bool(w, "success", m->success);
	if (m->success)
		return;
	msg_json_put_str(w, "code", m->code, false);
	msg_json_put_str(w, "message", m->error_reason, false);
	if (m->retry_after)
		msg_json_put_uint(w, "retryAfter", m->retry_after);
}

static void msg_json_enc_report(struct msg_json_w *w, const struct msg *m)
{
	msg_json_put_str(w, "version", m->version, false);
	msg_json_put_obj(w, "properties", m->properties, false);
}

static void msg_json_enc_request(struct msg_json_w *w, const struct msg *m)
{
	struct msg_json_w h = { NULL, 0 };

	msg_json_put_str(w, "currentVersion", m->current_version, false);
	/* Always written, as in the canonical form: "" means the newest. */
	msg_json_put_str(w, "requestVersion", m->request_version, true);
	if (w->rc)
		return;
	h.o = cJSON_AddObjectToObject(w->o, "headers");
	if (!h.o) {
		msg_json_fail(w, -ENOMEM);
		return;
	}
	msg_json_put_bool(&h, "force", m->force);
	msg_json_put_bool(&h, "latest", m->latest);
	msg_json_fail(w, h.rc);
}

static void msg_json_enc_request_reply(struct msg_json_w *w, const struct msg *m)
{
	msg_json_put_reply(w, m);
	if (m->success)
		msg_json_put_firmware(w, m);
}

static void msg_json_enc_progress(struct msg_json_w *w, const struct msg *m)
{
	msg_json_put_str(w, "firmwareId", m->firmware_id, false);
	msg_json_put_str(w, "version", m->version, false);
	if (m->progress < 0 || m->progress > 100)
		msg_json_fail(w, -EINVAL);
	msg_json_put_uint(w, "progress", (uint64_t)m->progress);
	msg_json_put_bool(w, "complete", m->complete);
	msg_json_put_bool(w, "success", m->success);
	msg_json_put_str(w, "errorReason", m->error_reason, false);
}

static void msg_json_enc_read(struct msg_json_w *w, const struct msg *m)
{
	(void)w;
	(void)m;
}

/* The reply fields too: a device that cannot read its version says why. */
static void msg_json_enc_read_reply(struct msg_json_w *w, const struct msg *m)
{
	msg_json_put_reply(w, m);
	msg_json_put_str(w, "version", m->version, false);
	msg_json_put_obj(w, "properties", m->properties, false);
}

static void msg_json_enc_chunk_req(struct msg_json_w *w, const struct msg *m)
{
	msg_json_put_str(w, "firmwareId", m->firmware_id, false);
	msg_json_put_uint(w, "offset", m->offset);
	if (!m->length)
		msg_json_fail(w, -EINVAL);      /* the decoder wants 1.. */
	msg_json_put_uint(w, "length", m->length);
}

/* crc32 and base64 "data" from m->data (crc32 computed, not m->crc32); with
 * data NULL and length > 0 the data goes out of band: m->crc32, no "data". */
static void msg_json_put_data(struct msg_json_w *w, const struct msg *m)
{
	size_t cap, n = 0;
	char *b64;

	if (w->rc)
		return;
	if (!m->data && m->length) {
		msg_json_put_uint(w, "crc32", m->crc32);
		return;
	}
	if (m->data_len != m->length || (!m->data && m->data_len)) {
		msg_json_fail(w, -EINVAL);
		return;
	}
	/* Refused before allocating: its base64 could never fit a message. */
	if (m->data_len > OTAGW_MSG_MAX / 4 * 3) {
		msg_json_fail(w, -EMSGSIZE);
		return;
	}
	msg_json_put_uint(w, "crc32", crc32(0L, m->data, (uInt)m->data_len));
	cap = (m->data_len + 2) / 3 * 4 + 1;
	b64 = malloc(cap);
	if (!b64 || mbedtls_base64_encode((unsigned char *)b64, cap, &n, m->data, m->data_len)) {
		free(b64);
		msg_json_fail(w, -ENOMEM);
		return;
	}
	b64[n] = '\0';
	msg_json_put_str(w, "data", b64, true);
	free(b64);
}

/* success, firmwareId, offset, then the data fields or code and message. */
static void msg_json_enc_chunk_reply(struct msg_json_w *w, const struct msg *m)
{
	msg_json_put_bool(w, "success", m->success);
	msg_json_put_str(w, "firmwareId", m->firmware_id, false);
	msg_json_put_uint(w, "offset", m->offset);
	if (!m->success) {
		msg_json_put_str(w, "code", m->code, false);
		msg_json_put_str(w, "message", m->error_reason, false);
		return;
	}
	msg_json_put_uint(w, "length", m->length);
	msg_json_put_uint(w, "size", m->size);
	msg_json_put_data(w, m);
}

static void msg_json_enc_error(struct msg_json_w *w, const struct msg *m)
{
	if (!m->code[0])
		msg_json_fail(w, -EINVAL);      /* the decoder wants a code */
	msg_json_put_str(w, "code", m->code, false);
	msg_json_put_str(w, "message", m->error_reason, false);
}

typedef void (*msg_json_enc_fn)(struct msg_json_w *w, const struct msg *m);

/* The fields each type writes after the envelope (jetlinks-firmware.md 2, 6). */
static const msg_json_enc_fn msg_json_encoders[MSG_TYPE_COUNT] = {
	[MSG_REPORT_FIRMWARE] = msg_json_enc_report,
	[MSG_REQUEST_FIRMWARE] = msg_json_enc_request,
	[MSG_REQUEST_FIRMWARE_REPLY] = msg_json_enc_request_reply,
	[MSG_UPGRADE_FIRMWARE] = msg_json_put_firmware,
	[MSG_UPGRADE_FIRMWARE_REPLY] = msg_json_put_reply,
	[MSG_UPGRADE_FIRMWARE_PROGRESS] = msg_json_enc_progress,
	[MSG_READ_FIRMWARE] = msg_json_enc_read,
	[MSG_READ_FIRMWARE_REPLY] = msg_json_enc_read_reply,
	[MSG_REQUEST_FIRMWARE_CHUNK] = msg_json_enc_chunk_req,
	[MSG_REQUEST_FIRMWARE_CHUNK_REPLY] = msg_json_enc_chunk_reply,
	[MSG_ERROR] = msg_json_enc_error,
};

static void msg_json_put_envelope(struct msg_json_w *w, const struct msg *m)
{
	int64_t ts = m->timestamp ? m->timestamp : util_now_ms();

	msg_json_put_str(w, "messageType", msg_type_name(m->type), true);
	msg_json_put_str(w, "deviceId", m->device_id, false);
	msg_json_put_str(w, "messageId", m->message_id, false);
	if (ts < 0)
		msg_json_fail(w, -EINVAL);
	msg_json_put_uint(w, "timestamp", (uint64_t)ts);
}

/* Prints w->o into a malloc'ed copy, so callers free() it whatever cJSON's
 * allocator is. */
static int msg_json_print(const cJSON *o, char **out, size_t *out_len)
{
	char *text = cJSON_PrintUnformatted(o);
	size_t n;

	if (!text)
		return -ENOMEM;
	n = strlen(text);
	if (n > OTAGW_MSG_MAX) {
		/* The decoder would refuse it; do not send what we cannot read. */
		cJSON_free(text);
		return -EMSGSIZE;
	}
	*out = malloc(n + 1);
	if (*out)
		memcpy(*out, text, n + 1);
	cJSON_free(text);
	if (!*out)
		return -ENOMEM;
	*out_len = n;
	return 0;
}

int msg_json_encode(const struct msg *m, char **out, size_t *out_len)
{
	struct msg_json_w w = { NULL, 0 };

	if (!m || !out || !out_len || (unsigned)m->type >= MSG_TYPE_COUNT)
		return -EINVAL;
	*out = NULL;
	*out_len = 0;
	w.o = cJSON_CreateObject();
	if (!w.o)
		return -ENOMEM;
	msg_json_put_envelope(&w, m);
	msg_json_encoders[m->type](&w, m);
	if (!w.rc)
		w.rc = msg_json_print(w.o, out, out_len);
	cJSON_Delete(w.o);
	return w.rc;
}
