/* SPDX-License-Identifier: MIT */
/* test_devices.c - the device registry on a real SQLite file in a fresh temp
 * dir: REST create/get/list/delete with hostile bodies, device reports
 * (upsert, product checks, hostile values), presence flags. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices.h"
#include "log.h"
#include "util.h"

struct fx {
	char dir[64];
	char path[128];
	struct store *st;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	util_strlcpy(f->dir, "/tmp/otagw-dev-XXXXXX", sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/otagw.db", f->dir);
	assert_int_equal(store_open(&f->st, f->path, NULL), 0);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	struct fx *f = *state;
	char p[160];

	store_close(f->st);
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(sfx); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static int create(struct fx *f, const char *json, struct device *out, struct err_info *e)
{
	cJSON *b = cJSON_Parse(json);
	struct device d;
	int rc;

	assert_non_null(b);
	rc = devices_create(f->st, b, out ? out : &d, e);
	cJSON_Delete(b);
	if (!out)
		device_clear(&d);
	return rc;
}

static void add(struct fx *f, const char *id, const char *product)
{
	char body[256];
	struct err_info e = { 0 };

	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"productId\":\"%s\"}", id, product);
	if (create(f, body, NULL, &e))
		fail_msg("create %s: %s", id, e.text);
}

static int64_t dev_total(struct fx *f)
{
	cJSON *items = NULL;
	int64_t n = -1;

	assert_int_equal(devices_list(f->st, NULL, 0, 1, &items, &n), 0);
	cJSON_Delete(items);
	return n;
}

static void test_create_get(void **state)
{
	struct fx *f = *state;
	struct device d;
	struct err_info e = { 0 };
	cJSON *j;

	assert_int_equal(create(f, "{\"id\":\"dev-1\",\"productId\":\"P1\",\"name\":\"Pump\","
			 "\"firmwareVersion\":\"1.0\",\"properties\":{\"hw\": \"b\"}}", &d, &e), 0);
	assert_string_equal(d.id, "dev-1");
	assert_string_equal(d.product_id, "P1");
	assert_string_equal(d.name, "Pump");
	assert_string_equal(d.firmware_version, "1.0");
	assert_string_equal(d.properties, "{\"hw\":\"b\"}");
	assert_string_equal(d.transport, "");
	assert_false(d.online);
	assert_int_equal(d.last_seen, 0);
	assert_true(d.create_time > 0);
	device_clear(&d);
	assert_int_equal(devices_get(f->st, "dev-1", &d, &e), 0);
	j = device_to_json(&d);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "firmwareVersion")->valuestring, "1.0");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "online")));
	assert_true(cJSON_IsObject(cJSON_GetObjectItem(j, "properties")));
	assert_non_null(cJSON_GetObjectItem(j, "lastSeen"));
	assert_non_null(cJSON_GetObjectItem(j, "createTime"));
	assert_non_null(cJSON_GetObjectItem(j, "transport"));
	cJSON_Delete(j);
	device_clear(&d);
	assert_int_equal(create(f, "{\"id\":\"dev-1\",\"productId\":\"P2\"}", NULL, &e), -EEXIST);
	assert_non_null(strstr(e.text, "dev-1"));
	assert_int_equal(devices_get(f->st, "nope", &d, &e), -ENOENT);
	assert_int_equal(devices_get(f->st, "a/b", &d, &e), -ENOENT);
	assert_int_equal(dev_total(f), 1);
}

static void test_create_invalid(void **state)
{
	static const struct {
		const char *body;
		const char *field;
	} cases[] = {
		{ "[]", "object" },
		{ "{\"productId\":\"P1\"}", "'id'" },
		{ "{\"id\":\"d\"}", "'productId'" },
		{ "{\"id\":\"d\",\"productId\":\"P1\",\"x\":1}", "'x'" },
		{ "{\"id\":\"d e\",\"productId\":\"P1\"}", "'id'" },
		{ "{\"id\":\"d\",\"productId\":7}", "'productId'" },
		{ "{\"id\":\"d\",\"productId\":\"P1\",\"name\":1}", "'name'" },
		{ "{\"id\":\"d\",\"productId\":\"P1\",\"firmwareVersion\":[]}", "'firmwareVersion'" },
		{ "{\"id\":\"d\",\"productId\":\"P1\",\"properties\":[]}", "'properties'" },
		{ "{\"id\":\"d\",\"productId\":\"P1\",\"online\":true}", "'online'" },
		{ "{\"id\":\"d\",\"productId\":\"P1\",\"firmwareVersion\":"
		  "\"01234567890123456789012345678901234567890123456789012345678901234\"}",
		  "'firmwareVersion'" },
	};
	struct fx *f = *state;

	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(cases); i++) {
		struct err_info e = { 0 };
		struct device d;
		int rc = create(f, cases[i].body, &d, &e);

		if (rc != -EINVAL || !strstr(e.text, cases[i].field))
			fail_msg("case %s: rc %d '%s'", cases[i].body, rc, e.text);
		assert_null(d.properties);
	}
	assert_int_equal(dev_total(f), 0);
}

static void test_list_delete(void **state)
{
	struct fx *f = *state;
	struct err_info e = { 0 };
	cJSON *items = NULL;
	int64_t n = 0;

	add(f, "c", "P2");
	add(f, "a", "P1");
	add(f, "b", "P1");
	assert_int_equal(devices_list(f->st, NULL, 0, 2, &items, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(cJSON_GetArraySize(items), 2);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "id")->valuestring,
			    "a");
	cJSON_Delete(items);
	assert_int_equal(devices_list(f->st, NULL, 1, 2, &items, &n), 0);
	assert_int_equal(cJSON_GetArraySize(items), 1);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "id")->valuestring,
			    "c");
	cJSON_Delete(items);
	assert_int_equal(devices_list(f->st, "P1", 0, 10, &items, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(cJSON_GetArraySize(items), 2);
	cJSON_Delete(items);
	assert_int_equal(devices_delete(f->st, "b", &e), 0);
	assert_int_equal(devices_delete(f->st, "b", &e), -ENOENT);
	assert_non_null(strstr(e.text, "'b'"));
	assert_int_equal(devices_delete(f->st, "", &e), -ENOENT);
	assert_int_equal(dev_total(f), 2);
}

static void test_report(void **state)
{
	struct fx *f = *state;
	struct err_info e = { 0 };
	struct device d;

	/* Unknown device without a product: refused, nothing stored. */
	assert_int_equal(devices_report(f->st, "d1", "", "1.0", NULL, 0, &e), -ENOENT);
	assert_non_null(strstr(e.text, "d1"));
	assert_int_equal(devices_report(f->st, "d1", NULL, "1.0", NULL, 0, &e), -ENOENT);
	assert_int_equal(dev_total(f), 0);
	/* With a product: created. */
	assert_int_equal(devices_report(f->st, "d1", "P1", "1.0", "{\"a\":1}", 5000, &e), 0);
	assert_int_equal(devices_get(f->st, "d1", &d, NULL), 0);
	assert_string_equal(d.product_id, "P1");
	assert_string_equal(d.firmware_version, "1.0");
	assert_string_equal(d.properties, "{\"a\":1}");
	assert_int_equal(d.last_seen, 5000);
	device_clear(&d);
	/* Known: version and lastSeen change, NULL properties are kept. */
	assert_int_equal(devices_report(f->st, "d1", "", "1.1", NULL, 6000, &e), 0);
	assert_int_equal(devices_get(f->st, "d1", &d, NULL), 0);
	assert_string_equal(d.firmware_version, "1.1");
	assert_string_equal(d.properties, "{\"a\":1}");
	assert_int_equal(d.last_seen, 6000);
	device_clear(&d);
	assert_int_equal(devices_report(f->st, "d1", "P1", "1.2", "{}", 0, &e), 0);
	assert_int_equal(devices_get(f->st, "d1", &d, NULL), 0);
	assert_string_equal(d.properties, "{}");
	assert_true(d.last_seen > 6000);
	device_clear(&d);
	/* No version in the report: the known one stays. */
	assert_int_equal(devices_report(f->st, "d1", "P1", "", NULL, 7000, &e), 0);
	assert_int_equal(devices_report(f->st, "d1", "P1", NULL, NULL, 7000, &e), 0);
	assert_int_equal(devices_get(f->st, "d1", &d, NULL), 0);
	assert_string_equal(d.firmware_version, "1.2");
	device_clear(&d);
	/* Another product: refused, row unchanged. */
	assert_int_equal(devices_report(f->st, "d1", "P2", "9.9", NULL, 0, &e), -EINVAL);
	assert_non_null(strstr(e.text, "P2"));
	assert_int_equal(devices_get(f->st, "d1", &d, NULL), 0);
	assert_string_equal(d.firmware_version, "1.2");
	device_clear(&d);
}

