/* SPDX-License-Identifier: MIT */
/* test_catalogue.c - the firmware catalogue on a real SQLite file in a fresh
 * temp dir: create/read back, a table of hostile bodies (each must fail with
 * its code, name its field and leave the store unchanged), duplicates,
 * partial updates, deletes guarded by unfinished records, paging, restart. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalogue.h"
#include "log.h"
#include "util.h"

#define MD5_HEX "0123456789ABCDEF0123456789abcdef"
#define SHA_HEX MD5_HEX MD5_HEX

struct fx {
	char dir[64];
	char path[128];
	struct store *st;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	util_strlcpy(f->dir, "/tmp/otagw-cat-XXXXXX", sizeof(f->dir));
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

static void fx_reopen(struct fx *f)
{
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(store_open(&f->st, f->path, NULL), 0);
}

static void sql(struct fx *f, const char *text)
{
	char *msg = NULL;
	int rc = sqlite3_exec(store_db(f->st), text, NULL, NULL, &msg);

	if (rc != SQLITE_OK)
		fail_msg("%s: %s", text, msg);
}

static int64_t sql_count(struct fx *f, const char *text)
{
	sqlite3_stmt *s;
	int64_t n = -1;

	assert_int_equal(sqlite3_prepare_v2(store_db(f->st), text, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

static int64_t fw_count(struct fx *f)
{
	return sql_count(f, "SELECT COUNT(*) FROM firmware");
}

/* Parses json and calls catalogue_create(); out may be NULL. */
static int create(struct fx *f, const char *json, struct firmware *out, struct err_info *e)
{
	cJSON *b = cJSON_Parse(json);
	int rc;

	assert_non_null(b);
	rc = catalogue_create(f->st, b, out, e);
	cJSON_Delete(b);
	return rc;
}

static int update(struct fx *f, const char *id, const char *json, struct firmware *out,
		  struct err_info *e)
{
	cJSON *b = cJSON_Parse(json);
	int rc;

	assert_non_null(b);
	rc = catalogue_update(f->st, id, b, out, e);
	cJSON_Delete(b);
	return rc;
}

static void add(struct fx *f, const char *id, const char *product, const char *version,
		int order)
{
	char body[512];
	struct err_info e = { 0 };

	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"productId\":\"%s\",\"name\":\"n\","
		 "\"version\":\"%s\",\"versionOrder\":%d}", id, product, version, order);
	if (create(f, body, NULL, &e))
		fail_msg("create %s: %s", id, e.text);
}

static const char full_body[] =
	"{\"id\":\"fw-1\",\"productId\":\"P1\",\"name\":\"Main firmware\",\"version\":\"1.2.0\","
	"\"versionOrder\":12,\"url\":\"https://cdn.example.com/fw/1.2.0.bin\",\"size\":1048576,"
	"\"sign\":\"" SHA_HEX "\",\"signMethod\":\"SHA256\","
	"\"properties\":{ \"board\" : \"rev-b\", \"n\": [1, 2] },\"description\":\"first\"}";

static void check_full(const struct firmware *fw)
{
	assert_string_equal(fw->id, "fw-1");
	assert_string_equal(fw->product_id, "P1");
	assert_string_equal(fw->name, "Main firmware");
	assert_string_equal(fw->version, "1.2.0");
	assert_int_equal(fw->version_order, 12);
	assert_string_equal(fw->url, "https://cdn.example.com/fw/1.2.0.bin");
	assert_int_equal(fw->size, 1048576);
	assert_string_equal(fw->sign, "0123456789abcdef0123456789abcdef"
			    "0123456789abcdef0123456789abcdef");
	assert_string_equal(fw->sign_method, "sha256");
	assert_string_equal(fw->properties, "{\"board\":\"rev-b\",\"n\":[1,2]}");
	assert_string_equal(fw->description, "first");
	assert_true(fw->create_time > 0);
	assert_int_equal(fw->update_time, fw->create_time);
}

