/* SPDX-License-Identifier: MIT */
/* proto.h - the northbound wire codec of northbound/PROTOCOL.md (subprotocol
 * otagw-cloud.v1): one downstream frame from the cloud into struct
 * proto_down, and each upstream frame from plain structs into compact JSON.
 * Downstream bytes are untrusted: bounded by PROTO_FRAME_MAX, checked with
 * json_in_strict() and a nesting cap before cJSON sees them, every key
 * allow-listed and every field type-checked; ids pass util_id_valid(); the
 * child's UPGRADE_FIRMWARE goes through msg_json, so it is validated exactly
 * like a device's message.
 * Must not: open sockets, touch SQLite, log, keep state between calls, read
 * the clock except where a timestamp of 0 asks for "now", or let a
 * cloud-supplied string become a path (ids are checked; urls stay data). */
#ifndef OTAGW_PROTO_H
#define OTAGW_PROTO_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "msg.h"
#include "otagw_limits.h"
#include "records.h"

#define PROTO_SUBPROTOCOL "otagw-cloud.v1"
#define PROTO_VERSION 1
#define PROTO_FRAME_MAX (1024 * 1024)        /* bytes of one frame, either way */
#define PROTO_DEPTH_MAX 32                   /* JSON nesting of a downstream frame */
#define PROTO_INT_MAX ((UINT64_C(1) << 53) - 1) /* every number on the wire */
#define PROTO_DEVICE_IDS_MAX OTAGW_PUBLISH_IDS_MAX /* TASK_PUBLISH deviceIds */
#define PROTO_BATCH_MAX 1000                 /* items in one PROGRESS_BATCH */
#define PROTO_WINDOW 64                      /* unacked upstream frames in flight */
#define PROTO_HELLO_TIMEOUT_MS 10000
#define PROTO_ACK_TIMEOUT_MS 30000
#define PROTO_PING_INTERVAL_MS 30000
#define PROTO_PONG_TIMEOUT_MS 10000
#define PROTO_ERRORS_PER_S 10                /* unsequenced ERROR frames, upstream */

/* WebSocket close codes (PROTOCOL.md 8.3) beyond RFC 6455's 1000/1003/1009. */
enum proto_close {
	PROTO_CLOSE_UNAUTHORIZED = 4001,
	PROTO_CLOSE_PROTOCOL = 4002,
	PROTO_CLOSE_SUPERSEDED = 4003,
	PROTO_CLOSE_ACK_TIMEOUT = 4004,
	PROTO_CLOSE_HELLO_TIMEOUT = 4005,
};

/* ---- downstream ---------------------------------------------------------- */

enum proto_down_type {
	PROTO_DOWN_UNKNOWN,             /* decoding failed before the type was known */
	PROTO_DOWN_HELLO_ACK,           /* ack (= ackSeq) */
	PROTO_DOWN_ACK,                 /* ack */
	PROTO_DOWN_ERROR,               /* code, message, seq, message_id (all but code optional) */
	PROTO_DOWN_FIRMWARE_UPSERT,     /* firmware_id, body = the firmware object */
	PROTO_DOWN_FIRMWARE_DELETE,     /* firmware_id */
	PROTO_DOWN_TASK_CREATE,         /* task_id, firmware_id, body = task without firmwareId */
	PROTO_DOWN_TASK_PUBLISH,        /* task_id, all | device_ids */
	PROTO_DOWN_TASK_CANCEL,         /* task_id */
	PROTO_DOWN_CHILD_UPGRADE,       /* CHILD + UPGRADE_FIRMWARE: gateway_id, child,
					 * timeout_seconds */
	PROTO_DOWN_TYPE_COUNT
};

/* One decoded downstream frame. Owns body, device_ids and child's strings;
 * proto_down_clear() frees them. Fixed arrays are NUL-terminated, "" when
 * absent. */
