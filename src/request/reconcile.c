/*
 * reconcile.c - driving devices toward the state their requests want.
 *
 * For each device: the desired state (per direction: the sum of the caps of
 * the installations behind it, each at its effective cap or its rated power
 * when uncapped, and until when that restriction lasts without a break)
 * against the state the device last confirmed. A difference becomes one
 * lpc-mqtt limit control at a time through the dispatcher; the state read
 * back after it is the new confirmed state. Executions waiting on the
 * device are confirmed once the device confirmed a desired state at least
 * as new as the one they need. Timers follow the boundaries of the
 * timelines and retries after failures.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "request/requests_impl.h"
#include "store/commit.h"

#define HORIZON_MS        (7LL * 86400 * 1000) /* longest limit duration the device protocol has */
#define UNTIL_SLACK_MS    60000                /* a confirmed 'until' this close counts as equal */
#define MIN_CMD_WINDOW_S  60                   /* a command gets at least this long */
#define LATE_CMD_WINDOW_S 300                  /* once the deadline has passed */
#define BACKOFF_MIN_S     5
#define BACKOFF_MAX_S     300
#define MAX_SLOTS         128
#define MAX_INSTS         32 /* installations of one device that the sum counts */

static void reconcile_cb(evutil_socket_t fd, short what, void *arg);
static void dev_timer_cb(evutil_socket_t fd, short what, void *arg);

/* --- lists ----------------------------------------------------------------------------------- */

void rq__reconcile_soon(struct requests *r)
{
    if (r->to_reconcile)
        event_active(r->reconcile_ev, EV_TIMEOUT, 0);
}

void rq__dev_dirty(struct requests *r, struct dev *d)
{
    if (d == NULL || d->dirty)
        return;
    d->dirty = true;
    d->dirty_next = r->to_reconcile;
    r->to_reconcile = d;
}

void rq__dev_state_dirty(struct requests *r, struct dev *d)
{
    if (d->state_dirty)
        return;
    d->state_dirty = true;
    d->sdirty_next = r->state_dirty;
    r->state_dirty = d;
    commit_want(r->committer);
}

void rq__exe_wait(struct exe *e)
{
    if (e->waiting)
        return;
    e->waiting = true;
    e->needs_version = 0;
    e->wprev = NULL;
    e->wnext = e->dev->waiting;
    if (e->wnext)
        e->wnext->wprev = e;
    e->dev->waiting = e;
}

void rq__exe_unwait(struct exe *e)
{
    if (!e->waiting)
        return;
    if (e->wprev)
        e->wprev->wnext = e->wnext;
    else
        e->dev->waiting = e->wnext;
    if (e->wnext)
        e->wnext->wprev = e->wprev;
    e->waiting = false;
    e->wprev = e->wnext = NULL;
}

/* --- the desired state --------------------------------------------------------------------- */

struct inst_tl {
    struct arb_slot slots[MAX_SLOTS];
    int n;
};

/* The slot of 'tl' that holds t, or NULL beyond its end. */
static const struct arb_slot *slot_at(const struct inst_tl *tl, int64_t t)
{
    for (int i = 0; i < tl->n; i++)
        if (tl->slots[i].start_ms <= t && t < tl->slots[i].end_ms)
            return &tl->slots[i];
    return NULL;
}

