/* SPDX-License-Identifier: MIT */
/* test_ymodem.c - cmocka tests for the YMODEM-1K sender (southbound/ymodem.c).
 * A fake receiver drives the machine the way lrzsz `rz` does and decodes
 * every frame it writes: kind, block number and its complement, length,
 * CRC-16 (recomputed here by a different method), padding and the block 0
 * fields; the file is reassembled and compared with its source. Covered:
 * every size boundary in both tail modes, block numbers past 255, duplicate
 * ACKs, NAK storms, timeouts, the start timeout, a stalled writer, CAN at
 * every state, read errors, garbage, partial writes, EOT NAK, CRC vectors,
 * and a table of hostile inputs plus seeded random rounds that check the
 * machine's invariants after every step.
 * Must not: depend on the clock's value, the network or test order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ymodem.h"

#define NAME "fw-1.2.bin"
#define T0 1000                 /* ms: the clock at ymodem_init() */
#define OUT_MAX (YMODEM_FRAME_MAX + 8)
#define BIG (300 * 1024)

static const uint8_t cans[8] = { 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18, 0x18 };

/* ---- helpers ----------------------------------------------------------- */

static uint64_t prng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* CRC-16/XMODEM one input bit at a time (not the library's loop). */
static uint16_t t_crc(const uint8_t *p, size_t n)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < n; i++) {
		for (int bit = 7; bit >= 0; bit--) {
			unsigned top = (crc >> 15) ^ ((p[i] >> bit) & 1u);

			crc = (uint16_t)(crc << 1);
			if (top)
				crc ^= 0x1021;
		}
	}
	return crc;
}

/* The file: size bytes declared, have of them readable. */
struct src {
	uint8_t *data;
	uint64_t size;
	uint64_t have;
	uint64_t fail_off;      /* with fail_rc: this read fails */
	int fail_rc;            /* < 0: error; 1: reads one byte too many */
	unsigned reads;
};

static int src_read(void *ctx, uint64_t off, uint8_t *buf, size_t len)
{
	struct src *s = ctx;
	size_t n = len;

	s->reads++;
	assert_true(len > 0 && len <= 1024);
	assert_true(off + len <= s->size);           /* never past the declared size */
	if (s->fail_rc && off == s->fail_off)
		return s->fail_rc < 0 ? s->fail_rc : (int)len + 1;
	if (off >= s->have)
		return 0;
	if (n > s->have - off)
		n = (size_t)(s->have - off);
	memcpy(buf, s->data + off, n);
	return (int)n;
}

/* The fake receiver. */
struct rx {
	struct ymodem y;
	struct src src;
	uint64_t now;
	size_t step;            /* bytes per ymodem_consumed(); 0: all */
	uint8_t f[OUT_MAX];     /* the last frame written */
	size_t n;
	uint8_t *got;           /* reassembled file */
	uint64_t off;
	uint8_t seq;            /* next expected data block number */
	unsigned n_stx, n_soh, blocks;
	bool wrapped;           /* saw data block 255 followed by 0 */
};

static void rx_init_cfg(struct rx *r, uint64_t size, struct ymodem_cfg *cfg)
{
	uint64_t s = 0x9E3779B97F4A7C15ULL ^ size;

	memset(r, 0, sizeof(*r));
	r->src.data = malloc(size ? size : 1);
	r->got = calloc(1, size ? size : 1);
	assert_non_null(r->src.data);
	assert_non_null(r->got);
	for (uint64_t i = 0; i < size; i++)
		r->src.data[i] = (uint8_t)(prng_next(&s) >> 56);
	r->src.size = r->src.have = size;
	r->now = T0;
	r->seq = 1;
	cfg->name = cfg->name ? cfg->name : NAME;
	cfg->size = size;
	cfg->read = src_read;
	cfg->read_ctx = &r->src;
	assert_int_equal(ymodem_init(&r->y, cfg, r->now), 0);
}

static void rx_init(struct rx *r, uint64_t size, bool only_1k)
{
	struct ymodem_cfg cfg = { .only_1k = only_1k };

	rx_init_cfg(r, size, &cfg);
}

static void rx_free(struct rx *r)
{
	free(r->src.data);
	free(r->got);
}

/* Writes out what the machine has, r->step bytes at a time; the clock
 * moves 1 ms per write. Returns the byte count (also r->n). */
static size_t rx_pull(struct rx *r)
{
	const uint8_t *p;
	size_t n, k;

	r->n = 0;
	while ((n = ymodem_output(&r->y, &p)) > 0) {
		assert_non_null(p);
		assert_true(p >= r->y.frame && p + n <= r->y.frame + sizeof(r->y.frame));
		k = r->step && r->step < n ? r->step : n;
		assert_true(r->n + k <= sizeof(r->f));
		memcpy(r->f + r->n, p, k);
		r->n += k;
		r->now++;
		ymodem_consumed(&r->y, k, r->now);
	}
	assert_null(p);
	return r->n;
}

static int rx_send(struct rx *r, const void *p, size_t n)
{
	return ymodem_input(&r->y, p, n, r->now);
}

/* Sends one byte and writes out the answer. */
static size_t rx_answer(struct rx *r, uint8_t c)
{
	assert_int_equal(rx_send(r, &c, 1), 0);
	return rx_pull(r);
}

/* Checks that f[0..n) is one whole block; returns its payload length. */
static size_t check_block(const uint8_t *f, size_t n)
{
	size_t len;
	uint16_t crc;

	assert_true(n >= 1);
	assert_true(f[0] == YMODEM_SOH || f[0] == YMODEM_STX);
	len = f[0] == YMODEM_STX ? 1024 : 128;
	assert_int_equal(n, 3 + len + 2);
	assert_int_equal(f[2], (uint8_t)~f[1]);
	crc = t_crc(f + 3, len);
	assert_int_equal(f[3 + len], crc >> 8);
	assert_int_equal(f[4 + len], crc & 0xff);
	assert_int_equal(t_crc(f + 3, len + 2), 0);  /* the residue of a good block */
	return len;
}

static void check_header(const uint8_t *f, size_t n, const char *name, uint64_t size)
{
	size_t nl = strlen(name), len = check_block(f, n), dl;
	const uint8_t *d = f + 3;
	char dec[24];

	assert_int_equal(f[0], YMODEM_SOH);
	assert_int_equal(f[1], 0);
	dl = (size_t)snprintf(dec, sizeof(dec), "%" PRIu64, size);
	assert_memory_equal(d, name, nl);
	assert_int_equal(d[nl], 0);
	assert_memory_equal(d + nl + 1, dec, dl);
	for (size_t i = nl + 1 + dl; i < len; i++)
		assert_int_equal(d[i], 0);
}

