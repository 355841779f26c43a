/*
 * events.c - the audit listener and the event streams it feeds; see
 * events.h and docs/events.md.
 */
#include "api/events.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "api/webhook.h"
#include "audit/audit.h"
#include "common/log.h"
#include "common/util.h"
#include "store/store.h"

#define PAGE_EVENTS 256   /* events read from the store at a time for a replay */
#define PAGE_SCANS  8     /* store reads for one stream per turn */
#define SCAN_ROWS   10000 /* events examined by one store read */

static const char preamble[] = ": clsm events\nretry: 3000\n\n";
static const char keepalive[] = ": keepalive\n\n";

struct stream {
    struct events *hub;
    struct http_request *req;
    struct evfilter filter;
    int64_t cursor; /* last event seq sent or passed over */
    int live;       /* caught up: events come from the listener */
    char who[40], peer[64];
    uint64_t sent;
    struct stream *prev, *next;
};

struct events {
    struct event_base *base;
    struct store *store;
    struct audit *audit;
    struct webhooks *webhooks;
    struct events_config cfg;
    struct event *heartbeat, *replay_ev;
    struct stream *streams;
    int nstreams;
    uint64_t opened, cut_slow;
};

static void stream_end(struct stream *s, enum log_level lvl, const char *why)
{
    struct events *hub = s->hub;
    LOG(lvl, why, LOG_S("who", s->who), LOG_S("peer", s->peer), LOG_I("cursor", s->cursor),
        LOG_I("sent", (long long)s->sent), LOG_I("queued", (long long)http_stream_queued(s->req)));
    if (s->prev)
        s->prev->next = s->next;
    else
        hub->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    hub->nstreams--;
    http_stream_end(s->req);
    free(s);
}

/* Queue one message; a reader too far behind is cut off. Returns 0, or -1
 * when the stream ended. */
static int stream_send(struct stream *s, const char *msg, size_t len)
{
    int rc = http_stream_write(s->req, msg, len);
    if (rc == -ENOBUFS) {
        s->hub->cut_slow++;
        stream_end(s, LOG_WARN, "event stream closed: the client reads too slowly");
        return -1;
    }
    if (rc != 0) {
        stream_end(s, LOG_INFO, "event stream closed");
        return -1;
    }
    return 0;
}

/* Write what the log holds after the cursor, a page at a time, while the
 * reader keeps up; once caught up, the stream goes live. */
static void stream_fill(struct stream *s)
{
    struct events *hub = s->hub;
    const char *kinds[EVFILTER_KINDS];
    struct store_event_filter f = {
        .party = s->filter.admin ? NULL : s->filter.party,
        .kinds = kinds,
        .nkinds = evfilter_kind_ptrs(&s->filter, kinds),
        .limit = PAGE_EVENTS,
    };
    int64_t last = audit_last_seq(hub->audit);

    for (int scans = 0; !s->live && scans < PAGE_SCANS; scans++) {
        if (http_stream_queued(s->req) >= hub->cfg.max_output / 2)
            return; /* 'drained' brings us back */
        if (s->cursor >= last) {
            s->live = 1;
            return;
        }
        json_t *items = NULL, *it;
        size_t i;
        f.after = s->cursor;
        f.upto = last - s->cursor > SCAN_ROWS ? s->cursor + SCAN_ROWS : last;
        if (store_event_list(hub->store, &f, &items) != 0) {
            stream_end(s, LOG_ERROR, "event stream closed: reading the event log failed");
            return;
        }
        json_array_foreach(items, i, it)
        {
            size_t len;
            int64_t seq = (int64_t)json_integer_value(json_object_get(it, "seq"));
            char *msg = evfilter_sse_message(
                seq, (int64_t)json_integer_value(json_object_get(it, "time_ms")),
                json_string_value(json_object_get(it, "kind")),
                json_string_value(json_object_get(it, "subject")),
                json_string_value(json_object_get(it, "actor")),
                json_string_value(json_object_get(it, "payload")), &len);
            int rc = msg ? http_stream_write(s->req, msg, len) : -ENOMEM;
            free(msg);
            if (rc == -ENOBUFS && http_stream_queued(s->req) > 0) {
                json_decref(items);
                return; /* the rest when the reader has caught up */
            }
            if (rc != 0) {
                json_decref(items);
                stream_end(s, LOG_WARN, "event stream closed: an event could not be sent");
                return;
            }
            s->cursor = seq;
            s->sent++;
        }
        if (json_array_size(items) < PAGE_EVENTS)
            s->cursor = f.upto;
        json_decref(items);
    }
    if (!s->live)
        event_active(hub->replay_ev, EV_TIMEOUT, 0); /* a long stretch: go on next turn */
}

