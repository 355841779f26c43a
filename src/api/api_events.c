/*
 * api_events.c - handlers of live events (GET /v1/events), webhook
 * subscriptions (/v1/webhooks) and the audit listing (GET /v1/audit); the
 * engines behind them are events.h and webhook.h.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "api/events.h"
#include "api/evfilter.h"
#include "api/webhook.h"
#include "common/log.h"
#include "common/util.h"

#define AUDIT_PAGE_DEFAULT 100
#define AUDIT_PAGE_MAX     1000

int api_set_events(struct api *api, struct audit *audit, struct committer *committer,
                   const struct clsm_config *cfg)
{
    struct webhook_config wc = {
        .timeout_s = (int)cfg->webhook_timeout_s,
        .retry_max_s = (int)cfg->webhook_retry_max_s,
        .failing_after_s = (int)cfg->webhook_failing_after_s,
        .batch_max = (int)cfg->webhook_batch_max,
        .batch_bytes = (size_t)cfg->webhook_batch_bytes,
        .max_per_party = (int)cfg->webhook_max_per_party,
    };
    struct events_config ec = {
        .max_streams = (int)cfg->events_max_streams,
        .max_output = (size_t)cfg->events_max_stream_output,
        .heartbeat_s = (int)cfg->events_heartbeat_s,
    };
    api->webhooks = webhooks_new(api->base, api->store, audit, committer, &wc);
    if (api->webhooks)
        api->events = events_new(api->base, api->store, audit, api->webhooks, &ec);
    if (api->events == NULL) {
        LOG(LOG_ERROR, "cannot start live events and webhooks",
            LOG_S("error", store_errmsg(api->store)));
        return -1;
    }
    return 0;
}

void api__events_free(struct api *api)
{
    events_free(api->events);
    webhooks_free(api->webhooks);
    api->events = NULL;
    api->webhooks = NULL;
}

void api__events_party_deleted(struct api *api, const char *party)
{
    if (api->webhooks)
        webhooks_forget_party(api->webhooks, party);
}

void api__events_metrics(const struct api *api, struct evbuffer *b)
{
    struct events_stats es;
    struct webhook_stats ws;
    if (api->events == NULL)
        return;
    events_stats(api->events, &es);
    webhooks_stats(api->webhooks, &ws);
    evbuffer_add_printf(
        b,
        "# HELP clsm_event_streams Open event streams (GET /v1/events).\n"
        "# TYPE clsm_event_streams gauge\nclsm_event_streams %d\n"
        "# HELP clsm_event_streams_opened_total Event streams opened since start.\n"
        "# TYPE clsm_event_streams_opened_total counter\nclsm_event_streams_opened_total %llu\n"
        "# HELP clsm_event_streams_cut_total Event streams closed because the client read too "
        "slowly.\n"
        "# TYPE clsm_event_streams_cut_total counter\nclsm_event_streams_cut_total %llu\n"
        "# HELP clsm_webhooks Webhook subscriptions by state.\n"
        "# TYPE clsm_webhooks gauge\nclsm_webhooks{state=\"active\"} %d\n"
        "clsm_webhooks{state=\"failing\"} %d\n"
        "# HELP clsm_webhook_deliveries_total Webhook deliveries answered with 2xx.\n"
        "# TYPE clsm_webhook_deliveries_total counter\nclsm_webhook_deliveries_total %llu\n"
        "# HELP clsm_webhook_events_total Events delivered by webhooks.\n"
        "# TYPE clsm_webhook_events_total counter\nclsm_webhook_events_total %llu\n"
        "# HELP clsm_webhook_failures_total Webhook deliveries that failed (retried).\n"
        "# TYPE clsm_webhook_failures_total counter\nclsm_webhook_failures_total %llu\n",
        es.streams, (unsigned long long)es.opened, (unsigned long long)es.cut_slow,
        ws.subscriptions - ws.failing, ws.failing, (unsigned long long)ws.deliveries,
        (unsigned long long)ws.delivered_events, (unsigned long long)ws.failures);
}

/* --- GET /v1/events ---------------------------------------------------------------- */

void api__events_stream(struct api_call *c)
{
    static const char *const allowed[] = {"after", "kind", NULL};
    const char *after_q = api__query(c, "after"), *kind = api__query(c, "kind");
    const char *last_id = http_req_header(c->req, "Last-Event-ID");
    struct evfilter f;
    int64_t after = -1;
    char why[96];

    if (api__check_query(c, allowed, NULL) != 0)
        return;
    if (c->api->events == NULL) {
        api__problem(c, 503, "unavailable", NULL, NULL, "live events are not available");
        return;
    }
    memset(&f, 0, sizeof f);
    f.admin = c->who.admin;
    str_copy(f.party, sizeof f.party, c->who.party);
    if (after_q && evfilter_parse_seq(after_q, &after) != 0) {
        api__problem(c, 400, "invalid-parameter", "after", NULL,
                     "after must be an event sequence number (0 or more)");
        return;
    }
    /* A reconnecting EventSource sends the last id it saw; it is newer
     * than the 'after' of the URL it reconnects to. */
    if (last_id && last_id[0] && evfilter_parse_seq(last_id, &after) != 0) {
        api__problem(c, 400, "invalid-parameter", "Last-Event-ID", NULL,
                     "Last-Event-ID must be an event sequence number (0 or more)");
        return;
    }
    if (kind && evfilter_parse_kinds(&f, kind, why, sizeof why) != 0) {
        api__problem(c, 400, "invalid-parameter", "kind", NULL,
                     "kind is a comma-separated list of kind prefixes: %s", why);
        return;
    }
    if (strcmp(http_req_method(c->req), "HEAD") == 0) {
        http_add_header(c->req, "Cache-Control", "no-store");
        http_reply(c->req, 200, "text/event-stream", NULL, 0);
        return;
    }
    int rc =
        events_stream(c->api->events, c->req, &f, after, c->who.party[0] ? c->who.party : "admin");
    /* From here on 'c' belongs to the stream unless it was refused. */
    if (rc == -EBUSY) {
        http_add_header(c->req, "Retry-After", "5");
        api__problem(c, 503, "overload", NULL, NULL,
                     "too many event streams are open; try again later");
    } else if (rc != 0) {
        api__problem(c, 503, "overload", NULL, NULL, "out of memory");
    }
}

