/* SPDX-License-Identifier: MIT */
/* cloud.c - the WebSocket link to the cloud (see cloud.h). States:
 *   IDLE -> RESOLVING -> CONNECTING -> HELLO (sent, waiting for HELLO_ACK)
 *        -> READY (frames both ways) -> BACKOFF -> RESOLVING ...
 * Upstream frames are read from the outbox one at a time in WRITEABLE, in
 * seq order after the last one sent, while fewer than PROTO_WINDOW are
 * unacked; the sent seqs wait in a small ring for their ACK. */
#define LOG_MOD "cloud"
#include "cloud.h"

#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"
#include "fetch.h"
#include "images.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "resolve.h"
#include "session.h"
#include "sync.h"
#include "util.h"

#define CLOUD_PUMP_MS 50             /* look for new outbox frames while ready */
#define CLOUD_CTRL_MAX 16            /* unsequenced frames waiting (hello, errors) */
#define CLOUD_AUTH_BACKOFF_S 60
#define CLOUD_ERR_MAX 256

enum cloud_state { CS_IDLE, CS_RESOLVING, CS_CONNECTING, CS_HELLO, CS_READY, CS_BACKOFF };
static const char *const cloud_state_names[] = {
	"idle", "resolving", "connecting", "hello", "online", "offline",
};
/* Backoff before attempt n (s), then the last one; plus 0-30 % jitter. */
static const unsigned cloud_backoff_s[] = { 1, 2, 4, 8, 16, 32, 60 };

struct cloud {
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct lws_protocols protocols[2];
	struct core *core;
	struct outbox *ob;
	struct resolve *res;
	struct sync sync;
	struct cloud_cfg cfg;
	char url[OTAGW_URL_MAX], gateway_id[OTAGW_ID_MAX], token[256], ca_file[4096];
	struct fetch_url u;
	enum cloud_state state;
	bool stopping;
	struct lws *wsi;
	struct resolve_req *rq;
	unsigned attempt;
	bool auth_failed;
	char last_error[CLOUD_ERR_MAX];
	/* upstream */
	uint64_t last_sent, acked, hello_ack;
	uint64_t inflight[PROTO_WINDOW];   /* ring of sent, unacked seqs */
	unsigned in_head, in_n;
	char *ctrl[CLOUD_CTRL_MAX];        /* unsequenced frames, FIFO */
	unsigned ctrl_n;
	bool ping_due, pong_wait;
	enum lws_close_status close_code; /* non-zero: closing with this code */
	int64_t errors_second;
	unsigned errors_sent;
	/* downstream: the message being reassembled */
	uint8_t *rx;
	size_t rx_len;
	bool rx_binary;
	/* counters */
	uint64_t reconnects, frames_sent, frames_received, commands;
	int64_t connected_since, last_ack_time;
	/* timers */
	lws_sorted_usec_list_t sul_conn, sul_pump, sul_ping, sul_flush, sul_status, sul_deadline;
};

static void cloud_connect_cb(lws_sorted_usec_list_t *sul);
static void cloud_link_down(struct cloud *c, const char *why);

static void cloud_error(struct cloud *c, const char *fmt, ...) OTAGW_PRINTF(2, 3);
static void cloud_error(struct cloud *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
	va_end(ap);
}

static void cloud_sched(struct cloud *c, lws_sorted_usec_list_t *sul, sul_cb_t cb, int64_t ms)
{
	if (!c->stopping)
		lws_sul_schedule(c->ctx, 0, sul, cb, (lws_usec_t)ms * 1000);
}

/* ---- reconnect -------------------------------------------------------------- */

static void cloud_backoff(struct cloud *c)
{
	unsigned n = c->attempt < OTAGW_ARRAY_SIZE(cloud_backoff_s) ? c->attempt :
		     (unsigned)OTAGW_ARRAY_SIZE(cloud_backoff_s) - 1;
	int64_t ms = (int64_t)cloud_backoff_s[n] * 1000;

	if (c->auth_failed && ms < CLOUD_AUTH_BACKOFF_S * 1000)
		ms = CLOUD_AUTH_BACKOFF_S * 1000;
	ms += (int64_t)(util_random_u32() % (uint32_t)(ms * 3 / 10 + 1));
	c->attempt++;
	c->state = CS_BACKOFF;
	LOGI("reconnecting to the cloud in %" PRId64 " ms", ms);
	cloud_sched(c, &c->sul_conn, cloud_connect_cb, ms);
}

