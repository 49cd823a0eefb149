/* SPDX-License-Identifier: MIT */
/* store.c - SQLite open, pragmas, migrations, statement cache, savepoints.
 * Migrations are an ordered table of SQL scripts; migrations[i] takes a file
 * from user_version i to i + 1, inside one transaction with the version bump,
 * so a power cut leaves the file at i or at i + 1, never between. */
#define LOG_MOD "store"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define STORE_STMT_CACHE 128

struct store_stmt_slot {
	const char *sql;      /* literal; key by address */
	sqlite3_stmt *stmt;
};

struct store {
	sqlite3 *db;
	int version;
	int depth;            /* open transactions (savepoint nesting) */
	struct store_stmt_slot cache[STORE_STMT_CACHE];
	size_t nobs;
	struct {
		const struct store_events *ev;
		void *arg;
	} obs[STORE_OBSERVERS_MAX];
	bool relaxed;         /* the open outermost transaction is relaxed */
	/* group commit (store_set_batching) */
	bool batching;        /* outermost transactions join the batch */
	bool batch_open;      /* BEGIN IMMEDIATE of the batch done, not committed */
	bool in_relaxed;      /* the open outermost savepoint is relaxed */
	int64_t flushed;      /* sqlite3_total_changes64() at the last flush */
	int64_t relaxed_mark; /* ... at the relaxed savepoint's start */
	int64_t relaxed_n;    /* changes since the last flush made in relaxed savepoints */
	uint64_t commits, syncs, flush_fail;
};

int store_add_events(struct store *st, const struct store_events *ev, void *arg)
{
	if (st->nobs >= STORE_OBSERVERS_MAX)
		return -ENOSPC;
	st->obs[st->nobs].ev = ev;
	st->obs[st->nobs++].arg = arg;
	return 0;
}

void store_remove_events(struct store *st, const struct store_events *ev, void *arg)
{
	for (size_t i = 0; i < st->nobs; i++) {
		if (st->obs[i].ev != ev || st->obs[i].arg != arg)
			continue;
		memmove(&st->obs[i], &st->obs[i + 1], (st->nobs - i - 1) * sizeof(st->obs[0]));
		st->nobs--;
		return;
	}
}

int store_emit_record_changed(struct store *st, const struct record *r, const char *from)
{
	for (size_t i = 0; i < st->nobs; i++) {
		int rc = st->obs[i].ev->record_changed ?
			 st->obs[i].ev->record_changed(st->obs[i].arg, st, r, from) : 0;

		if (rc < 0)
			return rc;
	}
	return 0;
}

int store_emit_record_progress(struct store *st, const char *record_id, int progress,
			       int64_t time)
{
	for (size_t i = 0; i < st->nobs; i++) {
		int rc = st->obs[i].ev->record_progress ?
			 st->obs[i].ev->record_progress(st->obs[i].arg, st, record_id, progress,
							time) : 0;

		if (rc < 0)
			return rc;
	}
	return 0;
}

int store_emit_task_event(struct store *st, const char *task_id, const char *event, int wave,
			  const char *reason, int64_t time)
{
	for (size_t i = 0; i < st->nobs; i++) {
		int rc = st->obs[i].ev->task_event ?
			 st->obs[i].ev->task_event(st->obs[i].arg, st, task_id, event, wave, reason,
						   time) : 0;

		if (rc < 0)
			return rc;
	}
	return 0;
}

