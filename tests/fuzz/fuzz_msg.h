/* SPDX-License-Identifier: MIT */
/* fuzz_msg.h - checks on a struct msg that the message-codec targets share
 * (fuzz_msg_json, fuzz_jsonline, fuzz_frame). Include after fuzz_common.h.
 * Must not: allocate or keep state. */
#ifndef OTAGW_FUZZ_MSG_H
#define OTAGW_FUZZ_MSG_H

#include <string.h>

#include "fuzz_common.h"
#include "msg.h"
#include "util.h"

/* What every decoder guarantees about a message it returns. */
static inline void fuzz_msg_sane(const struct msg *m)
{
	FUZZ_CHECK((unsigned)m->type < MSG_TYPE_COUNT);
	FUZZ_STR_OK(m->device_id);
	FUZZ_STR_OK(m->message_id);
	FUZZ_STR_OK(m->product_id);
	FUZZ_STR_OK(m->firmware_id);
	FUZZ_STR_OK(m->version);
	FUZZ_STR_OK(m->current_version);
	FUZZ_STR_OK(m->request_version);
	FUZZ_STR_OK(m->url);
	FUZZ_STR_OK(m->sign);
	FUZZ_STR_OK(m->sign_method);
	FUZZ_STR_OK(m->code);
	FUZZ_STR_OK(m->error_reason);
	FUZZ_STR_OK(m->secure_key);
	FUZZ_CHECK(!m->device_id[0] || util_id_valid(m->device_id));
	FUZZ_CHECK(!m->product_id[0] || util_id_valid(m->product_id));
	FUZZ_CHECK(m->progress >= 0 && m->progress <= 100);
	FUZZ_CHECK(m->timestamp >= 0);
	FUZZ_CHECK(!m->data == !m->data_len);
	if (m->data)
		FUZZ_CHECK(m->data_len == m->length);
	if (m->properties)
		FUZZ_CHECK(strlen(m->properties) < OTAGW_PROPS_MAX);
	if (m->parameters)
		FUZZ_CHECK(strlen(m->parameters) < OTAGW_PROPS_MAX);
}

