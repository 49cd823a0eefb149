/* SPDX-License-Identifier: MIT */
/* test_fetch.c - cmocka tests for resumable downloads (cache/fetch.c) against
 * real servers on 127.0.0.1, with a real lws context in this process made
 * the way gateway/loop.c makes it:
 *   - Debian's nginx, started once for the group (plain and TLS listeners,
 *     a 3 MiB pseudo-random file.bin, a redirect loop, a relative redirect,
 *     404, 503 with Retry-After, an https -> http redirect);
 *   - a raw lws listener in each test's context for what nginx won't do: a
 *     body cut short, a body without Content-Length, a server that stalls.
 * Covered: full download by name (through the resolver thread) verified by
 * cache_writer_commit (SHA-256 and size); resume with If-Range by ETag and
 * by date (206), with a stale ETag (200, writer restarted), with the image
 * already complete (416); 404, redirect loop, relative redirect, https to
 * http refused, 503 + Retry-After, -EFBIG, truncated body, close-delimited
 * body, inactivity timeout, refused connection, a name that does not
 * resolve (the loop keeps turning); cancel mid-body from on_progress, while
 * resolving, while connecting, after finishing; fetch_free() in flight; two
 * jobs at once; HTTPS with a pinned CA, with the system store (pointed at
 * our CA through SSL_CERT_FILE), with an unknown CA and with a wrong host
 * name (both must fail with -EPERM); hostile URLs and requests.
 * Must not: reach outside 127.0.0.1 (except the one lookup that must fail),
 * depend on test order, leave nginx behind (it dies with this process). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "cache.h"
#include "fetch.h"
#include "util.h"
#include "verify.h"

#define NGINX_BIN "/usr/sbin/nginx"
#define MIB (1024 * 1024)
#define FILE_SIZE (3 * MIB)
#define TICK_US (20 * 1000)            /* lws_service() returns at least this often */
#define DEADLINE_MS 20000
#define RAW_BODY 5000                  /* bytes the raw server sends */
#define RAW_CLAIM 100000               /* the Content-Length it claims */

/* A private CA and a certificate for DNS:localhost it signed (EC P-256,
 * valid 2020..2119). Nothing else trusts this CA. */
static const char test_ca_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBZTCCAQqgAwIBAgICEAAwCgYIKoZIzj0EAwIwGDEWMBQGA1UEAwwNb3RhZ3cg\n"
	"dGVzdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMTE5MTIzMTIzNTk1OVowGDEWMBQG\n"
	"A1UEAwwNb3RhZ3cgdGVzdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABLsC\n"
	"SfMkMG/Yv8PMzWYr93S2BYjlc55juwY3DZLRi7yUVZDWuHCPtRa8a/3pw/g9NTzq\n"
	"ToJjpuJzGQ3upas4ZQOjQjBAMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQD\n"
	"AgEGMB0GA1UdDgQWBBRdZK1IFS2UjuPgMmSruQRwOZrjYDAKBggqhkjOPQQDAgNJ\n"
	"ADBGAiEAwa6d7kzgdDZkNyP9V9zk+ImLQkbeHNYqGaNvYEtFecsCIQCagfI9oQHF\n"
	"6VWAHtZTYn9OjmoSfbHUawJUv5sKYc3msQ==\n"
	"-----END CERTIFICATE-----\n";

static const char test_srv_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBrDCCAVGgAwIBAgICEAEwCgYIKoZIzj0EAwIwGDEWMBQGA1UEAwwNb3RhZ3cg\n"
	"dGVzdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMTE5MTIzMTIzNTk1OVowFDESMBAG\n"
	"A1UEAwwJbG9jYWxob3N0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEievqBm95\n"
	"m26YBRxddrR/7CYKBYXgxYN2dLpGAfYqnSC/HHJN2G8ak0cbKMKJncKCIjTzfjQX\n"
	"CPCU7pBtGi8/4KOBjDCBiTAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDAT\n"
	"BgNVHSUEDDAKBggrBgEFBQcDATAUBgNVHREEDTALgglsb2NhbGhvc3QwHwYDVR0j\n"
	"BBgwFoAUXWStSBUtlI7j4DJkq7kEcDma42AwHQYDVR0OBBYEFEHM9u7B6DeCAtkl\n"
	"DW4xqAnCkjCGMAoGCCqGSM49BAMCA0kAMEYCIQCQMivmD3CnWBb43MORXl8zc5ji\n"
	"xHtQ8tSAb8XqCCNJGwIhAIJC36gK/M827lcefCCPvgsFGX3e+nnkZFMdJ5tbekwe\n"
	"-----END CERTIFICATE-----\n";

static const char test_srv_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg5AeO0zmP/uKJm6Lz\n"
	"wrBSr5qvip8+RDLsh7MTSXTMTryhRANCAASJ6+oGb3mbbpgFHF12tH/sJgoFheDF\n"
	"g3Z0ukYB9iqdIL8cck3YbxqTRxsowomdwoIiNPN+NBcI8JTukG0aLz/g\n"
	"-----END PRIVATE KEY-----\n";

