/* SPDX-License-Identifier: MIT */
/* test_cache.c - the image store on real files under a mkdtemp dir: writes
 * in odd pieces, expected size/digest/signature, -EFBIG, checkpoints and
 * resume (from the saved digests, never a re-read), unusable checkpoints,
 * reset, scan with foreign files, re-hash checks, name validation, and
 * children killed at several points (no image or a verified one after). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"

#define MIB (1024 * 1024)
#define KIB 1024

struct fx {
	char dir[64];       /* the mkdtemp dir */
	char cdir[96];      /* <dir>/cache */
	struct cache *c;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct err_info e = { 0 };

	strcpy(f->dir, "/tmp/otagw-cache-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->cdir, sizeof(f->cdir), "%s/cache", f->dir);
	if (cache_open(&f->c, f->cdir, &e))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[256];

	cache_close(f->c);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

/* ---- helpers ---- */

static uint8_t *data_new(size_t n, uint32_t seed)
{
	uint8_t *p = malloc(n ? n : 1);
	uint32_t x = seed ? seed : 1;

	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
	return p;
}

static void sha_hex(const uint8_t *p, size_t n, char hex[CACHE_HEX_LEN + 1])
{
	uint8_t d[32];

	assert_int_equal(verify_sha256(p, n, d), 0);
	verify_hex(d, 32, hex);
}

static void md5_of(const uint8_t *p, size_t n, uint8_t out[VERIFY_DIGEST_MAX])
{
	struct verify_digest *d;
	size_t len;

	assert_int_equal(verify_digest_new(&d, VERIFY_MD5), 0);
	assert_int_equal(verify_digest_update(d, p, n), 0);
	assert_int_equal(verify_digest_finish(d, out, &len), 0);
	verify_digest_free(d);
}

/* Feeds p[0..n) in pieces of odd sizes. */
static void feed_odd(struct cache_writer *w, const uint8_t *p, size_t n)
{
	static const size_t sizes[] = { 1, 7, 4093, 65537, 333, 100003, 2 };
	size_t at = 0;

	for (size_t i = 0; at < n; i++) {
		size_t k = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];

		if (k > n - at)
			k = n - at;
		assert_int_equal(cache_writer_feed(w, p + at, k), 0);
		at += k;
	}
}

static void path_of(const struct fx *f, char *out, size_t cap, const char *rel)
{
	snprintf(out, cap, "%s/%s", f->cdir, rel);
}

/* Size of <cdir>/rel, or -1 when absent. */
static long long size_of(const struct fx *f, const char *rel)
{
	char path[256];
	struct stat st;

	path_of(f, path, sizeof(path), rel);
	return lstat(path, &st) ? -1 : (long long)st.st_size;
}

static bool exists(const struct fx *f, const char *rel)
{
	return size_of(f, rel) >= 0;
}

static int entries(const struct fx *f, const char *rel)
{
	char cmd[300];
	FILE *p;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s/%s' | wc -l", f->cdir, rel);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static void put_file(const struct fx *f, const char *rel, const void *p, size_t n, int flags)
{
	char path[256];
	int fd;

	path_of(f, path, sizeof(path), rel);
	fd = open(path, O_WRONLY | O_CREAT | flags, 0640);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static void assert_file_is(const struct fx *f, const char *rel, const uint8_t *p, size_t n)
{
	char path[256];
	uint8_t *got = malloc(n + 1);
	size_t len;
	FILE *fp;

	path_of(f, path, sizeof(path), rel);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	len = fread(got, 1, n + 1, fp);
	fclose(fp);
	assert_int_equal(len, n);
	assert_memory_equal(got, p, n);
	free(got);
}

static struct cache_writer *wopen(struct fx *f, const char *name, const struct cache_expect *x,
				  bool resume, uint64_t *have)
{
	struct cache_writer *w = NULL;
	struct err_info e = { 0 };
	uint64_t h = 12345;

	assert_int_equal(cache_writer_open(f->c, name, x, resume, &w, &h, &e), 0);
	assert_non_null(w);
	if (have)
		*have = h;
	return w;
}

/* Writes p[0..n) as name with x and commits; returns commit's rc. */
static int write_image(struct fx *f, const char *name, const struct cache_expect *x,
		       const uint8_t *p, size_t n, char hex[CACHE_HEX_LEN + 1],
		       struct err_info *e)
{
	struct cache_writer *w = wopen(f, name, x, false, NULL);

	feed_odd(w, p, n);
	return cache_writer_commit(w, hex, e);
}

/* A partial of p[0..n) with a checkpoint at n, writer closed. */
static void make_partial(struct fx *f, const char *name, const uint8_t *p, size_t n)
{
	struct cache_writer *w = wopen(f, name, NULL, false, NULL);

	feed_odd(w, p, n);
	assert_int_equal(cache_writer_checkpoint(w), 0);
	cache_writer_abort(w, true);
}

/* ---- names ---- */

static void test_name_valid(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} t[] = {
		{ "", false },
		{ "0", true },
		{ "a", true },
		{ "0123456789abcdef", true },
		{ "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", true },
		{ "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", false },
		{ "ABCDEF", false },
		{ "abcdeF", false },
		{ "abg", false },
		{ "a/b", false },
		{ "/", false },
		{ ".", false },
		{ "..", false },
		{ "../x", false },
		{ "a.part", false },
		{ "a b", false },
		{ "a\n", false },
		{ "\xc3\xa9", false },
		{ "-1", false },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (cache_name_valid(t[i].s) != t[i].ok)
			fail_msg("cache_name_valid(\"%s\") != %d", t[i].s, t[i].ok);
	}
	assert_false(cache_name_valid(NULL));
}

/* ---- writing ---- */

static void test_commit_odd_pieces(void **state)
{
	struct fx *f = *state;
	const size_t n = MIB + 12345;
	uint8_t *p = data_new(n, 7);
	char want[CACHE_HEX_LEN + 1], hex[CACHE_HEX_LEN + 1];
	struct err_info e = { 0 };
	struct cache_writer *w;
	char path[256];
	struct stat st;
	uint64_t have;

	sha_hex(p, n, want);
	w = wopen(f, "a1", NULL, false, &have);
	assert_int_equal(have, 0);
	feed_odd(w, p, n);
	assert_int_equal(cache_writer_size(w), n);
	assert_int_equal(cache_writer_feed(w, p, 0), 0);
	assert_int_equal(cache_writer_checkpoint(w), 0);
	assert_true(exists(f, "partial/a1.state"));
	assert_int_equal(cache_writer_commit(w, hex, &e), 0);
	assert_string_equal(hex, want);
	assert_file_is(f, want, p, n);
	assert_int_equal(entries(f, "partial"), 0);
	assert_int_equal(entries(f, ""), 2);   /* the image and partial/ */
	path_of(f, path, sizeof(path), want);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0440);
	free(p);
}

