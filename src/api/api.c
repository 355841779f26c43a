/*
 * api.c - the route table, request dispatch, authentication and the reply
 * helpers of the operator API; see api.h. Handlers of registry resources
 * live in api_registry.c.
 */
#include "api/api_impl.h"

#include <errno.h>
#include <event2/buffer.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channel/channel.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "common/util.h"
#include "dispatch/dispatch.h"

static void h_healthz(struct api_call *c);
static void h_readyz(struct api_call *c);
static void h_metrics(struct api_call *c);
static void h_me(struct api_call *c);

/* The six routes of one registry kind. */
#define REG_ROUTES(plural, kind)                                                       \
    {"GET", "/v1/" plural, api__reg_list, AUTH_ANY, BODY_NONE, kind},                  \
        {"POST", "/v1/" plural, api__reg_create, AUTH_ADMIN, BODY_JSON, kind},         \
        {"GET", "/v1/" plural "/{id}", api__reg_get, AUTH_ANY, BODY_NONE, kind},       \
        {"PUT", "/v1/" plural "/{id}", api__reg_replace, AUTH_ADMIN, BODY_JSON, kind}, \
        {"PATCH", "/v1/" plural "/{id}", api__reg_patch, AUTH_ADMIN, BODY_JSON, kind}, \
    {                                                                                  \
        "DELETE", "/v1/" plural "/{id}", api__reg_delete, AUTH_ADMIN, BODY_NONE, kind  \
    }

static const struct api_route routes[] = {
    {"GET", "/healthz", h_healthz, AUTH_NONE, BODY_NONE, -1},
    {"GET", "/readyz", h_readyz, AUTH_NONE, BODY_NONE, -1},
    {"GET", "/metrics", h_metrics, AUTH_NONE, BODY_NONE, -1},
    {"GET", "/v1/me", h_me, AUTH_ANY, BODY_NONE, -1},
    {"POST", "/v1/import", api__import, AUTH_ADMIN, BODY_IMPORT, -1},
    {"PUT", "/v1/segments/{id}/traffic-light", api__set_light, AUTH_ANY, BODY_JSON, REG_SEGMENT},
    {"GET", "/v1/parties/{id}/tokens", api__token_list, AUTH_ADMIN, BODY_NONE, REG_PARTY},
    {"POST", "/v1/parties/{id}/tokens", api__token_create, AUTH_ADMIN, BODY_JSON, REG_PARTY},
    {"DELETE", "/v1/parties/{id}/tokens/{token}", api__token_delete, AUTH_ADMIN, BODY_NONE,
     REG_PARTY},
    {"POST", "/v1/devices/{id}/commands", api__command_submit, AUTH_ADMIN, BODY_JSON, REG_DEVICE},
    {"GET", "/v1/commands/{id}", api__command_get, AUTH_ADMIN, BODY_NONE, -1},
    {"GET", "/v1/channels", api__channel_list, AUTH_ADMIN, BODY_NONE, -1},
    {"POST", "/v1/requests", api__request_submit, AUTH_ANY, BODY_JSON, -1},
    {"GET", "/v1/requests", api__request_list, AUTH_ANY, BODY_NONE, -1},
    {"GET", "/v1/requests/{id}", api__request_get, AUTH_ANY, BODY_NONE, -1},
    {"DELETE", "/v1/requests/{id}", api__request_cancel, AUTH_ANY, BODY_NONE, -1},
    {"GET", "/v1/installations/{id}/state", api__installation_state, AUTH_ANY, BODY_NONE,
     REG_INSTALLATION},
    {"GET", "/v1/installations/{id}/flexibility", api__installation_flexibility, AUTH_ANY,
     BODY_NONE, REG_INSTALLATION},
    {"GET", "/v1/segments/{id}/flexibility", api__segment_flexibility, AUTH_ANY, BODY_NONE,
     REG_SEGMENT},
    {"GET", "/v1/metering-points/{id}/readings", api__metering_point_readings, AUTH_ANY, BODY_NONE,
     -1},
    {"GET", "/v1/events", api__events_stream, AUTH_ANY, BODY_NONE, -1},
    {"GET", "/v1/audit", api__audit_list, AUTH_ADMIN, BODY_NONE, -1},
    {"GET", "/v1/webhooks", api__webhook_list, AUTH_ANY, BODY_NONE, -1},
    {"POST", "/v1/webhooks", api__webhook_create, AUTH_ANY, BODY_JSON, -1},
    {"DELETE", "/v1/webhooks/{id}", api__webhook_delete, AUTH_ANY, BODY_NONE, -1},
    REG_ROUTES("parties", REG_PARTY),
    REG_ROUTES("segments", REG_SEGMENT),
    REG_ROUTES("gwas", REG_GWA),
    REG_ROUTES("smgws", REG_SMGW),
    REG_ROUTES("devices", REG_DEVICE),
    REG_ROUTES("installations", REG_INSTALLATION),
    REG_ROUTES("assignments", REG_ASSIGNMENT),
};

