/* SPDX-License-Identifier: MIT */
/* fetch.c - resumable HTTP(S) downloads with the lws 4.1 client; see fetch.h.
 * One job is a chain of attempts: parse the URL, resolve the host off the
 * loop (resolve.h), connect to the address with Host/SNI set to the name,
 * then follow a redirect or a Range restart with a fresh attempt. lws'
 * own redirect handling is off (it would resolve inside the loop).
 * Lifetime: a job is freed only from its zero-delay sul_done (after done(),
 * or silently once cancelled), never from inside an lws callback, so the
 * callback code may look at it after calling the owner back. A wsi and its
 * job are joined through the wsi's user pointer; whoever lets go first
 * clears it (job_detach), so a late lws callback sees NULL and closes.
 * Must not: block the loop (no getaddrinfo here, lws only gets literals),
 * allow unverified TLS, commit the writer, retry on its own, log URLs (they
 * may carry tokens in the query: only host names appear in text). */
#define LOG_MOD "fetch"
#include "fetch.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "otagw_limits.h"
#include "resolve.h"
#include "util.h"

#ifndef OTAGW_VERSION
#define OTAGW_VERSION "dev"
#endif

_Static_assert(FETCH_URL_HOST_MAX == RESOLVE_HOST_MAX, "one host size");

#define FETCH_PROTOCOL "otagw-fetch"
#define FETCH_READ_MAX 16384          /* bytes per lws_http_client_read() */
#define FETCH_VALIDATOR_MAX 256       /* ETag, Last-Modified, with NUL */
#define FETCH_REASON_MAX 256
#define FETCH_RETRY_AFTER_MAX 86400   /* s */
#define FETCH_TIMEOUT_DEFAULT 30      /* s, when cfg->timeout_s is 0 */

/* Ordered: >= JOB_FINISHED means no more work. */
enum job_state {
	JOB_RESOLVING,
	JOB_CONNECTING,
	JOB_BODY,                     /* 2xx headers accepted */
	JOB_FINISHED,                 /* result stored, done() due on sul_done */
	JOB_CANCELLED,                /* freed on sul_done, done() never called */
	JOB_CALLING,                  /* inside done() */
};

struct fetch {
	struct lws_context *ctx;
	struct lws_vhost *vh;         /* plain http:// */
	struct lws_vhost *vh_tls;     /* https://, made at the first one (fetch_tls_vhost) */
	char *ca_file;                /* NULL: the system store */
	struct resolve *res;
	unsigned max_redirects;
	unsigned timeout_s;
	lws_dll2_owner_t jobs;
};

struct fetch_job {
	struct fetch *f;
	lws_dll2_t list;              /* f->jobs */
	struct fetch_req r;           /* callbacks, w, arg; strings are ours: */
	char *url;                    /* the current one (after redirects) */
	char *etag, *last_modified;   /* validators to resume with, or NULL */
	struct fetch_url u;
	struct resolve_req *rq;
	struct lws *wsi;
	lws_sorted_usec_list_t sul_timeout;
	lws_sorted_usec_list_t sul_done;
	int64_t alive_ms;             /* last sign of progress, monotonic */
	enum job_state state;
	unsigned redirects;
	bool restarted;               /* w was reset during this job */
	uint64_t offset;              /* Range start of this attempt, 0 = no Range */
	uint64_t body_len;            /* Content-Length, when has_len */
	bool has_len;
	uint64_t got;                 /* body bytes in this attempt */
	uint64_t total;               /* whole image, 0 = unknown */
	int rc, status;
	unsigned retry_after;
	char reason[FETCH_REASON_MAX];
};

static int fetch_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len);

/* const: a vhost that lws tears down later must never point into freed memory */
static const struct lws_protocols fetch_protocols[] = {
	{ FETCH_PROTOCOL, fetch_lws_cb, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

static void attempt_begin(struct fetch_job *j);

/* ---- URLs ---------------------------------------------------------------- */

static bool url_chars_ok(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || c == '#' || c == '\\')
			return false;
	}
	return true;
}

static bool host_chars_ok(const char *h, size_t n, bool v6)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];
		bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
			  c == ':' || c == '.';

		if (!v6)
			ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
		if (!ok)
			return false;
	}
	return n > 0;
}

