/*
 * sensors.c - channels kept to sensors, their readings and alarms; see
 * sensors.h.
 */
#include "meter/sensors.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/strmap.h"
#include "common/util.h"
#include "dispatch/dispatch.h"
#include "registry/registry.h"
#include "store/store.h"

#define FILL_HYSTERESIS_PCT 5

enum alarm { A_SMOKE, A_DOOR, A_FILL, A_N };
static const char *const alarm_names[A_N] = {"smoke", "door_open", "fill_level"};

struct sensor {
    char id[97];
    char smgw[16];
    struct lpc_telemetry last; /* the latest readings (LPC_NONE: never reported) */
    int64_t seen_ms;
    int64_t door_open_since; /* 0: closed (or unknown) */
    bool alarm[A_N];
    int64_t alarm_since[A_N];
};

struct sensors {
    struct event_base *base;
    struct store *store;
    struct audit *audit;
    struct dispatch *dispatch;
    struct sensors_config cfg;
    struct strmap by_id; /* struct sensor by device id */
    struct event *rescan;
};

static struct sensor *find(struct sensors *s, const char *id)
{
    return strmap_get(&s->by_id, id);
}

/* A device of kind "sensor" in the registry, in memory (and its channel
 * kept), or NULL when the registry has no such sensor. */
static struct sensor *sensor_of(struct sensors *s, const char *id)
{
    struct sensor *x = find(s, id);
    if (x)
        return x;
    struct store_scope all = {SCOPE_ALL, NULL, NULL};
    json_t *dev = NULL;
    if (store_reg_get(s->store, &reg_kinds[REG_DEVICE], id, &all, &dev) != 0)
        return NULL;
    const char *kind = json_string_value(json_object_get(dev, "kind"));
    const char *smgw = json_string_value(json_object_get(dev, "smgw"));
    if (kind && smgw && strcmp(kind, "sensor") == 0 && (x = calloc(1, sizeof *x)) != NULL) {
        str_copy(x->id, sizeof x->id, id);
        str_copy(x->smgw, sizeof x->smgw, smgw);
        x->last =
            (struct lpc_telemetry){0, LPC_NONE, LPC_NONE, LPC_NONE, LPC_NONE, LPC_NONE, LPC_NONE};
        if (strmap_put(&s->by_id, id, x) != 0) {
            free(x);
            json_decref(dev);
            return NULL;
        }
        if (dispatch_keep_channel(s->dispatch, id) != 0)
            LOG(LOG_WARN, "cannot keep a channel to a sensor", LOG_S("device", id));
    }
    json_decref(dev);
    return x;
}

/* Every sensor of the registry gets its kept channel. */
static void scan(struct sensors *s)
{
    struct store_query q = {0};
    json_t *kind = json_string("sensor"), *items = NULL;
    char after[97] = "";
    int more = 1;
    q.kind = &reg_kinds[REG_DEVICE];
    q.scope.kind = SCOPE_ALL;
    q.filters[0].field = reg_field(q.kind, "kind");
    q.filters[0].value = kind;
    q.nfilters = 1;
    q.limit = 1000;
    while (more && q.filters[0].field) {
        q.after = after[0] ? after : NULL;
        if (store_reg_list(s->store, &q, &items, &more) != 0)
            break;
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            const char *id = json_string_value(json_object_get(it, "id"));
            if (id) {
                sensor_of(s, id);
                str_copy(after, sizeof after, id);
            }
        }
        json_decref(items);
        items = NULL;
    }
    json_decref(kind);
}

static void rescan_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sensors *s = arg;
    (void)fd;
    (void)what;
    scan(s);
}

/* --- alarms ------------------------------------------------------------------------------- */