int store_emit_device_report(struct store *st, const struct msg *m)
{
	for (size_t i = 0; i < st->nobs; i++) {
		int rc = st->obs[i].ev->device_report ?
			 st->obs[i].ev->device_report(st->obs[i].arg, st, m) : 0;

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* v1: catalogue, devices, tasks, records and their history. */
static const char store_v1[] =
	"CREATE TABLE firmware ("
	" id TEXT PRIMARY KEY, product_id TEXT NOT NULL, name TEXT NOT NULL,"
	" version TEXT NOT NULL, version_order INTEGER NOT NULL DEFAULT 0,"
	" url TEXT NOT NULL DEFAULT '', size INTEGER NOT NULL DEFAULT 0,"
	" sign TEXT NOT NULL DEFAULT '', sign_method TEXT NOT NULL DEFAULT '',"
	" properties TEXT NOT NULL DEFAULT '{}', description TEXT NOT NULL DEFAULT '',"
	" create_time INTEGER NOT NULL, update_time INTEGER NOT NULL,"
	" UNIQUE (product_id, version));"
	"CREATE TABLE device ("
	" id TEXT PRIMARY KEY, product_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',"
	" firmware_version TEXT NOT NULL DEFAULT '', properties TEXT NOT NULL DEFAULT '{}',"
	" transport TEXT NOT NULL DEFAULT '', online INTEGER NOT NULL DEFAULT 0,"
	" last_seen INTEGER NOT NULL DEFAULT 0, create_time INTEGER NOT NULL);"
	"CREATE INDEX device_product ON device (product_id);"
	"CREATE TABLE task ("
	" id TEXT PRIMARY KEY, firmware_id TEXT NOT NULL REFERENCES firmware (id),"
	" product_id TEXT NOT NULL, name TEXT NOT NULL,"
	" mode TEXT NOT NULL CHECK (mode IN ('push', 'pull')),"
	" timeout_seconds INTEGER NOT NULL DEFAULT 0, description TEXT NOT NULL DEFAULT '',"
	" create_time INTEGER NOT NULL);"
	"CREATE INDEX task_firmware ON task (firmware_id);"
	"CREATE TABLE record ("
	" id TEXT PRIMARY KEY, task_id TEXT NOT NULL REFERENCES task (id) ON DELETE CASCADE,"
	" device_id TEXT NOT NULL, firmware_id TEXT NOT NULL, version TEXT NOT NULL,"
	" version_order INTEGER NOT NULL DEFAULT 0, timeout_seconds INTEGER NOT NULL DEFAULT 0,"
	" state TEXT NOT NULL CHECK (state IN"
	"  ('waiting', 'processing', 'success', 'failed', 'canceled')),"
	" progress INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),"
	" error_reason TEXT NOT NULL DEFAULT '', create_time INTEGER NOT NULL,"
	" upgrade_time INTEGER NOT NULL DEFAULT 0, complete_time INTEGER NOT NULL DEFAULT 0,"
	" update_time INTEGER NOT NULL, UNIQUE (task_id, device_id));"
	"CREATE INDEX record_device ON record (device_id, state);"
	"CREATE INDEX record_task ON record (task_id, state);"
	"CREATE INDEX record_state ON record (state, update_time);"
	"CREATE TABLE record_history ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, record_id TEXT NOT NULL,"
	" task_id TEXT NOT NULL, device_id TEXT NOT NULL, from_state TEXT NOT NULL,"
	" to_state TEXT NOT NULL, progress INTEGER NOT NULL DEFAULT 0,"
	" reason TEXT NOT NULL DEFAULT '', time INTEGER NOT NULL);"
	"CREATE INDEX history_record ON record_history (record_id, id);"
	"CREATE INDEX history_device ON record_history (device_id, id);";

/* v2: tasks get a lifecycle state (a cancelled task can no longer be
 * published); tasks that already have records were published. And a
 * key/value settings table (gateway instance id, later the cloud cursor). */
static const char store_v2[] =
	"ALTER TABLE task ADD COLUMN state TEXT NOT NULL DEFAULT 'created'"
	" CHECK (state IN ('created', 'published', 'canceled'));"
	"UPDATE task SET state = 'published'"
	" WHERE EXISTS (SELECT 1 FROM record r WHERE r.task_id = task.id);"
	"CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"INSERT INTO settings (key, value) VALUES ('instance_id', lower(hex(randomblob(16))));";

/* v3: devices get a secret for [tcp] auth = token, stored salted and
 * hashed ("sha256$salt$digest"), never in clear. */
static const char store_v3[] =
	"ALTER TABLE device ADD COLUMN secure_key TEXT NOT NULL DEFAULT '';";

/* v4: the image cache. cache_entry indexes verified files by SHA-256;
 * each firmware knows the state of its image (and, while downloading, its
 * partial file's token and the server's validators for a resume). */
static const char store_v4[] =
	"CREATE TABLE cache_entry ("
	" sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL,"
	" last_used INTEGER NOT NULL, create_time INTEGER NOT NULL);"
	"ALTER TABLE firmware ADD COLUMN image_state TEXT NOT NULL DEFAULT 'none'"
	" CHECK (image_state IN ('none', 'downloading', 'ready', 'failed', 'missing'));"
	"ALTER TABLE firmware ADD COLUMN image_sha256 TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE firmware ADD COLUMN image_bytes INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE firmware ADD COLUMN image_total INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE firmware ADD COLUMN image_reason TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE firmware ADD COLUMN image_partial TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE firmware ADD COLUMN image_etag TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE firmware ADD COLUMN image_last_modified TEXT NOT NULL DEFAULT '';"
	"CREATE INDEX firmware_image ON firmware (image_sha256);";

/* v5: cloud sync. Firmware and tasks remember who made them ('local' or
 * 'cloud': each side may edit only its own). outbox holds sequenced
 * upstream frames until the cloud acks them; outbox_progress the latest
 * unsent progress per record (coalesced, bounded by the records). The seq
 * counter lives in settings so a number is never reused. */
static const char store_v5[] =
	"ALTER TABLE firmware ADD COLUMN origin TEXT NOT NULL DEFAULT 'local'"
	" CHECK (origin IN ('local', 'cloud'));"
	"ALTER TABLE task ADD COLUMN origin TEXT NOT NULL DEFAULT 'local'"
	" CHECK (origin IN ('local', 'cloud'));"
	"CREATE TABLE outbox ("
	" seq INTEGER PRIMARY KEY, type TEXT NOT NULL, frame TEXT NOT NULL,"
	" create_time INTEGER NOT NULL);"
	"CREATE TABLE outbox_progress ("
	" record_id TEXT PRIMARY KEY, task_id TEXT NOT NULL, device_id TEXT NOT NULL,"
	" progress INTEGER NOT NULL, time INTEGER NOT NULL);"
	"INSERT INTO settings (key, value) VALUES ('outbox_seq', '0');";

/* v6: rollouts (rollout.h). A task keeps its rollout policy (JSON, '' =
 * none), whether it is paused and why, its current wave and the failures
 * of that wave an operator acknowledged by resuming; a record its wave and
 * how many retries it had; task_event is the task's history of rollout decisions. */
static const char store_v6[] =
	"ALTER TABLE task ADD COLUMN rollout TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE task ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE task ADD COLUMN pause_reason TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE task ADD COLUMN wave INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE task ADD COLUMN ack_failed INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE record ADD COLUMN wave INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE record ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;"
	"CREATE TABLE task_event ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, time INTEGER NOT NULL,"
	" event TEXT NOT NULL, wave INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX task_event_task ON task_event (task_id, id);";

static const char *const store_migrations[STORE_SCHEMA_VERSION] = { store_v1, store_v2,
								   store_v3, store_v4, store_v5,
								   store_v6 };

static int store_exec(struct store *st, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		LOGE("%s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return store_errno(rc);
	}
	return 0;
}

int store_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return -EACCES;
	default:
		return -EIO;
	}
}

