/* SPDX-License-Identifier: MIT */
/* session.h - the contract between the core and transports, and the live
 * registry of which device is connected where.
 * A transport embeds struct session in its connection state (container_of)
 * and registers it once it knows the device id; it unregisters before
 * freeing. The registry never owns sessions.
 * Must not: touch the store, or call into a transport outside ops. */
#ifndef OTAGW_SESSION_H
#define OTAGW_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdint.h>

#include "err.h"
#include "otagw_limits.h"

struct msg;
struct session;

struct transport_ops {
	const char *name;   /* "tcp", "http", "serial"; shown as device.transport */
	/* Queues m for the device. Runs on the loop; must not block or call back
	 * into the core. 0 = accepted for sending, -ENOBUFS queue full,
	 * -ENOTCONN gone. m is borrowed for the call: copy what you keep. */
	int (*send)(struct session *s, const struct msg *m);
	/* Optional: asks the transport to drop the connection (later, from the
	 * loop; must not free s synchronously). */
	void (*close)(struct session *s);
	/* Optional: writes the url this transport's devices fetch firmware_id
	 * from (e.g. "chunk:<id>") into buf[cap]; without it the firmware's own
	 * url is given. 0, or -ENAMETOOLONG. */
	int (*image_url)(struct session *s, const char *firmware_id, char *buf, size_t cap);
};

struct session {
	const struct transport_ops *ops;
	char device_id[OTAGW_ID_MAX];     /* "" until bound */
	char product_id[OTAGW_ID_MAX];    /* "" when the transport cannot tell */
	struct session *next;             /* private to the registry */
	unsigned max_chunk;               /* bytes per in-band chunk; 0 = no chunks */
	/* Private to the core: in-band fetch progress of this connection. */
	bool reports_progress;            /* the device sent progress itself */
	char fetch_fw[OTAGW_ID_MAX];      /* firmware being fetched */
	uint64_t fetch_contig;            /* bytes fetched contiguously from 0 */
};

struct session_reg;

int session_reg_new(struct session_reg **out) OTAGW_MUST_CHECK;
void session_reg_free(struct session_reg *r);   /* sessions are not freed */
/* Binds s to device_id. A previous session of the same device is displaced
 * (returned in *old, or NULL) so its transport can close it. -EINVAL bad id. */
int session_reg_bind(struct session_reg *r, struct session *s, const char *device_id,
		     struct session **old) OTAGW_MUST_CHECK;
/* Removes s if registered. Safe to call twice. */
void session_reg_unbind(struct session_reg *r, struct session *s);
/* The session of device_id, or NULL. Borrowed until it unbinds. */
struct session *session_reg_find(struct session_reg *r, const char *device_id);
size_t session_reg_count(const struct session_reg *r);
/* Bound sessions whose transport is named transport ("tcp"); walks them all. */
size_t session_reg_count_by(const struct session_reg *r, const char *transport);
/* Changes with every bind and unbind: who is online may have changed. */
uint64_t session_reg_generation(const struct session_reg *r);

#endif
