/* SPDX-License-Identifier: MIT */
/* config.c - table-driven INI reader. Each key is one row of config_keys[];
 * there is no per-key code path beyond its type's parser. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otagw_limits.h"
#include "util.h"

enum config_type { CT_STR, CT_UINT, CT_BOOL, CT_LOGLEVEL, CT_IPV4, CT_ENUM, CT_U64 };

struct config_key {
	const char *section;
	const char *name;
	enum config_type type;
	size_t off;              /* offsetof(struct config, ...) */
	size_t size;             /* bytes of a CT_STR/CT_IPV4 field */
	uint64_t min, max;       /* CT_UINT bounds */
	const char *const *choices; /* CT_ENUM: NULL-terminated names; stored as index */
	const char *def;         /* default, as it would be written in the file */
	const char *help;
};

#define CK_STR(sec, key, field, def, help) \
	{ sec, key, CT_STR, offsetof(struct config, field), \
	  sizeof(((struct config *)0)->field), 0, 0, NULL, def, help }
#define CK_UINT(sec, key, field, lo, hi, def, help) \
	{ sec, key, CT_UINT, offsetof(struct config, field), 0, lo, hi, NULL, def, help }
#define CK_TYPED(sec, key, type, field, def, help) \
	{ sec, key, type, offsetof(struct config, field), \
	  sizeof(((struct config *)0)->field), 0, 0, NULL, def, help }
#define CK_U64(sec, key, field, lo, hi, def, help) \
	{ sec, key, CT_U64, offsetof(struct config, field), 0, lo, hi, NULL, def, help }
#define CK_ENUM(sec, key, field, choices, def, help) \
	{ sec, key, CT_ENUM, offsetof(struct config, field), 0, 0, 0, choices, def, help }

#define CK_SER(key, type, field, lo, hi, choices, def, help) \
	{ "serial", key, type, offsetof(struct config_serial, field), \
	  sizeof(((struct config_serial *)0)->field), lo, hi, choices, def, help }

const char *const config_tcp_codecs[] = { "jsonline", "frame", NULL };
static const char *const config_parities[] = { "none", "even", "odd", NULL };
static const char *const config_flows[] = { "none", "rtscts", "xonxoff", NULL };
static const char *const config_ymodem_blocks[] = { "mixed", "1k", NULL };
static const char *const config_signed[] = { "auto", "true", "false", NULL };
const unsigned config_serial_bauds[] = { 1200, 2400, 4800, 9600, 19200, 38400, 57600,
					 115200, 230400, 460800, 500000, 576000, 921600,
					 1000000, 1500000, 2000000, 3000000, 4000000, 0 };
static const char *const config_auths[] = { "none", "token", NULL };

