/* SPDX-License-Identifier: MIT */
/* cli_ctl.c - `otagw ctl`, the command line client of a running daemon:
 *   otagw [-c CONFIG] ctl [--url URL] [--token T] [--json] COMMAND [ARGS]
 * Every command is one or a few requests to the daemon's REST API
 * (cli_http.c); answers are shown as aligned tables (cli_table.c) with
 * sizes and times for people, or with --json as the API's JSON, pretty.
 * The command table (ctl_cmds[]) is the one list the parser, the dispatch
 * and --help read. The URL and token come from cli_target() (options,
 * $OTAGW_URL/$OTAGW_TOKEN, the configuration), shared with import/export.
 * Exit status: 0 ok, 1 failed or refused (other 4xx/5xx, I/O, interrupted),
 * 2 usage, 3 daemon unreachable, 4 not found (404), 5 unauthorized
 * (401/403), 6 conflict or invalid input (400, 409, 422). Errors are one
 * line on stderr: "otagw ctl: <command>: <the API's error text>".
 * Must not: print the API token; open the daemon's store or cache; change
 * anything except through the API. */
#define LOG_MOD "cli"
#include <cJSON.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <locale.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_http.h"
#include "cli_priv.h"
#include "cli_table.h"
#include "otagw_limits.h"
#include "util.h"

#define CTL_PATH_MAX 1024        /* bytes of a request path with its query */
#define CTL_PROPS_MAX 64         /* --property options of one command */
#define CTL_IDLE_S 120           /* s without progress during an upload */
#define CTL_REQ_IDLE_S 30        /* s without an answer to other requests */
#define CTL_NUM_MAX 9007199254740991ULL   /* 2^53 - 1: exact as a JSON number */
#define CTL_SCAN_PAGES 100       /* tasks list --state reads at most this many pages */
#define CTL_WRAP 78              /* columns of --help text */

/* ---- options and commands --------------------------------------------------------- */

/* Options of the commands (the globals are parsed apart). Two options may
 * share a name when no command takes both (--size, --state). */
enum ctl_opt {
	CO_PRODUCT, CO_NAME, CO_VERSION, CO_ORDER, CO_FWURL, CO_FWSIZE, CO_SIGN, CO_SIGNMETHOD,
	CO_DESC, CO_PROP, CO_ID, CO_FIRMWARE, CO_MODE, CO_DEVICES, CO_TIMEOUT, CO_NOPUBLISH,
	CO_TSTATE, CO_RSTATE, CO_PAGE, CO_PAGESIZE, CO_REASON, CO_QUIET, CO_JSON, CO_HELP, CO_COUNT
};
#define CO(o) (1u << (o))
#define CO_PAGING (CO(CO_PAGE) | CO(CO_PAGESIZE))
#define CO_FW_FIELDS (CO(CO_PRODUCT) | CO(CO_NAME) | CO(CO_VERSION) | CO(CO_ORDER) | \
		      CO(CO_FWURL) | CO(CO_FWSIZE) | CO(CO_SIGN) | CO(CO_SIGNMETHOD) | \
		      CO(CO_DESC) | CO(CO_PROP))

static const struct ctl_optdef {
	const char *name;
	const char *arg;             /* value's name in help; NULL: a flag */
	const char *help;
} ctl_opts[CO_COUNT] = {
	[CO_PRODUCT] = { "product", "P", "productId" },
	[CO_NAME] = { "name", "N", "name" },
	[CO_VERSION] = { "version", "V", "version (unique per product)" },
	[CO_ORDER] = { "version-order", "N", "versionOrder: higher is newer" },
	[CO_FWURL] = { "url", "U", "url the gateway downloads the image from" },
	[CO_FWSIZE] = { "size", "N", "size of the image in bytes" },
	[CO_SIGN] = { "sign", "S", "digest (hex) or signature (base64) of the image" },
	[CO_SIGNMETHOD] = { "sign-method", "M", "signMethod: md5, sha256 or ecdsa-p256" },
	[CO_DESC] = { "description", "D", "description" },
	[CO_PROP] = { "property", "KEY=VALUE", "a property (repeatable); edit merges them "
					       "into the firmware's properties" },
	[CO_ID] = { "id", "ID", "id of the new object (default: made by the gateway)" },
	[CO_FIRMWARE] = { "firmware", "ID", "only tasks of this firmware" },
	[CO_MODE] = { "mode", "push|pull", "push: the gateway tells devices; pull: devices ask" },
	[CO_DEVICES] = { "devices", "ID,ID,...", "these devices (default: every device of the "
						 "firmware's product)" },
	[CO_TIMEOUT] = { "timeout", "S", "timeoutSeconds a device may take (0 = no limit)" },
	[CO_NOPUBLISH] = { "no-publish", NULL, "only create the task; publish it later" },
	[CO_TSTATE] = { "state", "S", "only tasks in state S: created, published or canceled "
				      "(filtered here: reads every page)" },
	[CO_RSTATE] = { "state", "S[,S]", "only records in these states: waiting, processing, "
					  "success, failed, canceled" },
	[CO_PAGE] = { "page", "N", "page to show, from 0" },
	[CO_PAGESIZE] = { "size", "N", "items per page, 1-1000 (default 20)" },
	[CO_REASON] = { "reason", "TEXT", "why, kept with the task and in its events "
					  "(default: paused by the operator)" },
	[CO_QUIET] = { "quiet", NULL, "no progress bar or summary line" },
	[CO_JSON] = { "json", NULL, "print the API's JSON answer (pretty) instead of a table" },
	[CO_HELP] = { "help", NULL, "this text" },
};

struct ctl;

struct ctl_cmd {
	const char *words;           /* "firmware list": one or two words */
	const char *args;            /* positional arguments, "" for none */
	unsigned nargs;
	uint32_t opts;               /* CO() of the options it takes */
	uint32_t required;           /* of those, the ones it needs */
	const char *help;            /* one line */
	const char *api;             /* what it asks the daemon */
	int (*run)(struct ctl *c);
};

/* One invocation. Borrowed strings point into argv. */
struct ctl {
	const char *conf, *url, *token;      /* global options */
	bool json;
	const volatile sig_atomic_t *stop;   /* borrowed, set by SIGINT/SIGTERM */
	const struct ctl_cmd *cmd;
	char what[160];                      /* "firmware show fw1": starts error lines */
	const char *eio_hint;                /* said after a connection lost (-EIO) */
	struct cli_progress *progress;       /* a line being drawn, ended before errors */
	const char *opt[CO_COUNT];           /* values given; flags: "" */
	uint32_t given;                      /* CO() of the options given */
	const char *props[CTL_PROPS_MAX];
	size_t nprops;
	char **arg;                          /* cmd->nargs positional arguments */
	struct cli_target t;
	struct cli_http *h;
};

/* An answer of the daemon. */
struct ctl_answer {
	int status;
	cJSON *json;                         /* the body parsed; NULL when empty */
};

/* ---- small helpers --------------------------------------------------------------- */

/* Says what is wrong with the command line; returns CLI_EXIT_USAGE. */
static int ctl_usage(struct ctl *c, const char *fmt, ...) OTAGW_PRINTF(2, 3);
static int ctl_usage(struct ctl *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "otagw ctl: %s: ", c->cmd ? c->cmd->words : "usage");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see otagw ctl %s%s--help)\n", c->cmd ? c->cmd->words : "",
		c->cmd ? " " : "");
	return CLI_EXIT_USAGE;
}

static const char *ctl_str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static double ctl_num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static uint64_t ctl_u64(const cJSON *o, const char *k)
{
	double d = ctl_num(o, k);

	return d > 0 && d < 1.8e19 ? (uint64_t)d : 0;
}

static const char *ctl_yes(const cJSON *o, const char *k)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k)) ? "yes" : "no";
}

/* Local time of ms since the epoch into buf[24]; "-" for 0. */
static const char *ctl_time(double ms, char buf[24])
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || !localtime_r(&s, &tm) || !strftime(buf, 24, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, 24, "-");
	return buf;
}

/* A size for people, "-" for 0, into buf[16]. */
static const char *ctl_size(uint64_t n, char buf[16])
{
	if (n)
		return cli_size(n, buf);
	snprintf(buf, 16, "-");
	return buf;
}

/* "2d 03:04:05" of s seconds into buf[32]. */
static const char *ctl_duration(uint64_t s, char buf[32])
{
	unsigned d = (unsigned)(s / 86400), h = (unsigned)(s / 3600 % 24);
	unsigned m = (unsigned)(s / 60 % 60), sec = (unsigned)(s % 60);

	if (d)
		snprintf(buf, 32, "%ud %02u:%02u:%02u", d, h, m, sec);
	else
		snprintf(buf, 32, "%02u:%02u:%02u", h, m, sec);
	return buf;
}

/* "k=v, k2=v2" of a JSON object (strings bare, other values as JSON). */
static void ctl_props(const cJSON *o, char *out, size_t cap)
{
	const cJSON *it;
	size_t n = 0;

	out[0] = '\0';
	cJSON_ArrayForEach(it, o) {
		char *v = cJSON_IsString(it) ? NULL : cJSON_PrintUnformatted(it);
		int w = snprintf(out + n, cap - n, "%s%s=%s", n ? ", " : "", it->string,
				 cJSON_IsString(it) ? it->valuestring : v ? v : "?");

		free(v);
		if (w < 0 || (size_t)w >= cap - n)
			return;
		n += (size_t)w;
	}
}

/* Prints j as pretty JSON on stdout. */
static int ctl_print_json(const cJSON *j)
{
	char *text = j ? cJSON_Print(j) : NULL;

	if (!text) {
		fprintf(stderr, "otagw ctl: out of memory\n");
		return CLI_EXIT_FAILED;
	}
	printf("%s\n", text);
	free(text);
	return CLI_EXIT_OK;
}