#define NROUTES ARRAY_LEN(routes)

void api_print_routes(FILE *out)
{
    for (size_t i = 0; i < NROUTES; i++)
        fprintf(out, "%s %s\n", routes[i].method, routes[i].pattern);
}

/* --- helpers --------------------------------------------------------------- */

void api__problem(struct api_call *c, int status, const char *slug, const char *field,
                  const char *pointer, const char *fmt, ...)
{
    char detail[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (status == 401)
        http_add_header(c->req, "WWW-Authenticate", "Bearer realm=\"clsm\"");
    char *s = http_problem_body(status, slug, detail, http_req_path(c->req), field, pointer);
    http_reply(c->req, status, "application/problem+json", s, s ? strlen(s) : 0);
    free(s);
}

void api__json(struct api_call *c, int status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    http_add_header(c->req, "Cache-Control", "no-store");
    http_reply(c->req, status, body ? "application/json" : NULL, s, s ? strlen(s) : 0);
    free(s);
    json_decref(body);
}

static int is_json_type(const char *ct, int patch)
{
    size_t n;
    if (ct == NULL)
        return 0;
    const char *semi = strchr(ct, ';');
    n = semi ? (size_t)(semi - ct) : strlen(ct);
    while (n > 0 && ct[n - 1] == ' ')
        n--;
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return 1;
    return patch && n == 28 && strncasecmp(ct, "application/merge-patch+json", 28) == 0;
}

int api__body(struct api_call *c, int empty_ok, json_t **out)
{
    size_t len;
    const char *body = http_req_body(c->req, &len);
    char msg[200];
    int rc;

    *out = NULL;
    if (len == 0 && empty_ok) {
        *out = json_object();
        return 0;
    }
    if (!is_json_type(http_req_header(c->req, "Content-Type"),
                      strcmp(c->route->method, "PATCH") == 0)) {
        api__problem(c, 415, "unsupported-media-type", "Content-Type", NULL,
                     "send the body as application/json%s",
                     strcmp(c->route->method, "PATCH") == 0 ? " or application/merge-patch+json"
                                                            : "");
        return -1;
    }
    if (len == 0) {
        api__problem(c, 400, "malformed-body", NULL, "", "the request needs a JSON body");
        return -1;
    }
    rc = jsonx_parse(body, len, &jsonx_api_limits, out, msg, sizeof msg);
    if (rc != 0) {
        api__problem(c, 400, rc == -E2BIG ? "limits" : "malformed-body", NULL, "",
                     "the body is not acceptable JSON: %s", msg);
        return -1;
    }
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        api__problem(c, 422, "validation", NULL, "", "the body must be a JSON object");
        return -1;
    }
    return 0;
}

const char *api__query(const struct api_call *c, const char *name)
{
    for (size_t i = 0; i < c->nquery; i++)
        if (strcmp(c->query[i].name, name) == 0)
            return c->query[i].value;
    return NULL;
}

int api__check_query(struct api_call *c, const char *const *allowed, const struct reg_kind *k)
{
    for (size_t i = 0; i < c->nquery; i++) {
        const char *n = c->query[i].name;
        int ok = 0;
        for (size_t a = 0; allowed && allowed[a] && !ok; a++)
            ok = strcmp(allowed[a], n) == 0;
        if (!ok && k) {
            const struct reg_field *f = reg_field(k, n);
            ok = f && (f->flags & RF_FILTER);
        }
        if (!ok) {
            api__problem(c, 400, "unknown-parameter", n, NULL, "unknown query parameter \"%s\"", n);
            return -1;
        }
    }
    return 0;
}

