/* SPDX-License-Identifier: MIT */
/* buf.c - bounded growable byte buffer; see buf.h. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void buf_clear(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	size_t cap;
	uint8_t *nd;

	if (n > b->max - b->len)
		return -ENOBUFS;
	if (b->len + n > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap = cap > b->max / 2 ? b->max : cap * 2;
		nd = realloc(b->data, cap);
		if (!nd)
			return -ENOMEM;
		b->data = nd;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

size_t buf_room(const struct buf *b)
{
	return b->max - b->len;
}
