/*
 * requests.c - admission, life cycle, persistence and queries of requests;
 * see requests.h. Devices and their reconciliation are in reconcile.c.
 */
#include <errno.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/util.h"
#include "request/requests_impl.h"
#include "store/commit.h"
#include "store/store.h"

const char *const rq__state_names[RQ_NSTATES] = {"received",
                                                 "admitted",
                                                 "rejected",
                                                 "scheduled",
                                                 "executing",
                                                 "completed",
                                                 "partially_completed",
                                                 "late",
                                                 "failed",
                                                 "cancelled",
                                                 "superseded",
                                                 "expired"};
const char *const rq__exe_state_names[EX_NSTATES] = {
    "pending", "channel_requested", "channel_open", "sent",
    "acked",   "confirmed",         "failed",       "skipped"};

#define REJECTIONS_SHOWN 100 /* per request in its decision */

const char *requests_state_name(int state)
{
    return state >= 0 && state < RQ_NSTATES ? rq__state_names[state] : "?";
}

static bool rq_final(enum rq_state s)
{
    return s == RQ_REJECTED || s >= RQ_COMPLETED;
}

static bool exe_final(enum exe_state s)
{
    return s >= EX_CONFIRMED;
}

static enum arb_role role_of(const char *role)
{
    if (role == NULL)
        return ARB_ROLE_OTHER;
    if (strcmp(role, "vnb") == 0)
        return ARB_ROLE_VNB;
    if (strcmp(role, "uenb") == 0)
        return ARB_ROLE_UENB;
    if (strcmp(role, "lf") == 0 || strcmp(role, "aggregator") == 0 || strcmp(role, "msb") == 0)
        return ARB_ROLE_MARKET;
    return ARB_ROLE_OTHER;
}

static json_t *time_json(int64_t ms)
{
    char t[40];
    return ms > 0 && ms != ARB_FOREVER ? json_string(time_format_ms(ms, t, sizeof t)) : json_null();
}

static int rq_state_parse(const char *s)
{
    for (int i = 0; s && i < RQ_NSTATES; i++)
        if (strcmp(s, rq__state_names[i]) == 0)
            return i;
    return -1;
}

static int exe_state_parse(const char *s)
{
    for (int i = 0; s && i < EX_NSTATES; i++)
        if (strcmp(s, rq__exe_state_names[i]) == 0)
            return i;
    return -1;
}

/* --- events ------------------------------------------------------------------------ */

void rq__audit(struct requests *r, const char *kind, struct rq *q, json_t *payload)
{
    const char *aud[AUDIT_AUDIENCE_MAX];
    size_t n = 0;
    char subject[64];
    aud[n++] = q->party;
    for (size_t i = 0; i < q->nvnbs && n < AUDIT_AUDIENCE_MAX; i++)
        aud[n++] = q->vnbs[i];
    json_object_set_new(payload, "request", json_string(q->id));
    json_object_set_new(payload, "state", json_string(rq__state_names[q->state]));
    snprintf(subject, sizeof subject, "request:%s", q->id);
    audit_append_to(r->audit, kind, subject, q->party, aud, n, payload);
}

/* --- documents ------------------------------------------------------------------------ */

static json_t *exe_counts(const struct rq *q)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "total", (json_int_t)q->nexes, "confirmed",
                     (json_int_t)q->nconfirmed, "failed", (json_int_t)q->nfailed, "skipped",
                     (json_int_t)q->nskipped, "late", (json_int_t)q->nlate, "pending",
                     (json_int_t)(q->nexes - q->nfinal));
}

/* The decision with the execution counts of now, as stored. */
static void refresh_decision(struct rq *q)
{
    json_object_set_new(q->decision, "executions", exe_counts(q));
    json_object_set_new(q->decision, "suspended", json_boolean(q->suspended));
}

/* A request in API form, from its stored row (memory gives the same row). */
static json_t *doc_from_row(const json_t *row)
{
    json_t *doc = json_object(), *spec = json_object_get(row, "spec");
    const char *keys[] = {"id", "state", "party", "seq"};
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        json_object_set(doc, keys[i], json_object_get(row, keys[i]));
    json_object_set(doc, "purpose", json_object_get(spec, "purpose"));
    json_object_set(doc, "action", json_object_get(spec, "action"));
    json_object_set(doc, "request", spec);
    json_t *dec = json_deep_copy(json_object_get(row, "decision"));
    json_t *ex = json_incref(json_object_get(dec, "executions"));
    json_object_del(dec, "executions");
    json_object_del(dec, "vnbs");
    json_object_set_new(doc, "decision", dec);
    json_object_set_new(doc, "executions", ex ? ex : json_object());
    json_object_set_new(doc, "deadline",
                        time_json(json_integer_value(json_object_get(row, "deadline"))));
    json_object_set_new(doc, "created_at",
                        time_json(json_integer_value(json_object_get(row, "created_at"))));
    json_object_set_new(doc, "updated_at",
                        time_json(json_integer_value(json_object_get(row, "updated_at"))));
    json_int_t ended = json_integer_value(json_object_get(row, "ended_at"));
    json_object_set_new(doc, "ended_at", time_json(ended));
    const char *st = json_string_value(json_object_get(row, "state"));
    json_object_set_new(doc, "in_force",
                        json_boolean(ended == 0 && st && strcmp(st, "rejected") != 0));
    json_object_set(doc, "superseded_by", json_object_get(row, "superseded_by"));
    return doc;
}

static json_t *rq_row(const struct rq *q)
{
    return json_pack("{s:s, s:I, s:s, s:s, s:O, s:s, s:O, s:I, s:I, s:I, s:I, s:s?}", "id", q->id,
                     "seq", (json_int_t)q->seq, "party", q->party, "role", q->role_name, "spec",
                     q->spec_json, "state", rq__state_names[q->state], "decision", q->decision,
                     "deadline", (json_int_t)q->deadline_ms, "created_at",
                     (json_int_t)q->created_ms, "updated_at", (json_int_t)q->updated_ms, "ended_at",
                     (json_int_t)q->ended_ms, "superseded_by",
                     q->superseded_by[0] ? q->superseded_by : NULL);
}

static json_t *rq_doc(struct rq *q)
{
    refresh_decision(q);
    json_t *row = rq_row(q), *doc = doc_from_row(row);
    json_decref(row);
    return doc;
}

/* --- persistence ----------------------------------------------------------------------- */

void rq__mark(struct requests *r, struct rq *q)
{
    q->updated_ms = time_now_ms();
    if (!q->dirty) {
        q->dirty = true;
        q->dirty_next = r->dirty_rqs;
        r->dirty_rqs = q;
    }
    commit_want(r->committer);
}

static void exe_mark(struct requests *r, struct exe *e)
{
    if (!e->dirty) {
        e->dirty = true;
        e->dirty_next = r->dirty_exes;
        r->dirty_exes = e;
    }
    commit_want(r->committer);
}