/* %1$s the temp dir, %2$u the plain port, %3$u the TLS port. */
static const char nginx_conf[] =
	"daemon off;\n"
	"master_process off;\n"
	"worker_processes 1;\n"
	"pid %1$s/nginx.pid;\n"
	"error_log %1$s/error.log warn;\n"
	"events { worker_connections 64; }\n"
	"http {\n"
	"  access_log off;\n"
	"  client_body_temp_path %1$s/t_body;\n"
	"  proxy_temp_path %1$s/t_proxy;\n"
	"  fastcgi_temp_path %1$s/t_fastcgi;\n"
	"  uwsgi_temp_path %1$s/t_uwsgi;\n"
	"  scgi_temp_path %1$s/t_scgi;\n"
	"  default_type application/octet-stream;\n"
	"  server {\n"
	"    listen 127.0.0.1:%2$u;\n"
	"    root %1$s/www;\n"
	"    location = /loop { return 302 /loop; }\n"
	"    location = /a/b/rel { absolute_redirect off; return 302 ../../file.bin; }\n"
	"    location = /missing { return 404; }\n"
	"    location = /busy { add_header Retry-After 7 always; return 503; }\n"
	"    location / { }\n"
	"  }\n"
	"  server {\n"
	"    listen 127.0.0.1:%3$u ssl;\n"
	"    ssl_certificate %1$s/srv.pem;\n"
	"    ssl_certificate_key %1$s/srv.key;\n"
	"    root %1$s/www;\n"
	"    location = /down { return 302 http://127.0.0.1:%2$u/file.bin; }\n"
	"    location / { }\n"
	"  }\n"
	"}\n";

/* Shared by the group: nginx and the file it serves. */
struct world {
	char dir[64];
	pid_t nginx;
	unsigned port, tls_port;
	uint8_t sha[32];
	char etag[64];                 /* nginx's ETag and Last-Modified for file.bin */
	char last_modified[64];
	char ca_file[96];
	uint8_t *data;
};

/* One test: a context with a raw test server, a fetch, a cache. */
struct fx {
	struct world *w;
	struct lws_context *ctx;
	unsigned raw_port;
	struct fetch *f;
	struct cache *c;
	char cache_dir[96];
	lws_sorted_usec_list_t tick;
};

/* What one job reported. */
struct obs {
	struct fetch_job *job;
	int headers, progress, done;
	int rc, status;
	unsigned retry_after;
	char reason[256], etag[128], lm[128];
	uint64_t total, have;
	bool restarted;
	uint64_t cancel_at;            /* fetch_cancel() from on_progress at this many bytes */
};

