/*
 * gwa_answer.h - reading a GWA's answers to channel requests and status
 * polls (docs/protocols/gwa.md): outside bytes, so bounded and strict about
 * types, lenient only where the protocol says an item may be missing.
 *
 * Pure: no I/O, no clock, no globals; any thread.
 */
#ifndef CLSM_GWA_ANSWER_H
#define CLSM_GWA_ANSWER_H

#include <stddef.h>

#define GWA_ANSWER_MAX      (4u << 20) /* bytes of one answer */
#define GWA_ITEM_ID_MAX     63         /* a request id the GWA gave */
#define GWA_ITEM_REASON_MAX 255        /* bytes of a reason kept (longer ones are cut) */

/* One result, for the request at the same position. */
enum gwa_item_status {
    GWA_ITEM_MISSING,   /* the answer has no (usable) result at this position */
    GWA_ITEM_ACCEPTED,  /* submit: taken, 'id' set */
    GWA_ITEM_REJECTED,  /* submit: refused, 'code' and 'reason' */
    GWA_ITEM_PENDING,   /* status: accepted, not yet woken */
    GWA_ITEM_WOKEN,     /* status: wake-up sent */
    GWA_ITEM_DELIVERED, /* status: the gateway fetched its order */
    GWA_ITEM_FAILED,    /* status: given up, 'reason' */
    GWA_ITEM_UNKNOWN,   /* status: the GWA knows no such id */
};

struct gwa_item {
    enum gwa_item_status status;
    int code; /* rejected: the HTTP-like code (0 when absent or out of 100..599) */
    char id[GWA_ITEM_ID_MAX + 1];
    char reason[GWA_ITEM_REASON_MAX + 1]; /* "" when none; valid UTF-8, no control characters */
};

enum gwa_answer_kind { GWA_ANSWER_SUBMIT, GWA_ANSWER_STATUS };

/*
 * Read the body of a 200 answer to an exchange of 'n' requests into
 * 'items[0..n-1]'. The body must be a JSON object (within GWA_ANSWER_MAX
 * bytes and the API's JSON limits) whose member "results" is an array.
 * Each item is taken from the result at its position; a result that is
 * absent, not an object, or has a status this kind of exchange does not
 * know (or an accepted one without a usable id) is GWA_ITEM_MISSING, so
 * that one bad item does not spoil the others. Results beyond 'n' are
 * ignored. Returns 0, or -EINVAL / -E2BIG (not that shape, or a limit)
 * with 'why' describing it; the items are then all GWA_ITEM_MISSING.
 */
int gwa_answer_parse(const char *buf, size_t len, enum gwa_answer_kind kind, size_t n,
                     struct gwa_item *items, char *why, size_t whylen);

/* The "detail" of a problem answer (4xx), cleaned as a reason is, into
 * 'out'; "" when the body is not a problem document. */
void gwa_answer_detail(const char *buf, size_t len, char *out, size_t outlen);

const char *gwa_item_status_name(enum gwa_item_status s);

#endif
