/*
 * arbiter.h - who may switch what, and what is in force when: the rules of
 * DESIGN.md §4 "Arbitration" as pure functions of requests, registry facts,
 * traffic lights and time (docs/arbitration.md explains each rule).
 *
 * Pure: no I/O, no clock reads, no globals, no allocation. Every function
 * may be called from any thread. Strings in the structs are borrowed from
 * the caller for the duration of a call; results point into the inputs
 * (a conflicting request's id, say) and stay valid as long as they do.
 *
 * Everything is expressed as power caps per direction: a limit caps at its
 * value, `dim` caps at the installation's §14a floor, `switch off` caps at
 * 0 W (raised to the floor on a §14a consumer), `switch on` is "no cap"
 * from this request; a schedule is a list of such steps; `release` lifts the
 * same party's earlier caps on the installation for its window.
 */
#ifndef CLSM_ARBITER_H
#define CLSM_ARBITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARB_FOREVER INT64_MAX /* an open end (until released) */
#define ARB_NO_CAP  INT64_MAX /* a cap value: no cap */
#define ARB_FLOOR   (-1)      /* a step value: the installation's §14a floor (dim) */

#define ARB_MAX_STEPS 192 /* per request and installation (96 intervals x 2 directions) */
#define ARB_TEXT_MAX  240 /* bytes of a human-readable reason, with its NUL */

enum arb_dir { ARB_CONSUMPTION, ARB_PRODUCTION, ARB_NDIR };
enum arb_light { ARB_GREEN, ARB_YELLOW, ARB_RED };

/* Who asks: the grid operator of the installation's grid, a transmission
 * system operator (its grid requests reach installations through the VNB
 * cascade), a market party (supplier, aggregator, metering operator), or
 * someone else (refused everything). */
enum arb_role { ARB_ROLE_VNB, ARB_ROLE_UENB, ARB_ROLE_MARKET, ARB_ROLE_OTHER };
enum arb_purpose { ARB_GRID, ARB_MARKET };
enum arb_action { ARB_LIMIT, ARB_DIM, ARB_SWITCH, ARB_SCHEDULE, ARB_RELEASE };
enum arb_level { ARB_LEVEL_ON, ARB_LEVEL_DIM, ARB_LEVEL_OFF };

/* Installation kinds of the registry. */
enum arb_kind {
    ARB_HEAT_PUMP,
    ARB_WALLBOX,
    ARB_PV,
    ARB_BATTERY,
    ARB_STORAGE_HEATER,
    ARB_AIR_CONDITIONING,
    ARB_CHP,
    ARB_OTHER_KIND
};

/* What the arbiter knows of an installation. */
struct arb_inst {
    const char *id;
    enum arb_kind kind;
    bool consumes, produces; /* from the registry's direction (bidirectional: both) */
    int64_t rated_w;         /* > 0 */
    bool sec14a;             /* a controllable consumer under §14a EnWG */
    int64_t floor_w;         /* §14a floor of its consumption: arbiter_floors() sets it */
    enum arb_light light;    /* the worst light on the path from its segment to the root */
    const char *vnb;         /* party id of the VNB of its segment */
};

/* The §14a floor of one controllable consumer on its own: 0 unless 'sec14a'
 * and the installation consumes; 40 % of the rated power for heat pumps and
 * air conditioners above 11 kW; else 4.2 kW; never above the rated power. */
int64_t arbiter_floor_single(enum arb_kind kind, bool consumes, int64_t rated_w, bool sec14a);

/*
 * Set floor_w of the 'n' installations behind one energy manager (n = 1:
 * an installation on its own). The §14a members share one floor: the
 * largest member floor plus the simultaneity factor of their number times
 * the sum of the others (n = 2: 0.8, 3: 0.75, 4: 0.7, 5: 0.65, 6: 0.6,
 * 7: 0.55, 8 or more: 0.5), so two 4.2 kW members get 7.56 kW together.
 * Each member's floor_w is its share of that, proportional to its own
 * floor (rounded down; the remainder goes to the largest), so the floors
 * of the members add up to the group's floor exactly. Members without
 * §14a get 0. Returns the group's floor.
 */