/* ---- helpers: files, ports, processes ------------------------------------- */

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A port nobody listens on right now (the kernel's pick). */
static unsigned free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static bool port_open(unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && !connect(fd, (struct sockaddr *)&sa, sizeof(sa));

	if (fd >= 0)
		close(fd);
	return ok;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static pid_t nginx_start(const struct world *w)
{
	char conf[160], err[160];
	pid_t pid;

	snprintf(conf, sizeof(conf), "%s/nginx.conf", w->dir);
	snprintf(err, sizeof(err), "%s/error.log", w->dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *const argv[] = { "nginx", "-p", (char *)w->dir, "-c", conf, "-e", err, NULL };

		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* never outlive a crashed test */
		execv(NGINX_BIN, argv);
		_exit(127);
	}
	return pid;
}

/* A deterministic 3 MiB pseudo-random image (xorshift64). */
static void make_image(struct world *w)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	size_t i;

	w->data = malloc(FILE_SIZE);
	assert_non_null(w->data);
	for (i = 0; i < FILE_SIZE; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(w->data + i, &x, 8);
	}
	assert_int_equal(verify_sha256(w->data, FILE_SIZE, w->sha), 0);
}

/* nginx's validators: ETag "<mtime hex>-<size hex>" and the HTTP date. */
static void image_validators(struct world *w)
{
	char path[160];
	struct stat st;
	struct tm tm;

	snprintf(path, sizeof(path), "%s/www/file.bin", w->dir);
	assert_int_equal(stat(path, &st), 0);
	snprintf(w->etag, sizeof(w->etag), "\"%lx-%lx\"", (unsigned long)st.st_mtime,
		 (unsigned long)st.st_size);
	gmtime_r(&st.st_mtime, &tm);
	strftime(w->last_modified, sizeof(w->last_modified), "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void world_files(struct world *w)
{
	char www[96], conf[4096];
	int n;

	snprintf(www, sizeof(www), "%s/www", w->dir);
	assert_int_equal(mkdir(www, 0755), 0);
	make_image(w);
	write_file(www, "file.bin", w->data, FILE_SIZE);
	image_validators(w);
	write_file(w->dir, "ca.pem", test_ca_pem, strlen(test_ca_pem));
	write_file(w->dir, "srv.pem", test_srv_pem, strlen(test_srv_pem));
	write_file(w->dir, "srv.key", test_srv_key, strlen(test_srv_key));
	snprintf(w->ca_file, sizeof(w->ca_file), "%s/ca.pem", w->dir);
	n = snprintf(conf, sizeof(conf), nginx_conf, w->dir, w->port, w->tls_port);
	assert_true(n > 0 && (size_t)n < sizeof(conf));
	write_file(w->dir, "nginx.conf", conf, (size_t)n);
}

static int world_setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	int i;

	assert_non_null(w);
	if (access(NGINX_BIN, X_OK)) {
		fprintf(stderr, "test_fetch needs %s (apt-get install nginx-light)\n", NGINX_BIN);
		free(w);
		return -1;
	}
	util_strlcpy(w->dir, "/tmp/otagw-fetch-XXXXXX", sizeof(w->dir));
	assert_non_null(mkdtemp(w->dir));
	chmod(w->dir, 0755);
	w->port = free_port();
	w->tls_port = free_port();
	world_files(w);
	w->nginx = nginx_start(w);
	for (i = 0; i < 500 && !(port_open(w->port) && port_open(w->tls_port)); i++)
		sleep_ms(10);
	if (!port_open(w->port) || !port_open(w->tls_port)) {
		fprintf(stderr, "nginx did not start: see %s/error.log\n", w->dir);
		return -1;
	}
	signal(SIGPIPE, SIG_IGN);
	*state = w;
	return 0;
}

static int world_teardown(void **state)
{
	struct world *w = *state;

	kill(w->nginx, SIGTERM);
	waitpid(w->nginx, NULL, 0);
	rm_tree(w->dir);
	free(w->data);
	free(w);
	return 0;
}

/* ---- the raw test server: what nginx won't do ------------------------------ */

enum raw_mode { RAW_TRUNCATE = 1, RAW_NOLEN, RAW_STALL };

struct raw_conn {
	enum raw_mode mode;
	bool sent;
};

/* One response per connection. lws_write() takes it all but may keep part
 * of it buffered: the FIN goes out only once that is flushed too. */
static int raw_reply(struct lws *wsi, struct raw_conn *c)
{
	static const char *const head[] = {
		[RAW_TRUNCATE] = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
		[RAW_NOLEN] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
		[RAW_STALL] = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
	};
	uint8_t buf[LWS_PRE + 8192], *p = buf + LWS_PRE;
	size_t n = strlen(head[c->mode]);

	if (lws_partial_buffered(wsi)) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (c->sent) {
		if (c->mode != RAW_STALL) {          /* a stalled server says nothing more */
			shutdown(lws_get_socket_fd(wsi), SHUT_WR);
			lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, 2);
		}
		return 0;
	}
	c->sent = true;
	memcpy(p, head[c->mode], n);
	memset(p + n, 'x', RAW_BODY);
	if (lws_write(wsi, p, n + RAW_BODY, LWS_WRITE_RAW) < (int)(n + RAW_BODY))
		return -1;
	lws_callback_on_writable(wsi);
	return 0;
}

static int raw_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		  size_t len)
{
	struct raw_conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_RAW_RX:
		if (c->mode)
			return 0;
		c->mode = len >= 10 && !memcmp(in, "GET /nolen", 10)   ? RAW_NOLEN
			  : len >= 10 && !memcmp(in, "GET /stall", 10) ? RAW_STALL
								       : RAW_TRUNCATE;
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		return raw_reply(wsi, c);
	default:
		return 0;
	}
}

