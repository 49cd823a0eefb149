/* SPDX-License-Identifier: MIT */
/* cli.h - the command line tools in the otagw binary, besides the daemon:
 *   otagw bundle create -o OUT [--key PRIVATE.pem] MANIFEST_OR_DIR
 *   otagw import FILE [--url URL] [--token T]
 *   otagw export [--since MS] [--url URL] [--token T] FILE
 *   otagw ctl [--url URL] [--token T] [--json] COMMAND ...
 * import, export and ctl talk to a running daemon's REST API over HTTP (an
 * lws client in a private context); bundle create works offline
 * (libarchive, mbedTLS). Output: progress on a terminal (stderr), results
 * on stdout. Exit status: 0 success, 1 refused or failed, 2 usage, 3 the
 * daemon could not be reached; ctl adds 4 not found (404), 5 unauthorized
 * (401/403), 6 conflict or invalid input (400/409/422).
 * Must not: open the daemon's store or cache (the daemon owns them). */
#ifndef OTAGW_CLI_H
#define OTAGW_CLI_H

#include <stdbool.h>

/* True when name ("bundle", "import", "export", "ctl") is a CLI command. */
bool cli_is_command(const char *name);
/* Runs the command argv[0] with its arguments; returns the exit status.
 * config_path is the -c file given before the command, or NULL (default
 * /etc/otagw/otagw.conf), used for the default URL and token. */
int cli_main(int argc, char **argv, const char *config_path);

#endif
