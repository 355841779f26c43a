/*
 * jsonx.h - parsing JSON from outside with hard limits, on top of jansson.
 *
 * jansson alone accepts nesting up to 2048 levels and strings of any length;
 * request bodies get tighter bounds here before and after parsing.
 */
#ifndef CLSM_JSONX_H
#define CLSM_JSONX_H

#include <jansson.h>
#include <stddef.h>

struct jsonx_limits {
    int max_depth;     /* nesting of arrays and objects */
    size_t max_string; /* bytes of one string (keys included) after decoding */
    size_t max_values; /* total number of values in the document */
};

/* Limits used for API bodies: depth 16, strings 4 KiB, 1,000,000 values. */
extern const struct jsonx_limits jsonx_api_limits;

/* Parse 'len' bytes into '*out' (new reference, caller json_decref()s).
 * Duplicate object keys, NUL characters and invalid UTF-8 are rejected.
 * Returns 0, -EINVAL (not JSON) or -E2BIG (a limit hit); on error 'msg' (may
 * be NULL) receives a description with position. */
int jsonx_parse(const char *buf, size_t len, const struct jsonx_limits *lim, json_t **out,
                char *msg, size_t msglen);

/* Replace every byte of 's' that does not belong to a well-formed UTF-8
 * sequence with '?', in place, so that text quoting outside bytes (a
 * decoded URL, a cut-off message) can always become a JSON string. */
void jsonx_utf8_repair(char *s);

#endif