static int store_read_version(struct store *st)
{
	sqlite3_stmt *s;
	int v = -1;

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v < 0 ? -EIO : v;
}

static int store_migrate(struct store *st, int target, struct err_info *e)
{
	int v = store_read_version(st);

	if (v < 0)
		return err_set(e, v, "cannot read schema version: %s", sqlite3_errmsg(st->db));
	if (v > STORE_SCHEMA_VERSION)
		return err_set(e, -OTAGW_ESCHEMA, "schema version %d is newer than %d", v,
			       STORE_SCHEMA_VERSION);
	for (; v < target; v++) {
		char bump[64];
		int rc;

		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d;", v + 1);
		rc = store_exec(st, "BEGIN IMMEDIATE");
		if (!rc)
			rc = store_exec(st, store_migrations[v]);
		if (!rc)
			rc = store_exec(st, bump);
		if (!rc)
			rc = store_exec(st, "COMMIT");
		if (rc) {
			store_exec(st, "ROLLBACK");
			return err_set(e, rc, "migration to schema %d failed", v + 1);
		}
		LOGI("schema migrated to version %d", v + 1);
	}
	st->version = v;
	return 0;
}

static int store_pragmas(struct store *st, struct err_info *e)
{
	static const char pragmas[] =
		"PRAGMA journal_mode = WAL;"
		"PRAGMA synchronous = FULL;"
		"PRAGMA foreign_keys = ON;"
		"PRAGMA secure_delete = OFF;";
	int rc;

	sqlite3_busy_timeout(st->db, 200);
	rc = store_exec(st, pragmas);
	if (rc)
		return err_set(e, rc, "cannot set up database: %s", sqlite3_errmsg(st->db));
	return 0;
}

int store_open_version(struct store **out, const char *path, int version, struct err_info *e)
{
	struct store *st;
	int rc;

	if (version < 0 || version > STORE_SCHEMA_VERSION)
		return err_set(e, -EINVAL, "no schema version %d", version);
	st = calloc(1, sizeof(*st));
	if (!st)
		return err_set(e, -ENOMEM, "out of memory");
	/* The file holds device key hashes and the cloud cursor: owner only.
	 * SQLite gives its -wal and -shm files the database's mode. */
	if (strcmp(path, ":memory:")) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

		if (fd >= 0) {
			if (fchmod(fd, 0600))
				LOGW("cannot make %s owner-only: %s", path, strerror(errno));
			close(fd);
		}
	}
	rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		err_set(e, store_errno(rc), "cannot open %s: %s", path,
			st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		rc = e ? e->code : -EIO;
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	rc = store_pragmas(st, e);
	if (!rc)
		rc = store_migrate(st, version, e);
	if (rc)
		goto fail;
	*out = st;
	return 0;
fail:
	sqlite3_close(st->db);
	free(st);
	return rc;
}

