/* SPDX-License-Identifier: MIT */
/* http_dev.h - devices over HTTP: JetLinks' official firmware topics as
 * paths under /device/{productId}/{deviceId}/firmware/ (report, pull,
 * upgrade/progress, upgrade/reply, and GET upgrade?wait=N, a long-poll for
 * pushes), and the verified images under /images/{firmwareId} with
 * single-range Range, If-Range, ETag (the SHA-256) and Last-Modified.
 * This transport only decodes, calls the message core and encodes.
 * Must not: touch the store (the core does), block, buffer an image. */
#ifndef OTAGW_HTTP_DEV_H
#define OTAGW_HTTP_DEV_H

#include <libwebsockets.h>
#include <stdbool.h>

#include "core.h"
#include "err.h"
#include "http.h"

struct http_dev_cfg {
	bool auth_token;          /* Authorization: Bearer <secureKey> on /device */
	unsigned max_poll_wait;   /* s */
	const char *public_url;   /* "http://host:port", no trailing slash; copied */
};

struct http_dev;

/* core (with its images) and ctx (timers) are borrowed until
 * http_dev_free(). On 0, *out is the caller's. */
int http_dev_new(struct http_dev **out, struct core *core, struct lws_context *ctx,
		 const struct http_dev_cfg *cfg, struct err_info *e) OTAGW_MUST_CHECK;
/* Ends open long-polls (their devices go offline). Call before the lws
 * context is destroyed. NULL: no-op. */
void http_dev_free(struct http_dev *d);

/* http_handler for the /device prefix; ctx is a struct http_dev. */
int http_dev_handle(void *ctx, const struct http_req *req, struct http_resp *resp);
/* http_handler for the /images prefix; ctx is a struct http_dev. */
int http_dev_images(void *ctx, const struct http_req *req, struct http_resp *resp);

/* Parses one Range header value against an image of size bytes (exported
 * for tests): 1 and [*first, *last] for a satisfiable single range, 0 to
 * send the whole image (no/multiple/malformed ranges), -ERANGE for an
 * unsatisfiable one (416). */
int http_dev_range(const char *value, uint64_t size, uint64_t *first, uint64_t *last);

#endif
