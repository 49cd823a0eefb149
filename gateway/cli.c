/* SPDX-License-Identifier: MIT */
/* cli.c - the command line tools besides the daemon: bundle create, import,
 * export, ctl; see cli.h. Dispatch, signals, sizes for people, bundle
 * create's arguments. import and export are in cli_remote.c (with the
 * daemon's address and token and the progress line that ctl shares), ctl
 * in cli_ctl.c; the work is in cli_bundle.c (archives) and cli_http.c
 * (requests).
 * Must not: open the daemon's store or cache; print the API token. */
#define LOG_MOD "cli"
#include "cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_bundle.h"
#include "cli_priv.h"
#include "util.h"

#define CLI_KEY_MAX 16384                     /* bytes of a PEM private key */

/* Set by SIGINT/SIGTERM while a transfer runs: the one file-scope variable. */
static volatile sig_atomic_t cli_stop;

/* ---- helpers ------------------------------------------------------------------ */

static void cli_on_signal(int sig)
{
	(void)sig;
	cli_stop = 1;
}

static void cli_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_on_signal;          /* no SA_RESTART: poll() returns */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);     /* a daemon that hangs up must not kill us */
}

const char *cli_size(uint64_t n, char buf[16])
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < OTAGW_ARRAY_SIZE(unit)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, 16, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
	return buf;
}

/* Reads a small text file (a PEM key) whole, NUL-terminated; NULL on error. */
static char *cli_read_text(const char *path, size_t max)
{
	FILE *f = fopen(path, "re");
	char *buf = f ? calloc(1, max + 1) : NULL;
	size_t n = buf ? fread(buf, 1, max + 1, f) : 0;

	if (f)
		fclose(f);
	if (!buf || !n || n > max) {
		free(buf);
		return NULL;
	}
	return buf;
}

int cli_opt_error(const char *cmd, int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		fprintf(stderr, "otagw %s: option '%s' needs a value (see --help)\n", cmd, arg);
	else
		fprintf(stderr, "otagw %s: unknown option '%s' (see --help)\n", cmd, arg);
	return CLI_EXIT_USAGE;
}

/* ---- bundle create ---------------------------------------------------------------- */

static void cli_bundle_usage(FILE *f)
{
	fprintf(f, "usage: otagw bundle create -o OUT [--key PRIVATE.pem] MANIFEST_OR_DIR\n"
		   "  Builds an offline bundle from manifest.json (or DIR/manifest.json) and\n"
		   "  the images it names (relative to the manifest's directory). Fills in\n"
		   "  each image's size and sha256, sign/signMethod when absent (the sha256)\n"
		   "  and createTime when absent.\n"
		   "  -o, --output OUT   archive to write; .tar, .tar.gz, .tgz, .tar.xz or .zip\n"
		   "  -k, --key FILE     EC P-256 private key (PEM, unencrypted): adds\n"
		   "                     manifest.sig over manifest.json\n"
		   "  -h, --help         this text\n");
}

/* Options of bundle create into *out, *key, *input. -1 usage error, 1 help. */
static int cli_bundle_args(int argc, char **argv, const char **out, const char **key,
			   const char **input)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' }, { "key", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 }
	};
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': *out = optarg; break;
		case 'k': *key = optarg; break;
		case 'h': cli_bundle_usage(stdout); return 1;
		default: cli_opt_error("bundle create", c, argv); return -1;
		}
	}
	if (!*out || optind + 1 != argc) {
		fprintf(stderr, "otagw bundle create: %s\n",
			!*out ? "-o OUT is required" : "give exactly one MANIFEST_OR_DIR");
		cli_bundle_usage(stderr);
		return -1;
	}
	*input = argv[optind];
	return 0;
}

static int cli_bundle_create(int argc, char **argv)
{
	const char *out = NULL, *key_path = NULL, *input = NULL;
	struct cli_bundle_result r;
	struct cli_manifest *m = NULL;
	struct err_info e = { 0 };
	enum cli_bundle_format f;
	char *key = NULL, a[16];
	int rc = cli_bundle_args(argc, argv, &out, &key_path, &input);

	if (rc)
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	if (cli_bundle_format_of(out, &f)) {
		fprintf(stderr, "otagw bundle create: %s: the name must end in .tar, .tar.gz, "
				".tgz, .tar.xz or .zip\n", out);
		return CLI_EXIT_USAGE;
	}
	if (key_path) {
		key = cli_read_text(key_path, CLI_KEY_MAX);
		if (!key) {
			fprintf(stderr, "otagw bundle create: cannot read the key %s\n", key_path);
			return CLI_EXIT_FAILED;
		}
	}
	rc = cli_manifest_load(&m, input, &e);
	if (!rc)
		rc = cli_bundle_write(m, out, key, &r, &e);
	if (rc)
		fprintf(stderr, "otagw bundle create: %s\n", err_text(&e));
	else
		printf("%s: %u firmware, %u image%s, %s, %s (manifest sha256 %s)\n", out,
		       r.firmware, r.images, r.images == 1 ? "" : "s", cli_size(r.image_bytes, a),
		       r.is_signed ? "signed" : "unsigned", r.manifest_sha256);
	cli_manifest_free(m);
	if (key)
		explicit_bzero(key, strlen(key));
	free(key);
	return rc ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

static int cli_bundle(int argc, char **argv, const char *conf)
{
	if (argc >= 2 && !strcmp(argv[1], "create"))
		return cli_bundle_create(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		cli_bundle_usage(stdout);
		return CLI_EXIT_OK;
	}
	fprintf(stderr, "otagw bundle: %s subcommand\n", argc < 2 ? "missing" : "unknown");
	cli_bundle_usage(stderr);
	return CLI_EXIT_USAGE;
}

/* import and export end cleanly on SIGINT/SIGTERM (no FILE.tmp left, the
 * import's id shown); bundle create keeps the default (OUT is never
 * half-written, at worst OUT.tmp stays). */
static int cli_remote_import(int argc, char **argv, const char *conf)
{
	cli_signals();
	return cli_import(argc, argv, conf, &cli_stop);
}

static int cli_remote_export(int argc, char **argv, const char *conf)
{
	cli_signals();
	return cli_export(argc, argv, conf, &cli_stop);
}

/* ctl: Ctrl-C ends a request (an upload) cleanly, with exit status 1. */
static int cli_remote_ctl(int argc, char **argv, const char *conf)
{
	cli_signals();
	return cli_ctl(argc, argv, conf, &cli_stop);
}

/* ---- entry ------------------------------------------------------------------------ */

static const struct {
	const char *name;
	int (*run)(int argc, char **argv, const char *conf);
} cli_cmds[] = {
	{ "bundle", cli_bundle },
	{ "import", cli_remote_import },
	{ "export", cli_remote_export },
	{ "ctl", cli_remote_ctl },
};

bool cli_is_command(const char *name)
{
	for (size_t i = 0; name && i < OTAGW_ARRAY_SIZE(cli_cmds); i++)
		if (!strcmp(name, cli_cmds[i].name))
			return true;
	return false;
}

int cli_main(int argc, char **argv, const char *config_path)
{
	for (size_t i = 0; argc > 0 && i < OTAGW_ARRAY_SIZE(cli_cmds); i++) {
		if (!strcmp(argv[0], cli_cmds[i].name)) {
			cli_stop = 0;
			return cli_cmds[i].run(argc, argv, config_path);
		}
	}
	fprintf(stderr, "otagw: unknown command '%s' (bundle, import, export, ctl)\n",
		argc > 0 ? argv[0] : "");
	return CLI_EXIT_USAGE;
}
