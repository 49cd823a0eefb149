/* SPDX-License-Identifier: MIT */
/* cli_bundle.c - `otagw bundle create`: manifest checks, image digests,
 * the archive and its signature; see cli_bundle.h.
 * Two passes over each image: one to fill the manifest (which must lead
 * the archive, so its digests are known before any image is written), one
 * to copy it, hashed again so a file changed in between is caught.
 * Must not: open a name from the manifest that is absolute or has `..`,
 * leave OUT half-written. */
#include "cli_bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest.h"
#include "json_in.h"
#include "otagw_limits.h"
#include "util.h"
#include "verify.h"

#define CLI_BUNDLE_NAME_MAX 255          /* bytes of an image's name */
#define CLI_BUNDLE_IO 65536              /* bytes per read() */
#define CLI_BUNDLE_SIZE_MAX 9007199254740992LL   /* 2^53: exact as a JSON number */
#define CLI_MANIFEST_NAME "manifest.json"
#define CLI_SIG_NAME "manifest.sig"

/* The fields an import takes (northbound/bundle.c refuses any other, so a
 * typo is caught here, before the bundle travels). */
static const char *const cli_top_keys[] = MANIFEST_TOP_KEYS;
static const char *const cli_fw_keys[] = MANIFEST_FW_KEYS;
static const char *const cli_task_keys[] = MANIFEST_TASK_KEYS;

/* One distinct image file of the bundle. */
struct cli_image {
	const char *file;                /* borrowed from the manifest's cJSON */
	uint64_t size;
	uint8_t sha256[32];
};

struct cli_manifest {
	cJSON *json;
	int dir_fd;                      /* the manifest's directory */
	int64_t create_ms;
	size_t n_fw;
	size_t n_img;
	struct cli_image img[BUNDLE_FIRMWARE_MAX];
};

/* Puts what ("manifest: firmware[3]") before e's text; returns code. */
static int err_prefix(struct err_info *e, int code, const char *what)
{
	char why[OTAGW_ERR_TEXT_MAX];

	if (!e)
		return code;
	util_strlcpy(why, e->text, sizeof(why));
	return err_set(e, code, "%s: %s", what, why);
}

/* ---- names and formats ---------------------------------------------------- */

int cli_bundle_format_of(const char *out, enum cli_bundle_format *f)
{
	static const struct {
		const char *suffix;
		enum cli_bundle_format f;
	} tab[] = {
		{ ".tar.gz", CLI_BUNDLE_TAR_GZ }, { ".tgz", CLI_BUNDLE_TAR_GZ },
		{ ".tar.xz", CLI_BUNDLE_TAR_XZ }, { ".tar", CLI_BUNDLE_TAR },
		{ ".zip", CLI_BUNDLE_ZIP },
	};
	size_t n = out ? strlen(out) : 0;

	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(tab); i++) {
		size_t k = strlen(tab[i].suffix);

		if (n > k && !strcasecmp(out + n - k, tab[i].suffix) && out[n - k - 1] != '/') {
			*f = tab[i].f;
			return 0;
		}
	}
	return -EINVAL;
}

/* One path component [s, s + n) of a name. */
static int name_component_check(const char *s, size_t n, struct err_info *e)
{
	if (!n)
		return err_set(e, -EINVAL, "empty path component (leading, doubled or trailing /)");
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return err_set(e, -EINVAL, "'.' and '..' are not allowed");
	return 0;
}

