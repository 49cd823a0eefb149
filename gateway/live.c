/* SPDX-License-Identifier: MIT */
/* live.c - the console's live feed (see live.h). Changed record and task
 * ids go into two small open-addressing sets during the interval; the
 * flush reads each back from the store and sends one frame per kind. */
#define LOG_MOD "live"
#include "live.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "records.h"
#include "tasks.h"
#include "util.h"

/* A set of ids; keys[i][0] == '\0' is an empty slot. */
struct idset {
	char (*keys)[OTAGW_ID_MAX];
	size_t cap;             /* 0 or a power of two */
	size_t n;
};

struct live {
	struct loop *loop;
	struct store *st;
	struct session_reg *sessions;
	const char *token;
	unsigned interval_ms;
	struct loop_timer timer;
	struct idset records, tasks;
	bool overflow;          /* too much changed: resync */
	bool devices;           /* a device reported */
	uint64_t generation;    /* the session registry's, at the last flush */
};

/* ---- id sets ------------------------------------------------------------ */

static size_t idset_hash(const char *s)
{
	size_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static int idset_grow(struct idset *s)
{
	size_t cap = s->cap ? s->cap * 2 : 64;
	char (*keys)[OTAGW_ID_MAX] = calloc(cap, sizeof(*keys));

	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		size_t j;

		if (!s->keys[i][0])
			continue;
		for (j = idset_hash(s->keys[i]) & (cap - 1); keys[j][0]; j = (j + 1) & (cap - 1))
			;
		memcpy(keys[j], s->keys[i], OTAGW_ID_MAX);
	}
	free(s->keys);
	s->keys = keys;
	s->cap = cap;
	return 0;
}

/* 0 (added or already there), -ENOMEM. */
static int idset_add(struct idset *s, const char *id)
{
	size_t j;

	if (!id[0])
		return 0;
	if ((s->n + 1) * 2 > s->cap && idset_grow(s))
		return -ENOMEM;
	for (j = idset_hash(id) & (s->cap - 1); s->keys[j][0]; j = (j + 1) & (s->cap - 1))
		if (!strcmp(s->keys[j], id))
			return 0;
	util_strlcpy(s->keys[j], id, OTAGW_ID_MAX);
	s->n++;
	return 0;
}

/* Empties the set; a large table is given back. */
static void idset_clear(struct idset *s)
{
	if (s->cap > 512) {
		free(s->keys);
		s->keys = NULL;
		s->cap = 0;
	} else if (s->cap) {
		memset(s->keys, 0, s->cap * sizeof(*s->keys));
	}
	s->n = 0;
}

/* ---- what changed ------------------------------------------------------- */

static void live_mark(struct live *lv, struct idset *set, const char *id)
{
	if (!loop_live_clients(lv->loop) || lv->overflow)
		return;
	if (set->n >= LIVE_DIRTY_MAX || idset_add(set, id)) {
		lv->overflow = true;    /* told as a resync rather than held */
		idset_clear(&lv->records);
		idset_clear(&lv->tasks);
	}
}

static int live_on_record(void *arg, struct store *st, const struct record *r, const char *from)
{
	struct live *lv = arg;

	live_mark(lv, &lv->records, r->id);
	live_mark(lv, &lv->tasks, r->task_id);
	return 0;
}

static int live_on_progress(void *arg, struct store *st, const char *record_id, int progress,
			    int64_t time)
{
	struct live *lv = arg;

	live_mark(lv, &lv->records, record_id);
	return 0;
}

static int live_on_report(void *arg, struct store *st, const struct msg *m)
{
	struct live *lv = arg;

	if (loop_live_clients(lv->loop))
		lv->devices = true;
	return 0;
}

const struct store_events live_events = {
	.record_changed = live_on_record,
	.record_progress = live_on_progress,
	.device_report = live_on_report,
};

/* ---- frames ------------------------------------------------------------- */

/* Sends o (taken) as one frame. */
static int live_send(struct live *lv, cJSON *o)
{
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	int rc = text ? loop_live_send(lv->loop, text, strlen(text)) : -ENOMEM;

	free(text);
	cJSON_Delete(o);
	return rc;
}

