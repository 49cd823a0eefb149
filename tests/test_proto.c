/* SPDX-License-Identifier: MIT */
/* test_proto.c - cmocka tests for the northbound wire codec (northbound/proto.c,
 * northbound/PROTOCOL.md): every downstream message decoded from its
 * documented form, a table of hostile frames with their exact error codes
 * (and what is kept for the answer: type, messageId), limits (frame size,
 * nesting, deviceIds), and every upstream encoder's output parsed back as
 * JSON with exactly the documented keys, in order; the child message round
 * trip through msg_json; the REPLY/ERROR code tables; seq rewriting.
 * Every input reaches the decoder in a heap buffer of exactly len bytes with
 * no NUL after it, so ASan reports any read past the end.
 * Must not: depend on the network, the clock's value or test order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "msg_json.h"
#include "otagw_limits.h"
#include "proto.h"
#include "records.h"
#include "util.h"

#define T_ID64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define T_ID65 T_ID64 "a"
#define T_FWUP "{\"messageType\":\"FIRMWARE_UPSERT\",\"messageId\":\"m1\","
#define T_TCREATE "{\"messageType\":\"TASK_CREATE\",\"messageId\":\"m1\","
#define T_PUB "{\"messageType\":\"TASK_PUBLISH\",\"messageId\":\"m1\",\"taskId\":\"t1\","
#define T_CHILD "{\"messageType\":\"CHILD\",\"messageId\":\"m1\",\"childDeviceId\":\"d1\","
#define T_UPG "\"childDeviceMessage\":{\"messageType\":\"UPGRADE_FIRMWARE\","
#define T_UPG_OK "\"firmwareId\":\"fw1\",\"version\":\"1.1.0\",\"url\":\"http://x/f\""

/* The documented examples of PROTOCOL.md section 6. */
static const char ex_upsert[] =
	"{\"messageType\":\"FIRMWARE_UPSERT\",\"messageId\":\"c-1\",\"firmware\":{\"id\":\"fw1\","
	"\"productId\":\"p1\",\"name\":\"sensor fw\",\"version\":\"1.1.0\",\"versionOrder\":11,"
	"\"url\":\"https://cdn.example.com/fw1.bin\",\"size\":524288,"
	"\"sign\":\"9e107d9d372bb6826bd81d3542a419d6\",\"signMethod\":\"md5\","
	"\"properties\":{\"hw\":\"A2\"}}}";
static const char ex_task_create[] =
	"{\"messageType\":\"TASK_CREATE\",\"messageId\":\"c-2\",\"timestamp\":1700000000300,"
	"\"task\":{\"id\":\"t1\",\"firmwareId\":\"fw1\",\"name\":\"roll-out 1.1.0\","
	"\"mode\":\"push\",\"timeoutSeconds\":600}}";
static const char ex_publish[] =
	"{\"messageType\":\"TASK_PUBLISH\",\"messageId\":\"c-7\",\"taskId\":\"t1\","
	"\"deviceIds\":[\"d1\",\"d2\",\"d3\"]}";
static const char ex_child[] =
	"{\"messageType\":\"CHILD\",\"messageId\":\"u-9f2c\",\"deviceId\":\"gw1\","
	"\"childDeviceId\":\"d1\",\"childDeviceMessage\":{\"messageType\":\"UPGRADE_FIRMWARE\","
	"\"deviceId\":\"d1\",\"messageId\":\"u-9f2c\",\"timestamp\":1700000002000,"
	"\"firmwareId\":\"fw1\",\"version\":\"1.1.0\",\"url\":\"https://cdn.example.com/fw1.bin\","
	"\"size\":524288,\"sign\":\"9e107d9d372bb6826bd81d3542a419d6\",\"signMethod\":\"md5\","
	"\"parameters\":{}}}";

/* ---- helpers ------------------------------------------------------------- */

/* Decodes len bytes from an exact-size heap copy (no NUL after them). */
static int dec(const char *buf, size_t len, struct proto_down *d, struct err_info *e)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	rc = proto_decode(copy, len, d, e);
	free(copy);
	return rc;
}

static int dec_str(const char *s, struct proto_down *d, struct err_info *e)
{
	return dec(s, strlen(s), d, e);
}

/* Decodes s, which must succeed. */
static void dec_ok(const char *s, struct proto_down *d)
{
	struct err_info e;
	int rc = dec_str(s, d, &e);

	if (rc)
		fail_msg("decode failed %d (%s): %.80s", rc, e.text, s);
	assert_int_equal(e.code, 0);
}

#include "test_sb.h"

/* Owns nothing: what every failed decode leaves behind. */
static void assert_owns_nothing(const struct proto_down *d)
{
	struct msg zero;

	memset(&zero, 0, sizeof(zero));
	assert_null(d->body);
	assert_null(d->device_ids);
	assert_int_equal(d->n_device_ids, 0);
	assert_memory_equal(&d->child, &zero, sizeof(zero));
	assert_int_equal(d->ack, 0);
	assert_string_equal(d->task_id, "");
	assert_string_equal(d->firmware_id, "");
}

/* Parses an encoder's output: one JSON object whose keys are exactly keys[],
 * in this order (NULL-terminated). The caller deletes it. */
static cJSON *parse_keys(const char *text, size_t len, const char *const *keys)
{
	cJSON *o, *it;
	size_t i = 0;

	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	assert_null(strchr(text, '\n'));        /* compact, one line */
	o = cJSON_ParseWithLength(text, len);
	assert_non_null(o);
	assert_true(cJSON_IsObject(o));
	cJSON_ArrayForEach(it, o) {
		if (!keys[i] || strcmp(keys[i], it->string))
			fail_msg("key %zu is '%s', want '%s' in %s", i, it->string,
				 keys[i] ? keys[i] : "(end)", text);
		i++;
	}
	if (keys[i])
		fail_msg("key '%s' missing in %s", keys[i], text);
	return o;
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);

	assert_true(cJSON_IsString(it));
	return it->valuestring;
}

static double jnum(const cJSON *o, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);

	assert_true(cJSON_IsNumber(it));
	return it->valuedouble;
}

static bool jbool(const cJSON *o, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);

	assert_true(cJSON_IsBool(it));
	return cJSON_IsTrue(it);
}

/* ---- downstream: the documented messages ---------------------------------- */

static void test_dec_hello_ack(void **state)
{
	struct proto_down d;

	(void)state;
	dec_ok("{\"messageType\":\"HELLO_ACK\",\"ackSeq\":41}", &d);
	assert_int_equal(d.type, PROTO_DOWN_HELLO_ACK);
	assert_int_equal(d.ack, 41);
	assert_string_equal(d.message_id, "");
	proto_down_clear(&d);
	dec_ok("{\"messageType\":\"HELLO_ACK\",\"ackSeq\":0,\"timestamp\":1700000000000}", &d);
	assert_int_equal(d.ack, 0);
	assert_int_equal(d.timestamp, 1700000000000LL);
	proto_down_clear(&d);
	/* The largest number on the wire, exactly. */
	dec_ok("{\"messageType\":\"HELLO_ACK\",\"ackSeq\":9007199254740991}", &d);
	assert_true(d.ack == PROTO_INT_MAX);
	proto_down_clear(&d);
}

static void test_dec_ack(void **state)
{
	struct proto_down d;

	(void)state;
	dec_ok("{\"messageType\":\"ACK\",\"ack\":44}", &d);
	assert_int_equal(d.type, PROTO_DOWN_ACK);
	assert_int_equal(d.ack, 44);
	assert_false(proto_down_is_command(d.type));
	proto_down_clear(&d);
	/* Whitespace anywhere JSON allows it. */
	dec_ok(" {\r\n\t\"ack\" : 7 , \"messageType\" : \"ACK\" }\n", &d);
	assert_int_equal(d.ack, 7);
	proto_down_clear(&d);
}

static void test_dec_error(void **state)
{
	struct proto_down d;

	(void)state;
	dec_ok("{\"messageType\":\"ERROR\",\"code\":\"invalid\",\"message\":\"bad frame\","
	       "\"seq\":12,\"messageId\":\"c-4\"}", &d);
	assert_int_equal(d.type, PROTO_DOWN_ERROR);
	assert_string_equal(d.code, "invalid");
	assert_string_equal(d.message, "bad frame");
	assert_int_equal(d.seq, 12);
	assert_string_equal(d.message_id, "c-4");
	proto_down_clear(&d);
	dec_ok("{\"messageType\":\"ERROR\",\"code\":\"unauthorized\"}", &d);
	assert_string_equal(d.code, "unauthorized");
	assert_string_equal(d.message, "");
	assert_int_equal(d.seq, 0);
	proto_down_clear(&d);
}

static void test_dec_firmware_upsert(void **state)
{
	struct proto_down d;
	char *text;

	(void)state;
	dec_ok(ex_upsert, &d);
	assert_int_equal(d.type, PROTO_DOWN_FIRMWARE_UPSERT);
	assert_true(proto_down_is_command(d.type));
	assert_string_equal(d.message_id, "c-1");
	assert_string_equal(d.firmware_id, "fw1");
	/* The body is the firmware object as sent, for catalogue_create(). */
	assert_true(cJSON_IsObject(d.body));
	assert_null(d.body->next);              /* detached: a tree of its own */
	assert_null(d.body->prev);
	text = cJSON_PrintUnformatted(d.body);
	assert_string_equal(text, "{\"id\":\"fw1\",\"productId\":\"p1\",\"name\":\"sensor fw\","
			    "\"version\":\"1.1.0\",\"versionOrder\":11,"
			    "\"url\":\"https://cdn.example.com/fw1.bin\",\"size\":524288,"
			    "\"sign\":\"9e107d9d372bb6826bd81d3542a419d6\",\"signMethod\":\"md5\","
			    "\"properties\":{\"hw\":\"A2\"}}");
	cJSON_free(text);
	proto_down_clear(&d);
	assert_null(d.body);
	/* headers (JetLinks) are allowed on commands and ignored. */
	dec_ok(T_FWUP "\"headers\":{\"async\":true},\"firmware\":{\"id\":\"" T_ID64 "\"}}", &d);
	assert_string_equal(d.firmware_id, T_ID64);
	assert_string_equal(d.message_id, "m1");
	proto_down_clear(&d);
}

