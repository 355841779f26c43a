/*
 * gwa_api.c - routes, client roles, body validation and fault injection of
 * the GWA simulator's HTTPS interface; see gwa_api.h and
 * docs/protocols/gwa.md.
 */
#include "gwa/gwa_api.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/http.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "common/pki.h"
#include "gwa/gwa_fault.h"
#include "registry/registry.h"

#define MAX_STATUS   600
#define ENDPOINT_MAX 261 /* a 255-byte host, ':' and a port */
#define JSON_TYPE    "application/json"
#define PROBLEM_TYPE "application/problem+json"

/* A route's audience and a client's role. */
enum peer {
    PEER_ANY,     /* route: every client with a verified certificate */
    PEER_EMT,     /* leaf of the EMT sub-CA with an id as CN */
    PEER_GATEWAY, /* leaf of the SMGW sub-CA with a gateway id as CN */
    PEER_OTHER,   /* verified, but neither (the GWA's own certificate, say) */
    PEER_NONE,    /* no certificate (only if TLS verification were off) */
};

struct call;
typedef void (*handler_fn)(struct call *c);

struct route {
    const char *method, *path;
    enum peer who;
    long long max_body;
    handler_fn fn;
};

struct call {
    struct gwa_api *api;
    struct http_request *req;
    const struct route *route;
    enum peer peer;
    char cn[PKI_CN_MAX + 1];
};

/* An answer held back by the latency fault. */
struct held {
    struct gwa_api *api;
    struct http_request *req;
    int status;
    const char *ctype; /* static */
    char *body;
    size_t len;
    struct event *ev;
    struct held *prev, *next;
};

struct gwa_api {
    struct event_base *base;
    struct gwa_api_config cfg;
    struct gwa_fleet *fleet;
    struct gwa_orders *orders;
    struct gwa_waker *waker;
    struct http_server *http;
    struct held *held;
    struct gwa_prng p503;
    struct gwa_throttle throttle;
    int64_t started_ms;
    uint64_t answers[MAX_STATUS];  /* every HTTP answer, by status */
    uint64_t rejected[MAX_STATUS]; /* channel requests refused, by code */
    uint64_t accepted;
    uint64_t throttled, unavailable, overloaded;
};

/* --- answers ------------------------------------------------------------------ */

static void held_unlink(struct gwa_api *api, struct held *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        api->held = h->next;
    if (h->next)
        h->next->prev = h->prev;
}

static void held_release(struct held *h)
{
    held_unlink(h->api, h);
    http_reply(h->req, h->status, h->ctype, h->body, h->len);
    free(h->body);
    event_free(h->ev);
    free(h);
}

static void held_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    held_release(arg);
}

/* Answer now, or after the configured latency. Takes 'body' (malloc'd,
 * may be NULL). */
static void reply(struct call *c, int status, const char *ctype, char *body, size_t len)
{
    struct gwa_api *api = c->api;
    struct held *h = api->cfg.latency_ms > 0 ? calloc(1, sizeof *h) : NULL;

    if (h)
        h->ev = evtimer_new(api->base, held_cb, h);
    if (h == NULL || h->ev == NULL) {
        free(h);
        http_reply(c->req, status, ctype, body, len);
        free(body);
        return;
    }
    h->api = api;
    h->req = c->req;
    h->status = status;
    h->ctype = ctype;
    h->body = body;
    h->len = len;
    h->next = api->held;
    if (api->held)
        api->held->prev = h;
    api->held = h;
    struct timeval tv = {api->cfg.latency_ms / 1000, (api->cfg.latency_ms % 1000) * 1000};
    evtimer_add(h->ev, &tv);
}

