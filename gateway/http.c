/* SPDX-License-Identifier: MIT */
/* http.c - helpers on struct http_req that handlers share. */
#include "http.h"

#include <string.h>

#include "util.h"

const char *http_arg(const struct http_req *req, const char *name)
{
	for (size_t i = 0; i < req->nargs; i++)
		if (!strcmp(req->args[i].name, name))
			return req->args[i].value;
	return NULL;
}

const char *http_method_name(enum http_method m)
{
	static const char *const names[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH",
					     "OPTIONS", "OTHER" };

	return (unsigned)m < OTAGW_ARRAY_SIZE(names) ? names[m] : "OTHER";
}
