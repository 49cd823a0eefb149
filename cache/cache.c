/* SPDX-License-Identifier: MIT */
/* cache.c - the content-addressed image store on disk; see cache.h.
 * Durability order, so a crash leaves no image or a verified one:
 *   feed:       pwrite the bytes, then hash them (a failed write is cut off)
 *   checkpoint: fdatasync .part, write .state.tmp, fsync, rename to .state,
 *               fsync partial/ (the state never claims unsynced bytes)
 *   commit:     verify, fsync .part, rename into <dir>/<sha256>, drop the
 *               state, fsync both directories
 * A failure that is not a verification mismatch leaves the files as a crash
 * at that point would: the last checkpoint stays usable.
 * Must not: call mbedTLS (verify.h does), open sockets, touch SQLite, build
 * a path from anything but a validated name or a digest we computed. */
#define LOG_MOD "cache"
#include "cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"

#define CACHE_PATH_MAX 96              /* "<64 hex>.state.tmp" + NUL, rounded */
#define CACHE_STATE_MAX 1024           /* a checkpoint file, bytes */
#define CACHE_STATE_MAGIC "OTAGWCK1"
#define CACHE_STATE_VERSION 1u
#define CACHE_IO_CHUNK (64 * 1024)     /* cache_check read size, bytes */
#define CACHE_DIR_MODE 0750
#define CACHE_FILE_MODE 0640
#define CACHE_IMAGE_MODE 0440          /* published images are read-only */

struct cache {
	int dfd;                      /* <dir> */
	int pfd;                      /* <dir>/partial */
};

struct cache_writer {
	struct cache *c;              /* borrowed; outlives the writer */
	char name[CACHE_NAME_MAX];
	struct cache_expect x;        /* its strings point at the copies below */
	char *sig_b64;
	char *key_pem;
	int fd;                       /* partial/<name>.part, flock'ed */
	uint64_t size;                /* bytes in the file and in the digests */
	struct verify_digest *sha;
	struct verify_digest *md5;    /* NULL unless the expected digest is MD5 */
	int broken;                   /* 0, or the error that left file and digests apart */
};

struct cache_check {
	struct cache *c;
	char hex[CACHE_HEX_LEN + 1];
	int fd;
	uint64_t off;                 /* bytes hashed */
	uint64_t size;                /* at begin */
	struct verify_digest *sha;
	int rc;                       /* 1 while running, then the result */
	uint8_t buf[CACHE_IO_CHUNK];
};

/* The checkpoint file: this header, the SHA-256 state, the MD5 state (if
 * any), then a SHA-256 over all of it. Native byte order: it never leaves
 * the machine, and the digest states are native anyway. */
struct cache_state_hdr {
	char magic[8];
	uint32_t version;
	uint32_t sha_len;
	uint32_t md5_len;             /* 0: no MD5 state */
	uint32_t pad;
	uint64_t offset;              /* bytes of .part the digests cover */
};

bool cache_name_valid(const char *name)
{
	size_t n;

	if (!name)
		return false;
	for (n = 0; name[n]; n++) {
		char ch = name[n];

		if (n >= CACHE_NAME_MAX - 1)
			return false;
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return false;
	}
	return n > 0;
}

static bool cache_hex_valid(const char *hex)
{
	return cache_name_valid(hex) && strlen(hex) == CACHE_HEX_LEN;
}

/* name + suffix into out[CACHE_PATH_MAX]; name is already validated. */
static void cache_path(char *out, const char *name, const char *suffix)
{
	snprintf(out, CACHE_PATH_MAX, "%s%s", name, suffix);
}

static int cache_errno(void)
{
	return errno == EDQUOT ? -ENOSPC : -errno;
}

static int cache_unlink(int dirfd, const char *name)
{
	if (unlinkat(dirfd, name, 0) && errno != ENOENT)
		return -errno;
	return 0;
}

static int cache_sync(int fd)
{
	return fsync(fd) ? -errno : 0;
}

