/* SPDX-License-Identifier: MIT */
/* buf.h - a growable byte buffer with a required maximum (curl's dynbuf):
 * receive buffers and send queues of connections, encoder output. A buffer
 * never grows past max; appending beyond it fails and leaves it unchanged.
 * Ownership: embedded in its owner; buf_clear() frees the storage.
 * Must not: log, or grow without bound. */
#ifndef OTAGW_BUF_H
#define OTAGW_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct buf {
	uint8_t *data;      /* NULL until the first append */
	size_t len;         /* bytes held, starting at data */
	size_t cap;         /* bytes allocated */
	size_t max;         /* never more than this many bytes held */
};

/* An empty buffer that will hold at most max bytes. */
void buf_init(struct buf *b, size_t max);
/* Frees the storage; b is empty (max kept) afterwards. */
void buf_clear(struct buf *b);
/* Appends n bytes. -ENOBUFS past max (b unchanged), -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n) OTAGW_MUST_CHECK;
/* Drops the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Bytes that may still be appended. */
size_t buf_room(const struct buf *b);

#endif
