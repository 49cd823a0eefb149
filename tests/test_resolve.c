/* SPDX-License-Identifier: MIT */
/* test_resolve.c - cmocka tests for the off-loop resolver (cache/resolve.c)
 * in a real lws context: IPv4 and IPv6 literals answered from the loop
 * (never from inside resolve_start), "localhost" through the worker thread,
 * a name that does not exist, hostile host names, cancel in every state,
 * the queue bound, the loop-side deadline, and resolve_free() while a lookup
 * hangs inside getaddrinfo() (it must return within ~1 s).
 * getaddrinfo() is interposed by this program: the name "hang.test" sleeps
 * HANG_MS in the worker thread, every other name goes to the C library.
 * Must not: depend on DNS beyond /etc/hosts, or on test order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "resolve.h"
#include "util.h"

#define HANG_HOST "hang.test"
#define HANG_MS 3000

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

/* Interposes the C library's getaddrinfo() for this program (and lws). */
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");

	if (node && !strcmp(node, HANG_HOST)) {
		struct timespec ts = { HANG_MS / 1000, (HANG_MS % 1000) * 1000000L };

		nanosleep(&ts, NULL);
		return EAI_AGAIN;
	}
	return real(node, service, hints, res);
}

#define TICK_US (20 * 1000)      /* lws_service() waits for the next sul at most */

struct fx {
	struct lws_context *ctx;
	struct resolve *r;
	lws_sorted_usec_list_t tick;
};

/* What one callback saw. */
struct answer {
	int calls;
	int rc;
	char addr[RESOLVE_ADDR_MAX];
};

static void on_answer(void *arg, int rc, const char *addr)
{
	struct answer *a = arg;

	a->calls++;
	a->rc = rc;
	util_strlcpy(a->addr, addr ? addr : "", sizeof(a->addr));
	if (rc)
		assert_null(addr);
}

/* lws 4.1's lws_service() sleeps until the next event or sul: keep one due. */
static void fx_tick(lws_sorted_usec_list_t *sul)
{
	struct fx *f = lws_container_of(sul, struct fx, tick);

	lws_sul_schedule(f->ctx, 0, &f->tick, fx_tick, TICK_US);
}

static int fx_setup(void **state)
{
	struct lws_context_creation_info info;
	struct fx *f = calloc(1, sizeof(*f));
	struct err_info e = { 0 };

	assert_non_null(f);
	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.port = CONTEXT_PORT_NO_LISTEN;
	f->ctx = lws_create_context(&info);
	assert_non_null(f->ctx);
	assert_int_equal(resolve_new(&f->r, f->ctx, &e), 0);
	fx_tick(&f->tick);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	resolve_free(f->r);
	lws_sul_cancel(&f->tick);
	lws_context_destroy(f->ctx);
	free(f);
	return 0;
}

/* Services the loop until *calls reaches want or ms pass; returns the
 * longest single lws_service() turn in ms (the loop must never stall). */
static int64_t run_until(struct fx *f, const int *calls, int want, int ms)
{
	int64_t end = util_mono_ms() + ms, worst = 0;

	while ((!calls || *calls < want) && util_mono_ms() < end) {
		int64_t t0 = util_mono_ms();

		lws_service(f->ctx, 0);
		if (util_mono_ms() - t0 > worst)
			worst = util_mono_ms() - t0;
	}
	return worst;
}

/* ---- tests --------------------------------------------------------------- */

static void test_literal_v4(void **state)
{
	struct fx *f = *state;
	struct answer a = { 0 };

	assert_int_equal(resolve_start(f->r, "192.0.2.1", on_answer, &a, NULL), 0);
	assert_int_equal(a.calls, 0);            /* never from inside resolve_start */
	run_until(f, &a.calls, 1, 2000);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.rc, 0);
	assert_string_equal(a.addr, "192.0.2.1");
}

static void test_literal_v6(void **state)
{
	struct fx *f = *state;
	struct answer a = { 0 };

	assert_int_equal(resolve_start(f->r, "2001:DB8:0::1", on_answer, &a, NULL), 0);
	assert_int_equal(a.calls, 0);
	run_until(f, &a.calls, 1, 2000);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.rc, 0);
	assert_string_equal(a.addr, "2001:db8::1");
}

static void test_localhost(void **state)
{
	struct fx *f = *state;
	struct answer a = { 0 };

	assert_int_equal(resolve_start(f->r, "localhost", on_answer, &a, NULL), 0);
	assert_int_equal(a.calls, 0);
	run_until(f, &a.calls, 1, 5000);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.rc, 0);
	assert_string_equal(a.addr, "127.0.0.1");   /* IPv4 first */
}

static void test_nonexistent(void **state)
{
	struct fx *f = *state;
	struct answer a = { 0 };
	int64_t worst;

	assert_int_equal(resolve_start(f->r, "nonexistent.invalid", on_answer, &a, NULL), 0);
	worst = run_until(f, &a.calls, 1, 40000);
	assert_int_equal(a.calls, 1);
	assert_true(a.rc == -ENOENT || a.rc == -EAGAIN);
	assert_string_equal(a.addr, "");
	assert_true(worst < 500);
}

static void test_bad_hosts(void **state)
{
	static const char *const bad[] = {
		"", "a b", "host\r\nX: y", "host/path", "[::1]", "user@host", "h\xc3\xa9",
		"x;rm", "tab\there",
	};
	struct fx *f = *state;
	struct answer a = { 0 };
	char longname[RESOLVE_HOST_MAX + 8];
	size_t i;

	for (i = 0; i < OTAGW_ARRAY_SIZE(bad); i++)
		assert_int_equal(resolve_start(f->r, bad[i], on_answer, &a, NULL), -EINVAL);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(resolve_start(f->r, longname, on_answer, &a, NULL), -EINVAL);
	assert_int_equal(resolve_start(f->r, NULL, on_answer, &a, NULL), -EINVAL);
	assert_int_equal(resolve_start(f->r, "localhost", NULL, &a, NULL), -EINVAL);
	run_until(f, NULL, 0, 100);
	assert_int_equal(a.calls, 0);
}

