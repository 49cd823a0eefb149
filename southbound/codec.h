/* SPDX-License-Identifier: MIT */
/* codec.h - device protocols as ops tables: bytes <-> struct msg. A TCP
 * connection (or serial line) keeps a receive buffer; the transport asks the
 * codec where the first whole frame ends, decodes it, and encodes what the
 * core sends back. A site adds its own device protocol by adding one ops
 * table to codec_registry[] (codec.c), as a JetLinks protocol package does.
 * Codecs are stateless: fed one byte at a time or many messages in one read,
 * they decode the same messages.
 * Must not: keep state, touch sockets or the store, read beyond len. */
#ifndef OTAGW_CODEC_H
#define OTAGW_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"
#include "msg.h"

struct codec_ops {
	const char *name;    /* "jsonline", "frame": the [tcp] codec value */
	/* Bytes in the first whole frame of buf[0..len) (> 0), 0 when more
	 * bytes are needed, -EMSGSIZE when the frame is or would be longer than
	 * max bytes, -EBADMSG when the stream is garbage and cannot be
	 * resynchronised. Both errors are fatal for the connection. */
	ssize_t (*frame)(const uint8_t *buf, size_t len, size_t max, struct err_info *e);
	/* Decodes one whole frame (as delimited by frame()) into m, which the
	 * caller owns afterwards (msg_clear). -ENODATA: nothing to handle (an
	 * empty line); -EBADMSG: a bad frame (bad CRC, bad JSON ...) that the
	 * connection survives; e says why. On error m is cleared. */
	int (*decode)(const uint8_t *frame, size_t len, struct msg *m, struct err_info *e);
	/* Appends m, encoded as one frame, to out. -ENOBUFS when out is full
	 * (out unchanged), -EINVAL when m cannot be encoded. */
	int (*encode)(const struct msg *m, struct buf *out);
};

/* The codec called name, or NULL. */
const struct codec_ops *codec_find(const char *name);

extern const struct codec_ops codec_jsonline;
extern const struct codec_ops codec_frame;

#endif
