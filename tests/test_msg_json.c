/* SPDX-License-Identifier: MIT */
/* test_msg_json.c - cmocka tests for struct msg (msg.c) and its JetLinks JSON
 * codec (msg_json.c): the canonical lines of shared/jetlinks-firmware.md
 * section 6, the aliases, a table of hostile inputs with their exact error
 * codes, and encode/decode round trips for every messageType; the otagw
 * extensions (southbound/PROTOCOL.md): headers.productId/secureKey, chunk
 * requests and replies with base64 data and CRC-32, ERROR.
 * Every input reaches the decoder in a heap buffer of exactly len bytes with
 * no NUL after it, so ASan reports any read past the end.
 * Must not: depend on the network, the clock's value or test order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "otagw_limits.h"
#include "msg.h"
#include "msg_json.h"
#include "util.h"

static const char canon_report[] =
	"{\"messageType\":\"REPORT_FIRMWARE\",\"deviceId\":\"d1\",\"timestamp\":1589277368209,"
	"\"version\":\"1.0.1\",\"properties\":{\"hw\":\"A2\"}}";
static const char canon_request[] =
	"{\"messageType\":\"REQUEST_FIRMWARE\",\"deviceId\":\"d1\",\"messageId\":\"m1\","
	"\"timestamp\":1589277368209,\"currentVersion\":\"1.0.1\",\"requestVersion\":\"\","
	"\"headers\":{\"force\":false,\"latest\":false}}";
static const char canon_request_reply[] =
	"{\"messageType\":\"REQUEST_FIRMWARE_REPLY\",\"deviceId\":\"d1\",\"messageId\":\"m1\","
	"\"timestamp\":1589277368300,\"success\":true,\"firmwareId\":\"fw1\",\"version\":\"1.1.0\","
	"\"url\":\"http://gw/f/fw1.bin\",\"size\":524288,"
	"\"sign\":\"9e107d9d372bb6826bd81d3542a419d6\",\"signMethod\":\"md5\",\"parameters\":{}}";
static const char canon_upgrade[] =
	"{\"messageType\":\"UPGRADE_FIRMWARE\",\"deviceId\":\"d1\",\"messageId\":\"m2\","
	"\"timestamp\":1589277368209,\"firmwareId\":\"fw1\",\"version\":\"1.1.0\","
	"\"url\":\"http://gw/f/fw1.bin\",\"size\":524288,"
	"\"sign\":\"9e107d9d372bb6826bd81d3542a419d6\",\"signMethod\":\"md5\",\"parameters\":{}}";
static const char canon_upgrade_reply[] =
	"{\"messageType\":\"UPGRADE_FIRMWARE_REPLY\",\"deviceId\":\"d1\",\"messageId\":\"m2\","
	"\"timestamp\":1589277368400,\"success\":true}";
static const char canon_progress[] =
	"{\"messageType\":\"UPGRADE_FIRMWARE_PROGRESS\",\"deviceId\":\"d1\","
	"\"timestamp\":1589277369268,\"firmwareId\":\"fw1\",\"version\":\"1.1.0\","
	"\"progress\":40,\"complete\":false,\"success\":true}";

/* The otagw extensions as southbound/PROTOCOL.md shows them. */
static const char canon_chunk[] =
	"{\"messageType\":\"REQUEST_FIRMWARE_CHUNK\",\"deviceId\":\"d1\",\"messageId\":\"c1\","
	"\"timestamp\":1589277368500,\"firmwareId\":\"fw1\",\"offset\":524280,\"length\":4096}";
static const char canon_chunk_reply[] =
	"{\"messageType\":\"REQUEST_FIRMWARE_CHUNK_REPLY\",\"deviceId\":\"d1\","
	"\"messageId\":\"c1\",\"timestamp\":1589277368510,\"success\":true,"
	"\"firmwareId\":\"fw1\",\"offset\":524280,"
	"\"length\":8,\"size\":524288,\"crc32\":463008392,\"data\":\"f0VMRgIBAQA=\"}";
static const char canon_chunk_end[] =
	"{\"messageType\":\"REQUEST_FIRMWARE_CHUNK_REPLY\",\"deviceId\":\"d1\","
	"\"messageId\":\"c2\",\"timestamp\":1589277368520,\"success\":true,"
	"\"firmwareId\":\"fw1\",\"offset\":524288,"
	"\"length\":0,\"size\":524288,\"crc32\":0,\"data\":\"\"}";
static const char canon_chunk_fail[] =
	"{\"messageType\":\"REQUEST_FIRMWARE_CHUNK_REPLY\",\"deviceId\":\"d1\","
	"\"messageId\":\"c3\",\"timestamp\":1589277368530,\"success\":false,"
	"\"firmwareId\":\"fw1\",\"offset\":600000,"
	"\"code\":\"out_of_range\",\"message\":\"offset beyond the image\"}";
static const char canon_error[] =
	"{\"messageType\":\"ERROR\",\"deviceId\":\"d1\",\"messageId\":\"m9\","
	"\"timestamp\":1589277368540,\"code\":\"bad_message\","
	"\"message\":\"field 'version': missing\"}";

/* Prefixes of test inputs, to keep the lines readable. */
#define T_PROGRESS "{\"messageType\":\"UPGRADE_FIRMWARE_PROGRESS\",\"deviceId\":\"d1\","
#define T_REPORT "{\"messageType\":\"REPORT_FIRMWARE\",\"deviceId\":\"d1\","
#define T_CHUNK "{\"messageType\":\"REQUEST_FIRMWARE_CHUNK\",\"deviceId\":\"d1\","
#define T_CREPLY "{\"messageType\":\"REQUEST_FIRMWARE_CHUNK_REPLY\",\"deviceId\":\"d1\","
#define T_ID64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* ---- helpers ----------------------------------------------------------- */

/* Decodes len bytes from an exact-size heap copy (no NUL after them). */
static int dec(const char *buf, size_t len, struct msg *m, struct err_info *e)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	rc = msg_json_decode(copy, len, m, e);
	free(copy);
	return rc;
}

static int dec_str(const char *s, struct msg *m, struct err_info *e)
{
	return dec(s, strlen(s), m, e);
}

#include "test_sb.h"

static void assert_cleared(const struct msg *m)
{
	struct msg zero;

	memset(&zero, 0, sizeof(zero));
	assert_memory_equal(m, &zero, sizeof(zero));
}

/* Every field, so a round trip cannot silently drop one. */
static void assert_msg_equal(const struct msg *a, const struct msg *b)
{
	assert_int_equal(a->type, b->type);
	assert_string_equal(a->device_id, b->device_id);
	assert_string_equal(a->message_id, b->message_id);
	assert_int_equal(a->timestamp, b->timestamp);
	assert_string_equal(a->product_id, b->product_id);
	assert_string_equal(a->firmware_id, b->firmware_id);
	assert_string_equal(a->version, b->version);
	assert_string_equal(a->current_version, b->current_version);
	assert_string_equal(a->request_version, b->request_version);
	assert_string_equal(a->url, b->url);
	assert_int_equal(a->size, b->size);
	assert_string_equal(a->sign, b->sign);
	assert_string_equal(a->sign_method, b->sign_method);
	if (a->parameters || b->parameters)
		assert_string_equal(a->parameters, b->parameters);
	if (a->properties || b->properties)
		assert_string_equal(a->properties, b->properties);
	assert_int_equal(a->force, b->force);
	assert_int_equal(a->latest, b->latest);
	assert_int_equal(a->progress, b->progress);
	assert_int_equal(a->complete, b->complete);
	assert_int_equal(a->success, b->success);
	assert_int_equal(a->has_success, b->has_success);
	assert_string_equal(a->code, b->code);
	assert_string_equal(a->error_reason, b->error_reason);
	assert_string_equal(a->secure_key, b->secure_key);
	assert_int_equal(a->offset, b->offset);
	assert_int_equal(a->length, b->length);
	assert_int_equal(a->crc32, b->crc32);
	assert_int_equal(a->data_len, b->data_len);
	if (a->data_len)
		assert_memory_equal(a->data, b->data, a->data_len);
	assert_true(!a->data == !b->data);
}

/* ---- msg.c ------------------------------------------------------------- */

static void test_type_names(void **state)
{
	enum msg_type t;

	(void)state;
	for (int i = 0; i < MSG_TYPE_COUNT; i++) {
		const char *name = msg_type_name((enum msg_type)i);

		assert_non_null(name);
		assert_int_equal(msg_type_parse(name, &t), 0);
		assert_int_equal(t, i);
	}
	assert_null(msg_type_name(MSG_TYPE_COUNT));
	assert_null(msg_type_name((enum msg_type)-1));
	assert_int_equal(msg_type_parse("read_firmware_reply", &t), 0);
	assert_int_equal(t, MSG_READ_FIRMWARE_REPLY);
	assert_int_equal(msg_type_parse("Upgrade_Firmware", &t), 0);
	assert_int_equal(t, MSG_UPGRADE_FIRMWARE);
	assert_int_equal(msg_type_parse("UPGRADE_FIRMWARE_", &t), -EINVAL);
	assert_int_equal(msg_type_parse("", &t), -EINVAL);
	assert_int_equal(msg_type_parse(NULL, &t), -EINVAL);
}

