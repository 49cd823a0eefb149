/* SPDX-License-Identifier: MIT */
/* test_session.c - the live session registry: bind, find, unbind (twice),
 * displacement of an older session, re-binding, bad ids, and 2000 sessions
 * through table growth. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"
#include "util.h"

#define MANY 2000

static const struct transport_ops fake_ops = { .name = "fake" };

/* A transport's connection state with the session embedded, as in real ones. */
struct conn {
	int fd;
	struct session s;
};

static int reg_setup(void **state)
{
	struct session_reg *r = NULL;

	assert_int_equal(session_reg_new(&r), 0);
	*state = r;
	return 0;
}

static int reg_teardown(void **state)
{
	session_reg_free(*state);
	return 0;
}

static void conn_init(struct conn *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->s.ops = &fake_ops;
	c->s.next = (struct session *)(uintptr_t)0xdead;   /* garbage the registry must ignore */
}

static void test_bind_find_unbind(void **state)
{
	struct session_reg *r = *state;
	struct session *old = (struct session *)1;
	struct conn a, b;

	conn_init(&a, 3);
	assert_null(session_reg_find(r, "d1"));
	assert_int_equal(session_reg_bind(r, &a.s, "d1", &old), 0);
	assert_null(old);
	assert_string_equal(a.s.device_id, "d1");
	assert_ptr_equal(session_reg_find(r, "d1"), &a.s);
	assert_null(session_reg_find(r, "d2"));
	assert_null(session_reg_find(r, ""));
	assert_null(session_reg_find(r, NULL));
	assert_int_equal(session_reg_count(r), 1);
	session_reg_unbind(r, &a.s);
	assert_null(session_reg_find(r, "d1"));
	assert_string_equal(a.s.device_id, "d1");    /* kept for the caller */
	assert_int_equal(session_reg_count(r), 0);
	session_reg_unbind(r, &a.s);                    /* twice: no-op */
	session_reg_unbind(r, NULL);
	assert_int_equal(session_reg_count(r), 0);
	/* An unbound session's stale id does not unbind its successor. */
	conn_init(&b, 4);
	assert_int_equal(session_reg_bind(r, &b.s, "d1", &old), 0);
	assert_null(old);
	session_reg_unbind(r, &a.s);
	assert_ptr_equal(session_reg_find(r, "d1"), &b.s);
	assert_int_equal(session_reg_count(r), 1);
}

static void test_bad_ids(void **state)
{
	static const char *const bad[] = {
		"", "a b", "a/b", "../x", "\xc3\xa9",
		"01234567890123456789012345678901234567890123456789012345678901234",
	};
	struct session_reg *r = *state;
	struct session *old;
	struct conn a;

	conn_init(&a, 3);
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(bad); i++)
		assert_int_equal(session_reg_bind(r, &a.s, bad[i], &old), -EINVAL);
	assert_int_equal(session_reg_bind(r, &a.s, NULL, &old), -EINVAL);
	assert_int_equal(session_reg_count(r), 0);
}

static void test_displace(void **state)
{
	struct session_reg *r = *state;
	struct session *old = NULL;
	struct conn a, b;

	conn_init(&a, 3);
	conn_init(&b, 4);
	assert_int_equal(session_reg_bind(r, &a.s, "d1", &old), 0);
	assert_int_equal(session_reg_bind(r, &b.s, "d1", &old), 0);
	assert_ptr_equal(old, &a.s);
	assert_string_equal(a.s.device_id, "");       /* a speaks for nobody now */
	assert_ptr_equal(session_reg_find(r, "d1"), &b.s);
	assert_int_equal(session_reg_count(r), 1);
	/* The displaced transport unbinds on close: the new session stays. */
	session_reg_unbind(r, &a.s);
	assert_ptr_equal(session_reg_find(r, "d1"), &b.s);
	assert_int_equal(session_reg_count(r), 1);
	/* Binding the same session again to the same id displaces nobody. */
	assert_int_equal(session_reg_bind(r, &b.s, "d1", &old), 0);
	assert_null(old);
	assert_int_equal(session_reg_count(r), 1);
}

static void test_rebind(void **state)
{
	struct session_reg *r = *state;
	struct session *old = NULL;
	struct conn a;

	conn_init(&a, 3);
	assert_int_equal(session_reg_bind(r, &a.s, "d1", &old), 0);
	assert_int_equal(session_reg_bind(r, &a.s, "d2", &old), 0);
	assert_null(old);
	assert_null(session_reg_find(r, "d1"));
	assert_ptr_equal(session_reg_find(r, "d2"), &a.s);
	assert_int_equal(session_reg_count(r), 1);
	/* A failed bind leaves the registry as it was. */
	assert_int_equal(session_reg_bind(r, &a.s, "bad id", &old), -EINVAL);
	assert_ptr_equal(session_reg_find(r, "d2"), &a.s);
	session_reg_unbind(r, &a.s);
	assert_int_equal(session_reg_count(r), 0);
}

static int container_of_fd(const struct session *s)
{
	return ((const struct conn *)(const void *)((const char *)s -
						    offsetof(struct conn, s)))->fd;
}

static void bind_all(struct session_reg *r, struct conn *c, size_t n, int gen)
{
	for (size_t i = 0; i < n; i++) {
		char id[32];
		struct session *old = NULL;

		snprintf(id, sizeof(id), "dev-%05zu", i);
		conn_init(&c[i], gen);
		assert_int_equal(session_reg_bind(r, &c[i].s, id, &old), 0);
		if (old)
			assert_int_equal(container_of_fd(old), gen - 1);
	}
}

static void test_many(void **state)
{
	struct session_reg *r = *state;
	struct conn *first = calloc(MANY, sizeof(*first));
	struct conn *second = calloc(MANY / 2, sizeof(*second));

	assert_non_null(first);
	assert_non_null(second);
	bind_all(r, first, MANY, 1);
	assert_int_equal(session_reg_count(r), MANY);
	/* Reconnect half of them: each displaces its first-generation session. */
	bind_all(r, second, MANY / 2, 2);
	assert_int_equal(session_reg_count(r), MANY);
	for (size_t i = 0; i < MANY; i++) {
		char id[32];
		struct session *s;

		snprintf(id, sizeof(id), "dev-%05zu", i);
		s = session_reg_find(r, id);
		assert_ptr_equal(s, i < MANY / 2 ? &second[i].s : &first[i].s);
		assert_string_equal(s->device_id, id);
	}
	for (size_t i = 0; i < MANY; i++)
		session_reg_unbind(r, &first[i].s);
	assert_int_equal(session_reg_count(r), MANY / 2);
	for (size_t i = 0; i < MANY / 2; i++)
		session_reg_unbind(r, &second[i].s);
	assert_int_equal(session_reg_count(r), 0);
	assert_null(session_reg_find(r, "dev-00000"));
	free(first);
	free(second);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bind_find_unbind, reg_setup, reg_teardown),
		cmocka_unit_test_setup_teardown(test_bad_ids, reg_setup, reg_teardown),
		cmocka_unit_test_setup_teardown(test_displace, reg_setup, reg_teardown),
		cmocka_unit_test_setup_teardown(test_rebind, reg_setup, reg_teardown),
		cmocka_unit_test_setup_teardown(test_many, reg_setup, reg_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