static void problem(struct call *c, int status, const char *slug, const char *pointer,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void problem(struct call *c, int status, const char *slug, const char *pointer,
                    const char *fmt, ...)
{
    char detail[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (status == 429 || status == 503)
        http_add_header(c->req, "Retry-After", "1");
    char *s = http_problem_body(status, slug, detail, http_req_path(c->req), NULL, pointer);
    reply(c, status, PROBLEM_TYPE, s, s ? strlen(s) : 0);
}

/* Answer with 'body' (a new reference, consumed). */
static void reply_json(struct call *c, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (s == NULL) {
        problem(c, 503, "overload", NULL, "out of memory");
        return;
    }
    http_add_header(c->req, "Cache-Control", "no-store");
    reply(c, 200, JSON_TYPE, s, strlen(s));
}

/* --- bodies ------------------------------------------------------------------------ */

static int is_json_type(const char *ct)
{
    if (ct == NULL)
        return 0;
    const char *semi = strchr(ct, ';');
    size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
    while (n > 0 && ct[n - 1] == ' ')
        n--;
    return n == 16 && strncasecmp(ct, JSON_TYPE, 16) == 0;
}

/* Parse the body into a JSON object with only the members 'allowed'.
 * Answers the problem itself and returns -1 when it is not acceptable. */
static int body_object(struct call *c, const char *const *allowed, json_t **out)
{
    size_t len;
    const char *body = http_req_body(c->req, &len);
    char msg[200];
    const char *key;
    json_t *v;

    *out = NULL;
    if (!is_json_type(http_req_header(c->req, "Content-Type"))) {
        problem(c, 415, "unsupported-media-type", NULL, "send the body as application/json");
        return -1;
    }
    if (len == 0) {
        problem(c, 400, "malformed-body", "", "the request needs a JSON body");
        return -1;
    }
    int rc = jsonx_parse(body, len, &jsonx_api_limits, out, msg, sizeof msg);
    if (rc != 0) {
        problem(c, 400, rc == -E2BIG ? "limits" : "malformed-body", "",
                "the body is not acceptable JSON: %s", msg);
        return -1;
    }
    if (!json_is_object(*out)) {
        problem(c, 422, "validation", "", "the body must be a JSON object");
        goto fail;
    }
    json_object_foreach(*out, key, v)
    {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (allowed[i] == NULL) {
            char ptr[80];
            snprintf(ptr, sizeof ptr, "/%.60s", key);
            problem(c, 422, "validation", ptr, "unknown member \"%.60s\"", key);
            goto fail;
        }
    }
    return 0;
fail:
    json_decref(*out);
    *out = NULL;
    return -1;
}

/* The "emt" member: present, an id, and the CN of the client certificate. */
static int body_emt(struct call *c, json_t *body)
{
    const char *emt = json_string_value(json_object_get(body, "emt"));
    if (emt == NULL || !reg_is_generic_id(emt)) {
        problem(c, 422, "validation", "/emt", "\"emt\" must be an EMT id such as \"clsmd\"");
        return -1;
    }
    if (strcmp(emt, c->cn) != 0) {
        problem(c, 403, "forbidden", "/emt",
                "the body names EMT \"%s\", but the client certificate belongs to \"%s\"", emt,
                c->cn);
        return -1;
    }
    return 0;
}

/* The array member 'name' with 1 .. GWA_API_MAX_REQUESTS elements. */
static json_t *body_array(struct call *c, json_t *body, const char *name)
{
    json_t *a = json_object_get(body, name);
    char ptr[32];
    snprintf(ptr, sizeof ptr, "/%s", name);
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > GWA_API_MAX_REQUESTS) {
        problem(c, 422, "validation", ptr, "\"%s\" must be an array of 1 to %d items", name,
                GWA_API_MAX_REQUESTS);
        return NULL;
    }
    return a;
}

static int emt_index(const struct gwa_api *api, const char *emt)
{
    for (size_t i = 0; i < api->cfg.nemts; i++)
        if (strcmp(api->cfg.emts[i], emt) == 0)
            return (int)i;
    return -1;
}

/* --- POST /v1/channel-requests ------------------------------------------------------- */

struct item {
    const char *smgw, *cls, *endpoint, *until_text;
    int64_t until_ms;
    struct gwa_gw *gw;
    struct gwa_dev *dev;
    int code; /* 0 accepted, else the refusal */
    char reason[300];
};

static int is_endpoint(const char *s)
{
    struct hostport hp;
    size_t n = strlen(s);
    if (n == 0 || n > ENDPOINT_MAX ||
        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                  "0123456789.-_:[]") != n)
        return 0;
    return hostport_parse(s, &hp) == 0 && hp.port > 0;
}

