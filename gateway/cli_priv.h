/* SPDX-License-Identifier: MIT */
/* cli_priv.h - what the command line tools' files share (cli.c,
 * cli_remote.c, cli_ctl.c): exit statuses, sizes for people, option errors,
 * the daemon's address and token, progress lines, and the commands that
 * talk to the daemon.
 * Must not: be included outside gateway/cli*.c. */
#ifndef OTAGW_CLI_PRIV_H
#define OTAGW_CLI_PRIV_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "fetch.h"

/* Exit statuses (cli.h). The last three are `otagw ctl`'s: what the
 * daemon's answer said went wrong. */
enum {
	CLI_EXIT_OK,
	CLI_EXIT_FAILED,              /* refused or failed (other 4xx/5xx, I/O) */
	CLI_EXIT_USAGE,
	CLI_EXIT_UNREACHABLE,         /* no connection to the daemon */
	CLI_EXIT_NOT_FOUND,           /* 404 */
	CLI_EXIT_UNAUTHORIZED,        /* 401, 403 */
	CLI_EXIT_INVALID,             /* 400, 409, 422: conflict or invalid input */
};

#define CLI_DEFAULT_CONFIG "/etc/otagw/otagw.conf"

/* Where the daemon is and how to authenticate. */
struct cli_target {
	struct fetch_url base;                /* path without a trailing / */
	char token[CONFIG_STR_MAX];
};

/* A progress line on stderr, drawn only when stderr is a terminal. */
struct cli_progress {
	bool tty;
	bool drawn;
	int64_t start_ms;                     /* monotonic, for the rate */
	int64_t last_ms;
	const char *label;                    /* borrowed, "uploading" */
};

/* "12.3 MiB" of n bytes into buf[16]; returns buf. */
const char *cli_size(uint64_t n, char buf[16]);
/* Reports getopt's error c (':' missing value, else unknown option) for
 * cmd ("import"); returns CLI_EXIT_USAGE. */
int cli_opt_error(const char *cmd, int c, char **argv);

/* The daemon for command cmd ("import", "ctl"; used in messages): URL from
 * url_opt, else $OTAGW_URL, else http://[http] bind:port of the config
 * conf (NULL: the default file when readable, else built-in defaults);
 * token from token_opt, else $OTAGW_TOKEN, else [http] api_token. 0, or
 * -1 after saying why on stderr (a usage problem). */
int cli_target(const char *cmd, struct cli_target *t, const char *url_opt, const char *token_opt,
	       const char *conf);
/* t's URL with path ("/api/...", with its query) appended, into u. */
int cli_url(const struct cli_target *t, const char *path, struct fetch_url *u,
	    struct err_info *e) OTAGW_MUST_CHECK;
/* The "error" text of a JSON answer, else the start of the body, into
 * out[cap]: UTF-8 kept, control characters replaced. */
void cli_answer_text(const char *body, char *out, size_t cap);

/* Progress of a transfer: init (tty from isatty(stderr), clock started),
 * redraw (at most every 100 ms unless force; total 0 = unknown: bytes and
 * rate only), end (newline when a line was drawn). */
void cli_progress_init(struct cli_progress *p, const char *label);
void cli_progress(struct cli_progress *p, uint64_t done, uint64_t total, bool force);
void cli_progress_end(struct cli_progress *p);
/* One plain line on stderr: "<what> 3.0 MiB in 0.4 s (7.5 MiB/s)". */
void cli_progress_summary(const struct cli_progress *p, const char *what, uint64_t done);

/* `otagw import` and `otagw export` (argv[0] is the command); conf is the
 * -c file or NULL; stop becomes nonzero on SIGINT/SIGTERM (borrowed).
 * Return the exit status. */
int cli_import(int argc, char **argv, const char *conf, const volatile sig_atomic_t *stop);
int cli_export(int argc, char **argv, const char *conf, const volatile sig_atomic_t *stop);
/* `otagw ctl` (argv[0] is "ctl"), same contract; see cli_ctl.c. */
int cli_ctl(int argc, char **argv, const char *conf, const volatile sig_atomic_t *stop);

#endif
