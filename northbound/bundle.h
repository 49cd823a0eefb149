/* SPDX-License-Identifier: MIT */
/* bundle.h - offline bundles in (README: Offline bundles): an archive read
 * with libarchive holding manifest.json, optionally manifest.sig (ECDSA
 * P-256 over the manifest's SHA-256, checked with [gateway] bundle_key), and
 * the images the manifest names. An import runs from the loop in slices:
 * every image entry streams straight into a cache partial (hashed as it
 * is read, never extracted to a path from the archive) and is verified;
 * only when every image is in are firmware and tasks created, in one
 * transaction, and pushes sent. Any failure removes the images this import
 * added and changes nothing else. Entries with absolute or `..` paths,
 * links, devices, names the manifest does not give, sizes beyond the
 * manifest's, a total beyond the cache quota, or more entries than the
 * manifest accounts for are refused.
 *
 * Ways in: POST /api/bundles (the body is spooled to <data>/bundles/ then
 * imported), a file path (the watched [gateway] import_dir; a report file
 * NAME.report.txt is written beside it). Out: GET /api/export.
 * Must not: take a file name from the archive, hold the loop for long,
 * leave a half-imported bundle. */
#ifndef OTAGW_BUNDLE_H
#define OTAGW_BUNDLE_H

#include <libwebsockets.h>
#include <stdbool.h>

#include "core.h"
#include "err.h"
#include "http.h"
#include "manifest.h"

#define BUNDLE_ENTRIES_SLACK 256            /* directory entries allowed */
#define BUNDLE_JOBS_KEPT 32                 /* finished imports GET can show */

struct bundles_cfg {
	const char *data_dir;        /* spool in <data_dir>/bundles; copied */
	const char *key_pem;         /* PEM text of the signers' public key, or NULL */
	bool require_signed;
	const char *import_dir;      /* watched; NULL or "" = none; copied */
	unsigned import_interval;    /* s */
	const char *gateway_id;      /* for exports; "" when none */
};

struct bundles;

/* core must have images (the cache). core and ctx are borrowed until
 * bundles_free(). -ENOMEM, -EINVAL (no image cache), or the spool dir's
 * error. */
int bundles_new(struct bundles **out, struct core *core, struct lws_context *ctx,
		const struct bundles_cfg *cfg, struct err_info *e) OTAGW_MUST_CHECK;
/* Stops imports (each is abandoned as failed: nothing applied) and timers.
 * Call before the lws context is destroyed. NULL: no-op. */
void bundles_free(struct bundles *b);

/* Starts importing the archive at path. report: a file to write the
 * result to (or NULL); spooled: path is ours (deleted afterwards). On 0,
 * id[] names the import for GET /api/bundles/{id}. */
int bundles_import(struct bundles *b, const char *path, const char *report, bool spooled,
		   char id[OTAGW_ID_MAX], struct err_info *e) OTAGW_MUST_CHECK;

/* POST /api/bundles streamed to the spool; ctx is a struct bundles. The
 * token check is api_authorized()'s, through checker (may be NULL). */
struct bundles_upload_ctx {
	struct bundles *b;
	bool (*authorized)(const void *api, const struct http_req *req);
	const void *api;
};
extern const struct http_stream_ops bundles_upload;
/* GET /api/bundles[/{id}] and GET /api/export; ctx is a struct bundles.
 * Called by the API after its token check. */
int bundles_http(void *ctx, const struct http_req *req, struct http_resp *resp);

#endif