/* want[] at 'now', and the next instant at which it may change. */
static int64_t compute_want(struct dev *d, int64_t now, struct devcap want[ARB_NDIR])
{
    static struct inst_tl tls[MAX_INSTS]; /* loop thread only */
    size_t n = d->ninsts < MAX_INSTS ? d->ninsts : MAX_INSTS;
    int64_t horizon = now + HORIZON_MS, next = ARB_FOREVER;

    for (size_t i = 0; i < n; i++) {
        struct inst *in = d->insts[i];
        const struct arb_req *views[256];
        size_t nv = 0;
        for (size_t k = 0; k < in->ntgts && nv < ARRAY_LEN(views); k++)
            views[nv++] = &in->tgts[k]->view;
        int rc = arbiter_timeline(&in->facts, views, nv, now, horizon, tls[i].slots, MAX_SLOTS);
        tls[i].n = rc < 0 ? MAX_SLOTS : rc;
        if (tls[i].n > 0 && tls[i].slots[0].end_ms < next)
            next = tls[i].slots[0].end_ms;
    }
    for (int dir = 0; dir < ARB_NDIR; dir++) {
        want[dir] = (struct devcap){false, 0, ARB_FOREVER};
        if (!d->has_dir[dir])
            continue;
        int64_t total = 0;
        bool any = false;
        for (size_t i = 0; i < n; i++) {
            struct inst *in = d->insts[i];
            bool has = dir == ARB_CONSUMPTION ? in->facts.consumes : in->facts.produces;
            if (!has)
                continue;
            const struct arb_slot *s = slot_at(&tls[i], now);
            if (s && s->dir[dir].by) {
                any = true;
                total +=
                    s->dir[dir].cap_w < in->facts.rated_w ? s->dir[dir].cap_w : in->facts.rated_w;
            } else {
                total += in->facts.rated_w;
            }
        }
        if (!any)
            continue;
        /* Until when some installation stays capped without a break. */
        int64_t t = now, until = ARB_FOREVER;
        while (t < horizon) {
            bool capped = false;
            int64_t step = horizon;
            for (size_t i = 0; i < n; i++) {
                const struct arb_slot *s = slot_at(&tls[i], t);
                if (s == NULL)
                    continue;
                capped = capped || s->dir[dir].by != NULL;
                if (s->end_ms < step)
                    step = s->end_ms;
            }
            if (!capped) {
                until = t;
                break;
            }
            t = step;
        }
        want[dir] = (struct devcap){true, total, until};
    }
    return next >= horizon ? ARB_FOREVER : next;
}

static bool cap_equal(const struct devcap *a, const struct devcap *b)
{
    if (a->active != b->active)
        return false;
    if (!a->active)
        return true;
    if (a->value_w != b->value_w)
        return false;
    if (a->until_ms == ARB_FOREVER || b->until_ms == ARB_FOREVER)
        return a->until_ms == b->until_ms;
    int64_t diff = a->until_ms - b->until_ms;
    return diff <= UNTIL_SLACK_MS && diff >= -UNTIL_SLACK_MS;
}

/* The confirmed cap as in force now (an expired limit is inactive). */
static struct devcap conf_now(const struct dev *d, int dir, int64_t now)
{
    struct devcap c = d->conf[dir];
    if (c.active && c.until_ms != ARB_FOREVER && c.until_ms <= now)
        c = (struct devcap){false, c.value_w, ARB_FOREVER};
    return c;
}

/* --- commands ------------------------------------------------------------------------------ */

static json_t *limit_control(const struct devcap *c, int dir, int64_t now)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:b}", "type", "limit", "direction",
                          arb_dir_name((enum arb_dir)dir), "value_w",
                          (json_int_t)(c->active ? c->value_w : 0), "active", c->active);
    if (c->active && c->until_ms != ARB_FOREVER) {
        int64_t s = (c->until_ms - now + 999) / 1000;
        json_object_set_new(o, "duration_s", json_integer(s < 1 ? 1 : s));
    }
    return o;
}

static int64_t command_deadline(const struct dev *d, int64_t now)
{
    int64_t dl = ARB_FOREVER;
    for (const struct exe *e = d->waiting; e; e = e->wnext)
        if (e->due && e->rq->deadline_ms < dl)
            dl = e->rq->deadline_ms;
    if (dl == ARB_FOREVER || dl <= now)
        return now + LATE_CMD_WINDOW_S * 1000LL;
    return dl < now + MIN_CMD_WINDOW_S * 1000LL ? now + MIN_CMD_WINDOW_S * 1000LL : dl;
}

/* Grid work waits for the device: its channel is asked for ahead of
 * market work (DESIGN.md §2, grid-serving before market-driven). */
static bool grid_waits(const struct dev *d)
{
    for (const struct exe *e = d->waiting; e; e = e->wnext)
        if (e->rq->spec.purpose == ARB_GRID)
            return true;
    return false;
}

static void send_limit(struct requests *r, struct dev *d, int dir, int64_t now)
{
    json_t *ctl = limit_control(&d->want[dir], dir, now);
    int rc = ctl ? dispatch_send(r->dispatch, d->id, ctl, "reconcile", command_deadline(d, now),
                                 grid_waits(d), d->cmd)
                 : -ENOMEM;
    json_decref(ctl);
    if (rc != 0) {
        d->cmd[0] = '\0';
        d->backoff_s = BACKOFF_MAX_S;
        d->retry_at = now + d->backoff_s * 1000LL;
        LOG(LOG_ERROR, "command not queued", LOG_S("device", d->id), LOG_I("error", rc));
        return;
    }
    d->cmd_dir = dir;
    d->cmd_cap = d->want[dir];
    for (struct exe *e = d->waiting; e; e = e->wnext) {
        if (!e->due)
            continue;
        str_copy(e->command, sizeof e->command, d->cmd);
    }
}

