/*
 * lpc_msg.c - the lpc-mqtt messages; see lpc_msg.h and
 * docs/protocols/lpc-mqtt.md. Every message is described once by a table of
 * fields that drives both the checks of the decoders and the output of the
 * encoders; cross-field rules sit in one function per message.
 */
#include "driver/lpc_msg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

const struct jsonx_limits lpc_json_limits = {4, 256, 1024};

_Static_assert(sizeof(enum lpc_level) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum lpc_direction) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum lpc_mode) == sizeof(int), "enums are stored as int");

/* --- names ---------------------------------------------------------------- */

static const char *const dir_names[] = {"consumption", "production", NULL};
static const char *const level_names[] = {"on", "dim", "off", NULL};
static const char *const mode_names[] = {"normal", "failsafe", NULL};
static const char *const topic_names[] = {"control", "ack", "state", "telemetry", NULL};
static const char *const type_names[] = {"limit",    "relay", "switch",    "schedule",
                                         "failsafe", "read",  "heartbeat", NULL};
static const char *const relay_names[] = {"open", "closed", NULL};

static size_t names_count(const char *const *names)
{
    size_t n = 0;
    while (names[n] != NULL)
        n++;
    return n;
}

static const char *name_of(const char *const *names, int i)
{
    return i >= 0 && (size_t)i < names_count(names) ? names[i] : "?";
}

const char *lpc_direction_name(enum lpc_direction d)
{
    return name_of(dir_names, (int)d);
}

const char *lpc_level_name(enum lpc_level l)
{
    return name_of(level_names, (int)l);
}

const char *lpc_mode_name(enum lpc_mode m)
{
    return name_of(mode_names, (int)m);
}

const char *lpc_topic_name(enum lpc_topic t)
{
    return name_of(topic_names, (int)t);
}

const char *lpc_ctl_type_name(enum lpc_ctl_type t)
{
    return name_of(type_names, (int)t);
}

enum lpc_level lpc_level_from_relays(bool relay0_closed, bool relay1_closed)
{
    if (relay1_closed)
        return LPC_LEVEL_OFF;
    return relay0_closed ? LPC_LEVEL_DIM : LPC_LEVEL_ON;
}

void lpc_relays_from_level(enum lpc_level l, bool closed[2])
{
    closed[0] = l == LPC_LEVEL_DIM;
    closed[1] = l == LPC_LEVEL_OFF;
}

static int is_id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

static int id_chars_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_id_char((unsigned char)s[i]))
            return 0;
    return 1;
}

int lpc_cmd_id_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= LPC_CMD_MAX && id_chars_valid(s, n);
}

static int device_id_valid_n(const char *s, size_t n)
{
    unsigned char c0 = n > 0 ? (unsigned char)s[0] : 0;
    int alnum0 = (c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z') || (c0 >= '0' && c0 <= '9');
    return n >= 1 && n <= LPC_DEVICE_ID_MAX && alnum0 && id_chars_valid(s, n);
}

int lpc_device_id_valid(const char *s)
{
    return device_id_valid_n(s, strlen(s));
}

/* --- errors --------------------------------------------------------------- */

/* Replace every byte outside printable ASCII with '?', so that an error
 * quoting outside text can always be shown, logged and sent in a nack. */
static void printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

/* 'path' + "/" + 'key' as a JSON pointer (RFC 6901 escapes), cut to fit. */
static void path_join(char *out, size_t outlen, const char *path, const char *key)
{
    size_t o = 0;

    for (; *path && o + 1 < outlen; path++)
        out[o++] = *path;
    if (key != NULL && o + 1 < outlen)
        out[o++] = '/';
    for (; key != NULL && *key && o + 1 < outlen; key++) {
        if ((*key == '~' || *key == '/') && o + 2 < outlen) {
            out[o++] = '~';
            out[o++] = *key == '~' ? '0' : '1';
        } else if (*key != '~' && *key != '/') {
            out[o++] = *key;
        } else {
            break;
        }
    }
    out[o] = '\0';
    printable(out);
}

__attribute__((format(printf, 5, 6))) static int
fail(struct lpc_error *err, int rc, const char *path, const char *key, const char *fmt, ...)
{
    va_list ap;

    path_join(err->field, sizeof err->field, path, key);
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof err->reason, fmt, ap);
    va_end(ap);
    printable(err->reason);
    return rc;
}

/* --- the field engine ----------------------------------------------------- */

enum ftype {
    F_SKIP,   /* a known key checked by other code */
    F_INT,    /* int64_t in min..max */
    F_BOOL,   /* bool */
    F_FLAG,   /* JSON true/false stored as int64_t 1/0 (LPC_NONE: absent) */
    F_ENUM,   /* string of 'values', stored as int index */
    F_TIME,   /* RFC 3339 string, stored as int64_t ms */
    F_CMD,    /* command id, stored in char[LPC_CMD_MAX + 1] */
    F_TEXT,   /* min..max bytes without control characters, in char[max + 1] */
    F_OBJECT, /* nested object described by 'sub' */
    F_CUSTOM, /* checked and built by 'check' and 'build' */
};

