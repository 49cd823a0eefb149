/* SPDX-License-Identifier: MIT */
/* rollout.c - rollout policy, gate and judge (see rollout.h). */
#define LOG_MOD "rollout"
#include "rollout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_in.h"
#include "log.h"
#include "records.h"
#include "util.h"

#define ROLLOUT_WEEK_MIN (7 * 24 * 60)

static const char *const rollout_keys[] = { "maxConcurrent", "waves", "successThreshold",
					    "failureThreshold", "window", "retries",
					    "startTime" };
static const char *const rollout_days[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

void rollout_init(struct rollout *r)
{
	memset(r, 0, sizeof(*r));
	r->success_threshold = 100;
	r->failure_threshold = -1;
}

void rollout_clear(struct rollout *r)
{
	for (size_t i = 0; i < r->nwaves; i++) {
		for (size_t j = 0; j < r->waves[i].n; j++)
			free(r->waves[i].devices[j]);
		free(r->waves[i].devices);
	}
	rollout_init(r);
}

/* ---- parsing ------------------------------------------------------------ */

static int rollout_wave_parse(const cJSON *w, size_t i, struct rollout_wave *out,
			      struct err_info *e)
{
	static const char *const keys[] = { "devices", "percent" };
	const cJSON *devs = cJSON_GetObjectItemCaseSensitive(w, "devices");
	int64_t pct = 0;
	int rc;

	if (!cJSON_IsObject(w))
		return err_set(e, -EINVAL, "rollout.waves[%zu]: expected an object", i);
	rc = json_in_check_keys(w, keys, 2, e);
	if (!rc)
		rc = json_in_int(w, "percent", false, 1, 100, &pct, e);
	if (rc < 0)
		return rc;
	if ((devs != NULL) == (rc == 0))
		return err_set(e, -EINVAL, "rollout.waves[%zu]: give either 'devices' or 'percent'",
			       i);
	out->percent = (unsigned)pct;
	if (!devs)
		return 0;
	if (!cJSON_IsArray(devs) || !cJSON_GetArraySize(devs) ||
	    cJSON_GetArraySize(devs) > ROLLOUT_WAVE_IDS_MAX)
		return err_set(e, -EINVAL, "rollout.waves[%zu].devices: expected 1 to %d device ids",
			       i, ROLLOUT_WAVE_IDS_MAX);
	out->devices = calloc((size_t)cJSON_GetArraySize(devs), sizeof(char *));
	if (!out->devices)
		return err_set(e, -ENOMEM, "out of memory");
	for (const cJSON *d = devs->child; d; d = d->next) {
		if (!cJSON_IsString(d) || !util_id_valid(d->valuestring))
			return err_set(e, -EINVAL, "rollout.waves[%zu].devices[%zu]: not a device id",
				       i, out->n);
		out->devices[out->n] = strdup(d->valuestring);
		if (!out->devices[out->n++])
			return err_set(e, -ENOMEM, "out of memory");
	}
	return 0;
}

/* "HH:MM" (00:00 to 24:00) into minutes. */
static int rollout_hhmm(const cJSON *it, int *out)
{
	const char *s = cJSON_IsString(it) ? it->valuestring : NULL;

	if (!s || strlen(s) != 5 || s[2] != ':' || s[0] < '0' || s[0] > '2' || s[1] < '0' ||
	    s[1] > '9' || s[3] < '0' || s[3] > '5' || s[4] < '0' || s[4] > '9')
		return -EINVAL;
	*out = ((s[0] - '0') * 10 + (s[1] - '0')) * 60 + (s[3] - '0') * 10 + (s[4] - '0');
	return *out <= 24 * 60 ? 0 : -EINVAL;
}

static int rollout_window_parse(const cJSON *w, size_t i, struct rollout_window *out,
				struct err_info *e)
{
	static const char *const keys[] = { "days", "from", "to" };
	const cJSON *days = cJSON_GetObjectItemCaseSensitive(w, "days");
	int rc;

	if (!cJSON_IsObject(w))
		return err_set(e, -EINVAL, "rollout.window[%zu]: expected an object", i);
	rc = json_in_check_keys(w, keys, 3, e);
	if (rc)
		return rc;
	if (rollout_hhmm(cJSON_GetObjectItemCaseSensitive(w, "from"), &out->from_min) ||
	    rollout_hhmm(cJSON_GetObjectItemCaseSensitive(w, "to"), &out->to_min) ||
	    out->from_min == 24 * 60)
		return err_set(e, -EINVAL, "rollout.window[%zu]: 'from' and 'to' must be \"HH:MM\" "
			       "(to may be 24:00)", i);
	if (out->from_min == out->to_min)
		return err_set(e, -EINVAL, "rollout.window[%zu]: 'from' and 'to' are equal", i);
	out->days = 0x7f;
	if (!days)
		return 0;
	if (!cJSON_IsArray(days) || !cJSON_GetArraySize(days))
		return err_set(e, -EINVAL, "rollout.window[%zu].days: expected day names", i);
	out->days = 0;
	for (const cJSON *d = days->child; d; d = d->next) {
		size_t k;

		for (k = 0; k < 7; k++)
			if (cJSON_IsString(d) && !strcmp(d->valuestring, rollout_days[k]))
				break;
		if (k == 7)
			return err_set(e, -EINVAL, "rollout.window[%zu].days: expected \"sun\" .. "
				       "\"sat\"", i);
		out->days |= (uint8_t)(1u << k);
	}
	return 0;
}

static int rollout_parse_body(const cJSON *obj, struct rollout *r, struct err_info *e)
{
	const cJSON *waves = cJSON_GetObjectItemCaseSensitive(obj, "waves");
	const cJSON *win = cJSON_GetObjectItemCaseSensitive(obj, "window");
	const cJSON *retries = cJSON_GetObjectItemCaseSensitive(obj, "retries");
	static const char *const retry_keys[] = { "count", "delaySeconds" };
	int64_t v;
	int rc;

	if (!cJSON_IsObject(obj))
		return err_set(e, -EINVAL, "field 'rollout': expected an object");
	rc = json_in_check_keys(obj, rollout_keys, sizeof(rollout_keys) / sizeof(rollout_keys[0]),
				e);
	if (rc)
		return rc;
	r->set = true;
	v = 0;
	if (json_in_int(obj, "maxConcurrent", false, 0, 1000000, &v, e) < 0)
		return -EINVAL;
	r->max_concurrent = (unsigned)v;   /* absent: v stays 0 */
	v = 100;
	if (json_in_int(obj, "successThreshold", false, 0, 100, &v, e) < 0)
		return -EINVAL;
	r->success_threshold = (int)v;
	v = -1;
	if (json_in_int(obj, "failureThreshold", false, 1, 100, &v, e) < 0)
		return -EINVAL;
	r->failure_threshold = (int)v;
	v = 0;
	if (json_in_int(obj, "startTime", false, 0, INT64_MAX / 2, &v, e) < 0)
		return -EINVAL;
	r->start_time = v;
	if (waves) {
		if (!cJSON_IsArray(waves) || !cJSON_GetArraySize(waves) ||
		    cJSON_GetArraySize(waves) > ROLLOUT_WAVES_MAX)
			return err_set(e, -EINVAL, "rollout.waves: expected 1 to %d waves",
				       ROLLOUT_WAVES_MAX);
		for (const cJSON *w = waves->child; w; w = w->next) {
			rc = rollout_wave_parse(w, r->nwaves, &r->waves[r->nwaves], e);
			r->nwaves++;
			if (rc)
				return rc;
		}
	}
	if (win) {
		const cJSON *first = cJSON_IsArray(win) ? win->child : win;

		if (cJSON_IsArray(win) && (!cJSON_GetArraySize(win) ||
					   cJSON_GetArraySize(win) > ROLLOUT_WINDOWS_MAX))
			return err_set(e, -EINVAL, "rollout.window: expected 1 to %d windows",
				       ROLLOUT_WINDOWS_MAX);
		for (const cJSON *w = first; w; w = cJSON_IsArray(win) ? w->next : NULL) {
			rc = rollout_window_parse(w, r->nwindows, &r->windows[r->nwindows], e);
			r->nwindows++;
			if (rc)
				return rc;
		}
	}
	if (retries) {
		if (!cJSON_IsObject(retries))
			return err_set(e, -EINVAL, "rollout.retries: expected {\"count\", "
				       "\"delaySeconds\"}");
		rc = json_in_check_keys(retries, retry_keys, 2, e);
		if (!rc)
			rc = json_in_int(retries, "count", true, 0, ROLLOUT_RETRIES_MAX, &v, e);
		if (rc < 0)
			return rc;
		r->retries = (unsigned)v;
		v = 60;
		if (json_in_int(retries, "delaySeconds", false, 0, 86400, &v, e) < 0)
			return -EINVAL;
		r->retry_delay_s = (unsigned)v;
	}
	return 0;
}

int rollout_parse(const cJSON *obj, struct rollout *r, struct err_info *e)
{
	int rc;

	rollout_init(r);
	if (!obj || cJSON_IsNull(obj))
		return 0;
	rc = rollout_parse_body(obj, r, e);
	if (rc)
		rollout_clear(r);
	return rc;
}

int rollout_load(const char *text, struct rollout *r)
{
	cJSON *o;
	struct err_info e = { 0 };
	int rc;

	rollout_init(r);
	if (!text || !text[0])
		return 0;
	o = cJSON_Parse(text);
	rc = o ? rollout_parse(o, r, &e) : -EIO;
	cJSON_Delete(o);
	return rc ? -EIO : 0;
}

static bool rollout_add_hhmm(cJSON *o, const char *key, int min)
{
	char b[24];

	snprintf(b, sizeof(b), "%02d:%02d", min / 60, min % 60);
	return cJSON_AddStringToObject(o, key, b) != NULL;
}

cJSON *rollout_to_json(const struct rollout *r)
{
	cJSON *o = cJSON_CreateObject(), *a, *w, *d;
	bool ok = o != NULL;

	ok = ok && cJSON_AddNumberToObject(o, "maxConcurrent", r->max_concurrent);
	ok = ok && cJSON_AddNumberToObject(o, "successThreshold", r->success_threshold);
	if (ok && r->failure_threshold >= 0)
		ok = cJSON_AddNumberToObject(o, "failureThreshold", r->failure_threshold) != NULL;
	ok = ok && cJSON_AddNumberToObject(o, "startTime", (double)r->start_time);
	if (ok && r->nwaves) {
		ok = (a = cJSON_AddArrayToObject(o, "waves")) != NULL;
		for (size_t i = 0; ok && i < r->nwaves; i++) {
			ok = (w = cJSON_CreateObject()) && cJSON_AddItemToArray(a, w);
			if (ok && !r->waves[i].n)
				ok = cJSON_AddNumberToObject(w, "percent", r->waves[i].percent);
			else if (ok)
				ok = (d = cJSON_CreateStringArray((const char *const *)r->waves[i].devices,
								  (int)r->waves[i].n)) &&
				     cJSON_AddItemToObject(w, "devices", d);
		}
	}
	if (ok && r->nwindows) {
		ok = (a = cJSON_AddArrayToObject(o, "window")) != NULL;
		for (size_t i = 0; ok && i < r->nwindows; i++) {
			const struct rollout_window *win = &r->windows[i];

			ok = (w = cJSON_CreateObject()) && cJSON_AddItemToArray(a, w) &&
			     (d = cJSON_AddArrayToObject(w, "days"));
			for (int k = 0; ok && k < 7; k++)
				if (win->days & (1u << k))
					ok = cJSON_AddItemToArray(d, cJSON_CreateString(rollout_days[k]));
			ok = ok && rollout_add_hhmm(w, "from", win->from_min) &&
			     rollout_add_hhmm(w, "to", win->to_min);
		}
	}
	if (ok && r->retries) {
		ok = (w = cJSON_AddObjectToObject(o, "retries")) &&
		     cJSON_AddNumberToObject(w, "count", r->retries) &&
		     cJSON_AddNumberToObject(w, "delaySeconds", r->retry_delay_s);
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* ---- windows ------------------------------------------------------------ */

/* Open at minute m (0..1439) of week day wd? */
static bool rollout_open_at(const struct rollout *r, int wd, int m)
{
	if (!r->nwindows)
		return true;
	for (size_t i = 0; i < r->nwindows; i++) {
		const struct rollout_window *w = &r->windows[i];
		int yesterday = (wd + 6) % 7;

		if (w->from_min < w->to_min) {
			if ((w->days & (1u << wd)) && m >= w->from_min && m < w->to_min)
				return true;
		} else if (((w->days & (1u << wd)) && m >= w->from_min) ||
			   ((w->days & (1u << yesterday)) && m < w->to_min)) {
			return true;   /* runs past midnight */
		}
	}
	return false;
}

bool rollout_window_open(const struct rollout *r, const struct tm *tm)
{
	return rollout_open_at(r, tm->tm_wday, tm->tm_hour * 60 + tm->tm_min);
}

unsigned rollout_window_wait(const struct rollout *r, const struct tm *tm)
{
	int wd = tm->tm_wday, m = tm->tm_hour * 60 + tm->tm_min;

	if (rollout_open_at(r, wd, m))
		return 0;
	for (int step = 1; step <= ROLLOUT_WEEK_MIN; step++) {
		if (++m == 24 * 60) {
			m = 0;
			wd = (wd + 1) % 7;
		}
		if (rollout_open_at(r, wd, m))
			return (unsigned)(step * 60 - tm->tm_sec);
	}
	return ROLLOUT_WEEK_MIN * 60;
}

/* ---- the store ---------------------------------------------------------- */

static int rollout_count(struct store *st, const char *task_id, const char *state,
			 int64_t *out)
{
	sqlite3_stmt *s = store_stmt(st,
		"SELECT COUNT(*) FROM record WHERE task_id = ?1 AND state = ?2");
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, task_id);
	store_bind_str(s, 2, state);
	rc = sqlite3_step(s);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	store_done(s);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

int rollout_event(struct store *st, const char *task_id, int64_t now, const char *event,
		  int wave, const char *reason)
{
	sqlite3_stmt *s;
	int rc = store_begin(st);   /* the row and what observers queue, together */

	if (rc)
		return rc;
	s = store_stmt(st, "INSERT INTO task_event (task_id, time, event, wave, reason)"
		       " VALUES (?1, ?2, ?3, ?4, ?5)");
	if (!s) {
		store_rollback(st);
		return -EIO;
	}
	store_bind_str(s, 1, task_id);
	sqlite3_bind_int64(s, 2, now);
	store_bind_str(s, 3, event);
	sqlite3_bind_int(s, 4, wave);
	store_bind_str(s, 5, reason ? reason : "");
	rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	store_done(s);
	if (!rc)
		rc = store_emit_task_event(st, task_id, event, wave, reason ? reason : "", now);
	if (rc) {
		store_rollback(st);
		return rc < 0 ? rc : -EIO;
	}
	rc = store_commit(st);
	if (!rc)
		LOGI("task %s: %s%s%s", task_id, event, reason && reason[0] ? ": " : "",
		     reason ? reason : "");
	return rc;
}

/* The last hold/open event's reason ("" for open or none). */
static int rollout_last_gate(struct store *st, const char *task_id, char *out, size_t cap)
{
	sqlite3_stmt *s = store_stmt(st,
		"SELECT event, reason FROM task_event WHERE task_id = ?1"
		" AND event IN ('hold', 'open') ORDER BY id DESC LIMIT 1");
	int rc;

	out[0] = '\0';
	if (!s)
		return -EIO;
	store_bind_str(s, 1, task_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(s, 0), "hold"))
		store_col_str(s, 1, out, cap);
	store_done(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

/* Why nothing of t may start now, task-wide ("" when it may). */
static unsigned rollout_hold(const struct rollout_task *t, int64_t now, const struct tm *tm,
			     char *why, size_t cap)
{
	unsigned wait;

	why[0] = '\0';
	if (t->paused) {
		snprintf(why, cap, "the task is paused");
		return 60;
	}
	if (t->policy.start_time > now) {
		int64_t s = (t->policy.start_time - now + 999) / 1000;

		snprintf(why, cap, "scheduled to start in %lld s", (long long)s);
		return s > 3600 ? 3600 : (unsigned)s;
	}
	wait = rollout_window_wait(&t->policy, tm);
	if (wait) {
		snprintf(why, cap, "outside the maintenance window (opens in %u min)",
			 (wait + 59) / 60);
		return wait > 3600 ? 3600 : wait;
	}
	return 0;
}

int rollout_may_start(struct store *st, const struct rollout_task *t, int record_wave,
		      int64_t now, const struct tm *tm, struct rollout_verdict *v)
{
	int64_t busy;
	unsigned wait;

	memset(v, 0, sizeof(*v));
	v->go = true;
	if (!t->policy.set)
		return 0;
	v->go = false;
	v->none_may = true;
	if (t->canceled) {
		snprintf(v->why, sizeof(v->why), "the task was canceled");
		v->retry_after = 3600;
		return 0;
	}
	wait = rollout_hold(t, now, tm, v->why, sizeof(v->why));
	if (wait) {
		v->retry_after = wait;
		return 0;
	}
	v->none_may = false;
	if (record_wave > t->wave) {
		snprintf(v->why, sizeof(v->why), "in wave %d; wave %d runs now", record_wave + 1,
			 t->wave + 1);
		v->retry_after = 60;
		return 0;
	}
	if (t->policy.max_concurrent) {
		if (rollout_count(st, t->id, "processing", &busy))
			return -EIO;
		if (busy >= (int64_t)t->policy.max_concurrent) {
			snprintf(v->why, sizeof(v->why), "all %u upgrade slots are in use",
				 t->policy.max_concurrent);
			v->retry_after = 10;
			v->none_may = true;
			return 0;
		}
	}
	v->go = true;
	return 0;
}

/* ---- waves -------------------------------------------------------------- */

struct rollout_rec {
	char id[OTAGW_ID_MAX];
	char device[OTAGW_ID_MAX];
	int wave;
};

static int rollout_explicit_wave(const struct rollout *r, const char *device)
{
	for (size_t i = 0; i < r->nwaves; i++)
		for (size_t j = 0; j < r->waves[i].n; j++)
			if (!strcmp(r->waves[i].devices[j], device))
				return (int)i;
	return -1;
}

int rollout_assign_waves(struct store *st, const char *task_id, const struct rollout *r)
{
	sqlite3_stmt *s = store_stmt(st,
		"SELECT id, device_id FROM record WHERE task_id = ?1 ORDER BY device_id");
	sqlite3_stmt *u;
	struct rollout_rec *recs = NULL;
	size_t n = 0, cap = 0, rest = 0, done = 0;
	unsigned cum = 0;
	int rc, last = r->nwaves ? (int)r->nwaves - 1 : 0;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, task_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			struct rollout_rec *nr = realloc(recs, (cap ? cap * 2 : 64) * sizeof(*recs));

			if (!nr) {
				rc = SQLITE_NOMEM;
				break;
			}
			recs = nr;
			cap = cap ? cap * 2 : 64;
		}
		store_col_str(s, 0, recs[n].id, sizeof(recs[n].id));
		store_col_str(s, 1, recs[n].device, sizeof(recs[n].device));
		recs[n].wave = rollout_explicit_wave(r, recs[n].device);
		rest += recs[n].wave < 0;
		n++;
	}
	store_done(s);
	if (rc != SQLITE_DONE) {
		free(recs);
		return -EIO;
	}
	/* the unlisted devices, in id order, by cumulative percent */
	for (size_t w = 0; w < r->nwaves; w++) {
		size_t upto;

		if (r->waves[w].n)
			continue;
		cum += r->waves[w].percent;
		upto = (size_t)(((uint64_t)rest * (cum > 100 ? 100 : cum) + 50) / 100);
		for (size_t i = 0; i < n && done < upto; i++) {
			if (recs[i].wave >= 0)
				continue;
			recs[i].wave = (int)w;
			done++;
		}
	}
	u = store_stmt(st, "UPDATE record SET wave = ?2 WHERE id = ?1");
	rc = u ? 0 : -EIO;
	for (size_t i = 0; !rc && i < n; i++) {
		store_bind_str(u, 1, recs[i].id);
		sqlite3_bind_int(u, 2, recs[i].wave >= 0 ? recs[i].wave : last);
		rc = sqlite3_step(u) == SQLITE_DONE ? 0 : -EIO;
		sqlite3_reset(u);
	}
	if (u)
		store_done(u);
	free(recs);
	return rc;
}

/* ---- judging ------------------------------------------------------------ */

struct rollout_tally {
	int64_t total, success, failed, retrying, waiting, processing;
};

/* Counts of wave (all records when the policy has no waves). */
static int rollout_tally(struct store *st, const struct rollout_task *t, int wave,
			 struct rollout_tally *c)
{
	sqlite3_stmt *s = store_stmt(st,
		"SELECT state, attempts < ?3, COUNT(*) FROM record WHERE task_id = ?1"
		" AND (?2 < 0 OR wave = ?2) GROUP BY state, attempts < ?3");
	int rc;

	memset(c, 0, sizeof(*c));
	if (!s)
		return -EIO;
	store_bind_str(s, 1, t->id);
	sqlite3_bind_int(s, 2, t->policy.nwaves ? wave : -1);
	sqlite3_bind_int(s, 3, (int)t->policy.retries);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *state = (const char *)sqlite3_column_text(s, 0);
		bool more = sqlite3_column_int(s, 1);
		int64_t k = sqlite3_column_int64(s, 2);

		if (!state || !strcmp(state, "canceled"))
			continue;   /* a canceled device neither succeeds nor fails */
		c->total += k;
		if (!strcmp(state, "success"))
			c->success += k;
		else if (!strcmp(state, "failed") && more)
			c->retrying += k;
		else if (!strcmp(state, "failed"))
			c->failed += k;
		else if (!strcmp(state, "waiting"))
			c->waiting += k;
		else
			c->processing += k;
	}
	store_done(s);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static int rollout_pause(struct store *st, const struct rollout_task *t, int64_t now,
			 const char *reason)
{
	sqlite3_stmt *s = store_stmt(st,
		"UPDATE task SET paused = 1, pause_reason = ?2 WHERE id = ?1");
	int rc;

	if (!s)
		return -EIO;
	store_bind_str(s, 1, t->id);
	store_bind_str(s, 2, reason);
	rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
	store_done(s);
	return rc ? rc : rollout_event(st, t->id, now, "paused", t->wave, reason);
}

/* Failed records whose delay is over go back to waiting. */
static int rollout_retries(struct store *st, const struct rollout_task *t, int64_t now,
			   bool *changed, struct err_info *e)
{
	sqlite3_stmt *s = store_stmt(st,
		"SELECT id, attempts FROM record WHERE task_id = ?1 AND state = 'failed'"
		" AND attempts < ?2 AND update_time <= ?3 LIMIT 256");
	struct { char id[OTAGW_ID_MAX]; int attempts; } due[256];
	size_t n = 0;
	int rc;

	if (!t->policy.retries)
		return 0;
	if (!s)
		return -EIO;
	store_bind_str(s, 1, t->id);
	sqlite3_bind_int(s, 2, (int)t->policy.retries);
	sqlite3_bind_int64(s, 3, now - (int64_t)t->policy.retry_delay_s * 1000);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < 256) {
		store_col_str(s, 0, due[n].id, sizeof(due[n].id));
		due[n++].attempts = sqlite3_column_int(s, 1);
	}
	store_done(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return -EIO;
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *u;
		char why[64];

		snprintf(why, sizeof(why), "retry %d of %u", due[i].attempts + 1, t->policy.retries);
		rc = store_begin(st);
		if (rc)
			return err_set(e, rc, "cannot begin transaction");
		rc = record_transition(st, due[i].id, REC_WAITING,
				       &(struct record_change){ .progress = 0, .reason = why,
								.time = now }, e);
		u = rc ? NULL : store_stmt(st, "UPDATE record SET attempts = attempts + 1"
					   " WHERE id = ?1");
		if (!rc && !u)
			rc = err_set(e, -EIO, "cannot count the retry");
		if (u) {
			store_bind_str(u, 1, due[i].id);
			rc = sqlite3_step(u) == SQLITE_DONE ? 0 : err_set(e, -EIO, "cannot count "
									   "the retry");
			store_done(u);
		}
		if (rc) {
			store_rollback(st);
			return rc;
		}
		rc = store_commit(st);
		if (rc)
			return err_set(e, rc, "cannot commit the retry");
		*changed = true;
	}
	return 0;
}

/* Notes task-wide holds (schedule, window) once each as they begin and end. */
static int rollout_gate_event(struct store *st, const struct rollout_task *t, int64_t now,
			      const struct tm *tm)
{
	char why[160], last[160];

	if (t->paused)
		return 0;
	rollout_hold(t, now, tm, why, sizeof(why));
	/* the minutes left change: compare the kind of hold only */
	if (rollout_last_gate(st, t->id, last, sizeof(last)))
		return -EIO;
	if (!strncmp(why, last, 12))
		return 0;
	return rollout_event(st, t->id, now, why[0] ? "hold" : "open", t->wave,
			     why[0] ? why : "upgrades may start");
}

int rollout_step(struct store *st, const struct rollout_task *t, int64_t now, bool *changed,
		 struct err_info *e)
{
	struct rollout_tally c;
	char why[200];
	int64_t failed, need;
	struct tm tm;
	time_t secs = (time_t)(now / 1000);
	int rc;

	*changed = false;
	if (!t->policy.set || !t->published || t->canceled)
		return 0;
	localtime_r(&secs, &tm);
	rc = rollout_gate_event(st, t, now, &tm);
	if (!rc && !t->paused)
		rc = rollout_retries(st, t, now, changed, e);
	if (rc || t->paused)
		return rc < 0 && !e->code ? err_set(e, rc, "rollout of task %s", t->id) : rc;
	/* Every started wave is judged for failures (a wave's failures may come
	 * after the next wave started); the ones a resume acknowledged do not
	 * pause the task again until a new failure comes. */
	failed = 0;
	why[0] = '\0';
	for (int w = 0; w <= (t->policy.nwaves ? t->wave : 0); w++) {
		if (rollout_tally(st, t, w, &c))
			return err_set(e, -EIO, "cannot count the records of task %s", t->id);
		failed += c.failed;
		if (!why[0] && t->policy.failure_threshold >= 0 && c.total && c.failed &&
		    c.failed * 100 >= (int64_t)t->policy.failure_threshold * c.total)
			snprintf(why, sizeof(why), "wave %d: %lld of %lld failed "
				 "(failureThreshold %d%%)", w + 1, (long long)c.failed,
				 (long long)c.total, t->policy.failure_threshold);
	}
	if (why[0] && failed > t->ack_failed) {
		*changed = true;
		return rollout_pause(st, t, now, why) ? err_set(e, -EIO, "cannot pause") : 0;
	}
	if (rollout_tally(st, t, t->wave, &c))
		return err_set(e, -EIO, "cannot count the records of task %s", t->id);
	if (t->wave + 1 >= (int)(t->policy.nwaves ? t->policy.nwaves : 1))
		return 0;
	need = (c.total * t->policy.success_threshold + 99) / 100;
	if (c.success >= need) {
		sqlite3_stmt *s = store_stmt(st,
			"UPDATE task SET wave = wave + 1 WHERE id = ?1 AND wave = ?2");

		if (!s)
			return err_set(e, -EIO, "cannot start the next wave");
		store_bind_str(s, 1, t->id);
		sqlite3_bind_int(s, 2, t->wave);
		rc = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
		store_done(s);
		snprintf(why, sizeof(why), "wave %d: %lld of %lld succeeded (successThreshold %d%%)",
			 t->wave + 1, (long long)c.success, (long long)c.total,
			 t->policy.success_threshold);
		if (!rc)
			rc = rollout_event(st, t->id, now, "wave", t->wave + 1, why);
		*changed = true;
		return rc ? err_set(e, rc, "cannot start the next wave") : 0;
	}
	if (c.success + c.waiting + c.processing + c.retrying < need) {
		snprintf(why, sizeof(why), "wave %d cannot reach its successThreshold %d%%: "
			 "%lld of %lld failed", t->wave + 1, t->policy.success_threshold,
			 (long long)c.failed, (long long)c.total);
		*changed = true;
		return rollout_pause(st, t, now, why) ? err_set(e, -EIO, "cannot pause") : 0;
	}
	return 0;
}

/* ---- JSON for the API --------------------------------------------------- */

cJSON *rollout_events_json(struct store *st, const char *task_id, size_t max)
{
	sqlite3_stmt *s = store_stmt(st,
		"SELECT time, event, wave, reason FROM (SELECT id, time, event, wave, reason"
		" FROM task_event WHERE task_id = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id");
	cJSON *a = cJSON_CreateArray();
	int rc;

	if (!s || !a) {
		if (s)
			store_done(s);
		cJSON_Delete(a);
		return NULL;
	}
	store_bind_str(s, 1, task_id);
	sqlite3_bind_int64(s, 2, (int64_t)max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		cJSON *o = cJSON_CreateObject();

		if (!o || !cJSON_AddItemToArray(a, o) ||
		    !cJSON_AddNumberToObject(o, "time", (double)sqlite3_column_int64(s, 0)) ||
		    !cJSON_AddStringToObject(o, "event",
					     (const char *)sqlite3_column_text(s, 1) ?: "") ||
		    !cJSON_AddNumberToObject(o, "wave", sqlite3_column_int(s, 2) + 1) ||
		    !cJSON_AddStringToObject(o, "reason",
					     (const char *)sqlite3_column_text(s, 3) ?: "")) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	store_done(s);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(a);
		return NULL;
	}
	return a;
}

cJSON *rollout_status_json(struct store *st, const struct rollout_task *t, int64_t now,
			   const struct tm *tm)
{
	cJSON *o = cJSON_CreateObject(), *sizes;
	struct rollout_tally c;
	int64_t busy = 0;
	char why[160];
	int nw = (int)(t->policy.nwaves ? t->policy.nwaves : 1);
	bool ok = o != NULL;

	if (ok && rollout_count(st, t->id, "processing", &busy))
		ok = false;
	ok = ok && cJSON_AddNumberToObject(o, "wave", t->wave + 1);
	ok = ok && cJSON_AddNumberToObject(o, "waves", nw);
	ok = ok && (sizes = cJSON_AddArrayToObject(o, "waveSizes"));
	for (int w = 0; ok && w < nw; w++)
		ok = !rollout_tally(st, t, w, &c) &&
		     cJSON_AddItemToArray(sizes, cJSON_CreateNumber((double)c.total));
	ok = ok && cJSON_AddNumberToObject(o, "slotsInUse", (double)busy);
	ok = ok && cJSON_AddNumberToObject(o, "maxConcurrent", t->policy.max_concurrent);
	ok = ok && cJSON_AddBoolToObject(o, "paused", t->paused);
	rollout_hold(t, now, tm, why, sizeof(why));
	if (t->paused)
		why[0] = '\0';
	ok = ok && cJSON_AddStringToObject(o, "hold", why);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}
