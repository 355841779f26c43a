/*
 * audit.h - the append-only event log: every event gets a sequence number
 * and a SHA-256 hash over its content and the previous event's hash, so
 * that an edited, inserted or deleted row breaks the chain.
 *
 * Events are appended to a queue and written in one transaction at the end
 * of the loop iteration (group commit), so that thousands of events per
 * second cost a handful of commits. audit_flush() writes at once. One audit
 * per store, used from the loop thread of its event base.
 */
#ifndef CLSM_AUDIT_H
#define CLSM_AUDIT_H

#include <event2/event.h>
#include <jansson.h>
#include <stdint.h>

struct store;
struct audit;

/* Create the log on 'store' (borrowed; it must outlive the audit). Reads
 * the last sequence number and hash. NULL when the store fails. */
struct audit *audit_new(struct event_base *base, struct store *store);

/* Flush what is queued and free the audit. */
void audit_free(struct audit *a);

/*
 * Queue one event. 'kind' ("channel.refused"), 'subject' (what it is about,
 * "smgw:EABC0000000001") and 'actor' (party id, "admin" or "system") are
 * copied; 'payload' (a JSON object) is stolen. Returns 0, or -ENOMEM (the
 * event is lost and counted).
 */
int audit_append(struct audit *a, const char *kind, const char *subject, const char *actor,
                 json_t *payload);

/* Write everything queued now, in one transaction. Returns 0 or -EIO (the
 * events stay queued and the next flush tries again). */
int audit_flush(struct audit *a);

/* Events written and events lost since start. */
uint64_t audit_written(const struct audit *a);
uint64_t audit_lost(const struct audit *a);

/* The hash of an event, from its fields; for writing and for verifying.
 * 'prev' and 'out' are 32 bytes. */
void audit_hash(const uint8_t prev[32], int64_t seq, int64_t time_ms, const char *kind,
                const char *subject, const char *actor, const char *payload, uint8_t out[32]);

#endif