static void cloud_timers_off(struct cloud *c)
{
	lws_sul_cancel(&c->sul_pump);
	lws_sul_cancel(&c->sul_ping);
	lws_sul_cancel(&c->sul_flush);
	lws_sul_cancel(&c->sul_status);
	lws_sul_cancel(&c->sul_deadline);
}

/* The connection is gone (or never came): forget its state, back off. */
static void cloud_link_down(struct cloud *c, const char *why)
{
	if (why)
		cloud_error(c, "%s", why);
	if (c->state == CS_READY || c->state == CS_HELLO)
		LOGW("cloud link down: %s", c->last_error);
	c->wsi = NULL;
	c->close_code = 0;
	cloud_timers_off(c);
	for (unsigned i = 0; i < c->ctrl_n; i++)
		free(c->ctrl[i]);
	c->ctrl_n = 0;
	c->in_n = 0;
	c->ping_due = c->pong_wait = false;
	free(c->rx);
	c->rx = NULL;
	c->rx_len = 0;
	c->connected_since = 0;
	if (!c->stopping)
		cloud_backoff(c);
}

/* Closes the link with a close frame carrying code: from the next
 * WRITEABLE (or at once from a receive callback, see cloud_receive), and
 * at the latest 2 s later when nothing can be written (a dead link).
 * Frames that arrive meanwhile are ignored. */
static void cloud_drop(struct cloud *c, enum lws_close_status code, const char *why)
{
	cloud_error(c, "%s", why);
	if (!c->wsi || c->close_code)
		return;
	c->close_code = code;
	lws_callback_on_writable(c->wsi);
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 2);
}

/* In a callback of c->wsi: sends the pending close frame; -1 closes. */
static int cloud_close_now(struct cloud *c, struct lws *wsi)
{
	lws_close_reason(wsi, c->close_code, (unsigned char *)c->last_error,
			 strnlen(c->last_error, 120));
	return -1;
}

static void cloud_connect(struct cloud *c, const char *addr)
{
	struct lws_client_connect_info i;

	memset(&i, 0, sizeof(i));
	i.context = c->ctx;
	i.vhost = c->vh;
	i.address = addr;
	i.port = (int)c->u.port;
	i.path = c->u.path;
	i.host = c->u.host_hdr;
	i.origin = c->u.host_hdr;
	i.protocol = PROTO_SUBPROTOCOL;
	i.local_protocol_name = PROTO_SUBPROTOCOL;
	i.ietf_version_or_minus_one = -1;
	i.ssl_connection = c->u.tls ? LCCSCF_USE_SSL : 0;
	i.userdata = c;
	i.pwsi = &c->wsi;
	c->state = CS_CONNECTING;
	if (!lws_client_connect_via_info(&i)) {
		c->wsi = NULL;
		cloud_link_down(c, "cannot start a connection");
	}
}

static void cloud_resolved(void *arg, int rc, const char *addr)
{
	struct cloud *c = arg;

	c->rq = NULL;
	if (rc) {
		char why[CLOUD_ERR_MAX];

		snprintf(why, sizeof(why), "cannot resolve %.100s: %s", c->u.host,
			 rc == -ENOENT ? "no such host" : otagw_strerror(rc));
		cloud_link_down(c, why);
		return;
	}
	cloud_connect(c, addr);
}

static void cloud_connect_cb(lws_sorted_usec_list_t *sul)
{
	struct cloud *c = lws_container_of(sul, struct cloud, sul_conn);
	int rc;

	c->state = CS_RESOLVING;
	rc = resolve_start(c->res, c->u.host, cloud_resolved, c, &c->rq);
	if (rc) {
		c->rq = NULL;
		cloud_link_down(c, "cannot start name resolution");
	}
}

