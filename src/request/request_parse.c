/*
 * request_parse.c - request bodies in and out; see request.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "registry/registry.h"
#include "request/request.h"

static const char *const purpose_names[] = {"grid", "market"};
static const char *const action_names[] = {"limit", "dim", "switch", "schedule", "release"};
static const char *const target_names[] = {"installation", "device", "segment"};
static const char *const level_names[] = {"on", "dim", "off"};
static const char *const kind_names[] = {"heat_pump",      "wallbox",          "pv",  "battery",
                                         "storage_heater", "air_conditioning", "chp", "other"};

#define MAX_POWER_W 1000000000LL

const char *request_purpose_name(enum arb_purpose p)
{
    return (size_t)p < ARRAY_LEN(purpose_names) ? purpose_names[p] : "?";
}

const char *request_action_name(enum arb_action a)
{
    return (size_t)a < ARRAY_LEN(action_names) ? action_names[a] : "?";
}

const char *request_target_name(enum req_target_kind k)
{
    return (size_t)k < ARRAY_LEN(target_names) ? target_names[k] : "?";
}

static int fail(struct req_error *err, const char *pointer, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct req_error *err, const char *pointer, const char *fmt, ...)
{
    va_list ap;
    snprintf(err->pointer, sizeof err->pointer, "%s", pointer);
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int name_index(const json_t *v, const char *const *names, size_t n)
{
    const char *s = json_string_value(v);
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

/* Only the members in 'allowed' (NULL-terminated) may appear in 'obj'. */
static int only(const json_t *obj, const char *const *allowed, const char *base,
                struct req_error *err, const char *hint)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            char ptr[160];
            char safe[64];
            snprintf(safe, sizeof safe, "%s", key);
            for (char *p = safe; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f || *p == '/')
                    *p = '?';
            snprintf(ptr, sizeof ptr, "%s/%s", base, safe);
            return fail(err, ptr, "unknown field%s%s", hint ? "; " : "", hint ? hint : "");
        }
    }
    return 0;
}

static int get_time(const json_t *v, const char *ptr, int64_t *out, struct req_error *err)
{
    if (!json_is_string(v) || time_parse_ms(json_string_value(v), out) != 0)
        return fail(err, ptr, "must be an RFC 3339 time such as 2026-11-28T18:00:00Z");
    return 0;
}

static int get_int(const json_t *v, const char *ptr, long long min, long long max, int64_t *out,
                   struct req_error *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return fail(err, ptr, "must be an integer in %lld..%lld", min, max);
    *out = json_integer_value(v);
    return 0;
}

static int get_dir(const json_t *v, const char *ptr, bool *has, enum arb_dir *out,
                   struct req_error *err)
{
    if (v == NULL) {
        *has = false;
        return 0;
    }
    int i = name_index(v, (const char *const[]){"consumption", "production"}, 2);
    if (i < 0)
        return fail(err, ptr, "must be \"consumption\" or \"production\"");
    *has = true;
    *out = (enum arb_dir)i;
    return 0;
}

static int get_text(const json_t *v, const char *ptr, size_t max, char *out, size_t outlen,
                    struct req_error *err)
{
    char msg[128];
    if (v == NULL) {
        out[0] = '\0';
        return 0;
    }
    if (reg_text_check(v, 1, max, msg, sizeof msg) != 0)
        return fail(err, ptr, "%s", msg);
    snprintf(out, outlen, "%s", json_string_value(v));
    return 0;
}