static void test_report_hostile(void **state)
{
	static const struct {
		const char *id, *product, *version, *props;
	} cases[] = {
		{ "", "P1", "1", NULL },
		{ "a b", "P1", "1", NULL },
		{ "d", "P 1", "1", NULL },
		{ "d", "P1", "01234567890123456789012345678901234567890123456789012345678901234",
		  NULL },
		{ "d", "P1", "1", "[1]" },
		{ "d", "P1", "1", "{\"a\":" },
		{ "d", "P1", "1", "\"x\"" },
	};
	struct fx *f = *state;

	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(cases); i++) {
		struct err_info e = { 0 };

		assert_int_equal(devices_report(f->st, cases[i].id, cases[i].product,
						 cases[i].version, cases[i].props, 0, &e), -EINVAL);
		assert_true(e.text[0]);
	}
	assert_int_equal(devices_report(f->st, NULL, "P1", "1", NULL, 0, NULL), -EINVAL);
	assert_int_equal(dev_total(f), 0);
}

static void test_online(void **state)
{
	struct fx *f = *state;
	struct device d;

	add(f, "a", "P1");
	add(f, "b", "P1");
	assert_int_equal(devices_set_online(f->st, "a", "tcp", true, 1000), 0);
	assert_int_equal(devices_set_online(f->st, "b", "serial:ttyUSB0-very-long", true, 0), 0);
	assert_int_equal(devices_set_online(f->st, "zz", "tcp", true, 0), -ENOENT);
	assert_int_equal(devices_get(f->st, "a", &d, NULL), 0);
	assert_true(d.online);
	assert_string_equal(d.transport, "tcp");
	assert_int_equal(d.last_seen, 1000);
	device_clear(&d);
	assert_int_equal(devices_get(f->st, "b", &d, NULL), 0);
	assert_int_equal(strlen(d.transport), OTAGW_TRANSPORT_MAX - 1);
	device_clear(&d);
	/* Offline keeps the last transport. */
	assert_int_equal(devices_set_online(f->st, "a", NULL, false, 2000), 0);
	assert_int_equal(devices_get(f->st, "a", &d, NULL), 0);
	assert_false(d.online);
	assert_string_equal(d.transport, "tcp");
	assert_int_equal(d.last_seen, 2000);
	device_clear(&d);
	assert_int_equal(devices_all_offline(f->st), 0);
	assert_int_equal(devices_get(f->st, "b", &d, NULL), 0);
	assert_false(d.online);
	device_clear(&d);
	assert_int_equal(devices_all_offline(f->st), 0);
}

static void test_restart(void **state)
{
	struct fx *f = *state;
	struct device d;

	assert_int_equal(devices_report(f->st, "d1", "P1", "2.0", "{\"k\":\"v\"}", 10, NULL), 0);
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(store_open(&f->st, f->path, NULL), 0);
	assert_int_equal(devices_get(f->st, "d1", &d, NULL), 0);
	assert_string_equal(d.firmware_version, "2.0");
	assert_string_equal(d.properties, "{\"k\":\"v\"}");
	device_clear(&d);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_create_get),
		T(test_create_invalid),
		T(test_list_delete),
		T(test_report),
		T(test_report_hostile),
		T(test_online),
		T(test_restart),
	};

	gw_log_setup(LOG_LVL_WARN, 0, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
