/* SPDX-License-Identifier: MIT */
/* log.c - stderr/syslog sink for LOGE..LOGD. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

/* Process-wide by nature (one stderr, one syslog); set before the loop runs. */
static enum log_level log_threshold = LOG_LVL_INFO;
static int log_syslog;

static const char *const log_names[] = { "E", "W", "I", "D" };
static const int log_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void gw_log_setup(enum log_level level, int use_syslog, const char *ident)
{
	log_threshold = level;
	if (use_syslog && !log_syslog)
		openlog(ident ? ident : "otagw", LOG_PID, LOG_DAEMON);
	else if (!use_syslog && log_syslog)
		closelog();
	log_syslog = use_syslog;
}

int gw_log_level_parse(const char *s, enum log_level *out)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	for (int i = 0; i < 4; i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int gw_log_enabled(enum log_level level)
{
	return level <= log_threshold;
}

void gw_log(enum log_level level, const char *mod, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (level > log_threshold)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: %s\n", tm.tm_year + 1900,
		tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		log_names[level], mod, line);
	if (log_syslog)
		syslog(log_prio[level], "%s: %s", mod, line);
}
