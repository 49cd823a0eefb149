/* SPDX-License-Identifier: MIT */
/* images.c - image index, downloads, uploads, quota; see images.h.
 * One struct images_job per firmware whose image is on its way (running,
 * queued, or waiting for a retry); jobs live in a small list. */
#define LOG_MOD "images"
#include "images.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "catalogue.h"
#include "log.h"
#include "util.h"

#define IMAGES_CHECKPOINT_BYTES (4u << 20)   /* checkpoint a download every 4 MiB */
#define IMAGES_CHECK_STEP (4u << 20)         /* bytes re-hashed per loop slice */

enum images_job_phase { JOB_QUEUED, JOB_RUNNING, JOB_RETRY_WAIT };

struct images_job {
	struct images *im;
	struct images_job *next;
	char fw_id[OTAGW_ID_MAX];
	enum images_job_phase phase;
	unsigned attempts;
	struct cache_writer *w;
	struct fetch_job *fj;
	uint64_t since_checkpoint;
	lws_sorted_usec_list_t sul;      /* retry timer */
};

struct images_upload {
	struct images *im;
	char fw_id[OTAGW_ID_MAX];
	char token[CACHE_NAME_MAX];
	struct cache_writer *w;
};

struct images {
	void (*on_ready)(void *arg, const char *firmware_id);
	void *on_ready_arg;
	struct store *st;
	struct cache *c;
	struct fetch *f;
	struct lws_context *ctx;
	struct images_cfg cfg;
	char *key_pem;
	struct images_job *jobs;
	unsigned running;
	uint64_t failed, retries;       /* since start, for /metrics */
	/* start-up re-hash of every image, one slice per loop turn */
	lws_sorted_usec_list_t check_sul;
	struct cache_check *check;
	char **check_list;
	size_t check_n, check_i;
};

static const char im_sql_fw[] = "SELECT url, size, sign, sign_method, image_state, image_sha256,"
	" image_bytes, image_total, image_reason, image_partial, image_etag, image_last_modified"
	" FROM firmware WHERE id = ?1";
static const char im_sql_state[] = "UPDATE firmware SET image_state = ?2, image_bytes = ?3,"
	" image_total = ?4, image_reason = ?5 WHERE id = ?1";
static const char im_sql_partial[] = "UPDATE firmware SET image_partial = ?2, image_etag = ?3,"
	" image_last_modified = ?4 WHERE id = ?1";
static const char im_sql_ready[] = "UPDATE firmware SET image_state = 'ready', image_sha256 = ?2,"
	" image_bytes = ?3, image_total = ?3, image_reason = '', image_partial = '',"
	" image_etag = '', image_last_modified = '' WHERE id = ?1";
static const char im_sql_entry_put[] = "INSERT INTO cache_entry (sha256, size, last_used,"
	" create_time) VALUES (?1, ?2, ?3, ?3) ON CONFLICT (sha256) DO UPDATE SET last_used = ?3";
static const char im_sql_entry_get[] = "SELECT size FROM cache_entry WHERE sha256 = ?1";
static const char im_sql_entry_del[] = "DELETE FROM cache_entry WHERE sha256 = ?1";
/* LRU needs minutes, not milliseconds: a read within a minute of the last
 * touch writes nothing (no commit, no fsync on the chunk hot path). */
static const char im_sql_touch[] = "UPDATE cache_entry SET last_used = ?2 WHERE sha256 = ?1"
	" AND last_used < ?2 - 60000";
static const char im_sql_used[] = "SELECT coalesce(sum(size), 0) FROM cache_entry";
static const char im_sql_lru[] = "SELECT sha256, size FROM cache_entry e WHERE NOT EXISTS"
	" (SELECT 1 FROM firmware f JOIN record r ON r.firmware_id = f.id"
	"  WHERE f.image_sha256 = e.sha256 AND r.state IN ('waiting', 'processing'))"
	" AND sha256 <> ?1 ORDER BY last_used LIMIT 1";
static const char im_sql_pinned[] = "SELECT EXISTS (SELECT 1 FROM firmware f JOIN record r"
	" ON r.firmware_id = f.id WHERE f.image_sha256 = ?1"
	" AND r.state IN ('waiting', 'processing'))";
static const char im_sql_unlink_fw[] = "UPDATE firmware SET image_state = ?2, image_sha256 = '',"
	" image_bytes = 0, image_reason = ?3 WHERE image_sha256 = ?1";
static const char im_sql_entries[] = "SELECT sha256, size, last_used FROM cache_entry"
	" ORDER BY last_used DESC";
static const char im_sql_users[] = "SELECT id FROM firmware WHERE image_sha256 = ?1 ORDER BY id";
static const char im_sql_resume[] = "SELECT id FROM firmware WHERE image_state = 'downloading'"
	" OR (image_state = 'missing' AND EXISTS (SELECT 1 FROM record r WHERE"
	" r.firmware_id = firmware.id AND r.state IN ('waiting', 'processing')))";
