/*
 * webhook.c - webhook subscriptions, their deliveries over libcurl's multi
 * interface on the event loop, and the group-commit writer that keeps
 * their cursors; see webhook.h and docs/events.md.
 */
#include "api/webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "common/curlev.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "common/util.h"
#include "store/commit.h"
#include "store/store.h"

#define SCAN_ROWS   10000 /* events examined by one store read */
#define SCANS_MAX   8     /* store reads for one subscription per pump */
#define FLUSH_S     10    /* cursors moved past unwanted events are written this often */
#define CONNECT_MAX 10    /* seconds to connect, at most */

enum hook_state { HOOK_ACTIVE, HOOK_FAILING };
static const char *const state_names[] = {"active", "failing"};

struct xfer;

struct hook {
    char id[24];
    char party[32]; /* "" for the configured admin token */
    int admin;
    char url[WEBHOOK_URL_MAX + 1];
    struct evfilter filter;
    char secret[WEBHOOK_SECRET_MAX + 1];
    int has_secret;
    int64_t created_at;
    int64_t cursor; /* last event handled: delivered, or not wanted */
    enum hook_state state;
    int failures; /* in a row */
    char last_error[256];
    int64_t last_attempt_at, last_success_at, failing_since; /* ms; 0: never / not failing */
    int64_t next_try_ms;                                     /* in back-off until then */
    int backoff_s;
    struct xfer *xfer; /* the delivery in flight */
    int dirty;         /* progress to write with the next commit */
    int lazy;          /* cursor moved without a delivery; written with the next flush */
    int writing;       /* written by the open commit */
    int gone;          /* deleted; the delivery in flight frees it */
    struct hook *next;
};

struct xfer {
    struct webhooks *w;
    struct hook *h;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    size_t body_len, nevents;
    int64_t first, last, cursor_after;
    char answer[256];
    size_t answer_len, answer_total;
    int too_big;
    char errbuf[CURL_ERROR_SIZE];
};

struct webhooks {
    struct event_base *base;
    struct store *store;
    struct audit *audit;
    struct committer *committer;
    struct webhook_config cfg;
    struct curlev *http;
    struct event *pump_ev, *retry_timer, *flush_timer;
    struct hook *hooks; /* ordered by id */
    int nhooks, in_flight, dirty;
    uint64_t delivered_events, deliveries, failures;
};

/* --- the subscription body --------------------------------------------------- */

static int printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static int url_fail(char *why, size_t wlen, const char *msg)
{
    snprintf(why, wlen, "url: %s", msg);
    return -EINVAL;
}

/* An http(s) URL with a host, without credentials or fragment. */
static int check_url(const char *url, char *why, size_t wlen)
{
    char *scheme = NULL, *host = NULL, *part = NULL;
    int rc = 0;

    if (strlen(url) > WEBHOOK_URL_MAX)
        return url_fail(why, wlen, "at most 2048 bytes");
    if (!printable_ascii(url))
        return url_fail(why, wlen, "printable ASCII only (percent-encode the rest)");
    /* libcurl forgives "https:/host"; a subscription should not need it. */
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return url_fail(why, wlen, "must start with http:// or https://");
    CURLU *u = curl_url();
    if (u == NULL)
        return url_fail(why, wlen, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        rc = url_fail(why, wlen, "not an absolute URL with a host");
    } else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        rc = url_fail(why, wlen, "the scheme must be http or https");
    } else if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK ||
               curl_url_get(u, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK) {
        rc = url_fail(why, wlen, "no user name or password in the URL (use a secret)");
    } else if (curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK) {
        rc = url_fail(why, wlen, "no fragment (#...)");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(part);
    curl_url_cleanup(u);
    return rc;
}

static int spec_fail(char *pointer, size_t plen, const char *ptr, char *why, size_t wlen,
                     const char *msg)
{
    snprintf(pointer, plen, "%s", ptr);
    if (msg)
        snprintf(why, wlen, "%s", msg);
    return -EINVAL;
}

