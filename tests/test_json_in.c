/* SPDX-License-Identifier: MIT */
/* test_json_in.c - the shared JSON field checks, fed hostile input: wrong
 * types, nulls, boundaries of every cap, non-integral and huge numbers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_in.h"
#include "util.h"

static cJSON *parse(const char *text)
{
	cJSON *o = cJSON_Parse(text);

	assert_non_null(o);
	return o;
}

static void test_check_keys(void **state)
{
	static const char *const keys[] = { "a", "b" };
	static const struct {
		const char *body;
		int rc;
		const char *text;
	} cases[] = {
		{ "{}", 0, NULL },
		{ "{\"a\":1,\"b\":null}", 0, NULL },
		{ "{\"a\":1,\"c\":2}", -EINVAL, "unknown field 'c'" },
		{ "{\"A\":1}", -EINVAL, "unknown field 'A'" },
		{ "{\"a\":1,\"a\":2}", -EINVAL, "duplicate field 'a'" },
		{ "{\"x\\ny'\":1}", -EINVAL, "unknown field 'x?y?'" },
		{ "[1]", -EINVAL, "expected a JSON object" },
		{ "\"a\"", -EINVAL, "expected a JSON object" },
	};

	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(cases); i++) {
		struct err_info e = { 0 };
		cJSON *o = parse(cases[i].body);

		assert_int_equal(json_in_check_keys(o, keys, 2, &e), cases[i].rc);
		if (cases[i].text)
			assert_string_equal(e.text, cases[i].text);
		cJSON_Delete(o);
	}
	assert_int_equal(json_in_check_keys(NULL, keys, 2, NULL), -EINVAL);
}

static void test_str(void **state)
{
	cJSON *o = parse("{\"s\":\"abc\",\"e\":\"\",\"n\":null,\"i\":1,\"b\":true,\"a\":[],"
			 "\"o\":{}}");
	struct err_info e = { 0 };
	char buf[4] = "zz";

	assert_int_equal(json_in_str(o, "s", true, buf, sizeof(buf), &e), 0);
	assert_string_equal(buf, "abc");
	assert_int_equal(json_in_str(o, "s", true, buf, 3, &e), -EINVAL);
	assert_string_equal(e.text, "field 's': too long (max 2)");
	util_strlcpy(buf, "zz", sizeof(buf));
	assert_int_equal(json_in_str(o, "x", false, buf, sizeof(buf), &e), 1);
	assert_int_equal(json_in_str(o, "n", false, buf, sizeof(buf), &e), -EINVAL);
	assert_string_equal(e.text, "field 'n': null is not allowed (omit the field)");
	assert_string_equal(buf, "zz");
	assert_int_equal(json_in_str(o, "x", true, buf, sizeof(buf), &e), -EINVAL);
	assert_string_equal(e.text, "field 'x' is required");
	assert_int_equal(json_in_str(o, "n", true, buf, sizeof(buf), &e), -EINVAL);
	assert_int_equal(json_in_str(o, "e", true, buf, sizeof(buf), &e), -EINVAL);
	assert_non_null(strstr(e.text, "'e'"));
	assert_int_equal(json_in_str(o, "e", false, buf, sizeof(buf), &e), 0);
	assert_string_equal(buf, "");
	for (const char *k = "ibao"; *k; k++) {
		char key[2] = { *k, 0 };

		assert_int_equal(json_in_str(o, key, false, buf, sizeof(buf), &e), -EINVAL);
		assert_non_null(strstr(e.text, "expected a string"));
	}
	assert_int_equal(json_in_str(o, "s", false, buf, 0, NULL), -EINVAL);
	cJSON_Delete(o);
}

static void test_strdup(void **state)
{
	cJSON *o = parse("{\"s\":\"abcd\",\"n\":5}");
	struct err_info e = { 0 };
	char *out = NULL;

	assert_int_equal(json_in_strdup(o, "s", 4, &out, &e), 0);
	assert_string_equal(out, "abcd");
	free(out);
	out = NULL;
	assert_int_equal(json_in_strdup(o, "s", 3, &out, &e), -EINVAL);
	assert_null(out);
	assert_string_equal(e.text, "field 's': too long (max 3)");
	assert_int_equal(json_in_strdup(o, "x", 3, &out, &e), 1);
	assert_null(out);
	assert_int_equal(json_in_strdup(o, "n", 3, &out, &e), -EINVAL);
	assert_null(out);
	cJSON_Delete(o);
}

static void test_int(void **state)
{
	static const struct {
		const char *json;
		int rc;
		int64_t v;
	} cases[] = {
		{ "0", 0, 0 },
		{ "-0", 0, 0 },
		{ "100", 0, 100 },
		{ "1e2", 0, 100 },
		{ "-100", 0, -100 },
		{ "101", -EINVAL, 0 },
		{ "-101", -EINVAL, 0 },
		{ "1.5", -EINVAL, 0 },
		{ "0.0000001", -EINVAL, 0 },
		{ "1e999", -EINVAL, 0 },
		{ "-1e999", -EINVAL, 0 },
		{ "9223372036854775808", -EINVAL, 0 },
		{ "\"1\"", -EINVAL, 0 },
		{ "true", -EINVAL, 0 },
		{ "[1]", -EINVAL, 0 },
		{ "{}", -EINVAL, 0 },
		{ "null", -EINVAL, 0 },
	};

	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(cases); i++) {
		char body[64];
		struct err_info e = { 0 };
		int64_t v = 7;
		cJSON *o;

		snprintf(body, sizeof(body), "{\"n\":%s}", cases[i].json);
		o = parse(body);
		assert_int_equal(json_in_int(o, "n", false, -100, 100, &v, &e), cases[i].rc);
		if (cases[i].rc >= 0)
			assert_int_equal(v, cases[i].v);
		else
			assert_non_null(strstr(e.text, "field 'n'"));
		cJSON_Delete(o);
	}
}

static void test_int_limits(void **state)
{
	cJSON *o = parse("{\"big\":9007199254740992,\"neg\":-9223372036854775808}");
	int64_t v = 0;

	assert_int_equal(json_in_int(o, "big", true, 0, INT64_MAX, &v, NULL), 0);
	assert_int_equal(v, INT64_C(9007199254740992));
	assert_int_equal(json_in_int(o, "neg", true, INT64_MIN, 0, &v, NULL), 0);
	assert_true(v == INT64_MIN);
	assert_int_equal(json_in_int(o, "none", true, 0, 1, &v, NULL), -EINVAL);
	assert_int_equal(json_in_int(o, "none", false, 0, 1, &v, NULL), 1);
	cJSON_Delete(o);
}

static void test_object_text(void **state)
{
	cJSON *o = parse("{\"p\":{ \"a\" : [1, 2], \"b\":{}},\"arr\":[],\"s\":\"{}\",\"n\":null}");
	struct err_info e = { 0 };
	char *out = NULL;

	assert_int_equal(json_in_object_text(o, "p", 100, &out, &e), 0);
	assert_string_equal(out, "{\"a\":[1,2],\"b\":{}}");
	free(out);
	out = NULL;
	assert_int_equal(json_in_object_text(o, "p", 18, &out, &e), 0);
	free(out);
	out = NULL;
	assert_int_equal(json_in_object_text(o, "p", 17, &out, &e), -EINVAL);
	assert_non_null(strstr(e.text, "field 'p': too large"));
	assert_int_equal(json_in_object_text(o, "arr", 100, &out, &e), -EINVAL);
	assert_string_equal(e.text, "field 'arr': expected an object");
	assert_int_equal(json_in_object_text(o, "s", 100, &out, &e), -EINVAL);
	assert_int_equal(json_in_object_text(o, "n", 100, &out, &e), -EINVAL);
	assert_int_equal(json_in_object_text(o, "x", 100, &out, &e), 1);
	assert_null(out);
	cJSON_Delete(o);
}

static void test_id(void **state)
{
	static const struct {
		const char *json;
		int rc;
	} cases[] = {
		{ "\"dev-1_a.b:c\"", 0 },
		{ "\"" "0123456789012345678901234567890123456789012345678901234567890123" "\"", 0 },
		{ "\"" "01234567890123456789012345678901234567890123456789012345678901234" "\"",
		  -EINVAL },
		{ "\"\"", -EINVAL },
		{ "\"a b\"", -EINVAL },
		{ "\"../etc\"", -EINVAL },
		{ "\"a/b\"", -EINVAL },
		{ "\"\\u00e9\"", -EINVAL },
		{ "\"a\\u0000b\"", 0 },        /* cJSON stops at the NUL: "a" */
		{ "7", -EINVAL },
	};

	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(cases); i++) {
		char body[128], id[OTAGW_ID_MAX] = "";
		struct err_info e = { 0 };
		cJSON *o;

		snprintf(body, sizeof(body), "{\"id\":%s}", cases[i].json);
		o = parse(body);
		assert_int_equal(json_in_id(o, "id", true, id, &e), cases[i].rc);
		if (cases[i].rc)
			assert_non_null(strstr(e.text, "field 'id'"));
		else
			assert_true(util_id_valid(id));
		cJSON_Delete(o);
	}
}