static int put_request(struct requests *r, struct rq *q)
{
    refresh_decision(q);
    char *spec = json_dumps(q->spec_json, JSON_COMPACT | JSON_SORT_KEYS);
    char *dec = json_dumps(q->decision, JSON_COMPACT | JSON_SORT_KEYS);
    char *answer = q->is_new && q->answer ? json_dumps(q->answer, JSON_COMPACT) : NULL;
    int rc = -ENOMEM;
    if (spec && dec && (!q->is_new || !q->answer || answer)) {
        struct store_request row = {
            .id = q->id,
            .party = q->party,
            .role = q->role_name,
            .spec = spec,
            .state = rq__state_names[q->state],
            .decision = dec,
            .superseded_by = q->superseded_by[0] ? q->superseded_by : NULL,
            .idem_key = q->idem_key,
            .body_hash = q->body_hash,
            .answer = answer,
            .seq = q->seq,
            .deadline = q->deadline_ms,
            .window_end = q->spec.act.end_ms,
            .created_at = q->created_ms,
            .updated_at = q->updated_ms,
            .ended_at = q->ended_ms,
            .is_new = q->is_new,
        };
        rc = store_request_put(r->store, &row);
    }
    free(spec);
    free(dec);
    free(answer);
    if (rc != 0 || !q->is_new)
        return rc;
    size_t i;
    json_t *t;
    json_array_foreach(q->target_rows, i, t)
    {
        char *steps = json_dumps(json_object_get(t, "steps"), JSON_COMPACT);
        struct store_target row = {
            .request = q->id,
            .installation = json_string_value(json_object_get(t, "installation")),
            .device = json_string_value(json_object_get(t, "device")),
            .code = json_string_value(json_object_get(t, "code")),
            .text = json_string_value(json_object_get(t, "text")),
            .conflict = json_string_value(json_object_get(t, "conflict")),
            .steps = steps,
        };
        rc = steps ? store_target_put(r->store, &row) : -ENOMEM;
        free(steps);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int put_execution(struct requests *r, const struct exe *e)
{
    char steps[EX_NSTATES * 40 + 8];
    size_t n = 0;
    steps[n++] = '{';
    for (int i = 0; i < EX_NSTATES; i++)
        if (e->steps_ms[i])
            n += (size_t)snprintf(steps + n, sizeof steps - n, "%s\"%s\":%lld", n > 1 ? "," : "",
                                  rq__exe_state_names[i], (long long)e->steps_ms[i]);
    snprintf(steps + n, sizeof steps - n, "}");
    struct store_execution row = {
        .request = e->rq->id,
        .device = e->dev->id,
        .state = rq__exe_state_names[e->state],
        .steps = steps,
        .error = e->error[0] ? e->error : NULL,
        .command = e->command[0] ? e->command : NULL,
        .deadline = e->rq->deadline_ms,
        .late = e->late,
        .attempts = e->attempts,
    };
    return store_execution_put(r->store, &row);
}

static int rq_write(void *arg)
{
    struct requests *r = arg;
    int rc = 0;
    r->writing_rqs = r->dirty_rqs;
    r->dirty_rqs = NULL;
    r->writing_exes = r->dirty_exes;
    r->dirty_exes = NULL;
    r->writing_states = r->state_dirty;
    r->state_dirty = NULL;
    for (struct rq *q = r->writing_rqs; q && rc == 0; q = q->dirty_next)
        rc = put_request(r, q);
    for (struct exe *e = r->writing_exes; e && rc == 0; e = e->dirty_next)
        rc = put_execution(r, e);
    for (struct dev *d = r->writing_states; d && rc == 0; d = d->sdirty_next) {
        json_t *o = rq__dev_conf_store(d);
        char *text = json_dumps(o, JSON_COMPACT);
        rc = text ? store_device_state_put(r->store, d->id, text, d->conf_at) : -ENOMEM;
        free(text);
        json_decref(o);
    }
    return rc;
}

static void rq_free(struct requests *r, struct rq *q);

static void answer(struct rq *q, int status_override)
{
    requests_answer_fn fn = q->fn;
    q->fn = NULL;
    if (fn == NULL)
        return;
    if (status_override) {
        json_t *doc = json_pack("{s:s, s:s}", "detail",
                                "the request could not be stored yet; its outcome is not known. "
                                "Repeat it with the same Idempotency-Key to learn it.",
                                "request", q->id);
        fn(q->fn_arg, status_override, "store-unavailable", doc, NULL);
        return;
    }
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/requests/%s", q->id);
    if (q->fn_status) { /* a later call (cancel): the request as it is now */
        int st = q->fn_status;
        q->fn_status = 0;
        fn(q->fn_arg, st, NULL, rq_doc(q), loc);
        return;
    }
    int status = (int)json_integer_value(json_object_get(q->answer, "status"));
    const char *slug = json_string_value(json_object_get(q->answer, "slug"));
    json_t *doc = slug ? json_deep_copy(json_object_get(q->answer, "doc")) : rq_doc(q);
    fn(q->fn_arg, status, slug, doc, loc);
}

/* Once stored, a request's target rows are not needed again, nor the
 * document of its first answer when it was admitted: a replay answers with
 * the request as it is then. Only a rejection's document is kept. */
static void forget_written(struct rq *q)
{
    json_array_clear(q->target_rows);
    if (json_is_null(json_object_get(q->answer, "slug")))
        json_object_del(q->answer, "doc");
}

static void rq_done(void *arg, int rc)
{
    struct requests *r = arg;
    struct rq *qs = r->writing_rqs, *next;
    struct exe *es = r->writing_exes, *en;
    struct dev *ds = r->writing_states, *dn;
    r->writing_rqs = NULL;
    r->writing_exes = NULL;
    r->writing_states = NULL;
    if (rc != 0) {
        /* Everything stays dirty for the committer's retry; submitters
         * learn that the outcome is open. */
        for (struct rq *q = qs; q; q = next) {
            next = q->dirty_next;
            q->dirty_next = r->dirty_rqs;
            r->dirty_rqs = q;
            answer(q, 503);
        }
        for (struct exe *e = es; e; e = en) {
            en = e->dirty_next;
            e->dirty_next = r->dirty_exes;
            r->dirty_exes = e;
        }
        for (struct dev *d = ds; d; d = dn) {
            dn = d->sdirty_next;
            d->sdirty_next = r->state_dirty;
            r->state_dirty = d;
        }
        return;
    }
    /* Only requests written now, or whose executions were, can have
     * ended with this commit; the others are not looked at. */
    struct rq *sweep = NULL;
    for (struct exe *e = es; e; e = en) {
        en = e->dirty_next;
        e->dirty = false;
        e->dirty_next = NULL;
        if (!e->rq->in_sweep) {
            e->rq->in_sweep = true;
            e->rq->sweep_next = sweep;
            sweep = e->rq;
        }
    }
    for (struct dev *d = ds; d; d = dn) {
        dn = d->sdirty_next;
        d->state_dirty = false;
        d->sdirty_next = NULL;
    }
    for (struct rq *q = qs; q; q = next) {
        next = q->dirty_next;
        q->dirty = false;
        q->dirty_next = NULL;
        q->is_new = false;
        answer(q, 0);
        forget_written(q);
        if (!q->in_sweep) {
            q->in_sweep = true;
            q->sweep_next = sweep;
            sweep = q;
        }
    }
    /* What is durable may now be sent; what is over leaves memory. */
    rq__reconcile_soon(r);
    for (struct rq *q = sweep, *n; q; q = n) {
        n = q->sweep_next;
        q->in_sweep = false;
        q->sweep_next = NULL;
        if (!q->dirty && q->fn == NULL && rq_final(q->state) && q->ended_ms &&
            q->nfinal == q->nexes)
            rq_free(r, q);
    }
}

/* --- executions and the request's state --------------------------------------------------- */

static void end_request(struct requests *r, struct rq *q, enum rq_state unfinished, bool skip,
                        const char *why);

/* All executions final: the request's outcome. */
static void settle(struct requests *r, struct rq *q)
{
    if (rq_final(q->state) || q->nfinal < q->nexes || q->state == RQ_SCHEDULED)
        return;
    enum rq_state to;
    if (q->nfailed == 0)
        to = q->nlate ? RQ_LATE : RQ_COMPLETED;
    else
        to = q->nconfirmed ? RQ_PARTIAL : RQ_FAILED;
    q->state = to;
    rq__mark(r, q);
    rq__audit(r, "request.finished", q, json_pack("{s:o}", "executions", exe_counts(q)));
    LOG(LOG_INFO, "request finished", LOG_S("request", q->id), LOG_S("state", rq__state_names[to]));
}

/* Tell the other parties of a confirmed grid action (DESIGN.md §4). */
static void ex_post(struct requests *r, struct exe *e)
{
    struct rq *q = e->rq;
    if (q->spec.purpose != ARB_GRID)
        return;
    for (size_t i = 0; i < e->dev->ninsts; i++) {
        struct inst *in = e->dev->insts[i];
        bool touched = false;
        for (size_t k = 0; k < in->ntgts && !touched; k++)
            touched = in->tgts[k]->rq == q;
        if (!touched || in->nassigned == 0)
            continue;
        const char *aud[AUDIT_AUDIENCE_MAX];
        size_t n = 0;
        for (size_t k = 0; k < in->nassigned && n < AUDIT_AUDIENCE_MAX; k++)
            if (strcmp(in->assigned[k].party, q->party) != 0)
                aud[n++] = in->assigned[k].party;
        if (n == 0)
            continue;
        struct arb_slot now;
        const struct arb_req *views[64];
        size_t nv = 0;
        for (size_t k = 0; k < in->ntgts && nv < ARRAY_LEN(views); k++)
            views[nv++] = &in->tgts[k]->view;
        arbiter_at(&in->facts, views, nv, time_now_ms(), &now);
        char subject[128];
        snprintf(subject, sizeof subject, "installation:%s", in->id);
        json_t *p = json_pack(
            "{s:s, s:s, s:s, s:s, s:o, s:o, s:s?}", "installation", in->id, "request", q->id, "by",
            q->party, "action", request_action_name(q->spec.act.action), "since",
            time_json(q->spec.act.start_ms), "until", time_json(q->spec.act.end_ms), "reason",
            q->spec.reason[0] ? q->spec.reason : NULL);
        for (int d = 0; d < ARB_NDIR; d++)
            if (now.dir[d].by)
                json_object_set_new(p,
                                    d == ARB_CONSUMPTION ? "consumption_cap_w" : "production_cap_w",
                                    json_integer(now.dir[d].cap_w));
        audit_append_to(r->audit, "installation.restricted", subject, q->party, aud, n, p);
    }
}

void rq__exe_set(struct requests *r, struct exe *e, enum exe_state to, const char *error)
{
    if (exe_final(e->state) || e->state == to)
        return;
    e->state = to;
    e->steps_ms[to] = time_now_ms();
    if (error)
        str_copy(e->error, sizeof e->error, error);
    exe_mark(r, e);
    if (!exe_final(to))
        return;
    rq__exe_unwait(e);
    struct rq *q = e->rq;
    q->nfinal++;
    if (to == EX_CONFIRMED) {
        q->nconfirmed++;
        r->exe_confirmed++;
        if (e->late)
            q->nlate++;
        ex_post(r, e);
    } else if (to == EX_FAILED) {
        q->nfailed++;
        r->exe_failed++;
    } else {
        q->nskipped++;
    }
    rq__mark(r, q);
    settle(r, q);
}

/* --- timers --------------------------------------------------------------------------------- */

static void rq_arm(struct requests *r, struct rq *q)
{
    int64_t now = time_now_ms(), next = INT64_MAX;
    (void)r;
    if (q->ended_ms || q->timer == NULL) {
        if (q->timer)
            event_del(q->timer);
        return;
    }
    if (q->state == RQ_SCHEDULED)
        next = q->spec.act.start_ms;
    if (!q->late_reported && q->nfinal < q->nexes && q->deadline_ms < next)
        next = q->deadline_ms;
    if (q->spec.act.end_ms != ARB_FOREVER && q->spec.act.end_ms < next)
        next = q->spec.act.end_ms;
    if (next == INT64_MAX) {
        event_del(q->timer);
        return;
    }
    int64_t in = next > now ? next - now : 0;
    struct timeval tv = {(time_t)(in / 1000), (suseconds_t)(in % 1000) * 1000};
    event_add(q->timer, &tv);
}

static void start_executing(struct requests *r, struct rq *q)
{
    q->state = RQ_EXECUTING;
    rq__mark(r, q);
    for (size_t i = 0; i < q->nexes; i++) {
        struct exe *e = &q->exes[i];
        if (exe_final(e->state))
            continue;
        e->due = true;
        rq__exe_wait(e);
        rq__dev_dirty(r, e->dev);
    }
    rq__audit(r, "request.executing", q, json_object());
}

static void rq_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct rq *q = arg;
    struct requests *r = q->owner;
    int64_t now = time_now_ms();
    (void)fd;
    (void)what;
    if (q->state == RQ_SCHEDULED && now >= q->spec.act.start_ms)
        start_executing(r, q);
    if (!q->late_reported && now >= q->deadline_ms && q->nfinal < q->nexes) {
        q->late_reported = true;
        size_t n = 0;
        for (size_t i = 0; i < q->nexes; i++) {
            struct exe *e = &q->exes[i];
            if (!exe_final(e->state) && !e->late) {
                e->late = true;
                exe_mark(r, e);
                n++;
            }
        }
        rq__mark(r, q);
        rq__audit(r, "request.late", q, json_pack("{s:I}", "unconfirmed", (json_int_t)n));
        LOG(LOG_WARN, "request missed its deadline", LOG_S("request", q->id),
            LOG_I("unconfirmed", (long long)n));
    }
    if (q->spec.act.end_ms != ARB_FOREVER && now >= q->spec.act.end_ms && !q->ended_ms)
        end_request(r, q, RQ_EXPIRED, false, "the window ended before the device confirmed");
    rq_arm(r, q);
}

/* --- memory --------------------------------------------------------------------------------- */

static void unlist_targets(struct requests *r, struct rq *q)
{
    for (size_t i = 0; i < q->ntgts; i++) {
        struct tgt *t = &q->tgts[i];
        struct inst *in = t->inst;
        if (!t->listed)
            continue;
        for (size_t k = 0; k < in->ntgts; k++) {
            if (in->tgts[k] == t) {
                in->tgts[k] = in->tgts[--in->ntgts];
                break;
            }
        }
        t->listed = false;
        rq__dev_dirty(r, in->dev);
    }
}

static int list_target(struct tgt *t)
{
    struct inst *in = t->inst;
    if (in->ntgts == in->cap) {
        size_t nc = in->cap ? in->cap * 2 : 4;
        void *p = realloc(in->tgts, nc * sizeof *in->tgts);
        if (p == NULL)
            return -ENOMEM;
        in->tgts = p;
        in->cap = nc;
    }
    in->tgts[in->ntgts++] = t;
    t->listed = true;
    return 0;
}

static void idem_key(const char *party, const char *key, char *out, size_t len)
{
    snprintf(out, len, "%s\n%s", party, key);
}

static void rq_free(struct requests *r, struct rq *q)
{
    unlist_targets(r, q);
    for (size_t i = 0; i < q->nexes; i++)
        rq__exe_unwait(&q->exes[i]);
    if (q->idem_key) {
        char k[512];
        idem_key(q->party, q->idem_key, k, sizeof k);
        if (strmap_get(&r->idem, k) == q)
            strmap_del(&r->idem, k);
    }
    if (strmap_get(&r->rqs, q->id) == q)
        strmap_del(&r->rqs, q->id);
    for (size_t i = 0; i < q->ntgts; i++)
        free(q->tgts[i].steps);
    free(q->tgts);
    free(q->exes);
    free(q->vnbs);
    free(q->idem_key);
    free(q->body_hash);
    json_decref(q->spec_json);
    json_decref(q->decision);
    json_decref(q->target_rows);
    json_decref(q->answer);
    if (q->timer)
        event_free(q->timer);
    free(q);
}

static struct rq *rq_alloc(struct requests *r)
{
    struct rq *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    q->owner = r;
    q->timer = evtimer_new(r->base, rq_timer_cb, q);
    q->decision = json_object();
    q->target_rows = json_array();
    if (q->timer == NULL || q->decision == NULL || q->target_rows == NULL) {
        if (q->timer)
            event_free(q->timer);
        json_decref(q->decision);
        json_decref(q->target_rows);
        free(q);
        return NULL;
    }
    return q;
}

static int add_vnb(struct rq *q, const char *vnb)
{
    if (vnb == NULL || vnb[0] == '\0')
        return 0;
    for (size_t i = 0; i < q->nvnbs; i++)
        if (strcmp(q->vnbs[i], vnb) == 0)
            return 0;
    void *p = realloc(q->vnbs, (q->nvnbs + 1) * sizeof *q->vnbs);
    if (p == NULL)
        return -ENOMEM;
    q->vnbs = p;
    str_copy(q->vnbs[q->nvnbs++], RQ_PARTY_MAX, vnb);
    return 0;
}

static bool may_see(const struct rq *q, const struct requests_who *who)
{
    if (who->admin || strcmp(q->party, who->party) == 0)
        return true;
    for (size_t i = 0; i < q->nvnbs; i++)
        if (strcmp(q->vnbs[i], who->party) == 0)
            return true;
    return false;
}

static void end_request(struct requests *r, struct rq *q, enum rq_state unfinished, bool skip,
                        const char *why)
{
    if (q->ended_ms)
        return;
    q->ended_ms = time_now_ms();
    unlist_targets(r, q);
    for (size_t i = 0; i < q->nexes; i++) {
        struct exe *e = &q->exes[i];
        if (!exe_final(e->state))
            rq__exe_set(r, e, skip ? EX_SKIPPED : EX_FAILED, why);
    }
    if (!rq_final(q->state) || unfinished == RQ_CANCELLED || unfinished == RQ_SUPERSEDED)
        q->state = unfinished;
    rq__mark(r, q);
    rq_arm(r, q);
    rq__audit(r,
              unfinished == RQ_CANCELLED    ? "request.cancelled"
              : unfinished == RQ_SUPERSEDED ? "request.superseded"
                                            : "request.ended",
              q, json_pack("{s:s}", "reason", why));
}

/* --- admission ------------------------------------------------------------------------------ */

struct submit {
    struct requests *r;
    const struct requests_who *who;
    const struct req_spec *spec;
    enum arb_role role;
    struct rq *old; /* superseded */
    struct inst **insts;
    size_t n, cap;
    int status;
    const char *slug;
    char detail[300];
    const char *pointer;
};

static int refuse(struct submit *s, int status, const char *slug, const char *pointer,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int refuse(struct submit *s, int status, const char *slug, const char *pointer,
                  const char *fmt, ...)
{
    va_list ap;
    s->status = status;
    s->slug = slug;
    s->pointer = pointer;
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof s->detail, fmt, ap);
    va_end(ap);
    return -EPERM;
}

static bool inst_visible(const struct submit *s, const struct inst *in)
{
    switch (s->role) {
    case ARB_ROLE_UENB:
        return true;
    case ARB_ROLE_VNB:
        return strcmp(in->vnb, s->who->party) == 0;
    default:
        for (size_t i = 0; i < in->nassigned; i++)
            if (strcmp(in->assigned[i].party, s->who->party) == 0)
                return true;
        return false;
    }
}

static int add_inst(struct submit *s, struct inst *in)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->insts[i] == in)
            return 0;
    if (s->n >= (size_t)s->r->cfg.max_targets)
        return refuse(s, 422, "too-many-targets", "/target",
                      "the target holds more than %d installations; split the request",
                      s->r->cfg.max_targets);
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        void *p = realloc(s->insts, nc * sizeof *s->insts);
        if (p == NULL)
            return -ENOMEM;
        s->insts = p;
        s->cap = nc;
    }
    s->insts[s->n++] = in;
    return 0;
}