static void test_dec_firmware_delete(void **state)
{
	struct proto_down d;

	(void)state;
	dec_ok("{\"messageType\":\"FIRMWARE_DELETE\",\"messageId\":\"" T_ID64 "\","
	       "\"firmwareId\":\"fw.1:a_b-c\"}", &d);
	assert_int_equal(d.type, PROTO_DOWN_FIRMWARE_DELETE);
	assert_string_equal(d.message_id, T_ID64);
	assert_string_equal(d.firmware_id, "fw.1:a_b-c");
	assert_null(d.body);
	proto_down_clear(&d);
}

static void test_dec_task_create(void **state)
{
	struct proto_down d;
	char *text;

	(void)state;
	dec_ok(ex_task_create, &d);
	assert_int_equal(d.type, PROTO_DOWN_TASK_CREATE);
	assert_string_equal(d.message_id, "c-2");
	assert_int_equal(d.timestamp, 1700000000300LL);
	assert_string_equal(d.task_id, "t1");
	assert_string_equal(d.firmware_id, "fw1");
	/* The body is what tasks_create() takes: firmwareId moved out. */
	text = cJSON_PrintUnformatted(d.body);
	assert_string_equal(text, "{\"id\":\"t1\",\"name\":\"roll-out 1.1.0\",\"mode\":\"push\","
			    "\"timeoutSeconds\":600}");
	cJSON_free(text);
	proto_down_clear(&d);
}

static void test_dec_task_publish(void **state)
{
	struct proto_down d;

	(void)state;
	dec_ok(ex_publish, &d);
	assert_int_equal(d.type, PROTO_DOWN_TASK_PUBLISH);
	assert_string_equal(d.task_id, "t1");
	assert_false(d.all);
	assert_int_equal(d.n_device_ids, 3);
	assert_string_equal(d.device_ids[0], "d1");
	assert_string_equal(d.device_ids[1], "d2");
	assert_string_equal(d.device_ids[2], "d3");
	proto_down_clear(&d);
	/* all:false with ids; duplicates are kept (tasks_publish counts them). */
	dec_ok(T_PUB "\"all\":false,\"deviceIds\":[\"d1\",\"d1\"]}", &d);
	assert_int_equal(d.n_device_ids, 2);
	assert_string_equal(d.device_ids[1], "d1");
	proto_down_clear(&d);
	dec_ok(T_PUB "\"all\":true}", &d);
	assert_true(d.all);
	assert_null(d.device_ids);
	assert_int_equal(d.n_device_ids, 0);
	proto_down_clear(&d);
}

static void test_dec_task_cancel(void **state)
{
	struct proto_down d;

	(void)state;
	dec_ok("{\"messageType\":\"TASK_CANCEL\",\"messageId\":\"m\",\"taskId\":\"t1\"}", &d);
	assert_int_equal(d.type, PROTO_DOWN_TASK_CANCEL);
	assert_string_equal(d.task_id, "t1");
	proto_down_clear(&d);
}

static void test_dec_child_upgrade(void **state)
{
	struct proto_down d;

	(void)state;
	dec_ok(ex_child, &d);
	assert_int_equal(d.type, PROTO_DOWN_CHILD_UPGRADE);
	assert_string_equal(proto_down_type_name(d.type), "CHILD");
	assert_string_equal(d.message_id, "u-9f2c");
	assert_string_equal(d.gateway_id, "gw1");
	assert_int_equal(d.timeout_seconds, 0);
	assert_int_equal(d.child.type, MSG_UPGRADE_FIRMWARE);
	assert_string_equal(d.child.device_id, "d1");
	assert_string_equal(d.child.message_id, "u-9f2c");
	assert_int_equal(d.child.timestamp, 1700000002000LL);
	assert_string_equal(d.child.firmware_id, "fw1");
	assert_string_equal(d.child.version, "1.1.0");
	assert_string_equal(d.child.url, "https://cdn.example.com/fw1.bin");
	assert_int_equal(d.child.size, 524288);
	assert_string_equal(d.child.sign, "9e107d9d372bb6826bd81d3542a419d6");
	assert_string_equal(d.child.sign_method, "md5");
	assert_string_equal(d.child.parameters, "{}");
	proto_down_clear(&d);
}

/* The inner deviceId and messageId default to the outer ones; the type
 * name is case-insensitive (JetLinks); unknown inner keys are ignored. */
static void test_dec_child_defaults(void **state)
{
	struct proto_down d;

	(void)state;
	dec_ok(T_CHILD "\"timeoutSeconds\":600,\"childDeviceMessage\":{"
	       "\"messageType\":\"upgrade_firmware\",\"thingType\":\"device\"," T_UPG_OK "}}", &d);
	assert_string_equal(d.gateway_id, "");
	assert_int_equal(d.timeout_seconds, 600);
	assert_string_equal(d.child.device_id, "d1");
	assert_string_equal(d.child.message_id, "m1");
	assert_null(d.child.parameters);
	proto_down_clear(&d);
	dec_ok(T_CHILD T_UPG "\"messageId\":\"inner\"," T_UPG_OK "}}", &d);
	assert_string_equal(d.message_id, "m1");
	assert_string_equal(d.child.message_id, "inner");
	proto_down_clear(&d);
}

/* Decode, keep, clear, reuse: clear leaves a zeroed struct. */
static void test_down_clear(void **state)
{
	struct proto_down d, zero;

	(void)state;
	memset(&zero, 0, sizeof(zero));
	proto_down_clear(NULL);
	dec_ok(ex_child, &d);
	proto_down_clear(&d);
	assert_memory_equal(&d, &zero, sizeof(d));
	dec_ok(ex_publish, &d);
	proto_down_clear(&d);
	assert_memory_equal(&d, &zero, sizeof(d));
	proto_down_clear(&d);                   /* twice is fine */
}

/* ---- downstream: hostile frames --------------------------------------------- */

struct hostile {
	const char *buf;
	size_t len;
	int code;
	enum proto_down_type type;      /* kept for the answer */
	const char *message_id;         /* kept for the answer */
	const char *needle;             /* substring of e.text, or NULL */
};

/* sizeof, not strlen: some cases carry NUL bytes inside len. */
#define H(s, c, t, id, n) { s, sizeof(s) - 1, c, PROTO_DOWN_##t, id, n }
#define ACK_ "{\"messageType\":\"ACK\","
#define DEL_ "{\"messageType\":\"FIRMWARE_DELETE\",\"messageId\":\"m1\","

