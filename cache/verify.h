/* SPDX-License-Identifier: MIT */
/* verify.h - digests, signatures and secrets with mbedTLS: the one file
 * that knows mbedTLS' API version (2.28 uses the *_ret calls; 3.x drops the
 * suffix). Incremental md5/sha256 for images (saved and restored across
 * restarts), ECDSA P-256 image signatures (and signing, for the bundle
 * tool), hex, and salted hashing of device secrets
 * ("sha256$<salt hex>$<digest hex>").
 * Must not: do I/O or log; allocate only in verify_digest_new() and
 * verify_digest_load() (and mbedTLS' own key parsing). */
#ifndef OTAGW_VERIFY_H
#define OTAGW_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum verify_method { VERIFY_MD5, VERIFY_SHA256 };

#define VERIFY_DIGEST_MAX 32
#define VERIFY_SECRET_HASH_MAX 140   /* "sha256$" + 32 + "$" + 64 + NUL, rounded */
#define VERIFY_DIGEST_STATE_MAX 256  /* a verify_digest_save() */
#define VERIFY_SIG_B64_CAP 128       /* base64 of a DER P-256 signature (<= 72 bytes) + NUL */

struct verify_digest;

/* A running digest. On 0, *out is the caller's until verify_digest_free(). */
int verify_digest_new(struct verify_digest **out, enum verify_method m) OTAGW_MUST_CHECK;
int verify_digest_update(struct verify_digest *d, const void *p, size_t n) OTAGW_MUST_CHECK;
/* Writes the digest (16 or 32 bytes) to out and its length to *n. */
int verify_digest_finish(struct verify_digest *d, uint8_t out[VERIFY_DIGEST_MAX],
			 size_t *n) OTAGW_MUST_CHECK;
void verify_digest_free(struct verify_digest *d);   /* NULL: no-op */
enum verify_method verify_digest_method(const struct verify_digest *d);

/* A running digest as bytes, to continue it after a restart: a header
 * (magic, method, context size, MBEDTLS_VERSION_NUMBER) and the context.
 * Only the same build reads it back. Writes *len bytes (at most
 * VERIFY_DIGEST_STATE_MAX) into buf[cap]; -ENOSPC when cap is too small,
 * -ENOTSUP when mbedTLS uses alternative (possibly hardware) contexts. */
int verify_digest_save(const struct verify_digest *d, void *buf, size_t cap,
		       size_t *len) OTAGW_MUST_CHECK;
/* The inverse: on 0, *out is the caller's until verify_digest_free().
 * -EINVAL for bytes that are not a verify_digest_save() of this build. */
int verify_digest_load(struct verify_digest **out, const void *buf, size_t len) OTAGW_MUST_CHECK;

/* Verifies sig_b64 (base64 of a DER ECDSA signature) over the SHA-256
 * digest sha256 with key_pem (PEM text of an EC P-256 public key). 0 when
 * it verifies; -OTAGW_ESIGNATURE when it does not; -EINVAL for a key that
 * is not a P-256 public key, or for bad base64. e says which. */
int verify_ecdsa_p256(const char *key_pem, const uint8_t sha256[32], const char *sig_b64,
		      struct err_info *e) OTAGW_MUST_CHECK;
/* The -EINVAL half of verify_ecdsa_p256() alone, so a download can be
 * refused before its first byte when its key or signature cannot work. */
int verify_ecdsa_p256_inputs(const char *key_pem, const char *sig_b64,
			     struct err_info *e) OTAGW_MUST_CHECK;
/* Signs sha256 with key_pem (PEM text of an EC P-256 private key, not
 * encrypted): writes base64 of the DER signature, NUL-terminated, into
 * sig_b64[cap] (VERIFY_SIG_B64_CAP is always enough). -EINVAL bad key,
 * -ENOSPC cap too small, -EIO on failure. For `otagw bundle create`; the
 * daemon never holds a private key. */
int verify_ecdsa_p256_sign(const char *key_pem, const uint8_t sha256[32], char *sig_b64,
			   size_t cap, struct err_info *e) OTAGW_MUST_CHECK;

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