static const char im_sql_partials[] = "SELECT count(*) FROM firmware WHERE image_partial = ?1";

/* ---- the firmware's image row ------------------------------------------ */

struct im_row {
	char url[OTAGW_URL_MAX];
	uint64_t size;
	char sign[OTAGW_SIGN_MAX];
	char method[OTAGW_SIGN_METHOD_MAX];
	char state[16];
	char sha[CACHE_HEX_LEN + 1];
	uint64_t bytes, total;
	char reason[OTAGW_REASON_MAX];
	char partial[CACHE_NAME_MAX];
	char etag[256];
	char last_modified[64];
};

static int im_row_get(struct images *im, const char *fw_id, struct im_row *r)
{
	sqlite3_stmt *s = store_stmt(im->st, im_sql_fw);
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, fw_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		store_col_str(s, 0, r->url, sizeof(r->url));
		r->size = (uint64_t)sqlite3_column_int64(s, 1);
		store_col_str(s, 2, r->sign, sizeof(r->sign));
		store_col_str(s, 3, r->method, sizeof(r->method));
		store_col_str(s, 4, r->state, sizeof(r->state));
		store_col_str(s, 5, r->sha, sizeof(r->sha));
		r->bytes = (uint64_t)sqlite3_column_int64(s, 6);
		r->total = (uint64_t)sqlite3_column_int64(s, 7);
		store_col_str(s, 8, r->reason, sizeof(r->reason));
		store_col_str(s, 9, r->partial, sizeof(r->partial));
		store_col_str(s, 10, r->etag, sizeof(r->etag));
		store_col_str(s, 11, r->last_modified, sizeof(r->last_modified));
	}
	store_done(s);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

static void im_set_state(struct images *im, const char *fw_id, const char *state,
			 uint64_t bytes, uint64_t total, const char *reason)
{
	sqlite3_stmt *s = store_stmt(im->st, im_sql_state);

	if (!s)
		return;
	store_bind_str(s, 1, fw_id);
	store_bind_str(s, 2, state);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)bytes);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)total);
	store_bind_str(s, 5, reason ? reason : "");
	if (sqlite3_step(s) != SQLITE_DONE)
		LOGE("firmware %s: cannot store image state %s", fw_id, state);
	store_done(s);
}

static void im_set_partial(struct images *im, const char *fw_id, const char *token,
			   const char *etag, const char *lm)
{
	sqlite3_stmt *s = store_stmt(im->st, im_sql_partial);

	if (!s)
		return;
	store_bind_str(s, 1, fw_id);
	store_bind_str(s, 2, token);
	store_bind_str(s, 3, etag ? etag : "");
	store_bind_str(s, 4, lm ? lm : "");
	if (sqlite3_step(s) != SQLITE_DONE)
		LOGE("firmware %s: cannot store the partial download", fw_id);
	store_done(s);
}

/* Runs a one-parameter statement that returns one integer (or -1). */
static int64_t im_scalar(struct images *im, const char *sql, const char *arg)
{
	sqlite3_stmt *s = store_stmt(im->st, sql);
	int64_t v = -1;

	if (!s)
		return -1;
	if (arg)
		store_bind_str(s, 1, arg);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	store_done(s);
	return v;
}

static int im_exec1(struct images *im, const char *sql, const char *a, int64_t b)
{
	sqlite3_stmt *s = store_stmt(im->st, sql);
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, a);
	if (sqlite3_bind_parameter_count(s) >= 2)
		sqlite3_bind_int64(s, 2, b);
	rc = store_errno(sqlite3_step(s));
	store_done(s);
	return rc;
}

/* ---- what a finished image must be ------------------------------------- */

