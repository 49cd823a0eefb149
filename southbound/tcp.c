/* SPDX-License-Identifier: MIT */
/* tcp.c - raw TCP device sessions in the lws loop.
 * RX: bytes go into a bounded receive buffer; the codec cuts whole frames,
 * each is decoded and handed to the core. TX: the core's messages are
 * encoded into a bounded send queue, written from RAW_WRITEABLE. */
#define LOG_MOD "tcp"
#include "tcp.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msg.h"
#include "util.h"

#define TCP_WRITE_MAX 65536
#define TCP_CLOSE_GRACE 5           /* s to flush a final error before closing */
/* Reading pauses while more than TCP_TXQ_HIGH bytes wait to go out (so one
 * more reply, at most ~90 KiB encoded, always fits), resumes under
 * TCP_TXQ_LOW. A device that reads nothing for TCP_STALL_TIMEOUT s while
 * paused is dropped. */
#define TCP_TXQ_HIGH (TCP_TXQ_MAX / 2)
#define TCP_TXQ_LOW (TCP_TXQ_MAX / 4)
#define TCP_STALL_TIMEOUT 10
#define TCP_RX_SLACK 65536          /* one lws read (pt_serv_buf_size) */

struct tcp {
	struct core *core;
	struct tcp_cfg cfg;
	struct lws_vhost *vh;
	size_t count;
	struct lws_protocols protocols[2];
};

/* Per connection; lws allocates and zeroes it (per_session_data_size). */
struct tcp_conn {
	struct session s;             /* first: the core's view */
	struct tcp *t;
	struct lws *wsi;
	struct buf rx, tx;
	int errors;
	bool closing;                 /* close once tx is flushed */
	bool paused;                  /* rx flow off until tx drains */
	bool adopted;
	char peer[64];
};

static struct tcp_conn *tcp_conn_of(struct session *s)
{
	return lws_container_of(s, struct tcp_conn, s);
}

/* ---- session ops -------------------------------------------------------- */

static int tcp_send(struct session *s, const struct msg *m)
{
	struct tcp_conn *c = tcp_conn_of(s);
	int rc;

	if (c->closing)
		return -ENOTCONN;
	rc = c->t->cfg.codec->encode(m, &c->tx);
	if (rc == -ENOBUFS) {
		LOGW("device %s (%s) does not read: send queue full, dropping it",
		     s->device_id[0] ? s->device_id : "?", c->peer);
		c->closing = true;
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		return rc;
	}
	if (!rc)
		lws_callback_on_writable(c->wsi);
	return rc;
}

