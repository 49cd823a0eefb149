/* SPDX-License-Identifier: MIT */
/* test_cli.c - the command line tools: ECDSA signing (checked with
 * verify_ecdsa_p256), bundle names and formats, manifest filling and a
 * table of refused manifests, bundles written in every format and read
 * back with libarchive (order, modes, bytes, signature), failed writes
 * leaving nothing behind, argument errors (exit 2), and import/export
 * against a scripted HTTP server in a child process on 127.0.0.1 (request
 * bytes, token precedence, exit statuses 0/1/3). Files live in a mkdtemp
 * dir. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "cli_bundle.h"
#include "verify.h"

/* A fixed test key pair (P-256), the same private key as PKCS#8, and a
 * P-384 key that must be refused. Made with openssl ecparam; test only. */
static const char KEY_P256[] =
	"-----BEGIN EC PRIVATE KEY-----\n"
	"MHcCAQEEIIj2SXLHfz8zTNY43/HIz7hOltkfsqEI4m9xZSrBza/doAoGCCqGSM49\n"
	"AwEHoUQDQgAEdvN23nUh3HQSk1epFwbfkThOUnXW/h5DX5eBeVVCmOnIpzORLjTF\n"
	"OU/7pYgIZ7EjSG40Jc7J2k9jD0uJCOML+g==\n"
	"-----END EC PRIVATE KEY-----\n";