/* Host and port out of the authority [a, end). NULL or why it is bad. */
static const char *url_authority(const char *a, const char *end, struct fetch_url *u)
{
	const char *h = a, *he, *port = NULL;
	bool v6 = *a == '[';
	uint64_t v;

	if (memchr(a, '@', (size_t)(end - a)))
		return "user info in URLs is not allowed";
	if (v6) {
		h = a + 1;
		he = memchr(h, ']', (size_t)(end - h));
		if (!he || (he + 1 < end && he[1] != ':'))
			return "bad IPv6 literal";
		port = he + 1 < end ? he + 2 : NULL;
	} else {
		he = memchr(a, ':', (size_t)(end - a));
		port = he ? he + 1 : NULL;
		he = he ? he : end;
	}
	if (!host_chars_ok(h, (size_t)(he - h), v6) || (size_t)(he - h) >= sizeof(u->host))
		return "bad host name";
	memcpy(u->host, h, (size_t)(he - h));
	u->host[he - h] = '\0';
	if (v6 && !strchr(u->host, ':'))
		return "bad IPv6 literal";
	u->port = u->tls ? 443 : 80;
	if (port) {
		if (parse_u64(port, (size_t)(end - port), 65535, &v) || !v)
			return "bad port";
		u->port = (unsigned)v;
	}
	return NULL;
}

static const char *url_host_header(struct fetch_url *u)
{
	bool v6 = strchr(u->host, ':') != NULL;
	char port[8] = "";
	int n;

	if (u->port != (u->tls ? 443u : 80u))
		snprintf(port, sizeof(port), ":%u", u->port);
	n = snprintf(u->host_hdr, sizeof(u->host_hdr), "%s%s%s%s", v6 ? "[" : "", u->host,
		     v6 ? "]" : "", port);
	return n < 0 || (size_t)n >= sizeof(u->host_hdr) ? "host name too long" : NULL;
}

/* Splits an absolute http(s) URL. NULL, or why it is refused. */
const char *fetch_url_parse(const char *url, struct fetch_url *u)
{
	size_t n = strnlen(url, OTAGW_URL_MAX);
	const char *a, *end, *why;

	memset(u, 0, sizeof(*u));
	if (n >= OTAGW_URL_MAX)
		return "URL too long";
	if (!url_chars_ok(url, n))
		return "URL has a space, control character, fragment or non-ASCII byte";
	if (!strncasecmp(url, "https://", 8)) {
		u->tls = true;
		a = url + 8;
	} else if (!strncasecmp(url, "http://", 7)) {
		a = url + 7;
	} else {
		return "only http:// and https:// URLs are supported";
	}
	end = a + strcspn(a, "/?");
	why = url_authority(a, end, u);
	if (why)
		return why;
	if (strlen(end) + 1 > FETCH_PATH_MAX)
		return "URL path too long";
	snprintf(u->path, sizeof(u->path), "%s%s", *end == '/' ? "" : "/", end);
	return url_host_header(u);
}

/* RFC 3986 5.2.4 on the absolute path in[0..n), into out (n + 2 bytes). */
static void path_normalize(const char *in, size_t n, char *out)
{
	size_t o = 0, i = 0;

	while (i < n) {
		size_t s = i + 1, e = s, len;

		while (e < n && in[e] != '/')
			e++;
		len = e - s;
		if (len == 2 && in[s] == '.' && in[s + 1] == '.')
			while (o > 0 && out[--o] != '/')
				;
		if ((len == 1 && in[s] == '.') || (len == 2 && in[s] == '.' && in[s + 1] == '.')) {
			if (e >= n)
				out[o++] = '/';
		} else {
			out[o++] = '/';
			memcpy(out + o, in + s, len);
			o += len;
		}
		i = e;
	}
	if (!o)
		out[o++] = '/';
	out[o] = '\0';
}

/* The target of Location ref against base (an absolute URL that passed
 * url_parse), malloc'ed; NULL when out of memory or too long. The result
 * still goes through fetch_url_parse(). */
static char *url_resolve(const char *base, const char *ref)
{
	const char *auth = strstr(base, "://") + 3;
	const char *bpath = auth + strcspn(auth, "/?");
	size_t bpl = strcspn(bpath, "?"), rl = strlen(ref), cap = strlen(base) + rl + 4, k, n;
	const char *p = bpl ? bpath : "/", *bq = bpath + bpl;
	size_t pl = bpl ? bpl : 1;
	char *merged, *out;

	k = strcspn(ref, ":/?");
	if (ref[k] == ':')
		return strdup(ref);                      /* absolute */
	if (rl >= OTAGW_URL_MAX)
		return NULL;
	merged = malloc(cap);
	out = merged ? malloc(cap + 1) : NULL;
	if (!out) {
		free(merged);
		return NULL;
	}
	if (ref[0] == '/' && ref[1] == '/') {            /* scheme-relative */
		snprintf(out, cap, "%.*s%s", (int)(auth - 2 - base), base, ref);
		free(merged);
		return out;
	}
	if (ref[0] == '/')
		snprintf(merged, cap, "%s", ref);
	else if (!ref[0])
		snprintf(merged, cap, "%.*s%s", (int)pl, p, bq);
	else if (ref[0] == '?')
		snprintf(merged, cap, "%.*s%s", (int)pl, p, ref);
	else
		snprintf(merged, cap, "%.*s%s",
			 (int)((const char *)memrchr(p, '/', pl) - p + 1), p, ref);
	k = strcspn(merged, "?");
	n = (size_t)(bpath - base);
	memcpy(out, base, n);
	path_normalize(merged, k, out + n);
	n += strlen(out + n);
	snprintf(out + n, cap + 1 - n, "%s", merged + k);
	free(merged);
	return out;
}