static void check_cans(const struct rx *r)
{
	assert_int_equal(r->n, sizeof(cans));
	assert_memory_equal(r->f, cans, sizeof(cans));
	assert_int_equal(ymodem_state(&r->y), YMODEM_FAILED);
	assert_int_equal(ymodem_deadline(&r->y), 0);
}

/* The last frame must be the next data block: checks and keeps it. */
static void rx_take_data(struct rx *r)
{
	uint64_t left = r->src.size - r->off;
	size_t len = check_block(r->f, r->n);
	size_t take = left < len ? (size_t)left : len;
	bool want_stx = left >= 1024 || r->y.cfg.only_1k;

	assert_true(left > 0);
	assert_int_equal(r->f[0], want_stx ? YMODEM_STX : YMODEM_SOH);
	assert_int_equal(r->f[1], r->seq);
	if (r->seq == 0 && r->blocks > 0)
		r->wrapped = true;
	memcpy(r->got + r->off, r->f + 3, take);
	for (size_t i = take; i < len; i++)
		assert_int_equal(r->f[3 + i], YMODEM_PAD);
	r->off += take;
	r->seq++;
	r->blocks++;
	if (want_stx)
		r->n_stx++;
	else
		r->n_soh++;
	assert_int_equal(ymodem_state(&r->y), YMODEM_WAIT_DATA_ACK);
	assert_int_equal(ymodem_deadline(&r->y), r->now + r->y.cfg.timeout_ms);
	assert_int_equal(ymodem_acked(&r->y), r->off - take);
}

/* 'C', block 0, then ACK 'C' as rz sends them; leaves the first data
 * frame (or EOT) in r->f. */
static void rx_start(struct rx *r)
{
	assert_int_equal(rx_pull(r), 0);
	assert_int_equal(ymodem_state(&r->y), YMODEM_WAIT_START);
	rx_answer(r, YMODEM_CRC);
	check_header(r->f, r->n, NAME, r->src.size);
	assert_int_equal(ymodem_state(&r->y), YMODEM_WAIT_HDR_ACK);
	assert_int_equal(ymodem_deadline(&r->y), r->now + r->y.cfg.timeout_ms);
	assert_int_equal(rx_answer(r, YMODEM_ACK), 0);
	assert_int_equal(ymodem_state(&r->y), YMODEM_WAIT_DATA_C);
	rx_answer(r, YMODEM_CRC);
}

/* From the frame in r->f: ACKs every data block, then EOT, 'C', end block. */
static void rx_finish(struct rx *r)
{
	while (r->n != 1) {
		rx_take_data(r);
		rx_answer(r, YMODEM_ACK);
	}
	assert_int_equal(r->f[0], YMODEM_EOT);
	assert_int_equal(ymodem_state(&r->y), YMODEM_WAIT_EOT_ACK);
	assert_int_equal(r->off, r->src.size);
	assert_int_equal(ymodem_acked(&r->y), r->src.size);
	assert_int_equal(rx_answer(r, YMODEM_ACK), 0);
	assert_int_equal(ymodem_state(&r->y), YMODEM_WAIT_END_C);
	rx_answer(r, YMODEM_CRC);
	assert_int_equal(check_block(r->f, r->n), 128);
	assert_int_equal(r->f[0], YMODEM_SOH);
	assert_int_equal(r->f[1], 0);
	for (size_t i = 0; i < 128; i++)
		assert_int_equal(r->f[3 + i], 0);
	assert_int_equal(ymodem_state(&r->y), YMODEM_WAIT_END_ACK);
	assert_int_equal(rx_answer(r, YMODEM_ACK), 0);
	assert_int_equal(ymodem_state(&r->y), YMODEM_DONE);
	assert_int_equal(ymodem_result(&r->y), 0);
	assert_int_equal(ymodem_deadline(&r->y), 0);
	assert_int_equal(ymodem_acked(&r->y), r->src.size);
	if (r->src.size)
		assert_memory_equal(r->got, r->src.data, r->src.size);
}

/* One whole transfer; checks the block kinds and count. */
static void xfer(uint64_t size, bool only_1k, size_t step)
{
	struct rx r;
	uint64_t tail = size % 1024;

	rx_init(&r, size, only_1k);
	r.step = step;
	rx_start(&r);
	rx_finish(&r);
	assert_int_equal(r.n_stx, size / 1024 + (only_1k && tail ? 1 : 0));
	assert_int_equal(r.n_soh, only_1k ? 0 : (tail + 127) / 128);
	assert_int_equal(r.y.resends, 0);
	rx_free(&r);
}

/* ---- CRC, init ---------------------------------------------------------- */

static void test_crc_vectors(void **state)
{
	static const uint8_t zeros[1024];
	uint8_t buf[600];
	uint64_t s = 42;

	assert_int_equal(ymodem_crc16((const uint8_t *)"123456789", 9), 0x31C3);
	assert_int_equal(ymodem_crc16((const uint8_t *)"", 0), 0);
	assert_int_equal(ymodem_crc16((const uint8_t *)"A", 1), 0x58E5);
	assert_int_equal(ymodem_crc16(zeros, sizeof(zeros)), 0);
	assert_int_equal(t_crc((const uint8_t *)"123456789", 9), 0x31C3);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(prng_next(&s) >> 56);
	for (size_t n = 0; n <= sizeof(buf); n += 7)
		assert_int_equal(ymodem_crc16(buf, n), t_crc(buf, n));
}

