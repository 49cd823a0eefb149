/* SPDX-License-Identifier: MIT */
/* test_codec.c - cmocka tests for the TCP device codecs (southbound/codec*.c):
 * every messageType round-trips through encode -> frame -> decode; a stream
 * of many messages decodes to the same sequence whether it arrives one byte
 * at a time, in odd pieces or all at once; a table of hostile inputs for
 * frame() and one for decode(), with their exact codes; the worked example
 * of southbound/PROTOCOL.md byte for byte.
 * Every input reaches frame() and decode() in a heap buffer of exactly len
 * bytes, so ASan reports any read past the end.
 * Must not: depend on the network, the clock's value or test order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "buf.h"
#include "codec.h"
#include "msg.h"
#include "msg_json.h"
#include "otagw_limits.h"
#include "util.h"

#define T_MAX 65536             /* [tcp] max_frame default */
#define RX_MAX (4 * 1024 * 1024)

static const struct codec_ops *const codecs[] = { &codec_jsonline, &codec_frame };

/* ---- helpers ----------------------------------------------------------- */

/* An exact-size heap copy of p[0..n): nothing readable after it. */
static uint8_t *heap(const void *p, size_t n)
{
	uint8_t *copy = malloc(n ? n : 1);

	assert_non_null(copy);
	if (n)
		memcpy(copy, p, n);
	return copy;
}

static ssize_t frame_of(const struct codec_ops *c, const void *p, size_t n, size_t max,
			struct err_info *e)
{
	uint8_t *copy = heap(p, n);
	ssize_t rc = c->frame(copy, n, max, e);

	free(copy);
	return rc;
}

static int decode_of(const struct codec_ops *c, const void *p, size_t n, struct msg *m,
		     struct err_info *e)
{
	uint8_t *copy = heap(p, n);
	int rc = c->decode(copy, n, m, e);

	free(copy);
	return rc;
}

static void assert_cleared(const struct msg *m)
{
	struct msg zero;

	memset(&zero, 0, sizeof(zero));
	assert_memory_equal(m, &zero, sizeof(zero));
}

#include "test_sb.h"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A frame-codec frame of type t around payload p[0..n), CRC computed. */
static void mkframe(struct sb *out, uint8_t t, const void *p, size_t n)
{
	uint8_t h[16] = { 0x4F, 0x47, 0x01, t };

	put32(h + 8, (uint32_t)n);
	put32(h + 12, (uint32_t)crc32(0L, p, (uInt)n));
	sb_add_n(out, h, sizeof(h));
	sb_add_n(out, p, n);
}

/* A type 2 frame: json (its text), then raw[0..rn). */
static void mkframe2(struct sb *out, const char *json, const void *raw, size_t rn)
{
	struct sb pl = { NULL, 0 };
	uint8_t jl[4];

	put32(jl, (uint32_t)strlen(json));
	sb_add_n(&pl, jl, 4);
	sb_add(&pl, json);
	sb_add_n(&pl, raw, rn);
	mkframe(out, 2, pl.p, pl.n);
	free(pl.p);
}