/* ---- job lifecycle --------------------------------------------------------- */

/* Lets go of the wsi: its later callbacks see no job. With kill, lws closes
 * it on its next turn; without, it is closing already. */
static void job_detach(struct fetch_job *j, bool kill)
{
	if (!j->wsi)
		return;
	lws_set_wsi_user(j->wsi, NULL);
	if (kill)
		lws_set_timeout(j->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	j->wsi = NULL;
}

/* Stops every activity of j (resolve, timer, connection); done() stays due. */
static void job_quiesce(struct fetch_job *j)
{
	lws_sul_cancel(&j->sul_timeout);
	resolve_cancel(j->rq);
	j->rq = NULL;
	job_detach(j, true);
}

static void job_free(struct fetch_job *j)
{
	job_quiesce(j);
	lws_sul_cancel(&j->sul_done);
	lws_dll2_remove(&j->list);
	free(j->url);
	free(j->etag);
	free(j->last_modified);
	free(j);
}

/* Runs on the loop, never inside an lws callback of the job's wsi. */
static void job_done_cb(lws_sorted_usec_list_t *sul)
{
	struct fetch_job *j = lws_container_of(sul, struct fetch_job, sul_done);

	if (j->state == JOB_FINISHED) {
		/* out of f->jobs first: done() may even call fetch_free() */
		lws_dll2_remove(&j->list);
		j->state = JOB_CALLING;
		LOGD("%s: %s (%d)", j->u.host[0] ? j->u.host : "-", j->reason, j->rc);
		j->r.done(j->r.arg, j->rc, j->status, j->reason, j->retry_after);
	}
	job_free(j);
}

/* Records the outcome (the first one wins) and schedules done(). */
static void job_finish(struct fetch_job *j, int rc, unsigned retry_after, const char *fmt, ...)
	OTAGW_PRINTF(4, 5);
static void job_finish(struct fetch_job *j, int rc, unsigned retry_after, const char *fmt, ...)
{
	va_list ap;

	if (j->state >= JOB_FINISHED)
		return;
	j->state = JOB_FINISHED;
	j->rc = rc;
	j->retry_after = retry_after;
	va_start(ap, fmt);
	vsnprintf(j->reason, sizeof(j->reason), fmt, ap);
	va_end(ap);
	job_quiesce(j);
	lws_sul_schedule(j->f->ctx, 0, &j->sul_done, job_done_cb, 1);
}

/* Progress seen: the inactivity timer starts over. */
static void job_alive(struct fetch_job *j)
{
	j->alive_ms = util_mono_ms();
}

static void job_timeout_cb(lws_sorted_usec_list_t *sul)
{
	struct fetch_job *j = lws_container_of(sul, struct fetch_job, sul_timeout);
	int64_t limit = (int64_t)j->f->timeout_s * 1000, idle = util_mono_ms() - j->alive_ms;

	if (idle < limit) {
		lws_sul_schedule(j->f->ctx, 0, &j->sul_timeout, job_timeout_cb,
				 (lws_usec_t)(limit - idle) * LWS_US_PER_MS);
		return;
	}
	job_finish(j, -EAGAIN, 0, "timeout: nothing from %s for %u s", j->u.host,
		   j->f->timeout_s);
}

/* ---- connecting ------------------------------------------------------------ */

static struct lws_vhost *fetch_tls_vhost(struct fetch *f);

static void job_connect(struct fetch_job *j, const char *addr)
{
	struct lws_client_connect_info i;

	memset(&i, 0, sizeof(i));
	i.context = j->f->ctx;
	i.vhost = j->u.tls ? fetch_tls_vhost(j->f) : j->f->vh;
	if (!i.vhost) {
		job_finish(j, -EAGAIN, 0, "cannot set up TLS for %s", j->u.host);
		return;
	}
	i.address = addr;                    /* a literal: lws' getaddrinfo() won't block */
	i.port = (int)j->u.port;
	i.path = j->u.path;
	i.host = j->u.host_hdr;              /* Host:, and with TLS the SNI and cert name */
	i.method = "GET";
	i.protocol = FETCH_PROTOCOL;
	i.local_protocol_name = FETCH_PROTOCOL;
	i.alpn = "http/1.1";
	i.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT | (j->u.tls ? LCCSCF_USE_SSL : 0);
	i.userdata = j;
	i.pwsi = &j->wsi;
	j->state = JOB_CONNECTING;
	if (!lws_client_connect_via_info(&i)) {
		j->wsi = NULL;                   /* lws freed it, if it made one */
		job_finish(j, -EAGAIN, 0, "cannot connect to %s (%s)", j->u.host, addr);
	}
}

static void job_resolved(void *arg, int rc, const char *addr)
{
	struct fetch_job *j = arg;

	j->rq = NULL;
	if (rc) {
		job_finish(j, -EAGAIN, 0, "cannot resolve %s: %s", j->u.host,
			   rc == -ENOENT ? "no such host" : otagw_strerror(rc));
		return;
	}
	LOGD("%s is %s", j->u.host, addr);
	job_connect(j, addr);
}

/* A new attempt at j->u from j->offset: resolve, then connect. */
static void attempt_begin(struct fetch_job *j)
{
	int rc;

	j->state = JOB_RESOLVING;
	j->status = 0;
	j->got = 0;
	j->has_len = false;
	job_alive(j);
	lws_sul_schedule(j->f->ctx, 0, &j->sul_timeout, job_timeout_cb,
			 (lws_usec_t)j->f->timeout_s * LWS_US_PER_SEC);
	rc = resolve_start(j->f->res, j->u.host, job_resolved, j, &j->rq);
	if (rc) {
		j->rq = NULL;
		job_finish(j, rc == -EINVAL ? -EPERM : -EAGAIN, 0, "cannot resolve %s: %s",
			   j->u.host, otagw_strerror(rc));
	}
}

/* Starts over from byte 0 without Range (a server that answered our Range
 * badly): the writer is emptied first. */
static void job_restart(struct fetch_job *j, const char *why)
{
	int rc;

	if (j->restarted && !j->offset) {
		job_finish(j, -EPERM, 0, "%s from %s, even without Range", why, j->u.host);
		return;
	}
	LOGD("%s from %s: starting over without Range", why, j->u.host);
	rc = cache_writer_reset(j->r.w);
	if (rc) {
		job_finish(j, rc, 0, "cannot empty the partial image: %s", otagw_strerror(rc));
		return;
	}
	j->restarted = true;
	j->offset = 0;
	job_detach(j, false);                /* our callback returns -1: lws closes it */
	attempt_begin(j);
}

/* ---- the response --------------------------------------------------------- */

/* Copies header tok into buf[cap]; its length, 0 when absent or too long. */
static size_t hdr_get(struct lws *wsi, enum lws_token_indexes tok, char *buf, size_t cap)
{
	int n = lws_hdr_copy(wsi, buf, (int)cap, tok);

	if (n <= 0 || (size_t)n >= cap) {
		buf[0] = '\0';
		return 0;
	}
	return (size_t)n;
}

static bool all_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

/* "bytes <first>-<last>/<total>", total "*" giving 0. 0 or -EINVAL. */
static int parse_content_range(const char *s, size_t n, uint64_t *first, uint64_t *total)
{
	const char *p = s + 6, *end = s + n, *dash, *slash;
	uint64_t last;

	*total = 0;
	if (n < 6 || strncasecmp(s, "bytes ", 6))
		return -EINVAL;
	dash = memchr(p, '-', (size_t)(end - p));
	slash = memchr(p, '/', (size_t)(end - p));
	if (!dash || !slash || dash > slash ||
	    parse_u64(p, (size_t)(dash - p), UINT64_MAX, first) ||
	    parse_u64(dash + 1, (size_t)(slash - dash - 1), UINT64_MAX, &last) || last < *first)
		return -EINVAL;
	if (end - slash == 2 && slash[1] == '*')
		return 0;
	if (parse_u64(slash + 1, (size_t)(end - slash - 1), UINT64_MAX, total) || *total <= last)
		return -EINVAL;
	return 0;
}

/* Retry-After: delta-seconds or an IMF-fixdate; 0 when absent or odd. */
static unsigned parse_retry_after(const char *s, size_t n)
{
	uint64_t v;
	struct tm tm;
	const char *e;
	time_t t, now = time(NULL);

	if (all_digits(s, n)) {
		if (parse_u64(s, n, UINT64_MAX, &v) || v > FETCH_RETRY_AFTER_MAX)
			return FETCH_RETRY_AFTER_MAX;
		return (unsigned)v;
	}
	memset(&tm, 0, sizeof(tm));
	e = n ? strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm) : NULL;
	if (!e || *e)
		return 0;
	t = timegm(&tm);
	if (t <= now)
		return 0;
	return t - now > FETCH_RETRY_AFTER_MAX ? FETCH_RETRY_AFTER_MAX : (unsigned)(t - now);
}