static void test_init_invalid(void **state)
{
	struct ymodem y;
	char name[YMODEM_NAME_MAX + 1];
	struct ymodem_cfg cfg = { .name = "a", .read = src_read };

	assert_int_equal(ymodem_init(&y, &cfg, 0), 0);
	cfg.read = NULL;
	assert_int_equal(ymodem_init(&y, &cfg, 0), -EINVAL);
	assert_int_equal(ymodem_state(&y), YMODEM_FAILED);
	assert_int_equal(ymodem_deadline(&y), 0);
	cfg.read = src_read;
	cfg.name = NULL;
	assert_int_equal(ymodem_init(&y, &cfg, 0), -EINVAL);
	cfg.name = "";
	assert_int_equal(ymodem_init(&y, &cfg, 0), -EINVAL);
	cfg.name = "dir/fw.bin";
	assert_int_equal(ymodem_init(&y, &cfg, 0), -EINVAL);
	cfg.name = "/fw.bin";
	assert_int_equal(ymodem_init(&y, &cfg, 0), -EINVAL);
	memset(name, 'n', sizeof(name));
	name[YMODEM_NAME_MAX] = '\0';
	cfg.name = name;
	assert_int_equal(ymodem_init(&y, &cfg, 0), -EINVAL);
	name[YMODEM_NAME_MAX - 1] = '\0';
	assert_int_equal(ymodem_init(&y, &cfg, 0), 0);
}

/* The longest name and size still make a 128-byte block 0; the name is a copy. */
static void test_header_fields(void **state)
{
	struct ymodem y;
	char name[YMODEM_NAME_MAX], keep[YMODEM_NAME_MAX];
	struct ymodem_cfg cfg = { .name = name, .size = UINT64_MAX, .read = src_read };
	const uint8_t *p;
	uint8_t c = YMODEM_CRC;
	size_t n;

	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	memcpy(keep, name, sizeof(name));
	assert_int_equal(ymodem_init(&y, &cfg, 0), 0);
	memset(name, 'z', sizeof(name) - 1);
	assert_int_equal(ymodem_input(&y, &c, 1, 5), 0);
	n = ymodem_output(&y, &p);
	check_header(p, n, keep, UINT64_MAX);
}

/* ---- whole transfers ---------------------------------------------------- */

static const uint64_t sizes[] = {
	0, 1, 127, 128, 129, 1023, 1024, 1025, 3 * 1024, 3 * 1024 + 1, BIG,
};

static void test_sizes_default(void **state)
{
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		xfer(sizes[i], false, 0);
}

static void test_sizes_only_1k(void **state)
{
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		xfer(sizes[i], true, 0);
}

/* Frames written a few bytes at a time arrive whole and the same. */
static void test_partial_writes(void **state)
{
	static const size_t steps[] = { 1, 2, 7, 100, 1028, 1029, 5000 };

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		xfer(3 * 1024 + 1, false, steps[i]);
		xfer(1025, true, steps[i]);
	}
	xfer(BIG, false, 13);
}

static void test_block_wrap(void **state)
{
	struct rx r;

	rx_init(&r, BIG, false);
	rx_start(&r);
	rx_finish(&r);
	assert_int_equal(r.blocks, 300);
	assert_true(r.wrapped);
	assert_int_equal(r.seq, 301 % 256);
	rx_free(&r);
}

/* Zero bytes: after block 0 and 'C' the next frame is EOT. */
static void test_zero_file(void **state)
{
	struct rx r;

	rx_init(&r, 0, false);
	rx_start(&r);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.f[0], YMODEM_EOT);
	assert_int_equal(r.src.reads, 0);
	rx_finish(&r);
	rx_free(&r);
}

/* 'C' without ACK after block 0 starts the data too. */
static void test_c_alone_after_header(void **state)
{
	struct rx r;

	rx_init(&r, 2000, false);
	rx_answer(&r, YMODEM_CRC);
	check_header(r.f, r.n, NAME, 2000);
	rx_answer(&r, YMODEM_CRC);
	rx_finish(&r);
	rx_free(&r);
}

/* ---- answers ------------------------------------------------------------ */

static void test_duplicate_acks(void **state)
{
	static const uint8_t acks3[] = { YMODEM_ACK, YMODEM_ACK, YMODEM_ACK };
	static const uint8_t ack_ack_c[] = { YMODEM_ACK, YMODEM_ACK, YMODEM_CRC };
	const uint8_t *p;
	struct rx r;

	rx_init(&r, 5000, false);
	assert_int_equal(rx_answer(&r, YMODEM_ACK), 0);       /* before 'C' */
	assert_int_equal(ymodem_state(&r.y), YMODEM_WAIT_START);
	rx_answer(&r, YMODEM_CRC);
	assert_int_equal(rx_send(&r, ack_ack_c, sizeof(ack_ack_c)), 0);
	rx_pull(&r);
	rx_take_data(&r);                                      /* block 1 */
	assert_int_equal(rx_send(&r, acks3, sizeof(acks3)), 0);
	rx_pull(&r);
	rx_take_data(&r);                                      /* block 2, not 3 */
	assert_int_equal(ymodem_acked(&r.y), 1024);
	rx_answer(&r, YMODEM_ACK);
	assert_int_equal(rx_send(&r, "C", 1), 0);              /* 'C' is no ACK */
	assert_int_equal(ymodem_output(&r.y, &p), 0);
	assert_int_equal(ymodem_acked(&r.y), 2048);
	rx_take_data(&r);
	while (rx_answer(&r, YMODEM_ACK) != 1)
		rx_take_data(&r);
	assert_int_equal(r.f[0], YMODEM_EOT);
	assert_int_equal(rx_answer(&r, YMODEM_ACK), 0);
	assert_int_equal(rx_answer(&r, YMODEM_ACK), 0);      /* waiting for 'C' */
	assert_int_equal(ymodem_state(&r.y), YMODEM_WAIT_END_C);
	rx_answer(&r, YMODEM_CRC);
	assert_int_equal(rx_answer(&r, YMODEM_ACK), 0);
	assert_int_equal(ymodem_state(&r.y), YMODEM_DONE);
	assert_int_equal(rx_answer(&r, YMODEM_ACK), 0);      /* after DONE */
	assert_int_equal(rx_answer(&r, YMODEM_NAK), 0);
	assert_int_equal(ymodem_state(&r.y), YMODEM_DONE);
	assert_memory_equal(r.got, r.src.data, 5000);
	rx_free(&r);
}

