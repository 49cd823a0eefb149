/* SPDX-License-Identifier: MIT */
/* store.h - the one SQLite database of a gateway: open in WAL mode with
 * synchronous=FULL, forward migrations by PRAGMA user_version, a cache of
 * prepared statements, nestable transactions (savepoints) and, in the
 * daemon, group commit (one commit and WAL sync per event-loop pass).
 * Every SQL text handed to store_stmt() must be a string literal (the cache is
 * keyed by its address) with bound parameters: no SQL is ever built from input.
 * Must not: know what the tables mean (modules own their rows), open sockets. */
#ifndef OTAGW_STORE_H
#define OTAGW_STORE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define STORE_SCHEMA_VERSION 6

struct store;

/* Opens or creates path and migrates it to STORE_SCHEMA_VERSION. A file with
 * a newer user_version is refused (-OTAGW_ESCHEMA). On 0, *out is the
 * caller's; store_close() frees it. */
int store_open(struct store **out, const char *path, struct err_info *e) OTAGW_MUST_CHECK;
/* As store_open() but migrates only up to version (tests of migrations). */
int store_open_version(struct store **out, const char *path, int version,
		       struct err_info *e) OTAGW_MUST_CHECK;
/* Finalises statements, checkpoints and closes. NULL: no-op. */
void store_close(struct store *st);

int store_version(struct store *st);
/* The connection, borrowed for as long as st is open. */
sqlite3 *store_db(struct store *st);

/* A prepared statement for sql (a literal), reset and with bindings cleared.
 * Borrowed: the caller must call store_done() on it before returning, and
 * must not hold two uses of the same sql at once. NULL on error (logged). */
sqlite3_stmt *store_stmt(struct store *st, const char *sql);
void store_done(sqlite3_stmt *stmt);

/* Nestable transactions: the outermost begin takes the write lock
 * (BEGIN IMMEDIATE), inner ones are savepoints. 0 or -EIO/-EBUSY. */
int store_begin(struct store *st) OTAGW_MUST_CHECK;
int store_commit(struct store *st) OTAGW_MUST_CHECK;
/* As store_begin() for writes whose loss at a power cut is harmless (device
 * progress): the commit does not wait for the disk (synchronous = NORMAL
 * for this one transaction; WAL keeps the file consistent), and the next
 * ordinary commit makes it durable too. Nested, it is a plain savepoint. */
int store_begin_relaxed(struct store *st) OTAGW_MUST_CHECK;
void store_rollback(struct store *st);

/* Group commit (STYLE rule 9: batch writes). With batching on, the outermost
 * store_begin()/store_begin_relaxed() joins one open transaction (the
 * batch; each caller's transaction is a savepoint in it, committed or rolled
 * back on its own) and writes outside any store_begin() join it too. The
 * batch ends at store_flush(): COMMIT, then one sync of the WAL unless every
 * change in it was made under store_begin_relaxed(). The daemon flushes
 * after every pass of its event loop and before anything is sent to a peer
 * (core_sync()), so no peer learns of a change before it is on disk, at one
 * sync per pass instead of one per change. A failed flush loses the pass's
 * changes (logged, counted). Batching off: every outermost commit is a
 * synchronous=FULL COMMIT (the command-line tools, the tests).
 * store_set_batching() and store_flush() refuse (-EBUSY) while a caller's
 * transaction is open; store_flush() with no batch open is a no-op. */
int store_set_batching(struct store *st, bool on) OTAGW_MUST_CHECK;
int store_flush(struct store *st);
struct store_batch_stats {
	uint64_t commits;   /* batches committed */
	uint64_t syncs;     /* of them, WAL syncs done */
	uint64_t failures;  /* batches lost to a failed commit */
	bool open;          /* a batch is open now */
};
void store_batch_stats(const struct store *st, struct store_batch_stats *out);

/* Runs one statement sql (a literal) with ?1 bound to arg (NULL: no
 * binding) that returns no row. 0 or a mapped error. */
int store_exec1(struct store *st, const char *sql, const char *arg) OTAGW_MUST_CHECK;
/* Runs sql (a literal, no parameters) that returns one integer. */
int store_scalar(struct store *st, const char *sql, int64_t *out) OTAGW_MUST_CHECK;

/* Maps a SQLite result code to our error space (-EEXIST for a constraint,
 * -EBUSY, -ENOSPC, -EIO ...). */
int store_errno(int sqlite_rc);

/* Binds s as text, or NULL when s is NULL. Returns the sqlite rc. */
int store_bind_str(sqlite3_stmt *stmt, int idx, const char *s);
/* Copies column col into dst[cap] ("" for NULL), truncating. */
void store_col_str(sqlite3_stmt *stmt, int col, char *dst, size_t cap);
/* A malloc'ed copy of column col ("" for NULL); NULL only on ENOMEM. */
char *store_col_dup(sqlite3_stmt *stmt, int col);

/* Observers of changes the modules write (the cloud outbox, the console's
 * live feed), called in the order added, inside the writer's transaction,
 * so what an observer writes itself (the outbox) commits or rolls back with
 * the change. A negative return fails the change (it is rolled back; later
 * observers are not called). Added by main before anything is written;
 * NULL members are skipped; ev and arg are borrowed until removed or
 * store_close(). r and m are borrowed for the call. */
struct record;
struct msg;
struct store_events {
	/* A record was created (from "") or moved; reason is errorReason. */
	int (*record_changed)(void *arg, struct store *st, const struct record *r,
			      const char *from);
	/* A processing record's progress changed. */
	int (*record_progress)(void *arg, struct store *st, const char *record_id,
			       int progress, int64_t time);
	/* A device reported its firmware (REPORT_FIRMWARE, READ_FIRMWARE_REPLY). */
	int (*device_report)(void *arg, struct store *st, const struct msg *m);
	/* A rollout decision was written (rollout_event(); wave 0-based). */
	int (*task_event)(void *arg, struct store *st, const char *task_id, const char *event,
			  int wave, const char *reason, int64_t time);
};
#define STORE_OBSERVERS_MAX 4
/* -ENOSPC when STORE_OBSERVERS_MAX are there. */
int store_add_events(struct store *st, const struct store_events *ev, void *arg) OTAGW_MUST_CHECK;
/* Removes the observer (ev, arg); a no-op when it is not there. */
void store_remove_events(struct store *st, const struct store_events *ev, void *arg);
/* For the writers (records, core): call every observer's member; 0, or
 * the first negative return. */
int store_emit_record_changed(struct store *st, const struct record *r, const char *from);
int store_emit_record_progress(struct store *st, const char *record_id, int progress,
			       int64_t time);
int store_emit_device_report(struct store *st, const struct msg *m);
int store_emit_task_event(struct store *st, const char *task_id, const char *event, int wave,
			  const char *reason, int64_t time);

/* Cheap liveness probe for health checks: reads the schema version back.
 * 0, or -EIO when the file cannot be read. */
int store_ping(struct store *st) OTAGW_MUST_CHECK;
/* PRAGMA quick_check (reads the whole file): 0 when sound, -EIO otherwise. */
int store_check(struct store *st);

#endif