static int job_redirect(struct fetch_job *j, struct lws *wsi)
{
	struct fetch_url nu;
	char loc[OTAGW_URL_MAX];
	const char *why;
	char *next;

	if (!hdr_get(wsi, WSI_TOKEN_HTTP_LOCATION, loc, sizeof(loc))) {
		job_finish(j, -EPERM, 0, "HTTP %d from %s without a usable Location", j->status,
			   j->u.host);
		return -1;
	}
	if (++j->redirects > j->f->max_redirects) {
		job_finish(j, -EPERM, 0, "too many redirects (more than %u) from %s",
			   j->f->max_redirects, j->u.host);
		return -1;
	}
	next = url_resolve(j->url, loc);
	if (!next) {
		job_finish(j, -EPERM, 0, "redirect from %s to an unusable Location", j->u.host);
		return -1;
	}
	why = fetch_url_parse(next, &nu);
	if (!why && j->u.tls && !nu.tls)
		why = "https to http refused";
	if (why) {
		job_finish(j, -EPERM, 0, "bad redirect from %s: %s", j->u.host, why);
		free(next);
		return -1;
	}
	LOGD("HTTP %d from %s: redirected to %s", j->status, j->u.host, nu.host);
	free(j->url);
	j->url = next;
	j->u = nu;
	job_detach(j, false);                /* we return -1: lws closes it */
	attempt_begin(j);
	return -1;
}