static int segment_item(struct requests *r, json_t *it, struct submit *s)
{
    const char *kind = json_string_value(json_object_get(it, "kind"));
    enum arb_kind k;
    if (s->spec->kinds &&
        (kind == NULL || arb_kind_parse(kind, &k) != 0 || !(s->spec->kinds & (1u << k))))
        return 0;
    struct inst *in = rq__inst(r, json_string_value(json_object_get(it, "id")));
    if (in == NULL)
        return -EIO;
    return inst_visible(s, in) ? add_inst(s, in) : 0;
}

static int resolve_segment(struct submit *s)
{
    struct requests *r = s->r;
    struct segment *seg = rq__segment(r, s->spec->target_id);
    if (seg == NULL || (s->role == ARB_ROLE_VNB && strcmp(seg->vnb, s->who->party) != 0))
        return refuse(s, 404, "not-found", "/target/segment", "no segment with id \"%s\"",
                      s->spec->target_id);
    struct store_query q = {.kind = &reg_kinds[REG_INSTALLATION]};
    q.scope = (struct store_scope){SCOPE_ALL, NULL, NULL};
    if (s->role == ARB_ROLE_MARKET)
        q.scope = (struct store_scope){SCOPE_ASSIGNED, NULL, s->who->party};
    json_t *segv = json_string(s->spec->target_id), *k14 = NULL;
    q.filters[0].field = reg_field(q.kind, "segment");
    q.filters[0].value = segv;
    q.nfilters = 1;
    if (s->spec->sec14a >= 0) {
        k14 = json_boolean(s->spec->sec14a);
        q.filters[1].field = reg_field(q.kind, "sec14a");
        q.filters[1].value = k14;
        q.nfilters = 2;
    }
    char after[RQ_ID_MAX] = "";
    int more = 1, rc = 0;
    q.limit = 1000;
    while (more && rc == 0) {
        json_t *items = NULL, *it;
        size_t i;
        q.after = after[0] ? after : NULL;
        if ((rc = store_reg_list(r->store, &q, &items, &more)) != 0)
            break;
        json_array_foreach(items, i, it)
        {
            if (rc == 0)
                rc = segment_item(r, it, s);
            str_copy(after, sizeof after, json_string_value(json_object_get(it, "id")));
        }
        if (json_array_size(items) == 0)
            more = 0;
        json_decref(items);
    }
    json_decref(segv);
    json_decref(k14);
    if (rc == -EPERM)
        return rc;
    if (rc != 0)
        return refuse(s, 503, "store-unavailable", NULL, "the registry could not be read");
    if (s->n == 0)
        return refuse(s, 422, "no-targets", "/target",
                      "no installation in segment %s matches the target for you",
                      s->spec->target_id);
    return 0;
}

