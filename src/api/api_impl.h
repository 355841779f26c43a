/*
 * api_impl.h - what the files of the API module share: the API context, the
 * per-request call, the route table entry and the reply helpers. Not for use
 * outside src/api/.
 */
#ifndef CLSM_API_IMPL_H
#define CLSM_API_IMPL_H

#include <jansson.h>
#include <stdint.h>

#include "api/api.h"
#include "api/http.h"
#include "api/metrics.h"
#include "common/token.h"
#include "registry/registry.h"

#define API_MAX_PARAMS 3
#define API_PARAM_MAX  128

struct dispatch;
struct channel_mgr;

struct api {
    struct event_base *base;
    struct store *store;
    struct dispatch *dispatch;    /* NULL until api_set_runtime() */
    struct channel_mgr *channels; /* NULL when channels are off */
    struct http_server *http;
    struct metrics *metrics;
    uint8_t admin_hash[TOKEN_HASH_LEN];
    int admin_enabled;
    long long max_body, max_import_body;
    int64_t started_ms;
    struct requests *requests; /* NULL until api_set_requests() */
    struct events *events;     /* NULL until api_set_events() */
    struct webhooks *webhooks; /* NULL until api_set_events() */
};

/* Who is calling. */
struct principal {
    int admin;
    char party[32]; /* empty for the configured admin token */
    char role[16];
};

struct api_call;
typedef void (*api_handler)(struct api_call *c);

enum api_auth { AUTH_NONE, AUTH_ANY, AUTH_ADMIN };
enum api_body { BODY_NONE, BODY_JSON, BODY_IMPORT };

struct api_route {
    const char *method;
    const char *pattern; /* "/v1/installations/{id}" */
    api_handler fn;
    enum api_auth auth;
    enum api_body body;
    int kind; /* enum reg_kind_id, or -1 */
};

struct api_call {
    struct api *api;
    struct http_request *req;
    const struct api_route *route;
    const struct reg_kind *kind;                /* route->kind resolved, or NULL */
    char params[API_MAX_PARAMS][API_PARAM_MAX]; /* decoded {…} path parts */
    struct principal who;
    struct {
        char *name, *value;
    } query[HTTP_MAX_QUERY_PARAMS];
    size_t nquery;
    char querybuf[4096];
};

/* Answer with a problem document. 'field' names a query parameter or
 * header, 'pointer' a location in the body (JSON pointer); both may be NULL. */
void api__problem(struct api_call *c, int status, const char *slug, const char *field,
                  const char *pointer, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Answer with 'body' as JSON (the reference is stolen; NULL sends no body). */
void api__json(struct api_call *c, int status, json_t *body);

/* Parse the request body as a JSON object within the API limits. Answers
 * the problem (415 wrong type, 400 not JSON or over the limits, 422 not an
 * object) and returns -1 when it cannot; 'empty_ok' turns an empty body
 * into an empty object. */
int api__body(struct api_call *c, int empty_ok, json_t **out);

/* The decoded value of query parameter 'name', or NULL. */
const char *api__query(const struct api_call *c, const char *name);

/* Answer 400 and return -1 when the query has a parameter not in
 * 'allowed' (NULL-terminated) and not a filter field of 'k' (may be NULL). */
int api__check_query(struct api_call *c, const char *const *allowed, const struct reg_kind *k);

/* The part of kind 'k' the caller may see. */
struct store_scope api__scope(const struct api_call *c, const struct reg_kind *k);

/* Refuse an admin-only action: 404 when the caller cannot even see the
 * addressed entity, else 403. */
void api__deny(struct api_call *c);

/* Handlers (api_registry.c). */
void api__reg_list(struct api_call *c);
void api__reg_get(struct api_call *c);
void api__reg_create(struct api_call *c);
void api__reg_replace(struct api_call *c);
void api__reg_patch(struct api_call *c);
void api__reg_delete(struct api_call *c);
void api__import(struct api_call *c);
void api__set_light(struct api_call *c);
void api__token_create(struct api_call *c);
void api__token_list(struct api_call *c);
void api__token_delete(struct api_call *c);

/* Handlers (api_runtime.c). */
void api__command_submit(struct api_call *c);
void api__command_get(struct api_call *c);
void api__channel_list(struct api_call *c);

/* Handlers (api_requests.c). */
void api__request_submit(struct api_call *c);
void api__request_list(struct api_call *c);
void api__request_get(struct api_call *c);
void api__request_cancel(struct api_call *c);
void api__installation_state(struct api_call *c);
void api__installation_flexibility(struct api_call *c);
void api__segment_flexibility(struct api_call *c);

/* Handlers (api_meter.c). */
void api__metering_point_readings(struct api_call *c);

/* Handlers, metrics and clean-up of events, webhooks and the audit listing
 * (api_events.c). */
void api__events_stream(struct api_call *c);
void api__audit_list(struct api_call *c);
void api__webhook_list(struct api_call *c);
void api__webhook_create(struct api_call *c);
void api__webhook_delete(struct api_call *c);
struct evbuffer;
void api__events_metrics(const struct api *api, struct evbuffer *b);
void api__events_free(struct api *api);
/* A party was deleted: its webhook subscriptions (deleted with it in the
 * store) stop. */
void api__events_party_deleted(struct api *api, const char *party);

#endif
