/* SPDX-License-Identifier: MIT */
/* outbox.c - the upstream outbox in SQLite (see outbox.h). Each writer runs
 * inside a store transaction (nested as a savepoint when the caller has
 * one open), so a frame and the change it reports commit together. */
#define LOG_MOD "outbox"
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "records.h"
#include "util.h"

struct outbox {
	struct store *st;
	char gateway_id[OTAGW_ID_MAX];
	struct outbox_stats stats;
};

/* One pending progress row, as read for a flush. */
struct ob_item {
	char task_id[OTAGW_ID_MAX];
	char device_id[OTAGW_ID_MAX];
	int progress;
	int64_t time;
};

/* ---- seq and insert ------------------------------------------------------ */

static int ob_next_seq(struct store *st, uint64_t *seq)
{
	sqlite3_stmt *s = store_stmt(st, "UPDATE settings SET value = CAST(value AS INTEGER) + 1"
				     " WHERE key = 'outbox_seq' RETURNING CAST(value AS INTEGER)");
	int rc;

	if (!s)
		return -EIO;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*seq = (uint64_t)sqlite3_column_int64(s, 0);
	store_done(s);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -EIO : store_errno(rc);
}

static int ob_insert(struct outbox *ob, uint64_t seq, const char *type, const char *frame,
		     size_t len)
{
	sqlite3_stmt *s = store_stmt(ob->st, "INSERT INTO outbox (seq, type, frame, create_time)"
					     " VALUES (?1, ?2, ?3, ?4)");
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
	store_bind_str(s, 2, type);
	sqlite3_bind_text(s, 3, frame, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, util_now_ms());
	rc = sqlite3_step(s);
	store_done(s);
	if (rc != SQLITE_DONE)
		return store_errno(rc);
	ob->stats.frames++;
	ob->stats.bytes += len;
	return 0;
}

/* The encoders share this shape: seq in, frame out. */
typedef int (*ob_enc_fn)(uint64_t seq, const void *arg, char **out, size_t *len);

/* Takes a seq, encodes with it and inserts, in one transaction. */
static int ob_add(struct outbox *ob, const char *type, ob_enc_fn enc, const void *arg)
{
	char *frame = NULL;
	size_t len = 0;
	uint64_t seq = 0;
	int rc = store_begin(ob->st);

	if (rc)
		return rc;
	rc = ob_next_seq(ob->st, &seq);
	if (!rc)
		rc = enc(seq, arg, &frame, &len);
	if (!rc)
		rc = ob_insert(ob, seq, type, frame, len);
	free(frame);
	if (rc) {
		store_rollback(ob->st);
		LOGW("cannot queue a %s frame: %s", type, otagw_strerror(rc));
		return rc;
	}
	return store_commit(ob->st);
}

/* ---- encoders with a common shape ----------------------------------------- */

struct ob_child {
	const char *gateway_id;
	const struct msg *m;
};

static int ob_enc_child(uint64_t seq, const void *arg, char **out, size_t *len)
{
	const struct ob_child *c = arg;

	return proto_enc_child(seq, 0, c->gateway_id, c->m, out, len);
}

static int ob_enc_state(uint64_t seq, const void *arg, char **out, size_t *len)
{
	return proto_enc_record_state(seq, 0, arg, out, len);
}

static int ob_enc_reply(uint64_t seq, const void *arg, char **out, size_t *len)
{
	return proto_enc_reply(seq, 0, arg, out, len);
}

static int ob_enc_status(uint64_t seq, const void *arg, char **out, size_t *len)
{
	return proto_enc_status(seq, 0, arg, out, len);
}

static int ob_enc_progress(uint64_t seq, const void *arg, char **out, size_t *len)
{
	return proto_enc_progress(seq, 0, arg, out, len);
}

/* ---- store observer --------------------------------------------------------- */

static int ob_drop_progress(struct store *st, const char *record_id)
{
	return store_exec1(st, "DELETE FROM outbox_progress WHERE record_id = ?1", record_id);
}

static int ob_record_changed(void *arg, struct store *st, const struct record *r,
			     const char *from)
{
	struct outbox *ob = arg;
	struct proto_record_state ps = {
		.task_id = r->task_id, .record_id = r->id, .device_id = r->device_id,
		.firmware_id = r->firmware_id, .version = r->version, .created = !from[0],
		.to = r->state, .progress = r->progress, .error_reason = r->error_reason,
		.time = r->update_time,
	};
	int rc = from[0] && record_state_parse(from, &ps.from) ? -EINVAL : 0;

	if (!rc)
		rc = ob_drop_progress(st, r->id);
	if (!rc)
		rc = ob_add(ob, "RECORD_STATE", ob_enc_state, &ps);
	return rc;
}

