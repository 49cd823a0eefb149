/* SPDX-License-Identifier: MIT */
/* live.h - the web console's live feed (subprotocol otagw-live.v1 at
 * /api/live, carried by loop.c's live channel): which records, tasks and
 * devices changed, coalesced per interval so that a thousand devices
 * reporting progress give the page one frame per interval, each record
 * at most once in it, read back from the store as committed.
 *   client: {"type":"auth","token":"..."}  (always first; token "" = none)
 *   server: {"type":"hello","version":V,"interval":MS} or close 4001/4000
 *           {"type":"records","items":[record JSON as in the REST API]}
 *           {"type":"tasks","items":[task JSON with counts]}
 *           {"type":"devices"}  (came, went or reported: reload the list)
 *           {"type":"resync"}   (fell behind: reload everything)
 * It watches the store (live_events, installed by main) and the session
 * registry's generation; nothing is tracked while no client is admitted.
 * Must not: touch sockets (loop.c does), change state. */
#ifndef OTAGW_LIVE_H
#define OTAGW_LIVE_H

#include <stddef.h>

#include "err.h"
#include "loop.h"
#include "session.h"
#include "store.h"

/* Above this many changed records in one interval, clients get resync. */
#define LIVE_DIRTY_MAX 4096

struct live;

struct live_cfg {
	const char *token;        /* borrowed; "" or NULL = no token needed */
	unsigned interval_ms;     /* between frames */
};

/* Registers the channel with l and starts the interval timer. l, st,
 * sessions and cfg->token are borrowed until live_free(). */
int live_new(struct live **out, struct loop *l, struct store *st,
	     struct session_reg *sessions, const struct live_cfg *cfg) OTAGW_MUST_CHECK;
/* Stops the timer; call before the loop goes. NULL: no-op. */
void live_free(struct live *lv);

/* The store observer (arg: the struct live). */
extern const struct store_events live_events;

/* Builds and sends what changed since the last call (the timer calls it;
 * tests may too). 0, or -ENOMEM. */
int live_flush(struct live *lv) OTAGW_MUST_CHECK;

#endif
