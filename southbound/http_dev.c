/* SPDX-License-Identifier: MIT */
/* http_dev.c - the HTTP device transport and image serving; see
 * http_dev.h. A POST is one message: a session lives for the request and
 * captures what the core answers. A long-poll is a session bound to the
 * device until a push arrives, the wait ends or the client goes away. */
#define LOG_MOD "http_dev"
#include "http_dev.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalogue.h"
#include "images.h"
#include "log.h"
#include "msg_json.h"
#include "util.h"

#define HTTP_DEV_RETRY_AFTER 5      /* s, for an image that is not ready */
#define HTTP_DEV_SELF_MAX 256       /* devices remembered as reporting progress */

struct http_poll;

struct http_dev {
	struct core *core;
	struct lws_context *ctx;
	bool auth_token;
	unsigned max_poll_wait;
	char public_url[256];
	struct http_poll *polls;
	/* Devices that POSTed progress themselves, newest last (a ring): bytes
	 * served to them no longer count as their progress. */
	char self_progress[HTTP_DEV_SELF_MAX][OTAGW_ID_MAX];
	unsigned self_next;
};

/* One image response to a known device: served bytes become progress. */
struct http_serve {
	struct http_dev *d;
	char device[OTAGW_ID_MAX];
	char firmware[OTAGW_ID_MAX];
	uint64_t size;
	int last_pct;
};

/* What a request names: /device/{product}/{device}/firmware/{topic} */
struct http_dev_path {
	char product[OTAGW_ID_MAX];
	char device[OTAGW_ID_MAX];
	const char *topic;               /* "report", "pull", "upgrade/progress" ... */
};

/* ---- responses ---------------------------------------------------------- */


static int http_dev_result(struct http_resp *resp, int status, const char *code, const char *text)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return -ENOMEM;
	cJSON_AddBoolToObject(o, "success", status < 300);
	if (code)
		cJSON_AddStringToObject(o, "code", code);
	if (text)
		cJSON_AddStringToObject(o, "message", text);
	return http_resp_json(resp, status, o);
}

/* A message the core sent, as the response body. */
static int http_dev_msg(struct http_resp *resp, int status, const char *json)
{
	resp->status = status;
	resp->content_type = "application/json";
	resp->body = strdup(json);
	resp->body_len = resp->body ? strlen(resp->body) : 0;
	return resp->body ? 0 : -ENOMEM;
}

/* ---- sessions ----------------------------------------------------------- */

/* A session that keeps the first message the core sends, encoded. */
struct http_capture {
	struct session s;
	struct http_dev *d;
	const char *device;             /* from the path */
	char *json;
};

/* The gateway-local URL of an image, naming the device so that bytes served
 * to it count as its progress. */