static int resolve_targets(struct submit *s)
{
    struct requests *r = s->r;
    const char *id = s->spec->target_id;
    switch (s->spec->target) {
    case REQ_TARGET_INSTALLATION: {
        struct inst *in = rq__inst(r, id);
        if (in == NULL || !inst_visible(s, in))
            return refuse(s, 404, "not-found", "/target/installation",
                          "no installation with id \"%s\"", id);
        return add_inst(s, in);
    }
    case REQ_TARGET_DEVICE: {
        struct dev *d = rq__dev(r, id);
        for (size_t i = 0; d && i < d->ninsts; i++) {
            if (inst_visible(s, d->insts[i])) {
                int rc = add_inst(s, d->insts[i]);
                if (rc)
                    return rc;
            }
        }
        if (s->n == 0)
            return refuse(s, 404, "not-found", "/target/device", "no device with id \"%s\"", id);
        return 0;
    }
    default:
        return resolve_segment(s);
    }
}

static json_t *steps_json(const struct arb_step *st, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_pack("{s:I, s:s}", "start", (json_int_t)st[i].start_ms, "direction",
                              arb_dir_name(st[i].dir));
        json_object_set_new(o, "end",
                            st[i].end_ms == ARB_FOREVER ? json_null() : json_integer(st[i].end_ms));
        json_object_set_new(
            o, "value_w", st[i].value_w == ARB_NO_CAP ? json_null() : json_integer(st[i].value_w));
        json_array_append_new(a, o);
    }
    return a;
}

static int steps_parse(const json_t *a, struct arb_step **out, size_t *n)
{
    size_t i;
    const json_t *o;
    *n = json_array_size(a);
    *out = calloc(*n ? *n : 1, sizeof **out);
    if (*out == NULL)
        return -ENOMEM;
    json_array_foreach(a, i, o)
    {
        struct arb_step *s = &(*out)[i];
        const json_t *end = json_object_get(o, "end"), *v = json_object_get(o, "value_w");
        const char *dir = json_string_value(json_object_get(o, "direction"));
        s->start_ms = json_integer_value(json_object_get(o, "start"));
        s->end_ms = json_is_integer(end) ? json_integer_value(end) : ARB_FOREVER;
        s->dir = dir && strcmp(dir, "production") == 0 ? ARB_PRODUCTION : ARB_CONSUMPTION;
        s->value_w = json_is_integer(v) ? json_integer_value(v) : ARB_NO_CAP;
    }
    return 0;
}

/* The arbiter's verdict on one installation; admitted ones become targets. */
static int decide(struct submit *s, struct rq *q, struct inst *in, json_t *counts,
                  json_t *rejections)
{
    struct arb_step steps[ARB_MAX_STEPS], out[ARB_MAX_STEPS];
    const char *code = NULL;
    char text[ARB_TEXT_MAX];
    struct arb_decision d;
    memset(&d, 0, sizeof d);
    int ns = arbiter_steps(&s->spec->act, &in->facts, steps, ARB_MAX_STEPS, &code, text);
    if (ns > 0) {
        const struct arb_req *active[256];
        size_t na = 0;
        for (size_t i = 0; i < in->ntgts && na < ARRAY_LEN(active); i++)
            if (in->tgts[i]->rq != s->old)
                active[na++] = &in->tgts[i]->view;
        struct arb_party p = {s->who->party, s->role, false};
        for (size_t i = 0; i < in->nassigned; i++)
            if (strcmp(in->assigned[i].party, s->who->party) == 0 && in->assigned[i].control)
                p.controls = true;
        struct arb_req view = {q->id,  q->party, s->role,   s->spec->purpose, s->spec->act.action,
                               q->seq, steps,    (size_t)ns};
        arbiter_admit(&view, &p, &in->facts, active, na, q->created_ms, out, &d);
        code = d.code;
        snprintf(text, sizeof text, "%s", d.text);
    }
    json_t *row = json_pack("{s:s, s:s, s:s, s:s}", "installation", in->id, "device", in->device,
                            "code", code ? code : "rejected.unknown", "text", text);
    json_object_set_new(row, "conflict", d.conflict ? json_string(d.conflict) : json_null());
    json_object_set_new(row, "steps", d.admitted ? steps_json(out, (size_t)ns) : json_array());
    json_array_append_new(q->target_rows, row);
    const char *bucket = d.admitted ? (d.clipped ? "clipped" : "admitted") : "rejected";
    json_object_set_new(counts, bucket,
                        json_integer(json_integer_value(json_object_get(counts, bucket)) + 1));
    if (!d.admitted) {
        if (json_array_size(rejections) < REJECTIONS_SHOWN)
            json_array_append_new(rejections, json_deep_copy(row));
        return 0;
    }
    struct tgt *t = &q->tgts[q->ntgts];
    t->rq = q;
    t->inst = in;
    t->nsteps = (size_t)ns;
    t->steps = malloc((size_t)ns * sizeof *t->steps);
    if (t->steps == NULL)
        return -ENOMEM;
    memcpy(t->steps, out, (size_t)ns * sizeof *out);
    q->ntgts++;
    return add_vnb(q, in->vnb);
}

static void view_of(struct tgt *t)
{
    struct rq *q = t->rq;
    t->view = (struct arb_req){q->id,  q->party, q->role,  q->spec.purpose, q->spec.act.action,
                               q->seq, t->steps, t->nsteps};
}

/* One execution per device of the admitted targets. */
static int make_executions(struct rq *q)
{
    q->exes = calloc(q->ntgts ? q->ntgts : 1, sizeof *q->exes);
    if (q->exes == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < q->ntgts; i++) {
        struct dev *d = q->tgts[i].inst->dev;
        bool seen = false;
        for (size_t k = 0; k < q->nexes && !seen; k++)
            seen = q->exes[k].dev == d;
        if (seen)
            continue;
        struct exe *e = &q->exes[q->nexes++];
        e->rq = q;
        e->dev = d;
        e->state = EX_PENDING;
        e->steps_ms[EX_PENDING] = q->created_ms;
    }
    return 0;
}

static int64_t default_deadline(const struct requests *r, const struct rq *q)
{
    int s = q->spec.purpose == ARB_MARKET                 ? r->cfg.market_deadline_s
            : q->spec.cascade || q->role == ARB_ROLE_UENB ? r->cfg.cascade_deadline_s
                                                          : r->cfg.grid_deadline_s;
    int64_t from = q->spec.act.start_ms > q->created_ms ? q->spec.act.start_ms : q->created_ms;
    return from + s * 1000LL;
}

