/*
 * events.h - live events: the one audit listener, which hands every durable
 * event to the open event streams (GET /v1/events, Server-Sent Events) and
 * to the webhooks (webhook.h). docs/events.md describes the format.
 *
 * A stream that resumes (Last-Event-ID or ?after=) first replays what the
 * event log holds after that point, page by page at the reader's pace, and
 * then goes on with live events, without gap or repeat: both come in
 * sequence order and every event is sent at most once per stream. A live
 * stream whose reader falls more than 'max_output' bytes behind is closed
 * (and logged); the reader resumes with Last-Event-ID.
 *
 * Everything runs on the loop thread of the base given at creation.
 */
#ifndef CLSM_EVENTS_H
#define CLSM_EVENTS_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "api/evfilter.h"

struct store;
struct audit;
struct webhooks;
struct http_request;
struct events;

struct events_config {
    int max_streams;
    size_t max_output; /* bytes queued towards one stream */
    int heartbeat_s;
};

/* Create the hub and make it the listener of 'audit'; 'webhooks' (may be
 * NULL) hears of every event after the streams. All borrowed. NULL when out
 * of memory. */
struct events *events_new(struct event_base *base, struct store *store, struct audit *audit,
                          struct webhooks *webhooks, const struct events_config *cfg);

/* End every stream, stop listening and free the hub. */
void events_free(struct events *ev);

/*
 * Answer 'req' with an event stream for 'filter' (copied), starting after
 * event 'after', or with the next live event when 'after' is negative.
 * Returns 0 when the stream took the request (the caller must not touch it
 * any more), or -EBUSY (max_streams reached; the caller answers).
 * 'who' names the reader in logs.
 */
int events_stream(struct events *ev, struct http_request *req, const struct evfilter *filter,
                  int64_t after, const char *who);

struct events_stats {
    int streams;
    uint64_t opened, cut_slow;
};
void events_stats(const struct events *ev, struct events_stats *out);

#endif
