/* SPDX-License-Identifier: MIT */
/* test_cli_table.c - the CLI's table printer: widths in terminal columns
 * (CJK names take two), right alignment, caps that cut with "~", control
 * characters shown as '?', no trailing blanks, header-less tables, and
 * errors kept until print (nothing written then). Output goes to a
 * memory stream. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_table.h"

/* Prints t into a malloc'ed string (the caller frees it). */
static char *render(struct cli_table *t, int *rc)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);

	assert_non_null(f);
	*rc = cli_table_print(t, f);
	fclose(f);
	return out;
}

static void test_widths(void **state)
{
	static const char *const heads[] = { "ID", "NAME", "SIZE" };
	struct cli_table *t;
	char *s;
	int rc;

	assert_int_equal(cli_table_new(&t, 3, heads), 0);
	cli_table_right(t, 2);
	cli_table_cell(t, "%s", "fw1");
	cli_table_cell(t, "%s", "温度传感器");   /* 5 wide characters: 10 columns */
	cli_table_cell(t, "%d", 7);
	cli_table_cell(t, "%s", "firmware-2");
	cli_table_cell(t, "%s", "plain");
	cli_table_cell(t, "%d", 123456);
	assert_int_equal(cli_table_rows(t), 2);
	s = render(t, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(s,
			    "ID          NAME          SIZE\n"
			    "fw1         温度传感器       7\n"
			    "firmware-2  plain       123456\n");
	free(s);
	cli_table_free(t);
	assert_int_equal(cli_table_width("温度"), 4);
	assert_int_equal(cli_table_width("abc"), 3);
	assert_int_equal(cli_table_width(""), 0);
}

static void test_cap_controls_and_no_header(void **state)
{
	struct cli_table *t;
	char *s;
	int rc;

	assert_int_equal(cli_table_new(&t, 2, NULL), 0);
	cli_table_cap(t, 1, 6);
	cli_table_cell(t, "%s", "key");
	cli_table_cell(t, "%s", "a long value");
	cli_table_cell(t, "%s", "bell");
	cli_table_cell(t, "x\033[2Jy\a");
	s = render(t, &rc);
	assert_int_equal(rc, 0);
	/* cut to 6 columns ending in "~"; the escape shown as '?' */
	assert_string_equal(s, "key   a lon~\n"
			       "bell  x?[2J~\n");
	/* no trailing blanks on any line */
	for (char *p = strchr(s, '\n'); p; p = strchr(p + 1, '\n'))
		assert_true(p == s || p[-1] != ' ');
	free(s);
	cli_table_free(t);
}

static void test_bad_arguments(void **state)
{
	static const char *const heads[] = { "A" };
	struct cli_table *t = NULL;

	assert_int_not_equal(cli_table_new(&t, 0, heads), 0);
	assert_int_not_equal(cli_table_new(&t, CLI_TABLE_COLS_MAX + 1, NULL), 0);
	cli_table_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_widths),
		cmocka_unit_test(test_cap_controls_and_no_header),
		cmocka_unit_test(test_bad_arguments),
	};

	setlocale(LC_CTYPE, "C.UTF-8");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
