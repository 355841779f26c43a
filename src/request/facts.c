/*
 * facts.c - the registry as the requests runtime needs it: segments with
 * their lights, installations with their arbiter facts (floors computed
 * over energy-manager groups), devices with every installation behind
 * them; cached until the registry changes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "request/requests_impl.h"
#include "store/store.h"

/* --- segments ------------------------------------------------------------------------- */

static const struct store_scope all = {SCOPE_ALL, NULL, NULL};

static enum arb_light light_parse(const char *s)
{
    if (s && strcmp(s, "red") == 0)
        return ARB_RED;
    if (s && strcmp(s, "yellow") == 0)
        return ARB_YELLOW;
    return ARB_GREEN;
}

/* Page through a list query, calling 'fn' for each item. */
static int each(struct requests *r, struct store_query *q,
                int (*fn)(struct requests *, json_t *, void *), void *arg)
{
    char after[RQ_ID_MAX] = "";
    int more = 1, rc = 0;
    q->limit = 1000;
    while (more && rc == 0) {
        json_t *items = NULL, *it;
        size_t i;
        q->after = after[0] ? after : NULL;
        rc = store_reg_list(r->store, q, &items, &more);
        if (rc != 0)
            break;
        json_array_foreach(items, i, it)
        {
            if (rc == 0)
                rc = fn(r, it, arg);
            str_copy(after, sizeof after, json_string_value(json_object_get(it, "id")));
        }
        if (json_array_size(items) == 0)
            more = 0;
        json_decref(items);
    }
    return rc;
}

static int add_segment(struct requests *r, json_t *it, void *arg)
{
    (void)arg;
    const char *id = json_string_value(json_object_get(it, "id"));
    struct segment *s = strmap_get(&r->segs, id);
    if (s == NULL) {
        if ((s = calloc(1, sizeof *s)) == NULL)
            return -ENOMEM;
        str_copy(s->id, sizeof s->id, id);
        if (strmap_put(&r->segs, s->id, s) != 0) {
            free(s);
            return -ENOMEM;
        }
    }
    const char *parent = json_string_value(json_object_get(it, "parent"));
    str_copy(s->parent, sizeof s->parent, parent ? parent : "");
    str_copy(s->vnb, sizeof s->vnb, json_string_value(json_object_get(it, "vnb")));
    s->light = light_parse(json_string_value(json_object_get(it, "traffic_light")));
    return 0;
}

int rq__segments_load(struct requests *r)
{
    struct store_query q = {.kind = &reg_kinds[REG_SEGMENT], .scope = all};
    int rc = each(r, &q, add_segment, NULL);
    r->segs_loaded = rc == 0;
    return rc;
}

struct segment *rq__segment(struct requests *r, const char *id)
{
    if (!r->segs_loaded && rq__segments_load(r) != 0)
        return NULL;
    return strmap_get(&r->segs, id);
}

enum arb_light rq__light_of(struct requests *r, const char *segment)
{
    enum arb_light worst = ARB_GREEN;
    struct segment *s = rq__segment(r, segment);
    for (int depth = 0; s && depth < 64; depth++) {
        if (s->light > worst)
            worst = s->light;
        s = s->parent[0] ? strmap_get(&r->segs, s->parent) : NULL;
    }
    return worst;
}

bool rq__segment_within(struct requests *r, const char *segment, const char *ancestor)
{
    struct segment *s = rq__segment(r, segment);
    for (int depth = 0; s && depth < 64; depth++) {
        if (strcmp(s->id, ancestor) == 0)
            return true;
        s = s->parent[0] ? strmap_get(&r->segs, s->parent) : NULL;
    }
    return false;
}

/* --- installations ------------------------------------------------------------------- */