static void test_create_full(void **state)
{
	struct fx *f = *state;
	struct firmware fw, got;
	struct err_info e = { 0 };

	assert_int_equal(create(f, full_body, &fw, &e), 0);
	check_full(&fw);
	assert_int_equal(catalogue_get(f->st, "fw-1", &got, &e), 0);
	check_full(&got);
	assert_int_equal(got.create_time, fw.create_time);
	firmware_clear(&got);
	assert_int_equal(catalogue_find(f->st, "P1", "1.2.0", &got), 0);
	assert_string_equal(got.id, "fw-1");
	firmware_clear(&got);
	assert_int_equal(catalogue_find(f->st, "P1", "9.9", &got), -ENOENT);
	assert_int_equal(catalogue_find(f->st, "P2", "1.2.0", &got), -ENOENT);
	firmware_clear(&fw);
	assert_null(fw.properties);
}

static void test_create_defaults(void **state)
{
	struct fx *f = *state;
	struct firmware fw;

	assert_int_equal(create(f, "{\"productId\":\"P1\",\"name\":\"n\",\"version\":\"v\","
			 "\"url\":\"/files/x.bin\",\"sign\":\"\",\"signMethod\":\"MD5\","
			 "\"description\":null}", &fw, NULL), -EINVAL);
	assert_int_equal(create(f, "{\"productId\":\"P1\",\"name\":\"n\",\"version\":\"v\","
			 "\"url\":\"/files/x.bin\",\"sign\":\"\",\"signMethod\":\"MD5\"}", &fw, NULL), 0);
	assert_int_equal(strlen(fw.id), 32);
	assert_true(util_id_valid(fw.id));
	assert_int_equal(fw.version_order, 0);
	assert_int_equal(fw.size, 0);
	assert_string_equal(fw.url, "/files/x.bin");
	assert_string_equal(fw.sign, "");
	assert_string_equal(fw.sign_method, "md5");
	assert_string_equal(fw.properties, "{}");
	assert_string_equal(fw.description, "");
	firmware_clear(&fw);
}

static void test_to_json(void **state)
{
	static const char *const keys[] = {
		"id", "productId", "name", "version", "versionOrder", "url", "size", "sign",
		"signMethod", "properties", "description", "createTime", "updateTime", "origin",
	};
	struct fx *f = *state;
	struct firmware fw;
	cJSON *j, *it;
	int n = 0;

	assert_int_equal(create(f, full_body, &fw, NULL), 0);
	j = firmware_to_json(&fw);
	assert_non_null(j);
	cJSON_ArrayForEach(it, j)
		n++;
	assert_int_equal(n, (int)OTAGW_ARRAY_SIZE(keys));
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(keys); i++)
		assert_non_null(cJSON_GetObjectItemCaseSensitive(j, keys[i]));
	assert_true(cJSON_IsObject(cJSON_GetObjectItem(j, "properties")));
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "properties"),
						"board")->valuestring, "rev-b");
	assert_int_equal(cJSON_GetObjectItem(j, "size")->valuedouble, 1048576);
	assert_string_equal(cJSON_GetObjectItem(j, "signMethod")->valuestring, "sha256");
	assert_string_equal(cJSON_GetObjectItem(j, "origin")->valuestring, "local");
	cJSON_Delete(j);
	/* the cloud's mark is stored and shown */
	{
		char id[OTAGW_ID_MAX];

		memcpy(id, fw.id, sizeof(id));
		assert_int_equal(catalogue_set_cloud(f->st, id), 0);
		firmware_clear(&fw);
		assert_int_equal(catalogue_get(f->st, id, &fw, NULL), 0);
	}
	assert_true(fw.cloud);
	j = firmware_to_json(&fw);
	assert_string_equal(cJSON_GetObjectItem(j, "origin")->valuestring, "cloud");
	cJSON_Delete(j);
	firmware_clear(&fw);
}

/* A body template with at most one %s, filled with `fill` copies of 'a'. */
struct bad_case {
	const char *body;
	size_t fill;
	const char *field;            /* must appear in e.text */
};

#define BASE "\"productId\":\"P9\",\"name\":\"n\",\"version\":\"v\""

