/* SPDX-License-Identifier: MIT */
/* devices.c - the device table; see devices.h.
 * Reports come from devices (untrusted even after decoding), so
 * devices_report() re-checks the id, product, version and properties it is
 * handed before anything reaches the table.
 * Must not: touch records, keep live connections, build SQL. */
#define LOG_MOD "devices"
#include "devices.h"

#include <stdlib.h>
#include <string.h>

#include "json_in.h"
#include "log.h"
#include "util.h"
#include "verify.h"

#define DEV_COLS "id, product_id, name, firmware_version, properties, transport, online," \
	" last_seen, create_time, secure_key <> ''"

static const char dev_sql_get[] = "SELECT " DEV_COLS " FROM device WHERE id = ?1";
static const char dev_sql_insert[] = "INSERT INTO device (id, product_id, name,"
	" firmware_version, properties, last_seen, create_time, secure_key)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static const char dev_sql_key[] = "SELECT secure_key FROM device WHERE id = ?1";
static const char dev_sql_update[] = "UPDATE device SET name = coalesce(?2, name),"
	" properties = coalesce(?3, properties), secure_key = coalesce(?4, secure_key)"
	" WHERE id = ?1";
static const char dev_sql_product[] = "SELECT product_id FROM device WHERE id = ?1";
static const char dev_sql_report[] = "UPDATE device SET"
	" firmware_version = coalesce(?2, firmware_version),"
	" properties = coalesce(?3, properties), last_seen = ?4 WHERE id = ?1";
static const char dev_sql_online[] = "UPDATE device SET online = ?2,"
	" transport = coalesce(?3, transport), last_seen = ?4 WHERE id = ?1";
static const char dev_sql_all_offline[] = "UPDATE device SET online = 0 WHERE online <> 0";
static const char dev_sql_delete[] = "DELETE FROM device WHERE id = ?1";
static const char dev_sql_count[] =
	"SELECT COUNT(*) FROM device WHERE ?1 IS NULL OR product_id = ?1";
static const char dev_sql_page[] = "SELECT " DEV_COLS " FROM device"
	" WHERE ?1 IS NULL OR product_id = ?1 ORDER BY id LIMIT ?2 OFFSET ?3";

static const char *const dev_keys[] = {
	"id", "productId", "name", "firmwareVersion", "properties", "secureKey",
};
static const char *const dev_update_keys[] = { "name", "properties", "secureKey" };

/* What a row is made of before it is inserted. */
struct dev_new {
	const char *id, *product_id, *name, *version, *properties;
	int64_t last_seen;
	const char *key_hash;     /* "" or a verify_secret_hash() */
};

void device_clear(struct device *d)
{
	if (!d)
		return;
	free(d->properties);
	memset(d, 0, sizeof(*d));
}

static int dev_from_row(sqlite3_stmt *s, struct device *d)
{
	store_col_str(s, 0, d->id, sizeof(d->id));
	store_col_str(s, 1, d->product_id, sizeof(d->product_id));
	store_col_str(s, 2, d->name, sizeof(d->name));
	store_col_str(s, 3, d->firmware_version, sizeof(d->firmware_version));
	d->properties = store_col_dup(s, 4);
	store_col_str(s, 5, d->transport, sizeof(d->transport));
	d->online = sqlite3_column_int(s, 6) != 0;
	d->last_seen = sqlite3_column_int64(s, 7);
	d->create_time = sqlite3_column_int64(s, 8);
	d->has_secure_key = sqlite3_column_int(s, 9) != 0;
	return d->properties ? 0 : -ENOMEM;
}

/* Runs sql, and binds id as ?1 when not NULL: 0, or -ENOENT when it changed
 * no row of that id, or a store error. */
static int dev_exec(struct store *st, const char *sql, const char *id)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return -EIO;
	if (id)
		store_bind_str(s, 1, id);
	rc = store_errno(sqlite3_step(s));
	store_done(s);
	if (!rc && id && !sqlite3_changes(store_db(st)))
		rc = -ENOENT;
	return rc;
}

