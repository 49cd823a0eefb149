/* SPDX-License-Identifier: MIT */
/* fuzz_bundle.h - what fuzz_manifest.c and fuzz_bundle.c share: the bundle
 * importer's own code (northbound/bundle.c, #included so its static
 * manifest reader and archive walker can be driven directly, on a job made
 * here rather than by a loop timer), with the one change that an archive is
 * opened from memory (fb_data) instead of from a path; a struct bundles over
 * fuzz_common.h's environment; and the public key of the test signer whose
 * private half (tests/fuzz/seed-key.pem) signed the seed bundles.
 * Must not: be included twice, or by anything but a fuzz target. */
#ifndef OTAGW_FUZZ_BUNDLE_H
#define OTAGW_FUZZ_BUNDLE_H

#include <archive.h>

/* The archive bj_open() opens: the current input. */
static const void *fb_data;
static size_t fb_len;

static int fb_open_memory(struct archive *a, const char *path, size_t block)
{
	(void)path;
	(void)block;
	return archive_read_open_memory(a, fb_data, fb_len);
}

/* <archive.h> is in already, so only bundle.c's call is renamed. */
#define archive_read_open_filename(a, path, block) fb_open_memory(a, path, block)
#include "../../northbound/bundle.c"
#undef archive_read_open_filename

/* After bundle.c, whose LOG_MOD it would otherwise define first. */
#define FUZZ_WITH_ENV
#include "fuzz_common.h"

static const char fb_key_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEBMH9MfRIniRBJ3cdzEpu7cdh+kEG\n"
	"dV/FARWxqR7jOxKfCSQ6nIaDE1G8ViqD/7GH3NgDE5vdTVyEYR0gmpZTLQ==\n"
	"-----END PUBLIC KEY-----\n";

#define FB_QUOTA (64u << 20)          /* bytes of the test cache */

static struct bundles *fb_bundles;

static void fb_free(void)
{
	bundles_free(fb_bundles);
}

/* Once per process, after fuzz_env_init(FB_QUOTA). */
static void fb_init(void)
{
	struct bundles_cfg cfg = { .data_dir = fuzz_env.dir, .gateway_id = "gw-fuzz" };
	struct err_info e = { 0 };

	if (bundles_new(&fb_bundles, &fuzz_env.core, NULL, &cfg, &e)) {
		fprintf(stderr, "bundles_new: %s\n", e.text);
		abort();
	}
	fb_bundles->key_pem = strdup(fb_key_pem);
	if (!fb_bundles->key_pem)
		abort();
	atexit(fb_free);
	/* the devices the seed bundles' tasks name */
	for (int i = 1; i <= 2; i++) {
		char id[8];
		struct device d;

		snprintf(id, sizeof(id), "d%d", i);
		if (devices_report(fuzz_env.st, id, "p1", "0.9", NULL, 1, NULL) ||
		    devices_get(fuzz_env.st, id, &d, NULL))
			abort();
		device_clear(&d);
	}
}

/* A job as bundles_import() makes one, not scheduled on any loop. */
static struct bundle_job *fb_job(void)
{
	struct bundle_job *j = calloc(1, sizeof(*j));

	if (!j)
		abort();
	j->b = fb_bundles;
	snprintf(j->id, sizeof(j->id), "fuzz");
	snprintf(j->path, sizeof(j->path), "memory");
	snprintf(j->source, sizeof(j->source), "fuzz");
	j->pass = 1;
	return j;
}

/* What bj_manifest() promises of a manifest it accepted. */
static void fb_check_manifest(const struct bundle_job *j)
{
	uint64_t sum = 0;

	FUZZ_CHECK(util_id_valid(j->bundle_id));
	FUZZ_CHECK(j->nfw >= 1 && j->nfw <= BUNDLE_FIRMWARE_MAX);
	for (size_t i = 0; i < j->nfw; i++) {
		const struct bj_fw *f = &j->fw[i];
		char norm[BJ_NAME_MAX], hex[CACHE_HEX_LEN + 1];

		FUZZ_CHECK(cJSON_IsObject(f->obj));
		FUZZ_CHECK(util_id_valid(f->product));
		FUZZ_STR_OK(f->version);
		FUZZ_CHECK(f->version[0]);
		FUZZ_STR_OK(f->file);
		FUZZ_CHECK(bj_name(f->file, norm) && !strchr(f->file, '\\'));
		FUZZ_CHECK(f->size <= (UINT64_C(1) << 53));
		verify_hex(f->digest, 32, hex);
		FUZZ_CHECK(!strcmp(hex, f->sha));
		for (size_t k = 0; k < i; k++)
			FUZZ_CHECK(strcmp(j->fw[k].file, f->file));
		sum += f->size;
	}
	FUZZ_CHECK(sum == j->total && sum <= FB_QUOTA);
}

#endif