/* Check the form of request 'i'; answers 422 itself and returns -1. */
static int item_parse(struct call *c, json_t *o, size_t i, struct item *it)
{
    static const char *const names[] = {"smgw", "cls", "endpoint", "valid_until"};
    const char *val[4], *key;
    char ptr[80];
    json_t *v;

    if (!json_is_object(o)) {
        snprintf(ptr, sizeof ptr, "/requests/%zu", i);
        problem(c, 422, "validation", ptr, "each request must be an object");
        return -1;
    }
    json_object_foreach(o, key, v)
    {
        size_t k = 0;
        while (k < ARRAY_LEN(names) && strcmp(names[k], key) != 0)
            k++;
        if (k == ARRAY_LEN(names)) {
            snprintf(ptr, sizeof ptr, "/requests/%zu/%.40s", i, key);
            problem(c, 422, "validation", ptr, "unknown member \"%.40s\"", key);
            return -1;
        }
    }
    for (size_t k = 0; k < ARRAY_LEN(names); k++) {
        val[k] = json_string_value(json_object_get(o, names[k]));
        snprintf(ptr, sizeof ptr, "/requests/%zu/%s", i, names[k]);
        if (val[k] == NULL) {
            problem(c, 422, "validation", ptr, "\"%s\" must be a string", names[k]);
            return -1;
        }
    }
    memset(it, 0, sizeof *it);
    it->smgw = val[0];
    it->cls = val[1];
    it->endpoint = val[2];
    it->until_text = val[3];
    const char *bad = !reg_is_smgw_id(it->smgw)                           ? "smgw"
                      : !reg_is_generic_id(it->cls)                       ? "cls"
                      : !is_endpoint(it->endpoint)                        ? "endpoint"
                      : time_parse_ms(it->until_text, &it->until_ms) != 0 ? "valid_until"
                                                                          : NULL;
    if (bad) {
        static const char *const want[] = {"a gateway id such as EABC0012345678", "a CLS device id",
                                           "host:port", "an RFC 3339 time"};
        size_t k = 0;
        while (strcmp(names[k], bad) != 0)
            k++;
        snprintf(ptr, sizeof ptr, "/requests/%zu/%s", i, bad);
        problem(c, 422, "validation", ptr, "\"%s\" must be %s", bad, want[k]);
        return -1;
    }
    return 0;
}

/* May this EMT reach this CLS through this gateway? Sets it->code and
 * it->reason; nothing changes. */
static void item_judge(const struct call *c, int emt, int64_t now, struct item *it)
{
    const struct gwa_api *api = c->api;
    it->gw = gwa_fleet_gateway(api->fleet, it->smgw);
    it->dev = it->gw ? gwa_fleet_device(api->fleet, it->cls) : NULL;
    if (it->gw == NULL) {
        it->code = 404;
        snprintf(it->reason, sizeof it->reason, "gateway %s is not administered here", it->smgw);
    } else if (it->dev == NULL || it->dev->gw != it->gw) {
        it->code = 404;
        snprintf(it->reason, sizeof it->reason, "CLS %s is not behind gateway %s", it->cls,
                 it->smgw);
    } else if (emt < 0 || it->dev->denied) {
        it->code = 403;
        snprintf(it->reason, sizeof it->reason, "EMT %s is not entitled to reach CLS %s through %s",
                 c->cn, it->cls, it->smgw);
    } else if (it->until_ms <= now) {
        it->code = 422;
        snprintf(it->reason, sizeof it->reason, "valid_until %s has already passed",
                 it->until_text);
    }
}

/* Store the accepted ones and build the results. */
static json_t *items_commit(struct call *c, int emt, struct item *items, size_t n)
{
    struct gwa_api *api = c->api;
    json_t *results = json_array();
    char id[GWA_ORDERS_ID_MAX];

    for (size_t i = 0; results && i < n; i++) {
        struct item *it = &items[i];
        struct gwa_order *o = NULL;
        if (it->code == 0 && gwa_orders_add(api->orders, it->gw, it->dev, (uint16_t)emt,
                                            it->endpoint, it->until_ms, &o) != 0) {
            it->code = 503;
            snprintf(it->reason, sizeof it->reason, "the GWA has no room for the order");
        }
        if (it->code != 0) {
            api->rejected[it->code]++;
            LOG(LOG_INFO, "channel request rejected", LOG_S("emt", c->cn), LOG_S("smgw", it->smgw),
                LOG_S("cls", it->cls), LOG_I("code", it->code), LOG_S("reason", it->reason));
            json_array_append_new(results, json_pack("{s:s, s:i, s:s}", "status", "rejected",
                                                     "code", it->code, "reason", it->reason));
            continue;
        }
        api->accepted++;
        gwa_orders_id(api->orders, o, id, sizeof id);
        LOG(LOG_DEBUG, "channel request accepted", LOG_S("id", id), LOG_S("emt", c->cn),
            LOG_S("smgw", it->smgw), LOG_S("cls", it->cls), LOG_S("endpoint", it->endpoint));
        json_array_append_new(results, json_pack("{s:s, s:s}", "status", "accepted", "id", id));
        gwa_waker_need(api->waker, it->gw);
    }
    return results ? json_pack("{s:o}", "results", results) : NULL;
}

