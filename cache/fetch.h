/* SPDX-License-Identifier: MIT */
/* fetch.h - resumable HTTP(S) downloads into a cache_writer with the
 * libwebsockets client, inside the gateway's one loop.
 * Host names are resolved off the loop (resolve.h), then the client
 * connects to the address with the right Host header and SNI. TLS verifies
 * the server against the system CA store or cfg->ca_file; there is no way
 * to turn that off. A resume sends Range: bytes=<offset>- with If-Range
 * (the ETag, else Last-Modified); 206 must start at offset, 200 means the
 * server ignored Range and the writer restarts from zero. Redirects are
 * followed up to cfg->max_redirects.
 * Must not: block the loop, touch SQLite, decide retries (the caller does,
 * from the rc and retry_after it gets). */
#ifndef OTAGW_FETCH_H
#define OTAGW_FETCH_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "err.h"

struct fetch;
struct resolve;

/* lws 4.1 prints the request line into 2048 bytes and Host: into 128. */
#define FETCH_PATH_MAX 2000
#define FETCH_HOST_HDR_MAX 120
#define FETCH_URL_HOST_MAX 254        /* RESOLVE_HOST_MAX */

/* An absolute http(s) URL, split. */
struct fetch_url {
	bool tls;                     /* https */
	unsigned port;
	char host[FETCH_URL_HOST_MAX]; /* IPv6 without brackets */
	char host_hdr[FETCH_HOST_HDR_MAX]; /* Host: (and TLS name): host[:port] */
	char path[FETCH_PATH_MAX + 1];  /* with the query; "/" at least */
};

/* Splits url (http:// or https://, no user info, no fragment, printable
 * ASCII). NULL, or a static text saying why it is refused. */
const char *fetch_url_parse(const char *url, struct fetch_url *u);
struct fetch_job;

struct fetch_cfg {
	struct lws_context *ctx;     /* borrowed */
	const char *ca_file;         /* PEM bundle, or NULL/"" for the system store */
	unsigned max_redirects;      /* e.g. 5 */
	unsigned timeout_s;          /* no byte for this long: the attempt fails (-EAGAIN) */
};

/* Outcome of one attempt, given to done():
 *   0          the body is complete in the writer (caller commits)
 *   -EAGAIN    transient: connection/DNS/TLS-handshake-timeout failure,
 *              5xx, 408, 429 (retry_after_s from Retry-After when given)
 *   -EPERM     permanent: other 4xx, bad URL, redirect loop or too many
 *              redirects, certificate verification failure
 *   -EFBIG     the body grew past the expected size (stopped at once)
 *   -ENOSPC, -EIO  local disk errors
 * reason is a human line ("HTTP 404 from files.example", "certificate
 * verify failed"), borrowed for the call. */
struct fetch_req {
	const char *url;                  /* http:// or https://; copied */
	struct cache_writer *w;           /* borrowed; the job feeds it, never commits */
	uint64_t offset;                  /* bytes already in w: > 0 asks for a Range */
	const char *etag;                 /* validators of the earlier attempt, or NULL */
	const char *last_modified;
	/* Response headers are in: the caller may persist the validators for a
	 * later resume. restarted = the server ignored Range (w was reset). */
	void (*on_headers)(void *arg, const char *etag, const char *last_modified,
			   uint64_t total, bool restarted);
	void (*on_progress)(void *arg, uint64_t have, uint64_t total); /* optional */
	void (*done)(void *arg, int rc, int http_status, const char *reason,
		     unsigned retry_after_s);
	void *arg;
};

int fetch_new(struct fetch **out, const struct fetch_cfg *cfg, struct err_info *e) OTAGW_MUST_CHECK;
/* Cancels every job (their done() is not called). NULL: no-op. */
void fetch_free(struct fetch *f);
/* In CLIENT_CONNECTION_ERROR of any lws client: why holds lws' text; when
 * the server's certificate was refused it is replaced by OpenSSL's reason
 * ("unable to get local issuer certificate (X509 error 20)"). True then. */
bool fetch_tls_cert_refused(struct lws *wsi, char *why, size_t cap);
/* f's off-loop resolver, for other clients of the same loop (borrowed for
 * as long as f lives). */
struct resolve *fetch_resolver(struct fetch *f);
/* Starts one download; r's strings are copied. done() is called exactly
 * once, later, from the loop (never from inside fetch_start). On 0, *out
 * (optional) identifies the job until done() or fetch_cancel(). */
int fetch_start(struct fetch *f, const struct fetch_req *r, struct fetch_job **out,
		struct err_info *e) OTAGW_MUST_CHECK;
/* Stops a job; its done() is not called. The writer stays the caller's. */
void fetch_cancel(struct fetch_job *j);

#endif