int webhook_spec_parse(const json_t *body, struct webhook_spec *out, char *pointer, size_t plen,
                       char *why, size_t wlen)
{
    const char *key;
    json_t *v;

    memset(out, 0, sizeof *out);
    if (!json_is_object(body))
        return spec_fail(pointer, plen, "", why, wlen, "the body must be a JSON object");
    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, "url") != 0 && strcmp(key, "kinds") != 0 && strcmp(key, "secret") != 0) {
            char ptr[80];
            snprintf(ptr, sizeof ptr, "/%.64s", key);
            return spec_fail(pointer, plen, ptr, why, wlen,
                             "unknown member; give url, kinds and secret");
        }
    }
    v = json_object_get(body, "url");
    if (!json_is_string(v))
        return spec_fail(pointer, plen, "/url", why, wlen, "url is required (a string)");
    if (check_url(json_string_value(v), why, wlen) != 0)
        return spec_fail(pointer, plen, "/url", why, wlen, NULL);
    str_copy(out->url, sizeof out->url, json_string_value(v));
    v = json_object_get(body, "kinds");
    if (v && !json_is_array(v))
        return spec_fail(pointer, plen, "/kinds", why, wlen,
                         "kinds must be an array of kind prefixes");
    for (size_t i = 0; v && i < json_array_size(v); i++) {
        const json_t *k = json_array_get(v, i);
        char ptr[32], msg[96] = "a kind prefix is a string";
        snprintf(ptr, sizeof ptr, "/kinds/%zu", i);
        if (!json_is_string(k) || evfilter_add_kind(&out->kinds, json_string_value(k),
                                                    json_string_length(k), msg, sizeof msg) != 0)
            return spec_fail(pointer, plen, ptr, why, wlen, msg);
    }
    v = json_object_get(body, "secret");
    if (v) {
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        size_t n = s ? strlen(s) : 0;
        if (s == NULL || n < WEBHOOK_SECRET_MIN || n > WEBHOOK_SECRET_MAX || !printable_ascii(s) ||
            n != json_string_length(v))
            return spec_fail(pointer, plen, "/secret", why, wlen,
                             "secret must be 16 to 256 printable ASCII characters");
        str_copy(out->secret, sizeof out->secret, s);
        out->has_secret = 1;
    }
    return 0;
}

void webhook_sign(const char *secret, const void *body, size_t len, char out[72])
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), body, len, mac, &n);
    memcpy(out, "sha256=", 7);
    hex_encode(mac, n > 32 ? 32 : n, out + 7);
}

/* --- subscriptions in memory --------------------------------------------------- */

static void schedule_pump(struct webhooks *w)
{
    event_active(w->pump_ev, EV_TIMEOUT, 0);
}

static void mark_dirty(struct webhooks *w, struct hook *h)
{
    h->dirty = 1;
    w->dirty = 1;
    commit_want(w->committer);
}

static void link_hook(struct webhooks *w, struct hook *h)
{
    struct hook **pp = &w->hooks;
    while (*pp && strcmp((*pp)->id, h->id) < 0)
        pp = &(*pp)->next;
    h->next = *pp;
    *pp = h;
    w->nhooks++;
}

static void unlink_hook(struct webhooks *w, struct hook *h)
{
    for (struct hook **pp = &w->hooks; *pp; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            h->next = NULL;
            w->nhooks--;
            return;
        }
    }
}

static struct hook *find_hook(struct webhooks *w, const char *id)
{
    for (struct hook *h = w->hooks; h; h = h->next)
        if (strcmp(h->id, id) == 0)
            return h;
    return NULL;
}

/* Drop a subscription: now, or when its delivery in flight ends. */
static void drop_hook(struct webhooks *w, struct hook *h)
{
    unlink_hook(w, h);
    if (h->xfer)
        h->gone = 1;
    else
        free(h);
}

static json_t *time_or_null(int64_t ms)
{
    char t[40];
    return ms ? json_string(time_format_ms(ms, t, sizeof t)) : json_null();
}

static json_t *hook_kinds(const struct hook *h)
{
    json_t *a = json_array();
    for (size_t i = 0; i < h->filter.nkinds; i++)
        json_array_append_new(a, json_string(h->filter.kinds[i]));
    return a;
}

static json_t *hook_public(const struct hook *h)
{
    json_t *o = json_pack("{s:s, s:o, s:s, s:o, s:b, s:o, s:s, s:I, s:i}", "id", h->id, "party",
                          h->party[0] ? json_string(h->party) : json_null(), "url", h->url, "kinds",
                          hook_kinds(h), "has_secret", h->has_secret, "created_at",
                          time_or_null(h->created_at), "state", state_names[h->state], "cursor",
                          (json_int_t)h->cursor, "failures", h->failures);
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "last_error",
                        h->last_error[0] ? json_string(h->last_error) : json_null());
    json_object_set_new(o, "last_attempt_at", time_or_null(h->last_attempt_at));
    json_object_set_new(o, "last_success_at", time_or_null(h->last_success_at));
    json_object_set_new(o, "failing_since", time_or_null(h->failing_since));
    return o;
}