static void test_expect_ok(void **state)
{
	struct fx *f = *state;
	const size_t n = 200 * KIB + 3;
	uint8_t *p = data_new(n, 11);
	char want[CACHE_HEX_LEN + 1], hex[CACHE_HEX_LEN + 1];
	struct err_info e = { 0 };
	struct cache_expect x = { .size = n, .has_digest = true, .method = VERIFY_SHA256 };

	sha_hex(p, n, want);
	assert_int_equal(verify_sha256(p, n, x.digest), 0);
	assert_int_equal(write_image(f, "b1", &x, p, n, hex, &e), 0);
	assert_string_equal(hex, want);

	memset(&x, 0, sizeof(x));
	x.has_digest = true;
	x.method = VERIFY_MD5;
	md5_of(p, n, x.digest);
	assert_int_equal(write_image(f, "b2", &x, p, n, hex, &e), 0);
	assert_string_equal(hex, want);   /* the same image again: still fine */

	memset(&x, 0, sizeof(x));
	x.size = n;
	assert_int_equal(write_image(f, "b3", &x, p, n, hex, &e), 0);
	assert_string_equal(hex, want);
	assert_int_equal(entries(f, "partial"), 0);
	assert_int_equal(entries(f, ""), 2);
	assert_file_is(f, want, p, n);
	free(p);
}

static void assert_nothing_left(struct fx *f)
{
	assert_int_equal(entries(f, "partial"), 0);
	assert_int_equal(entries(f, ""), 1);   /* partial/ alone */
}

static void test_wrong_digest(void **state)
{
	struct fx *f = *state;
	const size_t n = 70 * KIB;
	uint8_t *p = data_new(n, 13);
	char hex[CACHE_HEX_LEN + 1], want[CACHE_HEX_LEN + 1];
	struct err_info e = { 0 };
	struct cache_expect x = { .has_digest = true, .method = VERIFY_SHA256 };
	struct cache_writer *w;

	sha_hex(p, n, want);
	assert_int_equal(verify_sha256(p, n, x.digest), 0);
	x.digest[5] ^= 0x10;
	w = wopen(f, "c1", &x, false, NULL);
	feed_odd(w, p, n);
	assert_int_equal(cache_writer_checkpoint(w), 0);   /* a state to clean up too */
	assert_int_equal(cache_writer_commit(w, hex, &e), -OTAGW_ESIGNATURE);
	assert_int_equal(e.code, -OTAGW_ESIGNATURE);
	assert_non_null(strstr(e.text, "sha256: expected "));
	assert_non_null(strstr(e.text, ", got "));
	assert_non_null(strstr(e.text, want));
	assert_string_equal(hex, "");
	assert_nothing_left(f);

	memset(&x, 0, sizeof(x));
	x.has_digest = true;
	x.method = VERIFY_MD5;
	md5_of(p, n - 1, x.digest);   /* the md5 of other bytes */
	assert_int_equal(write_image(f, "c2", &x, p, n, hex, &e), -OTAGW_ESIGNATURE);
	assert_non_null(strstr(e.text, "md5: expected "));
	assert_non_null(strstr(e.text, "got"));
	assert_nothing_left(f);
	free(p);
}

static void test_wrong_size(void **state)
{
	struct fx *f = *state;
	const size_t n = 5000;
	uint8_t *p = data_new(n, 17);
	char hex[CACHE_HEX_LEN + 1];
	struct err_info e = { 0 };
	struct cache_expect x = { .size = n + 1 };

	assert_int_equal(write_image(f, "d1", &x, p, n, hex, &e), -EBADMSG);
	assert_string_equal(e.text, "size: expected 5001 bytes, got 5000");
	assert_nothing_left(f);
	free(p);
}

