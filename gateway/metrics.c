/* SPDX-License-Identifier: MIT */
/* metrics.c - the /metrics text (see metrics.h). The page is built in one
 * bounded buffer per scrape; a failed append marks the page and the
 * scrape gets 500 rather than a truncated page. */
#define LOG_MOD "metrics"
#include "metrics.h"

#include <errno.h>
#include <math.h>  /* isnan, isinf: macros */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "buf.h"
#include "core.h"
#include "devices.h"
#include "images.h"
#include "log.h"
#include "loop.h"
#include "records.h"
#include "session.h"
#include "util.h"

#define METRICS_PAGE_MAX (4 * 1024 * 1024)

struct metrics_out {
	struct buf b;
	int err;                  /* first append error */
};

void metrics_init(struct metrics *m, struct api *api, struct core *core, struct loop *loop,
		  struct images *images)
{
	memset(m, 0, sizeof(*m));
	m->api = api;
	m->core = core;
	m->loop = loop;
	m->images = images;
}

int metrics_add_source(struct metrics *m, metrics_source_fn fn, void *arg)
{
	if (m->nsources >= METRICS_SOURCES_MAX)
		return -ENOSPC;
	m->sources[m->nsources].fn = fn;
	m->sources[m->nsources++].arg = arg;
	return 0;
}

/* ---- writing ------------------------------------------------------------ */

static void mo_put(struct metrics_out *o, const char *s, size_t n)
{
	int rc;

	if (o->err)
		return;
	rc = buf_append(&o->b, s, n);
	if (rc)
		o->err = rc;
}

static void mo_str(struct metrics_out *o, const char *s)
{
	mo_put(o, s, strlen(s));
}

/* A label value or HELP text: backslash, newline (and in labels the double
 * quote) escaped as the format asks. */
static void mo_escaped(struct metrics_out *o, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			mo_str(o, "\\\\");
		else if (*s == '\n')
			mo_str(o, "\\n");
		else if (*s == '"' && quote)
			mo_str(o, "\\\"");
		else
			mo_put(o, s, 1);
	}
}

static void mo_value(struct metrics_out *o, double v)
{
	char num[40];
	int n;

	if (isnan(v))
		n = snprintf(num, sizeof(num), "NaN");
	else if (isinf(v))
		n = snprintf(num, sizeof(num), v > 0 ? "+Inf" : "-Inf");
	else if (v == (double)(int64_t)v && v < 9e15 && v > -9e15)
		n = snprintf(num, sizeof(num), "%lld", (long long)v);
	else
		n = snprintf(num, sizeof(num), "%.9g", v);
	mo_put(o, num, (size_t)n);
}

void metrics_family(struct metrics_out *o, const char *name, const char *type, const char *help)
{
	mo_str(o, "# HELP ");
	mo_str(o, name);
	mo_str(o, " ");
	mo_escaped(o, help, false);
	mo_str(o, "\n# TYPE ");
	mo_str(o, name);
	mo_str(o, " ");
	mo_str(o, type);
	mo_str(o, "\n");
}

static void metrics_vsample(struct metrics_out *o, const char *name, double value,
			    size_t nlabels, va_list ap)
{
	mo_str(o, name);
	for (size_t i = 0; i < nlabels; i++) {
		const char *k = va_arg(ap, const char *);
		const char *v = va_arg(ap, const char *);

		mo_str(o, i ? "," : "{");
		mo_str(o, k);
		mo_str(o, "=\"");
		mo_escaped(o, v ? v : "", true);
		mo_str(o, "\"");
	}
	if (nlabels)
		mo_str(o, "}");
	mo_str(o, " ");
	mo_value(o, value);
	mo_str(o, "\n");
}

void metrics_sample(struct metrics_out *o, const char *name, double value, size_t nlabels, ...)
{
	va_list ap;

	va_start(ap, nlabels);
	metrics_vsample(o, name, value, nlabels, ap);
	va_end(ap);
}

/* A family with one unlabelled sample. */
static void mo_one(struct metrics_out *o, const char *name, const char *type, const char *help,
		   double v)
{
	metrics_family(o, name, type, help);
	metrics_sample(o, name, v, 0);
}

/* ---- the gateway's own families ----------------------------------------- */

struct census_ctx {
	int64_t online[CORE_TR_COUNT];
};

static void m_online(void *ctx, const char *transport, int64_t n)
{
	struct census_ctx *c = ctx;

	c->online[core_transport_of(transport)] += n;
}