static const struct lws_protocols raw_protocols[] = {
	{ "raw-test", raw_cb, sizeof(struct raw_conn), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* ---- fixture ------------------------------------------------------------- */

static void fx_tick(lws_sorted_usec_list_t *sul)
{
	struct fx *f = lws_container_of(sul, struct fx, tick);

	lws_sul_schedule(f->ctx, 0, &f->tick, fx_tick, TICK_US);
}

static void fx_raw_server(struct fx *f)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	f->raw_port = free_port();
	info.vhost_name = "raw-test";
	info.port = (int)f->raw_port;
	info.iface = "127.0.0.1";
	info.protocols = raw_protocols;
	info.options = LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG |
		       LWS_SERVER_OPTION_DISABLE_IPV6;
	info.listen_accept_role = "raw-skt";
	info.listen_accept_protocol = "raw-test";
	assert_non_null(lws_create_vhost(f->ctx, &info));
}

/* (Re)creates f->f with this CA file (NULL: system store) and timeout. */
static void fx_fetch(struct fx *f, const char *ca_file, unsigned timeout_s)
{
	struct fetch_cfg cfg = { f->ctx, ca_file, 5, timeout_s };
	struct err_info e = { 0 };

	fetch_free(f->f);
	f->f = NULL;
	assert_int_equal(fetch_new(&f->f, &cfg, &e), 0);
}

static int fx_setup(void **state)
{
	struct lws_context_creation_info info;
	struct fx *f = calloc(1, sizeof(*f));
	struct err_info e = { 0 };

	assert_non_null(f);
	f->w = *state;
	lws_set_log_level(LLL_ERR, NULL);
	/* as gateway/loop.c makes it: no global TLS init, IPv6 off, 64 KiB buffers */
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DISABLE_IPV6;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.timeout_secs = 30;
	info.pt_serv_buf_size = 65536;
	f->ctx = lws_create_context(&info);
	assert_non_null(f->ctx);
	fx_raw_server(f);
	fx_fetch(f, NULL, 10);
	snprintf(f->cache_dir, sizeof(f->cache_dir), "%s/cache-XXXXXX", f->w->dir);
	assert_non_null(mkdtemp(f->cache_dir));
	assert_int_equal(cache_open(&f->c, f->cache_dir, &e), 0);
	fx_tick(&f->tick);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	fetch_free(f->f);
	lws_sul_cancel(&f->tick);
	lws_context_destroy(f->ctx);
	cache_close(f->c);
	rm_tree(f->cache_dir);
	free(f);
	return 0;
}

/* ---- running jobs -------------------------------------------------------- */

static void on_headers(void *arg, const char *etag, const char *lm, uint64_t total,
		       bool restarted)
{
	struct obs *o = arg;

	o->headers++;
	util_strlcpy(o->etag, etag ? etag : "", sizeof(o->etag));
	util_strlcpy(o->lm, lm ? lm : "", sizeof(o->lm));
	o->total = total;
	o->restarted = restarted;
}

static void on_progress(void *arg, uint64_t have, uint64_t total)
{
	struct obs *o = arg;

	o->progress++;
	assert_true(have >= o->have || o->restarted);
	o->have = have;
	if (o->cancel_at && have >= o->cancel_at) {
		o->cancel_at = 0;
		fetch_cancel(o->job);
	}
}

static void on_done(void *arg, int rc, int status, const char *reason, unsigned retry_after)
{
	struct obs *o = arg;

	o->done++;
	o->rc = rc;
	o->status = status;
	o->retry_after = retry_after;
	assert_non_null(reason);
	util_strlcpy(o->reason, reason, sizeof(o->reason));
}

/* Services the loop until pred(o) or ms pass; the longest turn in ms. */
static int64_t run_until(struct fx *f, bool (*pred)(const struct obs *), const struct obs *o,
			 int ms)
{
	int64_t end = util_mono_ms() + ms, worst = 0;

	while ((!pred || !pred(o)) && util_mono_ms() < end) {
		int64_t t0 = util_mono_ms();

		lws_service(f->ctx, 0);
		if (util_mono_ms() - t0 > worst)
			worst = util_mono_ms() - t0;
	}
	return worst;
}

static bool is_done(const struct obs *o)
{
	return o->done > 0;
}

static bool has_1mib(const struct obs *o)
{
	return o->have >= MIB;
}

/* A writer for file.bin: exact size and SHA-256 expected, unless loose. */
static struct cache_writer *writer(struct fx *f, const char *name, bool loose)
{
	struct cache_expect x;
	struct cache_writer *w = NULL;
	struct err_info e = { 0 };
	uint64_t have = 1;

	memset(&x, 0, sizeof(x));
	if (!loose) {
		x.size = FILE_SIZE;
		x.has_digest = true;
		x.method = VERIFY_SHA256;
		memcpy(x.digest, f->w->sha, 32);
	}
	assert_int_equal(cache_writer_open(f->c, name, &x, false, &w, &have, &e), 0);
	assert_int_equal(have, 0);
	return w;
}

static struct fetch_req req(struct cache_writer *w, const char *url, uint64_t offset,
			    struct obs *o)
{
	struct fetch_req r = { url, w, offset, NULL, NULL, on_headers, on_progress, on_done, o };

	return r;
}

static void start(struct fx *f, struct fetch_req *r, struct obs *o)
{
	struct err_info e = { 0 };
	int rc = fetch_start(f->f, r, &o->job, &e);

	if (rc)
		fprintf(stderr, "fetch_start: %s\n", err_text(&e));
	assert_int_equal(rc, 0);
	assert_int_equal(o->done, 0);       /* never from inside fetch_start */
}

/* Runs one job to its end and checks it ended with rc. */
static void run_job(struct fx *f, struct fetch_req *r, struct obs *o, int rc)
{
	start(f, r, o);
	run_until(f, is_done, o, DEADLINE_MS);
	assert_int_equal(o->done, 1);
	if (o->rc != rc)
		fprintf(stderr, "rc %d (want %d): %s\n", o->rc, rc, o->reason);
	assert_int_equal(o->rc, rc);
}

static void commit_ok(struct fx *f, struct cache_writer *w)
{
	char hex[CACHE_HEX_LEN + 1], want[CACHE_HEX_LEN + 1];
	struct err_info e = { 0 };

	verify_hex(f->w->sha, 32, want);
	assert_int_equal(cache_writer_commit(w, hex, &e), 0);
	assert_string_equal(hex, want);
}

static void url(char *buf, size_t cap, const struct fx *f, bool tls, const char *host,
		const char *path)
{
	snprintf(buf, cap, "%s://%s:%u%s", tls ? "https" : "http", host,
		 tls ? f->w->tls_port : f->w->port, path);
}

/* Feeds the first n bytes of the image, as an earlier attempt would have. */
static void prefill(struct fx *f, struct cache_writer *w, size_t n)
{
	assert_int_equal(cache_writer_feed(w, f->w->data, n), 0);
}

/* ---- tests: nginx ------------------------------------------------------ */

/* By name: "localhost" goes through the resolver thread. */
static void test_full(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "a1", false);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	url(u, sizeof(u), f, false, "localhost", "/file.bin");
	r = req(w, u, 0, &o);
	run_job(f, &r, &o, 0);
	assert_int_equal(o.status, 200);
	assert_int_equal(o.headers, 1);
	assert_string_equal(o.etag, f->w->etag);
	assert_string_equal(o.lm, f->w->last_modified);
	assert_int_equal(o.total, FILE_SIZE);
	assert_false(o.restarted);
	assert_int_equal(o.have, FILE_SIZE);
	assert_true(o.progress > 1);
	commit_ok(f, w);
}