static int http_dev_image_url(const struct http_dev *d, const char *fw, const char *device,
			      char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s/images/%s?device=%s", d->public_url, fw, device);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static bool http_dev_reports_self(const struct http_dev *d, const char *device)
{
	for (unsigned i = 0; i < HTTP_DEV_SELF_MAX; i++)
		if (!strcmp(d->self_progress[i], device))
			return true;
	return false;
}

static void http_dev_mark_self(struct http_dev *d, const char *device)
{
	if (http_dev_reports_self(d, device))
		return;
	util_strlcpy(d->self_progress[d->self_next], device, OTAGW_ID_MAX);
	d->self_next = (d->self_next + 1) % HTTP_DEV_SELF_MAX;
}

static int http_capture_send(struct session *s, const struct msg *m)
{
	struct http_capture *c = lws_container_of(s, struct http_capture, s);
	size_t n;

	if (c->json)
		return -ENOBUFS;      /* one answer per request */
	return msg_json_encode(m, &c->json, &n);
}

static int http_image_url(struct session *s, const char *fw, char *buf, size_t cap)
{
	struct http_capture *c = lws_container_of(s, struct http_capture, s);

	return http_dev_image_url(c->d, fw, c->device, buf, cap);
}

static const struct transport_ops http_capture_ops = {
	.name = "http",
	.send = http_capture_send,
	.close = NULL,
	.image_url = http_image_url,
};

/* ---- requests ----------------------------------------------------------- */

static int http_dev_parse_path(const char *path, struct http_dev_path *p)
{
	static const char pre[] = "/device/";
	const char *a = path + sizeof(pre) - 1, *b, *c;

	if (strncmp(path, pre, sizeof(pre) - 1))
		return -ENOENT;
	b = strchr(a, '/');
	if (!b || (size_t)(b - a) >= OTAGW_ID_MAX)
		return -ENOENT;
	c = strchr(b + 1, '/');
	if (!c || (size_t)(c - b - 1) >= OTAGW_ID_MAX || strncmp(c, "/firmware/", 10))
		return -ENOENT;
	memcpy(p->product, a, (size_t)(b - a));
	p->product[b - a] = '\0';
	memcpy(p->device, b + 1, (size_t)(c - b - 1));
	p->device[c - b - 1] = '\0';
	p->topic = c + 10;
	return util_id_valid(p->product) && util_id_valid(p->device) ? 0 : -ENOENT;
}

static int http_dev_auth(struct http_dev *d, const struct http_req *req, const char *device)
{
	static const char bearer[] = "Bearer ";
	const char *h = req->authorization;

	if (!d->auth_token)
		return 0;
	if (!h || strncmp(h, bearer, sizeof(bearer) - 1))
		return -OTAGW_EAUTH;
	return core_authenticate(d->core, device, h + sizeof(bearer) - 1);
}

struct http_dev_topic {
	const char *topic;
	enum msg_type type;
};

static const struct http_dev_topic http_dev_topics[] = {
	{ "report", MSG_REPORT_FIRMWARE },
	{ "pull", MSG_REQUEST_FIRMWARE },
	{ "upgrade/progress", MSG_UPGRADE_FIRMWARE_PROGRESS },
	{ "upgrade/reply", MSG_UPGRADE_FIRMWARE_REPLY },
	{ "read/reply", MSG_READ_FIRMWARE_REPLY },
};

/* One message POSTed to its topic: decode, hand to the core, answer. */
static int http_dev_post(struct http_dev *d, const struct http_req *req,
			 const struct http_dev_path *p, enum msg_type type, struct http_resp *resp)
{
	struct http_capture cap = { .s = { .ops = &http_capture_ops }, .d = d,
				    .device = p->device };
	struct err_info e = { 0 };
	struct msg m;
	int rc;

	if (!req->body_len)      /* a bare POST is an empty message of the topic */
		rc = msg_json_decode_as((const uint8_t *)"{}", 2, type, p->device, &m, &e);
	else
		rc = msg_json_decode_as(req->body, req->body_len, type, p->device, &m, &e);
	if (rc)
		return http_dev_result(resp, 400, "bad_message", err_text(&e));
	util_strlcpy(m.product_id, p->product, sizeof(m.product_id));
	util_strlcpy(cap.s.product_id, p->product, sizeof(cap.s.product_id));
	rc = core_device_seen(d->core, p->device, p->product, "http", &e);
	if (!rc)
		rc = core_handle(d->core, &cap.s, &m, &e);
	if (!rc && type == MSG_UPGRADE_FIRMWARE_PROGRESS)
		http_dev_mark_self(d, p->device);
	msg_clear(&m);
	if (cap.json) {
		rc = http_dev_msg(resp, 200, cap.json);
		free(cap.json);
		return rc;
	}
	if (rc == -EINVAL)
		return http_dev_result(resp, 400, "bad_message", err_text(&e));
	if (rc)
		return http_dev_result(resp, 409, "refused", err_text(&e));
	return http_dev_result(resp, 200, NULL, NULL);
}

/* ---- long-poll for pushes ------------------------------------------------- */

struct http_poll {
	struct session s;               /* first: the core's view */
	struct http_dev *d;
	struct http_poll *next;
	struct http_deferred *def;      /* NULL until deferred, and once answered */
	char *json;                     /* a push that came before we deferred */
	bool ending;                    /* answered: teardown scheduled */
	lws_sorted_usec_list_t wait_sul;   /* the ?wait= deadline */
	lws_sorted_usec_list_t end_sul;    /* teardown, off the core's call stack */
};

static void http_poll_unlink(struct http_poll *p)
{
	for (struct http_poll **pp = &p->d->polls; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

static void http_poll_free(struct http_poll *p)
{
	lws_sul_cancel(&p->wait_sul);
	lws_sul_cancel(&p->end_sul);
	core_session_gone(p->d->core, &p->s);
	http_poll_unlink(p);
	free(p->json);
	free(p);
}

static void http_poll_end_cb(lws_sorted_usec_list_t *sul)
{
	http_poll_free(lws_container_of(sul, struct http_poll, end_sul));
}

/* Answers the waiting client (json: 200 with it; NULL: 204) and frees p
 * from the loop, later. */
static void http_poll_answer(struct http_poll *p, const char *json)
{
	struct http_resp resp = { 0 };

	if (!p->def)
		return;
	if (json ? http_dev_msg(&resp, 200, json) : (resp.status = 204, 0))
		resp.status = 500;
	http_deferred_answer(p->def, &resp);
	p->def = NULL;
	p->ending = true;
	lws_sul_cancel(&p->wait_sul);
	lws_sul_schedule(p->d->ctx, 0, &p->end_sul, http_poll_end_cb, 1);
}

static int http_poll_send(struct session *s, const struct msg *m)
{
	struct http_poll *p = lws_container_of(s, struct http_poll, s);
	char *json;
	size_t n;
	int rc;

	if (m->type != MSG_UPGRADE_FIRMWARE || p->json || p->ending)
		return -ENOTCONN;
	rc = msg_json_encode(m, &json, &n);
	if (rc)
		return rc;
	if (!p->def) {
		p->json = json;         /* pushed while binding: answered at once */
		return 0;
	}
	if (http_deferred_gone(p->def)) {
		/* the client left: the record stays waiting for its next poll */
		p->ending = true;
		free(json);
		return -ENOTCONN;
	}
	http_poll_answer(p, json);
	free(json);
	return 0;
}

static void http_poll_close(struct session *s)
{
	http_poll_answer(lws_container_of(s, struct http_poll, s), NULL);
}

static int http_poll_image_url(struct session *s, const char *fw, char *buf, size_t cap)
{
	struct http_poll *p = lws_container_of(s, struct http_poll, s);

	return http_dev_image_url(p->d, fw, p->s.device_id, buf, cap);
}

static const struct transport_ops http_poll_ops = {
	.name = "http",
	.send = http_poll_send,
	.close = http_poll_close,
	.image_url = http_poll_image_url,
};

static void http_poll_timeout(lws_sorted_usec_list_t *sul)
{
	http_poll_answer(lws_container_of(sul, struct http_poll, wait_sul), NULL);
}

/* The client went away while waiting. */
static void http_poll_cancel(void *arg)
{
	struct http_poll *p = arg;

	p->def = NULL;
	http_poll_free(p);
}

static int http_dev_poll(struct http_dev *d, const struct http_req *req,
			 const struct http_dev_path *p, struct http_resp *resp)
{
	const char *w = http_arg(req, "wait");
	struct err_info e = { 0 };
	struct http_poll *poll;
	uint64_t wait = 0;
	int rc;

	if (w && parse_u64(w, strlen(w), UINT32_MAX, &wait))
		return http_dev_result(resp, 400, "bad_request", "wait must be seconds");
	if (wait > d->max_poll_wait)
		wait = d->max_poll_wait;
	if (core_device_seen(d->core, p->device, p->product, "http", &e))
		return http_dev_result(resp, 400, "bad_message", err_text(&e));
	poll = calloc(1, sizeof(*poll));
	if (!poll)
		return -ENOMEM;
	poll->d = d;
	poll->s.ops = &http_poll_ops;
	util_strlcpy(poll->s.product_id, p->product, sizeof(poll->s.product_id));
	poll->next = d->polls;
	d->polls = poll;
	rc = core_session_bind(d->core, &poll->s, p->device, &e);
	if (rc || poll->json || !wait) {
		rc = rc ? http_dev_result(resp, 400, "bad_message", err_text(&e)) :
		     poll->json ? http_dev_msg(resp, 200, poll->json) : (resp->status = 204, 0);
		http_poll_free(poll);
		return rc;
	}
	poll->def = http_defer(req, (unsigned)wait, http_poll_cancel, poll);
	if (!poll->def) {
		http_poll_free(poll);
		resp->status = 204;
		return 0;
	}
	lws_sul_schedule(d->ctx, 0, &poll->wait_sul, http_poll_timeout,
			 (lws_usec_t)wait * LWS_US_PER_SEC);
	return 0;
}

int http_dev_handle(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct http_dev *d = ctx;
	struct http_dev_path p;

	if (http_dev_parse_path(req->path, &p))
		return http_dev_result(resp, 404, "not_found", "no such device endpoint");
	if (http_dev_auth(d, req, p.device)) {
		resp->www_authenticate = "Bearer realm=\"otagw-device\"";
		return http_dev_result(resp, 401, "auth_failed", "missing or wrong secureKey");
	}
	if (!strcmp(p.topic, "upgrade")) {
		if (req->method != HTTP_GET)
			return http_dev_result(resp, 405, "bad_request", "use GET");
		return http_dev_poll(d, req, &p, resp);
	}
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(http_dev_topics); i++) {
		if (strcmp(p.topic, http_dev_topics[i].topic))
			continue;
		if (req->method != HTTP_POST)
			return http_dev_result(resp, 405, "bad_request", "use POST");
		return http_dev_post(d, req, &p, http_dev_topics[i].type, resp);
	}
	return http_dev_result(resp, 404, "not_found", "no such firmware topic");
}

/* ---- images --------------------------------------------------------------- */

int http_dev_range(const char *v, uint64_t size, uint64_t *first, uint64_t *last)
{
	const char *dash;
	uint64_t a, b;

	if (!v || strncasecmp(v, "bytes=", 6) || strchr(v, ','))
		return 0;
	v += 6;
	dash = strchr(v, '-');
	if (!dash)
		return 0;
	if (dash == v) {                        /* -n: the last n bytes */
		if (parse_u64(dash + 1, strlen(dash + 1), UINT64_MAX, &b))
			return 0;
		if (!b || !size)
			return -ERANGE;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return 1;
	}
	if (parse_u64(v, (size_t)(dash - v), UINT64_MAX, &a))
		return 0;
	if (!dash[1])
		b = UINT64_MAX;                 /* a- */
	else if (parse_u64(dash + 1, strlen(dash + 1), UINT64_MAX, &b) || b < a)
		return 0;                       /* malformed: ignored, as nginx does */
	if (a >= size)
		return -ERANGE;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return 1;
}

static void http_dev_httpdate(time_t t, char *buf, size_t cap)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Headers every image answer carries. */
static void http_dev_image_headers(struct http_resp *resp, const char *etag, const char *lm)
{
	if (http_resp_header(resp, "etag:", "%s", etag) ||
	    http_resp_header(resp, "last-modified:", "%s", lm) ||
	    http_resp_header(resp, "accept-ranges:", "bytes"))
		LOGW("image response headers full");
	resp->content_type = "application/octet-stream";
	resp->cache_control = "no-cache";
}

static int http_dev_not_ready(struct http_resp *resp, const char *text)
{
	int rc = http_dev_result(resp, 503, "not_ready", text);

	if (http_resp_header(resp, "retry-after:", "%d", HTTP_DEV_RETRY_AFTER))
		LOGW("image response headers full");
	return rc;
}

static void http_serve_sent(void *arg, uint64_t off, uint64_t n)
{
	struct http_serve *sv = arg;
	uint64_t end = off + n;
	int pct = end >= sv->size ? 100 : (int)(end * 100 / sv->size);

	core_count_served(sv->d->core, "http", n);
	if (!sv->device[0] || pct <= sv->last_pct)
		return;
	sv->last_pct = pct;
	if (!http_dev_reports_self(sv->d, sv->device))
		(void)core_image_served(sv->d->core, sv->device, sv->firmware, end, sv->size);
}

static void http_serve_done(void *arg)
{
	free(arg);
}

/* Bytes served are counted for /metrics; with ?device=ID (the URL replies
 * and pushes carry) they also count as that device's progress. An invalid
 * id is ignored, not refused: the image itself is not secret per device. */
static void http_dev_track(struct http_dev *d, const struct http_req *req, const char *fw,
			   uint64_t size, struct http_resp *resp)
{
	const char *dev = http_arg(req, "device");
	struct http_serve *sv;

	if (!size || req->method != HTTP_GET)
		return;
	sv = calloc(1, sizeof(*sv));
	if (!sv)
		return;
	sv->d = d;
	sv->size = size;
	sv->last_pct = -1;
	if (dev && util_id_valid(dev))
		util_strlcpy(sv->device, dev, sizeof(sv->device));
	util_strlcpy(sv->firmware, fw, sizeof(sv->firmware));
	resp->file_sent = http_serve_sent;
	resp->file_done = http_serve_done;
	resp->file_arg = sv;
}

int http_dev_images(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct http_dev *d = ctx;
	const char *id = req->path + strlen("/images/");
	char sha[CACHE_HEX_LEN + 1], etag[CACHE_HEX_LEN + 3], lm[40];
	struct firmware fw = { 0 };
	uint64_t size, first = 0, last = 0;
	struct stat sb;
	int fd, rc;

	if (req->method != HTTP_GET && req->method != HTTP_HEAD)
		return http_dev_result(resp, 405, "bad_request", "use GET or HEAD");
	if (strncmp(req->path, "/images/", 8) || !util_id_valid(id) ||
	    catalogue_get(d->core->st, id, &fw, NULL))
		return http_dev_result(resp, 404, "not_found", "no such firmware");
	firmware_clear(&fw);
	rc = d->core->images ? images_open(d->core->images, id, &fd, &size, sha) : -ENOENT;
	if (rc)
		return http_dev_not_ready(resp, rc == -EAGAIN ? "the image is still downloading"
							     : "the image is not on the gateway");
	snprintf(etag, sizeof(etag), "\"%s\"", sha);
	http_dev_httpdate(fstat(fd, &sb) ? 0 : sb.st_mtime, lm, sizeof(lm));
	http_dev_image_headers(resp, etag, lm);
	rc = req->if_range && strcmp(req->if_range, etag) && strcmp(req->if_range, lm) ? 0 :
	     http_dev_range(req->range, size, &first, &last);
	if (rc < 0) {
		close(fd);
		if (http_resp_header(resp, "content-range:", "bytes */%llu",
				     (unsigned long long)size))
			LOGW("image response headers full");
		resp->status = 416;
		return 0;
	}
	resp->status = rc ? 206 : 200;
	if (rc && http_resp_header(resp, "content-range:", "bytes %llu-%llu/%llu",
				   (unsigned long long)first, (unsigned long long)last,
				   (unsigned long long)size))
		LOGW("image response headers full");
	resp->has_file = true;
	resp->file_fd = fd;
	resp->file_off = rc ? first : 0;
	resp->body_len = rc ? last - first + 1 : size;
	http_dev_track(d, req, id, size, resp);
	return 0;
}

/* ---- life cycle ------------------------------------------------------------- */

int http_dev_new(struct http_dev **out, struct core *core, struct lws_context *ctx,
		 const struct http_dev_cfg *cfg, struct err_info *e)
{
	struct http_dev *d = calloc(1, sizeof(*d));
	size_t n;

	if (!d)
		return err_set(e, -ENOMEM, "out of memory");
	d->core = core;
	d->ctx = ctx;
	d->auth_token = cfg->auth_token;
	d->max_poll_wait = cfg->max_poll_wait;
	if (util_strlcpy(d->public_url, cfg->public_url, sizeof(d->public_url))) {
		free(d);
		return err_set(e, -ENAMETOOLONG, "[http] public_url is too long");
	}
	n = strlen(d->public_url);
	while (n && d->public_url[n - 1] == '/')
		d->public_url[--n] = '\0';
	*out = d;
	return 0;
}

void http_dev_free(struct http_dev *d)
{
	if (!d)
		return;
	while (d->polls) {
		struct http_poll *p = d->polls;

		d->polls = p->next;     /* as http_poll_free() would, but visibly to the analyzer */
		if (p->def)
			http_poll_answer(p, NULL);
		p->def = NULL;
		http_poll_free(p);
	}
	free(d);
}
