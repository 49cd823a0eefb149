/* SPDX-License-Identifier: MIT */
/* loop.c - libwebsockets context, HTTP server and router, timers, signals.
 * HTTP requests are gathered into struct http_req (method, path, query,
 * a few headers, the body up to the route's cap), handed to the route's
 * handler synchronously, and the response is written from WRITEABLE:
 * headers first, then the body in pieces of at most LOOP_CHUNK bytes. */
#define LOG_MOD "loop"
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "otagw_limits.h"
#include "util.h"

#define LOOP_STREAMS_MAX 4
#define LOOP_CHUNK 65536
#define LOOP_PATH_MAX 2048
#define LOOP_AUTH_MAX 1024

struct loop_route_ent {
	char prefix[32];
	http_handler fn;
	void *ctx;
	size_t max_body;
	uint64_t requests, bytes_sent;  /* /metrics */
};

struct live_conn;

struct loop {
	struct lws_context *ctx;
	struct lws_vhost *vh_core, *vh_http;
	int sigfd;
	bool stop;
	uint8_t sendbuf[LWS_PRE + LOOP_CHUNK];   /* one thread: one send buffer */
	size_t nroutes;
	struct loop_route_ent routes[LOOP_ROUTES_MAX];
	size_t nstreams;
	struct { const struct http_stream_ops *ops; void *ctx; } streams[LOOP_STREAMS_MAX];
	const struct loop_live_ops *live_ops;   /* NULL: no live channel */
	void *live_ctx;
	struct live_conn *live;                 /* every live client */
	size_t live_admitted;
	uint64_t unrouted;                      /* requests no route took */
	/* event-loop lag: how late a LOOP_LAG_PERIOD_MS timer fires */
	lws_sorted_usec_list_t lag_sul;
	lws_usec_t lag_due;
	uint64_t lag_count, lag_buckets[LOOP_LAG_BUCKETS];
	double lag_sum_s, lag_max_s;
	/* group commit: called after every pass and before every send */
	int (*flush)(void *arg);
	void *flush_arg;
};

/* Before a send: whatever it tells the peer is on disk first. */
static void loop_flush(struct loop *l)
{
	if (l->flush)
		(void)l->flush(l->flush_arg);   /* a failure is logged by its owner */
}

#define LOOP_LAG_PERIOD_MS 100
const double loop_lag_bounds[LOOP_LAG_BUCKETS] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5 };

/* One frame shared by the live clients it is queued for. */
struct live_frame {
	unsigned refs;
	size_t len;
	uint8_t buf[];          /* LWS_PRE bytes, then the text */
};

/* Per live WebSocket client; lws allocates and zeroes it. */
struct live_conn {
	struct loop *loop;
	struct lws *wsi;
	struct live_conn *next;
	bool admitted, overflowed;
	int close_code;         /* non-zero: close with it at the next WRITEABLE */
	size_t auth_len;
	char auth[LOOP_LIVE_AUTH_MAX];
	size_t qhead, qlen;
	struct live_frame *q[LOOP_LIVE_QUEUE];
};

enum http_conn_state { HC_IDLE, HC_BODY, HC_STREAM, HC_HEADERS, HC_SENDING };

/* Per HTTP connection; lws allocates and zeroes it. */
struct http_conn {
	enum http_conn_state state;
	struct loop_route_ent *route;
	struct http_req req;
	char path[LOOP_PATH_MAX];
	char auth[LOOP_AUTH_MAX];
	char ctype[128];
	char range[128];
	char if_range[128];
	char if_none_match[128];
	char args_buf[2048];
	uint8_t *body;
	size_t body_len, body_cap;
	bool too_big;
	bool close_after;
	struct http_resp resp;
	uint64_t sent;
	struct loop *loop;
	const struct http_stream_ops *stream;   /* HC_STREAM: who takes the body */
	void *stream_state;
	struct lws *wsi;
	bool deferred;                /* answered later through http_defer() */
	void (*defer_cancel)(void *arg);
	void *defer_arg;
};

/* ---- responses ---------------------------------------------------------- */

static void http_conn_reset(struct http_conn *hc)
{
	if (hc->deferred && hc->defer_cancel)
		hc->defer_cancel(hc->defer_arg);
	if (hc->resp.has_file)
		close(hc->resp.file_fd);
	if (hc->resp.file_done)
		hc->resp.file_done(hc->resp.file_arg);
	if (hc->stream && hc->stream_state)
		hc->stream->abort(hc->stream_state);
	free(hc->body);
	free(hc->resp.body);
	memset(hc, 0, sizeof(*hc));
}