int cli_bundle_name_check(const char *name, struct err_info *e)
{
	size_t n = name ? strnlen(name, CLI_BUNDLE_NAME_MAX + 1) : 0, start = 0;
	int rc;

	if (!n || n > CLI_BUNDLE_NAME_MAX)
		return err_set(e, -EINVAL, "must be 1-%d bytes", CLI_BUNDLE_NAME_MAX);
	if (name[0] == '/')
		return err_set(e, -EINVAL, "absolute paths are not allowed");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c >= 0x7f || c == '\\')
			return err_set(e, -EINVAL, "only printable ASCII without '\\' is allowed");
	}
	for (size_t i = 0; i <= n; i++) {
		if (i < n && name[i] != '/')
			continue;
		rc = name_component_check(name + start, i - start, e);
		if (rc)
			return rc;
		start = i + 1;
	}
	if (!strcmp(name, CLI_MANIFEST_NAME) || !strcmp(name, CLI_SIG_NAME))
		return err_set(e, -EINVAL, "%s is reserved", name);
	return 0;
}

/* ---- reading ---------------------------------------------------------------- */

/* Reads fd whole into a malloc'ed buffer (NUL-terminated) of at most max bytes. */
static int read_all(int fd, size_t max, char **out, size_t *len, struct err_info *e)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1), *nb;
	ssize_t r;

	while (buf) {
		if (n == cap) {
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			nb = n < cap ? realloc(buf, cap + 1) : NULL;
			if (!nb)
				break;
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0) {
			free(buf);
			return err_set(e, -errno, "read: %s", strerror(errno));
		}
		if (!r) {
			buf[n] = '\0';
			*out = buf;
			*len = n;
			return 0;
		}
		n += (size_t)r;
	}
	free(buf);
	if (n > max)
		return err_set(e, -EFBIG, "larger than %zu bytes", max);
	return err_set(e, -ENOMEM, "out of memory");
}

/* Opens name under dir_fd as a regular file; *size from fstat. */
static int image_open(int dir_fd, const char *name, uint64_t *size, struct err_info *e)
{
	struct stat st;
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return err_set(e, -errno, "%s: %s", name, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(e, -EINVAL, "%s: not a regular file", name);
	}
	if ((uint64_t)st.st_size > (uint64_t)CLI_BUNDLE_SIZE_MAX) {
		close(fd);
		return err_set(e, -EFBIG, "%s: too large", name);
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

/* Hashes fd (size bytes) with method m into dig; also hands each piece to
 * a (archive copy) when not NULL. */
static int image_stream(int fd, const char *name, uint64_t size, enum verify_method m,
			struct archive *a, uint8_t dig[VERIFY_DIGEST_MAX], struct err_info *e)
{
	uint8_t *buf = malloc(CLI_BUNDLE_IO);
	struct verify_digest *d = NULL;
	uint64_t got = 0;
	ssize_t n = 0;
	size_t dn;
	int rc = buf ? verify_digest_new(&d, m) : -ENOMEM;

	if (rc)
		rc = err_set(e, rc, "%s: cannot hash", name);
	while (!rc && (n = read(fd, buf, CLI_BUNDLE_IO)) > 0) {
		got += (uint64_t)n;
		rc = verify_digest_update(d, buf, (size_t)n);
		if (!rc && a && archive_write_data(a, buf, (size_t)n) != n)
			rc = err_set(e, -EIO, "%s: %s", name, archive_error_string(a));
	}
	if (!rc && n < 0)
		rc = err_set(e, -errno, "%s: read: %s", name, strerror(errno));
	if (!rc && got != size)
		rc = err_set(e, -EIO, "%s: changed while being read (%" PRIu64 " bytes, not %"
			     PRIu64 ")", name, got, size);
	if (!rc)
		rc = verify_digest_finish(d, dig, &dn);
	verify_digest_free(d);
	free(buf);
	return rc;
}

/* Size and digest of image name under dir_fd. */
static int image_digest(int dir_fd, const char *name, enum verify_method m, uint64_t *size,
			uint8_t dig[VERIFY_DIGEST_MAX], struct err_info *e)
{
	int fd = image_open(dir_fd, name, size, e), rc;

	if (fd < 0)
		return fd;
	rc = image_stream(fd, name, *size, m, NULL, dig, e);
	close(fd);
	return rc;
}

/* ---- manifest fields ---------------------------------------------------------- */

/* Sets obj[key] to item, keeping the key's place when it exists. */
static int json_put(cJSON *obj, const char *key, cJSON *item)
{
	if (!item)
		return -ENOMEM;
	if (cJSON_GetObjectItemCaseSensitive(obj, key))
		return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item) ? 0 : -ENOMEM;
	return cJSON_AddItemToObject(obj, key, item) ? 0 : -ENOMEM;
}

/* The string at key, or NULL when absent; -EINVAL in *rc when not a string. */
static const char *json_opt_str(const cJSON *obj, const char *key, int *rc, struct err_info *e)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!it)
		return NULL;
	if (!cJSON_IsString(it))
		*rc = err_set(e, -EINVAL, "field '%s': expected a string", key);
	return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* The light checks of one task; the daemon checks the rest on import. */