static int ctl_print_table(struct cli_table *t)
{
	int rc = cli_table_print(t, stdout);

	cli_table_free(t);
	if (rc)
		fprintf(stderr, "otagw ctl: cannot show the table: %s\n", otagw_strerror(rc));
	return rc ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

/* A table with heads (NULL-terminated), or NULL after saying so. */
static struct cli_table *ctl_table(const char *const *heads)
{
	struct cli_table *t = NULL;
	size_t n = 0;

	while (heads[n])
		n++;
	if (cli_table_new(&t, n, heads)) {
		fprintf(stderr, "otagw ctl: out of memory\n");
		return NULL;
	}
	return t;
}

/* A key/value table (two columns, no header), or NULL. */
static struct cli_table *ctl_kv(void)
{
	struct cli_table *t = NULL;

	if (cli_table_new(&t, 2, NULL)) {
		fprintf(stderr, "otagw ctl: out of memory\n");
		return NULL;
	}
	return t;
}

static void ctl_kv_add(struct cli_table *t, const char *key, const char *value)
{
	cli_table_cell(t, "%s", key);
	cli_table_cell(t, "%s", value);
}

/* A request path with its query: ctl_path_add() appends text,
 * ctl_path_arg() a "?k=v" or "&k=v" when v is set. Values are checked by
 * the caller (ids, numbers, state names): nothing here needs encoding. */
struct ctl_path {
	char s[CTL_PATH_MAX];
	size_t n;
	bool over;
};

static void ctl_path_add(struct ctl_path *p, const char *fmt, ...) OTAGW_PRINTF(2, 3);
static void ctl_path_add(struct ctl_path *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->over)
		return;
	va_start(ap, fmt);
	n = vsnprintf(p->s + p->n, sizeof(p->s) - p->n, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(p->s) - p->n)
		p->over = true;
	else
		p->n += (size_t)n;
}

static void ctl_path_arg(struct ctl_path *p, const char *k, const char *v)
{
	if (v)
		ctl_path_add(p, "%c%s=%s", strchr(p->s, '?') ? '&' : '?', k, v);
}

/* ---- talking to the daemon --------------------------------------------------------- */

/* The exit status for an HTTP status. */
static int ctl_exit_of(int status)
{
	if (status >= 200 && status < 300)
		return CLI_EXIT_OK;
	switch (status) {
	case 404:
		return CLI_EXIT_NOT_FOUND;
	case 401:
	case 403:
		return CLI_EXIT_UNAUTHORIZED;
	case 400:
	case 409:
	case 422:
		return CLI_EXIT_INVALID;
	default:
		return CLI_EXIT_FAILED;
	}
}

/* Says why a request failed before an answer; returns the exit status. */
static int ctl_transport_error(struct ctl *c, int rc, const struct err_info *e)
{
	if (c->progress)
		cli_progress_end(c->progress);
	if (rc == -ECONNREFUSED) {
		fprintf(stderr, "otagw ctl: %s: cannot reach the daemon at %s: %s\n", c->what,
			c->t.base.host_hdr, err_text(e));
		return CLI_EXIT_UNREACHABLE;
	}
	if (rc == -EINTR)
		fprintf(stderr, "otagw ctl: %s: interrupted\n", c->what);
	else if (rc == -EIO && c->eio_hint)
		fprintf(stderr, "otagw ctl: %s: %s %s\n", c->what, err_text(e), c->eio_hint);
	else
		fprintf(stderr, "otagw ctl: %s: %s\n", c->what, err_text(e));
	return CLI_EXIT_FAILED;
}

/* Says what the daemon refused (its {"error": ...}); returns the exit status. */
static int ctl_refused(struct ctl *c, int status, const char *body)
{
	char text[OTAGW_ERR_TEXT_MAX + 64];

	if (c->progress)
		cli_progress_end(c->progress);
	cli_answer_text(body, text, sizeof(text));
	if (!text[0])
		snprintf(text, sizeof(text), "HTTP %d", status);
	fprintf(stderr, "otagw ctl: %s: %s%s\n", c->what, text,
		status == 401 || status == 403 ? " (give --token or set OTAGW_TOKEN)" : "");
	return ctl_exit_of(status);
}

/* One request; r's url, token, stop and idle filled in here. 0 with a
 * 2xx answer in *a (any answer when any_status), or the exit status after
 * saying why. a->json is the caller's on 0. */
static int ctl_send(struct ctl *c, struct cli_http_req *r, const char *path, bool any_status,
		    struct ctl_answer *a)
{
	struct cli_http_resp resp = { 0 };
	struct err_info e = { 0 };
	struct fetch_url u;
	int rc = cli_url(&c->t, path, &u, &e);

	a->status = 0;
	a->json = NULL;
	r->u = &u;
	r->token = c->t.token;
	r->stop = c->stop;
	if (!r->idle_s)
		r->idle_s = CTL_REQ_IDLE_S;
	if (!rc)
		rc = cli_http_run(c->h, r, &resp, &e);
	r->u = NULL;            /* u is ours: r must not keep it */
	if (rc) {
		free(resp.body);
		return ctl_transport_error(c, rc, &e);
	}
	a->status = resp.status;
	if (!any_status && (resp.status < 200 || resp.status >= 300)) {
		rc = ctl_refused(c, resp.status, resp.body);
		free(resp.body);
		return rc;
	}
	a->json = resp.len ? cJSON_ParseWithLength(resp.body, resp.len) : NULL;
	rc = resp.len && !a->json ? CLI_EXIT_FAILED : CLI_EXIT_OK;
	if (rc)
		fprintf(stderr, "otagw ctl: %s: the daemon's answer is not JSON\n", c->what);
	free(resp.body);
	return rc;
}

/* method path with body (NULL: none); 0 with a 2xx answer in *a (the
 * caller deletes a->json), else the exit status after saying why. */
static int ctl_call(struct ctl *c, const char *method, const char *path, const cJSON *body,
		    struct ctl_answer *a)
{
	struct cli_http_req r = { .method = method, .body_fd = -1 };
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;
	int rc;

	if (body && !text) {
		fprintf(stderr, "otagw ctl: out of memory\n");
		a->json = NULL;         /* callers delete it on every path */
		return CLI_EXIT_FAILED;
	}
	r.body = text;
	r.body_len = text ? strlen(text) : 0;
	rc = ctl_send(c, &r, path, false, a);
	free(text);
	return rc;
}

/* GET path answering a JSON object into *out (caller deletes). */
static int ctl_get(struct ctl *c, const char *path, cJSON **out)
{
	struct ctl_answer a;
	int rc = ctl_call(c, "GET", path, NULL, &a);

	if (!rc && !cJSON_IsObject(a.json)) {
		fprintf(stderr, "otagw ctl: %s: the daemon's answer is not a JSON object\n",
			c->what);
		rc = CLI_EXIT_FAILED;
	}
	if (rc)
		cJSON_Delete(a.json);
	else
		*out = a.json;
	return rc;
}

/* Sends body and shows the JSON object answered with show(). */
static int ctl_write_show(struct ctl *c, const char *method, const char *path, cJSON *body,
			  int (*show)(struct ctl *c, const cJSON *o))
{
	struct ctl_answer a;
	int rc = ctl_call(c, method, path, body, &a);

	if (!rc && !cJSON_IsObject(a.json)) {
		fprintf(stderr, "otagw ctl: %s: the daemon's answer is not a JSON object\n",
			c->what);
		rc = CLI_EXIT_FAILED;
	}
	if (!rc)
		rc = c->json ? ctl_print_json(a.json) : show(c, a.json);
	cJSON_Delete(a.json);
	return rc;
}

/* GET path and show the object with show(). */
static int ctl_show(struct ctl *c, const char *path, int (*show)(struct ctl *c, const cJSON *o))
{
	cJSON *o = NULL;
	int rc = ctl_get(c, path, &o);

	if (!rc)
		rc = c->json ? ctl_print_json(o) : show(c, o);
	cJSON_Delete(o);
	return rc;
}

/* ---- option values ----------------------------------------------------------------- */

/* The number of option o into *out (unset: untouched, 0). */
static int ctl_opt_num(struct ctl *c, enum ctl_opt o, uint64_t *out)
{
	const char *v = c->opt[o];

	if (v && parse_u64(v, strlen(v), CTL_NUM_MAX, out))
		return ctl_usage(c, "--%s takes a whole number", ctl_opts[o].name);
	return 0;
}

/* An id given on the command line (an argument or option value). */
static int ctl_check_id(struct ctl *c, const char *what, const char *v)
{
	if (v && !util_id_valid(v))
		return ctl_usage(c, "%s '%.80s' is not a valid id (1-64 of A-Z a-z 0-9 _ . : -)",
				 what, v);
	return 0;
}

/* ---- lists ------------------------------------------------------------------------- */

/* How a list's items become a table. */
struct ctl_view {
	const char *one, *many;              /* "device", "devices" */
	const char *heads[CLI_TABLE_COLS_MAX + 1];   /* NULL-terminated */
	uint32_t right;                      /* bit per right-aligned column */
	uint8_t cap[CLI_TABLE_COLS_MAX];     /* terminal columns, 0 = no cap */
	void (*row)(struct cli_table *t, const cJSON *item);
};

static int ctl_items_table(const struct ctl_view *v, const cJSON *items)
{
	struct cli_table *t = ctl_table(v->heads);
	const cJSON *it;

	if (!t)
		return CLI_EXIT_FAILED;
	for (size_t i = 0; v->heads[i]; i++) {
		if (v->right & (1u << i))
			cli_table_right(t, i);
		cli_table_cap(t, i, v->cap[i]);
	}
	cJSON_ArrayForEach(it, items)
		v->row(t, it);
	return ctl_print_table(t);
}

/* A whole (unpaged) list: the table, then "N <one|many>". */
static int ctl_items_counted(const struct ctl_view *v, const cJSON *items)
{
	uint64_t n = (uint64_t)cJSON_GetArraySize(items);
	int rc = n ? ctl_items_table(v, items) : CLI_EXIT_OK;

	if (!rc)
		printf("%" PRIu64 " %s\n", n, n == 1 ? v->one : v->many);
	return rc;
}

/* The line under a list: how many, and how to see the next page. */
static void ctl_list_footer(const struct ctl_view *v, uint64_t total, uint64_t page,
			    uint64_t size, uint64_t count)
{
	uint64_t first = page * size;

	if (!count && !total)
		printf("no %s\n", v->many);
	else if (!count)
		printf("no %s on page %" PRIu64 " (%" PRIu64 " in all)\n", v->many, page, total);
	else if (!page && count >= total)
		printf("%" PRIu64 " %s\n", total, total == 1 ? v->one : v->many);
	else if (first + count < total)
		printf("%s %" PRIu64 "-%" PRIu64 " of %" PRIu64 " (page %" PRIu64 ", size %" PRIu64
		       "); next: --page %" PRIu64 "\n", v->many, first + 1, first + count, total,
		       page, size, page + 1);
	else
		printf("%s %" PRIu64 "-%" PRIu64 " of %" PRIu64 " (page %" PRIu64 ", size %" PRIu64
		       ")\n", v->many, first + 1, first + count, total, page, size);
}

