/* SPDX-License-Identifier: MIT */
/* cli_remote.c - `otagw import` and `otagw export`: the daemon's address
 * and token (option, environment, configuration), the requests through
 * cli_http.c, polling an import, a progress line on a terminal. The
 * address, token, answer text and progress helpers are shared with
 * cli_ctl.c through cli_priv.h.
 * Must not: print the API token; leave a half-written export at FILE. */
#define LOG_MOD "cli"
#include <cJSON.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_http.h"
#include "cli_priv.h"
#include "config.h"
#include "fetch.h"
#include "otagw_limits.h"
#include "util.h"

#define CLI_POLL_MS 200                       /* between GET /api/bundles/{id} */
#define CLI_POLL_GIVE_UP_MS (30LL * 60 * 1000)
#define CLI_POLL_RETRIES 25                   /* failed polls in a row (5 s) */
#define CLI_IDLE_S 120                        /* s without progress in a transfer */
#define CLI_PROGRESS_MS 100                   /* between redraws */

/* The options of import and export. */
struct cli_remote_args {
	const char *url, *token, *conf, *file;
	const char *since;                     /* export only */
	bool quiet;
	const volatile sig_atomic_t *stop;     /* borrowed */
};

/* ---- progress and answers ---------------------------------------------------------- */

void cli_progress_init(struct cli_progress *p, const char *label)
{
	memset(p, 0, sizeof(*p));
	p->tty = isatty(STDERR_FILENO) == 1;
	p->label = label;
	p->start_ms = util_mono_ms();
}

/* "5.1 MiB/s" of done bytes since p started, into buf[24]. */
static const char *cli_rate(const struct cli_progress *p, uint64_t done, int64_t now,
			    char buf[24])
{
	int64_t ms = now - p->start_ms;
	char sz[16];

	if (ms < 1 || !done)
		snprintf(buf, 24, "-");
	else
		snprintf(buf, 24, "%s/s", cli_size((uint64_t)((double)done * 1000 / (double)ms), sz));
	return buf;
}

void cli_progress(struct cli_progress *p, uint64_t done, uint64_t total, bool force)
{
	char a[16], b[16], r[24], bar[31];
	int64_t now = util_mono_ms();
	unsigned pct = total ? (unsigned)(done >= total ? 100 : done * 100 / total) : 0;

	if (!p->tty || (!force && p->drawn && now - p->last_ms < CLI_PROGRESS_MS))
		return;
	p->last_ms = now;
	p->drawn = true;
	if (!total) {
		fprintf(stderr, "\r%-10s %s  %s\033[K", p->label, cli_size(done, a),
			cli_rate(p, done, now, r));
		return;
	}
	memset(bar, ' ', 30);
	memset(bar, '#', pct * 30 / 100);
	bar[30] = '\0';
	fprintf(stderr, "\r%-10s [%s] %3u%%  %s / %s  %s\033[K", p->label, bar, pct,
		cli_size(done, a), cli_size(total, b), cli_rate(p, done, now, r));
}

void cli_progress_end(struct cli_progress *p)
{
	if (p->tty && p->drawn)
		fputc('\n', stderr);
	p->drawn = false;
}

void cli_progress_summary(const struct cli_progress *p, const char *what, uint64_t done)
{
	int64_t ms = util_mono_ms() - p->start_ms;
	char a[16], r[24];

	fprintf(stderr, "%s %s in %.*f s (%s)\n", what, cli_size(done, a), ms < 10000 ? 2 : 0,
		(double)ms / 1000, cli_rate(p, done, util_mono_ms(), r));
}

void cli_answer_text(const char *body, char *out, size_t cap)
{
	cJSON *j = body ? cJSON_Parse(body) : NULL;
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
	const unsigned char *s = (const unsigned char *)(cJSON_IsString(err) ? err->valuestring :
							   body ? body : "");
	size_t i = 0;

	/* UTF-8 is kept; C0, DEL and C1 controls never reach the terminal */
	for (; *s && i + 1 < cap; s++) {
		bool c1 = s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f;

		s += c1;
		out[i++] = (char)(c1 || *s < 0x20 || *s == 0x7f ? ' ' : *s);
	}
	if (*s) {                /* cut: no half character at the end */
		while (i && ((unsigned char)out[i - 1] & 0xc0) == 0x80)
			i--;
		if (i && (unsigned char)out[i - 1] >= 0xc0)
			i--;
	}
	out[i] = '\0';
	cJSON_Delete(j);
}