#define FL_REQ  0x1u /* must be present */
#define FL_NULL 0x2u /* may be JSON null: LPC_NONE for numbers and times, "" for ids */
#define FL_OMIT 0x4u /* optional: LPC_NONE when absent, and then not written */

struct field {
    const char *name;
    enum ftype type;
    unsigned flags;
    long long min, max;
    const char *const *values;
    const struct field *sub;
    size_t nsub;
    int (*check)(json_t *v, void *p, const char *path, struct lpc_error *err);
    json_t *(*build)(const void *p);
    size_t off; /* of the value inside the struct being filled */
};

/* Table rows. */
/* clang-format off */
#define FIELD(n, t, fl, o)               {.name = n, .type = t, .flags = fl, .off = o}
#define FIELD_INT(n, fl, lo, hi, o)      {.name = n, .type = F_INT, .flags = fl, \
                                          .min = lo, .max = hi, .off = o}
#define FIELD_ENUM(n, fl, vals, o)       {.name = n, .type = F_ENUM, .flags = fl, \
                                          .values = vals, .off = o}
#define FIELD_TEXT(n, fl, lo, hi, o)     {.name = n, .type = F_TEXT, .flags = fl, \
                                          .min = lo, .max = hi, .off = o}
#define FIELD_OBJECT(n, fl, tab, o)      {.name = n, .type = F_OBJECT, .flags = fl, \
                                          .sub = tab, .nsub = ARRAY_LEN(tab), .off = o}
#define FIELD_CUSTOM(n, fl, chk, bld, o) {.name = n, .type = F_CUSTOM, .flags = fl, \
                                          .check = chk, .build = bld, .off = o}
/* clang-format on */

static const struct field *find_field(const struct field *f, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(f[i].name, key) == 0)
            return &f[i];
    return NULL;
}

static void set_none(const struct field *f, char *p);

static int check_fields(json_t *obj, const struct field *f, size_t n, void *base, const char *path,
                        struct lpc_error *err);

static int enum_fail(struct lpc_error *err, const char *path, const struct field *f)
{
    char list[96] = "";
    size_t o = 0;

    for (size_t i = 0; f->values[i] != NULL && o < sizeof list; i++) {
        int w = snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", f->values[i]);
        o += w > 0 ? (size_t)w : 0;
    }
    return fail(err, -EINVAL, path, f->name, "must be one of %s", list);
}

static int enum_index(const json_t *v, const char *const *values)
{
    if (!json_is_string(v))
        return -1;
    for (int i = 0; values[i] != NULL; i++)
        if (strcmp(values[i], json_string_value(v)) == 0)
            return i;
    return -1;
}

static int has_control_chars(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    return 0;
}

static int check_time(json_t *v, int64_t *out)
{
    return json_is_string(v) && time_parse_ms(json_string_value(v), out) == 0 && *out >= 0 &&
           *out <= LPC_TIME_MAX;
}

static int check_scalar(json_t *v, const struct field *f, char *p, const char *path,
                        struct lpc_error *err)
{
    const char *orn = f->flags & FL_NULL ? " or null" : "";

    switch (f->type) {
    case F_INT:
        if (!json_is_integer(v) || json_integer_value(v) < f->min || json_integer_value(v) > f->max)
            return fail(err, -EINVAL, path, f->name, "must be an integer in %lld..%lld%s", f->min,
                        f->max, orn);
        *(int64_t *)(void *)p = json_integer_value(v);
        return 0;
    case F_BOOL:
        if (!json_is_boolean(v))
            return fail(err, -EINVAL, path, f->name, "must be true or false");
        *(bool *)p = json_is_true(v);
        return 0;
    case F_FLAG:
        if (!json_is_boolean(v))
            return fail(err, -EINVAL, path, f->name, "must be true or false");
        *(int64_t *)(void *)p = json_is_true(v) ? 1 : 0;
        return 0;
    case F_ENUM: {
        int i = enum_index(v, f->values);
        if (i < 0)
            return enum_fail(err, path, f);
        *(int *)(void *)p = i;
        return 0;
    }
    case F_TIME:
        if (!check_time(v, (int64_t *)(void *)p))
            return fail(err, -EINVAL, path, f->name,
                        "must be an RFC 3339 time between 1970 and 9999%s", orn);
        return 0;
    case F_CMD:
        if (!json_is_string(v) || !lpc_cmd_id_valid(json_string_value(v)))
            return fail(err, -EINVAL, path, f->name,
                        "must be a command id (1-%d of A-Z a-z 0-9 . _ : -)%s", LPC_CMD_MAX, orn);
        str_copy(p, LPC_CMD_MAX + 1, json_string_value(v));
        return 0;
    case F_TEXT:
        if (!json_is_string(v) || json_string_length(v) < (size_t)f->min ||
            json_string_length(v) > (size_t)f->max ||
            has_control_chars(json_string_value(v), json_string_length(v)))
            return fail(err, -EINVAL, path, f->name,
                        "must be a string of %lld-%lld bytes without control characters", f->min,
                        f->max);
        str_copy(p, (size_t)f->max + 1, json_string_value(v));
        return 0;
    default:
        return fail(err, -EINVAL, path, f->name, "internal: no check for this field");
    }
}