int store_open(struct store **out, const char *path, struct err_info *e)
{
	return store_open_version(out, path, STORE_SCHEMA_VERSION, e);
}

void store_close(struct store *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < STORE_STMT_CACHE; i++)
		sqlite3_finalize(st->cache[i].stmt);
	while (st->depth > 0)
		store_rollback(st);
	(void)store_flush(st);
	sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	sqlite3_close(st->db);
	free(st);
}

int store_version(struct store *st)
{
	return st->version;
}

sqlite3 *store_db(struct store *st)
{
	return st->db;
}

sqlite3_stmt *store_stmt(struct store *st, const char *sql)
{
	size_t h = ((uintptr_t)sql >> 3) % STORE_STMT_CACHE;

	for (size_t i = 0; i < STORE_STMT_CACHE; i++) {
		struct store_stmt_slot *slot = &st->cache[(h + i) % STORE_STMT_CACHE];

		if (slot->sql == sql) {
			sqlite3_reset(slot->stmt);
			sqlite3_clear_bindings(slot->stmt);
			return slot->stmt;
		}
		if (!slot->sql) {
			if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
					       &slot->stmt, NULL) != SQLITE_OK) {
				LOGE("prepare failed: %s", sqlite3_errmsg(st->db));
				slot->stmt = NULL;
				return NULL;
			}
			slot->sql = sql;
			return slot->stmt;
		}
	}
	LOGE("statement cache full");
	return NULL;
}

void store_done(sqlite3_stmt *stmt)
{
	if (stmt)
		sqlite3_reset(stmt);
}

/* SQLite may end a transaction by itself (SQLITE_FULL, IOERR, NOMEM): then
 * the batch, and every savepoint in it, is gone. */
static bool store_batch_lost(struct store *st)
{
	if (!st->batch_open || !sqlite3_get_autocommit(st->db))
		return false;
	LOGE("the database ended the open batch (an I/O error?): its changes are lost");
	st->batch_open = false;
	st->depth = 0;
	st->flush_fail++;
	return true;
}

/* The outermost begin of a batching store: opens the batch when none is
 * open, then a savepoint in it. */
static int store_batch_begin(struct store *st, bool relaxed)
{
	int rc;

	(void)store_batch_lost(st);
	if (!st->batch_open) {
		rc = store_exec(st, "BEGIN IMMEDIATE");
		if (rc)
			return rc;
		st->batch_open = true;
	}
	rc = store_exec(st, "SAVEPOINT tx");
	if (rc)
		return rc;
	st->depth = 1;
	st->in_relaxed = relaxed;
	st->relaxed_mark = sqlite3_total_changes64(st->db);
	return 0;
}

int store_begin(struct store *st)
{
	int rc;

	if (st->batching && !st->depth)
		return store_batch_begin(st, false);
	rc = store_exec(st, st->depth ? "SAVEPOINT tx" : "BEGIN IMMEDIATE");
	if (!rc)
		st->depth++;
	return rc;
}

int store_begin_relaxed(struct store *st)
{
	int rc;

	if (st->depth)
		return store_begin(st);
	if (st->batching)
		return store_batch_begin(st, true);
	rc = store_exec(st, "PRAGMA synchronous = NORMAL");
	if (!rc)
		rc = store_begin(st);
	if (rc)
		(void)store_exec(st, "PRAGMA synchronous = FULL");
	else
		st->relaxed = true;
	return rc;
}

/* After the outermost transaction of a relaxed one: back to FULL. */
static void store_unrelax(struct store *st)
{
	if (!st->relaxed || st->depth)
		return;
	st->relaxed = false;
	if (store_exec(st, "PRAGMA synchronous = FULL"))
		LOGE("cannot restore synchronous = FULL");
}

/* The outermost savepoint of a batch ends: count what a relaxed one did. */
static void store_batch_release(struct store *st)
{
	if (st->in_relaxed)
		st->relaxed_n += sqlite3_total_changes64(st->db) - st->relaxed_mark;
	st->in_relaxed = false;
}

