/* SPDX-License-Identifier: MIT */
/* session.c - the live session registry; see session.h.
 * A chained hash table keyed by device id, chained through session->next so
 * binding never allocates per session. It doubles when the average chain
 * passes SESSION_LOAD; if that allocation fails it keeps working with
 * longer chains. "Bound" means in the table. Unbinding keeps device_id
 * (the core still needs it to mark the device offline); a displaced session
 * loses it, so nothing it does later can speak for the device.
 * Must not: own or free sessions, touch the store, call transports. */
#include "session.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SESSION_BUCKETS_MIN 64
#define SESSION_BUCKETS_MAX (1u << 20)
#define SESSION_LOAD 2              /* sessions per bucket before growing */

struct session_reg {
	struct session **buckets;
	size_t nbuckets;                /* a power of two */
	size_t count;
	uint64_t generation;            /* bumped by every bind and unbind */
};

/* FNV-1a. Devices choose their ids, so colliding ids can lengthen a chain;
 * that costs lookup time bounded by the number of connections, never memory. */
static size_t session_hash(const char *id)
{
	uint32_t h = 2166136261u;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h;
}

static struct session **session_slot(const struct session_reg *r, const char *id)
{
	return &r->buckets[session_hash(id) & (r->nbuckets - 1)];
}

int session_reg_new(struct session_reg **out)
{
	struct session_reg *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->buckets = calloc(SESSION_BUCKETS_MIN, sizeof(struct session *));   /* of pointers */
	if (!r->buckets) {
		free(r);
		return -ENOMEM;
	}
	r->nbuckets = SESSION_BUCKETS_MIN;
	*out = r;
	return 0;
}

void session_reg_free(struct session_reg *r)
{
	if (!r)
		return;
	free(r->buckets);
	free(r);
}

/* Doubles the table when it is crowded; on ENOMEM keeps the old one. */
static void session_grow(struct session_reg *r)
{
	struct session **old = r->buckets;
	size_t n = r->nbuckets;

	if (r->count < n * SESSION_LOAD || n >= SESSION_BUCKETS_MAX)
		return;
	r->buckets = calloc(n * 2, sizeof(struct session *));
	if (!r->buckets) {
		r->buckets = old;
		return;
	}
	r->nbuckets = n * 2;
	for (size_t i = 0; i < n; i++) {
		while (old[i]) {
			struct session *s = old[i];
			struct session **slot = session_slot(r, s->device_id);

			old[i] = s->next;
			s->next = *slot;
			*slot = s;
		}
	}
	free(old);
}

/* Unlinks s from the table; false when it was not bound. */
static bool session_unlink(struct session_reg *r, struct session *s)
{
	struct session **pp;

	if (!s->device_id[0])
		return false;
	for (pp = session_slot(r, s->device_id); *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			s->next = NULL;
			r->count--;
			return true;
		}
	}
	return false;
}

int session_reg_bind(struct session_reg *r, struct session *s, const char *device_id,
		     struct session **old)
{
	struct session *prev;

	if (old)
		*old = NULL;
	if (!util_id_valid(device_id))
		return -EINVAL;
	session_reg_unbind(r, s);          /* a session re-binding to another id */
	prev = session_reg_find(r, device_id);
	if (prev) {
		session_unlink(r, prev);
		prev->device_id[0] = '\0'; /* no longer speaks for the device */
		if (old)
			*old = prev;
	}
	session_grow(r);
	util_strlcpy(s->device_id, device_id, sizeof(s->device_id));
	s->next = *session_slot(r, device_id);
	*session_slot(r, device_id) = s;
	r->count++;
	r->generation++;
	return 0;
}

void session_reg_unbind(struct session_reg *r, struct session *s)
{
	if (s && session_unlink(r, s))
		r->generation++;
}

struct session *session_reg_find(struct session_reg *r, const char *device_id)
{
	struct session *s;

	if (!device_id || !device_id[0])
		return NULL;
	for (s = *session_slot(r, device_id); s; s = s->next)
		if (!strcmp(s->device_id, device_id))
			return s;
	return NULL;
}

size_t session_reg_count(const struct session_reg *r)
{
	return r->count;
}

size_t session_reg_count_by(const struct session_reg *r, const char *transport)
{
	size_t n = 0;

	for (size_t b = 0; b < r->nbuckets; b++)
		for (const struct session *s = r->buckets[b]; s; s = s->next)
			n += s->ops && s->ops->name && !strcmp(s->ops->name, transport);
	return n;
}

uint64_t session_reg_generation(const struct session_reg *r)
{
	return r->generation;
}
