/* SPDX-License-Identifier: MIT */
/* tasks.h - upgrade tasks for one firmware: create, view, list, publish to
 * all devices of the product or to listed devices, cancel, summarise.
 * Publishing creates one waiting record per new target device (records.c
 * writes them); a device already on the target version gets a record in
 * success at once. Pushing to devices is the core's job, not this module's.
 * Must not: send anything, touch sockets. */
#ifndef OTAGW_TASKS_H
#define OTAGW_TASKS_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "otagw_limits.h"
#include "records.h"
#include "rollout.h"
#include "store.h"

enum task_mode { TASK_PUSH, TASK_PULL };
enum task_state { TASK_CREATED, TASK_PUBLISHED, TASK_CANCELED };

struct task {
	char id[OTAGW_ID_MAX];
	char firmware_id[OTAGW_ID_MAX];
	char product_id[OTAGW_ID_MAX];
	char name[OTAGW_NAME_MAX];
	enum task_mode mode;
	int64_t timeout_seconds;      /* 0 = no timeout */
	char *description;            /* owned */
	enum task_state state;
	int64_t create_time;          /* ms */
	bool cloud;                   /* made by the cloud (origin "cloud") */
	char *rollout;                /* owned: the rollout policy's JSON, "" = none */
	bool paused;                  /* by its failure threshold or an operator */
	char pause_reason[OTAGW_ERR_TEXT_MAX];
	int wave;                     /* current rollout wave, 0-based */
	int64_t ack_failed;           /* failures of the wave acknowledged by a resume */
};

struct task_publish_result {
	int added;                    /* new waiting records */
	int already;                  /* devices already in the task */
	int up_to_date;               /* new records in success at once */
};

void task_clear(struct task *t);
const char *task_mode_name(enum task_mode m);
const char *task_state_name(enum task_state s);

/* Validates body {name*, mode* "push"|"pull", timeoutSeconds, description,
 * id, rollout (rollout.h)} and inserts a task for firmware_id. -ENOENT
 * unknown firmware. */
int tasks_create(struct store *st, const char *firmware_id, const cJSON *body,
		 struct task *out, struct err_info *e) OTAGW_MUST_CHECK;
int tasks_get(struct store *st, const char *id, struct task *out,
	      struct err_info *e) OTAGW_MUST_CHECK;
/* A page of tasks, newest first, optionally of one firmware. Items carry
 * per-state counts. */
int tasks_list(struct store *st, const char *firmware_id, unsigned page, unsigned size,
	       cJSON **items, int64_t *total) OTAGW_MUST_CHECK;
/* Publishes in one transaction: all=true targets every device of the
 * task's product; else the n ids. Unknown ids or devices of another product
 * are -EINVAL naming them, and nothing changes. A canceled task is
 * -OTAGW_ESTATE. */
int tasks_publish(struct store *st, const char *id, bool all, const char *const *ids, size_t n,
		  struct task_publish_result *res, struct err_info *e) OTAGW_MUST_CHECK;
/* Cancels the task and its unfinished records; *n gets how many. */
int tasks_cancel(struct store *st, const char *id, int *n, struct err_info *e) OTAGW_MUST_CHECK;
/* Marks task id as the cloud's (in the transaction that created it). */
int tasks_set_cloud(struct store *st, const char *id) OTAGW_MUST_CHECK;
/* The JSON form; counts may be NULL (then omitted). */
cJSON *task_to_json(const struct task *t, const int64_t counts[REC_STATE_COUNT]);
/* Task id's JSON with its per-state counts (GET /api/tasks/{id}); NULL
 * with e set (-ENOENT, -EIO, -ENOMEM). The caller deletes it. */
cJSON *tasks_json(struct store *st, const char *id, struct err_info *e);

/* t's rollout view (rt->id borrows t->id; rollout_clear(&rt->policy) after). */
int task_rollout_view(const struct task *t, struct rollout_task *rt) OTAGW_MUST_CHECK;
/* Pauses (by an operator: reason) or resumes a published task, with a
 * task_event. Resuming acknowledges the failures of the current wave so
 * its failure threshold counts from there. -OTAGW_ESTATE when the task is
 * not published or already in that state. */
int tasks_pause(struct store *st, const char *id, const char *reason, struct err_info *e) OTAGW_MUST_CHECK;
int tasks_resume(struct store *st, const char *id, struct err_info *e) OTAGW_MUST_CHECK;
/* fn(ctx, id) for each published task with a rollout policy. */
int tasks_each_rollout(struct store *st, int (*fn)(void *ctx, const char *id), void *ctx) OTAGW_MUST_CHECK;

#endif