struct proto_down {
	enum proto_down_type type;
	char message_id[OTAGW_ID_MAX];  /* required on commands (FIRMWARE_*, TASK_*, CHILD) */
	int64_t timestamp;              /* ms, informational; 0 when absent */
	uint64_t ack;                   /* HELLO_ACK ackSeq, ACK ack: 0..PROTO_INT_MAX */
	uint64_t seq;                   /* ERROR: the upstream seq it is about; 0 none */
	char code[OTAGW_CODE_MAX];      /* ERROR */
	char message[OTAGW_REASON_MAX]; /* ERROR */
	char firmware_id[OTAGW_ID_MAX];
	char task_id[OTAGW_ID_MAX];
	/* FIRMWARE_UPSERT: the `firmware` object as sent (its id checked, a
	 * string url checked to be http(s)://, the rest is
	 * catalogue_create/update's to validate). TASK_CREATE: the
	 * `task` object minus firmwareId, ready for tasks_create(). */
	cJSON *body;
	bool all;                       /* TASK_PUBLISH all:true */
	/* TASK_PUBLISH: n_device_ids (1..PROTO_DEVICE_IDS_MAX) valid ids, in the
	 * order sent, duplicates kept; one allocation holding pointers and
	 * strings. NULL when all. */
	char **device_ids;
	size_t n_device_ids;
	char gateway_id[OTAGW_ID_MAX];  /* CHILD: the outer deviceId, "" when absent */
	int64_t timeout_seconds;        /* CHILD: 0..OTAGW_TIMEOUT_MAX, 0 = none */
	/* CHILD: the UPGRADE_FIRMWARE, device_id = childDeviceId; firmware_id an
	 * id, version non-empty, url http(s)://; message_id the inner one or
	 * else the outer. */
	struct msg child;
};
/* The caller checks what needs state: a CHILD's gateway_id (when given)
 * against its own id, ids against the store. */

/* Decodes one downstream frame of len bytes (no NUL needed) into out, which
 * is initialised here and owned by the caller afterwards (proto_down_clear()).
 * Errors, with a detail in e naming the field:
 *   -EMSGSIZE  len > PROTO_FRAME_MAX
 *   -EBADMSG   not strict JSON, not an object, deeper than PROTO_DEPTH_MAX,
 *              messageType missing or not a string, messageId not an id,
 *              a missing, mistyped, out-of-range, unknown or duplicate field
 *   -E2BIG     deviceIds longer than PROTO_DEVICE_IDS_MAX
 *   -ENOTSUP   unknown messageType, or a CHILD whose message is not
 *              UPGRADE_FIRMWARE
 *   -ENOMEM, -EINVAL (out NULL, or buf NULL with len > 0)
 * On error out owns nothing but keeps type (PROTO_DOWN_UNKNOWN when it was
 * not recognised) and message_id (when the frame had a valid one), so the
 * caller can answer REPLY or ERROR (proto_reply_code, proto_error_code). */
int proto_decode(const uint8_t *buf, size_t len, struct proto_down *out,
		 struct err_info *e) OTAGW_MUST_CHECK;

/* Frees what d owns and zeroes it. NULL: no-op. */
void proto_down_clear(struct proto_down *d);

/* "HELLO_ACK", ..., "CHILD" for PROTO_DOWN_CHILD_UPGRADE; NULL for
 * PROTO_DOWN_UNKNOWN and out of range. Static strings. */
const char *proto_down_type_name(enum proto_down_type t);

/* True for the types answered with REPLY (they carry a messageId). */
bool proto_down_is_command(enum proto_down_type t);

/* After proto_decode() returned rc (0 or an error) for d: true when the
 * frame is answered with a REPLY (a command, or an unknown type, with a
 * valid messageId), false when a failure is answered with ERROR and a
 * success with nothing (HELLO_ACK, ACK, ERROR). -EMSGSIZE is neither. */
bool proto_down_wants_reply(int rc, const struct proto_down *d);

/* The REPLY `code` for a failure (PROTOCOL.md 7.2): -EINVAL/-EBADMSG/-E2BIG/
 * -EMSGSIZE/-ERANGE "invalid", -ENOENT "not_found", -EEXIST/-OTAGW_ESTATE/
 * -EPERM/-EACCES "conflict", -EBUSY "busy", -ENOTSUP "unsupported", anything
 * else "internal". Static strings. */
const char *proto_reply_code(int err);

/* The upstream ERROR `code` for a frame proto_decode() refused with err and
 * could not be replied to: "malformed" when the type is unknown, else
 * "invalid". Static strings. (-EMSGSIZE is not answered: the caller closes
 * with 1009, PROTOCOL.md 8.1.) */
const char *proto_error_code(int err, enum proto_down_type type);

/* ---- upstream -------------------------------------------------------------
 * Every encoder writes one frame as compact JSON: on 0, *out is a
 * NUL-terminated malloc'ed string the caller frees with free(), *out_len its
 * length; on error *out is NULL. Inputs are borrowed for the call.
 * seq: 1..PROTO_INT_MAX (the outbox assigns it). timestamp: ms, 0 = now.
 * -EINVAL for an input that breaks PROTOCOL.md (bad id, seq 0, progress out
 * of 0..100, code missing on a failed reply ...), -EMSGSIZE when the frame
 * would exceed PROTO_FRAME_MAX, -ENOMEM. */

struct proto_hello {
	const char *gateway_id;         /* id */
	const char *version;            /* otagw version, 1..64 bytes */
	uint64_t last_seq;              /* highest seq ever assigned, 0 none */
	int64_t timestamp;              /* ms, 0 = now */
};

