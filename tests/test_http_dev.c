/* SPDX-License-Identifier: MIT */
/* test_http_dev.c - the Range header parser of the image endpoint, against
 * a table of forms (RFC 9110 single ranges) and hostile values. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "http_dev.h"

static void test_ranges(void **state)
{
	static const struct { const char *v; uint64_t size; int rc; uint64_t a, b; } t[] = {
		{ "bytes=0-0", 1000, 1, 0, 0 },
		{ "bytes=0-99", 1000, 1, 0, 99 },
		{ "bytes=100-", 1000, 1, 100, 999 },
		{ "bytes=990-5000", 1000, 1, 990, 999 },     /* end clamped */
		{ "bytes=-100", 1000, 1, 900, 999 },
		{ "bytes=-99999999", 1000, 1, 0, 999 },       /* suffix longer than the file */
		{ "bytes=999-999", 1000, 1, 999, 999 },
		{ "bytes=1000-", 1000, -ERANGE, 0, 0 },       /* start at the end: 416 */
		{ "bytes=99999999999999999999-", 1000, 0, 0, 0 }, /* overflow: ignored */
		{ "bytes=-0", 1000, -ERANGE, 0, 0 },
		{ "bytes=5-3", 1000, 0, 0, 0 },               /* malformed: whole image */
		{ "bytes=0-1,5-6", 1000, 0, 0, 0 },           /* several: whole image */
		{ "bytes=", 1000, 0, 0, 0 },
		{ "bytes=-", 1000, 0, 0, 0 },
		{ "bytes=a-b", 1000, 0, 0, 0 },
		{ "bytes= 1-2", 1000, 0, 0, 0 },
		{ "bytes=+1-2", 1000, 0, 0, 0 },
		{ "items=0-1", 1000, 0, 0, 0 },
		{ "bytes=0-0", 0, -ERANGE, 0, 0 },            /* empty image */
		{ NULL, 1000, 0, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t a = 7, b = 7;
		int rc = http_dev_range(t[i].v, t[i].size, &a, &b);

		if (rc != t[i].rc || (rc == 1 && (a != t[i].a || b != t[i].b)))
			fail_msg("'%s' of %llu: rc %d [%llu, %llu]", t[i].v ? t[i].v : "(null)",
				 (unsigned long long)t[i].size, rc, (unsigned long long)a,
				 (unsigned long long)b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_ranges) };

	return cmocka_run_group_tests(tests, NULL, NULL);
}