static void problem(requests_answer_fn fn, void *arg, int status, const char *slug,
                    const char *pointer, const char *detail)
{
    json_t *doc = json_pack("{s:s}", "detail", detail);
    if (pointer)
        json_object_set_new(doc, "pointer", json_string(pointer));
    fn(arg, status, slug, doc, NULL);
}

/* Idempotency: a repeated key answers as the first time. Returns 1 when
 * answered, 0 to go on. */
static int replay(struct requests *r, const struct requests_who *who, const char *key,
                  const char *hash, requests_answer_fn fn, void *arg)
{
    char k[512];
    json_t *row = NULL;
    idem_key(who->party, key, k, sizeof k);
    struct rq *q = strmap_get(&r->idem, k);
    const char *first_hash = NULL;
    json_t *ans = NULL;
    if (q && q->fn) {
        problem(fn, arg, 409, "in-progress", NULL,
                "a request with this Idempotency-Key is still being admitted; ask again");
        return 1;
    }
    if (q && json_object_get(q->answer, "doc")) {
        first_hash = q->body_hash;
        ans = q->answer;
    } else if (store_request_find_idem(r->store, who->party, key, &row) == 0) {
        /* The first answer as stored (memory keeps only a rejection's). */
        first_hash = json_string_value(json_object_get(row, "body_hash"));
        ans = json_object_get(row, "answer");
    } else {
        return 0;
    }
    if (first_hash == NULL || strcmp(first_hash, hash) != 0) {
        problem(fn, arg, 422, "idempotency-key-reused", NULL,
                "this Idempotency-Key was used with another request body");
    } else {
        const char *slug = json_string_value(json_object_get(ans, "slug"));
        const char *id = q ? q->id : json_string_value(json_object_get(row, "id"));
        char loc[64];
        snprintf(loc, sizeof loc, "/v1/requests/%s", id ? id : "");
        fn(arg, (int)json_integer_value(json_object_get(ans, "status")), slug,
           json_deep_copy(json_object_get(ans, "doc")), loc);
    }
    json_decref(row);
    return 1;
}

static int check_supersede(struct submit *s)
{
    const char *old = s->spec->supersedes;
    if (old[0] == '\0')
        return 0;
    struct rq *q = strmap_get(&s->r->rqs, old);
    json_t *row = NULL;
    if (q == NULL || strcmp(q->party, s->who->party) != 0) {
        bool exists = q == NULL && store_request_get(s->r->store, old, &row) == 0 &&
                      strcmp(json_string_value(json_object_get(row, "party")), s->who->party) == 0;
        json_decref(row);
        if (exists)
            return refuse(s, 409, "not-in-force", "/supersedes",
                          "request %s is no longer in force; submit without supersedes", old);
        return refuse(s, 404, "not-found", "/supersedes", "no request of yours with id \"%s\"",
                      old);
    }
    if (q->ended_ms || q->state == RQ_REJECTED)
        return refuse(s, 409, "not-in-force", "/supersedes", "request %s is no longer in force",
                      old);
    if (q->fn)
        return refuse(s, 409, "in-progress", "/supersedes",
                      "request %s is still being admitted; ask again", old);
    s->old = q;
    return 0;
}

static int new_id(char out[REQ_REQUEST_ID])
{
    uint8_t rnd[8];
    char hex[17];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return -EIO;
    hex_encode(rnd, sizeof rnd, hex);
    snprintf(out, REQ_REQUEST_ID, "req-%s", hex);
    return 0;
}

static int admit(struct submit *s, struct rq *q)
{
    json_t *counts = json_pack("{s:i, s:i, s:i}", "admitted", 0, "clipped", 0, "rejected", 0);
    json_t *rejections = json_array();
    int rc = 0;
    q->tgts = calloc(s->n, sizeof *q->tgts);
    if (q->tgts == NULL || counts == NULL || rejections == NULL)
        rc = -ENOMEM;
    for (size_t i = 0; i < s->n && rc == 0; i++)
        rc = decide(s, q, s->insts[i], counts, rejections);
    size_t rejected = (size_t)json_integer_value(json_object_get(counts, "rejected"));
    const json_t *first = json_array_get(rejections, 0);
    if (rc == 0 && q->ntgts == 0) {
        q->state = RQ_REJECTED;
        json_object_set(q->decision, "code", json_object_get(first, "code"));
        json_object_set_new(q->decision, "text",
                            s->n == 1 ? json_incref(json_object_get(first, "text"))
                                      : json_string("no installation of the target was admitted"));
    } else if (rc == 0) {
        bool clipped = json_integer_value(json_object_get(counts, "clipped")) > 0;
        json_object_set_new(q->decision, "code",
                            json_string(rejected  ? "partially_admitted"
                                        : clipped ? "clipped.floor_14a"
                                                  : "admitted"));
        json_object_set_new(q->decision, "text",
                            json_string(rejected  ? "admitted on some installations of the target"
                                        : clipped ? "admitted; raised to the §14a floor where "
                                                    "it was below"
                                                  : "admitted"));
    }
    json_object_set_new(q->decision, "installations", counts);
    json_object_set_new(q->decision, "rejections", rejections);
    if (first && json_string_value(json_object_get(first, "conflict")) && s->n == 1)
        json_object_set(q->decision, "conflict", json_object_get(first, "conflict"));
    if (rc == 0 && q->ntgts)
        rc = make_executions(q);
    return rc;
}

/* Put an admitted request in force: targets on their installations,
 * executions waiting, the superseded one ended, timers. */
static int in_force(struct requests *r, struct submit *s, struct rq *q)
{
    int64_t now = q->created_ms;
    for (size_t i = 0; i < q->ntgts; i++) {
        view_of(&q->tgts[i]);
        if (list_target(&q->tgts[i]) != 0)
            return -ENOMEM;
        rq__dev_dirty(r, q->tgts[i].inst->dev);
    }
    if (s->old) {
        str_copy(s->old->superseded_by, sizeof s->old->superseded_by, q->id);
        char why[96];
        snprintf(why, sizeof why, "superseded by %s", q->id);
        end_request(r, s->old, RQ_SUPERSEDED, true, why);
    }
    q->state = q->spec.act.start_ms > now ? RQ_SCHEDULED : RQ_EXECUTING;
    if (q->state == RQ_EXECUTING) {
        for (size_t i = 0; i < q->nexes; i++) {
            q->exes[i].due = true;
            rq__exe_wait(&q->exes[i]);
        }
    }
    rq_arm(r, q);
    return 0;
}

int requests_submit(struct requests *r, const struct requests_who *who, const struct req_spec *spec,
                    const char *idem, const char *body_hash, requests_answer_fn fn, void *arg)
{
    struct submit s = {.r = r, .who = who, .spec = spec, .role = role_of(who->role)};
    struct rq *q = NULL;
    int rc;

    if (who->admin || who->party == NULL || who->party[0] == '\0' || s.role == ARB_ROLE_OTHER) {
        problem(fn, arg, 403, "forbidden", NULL,
                who->admin ? "requests come from parties; the admin token has none"
                           : "only grid operators and market parties send requests");
        return 0;
    }
    /* Who may ask for what at all is decided before anything is stored. */
    if (spec->purpose == ARB_GRID && s.role == ARB_ROLE_MARKET) {
        problem(fn, arg, 403, "forbidden", "/purpose",
                "only grid operators send grid-serving requests");
        return 0;
    }
    if (spec->purpose == ARB_MARKET && s.role != ARB_ROLE_MARKET) {
        problem(fn, arg, 403, "forbidden", "/purpose",
                "grid operators send grid-serving requests, not market ones");
        return 0;
    }
    if (spec->cascade && s.role != ARB_ROLE_VNB) {
        problem(fn, arg, 422, "validation", "/cascade",
                "only a VNB passes a request on from the TSO cascade");
        return 0;
    }
    if (idem && replay(r, who, idem, body_hash, fn, arg))
        return 0;
    if ((rc = check_supersede(&s)) == 0)
        rc = resolve_targets(&s);
    if (rc == 0 && (q = rq_alloc(r)) == NULL)
        rc = -ENOMEM;
    if (rc == 0 && new_id(q->id) != 0)
        rc = refuse(&s, 503, "unavailable", NULL, "no random numbers");
    if (rc != 0) {
        if (rc == -EPERM)
            problem(fn, arg, s.status, s.slug, s.pointer, s.detail);
        else
            problem(fn, arg, 503, "overload", NULL, "out of memory");
        if (q)
            rq_free(r, q);
        free(s.insts);
        return 0;
    }
    q->seq = r->next_seq++;
    q->created_ms = q->updated_ms = time_now_ms();
    str_copy(q->party, sizeof q->party, who->party);
    str_copy(q->role_name, sizeof q->role_name, who->role);
    q->role = s.role;
    memcpy(&q->spec, spec, sizeof q->spec);
    q->spec.act.intervals = q->spec.intervals;
    q->is_new = true;
    q->deadline_ms = spec->deadline_ms ? spec->deadline_ms : default_deadline(r, q);
    rc = admit(&s, q);
    q->spec.deadline_ms = q->deadline_ms;
    q->spec_json = request_spec_json(&q->spec);
    json_t *vnbs = json_array();
    for (size_t i = 0; i < q->nvnbs; i++)
        json_array_append_new(vnbs, json_string(q->vnbs[i]));
    json_object_set_new(q->decision, "vnbs", vnbs);
    if (rc == 0 && q->spec_json == NULL)
        rc = -ENOMEM;
    if (rc == 0 && q->state != RQ_REJECTED)
        rc = in_force(r, &s, q);
    if (rc != 0 || strmap_put(&r->rqs, q->id, q) != 0) {
        unlist_targets(r, q);
        rq_free(r, q);
        free(s.insts);
        problem(fn, arg, 503, "overload", NULL, "out of memory");
        return 0;
    }
    free(s.insts);
    /* The first answer, kept for repetitions with the same key. */
    if (q->state == RQ_REJECTED) {
        q->ended_ms = q->created_ms;
        json_t *doc = json_pack("{s:s, s:s, s:O}", "detail",
                                json_string_value(json_object_get(q->decision, "text")), "request",
                                q->id, "decision", q->decision);
        json_object_del(json_object_get(doc, "decision"), "vnbs");
        q->answer = json_pack("{s:i, s:s, s:o}", "status", 409, "slug", "rejected", "doc", doc);
        r->rejected++;
    } else {
        q->answer = json_pack("{s:i, s:n, s:o}", "status", 202, "slug", "doc", rq_doc(q));
        r->admitted++;
    }
    if (idem) {
        char k[512];
        q->idem_key = strdup(idem);
        q->body_hash = strdup(body_hash ? body_hash : "");
        idem_key(q->party, idem, k, sizeof k);
        strmap_put(&r->idem, k, q);
    }
    q->fn = fn;
    q->fn_arg = arg;
    rq__mark(r, q);
    rq__audit(r, q->state == RQ_REJECTED ? "request.rejected" : "request.admitted", q,
              json_pack("{s:O}", "decision", q->decision));
    LOG(LOG_INFO, "request", LOG_S("request", q->id), LOG_S("party", q->party),
        LOG_S("state", rq__state_names[q->state]),
        LOG_S("decision", json_string_value(json_object_get(q->decision, "code"))),
        LOG_I("installations", (long long)q->ntgts), LOG_I("devices", (long long)q->nexes));
    return 0;
}