static int64_t row_int(const json_t *row, const char *name)
{
    return (int64_t)json_integer_value(json_object_get(row, name));
}

static struct hook *hook_from_row(const json_t *row)
{
    struct hook *h = calloc(1, sizeof *h);
    const json_t *kinds = json_object_get(row, "kinds"), *k;
    size_t i;
    if (h == NULL)
        return NULL;
    str_copy(h->id, sizeof h->id, json_string_value(json_object_get(row, "id")));
    if (json_is_string(json_object_get(row, "party")))
        str_copy(h->party, sizeof h->party, json_string_value(json_object_get(row, "party")));
    h->admin = json_is_true(json_object_get(row, "admin"));
    str_copy(h->url, sizeof h->url, json_string_value(json_object_get(row, "url")));
    h->filter.admin = h->admin;
    str_copy(h->filter.party, sizeof h->filter.party, h->party);
    json_array_foreach(kinds, i, k)
    {
        if (json_is_string(k))
            evfilter_add_kind(&h->filter, json_string_value(k), json_string_length(k), NULL, 0);
    }
    if (json_is_string(json_object_get(row, "secret"))) {
        str_copy(h->secret, sizeof h->secret, json_string_value(json_object_get(row, "secret")));
        h->has_secret = h->secret[0] != '\0';
    }
    h->created_at = row_int(row, "created_at");
    h->cursor = row_int(row, "cursor");
    const char *st = json_string_value(json_object_get(row, "state"));
    h->state = st && strcmp(st, "failing") == 0 ? HOOK_FAILING : HOOK_ACTIVE;
    h->failures = (int)row_int(row, "failures");
    if (json_is_string(json_object_get(row, "last_error")))
        str_copy(h->last_error, sizeof h->last_error,
                 json_string_value(json_object_get(row, "last_error")));
    h->last_attempt_at = row_int(row, "last_attempt_at");
    h->last_success_at = row_int(row, "last_success_at");
    h->failing_since = row_int(row, "failing_since");
    return h;
}

static void audit_hook(struct webhooks *w, const struct hook *h, const char *kind,
                       const char *actor)
{
    char subject[48];
    const char *aud[1] = {h->party[0] ? h->party : NULL};
    snprintf(subject, sizeof subject, "webhook:%s", h->id);
    json_t *p = json_pack("{s:s, s:s, s:o}", "id", h->id, "url", h->url, "kinds", hook_kinds(h));
    if (h->failures && p) {
        json_object_set_new(p, "failures", json_integer(h->failures));
        json_object_set_new(p, "last_error", json_string(h->last_error));
    }
    if (p)
        audit_append_to(w->audit, kind, subject, actor, aud, 1, p);
}

/* --- deliveries ---------------------------------------------------------------- */

static size_t on_answer(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t add = size * n;
    x->answer_total += add;
    if (x->answer_total > WEBHOOK_ANSWER_MAX) {
        x->too_big = 1;
        return 0;
    }
    size_t room = sizeof x->answer - 1 - x->answer_len;
    size_t take = add < room ? add : room;
    memcpy(x->answer + x->answer_len, p, take);
    x->answer_len += take;
    x->answer[x->answer_len] = '\0';
    return add;
}

static void xfer_free(struct xfer *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x);
}

/* The events of one batch as a JSON array, within batch_max and
 * batch_bytes (a first event larger than batch_bytes goes alone). */
