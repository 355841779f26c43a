/*
 * requests_impl.h - what the files of the requests runtime share: requests
 * with their targets and executions (requests.c), installations and
 * devices with their desired and confirmed states (reconcile.c), and the
 * registry facts both read (facts.c). Not for use outside src/request/.
 */
#ifndef CLSM_REQUESTS_IMPL_H
#define CLSM_REQUESTS_IMPL_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "arbiter/arbiter.h"
#include "common/strmap.h"
#include "dispatch/dispatch.h"
#include "request/request.h"
#include "request/requests.h"

enum rq_state {
    RQ_RECEIVED,
    RQ_ADMITTED,
    RQ_REJECTED,
    RQ_SCHEDULED,
    RQ_EXECUTING,
    RQ_COMPLETED,
    RQ_PARTIAL,
    RQ_LATE,
    RQ_FAILED,
    RQ_CANCELLED,
    RQ_SUPERSEDED,
    RQ_EXPIRED,
    RQ_NSTATES
};

enum exe_state {
    EX_PENDING,
    EX_CHANNEL_REQUESTED,
    EX_CHANNEL_OPEN,
    EX_SENT,
    EX_ACKED,
    EX_CONFIRMED,
    EX_FAILED,
    EX_SKIPPED,
    EX_NSTATES
};

extern const char *const rq__state_names[RQ_NSTATES];
extern const char *const rq__exe_state_names[EX_NSTATES];

#define RQ_ID_MAX    97 /* registry ids, with the NUL */
#define RQ_PARTY_MAX 32

/* --- registry facts -------------------------------------------------------------------- */

struct segment {
    char id[RQ_ID_MAX], parent[RQ_ID_MAX];
    char vnb[RQ_PARTY_MAX];
    enum arb_light light;
};

struct dev;
struct tgt;

struct rq_assign {
    char party[RQ_PARTY_MAX];
    bool control; /* holds the "control" right */
};

struct inst {
    char id[RQ_ID_MAX], device[RQ_ID_MAX], segment[RQ_ID_MAX], em[RQ_ID_MAX];
    char vnb[RQ_PARTY_MAX];
    struct arb_inst facts; /* facts.id and facts.vnb point into this struct */
    struct dev *dev;
    struct tgt **tgts; /* requests in force here */
    size_t ntgts, cap;
    struct rq_assign *assigned; /* parties with an assignment */
    size_t nassigned;
};

/* --- requests ----------------------------------------------------------------------- */

struct rq;

/* A request's admitted effect on one installation. */
struct tgt {
    struct rq *rq;
    struct inst *inst;
    struct arb_req view; /* what the arbiter sees; view.steps == steps */
    struct arb_step *steps;
    size_t nsteps;
    bool listed; /* in inst->tgts */
};

/* A request's execution on one device. */
struct exe {
    struct rq *rq;
    struct dev *dev;
    enum exe_state state;
    bool late, due;
    int attempts;
    uint64_t needs_version; /* confirmed once the device confirmed this version */
    int64_t steps_ms[EX_NSTATES];
    char command[DISPATCH_ID_MAX];
    char error[512];
    bool dirty;
    struct exe *dirty_next;
    struct exe *wprev, *wnext; /* the device's list of waiting executions */
    bool waiting;
};

struct rq {
    char id[REQ_REQUEST_ID];
    int64_t seq;
    char party[RQ_PARTY_MAX], role_name[16];
    enum arb_role role;
    struct req_spec spec;
    json_t *spec_json;
    enum rq_state state;
    json_t *decision;
    int64_t deadline_ms, created_ms, updated_ms, ended_ms;
    char superseded_by[REQ_REQUEST_ID];
    struct tgt *tgts;
    size_t ntgts;
    struct exe *exes;
    size_t nexes;
    size_t nfinal, nconfirmed, nfailed, nlate, nskipped;
    char (*vnbs)[RQ_PARTY_MAX]; /* VNBs of the grids it touches */
    size_t nvnbs;
    bool is_new, dirty, suspended, late_reported;
    struct rq *dirty_next;
    struct rq *sweep_next; /* written in this commit: may now leave memory */
    bool in_sweep;
    json_t *target_rows; /* decisions per installation, written with the first row */
    char *idem_key, *body_hash;
    json_t *answer;        /* the first answer: {"status": n, "slug": s|null, "doc": {...}} */
    requests_answer_fn fn; /* waiting for the commit */
    void *fn_arg;
    int fn_status; /* 0: answer with 'answer'; else this status and the request */
    struct event *timer;
    struct requests *owner;
};