/* The value of hex digit c (checked with isxdigit() first). */
static unsigned im_nibble(unsigned char c)
{
	return (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
}

static int im_unhex(const char *hex, uint8_t *out, size_t n)
{
	if (strlen(hex) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char hi = (unsigned char)hex[2 * i], lo = (unsigned char)hex[2 * i + 1];

		if (!isxdigit(hi) || !isxdigit(lo))
			return -EINVAL;
		out[i] = (uint8_t)(im_nibble(hi) << 4 | im_nibble(lo));
	}
	return 0;
}

static int im_expect(struct images *im, const struct im_row *r, struct cache_expect *x,
		     struct err_info *e)
{
	memset(x, 0, sizeof(*x));
	x->size = r->size;
	if (!r->sign[0])
		return 0;
	if (!strcmp(r->method, "md5") || !strcmp(r->method, "sha256")) {
		x->method = r->method[0] == 'm' ? VERIFY_MD5 : VERIFY_SHA256;
		x->has_digest = true;
		return im_unhex(r->sign, x->digest, x->method == VERIFY_MD5 ? 16 : 32) ?
			err_set(e, -EINVAL, "sign is not %s hex", r->method) : 0;
	}
	if (!strcmp(r->method, "ecdsa-p256")) {
		if (!im->key_pem)
			return err_set(e, -EINVAL, "signMethod ecdsa-p256 needs [cache] signing_key");
		x->ecdsa_sig_b64 = r->sign;
		x->ecdsa_key_pem = im->key_pem;
		return 0;
	}
	return err_set(e, -EINVAL, "unknown signMethod %s", r->method);
}

/* ---- quota ------------------------------------------------------------- */

/* Drops image sha from disk and index; firmware using it become `state`. */
static void im_drop(struct images *im, const char *sha, const char *state, const char *why)
{
	sqlite3_stmt *s;

	if (cache_image_remove(im->c, sha) && cache_image_remove(im->c, sha) != -ENOENT)
		LOGW("cannot remove image %s", sha);
	if (im_exec1(im, im_sql_entry_del, sha, 0))
		LOGE("cannot unindex image %s", sha);
	s = store_stmt(im->st, im_sql_unlink_fw);
	if (!s)
		return;
	store_bind_str(s, 1, sha);
	store_bind_str(s, 2, state);
	store_bind_str(s, 3, why);
	if (sqlite3_step(s) != SQLITE_DONE)
		LOGE("cannot update the firmware of image %s", sha);
	store_done(s);
}

/* Evicts least-recently-used unpinned images (never keep) until need more
 * bytes fit under the quota and the free-disk floor. -ENOSPC "cache full". */
static int im_make_room(struct images *im, uint64_t need, const char *keep, struct err_info *e)
{
	for (;;) {
		int64_t used = im_scalar(im, im_sql_used, NULL);
		uint64_t disk = 0;
		char sha[CACHE_HEX_LEN + 1];
		sqlite3_stmt *s;
		int rc;

		if (used < 0 || cache_disk_free(im->c, &disk))
			return err_set(e, -EIO, "cannot measure the cache");
		if ((uint64_t)used + need <= im->cfg.max_bytes && disk >= need + im->cfg.min_free_bytes)
			return 0;
		s = store_stmt(im->st, im_sql_lru);
		if (!s)
			return err_set(e, -EIO, "database error");
		store_bind_str(s, 1, keep ? keep : "");
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			store_col_str(s, 0, sha, sizeof(sha));
		store_done(s);
		if (rc != SQLITE_ROW)
			return err_set(e, -ENOSPC, "cache full: %llu bytes needed, %lld used of %llu, "
				       "%llu free on disk (the rest is pinned by unfinished tasks)",
				       (unsigned long long)need, (long long)used,
				       (unsigned long long)im->cfg.max_bytes, (unsigned long long)disk);
		LOGI("evicting image %s (least recently used)", sha);
		im_drop(im, sha, "none", "evicted from the cache");
	}
}

/* ---- publishing a verified image --------------------------------------- */

/* Adds (or refreshes) the index row of a verified image. */
static int im_index(struct images *im, const char *sha, uint64_t size)
{
	sqlite3_stmt *s = store_stmt(im->st, im_sql_entry_put);
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, sha);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)size);
	sqlite3_bind_int64(s, 3, util_now_ms());
	rc = store_errno(sqlite3_step(s));
	store_done(s);
	return rc;
}

/* w verified and renamed: index it and point the firmware at it. */
static int im_commit(struct images *im, const char *fw_id, struct cache_writer *w,
		     struct err_info *e)
{
	char sha[CACHE_HEX_LEN + 1];
	uint64_t size = cache_writer_size(w);
	sqlite3_stmt *s;
	int rc = cache_writer_commit(w, sha, e);

	if (rc)
		return rc;
	rc = im_index(im, sha, size);
	if (rc)
		return err_set(e, rc, "cannot index image %s", sha);
	s = store_stmt(im->st, im_sql_ready);
	if (!s)
		return err_set(e, -EIO, "database error");
	store_bind_str(s, 1, fw_id);
	store_bind_str(s, 2, sha);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)size);
	rc = store_errno(sqlite3_step(s));
	store_done(s);
	if (rc)
		return err_set(e, rc, "cannot index image %s", sha);
	LOGI("firmware %s: image %s ready (%llu bytes)", fw_id, sha, (unsigned long long)size);
	if (im_make_room(im, 0, sha, e))
		LOGW("%s", err_text(e));
	if (im->on_ready)
		im->on_ready(im->on_ready_arg, fw_id);
	return 0;
}

/* ---- download jobs ----------------------------------------------------- */

static struct images_job *im_job_find(struct images *im, const char *fw_id)
{
	for (struct images_job *j = im->jobs; j; j = j->next)
		if (!strcmp(j->fw_id, fw_id))
			return j;
	return NULL;
}

