/* SPDX-License-Identifier: MIT */
/* core.h - the message core: a decoded JetLinks message from any transport
 * in, state changes and replies out. It is the only place that decides
 * *when* a record moves (records.c checks *whether* it may):
 *   REPORT_FIRMWARE / READ_FIRMWARE_REPLY: upsert the device's firmware
 *     info; reporting the target version of its processing record
 *     completes that record.
 *   REQUEST_FIRMWARE (pull): answer REQUEST_FIRMWARE_REPLY with the same
 *     messageId for the device's waiting/processing record (waiting moves
 *     to processing), or success=false, code "not_found". With
 *     headers.force any record matches, and a failed one (of a task not
 *     canceled) is retried: it moves back to processing.
 *   UPGRADE_FIRMWARE_PROGRESS: only for the device's processing record with
 *     the same version (and firmwareId when given).
 *   UPGRADE_FIRMWARE_REPLY: success=false fails the processing record.
 *   REQUEST_FIRMWARE_CHUNK (otagw): bytes of the image of the device's
 *     waiting/processing record, at most s->max_chunk, with their CRC-32;
 *     the highest contiguous offset fetched becomes the record's progress
 *     while the device reports none itself.
 * Pushes go out through the session registry when a push task is published
 * or a device with a pending push record comes online.
 * Must not: touch sockets (it calls session ops only), block. */
#ifndef OTAGW_CORE_H
#define OTAGW_CORE_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "msg.h"
#include "session.h"
#include "store.h"
#include "tasks.h"

struct images;

/* The transports counted apart in /metrics (by transport_ops.name). */
enum core_transport { CORE_TR_TCP, CORE_TR_HTTP, CORE_TR_SERIAL, CORE_TR_OTHER, CORE_TR_COUNT };
const char *core_transport_name(enum core_transport t);    /* "tcp" ... "other" */
enum core_transport core_transport_of(const char *name);   /* NULL: other */

/* Since start; read by /metrics. */
struct core_counters {
	uint64_t messages[CORE_TR_COUNT];     /* device messages handled */
	uint64_t rejected[CORE_TR_COUNT];     /* ... of them refused with an error */
	uint64_t image_bytes[CORE_TR_COUNT];  /* image bytes sent to devices */
};

struct core {
	struct store *st;                 /* borrowed */
	struct session_reg *sessions;     /* borrowed */
	struct images *images;            /* borrowed; NULL: no cache (no chunks) */
	struct core_counters counters;
};

/* Every transport calls this first thing when its connection is writeable,
 * before it sends anything: the changes made so far reach the disk first
 * (store_flush(): one group commit per loop pass, not one per message), so
 * no reply, push or upstream frame tells a peer of a change that a crash
 * could still undo. Cheap when nothing is pending. */
void core_sync(struct core *c);

/* A transport sent n bytes of an image to a device (HTTP GET, YMODEM);
 * in-band chunks are counted by the core itself. */
void core_count_served(struct core *c, const char *transport, uint64_t n);

/* images may be NULL (then no in-band image delivery, no prefetch). */
void core_init(struct core *c, struct store *st, struct session_reg *sessions,
	       struct images *images);

/* Handles one message from session s (which carries the transport ops and,
 * once bound, the device id). Replies go out via s->ops->send before this
 * returns. -EPROTO for a down-direction type, -EINVAL when the message's
 * deviceId differs from the session's, -ENOENT / -OTAGW_ESTATE when a
 * progress or reply matches no processing record; e says why. in is
 * borrowed. */
int core_handle(struct core *c, struct session *s, const struct msg *in,
		struct err_info *e) OTAGW_MUST_CHECK;

/* Binds s to device_id (the deviceId of its first message): an unknown
 * device is created with s->product_id (-ENOENT when that is empty too),
 * the device is marked online, a pending push-mode record is pushed, and an
 * older session of the same device is asked to close. */
int core_session_bind(struct core *c, struct session *s, const char *device_id,
		      struct err_info *e) OTAGW_MUST_CHECK;
/* The transport's connection is gone: unbinds s and marks the device
 * offline. Safe for a session that never bound. */
void core_session_gone(struct core *c, struct session *s);
/* A device spoke through a connectionless transport (HTTP): creates it with
 * product_id when unknown, refreshes lastSeen and its transport. -EINVAL
 * when the device belongs to another product. */
int core_device_seen(struct core *c, const char *device_id, const char *product_id,
		     const char *transport, struct err_info *e) OTAGW_MUST_CHECK;
/* Checks a device's secret (first message with token auth): 0, or
 * -OTAGW_EAUTH for a wrong/missing secret or a device without one or an
 * unknown device. */
int core_authenticate(struct core *c, const char *device_id, const char *secret) OTAGW_MUST_CHECK;

/* Publishes a task (tasks_publish) and, for a push task, sends
 * UPGRADE_FIRMWARE to every online target; res->pushed counts them. */
struct core_publish_result {
	struct task_publish_result rec;
	int pushed;
};
int core_publish(struct core *c, const char *task_id, bool all, const char *const *ids,
		 size_t n, struct core_publish_result *res, struct err_info *e) OTAGW_MUST_CHECK;
/* Sends UPGRADE_FIRMWARE for a push task's waiting records whose devices
 * are online (after records were added outside core_publish, e.g. by a
 * bundle import). *pushed (optional) counts them. */
int core_push_task(struct core *c, const char *task_id, int *pushed) OTAGW_MUST_CHECK;
/* For images_on_ready() (arg is the core): pushes the waiting records of
 * push tasks of firmware_id to their online devices. Pushes wait for the
 * image to be cached: devices only get the gateway's own URL. */
void core_image_ready(void *arg, const char *firmware_id);
/* Cancels a task and its unfinished records. */
int core_cancel_task(struct core *c, const char *task_id, int *n,
		     struct err_info *e) OTAGW_MUST_CHECK;
/* Deletes a device: its unfinished records become canceled ("device
 * deleted"), its row goes, a live session is asked to close. */
int core_delete_device(struct core *c, const char *device_id, struct err_info *e) OTAGW_MUST_CHECK;
/* Bytes [0, end) of firmware_id's image (size bytes) went out to
 * device_id over a connectionless transport (HTTP GET with Range): the
 * device's processing record of that firmware rises to end/size percent
 * (at most 99: only the device can say it is done), never down. The
 * transport calls this only while the device reports no progress itself.
 * 0, or -ENOENT when no such record is processing. */
int core_image_served(struct core *c, const char *device_id, const char *firmware_id,
		      uint64_t end, uint64_t size);
/* The transport gave up delivering firmware_id's image to device_id
 * (YMODEM retries exhausted, receiver cancelled, port gone): its processing
 * record of that firmware fails with reason. 0, or -ENOENT when none. The
 * device may retry with a REQUEST_FIRMWARE carrying headers.force. */
int core_delivery_failed(struct core *c, const char *device_id, const char *firmware_id,
			 const char *reason);
/* Loop timer: fails processing records past their timeout. *n = count. */
int core_tick(struct core *c, int64_t now_ms, int *n) OTAGW_MUST_CHECK;

#endif
