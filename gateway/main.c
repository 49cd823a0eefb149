/* SPDX-License-Identifier: MIT */
/* main.c - otagw entry point: arguments, configuration, the data directory
 * lock, one struct gw with every module wired to its neighbours, the loop.
 * Must not: hold state outside struct gw. */
#define LOG_MOD "main"
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "cache.h"
#include "config.h"
#include "fetch.h"
#include "http_dev.h"
#include "images.h"
#include "core.h"
#include "devices.h"
#include "live.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "otagw_limits.h"
#include "session.h"
#include "store.h"
#include "bundle.h"
#include "cli.h"
#include "cloud.h"
#include "outbox.h"
#include "serial.h"
#include "tcp.h"
#include "util.h"
#include "www.h"

struct gw {
	struct config cfg;
	int lock_fd;
	struct store *st;
	struct session_reg *sessions;
	struct core core;
	struct api api;
	struct loop *loop;
	struct loop_timer tick;
	struct tcp *tcp;              /* NULL when [tcp] port = 0 */
	struct serial *serial;        /* NULL without [serial NAME] sections */
	struct outbox *outbox;        /* NULL without [cloud] url */
	struct cloud *cloud;
	struct bundles *bundles;      /* NULL without an image cache */
	struct bundles_upload_ctx bundle_up;
	struct cache *cache;
	struct fetch *fetch;
	struct images *images;
	struct http_dev *http_dev;
	struct live *live;            /* the console's live feed */
	struct metrics metrics;
	struct www www;
};

/* A config that holds a token should not be readable by everyone. */
static void gw_check_conf_mode(const char *conf, const struct config *cfg)
{
	struct stat sb;

	if (!conf || (!cfg->http.api_token[0] && !cfg->cloud.token[0]) || stat(conf, &sb) ||
	    !(sb.st_mode & S_IROTH))
		return;
	fprintf(stderr, "otagw: warning: %s holds a token and is readable by every user: "
		"chmod o-r %s\n", conf, conf);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: otagw [-c FILE] [-d DATA_DIR] [-v] [--version] [--help] [--print-config]\n"
		   "  -c, --config FILE   INI configuration (default: built-in defaults)\n"
		   "  -d, --data-dir DIR  state directory (overrides [gateway] data_dir)\n"
		   "  -v, --verbose       debug logging (overrides [gateway] log_level)\n"
		   "      --print-config  print every key at its default and exit\n"
		   "      --version       print the version and exit\n"
		   "       otagw [-c FILE] bundle create|import|export ... (otagw COMMAND --help)\n");
}

