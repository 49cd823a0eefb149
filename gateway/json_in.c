/* SPDX-License-Identifier: MIT */
/* json_in.c - checks of untrusted JSON object fields; see json_in.h.
 * Numbers arrive as doubles (cJSON); they are range-checked as doubles before
 * any conversion, so 1e999, NaN or 2^63 never reach an integer cast.
 * Must not: log, touch the store. */
#include "json_in.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define JSON_IN_KEY_SHOWN 64      /* bytes of an unknown key quoted in e */
#define JSON_IN_TWO63 9223372036854775808.0

/* A printable, bounded copy of an untrusted key for error texts. */
static void json_in_quote(char *dst, size_t cap, const char *key)
{
	size_t i = 0;

	for (; key && key[i] && i + 1 < cap; i++) {
		unsigned char c = (unsigned char)key[i];

		dst[i] = (char)((c < 0x20 || c >= 0x7f || c == '\'') ? '?' : c);
	}
	dst[i] = '\0';
}

static int json_in_key_index(const char *key, const char *const *allowed, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (key && !strcmp(key, allowed[i]))
			return (int)i;
	return -1;
}

int json_in_check_keys(const cJSON *obj, const char *const *allowed, size_t n,
		       struct err_info *e)
{
	char shown[JSON_IN_KEY_SHOWN + 1];
	uint64_t seen = 0;
	const cJSON *it;

	if (!cJSON_IsObject(obj))
		return err_set(e, -EINVAL, "expected a JSON object");
	cJSON_ArrayForEach(it, obj) {
		int i = json_in_key_index(it->string, allowed, n);

		json_in_quote(shown, sizeof(shown), it->string);
		if (i < 0)
			return err_set(e, -EINVAL, "unknown field '%s'", shown);
		if (i < 64 && (seen & (UINT64_C(1) << i)))
			return err_set(e, -EINVAL, "duplicate field '%s'", shown);
		if (i < 64)
			seen |= UINT64_C(1) << i;
	}
	return 0;
}

/* 0 with *it set when key is present; 1 when not given and optional;
 * -EINVAL when required and absent, or null (a typed field never takes null:
 * omit it instead). */
static int json_in_find(const cJSON *obj, const char *key, bool required, const cJSON **it,
			struct err_info *e)
{
	if (!cJSON_IsObject(obj))
		return err_set(e, -EINVAL, "expected a JSON object");
	*it = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (*it && cJSON_IsNull(*it))
		return err_set(e, -EINVAL, "field '%s': null is not allowed (omit the field)", key);
	if (*it)
		return 0;
	if (required)
		return err_set(e, -EINVAL, "field '%s' is required", key);
	return 1;
}

/* The borrowed string value of key, at most max bytes ("" allowed). */
static int json_in_string(const cJSON *obj, const char *key, bool required, size_t max,
			  const char **s, struct err_info *e)
{
	const cJSON *it;
	int rc = json_in_find(obj, key, required, &it, e);
	size_t len;

	if (rc)
		return rc;
	if (!cJSON_IsString(it) || !it->valuestring)
		return err_set(e, -EINVAL, "field '%s': expected a string", key);
	len = strlen(it->valuestring);
	if (len > max)
		return err_set(e, -EINVAL, "field '%s': too long (max %zu)", key, max);
	*s = it->valuestring;
	return 0;
}

int json_in_str(const cJSON *obj, const char *key, bool required, char *dst, size_t cap,
		struct err_info *e)
{
	const char *s;
	int rc;

	if (!cap)
		return err_set(e, -EINVAL, "field '%s': no room", key);
	rc = json_in_string(obj, key, required, cap - 1, &s, e);
	if (rc)
		return rc;
	if (required && !*s)
		return err_set(e, -EINVAL, "field '%s' must not be empty", key);
	util_strlcpy(dst, s, cap);
	return 0;
}

int json_in_strdup(const cJSON *obj, const char *key, size_t max, char **out,
		   struct err_info *e)
{
	const char *s;
	char *copy;
	int rc = json_in_string(obj, key, false, max, &s, e);

	if (rc)
		return rc;
	copy = strdup(s);
	if (!copy)
		return err_set(e, -ENOMEM, "out of memory");
	*out = copy;
	return 0;
}

