/* SPDX-License-Identifier: MIT */
/* fuzz_msg_json.c - the JetLinks JSON message codec (gateway/msg_json.h).
 * Feeds: the input as one message to msg_json_decode(); when the first byte
 * is '#', the rest goes to msg_json_decode_as() instead, with the type and
 * device (or none) the second byte picks, as the HTTP transport and the
 * cloud's CHILD frames call it.
 * Asserts beyond no crash and no leak:
 *  - a decoded message is sane: type in range, every fixed string
 *    terminated, ids valid, progress 0..100, data_len == length when data
 *    came in-band; decode_as gives the type (and device) it was asked for;
 *  - what decodes encodes (msg_json_encode() never refuses a message the
 *    decoder produced), and the encoding decodes again to the same message
 *    in every field its type carries (encode -> decode -> compare);
 *  - encoding is a fixed point: encode(decode(encode(m))) == encode(m),
 *    byte for byte;
 *  - a failure leaves the message cleared (no data, no strings to free) and
 *    says why in err_info. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_msg.h"
#include "msg_json.h"

static void check_cleared(const struct msg *m)
{
	FUZZ_CHECK(!m->data && !m->data_len && !m->properties && !m->parameters);
	FUZZ_CHECK(!m->device_id[0] && !m->version[0]);
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
	static const char *const devices[] = { NULL, "dev-1" };
	struct err_info e = { 0 };
	struct msg m1, m2, m3;
	char *t1 = NULL, *t2 = NULL;
	size_t n1 = 0, n2 = 0;
	int rc, as_type = -1;
	const char *as_dev = NULL;

	if (len >= 2 && buf[0] == '#') {
		as_type = buf[1] % MSG_TYPE_COUNT;
		as_dev = devices[(buf[1] / MSG_TYPE_COUNT) % 2];
		rc = msg_json_decode_as(buf + 2, len - 2, (enum msg_type)as_type, as_dev, &m1, &e);
	} else {
		rc = msg_json_decode(buf, len, &m1, &e);
	}
	if (rc) {
		FUZZ_CHECK(rc == -EBADMSG || rc == -EMSGSIZE || rc == -ENOMEM);
		FUZZ_CHECK(e.code == rc && e.text[0]);
		check_cleared(&m1);
		return 0;
	}
	fuzz_msg_sane(&m1);
	if (as_type >= 0)
		FUZZ_CHECK(m1.type == (enum msg_type)as_type);
	if (as_dev)
		FUZZ_CHECK(!strcmp(m1.device_id, as_dev));

	rc = msg_json_encode(&m1, &t1, &n1);
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(strlen(t1) == n1);
	rc = msg_json_decode((const uint8_t *)t1, n1, &m2, &e);
	FUZZ_CHECK(rc == 0);
	fuzz_msg_sane(&m2);
	fuzz_msg_same(&m1, &m2);

	FUZZ_CHECK(msg_json_encode(&m2, &t2, &n2) == 0);
	FUZZ_CHECK(n1 == n2 && !memcmp(t1, t2, n1));
	FUZZ_CHECK(msg_json_decode((const uint8_t *)t2, n2, &m3, &e) == 0);
	fuzz_msg_same(&m2, &m3);

	free(t1);
	free(t2);
	msg_clear(&m1);
	msg_clear(&m2);
	msg_clear(&m3);
	return 0;
}
