/* SPDX-License-Identifier: MIT */
/* test_config.c - the INI reader: defaults, every type, and a table of bad
 * files that must each be refused with file, line and key in the message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "otagw_limits.h"

static int parse(struct config *c, const char *text, struct err_info *e)
{
	config_defaults(c);
	return config_parse(c, "t.conf", text, strlen(text), e);
}

static void test_defaults(void **state)
{
	struct config c;

	config_defaults(&c);
	assert_string_equal(c.http.bind, "127.0.0.1");
	assert_int_equal(c.http.port, 8080);
	assert_string_equal(c.http.api_token, "");
	assert_int_equal(c.gateway.log_level, LOG_LVL_INFO);
	assert_false(c.gateway.syslog);
	assert_string_equal(c.gateway.data_dir, "/var/lib/otagw");
	assert_int_equal(c.gateway.timeout_check, 1);
	assert_int_equal(config_validate(&c, NULL), 0);
}

static void test_full_file(void **state)
{
	struct err_info e = { 0 };
	struct config c;
	const char *text = "# comment\n; other comment\n\n[gateway]\n  log_level = debug \n"
			   "syslog = yes\r\ndata_dir = \"/tmp/x y\"\n[http]\nbind=0.0.0.0\nport = 0\n"
			   "api_token = s3cret\n[tcp]\n[cloud]\n[cache]\n[serial ttyUSB0]\n"
			   "path = /dev/ttyUSB0\n[serial rs485-a]\npath = /dev/ttyS1\nbaud = 9600\n"
			   "data_bits = 7\nparity = even\nstop_bits = 2\nflow = rtscts\nrs485 = on\n"
			   "ymodem_blocks = 1k\nymodem_timeout = 3\nproduct = meter\n";

	assert_int_equal(parse(&c, text, &e), 0);
	assert_int_equal(c.gateway.log_level, LOG_LVL_DEBUG);
	assert_true(c.gateway.syslog);
	assert_string_equal(c.gateway.data_dir, "/tmp/x y");
	assert_string_equal(c.http.bind, "0.0.0.0");
	assert_int_equal(c.http.port, 0);
	assert_string_equal(c.http.api_token, "s3cret");
	assert_int_equal(c.n_serial, 2);
	assert_string_equal(c.serial[1].name, "rs485-a");
	/* the first port has every default, the second what it says */
	assert_string_equal(c.serial[0].path, "/dev/ttyUSB0");
	assert_int_equal(c.serial[0].baud, 115200);
	assert_int_equal(c.serial[0].data_bits, 8);
	assert_int_equal(c.serial[0].parity, CONFIG_PARITY_NONE);
	assert_int_equal(c.serial[0].stop_bits, 1);
	assert_int_equal(c.serial[0].flow, CONFIG_FLOW_NONE);
	assert_false(c.serial[0].rs485);
	assert_int_equal(c.serial[0].ymodem_blocks, CONFIG_YMODEM_MIXED);
	assert_int_equal(c.serial[0].ymodem_timeout, 10);
	assert_int_equal(c.serial[0].ymodem_retries, 10);
	assert_string_equal(c.serial[1].path, "/dev/ttyS1");
	assert_int_equal(c.serial[1].baud, 9600);
	assert_int_equal(c.serial[1].data_bits, 7);
	assert_int_equal(c.serial[1].parity, CONFIG_PARITY_EVEN);
	assert_int_equal(c.serial[1].stop_bits, 2);
	assert_int_equal(c.serial[1].flow, CONFIG_FLOW_RTSCTS);
	assert_true(c.serial[1].rs485);
	assert_int_equal(c.serial[1].ymodem_blocks, CONFIG_YMODEM_1K);
	assert_int_equal(c.serial[1].ymodem_timeout, 3);
	assert_string_equal(c.serial[1].product, "meter");
	assert_int_equal(config_validate(&c, &e), 0);
}