static const struct config_key config_keys[] = {
	CK_TYPED("gateway", "log_level", CT_LOGLEVEL, gateway.log_level, "info",
		 "error | warn | info | debug"),
	CK_TYPED("gateway", "syslog", CT_BOOL, gateway.syslog, "false",
		 "also log to syslog (daemon facility)"),
	CK_STR("gateway", "data_dir", gateway.data_dir, "/var/lib/otagw",
	       "database, lock file and image cache; -d overrides"),
	CK_UINT("gateway", "timeout_check", gateway.timeout_check, 1, 3600, "1",
		"seconds between checks for upgrade records past their timeout"),
	CK_STR("gateway", "bundle_key", gateway.bundle_key, "",
	       "PEM public key (EC P-256) that signs offline bundles (manifest.sig)"),
	CK_ENUM("gateway", "require_signed_bundles", gateway.require_signed, config_signed, "auto",
		"auto (true when bundle_key is set) | true | false"),
	CK_STR("gateway", "import_dir", gateway.import_dir, "",
	       "directory watched for bundles (e.g. a USB stick's mount point); empty = none"),
	CK_UINT("gateway", "import_interval", gateway.import_interval, 1, 3600, "5",
		"seconds between looks into import_dir"),
	CK_TYPED("http", "bind", CT_IPV4, http.bind, "127.0.0.1",
		 "IPv4 address of the HTTP server (REST API, devices, console)"),
	CK_UINT("http", "port", http.port, 0, 65535, "8080", "TCP port; 0 disables HTTP"),
	CK_STR("http", "api_token", http.api_token, "",
	       "Bearer token for /api/; required when bind is not loopback"),
	CK_ENUM("http", "device_auth", http.device_auth, config_auths, "none",
		"none | token (devices send Authorization: Bearer <secureKey>)"),
	CK_UINT("http", "max_poll_wait", http.max_poll_wait, 1, 300, "30",
		"seconds, the longest ?wait= of a device's long-poll for pushes"),
	CK_STR("http", "public_url", http.public_url, "",
	       "base url devices fetch images from (http://host:port); empty = bind:port"),
	CK_STR("http", "www_dir", http.www_dir, OTAGW_WWW_DIR,
	       "directory of the web console served at /; empty = no console"),
	CK_UINT("http", "live_interval", http.live_interval, 50, 10000, "250",
		"milliseconds between the console's live updates (coalesced)"),
	CK_TYPED("tcp", "bind", CT_IPV4, tcp.bind, "127.0.0.1",
		 "IPv4 address of the TCP device listener"),
	CK_UINT("tcp", "port", tcp.port, 0, 65535, "9000", "TCP port for devices; 0 disables"),
	CK_ENUM("tcp", "codec", tcp.codec, config_tcp_codecs, "jsonline",
		"jsonline (one JSON message per line) | frame (length-prefixed binary)"),
	CK_ENUM("tcp", "auth", tcp.auth, config_auths, "none",
		"none | token (first message carries headers.secureKey)"),
	CK_UINT("tcp", "idle_timeout", tcp.idle_timeout, 1, 86400, "300",
		"seconds without a byte from a device before it is disconnected"),
	CK_UINT("tcp", "max_connections", tcp.max_connections, 1, 65536, "1024",
		"simultaneous device connections; more are closed at once"),
	CK_UINT("tcp", "max_frame", tcp.max_frame, 256, 131072, "65536",
		"bytes of one line or frame; longer input closes the connection"),
	CK_UINT("tcp", "max_chunk", tcp.max_chunk, 64, 65536, "4096",
		"largest in-band image chunk in bytes"),
	CK_STR("tcp", "default_product", tcp.default_product, "",
	       "productId for new devices whose first message has no headers.productId"),
	CK_STR("tcp", "image_url", tcp.image_url, "chunk:{firmwareId}",
	       "url given to TCP devices for an image; {firmwareId} is replaced"),
	CK_U64("cache", "max_bytes", cache.max_bytes, 1048576, UINT64_C(1) << 50, "1073741824",
	       "bytes of verified images kept; least recently used unpinned ones go first"),
	CK_U64("cache", "min_free_bytes", cache.min_free_bytes, 0, UINT64_C(1) << 50, "67108864",
	       "a download that would leave less free disk than this fails (cache full)"),
	CK_UINT("cache", "max_downloads", cache.max_downloads, 1, 64, "2",
		"downloads running at once"),
	CK_UINT("cache", "timeout", cache.timeout, 1, 3600, "60",
		"seconds without a byte before a download attempt fails and is retried"),
	CK_UINT("cache", "max_retry_delay", cache.max_retry_delay, 1, 86400, "300",
		"seconds, the cap of the retry backoff (with jitter) of transient failures"),
	CK_STR("cache", "ca_file", cache.ca_file, "",
	       "PEM CA bundle for https downloads; empty = the system store"),
	CK_STR("cache", "signing_key", cache.signing_key, "",
	       "PEM public key (EC P-256) for firmware with signMethod ecdsa-p256"),
	CK_STR("cloud", "url", cloud.url, "",
	       "ws://host:port/path or wss://...; empty = no cloud (offline gateway)"),
	CK_STR("cloud", "gateway_id", cloud.gateway_id, "",
	       "this gateway's id in the cloud; required with url"),
	CK_STR("cloud", "token", cloud.token, "",
	       "Bearer token for the cloud (sent only in the Authorization header)"),
	CK_STR("cloud", "ca_file", cloud.ca_file, "",
	       "PEM CA bundle to verify a wss:// server; empty = the system store"),
	CK_UINT("cloud", "progress_interval", cloud.progress_interval, 1, 3600, "1",
		"seconds between flushes of coalesced device progress to the cloud"),
	CK_UINT("cloud", "status_interval", cloud.status_interval, 5, 86400, "60",
		"seconds between GATEWAY_STATUS frames while connected"),
	CK_UINT("cloud", "ping_interval", cloud.ping_interval, 1, 3600, "30",
		"seconds between keepalive pings; no pong within a third of it drops the link"),
};

