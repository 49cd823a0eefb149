/* SPDX-License-Identifier: MIT */
/* resolve.h - host name resolution off the loop. Debian's lws 4.1 has no
 * async DNS: lws_client_connect_via_info() would run getaddrinfo() inside
 * the loop and stall every device while a lookup hangs. Here one worker
 * thread runs getaddrinfo() for a bounded queue of requests and hands the
 * answers back through an eventfd adopted into the lws context, so every
 * callback runs on the loop. An IP literal needs no thread: it is answered
 * from a zero-delay lws_sul, still never from inside resolve_start().
 * The answer is one address as text, IPv4 preferred over IPv6.
 * Must not: call lws from the worker thread (it only touches the queue,
 * under its mutex, and writes the eventfd), block the loop, or let a lookup
 * that hangs inside getaddrinfo() hold up resolve_free() for more than
 * about a second (the thread is then detached and cleans up after itself).
 * Not thread-safe: every call comes from the loop thread. */
#ifndef OTAGW_RESOLVE_H
#define OTAGW_RESOLVE_H

#include <libwebsockets.h>

#include "err.h"

#define RESOLVE_ADDR_MAX 64          /* INET6_ADDRSTRLEN plus a %scope */
#define RESOLVE_HOST_MAX 254         /* 253 bytes of DNS name + NUL */
#define RESOLVE_QUEUE_MAX 64         /* requests waiting for the thread */
#define RESOLVE_TIMEOUT_MS 30000     /* default: then -EAGAIN, whatever the thread does */

struct resolve;
struct resolve_req;                  /* a handle: one request in flight */

/* Called once per request, on the loop, unless it was cancelled.
 *   rc 0        addr_text is "192.0.2.1" or "2001:db8::1" (borrowed for the call)
 *   -ENOENT     no such name (EAI_NONAME, EAI_NODATA)
 *   -EAGAIN     temporary failure or timeout (EAI_AGAIN, EAI_FAIL, no answer in time)
 *   -ENOMEM, -EIO  local trouble
 * addr_text is NULL unless rc is 0. The handle is gone once this runs. */
typedef void (*resolve_cb)(void *arg, int rc, const char *addr_text);

/* Creates the vhost, the eventfd and the thread. On 0, *out is the
 * caller's until resolve_free(). ctx is borrowed and must outlive it. */
int resolve_new(struct resolve **out, struct lws_context *ctx, struct err_info *e) OTAGW_MUST_CHECK;
/* Drops every request (no callbacks), stops the thread: joins it within
 * ~1 s or detaches it when getaddrinfo() hangs. Call before the context is
 * destroyed, never from inside a resolve callback. NULL: no-op. */
void resolve_free(struct resolve *r);
/* Loop-side deadline per request in ms (default RESOLVE_TIMEOUT_MS); applies
 * to requests started afterwards. */
void resolve_set_timeout(struct resolve *r, unsigned timeout_ms);

/* Looks host up (1..253 chars of [A-Za-z0-9.-_], or an IPv4/IPv6 literal
 * without brackets; copied). cb runs later, on the loop. On 0, *out
 * (optional) identifies the request until cb runs or resolve_cancel().
 * -EINVAL for a malformed host, -ENOBUFS when RESOLVE_QUEUE_MAX requests
 * already wait, -ENOMEM. */
int resolve_start(struct resolve *r, const char *host, resolve_cb cb, void *arg,
		  struct resolve_req **out) OTAGW_MUST_CHECK;
/* Forgets the request; its cb is never called. Not from inside its own cb
 * (the handle is already gone then). NULL: no-op. */
void resolve_cancel(struct resolve_req *q);

#endif