static void test_msg_lifetime(void **state)
{
	struct msg m;

	(void)state;
	memset(&m, 0x5a, sizeof(m));
	msg_init(&m, MSG_READ_FIRMWARE);
	assert_int_equal(m.type, MSG_READ_FIRMWARE);
	assert_null(m.properties);
	assert_string_equal(m.device_id, "");
	assert_int_equal(msg_set_properties(&m, "{\"a\":1}"), 0);
	assert_int_equal(msg_set_properties(&m, "{\"b\":2}"), 0);
	assert_string_equal(m.properties, "{\"b\":2}");
	assert_int_equal(msg_set_parameters(&m, "{}"), 0);
	assert_string_equal(m.parameters, "{}");
	assert_int_equal(msg_set_parameters(&m, NULL), 0);
	assert_null(m.parameters);
	msg_clear(&m);          /* frees properties: LeakSanitizer checks */
	assert_cleared(&m);
	msg_clear(NULL);
}

/* ---- canonical lines (jetlinks-firmware.md section 6) ------------------ */

static void test_canon_report(void **state)
{
	struct msg m;
	struct err_info e;

	(void)state;
	assert_int_equal(dec_str(canon_report, &m, &e), 0);
	assert_int_equal(e.code, 0);
	assert_int_equal(m.type, MSG_REPORT_FIRMWARE);
	assert_string_equal(m.device_id, "d1");
	assert_string_equal(m.message_id, "");
	assert_int_equal(m.timestamp, 1589277368209LL);
	assert_string_equal(m.version, "1.0.1");
	assert_string_equal(m.properties, "{\"hw\":\"A2\"}");
	assert_null(m.parameters);
	assert_false(m.has_success);
	msg_clear(&m);
}

static void test_canon_request(void **state)
{
	struct msg m;

	(void)state;
	assert_int_equal(dec_str(canon_request, &m, NULL), 0);
	assert_int_equal(m.type, MSG_REQUEST_FIRMWARE);
	assert_string_equal(m.device_id, "d1");
	assert_string_equal(m.message_id, "m1");
	assert_int_equal(m.timestamp, 1589277368209LL);
	assert_string_equal(m.current_version, "1.0.1");
	assert_string_equal(m.request_version, "");
	assert_false(m.force);
	assert_false(m.latest);
	msg_clear(&m);

	assert_int_equal(dec_str("{\"messageType\":\"REQUEST_FIRMWARE\",\"deviceId\":\"d1\","
				 "\"headers\":{\"force\":true,\"latest\":true,\"async\":1}}",
				 &m, NULL), 0);
	assert_true(m.force);
	assert_true(m.latest);
	msg_clear(&m);
}

static void test_canon_request_reply(void **state)
{
	struct msg m;

	(void)state;
	assert_int_equal(dec_str(canon_request_reply, &m, NULL), 0);
	assert_int_equal(m.type, MSG_REQUEST_FIRMWARE_REPLY);
	assert_string_equal(m.device_id, "d1");
	assert_string_equal(m.message_id, "m1");
	assert_int_equal(m.timestamp, 1589277368300LL);
	assert_true(m.success);
	assert_true(m.has_success);
	assert_string_equal(m.firmware_id, "fw1");
	assert_string_equal(m.version, "1.1.0");
	assert_string_equal(m.url, "http://gw/f/fw1.bin");
	assert_int_equal(m.size, 524288);
	assert_string_equal(m.sign, "9e107d9d372bb6826bd81d3542a419d6");
	assert_string_equal(m.sign_method, "md5");
	assert_string_equal(m.parameters, "{}");
	msg_clear(&m);
}

static void test_canon_upgrade(void **state)
{
	struct msg m;

	(void)state;
	assert_int_equal(dec_str(canon_upgrade, &m, NULL), 0);
	assert_int_equal(m.type, MSG_UPGRADE_FIRMWARE);
	assert_string_equal(m.message_id, "m2");
	assert_string_equal(m.firmware_id, "fw1");
	assert_string_equal(m.version, "1.1.0");
	assert_string_equal(m.url, "http://gw/f/fw1.bin");
	assert_int_equal(m.size, 524288);
	assert_string_equal(m.sign_method, "md5");
	assert_string_equal(m.parameters, "{}");
	assert_false(m.has_success);
	assert_false(m.success);
	msg_clear(&m);
}

static void test_canon_upgrade_reply(void **state)
{
	struct msg m;

	(void)state;
	assert_int_equal(dec_str(canon_upgrade_reply, &m, NULL), 0);
	assert_int_equal(m.type, MSG_UPGRADE_FIRMWARE_REPLY);
	assert_string_equal(m.device_id, "d1");
	assert_string_equal(m.message_id, "m2");
	assert_int_equal(m.timestamp, 1589277368400LL);
	assert_true(m.success);
	assert_true(m.has_success);
	assert_string_equal(m.error_reason, "");
	msg_clear(&m);
}

static void test_canon_progress(void **state)
{
	struct msg m;

	(void)state;
	assert_int_equal(dec_str(canon_progress, &m, NULL), 0);
	assert_int_equal(m.type, MSG_UPGRADE_FIRMWARE_PROGRESS);
	assert_string_equal(m.device_id, "d1");
	assert_int_equal(m.timestamp, 1589277369268LL);
	assert_string_equal(m.firmware_id, "fw1");
	assert_string_equal(m.version, "1.1.0");
	assert_int_equal(m.progress, 40);
	assert_false(m.complete);
	assert_true(m.success);
	assert_true(m.has_success);
	msg_clear(&m);
}

static void test_msg_data(void **state)
{
	static const uint8_t bytes[] = { 0, 1, 0xff, 0 };
	struct msg m;

	(void)state;
	msg_init(&m, MSG_REQUEST_FIRMWARE_CHUNK_REPLY);
	m.length = 9;
	m.crc32 = 7;
	assert_int_equal(msg_set_data(&m, bytes, sizeof(bytes)), 0);
	assert_int_equal(m.data_len, sizeof(bytes));
	assert_memory_equal(m.data, bytes, sizeof(bytes));
	assert_ptr_not_equal(m.data, bytes);
	assert_int_equal(m.length, 9);  /* untouched */
	assert_int_equal(m.crc32, 7);
	assert_int_equal(msg_set_data(&m, bytes + 1, 2), 0);
	assert_int_equal(m.data_len, 2);
	assert_memory_equal(m.data, bytes + 1, 2);
	assert_int_equal(msg_set_data(&m, NULL, 0), 0);
	assert_null(m.data);
	assert_int_equal(m.data_len, 0);
	assert_int_equal(msg_set_data(&m, bytes, 1), 0);
	msg_clear(&m);          /* frees data: LeakSanitizer checks */
	assert_cleared(&m);
}

/* Decoding then encoding a canonical line gives back the same bytes. */
static void test_canon_reencode(void **state)
{
	static const char *const lines[] = {
		canon_report, canon_request, canon_request_reply,
		canon_upgrade, canon_upgrade_reply, canon_progress,
		canon_chunk, canon_chunk_reply, canon_chunk_end, canon_chunk_fail, canon_error,
	};

	(void)state;
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(lines); i++) {
		struct msg m;
		char *out = NULL;
		size_t n = 0;

		assert_int_equal(dec_str(lines[i], &m, NULL), 0);
		assert_int_equal(msg_json_encode(&m, &out, &n), 0);
		assert_string_equal(out, lines[i]);
		assert_int_equal(n, strlen(lines[i]));
		free(out);
		msg_clear(&m);
	}
}

/* ---- aliases, defaults, leniency --------------------------------------- */

static void test_timestampe_alias(void **state)
{
	struct msg m;

	(void)state;
	assert_int_equal(dec_str("{\"messageType\":\"READ_FIRMWARE\",\"timestampe\":1589277368209}",
				 &m, NULL), 0);
	assert_int_equal(m.timestamp, 1589277368209LL);
	msg_clear(&m);
	/* The correct key wins over the alias. */
	assert_int_equal(dec_str("{\"messageType\":\"READ_FIRMWARE\",\"timestampe\":1,"
				 "\"timestamp\":2}", &m, NULL), 0);
	assert_int_equal(m.timestamp, 2);
	msg_clear(&m);
	/* timestamp: null counts as absent, so the alias is used. */
	assert_int_equal(dec_str("{\"messageType\":\"READ_FIRMWARE\",\"timestamp\":null,"
				 "\"timestampe\":7}", &m, NULL), 0);
	assert_int_equal(m.timestamp, 7);
	msg_clear(&m);
	assert_int_equal(dec_str("{\"messageType\":\"READ_FIRMWARE\"}", &m, NULL), 0);
	assert_int_equal(m.timestamp, 0);
	msg_clear(&m);
}

