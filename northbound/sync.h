/* SPDX-License-Identifier: MIT */
/* sync.h - applies the cloud's downstream commands (northbound/PROTOCOL.md
 * 6.4-6.9) through the same catalogue, task, core and state-machine code as
 * the REST API, marks what the cloud creates as the cloud's, refuses to
 * touch what was made locally, prefetches the images tasks need, and
 * answers every command with one REPLY (same messageId) through the outbox.
 * Commands are idempotent as PROTOCOL.md 7.1 describes.
 * Must not: touch sockets, or decide record state itself (the core and
 * records.c do). */
#ifndef OTAGW_SYNC_H
#define OTAGW_SYNC_H

#include "core.h"
#include "outbox.h"
#include "proto.h"

struct images;

struct sync {
	struct core *core;          /* borrowed; its store and images are used */
	struct outbox *ob;          /* borrowed */
	const char *gateway_id;     /* borrowed */
};

/* Applies command d (proto_down_is_command(d->type)) and queues its REPLY.
 * Returns 0 when the REPLY was queued (whatever it says), or the error that
 * kept it from being queued (the cloud will resend the command). */
int sync_apply(struct sync *s, const struct proto_down *d) OTAGW_MUST_CHECK;

/* Queues the REPLY for a command that could not be decoded (rc from
 * proto_decode, d->message_id valid): "invalid" / "unsupported". */
int sync_refuse(struct sync *s, const struct proto_down *d, int rc,
		const struct err_info *e) OTAGW_MUST_CHECK;

#endif
