/* SPDX-License-Identifier: MIT */
/* ymodem.h - the YMODEM-1K batch sender (CRC-16) as a pure state machine:
 * bytes from the receiver and clock ticks go in, frames to write come out.
 * One struct ymodem sends one file and then the empty block 0 that ends
 * the batch. Compatible with lrzsz's `rz --ymodem` and MCU bootloaders.
 *
 * The wire, as sent:
 *   wait for 'C' (the receiver asks for CRC mode; NAK/garbage ignored)
 *   block 0: SOH 00 FF "name\0" "size-in-decimal" NUL padding, CRC-16
 *            (STX and 1024 bytes if name and size do not fit in 128)
 *   wait ACK, then 'C' (a 'C' alone after block 0 also starts the data)
 *   data:    STX n ~n 1024 bytes CRC; the tail (< 1024 bytes left) as SOH
 *            128-byte blocks, or with only_1k as STX blocks; the last block
 *            padded with 0x1A. Block numbers start at 1 and wrap mod 256.
 *   EOT; a NAK answers with EOT again, an ACK ends the file
 *   wait 'C', then block 0 with 128 NUL bytes; its ACK ends the batch.
 *   EOT's ACK means the file is delivered: if that 'C' or the last ACK
 *   never comes (rz over a pty loses the last ACK), running out of
 *   retries ends DONE, without CAN.
 * NAK or a timeout resends the current frame, up to `retries` times in a
 * row; then the sender emits CAN x 8 and fails with -ETIMEDOUT. Two CAN
 * bytes in a row from the receiver fail with -ECANCELED (nothing is sent).
 * An ACK while nothing is outstanding (duplicate ACK) is ignored.
 *
 * Time is given by the caller in ms (any monotonic origin); the machine
 * keeps one deadline and never reads a clock itself.
 * Must not: do I/O, read a clock, allocate, log. */
#ifndef OTAGW_YMODEM_H
#define OTAGW_YMODEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define YMODEM_SOH 0x01
#define YMODEM_STX 0x02
#define YMODEM_EOT 0x04
#define YMODEM_ACK 0x06
#define YMODEM_NAK 0x15
#define YMODEM_CAN 0x18
#define YMODEM_CRC 'C'
#define YMODEM_PAD 0x1A
#define YMODEM_FRAME_MAX (3 + 1024 + 2)
#define YMODEM_NAME_MAX 64

/* Reads len bytes of the file at off into buf. Returns the count read
 * (must be len unless the file ended: then fewer) or a negative errno.
 * Borrowed ctx; called from ymodem_input/ymodem_tick only. */
typedef int (*ymodem_read_fn)(void *ctx, uint64_t off, uint8_t *buf, size_t len);

struct ymodem_cfg {
	const char *name;        /* file name put in block 0; copied, <= NAME_MAX-1 */
	uint64_t size;           /* bytes in the file */
	bool only_1k;            /* tail as padded 1024-byte blocks too */
	unsigned start_timeout_ms; /* wait for the first 'C' (0: 60000) */
	unsigned timeout_ms;     /* per-frame answer timeout (0: 10000) */
	unsigned retries;        /* resends of one frame before giving up (0: 10) */
	ymodem_read_fn read;
	void *read_ctx;
};

enum ymodem_state {
	YMODEM_WAIT_START,       /* waiting for the first 'C' */
	YMODEM_WAIT_HDR_ACK,     /* block 0 sent */
	YMODEM_WAIT_DATA_C,      /* block 0 acked, waiting for 'C' */
	YMODEM_WAIT_DATA_ACK,    /* a data block sent */
	YMODEM_WAIT_EOT_ACK,     /* EOT sent */
	YMODEM_WAIT_END_C,       /* file done, waiting for 'C' before the end block */
	YMODEM_WAIT_END_ACK,     /* empty block 0 sent */
	YMODEM_DONE,             /* batch complete */
	YMODEM_FAILED,           /* see ymodem_result() */
};

/* Embedded by its owner; all fields private. */
struct ymodem {
	struct ymodem_cfg cfg;
	char name[YMODEM_NAME_MAX];
	enum ymodem_state state;
	int result;              /* 0, or the failure code */
	uint64_t off;            /* file offset of the frame in flight */
	uint64_t acked;          /* file bytes acknowledged */
	size_t chunk;            /* file bytes in the frame in flight */
	uint8_t seq;             /* block number of the frame in flight */
	unsigned tries;          /* resends of the frame in flight */
	bool last_can;           /* previous input byte was CAN */
	uint64_t deadline;       /* ms; 0 = none */
	uint8_t frame[YMODEM_FRAME_MAX + 8];
	size_t frame_len;        /* bytes of frame to (re)send */
	size_t out_pos;          /* bytes of frame already written */
	bool out_pending;        /* frame waits to be written */
	unsigned resends;        /* total resends, for statistics */
};

/* Prepares y to send cfg's file; starts waiting for 'C' at now_ms.
 * -EINVAL for a missing read function or a name that is missing, empty
 * (block 0 with an empty name ends the batch), has '/' or is longer than
 * YMODEM_NAME_MAX - 1. cfg->name is copied. */
int ymodem_init(struct ymodem *y, const struct ymodem_cfg *cfg, uint64_t now_ms) OTAGW_MUST_CHECK;

/* Feeds bytes read from the line. Returns 0 while running or done, or the
 * failure code once failed (also kept in ymodem_result()). Bytes after
 * DONE or FAILED are ignored. */
int ymodem_input(struct ymodem *y, const uint8_t *buf, size_t len, uint64_t now_ms);

/* Call at or after ymodem_deadline(): a timeout resends or fails. */
int ymodem_tick(struct ymodem *y, uint64_t now_ms);

/* The next deadline in ms, 0 when none (done, failed). */
uint64_t ymodem_deadline(const struct ymodem *y);

/* Bytes waiting to be written: *out borrowed until the next call into y.
 * Returns 0 when nothing is pending. */
size_t ymodem_output(const struct ymodem *y, const uint8_t **out);

/* n of the pending bytes were written at now_ms; the answer timeout runs
 * from when the whole frame has been written. Until then the deadline
 * bounds the writer: timeout_ms without progress counts as one retry. */
void ymodem_consumed(struct ymodem *y, size_t n, uint64_t now_ms);

enum ymodem_state ymodem_state(const struct ymodem *y);
/* 0 running or done; -ETIMEDOUT retries exhausted before EOT was
 * acknowledged, or no start; -ECANCELED receiver sent CAN CAN; a read
 * error's code. */
int ymodem_result(const struct ymodem *y);
/* File bytes the receiver acknowledged (for progress). */
uint64_t ymodem_acked(const struct ymodem *y);
/* CRC-16/XMODEM (poly 0x1021, init 0) of buf. */
uint16_t ymodem_crc16(const uint8_t *buf, size_t len);

#endif
