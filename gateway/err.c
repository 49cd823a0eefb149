/* SPDX-License-Identifier: MIT */
/* err.c - error codes to text, and the err_info detail carrier. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#undef err_set          /* err.h's model of it for clang-tidy */

static const char *const otagw_texts[] = {
	[OTAGW_ESTATE - 1000] = "illegal state transition",
	[OTAGW_ESIGNATURE - 1000] = "signature mismatch",
	[OTAGW_ESCHEMA - 1000] = "database schema is newer than this program",
	[OTAGW_ECONFIG - 1000] = "invalid configuration",
	[OTAGW_EAUTH - 1000] = "authentication failed",
};

const char *otagw_strerror(int code)
{
	if (code < 0)
		code = -code;
	if (code == 0)
		return "success";
	if (code >= 1000 && code - 1000 < (int)(sizeof(otagw_texts) / sizeof(otagw_texts[0])))
		return otagw_texts[code - 1000];
	if (code < 1000)
		return strerror(code);
	return "unknown error";
}

int err_set(struct err_info *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return code;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
	return code;
}

void err_clear(struct err_info *e)
{
	if (!e)
		return;
	e->code = 0;
	e->text[0] = '\0';
}

const char *err_text(const struct err_info *e)
{
	if (!e)
		return "";
	return e->text[0] ? e->text : otagw_strerror(e->code);
}