static void set_none(const struct field *f, char *p)
{
    if (f->type == F_CMD)
        p[0] = '\0';
    else
        *(int64_t *)(void *)p = LPC_NONE;
}

static int check_value(json_t *v, const struct field *f, void *base, const char *path,
                       struct lpc_error *err)
{
    char *p = (char *)base + f->off;
    char sub[64];

    if (json_is_null(v) && (f->flags & FL_NULL)) {
        set_none(f, p);
        return 0;
    }
    switch (f->type) {
    case F_SKIP:
        return 0;
    case F_OBJECT:
        path_join(sub, sizeof sub, path, f->name);
        if (!json_is_object(v))
            return fail(err, -EINVAL, path, f->name, "must be an object");
        return check_fields(v, f->sub, f->nsub, p, sub, err);
    case F_CUSTOM:
        path_join(sub, sizeof sub, path, f->name);
        return f->check(v, p, sub, err);
    default:
        return check_scalar(v, f, p, path, err);
    }
}

/* Check object 'obj' against the table: no unknown keys, required keys
 * present, each value well formed; fill 'base'. */
static int check_fields(json_t *obj, const struct field *f, size_t n, void *base, const char *path,
                        struct lpc_error *err)
{
    const char *key;
    json_t *v;

    json_object_foreach(obj, key, v)
    {
        if (find_field(f, n, key) == NULL)
            return fail(err, -EINVAL, path, key, "unknown field");
    }
    for (size_t i = 0; i < n; i++) {
        v = json_object_get(obj, f[i].name);
        if (v == NULL) {
            if (f[i].flags & FL_REQ)
                return fail(err, -EINVAL, path, f[i].name, "is required");
            if (f[i].flags & FL_OMIT)
                set_none(&f[i], (char *)base + f[i].off);
            continue;
        }
        int rc = check_value(v, &f[i], base, path, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* A value that every check refuses (no field is a fraction): what the
 * encoders emit for a struct member that is out of range, so that the check
 * after building turns it into -EINVAL. */
static json_t *invalid_marker(void)
{
    return json_real(0.5);
}

/* Nonzero when the first 'size' bytes at 'p' hold a NUL-terminated string
 * of valid UTF-8. */
static int terminated_utf8(const char *p, size_t size)
{
    char tmp[LPC_REASON_MAX + 1];

    if (size > sizeof tmp || memchr(p, '\0', size) == NULL)
        return 0;
    memcpy(tmp, p, size);
    jsonx_utf8_repair(tmp);
    return memcmp(tmp, p, size) == 0;
}

static json_t *build_fields(const struct field *f, size_t n, const void *base);

static json_t *build_value(const struct field *f, const void *base)
{
    const char *p = (const char *)base + f->off;
    int64_t x = 0;

    if (f->type == F_INT || f->type == F_TIME || f->type == F_FLAG) {
        x = *(const int64_t *)(const void *)p;
        if (x == LPC_NONE && (f->flags & FL_NULL))
            return json_null();
    }
    switch (f->type) {
    case F_INT:
        if (x < f->min || x > f->max)
            return invalid_marker();
        return json_integer(x);
    case F_FLAG:
        if (x != 0 && x != 1)
            return invalid_marker();
        return json_boolean(x);
    case F_BOOL:
        return json_boolean(*(const bool *)p);
    case F_ENUM: {
        int i = *(const int *)(const void *)p;
        if (i < 0 || (size_t)i >= names_count(f->values))
            return invalid_marker();
        return json_string(f->values[i]);
    }
    case F_TIME: {
        char t[40];
        if (x < 0 || x > LPC_TIME_MAX)
            return invalid_marker();
        return json_string(time_format_ms(x, t, sizeof t));
    }
    case F_CMD:
        if (!terminated_utf8(p, LPC_CMD_MAX + 1))
            return invalid_marker();
        if (p[0] == '\0' && (f->flags & FL_NULL))
            return json_null();
        return json_string(p);
    case F_TEXT:
        if (!terminated_utf8(p, (size_t)f->max + 1))
            return invalid_marker();
        return json_string(p);
    case F_OBJECT:
        return build_fields(f->sub, f->nsub, p);
    case F_CUSTOM:
        return f->build(p);
    default:
        return invalid_marker();
    }
}

/* Add the members of the table (F_SKIP excepted) to 'obj'. Returns 0 or
 * -ENOMEM. */
static int add_fields(json_t *obj, const struct field *f, size_t n, const void *base)
{
    for (size_t i = 0; i < n; i++) {
        if (f[i].type == F_SKIP)
            continue;
        if ((f[i].flags & FL_OMIT) &&
            *(const int64_t *)(const void *)((const char *)base + f[i].off) == LPC_NONE)
            continue;
        if (json_object_set_new(obj, f[i].name, build_value(&f[i], base)) != 0)
            return -ENOMEM;
    }
    return 0;
}

static json_t *build_fields(const struct field *f, size_t n, const void *base)
{
    json_t *obj = json_object();
    if (obj != NULL && add_fields(obj, f, n, base) != 0) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* --- parsing and printing ------------------------------------------------- */

static int parse(const char *buf, size_t len, size_t max, json_t **out, struct lpc_error *err)
{
    char msg[160];
    int rc;

    *out = NULL;
    if (len > max)
        return fail(err, -E2BIG, "", NULL, "payload of %zu bytes exceeds the limit of %zu", len,
                    max);
    rc = jsonx_parse(buf, len, &lpc_json_limits, out, msg, sizeof msg);
    if (rc != 0)
        return fail(err, rc, "", NULL, "%s", msg);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return fail(err, -EINVAL, "", NULL, "must be a JSON object");
    }
    return 0;
}

/* Check the built document 'j' with 'check' (the decoder's own checks, into
 * scratch space 'tmp'), then print it into 'buf'. Consumes 'j'. */
static int finish(json_t *j, int (*check)(json_t *, void *, struct lpc_error *), void *tmp,
                  size_t max, char *buf, size_t len)
{
    struct lpc_error err;
    size_t n;
    int rc = 0;

    if (j == NULL)
        return -ENOMEM;
    if (check(j, tmp, &err) != 0) {
        rc = -EINVAL;
        goto out;
    }
    n = json_dumpb(j, buf, len, JSON_COMPACT);
    if (n == 0) {
        rc = -ENOMEM;
    } else if (n > max) {
        rc = -EINVAL; /* the other end would refuse it */
    } else if (n >= len) {
        rc = -ENOSPC;
    } else {
        buf[n] = '\0';
        rc = (int)n;
    }
out:
    json_decref(j);
    return rc;
}

/* --- controls ------------------------------------------------------------- */

#define CTL(m) offsetof(struct lpc_control, m)

static const struct field cmd_field = FIELD("cmd", F_CMD, FL_REQ, CTL(cmd));

#define CTL_HEAD FIELD("cmd", F_SKIP, FL_REQ, 0), FIELD("type", F_SKIP, FL_REQ, 0)

static const struct field limit_fields[] = {
    CTL_HEAD,
    FIELD_ENUM("direction", FL_REQ, dir_names, CTL(u.limit.direction)),
    FIELD_INT("value_w", FL_REQ, 0, LPC_MAX_POWER_W, CTL(u.limit.value_w)),
    FIELD("active", F_BOOL, FL_REQ, CTL(u.limit.active)),
    FIELD_INT("duration_s", 0, 0, LPC_MAX_LIMIT_S, CTL(u.limit.duration_s)),
};

static const struct field relay_fields[] = {
    CTL_HEAD,
    FIELD_INT("index", FL_REQ, 0, 1, CTL(u.relay.index)),
    FIELD("closed", F_BOOL, FL_REQ, CTL(u.relay.closed)),
};

static const struct field switch_fields[] = {
    CTL_HEAD,
    FIELD_ENUM("level", FL_REQ, level_names, CTL(u.sw.level)),
};

static const struct field failsafe_fields[] = {
    CTL_HEAD,
    FIELD_INT("value_w", FL_REQ, 0, LPC_MAX_POWER_W, CTL(u.failsafe.value_w)),
    FIELD_INT("duration_s", FL_REQ, 0, LPC_MAX_FAILSAFE_S, CTL(u.failsafe.duration_s)),
};

static const struct field bare_fields[] = {CTL_HEAD};

#define IV(m) offsetof(struct lpc_interval, m)

static const struct field interval_fields[] = {
    FIELD("start", F_TIME, FL_REQ, IV(start_ms)),
    FIELD("end", F_TIME, FL_REQ, IV(end_ms)),
    FIELD_ENUM("direction", 0, dir_names, IV(direction)),
    FIELD_INT("value_w", 0, 0, LPC_MAX_POWER_W, IV(value_w)),
    FIELD_ENUM("level", 0, level_names, IV(level)),
};

/* Rules of one interval beyond its fields: exactly one of value_w (with a
 * direction) and level; start before end; not before the previous one. */
static int interval_rules(json_t *item, const struct lpc_interval *iv,
                          const struct lpc_interval *prev, const char *path, struct lpc_error *err)
{
    int has_value = json_object_get(item, "value_w") != NULL;
    int has_level = json_object_get(item, "level") != NULL;
    int has_dir = json_object_get(item, "direction") != NULL;

    if (has_value && has_level)
        return fail(err, -EINVAL, path, "level", "an interval has either value_w or level");
    if (!has_value && !has_level)
        return fail(err, -EINVAL, path, "value_w", "an interval needs value_w or level");
    if (has_value && !has_dir)
        return fail(err, -EINVAL, path, "direction", "is required with value_w");
    if (has_level && has_dir)
        return fail(err, -EINVAL, path, "direction", "goes only with value_w");
    if (iv->end_ms <= iv->start_ms)
        return fail(err, -EINVAL, path, "end", "must be after start");
    if (prev != NULL && iv->start_ms < prev->end_ms)
        return fail(err, -EINVAL, path, "start",
                    "must not be before the end of the previous interval");
    return 0;
}

static int intervals_check(json_t *v, void *p, const char *path, struct lpc_error *err)
{
    struct lpc_schedule *s = p;
    size_t n = json_is_array(v) ? json_array_size(v) : 0;
    char ipath[64], idx[24];

    if (!json_is_array(v))
        return fail(err, -EINVAL, path, NULL, "must be an array of intervals");
    if (n > LPC_MAX_INTERVALS)
        return fail(err, -E2BIG, path, NULL, "has %zu intervals, at most %d are allowed", n,
                    LPC_MAX_INTERVALS);
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(v, i);
        struct lpc_interval *iv = &s->iv[i];
        int rc;

        snprintf(idx, sizeof idx, "%zu", i);
        path_join(ipath, sizeof ipath, path, idx);
        if (!json_is_object(item))
            return fail(err, -EINVAL, ipath, NULL, "must be an object");
        memset(iv, 0, sizeof *iv);
        rc = check_fields(item, interval_fields, ARRAY_LEN(interval_fields), iv, ipath, err);
        if (rc == 0)
            rc = interval_rules(item, iv, i ? &s->iv[i - 1] : NULL, ipath, err);
        if (rc != 0)
            return rc;
        iv->is_level = json_object_get(item, "level") != NULL;
    }
    if (n > 0 && s->iv[n - 1].end_ms - s->iv[0].start_ms > LPC_MAX_SPAN_MS) {
        snprintf(idx, sizeof idx, "%zu", n - 1);
        path_join(ipath, sizeof ipath, path, idx);
        return fail(err, -EINVAL, ipath, "end", "the schedule spans more than 7 days");
    }
    s->n = n;
    return 0;
}

static json_t *intervals_build(const void *p)
{
    const struct lpc_schedule *s = p;
    /* start, end, then the fields of the interval's kind */
    static const size_t value_kind[] = {0, 1, 2, 3}, level_kind[] = {0, 1, 4};
    json_t *arr;

    if (s->n > LPC_MAX_INTERVALS)
        return invalid_marker();
    arr = json_array();
    for (size_t i = 0; arr != NULL && i < s->n; i++) {
        const struct lpc_interval *iv = &s->iv[i];
        const size_t *pick = iv->is_level ? level_kind : value_kind;
        size_t npick = iv->is_level ? ARRAY_LEN(level_kind) : ARRAY_LEN(value_kind);
        json_t *obj = json_object();

        for (size_t k = 0; obj != NULL && k < npick; k++) {
            const struct field *f = &interval_fields[pick[k]];
            if (json_object_set_new(obj, f->name, build_value(f, iv)) != 0) {
                json_decref(obj);
                obj = NULL;
            }
        }
        if (json_array_append_new(arr, obj) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

static const struct field schedule_fields[] = {
    CTL_HEAD,
    FIELD_CUSTOM("intervals", FL_REQ, intervals_check, intervals_build, CTL(u.schedule)),
};

/* One row per control type, in enum lpc_ctl_type order. */
static const struct ctl_spec {
    enum lpc_ctl_type type;
    const struct field *fields;
    size_t n;
} ctl_specs[] = {
    {LPC_CTL_LIMIT, limit_fields, ARRAY_LEN(limit_fields)},
    {LPC_CTL_RELAY, relay_fields, ARRAY_LEN(relay_fields)},
    {LPC_CTL_SWITCH, switch_fields, ARRAY_LEN(switch_fields)},
    {LPC_CTL_SCHEDULE, schedule_fields, ARRAY_LEN(schedule_fields)},
    {LPC_CTL_FAILSAFE, failsafe_fields, ARRAY_LEN(failsafe_fields)},
    {LPC_CTL_READ, bare_fields, ARRAY_LEN(bare_fields)},
    {LPC_CTL_HEARTBEAT, bare_fields, ARRAY_LEN(bare_fields)},
};

static int control_check(json_t *j, void *out, struct lpc_error *err)
{
    struct lpc_control *c = out;
    json_t *cmd = json_object_get(j, "cmd"), *type = json_object_get(j, "type");
    int t, rc;

    memset(c, 0, sizeof *c);
    if (cmd == NULL)
        return fail(err, -EINVAL, "", "cmd", "is required");
    rc = check_value(cmd, &cmd_field, c, "", err);
    if (rc != 0)
        return rc;
    if (type == NULL)
        return fail(err, -EINVAL, "", "type", "is required");
    if (!json_is_string(type))
        return fail(err, -EINVAL, "", "type", "must be a string naming the control");
    t = enum_index(type, type_names);
    if (t < 0)
        return fail(err, -ENOTSUP, "", "type", "control type \"%s\" is not supported",
                    json_string_value(type));
    c->type = ctl_specs[t].type;
    return check_fields(j, ctl_specs[t].fields, ctl_specs[t].n, c, "", err);
}

int lpc_control_encode(const struct lpc_control *c, char *buf, size_t len)
{
    struct lpc_control tmp;
    json_t *j;

    if ((unsigned)c->type >= ARRAY_LEN(ctl_specs))
        return -EINVAL;
    j = json_object();
    if (j != NULL && (json_object_set_new(j, "cmd", build_value(&cmd_field, c)) != 0 ||
                      json_object_set_new(j, "type", json_string(type_names[c->type])) != 0 ||
                      add_fields(j, ctl_specs[c->type].fields, ctl_specs[c->type].n, c) != 0)) {
        json_decref(j);
        return -ENOMEM;
    }
    return finish(j, control_check, &tmp, LPC_MAX_CONTROL, buf, len);
}

int lpc_control_decode(const char *buf, size_t len, struct lpc_control *c, struct lpc_error *err)
{
    json_t *j;
    int rc;

    memset(c, 0, sizeof *c);
    rc = parse(buf, len, LPC_MAX_CONTROL, &j, err);
    if (rc == 0)
        rc = control_check(j, c, err);
    json_decref(j);
    return rc;
}

/* --- acks ----------------------------------------------------------------- */

#define ACK(m) offsetof(struct lpc_ack, m)

static int result_check(json_t *v, void *p, const char *path, struct lpc_error *err)
{
    const char *s = json_is_string(v) ? json_string_value(v) : "";

    if (strcmp(s, "ok") != 0 && strcmp(s, "nack") != 0)
        return fail(err, -EINVAL, path, NULL, "must be one of ok, nack");
    *(bool *)p = strcmp(s, "ok") == 0;
    return 0;
}

static json_t *result_build(const void *p)
{
    return json_string(*(const bool *)p ? "ok" : "nack");
}

static int error_check(json_t *v, void *p, const char *path, struct lpc_error *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < LPC_ERR_PROTOCOL ||
        json_integer_value(v) > LPC_ERR_UNSUPPORTED)
        return fail(err, -EINVAL, path, NULL, "must be an integer in 2..4");
    *(int *)p = (int)json_integer_value(v);
    return 0;
}

static json_t *error_build(const void *p)
{
    return json_integer(*(const int *)p);
}

static const struct field ack_fields[] = {
    FIELD("cmd", F_CMD, FL_REQ | FL_NULL, ACK(cmd)),
    FIELD_CUSTOM("result", FL_REQ, result_check, result_build, ACK(ok)),
    FIELD_CUSTOM("error", 0, error_check, error_build, ACK(error)),
    FIELD_TEXT("reason", 0, 1, LPC_REASON_MAX, ACK(reason)),
};

static int ack_check(json_t *j, void *out, struct lpc_error *err)
{
    struct lpc_ack *a = out;
    int rc;

    memset(a, 0, sizeof *a);
    rc = check_fields(j, ack_fields, ARRAY_LEN(ack_fields), a, "", err);
    if (rc != 0)
        return rc;
    if (a->ok && json_object_get(j, "error") != NULL)
        return fail(err, -EINVAL, "", "error", "goes only with result nack");
    if (a->ok && json_object_get(j, "reason") != NULL)
        return fail(err, -EINVAL, "", "reason", "goes only with result nack");
    if (!a->ok && json_object_get(j, "error") == NULL)
        return fail(err, -EINVAL, "", "error", "is required with result nack");
    if (!a->ok && json_object_get(j, "reason") == NULL)
        return fail(err, -EINVAL, "", "reason", "is required with result nack");
    if (a->cmd[0] == '\0' && (a->ok || a->error != LPC_ERR_PROTOCOL))
        return fail(err, -EINVAL, "", "cmd", "may be null only in a nack with error 2");
    return 0;
}

int lpc_ack_encode(const struct lpc_ack *a, char *buf, size_t len)
{
    struct lpc_ack tmp;
    json_t *j = build_fields(ack_fields, 2, a);

    if (j != NULL && !a->ok && add_fields(j, &ack_fields[2], 2, a) != 0) {
        json_decref(j);
        return -ENOMEM;
    }
    return finish(j, ack_check, &tmp, LPC_MAX_REPORT, buf, len);
}

int lpc_ack_decode(const char *buf, size_t len, struct lpc_ack *a, struct lpc_error *err)
{
    json_t *j;
    int rc;

    memset(a, 0, sizeof *a);
    rc = parse(buf, len, LPC_MAX_REPORT, &j, err);
    if (rc == 0)
        rc = ack_check(j, a, err);
    json_decref(j);
    return rc;
}

void lpc_ack_ok(struct lpc_ack *a, const char *cmd)
{
    memset(a, 0, sizeof *a);
    str_copy(a->cmd, sizeof a->cmd, cmd);
    a->ok = true;
}

void lpc_ack_nack(struct lpc_ack *a, const char *cmd, enum lpc_nack code,
                  const struct lpc_error *err, const char *text)
{
    const char *why = err != NULL ? err->reason : text != NULL ? text : "";
    int n;

    memset(a, 0, sizeof *a);
    str_copy(a->cmd, sizeof a->cmd, cmd);
    a->error = (int)code;
    if (err != NULL && err->field[0] != '\0')
        n = snprintf(a->reason, sizeof a->reason, "%s: %s", err->field, why);
    else
        n = snprintf(a->reason, sizeof a->reason, "%s", why);
    if (n <= 0)
        str_copy(a->reason, sizeof a->reason, "no reason given");
    /* snprintf may have cut a UTF-8 sequence in half: the rest becomes '?'. */
    jsonx_utf8_repair(a->reason);
    for (char *p = a->reason; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

/* --- state ---------------------------------------------------------------- */

#define LIM(m) offsetof(struct lpc_limit_state, m)
#define FS(m)  offsetof(struct lpc_failsafe_state, m)
#define ST(m)  offsetof(struct lpc_state, m)

static const struct field limit_state_fields[] = {
    FIELD_INT("value_w", FL_REQ, 0, LPC_MAX_POWER_W, LIM(value_w)),
    FIELD("active", F_BOOL, FL_REQ, LIM(active)),
    FIELD("until", F_TIME, FL_REQ | FL_NULL, LIM(until_ms)),
};

static const struct field limits_fields[] = {
    FIELD_OBJECT("consumption", FL_REQ, limit_state_fields, 0),
    FIELD_OBJECT("production", FL_REQ, limit_state_fields, sizeof(struct lpc_limit_state)),
};

static const struct field failsafe_state_fields[] = {
    FIELD_INT("value_w", FL_REQ, 0, LPC_MAX_POWER_W, FS(value_w)),
    FIELD_INT("duration_s", FL_REQ, 0, LPC_MAX_FAILSAFE_S, FS(duration_s)),
    FIELD("until", F_TIME, FL_REQ | FL_NULL, FS(until_ms)),
};

static const struct field effective_fields[] = {
    FIELD_INT("consumption", FL_REQ | FL_NULL, 0, LPC_MAX_POWER_W, 0),
    FIELD_INT("production", FL_REQ | FL_NULL, 0, LPC_MAX_POWER_W, sizeof(int64_t)),
};

static int relays_check(json_t *v, void *p, const char *path, struct lpc_error *err)
{
    bool *closed = p;

    if (!json_is_array(v) || json_array_size(v) != 2)
        return fail(err, -EINVAL, path, NULL, "must be an array of two relay positions");
    for (size_t i = 0; i < 2; i++) {
        int k = enum_index(json_array_get(v, i), relay_names);
        if (k < 0)
            return fail(err, -EINVAL, path, i ? "1" : "0", "must be one of open, closed");
        closed[i] = k == 1;
    }
    return 0;
}

static json_t *relays_build(const void *p)
{
    const bool *closed = p;
    return json_pack("[ss]", relay_names[closed[0]], relay_names[closed[1]]);
}

static const struct field state_fields[] = {
    FIELD("time", F_TIME, FL_REQ, ST(time_ms)),
    FIELD_OBJECT("limits", FL_REQ, limits_fields, ST(limit)),
    FIELD_CUSTOM("relays", FL_REQ, relays_check, relays_build, ST(relay_closed)),
    FIELD_ENUM("level", FL_REQ, level_names, ST(level)),
    FIELD_ENUM("mode", FL_REQ, mode_names, ST(mode)),
    FIELD_OBJECT("failsafe", FL_REQ, failsafe_state_fields, ST(failsafe)),
    FIELD_OBJECT("effective", FL_REQ, effective_fields, ST(effective_w)),
    FIELD_INT("measured_w", FL_REQ, -LPC_MAX_POWER_W, LPC_MAX_POWER_W, ST(measured_w)),
    FIELD("last_cmd", F_CMD, FL_REQ | FL_NULL, ST(last_cmd)),
};

static int state_check(json_t *j, void *out, struct lpc_error *err)
{
    struct lpc_state *s = out;
    int rc;

    memset(s, 0, sizeof *s);
    rc = check_fields(j, state_fields, ARRAY_LEN(state_fields), s, "", err);
    if (rc != 0)
        return rc;
    if (s->level != lpc_level_from_relays(s->relay_closed[0], s->relay_closed[1]))
        return fail(err, -EINVAL, "", "level", "does not match the relays");
    if ((s->mode == LPC_MODE_FAILSAFE) != (s->failsafe.until_ms != LPC_NONE))
        return fail(err, -EINVAL, "/failsafe", "until",
                    "must be set in failsafe mode and null otherwise");
    for (int d = 0; d < LPC_NDIR; d++)
        if (!s->limit[d].active && s->limit[d].until_ms != LPC_NONE)
            return fail(err, -EINVAL, d ? "/limits/production" : "/limits/consumption", "until",
                        "must be null for an inactive limit");
    return 0;
}

int lpc_state_encode(const struct lpc_state *s, char *buf, size_t len)
{
    struct lpc_state tmp;
    return finish(build_fields(state_fields, ARRAY_LEN(state_fields), s), state_check, &tmp,
                  LPC_MAX_REPORT, buf, len);
}

int lpc_state_decode(const char *buf, size_t len, struct lpc_state *s, struct lpc_error *err)
{
    json_t *j;
    int rc;

    memset(s, 0, sizeof *s);
    rc = parse(buf, len, LPC_MAX_REPORT, &j, err);
    if (rc == 0)
        rc = state_check(j, s, err);
    json_decref(j);
    return rc;
}

/* --- telemetry ------------------------------------------------------------ */

#define TEL(m) offsetof(struct lpc_telemetry, m)
static const struct field telemetry_fields[] = {
    FIELD("time", F_TIME, FL_REQ, TEL(time_ms)),
    FIELD_INT("measured_w", FL_OMIT, -LPC_MAX_POWER_W, LPC_MAX_POWER_W, TEL(measured_w)),
    FIELD("door_open", F_FLAG, FL_OMIT, TEL(door_open)),
    FIELD("smoke", F_FLAG, FL_OMIT, TEL(smoke)),
    FIELD_INT("fill_level_pct", FL_OMIT, 0, 100, TEL(fill_level_pct)),
    FIELD_INT("temperature_dc", FL_OMIT, -500, 1000, TEL(temperature_dc)),
    FIELD_INT("humidity_pct", FL_OMIT, 0, 100, TEL(humidity_pct)),
};

static int telemetry_check(json_t *j, void *out, struct lpc_error *err)
{
    struct lpc_telemetry *t = out;
    memset(out, 0, sizeof(struct lpc_telemetry));
    int rc = check_fields(j, telemetry_fields, ARRAY_LEN(telemetry_fields), out, "", err);
    if (rc == 0 && t->measured_w == LPC_NONE && t->door_open == LPC_NONE && t->smoke == LPC_NONE &&
        t->fill_level_pct == LPC_NONE && t->temperature_dc == LPC_NONE &&
        t->humidity_pct == LPC_NONE)
        return fail(err, -EINVAL, "", NULL, "telemetry without a single measurement");
    return rc;
}

int lpc_telemetry_encode(const struct lpc_telemetry *t, char *buf, size_t len)
{
    struct lpc_telemetry tmp;
    return finish(build_fields(telemetry_fields, ARRAY_LEN(telemetry_fields), t), telemetry_check,
                  &tmp, LPC_MAX_REPORT, buf, len);
}

int lpc_telemetry_decode(const char *buf, size_t len, struct lpc_telemetry *t,
                         struct lpc_error *err)
{
    json_t *j;
    int rc;

    memset(t, 0, sizeof *t);
    rc = parse(buf, len, LPC_MAX_REPORT, &j, err);
    if (rc == 0)
        rc = telemetry_check(j, t, err);
    json_decref(j);
    return rc;
}

/* --- topics --------------------------------------------------------------- */

int lpc_topic_build(const char *device_id, enum lpc_topic kind, char *buf, size_t len)
{
    int n;

    if (!lpc_device_id_valid(device_id) || (unsigned)kind >= names_count(topic_names))
        return -EINVAL;
    n = snprintf(buf, len, "cls/%s/%s", device_id, topic_names[kind]);
    if (n < 0 || (size_t)n >= len)
        return -ENOSPC;
    return n;
}

int lpc_topic_parse(const char *topic, size_t len, char device_id[LPC_DEVICE_ID_MAX + 1],
                    enum lpc_topic *kind)
{
    const char *id, *slash, *rest;
    size_t idlen, restlen;

    if (len < 4 || memcmp(topic, "cls/", 4) != 0)
        return -EINVAL;
    id = topic + 4;
    slash = memchr(id, '/', len - 4);
    if (slash == NULL)
        return -EINVAL;
    idlen = (size_t)(slash - id);
    if (!device_id_valid_n(id, idlen))
        return -EINVAL;
    rest = slash + 1;
    restlen = len - 4 - idlen - 1;
    for (int i = 0; topic_names[i] != NULL; i++) {
        if (strlen(topic_names[i]) == restlen && memcmp(rest, topic_names[i], restlen) == 0) {
            memcpy(device_id, id, idlen);
            device_id[idlen] = '\0';
            *kind = (enum lpc_topic)i;
            return 0;
        }
    }
    return -EINVAL;
}
