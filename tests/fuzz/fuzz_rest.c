/* SPDX-License-Identifier: MIT */
/* fuzz_rest.c - the REST API's JSON bodies: json_in_strict()
 * (gateway/json_in.h) and the validators behind POST/PUT of firmware, tasks
 * and devices (catalogue.h, tasks.h, devices.h) against a real database
 * (fuzz_common.h's environment: one per process; each input runs in a
 * transaction that is rolled back, over one firmware "fw-base" and one
 * device "dev-base" made at start).
 * Feeds: byte 0 (mod 6) picks the request, the rest is its body, read the
 * way api.c's api_body() reads it (json_in_strict, cJSON with the length,
 * trailing white space only, an object):
 *   0 json_in_strict() alone    1 POST /api/firmware
 *   2 PUT /api/firmware/fw-base 3 POST /api/firmware/fw-base/tasks
 *   4 POST /api/devices         5 PUT /api/devices/dev-base
 * Asserts beyond no crash and no leak:
 *  - nothing that passes json_in_strict() and then cJSON holds invalid UTF-8
 *    or a NUL byte (checked with a separate, table-driven UTF-8 reader);
 *  - a refusal is a 4xx kind of error (-EINVAL, -EEXIST, -ENOENT) with a
 *    reason, and changes nothing (row counts, the base rows as they were);
 *  - what is accepted is stored as returned (a read gives the same fields)
 *    and obeys the rules: ids valid, name and version non-empty without
 *    control characters, url http(s):// or /path, signMethod known with a
 *    sign of the right form (lower-case hex of the right length), sizes and
 *    orders in range, properties a JSON object;
 *  - firmware: the same body again is refused (-EEXIST), and the firmware's
 *    own JSON (GET) put back as an update body is accepted and changes
 *    nothing;
 *  - devices: a given secureKey checks (devices_check_key) and any other
 *    key does not; none given, none stored. */
#define FUZZ_WITH_ENV
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue.h"
#include "devices.h"
#include "fuzz_common.h"
#include "json_in.h"
#include "tasks.h"
#include "util.h"

static struct firmware base_fw;
static struct device base_dev;

/* ---- json_in_strict() against a separate UTF-8 reader --------------------- */

/* Unicode Table 3-7, well-formed UTF-8: the bounds of each byte after the
 * first, by the first byte. */
static size_t ref_utf8(const uint8_t *p, size_t left)
{
	static const struct {
		uint8_t lo, hi, n, lo2, hi2;
	} rows[] = {
		{ 0x00, 0x7f, 1, 0, 0 },       { 0xc2, 0xdf, 2, 0x80, 0xbf },
		{ 0xe0, 0xe0, 3, 0xa0, 0xbf }, { 0xe1, 0xec, 3, 0x80, 0xbf },
		{ 0xed, 0xed, 3, 0x80, 0x9f }, { 0xee, 0xef, 3, 0x80, 0xbf },
		{ 0xf0, 0xf0, 4, 0x90, 0xbf }, { 0xf1, 0xf3, 4, 0x80, 0xbf },
		{ 0xf4, 0xf4, 4, 0x80, 0x8f },
	};

	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		if (p[0] < rows[r].lo || p[0] > rows[r].hi)
			continue;
		if (left < rows[r].n)
			return 0;
		if (rows[r].n > 1 && (p[1] < rows[r].lo2 || p[1] > rows[r].hi2))
			return 0;
		for (size_t i = 2; i < rows[r].n; i++)
			if (p[i] < 0x80 || p[i] > 0xbf)
				return 0;
		return rows[r].n;
	}
	return 0;
}

/* What passes json_in_strict() and then parses whole is valid UTF-8 without NUL.
 * (A stray byte after a backslash may pass the first: cJSON refuses such an
 * escape.) */
static void check_strict(const uint8_t *buf, size_t len)
{
	struct err_info e = { 0 };
	const char *end = NULL;
	bool parsed;
	cJSON *j;

	if (json_in_strict(buf, len, &e)) {
		FUZZ_CHECK(e.code == -EINVAL && e.text[0]);
		return;
	}
	j = cJSON_ParseWithLengthOpts((const char *)buf, len, &end, 0);
	parsed = j != NULL;
	cJSON_Delete(j);
	while (parsed && end < (const char *)buf + len && isspace((unsigned char)*end))
		end++;
	if (!parsed || end != (const char *)buf + len)
		return;
	for (size_t i = 0; i < len;) {
		size_t n = ref_utf8(buf + i, len - i);

		FUZZ_CHECK(n > 0);
		FUZZ_CHECK(buf[i] != 0);
		i += n;
	}
}