static void test_message_alias_progress(void **state)
{
	struct msg m;

	(void)state;
	assert_int_equal(dec_str(T_PROGRESS "\"version\":\"1.1.0\",\"progress\":10,"
				 "\"message\":\"disk full\"}",
				 &m, NULL), 0);
	assert_string_equal(m.error_reason, "disk full");
	/* JetLinks: progress without `success` is a failure. */
	assert_false(m.has_success);
	assert_false(m.success);
	msg_clear(&m);
	assert_int_equal(dec_str(T_PROGRESS "\"version\":\"1\",\"errorReason\":\"real\","
				 "\"message\":\"alias\"}",
				 &m, NULL), 0);
	assert_string_equal(m.error_reason, "real");
	msg_clear(&m);
}

static void test_message_alias_reply(void **state)
{
	struct msg m;

	(void)state;
	assert_int_equal(dec_str("{\"messageType\":\"UPGRADE_FIRMWARE_REPLY\",\"deviceId\":\"d1\","
				 "\"success\":false,\"code\":\"busy\",\"message\":\"try later\"}",
				 &m, NULL), 0);
	assert_true(m.has_success);
	assert_false(m.success);
	assert_string_equal(m.code, "busy");
	assert_string_equal(m.error_reason, "try later");
	msg_clear(&m);
	/* Replies default to success = true. */
	assert_int_equal(dec_str("{\"messageType\":\"READ_FIRMWARE_REPLY\",\"deviceId\":\"d1\","
				 "\"version\":\"2\"}", &m, NULL), 0);
	assert_false(m.has_success);
	assert_true(m.success);
	msg_clear(&m);
	assert_int_equal(dec_str("{\"messageType\":\"REQUEST_FIRMWARE_REPLY\",\"success\":null}",
				 &m, NULL), 0);
	assert_false(m.has_success);
	assert_true(m.success);
	msg_clear(&m);
}

static void test_unknown_keys_ignored(void **state)
{
	struct msg m;

	(void)state;
	assert_int_equal(dec_str("{\"replyType\":\"x\",\"messageType\":\"UPGRADE_FIRMWARE_REPLY\","
				 "\"thingType\":\"device\",\"thingId\":[1,{\"a\":null}],"
				 "\"deviceId\":\"d1\",\"Success\":\"no\","
				 "\"extra\":{\"deep\":[[[]]]}}",
				 &m, NULL), 0);
	assert_int_equal(m.type, MSG_UPGRADE_FIRMWARE_REPLY);
	assert_string_equal(m.device_id, "d1");
	assert_true(m.success);         /* "Success" is not "success" */
	msg_clear(&m);
}

static void test_type_lower_case(void **state)
{
	struct msg m;

	(void)state;
	assert_int_equal(dec_str("{\"messageType\":\"upgrade_firmware_progress\","
				 "\"deviceId\":\"d1\",\"version\":\"1\",\"progress\":100,"
				 "\"complete\":true,\"success\":true}", &m, NULL), 0);
	assert_int_equal(m.type, MSG_UPGRADE_FIRMWARE_PROGRESS);
	assert_int_equal(m.progress, 100);
	assert_true(m.complete);
	msg_clear(&m);
	assert_int_equal(dec_str("{\"messageType\":\"read_firmware\"}", &m, NULL), 0);
	assert_int_equal(m.type, MSG_READ_FIRMWARE);
	msg_clear(&m);
}

static void test_null_is_absent(void **state)
{
	struct msg m;

	(void)state;
	assert_int_equal(dec_str("{\"messageType\":\"REQUEST_FIRMWARE\",\"deviceId\":\"d1\","
				 "\"messageId\":null,\"currentVersion\":null,\"size\":null,"
				 "\"progress\":null,\"headers\":null,\"properties\":null,"
				 "\"complete\":null}", &m, NULL), 0);
	assert_string_equal(m.message_id, "");
	assert_string_equal(m.current_version, "");
	assert_null(m.properties);
	assert_int_equal(m.size, 0);
	msg_clear(&m);
}

/* Whitespace around the object, and numbers in exponent form, are JSON. */
static void test_json_forms(void **state)
{
	struct msg m;

	(void)state;
	assert_int_equal(dec_str(" \r\n\t{ \"messageType\" : \"UPGRADE_FIRMWARE\" , "
				 "\"size\" : 1e3, \"timestamp\": 9007199254740992 }\n ",
				 &m, NULL), 0);
	assert_int_equal(m.size, 1000);
	assert_int_equal(m.timestamp, 9007199254740992LL);
	msg_clear(&m);
}

/* ---- hostile input ----------------------------------------------------- */

struct hostile {
	const char *buf;
	size_t len;
	int code;
	const char *needle;             /* substring of e.text, or NULL */
};

/* sizeof, not strlen: some cases carry NUL bytes inside len. */
#define HOSTILE(s, c, n) { s, sizeof(s) - 1, c, n }
#define PROG "{\"messageType\":\"UPGRADE_FIRMWARE_PROGRESS\",\"deviceId\":\"d1\",\"version\":\"1\","
#define REQ "{\"messageType\":\"REQUEST_FIRMWARE\",\"deviceId\":\"d1\","