/* GATEWAY_HELLO (not sequenced). */
int proto_enc_hello(const struct proto_hello *h, char **out, size_t *out_len) OTAGW_MUST_CHECK;

/* CHILD: m (any type msg_json encodes; m->device_id a valid id) wrapped for
 * gateway_id as JetLinks' ChildDeviceMessage. */
int proto_enc_child(uint64_t seq, int64_t timestamp, const char *gateway_id,
		    const struct msg *m, char **out, size_t *out_len) OTAGW_MUST_CHECK;

struct proto_record_state {
	const char *task_id, *record_id, *device_id, *firmware_id; /* ids */
	const char *version;            /* target version, 1..64 bytes */
	bool created;                   /* a new record: no `from` */
	enum record_state from, to;
	int progress;                   /* 0..100 */
	const char *error_reason;       /* NULL or "": omitted; <= 1024 bytes */
	int64_t time;                   /* ms of the change, 0 = now */
};

/* RECORD_STATE. */
int proto_enc_record_state(uint64_t seq, int64_t timestamp, const struct proto_record_state *r,
			   char **out, size_t *out_len) OTAGW_MUST_CHECK;

/* A rollout decision (rollout.h): event is one of published, hold, open,
 * wave, paused, resumed, aborted. */
struct proto_task_event {
	const char *task_id;            /* id */
	const char *event;              /* 1..16 bytes */
	int wave;                       /* 1-based */
	const char *reason;             /* NULL or "": omitted; <= 1024 bytes */
	int64_t time;                   /* ms, 0 = now */
};

/* TASK_EVENT. */
int proto_enc_task_event(uint64_t seq, int64_t timestamp, const struct proto_task_event *ev,
			 char **out, size_t *out_len) OTAGW_MUST_CHECK;

struct proto_progress_item {
	const char *device_id;          /* id */
	int progress;                   /* 0..100 */
	int64_t time;                   /* ms of the latest value, 0 = now */
};

struct proto_progress_batch {
	const char *task_id;            /* id */
	const struct proto_progress_item *items; /* n_items, 0..PROTO_BATCH_MAX */
	size_t n_items;
	int64_t counts[REC_STATE_COUNT]; /* records per state, each >= 0 */
};

/* PROGRESS_BATCH; more than PROTO_BATCH_MAX items is -E2BIG (split them). */
int proto_enc_progress(uint64_t seq, int64_t timestamp, const struct proto_progress_batch *b,
		       char **out, size_t *out_len) OTAGW_MUST_CHECK;

struct proto_online {
	const char *transport;          /* "tcp", "serial:ttyUSB0": 1..16 bytes */
	uint64_t count;                 /* connected child devices */
};

struct proto_status {
	const char *version;            /* otagw version */
	uint64_t uptime;                /* s */
	const struct proto_online *online; /* n_online entries, names distinct */
	size_t n_online;
	uint64_t devices;               /* child devices known */
	uint64_t cache_used, cache_quota; /* bytes; quota 0 = none */
	uint64_t cache_images;
	uint64_t outbox;                /* sequenced frames waiting for an ack */
};

/* GATEWAY_STATUS. */
int proto_enc_status(uint64_t seq, int64_t timestamp, const struct proto_status *s,
		     char **out, size_t *out_len) OTAGW_MUST_CHECK;

struct proto_reply {
	const char *message_id;         /* the command's, an id */
	enum proto_down_type reply_to;  /* PROTO_DOWN_UNKNOWN: `replyTo` omitted */
	bool success;
	const char *code;               /* failure: required, 1..64 bytes */
	const char *message;            /* failure: NULL or <= 1024 bytes */
	const cJSON *result;            /* success: an object or NULL ({}); copied */
};

/* REPLY. */
int proto_enc_reply(uint64_t seq, int64_t timestamp, const struct proto_reply *r,
		    char **out, size_t *out_len) OTAGW_MUST_CHECK;

/* ERROR (not sequenced): code 1..64 bytes, message NULL or <= 1024 bytes,
 * message_id NULL/"" (omitted) or an id. */
int proto_enc_error(int64_t timestamp, const char *code, const char *message,
		    const char *message_id, char **out, size_t *out_len) OTAGW_MUST_CHECK;

/* Rewrites the `seq` of one sequenced upstream frame (ours, from the
 * outbox) to seq, keeping everything else (PROTOCOL.md 4.6). Same ownership
 * as the encoders. -EINVAL when frame is not a JSON object with a seq. */
int proto_set_seq(const char *frame, size_t len, uint64_t seq, char **out,
		  size_t *out_len) OTAGW_MUST_CHECK;

#endif