/* Sets a plain JSON error response produced by the loop itself. */
static void http_conn_error(struct http_conn *hc, int status, const char *text)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "{\"error\":\"%s\"}", text);

	if (hc->resp.has_file)
		close(hc->resp.file_fd);
	if (hc->resp.file_done)
		hc->resp.file_done(hc->resp.file_arg);
	free(hc->resp.body);
	memset(&hc->resp, 0, sizeof(hc->resp));
	hc->resp.status = status;
	hc->resp.body = strdup(buf);
	hc->resp.body_len = hc->resp.body ? (size_t)n : 0;
}

static void http_conn_respond(struct lws *wsi, struct http_conn *hc)
{
	hc->state = HC_HEADERS;
	lws_callback_on_writable(wsi);
}

static void http_conn_dispatch(struct lws *wsi, struct http_conn *hc)
{
	hc->req.body = hc->body;
	hc->req.body_len = hc->body_len;
	if (hc->route->fn(hc->route->ctx, &hc->req, &hc->resp) ||
	    (!hc->resp.status && !hc->deferred))
		http_conn_error(hc, 500, "internal error");
	if (!hc->deferred)
		http_conn_respond(wsi, hc);
}

static int http_write_headers(struct lws *wsi, struct http_conn *hc)
{
	uint8_t buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
	const char *ctype = hc->resp.content_type ? hc->resp.content_type : "application/json";
	const char *cc = hc->resp.cache_control ? hc->resp.cache_control : "no-store";

	if (lws_add_http_common_headers(wsi, (unsigned)hc->resp.status, ctype,
					(lws_filepos_t)hc->resp.body_len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)cc, (int)strlen(cc), &p, end))
		return -1;
	for (size_t i = 0; i < hc->resp.nhdrs; i++)
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)hc->resp.hdrs[i].name,
						(const unsigned char *)hc->resp.hdrs[i].value,
						(int)strlen(hc->resp.hdrs[i].value), &p, end))
			return -1;
	if (hc->resp.www_authenticate &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_WWW_AUTHENTICATE,
					 (const unsigned char *)hc->resp.www_authenticate,
					 (int)strlen(hc->resp.www_authenticate), &p, end))
		return -1;
	if (hc->close_after &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
					 (const unsigned char *)"close", 5, &p, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	hc->state = HC_SENDING;
	return 0;
}

/* The transaction is over: keep the connection for the next request unless
 * we must close it (unread body). */
static int http_conn_done(struct lws *wsi, struct http_conn *hc)
{
	bool close_it = hc->close_after;

	http_conn_reset(hc);
	if (close_it)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* One large write of the file body per WRITEABLE: pread into the loop's
 * send buffer (no allocation per request or per write). */
static int http_conn_write_file(struct lws *wsi, struct http_conn *hc)
{
	uint8_t *buf = hc->loop->sendbuf;
	uint64_t left = hc->resp.body_len - hc->sent;
	size_t n = left > LOOP_CHUNK ? LOOP_CHUNK : (size_t)left;
	ssize_t got = pread(hc->resp.file_fd, buf + LWS_PRE, n,
			    (off_t)(hc->resp.file_off + hc->sent));
	bool last = (uint64_t)n == left;

	if (got != (ssize_t)n)
		return -1;      /* the file shrank under us: drop the connection */
	if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
		return -1;
	if (hc->resp.file_sent)
		hc->resp.file_sent(hc->resp.file_arg, hc->resp.file_off + hc->sent, n);
	hc->sent += n;
	if (hc->route)
		hc->route->bytes_sent += n;
	if (last)
		return http_conn_done(wsi, hc);
	/* lws does not refresh the timeout for us while we stream */
	lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, 30);
	lws_callback_on_writable(wsi);
	return 0;
}

