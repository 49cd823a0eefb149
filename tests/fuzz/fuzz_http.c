/* SPDX-License-Identifier: MIT */
/* fuzz_http.c - what the HTTP server makes of a request line and headers
 * before it touches a file or the store: the Range header of image
 * downloads (southbound/http_dev.c http_dev_range()), the web console's
 * path check (gateway/www.c www_rel_path()) and the REST router's path
 * matching (gateway/api.c api_match()). (If-Range needs no parser: it is
 * compared whole with the ETag and Last-Modified strings.)
 * Feeds, by the first byte (mod 3):
 *   0  Range: 8 bytes of image size (big-endian), then the header value;
 *   1  console: the url path;
 *   2  API: the second byte picks a route pattern (the API's own ones, or,
 *      past them, the input up to the first '\n' is the pattern), the rest
 *      is the url path.
 * Strings are NUL-terminated copies, as lws hands them over.
 * Asserts beyond no crash and no leak:
 *  - Range: the result is 1, 0 or -ERANGE and equals a plain reference
 *    reading of RFC 9110's single byte-range (bytes=a-b, a-, -n), with
 *    first <= last < size whenever it is 1;
 *  - console: an accepted path maps to "index.html" or to the path itself
 *    without its '/', shorter than WWW_PATH_MAX, made of [A-Za-z0-9._-]
 *    segments, none empty or starting with '.' (nothing outside the
 *    directory, no hidden file);
 *  - API: a match with a '*' yields a valid id, and the pattern with its
 *    '*' replaced by that id is the path (less one trailing '/'). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "fuzz_common.h"
#include "http_dev.h"
#include "util.h"
#include "www.h"

/* The API's routes (api.c api_routes[]) at the time of writing, plus a few
 * shapes the router could grow into. */
static const char *const patterns[] = {
	"/api/health", "/api/firmware", "/api/firmware/*", "/api/firmware/*/tasks",
	"/api/devices", "/api/devices/*", "/api/devices/*/history", "/api/tasks",
	"/api/tasks/*", "/api/tasks/*/publish", "/api/tasks/*/cancel", "/api/tasks/*/records",
	"/api/cache", "/api/cache/*", "*", "/*", "/api/*/*", "",
};

/* Digits only, no sign, fits in 64 bits. */
static bool ref_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || __builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
			return false;
	}
	*out = v;
	return true;
}

/* One byte-range, or 0 to ignore the header. */
static int ref_range(const char *v, uint64_t size, uint64_t *first, uint64_t *last)
{
	const char *spec, *dash;
	uint64_t a, b;

	if (strncasecmp(v, "bytes=", 6) || strchr(v, ','))
		return 0;
	spec = v + 6;
	dash = strchr(spec, '-');
	if (!dash)
		return 0;
	if (dash == spec) {
		if (!ref_u64(dash + 1, strlen(dash + 1), &b))
			return 0;
		if (!b || !size)
			return -ERANGE;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return 1;
	}
	if (!ref_u64(spec, (size_t)(dash - spec), &a))
		return 0;
	b = UINT64_MAX;
	if (dash[1] && (!ref_u64(dash + 1, strlen(dash + 1), &b) || b < a))
		return 0;
	if (a >= size)
		return -ERANGE;
	*first = a;
	*last = b < size ? b : size - 1;
	return 1;
}

static void fuzz_range(struct fuzz_in *in, const char *value)
{
	uint64_t size = (uint64_t)fuzz_u32(in) << 32, f1 = 7, l1 = 7, f2 = 7, l2 = 7;
	int rc, want;

	size |= fuzz_u32(in);
	rc = http_dev_range(value, size, &f1, &l1);
	want = ref_range(value, size, &f2, &l2);
	FUZZ_CHECK(rc == 1 || rc == 0 || rc == -ERANGE);
	FUZZ_CHECK(rc == want);
	if (rc == 1) {
		FUZZ_CHECK(f1 == f2 && l1 == l2);
		FUZZ_CHECK(f1 <= l1 && l1 < size);
	}
}

static void fuzz_www(const char *path)
{
	char out[WWW_PATH_MAX];
	const char *seg;

	memset(out, 0x55, sizeof(out));
	if (www_rel_path(path, out))
		return;
	FUZZ_CHECK(fuzz_terminated(out, sizeof(out)));
	FUZZ_CHECK(!strcmp(out, "index.html") || !strcmp(out, path + 1));
	for (seg = out;; seg++) {
		size_t n = strcspn(seg, "/");

		FUZZ_CHECK(n > 0 && seg[0] != '.');
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					  "0123456789._-", seg[i]) && seg[i]);
		seg += n;
		if (!*seg)
			break;
	}
}

static void fuzz_api(const char *pattern, const char *path)
{
	char id[OTAGW_ID_MAX], *built;
	const char *star = strchr(pattern, '*');
	size_t plen = strlen(path), n;

	memset(id, 0, sizeof(id));
	if (!api_match(pattern, path, id))
		return;
	FUZZ_CHECK(fuzz_terminated(id, sizeof(id)));
	if (!star) {
		FUZZ_CHECK(!strcmp(pattern, path) ||
			   (plen && path[plen - 1] == '/' && !strncmp(pattern, path, plen - 1) &&
			    strlen(pattern) == plen - 1));
		return;
	}
	FUZZ_CHECK(util_id_valid(id));
	if (strchr(star + 1, '*'))
		return;                 /* several '*': id is the last one's */
	n = strlen(pattern) + strlen(id) + 2;
	built = malloc(n);
	if (!built)
		abort();
	snprintf(built, n, "%.*s%s%s", (int)(star - pattern), pattern, id, star + 1);
	FUZZ_CHECK(!strcmp(built, path) ||
		   (plen && path[plen - 1] == '/' && strlen(built) == plen - 1 &&
		    !strncmp(built, path, plen - 1)));
	free(built);
}

/* The rest of the input as a NUL-terminated string (ends at a NUL in it). */
static char *take_str(struct fuzz_in *in, size_t max)
{
	const uint8_t *p;
	size_t n = fuzz_take(in, max, &p);
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	struct fuzz_in in = { buf, len };
	unsigned mode = fuzz_u8(&in) % 3;
	char *s, *pattern = NULL;

	if (mode == 0) {
		struct fuzz_in size = in;

		in.p += in.n < 8 ? in.n : 8;
		in.n -= in.n < 8 ? in.n : 8;
		s = take_str(&in, SIZE_MAX);
		fuzz_range(&size, s);
	} else if (mode == 1) {
		s = take_str(&in, SIZE_MAX);
		fuzz_www(s);
	} else {
		unsigned pick = fuzz_u8(&in);

		if (pick < OTAGW_ARRAY_SIZE(patterns)) {
			s = take_str(&in, SIZE_MAX);
			fuzz_api(patterns[pick], s);
		} else {
			const uint8_t *nl = memchr(in.p, '\n', in.n);

			pattern = take_str(&in, nl ? (size_t)(nl - in.p) : in.n);
			fuzz_u8(&in);
			s = take_str(&in, SIZE_MAX);
			fuzz_api(pattern, s);
		}
	}
	free(pattern);
	free(s);
	return 0;
}