static const struct hostile hostile_cases[] = {
	/* not a JSON object */
	H("", -EBADMSG, UNKNOWN, "", "empty"),
	H("   ", -EBADMSG, UNKNOWN, "", "malformed"),
	H("not json", -EBADMSG, UNKNOWN, "", "malformed"),
	H("[]", -EBADMSG, UNKNOWN, "", "object"),
	H("[{\"messageType\":\"ACK\",\"ack\":1}]", -EBADMSG, UNKNOWN, "", "object"),
	H("null", -EBADMSG, UNKNOWN, "", "object"),
	H("42", -EBADMSG, UNKNOWN, "", "object"),
	H("\"ACK\"", -EBADMSG, UNKNOWN, "", "object"),
	H("{", -EBADMSG, UNKNOWN, "", "malformed"),
	H("{\"messageType\":\"ACK\",\"ack\":1", -EBADMSG, UNKNOWN, "", "malformed"),
	H("{\"messageType\":\"ACK\",\"ack\":1}x", -EBADMSG, UNKNOWN, "", "malformed"),
	H("{\"messageType\":\"ACK\",\"ack\":1}{}", -EBADMSG, UNKNOWN, "", "malformed"),
	H("{'messageType':'ACK'}", -EBADMSG, UNKNOWN, "", "malformed"),
	H("{\"messageType\":\"ACK\",\"ack\":1,}", -EBADMSG, UNKNOWN, "", "malformed"),
	/* what cJSON would let through, refused on the raw bytes */
	H(ACK_ "\"ack\":01}", -EBADMSG, UNKNOWN, "", "leading zero"),
	H("{\"messageType\":\"AC\xff\",\"ack\":1}", -EBADMSG, UNKNOWN, "", "UTF-8"),
	H("{\"messageType\":\"\xc0\xaf\",\"ack\":1}", -EBADMSG, UNKNOWN, "", "UTF-8"),
	H("{\"messageType\":\"\xed\xa0\x80\",\"ack\":1}", -EBADMSG, UNKNOWN, "", "UTF-8"),
	H("{\"messageType\":\"\xf4\x90\x80\x80\",\"ack\":1}", -EBADMSG, UNKNOWN, "", "UTF-8"),
	H("{\"messageType\":\"ACK\xe2\x82\",\"ack\":1}", -EBADMSG, UNKNOWN, "", "UTF-8"),
	H("{\"messageType\":\"A\x01\",\"ack\":1}", -EBADMSG, UNKNOWN, "", "control"),
	H("{\"messageType\":\"ACK\\u0000x\",\"ack\":1}", -EBADMSG, UNKNOWN, "", "NUL"),
	H("{\"messageType\":\"ACK\",\"ack\":1}\0", -EBADMSG, UNKNOWN, "", "NUL byte"),
	H("{\"messageType\":\"ACK\"\0,\"ack\":1}", -EBADMSG, UNKNOWN, "", "NUL byte"),
	/* messageType */
	H("{\"ack\":1}", -EBADMSG, UNKNOWN, "", "'messageType' is required"),
	H("{\"messageType\":null,\"ack\":1}", -EBADMSG, UNKNOWN, "", "messageType"),
	H("{\"messageType\":5,\"ack\":1}", -EBADMSG, UNKNOWN, "", "messageType"),
	H("{\"messageType\":[\"ACK\"],\"ack\":1}", -EBADMSG, UNKNOWN, "", "messageType"),
	H("{\"messageType\":\"NOPE\"}", -ENOTSUP, UNKNOWN, "", "unknown messageType"),
	H("{\"messageType\":\"NOPE\",\"messageId\":\"m7\",\"x\":[1]}", -ENOTSUP, UNKNOWN, "m7",
	  "unknown messageType"),
	H("{\"messageType\":\"ack\",\"ack\":1}", -ENOTSUP, UNKNOWN, "", "unknown"),
	H("{\"messageType\":\"\",\"messageId\":\"m7\"}", -ENOTSUP, UNKNOWN, "m7", "unknown"),
	H("{\"messageType\":\"NOPE\",\"messageId\":\"a b\"}", -EBADMSG, UNKNOWN, "", "messageId"),
	/* messageId */
	H("{\"messageType\":\"FIRMWARE_DELETE\",\"firmwareId\":\"f\"}", -EBADMSG,
	  FIRMWARE_DELETE, "", "'messageId' is required"),
	H("{\"messageType\":\"TASK_CANCEL\",\"messageId\":null,\"taskId\":\"t\"}", -EBADMSG,
	  TASK_CANCEL, "", "null"),
	H("{\"messageType\":\"TASK_CANCEL\",\"messageId\":7,\"taskId\":\"t\"}", -EBADMSG,
	  TASK_CANCEL, "", "messageId"),
	H("{\"messageType\":\"TASK_CANCEL\",\"messageId\":\"\",\"taskId\":\"t\"}", -EBADMSG,
	  TASK_CANCEL, "", "messageId"),
	H("{\"messageType\":\"TASK_CANCEL\",\"messageId\":\"a/b\",\"taskId\":\"t\"}", -EBADMSG,
	  TASK_CANCEL, "", "messageId"),
	H("{\"messageType\":\"TASK_CANCEL\",\"messageId\":\"" T_ID65 "\",\"taskId\":\"t\"}",
	  -EBADMSG, TASK_CANCEL, "", "messageId"),
	/* envelope: unknown and duplicate keys, timestamp, headers */
	H(ACK_ "\"ack\":1,\"x\":1}", -EBADMSG, ACK, "", "unknown field 'x'"),
	H(ACK_ "\"ack\":1,\"ack\":2}", -EBADMSG, ACK, "", "duplicate field 'ack'"),
	H(ACK_ "\"ack\":1,\"messageType\":\"ACK\"}", -EBADMSG, ACK, "", "duplicate"),
	H(ACK_ "\"ack\":1,\"messageId\":\"m1\"}", -EBADMSG, ACK, "m1", "unknown field"),
	H(ACK_ "\"ack\":1,\"headers\":{}}", -EBADMSG, ACK, "", "unknown field 'headers'"),
	H(ACK_ "\"ack\":1,\"timestamp\":-1}", -EBADMSG, ACK, "", "timestamp"),
	H(ACK_ "\"ack\":1,\"timestamp\":\"now\"}", -EBADMSG, ACK, "", "timestamp"),
	H(ACK_ "\"ack\":1,\"timestamp\":1.5}", -EBADMSG, ACK, "", "timestamp"),
	H(DEL_ "\"firmwareId\":\"f\",\"headers\":[]}", -EBADMSG, FIRMWARE_DELETE, "m1", "headers"),
	H(DEL_ "\"firmwareId\":\"f\",\"headers\":null}", -EBADMSG, FIRMWARE_DELETE, "m1",
	  "headers"),
	/* numbers: ack, ackSeq, seq */
	H(ACK_ "\"ack\":null}", -EBADMSG, ACK, "", "null"),
	H(ACK_ "\"ack\":\"1\"}", -EBADMSG, ACK, "", "ack"),
	H(ACK_ "\"ack\":true}", -EBADMSG, ACK, "", "ack"),
	H(ACK_ "\"ack\":-1}", -EBADMSG, ACK, "", "ack"),
	H(ACK_ "\"ack\":1.5}", -EBADMSG, ACK, "", "ack"),
	H(ACK_ "\"ack\":9007199254740992}", -EBADMSG, ACK, "", "ack"),
	H(ACK_ "\"ack\":18446744073709551616}", -EBADMSG, ACK, "", "ack"),
	H(ACK_ "\"ack\":1e999}", -EBADMSG, ACK, "", "ack"),
	H(ACK_ "\"ack\":-1e999}", -EBADMSG, ACK, "", "ack"),
	H(ACK_ "\"ack\":{}}", -EBADMSG, ACK, "", "ack"),
	H("{\"messageType\":\"ACK\"}", -EBADMSG, ACK, "", "'ack' is required"),
	H("{\"messageType\":\"HELLO_ACK\"}", -EBADMSG, HELLO_ACK, "", "'ackSeq' is required"),
	H("{\"messageType\":\"HELLO_ACK\",\"ack\":1}", -EBADMSG, HELLO_ACK, "", "unknown field"),
	H("{\"messageType\":\"ERROR\",\"code\":\"x\",\"seq\":-3}", -EBADMSG, ERROR, "", "seq"),
	/* ERROR */
	H("{\"messageType\":\"ERROR\"}", -EBADMSG, ERROR, "", "'code' is required"),
	H("{\"messageType\":\"ERROR\",\"code\":\"\"}", -EBADMSG, ERROR, "", "code"),
	H("{\"messageType\":\"ERROR\",\"code\":\"" T_ID65 "\"}", -EBADMSG, ERROR, "", "too long"),
	H("{\"messageType\":\"ERROR\",\"code\":1}", -EBADMSG, ERROR, "", "code"),
	/* ids that must never become paths or SQL */
	H(DEL_ "\"firmwareId\":\"../etc/passwd\"}", -EBADMSG, FIRMWARE_DELETE, "m1",
	  "firmwareId"),
	H(DEL_ "\"firmwareId\":\"a b\"}", -EBADMSG, FIRMWARE_DELETE, "m1", "firmwareId"),
	H(DEL_ "\"firmwareId\":\"x';--\"}", -EBADMSG, FIRMWARE_DELETE, "m1", "firmwareId"),
	H(DEL_ "\"firmwareId\":\"\xc3\xa9t\xc3\xa9\"}", -EBADMSG, FIRMWARE_DELETE, "m1",
	  "firmwareId"),
	H(DEL_ "\"firmwareId\":\"" T_ID65 "\"}", -EBADMSG, FIRMWARE_DELETE, "m1", "firmwareId"),
	H(DEL_ "\"firmwareId\":\"\"}", -EBADMSG, FIRMWARE_DELETE, "m1", "firmwareId"),
	H(DEL_ "\"firmwareId\":7}", -EBADMSG, FIRMWARE_DELETE, "m1", "firmwareId"),
	H(DEL_ "\"id\":\"f\"}", -EBADMSG, FIRMWARE_DELETE, "m1", "unknown field 'id'"),
	/* FIRMWARE_UPSERT */
	H(T_FWUP "\"firmware\":null}", -EBADMSG, FIRMWARE_UPSERT, "m1", "firmware"),
	H(T_FWUP "\"firmware\":[]}", -EBADMSG, FIRMWARE_UPSERT, "m1", "expected an object"),
	H(T_FWUP "\"firmware\":\"fw1\"}", -EBADMSG, FIRMWARE_UPSERT, "m1", "expected an object"),
	H(T_FWUP "\"firmwareId\":\"fw1\"}", -EBADMSG, FIRMWARE_UPSERT, "m1", "unknown field"),
	H(T_FWUP "\"firmware\":{}}", -EBADMSG, FIRMWARE_UPSERT, "m1", "in 'firmware'"),
	H(T_FWUP "\"firmware\":{\"id\":\"a/b\"}}", -EBADMSG, FIRMWARE_UPSERT, "m1",
	  "in 'firmware': field 'id'"),
	H(T_FWUP "\"firmware\":{\"id\":null}}", -EBADMSG, FIRMWARE_UPSERT, "m1", "null"),
	H(T_FWUP "\"firmware\":{\"id\":\"f\",\"url\":\"/images/f2\"}}", -EBADMSG,
	  FIRMWARE_UPSERT, "m1", "in 'firmware': field 'url'"),
	H(T_FWUP "\"firmware\":{\"id\":\"f\",\"url\":\"file:///etc/passwd\"}}", -EBADMSG,
	  FIRMWARE_UPSERT, "m1", "http://"),
	/* TASK_CREATE */
	H(T_TCREATE "\"task\":7}", -EBADMSG, TASK_CREATE, "m1", "expected an object"),
	H(T_TCREATE "\"task\":{\"id\":\"t1\"}}", -EBADMSG, TASK_CREATE, "m1",
	  "in 'task': field 'firmwareId' is required"),
	H(T_TCREATE "\"task\":{\"firmwareId\":\"f\"}}", -EBADMSG, TASK_CREATE, "m1",
	  "in 'task': field 'id' is required"),
	H(T_TCREATE "\"task\":{\"id\":\"t1\",\"firmwareId\":\"..\\/x\"}}", -EBADMSG, TASK_CREATE,
	  "m1", "firmwareId"),
	H(T_TCREATE "\"taskId\":\"t1\"}", -EBADMSG, TASK_CREATE, "m1", "unknown field"),
	/* TASK_PUBLISH */
	H(T_PUB "\"deviceIds\":\"d1\"}", -EBADMSG, TASK_PUBLISH, "m1", "expected an array"),
	H(T_PUB "\"deviceIds\":{\"0\":\"d1\"}}", -EBADMSG, TASK_PUBLISH, "m1", "array"),
	H(T_PUB "\"deviceIds\":null}", -EBADMSG, TASK_PUBLISH, "m1", "array"),
	H(T_PUB "\"deviceIds\":[]}", -EBADMSG, TASK_PUBLISH, "m1", "empty"),
	H(T_PUB "\"deviceIds\":[1]}", -EBADMSG, TASK_PUBLISH, "m1", "element 0"),
	H(T_PUB "\"deviceIds\":[null]}", -EBADMSG, TASK_PUBLISH, "m1", "element 0"),
	H(T_PUB "\"deviceIds\":[[\"d1\"]]}", -EBADMSG, TASK_PUBLISH, "m1", "element 0"),
	H(T_PUB "\"deviceIds\":[\"d1\",\"bad id\"]}", -EBADMSG, TASK_PUBLISH, "m1", "element 1"),
	H(T_PUB "\"deviceIds\":[\"d1\",\"" T_ID65 "\"]}", -EBADMSG, TASK_PUBLISH, "m1",
	  "element 1"),
	H(T_PUB "\"deviceIds\":[\"\"]}", -EBADMSG, TASK_PUBLISH, "m1", "element 0"),
	H(T_PUB "\"all\":true,\"deviceIds\":[\"d1\"]}", -EBADMSG, TASK_PUBLISH, "m1", "exclude"),
	H(T_PUB "\"all\":false}", -EBADMSG, TASK_PUBLISH, "m1", "'deviceIds' is required"),
	H("{\"messageType\":\"TASK_PUBLISH\",\"messageId\":\"m1\",\"taskId\":\"t1\"}", -EBADMSG,
	  TASK_PUBLISH, "m1", "'deviceIds' is required"),
	H(T_PUB "\"all\":\"yes\"}", -EBADMSG, TASK_PUBLISH, "m1", "boolean"),
	H(T_PUB "\"all\":1}", -EBADMSG, TASK_PUBLISH, "m1", "boolean"),
	H(T_PUB "\"all\":null}", -EBADMSG, TASK_PUBLISH, "m1", "boolean"),
	H("{\"messageType\":\"TASK_PUBLISH\",\"messageId\":\"m1\",\"all\":true}", -EBADMSG,
	  TASK_PUBLISH, "m1", "'taskId' is required"),
	/* CHILD */
	H("{\"messageType\":\"CHILD\",\"messageId\":\"m1\"," T_UPG T_UPG_OK "}}", -EBADMSG,
	  CHILD_UPGRADE, "m1", "'childDeviceId' is required"),
	H(T_CHILD "\"x\":1}", -EBADMSG, CHILD_UPGRADE, "m1", "unknown field"),
	H(T_CHILD "\"timeoutSeconds\":1}", -EBADMSG, CHILD_UPGRADE, "m1", "childDeviceMessage"),
	H(T_CHILD "\"childDeviceMessage\":\"x\"}", -EBADMSG, CHILD_UPGRADE, "m1", "object"),
	H(T_CHILD "\"childDeviceMessage\":null}", -EBADMSG, CHILD_UPGRADE, "m1", "object"),
	H(T_CHILD "\"deviceId\":\"a b\"," T_UPG T_UPG_OK "}}", -EBADMSG, CHILD_UPGRADE, "m1",
	  "deviceId"),
	H(T_CHILD "\"timeoutSeconds\":2592001," T_UPG T_UPG_OK "}}", -EBADMSG, CHILD_UPGRADE,
	  "m1", "timeoutSeconds"),
	H(T_CHILD "\"childDeviceMessage\":{" T_UPG_OK "}}", -EBADMSG, CHILD_UPGRADE, "m1",
	  "in 'childDeviceMessage': field 'messageType'"),
	H(T_CHILD "\"childDeviceMessage\":{\"messageType\":7," T_UPG_OK "}}", -EBADMSG,
	  CHILD_UPGRADE, "m1", "messageType"),
	H(T_CHILD "\"childDeviceMessage\":{\"messageType\":\"REPORT_FIRMWARE\","
	  "\"version\":\"1\"}}", -ENOTSUP, CHILD_UPGRADE, "m1", "only UPGRADE_FIRMWARE"),
	H(T_CHILD "\"childDeviceMessage\":{\"messageType\":\"SOMETHING\"}}", -ENOTSUP,
	  CHILD_UPGRADE, "m1", "only UPGRADE_FIRMWARE"),
	H(T_CHILD T_UPG "\"deviceId\":\"d2\"," T_UPG_OK "}}", -EBADMSG, CHILD_UPGRADE, "m1",
	  "deviceId"),
	H(T_CHILD T_UPG "\"version\":\"1\",\"url\":\"http://x\"}}", -EBADMSG, CHILD_UPGRADE, "m1",
	  "'firmwareId' is required"),
	H(T_CHILD T_UPG "\"firmwareId\":\"../f\",\"version\":\"1\",\"url\":\"http://x\"}}",
	  -EBADMSG, CHILD_UPGRADE, "m1", "firmwareId"),
	H(T_CHILD T_UPG "\"firmwareId\":\"f\",\"url\":\"http://x\"}}", -EBADMSG, CHILD_UPGRADE,
	  "m1", "'version' is required"),
	H(T_CHILD T_UPG "\"firmwareId\":\"f\",\"version\":\"1\"}}", -EBADMSG, CHILD_UPGRADE, "m1",
	  "'url' is required"),
	H(T_CHILD T_UPG "\"firmwareId\":\"f\",\"version\":\"1\",\"url\":\"/images/f\"}}",
	  -EBADMSG, CHILD_UPGRADE, "m1", "field 'url': expected http"),
	H(T_CHILD T_UPG "\"firmwareId\":\"f\",\"version\":\"1\",\"url\":\"ftp://h/f\"}}",
	  -EBADMSG, CHILD_UPGRADE, "m1", "field 'url': expected http"),
	H(T_CHILD T_UPG "\"messageId\":\"a b\"," T_UPG_OK "}}", -EBADMSG, CHILD_UPGRADE, "m1",
	  "messageId"),
	H(T_CHILD T_UPG "\"size\":\"big\"," T_UPG_OK "}}", -EBADMSG, CHILD_UPGRADE, "m1",
	  "in 'childDeviceMessage': field 'size'"),
	H(T_CHILD T_UPG "\"size\":-1," T_UPG_OK "}}", -EBADMSG, CHILD_UPGRADE, "m1", "size"),
	H(T_CHILD T_UPG "\"parameters\":[]," T_UPG_OK "}}", -EBADMSG, CHILD_UPGRADE, "m1",
	  "parameters"),
	H(T_CHILD T_UPG "\"version\":7,\"firmwareId\":\"f\",\"url\":\"http://u\"}}", -EBADMSG,
	  CHILD_UPGRADE, "m1", "version"),
};