static int http_conn_writeable(struct lws *wsi, struct http_conn *hc)
{
	size_t n;
	uint8_t *buf;
	int last;

	if (hc->state == HC_HEADERS) {
		if (http_write_headers(wsi, hc))
			return -1;
		if (!hc->resp.body_len || hc->req.method == HTTP_HEAD)
			return http_conn_done(wsi, hc);
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (hc->state != HC_SENDING)
		return 0;
	if (hc->resp.has_file)
		return http_conn_write_file(wsi, hc);
	n = (size_t)(hc->resp.body_len - hc->sent);
	if (n > LOOP_CHUNK)
		n = LOOP_CHUNK;
	last = hc->sent + n == hc->resp.body_len;
	buf = malloc(LWS_PRE + n);
	if (!buf)
		return -1;
	memcpy(buf + LWS_PRE, hc->resp.body + hc->sent, n);
	if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n) {
		free(buf);
		return -1;
	}
	free(buf);
	if (hc->resp.file_sent)
		hc->resp.file_sent(hc->resp.file_arg, hc->resp.file_off + hc->sent, n);
	hc->sent += n;
	if (hc->route)
		hc->route->bytes_sent += n;
	if (last)
		return http_conn_done(wsi, hc);
	lws_callback_on_writable(wsi);
	return 0;
}

/* ---- requests ----------------------------------------------------------- */

static enum http_method http_conn_method(struct lws *wsi)
{
	static const struct { enum lws_token_indexes tok; enum http_method m; } map[] = {
		{ WSI_TOKEN_GET_URI, HTTP_GET },       { WSI_TOKEN_POST_URI, HTTP_POST },
		{ WSI_TOKEN_PUT_URI, HTTP_PUT },       { WSI_TOKEN_DELETE_URI, HTTP_DELETE },
		{ WSI_TOKEN_HEAD_URI, HTTP_HEAD },     { WSI_TOKEN_PATCH_URI, HTTP_PATCH },
		{ WSI_TOKEN_OPTIONS_URI, HTTP_OPTIONS },
	};

	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(map); i++)
		if (lws_hdr_total_length(wsi, map[i].tok) > 0)
			return map[i].m;
	return HTTP_OTHER;
}

/* Splits the ?query fragments ("name=value", already url-decoded by lws)
 * into req.args, backed by args_buf. */
static void http_conn_args(struct lws *wsi, struct http_conn *hc)
{
	size_t used = 0;

	for (int i = 0; hc->req.nargs < HTTP_ARGS_MAX; i++) {
		char *frag = hc->args_buf + used, *eq;
		int n = lws_hdr_copy_fragment(wsi, frag, (int)(sizeof(hc->args_buf) - used),
					      WSI_TOKEN_HTTP_URI_ARGS, i);

		if (n <= 0)
			break;
		used += (size_t)n + 1;
		eq = strchr(frag, '=');
		if (eq)
			*eq++ = '\0';
		hc->req.args[hc->req.nargs].name = frag;
		hc->req.args[hc->req.nargs++].value = eq ? eq : "";
	}
}

static void http_conn_copy_hdr(struct lws *wsi, enum lws_token_indexes tok, char *dst,
			       size_t cap, const char **out)
{
	int n = lws_hdr_total_length(wsi, tok);

	*out = NULL;
	if (n <= 0 || (size_t)n >= cap)
		return;
	if (lws_hdr_copy(wsi, dst, (int)cap, tok) > 0)
		*out = dst;
}

static struct loop_route_ent *loop_find_route(struct loop *l, const char *path)
{
	for (size_t i = 0; i < l->nroutes; i++) {
		size_t n = strlen(l->routes[i].prefix);

		/* "/" takes every path the routes before it did not */
		if (!strncmp(path, l->routes[i].prefix, n) &&
		    (n == 1 || path[n] == '\0' || path[n] == '/'))
			return &l->routes[i];
	}
	return NULL;
}

static bool http_conn_peer_loopback(struct lws *wsi)
{
	char peer[64];

	if (!lws_get_peer_simple(wsi, peer, sizeof(peer)))
		return false;
	return !strncmp(peer, "127.", 4) || !strncmp(peer, "::ffff:127.", 11);
}

/* Offers the request to the stream handlers. true when one took it (the
 * body will stream to it); false with resp filled when it refused; false
 * with no resp when none wanted it. */
static void loop_stream_end(struct lws *wsi, struct http_conn *hc)
{
	void *st = hc->stream_state;

	hc->stream_state = NULL;
	if (hc->stream->end(st, &hc->resp) || !hc->resp.status)
		http_conn_error(hc, 500, "internal error");
	http_conn_respond(wsi, hc);
}

/* A piece of a streamed body; a refusal answers at once and closes. */
static void loop_stream_data(struct lws *wsi, struct http_conn *hc, const void *in, size_t len)
{
	if (!len)
		return;
	if (!hc->stream->data(hc->stream_state, in, len, &hc->resp))
		return;
	hc->stream_state = NULL;
	if (!hc->resp.status)
		http_conn_error(hc, 500, "internal error");
	hc->close_after = true;
	http_conn_respond(wsi, hc);
}