/* ---- the daemon's address ------------------------------------------------------- */

/* The config at conf (explicit), else the default file when readable, else
 * built-in defaults. */
static int cli_config(const char *cmd, struct config *cfg, const char *conf)
{
	struct err_info e = { 0 };

	config_defaults(cfg);
	if (!conf && !access(CLI_DEFAULT_CONFIG, R_OK))
		conf = CLI_DEFAULT_CONFIG;
	if (conf && config_load(cfg, conf, &e)) {
		fprintf(stderr, "otagw %s: %s\n", cmd, err_text(&e));
		return -1;
	}
	return 0;
}

/* "http://bind:port" of the config's API. */
static int cli_config_url(const char *cmd, const struct config *cfg, char *url, size_t cap)
{
	const char *host = cfg->http.bind;

	if (!cfg->http.port) {
		fprintf(stderr, "otagw %s: the configuration disables the HTTP API "
				"([http] port = 0); give --url\n", cmd);
		return -1;
	}
	if (!host[0] || !strcmp(host, "0.0.0.0"))
		host = "127.0.0.1";
	snprintf(url, cap, "http://%s:%u", host, cfg->http.port);
	return 0;
}

int cli_target(const char *cmd, struct cli_target *t, const char *url_opt, const char *token_opt,
	       const char *conf)
{
	const char *url = url_opt ? url_opt : getenv("OTAGW_URL"), *why;
	const char *token = token_opt ? token_opt : getenv("OTAGW_TOKEN");
	char from_cfg[CONFIG_STR_MAX];
	struct config cfg;
	size_t n;

	if (url && !url[0])
		url = NULL;
	if (!url || !token) {
		if (cli_config(cmd, &cfg, conf))
			return -1;
		if (!url && cli_config_url(cmd, &cfg, from_cfg, sizeof(from_cfg)))
			return -1;
		url = url ? url : from_cfg;
		token = token ? token : cfg.http.api_token;
	}
	why = fetch_url_parse(url, &t->base);
	if (!why && t->base.tls)
		why = "https:// is not supported (the daemon's API is plain HTTP)";
	if (!why && strchr(t->base.path, '?'))
		why = "the URL must not have a query";
	if (why || util_strlcpy(t->token, token, sizeof(t->token))) {
		fprintf(stderr, "otagw %s: %s%s\n", cmd, why ? "bad URL: " : "",
			why ? why : "the API token is too long");
		return -1;
	}
	n = strlen(t->base.path);
	while (n && t->base.path[n - 1] == '/')
		t->base.path[--n] = '\0';
	return 0;
}

int cli_url(const struct cli_target *t, const char *path, struct fetch_url *u, struct err_info *e)
{
	*u = t->base;
	if ((size_t)snprintf(u->path, sizeof(u->path), "%s%s", t->base.path, path) >=
	    sizeof(u->path))
		return err_set(e, -ENAMETOOLONG, "the URL is too long");
	return 0;
}

/* The exit status for a failed request, after saying why. */
static int cli_http_fail(const char *cmd, const struct cli_target *t, int rc,
			 const struct err_info *e)
{
	if (rc == -ECONNREFUSED) {
		fprintf(stderr, "otagw %s: cannot reach the daemon at %s: %s\n", cmd,
			t->base.host_hdr, err_text(e));
		return CLI_EXIT_UNREACHABLE;
	}
	fprintf(stderr, "otagw %s: %s\n", cmd, err_text(e));
	return CLI_EXIT_FAILED;
}

/* A non-2xx answer: say what the daemon said. */
static int cli_refused(const char *cmd, const struct cli_http_resp *resp)
{
	char text[OTAGW_ERR_TEXT_MAX];

	cli_answer_text(resp->body, text, sizeof(text));
	fprintf(stderr, "otagw %s: HTTP %d: %s%s\n", cmd, resp->status,
		text[0] ? text : "(no text)",
		resp->status == 401 ? " (give --token or set OTAGW_TOKEN)" : "");
	return CLI_EXIT_FAILED;
}

