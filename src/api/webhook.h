/*
 * webhook.h - webhook subscriptions and their deliveries (docs/events.md).
 *
 * A party subscribes a URL, optionally narrowed to kind prefixes and with a
 * secret. clsmd then posts the events that party may see (evfilter.h), in
 * sequence order, as JSON arrays of at most 'batch_max' events and
 * 'batch_bytes' bytes, one request at a time per subscription, signed with
 * HMAC-SHA256 over the body when there is a secret. A 2xx answer moves the
 * subscription's cursor past the batch; anything else (transport errors,
 * timeouts, other statuses, answers over WEBHOOK_ANSWER_MAX bytes) is
 * retried after an exponential back-off capped at 'retry_max_s'. A
 * subscription failing for 'failing_after_s' is marked failing (and keeps
 * being retried). Cursors and states are written by the group commit, so
 * delivery resumes after a restart where it stood: at least once, in order;
 * a receiver drops repeats by seq.
 *
 * Deliveries run on libcurl's multi interface, driven by the caller's event
 * loop; everything here is for that loop's thread.
 */
#ifndef CLSM_WEBHOOK_H
#define CLSM_WEBHOOK_H

#include <event2/event.h>
#include <jansson.h>
#include <stdint.h>

#include "api/evfilter.h"

struct store;
struct audit;
struct audit_event;
struct committer;
struct webhooks;

#define WEBHOOK_URL_MAX    2048
#define WEBHOOK_SECRET_MIN 16
#define WEBHOOK_SECRET_MAX 256
#define WEBHOOK_ANSWER_MAX (64 * 1024)

/* A subscription as asked for (POST /v1/webhooks). */
struct webhook_spec {
    char url[WEBHOOK_URL_MAX + 1];
    struct evfilter kinds; /* only the kind prefixes are used */
    char secret[WEBHOOK_SECRET_MAX + 1];
    int has_secret;
};

/*
 * Check a subscription body: "url" (required: http or https, a host, at
 * most WEBHOOK_URL_MAX bytes of printable ASCII, no user name or password,
 * no fragment), "kinds" (optional: an array of kind prefixes, see
 * evfilter_add_kind()) and "secret" (optional: 16 to 256 printable ASCII
 * characters). Other members are refused. Returns 0, or -EINVAL with
 * 'pointer' (a JSON pointer into the body) and 'why' filled. Pure.
 */
int webhook_spec_parse(const json_t *body, struct webhook_spec *out, char *pointer, size_t plen,
                       char *why, size_t wlen);

/* The signature header value for 'body': "sha256=" and the lower-case hex
 * HMAC-SHA256 with 'secret' as key; 'out' has at least 72 bytes. Pure. */
void webhook_sign(const char *secret, const void *body, size_t len, char out[72]);

struct webhook_config {
    int timeout_s;       /* one delivery */
    int retry_max_s;     /* longest back-off */
    int failing_after_s; /* failing this long: marked failing */
    int batch_max;       /* events per delivery */
    size_t batch_bytes;  /* body bytes per delivery */
    int max_per_party;   /* subscriptions per owner */
};

/* Create the engine; 'store', 'audit' and 'committer' are borrowed and must
 * outlive it. Loads the stored subscriptions and registers a commit writer
 * for their progress. NULL on failure (the store failed, no writer slot). */
struct webhooks *webhooks_new(struct event_base *base, struct store *store, struct audit *audit,
                              struct committer *committer, const struct webhook_config *cfg);

/* Abandon deliveries in flight (they are repeated after a restart) and
 * free everything. */
void webhooks_free(struct webhooks *w);

/* A durable event (from the audit listener): wakes the subscriptions that
 * may want it. */
void webhooks_event(struct webhooks *w, const struct audit_event *ev);

/*
 * Subscribe for 'party' (NULL: the configured admin token) with admin
 * rights or not. Delivery starts with the events after the last durable
 * one. The subscription is stored before this returns and audited
 * (webhook.created). '*out' receives its public form (webhooks_list()).
 * Returns 0, -EDQUOT (the owner holds max_per_party already), -ENOMEM or
 * the store's error.
 */
int webhooks_create(struct webhooks *w, const struct webhook_spec *spec, const char *party,
                    int admin, json_t **out);

/* Delete subscription 'id' if 'party' owns it or 'admin' is set, and audit
 * it (webhook.deleted). Returns 0, -ENOENT, or the store's error. */
int webhooks_delete(struct webhooks *w, const char *id, const char *party, int admin);

/* Drop the subscriptions of a party that was deleted (the store deleted
 * their rows with it). Subscriptions found gone otherwise (a progress write
 * that finds no row) are dropped as well. */
void webhooks_forget_party(struct webhooks *w, const char *party);

/* The subscriptions 'party' owns (all with 'admin'), ordered by id, in
 * public form: no secret, only whether there is one. New reference. */
json_t *webhooks_list(struct webhooks *w, const char *party, int admin);

struct webhook_stats {
    int subscriptions, failing, in_flight;
    uint64_t delivered_events, deliveries, failures;
};
void webhooks_stats(const struct webhooks *w, struct webhook_stats *out);

#endif