static const char PUB_P256[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEdvN23nUh3HQSk1epFwbfkThOUnXW\n"
	"/h5DX5eBeVVCmOnIpzORLjTFOU/7pYgIZ7EjSG40Jc7J2k9jD0uJCOML+g==\n"
	"-----END PUBLIC KEY-----\n";
static const char KEY_P256_PKCS8[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiPZJcsd/PzNM1jjf\n"
	"8cjPuE6W2R+yoQjib3FlKsHNr92hRANCAAR283bedSHcdBKTV6kXBt+ROE5Sddb+\n"
	"HkNfl4F5VUKY6cinM5EuNMU5T/uliAhnsSNIbjQlzsnaT2MPS4kI4wv6\n"
	"-----END PRIVATE KEY-----\n";
static const char KEY_P384[] =
	"-----BEGIN EC PRIVATE KEY-----\n"
	"MIGkAgEBBDB3C3vTbSgEP76BFwUZEUsNGInebUi8xStFnIm/wT+FljrEd2olA+pa\n"
	"ax0SpvSO8DOgBwYFK4EEACKhZANiAAQjMnX1SiU6tbTgySM2hq673nqL6ydD/Z4d\n"
	"HdF8OR/NT1rIuL+pPIsx3xjZV+ONHbiz801SG3Vek8MjWcyXsEPmbCAZU18odlDp\n"
	"J8wBYtNS9JbBQsSRJ5oKoX8rNKfApTw=\n"
	"-----END EC PRIVATE KEY-----\n";

#define HELLO_SHA256 "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define HELLO_MD5 "5d41402abc4b2a76b9719d911017c592"

struct fx {
	char dir[64];
};

/* ---- files ---------------------------------------------------------------- */

static int rm_one(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	return remove(p);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/otagw-cli-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	unsetenv("OTAGW_URL");
	unsetenv("OTAGW_TOKEN");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* f->dir/rel into buf[256]. */
static const char *at(const struct fx *f, const char *rel, char *buf)
{
	snprintf(buf, 256, "%s/%s", f->dir, rel);
	return buf;
}

/* Writes n bytes to f->dir/rel, making its directories. */
static void put(const struct fx *f, const char *rel, const void *p, size_t n)
{
	char path[256], *slash;
	FILE *fp;

	at(f, rel, path);
	slash = strchr(path + strlen(f->dir) + 1, '/');
	for (; slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(p, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

static void put_str(const struct fx *f, const char *rel, const char *s)
{
	put(f, rel, s, strlen(s));
}

static bool exists(const struct fx *f, const char *rel)
{
	char path[256];

	return access(at(f, rel, path), F_OK) == 0;
}

/* ---- signing --------------------------------------------------------------- */

static void test_sign_verifies(void **state)
{
	uint8_t dig[32], other[32];
	char sig[VERIFY_SIG_B64_CAP], sig2[VERIFY_SIG_B64_CAP];
	struct err_info e = { 0 };

	(void)state;
	assert_int_equal(verify_sha256("manifest", 8, dig), 0);
	assert_int_equal(verify_sha256("manifesT", 8, other), 0);
	assert_int_equal(verify_ecdsa_p256_sign(KEY_P256, dig, sig, sizeof(sig), &e), 0);
	assert_true(strlen(sig) > 80 && strlen(sig) <= 96);
	assert_int_equal(verify_ecdsa_p256(PUB_P256, dig, sig, &e), 0);
	assert_int_equal(verify_ecdsa_p256(PUB_P256, other, sig, &e), -OTAGW_ESIGNATURE);
	/* PKCS#8 form of the same key */
	assert_int_equal(verify_ecdsa_p256_sign(KEY_P256_PKCS8, dig, sig2, sizeof(sig2), &e), 0);
	assert_int_equal(verify_ecdsa_p256(PUB_P256, dig, sig2, &e), 0);
}

static void test_sign_refuses(void **state)
{
	uint8_t dig[32] = { 1 };
	char sig[VERIFY_SIG_B64_CAP], small[40];
	struct err_info e = { 0 };

	(void)state;
	assert_int_equal(verify_ecdsa_p256_sign(PUB_P256, dig, sig, sizeof(sig), &e), -EINVAL);
	assert_int_equal(verify_ecdsa_p256_sign(KEY_P384, dig, sig, sizeof(sig), &e), -EINVAL);
	assert_non_null(strstr(e.text, "P-256"));
	assert_int_equal(verify_ecdsa_p256_sign("", dig, sig, sizeof(sig), &e), -EINVAL);
	assert_int_equal(verify_ecdsa_p256_sign("-----BEGIN EC PRIVATE KEY-----\nAAAA\n"
						"-----END EC PRIVATE KEY-----\n",
						dig, sig, sizeof(sig), &e), -EINVAL);
	assert_int_equal(verify_ecdsa_p256_sign(KEY_P256, dig, small, sizeof(small), &e), -ENOSPC);
}

/* ---- names and formats -------------------------------------------------------- */

static void test_names(void **state)
{
	static const char *const good[] = { "a.bin", "images/meter-2.0.bin", "a b/c_d.bin",
					    "..a", "a..", ".hidden/x" };
	static const char *const bad[] = { "", "/abs", "../a", "a/../b", "a/..", "..", ".", "./a",
					   "a/./b", "a//b", "a/", "a\\b", "a\tb", "caf\xc3\xa9",
					   "manifest.json", "manifest.sig" };
	char longname[300];
	struct err_info e = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(cli_bundle_name_check(good[i], &e), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cli_bundle_name_check(bad[i], &e) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
	}
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(cli_bundle_name_check(longname, &e), -EINVAL);
	longname[255] = '\0';
	assert_int_equal(cli_bundle_name_check(longname, &e), 0);
}

static void test_formats(void **state)
{
	enum cli_bundle_format f;

	(void)state;
	assert_int_equal(cli_bundle_format_of("x.tar", &f), 0);
	assert_int_equal(f, CLI_BUNDLE_TAR);
	assert_int_equal(cli_bundle_format_of("d/x.TAR.GZ", &f), 0);
	assert_int_equal(f, CLI_BUNDLE_TAR_GZ);
	assert_int_equal(cli_bundle_format_of("x.tgz", &f), 0);
	assert_int_equal(f, CLI_BUNDLE_TAR_GZ);
	assert_int_equal(cli_bundle_format_of("x.tar.xz", &f), 0);
	assert_int_equal(f, CLI_BUNDLE_TAR_XZ);
	assert_int_equal(cli_bundle_format_of("x.zip", &f), 0);
	assert_int_equal(f, CLI_BUNDLE_ZIP);
	assert_int_equal(cli_bundle_format_of("x.gz", &f), -EINVAL);
	assert_int_equal(cli_bundle_format_of("x.rar", &f), -EINVAL);
	assert_int_equal(cli_bundle_format_of(".tar", &f), -EINVAL);
	assert_int_equal(cli_bundle_format_of("d/.zip", &f), -EINVAL);
	assert_int_equal(cli_bundle_format_of("", &f), -EINVAL);
}

/* ---- manifests --------------------------------------------------------------------- */

static const cJSON *fw_at(const struct cli_manifest *m, int i)
{
	return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cli_manifest_json(m),
								   "firmware"), i);
}

static const char *str_of(const cJSON *o, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

static double num_of(const cJSON *o, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(it) ? it->valuedouble : -1;
}

static void test_manifest_fill(void **state)
{
	struct fx *f = *state;
	struct cli_manifest *m = NULL;
	struct err_info e = { 0 };
	char path[256];
	const cJSON *fw;

	put_str(f, "src/img/a.bin", "hello");
	put_str(f, "src/img/b.bin", "hello");
	put_str(f, "src/c.bin", "hello");
	put_str(f, "src/manifest.json",
		"{\"bundleId\":\"b-1\",\"firmware\":["
		"{\"productId\":\"p\",\"name\":\"A\",\"version\":\"1\",\"file\":\"img/a.bin\"},"
		"{\"productId\":\"q\",\"name\":\"A5\",\"version\":\"1\",\"file\":\"img/b.bin\","
		"\"signMethod\":\"MD5\"},"
		"{\"productId\":\"r\",\"name\":\"C\",\"version\":\"2\",\"file\":\"c.bin\","
		"\"size\":5,\"sha256\":\"" HELLO_SHA256 "\",\"sign\":\"abc=\",\"signMethod\":"
		"\"ecdsa-p256\",\"properties\":{\"hw\":\"A2\"},\"tasks\":[{\"name\":\"t\","
		"\"mode\":\"pull\",\"all\":true}]}]}");
	/* a directory and the file itself both work */
	assert_int_equal(cli_manifest_load(&m, at(f, "src", path), &e), 0);
	cli_manifest_free(m);
	assert_int_equal(cli_manifest_load(&m, at(f, "src/manifest.json", path), &e), 0);
	assert_true(num_of(cli_manifest_json(m), "createTime") > 1.7e12);
	fw = fw_at(m, 0);
	assert_int_equal((int)num_of(fw, "size"), 5);
	assert_string_equal(str_of(fw, "sha256"), HELLO_SHA256);
	assert_string_equal(str_of(fw, "sign"), HELLO_SHA256);
	assert_string_equal(str_of(fw, "signMethod"), "sha256");
	fw = fw_at(m, 1);
	assert_string_equal(str_of(fw, "sign"), HELLO_MD5);
	assert_string_equal(str_of(fw, "signMethod"), "md5");
	fw = fw_at(m, 2);                        /* given values kept */
	assert_string_equal(str_of(fw, "sign"), "abc=");
	assert_string_equal(str_of(fw, "signMethod"), "ecdsa-p256");
	assert_string_equal(str_of(fw, "sha256"), HELLO_SHA256);
	cli_manifest_free(m);
}

struct bad_manifest {
	const char *firmware;     /* one entry, or NULL to use text */
	const char *text;         /* the whole manifest */
	int rc;
	const char *says;         /* in e.text */
};

#define FW(x) "{\"productId\":\"p\",\"name\":\"n\",\"version\":\"1\"," x "}"

static const struct bad_manifest bad_manifests[] = {
	{ FW("\"file\":\"/etc/passwd\""), NULL, -EINVAL, "absolute" },
	{ FW("\"file\":\"../a.bin\""), NULL, -EINVAL, "'..'" },
	{ FW("\"file\":\"img/../../a.bin\""), NULL, -EINVAL, "'..'" },
	{ FW("\"file\":\"./a.bin\""), NULL, -EINVAL, "'.'" },
	{ FW("\"file\":\"a//a.bin\""), NULL, -EINVAL, "empty path component" },
	{ FW("\"file\":\"\""), NULL, -EINVAL, "1-255" },
	{ FW("\"file\":\"a\\\\b\""), NULL, -EINVAL, "printable" },
	{ FW("\"file\":\"manifest.json\""), NULL, -EINVAL, "reserved" },
	{ FW("\"file\":5"), NULL, -EINVAL, "'file'" },
	{ FW("\"description\":\"\""), NULL, -EINVAL, "'file' is required" },
	{ "{\"name\":\"n\",\"version\":\"1\",\"file\":\"a.bin\"}", NULL, -EINVAL, "productId" },
	{ "{\"productId\":\"p\",\"version\":\"1\",\"file\":\"a.bin\"}", NULL, -EINVAL, "'name'" },
	{ "{\"productId\":\"p\",\"name\":\"n\",\"file\":\"a.bin\"}", NULL, -EINVAL, "version" },
	{ "{\"productId\":\"p q\",\"name\":\"n\",\"version\":\"1\",\"file\":\"a.bin\"}", NULL,
	  -EINVAL, "productId" },
	{ "{\"productId\":5,\"name\":\"n\",\"version\":\"1\",\"file\":\"a.bin\"}", NULL, -EINVAL,
	  "productId" },
	{ FW("\"file\":\"missing.bin\""), NULL, -ENOENT, "missing.bin" },
	{ FW("\"file\":\"d\""), NULL, -EINVAL, "not a regular file" },
	{ FW("\"file\":\"a.bin\",\"sign\":\"" HELLO_SHA256 "\""), NULL, -EINVAL, "signMethod" },
	{ FW("\"file\":\"a.bin\",\"signMethod\":\"ecdsa-p256\""), NULL, -EINVAL, "needs a sign" },
	{ FW("\"file\":\"a.bin\",\"sign\":\"00\",\"signMethod\":\"sha256\""), NULL, -EINVAL,
	  "sign does not match" },
	{ FW("\"file\":\"a.bin\",\"size\":4"), NULL, -EINVAL, "size" },
	{ FW("\"file\":\"a.bin\",\"size\":-1"), NULL, -EINVAL, "size" },
	{ FW("\"file\":\"a.bin\",\"sha256\":\"" HELLO_MD5 "\""), NULL, -EINVAL, "sha256" },
	{ FW("\"file\":\"a.bin\",\"tasks\":[{\"name\":\"t\",\"mode\":\"shove\",\"all\":true}]"),
	  NULL, -EINVAL, "mode" },
	{ FW("\"file\":\"a.bin\",\"tasks\":[{\"name\":\"t\",\"mode\":\"push\"}]"), NULL, -EINVAL,
	  "devices" },
	{ FW("\"file\":\"a.bin\",\"tasks\":{}"), NULL, -EINVAL, "tasks" },
	{ FW("\"file\":\"a.bin\",\"properties\":[]"), NULL, -EINVAL, "properties" },
	{ FW("\"file\":\"a.bin\",\"verison\":\"2\""), NULL, -EINVAL, "unknown field 'verison'" },
	{ FW("\"file\":\"a.bin\",\"tasks\":[{\"name\":\"t\",\"mode\":\"push\",\"all\":true,"
	     "\"devics\":[]}]"), NULL, -EINVAL, "unknown field 'devics'" },
	{ FW("\"file\":\"a.bin\"") "," FW("\"file\":\"a.bin\""), NULL, -EINVAL, "named twice" },
	{ "5", NULL, -EINVAL, "object" },
	{ NULL, "{\"firmware\":[" FW("\"file\":\"a.bin\"") "]}", -EINVAL, "bundleId" },
	{ NULL, "{\"bundleId\":\"../x\",\"firmware\":[" FW("\"file\":\"a.bin\"") "]}", -EINVAL,
	  "bundleId" },
	{ NULL, "{\"bundleId\":\"b\",\"createTime\":-1,\"firmware\":[" FW("\"file\":\"a.bin\"")
	  "]}", -EINVAL, "createTime" },
	{ NULL, "{\"bundleId\":\"b\",\"createTime\":1.5,\"firmware\":[" FW("\"file\":\"a.bin\"")
	  "]}", -EINVAL, "createTime" },
	{ NULL, "{\"bundleId\":\"b\",\"firmware\":[]}", -EINVAL, "1-256" },
	{ NULL, "{\"bundleId\":\"b\",\"firmware\":{}}", -EINVAL, "1-256" },
	{ NULL, "{\"bundleId\":\"b\"}", -EINVAL, "1-256" },
	{ NULL, "{\"bundleId\":\"b\",\"extra\":1,\"firmware\":[" FW("\"file\":\"a.bin\"") "]}",
	  -EINVAL, "unknown field 'extra'" },
	{ NULL, "[]", -EINVAL, "object" },
	{ NULL, "{\"bundleId\":", -EINVAL, "JSON" },
	{ NULL, "", -EINVAL, "JSON" },
	{ NULL, "{\"bundleId\":\"b\\u0000c\",\"firmware\":[]}", -EINVAL, "JSON" },
};

static int load_text(const struct fx *f, const char *text, struct err_info *e)
{
	struct cli_manifest *m = NULL;
	char path[256];
	int rc;

	put_str(f, "m/manifest.json", text);
	rc = cli_manifest_load(&m, at(f, "m", path), e);
	cli_manifest_free(m);
	return rc;
}

static void test_manifest_refused(void **state)
{
	struct fx *f = *state;
	struct err_info e;
	char text[2048], path[256];

	put_str(f, "m/a.bin", "hello");
	mkdir(at(f, "m/d", path), 0755);
	for (size_t i = 0; i < sizeof(bad_manifests) / sizeof(bad_manifests[0]); i++) {
		const struct bad_manifest *b = &bad_manifests[i];
		int rc;

		if (b->firmware)
			snprintf(text, sizeof(text), "{\"bundleId\":\"b\",\"firmware\":[%s]}",
				 b->firmware);
		else
			snprintf(text, sizeof(text), "%s", b->text);
		memset(&e, 0, sizeof(e));
		rc = load_text(f, text, &e);
		if (rc != b->rc || !strstr(e.text, b->says))
			fail_msg("case %zu: rc %d (want %d), '%s' (want '%s')", i, rc, b->rc,
				 e.text, b->says);
		assert_non_null(strstr(e.text, "manifest"));
	}
}

static void test_manifest_limits(void **state)
{
	struct fx *f = *state;
	struct err_info e = { 0 };
	size_t cap = 300 * 128, n;
	char *text = malloc(cap);

	assert_non_null(text);
	for (int i = 0; i < 257; i++) {
		char name[32];

		snprintf(name, sizeof(name), "m/%d.bin", i);
		put_str(f, name, "hello");
	}
	for (int count = 256; count <= 257; count++) {
		n = (size_t)snprintf(text, cap, "{\"bundleId\":\"b\",\"firmware\":[");
		for (int i = 0; i < count; i++)
			n += (size_t)snprintf(text + n, cap - n, "%s" FW("\"file\":\"%d.bin\""),
					      i ? "," : "", i);
		snprintf(text + n, cap - n, "]}");
		assert_int_equal(load_text(f, text, &e), count == 256 ? 0 : -EINVAL);
	}
	free(text);
	/* no manifest at all */
	{
		struct cli_manifest *m = NULL;

		assert_int_equal(cli_manifest_load(&m, "/nonexistent/otagw", &e), -ENOENT);
		assert_null(m);
	}
}

/* ---- archives ----------------------------------------------------------------------- */

struct entry {
	char name[256];
	int64_t size;
	mode_t type, perm;
	char *data;
};

/* Reads every entry of the archive at path into ents (at most max). */
static size_t read_back(const char *path, struct entry *ents, size_t max)
{
	struct archive *a = archive_read_new();
	struct archive_entry *en;
	size_t n = 0;

	archive_read_support_format_all(a);
	archive_read_support_filter_all(a);
	assert_int_equal(archive_read_open_filename(a, path, 16384), ARCHIVE_OK);
	while (archive_read_next_header(a, &en) == ARCHIVE_OK) {
		assert_true(n < max);
		snprintf(ents[n].name, sizeof(ents[n].name), "%s", archive_entry_pathname(en));
		ents[n].size = archive_entry_size(en);
		ents[n].type = archive_entry_filetype(en);
		ents[n].perm = archive_entry_perm(en);
		ents[n].data = calloc(1, (size_t)ents[n].size + 1);
		assert_non_null(ents[n].data);
		assert_int_equal(archive_read_data(a, ents[n].data, (size_t)ents[n].size),
				 ents[n].size);
		n++;
	}
	archive_read_free(a);
	return n;
}

static void free_entries(struct entry *ents, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ents[i].data);
}

static void put_images(const struct fx *f)
{
	static char big[200000];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + i / 251);
	put(f, "src/images/big.bin", big, sizeof(big));
	put_str(f, "src/a.bin", "hello");
	put_str(f, "src/b/a.bin", "hello again");
	put_str(f, "src/manifest.json",
		"{\"bundleId\":\"b-1\",\"createTime\":1795590000000,\"firmware\":["
		"{\"productId\":\"p\",\"name\":\"Big\",\"version\":\"1\","
		"\"file\":\"images/big.bin\"},"
		"{\"productId\":\"q\",\"name\":\"A\",\"version\":\"1\",\"file\":\"a.bin\"},"
		"{\"productId\":\"r\",\"name\":\"A again\",\"version\":\"2\","
		"\"file\":\"b/a.bin\"}]}");
}

static void check_bundle(const struct fx *f, const char *out, bool is_signed)
{
	struct entry ents[8];
	char path[256];
	uint8_t dig[32];
	size_t n = read_back(at(f, out, path), ents, 8), i = 0;
	cJSON *m;

	assert_int_equal(n, is_signed ? 5 : 4);
	assert_string_equal(ents[i].name, "manifest.json");
	m = cJSON_Parse(ents[0].data);
	assert_non_null(m);
	assert_string_equal(str_of(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "firmware"), 1),
				   "sha256"), HELLO_SHA256);
	cJSON_Delete(m);
	if (is_signed) {
		i++;
		assert_string_equal(ents[i].name, "manifest.sig");
		assert_int_equal(verify_sha256(ents[0].data, (size_t)ents[0].size, dig), 0);
		assert_int_equal(verify_ecdsa_p256(PUB_P256, dig, ents[i].data, NULL), 0);
	}
	assert_string_equal(ents[i + 1].name, "images/big.bin");
	assert_int_equal(ents[i + 1].size, 200000);
	assert_int_equal((unsigned char)ents[i + 1].data[199999],
			 (unsigned char)(199999 * 7 + 199999 / 251));
	assert_string_equal(ents[i + 2].name, "a.bin");
	assert_string_equal(ents[i + 2].data, "hello");
	assert_string_equal(ents[i + 3].name, "b/a.bin");
	assert_string_equal(ents[i + 3].data, "hello again");
	for (size_t k = 0; k < n; k++) {
		assert_int_equal(ents[k].type, AE_IFREG);
		assert_int_equal(ents[k].perm, 0644);
	}
	free_entries(ents, n);
}

static void test_bundle_formats(void **state)
{
	static const char *const outs[] = { "o.tar", "o.tar.gz", "o.tgz", "o.tar.xz", "o.zip" };
	struct fx *f = *state;
	struct cli_manifest *m = NULL;
	struct cli_bundle_result r;
	struct err_info e = { 0 };
	char path[256], tmp[64];

	put_images(f);
	assert_int_equal(cli_manifest_load(&m, at(f, "src", path), &e), 0);
	for (size_t i = 0; i < sizeof(outs) / sizeof(outs[0]); i++) {
		assert_int_equal(cli_bundle_write(m, at(f, outs[i], path), KEY_P256, &r, &e), 0);
		assert_int_equal(r.firmware, 3);
		assert_int_equal(r.images, 3);
		assert_int_equal(r.image_bytes, 200016);
		assert_true(r.is_signed);
		check_bundle(f, outs[i], true);
		snprintf(tmp, sizeof(tmp), "%s.tmp", outs[i]);
		assert_false(exists(f, tmp));
	}
	assert_int_equal(cli_bundle_write(m, at(f, "u.tar", path), NULL, &r, &e), 0);
	assert_false(r.is_signed);
	check_bundle(f, "u.tar", false);
	cli_manifest_free(m);
}

static void test_bundle_write_fails_cleanly(void **state)
{
	struct fx *f = *state;
	struct cli_manifest *m = NULL;
	struct err_info e = { 0 };
	char path[256];

	put_images(f);
	assert_int_equal(cli_manifest_load(&m, at(f, "src", path), &e), 0);
	/* a bad key: refused before anything is written */
	assert_int_equal(cli_bundle_write(m, at(f, "k.tar", path), KEY_P384, NULL, &e), -EINVAL);
	assert_false(exists(f, "k.tar") || exists(f, "k.tar.tmp"));
	/* no such directory */
	assert_int_not_equal(cli_bundle_write(m, at(f, "no/x.tar", path), NULL, NULL, &e), 0);
	/* the suffix */
	assert_int_equal(cli_bundle_write(m, at(f, "x.rar", path), NULL, NULL, &e), -EINVAL);
	/* an image changed after it was hashed: same size, other bytes */
	put_str(f, "src/a.bin", "jello");
	assert_int_equal(cli_bundle_write(m, at(f, "c.tar.gz", path), NULL, NULL, &e), -EIO);
	assert_non_null(strstr(e.text, "changed"));
	assert_false(exists(f, "c.tar.gz") || exists(f, "c.tar.gz.tmp"));
	put_str(f, "src/a.bin", "hello!");
	assert_int_equal(cli_bundle_write(m, at(f, "c.zip", path), NULL, NULL, &e), -EIO);
	assert_false(exists(f, "c.zip") || exists(f, "c.zip.tmp"));
	/* an existing OUT stays as it was */
	put_str(f, "keep.tar", "old");
	assert_int_equal(cli_bundle_write(m, at(f, "keep.tar", path), NULL, NULL, &e), -EIO);
	assert_true(exists(f, "keep.tar"));
	cli_manifest_free(m);
}

/* ---- the commands --------------------------------------------------------------------- */

static int run(const char *conf, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	va_start(ap, conf);
	while (argc < 31 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	return cli_main(argc, argv, conf);
}

static void test_bundle_command(void **state)
{
	struct fx *f = *state;
	char src[256], out[256], key[256], bad[256];

	put_images(f);
	put_str(f, "key.pem", KEY_P256);
	at(f, "src", src);
	at(f, "cmd.tar.gz", out);
	at(f, "key.pem", key);
	assert_int_equal(run(NULL, "bundle", "create", "-o", out, "--key", key, src, NULL), 0);
	check_bundle(f, "cmd.tar.gz", true);
	/* the manifest's mistakes and unreadable keys fail (1) */
	assert_int_equal(run(NULL, "bundle", "create", "-o", out, "--key", "/nonexistent", src,
			     NULL), 1);
	put_str(f, "bad/manifest.json", "{\"bundleId\":\"b\",\"firmware\":[]}");
	assert_int_equal(run(NULL, "bundle", "create", "-o", out, at(f, "bad", bad), NULL), 1);
	/* usage (2) */
	assert_int_equal(run(NULL, "bundle", NULL), 2);
	assert_int_equal(run(NULL, "bundle", "make", NULL), 2);
	assert_int_equal(run(NULL, "bundle", "create", src, NULL), 2);
	assert_int_equal(run(NULL, "bundle", "create", "-o", out, NULL), 2);
	assert_int_equal(run(NULL, "bundle", "create", "-o", out, src, src, NULL), 2);
	assert_int_equal(run(NULL, "bundle", "create", "-o", "x.rar", src, NULL), 2);
	assert_int_equal(run(NULL, "bundle", "create", "--bogus", "-o", out, src, NULL), 2);
	assert_int_equal(run(NULL, "bundle", "create", "-o", NULL), 2);
	assert_int_equal(run(NULL, "bundle", "create", "--help", NULL), 0);
}

static void test_args(void **state)
{
	(void)state;
	assert_true(cli_is_command("bundle"));
	assert_true(cli_is_command("import"));
	assert_true(cli_is_command("export"));
	assert_false(cli_is_command("-c"));
	assert_false(cli_is_command("imports"));
	assert_false(cli_is_command(NULL));
	assert_int_equal(run(NULL, "frobnicate", NULL), 2);
	assert_int_equal(cli_main(0, NULL, NULL), 2);
	assert_int_equal(run(NULL, "import", NULL), 2);
	assert_int_equal(run(NULL, "import", "a", "b", NULL), 2);
	assert_int_equal(run(NULL, "import", "--since", "5", "a", NULL), 2);
	assert_int_equal(run(NULL, "import", "a", "--url", NULL), 2);
	assert_int_equal(run(NULL, "import", "--url", "ftp://x", "a", NULL), 2);
	assert_int_equal(run(NULL, "import", "--url", "https://127.0.0.1:1", "a", NULL), 2);
	assert_int_equal(run(NULL, "import", "--url", "http://127.0.0.1:1/?x=1", "a", NULL), 2);
	assert_int_equal(run(NULL, "import", "-c", "/nonexistent/otagw.conf", "a", NULL), 2);
	assert_int_equal(run(NULL, "export", NULL), 2);
	assert_int_equal(run(NULL, "export", "--since", "yesterday", "a", NULL), 2);
	assert_int_equal(run(NULL, "export", "--since", "-5", "a", NULL), 2);
	assert_int_equal(run(NULL, "export", "--since", NULL), 2);
	assert_int_equal(run(NULL, "export", "--nope", "a", NULL), 2);
	assert_int_equal(run(NULL, "import", "--help", NULL), 0);
	assert_int_equal(run(NULL, "export", "-h", NULL), 0);
}

/* ---- a scripted daemon ------------------------------------------------------------------- */

enum fake_mode { FAKE_DONE, FAKE_REFUSE, FAKE_FAIL };

struct fake {
	pid_t pid;
	unsigned port;
	char log[256];
};

/* Reads one request from c: its first line, Authorization, and the body's
 * length and sha256 (hex). */
static void fake_read(int c, char *line, size_t cap, char *auth, size_t acap, uint64_t *len,
		      char sha[65])
{
	char hdr[8192];
	size_t n = 0;
	ssize_t r;
	char *end = NULL, *p;
	struct verify_digest *d;
	uint8_t dig[32], buf[65536];
	size_t dn;

	while (!end && n < sizeof(hdr) - 1 && (r = read(c, hdr + n, sizeof(hdr) - 1 - n)) > 0) {
		n += (size_t)r;
		hdr[n] = '\0';
		end = strstr(hdr, "\r\n\r\n");
	}
	if (!end)
		_exit(3);
	*end = '\0';
	snprintf(line, cap, "%.*s", (int)strcspn(hdr, "\r"), hdr);
	p = strcasestr(hdr, "\nAuthorization: ");
	snprintf(auth, acap, "%.*s", p ? (int)strcspn(p + 16, "\r") : 1, p ? p + 16 : "-");
	p = strcasestr(hdr, "\ncontent-length: ");
	*len = p ? strtoull(p + 17, NULL, 10) : 0;
	if (verify_digest_new(&d, VERIFY_SHA256))
		_exit(3);
	n -= (size_t)(end + 4 - hdr);
	if (verify_digest_update(d, end + 4, n))
		_exit(3);
	while (n < *len && (r = read(c, buf, sizeof(buf))) > 0) {
		n += (size_t)r;
		if (verify_digest_update(d, buf, (size_t)r))
			_exit(3);
	}
	if (verify_digest_finish(d, dig, &dn))
		_exit(3);
	verify_digest_free(d);
	verify_hex(dig, 32, sha);
}

static void fake_answer(int c, int status, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
				   "Content-Length: %zu\r\nConnection: close\r\n\r\n", status,
			 strlen(body));

	if (write(c, head, (size_t)n) != n || write(c, body, strlen(body)) != (ssize_t)strlen(body))
		_exit(3);
}

/* The child: answers requests in order, logging each to log. */
static void fake_serve(int lfd, const char *log, enum fake_mode mode)
{
	char line[512], auth[256], sha[65];
	unsigned polls = 0;
	uint64_t len;
	FILE *lf;
	int c;

	for (;;) {
		c = accept(lfd, NULL, NULL);
		if (c < 0)
			_exit(3);
		fake_read(c, line, sizeof(line), auth, sizeof(auth), &len, sha);
		lf = fopen(log, "a");
		if (!lf)
			_exit(3);
		fprintf(lf, "%s|%s|%llu|%s\n", line, auth, (unsigned long long)len,
			len ? sha : "-");
		fclose(lf);
		if (!strncmp(line, "GET /api/bundles ", 17))
			fake_answer(c, 200, "{\"items\":[]}");
		else if (!strncmp(line, "POST /api/bundles ", 18))
			fake_answer(c, mode == FAKE_REFUSE ? 422 : 202,
				    mode == FAKE_REFUSE ? "{\"error\":\"not a bundle\"}"
							: "{\"id\":\"imp1\",\"state\":\"x\"}");
		else if (!strncmp(line, "GET /api/bundles/imp1 ", 22))
			fake_answer(c, 200, ++polls < 3 ? "{\"state\":\"importing\",\"bytes\":1,"
							  "\"total\":5}"
				    : mode == FAKE_FAIL ? "{\"state\":\"failed\",\"error\":\"bad\"}"
							: "{\"state\":\"done\",\"bytes\":5,"
							  "\"total\":5}");
		else if (!strncmp(line, "GET /api/export", 15))
			fake_answer(c, 200, "EXPORT-BYTES");
		else
			fake_answer(c, 404, "{\"error\":\"no such thing\"}");
		close(c);
	}
}

static void fake_start(const struct fx *f, struct fake *k, enum fake_mode mode)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	k->port = ntohs(sa.sin_port);
	at(f, "fake.log", k->log);
	unlink(k->log);
	k->pid = fork();
	assert_true(k->pid >= 0);
	if (!k->pid) {
		signal(SIGTERM, SIG_DFL);
		fake_serve(lfd, k->log, mode);
	}
	close(lfd);
}