/* Shows a list answer {total, page, size, items}. */
static int ctl_list_show(struct ctl *c, const struct ctl_view *v, const cJSON *o)
{
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(o, "items");
	int rc;

	if (c->json)
		return ctl_print_json(o);
	if (!cJSON_IsArray(items)) {
		fprintf(stderr, "otagw ctl: %s: the answer has no items\n", c->what);
		return CLI_EXIT_FAILED;
	}
	rc = cJSON_GetArraySize(items) ? ctl_items_table(v, items) : CLI_EXIT_OK;
	if (!rc)
		ctl_list_footer(v, ctl_u64(o, "total"), ctl_u64(o, "page"), ctl_u64(o, "size"),
				(uint64_t)cJSON_GetArraySize(items));
	return rc;
}

/* Adds --page and --size of the command to p. */
static int ctl_paging(struct ctl *c, struct ctl_path *p)
{
	uint64_t n;

	if (ctl_opt_num(c, CO_PAGE, &n) || ctl_opt_num(c, CO_PAGESIZE, &n))
		return CLI_EXIT_USAGE;
	ctl_path_arg(p, "page", c->opt[CO_PAGE]);
	ctl_path_arg(p, "size", c->opt[CO_PAGESIZE]);
	return 0;
}

/* GET p (a list) and show it. */
static int ctl_list(struct ctl *c, const struct ctl_view *v, struct ctl_path *p)
{
	cJSON *o = NULL;
	int rc;

	if (p->over)
		return ctl_usage(c, "the request path is too long");
	rc = ctl_get(c, p->s, &o);
	if (!rc)
		rc = ctl_list_show(c, v, o);
	cJSON_Delete(o);
	return rc;
}

/* ---- firmware ---------------------------------------------------------------------- */

/* "ready", "downloading 40%", "failed", "none" of a firmware's image. */
static void ctl_image_state(const cJSON *fw, char *out, size_t cap)
{
	const cJSON *img = cJSON_GetObjectItemCaseSensitive(fw, "image");
	const char *state = ctl_str(img, "state");
	uint64_t bytes = ctl_u64(img, "bytes"), total = ctl_u64(img, "total");

	if (!strcmp(state, "downloading") && total)
		snprintf(out, cap, "downloading %u%%", (unsigned)(bytes * 100 / total));
	else
		snprintf(out, cap, "%s", state[0] ? state : "-");
}

static void ctl_fw_row(struct cli_table *t, const cJSON *fw)
{
	const cJSON *image = cJSON_GetObjectItemCaseSensitive(fw, "image");
	char sz[16], tm[24], img[48];

	ctl_image_state(fw, img, sizeof(img));
	cli_table_cell(t, "%s", ctl_str(fw, "id"));
	cli_table_cell(t, "%s", ctl_str(fw, "productId"));
	cli_table_cell(t, "%s", ctl_str(fw, "name"));
	cli_table_cell(t, "%s", ctl_str(fw, "version"));
	cli_table_cell(t, "%" PRIu64, ctl_u64(fw, "versionOrder"));
	/* the declared size, else what the image turned out to be */
	cli_table_cell(t, "%s", ctl_size(ctl_u64(fw, "size") ?: ctl_u64(image, "total"), sz));
	cli_table_cell(t, "%s", img);
	cli_table_cell(t, "%s", ctl_time(ctl_num(fw, "updateTime"), tm));
}

static const struct ctl_view ctl_fw_view = {
	"firmware", "firmware",
	{ "ID", "PRODUCT", "NAME", "VERSION", "ORDER", "SIZE", "IMAGE", "UPDATED", NULL },
	(1u << 4) | (1u << 5), { [2] = 40 }, ctl_fw_row,
};

/* "ready, sha256 ab12..." / "downloading 1.0 MiB of 2.0 MiB (queued)" ... */
static void ctl_image_text(const cJSON *img, char *out, size_t cap)
{
	const char *state = ctl_str(img, "state"), *sha = ctl_str(img, "sha256");
	const char *reason = ctl_str(img, "reason");
	char a[16], b[16];

	if (!strcmp(state, "ready"))
		snprintf(out, cap, "ready, %s, sha256 %s", cli_size(ctl_u64(img, "total"), a), sha);
	else if (!strcmp(state, "downloading"))
		snprintf(out, cap, "downloading %s of %s%s%s%s", cli_size(ctl_u64(img, "bytes"), a),
			 cli_size(ctl_u64(img, "total"), b), reason[0] ? " (" : "", reason,
			 reason[0] ? ")" : "");
	else
		snprintf(out, cap, "%s%s%s", state[0] ? state : "-", reason[0] ? ": " : "", reason);
}

static int ctl_fw_kv(struct ctl *c, const cJSON *fw)
{
	static const char *const head[] = { "id", "productId", "name", "version" };
	static const char *const tail[] = { "url", "sign", "signMethod", "description", "origin" };
	struct cli_table *t = ctl_kv();
	uint64_t size = ctl_u64(fw, "size");
	char buf[1024], sz[16], tm[24];

	if (!t)
		return CLI_EXIT_FAILED;
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(head); i++)
		ctl_kv_add(t, head[i], ctl_str(fw, head[i]));
	cli_table_cell(t, "versionOrder");
	cli_table_cell(t, "%" PRIu64, ctl_u64(fw, "versionOrder"));
	cli_table_cell(t, "size");
	if (size)
		cli_table_cell(t, "%s (%" PRIu64 " bytes)", cli_size(size, sz), size);
	else
		cli_table_cell(t, "-");
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(tail); i++)
		ctl_kv_add(t, tail[i], ctl_str(fw, tail[i]));
	ctl_props(cJSON_GetObjectItemCaseSensitive(fw, "properties"), buf, sizeof(buf));
	ctl_kv_add(t, "properties", buf);
	ctl_kv_add(t, "createTime", ctl_time(ctl_num(fw, "createTime"), tm));
	ctl_kv_add(t, "updateTime", ctl_time(ctl_num(fw, "updateTime"), tm));
	ctl_image_text(cJSON_GetObjectItemCaseSensitive(fw, "image"), buf, sizeof(buf));
	ctl_kv_add(t, "image", buf);
	return ctl_print_table(t);
}

static int ctl_fw_list(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };

	if (ctl_check_id(c, "--product", c->opt[CO_PRODUCT]))
		return CLI_EXIT_USAGE;
	ctl_path_add(&p, "/api/firmware");
	ctl_path_arg(&p, "productId", c->opt[CO_PRODUCT]);
	if (ctl_paging(c, &p))
		return CLI_EXIT_USAGE;
	return ctl_list(c, &ctl_fw_view, &p);
}

static int ctl_fw_show(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };

	ctl_path_add(&p, "/api/firmware/%s", c->arg[0]);
	return ctl_show(c, p.s, ctl_fw_kv);
}

/* Options of firmware create/edit that are JSON fields. */
static const struct {
	enum ctl_opt o;
	const char *key;
	bool num;
} ctl_fw_fields[] = {
	{ CO_ID, "id", false },           { CO_PRODUCT, "productId", false },
	{ CO_NAME, "name", false },       { CO_VERSION, "version", false },
	{ CO_ORDER, "versionOrder", true }, { CO_FWURL, "url", false },
	{ CO_FWSIZE, "size", true },      { CO_SIGN, "sign", false },
	{ CO_SIGNMETHOD, "signMethod", false }, { CO_DESC, "description", false },
};

/* --property KEY=VALUE options into props (an object), replacing keys. */
static int ctl_fw_props(struct ctl *c, cJSON *props)
{
	for (size_t i = 0; i < c->nprops; i++) {
		const char *kv = c->props[i], *eq = strchr(kv, '=');
		char key[256];

		if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key))
			return ctl_usage(c, "--property takes KEY=VALUE, not '%.80s'", kv);
		memcpy(key, kv, (size_t)(eq - kv));
		key[eq - kv] = '\0';
		cJSON_DeleteItemFromObjectCaseSensitive(props, key);
		if (!cJSON_AddStringToObject(props, key, eq + 1))
			return CLI_EXIT_FAILED;
	}
	return 0;
}

/* The JSON body of firmware create/edit from the options; base: the
 * firmware's current properties (edit), or NULL. */
static int ctl_fw_body(struct ctl *c, const cJSON *base, cJSON **out)
{
	cJSON *b = cJSON_CreateObject(), *props = NULL;
	uint64_t n = 0;         /* ctl_opt_num() sets it: the option is set (v) */
	int rc = b ? 0 : CLI_EXIT_FAILED;

	for (size_t i = 0; !rc && i < OTAGW_ARRAY_SIZE(ctl_fw_fields); i++) {
		const char *v = c->opt[ctl_fw_fields[i].o];

		if (!v)
			continue;
		if (!ctl_fw_fields[i].num)
			rc = cJSON_AddStringToObject(b, ctl_fw_fields[i].key, v) ? 0 : CLI_EXIT_FAILED;
		else if (!(rc = ctl_opt_num(c, ctl_fw_fields[i].o, &n)))
			rc = cJSON_AddNumberToObject(b, ctl_fw_fields[i].key, (double)n) ?
				0 : CLI_EXIT_FAILED;
	}
	if (!rc && c->nprops) {
		props = base ? cJSON_Duplicate(base, 1) : cJSON_CreateObject();
		rc = props && cJSON_AddItemToObject(b, "properties", props) ? 0 : CLI_EXIT_FAILED;
		if (rc)
			cJSON_Delete(props);
		else
			rc = ctl_fw_props(c, props);
	}
	if (rc == CLI_EXIT_FAILED)
		fprintf(stderr, "otagw ctl: out of memory\n");
	if (rc)
		cJSON_Delete(b);
	else
		*out = b;
	return rc;
}

static int ctl_fw_create(struct ctl *c)
{
	cJSON *body = NULL;
	int rc = ctl_check_id(c, "--id", c->opt[CO_ID]) ?: ctl_fw_body(c, NULL, &body);

	if (!rc)
		rc = ctl_write_show(c, "POST", "/api/firmware", body, ctl_fw_kv);
	cJSON_Delete(body);
	return rc;
}

static int ctl_fw_edit(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };
	cJSON *cur = NULL, *body = NULL;
	int rc = 0;

	if (!(c->cmd->opts & ~(CO(CO_JSON) | CO(CO_HELP)) & c->given))
		return ctl_usage(c, "nothing to change: give at least one option");
	ctl_path_add(&p, "/api/firmware/%s", c->arg[0]);
	if (c->nprops)            /* properties are merged into the current ones */
		rc = ctl_get(c, p.s, &cur);
	if (!rc)
		rc = ctl_fw_body(c, cJSON_GetObjectItemCaseSensitive(cur, "properties"), &body);
	if (!rc)
		rc = ctl_write_show(c, "PUT", p.s, body, ctl_fw_kv);
	cJSON_Delete(cur);
	cJSON_Delete(body);
	return rc;
}