/* Parses argv into cfg. Returns 0 to run, 1 to exit 0, -1 to exit 2. */
static int gw_args(struct gw *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "data-dir", required_argument, NULL, 'd' },
		{ "verbose", no_argument, NULL, 'v' },      { "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },         { "print-config", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 }
	};
	const char *conf = NULL, *data = NULL;
	struct err_info e = { 0 };
	bool verbose = false;
	int c;

	while ((c = getopt_long(argc, argv, "c:d:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': conf = optarg; break;
		case 'd': data = optarg; break;
		case 'v': verbose = true; break;
		case 'V': printf("otagw %s\n", OTAGW_VERSION); return 1;
		case 'h': usage(stdout); return 1;
		case 'P': config_print_defaults(stdout); return 1;
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return -1;
	}
	config_defaults(&g->cfg);
	if (conf && config_load(&g->cfg, conf, &e)) {
		fprintf(stderr, "otagw: %s\n", err_text(&e));
		return -1;
	}
	gw_check_conf_mode(conf, &g->cfg);
	if (data && util_strlcpy(g->cfg.gateway.data_dir, data, sizeof(g->cfg.gateway.data_dir))) {
		fprintf(stderr, "otagw: data directory path too long\n");
		return -1;
	}
	if (verbose)
		g->cfg.gateway.log_level = LOG_LVL_DEBUG;
	if (config_validate(&g->cfg, &e)) {
		fprintf(stderr, "otagw: %s%s%s\n", conf ? conf : "", conf ? ": " : "", err_text(&e));
		return -1;
	}
	return 0;
}

/* Creates the data directory and takes its lock (flock, released by the
 * kernel when we die, so a crash never leaves a stale lock). */
static int gw_lock(struct gw *g)
{
	char path[PATH_MAX + 16], pid[32];
	int n;

	if (mkdir(g->cfg.gateway.data_dir, 0750) && errno != EEXIST) {
		LOGE("cannot create %s: %s", g->cfg.gateway.data_dir, strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/otagw.lock", g->cfg.gateway.data_dir);
	g->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (g->lock_fd < 0) {
		LOGE("cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(g->lock_fd, LOCK_EX | LOCK_NB)) {
		LOGE("another otagw is running on %s (lock %s is held)", g->cfg.gateway.data_dir, path);
		return -EBUSY;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(g->lock_fd, 0) || write(g->lock_fd, pid, (size_t)n) != n)
		LOGW("cannot write the pid to %s", path);
	return 0;
}

static void gw_tick(void *arg)
{
	struct gw *g = arg;
	int n = 0;

	if (core_tick(&g->core, util_now_ms(), &n))
		LOGW("record timeout check failed");
}

/* Every device connection is a descriptor: take the hard limit, before
 * libwebsockets sizes its tables from it. */
static void gw_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		LOGW("cannot raise the descriptor limit: %s", strerror(errno));
}

static int gw_open_tcp(struct gw *g)
{
	const struct config *cfg = &g->cfg;
	struct tcp_cfg tc = {
		.bind = cfg->tcp.bind,
		.port = cfg->tcp.port,
		.codec = codec_find(config_tcp_codecs[cfg->tcp.codec]),
		.auth_token = cfg->tcp.auth == CONFIG_AUTH_TOKEN,
		.idle_timeout = cfg->tcp.idle_timeout,
		.max_connections = cfg->tcp.max_connections,
		.max_frame = cfg->tcp.max_frame,
		.max_chunk = cfg->tcp.max_chunk,
		.default_product = cfg->tcp.default_product,
		.image_url = cfg->tcp.image_url,
	};
	struct err_info e = { 0 };

	if (!cfg->tcp.port)
		return 0;
	if (!tc.codec) {
		LOGE("[tcp] codec %s is not built in", config_tcp_codecs[cfg->tcp.codec]);
		return -1;
	}
	if (tcp_open(&g->tcp, loop_context(g->loop), &g->core, &tc, &e)) {
		LOGE("%s", err_text(&e));
		return -1;
	}
	if (!config_addr_is_loopback(cfg->tcp.bind) && !tc.auth_token)
		LOGW("[tcp] listens on %s without device authentication ([tcp] auth = none)",
		     cfg->tcp.bind);
	return 0;
}

/* Reads a small text file (a PEM key) whole; NULL with a log on error. */
static char *gw_read_text(const char *path)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = fopen(path, "re");

	if (f) {
		buf = calloc(1, 16384);
		n = buf ? fread(buf, 1, 16383, f) : 0;
		fclose(f);
	}
	if (!buf || !n) {
		LOGE("cannot read %s", path);
		free(buf);
		return NULL;
	}
	return buf;
}

static int gw_open_cache(struct gw *g)
{
	const struct config *cfg = &g->cfg;
	struct fetch_cfg fc = { .ctx = loop_context(g->loop), .ca_file = cfg->cache.ca_file,
				.max_redirects = 5, .timeout_s = cfg->cache.timeout };
	struct images_cfg ic = { .max_bytes = cfg->cache.max_bytes,
				 .min_free_bytes = cfg->cache.min_free_bytes,
				 .max_downloads = cfg->cache.max_downloads,
				 .max_retry_delay = cfg->cache.max_retry_delay };
	char dir[PATH_MAX + 16], *key = NULL;
	struct err_info e = { 0 };
	int rc = -1;

	snprintf(dir, sizeof(dir), "%s/cache", cfg->gateway.data_dir);
	if (cfg->cache.signing_key[0]) {
		key = gw_read_text(cfg->cache.signing_key);
		if (!key)
			return -1;
		ic.signing_key_pem = key;
	}
	if (cache_open(&g->cache, dir, &e) || fetch_new(&g->fetch, &fc, &e) ||
	    images_new(&g->images, g->st, g->cache, g->fetch, loop_context(g->loop), &ic, &e))
		LOGE("%s", err_text(&e));
	else if (images_reconcile(g->images))
		LOGE("cannot reconcile the image cache in %s", dir);
	else
		rc = 0;
	free(key);
	return rc;
}

static int gw_open_http_dev(struct gw *g)
{
	const struct config *cfg = &g->cfg;
	struct http_dev_cfg hc = { .auth_token = cfg->http.device_auth == CONFIG_AUTH_TOKEN,
				   .max_poll_wait = cfg->http.max_poll_wait,
				   .public_url = cfg->http.public_url };
	char url[CONFIG_STR_MAX];
	struct err_info e = { 0 };

	if (!cfg->http.public_url[0]) {
		snprintf(url, sizeof(url), "http://%s:%u", cfg->http.bind, cfg->http.port);
		hc.public_url = url;
	}
	if (http_dev_new(&g->http_dev, &g->core, loop_context(g->loop), &hc, &e)) {
		LOGE("%s", err_text(&e));
		return -1;
	}
	return 0;
}

static int gw_open_cloud(struct gw *g)
{
	const struct config *cfg = &g->cfg;
	struct cloud_cfg cc = {
		.url = cfg->cloud.url, .gateway_id = cfg->cloud.gateway_id,
		.token = cfg->cloud.token, .ca_file = cfg->cloud.ca_file,
		.progress_interval = cfg->cloud.progress_interval,
		.status_interval = cfg->cloud.status_interval,
		.ping_interval = cfg->cloud.ping_interval,
	};
	struct err_info e = { 0 };

	if (cfg->cloud.url[0]) {
		if (!g->fetch) {
			LOGE("[cloud] needs the image cache's resolver");
			return -1;
		}
		if (outbox_new(&g->outbox, g->st, cfg->cloud.gateway_id, &e) ||
		    cloud_new(&g->cloud, loop_context(g->loop), &g->core, g->outbox,
			      fetch_resolver(g->fetch), &cc, &e)) {
			LOGE("%s", err_text(&e));
			return -1;
		}
		if (store_add_events(g->st, &outbox_events, g->outbox)) {
			LOGE("cannot observe the store for the outbox");
			return -1;
		}
	}
	if (api_add_status(&g->api, "cloud", cloud_status, g->cloud)) {
		LOGE("cannot register /api/cloud");
		return -1;
	}
	return 0;
}

static bool gw_api_authorized(const void *api, const struct http_req *req)
{
	return api_authorized(api, req);
}

static int gw_open_bundles(struct gw *g)
{
	const struct config *cfg = &g->cfg;
	struct bundles_cfg bc = {
		.data_dir = cfg->gateway.data_dir, .key_pem = cfg->gateway.bundle_key,
		.require_signed = cfg->gateway.require_signed == CONFIG_SIGNED_YES ||
				  (cfg->gateway.require_signed == CONFIG_SIGNED_AUTO &&
				   cfg->gateway.bundle_key[0]),
		.import_dir = cfg->gateway.import_dir,
		.import_interval = cfg->gateway.import_interval,
		.gateway_id = cfg->cloud.gateway_id,
	};
	struct err_info e = { 0 };

	if (!g->images)
		return 0;
	if (bundles_new(&g->bundles, &g->core, loop_context(g->loop), &bc, &e)) {
		LOGE("bundles: %s", err_text(&e));
		return -1;
	}
	g->bundle_up = (struct bundles_upload_ctx){ g->bundles, gw_api_authorized, &g->api };
	if (api_add_handler(&g->api, "/api/bundles", bundles_http, g->bundles) ||
	    api_add_handler(&g->api, "/api/export", bundles_http, g->bundles) ||
	    loop_stream(g->loop, &bundles_upload, &g->bundle_up)) {
		LOGE("cannot register the bundle routes");
		return -1;
	}
	return 0;
}

/* The web console's files, its live feed and /metrics. */
static int gw_open_console(struct gw *g)
{
	struct live_cfg lc = { .token = g->cfg.http.api_token,
			       .interval_ms = g->cfg.http.live_interval };
	struct err_info e = { 0 };

	if (www_open(&g->www, g->cfg.http.www_dir, &e))
		LOGW("%s: the console is not served", err_text(&e));
	metrics_init(&g->metrics, &g->api, &g->core, g->loop, g->images);
	if (g->cloud && metrics_add_source(&g->metrics, cloud_metrics, g->cloud)) {
		LOGE("cannot register the cloud's metrics");
		return -1;
	}
	if (live_new(&g->live, g->loop, g->st, g->sessions, &lc) ||
	    store_add_events(g->st, &live_events, g->live)) {
		LOGE("cannot start the console's live feed");
		return -1;
	}
	return 0;
}

static int gw_flush(void *st)
{
	return store_flush(st);
}

static int gw_open(struct gw *g)
{
	struct loop_cfg lc = { .http_bind = g->cfg.http.bind, .http_port = g->cfg.http.port };
	char db[PATH_MAX + 16];
	struct err_info e = { 0 };

	snprintf(db, sizeof(db), "%s/otagw.db", g->cfg.gateway.data_dir);
	if (store_open(&g->st, db, &e)) {
		LOGE("%s", err_text(&e));
		return -1;
	}
	if (devices_all_offline(g->st) || session_reg_new(&g->sessions)) {
		LOGE("cannot initialise the device registry");
		return -1;
	}
	if (loop_new(&g->loop, &lc, &e)) {
		LOGE("%s", err_text(&e));
		return -1;
	}
	if (gw_open_cache(g))
		return -1;
	core_init(&g->core, g->st, g->sessions, g->images);
	if (g->images)
		images_on_ready(g->images, core_image_ready, &g->core);
	api_init(&g->api, &g->core, g->st, g->cfg.http.api_token);
	g->api.images = g->images;
	if (gw_open_tcp(g))
		return -1;
	if (gw_open_http_dev(g))
		return -1;
	if ((g->cfg.n_serial &&
	     serial_new(&g->serial, &g->core, loop_context(g->loop), g->cfg.serial, g->cfg.n_serial,
			&e)) || api_add_status(&g->api, "serial", serial_status, g->serial)) {
		LOGE("serial ports: %s", e.code ? err_text(&e) : "cannot register /api/serial");
		return -1;
	}
	if (gw_open_cloud(g) || gw_open_bundles(g) || gw_open_console(g))
		return -1;
	if (loop_stream(g->loop, &api_image_upload, &g->api) ||
	    loop_route(g->loop, "/api", api_handle, &g->api, OTAGW_BODY_MAX) ||
	    loop_route(g->loop, "/device", http_dev_handle, g->http_dev, OTAGW_MSG_MAX) ||
	    loop_route(g->loop, "/images", http_dev_images, g->http_dev, 0) ||
	    loop_route(g->loop, "/metrics", metrics_handle, &g->metrics, 0) ||
	    loop_route(g->loop, "/", www_handle, &g->www, 0)) {
		LOGE("cannot register the API route");
		return -1;
	}
	loop_timer_start(g->loop, &g->tick, g->cfg.gateway.timeout_check * 1000, gw_tick, g);
	/* Group commit from here on: one WAL sync per loop pass (store.h). */
	if (store_set_batching(g->st, true)) {
		LOGE("cannot switch the store to group commit");
		return -1;
	}
	loop_set_flush(g->loop, gw_flush, g->st);
	return 0;
}

static void gw_close(struct gw *g)
{
	loop_timer_stop(&g->tick);
	http_dev_free(g->http_dev);  /* ends long-polls while sessions can still go */
	serial_stop(g->serial);      /* no reopens or record failures while closing */
	cloud_stop(g->cloud);        /* closes the link, cancels its resolve */
	bundles_free(g->bundles);    /* abandons imports: nothing half-applied */
	images_free(g->images);      /* cancels downloads, keeps partials */
	fetch_free(g->fetch);        /* needs the live context to close its wsi */
	if (g->live)
		store_remove_events(g->st, &live_events, g->live);
	live_free(g->live);          /* its timer, before the context goes */
	loop_free(g->loop);          /* closes every connection first */
	cache_close(g->cache);
	www_close(&g->www);
	tcp_free(g->tcp);
	serial_free(g->serial);
	cloud_free(g->cloud);
	if (g->st && g->outbox)
		store_remove_events(g->st, &outbox_events, g->outbox);
	outbox_free(g->outbox);
	session_reg_free(g->sessions);
	store_close(g->st);
	if (g->lock_fd >= 0)
		close(g->lock_fd);
}

/* otagw [-c FILE] bundle|import|export ...: the command line tools. */
static bool gw_cli(int argc, char **argv, int *status)
{
	const char *conf = NULL;
	int i = 1;

	if (i + 1 < argc && (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config"))) {
		conf = argv[i + 1];
		i += 2;
	} else if (i < argc && !strncmp(argv[i], "--config=", 9)) {
		conf = argv[i++] + 9;
	}
	if (i >= argc || !cli_is_command(argv[i]))
		return false;
	*status = cli_main(argc - i, argv + i, conf);
	return true;
}

int main(int argc, char **argv)
{
	struct gw g;
	int rc;

	if (gw_cli(argc, argv, &rc))
		return rc;
	memset(&g, 0, sizeof(g));
	g.lock_fd = -1;
	g.www.dirfd = -1;
	rc = gw_args(&g, argc, argv);
	if (rc)
		return rc > 0 ? 0 : 2;
	signal(SIGPIPE, SIG_IGN);
	gw_raise_nofile();
	gw_log_setup(g.cfg.gateway.log_level, g.cfg.gateway.syslog, "otagw");
	LOGI("otagw %s starting, data in %s", OTAGW_VERSION, g.cfg.gateway.data_dir);
	rc = gw_lock(&g);
	if (!rc)
		rc = gw_open(&g);
	if (!rc)
		rc = loop_run(g.loop);
	gw_close(&g);
	LOGI("stopped");
	return rc ? 1 : 0;
}
