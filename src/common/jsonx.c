/*
 * jsonx.c - bounded JSON parsing; see jsonx.h.
 */
#include "common/jsonx.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const struct jsonx_limits jsonx_api_limits = {16, 4096, 1000000};

/* A pass over the raw bytes that bounds nesting before jansson recurses. */
static int scan_depth(const char *buf, size_t len, int max_depth, size_t *where)
{
    int depth = 0, in_str = 0, esc = 0;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                *where = i;
                return -E2BIG;
            }
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 0;
}

static int walk(json_t *j, const struct jsonx_limits *lim, size_t *count)
{
    const char *key;
    json_t *v;
    size_t i;

    if (++*count > lim->max_values)
        return -E2BIG;
    switch (json_typeof(j)) {
    case JSON_STRING:
        return json_string_length(j) > lim->max_string ? -E2BIG : 0;
    case JSON_ARRAY:
        json_array_foreach(j, i, v)
        {
            int rc = walk(v, lim, count);
            if (rc)
                return rc;
        }
        return 0;
    case JSON_OBJECT:
        json_object_foreach(j, key, v)
        {
            if (strlen(key) > lim->max_string)
                return -E2BIG;
            int rc = walk(v, lim, count);
            if (rc)
                return rc;
        }
        return 0;
    default:
        return 0;
    }
}

/* Length of the well-formed UTF-8 sequence at 's', or 0 (RFC 3629). */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0; /* overlong */
    else if (c == 0xed)
        hi = 0x9f; /* surrogates */
    else if (c == 0xf0)
        lo = 0x90; /* overlong */
    else if (c == 0xf4)
        hi = 0x8f; /* above U+10FFFF */
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return n;
}

void jsonx_utf8_repair(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = utf8_seq(p);
        if (n == 0) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

int jsonx_parse(const char *buf, size_t len, const struct jsonx_limits *lim, json_t **out,
                char *msg, size_t msglen)
{
    json_error_t jerr;
    size_t where = 0, count = 0;
    json_t *j;

    *out = NULL;
    if (scan_depth(buf, len, lim->max_depth, &where) != 0) {
        if (msg)
            snprintf(msg, msglen, "nesting deeper than %d at byte %zu", lim->max_depth, where);
        return -E2BIG;
    }
    j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (j == NULL) {
        if (msg)
            snprintf(msg, msglen, "%s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return -EINVAL;
    }
    if (walk(j, lim, &count) != 0) {
        if (msg)
            snprintf(msg, msglen, "document exceeds limits (strings up to %zu bytes, %zu values)",
                     lim->max_string, lim->max_values);
        json_decref(j);
        return -E2BIG;
    }
    *out = j;
    return 0;
}