static int ctl_delete(struct ctl *c, const char *path, const char *noun)
{
	struct ctl_answer a;
	int rc = ctl_call(c, "DELETE", path, NULL, &a);

	if (!rc && a.json)
		rc = c->json ? ctl_print_json(a.json) : 0;
	if (!rc && !c->json)
		printf("deleted %s %s\n", noun, c->arg[0]);
	cJSON_Delete(a.json);
	return rc;
}

static int ctl_fw_delete(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };

	ctl_path_add(&p, "/api/firmware/%s", c->arg[0]);
	return ctl_delete(c, p.s, "firmware");
}

/* Opens the image to send: a regular, non-empty file, its size in *size.
 * The fd, or -1 after saying why. */
static int ctl_open_image(struct ctl *c, const char *file, uint64_t *size)
{
	struct stat st;
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	const char *why = fd < 0 ? strerror(errno) : NULL;

	if (!why && fstat(fd, &st))
		why = strerror(errno);
	else if (!why && !S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (!why && !st.st_size)
		why = "the file is empty";
	if (!why) {
		*size = (uint64_t)st.st_size;
		return fd;
	}
	fprintf(stderr, "otagw ctl: %s: %s: %s\n", c->what, file, why);
	if (fd >= 0)
		close(fd);
	return -1;
}

/* What the daemon's firmware says before an upload: refusals the daemon
 * could only answer by closing the connection mid-upload (lws 4.1's client
 * loses such an answer) are said here, with the exit status they earn. */
static int ctl_upload_check(struct ctl *c, const cJSON *fw, uint64_t size)
{
	uint64_t want = ctl_u64(fw, "size");
	char a[16];

	if (!strcmp(ctl_str(fw, "origin"), "cloud")) {
		fprintf(stderr, "otagw ctl: %s: the firmware belongs to the cloud: its image "
				"comes from its url\n", c->what);
		return CLI_EXIT_INVALID;
	}
	if (want && want != size) {
		fprintf(stderr, "otagw ctl: %s: %s is %" PRIu64 " bytes, the firmware's size is %"
				PRIu64 " (%s)\n", c->what, c->arg[1], size, want, cli_size(want, a));
		return CLI_EXIT_INVALID;
	}
	return 0;
}

static void ctl_upload_sent(void *arg, uint64_t sent, uint64_t total)
{
	cli_progress(arg, sent, total, sent == total);
}

static int ctl_upload_show(struct ctl *c, const cJSON *o)
{
	char buf[512];

	ctl_image_text(cJSON_GetObjectItemCaseSensitive(o, "image"), buf, sizeof(buf));
	printf("firmware %s: image %s\n", c->arg[0], buf);
	return 0;
}

/* PUT the file at fd (size bytes) as the firmware's image. */
static int ctl_upload_put(struct ctl *c, const char *path, int fd, uint64_t size)
{
	struct cli_progress p;
	struct cli_http_req r = { .method = "PUT", .body_fd = fd, .body_len = size,
				  .on_sent = ctl_upload_sent, .arg = &p, .idle_s = CTL_IDLE_S };
	struct ctl_answer a;
	int rc;

	cli_progress_init(&p, "uploading");
	p.tty = p.tty && !c->opt[CO_QUIET];
	/* the daemon refuses an image it cannot hold when the upload starts, by
	 * closing the connection; lws 4.1's client, busy sending, loses the answer */
	c->eio_hint = "(the daemon stopped the upload: the image may not fit in its cache "
		      "(otagw ctl cache list), or see its log)";
	c->progress = &p;
	rc = ctl_send(c, &r, path, false, &a);
	c->eio_hint = NULL;
	c->progress = NULL;
	cli_progress_end(&p);
	if (!rc && !c->opt[CO_QUIET] && !p.tty)
		cli_progress_summary(&p, "uploaded", size);
	if (!rc)
		rc = c->json ? ctl_print_json(a.json) : ctl_upload_show(c, a.json);
	cJSON_Delete(a.json);
	return rc;
}

static int ctl_fw_upload(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };
	cJSON *fw = NULL;
	uint64_t size = 0;
	int fd, rc;

	fd = ctl_open_image(c, c->arg[1], &size);
	if (fd < 0)
		return CLI_EXIT_FAILED;
	ctl_path_add(&p, "/api/firmware/%s", c->arg[0]);
	rc = ctl_get(c, p.s, &fw);
	if (!rc)
		rc = ctl_upload_check(c, fw, size);
	cJSON_Delete(fw);
	ctl_path_add(&p, "/image");
	if (!rc)
		rc = ctl_upload_put(c, p.s, fd, size);
	close(fd);
	return rc;
}

/* ---- devices ----------------------------------------------------------------------- */

static void ctl_dev_row(struct cli_table *t, const cJSON *d)
{
	char tm[24];

	cli_table_cell(t, "%s", ctl_str(d, "id"));
	cli_table_cell(t, "%s", ctl_str(d, "productId"));
	cli_table_cell(t, "%s", ctl_str(d, "name"));
	cli_table_cell(t, "%s", ctl_str(d, "firmwareVersion"));
	cli_table_cell(t, "%s", ctl_str(d, "transport"));
	cli_table_cell(t, "%s", ctl_yes(d, "online"));
	cli_table_cell(t, "%s", ctl_time(ctl_num(d, "lastSeen"), tm));
}

static const struct ctl_view ctl_dev_view = {
	"device", "devices",
	{ "ID", "PRODUCT", "NAME", "VERSION", "TRANSPORT", "ONLINE", "LAST SEEN", NULL },
	0, { [2] = 40 }, ctl_dev_row,
};

static int ctl_dev_kv(struct ctl *c, const cJSON *d)
{
	static const char *const plain[] = { "id", "productId", "name", "firmwareVersion",
					     "transport" };
	struct cli_table *t = ctl_kv();
	char buf[1024], tm[24];

	if (!t)
		return CLI_EXIT_FAILED;
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(plain); i++)
		ctl_kv_add(t, plain[i], ctl_str(d, plain[i]));
	ctl_kv_add(t, "online", ctl_yes(d, "online"));
	ctl_kv_add(t, "lastSeen", ctl_time(ctl_num(d, "lastSeen"), tm));
	ctl_kv_add(t, "createTime", ctl_time(ctl_num(d, "createTime"), tm));
	ctl_kv_add(t, "hasSecureKey", ctl_yes(d, "hasSecureKey"));
	ctl_props(cJSON_GetObjectItemCaseSensitive(d, "properties"), buf, sizeof(buf));
	ctl_kv_add(t, "properties", buf);
	return ctl_print_table(t);
}

static int ctl_dev_list(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };

	if (ctl_check_id(c, "--product", c->opt[CO_PRODUCT]))
		return CLI_EXIT_USAGE;
	ctl_path_add(&p, "/api/devices");
	ctl_path_arg(&p, "productId", c->opt[CO_PRODUCT]);
	if (ctl_paging(c, &p))
		return CLI_EXIT_USAGE;
	return ctl_list(c, &ctl_dev_view, &p);
}

static int ctl_dev_show(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };

	ctl_path_add(&p, "/api/devices/%s", c->arg[0]);
	return ctl_show(c, p.s, ctl_dev_kv);
}

static void ctl_hist_row(struct cli_table *t, const cJSON *h)
{
	const cJSON *from = cJSON_GetObjectItemCaseSensitive(h, "from");
	char tm[24];

	cli_table_cell(t, "%s", ctl_time(ctl_num(h, "time"), tm));
	cli_table_cell(t, "%s", ctl_str(h, "taskId"));
	cli_table_cell(t, "%s", ctl_str(h, "recordId"));
	cli_table_cell(t, "%s", cJSON_IsString(from) ? from->valuestring : "-");
	cli_table_cell(t, "%s", ctl_str(h, "to"));
	cli_table_cell(t, "%" PRIu64 "%%", ctl_u64(h, "progress"));
	cli_table_cell(t, "%s", ctl_str(h, "reason"));
}

static const struct ctl_view ctl_hist_view = {
	"change", "changes",
	{ "TIME", "TASK", "RECORD", "FROM", "TO", "PROGRESS", "REASON", NULL },
	1u << 5, { [6] = 60 }, ctl_hist_row,
};

static int ctl_dev_history(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };

	ctl_path_add(&p, "/api/devices/%s/history", c->arg[0]);
	if (ctl_paging(c, &p))
		return CLI_EXIT_USAGE;
	return ctl_list(c, &ctl_hist_view, &p);
}

/* ---- tasks ------------------------------------------------------------------------- */

static const char *const ctl_rec_states[] = { "waiting", "processing", "success", "failed",
					      "canceled" };

/* "2 success, 1 waiting" of a task's counts (non-zero ones), "none". */
static void ctl_counts_short(const cJSON *task, char *out, size_t cap)
{
	const cJSON *counts = cJSON_GetObjectItemCaseSensitive(task, "counts");
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(ctl_rec_states); i++) {
		uint64_t k = ctl_u64(counts, ctl_rec_states[i]);
		int w;

		if (!k)
			continue;
		w = snprintf(out + n, cap - n, "%s%" PRIu64 " %s", n ? ", " : "", k,
			     ctl_rec_states[i]);
		if (w < 0 || (size_t)w >= cap - n)
			break;
		n += (size_t)w;
	}
	if (!n)
		snprintf(out, cap, "none");
}

static void ctl_task_row(struct cli_table *t, const cJSON *task)
{
	char recs[160], tm[24];

	ctl_counts_short(task, recs, sizeof(recs));
	cli_table_cell(t, "%s", ctl_str(task, "id"));
	cli_table_cell(t, "%s", ctl_str(task, "name"));
	cli_table_cell(t, "%s", ctl_str(task, "firmwareId"));
	cli_table_cell(t, "%s", ctl_str(task, "mode"));
	cli_table_cell(t, "%s", ctl_str(task, "state"));
	cli_table_cell(t, "%" PRIu64, ctl_u64(cJSON_GetObjectItemCaseSensitive(task, "counts"),
					      "total"));
	cli_table_cell(t, "%s", recs);
	cli_table_cell(t, "%s", ctl_time(ctl_num(task, "createTime"), tm));
}

