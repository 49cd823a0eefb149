/* SPDX-License-Identifier: MIT */
/* loop.h - the one libwebsockets context and thread: vhosts, the HTTP
 * server and its router (path prefix -> http_handler), periodic timers on
 * lws_sul, and SIGINT/SIGTERM through a signalfd adopted into the loop.
 * Later transports add their vhosts through loop_context().
 * Must not: know what a route does, block, touch the store. */
#ifndef OTAGW_LOOP_H
#define OTAGW_LOOP_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "http.h"

struct loop;

struct loop_cfg {
	const char *http_bind;      /* IPv4 literal */
	unsigned http_port;         /* 0 = no HTTP server */
};

/* Creates the context and listeners. Each listener binds only its
 * configured address (IPv6 disabled per vhost). On 0, *out is the caller's
 * until loop_free(). */
int loop_new(struct loop **out, const struct loop_cfg *cfg, struct err_info *e) OTAGW_MUST_CHECK;
/* Closes every connection, then frees. NULL: no-op. */
void loop_free(struct loop *l);

/* Routes requests whose path is prefix or starts with prefix + "/" to fn
 * (ctx borrowed until loop_free). Bodies longer than max_body get 413. */
int loop_route(struct loop *l, const char *prefix, http_handler fn, void *ctx,
	       size_t max_body) OTAGW_MUST_CHECK;

/* Offers every request to ops->match first; the ones it takes get their
 * body streamed to ops (ctx borrowed until loop_free). */
int loop_stream(struct loop *l, const struct http_stream_ops *ops, void *ctx) OTAGW_MUST_CHECK;

/* Runs until SIGINT/SIGTERM or loop_stop(). 0 on a clean stop. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);
struct lws_context *loop_context(struct loop *l);

/* A periodic timer owned by its user (embed it; stop before freeing). */
struct loop_timer {
	lws_sorted_usec_list_t sul;     /* private */
	struct lws_context *ctx;        /* private */
	unsigned period_ms;
	void (*fn)(void *arg);
	void *arg;
};
void loop_timer_start(struct loop *l, struct loop_timer *t, unsigned period_ms,
		      void (*fn)(void *arg), void *arg);
void loop_timer_stop(struct loop_timer *t);

#endif