int64_t arbiter_floors(struct arb_inst *const *members, size_t n);

/* The factor of arbiter_floors() for 'n' §14a members, in thousandths. */
int arbiter_simultaneity_permille(size_t n);

/* --- requests ---------------------------------------------------------------- */

/* One interval of a schedule as requested: a cap in watts for a direction
 * (has_dir false: the installation's own direction), or a level. */
struct arb_interval {
    int64_t start_ms, end_ms;
    bool is_level;
    enum arb_level level;
    bool has_dir;
    enum arb_dir dir;
    int64_t value_w;
};

/* What a request asks, independent of the installation. */
struct arb_action_spec {
    enum arb_action action;
    int64_t start_ms, end_ms; /* the window; end ARB_FOREVER: until released */
    bool has_dir;             /* limit, release: a direction was named */
    enum arb_dir dir;
    int64_t value_w;                      /* limit: >= 0 */
    enum arb_level level;                 /* switch */
    const struct arb_interval *intervals; /* schedule: sorted, not overlapping, in the window */
    size_t nintervals;
};

/* One step of a request's effect on one installation: from start to end,
 * a cap on one direction. 'value_w' is watts, ARB_NO_CAP ("on": no cap from
 * this request) or ARB_FLOOR (dim, before admission resolves it). */
struct arb_step {
    int64_t start_ms, end_ms;
    enum arb_dir dir;
    int64_t value_w;
};

/*
 * Translate 'spec' into steps for 'inst', sorted by start. A limit or
 * release without a direction takes the installation's own (consumption
 * for a consumer, production for a generator; a bidirectional one needs a
 * direction); `dim` caps consumption at ARB_FLOOR; `switch` caps every
 * direction the installation has (on: ARB_NO_CAP, dim: ARB_FLOOR for the
 * consumption and ARB_NO_CAP for production, off: 0); a release has one
 * step per direction it lifts, with value ARB_NO_CAP. Returns the number
 * of steps, or -EINVAL with 'code' ("rejected.direction",
 * "rejected.not_sec14a", "rejected.value" for a negative limit, ...) and
 * 'text' filled when the action does not fit the installation, or -E2BIG
 * ("rejected.too_many_steps") when there would be more than 'cap' steps.
 */
int arbiter_steps(const struct arb_action_spec *spec, const struct arb_inst *inst,
                  struct arb_step *out, size_t cap, const char **code, char text[ARB_TEXT_MAX]);

/* A request as the arbiter sees it on one installation. */
struct arb_req {
    const char *id;
    const char *party;
    enum arb_role role;
    enum arb_purpose purpose;
    enum arb_action action;
    int64_t seq; /* admission order: lower is earlier; unique */
    const struct arb_step *steps;
    size_t nsteps;
};

/* The party asking, as far as this installation is concerned. */
struct arb_party {
    const char *id;
    enum arb_role role;
    bool controls; /* holds an assignment with the "control" right on it */
};

struct arb_decision {
    bool admitted;
    const char *code;        /* "admitted", "clipped.floor_14a" or "rejected.<why>" */
    char text[ARB_TEXT_MAX]; /* the same for people */
    const char *conflict;    /* rejected.conflict: id of the request holding the slot */
    bool clipped;            /* a step was raised to the floor */
};

