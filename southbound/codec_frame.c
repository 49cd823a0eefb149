/* SPDX-License-Identifier: MIT */
/* codec_frame.c - length-prefixed binary frames for devices that cannot
 * frame lines; byte layout in PROTOCOL.md. A 16-byte header (magic "OG",
 * version 1, type, flags, reserved, u32 payload length, u32 CRC-32 of the
 * payload, all big-endian), then the payload:
 *   type 1: one JetLinks JSON message;
 *   type 2: u32 json_len, a REQUEST_FIRMWARE_CHUNK_REPLY without "data",
 *           then the chunk's raw bytes (no base64).
 * The header is checked byte by byte as it arrives, and a frame longer than
 * max is refused from its header alone, before any payload is buffered.
 * Must not: keep state, log, read beyond len, trust a length before
 * checking it against what is there. */
#include "codec.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "msg_json.h"

#define FRAME_HDR 16
#define FRAME_MAGIC0 0x4F      /* 'O' */
#define FRAME_MAGIC1 0x47      /* 'G' */
#define FRAME_VERSION 0x01
#define FRAME_JSON 0x01
#define FRAME_CHUNK 0x02
#define FRAME_JSON_LEN 4       /* type 2: the u32 before the JSON */

static uint32_t frame_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void frame_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* The header bytes 0-7 that are there (len may be < 8): 0 or -EBADMSG. */
static int frame_check_fixed(const uint8_t *buf, size_t len, struct err_info *e)
{
	static const uint8_t want[] = { FRAME_MAGIC0, FRAME_MAGIC1, FRAME_VERSION };

	for (size_t i = 0; i < len && i < sizeof(want); i++)
		if (buf[i] != want[i])
			return err_set(e, -EBADMSG, i < 2 ? "bad magic" : "unsupported version");
	if (len > 3 && buf[3] != FRAME_JSON && buf[3] != FRAME_CHUNK)
		return err_set(e, -EBADMSG, "unknown frame type");
	for (size_t i = 4; i < len && i < 8; i++)
		if (buf[i])
			return err_set(e, -EBADMSG,
				       i == 4 ? "nonzero flags" : "nonzero reserved byte");
	return 0;
}

static ssize_t frame_frame(const uint8_t *buf, size_t len, size_t max, struct err_info *e)
{
	uint64_t total;
	int rc = frame_check_fixed(buf, len, e);

	if (rc)
		return rc;
	if (len < FRAME_HDR)
		return 0;
	total = FRAME_HDR + (uint64_t)frame_get32(buf + 8);
	if (total > max || total > SSIZE_MAX)
		return err_set(e, -EMSGSIZE, "frame of %llu bytes (max %zu)",
			       (unsigned long long)total, max);
	return len < total ? 0 : (ssize_t)total;
}

/* msg_json_decode() with its errors as the connection sees them. */
static int frame_json(const uint8_t *buf, size_t len, struct msg *m, struct err_info *e)
{
	struct err_info in = { 0 };
	int rc = msg_json_decode(buf, len, m, &in);

	if (rc == -EMSGSIZE)
		return err_set(e, -EBADMSG, "message too large: %s", in.text);
	return rc ? err_set(e, rc, "%s", in.text) : 0;
}

/* Type 2: the JSON header, then the raw chunk it describes. */
static int frame_dec_chunk(const uint8_t *p, size_t n, struct msg *m, struct err_info *e)
{
	uint32_t jlen;
	int rc;

	if (n < FRAME_JSON_LEN)
		return err_set(e, -EBADMSG, "type 2 payload too short");
	jlen = frame_get32(p);
	if (jlen > n - FRAME_JSON_LEN)
		return err_set(e, -EBADMSG, "type 2 json_len beyond the payload");
	rc = frame_json(p + FRAME_JSON_LEN, jlen, m, e);
	if (rc)
		return rc;
	p += FRAME_JSON_LEN + jlen;
	n -= FRAME_JSON_LEN + jlen;
	if (m->type != MSG_REQUEST_FIRMWARE_CHUNK_REPLY || !m->success)
		return err_set(e, -EBADMSG, "type 2 frame without a successful chunk reply");
	if (m->data)
		return err_set(e, -EBADMSG, "type 2 frame with \"data\" in its JSON");
	if (n != m->length)
		return err_set(e, -EBADMSG, "type 2 frame: %zu data bytes, field 'length' says %u",
			       n, (unsigned)m->length);
	if (crc32(0L, p, (uInt)n) != m->crc32)
		return err_set(e, -EBADMSG, "field 'crc32': does not match data");
	rc = msg_set_data(m, p, n);
	return rc ? err_set(e, rc, "out of memory") : 0;
}