/* While a frame is half written, ACK, NAK and 'C' change nothing. */
static void test_answers_while_writing(void **state)
{
	static const uint8_t noise[] = { YMODEM_ACK, YMODEM_NAK, YMODEM_CRC, YMODEM_ACK };
	struct rx r;
	const uint8_t *p;
	size_t n;

	rx_init(&r, 3000, false);
	rx_start(&r);
	rx_take_data(&r);
	rx_send(&r, (const uint8_t[]){ YMODEM_ACK }, 1);
	assert_int_equal(ymodem_output(&r.y, &p), 1029);
	ymodem_consumed(&r.y, 10, r.now);
	assert_int_equal(rx_send(&r, noise, sizeof(noise)), 0);
	n = ymodem_output(&r.y, &p);
	assert_int_equal(n, 1019);
	assert_int_equal(ymodem_acked(&r.y), 1024);
	assert_int_equal(ymodem_state(&r.y), YMODEM_WAIT_DATA_ACK);
	ymodem_consumed(&r.y, 5000, r.now);                    /* more than pending */
	assert_int_equal(ymodem_output(&r.y, &p), 0);
	assert_int_equal(ymodem_deadline(&r.y), r.now + 10000);
	rx_send(&r, (const uint8_t[]){ YMODEM_ACK }, 1);
	assert_int_equal(ymodem_acked(&r.y), 2048);
	rx_free(&r);
}

/* NAK k times then ACK: k <= retries works, retries + 1 gives up. */
static void nak_storm(unsigned retries, unsigned k, bool only_1k)
{
	struct ymodem_cfg cfg = { .retries = retries, .only_1k = only_1k };
	unsigned limit = retries ? retries : 10;
	uint8_t first[OUT_MAX];
	size_t n;
	struct rx r;

	rx_init_cfg(&r, 3000, &cfg);
	rx_start(&r);
	rx_take_data(&r);
	rx_answer(&r, YMODEM_ACK);
	rx_take_data(&r);                                      /* block 2 gets the NAKs */
	memcpy(first, r.f, r.n);
	n = r.n;
	for (unsigned i = 0; i < k && i < limit; i++) {
		assert_int_equal(rx_answer(&r, YMODEM_NAK), n);
		assert_memory_equal(r.f, first, n);
	}
	if (k > limit) {
		assert_int_equal(rx_send(&r, (const uint8_t[]){ YMODEM_NAK }, 1), -ETIMEDOUT);
		rx_pull(&r);
		check_cans(&r);
		assert_int_equal(ymodem_result(&r.y), -ETIMEDOUT);
		assert_int_equal(ymodem_acked(&r.y), 1024);
		assert_int_equal(rx_send(&r, (const uint8_t[]){ YMODEM_ACK }, 1), -ETIMEDOUT);
		assert_int_equal(rx_pull(&r), 0);
		rx_free(&r);
		return;
	}
	assert_int_equal(r.y.resends, k);
	rx_answer(&r, YMODEM_ACK);
	rx_finish(&r);
	rx_free(&r);
}

static void test_nak_storm(void **state)
{
	for (unsigned k = 0; k <= 11; k++)
		nak_storm(0, k, false);
	for (unsigned k = 0; k <= 4; k++)
		nak_storm(3, k, k & 1);
	nak_storm(1, 2, false);
}

/* NAKs of block 0, EOT and the end block resend them; ACK after goes on. */
static void test_nak_other_frames(void **state)
{
	struct ymodem_cfg cfg = { .retries = 2 };
	struct rx r;

	rx_init_cfg(&r, 100, &cfg);
	rx_answer(&r, YMODEM_CRC);
	rx_answer(&r, YMODEM_NAK);
	check_header(r.f, r.n, NAME, 100);
	rx_answer(&r, YMODEM_NAK);
	check_header(r.f, r.n, NAME, 100);
	rx_answer(&r, YMODEM_ACK);
	rx_answer(&r, YMODEM_CRC);
	rx_take_data(&r);
	rx_answer(&r, YMODEM_ACK);
	assert_int_equal(r.n, 1);
	assert_int_equal(rx_answer(&r, YMODEM_NAK), 1);       /* EOT again */
	assert_int_equal(r.f[0], YMODEM_EOT);
	assert_int_equal(rx_answer(&r, YMODEM_NAK), 1);
	assert_int_equal(rx_answer(&r, YMODEM_ACK), 0);
	rx_answer(&r, YMODEM_CRC);
	assert_int_equal(rx_answer(&r, YMODEM_NAK), 133);     /* end block again */
	assert_int_equal(r.f[1], 0);
	assert_int_equal(rx_answer(&r, YMODEM_ACK), 0);
	assert_int_equal(ymodem_state(&r.y), YMODEM_DONE);
	assert_int_equal(r.y.resends, 5);
	rx_free(&r);
}

/* EOT answered by NAK past the retries fails like any frame. */
static void test_eot_nak_exhausted(void **state)
{
	struct ymodem_cfg cfg = { .retries = 2 };
	struct rx r;

	rx_init_cfg(&r, 0, &cfg);
	rx_start(&r);
	assert_int_equal(rx_answer(&r, YMODEM_NAK), 1);
	assert_int_equal(rx_answer(&r, YMODEM_NAK), 1);
	assert_int_equal(rx_send(&r, (const uint8_t[]){ YMODEM_NAK }, 1), -ETIMEDOUT);
	rx_pull(&r);
	check_cans(&r);
	rx_free(&r);
}

/* 'C' while a data block, EOT or the end block waits for its answer. */
static void test_c_is_not_an_answer(void **state)
{
	struct rx r;

	rx_init(&r, 200, false);
	rx_start(&r);
	rx_take_data(&r);
	assert_int_equal(rx_answer(&r, YMODEM_CRC), 0);
	assert_int_equal(ymodem_state(&r.y), YMODEM_WAIT_DATA_ACK);
	assert_int_equal(ymodem_acked(&r.y), 0);
	rx_answer(&r, YMODEM_ACK);
	rx_take_data(&r);
	assert_int_equal(rx_answer(&r, YMODEM_ACK), 1);
	assert_int_equal(rx_answer(&r, YMODEM_CRC), 0);
	assert_int_equal(ymodem_state(&r.y), YMODEM_WAIT_EOT_ACK);
	rx_answer(&r, YMODEM_ACK);
	rx_answer(&r, YMODEM_CRC);
	assert_int_equal(rx_answer(&r, YMODEM_CRC), 0);
	assert_int_equal(ymodem_state(&r.y), YMODEM_WAIT_END_ACK);
	rx_answer(&r, YMODEM_ACK);
	assert_int_equal(ymodem_state(&r.y), YMODEM_DONE);
	assert_memory_equal(r.got, r.src.data, 200);
	rx_free(&r);
}

/* ---- time --------------------------------------------------------------- */

