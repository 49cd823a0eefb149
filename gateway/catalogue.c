/* SPDX-License-Identifier: MIT */
/* catalogue.c - the firmware table; see catalogue.h.
 * Create and update share one path: start from defaults (create) or the
 * stored row (update), overlay the fields present in the body, then check
 * the merged row as a whole (sign against signMethod, url form, uniqueness),
 * so a partial update can never store a row a create would refuse.
 * Must not: touch records' state, sockets or cache files; build SQL. */
#define LOG_MOD "catalogue"
#include "catalogue.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json_in.h"
#include "log.h"
#include "util.h"

#define FW_ORDER_MAX INT32_MAX
#define FW_SIZE_MAX (INT64_C(1) << 53)  /* bytes; exact in a JSON double */

#define FW_WCOLS "id, product_id, name, version, version_order, url, size, sign, sign_method," \
	" properties, description, create_time, update_time"
#define FW_COLS FW_WCOLS ", origin"

static const char fw_sql_get[] = "SELECT " FW_COLS " FROM firmware WHERE id = ?1";
static const char fw_sql_find[] =
	"SELECT " FW_COLS " FROM firmware WHERE product_id = ?1 AND version = ?2";
static const char fw_sql_insert[] = "INSERT INTO firmware (" FW_WCOLS ")"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
static const char fw_sql_update[] = "UPDATE firmware SET product_id = ?2, name = ?3,"
	" version = ?4, version_order = ?5, url = ?6, size = ?7, sign = ?8, sign_method = ?9,"
	" properties = ?10, description = ?11, create_time = ?12, update_time = ?13"
	" WHERE id = ?1";
static const char fw_sql_has_id[] = "SELECT COUNT(*) FROM firmware WHERE id = ?1";
static const char fw_sql_clash[] = "SELECT COUNT(*) FROM firmware"
	" WHERE product_id = ?1 AND version = ?2 AND id <> ?3";
static const char fw_sql_tasks[] = "SELECT COUNT(*) FROM task WHERE firmware_id = ?1";
static const char fw_sql_busy[] = "SELECT COUNT(*) FROM record"
	" WHERE state IN ('waiting', 'processing') AND (firmware_id = ?1"
	" OR task_id IN (SELECT id FROM task WHERE firmware_id = ?1))";
static const char fw_sql_del_records[] =
	"DELETE FROM record WHERE task_id IN (SELECT id FROM task WHERE firmware_id = ?1)";
static const char fw_sql_del_tasks[] = "DELETE FROM task WHERE firmware_id = ?1";
static const char fw_sql_del_fw[] = "DELETE FROM firmware WHERE id = ?1";
static const char fw_sql_count[] =
	"SELECT COUNT(*) FROM firmware WHERE ?1 IS NULL OR product_id = ?1";
static const char fw_sql_page[] = "SELECT " FW_COLS " FROM firmware"
	" WHERE ?1 IS NULL OR product_id = ?1"
	" ORDER BY product_id, version_order DESC, create_time, id LIMIT ?2 OFFSET ?3";

/* Body keys: create takes all but the last; update also takes createTime
 * (accepted only when it equals the stored value). */
static const char *const fw_keys[] = {
	"id", "productId", "name", "version", "versionOrder", "url", "size", "sign",
	"signMethod", "properties", "description", "createTime",
};
#define FW_CREATE_KEYS (OTAGW_ARRAY_SIZE(fw_keys) - 1)

struct fw_str {
	const char *key;
	size_t off, cap;
	bool required;                /* on create */
};

static const struct fw_str fw_strs[] = {
	{ "name", offsetof(struct firmware, name), OTAGW_NAME_MAX, true },
	{ "version", offsetof(struct firmware, version), OTAGW_VERSION_MAX, true },
	{ "url", offsetof(struct firmware, url), OTAGW_URL_MAX, false },
	{ "sign", offsetof(struct firmware, sign), OTAGW_SIGN_MAX, false },
	{ "signMethod", offsetof(struct firmware, sign_method), OTAGW_SIGN_METHOD_MAX, false },
};

struct fw_sign_method {
	const char *name;
	size_t hex_len;
};

