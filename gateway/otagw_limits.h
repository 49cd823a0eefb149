/* SPDX-License-Identifier: MIT */
/* otagw_limits.h - every cap on outside input, in one place so modules cannot
 * disagree. Sizes include the terminating NUL where they size a buffer. */
#ifndef OTAGW_LIMITS_H
#define OTAGW_LIMITS_H

#define OTAGW_ID_MAX 65             /* ids: 1..64 chars of [A-Za-z0-9_.:-] */
#define OTAGW_NAME_MAX 129          /* names, 128 bytes */
#define OTAGW_VERSION_MAX 65        /* version strings, 64 bytes */
#define OTAGW_URL_MAX 3001          /* JetLinks: url <= 3000 */
#define OTAGW_SIGN_MAX 257          /* JetLinks: sign <= 256 */
#define OTAGW_SIGN_METHOD_MAX 17    /* "md5", "sha256" */
#define OTAGW_DESC_MAX 2049         /* descriptions, 2048 bytes */
#define OTAGW_REASON_MAX 1025       /* JetLinks: errorReason <= 1024 */
#define OTAGW_CODE_MAX 65           /* reply `code` */
#define OTAGW_KEY_MAX 129           /* a device secureKey, 128 bytes */
#define OTAGW_CHUNK_MAX (64 * 1024) /* largest in-band image chunk */
#define OTAGW_TRANSPORT_MAX 17      /* "tcp", "http", "serial:ttyUSB0" ... */
#define OTAGW_PROPS_MAX 16384       /* properties/parameters as JSON text */
#define OTAGW_MSG_MAX (128 * 1024)  /* one encoded message (a base64 chunk fits) */
#define OTAGW_BODY_MAX (1024 * 1024) /* one REST request body */
#define OTAGW_HEADER_MAX 8192       /* all request headers together */
#define OTAGW_PAGE_SIZE_MAX 1000    /* ?size= on lists */
#define OTAGW_PAGE_SIZE_DEFAULT 20
#define OTAGW_PUBLISH_IDS_MAX 10000 /* deviceIds in one publish */
#define OTAGW_TIMEOUT_MAX (30LL * 24 * 3600) /* timeoutSeconds */
#define OTAGW_CONFIG_LINE_MAX 1024

#endif
