/*
 * request.h - switching and control requests as the API takes them
 * (DESIGN.md §4 "Requests"): parsing and validating a request body into a
 * struct req_spec, and writing it back in canonical form.
 *
 * Pure: no I/O and no clock reads ('now' is an argument); any thread. The
 * spec is a plain value that owns no memory; after copying it with memcpy,
 * point act.intervals at the copy's own 'intervals'.
 */
#ifndef CLSM_REQUEST_H
#define CLSM_REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "arbiter/arbiter.h"

#define REQ_ID_MAX        96  /* installation, device or segment id */
#define REQ_REQUEST_ID    40  /* "req-" + 16 hex digits, with room */
#define REQ_MAX_INTERVALS 96  /* schedule intervals */
#define REQ_REASON_MAX    500 /* characters of the free-text reason */
#define REQ_EXTERNAL_MAX  100 /* characters of the caller's own reference */
#define REQ_MAX_SPAN_MS                                                      \
    (366LL * 86400 * 1000) /* a window may not end later than this after now \
                            */
#define REQ_SCHEDULE_SPAN_MS (7LL * 86400 * 1000) /* first start to last end of a schedule */

enum req_target_kind { REQ_TARGET_INSTALLATION, REQ_TARGET_DEVICE, REQ_TARGET_SEGMENT };

struct req_spec {
    enum arb_purpose purpose;
    enum arb_action action;
    bool cascade; /* a grid request tagged as coming through the TSO cascade */
    enum req_target_kind target;
    char target_id[REQ_ID_MAX + 1];
    /* Segment targets: which installations of the segment (and below). */
    unsigned kinds;             /* bit (1 << enum arb_kind); 0 = every kind */
    int sec14a;                 /* -1 any, 0 only without, 1 only with §14a */
    struct arb_action_spec act; /* act.intervals points into 'intervals' below */
    struct arb_interval intervals[REQ_MAX_INTERVALS];
    bool until_released; /* the window has no end (act.end_ms == ARB_FOREVER) */
    int64_t deadline_ms; /* 0: the default for its purpose, set at admission */
    char supersedes[REQ_REQUEST_ID];
    char reason[REQ_REASON_MAX * 4 + 1];
    char external_id[REQ_EXTERNAL_MAX * 4 + 1];
};

struct req_error {
    char pointer[160]; /* JSON pointer into the body ("" = the body as a whole) */
    char text[256];
};

/*
 * Parse 'body' (an object) into '*out'. Every field is checked: unknown
 * fields, wrong types, values out of range, a target without an id or with
 * more than one, a filter without a segment target, parameters that do not
 * belong to the action, a window that is over, inverted, starting more than
 * REQ_MAX_SPAN_MS ahead or ending more than twice that ahead, or given
 * neither an end, a duration nor "until_released": true (a schedule's
 * window defaults to its intervals and is held to the same limits);
 * schedule intervals unsorted, overlapping, outside the window or spanning
 * more than REQ_SCHEDULE_SPAN_MS; a deadline that has passed, lies more
 * than twice REQ_MAX_SPAN_MS ahead or before the window's start. 'now' is the time of
 * receipt. With 'restore' (reading back a stored request) the checks
 * against 'now' are skipped. Returns 0, or -EINVAL with 'err' naming the
 * field and the reason.
 */
int request_parse(const json_t *body, int64_t now, bool restore, struct req_spec *out,
                  struct req_error *err);

/* The canonical form of 'spec' (what is stored and shown): a new object,
 * or NULL when out of memory. request_parse() of it gives 'spec' again. */
json_t *request_spec_json(const struct req_spec *spec);

/* Names of the enums, as the API spells them. */
const char *request_purpose_name(enum arb_purpose p);
const char *request_action_name(enum arb_action a);
const char *request_target_name(enum req_target_kind k);

#endif
