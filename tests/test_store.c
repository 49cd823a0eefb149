/* SPDX-License-Identifier: MIT */
/* test_store.c - open, pragmas, migrations from an empty file and from
 * every earlier schema version, refusal of a newer schema, nested
 * transactions, the statement cache and error mapping. Real SQLite files. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

struct fx {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/otagw-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/otagw.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

static int64_t scalar(struct store *st, const char *sql)
{
	sqlite3_stmt *s;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static void text_of(struct store *st, const char *sql, char *out, size_t cap)
{
	sqlite3_stmt *s;

	assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	store_col_str(s, 0, out, cap);
	sqlite3_finalize(s);
}

static void test_open_empty(void **state)
{
	struct fx *f = *state;
	struct store *st;
	char mode[16];

	assert_int_equal(store_open(&st, f->path, NULL), 0);
	assert_int_equal(store_version(st), STORE_SCHEMA_VERSION);
	assert_int_equal(scalar(st, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	text_of(st, "PRAGMA journal_mode", mode, sizeof(mode));
	assert_string_equal(mode, "wal");
	assert_int_equal(scalar(st, "PRAGMA synchronous"), 2);   /* FULL */
	assert_int_equal(scalar(st, "PRAGMA foreign_keys"), 1);
	assert_int_equal(scalar(st, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
				"name IN ('firmware', 'device', 'task', 'record', "
				"'record_history', 'settings')"), 6);
	assert_int_equal(store_check(st), 0);
	assert_int_equal(store_ping(st), 0);
	store_close(st);
}

static void test_migrate_from_v1(void **state)
{
	struct fx *f = *state;
	struct store *st;
	char id[40];

	assert_int_equal(store_open_version(&st, f->path, 1, NULL), 0);
	assert_int_equal(scalar(st, "PRAGMA user_version"), 1);
	assert_int_equal(sqlite3_exec(store_db(st),
		"INSERT INTO firmware (id, product_id, name, version, create_time, update_time)"
		" VALUES ('fw', 'p', 'n', '1.0', 1, 1);"
		"INSERT INTO task (id, firmware_id, product_id, name, mode, create_time)"
		" VALUES ('t1', 'fw', 'p', 'a', 'push', 1), ('t2', 'fw', 'p', 'b', 'pull', 1);"
		"INSERT INTO record (id, task_id, device_id, firmware_id, version, state,"
		" create_time, update_time) VALUES ('r1', 't1', 'd1', 'fw', '1.0', 'waiting', 1, 1);",
		NULL, NULL, NULL), SQLITE_OK);
	store_close(st);

	assert_int_equal(store_open(&st, f->path, NULL), 0);
	assert_int_equal(store_version(st), STORE_SCHEMA_VERSION);
	/* v3: devices have a secure_key column, empty for the old rows */
	assert_int_equal(scalar(st, "SELECT count(*) FROM pragma_table_info('device')"
				" WHERE name = 'secure_key'"), 1);
	/* data kept; the new column derived from what was there */
	assert_int_equal(scalar(st, "SELECT count(*) FROM record"), 1);
	assert_int_equal(scalar(st, "SELECT count(*) FROM task WHERE id = 't1' AND "
				"state = 'published'"), 1);
	assert_int_equal(scalar(st, "SELECT count(*) FROM task WHERE id = 't2' AND "
				"state = 'created'"), 1);
	text_of(st, "SELECT value FROM settings WHERE key = 'instance_id'", id, sizeof(id));
	assert_int_equal(strlen(id), 32);
	store_close(st);
}

static void test_migrate_from_each_version(void **state)
{
	struct fx *f = *state;

	for (int v = 0; v <= STORE_SCHEMA_VERSION; v++) {
		struct store *st;
		char path[160];

		snprintf(path, sizeof(path), "%s/v%d.db", f->dir, v);
		assert_int_equal(store_open_version(&st, path, v, NULL), 0);
		assert_int_equal(scalar(st, "PRAGMA user_version"), v);
		store_close(st);
		assert_int_equal(store_open(&st, path, NULL), 0);
		assert_int_equal(store_version(st), STORE_SCHEMA_VERSION);
		assert_int_equal(store_check(st), 0);
		store_close(st);
	}
}

static void test_newer_schema_refused(void **state)
{
	struct fx *f = *state;
	struct err_info e = { 0 };
	struct store *st;

	assert_int_equal(store_open(&st, f->path, NULL), 0);
	assert_int_equal(sqlite3_exec(store_db(st), "PRAGMA user_version = 99", NULL, NULL, NULL),
			 SQLITE_OK);
	store_close(st);
	assert_int_equal(store_open(&st, f->path, &e), -OTAGW_ESCHEMA);
	assert_non_null(strstr(e.text, "99"));
	assert_int_equal(store_open_version(&st, f->path, 7, &e), -EINVAL);
}