static const struct ctl_view ctl_task_view = {
	"task", "tasks",
	{ "ID", "NAME", "FIRMWARE", "MODE", "STATE", "DEVICES", "RECORDS", "CREATED", NULL },
	1u << 5, { [1] = 40 }, ctl_task_row,
};

static int ctl_task_kv(struct ctl *c, const cJSON *task)
{
	static const char *const plain[] = { "id", "name", "firmwareId", "productId", "mode",
					     "state", "description", "origin" };
	const cJSON *counts = cJSON_GetObjectItemCaseSensitive(task, "counts");
	struct cli_table *t = ctl_kv();
	char tm[24];

	if (!t)
		return CLI_EXIT_FAILED;
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(plain); i++)
		ctl_kv_add(t, plain[i], ctl_str(task, plain[i]));
	cli_table_cell(t, "timeoutSeconds");
	cli_table_cell(t, "%" PRIu64, ctl_u64(task, "timeoutSeconds"));
	ctl_kv_add(t, "createTime", ctl_time(ctl_num(task, "createTime"), tm));
	cli_table_cell(t, "records");
	cli_table_cell(t, "%" PRIu64 " in all", ctl_u64(counts, "total"));
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(ctl_rec_states); i++) {
		cli_table_cell(t, "  %s", ctl_rec_states[i]);
		cli_table_cell(t, "%" PRIu64, ctl_u64(counts, ctl_rec_states[i]));
	}
	return ctl_print_table(t);
}

static int ctl_task_show(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };

	ctl_path_add(&p, "/api/tasks/%s", c->arg[0]);
	return ctl_show(c, p.s, ctl_task_kv);
}

/* Moves the items of list answer o in state st into arr; their count. */
static uint64_t ctl_take_state(cJSON *o, const char *st, cJSON *arr)
{
	cJSON *items = cJSON_GetObjectItemCaseSensitive(o, "items"), *it = items ? items->child : NULL;
	uint64_t n = 0;

	while (it) {
		cJSON *next = it->next;

		if (!strcmp(ctl_str(it, "state"), st)) {
			cJSON_AddItemToArray(arr, cJSON_DetachItemViaPointer(items, it));
			n++;
		}
		it = next;
	}
	return n;
}

/* tasks list --state: the API has no filter on a task's state, so every
 * page (at most CTL_SCAN_PAGES of 1000) is read and filtered here, into an
 * answer of the list's shape {total, page: 0, size, items} in *out. */
static int ctl_task_scan(struct ctl *c, cJSON **out)
{
	cJSON *res = cJSON_CreateObject(), *arr = cJSON_CreateArray(), *o = NULL;
	uint64_t found = 0, page;
	int rc = res && arr ? 0 : CLI_EXIT_FAILED;

	for (page = 0; !rc && page < CTL_SCAN_PAGES; page++) {
		struct ctl_path p = { .n = 0 };
		bool last;

		ctl_path_add(&p, "/api/tasks?size=%u&page=%" PRIu64, OTAGW_PAGE_SIZE_MAX, page);
		ctl_path_arg(&p, "firmwareId", c->opt[CO_FIRMWARE]);
		rc = ctl_get(c, p.s, &o);
		if (rc)
			break;
		last = (page + 1) * OTAGW_PAGE_SIZE_MAX >= ctl_u64(o, "total") ||
		       !cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "items"));
		found += ctl_take_state(o, c->opt[CO_TSTATE], arr);
		cJSON_Delete(o);
		if (last)
			break;
	}
	if (!rc && (!cJSON_AddNumberToObject(res, "total", (double)found) ||
		    !cJSON_AddNumberToObject(res, "page", 0) ||
		    !cJSON_AddNumberToObject(res, "size", (double)found) ||
		    !cJSON_AddItemToObject(res, "items", arr)))
		rc = CLI_EXIT_FAILED;
	else if (!rc)
		arr = NULL;
	cJSON_Delete(arr);
	if (rc)
		cJSON_Delete(res);
	else
		*out = res;
	return rc;
}

static int ctl_task_list(struct ctl *c)
{
	static const char *const states[] = { "created", "published", "canceled" };
	const char *st = c->opt[CO_TSTATE];
	struct ctl_path p = { .n = 0 };
	cJSON *o = NULL;
	bool known = false;
	int rc;

	if (ctl_check_id(c, "--firmware", c->opt[CO_FIRMWARE]))
		return CLI_EXIT_USAGE;
	if (!st) {
		ctl_path_add(&p, "/api/tasks");
		ctl_path_arg(&p, "firmwareId", c->opt[CO_FIRMWARE]);
		return ctl_paging(c, &p) ?: ctl_list(c, &ctl_task_view, &p);
	}
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(states); i++)
		known = known || !strcmp(st, states[i]);
	if (!known)
		return ctl_usage(c, "--state takes created, published or canceled");
	if (c->opt[CO_PAGE] || c->opt[CO_PAGESIZE])
		return ctl_usage(c, "--state shows every match: no --page or --size with it");
	rc = ctl_task_scan(c, &o);
	if (!rc)
		rc = ctl_list_show(c, &ctl_task_view, o);
	cJSON_Delete(o);
	return rc;
}

/* The body of a publish: {"deviceIds": [--devices]} or {"all": true}. */
static int ctl_publish_body(struct ctl *c, cJSON **out)
{
	const char *list = c->opt[CO_DEVICES], *s = list;
	cJSON *b = cJSON_CreateObject(), *ids;
	char id[OTAGW_ID_MAX + 1];

	if (!b || !list) {
		*out = b;
		return b && cJSON_AddTrueToObject(b, "all") ? 0 : CLI_EXIT_FAILED;
	}
	ids = cJSON_AddArrayToObject(b, "deviceIds");
	while (ids && *s) {
		size_t n = strcspn(s, ",");

		if (n >= sizeof(id))
			n = sizeof(id) - 1;
		memcpy(id, s, n);
		id[n] = '\0';
		s += strcspn(s, ",");
		s += *s == ',';
		if (ctl_check_id(c, "--devices: device", id)) {
			cJSON_Delete(b);
			return CLI_EXIT_USAGE;
		}
		cJSON_AddItemToArray(ids, cJSON_CreateString(id));
	}
	*out = b;
	return ids && cJSON_GetArraySize(ids) ? 0 : ctl_usage(c, "--devices needs device ids");
}

static int ctl_publish_show(struct ctl *c, const cJSON *o)
{
	const cJSON *task = cJSON_GetObjectItemCaseSensitive(o, "task");
	char recs[160];

	ctl_counts_short(task, recs, sizeof(recs));
	printf("task %s published: %" PRIu64 " added, %" PRIu64 " already in it, %" PRIu64
	       " up to date, %" PRIu64 " pushed; records: %s\n", ctl_str(task, "id"),
	       ctl_u64(o, "added"), ctl_u64(o, "already"), ctl_u64(o, "upToDate"),
	       ctl_u64(o, "pushed"), recs);
	return 0;
}

/* POST /api/tasks/{id}/publish with the --devices of the command. */
static int ctl_publish(struct ctl *c, const char *id, int (*show)(struct ctl *c, const cJSON *o))
{
	struct ctl_path p = { .n = 0 };
	cJSON *body = NULL;
	int rc = ctl_publish_body(c, &body);

	ctl_path_add(&p, "/api/tasks/%s/publish", id);
	if (!rc)
		rc = ctl_write_show(c, "POST", p.s, body, show);
	cJSON_Delete(body);
	return rc;
}

static int ctl_task_publish(struct ctl *c)
{
	return ctl_publish(c, c->arg[0], ctl_publish_show);
}

static int ctl_cancel_show(struct ctl *c, const cJSON *o)
{
	const cJSON *task = cJSON_GetObjectItemCaseSensitive(o, "task");

	printf("task %s canceled: %" PRIu64 " record%s canceled\n", ctl_str(task, "id"),
	       ctl_u64(o, "canceled"), ctl_u64(o, "canceled") == 1 ? "" : "s");
	return 0;
}

static int ctl_task_cancel(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };
	cJSON *body = cJSON_CreateObject();
	int rc;

	ctl_path_add(&p, "/api/tasks/%s/cancel", c->arg[0]);
	rc = body ? ctl_write_show(c, "POST", p.s, body, ctl_cancel_show) : CLI_EXIT_FAILED;
	cJSON_Delete(body);
	return rc;
}

/* tasks pause|resume: the task as the daemon has it now. */
static int ctl_paused_show(struct ctl *c, const cJSON *task)
{
	(void)c;
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(task, "paused")))
		printf("task %s paused: %s\n", ctl_str(task, "id"), ctl_str(task, "pauseReason"));
	else
		printf("task %s running\n", ctl_str(task, "id"));
	return 0;
}

static int ctl_task_pause(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };
	cJSON *body = cJSON_CreateObject();
	int rc = CLI_EXIT_FAILED;

	ctl_path_add(&p, "/api/tasks/%s/pause", c->arg[0]);
	if (body && (!c->opt[CO_REASON] ||
		     cJSON_AddStringToObject(body, "reason", c->opt[CO_REASON])))
		rc = ctl_write_show(c, "POST", p.s, body, ctl_paused_show);
	cJSON_Delete(body);
	return rc;
}

static int ctl_task_resume(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };

	ctl_path_add(&p, "/api/tasks/%s/resume", c->arg[0]);
	return ctl_write_show(c, "POST", p.s, NULL, ctl_paused_show);
}

static int ctl_task_abort(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };

	ctl_path_add(&p, "/api/tasks/%s/abort", c->arg[0]);
	return ctl_write_show(c, "POST", p.s, NULL, ctl_cancel_show);
}

static void ctl_event_row(struct cli_table *t, const cJSON *ev)
{
	char tm[24];

	cli_table_cell(t, "%s", ctl_time(ctl_num(ev, "time"), tm));
	cli_table_cell(t, "%s", ctl_str(ev, "event"));
	cli_table_cell(t, "%" PRIu64, ctl_u64(ev, "wave"));
	cli_table_cell(t, "%s", ctl_str(ev, "reason"));
}

static const struct ctl_view ctl_event_view = {
	"event", "events",
	{ "TIME", "EVENT", "WAVE", "REASON", NULL },
	1u << 2, { [3] = 72 }, ctl_event_row,
};

static int ctl_events_show(struct ctl *c, const cJSON *o)
{
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(o, "items");

	if (!cJSON_IsArray(items)) {
		fprintf(stderr, "otagw ctl: %s: the answer has no items\n", c->what);
		return CLI_EXIT_FAILED;
	}
	return ctl_items_counted(&ctl_event_view, items);
}