static void fake_stop(struct fake *k)
{
	kill(k->pid, SIGKILL);
	waitpid(k->pid, NULL, 0);
}

/* The fake's log, NUL-terminated, into buf[cap]. */
static const char *fake_log(const struct fake *k, char *buf, size_t cap)
{
	FILE *lf = fopen(k->log, "r");
	size_t n = lf ? fread(buf, 1, cap - 1, lf) : 0;

	if (lf)
		fclose(lf);
	buf[n] = '\0';
	return buf;
}

static void test_import_flow(void **state)
{
	struct fx *f = *state;
	struct fake k;
	char url[64], file[256], log[4096];

	put_str(f, "b.tar", "hello");
	at(f, "b.tar", file);
	fake_start(f, &k, FAKE_DONE);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/", k.port);
	setenv("OTAGW_TOKEN", "env-token", 1);
	assert_int_equal(run(NULL, "import", file, "--url", url, "-q", NULL), 0);
	fake_log(&k, log, sizeof(log));
	assert_non_null(strstr(log, "GET /api/bundles HTTP/1.1|Bearer env-token|0|-\n"
				    "POST /api/bundles HTTP/1.1|Bearer env-token|5|" HELLO_SHA256
				    "\n"));
	assert_non_null(strstr(log, "GET /api/bundles/imp1 HTTP/1.1|Bearer env-token|0|-\n"));
	/* --token beats the environment */
	assert_int_equal(run(NULL, "import", "--token", "opt-token", "--url", url, file, NULL), 0);
	assert_non_null(strstr(fake_log(&k, log, sizeof(log)), "|Bearer opt-token|5|"));
	/* a file that is not there */
	assert_int_equal(run(NULL, "import", "--url", url, "/nonexistent/b.tar", NULL), 1);
	fake_stop(&k);
	unsetenv("OTAGW_TOKEN");
}