static void test_hostile_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(hostile_cases); i++) {
		const struct hostile *c = &hostile_cases[i];
		struct proto_down d;
		struct err_info e;
		int rc;

		memset(&d, 0x5a, sizeof(d));    /* decode must not trust old contents */
		rc = dec(c->buf, c->len, &d, &e);
		if (rc != c->code || e.code != c->code)
			fail_msg("case %zu (%.70s): rc %d, e.code %d (%s), want %d", i, c->buf, rc,
				 e.code, e.text, c->code);
		if (c->needle && !strstr(e.text, c->needle))
			fail_msg("case %zu (%.70s): text '%s' lacks '%s'", i, c->buf, e.text,
				 c->needle);
		if (d.type != c->type || strcmp(d.message_id, c->message_id))
			fail_msg("case %zu (%.70s): kept type %d id '%s', want %d '%s'", i, c->buf,
				 d.type, d.message_id, c->type, c->message_id);
		assert_owns_nothing(&d);
		/* REPLY exactly when a command or an unknown type kept its messageId. */
		assert_int_equal(proto_down_wants_reply(rc, &d),
				 c->message_id[0] && (proto_down_is_command(c->type) ||
						      c->type == PROTO_DOWN_UNKNOWN));
		proto_down_clear(&d);
		/* A NULL err_info changes nothing but the detail. */
		assert_int_equal(dec(c->buf, c->len, &d, NULL), c->code);
		assert_owns_nothing(&d);
	}
}

static void test_bad_args(void **state)
{
	struct proto_down d;
	struct err_info e;

	(void)state;
	assert_int_equal(proto_decode((const uint8_t *)"{}", 2, NULL, &e), -EINVAL);
	assert_int_equal(proto_decode(NULL, 5, &d, &e), -EINVAL);
	assert_int_equal(proto_decode(NULL, 0, &d, &e), -EBADMSG);
	assert_int_equal(d.type, PROTO_DOWN_UNKNOWN);
}