/* 416 to our Range: complete already when the server says the image is
 * exactly offset bytes long, else start over. */
static int job_unsatisfiable(struct fetch_job *j, struct lws *wsi)
{
	char cr[96];
	size_t n = hdr_get(wsi, WSI_TOKEN_HTTP_CONTENT_RANGE, cr, sizeof(cr));
	uint64_t size;

	if (j->offset && n > 8 && !strncasecmp(cr, "bytes */", 8) &&
	    !parse_u64(cr + 8, n - 8, UINT64_MAX, &size) && size == j->offset) {
		j->total = size;
		j->r.on_headers(j->r.arg, j->etag, j->last_modified, size, j->restarted);
		job_finish(j, 0, 0, "%s: the image was complete already", j->u.host);
		return -1;
	}
	if (!j->offset) {
		job_finish(j, -EPERM, 0, "HTTP 416 from %s", j->u.host);
		return -1;
	}
	job_restart(j, "HTTP 416");
	return -1;
}

/* Checks a 206 against our Range; the image's total size, or -1 after a
 * restart was started. */
static int64_t job_partial(struct fetch_job *j, struct lws *wsi)
{
	char cr[96];
	size_t n = hdr_get(wsi, WSI_TOKEN_HTTP_CONTENT_RANGE, cr, sizeof(cr));
	uint64_t first, total;

	if (!n || parse_content_range(cr, n, &first, &total) || first != j->offset) {
		job_restart(j, "HTTP 206 not starting at our offset");
		return -1;
	}
	if (!total && j->has_len)
		total = j->offset + j->body_len;
	return (int64_t)total;
}

/* A 2xx: restart the writer if the server ignored our Range, tell the owner. */
static int job_accept(struct fetch_job *j, struct lws *wsi)
{
	char etag[FETCH_VALIDATOR_MAX], lm[FETCH_VALIDATOR_MAX], cl[24];
	size_t n = hdr_get(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, cl, sizeof(cl));
	int64_t total;
	int rc;

	j->has_len = n && !parse_u64(cl, n, UINT64_MAX, &j->body_len);
	if (j->status == 206) {
		total = job_partial(j, wsi);
		if (total < 0)
			return -1;
	} else {
		if (j->offset) {
			rc = cache_writer_reset(j->r.w);
			if (rc) {
				job_finish(j, rc, 0, "cannot empty the partial image: %s",
					   otagw_strerror(rc));
				return -1;
			}
			LOGD("%s ignored our Range: starting over", j->u.host);
			j->offset = 0;
			j->restarted = true;
		}
		total = j->has_len ? (int64_t)j->body_len : 0;
	}
	j->total = (uint64_t)total;
	j->state = JOB_BODY;
	hdr_get(wsi, WSI_TOKEN_HTTP_ETAG, etag, sizeof(etag));
	hdr_get(wsi, WSI_TOKEN_HTTP_LAST_MODIFIED, lm, sizeof(lm));
	j->r.on_headers(j->r.arg, etag[0] ? etag : NULL, lm[0] ? lm : NULL, j->total, j->restarted);
	return j->state == JOB_BODY ? 0 : -1;      /* the owner may have cancelled */
}