/* --- GET /v1/audit ------------------------------------------------------------------- */

void api__audit_list(struct api_call *c)
{
    static const char *const allowed[] = {"after", "limit", NULL};
    const char *after_q = api__query(c, "after"), *lim = api__query(c, "limit");
    long long limit = AUDIT_PAGE_DEFAULT;
    int64_t after = 0, last_seq = 0;
    uint8_t last_hash[32];
    json_t *items = NULL, *it;
    size_t i;

    if (api__check_query(c, allowed, NULL) != 0)
        return;
    if (after_q && evfilter_parse_seq(after_q, &after) != 0) {
        api__problem(c, 400, "invalid-parameter", "after", NULL,
                     "after must be an event sequence number (0 or more)");
        return;
    }
    if (lim && parse_ll(lim, 1, AUDIT_PAGE_MAX, &limit) != 0) {
        api__problem(c, 400, "invalid-parameter", "limit", NULL,
                     "limit must be an integer from 1 to %d", AUDIT_PAGE_MAX);
        return;
    }
    struct store_event_filter f = {after, INT64_MAX, NULL, NULL, 0, (int)limit};
    int rc = store_event_list(c->api->store, &f, &items);
    int lrc = rc == 0 ? store_event_last(c->api->store, &last_seq, last_hash) : rc;
    if (rc != 0 || (lrc != 0 && lrc != -ENOENT)) {
        json_decref(items);
        api__problem(c, 503, "store-unavailable", NULL, NULL, "the store failed: %s",
                     store_errmsg(c->api->store));
        return;
    }
    json_array_foreach(items, i, it)
    {
        char t[40];
        json_object_set_new(it, "time",
                            json_string(time_format_ms(
                                json_integer_value(json_object_get(it, "time_ms")), t, sizeof t)));
    }
    json_t *next = json_null();
    if (json_array_size(items) == (size_t)limit)
        next = json_deep_copy(json_object_get(json_array_get(items, (size_t)limit - 1), "seq"));
    char hex[65] = "";
    if (lrc == 0)
        hex_encode(last_hash, 32, hex);
    api__json(c, 200,
              json_pack("{s:o, s:o, s:I, s:o}", "items", items, "next_after", next, "last_seq",
                        (json_int_t)(lrc == 0 ? last_seq : 0), "last_hash",
                        lrc == 0 ? json_string(hex) : json_null()));
}

/* --- /v1/webhooks ---------------------------------------------------------------------- */

static const char *owner(const struct api_call *c)
{
    return c->who.party[0] ? c->who.party : NULL;
}

static int webhooks_on(struct api_call *c)
{
    if (c->api->webhooks)
        return 1;
    api__problem(c, 503, "unavailable", NULL, NULL, "webhooks are not available");
    return 0;
}

void api__webhook_list(struct api_call *c)
{
    if (api__check_query(c, NULL, NULL) != 0 || !webhooks_on(c))
        return;
    api__json(c, 200,
              json_pack("{s:o}", "items", webhooks_list(c->api->webhooks, owner(c), c->who.admin)));
}

void api__webhook_create(struct api_call *c)
{
    json_t *body = NULL, *out = NULL;
    struct webhook_spec *spec = NULL;
    char pointer[96], why[160];
    int rc;

    if (api__check_query(c, NULL, NULL) != 0 || !webhooks_on(c) || api__body(c, 0, &body) != 0)
        return;
    spec = malloc(sizeof *spec);
    if (spec == NULL) {
        api__problem(c, 503, "overload", NULL, NULL, "out of memory");
        goto out;
    }
    if (webhook_spec_parse(body, spec, pointer, sizeof pointer, why, sizeof why) != 0) {
        api__problem(c, 422, "validation", NULL, pointer, "%s", why);
        goto out;
    }
    rc = webhooks_create(c->api->webhooks, spec, owner(c), c->who.admin, &out);
    if (rc == -EDQUOT) {
        api__problem(c, 409, "limit", NULL, NULL,
                     "this party holds the most webhook subscriptions allowed; delete one first");
    } else if (rc != 0) {
        api__problem(c, 503, "store-unavailable", NULL, NULL, "the subscription was not stored: %s",
                     rc == -ENOMEM ? "out of memory" : store_errmsg(c->api->store));
    } else {
        char loc[64];
        snprintf(loc, sizeof loc, "/v1/webhooks/%s", json_string_value(json_object_get(out, "id")));
        http_add_header(c->req, "Location", loc);
        api__json(c, 201, out);
    }
out:
    free(spec);
    json_decref(body);
}

void api__webhook_delete(struct api_call *c)
{
    if (api__check_query(c, NULL, NULL) != 0 || !webhooks_on(c))
        return;
    int rc = webhooks_delete(c->api->webhooks, c->params[0], owner(c), c->who.admin);
    if (rc == -ENOENT)
        api__problem(c, 404, "not-found", NULL, NULL, "no webhook with id \"%s\"", c->params[0]);
    else if (rc != 0)
        api__problem(c, 503, "store-unavailable", NULL, NULL, "the store failed: %s",
                     store_errmsg(c->api->store));
    else
        api__json(c, 204, NULL);
}