static const struct bad_case bad_cases[] = {
	{ "[]", 0, "JSON object" },
	{ "\"x\"", 0, "JSON object" },
	{ "{" BASE ",\"foo\":1}", 0, "'foo'" },
	{ "{" BASE ",\"createTime\":1}", 0, "'createTime'" },
	{ "{" BASE ",\"ProductId\":\"P9\"}", 0, "'ProductId'" },
	{ "{" BASE ",\"name\":\"dup\"}", 0, "'name'" },
	{ "{\"name\":\"n\",\"version\":\"v\"}", 0, "'productId'" },
	{ "{\"productId\":\"P9\",\"version\":\"v\"}", 0, "'name'" },
	{ "{\"productId\":\"P9\",\"name\":\"n\"}", 0, "'version'" },
	{ "{\"productId\":null,\"name\":\"n\",\"version\":\"v\"}", 0, "'productId'" },
	{ "{\"productId\":5,\"name\":\"n\",\"version\":\"v\"}", 0, "'productId'" },
	{ "{\"productId\":\"P 9\",\"name\":\"n\",\"version\":\"v\"}", 0, "'productId'" },
	{ "{\"productId\":\"%s\",\"name\":\"n\",\"version\":\"v\"}", 65, "'productId'" },
	{ "{\"productId\":\"P9\",\"name\":\"\",\"version\":\"v\"}", 0, "'name'" },
	{ "{\"productId\":\"P9\",\"name\":[\"n\"],\"version\":\"v\"}", 0, "'name'" },
	{ "{\"productId\":\"P9\",\"name\":\"%s\",\"version\":\"v\"}", 129, "'name'" },
	{ "{\"productId\":\"P9\",\"name\":\"n\",\"version\":\"\"}", 0, "'version'" },
	{ "{\"productId\":\"P9\",\"name\":\"n\",\"version\":\"1\\n2\"}", 0, "'version'" },
	{ "{\"productId\":\"P9\",\"name\":\"a\\u0007\",\"version\":\"v\"}", 0, "'name'" },
	{ "{\"productId\":\"P9\",\"name\":\"n\",\"version\":1.0}", 0, "'version'" },
	{ "{\"productId\":\"P9\",\"name\":\"n\",\"version\":\"%s\"}", 65, "'version'" },
	{ "{" BASE ",\"id\":\"a/b\"}", 0, "'id'" },
	{ "{" BASE ",\"id\":\"\"}", 0, "'id'" },
	{ "{" BASE ",\"id\":\"%s\"}", 65, "'id'" },
	{ "{" BASE ",\"id\":7}", 0, "'id'" },
	{ "{" BASE ",\"versionOrder\":1.5}", 0, "'versionOrder'" },
	{ "{" BASE ",\"versionOrder\":\"1\"}", 0, "'versionOrder'" },
	{ "{" BASE ",\"versionOrder\":true}", 0, "'versionOrder'" },
	{ "{" BASE ",\"versionOrder\":-1}", 0, "'versionOrder'" },
	{ "{" BASE ",\"versionOrder\":2147483648}", 0, "'versionOrder'" },
	{ "{" BASE ",\"size\":-1}", 0, "'size'" },
	{ "{" BASE ",\"size\":\"10\"}", 0, "'size'" },
	{ "{" BASE ",\"size\":1e300}", 0, "'size'" },
	{ "{" BASE ",\"size\":10.25}", 0, "'size'" },
	{ "{" BASE ",\"url\":\"https://h/%s\"}", 2993, "'url'" },
	{ "{" BASE ",\"url\":\"ftp://host/x\"}", 0, "'url'" },
	{ "{" BASE ",\"url\":\"files/x\"}", 0, "'url'" },
	{ "{" BASE ",\"url\":\"http://\"}", 0, "'url'" },
	{ "{" BASE ",\"url\":\"http://h/a b\"}", 0, "'url'" },
	{ "{" BASE ",\"url\":\"http://h/a\\r\\nX: y\"}", 0, "'url'" },
	{ "{" BASE ",\"url\":\"/a\\tb\"}", 0, "'url'" },
	{ "{" BASE ",\"url\":{}}", 0, "'url'" },
	{ "{" BASE ",\"sign\":\"" MD5_HEX "\"}", 0, "'signMethod'" },
	{ "{" BASE ",\"signMethod\":\"crc32\"}", 0, "'signMethod'" },
	{ "{" BASE ",\"signMethod\":\"%s\"}", 17, "'signMethod'" },
	{ "{" BASE ",\"signMethod\":1}", 0, "'signMethod'" },
	{ "{" BASE ",\"sign\":\"" SHA_HEX "\",\"signMethod\":\"md5\"}", 0, "'sign'" },
	{ "{" BASE ",\"sign\":\"" MD5_HEX "\",\"signMethod\":\"sha256\"}", 0, "'sign'" },
	{ "{" BASE ",\"sign\":\"" MD5_HEX "0\",\"signMethod\":\"md5\"}", 0, "'sign'" },
	{ "{" BASE ",\"sign\":\"zz23456789abcdef0123456789abcdef\",\"signMethod\":\"md5\"}", 0,
	  "'sign'" },
	{ "{" BASE ",\"sign\":\"%s\",\"signMethod\":\"md5\"}", 257, "'sign'" },
	{ "{" BASE ",\"properties\":[]}", 0, "'properties'" },
	{ "{" BASE ",\"properties\":\"{}\"}", 0, "'properties'" },
	{ "{" BASE ",\"properties\":{\"k\":\"%s\"}}", 16380, "'properties'" },
	{ "{" BASE ",\"description\":\"%s\"}", 2049, "'description'" },
	{ "{" BASE ",\"description\":false}", 0, "'description'" },
};