/* ---- import and export: common options ---------------------------------------------- */

/* Options of import/export (--since for export only) and one FILE.
 * -1 usage error, 1 help shown. */
static int cli_remote_args(const char *cmd, int argc, char **argv, bool since,
			   void (*usage)(FILE *), struct cli_remote_args *a)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "token", required_argument, NULL, 't' },
		{ "config", required_argument, NULL, 'c' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "since", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 }
	};
	struct option o[OTAGW_ARRAY_SIZE(opts)];
	int c;

	memcpy(o, opts, sizeof(o));
	if (!since)
		memset(&o[5], 0, sizeof(o[5]));  /* "since" is the last one */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, since ? ":u:t:c:s:qh" : ":u:t:c:qh", o, NULL)) != -1) {
		switch (c) {
		case 'u': a->url = optarg; break;
		case 't': a->token = optarg; break;
		case 'c': a->conf = optarg; break;
		case 's': a->since = optarg; break;
		case 'q': a->quiet = true; break;
		case 'h': usage(stdout); return 1;
		default: cli_opt_error(cmd, c, argv); return -1;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "otagw %s: give exactly one FILE\n", cmd);
		usage(stderr);
		return -1;
	}
	a->file = argv[optind];
	return 0;
}

/* ---- import ----------------------------------------------------------------------- */

static void cli_import_usage(FILE *f)
{
	fprintf(f, "usage: otagw import [--url URL] [--token T] [-c CONFIG] [-q] FILE\n"
		   "  Sends the bundle FILE to the running daemon (POST /api/bundles), then\n"
		   "  follows the import and prints its final state as JSON.\n"
		   "  -u, --url URL      the daemon's API, http:// only (default:\n"
		   "                     $OTAGW_URL, else http://[http] bind:[http] port of\n"
		   "                     the configuration)\n"
		   "  -t, --token T      API token (default: $OTAGW_TOKEN, else [http]\n"
		   "                     api_token; prefer the variable: options show in ps)\n"
		   "  -c, --config FILE  configuration to read (default " CLI_DEFAULT_CONFIG ")\n"
		   "  -q, --quiet        no progress bar\n"
		   "  -h, --help         this text\n"
		   "  Exit status: 0 imported, 1 refused or failed, 2 usage, 3 daemon\n"
		   "  unreachable.\n");
}

static void cli_upload_sent(void *arg, uint64_t sent, uint64_t total)
{
	cli_progress(arg, sent, total, sent == total);
}

/* GET /api/bundles before the upload: the daemon closes the connection
 * when it refuses an upload at its headers (token, quota), and the lws
 * client, busy sending, loses that answer. So the token and the daemon's
 * support for bundles are checked first, with an answer we can show. */
static int cli_import_preflight(struct cli_http *h, const struct cli_target *t,
				const struct cli_remote_args *a)
{
	struct fetch_url u;
	struct cli_http_resp resp = { 0 };
	struct cli_http_req r = { .u = &u, .method = "GET", .token = t->token, .body_fd = -1,
				  .idle_s = 30, .stop = a->stop };
	struct err_info e = { 0 };
	int rc = cli_url(t, "/api/bundles", &u, &e);

	if (!rc)
		rc = cli_http_run(h, &r, &resp, &e);
	if (rc)
		rc = cli_http_fail("import", t, rc, &e);
	else if (resp.status != 200)
		rc = cli_refused("import", &resp);
	free(resp.body);
	return rc;
}

/* Opens the bundle to send: a regular file, its size in *size. */
static int cli_import_open(const char *file, uint64_t *size)
{
	struct stat st;
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return fd;
	}
	fprintf(stderr, "otagw import: %s: %s\n", file,
		fd < 0 ? strerror(errno) : "not a regular file");
	if (fd >= 0)
		close(fd);
	return -1;
}

/* The import's id from the POST's answer into id[]; an exit status. */
static int cli_import_id(const struct cli_http_resp *resp, char id[OTAGW_ID_MAX])
{
	cJSON *j = cJSON_Parse(resp->body ? resp->body : "");
	const cJSON *jid = cJSON_GetObjectItemCaseSensitive(j, "id");
	int rc = CLI_EXIT_FAILED;

	if (cJSON_IsString(jid) && util_id_valid(jid->valuestring)) {
		util_strlcpy(id, jid->valuestring, OTAGW_ID_MAX);
		rc = CLI_EXIT_OK;
	} else {
		fprintf(stderr, "otagw import: the daemon's answer has no import id\n");
	}
	cJSON_Delete(j);
	return rc;
}