static bool loop_stream_start(struct lws *wsi, struct loop *l, struct http_conn *hc,
			      bool has_length, uint64_t len)
{
	for (size_t i = 0; i < l->nstreams; i++) {
		const struct http_stream_ops *ops = l->streams[i].ops;

		if (!ops->match(l->streams[i].ctx, &hc->req))
			continue;
		if (!has_length) {
			http_conn_error(hc, 411, "Content-Length required");
			return false;
		}
		if (ops->begin(l->streams[i].ctx, &hc->req, len, &hc->stream_state, &hc->resp)) {
			hc->stream_state = NULL;
			if (!hc->resp.status)
				http_conn_error(hc, 500, "internal error");
			return false;
		}
		hc->stream = ops;
		hc->state = HC_STREAM;
		if (!len)
			loop_stream_end(wsi, hc);
		return true;
	}
	return false;
}

static int http_conn_start(struct lws *wsi, struct loop *l, struct http_conn *hc,
			   const char *uri, size_t len)
{
	char clen[32];
	uint64_t body_len = 0;
	int n;

	http_conn_reset(hc);
	hc->loop = l;
	hc->wsi = wsi;
	hc->req.priv = hc;
	hc->req.method = http_conn_method(wsi);
	if (len >= sizeof(hc->path)) {
		http_conn_error(hc, 414, "request path too long");
		hc->close_after = true;
		http_conn_respond(wsi, hc);
		return 0;
	}
	memcpy(hc->path, uri, len);
	hc->req.path = hc->path;
	hc->req.peer_loopback = http_conn_peer_loopback(wsi);
	http_conn_copy_hdr(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, hc->auth, sizeof(hc->auth),
			   &hc->req.authorization);
	http_conn_copy_hdr(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, hc->ctype, sizeof(hc->ctype),
			   &hc->req.content_type);
	http_conn_copy_hdr(wsi, WSI_TOKEN_HTTP_RANGE, hc->range, sizeof(hc->range), &hc->req.range);
	http_conn_copy_hdr(wsi, WSI_TOKEN_HTTP_IF_RANGE, hc->if_range, sizeof(hc->if_range),
			   &hc->req.if_range);
	http_conn_copy_hdr(wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH, hc->if_none_match,
			   sizeof(hc->if_none_match), &hc->req.if_none_match);
	http_conn_args(wsi, hc);
	hc->route = loop_find_route(l, hc->path);
	if (hc->route)
		hc->route->requests++;
	else
		l->unrouted++;
	n = lws_hdr_copy(wsi, clen, sizeof(clen), WSI_TOKEN_HTTP_CONTENT_LENGTH);
	/* libwebsockets 4.1 spins forever on a request with a body pipelined
	 * behind another one on the same connection: a request with a body is
	 * answered with Connection: close, so the client never has one
	 * waiting (bodyless requests keep the connection). */
	hc->close_after = n > 0 && strcmp(clen, "0");
	if (n > 0 && parse_u64(clen, (size_t)n, UINT64_MAX, &body_len)) {
		http_conn_error(hc, 400, "bad Content-Length");
		hc->close_after = true;
	} else if (loop_stream_start(wsi, l, hc, n > 0, body_len)) {
		return 0;
	} else if (hc->resp.status) {
		hc->close_after = true;   /* a stream handler refused: the body stays unread */
	} else if (!hc->route) {
		http_conn_error(hc, 404, "not found");
		hc->close_after = body_len > 0;
	} else if (body_len > hc->route->max_body) {
		http_conn_error(hc, 413, "request body too large");
		hc->close_after = true;
	} else if (n <= 0 && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
		/* libwebsockets 4.1 does not decode chunked request bodies */
		http_conn_error(hc, 411, "Content-Length required (chunked bodies are not accepted)");
		hc->close_after = true;
	} else if (body_len > 0) {
		hc->state = HC_BODY;   /* wait for HTTP_BODY_COMPLETION */
		return 0;
	} else {
		http_conn_dispatch(wsi, hc);
		return 0;
	}
	http_conn_respond(wsi, hc);
	return 0;
}