static void test_efbig(void **state)
{
	struct fx *f = *state;
	uint8_t *p = data_new(1200, 19);
	char hex[CACHE_HEX_LEN + 1], want[CACHE_HEX_LEN + 1];
	struct err_info e = { 0 };
	struct cache_expect x = { .size = 1000 };
	struct cache_writer *w = wopen(f, "e1", &x, false, NULL);

	assert_int_equal(cache_writer_feed(w, p, 900), 0);
	assert_int_equal(cache_writer_feed(w, p + 900, 200), -EFBIG);
	assert_int_equal(cache_writer_size(w), 900);
	assert_int_equal(size_of(f, "partial/e1.part"), 900);
	assert_int_equal(cache_writer_feed(w, p + 900, SIZE_MAX), -EFBIG);
	assert_int_equal(cache_writer_feed(w, p + 900, 100), 0);
	assert_int_equal(cache_writer_feed(w, p + 1000, 1), -EFBIG);
	assert_int_equal(size_of(f, "partial/e1.part"), 1000);
	assert_int_equal(cache_writer_commit(w, hex, &e), 0);
	sha_hex(p, 1000, want);
	assert_string_equal(hex, want);
	assert_int_equal(size_of(f, want), 1000);
	free(p);
}

/* ---- resume ---- */

/* Bytes past the checkpoint (written, never checkpointed) are cut off and
 * the saved digests carry on. */
static void test_resume_cuts_extra(void **state)
{
	struct fx *f = *state;
	const size_t n = 3 * MIB + 300 * KIB;
	uint8_t *p = data_new(n, 23), *junk = data_new(100 * KIB, 29);
	char hex[CACHE_HEX_LEN + 1], want[CACHE_HEX_LEN + 1];
	struct err_info e = { 0 };
	struct cache_expect x = { .size = n, .has_digest = true, .method = VERIFY_SHA256 };
	struct cache_writer *w;
	uint64_t have;

	sha_hex(p, n, want);
	assert_int_equal(verify_sha256(p, n, x.digest), 0);
	w = wopen(f, "f1", &x, true, &have);
	assert_int_equal(have, 0);
	feed_odd(w, p, 3 * MIB);
	assert_int_equal(cache_writer_checkpoint(w), 0);
	cache_writer_abort(w, true);
	put_file(f, "partial/f1.part", junk, 100 * KIB, O_APPEND);   /* after the checkpoint */
	assert_int_equal(size_of(f, "partial/f1.part"), 3 * MIB + 100 * KIB);

	w = wopen(f, "f1", &x, true, &have);
	assert_int_equal(have, 3 * MIB);
	assert_int_equal(cache_writer_size(w), 3 * MIB);
	assert_int_equal(size_of(f, "partial/f1.part"), 3 * MIB);
	feed_odd(w, p + 3 * MIB, n - 3 * MIB);
	assert_int_equal(cache_writer_commit(w, hex, &e), 0);
	assert_string_equal(hex, want);
	assert_file_is(f, want, p, n);
	assert_int_equal(entries(f, "partial"), 0);
	free(p);
	free(junk);
}

/* abort(keep) checkpoints what was written, so nothing is fetched twice. */
static void test_abort_keep_checkpoints(void **state)
{
	struct fx *f = *state;
	const size_t n = 3 * MIB + 300 * KIB;
	uint8_t *p = data_new(n, 31);
	char hex[CACHE_HEX_LEN + 1], want[CACHE_HEX_LEN + 1];
	struct err_info e = { 0 };
	struct cache_writer *w = wopen(f, "f2", NULL, true, NULL);
	uint64_t have;

	sha_hex(p, n, want);
	feed_odd(w, p, 3 * MIB);
	assert_int_equal(cache_writer_checkpoint(w), 0);
	feed_odd(w, p + 3 * MIB, 100 * KIB);
	cache_writer_abort(w, true);
	w = wopen(f, "f2", NULL, true, &have);
	assert_int_equal(have, 3 * MIB + 100 * KIB);
	feed_odd(w, p + have, n - have);
	assert_int_equal(cache_writer_commit(w, hex, &e), 0);
	assert_string_equal(hex, want);
	free(p);
}

/* The checkpoint's digests are trusted, never recomputed: bytes changed
 * under a checkpoint go unnoticed by commit (its hash is of what was fed)
 * and are caught by the re-hash check, which removes the image. */
static void test_resume_never_rereads(void **state)
{
	struct fx *f = *state;
	const size_t n = 2 * MIB + 5;
	uint8_t *p = data_new(n, 37), zero[4096] = { 0 };
	char hex[CACHE_HEX_LEN + 1], want[CACHE_HEX_LEN + 1];
	struct err_info e = { 0 };
	struct cache_check *k;
	struct cache_writer *w;
	uint64_t have;

	sha_hex(p, n, want);
	make_partial(f, "f3", p, 2 * MIB);
	put_file(f, "partial/f3.part", zero, sizeof(zero), 0);   /* overwrite the head */
	w = wopen(f, "f3", NULL, true, &have);
	assert_int_equal(have, 2 * MIB);
	feed_odd(w, p + have, n - have);
	assert_int_equal(cache_writer_commit(w, hex, &e), 0);
	assert_string_equal(hex, want);
	assert_int_equal(cache_check_begin(f->c, hex, &k), 0);
	assert_int_equal(cache_check_step(k, SIZE_MAX), -OTAGW_ESIGNATURE);
	cache_check_end(k);
	assert_false(exists(f, hex));
	free(p);
}