/* Copies tmpl into dst with its first "%s" replaced by fill. */
static void fill_template(char *dst, size_t cap, const char *tmpl, const char *fill)
{
	const char *hole = strstr(tmpl, "%s");
	size_t head = hole ? (size_t)(hole - tmpl) : strlen(tmpl);

	assert_true(head + strlen(fill) + strlen(tmpl) < cap);
	memcpy(dst, tmpl, head);
	dst[head] = '\0';
	if (hole) {
		memcpy(dst + head, fill, strlen(fill) + 1);
		memcpy(dst + strlen(dst), hole + 2, strlen(hole + 2) + 1);
	}
}

static void test_create_invalid(void **state)
{
	struct fx *f = *state;
	char *fill = malloc(20000), *body = malloc(20100);

	assert_non_null(fill);
	assert_non_null(body);
	add(f, "keep", "P9", "0.9", 1);
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct firmware fw;
		struct err_info e = { 0 };
		int rc;

		memset(fill, 'a', c->fill);
		fill[c->fill] = '\0';
		fill_template(body, 20100, c->body, fill);
		rc = create(f, body, &fw, &e);
		if (rc != -EINVAL || !strstr(e.text, c->field))
			fail_msg("case %zu (%s): rc %d, e '%s'", i, c->body, rc, e.text);
		assert_null(fw.properties);
		assert_int_equal(fw_count(f), 1);
	}
	free(fill);
	free(body);
}

static void test_create_limits_ok(void **state)
{
	struct fx *f = *state;
	char *body = malloc(8000), name[129], ver[65], url[3001];
	struct firmware fw;
	struct err_info e = { 0 };

	assert_non_null(body);
	memset(name, 'n', 128);
	name[128] = '\0';
	memset(ver, 'v', 64);
	ver[64] = '\0';
	memset(url, 'u', 3000);
	memcpy(url, "http://", 7);
	url[3000] = '\0';
	snprintf(body, 8000, "{\"productId\":\"P1\",\"name\":\"%s\",\"version\":\"%s\","
		 "\"url\":\"%s\",\"versionOrder\":2147483647,\"size\":9007199254740992}",
		 name, ver, url);
	if (create(f, body, &fw, &e))
		fail_msg("%s", e.text);
	assert_string_equal(fw.name, name);
	assert_string_equal(fw.url, url);
	assert_int_equal(fw.version_order, INT32_MAX);
	assert_true(fw.size == UINT64_C(9007199254740992));
	firmware_clear(&fw);
	free(body);
}

static void test_duplicate(void **state)
{
	struct fx *f = *state;
	struct firmware fw;
	struct err_info e = { 0 };

	add(f, "a", "P1", "1.0", 1);
	assert_int_equal(create(f, "{\"productId\":\"P1\",\"name\":\"x\",\"version\":\"1.0\"}",
				&fw, &e), -EEXIST);
	assert_string_equal(e.text, "firmware with productId P1 and version 1.0 already exists");
	assert_null(fw.properties);
	assert_int_equal(fw_count(f), 1);
	assert_int_equal(create(f, "{\"id\":\"a\",\"productId\":\"P1\",\"name\":\"x\","
				"\"version\":\"2.0\"}", NULL, &e), -EEXIST);
	assert_non_null(strstr(e.text, "'a'"));
	assert_int_equal(fw_count(f), 1);
	add(f, "b", "P2", "1.0", 1);      /* same version, other product */
	assert_int_equal(fw_count(f), 2);
}

