/* SPDX-License-Identifier: MIT */
/* verify.h - digests and secrets with mbedTLS: the one file that knows
 * mbedTLS' API version (2.28 uses the *_ret calls; 3.x drops the suffix).
 * Incremental md5/sha256 for images, hex, and salted hashing of device
 * secrets ("sha256$<salt hex>$<digest hex>").
 * Must not: do I/O, log, allocate except in verify_digest_new(). */
#ifndef OTAGW_VERIFY_H
#define OTAGW_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum verify_method { VERIFY_MD5, VERIFY_SHA256 };

#define VERIFY_DIGEST_MAX 32
#define VERIFY_SECRET_HASH_MAX 140   /* "sha256$" + 32 + "$" + 64 + NUL, rounded */

struct verify_digest;

/* A running digest. On 0, *out is the caller's until verify_digest_free(). */
int verify_digest_new(struct verify_digest **out, enum verify_method m) OTAGW_MUST_CHECK;
int verify_digest_update(struct verify_digest *d, const void *p, size_t n) OTAGW_MUST_CHECK;
/* Writes the digest (16 or 32 bytes) to out and its length to *n. */
int verify_digest_finish(struct verify_digest *d, uint8_t out[VERIFY_DIGEST_MAX],
			 size_t *n) OTAGW_MUST_CHECK;
void verify_digest_free(struct verify_digest *d);   /* NULL: no-op */

/* One-shot SHA-256 of n bytes. */
int verify_sha256(const void *p, size_t n, uint8_t out[32]) OTAGW_MUST_CHECK;
/* Lower-case hex of n bytes into out[2n + 1]. */
void verify_hex(const uint8_t *in, size_t n, char *out);

/* Hashes secret with a fresh random salt into out (VERIFY_SECRET_HASH_MAX). */
int verify_secret_hash(const char *secret, char out[VERIFY_SECRET_HASH_MAX]) OTAGW_MUST_CHECK;
/* True when secret matches stored (a verify_secret_hash() output);
 * compares in constant time. False for an empty or malformed stored. */
bool verify_secret_check(const char *secret, const char *stored);

#endif
