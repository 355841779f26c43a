/*
 * api_requests.c - the request API (DESIGN.md §4): submitting, listing,
 * reading and cancelling switching and control requests; the state and the
 * flexibility of installations and segments. The rules are request.c's and
 * arbiter.c's; this file maps them onto HTTP.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "common/util.h"
#include "request/requests.h"
#include "store/store.h"

#define IDEM_KEY_MAX    200
#define LIST_DEFAULT    100
#define LIST_MAX        1000
#define EXECUTIONS_PAGE 1000
#define STATE_SPAN_MS   (24LL * 3600 * 1000)
#define STATE_SPAN_MAX  (7LL * 24 * 3600 * 1000)

static struct requests_who who_of(const struct api_call *c)
{
    return (struct requests_who){c->who.admin != 0, c->who.party, c->who.role};
}

/* A problem document with further members from 'doc' (stolen). */
static void problem_doc(struct api_call *c, int status, const char *slug, json_t *doc)
{
    char type[96];
    snprintf(type, sizeof type, "urn:clsm:problem:%s", slug);
    json_t *p = json_pack("{s:s, s:s, s:i, s:s}", "type", type, "title", http_reason(status),
                          "status", status, "instance", http_req_path(c->req));
    json_object_update(p, doc);
    json_decref(doc);
    char *s = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    http_add_header(c->req, "Cache-Control", "no-store");
    http_reply(c->req, status, "application/problem+json", s, s ? strlen(s) : 0);
    free(s);
}