static int ctl_task_events(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };

	ctl_path_add(&p, "/api/tasks/%s/events", c->arg[0]);
	return ctl_show(c, p.s, ctl_events_show);
}

/* The body of tasks create from the options. */
static cJSON *ctl_task_body(struct ctl *c, uint64_t timeout)
{
	cJSON *b = cJSON_CreateObject();
	bool ok = b && cJSON_AddStringToObject(b, "name", c->opt[CO_NAME]) &&
		  cJSON_AddStringToObject(b, "mode", c->opt[CO_MODE]);

	if (ok && c->opt[CO_TIMEOUT])
		ok = cJSON_AddNumberToObject(b, "timeoutSeconds", (double)timeout);
	if (ok && c->opt[CO_DESC])
		ok = cJSON_AddStringToObject(b, "description", c->opt[CO_DESC]);
	if (ok && c->opt[CO_ID])
		ok = cJSON_AddStringToObject(b, "id", c->opt[CO_ID]);
	if (!ok)
		cJSON_Delete(b);
	return ok ? b : NULL;
}

/* tasks create, then the publish: the task first, then what publish did. */
static int ctl_created_show(struct ctl *c, const cJSON *o)
{
	int rc = ctl_task_kv(c, cJSON_GetObjectItemCaseSensitive(o, "task"));

	return rc ?: ctl_publish_show(c, o);
}

static int ctl_task_create(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };
	struct ctl_answer a = { 0 };
	uint64_t timeout = 0;
	cJSON *body;
	char id[OTAGW_ID_MAX];
	int rc;

	if (ctl_check_id(c, "--id", c->opt[CO_ID]) || ctl_opt_num(c, CO_TIMEOUT, &timeout))
		return CLI_EXIT_USAGE;
	if (c->opt[CO_NOPUBLISH] && c->opt[CO_DEVICES])
		return ctl_usage(c, "--devices publishes: not with --no-publish");
	body = ctl_task_body(c, timeout);
	if (!body)
		return CLI_EXIT_FAILED;
	ctl_path_add(&p, "/api/firmware/%s/tasks", c->arg[0]);
	if (c->opt[CO_NOPUBLISH]) {
		rc = ctl_write_show(c, "POST", p.s, body, ctl_task_kv);
		cJSON_Delete(body);
		return rc;
	}
	rc = ctl_call(c, "POST", p.s, body, &a);
	cJSON_Delete(body);
	if (!rc && util_strlcpy(id, ctl_str(a.json, "id"), sizeof(id)))
		rc = CLI_EXIT_FAILED;
	cJSON_Delete(a.json);
	if (rc)
		return rc;
	rc = ctl_publish(c, id, ctl_created_show);
	if (rc)
		fprintf(stderr, "otagw ctl: %s: task %s was created but not published (otagw ctl "
				"tasks publish %s)\n", c->what, id, id);
	return rc;
}

static void ctl_rec_row(struct cli_table *t, const cJSON *r)
{
	char tm[24];

	cli_table_cell(t, "%s", ctl_str(r, "deviceId"));
	cli_table_cell(t, "%s", ctl_str(r, "state"));
	cli_table_cell(t, "%" PRIu64 "%%", ctl_u64(r, "progress"));
	cli_table_cell(t, "%s", ctl_str(r, "version"));
	cli_table_cell(t, "%s", ctl_time(ctl_num(r, "updateTime"), tm));
	cli_table_cell(t, "%s", ctl_str(r, "errorReason"));
}

static const struct ctl_view ctl_rec_view = {
	"record", "records",
	{ "DEVICE", "STATE", "PROGRESS", "VERSION", "UPDATED", "REASON", NULL },
	1u << 2, { [5] = 60 }, ctl_rec_row,
};

static int ctl_task_records(struct ctl *c)
{
	const char *st = c->opt[CO_RSTATE];
	struct ctl_path p = { .n = 0 };

	if (st && (!st[0] || strspn(st, "abcdefghijklmnopqrstuvwxyz,") != strlen(st)))
		return ctl_usage(c, "--state takes state names separated by commas");
	ctl_path_add(&p, "/api/tasks/%s/records", c->arg[0]);
	ctl_path_arg(&p, "state", st);
	if (ctl_paging(c, &p))
		return CLI_EXIT_USAGE;
	return ctl_list(c, &ctl_rec_view, &p);
}

/* ---- cache ------------------------------------------------------------------------- */

static void ctl_cache_row(struct cli_table *t, const cJSON *it)
{
	const cJSON *fws = cJSON_GetObjectItemCaseSensitive(it, "firmwareIds"), *f;
	char sz[16], tm[24], ids[512];
	size_t n = 0;

	ids[0] = '\0';
	cJSON_ArrayForEach(f, fws) {
		int w = snprintf(ids + n, sizeof(ids) - n, "%s%s", n ? "," : "",
				 cJSON_IsString(f) ? f->valuestring : "?");

		if (w < 0 || (size_t)w >= sizeof(ids) - n)
			break;
		n += (size_t)w;
	}
	cli_table_cell(t, "%s", ctl_str(it, "sha256"));
	cli_table_cell(t, "%s", cli_size(ctl_u64(it, "size"), sz));
	cli_table_cell(t, "%s", ctl_time(ctl_num(it, "lastUsed"), tm));
	cli_table_cell(t, "%s", ctl_yes(it, "pinned"));
	cli_table_cell(t, "%s", ids);
}

static const struct ctl_view ctl_cache_view = {
	"image", "images",
	{ "SHA256", "SIZE", "LAST USED", "PINNED", "FIRMWARE", NULL },
	1u << 1, { 0 }, ctl_cache_row,
};

static int ctl_cache_show(struct ctl *c, const cJSON *o)
{
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(o, "items");
	char a[16], b[16], d[16];

	printf("cache: %s used of %s, %s free on disk, %" PRIu64 " download%s running\n",
	       cli_size(ctl_u64(o, "usedBytes"), a), cli_size(ctl_u64(o, "maxBytes"), b),
	       cli_size(ctl_u64(o, "freeDiskBytes"), d), ctl_u64(o, "downloads"),
	       ctl_u64(o, "downloads") == 1 ? "" : "s");
	return ctl_items_counted(&ctl_cache_view, items);
}

static int ctl_cache_list(struct ctl *c)
{
	return ctl_show(c, "/api/cache", ctl_cache_show);
}

static int ctl_cache_delete(struct ctl *c)
{
	struct ctl_path p = { .n = 0 };

	ctl_path_add(&p, "/api/cache/%s", c->arg[0]);
	return ctl_delete(c, p.s, "image");
}

/* ---- status ------------------------------------------------------------------------ */

/* GET path, answered with a JSON object of any status into *out (status
 * in *status); the exit status of a request that got no answer. */
static int ctl_get_any(struct ctl *c, const char *path, int *status, cJSON **out)
{
	struct cli_http_req r = { .method = "GET", .body_fd = -1 };
	struct ctl_answer a;
	int rc = ctl_send(c, &r, path, true, &a);

	*status = a.status;
	*out = NULL;
	if (!rc && cJSON_IsObject(a.json))
		*out = a.json;
	else
		cJSON_Delete(a.json);
	return rc;
}

/* GET path when it answers 200 with a JSON object (the caller deletes),
 * else NULL: an optional part of the status. */
static cJSON *ctl_get_ok(struct ctl *c, const char *path)
{
	cJSON *o = NULL;
	int st = 0;

	if (ctl_get_any(c, path, &st, &o) || st == 200)
		return o;
	cJSON_Delete(o);
	return NULL;
}

static void ctl_status_cloud(struct cli_table *t, const cJSON *cl)
{
	const char *state = ctl_str(cl, "state"), *err = ctl_str(cl, "lastError");

	cli_table_cell(t, "cloud");
	if (!strcmp(state, "disabled") || !state[0])
		cli_table_cell(t, "%s", state[0] ? state : "-");
	else
		cli_table_cell(t, "%s %s (gateway %s), outbox %" PRIu64 ", %" PRIu64
			       " reconnects%s%s", state, ctl_str(cl, "url"), ctl_str(cl, "gatewayId"),
			       ctl_u64(cl, "outbox"), ctl_u64(cl, "reconnects"),
			       err[0] ? ", last error: " : "", err);
}

static void ctl_status_serial(struct cli_table *t, const cJSON *se)
{
	const cJSON *ports = cJSON_GetObjectItemCaseSensitive(se, "ports"), *p;

	if (!cJSON_GetArraySize(ports))
		ctl_kv_add(t, "serial", "no ports");
	cJSON_ArrayForEach(p, ports) {
		const char *dev = ctl_str(p, "deviceId"), *err = ctl_str(p, "error");

		cli_table_cell(t, "serial %s", ctl_str(p, "name"));
		cli_table_cell(t, "%s %s, %" PRIu64 " baud%s%s%s%s, %" PRIu64 " transfers ok, %"
			       PRIu64 " failed", ctl_str(p, "state"), ctl_str(p, "path"),
			       ctl_u64(p, "baud"), dev[0] ? ", device " : "", dev,
			       err[0] ? ", " : "", err, ctl_u64(p, "transfersOk"),
			       ctl_u64(p, "transfersFailed"));
	}
}

static int ctl_status_show(struct ctl *c, const cJSON *h, const cJSON *cl, const cJSON *se)
{
	struct cli_table *t = ctl_kv();
	char buf[32];

	if (!t)
		return CLI_EXIT_FAILED;
	cli_table_cell(t, "daemon");
	cli_table_cell(t, "http://%s%s (%s)", c->t.base.host_hdr, c->t.base.path,
		       ctl_str(h, "status"));
	ctl_kv_add(t, "version", ctl_str(h, "version"));
	cli_table_cell(t, "schema");
	cli_table_cell(t, "%" PRIu64, ctl_u64(h, "schemaVersion"));
	ctl_kv_add(t, "database", ctl_str(h, "database"));
	ctl_kv_add(t, "uptime", ctl_duration(ctl_u64(h, "uptimeSeconds"), buf));
	cli_table_cell(t, "sessions");
	cli_table_cell(t, "%" PRIu64, ctl_u64(h, "sessions"));
	if (cl)
		ctl_status_cloud(t, cl);
	if (se)
		ctl_status_serial(t, se);
	return ctl_print_table(t);
}