static void m_devices(struct metrics *m, struct metrics_out *o)
{
	struct census_ctx c = { { 0 } };
	int64_t known = 0;

	if (devices_census(m->api->st, &known, m_online, &c)) {
		o->err = -EIO;
		return;
	}
	mo_one(o, "otagw_devices_known", "gauge", "Devices in the registry.", (double)known);
	metrics_family(o, "otagw_devices_online", "gauge", "Devices online now, per transport.");
	for (unsigned t = 0; t < CORE_TR_COUNT; t++)
		metrics_sample(o, "otagw_devices_online", (double)c.online[t], 1, "transport",
			       core_transport_name(t));
	mo_one(o, "otagw_device_connections", "gauge",
	       "Device connections bound to a device id (TCP, serial, HTTP long-polls).",
	       (double)session_reg_count(m->core->sessions));
}

static void m_task(void *ctx, const char *task_id, const int64_t counts[REC_STATE_COUNT])
{
	struct metrics_out *o = ctx;

	for (unsigned s = 0; s < REC_STATE_COUNT; s++)
		metrics_sample(o, "otagw_records", (double)counts[s], 2, "task", task_id, "state",
			       record_state_name(s));
}

static void m_records(struct metrics *m, struct metrics_out *o)
{
	int64_t all[REC_STATE_COUNT];

	metrics_family(o, "otagw_records", "gauge",
		       "Upgrade records per state, per task (the newest tasks only).");
	if (records_census(m->api->st, METRICS_TASKS_MAX, m_task, o) ||
	    records_counts(m->api->st, NULL, all)) {
		o->err = -EIO;
		return;
	}
	metrics_family(o, "otagw_records_all", "gauge", "Upgrade records per state, all tasks.");
	for (unsigned s = 0; s < REC_STATE_COUNT; s++)
		metrics_sample(o, "otagw_records_all", (double)all[s], 1, "state",
			       record_state_name(s));
}

static void m_transports(struct metrics *m, struct metrics_out *o)
{
	const struct core_counters *c = &m->core->counters;
	static const struct {
		const char *name, *help;
		size_t off;
	} fams[] = {
		{ "otagw_device_messages_total", "Device messages handled, per transport.",
		  offsetof(struct core_counters, messages) },
		{ "otagw_device_messages_rejected_total",
		  "Device messages refused with an error, per transport.",
		  offsetof(struct core_counters, rejected) },
		{ "otagw_image_bytes_served_total", "Image bytes sent to devices, per transport.",
		  offsetof(struct core_counters, image_bytes) },
	};

	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
		const uint64_t *v = (const uint64_t *)((const char *)c + fams[f].off);

		metrics_family(o, fams[f].name, "counter", fams[f].help);
		for (unsigned t = 0; t < CORE_TR_COUNT; t++)
			metrics_sample(o, fams[f].name, (double)v[t], 1, "transport",
				       core_transport_name(t));
	}
}

static void m_loop(struct metrics *m, struct metrics_out *o)
{
	struct loop_stats ls;
	char le[32];

	loop_stats(m->loop, &ls);
	metrics_family(o, "otagw_http_requests_total", "counter",
		       "HTTP requests, per route (/api, /device, /images, /metrics, /).");
	for (size_t i = 0; i < ls.nroutes; i++)
		metrics_sample(o, "otagw_http_requests_total", (double)ls.routes[i].requests, 1,
			       "route", ls.routes[i].prefix);
	metrics_sample(o, "otagw_http_requests_total", (double)ls.unrouted, 1, "route", "none");
	metrics_family(o, "otagw_http_response_bytes_total", "counter",
		       "Bytes of HTTP response bodies, per route.");
	for (size_t i = 0; i < ls.nroutes; i++)
		metrics_sample(o, "otagw_http_response_bytes_total",
			       (double)ls.routes[i].bytes_sent, 1, "route", ls.routes[i].prefix);
	metrics_family(o, "otagw_loop_lag_seconds", "histogram",
		       "How late the event loop ran a 100 ms timer.");
	for (size_t i = 0; i < LOOP_LAG_BUCKETS; i++) {
		snprintf(le, sizeof(le), "%g", loop_lag_bounds[i]);
		metrics_sample(o, "otagw_loop_lag_seconds_bucket", (double)ls.lag_buckets[i], 1, "le",
			       le);
	}
	metrics_sample(o, "otagw_loop_lag_seconds_bucket", (double)ls.lag_count, 1, "le", "+Inf");
	metrics_sample(o, "otagw_loop_lag_seconds_sum", ls.lag_sum_s, 0);
	metrics_sample(o, "otagw_loop_lag_seconds_count", (double)ls.lag_count, 0);
	mo_one(o, "otagw_loop_lag_max_seconds", "gauge", "The longest event-loop lag since start.",
	       ls.lag_max_s);
	mo_one(o, "otagw_console_clients", "gauge", "Web console pages following the live feed.",
	       (double)ls.live_clients);
}