static void im_job_free(struct images_job *j)
{
	struct images *im = j->im;

	for (struct images_job **pp = &im->jobs; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
	lws_sul_cancel(&j->sul);
	free(j);
}

static void im_pump(struct images *im);

static void im_fail(struct images_job *j, const char *reason)
{
	struct images *im = j->im;

	LOGW("firmware %s: image failed: %s", j->fw_id, reason);
	im->failed++;
	im_set_state(im, j->fw_id, "failed", 0, 0, reason);
	im_set_partial(im, j->fw_id, "", "", "");
	im_job_free(j);
}

static void im_on_headers(void *arg, const char *etag, const char *lm, uint64_t total,
			  bool restarted)
{
	struct images_job *j = arg;
	struct im_row r;

	if (im_row_get(j->im, j->fw_id, &r))
		return;
	im_set_partial(j->im, j->fw_id, r.partial, etag, lm);
	im_set_state(j->im, j->fw_id, "downloading", cache_writer_size(j->w),
		     r.size ? r.size : total, restarted ? "server ignored Range: restarted" : "");
}

static void im_on_progress(void *arg, uint64_t have, uint64_t total)
{
	struct images_job *j = arg;

	if (have - j->since_checkpoint < IMAGES_CHECKPOINT_BYTES)
		return;
	j->since_checkpoint = have;
	if (cache_writer_checkpoint(j->w))
		LOGW("firmware %s: checkpoint failed", j->fw_id);
	im_set_state(j->im, j->fw_id, "downloading", have, total, "");
}

static void im_retry_fire(lws_sorted_usec_list_t *sul);

/* Schedules another attempt: min(cap, 2^attempts) s times a jitter of
 * 0.5-1.5, and never sooner than the server's Retry-After. */
static void im_retry(struct images_job *j, const char *reason, unsigned retry_after)
{
	struct images *im = j->im;
	uint64_t delay = j->attempts < 20 ? (uint64_t)1 << j->attempts : im->cfg.max_retry_delay;
	uint32_t rnd = 0;
	char text[OTAGW_REASON_MAX];

	if (delay > im->cfg.max_retry_delay)
		delay = im->cfg.max_retry_delay;
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd = 0x7fffffff;
	delay = delay * 1000 * (500 + rnd % 1000) / 1000;   /* ms */
	if (delay < (uint64_t)retry_after * 1000)
		delay = (uint64_t)retry_after * 1000;
	j->attempts++;
	j->phase = JOB_RETRY_WAIT;
	snprintf(text, sizeof(text), "retrying in %llu s: %s",
		 (unsigned long long)((delay + 999) / 1000), reason);
	LOGW("firmware %s: download attempt %u failed: %s", j->fw_id, j->attempts, text);
	im->retries++;
	im_set_state(im, j->fw_id, "downloading", 0, 0, text);
	lws_sul_schedule(im->ctx, 0, &j->sul, im_retry_fire, (lws_usec_t)delay * 1000);
}

static void im_on_done(void *arg, int rc, int status, const char *reason, unsigned retry_after)
{
	struct images_job *j = arg;
	struct images *im = j->im;
	struct err_info e = { 0 };
	struct cache_writer *w = j->w;

	j->w = NULL;
	j->fj = NULL;
	im->running--;
	if (!rc) {
		rc = im_commit(im, j->fw_id, w, &e);
		if (rc)
			im_fail(j, err_text(&e));
		else
			im_job_free(j);
	} else if (rc == -EAGAIN) {
		cache_writer_abort(w, true);
		im_retry(j, reason, retry_after);
	} else {
		char text[OTAGW_REASON_MAX];

		snprintf(text, sizeof(text), "%s%s", reason,
			 rc == -EFBIG ? " (larger than the firmware's size)" : "");
		cache_writer_abort(w, false);
		im_fail(j, text);
	}
	im_pump(im);
}

/* Opens the writer and starts the transfer of j's firmware. */
static int im_job_start(struct images_job *j, struct err_info *e)
{
	struct images *im = j->im;
	struct fetch_req req = { 0 };
	struct cache_expect x;
	struct im_row r;
	char token[33];
	uint64_t have = 0;
	int rc = im_row_get(im, j->fw_id, &r);

	if (rc)
		return err_set(e, rc, "firmware %s is gone", j->fw_id);
	rc = im_expect(im, &r, &x, e);
	if (!rc && r.size)
		rc = im_make_room(im, r.size, NULL, e);
	if (rc)
		return rc;
	if (!cache_name_valid(r.partial)) {
		util_new_id(token);
		util_strlcpy(r.partial, token, sizeof(r.partial));
		r.etag[0] = r.last_modified[0] = '\0';
	}
	rc = cache_writer_open(im->c, r.partial, &x, true, &j->w, &have, e);
	if (rc)
		return rc;
	if (!have)
		r.etag[0] = r.last_modified[0] = '\0';
	im_set_partial(im, j->fw_id, r.partial, r.etag, r.last_modified);
	im_set_state(im, j->fw_id, "downloading", have, r.size, have ? "resuming" : "");
	req = (struct fetch_req){ .url = r.url, .w = j->w, .offset = have,
				  .etag = r.etag[0] ? r.etag : NULL,
				  .last_modified = r.last_modified[0] ? r.last_modified : NULL,
				  .on_headers = im_on_headers, .on_progress = im_on_progress,
				  .done = im_on_done, .arg = j };
	j->since_checkpoint = have;
	rc = fetch_start(im->f, &req, &j->fj, e);
	if (rc) {
		cache_writer_abort(j->w, true);
		j->w = NULL;
		return rc;
	}
	j->phase = JOB_RUNNING;
	im->running++;
	LOGI("firmware %s: downloading %s%s", j->fw_id, r.url, have ? " (resuming)" : "");
	return 0;
}

/* Starts queued jobs while there is a free download slot. */
static void im_pump(struct images *im)
{
	struct images_job *j = im->jobs;

	while (j && im->running < im->cfg.max_downloads) {
		struct images_job *next = j->next;
		struct err_info e = { 0 };

		if (j->phase == JOB_QUEUED && im_job_start(j, &e)) {
			if (e.code == -EAGAIN)
				im_retry(j, err_text(&e), 0);
			else
				im_fail(j, err_text(&e));
		}
		j = next;
	}
}

static void im_retry_fire(lws_sorted_usec_list_t *sul)
{
	struct images_job *j = lws_container_of(sul, struct images_job, sul);

	j->phase = JOB_QUEUED;
	im_pump(j->im);
}

static bool im_url_fetchable(const char *url)
{
	return !strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8);
}

