/* SPDX-License-Identifier: MIT */
/* devices.h - the device registry: one row per LAN device the gateway knows
 * (id, productId, name, firmwareVersion, properties, transport, online,
 * lastSeen). Rows come from the REST API and from device reports.
 * Must not: touch records (records.c), keep live connections (session.c). */
#ifndef OTAGW_DEVICES_H
#define OTAGW_DEVICES_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "otagw_limits.h"
#include "store.h"

struct device {
	char id[OTAGW_ID_MAX];
	char product_id[OTAGW_ID_MAX];
	char name[OTAGW_NAME_MAX];
	char firmware_version[OTAGW_VERSION_MAX];
	char *properties;                 /* JSON object text; owned */
	char transport[OTAGW_TRANSPORT_MAX]; /* last transport seen on, "" never */
	bool online;
	int64_t last_seen;                /* ms, 0 never */
	int64_t create_time;              /* ms */
	bool has_secure_key;              /* a secureKey is set (never shown) */
};

void device_clear(struct device *d);

/* Validates body {id*, productId*, name, firmwareVersion, properties{},
 * secureKey (stored salted and hashed)} and
 * inserts. Unknown fields: -EINVAL. Existing id: -EEXIST. */
int devices_create(struct store *st, const cJSON *body, struct device *out,
		   struct err_info *e) OTAGW_MUST_CHECK;
/* Changes name, properties and secureKey ("" removes it) as given.
 * Other fields: -EINVAL. -ENOENT. */
int devices_update(struct store *st, const char *id, const cJSON *body, struct device *out,
		   struct err_info *e) OTAGW_MUST_CHECK;
/* 0 when secret matches the device's secureKey; -OTAGW_EAUTH when it does
 * not or the device has none; -ENOENT for an unknown device. */
int devices_check_key(struct store *st, const char *id, const char *secret) OTAGW_MUST_CHECK;
int devices_get(struct store *st, const char *id, struct device *out,
		struct err_info *e) OTAGW_MUST_CHECK;
/* Deletes the row only; callers cancel the device's records first. -ENOENT. */
int devices_delete(struct store *st, const char *id, struct err_info *e) OTAGW_MUST_CHECK;
/* A page (0-based) ordered by id; product_id NULL for all. */
int devices_list(struct store *st, const char *product_id, unsigned page, unsigned size,
		 cJSON **items, int64_t *total) OTAGW_MUST_CHECK;
/* A device's report: sets firmwareVersion, and properties when not NULL
 * (JSON object text), and lastSeen. An unknown device is created when
 * product_id is not empty, else -ENOENT. A known device whose productId
 * differs from a non-empty product_id: -EINVAL. */
int devices_report(struct store *st, const char *id, const char *product_id,
		   const char *version, const char *properties, int64_t ts,
		   struct err_info *e) OTAGW_MUST_CHECK;
/* Marks online/offline with the transport name, and lastSeen = ts. */
int devices_set_online(struct store *st, const char *id, const char *transport, bool online,
		       int64_t ts) OTAGW_MUST_CHECK;
/* Marks every device offline (start-up: no session survives a restart). */
int devices_all_offline(struct store *st) OTAGW_MUST_CHECK;
cJSON *device_to_json(const struct device *d);
/* Calls fn for every device seen after since (ms) that has reported a
 * firmware version; fn returning non-zero stops the walk (returned). */
int devices_seen_since(struct store *st, int64_t since,
		       int (*fn)(void *ctx, const struct device *d), void *ctx) OTAGW_MUST_CHECK;
/* How many devices are known (*known), and fn(ctx, transport, n) for each
 * transport with n > 0 devices online now. */
int devices_census(struct store *st, int64_t *known,
		   void (*fn)(void *ctx, const char *transport, int64_t n), void *ctx) OTAGW_MUST_CHECK;

#endif
