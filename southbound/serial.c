/* SPDX-License-Identifier: MIT */
/* serial.c - termios ports adopted into the loop, JSON lines to the core,
 * images by YMODEM (see serial.h). One struct serial_port per [serial NAME];
 * its state is OPEN (adopted, reading) or CLOSED (waiting for a reopen).
 * The transfer of a port is a small life cycle of its own:
 *   idle -> armed (a reply/push said ymodem:<id>; start timer runs)
 *        -> active (the device sent 'C': every line byte goes to ymodem)
 *        -> idle (done, failed, or the port closed). */
#define LOG_MOD "serial"
#include "serial.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/serial.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "buf.h"
#include "codec.h"
#include "images.h"
#include "log.h"
#include "msg.h"
#include "util.h"
#include "ymodem.h"

#define SERIAL_TXQ_MAX (64 * 1024)  /* encoded messages waiting for the line */
#define SERIAL_READ_MAX 4096
#define SERIAL_BACKOFF_MIN 200u     /* ms, first reopen delay */
#define SERIAL_PROGRESS_STEP 10     /* % between derived progress updates */
#define SERIAL_URL_PREFIX "ymodem:"
/* us between a receiver's answer and our next block: lrzsz's rz flushes its
 * input right after writing each ACK, so a block that arrives at once is
 * sometimes thrown away and costs a whole ymodem_timeout. */
#define SERIAL_TURNAROUND_US 1000

enum serial_state { SP_CLOSED, SP_OPEN };
enum serial_xstate { SX_IDLE, SX_ARMED, SX_ACTIVE };

struct serial_xfer {
	enum serial_xstate state;
	char fw[OTAGW_ID_MAX];
	int fd;                       /* the image, while active */
	uint64_t size;
	int last_pct;
	struct ymodem ym;
	lws_sorted_usec_list_t sul;   /* start timeout (armed), ymodem deadline */
	lws_sorted_usec_list_t turn;  /* the pause before answering the receiver */
	/* for GET /api/serial: the last transfer */
	char last_state[16];          /* "", "waiting", "sending", "done", "failed" */
	char last_fw[OTAGW_ID_MAX];
	uint64_t last_bytes, last_size;
};

struct serial_port {
	struct session s;             /* first: the core's view */
	struct serial *owner;
	const struct config_serial *cfg;
	enum serial_state state;
	struct lws *wsi;
	int fd;
	unsigned backoff_ms;
	unsigned reopens;
	bool ever_open;
	char error[160];
	lws_sorted_usec_list_t reopen_sul;
	struct buf line;              /* the partial line */
	bool discarding;              /* an overlong line: drop up to its '\n' */
	struct buf tx;
	struct serial_xfer x;
	unsigned long rx_lines, bad_lines, xfer_ok, xfer_failed;
};

struct serial {
	struct core *core;
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct lws_protocols protocols[2];
	bool stopping;
	size_t n;
	struct config_serial *cfgs;
	struct serial_port *ports;
};

static void serial_open(struct serial_port *p);
static void serial_xfer_end(struct serial_port *p, const char *reason);

static const char *serial_dev(const struct serial_port *p)
{
	return p->s.device_id[0] ? p->s.device_id : "?";
}

/* ---- termios ------------------------------------------------------------ */

static speed_t serial_speed(unsigned baud)
{
	static const struct { unsigned baud; speed_t sp; } map[] = {
		{ 1200, B1200 }, { 2400, B2400 }, { 4800, B4800 }, { 9600, B9600 },
		{ 19200, B19200 }, { 38400, B38400 }, { 57600, B57600 }, { 115200, B115200 },
		{ 230400, B230400 }, { 460800, B460800 }, { 500000, B500000 },
		{ 576000, B576000 }, { 921600, B921600 }, { 1000000, B1000000 },
		{ 1500000, B1500000 }, { 2000000, B2000000 }, { 3000000, B3000000 },
		{ 4000000, B4000000 },
	};

	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(map); i++)
		if (map[i].baud == baud)
			return map[i].sp;
	return B115200;    /* config_validate() allows only the rates above */
}