static const struct hostile hostile_cases[] = {
	HOSTILE("", -EBADMSG, "empty"),
	HOSTILE(" ", -EBADMSG, NULL),
	HOSTILE("[]", -EBADMSG, "object"),
	HOSTILE("[{\"messageType\":\"READ_FIRMWARE\"}]", -EBADMSG, "object"),
	HOSTILE("42", -EBADMSG, "object"),
	HOSTILE("\"READ_FIRMWARE\"", -EBADMSG, "object"),
	HOSTILE("null", -EBADMSG, "object"),
	HOSTILE("true", -EBADMSG, "object"),
	HOSTILE("{", -EBADMSG, "malformed"),
	HOSTILE("{\"messageType\":\"READ_FIRMWARE\"", -EBADMSG, "malformed"),
	HOSTILE("{\"messageType\":\"READ_FIRM", -EBADMSG, "malformed"),
	HOSTILE("{\"messageType\":\"READ_FIRMWARE\",\"timestamp\":12", -EBADMSG, "malformed"),
	HOSTILE("{\"messageType\":\"READ_FIRMWARE\"}x", -EBADMSG, "malformed"),
	HOSTILE("{\"messageType\":\"READ_FIRMWARE\"}{}", -EBADMSG, "malformed"),
	HOSTILE("{\"messageType\":\"READ_FIRMWARE\"} ,", -EBADMSG, "malformed"),
	HOSTILE("{\"messageType\":\"READ_FIRMWARE\",}", -EBADMSG, "malformed"),
	HOSTILE("{'messageType':'READ_FIRMWARE'}", -EBADMSG, "malformed"),
	HOSTILE("{/*c*/\"messageType\":\"READ_FIRMWARE\"}", -EBADMSG, "malformed"),
	HOSTILE("{\"messageType\":\"READ_FIRMWARE\"}\0", -EBADMSG, "NUL"),
	HOSTILE("{\"messageType\":\"READ_\0FIRMWARE\"}", -EBADMSG, "NUL"),
	HOSTILE("\0{\"messageType\":\"READ_FIRMWARE\"}", -EBADMSG, "NUL"),
	HOSTILE("{}", -EBADMSG, "field 'messageType': missing"),
	HOSTILE("{\"deviceId\":\"d1\"}", -EBADMSG, "field 'messageType': missing"),
	HOSTILE("{\"MessageType\":\"READ_FIRMWARE\"}", -EBADMSG, "field 'messageType': missing"),
	HOSTILE("{\"messageType\":null}", -EBADMSG, "field 'messageType': missing"),
	HOSTILE("{\"messageType\":3}", -EBADMSG, "field 'messageType': expected a string"),
	HOSTILE("{\"messageType\":[\"READ_FIRMWARE\"]}", -EBADMSG, "'messageType'"),
	HOSTILE("{\"messageType\":\"REBOOT\"}", -EBADMSG, "field 'messageType': unknown"),
	HOSTILE("{\"messageType\":\"\"}", -EBADMSG, "field 'messageType': unknown"),
	HOSTILE("{\"messageType\":\"READ_FIRMWARE \"}", -EBADMSG, "field 'messageType': unknown"),
	HOSTILE("{\"messageType\":\"REPORT_FIRMWARE\",\"deviceId\":7,\"version\":\"1\"}",
		-EBADMSG, "field 'deviceId': expected a string"),
	HOSTILE("{\"messageType\":\"REPORT_FIRMWARE\",\"deviceId\":\"d1/../x\",\"version\":\"1\"}",
		-EBADMSG, "field 'deviceId': invalid"),
	HOSTILE("{\"messageType\":\"REPORT_FIRMWARE\",\"deviceId\":\"d 1\",\"version\":\"1\"}",
		-EBADMSG, "field 'deviceId': invalid"),
	HOSTILE("{\"messageType\":\"UPGRADE_FIRMWARE\",\"deviceId\":\"../etc\"}",
		-EBADMSG, "field 'deviceId': invalid"),
	HOSTILE("{\"messageType\":\"REPORT_FIRMWARE\",\"deviceId\":"
		"\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
		"\"version\":\"1\"}", -EBADMSG, "field 'deviceId': too long (max 64)"),
	HOSTILE("{\"messageType\":\"REPORT_FIRMWARE\",\"version\":\"1\"}",
		-EBADMSG, "field 'deviceId': missing"),
	HOSTILE("{\"messageType\":\"REPORT_FIRMWARE\",\"deviceId\":\"\",\"version\":\"1\"}",
		-EBADMSG, "field 'deviceId': missing"),
	HOSTILE("{\"messageType\":\"UPGRADE_FIRMWARE_REPLY\",\"deviceId\":null}",
		-EBADMSG, "field 'deviceId': missing"),
	HOSTILE("{\"messageType\":\"REPORT_FIRMWARE\",\"deviceId\":\"d1\"}",
		-EBADMSG, "field 'version': missing"),
	HOSTILE(T_PROGRESS "\"progress\":1}",
		-EBADMSG, "field 'version': missing"),
	HOSTILE(T_REPORT "\"version\":1.1}",
		-EBADMSG, "field 'version': expected a string"),
	HOSTILE("{\"messageType\":\"UPGRADE_FIRMWARE\",\"url\":{}}",
		-EBADMSG, "field 'url': expected a string"),
	HOSTILE("{\"messageType\":\"UPGRADE_FIRMWARE\",\"messageId\":false}",
		-EBADMSG, "field 'messageId': expected a string"),
	HOSTILE("{\"messageType\":\"UPGRADE_FIRMWARE_REPLY\",\"deviceId\":\"d1\",\"code\":404}",
		-EBADMSG, "field 'code': expected a string"),
	HOSTILE(PROG "\"progress\":101}", -EBADMSG, "field 'progress': expected an integer 0..100"),
	HOSTILE(PROG "\"progress\":-1}", -EBADMSG, "field 'progress'"),
	HOSTILE(PROG "\"progress\":40.5}", -EBADMSG, "field 'progress'"),
	HOSTILE(PROG "\"progress\":\"40\"}", -EBADMSG, "field 'progress': expected a number"),
	HOSTILE(PROG "\"progress\":true}", -EBADMSG, "field 'progress'"),
	HOSTILE(PROG "\"progress\":1e999}", -EBADMSG, "field 'progress'"),
	HOSTILE(PROG "\"progress\":-1e999}", -EBADMSG, "field 'progress'"),
	HOSTILE(PROG "\"progress\":NaN}", -EBADMSG, "malformed"),
	HOSTILE(PROG "\"success\":\"true\"}", -EBADMSG, "field 'success': expected a boolean"),
	HOSTILE(PROG "\"success\":1}", -EBADMSG, "field 'success'"),
	HOSTILE(PROG "\"complete\":\"false\"}", -EBADMSG, "field 'complete': expected a boolean"),
	HOSTILE(PROG "\"errorReason\":[]}", -EBADMSG, "field 'errorReason'"),
	HOSTILE(PROG "\"message\":5}", -EBADMSG, "field 'message': expected a string"),
	HOSTILE(PROG "\"timestamp\":\"1589277369268\"}", -EBADMSG, "field 'timestamp'"),
	HOSTILE(PROG "\"timestamp\":-1}", -EBADMSG, "field 'timestamp'"),
	HOSTILE(PROG "\"timestamp\":1.5}", -EBADMSG, "field 'timestamp'"),
	HOSTILE(PROG "\"timestamp\":9007199254740994}", -EBADMSG, "field 'timestamp'"),
	HOSTILE(PROG "\"timestamp\":1e300}", -EBADMSG, "field 'timestamp'"),
	HOSTILE(PROG "\"timestampe\":\"now\"}", -EBADMSG, "field 'timestampe'"),
	HOSTILE(PROG "\"size\":-1}", -EBADMSG, "field 'size'"),
	HOSTILE(PROG "\"size\":\"10\"}", -EBADMSG, "field 'size'"),
	HOSTILE(PROG "\"size\":0.5}", -EBADMSG, "field 'size'"),
	HOSTILE(T_REPORT "\"version\":\"1\","
		"\"properties\":[1,2]}", -EBADMSG, "field 'properties': expected an object"),
	HOSTILE(T_REPORT "\"version\":\"1\","
		"\"properties\":\"{}\"}", -EBADMSG, "field 'properties': expected an object"),
	HOSTILE("{\"messageType\":\"UPGRADE_FIRMWARE\",\"parameters\":[]}",
		-EBADMSG, "field 'parameters': expected an object"),
	HOSTILE(REQ "\"headers\":\"force\"}", -EBADMSG, "field 'headers': expected an object"),
	HOSTILE(REQ "\"headers\":[]}", -EBADMSG, "field 'headers': expected an object"),
	HOSTILE(REQ "\"headers\":{\"force\":\"true\"}}", -EBADMSG,
		"field 'headers.force': expected a boolean"),
	HOSTILE(REQ "\"headers\":{\"latest\":1}}", -EBADMSG,
		"field 'headers.latest': expected a boolean"),
	HOSTILE(REQ "\"requestVersion\":null,\"currentVersion\":0}", -EBADMSG,
		"field 'currentVersion'"),
	/* headers.productId / headers.secureKey, on any type */
	HOSTILE(T_REPORT "\"version\":\"1\",\"headers\":{\"productId\":5}}", -EBADMSG,
		"field 'headers.productId': expected a string"),
	HOSTILE(T_REPORT "\"version\":\"1\",\"headers\":{\"productId\":\"\"}}", -EBADMSG,
		"field 'headers.productId': invalid id"),
	HOSTILE(T_REPORT "\"version\":\"1\",\"headers\":{\"productId\":\"p/../1\"}}", -EBADMSG,
		"field 'headers.productId': invalid id"),
	HOSTILE(T_REPORT "\"version\":\"1\",\"headers\":{\"productId\":\"a" T_ID64 "\"}}",
		-EBADMSG, "field 'headers.productId': too long (max 64)"),
	HOSTILE(T_REPORT "\"version\":\"1\",\"headers\":{\"secureKey\":{}}}", -EBADMSG,
		"field 'headers.secureKey': expected a string"),
	HOSTILE(T_REPORT "\"version\":\"1\",\"headers\":{\"secureKey\":\"k" T_ID64 T_ID64 "\"}}",
		-EBADMSG, "field 'headers.secureKey': too long (max 128)"),
	HOSTILE("{\"messageType\":\"ERROR\",\"code\":\"x\",\"headers\":[]}", -EBADMSG,
		"field 'headers': expected an object"),
	/* REQUEST_FIRMWARE_CHUNK */
	HOSTILE("{\"messageType\":\"REQUEST_FIRMWARE_CHUNK\",\"firmwareId\":\"f\",\"offset\":0,"
		"\"length\":1}", -EBADMSG, "field 'deviceId': missing"),
	HOSTILE(T_CHUNK "\"offset\":0,\"length\":1}", -EBADMSG, "field 'firmwareId': missing"),
	HOSTILE(T_CHUNK "\"firmwareId\":\"\",\"offset\":0,\"length\":1}", -EBADMSG,
		"field 'firmwareId': missing"),
	HOSTILE(T_CHUNK "\"firmwareId\":7,\"offset\":0,\"length\":1}", -EBADMSG,
		"field 'firmwareId': expected a string"),
	HOSTILE(T_CHUNK "\"firmwareId\":\"f\",\"length\":1}", -EBADMSG, "field 'offset': missing"),
	HOSTILE(T_CHUNK "\"firmwareId\":\"f\",\"offset\":null,\"length\":1}", -EBADMSG,
		"field 'offset': missing"),
	HOSTILE(T_CHUNK "\"firmwareId\":\"f\",\"offset\":0}", -EBADMSG, "field 'length': missing"),
	HOSTILE(T_CHUNK "\"firmwareId\":\"f\",\"offset\":0,\"length\":0}", -EBADMSG,
		"field 'length': expected an integer 1..4294967295"),
	HOSTILE(T_CHUNK "\"firmwareId\":\"f\",\"offset\":0,\"length\":4294967296}", -EBADMSG,
		"field 'length': expected an integer 0..4294967295"),
	HOSTILE(T_CHUNK "\"firmwareId\":\"f\",\"offset\":0,\"length\":-1}", -EBADMSG,
		"field 'length'"),
	HOSTILE(T_CHUNK "\"firmwareId\":\"f\",\"offset\":0,\"length\":\"4096\"}", -EBADMSG,
		"field 'length': expected a number"),
	HOSTILE(T_CHUNK "\"firmwareId\":\"f\",\"offset\":-1,\"length\":1}", -EBADMSG,
		"field 'offset'"),
	HOSTILE(T_CHUNK "\"firmwareId\":\"f\",\"offset\":0.5,\"length\":1}", -EBADMSG,
		"field 'offset'"),
	HOSTILE(T_CHUNK "\"firmwareId\":\"f\",\"offset\":9007199254740994,\"length\":1}",
		-EBADMSG, "field 'offset'"),
	HOSTILE(T_CHUNK "\"firmwareId\":\"f\",\"offset\":1e999,\"length\":1}", -EBADMSG,
		"field 'offset'"),
	/* REQUEST_FIRMWARE_CHUNK_REPLY */
	HOSTILE(T_CREPLY "\"length\":0,\"crc32\":0}", -EBADMSG, "field 'offset': missing"),
	HOSTILE(T_CREPLY "\"offset\":0,\"crc32\":0}", -EBADMSG, "field 'length': missing"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":0}", -EBADMSG, "field 'crc32': missing"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":0,\"crc32\":4294967296}", -EBADMSG,
		"field 'crc32': expected an integer 0..4294967295"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":0,\"crc32\":-1}", -EBADMSG, "field 'crc32'"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":0,\"crc32\":0,\"data\":0}", -EBADMSG,
		"field 'data': expected a string"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":0,\"crc32\":0,\"data\":[]}", -EBADMSG,
		"field 'data': expected a string"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":8,\"crc32\":463008392,"
		"\"data\":\"f0VMRgIBAQA\"}", -EBADMSG, "field 'data': invalid base64"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":8,\"crc32\":463008392,"
		"\"data\":\"f0VMRgIBAQ==A\"}", -EBADMSG, "field 'data': invalid base64"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":8,\"crc32\":463008392,"
		"\"data\":\"f0VM=gIBAQA=\"}", -EBADMSG, "field 'data': invalid base64"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":8,\"crc32\":463008392,"
		"\"data\":\"f0VMRgIB\\nAQA=\"}", -EBADMSG, "field 'data': invalid base64"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":8,\"crc32\":463008392,"
		"\"data\":\"f0VMRgIB AQA=\"}", -EBADMSG, "field 'data': invalid base64"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":8,\"crc32\":463008392,"
		"\"data\":\"f0VMRgIBAQ-_\"}", -EBADMSG, "field 'data': invalid base64"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":8,\"crc32\":463008392,"
		"\"data\":\"====\"}", -EBADMSG, "field 'data'"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":7,\"crc32\":463008392,"
		"\"data\":\"f0VMRgIBAQA=\"}", -EBADMSG,
		"field 'data': 8 bytes, field 'length' says 7"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":0,\"crc32\":0,"
		"\"data\":\"f0VMRgIBAQA=\"}", -EBADMSG,
		"field 'data': 8 bytes, field 'length' says 0"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":8,\"crc32\":463008393,"
		"\"data\":\"f0VMRgIBAQA=\"}", -EBADMSG, "field 'crc32': does not match data"),
	HOSTILE(T_CREPLY "\"offset\":0,\"length\":0,\"crc32\":1,\"data\":\"\"}", -EBADMSG,
		"field 'crc32': does not match data"),
	HOSTILE(T_CREPLY "\"success\":false,\"offset\":\"0\"}", -EBADMSG,
		"field 'offset': expected a number"),
	/* ERROR */
	HOSTILE("{\"messageType\":\"ERROR\"}", -EBADMSG, "field 'code': missing"),
	HOSTILE("{\"messageType\":\"ERROR\",\"code\":\"\"}", -EBADMSG, "field 'code': missing"),
	HOSTILE("{\"messageType\":\"ERROR\",\"code\":1}", -EBADMSG,
		"field 'code': expected a string"),
	HOSTILE("{\"messageType\":\"ERROR\",\"code\":\"x\",\"message\":false}", -EBADMSG,
		"field 'message': expected a string"),
	HOSTILE("{\"messageType\":\"ERROR\",\"code\":\"x\",\"deviceId\":\"a b\"}", -EBADMSG,
		"field 'deviceId': invalid"),
};