struct store_scope api__scope(const struct api_call *c, const struct reg_kind *k)
{
    struct store_scope sc = {SCOPE_NONE, NULL, c->who.party};
    const char *role = c->who.role;
    int market =
        strcmp(role, "lf") == 0 || strcmp(role, "aggregator") == 0 || strcmp(role, "msb") == 0;

    if (c->who.admin) {
        sc.kind = SCOPE_ALL;
        return sc;
    }
    switch (k->id) {
    case REG_PARTY:
        sc.kind = SCOPE_FIELD;
        sc.field = "id";
        break;
    case REG_SEGMENT:
    case REG_INSTALLATION:
    case REG_ASSIGNMENT:
        if (strcmp(role, "vnb") == 0)
            sc.kind = SCOPE_VNB;
        else if (market && k->id != REG_SEGMENT)
            sc.kind = SCOPE_ASSIGNED;
        break;
    default:
        break;
    }
    return sc;
}

void api__deny(struct api_call *c)
{
    if (c->kind && c->params[0][0]) {
        struct store_scope sc = api__scope(c, c->kind);
        json_t *obj = NULL;
        if (store_reg_get(c->api->store, c->kind, c->params[0], &sc, &obj) != 0) {
            api__problem(c, 404, "not-found", NULL, NULL, "no %s with id \"%s\"", c->kind->name,
                         c->params[0]);
            return;
        }
        json_decref(obj);
    }
    api__problem(c, 403, "forbidden", NULL, NULL, "this action needs admin rights");
}

/* --- authentication -------------------------------------------------------- */

static int authenticate(struct api_call *c)
{
    const char *h = http_req_header(c->req, "Authorization");
    uint8_t hash[TOKEN_HASH_LEN];
    struct store_principal p;

    if (h == NULL) {
        api__problem(c, 401, "unauthenticated", "Authorization", NULL,
                     "send a bearer token in the Authorization header");
        return -1;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0 || strlen(h + 7) == 0 || strlen(h + 7) > 256) {
        api__problem(c, 401, "unauthenticated", "Authorization", NULL,
                     "the Authorization header must be \"Bearer <token>\"");
        return -1;
    }
    token_hash(h + 7, strlen(h + 7), hash);
    if (c->api->admin_enabled && token_hash_equal(hash, c->api->admin_hash)) {
        c->who.admin = 1;
        str_copy(c->who.role, sizeof c->who.role, "admin");
        return 0;
    }
    int rc = store_token_lookup(c->api->store, hash, &p);
    if (rc != 0) {
        if (rc == -ENOENT)
            api__problem(c, 401, "unauthenticated", "Authorization", NULL,
                         "the token is not valid");
        else
            api__problem(c, 503, "store-unavailable", NULL, NULL, "the store failed");
        return -1;
    }
    memcpy(c->who.party, p.party, sizeof c->who.party);
    memcpy(c->who.role, p.role, sizeof c->who.role);
    c->who.admin = strcmp(p.role, "admin") == 0;
    return 0;
}

/* --- routing --------------------------------------------------------------- */

/* Match a percent-encoded path against a pattern; '{name}' parts capture
 * into 'params'. Returns 1 on a match, 0 otherwise, -1 for a malformed path. */
static int match(const char *pattern, const char *path, char params[][API_PARAM_MAX])
{
    const char *p = pattern + 1, *s = path + 1;
    int np = 0;

    if (path[0] != '/')
        return 0;
    while (*p) {
        const char *pe = strchr(p, '/'), *se = strchr(s, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p);
        size_t sl = se ? (size_t)(se - s) : strlen(s);
        if (sl == 0 || (pe == NULL) != (se == NULL))
            return 0;
        if (p[0] == '{') {
            if (np == API_MAX_PARAMS || sl >= API_PARAM_MAX)
                return sl >= API_PARAM_MAX ? -1 : 0;
            if (http_unescape(s, sl, params[np], 0) < 0)
                return -1;
            np++;
        } else if (pl != sl || strncmp(p, s, pl) != 0) {
            return 0;
        }
        if (pe == NULL)
            return 1;
        p = pe + 1;
        s = se + 1;
    }
    return *s == '\0';
}

