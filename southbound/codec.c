/* SPDX-License-Identifier: MIT */
/* codec.c - the registry of device codecs; see codec.h. A site's own device
 * protocol is one more entry here (and one more codec_<name>.c).
 * Must not: hold anything but const tables, touch sockets or the store. */
#include "codec.h"

#include <string.h>

#include "util.h"

static const struct codec_ops *const codec_registry[] = {
	&codec_jsonline,
	&codec_frame,
};

const struct codec_ops *codec_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(codec_registry); i++)
		if (!strcmp(name, codec_registry[i]->name))
			return codec_registry[i];
	return NULL;
}