static void test_serial_validate(void **state)
{
	static const struct { const char *text, *needle; } bad[] = {
		{ "[serial a]\n", "[serial a] needs a path" },
		{ "[serial a]\npath = /dev/x\nbaud = 12345\n", "baud 12345 is not a standard rate" },
		{ "[serial a]\npath = /dev/x\nproduct = a/b\n", "product is not a valid id" },
		{ "[serial a]\npath = /dev/x\n[serial b]\npath = /dev/x\n", "use the same path" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct err_info e = { 0 };
		struct config c;

		assert_int_equal(parse(&c, bad[i].text, &e), 0);
		assert_int_equal(config_validate(&c, &e), -OTAGW_ECONFIG);
		if (!strstr(e.text, bad[i].needle))
			fail_msg("case %zu: '%s' lacks '%s'", i, e.text, bad[i].needle);
	}
}

static void test_bad_files(void **state)
{
	static const struct { const char *text, *needle; } bad[] = {
		{ "[http]\nprot = 1\n", "t.conf:2: unknown key 'prot' in [http]" },
		{ "[nope]\n", "t.conf:1: unknown section [nope]" },
		{ "port = 1\n", "t.conf:1: key 'port' outside any section" },
		{ "[http]\nport = 65536\n", "t.conf:2: bad value for 'port' in [http]" },
		{ "[http]\nport = -1\n", "t.conf:2: bad value for 'port'" },
		{ "[http]\nport = 80x\n", "t.conf:2: bad value for 'port'" },
		{ "[http]\nport =\n", "t.conf:2: bad value for 'port'" },
		{ "[http]\nbind = localhost\n", "t.conf:2: bad value for 'bind'" },
		{ "[http]\nbind = 999.1.1.1\n", "bad value for 'bind'" },
		{ "[gateway]\nlog_level = loud\n", "t.conf:2: bad value for 'log_level'" },
		{ "[gateway]\nsyslog = maybe\n", "bad value for 'syslog'" },
		{ "[gateway]\ntimeout_check = 0\n", "bad value for 'timeout_check'" },
		{ "[http\n", "t.conf:1: malformed section header" },
		{ "[http]\njust words\n", "t.conf:2: expected key = value" },
		{ "[serial]\n", "unknown section [serial]" },
		{ "[http extra]\n", "unknown section [http extra]" },
		{ "[serial a/b]\n", "bad serial port name" },
		{ "[serial a]\n[serial a]\n", "t.conf:2: [serial a] given twice" },
		{ "[serial a]\npaht = /dev/x\n", "t.conf:2: unknown key 'paht' in [serial]" },
		{ "[serial a]\ndata_bits = 9\n", "bad value for 'data_bits' in [serial]" },
		{ "[serial a]\nparity = mark\n", "bad value for 'parity' in [serial]" },
		{ "[serial a]\nstop_bits = 3\n", "bad value for 'stop_bits'" },
		{ "[serial a]\nflow = dtrdsr\n", "bad value for 'flow'" },
		{ "[serial a]\nymodem_blocks = 2k\n", "bad value for 'ymodem_blocks'" },
		{ "[serial a]\nymodem_retries = 0\n", "bad value for 'ymodem_retries'" },
		{ "[serial a]\nrs485 = sometimes\n", "bad value for 'rs485'" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct err_info e = { 0 };
		struct config c;

		if (parse(&c, bad[i].text, &e) != -OTAGW_ECONFIG)
			fail_msg("case %zu (%s) was accepted", i, bad[i].text);
		if (!strstr(e.text, bad[i].needle))
			fail_msg("case %zu: '%s' lacks '%s'", i, e.text, bad[i].needle);
	}
}

static void test_line_limits(void **state)
{
	char big[OTAGW_CONFIG_LINE_MAX + 100];
	struct err_info e = { 0 };
	struct config c;
	const char nul[] = "[http]\nport = 1\0 = 2\n";

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(parse(&c, big, &e), -OTAGW_ECONFIG);
	assert_non_null(strstr(e.text, "t.conf:1: line longer"));
	config_defaults(&c);
	assert_int_equal(config_parse(&c, "t.conf", nul, sizeof(nul) - 1, &e), -OTAGW_ECONFIG);
	assert_non_null(strstr(e.text, "NUL byte"));
	/* a token longer than its field is refused, not truncated */
	memset(big, 'b', 400);
	memcpy(big, "[http]\napi_token = ", 19);
	big[400] = '\0';
	assert_int_equal(parse(&c, big, &e), -OTAGW_ECONFIG);
	assert_non_null(strstr(e.text, "'api_token'"));
}

static void test_validate_public_bind(void **state)
{
	struct err_info e = { 0 };
	struct config c;

	assert_int_equal(parse(&c, "[http]\nbind = 0.0.0.0\n", &e), 0);
	assert_int_equal(config_validate(&c, &e), -OTAGW_ECONFIG);
	assert_non_null(strstr(e.text, "api_token"));
	assert_int_equal(parse(&c, "[http]\nbind = 0.0.0.0\nport = 0\n", &e), 0);
	assert_int_equal(config_validate(&c, &e), 0);   /* no listener, no token needed */
	assert_int_equal(parse(&c, "[http]\nbind = 127.0.0.5\n", &e), 0);
	assert_int_equal(config_validate(&c, &e), 0);
	assert_true(config_addr_is_loopback("127.255.0.1"));
	assert_false(config_addr_is_loopback("128.0.0.1"));
	assert_false(config_addr_is_loopback("10.0.0.1"));
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/otagw-conf-XXXXXX";
	struct err_info e = { 0 };
	struct config c;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "[http]\nport = 9\n", 16), 16);
	close(fd);
	config_defaults(&c);
	assert_int_equal(config_load(&c, path, &e), 0);
	assert_int_equal(c.http.port, 9);
	unlink(path);
	assert_int_equal(config_load(&c, path, &e), -ENOENT);
	assert_non_null(strstr(e.text, path));
	assert_int_equal(config_load(&c, "/tmp", &e), -OTAGW_ECONFIG);
}

/* Rewrites path with "#key = value" lines uncommented ("# text" stays). */
static int system_free_uncomment(const char *path)
{
	char buf[8192], out[8192];
	size_t n, o = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (line[0] == '#' && line[1] != ' ' && line[1] != '\0')
			line++;
		o += (size_t)snprintf(out + o, sizeof(out) - o, "%s\n", line);
	}
	f = fopen(path, "w");
	if (!f)
		return -1;
	fwrite(out, 1, o, f);
	return fclose(f);
}

static void test_print_defaults_roundtrip(void **state)
{
	char path[] = "/tmp/otagw-conf-XXXXXX";
	struct err_info e = { 0 };
	struct config c, d;
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	config_print_defaults(f);
	fclose(f);
	/* uncommented, every printed default must parse back to the default */
	assert_int_equal(system_free_uncomment(path), 0);
	config_defaults(&c);
	assert_int_equal(config_load(&c, path, &e), 0);
	/* the example [serial NAME] section parses back to a section with
	 * every serial default */
	config_defaults(&d);
	assert_int_equal(config_parse(&d, "d", "[serial NAME]\n", 14, &e), 0);
	assert_int_equal(c.n_serial, 1);
	assert_memory_equal(&c, &d, sizeof(c));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_serial_validate),
		cmocka_unit_test(test_line_limits),
		cmocka_unit_test(test_validate_public_bind),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_print_defaults_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
