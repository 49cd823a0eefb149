/* SPDX-License-Identifier: MIT */
/* cli_table.h - aligned text tables for the command line tools: column
 * widths from the data, measured in terminal columns (UTF-8 through the
 * C library's mbrtowc/wcwidth under the caller's LC_CTYPE, so Chinese
 * names take two columns each), cells capped and cut with "~" when asked.
 * Control characters in cells (daemon data) are shown as '?', never sent
 * to the terminal.
 * Must not: call setlocale (the caller owns the locale), talk to the daemon,
 * or write anywhere but the FILE it is given. */
#ifndef OTAGW_CLI_TABLE_H
#define OTAGW_CLI_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"

#define CLI_TABLE_COLS_MAX 16
#define CLI_TABLE_ROWS_MAX 100000
#define CLI_TABLE_CELL_MAX 4096     /* bytes of one cell; longer text is cut */

struct cli_table;

/* A table with ncols (1..CLI_TABLE_COLS_MAX) columns. heads: ncols titles
 * (copied), or NULL for a table without a header line (key/value lists).
 * On 0, *out is the caller's until cli_table_free(). */
int cli_table_new(struct cli_table **out, size_t ncols, const char *const *heads) OTAGW_MUST_CHECK;
void cli_table_free(struct cli_table *t);          /* NULL: no-op */

/* Column col is right-aligned (numbers). */
void cli_table_right(struct cli_table *t, size_t col);
/* Cells of column col wider than cols terminal columns are cut to fit,
 * ending in "~". 0 = no cap (the default). */
void cli_table_cap(struct cli_table *t, size_t col, size_t cols);

/* Appends the next cell, printf-style; after ncols cells the next one
 * starts a new row. Failures (memory, too many rows) are kept and returned
 * by cli_table_print(), so a caller can add cells without checking each. */
void cli_table_cell(struct cli_table *t, const char *fmt, ...) OTAGW_PRINTF(2, 3);
/* Rows complete so far. */
size_t cli_table_rows(const struct cli_table *t);

/* Writes the table to f: the header (when any), then each row, columns
 * separated by two spaces, no trailing blanks. 0, or the first failure
 * (-ENOMEM, -E2BIG) met while filling it (nothing is written then). */
int cli_table_print(const struct cli_table *t, FILE *f) OTAGW_MUST_CHECK;

/* Terminal columns that UTF-8 text s takes (invalid bytes count 1). */
size_t cli_table_width(const char *s);

#endif