/* All of buf at off, through EINTR and short writes. */
static int cache_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cache_errno();
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Up to cap bytes from fd at 0 into buf; *len = bytes read. */
static int cache_read_all(int fd, void *buf, size_t cap, size_t *len)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t n = pread(fd, (uint8_t *)buf + got, cap - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*len = got;
	return 0;
}

/* A copy of an untrusted name that is safe to log. */
static void cache_log_name(char out[CACHE_NAME_MAX], const char *name)
{
	size_t i;

	for (i = 0; i < CACHE_NAME_MAX - 1 && name[i]; i++)
		out[i] = (char)(name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?');
	out[i] = '\0';
}

/* ---- the cache ---- */

/* flags: O_NOFOLLOW for our own subdirectory; the operator's dir may be a
 * symlink (to an SD card, say). */
static int cache_open_dir(int at, const char *path, int flags, int *fd, struct err_info *e)
{
	if (mkdirat(at, path, CACHE_DIR_MODE) && errno != EEXIST)
		return err_set(e, -errno, "cache dir %s: %s", path, strerror(errno));
	*fd = openat(at, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | flags);
	if (*fd < 0)
		return err_set(e, -errno, "cache dir %s: %s", path, strerror(errno));
	return 0;
}

int cache_open(struct cache **out, const char *dir, struct err_info *e)
{
	struct cache *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return err_set(e, -ENOMEM, "cache: out of memory");
	c->dfd = -1;
	c->pfd = -1;
	rc = cache_open_dir(AT_FDCWD, dir, 0, &c->dfd, e);
	if (!rc)
		rc = cache_open_dir(c->dfd, "partial", O_NOFOLLOW, &c->pfd, e);
	if (rc) {
		cache_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	if (c->pfd >= 0)
		close(c->pfd);
	if (c->dfd >= 0)
		close(c->dfd);
	free(c);
}

int cache_disk_free(struct cache *c, uint64_t *free_bytes)
{
	struct statvfs st;

	if (fstatvfs(c->dfd, &st))
		return -errno;
	*free_bytes = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
	return 0;
}

/* Deletes partial/<name>.part and .state; fsyncs partial/ when asked. */
static int cache_partial_unlink(struct cache *c, const char *name, bool sync)
{
	char path[CACHE_PATH_MAX];
	int rc, rc2;

	cache_path(path, name, ".part");
	rc = cache_unlink(c->pfd, path);
	cache_path(path, name, ".state");
	rc2 = cache_unlink(c->pfd, path);
	if (!rc)
		rc = rc2;
	if (!rc && sync)
		rc = cache_sync(c->pfd);
	return rc;
}

void cache_partial_remove(struct cache *c, const char *name)
{
	int rc;

	if (!cache_name_valid(name))
		return;
	rc = cache_partial_unlink(c, name, true);
	if (rc)
		LOGW("partial %s: remove: %s", name, otagw_strerror(rc));
}

int cache_image_open(struct cache *c, const char *sha256_hex, int *fd, uint64_t *size)
{
	struct stat st;
	int f;

	if (!cache_hex_valid(sha256_hex))
		return -EINVAL;
	f = openat(c->dfd, sha256_hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f < 0)
		return errno == ELOOP ? -ENOENT : -errno;
	if (fstat(f, &st) || !S_ISREG(st.st_mode)) {
		close(f);
		return -ENOENT;
	}
	*fd = f;
	*size = (uint64_t)st.st_size;
	return 0;
}

int cache_image_remove(struct cache *c, const char *sha256_hex)
{
	if (!cache_hex_valid(sha256_hex))
		return -EINVAL;
	if (unlinkat(c->dfd, sha256_hex, 0))
		return -errno;
	return cache_sync(c->dfd);
}

/* ---- checkpoints ---- */

/* Appends d's saved state to buf at *at; *n = its length. */
static int cache_state_put(const struct verify_digest *d, uint8_t *buf, size_t *at, uint32_t *n)
{
	size_t len;
	int rc = verify_digest_save(d, buf + *at, CACHE_STATE_MAX - 32 - *at, &len);

	if (rc)
		return rc;
	*at += len;
	*n = (uint32_t)len;
	return 0;
}

static int cache_state_encode(const struct cache_writer *w, uint8_t buf[CACHE_STATE_MAX],
			      size_t *len)
{
	struct cache_state_hdr h = { .version = CACHE_STATE_VERSION, .offset = w->size };
	size_t at = sizeof(h);
	int rc;

	memcpy(h.magic, CACHE_STATE_MAGIC, sizeof(h.magic));
	rc = cache_state_put(w->sha, buf, &at, &h.sha_len);
	if (!rc && w->md5)
		rc = cache_state_put(w->md5, buf, &at, &h.md5_len);
	if (rc)
		return rc;
	memcpy(buf, &h, sizeof(h));
	rc = verify_sha256(buf, at, buf + at);
	*len = at + 32;
	return rc;
}

/* Loads one digest of method m from n bytes at p. */
static int cache_state_digest(const uint8_t *p, uint32_t n, enum verify_method m,
			      struct verify_digest **out)
{
	int rc = verify_digest_load(out, p, n);

	if (!rc && verify_digest_method(*out) != m) {
		verify_digest_free(*out);
		*out = NULL;
		rc = -EINVAL;
	}
	return rc;
}

/* Parses a checkpoint; on 0 the caller owns *sha and *md5 (NULL if none). */
static int cache_state_decode(const uint8_t *buf, size_t len, uint64_t *offset,
			      struct verify_digest **sha, struct verify_digest **md5)
{
	struct cache_state_hdr h;
	uint8_t sum[32];
	int rc;

	*sha = NULL;
	*md5 = NULL;
	if (len < sizeof(h) + 32 || len > CACHE_STATE_MAX)
		return -EINVAL;
	memcpy(&h, buf, sizeof(h));
	if (memcmp(h.magic, CACHE_STATE_MAGIC, sizeof(h.magic)) ||
	    h.version != CACHE_STATE_VERSION || h.sha_len > CACHE_STATE_MAX ||
	    h.md5_len > CACHE_STATE_MAX || sizeof(h) + h.sha_len + h.md5_len + 32 != len)
		return -EINVAL;
	rc = verify_sha256(buf, len - 32, sum);
	if (rc || memcmp(sum, buf + len - 32, 32))
		return -EINVAL;
	rc = cache_state_digest(buf + sizeof(h), h.sha_len, VERIFY_SHA256, sha);
	if (!rc && h.md5_len)
		rc = cache_state_digest(buf + sizeof(h) + h.sha_len, h.md5_len, VERIFY_MD5, md5);
	if (rc) {
		verify_digest_free(*sha);
		*sha = NULL;
		return rc;
	}
	*offset = h.offset;
	return 0;
}

/* Writes partial/<name>.state atomically and durably. */
static int cache_state_write(struct cache *c, const char *name, const uint8_t *buf, size_t len)
{
	char tmp[CACHE_PATH_MAX], path[CACHE_PATH_MAX];
	int fd, rc;

	cache_path(tmp, name, ".state.tmp");
	cache_path(path, name, ".state");
	fd = openat(c->pfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		    CACHE_FILE_MODE);
	if (fd < 0)
		return cache_errno();
	rc = cache_pwrite_all(fd, buf, len, 0);
	if (!rc)
		rc = cache_sync(fd);
	close(fd);
	if (!rc && renameat(c->pfd, tmp, c->pfd, path))
		rc = -errno;
	if (!rc)
		return cache_sync(c->pfd);
	if (cache_unlink(c->pfd, tmp))
		LOGW("partial %s: cannot remove %s", name, tmp);
	return rc;
}

/* Reads partial/<name>.state: 0, 1 when it is absent or too long to be
 * ours, or a negative errno. */
static int cache_state_read(struct cache *c, const char *name, uint8_t buf[CACHE_STATE_MAX + 1],
			    size_t *len)
{
	char path[CACHE_PATH_MAX];
	int fd, rc;

	cache_path(path, name, ".state");
	fd = openat(c->pfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT || errno == ELOOP ? 1 : -errno;
	rc = cache_read_all(fd, buf, CACHE_STATE_MAX + 1, len);
	close(fd);
	if (!rc && *len > CACHE_STATE_MAX)
		rc = 1;
	return rc;
}

/* ---- writers ---- */

static void cache_writer_digests_free(struct cache_writer *w)
{
	verify_digest_free(w->sha);
	verify_digest_free(w->md5);
	w->sha = NULL;
	w->md5 = NULL;
}

static bool cache_writer_wants_md5(const struct cache_writer *w)
{
	return w->x.has_digest && w->x.method == VERIFY_MD5;
}

/* Empties the partial, drops its checkpoint and starts fresh digests. */
static int cache_writer_restart(struct cache_writer *w)
{
	char path[CACHE_PATH_MAX];
	int rc;

	cache_writer_digests_free(w);
	w->size = 0;
	w->broken = 0;
	if (ftruncate(w->fd, 0))
		return w->broken = -errno;
	cache_path(path, w->name, ".state");
	rc = cache_unlink(w->c->pfd, path);
	if (!rc)
		rc = cache_sync(w->c->pfd);
	if (!rc)
		rc = verify_digest_new(&w->sha, VERIFY_SHA256);
	if (!rc && cache_writer_wants_md5(w))
		rc = verify_digest_new(&w->md5, VERIFY_MD5);
	if (rc)
		w->broken = rc;
	return rc;
}

/* Adopts a checkpoint of offset bytes if it fits the file and x; 1 if not. */
static int cache_writer_adopt(struct cache_writer *w, uint64_t offset, struct verify_digest *sha,
			      struct verify_digest *md5)
{
	struct stat st;

	if (fstat(w->fd, &st))
		return -errno;
	if (offset > (uint64_t)st.st_size || (w->x.size && offset > w->x.size) ||
	    (cache_writer_wants_md5(w) && !md5))
		return 1;
	if ((uint64_t)st.st_size > offset && ftruncate(w->fd, (off_t)offset))
		return -errno;
	w->sha = sha;
	w->md5 = cache_writer_wants_md5(w) ? md5 : NULL;
	if (!w->md5)
		verify_digest_free(md5);
	w->size = offset;
	return 0;
}

/* Continues from the checkpoint: 0, 1 when there is none usable, or < 0. */
static int cache_writer_resume(struct cache_writer *w)
{
	uint8_t buf[CACHE_STATE_MAX + 1];
	struct verify_digest *sha, *md5;
	uint64_t offset;
	size_t len = 0;
	int rc = cache_state_read(w->c, w->name, buf, &len);

	if (rc)
		return rc;
	if (cache_state_decode(buf, len, &offset, &sha, &md5)) {
		LOGW("partial %s: checkpoint unusable, starting over", w->name);
		return 1;
	}
	rc = cache_writer_adopt(w, offset, sha, md5);
	if (rc) {
		verify_digest_free(sha);
		verify_digest_free(md5);
	}
	if (rc > 0)
		LOGW("partial %s: checkpoint of %" PRIu64 " bytes does not fit, starting over",
		     w->name, offset);
	return rc;
}

/* Checks x and copies it, strings included, into w. */
static int cache_writer_expect(struct cache_writer *w, const struct cache_expect *x,
			       struct err_info *e)
{
	int rc;

	if (!x)
		return 0;
	if (x->has_digest && x->method != VERIFY_MD5 && x->method != VERIFY_SHA256)
		return err_set(e, -EINVAL, "expected digest: unknown method %d", (int)x->method);
	w->x = *x;
	w->x.ecdsa_sig_b64 = NULL;
	w->x.ecdsa_key_pem = NULL;
	if (!x->ecdsa_sig_b64)
		return 0;
	rc = verify_ecdsa_p256_inputs(x->ecdsa_key_pem, x->ecdsa_sig_b64, e);
	if (rc)
		return rc;
	w->sig_b64 = strdup(x->ecdsa_sig_b64);
	w->key_pem = strdup(x->ecdsa_key_pem);
	if (!w->sig_b64 || !w->key_pem)
		return err_set(e, -ENOMEM, "cache: out of memory");
	w->x.ecdsa_sig_b64 = w->sig_b64;
	w->x.ecdsa_key_pem = w->key_pem;
	return 0;
}

/* Frees w without touching its files (the flock goes with the fd). */
static void cache_writer_free(struct cache_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	cache_writer_digests_free(w);
	free(w->sig_b64);
	free(w->key_pem);
	free(w);
}

/* Opens and locks partial/<name>.part. */
static int cache_writer_file(struct cache_writer *w, struct err_info *e)
{
	char path[CACHE_PATH_MAX];

	cache_path(path, w->name, ".part");
	w->fd = openat(w->c->pfd, path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		       CACHE_FILE_MODE);
	if (w->fd < 0)
		return err_set(e, cache_errno(), "partial %s: %s", w->name, strerror(errno));
	if (flock(w->fd, LOCK_EX | LOCK_NB))
		return err_set(e, errno == EWOULDBLOCK ? -EBUSY : -errno,
			       "partial %s: already being written", w->name);
	return 0;
}

int cache_writer_open(struct cache *c, const char *name, const struct cache_expect *x,
		      bool resume, struct cache_writer **out, uint64_t *have,
		      struct err_info *e)
{
	struct cache_writer *w;
	int rc;

	err_clear(e);
	if (!cache_name_valid(name))
		return err_set(e, -EINVAL, "partial name: expected 1..64 lowercase hex characters");
	w = calloc(1, sizeof(*w));
	if (!w)
		return err_set(e, -ENOMEM, "cache: out of memory");
	w->c = c;
	w->fd = -1;
	memcpy(w->name, name, strlen(name) + 1);
	rc = cache_writer_expect(w, x, e);
	if (!rc)
		rc = cache_writer_file(w, e);
	if (!rc)
		rc = resume ? cache_writer_resume(w) : 1;
	if (rc > 0)
		rc = cache_writer_restart(w);
	if (rc) {
		if (!e || !e->code)
			err_set(e, rc, "partial %s: %s", name, otagw_strerror(rc));
		cache_writer_free(w);
		return rc;
	}
	if (have)
		*have = w->size;
	*out = w;
	return 0;
}

/* After a failed write: cut the file back to what the digests hold. */
static void cache_writer_rollback(struct cache_writer *w)
{
	if (ftruncate(w->fd, (off_t)w->size)) {
		w->broken = -EIO;
		LOGE("partial %s: cannot cut back to %" PRIu64 " bytes: %s", w->name, w->size,
		     strerror(errno));
	}
}

int cache_writer_feed(struct cache_writer *w, const void *buf, size_t len)
{
	int rc;

	if (w->broken)
		return w->broken;
	if (!len)
		return 0;
	if (w->x.size && (len > w->x.size || w->size > w->x.size - len))
		return -EFBIG;
	rc = cache_pwrite_all(w->fd, buf, len, w->size);
	if (rc) {
		cache_writer_rollback(w);
		return rc;
	}
	rc = verify_digest_update(w->sha, buf, len);
	if (!rc && w->md5)
		rc = verify_digest_update(w->md5, buf, len);
	if (rc)
		return w->broken = rc;
	w->size += len;
	return 0;
}

int cache_writer_reset(struct cache_writer *w)
{
	return cache_writer_restart(w);
}

uint64_t cache_writer_size(const struct cache_writer *w)
{
	return w->size;
}

int cache_writer_checkpoint(struct cache_writer *w)
{
	uint8_t buf[CACHE_STATE_MAX];
	size_t len;
	int rc;

	if (w->broken)
		return w->broken;
	/* After a failed fdatasync the kernel may have dropped the dirty
	 * pages: no checkpoint may ever claim them. */
	if (fdatasync(w->fd))
		return w->broken = -EIO;
	rc = cache_state_encode(w, buf, &len);
	if (!rc)
		rc = cache_state_write(w->c, w->name, buf, len);
	return rc;
}

/* Formats "<what>: expected <hex>, got <hex>" into e. */
static int cache_digest_mismatch(struct err_info *e, const char *what, const uint8_t *want,
				 const uint8_t *got, size_t n)
{
	char a[2 * VERIFY_DIGEST_MAX + 1], b[2 * VERIFY_DIGEST_MAX + 1];

	verify_hex(want, n, a);
	verify_hex(got, n, b);
	return err_set(e, -OTAGW_ESIGNATURE, "%s: expected %s, got %s", what, a, b);
}

/* Finishes the digests into sha[32] and checks w->x; 0 or the mismatch. */
static int cache_writer_verify(struct cache_writer *w, uint8_t sha[VERIFY_DIGEST_MAX],
			       struct err_info *e)
{
	uint8_t md5[VERIFY_DIGEST_MAX];
	size_t n;
	int rc = verify_digest_finish(w->sha, sha, &n);

	if (!rc && w->md5)
		rc = verify_digest_finish(w->md5, md5, &n);
	if (rc)
		return err_set(e, rc, "partial %s: digest failed", w->name);
	if (w->x.size && w->size != w->x.size)
		return err_set(e, -EBADMSG, "size: expected %" PRIu64 " bytes, got %" PRIu64,
			       w->x.size, w->size);
	if (w->x.has_digest && w->md5 && memcmp(md5, w->x.digest, 16))
		return cache_digest_mismatch(e, "md5", w->x.digest, md5, 16);
	if (w->x.has_digest && !w->md5 && memcmp(sha, w->x.digest, 32))
		return cache_digest_mismatch(e, "sha256", w->x.digest, sha, 32);
	if (w->x.ecdsa_sig_b64)
		return verify_ecdsa_p256(w->x.ecdsa_key_pem, sha, w->x.ecdsa_sig_b64, e);
	return 0;
}

/* Moves the verified partial to <dir>/<hex> and drops its checkpoint. */
static int cache_writer_publish(struct cache_writer *w, const char *hex, struct err_info *e)
{
	struct cache *c = w->c;
	char path[CACHE_PATH_MAX];
	struct stat st;
	int rc = 0;

	if (fsync(w->fd))
		return err_set(e, -errno, "partial %s: sync: %s", w->name, strerror(errno));
	cache_path(path, w->name, ".part");
	if (!fstatat(c->dfd, hex, &st, AT_SYMLINK_NOFOLLOW) && S_ISREG(st.st_mode))
		rc = cache_unlink(c->pfd, path);   /* same name, same bytes */
	else if (renameat(c->pfd, path, c->dfd, hex))
		rc = -errno;
	if (rc)
		return err_set(e, rc, "image %s: publish: %s", hex, otagw_strerror(rc));
	/* Only now: a partial that stays behind must remain writable. */
	if (fchmod(w->fd, CACHE_IMAGE_MODE))
		LOGW("image %s: chmod: %s", hex, strerror(errno));
	cache_path(path, w->name, ".state");
	rc = cache_unlink(c->pfd, path);
	if (!rc)
		rc = cache_sync(c->dfd);
	if (!rc)
		rc = cache_sync(c->pfd);
	if (rc)
		return err_set(e, rc, "image %s: sync: %s", hex, otagw_strerror(rc));
	return 0;
}

int cache_writer_commit(struct cache_writer *w, char sha256_hex[CACHE_HEX_LEN + 1],
			struct err_info *e)
{
	uint8_t sha[VERIFY_DIGEST_MAX];
	int rc = w->broken;

	sha256_hex[0] = '\0';
	if (rc) {
		err_set(e, rc, "partial %s: an earlier write failed", w->name);
		goto out;
	}
	rc = cache_writer_verify(w, sha, e);
	if (rc) {
		if (cache_partial_unlink(w->c, w->name, true))
			LOGW("partial %s: cannot remove it", w->name);
		goto out;
	}
	verify_hex(sha, 32, sha256_hex);
	rc = cache_writer_publish(w, sha256_hex, e);
	if (rc)
		sha256_hex[0] = '\0';
out:
	cache_writer_free(w);
	return rc;
}

void cache_writer_abort(struct cache_writer *w, bool keep)
{
	int rc = 0;

	if (!w)
		return;
	if (keep && !w->broken)
		rc = cache_writer_checkpoint(w);
	else if (!keep)
		rc = cache_partial_unlink(w->c, w->name, true);
	if (rc)
		LOGW("partial %s: %s: %s", w->name, keep ? "checkpoint" : "remove",
		     otagw_strerror(rc));
	cache_writer_free(w);
}

/* ---- scan ---- */

/* One entry of <dir>: images are 64-hex regular files. */
static int cache_scan_image(struct cache *c, const char *name, cache_scan_fn fn, void *arg)
{
	char safe[CACHE_NAME_MAX];
	struct stat st;

	if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, "partial"))
		return 0;
	if (cache_hex_valid(name) && !fstatat(c->dfd, name, &st, AT_SYMLINK_NOFOLLOW) &&
	    S_ISREG(st.st_mode))
		return fn(arg, name, (uint64_t)st.st_size, false);
	cache_log_name(safe, name);
	LOGW("skipping foreign entry '%s'", safe);
	return 0;
}

/* Splits "<name><suffix>" with a valid name into base[CACHE_NAME_MAX]. */
static bool cache_split(const char *entry, const char *suffix, char *base)
{
	size_t n = strnlen(entry, CACHE_PATH_MAX), s = strlen(suffix);

	if (n <= s || n - s >= CACHE_NAME_MAX || strcmp(entry + n - s, suffix))
		return false;
	memcpy(base, entry, n - s);
	base[n - s] = '\0';
	return cache_name_valid(base);
}

/* Deletes a leftover .state.tmp, or a .state whose .part is gone. */
static void cache_scan_orphan(struct cache *c, const char *entry, const char *base, bool tmp)
{
	char path[CACHE_PATH_MAX];

	struct stat st;

	cache_path(path, base, ".part");
	if (!tmp && !fstatat(c->pfd, path, &st, AT_SYMLINK_NOFOLLOW))
		return;
	if (cache_unlink(c->pfd, entry))
		LOGW("partial %s: cannot remove %s", base, entry);
	else
		LOGI("partial %s: removed orphan %s", base, entry);
}

/* One entry of <dir>/partial: "<name>.part" is reported. */
static int cache_scan_partial(struct cache *c, const char *entry, cache_scan_fn fn, void *arg)
{
	char base[CACHE_NAME_MAX], safe[CACHE_NAME_MAX];
	struct stat st;

	if (!strcmp(entry, ".") || !strcmp(entry, ".."))
		return 0;
	if (cache_split(entry, ".part", base)) {
		if (!fstatat(c->pfd, entry, &st, AT_SYMLINK_NOFOLLOW) && S_ISREG(st.st_mode))
			return fn(arg, base, (uint64_t)st.st_size, true);
	} else if (cache_split(entry, ".state.tmp", base)) {
		cache_scan_orphan(c, entry, base, true);
		return 0;
	} else if (cache_split(entry, ".state", base)) {
		cache_scan_orphan(c, entry, base, false);
		return 0;
	}
	cache_log_name(safe, entry);
	LOGW("skipping foreign entry 'partial/%s'", safe);
	return 0;
}

static int cache_scan_dir(struct cache *c, bool partial, cache_scan_fn fn, void *arg)
{
	/* A fresh open of ".": a dup would share (and leave behind) the offset. */
	int fd = openat(partial ? c->pfd : c->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	for (errno = 0; !rc && (de = readdir(d)) != NULL; errno = 0)
		rc = partial ? cache_scan_partial(c, de->d_name, fn, arg)
			     : cache_scan_image(c, de->d_name, fn, arg);
	if (!rc && errno)
		rc = -errno;
	closedir(d);
	return rc;
}

int cache_scan(struct cache *c, cache_scan_fn fn, void *arg)
{
	int rc = cache_scan_dir(c, false, fn, arg);

	return rc ? rc : cache_scan_dir(c, true, fn, arg);
}

/* ---- re-hashing ---- */

int cache_check_begin(struct cache *c, const char *sha256_hex, struct cache_check **out)
{
	struct cache_check *k;
	uint64_t size = 0;
	/* -1: the analyzer cannot know that a failed openat() sets errno, i.e. rc != 0 */
	int fd = -1, rc = cache_image_open(c, sha256_hex, &fd, &size);

	if (rc)
		return rc;
	k = calloc(1, sizeof(*k));
	if (!k || verify_digest_new(&k->sha, VERIFY_SHA256)) {
		free(k);
		close(fd);
		return -ENOMEM;
	}
	k->c = c;
	k->fd = fd;
	k->size = size;
	k->rc = 1;
	memcpy(k->hex, sha256_hex, sizeof(k->hex));
	*out = k;
	return 0;
}

/* Removes the image k read, unless the name now holds another file. */
static void cache_check_remove(struct cache_check *k)
{
	struct stat a, b;

	if (fstat(k->fd, &a) || fstatat(k->c->dfd, k->hex, &b, AT_SYMLINK_NOFOLLOW) ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return;
	if (unlinkat(k->c->dfd, k->hex, 0) || cache_sync(k->c->dfd))
		LOGE("image %s: cannot remove: %s", k->hex, strerror(errno));
}

static int cache_check_finish(struct cache_check *k)
{
	uint8_t sha[VERIFY_DIGEST_MAX];
	char hex[CACHE_HEX_LEN + 1];
	struct stat st;
	size_t n;

	if (fstat(k->fd, &st))
		return -errno;
	if (verify_digest_finish(k->sha, sha, &n))
		return -EIO;
	verify_hex(sha, n, hex);
	if ((uint64_t)st.st_size == k->off && !strcmp(hex, k->hex))
		return 0;
	LOGW("image %s: content hashes to %s (%" PRIu64 " bytes), removing", k->hex, hex,
	     k->off);
	cache_check_remove(k);
	return -OTAGW_ESIGNATURE;
}

int cache_check_step(struct cache_check *k, size_t step)
{
	size_t done = 0;
	ssize_t n = 1;

	if (k->rc <= 0)
		return k->rc;
	if (!step)
		return -EINVAL;
	while (done < step && k->off < k->size) {
		size_t want = step - done;

		if (want > sizeof(k->buf))
			want = sizeof(k->buf);
		if (want > k->size - k->off)
			want = (size_t)(k->size - k->off);
		n = pread(k->fd, k->buf, want, (off_t)k->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (verify_digest_update(k->sha, k->buf, (size_t)n))
			return k->rc = -EIO;
		k->off += (uint64_t)n;
		done += (size_t)n;
	}
	if (n < 0)
		return k->rc = -errno;
	if (n > 0 && k->off < k->size)
		return 1;
	return k->rc = cache_check_finish(k);   /* the end, or the file shrank */
}

void cache_check_end(struct cache_check *k)
{
	if (!k)
		return;
	close(k->fd);
	verify_digest_free(k->sha);
	free(k);
}
