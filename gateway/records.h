/* SPDX-License-Identifier: MIT */
/* records.h - THE state machine of upgrade records (one per task x device),
 * in JetLinks' states: waiting -> processing -> success | failed, and
 * canceled. This module is the only writer of a record's state, progress
 * and timestamps; every state change adds a record_history row in the same
 * transaction. Legal moves:
 *   (new)      -> waiting | success (device already on the target version)
 *   waiting    -> processing | success | canceled
 *   processing -> success | failed | canceled
 *   failed     -> processing (the device asked again with headers.force:
 *                 a retry; completeTime and errorReason are cleared, the
 *                 failure stays in history)
 *              -> waiting (a rollout's retry after its delay, rollout.h;
 *                 completeTime cleared, the failure stays in history)
 *   success, canceled: final.
 * Anything else is -OTAGW_ESTATE with a detail naming both states.
 * Must not: decide *when* to move (the core and tasks do), touch sockets. */
#ifndef OTAGW_RECORDS_H
#define OTAGW_RECORDS_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "otagw_limits.h"
#include "store.h"

enum record_state { REC_WAITING, REC_PROCESSING, REC_SUCCESS, REC_FAILED, REC_CANCELED,
		    REC_STATE_COUNT };

#define REC_MASK(s) (1u << (s))
#define REC_UNFINISHED (REC_MASK(REC_WAITING) | REC_MASK(REC_PROCESSING))

struct record {
	char id[OTAGW_ID_MAX];
	char task_id[OTAGW_ID_MAX];
	char device_id[OTAGW_ID_MAX];
	char firmware_id[OTAGW_ID_MAX];
	char version[OTAGW_VERSION_MAX];     /* target version */
	int64_t version_order;
	int64_t timeout_seconds;             /* copied from the task; 0 = none */
	enum record_state state;
	int progress;                        /* 0-100 */
	char error_reason[OTAGW_REASON_MAX];
	int64_t create_time, upgrade_time, complete_time, update_time; /* ms; 0 unset */
	int wave;                            /* rollout wave, 0-based (read only) */
	int attempts;                        /* rollout retries so far (read only) */
};

/* Why a record changes: progress -1 keeps it; reason NULL keeps
 * errorReason; time 0 means now. */
struct record_change {
	int progress;
	const char *reason;
	int64_t time;
};

const char *record_state_name(enum record_state s);   /* "waiting" ...; NULL if out of range */
int record_state_parse(const char *s, enum record_state *out) OTAGW_MUST_CHECK;
bool record_transition_legal(enum record_state from, enum record_state to);

/* Inserts r (r->id empty: a new id is made and written back) in state
 * waiting or success, with a history row "" -> state. -EEXIST when the
 * (task, device) pair already has a record. */
int record_insert(struct store *st, struct record *r, struct err_info *e) OTAGW_MUST_CHECK;
/* Moves record id to `to`. Sets upgradeTime on -> processing (and clears
 * completeTime), completeTime on success/failed/canceled, updateTime always. -ENOENT, -OTAGW_ESTATE. */
int record_transition(struct store *st, const char *id, enum record_state to,
		      const struct record_change *why, struct err_info *e) OTAGW_MUST_CHECK;
/* Stores progress (0-100) of a processing record; refreshes updateTime,
 * which is what the timeout measures. -OTAGW_ESTATE when not processing. */
int record_progress(struct store *st, const char *id, int progress, int64_t time,
		    struct err_info *e) OTAGW_MUST_CHECK;
int record_get(struct store *st, const char *id, struct record *out) OTAGW_MUST_CHECK;

/* Finds the device's record whose state is in state_mask, filtered by
 * version and firmware_id when they are non-empty; of several, the highest
 * versionOrder (latest) or the lowest (!latest), then the oldest.
 * 0 or -ENOENT. */
int record_find(struct store *st, const char *device_id, unsigned state_mask,
		const char *version, const char *firmware_id, bool latest,
		struct record *out) OTAGW_MUST_CHECK;

/* Calls fn for each record of task_id (or of every task when NULL) in one of
 * state_mask's states, ordered by creation. fn returning non-zero stops the
 * walk and is returned. The statement is finished before fn runs, so fn may
 * transition records. */
typedef int (*record_fn)(struct store *st, const struct record *r, void *ctx);

/* One state change, as kept in record_history (for exports). */
struct record_event {
	int64_t id;                          /* history row, increasing */
	const struct record *r;              /* the record now (ids, firmware, version) */
	const char *from, *to;               /* state names; from "" = created */
	int progress;
	const char *reason;
	int64_t time;                        /* ms */
};
/* Calls fn for every history row with time > since (oldest first) whose
 * record still exists; fn returning non-zero stops the walk (returned). */
int records_history_since(struct store *st, int64_t since,
			  int (*fn)(void *ctx, const struct record_event *ev), void *ctx);
int records_each(struct store *st, const char *task_id, const char *device_id,
		 unsigned state_mask, record_fn fn, void *ctx);

/* Cancels every unfinished record of task_id (or of device_id when task_id
 * is NULL) with reason; *n gets the count. One transaction. */
int records_cancel(struct store *st, const char *task_id, const char *device_id,
		   const char *reason, int *n, struct err_info *e) OTAGW_MUST_CHECK;
/* Fails every processing record whose updateTime + timeoutSeconds is before
 * now (ms) with errorReason "timeout"; *n gets the count. */
int records_expire(struct store *st, int64_t now, int *n) OTAGW_MUST_CHECK;

/* Per-state counts of task_id into counts[REC_STATE_COUNT]. */
int records_counts(struct store *st, const char *task_id,
		   int64_t counts[REC_STATE_COUNT]) OTAGW_MUST_CHECK;
/* fn(ctx, task_id, counts) for each task with records, newest task first,
 * at most max tasks (metrics). 0, or a negative code. */
int records_census(struct store *st, size_t max,
		   void (*fn)(void *ctx, const char *task_id, const int64_t counts[REC_STATE_COUNT]),
		   void *ctx) OTAGW_MUST_CHECK;
/* A page of task_id's records, state_mask filtered, ordered by creation. */
int records_list(struct store *st, const char *task_id, unsigned state_mask, unsigned page,
		 unsigned size, cJSON **items, int64_t *total) OTAGW_MUST_CHECK;
/* A page of the history rows of a device (newest first) or of a record
 * (record_id non-NULL, device_id ignored). Items: {recordId, taskId,
 * deviceId, from, to, progress, reason, time}. */
int records_history(struct store *st, const char *device_id, const char *record_id,
		    unsigned page, unsigned size, cJSON **items, int64_t *total) OTAGW_MUST_CHECK;
cJSON *record_to_json(const struct record *r);

#endif
