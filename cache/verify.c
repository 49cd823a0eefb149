/* SPDX-License-Identifier: MIT */
/* verify.c - mbedTLS digests (saved and restored), ECDSA P-256 and salted
 * secret hashes; see verify.h.
 * Must not: do I/O or log; leak mbedTLS types or error codes to callers. */
#include "verify.h"

#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md5.h>
#include <mbedtls/pk.h>
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

#if MBEDTLS_VERSION_NUMBER >= 0x03000000
#define VERIFY_GRP_ID(kp) ((kp)->MBEDTLS_PRIVATE(grp).id)
/* 3.x wants an RNG to parse a private key and the signature buffer's size */
#define VERIFY_PARSE_KEY(pk, k, n, rng) \
	mbedtls_pk_parse_key(pk, k, n, NULL, 0, mbedtls_ctr_drbg_random, rng)
#define VERIFY_PK_SIGN(pk, h, sig, cap, n, rng) \
	mbedtls_pk_sign(pk, MBEDTLS_MD_SHA256, h, 32, sig, cap, n, mbedtls_ctr_drbg_random, rng)
#else
#define VERIFY_GRP_ID(kp) ((kp)->grp.id)
#define VERIFY_PARSE_KEY(pk, k, n, rng) mbedtls_pk_parse_key(pk, k, n, NULL, 0)
#define VERIFY_PK_SIGN(pk, h, sig, cap, n, rng) \
	mbedtls_pk_sign(pk, MBEDTLS_MD_SHA256, h, 32, sig, n, mbedtls_ctr_drbg_random, rng)
#endif

#define VERIFY_STATE_MAGIC 0x4f564447u  /* "OVDG" */
#define VERIFY_SIG_B64_MAX 256          /* a DER P-256 signature is <= 72 bytes, 96 in base64 */
#define VERIFY_SIG_MAX 192              /* decoded bytes */

/* Leads a verify_digest_save(); the context follows as plain bytes. */
struct verify_state_hdr {
	uint32_t magic;
	uint32_t version;     /* MBEDTLS_VERSION_NUMBER of the writer */
	uint32_t method;      /* enum verify_method */
	uint32_t ctx_size;    /* sizeof the context, another guard against other builds */
};

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

enum verify_method verify_digest_method(const struct verify_digest *d)
{
	return d->method;
}

static size_t verify_ctx_size(enum verify_method m)
{
	return m == VERIFY_MD5 ? sizeof(mbedtls_md5_context) : sizeof(mbedtls_sha256_context);
}

int verify_digest_save(const struct verify_digest *d, void *buf, size_t cap, size_t *len)
{
#if defined(MBEDTLS_MD5_ALT) || defined(MBEDTLS_SHA256_ALT)
	return -ENOTSUP;    /* alternative contexts may hold pointers or hardware state */
#else
	struct verify_state_hdr h = {
		.magic = VERIFY_STATE_MAGIC,
		.version = MBEDTLS_VERSION_NUMBER,
		.method = (uint32_t)d->method,
		.ctx_size = (uint32_t)verify_ctx_size(d->method),
	};

	if (cap < sizeof(h) + h.ctx_size)
		return -ENOSPC;
	memcpy(buf, &h, sizeof(h));
	memcpy((uint8_t *)buf + sizeof(h), &d->u, h.ctx_size);
	*len = sizeof(h) + h.ctx_size;
	return 0;
#endif
}

/* 0 when h heads a state of len bytes this build wrote. */
static int verify_state_check(const struct verify_state_hdr *h, size_t len)
{
	if (h->magic != VERIFY_STATE_MAGIC || h->version != MBEDTLS_VERSION_NUMBER)
		return -EINVAL;
	if (h->method != VERIFY_MD5 && h->method != VERIFY_SHA256)
		return -EINVAL;
	if (h->ctx_size != verify_ctx_size((enum verify_method)h->method) ||
	    len != sizeof(*h) + h->ctx_size)
		return -EINVAL;
	return 0;
}

int verify_digest_load(struct verify_digest **out, const void *buf, size_t len)
{
	struct verify_state_hdr h;
	struct verify_digest *d;
	int rc;

	if (len < sizeof(h))
		return -EINVAL;
	memcpy(&h, buf, sizeof(h));
	rc = verify_state_check(&h, len);
	if (rc)
		return rc;
	rc = verify_digest_new(&d, (enum verify_method)h.method);
	if (rc)
		return rc;
	memcpy(&d->u, (const uint8_t *)buf + sizeof(h), h.ctx_size);
#if MBEDTLS_VERSION_NUMBER < 0x03000000
	if (d->method == VERIFY_SHA256 && d->u.sha256.is224) {
		verify_digest_free(d);
		return -EINVAL;
	}
#endif
	*out = d;
	return 0;
}

