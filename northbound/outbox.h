/* SPDX-License-Identifier: MIT */
/* outbox.h - the durable queue of upstream frames (northbound/PROTOCOL.md 4
 * and 9), in the gateway's SQLite store (tables outbox, outbox_progress;
 * the seq counter in settings 'outbox_seq').
 *
 * Every sequenced frame is encoded once, with its seq, and inserted in the
 * same transaction as the change it reports: outbox_events is installed as
 * the store's observer, so a record state change or a device report and its
 * frame commit together or not at all. Frames are deleted only when an ack
 * covers them, and read back in seq order.
 *
 * Progress is not queued per update: the latest value per record waits in
 * outbox_progress (one row per record, so an outage of any length keeps it
 * bounded by the number of records) until outbox_flush_progress() turns
 * the rows into one PROGRESS_BATCH per task. A state change drops its
 * record's pending progress (its RECORD_STATE carries the value).
 *
 * Must not: touch sockets, decide record state, keep frames in memory. */
#ifndef OTAGW_OUTBOX_H
#define OTAGW_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "proto.h"
#include "store.h"

struct outbox;

/* st is borrowed until outbox_free(); gateway_id (an id) is copied. */
int outbox_new(struct outbox **out, struct store *st, const char *gateway_id,
	       struct err_info *e) OTAGW_MUST_CHECK;
void outbox_free(struct outbox *ob);     /* NULL: no-op */

/* Install with store_add_events(st, &outbox_events, ob). */
extern const struct store_events outbox_events;

/* Queues a REPLY / GATEWAY_STATUS. 0 or a negative errno. */
int outbox_add_reply(struct outbox *ob, const struct proto_reply *r) OTAGW_MUST_CHECK;
int outbox_add_status(struct outbox *ob, const struct proto_status *s) OTAGW_MUST_CHECK;

/* Turns every pending progress row into PROGRESS_BATCH frames (one per task,
 * split at PROTO_BATCH_MAX items, with the task's counts now), in one
 * transaction. *frames (optional) gets how many were queued. */
int outbox_flush_progress(struct outbox *ob, int *frames) OTAGW_MUST_CHECK;

/* The first frame with seq > after: 0 with *frame malloc'ed (caller frees),
 * its length and seq; -ENOENT when there is none. */
int outbox_next(struct outbox *ob, uint64_t after, char **frame, size_t *len,
		uint64_t *seq) OTAGW_MUST_CHECK;
/* Deletes every frame with seq <= ack. */
int outbox_ack(struct outbox *ob, uint64_t ack) OTAGW_MUST_CHECK;
/* The highest seq ever assigned (0: none). */
uint64_t outbox_last_seq(struct outbox *ob);
/* PROTOCOL.md 4.6: the cloud has seen seqs up to ack_seq > last seq (our
 * store was restored): renumber the queued frames from ack_seq + 1 on, in
 * order, and continue after them. */
int outbox_renumber(struct outbox *ob, uint64_t ack_seq) OTAGW_MUST_CHECK;
/* Queued frames and pending progress rows. */
int outbox_depth(struct outbox *ob, int64_t *frames, int64_t *progress) OTAGW_MUST_CHECK;
/* Counters since start: progress updates seen, frames queued by type. */
struct outbox_stats {
	uint64_t progress_updates;      /* record_progress events */
	uint64_t frames;                /* sequenced frames queued */
	uint64_t progress_frames;       /* PROGRESS_BATCH frames among them */
	uint64_t bytes;                 /* bytes of the frames queued */
};
void outbox_stats(const struct outbox *ob, struct outbox_stats *out);

#endif