static int dev_insert(struct store *st, const struct dev_new *n)
{
	sqlite3_stmt *s = store_stmt(st, dev_sql_insert);
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, n->id);
	store_bind_str(s, 2, n->product_id);
	store_bind_str(s, 3, n->name ? n->name : "");
	store_bind_str(s, 4, n->version ? n->version : "");
	store_bind_str(s, 5, n->properties ? n->properties : "{}");
	sqlite3_bind_int64(s, 6, n->last_seen);
	sqlite3_bind_int64(s, 7, util_now_ms());
	store_bind_str(s, 8, n->key_hash ? n->key_hash : "");
	rc = store_errno(sqlite3_step(s));
	store_done(s);
	return rc;
}

/* ---- create, get, delete ---- */

struct dev_body {
	char id[OTAGW_ID_MAX];
	char product_id[OTAGW_ID_MAX];
	char name[OTAGW_NAME_MAX];
	char version[OTAGW_VERSION_MAX];
	char *properties;
	char key[OTAGW_KEY_MAX];
	char key_hash[VERIFY_SECRET_HASH_MAX];   /* "" when no secureKey given */
};

/* Hashes an optional "secureKey" of body into b->key_hash. */
static int dev_parse_key(const cJSON *body, struct dev_body *b, struct err_info *e)
{
	int rc = json_in_str(body, "secureKey", false, b->key, sizeof(b->key), e);

	if (rc)
		return rc < 0 ? rc : 0;
	if (!b->key[0])
		return 0;               /* "" clears (update) or means none (create) */
	if (verify_secret_hash(b->key, b->key_hash))
		return err_set(e, -EIO, "cannot hash secureKey");
	memset(b->key, 0, sizeof(b->key));
	return 0;
}

static int dev_parse(const cJSON *body, struct dev_body *b, struct err_info *e)
{
	int rc = json_in_check_keys(body, dev_keys, OTAGW_ARRAY_SIZE(dev_keys), e);

	if (rc >= 0)
		rc = json_in_id(body, "id", true, b->id, e);
	if (rc >= 0)
		rc = json_in_id(body, "productId", true, b->product_id, e);
	if (rc >= 0)
		rc = json_in_str(body, "name", false, b->name, sizeof(b->name), e);
	if (rc >= 0)
		rc = json_in_str(body, "firmwareVersion", false, b->version, sizeof(b->version), e);
	if (rc >= 0)
		rc = json_in_object_text(body, "properties", OTAGW_PROPS_MAX, &b->properties, e);
	if (rc >= 0)
		rc = dev_parse_key(body, b, e);
	return rc < 0 ? rc : 0;
}

int devices_create(struct store *st, const cJSON *body, struct device *out, struct err_info *e)
{
	struct dev_body b = { .properties = NULL };
	struct dev_new n;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = dev_parse(body, &b, e);
	if (rc)
		goto out;
	n = (struct dev_new){ b.id, b.product_id, b.name, b.version, b.properties, 0, b.key_hash };
	rc = dev_insert(st, &n);
	if (rc == -EEXIST)
		err_set(e, rc, "device '%s' already exists", b.id);
	else if (rc)
		err_set(e, rc, "cannot store device '%s'", b.id);
	else
		rc = devices_get(st, b.id, out, e);
out:
	free(b.properties);
	return rc;
}