/* ---- upstream ------------------------------------------------------------------ */

static void cloud_want_write(struct cloud *c)
{
	if (c->wsi)
		lws_callback_on_writable(c->wsi);
}

/* Queues an unsequenced frame (hello, error); frame is taken. */
static void cloud_ctrl(struct cloud *c, char *frame)
{
	if (c->ctrl_n == CLOUD_CTRL_MAX) {
		free(frame);
		return;
	}
	c->ctrl[c->ctrl_n++] = frame;
	cloud_want_write(c);
}

/* An upstream ERROR about a frame we could not take (rate limited). */
static void cloud_send_error(struct cloud *c, const char *code, const char *text,
			     const char *message_id)
{
	int64_t now = util_mono_ms() / 1000;
	char *f = NULL;
	size_t n;

	if (now != c->errors_second) {
		c->errors_second = now;
		c->errors_sent = 0;
	}
	if (c->errors_sent++ >= PROTO_ERRORS_PER_S)
		return;
	if (!proto_enc_error(0, code, text, message_id && message_id[0] ? message_id : NULL, &f,
			     &n))
		cloud_ctrl(c, f);
}

static int cloud_write(struct cloud *c, const char *frame, size_t len)
{
	uint8_t *b = malloc(LWS_PRE + len);
	int n;

	if (!b)
		return -1;
	memcpy(b + LWS_PRE, frame, len);
	n = lws_write(c->wsi, b + LWS_PRE, len, LWS_WRITE_TEXT);
	free(b);
	if (n < (int)len)
		return -1;
	c->frames_sent++;
	return 0;
}

/* The next outbox frame, if the window allows. 1 sent, 0 nothing, -1 fail. */
static int cloud_send_next(struct cloud *c)
{
	char *frame = NULL;
	size_t len = 0;
	uint64_t seq = 0;
	int rc;

	if (c->state != CS_READY || c->in_n >= PROTO_WINDOW)
		return 0;
	rc = outbox_next(c->ob, c->last_sent, &frame, &len, &seq);
	if (rc == -ENOENT)
		return 0;
	if (rc) {
		cloud_error(c, "cannot read the outbox: %s", otagw_strerror(rc));
		return 0;
	}
	rc = cloud_write(c, frame, len);
	free(frame);
	if (rc)
		return -1;
	c->last_sent = seq;
	c->inflight[(c->in_head + c->in_n++) % PROTO_WINDOW] = seq;
	if (c->in_n == 1)
		c->last_ack_time = util_mono_ms();  /* the ack clock starts now */
	return 1;
}

static int cloud_writeable(struct cloud *c)
{
	uint8_t ping[LWS_PRE + 1];
	int rc;

	core_sync(c->core);
	if (c->close_code)
		return cloud_close_now(c, c->wsi);
	if (c->ctrl_n) {
		char *f = c->ctrl[0];

		memmove(c->ctrl, c->ctrl + 1, --c->ctrl_n * sizeof(c->ctrl[0]));
		rc = cloud_write(c, f, strlen(f));
		free(f);
		if (rc)
			return -1;
		cloud_want_write(c);
		return 0;
	}
	if (c->ping_due) {
		c->ping_due = false;
		if (lws_write(c->wsi, ping + LWS_PRE, 0, LWS_WRITE_PING) < 0)
			return -1;
		cloud_want_write(c);
		return 0;
	}
	rc = cloud_send_next(c);
	if (rc < 0)
		return -1;
	if (rc > 0)
		cloud_want_write(c);
	return 0;
}

/* ---- timers while connected ------------------------------------------------------ */

static void cloud_pump_cb(lws_sorted_usec_list_t *sul)
{
	struct cloud *c = lws_container_of(sul, struct cloud, sul_pump);

	if (c->state != CS_READY)
		return;
	if (c->in_n < PROTO_WINDOW)
		cloud_want_write(c);
	if (c->in_n && util_mono_ms() - c->last_ack_time > PROTO_ACK_TIMEOUT_MS) {
		cloud_drop(c, 4004, "no ACK from the cloud in time");
		return;
	}
	cloud_sched(c, &c->sul_pump, cloud_pump_cb, CLOUD_PUMP_MS);
}