static int job_established(struct fetch_job *j, struct lws *wsi)
{
	char ra[64];
	int s = (int)lws_http_client_http_response(wsi);

	j->status = s;
	job_alive(j);
	if (s == 301 || s == 302 || s == 303 || s == 307 || s == 308)
		return job_redirect(j, wsi);
	if (s >= 200 && s < 300)
		return job_accept(j, wsi);
	if (s == 416)
		return job_unsatisfiable(j, wsi);
	if (s == 408 || s == 429 || s >= 500)
		job_finish(j, -EAGAIN, parse_retry_after(ra, hdr_get(wsi, WSI_TOKEN_HTTP_RETRY_AFTER,
								       ra, sizeof(ra))),
			   "HTTP %d from %s", s, j->u.host);
	else
		job_finish(j, -EPERM, 0, "HTTP %d from %s", s, j->u.host);
	return -1;
}

static int job_read(struct lws *wsi)
{
	char buf[LWS_PRE + FETCH_READ_MAX];
	char *p = buf + LWS_PRE;
	int len = FETCH_READ_MAX;

	return lws_http_client_read(wsi, &p, &len) < 0 ? -1 : 0;
}

static int job_body(struct fetch_job *j, const void *in, size_t len)
{
	int rc;

	if (j->state != JOB_BODY)
		return -1;
	rc = cache_writer_feed(j->r.w, in, len);
	if (rc == -EFBIG) {
		job_finish(j, rc, 0, "the image from %s is larger than expected", j->u.host);
		return -1;
	}
	if (rc) {
		job_finish(j, rc, 0, "cannot write the image: %s", otagw_strerror(rc));
		return -1;
	}
	j->got += len;
	job_alive(j);
	if (j->r.on_progress)
		j->r.on_progress(j->r.arg, cache_writer_size(j->r.w), j->total);
	return j->state == JOB_BODY ? 0 : -1;
}

static int job_completed(struct fetch_job *j)
{
	if (j->state != JOB_BODY)
		return -1;
	if (j->has_len && j->got < j->body_len)
		job_finish(j, -EAGAIN, 0, "truncated: %" PRIu64 " of %" PRIu64 " bytes from %s",
			   j->got, j->body_len, j->u.host);
	else
		job_finish(j, 0, 0, "HTTP %d from %s: %" PRIu64 " bytes", j->status, j->u.host,
			   j->got);
	return -1;
}

/* The connection is gone before the job got an answer. */
static void job_closed(struct fetch_job *j, struct lws *wsi)
{
	if (j->wsi != wsi)
		return;
	job_detach(j, false);
	if (j->state == JOB_BODY)
		job_finish(j, -EAGAIN, 0, "connection to %s closed after %" PRIu64 " bytes%s",
			   j->u.host, j->got, j->has_len ? " (truncated)" : "");
	else
		job_finish(j, -EAGAIN, 0, "connection to %s closed", j->u.host);
}

/* ---- connection errors ------------------------------------------------------- */

/* Copies lws' reason text (not always terminated, not always printable). */
static void reason_copy(char *out, size_t cap, const void *in, size_t len)
{
	const char *s = in;
	size_t i, n = 0;

	for (i = 0; s && i < len && s[i] && n + 1 < cap; i++)
		if (s[i] != '\n' && s[i] != '\r')
			out[n++] = (char)((unsigned char)s[i] < 0x20 ? '?' : s[i]);
	out[n] = '\0';
	if (!n)
		util_strlcpy(out, "unknown error", cap);
}

/* lws 4.1 (OpenSSL) reports a refused certificate only as "connect SSL err 1:
 * error:00000001:lib(0)::reason(1)": it prints SSL_get_error()'s value, not
 * the reason. So ask OpenSSL for the wsi's verify result (the SSL still
 * exists during CLIENT_CONNECTION_ERROR). lws has loaded libssl already;
 * looking the two functions up at run time keeps -lssl out of our link and
 * lets an mbedTLS build of lws fall back to the text. Writes the reason to
 * why and returns true when the certificate was refused. */