static int build_batch(struct webhooks *w, struct xfer *x, const json_t *items, int64_t upto)
{
    size_t cap = 4096, len = 1, i;
    const json_t *it;
    char *buf = malloc(cap);
    int cut = 0;

    if (buf == NULL)
        return -ENOMEM;
    buf[0] = '[';
    json_array_foreach(items, i, it)
    {
        json_t *ev = evfilter_event_json(row_int(it, "seq"), row_int(it, "time_ms"),
                                         json_string_value(json_object_get(it, "kind")),
                                         json_string_value(json_object_get(it, "subject")),
                                         json_string_value(json_object_get(it, "actor")),
                                         json_string_value(json_object_get(it, "payload")));
        char *s = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
        json_decref(ev);
        size_t n = s ? strlen(s) : 0;
        if (s == NULL || (x->nevents > 0 && len + n + 2 > w->cfg.batch_bytes)) {
            free(s);
            cut = 1;
            break;
        }
        if (len + n + 2 > cap) {
            while (len + n + 2 > cap)
                cap *= 2;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                free(s);
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
        }
        if (x->nevents > 0)
            buf[len++] = ',';
        memcpy(buf + len, s, n);
        len += n;
        free(s);
        if (x->nevents++ == 0)
            x->first = row_int(it, "seq");
        x->last = row_int(it, "seq");
    }
    if (x->nevents == 0) {
        free(buf);
        return -ENOMEM;
    }
    buf[len++] = ']';
    buf[len] = '\0';
    x->body = buf;
    x->body_len = len;
    /* All of a short page: everything up to 'upto' is handled. */
    x->cursor_after = cut || json_array_size(items) == (size_t)w->cfg.batch_max ? x->last : upto;
    return 0;
}

static int start_xfer(struct webhooks *w, struct hook *h, const json_t *items, int64_t upto)
{
    struct xfer *x = calloc(1, sizeof *x);
    char hdr[160], sig[72];

    if (x == NULL)
        return -ENOMEM;
    x->w = w;
    x->h = h;
    if (build_batch(w, x, items, upto) != 0 || (x->easy = curl_easy_init()) == NULL) {
        xfer_free(x);
        return -ENOMEM;
    }
    x->headers = curl_slist_append(NULL, "Content-Type: application/json");
    x->headers = curl_slist_append(x->headers, "User-Agent: clsmd/" CLSM_VERSION);
    x->headers = curl_slist_append(x->headers, "Expect:");
    snprintf(hdr, sizeof hdr, "X-Clsm-Webhook: %s", h->id);
    x->headers = curl_slist_append(x->headers, hdr);
    snprintf(hdr, sizeof hdr, "X-Clsm-Seq: %lld-%lld", (long long)x->first, (long long)x->last);
    x->headers = curl_slist_append(x->headers, hdr);
    if (h->has_secret) {
        webhook_sign(h->secret, x->body, x->body_len, sig);
        snprintf(hdr, sizeof hdr, "X-Clsm-Signature: %s", sig);
        x->headers = curl_slist_append(x->headers, hdr);
    }
    curl_easy_setopt(x->easy, CURLOPT_URL, h->url);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, (long)w->cfg.timeout_s);
    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT,
                     (long)(w->cfg.timeout_s < CONNECT_MAX ? w->cfg.timeout_s : CONNECT_MAX));
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L);
    if (curlev_add(w->http, x->easy) != 0) {
        xfer_free(x);
        return -ENOMEM;
    }
    h->xfer = x;
    w->in_flight++;
    return 0;
}

/* Send the next batch of 'h', reading past events it does not want. */
static void deliver_next(struct webhooks *w, struct hook *h, int64_t last)
{
    const char *kinds[EVFILTER_KINDS];
    struct store_event_filter f = {
        .party = h->admin ? NULL : h->party,
        .kinds = kinds,
        .nkinds = evfilter_kind_ptrs(&h->filter, kinds),
        .limit = w->cfg.batch_max,
    };
    for (int scans = 0; scans < SCANS_MAX && h->cursor < last; scans++) {
        json_t *items = NULL;
        f.after = h->cursor;
        f.upto = last - h->cursor > SCAN_ROWS ? h->cursor + SCAN_ROWS : last;
        int rc = store_event_list(w->store, &f, &items);
        if (rc != 0) {
            LOG(LOG_ERROR, "webhook: reading events failed", LOG_S("webhook", h->id),
                LOG_S("error", store_errmsg(w->store)));
            h->next_try_ms = time_now_ms() + 1000;
            return;
        }
        if (json_array_size(items) == 0) {
            json_decref(items);
            h->cursor = f.upto;
            h->lazy = 1;
            continue;
        }
        rc = start_xfer(w, h, items, f.upto);
        json_decref(items);
        if (rc != 0) {
            LOG(LOG_ERROR, "webhook: cannot start a delivery", LOG_S("webhook", h->id),
                LOG_S("error", strerror(-rc)));
            h->next_try_ms = time_now_ms() + 1000;
        }
        return;
    }
    if (h->cursor < last)
        schedule_pump(w); /* a long stretch of unwanted events: go on later */
}