static int serial_termios(int fd, const struct config_serial *c)
{
	static const tcflag_t bits[] = { CS5, CS6, CS7, CS8 };
	struct termios t;
	speed_t sp = serial_speed(c->baud);

	if (tcgetattr(fd, &t))
		return -errno;
	cfmakeraw(&t);
	if (cfsetispeed(&t, sp) || cfsetospeed(&t, sp))
		return -errno;
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
	t.c_cflag |= CLOCAL | CREAD | bits[c->data_bits - 5];
	if (c->parity != CONFIG_PARITY_NONE)
		t.c_cflag |= PARENB | (c->parity == CONFIG_PARITY_ODD ? PARODD : 0);
	if (c->stop_bits == 2)
		t.c_cflag |= CSTOPB;
	if (c->flow == CONFIG_FLOW_RTSCTS)
		t.c_cflag |= CRTSCTS;
	t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY);
	if (c->flow == CONFIG_FLOW_XONXOFF)
		t.c_iflag |= IXON | IXOFF;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSANOW, &t))
		return -errno;
	(void)tcflush(fd, TCIOFLUSH);
	if (c->rs485) {
		struct serial_rs485 r = { .flags = SER_RS485_ENABLED | SER_RS485_RTS_ON_SEND };

		if (ioctl(fd, TIOCSRS485, &r))
			return -errno;
	}
	return 0;
}

/* ---- open, close, reopen -------------------------------------------------- */

static void serial_reopen_cb(lws_sorted_usec_list_t *sul)
{
	serial_open(lws_container_of(sul, struct serial_port, reopen_sul));
}

static void serial_schedule_reopen(struct serial_port *p)
{
	unsigned cap = p->cfg->reopen_max_delay * 1000;

	if (p->owner->stopping)
		return;
	p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : SERIAL_BACKOFF_MIN;
	if (p->backoff_ms > cap)
		p->backoff_ms = cap;
	lws_sul_schedule(p->owner->ctx, 0, &p->reopen_sul, serial_reopen_cb,
			 (lws_usec_t)p->backoff_ms * 1000);
}

/* Records why the port is not open; logs only when the reason changes. */
static void serial_fail_open(struct serial_port *p, const char *what, int rc)
{
	char text[sizeof(p->error)];

	snprintf(text, sizeof(text), "%s: %s", what, strerror(-rc));
	if (strcmp(text, p->error))
		LOGW("port %s (%s): %s; retrying", p->cfg->name, p->cfg->path, text);
	util_strlcpy(p->error, text, sizeof(p->error));
	serial_schedule_reopen(p);
}

