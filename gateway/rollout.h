/* SPDX-License-Identifier: MIT */
/* rollout.h - rollout control of upgrade tasks: how many records may be in
 * processing at once, waves of devices with success and failure
 * thresholds, maintenance windows, retries of failed records, a scheduled
 * start, and pause/resume. Every transport is covered because the core
 * asks rollout_may_start() before any record starts (a push, or a pull
 * answered with the firmware), and the loop's timer and finished records
 * drive rollout_tick(). Decisions are written to the task's history
 * (task_event) with their reason. Records still move only through
 * records.c.
 * The policy, all keys optional, is the task's "rollout" object:
 *   maxConcurrent      records in processing at once (0 = no cap)
 *   waves              [{"devices": [ids]} | {"percent": P}, ...]: devices
 *                      listed go in their wave; the others are split by
 *                      percent (of the target set, in device id order);
 *                      the last wave takes whatever is left
 *   successThreshold   percent of a wave in success before the next starts
 *                      (default 100)
 *   failureThreshold   percent of a wave failed (retries spent) at which
 *                      the task pauses (default: never)
 *   window             [{"days": ["mon",...], "from": "HH:MM", "to": "HH:MM"}]
 *                      gateway local time; "to" before "from" runs past
 *                      midnight; outside every window nothing new starts,
 *                      transfers under way finish
 *   retries            {"count": N, "delaySeconds": S}: a failed record goes
 *                      back to waiting after S seconds, N times
 *   startTime          ms since the epoch; nothing starts before it
 * Must not: touch sockets, move records except through records.c. */
#ifndef OTAGW_ROLLOUT_H
#define OTAGW_ROLLOUT_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"
#include "store.h"

#define ROLLOUT_WAVES_MAX 16
#define ROLLOUT_WINDOWS_MAX 8
#define ROLLOUT_WAVE_IDS_MAX 1000
#define ROLLOUT_RETRIES_MAX 100
#define ROLLOUT_TEXT_MAX 16384      /* bytes of the policy's JSON */

struct rollout_wave {
	unsigned percent;             /* 0 when devices are listed */
	char **devices;               /* owned, n of them */
	size_t n;
};

struct rollout_window {
	uint8_t days;                 /* bit 0 = Sunday ... bit 6 = Saturday */
	int from_min, to_min;         /* minutes after midnight */
};

struct rollout {
	bool set;                     /* the task has a rollout object */
	unsigned max_concurrent;
	size_t nwaves;
	struct rollout_wave waves[ROLLOUT_WAVES_MAX];
	int success_threshold;        /* percent */
	int failure_threshold;        /* percent, -1 = never */
	size_t nwindows;
	struct rollout_window windows[ROLLOUT_WINDOWS_MAX];
	unsigned retries, retry_delay_s;
	int64_t start_time;           /* ms, 0 = at once */
};

void rollout_init(struct rollout *r);        /* no rollout: everything starts */
void rollout_clear(struct rollout *r);
/* Validates the "rollout" object (NULL: none) into r. -EINVAL with e. */
int rollout_parse(const cJSON *obj, struct rollout *r, struct err_info *e) OTAGW_MUST_CHECK;
/* Parses stored text ("" = none). -EIO when it does not parse. */
int rollout_load(const char *text, struct rollout *r) OTAGW_MUST_CHECK;
/* The policy as JSON (NULL on ENOMEM); "" is stored for no rollout. */
cJSON *rollout_to_json(const struct rollout *r);

/* True when local time tm is inside a window (or there are none). */
bool rollout_window_open(const struct rollout *r, const struct tm *tm);
/* Seconds from local time tm until a window opens (0 when open; capped at
 * 7 days). */
unsigned rollout_window_wait(const struct rollout *r, const struct tm *tm);

/* The task-side view the decisions need (tasks.c fills it). */
struct rollout_task {
	const char *id;
	bool published, canceled;
	bool push;
	bool paused;
	int wave;                     /* current wave */
	int64_t ack_failed;           /* failures of the wave acknowledged by a resume */
	struct rollout policy;
};

struct rollout_verdict {
	bool go;
	bool none_may;                /* !go for every record of the task (a hold, full slots) */
	unsigned retry_after;         /* s, when !go */
	char why[160];
};

/* May record (record_id, wave) of task t start now? now is ms since the
 * epoch, tm the same moment in local time. Slots are counted in the
 * store. 0 with v filled, or a negative code. */
int rollout_may_start(struct store *st, const struct rollout_task *t, int record_wave,
		      int64_t now, const struct tm *tm, struct rollout_verdict *v) OTAGW_MUST_CHECK;

/* Puts task_id's records into waves (after a publish). */
int rollout_assign_waves(struct store *st, const char *task_id, const struct rollout *r) OTAGW_MUST_CHECK;

/* One pass over task t: retries that are due go back to waiting, the
 * current wave is judged (next wave, or pause with the reason). Sets
 * *changed when something moved (the caller then pushes). */
int rollout_step(struct store *st, const struct rollout_task *t, int64_t now, bool *changed,
		 struct err_info *e) OTAGW_MUST_CHECK;

/* Writes a task_event row. */
int rollout_event(struct store *st, const char *task_id, int64_t now, const char *event,
		  int wave, const char *reason) OTAGW_MUST_CHECK;
/* The task's events, oldest first, at most max (newest kept): a new array. */
cJSON *rollout_events_json(struct store *st, const char *task_id, size_t max);
/* Status for the API/console: wave, waves, slots in use, paused, reason. */
cJSON *rollout_status_json(struct store *st, const struct rollout_task *t, int64_t now,
			   const struct tm *tm);

#endif