/* Gives m n bytes 0x00, 0x01 ... with length and crc32 to match. */
static void set_chunk(struct msg *m, size_t n, uint64_t size)
{
	uint8_t *bytes = malloc(n ? n : 1);

	assert_non_null(bytes);
	for (size_t i = 0; i < n; i++)
		bytes[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(msg_set_data(m, bytes, n), 0);
	m->length = (uint32_t)n;
	m->crc32 = (uint32_t)crc32(0L, bytes, (uInt)n);
	m->size = size;
	free(bytes);
}

/* A message of type t with every field that type carries set; i varies the
 * ids and the chunk size so a stream's messages differ. */
static void build(struct msg *m, enum msg_type t, bool success, unsigned i)
{
	msg_init(m, t);
	snprintf(m->device_id, sizeof(m->device_id), "dev-%u", i);
	snprintf(m->message_id, sizeof(m->message_id), "msg:%u", i);
	m->timestamp = 1589277368209LL + i;
	switch (t) {
	case MSG_REPORT_FIRMWARE:
	case MSG_READ_FIRMWARE_REPLY:
		util_strlcpy(m->version, "1.0.1", sizeof(m->version));
		assert_int_equal(msg_set_properties(m, "{\"hw\":\"A2\",\"n\":[1,true,null]}"), 0);
		break;
	case MSG_REQUEST_FIRMWARE:
		util_strlcpy(m->current_version, "1.0.1", sizeof(m->current_version));
		m->force = true;
		break;
	case MSG_REQUEST_FIRMWARE_REPLY:
	case MSG_UPGRADE_FIRMWARE:
		if (!success && t == MSG_REQUEST_FIRMWARE_REPLY)
			break;
		util_strlcpy(m->firmware_id, "fw1", sizeof(m->firmware_id));
		util_strlcpy(m->version, "1.1.0", sizeof(m->version));
		util_strlcpy(m->url, "chunk:fw1", sizeof(m->url));
		m->size = 524288;
		util_strlcpy(m->sign, "9e107d9d372bb6826bd81d3542a419d6", sizeof(m->sign));
		util_strlcpy(m->sign_method, "md5", sizeof(m->sign_method));
		assert_int_equal(msg_set_parameters(m, "{\"k\":\"v\"}"), 0);
		break;
	case MSG_UPGRADE_FIRMWARE_PROGRESS:
		util_strlcpy(m->firmware_id, "fw1", sizeof(m->firmware_id));
		util_strlcpy(m->version, "1.1.0", sizeof(m->version));
		m->progress = success ? 100 : 37;
		m->complete = success;
		break;
	case MSG_REQUEST_FIRMWARE_CHUNK:
		util_strlcpy(m->firmware_id, "fw1", sizeof(m->firmware_id));
		m->offset = 4096 * (uint64_t)i;
		m->length = 4096;
		break;
	case MSG_REQUEST_FIRMWARE_CHUNK_REPLY:
		util_strlcpy(m->firmware_id, "fw1", sizeof(m->firmware_id));
		m->offset = 4096 * (uint64_t)i;
		if (success)
			set_chunk(m, (i * 37) % 600, 524288);   /* 0 bytes too: the end */
		break;
	case MSG_ERROR:
		util_strlcpy(m->code, "bad_message", sizeof(m->code));
		util_strlcpy(m->error_reason, "field 'x': \"bad\"\n", sizeof(m->error_reason));
		break;
	default:
		break;
	}
	if (t != MSG_UPGRADE_FIRMWARE && t != MSG_REQUEST_FIRMWARE && t != MSG_READ_FIRMWARE &&
	    t != MSG_REPORT_FIRMWARE && t != MSG_REQUEST_FIRMWARE_CHUNK && t != MSG_ERROR) {
		m->success = success;
		m->has_success = true;
	}
	if (m->has_success && !success) {
		if (t != MSG_UPGRADE_FIRMWARE_PROGRESS)
			util_strlcpy(m->code, "not_found", sizeof(m->code));
		util_strlcpy(m->error_reason, "\xe6\x97\xa0 \"x\"", sizeof(m->error_reason));
	}
}

static void assert_msg_equal(const struct msg *a, const struct msg *b)
{
	assert_int_equal(a->type, b->type);
	assert_string_equal(a->device_id, b->device_id);
	assert_string_equal(a->message_id, b->message_id);
	assert_int_equal(a->timestamp, b->timestamp);
	assert_string_equal(a->firmware_id, b->firmware_id);
	assert_string_equal(a->version, b->version);
	assert_string_equal(a->current_version, b->current_version);
	assert_string_equal(a->url, b->url);
	assert_int_equal(a->size, b->size);
	assert_string_equal(a->sign, b->sign);
	if (a->parameters || b->parameters)
		assert_string_equal(a->parameters, b->parameters);
	if (a->properties || b->properties)
		assert_string_equal(a->properties, b->properties);
	assert_int_equal(a->force, b->force);
	assert_int_equal(a->progress, b->progress);
	assert_int_equal(a->complete, b->complete);
	assert_int_equal(a->success, b->success);
	assert_int_equal(a->has_success, b->has_success);
	assert_string_equal(a->code, b->code);
	assert_string_equal(a->error_reason, b->error_reason);
	assert_int_equal(a->offset, b->offset);
	assert_int_equal(a->length, b->length);
	assert_int_equal(a->crc32, b->crc32);
	assert_int_equal(a->data_len, b->data_len);
	if (a->data_len)
		assert_memory_equal(a->data, b->data, a->data_len);
}

/* ---- a receive buffer, as a transport keeps one ------------------------ */

/* Appends what arrives; frames and decodes while whole frames are there;
 * writes one line per event to log: the message re-encoded as JSON, "skip"
 * (-ENODATA), the decode error, or the fatal frame() error (after which
 * nothing is read). */
struct rx {
	const struct codec_ops *c;
	size_t max;
	struct buf in;
	struct sb log;
	int fatal;
	unsigned msgs;
	uint8_t *pool;          /* inputs are copied to its very end */
	size_t pool_len;
};

/* p[0..n) copied to the end of r->pool, so reading past n hits ASan's
 * redzone as with heap(), without a fresh allocation per call (ASan's
 * quarantine makes those slow when fed a byte at a time). */
static const uint8_t *rx_tail(struct rx *r, const void *p, size_t n)
{
	if (n > r->pool_len) {
		free(r->pool);
		r->pool = malloc(n);
		assert_non_null(r->pool);
		r->pool_len = n;
	}
	if (n)
		memcpy(r->pool + r->pool_len - n, p, n);
	return r->pool + r->pool_len - n;
}

static void rx_init(struct rx *r, const struct codec_ops *c, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->c = c;
	r->max = max;
	buf_init(&r->in, RX_MAX);
}

static void rx_clear(struct rx *r)
{
	buf_clear(&r->in);
	free(r->log.p);
	free(r->pool);
}

static void rx_event(struct rx *r, int rc, const struct msg *m, const struct err_info *e)
{
	char line[OTAGW_ERR_TEXT_MAX + 32];
	char *json = NULL;
	size_t n = 0;

	if (rc == -ENODATA) {
		sb_add(&r->log, "skip\n");
		assert_cleared(m);
		return;
	}
	if (rc) {
		snprintf(line, sizeof(line), "error %d %s\n", rc, e->text);
		sb_add(&r->log, line);
		assert_cleared(m);
		return;
	}
	assert_int_equal(msg_json_encode(m, &json, &n), 0);
	sb_add_n(&r->log, json, n);
	sb_add(&r->log, "\n");
	free(json);
	r->msgs++;
}

static void rx_drain(struct rx *r)
{
	for (;;) {
		struct err_info e = { 0 };
		struct msg m;
		ssize_t fl = r->c->frame(rx_tail(r, r->in.data, r->in.len), r->in.len, r->max, &e);
		int rc;

		if (!fl)
			return;
		if (fl < 0) {
			char line[OTAGW_ERR_TEXT_MAX + 32];

			snprintf(line, sizeof(line), "fatal %zd %s\n", fl, e.text);
			sb_add(&r->log, line);
			r->fatal = (int)fl;
			return;
		}
		assert_true((size_t)fl <= r->in.len);
		memset(&m, 0x5a, sizeof(m));    /* decode must not trust old contents */
		rc = r->c->decode(rx_tail(r, r->in.data, (size_t)fl), (size_t)fl, &m, &e);
		rx_event(r, rc, &m, &e);
		msg_clear(&m);
		buf_consume(&r->in, (size_t)fl);
	}
}

static void rx_feed(struct rx *r, const void *p, size_t n)
{
	if (r->fatal)
		return;
	assert_int_equal(buf_append(&r->in, p, n), 0);
	rx_drain(r);
}

/* Feeds stream in pieces of step bytes (0: all at once); returns the log
 * (caller frees), *msgs the messages decoded, *fatal the frame() error. */
static char *rx_run(const struct codec_ops *c, size_t max, const struct sb *stream, size_t step,
		    unsigned *msgs, int *fatal)
{
	struct rx r;
	char *log;

	rx_init(&r, c, max);
	if (!step)
		step = stream->n;
	for (size_t off = 0; off < stream->n; off += step)
		rx_feed(&r, stream->p + off, stream->n - off < step ? stream->n - off : step);
	log = r.log.p ? r.log.p : strdup("");
	r.log.p = NULL;
	*msgs = r.msgs;
	*fatal = r.fatal;
	assert_int_equal(r.in.len == 0 || r.fatal, true);   /* nothing left over */
	rx_clear(&r);
	return log;
}

/* ---- registry ---------------------------------------------------------- */

static void test_codec_find(void **state)
{
	(void)state;
	assert_ptr_equal(codec_find("jsonline"), &codec_jsonline);
	assert_ptr_equal(codec_find("frame"), &codec_frame);
	assert_string_equal(codec_jsonline.name, "jsonline");
	assert_string_equal(codec_frame.name, "frame");
	assert_null(codec_find("json-lines"));
	assert_null(codec_find("JSONLINE"));
	assert_null(codec_find(""));
	assert_null(codec_find(NULL));
}

/* ---- round trips ------------------------------------------------------- */

/* encode -> frame -> decode gives back every field, for every type. */
static void test_roundtrip_all(void **state)
{
	(void)state;
	for (size_t ci = 0; ci < OTAGW_ARRAY_SIZE(codecs); ci++) {
		for (int t = 0; t < MSG_TYPE_COUNT; t++) {
			for (int ok = 1; ok >= 0; ok--) {
				const struct codec_ops *c = codecs[ci];
				struct msg in, out;
				struct err_info e;
				struct buf b;

				buf_init(&b, T_MAX);
				build(&in, (enum msg_type)t, ok, 20);
				assert_int_equal(c->encode(&in, &b), 0);
				assert_int_equal(frame_of(c, b.data, b.len, T_MAX, &e),
						 (ssize_t)b.len);
				assert_int_equal(frame_of(c, b.data, b.len - 1, T_MAX, &e), 0);
				if (decode_of(c, b.data, b.len, &out, &e))
					fail_msg("%s type %d: %s", c->name, t, e.text);
				assert_msg_equal(&in, &out);
				msg_clear(&in);
				msg_clear(&out);
				buf_clear(&b);
			}
		}
	}
}

/* The jsonline codec sends a chunk in base64; the frame codec as raw bytes
 * in a type 2 frame, and an empty chunk (the end) in type 1. */
static void test_chunk_carriers(void **state)
{
	struct msg m;
	struct buf b;

	(void)state;
	build(&m, MSG_REQUEST_FIRMWARE_CHUNK_REPLY, true, 1);
	assert_int_equal(m.data_len, 37);
	buf_init(&b, T_MAX);
	assert_int_equal(codec_jsonline.encode(&m, &b), 0);
	assert_int_equal(b.data[b.len - 1], '\n');
	assert_null(memchr(b.data, '\n', b.len - 1));
	assert_non_null(memmem(b.data, b.len, "\"data\":\"AwoRGB8m", 16));
	buf_clear(&b);

	assert_int_equal(codec_frame.encode(&m, &b), 0);
	assert_int_equal(b.data[3], 2);
	/* The raw bytes end the frame, untouched. */
	assert_memory_equal(b.data + b.len - m.data_len, m.data, m.data_len);
	assert_null(memmem(b.data, b.len, "\"data\"", 6));
	buf_clear(&b);
	msg_clear(&m);

	build(&m, MSG_REQUEST_FIRMWARE_CHUNK_REPLY, true, 0);
	assert_int_equal(m.data_len, 0);
	assert_int_equal(codec_frame.encode(&m, &b), 0);
	assert_int_equal(b.data[3], 1);
	assert_non_null(memmem(b.data, b.len, "\"length\":0", 10));
	buf_clear(&b);
	msg_clear(&m);

	build(&m, MSG_REQUEST_FIRMWARE_CHUNK_REPLY, false, 3);
	assert_int_equal(codec_frame.encode(&m, &b), 0);
	assert_int_equal(b.data[3], 1);
	buf_clear(&b);
	msg_clear(&m);
}

/* ---- streams ----------------------------------------------------------- */

/* Every type twice over, with the codec's no-op frames mixed in. */
static unsigned stream_build(const struct codec_ops *c, struct sb *s)
{
	static const uint8_t empty_frame[16] = { 0x4F, 0x47, 0x01, 0x01 };
	unsigned n = 0;
	struct buf b;

	buf_init(&b, RX_MAX);
	for (unsigned round = 0; round < 2; round++) {
		for (int t = 0; t < MSG_TYPE_COUNT; t++) {
			for (int ok = 1; ok >= 0; ok--) {
				struct msg m;

				build(&m, (enum msg_type)t, ok, n + 1);
				assert_int_equal(c->encode(&m, &b), 0);
				msg_clear(&m);
				n++;
				if (c == &codec_jsonline && n % 5 == 0)
					assert_int_equal(buf_append(&b, " \t\n\n", 4), 0);
				if (c == &codec_frame && n % 5 == 0)
					assert_int_equal(buf_append(&b, empty_frame, 16), 0);
			}
		}
	}
	sb_add_n(s, b.data, b.len);
	buf_clear(&b);
	return n;
}

static void test_stream_pieces(void **state)
{
	static const size_t steps[] = { 0, 1, 2, 7, 16, 17, 4096 };

	(void)state;
	for (size_t ci = 0; ci < OTAGW_ARRAY_SIZE(codecs); ci++) {
		struct sb s = { NULL, 0 };
		unsigned want = stream_build(codecs[ci], &s), msgs;
		int fatal;
		char *whole = rx_run(codecs[ci], T_MAX, &s, 0, &msgs, &fatal);

		assert_int_equal(msgs, want);
		assert_int_equal(fatal, 0);
		assert_null(strstr(whole, "error -"));
		assert_non_null(strstr(whole, "skip\n"));
		for (size_t i = 1; i < OTAGW_ARRAY_SIZE(steps); i++) {
			char *log = rx_run(codecs[ci], T_MAX, &s, steps[i], &msgs, &fatal);

			assert_int_equal(msgs, want);
			assert_string_equal(log, whole);
			free(log);
		}
		free(whole);
		free(s.p);
	}
}

/* No-op frames decode as -ENODATA, which a transport skips. */
static void test_noop_frames(void **state)
{
	static const char *const blank[] = { "\n", "\r\n", " \t \n", "\t\r\n" };
	static const uint8_t empty[16] = { 0x4F, 0x47, 0x01, 0x01 };
	struct msg m;
	struct err_info e;

	(void)state;
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(blank); i++) {
		size_t n = strlen(blank[i]);

		assert_int_equal(frame_of(&codec_jsonline, blank[i], n, T_MAX, &e), (ssize_t)n);
		assert_int_equal(decode_of(&codec_jsonline, blank[i], n, &m, &e), -ENODATA);
		assert_cleared(&m);
	}
	assert_int_equal(frame_of(&codec_frame, empty, 16, T_MAX, &e), 16);
	assert_int_equal(decode_of(&codec_frame, empty, 16, &m, &e), -ENODATA);
	assert_cleared(&m);
}