static int fill_facts(struct requests *r, struct inst *in, const json_t *o)
{
    const char *dir = json_string_value(json_object_get(o, "direction"));
    const char *em = json_string_value(json_object_get(o, "energy_manager"));
    const char *kind = json_string_value(json_object_get(o, "kind"));

    str_copy(in->device, sizeof in->device, json_string_value(json_object_get(o, "device")));
    str_copy(in->segment, sizeof in->segment, json_string_value(json_object_get(o, "segment")));
    str_copy(in->em, sizeof in->em, em ? em : "");
    memset(&in->facts, 0, sizeof in->facts);
    in->facts.id = in->id;
    if (kind == NULL || arb_kind_parse(kind, &in->facts.kind) != 0)
        in->facts.kind = ARB_OTHER_KIND;
    in->facts.consumes = dir && strcmp(dir, "production") != 0;
    in->facts.produces = dir && strcmp(dir, "consumption") != 0;
    in->facts.rated_w = json_integer_value(json_object_get(o, "rated_power_w"));
    in->facts.sec14a = json_is_true(json_object_get(o, "sec14a"));
    struct segment *s = rq__segment(r, in->segment);
    str_copy(in->vnb, sizeof in->vnb, s ? s->vnb : "");
    in->facts.vnb = in->vnb;
    in->facts.light = rq__light_of(r, in->segment);
    in->facts.floor_w = arbiter_floor_single(in->facts.kind, in->facts.consumes, in->facts.rated_w,
                                             in->facts.sec14a);
    return 0;
}

#define EM_MAX 64 /* installations behind one energy manager that the floor counts */

struct em_group {
    struct inst members[EM_MAX];
    size_t n;
};

static int add_member(struct requests *r, json_t *it, void *arg)
{
    struct em_group *g = arg;
    if (g->n == EM_MAX)
        return 0;
    struct inst *m = &g->members[g->n++];
    memset(m, 0, sizeof *m);
    str_copy(m->id, sizeof m->id, json_string_value(json_object_get(it, "id")));
    return fill_facts(r, m, it);
}

/* The floor of 'in' as its energy manager's group shares it. */
static int group_floor(struct requests *r, struct inst *in)
{
    if (in->em[0] == '\0')
        return 0;
    struct em_group *g = calloc(1, sizeof *g);
    json_t *v = json_string(in->em);
    struct store_query q = {.kind = &reg_kinds[REG_INSTALLATION], .scope = all, .exact = 1};
    int rc = -ENOMEM;
    if (g && v) {
        q.filters[0].field = reg_field(q.kind, "energy_manager");
        q.filters[0].value = v;
        q.nfilters = 1;
        rc = each(r, &q, add_member, g);
    }
    if (rc == 0 && g->n > 0) {
        struct arb_inst *ptrs[EM_MAX];
        for (size_t i = 0; i < g->n; i++)
            ptrs[i] = &g->members[i].facts;
        arbiter_floors(ptrs, g->n);
        for (size_t i = 0; i < g->n; i++)
            if (strcmp(g->members[i].id, in->id) == 0)
                in->facts.floor_w = g->members[i].facts.floor_w;
    }
    json_decref(v);
    free(g);
    return rc;
}

static int add_assigned(struct requests *r, json_t *it, void *arg)
{
    struct inst *in = arg;
    (void)r;
    const char *party = json_string_value(json_object_get(it, "party"));
    void *p = realloc(in->assigned, (in->nassigned + 1) * sizeof *in->assigned);
    if (p == NULL)
        return -ENOMEM;
    in->assigned = p;
    struct rq_assign *a = &in->assigned[in->nassigned++];
    str_copy(a->party, sizeof a->party, party ? party : "");
    a->control = false;
    size_t i;
    json_t *right;
    json_array_foreach(json_object_get(it, "rights"), i, right)
    {
        if (json_is_string(right) && strcmp(json_string_value(right), "control") == 0)
            a->control = true;
    }
    return 0;
}

static void inst_free(void *p)
{
    struct inst *in = p;
    free(in->tgts);
    free(in->assigned);
    free(in);
}

