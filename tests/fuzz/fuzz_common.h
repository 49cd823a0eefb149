/* SPDX-License-Identifier: MIT */
/* fuzz_common.h - what the libFuzzer targets in tests/fuzz/ share: checks
 * that abort (libFuzzer then keeps the input as a crash), a reader that
 * takes bytes off the front of the fuzz input, and a gateway environment
 * (database, image cache, message core) built once per process in a
 * private directory under /dev/shm (or TMPDIR) and removed at exit.
 * Each target is one .c file that includes this header once.
 * Must not: read the clock or the network, keep anything between inputs
 * except the environment (whose writes each input rolls back). */
#ifndef OTAGW_FUZZ_COMMON_H
#define OTAGW_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define FUZZ_CHECK(cond)                                                               \
	do {                                                                           \
		if (!(cond))                                                           \
			fuzz_fail(__FILE__, __LINE__, #cond);                          \
	} while (0)

static inline void fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, what);
	abort();
}

/* Log lines would cost more than the parsing they report on. */
static inline void fuzz_quiet(void)
{
	gw_log_setup(LOG_LVL_ERROR, 0, "fuzz");
}

/* True when s holds a NUL within its cap bytes (a fixed buffer of a struct
 * that a decoder filled). */
static inline bool fuzz_terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}
#define FUZZ_STR_OK(field) FUZZ_CHECK(fuzz_terminated((field), sizeof(field)))

/* The fuzz input as a stream of decisions; past its end every read is 0. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v;

	if (!in->n)
		return 0;
	v = *in->p++;
	in->n--;
	return v;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
	uint16_t hi = fuzz_u8(in);

	return (uint16_t)(hi << 8 | fuzz_u8(in));
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	uint32_t hi = fuzz_u16(in);

	return hi << 16 | fuzz_u16(in);
}

/* Takes up to n bytes off the front: *out points into the input. */
static inline size_t fuzz_take(struct fuzz_in *in, size_t n, const uint8_t **out)
{
	if (n > in->n)
		n = in->n;
	*out = in->p;
	in->p += n;
	in->n -= n;
	return n;
}

/* A malloc'ed copy of buf[0..len) that ends exactly at len (no NUL after
 * it), so ASan sees any read past the end. Caller frees; never NULL. */
static inline uint8_t *fuzz_dup(const uint8_t *buf, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	if (!p)
		abort();
	if (len)
		memcpy(p, buf, len);
	return p;
}

#ifdef FUZZ_WITH_ENV
/* ---- the gateway environment (targets that define FUZZ_WITH_ENV) ---------- */
#include <ftw.h>
#include <unistd.h>

#include "cache.h"
#include "core.h"
#include "images.h"
#include "session.h"
#include "store.h"

struct fuzz_env {
	char dir[128];
	struct store *st;
	struct cache *cache;
	struct images *images;
	struct session_reg *reg;
	struct core core;
};

static struct fuzz_env fuzz_env;   /* the one per process; see the header comment */

static int fuzz_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) ? 0 : 0;   /* best effort */
}

static void fuzz_env_free(void)
{
	images_free(fuzz_env.images);
	cache_close(fuzz_env.cache);
	session_reg_free(fuzz_env.reg);
	store_close(fuzz_env.st);
	if (fuzz_env.dir[0])
		nftw(fuzz_env.dir, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Builds the environment: a database in its directory (tmpfs: commits cost
 * no disk flush), a cache of quota bytes, no downloads, no loop. */
static void fuzz_env_init(uint64_t quota)
{
	const char *tmp = access("/dev/shm", W_OK) ? getenv("TMPDIR") : "/dev/shm";
	char path[192];

	snprintf(fuzz_env.dir, sizeof(fuzz_env.dir), "%s/otagw-fuzz-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(fuzz_env.dir))
		abort();
	snprintf(path, sizeof(path), "%s/otagw.db", fuzz_env.dir);
	if (store_open(&fuzz_env.st, path, NULL) || session_reg_new(&fuzz_env.reg))
		abort();
	snprintf(path, sizeof(path), "%s/cache", fuzz_env.dir);
	if (cache_open(&fuzz_env.cache, path, NULL) ||
	    images_new(&fuzz_env.images, fuzz_env.st, fuzz_env.cache, NULL, NULL,
		       &(struct images_cfg){ .max_bytes = quota, .max_downloads = 1 }, NULL))
		abort();
	core_init(&fuzz_env.core, fuzz_env.st, fuzz_env.reg, fuzz_env.images);
	atexit(fuzz_env_free);
}

/* Rows in table (a literal), to check that a refused input wrote nothing. */
#define FUZZ_COUNT(table) fuzz_count("SELECT count(*) FROM " table)
static inline int64_t fuzz_count(const char *sql)
{
	int64_t n = -1;

	if (store_scalar(fuzz_env.st, sql, &n))
		abort();
	return n;
}
#endif /* FUZZ_WITH_ENV */

#endif