/* POSTs the bundle; the import's id into id[]. Returns an exit status. */
static int cli_import_upload(struct cli_http *h, const struct cli_target *t,
			     const struct cli_remote_args *a, char id[OTAGW_ID_MAX])
{
	struct cli_progress p;
	struct fetch_url u;
	struct cli_http_resp resp = { 0 };
	struct err_info e = { 0 };
	struct cli_http_req r = { .u = &u, .method = "POST", .token = t->token, .body_fd = -1,
				  .on_sent = cli_upload_sent, .arg = &p, .idle_s = CLI_IDLE_S,
				  .stop = a->stop };
	int rc;

	r.body_fd = cli_import_open(a->file, &r.body_len);
	if (r.body_fd < 0)
		return CLI_EXIT_FAILED;
	cli_progress_init(&p, "uploading");
	p.tty = p.tty && !a->quiet;
	rc = cli_url(t, "/api/bundles", &u, &e);
	if (!rc)
		rc = cli_http_run(h, &r, &resp, &e);
	cli_progress_end(&p);
	close(r.body_fd);
	if (rc == -EIO)
		err_set(&e, rc, "the daemon closed the connection during the upload (it "
			"refuses bundles larger than its cache quota or that it cannot store: "
			"see its log)");
	if (rc)
		rc = cli_http_fail("import", t, rc, &e);
	else if (resp.status < 200 || resp.status >= 300)
		rc = cli_refused("import", &resp);
	else
		rc = cli_import_id(&resp, id);
	free(resp.body);
	return rc;
}

/* One GET /api/bundles/{id}: 0 with the answer in *j (caller deletes),
 * -EAGAIN for a failed request (worth retrying), else an exit status. */
static int cli_import_poll1(struct cli_http *h, const struct cli_target *t,
			    const struct cli_remote_args *a, const char *id, cJSON **j,
			    struct err_info *e)
{
	char path[OTAGW_ID_MAX + 16];
	struct fetch_url u;
	struct cli_http_resp resp = { 0 };
	struct cli_http_req r = { .u = &u, .method = "GET", .token = t->token, .body_fd = -1,
				  .idle_s = 30, .stop = a->stop };
	int rc;

	snprintf(path, sizeof(path), "/api/bundles/%s", id);
	rc = cli_url(t, path, &u, e);
	if (!rc)
		rc = cli_http_run(h, &r, &resp, e);
	if (rc)
		rc = -EAGAIN;
	else if (resp.status != 200)
		rc = cli_refused("import", &resp);
	if (rc) {
		free(resp.body);
		return rc;
	}
	*j = cJSON_Parse(resp.body ? resp.body : "");
	free(resp.body);
	if (!cJSON_IsObject(*j)) {
		cJSON_Delete(*j);
		fprintf(stderr, "otagw import: the daemon's answer is not a JSON object\n");
		return CLI_EXIT_FAILED;
	}
	return 0;
}

/* Shows a polled import: -EINPROGRESS while it runs, else its exit status
 * (the final JSON printed on stdout). */
static int cli_import_state(const cJSON *j, struct cli_progress *p)
{
	const cJSON *state = cJSON_GetObjectItemCaseSensitive(j, "state");
	const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(j, "bytes");
	const cJSON *total = cJSON_GetObjectItemCaseSensitive(j, "total");
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
	const char *s = cJSON_IsString(state) ? state->valuestring : "";
	bool end = !strcmp(s, "done") || !strcmp(s, "failed");
	char *text;

	if (cJSON_IsNumber(bytes) && cJSON_IsNumber(total) && bytes->valuedouble >= 0 &&
	    total->valuedouble >= 0)
		cli_progress(p, (uint64_t)bytes->valuedouble, (uint64_t)total->valuedouble, end);
	if (!end)
		return -EINPROGRESS;
	cli_progress_end(p);
	text = cJSON_Print(j);
	if (text)
		printf("%s\n", text);
	free(text);
	if (!strcmp(s, "done"))
		return CLI_EXIT_OK;
	fprintf(stderr, "otagw import: failed: %s\n",
		cJSON_IsString(err) ? err->valuestring : "(no reason given)");
	return CLI_EXIT_FAILED;
}