/* The route for a request: index, -1 when no path matches, or -2 when a
 * path matches but not for this method (then 'allow' lists the methods). */
static int find_route(const char *method, const char *path, char params[][API_PARAM_MAX],
                      char *allow, size_t allowlen)
{
    int path_seen = 0;
    size_t an = 0;

    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    allow[0] = '\0';
    for (size_t i = 0; i < NROUTES; i++) {
        int m = match(routes[i].pattern, path, params);
        if (m < 0)
            return -1;
        if (m == 0)
            continue;
        if (strcmp(routes[i].method, method) == 0)
            return (int)i;
        path_seen = 1;
        an +=
            (size_t)snprintf(allow + an, allowlen - an, "%s%s%s", an ? ", " : "", routes[i].method,
                             strcmp(routes[i].method, "GET") == 0 ? ", HEAD" : "");
        if (an >= allowlen)
            an = allowlen - 1;
    }
    return path_seen ? -2 : -1;
}

static int parse_query(struct api_call *c)
{
    const char *q = http_req_query(c->req);
    size_t used = 0;

    c->nquery = 0;
    while (q && *q) {
        const char *amp = strchr(q, '&'), *eq;
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > 0) {
            if (c->nquery == HTTP_MAX_QUERY_PARAMS || used + len + 2 > sizeof c->querybuf) {
                api__problem(c, 400, "limits", NULL, NULL, "the query string is too long");
                return -1;
            }
            eq = memchr(q, '=', len);
            size_t nl = eq ? (size_t)(eq - q) : len;
            char *name = c->querybuf + used;
            int n = http_unescape(q, nl, name, 1);
            if (n <= 0) {
                api__problem(c, 400, "malformed-query", NULL, NULL, "malformed query string");
                return -1;
            }
            used += (size_t)n + 1;
            char *value = c->querybuf + used;
            int v = eq ? http_unescape(eq + 1, len - nl - 1, value, 1) : (value[0] = '\0', 0);
            if (v < 0) {
                api__problem(c, 400, "malformed-query", name, NULL, "malformed value of \"%s\"",
                             name);
                return -1;
            }
            used += (size_t)v + 1;
            if (api__query(c, name) != NULL) {
                api__problem(c, 400, "malformed-query", name, NULL,
                             "query parameter \"%s\" given twice", name);
                return -1;
            }
            c->query[c->nquery].name = name;
            c->query[c->nquery].value = value;
            c->nquery++;
        }
        q = amp ? amp + 1 : NULL;
    }
    return 0;
}

static const struct api_route no_route = {"", "", NULL, AUTH_NONE, BODY_NONE, -1};

/*
 * Everything that needs only the head happens here, before the body is
 * read: routing, the query, authentication and the admin check. A refusal
 * is answered at once, so that nobody without the right to send a large
 * body (an import) can make the server hold one. Returns the body limit.
 */
static long long on_head(void *arg, struct http_request *req)
{
    struct api *api = arg;
    struct api_call *c = calloc(1, sizeof *c);
    char allow[128];
    int r;

    if (c == NULL) {
        http_reply_problem(req, 503, "overload", "out of memory");
        return -1;
    }
    c->api = api;
    c->req = req;
    c->route = &no_route;
    http_req_set_data(req, c);
    r = find_route(http_req_method(req), http_req_path(req), c->params, allow, sizeof allow);
    if (r == -2) {
        http_add_header(req, "Allow", allow);
        api__problem(c, 405, "method-not-allowed", NULL, NULL, "allowed methods: %s", allow);
        return -1;
    }
    if (r < 0) {
        api__problem(c, 404, "not-found", NULL, NULL, "no such resource");
        return -1;
    }
    c->route = &routes[r];
    c->kind = routes[r].kind >= 0 ? &reg_kinds[routes[r].kind] : NULL;
    if (parse_query(c) != 0)
        return -1;
    if (c->route->auth != AUTH_NONE && authenticate(c) != 0)
        return -1;
    if (c->route->auth == AUTH_ADMIN && !c->who.admin) {
        api__deny(c);
        return -1;
    }
    if (c->route->body == BODY_IMPORT)
        return api->max_import_body;
    return c->route->body == BODY_NONE ? 0 : api->max_body;
}