/*
 * Decide whether 'r' may act on 'inst', given the requests 'active' already
 * in force there (admitted, not ended; their steps already resolved) and
 * the time 'now'. The rules, in this order (the first that refuses
 * decides):
 *
 *  1. Authority: grid purpose only from the installation's VNB
 *     ("rejected.foreign_grid" for another VNB) or a TSO
 *     ("rejected.not_grid_operator" for anyone else); market purpose only
 *     from a market party with the control right ("rejected.no_control_right",
 *     "rejected.not_market_party" for a VNB or TSO); `dim` is the grid
 *     operator's measure ("rejected.dim_is_grid_only" for market purpose).
 *  2. The window must not be over: some step ends after 'now'
 *     ("rejected.window_over"; steps already over simply have no effect).
 *  3. Traffic light, market requests except releases (a party may always
 *     take its own restriction back): red refuses ("rejected.red_light");
 *     yellow refuses a request that would allow more than the grid cap in
 *     force on a direction at the start of one of its steps
 *     ("rejected.yellow_above_grid_cap", naming the grid request in
 *     'conflict'; "on" counts as no cap). Grid requests pass every light.
 *  4. Market slot: a market request (not a release) whose step overlaps in
 *     time and direction a step of an active market request (not a release,
 *     any party) is refused, naming the earlier one ("rejected.conflict");
 *     'r' must supersede it instead (the caller leaves the superseded
 *     request out of 'active').
 *  5. Floors, for grid and market requests alike: on a §14a consumer a
 *     consumption step below floor_w is raised to floor_w
 *     ("clipped.floor_14a"); ARB_FLOOR becomes floor_w (no clipping; in
 *     production, where there is no floor, ARB_NO_CAP). Generators and
 *     other directions may go to 0 W.
 *
 * The resolved steps (floors applied) are written to 'out' (room for
 * r->nsteps). Returns 0 (see d->admitted) or -EINVAL when r has no steps.
 */
int arbiter_admit(const struct arb_req *r, const struct arb_party *p, const struct arb_inst *inst,
                  const struct arb_req *const *active, size_t nactive, int64_t now,
                  struct arb_step *out, struct arb_decision *d);

/* --- the effective state --------------------------------------------------------- */

/* What caps one direction during a slot. */
struct arb_cap {
    int64_t cap_w;  /* ARB_NO_CAP: none */
    const char *by; /* the request that sets it; NULL without a cap */
    bool grid;      /* set by a grid request */
};

/* One interval of an installation's effective state. */
struct arb_slot {
    int64_t start_ms, end_ms;
    struct arb_cap dir[ARB_NDIR];
};

/*
 * The effective state of 'inst' from 'from' to 'to' as consecutive slots
 * (each boundary is a step boundary; neighbours differ), given the
 * requests in force there ('reqs', resolved by arbiter_admit(); order does
 * not matter). At every instant and for each direction:
 *
 *  - A release of a party lifts, for its steps' times and directions, the
 *    caps of that party's earlier requests (lower seq).
 *  - Red light: market requests are suspended (no effect).
 *  - Grid cap = the lowest cap of the VNB's grid requests in force; only
 *    when the VNB has no grid request in force there at that instant, the
 *    lowest of the TSO's: an explicit VNB decision - even one that caps
 *    nothing, such as "on" - overrides a TSO-originated one (the VNB has
 *    the final say in its grid). Ties go to the smaller request id, so
 *    the result does not depend on submission order.
 *  - Market cap = the cap of the earliest admitted market request in
 *    force (at most one holds the slot).
 *  - Effective = the lower of the two, set by the grid request on a tie;
 *    on a §14a consumer never below floor_w in consumption.
 *
 * Returns the number of slots written, or -E2BIG when more than 'cap'
 * would be needed (the first 'cap' are written).
 */
int arbiter_timeline(const struct arb_inst *inst, const struct arb_req *const *reqs, size_t n,
                     int64_t from, int64_t to, struct arb_slot *out, size_t cap);

/* The effective caps at one instant: arbiter_timeline() for [at, at + 1). */
void arbiter_at(const struct arb_inst *inst, const struct arb_req *const *reqs, size_t n,
                int64_t at, struct arb_slot *out);

/* Names for logs and the API. */
const char *arb_dir_name(enum arb_dir d);
const char *arb_light_name(enum arb_light l);
int arb_kind_parse(const char *s, enum arb_kind *out);

#endif
