/* SPDX-License-Identifier: MIT */
/* config.h - otagw's INI configuration: one table of keys (section, name,
 * type, default, bounds) drives defaults, parsing and the README's list.
 * Sections: [gateway], [http], [tcp], [cloud], [cache], [serial NAME].
 * Unknown sections or keys and bad values are errors naming file, line and
 * key: the daemon refuses to start rather than guess.
 * Must not: open sockets or the store; log (errors go back in err_info). */
#ifndef OTAGW_CONFIG_H
#define OTAGW_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "log.h"

#define CONFIG_SERIAL_MAX 16
#define CONFIG_STR_MAX 256

struct config_serial {
	char name[64];                      /* the NAME of [serial NAME] */
	char path[CONFIG_STR_MAX];          /* /dev/ttyUSB0 */
	unsigned baud;                      /* one of config_serial_bauds[] */
	unsigned data_bits;                 /* 5-8 */
	unsigned parity;                    /* CONFIG_PARITY_* */
	unsigned stop_bits;                 /* 1, 2 */
	unsigned flow;                      /* CONFIG_FLOW_* */
	bool rs485;
	char product[64];                   /* productId of a new device on the line */
	unsigned max_line;                  /* bytes of one JSON line */
	unsigned ymodem_timeout;            /* s to wait for an answer to a block */
	unsigned ymodem_retries;            /* resends of one block */
	unsigned ymodem_start_timeout;      /* s to wait for the receiver's 'C' */
	unsigned ymodem_blocks;             /* CONFIG_YMODEM_* */
	unsigned reopen_max_delay;          /* s, cap of the reopen backoff */
};

enum { CONFIG_PARITY_NONE, CONFIG_PARITY_EVEN, CONFIG_PARITY_ODD };
enum { CONFIG_FLOW_NONE, CONFIG_FLOW_RTSCTS, CONFIG_FLOW_XONXOFF };
enum { CONFIG_YMODEM_MIXED, CONFIG_YMODEM_1K };
enum { CONFIG_SIGNED_AUTO, CONFIG_SIGNED_YES, CONFIG_SIGNED_NO };
/* The baud rates [serial NAME] baud accepts, 0-terminated. */
extern const unsigned config_serial_bauds[];

struct config {
	struct {
		enum log_level log_level;
		bool syslog;
		char data_dir[PATH_MAX];
		unsigned timeout_check;         /* s, how often record timeouts are checked */
		char bundle_key[PATH_MAX];      /* PEM public key of bundle signers */
		unsigned require_signed;        /* CONFIG_SIGNED_* */
		char import_dir[PATH_MAX];      /* watched for bundles; "" = none */
		unsigned import_interval;       /* s between looks at import_dir */
	} gateway;
	struct {
		char bind[64];                  /* IPv4 literal */
		unsigned port;                  /* 0 = disabled */
		char api_token[CONFIG_STR_MAX];
		unsigned device_auth;           /* CONFIG_AUTH_* for /device/ */
		unsigned max_poll_wait;         /* s, bound of ?wait= */
		char public_url[CONFIG_STR_MAX]; /* base of image urls given to devices */
		char www_dir[PATH_MAX];         /* web console files; "" = none */
		unsigned live_interval;         /* ms between console live frames */
	} http;
	struct {
		char bind[64];                  /* IPv4 literal */
		unsigned port;                  /* 0 = disabled */
		unsigned codec;                 /* index into config_tcp_codecs[] */
		unsigned auth;                  /* CONFIG_AUTH_* */
		unsigned idle_timeout;          /* s */
		unsigned max_connections;
		unsigned max_frame;             /* bytes of one line or frame */
		unsigned max_chunk;             /* bytes of one in-band image chunk */
		char default_product[64];       /* productId for devices that give none */
		char image_url[CONFIG_STR_MAX]; /* url given to TCP devices; {firmwareId} */
	} tcp;
	struct {
		uint64_t max_bytes;             /* quota of verified images */
		uint64_t min_free_bytes;        /* keep this much of the disk free */
		unsigned max_downloads;         /* at once */
		unsigned timeout;               /* s without a byte: the attempt fails */
		unsigned max_retry_delay;       /* s, cap of the retry backoff */
		char ca_file[PATH_MAX];         /* PEM CA bundle; "" = system store */
		char signing_key[PATH_MAX];     /* PEM public key for ecdsa-p256 */
	} cache;
	struct {
		char url[CONFIG_STR_MAX];       /* ws:// or wss://; "" = no cloud */
		char gateway_id[64];
		char token[CONFIG_STR_MAX];
		char ca_file[PATH_MAX];         /* "" = the system store */
		unsigned progress_interval;     /* s between progress flushes */
		unsigned status_interval;       /* s between GATEWAY_STATUS frames */
		unsigned ping_interval;         /* s between keepalive pings */
	} cloud;
	size_t n_serial;
	struct config_serial serial[CONFIG_SERIAL_MAX];
};

/* Fills cfg with every key's built-in default. */
enum { CONFIG_AUTH_NONE, CONFIG_AUTH_TOKEN };
/* Names of the [tcp] codec choices, in index order ("jsonline", "frame"). */
extern const char *const config_tcp_codecs[];

void config_defaults(struct config *cfg);
/* Parses len bytes of INI text over cfg (defaults first is the caller's
 * job). name is used in messages ("otagw.conf:3: ..."). -OTAGW_ECONFIG. */
int config_parse(struct config *cfg, const char *name, const char *buf, size_t len,
		 struct err_info *e) OTAGW_MUST_CHECK;
/* Reads the file at path (at most 1 MiB) and parses it. */
int config_load(struct config *cfg, const char *path, struct err_info *e) OTAGW_MUST_CHECK;
/* Cross-key checks once everything is set (e.g. a non-loopback bind needs
 * an api_token). */
int config_validate(const struct config *cfg, struct err_info *e) OTAGW_MUST_CHECK;
/* True when addr is an IPv4 loopback literal (127.0.0.0/8). */
bool config_addr_is_loopback(const char *addr);
/* Writes a commented INI file with every key at its default to f's stream
 * (used for rootfs/etc/otagw/otagw.conf and `otagw --print-config`). */
void config_print_defaults(void *file);

#endif
