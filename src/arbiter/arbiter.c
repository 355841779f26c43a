/*
 * arbiter.c - the arbitration rules; see arbiter.h and docs/arbitration.md.
 */
#include "arbiter/arbiter.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define TEXT(d, ...) snprintf((d)->text, sizeof(d)->text, __VA_ARGS__)

static const char *const dir_names[ARB_NDIR] = {"consumption", "production"};
static const char *const light_names[] = {"green", "yellow", "red"};
static const char *const kind_names[] = {"heat_pump",      "wallbox",          "pv",  "battery",
                                         "storage_heater", "air_conditioning", "chp", "other"};

const char *arb_dir_name(enum arb_dir d)
{
    return d < ARB_NDIR ? dir_names[d] : "?";
}

const char *arb_light_name(enum arb_light l)
{
    return (size_t)l < sizeof light_names / sizeof light_names[0] ? light_names[l] : "?";
}

int arb_kind_parse(const char *s, enum arb_kind *out)
{
    for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++) {
        if (strcmp(s, kind_names[i]) == 0) {
            *out = (enum arb_kind)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* --- floors ------------------------------------------------------------------------ */

int64_t arbiter_floor_single(enum arb_kind kind, bool consumes, int64_t rated_w, bool sec14a)
{
    if (!sec14a || !consumes || rated_w <= 0)
        return 0;
    int64_t f = 4200;
    if ((kind == ARB_HEAT_PUMP || kind == ARB_AIR_CONDITIONING) && rated_w > 11000)
        f = rated_w * 2 / 5;
    return f < rated_w ? f : rated_w;
}

int arbiter_simultaneity_permille(size_t n)
{
    static const int table[] = {1000, 1000, 800, 750, 700, 650, 600, 550};
    return n < sizeof table / sizeof table[0] ? table[n] : 500;
}

static int64_t member_floor(const struct arb_inst *m)
{
    return arbiter_floor_single(m->kind, m->consumes, m->rated_w, m->sec14a);
}

int64_t arbiter_floors(struct arb_inst *const *members, size_t n)
{
    int64_t sum = 0, max = 0;
    size_t k = 0, maxi = 0;

    for (size_t i = 0; i < n; i++) {
        int64_t f = member_floor(members[i]);
        if (f == 0)
            continue;
        k++;
        sum += f;
        if (f > max) {
            max = f;
            maxi = i;
        }
    }
    if (k == 0) {
        for (size_t i = 0; i < n; i++)
            members[i]->floor_w = 0;
        return 0;
    }
    int64_t group = max + (sum - max) * arbiter_simultaneity_permille(k) / 1000, given = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t f = member_floor(members[i]);
        members[i]->floor_w = f * group / sum;
        given += members[i]->floor_w;
    }
    members[maxi]->floor_w += group - given;
    return group;
}

/* --- steps ---------------------------------------------------------------------------- */

static bool has_dir(const struct arb_inst *inst, enum arb_dir d)
{
    return d == ARB_CONSUMPTION ? inst->consumes : inst->produces;
}

/* The direction a request without one means, or -1 for a bidirectional
 * installation (which needs one). */
static int own_dir(const struct arb_inst *inst)
{
    if (inst->consumes && !inst->produces)
        return ARB_CONSUMPTION;
    if (inst->produces && !inst->consumes)
        return ARB_PRODUCTION;
    return -1;
}

struct steps_out {
    struct arb_step *out;
    size_t cap, n;
    const char **code;
    char *text;
};

/* Refuse with "installation <id> <what>". */
static int refuse(struct steps_out *o, const struct arb_inst *inst, const char *code,
                  const char *what)
{
    *o->code = code;
    snprintf(o->text, ARB_TEXT_MAX, "installation %s %s", inst->id, what);
    return -EINVAL;
}

static int put_step(struct steps_out *o, int64_t start, int64_t end, enum arb_dir d, int64_t v)
{
    if (o->n == o->cap)
        return -E2BIG;
    o->out[o->n++] = (struct arb_step){start, end, d, v};
    return 0;
}

static int pick_dir(struct steps_out *o, const struct arb_inst *inst, bool given, enum arb_dir d,
                    enum arb_dir *out)
{
    if (given) {
        if (d >= ARB_NDIR || !has_dir(inst, d))
            return refuse(o, inst, "rejected.direction", "has no such direction");
        *out = d;
        return 0;
    }
    int own = own_dir(inst);
    if (own < 0)
        return refuse(o, inst, "rejected.direction", "works in both directions; name one");
    *out = (enum arb_dir)own;
    return 0;
}

static int level_steps(struct steps_out *o, const struct arb_inst *inst, enum arb_level level,
                       int64_t start, int64_t end)
{
    if (level == ARB_LEVEL_DIM && !(inst->sec14a && inst->consumes))
        return refuse(o, inst, "rejected.not_sec14a",
                      "is no controllable consumer under §14a; it has no dim level");
    for (int d = 0; d < ARB_NDIR; d++) {
        if (!has_dir(inst, (enum arb_dir)d))
            continue;
        int64_t v = level == ARB_LEVEL_ON    ? ARB_NO_CAP
                    : level == ARB_LEVEL_OFF ? 0
                    : d == ARB_CONSUMPTION   ? ARB_FLOOR
                                             : ARB_NO_CAP;
        int rc = put_step(o, start, end, (enum arb_dir)d, v);
        if (rc)
            return rc;
    }
    return 0;
}

int arbiter_steps(const struct arb_action_spec *spec, const struct arb_inst *inst,
                  struct arb_step *out, size_t cap, const char **code, char text[ARB_TEXT_MAX])
{
    struct steps_out o = {out, cap, 0, code, text};
    enum arb_dir d;
    int rc = 0;

    *code = NULL;
    text[0] = '\0';
    bool negative = spec->action == ARB_LIMIT && spec->value_w < 0;
    for (size_t i = 0; spec->action == ARB_SCHEDULE && i < spec->nintervals; i++)
        negative = negative || (!spec->intervals[i].is_level && spec->intervals[i].value_w < 0);
    if (negative)
        return refuse(&o, inst, "rejected.value", "cannot take a negative limit");
    switch (spec->action) {
    case ARB_LIMIT:
        if ((rc = pick_dir(&o, inst, spec->has_dir, spec->dir, &d)) == 0)
            rc = put_step(&o, spec->start_ms, spec->end_ms, d, spec->value_w);
        break;
    case ARB_DIM:
        if (!(inst->sec14a && inst->consumes))
            return refuse(&o, inst, "rejected.not_sec14a",
                          "is no controllable consumer under §14a");
        rc = put_step(&o, spec->start_ms, spec->end_ms, ARB_CONSUMPTION, ARB_FLOOR);
        break;
    case ARB_SWITCH:
        rc = level_steps(&o, inst, spec->level, spec->start_ms, spec->end_ms);
        break;
    case ARB_SCHEDULE:
        for (size_t i = 0; i < spec->nintervals && rc == 0; i++) {
            const struct arb_interval *iv = &spec->intervals[i];
            if (iv->is_level) {
                rc = level_steps(&o, inst, iv->level, iv->start_ms, iv->end_ms);
            } else if ((rc = pick_dir(&o, inst, iv->has_dir, iv->dir, &d)) == 0) {
                rc = put_step(&o, iv->start_ms, iv->end_ms, d, iv->value_w);
            }
        }
        break;
    case ARB_RELEASE:
        if (spec->has_dir) {
            if ((rc = pick_dir(&o, inst, true, spec->dir, &d)) == 0)
                rc = put_step(&o, spec->start_ms, spec->end_ms, d, ARB_NO_CAP);
            break;
        }
        for (int k = 0; k < ARB_NDIR && rc == 0; k++)
            if (has_dir(inst, (enum arb_dir)k))
                rc = put_step(&o, spec->start_ms, spec->end_ms, (enum arb_dir)k, ARB_NO_CAP);
        break;
    default:
        return refuse(&o, inst, "rejected.action", "cannot take this action");
    }
    if (rc == -E2BIG) {
        *code = "rejected.too_many_steps";
        snprintf(text, ARB_TEXT_MAX, "more than %zu steps for installation %s", cap, inst->id);
    }
    return rc != 0 ? rc : (int)o.n;
}

/* --- evaluation at one instant ------------------------------------------------------------ */

static bool covers(const struct arb_step *s, int64_t t, enum arb_dir d)
{
    return s->dir == d && s->start_ms <= t && t < s->end_ms;
}

/* A later release of q's party lifts q at t in d. */
static bool released(const struct arb_req *q, const struct arb_req *const *reqs, size_t n,
                     int64_t t, enum arb_dir d)
{
    for (size_t i = 0; i < n; i++) {
        const struct arb_req *r = reqs[i];
        if (r->action != ARB_RELEASE || r->seq <= q->seq || strcmp(r->party, q->party) != 0)
            continue;
        for (size_t k = 0; k < r->nsteps; k++)
            if (covers(&r->steps[k], t, d))
                return true;
    }
    return false;
}

static int64_t resolve(const struct arb_inst *inst, int64_t v)
{
    return v == ARB_FLOOR ? inst->floor_w : v;
}

/* Lower cap wins; on a tie the smaller request id. */
static void better(struct arb_cap *best, int64_t v, const char *id, bool grid)
{
    if (best->by == NULL || v < best->cap_w || (v == best->cap_w && strcmp(id, best->by) < 0)) {
        best->cap_w = v;
        best->by = id;
        best->grid = grid;
    }
}

struct eval {
    struct arb_cap vnb, tso, grid, market, eff;
};

static void evaluate(const struct arb_inst *inst, const struct arb_req *const *reqs, size_t n,
                     int64_t t, enum arb_dir d, struct eval *e)
{
    const struct arb_req *holder = NULL;
    int64_t hval = ARB_NO_CAP;
    bool vnb_decides = false;
    const struct arb_cap none = {ARB_NO_CAP, NULL, false};

    e->vnb = e->tso = e->market = e->eff = none;
    for (size_t i = 0; i < n; i++) {
        const struct arb_req *q = reqs[i];
        if (q->action == ARB_RELEASE)
            continue;
        if (q->purpose == ARB_MARKET && inst->light == ARB_RED)
            continue; /* suspended */
        for (size_t k = 0; k < q->nsteps; k++) {
            const struct arb_step *s = &q->steps[k];
            if (!covers(s, t, d) || released(q, reqs, n, t, d))
                continue;
            int64_t v = resolve(inst, s->value_w);
            if (q->purpose == ARB_GRID) {
                if (q->role == ARB_ROLE_VNB)
                    vnb_decides = true;
                if (v != ARB_NO_CAP)
                    better(q->role == ARB_ROLE_VNB ? &e->vnb : &e->tso, v, q->id, true);
            } else if (holder == NULL || q->seq < holder->seq) {
                holder = q;
                hval = v;
            }
        }
    }
    /* An explicit VNB decision in force here, even one that caps nothing,
     * overrides what came through the TSO cascade. */
    e->grid = vnb_decides ? e->vnb : e->tso;
    if (holder && hval != ARB_NO_CAP)
        e->market = (struct arb_cap){hval, holder->id, false};
    if (e->grid.by && e->grid.cap_w <= e->market.cap_w)
        e->eff = e->grid;
    else if (e->market.by)
        e->eff = e->market;
    if (d == ARB_CONSUMPTION && e->eff.by && inst->sec14a && inst->consumes &&
        e->eff.cap_w < inst->floor_w)
        e->eff.cap_w = inst->floor_w;
}

/* --- admission --------------------------------------------------------------------------- */

static bool authority(const struct arb_req *r, const struct arb_party *p,
                      const struct arb_inst *inst, struct arb_decision *d)
{
    if (r->purpose == ARB_GRID) {
        if (p->role == ARB_ROLE_UENB)
            return true;
        if (p->role == ARB_ROLE_VNB) {
            if (inst->vnb && strcmp(inst->vnb, p->id) == 0)
                return true;
            d->code = "rejected.foreign_grid";
            TEXT(d, "installation %s is not in a grid of %s", inst->id, p->id);
            return false;
        }
        d->code = "rejected.not_grid_operator";
        TEXT(d, "only a grid operator may send grid-serving requests");
        return false;
    }
    if (p->role == ARB_ROLE_VNB || p->role == ARB_ROLE_UENB) {
        d->code = "rejected.not_market_party";
        TEXT(d, "grid operators send grid-serving requests, not market ones");
        return false;
    }
    if (p->role != ARB_ROLE_MARKET || !p->controls) {
        d->code = "rejected.no_control_right";
        TEXT(d, "%s holds no control right on installation %s", p->id, inst->id);
        return false;
    }
    if (r->action == ARB_DIM) {
        d->code = "rejected.dim_is_grid_only";
        TEXT(d, "dimming to the §14a floor is the grid operator's measure");
        return false;
    }
    return true;
}

static bool light_gate(const struct arb_req *r, const struct arb_inst *inst,
                       const struct arb_req *const *active, size_t nactive, struct arb_decision *d)
{
    if (r->purpose != ARB_MARKET || r->action == ARB_RELEASE)
        return true; /* a party may always take its own restriction back */
    if (inst->light == ARB_RED) {
        d->code = "rejected.red_light";
        TEXT(d, "the traffic light of installation %s is red: market requests are suspended",
             inst->id);
        return false;
    }
    if (inst->light != ARB_YELLOW)
        return true;
    for (size_t i = 0; i < r->nsteps; i++) {
        const struct arb_step *s = &r->steps[i];
        struct eval e;
        evaluate(inst, active, nactive, s->start_ms, s->dir, &e);
        int64_t v = resolve(inst, s->value_w);
        if (e.grid.by && v > e.grid.cap_w) {
            d->code = "rejected.yellow_above_grid_cap";
            d->conflict = e.grid.by;
            TEXT(d, "yellow light: %s would allow more than the grid cap of %lld W (%s)",
                 arb_dir_name(s->dir), (long long)e.grid.cap_w, e.grid.by);
            return false;
        }
    }
    return true;
}

/* Is [from, to) of direction dir wholly lifted by releases of q's party? */
static bool span_released(const struct arb_req *q, const struct arb_req *const *reqs, size_t n,
                          int64_t from, int64_t to, enum arb_dir dir)
{
    int64_t cur = from;
    bool moved = true;
    while (cur < to && moved) {
        moved = false;
        for (size_t i = 0; i < n && !moved; i++) {
            const struct arb_req *r = reqs[i];
            if (r->action != ARB_RELEASE || r->seq <= q->seq || strcmp(r->party, q->party) != 0)
                continue;
            for (size_t k = 0; k < r->nsteps; k++) {
                if (covers(&r->steps[k], cur, dir)) {
                    cur = r->steps[k].end_ms;
                    moved = true;
                    break;
                }
            }
        }
    }
    return cur >= to;
}

static bool slot_free(const struct arb_req *r, const struct arb_req *const *active, size_t nactive,
                      struct arb_decision *d)
{
    const struct arb_req *first = NULL;
    if (r->purpose != ARB_MARKET || r->action == ARB_RELEASE)
        return true;
    for (size_t i = 0; i < nactive; i++) {
        const struct arb_req *a = active[i];
        if (a->purpose != ARB_MARKET || a->action == ARB_RELEASE)
            continue;
        for (size_t k = 0; k < a->nsteps; k++) {
            for (size_t j = 0; j < r->nsteps; j++) {
                const struct arb_step *s = &r->steps[j], *t = &a->steps[k];
                int64_t lo = s->start_ms > t->start_ms ? s->start_ms : t->start_ms;
                int64_t hi = s->end_ms < t->end_ms ? s->end_ms : t->end_ms;
                if (s->dir != t->dir || lo >= hi ||
                    span_released(a, active, nactive, lo, hi, t->dir))
                    continue;
                if (first == NULL || a->seq < first->seq)
                    first = a;
            }
        }
    }
    if (first == NULL)
        return true;
    d->code = "rejected.conflict";
    d->conflict = first->id;
    TEXT(d, "market request %s already holds this installation for that time; supersede it",
         first->id);
    return false;
}

int arbiter_admit(const struct arb_req *r, const struct arb_party *p, const struct arb_inst *inst,
                  const struct arb_req *const *active, size_t nactive, int64_t now,
                  struct arb_step *out, struct arb_decision *d)
{
    memset(d, 0, sizeof *d);
    if (r->nsteps == 0)
        return -EINVAL;
    if (!authority(r, p, inst, d))
        return 0;
    bool live = false;
    for (size_t i = 0; i < r->nsteps; i++)
        live = live || r->steps[i].end_ms > now;
    if (!live) {
        d->code = "rejected.window_over";
        TEXT(d, "the request's window is over");
        return 0;
    }
    if (!light_gate(r, inst, active, nactive, d) || !slot_free(r, active, nactive, d))
        return 0;
    for (size_t i = 0; i < r->nsteps; i++) {
        struct arb_step s = r->steps[i];
        if (s.value_w == ARB_FLOOR) {
            s.value_w = s.dir == ARB_CONSUMPTION ? inst->floor_w : ARB_NO_CAP;
        } else if (s.dir == ARB_CONSUMPTION && inst->sec14a && inst->consumes &&
                   s.value_w != ARB_NO_CAP && s.value_w < inst->floor_w) {
            s.value_w = inst->floor_w;
            d->clipped = true;
        }
        out[i] = s;
    }
    d->admitted = true;
    if (d->clipped) {
        d->code = "clipped.floor_14a";
        TEXT(d, "admitted; raised to the §14a floor of %lld W", (long long)inst->floor_w);
    } else {
        d->code = "admitted";
        TEXT(d, "admitted");
    }
    return 0;
}

/* --- timeline ------------------------------------------------------------------------------ */

static int64_t next_boundary(const struct arb_req *const *reqs, size_t n, int64_t t, int64_t to)
{
    int64_t next = to;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < reqs[i]->nsteps; k++) {
            const struct arb_step *s = &reqs[i]->steps[k];
            if (s->start_ms > t && s->start_ms < next)
                next = s->start_ms;
            if (s->end_ms > t && s->end_ms < next)
                next = s->end_ms;
        }
    }
    return next;
}