/* hex_len 0: the sign is base64 (a DER ECDSA P-256 signature over the
 * image's SHA-256, checked against [cache] signing_key). */
static const struct fw_sign_method fw_methods[] = { { "md5", 32 }, { "sha256", 64 },
						     { "ecdsa-p256", 0 } };

void firmware_clear(struct firmware *fw)
{
	if (!fw)
		return;
	free(fw->properties);
	free(fw->description);
	memset(fw, 0, sizeof(*fw));
}

/* ---- SQL helpers ---- */

static int fw_bind_strs(sqlite3_stmt *s, const char *const *args, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (store_bind_str(s, (int)i + 1, args[i]) != SQLITE_OK)
			return -EIO;
	return 0;
}

/* Runs a one-row, one-integer query with string parameters ?1..?n. */
static int fw_scalar(struct store *st, const char *sql, const char *const *args, size_t n,
		     int64_t *out)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return -EIO;
	rc = fw_bind_strs(s, args, n);
	if (!rc) {
		int step = sqlite3_step(s);

		rc = step == SQLITE_ROW ? 0 : step == SQLITE_DONE ? -EIO : store_errno(step);
		if (!rc)
			*out = sqlite3_column_int64(s, 0);
	}
	store_done(s);
	return rc;
}

/* Runs a statement with the one parameter id. */
static int fw_exec_id(struct store *st, const char *sql, const char *id)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return -EIO;
	rc = fw_bind_strs(s, &id, 1);
	if (!rc)
		rc = store_errno(sqlite3_step(s));
	store_done(s);
	return rc;
}

static int fw_from_row(sqlite3_stmt *s, struct firmware *fw)
{
	store_col_str(s, 0, fw->id, sizeof(fw->id));
	store_col_str(s, 1, fw->product_id, sizeof(fw->product_id));
	store_col_str(s, 2, fw->name, sizeof(fw->name));
	store_col_str(s, 3, fw->version, sizeof(fw->version));
	fw->version_order = sqlite3_column_int64(s, 4);
	store_col_str(s, 5, fw->url, sizeof(fw->url));
	fw->size = (uint64_t)sqlite3_column_int64(s, 6);
	store_col_str(s, 7, fw->sign, sizeof(fw->sign));
	store_col_str(s, 8, fw->sign_method, sizeof(fw->sign_method));
	fw->properties = store_col_dup(s, 9);
	fw->description = store_col_dup(s, 10);
	fw->create_time = sqlite3_column_int64(s, 11);
	fw->update_time = sqlite3_column_int64(s, 12);
	fw->cloud = !strcmp((const char *)sqlite3_column_text(s, 13) ?: "", "cloud");
	return fw->properties && fw->description ? 0 : -ENOMEM;
}

/* Reads the one row of sql(a, b) into *out: 0, -ENOENT, -EIO, -ENOMEM. */
static int fw_select(struct store *st, const char *sql, const char *a, const char *b,
		     struct firmware *out)
{
	const char *const args[] = { a, b };
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!s)
		return -EIO;
	rc = fw_bind_strs(s, args, b ? 2 : 1);
	if (!rc) {
		int step = sqlite3_step(s);

		if (step == SQLITE_ROW)
			rc = fw_from_row(s, out);
		else
			rc = step == SQLITE_DONE ? -ENOENT : store_errno(step);
	}
	store_done(s);
	if (rc)
		firmware_clear(out);
	return rc;
}

/* Inserts or updates (sql) the whole row fw. */
static int fw_write(struct store *st, const char *sql, const struct firmware *fw,
		    struct err_info *e)
{
	const char *const strs[] = { fw->id, fw->product_id, fw->name, fw->version };
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return err_set(e, -EIO, "database error");
	fw_bind_strs(s, strs, OTAGW_ARRAY_SIZE(strs));
	sqlite3_bind_int64(s, 5, fw->version_order);
	store_bind_str(s, 6, fw->url);
	sqlite3_bind_int64(s, 7, (int64_t)fw->size);
	store_bind_str(s, 8, fw->sign);
	store_bind_str(s, 9, fw->sign_method);
	store_bind_str(s, 10, fw->properties);
	store_bind_str(s, 11, fw->description);
	sqlite3_bind_int64(s, 12, fw->create_time);
	sqlite3_bind_int64(s, 13, fw->update_time);
	rc = store_errno(sqlite3_step(s));
	store_done(s);
	if (rc == -EEXIST)
		return err_set(e, rc, "firmware with productId %s and version %s already exists",
			       fw->product_id, fw->version);
	if (rc)
		return err_set(e, rc, "cannot store firmware '%s'", fw->id);
	return 0;
}