static void test_defaults(void **state)
{
	struct rx r;

	rx_init(&r, 10, false);
	assert_int_equal(ymodem_deadline(&r.y), T0 + 60000);
	assert_int_equal(r.y.cfg.retries, 10);
	rx_answer(&r, YMODEM_CRC);
	assert_int_equal(ymodem_deadline(&r.y), r.now + 10000);
	rx_free(&r);
}

static void test_start_timeout(void **state)
{
	struct ymodem_cfg cfg = { .start_timeout_ms = 200 };
	struct rx r;

	rx_init(&r, 10, false);
	assert_int_equal(ymodem_tick(&r.y, T0 + 59999), 0);
	assert_int_equal(rx_pull(&r), 0);
	assert_int_equal(ymodem_tick(&r.y, T0 + 60000), -ETIMEDOUT);
	rx_pull(&r);
	check_cans(&r);
	assert_int_equal(ymodem_result(&r.y), -ETIMEDOUT);
	assert_int_equal(ymodem_tick(&r.y, T0 + 90000), -ETIMEDOUT);
	assert_int_equal(rx_send(&r, "C", 1), -ETIMEDOUT);      /* too late */
	assert_int_equal(rx_pull(&r), 0);
	assert_int_equal(ymodem_state(&r.y), YMODEM_FAILED);
	rx_free(&r);

	rx_init_cfg(&r, 10, &cfg);
	assert_int_equal(ymodem_tick(&r.y, T0 + 199), 0);
	r.now = T0 + 199;
	rx_answer(&r, YMODEM_CRC);                             /* just in time */
	check_header(r.f, r.n, NAME, 10);
	assert_int_equal(ymodem_tick(&r.y, T0 + 200), 0);
	assert_int_equal(ymodem_state(&r.y), YMODEM_WAIT_HDR_ACK);
	rx_free(&r);
}

/* A silent receiver: the frame is resent at each deadline, retries times. */
static void test_answer_timeouts(void **state)
{
	struct ymodem_cfg cfg = { .timeout_ms = 500, .retries = 3 };
	uint8_t first[OUT_MAX];
	size_t n;
	struct rx r;

	rx_init_cfg(&r, 3000, &cfg);
	rx_start(&r);
	memcpy(first, r.f, r.n);
	n = r.n;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 3; i++) {
			uint64_t dl = ymodem_deadline(&r.y);

			assert_int_equal(dl, r.now + 500);
			assert_int_equal(ymodem_tick(&r.y, dl - 1), 0);
			assert_int_equal(rx_pull(&r), 0);
			r.now = dl + 7;                        /* late tick */
			assert_int_equal(ymodem_tick(&r.y, r.now), 0);
			assert_int_equal(rx_pull(&r), n);
			assert_memory_equal(r.f, first, n);
		}
		if (round)
			break;
		rx_take_data(&r);                              /* acked: tries restart */
		rx_answer(&r, YMODEM_ACK);
		memcpy(first, r.f, r.n);
		n = r.n;
	}
	r.now = ymodem_deadline(&r.y);
	assert_int_equal(ymodem_tick(&r.y, r.now), -ETIMEDOUT);
	rx_pull(&r);
	check_cans(&r);
	assert_int_equal(ymodem_acked(&r.y), 1024);
	rx_free(&r);
}

/* No 'C' after an ACK: nothing is resent, retries count, then give up. */
static void test_wait_c_timeouts(void **state)
{
	struct ymodem_cfg cfg = { .timeout_ms = 300, .retries = 2 };
	struct rx r;

	rx_init_cfg(&r, 50, &cfg);
	rx_answer(&r, YMODEM_CRC);
	rx_answer(&r, YMODEM_ACK);
	for (int i = 0; i < 2; i++) {
		r.now = ymodem_deadline(&r.y);
		assert_int_equal(ymodem_tick(&r.y, r.now), 0);
		assert_int_equal(rx_pull(&r), 0);
		assert_int_equal(ymodem_state(&r.y), YMODEM_WAIT_DATA_C);
	}
	rx_answer(&r, YMODEM_CRC);
	rx_finish(&r);
	rx_free(&r);

	rx_init_cfg(&r, 50, &cfg);
	rx_start(&r);
	rx_take_data(&r);
	rx_answer(&r, YMODEM_ACK);
	r.now = ymodem_deadline(&r.y);
	assert_int_equal(ymodem_tick(&r.y, r.now), 0);
	assert_int_equal(rx_pull(&r), 1);                     /* EOT resent */
	rx_answer(&r, YMODEM_ACK);
	for (int i = 0; i < 2; i++) {
		r.now = ymodem_deadline(&r.y);
		assert_int_equal(ymodem_tick(&r.y, r.now), 0);
		assert_int_equal(rx_pull(&r), 0);
		assert_int_equal(ymodem_state(&r.y), YMODEM_WAIT_END_C);
	}
	/* EOT was acknowledged: the file is delivered, no CAN. */
	r.now = ymodem_deadline(&r.y);
	assert_int_equal(ymodem_tick(&r.y, r.now), 0);
	assert_int_equal(rx_pull(&r), 0);
	assert_int_equal(ymodem_state(&r.y), YMODEM_DONE);
	assert_int_equal(ymodem_deadline(&r.y), 0);
	assert_int_equal(ymodem_acked(&r.y), 50);
	rx_free(&r);
}

/* The end block's ACK never comes (rz over a pty flushes it away), or the
 * end block is NAKed or cannot be written: still DONE once retries run out. */
static void end_lost(int how)
{
	struct ymodem_cfg cfg = { .timeout_ms = 200, .retries = 3 };
	const uint8_t *p;
	struct rx r;

	rx_init_cfg(&r, 700, &cfg);
	rx_start(&r);
	while (rx_answer(&r, YMODEM_ACK) != 1)
		;
	rx_answer(&r, YMODEM_ACK);
	if (how == 2)
		rx_send(&r, "C", 1);
	else
		assert_int_equal(rx_answer(&r, YMODEM_CRC), 133);
	for (int i = 0; i <= 3; i++) {
		assert_int_equal(ymodem_state(&r.y), YMODEM_WAIT_END_ACK);
		if (how == 1) {
			assert_int_equal(rx_send(&r, (const uint8_t[]){ YMODEM_NAK }, 1), 0);
		} else {
			r.now = ymodem_deadline(&r.y);
			assert_int_equal(ymodem_tick(&r.y, r.now), 0);
		}
		if (how != 2)
			assert_int_equal(rx_pull(&r), i < 3 ? 133 : 0);
	}
	assert_int_equal(ymodem_state(&r.y), YMODEM_DONE);
	assert_int_equal(ymodem_result(&r.y), 0);
	assert_int_equal(ymodem_output(&r.y, &p), 0);
	assert_int_equal(ymodem_deadline(&r.y), 0);
	assert_int_equal(ymodem_acked(&r.y), 700);
	assert_int_equal(r.y.resends, how == 2 ? 0 : 3);
	rx_free(&r);
}