static bool same_cap(const struct arb_cap *a, const struct arb_cap *b)
{
    if (a->cap_w != b->cap_w || a->grid != b->grid)
        return false;
    if (a->by == NULL || b->by == NULL)
        return a->by == b->by;
    return strcmp(a->by, b->by) == 0;
}

void arbiter_at(const struct arb_inst *inst, const struct arb_req *const *reqs, size_t n,
                int64_t at, struct arb_slot *out)
{
    out->start_ms = at;
    out->end_ms = at == ARB_FOREVER ? at : at + 1;
    for (int d = 0; d < ARB_NDIR; d++) {
        struct eval e;
        evaluate(inst, reqs, n, at, (enum arb_dir)d, &e);
        out->dir[d] = e.eff;
    }
}

int arbiter_timeline(const struct arb_inst *inst, const struct arb_req *const *reqs, size_t n,
                     int64_t from, int64_t to, struct arb_slot *out, size_t cap)
{
    size_t k = 0;
    bool full = false;
    for (int64_t t = from; t < to;) {
        int64_t next = next_boundary(reqs, n, t, to);
        struct arb_slot s;
        arbiter_at(inst, reqs, n, t, &s);
        s.start_ms = t;
        s.end_ms = next;
        if (k > 0 && same_cap(&out[k - 1].dir[0], &s.dir[0]) &&
            same_cap(&out[k - 1].dir[1], &s.dir[1])) {
            out[k - 1].end_ms = next;
        } else if (k < cap) {
            out[k++] = s;
        } else {
            full = true;
            break;
        }
        t = next;
    }
    return full ? -E2BIG : (int)k;
}