/* Keys of each [serial NAME]; offsets are into struct config_serial. */
static const struct config_key config_serial_keys[] = {
	CK_SER("path", CT_STR, path, 0, 0, NULL, "",
	       "the port's device (/dev/ttyUSB0, /dev/ttyS1, ...); required"),
	CK_SER("baud", CT_UINT, baud, 1200, 4000000, NULL, "115200",
	       "line speed: a standard rate from 1200 to 4000000"),
	CK_SER("data_bits", CT_UINT, data_bits, 5, 8, NULL, "8", "5, 6, 7 or 8"),
	CK_SER("parity", CT_ENUM, parity, 0, 0, config_parities, "none", "none | even | odd"),
	CK_SER("stop_bits", CT_UINT, stop_bits, 1, 2, NULL, "1", "1 or 2"),
	CK_SER("flow", CT_ENUM, flow, 0, 0, config_flows, "none",
	       "none | rtscts | xonxoff (xonxoff cannot carry YMODEM's binary blocks)"),
	CK_SER("rs485", CT_BOOL, rs485, 0, 0, NULL, "off",
	       "on: RS-485 half duplex (the driver drives RTS while sending)"),
	CK_SER("product", CT_STR, product, 0, 0, NULL, "",
	       "productId for a new device on this line whose message names none"),
	CK_SER("max_line", CT_UINT, max_line, 256, 65536, NULL, "4096",
	       "bytes of one JSON line; longer lines are dropped"),
	CK_SER("ymodem_timeout", CT_UINT, ymodem_timeout, 2, 300, NULL, "10",
	       "seconds to wait for the answer to a YMODEM block before resending (lrzsz's rz "
	       "takes 1 s of silence to accept EOT)"),
	CK_SER("ymodem_retries", CT_UINT, ymodem_retries, 1, 100, NULL, "10",
	       "resends of one YMODEM block before the transfer fails"),
	CK_SER("ymodem_start_timeout", CT_UINT, ymodem_start_timeout, 1, 3600, NULL, "60",
	       "seconds for the device to start its YMODEM receive (send 'C')"),
	CK_SER("ymodem_blocks", CT_ENUM, ymodem_blocks, 0, 0, config_ymodem_blocks, "mixed",
	       "mixed (tail in 128-byte blocks, like lrzsz) | 1k (only 1024-byte blocks)"),
	CK_SER("reopen_max_delay", CT_UINT, reopen_max_delay, 1, 300, NULL, "5",
	       "seconds, the cap of the backoff between attempts to reopen a lost port"),
};

static const char *const config_sections[] = { "gateway", "http", "tcp", "cloud", "cache",
					       "serial" };

static int config_set(void *base, const struct config_key *k, const char *v)
{
	char *field = (char *)base + k->off;
	uint64_t u;

	switch (k->type) {
	case CT_STR:
		return util_strlcpy(field, v, k->size) ? -ENAMETOOLONG : 0;
	case CT_UINT:
		if (parse_u64(v, strlen(v), k->max, &u) || u < k->min)
			return -ERANGE;
		*(unsigned *)field = (unsigned)u;
		return 0;
	case CT_BOOL:
		if (!strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "1"))
			*(bool *)field = true;
		else if (!strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "no") ||
			 !strcmp(v, "0"))
			*(bool *)field = false;
		else
			return -EINVAL;
		return 0;
	case CT_LOGLEVEL:
		return gw_log_level_parse(v, (enum log_level *)field);
	case CT_U64:
		if (parse_u64(v, strlen(v), k->max, &u) || u < k->min)
			return -ERANGE;
		*(uint64_t *)field = u;
		return 0;
	case CT_ENUM:
		for (unsigned i = 0; k->choices[i]; i++) {
			if (!strcmp(v, k->choices[i])) {
				*(unsigned *)field = i;
				return 0;
			}
		}
		return -EINVAL;
	case CT_IPV4: {
		struct in_addr a;

		if (inet_pton(AF_INET, v, &a) != 1)
			return -EINVAL;
		return util_strlcpy(field, v, k->size) ? -ENAMETOOLONG : 0;
	}
	}
	return -EINVAL;
}

static const char *config_type_hint(const struct config_key *k)
{
	static const char *const hints[] = { "a string", "an integer", "true or false",
					     "error, warn, info or debug", "an IPv4 address",
					     "one of the listed names", "" };

	if (k->type == CT_UINT || k->type == CT_U64)
		return "an integer in range";
	return hints[k->type];
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(config_keys); i++)
		if (config_set(cfg, &config_keys[i], config_keys[i].def))
			abort();        /* a bad default is a programming error */
}

static void config_serial_defaults(struct config_serial *sp)
{
	memset(sp, 0, sizeof(*sp));
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(config_serial_keys); i++)
		if (config_set(sp, &config_serial_keys[i], config_serial_keys[i].def))
			abort();
}

/* Trims ASCII space on both ends in place; returns the new start. */
static char *config_trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

struct config_pos {
	const char *file;
	unsigned line;
	char section[16];        /* "" before the first header */
};