int images_prefetch(struct images *im, const char *fw_id)
{
	struct images_job *j;
	struct im_row r;
	int rc = im_row_get(im, fw_id, &r);

	if (rc)
		return rc;
	if (!strcmp(r.state, "ready") || im_job_find(im, fw_id))
		return 0;
	if (!im->f || !im_url_fetchable(r.url))
		return 0;               /* nothing to fetch from: upload it */
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->im = im;
	util_strlcpy(j->fw_id, fw_id, sizeof(j->fw_id));
	j->phase = JOB_QUEUED;
	j->next = im->jobs;
	im->jobs = j;
	im_set_state(im, fw_id, "downloading", r.bytes, r.size, "queued");
	im_pump(im);
	return 0;
}

static void im_job_cancel(struct images_job *j, bool keep)
{
	if (j->fj) {
		fetch_cancel(j->fj);
		j->im->running--;
	}
	cache_writer_abort(j->w, keep);
	im_job_free(j);
}

void images_firmware_changed(struct images *im, const char *fw_id)
{
	struct images_job *j = im_job_find(im, fw_id);
	struct im_row r;

	if (j)
		im_job_cancel(j, false);
	if (!im_row_get(im, fw_id, &r) && cache_name_valid(r.partial))
		cache_partial_remove(im->c, r.partial);
	im_set_partial(im, fw_id, "", "", "");
	im_set_state(im, fw_id, "none", 0, 0, "");
	if (im_exec1(im, "UPDATE firmware SET image_sha256 = '' WHERE id = ?1", fw_id, 0))
		LOGE("firmware %s: cannot reset its image", fw_id);
	im_pump(im);
}

/* ---- reading ----------------------------------------------------------- */

int images_open(struct images *im, const char *fw_id, int *fd, uint64_t *size, char *sha_out)
{
	struct im_row r;
	int rc = im_row_get(im, fw_id, &r);

	if (rc)
		return rc;
	if (!strcmp(r.state, "downloading"))
		return -EAGAIN;
	if (strcmp(r.state, "ready"))
		return -ENOENT;
	rc = cache_image_open(im->c, r.sha, fd, size);
	if (rc == -ENOENT) {
		LOGW("image %s of firmware %s vanished from disk", r.sha, fw_id);
		im_drop(im, r.sha, "missing", "the file vanished from the cache");
		return -ENOENT;
	}
	if (rc)
		return rc;
	if (im_exec1(im, im_sql_touch, r.sha, util_now_ms()))
		LOGD("cannot touch image %s", r.sha);
	if (sha_out)
		memcpy(sha_out, r.sha, CACHE_HEX_LEN + 1);
	return 0;
}

/* ---- uploads ----------------------------------------------------------- */

int images_upload_begin(struct images *im, const char *fw_id, uint64_t length,
			struct images_upload **out, struct err_info *e)
{
	struct images_upload *u;
	struct cache_expect x;
	struct im_row r;
	uint64_t have;
	int rc = im_row_get(im, fw_id, &r);