/* Follows the import until it ends, CLI_POLL_GIVE_UP_MS, or a signal;
 * returns the exit status. */
static int cli_import_follow(struct cli_http *h, const struct cli_target *t,
			     const struct cli_remote_args *a, const char *id)
{
	const struct timespec pause = { 0, CLI_POLL_MS * 1000000L };
	int64_t give_up = util_mono_ms() + CLI_POLL_GIVE_UP_MS;
	struct cli_progress p;
	struct err_info e = { 0 };
	unsigned fails = 0;
	cJSON *j = NULL;
	int rc = -EINPROGRESS;

	cli_progress_init(&p, "importing");
	p.tty = p.tty && !a->quiet;
	while (rc == -EINPROGRESS) {
		if (*a->stop || util_mono_ms() > give_up) {
			cli_progress_end(&p);
			fprintf(stderr, "otagw import: %s; the import goes on in the daemon "
					"(GET /api/bundles/%s)\n",
				*a->stop ? "interrupted" : "gave up waiting after 30 min", id);
			return CLI_EXIT_FAILED;
		}
		rc = cli_import_poll1(h, t, a, id, &j, &e);
		if (!rc) {
			fails = 0;
			rc = cli_import_state(j, &p);
			cJSON_Delete(j);
		} else if (rc == -EAGAIN && ++fails <= CLI_POLL_RETRIES) {
			rc = -EINPROGRESS;
		} else if (rc == -EAGAIN) {
			cli_progress_end(&p);
			return cli_http_fail("import", t, e.code, &e);
		}
		if (rc == -EINPROGRESS)
			nanosleep(&pause, NULL);
	}
	cli_progress_end(&p);
	return rc;
}

int cli_import(int argc, char **argv, const char *conf, const volatile sig_atomic_t *stop)
{
	struct cli_remote_args a = { .conf = conf, .stop = stop };
	struct cli_target t;
	struct cli_http *h = NULL;
	struct err_info e = { 0 };
	char id[OTAGW_ID_MAX];
	int rc = cli_remote_args("import", argc, argv, false, cli_import_usage, &a);

	if (rc)
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	if (cli_target("import", &t, a.url, a.token, a.conf))
		return CLI_EXIT_USAGE;
	if (cli_http_new(&h, &e)) {
		fprintf(stderr, "otagw import: %s\n", err_text(&e));
		return CLI_EXIT_FAILED;
	}
	rc = cli_import_preflight(h, &t, &a);
	if (!rc)
		rc = cli_import_upload(h, &t, &a, id);
	if (!rc)
		rc = cli_import_follow(h, &t, &a, id);
	cli_http_free(h);
	return rc;
}

/* ---- export ----------------------------------------------------------------------- */

static void cli_export_usage(FILE *f)
{
	fprintf(f, "usage: otagw export [--since MS] [--url URL] [--token T] [-c CONFIG] [-q]\n"
		   "                    FILE\n"
		   "  Saves the daemon's export (GET /api/export: a .tar.gz with export.json\n"
		   "  and messages.jsonl) to FILE, through FILE.tmp.\n"
		   "  -s, --since MS     start at this time (ms since the epoch); default: where\n"
		   "                     the previous export ended\n"
		   "  -u, --url URL      the daemon's API, http:// only (default:\n"
		   "                     $OTAGW_URL, else http://[http] bind:[http] port of\n"
		   "                     the configuration)\n"
		   "  -t, --token T      API token (default: $OTAGW_TOKEN, else [http]\n"
		   "                     api_token)\n"
		   "  -c, --config FILE  configuration to read (default " CLI_DEFAULT_CONFIG ")\n"
		   "  -q, --quiet        no progress\n"
		   "  -h, --help         this text\n"
		   "  Exit status: 0 saved, 1 refused or failed, 2 usage, 3 daemon unreachable.\n");
}

struct cli_sink {
	int fd;
	uint64_t got;
	struct cli_progress p;
	struct err_info *e;
};