static int parse_target(const json_t *t, struct req_spec *s, struct req_error *err)
{
    static const char *const allowed[] = {"installation", "device", "segment", "filter", NULL};
    int found = 0;
    if (!json_is_object(t))
        return fail(err, "/target",
                    "must be an object naming an installation, a device or a "
                    "segment");
    if (only(t, allowed, "/target", err, NULL) != 0)
        return -EINVAL;
    for (int k = 0; k < 3; k++) {
        const json_t *v = json_object_get(t, target_names[k]);
        char ptr[40];
        if (v == NULL)
            continue;
        snprintf(ptr, sizeof ptr, "/target/%s", target_names[k]);
        if (!json_is_string(v) || !reg_is_generic_id(json_string_value(v)))
            return fail(err, ptr, "must be an id (1-96 of A-Z a-z 0-9 . _ : -)");
        s->target = (enum req_target_kind)k;
        snprintf(s->target_id, sizeof s->target_id, "%s", json_string_value(v));
        found++;
    }
    if (found != 1)
        return fail(err, "/target", "name exactly one of installation, device and segment");
    s->kinds = 0;
    s->sec14a = -1;
    const json_t *f = json_object_get(t, "filter");
    if (f == NULL)
        return 0;
    if (s->target != REQ_TARGET_SEGMENT)
        return fail(err, "/target/filter", "a filter goes with a segment target only");
    static const char *const fallowed[] = {"kind", "sec14a", NULL};
    if (!json_is_object(f))
        return fail(err, "/target/filter", "must be an object");
    if (only(f, fallowed, "/target/filter", err, "filter by kind and sec14a") != 0)
        return -EINVAL;
    const json_t *kind = json_object_get(f, "kind"), *k14 = json_object_get(f, "sec14a");
    if (kind) {
        size_t i;
        const json_t *e;
        if (json_is_string(kind)) {
            int ki = name_index(kind, kind_names, ARRAY_LEN(kind_names));
            if (ki < 0)
                return fail(err, "/target/filter/kind", "is no installation kind");
            s->kinds = 1u << ki;
        } else if (json_is_array(kind) && json_array_size(kind) > 0 &&
                   json_array_size(kind) <= ARRAY_LEN(kind_names)) {
            json_array_foreach(kind, i, e)
            {
                int ki = name_index(e, kind_names, ARRAY_LEN(kind_names));
                if (ki < 0) {
                    char ptr[48];
                    snprintf(ptr, sizeof ptr, "/target/filter/kind/%zu", i);
                    return fail(err, ptr, "is no installation kind");
                }
                s->kinds |= 1u << ki;
            }
        } else {
            return fail(err, "/target/filter/kind", "must be a kind or a list of 1 to %zu kinds",
                        ARRAY_LEN(kind_names));
        }
    }
    if (k14) {
        if (!json_is_boolean(k14))
            return fail(err, "/target/filter/sec14a", "must be true or false");
        s->sec14a = json_is_true(k14);
    }
    return 0;
}

static int parse_interval(const json_t *iv, size_t i, struct arb_interval *out,
                          struct req_error *err)
{
    static const char *const allowed[] = {"start", "end", "value_w", "direction", "level", NULL};
    char base[40], ptr[64];
    snprintf(base, sizeof base, "/intervals/%zu", i);
    if (!json_is_object(iv))
        return fail(err, base, "must be an object");
    if (only(iv, allowed, base, err, NULL) != 0)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    snprintf(ptr, sizeof ptr, "%s/start", base);
    if (get_time(json_object_get(iv, "start"), ptr, &out->start_ms, err) != 0)
        return -EINVAL;
    snprintf(ptr, sizeof ptr, "%s/end", base);
    if (get_time(json_object_get(iv, "end"), ptr, &out->end_ms, err) != 0)
        return -EINVAL;
    if (out->end_ms <= out->start_ms)
        return fail(err, ptr, "must lie after the interval's start");
    const json_t *val = json_object_get(iv, "value_w"), *lvl = json_object_get(iv, "level");
    if ((val == NULL) == (lvl == NULL))
        return fail(err, base, "give either value_w or level");
    if (lvl) {
        int l = name_index(lvl, level_names, ARRAY_LEN(level_names));
        snprintf(ptr, sizeof ptr, "%s/level", base);
        if (l < 0)
            return fail(err, ptr, "must be \"on\", \"dim\" or \"off\"");
        snprintf(ptr, sizeof ptr, "%s/direction", base);
        if (json_object_get(iv, "direction"))
            return fail(err, ptr, "a level holds for every direction; leave direction out");
        out->is_level = true;
        out->level = (enum arb_level)l;
        return 0;
    }
    snprintf(ptr, sizeof ptr, "%s/value_w", base);
    if (get_int(val, ptr, 0, MAX_POWER_W, &out->value_w, err) != 0)
        return -EINVAL;
    snprintf(ptr, sizeof ptr, "%s/direction", base);
    return get_dir(json_object_get(iv, "direction"), ptr, &out->has_dir, &out->dir, err);
}