/* {"health": ..., "cloud": ..., "serial": ...}: the answers, as they came. */
static int ctl_status_json(cJSON *h, cJSON *cl, cJSON *se)
{
	cJSON *o = cJSON_CreateObject();
	int rc;

	if (!o)
		return CLI_EXIT_FAILED;
	cJSON_AddItemReferenceToObject(o, "health", h);
	if (cl)
		cJSON_AddItemReferenceToObject(o, "cloud", cl);
	if (se)
		cJSON_AddItemReferenceToObject(o, "serial", se);
	rc = ctl_print_json(o);
	cJSON_Delete(o);
	return rc;
}

/* GET /api/health, and /api/cloud and /api/serial when they answer 200. */
static int ctl_status(struct ctl *c)
{
	cJSON *h = NULL, *cl = NULL, *se = NULL;
	int st = 0, rc = ctl_get_any(c, "/api/health", &st, &h);

	if (!rc && st != 200 && st != 503) {
		char *body = h ? cJSON_PrintUnformatted(h) : NULL;

		rc = ctl_refused(c, st, body);
		free(body);
	} else if (!rc && !h) {
		fprintf(stderr, "otagw ctl: %s: the daemon's answer is not JSON\n", c->what);
		rc = CLI_EXIT_FAILED;
	}
	if (rc) {
		cJSON_Delete(h);
		return rc;
	}
	cl = ctl_get_ok(c, "/api/cloud");
	se = ctl_get_ok(c, "/api/serial");
	if (!rc)
		rc = c->json ? ctl_status_json(h, cl, se) : ctl_status_show(c, h, cl, se);
	if (!rc && st != 200) {
		fprintf(stderr, "otagw ctl: %s: the daemon is %s (database %s)\n", c->what,
			ctl_str(h, "status"), ctl_str(h, "database"));
		rc = CLI_EXIT_FAILED;
	}
	cJSON_Delete(h);
	cJSON_Delete(cl);
	cJSON_Delete(se);
	return rc;
}

/* ---- the commands ------------------------------------------------------------------ */

#define CTL_FW_REQUIRED (CO(CO_PRODUCT) | CO(CO_NAME) | CO(CO_VERSION))
#define CTL_TASK_OPTS (CO(CO_NAME) | CO(CO_MODE) | CO(CO_DEVICES) | CO(CO_TIMEOUT) | \
		       CO(CO_DESC) | CO(CO_ID) | CO(CO_NOPUBLISH))

/* Every command: the parser, the dispatch and --help read this table. An
 * argument named FILE is a path; every other argument is an id. */
static const struct ctl_cmd ctl_cmds[] = {
	{ "status", "", 0, 0, 0, "the daemon's health, cloud link and serial ports",
	  "GET /api/health, /api/cloud, /api/serial", ctl_status },
	{ "firmware list", "", 0, CO(CO_PRODUCT) | CO_PAGING, 0,
	  "list firmware, newest versionOrder first per product", "GET /api/firmware",
	  ctl_fw_list },
	{ "firmware show", "ID", 1, 0, 0, "one firmware with its image's state",
	  "GET /api/firmware/{id}", ctl_fw_show },
	{ "firmware create", "", 0, CO_FW_FIELDS | CO(CO_ID), CTL_FW_REQUIRED,
	  "create a firmware", "POST /api/firmware", ctl_fw_create },
	{ "firmware edit", "ID", 1, CO_FW_FIELDS, 0, "change the fields given",
	  "PUT /api/firmware/{id}", ctl_fw_edit },
	{ "firmware delete", "ID", 1, 0, 0, "delete a firmware (its finished tasks go with it)",
	  "DELETE /api/firmware/{id}", ctl_fw_delete },
	{ "firmware upload", "ID FILE", 2, CO(CO_QUIET), 0,
	  "send FILE as the firmware's image; the gateway verifies and caches it; Ctrl-C "
	  "stops it (nothing is kept)", "PUT /api/firmware/{id}/image", ctl_fw_upload },
	{ "devices list", "", 0, CO(CO_PRODUCT) | CO_PAGING, 0, "list devices",
	  "GET /api/devices", ctl_dev_list },
	{ "devices show", "ID", 1, 0, 0, "one device", "GET /api/devices/{id}", ctl_dev_show },
	{ "devices history", "ID", 1, CO_PAGING, 0,
	  "every state change of the device's records, newest first",
	  "GET /api/devices/{id}/history", ctl_dev_history },
	{ "tasks list", "", 0, CO(CO_TSTATE) | CO(CO_FIRMWARE) | CO_PAGING, 0,
	  "list upgrade tasks, newest first", "GET /api/tasks", ctl_task_list },
	{ "tasks show", "ID", 1, 0, 0, "one task with its records per state",
	  "GET /api/tasks/{id}", ctl_task_show },
	{ "tasks create", "FIRMWARE_ID", 1, CTL_TASK_OPTS, CO(CO_NAME) | CO(CO_MODE),
	  "create an upgrade task for the firmware and publish it to --devices, else to "
	  "every device of its product", "POST /api/firmware/{id}/tasks, then POST "
	  "/api/tasks/{id}/publish", ctl_task_create },
	{ "tasks publish", "ID", 1, CO(CO_DEVICES), 0,
	  "add devices to the task (--devices, else every device of the product)",
	  "POST /api/tasks/{id}/publish", ctl_task_publish },
	{ "tasks cancel", "ID", 1, 0, 0, "cancel the task's unfinished records",
	  "POST /api/tasks/{id}/cancel", ctl_task_cancel },
	{ "tasks pause", "ID", 1, CO(CO_REASON), 0,
	  "start nothing new in the task until it is resumed (transfers under way finish)",
	  "POST /api/tasks/{id}/pause", ctl_task_pause },
	{ "tasks resume", "ID", 1, 0, 0,
	  "go on with a paused rollout (push tasks push at once)",
	  "POST /api/tasks/{id}/resume", ctl_task_resume },
	{ "tasks abort", "ID", 1, 0, 0,
	  "cancel the task's unfinished records and note it as aborted in its events",
	  "POST /api/tasks/{id}/abort", ctl_task_abort },
	{ "tasks events", "ID", 1, 0, 0,
	  "the rollout's decisions, oldest first: published, hold, open, wave, paused, ...",
	  "GET /api/tasks/{id}/events", ctl_task_events },
	{ "tasks records", "ID", 1, CO(CO_RSTATE) | CO_PAGING, 0,
	  "the task's upgrade records, one per device", "GET /api/tasks/{id}/records",
	  ctl_task_records },
	{ "publish", "ID", 1, CO(CO_DEVICES), 0, "same as tasks publish",
	  "POST /api/tasks/{id}/publish", ctl_task_publish },
	{ "cancel", "ID", 1, 0, 0, "same as tasks cancel", "POST /api/tasks/{id}/cancel",
	  ctl_task_cancel },
	{ "records", "ID", 1, CO(CO_RSTATE) | CO_PAGING, 0, "same as tasks records",
	  "GET /api/tasks/{id}/records", ctl_task_records },
	{ "cache list", "", 0, 0, 0, "the image cache: usage and images",
	  "GET /api/cache", ctl_cache_list },
	{ "cache delete", "SHA256", 1, 0, 0, "remove an image from the cache",
	  "DELETE /api/cache/{sha256}", ctl_cache_delete },
};

/* ---- help -------------------------------------------------------------------------- */

/* Writes piece at *col, first breaking the line (indent blanks) when it
 * would pass CTL_WRAP columns. */
static void ctl_wrap(FILE *f, size_t *col, size_t indent, const char *piece)
{
	size_t w = strlen(piece);

	if (*col > indent && *col + 1 + w > CTL_WRAP) {
		fprintf(f, "\n%*s", (int)indent, "");
		*col = indent;
	} else if (*col > indent) {
		fputc(' ', f);
		(*col)++;
	}
	fputs(piece, f);
	*col += w;
}

/* Writes text's words from column *col, wrapped at indent. */
static void ctl_para(FILE *f, size_t *col, size_t indent, const char *text)
{
	char word[128];

	while (*text) {
		size_t n = strcspn(text, " ");

		if (n >= sizeof(word))
			n = sizeof(word) - 1;
		memcpy(word, text, n);
		word[n] = '\0';
		if (n)
			ctl_wrap(f, col, indent, word);
		text += n;
		text += strspn(text, " ");
	}
}

/* "--product P" or "[--product P]" (and "..." when repeatable) of o. */
static void ctl_opt_piece(enum ctl_opt o, bool required, char *out, size_t cap)
{
	const struct ctl_optdef *d = &ctl_opts[o];

	snprintf(out, cap, "%s--%s%s%s%s%s", required ? "" : "[", d->name, d->arg ? " " : "",
		 d->arg ? d->arg : "", o == CO_PROP ? " ..." : "", required ? "" : "]");
}

/* "firmware create --product P ... [--json]", wrapped at indent. */
static void ctl_synopsis(FILE *f, const struct ctl_cmd *cmd, size_t col, size_t indent)
{
	char piece[96];

	ctl_wrap(f, &col, indent, cmd->words);
	if (cmd->args[0])
		ctl_wrap(f, &col, indent, cmd->args);
	for (int pass = 0; pass < 2; pass++) {           /* the required ones first */
		for (int o = 0; o < CO_COUNT; o++) {
			bool req = cmd->required & CO(o);

			if (!(cmd->opts & CO(o)) || req != !pass)
				continue;
			ctl_opt_piece((enum ctl_opt)o, req, piece, sizeof(piece));
			ctl_wrap(f, &col, indent, piece);
		}
	}
	fputc('\n', f);
}

static void ctl_opt_line(FILE *f, enum ctl_opt o, const char *shortopt, bool required)
{
	const struct ctl_optdef *d = &ctl_opts[o];
	char left[64];
	int n = snprintf(left, sizeof(left), "%s--%s%s%s", shortopt ? shortopt : "    ", d->name,
			 d->arg ? " " : "", d->arg ? d->arg : "");

	size_t col = 30;

	if (n > 26)
		fprintf(f, "  %s\n  %28s", left, "");
	else
		fprintf(f, "  %-28s", left);
	ctl_para(f, &col, 30, d->help);
	if (required)
		ctl_wrap(f, &col, 30, "(required)");
	fputc('\n', f);
}

static void ctl_cmd_usage(FILE *f, const struct ctl_cmd *cmd)
{
	size_t col = 2;

	fputs("usage: otagw ctl", f);
	ctl_synopsis(f, cmd, 16, 8);
	fputs("  ", f);
	ctl_para(f, &col, 2, cmd->help);
	col = 2;
	fputs("\n  Asks:", f);
	col += 5;
	ctl_para(f, &col, 4, cmd->api);
	fputc('\n', f);
	for (int o = 0; o < CO_COUNT; o++)
		if (cmd->opts & CO(o))
			ctl_opt_line(f, (enum ctl_opt)o, NULL, cmd->required & CO(o));
	ctl_opt_line(f, CO_JSON, "-j, ", false);
	ctl_opt_line(f, CO_HELP, "-h, ", false);
	fputs("  The global options (--url, --token, --config) go before the command;\n"
	      "  see otagw ctl --help, also for the exit status.\n", f);
}