static void test_end_handshake_lost(void **state)
{
	end_lost(0);            /* silence */
	end_lost(1);            /* NAKs */
	end_lost(2);            /* the writer stalls */
}

/* A writer that stops: the frame is not restarted; no progress for
 * timeout_ms counts as a retry; progress moves the deadline. */
static void test_stalled_writer(void **state)
{
	struct ymodem_cfg cfg = { .timeout_ms = 100, .retries = 2 };
	const uint8_t *p;
	struct rx r;

	rx_init_cfg(&r, 5000, &cfg);
	rx_start(&r);
	rx_send(&r, (const uint8_t[]){ YMODEM_ACK }, 1);
	assert_int_equal(ymodem_deadline(&r.y), r.now + 100);
	ymodem_consumed(&r.y, 29, r.now + 50);
	assert_int_equal(ymodem_deadline(&r.y), r.now + 150);
	ymodem_consumed(&r.y, 0, r.now + 120);                 /* no progress */
	assert_int_equal(ymodem_deadline(&r.y), r.now + 150);
	for (int i = 1; i <= 2; i++) {
		assert_int_equal(ymodem_tick(&r.y, r.now + 50 + 100 * i), 0);
		assert_int_equal(ymodem_output(&r.y, &p), 1000);
		assert_ptr_equal(p, r.y.frame + 29);
	}
	assert_int_equal(ymodem_tick(&r.y, r.now + 350), -ETIMEDOUT);
	rx_pull(&r);
	check_cans(&r);
	rx_free(&r);
}

/* ---- CAN, errors, garbage ----------------------------------------------- */

/* Drives r (200 bytes: two SOH blocks) to state s with nothing pending. */
static void reach(struct rx *r, enum ymodem_state s)
{
	static const uint8_t path[] = { YMODEM_CRC, YMODEM_ACK, YMODEM_CRC, YMODEM_ACK,
					YMODEM_ACK, YMODEM_ACK, YMODEM_CRC };
	static const enum ymodem_state after[] = {
		YMODEM_WAIT_HDR_ACK, YMODEM_WAIT_DATA_C, YMODEM_WAIT_DATA_ACK,
		YMODEM_WAIT_DATA_ACK, YMODEM_WAIT_EOT_ACK, YMODEM_WAIT_END_C,
		YMODEM_WAIT_END_ACK,
	};

	rx_init(r, 200, false);
	for (size_t i = 0; ymodem_state(&r->y) != s; i++) {
		assert_true(i < sizeof(path));
		rx_answer(r, path[i]);
		assert_int_equal(ymodem_state(&r->y), after[i]);
	}
}

static void test_can_cancels(void **state)
{
	static const uint8_t can2[] = { YMODEM_CAN, YMODEM_CAN };
	struct rx r;

	for (int s = YMODEM_WAIT_START; s <= YMODEM_WAIT_END_ACK; s++) {
		reach(&r, (enum ymodem_state)s);
		assert_int_equal(rx_send(&r, can2, 2), -ECANCELED);
		assert_int_equal(rx_pull(&r), 0);
		assert_int_equal(ymodem_state(&r.y), YMODEM_FAILED);
		assert_int_equal(ymodem_result(&r.y), -ECANCELED);
		assert_int_equal(ymodem_deadline(&r.y), 0);
		rx_free(&r);

		reach(&r, (enum ymodem_state)s);               /* split across reads */
		assert_int_equal(rx_send(&r, can2, 1), 0);
		assert_int_equal(rx_send(&r, can2, 1), -ECANCELED);
		assert_int_equal(rx_pull(&r), 0);
		rx_free(&r);
	}
	/* While a frame is being written: dropped, nothing more is sent. */
	rx_init(&r, 5000, false);
	rx_send(&r, (const uint8_t[]){ YMODEM_CRC }, 1);
	ymodem_consumed(&r.y, 50, r.now);
	assert_int_equal(rx_send(&r, can2, 2), -ECANCELED);
	assert_int_equal(rx_pull(&r), 0);
	rx_free(&r);
}

/* A lone CAN followed by anything else does not cancel; that byte counts. */
static void test_single_can(void **state)
{
	static const uint8_t can_x_can[] = { YMODEM_CAN, 'x', YMODEM_CAN };
	static const uint8_t can_ack[] = { YMODEM_CAN, YMODEM_ACK };
	struct rx r;

	for (int s = YMODEM_WAIT_START; s <= YMODEM_WAIT_END_ACK; s++) {
		reach(&r, (enum ymodem_state)s);
		assert_int_equal(rx_send(&r, can_x_can, sizeof(can_x_can)), 0);
		assert_int_equal(rx_send(&r, (const uint8_t[]){ 0 }, 1), 0);
		assert_int_equal(rx_send(&r, can_x_can + 2, 1), 0);
		assert_int_equal(rx_pull(&r), 0);
		assert_int_equal(ymodem_state(&r.y), (enum ymodem_state)s);
		rx_free(&r);
	}
	reach(&r, YMODEM_WAIT_DATA_ACK);
	rx_take_data(&r);
	assert_int_equal(rx_send(&r, can_ack, sizeof(can_ack)), 0);
	rx_pull(&r);
	rx_take_data(&r);                                      /* the ACK counted */
	rx_answer(&r, YMODEM_ACK);
	rx_finish(&r);
	rx_free(&r);
}