static void test_update_partial(void **state)
{
	struct fx *f = *state;
	struct firmware before, fw;
	struct err_info e = { 0 };

	assert_int_equal(create(f, full_body, &before, NULL), 0);
	usleep(2000);
	assert_int_equal(update(f, "fw-1", "{\"name\":\"renamed\",\"id\":\"fw-1\","
				"\"properties\":{\"x\":1}}", &fw, &e), 0);
	assert_string_equal(fw.name, "renamed");
	assert_string_equal(fw.properties, "{\"x\":1}");
	assert_string_equal(fw.version, before.version);
	assert_string_equal(fw.sign, before.sign);
	assert_string_equal(fw.description, "first");
	assert_int_equal(fw.create_time, before.create_time);
	assert_true(fw.update_time > before.update_time);
	firmware_clear(&fw);
	assert_int_equal(catalogue_get(f->st, "fw-1", &fw, &e), 0);
	assert_string_equal(fw.name, "renamed");
	firmware_clear(&fw);
	/* Switching signMethod without a matching sign: refused as a whole. */
	assert_int_equal(update(f, "fw-1", "{\"signMethod\":\"md5\"}", &fw, &e), -EINVAL);
	assert_non_null(strstr(e.text, "'sign'"));
	assert_int_equal(update(f, "fw-1", "{\"signMethod\":\"md5\",\"sign\":\"" MD5_HEX "\"}",
				&fw, &e), 0);
	assert_string_equal(fw.sign_method, "md5");
	firmware_clear(&fw);
	assert_int_equal(update(f, "fw-1", "{\"sign\":\"\",\"signMethod\":\"\"}", &fw, &e), 0);
	assert_string_equal(fw.sign, "");
	firmware_clear(&fw);
	firmware_clear(&before);
}

static void test_update_refused(void **state)
{
	static const struct {
		const char *body;
		int rc;
		const char *field;
	} cases[] = {
		{ "{\"id\":\"fw-2\"}", -EINVAL, "'id'" },
		{ "{\"createTime\":1}", -EINVAL, "'createTime'" },
		{ "{\"updateTime\":1}", -EINVAL, "'updateTime'" },
		{ "{\"name\":\"\"}", -EINVAL, "'name'" },
		{ "{\"version\":\"\"}", -EINVAL, "'version'" },
		{ "{\"version\":null}", -EINVAL, "null is not allowed" },
		{ "{\"size\":-5}", -EINVAL, "'size'" },
		{ "{\"url\":\"gopher://x\"}", -EINVAL, "'url'" },
		{ "{\"bogus\":true}", -EINVAL, "'bogus'" },
		{ "[]", -EINVAL, "object" },
	};
	struct fx *f = *state;
	struct firmware fw, now;

	assert_int_equal(create(f, full_body, &fw, NULL), 0);
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(cases); i++) {
		struct err_info e = { 0 };
		struct firmware out;
		int rc = update(f, "fw-1", cases[i].body, &out, &e);

		if (rc != cases[i].rc || (cases[i].field && !strstr(e.text, cases[i].field)))
			fail_msg("case %s: rc %d '%s'", cases[i].body, rc, e.text);
		firmware_clear(&out);
	}
	assert_int_equal(catalogue_get(f->st, "fw-1", &now, NULL), 0);
	assert_string_equal(now.name, fw.name);
	assert_int_equal(now.size, fw.size);
	firmware_clear(&now);
	firmware_clear(&fw);
}