	if (rc)
		return err_set(e, rc, "firmware '%s' not found", fw_id);
	if (im_job_find(im, fw_id))
		return err_set(e, -EBUSY, "a download of this firmware's image is running");
	rc = im_expect(im, &r, &x, e);
	if (!rc && r.size && length && length != r.size)
		rc = err_set(e, length > r.size ? -EFBIG : -EBADMSG,
			     "body of %llu bytes, but the firmware's size is %llu",
			     (unsigned long long)length, (unsigned long long)r.size);
	if (!rc)
		rc = im_make_room(im, length ? length : r.size, NULL, e);
	if (rc)
		return rc;
	u = calloc(1, sizeof(*u));
	if (!u)
		return err_set(e, -ENOMEM, "out of memory");
	u->im = im;
	util_strlcpy(u->fw_id, fw_id, sizeof(u->fw_id));
	util_new_id(u->token);
	rc = cache_writer_open(im->c, u->token, &x, false, &u->w, &have, e);
	if (rc) {
		free(u);
		return rc;
	}
	im_set_state(im, fw_id, "downloading", 0, length ? length : r.size, "uploading");
	*out = u;
	return 0;
}

int images_upload_feed(struct images_upload *u, const void *buf, size_t len, struct err_info *e)
{
	int rc = cache_writer_feed(u->w, buf, len);

	if (rc == -EFBIG)
		return err_set(e, rc, "the upload is larger than the firmware's size");
	return rc ? err_set(e, rc, "cannot write the image: %s", otagw_strerror(rc)) : 0;
}

int images_upload_end(struct images_upload *u, struct err_info *e)
{
	int rc = im_commit(u->im, u->fw_id, u->w, e);

	if (rc)
		im_set_state(u->im, u->fw_id, "failed", 0, 0, err_text(e));
	free(u);
	return rc;
}

void images_upload_abort(struct images_upload *u)
{
	if (!u)
		return;
	cache_writer_abort(u->w, false);
	im_set_state(u->im, u->fw_id, "failed", 0, 0, "upload interrupted");
	free(u);
}

/* ---- views ------------------------------------------------------------- */

cJSON *images_firmware_json(struct images *im, const char *fw_id)
{
	cJSON *o = cJSON_CreateObject();
	struct im_row r;

	if (!o)
		return NULL;
	if (im_row_get(im, fw_id, &r)) {
		cJSON_AddStringToObject(o, "state", "none");
		return o;
	}
	cJSON_AddStringToObject(o, "state", r.state);
	if (r.sha[0])
		cJSON_AddStringToObject(o, "sha256", r.sha);
	cJSON_AddNumberToObject(o, "bytes", (double)r.bytes);
	cJSON_AddNumberToObject(o, "total", (double)r.total);
	if (r.reason[0])
		cJSON_AddStringToObject(o, "reason", r.reason);
	return o;
}

static cJSON *im_users(struct images *im, const char *sha)
{
	cJSON *arr = cJSON_CreateArray();
	sqlite3_stmt *s = store_stmt(im->st, im_sql_users);

	if (!s || !arr)
		return arr;
	store_bind_str(s, 1, sha);
	while (sqlite3_step(s) == SQLITE_ROW)
		cJSON_AddItemToArray(arr, cJSON_CreateString((const char *)sqlite3_column_text(s, 0)));
	store_done(s);
	return arr;
}

int images_list(struct images *im, cJSON **out)
{
	cJSON *o = cJSON_CreateObject(), *items = cJSON_CreateArray();
	struct { char sha[CACHE_HEX_LEN + 1]; int64_t size, used; } *rows = NULL;
	size_t n = 0, cap = 0;
	uint64_t disk = 0;
	sqlite3_stmt *s = store_stmt(im->st, im_sql_entries);

	if (!o || !items || !s) {
		cJSON_Delete(o);
		cJSON_Delete(items);
		store_done(s);
		return -ENOMEM;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (n == cap) {
			void *nr = realloc(rows, (cap = cap ? cap * 2 : 16) * sizeof(*rows));

			if (!nr)
				break;
			rows = nr;
		}
		store_col_str(s, 0, rows[n].sha, sizeof(rows[n].sha));
		rows[n].size = sqlite3_column_int64(s, 1);
		rows[n++].used = sqlite3_column_int64(s, 2);
	}
	store_done(s);
	for (size_t i = 0; i < n; i++) {   /* statement finished: nested queries are fine */
		cJSON *it = cJSON_CreateObject();

		cJSON_AddStringToObject(it, "sha256", rows[i].sha);
		cJSON_AddNumberToObject(it, "size", (double)rows[i].size);
		cJSON_AddNumberToObject(it, "lastUsed", (double)rows[i].used);
		cJSON_AddBoolToObject(it, "pinned", im_scalar(im, im_sql_pinned, rows[i].sha) > 0);
		cJSON_AddItemToObject(it, "firmwareIds", im_users(im, rows[i].sha));
		cJSON_AddItemToArray(items, it);
	}
	free(rows);
	if (cache_disk_free(im->c, &disk))
		disk = 0;
	cJSON_AddNumberToObject(o, "usedBytes", (double)im_scalar(im, im_sql_used, NULL));
	cJSON_AddNumberToObject(o, "maxBytes", (double)im->cfg.max_bytes);
	cJSON_AddNumberToObject(o, "freeDiskBytes", (double)disk);
	cJSON_AddNumberToObject(o, "downloads", im->running);
	cJSON_AddNumberToObject(o, "total", (double)n);
	cJSON_AddItemToObject(o, "items", items);
	*out = o;
	return 0;
}