static void tell(struct sensors *s, struct sensor *x, enum alarm a, bool on, int64_t at,
                 int64_t value)
{
    char t[40], since[40], subject[128];
    json_t *parties = NULL;
    const char *aud[AUDIT_AUDIENCE_MAX];
    size_t n = 0, k;
    json_t *v;
    if (store_gateway_parties(s->store, x->smgw, &parties) == 0) {
        json_array_foreach(parties, k, v)
        {
            if (n < AUDIT_AUDIENCE_MAX)
                aud[n++] = json_string_value(v);
        }
    }
    snprintf(subject, sizeof subject, "device:%s", x->id);
    json_t *p =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "device", x->id, "smgw", x->smgw, "alarm",
                  alarm_names[a], "since", time_format_ms(x->alarm_since[a], since, sizeof since),
                  "at", time_format_ms(at, t, sizeof t));
    if (value != LPC_NONE)
        json_object_set_new(p, "value", json_integer(value));
    LOG(on ? LOG_WARN : LOG_INFO, on ? "sensor alarm" : "sensor alarm cleared",
        LOG_S("device", x->id), LOG_S("alarm", alarm_names[a]));
    audit_append_to(s->audit, on ? "sensor.alarm" : "sensor.cleared", subject, "clsmd", aud, n, p);
    json_decref(parties);
}

static void set_alarm(struct sensors *s, struct sensor *x, enum alarm a, bool on, int64_t since,
                      int64_t at, int64_t value)
{
    if (x->alarm[a] == on)
        return;
    x->alarm[a] = on;
    if (on)
        x->alarm_since[a] = since;
    tell(s, x, a, on, at, value);
}

void sensors_telemetry(void *arg, const char *device, const struct lpc_telemetry *t)
{
    struct sensors *s = arg;
    struct sensor *x = find(s, device); /* sensors come from the scans */
    if (x == NULL || t->time_ms < x->seen_ms)
        return; /* not a sensor, or older than what it said before */
    x->seen_ms = t->time_ms;
    const int64_t *now_v[] = {&t->door_open, &t->smoke, &t->fill_level_pct, &t->temperature_dc,
                              &t->humidity_pct};
    int64_t *last_v[] = {&x->last.door_open, &x->last.smoke, &x->last.fill_level_pct,
                         &x->last.temperature_dc, &x->last.humidity_pct};
    for (size_t i = 0; i < ARRAY_LEN(now_v); i++)
        if (*now_v[i] != LPC_NONE)
            *last_v[i] = *now_v[i];
    x->last.time_ms = t->time_ms;

    if (t->smoke != LPC_NONE)
        set_alarm(s, x, A_SMOKE, t->smoke == 1, t->time_ms, t->time_ms, LPC_NONE);
    if (t->door_open == 1) {
        if (x->door_open_since == 0)
            x->door_open_since = t->time_ms;
        if (t->time_ms - x->door_open_since >= s->cfg.door_open_alarm_s * 1000LL)
            set_alarm(s, x, A_DOOR, true, x->door_open_since, t->time_ms, LPC_NONE);
    } else if (t->door_open == 0) {
        x->door_open_since = 0;
        set_alarm(s, x, A_DOOR, false, 0, t->time_ms, LPC_NONE);
    }
    if (t->fill_level_pct != LPC_NONE) {
        if (t->fill_level_pct >= s->cfg.fill_level_alarm_pct)
            set_alarm(s, x, A_FILL, true, t->time_ms, t->time_ms, t->fill_level_pct);
        else if (t->fill_level_pct < s->cfg.fill_level_alarm_pct - FILL_HYSTERESIS_PCT)
            set_alarm(s, x, A_FILL, false, 0, t->time_ms, t->fill_level_pct);
    }
}

/* --- life cycle ---------------------------------------------------------------------------- */

struct sensors *sensors_new(struct event_base *base, struct store *store, struct audit *audit,
                            struct dispatch *dispatch, const struct sensors_config *cfg)
{
    struct sensors *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->base = base;
    s->store = store;
    s->audit = audit;
    s->dispatch = dispatch;
    s->cfg = *cfg;
    s->rescan = event_new(base, -1, EV_PERSIST, rescan_cb, s);
    if (s->rescan == NULL) {
        free(s);
        return NULL;
    }
    struct timeval tv = {cfg->rescan_s > 0 ? cfg->rescan_s : 60, 0};
    event_add(s->rescan, &tv);
    dispatch_set_sensor_listener(dispatch, sensors_telemetry, s);
    scan(s);
    return s;
}

void sensors_free(struct sensors *s)
{
    if (s == NULL)
        return;
    dispatch_set_sensor_listener(s->dispatch, NULL, NULL);
    event_free(s->rescan);
    strmap_clear(&s->by_id, free);
    free(s);
}