/* CR before LF is tolerated; a CR alone or inside is JSON whitespace. */
static void test_jsonline_cr(void **state)
{
	static const char *const lines[] = {
		"{\"messageType\":\"READ_FIRMWARE\",\"messageId\":\"r\"}\r\n",
		"{\"messageType\":\"READ_FIRMWARE\",\"messageId\":\"r\"}\n",
		"{\"messageType\":\"READ_FIRMWARE\",\r\"messageId\":\"r\"}\r\r\n",
		"  {\"messageType\":\"READ_FIRMWARE\",\"messageId\":\"r\"}\t\n",
	};
	struct msg m;
	struct err_info e;

	(void)state;
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(lines); i++) {
		size_t n = strlen(lines[i]);

		assert_int_equal(frame_of(&codec_jsonline, lines[i], n, T_MAX, &e), (ssize_t)n);
		assert_int_equal(decode_of(&codec_jsonline, lines[i], n, &m, &e), 0);
		assert_int_equal(m.type, MSG_READ_FIRMWARE);
		assert_string_equal(m.message_id, "r");
		msg_clear(&m);
	}
}

/* ---- hostile input: frame() ------------------------------------------- */

struct hostile_frame {
	const struct codec_ops *c;
	const char *buf;
	size_t len;
	size_t max;
	ssize_t want;
};

