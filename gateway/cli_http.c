/* SPDX-License-Identifier: MIT */
/* cli_http.c - one blocking HTTP request at a time over the lws 4.1 client;
 * see cli_http.h. The request state lives in struct cli_http (the wsi's
 * user pointer), which outlives every wsi: callbacks of a wsi that is not
 * the current one (a finished request still closing) are ignored, so no
 * callback ever sees freed memory. A watchdog sul ends a request that
 * makes no progress. lws may call getaddrinfo() for the host: this runs in
 * the CLI process, never in the daemon's loop.
 * Must not: log the token; write the body except from CLIENT_HTTP_WRITEABLE. */
#include "cli_http.h"

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#ifndef OTAGW_VERSION
#define OTAGW_VERSION "dev"
#endif

#define CLI_HTTP_PROTOCOL "otagw-cli"
#define CLI_HTTP_CHUNK 65536          /* bytes of body per WRITEABLE */
#define CLI_HTTP_READ 16384           /* bytes per lws_http_client_read() */
#define CLI_HTTP_TICK_MS 200          /* watchdog period */
#define CLI_HTTP_IDLE_DEFAULT 60      /* s */
#define CLI_HTTP_CONNECT_S 10         /* s to connect */
#define CLI_HTTP_AUTH_MAX 300         /* "Bearer " + a CONFIG_STR_MAX token */

struct cli_http {
	struct lws_context *ctx;
	lws_sorted_usec_list_t sul;   /* watchdog of the current request */
	/* the current request */
	const struct cli_http_req *r;
	struct cli_http_resp *resp;
	struct err_info *e;
	struct lws *wsi;
	size_t cap;                   /* of resp->body */
	int64_t alive_ms;
	uint64_t sent;
	bool connected;               /* the request headers are being written */
	bool done;
	int rc;
	uint8_t wbuf[LWS_PRE + CLI_HTTP_CHUNK];
};

static int cli_http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		       size_t len);

static const struct lws_protocols cli_http_protocols[] = {
	{ CLI_HTTP_PROTOCOL, cli_http_cb, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* Records the outcome (the first one wins). Returns -1 for lws (close). */
static int call_finish(struct cli_http *h, int rc, const char *why)
{
	if (h->done)
		return -1;
	h->done = true;
	h->rc = rc;
	if (rc && why)
		err_set(h->e, rc, "%s", why);
	return -1;
}

/* The request has a body (from a file or from memory). */
static bool call_has_body(const struct cli_http_req *r)
{
	return r->body_fd >= 0 || r->body;
}

static int call_headers(struct cli_http *h, struct lws *wsi, void *in, size_t len)
{
	unsigned char **p = in, *end = *p + len;
	const char *ua = "otagw-cli/" OTAGW_VERSION, *ct = h->r->content_type;
	char v[CLI_HTTP_AUTH_MAX];
	int n;

	h->connected = true;
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_USER_AGENT, (const unsigned char *)ua,
					 (int)strlen(ua), p, end))
		return -1;
	if (h->r->token && h->r->token[0]) {
		n = snprintf(v, sizeof(v), "Bearer %s", h->r->token);
		if (n < 0 || (size_t)n >= sizeof(v) ||
		    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
						 (unsigned char *)v, n, p, end))
			return call_finish(h, -EINVAL, "the API token is too long");
	}
	if (!call_has_body(h->r))
		return 0;
	if (!ct)
		ct = h->r->body_fd >= 0 ? "application/octet-stream" : "application/json";
	n = snprintf(v, sizeof(v), "%llu", (unsigned long long)h->r->body_len);
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, (unsigned char *)v, n,
					 p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
					 (const unsigned char *)ct, (int)strlen(ct), p, end))
		return -1;
	if (h->r->body_len) {
		lws_client_http_body_pending(wsi, 1);
		lws_callback_on_writable(wsi);
	}
	return 0;
}

/* Up to want bytes of the body into h->wbuf: from the file, or copied
 * from memory (lws_write() needs LWS_PRE bytes of room before them). */