static void cloud_flush_cb(lws_sorted_usec_list_t *sul)
{
	struct cloud *c = lws_container_of(sul, struct cloud, sul_flush);
	int frames = 0;

	if (c->state != CS_READY)
		return;
	if (outbox_flush_progress(c->ob, &frames))
		LOGW("cannot flush progress to the outbox");
	else if (frames)
		cloud_want_write(c);
	cloud_sched(c, &c->sul_flush, cloud_flush_cb, (int64_t)c->cfg.progress_interval * 1000);
}

struct cloud_online {
	struct proto_online v[8];
	char names[8][OTAGW_TRANSPORT_MAX];
	size_t n;
};

static void cloud_online_fn(void *ctx, const char *transport, int64_t n)
{
	struct cloud_online *o = ctx;

	if (o->n == OTAGW_ARRAY_SIZE(o->v) || !transport[0])
		return;
	util_strlcpy(o->names[o->n], transport, sizeof(o->names[0]));
	o->v[o->n].transport = o->names[o->n];
	o->v[o->n].count = (uint64_t)n;
	o->n++;
}

static void cloud_cache_usage(struct cloud *c, struct proto_status *s)
{
	cJSON *o = NULL, *it;

	if (!c->core->images || images_list(c->core->images, &o))
		return;
	it = cJSON_GetObjectItem(o, "usedBytes");
	s->cache_used = cJSON_IsNumber(it) ? (uint64_t)it->valuedouble : 0;
	it = cJSON_GetObjectItem(o, "maxBytes");
	s->cache_quota = cJSON_IsNumber(it) ? (uint64_t)it->valuedouble : 0;
	s->cache_images = (uint64_t)cJSON_GetArraySize(cJSON_GetObjectItem(o, "items"));
	cJSON_Delete(o);
}

static void cloud_queue_status(struct cloud *c)
{
	static int64_t started;
	struct proto_status s = { .version = OTAGW_VERSION };
	struct cloud_online on = { .n = 0 };
	int64_t known = 0, frames = 0, prog = 0;

	if (!started)
		started = util_mono_ms();
	s.uptime = (uint64_t)((util_mono_ms() - started) / 1000);
	if (devices_census(c->core->st, &known, cloud_online_fn, &on))
		return;
	s.online = on.v;
	s.n_online = on.n;
	s.devices = (uint64_t)known;
	cloud_cache_usage(c, &s);
	if (!outbox_depth(c->ob, &frames, &prog))
		s.outbox = (uint64_t)frames + 1;
	if (outbox_add_status(c->ob, &s))
		LOGW("cannot queue the gateway status");
	cloud_want_write(c);
}

static void cloud_status_cb(lws_sorted_usec_list_t *sul)
{
	struct cloud *c = lws_container_of(sul, struct cloud, sul_status);

	if (c->state != CS_READY)
		return;
	cloud_queue_status(c);
	cloud_sched(c, &c->sul_status, cloud_status_cb, (int64_t)c->cfg.status_interval * 1000);
}

/* Keepalive: a ping every ping_interval; no pong (or any frame) by the
 * deadline drops the link. */
static void cloud_ping_cb(lws_sorted_usec_list_t *sul)
{
	struct cloud *c = lws_container_of(sul, struct cloud, sul_ping);
	unsigned wait = c->cfg.ping_interval * 1000 / 3;

	if (!c->wsi)
		return;
	if (c->pong_wait) {
		cloud_drop(c, LWS_CLOSE_STATUS_GOINGAWAY, "no pong from the cloud: link dead");
		return;
	}
	c->pong_wait = true;
	c->ping_due = true;
	cloud_want_write(c);
	cloud_sched(c, &c->sul_ping, cloud_ping_cb, wait < 1000 ? 1000 : wait);
}

static void cloud_alive(struct cloud *c)
{
	if (!c->pong_wait)
		return;
	c->pong_wait = false;
	cloud_sched(c, &c->sul_ping, cloud_ping_cb, (int64_t)c->cfg.ping_interval * 1000);
}