/* Reopens name with resume and expects a fresh start. */
static void assert_restarts(struct fx *f, const char *name, const struct cache_expect *x)
{
	uint64_t have;
	struct cache_writer *w = wopen(f, name, x, true, &have);
	char rel[96];

	assert_int_equal(have, 0);
	assert_int_equal(cache_writer_size(w), 0);
	snprintf(rel, sizeof(rel), "partial/%s.part", name);
	assert_int_equal(size_of(f, rel), 0);
	snprintf(rel, sizeof(rel), "partial/%s.state", name);
	assert_false(exists(f, rel));
	cache_writer_abort(w, false);
}

static void test_resume_unusable_state(void **state)
{
	struct fx *f = *state;
	const size_t n = 100 * KIB;
	uint8_t *p = data_new(n, 41), bad[2048];
	char path[256], hex[CACHE_HEX_LEN + 1], want[CACHE_HEX_LEN + 1];
	struct cache_expect x = { .size = 500 };
	struct err_info e = { 0 };
	struct cache_writer *w;
	uint64_t have;
	long long len;
	FILE *fp;

	make_partial(f, "9", p, n);          /* missing state */
	path_of(f, path, sizeof(path), "partial/9.state");
	assert_int_equal(unlink(path), 0);
	assert_restarts(f, "9", NULL);

	make_partial(f, "9", p, n);          /* one byte flipped */
	len = size_of(f, "partial/9.state");
	assert_true(len > 64 && len < (long long)sizeof(bad));
	fp = fopen(path, "rb");
	assert_int_equal(fread(bad, 1, (size_t)len, fp), (size_t)len);
	fclose(fp);
	bad[len / 2] ^= 0x01;
	put_file(f, "partial/9.state", bad, (size_t)len, O_TRUNC);
	assert_restarts(f, "9", NULL);

	make_partial(f, "9", p, n);          /* cut short */
	assert_int_equal(truncate(path, len / 2), 0);
	assert_restarts(f, "9", NULL);

	make_partial(f, "9", p, n);          /* not a state at all */
	put_file(f, "partial/9.state", "hello", 5, O_TRUNC);
	assert_restarts(f, "9", NULL);

	make_partial(f, "9", p, n);          /* longer than the partial */
	path_of(f, path, sizeof(path), "partial/9.part");
	assert_int_equal(truncate(path, n - 1), 0);
	assert_restarts(f, "9", NULL);

	make_partial(f, "9", p, n);          /* longer than the expected image */
	assert_restarts(f, "9", &x);

	make_partial(f, "9", p, n);          /* now MD5 is expected: no MD5 state */
	memset(&x, 0, sizeof(x));
	x.has_digest = true;
	x.method = VERIFY_MD5;
	assert_restarts(f, "9", &x);

	make_partial(f, "9", p, n);          /* resume = false */
	w = wopen(f, "9", NULL, false, &have);
	assert_int_equal(have, 0);
	assert_false(exists(f, "partial/9.state"));
	assert_int_equal(size_of(f, "partial/9.part"), 0);
	feed_odd(w, p, n);                   /* and the fresh start works */
	assert_int_equal(cache_writer_commit(w, hex, &e), 0);
	sha_hex(p, n, want);
	assert_string_equal(hex, want);
	free(p);
}

static void test_reset(void **state)
{
	struct fx *f = *state;
	uint8_t *a = data_new(5000, 43), *b = data_new(7000, 47);
	char hex[CACHE_HEX_LEN + 1], want[CACHE_HEX_LEN + 1];
	struct err_info e = { 0 };
	struct cache_expect x = { .has_digest = true, .method = VERIFY_MD5 };
	struct cache_writer *w;

	md5_of(b, 7000, x.digest);
	w = wopen(f, "ab", &x, false, NULL);
	feed_odd(w, a, 5000);
	assert_int_equal(cache_writer_checkpoint(w), 0);
	assert_int_equal(cache_writer_reset(w), 0);
	assert_int_equal(cache_writer_size(w), 0);
	assert_int_equal(size_of(f, "partial/ab.part"), 0);
	assert_false(exists(f, "partial/ab.state"));
	feed_odd(w, b, 7000);
	assert_int_equal(cache_writer_commit(w, hex, &e), 0);
	sha_hex(b, 7000, want);
	assert_string_equal(hex, want);
	free(a);
	free(b);
}