#define HF(c, s, max, want) { &c, s, sizeof(s) - 1, max, want }
/* A valid type 1 header for a 4-byte payload, CRC not checked by frame(). */
#define H4 "OG\x01\x01\0\0\0\0\0\0\0\x04\0\0\0\0"

static const struct hostile_frame hostile_frames[] = {
	/* jsonline: the newline must come within max bytes */
	HF(codec_jsonline, "", 8, 0),
	HF(codec_jsonline, "abcdefg", 8, 0),
	HF(codec_jsonline, "abcdefg\n", 8, 8),
	HF(codec_jsonline, "abcdefgh", 8, -EMSGSIZE),
	HF(codec_jsonline, "abcdefgh\n", 8, -EMSGSIZE),
	HF(codec_jsonline, "abcdefghijklmnop", 8, -EMSGSIZE),
	HF(codec_jsonline, "\nabcdefghijklmnop", 8, 1),
	HF(codec_jsonline, "ab\ncd\n", 8, 3),
	HF(codec_jsonline, "\0\0\n", 8, 3),     /* NUL: decode's business */
	/* frame: the magic, byte by byte */
	HF(codec_frame, "", T_MAX, 0),
	HF(codec_frame, "O", T_MAX, 0),
	HF(codec_frame, "OG", T_MAX, 0),
	HF(codec_frame, "X", T_MAX, -EBADMSG),
	HF(codec_frame, "{", T_MAX, -EBADMSG),  /* a JSON device on a frame port */
	HF(codec_frame, "\0", T_MAX, -EBADMSG),
	HF(codec_frame, "o", T_MAX, -EBADMSG),
	HF(codec_frame, "OX", T_MAX, -EBADMSG),
	HF(codec_frame, "GO", T_MAX, -EBADMSG),
	/* version, type, flags, reserved: refused as soon as they arrive */
	HF(codec_frame, "OG\x02", T_MAX, -EBADMSG),
	HF(codec_frame, "OG\x00", T_MAX, -EBADMSG),
	HF(codec_frame, "OG\x01\x00", T_MAX, -EBADMSG),
	HF(codec_frame, "OG\x01\x03", T_MAX, -EBADMSG),
	HF(codec_frame, "OG\x01\xff", T_MAX, -EBADMSG),
	HF(codec_frame, "OG\x01\x01\x01", T_MAX, -EBADMSG),
	HF(codec_frame, "OG\x01\x02\x80", T_MAX, -EBADMSG),
	HF(codec_frame, "OG\x01\x01\0\x01", T_MAX, -EBADMSG),
	HF(codec_frame, "OG\x01\x01\0\0\x01", T_MAX, -EBADMSG),
	HF(codec_frame, "OG\x01\x01\0\0\0\x01", T_MAX, -EBADMSG),
	HF(codec_frame, "OG\x02\x01\0\0\0\0\0\0\0\x04\0\0\0\0{}{}", T_MAX, -EBADMSG),
	HF(codec_frame, "OG\x01\x01\0\0\0\x80\0\0\0\x04\0\0\0\0{}{}", T_MAX, -EBADMSG),
	/* length: refused from the header alone */
	HF(codec_frame, "OG\x01\x01\0\0\0\0\xff\xff\xff\xff\0\0\0\0", T_MAX, -EMSGSIZE),
	HF(codec_frame, "OG\x01\x02\0\0\0\0\xff\xff\xff\xff\0\0\0\0", T_MAX, -EMSGSIZE),
	/* 2^32 - 16 bytes fit a 64-bit size_t, not a 32-bit one (armhf) */
	HF(codec_frame, "OG\x01\x01\0\0\0\0\xff\xff\xff\xf0\0\0\0\0", SIZE_MAX,
	   sizeof(size_t) > 4 ? 0 : -EMSGSIZE),
	HF(codec_frame, "OG\x01\x01\0\0\0\0\0\x01\0\0\0\0\0\0", T_MAX, -EMSGSIZE),
	HF(codec_frame, "OG\x01\x01\0\0\0\0\0\0\xff\xf1\0\0\0\0", T_MAX, -EMSGSIZE),
	HF(codec_frame, "OG\x01\x01\0\0\0\0\0\0\xff\xf0\0\0\0\0", T_MAX, 0),
	HF(codec_frame, H4 "{}{}", 20, 20),
	HF(codec_frame, H4 "{}{}", 19, -EMSGSIZE),
	HF(codec_frame, H4 "{}{}", 16, -EMSGSIZE),
	/* truncated: need more */
	HF(codec_frame, "OG\x01\x01\0\0\0\0\0\0\0\x04\0\0\0", T_MAX, 0),
	HF(codec_frame, H4, T_MAX, 0),
	HF(codec_frame, H4 "{}{", T_MAX, 0),
	/* a whole frame and the start of the next */
	HF(codec_frame, H4 "{}{}OG", T_MAX, 20),
	HF(codec_frame, H4 "{}{}XX", T_MAX, 20),
	HF(codec_frame, "OG\x01\x01\0\0\0\0\0\0\0\0\0\0\0\0", T_MAX, 16),
};

