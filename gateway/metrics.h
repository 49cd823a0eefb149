/* SPDX-License-Identifier: MIT */
/* metrics.h - GET /metrics in the Prometheus text exposition format
 * (version 0.0.4): the gateway's own figures (devices online per
 * transport, records per state per task, device messages and image bytes
 * per transport, HTTP requests per route, cache, downloads, event-loop
 * lag, console clients), read when scraped, plus what other modules add
 * as sources (the cloud link and outbox, serial ports). Counters end in
 * _total; every family has HELP and TYPE. When the API has a token,
 * /metrics needs it too (Prometheus: authorization { credentials: ... }).
 * Must not: touch sockets, change state, keep figures of its own. */
#ifndef OTAGW_METRICS_H
#define OTAGW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "http.h"

#define METRICS_SOURCES_MAX 4
/* Tasks with records listed per state, newest first (label cardinality). */
#define METRICS_TASKS_MAX 200

struct api;
struct core;
struct images;
struct loop;
struct metrics_out;

/* A module outside gateway/ writes its families through the functions
 * below; arg is borrowed until the metrics go. */
typedef void (*metrics_source_fn)(void *arg, struct metrics_out *o);

struct metrics {
	struct api *api;          /* borrowed: the token check, uptime, store */
	struct core *core;        /* borrowed */
	struct loop *loop;        /* borrowed */
	struct images *images;    /* borrowed; NULL: no cache */
	size_t nsources;
	struct {
		metrics_source_fn fn;
		void *arg;
	} sources[METRICS_SOURCES_MAX];
};

void metrics_init(struct metrics *m, struct api *api, struct core *core, struct loop *loop,
		  struct images *images);
/* -ENOSPC when full. */
int metrics_add_source(struct metrics *m, metrics_source_fn fn, void *arg) OTAGW_MUST_CHECK;
/* The http_handler for /metrics; ctx is a struct metrics. */
int metrics_handle(void *ctx, const struct http_req *req, struct http_resp *resp);

/* Writers for sources. A family starts with metrics_family(); its samples
 * follow. name and type ("counter", "gauge") are static identifiers;
 * labels are "key", value pairs (values escaped here), nlabels pairs. */
void metrics_family(struct metrics_out *o, const char *name, const char *type,
		    const char *help);
void metrics_sample(struct metrics_out *o, const char *name, double value, size_t nlabels,
		    ...);

#endif
