/* SPDX-License-Identifier: MIT */
/* manifest.h - the keys of an offline bundle's manifest.json (README:
 * Offline bundles), shared by the importer (northbound/bundle.c) and the
 * bundle maker (gateway/cli_bundle.c) so the two cannot disagree.
 * Must not: hold code. */
#ifndef OTAGW_MANIFEST_H
#define OTAGW_MANIFEST_H

#define BUNDLE_MANIFEST_MAX (1024 * 1024)   /* bytes of manifest.json */
#define BUNDLE_FIRMWARE_MAX 256             /* entries of its firmware array */

#define MANIFEST_TOP_KEYS { "bundleId", "createTime", "firmware", "description" }
#define MANIFEST_FW_KEYS { "id", "productId", "name", "version", "versionOrder", "file", \
			   "size", "sha256", "sign", "signMethod", "properties",          \
			   "description", "tasks" }
#define MANIFEST_TASK_KEYS { "id", "name", "mode", "timeoutSeconds", "description", "all", \
			     "devices" }

#endif
