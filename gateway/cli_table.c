/* SPDX-License-Identifier: MIT */
/* cli_table.c - aligned text tables; see cli_table.h. Widths come from
 * mbrtowc()+wcwidth() under the caller's LC_CTYPE. When the locale cannot
 * decode the text (the "C" locale, or bytes that are not UTF-8 in a UTF-8
 * locale), the UTF-8 is decoded here and East-Asian wide ranges count two
 * columns, so tables still line up on the (UTF-8) terminals people use.
 * Must not: change the locale; print control characters from the data. */
#include "cli_table.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "util.h"

#define TBL_GAP "  "

struct cli_table {
	size_t ncols;
	char *heads[CLI_TABLE_COLS_MAX];      /* all NULL: no header line */
	bool right[CLI_TABLE_COLS_MAX];
	size_t cap[CLI_TABLE_COLS_MAX];       /* terminal columns, 0 = none */
	char **cells;                         /* row-major, n filled of alloc */
	size_t n, alloc;
	int err;                              /* first failure while filling */
};

/* ---- measuring ------------------------------------------------------------------- */

/* Code points of the East-Asian wide and fullwidth blocks (Unicode EAW W/F),
 * coarsely: what the fallback decoder counts as two columns. */
static const struct { uint32_t lo, hi; } tbl_wide[] = {
	{ 0x1100, 0x115f },  { 0x2e80, 0x303e },  { 0x3041, 0x33ff },  { 0x3400, 0x4dbf },
	{ 0x4e00, 0x9fff },  { 0xa000, 0xa4cf },  { 0xac00, 0xd7a3 },  { 0xf900, 0xfaff },
	{ 0xfe30, 0xfe4f },  { 0xff00, 0xff60 },  { 0xffe0, 0xffe6 },  { 0x1f300, 0x1f64f },
	{ 0x1f900, 0x1f9ff }, { 0x20000, 0x3fffd },
};

static int tbl_wide_cp(uint32_t cp)
{
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(tbl_wide); i++)
		if (cp >= tbl_wide[i].lo && cp <= tbl_wide[i].hi)
			return 2;
	return 1;
}

/* Fallback: one UTF-8 sequence at s (left > 0 bytes); its length in *len;
 * returns its columns. A byte that starts no valid sequence is 1 column. */
static int tbl_utf8(const unsigned char *s, size_t left, size_t *len)
{
	uint32_t cp;
	size_t n, i;

	*len = 1;
	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 1;
	n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
	if (n > left)
		return 1;
	cp = s[0] & (0x7f >> n);
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 1;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	*len = n;
	return tbl_wide_cp(cp);
}

/* The character at s (left > 0 bytes): its length in *len, its columns. */
static int tbl_char(const char *s, size_t left, mbstate_t *st, size_t *len)
{
	wchar_t wc;
	size_t n = mbrtowc(&wc, s, left, st);
	int w;

	if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
		memset(st, 0, sizeof(*st));
		return tbl_utf8((const unsigned char *)s, left, len);
	}
	*len = n;
	w = wcwidth(wc);
	return w < 0 ? 1 : w;
}

/* Of s, the longest prefix that fits max columns: its bytes in *bytes;
 * returns its columns. max = SIZE_MAX measures all of s. */
static size_t tbl_fit(const char *s, size_t max, size_t *bytes)
{
	size_t left = strlen(s), at = 0, cols = 0, len;
	mbstate_t st;
	int w;

	memset(&st, 0, sizeof(st));
	while (at < left) {
		w = tbl_char(s + at, left - at, &st, &len);
		if (cols + (size_t)w > max)
			break;
		cols += (size_t)w;
		at += len;
	}
	*bytes = at;
	return cols;
}

size_t cli_table_width(const char *s)
{
	size_t bytes;

	return tbl_fit(s ? s : "", SIZE_MAX, &bytes);
}

/* ---- filling ----------------------------------------------------------------------- */

int cli_table_new(struct cli_table **out, size_t ncols, const char *const *heads)
{
	struct cli_table *t;

	if (!ncols || ncols > CLI_TABLE_COLS_MAX)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->ncols = ncols;
	for (size_t i = 0; heads && i < ncols; i++) {
		t->heads[i] = strdup(heads[i] ? heads[i] : "");
		if (!t->heads[i]) {
			cli_table_free(t);
			return -ENOMEM;
		}
	}
	*out = t;
	return 0;
}