/* --- cancel, get, list --------------------------------------------------------------------- */

int requests_cancel(struct requests *r, const struct requests_who *who, const char *id,
                    requests_answer_fn fn, void *arg)
{
    struct rq *q = strmap_get(&r->rqs, id);
    json_t *row = NULL;
    if (q == NULL || !may_see(q, who)) {
        int found = q == NULL && store_request_get(r->store, id, &row) == 0;
        const char *owner = found ? json_string_value(json_object_get(row, "party")) : NULL;
        if (found && (who->admin || (owner && strcmp(owner, who->party) == 0)))
            problem(fn, arg, 409, "not-in-force", NULL, "the request has already ended");
        else
            problem(fn, arg, 404, "not-found", NULL, "no request with this id");
        json_decref(row);
        return 0;
    }
    if (q->ended_ms || q->state == RQ_REJECTED) {
        problem(fn, arg, 409, "not-in-force", NULL, "the request has already ended");
        return 0;
    }
    if (q->fn) {
        problem(fn, arg, 409, "in-progress", NULL, "the request is being stored; ask again");
        return 0;
    }
    char why[96];
    snprintf(why, sizeof why, "cancelled by %s", who->admin ? "the admin" : who->party);
    end_request(r, q, RQ_CANCELLED, true, why);
    q->fn_status = 202;
    q->fn = fn;
    q->fn_arg = arg;
    return 0;
}

static json_t *row_of(struct requests *r, const char *id, struct rq **live)
{
    json_t *row = NULL;
    *live = strmap_get(&r->rqs, id);
    if (*live) {
        refresh_decision(*live);
        return rq_row(*live);
    }
    return store_request_get(r->store, id, &row) == 0 ? row : NULL;
}

static bool row_visible(const json_t *row, const struct requests_who *who)
{
    size_t i;
    const json_t *v;
    if (who->admin || strcmp(json_string_value(json_object_get(row, "party")), who->party) == 0)
        return true;
    json_array_foreach(json_object_get(json_object_get(row, "decision"), "vnbs"), i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), who->party) == 0)
            return true;
    }
    return false;
}

static json_t *exe_doc(const json_t *row)
{
    json_t *o = json_deep_copy(row), *steps = json_object(), *v;
    const char *key;
    json_object_foreach(json_object_get(row, "steps"), key, v)
    {
        json_object_set_new(steps, key, time_json(json_integer_value(v)));
    }
    json_object_set_new(o, "steps", steps);
    json_object_set_new(o, "deadline",
                        time_json(json_integer_value(json_object_get(row, "deadline"))));
    return o;
}

int requests_get(struct requests *r, const struct requests_who *who, const char *id,
                 const char *after, int limit, json_t **out)
{
    struct rq *live;
    json_t *row = row_of(r, id, &live), *targets = NULL, *exes = NULL, *items;
    int more = 0, rc;
    size_t i;
    const json_t *t;
    *out = NULL;
    if (row == NULL || !row_visible(row, who)) {
        json_decref(row);
        return -ENOENT;
    }
    json_t *doc = doc_from_row(row);
    json_decref(row);
    if ((rc = store_targets_of(r->store, id, &targets)) == 0 &&
        (rc = store_executions_of(r->store, id, after, limit, &exes, &more)) == 0) {
        items = json_array();
        json_array_foreach(targets, i, t)
        {
            json_t *o = json_deep_copy(t);
            json_object_del(o, "steps");
            json_array_append_new(items, o);
        }
        json_object_set_new(doc, "targets", items);
        items = json_array();
        json_array_foreach(exes, i, t)
        {
            json_array_append_new(items, exe_doc(t));
        }
        json_t *ex = json_object_get(doc, "executions");
        json_object_set_new(ex, "items", items);
        json_object_set_new(ex, "next",
                            more ? json_incref(json_object_get(
                                       json_array_get(exes, json_array_size(exes) - 1), "device"))
                                 : json_null());
    }
    json_decref(targets);
    json_decref(exes);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

int requests_list(struct requests *r, const struct requests_who *who, const char *party,
                  const char *state, int64_t before, int limit, json_t **out)
{
    struct store_request_query q = {.party = who->admin ? party : who->party,
                                    .state = state,
                                    .before_seq = before,
                                    .limit = limit};
    json_t *rows = NULL, *items = json_array(), *row;
    int more = 0;
    size_t i;
    *out = NULL;
    int rc = store_request_list(r->store, &q, &rows, &more);
    if (rc != 0) {
        json_decref(items);
        return rc;
    }
    json_array_foreach(rows, i, row)
    {
        struct rq *live = strmap_get(&r->rqs, json_string_value(json_object_get(row, "id")));
        if (live) {
            json_array_append_new(items, rq_doc(live));
            continue;
        }
        json_array_append_new(items, doc_from_row(row));
    }
    json_int_t last =
        json_integer_value(json_object_get(json_array_get(rows, json_array_size(rows) - 1), "seq"));
    *out = json_pack("{s:o, s:o}", "items", items, "next_before",
                     more ? json_integer(last) : json_null());
    json_decref(rows);
    return 0;
}

/* --- installation state and flexibility --------------------------------------------------------
 */

static size_t views_of(struct inst *in, const struct arb_req **views, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < in->ntgts && n < cap; i++)
        views[n++] = &in->tgts[i]->view;
    return n;
}

static json_t *cap_json(const struct arb_cap *c)
{
    if (c->by == NULL)
        return json_null();
    return json_pack("{s:I, s:s, s:s}", "cap_w", (json_int_t)c->cap_w, "request", c->by, "kind",
                     c->grid ? "grid" : "market");
}