static void serial_open(struct serial_port *p)
{
	lws_sock_file_fd_type u;
	int fd = open(p->cfg->path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	int rc = fd < 0 ? -errno : serial_termios(fd, p->cfg);

	if (rc) {
		if (fd >= 0)
			close(fd);
		serial_fail_open(p, fd < 0 ? "open" : "termios", rc);
		return;
	}
	u.filefd = fd;
	p->wsi = lws_adopt_descriptor_vhost(p->owner->vh, LWS_ADOPT_RAW_FILE_DESC, u,
					    "otagw-serial", NULL);
	if (!p->wsi) {
		serial_fail_open(p, "adopt", -ENOMEM);
		return;
	}
	lws_set_opaque_user_data(p->wsi, p);
	p->fd = fd;
	p->state = SP_OPEN;
	p->backoff_ms = 0;
	p->error[0] = '\0';
	p->reopens += p->ever_open;
	p->ever_open = true;
	LOGI("port %s open on %s (%u baud)", p->cfg->name, p->cfg->path, p->cfg->baud);
}

/* RAW_CLOSE_FILE: lws has closed the descriptor. */
static void serial_closed(struct serial_port *p)
{
	struct serial *s = p->owner;

	p->wsi = NULL;
	p->fd = -1;
	p->state = SP_CLOSED;
	if (p->x.state != SX_IDLE)
		serial_xfer_end(p, "ymodem: the port closed during the transfer");
	if (p->s.device_id[0]) {
		LOGI("device %s on port %s is gone", p->s.device_id, p->cfg->name);
		core_session_gone(s->core, &p->s);
		p->s.device_id[0] = '\0';
	}
	buf_clear(&p->line);
	buf_clear(&p->tx);
	p->discarding = false;
	if (s->stopping)
		return;
	if (!p->error[0])
		util_strlcpy(p->error, "the port closed", sizeof(p->error));
	LOGW("port %s (%s) closed; reopening", p->cfg->name, p->cfg->path);
	serial_schedule_reopen(p);
}

/* ---- session ops -------------------------------------------------------- */

static struct serial_port *serial_port_of(struct session *s)
{
	return lws_container_of(s, struct serial_port, s);
}

static void serial_want_write(struct serial_port *p)
{
	if (p->wsi)
		lws_callback_on_writable(p->wsi);
}

static void serial_start_cb(lws_sorted_usec_list_t *sul);

/* A reply or push handed the device a ymodem: url: wait for its 'C'. */
static void serial_arm(struct serial_port *p, const char *fw)
{
	if (p->x.state == SX_ACTIVE)
		return;
	util_strlcpy(p->x.fw, fw, sizeof(p->x.fw));
	p->x.state = SX_ARMED;
	util_strlcpy(p->x.last_state, "waiting", sizeof(p->x.last_state));
	util_strlcpy(p->x.last_fw, fw, sizeof(p->x.last_fw));
	p->x.last_bytes = 0;
	p->x.last_size = 0;
	lws_sul_schedule(p->owner->ctx, 0, &p->x.sul, serial_start_cb,
			 (lws_usec_t)p->cfg->ymodem_start_timeout * LWS_US_PER_SEC);
}

static int serial_send(struct session *s, const struct msg *m)
{
	struct serial_port *p = serial_port_of(s);
	bool offers = (m->type == MSG_REQUEST_FIRMWARE_REPLY && m->success) ||
		      m->type == MSG_UPGRADE_FIRMWARE;
	int rc;

	if (p->state != SP_OPEN)
		return -ENOTCONN;
	rc = codec_jsonline.encode(m, &p->tx);
	if (rc)
		return rc;
	if (offers && !strncmp(m->url, SERIAL_URL_PREFIX, strlen(SERIAL_URL_PREFIX)))
		serial_arm(p, m->firmware_id);
	if (p->x.state != SX_ACTIVE)
		serial_want_write(p);
	return 0;
}

/* The device is now connected elsewhere (or deleted): forget it here; the
 * port stays open for whoever speaks next. */
static void serial_close_op(struct session *s)
{
	struct serial_port *p = serial_port_of(s);

	LOGI("device %s left port %s (replaced or deleted)", serial_dev(p), p->cfg->name);
	p->s.device_id[0] = '\0';
}

static int serial_image_url(struct session *s, const char *fw, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, SERIAL_URL_PREFIX "%s", fw);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static const struct transport_ops serial_ops = {
	.name = "serial",
	.send = serial_send,
	.close = serial_close_op,
	.image_url = serial_image_url,
};

static void serial_error(struct serial_port *p, const char *message_id, const char *code,
			 const char *text)
{
	struct msg m;

	msg_init(&m, MSG_ERROR);
	util_strlcpy(m.device_id, p->s.device_id, sizeof(m.device_id));
	util_strlcpy(m.message_id, message_id ? message_id : "", sizeof(m.message_id));
	util_strlcpy(m.code, code, sizeof(m.code));
	util_strlcpy(m.error_reason, text, sizeof(m.error_reason));
	m.timestamp = util_now_ms();
	if (serial_send(&p->s, &m))
		LOGD("port %s: error reply not queued", p->cfg->name);
	msg_clear(&m);
	LOGD("port %s (device %s): %s: %s", p->cfg->name, serial_dev(p), code, text);
}

/* ---- YMODEM transfer -------------------------------------------------------- */

static int serial_pread(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
	struct serial_xfer *x = ctx;
	ssize_t n = pread(x->fd, buf, len, (off_t)off);

	return n < 0 ? -errno : (int)n;
}

/* The device got a ymodem: url but never sent 'C'. */
static void serial_start_cb(lws_sorted_usec_list_t *sul)
{
	struct serial_port *p = lws_container_of(sul, struct serial_port, x.sul);
	char why[96];

	if (p->x.state != SX_ARMED)
		return;
	snprintf(why, sizeof(why), "ymodem: the device did not start the transfer within %u s",
		 p->cfg->ymodem_start_timeout);
	serial_xfer_end(p, why);
}

static void serial_tick_cb(lws_sorted_usec_list_t *sul);

static void serial_turn_cb(lws_sorted_usec_list_t *sul)
{
	struct serial_port *p = lws_container_of(sul, struct serial_port, x.turn);

	if (p->x.state == SX_ACTIVE)
		serial_want_write(p);
}

/* After every step: progress, the next deadline, writing (after the
 * turnaround pause when answering the receiver), the end. */
static void serial_xfer_step(struct serial_port *p, bool answer)
{
	struct serial_xfer *x = &p->x;
	uint64_t now = (uint64_t)util_mono_ms(), dl = ymodem_deadline(&x->ym);
	uint64_t acked = ymodem_acked(&x->ym);
	const uint8_t *out;
	int pct = x->size ? (int)(acked * 100 / x->size) : 100;

	if (acked > x->last_bytes)
		core_count_served(p->owner->core, "serial", acked - x->last_bytes);
	x->last_bytes = acked;
	pct -= pct % SERIAL_PROGRESS_STEP;
	if (pct > x->last_pct) {
		x->last_pct = pct;
		if (!p->s.reports_progress && pct > 0)
			(void)core_image_served(p->owner->core, p->s.device_id, x->fw,
						x->size * (uint64_t)pct / 100, x->size);
	}
	if (ymodem_output(&x->ym, &out) && answer)
		lws_sul_schedule(p->owner->ctx, 0, &x->turn, serial_turn_cb, SERIAL_TURNAROUND_US);
	else if (ymodem_output(&x->ym, &out))
		serial_want_write(p);
	else if (ymodem_state(&x->ym) == YMODEM_DONE)
		serial_xfer_end(p, NULL);
	else if (ymodem_state(&x->ym) == YMODEM_FAILED)
		serial_xfer_end(p, "");
	if (x->state == SX_ACTIVE && dl)
		lws_sul_schedule(p->owner->ctx, 0, &x->sul, serial_tick_cb,
				 (lws_usec_t)(dl > now ? dl - now : 0) * 1000);
}

/* After the receiver acknowledged EOT the file is delivered; only the
 * batch's end block is left, whose ACK a receiver on a pty often loses
 * (rz flushes its output). So that phase ends at its first timeout, or as
 * soon as the device writes anything that is not YMODEM (its next line). */
static bool serial_xfer_delivered(const struct serial_port *p)
{
	enum ymodem_state st = ymodem_state(&p->x.ym);

	return st == YMODEM_WAIT_END_C || st == YMODEM_WAIT_END_ACK;
}

static void serial_tick_cb(lws_sorted_usec_list_t *sul)
{
	struct serial_port *p = lws_container_of(sul, struct serial_port, x.sul);
	const uint8_t *out;

	if (p->x.state != SX_ACTIVE)
		return;
	if (serial_xfer_delivered(p) && !ymodem_output(&p->x.ym, &out)) {
		serial_xfer_end(p, NULL);
		return;
	}
	(void)ymodem_tick(&p->x.ym, (uint64_t)util_mono_ms());
	serial_xfer_step(p, false);
}

/* The device sent 'C' after a ymodem: url: start sending the image. */
static void serial_xfer_start(struct serial_port *p)
{
	struct serial_xfer *x = &p->x;
	struct core *core = p->owner->core;
	char name[YMODEM_NAME_MAX];
	struct ymodem_cfg yc = { 0 };
	uint64_t now = (uint64_t)util_mono_ms();
	int rc;

	lws_sul_cancel(&x->sul);
	rc = core->images ? images_open(core->images, x->fw, &x->fd, &x->size, NULL) : -ENOENT;
	if (rc) {
		static const uint8_t cans[8] = { YMODEM_CAN, YMODEM_CAN, YMODEM_CAN, YMODEM_CAN,
						 YMODEM_CAN, YMODEM_CAN, YMODEM_CAN, YMODEM_CAN };

		if (buf_append(&p->tx, cans, sizeof(cans)))
			LOGD("port %s: no room for CAN", p->cfg->name);
		serial_xfer_end(p, rc == -EAGAIN ? "ymodem: the image is still downloading"
						 : "ymodem: the image is not on the gateway");
		return;
	}
	if ((size_t)snprintf(name, sizeof(name), "%s.bin", x->fw) >= sizeof(name))
		util_strlcpy(name, "firmware.bin", sizeof(name));
	yc.name = name;
	yc.size = x->size;
	yc.only_1k = p->cfg->ymodem_blocks == CONFIG_YMODEM_1K;
	yc.timeout_ms = p->cfg->ymodem_timeout * 1000;
	yc.retries = p->cfg->ymodem_retries;
	yc.read = serial_pread;
	yc.read_ctx = x;
	if (ymodem_init(&x->ym, &yc, now)) {
		close(x->fd);
		serial_xfer_end(p, "ymodem: cannot start the sender");
		return;
	}
	x->state = SX_ACTIVE;
	x->last_pct = 0;
	x->last_size = x->size;
	util_strlcpy(x->last_state, "sending", sizeof(x->last_state));
	LOGI("device %s on port %s: sending image %s (%" PRIu64 " bytes) by YMODEM",
	     serial_dev(p), p->cfg->name, x->fw, x->size);
	(void)ymodem_input(&x->ym, (const uint8_t *)"C", 1, now);
	serial_xfer_step(p, true);
}

/* The failure text of a finished sender. */
static void serial_xfer_reason(const struct serial_port *p, char *buf, size_t cap)
{
	int rc = ymodem_result(&p->x.ym);

	if (rc == -ECANCELED)
		snprintf(buf, cap, "ymodem: the device cancelled the transfer (CAN CAN)");
	else if (rc == -ETIMEDOUT)
		snprintf(buf, cap, "ymodem: no answer from the device after %u retries of %u s",
			 p->cfg->ymodem_retries, p->cfg->ymodem_timeout);
	else
		snprintf(buf, cap, "ymodem: reading the image failed: %s", otagw_strerror(rc));
}

/* Ends the transfer: reason NULL = delivered, "" = the sender failed (its
 * result says why), else that reason. */
static void serial_xfer_end(struct serial_port *p, const char *reason)
{
	struct serial_xfer *x = &p->x;
	char why[OTAGW_REASON_MAX];
	bool active = x->state == SX_ACTIVE;

	lws_sul_cancel(&x->sul);
	lws_sul_cancel(&x->turn);
	if (active)
		close(x->fd);
	x->state = SX_IDLE;
	if (!reason) {
		p->xfer_ok++;
		util_strlcpy(x->last_state, "done", sizeof(x->last_state));
		LOGI("device %s on port %s: image %s sent (%u blocks resent)", serial_dev(p),
		     p->cfg->name, x->fw, x->ym.resends);
	} else if (!p->owner->stopping) {
		if (!reason[0])
			serial_xfer_reason(p, why, sizeof(why));
		else
			util_strlcpy(why, reason, sizeof(why));
		p->xfer_failed++;
		util_strlcpy(x->last_state, "failed", sizeof(x->last_state));
		LOGW("device %s on port %s: %s", serial_dev(p), p->cfg->name, why);
		if (p->s.device_id[0])
			(void)core_delivery_failed(p->owner->core, p->s.device_id, x->fw, why);
	}
	if (p->tx.len)
		serial_want_write(p);
}

/* ---- receive ------------------------------------------------------------ */

static void serial_handle(struct serial_port *p, const struct msg *m)
{
	struct core *core = p->owner->core;
	struct err_info e = { 0 };

	if (strcmp(p->s.device_id, m->device_id)) {
		if (!util_id_valid(m->device_id)) {
			serial_error(p, m->message_id, "unknown_device", "the message needs a deviceId");
			return;
		}
		if (p->s.device_id[0]) {
			LOGI("port %s: device %s replaces %s", p->cfg->name, m->device_id,
			     p->s.device_id);
			core_session_gone(core, &p->s);
			p->s.device_id[0] = '\0';
		}
		p->s.reports_progress = false;
		util_strlcpy(p->s.product_id, m->product_id[0] ? m->product_id : p->cfg->product,
			     sizeof(p->s.product_id));
		if (core_session_bind(core, &p->s, m->device_id, &e)) {
			serial_error(p, m->message_id, "unknown_device", err_text(&e));
			return;
		}
		LOGI("device %s on port %s", m->device_id, p->cfg->name);
	}
	if (core_handle(core, &p->s, m, &e))
		serial_error(p, m->message_id, "refused", err_text(&e));
}

static void serial_line(struct serial_port *p)
{
	struct err_info e = { 0 };
	struct msg m;
	int rc = codec_jsonline.decode(p->line.data, p->line.len, &m, &e);

	buf_consume(&p->line, p->line.len);
	if (rc == -ENODATA)
		return;
	if (rc) {
		p->bad_lines++;
		serial_error(p, NULL, "bad_message", err_text(&e));
		return;
	}
	p->rx_lines++;
	serial_handle(p, &m);
	msg_clear(&m);
}

/* YMODEM control bytes a waiting bootloader repeats; never part of a line. */
static bool serial_line_noise(uint8_t c)
{
	return c == YMODEM_CRC || c == YMODEM_NAK || c == YMODEM_ACK || c == YMODEM_CAN ||
	       c == YMODEM_EOT;
}

static void serial_line_byte(struct serial_port *p, uint8_t c)
{
	if (p->discarding) {
		p->discarding = c != '\n';
		return;
	}
	if (c == '\n') {
		serial_line(p);
		return;
	}
	if (!p->line.len && serial_line_noise(c))
		return;
	if (buf_append(&p->line, &c, 1)) {
		buf_consume(&p->line, p->line.len);
		p->discarding = true;
		p->bad_lines++;
		serial_error(p, NULL, "too_large", "line longer than [serial] max_line");
	}
}

static void serial_input(struct serial_port *p, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p->x.state == SX_ACTIVE && serial_xfer_delivered(p) &&
		    !serial_line_noise(b[i])) {
			serial_xfer_end(p, NULL);      /* the device speaks lines again */
		} else if (p->x.state == SX_ACTIVE) {
			/* a byte at a time, so a line right after the batch's end is
			 * not swallowed by the finished sender */
			(void)ymodem_input(&p->x.ym, b + i, 1, (uint64_t)util_mono_ms());
			serial_xfer_step(p, true);
			continue;
		}
		if (p->x.state == SX_ARMED && !p->line.len && !p->discarding &&
		    b[i] == YMODEM_CRC) {
			serial_xfer_start(p);
			continue;
		}
		serial_line_byte(p, b[i]);
	}
}

