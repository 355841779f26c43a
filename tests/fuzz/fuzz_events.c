/*
 * fuzz_events.c - libFuzzer target for what live events and webhooks read
 * from outside (api/evfilter.h, api/webhook.h). The input is split at its
 * first two line feeds: the first line is read as a Last-Event-ID / after
 * value, the second as a ?kind= list, the rest as a webhook subscription
 * body (bounded JSON, then the subscription check). The same texts are put
 * into an event stream message. Checks what the code promises: numbers only
 * from digits, kind prefixes within bounds and of the allowed characters,
 * accepted subscriptions with an http(s) URL of printable ASCII, refusals
 * with a pointer and a reason, and stream messages that no value can add a
 * line to.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/evfilter.h"
#include "api/webhook.h"
#include "common/jsonx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *line(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p = nl ? nl + 1 : end;
    return s;
}

static void check_seq(const char *s)
{
    int64_t v = -1;
    if (evfilter_parse_seq(s, &v) != 0)
        return;
    if (v < 0 || s[0] == '\0' || strlen(s) > 19)
        abort();
    for (const char *c = s; *c; c++)
        if (*c < '0' || *c > '9')
            abort();
}

static void check_kinds(const struct evfilter *f)
{
    if (f->nkinds > EVFILTER_KINDS)
        abort();
    for (size_t i = 0; i < f->nkinds; i++) {
        size_t n = strnlen(f->kinds[i], sizeof f->kinds[i]);
        if (n == 0 || n > EVFILTER_KIND_MAX)
            abort();
        for (size_t k = 0; k < n; k++)
            if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
                       f->kinds[i][k]) == NULL)
                abort();
    }
}

static void check_spec(const char *body, size_t len)
{
    struct webhook_spec *spec = malloc(sizeof *spec);
    json_t *doc = NULL;
    char pointer[96], why[160];
    if (spec == NULL)
        abort();
    if (jsonx_parse(body, len, &jsonx_api_limits, &doc, NULL, 0) == 0) {
        int rc = webhook_spec_parse(doc, spec, pointer, sizeof pointer, why, sizeof why);
        if (rc == 0) {
            if (strncmp(spec->url, "http://", 7) != 0 && strncmp(spec->url, "https://", 8) != 0)
                abort();
            for (const char *c = spec->url; *c; c++)
                if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
                    abort();
            if (spec->has_secret && strlen(spec->secret) < WEBHOOK_SECRET_MIN)
                abort();
            check_kinds(&spec->kinds);
        } else if (why[0] == '\0' || (pointer[0] != '\0' && pointer[0] != '/')) {
            abort();
        }
        json_decref(doc);
    }
    free(spec);
}

static void check_message(const char *kind, const char *subject, const char *payload)
{
    size_t len = 0;
    char *m = evfilter_sse_message(42, 1700000000000, kind, subject, "fuzz", payload, &len);
    if (m == NULL)
        return; /* texts that are not UTF-8 */
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += m[i] == '\n';
    if (len != strlen(m) || strncmp(m, "id: 42\n", 7) != 0 || len < 2 || m[len - 1] != '\n' ||
        m[len - 2] != '\n' || strchr(m, '\r') != NULL || (lines != 3 && lines != 4))
        abort();
    free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *first = line(&p, end), *second = line(&p, end);
    struct evfilter f;
    char why[96];

    check_seq(first);
    memset(&f, 0, sizeof f);
    evfilter_parse_kinds(&f, second, why, sizeof why);
    check_kinds(&f);
    check_spec((const char *)p, (size_t)(end - p));
    char *rest = malloc((size_t)(end - p) + 1);
    if (rest == NULL)
        abort();
    memcpy(rest, p, (size_t)(end - p));
    rest[end - p] = '\0';
    check_message(second, first, rest);
    free(rest);
    free(first);
    free(second);
    return 0;
}