static int parse_intervals(const json_t *ivs, struct req_spec *s, struct req_error *err)
{
    size_t i;
    const json_t *iv;
    if (!json_is_array(ivs) || json_array_size(ivs) == 0 ||
        json_array_size(ivs) > REQ_MAX_INTERVALS)
        return fail(err, "/intervals", "must be a list of 1 to %d intervals", REQ_MAX_INTERVALS);
    json_array_foreach(ivs, i, iv)
    {
        if (parse_interval(iv, i, &s->intervals[i], err) != 0)
            return -EINVAL;
        if (i > 0 && s->intervals[i].start_ms < s->intervals[i - 1].end_ms) {
            char ptr[48];
            snprintf(ptr, sizeof ptr, "/intervals/%zu/start", i);
            return fail(err, ptr, "intervals must be sorted and must not overlap");
        }
    }
    s->act.nintervals = json_array_size(ivs);
    s->act.intervals = s->intervals;
    if (s->intervals[s->act.nintervals - 1].end_ms - s->intervals[0].start_ms >
        REQ_SCHEDULE_SPAN_MS)
        return fail(err, "/intervals", "a schedule spans at most 7 days");
    return 0;
}

/* A window must not be over, start more than a year ahead or end more than
 * two years ahead (checks against 'now', skipped when restoring). */
static int window_limits(const struct req_spec *s, int64_t now, bool restore, const char *ptr,
                         struct req_error *err)
{
    if (restore)
        return 0;
    if (s->act.end_ms <= now)
        return fail(err, ptr, "the window is already over");
    if (s->act.start_ms > now + REQ_MAX_SPAN_MS)
        return fail(err, s->act.action == ARB_SCHEDULE ? ptr : "/window/start",
                    "starts more than a year from now");
    if (s->act.end_ms != ARB_FOREVER && s->act.end_ms > now + 2 * REQ_MAX_SPAN_MS)
        return fail(err, ptr, "ends more than two years from now; use until_released");
    return 0;
}

/* The window: start (default now), and exactly one of end, duration_s and
 * until_released. Schedules default to their intervals' span. */
static int parse_window(const json_t *w, int64_t now, bool restore, struct req_spec *s,
                        struct req_error *err)
{
    static const char *const allowed[] = {"start", "end", "duration_s", "until_released", NULL};
    bool sched = s->act.action == ARB_SCHEDULE;
    if (w == NULL && sched) {
        s->act.start_ms = s->intervals[0].start_ms;
        s->act.end_ms = s->intervals[s->act.nintervals - 1].end_ms;
        return window_limits(s, now, restore, "/intervals", err);
    }
    if (w == NULL)
        return fail(err, "/window",
                    "give a window with an end, a duration_s or "
                    "\"until_released\": true");
    if (!json_is_object(w))
        return fail(err, "/window", "must be an object");
    if (only(w, allowed, "/window", err, NULL) != 0)
        return -EINVAL;
    const json_t *st = json_object_get(w, "start"), *end = json_object_get(w, "end"),
                 *dur = json_object_get(w, "duration_s"),
                 *ur = json_object_get(w, "until_released");
    s->act.start_ms = now;
    if (st && get_time(st, "/window/start", &s->act.start_ms, err) != 0)
        return -EINVAL;
    if ((end != NULL) + (dur != NULL) + (ur != NULL) != 1)
        return fail(err, "/window",
                    "give exactly one of end, duration_s and "
                    "\"until_released\": true");
    if (ur) {
        if (!json_is_true(ur))
            return fail(err, "/window/until_released",
                        "must be true (or give an end or a duration_s)");
        if (sched)
            return fail(err, "/window/until_released", "a schedule ends with its last interval");
        s->until_released = true;
        s->act.end_ms = ARB_FOREVER;
    } else if (end) {
        if (get_time(end, "/window/end", &s->act.end_ms, err) != 0)
            return -EINVAL;
    } else {
        int64_t d;
        if (get_int(dur, "/window/duration_s", 1, REQ_MAX_SPAN_MS / 1000, &d, err) != 0)
            return -EINVAL;
        s->act.end_ms = s->act.start_ms + d * 1000;
    }
    if (s->act.end_ms <= s->act.start_ms)
        return fail(err, end ? "/window/end" : "/window", "the window must end after it starts");
    if (window_limits(s, now, restore, end ? "/window/end" : "/window", err) != 0)
        return -EINVAL;
    if (sched && (s->intervals[0].start_ms < s->act.start_ms ||
                  s->intervals[s->act.nintervals - 1].end_ms > s->act.end_ms))
        return fail(err, "/intervals", "the intervals must lie within the window");
    return 0;
}