/* --- devices --------------------------------------------------------------------------- */

struct devcap {
    bool active;
    int64_t value_w;
    int64_t until_ms; /* ARB_FOREVER: until replaced */
};

struct dev {
    char id[RQ_ID_MAX];
    struct inst **insts; /* every installation behind the device */
    size_t ninsts;
    bool has_dir[ARB_NDIR];
    struct devcap want[ARB_NDIR], conf[ARB_NDIR];
    /* Compliance (compliance.c): measured above the confirmed cap since
     * 'over_since' (0: not over); judged at 'judged_at'. */
    int64_t over_since, judged_at, judged_w, noncompliant_since, excess_limit_w;
    int excess_dir;
    bool noncompliant;
    bool conf_known, conf_failsafe;
    int64_t conf_at, measured_w, measured_at;
    uint64_t version, confirmed_version;
    struct exe *waiting;
    char cmd[DISPATCH_ID_MAX]; /* the reconciler's command in flight, "" when none */
    int cmd_dir;
    struct devcap cmd_cap;
    int backoff_s;
    int64_t retry_at;
    bool blocked;
    char blocked_why[300];
    struct event *timer;
    int64_t timer_at;
    bool dirty, state_dirty;
    struct dev *dirty_next, *sdirty_next;
    struct requests *owner;
};

/* --- the runtime ------------------------------------------------------------------------- */

struct requests {
    struct event_base *base;
    struct store *store;
    struct audit *audit;
    struct committer *committer;
    struct dispatch *dispatch;
    struct requests_config cfg;
    struct strmap rqs, insts, devs, segs, idem;
    bool segs_loaded;
    int64_t next_seq;
    struct rq *dirty_rqs, *writing_rqs;
    struct exe *dirty_exes, *writing_exes;
    struct dev *state_dirty, *writing_states;
    struct dev *to_reconcile;
    struct event *reconcile_ev;
    unsigned long long admitted, rejected, exe_confirmed, exe_failed;
};

/* facts.c: the registry as the arbiter needs it. */
int rq__segments_load(struct requests *r);
struct segment *rq__segment(struct requests *r, const char *id);
enum arb_light rq__light_of(struct requests *r, const char *segment);
bool rq__segment_within(struct requests *r, const char *segment, const char *ancestor);
struct inst *rq__inst(struct requests *r, const char *id); /* loads; NULL: none or error */
struct dev *rq__dev(struct requests *r, const char *id);   /* loads with its installations */
void rq__facts_free(struct requests *r);

/* requests.c, for reconcile.c. */
void rq__mark(struct requests *r, struct rq *q);
void rq__exe_set(struct requests *r, struct exe *e, enum exe_state to, const char *error);
void rq__audit(struct requests *r, const char *kind, struct rq *q, json_t *payload);

/* compliance.c: the compliance part of a device's state document. */
json_t *rq__compliance_json(const struct dev *d);

/* reconcile.c */
int rq__reconcile_init(struct requests *r);
void rq__reconcile_free(struct requests *r);
void rq__dev_dirty(struct requests *r, struct dev *d);
void rq__dev_state_dirty(struct requests *r, struct dev *d);
void rq__exe_wait(struct exe *e);   /* put on its device's waiting list */
void rq__exe_unwait(struct exe *e); /* take it off */
void rq__reconcile_soon(struct requests *r);
json_t *rq__devcap_json(const struct devcap *c);
json_t *rq__dev_json(struct requests *r, struct dev *d); /* API form */
json_t *rq__dev_conf_store(const struct dev *d);         /* stored form of 'conf' */

#endif
