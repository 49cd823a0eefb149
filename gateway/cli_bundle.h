/* SPDX-License-Identifier: MIT */
/* cli_bundle.h - `otagw bundle create`: a manifest.json and the images it
 * names become an offline bundle (README: Offline bundles). The manifest is
 * checked, each image's size and sha256 are filled in (and sign/signMethod
 * when absent), the manifest is optionally signed (manifest.sig), and the
 * archive is written to OUT.tmp, then renamed to OUT.
 * Runs in the CLI process only, so it may block on files.
 * Must not: open a name from the manifest that is absolute or has `..`
 * (symbolic links inside the source tree are the user's own and are
 * followed), leave a half-written OUT. */
#ifndef OTAGW_CLI_BUNDLE_H
#define OTAGW_CLI_BUNDLE_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct cli_manifest;

/* Archive formats, chosen by OUT's suffix. */
enum cli_bundle_format {
	CLI_BUNDLE_TAR,
	CLI_BUNDLE_TAR_GZ,     /* .tar.gz, .tgz */
	CLI_BUNDLE_TAR_XZ,
	CLI_BUNDLE_ZIP,
};

/* The format for the file name out (case-insensitive suffix). 0, or
 * -EINVAL for a suffix that is none of .tar .tar.gz .tgz .tar.xz .zip. */
int cli_bundle_format_of(const char *out, enum cli_bundle_format *f) OTAGW_MUST_CHECK;

/* 0 when name can be an image's name in a bundle: relative, components
 * of printable ASCII other than "", "." and "..", no backslash, at most
 * 255 bytes. -EINVAL with the reason in e. */
int cli_bundle_name_check(const char *name, struct err_info *e) OTAGW_MUST_CHECK;

/* Reads path (manifest.json, or a directory holding one; at most
 * BUNDLE_MANIFEST_MAX bytes), checks it and fills each firmware entry from
 * its image (size, sha256; sign = sha256 hex and signMethod = "sha256"
 * when sign is absent, or the md5 when signMethod is "md5"; createTime =
 * now when absent). A size or sha256 already in the manifest must match
 * the file. Images are read relative to the manifest's directory.
 * On 0, *out is the caller's until cli_manifest_free(). -EINVAL bad
 * manifest, -ENOENT/-EACCES/... for files, -ENOMEM; e says which. */
int cli_manifest_load(struct cli_manifest **out, const char *path,
		      struct err_info *e) OTAGW_MUST_CHECK;
void cli_manifest_free(struct cli_manifest *m);       /* NULL: no-op */
/* The filled manifest, borrowed until cli_manifest_free(). */
const cJSON *cli_manifest_json(const struct cli_manifest *m);

/* What cli_bundle_write() did. */
struct cli_bundle_result {
	unsigned firmware;          /* entries in the manifest */
	unsigned images;            /* distinct image files in the archive */
	uint64_t image_bytes;       /* their total size */
	bool is_signed;
	char manifest_sha256[65];   /* hex of the signed bytes */
};

/* Writes m as a bundle to out (format by suffix): manifest.json first,
 * manifest.sig when key_pem (PEM text of an EC P-256 private key) is
 * given, then each image once, as regular files of mode 0644. The images
 * are hashed again while copied: one that changed since
 * cli_manifest_load() fails the whole write. Written to out.tmp, synced,
 * then renamed; on error out is untouched and out.tmp removed. r is
 * optional. */
int cli_bundle_write(struct cli_manifest *m, const char *out, const char *key_pem,
		     struct cli_bundle_result *r, struct err_info *e) OTAGW_MUST_CHECK;

#endif
