/*
 * requests.h - switching and control requests at run time (DESIGN.md §2, §4):
 * admission through the arbiter, the life cycle of each request, and the
 * reconciliation that drives every device toward the state its requests
 * want, through the dispatcher (channel, command, acknowledgement, state
 * read back) - the only way to a device.
 *
 * A request is admitted in memory and answered once its row, its targets,
 * its executions and its events are durable (group commit). For each device
 * the reconciler computes the desired state from the effective timelines of
 * the installations behind it (arbiter.h), compares it with the state the
 * device last confirmed and sends the difference; each request's execution
 * on a device is confirmed once the device confirmed a desired state that
 * includes the request. Timers follow window starts and ends, deadlines and
 * the boundaries of the timelines. After a restart everything unfinished is
 * loaded again and reconciled.
 *
 * Everything runs on the loop thread of the base given at creation.
 */
#ifndef CLSM_REQUESTS_H
#define CLSM_REQUESTS_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>

#include "request/request.h"

struct store;
struct audit;
struct committer;
struct dispatch;
struct requests;

struct requests_config {
    int grid_deadline_s;    /* default time to confirmation of grid requests (300) */
    int cascade_deadline_s; /* of grid requests through the TSO cascade (720) */
    int market_deadline_s;  /* of market requests (900) */
    int max_targets;        /* installations one request may address */
    int compliance_grace_s; /* measured above the confirmed cap this long: noncompliant */
};

/* Who asks: a party with its role ("vnb", "uenb", "lf", ...), or the admin. */
struct requests_who {
    bool admin;
    const char *party; /* "" for the admin */
    const char *role;
};

/*
 * How a call ends: an HTTP status and a document (stolen). For a problem
 * (status >= 400 with 'slug' set) the document holds "detail" and may hold
 * "pointer" and further members (a rejected request's "request" id and
 * "decision"); otherwise it is the request. 'location' is the request's
 * path when one was created (NULL otherwise). Valid during the call.
 */
typedef void (*requests_answer_fn)(void *arg, int status, const char *slug, json_t *doc,
                                   const char *location);

/* Create the runtime; everything passed is borrowed and must outlive it.
 * NULL on failure. */
struct requests *requests_new(struct event_base *base, struct store *store, struct audit *audit,
                              struct committer *committer, struct dispatch *dispatch,
                              const struct requests_config *cfg);
void requests_free(struct requests *r);

/*
 * Measured power of 'device' at 'time_ms' (W: > 0 consumption, < 0
 * production), from its telemetry or state or from meter values. A device
 * whose measured power stays above the cap it confirmed (plus 5 %, at least
 * 100 W) for compliance_grace_s becomes noncompliant: the event
 * installation.noncompliant goes to the VNB and the parties assigned to
 * each of its installations, and the state shows it; back under the cap,
 * installation.compliant. Only values measured after the device last
 * confirmed its state count.
 */
void requests_measured(struct requests *r, const char *device, int64_t time_ms, int64_t watts);
/* The same for the device behind installation 'id'. */
void requests_measured_installation(struct requests *r, const char *id, int64_t time_ms,
                                    int64_t watts);

/* Load what was in force or unfinished when clsmd last stopped, and
 * reconcile it. Returns 0 or a negative errno (the store failed). */
int requests_resume(struct requests *r);

/*
 * Submit a parsed request. 'idem_key' (NULL: none) with 'body_hash' (hex
 * SHA-256 of the body as sent) makes a repetition return the first answer.
 * The answer comes through 'fn': at once for refusals that change nothing
 * (403, 404, 409 for a request that cannot be superseded, 422), after the
 * commit for admitted (202) and arbitration-rejected (409, stored) ones.
 * Returns 0, or -ENOMEM (then 'fn' is not called).
 */
int requests_submit(struct requests *r, const struct requests_who *who, const struct req_spec *spec,
                    const char *idem_key, const char *body_hash, requests_answer_fn fn, void *arg);

/* Cancel request 'id' (its owner, the VNB of an installation it touches, or
 * the admin). Answers 202 with the request, 404 (unknown or not visible) or
 * 409 (already ended), through 'fn' after the commit. */
int requests_cancel(struct requests *r, const struct requests_who *who, const char *id,
                    requests_answer_fn fn, void *arg);

/* The request 'id' with its decision, targets and executions (up to
 * 'limit' executions after device 'after'), if 'who' may see it: its
 * owner, a VNB whose grid it touches, the admin. 0, -ENOENT or -EIO. */
int requests_get(struct requests *r, const struct requests_who *who, const char *id,
                 const char *after, int limit, json_t **out);

/* Requests of 'who' (the admin: of 'party', or all), newest first,
 * optionally in one state, before seq 'before' (0: from the newest). */
int requests_list(struct requests *r, const struct requests_who *who, const char *party,
                  const char *state, int64_t before, int limit, json_t **out);

/* The state of installation 'id' (visibility is the caller's business):
 * the effective timeline from 'from' to 'to' with the request behind each
 * interval, the floor, the device's desired and confirmed state and its
 * channel. 0, -ENOENT or -EIO. */
int requests_installation_state(struct requests *r, const char *id, int64_t from, int64_t to,
                                json_t **out);

/* Flexibility of one installation, or aggregated over the installations
 * of segment 'id' and below that 'who' may see. 0, -ENOENT or -EIO. */
int requests_flexibility(struct requests *r, const struct requests_who *who, bool segment,
                         const char *id, json_t **out);

/* A segment's traffic light changed to 'light' (already stored), set by
 * 'by' for 'reason' (may be NULL): record it as an event for the segment's
 * VNB, and re-arbitrate the installations in it and below; red suspends
 * market requests there, a light that is no longer red resumes them. */
void requests_light_changed(struct requests *r, const char *segment, const char *light,
                            const char *by, const char *reason);

/* The registry changed (import, edits): cached facts are read again. */
void requests_registry_changed(struct requests *r);

/* Counts for metrics. */
struct requests_stats {
    int in_force, unfinished, devices, devices_busy;
    unsigned long long admitted, rejected, executions_confirmed, executions_failed;
};
void requests_stats(const struct requests *r, struct requests_stats *out);

const char *requests_state_name(int state);

#endif