static void test_busy_and_invalid(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = wopen(f, "cafe", NULL, false, NULL), *w2 = NULL;
	struct cache_expect x = { .ecdsa_sig_b64 = "AAAA" };
	struct err_info e = { 0 };
	uint64_t have;

	assert_int_equal(cache_writer_open(f->c, "cafe", NULL, true, &w2, &have, &e), -EBUSY);
	assert_null(w2);
	cache_writer_abort(w, false);
	assert_false(exists(f, "partial/cafe.part"));
	w = wopen(f, "cafe", NULL, true, NULL);
	cache_writer_abort(w, false);
	cache_writer_abort(NULL, true);

	assert_int_equal(cache_writer_open(f->c, "../x", NULL, true, &w2, &have, &e), -EINVAL);
	assert_non_null(strstr(e.text, "hex"));
	assert_int_equal(cache_writer_open(f->c, "CAFE", NULL, true, &w2, &have, &e), -EINVAL);
	/* A signature without a key cannot ever verify: refused up front. */
	assert_int_equal(cache_writer_open(f->c, "cafe", &x, true, &w2, &have, &e), -EINVAL);
	x.ecdsa_sig_b64 = NULL;
	x.has_digest = true;
	x.method = (enum verify_method)7;
	assert_int_equal(cache_writer_open(f->c, "cafe", &x, true, &w2, &have, &e), -EINVAL);
	assert_null(w2);
	assert_int_equal(entries(f, "partial"), 0);
}

/* ---- ECDSA through commit ---- */

struct signer {
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_pk_context pk;
	char pem[1024];
};

static void signer_init(struct signer *s)
{
	mbedtls_entropy_init(&s->entropy);
	mbedtls_ctr_drbg_init(&s->drbg);
	mbedtls_pk_init(&s->pk);
	assert_int_equal(mbedtls_ctr_drbg_seed(&s->drbg, mbedtls_entropy_func, &s->entropy,
					       (const unsigned char *)"t", 1), 0);
	assert_int_equal(mbedtls_pk_setup(&s->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
	assert_int_equal(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(s->pk),
					     mbedtls_ctr_drbg_random, &s->drbg), 0);
	assert_int_equal(mbedtls_pk_write_pubkey_pem(&s->pk, (unsigned char *)s->pem,
						     sizeof(s->pem)), 0);
}

static void signer_sign(struct signer *s, const uint8_t *p, size_t n, char *b64, size_t cap)
{
	unsigned char sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
	uint8_t sha[32];
	size_t len, olen;

	assert_int_equal(verify_sha256(p, n, sha), 0);
	assert_int_equal(mbedtls_pk_sign(&s->pk, MBEDTLS_MD_SHA256, sha, 32, sig, &len,
					 mbedtls_ctr_drbg_random, &s->drbg), 0);
	assert_int_equal(mbedtls_base64_encode((unsigned char *)b64, cap, &olen, sig, len), 0);
}

static void signer_free(struct signer *s)
{
	mbedtls_pk_free(&s->pk);
	mbedtls_ctr_drbg_free(&s->drbg);
	mbedtls_entropy_free(&s->entropy);
}

static void test_ecdsa_commit(void **state)
{
	struct fx *f = *state;
	const size_t n = 50 * KIB;
	uint8_t *p = data_new(n, 53);
	char hex[CACHE_HEX_LEN + 1], want[CACHE_HEX_LEN + 1], sig[256], key[1024];
	struct err_info e = { 0 };
	struct cache_expect x = { .ecdsa_sig_b64 = sig, .ecdsa_key_pem = key };
	struct signer s;

	signer_init(&s);
	signer_sign(&s, p, n, sig, sizeof(sig));
	snprintf(key, sizeof(key), "%s", s.pem);
	sha_hex(p, n, want);
	/* x is copied at open: the caller's strings may change afterwards. */
	{
		struct cache_writer *w = wopen(f, "5", &x, false, NULL);

		memset(key, 0, sizeof(key));
		feed_odd(w, p, n);
		assert_int_equal(cache_writer_commit(w, hex, &e), 0);
		assert_string_equal(hex, want);
	}
	snprintf(key, sizeof(key), "%s", s.pem);
	signer_sign(&s, p, n - 1, sig, sizeof(sig));   /* over other bytes */
	assert_int_equal(cache_image_remove(f->c, want), 0);
	assert_int_equal(write_image(f, "6", &x, p, n, hex, &e), -OTAGW_ESIGNATURE);
	assert_string_equal(e.text, "ECDSA signature does not verify");
	assert_nothing_left(f);
	signer_free(&s);
	free(p);
}

/* ---- images, scan, check ---- */

static void test_image_open_remove(void **state)
{
	struct fx *f = *state;
	const size_t n = 12345;
	uint8_t *p = data_new(n, 59), *got = malloc(n);
	char hex[CACHE_HEX_LEN + 1];
	struct err_info e = { 0 };
	uint64_t size;
	int fd;

	assert_int_equal(write_image(f, "1", NULL, p, n, hex, &e), 0);
	assert_int_equal(cache_image_open(f->c, hex, &fd, &size), 0);
	assert_int_equal(size, n);
	assert_int_equal(read(fd, got, n), (ssize_t)n);
	assert_memory_equal(got, p, n);
	close(fd);
	assert_int_equal(cache_image_remove(f->c, hex), 0);
	assert_int_equal(cache_image_remove(f->c, hex), -ENOENT);
	assert_int_equal(cache_image_open(f->c, hex, &fd, &size), -ENOENT);
	assert_int_equal(cache_image_open(f->c, "../cache", &fd, &size), -EINVAL);
	assert_int_equal(cache_image_open(f->c, "partial", &fd, &size), -EINVAL);
	assert_int_equal(cache_image_remove(f->c, "abc"), -EINVAL);
	free(p);
	free(got);
}

static void test_partial_remove(void **state)
{
	struct fx *f = *state;
	uint8_t *p = data_new(1000, 61);

	make_partial(f, "77", p, 1000);
	assert_true(exists(f, "partial/77.part"));
	assert_true(exists(f, "partial/77.state"));
	cache_partial_remove(f->c, "77");
	assert_int_equal(entries(f, "partial"), 0);
	cache_partial_remove(f->c, "77");     /* absent: fine */
	cache_partial_remove(f->c, "../77");  /* not ours: ignored */
	free(p);
}

struct seen {
	int n;
	int stop_at;            /* return non-zero from this call on, 0 = never */
	char name[8][CACHE_NAME_MAX];
	uint64_t size[8];
	bool partial[8];
};

static int on_entry(void *arg, const char *name, uint64_t size, bool partial)
{
	struct seen *s = arg;

	assert_true(s->n < 8);
	snprintf(s->name[s->n], CACHE_NAME_MAX, "%s", name);
	s->size[s->n] = size;
	s->partial[s->n] = partial;
	s->n++;
	return s->stop_at && s->n >= s->stop_at ? 42 : 0;
}

static int seen_find(const struct seen *s, const char *name, bool partial)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->name[i], name) && s->partial[i] == partial)
			return i;
	return -1;
}

