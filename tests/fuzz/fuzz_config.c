/* SPDX-License-Identifier: MIT */
/* fuzz_config.c - the INI configuration reader (gateway/config.h):
 * config_parse() over the built-in defaults, then config_validate().
 * Feeds: the input as the file's bytes (any length, NULs and CRs included).
 * config.c is #included to walk its key tables (static), so every key is
 * checked as the table describes it, present ones and future ones alike.
 * Asserts beyond no crash and no leak:
 *  - a refusal is -OTAGW_ECONFIG and names the file and line;
 *  - after a successful parse every value is within its key's bounds:
 *    integers in [min, max], enums an index of their choices, log level
 *    known, strings terminated within their field, IPv4 fields parse, at
 *    most CONFIG_SERIAL_MAX serial ports, each named by a valid, unique id;
 *  - config_validate() returns 0 or -OTAGW_ECONFIG with a reason;
 *  - round trip: the parsed config written back as INI (every key, with
 *    quotes where a value needs them) parses to the same value for every
 *    key, serial ports included. */
#include "../../gateway/config.c"

#include <inttypes.h>

#include "fuzz_common.h"

static const char *const log_names[] = { "error", "warn", "info", "debug" };

static size_t n_choices(const char *const *c)
{
	size_t n = 0;

	while (c[n])
		n++;
	return n;
}

static void check_key(const void *base, const struct config_key *k)
{
	const char *field = (const char *)base + k->off;
	struct in_addr a;

	switch (k->type) {
	case CT_STR:
		FUZZ_CHECK(fuzz_terminated(field, k->size));
		break;
	case CT_IPV4:
		FUZZ_CHECK(fuzz_terminated(field, k->size));
		FUZZ_CHECK(inet_pton(AF_INET, field, &a) == 1);
		break;
	case CT_UINT:
		FUZZ_CHECK(*(const unsigned *)field >= k->min && *(const unsigned *)field <= k->max);
		break;
	case CT_U64:
		FUZZ_CHECK(*(const uint64_t *)field >= k->min && *(const uint64_t *)field <= k->max);
		break;
	case CT_ENUM:
		FUZZ_CHECK(*(const unsigned *)field < n_choices(k->choices));
		break;
	case CT_LOGLEVEL:
		FUZZ_CHECK((unsigned)*(const enum log_level *)field < OTAGW_ARRAY_SIZE(log_names));
		break;
	case CT_BOOL:
		break;
	}
}

static void check_config(const struct config *cfg)
{
	FUZZ_CHECK(cfg->n_serial <= CONFIG_SERIAL_MAX);
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(config_keys); i++)
		check_key(cfg, &config_keys[i]);
	for (size_t s = 0; s < cfg->n_serial; s++) {
		FUZZ_STR_OK(cfg->serial[s].name);
		FUZZ_CHECK(util_id_valid(cfg->serial[s].name));
		for (size_t t = 0; t < s; t++)
			FUZZ_CHECK(strcmp(cfg->serial[s].name, cfg->serial[t].name));
		for (size_t i = 0; i < OTAGW_ARRAY_SIZE(config_serial_keys); i++)
			check_key(&cfg->serial[s], &config_serial_keys[i]);
	}
}

/* The text a value needs to come back as itself: quoted when config_keyval()
 * would trim or unquote it. */
static bool needs_quotes(const char *v)
{
	size_t n = strlen(v);

	return n && (isspace((unsigned char)v[0]) || isspace((unsigned char)v[n - 1]) ||
		     (n >= 2 && v[0] == '"' && v[n - 1] == '"'));
}