int devices_update(struct store *st, const char *id, const cJSON *body, struct device *out,
		   struct err_info *e)
{
	struct dev_body b = { .properties = NULL };
	bool name_given, key_given;
	sqlite3_stmt *s;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = json_in_check_keys(body, dev_update_keys, OTAGW_ARRAY_SIZE(dev_update_keys), e);
	if (!rc)
		rc = json_in_str(body, "name", false, b.name, sizeof(b.name), e);
	name_given = rc == 0;
	if (rc >= 0)
		rc = json_in_object_text(body, "properties", OTAGW_PROPS_MAX, &b.properties, e);
	key_given = rc >= 0 && cJSON_GetObjectItemCaseSensitive(body, "secureKey");
	if (rc >= 0)
		rc = dev_parse_key(body, &b, e);
	if (rc < 0)
		goto out;
	s = store_stmt(st, dev_sql_update);
	if (!s) {
		rc = err_set(e, -EIO, "database error");
		goto out;
	}
	store_bind_str(s, 1, id);
	store_bind_str(s, 2, name_given ? b.name : NULL);
	store_bind_str(s, 3, b.properties);
	store_bind_str(s, 4, key_given ? b.key_hash : NULL);
	rc = store_errno(sqlite3_step(s));
	store_done(s);
	if (!rc && !sqlite3_changes(store_db(st)))
		rc = err_set(e, -ENOENT, "device '%s' not found", id);
	if (!rc)
		rc = devices_get(st, id, out, e);
out:
	free(b.properties);
	return rc;
}

int devices_check_key(struct store *st, const char *id, const char *secret)
{
	char stored[VERIFY_SECRET_HASH_MAX];
	sqlite3_stmt *s = store_stmt(st, dev_sql_key);
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		store_col_str(s, 0, stored, sizeof(stored));
	store_done(s);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? -ENOENT : -EIO;
	return secret && secret[0] && verify_secret_check(secret, stored) ? 0 : -OTAGW_EAUTH;
}

int devices_get(struct store *st, const char *id, struct device *out, struct err_info *e)
{
	sqlite3_stmt *s;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!util_id_valid(id))
		return err_set(e, -ENOENT, "device not found");
	s = store_stmt(st, dev_sql_get);
	if (!s)
		return err_set(e, -EIO, "database error");
	store_bind_str(s, 1, id);
	rc = sqlite3_step(s);
	rc = rc == SQLITE_ROW ? dev_from_row(s, out) : rc == SQLITE_DONE ? -ENOENT : store_errno(rc);
	store_done(s);
	if (rc)
		device_clear(out);
	if (rc == -ENOENT)
		return err_set(e, rc, "device '%s' not found", id);
	if (rc)
		return err_set(e, rc, "cannot read device '%s'", id);
	return 0;
}

int devices_delete(struct store *st, const char *id, struct err_info *e)
{
	int rc;

	if (!util_id_valid(id))
		return err_set(e, -ENOENT, "device not found");
	rc = dev_exec(st, dev_sql_delete, id);
	if (rc == -ENOENT)
		return err_set(e, rc, "device '%s' not found", id);
	if (rc)
		return err_set(e, rc, "cannot delete device '%s'", id);
	return 0;
}

/* ---- list ---- */

static unsigned dev_page_size(unsigned size)
{
	if (!size)
		return OTAGW_PAGE_SIZE_DEFAULT;
	return size > OTAGW_PAGE_SIZE_MAX ? OTAGW_PAGE_SIZE_MAX : size;
}

static int dev_count(struct store *st, const char *product_id, int64_t *total)
{
	sqlite3_stmt *s = store_stmt(st, dev_sql_count);
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, product_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*total = sqlite3_column_int64(s, 0);
	rc = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -EIO : store_errno(rc);
	store_done(s);
	return rc;
}

static int dev_rows_to_json(sqlite3_stmt *s, cJSON *arr)
{
	int step;

	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		struct device d = { .properties = NULL };
		cJSON *j = dev_from_row(s, &d) ? NULL : device_to_json(&d);

		device_clear(&d);
		if (!j || !cJSON_AddItemToArray(arr, j)) {
			cJSON_Delete(j);
			return -ENOMEM;
		}
	}
	return step == SQLITE_DONE ? 0 : store_errno(step);
}

int devices_list(struct store *st, const char *product_id, unsigned page, unsigned size,
		 cJSON **items, int64_t *total)
{
	const char *prod = product_id && product_id[0] ? product_id : NULL;
	sqlite3_stmt *s;
	cJSON *arr;
	int rc;

	size = dev_page_size(size);
	rc = dev_count(st, prod, total);
	if (rc)
		return rc;
	arr = cJSON_CreateArray();
	s = store_stmt(st, dev_sql_page);
	rc = !arr ? -ENOMEM : !s ? -EIO : 0;
	if (!rc) {
		store_bind_str(s, 1, prod);
		sqlite3_bind_int64(s, 2, size);
		sqlite3_bind_int64(s, 3, (int64_t)page * size);
		rc = dev_rows_to_json(s, arr);
	}
	store_done(s);
	if (rc) {
		cJSON_Delete(arr);
		return rc;
	}
	*items = arr;
	return 0;
}