/* ---- validation ---- */

static int fw_parse_strs(const cJSON *b, struct firmware *fw, bool create, struct err_info *e)
{
	int rc = json_in_id(b, "productId", create, fw->product_id, e);

	for (size_t i = 0; rc >= 0 && i < OTAGW_ARRAY_SIZE(fw_strs); i++) {
		const struct fw_str *f = &fw_strs[i];

		rc = json_in_str(b, f->key, create && f->required, (char *)fw + f->off, f->cap, e);
	}
	return rc < 0 ? rc : 0;
}

static int fw_parse_rest(const cJSON *b, struct firmware *fw, struct err_info *e)
{
	char *text = NULL;
	int64_t v = 0;
	int rc = json_in_int(b, "versionOrder", false, 0, FW_ORDER_MAX, &fw->version_order, e);

	if (rc >= 0)
		rc = json_in_int(b, "size", false, 0, FW_SIZE_MAX, &v, e);
	if (rc == 0)
		fw->size = (uint64_t)v;
	if (rc >= 0)
		rc = json_in_object_text(b, "properties", OTAGW_PROPS_MAX, &text, e);
	if (rc == 0) {
		free(fw->properties);
		fw->properties = text;
	}
	if (rc >= 0)
		rc = json_in_strdup(b, "description", OTAGW_DESC_MAX - 1, &text, e);
	if (rc == 0) {
		free(fw->description);
		fw->description = text;
	}
	return rc < 0 ? rc : 0;
}

static bool fw_has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return true;
	return false;
}

static bool fw_url_ok(const char *url)
{
	size_t skip = 0;

	if (!strncasecmp(url, "http://", 7))
		skip = 7;
	else if (!strncasecmp(url, "https://", 8))
		skip = 8;
	else if (url[0] != '/')
		return false;
	if (skip && !url[skip])
		return false;           /* a scheme without a host */
	/* Spaces, CR/LF: never into a request line or a header. */
	return !fw_has_ctl(url) && !strchr(url, ' ');
}

/* A base64 signature: A-Z a-z 0-9 + / with = padding, 8-256 chars. */
static int fw_check_base64(const char *s, struct err_info *e)
{
	size_t n = strlen(s), pad = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '=' && i + 2 >= n)
			pad++;
		else if (!isalnum(c) && c != '+' && c != '/')
			return err_set(e, -EINVAL, "field 'sign': expected base64 for ecdsa-p256");
		else if (pad)
			return err_set(e, -EINVAL, "field 'sign': base64 padding inside");
	}
	if (n < 8 || n % 4)
		return err_set(e, -EINVAL, "field 'sign': base64 of a DER signature expected");
	return 0;
}

/* Lower-cases fw->sign_method and fw->sign and checks them together. */
static int fw_check_sign(struct firmware *fw, struct err_info *e)
{
	const struct fw_sign_method *m = NULL;
	size_t len = strlen(fw->sign);

	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(fw_methods); i++)
		if (util_ieq(fw->sign_method, fw_methods[i].name))
			m = &fw_methods[i];
	if (fw->sign_method[0] && !m)
		return err_set(e, -EINVAL, "field 'signMethod': expected md5, sha256 or ecdsa-p256");
	if (m)
		util_strlcpy(fw->sign_method, m->name, sizeof(fw->sign_method));
	if (!len)
		return 0;
	if (!m)
		return err_set(e, -EINVAL, "field 'signMethod' is required when sign is given");
	if (!m->hex_len)
		return fw_check_base64(fw->sign, e);
	for (size_t i = 0; i < len; i++) {
		if (!isxdigit((unsigned char)fw->sign[i]))
			return err_set(e, -EINVAL, "field 'sign': expected hex digits");
		fw->sign[i] = (char)tolower((unsigned char)fw->sign[i]);
	}
	if (len != m->hex_len)
		return err_set(e, -EINVAL, "field 'sign': %s needs %zu hex digits, got %zu",
			       m->name, m->hex_len, len);
	return 0;
}