int images_remove(struct images *im, const char *sha, struct err_info *e)
{
	if (!cache_name_valid(sha) || strlen(sha) != CACHE_HEX_LEN ||
	    im_scalar(im, im_sql_entry_get, sha) < 0)
		return err_set(e, -ENOENT, "no cached image %.64s", sha);
	if (im_scalar(im, im_sql_pinned, sha) > 0)
		return err_set(e, -EBUSY, "image %s is pinned: a task with unfinished records "
			       "needs it", sha);
	im_drop(im, sha, "none", "removed from the cache");
	LOGI("image %s removed", sha);
	return 0;
}

/* ---- start-up reconciliation ------------------------------------------- */

struct im_scan {
	struct images *im;
	char **list;
	size_t n, cap;
};

static int im_scan_fn(void *arg, const char *name, uint64_t size, bool partial)
{
	struct im_scan *sc = arg;
	char **nl;

	if (partial) {
		if (im_scalar(sc->im, im_sql_partials, name) <= 0) {
			LOGI("removing partial %s that no download resumes", name);
			cache_partial_remove(sc->im->c, name);
		}
		return 0;
	}
	if (sc->n == sc->cap) {
		nl = realloc(sc->list, (sc->cap = sc->cap ? sc->cap * 2 : 16) * sizeof(*nl));
		if (!nl)
			return -ENOMEM;
		sc->list = nl;
	}
	sc->list[sc->n] = strdup(name);
	return sc->list[sc->n++] ? 0 : -ENOMEM;
}

static void im_check_slice(lws_sorted_usec_list_t *sul);

/* Files on disk that the index lacks are indexed (after their check);
 * index rows whose file is gone make their firmware "missing". */
static void im_index_sync(struct images *im)
{
	sqlite3_stmt *s = store_stmt(im->st, "SELECT sha256 FROM cache_entry");
	char (*gone)[CACHE_HEX_LEN + 1] = NULL;
	size_t n = 0, cap = 0;

	if (!s)
		return;
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *sha = (const char *)sqlite3_column_text(s, 0);
		bool found = false;

		for (size_t i = 0; i < im->check_n && !found; i++)
			found = !strcmp(im->check_list[i], sha);
		if (found)
			continue;
		if (n == cap) {
			void *ng = realloc(gone, (cap = cap ? cap * 2 : 8) * sizeof(*gone));

			if (!ng)
				break;
			gone = ng;
		}
		util_strlcpy(gone[n++], sha, CACHE_HEX_LEN + 1);
	}
	store_done(s);
	for (size_t i = 0; i < n; i++) {
		LOGW("image %s is indexed but not on disk: marked missing", gone[i]);
		im_drop(im, gone[i], "missing", "the file is not in the cache any more");
	}
	free(gone);
}

static void im_resume_downloads(struct images *im)
{
	sqlite3_stmt *s = store_stmt(im->st, im_sql_resume);
	char (*ids)[OTAGW_ID_MAX] = NULL;
	size_t n = 0, cap = 0;

	if (!s)
		return;
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (n == cap) {
			void *ni = realloc(ids, (cap = cap ? cap * 2 : 8) * sizeof(*ids));

			if (!ni)
				break;
			ids = ni;
		}
		store_col_str(s, 0, ids[n++], OTAGW_ID_MAX);
	}
	store_done(s);
	for (size_t i = 0; i < n; i++) {
		im_set_state(im, ids[i], "none", 0, 0, "");
		if (images_prefetch(im, ids[i]))
			LOGW("firmware %s: cannot resume its download", ids[i]);
	}
	free(ids);
}

int images_reconcile(struct images *im)
{
	struct im_scan sc = { .im = im };
	int rc = cache_scan(im->c, im_scan_fn, &sc);

	if (rc) {
		for (size_t i = 0; i < sc.n; i++)
			free(sc.list[i]);
		free(sc.list);
		return rc;
	}
	im->check_list = sc.list;
	im->check_n = sc.n;
	im->check_i = 0;
	im_index_sync(im);
	im_resume_downloads(im);
	if (im->check_n)
		lws_sul_schedule(im->ctx, 0, &im->check_sul, im_check_slice, 1);
	return 0;
}

/* The image just checked is sound: make sure the index knows it. */
static void im_check_ok(struct images *im, const char *sha)
{
	int fd;
	uint64_t size;

	if (im_scalar(im, im_sql_entry_get, sha) >= 0 || cache_image_open(im->c, sha, &fd, &size))
		return;
	close(fd);
	if (im_index(im, sha, size))
		LOGE("cannot index image %s", sha);
	else
		LOGI("indexed image %s found on disk", sha);
}