/* Cancel a literal, a queued and a running lookup; another one still answers. */
static void test_cancel(void **state)
{
	struct fx *f = *state;
	struct answer lit = { 0 }, hang = { 0 }, queued = { 0 }, other = { 0 };
	struct resolve_req *q_lit, *q_hang, *q_queued;

	assert_int_equal(resolve_start(f->r, "192.0.2.7", on_answer, &lit, &q_lit), 0);
	assert_int_equal(resolve_start(f->r, HANG_HOST, on_answer, &hang, &q_hang), 0);
	assert_int_equal(resolve_start(f->r, "localhost", on_answer, &queued, &q_queued), 0);
	assert_int_equal(resolve_start(f->r, "localhost", on_answer, &other, NULL), 0);
	resolve_cancel(q_lit);
	run_until(f, NULL, 0, 200);             /* the thread is now inside "hang" */
	resolve_cancel(q_hang);
	resolve_cancel(q_queued);
	resolve_cancel(NULL);
	run_until(f, &other.calls, 1, HANG_MS + 3000);
	assert_int_equal(other.calls, 1);
	assert_int_equal(other.rc, 0);
	run_until(f, NULL, 0, 200);
	assert_int_equal(lit.calls, 0);
	assert_int_equal(hang.calls, 0);
	assert_int_equal(queued.calls, 0);
}

static void test_timeout(void **state)
{
	struct fx *f = *state;
	struct answer a = { 0 }, b = { 0 };
	int64_t t0 = util_mono_ms(), worst;

	resolve_set_timeout(f->r, 300);
	assert_int_equal(resolve_start(f->r, HANG_HOST, on_answer, &a, NULL), 0);
	assert_int_equal(resolve_start(f->r, "192.0.2.9", on_answer, &b, NULL), 0);
	worst = run_until(f, &a.calls, 1, 2000);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.rc, -EAGAIN);
	assert_int_equal(b.calls, 1);          /* literals do not wait for the thread */
	assert_true(util_mono_ms() - t0 < 1500);
	assert_true(worst < 200);
}

static void test_queue_bound(void **state)
{
	struct fx *f = *state;
	struct answer a = { 0 };
	int i;

	assert_int_equal(resolve_start(f->r, HANG_HOST, on_answer, &a, NULL), 0);
	run_until(f, NULL, 0, 200);             /* the thread takes it off the queue */
	for (i = 0; i < RESOLVE_QUEUE_MAX; i++)
		assert_int_equal(resolve_start(f->r, "localhost", on_answer, &a, NULL), 0);
	assert_int_equal(resolve_start(f->r, "localhost", on_answer, &a, NULL), -ENOBUFS);
	assert_int_equal(resolve_start(f->r, "192.0.2.1", on_answer, &a, NULL), 0);
	assert_int_equal(a.calls, 0);
}

/* resolve_free() with a lookup stuck in getaddrinfo() and more queued. */
static void test_free_while_pending(void **state)
{
	struct fx *f = *state;
	struct answer a = { 0 }, b = { 0 }, c = { 0 };
	int64_t t0;

	assert_int_equal(resolve_start(f->r, HANG_HOST, on_answer, &a, NULL), 0);
	assert_int_equal(resolve_start(f->r, "localhost", on_answer, &b, NULL), 0);
	assert_int_equal(resolve_start(f->r, "192.0.2.1", on_answer, &c, NULL), 0);
	run_until(f, NULL, 0, 100);
	assert_int_equal(c.calls, 1);
	t0 = util_mono_ms();
	resolve_free(f->r);
	f->r = NULL;
	assert_true(util_mono_ms() - t0 < 1500);
	run_until(f, NULL, 0, 200);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 0);
}

/* resolve_free() right after starting: the thread may not have run yet. */
static void test_free_immediately(void **state)
{
	struct fx *f = *state;
	struct answer a = { 0 };

	assert_int_equal(resolve_start(f->r, "localhost", on_answer, &a, NULL), 0);
	assert_int_equal(resolve_start(f->r, "192.0.2.1", on_answer, &a, NULL), 0);
	resolve_free(f->r);
	f->r = NULL;
	run_until(f, NULL, 0, 100);
	assert_int_equal(a.calls, 0);
}

/* Many lookups in a row through one thread, answered in order. */
static void test_many(void **state)
{
	struct fx *f = *state;
	struct answer a[20];
	int i, total = 0;

	memset(a, 0, sizeof(a));
	for (i = 0; i < 20; i++)
		assert_int_equal(resolve_start(f->r, i % 2 ? "localhost" : "127.0.0.2", on_answer,
					       &a[i], NULL), 0);
	while (total < 20) {
		int before = total;

		run_until(f, NULL, 0, 50);
		for (total = 0, i = 0; i < 20; i++)
			total += a[i].calls;
		if (total == before && total < 20)
			run_until(f, NULL, 0, 200);
	}
	for (i = 0; i < 20; i++) {
		assert_int_equal(a[i].calls, 1);
		assert_int_equal(a[i].rc, 0);
		assert_string_equal(a[i].addr, i % 2 ? "127.0.0.1" : "127.0.0.2");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_literal_v4, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_literal_v6, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_localhost, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_nonexistent, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_hosts, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_cancel, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_timeout, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_queue_bound, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_free_while_pending, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_free_immediately, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_many, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