/* Checks the merged row (an update may have emptied a required field).
 * name and version reach logs and device messages: no control characters. */
static int fw_check(struct firmware *fw, struct err_info *e)
{
	if (!fw->name[0] || fw_has_ctl(fw->name))
		return err_set(e, -EINVAL, "field 'name' must be non-empty, without control "
			       "characters");
	if (!fw->version[0] || fw_has_ctl(fw->version))
		return err_set(e, -EINVAL, "field 'version' must be non-empty, without control "
			       "characters");
	if (fw->url[0] && !fw_url_ok(fw->url))
		return err_set(e, -EINVAL,
			       "field 'url': expected http://, https:// or a path starting with /");
	return fw_check_sign(fw, e);
}

/* -EEXIST when another firmware has fw's (productId, version). */
static int fw_unique(struct store *st, const struct firmware *fw, struct err_info *e)
{
	const char *const args[] = { fw->product_id, fw->version, fw->id };
	int64_t n = 0;
	int rc = fw_scalar(st, fw_sql_clash, args, 3, &n);

	if (rc)
		return err_set(e, rc, "database error");
	if (n)
		return err_set(e, -EEXIST, "firmware with productId %s and version %s already exists",
			       fw->product_id, fw->version);
	return 0;
}

/* Hands fw to out on success (out may be NULL), else frees it. */
static void fw_finish(struct firmware *fw, struct firmware *out, int rc)
{
	if (!rc && out)
		*out = *fw;
	else
		firmware_clear(fw);
}

/* ---- create ---- */

static int fw_new(struct store *st, const cJSON *body, struct firmware *fw, struct err_info *e)
{
	int64_t n = 0;
	int rc = json_in_id(body, "id", false, fw->id, e);

	if (rc < 0)
		return rc;
	if (rc == 1)
		util_new_id(fw->id);
	rc = fw_scalar(st, fw_sql_has_id, (const char *const[]){ fw->id }, 1, &n);
	if (rc)
		return err_set(e, rc, "database error");
	if (n)
		return err_set(e, -EEXIST, "firmware '%s' already exists", fw->id);
	fw->properties = strdup("{}");
	fw->description = strdup("");
	if (!fw->properties || !fw->description)
		return err_set(e, -ENOMEM, "out of memory");
	fw->create_time = fw->update_time = util_now_ms();
	return 0;
}

int catalogue_create(struct store *st, const cJSON *body, struct firmware *out,
		     struct err_info *e)
{
	struct firmware fw = { 0 };
	int rc = json_in_check_keys(body, fw_keys, FW_CREATE_KEYS, e);

	if (out)
		memset(out, 0, sizeof(*out));
	if (!rc)
		rc = fw_new(st, body, &fw, e);
	if (!rc)
		rc = fw_parse_strs(body, &fw, true, e);
	if (!rc)
		rc = fw_parse_rest(body, &fw, e);
	if (!rc)
		rc = fw_check(&fw, e);
	if (!rc)
		rc = fw_unique(st, &fw, e);
	if (!rc)
		rc = fw_write(st, fw_sql_insert, &fw, e);
	fw_finish(&fw, out, rc);
	return rc;
}

/* ---- update ---- */

/* id and createTime may be repeated in the body, but not changed. */
static int fw_check_fixed(const cJSON *body, const struct firmware *fw, struct err_info *e)
{
	char id[OTAGW_ID_MAX];
	int64_t t;
	int rc = json_in_id(body, "id", false, id, e);

	if (rc < 0)
		return rc;
	if (rc == 0 && strcmp(id, fw->id))
		return err_set(e, -EINVAL, "field 'id' cannot be changed");
	rc = json_in_int(body, "createTime", false, INT64_MIN, INT64_MAX, &t, e);
	if (rc < 0)
		return rc;
	if (rc == 0 && t != fw->create_time)
		return err_set(e, -EINVAL, "field 'createTime' cannot be changed");
	return 0;
}