static void arm(struct dev *d, int64_t at, int64_t now)
{
    if (at == ARB_FOREVER) {
        if (d->timer)
            event_del(d->timer);
        d->timer_at = 0;
        return;
    }
    if (d->timer == NULL && (d->timer = evtimer_new(d->owner->base, dev_timer_cb, d)) == NULL)
        return;
    int64_t in = at > now ? at - now : 0;
    struct timeval tv = {(time_t)(in / 1000), (suseconds_t)(in % 1000) * 1000};
    d->timer_at = at;
    event_add(d->timer, &tv);
}

static bool anything_to_do(const struct dev *d, int64_t now)
{
    if (d->waiting)
        return true;
    for (int dir = 0; dir < ARB_NDIR; dir++) {
        struct devcap c = conf_now(d, dir, now);
        if (d->want[dir].active || (d->conf_known && c.active))
            return true;
    }
    return false;
}

static void reconcile_dev(struct requests *r, struct dev *d, int64_t now)
{
    struct devcap want[ARB_NDIR];
    int64_t next = compute_want(d, now, want);
    bool changed = false;
    for (int dir = 0; dir < ARB_NDIR; dir++)
        if (!cap_equal(&want[dir], &d->want[dir]) || want[dir].until_ms != d->want[dir].until_ms)
            changed = true;
    if (changed) {
        memcpy(d->want, want, sizeof want);
        d->version++;
        if (d->blocked) { /* a new desired state deserves a new try */
            d->blocked = false;
            d->blocked_why[0] = '\0';
        }
    }
    for (struct exe *e = d->waiting; e; e = e->wnext)
        if (e->due && e->needs_version == 0)
            e->needs_version = d->version;
    if (d->cmd[0]) {
        arm(d, next, now); /* the command's end brings us back */
        return;
    }
    int differs = -1;
    for (int dir = 0; dir < ARB_NDIR && differs < 0; dir++) {
        if (!d->has_dir[dir])
            continue;
        struct devcap c = conf_now(d, dir, now);
        if (!d->conf_known || d->conf_failsafe || !cap_equal(&d->want[dir], &c))
            differs = dir;
    }
    if (differs < 0) {
        d->confirmed_version = d->version;
        for (struct exe *e = d->waiting, *n; e; e = n) {
            n = e->wnext;
            if (e->due && e->needs_version && e->needs_version <= d->confirmed_version)
                rq__exe_set(r, e, EX_CONFIRMED, NULL);
        }
        arm(d, next, now);
        return;
    }
    if (d->blocked) {
        for (struct exe *e = d->waiting, *n; e; e = n) {
            n = e->wnext;
            if (e->due)
                rq__exe_set(r, e, EX_FAILED, d->blocked_why);
        }
        arm(d, next, now);
        return;
    }
    if (!anything_to_do(d, now)) {
        arm(d, next, now);
        return;
    }
    if (d->retry_at > now) {
        arm(d, d->retry_at < next ? d->retry_at : next, now);
        return;
    }
    send_limit(r, d, differs, now);
    arm(d, next, now);
}

/* Grid work first, then by deadline (DESIGN.md §2: the dispatcher orders
 * work by deadline, grid first). */
static int64_t urgency(const struct dev *d)
{
    int64_t best = ARB_FOREVER;
    for (const struct exe *e = d->waiting; e; e = e->wnext) {
        int64_t u = e->rq->deadline_ms / 2 + (e->rq->spec.purpose == ARB_GRID ? 0 : INT64_MAX / 4);
        if (u < best)
            best = u;
    }
    return best;
}

static int by_urgency(const void *a, const void *b)
{
    int64_t x = urgency(*(struct dev *const *)a), y = urgency(*(struct dev *const *)b);
    return x < y ? -1 : x > y;
}