int requests_installation_state(struct requests *r, const char *id, int64_t from, int64_t to,
                                json_t **out)
{
    struct inst *in = rq__inst(r, id);
    const struct arb_req *views[256];
    struct arb_slot slots[256];
    *out = NULL;
    if (in == NULL)
        return -ENOENT;
    size_t nv = views_of(in, views, ARRAY_LEN(views));
    int n = arbiter_timeline(&in->facts, views, nv, from, to, slots, ARRAY_LEN(slots));
    json_t *tl = json_array(), *reqs = json_array();
    for (int i = 0; i < (n < 0 ? (int)ARRAY_LEN(slots) : n); i++) {
        json_t *o = json_pack("{s:o, s:o}", "start", time_json(slots[i].start_ms), "end",
                              time_json(slots[i].end_ms));
        if (in->facts.consumes)
            json_object_set_new(o, "consumption", cap_json(&slots[i].dir[ARB_CONSUMPTION]));
        if (in->facts.produces)
            json_object_set_new(o, "production", cap_json(&slots[i].dir[ARB_PRODUCTION]));
        json_array_append_new(tl, o);
    }
    for (size_t i = 0; i < nv; i++) {
        struct rq *q = in->tgts[i]->rq;
        json_array_append_new(
            reqs,
            json_pack("{s:s, s:s, s:s, s:s, s:b}", "id", q->id, "party", q->party, "purpose",
                      request_purpose_name(q->spec.purpose), "state", rq__state_names[q->state],
                      "suspended", q->spec.purpose == ARB_MARKET && in->facts.light == ARB_RED));
    }
    *out =
        json_pack("{s:s, s:s, s:s, s:I, s:s, s:o, s:o, s:b, s:o, s:o}", "installation", in->id,
                  "device", in->device, "segment", in->segment, "floor_w",
                  (json_int_t)in->facts.floor_w, "traffic_light", arb_light_name(in->facts.light),
                  "requests", reqs, "timeline", tl, "timeline_truncated", n < 0, "device_state",
                  rq__dev_json(r, in->dev), "from", time_json(from));
    return 0;
}

/* What one installation can still give, now. */
static void flex_add(struct requests *r, struct inst *in, int64_t now, json_t *acc, bool detail,
                     json_t *items)
{
    const struct arb_req *views[256];
    struct arb_slot slots[64];
    size_t nv = views_of(in, views, ARRAY_LEN(views));
    int dir = in->facts.consumes ? ARB_CONSUMPTION : ARB_PRODUCTION;
    int n = arbiter_timeline(&in->facts, views, nv, now, now + 24 * 3600 * 1000LL, slots,
                             ARRAY_LEN(slots));
    const struct arb_cap *c = &slots[0].dir[dir];
    int64_t allowed = c->by && c->cap_w < in->facts.rated_w ? c->cap_w : in->facts.rated_w;
    int64_t floor = dir == ARB_CONSUMPTION ? in->facts.floor_w : 0;
    int64_t until = 0;
    for (int i = 0; i < (n < 0 ? (int)ARRAY_LEN(slots) : n); i++)
        if (slots[i].dir[dir].by)
            until = slots[i].end_ms;
    int64_t measured = in->dev->ninsts == 1 && in->dev->measured_at ? in->dev->measured_w : 0;
    const char *keys[] = {"rated_w", "floor_w", "allowed_w", "can_reduce_w", "can_raise_w"};
    int64_t vals[] = {in->facts.rated_w, floor, allowed, allowed > floor ? allowed - floor : 0,
                      in->facts.rated_w - allowed};
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        json_object_set_new(
            acc, keys[i],
            json_integer(json_integer_value(json_object_get(acc, keys[i])) + vals[i]));
    json_object_set_new(
        acc, "installations",
        json_integer(json_integer_value(json_object_get(acc, "installations")) + 1));
    if (c->by)
        json_object_set_new(
            acc, "restricted",
            json_integer(json_integer_value(json_object_get(acc, "restricted")) + 1));
    (void)r;
    if (!detail)
        return;
    json_t *o = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "installation", in->id, "direction",
        arb_dir_name((enum arb_dir)dir), "rated_w", (json_int_t)in->facts.rated_w, "floor_w",
        (json_int_t)floor, "allowed_w", (json_int_t)allowed, "can_reduce_w", (json_int_t)vals[3],
        "can_raise_w", (json_int_t)vals[4], "restricted_until",
        until ? time_json(until) : json_null(), "measured_w",
        in->dev->ninsts == 1 && in->dev->measured_at ? json_integer(measured) : json_null());
    json_object_set_new(o, "cap", cap_json(c));
    json_array_append_new(items, o);
}

int requests_flexibility(struct requests *r, const struct requests_who *who, bool segment,
                         const char *id, json_t **out)
{
    int64_t now = time_now_ms();
    json_t *acc = json_object(), *items = json_array();
    *out = NULL;
    if (!segment) {
        struct inst *in = rq__inst(r, id);
        if (in == NULL) {
            json_decref(acc);
            json_decref(items);
            return -ENOENT;
        }
        flex_add(r, in, now, acc, true, items);
        *out = json_incref(json_array_get(items, 0));
        json_decref(acc);
        json_decref(items);
        return 0;
    }
    struct req_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.target = REQ_TARGET_SEGMENT;
    spec.sec14a = -1;
    str_copy(spec.target_id, sizeof spec.target_id, id);
    struct submit s = {.r = r, .who = who, .spec = &spec, .role = role_of(who->role)};
    if (who->admin)
        s.role = ARB_ROLE_UENB; /* sees every installation */
    int saved = r->cfg.max_targets;
    r->cfg.max_targets = 1000000;
    int rc = resolve_segment(&s);
    r->cfg.max_targets = saved;
    if (rc != 0 && s.status == 404) {
        free(s.insts);
        json_decref(acc);
        json_decref(items);
        return -ENOENT;
    }
    for (size_t i = 0; i < s.n; i++)
        flex_add(r, s.insts[i], now, acc, false, NULL);
    free(s.insts);
    json_decref(items);
    json_object_set_new(acc, "segment", json_string(id));
    json_object_set_new(acc, "traffic_light", json_string(arb_light_name(rq__light_of(r, id))));
    json_object_set_new(acc, "at", time_json(now));
    *out = acc;
    return 0;
}

/* --- lights and registry changes ----------------------------------------------------------------
 */

void requests_light_changed(struct requests *r, const char *segment, const char *light,
                            const char *by, const char *reason)
{
    if (rq__segments_load(r) != 0)
        return;
    struct segment *seg = rq__segment(r, segment);
    const char *aud[1] = {seg ? seg->vnb : NULL};
    char subject[128];
    snprintf(subject, sizeof subject, "segment:%s", segment);
    audit_append_to(
        r->audit, "segment.light_changed", subject, by, aud, 1,
        json_pack("{s:s, s:s, s:s?}", "segment", segment, "light", light, "reason", reason));
    for (size_t b = 0; b < r->insts.nb; b++) {
        for (struct strmap_ent *e = r->insts.b[b]; e; e = e->next) {
            struct inst *in = e->val;
            if (!rq__segment_within(r, in->segment, segment))
                continue;
            enum arb_light was = in->facts.light;
            in->facts.light = rq__light_of(r, in->segment);
            if (was == in->facts.light)
                continue;
            rq__dev_dirty(r, in->dev);
            for (size_t k = 0; k < in->ntgts; k++) {
                struct rq *q = in->tgts[k]->rq;
                bool susp = q->spec.purpose == ARB_MARKET && in->facts.light == ARB_RED;
                if (q->spec.purpose != ARB_MARKET || susp == q->suspended)
                    continue;
                q->suspended = susp;
                rq__mark(r, q);
                rq__audit(r, susp ? "request.suspended" : "request.resumed", q,
                          json_pack("{s:s, s:s}", "segment", segment, "light",
                                    arb_light_name(in->facts.light)));
            }
        }
    }
    rq__reconcile_soon(r);
}

void requests_registry_changed(struct requests *r)
{
    /* Facts of installations are read again where requests use them;
     * the rest of the cache is dropped lazily by being refilled. */
    rq__segments_load(r);
    for (size_t b = 0; b < r->insts.nb; b++) {
        for (struct strmap_ent *e = r->insts.b[b]; e; e = e->next) {
            struct inst *in = e->val;
            in->facts.light = rq__light_of(r, in->segment);
            if (in->ntgts)
                rq__dev_dirty(r, in->dev);
        }
    }
    rq__reconcile_soon(r);
}

/* --- start-up -------------------------------------------------------------------------------- */

static int load_targets(struct requests *r, struct rq *q)
{
    json_t *rows = NULL, *t;
    size_t i;
    int rc = store_targets_of(r->store, q->id, &rows);
    if (rc != 0)
        return rc;
    json_decref(q->target_rows);
    q->target_rows = json_array(); /* already stored */
    q->tgts = calloc(json_array_size(rows) + 1, sizeof *q->tgts);
    if (q->tgts == NULL) {
        json_decref(rows);
        return -ENOMEM;
    }
    json_array_foreach(rows, i, t)
    {
        const char *code = json_string_value(json_object_get(t, "code"));
        if (code == NULL || strncmp(code, "rejected", 8) == 0)
            continue;
        struct inst *in = rq__inst(r, json_string_value(json_object_get(t, "installation")));
        if (in == NULL)
            continue;
        struct tgt *g = &q->tgts[q->ntgts];
        g->rq = q;
        g->inst = in;
        if (steps_parse(json_object_get(t, "steps"), &g->steps, &g->nsteps) != 0) {
            json_decref(rows);
            return -ENOMEM;
        }
        q->ntgts++;
        view_of(g);
        add_vnb(q, in->vnb);
        if (!q->ended_ms && list_target(g) != 0) {
            json_decref(rows);
            return -ENOMEM;
        }
    }
    json_decref(rows);
    return 0;
}