static int serial_read(struct serial_port *p)
{
	uint8_t b[SERIAL_READ_MAX];
	ssize_t n = read(p->fd, b, sizeof(b));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		snprintf(p->error, sizeof(p->error), "read: %s",
			 n ? strerror(errno) : "end of file");
		return -1;
	}
	serial_input(p, b, (size_t)n);
	return 0;
}

/* ---- send --------------------------------------------------------------- */

/* Writes what fits; -1 when the port failed. */
static int serial_write_some(struct serial_port *p, const uint8_t *d, size_t n, size_t *done)
{
	ssize_t w = write(p->fd, d, n);

	*done = 0;
	if (w < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (w < 0) {
		snprintf(p->error, sizeof(p->error), "write: %s", strerror(errno));
		return -1;
	}
	*done = (size_t)w;
	return 0;
}

static int serial_writeable(struct serial_port *p)
{
	const uint8_t *out;
	size_t n, done;

	core_sync(p->owner->core);
	if (p->x.state == SX_ACTIVE) {
		n = ymodem_output(&p->x.ym, &out);
		if (!n)
			return 0;
		if (serial_write_some(p, out, n, &done))
			return -1;
		ymodem_consumed(&p->x.ym, done, (uint64_t)util_mono_ms());
		serial_xfer_step(p, false);
		return 0;
	}
	if (!p->tx.len)
		return 0;
	if (serial_write_some(p, p->tx.data, p->tx.len, &done))
		return -1;
	buf_consume(&p->tx, done);
	if (p->tx.len)
		serial_want_write(p);
	return 0;
}

static int serial_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		     size_t len)
{
	struct serial_port *p = lws_get_opaque_user_data(wsi);

	if (!p)
		return 0;      /* during adoption, before the port is attached */
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		return serial_read(p);
	case LWS_CALLBACK_RAW_WRITEABLE_FILE:
		return serial_writeable(p);
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		serial_closed(p);
		return 0;
	default:
		return 0;
	}
}

