/* SPDX-License-Identifier: MIT */
/* cli_priv.h - what the command line tools' files share (cli.c,
 * cli_remote.c): exit statuses, sizes for people, option errors, and the
 * commands that talk to the daemon.
 * Must not: be included outside gateway/cli*.c. */
#ifndef OTAGW_CLI_PRIV_H
#define OTAGW_CLI_PRIV_H

#include <signal.h>
#include <stdint.h>

/* Exit statuses (cli.h). */
enum { CLI_EXIT_OK, CLI_EXIT_FAILED, CLI_EXIT_USAGE, CLI_EXIT_UNREACHABLE };

#define CLI_DEFAULT_CONFIG "/etc/otagw/otagw.conf"

/* "12.3 MiB" of n bytes into buf[16]; returns buf. */
const char *cli_size(uint64_t n, char buf[16]);
/* Reports getopt's error c (':' missing value, else unknown option) for
 * cmd ("import"); returns CLI_EXIT_USAGE. */
int cli_opt_error(const char *cmd, int c, char **argv);

/* `otagw import` and `otagw export` (argv[0] is the command); conf is the
 * -c file or NULL; stop becomes nonzero on SIGINT/SIGTERM (borrowed).
 * Return the exit status. */
int cli_import(int argc, char **argv, const char *conf, const volatile sig_atomic_t *stop);
int cli_export(int argc, char **argv, const char *conf, const volatile sig_atomic_t *stop);

#endif
