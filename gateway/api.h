/* SPDX-License-Identifier: MIT */
/* api.h - the local REST API under /api/: firmware, devices, tasks,
 * records, health. JSON in and out; errors {"error": "..."} with a fitting
 * 4xx; lists {"total", "page", "size", "items"} with ?page= (0-based) and
 * ?size=. When a token is configured every request needs
 * "Authorization: Bearer <token>" (compared in constant time).
 * Must not: touch sockets (loop.c does), change state except through the
 * core, catalogue, devices and tasks modules. */
#ifndef OTAGW_API_H
#define OTAGW_API_H

#include <stdbool.h>
#include <stdint.h>

#include "core.h"
#include "http.h"
#include "store.h"

struct images;

#define API_STATUS_MAX 4
#define API_EXT_MAX 4

/* A read-only status resource a module outside gateway/ provides, served
 * at GET /api/{name} (e.g. "serial", "cloud"). fn returns a new cJSON
 * value the API deletes (NULL: 500); arg is borrowed until the API goes. */
struct api_status {
	const char *name;
	void *(*fn)(void *arg);   /* returns cJSON * */
	void *arg;
};

struct api {
	struct core *core;        /* borrowed */
	struct store *st;         /* borrowed */
	struct images *images;    /* borrowed; NULL: no image cache */
	const char *token;        /* borrowed; "" or NULL = no token needed */
	int64_t start_mono_ms;    /* for uptime */
	struct api_status status[API_STATUS_MAX];
	size_t nstatus;
	struct {
		const char *prefix;       /* "/api/bundles": the path or below it */
		http_handler fn;
		void *ctx;
	} ext[API_EXT_MAX];
	size_t next;
};

void api_init(struct api *a, struct core *core, struct store *st, const char *token);
/* Serves fn's answer at GET /api/{name}. -ENOSPC when full, -EINVAL for a
 * name that is not a plain id. */
int api_add_status(struct api *a, const char *name, void *(*fn)(void *arg),
		   void *arg) OTAGW_MUST_CHECK;
/* Hands requests for prefix (and paths below it) to fn once the token is
 * checked: resources of modules outside gateway/ (bundles, export). ctx is
 * borrowed until the API goes. -ENOSPC when full. */
int api_add_handler(struct api *a, const char *prefix, http_handler fn, void *ctx) OTAGW_MUST_CHECK;
/* True when req carries the API token (or none is needed). For stream
 * handlers outside this module that take /api paths. */
bool api_authorized(const struct api *a, const struct http_req *req);
/* The http_handler for the /api prefix; ctx is a struct api. */
int api_handle(void *ctx, const struct http_req *req, struct http_resp *resp);
/* PUT /api/firmware/{id}/image: the raw image, streamed into the cache;
 * ctx is a struct api with images set. */
extern const struct http_stream_ops api_image_upload;

/* exposed for tests/fuzz */
/* True when path matches pattern (a route of the API: '*' stands for one
 * segment that must be a valid id, copied to id; a trailing '/' on path is
 * tolerated). */
bool api_match(const char *pattern, const char *path, char id[OTAGW_ID_MAX]);

#endif