/* Header already checked by frame(), but decode() stands on its own: a
 * frame not delimited by frame() is refused, not over-read. */
static int frame_decode(const uint8_t *frame, size_t len, struct msg *m, struct err_info *e)
{
	const uint8_t *p = frame + FRAME_HDR;
	size_t n;
	int rc;

	msg_init(m, MSG_REPORT_FIRMWARE);
	err_clear(e);
	if (len < FRAME_HDR || frame_check_fixed(frame, FRAME_HDR, NULL) ||
	    frame_get32(frame + 8) != len - FRAME_HDR)
		return err_set(e, -EBADMSG, "not a whole frame");
	n = len - FRAME_HDR;
	if (crc32(0L, p, (uInt)n) != frame_get32(frame + 12))
		return err_set(e, -EBADMSG, "bad CRC");
	if (frame[3] == FRAME_CHUNK)
		rc = frame_dec_chunk(p, n, m, e);
	else if (!n)
		return err_set(e, -ENODATA, "empty frame");
	else
		rc = codec_jsonline.decode(p, n, m, e);
	if (rc)
		msg_clear(m);
	return rc;
}

/* Appends header + parts[0..2) as one frame, all or nothing. */
static int frame_put(struct buf *out, uint8_t type, const void *const part[3],
		     const size_t part_len[3])
{
	uint64_t plen = 0;
	uint8_t *f, *w;
	uLong crc = crc32(0L, NULL, 0);
	int rc;

	for (int i = 0; i < 3; i++)
		plen += part_len[i];
	if (plen > UINT32_MAX)
		return -EINVAL;
	if (FRAME_HDR + plen > buf_room(out))
		return -ENOBUFS;
	f = malloc(FRAME_HDR + (size_t)plen);
	if (!f)
		return -ENOMEM;
	memset(f, 0, FRAME_HDR);
	f[0] = FRAME_MAGIC0;
	f[1] = FRAME_MAGIC1;
	f[2] = FRAME_VERSION;
	f[3] = type;
	frame_put32(f + 8, (uint32_t)plen);
	w = f + FRAME_HDR;
	for (int i = 0; i < 3; i++) {
		if (part_len[i])
			memcpy(w, part[i], part_len[i]);
		w += part_len[i];
	}
	crc = crc32(crc, f + FRAME_HDR, (uInt)plen);
	frame_put32(f + 12, (uint32_t)crc);
	rc = buf_append(out, f, FRAME_HDR + (size_t)plen);
	free(f);
	return rc;
}

/* A successful chunk reply: its JSON without "data", the raw bytes after. */
static int frame_enc_chunk(const struct msg *m, struct buf *out)
{
	struct msg hdr = *m;    /* shallow: only read, never cleared */
	uint8_t jlen[FRAME_JSON_LEN];
	char *json = NULL;
	size_t n = 0;
	int rc;

	if (m->data_len != m->length || m->data_len > OTAGW_CHUNK_MAX)
		return -EINVAL;
	hdr.data = NULL;
	hdr.data_len = 0;
	hdr.crc32 = (uint32_t)crc32(0L, m->data, (uInt)m->data_len);
	rc = msg_json_encode(&hdr, &json, &n);
	if (rc)
		return rc == -EMSGSIZE ? -EINVAL : rc;
	frame_put32(jlen, (uint32_t)n);
	rc = frame_put(out, FRAME_CHUNK, (const void *const[3]){ jlen, json, m->data },
		       (const size_t[3]){ sizeof(jlen), n, m->data_len });
	free(json);
	return rc;
}

static int frame_encode(const struct msg *m, struct buf *out)
{
	char *json = NULL;
	size_t n = 0;
	int rc;

	if (m->type == MSG_REQUEST_FIRMWARE_CHUNK_REPLY && m->success && m->data_len)
		return frame_enc_chunk(m, out);
	/* Type 1 has no other place for chunk data than base64 "data". */
	if (m->type == MSG_REQUEST_FIRMWARE_CHUNK_REPLY && m->success &&
	    m->data_len != m->length)
		return -EINVAL;
	rc = msg_json_encode(m, &json, &n);
	if (rc)
		return rc == -EMSGSIZE ? -EINVAL : rc;
	rc = frame_put(out, FRAME_JSON, (const void *const[3]){ json, NULL, NULL },
		       (const size_t[3]){ n, 0, 0 });
	free(json);
	return rc;
}

const struct codec_ops codec_frame = {
	.name = "frame",
	.frame = frame_frame,
	.decode = frame_decode,
	.encode = frame_encode,
};