/* ---- bodies ---------------------------------------------------------------- */

/* api.c's api_body(): NULL when the API answers 400 itself. */
static cJSON *body_parse(const uint8_t *buf, size_t len)
{
	const char *end = NULL, *s = (const char *)buf;
	cJSON *j;

	if (!len || json_in_strict(buf, len, NULL))
		return NULL;
	j = cJSON_ParseWithLengthOpts(s, len, &end, 0);
	while (j && end && end < s + len && isspace((unsigned char)*end))
		end++;
	if (!j || end != s + len || !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

static void check_refusal(int rc, const struct err_info *e)
{
	FUZZ_CHECK(rc == -EINVAL || rc == -EEXIST || rc == -ENOENT);
	FUZZ_CHECK(e->text[0]);
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool is_object_text(const char *text)
{
	cJSON *o = text ? cJSON_Parse(text) : NULL;
	bool ok = cJSON_IsObject(o);

	cJSON_Delete(o);
	return ok;
}

/* ---- firmware -------------------------------------------------------------- */

static void fw_rules(const struct firmware *fw)
{
	size_t hex = !strcmp(fw->sign_method, "md5") ? 32 : !strcmp(fw->sign_method, "sha256") ? 64 : 0;

	FUZZ_STR_OK(fw->name);
	FUZZ_STR_OK(fw->version);
	FUZZ_STR_OK(fw->url);
	FUZZ_STR_OK(fw->sign);
	FUZZ_STR_OK(fw->sign_method);
	FUZZ_CHECK(util_id_valid(fw->id) && util_id_valid(fw->product_id));
	FUZZ_CHECK(fw->name[0] && !has_ctl(fw->name));
	FUZZ_CHECK(fw->version[0] && !has_ctl(fw->version));
	FUZZ_CHECK(!fw->url[0] || fw->url[0] == '/' || !strncasecmp(fw->url, "http://", 7) ||
		   !strncasecmp(fw->url, "https://", 8));
	FUZZ_CHECK(!has_ctl(fw->url) && !strchr(fw->url, ' '));
	FUZZ_CHECK(!fw->sign_method[0] || hex || !strcmp(fw->sign_method, "ecdsa-p256"));
	FUZZ_CHECK(!fw->sign[0] || fw->sign_method[0]);
	if (fw->sign[0] && hex) {
		FUZZ_CHECK(strlen(fw->sign) == hex);
		for (const char *c = fw->sign; *c; c++)
			FUZZ_CHECK(isxdigit((unsigned char)*c) && !isupper((unsigned char)*c));
	}
	FUZZ_CHECK(fw->size <= (UINT64_C(1) << 53));
	FUZZ_CHECK(fw->version_order >= 0 && fw->version_order <= INT32_MAX);
	FUZZ_CHECK(is_object_text(fw->properties));
	FUZZ_CHECK(fw->description && strlen(fw->description) < OTAGW_DESC_MAX);
}

/* Every stored field; update_time only when asked. */
static void fw_same(const struct firmware *a, const struct firmware *b, bool update_time)
{
	FUZZ_CHECK(!strcmp(a->id, b->id) && !strcmp(a->product_id, b->product_id));
	FUZZ_CHECK(!strcmp(a->name, b->name) && !strcmp(a->version, b->version));
	FUZZ_CHECK(a->version_order == b->version_order && a->size == b->size);
	FUZZ_CHECK(!strcmp(a->url, b->url) && !strcmp(a->sign, b->sign));
	FUZZ_CHECK(!strcmp(a->sign_method, b->sign_method));
	FUZZ_CHECK(!strcmp(a->properties, b->properties));
	FUZZ_CHECK(!strcmp(a->description, b->description));
	FUZZ_CHECK(a->create_time == b->create_time && a->cloud == b->cloud);
	if (update_time)
		FUZZ_CHECK(a->update_time == b->update_time);
}

/* The firmware's GET form, less what a PUT may not carry, updates nothing. */
static void fw_put_back(struct store *st, const struct firmware *fw)
{
	struct firmware again = { 0 }, now = { 0 };
	struct err_info e = { 0 };
	cJSON *j = firmware_to_json(fw);
	char *text;
	int rc;

	FUZZ_CHECK(j != NULL);
	cJSON_DeleteItemFromObjectCaseSensitive(j, "updateTime");
	cJSON_DeleteItemFromObjectCaseSensitive(j, "origin");
	/* through text, as a client would send it */
	text = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	FUZZ_CHECK(text != NULL);
	j = body_parse((const uint8_t *)text, strlen(text));
	FUZZ_CHECK(j != NULL);
	rc = catalogue_update(st, fw->id, j, &again, &e);
	if (rc)
		fprintf(stderr, "PUT of %s refused: %s\n", text, e.text);
	FUZZ_CHECK(rc == 0);
	fw_same(fw, &again, false);
	FUZZ_CHECK(catalogue_get(st, fw->id, &now, NULL) == 0);
	fw_same(&again, &now, true);
	firmware_clear(&again);
	firmware_clear(&now);
	cJSON_Delete(j);
	cJSON_free(text);
}

static void fw_create(struct store *st, const cJSON *body)
{
	struct firmware fw, got, twice;
	struct err_info e = { 0 };
	int64_t before = FUZZ_COUNT("firmware");
	int rc = catalogue_create(st, body, &fw, &e);

	if (rc) {
		check_refusal(rc, &e);
		FUZZ_CHECK(FUZZ_COUNT("firmware") == before);
		return;
	}
	fw_rules(&fw);
	FUZZ_CHECK(catalogue_get(st, fw.id, &got, NULL) == 0);
	fw_same(&fw, &got, true);
	FUZZ_CHECK(catalogue_create(st, body, &twice, &e) == -EEXIST);
	FUZZ_CHECK(FUZZ_COUNT("firmware") == before + 1);
	fw_put_back(st, &fw);
	firmware_clear(&fw);
	firmware_clear(&got);
}

static void fw_update(struct store *st, const cJSON *body)
{
	struct firmware fw, got;
	struct err_info e = { 0 };
	int rc = catalogue_update(st, base_fw.id, body, &fw, &e);

	FUZZ_CHECK(catalogue_get(st, base_fw.id, &got, NULL) == 0);
	if (rc) {
		check_refusal(rc, &e);
		fw_same(&base_fw, &got, true);
	} else {
		fw_rules(&fw);
		fw_same(&fw, &got, true);
		FUZZ_CHECK(got.create_time == base_fw.create_time);
		fw_put_back(st, &fw);
	}
	firmware_clear(&fw);
	firmware_clear(&got);
}

/* ---- tasks ----------------------------------------------------------------- */

static void task_create(struct store *st, const cJSON *body)
{
	struct task t, got;
	struct err_info e = { 0 };
	int64_t before = FUZZ_COUNT("task");
	int rc = tasks_create(st, base_fw.id, body, &t, &e);

	if (rc) {
		check_refusal(rc, &e);
		FUZZ_CHECK(FUZZ_COUNT("task") == before);
		return;
	}
	FUZZ_STR_OK(t.name);
	FUZZ_CHECK(util_id_valid(t.id) && !strcmp(t.firmware_id, base_fw.id));
	FUZZ_CHECK(!strcmp(t.product_id, base_fw.product_id));
	FUZZ_CHECK(t.name[0] && (t.mode == TASK_PUSH || t.mode == TASK_PULL));
	FUZZ_CHECK(t.timeout_seconds >= 0 && t.timeout_seconds <= OTAGW_TIMEOUT_MAX);
	FUZZ_CHECK(t.state == TASK_CREATED && t.description);
	FUZZ_CHECK(tasks_get(st, t.id, &got, NULL) == 0);
	FUZZ_CHECK(!strcmp(t.id, got.id) && !strcmp(t.firmware_id, got.firmware_id));
	FUZZ_CHECK(!strcmp(t.name, got.name) && t.mode == got.mode);
	FUZZ_CHECK(t.timeout_seconds == got.timeout_seconds && t.state == got.state);
	FUZZ_CHECK(!strcmp(t.description, got.description));
	FUZZ_CHECK(FUZZ_COUNT("task") == before + 1);
	task_clear(&t);
	task_clear(&got);
}

/* ---- devices --------------------------------------------------------------- */

static void dev_same(const struct device *a, const struct device *b)
{
	FUZZ_CHECK(!strcmp(a->id, b->id) && !strcmp(a->product_id, b->product_id));
	FUZZ_CHECK(!strcmp(a->name, b->name));
	FUZZ_CHECK(!strcmp(a->firmware_version, b->firmware_version));
	FUZZ_CHECK(!strcmp(a->properties, b->properties));
	FUZZ_CHECK(a->has_secure_key == b->has_secure_key && a->create_time == b->create_time);
}

/* The secureKey the body gave: NULL none, "" cleared. */
static const char *body_key(const cJSON *body)
{
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(body, "secureKey");

	return cJSON_IsString(k) ? k->valuestring : NULL;
}

static void dev_key_rules(struct store *st, const struct device *d, const char *key, bool kept)
{
	char wrong[OTAGW_KEY_MAX + 2];

	if (!key) {
		FUZZ_CHECK(d->has_secure_key == kept);
		return;
	}
	FUZZ_CHECK(d->has_secure_key == (key[0] != '\0'));
	if (!key[0]) {
		FUZZ_CHECK(devices_check_key(st, d->id, "") == -OTAGW_EAUTH);
		return;
	}
	FUZZ_CHECK(devices_check_key(st, d->id, key) == 0);
	snprintf(wrong, sizeof(wrong), "%sx", key);
	FUZZ_CHECK(devices_check_key(st, d->id, wrong) == -OTAGW_EAUTH);
}

static void dev_create(struct store *st, const cJSON *body)
{
	struct device d, got;
	struct err_info e = { 0 };
	int64_t before = FUZZ_COUNT("device");
	int rc = devices_create(st, body, &d, &e);

	if (rc) {
		check_refusal(rc, &e);
		FUZZ_CHECK(FUZZ_COUNT("device") == before);
		device_clear(&d);
		return;
	}
	FUZZ_STR_OK(d.name);
	FUZZ_STR_OK(d.firmware_version);
	FUZZ_CHECK(util_id_valid(d.id) && util_id_valid(d.product_id));
	FUZZ_CHECK(is_object_text(d.properties));
	FUZZ_CHECK(devices_get(st, d.id, &got, NULL) == 0);
	dev_same(&d, &got);
	dev_key_rules(st, &d, body_key(body), false);
	FUZZ_CHECK(FUZZ_COUNT("device") == before + 1);
	device_clear(&d);
	device_clear(&got);
}

static void dev_update(struct store *st, const cJSON *body)
{
	struct device d, got;
	struct err_info e = { 0 };
	int rc = devices_update(st, base_dev.id, body, &d, &e);

	FUZZ_CHECK(devices_get(st, base_dev.id, &got, NULL) == 0);
	if (rc) {
		check_refusal(rc, &e);
		dev_same(&base_dev, &got);
	} else {
		FUZZ_CHECK(is_object_text(d.properties));
		dev_same(&d, &got);
		FUZZ_CHECK(!strcmp(d.product_id, base_dev.product_id));
		dev_key_rules(st, &d, body_key(body), base_dev.has_secure_key);
	}
	device_clear(&d);
	device_clear(&got);
}

/* ---- driver ---------------------------------------------------------------- */

static void make_base(void)
{
	cJSON *fw = cJSON_Parse("{\"id\":\"fw-base\",\"productId\":\"p1\",\"name\":\"base\","
				"\"version\":\"1.0\",\"versionOrder\":1,\"url\":\"http://h/fw.bin\","
				"\"size\":1234,\"sign\":\"9e107d9d372bb6826bd81d3542a419d6\","
				"\"signMethod\":\"md5\",\"properties\":{\"hw\":\"A2\"}}");
	cJSON *dev = cJSON_Parse("{\"id\":\"dev-base\",\"productId\":\"p1\","
				 "\"firmwareVersion\":\"0.9\",\"secureKey\":\"s3cret\"}");

	if (catalogue_create(fuzz_env.st, fw, &base_fw, NULL) ||
	    devices_create(fuzz_env.st, dev, &base_dev, NULL))
		abort();
	cJSON_Delete(fw);
	cJSON_Delete(dev);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	fuzz_env_init(UINT64_C(1) << 30);
	make_base();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	static void (*const ops[])(struct store *st, const cJSON *body) = {
		NULL, fw_create, fw_update, task_create, dev_create, dev_update,
	};
	struct store *st = fuzz_env.st;
	unsigned op;
	cJSON *body;

	if (!len)
		return 0;
	op = buf[0] % 6;
	buf++;
	len--;
	if (op == 0) {
		check_strict(buf, len);
		return 0;
	}
	body = body_parse(buf, len);
	if (!body)
		return 0;
	if (store_begin(st))
		abort();
	ops[op](st, body);
	store_rollback(st);
	cJSON_Delete(body);
	return 0;
}