static int parse_limit(struct api_call *c, int def, int max, int *out)
{
    const char *v = api__query(c, "limit");
    long long n = def;
    if (v && parse_ll(v, 1, max, &n) != 0) {
        api__problem(c, 400, "bad-query", "limit", NULL, "limit must be 1..%d", max);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static int parse_time_param(struct api_call *c, const char *name, int64_t def, int64_t *out)
{
    const char *v = api__query(c, name);
    *out = def;
    if (v && time_parse_ms(v, out) != 0) {
        api__problem(c, 400, "bad-query", name, NULL, "%s must be an RFC 3339 time", name);
        return -1;
    }
    return 0;
}

/* --- submit -------------------------------------------------------------------------------- */

static void answered(void *arg, int status, const char *slug, json_t *doc, const char *location)
{
    struct api_call *c = arg;
    if (location)
        http_add_header(c->req, "Location", location);
    if (slug)
        problem_doc(c, status, slug, doc);
    else
        api__json(c, status, doc);
    free(c);
}

static int idem_key_valid(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > IDEM_KEY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x21 || (unsigned char)k[i] > 0x7e)
            return 0;
    return 1;
}

void api__request_submit(struct api_call *c)
{
    json_t *body = NULL;
    struct req_spec *spec = NULL;
    struct req_error err;
    char hash[65] = "";
    const char *key = http_req_header(c->req, "Idempotency-Key");

    if (api__check_query(c, NULL, NULL) != 0)
        return;
    if (c->api->requests == NULL) {
        api__problem(c, 503, "unavailable", NULL, NULL, "requests are not available");
        return;
    }
    if (key && !idem_key_valid(key)) {
        api__problem(c, 400, "bad-header", "Idempotency-Key", NULL,
                     "Idempotency-Key must be 1..%d printable ASCII characters", IDEM_KEY_MAX);
        return;
    }
    if (api__body(c, 0, &body) != 0)
        return;
    spec = malloc(sizeof *spec);
    if (spec == NULL) {
        api__problem(c, 503, "overload", NULL, NULL, "out of memory");
        goto out;
    }
    if (request_parse(body, time_now_ms(), false, spec, &err) != 0) {
        api__problem(c, 422, "validation", NULL, err.pointer, "%s%s%s", err.pointer,
                     err.pointer[0] ? ": " : "", err.text);
        goto out;
    }
    if (key) {
        /* The same key and the same body (as JSON, whatever the spacing or
         * member order) give the first answer. */
        char *canon = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
        uint8_t h[TOKEN_HASH_LEN];
        if (canon == NULL) {
            api__problem(c, 503, "overload", NULL, NULL, "out of memory");
            goto out;
        }
        token_hash(canon, strlen(canon), h);
        hex_encode(h, sizeof h, hash);
        free(canon);
    }
    struct api_call *keep = malloc(sizeof *keep);
    if (keep == NULL) {
        api__problem(c, 503, "overload", NULL, NULL, "out of memory");
        goto out;
    }
    memcpy(keep, c, sizeof *keep);
    struct requests_who who = who_of(keep);
    if (requests_submit(c->api->requests, &who, spec, key, hash, answered, keep) != 0) {
        free(keep);
        api__problem(c, 503, "overload", NULL, NULL, "the request could not be taken");
    }
out:
    free(spec);
    json_decref(body);
}

/* --- read, list, cancel ---------------------------------------------------------------------- */

void api__request_get(struct api_call *c)
{
    static const char *const allowed[] = {"after", "limit", NULL};
    json_t *doc = NULL;
    int limit;
    if (api__check_query(c, allowed, NULL) != 0 ||
        parse_limit(c, EXECUTIONS_PAGE, EXECUTIONS_PAGE, &limit) != 0)
        return;
    if (c->api->requests == NULL) {
        api__problem(c, 503, "unavailable", NULL, NULL, "requests are not available");
        return;
    }
    struct requests_who who = who_of(c);
    int rc =
        requests_get(c->api->requests, &who, c->params[0], api__query(c, "after"), limit, &doc);
    if (rc == -ENOENT)
        api__problem(c, 404, "not-found", NULL, NULL, "no request with id \"%s\"", c->params[0]);
    else if (rc != 0)
        api__problem(c, 503, "store-unavailable", NULL, NULL, "the store does not answer");
    else
        api__json(c, 200, doc);
}

void api__request_list(struct api_call *c)
{
    static const char *const allowed[] = {"state", "party", "before", "limit", NULL};
    json_t *doc = NULL;
    long long before = 0;
    int limit;
    const char *state = api__query(c, "state"), *party = api__query(c, "party"),
               *b = api__query(c, "before");
    if (api__check_query(c, allowed, NULL) != 0 ||
        parse_limit(c, LIST_DEFAULT, LIST_MAX, &limit) != 0)
        return;
    if (c->api->requests == NULL) {
        api__problem(c, 503, "unavailable", NULL, NULL, "requests are not available");
        return;
    }
    if (b && parse_ll(b, 1, INT64_MAX, &before) != 0) {
        api__problem(c, 400, "bad-query", "before", NULL, "before must be a positive seq");
        return;
    }
    if (state) {
        int ok = 0;
        for (int i = 0; i < 12 && !ok; i++)
            ok = strcmp(state, requests_state_name(i)) == 0;
        if (!ok) {
            api__problem(c, 400, "bad-query", "state", NULL, "state is no request state");
            return;
        }
    }
    if (party && !c->who.admin) {
        api__problem(c, 400, "bad-query", "party", NULL,
                     "only the admin filters by party; others see their own requests");
        return;
    }
    struct requests_who who = who_of(c);
    if (requests_list(c->api->requests, &who, party, state, before, limit, &doc) != 0)
        api__problem(c, 503, "store-unavailable", NULL, NULL, "the store does not answer");
    else
        api__json(c, 200, doc);
}

void api__request_cancel(struct api_call *c)
{
    if (api__check_query(c, NULL, NULL) != 0)
        return;
    if (c->api->requests == NULL) {
        api__problem(c, 503, "unavailable", NULL, NULL, "requests are not available");
        return;
    }
    struct api_call *keep = malloc(sizeof *keep);
    if (keep == NULL) {
        api__problem(c, 503, "overload", NULL, NULL, "out of memory");
        return;
    }
    memcpy(keep, c, sizeof *keep);
    struct requests_who who = who_of(keep);
    if (requests_cancel(c->api->requests, &who, c->params[0], answered, keep) != 0) {
        free(keep);
        api__problem(c, 503, "overload", NULL, NULL, "out of memory");
    }
}

/* --- installations and segments ----------------------------------------------------------------
 */

/* 0 when the caller may see entity 'id' of kind 'k'; else answered 404. */
static int visible(struct api_call *c, enum reg_kind_id k, const char *id)
{
    const struct reg_kind *kind = &reg_kinds[k];
    struct store_scope sc = api__scope(c, kind);
    json_t *o = NULL;
    int rc = reg_id_valid(kind, id) ? store_reg_get(c->api->store, kind, id, &sc, &o) : -ENOENT;
    json_decref(o);
    if (rc == 0)
        return 0;
    if (rc == -ENOENT)
        api__problem(c, 404, "not-found", NULL, NULL, "no %s with id \"%s\"", kind->name, id);
    else
        api__problem(c, 503, "store-unavailable", NULL, NULL, "the store does not answer");
    return -1;
}

void api__installation_state(struct api_call *c)
{
    static const char *const allowed[] = {"from", "to", NULL};
    int64_t now = time_now_ms(), from, to;
    json_t *doc = NULL;
    if (api__check_query(c, allowed, NULL) != 0 || parse_time_param(c, "from", now, &from) != 0 ||
        parse_time_param(c, "to", from + STATE_SPAN_MS, &to) != 0)
        return;
    if (to <= from || to - from > STATE_SPAN_MAX) {
        api__problem(c, 400, "bad-query", "to", NULL, "to must lie after from, at most 7 days");
        return;
    }
    if (c->api->requests == NULL) {
        api__problem(c, 503, "unavailable", NULL, NULL, "requests are not available");
        return;
    }
    if (visible(c, REG_INSTALLATION, c->params[0]) != 0)
        return;
    int rc = requests_installation_state(c->api->requests, c->params[0], from, to, &doc);
    if (rc != 0)
        api__problem(c, 503, "store-unavailable", NULL, NULL,
                     "the installation's facts are "
                     "not available");
    else
        api__json(c, 200, doc);
}

static void flexibility(struct api_call *c, enum reg_kind_id k)
{
    json_t *doc = NULL;
    if (api__check_query(c, NULL, NULL) != 0)
        return;
    if (c->api->requests == NULL) {
        api__problem(c, 503, "unavailable", NULL, NULL, "requests are not available");
        return;
    }
    if (visible(c, k, c->params[0]) != 0)
        return;
    struct requests_who who = who_of(c);
    int rc = requests_flexibility(c->api->requests, &who, k == REG_SEGMENT, c->params[0], &doc);
    if (rc == -ENOENT)
        api__problem(c, 404, "not-found", NULL, NULL, "no %s with id \"%s\"", reg_kinds[k].name,
                     c->params[0]);
    else if (rc != 0)
        api__problem(c, 503, "store-unavailable", NULL, NULL, "the store does not answer");
    else
        api__json(c, 200, doc);
}

void api__installation_flexibility(struct api_call *c)
{
    flexibility(c, REG_INSTALLATION);
}

void api__segment_flexibility(struct api_call *c)
{
    flexibility(c, REG_SEGMENT);
}