/* ---- reports and presence ---- */

static int dev_check_report(const char *id, const char *product_id, const char *version,
			    const char *properties, struct err_info *e)
{
	cJSON *p;

	if (!util_id_valid(id))
		return err_set(e, -EINVAL, "report: invalid device id");
	if (product_id[0] && !util_id_valid(product_id))
		return err_set(e, -EINVAL, "device '%s': invalid productId", id);
	if (version && strlen(version) >= OTAGW_VERSION_MAX)
		return err_set(e, -EINVAL, "device '%s': version too long (max %d)", id,
			       OTAGW_VERSION_MAX - 1);
	if (!properties)
		return 0;
	if (strlen(properties) > OTAGW_PROPS_MAX)
		return err_set(e, -EINVAL, "device '%s': properties too large", id);
	p = cJSON_ParseWithLength(properties, strlen(properties));
	if (!cJSON_IsObject(p)) {
		cJSON_Delete(p);
		return err_set(e, -EINVAL, "device '%s': properties must be a JSON object", id);
	}
	cJSON_Delete(p);
	return 0;
}

/* The stored productId of id into dst: 0, or -ENOENT. */
static int dev_product(struct store *st, const char *id, char dst[OTAGW_ID_MAX])
{
	sqlite3_stmt *s = store_stmt(st, dev_sql_product);
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		store_col_str(s, 0, dst, OTAGW_ID_MAX);
	rc = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : store_errno(rc);
	store_done(s);
	return rc;
}

static int dev_update_report(struct store *st, const char *id, const char *version,
			     const char *properties, int64_t ts)
{
	sqlite3_stmt *s = store_stmt(st, dev_sql_report);
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, id);
	store_bind_str(s, 2, version);
	store_bind_str(s, 3, properties);
	sqlite3_bind_int64(s, 4, ts);
	rc = store_errno(sqlite3_step(s));
	store_done(s);
	return rc;
}

/* The body of devices_report(), inside its transaction. */
static int dev_report_tx(struct store *st, const struct dev_new *n, struct err_info *e)
{
	char stored[OTAGW_ID_MAX];
	int rc = dev_product(st, n->id, stored);

	if (rc == -ENOENT && !n->product_id[0])
		return err_set(e, rc, "device '%s' is unknown and names no product", n->id);
	if (rc == -ENOENT) {
		rc = dev_insert(st, n);
		if (!rc)
			LOGI("device %s (product %s) registered by its report", n->id,
			     n->product_id);
	} else if (!rc && n->product_id[0] && strcmp(stored, n->product_id)) {
		return err_set(e, -EINVAL, "device '%s' belongs to product '%s', not '%s'", n->id,
			       stored, n->product_id);
	} else if (!rc) {
		rc = dev_update_report(st, n->id, n->version, n->properties, n->last_seen);
	}
	if (rc)
		return err_set(e, rc, "cannot store the report of device '%s'", n->id);
	return 0;
}

int devices_report(struct store *st, const char *id, const char *product_id,
		   const char *version, const char *properties, int64_t ts, struct err_info *e)
{
	/* A report without a version ("" or NULL) must not erase the known one. */
	struct dev_new n = { id, product_id ? product_id : "", "",
			     version && version[0] ? version : NULL, properties,
			     ts ? ts : util_now_ms(), "" };
	int rc = dev_check_report(id, n.product_id, version, properties, e);

	if (rc)
		return rc;
	rc = store_begin(st);
	if (rc)
		return err_set(e, rc, "cannot start a transaction");
	rc = dev_report_tx(st, &n, e);
	if (rc) {
		store_rollback(st);
		return rc;
	}
	rc = store_commit(st);
	if (rc)
		return err_set(e, rc, "cannot store the report of device '%s'", id);
	return 0;
}

