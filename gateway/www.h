/* SPDX-License-Identifier: MIT */
/* www.h - the web console's files, served at / from one directory (the
 * [http] www_dir key): GET and HEAD of regular files below it, index.html
 * for "/" and for paths without a file extension (the console routes by
 * #hash, but a bookmarked /tasks still lands on the console), a content
 * type by extension, an ETag from size and mtime with 304 on a matching
 * If-None-Match, and "no-cache" so an upgraded gateway's console shows at
 * once. Bodies go out through the loop's file path (no copy in memory).
 * libwebsockets' file mounts are not used: they would take requests before
 * the router, and the router decides what / means next to /api and /device.
 * Must not: serve anything outside the directory (no dot segments, no
 * hidden files, no symlinks), touch sockets. */
#ifndef OTAGW_WWW_H
#define OTAGW_WWW_H

#include "err.h"
#include "http.h"

struct www {
	int dirfd;              /* the opened directory; -1 = no console */
};

/* Opens dir. -ENOENT / -ENOTDIR / -EACCES with e filled when it cannot be
 * opened; on failure w serves 404s (the daemon can run without a console). */
int www_open(struct www *w, const char *dir, struct err_info *e) OTAGW_MUST_CHECK;
void www_close(struct www *w);

/* The http_handler for "/"; ctx is a struct www. */
int www_handle(void *ctx, const struct http_req *req, struct http_resp *resp);

/* exposed for tests/fuzz */
#define WWW_PATH_MAX 256
/* Checks the url path and turns it into a path relative to the directory
 * (index.html for "/" and extension-less paths) in out: 0, or -EINVAL. */
int www_rel_path(const char *path, char out[WWW_PATH_MAX]) OTAGW_MUST_CHECK;

#endif
