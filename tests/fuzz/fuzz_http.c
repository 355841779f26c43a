/*
 * fuzz_http.c - libFuzzer target for request heads and percent-decoding.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_head h;
    const char *why = NULL;
    char *buf;

    if (size > 65536)
        return 0;
    buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    int rc = http_parse_head(buf, size, &h, &why);
    if (rc == 0) {
        /* What the server does next with an accepted head. */
        size_t pl = strlen(h.path);
        char *out = malloc(pl + 1);
        if (out)
            (void)http_unescape(h.path, pl, out, 0);
        free(out);
        if (h.query) {
            size_t ql = strlen(h.query);
            out = malloc(ql + 1);
            if (out)
                (void)http_unescape(h.query, ql, out, 1);
            free(out);
        }
        for (size_t i = 0; i < h.nheaders; i++)
            if (h.headers[i].name[0] == '\0')
                abort();
    } else if (why == NULL || rc < 400 || rc > 599) {
        abort();
    }
    free(buf);
    return 0;
}
