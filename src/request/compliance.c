/*
 * compliance.c - do switched devices follow the caps they confirmed? See
 * requests_measured() in requests.h.
 */
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/util.h"
#include "request/requests_impl.h"

#define TOLERANCE_W   100 /* below this much above the cap, a device complies */
#define TOLERANCE_PCT 5

/* The direction and cap the measured power exceeds at 'at', or -1. */
static int excess(const struct dev *d, int64_t at, int64_t watts, int64_t *limit)
{
    for (int dir = 0; dir < ARB_NDIR; dir++) {
        const struct devcap *c = &d->conf[dir];
        if (!c->active || (c->until_ms != ARB_FOREVER && c->until_ms <= at))
            continue;
        int64_t m = dir == ARB_CONSUMPTION ? (watts > 0 ? watts : 0) : (watts < 0 ? -watts : 0);
        int64_t tol = c->value_w * TOLERANCE_PCT / 100;
        if (tol < TOLERANCE_W)
            tol = TOLERANCE_W;
        if (m > c->value_w + tol) {
            *limit = c->value_w;
            return dir;
        }
    }
    return -1;
}

/* One event per installation of the device, for its VNB and the parties
 * assigned to it. */
static void tell(struct requests *r, struct dev *d, const char *kind, json_t *payload)
{
    for (size_t i = 0; i < d->ninsts; i++) {
        struct inst *in = d->insts[i];
        const char *aud[AUDIT_AUDIENCE_MAX];
        size_t n = 0;
        if (in->vnb[0])
            aud[n++] = in->vnb;
        for (size_t k = 0; k < in->nassigned && n < AUDIT_AUDIENCE_MAX; k++)
            aud[n++] = in->assigned[k].party;
        char subject[128];
        snprintf(subject, sizeof subject, "installation:%s", in->id);
        json_t *p = json_deep_copy(payload);
        json_object_set_new(p, "installation", json_string(in->id));
        audit_append_to(r->audit, kind, subject, "clsmd", aud, n, p);
    }
    json_decref(payload);
}

void requests_measured(struct requests *r, const char *device, int64_t at, int64_t watts)
{
    struct dev *d = strmap_get(&r->devs, device);
    char t[40], s[40];
    if (d == NULL || !d->conf_known || d->conf_failsafe || at < d->conf_at || at < d->judged_at)
        return; /* nothing confirmed to judge by, or older than what was judged */
    d->judged_at = at;
    d->judged_w = watts;
    int64_t limit = 0;
    int dir = excess(d, at, watts, &limit);
    if (dir < 0) {
        d->over_since = 0;
        if (d->noncompliant) {
            d->noncompliant = false;
            LOG(LOG_INFO, "device complies again", LOG_S("device", d->id),
                LOG_I("measured_w", watts));
            tell(r, d, "installation.compliant",
                 json_pack("{s:s, s:s, s:s, s:I}", "device", d->id, "since",
                           time_format_ms(d->noncompliant_since, s, sizeof s), "until",
                           time_format_ms(at, t, sizeof t), "measured_w", (json_int_t)watts));
        }
        return;
    }
    if (d->over_since == 0)
        d->over_since = at;
    d->excess_dir = dir;
    d->excess_limit_w = limit;
    if (d->noncompliant || at - d->over_since < r->cfg.compliance_grace_s * 1000LL)
        return;
    d->noncompliant = true;
    d->noncompliant_since = d->over_since;
    LOG(LOG_WARN, "device does not follow its cap", LOG_S("device", d->id),
        LOG_I("measured_w", watts), LOG_I("limit_w", limit),
        LOG_S("direction", arb_dir_name((enum arb_dir)dir)));
    tell(r, d, "installation.noncompliant",
         json_pack("{s:s, s:s, s:I, s:I, s:s, s:s}", "device", d->id, "direction",
                   arb_dir_name((enum arb_dir)dir), "measured_w",
                   (json_int_t)(watts < 0 ? -watts : watts), "limit_w", (json_int_t)limit, "since",
                   time_format_ms(d->over_since, s, sizeof s), "at",
                   time_format_ms(at, t, sizeof t)));
}

void requests_measured_installation(struct requests *r, const char *id, int64_t at, int64_t watts)
{
    struct inst *in = strmap_get(&r->insts, id);
    if (in && in->dev)
        requests_measured(r, in->dev->id, at, watts);
}

json_t *rq__compliance_json(const struct dev *d)
{
    char t[40], s[40];
    if (d->judged_at == 0)
        return json_pack("{s:s}", "state", "unknown");
    json_t *o = json_pack(
        "{s:s, s:s, s:I}", "state", d->noncompliant ? "noncompliant" : "compliant", "judged_at",
        time_format_ms(d->judged_at, t, sizeof t), "measured_w", (json_int_t)d->judged_w);
    if (d->noncompliant) {
        json_object_set_new(o, "since",
                            json_string(time_format_ms(d->noncompliant_since, s, sizeof s)));
        json_object_set_new(o, "direction", json_string(arb_dir_name((enum arb_dir)d->excess_dir)));
        json_object_set_new(o, "limit_w", json_integer(d->excess_limit_w));
    }
    return o;
}
