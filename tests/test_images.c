/* SPDX-License-Identifier: MIT */
/* test_images.c - the image index and its policy on real files and a real
 * SQLite file, without the network: uploads (verified, refused), reading,
 * LRU eviction under the quota, pinning by unfinished records, "cache
 * full", removal, and forgetting an image when its firmware changes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "catalogue.h"
#include "images.h"
#include "verify.h"

#define IMG 100000

struct fx {
	char dir[64];
	struct store *st;
	struct cache *c;
	struct images *im;
	uint8_t img[4][IMG];
	char fw[4][OTAGW_ID_MAX];
	char sha[4][CACHE_HEX_LEN + 1];
};

static void fx_images(struct fx *x, uint64_t max_bytes)
{
	images_free(x->im);
	assert_int_equal(images_new(&x->im, x->st, x->c, NULL, NULL,
				    &(struct images_cfg){ .max_bytes = max_bytes, .max_downloads = 1 },
				    NULL), 0);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	char path[128];

	strcpy(x->dir, "/tmp/otagw-images-XXXXXX");
	if (!mkdtemp(x->dir))
		return -1;
	snprintf(path, sizeof(path), "%s/otagw.db", x->dir);
	if (store_open(&x->st, path, NULL))
		return -1;
	snprintf(path, sizeof(path), "%s/cache", x->dir);
	if (cache_open(&x->c, path, NULL))
		return -1;
	for (int i = 0; i < 4; i++) {
		char body[300];
		uint8_t d[32];
		struct firmware fw = { 0 };
		cJSON *j;

		for (size_t k = 0; k < IMG; k++)
			x->img[i][k] = (uint8_t)((k * 31 + (size_t)i * 7919) >> 3);
		if (verify_sha256(x->img[i], IMG, d))
			return -1;
		verify_hex(d, 32, x->sha[i]);
		snprintf(body, sizeof(body), "{\"productId\":\"p\",\"name\":\"n\",\"version\":\"%d.0\","
			 "\"size\":%d,\"sign\":\"%s\",\"signMethod\":\"sha256\"}", i + 1, IMG, x->sha[i]);
		j = cJSON_Parse(body);
		if (catalogue_create(x->st, j, &fw, NULL))
			return -1;
		strcpy(x->fw[i], fw.id);
		firmware_clear(&fw);
		cJSON_Delete(j);
	}
	fx_images(x, 1 << 30);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	char cmd[128];

	images_free(x->im);
	cache_close(x->c);
	store_close(x->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", x->dir);
	free(x);
	return system(cmd) ? -1 : 0;
}

static int upload(struct fx *x, int i, const uint8_t *data, size_t n, struct err_info *e)
{
	struct images_upload *u;
	int rc = images_upload_begin(x->im, x->fw[i], n, &u, e);

	if (rc)
		return rc;
	rc = images_upload_feed(u, data, n / 2, e);
	if (!rc)
		rc = images_upload_feed(u, data + n / 2, n - n / 2, e);
	if (rc) {
		images_upload_abort(u);
		return rc;
	}
	usleep(3000);    /* distinct lastUsed stamps (ms) */
	return images_upload_end(u, e);
}

static const char *state_of(struct fx *x, int i, char *buf)
{
	cJSON *o = images_firmware_json(x->im, x->fw[i]);

	strcpy(buf, cJSON_GetObjectItem(o, "state")->valuestring);
	cJSON_Delete(o);
	return buf;
}

static bool on_disk(struct fx *x, int i)
{
	char path[200];

	snprintf(path, sizeof(path), "%s/cache/%s", x->dir, x->sha[i]);
	return access(path, F_OK) == 0;
}

static void touch(struct fx *x, int i)
{
	int fd;
	uint64_t size;

	usleep(3000);
	assert_int_equal(images_open(x->im, x->fw[i], &fd, &size, NULL), 0);
	close(fd);
}

/* A task of firmware i with one waiting record pins its image. */
static void pin(struct fx *x, int i)
{
	char sql[400];

	snprintf(sql, sizeof(sql), "INSERT INTO task (id, firmware_id, product_id, name, mode,"
		 " create_time) VALUES ('t%d', '%s', 'p', 't', 'pull', 1);"
		 "INSERT INTO record (id, task_id, device_id, firmware_id, version, state,"
		 " create_time, update_time) VALUES ('r%d', 't%d', 'd', '%s', 'v', 'waiting', 1, 1)",
		 i, x->fw[i], i, i, x->fw[i]);
	assert_int_equal(sqlite3_exec(store_db(x->st), sql, NULL, NULL, NULL), SQLITE_OK);
}

static void test_upload_and_read(void **state)
{
	struct fx *x = *state;
	struct err_info e = { 0 };
	char s[16], sha[CACHE_HEX_LEN + 1];
	uint8_t buf[16];
	uint64_t size;
	cJSON *list;
	int fd;

	assert_string_equal(state_of(x, 0, s), "none");
	assert_int_equal(images_open(x->im, x->fw[0], &fd, &size, NULL), -ENOENT);
	assert_int_equal(upload(x, 0, x->img[0], IMG, &e), 0);
	assert_string_equal(state_of(x, 0, s), "ready");
	assert_int_equal(images_open(x->im, x->fw[0], &fd, &size, sha), 0);
	assert_int_equal(size, IMG);
	assert_string_equal(sha, x->sha[0]);
	assert_int_equal(pread(fd, buf, sizeof(buf), 5000), (ssize_t)sizeof(buf));
	assert_memory_equal(buf, x->img[0] + 5000, sizeof(buf));
	close(fd);
	assert_int_equal(images_list(x->im, &list), 0);
	assert_int_equal(cJSON_GetObjectItem(list, "usedBytes")->valuedouble, IMG);
	{
		cJSON *it = cJSON_GetArrayItem(cJSON_GetObjectItem(list, "items"), 0);

		assert_string_equal(cJSON_GetObjectItem(it, "sha256")->valuestring, x->sha[0]);
		assert_false(cJSON_IsTrue(cJSON_GetObjectItem(it, "pinned")));
		assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(it, "firmwareIds"),
						       0)->valuestring, x->fw[0]);
	}
	cJSON_Delete(list);
}