static int config_section(struct config *cfg, struct config_pos *p, char *hdr, struct err_info *e)
{
	size_t n = strlen(hdr);
	char *name, *arg;

	if (n < 2 || hdr[n - 1] != ']')
		return err_set(e, -OTAGW_ECONFIG, "%s:%u: malformed section header", p->file, p->line);
	hdr[n - 1] = '\0';
	name = config_trim(hdr + 1);
	arg = strpbrk(name, " \t");
	if (arg) {
		*arg++ = '\0';
		arg = config_trim(arg);
	}
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(config_sections); i++) {
		if (strcmp(name, config_sections[i]))
			continue;
		if (!strcmp(name, "serial") != !!arg)
			break;   /* [serial] needs a NAME, the others take none */
		snprintf(p->section, sizeof(p->section), "%s", name);
		if (!arg)
			return 0;
		if (!util_id_valid(arg) || strlen(arg) >= sizeof(cfg->serial[0].name))
			return err_set(e, -OTAGW_ECONFIG, "%s:%u: bad serial port name '%.64s'",
				       p->file, p->line, arg);
		for (size_t j = 0; j < cfg->n_serial; j++)
			if (!strcmp(cfg->serial[j].name, arg))
				return err_set(e, -OTAGW_ECONFIG, "%s:%u: [serial %s] given twice",
					       p->file, p->line, arg);
		if (cfg->n_serial >= CONFIG_SERIAL_MAX)
			return err_set(e, -OTAGW_ECONFIG, "%s:%u: more than %d serial ports",
				       p->file, p->line, CONFIG_SERIAL_MAX);
		config_serial_defaults(&cfg->serial[cfg->n_serial]);
		snprintf(cfg->serial[cfg->n_serial++].name, sizeof(cfg->serial[0].name), "%s", arg);
		return 0;
	}
	return err_set(e, -OTAGW_ECONFIG, "%s:%u: unknown section [%.64s%s%.64s]", p->file, p->line,
		       name, arg ? " " : "", arg ? arg : "");
}

static int config_keyval(struct config *cfg, struct config_pos *p, char *line, struct err_info *e)
{
	char *eq = strchr(line, '='), *key, *val;
	const struct config_key *keys;
	size_t vn, nkeys;
	bool serial;

	if (!eq)
		return err_set(e, -OTAGW_ECONFIG, "%s:%u: expected key = value", p->file, p->line);
	*eq = '\0';
	key = config_trim(line);
	val = config_trim(eq + 1);
	vn = strlen(val);
	if (vn >= 2 && val[0] == '"' && val[vn - 1] == '"') {
		val[vn - 1] = '\0';
		val++;
	}
	if (!p->section[0])
		return err_set(e, -OTAGW_ECONFIG, "%s:%u: key '%.64s' outside any section",
			       p->file, p->line, key);
	serial = !strcmp(p->section, "serial");
	keys = serial ? config_serial_keys : config_keys;
	nkeys = serial ? OTAGW_ARRAY_SIZE(config_serial_keys) : OTAGW_ARRAY_SIZE(config_keys);
	for (size_t i = 0; i < nkeys; i++) {
		const struct config_key *k = &keys[i];

		if (strcmp(k->section, p->section) || strcmp(k->name, key))
			continue;
		if (config_set(serial ? (void *)&cfg->serial[cfg->n_serial - 1] : (void *)cfg, k,
			       val))
			return err_set(e, -OTAGW_ECONFIG, "%s:%u: bad value for '%s' in [%s]: "
				       "expected %s", p->file, p->line, key, p->section,
				       config_type_hint(k));
		return 0;
	}
	return err_set(e, -OTAGW_ECONFIG, "%s:%u: unknown key '%.64s' in [%s]", p->file, p->line,
		       key, p->section);
}

int config_parse(struct config *cfg, const char *name, const char *buf, size_t len,
		 struct err_info *e)
{
	struct config_pos p = { .file = name, .line = 0 };
	size_t off = 0;

	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;
		char raw[OTAGW_CONFIG_LINE_MAX], *line;
		int rc;

		p.line++;
		if (n >= sizeof(raw))
			return err_set(e, -OTAGW_ECONFIG, "%s:%u: line longer than %d bytes", name,
				       p.line, OTAGW_CONFIG_LINE_MAX - 1);
		memcpy(raw, buf + off, n);
		raw[n] = '\0';
		off += n + 1;
		if (strlen(raw) != n)
			return err_set(e, -OTAGW_ECONFIG, "%s:%u: NUL byte in line", name, p.line);
		line = config_trim(raw);
		if (!*line || *line == '#' || *line == ';')
			continue;
		rc = *line == '[' ? config_section(cfg, &p, line, e) : config_keyval(cfg, &p, line, e);
		if (rc)
			return rc;
	}
	return 0;
}