static void test_not_a_database(void **state)
{
	struct fx *f = *state;
	struct err_info e = { 0 };
	struct store *st;
	FILE *fp = fopen(f->path, "w");

	fputs("this is not an sqlite file, just text that is long enough......", fp);
	fclose(fp);
	assert_true(store_open(&st, f->path, &e) < 0);
	assert_true(e.text[0] != '\0');
}

static void test_nested_transactions(void **state)
{
	struct fx *f = *state;
	struct store *st;
	sqlite3_stmt *s;

	assert_int_equal(store_open(&st, f->path, NULL), 0);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(sqlite3_exec(store_db(st), "INSERT INTO settings VALUES ('a', '1')",
				      NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(sqlite3_exec(store_db(st), "INSERT INTO settings VALUES ('b', '2')",
				      NULL, NULL, NULL), SQLITE_OK);
	store_rollback(st);                       /* inner undone only */
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(scalar(st, "SELECT count(*) FROM settings WHERE key IN ('a', 'b')"), 1);

	assert_int_equal(store_begin(st), 0);
	assert_int_equal(sqlite3_exec(store_db(st), "INSERT INTO settings VALUES ('c', '3')",
				      NULL, NULL, NULL), SQLITE_OK);
	store_rollback(st);
	assert_int_equal(scalar(st, "SELECT count(*) FROM settings WHERE key = 'c'"), 0);
	assert_int_equal(store_commit(st), -EINVAL);   /* nothing open */

	/* the cache hands back the same statement, reset */
	s = store_stmt(st, "SELECT count(*) FROM settings");
	assert_non_null(s);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	store_done(s);
	assert_ptr_equal(store_stmt(st, "SELECT count(*) FROM settings"), s);
	store_done(s);
	assert_null(store_stmt(st, "SELECT nonsense FROM nowhere"));
	store_close(st);
}

/* A relaxed transaction commits with synchronous = NORMAL and puts FULL
 * back after commit and rollback; nested in an ordinary one it changes
 * nothing. */
static void test_relaxed_transactions(void **state)
{
	struct fx *f = *state;
	struct store *st;

	assert_int_equal(store_open(&st, f->path, NULL), 0);
	assert_int_equal(scalar(st, "PRAGMA synchronous"), 2);
	assert_int_equal(store_begin_relaxed(st), 0);
	assert_int_equal(scalar(st, "PRAGMA synchronous"), 1);
	assert_int_equal(sqlite3_exec(store_db(st), "INSERT INTO settings VALUES ('r', '1')",
				      NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(scalar(st, "PRAGMA synchronous"), 2);
	assert_int_equal(scalar(st, "SELECT count(*) FROM settings WHERE key = 'r'"), 1);
	assert_int_equal(store_begin_relaxed(st), 0);
	store_rollback(st);
	assert_int_equal(scalar(st, "PRAGMA synchronous"), 2);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_begin_relaxed(st), 0);
	assert_int_equal(scalar(st, "PRAGMA synchronous"), 2);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(scalar(st, "PRAGMA synchronous"), 2);
	store_close(st);
}

/* count(*) of settings rows with key IN a list, read by a second
 * connection: what another process (or the disk after a crash) sees. */
static int64_t other_count(const char *path, const char *where)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	char sql[160];
	int64_t n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM settings WHERE %s", where);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

static void put(struct store *st, const char *key)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "INSERT INTO settings VALUES ('%s', '1')", key);
	assert_int_equal(sqlite3_exec(store_db(st), sql, NULL, NULL, NULL), SQLITE_OK);
}

/* Group commit: transactions become savepoints of one batch that nobody
 * else sees until store_flush(); a rolled-back one is undone alone; the
 * WAL is synced only for a batch with more than relaxed changes; flushing
 * or switching with a transaction open is refused; close commits. */
static void test_batching(void **state)
{
	struct fx *f = *state;
	struct store_batch_stats bs;
	struct store *st;

	assert_int_equal(store_open(&st, f->path, NULL), 0);
	assert_int_equal(store_flush(st), 0);                 /* nothing open: no-op */
	assert_int_equal(store_set_batching(st, true), 0);
	assert_int_equal(scalar(st, "PRAGMA synchronous"), 1);

	assert_int_equal(store_begin(st), 0);
	put(st, "a");
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(store_begin(st), 0);
	put(st, "b");
	assert_int_equal(store_begin(st), 0);                 /* nested: a savepoint */
	put(st, "b2");
	assert_int_equal(store_commit(st), 0);
	store_rollback(st);                                    /* b and b2 undone */
	assert_int_equal(store_begin_relaxed(st), 0);
	put(st, "c");
	assert_int_equal(store_commit(st), 0);
	put(st, "d");                                          /* no store_begin: joins */
	store_batch_stats(st, &bs);
	assert_true(bs.open);
	assert_int_equal(bs.commits, 0);
	assert_int_equal(scalar(st, "SELECT count(*) FROM settings WHERE key IN "
			       "('a','b','b2','c','d')"), 3);
	assert_int_equal(other_count(f->path, "key IN ('a','c','d')"), 0);

	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_flush(st), -EBUSY);            /* a caller's tx is open */
	assert_int_equal(store_set_batching(st, false), -EBUSY);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(store_flush(st), 0);
	assert_int_equal(other_count(f->path, "key IN ('a','b','b2','c','d')"), 3);
	store_batch_stats(st, &bs);
	assert_false(bs.open);
	assert_int_equal(bs.commits, 1);
	assert_int_equal(bs.syncs, 1);
	assert_int_equal(bs.failures, 0);

	/* only relaxed changes: committed without a sync */
	assert_int_equal(store_begin_relaxed(st), 0);
	put(st, "r1");
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(scalar(st, "PRAGMA synchronous"), 1);
	assert_int_equal(store_flush(st), 0);
	store_batch_stats(st, &bs);
	assert_int_equal(bs.commits, 2);
	assert_int_equal(bs.syncs, 1);
	assert_int_equal(other_count(f->path, "key = 'r1'"), 1);

	/* a statement outside any transaction, with no batch open, commits on
	 * its own (synchronous = NORMAL): the next flush syncs it */
	put(st, "auto");
	assert_int_equal(other_count(f->path, "key = 'auto'"), 1);
	assert_int_equal(store_flush(st), 0);
	store_batch_stats(st, &bs);
	assert_int_equal(bs.commits, 2);                      /* no batch to commit */
	assert_int_equal(bs.syncs, 2);
	assert_int_equal(store_flush(st), 0);                 /* nothing new: no sync */
	store_batch_stats(st, &bs);
	assert_int_equal(bs.syncs, 2);

	/* a relaxed and an ordinary transaction: synced */
	assert_int_equal(store_begin_relaxed(st), 0);
	put(st, "r2");
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(store_begin(st), 0);
	put(st, "s2");
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(store_flush(st), 0);
	store_batch_stats(st, &bs);
	assert_int_equal(bs.syncs, 3);

	/* SQLite ends the transaction on its own (as on an I/O error): the
	 * batch is reported lost, the next transaction starts a fresh one */
	assert_int_equal(store_begin(st), 0);
	put(st, "lost");
	assert_int_equal(sqlite3_exec(store_db(st), "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(store_commit(st), -EIO);
	store_batch_stats(st, &bs);
	assert_int_equal(bs.failures, 1);
	assert_false(bs.open);
	assert_int_equal(store_begin(st), 0);
	put(st, "after");
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(store_flush(st), 0);
	assert_int_equal(other_count(f->path, "key IN ('lost','after')"), 1);

	/* a batch left open is committed by store_close() */
	assert_int_equal(store_begin(st), 0);
	put(st, "at-close");
	assert_int_equal(store_commit(st), 0);
	store_close(st);
	assert_int_equal(other_count(f->path, "key = 'at-close'"), 1);

	/* batching off again: FULL, every commit visible at once */
	assert_int_equal(store_open(&st, f->path, NULL), 0);
	assert_int_equal(scalar(st, "PRAGMA synchronous"), 2);
	assert_int_equal(store_set_batching(st, true), 0);
	assert_int_equal(store_begin(st), 0);
	put(st, "e");
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(store_set_batching(st, false), 0);   /* flushes */
	assert_int_equal(scalar(st, "PRAGMA synchronous"), 2);
	assert_int_equal(other_count(f->path, "key = 'e'"), 1);
	assert_int_equal(store_begin(st), 0);
	put(st, "g");
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(other_count(f->path, "key = 'g'"), 1);
	store_close(st);
}

static void test_persistence_and_errno(void **state)
{
	struct fx *f = *state;
	struct store *st;

	assert_int_equal(store_open(&st, f->path, NULL), 0);
	assert_int_equal(sqlite3_exec(store_db(st), "INSERT INTO settings VALUES ('k', 'v')",
				      NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(store_errno(sqlite3_exec(store_db(st),
				"INSERT INTO settings VALUES ('k', 'w')", NULL, NULL, NULL)), -EEXIST);
	store_close(st);
	assert_int_equal(store_open(&st, f->path, NULL), 0);
	assert_int_equal(scalar(st, "SELECT count(*) FROM settings WHERE key = 'k'"), 1);
	store_close(st);
	assert_int_equal(store_errno(SQLITE_BUSY), -EBUSY);
	assert_int_equal(store_errno(SQLITE_FULL), -ENOSPC);
	assert_int_equal(store_errno(SQLITE_CORRUPT), -EIO);
	assert_int_equal(store_errno(SQLITE_DONE), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_each_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nested_transactions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relaxed_transactions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batching, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persistence_and_errno, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