static void m_cache(struct metrics *m, struct metrics_out *o)
{
	struct images_stats s;

	if (!m->images)
		return;
	if (images_stats(m->images, &s)) {
		o->err = -EIO;
		return;
	}
	mo_one(o, "otagw_cache_bytes", "gauge", "Bytes of verified images in the cache.",
	       (double)s.bytes);
	mo_one(o, "otagw_cache_entries", "gauge", "Verified images in the cache.",
	       (double)s.entries);
	mo_one(o, "otagw_cache_quota_bytes", "gauge", "The cache's quota ([cache] max_bytes).",
	       (double)images_quota(m->images));
	mo_one(o, "otagw_downloads_in_flight", "gauge", "Image downloads running now.",
	       (double)s.downloads);
	mo_one(o, "otagw_downloads_queued", "gauge",
	       "Image downloads waiting for a slot or a retry.", (double)s.queued);
	mo_one(o, "otagw_downloads_failed_total", "counter", "Image downloads failed for good.",
	       (double)s.failed);
	mo_one(o, "otagw_download_retries_total", "counter",
	       "Image download attempts that failed and were retried.", (double)s.retries);
}

static void m_store(struct metrics *m, struct metrics_out *o)
{
	struct store_batch_stats bs;

	store_batch_stats(m->api->st, &bs);
	mo_one(o, "otagw_store_commits_total", "counter",
	       "Group commits of the database (one per event-loop pass with changes).",
	       (double)bs.commits);
	mo_one(o, "otagw_store_syncs_total", "counter",
	       "Of those, commits that synced the write-ahead log (not only progress).",
	       (double)bs.syncs);
	mo_one(o, "otagw_store_commit_failures_total", "counter",
	       "Group commits that failed, their changes lost (see the log).",
	       (double)bs.failures);
}

static void metrics_page(struct metrics *m, struct metrics_out *o)
{
	metrics_family(o, "otagw_build_info", "gauge", "The running otagw's version.");
	metrics_sample(o, "otagw_build_info", 1, 1, "version", OTAGW_VERSION);
	mo_one(o, "otagw_uptime_seconds", "gauge", "Seconds since the daemon started.",
	       (double)(util_mono_ms() - m->api->start_mono_ms) / 1000.0);
	m_devices(m, o);
	m_records(m, o);
	m_transports(m, o);
	m_loop(m, o);
	m_cache(m, o);
	m_store(m, o);
	for (size_t i = 0; i < m->nsources; i++)
		m->sources[i].fn(m->sources[i].arg, o);
}

int metrics_handle(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct metrics *m = ctx;
	struct metrics_out o = { .err = 0 };

	if (!api_authorized(m->api, req)) {
		resp->www_authenticate = "Bearer realm=\"otagw\"";
		resp->status = 401;
		resp->content_type = "text/plain; charset=utf-8";
		resp->body = strdup("missing or wrong API token (Authorization: Bearer ...)\n");
		resp->body_len = resp->body ? strlen(resp->body) : 0;
		return resp->body ? 0 : -ENOMEM;
	}
	if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
		resp->status = 405;
		resp->content_type = "text/plain; charset=utf-8";
		resp->body = strdup("only GET and HEAD\n");
		resp->body_len = resp->body ? strlen(resp->body) : 0;
		return resp->body ? 0 : -ENOMEM;
	}
	buf_init(&o.b, METRICS_PAGE_MAX);
	metrics_page(m, &o);
	if (o.err) {
		LOGW("cannot build /metrics: %s", strerror(-o.err));
		buf_clear(&o.b);
		return o.err;
	}
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
	resp->body = (char *)o.b.data;     /* taken by the loop */
	resp->body_len = o.b.len;
	if (!resp->body) {
		resp->body = strdup("");
		return resp->body ? 0 : -ENOMEM;
	}
	return 0;
}