/* Exactly PROTO_FRAME_MAX bytes decode; one more is -EMSGSIZE before any
 * parsing (the type is not even looked at). */
static void test_frame_max(void **state)
{
	static const char ack[] = "{\"messageType\":\"ACK\",\"ack\":5}";
	struct sb b = { NULL, 0 };
	struct proto_down d;
	struct err_info e;

	(void)state;
	sb_add(&b, ack);
	b.n--;                                   /* drop the '}' */
	sb_rep(&b, " ", PROTO_FRAME_MAX - b.n - 1);
	sb_add(&b, "}");
	assert_int_equal(b.n, PROTO_FRAME_MAX);
	assert_int_equal(dec(b.p, b.n, &d, &e), 0);
	assert_int_equal(d.ack, 5);
	proto_down_clear(&d);
	sb_add(&b, " ");
	assert_int_equal(dec(b.p, b.n, &d, &e), -EMSGSIZE);
	assert_int_equal(e.code, -EMSGSIZE);
	assert_int_equal(d.type, PROTO_DOWN_UNKNOWN);
	free(b.p);
	/* 16 MiB of garbage: refused on its length alone. */
	b.p = NULL;
	b.n = 0;
	sb_rep(&b, "[", 16 * 1024 * 1024);
	assert_int_equal(dec(b.p, b.n, &d, &e), -EMSGSIZE);
	free(b.p);
}

/* Depth 32 is fine, 33 is not, and a million brackets cannot exhaust the
 * stack (refused before cJSON recurses). */
static void test_deep_nesting(void **state)
{
	struct sb b = { NULL, 0 };
	struct proto_down d;
	struct err_info e;

	(void)state;
	/* root (1) > firmware (2) > properties (3) > 29 more = 32 */
	sb_add(&b, T_FWUP "\"firmware\":{\"id\":\"f\",\"properties\":");
	sb_rep(&b, "{\"a\":", 30);
	sb_add(&b, "1");
	sb_rep(&b, "}", 30);
	sb_add(&b, "}}");
	assert_int_equal(dec(b.p, b.n, &d, &e), 0);
	proto_down_clear(&d);
	free(b.p);
	b.p = NULL;
	b.n = 0;
	sb_add(&b, T_FWUP "\"firmware\":{\"id\":\"f\",\"properties\":");
	sb_rep(&b, "{\"a\":", 31);
	sb_add(&b, "1");
	sb_rep(&b, "}", 31);
	sb_add(&b, "}}");
	assert_int_equal(dec(b.p, b.n, &d, &e), -EBADMSG);
	assert_non_null(strstr(e.text, "nested"));
	assert_int_equal(d.type, PROTO_DOWN_UNKNOWN);
	free(b.p);
	b.p = NULL;
	b.n = 0;
	sb_add(&b, ACK_ "\"ack\":1,\"x\":");
	sb_rep(&b, "[", 1000000);
	assert_int_equal(dec(b.p, b.n, &d, &e), -EBADMSG);
	free(b.p);
	/* Brackets inside strings, escaped quotes included, do not count. */
	b.p = NULL;
	b.n = 0;
	sb_add(&b, "{\"messageType\":\"ERROR\",\"code\":\"x\",\"message\":\"\\\"");
	sb_rep(&b, "[{", 100);
	sb_add(&b, "\"}");
	assert_int_equal(dec(b.p, b.n, &d, &e), 0);
	assert_int_equal(strlen(d.message), 201);
	proto_down_clear(&d);
	free(b.p);
}

/* deviceIds: PROTO_DEVICE_IDS_MAX decode, one more is -E2BIG, and the
 * messageId survives for the REPLY. */
static void test_device_ids_cap(void **state)
{
	struct sb b = { NULL, 0 };
	struct proto_down d;
	struct err_info e;

	(void)state;
	sb_add(&b, T_PUB "\"deviceIds\":[\"" T_ID64 "\"");
	sb_rep(&b, ",\"" T_ID64 "\"", PROTO_DEVICE_IDS_MAX - 1);
	sb_add(&b, "]}");
	assert_int_equal(dec(b.p, b.n, &d, &e), 0);
	assert_int_equal(d.n_device_ids, PROTO_DEVICE_IDS_MAX);
	assert_string_equal(d.device_ids[PROTO_DEVICE_IDS_MAX - 1], T_ID64);
	proto_down_clear(&d);
	b.n -= 2;
	b.p[b.n] = '\0';
	sb_add(&b, ",\"d1\"]}");
	assert_int_equal(dec(b.p, b.n, &d, &e), -E2BIG);
	assert_int_equal(e.code, -E2BIG);
	assert_int_equal(d.type, PROTO_DOWN_TASK_PUBLISH);
	assert_string_equal(d.message_id, "m1");
	assert_null(d.device_ids);
	assert_string_equal(proto_reply_code(-E2BIG), "invalid");
	free(b.p);
}

/* The child message's own caps (msg_json) apply inside the frame: a
 * parameters object over OTAGW_PROPS_MAX is invalid, not too large. */
static void test_child_caps(void **state)
{
	struct sb b = { NULL, 0 };
	struct proto_down d;
	struct err_info e;

	(void)state;
	sb_add(&b, T_CHILD T_UPG T_UPG_OK ",\"parameters\":{\"p\":\"");
	sb_rep(&b, "x", OTAGW_PROPS_MAX);
	sb_add(&b, "\"}}}");
	assert_int_equal(dec(b.p, b.n, &d, &e), -EBADMSG);
	assert_non_null(strstr(e.text, "parameters"));
	assert_string_equal(d.message_id, "m1");
	free(b.p);
	b.p = NULL;
	b.n = 0;
	/* A url of 3000 bytes is JetLinks' maximum; 3001 is refused. */
	sb_add(&b, T_CHILD T_UPG "\"firmwareId\":\"f\",\"version\":\"1\",\"url\":\"HTTPS://");
	sb_rep(&b, "u", OTAGW_URL_MAX - 1 - 8);
	sb_add(&b, "\"}}");
	assert_int_equal(dec(b.p, b.n, &d, &e), 0);
	assert_int_equal(strlen(d.child.url), OTAGW_URL_MAX - 1);
	proto_down_clear(&d);
	b.n -= 3;
	sb_add(&b, "u\"}}");
	assert_int_equal(dec(b.p, b.n, &d, &e), -EBADMSG);
	assert_non_null(strstr(e.text, "url"));
	free(b.p);
}

/* ---- names and codes -------------------------------------------------------- */

static void test_type_names(void **state)
{
	static const char *const names[PROTO_DOWN_TYPE_COUNT] = {
		NULL, "HELLO_ACK", "ACK", "ERROR", "FIRMWARE_UPSERT", "FIRMWARE_DELETE",
		"TASK_CREATE", "TASK_PUBLISH", "TASK_CANCEL", "CHILD",
	};

	(void)state;
	for (int t = 0; t < PROTO_DOWN_TYPE_COUNT; t++) {
		const char *n = proto_down_type_name((enum proto_down_type)t);

		if (!names[t])
			assert_null(n);
		else
			assert_string_equal(n, names[t]);
		assert_int_equal(proto_down_is_command((enum proto_down_type)t),
				 t >= PROTO_DOWN_FIRMWARE_UPSERT);
	}
	assert_null(proto_down_type_name(PROTO_DOWN_TYPE_COUNT));
	assert_null(proto_down_type_name((enum proto_down_type)-1));
	assert_false(proto_down_is_command(PROTO_DOWN_TYPE_COUNT));
}

static void test_codes(void **state)
{
	static const struct {
		int err;
		const char *code;
	} cases[] = {
		{ -EINVAL, "invalid" },   { -EBADMSG, "invalid" },      { -E2BIG, "invalid" },
		{ -EMSGSIZE, "invalid" }, { -ERANGE, "invalid" },       { -ENOENT, "not_found" },
		{ -EEXIST, "conflict" },  { -OTAGW_ESTATE, "conflict" }, { -EPERM, "conflict" },
		{ -EACCES, "conflict" },  { -EBUSY, "busy" },           { -ENOTSUP, "unsupported" },
		{ -EIO, "internal" },     { -ENOMEM, "internal" },      { 0, "internal" },
	};

	(void)state;
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(cases); i++)
		assert_string_equal(proto_reply_code(cases[i].err), cases[i].code);
	assert_string_equal(proto_error_code(-EMSGSIZE, PROTO_DOWN_UNKNOWN), "malformed");
	assert_string_equal(proto_error_code(-EBADMSG, PROTO_DOWN_UNKNOWN), "malformed");
	assert_string_equal(proto_error_code(-ENOTSUP, PROTO_DOWN_UNKNOWN), "malformed");
	assert_string_equal(proto_error_code(-EBADMSG, PROTO_DOWN_ACK), "invalid");
	assert_string_equal(proto_error_code(-EBADMSG, PROTO_DOWN_TASK_CANCEL), "invalid");
}