static int ob_record_progress(void *arg, struct store *st, const char *record_id, int progress,
			      int64_t time)
{
	struct outbox *ob = arg;
	struct record r;
	sqlite3_stmt *s;
	int rc = record_get(st, record_id, &r);

	if (rc)
		return rc;
	s = store_stmt(st, "INSERT INTO outbox_progress (record_id, task_id, device_id, progress,"
			   " time) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (record_id) DO UPDATE"
			   " SET progress = excluded.progress, time = excluded.time");
	if (!s)
		return -EIO;
	store_bind_str(s, 1, record_id);
	store_bind_str(s, 2, r.task_id);
	store_bind_str(s, 3, r.device_id);
	sqlite3_bind_int(s, 4, progress);
	sqlite3_bind_int64(s, 5, time);
	rc = sqlite3_step(s);
	store_done(s);
	ob->stats.progress_updates++;
	return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

static int ob_enc_task_event(uint64_t seq, const void *arg, char **out, size_t *len)
{
	return proto_enc_task_event(seq, 0, arg, out, len);
}

static int ob_task_event(void *arg, struct store *st, const char *task_id, const char *event,
			 int wave, const char *reason, int64_t time)
{
	struct proto_task_event ev = { task_id, event, wave + 1, reason, time };

	return ob_add(arg, "TASK_EVENT", ob_enc_task_event, &ev);
}

static int ob_device_report(void *arg, struct store *st, const struct msg *m)
{
	struct outbox *ob = arg;
	struct ob_child c = { ob->gateway_id, m };

	return ob_add(ob, "CHILD", ob_enc_child, &c);
}

const struct store_events outbox_events = {
	.record_changed = ob_record_changed,
	.record_progress = ob_record_progress,
	.device_report = ob_device_report,
	.task_event = ob_task_event,
};

/* ---- API -------------------------------------------------------------------- */

int outbox_new(struct outbox **out, struct store *st, const char *gateway_id,
	       struct err_info *e)
{
	struct outbox *ob;

	if (!util_id_valid(gateway_id))
		return err_set(e, -EINVAL, "outbox: gateway id '%s' is not a valid id", gateway_id);
	ob = calloc(1, sizeof(*ob));
	if (!ob)
		return err_set(e, -ENOMEM, "out of memory");
	ob->st = st;
	util_strlcpy(ob->gateway_id, gateway_id, sizeof(ob->gateway_id));
	*out = ob;
	return 0;
}

void outbox_free(struct outbox *ob)
{
	free(ob);
}

int outbox_add_reply(struct outbox *ob, const struct proto_reply *r)
{
	return ob_add(ob, "REPLY", ob_enc_reply, r);
}

int outbox_add_status(struct outbox *ob, const struct proto_status *s)
{
	return ob_add(ob, "GATEWAY_STATUS", ob_enc_status, s);
}

/* Reads every pending progress row, ordered by task. */
static int ob_read_progress(struct store *st, struct ob_item **items, size_t *n)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT task_id, device_id, progress, time"
				     " FROM outbox_progress ORDER BY task_id, device_id");
	size_t cap = 0;
	int step;

	*items = NULL;
	*n = 0;
	if (!s)
		return -EIO;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			struct ob_item *ni = realloc(*items, (cap ? cap * 2 : 64) * sizeof(**items));

			if (!ni) {
				store_done(s);
				return -ENOMEM;
			}
			*items = ni;
			cap = cap ? cap * 2 : 64;
		}
		store_col_str(s, 0, (*items)[*n].task_id, OTAGW_ID_MAX);
		store_col_str(s, 1, (*items)[*n].device_id, OTAGW_ID_MAX);
		(*items)[*n].progress = sqlite3_column_int(s, 2);
		(*items)[*n].time = sqlite3_column_int64(s, 3);
		(*n)++;
	}
	store_done(s);
	return step == SQLITE_DONE ? 0 : store_errno(step);
}

/* Queues the PROGRESS_BATCH frames of one task: items[0..n) all its own. */
static int ob_flush_task(struct outbox *ob, const struct ob_item *items, size_t n, int *frames)
{
	struct proto_progress_item *pi = calloc(n < PROTO_BATCH_MAX ? n : PROTO_BATCH_MAX,
						sizeof(*pi));
	struct proto_progress_batch b = { .task_id = items[0].task_id };
	int rc = pi ? records_counts(ob->st, items[0].task_id, b.counts) : -ENOMEM;

	for (size_t off = 0; !rc && off < n; off += PROTO_BATCH_MAX) {
		b.n_items = n - off < PROTO_BATCH_MAX ? n - off : PROTO_BATCH_MAX;
		for (size_t i = 0; i < b.n_items; i++)
			pi[i] = (struct proto_progress_item){ items[off + i].device_id,
							      items[off + i].progress,
							      items[off + i].time };
		b.items = pi;
		rc = ob_add(ob, "PROGRESS_BATCH", ob_enc_progress, &b);
		if (!rc) {
			ob->stats.progress_frames++;
			(*frames)++;
		}
	}
	free(pi);
	return rc;
}

