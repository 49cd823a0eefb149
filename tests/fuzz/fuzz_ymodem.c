/* SPDX-License-Identifier: MIT */
/* fuzz_ymodem.c - the YMODEM-1K sender (southbound/ymodem.h) driven by a
 * hostile receiver: arbitrary bytes, any timing, a writer that takes the
 * frames in any pieces, and a file that may fail to read.
 * Feeds, in order:
 *   u24 file size (its bytes are a function of the offset); a flags byte
 *   (bit 0 only_1k; bits 1-2 read fault: none, an error, a short read;
 *   bits 3-7 the 1024-byte block where it strikes); retries (mod 5, 0 = the
 *   default); start and answer timeouts (u8 x 10 ms each, 0 = the
 *   defaults); the file name: a length (mod 72) and its bytes.
 *   Then steps, one byte each (2 high bits pick the kind):
 *     00xxxxxx  one receiver byte from a table (ACK NAK 'C' CAN SOH 0 EOT 0xFF)
 *     01nnnnnn  n+1 raw receiver bytes taken from the input
 *     10txxxxx  time passes: to the deadline (t) or by xxxxx x 100 ms, then tick
 *     11nnnnnn  the writer takes n x 17 bytes of the pending output (63: all)
 * Asserts beyond no crash and no leak:
 *  - ymodem_init() refuses exactly the bad names (empty, '/', >= 64 bytes);
 *  - the state stays in range; result is 0 unless FAILED, and a failure is
 *    -ETIMEDOUT, -ECANCELED, -EIO (short read) or the read error itself;
 *  - every frame is well-formed when it is offered whole: SOH/STX with 128
 *    or 1024 bytes, seq and ~seq, CRC-16; block 0 is "name\0size\0" padded
 *    with zeros (or all zeros as the end of the batch); data block n holds
 *    the file's bytes at the acknowledged offset, padded with 0x1A, with
 *    seq = n mod 256; EOT alone; on failure CAN x 8 only;
 *  - acknowledged bytes only grow, one block per ACK, never past the size;
 *    DONE only once the whole file is acknowledged; a deadline exists
 *    exactly while the transfer runs; after DONE or FAILED nothing moves. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "ymodem.h"

#define READ_ERROR (-ENOLINK)     /* what the fault injection returns */

struct file {
	uint64_t size;
	int fault;                /* 0 none, 1 error, 2 short read */
	uint64_t fault_at;        /* offset from which reads fail */
	bool faulted;
};

static uint8_t file_byte(uint64_t off)
{
	return (uint8_t)(off * 131 + (off >> 8) * 7 + 3);
}

static int file_read(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
	struct file *f = ctx;

	FUZZ_CHECK(off <= f->size && len <= f->size - off && len <= 1024);
	if (f->fault && off >= f->fault_at) {
		f->faulted = true;
		if (f->fault == 1)
			return READ_ERROR;
		return len ? (int)len - 1 : 0;
	}
	for (size_t i = 0; i < len; i++)
		buf[i] = file_byte(off + i);
	return (int)len;
}

struct model {
	struct ymodem y;
	struct file f;
	bool only_1k;
	uint64_t now;
	uint64_t acked;           /* last seen ymodem_acked() */
	unsigned blocks;          /* data blocks acknowledged */
	/* the frame checked last, so a resent or still pending one is not
	 * checked (CRC and all) at every step again */
	uint8_t seen[YMODEM_FRAME_MAX];
	size_t seen_len;
	enum ymodem_state seen_state;
	uint64_t seen_acked;
};