/* Which answer a frame gets: REPLY, ERROR, or none (PROTOCOL.md 8.1). */
static void test_wants_reply(void **state)
{
	struct proto_down d;
	struct err_info e;

	(void)state;
	dec_ok(ex_publish, &d);
	assert_true(proto_down_wants_reply(0, &d));             /* success: REPLY */
	proto_down_clear(&d);
	dec_ok("{\"messageType\":\"ACK\",\"ack\":1}", &d);
	assert_false(proto_down_wants_reply(0, &d));            /* never answered */
	proto_down_clear(&d);
	assert_int_equal(dec_str("{\"messageType\":\"NOPE\",\"messageId\":\"m\"}", &d, &e),
			 -ENOTSUP);
	assert_true(proto_down_wants_reply(-ENOTSUP, &d));      /* REPLY unsupported */
	assert_string_equal(proto_reply_code(-ENOTSUP), "unsupported");
	assert_int_equal(dec_str("{\"messageType\":\"NOPE\"}", &d, &e), -ENOTSUP);
	assert_false(proto_down_wants_reply(-ENOTSUP, &d));     /* ERROR malformed */
	assert_string_equal(proto_error_code(-ENOTSUP, d.type), "malformed");
	assert_false(proto_down_wants_reply(-EMSGSIZE, &d));
	assert_false(proto_down_wants_reply(0, NULL));
}

/* ---- upstream encoders ------------------------------------------------------ */

static void test_enc_hello(void **state)
{
	static const char *const keys[] = { "messageType", "timestamp", "gatewayId", "version",
					    "protocol", "lastSeq", NULL };
	struct proto_hello h = { "gw1", "0.1.0", 41, 1700000000000LL };
	char *out;
	size_t n;
	cJSON *o;

	(void)state;
	assert_int_equal(proto_enc_hello(&h, &out, &n), 0);
	assert_string_equal(out, "{\"messageType\":\"GATEWAY_HELLO\",\"timestamp\":1700000000000,"
			    "\"gatewayId\":\"gw1\",\"version\":\"0.1.0\",\"protocol\":1,"
			    "\"lastSeq\":41}");
	o = parse_keys(out, n, keys);
	assert_null(cJSON_GetObjectItem(o, "seq"));      /* not sequenced */
	cJSON_Delete(o);
	free(out);
	h.gateway_id = "gw/1";
	assert_int_equal(proto_enc_hello(&h, &out, &n), -EINVAL);
	assert_null(out);
	assert_int_equal(n, 0);
	h.gateway_id = NULL;
	assert_int_equal(proto_enc_hello(&h, &out, &n), -EINVAL);
	h.gateway_id = "gw1";
	h.version = "";
	assert_int_equal(proto_enc_hello(&h, &out, &n), -EINVAL);
	h.version = "1";
	h.last_seq = PROTO_INT_MAX + 1;
	assert_int_equal(proto_enc_hello(&h, &out, &n), -EINVAL);
	assert_int_equal(proto_enc_hello(NULL, &out, &n), -EINVAL);
	assert_int_equal(proto_enc_hello(&h, NULL, &n), -EINVAL);
}

/* A REPORT_FIRMWARE wrapped as JetLinks' ChildDeviceMessage; the inner
 * message decodes back to what went in. */
static void test_enc_child(void **state)
{
	static const char *const keys[] = { "seq", "messageType", "timestamp", "deviceId",
					    "childDeviceId", "childDeviceMessage", NULL };
	struct msg m, back;
	struct err_info e;
	char *out, *inner;
	size_t n;
	cJSON *o;

	(void)state;
	msg_init(&m, MSG_REPORT_FIRMWARE);
	util_strlcpy(m.device_id, "d1", sizeof(m.device_id));
	util_strlcpy(m.version, "1.0.1", sizeof(m.version));
	m.timestamp = 1700000000090LL;
	assert_int_equal(msg_set_properties(&m, "{\"hw\":\"A2\"}"), 0);
	assert_int_equal(proto_enc_child(42, 1700000000100LL, "gw1", &m, &out, &n), 0);
	assert_string_equal(out, "{\"seq\":42,\"messageType\":\"CHILD\",\"timestamp\":1700000000100,"
			    "\"deviceId\":\"gw1\",\"childDeviceId\":\"d1\",\"childDeviceMessage\":"
			    "{\"messageType\":\"REPORT_FIRMWARE\",\"deviceId\":\"d1\","
			    "\"timestamp\":1700000000090,\"version\":\"1.0.1\","
			    "\"properties\":{\"hw\":\"A2\"}}}");
	o = parse_keys(out, n, keys);
	inner = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "childDeviceMessage"));
	assert_int_equal(msg_json_decode((const uint8_t *)inner, strlen(inner), &back, &e), 0);
	assert_int_equal(back.type, MSG_REPORT_FIRMWARE);
	assert_string_equal(back.device_id, "d1");
	assert_string_equal(back.version, "1.0.1");
	assert_string_equal(back.properties, "{\"hw\":\"A2\"}");
	assert_int_equal(back.timestamp, 1700000000090LL);
	msg_clear(&back);
	cJSON_free(inner);
	cJSON_Delete(o);
	free(out);
	assert_int_equal(proto_enc_child(0, 1, "gw1", &m, &out, &n), -EINVAL);
	assert_int_equal(proto_enc_child(PROTO_INT_MAX + 1, 1, "gw1", &m, &out, &n), -EINVAL);
	assert_int_equal(proto_enc_child(1, 1, "", &m, &out, &n), -EINVAL);
	assert_int_equal(proto_enc_child(1, -5, "gw1", &m, &out, &n), -EINVAL);
	util_strlcpy(m.device_id, "d 1", sizeof(m.device_id));
	assert_int_equal(proto_enc_child(1, 1, "gw1", &m, &out, &n), -EINVAL);
	assert_null(out);
	msg_clear(&m);
}

/* Downstream UPGRADE_FIRMWARE in, the same message out inside CHILD (as
 * the gateway would forward a device's view of it): nothing is lost. */
static void test_child_roundtrip(void **state)
{
	struct proto_down d;
	struct msg back;
	struct err_info e;
	char *out, *inner;
	size_t n;
	cJSON *o;

	(void)state;
	dec_ok(ex_child, &d);
	assert_int_equal(proto_enc_child(7, 1, "gw1", &d.child, &out, &n), 0);
	o = cJSON_ParseWithLength(out, n);
	assert_string_equal(jstr(o, "childDeviceId"), "d1");
	inner = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "childDeviceMessage"));
	assert_int_equal(msg_json_decode((const uint8_t *)inner, strlen(inner), &back, &e), 0);
	assert_int_equal(back.type, d.child.type);
	assert_string_equal(back.device_id, d.child.device_id);
	assert_string_equal(back.message_id, d.child.message_id);
	assert_int_equal(back.timestamp, d.child.timestamp);
	assert_string_equal(back.firmware_id, d.child.firmware_id);
	assert_string_equal(back.version, d.child.version);
	assert_string_equal(back.url, d.child.url);
	assert_int_equal(back.size, d.child.size);
	assert_string_equal(back.sign, d.child.sign);
	assert_string_equal(back.sign_method, d.child.sign_method);
	assert_string_equal(back.parameters, d.child.parameters);
	msg_clear(&back);
	cJSON_free(inner);
	cJSON_Delete(o);
	free(out);
	proto_down_clear(&d);
}

static void test_enc_task_event(void **state)
{
	static const char *const keys[] = { "seq", "messageType", "timestamp", "taskId", "event",
					    "wave", "reason", "time", NULL };
	static const char *const keys_noreason[] = { "seq", "messageType", "timestamp", "taskId",
						     "event", "wave", "time", NULL };
	struct proto_task_event ev = { "t1", "paused", 2, "wave 2: 3 of 9 failed", 1700000100190LL };
	char *out;
	size_t n;
	cJSON *o;

	(void)state;
	assert_int_equal(proto_enc_task_event(51, 1700000100200LL, &ev, &out, &n), 0);
	o = parse_keys(out, n, keys);
	assert_int_equal(jnum(o, "seq"), 51);
	assert_string_equal(jstr(o, "messageType"), "TASK_EVENT");
	assert_string_equal(jstr(o, "event"), "paused");
	assert_int_equal(jnum(o, "wave"), 2);
	assert_string_equal(jstr(o, "reason"), "wave 2: 3 of 9 failed");
	cJSON_Delete(o);
	free(out);
	ev.reason = "";
	assert_int_equal(proto_enc_task_event(52, 1, &ev, &out, &n), 0);
	cJSON_Delete(parse_keys(out, n, keys_noreason));
	free(out);
	/* a bad task id or an empty event is refused */
	ev.task_id = "not an id";
	assert_int_equal(proto_enc_task_event(53, 1, &ev, &out, &n), -EINVAL);
	ev.task_id = "t1";
	ev.event = "";
	assert_int_equal(proto_enc_task_event(53, 1, &ev, &out, &n), -EINVAL);
}