static void test_hostile_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(hostile_cases); i++) {
		const struct hostile *c = &hostile_cases[i];
		struct msg m;
		struct err_info e;
		int rc;

		memset(&m, 0x5a, sizeof(m));    /* decode must not trust old contents */
		rc = dec(c->buf, c->len, &m, &e);
		if (rc != c->code || e.code != c->code)
			fail_msg("case %zu (%.60s): rc %d, e.code %d, want %d", i, c->buf, rc,
				 e.code, c->code);
		if (c->needle && !strstr(e.text, c->needle))
			fail_msg("case %zu (%.60s): text '%s' lacks '%s'", i, c->buf, e.text,
				 c->needle);
		assert_cleared(&m);
		/* A NULL err_info changes nothing but the detail. */
		assert_int_equal(dec(c->buf, c->len, &m, NULL), c->code);
		assert_cleared(&m);
	}
}

/* A field that was decoded before the error (properties) is freed. */
static void test_error_frees_fields(void **state)
{
	struct msg m;
	struct err_info e;

	(void)state;
	assert_int_equal(dec_str(T_REPORT "\"properties\":{\"a\":1},"
				 "\"parameters\":{\"b\":2}}", &m, &e),
			 -EBADMSG);
	assert_string_equal(e.text, "field 'version': missing");
	assert_cleared(&m);
}

static void test_string_caps(void **state)
{
	static const char head[] = "{\"messageType\":\"UPGRADE_FIRMWARE\",\"url\":\"";
	struct sb ok = { NULL, 0 }, big = { NULL, 0 };
	struct msg m;
	struct err_info e;

	(void)state;
	sb_add(&ok, head);
	sb_fill(&ok, 'u', OTAGW_URL_MAX - 1);
	sb_add(&ok, "\"}");
	assert_int_equal(dec(ok.p, ok.n, &m, &e), 0);
	assert_int_equal(strlen(m.url), OTAGW_URL_MAX - 1);
	msg_clear(&m);

	sb_add(&big, head);
	sb_fill(&big, 'u', OTAGW_URL_MAX);
	sb_add(&big, "\"}");
	assert_int_equal(dec(big.p, big.n, &m, &e), -EBADMSG);
	assert_string_equal(e.text, "field 'url': too long (max 3000)");
	assert_cleared(&m);
	free(ok.p);
	free(big.p);

	/* deviceId: 64 characters is the most util_id_valid() allows. */
	assert_int_equal(dec_str("{\"messageType\":\"UPGRADE_FIRMWARE_REPLY\",\"deviceId\":"
				 "\"" T_ID64 "\"}", &m, &e), 0);
	assert_int_equal(strlen(m.device_id), 64);
	msg_clear(&m);
}

/* properties' compact text must stay under OTAGW_PROPS_MAX with its NUL. */
static void test_props_cap(void **state)
{
	/* {"k":"<n x>"} prints as n + 8 bytes. */
	static const size_t fits = OTAGW_PROPS_MAX - 1 - 8;
	static const char head[] = "{\"messageType\":\"READ_FIRMWARE_REPLY\",\"deviceId\":\"d1\","
				   "\"properties\":{ \"k\" : \"";
	struct sb ok = { NULL, 0 }, big = { NULL, 0 };
	struct msg m;
	struct err_info e;

	(void)state;
	sb_add(&ok, head);
	sb_fill(&ok, 'p', fits);
	sb_add(&ok, "\" }}");
	assert_int_equal(dec(ok.p, ok.n, &m, &e), 0);
	assert_int_equal(strlen(m.properties), OTAGW_PROPS_MAX - 1);
	msg_clear(&m);

	sb_add(&big, head);
	sb_fill(&big, 'p', fits + 1);
	sb_add(&big, "\" }}");
	assert_int_equal(dec(big.p, big.n, &m, &e), -EBADMSG);
	assert_non_null(strstr(e.text, "field 'properties': too large"));
	assert_cleared(&m);
	free(ok.p);
	free(big.p);
}

