/* SPDX-License-Identifier: MIT */
/* fuzz_manifest.c - an offline bundle's manifest.json and manifest.sig, as
 * the importer reads them (northbound/bundle.c bj_manifest() and
 * bj_signature(), reached by #including bundle.c: see fuzz_bundle.h).
 * Feeds: the input is manifest.json's bytes, held as bj_read_small() holds
 * them (NUL after the end). An input that starts "SIG:" or "SIG!" carries
 * manifest.sig first, up to the first '\n' (empty: no manifest.sig); '!'
 * turns require_signed_bundles on. The signer's key is the test key of
 * fuzz_bundle.h, which signed the seed manifests.
 * Asserts beyond no crash and no leak:
 *  - a refusal has a reason; an accepted manifest has a valid bundleId,
 *    1..256 firmware entries, each with a valid productId, a version, a
 *    plain relative file name (no "..", no absolute path, no backslash),
 *    named once, a size within 2^53 and a sha256 whose bytes match its hex,
 *    and the sizes sum to the total, within the cache quota;
 *  - the signature check passes an unsigned manifest exactly when
 *    signatures are not required, and fails with a reason otherwise. */
#include "fuzz_bundle.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	fuzz_env_init(FB_QUOTA);
	fb_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	struct bundle_job *j = fb_job();
	struct err_info e = { 0 };
	bool require = false;
	int rc;

	if (len >= 4 && !memcmp(buf, "SIG", 3) && (buf[3] == ':' || buf[3] == '!')) {
		const uint8_t *nl = memchr(buf, '\n', len);
		size_t n = nl ? (size_t)(nl - buf) - 4 : len - 4;

		require = buf[3] == '!';
		if (n) {
			j->sig = malloc(n + 1);
			if (!j->sig)
				abort();
			memcpy(j->sig, buf + 4, n);
			j->sig[n] = '\0';
		}
		buf += 4 + n + (nl != NULL);
		len -= 4 + n + (nl != NULL);
	}
	fb_bundles->require_signed = require;
	j->manifest = malloc(len + 1);
	if (!j->manifest)
		abort();
	memcpy(j->manifest, buf, len);
	j->manifest[len] = '\0';
	j->manifest_len = len;

	rc = bj_manifest(j, &e);
	if (rc) {
		FUZZ_CHECK(rc < 0 && e.text[0]);
	} else {
		fb_check_manifest(j);
		rc = bj_signature(j, &e);
		if (!j->sig)
			FUZZ_CHECK(rc == (require ? -OTAGW_ESIGNATURE : 0));
		else
			FUZZ_CHECK(rc == 0 || (rc < 0 && e.text[0]));
	}
	cJSON_Delete(j->root);
	free(j->fw);
	free(j->manifest);
	free(j->sig);
	free(j);
	return 0;
}
