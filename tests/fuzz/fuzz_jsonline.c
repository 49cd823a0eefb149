/* SPDX-License-Identifier: MIT */
/* fuzz_jsonline.c - the line framer and its decoder (southbound/
 * codec_jsonline.c), fed a device's byte stream whole and cut into reads
 * at fuzzer-chosen points. Input layout and assertions: fuzz_codec.h (the
 * same messages, errors and fatal error come out however the stream is cut;
 * decoded messages re-encode to a line that decodes to the same message). */
#include "codec.h"

#define FUZZ_CODEC codec_jsonline
#include "fuzz_codec.h"