static void test_msg_max(void **state)
{
	static const char body[] = "{\"messageType\":\"READ_FIRMWARE\"}";
	struct sb b = { NULL, 0 };
	struct msg m;
	struct err_info e;

	(void)state;
	sb_add(&b, body);
	sb_fill(&b, ' ', OTAGW_MSG_MAX - (sizeof(body) - 1));
	assert_int_equal(b.n, OTAGW_MSG_MAX);
	assert_int_equal(dec(b.p, b.n, &m, &e), 0);
	assert_int_equal(m.type, MSG_READ_FIRMWARE);
	msg_clear(&m);
	sb_add(&b, " ");
	assert_int_equal(dec(b.p, b.n, &m, &e), -EMSGSIZE);
	assert_int_equal(e.code, -EMSGSIZE);
	assert_cleared(&m);
	free(b.p);
}

/* cJSON's nesting limit (1000) must turn deep input into -EBADMSG. */
static void test_deep_nesting(void **state)
{
	struct sb arr = { NULL, 0 }, obj = { NULL, 0 };
	struct msg m;
	struct err_info e;

	(void)state;
	sb_fill(&arr, '[', 10000);
	assert_int_equal(dec(arr.p, arr.n, &m, &e), -EBADMSG);
	sb_fill(&arr, ']', 10000);
	assert_int_equal(dec(arr.p, arr.n, &m, &e), -EBADMSG);
	assert_cleared(&m);

	sb_add(&obj, "{\"messageType\":\"READ_FIRMWARE_REPLY\",\"deviceId\":\"d1\",");
	sb_add(&obj, "\"properties\":");
	for (int i = 0; i < 5000; i++)
		sb_add(&obj, "{\"a\":");
	sb_add(&obj, "1");
	sb_fill(&obj, '}', 5001);
	assert_int_equal(dec(obj.p, obj.n, &m, &e), -EBADMSG);
	assert_cleared(&m);
	free(arr.p);
	free(obj.p);
}

/* Bad UTF-8 may be accepted or refused, but never crash or over-read. */
static void test_invalid_utf8(void **state)
{
	static const char *const cases[] = {
		T_REPORT "\"version\":\"\xff\xfe\"}",
		T_REPORT "\"version\":\"\xc3\"}",
		T_REPORT "\"version\":\"\\ud800\"}",
		T_REPORT "\"version\":\"\\udc00x\"}",
		T_REPORT "\"version\":\"\\ud800\\u00\"}",
		T_REPORT "\"version\":\"\\u\"}",
		"{\"messageType\":\"REPORT_FIRMWARE\",\"deviceId\":\"d\xe9\",\"version\":\"1\"}",
		T_REPORT "\"version\":\"1\",\"\xff\":1}",
		"\xef\xbb\xbf{\"messageType\":\"READ_FIRMWARE\"}",
		"{\"messageType\":\"READ_FIRMWARE\",\"messageId\":\"\\",
	};

	(void)state;
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(cases); i++) {
		struct msg m;
		struct err_info e;
		int rc = dec_str(cases[i], &m, &e);

		if (rc != 0 && rc != -EBADMSG)
			fail_msg("case %zu: rc %d", i, rc);
		if (rc)
			assert_cleared(&m);
		msg_clear(&m);
	}
}

/* ---- encoding ---------------------------------------------------------- */

/* Gives m a chunk of n bytes of every value (0x00, 0x01 ... 0xff, 0x00 ...),
 * with length and crc32 to match, out of an image of size bytes. */
static void set_chunk(struct msg *m, size_t n, uint64_t size)
{
	uint8_t *bytes = malloc(n ? n : 1);

	assert_non_null(bytes);
	for (size_t i = 0; i < n; i++)
		bytes[i] = (uint8_t)i;
	assert_int_equal(msg_set_data(m, bytes, n), 0);
	m->length = (uint32_t)n;
	m->crc32 = (uint32_t)crc32(0L, bytes, (uInt)n);
	m->size = size;
	free(bytes);
}

/* A message of type t with every field that type carries set. */
static void build(struct msg *m, enum msg_type t, bool success)
{
	msg_init(m, t);
	util_strlcpy(m->device_id, "dev-01", sizeof(m->device_id));
	util_strlcpy(m->message_id, "msg:1", sizeof(m->message_id));
	m->timestamp = 1589277368209LL;
	switch (t) {
	case MSG_REPORT_FIRMWARE:
	case MSG_READ_FIRMWARE_REPLY:
		util_strlcpy(m->version, "1.0.1", sizeof(m->version));
		assert_int_equal(msg_set_properties(m, "{\"hw\":\"A2\",\"n\":[1,true,null]}"), 0);
		break;
	case MSG_REQUEST_FIRMWARE:
		util_strlcpy(m->current_version, "1.0.1", sizeof(m->current_version));
		util_strlcpy(m->request_version, "1.2.0", sizeof(m->request_version));
		m->force = true;
		m->latest = true;
		break;
	case MSG_REQUEST_FIRMWARE_REPLY:
	case MSG_UPGRADE_FIRMWARE:
		/* A failed reply carries no firmware; a push always does. */
		if (!success && t == MSG_REQUEST_FIRMWARE_REPLY)
			break;
		util_strlcpy(m->firmware_id, "fw1", sizeof(m->firmware_id));
		util_strlcpy(m->version, "1.1.0", sizeof(m->version));
		util_strlcpy(m->url, "http://gw/f/fw1.bin?a=1&b=\"2\"", sizeof(m->url));
		m->size = 9007199254740992ULL;
		util_strlcpy(m->sign, "9e107d9d372bb6826bd81d3542a419d6", sizeof(m->sign));
		util_strlcpy(m->sign_method, "sha256", sizeof(m->sign_method));
		assert_int_equal(msg_set_parameters(m, "{\"k\":\"v\",\"o\":{}}"), 0);
		break;
	case MSG_UPGRADE_FIRMWARE_PROGRESS:
		util_strlcpy(m->firmware_id, "fw1", sizeof(m->firmware_id));
		util_strlcpy(m->version, "1.1.0", sizeof(m->version));
		m->progress = success ? 100 : 37;
		m->complete = success;
		break;
	case MSG_REQUEST_FIRMWARE_CHUNK:
		util_strlcpy(m->firmware_id, "fw1", sizeof(m->firmware_id));
		m->offset = UINT64_C(1) << 53;
		m->length = UINT32_MAX;
		break;
	case MSG_REQUEST_FIRMWARE_CHUNK_REPLY:
		util_strlcpy(m->firmware_id, "fw1", sizeof(m->firmware_id));
		m->offset = 4096;
		if (success)
			set_chunk(m, 1000, 524288);
		break;
	case MSG_ERROR:
		util_strlcpy(m->code, "refused", sizeof(m->code));
		util_strlcpy(m->error_reason, "no \"task\"", sizeof(m->error_reason));
		break;
	default:
		break;
	}
	if (t != MSG_UPGRADE_FIRMWARE && t != MSG_REQUEST_FIRMWARE && t != MSG_READ_FIRMWARE &&
	    t != MSG_REPORT_FIRMWARE && t != MSG_REQUEST_FIRMWARE_CHUNK && t != MSG_ERROR) {
		m->success = success;
		m->has_success = true;
	}
	if (m->has_success && !success) {
		if (t != MSG_UPGRADE_FIRMWARE_PROGRESS)
			util_strlcpy(m->code, "not_found", sizeof(m->code));
		util_strlcpy(m->error_reason, "\xe6\x97\xa0\xe5\x9b\xba\xe4\xbb\xb6 \"x\"\n",
			     sizeof(m->error_reason));
	}
}

static void test_roundtrip_all(void **state)
{
	(void)state;
	for (int t = 0; t < MSG_TYPE_COUNT; t++) {
		for (int ok = 1; ok >= 0; ok--) {
			struct msg in, out;
			struct err_info e;
			char *text = NULL;
			size_t n = 0;

			build(&in, (enum msg_type)t, ok);
			assert_int_equal(msg_json_encode(&in, &text, &n), 0);
			assert_int_equal(n, strlen(text));
			assert_int_equal(dec(text, n, &out, &e), 0);
			assert_msg_equal(&in, &out);
			free(text);
			msg_clear(&in);
			msg_clear(&out);
		}
	}
}

/* Envelope order and content; fields of other types are not written. */
static void test_encode_shape(void **state)
{
	static const char no_id[] = "{\"messageType\":\"READ_FIRMWARE\",\"deviceId\":\"dev-01\","
				    "\"timestamp\":";
	struct msg m;
	char *text = NULL;
	size_t n = 0;

	(void)state;
	build(&m, MSG_READ_FIRMWARE, true);
	m.success = true;               /* none of these is a READ_FIRMWARE field */
	util_strlcpy(m.version, "9", sizeof(m.version));
	util_strlcpy(m.product_id, "p1", sizeof(m.product_id));
	assert_int_equal(msg_set_properties(&m, "{}"), 0);
	assert_int_equal(msg_json_encode(&m, &text, &n), 0);
	assert_string_equal(text, "{\"messageType\":\"READ_FIRMWARE\",\"deviceId\":\"dev-01\","
			    "\"messageId\":\"msg:1\",\"timestamp\":1589277368209}");
	free(text);
	/* An empty messageId is omitted; timestamp 0 is replaced by now. */
	m.message_id[0] = '\0';
	m.timestamp = 0;
	assert_int_equal(msg_json_encode(&m, &text, &n), 0);
	assert_int_equal(strncmp(text, no_id, sizeof(no_id) - 1), 0);
	assert_null(strstr(text, "\"timestamp\":0"));
	free(text);
	msg_clear(&m);
}