static void test_hostile_frame(void **state)
{
	(void)state;
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(hostile_frames); i++) {
		const struct hostile_frame *h = &hostile_frames[i];
		struct err_info e = { 0 };
		ssize_t rc = frame_of(h->c, h->buf, h->len, h->max, &e);

		if (rc != h->want)
			fail_msg("case %zu (%s): %zd, want %zd", i, h->c->name, rc, h->want);
		if (rc < 0 && (e.code != rc || !e.text[0]))
			fail_msg("case %zu: e {%d, '%s'}", i, e.code, e.text);
		assert_int_equal(frame_of(h->c, h->buf, h->len, h->max, NULL), h->want);
	}
}

/* A frame claiming 4 GiB is refused with its header alone, however it
 * arrives: the receive buffer never holds more than 16 bytes of it. */
static void test_huge_claim(void **state)
{
	static const uint8_t hdr[16] = { 0x4F, 0x47, 0x01, 0x01, 0, 0, 0, 0,
					 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
	struct sb s = { NULL, 0 };
	unsigned msgs;
	int fatal;
	char *log;

	(void)state;
	sb_add_n(&s, hdr, sizeof(hdr));
	sb_fill(&s, 'x', 100);
	log = rx_run(&codec_frame, T_MAX, &s, 1, &msgs, &fatal);
	assert_int_equal(fatal, -EMSGSIZE);
	assert_int_equal(msgs, 0);
	free(log);
	/* Bad magic mid-stream (after a good frame) is fatal too. */
	free(s.p);
	s.p = NULL;
	s.n = 0;
	mkframe(&s, 1, "{\"messageType\":\"READ_FIRMWARE\"}", 31);
	sb_add(&s, "garbage");
	log = rx_run(&codec_frame, T_MAX, &s, 1, &msgs, &fatal);
	assert_int_equal(msgs, 1);
	assert_int_equal(fatal, -EBADMSG);
	free(log);
	free(s.p);
}

/* A line longer than max, however it arrives, is -EMSGSIZE once max bytes
 * are there, and not before. */
static void test_long_line(void **state)
{
	struct sb s = { NULL, 0 };
	struct err_info e;

	(void)state;
	sb_fill(&s, 'x', 100);
	for (size_t n = 0; n < 100; n++)
		assert_int_equal(frame_of(&codec_jsonline, s.p, n, 100, &e), 0);
	assert_int_equal(frame_of(&codec_jsonline, s.p, 100, 100, &e), -EMSGSIZE);
	assert_non_null(strstr(e.text, "longer than 100"));
	free(s.p);
}

/* ---- hostile input: decode() ------------------------------------------ */

#define J_READ "{\"messageType\":\"READ_FIRMWARE\",\"timestamp\":1}"
#define J_CREPLY "{\"messageType\":\"REQUEST_FIRMWARE_CHUNK_REPLY\",\"deviceId\":\"d1\"," \
	"\"offset\":0,"
#define J_ELF_B64 "\"data\":\"f0VMRgIBAQA=\""
static const uint8_t elf[8] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0 };
#define ELF_CRC "463008392"

enum hd_kind {
	HD_LINE,        /* text + "\n" through jsonline */
	HD_F1,          /* text as a type 1 frame */
	HD_F2,          /* text as a type 2 JSON header, elf[] as data */
	HD_F2_RAW,      /* text is the whole type 2 payload */
};