static void test_resume(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "a2", false);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	prefill(f, w, MIB);
	url(u, sizeof(u), f, false, "127.0.0.1", "/file.bin");
	r = req(w, u, MIB, &o);
	r.etag = f->w->etag;
	r.last_modified = f->w->last_modified;
	run_job(f, &r, &o, 0);
	assert_int_equal(o.status, 206);
	assert_int_equal(o.total, FILE_SIZE);
	assert_false(o.restarted);
	assert_int_equal(cache_writer_size(w), FILE_SIZE);
	commit_ok(f, w);
}

/* Only Last-Modified known (or a weak ETag): If-Range carries the date. */
static void test_resume_last_modified(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "a3", false);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	prefill(f, w, 2 * MIB + 7);
	url(u, sizeof(u), f, false, "127.0.0.1", "/file.bin");
	r = req(w, u, 2 * MIB + 7, &o);
	r.etag = "W/\"weak\"";
	r.last_modified = f->w->last_modified;
	run_job(f, &r, &o, 0);
	assert_int_equal(o.status, 206);
	assert_false(o.restarted);
	commit_ok(f, w);
}

static void test_resume_stale(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "a4", false);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	/* what an older image left behind: the right length, other bytes */
	assert_int_equal(cache_writer_feed(w, f->w->data + 5, MIB), 0);
	url(u, sizeof(u), f, false, "127.0.0.1", "/file.bin");
	r = req(w, u, MIB, &o);
	r.etag = "\"5f0-stale\"";
	run_job(f, &r, &o, 0);
	assert_int_equal(o.status, 200);
	assert_true(o.restarted);
	assert_int_equal(o.total, FILE_SIZE);
	assert_int_equal(cache_writer_size(w), FILE_SIZE);
	commit_ok(f, w);
}

/* The whole image is there already: 416 with bytes * / size means done. */
static void test_resume_complete(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "a5", false);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	prefill(f, w, FILE_SIZE);
	url(u, sizeof(u), f, false, "127.0.0.1", "/file.bin");
	r = req(w, u, FILE_SIZE, &o);
	r.etag = f->w->etag;
	run_job(f, &r, &o, 0);
	assert_int_equal(o.status, 416);
	assert_int_equal(o.headers, 1);
	assert_int_equal(o.total, FILE_SIZE);
	commit_ok(f, w);
}

static void test_not_found(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "b1", true);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	url(u, sizeof(u), f, false, "127.0.0.1", "/missing");
	r = req(w, u, 0, &o);
	run_job(f, &r, &o, -EPERM);
	assert_int_equal(o.status, 404);
	assert_non_null(strstr(o.reason, "404"));
	assert_int_equal(o.headers, 0);
	assert_int_equal(cache_writer_size(w), 0);
	cache_writer_abort(w, false);
}

static void test_redirect_loop(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "b2", true);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	url(u, sizeof(u), f, false, "127.0.0.1", "/loop");
	r = req(w, u, 0, &o);
	run_job(f, &r, &o, -EPERM);
	assert_int_equal(o.status, 302);
	assert_non_null(strstr(o.reason, "too many redirects"));
	cache_writer_abort(w, false);
}

/* Location: ../../file.bin from /a/b/rel. */
static void test_redirect_relative(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "b3", false);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	url(u, sizeof(u), f, false, "127.0.0.1", "/a/b/rel");
	r = req(w, u, 0, &o);
	run_job(f, &r, &o, 0);
	assert_int_equal(o.status, 200);
	commit_ok(f, w);
}

static void test_redirect_downgrade(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "b4", true);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	fx_fetch(f, f->w->ca_file, 10);
	url(u, sizeof(u), f, true, "localhost", "/down");
	r = req(w, u, 0, &o);
	run_job(f, &r, &o, -EPERM);
	assert_non_null(strstr(o.reason, "https to http"));
	cache_writer_abort(w, false);
}

static void test_unavailable(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "b5", true);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	url(u, sizeof(u), f, false, "127.0.0.1", "/busy");
	r = req(w, u, 0, &o);
	run_job(f, &r, &o, -EAGAIN);
	assert_int_equal(o.status, 503);
	assert_int_equal(o.retry_after, 7);
	cache_writer_abort(w, false);
}