static int task_check(const cJSON *t, size_t k, struct err_info *e)
{
	char name[OTAGW_NAME_MAX], mode[8], what[32];
	const cJSON *all = cJSON_GetObjectItemCaseSensitive(t, "all");
	const cJSON *devs = cJSON_GetObjectItemCaseSensitive(t, "devices");

	if (json_in_check_keys(t, cli_task_keys, OTAGW_ARRAY_SIZE(cli_task_keys), e) ||
	    json_in_str(t, "name", true, name, sizeof(name), e) ||
	    json_in_str(t, "mode", true, mode, sizeof(mode), e)) {
		snprintf(what, sizeof(what), "tasks[%zu]", k);
		return err_prefix(e, -EINVAL, what);
	}
	if (strcmp(mode, "push") && strcmp(mode, "pull"))
		return err_set(e, -EINVAL, "tasks[%zu]: mode must be push or pull", k);
	if (!cJSON_IsTrue(all) && !cJSON_IsArray(devs))
		return err_set(e, -EINVAL, "tasks[%zu]: give \"all\": true or a devices array", k);
	return 0;
}

/* productId, name, version, file and the optional typed fields of fw. */
static int fw_fields_check(const cJSON *fw, struct err_info *e)
{
	char id[OTAGW_ID_MAX], s[OTAGW_NAME_MAX];
	const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(fw, "tasks");
	const cJSON *props = cJSON_GetObjectItemCaseSensitive(fw, "properties");
	int64_t v;
	size_t k = 0;
	const cJSON *t;

	if (json_in_check_keys(fw, cli_fw_keys, OTAGW_ARRAY_SIZE(cli_fw_keys), e) ||
	    json_in_id(fw, "productId", true, id, e) || json_in_id(fw, "id", false, id, e) < 0 ||
	    json_in_str(fw, "name", true, s, OTAGW_NAME_MAX, e) ||
	    json_in_str(fw, "version", true, s, OTAGW_VERSION_MAX, e) ||
	    json_in_int(fw, "versionOrder", false, INT64_MIN, INT64_MAX, &v, e) < 0 ||
	    json_in_int(fw, "size", false, 0, CLI_BUNDLE_SIZE_MAX, &v, e) < 0)
		return -EINVAL;
	if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(fw, "file")))
		return err_set(e, -EINVAL, "field 'file' is required (a string)");
	if (props && !cJSON_IsObject(props))
		return err_set(e, -EINVAL, "field 'properties': expected an object");
	if (tasks && !cJSON_IsArray(tasks))
		return err_set(e, -EINVAL, "field 'tasks': expected an array");
	cJSON_ArrayForEach(t, tasks)
		if (task_check(t, k++, e))
			return -EINVAL;
	return 0;
}

/* The image entry for file, which no other entry may name (an import
 * refuses that too: each firmware streams from its own archive entry). */
static int manifest_image(struct cli_manifest *m, const char *file, struct cli_image **out,
			  struct err_info *e)
{
	struct cli_image *im;
	uint8_t dig[VERIFY_DIGEST_MAX];
	int rc;