/* Parses key_pem into pk (initialised by the caller) and insists on P-256. */
static int verify_p256_key(mbedtls_pk_context *pk, const char *key_pem, struct err_info *e)
{
	mbedtls_pk_type_t t;

	if (!key_pem || !key_pem[0] ||
	    mbedtls_pk_parse_public_key(pk, (const unsigned char *)key_pem, strlen(key_pem) + 1))
		return err_set(e, -EINVAL, "ECDSA key: not a PEM public key");
	t = mbedtls_pk_get_type(pk);
	if (t != MBEDTLS_PK_ECKEY && t != MBEDTLS_PK_ECDSA)
		return err_set(e, -EINVAL, "ECDSA key: not an EC key");
	if (VERIFY_GRP_ID(mbedtls_pk_ec(*pk)) != MBEDTLS_ECP_DP_SECP256R1)
		return err_set(e, -EINVAL, "ECDSA key: not a P-256 key");
	return 0;
}

/* Decodes the base64 signature b64 into sig[VERIFY_SIG_MAX], *n bytes. */
static int verify_sig_decode(const char *b64, uint8_t *sig, size_t *n, struct err_info *e)
{
	size_t len = b64 ? strnlen(b64, VERIFY_SIG_B64_MAX + 1) : 0;

	if (!len || len > VERIFY_SIG_B64_MAX ||
	    mbedtls_base64_decode(sig, VERIFY_SIG_MAX, n, (const unsigned char *)b64, len) || !*n)
		return err_set(e, -EINVAL, "ECDSA signature: not base64 of at most %d bytes",
			       VERIFY_SIG_MAX);
	return 0;
}

int verify_ecdsa_p256(const char *key_pem, const uint8_t sha256[32], const char *sig_b64,
		      struct err_info *e)
{
	mbedtls_pk_context pk;
	uint8_t sig[VERIFY_SIG_MAX];
	size_t n = 0;
	int rc;

	mbedtls_pk_init(&pk);
	rc = verify_p256_key(&pk, key_pem, e);
	if (!rc)
		rc = verify_sig_decode(sig_b64, sig, &n, e);
	if (!rc && mbedtls_pk_verify(&pk, MBEDTLS_MD_SHA256, sha256, 32, sig, n))
		rc = err_set(e, -OTAGW_ESIGNATURE, "ECDSA signature does not verify");
	mbedtls_pk_free(&pk);
	return rc;
}

int verify_ecdsa_p256_inputs(const char *key_pem, const char *sig_b64, struct err_info *e)
{
	mbedtls_pk_context pk;
	uint8_t sig[VERIFY_SIG_MAX];
	size_t n = 0;
	int rc;

	mbedtls_pk_init(&pk);
	rc = verify_p256_key(&pk, key_pem, e);
	if (!rc)
		rc = verify_sig_decode(sig_b64, sig, &n, e);
	mbedtls_pk_free(&pk);
	return rc;
}

/* Parses key_pem (a private key) into pk and insists on P-256. */
static int verify_p256_private(mbedtls_pk_context *pk, const char *key_pem,
			       mbedtls_ctr_drbg_context *rng, struct err_info *e)
{
	mbedtls_pk_type_t t;

	(void)rng;                   /* only 3.x uses it here */
	if (!key_pem || !key_pem[0] ||
	    VERIFY_PARSE_KEY(pk, (const unsigned char *)key_pem, strlen(key_pem) + 1, rng))
		return err_set(e, -EINVAL, "ECDSA key: not an unencrypted PEM private key");
	t = mbedtls_pk_get_type(pk);
	if (t != MBEDTLS_PK_ECKEY && t != MBEDTLS_PK_ECDSA)
		return err_set(e, -EINVAL, "ECDSA key: not an EC key");
	if (VERIFY_GRP_ID(mbedtls_pk_ec(*pk)) != MBEDTLS_ECP_DP_SECP256R1)
		return err_set(e, -EINVAL, "ECDSA key: not a P-256 key");
	return 0;
}

int verify_ecdsa_p256_sign(const char *key_pem, const uint8_t sha256[32], char *sig_b64,
			   size_t cap, struct err_info *e)
{
	static const unsigned char pers[] = "otagw-sign";
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context rng;
	mbedtls_pk_context pk;
	uint8_t sig[VERIFY_SIG_MAX];
	size_t n = 0, olen = 0;
	int rc = 0;

	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&rng);
	mbedtls_pk_init(&pk);
	if (mbedtls_ctr_drbg_seed(&rng, mbedtls_entropy_func, &entropy, pers, sizeof(pers) - 1))
		rc = err_set(e, -EIO, "ECDSA: cannot seed the random generator");
	if (!rc)
		rc = verify_p256_private(&pk, key_pem, &rng, e);
	if (!rc && VERIFY_PK_SIGN(&pk, sha256, sig, sizeof(sig), &n, &rng))
		rc = err_set(e, -EIO, "ECDSA: signing failed");
	if (!rc && mbedtls_base64_encode((unsigned char *)sig_b64, cap, &olen, sig, n))
		rc = err_set(e, -ENOSPC, "ECDSA: %zu bytes are too few for the signature", cap);
	mbedtls_pk_free(&pk);
	mbedtls_ctr_drbg_free(&rng);
	mbedtls_entropy_free(&entropy);
	return rc;
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