static void read_fails(uint64_t size, uint64_t have, uint64_t at, int rc, int want)
{
	struct rx r;
	uint8_t ack = YMODEM_ACK;
	int got = 0;

	rx_init(&r, size, false);
	r.src.have = have;
	r.src.fail_off = at;
	r.src.fail_rc = rc;
	assert_int_equal(rx_answer(&r, YMODEM_CRC), 133);
	rx_answer(&r, YMODEM_ACK);
	got = rx_send(&r, (const uint8_t[]){ YMODEM_CRC }, 1);
	while (!got) {
		rx_pull(&r);
		rx_take_data(&r);
		got = rx_send(&r, &ack, 1);
	}
	assert_int_equal(got, want);
	assert_int_equal(ymodem_result(&r.y), want);
	rx_pull(&r);
	check_cans(&r);
	assert_int_equal(r.off, at);
	assert_int_equal(ymodem_acked(&r.y), at);
	assert_memory_equal(r.got, r.src.data, at);
	rx_free(&r);
}

static void test_read_errors(void **state)
{
	read_fails(5000, 5000, 0, -EBADF, -EBADF);
	read_fails(5000, 5000, 2048, -EIO, -EIO);
	read_fails(5000, 5000, 4096, -ENOMEM, -ENOMEM);        /* the SOH tail */
	read_fails(5000, 5000, 1024, 1, -EIO);                 /* read too much */
	read_fails(5000, 3000, 2048, 0, -EIO);                 /* file shrank */
	read_fails(5000, 4096, 4096, 0, -EIO);                 /* nothing at all */
	read_fails(1030, 1029, 1024, 0, -EIO);
}

/* Bytes that mean nothing (a lone CAN among them) before every answer. */
static void test_garbage(void **state)
{
	struct rx r;
	uint64_t s = 7;
	uint8_t junk[16], prev = 0;

	rx_init(&r, 5 * 1024 + 300, false);
	for (int i = 0; i < 200; i++) {
		size_t n = (size_t)(prng_next(&s) % sizeof(junk));

		for (size_t j = 0; j < n; j++) {
			uint8_t c = (uint8_t)(prng_next(&s) >> 56);

			if (c == YMODEM_ACK || c == YMODEM_NAK || c == YMODEM_CRC ||
			    (c == YMODEM_CAN && prev == YMODEM_CAN))
				c = 'z';
			junk[j] = prev = c;
		}
		assert_int_equal(rx_send(&r, junk, n), 0);
		assert_int_equal(rx_pull(&r), 0);
	}
	assert_int_equal(ymodem_state(&r.y), YMODEM_WAIT_START);
	rx_start(&r);
	while (r.n != 1) {
		rx_take_data(&r);
		assert_int_equal(rx_send(&r, "\xff\x00\x43\x00", 1), 0);  /* 0xff only */
		assert_int_equal(rx_send(&r, "\x18\x7f", 2), 0);
		rx_answer(&r, YMODEM_ACK);
	}
	rx_finish(&r);
	rx_free(&r);
}

/* ---- hostile input ------------------------------------------------------ */

static const struct hostile {
	const char *name;
	const char *in;
	size_t len;
	bool drain_each;        /* the frame is written after every byte */
	enum ymodem_state want;
	int rc;
} hostile[] = {
	{ "nothing", "", 0, true, YMODEM_WAIT_START, 0 },
	{ "NAKs before start", "\x15\x15\x15\x15", 4, true, YMODEM_WAIT_START, 0 },
	{ "ACKs before start", "\x06\x06", 2, true, YMODEM_WAIT_START, 0 },
	{ "high and NUL bytes", "\xff\x80\x00\xfe\x00", 5, true, YMODEM_WAIT_START, 0 },
	{ "lowercase c", "ccc", 3, true, YMODEM_WAIT_START, 0 },
	{ "C storm at once", "CCCCCCCC", 8, false, YMODEM_WAIT_HDR_ACK, 0 },
	{ "C storm written", "CCC", 3, true, YMODEM_WAIT_DATA_ACK, 0 },
	{ "ACK storm at once", "C\x06\x06\x06\x06", 5, false, YMODEM_WAIT_HDR_ACK, 0 },
	{ "ACK storm written", "C\x06\x06\x06", 4, true, YMODEM_WAIT_DATA_C, 0 },
	{ "NAK storm at once", "C\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15", 13, false,
	  YMODEM_WAIT_HDR_ACK, 0 },
	{ "NAK storm written", "C\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15\x15", 12, true,
	  YMODEM_FAILED, -ETIMEDOUT },
	{ "CAN CAN first", "\x18\x18" "C", 3, true, YMODEM_FAILED, -ECANCELED },
	{ "CAN CAN mid frame", "C\x18\x18", 3, false, YMODEM_FAILED, -ECANCELED },
	{ "CAN x CAN", "\x18x\x18" "C", 4, true, YMODEM_WAIT_HDR_ACK, 0 },
	{ "CAN NUL CAN", "\x18\x00\x18", 3, true, YMODEM_WAIT_START, 0 },
	{ "whole batch written", "C\x06" "C\x06\x06\x06" "C\x06", 8, true, YMODEM_DONE, 0 },
	{ "whole batch, C only", "CC\x06\x06\x06" "C\x06", 7, true, YMODEM_DONE, 0 },
	{ "after DONE", "C\x06" "C\x06\x06\x06" "C\x06\x18\x18\x15", 11, true, YMODEM_DONE, 0 },
	{ "EOT NAK ACK", "C\x06" "C\x06\x06\x15\x06" "C\x06", 9, true, YMODEM_DONE, 0 },
};

static void test_hostile_table(void **state)
{
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		const struct hostile *h = &hostile[i];
		struct rx r;
		int rc = 0;

		rx_init(&r, 200, false);
		if (h->drain_each) {
			for (size_t j = 0; j < h->len; j++) {
				rc = rx_send(&r, h->in + j, 1);
				rx_pull(&r);
			}
		} else {
			rc = rx_send(&r, h->in, h->len);
		}
		if (ymodem_state(&r.y) != h->want || rc != h->rc)
			fail_msg("%s: state %d rc %d", h->name, ymodem_state(&r.y), rc);
		if (h->want != YMODEM_DONE && h->want != YMODEM_FAILED)
			assert_true(ymodem_deadline(&r.y) > 0);
		assert_true(ymodem_acked(&r.y) <= 200);
		rx_free(&r);
	}
}

/* Every complete frame the machine writes is CAN x8, EOT or a good block. */
static void check_any_frame(const uint8_t *f, size_t n)
{
	if (n == 1)
		assert_int_equal(f[0], YMODEM_EOT);
	else if (n == sizeof(cans))
		assert_memory_equal(f, cans, n);
	else
		check_block(f, n);
}