static void pump(struct webhooks *w)
{
    int64_t now = time_now_ms(), last = audit_last_seq(w->audit), due = 0;
    for (struct hook *h = w->hooks; h; h = h->next) {
        if (h->xfer || h->cursor >= last)
            continue;
        if (h->next_try_ms > now) {
            if (due == 0 || h->next_try_ms < due)
                due = h->next_try_ms;
            continue;
        }
        deliver_next(w, h, last);
        if (!h->xfer && h->next_try_ms > now && (due == 0 || h->next_try_ms < due))
            due = h->next_try_ms;
    }
    if (due) {
        int64_t ms = due - now;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        event_add(w->retry_timer, &tv);
    }
}

static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

/* What went wrong, in a line: the curl error, or the status and the start
 * of the answer. */
static void describe_failure(const struct xfer *x, CURLcode result, long status, char *out,
                             size_t len)
{
    if (x->too_big) {
        snprintf(out, len, "the answer exceeded %d bytes", WEBHOOK_ANSWER_MAX);
    } else if (result != CURLE_OK) {
        snprintf(out, len, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(result));
    } else {
        char body[128];
        size_t n = 0;
        for (size_t i = 0; i < x->answer_len && n + 1 < sizeof body; i++)
            body[n++] = (unsigned char)x->answer[i] < 0x20 ? ' ' : x->answer[i];
        body[n] = '\0';
        snprintf(out, len, "HTTP %ld%s%s", status, n ? ": " : "", body);
    }
    jsonx_utf8_repair(out);
}

static void delivered(struct webhooks *w, struct hook *h, const struct xfer *x, int64_t now)
{
    h->cursor = x->cursor_after > h->cursor ? x->cursor_after : h->cursor;
    h->last_success_at = now;
    h->next_try_ms = 0;
    h->backoff_s = 0;
    w->deliveries++;
    w->delivered_events += x->nevents;
    LOG(LOG_DEBUG, "webhook delivered", LOG_S("webhook", h->id), LOG_I("first", x->first),
        LOG_I("last", x->last), LOG_I("events", (long long)x->nevents));
    if (h->state == HOOK_FAILING)
        LOG(LOG_INFO, "webhook recovered", LOG_S("webhook", h->id), LOG_I("failures", h->failures));
    int recovered = h->state == HOOK_FAILING;
    h->state = HOOK_ACTIVE;
    h->failures = 0;
    h->failing_since = 0;
    h->last_error[0] = '\0';
    if (recovered)
        audit_hook(w, h, "webhook.recovered", "system");
}

static void failed(struct webhooks *w, struct hook *h, const char *why, int64_t now)
{
    w->failures++;
    h->failures++;
    str_copy(h->last_error, sizeof h->last_error, why);
    if (h->failing_since == 0)
        h->failing_since = now;
    h->backoff_s = h->backoff_s ? h->backoff_s * 2 : 1;
    if (h->backoff_s > w->cfg.retry_max_s)
        h->backoff_s = w->cfg.retry_max_s;
    h->next_try_ms = now + h->backoff_s * 1000LL;
    LOG(LOG_INFO, "webhook delivery failed; retrying", LOG_S("webhook", h->id), LOG_S("error", why),
        LOG_I("failures", h->failures), LOG_I("retry_in_s", h->backoff_s));
    if (h->state == HOOK_ACTIVE && now - h->failing_since >= w->cfg.failing_after_s * 1000LL) {
        h->state = HOOK_FAILING;
        LOG(LOG_WARN, "webhook failing", LOG_S("webhook", h->id), LOG_S("url", h->url),
            LOG_I("failures", h->failures), LOG_S("error", why));
        audit_hook(w, h, "webhook.failing", "system");
    }
}

static void xfer_done(struct webhooks *w, struct xfer *x, CURLcode result)
{
    struct hook *h = x->h;
    long status = 0;
    int64_t now = time_now_ms();

    w->in_flight--;
    h->xfer = NULL;
    if (h->gone) {
        free(h);
        xfer_free(x);
        return;
    }
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    h->last_attempt_at = now;
    if (result == CURLE_OK && !x->too_big && status >= 200 && status < 300) {
        delivered(w, h, x, now);
    } else {
        char why[256];
        describe_failure(x, result, status, why, sizeof why);
        failed(w, h, why, now);
    }
    mark_dirty(w, h);
    xfer_free(x);
    schedule_pump(w);
}