static void im_check_slice(lws_sorted_usec_list_t *sul)
{
	struct images *im = lws_container_of(sul, struct images, check_sul);
	const char *sha;
	int rc;

	if (im->check_i >= im->check_n)
		return;
	sha = im->check_list[im->check_i];
	if (!im->check && cache_check_begin(im->c, sha, &im->check))
		im->check = NULL;
	rc = im->check ? cache_check_step(im->check, IMAGES_CHECK_STEP) : -EIO;
	if (rc == 1) {
		lws_sul_schedule(im->ctx, 0, &im->check_sul, im_check_slice, 1);
		return;          /* yield to device I/O */
	}
	cache_check_end(im->check);
	im->check = NULL;
	if (rc == -OTAGW_ESIGNATURE) {
		LOGE("image %s does not match its name: removed", sha);
		im_drop(im, sha, "missing", "the cached file was corrupt");
	} else if (!rc) {
		im_check_ok(im, sha);
	}
	im->check_i++;
	lws_sul_schedule(im->ctx, 0, &im->check_sul, im_check_slice, 1);
}

/* ---- life cycle -------------------------------------------------------- */

int images_new(struct images **out, struct store *st, struct cache *c, struct fetch *f,
	       struct lws_context *ctx, const struct images_cfg *cfg, struct err_info *e)
{
	struct images *im = calloc(1, sizeof(*im));

	if (!im)
		return err_set(e, -ENOMEM, "out of memory");
	im->st = st;
	im->c = c;
	im->f = f;
	im->ctx = ctx;
	im->cfg = *cfg;
	if (!im->cfg.max_downloads)
		im->cfg.max_downloads = 1;
	if (cfg->signing_key_pem && cfg->signing_key_pem[0]) {
		im->key_pem = strdup(cfg->signing_key_pem);
		if (!im->key_pem) {
			free(im);
			return err_set(e, -ENOMEM, "out of memory");
		}
	}
	im->cfg.signing_key_pem = im->key_pem;
	*out = im;
	return 0;
}

void images_free(struct images *im)
{
	if (!im)
		return;
	for (struct images_job *j = im->jobs, *next; j; j = next) {
		next = j->next;
		im_job_cancel(j, true);         /* unlinks and frees j */
	}
	lws_sul_cancel(&im->check_sul);
	cache_check_end(im->check);
	for (size_t i = 0; i < im->check_n; i++)
		free(im->check_list[i]);
	free(im->check_list);
	free(im->key_pem);
	free(im);
}

int images_adopt(struct images *im, const char *firmware_id, const char *sha256_hex,
		 uint64_t size)
{
	sqlite3_stmt *s;
	int rc = im_index(im, sha256_hex, size);

	if (rc)
		return rc;
	s = store_stmt(im->st, im_sql_ready);
	if (!s)
		return -EIO;
	store_bind_str(s, 1, firmware_id);
	store_bind_str(s, 2, sha256_hex);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)size);
	rc = store_errno(sqlite3_step(s));
	store_done(s);
	return rc;
}

struct cache *images_cache(struct images *im)
{
	return im->c;
}

uint64_t images_quota(const struct images *im)
{
	return im->cfg.max_bytes;
}

int images_stats(struct images *im, struct images_stats *out)
{
	sqlite3_stmt *s = store_stmt(im->st, "SELECT COUNT(*), TOTAL(size) FROM cache_entry");
	int rc;

	memset(out, 0, sizeof(*out));
	out->downloads = im->running;
	for (struct images_job *j = im->jobs; j; j = j->next)
		out->queued++;
	out->queued -= out->queued >= im->running ? im->running : out->queued;
	out->failed = im->failed;
	out->retries = im->retries;
	if (!s)
		return -EIO;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->entries = sqlite3_column_int64(s, 0);
		out->bytes = (int64_t)sqlite3_column_double(s, 1);
	}
	store_done(s);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

int images_drop_unused(struct images *im, const char *sha256_hex)
{
	if (im_scalar(im, "SELECT COUNT(*) FROM firmware WHERE image_sha256 = ?1", sha256_hex) != 0)
		return -EBUSY;
	if (cache_image_remove(im->c, sha256_hex) && errno != ENOENT)
		LOGD("image %s: nothing to remove", sha256_hex);
	return im_exec1(im, im_sql_entry_del, sha256_hex, 0);
}

bool images_ready(struct images *im, const char *firmware_id)
{
	return im_scalar(im, "SELECT COUNT(*) FROM firmware WHERE id = ?1"
			 " AND image_state = 'ready'", firmware_id) > 0;
}

void images_on_ready(struct images *im, void (*fn)(void *arg, const char *firmware_id),
		     void *arg)
{
	im->on_ready = fn;
	im->on_ready_arg = arg;
}
