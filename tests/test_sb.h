/* SPDX-License-Identifier: MIT */
/* test_sb.h - a growing heap string for unit tests that build large or
 * hostile inputs without printf. Include after <cmocka.h>. Each function
 * grows the buffer in one allocation (ASan's realloc always moves, so
 * byte-by-byte growth would be quadratic). The test frees b->p. */
#ifndef OTAGW_TEST_SB_H
#define OTAGW_TEST_SB_H

#include <stdlib.h>
#include <string.h>

struct sb {
	char *p;
	size_t n;
};

static inline void sb_add_n(struct sb *b, const void *s, size_t n)
{
	b->p = realloc(b->p, b->n + n + 1);
	assert_non_null(b->p);
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static inline void sb_add(struct sb *b, const char *s)
{
	sb_add_n(b, s, strlen(s));
}

/* n bytes of c. */
static inline void sb_fill(struct sb *b, char c, size_t n)
{
	b->p = realloc(b->p, b->n + n + 1);
	assert_non_null(b->p);
	memset(b->p + b->n, c, n);
	b->n += n;
	b->p[b->n] = '\0';
}

/* s repeated n times. */
static inline void sb_rep(struct sb *b, const char *s, size_t n)
{
	size_t k = strlen(s);

	b->p = realloc(b->p, b->n + k * n + 1);
	assert_non_null(b->p);
	for (size_t i = 0; i < n; i++)
		memcpy(b->p + b->n + i * k, s, k);
	b->n += k * n;
	b->p[b->n] = '\0';
}

#endif