/* A delivery ended (curlev.h). */
static void on_done(void *arg, CURL *easy, CURLcode result)
{
    struct xfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    xfer_done(arg, x, result);
}

/* --- progress through the group commit --------------------------------------------- */

static int hooks_write(void *arg)
{
    struct webhooks *w = arg;
    if (!w->dirty)
        return 0;
    for (struct hook *h = w->hooks; h; h = h->next) {
        if (!h->dirty)
            continue;
        struct store_webhook_state st = {
            h->id,
            h->cursor,
            state_names[h->state],
            h->failures,
            h->last_error[0] ? h->last_error : NULL,
            h->last_attempt_at,
            h->last_success_at,
            h->failing_since,
        };
        int rc = store_webhook_progress(w->store, &st);
        if (rc == -ENOENT)
            h->gone = 1; /* deleted with its party */
        else if (rc != 0)
            return rc;
        h->writing = 1;
    }
    return 0;
}

static void hooks_done(void *arg, int rc)
{
    struct webhooks *w = arg;
    if (!w->dirty)
        return;
    int still = 0;
    for (struct hook *h = w->hooks, *next; h; h = next) {
        next = h->next;
        if (h->writing && rc == 0)
            h->dirty = h->lazy = 0;
        h->writing = 0;
        still |= h->dirty;
        if (h->gone && rc == 0) {
            LOG(LOG_INFO, "webhook removed with its party", LOG_S("webhook", h->id));
            h->gone = 0;
            drop_hook(w, h);
        }
    }
    w->dirty = still;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct webhooks *w = arg;
    (void)fd;
    (void)what;
    for (struct hook *h = w->hooks; h; h = h->next)
        if (h->lazy && !h->dirty)
            mark_dirty(w, h);
}

/* --- public -------------------------------------------------------------------------- */

static int load(struct webhooks *w)
{
    json_t *rows = NULL, *row;
    size_t i;
    int rc = store_webhook_all(w->store, &rows);
    if (rc != 0)
        return rc;
    json_array_foreach(rows, i, row)
    {
        struct hook *h = hook_from_row(row);
        if (h == NULL) {
            json_decref(rows);
            return -ENOMEM;
        }
        link_hook(w, h);
    }
    json_decref(rows);
    return 0;
}

struct webhooks *webhooks_new(struct event_base *base, struct store *store, struct audit *audit,
                              struct committer *committer, const struct webhook_config *cfg)
{
    struct webhooks *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->base = base;
    w->store = store;
    w->audit = audit;
    w->committer = committer;
    w->cfg = *cfg;
    w->http = curlev_new(base, on_done, w);
    w->pump_ev = event_new(base, -1, 0, pump_cb, w);
    w->retry_timer = evtimer_new(base, pump_cb, w);
    w->flush_timer = event_new(base, -1, EV_PERSIST, flush_cb, w);
    struct commit_writer cw = {hooks_write, hooks_done, w};
    if (!w->http || !w->pump_ev || !w->retry_timer || !w->flush_timer || load(w) != 0 ||
        commit_add(committer, &cw) != 0) {
        webhooks_free(w);
        return NULL;
    }
    struct timeval tv = {FLUSH_S, 0};
    event_add(w->flush_timer, &tv);
    if (w->hooks)
        schedule_pump(w); /* what was not delivered before the restart */
    return w;
}

void webhooks_free(struct webhooks *w)
{
    if (w == NULL)
        return;
    while (w->hooks) {
        struct hook *h = w->hooks;
        w->hooks = h->next;
        if (h->xfer) {
            curlev_remove(w->http, h->xfer->easy);
            xfer_free(h->xfer);
        }
        free(h);
    }
    curlev_free(w->http);
    if (w->pump_ev)
        event_free(w->pump_ev);
    if (w->retry_timer)
        event_free(w->retry_timer);
    if (w->flush_timer)
        event_free(w->flush_timer);
    free(w);
}

