/*
 * audit.h - the append-only event log: every event gets a sequence number
 * and a SHA-256 hash over its content and the previous event's hash, so
 * that an edited, inserted or deleted row breaks the chain.
 *
 * Events are queued and written by the group commit (store/commit.h) in the
 * same transaction as the state changes of that loop iteration, so a change
 * and its event are durable together. Each event names its audience: the
 * parties that may see it (the owner of a request, the VNB of the grid, the
 * parties assigned to an installation); the admin sees everything. Once an
 * event is durable, the listener (live events, webhooks) hears of it.
 *
 * One audit per store, used from the loop thread of its event base.
 */
#ifndef CLSM_AUDIT_H
#define CLSM_AUDIT_H

#include <jansson.h>
#include <stdint.h>

struct committer;
struct store;
struct audit;

#define AUDIT_AUDIENCE_MAX 16 /* parties named in one event */

/* A durable event as the listener gets it; valid during the call only. */
struct audit_event {
    int64_t seq, time_ms;
    const char *kind, *subject, *actor;
    const char *audience; /* party ids separated by single spaces; "" = admin only */
    const char *payload;  /* a JSON object, compact with sorted keys */
};

typedef void (*audit_listener_fn)(void *arg, const struct audit_event *ev);

/* Create the log on 'store' (borrowed) and register it with the committer.
 * Reads the last sequence number and hash. NULL when the store fails. */
struct audit *audit_new(struct store *store, struct committer *committer);

/* Free the audit; what is still queued is lost (commit_now() first). */
void audit_free(struct audit *a);

/* Hear of every event once it is durable, in sequence order. One listener. */
void audit_set_listener(struct audit *a, audit_listener_fn fn, void *arg);

/*
 * Queue one event. 'kind' ("channel.refused"), 'subject' (what it is about,
 * "smgw:EABC0000000001") and 'actor' (party id, "admin" or "system") are
 * copied; 'payload' (a JSON object) is stolen. 'audience' lists up to
 * AUDIT_AUDIENCE_MAX party ids (NULL entries and duplicates are skipped;
 * 'naud' may be 0). Returns 0, or -ENOMEM (the event is lost and counted).
 */
int audit_append_to(struct audit *a, const char *kind, const char *subject, const char *actor,
                    const char *const *audience, size_t naud, json_t *payload);

/* audit_append_to() for the admin only. */
int audit_append(struct audit *a, const char *kind, const char *subject, const char *actor,
                 json_t *payload);

/* Events written and events lost since start; events queued now. */
uint64_t audit_written(const struct audit *a);
uint64_t audit_lost(const struct audit *a);
size_t audit_queued(const struct audit *a);

/*
 * The hash of an event, from its fields; for writing and for verifying.
 * 'prev' and 'out' are 32 bytes. Every field is length-prefixed; the
 * audience enters only when it is not empty, so that events written before
 * audiences existed keep their hashes.
 */
void audit_hash(const uint8_t prev[32], int64_t seq, int64_t time_ms, const char *kind,
                const char *subject, const char *actor, const char *audience, const char *payload,
                uint8_t out[32]);

/* The sequence number of the last durable event; 0 for an empty log. */
int64_t audit_last_seq(const struct audit *a);

/*
 * Checking a stored chain (clsmctl audit verify). Start with a zeroed
 * struct audit_chain and feed every stored event in sequence order with its
 * stored prev_hash and hash; audit_chain_next() returns the first fault
 * found at that event:
 *   AUDIT_CHAIN_GAP   its seq is not the one after the last (a row deleted,
 *                     or one inserted with a new number); the log starts at 1
 *   AUDIT_CHAIN_LINK  its prev_hash is not the hash of the event before
 *                     (rows inserted, deleted or reordered)
 *   AUDIT_CHAIN_HASH  its hash does not match its content (a row edited)
 * On AUDIT_CHAIN_OK the chain moves on to this event; after a fault it stays
 * where it was. A chain cut off at its end cannot be seen from the rows
 * alone: compare the last hash with one recorded elsewhere. Pure.
 */
enum audit_fault { AUDIT_CHAIN_OK, AUDIT_CHAIN_GAP, AUDIT_CHAIN_LINK, AUDIT_CHAIN_HASH };
struct audit_chain {
    int64_t seq; /* last event checked, 0 before the first */
    uint8_t hash[32];
    int64_t checked; /* events that passed */
};
enum audit_fault audit_chain_next(struct audit_chain *ch, const struct audit_event *ev,
                                  const uint8_t prev[32], const uint8_t hash[32]);

#endif