static void cloud_hello_timeout_cb(lws_sorted_usec_list_t *sul)
{
	struct cloud *c = lws_container_of(sul, struct cloud, sul_deadline);

	if (c->state == CS_HELLO)
		cloud_drop(c, 4005, "no HELLO_ACK from the cloud in time");
}

/* ---- downstream -------------------------------------------------------------- */

static void cloud_on_hello_ack(struct cloud *c, uint64_t ack_seq)
{
	uint64_t last = outbox_last_seq(c->ob);

	if (ack_seq > last && outbox_renumber(c->ob, ack_seq))
		LOGW("cannot renumber the outbox");
	if (outbox_ack(c->ob, ack_seq))
		LOGW("cannot trim the outbox");
	c->hello_ack = c->acked = c->last_sent = ack_seq;
	c->in_n = 0;
	c->state = CS_READY;
	c->attempt = 0;
	c->auth_failed = false;
	c->last_error[0] = '\0';
	c->connected_since = util_now_ms();
	lws_sul_cancel(&c->sul_deadline);
	LOGI("cloud link up (%s), the cloud has frames up to %" PRIu64, c->url, ack_seq);
	cloud_queue_status(c);
	cloud_sched(c, &c->sul_pump, cloud_pump_cb, 0);
	cloud_sched(c, &c->sul_flush, cloud_flush_cb, (int64_t)c->cfg.progress_interval * 1000);
	cloud_sched(c, &c->sul_status, cloud_status_cb, (int64_t)c->cfg.status_interval * 1000);
}

static void cloud_on_ack(struct cloud *c, uint64_t ack)
{
	if (ack > c->last_sent && ack > c->hello_ack) {
		cloud_drop(c, 4002, "ACK beyond the frames sent");
		return;
	}
	if (ack <= c->acked)
		return;                       /* stale */
	if (outbox_ack(c->ob, ack))
		LOGW("cannot trim the outbox");
	c->acked = ack;
	c->last_ack_time = util_mono_ms();
	while (c->in_n && c->inflight[c->in_head] <= ack) {
		c->in_head = (c->in_head + 1) % PROTO_WINDOW;
		c->in_n--;
	}
	cloud_want_write(c);
}

static void cloud_on_frame(struct cloud *c, const uint8_t *buf, size_t len)
{
	struct err_info e = { 0 };
	struct proto_down d;
	int rc = proto_decode(buf, len, &d, &e);

	c->frames_received++;
	if (c->state == CS_HELLO && (rc || (d.type != PROTO_DOWN_HELLO_ACK &&
					    d.type != PROTO_DOWN_ERROR))) {
		cloud_drop(c, 4002, "the cloud's first frame is not HELLO_ACK");
	} else if (rc && proto_down_wants_reply(rc, &d)) {
		c->commands++;
		if (sync_refuse(&c->sync, &d, rc, &e))
			LOGW("cannot queue a REPLY");
		cloud_want_write(c);
	} else if (rc) {
		LOGW("bad frame from the cloud: %s", err_text(&e));
		cloud_send_error(c, proto_error_code(rc, d.type), e.text, d.message_id);
	} else if (d.type == PROTO_DOWN_HELLO_ACK) {
		if (c->state != CS_HELLO)
			cloud_drop(c, 4002, "a second HELLO_ACK");
		else
			cloud_on_hello_ack(c, d.ack);
	} else if (d.type == PROTO_DOWN_ACK) {
		cloud_on_ack(c, d.ack);
	} else if (d.type == PROTO_DOWN_ERROR) {
		cloud_error(c, "the cloud says %s: %s", d.code, d.message);
		LOGW("%s", c->last_error);
		c->auth_failed = c->auth_failed || !strcmp(d.code, "unauthorized");
	} else {
		c->commands++;
		if (sync_apply(&c->sync, &d))
			LOGW("cannot queue the REPLY to %s", d.message_id);
		cloud_want_write(c);
	}
	proto_down_clear(&d);
}

