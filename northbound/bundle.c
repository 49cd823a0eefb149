/* SPDX-License-Identifier: MIT */
/* bundle.c - offline bundles in and results out (see bundle.h).
 * An import job walks the archive from a loop timer, a slice at a time:
 *   OPEN -> (manifest.json first? one pass : a pass for the manifest, then a
 *   second for the images) -> every image into a cache partial, verified and
 *   published -> APPLY (one transaction) -> pushes -> DONE
 * A failure anywhere removes the images this job published that were not
 * in the cache before, and applies nothing. */
#define LOG_MOD "bundle"
#include "bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cache.h"
#include "catalogue.h"
#include "devices.h"
#include "images.h"
#include "json_in.h"
#include "log.h"
#include "manifest.h"
#include "proto.h"
#include "records.h"
#include "tasks.h"
#include "util.h"
#include "verify.h"

#define BJ_BLOCK 65536                /* bytes per archive read */
#define BJ_SLICE_BYTES (1u << 20)     /* bytes per loop slice (~5 ms) */
#define BJ_SIG_MAX 512                /* bytes of manifest.sig */
#define BJ_PASS1_ENTRIES 4096         /* entries before the manifest is known */
#define BJ_NAME_MAX 256

enum bj_state { BJ_IMPORTING, BJ_DONE, BJ_FAILED };
static const char *const bj_state_names[] = { "importing", "done", "failed" };

struct bj_fw {                        /* one manifest firmware entry */
	const cJSON *obj;                 /* borrowed from the job's manifest */
	char product[OTAGW_ID_MAX], version[OTAGW_VERSION_MAX];
	char file[BJ_NAME_MAX];
	uint64_t size;
	char sha[CACHE_HEX_LEN + 1];
	uint8_t digest[32];
	bool seen, added;                 /* image streamed; published by us */
	char fw_id[OTAGW_ID_MAX];         /* after APPLY */
};

struct bundle_job {
	struct bundles *b;
	struct bundle_job *next;
	char id[OTAGW_ID_MAX];
	char path[PATH_MAX], report[PATH_MAX], source[PATH_MAX];
	bool spooled;
	enum bj_state state;
	char error[OTAGW_ERR_TEXT_MAX];
	char bundle_id[OTAGW_ID_MAX];
	uint64_t bytes, total;
	int64_t start_time, end_time;
	struct archive *a;
	bool two_pass;
	int pass;                         /* 1: looking for the manifest; 2: images */
	unsigned entries;
	char *manifest, *sig;
	size_t manifest_len;
	cJSON *root;
	struct bj_fw *fw;
	size_t nfw;
	struct cache_writer *w;
	struct bj_fw *cur;
	cJSON *tasks;                     /* ids of tasks created or kept */
	lws_sorted_usec_list_t sul;
	uint8_t buf[BJ_BLOCK];            /* one archive read */
};

/* A file seen in import_dir, imported once it stops changing. */
struct bj_seen {
	char name[NAME_MAX + 1];
	off_t size;
	struct timespec mtime;
};
#define BJ_SEEN_MAX 32

struct bundles {
	struct core *core;
	struct lws_context *ctx;
	struct cache *cache;
	char spool[PATH_MAX - 128];       /* room for our file names below it */
	char import_dir[PATH_MAX];
	char *key_pem;
	bool require_signed;
	unsigned import_interval;
	char gateway_id[OTAGW_ID_MAX];
	struct bundle_job *jobs;          /* newest first */
	lws_sorted_usec_list_t sul_watch;
	struct bj_seen seen[BJ_SEEN_MAX]; /* candidates of the last look */
	unsigned nseen;
};

static void bj_slice(lws_sorted_usec_list_t *sul);
static void bj_pending_save(struct bundles *b);

/* ---- names ------------------------------------------------------------------- */

/* An archive entry name we accept, without "./" prefixes, into out.
 * false for absolute paths, "..", empty components, backslashes, control
 * bytes, or too long. A trailing '/' (directories) is dropped. */