static void test_update_clash_and_unknown(void **state)
{
	struct fx *f = *state;
	struct firmware fw;
	struct err_info e = { 0 };

	add(f, "a", "P1", "1.0", 1);
	add(f, "b", "P1", "2.0", 2);
	assert_int_equal(update(f, "b", "{\"version\":\"1.0\"}", &fw, &e), -EEXIST);
	assert_non_null(strstr(e.text, "productId P1 and version 1.0"));
	assert_null(fw.properties);
	assert_int_equal(catalogue_get(f->st, "b", &fw, NULL), 0);
	assert_string_equal(fw.version, "2.0");
	firmware_clear(&fw);
	assert_int_equal(update(f, "b", "{\"version\":\"2.0\",\"versionOrder\":3}", &fw, &e), 0);
	firmware_clear(&fw);
	assert_int_equal(update(f, "nope", "{\"name\":\"x\"}", &fw, &e), -ENOENT);
	assert_non_null(strstr(e.text, "nope"));
	assert_int_equal(update(f, "../x", "{\"name\":\"x\"}", &fw, &e), -ENOENT);
	assert_int_equal(catalogue_get(f->st, "nope", &fw, &e), -ENOENT);
	assert_int_equal(catalogue_get(f->st, "", &fw, &e), -ENOENT);
}

static void add_task(struct fx *f, const char *fw_id, const char *task_id)
{
	char q[512];

	snprintf(q, sizeof(q), "INSERT INTO task (id, firmware_id, product_id, name, mode,"
		 " create_time) VALUES ('%s', '%s', 'P1', 'task', 'push', 1)", task_id, fw_id);
	sql(f, q);
}

static void add_record(struct fx *f, const char *task_id, const char *fw_id, const char *dev,
		       const char *state)
{
	char q[512];

	snprintf(q, sizeof(q), "INSERT INTO record (id, task_id, device_id, firmware_id, version,"
		 " state, create_time, update_time) VALUES ('%s-%s', '%s', '%s', '%s', '1.0',"
		 " '%s', 1, 1); INSERT INTO record_history (record_id, task_id, device_id,"
		 " from_state, to_state, time) VALUES ('%s-%s', '%s', '%s', '', '%s', 1)",
		 task_id, dev, task_id, dev, fw_id, state, task_id, dev, task_id, dev, state);
	sql(f, q);
}

static void test_delete_free(void **state)
{
	struct fx *f = *state;
	struct firmware fw;
	struct err_info e = { 0 };

	add(f, "a", "P1", "1.0", 1);
	add(f, "b", "P1", "2.0", 2);
	assert_int_equal(catalogue_delete(f->st, "a", &e), 0);
	assert_int_equal(catalogue_get(f->st, "a", &fw, NULL), -ENOENT);
	assert_int_equal(fw_count(f), 1);
	assert_int_equal(catalogue_delete(f->st, "a", &e), -ENOENT);
	assert_non_null(strstr(e.text, "'a'"));
	assert_int_equal(catalogue_delete(f->st, "bad id", &e), -ENOENT);
	add(f, "a", "P1", "1.0", 1);      /* the pair is free again */
}

static void test_delete_busy(void **state)
{
	static const char *const unfinished[] = { "waiting", "processing" };
	struct fx *f = *state;
	struct err_info e = { 0 };

	add(f, "a", "P1", "1.0", 1);
	add_task(f, "a", "t1");
	add_record(f, "t1", "a", "d1", "success");
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(unfinished); i++) {
		sql(f, "DELETE FROM record WHERE id = 't1-d2';"
		    " DELETE FROM record_history WHERE record_id = 't1-d2'");
		add_record(f, "t1", "a", "d2", unfinished[i]);
		assert_int_equal(catalogue_delete(f->st, "a", &e), -EBUSY);
		assert_non_null(strstr(e.text, "'a'"));
		assert_int_equal(fw_count(f), 1);
		assert_int_equal(sql_count(f, "SELECT COUNT(*) FROM task"), 1);
		assert_int_equal(sql_count(f, "SELECT COUNT(*) FROM record"), 2);
	}
	/* The transaction was rolled back: the store still takes writes. */
	add(f, "b", "P1", "2.0", 2);
}