	for (size_t i = 0; i < m->n_img; i++)
		if (!strcmp(m->img[i].file, file))
			return err_set(e, -EINVAL, "file '%.64s' is named twice (give each "
				       "firmware its own image file)", file);
	im = &m->img[m->n_img];
	rc = image_digest(m->dir_fd, file, VERIFY_SHA256, &im->size, dig, e);
	if (rc)
		return rc;
	memcpy(im->sha256, dig, sizeof(im->sha256));
	im->file = file;
	m->n_img++;
	*out = im;
	return 0;
}

/* size and sha256 of fw from im: a value already given must match. */
static int fw_fill_digest(cJSON *fw, const struct cli_image *im, char hex[65], struct err_info *e)
{
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(fw, "size");
	int rc = 0;
	const char *given = json_opt_str(fw, "sha256", &rc, e);

	verify_hex(im->sha256, 32, hex);
	if (rc)
		return rc;
	if (size && (uint64_t)size->valuedouble != im->size)
		return err_set(e, -EINVAL, "size is %.0f in the manifest but the file has %" PRIu64
			       " bytes", size->valuedouble, im->size);
	if (given && strcasecmp(given, hex))
		return err_set(e, -EINVAL, "sha256 in the manifest does not match the file's (%s)",
			       hex);
	if (json_put(fw, "size", cJSON_CreateNumber((double)im->size)) ||
	    json_put(fw, "sha256", cJSON_CreateString(hex)))
		return err_set(e, -ENOMEM, "out of memory");
	return 0;
}

/* sign/signMethod: defaults from the digests; a given md5 or sha256 sign
 * must be the file's. */
static int fw_fill_sign(struct cli_manifest *m, cJSON *fw, const char *file, const char *sha_hex,
			struct err_info *e)
{
	uint8_t dig[VERIFY_DIGEST_MAX];
	char hex[2 * VERIFY_DIGEST_MAX + 1];
	uint64_t size;
	int rc = 0;
	const char *sign = json_opt_str(fw, "sign", &rc, e);
	const char *method = json_opt_str(fw, "signMethod", &rc, e);

	if (rc)
		return rc;
	if (sign && !method)
		return err_set(e, -EINVAL, "field 'signMethod' is required when sign is given");
	if (!method || util_ieq(method, "sha256")) {
		util_strlcpy(hex, sha_hex, sizeof(hex));
	} else if (util_ieq(method, "md5")) {
		rc = image_digest(m->dir_fd, file, VERIFY_MD5, &size, dig, e);
		if (rc)
			return rc;
		verify_hex(dig, 16, hex);
	} else if (!sign) {
		return err_set(e, -EINVAL, "signMethod %s needs a sign", method);
	} else {
		return 0;                    /* ecdsa-p256 and others: the daemon checks */
	}
	if (sign && strcasecmp(sign, hex))
		return err_set(e, -EINVAL, "sign does not match the file's %s (%s)",
			       method ? method : "sha256", hex);
	if (json_put(fw, "sign", cJSON_CreateString(hex)) ||
	    json_put(fw, "signMethod", cJSON_CreateString(method && util_ieq(method, "md5") ?
								"md5" : "sha256")))
		return err_set(e, -ENOMEM, "out of memory");
	return 0;
}

/* Checks and fills one firmware entry. */
static int fw_fill(struct cli_manifest *m, cJSON *fw, struct err_info *e)
{
	struct cli_image *im = NULL;
	char hex[65];
	const char *file;
	int rc = fw_fields_check(fw, e);

	if (rc)
		return rc;
	file = cJSON_GetObjectItemCaseSensitive(fw, "file")->valuestring;
	if (cli_bundle_name_check(file, e)) {
		char what[96];

		snprintf(what, sizeof(what), "field 'file' (%.64s)", file);
		return err_prefix(e, -EINVAL, what);
	}
	rc = manifest_image(m, file, &im, e);
	if (!rc)
		rc = fw_fill_digest(fw, im, hex, e);
	if (!rc)
		rc = fw_fill_sign(m, fw, file, hex, e);
	return rc;
}