static void test_out_object_text(void **state)
{
	static const char *const empty[] = { NULL, "", "nope", "[1]", "\"s\"", "{\"a\":" };
	cJSON *o;

	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(empty); i++) {
		o = json_out_object_text(empty[i]);
		assert_true(cJSON_IsObject(o));
		assert_null(o->child);
		cJSON_Delete(o);
	}
	o = json_out_object_text("{\"a\":1}");
	assert_int_equal(cJSON_GetObjectItem(o, "a")->valueint, 1);
	cJSON_Delete(o);
}

static void test_strict(void **state)
{
	static const struct { const char *in; size_t len; int rc; } cases[] = {
		{ "{\"a\":\"x\"}", 0, 0 },
		{ "{\"a\":[10, 0, -0, 0.5, 1e05, -1E-05, 100]}", 0, 0 },
		{ "{\"a\":\"\\u00e9 \\\" \\\\ \xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80\"}", 0, 0 },
		{ "{\"a\":01}", 0, -EINVAL },
		{ "{\"a\":-01}", 0, -EINVAL },
		{ "{\"a\":[1,02]}", 0, -EINVAL },
		{ "{\"a\":\"x\x01\"}", 0, -EINVAL },
		{ "{\"a\":\"x\ty\"}", 0, -EINVAL },
		{ "{\"a\":\"x\\u0000y\"}", 0, -EINVAL },
		{ "{\"a\":\"\xff\"}", 0, -EINVAL },
		{ "{\"a\":\"\xc0\xaf\"}", 0, -EINVAL },          /* overlong '/' */
		{ "{\"a\":\"\xed\xa0\x80\"}", 0, -EINVAL },      /* UTF-16 surrogate */
		{ "{\"a\":\"\xf4\x90\x80\x80\"}", 0, -EINVAL },  /* above U+10FFFF */
		{ "{\"a\":\"\xe4\xb8\"}", 0, -EINVAL },          /* truncated */
		{ "{\"a\":1}\0", 8, -EINVAL },                   /* NUL after the object */
	};

	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(cases); i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
		uint8_t *buf = malloc(len);
		struct err_info e = { 0 };

		memcpy(buf, cases[i].in, len);
		if (json_in_strict(buf, len, &e) != cases[i].rc)
			fail_msg("case %zu: expected %d (%s)", i, cases[i].rc, e.text);
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_keys),
		cmocka_unit_test(test_str),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_strdup),
		cmocka_unit_test(test_int),
		cmocka_unit_test(test_int_limits),
		cmocka_unit_test(test_object_text),
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_out_object_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
