/* SPDX-License-Identifier: MIT */
/* msg.c - lifetime of struct msg and the messageType name table; see msg.h.
 * Must not: parse or print JSON (msg_json.c does), log, touch the store. */
#include "msg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Indexed by enum msg_type; the names are JetLinks' MessageType constants. */
static const char *const msg_type_names[MSG_TYPE_COUNT] = {
	[MSG_REPORT_FIRMWARE] = "REPORT_FIRMWARE",
	[MSG_REQUEST_FIRMWARE] = "REQUEST_FIRMWARE",
	[MSG_REQUEST_FIRMWARE_REPLY] = "REQUEST_FIRMWARE_REPLY",
	[MSG_UPGRADE_FIRMWARE] = "UPGRADE_FIRMWARE",
	[MSG_UPGRADE_FIRMWARE_REPLY] = "UPGRADE_FIRMWARE_REPLY",
	[MSG_UPGRADE_FIRMWARE_PROGRESS] = "UPGRADE_FIRMWARE_PROGRESS",
	[MSG_READ_FIRMWARE] = "READ_FIRMWARE",
	[MSG_READ_FIRMWARE_REPLY] = "READ_FIRMWARE_REPLY",
	/* otagw extensions, same naming scheme */
	[MSG_REQUEST_FIRMWARE_CHUNK] = "REQUEST_FIRMWARE_CHUNK",
	[MSG_REQUEST_FIRMWARE_CHUNK_REPLY] = "REQUEST_FIRMWARE_CHUNK_REPLY",
	[MSG_ERROR] = "ERROR",
};

void msg_init(struct msg *m, enum msg_type type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
}

void msg_clear(struct msg *m)
{
	if (!m)
		return;
	free(m->properties);
	free(m->parameters);
	free(m->data);
	memset(m, 0, sizeof(*m));
}

/* Replaces *slot with a heap copy of json (NULL: just frees). */
static int msg_replace_text(char **slot, const char *json)
{
	char *copy = NULL;

	if (json) {
		copy = strdup(json);
		if (!copy)
			return -ENOMEM;
	}
	free(*slot);
	*slot = copy;
	return 0;
}

int msg_set_properties(struct msg *m, const char *json)
{
	return msg_replace_text(&m->properties, json);
}

int msg_set_parameters(struct msg *m, const char *json)
{
	return msg_replace_text(&m->parameters, json);
}

int msg_set_data(struct msg *m, const void *p, size_t n)
{
	uint8_t *copy = NULL;

	if (n) {
		copy = malloc(n);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, p, n);
	}
	free(m->data);
	m->data = copy;
	m->data_len = n;
	return 0;
}

const char *msg_type_name(enum msg_type t)
{
	if ((unsigned)t >= MSG_TYPE_COUNT)
		return NULL;
	return msg_type_names[t];
}

int msg_type_parse(const char *name, enum msg_type *out)
{
	if (!name)
		return -EINVAL;
	for (unsigned i = 0; i < MSG_TYPE_COUNT; i++) {
		if (util_ieq(name, msg_type_names[i])) {
			*out = (enum msg_type)i;
			return 0;
		}
	}
	return -EINVAL;
}