/* ---- life cycle ------------------------------------------------------------- */

int serial_new(struct serial **out, struct core *core, struct lws_context *ctx,
	       const struct config_serial *ports, size_t n, struct err_info *e)
{
	struct lws_context_creation_info info;
	struct serial *s = calloc(1, sizeof(*s));

	if (!s || !(s->cfgs = calloc(n ? n : 1, sizeof(*s->cfgs))) ||
	    !(s->ports = calloc(n ? n : 1, sizeof(*s->ports)))) {
		serial_free(s);
		return err_set(e, -ENOMEM, "out of memory");
	}
	s->core = core;
	s->ctx = ctx;
	s->n = n;
	s->protocols[0] = (struct lws_protocols){ "otagw-serial", serial_cb, 0, 0, 0, NULL, 0 };
	memset(&info, 0, sizeof(info));
	info.vhost_name = "serial";
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = s->protocols;
	info.user = s;
	s->vh = lws_create_vhost(ctx, &info);
	if (!s->vh) {
		serial_free(s);
		return err_set(e, -EINVAL, "cannot create the serial vhost");
	}
	for (size_t i = 0; i < n; i++) {
		struct serial_port *p = &s->ports[i];

		s->cfgs[i] = ports[i];
		p->owner = s;
		p->cfg = &s->cfgs[i];
		p->s.ops = &serial_ops;
		p->fd = -1;
		buf_init(&p->line, p->cfg->max_line);
		buf_init(&p->tx, SERIAL_TXQ_MAX);
		serial_open(p);
	}
	*out = s;
	return 0;
}