static ssize_t call_fill(struct cli_http *h, size_t want)
{
	if (!want)
		return 0;
	if (h->r->body_fd >= 0)
		return read(h->r->body_fd, h->wbuf + LWS_PRE, want);
	memcpy(h->wbuf + LWS_PRE, (const uint8_t *)h->r->body + h->sent, want);
	return (ssize_t)want;
}

/* The next piece of the request body. */
static int call_write(struct cli_http *h, struct lws *wsi)
{
	uint64_t left = h->r->body_len - h->sent;
	size_t want = left < CLI_HTTP_CHUNK ? (size_t)left : CLI_HTTP_CHUNK;
	ssize_t n = call_fill(h, want);
	bool last;

	if (n < 0)
		return call_finish(h, -errno, strerror(errno));
	if (!n)
		return call_finish(h, -EIO, "the file shrank while being sent");
	last = (uint64_t)n == left;
	if (lws_write(wsi, h->wbuf + LWS_PRE, (size_t)n,
		      last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
		return call_finish(h, -EIO, "connection lost while sending");
	h->sent += (uint64_t)n;
	h->alive_ms = util_mono_ms();
	if (h->r->on_sent)
		h->r->on_sent(h->r->arg, h->sent, h->r->body_len);
	if (last)
		lws_client_http_body_pending(wsi, 0);
	else
		lws_callback_on_writable(wsi);
	return 0;
}

/* Keeps body bytes for the caller: collected, or handed to on_body. */
static int call_body(struct cli_http *h, const void *in, size_t len)
{
	struct cli_http_resp *resp = h->resp;
	char *nb;
	int rc;

	h->alive_ms = util_mono_ms();
	if (h->r->on_body && resp->status >= 200 && resp->status < 300) {
		rc = h->r->on_body(h->r->arg, in, len);
		return rc ? call_finish(h, rc, NULL) : 0;
	}
	if (resp->len + len > CLI_HTTP_BODY_MAX)
		return call_finish(h, -EFBIG, "the answer is too large");
	if (resp->len + len + 1 > h->cap) {
		size_t cap = h->cap ? h->cap : 4096;

		while (cap < resp->len + len + 1)
			cap *= 2;
		nb = realloc(resp->body, cap);
		if (!nb)
			return call_finish(h, -ENOMEM, "out of memory");
		resp->body = nb;
		h->cap = cap;
	}
	memcpy(resp->body + resp->len, in, len);
	resp->len += len;
	resp->body[resp->len] = '\0';
	return 0;
}

static int call_read(struct lws *wsi)
{
	char buf[LWS_PRE + CLI_HTTP_READ], *p = buf + LWS_PRE;
	int len = CLI_HTTP_READ;

	return lws_http_client_read(wsi, &p, &len) < 0 ? -1 : 0;
}

/* Connection errors before any answer: unreachable unless we were sending. */
static int call_conn_error(struct cli_http *h, const void *in, size_t len)
{
	char why[200];

	snprintf(why, sizeof(why), "%s: %.*s", h->connected ? "connection lost" : "cannot connect",
		 in ? (int)strnlen(in, len) : 7, in ? (const char *)in : "unknown");
	return call_finish(h, h->connected ? -EIO : -ECONNREFUSED, why);
}

static int cli_http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		       size_t len)
{
	struct cli_http *h = user;

	if (!h || wsi != h->wsi || h->done)       /* not (or no longer) the current request */
		return reason == LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER ||
		       reason == LWS_CALLBACK_CLIENT_HTTP_WRITEABLE ||
		       reason == LWS_CALLBACK_RECEIVE_CLIENT_HTTP ? -1 : 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		return call_headers(h, wsi, in, len);
	case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
		return call_write(h, wsi);
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		h->resp->status = (int)lws_http_client_http_response(wsi);
		h->alive_ms = util_mono_ms();
		return 0;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
		return call_read(wsi);
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
		return call_body(h, in, len);
	case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
		return call_finish(h, 0, NULL);
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		call_conn_error(h, in, len);
		return 0;
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
	case LWS_CALLBACK_WSI_DESTROY:
		call_finish(h, h->connected ? -EIO : -ECONNREFUSED,
			    h->connected ? "the daemon closed the connection" : "cannot connect");
		return 0;
	default:
		return 0;
	}
}