static void test_encode_timestamp_now(void **state)
{
	struct msg m, back;
	char *text = NULL;
	size_t n = 0;
	int64_t before, after;

	(void)state;
	msg_init(&m, MSG_UPGRADE_FIRMWARE_REPLY);
	util_strlcpy(m.device_id, "d1", sizeof(m.device_id));
	m.success = true;
	before = util_now_ms();
	assert_int_equal(msg_json_encode(&m, &text, &n), 0);
	after = util_now_ms();
	assert_int_equal(dec(text, n, &back, NULL), 0);
	assert_in_range(back.timestamp, before, after);
	free(text);
	msg_clear(&back);
}

static void test_encode_upgrade_no_success(void **state)
{
	struct msg m;
	char *text = NULL;
	size_t n = 0;

	(void)state;
	build(&m, MSG_UPGRADE_FIRMWARE, true);
	m.success = true;
	m.has_success = true;
	util_strlcpy(m.error_reason, "x", sizeof(m.error_reason));
	assert_int_equal(msg_json_encode(&m, &text, &n), 0);
	assert_null(strstr(text, "\"success\""));
	assert_null(strstr(text, "\"message\""));
	assert_non_null(strstr(text, "\"parameters\":{\"k\":\"v\",\"o\":{}}"));
	free(text);
	/* Without parameters the object is still written, empty. */
	assert_int_equal(msg_set_parameters(&m, NULL), 0);
	assert_int_equal(msg_json_encode(&m, &text, &n), 0);
	assert_non_null(strstr(text, "\"parameters\":{}"));
	free(text);
	msg_clear(&m);
}

static void test_encode_request_reply_failure(void **state)
{
	struct msg m;
	char *text = NULL;
	size_t n = 0;

	(void)state;
	msg_init(&m, MSG_REQUEST_FIRMWARE_REPLY);
	util_strlcpy(m.device_id, "d1", sizeof(m.device_id));
	util_strlcpy(m.message_id, "m1", sizeof(m.message_id));
	m.timestamp = 5;
	m.success = false;
	util_strlcpy(m.code, "not_found", sizeof(m.code));
	util_strlcpy(m.error_reason, "\xe6\x97\xa0\xe5\x9b\xba\xe4\xbb\xb6\xe6\x9b\xb4\xe6\x96\xb0",
		     sizeof(m.error_reason));
	util_strlcpy(m.url, "http://must-not-appear", sizeof(m.url));
	assert_int_equal(msg_json_encode(&m, &text, &n), 0);
	assert_string_equal(text, "{\"messageType\":\"REQUEST_FIRMWARE_REPLY\",\"deviceId\":\"d1\","
			    "\"messageId\":\"m1\",\"timestamp\":5,\"success\":false,"
			    "\"code\":\"not_found\","
			    "\"message\":\"\xe6\x97\xa0\xe5\x9b\xba\xe4\xbb\xb6"
			    "\xe6\x9b\xb4\xe6\x96\xb0\"}");
	free(text);
	msg_clear(&m);
}

static void test_encode_progress_failure(void **state)
{
	struct msg m;
	char *text = NULL;
	size_t n = 0;

	(void)state;
	msg_init(&m, MSG_UPGRADE_FIRMWARE_PROGRESS);
	util_strlcpy(m.device_id, "d1", sizeof(m.device_id));
	util_strlcpy(m.version, "1.1.0", sizeof(m.version));
	util_strlcpy(m.error_reason, "flash", sizeof(m.error_reason));
	m.timestamp = 1;
	m.progress = 3;
	assert_int_equal(msg_json_encode(&m, &text, &n), 0);
	assert_string_equal(text, T_PROGRESS
			    "\"timestamp\":1,\"version\":\"1.1.0\",\"progress\":3,"
			    "\"complete\":false,\"success\":false,\"errorReason\":\"flash\"}");
	free(text);
	msg_clear(&m);
}

/* Messages the encoder must refuse rather than write wrongly. */
static void test_encode_rejects(void **state)
{
	struct msg m;
	char *text = (char *)"untouched";
	size_t n = 0;

	(void)state;
	msg_init(&m, MSG_UPGRADE_FIRMWARE_PROGRESS);
	m.progress = 101;
	assert_int_equal(msg_json_encode(&m, &text, &n), -EINVAL);
	assert_null(text);
	m.progress = -1;
	assert_int_equal(msg_json_encode(&m, &text, &n), -EINVAL);

	msg_init(&m, MSG_UPGRADE_FIRMWARE);
	m.size = (UINT64_C(1) << 53) + 1;
	assert_int_equal(msg_json_encode(&m, &text, &n), -EINVAL);
	m.size = 0;
	m.timestamp = -5;
	assert_int_equal(msg_json_encode(&m, &text, &n), -EINVAL);
	m.timestamp = 0;
	assert_int_equal(msg_set_parameters(&m, "[1]"), 0);
	assert_int_equal(msg_json_encode(&m, &text, &n), -EINVAL);
	assert_int_equal(msg_set_parameters(&m, "{\"a\":1} junk"), 0);
	assert_int_equal(msg_json_encode(&m, &text, &n), -EINVAL);
	msg_clear(&m);

	msg_init(&m, MSG_READ_FIRMWARE);
	m.type = MSG_TYPE_COUNT;
	assert_int_equal(msg_json_encode(&m, &text, &n), -EINVAL);
	assert_int_equal(msg_json_encode(NULL, &text, &n), -EINVAL);
}

/* ---- otagw extensions -------------------------------------------------- */

static void test_canon_chunk(void **state)
{
	struct msg m;

	(void)state;
	assert_int_equal(dec_str(canon_chunk, &m, NULL), 0);
	assert_int_equal(m.type, MSG_REQUEST_FIRMWARE_CHUNK);
	assert_string_equal(m.device_id, "d1");
	assert_string_equal(m.message_id, "c1");
	assert_string_equal(m.firmware_id, "fw1");
	assert_int_equal(m.offset, 524280);
	assert_int_equal(m.length, 4096);
	assert_null(m.data);
	msg_clear(&m);

	assert_int_equal(dec_str(canon_chunk_reply, &m, NULL), 0);
	assert_int_equal(m.type, MSG_REQUEST_FIRMWARE_CHUNK_REPLY);
	assert_true(m.success);
	assert_string_equal(m.firmware_id, "fw1");
	assert_int_equal(m.offset, 524280);
	assert_int_equal(m.length, 8);
	assert_int_equal(m.size, 524288);
	assert_int_equal(m.crc32, 463008392);
	assert_int_equal(m.data_len, 8);
	assert_memory_equal(m.data, "\x7f" "ELF\x02\x01\x01\x00", 8);
	msg_clear(&m);

	assert_int_equal(dec_str(canon_chunk_end, &m, NULL), 0);
	assert_true(m.success);
	assert_int_equal(m.offset, 524288);
	assert_int_equal(m.length, 0);
	assert_null(m.data);
	assert_int_equal(m.data_len, 0);
	msg_clear(&m);

	assert_int_equal(dec_str(canon_chunk_fail, &m, NULL), 0);
	assert_false(m.success);
	assert_int_equal(m.offset, 600000);
	assert_string_equal(m.code, "out_of_range");
	assert_string_equal(m.error_reason, "offset beyond the image");
	msg_clear(&m);

	assert_int_equal(dec_str(canon_error, &m, NULL), 0);
	assert_int_equal(m.type, MSG_ERROR);
	assert_string_equal(m.device_id, "d1");
	assert_string_equal(m.message_id, "m9");
	assert_string_equal(m.code, "bad_message");
	assert_string_equal(m.error_reason, "field 'version': missing");
	assert_false(m.success);
	msg_clear(&m);
}

/* A failed chunk reply needs no data fields, and any it has are ignored. */
static void test_chunk_reply_failure_lenient(void **state)
{
	struct msg m;

	(void)state;
	assert_int_equal(dec_str(T_CREPLY "\"success\":false,\"code\":\"not_found\","
				 "\"length\":\"x\",\"crc32\":-5,\"data\":\"!\"}", &m, NULL), 0);
	assert_false(m.success);
	assert_string_equal(m.code, "not_found");
	assert_int_equal(m.offset, 0);
	assert_int_equal(m.length, 0);
	assert_null(m.data);
	msg_clear(&m);
	/* ERROR without deviceId and messageId: it may answer an unreadable line. */
	assert_int_equal(dec_str("{\"messageType\":\"error\",\"code\":\"too_large\"}", &m, NULL),
			 0);
	assert_int_equal(m.type, MSG_ERROR);
	assert_string_equal(m.device_id, "");
	assert_string_equal(m.error_reason, "");
	msg_clear(&m);
}

