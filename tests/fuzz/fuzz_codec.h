/* SPDX-License-Identifier: MIT */
/* fuzz_codec.h - the harness of the device codec targets (fuzz_jsonline.c,
 * fuzz_frame.c): each defines FUZZ_CODEC (a struct codec_ops) and includes
 * this file. Input layout:
 *   byte 0       bits 0-1: [tcp] max_frame (256, 1024, 4096, 65536);
 *                bits 2-5: k, the number of split points (0-15)
 *   k x u16      split points (big-endian, taken modulo the stream's length)
 *   the rest     the byte stream a device sends
 * The stream is fed to a receive loop built like tcp.c's (a struct buf of
 * max_frame + 64 KiB; frame(), decode(), consume, until frame() wants more or
 * fails) twice: whole, and cut at the split points into separate reads.
 * Asserts beyond no crash and no leak:
 *  - both feeds give the same events: every frame's decode result and,
 *    for a message, every field equal; the same fatal error, at the same
 *    place (codecs keep no state: how reads are cut cannot matter);
 *  - frame() never returns more than it was given nor more than max, and
 *    the buffer never fills up without frame() having refused the stream;
 *  - every decoded message is sane, and encode() takes it and gives one
 *    frame that frame() cuts whole and decode() turns back into the same
 *    message (the fields its type carries). */
#ifndef OTAGW_FUZZ_CODEC_H
#define OTAGW_FUZZ_CODEC_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "codec.h"
#include "fuzz_common.h"
#include "fuzz_msg.h"

#define FC_SLACK 65536           /* tcp.c's TCP_RX_SLACK */
#define FC_OUT_MAX (1024 * 1024) /* room for one encoded message */

struct fc_event {
	int rc;                      /* decode() result, or the fatal frame() error */
	bool fatal;
	size_t at;                   /* stream offset where the frame began */
	struct msg *m;               /* rc == 0: the message (owned) */
};

struct fc_feed {
	struct buf rx;
	size_t max;
	size_t consumed;             /* stream bytes consumed by whole frames */
	bool closed;
	struct fc_event *ev;         /* n of them, room for cap */
	size_t n, cap;
};

/* What the codec's own encode() makes of m must come back as m. */
static void fc_reencode(const struct msg *m)
{
	struct buf out;
	struct err_info e = { 0 };
	struct msg back;
	ssize_t n;
	int rc;

	buf_init(&out, FC_OUT_MAX);
	rc = FUZZ_CODEC.encode(m, &out);
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(out.len > 0);
	n = FUZZ_CODEC.frame(out.data, out.len, out.len + 1, &e);
	FUZZ_CHECK(n == (ssize_t)out.len);
	rc = FUZZ_CODEC.decode(out.data, out.len, &back, &e);
	FUZZ_CHECK(rc == 0);
	fuzz_msg_sane(&back);
	fuzz_msg_same(m, &back);
	msg_clear(&back);
	buf_clear(&out);
}

/* tcp.c's tcp_frames(): every whole frame in rx. */
static void fc_frames(struct fc_feed *f)
{
	while (!f->closed && f->rx.len) {
		struct err_info e = { 0 };
		struct fc_event *ev;
		struct msg m;
		ssize_t n = FUZZ_CODEC.frame(f->rx.data, f->rx.len, f->max, &e);

		if (n == 0)
			return;
		if (f->n == f->cap) {
			f->cap = f->cap ? 2 * f->cap : 16;
			f->ev = realloc(f->ev, f->cap * sizeof(*f->ev));
			if (!f->ev)
				abort();
		}
		ev = &f->ev[f->n];
		memset(ev, 0, sizeof(*ev));
		ev->at = f->consumed;
		if (n < 0) {
			FUZZ_CHECK(n == -EMSGSIZE || n == -EBADMSG);
			FUZZ_CHECK(e.code == n && e.text[0]);
			ev->rc = (int)n;
			ev->fatal = true;
			f->n++;
			f->closed = true;
			return;
		}
		FUZZ_CHECK((size_t)n <= f->rx.len && (size_t)n <= f->max);
		ev->rc = FUZZ_CODEC.decode(f->rx.data, (size_t)n, &m, &e);
		if (ev->rc == 0) {
			fuzz_msg_sane(&m);
			ev->m = malloc(sizeof(m));
			if (!ev->m)
				abort();
			*ev->m = m;
		} else {
			FUZZ_CHECK(ev->rc == -EBADMSG || ev->rc == -ENODATA || ev->rc == -ENOMEM);
			FUZZ_CHECK(e.code == ev->rc && e.text[0]);
			FUZZ_CHECK(!m.data && !m.properties && !m.parameters);
		}
		buf_consume(&f->rx, (size_t)n);
		f->consumed += (size_t)n;
		f->n++;
	}
}

/* tcp.c's tcp_rx(): one read of len bytes. */
static void fc_read(struct fc_feed *f, const uint8_t *p, size_t len)
{
	while (len && !f->closed) {
		size_t n = len < buf_room(&f->rx) ? len : buf_room(&f->rx);

		/* frame() must have refused a stream this long already */
		FUZZ_CHECK(n > 0);
		FUZZ_CHECK(buf_append(&f->rx, p, n) == 0);
		p += n;
		len -= n;
		fc_frames(f);
	}
}

static void fc_free(struct fc_feed *f)
{
	for (size_t i = 0; i < f->n; i++) {
		msg_clear(f->ev[i].m);
		free(f->ev[i].m);
	}
	free(f->ev);
	buf_clear(&f->rx);
	free(f);
}

static struct fc_feed *fc_new(size_t max)
{
	struct fc_feed *f = calloc(1, sizeof(*f));

	if (!f)
		abort();
	f->max = max;
	buf_init(&f->rx, max + FC_SLACK);
	return f;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
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
	static const size_t maxes[] = { 256, 1024, 4096, 65536 };
	struct fuzz_in in = { buf, len };
	uint8_t head = fuzz_u8(&in);
	size_t cuts[16], k = (head >> 2) & 15, prev = 0;
	struct fc_feed *whole, *split;
	const uint8_t *s;
	size_t slen;

	for (size_t i = 0; i < k; i++)
		cuts[i] = fuzz_u16(&in);
	slen = fuzz_take(&in, SIZE_MAX, &s);
	for (size_t i = 0; i < k; i++)
		cuts[i] = slen ? cuts[i] % (slen + 1) : 0;
	qsort(cuts, k, sizeof(cuts[0]), cmp_size);

	whole = fc_new(maxes[head & 3]);
	split = fc_new(maxes[head & 3]);
	fc_read(whole, s, slen);
	for (size_t i = 0; i <= k; i++) {
		size_t end = i < k ? cuts[i] : slen;

		fc_read(split, s + prev, end - prev);
		prev = end;
	}

	FUZZ_CHECK(whole->n == split->n && whole->closed == split->closed);
	for (size_t i = 0; i < whole->n; i++) {
		const struct fc_event *a = &whole->ev[i], *b = &split->ev[i];

		FUZZ_CHECK(a->rc == b->rc && a->fatal == b->fatal && a->at == b->at);
		if (a->rc == 0) {
			fuzz_msg_equal(a->m, b->m);
			fc_reencode(a->m);
		}
	}
	fc_free(whole);
	fc_free(split);
	return 0;
}

#endif