static int http_conn_body(struct http_conn *hc, const void *in, size_t len)
{
	size_t cap;
	uint8_t *nb;

	if (hc->state != HC_BODY || hc->too_big || !len)
		return 0;
	if (hc->body_len + len > hc->route->max_body) {
		hc->too_big = true;
		return 0;
	}
	if (hc->body_len + len > hc->body_cap) {
		cap = hc->body_cap ? hc->body_cap * 2 : 4096;
		while (cap < hc->body_len + len)
			cap *= 2;
		nb = realloc(hc->body, cap);
		if (!nb)
			return -1;
		hc->body = nb;
		hc->body_cap = cap;
	}
	memcpy(hc->body + hc->body_len, in, len);
	hc->body_len += len;
	return 0;
}

static int loop_http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len)
{
	struct http_conn *hc = user;
	struct loop *l = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return http_conn_start(wsi, l, hc, in, len);
	case LWS_CALLBACK_HTTP_BODY:
		if (hc->state == HC_STREAM)
			loop_stream_data(wsi, hc, in, len);
		return http_conn_body(hc, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (hc->state == HC_STREAM)
			loop_stream_end(wsi, hc);
		if (hc->state != HC_BODY)
			return 0;
		if (hc->too_big) {
			http_conn_error(hc, 413, "request body too large");
			http_conn_respond(wsi, hc);
			return 0;
		}
		http_conn_dispatch(wsi, hc);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		loop_flush(l);
		return http_conn_writeable(wsi, hc);
	case LWS_CALLBACK_CLOSED_HTTP:
		if (hc)
			http_conn_reset(hc);
		return 0;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return 1;       /* WebSockets only with a subprotocol of ours */
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

/* ---- signals ------------------------------------------------------------ */

static int loop_signal_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			  size_t len)
{
	struct loop *l = lws_context_user(lws_get_context(wsi));
	struct signalfd_siginfo si;

	if (reason != LWS_CALLBACK_RAW_RX_FILE)
		return 0;
	if (read(lws_get_socket_fd(wsi), &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		LOGI("signal %u: stopping", si.ssi_signo);
		loop_stop(l);
	}
	return 0;
}

/* ---- event-loop lag ------------------------------------------------------ */

static void loop_lag_fire(lws_sorted_usec_list_t *sul)
{
	struct loop *l = lws_container_of(sul, struct loop, lag_sul);
	lws_usec_t now = lws_now_usecs();
	double lag = now > l->lag_due ? (double)(now - l->lag_due) / 1e6 : 0;

	l->lag_count++;
	l->lag_sum_s += lag;
	if (lag > l->lag_max_s)
		l->lag_max_s = lag;
	for (size_t i = 0; i < LOOP_LAG_BUCKETS; i++)
		if (lag <= loop_lag_bounds[i])
			l->lag_buckets[i]++;
	l->lag_due = now + LOOP_LAG_PERIOD_MS * LWS_US_PER_MS;
	lws_sul_schedule(l->ctx, 0, &l->lag_sul, loop_lag_fire, LOOP_LAG_PERIOD_MS * LWS_US_PER_MS);
}

void loop_stats(const struct loop *l, struct loop_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->nroutes = l->nroutes;
	for (size_t i = 0; i < l->nroutes; i++) {
		out->routes[i].prefix = l->routes[i].prefix;
		out->routes[i].requests = l->routes[i].requests;
		out->routes[i].bytes_sent = l->routes[i].bytes_sent;
	}
	out->unrouted = l->unrouted;
	out->lag_count = l->lag_count;
	out->lag_sum_s = l->lag_sum_s;
	out->lag_max_s = l->lag_max_s;
	memcpy(out->lag_buckets, l->lag_buckets, sizeof(out->lag_buckets));
	out->live_clients = l->live_admitted;
}

/* ---- the console's live channel ----------------------------------------- */

static struct live_frame *live_frame_new(const void *text, size_t len)
{
	struct live_frame *f = malloc(sizeof(*f) + LWS_PRE + len);

	if (!f)
		return NULL;
	f->refs = 0;
	f->len = len;
	memcpy(f->buf + LWS_PRE, text, len);
	return f;
}

static void live_frame_unref(struct live_frame *f)
{
	if (f && !--f->refs)
		free(f);
}

static void live_conn_drop_queue(struct live_conn *lc)
{
	while (lc->qlen) {
		live_frame_unref(lc->q[lc->qhead]);
		lc->qhead = (lc->qhead + 1) % LOOP_LIVE_QUEUE;
		lc->qlen--;
	}
}

/* Queues f (a reference is taken); on overflow the client's queue goes and
 * it gets the overflow message instead. */
static void live_conn_push(struct live_conn *lc, struct live_frame *f)
{
	if (lc->qlen == LOOP_LIVE_QUEUE) {
		live_conn_drop_queue(lc);
		lc->overflowed = true;
	} else if (!lc->overflowed) {
		f->refs++;
		lc->q[(lc->qhead + lc->qlen++) % LOOP_LIVE_QUEUE] = f;
	}
	lws_callback_on_writable(lc->wsi);
}

static void live_conn_close(struct live_conn *lc, int code)
{
	lc->close_code = code;
	lws_callback_on_writable(lc->wsi);
}

/* The first message is complete: ask the owner. */
static void live_conn_admit(struct live_conn *lc)
{
	struct loop *l = lc->loop;
	char *hello = NULL;
	size_t hello_len = 0;
	struct live_frame *f;
	int code = l->live_ops ? l->live_ops->admit(l->live_ctx, lc->auth, lc->auth_len, &hello,
						    &hello_len) : LWS_CLOSE_STATUS_GOINGAWAY;

	if (code) {
		free(hello);
		live_conn_close(lc, code >= 4000 && code <= 4999 ? code : 4000);
		return;
	}
	lc->admitted = true;
	l->live_admitted++;
	lws_set_timeout(lc->wsi, NO_PENDING_TIMEOUT, 0);
	if (hello) {
		f = live_frame_new(hello, hello_len);
		free(hello);
		if (!f) {
			live_conn_close(lc, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION);
			return;
		}
		live_conn_push(lc, f);
		if (!f->refs)
			free(f);
	}
}

static void live_conn_receive(struct live_conn *lc, const void *in, size_t len)
{
	if (lc->admitted || lc->close_code)
		return;                 /* later messages are not listened to */
	if (len > sizeof(lc->auth) - lc->auth_len) {
		live_conn_close(lc, 4000);
		return;
	}
	memcpy(lc->auth + lc->auth_len, in, len);
	lc->auth_len += len;
	if (lws_is_final_fragment(lc->wsi) && !lws_remaining_packet_payload(lc->wsi))
		live_conn_admit(lc);
}

static int live_conn_writeable(struct live_conn *lc)
{
	struct loop *l = lc->loop;
	struct live_frame *f;
	const char *msg;
	int n;

	if (lc->close_code) {
		static const char reason[] = "unauthorized";
		bool auth = lc->close_code == 4001;

		lws_close_reason(lc->wsi, (enum lws_close_status)lc->close_code,
				 (unsigned char *)(auth ? reason : "bad first message"),
				 auth ? sizeof(reason) - 1 : 17);
		return -1;
	}
	if (lc->overflowed && !lc->qlen) {
		/* the queue was dropped: tell the client to reload */
		msg = l->live_ops ? l->live_ops->overflow_msg : "{}";
		f = live_frame_new(msg, strlen(msg));
		if (!f)
			return -1;
		lc->overflowed = false;
		n = lws_write(lc->wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT);
		free(f);
		return n < 0 ? -1 : 0;
	}
	if (!lc->qlen)
		return 0;
	f = lc->q[lc->qhead];
	lc->qhead = (lc->qhead + 1) % LOOP_LIVE_QUEUE;
	lc->qlen--;
	n = lws_write(lc->wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT);
	live_frame_unref(f);
	if (n < 0)
		return -1;
	if (lc->qlen || lc->overflowed)
		lws_callback_on_writable(lc->wsi);
	return 0;
}

static void live_conn_unlink(struct live_conn *lc)
{
	struct loop *l = lc->loop;

	for (struct live_conn **pp = &l->live; *pp; pp = &(*pp)->next) {
		if (*pp == lc) {
			*pp = lc->next;
			break;
		}
	}
	if (lc->admitted)
		l->live_admitted--;
	live_conn_drop_queue(lc);
	lc->loop = NULL;
}

/* Only LOOP_LIVE_PATH upgrades, and only when the owner set the channel up. */
static bool live_path_ok(struct lws *wsi, const struct loop *l)
{
	char uri[64];

	return l->live_ops && lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) > 0 &&
	       !strcmp(uri, LOOP_LIVE_PATH);
}

static int loop_live_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len)
{
	struct live_conn *lc = user;
	struct loop *l = lws_context_user(lws_get_context(wsi));

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return live_path_ok(wsi, l) ? 0 : 1;
	case LWS_CALLBACK_ESTABLISHED:
		lc->loop = l;
		lc->wsi = wsi;
		lc->next = l->live;
		l->live = lc;
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, 10);   /* auth or go */
		return 0;
	case LWS_CALLBACK_RECEIVE:
		if (lc->loop)
			live_conn_receive(lc, in, len);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!lc->loop)
			return 0;
		loop_flush(lc->loop);
		return live_conn_writeable(lc);
	case LWS_CALLBACK_CLOSED:
		if (lc->loop)
			live_conn_unlink(lc);
		return 0;
	default:
		return 0;
	}
}