/* Without "data" a chunk reply leaves data to another carrier (frame type
 * 2): length and crc32 are kept, data stays NULL. */
static void test_chunk_reply_out_of_band(void **state)
{
	struct msg m;
	char *text = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(dec_str(T_CREPLY "\"offset\":0,\"length\":8,\"crc32\":463008392}", &m,
				 NULL), 0);
	assert_int_equal(m.length, 8);
	assert_int_equal(m.crc32, 463008392);
	assert_null(m.data);
	assert_int_equal(m.data_len, 0);
	/* ... and encodes the same way back. */
	m.timestamp = 1;
	assert_int_equal(msg_json_encode(&m, &text, &n), 0);
	assert_string_equal(text, T_CREPLY "\"timestamp\":1,\"success\":true,\"offset\":0,"
			    "\"length\":8,\"size\":0,\"crc32\":463008392}");
	free(text);
	msg_clear(&m);
}

static void test_headers_ext(void **state)
{
	struct msg m;

	(void)state;
	assert_int_equal(dec_str(T_REPORT "\"version\":\"1\","
				 "\"headers\":{\"productId\":\"p-1.x:y_z\","
				 "\"secureKey\":\"s3cr\\u00e9t \\\"k\\\"\",\"force\":true}}",
				 &m, NULL), 0);
	assert_string_equal(m.product_id, "p-1.x:y_z");
	assert_string_equal(m.secure_key, "s3cr\xc3\xa9t \"k\"");
	assert_true(m.force);
	msg_clear(&m);
	/* 128 bytes of key is the most. */
	assert_int_equal(dec_str("{\"messageType\":\"REQUEST_FIRMWARE_CHUNK\",\"deviceId\":\"d1\","
				 "\"firmwareId\":\"f\",\"offset\":0,\"length\":1,"
				 "\"headers\":{\"secureKey\":\"" T_ID64 T_ID64 "\","
				 "\"productId\":\"" T_ID64 "\"}}", &m, NULL), 0);
	assert_int_equal(strlen(m.secure_key), 128);
	assert_int_equal(strlen(m.product_id), 64);
	msg_clear(&m);
	/* null is absent, as everywhere. */
	assert_int_equal(dec_str(T_REPORT "\"version\":\"1\",\"headers\":{\"productId\":null,"
				 "\"secureKey\":null}}", &m, NULL), 0);
	assert_string_equal(m.product_id, "");
	assert_string_equal(m.secure_key, "");
	msg_clear(&m);
}

/* No type writes secure_key (nor productId, a transport's business). */
static void test_secure_key_never_encoded(void **state)
{
	(void)state;
	for (int t = 0; t < MSG_TYPE_COUNT; t++) {
		struct msg m;
		char *text = NULL;
		size_t n = 0;

		build(&m, (enum msg_type)t, true);
		util_strlcpy(m.secure_key, "TOPSECRET", sizeof(m.secure_key));
		util_strlcpy(m.product_id, "prod9", sizeof(m.product_id));
		assert_int_equal(msg_json_encode(&m, &text, &n), 0);
		assert_null(strstr(text, "TOPSECRET"));
		assert_null(strstr(text, "secureKey"));
		assert_null(strstr(text, "prod9"));
		free(text);
		msg_clear(&m);
	}
}

/* The encoder writes the CRC of the data it sends, whatever m->crc32 says,
 * and an empty chunk (the end of the image) as "data":"". */
static void test_encode_chunk_reply(void **state)
{
	struct msg m, back;
	char *text = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(dec_str(canon_chunk_reply, &m, NULL), 0);
	m.crc32 = 12345;
	assert_int_equal(msg_json_encode(&m, &text, &n), 0);
	assert_string_equal(text, canon_chunk_reply);
	free(text);
	msg_clear(&m);

	msg_init(&m, MSG_REQUEST_FIRMWARE_CHUNK_REPLY);
	m.success = true;
	m.has_success = true;
	m.offset = 10;
	m.size = 10;
	m.timestamp = 2;
	assert_int_equal(msg_json_encode(&m, &text, &n), 0);
	assert_string_equal(text, "{\"messageType\":\"REQUEST_FIRMWARE_CHUNK_REPLY\","
			    "\"timestamp\":2,\"success\":true,\"offset\":10,\"length\":0,"
			    "\"size\":10,\"crc32\":0,\"data\":\"\"}");
	assert_int_equal(dec(text, n, &back, NULL), 0);
	assert_msg_equal(&m, &back);
	free(text);
	msg_clear(&back);
}

/* The largest chunk fits one message, in base64. */
static void test_encode_chunk_max(void **state)
{
	struct msg m, back;
	char *text = NULL;
	size_t n = 0;

	(void)state;
	build(&m, MSG_REQUEST_FIRMWARE_CHUNK_REPLY, true);
	set_chunk(&m, OTAGW_CHUNK_MAX, UINT64_C(1) << 40);
	assert_int_equal(msg_json_encode(&m, &text, &n), 0);
	assert_true(n <= OTAGW_MSG_MAX);
	assert_int_equal(dec(text, n, &back, NULL), 0);
	assert_msg_equal(&m, &back);
	free(text);
	msg_clear(&back);
	msg_clear(&m);
}

static void test_encode_rejects_ext(void **state)
{
	static const uint8_t bytes[4] = { 1, 2, 3, 4 };
	struct msg m;
	char *text = NULL;
	size_t n = 0;

	(void)state;
	build(&m, MSG_REQUEST_FIRMWARE_CHUNK, true);
	m.length = 0;
	assert_int_equal(msg_json_encode(&m, &text, &n), -EINVAL);
	m.length = 1;
	m.offset = (UINT64_C(1) << 53) + 1;
	assert_int_equal(msg_json_encode(&m, &text, &n), -EINVAL);
	msg_clear(&m);

	build(&m, MSG_ERROR, true);
	m.code[0] = '\0';
	assert_int_equal(msg_json_encode(&m, &text, &n), -EINVAL);
	msg_clear(&m);

	/* data and length disagree. */
	build(&m, MSG_REQUEST_FIRMWARE_CHUNK_REPLY, true);
	assert_int_equal(msg_set_data(&m, bytes, sizeof(bytes)), 0);
	m.length = 5;
	assert_int_equal(msg_json_encode(&m, &text, &n), -EINVAL);
	m.length = 3;
	assert_int_equal(msg_json_encode(&m, &text, &n), -EINVAL);
	/* More data than a message can carry: refused before any base64. */
	set_chunk(&m, OTAGW_MSG_MAX, 0);
	assert_int_equal(msg_json_encode(&m, &text, &n), -EMSGSIZE);
	assert_null(text);
	msg_clear(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_msg_lifetime),
		cmocka_unit_test(test_canon_report),
		cmocka_unit_test(test_canon_request),
		cmocka_unit_test(test_canon_request_reply),
		cmocka_unit_test(test_canon_upgrade),
		cmocka_unit_test(test_canon_upgrade_reply),
		cmocka_unit_test(test_canon_progress),
		cmocka_unit_test(test_canon_reencode),
		cmocka_unit_test(test_msg_data),
		cmocka_unit_test(test_canon_chunk),
		cmocka_unit_test(test_chunk_reply_failure_lenient),
		cmocka_unit_test(test_chunk_reply_out_of_band),
		cmocka_unit_test(test_headers_ext),
		cmocka_unit_test(test_timestampe_alias),
		cmocka_unit_test(test_message_alias_progress),
		cmocka_unit_test(test_message_alias_reply),
		cmocka_unit_test(test_unknown_keys_ignored),
		cmocka_unit_test(test_type_lower_case),
		cmocka_unit_test(test_null_is_absent),
		cmocka_unit_test(test_json_forms),
		cmocka_unit_test(test_hostile_table),
		cmocka_unit_test(test_error_frees_fields),
		cmocka_unit_test(test_string_caps),
		cmocka_unit_test(test_props_cap),
		cmocka_unit_test(test_msg_max),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_roundtrip_all),
		cmocka_unit_test(test_encode_shape),
		cmocka_unit_test(test_encode_timestamp_now),
		cmocka_unit_test(test_encode_upgrade_no_success),
		cmocka_unit_test(test_encode_request_reply_failure),
		cmocka_unit_test(test_encode_progress_failure),
		cmocka_unit_test(test_encode_rejects),
		cmocka_unit_test(test_secure_key_never_encoded),
		cmocka_unit_test(test_encode_chunk_reply),
		cmocka_unit_test(test_encode_chunk_max),
		cmocka_unit_test(test_encode_rejects_ext),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
