/* SPDX-License-Identifier: MIT */
/* http.h - one HTTP request and its response as plain data, so handlers
 * (REST API, later device endpoints) never see a socket or libwebsockets.
 * loop.c fills struct http_req from the connection and writes http_resp.
 * Must not: include libwebsockets. */
#ifndef OTAGW_HTTP_H
#define OTAGW_HTTP_H

#include <stdbool.h>
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
	const char *range;              /* Range, or NULL */
	const char *if_range;           /* If-Range, or NULL */
	const char *if_none_match;      /* If-None-Match, or NULL */
	size_t nargs;
	struct http_arg args[HTTP_ARGS_MAX];
	const uint8_t *body;            /* not NUL-terminated; NULL when empty */
	size_t body_len;
	int peer_loopback;              /* the client connected from 127.0.0.0/8 */
	void *priv;                     /* loop.c's: the connection, for http_defer() */
};

#define HTTP_RESP_HDRS 6

struct http_hdr {
	const char *name;               /* static, lower case with colon: "etag:" */
	char value[128];
};

/* Filled by the handler. body is malloc'ed and freed by loop.c. With
 * has_file, the body is bytes [file_off, file_off + body_len) of file_fd,
 * sent from the loop in large writes; loop.c closes file_fd. */
struct http_resp {
	int status;
	const char *content_type;       /* static string; default application/json */
	const char *www_authenticate;   /* static string or NULL */
	const char *cache_control;      /* static string; default "no-store" */
	char *body;
	uint64_t body_len;
	bool has_file;
	int file_fd;
	uint64_t file_off;
	size_t nhdrs;
	struct http_hdr hdrs[HTTP_RESP_HDRS];
	/* Optional, for file bodies: file_sent(arg, off, n) after each write of
	 * file bytes [off, off + n) to the socket (not a proof of receipt);
	 * file_done(arg) exactly once when the response ends, is dropped, or
	 * is never sent. arg is the handler's until file_done. */
	void (*file_sent)(void *arg, uint64_t off, uint64_t n);
	void (*file_done)(void *arg);
	void *file_arg;
};

/* A request answered later (long-poll). Inside a handler, http_defer()
 * takes req out of the synchronous path: the handler returns 0 without
 * filling resp, and later calls http_deferred_answer() exactly once, unless
 * cancel(arg) came first (the client went away; the handle is then dead).
 * NULL when the request cannot wait. */
struct http_deferred;
struct http_deferred *http_defer(const struct http_req *req, unsigned max_wait_s,
				 void (*cancel)(void *arg), void *arg);
/* True when the waiting client has closed or reset its connection (libws
 * 4.1 does not notice while a request is outstanding). The connection is
 * then torn down from the loop, and cancel(arg) follows; until then d stays
 * valid but must not be answered. Call before handing the client anything
 * that must not be lost. */
bool http_deferred_gone(struct http_deferred *d);
/* Sends resp (its body and file are moved into the loop). */
void http_deferred_answer(struct http_deferred *d, struct http_resp *resp);

struct cJSON;
/* Sets resp to status with o as its JSON body; takes o (deleted here, also
 * on failure; NULL gives -ENOMEM). */
int http_resp_json(struct http_resp *resp, int status, struct cJSON *o);

/* Adds a response header (name static, "etag:"); -ENOSPC when full. */
int http_resp_header(struct http_resp *resp, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A handler answers synchronously. It returns 0 with resp filled, or
 * negative when it could not even build a response (loop answers 500). */
typedef int (*http_handler)(void *ctx, const struct http_req *req, struct http_resp *resp);

/* A handler that takes the request body as a stream (image uploads), so
 * nothing proportional to the body is held in memory. All run on the loop. */
struct http_stream_ops {
	/* True when this handler takes req (method and path). */
	bool (*match)(void *ctx, const struct http_req *req);
	/* Starts a body of content_length bytes (Content-Length is required).
	 * 0: accepted, *state is the handler's until end() or abort(); else
	 * resp holds the answer and no body is read (the connection closes). */
	int (*begin)(void *ctx, const struct http_req *req, uint64_t content_length,
		     void **state, struct http_resp *resp);
	/* One piece of the body. Non-zero: resp holds the answer, the handler
	 * has released state, the rest of the body is not read. */
	int (*data)(void *state, const void *buf, size_t len, struct http_resp *resp);
	/* The whole body is in: fill resp, release state. */
	int (*end)(void *state, struct http_resp *resp);
	/* The connection went away mid-body: release state. */
	void (*abort)(void *state);
};

/* The first query argument called name, or NULL. */
const char *http_arg(const struct http_req *req, const char *name);
const char *http_method_name(enum http_method m);

#endif