void loop_live(struct loop *l, const struct loop_live_ops *ops, void *ctx)
{
	l->live_ops = ops;
	l->live_ctx = ctx;
}

int loop_live_send(struct loop *l, const char *text, size_t len)
{
	struct live_frame *f;

	if (!l->live_admitted)
		return 0;
	f = live_frame_new(text, len);
	if (!f)
		return -ENOMEM;
	f->refs = 1;            /* held while it is handed out */
	for (struct live_conn *lc = l->live; lc; lc = lc->next)
		if (lc->admitted && !lc->close_code)
			live_conn_push(lc, f);
	live_frame_unref(f);
	return 0;
}

size_t loop_live_clients(const struct loop *l)
{
	return l->live_admitted;
}

static const struct lws_protocols loop_http_protocols[] = {
	{ "otagw-http", loop_http_cb, sizeof(struct http_conn), 0, 0, NULL, 0 },
	{ LOOP_LIVE_PROTOCOL, loop_live_cb, sizeof(struct live_conn), LOOP_LIVE_AUTH_MAX, 0, NULL,
	  0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static const struct lws_protocols loop_core_protocols[] = {
	{ "otagw-signal", loop_signal_cb, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void loop_lws_log(int level, const char *line)
{
	size_t n = strlen(line);

	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	gw_log(level == LLL_ERR ? LOG_LVL_WARN : LOG_LVL_DEBUG, "lws", "%.*s", (int)n, line);
}

static int loop_signals(struct loop *l, struct err_info *e)
{
	lws_sock_file_fd_type u;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return err_set(e, -errno, "sigprocmask: %s", strerror(errno));
	l->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->sigfd < 0)
		return err_set(e, -errno, "signalfd: %s", strerror(errno));
	u.filefd = (lws_filefd_type)(intptr_t)l->sigfd;
	if (!lws_adopt_descriptor_vhost(l->vh_core, LWS_ADOPT_RAW_FILE_DESC, u, "otagw-signal",
					NULL))
		return err_set(e, -EIO, "cannot watch signals in the loop");
	l->sigfd = -1;   /* lws owns and closes it now */
	return 0;
}

static int loop_vhosts(struct loop *l, const struct loop_cfg *cfg, struct err_info *e)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = loop_core_protocols;
	info.vhost_name = "core";
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	l->vh_core = lws_create_vhost(l->ctx, &info);
	if (!l->vh_core)
		return err_set(e, -EIO, "cannot create the core vhost");
	if (!cfg->http_port)
		return 0;
	memset(&info, 0, sizeof(info));
	info.port = (int)cfg->http_port;
	info.iface = cfg->http_bind;
	info.protocols = loop_http_protocols;
	info.vhost_name = "http";
	info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
	l->vh_http = lws_create_vhost(l->ctx, &info);
	if (!l->vh_http)
		return err_set(e, -EADDRINUSE, "cannot listen on %s:%u (address in use or not local?)",
			       cfg->http_bind, cfg->http_port);
	LOGI("HTTP listening on %s:%u", cfg->http_bind, cfg->http_port);
	return 0;
}

int loop_new(struct loop **out, const struct loop_cfg *cfg, struct err_info *e)
{
	struct lws_context_creation_info info;
	struct loop *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return err_set(e, -ENOMEM, "out of memory");
	l->sigfd = -1;
	lws_set_log_level(LLL_ERR | LLL_WARN, loop_lws_log);
	memset(&info, 0, sizeof(info));
	/* IPv6 off per listening vhost (each binds only its address), not for
	 * the context: that would also forbid client connections to IPv6. */
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.user = l;
	info.timeout_secs = 30;
	info.pt_serv_buf_size = LOOP_CHUNK;
	/* All of a request's headers (URL included) share this buffer; past it
	 * libwebsockets 4.1 closes the connection without a response. It cannot
	 * total custom headers, so a 431 of our own could not cover them. */
	info.max_http_header_data = OTAGW_HEADER_MAX;
	info.max_http_header_pool = 64;
	l->ctx = lws_create_context(&info);
	if (!l->ctx) {
		free(l);
		return err_set(e, -EIO, "cannot create the libwebsockets context");
	}
	rc = loop_vhosts(l, cfg, e);
	if (!rc)
		rc = loop_signals(l, e);
	if (!rc) {
		l->lag_due = lws_now_usecs() + LOOP_LAG_PERIOD_MS * LWS_US_PER_MS;
		lws_sul_schedule(l->ctx, 0, &l->lag_sul, loop_lag_fire,
				 LOOP_LAG_PERIOD_MS * LWS_US_PER_MS);
	}
	if (rc) {
		loop_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	lws_context_destroy(l->ctx);
	if (l->sigfd >= 0)
		close(l->sigfd);
	free(l);
}

int loop_route(struct loop *l, const char *prefix, http_handler fn, void *ctx, size_t max_body)
{
	struct loop_route_ent *r;

	if (l->nroutes >= LOOP_ROUTES_MAX)
		return -ENOSPC;
	r = &l->routes[l->nroutes];
	if (util_strlcpy(r->prefix, prefix, sizeof(r->prefix)))
		return -ENAMETOOLONG;
	r->fn = fn;
	r->ctx = ctx;
	r->max_body = max_body;
	l->nroutes++;
	return 0;
}

int loop_stream(struct loop *l, const struct http_stream_ops *ops, void *ctx)
{
	if (l->nstreams >= LOOP_STREAMS_MAX)
		return -ENOSPC;
	l->streams[l->nstreams].ops = ops;
	l->streams[l->nstreams++].ctx = ctx;
	return 0;
}

void loop_set_flush(struct loop *l, int (*fn)(void *arg), void *arg)
{
	l->flush = fn;
	l->flush_arg = arg;
}

int loop_run(struct loop *l)
{
	int rc = 0;

	while (!l->stop && !rc) {
		if (lws_service(l->ctx, 0) < 0)
			rc = -EIO;
		loop_flush(l);
	}
	return rc;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
	lws_cancel_service(l->ctx);
}

struct lws_context *loop_context(struct loop *l)
{
	return l->ctx;
}

static void loop_timer_fire(lws_sorted_usec_list_t *sul)
{
	struct loop_timer *t = lws_container_of(sul, struct loop_timer, sul);

	lws_sul_schedule(t->ctx, 0, &t->sul, loop_timer_fire, (lws_usec_t)t->period_ms * 1000);
	t->fn(t->arg);
}

void loop_timer_start(struct loop *l, struct loop_timer *t, unsigned period_ms,
		      void (*fn)(void *arg), void *arg)
{
	memset(&t->sul, 0, sizeof(t->sul));
	t->ctx = l->ctx;
	t->period_ms = period_ms;
	t->fn = fn;
	t->arg = arg;
	lws_sul_schedule(t->ctx, 0, &t->sul, loop_timer_fire, (lws_usec_t)period_ms * 1000);
}

void loop_timer_stop(struct loop_timer *t)
{
	if (t->ctx)
		lws_sul_cancel(&t->sul);
}

struct http_deferred *http_defer(const struct http_req *req, unsigned max_wait_s,
				 void (*cancel)(void *arg), void *arg)
{
	struct http_conn *hc = req->priv;

	if (!hc || hc->deferred || hc->state == HC_STREAM)
		return NULL;
	hc->deferred = true;
	hc->defer_cancel = cancel;
	hc->defer_arg = arg;
	/* the context's timeout would kill a quiet long-poll */
	lws_set_timeout(hc->wsi, PENDING_TIMEOUT_HTTP_CONTENT, (int)max_wait_s + 10);
	return (struct http_deferred *)hc;
}

bool http_deferred_gone(struct http_deferred *d)
{
	struct http_conn *hc = (struct http_conn *)d;
	char c;
	ssize_t n = recv(lws_get_socket_fd(hc->wsi), &c, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
		return false;
	/* EOF or a reset: nobody will read an answer */
	lws_set_timeout(hc->wsi, PENDING_TIMEOUT_HTTP_CONTENT, LWS_TO_KILL_ASYNC);
	return true;
}

void http_deferred_answer(struct http_deferred *d, struct http_resp *resp)
{
	struct http_conn *hc = (struct http_conn *)d;

	hc->deferred = false;
	free(hc->resp.body);
	hc->resp = *resp;
	memset(resp, 0, sizeof(*resp));
	http_conn_respond(hc->wsi, hc);
}