bool fetch_tls_cert_refused(struct lws *wsi, char *why, size_t cap)
{
#if defined(LWS_WITH_TLS) && !defined(LWS_WITH_MBEDTLS)
	typedef long (*verify_result_fn)(const SSL *);
	typedef const char *(*verify_text_fn)(long);
	verify_result_fn result = (verify_result_fn)dlsym(RTLD_DEFAULT, "SSL_get_verify_result");
	verify_text_fn text = (verify_text_fn)dlsym(RTLD_DEFAULT, "X509_verify_cert_error_string");
	SSL *ssl = lws_get_ssl(wsi);
	long v = result && ssl ? result(ssl) : X509_V_OK;

	if (v != X509_V_OK) {
		snprintf(why, cap, "%s (X509 error %ld)", text ? text(v) : "verify failed", v);
		return true;
	}
#endif
	return strcasestr(why, "verif") || strcasestr(why, "certificate") ||
	       strcasestr(why, "cert didn't");
}

static void job_conn_error(struct fetch_job *j, struct lws *wsi, const void *in, size_t len)
{
	char why[160];

	if (j->wsi != wsi)
		return;
	job_detach(j, false);
	reason_copy(why, sizeof(why), in, len);
	if (j->u.tls && fetch_tls_cert_refused(wsi, why, sizeof(why)))
		job_finish(j, -EPERM, 0, "certificate of %s not accepted: %s", j->u.host, why);
	else
		job_finish(j, -EAGAIN, 0, "cannot connect to %s: %s", j->u.host, why);
}

/* Adds Range and If-Range (a strong ETag, else Last-Modified) on a resume. */
static int job_request_headers(struct fetch_job *j, struct lws *wsi, void *in, size_t len)
{
	unsigned char **p = in, *end = *p + len;
	const char *ua = "otagw/" OTAGW_VERSION, *v;
	char range[40];
	int n;

	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_USER_AGENT, (const unsigned char *)ua,
					 (int)strlen(ua), p, end))
		return -1;
	if (!j->offset)
		return 0;
	n = snprintf(range, sizeof(range), "bytes=%" PRIu64 "-", j->offset);
	if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_RANGE, (unsigned char *)range, n, p,
					 end))
		return -1;
	v = j->etag && strncmp(j->etag, "W/", 2) ? j->etag : j->last_modified;
	if (v && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_IF_RANGE,
					      (const unsigned char *)v, (int)strlen(v), p, end))
		return -1;
	return 0;
}

/* Every reason with our wsi; user is the job, or NULL once it let go. */
static int fetch_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len)
{
	struct fetch_job *j = user;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		return j ? job_request_headers(j, wsi, in, len) : -1;
	case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		return j ? job_established(j, wsi) : -1;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
		return j ? job_read(wsi) : -1;
	case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
		return j ? job_body(j, in, len) : -1;
	case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
		return j ? job_completed(j) : -1;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (j)
			job_conn_error(j, wsi, in, len);
		return 0;
	case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
	case LWS_CALLBACK_WSI_DESTROY:
		if (j)
			job_closed(j, wsi);
		return 0;
	default:
		return 0;
	}
}

/* ---- API ------------------------------------------------------------------ */

static struct lws_vhost *fetch_new_vhost(struct fetch *f, bool tls)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.vhost_name = tls ? FETCH_PROTOCOL "-tls" : FETCH_PROTOCOL;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = fetch_protocols;
	/* lws 4.1 loads OpenSSL's default verify paths unless told not to: with
	 * a ca_file, trust only that file. */
	if (tls)
		info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
			       (f->ca_file ? LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS : 0);
	info.client_ssl_ca_filepath = tls ? f->ca_file : NULL;
	return lws_create_vhost(f->ctx, &info);
}

/* The TLS client vhost, made when the first https:// download starts: a
 * gateway that only fetches over http:// (or nothing at all) never loads
 * OpenSSL's tables and the CA store, about 4 MiB of resident memory. */
static struct lws_vhost *fetch_tls_vhost(struct fetch *f)
{
	if (!f->vh_tls) {
		f->vh_tls = fetch_new_vhost(f, true);
		if (!f->vh_tls)
			LOGE("cannot create the TLS download vhost%s",
			     f->ca_file ? " (check [cache] ca_file)" : "");
	}
	return f->vh_tls;
}

