/* SPDX-License-Identifier: MIT */
/* ymodem.c - the YMODEM-1K batch sender as a pure state machine; the wire,
 * the states and the deadlines are specified in ymodem.h. Answer bytes go
 * through a handler table indexed by state. Every frame is built once in
 * y->frame and resent from there, so the read callback runs once per data
 * block and only from ymodem_input().
 * Reading of ambiguous answers (lrzsz 0.12.21 `rz` as the reference):
 *  - ACK, NAK and 'C' that arrive while y->frame is still being written
 *    are ignored: the receiver cannot have answered a frame it has not got.
 *    CAN is counted in every state, even then.
 *  - 'C' alone after block 0 starts the data (the contract). rz sends 'C'
 *    instead of NAK after a garbled block 0; it then fails on block 1 and
 *    cancels, so that case ends in -ECANCELED, never in a wrong file.
 *  - 'C' while a data block, EOT or the end block waits for its answer is
 *    ignored, never taken as ACK or NAK: a stale 'C' (receivers repeat it
 *    while they wait) taken as NAK would duplicate a block and shift every
 *    later ACK by one. rz does send 'C' for a garbled first data block;
 *    that costs one timeout, after which the block is resent.
 *  - A timeout while waiting for 'C' after an ACK (block 0 or EOT) resends
 *    nothing: the frame was acknowledged, so the receiver repeats its 'C'
 *    (rz does); each such timeout counts as a retry.
 *  - While a frame is being written the deadline bounds the writer: each
 *    timeout_ms without progress counts as a retry, and the frame is not
 *    restarted (part of it may be on the wire).
 *  - After the EOT ACK the file is delivered (rz closes it before it ACKs),
 *    so running out of retries while waiting for the last 'C' or the end
 *    block's ACK ends DONE, without CAN; lrzsz's sz also ignores how the end
 *    block fares. rz loses that ACK on a pty: it writes it, then tcdrain()
 *    returns at once and TCIOFLUSH discards it unread from the master.
 * Must not: do I/O, read a clock, allocate, log. */
#include "ymodem.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define YM_HDR 3                 /* kind, seq, ~seq */
#define YM_CRC 2
#define YM_SHORT 128
#define YM_LONG 1024
#define YM_CANS 8                /* CAN bytes sent when giving up */
#define YM_DEF_START_MS 60000u
#define YM_DEF_TIMEOUT_MS 10000u
#define YM_DEF_RETRIES 10u
#define YM_DEC_MAX 21            /* UINT64_MAX in decimal, NUL */

/* Name, NUL, size, NUL always fit in a 1024-byte block 0. */
_Static_assert(YMODEM_NAME_MAX + YM_DEC_MAX <= YM_LONG, "block 0 too small for the name");
/* Both sides expand to the same numbers: that is what it checks.
 * NOLINTNEXTLINE(misc-redundant-expression) */
_Static_assert(YMODEM_FRAME_MAX == YM_HDR + YM_LONG + YM_CRC, "frame size");

/* What an answer byte does in one state; NULL / false: ignored. */
struct ym_state_ops {
	int (*on_ack)(struct ymodem *y, uint64_t now);
	int (*on_crc)(struct ymodem *y, uint64_t now);
	bool resend;             /* y->frame awaits an answer: NAK, timeout resend it */
	bool delivered;          /* EOT was acknowledged: out of retries is DONE */
};

#define YM_STATES (YMODEM_FAILED + 1)
static const struct ym_state_ops ym_ops[YM_STATES];

