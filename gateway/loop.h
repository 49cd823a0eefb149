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
 * (prefix "/" takes every path no earlier route took: register it last)
 * ctx borrowed until loop_free. Bodies longer than max_body get 413. */
int loop_route(struct loop *l, const char *prefix, http_handler fn, void *ctx,
	       size_t max_body) OTAGW_MUST_CHECK;

/* Offers every request to ops->match first; the ones it takes get their
 * body streamed to ops (ctx borrowed until loop_free). */
int loop_stream(struct loop *l, const struct http_stream_ops *ops, void *ctx) OTAGW_MUST_CHECK;

/* The console's live channel: WebSocket clients of the HTTP port at path
 * LOOP_LIVE_PATH with subprotocol LOOP_LIVE_PROTOCOL. Each client's first
 * message (at most LOOP_LIVE_AUTH_MAX bytes, within 10 s) goes to admit():
 * 0 admits it and *hello (malloc'ed, taken, may be NULL) is its first
 * frame; else the return is the close code (4000-4999) it is closed with.
 * Later client messages are dropped. Frames queue per client (at most
 * LOOP_LIVE_QUEUE); a client that falls that far behind loses its queue
 * and gets overflow_msg instead, so a slow browser never holds memory or
 * blocks the loop. ops and ctx are borrowed until loop_free(). */
/* Figures for /metrics. */
#define LOOP_ROUTES_MAX 8
#define LOOP_LAG_BUCKETS 8
extern const double loop_lag_bounds[LOOP_LAG_BUCKETS];   /* seconds, ascending */
struct loop_stats {
	size_t nroutes;
	struct {
		const char *prefix;             /* borrowed from the loop */
		uint64_t requests, bytes_sent;  /* bytes of response bodies */
	} routes[LOOP_ROUTES_MAX];
	uint64_t unrouted;                      /* answered 404 by the loop */
	/* how late a 100 ms timer fired: a histogram (lag_buckets[i] counts
	 * lags <= loop_lag_bounds[i]), their count, sum and maximum */
	uint64_t lag_count, lag_buckets[LOOP_LAG_BUCKETS];
	double lag_sum_s, lag_max_s;
	size_t live_clients;
};
void loop_stats(const struct loop *l, struct loop_stats *out);

#define LOOP_LIVE_PATH "/api/live"
#define LOOP_LIVE_PROTOCOL "otagw-live.v1"
#define LOOP_LIVE_AUTH_MAX 2048
#define LOOP_LIVE_QUEUE 16
struct loop_live_ops {
	int (*admit)(void *ctx, const char *msg, size_t len, char **hello, size_t *hello_len);
	const char *overflow_msg;
};
void loop_live(struct loop *l, const struct loop_live_ops *ops, void *ctx);
/* Queues text (copied once, shared) to every admitted client. -ENOMEM. */
int loop_live_send(struct loop *l, const char *text, size_t len) OTAGW_MUST_CHECK;
/* Admitted clients. */
size_t loop_live_clients(const struct loop *l);

/* fn(arg) is called after every pass of the loop and before every response
 * or live frame is written (the daemon's group commit, store_flush()); it
 * must be cheap when there is nothing to do. NULL: none. */
void loop_set_flush(struct loop *l, int (*fn)(void *arg), void *arg);
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