struct inst *rq__inst(struct requests *r, const char *id)
{
    struct inst *in = strmap_get(&r->insts, id);
    json_t *o = NULL, *v = NULL;
    if (in)
        return in;
    if (!reg_id_valid(&reg_kinds[REG_INSTALLATION], id) ||
        store_reg_get(r->store, &reg_kinds[REG_INSTALLATION], id, &all, &o) != 0)
        return NULL;
    in = calloc(1, sizeof *in);
    if (in == NULL) {
        json_decref(o);
        return NULL;
    }
    str_copy(in->id, sizeof in->id, id);
    fill_facts(r, in, o);
    json_decref(o);
    struct store_query q = {.kind = &reg_kinds[REG_ASSIGNMENT], .scope = all, .exact = 1};
    q.filters[0].field = reg_field(q.kind, "installation");
    q.filters[0].value = v = json_string(id);
    q.nfilters = 1;
    if (v == NULL || group_floor(r, in) != 0 || each(r, &q, add_assigned, in) != 0 ||
        strmap_put(&r->insts, in->id, in) != 0) {
        json_decref(v);
        inst_free(in);
        return NULL;
    }
    json_decref(v);
    in->dev = rq__dev(r, in->device);
    if (in->dev == NULL) {
        strmap_del(&r->insts, in->id);
        inst_free(in);
        return NULL;
    }
    return in;
}

/* --- devices ------------------------------------------------------------------------------ */

static int add_dev_inst(struct requests *r, json_t *it, void *arg)
{
    struct dev *d = arg;
    const char *id = json_string_value(json_object_get(it, "id"));
    struct inst *in = strmap_get(&r->insts, id);
    if (in == NULL) {
        /* Loaded here rather than through rq__inst(), which would come back
         * for this device. */
        json_t *v = NULL;
        if ((in = calloc(1, sizeof *in)) == NULL)
            return -ENOMEM;
        str_copy(in->id, sizeof in->id, id);
        fill_facts(r, in, it);
        struct store_query q = {.kind = &reg_kinds[REG_ASSIGNMENT], .scope = all, .exact = 1};
        q.filters[0].field = reg_field(q.kind, "installation");
        q.filters[0].value = v = json_string(id);
        q.nfilters = 1;
        int rc = v ? group_floor(r, in) : -ENOMEM;
        if (rc == 0)
            rc = each(r, &q, add_assigned, in);
        json_decref(v);
        if (rc != 0 || strmap_put(&r->insts, in->id, in) != 0) {
            inst_free(in);
            return rc ? rc : -ENOMEM;
        }
    }
    in->dev = d;
    void *p = realloc(d->insts, (d->ninsts + 1) * sizeof *d->insts);
    if (p == NULL)
        return -ENOMEM;
    d->insts = p;
    d->insts[d->ninsts++] = in;
    if (in->facts.consumes)
        d->has_dir[ARB_CONSUMPTION] = true;
    if (in->facts.produces)
        d->has_dir[ARB_PRODUCTION] = true;
    return 0;
}

static void dev_free(void *p)
{
    struct dev *d = p;
    if (d->timer)
        event_free(d->timer);
    free(d->insts);
    free(d);
}

struct dev *rq__dev(struct requests *r, const char *id)
{
    struct dev *d = strmap_get(&r->devs, id);
    json_t *v;
    if (d)
        return d;
    if ((d = calloc(1, sizeof *d)) == NULL)
        return NULL;
    str_copy(d->id, sizeof d->id, id);
    d->owner = r;
    for (int k = 0; k < ARB_NDIR; k++)
        d->want[k].until_ms = d->conf[k].until_ms = ARB_FOREVER;
    if (strmap_put(&r->devs, d->id, d) != 0) {
        free(d);
        return NULL;
    }
    struct store_query q = {.kind = &reg_kinds[REG_INSTALLATION], .scope = all, .exact = 1};
    q.filters[0].field = reg_field(q.kind, "device");
    q.filters[0].value = v = json_string(id);
    q.nfilters = 1;
    int rc = v ? each(r, &q, add_dev_inst, d) : -ENOMEM;
    json_decref(v);
    if (rc != 0 || d->ninsts == 0) {
        LOG(LOG_WARN, "device facts unavailable", LOG_S("device", id),
            LOG_S("error", rc ? store_errmsg(r->store) : "no installation behind it"));
        strmap_del(&r->devs, d->id);
        dev_free(d);
        return NULL;
    }
    return d;
}

void rq__facts_free(struct requests *r)
{
    strmap_clear(&r->insts, inst_free);
    strmap_clear(&r->devs, dev_free);
    strmap_clear(&r->segs, free);
    r->segs_loaded = false;
}