static void test_import_refused_or_failed(void **state)
{
	struct fx *f = *state;
	struct fake k;
	char url[64], file[256];

	put_str(f, "b.tar", "hello");
	at(f, "b.tar", file);
	fake_start(f, &k, FAKE_REFUSE);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", k.port);
	assert_int_equal(run(NULL, "import", "--url", url, file, NULL), 1);
	fake_stop(&k);
	fake_start(f, &k, FAKE_FAIL);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", k.port);
	assert_int_equal(run(NULL, "import", "--url", url, file, NULL), 1);
	/* a base path is kept: /x/api/bundles is 404 here */
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/x", k.port);
	assert_int_equal(run(NULL, "import", "--url", url, file, NULL), 1);
	fake_stop(&k);
}

/* A port nothing listens on. */
static unsigned closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void test_unreachable(void **state)
{
	struct fx *f = *state;
	char url[64], file[256], out[256];

	put_str(f, "b.tar", "hello");
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", closed_port());
	assert_int_equal(run(NULL, "import", "--url", url, at(f, "b.tar", file), NULL), 3);
	assert_int_equal(run(NULL, "export", "--url", url, at(f, "e.tgz", out), NULL), 3);
	assert_false(exists(f, "e.tgz") || exists(f, "e.tgz.tmp"));
}