static void test_delete_finished(void **state)
{
	struct fx *f = *state;
	struct err_info e = { 0 };

	add(f, "a", "P1", "1.0", 1);
	add(f, "b", "P1", "2.0", 2);
	add_task(f, "a", "t1");
	add_task(f, "a", "t2");
	add_task(f, "b", "t3");
	add_record(f, "t1", "a", "d1", "success");
	add_record(f, "t1", "a", "d2", "failed");
	add_record(f, "t2", "a", "d1", "canceled");
	add_record(f, "t3", "b", "d1", "waiting");
	if (catalogue_delete(f->st, "a", &e))
		fail_msg("%s", e.text);
	assert_int_equal(fw_count(f), 1);
	assert_int_equal(sql_count(f, "SELECT COUNT(*) FROM task"), 1);
	assert_int_equal(sql_count(f, "SELECT COUNT(*) FROM task WHERE id = 't3'"), 1);
	assert_int_equal(sql_count(f, "SELECT COUNT(*) FROM record"), 1);
	assert_int_equal(sql_count(f, "SELECT COUNT(*) FROM record_history"), 4);
	assert_int_equal(catalogue_delete(f->st, "b", &e), -EBUSY);
}

static void test_update_product_with_tasks(void **state)
{
	struct fx *f = *state;
	struct firmware fw;
	struct err_info e = { 0 };

	add(f, "a", "P1", "1.0", 1);
	add_task(f, "a", "t1");
	assert_int_equal(update(f, "a", "{\"productId\":\"P2\"}", &fw, &e), -EINVAL);
	assert_non_null(strstr(e.text, "'productId'"));
	assert_int_equal(update(f, "a", "{\"productId\":\"P1\",\"name\":\"m\"}", &fw, &e), 0);
	firmware_clear(&fw);
}

static void list_ids(cJSON *items, char *dst, size_t cap)
{
	cJSON *it;

	dst[0] = '\0';
	cJSON_ArrayForEach(it, items) {
		size_t len = strlen(dst);

		snprintf(dst + len, cap - len, "%s%s", len ? "," : "",
			 cJSON_GetObjectItem(it, "id")->valuestring);
	}
}

static void expect_page(struct fx *f, const char *product, unsigned page, unsigned size,
			int64_t total, const char *ids)
{
	char got[256];
	cJSON *items = NULL;
	int64_t n = -1;

	assert_int_equal(catalogue_list(f->st, product, page, size, &items, &n), 0);
	list_ids(items, got, sizeof(got));
	assert_string_equal(got, ids);
	assert_int_equal(n, total);
	cJSON_Delete(items);
}

static void test_list(void **state)
{
	struct fx *f = *state;

	add(f, "b1", "PB", "1", 1);
	add(f, "a1", "PA", "1", 1);
	add(f, "a3", "PA", "3", 3);
	add(f, "a2", "PA", "2", 2);
	add(f, "b2", "PB", "2", 2);
	expect_page(f, NULL, 0, 0, 5, "a3,a2,a1,b2,b1");
	expect_page(f, "", 0, 100, 5, "a3,a2,a1,b2,b1");
	expect_page(f, NULL, 0, 2, 5, "a3,a2");
	expect_page(f, NULL, 1, 2, 5, "a1,b2");
	expect_page(f, NULL, 2, 2, 5, "b1");
	expect_page(f, NULL, 3, 2, 5, "");
	expect_page(f, "PB", 0, 10, 2, "b2,b1");
	expect_page(f, "PB", 1, 1, 2, "b1");
	expect_page(f, "PZ", 0, 10, 0, "");
	expect_page(f, NULL, 4000000000u, 1000, 5, "");
}

static void test_restart(void **state)
{
	struct fx *f = *state;
	struct firmware fw;

	assert_int_equal(create(f, full_body, NULL, NULL), 0);
	add(f, "b", "P1", "2.0", 2);
	fx_reopen(f);
	assert_int_equal(catalogue_get(f->st, "fw-1", &fw, NULL), 0);
	check_full(&fw);
	firmware_clear(&fw);
	assert_int_equal(fw_count(f), 2);
	assert_int_equal(create(f, full_body, NULL, NULL), -EEXIST);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
	gw_log_setup(LOG_LVL_WARN, 0, NULL);
	const struct CMUnitTest tests[] = {
		T(test_create_full),
		T(test_create_defaults),
		T(test_to_json),
		T(test_create_invalid),
		T(test_create_limits_ok),
		T(test_duplicate),
		T(test_update_partial),
		T(test_update_refused),
		T(test_update_clash_and_unknown),
		T(test_update_product_with_tasks),
		T(test_delete_free),
		T(test_delete_busy),
		T(test_delete_finished),
		T(test_list),
		T(test_restart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