/* bundleId, createTime (now when absent) and the firmware array. */
static int manifest_fill(struct cli_manifest *m, struct err_info *e)
{
	char id[OTAGW_ID_MAX], what[48];
	cJSON *fws = cJSON_GetObjectItemCaseSensitive(m->json, "firmware"), *fw;
	int rc;

	if (json_in_check_keys(m->json, cli_top_keys, OTAGW_ARRAY_SIZE(cli_top_keys), e) ||
	    json_in_id(m->json, "bundleId", true, id, e))
		return err_prefix(e, -EINVAL, "manifest");
	rc = json_in_int(m->json, "createTime", false, 0, CLI_BUNDLE_SIZE_MAX, &m->create_ms, e);
	if (rc < 0)
		return err_prefix(e, -EINVAL, "manifest");
	if (rc == 1) {
		m->create_ms = util_now_ms();
		if (json_put(m->json, "createTime", cJSON_CreateNumber((double)m->create_ms)))
			return err_set(e, -ENOMEM, "out of memory");
	}
	m->n_fw = cJSON_IsArray(fws) ? (size_t)cJSON_GetArraySize(fws) : 0;
	if (!m->n_fw || m->n_fw > BUNDLE_FIRMWARE_MAX)
		return err_set(e, -EINVAL, "manifest: 'firmware' must be an array of 1-%d entries",
			       BUNDLE_FIRMWARE_MAX);
	for (size_t i = 0; i < m->n_fw; i++) {
		fw = cJSON_GetArrayItem(fws, (int)i);
		rc = fw_fill(m, fw, e);
		if (rc) {
			snprintf(what, sizeof(what), "manifest: firmware[%zu]", i);
			return err_prefix(e, rc, what);
		}
	}
	return 0;
}

/* The manifest's directory (opened) and file (opened) for path. */
static int manifest_open(const char *path, int *dir_fd, int *fd, struct err_info *e)
{
	char dir[PATH_MAX];
	struct stat st;

	if (stat(path, &st))
		return err_set(e, -errno, "%s: %s", path, strerror(errno));
	if (util_strlcpy(dir, path, sizeof(dir)))
		return err_set(e, -ENAMETOOLONG, "%s: path too long", path);
	*dir_fd = open(S_ISDIR(st.st_mode) ? dir : dirname(dir),
		       O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dir_fd < 0)
		return err_set(e, -errno, "%s: %s", path, strerror(errno));
	*fd = S_ISDIR(st.st_mode) ? openat(*dir_fd, CLI_MANIFEST_NAME, O_RDONLY | O_CLOEXEC)
				  : open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return err_set(e, -errno, "%s%s: %s", path,
			       S_ISDIR(st.st_mode) ? "/" CLI_MANIFEST_NAME : "", strerror(errno));
	return 0;
}