static void replay_cb(evutil_socket_t fd, short what, void *arg)
{
    struct events *hub = arg;
    (void)fd;
    (void)what;
    for (struct stream *s = hub->streams, *next; s; s = next) {
        next = s->next;
        if (!s->live && http_stream_queued(s->req) < hub->cfg.max_output / 2)
            stream_fill(s);
    }
}

static void stream_closed(void *arg, int shutdown)
{
    struct stream *s = arg;
    stream_end(s, LOG_INFO,
               shutdown ? "event stream closed: shutting down"
                        : "event stream closed by the client");
}

static void stream_drained(void *arg)
{
    struct stream *s = arg;
    if (!s->live)
        stream_fill(s);
}

static void listener(void *arg, const struct audit_event *ev)
{
    struct events *hub = arg;
    char *msg = NULL;
    size_t len = 0;
    int built = 0;

    for (struct stream *s = hub->streams, *next; s; s = next) {
        next = s->next;
        if (!s->live || ev->seq <= s->cursor)
            continue;
        s->cursor = ev->seq;
        if (!evfilter_match(&s->filter, ev->kind, ev->audience))
            continue;
        if (!built) {
            msg = evfilter_sse_message(ev->seq, ev->time_ms, ev->kind, ev->subject, ev->actor,
                                       ev->payload, &len);
            built = 1;
        }
        if (msg == NULL) {
            stream_end(s, LOG_ERROR, "event stream closed: out of memory");
            continue;
        }
        if (stream_send(s, msg, len) == 0)
            s->sent++;
    }
    free(msg);
    if (hub->webhooks)
        webhooks_event(hub->webhooks, ev);
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    struct events *hub = arg;
    (void)fd;
    (void)what;
    /* Only where nothing waits to be written: there, bytes are on their way. */
    for (struct stream *s = hub->streams, *next; s; s = next) {
        next = s->next;
        if (http_stream_queued(s->req) == 0)
            stream_send(s, keepalive, sizeof keepalive - 1);
    }
}

struct events *events_new(struct event_base *base, struct store *store, struct audit *audit,
                          struct webhooks *webhooks, const struct events_config *cfg)
{
    struct events *hub = calloc(1, sizeof *hub);
    if (hub == NULL)
        return NULL;
    hub->base = base;
    hub->store = store;
    hub->audit = audit;
    hub->webhooks = webhooks;
    hub->cfg = *cfg;
    hub->heartbeat = event_new(base, -1, EV_PERSIST, heartbeat_cb, hub);
    hub->replay_ev = event_new(base, -1, 0, replay_cb, hub);
    if (hub->heartbeat == NULL || hub->replay_ev == NULL) {
        events_free(hub);
        return NULL;
    }
    struct timeval tv = {cfg->heartbeat_s, 0};
    event_add(hub->heartbeat, &tv);
    audit_set_listener(audit, listener, hub);
    return hub;
}

void events_free(struct events *hub)
{
    if (hub == NULL)
        return;
    if (hub->audit)
        audit_set_listener(hub->audit, NULL, NULL);
    while (hub->streams)
        stream_end(hub->streams, LOG_INFO, "event stream closed: shutting down");
    if (hub->heartbeat)
        event_free(hub->heartbeat);
    if (hub->replay_ev)
        event_free(hub->replay_ev);
    free(hub);
}

int events_stream(struct events *hub, struct http_request *req, const struct evfilter *filter,
                  int64_t after, const char *who)
{
    if (hub->nstreams >= hub->cfg.max_streams)
        return -EBUSY;
    struct stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    s->hub = hub;
    s->req = req;
    s->filter = *filter;
    s->live = after < 0;
    s->cursor = after < 0 ? audit_last_seq(hub->audit) : after;
    str_copy(s->who, sizeof s->who, who);
    str_copy(s->peer, sizeof s->peer, http_req_peer(req));
    http_add_header(req, "Cache-Control", "no-store");
    http_add_header(req, "X-Accel-Buffering", "no");
    struct http_stream_cb cb = {stream_closed, stream_drained, s};
    if (http_stream_begin(req, 200, "text/event-stream", hub->cfg.max_output, &cb) != 0) {
        http_stream_end(req);
        free(s);
        return 0;
    }
    s->next = hub->streams;
    if (hub->streams)
        hub->streams->prev = s;
    hub->streams = s;
    hub->nstreams++;
    hub->opened++;
    LOG(LOG_INFO, "event stream opened", LOG_S("who", s->who), LOG_S("peer", s->peer),
        LOG_I("after", after), LOG_I("kinds", (long long)s->filter.nkinds));
    if (stream_send(s, preamble, sizeof preamble - 1) == 0 && !s->live)
        stream_fill(s);
    return 0;
}

void events_stats(const struct events *hub, struct events_stats *out)
{
    out->streams = hub->nstreams;
    out->opened = hub->opened;
    out->cut_slow = hub->cut_slow;
}
