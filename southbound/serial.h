/* SPDX-License-Identifier: MIT */
/* serial.h - serial ports ([serial NAME]) as device lines in the one loop.
 * Each port is opened non-blocking with termios in raw mode (baud, data
 * bits, parity, stop bits, flow control, RS-485) and adopted into the lws
 * loop as a raw file. A port that cannot be opened or vanishes (USB
 * unplugged, pty closed) is retried with capped exponential backoff.
 *
 * On the line: one JetLinks JSON message per line (codec_jsonline). The
 * first message's deviceId binds the port to that device (one device per
 * port at a time; a different deviceId later rebinds). Images go by YMODEM:
 * replies and pushes carry the url "ymodem:<firmwareId>"; the device's next
 * 'C' at a line start starts the YMODEM-1K sender (ymodem.h) with the
 * cached image, and every byte of the line belongs to the transfer until it
 * ends. Acknowledged blocks become the record's progress in 10 % steps
 * (core_image_served) until the device reports its own; a failed transfer
 * fails the record (core_delivery_failed) with an errorReason "ymodem: ...".
 *
 * Must not: touch the store (all state goes through the core), block, or
 * write to a port outside its WRITEABLE callback. */
#ifndef OTAGW_SERIAL_H
#define OTAGW_SERIAL_H

#include <libwebsockets.h>
#include <stddef.h>

#include "config.h"
#include "core.h"
#include "err.h"

struct serial;

/* Opens every port of ports[0..n) (those that fail are retried from the
 * loop, not an error here). core and ctx are borrowed until serial_free().
 * On 0, *out is the caller's. -ENOMEM, or -EINVAL when the vhost cannot be
 * made. */
int serial_new(struct serial **out, struct core *core, struct lws_context *ctx,
	       const struct config_serial *ports, size_t n, struct err_info *e) OTAGW_MUST_CHECK;
/* The daemon is stopping: no more reopens or timers, and transfers that
 * end from now on (the loop closing the ports) do not fail their records.
 * Call before the lws context is destroyed. NULL: no-op. */
void serial_stop(struct serial *s);
/* Frees what is left; call after the lws context is destroyed (which has
 * closed every port and taken their devices offline). NULL: no-op. */
void serial_free(struct serial *s);
/* GET /api/serial: {"ports":[{name, path, state, error, deviceId, reopens,
 * transfer, rxLines, badLines, transfersOk, transfersFailed}]}. A new
 * cJSON object (returned as void * for api_add_status), NULL on ENOMEM. */
void *serial_status(void *s);

#endif