int json_in_int(const cJSON *obj, const char *key, bool required, int64_t min, int64_t max,
		int64_t *out, struct err_info *e)
{
	const cJSON *it;
	int rc = json_in_find(obj, key, required, &it, e);
	double d;
	int64_t v;

	if (rc)
		return rc;
	if (!cJSON_IsNumber(it))
		return err_set(e, -EINVAL, "field '%s': expected an integer", key);
	d = it->valuedouble;
	/* Negated so that NaN fails too. */
	if (!(d >= -JSON_IN_TWO63 && d < JSON_IN_TWO63))
		goto range;
	v = (int64_t)d;
	if ((double)v != d)
		return err_set(e, -EINVAL, "field '%s': expected an integer", key);
	if (v < min || v > max)
		goto range;
	*out = v;
	return 0;
range:
	return err_set(e, -EINVAL, "field '%s': must be from %" PRId64 " to %" PRId64, key, min,
		       max);
}

int json_in_object_text(const cJSON *obj, const char *key, size_t max, char **out,
			struct err_info *e)
{
	const cJSON *it;
	int rc = json_in_find(obj, key, false, &it, e);
	char *text, *copy;
	size_t len;

	if (rc)
		return rc;
	if (!cJSON_IsObject(it))
		return err_set(e, -EINVAL, "field '%s': expected an object", key);
	text = cJSON_PrintUnformatted(it);
	if (!text)
		return err_set(e, -ENOMEM, "out of memory");
	len = strlen(text);
	copy = len <= max ? strdup(text) : NULL;
	cJSON_free(text);
	if (len > max)
		return err_set(e, -EINVAL, "field '%s': too large (max %zu bytes)", key, max);
	if (!copy)
		return err_set(e, -ENOMEM, "out of memory");
	*out = copy;
	return 0;
}

int json_in_id(const cJSON *obj, const char *key, bool required, char dst[OTAGW_ID_MAX],
	       struct err_info *e)
{
	const char *s;
	int rc = json_in_string(obj, key, required, SIZE_MAX, &s, e);

	if (rc)
		return rc;
	if (!util_id_valid(s))
		return err_set(e, -EINVAL, "field '%s': ids are 1-64 characters of "
			       "A-Z a-z 0-9 _ . : -", key);
	util_strlcpy(dst, s, OTAGW_ID_MAX);
	return 0;
}

cJSON *json_out_object_text(const char *text)
{
	cJSON *o = text ? cJSON_ParseWithLength(text, strlen(text)) : NULL;

	if (cJSON_IsObject(o))
		return o;
	cJSON_Delete(o);
	return cJSON_CreateObject();
}

/* Length of the UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF), or 0 when invalid. */
static size_t json_in_utf8_len(const uint8_t *p, size_t left)
{
	uint32_t cp;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* True when buf[i] begins a JSON number (optionally after its '-'): the
 * previous byte is a structural character or space, so 1e05 and 10 are not
 * mistaken for a leading zero. */
static bool json_in_number_start(const uint8_t *buf, size_t i)
{
	if (i && buf[i - 1] == '-')
		i--;
	return !i || strchr(" \t\r\n:[,", buf[i - 1]) != NULL;
}

int json_in_strict(const uint8_t *buf, size_t len, struct err_info *e)
{
	bool in_str = false;

	for (size_t i = 0; i < len;) {
		size_t n = json_in_utf8_len(buf + i, len - i);
		uint8_t c = buf[i];

		if (!n)
			return err_set(e, -EINVAL, "invalid UTF-8 at byte %zu", i);
		if (in_str && c < 0x20)
			return err_set(e, -EINVAL, "control character in a string at byte %zu", i);
		if (!in_str && c < 0x20 && c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return err_set(e, -EINVAL, "control character at byte %zu", i);
		if (in_str && c == '\\') {
			if (i + 6 <= len && !memcmp(buf + i + 1, "u0000", 5))
				return err_set(e, -EINVAL, "NUL character (\\u0000) in a string");
			i += 2;
			continue;
		}
		if (c == '"')
			in_str = !in_str;
		if (!in_str && c == '0' && i + 1 < len && buf[i + 1] >= '0' && buf[i + 1] <= '9' &&
		    json_in_number_start(buf, i))
			return err_set(e, -EINVAL, "number with a leading zero at byte %zu", i);
		i += n;
	}
	return 0;
}