uint16_t ymodem_crc16(const uint8_t *buf, size_t len)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)(buf[i] << 8);
		for (int bit = 0; bit < 8; bit++)
			crc = crc & 0x8000 ? (uint16_t)(crc << 1 ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

/* now + ms, saturated; never 0 (0 means no deadline). */
static uint64_t ym_after(uint64_t now, unsigned ms)
{
	uint64_t t = now + ms;

	if (t < now)
		return UINT64_MAX;
	return t ? t : 1;
}

/* (Re)starts writing the first len bytes of y->frame; the deadline bounds
 * the writer until ymodem_consumed() has seen the whole frame. */
static void ym_queue(struct ymodem *y, size_t len, uint64_t now)
{
	y->frame_len = len;
	y->out_pos = 0;
	y->out_pending = true;
	y->deadline = ym_after(now, y->cfg.timeout_ms);
}

static int ym_fail(struct ymodem *y, int code, bool send_can)
{
	y->state = YMODEM_FAILED;
	y->result = code;
	y->deadline = 0;
	y->out_pending = false;
	y->frame_len = y->out_pos = 0;
	if (send_can) {
		memset(y->frame, YMODEM_CAN, YM_CANS);
		y->frame_len = YM_CANS;
		y->out_pending = true;
	}
	return code;
}

static int ym_done(struct ymodem *y)
{
	y->state = YMODEM_DONE;
	y->deadline = 0;
	y->out_pending = false;
	return 0;
}

/* A NAK or a timeout: resend (or keep waiting) unless retries are spent. */
static int ym_retry(struct ymodem *y, uint64_t now, bool resend)
{
	if (y->tries >= y->cfg.retries && ym_ops[y->state].delivered)
		return ym_done(y);
	if (y->tries >= y->cfg.retries)
		return ym_fail(y, -ETIMEDOUT, true);
	y->tries++;
	if (!resend) {
		y->deadline = ym_after(now, y->cfg.timeout_ms);
		return 0;
	}
	y->resends++;
	ym_queue(y, y->frame_len, now);
	return 0;
}

/* Seals the blk payload bytes already in y->frame as block y->seq. */
static void ym_send_block(struct ymodem *y, size_t blk, enum ymodem_state next, uint64_t now)
{
	uint16_t crc = ymodem_crc16(y->frame + YM_HDR, blk);

	y->frame[0] = blk == YM_LONG ? YMODEM_STX : YMODEM_SOH;
	y->frame[1] = y->seq;
	y->frame[2] = (uint8_t)~y->seq;
	y->frame[YM_HDR + blk] = (uint8_t)(crc >> 8);
	y->frame[YM_HDR + blk + 1] = (uint8_t)crc;
	y->tries = 0;
	y->state = next;
	ym_queue(y, YM_HDR + blk + YM_CRC, now);
}

/* Block 0: name NUL size NUL, zero padded. With YMODEM_NAME_MAX 64 it
 * always fits in 128 bytes; the 1024-byte form is there for the contract. */
static int ym_send_header(struct ymodem *y, uint64_t now)
{
	uint8_t *p = y->frame + YM_HDR;
	size_t nlen = strlen(y->name);
	char dec[YM_DEC_MAX];
	int dlen = snprintf(dec, sizeof(dec), "%" PRIu64, y->cfg.size);
	size_t blk = nlen + 1 + (size_t)dlen + 1 <= YM_SHORT ? YM_SHORT : YM_LONG;

	memset(p, 0, blk);
	memcpy(p, y->name, nlen);
	memcpy(p + nlen + 1, dec, (size_t)dlen);
	y->seq = 0;
	ym_send_block(y, blk, YMODEM_WAIT_HDR_ACK, now);
	return 0;
}

/* The data block at y->off: 1024 bytes, or the tail as 128-byte blocks
 * (1024 with only_1k), padded with 0x1A. */
static int ym_send_data(struct ymodem *y, uint64_t now)
{
	uint64_t left = y->cfg.size - y->off;
	size_t blk = left >= YM_LONG || y->cfg.only_1k ? YM_LONG : YM_SHORT;
	int n;

	y->chunk = left < blk ? (size_t)left : blk;
	n = y->cfg.read(y->cfg.read_ctx, y->off, y->frame + YM_HDR, y->chunk);
	if (n < 0)
		return ym_fail(y, n, true);
	if ((size_t)n != y->chunk)
		return ym_fail(y, -EIO, true);         /* the file ended early (or overran) */
	memset(y->frame + YM_HDR + y->chunk, YMODEM_PAD, blk - y->chunk);
	ym_send_block(y, blk, YMODEM_WAIT_DATA_ACK, now);
	return 0;
}

/* The next data block, or EOT once the whole file is acknowledged. */
static int ym_send_next(struct ymodem *y, uint64_t now)
{
	if (y->off < y->cfg.size)
		return ym_send_data(y, now);
	y->chunk = 0;
	y->frame[0] = YMODEM_EOT;
	y->tries = 0;
	y->state = YMODEM_WAIT_EOT_ACK;
	ym_queue(y, 1, now);
	return 0;
}

static int ym_first_data(struct ymodem *y, uint64_t now)
{
	y->off = 0;
	y->seq = 1;
	return ym_send_next(y, now);
}

static int ym_data_acked(struct ymodem *y, uint64_t now)
{
	y->off += y->chunk;      /* never past size: chunk <= size - off */
	y->acked = y->off;
	y->seq++;                /* wraps mod 256 */
	return ym_send_next(y, now);
}

/* Block 0 or EOT acknowledged: wait for the receiver's 'C'. */
static int ym_wait_crc(struct ymodem *y, enum ymodem_state next, uint64_t now)
{
	y->state = next;
	y->tries = 0;
	y->deadline = ym_after(now, y->cfg.timeout_ms);
	return 0;
}

static int ym_hdr_acked(struct ymodem *y, uint64_t now)
{
	return ym_wait_crc(y, YMODEM_WAIT_DATA_C, now);
}

static int ym_eot_acked(struct ymodem *y, uint64_t now)
{
	return ym_wait_crc(y, YMODEM_WAIT_END_C, now);
}

/* The empty block 0 that ends the batch. */
static int ym_send_end(struct ymodem *y, uint64_t now)
{
	memset(y->frame + YM_HDR, 0, YM_SHORT);
	y->seq = 0;
	ym_send_block(y, YM_SHORT, YMODEM_WAIT_END_ACK, now);
	return 0;
}

static int ym_end_acked(struct ymodem *y, uint64_t now)
{
	return ym_done(y);
}

static const struct ym_state_ops ym_ops[YM_STATES] = {
	[YMODEM_WAIT_START] = { NULL, ym_send_header, false, false },
	[YMODEM_WAIT_HDR_ACK] = { ym_hdr_acked, ym_first_data, true, false },
	[YMODEM_WAIT_DATA_C] = { NULL, ym_first_data, false, false },
	[YMODEM_WAIT_DATA_ACK] = { ym_data_acked, NULL, true, false },
	[YMODEM_WAIT_EOT_ACK] = { ym_eot_acked, NULL, true, false },
	[YMODEM_WAIT_END_C] = { NULL, ym_send_end, false, true },
	[YMODEM_WAIT_END_ACK] = { ym_end_acked, NULL, true, true },
	[YMODEM_DONE] = { NULL, NULL, false, false },
	[YMODEM_FAILED] = { NULL, NULL, false, false },
};

static void ym_byte(struct ymodem *y, uint8_t c, uint64_t now)
{
	const struct ym_state_ops *ops = &ym_ops[y->state];
	bool after_can = y->last_can;

	y->last_can = c == YMODEM_CAN;
	if (c == YMODEM_CAN) {
		if (after_can)
			ym_fail(y, -ECANCELED, false);
		return;
	}
	if (y->out_pending)
		return;
	if (c == YMODEM_ACK && ops->on_ack)
		ops->on_ack(y, now);
	else if (c == YMODEM_CRC && ops->on_crc)
		ops->on_crc(y, now);
	else if (c == YMODEM_NAK && ops->resend)
		ym_retry(y, now, true);
}

int ymodem_init(struct ymodem *y, const struct ymodem_cfg *cfg, uint64_t now_ms)
{
	memset(y, 0, sizeof(*y));
	y->state = YMODEM_FAILED;
	y->result = -EINVAL;
	if (!cfg || !cfg->read || !cfg->name || !cfg->name[0] || strchr(cfg->name, '/') ||
	    strnlen(cfg->name, YMODEM_NAME_MAX) >= YMODEM_NAME_MAX)
		return -EINVAL;
	y->cfg = *cfg;
	memcpy(y->name, cfg->name, strlen(cfg->name) + 1);
	y->cfg.name = y->name;
	if (!y->cfg.start_timeout_ms)
		y->cfg.start_timeout_ms = YM_DEF_START_MS;
	if (!y->cfg.timeout_ms)
		y->cfg.timeout_ms = YM_DEF_TIMEOUT_MS;
	if (!y->cfg.retries)
		y->cfg.retries = YM_DEF_RETRIES;
	y->state = YMODEM_WAIT_START;
	y->result = 0;
	y->deadline = ym_after(now_ms, y->cfg.start_timeout_ms);
	return 0;
}

int ymodem_input(struct ymodem *y, const uint8_t *buf, size_t len, uint64_t now_ms)
{
	for (size_t i = 0; i < len && y->state < YMODEM_DONE; i++)
		ym_byte(y, buf[i], now_ms);
	return y->result;
}

int ymodem_tick(struct ymodem *y, uint64_t now_ms)
{
	if (y->state >= YMODEM_DONE || !y->deadline || now_ms < y->deadline)
		return y->result;
	if (y->state == YMODEM_WAIT_START)
		return ym_fail(y, -ETIMEDOUT, true);   /* CAN too: stops a late receiver */
	return ym_retry(y, now_ms, !y->out_pending && ym_ops[y->state].resend);
}

uint64_t ymodem_deadline(const struct ymodem *y)
{
	return y->state >= YMODEM_DONE ? 0 : y->deadline;
}

size_t ymodem_output(const struct ymodem *y, const uint8_t **out)
{
	if (!y->out_pending) {
		*out = NULL;
		return 0;
	}
	*out = y->frame + y->out_pos;
	return y->frame_len - y->out_pos;
}

void ymodem_consumed(struct ymodem *y, size_t n, uint64_t now_ms)
{
	size_t left = y->frame_len - y->out_pos;

	if (!y->out_pending || !n)
		return;
	y->out_pos += n < left ? n : left;
	if (y->out_pos == y->frame_len)
		y->out_pending = false;
	/* The answer timeout runs from the last byte; progress also feeds the
	 * writer's deadline. Nothing is awaited after CAN (FAILED). */
	if (y->state < YMODEM_DONE)
		y->deadline = ym_after(now_ms, y->cfg.timeout_ms);
}

enum ymodem_state ymodem_state(const struct ymodem *y)
{
	return y->state;
}

int ymodem_result(const struct ymodem *y)
{
	return y->result;
}

uint64_t ymodem_acked(const struct ymodem *y)
{
	return y->acked;
}
