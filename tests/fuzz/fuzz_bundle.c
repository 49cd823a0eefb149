/* SPDX-License-Identifier: MIT */
/* fuzz_bundle.c - the offline bundle importer's archive walk
 * (northbound/bundle.c: bj_run() and what it calls: bj_open, bj_header,
 * bj_read_small, bj_image_data, bj_archive_end, bj_apply), on a real
 * database and image cache (fuzz_common.h), one import per input, from
 * memory (fuzz_bundle.h). Each input's writes are rolled back and its cache
 * files removed, so inputs do not see each other.
 * Feeds, by the first byte (mod 4):
 *   0  the rest is the archive's bytes as they are (tar, tar.gz, tar.xz,
 *      zip ...: whatever libarchive recognises);
 *   1, 2, 3  the rest describes entries, written with libarchive into a
 *      ustar (1), pax (2) or zip (3) archive in memory, then imported:
 *      per entry a kind byte (mod 5: file, directory, symlink, hard link,
 *      fifo), a name (u8 length, bytes), a u16 length and that many data
 *      bytes (files) or link target bytes (links); at most 64 entries.
 * Asserts beyond no crash and no leak:
 *  - the walk ends (no slice loop without progress) with 0 or a refusal
 *    with a reason;
 *  - refused: nothing stays behind, neither a verified image nor a partial
 *    (the import takes back what it put in the cache), and no firmware;
 *  - imported: the manifest as bj_manifest() promises it, every entry it
 *    names was seen, each firmware exists with the manifest's productId and
 *    version, and its image is in the cache with the manifest's size and
 *    SHA-256. */
#include "fuzz_bundle.h"

#include <archive_entry.h>

#define FB_ENTRIES_MAX 64
#define FB_RUNS_MAX 100000            /* bj_run() slices before we call it a hang */

/* ---- archives written from a description ----------------------------------- */

static int fb_write_entry(struct archive *a, struct fuzz_in *in)
{
	static const mode_t kinds[] = { AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFREG, AE_IFIFO };
	unsigned kind = fuzz_u8(in) % 5;
	struct archive_entry *ent = archive_entry_new();
	char name[256], target[256];
	const uint8_t *p;
	size_t n = fuzz_take(in, fuzz_u8(in), &p), dlen;
	int rc = 0;

	if (!ent)
		abort();
	memcpy(name, p, n);
	name[n] = '\0';
	dlen = fuzz_take(in, fuzz_u16(in), &p);
	archive_entry_set_pathname(ent, name);
	archive_entry_set_filetype(ent, kinds[kind]);
	archive_entry_set_perm(ent, 0644);
	archive_entry_set_mtime(ent, 1700000000, 0);
	if (kind == 2 || kind == 3) {
		n = dlen < sizeof(target) - 1 ? dlen : sizeof(target) - 1;
		memcpy(target, p, n);
		target[n] = '\0';
		if (kind == 2)
			archive_entry_set_symlink(ent, target);
		else
			archive_entry_set_hardlink(ent, target);
		dlen = 0;
	}
	archive_entry_set_size(ent, kind == 0 ? (la_int64_t)dlen : 0);
	if (archive_write_header(a, ent) < ARCHIVE_WARN)
		rc = -1;
	else if (kind == 0 && dlen && archive_write_data(a, p, dlen) != (la_ssize_t)dlen)
		rc = -1;
	archive_entry_free(ent);
	return rc;
}

/* The archive described by the rest of the input, in *out (malloc'ed):
 * its length, or 0 when libarchive would not write it. */