static void test_upload_refused(void **state)
{
	struct fx *x = *state;
	struct err_info e = { 0 };
	char s[16];
	uint8_t *bad = malloc(IMG);

	memcpy(bad, x->img[1], IMG);
	bad[IMG / 2] ^= 1;
	assert_int_equal(upload(x, 1, bad, IMG, &e), -OTAGW_ESIGNATURE);
	assert_non_null(strstr(e.text, "expected"));
	assert_non_null(strstr(e.text, "got"));
	assert_string_equal(state_of(x, 1, s), "failed");
	assert_false(on_disk(x, 1));
	/* a body longer than the firmware's size is refused up front */
	assert_int_equal(upload(x, 1, x->img[1], IMG, &e), 0);
	{
		struct images_upload *u;

		assert_int_equal(images_upload_begin(x->im, x->fw[2], IMG + 1, &u, &e), -EFBIG);
		assert_int_equal(images_upload_begin(x->im, x->fw[2], 0, &u, &e), 0);
		assert_int_equal(images_upload_feed(u, x->img[2], IMG, &e), 0);
		assert_int_equal(images_upload_feed(u, "x", 1, &e), -EFBIG);
		images_upload_abort(u);
	}
	assert_string_equal(state_of(x, 2, s), "failed");
	assert_int_equal(images_upload_begin(x->im, "nope", 10, &(struct images_upload *){ 0 }, &e),
			 -ENOENT);
	free(bad);
}

static void test_lru_eviction(void **state)
{
	struct fx *x = *state;
	struct err_info e = { 0 };
	char s[16];

	fx_images(x, 2 * IMG + IMG / 2);         /* room for two */
	assert_int_equal(upload(x, 0, x->img[0], IMG, &e), 0);
	assert_int_equal(upload(x, 1, x->img[1], IMG, &e), 0);
	/* an hour later (touches within a minute are not written) */
	assert_int_equal(sqlite3_exec(store_db(x->st), "UPDATE cache_entry SET last_used ="
				      " last_used - 3600000", NULL, NULL, NULL), SQLITE_OK);
	touch(x, 0);                              /* 1 is now the least recently used */
	assert_int_equal(upload(x, 2, x->img[2], IMG, &e), 0);
	assert_true(on_disk(x, 0));
	assert_false(on_disk(x, 1));
	assert_true(on_disk(x, 2));
	assert_string_equal(state_of(x, 1, s), "none");
	assert_string_equal(state_of(x, 0, s), "ready");
}

static void test_pinning_and_full(void **state)
{
	struct fx *x = *state;
	struct err_info e = { 0 };

	fx_images(x, 2 * IMG + IMG / 2);
	assert_int_equal(upload(x, 0, x->img[0], IMG, &e), 0);
	assert_int_equal(upload(x, 1, x->img[1], IMG, &e), 0);
	pin(x, 0);                                /* oldest, but pinned */
	assert_int_equal(upload(x, 2, x->img[2], IMG, &e), 0);
	assert_true(on_disk(x, 0));
	assert_false(on_disk(x, 1));              /* the unpinned one went */
	pin(x, 2);
	assert_int_equal(upload(x, 3, x->img[3], IMG, &e), -ENOSPC);
	assert_non_null(strstr(e.text, "cache full"));
	assert_true(on_disk(x, 0));
	assert_true(on_disk(x, 2));
	assert_int_equal(images_remove(x->im, x->sha[0], &e), -EBUSY);
	assert_int_equal(images_remove(x->im, x->sha[1], &e), -ENOENT);
	assert_int_equal(images_remove(x->im, "../etc", &e), -ENOENT);
	assert_int_equal(sqlite3_exec(store_db(x->st), "UPDATE record SET state = 'success'",
				      NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(images_remove(x->im, x->sha[0], &e), 0);
	assert_false(on_disk(x, 0));
}

static void test_firmware_changed(void **state)
{
	struct fx *x = *state;
	struct err_info e = { 0 };
	char s[16];
	int fd;
	uint64_t size;

	assert_int_equal(upload(x, 3, x->img[3], IMG, &e), 0);
	images_firmware_changed(x->im, x->fw[3]);
	assert_string_equal(state_of(x, 3, s), "none");
	assert_int_equal(images_open(x->im, x->fw[3], &fd, &size, NULL), -ENOENT);
	/* without a fetcher, prefetch leaves an url-less firmware alone */
	assert_int_equal(images_prefetch(x->im, x->fw[3]), 0);
	assert_string_equal(state_of(x, 3, s), "none");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_upload_and_read),
		T(test_upload_refused),
		T(test_lru_eviction),
		T(test_pinning_and_full),
		T(test_firmware_changed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