static cJSON *live_frame(const char *type, cJSON **items)
{
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddStringToObject(o, "type", type)) {
		cJSON_Delete(o);
		return NULL;
	}
	if (items && !(*items = cJSON_AddArrayToObject(o, "items"))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* One frame with every id of set, each turned into JSON by fn (an id
 * that is gone, e.g. a record whose creation rolled back, is left out). */
static int live_send_set(struct live *lv, const char *type, struct idset *set,
			 cJSON *(*fn)(struct live *lv, const char *id))
{
	cJSON *items, *o;
	int rc;

	if (!set->n)
		return 0;
	o = live_frame(type, &items);
	if (!o)
		return -ENOMEM;
	for (size_t i = 0; i < set->cap; i++) {
		cJSON *it;

		if (!set->keys[i][0])
			continue;
		it = fn(lv, set->keys[i]);
		if (it)
			cJSON_AddItemToArray(items, it);
	}
	rc = cJSON_GetArraySize(items) ? live_send(lv, o) : (cJSON_Delete(o), 0);
	idset_clear(set);
	return rc;
}

static cJSON *live_record_json(struct live *lv, const char *id)
{
	struct record r;

	return record_get(lv->st, id, &r) ? NULL : record_to_json(&r);
}

static cJSON *live_task_json(struct live *lv, const char *id)
{
	struct err_info e = { 0 };

	return tasks_json(lv->st, id, &e);
}

int live_flush(struct live *lv)
{
	uint64_t gen = session_reg_generation(lv->sessions);
	bool devices = lv->devices || gen != lv->generation;
	int rc = 0;

	lv->generation = gen;
	lv->devices = false;
	if (!loop_live_clients(lv->loop)) {
		lv->overflow = false;
		idset_clear(&lv->records);
		idset_clear(&lv->tasks);
		return 0;
	}
	if (lv->overflow) {
		lv->overflow = false;
		return live_send(lv, live_frame("resync", NULL));
	}
	rc = live_send_set(lv, "records", &lv->records, live_record_json);
	if (!rc)
		rc = live_send_set(lv, "tasks", &lv->tasks, live_task_json);
	if (!rc && devices)
		rc = live_send(lv, live_frame("devices", NULL));
	return rc;
}

static void live_tick(void *arg)
{
	struct live *lv = arg;

	if (live_flush(lv))
		LOGW("cannot send the console's live update (out of memory)");
}

/* ---- admission ---------------------------------------------------------- */

static int live_admit(void *ctx, const char *msg, size_t len, char **hello, size_t *hello_len)
{
	struct live *lv = ctx;
	cJSON *in = cJSON_ParseWithLength(msg, len), *o;
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(in, "type");
	const cJSON *token = cJSON_GetObjectItemCaseSensitive(in, "token");
	int code = 0;

	if (!cJSON_IsString(type) || strcmp(type->valuestring, "auth") ||
	    (token && !cJSON_IsString(token)))
		code = 4000;
	else if (lv->token && lv->token[0] &&
		 (!token || !util_ct_equal(token->valuestring, lv->token)))
		code = 4001;
	cJSON_Delete(in);
	if (code)
		return code;
	o = live_frame("hello", NULL);
	if (!o || !cJSON_AddStringToObject(o, "version", OTAGW_VERSION) ||
	    !cJSON_AddNumberToObject(o, "interval", lv->interval_ms)) {
		cJSON_Delete(o);
		return LWS_CLOSE_STATUS_UNEXPECTED_CONDITION;
	}
	*hello = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	*hello_len = *hello ? strlen(*hello) : 0;
	return *hello ? 0 : LWS_CLOSE_STATUS_UNEXPECTED_CONDITION;
}

static const struct loop_live_ops live_ops = {
	.admit = live_admit,
	.overflow_msg = "{\"type\":\"resync\"}",
};

int live_new(struct live **out, struct loop *l, struct store *st,
	     struct session_reg *sessions, const struct live_cfg *cfg)
{
	struct live *lv = calloc(1, sizeof(*lv));

	if (!lv)
		return -ENOMEM;
	lv->loop = l;
	lv->st = st;
	lv->sessions = sessions;
	lv->token = cfg->token;
	lv->interval_ms = cfg->interval_ms ? cfg->interval_ms : 250;
	lv->generation = session_reg_generation(sessions);
	loop_live(l, &live_ops, lv);
	loop_timer_start(l, &lv->timer, lv->interval_ms, live_tick, lv);
	*out = lv;
	return 0;
}

void live_free(struct live *lv)
{
	if (!lv)
		return;
	loop_timer_stop(&lv->timer);
	loop_live(lv->loop, NULL, NULL);
	free(lv->records.keys);
	free(lv->tasks.keys);
	free(lv);
}
