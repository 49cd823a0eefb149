/* SPDX-License-Identifier: MIT */
/* log.h - levelled logging to stderr and, when enabled, syslog.
 * The level and syslog flag are process-wide because logging is: they are set
 * once by main() before the loop starts. Each .c defines LOG_MOD ("store",
 * "api", ...) before including this header.
 * Must not: log tokens, keys or credentialed URLs (callers' duty). */
#ifndef OTAGW_LOG_H
#define OTAGW_LOG_H

#include "err.h"

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Sets the threshold and whether lines also go to syslog(3) with ident. */
void gw_log_setup(enum log_level level, int use_syslog, const char *ident);
/* Parses "error" | "warn" | "info" | "debug"; -EINVAL otherwise. */
int gw_log_level_parse(const char *s, enum log_level *out);
int gw_log_enabled(enum log_level level);
void gw_log(enum log_level level, const char *mod, const char *fmt, ...) OTAGW_PRINTF(3, 4);

#ifndef LOG_MOD
#define LOG_MOD "otagw"
#endif
#define LOGE(...) gw_log(LOG_LVL_ERROR, LOG_MOD, __VA_ARGS__)
#define LOGW(...) gw_log(LOG_LVL_WARN, LOG_MOD, __VA_ARGS__)
#define LOGI(...) gw_log(LOG_LVL_INFO, LOG_MOD, __VA_ARGS__)
#define LOGD(...) do { if (gw_log_enabled(LOG_LVL_DEBUG)) gw_log(LOG_LVL_DEBUG, LOG_MOD, __VA_ARGS__); } while (0)

#endif