static void tcp_close_op(struct session *s)
{
	struct tcp_conn *c = tcp_conn_of(s);

	LOGI("closing connection %s of device %s (replaced or deleted)", c->peer,
	     s->device_id[0] ? s->device_id : "?");
	c->closing = true;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static int tcp_image_url(struct session *s, const char *firmware_id, char *buf, size_t cap)
{
	const char *tmpl = tcp_conn_of(s)->t->cfg.image_url;
	const char *mark = strstr(tmpl, "{firmwareId}");
	int n;

	if (!mark)
		return util_strlcpy(buf, tmpl, cap);
	n = snprintf(buf, cap, "%.*s%s%s", (int)(mark - tmpl), tmpl, firmware_id,
		     mark + strlen("{firmwareId}"));
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static const struct transport_ops tcp_ops = {
	.name = "tcp",
	.send = tcp_send,
	.close = tcp_close_op,
	.image_url = tcp_image_url,
};

/* ---- errors to the device ----------------------------------------------- */

/* Sends an ERROR message; with fatal, the connection closes once it is
 * flushed (or after TCP_CLOSE_GRACE seconds). */
static void tcp_error(struct tcp_conn *c, const char *message_id, const char *code,
		      const char *text, bool fatal)
{
	struct msg m;

	msg_init(&m, MSG_ERROR);
	util_strlcpy(m.device_id, c->s.device_id, sizeof(m.device_id));
	util_strlcpy(m.message_id, message_id ? message_id : "", sizeof(m.message_id));
	util_strlcpy(m.code, code, sizeof(m.code));
	util_strlcpy(m.error_reason, text, sizeof(m.error_reason));
	m.timestamp = util_now_ms();
	if (tcp_send(&c->s, &m) == 0 && fatal) {
		c->closing = true;
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, TCP_CLOSE_GRACE);
	}
	msg_clear(&m);
	LOGD("device %s (%s): error %s: %s", c->s.device_id[0] ? c->s.device_id : "?", c->peer,
	     code, text);
}

/* ---- the first message: identify, authenticate, bind -------------------- */

static int tcp_bind(struct tcp_conn *c, const struct msg *m)
{
	struct tcp *t = c->t;
	struct err_info e = { 0 };

	if (!util_id_valid(m->device_id)) {
		tcp_error(c, m->message_id, "unknown_device", "the first message needs a deviceId",
			  true);
		return -EINVAL;
	}
	if (t->cfg.auth_token && core_authenticate(t->core, m->device_id, m->secure_key)) {
		LOGW("device %s (%s): authentication failed", m->device_id, c->peer);
		tcp_error(c, m->message_id, "auth_failed", "missing or wrong headers.secureKey", true);
		return -OTAGW_EAUTH;
	}
	util_strlcpy(c->s.product_id, m->product_id[0] ? m->product_id : t->cfg.default_product,
		     sizeof(c->s.product_id));
	if (core_session_bind(t->core, &c->s, m->device_id, &e)) {
		tcp_error(c, m->message_id, "unknown_device", err_text(&e), true);
		return e.code ? e.code : -ENOENT;
	}
	LOGI("device %s connected from %s", m->device_id, c->peer);
	return 0;
}

static void tcp_handle(struct tcp_conn *c, const struct msg *m)
{
	struct err_info e = { 0 };
	int rc;

	if (!c->s.device_id[0] && tcp_bind(c, m))
		return;
	rc = core_handle(c->t->core, &c->s, m, &e);
	if (rc)
		tcp_error(c, m->message_id, "refused", err_text(&e), false);
}

/* ---- receive ------------------------------------------------------------ */

/* Pauses reading while the send queue is above its high-water mark. */
static bool tcp_backpressure(struct tcp_conn *c)
{
	if (c->tx.len <= TCP_TXQ_HIGH)
		return false;
	if (!c->paused) {
		c->paused = true;
		lws_rx_flow_control(c->wsi, 0);
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, TCP_STALL_TIMEOUT);
	}
	return true;
}

/* Cuts, decodes and handles the first frame of rx: 1 when one was
 * consumed, 0 when more bytes are needed, -1 when the connection closes. */
static int tcp_one_frame(struct tcp_conn *c)
{
	const struct codec_ops *codec = c->t->cfg.codec;
	struct err_info e = { 0 };
	ssize_t n = codec->frame(c->rx.data, c->rx.len, c->t->cfg.max_frame, &e);
	struct msg m;
	bool last;
	int rc;

	if (n == 0)
		return 0;
	if (n < 0) {
		tcp_error(c, NULL, n == -EMSGSIZE ? "too_large" : "bad_message", err_text(&e), true);
		return -1;
	}
	rc = codec->decode(c->rx.data, (size_t)n, &m, &e);
	buf_consume(&c->rx, (size_t)n);
	if (rc == -ENODATA)
		return 1;
	if (!rc) {
		tcp_handle(c, &m);
		msg_clear(&m);
		return 1;
	}
	/* an unidentified peer that cannot speak gets no second try */
	last = ++c->errors >= TCP_ERRORS_MAX || !c->s.device_id[0];
	tcp_error(c, NULL, "bad_message", err_text(&e), last);
	return last ? -1 : 1;
}

/* Handles every whole frame in rx, unless back-pressure pauses us. -1 when
 * the stream is beyond repair (the connection is closing). */
static int tcp_frames(struct tcp_conn *c)
{
	int rc = 1;

	while (rc > 0 && !c->closing && c->rx.len && !tcp_backpressure(c))
		rc = tcp_one_frame(c);
	return rc < 0 ? -1 : 0;
}

static int tcp_rx(struct tcp_conn *c, const uint8_t *in, size_t len)
{
	if (!c->paused)
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, (int)c->t->cfg.idle_timeout);
	while (len && !c->closing) {
		size_t n = len < buf_room(&c->rx) ? len : buf_room(&c->rx);

		if (!n) {   /* a full buffer without a whole frame */
			tcp_error(c, NULL, "too_large", "message longer than [tcp] max_frame", true);
			return 0;
		}
		if (buf_append(&c->rx, in, n))
			return -1;
		in += n;
		len -= n;
		if (tcp_frames(c))
			return 0;
	}
	return 0;
}

/* ---- transmit ----------------------------------------------------------- */

