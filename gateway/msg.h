/* SPDX-License-Identifier: MIT */
/* msg.h - the JetLinks firmware messages as one C struct (see
 * shared/jetlinks-firmware.md). Every transport decodes into struct msg and
 * encodes from it; the core reads and writes nothing else.
 * Ownership: a struct msg owns its heap strings (properties, parameters);
 * msg_clear() frees them. Fixed arrays are always NUL-terminated.
 * Must not: parse bytes (that is msg_json / other codecs), touch the store. */
#ifndef OTAGW_MSG_H
#define OTAGW_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"      /* OTAGW_MUST_CHECK */
#include "otagw_limits.h"

enum msg_type {
	MSG_REPORT_FIRMWARE,          /* up: version, properties */
	MSG_REQUEST_FIRMWARE,         /* up: currentVersion, requestVersion, headers.force/latest */
	MSG_REQUEST_FIRMWARE_REPLY,   /* down: firmware fields + success/code/message */
	MSG_UPGRADE_FIRMWARE,         /* down: firmware fields (push), no success */
	MSG_UPGRADE_FIRMWARE_REPLY,   /* up: success/code/message */
	MSG_UPGRADE_FIRMWARE_PROGRESS, /* up: progress, complete, version, success, errorReason, firmwareId */
	MSG_READ_FIRMWARE,            /* down: nothing */
	MSG_READ_FIRMWARE_REPLY,      /* up: version, properties, success */
	/* otagw extensions (not JetLinks): in-band image delivery and errors */
	MSG_REQUEST_FIRMWARE_CHUNK,   /* up: firmwareId, offset, length */
	MSG_REQUEST_FIRMWARE_CHUNK_REPLY, /* down: firmwareId, offset, length, crc32, data
					   * + success/code/message */
	MSG_ERROR,                    /* down: code, message (the refused message's messageId) */
	MSG_TYPE_COUNT
};

struct msg {
	enum msg_type type;
	/* common envelope */
	char device_id[OTAGW_ID_MAX];
	char message_id[OTAGW_ID_MAX];
	int64_t timestamp;                 /* ms; 0 when absent (decoders) */
	/* Not in JetLinks' JSON body: set by a transport that knows the
	 * product (HTTP path, TCP login). Empty when unknown. */
	char product_id[OTAGW_ID_MAX];
	/* firmware fields */
	char firmware_id[OTAGW_ID_MAX];
	char version[OTAGW_VERSION_MAX];
	char current_version[OTAGW_VERSION_MAX];   /* REQUEST_FIRMWARE */
	char request_version[OTAGW_VERSION_MAX];   /* REQUEST_FIRMWARE, "" = newest */
	char url[OTAGW_URL_MAX];
	uint64_t size;                     /* bytes, 0 = unknown */
	char sign[OTAGW_SIGN_MAX];
	char sign_method[OTAGW_SIGN_METHOD_MAX];
	char *parameters;                  /* JSON object text or NULL; owned */
	char *properties;                  /* JSON object text or NULL; owned */
	/* REQUEST_FIRMWARE headers */
	bool force;
	bool latest;
	/* progress */
	int progress;                      /* 0-100 */
	bool complete;
	/* replies and progress: success, code, message/errorReason */
	bool success;
	bool has_success;                  /* the key was present (decoders) */
	char code[OTAGW_CODE_MAX];
	char error_reason[OTAGW_REASON_MAX]; /* errorReason, or `message` on replies */
	uint32_t retry_after;              /* s; failed replies "not_yet": ask again then */
	/* headers.secureKey (first message with [tcp] auth = token) and
	 * headers.productId (as JetLinks carries it) are read into
	 * secure_key and product_id; secure_key is never encoded. */
	char secure_key[OTAGW_KEY_MAX];
	/* chunks: offset and length in bytes of the image; data owned, data_len
	 * bytes (JSON: base64 "data"); crc32 (IEEE, zlib's) of data. */
	uint64_t offset;
	uint32_t length;
	uint32_t crc32;
	uint8_t *data;
	size_t data_len;
};

/* Zeroes m and sets its type. m may be uninitialised. */
void msg_init(struct msg *m, enum msg_type type);
/* Frees what m owns and zeroes it. NULL: no-op. */
void msg_clear(struct msg *m);
/* Replaces m->properties / m->parameters with a copy of json (NULL clears).
 * -ENOMEM on allocation failure. */
int msg_set_properties(struct msg *m, const char *json) OTAGW_MUST_CHECK;
int msg_set_parameters(struct msg *m, const char *json) OTAGW_MUST_CHECK;
/* Replaces m->data with a copy of p[0..n) and sets m->data_len = n (n == 0:
 * data becomes NULL). length and crc32 are not touched. -ENOMEM. */
int msg_set_data(struct msg *m, const void *p, size_t n) OTAGW_MUST_CHECK;

/* "REPORT_FIRMWARE" ... ; NULL for an out-of-range type. */
const char *msg_type_name(enum msg_type t);
/* Case-insensitive lookup of a messageType name; -EINVAL when unknown. */
int msg_type_parse(const char *name, enum msg_type *out) OTAGW_MUST_CHECK;

#endif