static size_t fb_build(unsigned format, struct fuzz_in *in, uint8_t **out)
{
	struct archive *a = archive_write_new();
	size_t cap = 2 * in->n + FB_ENTRIES_MAX * 2048 + 65536, used = 0;
	uint8_t *buf = malloc(cap);
	int rc;

	if (!a || !buf)
		abort();
	rc = format == 1 ? archive_write_set_format_ustar(a) :
	     format == 2 ? archive_write_set_format_pax_restricted(a) :
			   archive_write_set_format_zip(a);
	if (rc == ARCHIVE_OK)
		rc = archive_write_add_filter_none(a);
	if (rc == ARCHIVE_OK)
		rc = archive_write_open_memory(a, buf, cap, &used);
	for (unsigned i = 0; rc == ARCHIVE_OK && in->n && i < FB_ENTRIES_MAX; i++)
		if (fb_write_entry(a, in))
			rc = ARCHIVE_FATAL;
	if (archive_write_close(a) != ARCHIVE_OK)
		rc = ARCHIVE_FATAL;
	archive_write_free(a);
	if (rc != ARCHIVE_OK || !used) {
		free(buf);
		return 0;
	}
	*out = buf;
	return used;
}

/* ---- the cache after an import ---------------------------------------------- */

struct fb_files {
	char name[64][CACHE_HEX_LEN + 1];
	bool partial[64];
	size_t n;
};

static int fb_file(void *arg, const char *name, uint64_t size, bool partial)
{
	struct fb_files *f = arg;

	(void)size;
	if (f->n < 64) {
		snprintf(f->name[f->n], sizeof(f->name[0]), "%s", name);
		f->partial[f->n++] = partial;
	}
	return 0;
}

/* Empties the cache; returns how many files were there. */
static size_t fb_cache_clean(void)
{
	struct fb_files f = { .n = 0 };

	if (cache_scan(fuzz_env.cache, fb_file, &f))
		abort();
	for (size_t i = 0; i < f.n; i++) {
		if (f.partial[i])
			cache_partial_remove(fuzz_env.cache, f.name[i]);
		else if (cache_image_remove(fuzz_env.cache, f.name[i]))
			abort();
	}
	return f.n;
}

static void fb_check_imported(struct bundle_job *j)
{
	fb_check_manifest(j);
	for (size_t i = 0; i < j->nfw; i++) {
		const struct bj_fw *f = &j->fw[i];
		struct firmware fw;
		char sha[CACHE_HEX_LEN + 1];
		uint64_t size = 0;
		int fd = -1;

		FUZZ_CHECK(f->seen && util_id_valid(f->fw_id));
		FUZZ_CHECK(catalogue_get(fuzz_env.st, f->fw_id, &fw, NULL) == 0);
		FUZZ_CHECK(!strcmp(fw.product_id, f->product) && !strcmp(fw.version, f->version));
		firmware_clear(&fw);
		FUZZ_CHECK(images_open(fuzz_env.images, f->fw_id, &fd, &size, sha) == 0);
		close(fd);
		FUZZ_CHECK(size == f->size && !strcmp(sha, f->sha));
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	fuzz_env_init(FB_QUOTA);
	fb_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	struct fuzz_in in = { buf, len };
	unsigned format = fuzz_u8(&in) % 4;
	uint8_t *built = NULL;
	struct bundle_job *j;
	struct err_info e = { 0 };
	int64_t firmware = FUZZ_COUNT("firmware");
	unsigned runs = 0;
	int rc;

	if (format) {
		fb_len = fb_build(format, &in, &built);
		if (!fb_len)
			return 0;
		fb_data = built;
	} else {
		fb_data = in.p;
		fb_len = in.n;
	}
	fb_bundles->require_signed = false;
	j = fb_job();
	if (store_begin(fuzz_env.st))
		abort();
	do
		rc = bj_run(j, &e);
	while (rc > 0 && ++runs < FB_RUNS_MAX);
	FUZZ_CHECK(rc <= 0);
	if (rc)
		FUZZ_CHECK(e.text[0]);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "import: %d %s\n", rc, e.text);
	bj_finish(j, rc, "%s", e.text[0] ? e.text : otagw_strerror(rc));
	if (rc == 0) {
		FUZZ_CHECK(j->state == BJ_DONE);
		fb_check_imported(j);
	} else {
		FUZZ_CHECK(j->state == BJ_FAILED);
		FUZZ_CHECK(FUZZ_COUNT("firmware") == firmware);
	}
	store_rollback(fuzz_env.st);
	if (rc)
		FUZZ_CHECK(fb_cache_clean() == 0);
	else
		fb_cache_clean();
	bj_free(j);
	free(built);
	return 0;
}