static inline bool fuzz_str_eq(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

/* The fields msg_json_encode() writes for a's type, compared with b. */
static inline void fuzz_msg_same(const struct msg *a, const struct msg *b)
{
	FUZZ_CHECK(a->type == b->type);
	FUZZ_CHECK(fuzz_str_eq(a->device_id, b->device_id));
	FUZZ_CHECK(fuzz_str_eq(a->message_id, b->message_id));
	if (a->timestamp)
		FUZZ_CHECK(a->timestamp == b->timestamp);
	switch (a->type) {
	case MSG_REPORT_FIRMWARE:
		FUZZ_CHECK(fuzz_str_eq(a->version, b->version));
		FUZZ_CHECK(fuzz_str_eq(a->properties, b->properties));
		break;
	case MSG_REQUEST_FIRMWARE:
		FUZZ_CHECK(fuzz_str_eq(a->current_version, b->current_version));
		FUZZ_CHECK(fuzz_str_eq(a->request_version, b->request_version));
		FUZZ_CHECK(a->force == b->force && a->latest == b->latest);
		break;
	case MSG_READ_FIRMWARE_REPLY:
		FUZZ_CHECK(fuzz_str_eq(a->version, b->version));
		FUZZ_CHECK(fuzz_str_eq(a->properties, b->properties));
		/* fall through: the reply fields */
	case MSG_UPGRADE_FIRMWARE_REPLY:
	case MSG_REQUEST_FIRMWARE_REPLY:
		FUZZ_CHECK(a->success == b->success);
		if (!a->success) {
			FUZZ_CHECK(fuzz_str_eq(a->code, b->code));
			FUZZ_CHECK(fuzz_str_eq(a->error_reason, b->error_reason));
		}
		if (a->type != MSG_REQUEST_FIRMWARE_REPLY || !a->success)
			break;
		/* fall through: a successful REQUEST_FIRMWARE_REPLY carries the firmware */
	case MSG_UPGRADE_FIRMWARE:
		FUZZ_CHECK(fuzz_str_eq(a->firmware_id, b->firmware_id));
		FUZZ_CHECK(fuzz_str_eq(a->version, b->version));
		FUZZ_CHECK(fuzz_str_eq(a->url, b->url));
		FUZZ_CHECK(a->size == b->size);
		FUZZ_CHECK(fuzz_str_eq(a->sign, b->sign));
		FUZZ_CHECK(fuzz_str_eq(a->sign_method, b->sign_method));
		/* parameters are written as {} when there are none */
		FUZZ_CHECK(fuzz_str_eq(a->parameters ? a->parameters : "{}", b->parameters));
		break;
	case MSG_UPGRADE_FIRMWARE_PROGRESS:
		FUZZ_CHECK(fuzz_str_eq(a->firmware_id, b->firmware_id));
		FUZZ_CHECK(fuzz_str_eq(a->version, b->version));
		FUZZ_CHECK(a->progress == b->progress && a->complete == b->complete);
		FUZZ_CHECK(a->success == b->success);
		FUZZ_CHECK(fuzz_str_eq(a->error_reason, b->error_reason));
		break;
	case MSG_REQUEST_FIRMWARE_CHUNK:
		FUZZ_CHECK(fuzz_str_eq(a->firmware_id, b->firmware_id));
		FUZZ_CHECK(a->offset == b->offset && a->length == b->length);
		break;
	case MSG_REQUEST_FIRMWARE_CHUNK_REPLY:
		FUZZ_CHECK(a->success == b->success);
		FUZZ_CHECK(fuzz_str_eq(a->firmware_id, b->firmware_id));
		FUZZ_CHECK(a->offset == b->offset);
		if (!a->success) {
			FUZZ_CHECK(fuzz_str_eq(a->code, b->code));
			FUZZ_CHECK(fuzz_str_eq(a->error_reason, b->error_reason));
			break;
		}
		FUZZ_CHECK(a->length == b->length && a->size == b->size);
		FUZZ_CHECK(a->data_len == b->data_len);
		FUZZ_CHECK(!a->data_len || !memcmp(a->data, b->data, a->data_len));
		/* crc32 means something only with data, in-band or announced */
		if (a->data || a->length)
			FUZZ_CHECK(a->crc32 == b->crc32);
		break;
	case MSG_ERROR:
		FUZZ_CHECK(fuzz_str_eq(a->code, b->code));
		FUZZ_CHECK(fuzz_str_eq(a->error_reason, b->error_reason));
		break;
	case MSG_READ_FIRMWARE:
	case MSG_TYPE_COUNT:
		break;
	}
}

/* Every field of a and b, for two decodings of the same bytes. */
static inline void fuzz_msg_equal(const struct msg *a, const struct msg *b)
{
	FUZZ_CHECK(a->type == b->type && a->timestamp == b->timestamp);
	FUZZ_CHECK(!strcmp(a->device_id, b->device_id) && !strcmp(a->message_id, b->message_id));
	FUZZ_CHECK(!strcmp(a->product_id, b->product_id));
	FUZZ_CHECK(!strcmp(a->firmware_id, b->firmware_id) && !strcmp(a->version, b->version));
	FUZZ_CHECK(!strcmp(a->current_version, b->current_version));
	FUZZ_CHECK(!strcmp(a->request_version, b->request_version));
	FUZZ_CHECK(!strcmp(a->url, b->url) && a->size == b->size);
	FUZZ_CHECK(!strcmp(a->sign, b->sign) && !strcmp(a->sign_method, b->sign_method));
	FUZZ_CHECK(fuzz_str_eq(a->parameters, b->parameters));
	FUZZ_CHECK(fuzz_str_eq(a->properties, b->properties));
	FUZZ_CHECK(a->force == b->force && a->latest == b->latest);
	FUZZ_CHECK(a->progress == b->progress && a->complete == b->complete);
	FUZZ_CHECK(a->success == b->success && a->has_success == b->has_success);
	FUZZ_CHECK(!strcmp(a->code, b->code) && !strcmp(a->error_reason, b->error_reason));
	FUZZ_CHECK(!strcmp(a->secure_key, b->secure_key));
	FUZZ_CHECK(a->offset == b->offset && a->length == b->length && a->crc32 == b->crc32);
	FUZZ_CHECK(a->data_len == b->data_len);
	FUZZ_CHECK(!a->data_len || !memcmp(a->data, b->data, a->data_len));
}

#endif