/* Reassembles one message from its fragments; handles it when whole. */
static int cloud_receive(struct cloud *c, struct lws *wsi, const void *in, size_t len)
{
	uint8_t *nb;

	if (c->close_code)
		return 0;                     /* closing: nothing more is taken */
	cloud_alive(c);
	if (!c->rx_len)
		c->rx_binary = lws_frame_is_binary(wsi);
	/* not -1 from here: lws 4.1 frees twice when a receive callback closes
	 * a client in the middle of a long message; close from WRITEABLE */
	if (c->rx_len + len > PROTO_FRAME_MAX) {
		cloud_drop(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "a frame over 1 MiB from the cloud");
		free(c->rx);
		c->rx = NULL;
		c->rx_len = 0;
		return 0;
	}
	nb = realloc(c->rx, c->rx_len + len + 1);
	if (!nb)
		return -1;
	c->rx = nb;
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return 0;
	if (c->rx_binary) {
		cloud_drop(c, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "a binary frame from the cloud");
		c->rx_len = 0;
		return 0;
	}
	cloud_on_frame(c, c->rx, c->rx_len);
	c->rx_len = 0;
	return 0;
}

/* ---- lws callback ----------------------------------------------------------------- */

static int cloud_append_auth(struct cloud *c, struct lws *wsi, void *in, size_t len)
{
	unsigned char **p = (unsigned char **)in, *end = *p + len;
	char hdr[sizeof(c->token) + 8];
	int n = snprintf(hdr, sizeof(hdr), "Bearer %s", c->token);

	if (!c->token[0])
		return 0;
	return lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
					    (unsigned char *)hdr, n, p, end) ? -1 : 0;
}

static void cloud_established(struct cloud *c, struct lws *wsi)
{
	struct proto_hello h = { c->gateway_id, OTAGW_VERSION, outbox_last_seq(c->ob), 0 };
	char *f = NULL;
	size_t n;

	c->wsi = wsi;
	c->state = CS_HELLO;
	c->reconnects += c->frames_received || c->frames_sent || c->reconnects ? 1 : 0;
	if (proto_enc_hello(&h, &f, &n)) {
		cloud_drop(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "cannot encode GATEWAY_HELLO");
		return;
	}
	cloud_ctrl(c, f);
	cloud_sched(c, &c->sul_deadline, cloud_hello_timeout_cb, PROTO_HELLO_TIMEOUT_MS);
	cloud_sched(c, &c->sul_ping, cloud_ping_cb, (int64_t)c->cfg.ping_interval * 1000);
}

static void cloud_peer_close(struct cloud *c, const uint8_t *in, size_t len)
{
	unsigned code = len >= 2 ? (unsigned)(in[0] << 8 | in[1]) : 0;

	cloud_error(c, "closed by the cloud (%u%s%.*s)", code, len > 2 ? ": " : "",
		    len > 2 ? (int)(len - 2 > 120 ? 120 : len - 2) : 0, len > 2 ? in + 2 : in);
	if (code == 4001)
		c->auth_failed = true;
}

static int cloud_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct cloud *c = user;

	if (!c)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		return cloud_append_auth(c, wsi, in, len);
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		cloud_established(c, wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return cloud_receive(c, wsi, in, len);
	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		cloud_alive(c);
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return c->wsi == wsi ? cloud_writeable(c) : 0;
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		cloud_peer_close(c, in, len);
		return 0;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
		char why[CLOUD_ERR_MAX], text[120];

		snprintf(text, sizeof(text), "%.100s", in ? (const char *)in : "connection failed");
		if (c->u.tls && fetch_tls_cert_refused(wsi, text, sizeof(text)))
			snprintf(why, sizeof(why), "the certificate of %.100s is refused: %s",
				 c->u.host_hdr, text);
		else
			snprintf(why, sizeof(why), "cannot connect to %.100s: %s", c->u.host_hdr, text);
		c->auth_failed = c->auth_failed ||
				 (in && (strstr(in, "401") || strstr(in, "unauthorized")));
		cloud_link_down(c, why);
		return 0;
	}
	case LWS_CALLBACK_CLIENT_CLOSED:
		cloud_link_down(c, c->last_error[0] ? NULL : "the connection closed");
		return 0;
	default:
		return 0;
	}
}