static void test_enc_record_state(void **state)
{
	static const char *const keys[] = { "seq", "messageType", "timestamp", "taskId",
					    "recordId", "deviceId", "firmwareId", "version",
					    "from", "to", "progress", "errorReason", "time", NULL };
	static const char *const keys_new[] = { "seq", "messageType", "timestamp", "taskId",
						"recordId", "deviceId", "firmwareId", "version",
						"to", "progress", "time", NULL };
	struct proto_record_state r = {
		"t1", "r1", "d1", "fw1", "1.1.0", false, REC_PROCESSING, REC_FAILED, 40,
		"timeout", 1700000000190LL,
	};
	char *out;
	size_t n;
	cJSON *o;

	(void)state;
	assert_int_equal(proto_enc_record_state(43, 1700000000200LL, &r, &out, &n), 0);
	o = parse_keys(out, n, keys);
	assert_int_equal(jnum(o, "seq"), 43);
	assert_string_equal(jstr(o, "messageType"), "RECORD_STATE");
	assert_string_equal(jstr(o, "from"), "processing");
	assert_string_equal(jstr(o, "to"), "failed");
	assert_int_equal(jnum(o, "progress"), 40);
	assert_string_equal(jstr(o, "errorReason"), "timeout");
	assert_true(jnum(o, "time") == 1700000000190.0);
	cJSON_Delete(o);
	free(out);
	/* A new record: no `from`; an empty reason is omitted. */
	r.created = true;
	r.to = REC_WAITING;
	r.progress = 0;
	r.error_reason = "";
	assert_int_equal(proto_enc_record_state(44, 1, &r, &out, &n), 0);
	o = parse_keys(out, n, keys_new);
	assert_string_equal(jstr(o, "to"), "waiting");
	cJSON_Delete(o);
	free(out);
	r.progress = 101;
	assert_int_equal(proto_enc_record_state(44, 1, &r, &out, &n), -EINVAL);
	r.progress = -1;
	assert_int_equal(proto_enc_record_state(44, 1, &r, &out, &n), -EINVAL);
	r.progress = 0;
	r.to = REC_STATE_COUNT;
	assert_int_equal(proto_enc_record_state(44, 1, &r, &out, &n), -EINVAL);
	r.to = REC_SUCCESS;
	r.record_id = "r 1";
	assert_int_equal(proto_enc_record_state(44, 1, &r, &out, &n), -EINVAL);
	r.record_id = "r1";
	r.version = NULL;
	assert_int_equal(proto_enc_record_state(44, 1, &r, &out, &n), -EINVAL);
	assert_null(out);
}

static void test_enc_progress(void **state)
{
	static const char *const keys[] = { "seq", "messageType", "timestamp", "taskId", "items",
					    "counts", NULL };
	static const char *const item_keys[] = { "deviceId", "progress", "time", NULL };
	static const char *const count_keys[] = { "waiting", "processing", "success", "failed",
						  "canceled", NULL };
	struct proto_progress_item items[2] = { { "d1", 40, 1700000000950LL },
						{ "d2", 75, 1700000000990LL } };
	struct proto_progress_batch b = { "t1", items, 2, { 3, 2, 10, 0, 0 } };
	char *out, *text;
	size_t n;
	cJSON *o, *arr;

	(void)state;
	assert_int_equal(proto_enc_progress(44, 1700000001000LL, &b, &out, &n), 0);
	assert_string_equal(out, "{\"seq\":44,\"messageType\":\"PROGRESS_BATCH\","
			    "\"timestamp\":1700000001000,\"taskId\":\"t1\",\"items\":["
			    "{\"deviceId\":\"d1\",\"progress\":40,\"time\":1700000000950},"
			    "{\"deviceId\":\"d2\",\"progress\":75,\"time\":1700000000990}],"
			    "\"counts\":{\"waiting\":3,\"processing\":2,\"success\":10,"
			    "\"failed\":0,\"canceled\":0}}");
	o = parse_keys(out, n, keys);
	arr = cJSON_GetObjectItem(o, "items");
	assert_int_equal(cJSON_GetArraySize(arr), 2);
	text = cJSON_PrintUnformatted(cJSON_GetArrayItem(arr, 1));
	cJSON_Delete(parse_keys(text, strlen(text), item_keys));
	cJSON_free(text);
	text = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "counts"));
	cJSON_Delete(parse_keys(text, strlen(text), count_keys));
	cJSON_free(text);
	cJSON_Delete(o);
	free(out);
	/* No items: an empty array. */
	b.n_items = 0;
	b.items = NULL;
	assert_int_equal(proto_enc_progress(45, 1, &b, &out, &n), 0);
	assert_non_null(strstr(out, "\"items\":[]"));
	free(out);
	b.items = items;
	b.n_items = 2;
	items[1].device_id = "";
	assert_int_equal(proto_enc_progress(45, 1, &b, &out, &n), -EINVAL);
	items[1].device_id = "d2";
	items[1].progress = 101;
	assert_int_equal(proto_enc_progress(45, 1, &b, &out, &n), -EINVAL);
	items[1].progress = 100;
	b.counts[REC_FAILED] = -1;
	assert_int_equal(proto_enc_progress(45, 1, &b, &out, &n), -EINVAL);
	b.counts[REC_FAILED] = 0;
	b.task_id = "t/1";
	assert_int_equal(proto_enc_progress(45, 1, &b, &out, &n), -EINVAL);
	b.task_id = "t1";
	b.items = NULL;
	assert_int_equal(proto_enc_progress(45, 1, &b, &out, &n), -EINVAL);
	assert_null(out);
}

/* PROTO_BATCH_MAX items of the longest ids fit in a frame; one more item
 * is -E2BIG, for the caller to split. */
static void test_enc_progress_max(void **state)
{
	struct proto_progress_item *items = calloc(PROTO_BATCH_MAX + 1, sizeof(*items));
	struct proto_progress_batch b = { T_ID64, items, PROTO_BATCH_MAX, { 0 } };
	char *out;
	size_t n;
	cJSON *o;

	(void)state;
	assert_non_null(items);
	for (size_t i = 0; i <= PROTO_BATCH_MAX; i++)
		items[i] = (struct proto_progress_item){ T_ID64, 100, (int64_t)PROTO_INT_MAX };
	b.counts[REC_WAITING] = (int64_t)PROTO_INT_MAX;
	assert_int_equal(proto_enc_progress(PROTO_INT_MAX, 1, &b, &out, &n), 0);
	assert_true(n <= PROTO_FRAME_MAX);
	o = cJSON_ParseWithLength(out, n);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "items")), PROTO_BATCH_MAX);
	cJSON_Delete(o);
	free(out);
	b.n_items = PROTO_BATCH_MAX + 1;
	assert_int_equal(proto_enc_progress(1, 1, &b, &out, &n), -E2BIG);
	assert_null(out);
	free(items);
}

static void test_enc_status(void **state)
{
	static const char *const keys[] = { "seq", "messageType", "timestamp", "version",
					    "uptime", "online", "devices", "cache", "outbox",
					    NULL };
	static const char *const cache_keys[] = { "usedBytes", "quotaBytes", "images", NULL };
	struct proto_online on[2] = { { "tcp", 3 }, { "serial:ttyUSB0", 1 } };
	struct proto_status s = { "0.1.0", 3600, on, 2, 12, 1048576, 1073741824, 2, 1 };
	char *out, *text;
	size_t n;
	cJSON *o, *online;

	(void)state;
	assert_int_equal(proto_enc_status(45, 1700000001000LL, &s, &out, &n), 0);
	o = parse_keys(out, n, keys);
	assert_string_equal(jstr(o, "messageType"), "GATEWAY_STATUS");
	assert_string_equal(jstr(o, "version"), "0.1.0");
	assert_int_equal(jnum(o, "uptime"), 3600);
	assert_int_equal(jnum(o, "devices"), 12);
	assert_int_equal(jnum(o, "outbox"), 1);
	online = cJSON_GetObjectItem(o, "online");
	assert_int_equal(cJSON_GetArraySize(online), 2);
	assert_int_equal(jnum(online, "tcp"), 3);
	assert_int_equal(jnum(online, "serial:ttyUSB0"), 1);
	text = cJSON_PrintUnformatted(cJSON_GetObjectItem(o, "cache"));
	assert_string_equal(text, "{\"usedBytes\":1048576,\"quotaBytes\":1073741824,\"images\":2}");
	cJSON_Delete(parse_keys(text, strlen(text), cache_keys));
	cJSON_free(text);
	cJSON_Delete(o);
	free(out);
	/* No transport online: an empty object. */
	s.n_online = 0;
	assert_int_equal(proto_enc_status(46, 1, &s, &out, &n), 0);
	assert_non_null(strstr(out, "\"online\":{}"));
	free(out);
	s.n_online = 2;
	on[1].transport = "tcp";                /* twice */
	assert_int_equal(proto_enc_status(46, 1, &s, &out, &n), -EINVAL);
	on[1].transport = "serial:ttyUSB0x1";   /* 16 bytes: the most */
	assert_int_equal(proto_enc_status(46, 1, &s, &out, &n), 0);
	free(out);
	on[1].transport = "serial:ttyUSB0x12";
	assert_int_equal(proto_enc_status(46, 1, &s, &out, &n), -EINVAL);
	on[1].transport = "";
	assert_int_equal(proto_enc_status(46, 1, &s, &out, &n), -EINVAL);
	on[1].transport = "http";
	s.cache_used = PROTO_INT_MAX + 1;
	assert_int_equal(proto_enc_status(46, 1, &s, &out, &n), -EINVAL);
	assert_null(out);
}

