/* SPDX-License-Identifier: MIT */
/* tcp.h - the raw TCP device listener: one libwebsockets raw vhost in the
 * gateway's loop, one session per connection, framed by a pluggable codec.
 * The first message names the device (and, with token auth, carries its
 * secret); everything else goes to the message core unchanged.
 * Back-pressure: each connection's send queue is bounded (TCP_TXQ_MAX); a
 * device whose queue fills is dropped.
 * Must not: touch the store (the core does), block, buffer without bound. */
#ifndef OTAGW_TCP_H
#define OTAGW_TCP_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

#include "codec.h"
#include "core.h"
#include "err.h"

#define TCP_TXQ_MAX (256 * 1024)    /* bytes queued for one device */
#define TCP_ERRORS_MAX 5            /* undecodable messages before we close */

struct tcp_cfg {
	const char *bind;              /* IPv4 literal */
	unsigned port;
	const struct codec_ops *codec;
	bool auth_token;               /* first message must carry headers.secureKey */
	unsigned idle_timeout;         /* s */
	unsigned max_connections;
	size_t max_frame;              /* bytes of one line or frame */
	unsigned max_chunk;            /* bytes of one in-band image chunk */
	const char *default_product;   /* "" = none */
	const char *image_url;         /* template with {firmwareId} */
};

struct tcp;

/* Listens on cfg->bind:port in ctx. cfg's strings and core are borrowed
 * until tcp_free(). On 0, *out is the caller's. */
int tcp_open(struct tcp **out, struct lws_context *ctx, struct core *core,
	     const struct tcp_cfg *cfg, struct err_info *e) OTAGW_MUST_CHECK;
/* Frees t. Call after the lws context is destroyed (which closes every
 * connection through t's callbacks). NULL: no-op. */
void tcp_free(struct tcp *t);
/* Connections open now. */
size_t tcp_count(const struct tcp *t);

#endif