static void test_too_big(void **state)
{
	struct fx *f = *state;
	struct cache_expect x = { .size = MIB };
	struct cache_writer *w = NULL;
	struct err_info e = { 0 };
	struct obs o = { 0 };
	struct fetch_req r;
	uint64_t have;
	char u[128];

	assert_int_equal(cache_writer_open(f->c, "c1", &x, false, &w, &have, &e), 0);
	url(u, sizeof(u), f, false, "127.0.0.1", "/file.bin");
	r = req(w, u, 0, &o);
	run_job(f, &r, &o, -EFBIG);
	assert_true(cache_writer_size(w) <= MIB);
	cache_writer_abort(w, false);
}

/* ---- tests: the raw server, names, cancel --------------------------------- */

static void raw_job(struct fx *f, const char *path, struct obs *o, int rc,
		    struct cache_writer **wp)
{
	struct fetch_req r;
	char u[128];

	*wp = writer(f, "d1", true);
	snprintf(u, sizeof(u), "http://127.0.0.1:%u%s", f->raw_port, path);
	r = req(*wp, u, 0, o);
	run_job(f, &r, o, rc);
}

static void test_truncated(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w;
	struct obs o = { 0 };

	raw_job(f, "/cut", &o, -EAGAIN, &w);
	assert_int_equal(o.total, RAW_CLAIM);
	assert_int_equal(cache_writer_size(w), RAW_BODY);
	cache_writer_abort(w, false);
}

/* No Content-Length: the body ends when the server closes. */
static void test_no_length(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w;
	struct obs o = { 0 };

	raw_job(f, "/nolen", &o, 0, &w);
	assert_int_equal(o.total, 0);
	assert_int_equal(cache_writer_size(w), RAW_BODY);
	cache_writer_abort(w, false);
}

static void test_stall_timeout(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w;
	struct obs o = { 0 };
	int64_t t0 = util_mono_ms();

	fx_fetch(f, NULL, 1);
	raw_job(f, "/stall", &o, -EAGAIN, &w);
	assert_non_null(strstr(o.reason, "timeout"));
	assert_true(util_mono_ms() - t0 < 4000);
	cache_writer_abort(w, false);
}

/* Nobody listens there: refused at once or on the next turn. */
static void test_refused(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "d2", true);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	snprintf(u, sizeof(u), "http://127.0.0.1:%u/x", free_port());
	r = req(w, u, 0, &o);
	run_job(f, &r, &o, -EAGAIN);
	assert_non_null(strstr(o.reason, "127.0.0.1"));
	assert_int_equal(o.status, 0);
	cache_writer_abort(w, false);
}

static void test_unresolvable(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "e1", true);
	struct obs o = { 0 };
	struct fetch_req r = req(w, "http://nonexistent.invalid/image.bin", 0, &o);
	int64_t worst;

	start(f, &r, &o);
	worst = run_until(f, is_done, &o, DEADLINE_MS);
	assert_int_equal(o.done, 1);
	assert_true(o.rc == -EAGAIN || o.rc == -EPERM);
	assert_non_null(strstr(o.reason, "nonexistent.invalid"));
	assert_true(worst < 500);                   /* the lookup never held the loop */
	cache_writer_abort(w, false);
}

/* Cancelled from on_progress, mid-body: done() never comes. */
static void test_cancel_in_flight(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "e2", false);
	struct obs o = { .cancel_at = MIB };
	struct fetch_req r;
	char u[128];

	url(u, sizeof(u), f, false, "127.0.0.1", "/file.bin");
	r = req(w, u, 0, &o);
	start(f, &r, &o);
	run_until(f, has_1mib, &o, DEADLINE_MS);
	assert_true(o.have >= MIB);
	run_until(f, NULL, &o, 500);
	assert_int_equal(o.done, 0);
	assert_true(o.have < FILE_SIZE);
	cache_writer_abort(w, false);
}

/* Cancelled while the name is being looked up, soon after connecting
 * started, and once finished but before done() ran. */
static void test_cancel_early(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w1 = writer(f, "e3", true), *w2 = writer(f, "e6", true);
	struct cache_writer *w3 = writer(f, "e7", true);
	struct obs a = { 0 }, b = { 0 }, c = { 0 };
	struct fetch_req r;
	char u[128];

	url(u, sizeof(u), f, false, "localhost", "/file.bin");
	r = req(w1, u, 0, &a);
	start(f, &r, &a);
	fetch_cancel(a.job);
	fetch_cancel(a.job);                        /* twice is harmless */
	url(u, sizeof(u), f, false, "127.0.0.1", "/file.bin");
	r = req(w2, u, 0, &b);
	start(f, &r, &b);
	lws_service(f->ctx, 0);                     /* the literal resolves, connect starts */
	fetch_cancel(b.job);
	r = req(w3, "ftp://bad/", 0, &c);           /* finished, done() not yet called */
	start(f, &r, &c);
	fetch_cancel(c.job);
	fetch_cancel(NULL);
	run_until(f, NULL, &a, 500);
	assert_int_equal(a.done + a.headers + a.progress, 0);
	assert_int_equal(b.done, 0);
	assert_int_equal(c.done, 0);
	assert_int_equal(cache_writer_size(w1), 0);
	assert_true(cache_writer_size(w2) < FILE_SIZE);
	cache_writer_abort(w1, false);
	cache_writer_abort(w2, false);
	cache_writer_abort(w3, false);
}