static void test_enc_reply(void **state)
{
	static const char *const ok_keys[] = { "seq", "messageType", "timestamp", "messageId",
					       "replyTo", "success", "result", NULL };
	static const char *const fail_keys[] = { "seq", "messageType", "timestamp", "messageId",
						 "replyTo", "success", "code", "message", NULL };
	static const char *const unk_keys[] = { "seq", "messageType", "timestamp", "messageId",
						"success", "code", "message", NULL };
	cJSON *result = cJSON_Parse("{\"added\":2,\"already\":0,\"upToDate\":1}");
	struct proto_reply r = { "c-7", PROTO_DOWN_TASK_PUBLISH, true, NULL, NULL, result };
	char *out;
	size_t n;
	cJSON *o;

	(void)state;
	assert_int_equal(proto_enc_reply(46, 1700000001100LL, &r, &out, &n), 0);
	assert_string_equal(out, "{\"seq\":46,\"messageType\":\"REPLY\",\"timestamp\":1700000001100,"
			    "\"messageId\":\"c-7\",\"replyTo\":\"TASK_PUBLISH\",\"success\":true,"
			    "\"result\":{\"added\":2,\"already\":0,\"upToDate\":1}}");
	cJSON_Delete(parse_keys(out, n, ok_keys));
	free(out);
	/* The result was copied, not taken. */
	assert_int_equal(cJSON_GetArraySize(result), 3);
	r.result = NULL;
	assert_int_equal(proto_enc_reply(46, 1, &r, &out, &n), 0);
	assert_non_null(strstr(out, "\"result\":{}"));
	free(out);
	r = (struct proto_reply){ "c-8", PROTO_DOWN_FIRMWARE_DELETE, false, "busy",
				  "firmware 'fw1' is used by unfinished task 't1'", result };
	assert_int_equal(proto_enc_reply(47, 1, &r, &out, &n), 0);
	o = parse_keys(out, n, fail_keys);
	assert_false(jbool(o, "success"));
	assert_string_equal(jstr(o, "code"), "busy");
	assert_string_equal(jstr(o, "replyTo"), "FIRMWARE_DELETE");
	cJSON_Delete(o);
	free(out);
	/* An unknown command: no replyTo. */
	r = (struct proto_reply){ "c-4", PROTO_DOWN_UNKNOWN, false, "unsupported",
				  "unknown messageType", NULL };
	assert_int_equal(proto_enc_reply(48, 1, &r, &out, &n), 0);
	cJSON_Delete(parse_keys(out, n, unk_keys));
	free(out);
	r.code = NULL;
	assert_int_equal(proto_enc_reply(48, 1, &r, &out, &n), -EINVAL);
	r.code = T_ID65;
	assert_int_equal(proto_enc_reply(48, 1, &r, &out, &n), -EINVAL);
	r.code = "x";
	r.reply_to = PROTO_DOWN_ACK;            /* ACK is never answered */
	assert_int_equal(proto_enc_reply(48, 1, &r, &out, &n), -EINVAL);
	r.reply_to = PROTO_DOWN_CHILD_UPGRADE;
	r.message_id = "";
	assert_int_equal(proto_enc_reply(48, 1, &r, &out, &n), -EINVAL);
	r.message_id = "m";
	r.success = true;
	r.result = cJSON_GetObjectItem(result, "added");       /* a number */
	assert_int_equal(proto_enc_reply(48, 1, &r, &out, &n), -EINVAL);
	assert_null(out);
	cJSON_Delete(result);
}

/* A result that would make the frame bigger than PROTO_FRAME_MAX. */
static void test_enc_too_large(void **state)
{
	struct sb b = { NULL, 0 };
	struct proto_reply r = { "m", PROTO_DOWN_TASK_CREATE, true, NULL, NULL, NULL };
	cJSON *result = cJSON_CreateObject();
	char *out;
	size_t n;

	(void)state;
	sb_rep(&b, "x", PROTO_FRAME_MAX);
	assert_non_null(cJSON_AddStringToObject(result, "big", b.p));
	r.result = result;
	assert_int_equal(proto_enc_reply(1, 1, &r, &out, &n), -EMSGSIZE);
	assert_null(out);
	cJSON_Delete(result);
	free(b.p);
}

static void test_enc_error(void **state)
{
	static const char *const keys[] = { "messageType", "timestamp", "code", "message",
					    "messageId", NULL };
	static const char *const short_keys[] = { "messageType", "timestamp", "code", NULL };
	char *out;
	size_t n;

	(void)state;
	assert_int_equal(proto_enc_error(1700000001300LL, "invalid", "field 'ack': bad", "m1",
					 &out, &n), 0);
	cJSON_Delete(parse_keys(out, n, keys));
	assert_null(strstr(out, "seq"));         /* not sequenced */
	free(out);
	assert_int_equal(proto_enc_error(1700000001300LL, "malformed", NULL, "", &out, &n), 0);
	assert_string_equal(out, "{\"messageType\":\"ERROR\",\"timestamp\":1700000001300,"
			    "\"code\":\"malformed\"}");
	cJSON_Delete(parse_keys(out, n, short_keys));
	free(out);
	assert_int_equal(proto_enc_error(1, NULL, NULL, NULL, &out, &n), -EINVAL);
	assert_int_equal(proto_enc_error(1, "", NULL, NULL, &out, &n), -EINVAL);
	assert_int_equal(proto_enc_error(1, "x", NULL, "a b", &out, &n), -EINVAL);
	assert_null(out);
}

/* timestamp 0 and time 0 mean now; the values are checked, not compared. */
static void test_enc_now(void **state)
{
	struct proto_record_state r = { "t1", "r1", "d1", "fw1", "1", true, REC_WAITING,
					REC_WAITING, 0, NULL, 0 };
	int64_t before = util_now_ms();
	char *out;
	size_t n;
	cJSON *o;

	(void)state;
	assert_int_equal(proto_enc_record_state(1, 0, &r, &out, &n), 0);
	o = cJSON_ParseWithLength(out, n);
	assert_true(jnum(o, "timestamp") >= (double)before);
	assert_true(jnum(o, "time") >= (double)before);
	cJSON_Delete(o);
	free(out);
}

/* seq and the other numbers are written as exact digits up to 2^53 - 1. */
static void test_enc_exact_numbers(void **state)
{
	struct proto_hello h = { "gw1", "0.1.0", PROTO_INT_MAX, (int64_t)PROTO_INT_MAX };
	struct proto_reply r = { "m", PROTO_DOWN_TASK_CANCEL, true, NULL, NULL, NULL };
	char *out;
	size_t n;

	(void)state;
	assert_int_equal(proto_enc_hello(&h, &out, &n), 0);
	assert_non_null(strstr(out, "\"lastSeq\":9007199254740991}"));
	assert_non_null(strstr(out, "\"timestamp\":9007199254740991,"));
	free(out);
	assert_int_equal(proto_enc_reply(1000000000000001ULL, 1, &r, &out, &n), 0);
	assert_non_null(strstr(out, "{\"seq\":1000000000000001,"));
	free(out);
}

static void test_set_seq(void **state)
{
	static const char *const keys[] = { "seq", "messageType", "timestamp", "messageId",
					    "replyTo", "success", "result", NULL };
	struct proto_reply r = { "c-1", PROTO_DOWN_FIRMWARE_UPSERT, true, NULL, NULL, NULL };
	char *frame, *out;
	size_t fn, n;

	(void)state;
	assert_int_equal(proto_enc_reply(5, 1700000000000LL, &r, &frame, &fn), 0);
	assert_int_equal(proto_set_seq(frame, fn, 1042, &out, &n), 0);
	assert_string_equal(out, "{\"seq\":1042,\"messageType\":\"REPLY\",\"timestamp\":1700000000000,"
			    "\"messageId\":\"c-1\",\"replyTo\":\"FIRMWARE_UPSERT\",\"success\":true,"
			    "\"result\":{}}");
	cJSON_Delete(parse_keys(out, n, keys));
	free(out);
	assert_int_equal(proto_set_seq(frame, fn, 0, &out, &n), -EINVAL);
	assert_int_equal(proto_set_seq(frame, fn, PROTO_INT_MAX + 1, &out, &n), -EINVAL);
	assert_int_equal(proto_set_seq(frame, fn - 1, 9, &out, &n), -EINVAL);   /* cut */
	assert_null(out);
	free(frame);
	/* GATEWAY_HELLO and ERROR have no seq to set. */
	assert_int_equal(proto_enc_error(1, "x", NULL, NULL, &frame, &fn), 0);
	assert_int_equal(proto_set_seq(frame, fn, 9, &out, &n), -EINVAL);
	free(frame);
	assert_int_equal(proto_set_seq("[1]", 3, 9, &out, &n), -EINVAL);
	assert_int_equal(proto_set_seq(NULL, 0, 9, &out, &n), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dec_hello_ack),
		cmocka_unit_test(test_dec_ack),
		cmocka_unit_test(test_dec_error),
		cmocka_unit_test(test_dec_firmware_upsert),
		cmocka_unit_test(test_dec_firmware_delete),
		cmocka_unit_test(test_dec_task_create),
		cmocka_unit_test(test_dec_task_publish),
		cmocka_unit_test(test_dec_task_cancel),
		cmocka_unit_test(test_dec_child_upgrade),
		cmocka_unit_test(test_dec_child_defaults),
		cmocka_unit_test(test_down_clear),
		cmocka_unit_test(test_hostile_table),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_frame_max),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_device_ids_cap),
		cmocka_unit_test(test_child_caps),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_codes),
		cmocka_unit_test(test_wants_reply),
		cmocka_unit_test(test_enc_hello),
		cmocka_unit_test(test_enc_child),
		cmocka_unit_test(test_child_roundtrip),
		cmocka_unit_test(test_enc_record_state),
		cmocka_unit_test(test_enc_task_event),
		cmocka_unit_test(test_enc_progress),
		cmocka_unit_test(test_enc_progress_max),
		cmocka_unit_test(test_enc_status),
		cmocka_unit_test(test_enc_reply),
		cmocka_unit_test(test_enc_too_large),
		cmocka_unit_test(test_enc_error),
		cmocka_unit_test(test_enc_now),
		cmocka_unit_test(test_enc_exact_numbers),
		cmocka_unit_test(test_set_seq),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