static int fetch_vhost(struct fetch *f, const struct fetch_cfg *cfg, struct err_info *e)
{
	bool ca = cfg->ca_file && cfg->ca_file[0];

	if (ca && access(cfg->ca_file, R_OK))
		return err_set(e, -errno, "cannot read ca_file %s: %s", cfg->ca_file,
			       strerror(errno));
	if (ca && !(f->ca_file = strdup(cfg->ca_file)))
		return err_set(e, -ENOMEM, "out of memory");
	f->vh = fetch_new_vhost(f, false);
	return f->vh ? 0 : err_set(e, -ENOMEM, "cannot create the download vhost");
}

int fetch_new(struct fetch **out, const struct fetch_cfg *cfg, struct err_info *e)
{
	struct fetch *f;
	int rc;

	if (!cfg || !cfg->ctx)
		return err_set(e, -EINVAL, "fetch needs an lws context");
	f = calloc(1, sizeof(*f));
	if (!f)
		return err_set(e, -ENOMEM, "out of memory");
	f->ctx = cfg->ctx;
	f->max_redirects = cfg->max_redirects;
	f->timeout_s = cfg->timeout_s ? cfg->timeout_s : FETCH_TIMEOUT_DEFAULT;
	rc = fetch_vhost(f, cfg, e);
	if (!rc)
		rc = resolve_new(&f->res, f->ctx, e);
	if (rc) {
		fetch_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

struct resolve *fetch_resolver(struct fetch *f)
{
	return f->res;
}

/* lws_dll2_foreach_safe(): job_free() unlinks the element it is given. */
static int job_free_cb(struct lws_dll2 *d, void *user)
{
	job_free(lws_container_of(d, struct fetch_job, list));
	return 0;
}

void fetch_free(struct fetch *f)
{
	if (!f)
		return;
	lws_dll2_foreach_safe(&f->jobs, NULL, job_free_cb);
	resolve_free(f->res);
	if (f->vh)
		lws_vhost_destroy(f->vh);
	if (f->vh_tls)
		lws_vhost_destroy(f->vh_tls);
	free(f->ca_file);
	free(f);
}

/* A validator we may send back in If-Range: printable ASCII, bounded. */
static bool validator_ok(const char *v)
{
	size_t n = v ? strnlen(v, FETCH_VALIDATOR_MAX) : 0, i;

	if (!v)
		return true;
	if (n >= FETCH_VALIDATOR_MAX)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] >= 0x7f)
			return false;
	return true;
}

static int req_check(const struct fetch *f, const struct fetch_req *r, struct err_info *e)
{
	if (!f || !r || !r->url || !r->w || !r->done || !r->on_headers)
		return err_set(e, -EINVAL, "fetch needs url, w, on_headers and done");
	if (!validator_ok(r->etag) || !validator_ok(r->last_modified))
		return err_set(e, -EINVAL, "ETag or Last-Modified is not a header value");
	if (cache_writer_size(r->w) != r->offset)
		return err_set(e, -EINVAL, "offset %" PRIu64 " but the writer holds %" PRIu64,
			       r->offset, cache_writer_size(r->w));
	return 0;
}

static char *dup_or_null(const char *s, bool *oom)
{
	char *d = s && s[0] ? strdup(s) : NULL;

	if (s && s[0] && !d)
		*oom = true;
	return d;
}

int fetch_start(struct fetch *f, const struct fetch_req *r, struct fetch_job **out,
		struct err_info *e)
{
	struct fetch_job *j;
	const char *why;
	bool oom = false;
	int rc = req_check(f, r, e);

	if (rc)
		return rc;
	j = calloc(1, sizeof(*j));
	if (!j)
		return err_set(e, -ENOMEM, "out of memory");
	j->f = f;
	j->r = *r;
	j->offset = r->offset;
	j->url = strdup(r->url);
	j->etag = dup_or_null(r->etag, &oom);
	j->last_modified = dup_or_null(r->last_modified, &oom);
	j->r.url = j->r.etag = j->r.last_modified = NULL;   /* ours are above */
	lws_dll2_add_tail(&j->list, &f->jobs);
	if (oom || !j->url) {
		job_free(j);
		return err_set(e, -ENOMEM, "out of memory");
	}
	why = fetch_url_parse(j->url, &j->u);
	if (why)
		job_finish(j, -EPERM, 0, "bad URL: %s", why);
	else
		attempt_begin(j);
	if (out)
		*out = j;
	return 0;
}

void fetch_cancel(struct fetch_job *j)
{
	if (!j || j->state == JOB_CANCELLED || j->state == JOB_CALLING)
		return;
	j->state = JOB_CANCELLED;
	job_quiesce(j);
	lws_sul_schedule(j->f->ctx, 0, &j->sul_done, job_done_cb, 1);
}