static void on_request(void *arg, struct http_request *req)
{
    struct api_call *c = http_req_data(req);
    (void)arg;
    c->route->fn(c);
}

static void on_done(void *arg, struct http_request *req, int status, int64_t duration_us)
{
    struct api *api = arg;
    const struct api_call *c = http_req_data(req);
    int idx = c && c->route != &no_route ? (int)(c->route - routes) : -1;

    metrics_observe(api->metrics, idx, status, duration_us);
    if (status >= 500)
        LOG(LOG_ERROR, "api request failed", LOG_S("method", http_req_method(req)),
            LOG_S("path", http_req_path(req)), LOG_I("status", status),
            LOG_S("peer", http_req_peer(req)));
    else
        LOG(LOG_DEBUG, "api request", LOG_S("method", http_req_method(req)),
            LOG_S("path", http_req_path(req)), LOG_I("status", status), LOG_I("us", duration_us),
            LOG_S("peer", http_req_peer(req)));
}

static void on_free(void *arg, struct http_request *req)
{
    (void)arg;
    free(http_req_data(req));
}

/* --- operational endpoints -------------------------------------------------- */

static void h_healthz(struct api_call *c)
{
    api__json(c, 200,
              json_pack("{s:s, s:s, s:I}", "status", "ok", "version", CLSM_VERSION, "uptime_s",
                        (json_int_t)((time_now_ms() - c->api->started_ms) / 1000)));
}

static void h_readyz(struct api_call *c)
{
    if (store_ping(c->api->store) != 0) {
        api__problem(c, 503, "store-unavailable", NULL, NULL, "the store does not answer");
        return;
    }
    api__json(c, 200,
              json_pack("{s:s, s:i}", "status", "ready", "schema_version",
                        store_schema_version(c->api->store)));
}

/* Channels and commands, when the runtime is attached. */
static void render_runtime(const struct api *api, struct evbuffer *b)
{
    if (api->channels) {
        int counts[CH_CLOSED + 1];
        channel_mgr_counts(api->channels, counts);
        evbuffer_add_printf(b, "# HELP clsm_channels CLS channels by state.\n"
                               "# TYPE clsm_channels gauge\n");
        for (enum channel_state s = CH_HANDSHAKE; s < CH_CLOSED; s++)
            evbuffer_add_printf(b, "clsm_channels{state=\"%s\"} %d\n", channel_state_name(s),
                                counts[s]);
        json_t *refused = channel_mgr_refusals(api->channels);
        const char *reason;
        json_t *v;
        evbuffer_add_printf(b, "# HELP clsm_channel_refusals_total Channels refused, by reason.\n"
                               "# TYPE clsm_channel_refusals_total counter\n");
        json_object_foreach(refused, reason, v)
        {
            evbuffer_add_printf(b, "clsm_channel_refusals_total{reason=\"%s\"} %lld\n", reason,
                                (long long)json_integer_value(v));
        }
        json_decref(refused);
    }
    if (api->dispatch) {
        struct dispatch_stats st;
        dispatch_stats(api->dispatch, &st);
        evbuffer_add_printf(b, "# HELP clsm_commands Unfinished commands by state.\n"
                               "# TYPE clsm_commands gauge\n");
        for (int s = 0; s < DISPATCH_NSTATES; s++)
            evbuffer_add_printf(b, "clsm_commands{state=\"%s\"} %d\n", dispatch_state_name(s),
                                st.live[s]);
        evbuffer_add_printf(b, "# HELP clsm_command_transitions_total Commands that entered "
                               "each state since start (confirmed and failed: finished).\n"
                               "# TYPE clsm_command_transitions_total counter\n");
        for (int s = 0; s < DISPATCH_NSTATES; s++)
            evbuffer_add_printf(b, "clsm_command_transitions_total{state=\"%s\"} %llu\n",
                                dispatch_state_name(s), (unsigned long long)st.entered[s]);
        evbuffer_add_printf(b,
                            "# HELP clsm_gwa_channel_requests Channel requests in our queue and "
                            "with a GWA, not yet opened (gwa.max_pending per GWA).\n"
                            "# TYPE clsm_gwa_channel_requests gauge\n"
                            "clsm_gwa_channel_requests{state=\"queued\"} %d\n"
                            "clsm_gwa_channel_requests{state=\"with_gwa\"} %d\n"
                            "# HELP clsm_gwa_exchanges HTTPS requests to GWAs in flight.\n"
                            "# TYPE clsm_gwa_exchanges gauge\nclsm_gwa_exchanges %d\n",
                            st.gwa_queued, st.gwa_waiting, st.gwa_exchanges);
    }
}