static int load_executions(struct requests *r, struct rq *q)
{
    char after[RQ_ID_MAX] = "";
    int more = 1, rc = 0;
    size_t cap = q->ntgts + 1;
    q->exes = calloc(cap, sizeof *q->exes);
    if (q->exes == NULL)
        return -ENOMEM;
    while (more && rc == 0) {
        json_t *rows = NULL, *t;
        size_t i;
        rc = store_executions_of(r->store, q->id, after[0] ? after : NULL, 1000, &rows, &more);
        if (rc != 0)
            break;
        json_array_foreach(rows, i, t)
        {
            const char *dev = json_string_value(json_object_get(t, "device"));
            str_copy(after, sizeof after, dev);
            struct dev *d = rq__dev(r, dev);
            if (d == NULL || q->nexes == cap)
                continue;
            struct exe *e = &q->exes[q->nexes++];
            e->rq = q;
            e->dev = d;
            int st = exe_state_parse(json_string_value(json_object_get(t, "state")));
            e->state = st < 0 ? EX_PENDING : (enum exe_state)st;
            e->late = json_is_true(json_object_get(t, "late"));
            e->attempts = (int)json_integer_value(json_object_get(t, "attempts"));
            const char *err = json_string_value(json_object_get(t, "error"));
            str_copy(e->error, sizeof e->error, err ? err : "");
            const char *key;
            json_t *v;
            json_object_foreach(json_object_get(t, "steps"), key, v)
            {
                int k = exe_state_parse(key);
                if (k >= 0)
                    e->steps_ms[k] = json_integer_value(v);
            }
            if (exe_final(e->state)) {
                q->nfinal++;
                q->nconfirmed += e->state == EX_CONFIRMED;
                q->nfailed += e->state == EX_FAILED;
                q->nskipped += e->state == EX_SKIPPED;
                q->nlate += e->state == EX_CONFIRMED && e->late;
            } else if (q->state != RQ_SCHEDULED) {
                e->due = true;
                rq__exe_wait(e);
            }
            rq__dev_dirty(r, d);
        }
        if (json_array_size(rows) == 0)
            more = 0;
        json_decref(rows);
    }
    return rc;
}

static int load_request(struct requests *r, const json_t *row)
{
    struct req_error err;
    struct rq *q = rq_alloc(r);
    if (q == NULL)
        return -ENOMEM;
    str_copy(q->id, sizeof q->id, json_string_value(json_object_get(row, "id")));
    str_copy(q->party, sizeof q->party, json_string_value(json_object_get(row, "party")));
    str_copy(q->role_name, sizeof q->role_name, json_string_value(json_object_get(row, "role")));
    q->role = role_of(q->role_name);
    q->seq = json_integer_value(json_object_get(row, "seq"));
    int st = rq_state_parse(json_string_value(json_object_get(row, "state")));
    q->state = st < 0 ? RQ_FAILED : (enum rq_state)st;
    q->deadline_ms = json_integer_value(json_object_get(row, "deadline"));
    q->created_ms = json_integer_value(json_object_get(row, "created_at"));
    q->updated_ms = json_integer_value(json_object_get(row, "updated_at"));
    q->ended_ms = json_integer_value(json_object_get(row, "ended_at"));
    const char *sup = json_string_value(json_object_get(row, "superseded_by"));
    str_copy(q->superseded_by, sizeof q->superseded_by, sup ? sup : "");
    json_decref(q->decision);
    q->decision = json_deep_copy(json_object_get(row, "decision"));
    q->suspended = json_is_true(json_object_get(q->decision, "suspended"));
    q->late_reported = q->deadline_ms <= time_now_ms();
    const char *key = json_string_value(json_object_get(row, "idem_key"));
    if (key) {
        char k[512];
        q->idem_key = strdup(key);
        q->body_hash = strdup(json_string_value(json_object_get(row, "body_hash")));
        idem_key(q->party, key, k, sizeof k);
        strmap_put(&r->idem, k, q);
    }
    q->answer = json_deep_copy(json_object_get(row, "answer"));
    forget_written(q);
    int rc = request_parse(json_object_get(row, "spec"), 0, true, &q->spec, &err);
    if (rc == 0) {
        q->spec.act.intervals = q->spec.intervals;
        q->spec_json = json_deep_copy(json_object_get(row, "spec"));
        rc = strmap_put(&r->rqs, q->id, q);
    } else {
        LOG(LOG_ERROR, "stored request unreadable", LOG_S("request", q->id),
            LOG_S("field", err.pointer), LOG_S("error", err.text));
    }
    if (rc == 0)
        rc = load_targets(r, q);
    if (rc == 0)
        rc = load_executions(r, q);
    if (rc != 0) {
        rq_free(r, q);
        return rc == -EINVAL ? 0 : rc;
    }
    rq_arm(r, q);
    return 0;
}

int requests_resume(struct requests *r)
{
    int64_t after = 0;
    int more = 1, rc, n = 0;
    if ((rc = store_request_max_seq(r->store, &after)) != 0)
        return rc;
    r->next_seq = after + 1;
    after = 0;
    while (more) {
        json_t *rows = NULL, *row;
        size_t i;
        struct store_request_query q = {.live = 1, .before_seq = after, .limit = 500};
        if ((rc = store_request_list(r->store, &q, &rows, &more)) != 0)
            return rc;
        json_array_foreach(rows, i, row)
        {
            after = json_integer_value(json_object_get(row, "seq"));
            if ((rc = load_request(r, row)) != 0) {
                json_decref(rows);
                return rc;
            }
            n++;
        }
        if (json_array_size(rows) == 0)
            more = 0;
        json_decref(rows);
    }
    /* Devices: what they confirmed last, then reconcile all of them. */
    for (size_t b = 0; b < r->devs.nb; b++) {
        for (struct strmap_ent *e = r->devs.b[b]; e; e = e->next) {
            struct dev *d = e->val;
            json_t *st = NULL;
            if (store_device_state_get(r->store, d->id, &st) == 0) {
                for (int k = 0; k < ARB_NDIR; k++) {
                    json_t *c =
                        json_object_get(st, k == ARB_CONSUMPTION ? "consumption" : "production");
                    if (!json_is_object(c))
                        continue;
                    d->conf[k].active = json_is_true(json_object_get(c, "active"));
                    d->conf[k].value_w = json_integer_value(json_object_get(c, "value_w"));
                    json_t *u = json_object_get(c, "until");
                    d->conf[k].until_ms = json_is_integer(u) ? json_integer_value(u) : ARB_FOREVER;
                }
                d->conf_known = json_is_true(json_object_get(st, "known"));
                d->conf_failsafe = json_is_true(json_object_get(st, "failsafe"));
                d->conf_at = json_integer_value(json_object_get(st, "updated_at"));
            }
            json_decref(st);
            rq__dev_dirty(r, d);
        }
    }
    if (n)
        LOG(LOG_INFO, "requests resumed", LOG_I("requests", n),
            LOG_I("devices", (long long)r->devs.n));
    rq__reconcile_soon(r);
    return 0;
}

/* --- life cycle ------------------------------------------------------------------------------ */

struct requests *requests_new(struct event_base *base, struct store *store, struct audit *audit,
                              struct committer *committer, struct dispatch *dispatch,
                              const struct requests_config *cfg)
{
    struct requests *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->base = base;
    r->store = store;
    r->audit = audit;
    r->committer = committer;
    r->dispatch = dispatch;
    r->cfg = *cfg;
    r->next_seq = 1;
    struct commit_writer w = {rq_write, rq_done, r};
    if (commit_add(committer, &w) != 0 || rq__reconcile_init(r) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

static void rq_free_cb(void *p)
{
    struct rq *q = p;
    rq_free(q->owner, q);
}

void requests_free(struct requests *r)
{
    if (r == NULL)
        return;
    /* Requests first (they point into installations and devices). */
    while (r->rqs.n) {
        struct rq *q = NULL;
        for (size_t b = 0; b < r->rqs.nb && q == NULL; b++)
            if (r->rqs.b[b])
                q = r->rqs.b[b]->val;
        if (q->fn)
            answer(q, 503);
        rq_free_cb(q);
    }
    strmap_clear(&r->rqs, NULL);
    strmap_clear(&r->idem, NULL);
    rq__reconcile_free(r);
    rq__facts_free(r);
    free(r);
}

void requests_stats(const struct requests *r, struct requests_stats *out)
{
    memset(out, 0, sizeof *out);
    for (size_t b = 0; b < r->rqs.nb; b++) {
        for (struct strmap_ent *e = r->rqs.b[b]; e; e = e->next) {
            const struct rq *q = e->val;
            out->in_force += q->ended_ms == 0 && q->state != RQ_REJECTED;
            out->unfinished += !rq_final(q->state);
        }
    }
    out->devices = (int)r->devs.n;
    for (size_t b = 0; b < r->devs.nb; b++)
        for (struct strmap_ent *e = r->devs.b[b]; e; e = e->next)
            out->devices_busy += ((const struct dev *)e->val)->cmd[0] != '\0';
    out->admitted = r->admitted;
    out->rejected = r->rejected;
    out->executions_confirmed = r->exe_confirmed;
    out->executions_failed = r->exe_failed;
}
