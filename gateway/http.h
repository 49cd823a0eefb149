/* SPDX-License-Identifier: MIT */
/* http.h - one HTTP request and its response as plain data, so handlers
 * (REST API, later device endpoints) never see a socket or libwebsockets.
 * loop.c fills struct http_req from the connection and writes http_resp.
 * Must not: include libwebsockets. */
#ifndef OTAGW_HTTP_H
#define OTAGW_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_ARGS_MAX 16

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_PATCH,
		   HTTP_OPTIONS, HTTP_OTHER };

struct http_arg {
	const char *name;       /* url-decoded, borrowed */
	const char *value;      /* url-decoded, "" when absent */
};

/* Everything is borrowed for the duration of the handler call. */
struct http_req {
	enum http_method method;
	const char *path;               /* url-decoded, starts with '/' */
	const char *authorization;      /* the header, or NULL */
	const char *content_type;       /* or NULL */
	size_t nargs;
	struct http_arg args[HTTP_ARGS_MAX];
	const uint8_t *body;            /* not NUL-terminated; NULL when empty */
	size_t body_len;
	int peer_loopback;              /* the client connected from 127.0.0.0/8 */
};

/* Filled by the handler. body is malloc'ed and freed by loop.c. */
struct http_resp {
	int status;
	const char *content_type;       /* static string; default application/json */
	const char *www_authenticate;   /* static string or NULL */
	char *body;
	size_t body_len;
};

/* A handler answers synchronously. It returns 0 with resp filled, or
 * negative when it could not even build a response (loop answers 500). */
typedef int (*http_handler)(void *ctx, const struct http_req *req, struct http_resp *resp);

/* The first query argument called name, or NULL. */
const char *http_arg(const struct http_req *req, const char *name);
const char *http_method_name(enum http_method m);

#endif
