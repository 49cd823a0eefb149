/* SPDX-License-Identifier: MIT */
/* json_in.h - field-by-field checks of untrusted JSON objects (REST bodies,
 * bundle manifests, cloud messages) shared by catalogue, devices and tasks.
 * Every failure is -EINVAL with a detail in e that names the field, e.g.
 * "field 'version': expected a string". Keys are matched case-sensitively.
 * A typed field given as JSON null is refused (omit it instead).
 * Ownership: obj is borrowed for the call; *out strings are malloc'ed and the
 * caller frees them with free(); fixed dst buffers are written only on 0.
 * Must not: touch the store, log (callers report e once), keep state. */
#ifndef OTAGW_JSON_IN_H
#define OTAGW_JSON_IN_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "otagw_limits.h"

/* 0 when obj is an object whose every key is one of allowed[0..n) and no key
 * appears twice (duplicates detected among the first 64 allowed names).
 * -EINVAL "expected a JSON object" / "unknown field 'x'" / "duplicate field". */
int json_in_check_keys(const cJSON *obj, const char *const *allowed, size_t n,
		       struct err_info *e) OTAGW_MUST_CHECK;

/* Copies string field key into dst[cap]. 0 copied; 1 absent and !required
 * (dst untouched); -EINVAL absent-but-required, empty-but-required, not a
 * string, or longer than cap - 1 bytes. */
int json_in_str(const cJSON *obj, const char *key, bool required, char *dst, size_t cap,
		struct err_info *e) OTAGW_MUST_CHECK;

/* As json_in_str() (never required; "" allowed) for strings of at most max
 * bytes (NUL not counted). On 0, *out is malloc'ed (caller frees); on 1
 * (absent) and on error *out is untouched. -ENOMEM possible. */
int json_in_strdup(const cJSON *obj, const char *key, size_t max, char **out,
		   struct err_info *e) OTAGW_MUST_CHECK;

/* An integral JSON number in [min, max] into *out: 1.5, "1", true and values
 * out of range are -EINVAL. 0, or 1 when absent and !required (*out untouched). */
int json_in_int(const cJSON *obj, const char *key, bool required, int64_t min, int64_t max,
		int64_t *out, struct err_info *e) OTAGW_MUST_CHECK;

/* Field key must be a JSON object; *out gets its compact text, malloc'ed
 * (caller frees), at most max bytes (NUL not counted) else -EINVAL.
 * 1 when absent (*out untouched). -ENOMEM possible. */
int json_in_object_text(const cJSON *obj, const char *key, size_t max, char **out,
			struct err_info *e) OTAGW_MUST_CHECK;

/* json_in_str() into dst plus util_id_valid(): -EINVAL "field 'key': ids are
 * 1-64 characters of A-Z a-z 0-9 _ . : -" (also for "" and too long). */
int json_in_id(const cJSON *obj, const char *key, bool required, char dst[OTAGW_ID_MAX],
	       struct err_info *e) OTAGW_MUST_CHECK;

/* Parses stored JSON object text (NULL, invalid or not an object: {}).
 * A new cJSON object the caller deletes; NULL only on ENOMEM. */
cJSON *json_out_object_text(const char *text);

/* What cJSON lets through but JSON (RFC 8259) does not, checked on the raw
 * bytes before parsing: invalid UTF-8 (overlongs, surrogates), raw control
 * characters, \\u0000 inside strings (they would truncate C strings), numbers
 * with leading zeros. 0 or -EINVAL with the byte offset in e. */
int json_in_strict(const uint8_t *buf, size_t len, struct err_info *e) OTAGW_MUST_CHECK;

#endif