static void reconcile_cb(evutil_socket_t fd, short what, void *arg)
{
    struct requests *r = arg;
    int64_t now = time_now_ms();
    size_t n = 0, k = 0;
    (void)fd;
    (void)what;
    for (struct dev *d = r->to_reconcile; d; d = d->dirty_next)
        n++;
    struct dev **list = malloc((n ? n : 1) * sizeof *list);
    for (struct dev *d = r->to_reconcile, *next; d; d = next) {
        next = d->dirty_next;
        d->dirty = false;
        d->dirty_next = NULL;
        if (list)
            list[k++] = d;
        else
            reconcile_dev(r, d, now);
    }
    r->to_reconcile = NULL;
    if (list) {
        qsort(list, k, sizeof *list, by_urgency);
        for (size_t i = 0; i < k; i++)
            reconcile_dev(r, list[i], now);
        free(list);
    }
}

static void dev_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dev *d = arg;
    (void)fd;
    (void)what;
    d->timer_at = 0;
    rq__dev_dirty(d->owner, d);
    rq__reconcile_soon(d->owner);
}

/* --- what the dispatcher tells ---------------------------------------------------------------- */

static void on_command(void *arg, const char *device, const char *cmd, const char *state,
                       int attempts, const char *error, bool permanent)
{
    struct requests *r = arg;
    struct dev *d = strmap_get(&r->devs, device);
    if (d == NULL || strcmp(d->cmd, cmd) != 0)
        return; /* an operator's command, or one from before a restart */
    static const struct {
        const char *name;
        enum exe_state st;
    } map[] = {{"channel_requested", EX_CHANNEL_REQUESTED},
               {"channel_open", EX_CHANNEL_OPEN},
               {"sent", EX_SENT},
               {"acked", EX_ACKED}};
    for (size_t i = 0; i < ARRAY_LEN(map); i++) {
        if (strcmp(state, map[i].name) != 0)
            continue;
        for (struct exe *e = d->waiting; e; e = e->wnext) {
            if (!e->due)
                continue;
            e->attempts = attempts;
            rq__exe_set(r, e, map[i].st, NULL);
        }
        return;
    }
    if (strcmp(state, "confirmed") == 0) {
        d->cmd[0] = '\0';
        d->backoff_s = 0;
        d->retry_at = 0;
        rq__dev_dirty(r, d);
        rq__reconcile_soon(r);
        return;
    }
    if (strcmp(state, "failed") != 0)
        return;
    d->cmd[0] = '\0';
    if (permanent) {
        d->blocked = true;
        str_copy(d->blocked_why, sizeof d->blocked_why, error ? error : "failed");
    } else {
        d->backoff_s = d->backoff_s ? d->backoff_s * 2 : BACKOFF_MIN_S;
        if (d->backoff_s > BACKOFF_MAX_S)
            d->backoff_s = BACKOFF_MAX_S;
        d->retry_at = time_now_ms() + d->backoff_s * 1000LL;
        for (struct exe *e = d->waiting; e; e = e->wnext) {
            if (!e->due)
                continue;
            str_copy(e->error, sizeof e->error, error ? error : "failed");
            rq__exe_set(r, e, EX_PENDING, NULL);
        }
    }
    LOG(LOG_WARN, "device not reconciled", LOG_S("device", d->id), LOG_S("error", error),
        LOG_I("retry_in_s", permanent ? -1 : d->backoff_s));
    rq__dev_dirty(r, d);
    rq__reconcile_soon(r);
}

static void on_state(void *arg, const char *device, const struct lpc_state *st)
{
    struct requests *r = arg;
    struct dev *d = strmap_get(&r->devs, device);
    if (d == NULL)
        return;
    for (int dir = 0; dir < ARB_NDIR; dir++) {
        const struct lpc_limit_state *l =
            &st->limit[dir == ARB_CONSUMPTION ? LPC_CONSUMPTION : LPC_PRODUCTION];
        d->conf[dir].active = l->active;
        d->conf[dir].value_w = l->value_w;
        d->conf[dir].until_ms = l->active && l->until_ms != LPC_NONE ? l->until_ms : ARB_FOREVER;
    }
    d->conf_known = true;
    d->conf_failsafe = st->mode == LPC_MODE_FAILSAFE;
    d->conf_at = time_now_ms();
    d->measured_w = st->measured_w;
    d->measured_at = d->conf_at;
    rq__dev_state_dirty(r, d);
    d->over_since = 0; /* a new confirmation: the grace period starts over */
    requests_measured(r, d->id, d->conf_at, st->measured_w);
    if (d->cmd[0] == '\0') { /* on its own: an expiry, a failsafe, a read */
        rq__dev_dirty(r, d);
        rq__reconcile_soon(r);
    }
}