/* Ends the request from outside its callbacks: the wsi, alive as long as
 * the request is not done (every way it closes reports first), is killed. */
static void call_abort(struct cli_http *h, int rc, const char *why)
{
	if (h->done)
		return;
	call_finish(h, rc, why);
	if (h->wsi)
		lws_set_timeout(h->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void call_tick(lws_sorted_usec_list_t *sul)
{
	struct cli_http *h = lws_container_of(sul, struct cli_http, sul);
	unsigned idle = h->r->idle_s ? h->r->idle_s : CLI_HTTP_IDLE_DEFAULT;
	bool late;

	if (!h->connected)
		idle = CLI_HTTP_CONNECT_S;
	late = util_mono_ms() - h->alive_ms > (int64_t)idle * 1000;
	if (late && h->connected)
		call_abort(h, -ETIMEDOUT, "no answer from the daemon");
	else if (late)
		call_abort(h, -ECONNREFUSED, "cannot connect: timed out");
	if (!h->done)
		lws_sul_schedule(h->ctx, 0, &h->sul, call_tick, CLI_HTTP_TICK_MS * LWS_US_PER_MS);
}

static void call_connect(struct cli_http *h)
{
	const struct fetch_url *u = h->r->u;
	struct lws_client_connect_info i;

	memset(&i, 0, sizeof(i));
	i.context = h->ctx;
	i.address = u->host;
	i.port = (int)u->port;
	i.path = u->path;
	i.host = u->host_hdr;
	i.method = h->r->method;
	i.protocol = CLI_HTTP_PROTOCOL;
	i.local_protocol_name = CLI_HTTP_PROTOCOL;
	i.alpn = "http/1.1";
	i.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
	i.userdata = h;
	i.pwsi = &h->wsi;
	if (!lws_client_connect_via_info(&i))
		call_finish(h, -ECONNREFUSED, "cannot connect");
}

int cli_http_run(struct cli_http *h, const struct cli_http_req *r, struct cli_http_resp *resp,
		 struct err_info *e)
{
	memset(resp, 0, sizeof(*resp));
	if (r->u->tls)
		return err_set(e, -EPROTONOSUPPORT, "https:// is not supported: use http://");
	h->r = r;
	h->resp = resp;
	h->e = e;
	h->wsi = NULL;
	h->cap = 0;
	h->sent = 0;
	h->connected = h->done = false;
	h->rc = 0;
	h->alive_ms = util_mono_ms();
	lws_sul_schedule(h->ctx, 0, &h->sul, call_tick, CLI_HTTP_TICK_MS * LWS_US_PER_MS);
	call_connect(h);
	while (!h->done) {
		if (lws_service(h->ctx, 0) < 0)
			call_abort(h, -EIO, "the HTTP client failed");
		if (r->stop && *r->stop)
			call_abort(h, -EINTR, "interrupted");
	}
	lws_sul_cancel(&h->sul);
	return h->rc;
}

int cli_http_new(struct cli_http **out, struct err_info *e)
{
	struct lws_context_creation_info info;
	struct cli_http *h = calloc(1, sizeof(*h));

	if (!h)
		return err_set(e, -ENOMEM, "out of memory");
	lws_set_log_level(0, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = cli_http_protocols;
	info.gid = -1;
	info.uid = -1;
	info.timeout_secs = 3600;         /* the watchdog decides */
	info.pt_serv_buf_size = CLI_HTTP_CHUNK;
	info.fd_limit_per_thread = 16;
	h->ctx = lws_create_context(&info);
	if (!h->ctx) {
		free(h);
		return err_set(e, -ENOMEM, "cannot create the HTTP client");
	}
	*out = h;
	return 0;
}

void cli_http_free(struct cli_http *h)
{
	if (!h)
		return;
	lws_sul_cancel(&h->sul);
	lws_context_destroy(h->ctx);
	free(h);
}