static const char ctl_exit_text[] =
	"Exit status: 0 ok, 1 failed or refused (other HTTP errors, I/O, interrupted),\n"
	"  2 usage, 3 daemon unreachable, 4 not found (404), 5 unauthorized (401/403),\n"
	"  6 conflict or invalid input (400, 409, 422).\n";

/* The commands (all, or those of group: "firmware"), each with its options. */
static void ctl_list_cmds(FILE *f, const char *group)
{
	size_t glen = group ? strlen(group) : 0;

	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(ctl_cmds); i++) {
		const struct ctl_cmd *cmd = &ctl_cmds[i];

		if (group && (strncmp(cmd->words, group, glen) || cmd->words[glen] != ' '))
			continue;
		size_t col = 6;

		fputs("  ", f);
		ctl_synopsis(f, cmd, 2, 6);
		fputs("      ", f);
		ctl_para(f, &col, 6, cmd->help);
		fputc('\n', f);
	}
}

static void ctl_usage_all(FILE *f)
{
	fputs("usage: otagw [-c CONFIG] ctl [--url URL] [--token T] [--json] COMMAND [ARGS]\n"
	      "  Operates a running otagw daemon through its REST API: tables on a\n"
	      "  terminal, --json for scripts.\n\nCommands:\n", f);
	ctl_list_cmds(f, NULL);
	fputs("\nGlobal options (before COMMAND; --json and --help may also follow it):\n"
	      "  -u, --url URL               the daemon's API, http:// only (default:\n"
	      "                              $OTAGW_URL, else http://[http] bind:port of the\n"
	      "                              configuration)\n"
	      "  -t, --token T               API token (default: $OTAGW_TOKEN, else [http]\n"
	      "                              api_token; prefer the variable: options show in\n"
	      "                              ps). Never printed.\n"
	      "  -c, --config FILE           configuration to read (default\n"
	      "                              " CLI_DEFAULT_CONFIG ")\n"
	      "  -j, --json                  print the API's JSON (pretty) instead of tables\n"
	      "  -h, --help                  this text; COMMAND --help: that command's\n", f);
	fputs("                              options and the request it makes\n", f);
	fputs(ctl_exit_text, f);
	fputs("Errors: one line on stderr, otagw ctl: COMMAND: the API's error text.\n", f);
}

/* ---- parsing ----------------------------------------------------------------------- */

/* Is the n-byte word w of a command's words equal to s? */
static bool ctl_word_is(const char *w, size_t n, const char *s)
{
	return strlen(s) == n && !strncmp(w, s, n);
}

/* The command that argv starts with; the words it took in *used. */
static const struct ctl_cmd *ctl_find(int argc, char **argv, int *used)
{
	for (size_t i = 0; argc > 0 && i < OTAGW_ARRAY_SIZE(ctl_cmds); i++) {
		const char *w = ctl_cmds[i].words, *sp = strchr(w, ' ');
		size_t n1 = sp ? (size_t)(sp - w) : strlen(w);

		if (!ctl_word_is(w, n1, argv[0]))
			continue;
		if (sp && (argc < 2 || strcmp(argv[1], sp + 1)))
			continue;
		*used = sp ? 2 : 1;
		return &ctl_cmds[i];
	}
	return NULL;
}

/* No command matched argv: help for a group ("firmware --help"), or the
 * usage error. Returns the exit status. */
static int ctl_no_cmd(int argc, char **argv)
{
	bool group = false;
	size_t n = strlen(argv[0]);

	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(ctl_cmds); i++)
		group = group || (!strncmp(ctl_cmds[i].words, argv[0], n) &&
				  ctl_cmds[i].words[n] == ' ');
	if (!strcmp(argv[0], "help")) {
		ctl_usage_all(stdout);
		return CLI_EXIT_OK;
	}
	if (group && argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: otagw ctl %s COMMAND, one of:\n", argv[0]);
		ctl_list_cmds(stdout, argv[0]);
		return CLI_EXIT_OK;
	}
	if (group && argc > 1)
		fprintf(stderr, "otagw ctl: unknown command '%s %.64s'; %s commands:\n", argv[0],
			argv[1], argv[0]);
	else if (group)
		fprintf(stderr, "otagw ctl: %s: missing command, one of:\n", argv[0]);
	else
		fprintf(stderr, "otagw ctl: unknown command '%.64s' (see otagw ctl --help)\n",
			argv[0]);
	if (group)
		ctl_list_cmds(stderr, argv[0]);
	return CLI_EXIT_USAGE;
}

/* Takes option o with value v (flags: NULL). */
static int ctl_take_opt(struct ctl *c, enum ctl_opt o, const char *v)
{
	if (o == CO_PROP) {
		if (c->nprops >= CTL_PROPS_MAX)
			return ctl_usage(c, "at most %d --property options", CTL_PROPS_MAX);
		c->props[c->nprops++] = v;
	}
	c->opt[o] = v ? v : "";
	c->given |= CO(o);
	return 0;
}

/* The command's arguments: their number, ids where ids are due. */
static int ctl_check_args(struct ctl *c, int argc)
{
	const char *a = c->cmd->args;

	if ((unsigned)argc != c->cmd->nargs)
		return c->cmd->nargs ? ctl_usage(c, "give %s", c->cmd->args) :
				       ctl_usage(c, "takes no arguments ('%.64s')", c->arg[0]);
	for (unsigned i = 0; i < c->cmd->nargs; i++) {
		size_t n = strcspn(a, " ");

		if (!ctl_word_is(a, n, "FILE") && ctl_check_id(c, "argument", c->arg[i]))
			return CLI_EXIT_USAGE;
		a += n + (a[n] == ' ');
	}
	return 0;
}

/* Options and arguments of the command c->cmd (argv[0]: its last word).
 * 0, 1 after --help (shown), or CLI_EXIT_USAGE after saying why. */
static int ctl_parse(struct ctl *c, int argc, char **argv)
{
	uint32_t allowed = c->cmd->opts | CO(CO_JSON) | CO(CO_HELP), missing;
	struct option lo[CO_COUNT + 1];
	size_t n = 0;
	int ch;

	for (int o = 0; o < CO_COUNT; o++)
		if (allowed & CO(o))
			lo[n++] = (struct option){ ctl_opts[o].name,
						   ctl_opts[o].arg ? required_argument : no_argument,
						   NULL, 256 + o };
	memset(&lo[n], 0, sizeof(lo[n]));
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":hj", lo, NULL)) != -1) {
		if (ch == 'h' || ch == 'j')
			ch = 256 + (ch == 'h' ? CO_HELP : CO_JSON);
		if (ch < 256) {
			char cmd[64];

			snprintf(cmd, sizeof(cmd), "ctl %s", c->cmd->words);
			return cli_opt_error(cmd, ch, argv);
		}
		if (ctl_take_opt(c, (enum ctl_opt)(ch - 256), optarg))
			return CLI_EXIT_USAGE;
	}
	if (c->opt[CO_HELP]) {
		ctl_cmd_usage(stdout, c->cmd);
		return 1;
	}
	c->json = c->json || c->opt[CO_JSON];
	c->arg = argv + optind;
	missing = c->cmd->required & ~c->given;
	for (int o = 0; missing && o < CO_COUNT; o++)
		if (missing & CO(o))
			return ctl_usage(c, "--%s is required", ctl_opts[o].name);
	return ctl_check_args(c, argc - optind);
}

/* The global options; *next: the index of COMMAND. 0, 1 after --help,
 * CLI_EXIT_USAGE. */
static int ctl_globals(struct ctl *c, int argc, char **argv, int *next)
{
	static const struct option lo[] = {
		{ "url", required_argument, NULL, 'u' },  { "token", required_argument, NULL, 't' },
		{ "config", required_argument, NULL, 'c' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },       { NULL, 0, NULL, 0 }
	};
	int ch;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:u:t:c:jh", lo, NULL)) != -1) {
		switch (ch) {
		case 'u': c->url = optarg; break;
		case 't': c->token = optarg; break;
		case 'c': c->conf = optarg; break;
		case 'j': c->json = true; break;
		case 'h': ctl_usage_all(stdout); return 1;
		default: return cli_opt_error("ctl", ch, argv);
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "otagw ctl: missing COMMAND\n");
		ctl_usage_all(stderr);
		return CLI_EXIT_USAGE;
	}
	*next = optind;
	return 0;
}

/* ---- entry ------------------------------------------------------------------------- */

/* Runs c->cmd against the daemon. */
static int ctl_run(struct ctl *c)
{
	struct err_info e = { 0 };
	int rc;

	if (cli_target("ctl", &c->t, c->url, c->token, c->conf))
		return CLI_EXIT_USAGE;
	if (cli_http_new(&c->h, &e)) {
		fprintf(stderr, "otagw ctl: %s\n", err_text(&e));
		return CLI_EXIT_FAILED;
	}
	snprintf(c->what, sizeof(c->what), "%s%s%.64s", c->cmd->words, c->cmd->nargs ? " " : "",
		 c->cmd->nargs ? c->arg[0] : "");
	rc = c->cmd->run(c);
	cli_http_free(c->h);
	explicit_bzero(c->t.token, sizeof(c->t.token));
	if (fflush(stdout) && !rc) {
		fprintf(stderr, "otagw ctl: %s: writing the output: %s\n", c->what, strerror(errno));
		rc = CLI_EXIT_FAILED;
	}
	return rc;
}

int cli_ctl(int argc, char **argv, const char *conf, const volatile sig_atomic_t *stop)
{
	struct ctl c;
	int next = 0, used = 0, rc;

	memset(&c, 0, sizeof(c));
	c.conf = conf;
	c.stop = stop;
	setlocale(LC_CTYPE, "");              /* table widths of UTF-8 names */
	rc = ctl_globals(&c, argc, argv, &next);
	if (rc)
		return rc == 1 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	c.cmd = ctl_find(argc - next, argv + next, &used);
	if (!c.cmd)
		return ctl_no_cmd(argc - next, argv + next);
	next += used - 1;                     /* argv[next]: the command's last word */
	rc = ctl_parse(&c, argc - next, argv + next);
	if (rc)
		return rc == 1 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	return ctl_run(&c);
}