static void on_telemetry(void *arg, const char *device, int64_t time_ms, int64_t watts)
{
    requests_measured(arg, device, time_ms, watts);
}

static void on_channel(void *arg, const char *device, bool open)
{
    struct requests *r = arg;
    struct dev *d = strmap_get(&r->devs, device);
    if (d == NULL || !open)
        return;
    /* Restate what is in force after any reconnect (DESIGN.md §4): the
     * device may have been in failsafe or restarted meanwhile. */
    for (int dir = 0; dir < ARB_NDIR; dir++) {
        if (d->want[dir].active) {
            d->conf_known = false;
            rq__dev_dirty(r, d);
            rq__reconcile_soon(r);
            return;
        }
    }
}

/* --- documents ---------------------------------------------------------------------------------
 */

json_t *rq__devcap_json(const struct devcap *c)
{
    char t[40];
    if (!c->active)
        return json_pack("{s:b}", "active", 0);
    return json_pack("{s:b, s:I, s:s?}", "active", 1, "value_w", (json_int_t)c->value_w, "until",
                     c->until_ms == ARB_FOREVER ? NULL : time_format_ms(c->until_ms, t, sizeof t));
}

json_t *rq__dev_json(struct requests *r, struct dev *d)
{
    char t[40];
    json_t *want = json_object(), *conf = json_object();
    for (int dir = 0; dir < ARB_NDIR; dir++) {
        if (!d->has_dir[dir])
            continue;
        json_object_set_new(want, arb_dir_name((enum arb_dir)dir), rq__devcap_json(&d->want[dir]));
        json_object_set_new(conf, arb_dir_name((enum arb_dir)dir), rq__devcap_json(&d->conf[dir]));
    }
    json_object_set_new(conf, "known", json_boolean(d->conf_known));
    json_object_set_new(conf, "failsafe", json_boolean(d->conf_failsafe));
    json_object_set_new(conf, "at",
                        d->conf_at ? json_string(time_format_ms(d->conf_at, t, sizeof t))
                                   : json_null());
    if (d->measured_at)
        json_object_set_new(conf, "measured_w", json_integer(d->measured_w));
    json_object_set_new(conf, "compliance", rq__compliance_json(d));
    return json_pack("{s:s, s:o, s:o, s:I, s:I, s:s?, s:s?, s:b}", "device", d->id, "desired", want,
                     "confirmed", conf, "version", (json_int_t)d->version, "confirmed_version",
                     (json_int_t)d->confirmed_version, "command", d->cmd[0] ? d->cmd : NULL,
                     "blocked", d->blocked ? d->blocked_why : NULL, "channel_open",
                     dispatch_channel_open(r->dispatch, d->id));
}

json_t *rq__dev_conf_store(const struct dev *d)
{
    json_t *o = json_pack("{s:b, s:b}", "known", d->conf_known, "failsafe", d->conf_failsafe);
    for (int dir = 0; dir < ARB_NDIR; dir++) {
        const struct devcap *c = &d->conf[dir];
        json_t *v = json_pack("{s:b, s:I}", "active", c->active, "value_w", (json_int_t)c->value_w);
        json_object_set_new(v, "until",
                            c->until_ms == ARB_FOREVER ? json_null() : json_integer(c->until_ms));
        json_object_set_new(o, arb_dir_name((enum arb_dir)dir), v);
    }
    return o;
}

/* --- life cycle ----------------------------------------------------------------------------------
 */

int rq__reconcile_init(struct requests *r)
{
    r->reconcile_ev = event_new(r->base, -1, 0, reconcile_cb, r);
    if (r->reconcile_ev == NULL)
        return -ENOMEM;
    struct dispatch_observer o = {on_command, on_state, on_channel, on_telemetry, r};
    dispatch_set_observer(r->dispatch, &o);
    return 0;
}

void rq__reconcile_free(struct requests *r)
{
    struct dispatch_observer none = {NULL, NULL, NULL, NULL, NULL};
    if (r->dispatch)
        dispatch_set_observer(r->dispatch, &none);
    if (r->reconcile_ev)
        event_free(r->reconcile_ev);
}
