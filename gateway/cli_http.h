/* SPDX-License-Identifier: MIT */
/* cli_http.h - blocking HTTP/1.1 requests for the command line tools, with
 * the lws 4.1 client in a private context (never the daemon's loop). One
 * request at a time, each on a fresh connection. http:// only: the daemon
 * serves its API over plain HTTP (put a TLS proxy in front for remote use).
 * Must not: log the token or the URL's query; be used inside the daemon. */
#ifndef OTAGW_CLI_HTTP_H
#define OTAGW_CLI_HTTP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "fetch.h"

#define CLI_HTTP_BODY_MAX (1024 * 1024)   /* a collected (JSON) response */

struct cli_http;

struct cli_http_req {
	const struct fetch_url *u;   /* borrowed; u->tls must be false */
	const char *method;          /* "GET", "POST", "PUT", "DELETE" or "PATCH" */
	const char *token;           /* sent as Authorization: Bearer; NULL/"" = none */
	/* The request body, body_len bytes, from one of: body_fd (read from
	 * here; -1 = none), or body (in memory, borrowed until the request
	 * ends; used when body_fd is -1). Neither: no body, no Content-Length. */
	int body_fd;
	const void *body;
	uint64_t body_len;
	/* Content-Type of the body; NULL = application/json for an in-memory
	 * body, application/octet-stream for a file. */
	const char *content_type;
	/* Response body pieces (2xx only); 0 or a negative code that ends the
	 * request with that code. NULL: the body is collected into resp. */
	int (*on_body)(void *arg, const void *p, size_t n);
	/* Upload progress, after each piece handed to the socket. Optional. */
	void (*on_sent)(void *arg, uint64_t sent, uint64_t total);
	void *arg;
	unsigned idle_s;             /* no progress for this long: -ETIMEDOUT; 0 = 60 */
	/* When set and *stop becomes nonzero (a signal handler), the request
	 * ends with -EINTR within CLI_HTTP_TICK_MS. Optional. */
	const volatile sig_atomic_t *stop;
};

struct cli_http_resp {
	int status;                  /* HTTP status */
	char *body;                  /* collected body, NUL-terminated, malloc'ed; caller frees */
	size_t len;
};

/* A private lws context. On 0, *out is the caller's until cli_http_free(). */
int cli_http_new(struct cli_http **out, struct err_info *e) OTAGW_MUST_CHECK;
void cli_http_free(struct cli_http *h);            /* NULL: no-op */

/* Runs r to its end. 0 with resp->status set (any status: the caller
 * judges it; non-2xx bodies are always collected, for their error text);
 * -ECONNREFUSED the daemon could not be reached (connect or name lookup
 * failed); -ETIMEDOUT no progress for idle_s; -EIO the connection broke
 * after it was made; -EFBIG a collected body past CLI_HTTP_BODY_MAX;
 * -EINTR *stop was set; on_body's code. resp->body may be set on errors
 * too (caller frees). */
int cli_http_run(struct cli_http *h, const struct cli_http_req *r, struct cli_http_resp *resp,
		 struct err_info *e) OTAGW_MUST_CHECK;

#endif
