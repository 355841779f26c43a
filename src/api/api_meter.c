/*
 * api_meter.c - meter data as the API serves it:
 * GET /v1/metering-points/{id}/readings (docs/protocols/meter-data.md).
 *
 * A metering point is visible to whoever may see its installation (the
 * VNB of its segment, the parties assigned to it - supplier, MSB,
 * aggregator - and the admin); one that no installation names, to the VNB
 * of the segment of the gateway that sends it (and the admin). Others get
 * 404, as for an unknown point.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/api_impl.h"
#include "common/util.h"
#include "meter/cosem.h"
#include "registry/registry.h"
#include "store/store.h"

#define READINGS_MAX_SPAN_MS (400LL * 24 * 60 * 60 * 1000)
#define READINGS_LIMIT       100000

static const struct {
    const char *name;
    int seconds;
} resolutions[] = {{"15m", 900}, {"1h", 3600}, {"1d", 86400}};

static int time_param(struct api_call *c, const char *name, int64_t def, int64_t *out)
{
    const char *v = api__query(c, name);
    *out = def;
    if (v && time_parse_ms(v, out) != 0) {
        api__problem(c, 400, "bad-query", name, NULL, "%s must be an RFC 3339 time", name);
        return -1;
    }
    return 0;
}

/* 0 when the caller may see metering point 'id'; else answered. */
static int point_visible(struct api_call *c, const char *id)
{
    char smgw[97], inst[97];
    int rc = reg_is_metering_point(id)
                 ? store_meter_point_owner(c->api->store, id, NULL, smgw, inst)
                 : -ENOENT;
    if (rc == 0 && inst[0]) {
        const struct reg_kind *k = &reg_kinds[REG_INSTALLATION];
        struct store_scope sc = api__scope(c, k);
        json_t *o = NULL;
        rc = store_reg_get(c->api->store, k, inst, &sc, &o);
        json_decref(o);
    } else if (rc == 0) {
        /* No installation: the VNB of the gateway's segment (and the admin). */
        struct store_scope all = {SCOPE_ALL, NULL, NULL};
        const struct reg_kind *k = &reg_kinds[REG_SEGMENT];
        struct store_scope sc = api__scope(c, k);
        json_t *gw = NULL, *seg = NULL;
        rc = store_reg_get(c->api->store, &reg_kinds[REG_SMGW], smgw, &all, &gw);
        const char *segment = json_string_value(json_object_get(gw, "segment"));
        if (rc == 0)
            rc = segment ? store_reg_get(c->api->store, k, segment, &sc, &seg) : -ENOENT;
        json_decref(gw);
        json_decref(seg);
    }
    if (rc == 0)
        return 0;
    if (rc == -ENOENT)
        api__problem(c, 404, "not-found", NULL, NULL, "no metering point with id \"%s\"", id);
    else
        api__problem(c, 503, "store-unavailable", NULL, NULL, "the store does not answer");
    return -1;
}

void api__metering_point_readings(struct api_call *c)
{
    static const char *const allowed[] = {"from", "to", "obis", "resolution", NULL};
    int64_t now = time_now_ms(), from, to;
    const char *obis_in = api__query(c, "obis"), *res = api__query(c, "resolution");
    char obis[24];
    int bucket = 900;

    if (api__check_query(c, allowed, NULL) != 0 || time_param(c, "to", now, &to) != 0 ||
        time_param(c, "from", to - 24 * 60 * 60 * 1000LL, &from) != 0)
        return;
    if (to <= from || to - from > READINGS_MAX_SPAN_MS) {
        api__problem(c, 400, "bad-query", "to", NULL, "to must lie after from, at most 400 days");
        return;
    }
    if (obis_in) {
        uint8_t o[6];
        if (cosem_obis_parse(obis_in, o) != 0) {
            api__problem(c, 400, "bad-query", "obis", NULL,
                         "obis must be an OBIS code such as 1-0:1.8.0");
            return;
        }
        cosem_obis_format(o, obis, sizeof obis);
    }
    if (res) {
        bucket = 0;
        for (size_t i = 0; i < ARRAY_LEN(resolutions); i++)
            if (strcmp(res, resolutions[i].name) == 0)
                bucket = resolutions[i].seconds;
        if (bucket == 0) {
            api__problem(c, 400, "bad-query", "resolution", NULL,
                         "resolution must be 15m, 1h or 1d");
            return;
        }
    }
    if (point_visible(c, c->params[0]) != 0)
        return;
    struct store_reading_query q = {c->params[0], obis_in ? obis : NULL, from, to,
                                    bucket,       READINGS_LIMIT};
    json_t *items = NULL;
    int more = 0;
    if (store_readings_query(c->api->store, &q, &items, &more) != 0) {
        api__problem(c, 503, "store-unavailable", NULL, NULL, "the store does not answer");
        return;
    }
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        char t[40];
        const char *unit = cosem_unit_name((int)json_integer_value(json_object_get(it, "unit")));
        time_format_ms(json_integer_value(json_object_get(it, "time")), t, sizeof t);
        json_object_set_new(it, "time", json_string(t));
        json_object_set_new(it, "unit", unit ? json_string(unit) : json_null());
    }
    char f[40], tt[40];
    const char *rname = "15m";
    for (size_t k = 0; k < ARRAY_LEN(resolutions); k++)
        if (resolutions[k].seconds == bucket)
            rname = resolutions[k].name;
    api__json(c, 200,
              json_pack("{s:s, s:s, s:s, s:s, s:o, s:b}", "metering_point", c->params[0], "from",
                        time_format_ms(from, f, sizeof f), "to", time_format_ms(to, tt, sizeof tt),
                        "resolution", rname, "items", items, "more", more));
}