/* ---- life cycle -------------------------------------------------------------------- */

/* permessage-deflate (RFC 7692) is offered on every connection; a cloud that
 * does not accept it gets plain frames. Upstream JSON (PROGRESS_BATCH above
 * all: repeated keys, device ids and times) shrinks several times over. */
static const struct lws_extension cloud_extensions[] = {
	{ "permessage-deflate", lws_extension_callback_pm_deflate,
	  "permessage-deflate; client_max_window_bits" },
	{ NULL, NULL, NULL }
};

static int cloud_vhost(struct cloud *c, struct err_info *e)
{
	struct lws_context_creation_info info;
	bool ca = c->ca_file[0] != '\0';

	memset(&info, 0, sizeof(info));
	info.vhost_name = "cloud";
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = c->protocols;
	info.extensions = cloud_extensions;
	/* OpenSSL and the CA store only for a wss:// cloud (a ws:// one on a
	 * trusted network does without their ~4 MiB). */
	if (c->u.tls)
		info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
			       (ca ? LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS : 0);
	info.client_ssl_ca_filepath = ca && c->u.tls ? c->ca_file : NULL;
	c->vh = lws_create_vhost(c->ctx, &info);
	return c->vh ? 0 : err_set(e, -EINVAL, "cannot create the cloud client vhost%s",
				   ca ? " (check [cloud] ca_file)" : "");
}

static int cloud_parse_url(struct cloud *c, struct err_info *e)
{
	char http[OTAGW_URL_MAX + 16];
	const char *why;

	if (!strncmp(c->url, "wss://", 6))
		snprintf(http, sizeof(http), "https://%s", c->url + 6);
	else if (!strncmp(c->url, "ws://", 5))
		snprintf(http, sizeof(http), "http://%s", c->url + 5);
	else
		return err_set(e, -EINVAL, "[cloud] url must start with ws:// or wss://");
	why = fetch_url_parse(http, &c->u);
	return why ? err_set(e, -EINVAL, "[cloud] url: %s", why) : 0;
}

int cloud_new(struct cloud **out, struct lws_context *ctx, struct core *core,
	      struct outbox *ob, struct resolve *res, const struct cloud_cfg *cfg,
	      struct err_info *e)
{
	struct cloud *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return err_set(e, -ENOMEM, "out of memory");
	c->ctx = ctx;
	c->core = core;
	c->ob = ob;
	c->res = res;
	c->cfg = *cfg;
	util_strlcpy(c->url, cfg->url, sizeof(c->url));
	util_strlcpy(c->gateway_id, cfg->gateway_id, sizeof(c->gateway_id));
	util_strlcpy(c->token, cfg->token ? cfg->token : "", sizeof(c->token));
	util_strlcpy(c->ca_file, cfg->ca_file ? cfg->ca_file : "", sizeof(c->ca_file));
	if (!c->cfg.ping_interval)
		c->cfg.ping_interval = PROTO_PING_INTERVAL_MS / 1000;
	c->sync = (struct sync){ core, ob, c->gateway_id };
	c->protocols[0] = (struct lws_protocols){ PROTO_SUBPROTOCOL, cloud_cb, 0, 4096, 0, NULL,
						  0 };
	rc = cloud_parse_url(c, e);
	if (!rc)
		rc = cloud_vhost(c, e);
	if (rc) {
		free(c);
		return rc;
	}
	c->state = CS_BACKOFF;
	lws_sul_schedule(ctx, 0, &c->sul_conn, cloud_connect_cb, 0);
	LOGI("cloud sync with %s as gateway %s", c->url, c->gateway_id);
	*out = c;
	return 0;
}

void cloud_stop(struct cloud *c)
{
	if (!c)
		return;
	c->stopping = true;
	lws_sul_cancel(&c->sul_conn);
	cloud_timers_off(c);
	resolve_cancel(c->rq);
	c->rq = NULL;
	if (c->wsi) {
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	}
}

