/* SPDX-License-Identifier: MIT */
/* cloud.h - the one WebSocket link to the cloud (northbound/PROTOCOL.md),
 * in the one lws loop: resolve off the loop (cache/resolve), connect
 * (ws:// or wss:// verified against the system CA store or [cloud]
 * ca_file), GATEWAY_HELLO / HELLO_ACK, then upstream frames from the
 * outbox in seq order within a window of PROTO_WINDOW unacked frames, and
 * downstream commands handed to sync.c. Keepalive by WebSocket ping with a
 * pong deadline; reconnects with capped exponential backoff and jitter.
 * Progress is flushed from the outbox's coalescing table every
 * progress_interval while connected (while disconnected it stays coalesced,
 * so an outage keeps the outbox bounded by the devices).
 * Must not: touch records or the catalogue (sync.c and the core do), block
 * the loop, log the token. */
#ifndef OTAGW_CLOUD_H
#define OTAGW_CLOUD_H

#include <libwebsockets.h>

#include "core.h"
#include "err.h"
#include "outbox.h"

struct resolve;
struct images;

struct cloud_cfg {
	const char *url;              /* ws://host[:port]/path or wss://; copied */
	const char *gateway_id;       /* copied */
	const char *token;            /* copied; sent only as Authorization */
	const char *ca_file;          /* "" or NULL: the system store */
	unsigned progress_interval;   /* s */
	unsigned status_interval;     /* s */
	unsigned ping_interval;       /* s; the pong deadline is a third of it, >= 1 s */
};

struct cloud;

/* Starts connecting (from the loop, not inside this call). ctx, core, ob
 * and res are borrowed until cloud_free(). -EINVAL bad url, -ENOMEM. */
int cloud_new(struct cloud **out, struct lws_context *ctx, struct core *core,
	      struct outbox *ob, struct resolve *res, const struct cloud_cfg *cfg,
	      struct err_info *e) OTAGW_MUST_CHECK;
/* Closes the link (1000) and stops every timer; call before the lws context
 * is destroyed. NULL: no-op. */
void cloud_stop(struct cloud *c);
/* Frees; call after the context is destroyed. NULL: no-op. */
void cloud_free(struct cloud *c);
/* GET /api/cloud: link state, last error, outbox depth, last ack, reconnect
 * count and counters; a new cJSON object (void * for api_add_status). With
 * c NULL: {"state":"disabled"}. */
void *cloud_status(void *c);
/* The link's and the outbox's /metrics families (a metrics_source_fn;
 * arg is the struct cloud). */
struct metrics_out;
void cloud_metrics(void *c, struct metrics_out *o);

#endif