int store_commit(struct store *st)
{
	int rc;

	if (st->depth <= 0)
		return -EINVAL;
	if (store_batch_lost(st))
		return -EIO;
	rc = store_exec(st, st->depth > 1 || st->batch_open ? "RELEASE tx" : "COMMIT");
	if (rc) {
		store_rollback(st);
		return rc;
	}
	st->depth--;
	if (st->batch_open && !st->depth)
		store_batch_release(st);
	store_unrelax(st);
	return 0;
}

void store_rollback(struct store *st)
{
	if (st->depth <= 0 || store_batch_lost(st))
		return;
	if (st->depth > 1 || st->batch_open)
		store_exec(st, "ROLLBACK TO tx; RELEASE tx");
	else
		store_exec(st, "ROLLBACK");
	st->depth--;
	if (st->batch_open && !st->depth)
		store_batch_release(st);
	store_unrelax(st);
}

/* Makes the committed WAL durable: what synchronous = FULL does at each
 * commit, done once for the batch, through SQLite's own file object. */
static int store_sync_wal(struct store *st)
{
	sqlite3_file *wal = NULL;
	int rc = sqlite3_file_control(st->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);

	if (rc != SQLITE_OK || !wal || !wal->pMethods)
		return 0;       /* no WAL open (:memory:, or nothing written yet) */
	rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
	if (rc != SQLITE_OK) {
		LOGE("cannot sync the write-ahead log: %s", sqlite3_errstr(rc));
		return store_errno(rc);
	}
	st->syncs++;
	return 0;
}

int store_flush(struct store *st)
{
	int64_t total;
	bool strict;
	int rc = 0;

	if (!st || !st->batching)
		return 0;
	if (st->depth)
		return -EBUSY;  /* a transaction of a caller is open: not now */
	if (store_batch_lost(st))
		return -EIO;
	/* Strict: a change since the last flush that was not made under
	 * store_begin_relaxed(), in the batch or committed on its own outside
	 * one (a single statement with no store_begin(), with synchronous =
	 * NORMAL: it too waits for this sync). */
	total = sqlite3_total_changes64(st->db);
	strict = total - st->flushed != st->relaxed_n;
	st->flushed = total;
	st->relaxed_n = 0;
	if (st->batch_open) {
		rc = store_exec(st, "COMMIT");
		st->batch_open = false;
		if (rc) {
			LOGE("group commit failed: the changes of this pass are lost");
			(void)store_exec(st, "ROLLBACK");
			st->flush_fail++;
			return rc;
		}
		st->commits++;
	}
	return strict ? store_sync_wal(st) : 0;
}

int store_set_batching(struct store *st, bool on)
{
	int rc;

	if (st->depth)
		return -EBUSY;
	rc = store_flush(st);
	if (rc || st->batching == on)
		return rc;
	/* Commits no longer wait for the disk; store_flush() syncs the WAL
	 * itself when the batch holds more than relaxed changes. */
	rc = store_exec(st, on ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL");
	if (!rc) {
		st->batching = on;
		st->flushed = sqlite3_total_changes64(st->db);
		st->relaxed_n = 0;
	}
	return rc;
}

void store_batch_stats(const struct store *st, struct store_batch_stats *out)
{
	out->commits = st->commits;
	out->syncs = st->syncs;
	out->failures = st->flush_fail;
	out->open = st->batch_open;
}

int store_bind_str(sqlite3_stmt *stmt, int idx, const char *s)
{
	if (!s)
		return sqlite3_bind_null(stmt, idx);
	return sqlite3_bind_text(stmt, idx, s, -1, SQLITE_STATIC);
}

void store_col_str(sqlite3_stmt *stmt, int col, char *dst, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(stmt, col);

	util_strlcpy(dst, t ? (const char *)t : "", cap);
}

char *store_col_dup(sqlite3_stmt *stmt, int col)
{
	const unsigned char *t = sqlite3_column_text(stmt, col);

	return strdup(t ? (const char *)t : "");
}

int store_ping(struct store *st)
{
	return store_read_version(st) == st->version ? 0 : -EIO;
}

int store_check(struct store *st)
{
	sqlite3_stmt *s;
	int ok = 0;

	if (sqlite3_prepare_v2(st->db, "PRAGMA quick_check", -1, &s, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(s) == SQLITE_ROW)
		ok = !strcmp((const char *)sqlite3_column_text(s, 0), "ok");
	sqlite3_finalize(s);
	return ok ? 0 : -EIO;
}

int store_exec1(struct store *st, const char *sql, const char *arg)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return -EIO;
	if (arg)
		store_bind_str(s, 1, arg);
	rc = sqlite3_step(s);
	store_done(s);
	return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

int store_scalar(struct store *st, const char *sql, int64_t *out)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	int rc;

	if (!s)
		return -EIO;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	store_done(s);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : store_errno(rc);
}
