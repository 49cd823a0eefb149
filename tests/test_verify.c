/* SPDX-License-Identifier: MIT */
/* test_verify.c - md5/sha256 against known vectors, saving and restoring a
 * running digest, salted secrets, and ECDSA P-256 with key pairs made here
 * by mbedTLS: good, foreign-key, changed-image, hostile key and base64. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verify.h"

#define ABC_MD5 "900150983cd24fb0d6963f7d28e17f72"
#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* A key pair of the curve grp, its public half as PEM. */
struct keypair {
	mbedtls_pk_context pk;
	char pem[1024];
};

struct rng {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
};

static void hex_of(struct verify_digest *d, char *out)
{
	uint8_t dig[VERIFY_DIGEST_MAX];
	size_t n;

	assert_int_equal(verify_digest_finish(d, dig, &n), 0);
	verify_hex(dig, n, out);
}

static void digest_hex(enum verify_method m, const char *s, char *out)
{
	struct verify_digest *d;

	assert_int_equal(verify_digest_new(&d, m), 0);
	assert_int_equal(verify_digest_update(d, s, strlen(s)), 0);
	hex_of(d, out);
	verify_digest_free(d);
}

static void test_known_vectors(void **state)
{
	char hex[2 * VERIFY_DIGEST_MAX + 1];
	uint8_t dig[32];

	digest_hex(VERIFY_MD5, "abc", hex);
	assert_string_equal(hex, ABC_MD5);
	digest_hex(VERIFY_SHA256, "abc", hex);
	assert_string_equal(hex, ABC_SHA256);
	assert_int_equal(verify_sha256("abc", 3, dig), 0);
	verify_hex(dig, 32, hex);
	assert_string_equal(hex, ABC_SHA256);
	digest_hex(VERIFY_SHA256, "", hex);
	assert_string_equal(hex,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* Hash "a", save, load, hash "bc": the result is the hash of "abc". */
static void save_load_continue(enum verify_method m, const char *want)
{
	struct verify_digest *d, *r;
	uint8_t buf[VERIFY_DIGEST_STATE_MAX];
	char hex[2 * VERIFY_DIGEST_MAX + 1];
	size_t len;

	assert_int_equal(verify_digest_new(&d, m), 0);
	assert_int_equal(verify_digest_update(d, "a", 1), 0);
	assert_int_equal(verify_digest_save(d, buf, sizeof(buf), &len), 0);
	assert_true(len <= VERIFY_DIGEST_STATE_MAX);
	verify_digest_free(d);
	assert_int_equal(verify_digest_load(&r, buf, len), 0);
	assert_int_equal(verify_digest_method(r), m);
	assert_int_equal(verify_digest_update(r, "bc", 2), 0);
	hex_of(r, hex);
	assert_string_equal(hex, want);
	verify_digest_free(r);
}

static void test_save_load(void **state)
{
	save_load_continue(VERIFY_MD5, ABC_MD5);
	save_load_continue(VERIFY_SHA256, ABC_SHA256);
}

static void test_load_hostile(void **state)
{
	struct verify_digest *d, *r = NULL;
	uint8_t buf[VERIFY_DIGEST_STATE_MAX], bad[VERIFY_DIGEST_STATE_MAX];
	size_t len;

	assert_int_equal(verify_digest_new(&d, VERIFY_SHA256), 0);
	assert_int_equal(verify_digest_save(d, buf, 8, &len), -ENOSPC);
	assert_int_equal(verify_digest_save(d, buf, sizeof(buf), &len), 0);
	verify_digest_free(d);
	assert_int_equal(verify_digest_load(&r, buf, 0), -EINVAL);
	assert_int_equal(verify_digest_load(&r, buf, 15), -EINVAL);
	assert_int_equal(verify_digest_load(&r, buf, len - 1), -EINVAL);
	/* Each header field changed: magic, mbedTLS version, method, size. */
	for (size_t i = 0; i < 16; i += 4) {
		memcpy(bad, buf, len);
		bad[i] ^= 0x40;
		assert_int_equal(verify_digest_load(&r, bad, len), -EINVAL);
	}
	assert_null(r);
}

static void test_secret(void **state)
{
	char h1[VERIFY_SECRET_HASH_MAX], h2[VERIFY_SECRET_HASH_MAX];

	assert_int_equal(verify_secret_hash("s3cret", h1), 0);
	assert_int_equal(verify_secret_hash("s3cret", h2), 0);
	assert_string_not_equal(h1, h2);                       /* fresh salt */
	assert_int_equal(strncmp(h1, "sha256$", 7), 0);
	assert_true(verify_secret_check("s3cret", h1));
	assert_true(verify_secret_check("s3cret", h2));
	assert_false(verify_secret_check("s3cret!", h1));
	assert_false(verify_secret_check("", h1));
	assert_false(verify_secret_check("s3cret", ""));
	assert_false(verify_secret_check("s3cret", "sha256$xx$yy"));
	h1[strlen(h1) - 1] ^= 1;
	assert_false(verify_secret_check("s3cret", h1));
}

/* ---- ECDSA ---- */

static void rng_init(struct rng *r)
{
	mbedtls_entropy_init(&r->entropy);
	mbedtls_ctr_drbg_init(&r->drbg);
	assert_int_equal(mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy,
					       (const unsigned char *)"test_verify", 11), 0);
}

static void rng_free(struct rng *r)
{
	mbedtls_ctr_drbg_free(&r->drbg);
	mbedtls_entropy_free(&r->entropy);
}

static void key_gen(struct keypair *k, struct rng *r, mbedtls_ecp_group_id grp)
{
	mbedtls_pk_init(&k->pk);
	assert_int_equal(mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
	assert_int_equal(mbedtls_ecp_gen_key(grp, mbedtls_pk_ec(k->pk), mbedtls_ctr_drbg_random,
					     &r->drbg), 0);
	assert_int_equal(mbedtls_pk_write_pubkey_pem(&k->pk, (unsigned char *)k->pem,
						     sizeof(k->pem)), 0);
}

/* base64 of k's DER signature over sha into out[cap]. */
static void sign_b64(struct keypair *k, struct rng *r, const uint8_t sha[32], char *out,
		     size_t cap)
{
	unsigned char sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
	size_t n, olen;

	assert_int_equal(mbedtls_pk_sign(&k->pk, MBEDTLS_MD_SHA256, sha, 32, sig, &n,
					 mbedtls_ctr_drbg_random, &r->drbg), 0);
	assert_int_equal(mbedtls_base64_encode((unsigned char *)out, cap, &olen, sig, n), 0);
}

struct ecdsa_fx {
	struct rng rng;
	struct keypair a, b, p384;
	uint8_t sha[32];
	char sig[256];        /* by a over sha */
};

static int ecdsa_setup(void **state)
{
	struct ecdsa_fx *f = calloc(1, sizeof(*f));
	static const char image[] = "firmware image v1.2.3";

	rng_init(&f->rng);
	key_gen(&f->a, &f->rng, MBEDTLS_ECP_DP_SECP256R1);
	key_gen(&f->b, &f->rng, MBEDTLS_ECP_DP_SECP256R1);
	key_gen(&f->p384, &f->rng, MBEDTLS_ECP_DP_SECP384R1);
	if (verify_sha256(image, sizeof(image) - 1, f->sha))
		return -1;
	sign_b64(&f->a, &f->rng, f->sha, f->sig, sizeof(f->sig));
	*state = f;
	return 0;
}

static int ecdsa_teardown(void **state)
{
	struct ecdsa_fx *f = *state;

	mbedtls_pk_free(&f->a.pk);
	mbedtls_pk_free(&f->b.pk);
	mbedtls_pk_free(&f->p384.pk);
	rng_free(&f->rng);
	free(f);
	return 0;
}

static void test_ecdsa_good(void **state)
{
	struct ecdsa_fx *f = *state;
	struct err_info e = { 0 };

	assert_int_equal(verify_ecdsa_p256(f->a.pem, f->sha, f->sig, &e), 0);
	assert_int_equal(verify_ecdsa_p256_inputs(f->a.pem, f->sig, &e), 0);
}

static void test_ecdsa_other_key(void **state)
{
	struct ecdsa_fx *f = *state;
	struct err_info e = { 0 };
	char sig_b[256];

	assert_int_equal(verify_ecdsa_p256(f->b.pem, f->sha, f->sig, &e), -OTAGW_ESIGNATURE);
	assert_string_equal(e.text, "ECDSA signature does not verify");
	sign_b64(&f->b, &f->rng, f->sha, sig_b, sizeof(sig_b));
	assert_int_equal(verify_ecdsa_p256(f->a.pem, f->sha, sig_b, &e), -OTAGW_ESIGNATURE);
	assert_int_equal(verify_ecdsa_p256(f->b.pem, f->sha, sig_b, &e), 0);
}

static void test_ecdsa_changed_image(void **state)
{
	struct ecdsa_fx *f = *state;
	struct err_info e = { 0 };
	static const char image[] = "firmware image v1.2.4";   /* one byte flipped */
	uint8_t sha[32];

	assert_int_equal(verify_sha256(image, sizeof(image) - 1, sha), 0);
	assert_int_equal(verify_ecdsa_p256(f->a.pem, sha, f->sig, &e), -OTAGW_ESIGNATURE);
	memcpy(sha, f->sha, 32);
	sha[31] ^= 1;
	assert_int_equal(verify_ecdsa_p256(f->a.pem, sha, f->sig, &e), -OTAGW_ESIGNATURE);
}

static void test_ecdsa_mangled_signature(void **state)
{
	struct ecdsa_fx *f = *state;
	struct err_info e = { 0 };
	unsigned char der[128];
	char b64[256];
	size_t n, olen;

	/* Valid base64, but a DER byte changed: does not verify. */
	assert_int_equal(mbedtls_base64_decode(der, sizeof(der), &n,
					       (const unsigned char *)f->sig, strlen(f->sig)), 0);
	der[n - 1] ^= 0x01;
	assert_int_equal(mbedtls_base64_encode((unsigned char *)b64, sizeof(b64), &olen, der, n),
			 0);
	assert_int_equal(verify_ecdsa_p256(f->a.pem, f->sha, b64, &e), -OTAGW_ESIGNATURE);
	/* Not DER at all. */
	assert_int_equal(verify_ecdsa_p256(f->a.pem, f->sha, "AAAA", &e), -OTAGW_ESIGNATURE);
}

static void test_ecdsa_hostile_base64(void **state)
{
	struct ecdsa_fx *f = *state;
	struct err_info e = { 0 };
	static const char *const bad[] = { "", "!!!!", "AAA", "AA=A", "A\001AA", "=AAA" };
	char big[400];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(verify_ecdsa_p256(f->a.pem, f->sha, bad[i], &e), -EINVAL);
		assert_int_equal(verify_ecdsa_p256_inputs(f->a.pem, bad[i], NULL), -EINVAL);
	}
	assert_int_equal(verify_ecdsa_p256(f->a.pem, f->sha, NULL, &e), -EINVAL);
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(verify_ecdsa_p256(f->a.pem, f->sha, big, &e), -EINVAL);
	assert_non_null(strstr(e.text, "base64"));
}

static void test_ecdsa_hostile_key(void **state)
{
	struct ecdsa_fx *f = *state;
	struct err_info e = { 0 };
	char cut[1024];
	static const char *const bad[] = {
		"",
		"not a key",
		"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
		"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(verify_ecdsa_p256(bad[i], f->sha, f->sig, &e), -EINVAL);
	assert_int_equal(verify_ecdsa_p256(NULL, f->sha, f->sig, &e), -EINVAL);
	assert_non_null(strstr(e.text, "key"));
	/* A truncated PEM. */
	snprintf(cut, sizeof(cut), "%.*s", (int)(strlen(f->a.pem) / 2), f->a.pem);
	assert_int_equal(verify_ecdsa_p256(cut, f->sha, f->sig, &e), -EINVAL);
	/* An EC key of another curve. */
	assert_int_equal(verify_ecdsa_p256(f->p384.pem, f->sha, f->sig, &e), -EINVAL);
	assert_string_equal(e.text, "ECDSA key: not a P-256 key");
	assert_int_equal(verify_ecdsa_p256_inputs(f->p384.pem, f->sig, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vectors),
		cmocka_unit_test(test_save_load),
		cmocka_unit_test(test_load_hostile),
		cmocka_unit_test(test_secret),
		cmocka_unit_test(test_ecdsa_good),
		cmocka_unit_test(test_ecdsa_other_key),
		cmocka_unit_test(test_ecdsa_changed_image),
		cmocka_unit_test(test_ecdsa_mangled_signature),
		cmocka_unit_test(test_ecdsa_hostile_base64),
		cmocka_unit_test(test_ecdsa_hostile_key),
	};

	return cmocka_run_group_tests(tests, ecdsa_setup, ecdsa_teardown);
}