static void h_channel_requests(struct call *c)
{
    static const char *const allowed[] = {"emt", "requests", NULL};
    struct gwa_api *api = c->api;
    struct item *items = NULL;
    json_t *body = NULL, *reqs;
    size_t n, accept = 0;

    if (!gwa_throttle_admit(&api->throttle, time_mono_us() / 1000)) {
        api->throttled++;
        problem(c, 429, "rate-limited", NULL, "at most %d channel-request POSTs per second",
                api->cfg.throttle);
        return;
    }
    if (gwa_prng_share(&api->p503, api->cfg.fail503_pct)) {
        api->unavailable++;
        problem(c, 503, "unavailable", NULL, "the GWA is unavailable (fault injection)");
        return;
    }
    if (body_object(c, allowed, &body) != 0)
        return;
    if ((reqs = body_array(c, body, "requests")) == NULL || body_emt(c, body) != 0)
        goto out;
    n = json_array_size(reqs);
    items = calloc(n, sizeof *items);
    if (items == NULL) {
        problem(c, 503, "overload", NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (item_parse(c, json_array_get(reqs, i), i, &items[i]) != 0)
            goto out;
    int emt = emt_index(api, c->cn);
    int64_t now = time_now_ms();
    for (size_t i = 0; i < n; i++) {
        item_judge(c, emt, now, &items[i]);
        accept += items[i].code == 0;
    }
    if (accept > gwa_orders_room(api->orders)) {
        api->overloaded++;
        problem(c, 503, "overload", NULL, "the order table is full; try again later");
        goto out;
    }
    reply_json(c, items_commit(c, emt, items, n));
out:
    free(items);
    json_decref(body);
}

/* --- POST /v1/channel-requests/status ------------------------------------------------- */

static json_t *status_of(const struct call *c, const char *id)
{
    const struct gwa_api *api = c->api;
    const struct gwa_order *o = gwa_orders_find(api->orders, id);
    if (o == NULL || strcmp(api->cfg.emts[o->emt], c->cn) != 0)
        return json_pack("{s:s, s:s}", "id", id, "status", "unknown");
    const char *st = gwa_order_state_name((enum gwa_order_state)o->state);
    if (o->state == ORDER_FAILED)
        return json_pack("{s:s, s:s, s:s}", "id", id, "status", st, "reason", o->reason);
    return json_pack("{s:s, s:s}", "id", id, "status", st);
}

static void h_status(struct call *c)
{
    static const char *const allowed[] = {"emt", "ids", NULL};
    json_t *body = NULL, *ids, *v, *results;
    size_t i;

    if (body_object(c, allowed, &body) != 0)
        return;
    if ((ids = body_array(c, body, "ids")) == NULL || body_emt(c, body) != 0)
        goto out;
    json_array_foreach(ids, i, v)
    {
        if (!json_is_string(v)) {
            char ptr[32];
            snprintf(ptr, sizeof ptr, "/ids/%zu", i);
            problem(c, 422, "validation", ptr, "each id must be a string");
            goto out;
        }
    }
    results = json_array();
    json_array_foreach(ids, i, v)
    {
        json_array_append_new(results, status_of(c, json_string_value(v)));
    }
    reply_json(c, json_pack("{s:o}", "results", results));
out:
    json_decref(body);
}

/* --- GET /v1/orders -------------------------------------------------------------------- */

static void h_orders(struct call *c)
{
    struct gwa_api *api = c->api;
    struct gwa_gw *gw = gwa_fleet_gateway(api->fleet, c->cn);
    int64_t now = time_now_ms();
    char id[GWA_ORDERS_ID_MAX], until[40];
    size_t n = 0;

    if (gw == NULL) {
        problem(c, 403, "forbidden", NULL, "gateway %s is not administered by %s", c->cn,
                api->cfg.gwa_id);
        return;
    }
    json_t *orders = json_array();
    for (struct gwa_order *o = gw->open_head, *next; orders && o && n < GWA_API_MAX_FETCH;
         o = next) {
        next = o->gw_next;
        if (o->valid_until_ms <= now)
            continue; /* void; the expiry sweep takes it */
        gwa_orders_id(api->orders, o, id, sizeof id);
        json_array_append_new(orders,
                              json_pack("{s:s, s:s, s:s, s:s}", "id", id, "cls", o->dev->id,
                                        "endpoint", o->endpoint, "valid_until",
                                        time_format_ms(o->valid_until_ms, until, sizeof until)));
        gwa_orders_set_state(api->orders, o, ORDER_DELIVERED, NULL, now);
        n++;
    }
    if (gw->nopen == 0) {
        gwa_waker_forget(api->waker, gw);
    } else if (n == GWA_API_MAX_FETCH) {
        /* A full page: the gateway is alive; wake it again at once for the
         * rest, which starts counting its attempts afresh. */
        for (struct gwa_order *o = gw->open_head; o; o = o->gw_next)
            o->attempts = 0;
        gwa_waker_need(api->waker, gw);
    }
    LOG(LOG_INFO, "orders fetched", LOG_S("smgw", gw->id), LOG_I("orders", (long long)n),
        LOG_I("left", gw->nopen));
    reply_json(c, orders ? json_pack("{s:o}", "orders", orders) : NULL);
}

/* --- health and statistics ---------------------------------------------------------------- */

static void h_healthz(struct call *c)
{
    reply_json(c, json_pack("{s:s, s:s}", "status", "ok", "gwa", c->api->cfg.gwa_id));
}

static json_t *by_status(const uint64_t *counts)
{
    json_t *o = json_object();
    char k[16];
    for (int i = 100; o && i < MAX_STATUS; i++) {
        if (counts[i] == 0)
            continue;
        snprintf(k, sizeof k, "%d", i);
        json_object_set_new(o, k, json_integer((json_int_t)counts[i]));
    }
    return o;
}

static void h_stats(struct call *c)
{
    struct gwa_api *api = c->api;
    struct gwa_orders_counts oc;
    struct gwa_waker_counts wc;

    gwa_orders_counts(api->orders, &oc);
    gwa_waker_counts(api->waker, &wc);
    json_t *requests = json_pack("{s:I, s:o}", "accepted", (json_int_t)api->accepted, "rejected",
                                 by_status(api->rejected));
    json_t *wakeups = json_pack("{s:I, s:I, s:I, s:I}", "sent", (json_int_t)wc.sent, "dropped",
                                (json_int_t)wc.dropped, "retried", (json_int_t)wc.retried, "errors",
                                (json_int_t)wc.errors);
    json_t *orders = json_pack("{s:I, s:I, s:I}", "live", (json_int_t)oc.live, "pending",
                               (json_int_t)oc.pending, "woken", (json_int_t)oc.woken);
    json_t *st = json_pack(
        "{s:s, s:I, s:I, s:I, s:o, s:o, s:I, s:I, s:I, s:o, s:o, s:I, s:I, s:I}", "gwa",
        api->cfg.gwa_id, "uptime_s", (json_int_t)((time_now_ms() - api->started_ms) / 1000),
        "gateways", (json_int_t)gwa_fleet_gateways(api->fleet), "devices",
        (json_int_t)gwa_fleet_devices(api->fleet), "channel_requests", requests, "answers",
        by_status(api->answers), "throttled", (json_int_t)api->throttled, "unavailable",
        (json_int_t)api->unavailable, "overloaded", (json_int_t)api->overloaded, "wakeups", wakeups,
        "orders", orders, "orders_delivered", (json_int_t)oc.delivered, "orders_failed",
        (json_int_t)oc.failed, "orders_expired", (json_int_t)oc.expired);
    reply_json(c, st);
}

/* --- routing and client roles ----------------------------------------------------------- */

static const struct route routes[] = {
    {"POST", "/v1/channel-requests", PEER_EMT, GWA_API_MAX_BODY, h_channel_requests},
    {"POST", "/v1/channel-requests/status", PEER_EMT, GWA_API_MAX_BODY, h_status},
    {"GET", "/v1/orders", PEER_GATEWAY, 0, h_orders},
    {"GET", "/healthz", PEER_ANY, 0, h_healthz},
    {"GET", "/v1/stats", PEER_ANY, 0, h_stats},
};

/* The route for 'method' and 'path', or NULL; '*same_path' (may be NULL)
 * is then a route of that path with another method, or NULL. Each path
 * has one method. */
static const struct route *route_find(const char *method, const char *path,
                                      const struct route **same_path)
{
    if (same_path)
        *same_path = NULL;
    for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
        if (strcmp(routes[i].path, path) != 0)
            continue;
        if (strcmp(routes[i].method, method) == 0)
            return &routes[i];
        if (same_path)
            *same_path = &routes[i];
    }
    return NULL;
}

/* Who is calling: the certificate's issuing sub-CA and CN format decide. */
static enum peer identify(struct call *c)
{
    X509 *cert = http_req_peer_cert(c->req);
    enum peer p = PEER_OTHER;

    if (cert == NULL)
        return PEER_NONE;
    if (pki_cert_cn(cert, c->cn, sizeof c->cn) == 0) {
        if (reg_is_smgw_id(c->cn) && pki_issued_by(cert, c->api->cfg.smgw_ca))
            p = PEER_GATEWAY;
        else if (reg_is_generic_id(c->cn) && pki_issued_by(cert, c->api->cfg.emt_ca))
            p = PEER_EMT;
    }
    X509_free(cert);
    return p;
}

static long long on_head(void *arg, struct http_request *req)
{
    const struct route *r = route_find(http_req_method(req), http_req_path(req), NULL);
    (void)arg;
    return r ? r->max_body : -1;
}

static void on_request(void *arg, struct http_request *req)
{
    struct call c = {arg, req, NULL, PEER_ANY, ""};
    const struct route *other;

    c.route = route_find(http_req_method(req), http_req_path(req), &other);
    if (c.route == NULL && other) {
        http_add_header(req, "Allow", other->method);
        problem(&c, 405, "method-not-allowed", NULL, "allowed method: %s", other->method);
        return;
    }
    if (c.route == NULL) {
        problem(&c, 404, "not-found", NULL, "no such resource");
        return;
    }
    if (c.route->who != PEER_ANY) {
        c.peer = identify(&c);
        if (c.peer == PEER_NONE) {
            problem(&c, 401, "unauthenticated", NULL, "a client certificate is required");
            return;
        }
        if (c.peer != c.route->who) {
            int emt = c.route->who == PEER_EMT;
            LOG(LOG_INFO, "client refused", LOG_S("peer", http_req_peer(req)), LOG_S("cn", c.cn),
                LOG_S("path", http_req_path(req)), LOG_S("reason", "wrong certificate role"));
            problem(&c, 403, "forbidden", NULL,
                    "this route is for %s; the client certificate \"%s\" is not %s certificate",
                    emt ? "EMTs" : "gateways", c.cn, emt ? "an EMT" : "a gateway");
            return;
        }
    }
    c.route->fn(&c);
}

static void on_done(void *arg, struct http_request *req, int status, int64_t duration_us)
{
    struct gwa_api *api = arg;
    if (status >= 0 && status < MAX_STATUS)
        api->answers[status]++;
    LOG(LOG_DEBUG, "answered", LOG_S("peer", http_req_peer(req)),
        LOG_S("method", http_req_method(req)), LOG_S("path", http_req_path(req)),
        LOG_I("status", status), LOG_I("duration_us", duration_us));
}

/* --- life cycle ------------------------------------------------------------------------------ */

struct gwa_api *gwa_api_new(struct event_base *base, const struct gwa_api_config *cfg,
                            struct gwa_fleet *fleet, struct gwa_orders *orders,
                            struct gwa_waker *waker)
{
    struct http_limits lim = {
        .max_head = 16384,
        .max_body = GWA_API_MAX_BODY,
        .max_output = 1 << 20,
        .max_connections = cfg->max_connections,
        .idle_timeout_s = 30,
        .request_timeout_s = 30,
    };
    struct gwa_api *api = calloc(1, sizeof *api);
    if (api == NULL)
        return NULL;
    struct http_callbacks cb = {on_head, on_request, on_done, NULL, api};
    api->base = base;
    api->cfg = *cfg;
    api->fleet = fleet;
    api->orders = orders;
    api->waker = waker;
    api->started_ms = time_now_ms();
    api->throttle.limit = cfg->throttle;
    gwa_prng_seed(&api->p503, cfg->seed, 2);
    api->http = http_server_new(base, &lim, &cb);
    if (api->http == NULL) {
        free(api);
        return NULL;
    }
    http_server_set_tls(api->http, cfg->tls);
    return api;
}

int gwa_api_listen(struct gwa_api *api, const struct hostport *addr, struct hostport *bound)
{
    return http_server_listen(api->http, addr, bound);
}

void gwa_api_shutdown(struct gwa_api *api, void (*done)(void *arg), void *arg)
{
    http_server_shutdown(api->http, done, arg);
}

void gwa_api_free(struct gwa_api *api)
{
    if (api == NULL)
        return;
    while (api->held)
        held_release(api->held);
    http_server_free(api->http);
    free(api);
}
