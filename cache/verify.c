/* SPDX-License-Identifier: MIT */
/* verify.c - mbedTLS digests and salted secret hashes; see verify.h. */
#include "verify.h"

#include <mbedtls/md5.h>
#include <mbedtls/version.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util.h"

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define VERIFY_MBED(call) mbedtls_##call
#else
#define VERIFY_MBED(call) mbedtls_##call##_ret
#endif

struct verify_digest {
	enum verify_method method;
	union {
		mbedtls_md5_context md5;
		mbedtls_sha256_context sha256;
	} u;
};

int verify_digest_new(struct verify_digest **out, enum verify_method m)
{
	struct verify_digest *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	d->method = m;
	if (m == VERIFY_MD5) {
		mbedtls_md5_init(&d->u.md5);
		rc = VERIFY_MBED(md5_starts)(&d->u.md5);
	} else {
		mbedtls_sha256_init(&d->u.sha256);
		rc = VERIFY_MBED(sha256_starts)(&d->u.sha256, 0);
	}
	if (rc) {
		verify_digest_free(d);
		return -EIO;
	}
	*out = d;
	return 0;
}

int verify_digest_update(struct verify_digest *d, const void *p, size_t n)
{
	int rc = d->method == VERIFY_MD5 ? VERIFY_MBED(md5_update)(&d->u.md5, p, n)
					 : VERIFY_MBED(sha256_update)(&d->u.sha256, p, n);

	return rc ? -EIO : 0;
}

int verify_digest_finish(struct verify_digest *d, uint8_t out[VERIFY_DIGEST_MAX], size_t *n)
{
	int rc;

	if (d->method == VERIFY_MD5) {
		rc = VERIFY_MBED(md5_finish)(&d->u.md5, out);
		*n = 16;
	} else {
		rc = VERIFY_MBED(sha256_finish)(&d->u.sha256, out);
		*n = 32;
	}
	return rc ? -EIO : 0;
}

void verify_digest_free(struct verify_digest *d)
{
	if (!d)
		return;
	if (d->method == VERIFY_MD5)
		mbedtls_md5_free(&d->u.md5);
	else
		mbedtls_sha256_free(&d->u.sha256);
	free(d);
}

int verify_sha256(const void *p, size_t n, uint8_t out[32])
{
	return VERIFY_MBED(sha256)(p, n, out, 0) ? -EIO : 0;
}

void verify_hex(const uint8_t *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* sha256(salt_hex || secret) as hex into out[65]. */
static int verify_salted(const char *salt_hex, const char *secret, char out[65])
{
	struct verify_digest *d;
	uint8_t dig[VERIFY_DIGEST_MAX];
	size_t n;
	int rc = verify_digest_new(&d, VERIFY_SHA256);

	if (rc)
		return rc;
	rc = verify_digest_update(d, salt_hex, strlen(salt_hex));
	if (!rc)
		rc = verify_digest_update(d, secret, strlen(secret));
	if (!rc)
		rc = verify_digest_finish(d, dig, &n);
	verify_digest_free(d);
	if (!rc)
		verify_hex(dig, n, out);
	return rc;
}

int verify_secret_hash(const char *secret, char out[VERIFY_SECRET_HASH_MAX])
{
	uint8_t salt[16];
	char salt_hex[33], dig[65];
	int rc;

	if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt))
		return -EIO;
	verify_hex(salt, sizeof(salt), salt_hex);
	rc = verify_salted(salt_hex, secret, dig);
	if (rc)
		return rc;
	snprintf(out, VERIFY_SECRET_HASH_MAX, "sha256$%s$%s", salt_hex, dig);
	return 0;
}

bool verify_secret_check(const char *secret, const char *stored)
{
	char salt_hex[33], dig[65];

	if (strncmp(stored, "sha256$", 7) || strlen(stored) != 7 + 32 + 1 + 64 || stored[39] != '$')
		return false;
	memcpy(salt_hex, stored + 7, 32);
	salt_hex[32] = '\0';
	if (verify_salted(salt_hex, secret, dig))
		return false;
	return util_ct_equal(dig, stored + 40);
}