void serial_stop(struct serial *s)
{
	if (!s)
		return;
	s->stopping = true;
	for (size_t i = 0; i < s->n; i++) {
		lws_sul_cancel(&s->ports[i].reopen_sul);
		lws_sul_cancel(&s->ports[i].x.sul);
		lws_sul_cancel(&s->ports[i].x.turn);
	}
}

void serial_free(struct serial *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->ports && i < s->n; i++) {
		struct serial_port *p = &s->ports[i];

		if (p->x.state == SX_ACTIVE)
			close(p->x.fd);
		buf_clear(&p->line);
		buf_clear(&p->tx);
	}
	free(s->ports);
	free(s->cfgs);
	free(s);
}

static cJSON *serial_port_json(const struct serial_port *p)
{
	static const char *const states[] = { "closed", "open" };
	cJSON *o = cJSON_CreateObject(), *t = NULL;

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "name", p->cfg->name);
	cJSON_AddStringToObject(o, "path", p->cfg->path);
	cJSON_AddStringToObject(o, "state", states[p->state]);
	cJSON_AddStringToObject(o, "error", p->state == SP_OPEN ? "" : p->error);
	if (p->s.device_id[0])
		cJSON_AddStringToObject(o, "deviceId", p->s.device_id);
	else
		cJSON_AddNullToObject(o, "deviceId");
	cJSON_AddNumberToObject(o, "baud", p->cfg->baud);
	cJSON_AddNumberToObject(o, "reopens", p->reopens);
	if (p->x.last_state[0] && (t = cJSON_AddObjectToObject(o, "transfer"))) {
		cJSON_AddStringToObject(t, "firmwareId", p->x.last_fw);
		cJSON_AddStringToObject(t, "state", p->x.last_state);
		cJSON_AddNumberToObject(t, "bytes", (double)p->x.last_bytes);
		cJSON_AddNumberToObject(t, "size", (double)p->x.last_size);
	} else {
		cJSON_AddNullToObject(o, "transfer");
	}
	cJSON_AddNumberToObject(o, "rxLines", (double)p->rx_lines);
	cJSON_AddNumberToObject(o, "badLines", (double)p->bad_lines);
	cJSON_AddNumberToObject(o, "transfersOk", (double)p->xfer_ok);
	cJSON_AddNumberToObject(o, "transfersFailed", (double)p->xfer_failed);
	return o;
}

void *serial_status(void *arg)
{
	struct serial *s = arg;
	cJSON *o = cJSON_CreateObject(), *a = o ? cJSON_AddArrayToObject(o, "ports") : NULL;

	if (!a) {
		cJSON_Delete(o);
		return NULL;
	}
	for (size_t i = 0; s && i < s->n; i++) {
		cJSON *p = serial_port_json(&s->ports[i]);

		if (!p) {
			cJSON_Delete(o);
			return NULL;
		}
		cJSON_AddItemToArray(a, p);
	}
	return o;
}
