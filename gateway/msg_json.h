/* SPDX-License-Identifier: MIT */
/* msg_json.h - the JetLinks JSON codec for struct msg (cJSON).
 * Field names and messageType values exactly as JetLinks uses them; accepts
 * the seed's `timestampe` as an alias of `timestamp` and `message` as an
 * alias of `errorReason` (on progress) ; ignores unknown keys; rejects
 * malformed, wrongly typed or oversized input naming the field.
 * Must not: keep state between calls, touch the store or sockets. */
#ifndef OTAGW_MSG_JSON_H
#define OTAGW_MSG_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "msg.h"

/* Decodes one JSON object of len bytes (no NUL needed; len > OTAGW_MSG_MAX is
 * -EMSGSIZE) into m, which is initialised here and owned by the caller
 * afterwards (msg_clear). messageType is required. On error m is cleared and
 * e says why: -EBADMSG malformed/wrong type/missing field, -EMSGSIZE. */
int msg_json_decode(const uint8_t *buf, size_t len, struct msg *m, struct err_info *e) OTAGW_MUST_CHECK;

/* As msg_json_decode(), for channels where the type and the device are
 * known from outside (an HTTP path, a topic): messageType and deviceId may
 * be absent (type and device_id are used) and, when present, must equal
 * them (else -EBADMSG). device_id NULL: deviceId as usual. */
int msg_json_decode_as(const uint8_t *buf, size_t len, enum msg_type type,
		       const char *device_id, struct msg *m, struct err_info *e) OTAGW_MUST_CHECK;

/* Encodes m as one compact JSON object (no newline). On 0, *out is a
 * NUL-terminated string the caller frees with free() and *out_len its length.
 * Fields that do not belong to m->type are not written. */
int msg_json_encode(const struct msg *m, char **out, size_t *out_len) OTAGW_MUST_CHECK;

#endif
