/* SPDX-License-Identifier: MIT */
/* images.h - the gateway's side of the image cache: which firmware has
 * which verified image; downloads (started when a task is published, at
 * most max_downloads at once, transient failures retried with capped
 * backoff and jitter, permanent ones failed with the reason); local
 * uploads; the quota with LRU eviction and pinning (an image that a task
 * with waiting/processing records needs is never evicted); and, at start,
 * reconciliation of the files on disk with the index.
 * Files live in cache/ (cache.h), transfers in fetch.h. This module owns
 * the cache_entry table and the firmware.image_* columns.
 * Image states (firmware.image.state): none, downloading (bytes of total),
 * ready, failed (reason), missing (indexed but gone from disk).
 * Must not: touch sockets, block the loop. */
#ifndef OTAGW_IMAGES_H
#define OTAGW_IMAGES_H

#include <cJSON.h>
#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "err.h"
#include "fetch.h"
#include "store.h"

struct images_cfg {
	uint64_t max_bytes;           /* quota of verified images */
	uint64_t min_free_bytes;      /* disk left free */
	unsigned max_downloads;
	unsigned max_retry_delay;     /* s */
	const char *signing_key_pem;  /* PEM text for ecdsa-p256, or NULL */
};

struct images;
struct images_upload;

/* st, c, f (NULL: no downloads) and ctx (timers) are borrowed until
 * images_free(); cfg's strings are copied. */
int images_new(struct images **out, struct store *st, struct cache *c, struct fetch *f,
	       struct lws_context *ctx, const struct images_cfg *cfg,
	       struct err_info *e) OTAGW_MUST_CHECK;
/* Cancels downloads (keeping their partials for a resume). NULL: no-op. */
void images_free(struct images *im);

/* Start-up: drops index rows whose file is gone (their firmware becomes
 * missing), removes partials nobody resumes, re-hashes every image in
 * slices from the loop (a file that does not match its name is removed and
 * logged), and resumes interrupted downloads. */
int images_reconcile(struct images *im) OTAGW_MUST_CHECK;

/* Makes sure firmware_id's image is on its way: starts or queues a
 * download unless it is ready or already downloading. A firmware without
 * an http(s) url stays "none" (upload it). */
int images_prefetch(struct images *im, const char *firmware_id) OTAGW_MUST_CHECK;
/* The firmware's url, size or sign changed: forget its image state. */
void images_firmware_changed(struct images *im, const char *firmware_id);

/* Opens firmware_id's verified image for reading: *fd (caller closes),
 * *size, sha256_hex (may be NULL). Touches lastUsed. -EAGAIN while it is
 * downloading, -ENOENT when there is none (or it failed). */
int images_open(struct images *im, const char *firmware_id, int *fd, uint64_t *size,
		char *sha256_hex) OTAGW_MUST_CHECK;

/* A local upload, streamed: begin (length = Content-Length, 0 unknown),
 * feed pieces, end (verify and publish) or abort. On 0 from begin, *out is
 * the caller's until _end() or _abort(), which both free it. -EBUSY while a
 * download of the same firmware runs, -ENOSPC when it cannot fit, -EFBIG /
 * -EBADMSG when length is above / below the firmware's size. */
int images_upload_begin(struct images *im, const char *firmware_id, uint64_t length,
			struct images_upload **out, struct err_info *e) OTAGW_MUST_CHECK;
int images_upload_feed(struct images_upload *u, const void *buf, size_t len,
		       struct err_info *e) OTAGW_MUST_CHECK;
int images_upload_end(struct images_upload *u, struct err_info *e) OTAGW_MUST_CHECK;
void images_upload_abort(struct images_upload *u);   /* NULL: no-op */

/* An image verified and published into the cache by someone else (an
 * offline bundle) becomes firmware_id's image: indexed and marked ready.
 * Call inside the transaction that creates the firmware. */
int images_adopt(struct images *im, const char *firmware_id, const char *sha256_hex,
		 uint64_t size) OTAGW_MUST_CHECK;
/* True when firmware_id's image is verified and in the cache. */
bool images_ready(struct images *im, const char *firmware_id);
/* fn(arg, firmware_id) runs on the loop after a download or upload made
 * firmware_id's image ready (the core then pushes what waited for it). */
void images_on_ready(struct images *im, void (*fn)(void *arg, const char *firmware_id),
		     void *arg);
/* Removes image sha256_hex (file and index row) unless a firmware uses
 * it: the leftovers of an import that did not finish. 0 removed or absent,
 * -EBUSY in use. */
int images_drop_unused(struct images *im, const char *sha256_hex) OTAGW_MUST_CHECK;
/* The cache (borrowed for as long as im lives). */
struct cache *images_cache(struct images *im);
/* The quota of verified images in bytes. */
uint64_t images_quota(const struct images *im);

/* Figures for /metrics. */
struct images_stats {
	int64_t entries, bytes;         /* verified images in the cache */
	unsigned downloads;             /* running now */
	unsigned queued;                /* waiting for a download slot or a retry */
	uint64_t failed;                /* downloads failed for good, since start */
	uint64_t retries;               /* failed attempts that were retried */
};
int images_stats(struct images *im, struct images_stats *out) OTAGW_MUST_CHECK;

/* {"state", "sha256", "bytes", "total", "reason"} for firmware_id; NULL on
 * ENOMEM. */
cJSON *images_firmware_json(struct images *im, const char *firmware_id);
/* GET /api/cache: {"usedBytes", "maxBytes", "freeDiskBytes", "downloads",
 * "items": [{"sha256", "size", "lastUsed", "pinned", "firmwareIds"}]}. */
int images_list(struct images *im, cJSON **out) OTAGW_MUST_CHECK;
/* Removes an unpinned image: -EBUSY when pinned, -ENOENT when unknown. */
int images_remove(struct images *im, const char *sha256_hex, struct err_info *e) OTAGW_MUST_CHECK;

#endif