int outbox_flush_progress(struct outbox *ob, int *frames)
{
	struct ob_item *items = NULL;
	size_t n = 0, i = 0;
	int count = 0, rc = store_begin(ob->st);

	if (rc)
		return rc;
	rc = ob_read_progress(ob->st, &items, &n);
	while (!rc && i < n) {
		size_t j = i;

		while (j < n && !strcmp(items[j].task_id, items[i].task_id))
			j++;
		rc = ob_flush_task(ob, items + i, j - i, &count);
		i = j;
	}
	if (!rc && n)
		rc = store_exec1(ob->st, "DELETE FROM outbox_progress", NULL);
	free(items);
	if (rc) {
		store_rollback(ob->st);
		return rc;
	}
	if (frames)
		*frames = count;
	return store_commit(ob->st);
}

int outbox_next(struct outbox *ob, uint64_t after, char **frame, size_t *len, uint64_t *seq)
{
	sqlite3_stmt *s = store_stmt(ob->st, "SELECT seq, frame FROM outbox WHERE seq > ?1"
					     " ORDER BY seq LIMIT 1");
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)after);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*seq = (uint64_t)sqlite3_column_int64(s, 0);
		*len = (size_t)sqlite3_column_bytes(s, 1);
		*frame = malloc(*len + 1);
		if (*frame) {
			memcpy(*frame, sqlite3_column_text(s, 1), *len);
			(*frame)[*len] = '\0';
		}
	}
	store_done(s);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW) { /* never 0 here: *frame was not written */
		rc = store_errno(rc);
		return rc < 0 ? rc : -EIO;
	}
	return *frame ? 0 : -ENOMEM;
}

int outbox_ack(struct outbox *ob, uint64_t ack)
{
	sqlite3_stmt *s = store_stmt(ob->st, "DELETE FROM outbox WHERE seq <= ?1");
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)ack);
	rc = sqlite3_step(s);
	store_done(s);
	return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

uint64_t outbox_last_seq(struct outbox *ob)
{
	int64_t v = 0;

	if (store_scalar(ob->st, "SELECT CAST(value AS INTEGER) FROM settings"
			 " WHERE key = 'outbox_seq'", &v))
		return 0;
	return (uint64_t)v;
}

/* Gives the frame at old seq the number seq (its text rewritten). */
static int ob_renumber_one(struct outbox *ob, uint64_t old, uint64_t seq)
{
	char *frame = NULL, *nf = NULL;
	size_t len = 0, nlen = 0;
	uint64_t got = 0;
	sqlite3_stmt *s;
	int rc = outbox_next(ob, old - 1, &frame, &len, &got);

	if (!rc && got != old)
		rc = -EIO;
	if (!rc)
		rc = proto_set_seq(frame, len, seq, &nf, &nlen);
	free(frame);
	if (rc)
		return rc;
	s = store_stmt(ob->st, "UPDATE outbox SET seq = ?2, frame = ?3 WHERE seq = ?1");
	if (!s) {
		free(nf);
		return -EIO;
	}
	sqlite3_bind_int64(s, 1, (sqlite3_int64)old);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)seq);
	sqlite3_bind_text(s, 3, nf, (int)nlen, SQLITE_STATIC);
	rc = sqlite3_step(s);
	store_done(s);
	free(nf);
	return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

static int ob_set_seq(struct store *st, uint64_t v)
{
	sqlite3_stmt *s = store_stmt(st, "UPDATE settings SET value = ?1 WHERE key = 'outbox_seq'");
	char text[24];
	int rc;

	if (!s)
		return -EIO;
	snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
	store_bind_str(s, 1, text);
	rc = sqlite3_step(s);
	store_done(s);
	return rc == SQLITE_DONE ? 0 : store_errno(rc);
}

int outbox_renumber(struct outbox *ob, uint64_t ack_seq)
{
	uint64_t next = ack_seq, at = 0, old;
	char *frame;
	size_t len;
	int rc = store_begin(ob->st);

	if (rc)
		return rc;
	/* new numbers are above ack_seq, every old one at or below it: walk
	 * the old ones in order, stopping at the first renumbered row */
	while (!rc && !(rc = outbox_next(ob, at, &frame, &len, &old))) {
		free(frame);
		if (old > ack_seq) {
			rc = -ENOENT;
			break;
		}
		rc = ob_renumber_one(ob, old, ++next);
		at = old;
	}
	if (rc == -ENOENT)
		rc = ob_set_seq(ob->st, next);
	if (rc) {
		store_rollback(ob->st);
		return rc;
	}
	LOGW("the cloud has seen seq %llu, beyond ours: queued frames renumbered up to %llu",
	     (unsigned long long)ack_seq, (unsigned long long)next);
	return store_commit(ob->st);
}

int outbox_depth(struct outbox *ob, int64_t *frames, int64_t *progress)
{
	int rc = store_scalar(ob->st, "SELECT COUNT(*) FROM outbox", frames);

	return rc ? rc : store_scalar(ob->st, "SELECT COUNT(*) FROM outbox_progress", progress);
}

void outbox_stats(const struct outbox *ob, struct outbox_stats *out)
{
	*out = ob->stats;
}