/* Tasks copy the productId and publish to that product's devices: moving a
 * firmware they use to another product would push it to the wrong devices. */
static int fw_check_move(struct store *st, const struct firmware *fw, const char *old_product,
			 struct err_info *e)
{
	int64_t n = 0;
	int rc;

	if (!strcmp(fw->product_id, old_product))
		return 0;
	rc = fw_scalar(st, fw_sql_tasks, (const char *const[]){ fw->id }, 1, &n);
	if (rc)
		return err_set(e, rc, "database error");
	if (n)
		return err_set(e, -EINVAL, "field 'productId': cannot change while %lld task(s) "
			       "use firmware '%s'", (long long)n, fw->id);
	return 0;
}

int catalogue_update(struct store *st, const char *id, const cJSON *body, struct firmware *out,
		     struct err_info *e)
{
	struct firmware fw = { 0 };
	char old_product[OTAGW_ID_MAX];
	int rc = json_in_check_keys(body, fw_keys, OTAGW_ARRAY_SIZE(fw_keys), e);

	if (out)
		memset(out, 0, sizeof(*out));
	if (!rc)
		rc = catalogue_get(st, id, &fw, e);
	if (!rc)
		rc = fw_check_fixed(body, &fw, e);
	util_strlcpy(old_product, fw.product_id, sizeof(old_product));
	if (!rc)
		rc = fw_parse_strs(body, &fw, false, e);
	if (!rc)
		rc = fw_parse_rest(body, &fw, e);
	if (!rc)
		rc = fw_check(&fw, e);
	if (!rc)
		rc = fw_check_move(st, &fw, old_product, e);
	if (!rc)
		rc = fw_unique(st, &fw, e);
	if (!rc) {
		fw.update_time = util_now_ms();
		rc = fw_write(st, fw_sql_update, &fw, e);
	}
	fw_finish(&fw, out, rc);
	return rc;
}

/* ---- read ---- */

int catalogue_get(struct store *st, const char *id, struct firmware *out, struct err_info *e)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (!util_id_valid(id))
		return err_set(e, -ENOENT, "firmware not found");
	rc = fw_select(st, fw_sql_get, id, NULL, out);
	if (rc == -ENOENT)
		return err_set(e, rc, "firmware '%s' not found", id);
	if (rc)
		return err_set(e, rc, "cannot read firmware '%s'", id);
	return 0;
}

int catalogue_find(struct store *st, const char *product_id, const char *version,
		   struct firmware *out)
{
	memset(out, 0, sizeof(*out));
	if (!product_id || !version)
		return -ENOENT;
	return fw_select(st, fw_sql_find, product_id, version, out);
}

/* ---- delete ---- */

static int fw_delete_rows(struct store *st, const char *id, struct err_info *e)
{
	static const char *const dels[] = { fw_sql_del_records, fw_sql_del_tasks, fw_sql_del_fw };
	int64_t n = 0;
	int rc = fw_scalar(st, fw_sql_has_id, &id, 1, &n);

	if (!rc && !n)
		return err_set(e, -ENOENT, "firmware '%s' not found", id);
	if (!rc)
		rc = fw_scalar(st, fw_sql_busy, &id, 1, &n);
	if (!rc && n)
		return err_set(e, -EBUSY, "firmware '%s' has %lld unfinished upgrade record(s)",
			       id, (long long)n);
	for (size_t i = 0; !rc && i < OTAGW_ARRAY_SIZE(dels); i++)
		rc = fw_exec_id(st, dels[i], id);
	if (rc)
		return err_set(e, rc, "cannot delete firmware '%s'", id);
	return 0;
}

int catalogue_delete(struct store *st, const char *id, struct err_info *e)
{
	int rc;

	if (!util_id_valid(id))
		return err_set(e, -ENOENT, "firmware not found");
	rc = store_begin(st);
	if (rc)
		return err_set(e, rc, "cannot start a transaction");
	rc = fw_delete_rows(st, id, e);
	if (rc) {
		store_rollback(st);
		return rc;
	}
	rc = store_commit(st);
	if (rc)
		return err_set(e, rc, "cannot delete firmware '%s'", id);
	return 0;
}