void cli_table_free(struct cli_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->ncols; i++)
		free(t->heads[i]);
	for (size_t i = 0; i < t->n; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void cli_table_right(struct cli_table *t, size_t col)
{
	if (col < t->ncols)
		t->right[col] = true;
}

void cli_table_cap(struct cli_table *t, size_t col, size_t cols)
{
	if (col < t->ncols)
		t->cap[col] = cols;
}

/* Control characters, C0, DEL and C1 (U+0080-U+009F), become '?' in place. */
static void tbl_clean(char *s)
{
	unsigned char *r = (unsigned char *)s, *w = r;

	while (*r) {
		if (r[0] == 0xc2 && r[1] >= 0x80 && r[1] <= 0x9f) {
			*w++ = '?';
			r += 2;
		} else if (*r < 0x20 || *r == 0x7f) {
			*w++ = '?';
			r++;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

static int tbl_grow(struct cli_table *t)
{
	size_t alloc = t->alloc ? t->alloc * 2 : 16 * t->ncols;
	char **cells;

	if (t->n / t->ncols >= CLI_TABLE_ROWS_MAX)
		return -E2BIG;
	cells = realloc(t->cells, alloc * sizeof(*cells));
	if (!cells)
		return -ENOMEM;
	t->cells = cells;
	t->alloc = alloc;
	return 0;
}

void cli_table_cell(struct cli_table *t, const char *fmt, ...)
{
	char buf[CLI_TABLE_CELL_MAX];
	va_list ap;

	if (t->err)
		return;
	if (t->n == t->alloc) {
		t->err = tbl_grow(t);
		if (t->err)
			return;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	tbl_clean(buf);
	t->cells[t->n] = strdup(buf);
	if (!t->cells[t->n]) {
		t->err = -ENOMEM;
		return;
	}
	t->n++;
}

size_t cli_table_rows(const struct cli_table *t)
{
	return t->n / t->ncols;
}

/* ---- printing ---------------------------------------------------------------------- */

/* Columns cell s shows in column col (its cap applied). */
static size_t tbl_shown(const struct cli_table *t, size_t col, const char *s)
{
	size_t w = cli_table_width(s);

	return t->cap[col] && w > t->cap[col] ? t->cap[col] : w;
}

static void tbl_pad(FILE *f, size_t n)
{
	while (n--)
		fputc(' ', f);
}

/* Writes s into a column of width cols; last: no padding after it. */
static void tbl_put(const struct cli_table *t, FILE *f, size_t col, const char *s, size_t cols,
		    bool last)
{
	/* s is never NULL: cells are strdup'ed; cli_table_new() strdup's every head or none,
	 * print checks heads[0]. NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker) */
	size_t w = cli_table_width(s), bytes = strlen(s);

	if (t->cap[col] && w > t->cap[col]) {
		w = tbl_fit(s, t->cap[col] - 1, &bytes) + 1;
		if (t->right[col])
			tbl_pad(f, cols - w);
		fprintf(f, "%.*s~", (int)bytes, s);
	} else {
		if (t->right[col])
			tbl_pad(f, cols - w);
		fputs(s, f);
	}
	if (!t->right[col] && !last)
		tbl_pad(f, cols - w);
}

static void tbl_line(const struct cli_table *t, FILE *f, char *const *row, const size_t *cols)
{
	size_t last = t->ncols - 1;

	/* trailing empty left-aligned cells print nothing. No cell is NULL (see tbl_put):
	 * NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
	while (last && !t->right[last] && !row[last][0])
		last--;
	for (size_t c = 0; c <= last; c++) {
		if (c)
			fputs(TBL_GAP, f);
		tbl_put(t, f, c, row[c], cols[c], c == last);
	}
	fputc('\n', f);
}

int cli_table_print(const struct cli_table *t, FILE *f)
{
	size_t cols[CLI_TABLE_COLS_MAX] = { 0 }, rows = cli_table_rows(t);

	if (t->err)
		return t->err;
	for (size_t c = 0; c < t->ncols; c++) {
		if (t->heads[c])
			cols[c] = tbl_shown(t, c, t->heads[c]);
		for (size_t r = 0; r < rows; r++) {
			size_t w = tbl_shown(t, c, t->cells[r * t->ncols + c]);

			if (w > cols[c])
				cols[c] = w;
		}
	}
	if (t->heads[0])
		tbl_line(t, f, t->heads, cols);
	for (size_t r = 0; r < rows; r++)
		tbl_line(t, f, t->cells + r * t->ncols, cols);
	return 0;
}