/* fetch_free() with one job mid-body and one resolving: no callbacks, no leaks. */
static void test_free_in_flight(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w1 = writer(f, "e4", false), *w2 = writer(f, "e5", true);
	struct obs a = { 0 }, b = { 0 };
	struct fetch_req r;
	char u[128];

	url(u, sizeof(u), f, false, "127.0.0.1", "/file.bin");
	r = req(w1, u, 0, &a);
	start(f, &r, &a);
	run_until(f, has_1mib, &a, DEADLINE_MS);
	url(u, sizeof(u), f, false, "localhost", "/file.bin");
	r = req(w2, u, 0, &b);
	start(f, &r, &b);
	fetch_free(f->f);
	f->f = NULL;
	run_until(f, NULL, &a, 300);
	assert_int_equal(a.done + b.done, 0);
	assert_true(a.have < FILE_SIZE);
	cache_writer_abort(w1, false);
	cache_writer_abort(w2, false);
}

/* Two downloads at once share the loop. */
static void test_parallel(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w1 = writer(f, "f1", false), *w2 = writer(f, "f2", false);
	struct obs a = { 0 }, b = { 0 };
	struct fetch_req r;
	char u[128];
	int64_t end = util_mono_ms() + DEADLINE_MS;

	url(u, sizeof(u), f, false, "127.0.0.1", "/file.bin");
	r = req(w1, u, 0, &a);
	start(f, &r, &a);
	url(u, sizeof(u), f, false, "localhost", "/file.bin");
	r = req(w2, u, 0, &b);
	start(f, &r, &b);
	while ((!a.done || !b.done) && util_mono_ms() < end)
		run_until(f, NULL, &a, 50);
	assert_int_equal(a.rc, 0);
	assert_int_equal(b.rc, 0);
	commit_ok(f, w1);
	commit_ok(f, w2);
}

/* ---- tests: TLS ------------------------------------------------------------ */

/* Pinned CA, connecting to 127.0.0.1 with SNI and name check "localhost". */
static void test_https(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "f3", false);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	fx_fetch(f, f->w->ca_file, 10);
	url(u, sizeof(u), f, true, "localhost", "/file.bin");
	r = req(w, u, 0, &o);
	run_job(f, &r, &o, 0);
	assert_int_equal(o.status, 200);
	commit_ok(f, w);
}

static void test_https_resume(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "f4", false);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	fx_fetch(f, f->w->ca_file, 10);
	prefill(f, w, MIB + 1);
	url(u, sizeof(u), f, true, "localhost", "/file.bin");
	r = req(w, u, MIB + 1, &o);
	r.etag = f->w->etag;
	run_job(f, &r, &o, 0);
	assert_int_equal(o.status, 206);
	commit_ok(f, w);
}

/* The system store does not know our CA: this must fail, permanently. */
static void test_https_unknown_ca(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "f5", true);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	url(u, sizeof(u), f, true, "localhost", "/file.bin");
	r = req(w, u, 0, &o);
	run_job(f, &r, &o, -EPERM);
	assert_non_null(strstr(o.reason, "certificate"));
	assert_non_null(strstr(o.reason, "issuer"));
	assert_int_equal(o.headers, 0);
	assert_int_equal(cache_writer_size(w), 0);
	cache_writer_abort(w, false);
}

/* ca_file unset really means OpenSSL's default verify paths: pointing them
 * at our CA (SSL_CERT_FILE) makes the same download succeed. The TLS vhost
 * (OpenSSL, the CA store) is made only when the first https:// job starts. */
static void test_https_system_store(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "f7", false);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	setenv("SSL_CERT_FILE", f->w->ca_file, 1);
	fx_fetch(f, NULL, 10);
	assert_null(lws_get_vhost_by_name(f->ctx, "otagw-fetch-tls"));
	url(u, sizeof(u), f, true, "localhost", "/file.bin");
	r = req(w, u, 0, &o);
	run_job(f, &r, &o, 0);
	unsetenv("SSL_CERT_FILE");
	assert_non_null(lws_get_vhost_by_name(f->ctx, "otagw-fetch-tls"));
	commit_ok(f, w);
}

/* The right CA, but the certificate is for "localhost", not 127.0.0.1. */
static void test_https_wrong_name(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "f6", true);
	struct obs o = { 0 };
	struct fetch_req r;
	char u[128];

	fx_fetch(f, f->w->ca_file, 10);
	url(u, sizeof(u), f, true, "127.0.0.1", "/file.bin");
	r = req(w, u, 0, &o);
	run_job(f, &r, &o, -EPERM);
	assert_non_null(strstr(o.reason, "mismatch"));
	assert_int_equal(o.headers, 0);
	cache_writer_abort(w, false);
}