/* ---- list ---- */

static unsigned fw_page_size(unsigned size)
{
	if (!size)
		return OTAGW_PAGE_SIZE_DEFAULT;
	return size > OTAGW_PAGE_SIZE_MAX ? OTAGW_PAGE_SIZE_MAX : size;
}

/* Appends the rows of the prepared page statement s to arr. */
static int fw_rows_to_json(sqlite3_stmt *s, cJSON *arr)
{
	int step;

	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		struct firmware fw = { 0 };
		int rc = fw_from_row(s, &fw);
		cJSON *j = rc ? NULL : firmware_to_json(&fw);

		firmware_clear(&fw);
		if (!j || !cJSON_AddItemToArray(arr, j)) {
			cJSON_Delete(j);
			return -ENOMEM;
		}
	}
	return step == SQLITE_DONE ? 0 : store_errno(step);
}

int catalogue_list(struct store *st, const char *product_id, unsigned page, unsigned size,
		   cJSON **items, int64_t *total)
{
	const char *prod = product_id && product_id[0] ? product_id : NULL;
	sqlite3_stmt *s;
	cJSON *arr;
	int rc;

	size = fw_page_size(size);
	rc = fw_scalar(st, fw_sql_count, &prod, 1, total);
	if (rc)
		return rc;
	arr = cJSON_CreateArray();
	s = store_stmt(st, fw_sql_page);
	rc = !arr ? -ENOMEM : !s ? -EIO : 0;
	if (!rc) {
		store_bind_str(s, 1, prod);
		sqlite3_bind_int64(s, 2, size);
		sqlite3_bind_int64(s, 3, (int64_t)page * size);
		rc = fw_rows_to_json(s, arr);
	}
	store_done(s);
	if (rc) {
		cJSON_Delete(arr);
		return rc;
	}
	*items = arr;
	return 0;
}

/* ---- JSON ---- */

/* size as a JSON number; from 10^15 up as exact decimal text, as cJSON 1.7.15
 * prints those doubles with 15 significant digits when that is "close
 * enough" (2^53 would come out as 9.00719925474099e+15). */
static bool fw_add_size(cJSON *o, uint64_t size)
{
	char text[24];

	if (size < UINT64_C(1000000000000000))
		return cJSON_AddNumberToObject(o, "size", (double)size) != NULL;
	snprintf(text, sizeof(text), "%" PRIu64, size);
	return cJSON_AddRawToObject(o, "size", text) != NULL;
}

cJSON *firmware_to_json(const struct firmware *fw)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *props = json_out_object_text(fw->properties);
	bool ok = o && props;

	ok = ok && cJSON_AddStringToObject(o, "id", fw->id);
	ok = ok && cJSON_AddStringToObject(o, "productId", fw->product_id);
	ok = ok && cJSON_AddStringToObject(o, "name", fw->name);
	ok = ok && cJSON_AddStringToObject(o, "version", fw->version);
	ok = ok && cJSON_AddNumberToObject(o, "versionOrder", (double)fw->version_order);
	ok = ok && cJSON_AddStringToObject(o, "url", fw->url);
	ok = ok && fw_add_size(o, fw->size);
	ok = ok && cJSON_AddStringToObject(o, "sign", fw->sign);
	ok = ok && cJSON_AddStringToObject(o, "signMethod", fw->sign_method);
	ok = ok && cJSON_AddItemToObject(o, "properties", props);
	if (!ok)
		cJSON_Delete(props);    /* not (or not yet) owned by o */
	ok = ok && cJSON_AddStringToObject(o, "description",
					   fw->description ? fw->description : "");
	ok = ok && cJSON_AddNumberToObject(o, "createTime", (double)fw->create_time);
	ok = ok && cJSON_AddNumberToObject(o, "updateTime", (double)fw->update_time);
	ok = ok && cJSON_AddStringToObject(o, "origin", fw->cloud ? "cloud" : "local");
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int catalogue_set_cloud(struct store *st, const char *id)
{
	return store_exec1(st, "UPDATE firmware SET origin = 'cloud' WHERE id = ?1", id);
}