static void check_block(const struct model *md, const uint8_t *fr, size_t len)
{
	const struct ymodem *y = &md->y;
	size_t blk = fr[0] == YMODEM_STX ? 1024 : 128;
	const uint8_t *p = fr + 3;
	uint16_t crc;

	FUZZ_CHECK(len == 3 + blk + 2);
	FUZZ_CHECK((uint8_t)(fr[1] ^ fr[2]) == 0xff);
	crc = ymodem_crc16(p, blk);
	FUZZ_CHECK(fr[3 + blk] == (uint8_t)(crc >> 8) && fr[4 + blk] == (uint8_t)crc);
	switch (ymodem_state(y)) {
	case YMODEM_WAIT_HDR_ACK: {
		char want[128];
		size_t n = (size_t)snprintf(want, sizeof(want), "%s%c%" PRIu64, y->name, 0,
					    md->f.size) + 1;

		FUZZ_CHECK(fr[1] == 0 && fr[0] == YMODEM_SOH);
		FUZZ_CHECK(!memcmp(p, want, n));
		for (size_t i = n; i < blk; i++)
			FUZZ_CHECK(p[i] == 0);
		break;
	}
	case YMODEM_WAIT_END_ACK:
		FUZZ_CHECK(fr[1] == 0 && fr[0] == YMODEM_SOH);
		for (size_t i = 0; i < blk; i++)
			FUZZ_CHECK(p[i] == 0);
		break;
	case YMODEM_WAIT_DATA_ACK: {
		uint64_t left = md->f.size - md->acked;
		size_t want_blk = left >= 1024 || md->only_1k ? 1024 : 128;
		size_t chunk = left < want_blk ? (size_t)left : want_blk;

		FUZZ_CHECK(left > 0 && blk == want_blk);
		FUZZ_CHECK(fr[1] == (uint8_t)(md->blocks + 1));
		for (size_t i = 0; i < chunk; i++)
			FUZZ_CHECK(p[i] == file_byte(md->acked + i));
		for (size_t i = chunk; i < blk; i++)
			FUZZ_CHECK(p[i] == YMODEM_PAD);
		break;
	}
	default:
		FUZZ_CHECK(!"a block in a state that sends none");
	}
}

/* The pending output, when offered from its first byte, is one whole frame. */
static void check_output(struct model *md)
{
	const struct ymodem *y = &md->y;
	const uint8_t *out;
	size_t n = ymodem_output(y, &out);

	if (!n) {
		FUZZ_CHECK(out == NULL);
		return;
	}
	FUZZ_CHECK(out >= y->frame && out + n <= y->frame + sizeof(y->frame));
	if (out != y->frame)
		return;
	if (n <= sizeof(md->seen) && n == md->seen_len && ymodem_state(y) == md->seen_state &&
	    md->acked == md->seen_acked && !memcmp(out, md->seen, n))
		return;
	if (n <= sizeof(md->seen)) {
		memcpy(md->seen, out, n);
		md->seen_len = n;
		md->seen_state = ymodem_state(y);
		md->seen_acked = md->acked;
	}
	if (ymodem_state(y) == YMODEM_FAILED) {
		FUZZ_CHECK(n == 8);
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(out[i] == YMODEM_CAN);
		return;
	}
	if (out[0] == YMODEM_EOT) {
		FUZZ_CHECK(n == 1 && ymodem_state(y) == YMODEM_WAIT_EOT_ACK);
		FUZZ_CHECK(md->acked == md->f.size);
		return;
	}
	FUZZ_CHECK(out[0] == YMODEM_SOH || out[0] == YMODEM_STX);
	check_block(md, out, n);
}

static void check_state(struct model *md, enum ymodem_state before)
{
	const struct ymodem *y = &md->y;
	enum ymodem_state s = ymodem_state(y);
	uint64_t acked = ymodem_acked(y);
	int r = ymodem_result(y);

	FUZZ_CHECK((unsigned)s <= YMODEM_FAILED);
	if (before >= YMODEM_DONE)
		FUZZ_CHECK(s == before);
	if (s == YMODEM_FAILED)
		FUZZ_CHECK(r == -ETIMEDOUT || r == -ECANCELED ||
			   (md->f.faulted && (r == -EIO || r == READ_ERROR)));
	else
		FUZZ_CHECK(r == 0);
	FUZZ_CHECK((ymodem_deadline(y) != 0) == (s < YMODEM_DONE));
	FUZZ_CHECK(acked >= md->acked && acked <= md->f.size);
	if (acked != md->acked) {
		uint64_t left = md->f.size - md->acked;
		size_t step = left >= 1024 || md->only_1k ? 1024 : 128;

		FUZZ_CHECK(acked - md->acked == (left < step ? left : step));
		md->blocks++;
		md->acked = acked;
	}
	if (s == YMODEM_DONE)
		FUZZ_CHECK(acked == md->f.size);
	check_output(md);
}

