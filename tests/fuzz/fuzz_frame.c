/* SPDX-License-Identifier: MIT */
/* fuzz_frame.c - the length-prefixed binary frame codec (southbound/
 * codec_frame.c: 16-byte header, CRC-32, type 1 JSON and type 2 chunk
 * frames), fed a device's byte stream whole and cut into reads at
 * fuzzer-chosen points. Input layout and assertions: fuzz_codec.h (the same
 * messages, errors and fatal error come out however the stream is cut, a
 * frame longer than max is refused from its header; decoded messages,
 * chunk data included, re-encode to a frame that decodes to the same
 * message). */
#include "codec.h"

#define FUZZ_CODEC codec_frame
#include "fuzz_codec.h"
