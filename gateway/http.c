/* SPDX-License-Identifier: MIT */
/* http.c - helpers on struct http_req that handlers share. */
#include "http.h"

#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
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

int http_resp_header(struct http_resp *resp, const char *name, const char *fmt, ...)
{
	struct http_hdr *h;
	va_list ap;

	if (resp->nhdrs >= HTTP_RESP_HDRS)
		return -ENOSPC;
	h = &resp->hdrs[resp->nhdrs++];
	h->name = name;
	va_start(ap, fmt);
	vsnprintf(h->value, sizeof(h->value), fmt, ap);
	va_end(ap);
	return 0;
}

int http_resp_json(struct http_resp *resp, int status, cJSON *o)
{
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;

	cJSON_Delete(o);
	if (!text)
		return -ENOMEM;
	resp->status = status;
	resp->content_type = "application/json";
	resp->body = text;
	resp->body_len = strlen(text);
	return 0;
}