int devices_set_online(struct store *st, const char *id, const char *transport, bool online,
		       int64_t ts)
{
	char tr[OTAGW_TRANSPORT_MAX];
	sqlite3_stmt *s;
	int rc;

	if (!util_id_valid(id))
		return -ENOENT;
	if (transport)
		util_strlcpy(tr, transport, sizeof(tr));   /* display only: truncate */
	s = store_stmt(st, dev_sql_online);
	if (!s)
		return -EIO;
	store_bind_str(s, 1, id);
	sqlite3_bind_int(s, 2, online ? 1 : 0);
	store_bind_str(s, 3, transport ? tr : NULL);
	sqlite3_bind_int64(s, 4, ts ? ts : util_now_ms());
	rc = store_errno(sqlite3_step(s));
	store_done(s);
	if (!rc && !sqlite3_changes(store_db(st)))
		rc = -ENOENT;
	return rc;
}

int devices_all_offline(struct store *st)
{
	return dev_exec(st, dev_sql_all_offline, NULL);
}

cJSON *device_to_json(const struct device *d)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *props = json_out_object_text(d->properties);
	bool ok = o && props;

	ok = ok && cJSON_AddStringToObject(o, "id", d->id);
	ok = ok && cJSON_AddStringToObject(o, "productId", d->product_id);
	ok = ok && cJSON_AddStringToObject(o, "name", d->name);
	ok = ok && cJSON_AddStringToObject(o, "firmwareVersion", d->firmware_version);
	ok = ok && cJSON_AddItemToObject(o, "properties", props);
	if (!ok)
		cJSON_Delete(props);    /* not owned by o */
	ok = ok && cJSON_AddStringToObject(o, "transport", d->transport);
	ok = ok && cJSON_AddBoolToObject(o, "online", d->online);
	ok = ok && cJSON_AddNumberToObject(o, "lastSeen", (double)d->last_seen);
	ok = ok && cJSON_AddNumberToObject(o, "createTime", (double)d->create_time);
	ok = ok && cJSON_AddBoolToObject(o, "hasSecureKey", d->has_secure_key);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int devices_census(struct store *st, int64_t *known,
		   void (*fn)(void *ctx, const char *transport, int64_t n), void *ctx)
{
	sqlite3_stmt *s;
	int rc = store_scalar(st, "SELECT COUNT(*) FROM device", known);

	if (rc)
		return rc;
	s = store_stmt(st, "SELECT transport, COUNT(*) FROM device WHERE online = 1"
			   " GROUP BY transport ORDER BY transport");
	if (!s)
		return -EIO;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		fn(ctx, (const char *)sqlite3_column_text(s, 0) ?: "",
		   sqlite3_column_int64(s, 1));
	store_done(s);
	return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

int devices_seen_since(struct store *st, int64_t since,
		       int (*fn)(void *ctx, const struct device *d), void *ctx)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT id FROM device WHERE last_seen > ?1"
				     " AND firmware_version <> '' ORDER BY last_seen, id");
	char (*ids)[OTAGW_ID_MAX] = NULL;
	size_t n = 0, cap = 0;
	int step, rc = 0;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, since);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			void *ni = realloc(ids, (cap = cap ? cap * 2 : 64) * sizeof(*ids));

			if (!ni) {
				step = SQLITE_NOMEM;
				break;
			}
			ids = ni;
		}
		store_col_str(s, 0, ids[n++], OTAGW_ID_MAX);
	}
	store_done(s);
	rc = step == SQLITE_DONE ? 0 : step == SQLITE_NOMEM ? -ENOMEM : store_errno(step);
	for (size_t i = 0; !rc && i < n; i++) {
		struct device d = { 0 };

		if (devices_get(st, ids[i], &d, NULL))
			continue;
		rc = fn(ctx, &d);
		device_clear(&d);
	}
	free(ids);
	return rc;
}