static bool bj_name(const char *name, char out[BJ_NAME_MAX])
{
	size_t n;

	if (!name)
		return false;
	while (!strncmp(name, "./", 2))
		name += 2;
	n = strlen(name);
	if (!n || n >= BJ_NAME_MAX || name[0] == '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f || name[i] == '\\')
			return false;
	memcpy(out, name, n + 1);
	if (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
	for (const char *c = out; *c;) {
		size_t len = strcspn(c, "/");

		if (!len || (len == 2 && c[0] == '.' && c[1] == '.') || (len == 1 && c[0] == '.'))
			return false;
		c += len;
		c += *c == '/';
	}
	return true;
}

static int bj_hex32(const char *hex, uint8_t out[32])
{
	if (!hex || strlen(hex) != 64)
		return -EINVAL;
	for (size_t i = 0; i < 32; i++) {
		unsigned v = 0;

		for (int k = 0; k < 2; k++) {
			char c = hex[2 * i + k];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return -EINVAL;
		}
		out[i] = (uint8_t)v;
	}
	return 0;
}

/* e's detail behind a formatted prefix ("manifest.json: <detail>"); the
 * detail is copied first, as it cannot be source and destination at once. */
static int bj_wrap(struct err_info *e, int rc, const char *fmt, ...) OTAGW_PRINTF(3, 4);
static int bj_wrap(struct err_info *e, int rc, const char *fmt, ...)
{
	char old[OTAGW_ERR_TEXT_MAX], pre[OTAGW_ERR_TEXT_MAX];
	va_list ap;

	util_strlcpy(old, e->text, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	return err_set(e, rc, "%s: %s", pre, old);
}

/* ---- job end ------------------------------------------------------------------- */

static void bj_write_report(struct bundle_job *j)
{
	char tmp[PATH_MAX + 8];
	FILE *f;

	if (!j->report[0])
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", j->report);
	f = fopen(tmp, "we");
	if (!f) {
		LOGW("cannot write the report %s", tmp);
		return;
	}
	fprintf(f, "otagw bundle import: %s\nfile: %s\nbundleId: %s\n",
		j->state == BJ_DONE ? "imported" : "refused", j->source,
		j->bundle_id[0] ? j->bundle_id : "?");
	for (size_t i = 0; j->state == BJ_DONE && i < j->nfw; i++)
		fprintf(f, "firmware: %s (%s %s, %" PRIu64 " bytes)\n", j->fw[i].fw_id,
			j->fw[i].product, j->fw[i].version, j->fw[i].size);
	if (j->state != BJ_DONE)
		fprintf(f, "error: %s\n", j->error);
	fprintf(f, "time: %" PRId64 "\n", j->end_time);
	if (fclose(f) || rename(tmp, j->report))
		LOGW("cannot write the report %s", j->report);
}

/* Drops what the job holds; with failed, the images it added too. */
static void bj_release(struct bundle_job *j, bool failed)
{
	if (j->w)
		cache_writer_abort(j->w, false);
	j->w = NULL;
	j->cur = NULL;
	if (j->a)
		archive_read_free(j->a);
	j->a = NULL;
	for (size_t i = 0; failed && i < j->nfw; i++)
		if (j->fw[i].added && j->fw[i].seen &&
		    images_drop_unused(j->b->core->images, j->fw[i].sha))
			LOGI("image %s of a failed import stays: a firmware uses it", j->fw[i].sha);
	if (j->spooled)
		unlink(j->path);
	free(j->manifest);
	free(j->sig);
	j->manifest = j->sig = NULL;
}

static void bj_finish(struct bundle_job *j, int rc, const char *fmt, ...) OTAGW_PRINTF(3, 4);
static void bj_finish(struct bundle_job *j, int rc, const char *fmt, ...)
{
	va_list ap;

	lws_sul_cancel(&j->sul);
	if (rc) {
		va_start(ap, fmt);
		vsnprintf(j->error, sizeof(j->error), fmt, ap);
		va_end(ap);
	}
	j->state = rc ? BJ_FAILED : BJ_DONE;
	j->end_time = util_now_ms();
	bj_release(j, rc != 0);
	bj_pending_save(j->b);
	if (rc)
		LOGW("bundle import %s (%s) refused: %s", j->id, j->source, j->error);
	else
		LOGI("bundle %s imported from %s: %zu firmware", j->bundle_id, j->source, j->nfw);
	bj_write_report(j);
}

/* ---- manifest ------------------------------------------------------------------- */

static const char *const bj_top_keys[] = MANIFEST_TOP_KEYS;
static const char *const bj_fw_keys[] = MANIFEST_FW_KEYS;

static int bj_manifest_fw(struct bundle_job *j, const cJSON *o, struct bj_fw *f,
			  struct err_info *e)
{
	char sha[CACHE_HEX_LEN + 2];
	int64_t size;
	int rc = json_in_check_keys(o, bj_fw_keys, OTAGW_ARRAY_SIZE(bj_fw_keys), e);

	f->obj = o;
	if (!rc)
		rc = json_in_id(o, "productId", true, f->product, e);
	if (!rc)
		rc = json_in_str(o, "version", true, f->version, sizeof(f->version), e);
	if (!rc)
		rc = json_in_str(o, "file", true, f->file, sizeof(f->file), e);
	if (!rc)
		rc = json_in_int(o, "size", true, 0, INT64_C(1) << 53, &size, e);
	if (!rc)
		rc = json_in_str(o, "sha256", true, sha, sizeof(sha), e);
	if (rc)
		return rc;
	f->size = (uint64_t)size;
	if (bj_hex32(sha, f->digest))
		return err_set(e, -EINVAL, "field 'sha256': expected 64 lower-case hex digits");
	memcpy(f->sha, sha, sizeof(f->sha));
	if (!bj_name(f->file, (char[BJ_NAME_MAX]){ 0 }) || strchr(f->file, '\\'))
		return err_set(e, -EINVAL, "field 'file': '%.64s' is not a plain relative path",
			       f->file);
	for (size_t i = 0; i < (size_t)(f - j->fw); i++)
		if (!strcmp(j->fw[i].file, f->file))
			return err_set(e, -EINVAL, "file '%.64s' is named twice", f->file);
	return 0;
}

static int bj_manifest(struct bundle_job *j, struct err_info *e)
{
	const cJSON *arr, *it;
	int64_t t;
	int rc = json_in_strict((const uint8_t *)j->manifest, j->manifest_len, e);
	uint64_t sum = 0;

	if (rc)
		return bj_wrap(e, -EINVAL, "manifest.json");
	j->root = cJSON_ParseWithLength(j->manifest, j->manifest_len);
	if (!j->root)
		return err_set(e, -EINVAL, "manifest.json is not JSON");
	rc = json_in_check_keys(j->root, bj_top_keys, OTAGW_ARRAY_SIZE(bj_top_keys), e);
	if (!rc)
		rc = json_in_id(j->root, "bundleId", true, j->bundle_id, e);
	if (!rc)
		rc = json_in_int(j->root, "createTime", true, 0, INT64_MAX, &t, e);
	if (rc)
		return bj_wrap(e, rc, "manifest.json");
	arr = cJSON_GetObjectItemCaseSensitive(j->root, "firmware");
	j->nfw = cJSON_IsArray(arr) ? (size_t)cJSON_GetArraySize(arr) : 0;
	if (!j->nfw || j->nfw > BUNDLE_FIRMWARE_MAX)
		return err_set(e, -EINVAL, "manifest.json: 'firmware' must hold 1-%d entries",
			       BUNDLE_FIRMWARE_MAX);
	j->fw = calloc(j->nfw, sizeof(*j->fw));
	if (!j->fw)
		return -ENOMEM;
	j->nfw = 0;
	cJSON_ArrayForEach(it, arr) {
		rc = bj_manifest_fw(j, it, &j->fw[j->nfw], e);
		if (rc)
			return bj_wrap(e, rc, "manifest.json: firmware %zu", j->nfw);
		sum += j->fw[j->nfw++].size;
	}
	j->total = sum;
	if (sum > images_quota(j->b->core->images))
		return err_set(e, -ENOSPC, "the images (%" PRIu64 " bytes) exceed the cache quota "
			       "(%" PRIu64 " bytes)", sum, images_quota(j->b->core->images));
	return 0;
}

static int bj_signature(struct bundle_job *j, struct err_info *e)
{
	uint8_t digest[32];
	char *sig = j->sig;
	int rc;

	if (!j->sig)
		return j->b->require_signed ? err_set(e, -OTAGW_ESIGNATURE, "the bundle is not "
						      "signed (no manifest.sig) and "
						      "require_signed_bundles is on") : 0;
	if (!j->b->key_pem)
		return j->b->require_signed ? err_set(e, -OTAGW_ESIGNATURE, "no [gateway] "
						      "bundle_key to check the signature") : 0;
	while (*sig && strchr(" \t\r\n", sig[strlen(sig) - 1]))
		sig[strlen(sig) - 1] = '\0';
	rc = verify_sha256(j->manifest, j->manifest_len, digest);
	if (!rc)
		rc = verify_ecdsa_p256(j->b->key_pem, digest, sig, e);
	return rc ? bj_wrap(e, rc, "manifest.sig") : 0;
}

/* ---- the archive walk ------------------------------------------------------------ */

static int bj_open(struct bundle_job *j, struct err_info *e)
{
	j->a = archive_read_new();
	if (!j->a)
		return -ENOMEM;
	archive_read_support_filter_all(j->a);
	archive_read_support_format_tar(j->a);
	archive_read_support_format_zip(j->a);
	if (archive_read_open_filename(j->a, j->path, BJ_BLOCK) != ARCHIVE_OK)
		return err_set(e, -EBADMSG, "not a readable archive: %s",
			       archive_error_string(j->a) ? archive_error_string(j->a) : "?");
	j->entries = 0;
	return 0;
}

/* Reads the whole (small) entry into *out, at most max bytes. */
static int bj_read_small(struct bundle_job *j, size_t max, char **out, size_t *len,
			 struct err_info *e)
{
	char *buf = malloc(max + 1);
	size_t n = 0;
	la_ssize_t r;

	if (!buf)
		return -ENOMEM;
	while ((r = archive_read_data(j->a, buf + n, max + 1 - n)) > 0) {
		n += (size_t)r;
		if (n > max) {
			free(buf);
			return err_set(e, -EFBIG, "entry larger than %zu bytes", max);
		}
	}
	if (r < 0) {
		free(buf);
		return err_set(e, -EBADMSG, "archive: %s", archive_error_string(j->a));
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static struct bj_fw *bj_fw_by_file(struct bundle_job *j, const char *name)
{
	for (size_t i = 0; i < j->nfw; i++)
		if (!strcmp(j->fw[i].file, name))
			return &j->fw[i];
	return NULL;
}

/* The manifest and signature are in: check them. */
static int bj_manifest_ready(struct bundle_job *j, struct err_info *e)
{
	int rc;

	if (!j->manifest)
		return err_set(e, -EINVAL, "no manifest.json in the archive");
	rc = bj_manifest(j, e);
	if (!rc)
		rc = bj_signature(j, e);
	return rc;
}

/* Opens the cache partial for image f (entry of declared size esize). */
static int bj_image_begin(struct bundle_job *j, struct bj_fw *f, int64_t esize,
			  struct err_info *e)
{
	struct cache_expect x = { .size = f->size, .has_digest = true, .method = VERIFY_SHA256 };
	char token[33];
	uint64_t have;
	if (f->seen)
		return err_set(e, -EINVAL, "entry '%.64s' appears twice", f->file);
	if (esize >= 0 && (uint64_t)esize > f->size)
		return err_set(e, -EFBIG, "entry '%.64s' is %" PRId64 " bytes, the manifest says "
			       "%" PRIu64, f->file, esize, f->size);
	memcpy(x.digest, f->digest, 32);
	util_new_id(token);
	j->cur = f;
	return cache_writer_open(j->b->cache, token, &x, false, &j->w, &have, e);
}

/* Handles the next entry header: 1 went on, 0 end of archive, < 0 refused. */
static int bj_header(struct bundle_job *j, struct err_info *e)
{
	struct archive_entry *ent;
	char name[BJ_NAME_MAX];
	int r = archive_read_next_header(j->a, &ent);
	unsigned cap = j->manifest && !j->two_pass ? (unsigned)j->nfw + 2 + BUNDLE_ENTRIES_SLACK :
		       j->pass == 1 ? BJ_PASS1_ENTRIES : (unsigned)j->nfw + 2 + BUNDLE_ENTRIES_SLACK;
	bool first = j->entries == 0;

	if (r == ARCHIVE_EOF)
		return 0;
	if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
		return err_set(e, -EBADMSG, "archive: %s", archive_error_string(j->a));
	if (++j->entries > cap)
		return err_set(e, -E2BIG, "more than %u entries: not a bundle", cap);
	if (!bj_name(archive_entry_pathname(ent), name))
		return err_set(e, -EINVAL, "entry '%.64s': absolute, '..' or odd path",
			       archive_entry_pathname(ent) ? archive_entry_pathname(ent) : "");
	if (archive_entry_hardlink(ent) || archive_entry_symlink(ent))
		return err_set(e, -EINVAL, "entry '%.64s' is a link", name);
	if (archive_entry_filetype(ent) == AE_IFDIR)
		return 1;
	if (archive_entry_filetype(ent) != AE_IFREG)
		return err_set(e, -EINVAL, "entry '%.64s' is not a regular file", name);
	if (!strcmp(name, "manifest.json") || !strcmp(name, "manifest.sig")) {
		bool man = name[9] == 'j';
		char **dst = man ? &j->manifest : &j->sig;
		size_t len = 0;
		int rc;

		if (j->pass == 2)
			return 1;                 /* read in pass 1 */
		if (*dst)
			return err_set(e, -EINVAL, "%s appears twice", name);
		rc = bj_read_small(j, man ? BUNDLE_MANIFEST_MAX : BJ_SIG_MAX, dst, &len, e);
		if (rc)
			return bj_wrap(e, rc, "%s", name);
		if (man) {
			j->manifest_len = len;
			j->two_pass = !first;
		}
		return 1;
	}
	if (j->two_pass && j->pass == 1) {
		if (archive_entry_size_is_set(ent) &&
		    (uint64_t)archive_entry_size(ent) > images_quota(j->b->core->images))
			return err_set(e, -EFBIG, "entry '%.64s' is larger than the cache", name);
		return 1;                     /* its data is skipped by the next header */
	}
	if (!j->manifest) {
		j->two_pass = true;
		j->pass = 1;
		return 1;
	}
	if (!j->root && (r = bj_manifest_ready(j, e)))
		return r;
	if (!bj_fw_by_file(j, name))
		return err_set(e, -EINVAL, "entry '%.64s' is not in the manifest", name);
	return bj_image_begin(j, bj_fw_by_file(j, name),
			      archive_entry_size_is_set(ent) ? archive_entry_size(ent) : -1, e) ?:
	       1;
}

static bool bj_image_exists(struct bundle_job *j, const char *sha)
{
	uint64_t size;
	int fd;

	if (cache_image_open(j->b->cache, sha, &fd, &size))
		return false;
	close(fd);
	return true;
}

/* Remembers the images running imports published but did not apply yet
 * (settings 'bundle_pending'), so a restart after a crash removes them. */
static void bj_pending_save(struct bundles *b)
{
	char *list = calloc(BUNDLE_FIRMWARE_MAX * 8 + 1, CACHE_HEX_LEN + 1), *p = list;

	if (!list)
		return;
	for (struct bundle_job *j = b->jobs; j; j = j->next)
		for (size_t i = 0; j->state == BJ_IMPORTING && i < j->nfw; i++)
			if (j->fw[i].added && p - list < BUNDLE_FIRMWARE_MAX * 8 * (CACHE_HEX_LEN + 1))
				p += snprintf(p, CACHE_HEX_LEN + 2, "%s%s", p == list ? "" : " ", j->fw[i].sha);
	if (store_exec1(b->core->st, "INSERT INTO settings (key, value) VALUES"
			" ('bundle_pending', ?1) ON CONFLICT (key) DO UPDATE SET"
			" value = excluded.value", list))
		LOGW("cannot remember the images of running imports");
	free(list);
}

/* Start-up: images of imports a crash interrupted go, unless in use. */
static void bj_pending_clean(struct bundles *b)
{
	sqlite3_stmt *s = store_stmt(b->core->st, "SELECT value FROM settings"
				     " WHERE key = 'bundle_pending'");
	char *list = NULL, *save = NULL;

	if (!s)
		return;
	if (sqlite3_step(s) == SQLITE_ROW)
		list = store_col_dup(s, 0);
	store_done(s);
	for (char *t = list ? strtok_r(list, " ", &save) : NULL; t; t = strtok_r(NULL, " ", &save))
		if (cache_name_valid(t) && !images_drop_unused(b->core->images, t))
			LOGI("removed image %s of an import that did not finish", t);
	free(list);
	bj_pending_save(b);
}

/* Streams up to budget bytes of the current image: 1 more to come, 0 the
 * entry is done (published), < 0 refused. */
static int bj_image_data(struct bundle_job *j, size_t *budget, struct err_info *e)
{
	char sha[CACHE_HEX_LEN + 1];
	la_ssize_t r;
	int rc;

	while (*budget) {
		r = archive_read_data(j->a, j->buf, sizeof(j->buf));
		if (r < 0)
			return err_set(e, -EBADMSG, "archive: %s", archive_error_string(j->a));
		if (r == 0)
			break;
		rc = cache_writer_feed(j->w, j->buf, (size_t)r);
		if (rc)
			return err_set(e, rc, "entry '%.64s': %s", j->cur->file,
				       rc == -EFBIG ? "larger than the manifest says" :
				       otagw_strerror(rc));
		j->bytes += (uint64_t)r;
		*budget = *budget > (size_t)r ? *budget - (size_t)r : 0;
	}
	if (*budget)
		goto done;
	return 1;
done:
	/* decided now, in the same loop turn as the rename: another import may
	 * have published the same image since this entry began */
	j->cur->added = !bj_image_exists(j, j->cur->sha);
	rc = cache_writer_commit(j->w, sha, e);
	j->w = NULL;
	if (rc)
		return bj_wrap(e, rc, "entry '%.64s'", j->cur->file);
	j->cur->seen = true;
	if (j->cur->added)
		bj_pending_save(j->b);
	j->cur = NULL;
	return 0;
}

/* ---- applying: one transaction ---------------------------------------------------- */

/* The firmware of f: found (same product, version and image) or created. */
static int bj_apply_fw(struct bundle_job *j, struct bj_fw *f, struct err_info *e)
{
	struct images *im = j->b->core->images;
	struct firmware fw = { 0 };
	cJSON *body, *img;
	const cJSON *sha;
	bool same;
	int rc = catalogue_find(j->b->core->st, f->product, f->version, &fw);

	if (!bj_image_exists(j, f->sha))
		rc = err_set(e, -ENOENT, "image %s left the cache during the import", f->sha);
	else if (!rc) {
		img = images_firmware_json(im, fw.id);
		sha = cJSON_GetObjectItem(img, "sha256");
		same = cJSON_IsString(sha) && !strcmp(sha->valuestring, f->sha);
		util_strlcpy(f->fw_id, fw.id, sizeof(f->fw_id));
		firmware_clear(&fw);
		cJSON_Delete(img);
		if (!same)
			return err_set(e, -EEXIST, "firmware %s %s is already on the gateway with "
				       "another image", f->product, f->version);
		return images_adopt(im, f->fw_id, f->sha, f->size);
	}
	if (rc != -ENOENT)
		return err_set(e, rc, "cannot read the catalogue");
	body = cJSON_Duplicate(f->obj, true);
	if (!body)
		return -ENOMEM;
	cJSON_DeleteItemFromObjectCaseSensitive(body, "file");
	cJSON_DeleteItemFromObjectCaseSensitive(body, "sha256");
	cJSON_DeleteItemFromObjectCaseSensitive(body, "tasks");
	if (!cJSON_HasObjectItem(body, "sign")) {
		cJSON_AddStringToObject(body, "sign", f->sha);
		cJSON_DeleteItemFromObjectCaseSensitive(body, "signMethod");
		cJSON_AddStringToObject(body, "signMethod", "sha256");
	}
	rc = catalogue_create(j->b->core->st, body, &fw, e);
	cJSON_Delete(body);
	if (!rc)
		util_strlcpy(f->fw_id, fw.id, sizeof(f->fw_id));
	firmware_clear(&fw);
	return rc ? rc : images_adopt(im, f->fw_id, f->sha, f->size);
}

static const char *const bj_task_keys[] = MANIFEST_TASK_KEYS;

/* A task without an id gets one derived from the bundle, so a second
 * import of the same bundle finds it. */
static int bj_task_id(struct bundle_job *j, const cJSON *t, size_t fi, size_t ti, char id[],
		      struct err_info *e)
{
	char seed[OTAGW_ID_MAX + 48], hex[33];
	uint8_t d[32];
	int rc = json_in_id(t, "id", false, id, e);

	if (rc <= 0)
		return rc;
	snprintf(seed, sizeof(seed), "%s/%zu/%zu", j->bundle_id, fi, ti);
	if (verify_sha256(seed, strlen(seed), d))
		return -EIO;
	verify_hex(d, 16, hex);
	snprintf(id, OTAGW_ID_MAX, "b-%s", hex);
	return 0;
}

/* The ids of a task's `devices`, borrowed from t; *n = 0 for none. */
static int bj_task_devices(const cJSON *t, const char ***ids, size_t *n, struct err_info *e)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(t, "devices"), *it;

	*ids = NULL;
	*n = 0;
	if (!arr)
		return 0;
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > OTAGW_PUBLISH_IDS_MAX)
		return err_set(e, -EINVAL, "field 'devices': expected an array of up to %d ids",
			       OTAGW_PUBLISH_IDS_MAX);
	*ids = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(**ids));
	if (!*ids)
		return -ENOMEM;
	cJSON_ArrayForEach(it, arr) {
		if (!cJSON_IsString(it) || !util_id_valid(it->valuestring))
			return err_set(e, -EINVAL, "field 'devices': expected device ids");
		(*ids)[(*n)++] = it->valuestring;
	}
	return 0;
}

static int bj_apply_task(struct bundle_job *j, struct bj_fw *f, const cJSON *t, size_t fi,
			 size_t ti, struct err_info *e)
{
	struct task_publish_result res;
	char id[OTAGW_ID_MAX];
	struct task task = { 0 };
	const char **ids = NULL;
	cJSON *body = NULL;
	const cJSON *all = cJSON_GetObjectItemCaseSensitive(t, "all");
	size_t n = 0;
	int rc = json_in_check_keys(t, bj_task_keys, OTAGW_ARRAY_SIZE(bj_task_keys), e);

	if (!rc)
		rc = bj_task_id(j, t, fi, ti, id, e);
	if (!rc && !tasks_get(j->b->core->st, id, &task, NULL)) {
		task_clear(&task);
		cJSON_AddItemToArray(j->tasks, cJSON_CreateString(id));
		return 0;                     /* imported before */
	}
	if (!rc && all && !cJSON_IsBool(all))
		rc = err_set(e, -EINVAL, "field 'all': expected true or false");
	if (!rc)
		rc = bj_task_devices(t, &ids, &n, e);
	if (!rc && !cJSON_IsTrue(all) == !n)
		rc = err_set(e, -EINVAL, "give either \"all\": true or a non-empty 'devices'");
	if (!rc && !(body = cJSON_Duplicate(t, true)))
		rc = -ENOMEM;
	if (!rc) {
		cJSON_DeleteItemFromObjectCaseSensitive(body, "all");
		cJSON_DeleteItemFromObjectCaseSensitive(body, "devices");
		cJSON_DeleteItemFromObjectCaseSensitive(body, "id");
		cJSON_AddStringToObject(body, "id", id);
		rc = tasks_create(j->b->core->st, f->fw_id, body, &task, e);
		task_clear(&task);
	}
	if (!rc)
		rc = tasks_publish(j->b->core->st, id, cJSON_IsTrue(all), ids, n, &res, e);
	if (!rc)
		cJSON_AddItemToArray(j->tasks, cJSON_CreateString(id));
	cJSON_Delete(body);
	free(ids);
	return rc;
}

static int bj_apply_all(struct bundle_job *j, struct err_info *e)
{
	for (size_t i = 0; i < j->nfw; i++) {
		const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(j->fw[i].obj, "tasks"), *t;
		size_t ti = 0;
		int rc = bj_apply_fw(j, &j->fw[i], e);

		if (rc)
			return bj_wrap(e, rc, "firmware %s %s", j->fw[i].product, j->fw[i].version);
		if (tasks && !cJSON_IsArray(tasks))
			return err_set(e, -EINVAL, "firmware %zu: 'tasks' must be an array", i);
		cJSON_ArrayForEach(t, tasks) {
			rc = bj_apply_task(j, &j->fw[i], t, i, ti++, e);
			if (rc)
				return bj_wrap(e, rc, "firmware %s %s, task %zu", j->fw[i].product,
					       j->fw[i].version, ti - 1);
		}
	}
	return 0;
}

static int bj_apply(struct bundle_job *j, struct err_info *e)
{
	struct store *st = j->b->core->st;
	const cJSON *t;
	int rc = store_begin(st);

	if (rc)
		return err_set(e, rc, "cannot begin a transaction");
	cJSON_Delete(j->tasks);
	j->tasks = cJSON_CreateArray();
	rc = j->tasks ? bj_apply_all(j, e) : -ENOMEM;
	if (rc) {
		store_rollback(st);
		return rc;
	}
	rc = store_commit(st);
	if (rc)
		return err_set(e, rc, "cannot commit the import");
	cJSON_ArrayForEach(t, j->tasks)
		if (core_push_task(j->b->core, t->valuestring, NULL))
			LOGW("task %s: pushes failed", t->valuestring);
	return 0;
}

/* ---- the slices ----------------------------------------------------------------- */

/* The archive ended: the manifest pass restarts for the images, or all is
 * in and the import applies. 1 when more slices are needed. */
static int bj_archive_end(struct bundle_job *j, struct err_info *e)
{
	int rc;

	if (j->two_pass && j->pass == 1) {
		rc = bj_manifest_ready(j, e);
		archive_read_free(j->a);
		j->a = NULL;
		j->pass = 2;
		return rc ? rc : bj_open(j, e) ?: 1;
	}
	if (!j->root && (rc = bj_manifest_ready(j, e)))
		return rc;
	for (size_t i = 0; i < j->nfw; i++)
		if (!j->fw[i].seen)
			return err_set(e, -ENOENT, "'%.64s', named by the manifest, is not in the "
				       "archive", j->fw[i].file);
	return bj_apply(j, e);
}

static int bj_run(struct bundle_job *j, struct err_info *e)
{
	size_t budget = BJ_SLICE_BYTES;
	unsigned headers = 0;
	int rc = 0;

	if (!j->a && (rc = bj_open(j, e)))
		return rc;
	while (budget && headers < 512) {
		if (j->w) {
			rc = bj_image_data(j, &budget, e);
			if (rc < 0)
				return rc;
			continue;
		}
		headers++;
		rc = bj_header(j, e);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return bj_archive_end(j, e);
	}
	return 1;
}

static void bj_slice(lws_sorted_usec_list_t *sul)
{
	struct bundle_job *j = lws_container_of(sul, struct bundle_job, sul);
	struct err_info e = { 0 };
	int rc = bj_run(j, &e);

	if (rc > 0) {
		lws_sul_schedule(j->b->ctx, 0, &j->sul, bj_slice, 1);
		return;
	}
	bj_finish(j, rc, "%s", e.text[0] ? e.text : otagw_strerror(rc));
}

/* ---- public ------------------------------------------------------------------------ */

static void bj_free(struct bundle_job *j)
{
	lws_sul_cancel(&j->sul);
	bj_release(j, j->state == BJ_IMPORTING);
	cJSON_Delete(j->root);
	cJSON_Delete(j->tasks);
	free(j->fw);
	free(j);
}

/* Keeps the newest BUNDLE_JOBS_KEPT finished jobs. */
static void bj_trim(struct bundles *b)
{
	struct bundle_job **pp = &b->jobs;
	unsigned kept = 0;

	while (*pp) {
		struct bundle_job *j = *pp;

		if (j->state != BJ_IMPORTING && ++kept > BUNDLE_JOBS_KEPT) {
			*pp = j->next;
			bj_free(j);
			continue;
		}
		pp = &j->next;
	}
}

int bundles_import(struct bundles *b, const char *path, const char *report, bool spooled,
		   char id[OTAGW_ID_MAX], struct err_info *e)
{
	struct bundle_job *j = calloc(1, sizeof(*j));
	const char *base = strrchr(path, '/');

	if (!j)
		return err_set(e, -ENOMEM, "out of memory");
	j->b = b;
	util_new_id(j->id);
	if (util_strlcpy(j->path, path, sizeof(j->path)) ||
	    util_strlcpy(j->report, report ? report : "", sizeof(j->report))) {
		free(j);
		return err_set(e, -ENAMETOOLONG, "path too long");
	}
	util_strlcpy(j->source, spooled ? "upload" : base ? base + 1 : path, sizeof(j->source));
	j->spooled = spooled;
	j->pass = 1;
	j->start_time = util_now_ms();
	j->next = b->jobs;
	b->jobs = j;
	bj_trim(b);
	lws_sul_schedule(b->ctx, 0, &j->sul, bj_slice, 1);
	util_strlcpy(id, j->id, OTAGW_ID_MAX);
	LOGI("bundle import %s from %s started", j->id, j->source);
	return 0;
}

static cJSON *bj_json(const struct bundle_job *j)
{
	cJSON *o = cJSON_CreateObject(), *fw = o ? cJSON_AddArrayToObject(o, "firmware") : NULL;

	if (!fw) {
		cJSON_Delete(o);
		return NULL;
	}
	cJSON_AddStringToObject(o, "id", j->id);
	cJSON_AddStringToObject(o, "bundleId", j->bundle_id);
	cJSON_AddStringToObject(o, "source", j->source);
	cJSON_AddStringToObject(o, "state", bj_state_names[j->state]);
	cJSON_AddNumberToObject(o, "bytes", (double)j->bytes);
	cJSON_AddNumberToObject(o, "total", (double)j->total);
	cJSON_AddStringToObject(o, "error", j->error);
	cJSON_AddNumberToObject(o, "startTime", (double)j->start_time);
	cJSON_AddNumberToObject(o, "endTime", (double)j->end_time);
	for (size_t i = 0; j->state == BJ_DONE && i < j->nfw; i++)
		cJSON_AddItemToArray(fw, cJSON_CreateString(j->fw[i].fw_id));
	cJSON_AddItemToObject(o, "tasks", j->tasks && j->state == BJ_DONE ?
				      cJSON_Duplicate(j->tasks, true) : cJSON_CreateArray());
	return o;
}

/* ---- POST /api/bundles: the body spooled to a file we name ----------------------- */

struct bj_upload {
	struct bundles *b;
	int fd;
	char path[PATH_MAX];
	uint64_t left;
};

static bool bj_up_match(void *ctx, const struct http_req *req)
{
	return req->method == HTTP_POST && !strcmp(req->path, "/api/bundles");
}


static int bj_error(struct http_resp *resp, int status, const char *text)
{
	cJSON *o = cJSON_CreateObject();

	if (o)
		cJSON_AddStringToObject(o, "error", text);
	http_resp_json(resp, status, o);
	return -1;
}

static int bj_up_begin(void *ctx, const struct http_req *req, uint64_t len, void **state,
		       struct http_resp *resp)
{
	const struct bundles_upload_ctx *u = ctx;
	struct bj_upload *up;
	char token[33];

	if (u->authorized && !u->authorized(u->api, req)) {
		resp->www_authenticate = "Bearer realm=\"otagw\"";
		return bj_error(resp, 401, "missing or wrong API token (Authorization: Bearer ...)");
	}
	if (!len)
		return bj_error(resp, 400, "the body must be the bundle archive");
	if (len > images_quota(u->b->core->images) + BUNDLE_MANIFEST_MAX * 2)
		return bj_error(resp, 413, "the bundle is larger than the cache quota");
	up = calloc(1, sizeof(*up));
	if (!up)
		return -ENOMEM;
	util_new_id(token);
	snprintf(up->path, sizeof(up->path), "%s/%s.upload", u->b->spool, token);
	up->fd = open(up->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (up->fd < 0) {
		free(up);
		return bj_error(resp, 507, "cannot store the upload");
	}
	up->b = u->b;
	up->left = len;
	*state = up;
	return 0;
}

static void bj_up_abort(void *state)
{
	struct bj_upload *up = state;

	close(up->fd);
	unlink(up->path);
	free(up);
}

static int bj_up_data(void *state, const void *buf, size_t len, struct http_resp *resp)
{
	struct bj_upload *up = state;
	const uint8_t *p = buf;

	while (len) {
		ssize_t w = write(up->fd, p, len);

		if (w <= 0) {
			bj_up_abort(up);
			return bj_error(resp, 507, "cannot store the upload (disk full?)");
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int bj_up_end(void *state, struct http_resp *resp)
{
	struct bj_upload *up = state;
	struct err_info e = { 0 };
	char id[OTAGW_ID_MAX];
	cJSON *o;
	int rc = close(up->fd);

	if (rc || bundles_import(up->b, up->path, NULL, true, id, &e)) {
		unlink(up->path);
		free(up);
		return bj_error(resp, 500, rc ? "cannot store the upload" : err_text(&e));
	}
	free(up);
	o = cJSON_CreateObject();
	if (o) {
		cJSON_AddStringToObject(o, "id", id);
		cJSON_AddStringToObject(o, "state", "importing");
	}
	return http_resp_json(resp, 202, o);
}

const struct http_stream_ops bundles_upload = {
	.match = bj_up_match,
	.begin = bj_up_begin,
	.data = bj_up_data,
	.end = bj_up_end,
	.abort = bj_up_abort,
};

/* ---- GET /api/export ----------------------------------------------------------------- */

struct bj_export {
	struct bundles *b;
	struct buf out;                   /* messages.jsonl */
	uint64_t seq;
	size_t states, reports;
	int64_t until;
};

static int bj_export_line(struct bj_export *x, char *frame, size_t len)
{
	int rc = buf_append(&x->out, frame, len);

	if (!rc)
		rc = buf_append(&x->out, "\n", 1);
	free(frame);
	return rc;
}

static int bj_export_state(void *ctx, const struct record_event *ev)
{
	struct bj_export *x = ctx;
	struct proto_record_state ps = {
		.task_id = ev->r->task_id, .record_id = ev->r->id, .device_id = ev->r->device_id,
		.firmware_id = ev->r->firmware_id, .version = ev->r->version,
		.created = !ev->from[0], .progress = ev->progress, .error_reason = ev->reason,
		.time = ev->time,
	};
	char *f = NULL;
	size_t n = 0;

	if (record_state_parse(ev->to, &ps.to) || (!ps.created &&
						    record_state_parse(ev->from, &ps.from)))
		return 0;
	if (proto_enc_record_state(++x->seq, ev->time, &ps, &f, &n))
		return 0;                     /* a row the protocol cannot carry */
	x->states++;
	return bj_export_line(x, f, n);
}

static int bj_export_report(void *ctx, const struct device *d)
{
	struct bj_export *x = ctx;
	struct msg m;
	char *f = NULL;
	size_t n = 0;
	int rc;

	msg_init(&m, MSG_REPORT_FIRMWARE);
	util_strlcpy(m.device_id, d->id, sizeof(m.device_id));
	util_strlcpy(m.version, d->firmware_version, sizeof(m.version));
	m.timestamp = d->last_seen;
	rc = msg_set_properties(&m, d->properties);
	if (!rc)
		rc = proto_enc_child(++x->seq, d->last_seen, x->b->gateway_id[0] ? x->b->gateway_id :
				     "gateway", &m, &f, &n);
	msg_clear(&m);
	if (rc)
		return 0;
	x->reports++;
	return bj_export_line(x, f, n);
}

static int bj_write_entry(struct archive *a, const char *name, const void *p, size_t len)
{
	struct archive_entry *ent = archive_entry_new();
	int rc;

	if (!ent)
		return -ENOMEM;
	archive_entry_set_pathname(ent, name);
	archive_entry_set_size(ent, (la_int64_t)len);
	archive_entry_set_filetype(ent, AE_IFREG);
	archive_entry_set_perm(ent, 0644);
	archive_entry_set_mtime(ent, time(NULL), 0);
	rc = archive_write_header(a, ent) == ARCHIVE_OK &&
	     archive_write_data(a, p, len) == (la_ssize_t)len ? 0 : -EIO;
	archive_entry_free(ent);
	return rc;
}

/* Writes the export archive to path. */
static int bj_export_write(struct bj_export *x, int64_t since, const char *path)
{
	struct archive *a = archive_write_new();
	cJSON *meta = cJSON_CreateObject();
	char *text = NULL;
	int rc = a && meta ? 0 : -ENOMEM;

	if (!rc) {
		cJSON_AddStringToObject(meta, "gatewayId", x->b->gateway_id);
		cJSON_AddNumberToObject(meta, "since", (double)since);
		cJSON_AddNumberToObject(meta, "until", (double)x->until);
		cJSON_AddNumberToObject(meta, "recordStates", (double)x->states);
		cJSON_AddNumberToObject(meta, "reports", (double)x->reports);
		cJSON_AddStringToObject(meta, "seqSpace", "export");
		cJSON_AddStringToObject(meta, "protocol", PROTO_SUBPROTOCOL);
		text = cJSON_PrintUnformatted(meta);
		rc = text ? 0 : -ENOMEM;
	}
	if (!rc && (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
		    archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
		    archive_write_open_filename(a, path) != ARCHIVE_OK))
		rc = -EIO;
	if (!rc)
		rc = bj_write_entry(a, "export.json", text, strlen(text));
	if (!rc)
		rc = bj_write_entry(a, "messages.jsonl", x->out.data ? x->out.data : (uint8_t *)"",
				    x->out.len);
	if (a && (archive_write_close(a) != ARCHIVE_OK))
		rc = rc ? rc : -EIO;
	archive_write_free(a);
	cJSON_Delete(meta);
	free(text);
	return rc;
}

static int bj_export(struct bundles *b, const struct http_req *req, struct http_resp *resp)
{
	const char *q = http_arg(req, "since");
	struct bj_export x = { .b = b, .until = util_now_ms() };
	char path[PATH_MAX], tok[33], until[24];
	int64_t since = 0;
	uint64_t v;
	int fd, rc;

	if (q && parse_u64(q, strlen(q), INT64_MAX, &v))
		return bj_error(resp, 400, "since: expected milliseconds"), 0;
	if (q)
		since = (int64_t)v;
	else if (store_scalar(b->core->st, "SELECT CAST(value AS INTEGER) FROM settings"
			      " WHERE key = 'export_until'", &since))
		since = 0;
	if (x.until < since)
		x.until = since;              /* a range never ends before it starts */
	buf_init(&x.out, (size_t)1 << 30);
	rc = records_history_since(b->core->st, since, bj_export_state, &x);
	if (!rc)
		rc = devices_seen_since(b->core->st, since, bj_export_report, &x);
	util_new_id(tok);
	snprintf(path, sizeof(path), "%s/export-%s.tar.gz", b->spool, tok);
	if (!rc)
		rc = bj_export_write(&x, since, path);
	buf_clear(&x.out);
	fd = rc ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	unlink(path);
	if (fd < 0)
		return bj_error(resp, 500, "cannot write the export"), 0;
	snprintf(until, sizeof(until), "%" PRId64, x.until);
	if (!q && store_exec1(b->core->st, "INSERT INTO settings (key, value) VALUES"
			      " ('export_until', ?1) ON CONFLICT (key) DO UPDATE SET"
			      " value = excluded.value", until))
		LOGW("cannot remember the end of this export");
	resp->status = 200;
	resp->content_type = "application/gzip";
	resp->has_file = true;
	resp->file_fd = fd;
	resp->file_off = 0;
	resp->body_len = (uint64_t)lseek(fd, 0, SEEK_END);
	LOGI("export: %zu record states, %zu reports since %" PRId64, x.states, x.reports, since);
	return 0;
}

/* ---- GET /api/bundles, /api/bundles/{id}, /api/export ------------------------------ */

int bundles_http(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct bundles *b = ctx;
	const char *id = req->path + strlen("/api/bundles/");
	cJSON *o, *arr;

	if (!strncmp(req->path, "/api/export", 11))
		return req->method == HTTP_GET ? bj_export(b, req, resp) :
		       (bj_error(resp, 405, "use GET"), 0);
	if (req->method != HTTP_GET && req->method != HTTP_HEAD)
		return bj_error(resp, 405, "use GET (or POST /api/bundles with the archive)"), 0;
	if (!strcmp(req->path, "/api/bundles")) {
		o = cJSON_CreateObject();
		arr = o ? cJSON_AddArrayToObject(o, "items") : NULL;
		for (struct bundle_job *j = b->jobs; arr && j; j = j->next)
			cJSON_AddItemToArray(arr, bj_json(j));
		return http_resp_json(resp, 200, o);
	}
	for (struct bundle_job *j = b->jobs; j; j = j->next)
		if (!strcmp(j->id, id))
			return http_resp_json(resp, 200, bj_json(j));
	bj_error(resp, 404, "no such import");
	return 0;
}

/* ---- the watched directory -------------------------------------------------------------- */

static bool bj_bundle_name(const char *n)
{
	static const char *const ext[] = { ".tar", ".tar.gz", ".tgz", ".tar.xz", ".zip" };
	size_t len = strlen(n);

	if (n[0] == '.')
		return false;
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(ext); i++) {
		size_t el = strlen(ext[i]);

		if (len > el && !strcasecmp(n + len - el, ext[i]))
			return true;
	}
	return false;
}

static bool bj_busy(const struct bundles *b, const char *path)
{
	for (const struct bundle_job *j = b->jobs; j; j = j->next)
		if (!strcmp(j->path, path) && (j->state == BJ_IMPORTING || !j->report[0]))
			return true;
	return false;
}

/* True when name had this size and mtime at the previous look too (a file
 * still being copied onto the stick changes between looks). Notes it in
 * next[] for the next look. */
static bool bj_stable(const struct bundles *b, const char *name, const struct stat *sb,
		      struct bj_seen *next, unsigned *nnext)
{
	bool same = false;

	for (unsigned i = 0; i < b->nseen && !same; i++)
		same = !strcmp(b->seen[i].name, name) && b->seen[i].size == sb->st_size &&
		       b->seen[i].mtime.tv_sec == sb->st_mtim.tv_sec &&
		       b->seen[i].mtime.tv_nsec == sb->st_mtim.tv_nsec;
	if (!same && *nnext < BJ_SEEN_MAX) {
		util_strlcpy(next[*nnext].name, name, sizeof(next[0].name));
		next[*nnext].size = sb->st_size;
		next[(*nnext)++].mtime = sb->st_mtim;
	}
	return same;
}

/* A report newer than the bundle file: done with it. A file changed after
 * its report (a copy that was still running) is imported again. */
static bool bj_reported(const char *report, const struct stat *bundle)
{
	struct stat rs;

	if (stat(report, &rs))
		return false;
	return rs.st_mtim.tv_sec > bundle->st_mtim.tv_sec ||
	       (rs.st_mtim.tv_sec == bundle->st_mtim.tv_sec &&
		rs.st_mtim.tv_nsec >= bundle->st_mtim.tv_nsec);
}

static void bj_watch_cb(lws_sorted_usec_list_t *sul)
{
	struct bundles *b = lws_container_of(sul, struct bundles, sul_watch);
	DIR *d = opendir(b->import_dir);
	struct bj_seen next[BJ_SEEN_MAX];
	unsigned nnext = 0;
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char path[PATH_MAX], report[PATH_MAX + 16], id[OTAGW_ID_MAX];
		struct err_info e = { 0 };
		struct stat sb;

		if (!bj_bundle_name(de->d_name) ||
		    (size_t)snprintf(path, sizeof(path), "%s/%s", b->import_dir, de->d_name) >=
			    sizeof(path))
			continue;
		snprintf(report, sizeof(report), "%s.report.txt", path);
		if (stat(path, &sb) || !S_ISREG(sb.st_mode) || bj_reported(report, &sb) ||
		    bj_busy(b, path) || !bj_stable(b, de->d_name, &sb, next, &nnext))
			continue;
		if (bundles_import(b, path, report, false, id, &e))
			LOGW("%s: %s", path, err_text(&e));
	}
	if (d)
		closedir(d);
	if (nnext)              /* else next[] is unwritten: no read of it at all */
		memcpy(b->seen, next, nnext * sizeof(next[0]));
	b->nseen = nnext;
	lws_sul_schedule(b->ctx, 0, &b->sul_watch, bj_watch_cb,
			 (lws_usec_t)b->import_interval * LWS_US_PER_SEC);
}

/* ---- life cycle ------------------------------------------------------------------------ */

/* Start-up: uploads and exports a crash left in the spool are removed. */
static void bj_spool_clean(struct bundles *b)
{
	DIR *d = opendir(b->spool);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char path[PATH_MAX];
		size_t n = strlen(de->d_name);

		if (de->d_name[0] == '.' ||
		    (!(n > 7 && !strcmp(de->d_name + n - 7, ".upload")) &&
		     strncmp(de->d_name, "export-", 7)))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%.200s", b->spool, de->d_name) <
			    sizeof(path) && !unlink(path))
			LOGI("removed %s left by an interrupted upload or export", path);
	}
	if (d)
		closedir(d);
}

static char *bj_read_key(const char *path, struct err_info *e)
{
	FILE *f = fopen(path, "re");
	char *buf = f ? calloc(1, 16384) : NULL;
	size_t n = buf ? fread(buf, 1, 16383, f) : 0;

	if (f)
		fclose(f);
	if (!n) {
		free(buf);
		err_set(e, -EINVAL, "cannot read [gateway] bundle_key %s", path);
		return NULL;
	}
	return buf;
}

int bundles_new(struct bundles **out, struct core *core, struct lws_context *ctx,
		const struct bundles_cfg *cfg, struct err_info *e)
{
	struct bundles *b;

	if (!core->images)
		return err_set(e, -EINVAL, "bundles need the image cache");
	b = calloc(1, sizeof(*b));
	if (!b)
		return err_set(e, -ENOMEM, "out of memory");
	b->core = core;
	b->ctx = ctx;
	b->cache = images_cache(core->images);
	b->require_signed = cfg->require_signed;
	b->import_interval = cfg->import_interval ? cfg->import_interval : 5;
	util_strlcpy(b->gateway_id, cfg->gateway_id ? cfg->gateway_id : "", sizeof(b->gateway_id));
	if ((size_t)snprintf(b->spool, sizeof(b->spool), "%s/bundles", cfg->data_dir) >=
	    sizeof(b->spool)) {
		free(b);
		return err_set(e, -ENAMETOOLONG, "the data directory path is too long");
	}
	if (mkdir(b->spool, 0700) && errno != EEXIST) {
		free(b);
		return err_set(e, -errno, "cannot create %s: %s", b->spool, strerror(errno));
	}
	bj_spool_clean(b);
	bj_pending_clean(b);
	if (cfg->key_pem && cfg->key_pem[0] && !(b->key_pem = bj_read_key(cfg->key_pem, e))) {
		free(b);
		return e->code;
	}
	if (cfg->import_dir && cfg->import_dir[0]) {
		util_strlcpy(b->import_dir, cfg->import_dir, sizeof(b->import_dir));
		lws_sul_schedule(ctx, 0, &b->sul_watch, bj_watch_cb, 1);
	}
	*out = b;
	return 0;
}

void bundles_free(struct bundles *b)
{
	if (!b)
		return;
	lws_sul_cancel(&b->sul_watch);
	while (b->jobs) {
		struct bundle_job *j = b->jobs;

		b->jobs = j->next;
		if (j->state == BJ_IMPORTING)
			LOGW("bundle import %s abandoned: the daemon is stopping", j->id);
		bj_free(j);
	}
	free(b->key_pem);
	free(b);
}