static void test_export_and_config(void **state)
{
	struct fx *f = *state;
	struct fake k;
	char conf[256], out[256], text[256], log[4096], body[64];
	FILE *fp;
	size_t n;

	fake_start(f, &k, FAKE_DONE);
	snprintf(text, sizeof(text), "[http]\nbind = 0.0.0.0\nport = %u\napi_token = conf-token\n",
		 k.port);
	put_str(f, "gw.conf", text);
	at(f, "gw.conf", conf);
	/* URL and token from the configuration given to cli_main */
	assert_int_equal(run(conf, "export", "--since", "1700000000000", at(f, "e.tgz", out), NULL),
			 0);
	fp = fopen(out, "r");
	assert_non_null(fp);
	n = fread(body, 1, sizeof(body) - 1, fp);
	fclose(fp);
	body[n] = '\0';
	assert_string_equal(body, "EXPORT-BYTES");
	assert_false(exists(f, "e.tgz.tmp"));
	assert_non_null(strstr(fake_log(&k, log, sizeof(log)),
			       "GET /api/export?since=1700000000000 HTTP/1.1|Bearer conf-token|"));
	/* -c beats the argument; the environment's token beats the file's */
	setenv("OTAGW_TOKEN", "env-token", 1);
	assert_int_equal(run("/nonexistent", "export", "-c", conf, out, NULL), 0);
	assert_non_null(strstr(fake_log(&k, log, sizeof(log)),
			       "GET /api/export HTTP/1.1|Bearer env-token|"));
	unsetenv("OTAGW_TOKEN");
	fake_stop(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_verifies),
		cmocka_unit_test(test_sign_refuses),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_formats),
		cmocka_unit_test_setup_teardown(test_manifest_fill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manifest_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bundle_formats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bundle_write_fails_cleanly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bundle_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_flow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_refused_or_failed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_export_and_config, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