/* Which fields go with which action, besides the common ones. */
static int action_fields(const json_t *body, struct req_spec *s, struct req_error *err)
{
    static const char *const by_action[][4] = {
        [ARB_LIMIT] = {"value_w", "direction", NULL},
        [ARB_DIM] = {NULL},
        [ARB_SWITCH] = {"level", NULL},
        [ARB_SCHEDULE] = {"intervals", NULL},
        [ARB_RELEASE] = {"direction", NULL},
    };
    static const char *const params[] = {"value_w", "direction", "level", "intervals"};
    for (size_t i = 0; i < ARRAY_LEN(params); i++) {
        bool ok = false;
        for (size_t k = 0; by_action[s->act.action][k] && !ok; k++)
            ok = strcmp(by_action[s->act.action][k], params[i]) == 0;
        if (!ok && json_object_get(body, params[i])) {
            char ptr[32];
            snprintf(ptr, sizeof ptr, "/%s", params[i]);
            return fail(err, ptr, "does not go with action \"%s\"",
                        request_action_name(s->act.action));
        }
    }
    switch (s->act.action) {
    case ARB_LIMIT:
        if (json_object_get(body, "value_w") == NULL)
            return fail(err, "/value_w", "a limit needs value_w (W)");
        if (get_int(json_object_get(body, "value_w"), "/value_w", 0, MAX_POWER_W, &s->act.value_w,
                    err) != 0)
            return -EINVAL;
        return get_dir(json_object_get(body, "direction"), "/direction", &s->act.has_dir,
                       &s->act.dir, err);
    case ARB_RELEASE:
        return get_dir(json_object_get(body, "direction"), "/direction", &s->act.has_dir,
                       &s->act.dir, err);
    case ARB_SWITCH: {
        int l = name_index(json_object_get(body, "level"), level_names, ARRAY_LEN(level_names));
        if (l < 0)
            return fail(err, "/level", "a switch needs level \"on\", \"dim\" or \"off\"");
        s->act.level = (enum arb_level)l;
        return 0;
    }
    case ARB_SCHEDULE:
        return parse_intervals(json_object_get(body, "intervals"), s, err);
    default:
        return 0;
    }
}

int request_parse(const json_t *body, int64_t now, bool restore, struct req_spec *out,
                  struct req_error *err)
{
    static const char *const allowed[] = {
        "purpose", "action",   "target",     "value_w", "direction", "level",       "intervals",
        "window",  "deadline", "supersedes", "cascade", "reason",    "external_id", NULL};
    struct req_spec *s = out;
    int i;

    memset(s, 0, sizeof *s);
    memset(err, 0, sizeof *err);
    if (!json_is_object(body))
        return fail(err, "", "the request must be a JSON object");
    if (only(body, allowed, "", err, NULL) != 0)
        return -EINVAL;
    if ((i = name_index(json_object_get(body, "purpose"), purpose_names,
                        ARRAY_LEN(purpose_names))) < 0)
        return fail(err, "/purpose", "must be \"grid\" or \"market\"");
    s->purpose = (enum arb_purpose)i;
    if ((i = name_index(json_object_get(body, "action"), action_names, ARRAY_LEN(action_names))) <
        0)
        return fail(err, "/action", "must be one of limit, dim, switch, schedule, release");
    s->act.action = (enum arb_action)i;
    if (parse_target(json_object_get(body, "target"), s, err) != 0 ||
        action_fields(body, s, err) != 0 ||
        parse_window(json_object_get(body, "window"), now, restore, s, err) != 0)
        return -EINVAL;
    const json_t *v = json_object_get(body, "cascade");
    if (v) {
        if (!json_is_boolean(v))
            return fail(err, "/cascade", "must be true or false");
        if (json_is_true(v) && s->purpose != ARB_GRID)
            return fail(err, "/cascade", "only grid requests come through the cascade");
        s->cascade = json_is_true(v);
    }
    if ((v = json_object_get(body, "deadline")) != NULL) {
        if (get_time(v, "/deadline", &s->deadline_ms, err) != 0)
            return -EINVAL;
        if (!restore && s->deadline_ms <= now)
            return fail(err, "/deadline", "the deadline has passed");
        if (!restore && s->deadline_ms > now + 2 * REQ_MAX_SPAN_MS)
            return fail(err, "/deadline", "lies more than two years ahead");
        if (s->deadline_ms < s->act.start_ms)
            return fail(err, "/deadline", "the deadline lies before the window starts");
    }
    if ((v = json_object_get(body, "supersedes")) != NULL) {
        if (!json_is_string(v) || strlen(json_string_value(v)) >= sizeof s->supersedes ||
            !reg_is_generic_id(json_string_value(v)))
            return fail(err, "/supersedes", "must be the id of a request");
        snprintf(s->supersedes, sizeof s->supersedes, "%s", json_string_value(v));
    }
    if (get_text(json_object_get(body, "reason"), "/reason", REQ_REASON_MAX, s->reason,
                 sizeof s->reason, err) != 0 ||
        get_text(json_object_get(body, "external_id"), "/external_id", REQ_EXTERNAL_MAX,
                 s->external_id, sizeof s->external_id, err) != 0)
        return -EINVAL;
    return 0;
}

