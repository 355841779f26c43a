/*
 * evfilter.c - event filters, their parsing and the public form of an
 * event; see evfilter.h.
 */
#include "api/evfilter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static void say(char *why, size_t len, const char *msg)
{
    if (why && len)
        snprintf(why, len, "%s", msg);
}

int evfilter_parse_seq(const char *s, int64_t *out)
{
    int64_t v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 19)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int kind_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

int evfilter_add_kind(struct evfilter *f, const char *kind, size_t len, char *why, size_t whylen)
{
    if (len == 0 || len > EVFILTER_KIND_MAX) {
        say(why, whylen, "a kind prefix has 1 to 64 characters");
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if (!kind_char(kind[i])) {
            say(why, whylen, "a kind prefix consists of A-Z a-z 0-9 . _ -");
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < f->nkinds; i++)
        if (strlen(f->kinds[i]) == len && memcmp(f->kinds[i], kind, len) == 0)
            return 0;
    if (f->nkinds == EVFILTER_KINDS) {
        say(why, whylen, "at most 16 kind prefixes");
        return -E2BIG;
    }
    memcpy(f->kinds[f->nkinds], kind, len);
    f->kinds[f->nkinds][len] = '\0';
    f->nkinds++;
    return 0;
}

int evfilter_parse_kinds(struct evfilter *f, const char *list, char *why, size_t whylen)
{
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        int rc = evfilter_add_kind(f, p, n, why, whylen);
        if (rc != 0)
            return rc;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

int evfilter_audience_has(const char *audience, const char *party)
{
    size_t n = strlen(party);
    if (n == 0 || audience == NULL)
        return 0;
    for (const char *p = audience; *p;) {
        const char *sp = strchr(p, ' ');
        size_t len = sp ? (size_t)(sp - p) : strlen(p);
        if (len == n && memcmp(p, party, n) == 0)
            return 1;
        if (sp == NULL)
            break;
        p = sp + 1;
    }
    return 0;
}

int evfilter_match(const struct evfilter *f, const char *kind, const char *audience)
{
    if (!f->admin && !evfilter_audience_has(audience, f->party))
        return 0;
    if (f->nkinds == 0)
        return 1;
    for (size_t i = 0; i < f->nkinds; i++)
        if (strncmp(kind, f->kinds[i], strlen(f->kinds[i])) == 0)
            return 1;
    return 0;
}

size_t evfilter_kind_ptrs(const struct evfilter *f, const char *ptrs[EVFILTER_KINDS])
{
    for (size_t i = 0; i < f->nkinds; i++)
        ptrs[i] = f->kinds[i];
    return f->nkinds;
}

json_t *evfilter_event_json(int64_t seq, int64_t time_ms, const char *kind, const char *subject,
                            const char *actor, const char *payload)
{
    char t[40];
    json_t *p = payload ? json_loads(payload, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (p && !json_is_object(p)) {
        json_decref(p);
        p = NULL;
    }
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:o}", "seq", (json_int_t)seq, "time",
                     time_format_ms(time_ms, t, sizeof t), "kind", kind, "subject", subject,
                     "actor", actor, "payload", p ? p : json_null());
}

char *evfilter_sse_message(int64_t seq, int64_t time_ms, const char *kind, const char *subject,
                           const char *actor, const char *payload, size_t *len)
{
    json_t *ev = evfilter_event_json(seq, time_ms, kind, subject, actor, payload);
    char *data = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (data == NULL)
        return NULL;
    int named = kind[0] != '\0' && strlen(kind) <= 256;
    for (const char *k = kind; named && *k; k++)
        named = kind_char(*k);
    size_t cap = strlen(data) + strlen(kind) + 64;
    char *msg = malloc(cap);
    if (msg) {
        int n = snprintf(msg, cap, "id: %lld\n%s%s%sdata: %s\n\n", (long long)seq,
                         named ? "event: " : "", named ? kind : "", named ? "\n" : "", data);
        if (n < 0 || (size_t)n >= cap) {
            free(msg);
            msg = NULL;
        } else {
            *len = (size_t)n;
        }
    }
    free(data);
    return msg;
}