struct hostile_dec {
	enum hd_kind kind;
	const char *text;
	size_t len;
	int want;
	const char *needle;
};

#define HD(k, s, want, needle) { k, s, sizeof(s) - 1, want, needle }

static const struct hostile_dec hostile_decs[] = {
	/* invalid UTF-8, invalid JSON */
	HD(HD_LINE, "{\"messageType\":\"READ_FIRMWARE\",\"messageId\":\"\xff\"}", -EBADMSG,
	   "UTF-8"),
	HD(HD_F1, "{\"messageType\":\"READ_FIRMWARE\",\"messageId\":\"\xc3\"}", -EBADMSG, "UTF-8"),
	HD(HD_F1, "{\"messageType\":\"READ_FIRMWARE\",\"messageId\":\"\xed\xa0\x80\"}", -EBADMSG,
	   "UTF-8"),
	HD(HD_LINE, "{\"messageType\":\"READ_FIRMWARE\"", -EBADMSG, "malformed"),
	HD(HD_F1, "{\"messageType\":\"READ_FIRMWARE\"", -EBADMSG, "malformed"),
	HD(HD_F1, "not json", -EBADMSG, "malformed"),
	HD(HD_F1, J_READ "\n" J_READ, -EBADMSG, "malformed"),
	HD(HD_F1, J_READ "\0", -EBADMSG, "NUL"),
	HD(HD_LINE, "\0", -EBADMSG, "NUL"),
	HD(HD_F1, "{\"messageType\":\"REBOOT\"}", -EBADMSG, "unknown type"),
	HD(HD_LINE, "[]", -EBADMSG, "object"),
	/* a chunk reply whose crc32 or length does not match its data */
	HD(HD_LINE, J_CREPLY "\"length\":8,\"crc32\":1," J_ELF_B64 "}", -EBADMSG,
	   "field 'crc32': does not match"),
	HD(HD_F1, J_CREPLY "\"length\":8,\"crc32\":1," J_ELF_B64 "}", -EBADMSG,
	   "field 'crc32': does not match"),
	HD(HD_LINE, J_CREPLY "\"length\":9,\"crc32\":" ELF_CRC "," J_ELF_B64 "}", -EBADMSG,
	   "field 'data': 8 bytes"),
	/* without "data" there is nowhere else for the bytes in a line/type 1 */
	HD(HD_LINE, J_CREPLY "\"length\":8,\"crc32\":" ELF_CRC "}", -EBADMSG,
	   "field 'data': missing"),
	HD(HD_F1, J_CREPLY "\"length\":8,\"crc32\":" ELF_CRC "}", -EBADMSG,
	   "field 'data': missing"),
	/* type 2 */
	HD(HD_F2, J_CREPLY "\"length\":8,\"crc32\":1}", -EBADMSG, "field 'crc32': does not match"),
	HD(HD_F2, J_CREPLY "\"length\":7,\"crc32\":" ELF_CRC "}", -EBADMSG,
	   "8 data bytes, field 'length' says 7"),
	HD(HD_F2, J_CREPLY "\"length\":9,\"crc32\":" ELF_CRC "}", -EBADMSG, "says 9"),
	HD(HD_F2, J_CREPLY "\"length\":8,\"crc32\":" ELF_CRC "," J_ELF_B64 "}", -EBADMSG,
	   "\"data\" in its JSON"),
	HD(HD_F2, "{\"messageType\":\"REQUEST_FIRMWARE_CHUNK_REPLY\",\"success\":false}", -EBADMSG,
	   "without a successful chunk reply"),
	HD(HD_F2, J_READ, -EBADMSG, "without a successful chunk reply"),
	HD(HD_F2, "{\"messageType\":\"REQUEST_FIRMWARE_CHUNK_REPLY\"", -EBADMSG, "malformed"),
	HD(HD_F2, "\xff", -EBADMSG, "UTF-8"),
	HD(HD_F2, "", -EBADMSG, "empty"),
	HD(HD_F2_RAW, "", -EBADMSG, "too short"),
	HD(HD_F2_RAW, "\0\0\0", -EBADMSG, "too short"),
	HD(HD_F2_RAW, "\0\0\0\x01", -EBADMSG, "json_len beyond"),
	HD(HD_F2_RAW, "\0\0\0\x03{}", -EBADMSG, "json_len beyond"),
	HD(HD_F2_RAW, "\xff\xff\xff\xff{}", -EBADMSG, "json_len beyond"),
	HD(HD_F2_RAW, "\xff\xff\xff\xfc{}", -EBADMSG, "json_len beyond"),
	HD(HD_F2_RAW, "\0\0\0\x02{}", -EBADMSG, "messageType"),
};

/* Wraps case h into the bytes its codec sees. */
static const struct codec_ops *hd_wrap(const struct hostile_dec *h, struct sb *out)
{
	switch (h->kind) {
	case HD_LINE:
		sb_add_n(out, h->text, h->len);
		sb_add(out, "\n");
		return &codec_jsonline;
	case HD_F1:
		mkframe(out, 1, h->text, h->len);
		return &codec_frame;
	case HD_F2:
		mkframe2(out, h->text, elf, sizeof(elf));
		return &codec_frame;
	default:
		mkframe(out, 2, h->text, h->len);
		return &codec_frame;
	}
}

/* Each bad frame is -EBADMSG from decode (the connection survives) and the
 * good frame after it in the same stream still decodes. */