static void h_metrics(struct api_call *c)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        api__problem(c, 503, "overload", NULL, NULL, "out of memory");
        return;
    }
    evbuffer_add_printf(b,
                        "# HELP clsm_build_info Version of this clsmd.\n"
                        "# TYPE clsm_build_info gauge\nclsm_build_info{version=\"%s\"} 1\n"
                        "# HELP clsm_http_connections Open API connections.\n"
                        "# TYPE clsm_http_connections gauge\nclsm_http_connections %d\n"
                        "# HELP clsm_store_schema_version Applied store migrations.\n"
                        "# TYPE clsm_store_schema_version gauge\nclsm_store_schema_version %d\n",
                        CLSM_VERSION, http_server_connections(c->api->http),
                        store_schema_version(c->api->store));
    metrics_render(c->api->metrics, b);
    render_runtime(c->api, b);
    api__events_metrics(c->api, b);
    size_t n = evbuffer_get_length(b);
    http_reply(c->req, 200, "text/plain; version=0.0.4", evbuffer_pullup(b, -1), n);
    evbuffer_free(b);
}

static void h_me(struct api_call *c)
{
    api__json(c, 200,
              json_pack("{s:o, s:s, s:b}", "party",
                        c->who.party[0] ? json_string(c->who.party) : json_null(), "role",
                        c->who.role, "admin", c->who.admin));
}

/* --- life cycle -------------------------------------------------------------- */

struct api *api_new(struct event_base *base, struct store *store, const struct clsm_config *cfg)
{
    struct api *api = calloc(1, sizeof *api);
    struct http_limits lim = {
        .max_head = 16384,
        .max_output = 1 << 20,
        .max_body = (size_t)cfg->api_max_body,
        .max_connections = (int)cfg->api_max_connections,
        .idle_timeout_s = (int)cfg->api_idle_timeout_s,
        .request_timeout_s = (int)cfg->api_request_timeout_s,
    };
    struct http_callbacks cb = {on_head, on_request, on_done, on_free, api};

    if (api == NULL)
        return NULL;
    api->base = base;
    api->store = store;
    api->max_body = cfg->api_max_body;
    api->max_import_body = cfg->api_max_import_body;
    api->started_ms = time_now_ms();
    if (cfg->auth_admin_token[0]) {
        token_hash(cfg->auth_admin_token, strlen(cfg->auth_admin_token), api->admin_hash);
        api->admin_enabled = 1;
    }
    api->metrics = metrics_new(NROUTES);
    for (size_t i = 0; api->metrics && i < NROUTES; i++)
        metrics_label(api->metrics, i, routes[i].method, routes[i].pattern);
    api->http = http_server_new(base, &lim, &cb);
    if (api->metrics == NULL || api->http == NULL) {
        api_free(api);
        return NULL;
    }
    return api;
}

void api_set_requests(struct api *api, struct requests *requests)
{
    api->requests = requests;
}

void api_set_runtime(struct api *api, struct dispatch *dispatch, struct channel_mgr *channels)
{
    api->dispatch = dispatch;
    api->channels = channels;
}

int api_listen(struct api *api, const struct hostport *addr, struct hostport *bound)
{
    return http_server_listen(api->http, addr, bound);
}

void api_shutdown(struct api *api, void (*done)(void *arg), void *arg)
{
    http_server_shutdown(api->http, done, arg);
}

void api_free(struct api *api)
{
    if (api == NULL)
        return;
    http_server_free(api->http);
    api__events_free(api); /* after the server: its streams are over */
    metrics_free(api->metrics);
    free(api);
}
