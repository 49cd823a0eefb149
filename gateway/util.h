/* SPDX-License-Identifier: MIT */
/* util.h - small helpers every module shares: bounded number parsing, id
 * checks and generation, clocks, constant-time compare, bounded copies.
 * Must not: allocate (except where noted), log, or touch global state. */
#ifndef OTAGW_UTIL_H
#define OTAGW_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define OTAGW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Parses exactly len bytes of decimal digits into *out; no sign, no spaces,
 * no empty string, nothing above max. 0 or -EINVAL / -ERANGE. */
int parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out) OTAGW_MUST_CHECK;

/* True when s (NUL-terminated) is 1..OTAGW_ID_MAX-1 chars of [A-Za-z0-9_.:-]. */
bool util_id_valid(const char *s);

/* 32 random bits (for jitter; not for secrets). */
uint32_t util_random_u32(void);
/* Writes 32 lowercase hex chars of fresh randomness + NUL into out[33]. */
void util_new_id(char out[33]);

/* Copies src into dst[cap] with truncation; returns -ENAMETOOLONG (and
 * still terminates) when src did not fit. */
int util_strlcpy(char *dst, const char *src, size_t cap);

/* Wall clock in ms since the epoch (timestamps), and a monotonic ms clock. */
int64_t util_now_ms(void);
int64_t util_mono_ms(void);

/* Compares a and b in time independent of where they differ (tokens). */
bool util_ct_equal(const char *a, const char *b);

/* Case-insensitive ASCII equality (signMethod "MD5" == "md5"). */
bool util_ieq(const char *a, const char *b);

#endif
