/* SPDX-License-Identifier: MIT */
/* catalogue.h - the firmware catalogue: create, edit, view, list, delete.
 * Input arrives as a JSON object (REST body, bundle manifest entry, cloud
 * message) and is validated here, field by field, with the JetLinks names:
 * productId, name, version, versionOrder, url, size, sign, signMethod,
 * properties (object), description; plus an optional client-chosen id.
 * Unknown fields are refused. (productId, version) is unique.
 * Must not: touch records' state (records.c), sockets, or the cache files. */
#ifndef OTAGW_CATALOGUE_H
#define OTAGW_CATALOGUE_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "otagw_limits.h"
#include "store.h"

struct firmware {
	char id[OTAGW_ID_MAX];
	char product_id[OTAGW_ID_MAX];
	char name[OTAGW_NAME_MAX];
	char version[OTAGW_VERSION_MAX];
	int64_t version_order;
	char url[OTAGW_URL_MAX];
	uint64_t size;                       /* bytes */
	char sign[OTAGW_SIGN_MAX];
	char sign_method[OTAGW_SIGN_METHOD_MAX]; /* "", "md5", "sha256" (lower case) */
	char *properties;                    /* JSON object text; owned */
	char *description;                   /* owned */
	int64_t create_time, update_time;    /* ms */
	bool cloud;                          /* made by the cloud (origin "cloud") */
};

/* Frees what fw owns (properties, description) and zeroes it. */
void firmware_clear(struct firmware *fw);

/* Validates body and inserts. Required: productId, name, version. On 0, *out
 * is filled (caller clears it). -EINVAL bad field (e names it), -EEXIST
 * duplicate id or (productId, version). */
int catalogue_create(struct store *st, const cJSON *body, struct firmware *out,
		     struct err_info *e) OTAGW_MUST_CHECK;
/* Changes the fields present in body (id is not changeable). -ENOENT,
 * -EINVAL, -EEXIST. On 0, *out holds the new row. */
int catalogue_update(struct store *st, const char *id, const cJSON *body, struct firmware *out,
		     struct err_info *e) OTAGW_MUST_CHECK;
int catalogue_get(struct store *st, const char *id, struct firmware *out,
		  struct err_info *e) OTAGW_MUST_CHECK;
/* Looks a firmware up by (productId, version): 0 or -ENOENT. */
int catalogue_find(struct store *st, const char *product_id, const char *version,
		   struct firmware *out) OTAGW_MUST_CHECK;
/* Deletes a firmware and its finished tasks and records (history rows stay).
 * -EBUSY when a task with unfinished (waiting/processing) records uses it. */
int catalogue_delete(struct store *st, const char *id, struct err_info *e) OTAGW_MUST_CHECK;
/* A page (0-based) of firmware ordered by productId, versionOrder desc;
 * product_id NULL for all. *items is a new cJSON array the caller deletes. */
int catalogue_list(struct store *st, const char *product_id, unsigned page, unsigned size,
		   cJSON **items, int64_t *total) OTAGW_MUST_CHECK;
/* Marks firmware id as the cloud's (call in the transaction that created
 * it). Local edits of it are then refused by the REST API. */
int catalogue_set_cloud(struct store *st, const char *id) OTAGW_MUST_CHECK;
/* The REST/JSON form of fw (JetLinks field names). NULL on ENOMEM. */
cJSON *firmware_to_json(const struct firmware *fw);

#endif