void webhooks_event(struct webhooks *w, const struct audit_event *ev)
{
    int wake = 0;
    for (struct hook *h = w->hooks; h; h = h->next) {
        /* Caught up and not interested: move on without reading the store. */
        if (!h->xfer && h->next_try_ms == 0 && h->cursor == ev->seq - 1 &&
            !evfilter_match(&h->filter, ev->kind, ev->audience)) {
            h->cursor = ev->seq;
            h->lazy = 1;
        } else if (!h->xfer) {
            wake = 1;
        }
    }
    if (wake)
        schedule_pump(w);
}

int webhooks_create(struct webhooks *w, const struct webhook_spec *spec, const char *party,
                    int admin, json_t **out)
{
    uint8_t rnd[8];
    int owned = 0;
    const char *owner = party ? party : "";

    *out = NULL;
    for (struct hook *h = w->hooks; h; h = h->next)
        owned += strcmp(h->party, owner) == 0;
    if (owned >= w->cfg.max_per_party)
        return -EDQUOT;
    struct hook *h = calloc(1, sizeof *h);
    if (h == NULL || RAND_bytes(rnd, sizeof rnd) != 1) {
        free(h);
        return -ENOMEM;
    }
    memcpy(h->id, "wh-", 3);
    hex_encode(rnd, sizeof rnd, h->id + 3);
    str_copy(h->party, sizeof h->party, owner);
    h->admin = admin;
    str_copy(h->url, sizeof h->url, spec->url);
    h->filter = spec->kinds;
    h->filter.admin = admin;
    str_copy(h->filter.party, sizeof h->filter.party, owner);
    if (spec->has_secret) {
        str_copy(h->secret, sizeof h->secret, spec->secret);
        h->has_secret = 1;
    }
    h->created_at = time_now_ms();
    h->cursor = audit_last_seq(w->audit);
    json_t *kinds = hook_kinds(h);
    char *kinds_text = kinds ? json_dumps(kinds, JSON_COMPACT) : NULL;
    json_decref(kinds);
    struct store_webhook row = {
        h->id, party,         h->url,   kinds_text, spec->has_secret ? h->secret : NULL,
        admin, h->created_at, h->cursor};
    int rc = kinds_text ? store_webhook_insert(w->store, &row) : -ENOMEM;
    free(kinds_text);
    if (rc != 0) {
        free(h);
        return rc;
    }
    link_hook(w, h);
    audit_hook(w, h, "webhook.created", party ? party : "admin");
    LOG(LOG_INFO, "webhook created", LOG_S("webhook", h->id), LOG_S("party", owner),
        LOG_S("url", h->url));
    *out = hook_public(h);
    return 0;
}

int webhooks_delete(struct webhooks *w, const char *id, const char *party, int admin)
{
    struct hook *h = find_hook(w, id);
    if (h == NULL || (!admin && strcmp(h->party, party ? party : "") != 0))
        return -ENOENT;
    int rc = store_webhook_delete(w->store, id);
    if (rc != 0 && rc != -ENOENT)
        return rc;
    audit_hook(w, h, "webhook.deleted", party && party[0] ? party : "admin");
    LOG(LOG_INFO, "webhook deleted", LOG_S("webhook", h->id));
    drop_hook(w, h);
    return 0;
}

void webhooks_forget_party(struct webhooks *w, const char *party)
{
    for (struct hook *h = w->hooks, *next; h; h = next) {
        next = h->next;
        if (party[0] && strcmp(h->party, party) == 0) {
            LOG(LOG_INFO, "webhook removed with its party", LOG_S("webhook", h->id),
                LOG_S("party", party));
            drop_hook(w, h);
        }
    }
}

json_t *webhooks_list(struct webhooks *w, const char *party, int admin)
{
    json_t *a = json_array();
    for (struct hook *h = w->hooks; h; h = h->next)
        if (admin || strcmp(h->party, party ? party : "") == 0)
            json_array_append_new(a, hook_public(h));
    return a;
}

void webhooks_stats(const struct webhooks *w, struct webhook_stats *out)
{
    memset(out, 0, sizeof *out);
    for (const struct hook *h = w->hooks; h; h = h->next)
        out->failing += h->state == HOOK_FAILING;
    out->subscriptions = w->nhooks;
    out->in_flight = w->in_flight;
    out->delivered_events = w->delivered_events;
    out->deliveries = w->deliveries;
    out->failures = w->failures;
}