static void test_bad_ca_file(void **state)
{
	struct fx *f = *state;
	struct fetch_cfg cfg = { f->ctx, "/nonexistent/ca.pem", 5, 10 };
	struct fetch *x = NULL;
	struct err_info e = { 0 };

	assert_int_equal(fetch_new(&x, &cfg, &e), -ENOENT);
	assert_null(x);
}

/* ---- tests: hostile input ----------------------------------------------- */

static void test_bad_urls(void **state)
{
	static const char *const bad[] = {
		"", "ftp://127.0.0.1/x", "file:///etc/passwd", "http//127.0.0.1/x",
		"http://user:pw@127.0.0.1/x", "http://u@127.0.0.1/x", "http://127.0.0.1/x#frag",
		"http://127.0.0.1/a b", "http://127.0.0.1/a\r\nX-Evil: 1", "http://127.0.0.1/\n",
		"http://127.0.0.1:99999/x", "http://127.0.0.1:0/x", "http://127.0.0.1:/x",
		"http://127.0.0.1:8a/x", "http://127.0.0.1:-80/x", "http:///x", "http://[::1/x",
		"http://[zz::1]/x", "http://[]/x", "http://ex\xc3\xa4mple/x", "http://127.0.0.1\\x",
		"http://a\tb/", "http://exa%6dple.com/", "http://127.0.0.1:80:80/",
	};
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "aa", true);
	char longhost[400], longpath[2200];
	size_t i;

	for (i = 0; i < OTAGW_ARRAY_SIZE(bad) + 2; i++) {
		struct obs o = { 0 };
		struct fetch_req r = req(w, NULL, 0, &o);

		if (i == OTAGW_ARRAY_SIZE(bad)) {
			memset(longhost, 'a', sizeof(longhost));
			memcpy(longhost, "http://", 7);
			longhost[sizeof(longhost) - 1] = '\0';
			r.url = longhost;
		} else if (i == OTAGW_ARRAY_SIZE(bad) + 1) {
			snprintf(longpath, sizeof(longpath), "http://127.0.0.1/%2100d", 7);
			r.url = longpath;
		} else {
			r.url = bad[i];
		}
		start(f, &r, &o);
		run_until(f, is_done, &o, 2000);
		if (o.rc != -EPERM)
			fprintf(stderr, "url %zu accepted: %s\n", i, o.reason);
		assert_int_equal(o.done, 1);
		assert_int_equal(o.rc, -EPERM);
		assert_non_null(strstr(o.reason, "URL"));
	}
	cache_writer_abort(w, false);
}

/* Refused at once (nothing scheduled): missing pieces, a validator that
 * would inject a header, an offset the writer does not hold. */
static void test_bad_requests(void **state)
{
	struct fx *f = *state;
	struct cache_writer *w = writer(f, "ab", true);
	struct err_info e = { 0 };
	struct fetch_job *j = NULL;
	struct obs o = { 0 };
	struct fetch_req r = req(w, "http://127.0.0.1/x", 0, &o);
	struct fetch_req bad;

	bad = r;
	bad.url = NULL;
	assert_int_equal(fetch_start(f->f, &bad, &j, &e), -EINVAL);
	bad = r;
	bad.w = NULL;
	assert_int_equal(fetch_start(f->f, &bad, &j, &e), -EINVAL);
	bad = r;
	bad.done = NULL;
	assert_int_equal(fetch_start(f->f, &bad, &j, &e), -EINVAL);
	bad = r;
	bad.offset = 5;
	assert_int_equal(fetch_start(f->f, &bad, &j, &e), -EINVAL);
	bad = r;
	bad.etag = "\"x\"\r\nX-Evil: 1";
	assert_int_equal(fetch_start(f->f, &bad, &j, &e), -EINVAL);
	bad = r;
	bad.last_modified = "Mon\n";
	assert_int_equal(fetch_start(f->f, &bad, &j, &e), -EINVAL);
	assert_null(j);
	run_until(f, NULL, &o, 100);
	assert_int_equal(o.done, 0);
	cache_writer_abort(w, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(test_full),
		T(test_resume),
		T(test_resume_last_modified),
		T(test_resume_stale),
		T(test_resume_complete),
		T(test_not_found),
		T(test_redirect_loop),
		T(test_redirect_relative),
		T(test_redirect_downgrade),
		T(test_unavailable),
		T(test_too_big),
		T(test_truncated),
		T(test_no_length),
		T(test_stall_timeout),
		T(test_refused),
		T(test_unresolvable),
		T(test_cancel_in_flight),
		T(test_cancel_early),
		T(test_free_in_flight),
		T(test_parallel),
		T(test_https),
		T(test_https_resume),
		T(test_https_unknown_ca),
		T(test_https_system_store),
		T(test_https_wrong_name),
		T(test_bad_ca_file),
		T(test_bad_urls),
		T(test_bad_requests),
#undef T
	};

	return cmocka_run_group_tests(tests, world_setup, world_teardown);
}