void cloud_free(struct cloud *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->ctrl_n; i++)
		free(c->ctrl[i]);
	free(c->rx);
	free(c);
}

void *cloud_status(void *arg)
{
	struct cloud *c = arg;
	cJSON *o = cJSON_CreateObject();
	int64_t frames = 0, prog = 0;

	if (!o)
		return NULL;
	if (!c) {
		cJSON_AddStringToObject(o, "state", "disabled");
		return o;
	}
	cJSON_AddStringToObject(o, "state", cloud_state_names[c->state]);
	cJSON_AddStringToObject(o, "url", c->url);
	cJSON_AddStringToObject(o, "gatewayId", c->gateway_id);
	cJSON_AddStringToObject(o, "lastError", c->last_error);
	if (!outbox_depth(c->ob, &frames, &prog)) {
		cJSON_AddNumberToObject(o, "outbox", (double)frames);
		cJSON_AddNumberToObject(o, "pendingProgress", (double)prog);
	}
	cJSON_AddNumberToObject(o, "lastSeq", (double)outbox_last_seq(c->ob));
	cJSON_AddNumberToObject(o, "lastSent", (double)c->last_sent);
	cJSON_AddNumberToObject(o, "lastAck", (double)c->acked);
	cJSON_AddNumberToObject(o, "inFlight", c->in_n);
	cJSON_AddNumberToObject(o, "reconnects", (double)c->reconnects);
	cJSON_AddNumberToObject(o, "connectedSince", (double)c->connected_since);
	cJSON_AddNumberToObject(o, "framesSent", (double)c->frames_sent);
	cJSON_AddNumberToObject(o, "framesReceived", (double)c->frames_received);
	cJSON_AddNumberToObject(o, "commands", (double)c->commands);
	return o;
}

void cloud_metrics(void *arg, struct metrics_out *o)
{
	struct cloud *c = arg;
	int64_t frames = 0, prog = 0;
	struct outbox_stats os;

	metrics_family(o, "otagw_cloud_link", "gauge",
		       "The cloud link's state (1 for the current one).");
	for (size_t i = 0; i < sizeof(cloud_state_names) / sizeof(cloud_state_names[0]); i++)
		metrics_sample(o, "otagw_cloud_link", c->state == i, 1, "state",
			       cloud_state_names[i]);
	metrics_family(o, "otagw_cloud_connected", "gauge", "1 while the cloud link is up.");
	metrics_sample(o, "otagw_cloud_connected", c->state == CS_READY, 0);
	metrics_family(o, "otagw_cloud_reconnects_total", "counter", "Cloud link attempts.");
	metrics_sample(o, "otagw_cloud_reconnects_total", (double)c->reconnects, 0);
	metrics_family(o, "otagw_cloud_frames_sent_total", "counter", "Frames sent upstream.");
	metrics_sample(o, "otagw_cloud_frames_sent_total", (double)c->frames_sent, 0);
	metrics_family(o, "otagw_cloud_commands_total", "counter", "Commands the cloud sent.");
	metrics_sample(o, "otagw_cloud_commands_total", (double)c->commands, 0);
	if (!outbox_depth(c->ob, &frames, &prog)) {
		metrics_family(o, "otagw_outbox_frames", "gauge",
			       "Upstream frames queued and not yet acknowledged by the cloud.");
		metrics_sample(o, "otagw_outbox_frames", (double)frames, 0);
		metrics_family(o, "otagw_outbox_progress_pending", "gauge",
			       "Records with coalesced progress not yet sent.");
		metrics_sample(o, "otagw_outbox_progress_pending", (double)prog, 0);
	}
	outbox_stats(c->ob, &os);
	metrics_family(o, "otagw_outbox_frames_queued_total", "counter",
		       "Frames queued for the cloud since start.");
	metrics_sample(o, "otagw_outbox_frames_queued_total", (double)os.frames, 0);
	metrics_family(o, "otagw_outbox_bytes_queued_total", "counter",
		       "Bytes of the frames queued for the cloud since start.");
	metrics_sample(o, "otagw_outbox_bytes_queued_total", (double)os.bytes, 0);
}
