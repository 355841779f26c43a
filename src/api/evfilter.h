/*
 * evfilter.h - which events a reader wants and may see, and how an event
 * looks to the outside (docs/events.md).
 *
 * The same rule serves event streams (GET /v1/events) and webhooks: the
 * admin sees every event; a party sees the events whose audience names it.
 * A reader may narrow that to kinds starting with one of up to
 * EVFILTER_KINDS prefixes. Parsing here takes outside text (query values,
 * the Last-Event-ID header, subscription bodies) with strict checks and is
 * fuzzed (tests/fuzz/fuzz_events.c).
 *
 * Everything here is pure and may be called from any thread.
 */
#ifndef CLSM_EVFILTER_H
#define CLSM_EVFILTER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define EVFILTER_KINDS    STORE_EVENT_KINDS
#define EVFILTER_KIND_MAX 64

struct evfilter {
    int admin;      /* sees every event */
    char party[32]; /* otherwise: events whose audience names this party */
    char kinds[EVFILTER_KINDS][EVFILTER_KIND_MAX + 1];
    size_t nkinds; /* 0: every kind */
};

/* Parse an event sequence number: 1 to 19 decimal digits, at most
 * INT64_MAX; no sign, spaces or other bytes. Returns 0 or -EINVAL. */
int evfilter_parse_seq(const char *s, int64_t *out);

/* Add one kind prefix: 1 to EVFILTER_KIND_MAX bytes of A-Z a-z 0-9 . _ -
 * ("request." or "command.failed"). A prefix given twice is kept once.
 * Returns 0, or -EINVAL (bad characters or length) / -E2BIG (more than
 * EVFILTER_KINDS) with 'why' (may be NULL) set. */
int evfilter_add_kind(struct evfilter *f, const char *kind, size_t len, char *why, size_t whylen);

/* Add the prefixes of a comma-separated list ("request.,command.failed");
 * empty items are refused. Returns as evfilter_add_kind(). */
int evfilter_parse_kinds(struct evfilter *f, const char *list, char *why, size_t whylen);

/* Nonzero when 'audience' (party ids separated by single spaces) names
 * 'party'. */
int evfilter_audience_has(const char *audience, const char *party);

/* Nonzero when 'f' lets an event of 'kind' with 'audience' through. */
int evfilter_match(const struct evfilter *f, const char *kind, const char *audience);

/* The kind prefixes as a NULL-free pointer array for store_event_list();
 * returns the count. */
size_t evfilter_kind_ptrs(const struct evfilter *f, const char *ptrs[EVFILTER_KINDS]);

/* The public form of an event: {seq, time (RFC 3339 UTC with ms), kind,
 * subject, actor, payload}. 'payload' is the stored JSON text; text that is
 * not a JSON object (only a hand-edited store has such) becomes null. A new
 * reference, or NULL when out of memory. */
json_t *evfilter_event_json(int64_t seq, int64_t time_ms, const char *kind, const char *subject,
                            const char *actor, const char *payload);

/* One Server-Sent Events message for an event: "id: <seq>\nevent: <kind>\n
 * data: <evfilter_event_json() on one line>\n\n". The event line is left out
 * for a kind that is not made of the prefix characters above (it could not
 * be a field). Returns a string the caller free()s (its length in '*len'),
 * or NULL when out of memory. */
char *evfilter_sse_message(int64_t seq, int64_t time_ms, const char *kind, const char *subject,
                           const char *actor, const char *payload, size_t *len);

#endif