struct fuzz {
	struct rx r;
	uint64_t s;
	uint8_t acc[OUT_MAX];   /* the frame being written */
	size_t acc_len;
	uint64_t acked;
};

static void fuzz_invariants(struct fuzz *z)
{
	const struct ymodem *y = &z->r.y;
	enum ymodem_state st = ymodem_state(y);
	const uint8_t *p;
	size_t n = ymodem_output(y, &p);

	assert_true(st <= YMODEM_FAILED);
	assert_true(n <= OUT_MAX);
	if (n)
		assert_true(p >= y->frame && p + n <= y->frame + sizeof(y->frame));
	if (st == YMODEM_DONE || st == YMODEM_FAILED)
		assert_int_equal(ymodem_deadline(y), 0);
	else
		assert_true(ymodem_deadline(y) > 0);
	assert_true(ymodem_acked(y) <= z->r.src.size);
	assert_true(ymodem_acked(y) >= z->acked);
	z->acked = ymodem_acked(y);
	if (st == YMODEM_FAILED)
		assert_true(ymodem_result(y) == -ETIMEDOUT || ymodem_result(y) == -ECANCELED);
	else
		assert_int_equal(ymodem_result(y), 0);
}

/* Writes up to max bytes; checks each frame once it is whole. */
static void fuzz_write(struct fuzz *z, size_t max)
{
	const uint8_t *p;
	size_t n = ymodem_output(&z->r.y, &p), k;

	if (!n)
		return;
	if (p == z->r.y.frame)
		z->acc_len = 0; /* a new frame, or the same one again */
	k = max < n ? max : n;
	assert_true(z->acc_len + k <= sizeof(z->acc));
	memcpy(z->acc + z->acc_len, p, k);
	z->acc_len += k;
	ymodem_consumed(&z->r.y, k, z->r.now);
	if (k == n) {
		check_any_frame(z->acc, z->acc_len);
		z->acc_len = 0;
	}
}

static uint8_t fuzz_byte(uint64_t *s)
{
	static const uint8_t proto[] = { YMODEM_ACK, YMODEM_ACK, YMODEM_ACK, YMODEM_CRC,
					 YMODEM_CRC, YMODEM_NAK, YMODEM_CAN, YMODEM_EOT };
	uint64_t v = prng_next(s);

	if (v % 4)
		return proto[(v >> 8) % sizeof(proto)];
	return (uint8_t)(v >> 56);
}

/* One round: some bytes, some writing, maybe time passing. */
static void fuzz_round(struct fuzz *z)
{
	uint8_t in[24];
	uint64_t v = prng_next(&z->s);
	size_t n = (size_t)(v % sizeof(in));
	int rc;

	for (size_t i = 0; i < n; i++)
		in[i] = fuzz_byte(&z->s);
	rc = ymodem_input(&z->r.y, in, n, z->r.now);
	assert_int_equal(rc, ymodem_result(&z->r.y));
	fuzz_invariants(z);
	fuzz_write(z, (v >> 8) % 3 ? OUT_MAX : (size_t)((v >> 16) % 300));
	fuzz_invariants(z);
	z->r.now += (v >> 32) % 40;
	if ((v >> 40) % 8 == 0 && ymodem_deadline(&z->r.y))
		z->r.now = ymodem_deadline(&z->r.y) + (v >> 48) % 3;
	rc = ymodem_tick(&z->r.y, z->r.now);
	assert_int_equal(rc, ymodem_result(&z->r.y));
	fuzz_invariants(z);
}

static const struct fuzz_case {
	uint64_t seed;
	uint64_t size;
	bool only_1k;
	unsigned retries;
} fuzz_cases[] = {
	{ 1, 0, false, 1 },      { 2, 1, false, 2 },       { 3, 130, false, 3 },
	{ 4, 130, true, 3 },     { 5, 1500, false, 0 },    { 6, 5000, true, 2 },
	{ 7, 5000, false, 5 },   { 8, 40000, false, 10 },  { 9, 1024, true, 1 },
	{ 10, 300, false, 20 },  { 11, 3073, false, 4 },   { 12, 2049, true, 4 },
};

static void test_hostile_random(void **state)
{
	unsigned done = 0, failed = 0;

	for (size_t c = 0; c < sizeof(fuzz_cases) / sizeof(fuzz_cases[0]); c++) {
		for (uint64_t run = 0; run < 40; run++) {
			const struct fuzz_case *fc = &fuzz_cases[c];
			struct ymodem_cfg cfg = { .only_1k = fc->only_1k, .retries = fc->retries,
						  .timeout_ms = 50, .start_timeout_ms = 500 };
			struct fuzz *z = calloc(1, sizeof(*z));

			assert_non_null(z);
			z->s = fc->seed * 1000003 + run + 1;
			rx_init_cfg(&z->r, fc->size, &cfg);
			for (int i = 0; i < 400; i++)
				fuzz_round(z);
			done += ymodem_state(&z->r.y) == YMODEM_DONE;
			failed += ymodem_state(&z->r.y) == YMODEM_FAILED;
			rx_free(&z->r);
			free(z);
		}
	}
	/* The rounds reach both ends, not just the first states. */
	assert_true(done > 0);
	assert_true(failed > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_vectors),
		cmocka_unit_test(test_init_invalid),
		cmocka_unit_test(test_header_fields),
		cmocka_unit_test(test_sizes_default),
		cmocka_unit_test(test_sizes_only_1k),
		cmocka_unit_test(test_partial_writes),
		cmocka_unit_test(test_block_wrap),
		cmocka_unit_test(test_zero_file),
		cmocka_unit_test(test_c_alone_after_header),
		cmocka_unit_test(test_duplicate_acks),
		cmocka_unit_test(test_answers_while_writing),
		cmocka_unit_test(test_nak_storm),
		cmocka_unit_test(test_nak_other_frames),
		cmocka_unit_test(test_eot_nak_exhausted),
		cmocka_unit_test(test_c_is_not_an_answer),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_start_timeout),
		cmocka_unit_test(test_answer_timeouts),
		cmocka_unit_test(test_wait_c_timeouts),
		cmocka_unit_test(test_stalled_writer),
		cmocka_unit_test(test_end_handshake_lost),
		cmocka_unit_test(test_can_cancels),
		cmocka_unit_test(test_single_can),
		cmocka_unit_test(test_read_errors),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_hostile_table),
		cmocka_unit_test(test_hostile_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
