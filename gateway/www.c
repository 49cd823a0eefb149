/* SPDX-License-Identifier: MIT */
/* www.c - static files of the web console (see www.h). */
#define LOG_MOD "www"
#include "www.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "log.h"

static const struct {
	const char *ext;
	const char *type;
} www_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".mjs", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".json", "application/json" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".txt", "text/plain; charset=utf-8" },
	{ ".woff2", "font/woff2" },
};

int www_open(struct www *w, const char *dir, struct err_info *e)
{
	w->dirfd = -1;
	if (!dir || !dir[0])
		return 0;
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0)
		return err_set(e, -errno, "web console directory %s: %s", dir, strerror(errno));
	return 0;
}

void www_close(struct www *w)
{
	if (w->dirfd >= 0)
		close(w->dirfd);
	w->dirfd = -1;
}

static int www_error(struct http_resp *resp, int status, const char *text)
{
	cJSON *o = cJSON_CreateObject();

	if (o && !cJSON_AddStringToObject(o, "error", text)) {
		cJSON_Delete(o);
		o = NULL;
	}
	return http_resp_json(resp, status, o);
}

/* Checks the url path and turns it into a path relative to the directory:
 * segments of [A-Za-z0-9._-] not starting with '.', no empty segment.
 * "/" and extension-less paths map to index.html. 0, or -EINVAL. */
int www_rel_path(const char *path, char out[WWW_PATH_MAX])
{
	const char *p = path + 1, *last = p;
	size_t n;

	if (path[0] != '/')
		return -EINVAL;
	n = strlen(p);
	if (n >= WWW_PATH_MAX)
		return -EINVAL;
	if (!n || p[n - 1] == '/') {
		/* "/" or a directory-like path: the console's entry point */
		if (n)
			return -EINVAL;
		memcpy(out, "index.html", sizeof("index.html"));
		return 0;
	}
	for (const char *s = p; *s; s++) {
		char c = *s;

		if (c == '/') {
			if (s == last)
				return -EINVAL;   /* empty segment */
			last = s + 1;
			continue;
		}
		if (s == last && c == '.')
			return -EINVAL;           /* dot segment or hidden file */
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return -EINVAL;
	}
	if (!strchr(last, '.')) {
		/* a console route such as /tasks: the SPA entry point */
		memcpy(out, "index.html", sizeof("index.html"));
		return 0;
	}
	memcpy(out, p, n + 1);
	return 0;
}

static const char *www_type(const char *rel)
{
	const char *dot = strrchr(rel, '.');

	for (size_t i = 0; dot && i < sizeof(www_types) / sizeof(www_types[0]); i++)
		if (!strcmp(dot, www_types[i].ext))
			return www_types[i].type;
	return "application/octet-stream";
}

/* True when the If-None-Match list holds etag (or is "*"). */
static bool www_etag_match(const char *inm, const char *etag)
{
	size_t n = strlen(etag);

	if (!inm)
		return false;
	for (const char *p = inm; *p;) {
		p += strspn(p, " ,\t");
		if (*p == '*')
			return true;
		if (!strncmp(p, "W/", 2))
			p += 2;
		if (!strncmp(p, etag, n) && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return true;
		p += strcspn(p, ",");
	}
	return false;
}

int www_handle(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct www *w = ctx;
	char rel[WWW_PATH_MAX], etag[64];
	struct stat sb;
	int fd;

	if (req->method != HTTP_GET && req->method != HTTP_HEAD)
		return www_error(resp, 405, "only GET and HEAD are served here");
	if (w->dirfd < 0)
		return www_error(resp, 404, "no web console installed ([http] www_dir)");
	if (www_rel_path(req->path, rel))
		return www_error(resp, 404, "not found");
	fd = openat(w->dirfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return www_error(resp, 404, "not found");
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
		close(fd);
		return www_error(resp, 404, "not found");
	}
	snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long)sb.st_size,
		 (unsigned long long)sb.st_mtime);
	resp->content_type = www_type(rel);
	resp->cache_control = "no-cache";
	if (http_resp_header(resp, "etag:", "%s", etag) ||
	    http_resp_header(resp, "x-content-type-options:", "nosniff") ||
	    http_resp_header(resp, "content-security-policy:",
			     "default-src 'self'; connect-src 'self' ws: wss:; "
			     "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
			     "frame-ancestors 'none'")) {
		close(fd);
		return -ENOMEM;
	}
	if (www_etag_match(req->if_none_match, etag)) {
		close(fd);
		resp->status = 304;
		return 0;
	}
	resp->status = 200;
	resp->has_file = true;
	resp->file_fd = fd;
	resp->file_off = 0;
	resp->body_len = (uint64_t)sb.st_size;
	return 0;
}