/* Files that are not ours, in both directories. */
static void put_foreign(struct fx *f, const char *hex)
{
	char path[256], upper[CACHE_HEX_LEN + 1];

	put_file(f, "README", "x", 1, 0);
	put_file(f, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde", "x", 1, 0);
	for (int i = 0; i < CACHE_HEX_LEN; i++)
		upper[i] = (char)(hex[i] >= 'a' ? hex[i] - 32 : hex[i]);
	upper[CACHE_HEX_LEN] = '\0';
	put_file(f, upper, "x", 1, 0);
	put_file(f, "partial/README", "x", 1, 0);
	put_file(f, "partial/ABC.part", "x", 1, 0);
	put_file(f, "partial/.part", "x", 1, 0);
	put_file(f, "partial/abc.part.bak", "x", 1, 0);
	put_file(f, "partial/def.state.tmp", "x", 1, 0);   /* orphans: removed */
	put_file(f, "partial/123.state", "x", 1, 0);
	path_of(f, path, sizeof(path),
		"1111111111111111111111111111111111111111111111111111111111111111");
	assert_int_equal(mkdir(path, 0700), 0);
	path_of(f, path, sizeof(path),
		"2222222222222222222222222222222222222222222222222222222222222222");
	assert_int_equal(symlink("/etc/passwd", path), 0);
}

static void test_scan(void **state)
{
	struct fx *f = *state;
	uint8_t *a = data_new(1000, 67), *b = data_new(2000, 71);
	char ha[CACHE_HEX_LEN + 1], hb[CACHE_HEX_LEN + 1];
	struct err_info e = { 0 };
	struct seen s = { 0 };
	int i;

	assert_int_equal(write_image(f, "a", NULL, a, 1000, ha, &e), 0);
	assert_int_equal(write_image(f, "b", NULL, b, 2000, hb, &e), 0);
	make_partial(f, "abc", a, 777);
	put_foreign(f, ha);
	assert_int_equal(cache_scan(f->c, on_entry, &s), 0);
	assert_int_equal(s.n, 3);
	i = seen_find(&s, ha, false);
	assert_true(i >= 0);
	assert_int_equal(s.size[i], 1000);
	i = seen_find(&s, hb, false);
	assert_true(i >= 0);
	assert_int_equal(s.size[i], 2000);
	i = seen_find(&s, "abc", true);
	assert_true(i >= 0);
	assert_int_equal(s.size[i], 777);
	assert_false(exists(f, "partial/def.state.tmp"));
	assert_false(exists(f, "partial/123.state"));
	assert_true(exists(f, "partial/abc.state"));
	assert_true(exists(f, "partial/README"));   /* skipped, not deleted */
	assert_true(exists(f, "README"));

	memset(&s, 0, sizeof(s));
	s.stop_at = 1;
	assert_int_equal(cache_scan(f->c, on_entry, &s), 42);
	assert_int_equal(s.n, 1);
	free(a);
	free(b);
}

static void test_check(void **state)
{
	struct fx *f = *state;
	const size_t n = 300 * KIB + 1;
	uint8_t *p = data_new(n, 73);
	char hex[CACHE_HEX_LEN + 1], path[256];
	struct err_info e = { 0 };
	struct cache_check *k;
	int rc, steps = 0;

	assert_int_equal(write_image(f, "c", NULL, p, n, hex, &e), 0);
	assert_int_equal(cache_check_begin(f->c, hex, &k), 0);
	while ((rc = cache_check_step(k, 4096)) == 1)
		steps++;
	assert_int_equal(rc, 0);
	assert_int_equal(steps, (int)(n / 4096));
	assert_int_equal(cache_check_step(k, 4096), 0);   /* stays done */
	cache_check_end(k);
	cache_check_end(NULL);
	assert_true(exists(f, hex));

	/* One byte changed in place. */
	path_of(f, path, sizeof(path), hex);
	assert_int_equal(chmod(path, 0640), 0);
	put_file(f, hex, "\x01", 1, 0);
	assert_int_equal(cache_check_begin(f->c, hex, &k), 0);
	assert_int_equal(cache_check_step(k, SIZE_MAX), -OTAGW_ESIGNATURE);
	assert_int_equal(cache_check_step(k, SIZE_MAX), -OTAGW_ESIGNATURE);
	cache_check_end(k);
	assert_false(exists(f, hex));
	assert_int_equal(cache_check_begin(f->c, hex, &k), -ENOENT);
	assert_int_equal(cache_check_begin(f->c, "../../etc/passwd", &k), -EINVAL);
	free(p);
}

/* Cut short or grown after publish: both caught, also mid-check. */
static void test_check_size_changes(void **state)
{
	struct fx *f = *state;
	const size_t n = 100 * KIB;
	uint8_t *p = data_new(n, 79);
	char hex[CACHE_HEX_LEN + 1], path[256];
	struct err_info e = { 0 };
	struct cache_check *k;

	assert_int_equal(write_image(f, "d", NULL, p, n, hex, &e), 0);
	path_of(f, path, sizeof(path), hex);
	assert_int_equal(cache_check_begin(f->c, hex, &k), 0);
	assert_int_equal(cache_check_step(k, 10000), 1);
	assert_int_equal(truncate(path, n / 2), 0);
	assert_int_equal(cache_check_step(k, SIZE_MAX), -OTAGW_ESIGNATURE);
	cache_check_end(k);
	assert_false(exists(f, hex));

	assert_int_equal(write_image(f, "d", NULL, p, n, hex, &e), 0);
	assert_int_equal(chmod(path, 0640), 0);
	put_file(f, hex, "x", 1, O_APPEND);
	assert_int_equal(cache_check_begin(f->c, hex, &k), 0);
	assert_int_equal(cache_check_step(k, SIZE_MAX), -OTAGW_ESIGNATURE);
	cache_check_end(k);
	assert_false(exists(f, hex));
	free(p);
}

static void test_disk_free(void **state)
{
	struct fx *f = *state;
	uint64_t n = 0;

	assert_int_equal(cache_disk_free(f->c, &n), 0);
	assert_true(n > 0);
}

static void test_open_errors(void **state)
{
	struct fx *f = *state;
	struct cache *c = NULL;
	struct err_info e = { 0 };
	char path[256];

	snprintf(path, sizeof(path), "%s/no/such/dir", f->dir);
	assert_int_equal(cache_open(&c, path, &e), -ENOENT);
	assert_null(c);
	assert_non_null(strstr(e.text, "cache dir"));
	put_file(f, "file", "x", 1, 0);
	snprintf(path, sizeof(path), "%s/file", f->cdir);
	assert_int_equal(cache_open(&c, path, &e), -ENOTDIR);
	cache_close(NULL);
	/* Opening twice is fine (a restart). */
	assert_int_equal(cache_open(&c, f->cdir, &e), 0);
	cache_close(c);
}

/* ---- crashes ---- */

enum crash_at {
	CRASH_NO_CHECKPOINT,      /* 1 MiB written, _exit without checkpoint */
	CRASH_AT_CHECKPOINT,      /* killed right after the 3 MiB checkpoint */
	CRASH_PAST_CHECKPOINT,    /* killed 100 KiB past it */
	CRASH_BEFORE_COMMIT,      /* all written and checkpointed */
	CRASH_AFTER_COMMIT,
};

#define CRASH_SIZE (3 * MIB + 200 * KIB)

/* The child's side: no cmocka here; any failure exits 2. */
static void crash_child(const char *cdir, const uint8_t *p, const struct cache_expect *x,
			enum crash_at at)
{
	struct cache *c;
	struct cache_writer *w;
	char hex[CACHE_HEX_LEN + 1];
	uint64_t have;

	if (cache_open(&c, cdir, NULL) || cache_writer_open(c, "dead", x, true, &w, &have, NULL))
		_exit(2);
	if (at == CRASH_NO_CHECKPOINT) {
		if (cache_writer_feed(w, p, MIB))
			_exit(2);
		_exit(0);
	}
	if (cache_writer_feed(w, p, 3 * MIB) || cache_writer_checkpoint(w))
		_exit(2);
	if (at == CRASH_PAST_CHECKPOINT && cache_writer_feed(w, p + 3 * MIB, 100 * KIB))
		_exit(2);
	if (at >= CRASH_BEFORE_COMMIT && (cache_writer_feed(w, p + 3 * MIB, CRASH_SIZE - 3 * MIB) ||
					  cache_writer_checkpoint(w)))
		_exit(2);
	if (at == CRASH_AFTER_COMMIT && cache_writer_commit(w, hex, NULL))
		_exit(2);
	raise(SIGKILL);
	_exit(3);
}

/* No image, or one that re-hashes to its name. */
static void assert_consistent(struct fx *f, const char *want)
{
	struct seen s = { 0 };
	struct cache_check *k;
	int rc;

	assert_int_equal(cache_scan(f->c, on_entry, &s), 0);
	for (int i = 0; i < s.n; i++) {
		if (s.partial[i])
			continue;
		assert_string_equal(s.name[i], want);
		assert_int_equal(s.size[i], CRASH_SIZE);
		assert_int_equal(cache_check_begin(f->c, s.name[i], &k), 0);
		while ((rc = cache_check_step(k, MIB)) == 1)
			;
		assert_int_equal(rc, 0);
		cache_check_end(k);
	}
}

/* After the crash: resume from what is there and finish the image. */
static void crash_recover(struct fx *f, const uint8_t *p, const struct cache_expect *x,
			  const char *want, int64_t want_have)
{
	char hex[CACHE_HEX_LEN + 1];
	struct err_info e = { 0 };
	struct cache_writer *w;
	uint64_t have;

	assert_consistent(f, want);
	w = wopen(f, "dead", x, true, &have);
	if (want_have >= 0)
		assert_int_equal(have, (uint64_t)want_have);
	assert_true(have <= CRASH_SIZE);
	feed_odd(w, p + have, CRASH_SIZE - have);
	assert_int_equal(cache_writer_commit(w, hex, &e), 0);
	assert_string_equal(hex, want);
	assert_consistent(f, want);
	assert_int_equal(entries(f, "partial"), 0);
	assert_int_equal(cache_image_remove(f->c, want), 0);
}

static void test_crash_points(void **state)
{
	static const struct {
		enum crash_at at;
		int64_t have;           /* what the resume finds */
		bool killed;
	} t[] = {
		{ CRASH_NO_CHECKPOINT, 0, false },
		{ CRASH_AT_CHECKPOINT, 3 * MIB, true },
		{ CRASH_PAST_CHECKPOINT, 3 * MIB, true },
		{ CRASH_BEFORE_COMMIT, CRASH_SIZE, true },
		{ CRASH_AFTER_COMMIT, 0, true },
	};
	struct fx *f = *state;
	uint8_t *p = data_new(CRASH_SIZE, 83);
	struct cache_expect x = { .size = CRASH_SIZE, .has_digest = true, .method = VERIFY_MD5 };
	char want[CACHE_HEX_LEN + 1];

	sha_hex(p, CRASH_SIZE, want);
	md5_of(p, CRASH_SIZE, x.digest);
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int status;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0)
			crash_child(f->cdir, p, &x, t[i].at);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (t[i].killed) {
			assert_true(WIFSIGNALED(status));
			assert_int_equal(WTERMSIG(status), SIGKILL);
		} else {
			assert_true(WIFEXITED(status));
			assert_int_equal(WEXITSTATUS(status), 0);
		}
		if (t[i].at == CRASH_AFTER_COMMIT)
			assert_true(exists(f, want));
		crash_recover(f, p, &x, want, t[i].have);
	}
	free(p);
}

