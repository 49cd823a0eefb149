/* SPDX-License-Identifier: MIT */
/* codec_jsonline.c - one JetLinks JSON message per line ("\n", optionally
 * "\r\n"); see codec.h and PROTOCOL.md. A chunk reply carries its data in
 * base64 ("data"), as a line has no other place for it.
 * Must not: keep state, log, read beyond len, or let a bad line end the
 * connection (only a line longer than max does). */
#include "codec.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "msg_json.h"

static ssize_t jsonline_frame(const uint8_t *buf, size_t len, size_t max, struct err_info *e)
{
	const uint8_t *nl = memchr(buf, '\n', len < max ? len : max);

	if (nl)
		return nl - buf + 1;
	if (len >= max)
		return err_set(e, -EMSGSIZE, "line longer than %zu bytes", max);
	return 0;
}

/* True when buf[0..len) is nothing but spaces and tabs (or nothing). */
static bool jsonline_blank(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != ' ' && buf[i] != '\t')
			return false;
	return true;
}

static int jsonline_decode(const uint8_t *frame, size_t len, struct msg *m, struct err_info *e)
{
	struct err_info in = { 0 };
	int rc;

	msg_init(m, MSG_REPORT_FIRMWARE);
	err_clear(e);
	if (len && frame[len - 1] == '\n')
		len--;
	if (len && frame[len - 1] == '\r')
		len--;
	if (jsonline_blank(frame, len))
		return err_set(e, -ENODATA, "empty line");
	rc = msg_json_decode(frame, len, m, &in);
	/* Too large for a message but within the line cap: the line ended, so
	 * the stream is still in step and the connection may go on. */
	if (rc == -EMSGSIZE)
		return err_set(e, -EBADMSG, "message too large: %s", in.text);
	if (rc)
		return err_set(e, rc, "%s", in.text);
	if (m->type == MSG_REQUEST_FIRMWARE_CHUNK_REPLY && m->success &&
	    m->data_len != m->length) {
		msg_clear(m);
		return err_set(e, -EBADMSG, "field 'data': missing");
	}
	return 0;
}

static int jsonline_encode(const struct msg *m, struct buf *out)
{
	char *text = NULL, *line;
	size_t n = 0;
	int rc;

	/* A line has no other place for the data than "data". */
	if (m->type == MSG_REQUEST_FIRMWARE_CHUNK_REPLY && m->success &&
	    m->data_len != m->length)
		return -EINVAL;
	rc = msg_json_encode(m, &text, &n);
	if (rc)
		return rc == -EMSGSIZE ? -EINVAL : rc;
	if (n + 1 > buf_room(out)) {
		free(text);
		return -ENOBUFS;
	}
	/* One append, so out gets the whole line or nothing. */
	line = realloc(text, n + 1);
	if (!line) {
		free(text);
		return -ENOMEM;
	}
	line[n] = '\n';
	rc = buf_append(out, line, n + 1);
	free(line);
	return rc;
}

const struct codec_ops codec_jsonline = {
	.name = "jsonline",
	.frame = jsonline_frame,
	.decode = jsonline_decode,
	.encode = jsonline_encode,
};