int cli_manifest_load(struct cli_manifest **out, const char *path, struct err_info *e)
{
	struct cli_manifest *m = calloc(1, sizeof(*m));
	char *buf = NULL;
	size_t len = 0;
	int fd = -1, rc;

	if (!m)
		return err_set(e, -ENOMEM, "out of memory");
	m->dir_fd = -1;
	rc = manifest_open(path, &m->dir_fd, &fd, e);
	if (!rc) {
		rc = read_all(fd, BUNDLE_MANIFEST_MAX, &buf, &len, e);
		if (rc)
			rc = err_prefix(e, rc, "manifest");
	}
	if (!rc && json_in_strict((const uint8_t *)buf, len, e))
		rc = err_prefix(e, -EINVAL, "manifest: not valid JSON");
	if (!rc) {
		m->json = cJSON_ParseWithLength(buf, len);
		if (!m->json)
			rc = err_set(e, -EINVAL, "manifest: not valid JSON");
	}
	if (!rc)
		rc = manifest_fill(m, e);
	if (fd >= 0)
		close(fd);
	free(buf);
	if (rc) {
		cli_manifest_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

void cli_manifest_free(struct cli_manifest *m)
{
	if (!m)
		return;
	if (m->dir_fd >= 0)
		close(m->dir_fd);
	cJSON_Delete(m->json);
	free(m);
}

const cJSON *cli_manifest_json(const struct cli_manifest *m)
{
	return m->json;
}

/* ---- writing ------------------------------------------------------------------ */

/* The archive writer for format f, not yet opened. */
static struct archive *archive_for(enum cli_bundle_format f)
{
	struct archive *a = archive_write_new();
	int rc;

	if (!a)
		return NULL;
	if (f == CLI_BUNDLE_ZIP) {
		rc = archive_write_set_format_zip(a);
	} else {
		rc = archive_write_set_format_pax_restricted(a);
		if (rc == ARCHIVE_OK && f == CLI_BUNDLE_TAR_GZ)
			rc = archive_write_add_filter_gzip(a);
		else if (rc == ARCHIVE_OK && f == CLI_BUNDLE_TAR_XZ)
			rc = archive_write_add_filter_xz(a);
	}
	if (rc != ARCHIVE_OK) {
		archive_write_free(a);
		return NULL;
	}
	return a;
}

/* Writes the header of a regular file entry name of size bytes. */
static int entry_begin(struct archive *a, const char *name, uint64_t size, int64_t mtime_s,
		       struct err_info *e)
{
	struct archive_entry *en = archive_entry_new();
	int rc;

	if (!en)
		return err_set(e, -ENOMEM, "out of memory");
	archive_entry_set_pathname(en, name);
	archive_entry_set_size(en, (la_int64_t)size);
	archive_entry_set_filetype(en, AE_IFREG);
	archive_entry_set_perm(en, 0644);
	archive_entry_set_mtime(en, (time_t)mtime_s, 0);
	archive_entry_set_uid(en, 0);
	archive_entry_set_gid(en, 0);
	rc = archive_write_header(a, en);
	archive_entry_free(en);
	if (rc != ARCHIVE_OK)
		return err_set(e, -EIO, "%s: %s", name, archive_error_string(a));
	return 0;
}

/* A whole entry from memory. */
static int entry_mem(struct archive *a, const char *name, const void *p, size_t n, int64_t mtime_s,
		     struct err_info *e)
{
	int rc = entry_begin(a, name, n, mtime_s, e);

	if (!rc && archive_write_data(a, p, n) != (la_ssize_t)n)
		rc = err_set(e, -EIO, "%s: %s", name, archive_error_string(a));
	return rc;
}

/* A whole entry from the image im, which must still be what was hashed. */
static int entry_image(struct cli_manifest *m, struct archive *a, const struct cli_image *im,
		       struct err_info *e)
{
	uint8_t dig[VERIFY_DIGEST_MAX];
	uint64_t size = 0;      /* the analyzer cannot know a failed openat() sets errno */
	int fd = image_open(m->dir_fd, im->file, &size, e), rc;

	if (fd < 0)
		return fd;
	rc = size == im->size ? 0 : err_set(e, -EIO, "%s: changed since it was hashed", im->file);
	if (!rc)
		rc = entry_begin(a, im->file, size, m->create_ms / 1000, e);
	if (!rc)
		rc = image_stream(fd, im->file, size, VERIFY_SHA256, a, dig, e);
	if (!rc && memcmp(dig, im->sha256, sizeof(im->sha256)))
		rc = err_set(e, -EIO, "%s: changed since it was hashed", im->file);
	close(fd);
	return rc;
}

/* Every entry, in order: manifest.json, manifest.sig, the images. */
static int bundle_entries(struct cli_manifest *m, struct archive *a, const char *text,
			  const char *sig, struct cli_bundle_result *r, struct err_info *e)
{
	int64_t t = m->create_ms / 1000;
	int rc = entry_mem(a, CLI_MANIFEST_NAME, text, strlen(text), t, e);

	if (!rc && sig)
		rc = entry_mem(a, CLI_SIG_NAME, sig, strlen(sig), t, e);
	for (size_t i = 0; !rc && i < m->n_img; i++) {
		rc = entry_image(m, a, &m->img[i], e);
		r->image_bytes += m->img[i].size;
	}
	if (!rc && archive_write_close(a) != ARCHIVE_OK)
		rc = err_set(e, -EIO, "%s", archive_error_string(a));
	return rc;
}

/* The archive into the open file fd. */
static int bundle_archive(struct cli_manifest *m, int fd, enum cli_bundle_format f,
			  const char *text, const char *sig, struct cli_bundle_result *r,
			  struct err_info *e)
{
	struct archive *a = archive_for(f);
	int rc;

	if (!a)
		return err_set(e, -ENOMEM, "cannot set up the archive writer");
	if (archive_write_open_fd(a, fd) != ARCHIVE_OK)
		rc = err_set(e, -EIO, "%s", archive_error_string(a));
	else
		rc = bundle_entries(m, a, text, sig, r, e);
	archive_write_free(a);
	if (!rc && fsync(fd))
		rc = err_set(e, -errno, "fsync: %s", strerror(errno));
	return rc;
}

/* manifest.json's bytes (malloc'ed), their digest and, with a key, the
 * signature into sig[VERIFY_SIG_B64_CAP]. */
static int bundle_manifest_text(struct cli_manifest *m, const char *key_pem, char **text,
				char sig[VERIFY_SIG_B64_CAP], struct cli_bundle_result *r,
				struct err_info *e)
{
	uint8_t dig[32];
	int rc;

	*text = cJSON_Print(m->json);
	if (!*text)
		return err_set(e, -ENOMEM, "out of memory");
	rc = verify_sha256(*text, strlen(*text), dig);
	if (rc)
		return err_set(e, rc, "cannot hash the manifest");
	verify_hex(dig, sizeof(dig), r->manifest_sha256);
	if (!key_pem)
		return 0;
	rc = verify_ecdsa_p256_sign(key_pem, dig, sig, VERIFY_SIG_B64_CAP, e);
	if (rc)
		return err_prefix(e, rc, "signing key");
	r->is_signed = true;
	return 0;
}

int cli_bundle_write(struct cli_manifest *m, const char *out, const char *key_pem,
		     struct cli_bundle_result *r, struct err_info *e)
{
	struct cli_bundle_result res = { .firmware = (unsigned)m->n_fw,
					 .images = (unsigned)m->n_img };
	char tmp[PATH_MAX], sig[VERIFY_SIG_B64_CAP], *text = NULL;
	enum cli_bundle_format f;
	int fd, rc;

	if (cli_bundle_format_of(out, &f))
		return err_set(e, -EINVAL, "%s: the name must end in .tar, .tar.gz, .tgz, .tar.xz "
			       "or .zip", out);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", out) >= sizeof(tmp))
		return err_set(e, -ENAMETOOLONG, "%s: path too long", out);
	rc = bundle_manifest_text(m, key_pem, &text, sig, &res, e);
	if (rc)
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0) {
		rc = err_set(e, -errno, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	rc = bundle_archive(m, fd, f, text, key_pem ? sig : NULL, &res, e);
	if (close(fd) && !rc)
		rc = err_set(e, -errno, "%s: %s", tmp, strerror(errno));
	if (!rc && rename(tmp, out))
		rc = err_set(e, -errno, "%s: %s", out, strerror(errno));
	if (rc)
		unlink(tmp);
	else if (r)
		*r = res;
out:
	free(text);
	return rc;
}