static int cli_sink_write(void *arg, const void *p, size_t n)
{
	struct cli_sink *s = arg;
	const uint8_t *b = p;
	ssize_t w;

	while (n) {
		w = write(s->fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return err_set(s->e, w < 0 ? -errno : -EIO, "write: %s",
				       w < 0 ? strerror(errno) : "nothing written");
		b += w;
		n -= (size_t)w;
		s->got += (uint64_t)w;
	}
	cli_progress(&s->p, s->got, 0, false);
	return 0;
}

/* The request of an export into s; returns an exit status. */
static int cli_export_get(struct cli_http *h, const struct cli_target *t,
			  const struct cli_remote_args *a, struct cli_sink *s)
{
	char path[64];
	uint64_t since = 0;
	struct fetch_url u;
	struct cli_http_resp resp = { 0 };
	struct cli_http_req r = { .u = &u, .method = "GET", .token = t->token, .body_fd = -1,
				  .on_body = cli_sink_write, .arg = s, .idle_s = CLI_IDLE_S,
				  .stop = a->stop };
	int rc;

	if (a->since && !parse_u64(a->since, strlen(a->since), INT64_MAX, &since))
		snprintf(path, sizeof(path), "/api/export?since=%" PRIu64, since);
	else
		snprintf(path, sizeof(path), "/api/export");
	rc = cli_url(t, path, &u, s->e);
	if (!rc)
		rc = cli_http_run(h, &r, &resp, s->e);
	cli_progress(&s->p, s->got, 0, true);
	cli_progress_end(&s->p);
	if (rc)
		rc = cli_http_fail("export", t, rc, s->e);
	else if (resp.status < 200 || resp.status >= 300)
		rc = cli_refused("export", &resp);
	free(resp.body);
	return rc;
}

static int cli_save_error(const char *path)
{
	fprintf(stderr, "otagw export: %s: %s\n", path, strerror(errno));
	return CLI_EXIT_FAILED;
}

/* Saves the export to a->file through a->file.tmp. */
static int cli_export_save(struct cli_http *h, const struct cli_target *t,
			   const struct cli_remote_args *a)
{
	char tmp[PATH_MAX], sz[16];
	struct err_info e = { 0 };
	struct cli_sink s = { .e = &e };
	int fd, rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", a->file) >= sizeof(tmp)) {
		fprintf(stderr, "otagw export: %s: path too long\n", a->file);
		return CLI_EXIT_FAILED;
	}
	/* a local first: cppcheck 2.10 takes a failed open() into s.fd for a leak */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0) {
		fprintf(stderr, "otagw export: %s: %s\n", tmp, strerror(errno));
		return CLI_EXIT_FAILED;
	}
	s.fd = fd;
	cli_progress_init(&s.p, "exporting");
	s.p.tty = s.p.tty && !a->quiet;
	rc = cli_export_get(h, t, a, &s);
	if (!rc && fsync(s.fd))
		rc = cli_save_error(tmp);
	if (close(s.fd) && !rc)
		rc = cli_save_error(tmp);
	if (!rc && rename(tmp, a->file))
		rc = cli_save_error(a->file);
	if (rc)
		unlink(tmp);
	else
		printf("%s: %s\n", a->file, cli_size(s.got, sz));
	return rc;
}

int cli_export(int argc, char **argv, const char *conf, const volatile sig_atomic_t *stop)
{
	struct cli_remote_args a = { .conf = conf, .stop = stop };
	struct cli_target t;
	struct cli_http *h = NULL;
	struct err_info e = { 0 };
	uint64_t since;
	int rc = cli_remote_args("export", argc, argv, true, cli_export_usage, &a);

	if (rc)
		return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	if (a.since && parse_u64(a.since, strlen(a.since), INT64_MAX, &since)) {
		fprintf(stderr, "otagw export: --since takes milliseconds since the epoch\n");
		return CLI_EXIT_USAGE;
	}
	if (cli_target("export", &t, a.url, a.token, a.conf))
		return CLI_EXIT_USAGE;
	if (cli_http_new(&h, &e)) {
		fprintf(stderr, "otagw export: %s\n", err_text(&e));
		return CLI_EXIT_FAILED;
	}
	rc = cli_export_save(h, &t, &a);
	cli_http_free(h);
	return rc;
}