/* The configuration and name from the front of the input; false when
 * ymodem_init() refused (rightly). */
static bool start(struct model *md, struct fuzz_in *in)
{
	char name[80];
	uint8_t flags;
	struct ymodem_cfg cfg = { 0 };
	const uint8_t *p;
	size_t n, nlen;
	bool bad;
	int rc;

	md->f.size = (uint64_t)fuzz_u8(in) << 16;
	md->f.size |= fuzz_u16(in);
	flags = fuzz_u8(in);
	md->only_1k = flags & 1;
	md->f.fault = (flags >> 1) & 3;
	md->f.fault = md->f.fault == 3 ? 0 : md->f.fault;
	md->f.fault_at = (uint64_t)(flags >> 3) * 1024;
	cfg.retries = fuzz_u8(in) % 5;
	cfg.start_timeout_ms = fuzz_u8(in) * 10u;
	cfg.timeout_ms = fuzz_u8(in) * 10u;
	n = fuzz_take(in, fuzz_u8(in) % 72, &p);
	memcpy(name, p, n);
	name[n] = '\0';
	nlen = strlen(name);
	cfg.name = name;
	cfg.size = md->f.size;
	cfg.only_1k = md->only_1k;
	cfg.read = file_read;
	cfg.read_ctx = &md->f;
	md->now = 1000;
	rc = ymodem_init(&md->y, &cfg, md->now);
	bad = !nlen || strchr(name, '/') || nlen >= YMODEM_NAME_MAX;
	FUZZ_CHECK(rc == (bad ? -EINVAL : 0));
	if (bad) {
		FUZZ_CHECK(ymodem_state(&md->y) == YMODEM_FAILED);
		return false;
	}
	FUZZ_CHECK(ymodem_state(&md->y) == YMODEM_WAIT_START && !strcmp(md->y.name, name));
	return true;
}

static void step(struct model *md, struct fuzz_in *in)
{
	static const uint8_t table[8] = { YMODEM_ACK, YMODEM_NAK, YMODEM_CRC, YMODEM_CAN,
					  YMODEM_SOH, 0x00,       YMODEM_EOT, 0xff };
	uint8_t op = fuzz_u8(in);
	struct ymodem *y = &md->y;
	const uint8_t *p;
	size_t n;

	switch (op >> 6) {
	case 0:
		ymodem_input(y, &table[op & 7], 1, md->now);
		break;
	case 1:
		n = fuzz_take(in, (size_t)(op & 0x3f) + 1, &p);
		ymodem_input(y, p, n, md->now);
		break;
	case 2:
		if ((op & 0x20) && ymodem_deadline(y) > md->now)
			md->now = ymodem_deadline(y);
		else
			md->now += (uint64_t)(op & 0x1f) * 100;
		ymodem_tick(y, md->now);
		break;
	default:
		n = ymodem_output(y, &p);
		if ((op & 0x3f) != 0x3f && n > (size_t)(op & 0x3f) * 17)
			n = (size_t)(op & 0x3f) * 17;
		ymodem_consumed(y, n, md->now);
		break;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	struct fuzz_in in = { buf, len };
	static struct model md;

	memset(&md, 0, sizeof(md));
	if (!start(&md, &in))
		return 0;
	check_state(&md, YMODEM_WAIT_START);
	while (in.n) {
		enum ymodem_state before = ymodem_state(&md.y);

		step(&md, &in);
		check_state(&md, before);
	}
	return 0;
}