int config_load(struct config *cfg, const char *path, struct err_info *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	char *buf;
	ssize_t n;
	int rc;

	if (fd < 0)
		return err_set(e, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_size > 1024 * 1024) {
		close(fd);
		return err_set(e, -OTAGW_ECONFIG, "%s: not a regular file under 1 MiB", path);
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		close(fd);
		return err_set(e, -ENOMEM, "out of memory");
	}
	n = read(fd, buf, (size_t)sb.st_size);
	close(fd);
	if (n != sb.st_size) {
		free(buf);
		return err_set(e, -EIO, "%s: short read", path);
	}
	rc = config_parse(cfg, path, buf, (size_t)n, e);
	free(buf);
	return rc;
}

bool config_addr_is_loopback(const char *addr)
{
	struct in_addr a;

	if (inet_pton(AF_INET, addr, &a) != 1)
		return false;
	return (ntohl(a.s_addr) >> 24) == 127;
}

int config_validate(const struct config *cfg, struct err_info *e)
{
	if (cfg->http.port && !config_addr_is_loopback(cfg->http.bind) && !cfg->http.api_token[0])
		return err_set(e, -OTAGW_ECONFIG, "[http] bind = %s is not a loopback address: "
			       "set [http] api_token", cfg->http.bind);
	if (cfg->tcp.default_product[0] && !util_id_valid(cfg->tcp.default_product))
		return err_set(e, -OTAGW_ECONFIG, "[tcp] default_product is not a valid id");
	if (!strstr(cfg->tcp.image_url, "{firmwareId}"))
		return err_set(e, -OTAGW_ECONFIG, "[tcp] image_url must contain {firmwareId}");
	if (cfg->http.port && cfg->tcp.port && cfg->http.port == cfg->tcp.port)
		return err_set(e, -OTAGW_ECONFIG, "[http] port and [tcp] port are the same");
	if (!cfg->gateway.data_dir[0])
		return err_set(e, -OTAGW_ECONFIG, "[gateway] data_dir is empty");
	if (cfg->cloud.url[0] && strncmp(cfg->cloud.url, "ws://", 5) &&
	    strncmp(cfg->cloud.url, "wss://", 6))
		return err_set(e, -OTAGW_ECONFIG, "[cloud] url must start with ws:// or wss://");
	if (cfg->cloud.url[0] && !util_id_valid(cfg->cloud.gateway_id))
		return err_set(e, -OTAGW_ECONFIG, "[cloud] gateway_id is missing or not a valid id");
	for (size_t i = 0; i < cfg->n_serial; i++) {
		const struct config_serial *sp = &cfg->serial[i];
		size_t b = 0;

		if (!sp->path[0])
			return err_set(e, -OTAGW_ECONFIG, "[serial %s] needs a path", sp->name);
		while (config_serial_bauds[b] && config_serial_bauds[b] != sp->baud)
			b++;
		if (!config_serial_bauds[b])
			return err_set(e, -OTAGW_ECONFIG, "[serial %s] baud %u is not a standard rate",
				       sp->name, sp->baud);
		if (sp->product[0] && !util_id_valid(sp->product))
			return err_set(e, -OTAGW_ECONFIG, "[serial %s] product is not a valid id",
				       sp->name);
		for (size_t j = 0; j < i; j++)
			if (!strcmp(cfg->serial[j].path, sp->path))
				return err_set(e, -OTAGW_ECONFIG, "[serial %s] and [serial %s] use the "
					       "same path", cfg->serial[j].name, sp->name);
	}
	return 0;
}

void config_print_defaults(void *file)
{
	FILE *f = file;
	const char *sec = "";

	fprintf(f, "# otagw configuration. Every key is shown at its built-in default.\n");
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(config_keys); i++) {
		const struct config_key *k = &config_keys[i];

		if (strcmp(sec, k->section)) {
			sec = k->section;
			fprintf(f, "\n[%s]\n", sec);
		}
		fprintf(f, "# %s\n#%s = %s\n", k->help, k->name, k->def);
	}
	fprintf(f, "\n# One section per serial port; NAME is yours (letters, digits, _ . : -).\n"
		   "#[serial NAME]\n");
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(config_serial_keys); i++)
		fprintf(f, "# %s\n#%s = %s\n", config_serial_keys[i].help, config_serial_keys[i].name,
			config_serial_keys[i].def);

}