static int tcp_writeable(struct tcp_conn *c)
{
	uint8_t buf[LWS_PRE + TCP_WRITE_MAX];
	size_t n = c->tx.len < TCP_WRITE_MAX ? c->tx.len : TCP_WRITE_MAX;

	core_sync(c->t->core);
	if (n) {
		memcpy(buf + LWS_PRE, c->tx.data, n);
		if (lws_write(c->wsi, buf + LWS_PRE, n, LWS_WRITE_RAW) < (int)n)
			return -1;
		buf_consume(&c->tx, n);
	}
	if (c->paused && !c->closing) {
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, TCP_STALL_TIMEOUT);
		if (c->tx.len < TCP_TXQ_LOW) {
			c->paused = false;
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, (int)c->t->cfg.idle_timeout);
			lws_rx_flow_control(c->wsi, 1);
			if (tcp_frames(c) < 0 && !c->tx.len)
				return -1;
		}
	}
	if (c->tx.len)
		lws_callback_on_writable(c->wsi);
	else if (c->closing)
		return -1;
	return 0;
}

/* ---- lws glue ----------------------------------------------------------- */

static int tcp_adopt(struct tcp *t, struct tcp_conn *c, struct lws *wsi)
{
	if (t->count >= t->cfg.max_connections) {
		LOGW("refusing a connection: [tcp] max_connections = %u reached",
		     t->cfg.max_connections);
		return -1;
	}
	c->t = t;
	c->wsi = wsi;
	c->s.ops = &tcp_ops;
	c->s.max_chunk = t->cfg.max_chunk;
	/* room for a whole frame plus one read that arrives while paused */
	buf_init(&c->rx, t->cfg.max_frame + TCP_RX_SLACK);
	buf_init(&c->tx, TCP_TXQ_MAX);
	if (!lws_get_peer_simple(wsi, c->peer, sizeof(c->peer)))
		util_strlcpy(c->peer, "?", sizeof(c->peer));
	c->adopted = true;
	t->count++;
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, (int)t->cfg.idle_timeout);
	return 0;
}

static void tcp_closed(struct tcp_conn *c)
{
	if (!c->adopted)
		return;
	if (c->s.device_id[0])
		LOGI("device %s (%s) disconnected", c->s.device_id, c->peer);
	core_session_gone(c->t->core, &c->s);
	buf_clear(&c->rx);
	buf_clear(&c->tx);
	c->t->count--;
	c->adopted = false;
}

static int tcp_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		  size_t len)
{
	struct tcp_conn *c = user;
	struct tcp *t = lws_get_vhost_user(lws_get_vhost(wsi));

	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		return tcp_adopt(t, c, wsi);
	case LWS_CALLBACK_RAW_RX:
		return c->closing ? 0 : tcp_rx(c, in, len);
	case LWS_CALLBACK_RAW_WRITEABLE:
		return tcp_writeable(c);
	case LWS_CALLBACK_RAW_CLOSE:
		tcp_closed(c);
		return 0;
	default:
		return 0;
	}
}

int tcp_open(struct tcp **out, struct lws_context *ctx, struct core *core,
	     const struct tcp_cfg *cfg, struct err_info *e)
{
	struct lws_context_creation_info info;
	struct tcp *t = calloc(1, sizeof(*t));

	if (!t)
		return err_set(e, -ENOMEM, "out of memory");
	t->core = core;
	t->cfg = *cfg;
	t->protocols[0] = (struct lws_protocols){ "otagw-tcp", tcp_cb, sizeof(struct tcp_conn),
						  0, 0, NULL, 0 };
	memset(&info, 0, sizeof(info));
	info.vhost_name = "tcp";
	info.port = (int)cfg->port;
	info.iface = cfg->bind;
	info.protocols = t->protocols;
	info.user = t;
	info.options = LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG |
		       LWS_SERVER_OPTION_DISABLE_IPV6;
	info.listen_accept_role = "raw-skt";
	info.listen_accept_protocol = "otagw-tcp";
	t->vh = lws_create_vhost(ctx, &info);
	if (!t->vh) {
		free(t);
		return err_set(e, -EADDRINUSE, "cannot listen for devices on %s:%u", cfg->bind,
			       cfg->port);
	}
	LOGI("TCP devices on %s:%u (codec %s, auth %s)", cfg->bind, cfg->port, cfg->codec->name,
	     cfg->auth_token ? "token" : "none");
	*out = t;
	return 0;
}

void tcp_free(struct tcp *t)
{
	free(t);
}

size_t tcp_count(const struct tcp *t)
{
	return t->count;
}