/* --- canonical form ------------------------------------------------------------------ */

static json_t *time_json(int64_t ms)
{
    char t[40];
    return json_string(time_format_ms(ms, t, sizeof t));
}

static json_t *target_json(const struct req_spec *s)
{
    json_t *t = json_pack("{s:s}", request_target_name(s->target), s->target_id);
    if (s->target == REQ_TARGET_SEGMENT && (s->kinds || s->sec14a >= 0)) {
        json_t *f = json_object();
        if (s->kinds) {
            json_t *k = json_array();
            for (size_t i = 0; i < ARRAY_LEN(kind_names); i++)
                if (s->kinds & (1u << i))
                    json_array_append_new(k, json_string(kind_names[i]));
            json_object_set_new(f, "kind", k);
        }
        if (s->sec14a >= 0)
            json_object_set_new(f, "sec14a", json_boolean(s->sec14a));
        json_object_set_new(t, "filter", f);
    }
    return t;
}

static json_t *intervals_json(const struct req_spec *s)
{
    json_t *a = json_array();
    for (size_t i = 0; i < s->act.nintervals; i++) {
        const struct arb_interval *iv = &s->intervals[i];
        json_t *o =
            json_pack("{s:o, s:o}", "start", time_json(iv->start_ms), "end", time_json(iv->end_ms));
        if (iv->is_level) {
            json_object_set_new(o, "level", json_string(level_names[iv->level]));
        } else {
            json_object_set_new(o, "value_w", json_integer(iv->value_w));
            if (iv->has_dir)
                json_object_set_new(o, "direction", json_string(arb_dir_name(iv->dir)));
        }
        json_array_append_new(a, o);
    }
    return a;
}

json_t *request_spec_json(const struct req_spec *s)
{
    json_t *o = json_pack("{s:s, s:s, s:o}", "purpose", request_purpose_name(s->purpose), "action",
                          request_action_name(s->act.action), "target", target_json(s));
    if (o == NULL)
        return NULL;
    switch (s->act.action) {
    case ARB_LIMIT:
        json_object_set_new(o, "value_w", json_integer(s->act.value_w));
        /* fall through */
    case ARB_RELEASE:
        if (s->act.has_dir)
            json_object_set_new(o, "direction", json_string(arb_dir_name(s->act.dir)));
        break;
    case ARB_SWITCH:
        json_object_set_new(o, "level", json_string(level_names[s->act.level]));
        break;
    case ARB_SCHEDULE:
        json_object_set_new(o, "intervals", intervals_json(s));
        break;
    default:
        break;
    }
    json_t *w = json_pack("{s:o}", "start", time_json(s->act.start_ms));
    if (s->until_released)
        json_object_set_new(w, "until_released", json_true());
    else
        json_object_set_new(w, "end", time_json(s->act.end_ms));
    json_object_set_new(o, "window", w);
    if (s->deadline_ms)
        json_object_set_new(o, "deadline", time_json(s->deadline_ms));
    if (s->cascade)
        json_object_set_new(o, "cascade", json_true());
    if (s->supersedes[0])
        json_object_set_new(o, "supersedes", json_string(s->supersedes));
    if (s->reason[0])
        json_object_set_new(o, "reason", json_string(s->reason));
    if (s->external_id[0])
        json_object_set_new(o, "external_id", json_string(s->external_id));
    return o;
}