static void put_key(FILE *f, const void *base, const struct config_key *k)
{
	const char *field = (const char *)base + k->off;

	fprintf(f, "%s=", k->name);
	switch (k->type) {
	case CT_STR:
	case CT_IPV4:
		fprintf(f, needs_quotes(field) ? "\"%s\"\n" : "%s\n", field);
		break;
	case CT_UINT:
		fprintf(f, "%u\n", *(const unsigned *)field);
		break;
	case CT_U64:
		fprintf(f, "%" PRIu64 "\n", *(const uint64_t *)field);
		break;
	case CT_ENUM:
		fprintf(f, "%s\n", k->choices[*(const unsigned *)field]);
		break;
	case CT_LOGLEVEL:
		fprintf(f, "%s\n", log_names[*(const enum log_level *)field]);
		break;
	case CT_BOOL:
		fprintf(f, "%s\n", *(const bool *)field ? "true" : "false");
		break;
	}
}

static void same_key(const void *a, const void *b, const struct config_key *k)
{
	const char *x = (const char *)a + k->off, *y = (const char *)b + k->off;

	switch (k->type) {
	case CT_STR:
	case CT_IPV4:
		FUZZ_CHECK(!strcmp(x, y));
		break;
	case CT_UINT:
	case CT_ENUM:
		FUZZ_CHECK(*(const unsigned *)x == *(const unsigned *)y);
		break;
	case CT_U64:
		FUZZ_CHECK(*(const uint64_t *)x == *(const uint64_t *)y);
		break;
	case CT_LOGLEVEL:
		FUZZ_CHECK(*(const enum log_level *)x == *(const enum log_level *)y);
		break;
	case CT_BOOL:
		FUZZ_CHECK(*(const bool *)x == *(const bool *)y);
		break;
	}
}

static void round_trip(const struct config *cfg)
{
	struct config *back = malloc(sizeof(*back));
	struct err_info e = { 0 };
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f || !back)
		abort();
	for (size_t s = 0; s < OTAGW_ARRAY_SIZE(config_sections); s++) {
		if (!strcmp(config_sections[s], "serial"))
			continue;
		fprintf(f, "[%s]\n", config_sections[s]);
		for (size_t i = 0; i < OTAGW_ARRAY_SIZE(config_keys); i++)
			if (!strcmp(config_keys[i].section, config_sections[s]))
				put_key(f, cfg, &config_keys[i]);
	}
	for (size_t s = 0; s < cfg->n_serial; s++) {
		fprintf(f, "[serial %s]\n", cfg->serial[s].name);
		for (size_t i = 0; i < OTAGW_ARRAY_SIZE(config_serial_keys); i++)
			put_key(f, &cfg->serial[s], &config_serial_keys[i]);
	}
	if (fclose(f))
		abort();
	config_defaults(back);
	if (config_parse(back, "back.conf", text, len, &e)) {
		fprintf(stderr, "written back:\n%s\nrefused: %s\n", text, e.text);
		FUZZ_CHECK(!"the written-back config parses");
	}
	for (size_t i = 0; i < OTAGW_ARRAY_SIZE(config_keys); i++)
		same_key(cfg, back, &config_keys[i]);
	FUZZ_CHECK(back->n_serial == cfg->n_serial);
	for (size_t s = 0; s < cfg->n_serial; s++) {
		FUZZ_CHECK(!strcmp(back->serial[s].name, cfg->serial[s].name));
		for (size_t i = 0; i < OTAGW_ARRAY_SIZE(config_serial_keys); i++)
			same_key(&cfg->serial[s], &back->serial[s], &config_serial_keys[i]);
	}
	free(text);
	free(back);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	static struct config cfg;         /* 20 KiB: not on the stack */
	struct err_info e = { 0 };
	int rc;

	config_defaults(&cfg);
	rc = config_parse(&cfg, "fuzz.conf", (const char *)buf, len, &e);
	if (rc) {
		FUZZ_CHECK(rc == -OTAGW_ECONFIG && e.code == rc);
		FUZZ_CHECK(!strncmp(e.text, "fuzz.conf:", 10));
		return 0;
	}
	check_config(&cfg);
	rc = config_validate(&cfg, &e);
	FUZZ_CHECK(rc == 0 || (rc == -OTAGW_ECONFIG && e.code == rc && e.text[0]));
	round_trip(&cfg);
	return 0;
}