static void test_hostile_decode(void **state)
{
	(void)state;
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(hostile_decs); i++) {
		const struct hostile_dec *h = &hostile_decs[i];
		struct sb s = { NULL, 0 };
		const struct codec_ops *c = hd_wrap(h, &s);
		struct err_info e = { 0 };
		struct msg m;
		unsigned msgs;
		int fatal, rc;
		char *log;

		assert_int_equal(frame_of(c, s.p, s.n, T_MAX, &e), (ssize_t)s.n);
		memset(&m, 0x5a, sizeof(m));
		rc = decode_of(c, s.p, s.n, &m, &e);
		if (rc != h->want || e.code != h->want || !strstr(e.text, h->needle))
			fail_msg("case %zu: rc %d, e {%d, '%s'}; want %d '%s'", i, rc, e.code,
				 e.text, h->want, h->needle);
		assert_cleared(&m);
		assert_int_equal(decode_of(c, s.p, s.n, &m, NULL), h->want);

		if (c == &codec_jsonline)
			sb_add(&s, J_READ "\n");
		else
			mkframe(&s, 1, J_READ, sizeof(J_READ) - 1);
		log = rx_run(c, T_MAX, &s, 1, &msgs, &fatal);
		assert_int_equal(fatal, 0);
		assert_int_equal(msgs, 1);
		assert_int_equal(strncmp(log, "error -", 7), 0);
		assert_non_null(strstr(log, "\"READ_FIRMWARE\""));
		free(log);
		free(s.p);
	}
}

/* A flipped bit anywhere in the payload is "bad CRC"; so is a wrong CRC
 * field. The next frame still decodes. */
static void test_bad_crc(void **state)
{
	struct sb s = { NULL, 0 };
	struct err_info e;
	struct msg m;
	unsigned msgs;
	int fatal;
	char *log;

	(void)state;
	mkframe(&s, 1, J_READ, sizeof(J_READ) - 1);
	for (size_t i = 12; i < s.n; i++) {
		s.p[i] ^= 0x10;
		assert_int_equal(decode_of(&codec_frame, s.p, s.n, &m, &e), -EBADMSG);
		assert_string_equal(e.text, "bad CRC");
		assert_cleared(&m);
		s.p[i] ^= 0x10;
	}
	s.p[20] ^= 1;
	mkframe(&s, 1, J_READ, sizeof(J_READ) - 1);
	log = rx_run(&codec_frame, T_MAX, &s, 3, &msgs, &fatal);
	assert_string_equal(log, "error -74 bad CRC\n" J_READ "\n");
	assert_int_equal(msgs, 1);
	free(log);
	free(s.p);
}

/* decode() given bytes frame() did not delimit refuses them, never reading
 * past len. */
static void test_decode_not_whole(void **state)
{
	struct sb s = { NULL, 0 };
	struct err_info e;
	struct msg m;

	(void)state;
	mkframe(&s, 1, J_READ, sizeof(J_READ) - 1);
	for (size_t n = 0; n < s.n; n++)
		assert_int_equal(decode_of(&codec_frame, s.p, n, &m, &e), -EBADMSG);
	sb_add(&s, "x");
	assert_int_equal(decode_of(&codec_frame, s.p, s.n, &m, &e), -EBADMSG);
	assert_string_equal(e.text, "not a whole frame");
	free(s.p);
}

/* A message too large for msg_json but within max_frame ends its line, so
 * it is -EBADMSG (the connection survives), saying so. */
static void test_line_too_large_msg(void **state)
{
	struct sb s = { NULL, 0 };
	struct err_info e;
	struct msg m;

	(void)state;
	sb_add(&s, J_READ);
	sb_fill(&s, ' ', OTAGW_MSG_MAX);
	sb_add(&s, "\n");
	assert_int_equal(frame_of(&codec_jsonline, s.p, s.n, 4 * OTAGW_MSG_MAX, &e), (ssize_t)s.n);
	assert_int_equal(decode_of(&codec_jsonline, s.p, s.n, &m, &e), -EBADMSG);
	assert_non_null(strstr(e.text, "too large"));
	assert_cleared(&m);
	free(s.p);
}

/* ---- encode ------------------------------------------------------------ */

/* A full send queue takes the whole frame or nothing. */
static void test_encode_nobufs(void **state)
{
	(void)state;
	for (size_t ci = 0; ci < OTAGW_ARRAY_SIZE(codecs); ci++) {
		for (int chunk = 0; chunk < 2; chunk++) {
			const struct codec_ops *c = codecs[ci];
			struct msg m;
			struct buf full, b;

			build(&m, chunk ? MSG_REQUEST_FIRMWARE_CHUNK_REPLY : MSG_ERROR, true, 5);
			buf_init(&full, T_MAX);
			assert_int_equal(c->encode(&m, &full), 0);
			buf_init(&b, full.len + 2);
			assert_int_equal(buf_append(&b, "ab", 2), 0);
			assert_int_equal(c->encode(&m, &b), 0);
			assert_int_equal(b.len, full.len + 2);
			assert_memory_equal(b.data + 2, full.data, full.len);
			buf_clear(&b);
			buf_init(&b, full.len + 1);
			assert_int_equal(buf_append(&b, "ab", 2), 0);
			assert_int_equal(c->encode(&m, &b), -ENOBUFS);
			assert_int_equal(b.len, 2);
			buf_clear(&b);
			buf_clear(&full);
			msg_clear(&m);
		}
	}
}

static void test_encode_invalid(void **state)
{
	static const uint8_t bytes[3] = { 1, 2, 3 };

	(void)state;
	for (size_t ci = 0; ci < OTAGW_ARRAY_SIZE(codecs); ci++) {
		const struct codec_ops *c = codecs[ci];
		struct msg m;
		struct buf b;

		buf_init(&b, RX_MAX);
		/* data and length disagree, or data is missing */
		build(&m, MSG_REQUEST_FIRMWARE_CHUNK_REPLY, true, 0);
		m.length = 3;
		assert_int_equal(c->encode(&m, &b), -EINVAL);
		assert_int_equal(msg_set_data(&m, bytes, 3), 0);
		m.length = 2;
		assert_int_equal(c->encode(&m, &b), -EINVAL);
		/* too much data for one message */
		set_chunk(&m, OTAGW_MSG_MAX, 0);
		assert_int_equal(c->encode(&m, &b), -EINVAL);
		msg_clear(&m);
		msg_init(&m, MSG_TYPE_COUNT);
		assert_int_equal(c->encode(&m, &b), -EINVAL);
		msg_init(&m, MSG_ERROR);        /* no code */
		assert_int_equal(c->encode(&m, &b), -EINVAL);
		assert_int_equal(b.len, 0);
		buf_clear(&b);
	}
}

