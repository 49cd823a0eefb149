/* SPDX-License-Identifier: MIT */
/* cache.h - the content-addressed image store on disk:
 *   <dir>/<sha256-hex>          verified, complete, read-only images
 *   <dir>/partial/<name>.part   downloads and uploads in progress
 *   <dir>/partial/<name>.state  checkpoint of a partial: its length and the
 *                               running digests, so a resume never re-reads
 * A writer hashes bytes as they arrive (SHA-256 always: it names the file;
 * MD5 too when that is the expected digest), stops at once when the data
 * grows past the expected size, and on commit verifies digest, size and an
 * optional ECDSA signature, fsyncs, renames into place and fsyncs the
 * directory. A crash at any point leaves no image or a complete verified one.
 * Must not: open sockets, call SQLite (the gateway keeps the index), take a
 * file name from outside (final names are digests we computed; partial
 * names are tokens the caller generated: cache_name_valid() checks them). */
#ifndef OTAGW_CACHE_H
#define OTAGW_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "verify.h"

#define CACHE_HEX_LEN 64
#define CACHE_NAME_MAX 65     /* partial names: 1..64 of [0-9a-f] */

struct cache;
struct cache_writer;

/* What a finished image must be. Fields left zero are not checked. */
struct cache_expect {
	uint64_t size;                       /* bytes; 0 = unknown */
	bool has_digest;
	enum verify_method method;           /* of digest */
	uint8_t digest[VERIFY_DIGEST_MAX];   /* 16 (md5) or 32 (sha256) bytes */
	const char *ecdsa_sig_b64;           /* base64 DER ECDSA P-256 over SHA-256, or NULL */
	const char *ecdsa_key_pem;           /* the public key (PEM text), with ecdsa_sig_b64 */
};

/* Opens (creating) dir and dir/partial. On 0, *out is the caller's until
 * cache_close(). */
int cache_open(struct cache **out, const char *dir, struct err_info *e) OTAGW_MUST_CHECK;
void cache_close(struct cache *c);                 /* NULL: no-op */

/* True for 1..64 lowercase hex characters (partial names, digests). */
bool cache_name_valid(const char *name);

/* Opens the partial called name for writing. With resume, an existing
 * partial continues from its last checkpoint (*have = bytes kept; bytes past
 * the checkpoint are cut off); otherwise, or without a usable checkpoint, it
 * starts from zero (*have = 0). x is copied. On 0, *out is the caller's
 * until _commit() or _abort(), which both free it. */
int cache_writer_open(struct cache *c, const char *name, const struct cache_expect *x,
		      bool resume, struct cache_writer **out, uint64_t *have,
		      struct err_info *e) OTAGW_MUST_CHECK;
/* Appends and hashes len bytes. -EFBIG when the image would grow past the
 * expected size (nothing written), -ENOSPC/-EIO from the disk. */
int cache_writer_feed(struct cache_writer *w, const void *buf, size_t len) OTAGW_MUST_CHECK;
/* Truncates to zero and restarts the digests (a server that ignored our
 * Range and sent the whole image again). */
int cache_writer_reset(struct cache_writer *w) OTAGW_MUST_CHECK;
/* Bytes written so far (including resumed ones). */
uint64_t cache_writer_size(const struct cache_writer *w);
/* fdatasyncs the partial and saves the checkpoint (atomically), so a
 * restart resumes from here. Call every few MiB and when a transfer pauses. */
int cache_writer_checkpoint(struct cache_writer *w) OTAGW_MUST_CHECK;
/* Verifies size, digest and signature, then publishes <dir>/<sha256>. On 0,
 * sha256_hex[65] names the image. On a mismatch the partial is deleted and
 * e says expected vs got (-OTAGW_ESIGNATURE, or -EBADMSG for the size).
 * Frees w either way. */
int cache_writer_commit(struct cache_writer *w, char sha256_hex[CACHE_HEX_LEN + 1],
			struct err_info *e) OTAGW_MUST_CHECK;
/* Stops writing; keep = leave the partial and a checkpoint for a resume,
 * else delete them. Frees w. NULL: no-op. */
void cache_writer_abort(struct cache_writer *w, bool keep);

/* Deletes the partial called name (and its checkpoint), if any. */
void cache_partial_remove(struct cache *c, const char *name);

/* Opens image sha256_hex read-only: *fd (caller closes) and *size.
 * -ENOENT when absent. */
int cache_image_open(struct cache *c, const char *sha256_hex, int *fd,
		     uint64_t *size) OTAGW_MUST_CHECK;
/* Removes image sha256_hex. -ENOENT when absent. */
int cache_image_remove(struct cache *c, const char *sha256_hex) OTAGW_MUST_CHECK;

/* Calls fn for every final image (name, size) and, with partial = true,
 * for every partial (name without ".part", bytes on disk). Files whose
 * names are not ours are skipped (and logged). fn returning non-zero stops
 * the walk. */
typedef int (*cache_scan_fn)(void *arg, const char *name, uint64_t size, bool partial);
int cache_scan(struct cache *c, cache_scan_fn fn, void *arg) OTAGW_MUST_CHECK;

/* Re-hashes image sha256_hex in one call (reconcile on start, in slices
 * driven by the caller's timer via the offset cursor): hashes up to `step`
 * bytes from *offset; returns 1 while more remain, 0 when the file matches
 * its name, -OTAGW_ESIGNATURE when it does not (the file is then removed). */
struct cache_check;
int cache_check_begin(struct cache *c, const char *sha256_hex, struct cache_check **out) OTAGW_MUST_CHECK;
int cache_check_step(struct cache_check *k, size_t step) OTAGW_MUST_CHECK;
void cache_check_end(struct cache_check *k);       /* NULL: no-op */

/* Bytes free for us on the cache's filesystem: statvfs f_bavail. */
int cache_disk_free(struct cache *c, uint64_t *free_bytes) OTAGW_MUST_CHECK;

#endif