/* The child writes and checkpoints every 256 KiB, then commits; the parent
 * kills it at an arbitrary moment. Whatever is left must be consistent. */
static void crash_loop_child(const char *cdir, const uint8_t *p, const struct cache_expect *x)
{
	struct cache *c;
	struct cache_writer *w;
	char hex[CACHE_HEX_LEN + 1];
	uint64_t have;

	if (cache_open(&c, cdir, NULL) || cache_writer_open(c, "dead", x, true, &w, &have, NULL))
		_exit(2);
	for (size_t at = 0; at < CRASH_SIZE; at += 64 * KIB) {
		size_t k = CRASH_SIZE - at < 64 * KIB ? CRASH_SIZE - at : 64 * KIB;

		if (cache_writer_feed(w, p + at, k))
			_exit(2);
		if ((at / (64 * KIB)) % 4 == 3 && cache_writer_checkpoint(w))
			_exit(2);
	}
	_exit(cache_writer_commit(w, hex, NULL) ? 2 : 0);
}

static void test_crash_anywhere(void **state)
{
	static const long delays_us[] = { 0, 500, 2000, 5000, 20000, 100000 };
	struct fx *f = *state;
	uint8_t *p = data_new(CRASH_SIZE, 89);
	struct cache_expect x = { .size = CRASH_SIZE, .has_digest = true, .method = VERIFY_SHA256 };
	char want[CACHE_HEX_LEN + 1];

	sha_hex(p, CRASH_SIZE, want);
	assert_int_equal(verify_sha256(p, CRASH_SIZE, x.digest), 0);
	for (size_t i = 0; i < sizeof(delays_us) / sizeof(delays_us[0]); i++) {
		struct timespec ts = { 0, delays_us[i] * 1000 };
		int status;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0)
			crash_loop_child(f->cdir, p, &x);
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) || (WIFEXITED(status) && !WEXITSTATUS(status)));
		crash_recover(f, p, &x, want, -1);
	}
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test_setup_teardown(test_commit_odd_pieces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expect_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_digest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_efbig, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_cuts_extra, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_keep_checkpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_never_rereads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_unusable_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_and_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ecdsa_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_image_open_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_size_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_points, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_anywhere, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