/* The largest chunk travels in both codecs within the default max_frame. */
static void test_chunk_max(void **state)
{
	(void)state;
	for (size_t ci = 0; ci < OTAGW_ARRAY_SIZE(codecs); ci++) {
		const struct codec_ops *c = codecs[ci];
		size_t max = c == &codec_frame ? T_MAX + 1024 : OTAGW_MSG_MAX + 1;
		struct msg m, back;
		struct err_info e;
		struct buf b;

		buf_init(&b, RX_MAX);
		build(&m, MSG_REQUEST_FIRMWARE_CHUNK_REPLY, true, 2);
		set_chunk(&m, OTAGW_CHUNK_MAX, 1 << 20);
		assert_int_equal(c->encode(&m, &b), 0);
		assert_int_equal(frame_of(c, b.data, b.len, max, &e), (ssize_t)b.len);
		assert_int_equal(decode_of(c, b.data, b.len, &back, &e), 0);
		assert_msg_equal(&m, &back);
		msg_clear(&back);
		msg_clear(&m);
		buf_clear(&b);
	}
}

/* ---- PROTOCOL.md, byte for byte ---------------------------------------- */

static const char doc_json[] = "{\"messageType\":\"REPORT_FIRMWARE\",\"deviceId\":\"d1\","
			       "\"timestamp\":1589277368209,\"version\":\"1.0.1\"}";
static const uint8_t doc_hdr[16] = { 0x4f, 0x47, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00,
				     0x00, 0x00, 0x00, 0x5d, 0x13, 0x93, 0x54, 0xba };
static const char doc_chunk_json[] =
	"{\"messageType\":\"REQUEST_FIRMWARE_CHUNK_REPLY\",\"deviceId\":\"d1\","
	"\"messageId\":\"c1\",\"timestamp\":1589277368510,\"success\":true,"
	"\"firmwareId\":\"fw1\",\"offset\":524280,"
	"\"length\":8,\"size\":524288,\"crc32\":463008392}";
static const uint8_t doc_chunk_hdr[20] = { 0x4f, 0x47, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00,
					   0x00, 0x00, 0x00, 0xd2, 0x97, 0x93, 0x2e, 0xe0,
					   0x00, 0x00, 0x00, 0xc6 };

static void test_protocol_example(void **state)
{
	struct msg m;
	struct buf b;

	(void)state;
	buf_init(&b, T_MAX);
	msg_init(&m, MSG_REPORT_FIRMWARE);
	util_strlcpy(m.device_id, "d1", sizeof(m.device_id));
	util_strlcpy(m.version, "1.0.1", sizeof(m.version));
	m.timestamp = 1589277368209LL;
	assert_int_equal(codec_frame.encode(&m, &b), 0);
	assert_int_equal(b.len, 16 + sizeof(doc_json) - 1);
	assert_memory_equal(b.data, doc_hdr, 16);
	assert_memory_equal(b.data + 16, doc_json, sizeof(doc_json) - 1);
	buf_clear(&b);
	assert_int_equal(codec_jsonline.encode(&m, &b), 0);
	assert_int_equal(b.len, sizeof(doc_json));
	assert_memory_equal(b.data, doc_json, b.len - 1);
	assert_int_equal(b.data[b.len - 1], '\n');
	buf_clear(&b);
	msg_clear(&m);

	msg_init(&m, MSG_REQUEST_FIRMWARE_CHUNK_REPLY);
	util_strlcpy(m.device_id, "d1", sizeof(m.device_id));
	util_strlcpy(m.message_id, "c1", sizeof(m.message_id));
	util_strlcpy(m.firmware_id, "fw1", sizeof(m.firmware_id));
	m.timestamp = 1589277368510LL;
	m.success = true;
	m.offset = 524280;
	m.size = 524288;
	m.length = sizeof(elf);
	assert_int_equal(msg_set_data(&m, elf, sizeof(elf)), 0);
	assert_int_equal(codec_frame.encode(&m, &b), 0);
	assert_int_equal(b.len, 20 + sizeof(doc_chunk_json) - 1 + sizeof(elf));
	assert_memory_equal(b.data, doc_chunk_hdr, 20);
	assert_memory_equal(b.data + 20, doc_chunk_json, sizeof(doc_chunk_json) - 1);
	assert_memory_equal(b.data + b.len - sizeof(elf), elf, sizeof(elf));
	buf_clear(&b);
	msg_clear(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec_find),
		cmocka_unit_test(test_roundtrip_all),
		cmocka_unit_test(test_chunk_carriers),
		cmocka_unit_test(test_stream_pieces),
		cmocka_unit_test(test_noop_frames),
		cmocka_unit_test(test_jsonline_cr),
		cmocka_unit_test(test_hostile_frame),
		cmocka_unit_test(test_huge_claim),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_hostile_decode),
		cmocka_unit_test(test_bad_crc),
		cmocka_unit_test(test_decode_not_whole),
		cmocka_unit_test(test_line_too_large_msg),
		cmocka_unit_test(test_encode_nobufs),
		cmocka_unit_test(test_encode_invalid),
		cmocka_unit_test(test_chunk_max),
		cmocka_unit_test(test_protocol_example),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
