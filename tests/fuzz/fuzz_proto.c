/* SPDX-License-Identifier: MIT */
/* fuzz_proto.c - the northbound decoder (northbound/proto.h proto_decode()):
 * one downstream WebSocket frame from the cloud.
 * Feeds: the input as the frame's bytes (no NUL after them).
 * Asserts beyond no crash and no leak:
 *  - the result is 0 or one of the documented errors, with a reason; on
 *    error the frame owns nothing (no body, ids or child strings), keeps
 *    its type (in range) and a messageId only when it is a valid id, and
 *    proto_down_wants_reply() answers only frames with a messageId;
 *  - a decoded frame keeps its type's promises: ids valid, commands carry
 *    a messageId, ack/seq within 2^53 - 1, ERROR has a code, FIRMWARE_UPSERT
 *    and TASK_CREATE hand over an object whose id is the one decoded (and no
 *    firmwareId in a task), TASK_PUBLISH has either all or 1..10000 valid
 *    ids, CHILD holds an UPGRADE_FIRMWARE for childDeviceId with firmwareId,
 *    version and an http(s) url, timeoutSeconds within 30 days;
 *  - the CHILD message re-encodes with msg_json and decodes to the same
 *    message; a REPLY to any decoded command encodes and is JSON. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_common.h"
#include "fuzz_msg.h"
#include "msg_json.h"
#include "proto.h"
#include "util.h"

static bool remote_url(const char *u)
{
	return !strncasecmp(u, "http://", 7) || !strncasecmp(u, "https://", 8);
}

static void check_failed(int rc, const struct proto_down *d, const struct err_info *e)
{
	FUZZ_CHECK(rc == -EMSGSIZE || rc == -EBADMSG || rc == -E2BIG || rc == -ENOTSUP ||
		   rc == -ENOMEM);
	FUZZ_CHECK(e->code == rc && e->text[0]);
	FUZZ_CHECK(!d->body && !d->device_ids && !d->n_device_ids);
	FUZZ_CHECK(!d->child.data && !d->child.properties && !d->child.parameters);
	FUZZ_CHECK((unsigned)d->type < PROTO_DOWN_TYPE_COUNT);
	FUZZ_STR_OK(d->message_id);
	FUZZ_CHECK(!d->message_id[0] || util_id_valid(d->message_id));
	if (proto_down_wants_reply(rc, d))
		FUZZ_CHECK(d->message_id[0]);
	FUZZ_CHECK(proto_reply_code(rc) && proto_error_code(rc, d->type));
}

static void check_body_id(const cJSON *body, const char *id)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(body, "id");

	FUZZ_CHECK(cJSON_IsObject(body));
	FUZZ_CHECK(cJSON_IsString(it) && !strcmp(it->valuestring, id));
}

static void check_child(const struct proto_down *d)
{
	const struct msg *m = &d->child;
	struct err_info e = { 0 };
	struct msg back;
	char *text = NULL;
	size_t n = 0;

	fuzz_msg_sane(m);
	FUZZ_CHECK(m->type == MSG_UPGRADE_FIRMWARE);
	FUZZ_CHECK(util_id_valid(m->device_id));
	FUZZ_CHECK(util_id_valid(m->firmware_id) && m->version[0] && remote_url(m->url));
	FUZZ_CHECK(util_id_valid(m->message_id));
	FUZZ_CHECK(d->timeout_seconds >= 0 && d->timeout_seconds <= OTAGW_TIMEOUT_MAX);
	FUZZ_CHECK(!d->gateway_id[0] || util_id_valid(d->gateway_id));
	FUZZ_CHECK(msg_json_encode(m, &text, &n) == 0);
	FUZZ_CHECK(msg_json_decode((const uint8_t *)text, n, &back, &e) == 0);
	fuzz_msg_same(m, &back);
	msg_clear(&back);
	free(text);
}

static void check_reply(const struct proto_down *d)
{
	struct proto_reply r = { .message_id = d->message_id, .reply_to = d->type,
				 .success = true };
	char *out = NULL;
	size_t n = 0;
	cJSON *j;

	FUZZ_CHECK(proto_enc_reply(1, 1, &r, &out, &n) == 0);
	j = cJSON_ParseWithLength(out, n);
	FUZZ_CHECK(cJSON_IsObject(j));
	cJSON_Delete(j);
	free(out);
}

static void check_decoded(const struct proto_down *d)
{
	FUZZ_CHECK(d->type > PROTO_DOWN_UNKNOWN && d->type < PROTO_DOWN_TYPE_COUNT);
	FUZZ_STR_OK(d->message_id);
	FUZZ_CHECK(!d->message_id[0] || util_id_valid(d->message_id));
	FUZZ_CHECK(d->timestamp >= 0 && (uint64_t)d->timestamp <= PROTO_INT_MAX);
	if (proto_down_is_command(d->type)) {
		FUZZ_CHECK(d->message_id[0]);
		check_reply(d);
	}
	switch (d->type) {
	case PROTO_DOWN_HELLO_ACK:
	case PROTO_DOWN_ACK:
		FUZZ_CHECK(d->ack <= PROTO_INT_MAX);
		break;
	case PROTO_DOWN_ERROR:
		FUZZ_STR_OK(d->code);
		FUZZ_STR_OK(d->message);
		FUZZ_CHECK(d->code[0] && d->seq <= PROTO_INT_MAX);
		break;
	case PROTO_DOWN_FIRMWARE_UPSERT: {
		const cJSON *url = cJSON_GetObjectItemCaseSensitive(d->body, "url");

		FUZZ_CHECK(util_id_valid(d->firmware_id));
		check_body_id(d->body, d->firmware_id);
		FUZZ_CHECK(!cJSON_IsString(url) || remote_url(url->valuestring));
		break;
	}
	case PROTO_DOWN_FIRMWARE_DELETE:
		FUZZ_CHECK(util_id_valid(d->firmware_id));
		break;
	case PROTO_DOWN_TASK_CREATE:
		FUZZ_CHECK(util_id_valid(d->task_id) && util_id_valid(d->firmware_id));
		check_body_id(d->body, d->task_id);
		FUZZ_CHECK(!cJSON_GetObjectItemCaseSensitive(d->body, "firmwareId"));
		break;
	case PROTO_DOWN_TASK_PUBLISH:
		FUZZ_CHECK(util_id_valid(d->task_id));
		FUZZ_CHECK(d->all == !d->device_ids);
		FUZZ_CHECK(d->all ? !d->n_device_ids :
				    d->n_device_ids >= 1 && d->n_device_ids <= PROTO_DEVICE_IDS_MAX);
		for (size_t i = 0; i < d->n_device_ids; i++)
			FUZZ_CHECK(util_id_valid(d->device_ids[i]));
		break;
	case PROTO_DOWN_TASK_CANCEL:
		FUZZ_CHECK(util_id_valid(d->task_id));
		break;
	case PROTO_DOWN_CHILD_UPGRADE:
		check_child(d);
		break;
	case PROTO_DOWN_UNKNOWN:
	case PROTO_DOWN_TYPE_COUNT:
		break;
	}
	if (d->type != PROTO_DOWN_FIRMWARE_UPSERT && d->type != PROTO_DOWN_TASK_CREATE)
		FUZZ_CHECK(!d->body);
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
	struct err_info e = { 0 };
	struct proto_down d;
	int rc = proto_decode(buf, len, &d, &e);

	if (rc)
		check_failed(rc, &d, &e);
	else
		check_decoded(&d);
	proto_down_clear(&d);
	return 0;
}
