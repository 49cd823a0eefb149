/* SPDX-License-Identifier: MIT */
/* err.h - the one error space of otagw: 0, a negative errno, or a negative
 * OTAGW_E* code (from 1000 up). otagw_strerror() is the only place that turns
 * a code into text. struct err_info carries a human detail ("firmware 'x' not
 * found", "field 'version': expected a string") next to the code.
 * Must not: allocate, log, or depend on any other module. */
#ifndef OTAGW_ERR_H
#define OTAGW_ERR_H

#include <errno.h>
#include <stddef.h>

enum otagw_err {
	OTAGW_ESTATE = 1000,     /* illegal state transition */
	OTAGW_ESIGNATURE,        /* signature or digest mismatch */
	OTAGW_ESCHEMA,           /* database schema newer than this binary */
	OTAGW_ECONFIG,           /* invalid configuration */
	OTAGW_EAUTH,             /* missing or wrong credentials */
};

#define OTAGW_ERR_TEXT_MAX 256

/* A code plus a detail line. Embedded by the caller, filled by the callee. */
struct err_info {
	int code;
	char text[OTAGW_ERR_TEXT_MAX];
};

#if defined(__GNUC__)
#define OTAGW_MUST_CHECK __attribute__((warn_unused_result))
#define OTAGW_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define OTAGW_MUST_CHECK
#define OTAGW_PRINTF(a, b)
#endif

/* Static text for a code (positive or negative). Never NULL. */
const char *otagw_strerror(int code);

/* Records code and a formatted detail in e (e may be NULL). Returns code,
 * so callers can write `return err_set(e, -EINVAL, "...")`. */
int err_set(struct err_info *e, int code, const char *fmt, ...) OTAGW_PRINTF(3, 4);
#ifdef __clang_analyzer__
/* clang-tidy sees one file at a time: this tells it that err_set() returns code (else it
 * follows paths where `return err_set(e, -EINVAL, ...)` returns 0). err.c undefines it. */
#define err_set(e, code, ...)                                                                 \
	__extension__({                                                                       \
		int err_code_ = (code);                                                       \
		(err_set)((e), err_code_, __VA_ARGS__);                                       \
		err_code_;                                                                    \
	})
#endif

/* Resets e to {0, ""}. NULL: no-op. */
void err_clear(struct err_info *e);

/* The detail of e if any, else otagw_strerror(e->code). */
const char *err_text(const struct err_info *e);

#endif
