/*
 * registry.c - the descriptors of the registry kinds and their validation;
 * see registry.h. Adding a field is one row here plus a migration.
 */
#include "registry/registry.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"

/* --- formats ------------------------------------------------------------ */

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

int reg_is_party_id(const char *s)
{
    return strlen(s) == 13 && all_digits(s, 13);
}

int reg_is_smgw_id(const char *s)
{
    if (strlen(s) != 14 || s[0] != 'E')
        return 0;
    for (int i = 1; i < 4; i++)
        if (!isupper((unsigned char)s[i]))
            return 0;
    return all_digits(s + 4, 10);
}

int reg_is_generic_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 96 || !isalnum((unsigned char)s[0]))
        return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return 1;
}

static int is_https_url(const char *s)
{
    size_t n = strlen(s);
    if (n < 9 || n > 512 || strncmp(s, "https://", 8) != 0 || s[8] == '/')
        return 0;
    for (size_t i = 8; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

static int is_sha256_hex(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!(isdigit((unsigned char)s[i]) || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* A metering point: the 33-character Zählpunktbezeichnung (DE + 31 upper-case
 * letters or digits) or an 11-digit market location id. */
static int is_metering_point(const char *s)
{
    size_t n = strlen(s);
    if (n == 11)
        return all_digits(s, 11);
    if (n != 33 || s[0] != 'D' || s[1] != 'E')
        return 0;
    for (size_t i = 2; i < n; i++)
        if (!(isdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])))
            return 0;
    return 1;
}

int reg_is_metering_point(const char *s)
{
    return is_metering_point(s);
}

/* --- descriptors -------------------------------------------------------- */

static const char *const party_roles[] = {"vnb", "uenb", "lf", "aggregator", "msb", "admin", NULL};
static const char *const vnb_roles[] = {"vnb", NULL};
static const char *const market_roles[] = {"lf", "aggregator", "msb", NULL};
static const char *const seg_levels[] = {"substation", "transformer", "feeder", "other", NULL};
static const char *const lights[] = {"green", "yellow", "red", NULL};
static const char *const device_kinds[] = {"steuerbox", "energy_manager", "inverter",
                                           "wallbox",   "heat_pump",      "battery",
                                           "sensor",    "other",          NULL};
static const char *const drivers[] = {"lpc-mqtt", "sunspec", NULL};
static const char *const inst_kinds[] = {"heat_pump", "wallbox",        "pv",
                                         "battery",   "storage_heater", "air_conditioning",
                                         "chp",       "other",          NULL};
static const char *const directions[] = {"consumption", "production", "bidirectional", NULL};
static const char *const rights[] = {"read", "control", NULL};

#define ID_FIELD(fmt, desc)                                                      \
    {                                                                            \
        "id", RT_ID, RF_KEY | RF_REQUIRED, 1, 96, fmt, desc, NULL, 0, NULL, NULL \
    }
#define GENERIC_ID ID_FIELD(reg_is_generic_id, "1-96 of A-Z a-z 0-9 . _ : - starting alphanumeric")
#define NAME_FIELD                                                              \
    {                                                                           \
        "name", RT_STRING, RF_REQUIRED, 1, 200, NULL, NULL, NULL, 0, NULL, NULL \
    }
#define TIMESTAMPS                                                              \
    {"created_at", RT_TIME, RF_SERVER, 0, 0, NULL, NULL, NULL, 0, NULL, NULL},  \
    {                                                                           \
        "updated_at", RT_TIME, RF_SERVER, 0, 0, NULL, NULL, NULL, 0, NULL, NULL \
    }

static const struct reg_field party_fields[] = {
    ID_FIELD(reg_is_party_id, "13 digits"),
    NAME_FIELD,
    {"role", RT_ENUM, RF_REQUIRED | RF_FILTER, 0, 0, NULL, NULL, party_roles, 0, NULL, NULL},
    TIMESTAMPS,
};

static const struct reg_field segment_fields[] = {
    GENERIC_ID,
    NAME_FIELD,
    {"level", RT_ENUM, RF_REQUIRED | RF_FILTER, 0, 0, NULL, NULL, seg_levels, 0, NULL, NULL},
    {"parent", RT_REF, RF_FILTER, 0, 0, NULL, NULL, NULL, REG_SEGMENT, NULL, NULL},
    {"vnb", RT_REF, RF_REQUIRED | RF_FILTER, 0, 0, NULL, NULL, NULL, REG_PARTY, vnb_roles, NULL},
    {"traffic_light", RT_ENUM, RF_READONLY | RF_FILTER, 0, 0, NULL, NULL, lights, 0, NULL,
     "\"green\""},
    {"light_since", RT_TIME, RF_READONLY, 0, 0, NULL, NULL, NULL, 0, NULL, NULL},
    {"light_set_by", RT_STRING, RF_READONLY, 0, 64, NULL, NULL, NULL, 0, NULL, NULL},
    {"light_reason", RT_STRING, RF_READONLY, 0, 500, NULL, NULL, NULL, 0, NULL, NULL},
    TIMESTAMPS,
};

static const struct reg_field gwa_fields[] = {
    GENERIC_ID,
    NAME_FIELD,
    {"endpoint", RT_STRING, RF_REQUIRED, 9, 512, is_https_url, "an https:// URL", NULL, 0, NULL,
     NULL},
    {"max_concurrent", RT_INT, 0, 1, 10000, NULL, NULL, NULL, 0, NULL, "16"},
    TIMESTAMPS,
};

static const struct reg_field smgw_fields[] = {
    ID_FIELD(reg_is_smgw_id, "a gateway id such as EABC0012345678"),
    {"gwa", RT_REF, RF_REQUIRED | RF_FILTER, 0, 0, NULL, NULL, NULL, REG_GWA, NULL, NULL},
    {"segment", RT_REF, RF_REQUIRED | RF_FILTER | RF_SUBTREE, 0, 0, NULL, NULL, NULL, REG_SEGMENT,
     NULL, NULL},
    {"cert_fingerprint", RT_STRING, 0, 64, 64, is_sha256_hex, "64 lower-case hex digits (SHA-256)",
     NULL, 0, NULL, NULL},
    TIMESTAMPS,
};

static const struct reg_field device_fields[] = {
    GENERIC_ID,
    {"smgw", RT_REF, RF_REQUIRED | RF_FILTER, 0, 0, NULL, NULL, NULL, REG_SMGW, NULL, NULL},
    {"kind", RT_ENUM, RF_REQUIRED | RF_FILTER, 0, 0, NULL, NULL, device_kinds, 0, NULL, NULL},
    {"driver", RT_ENUM, RF_FILTER, 0, 0, NULL, NULL, drivers, 0, NULL, "\"lpc-mqtt\""},
    {"firmware", RT_STRING, 0, 1, 64, NULL, NULL, NULL, 0, NULL, NULL},
    {"failsafe_limit_w", RT_INT, 0, 0, 100000000, NULL, NULL, NULL, 0, NULL, "4200"},
    {"failsafe_duration_s", RT_INT, 0, 0, 86400, NULL, NULL, NULL, 0, NULL, "7200"},
    TIMESTAMPS,
};

static const struct reg_field installation_fields[] = {
    GENERIC_ID,
    {"device", RT_REF, RF_REQUIRED | RF_FILTER, 0, 0, NULL, NULL, NULL, REG_DEVICE, NULL, NULL},
    {"output", RT_INT, 0, 0, 15, NULL, NULL, NULL, 0, NULL, "0"},
    {"kind", RT_ENUM, RF_REQUIRED | RF_FILTER, 0, 0, NULL, NULL, inst_kinds, 0, NULL, NULL},
    {"direction", RT_ENUM, RF_REQUIRED | RF_FILTER, 0, 0, NULL, NULL, directions, 0, NULL, NULL},
    {"rated_power_w", RT_INT, RF_REQUIRED, 1, 100000000, NULL, NULL, NULL, 0, NULL, NULL},
    {"sec14a", RT_BOOL, RF_FILTER, 0, 0, NULL, NULL, NULL, 0, NULL, "false"},
    {"energy_manager", RT_STRING, RF_FILTER, 1, 96, reg_is_generic_id,
     "an id shared by the installations behind one energy manager", NULL, 0, NULL, NULL},
    {"segment", RT_REF, RF_REQUIRED | RF_FILTER | RF_SUBTREE, 0, 0, NULL, NULL, NULL, REG_SEGMENT,
     NULL, NULL},
    {"metering_point", RT_STRING, 0, 11, 33, is_metering_point,
     "a 33-character metering point id (DE...) or an 11-digit market location id", NULL, 0, NULL,
     NULL},
    TIMESTAMPS,
};

static const struct reg_field assignment_fields[] = {
    /* Optional here: defaults to "<party>:<installation>". */
    {"id", RT_ID, RF_KEY, 1, 96, reg_is_generic_id,
     "1-96 of A-Z a-z 0-9 . _ : - starting alphanumeric", NULL, 0, NULL, NULL},
    {"party", RT_REF, RF_REQUIRED | RF_FILTER, 0, 0, NULL, NULL, NULL, REG_PARTY, market_roles,
     NULL},
    {"installation", RT_REF, RF_REQUIRED | RF_FILTER, 0, 0, NULL, NULL, NULL, REG_INSTALLATION,
     NULL, NULL},
    {"rights", RT_ENUMSET, RF_REQUIRED, 1, 2, NULL, NULL, rights, 0, NULL, NULL},
    TIMESTAMPS,
};

static int check_segment(const json_t *obj, const json_t *current, const struct reg_lookup *lk,
                         struct reg_error *err);
static int check_installation(const json_t *obj, const json_t *current, const struct reg_lookup *lk,
                              struct reg_error *err);

static const char *const inst_unique[] = {"device", "output", NULL};
static const char *const asg_unique[] = {"party", "installation", NULL};

#define KIND(idv, n, p, f, u, c)         \
    {                                    \
        idv, n, p, f, ARRAY_LEN(f), u, c \
    }

const struct reg_kind reg_kinds[REG_NKINDS] = {
    KIND(REG_PARTY, "party", "parties", party_fields, NULL, NULL),
    KIND(REG_SEGMENT, "segment", "segments", segment_fields, NULL, check_segment),
    KIND(REG_GWA, "gwa", "gwas", gwa_fields, NULL, NULL),
    KIND(REG_SMGW, "smgw", "smgws", smgw_fields, NULL, NULL),
    KIND(REG_DEVICE, "device", "devices", device_fields, NULL, NULL),
    KIND(REG_INSTALLATION, "installation", "installations", installation_fields, inst_unique,
         check_installation),
    KIND(REG_ASSIGNMENT, "assignment", "assignments", assignment_fields, asg_unique, NULL),
};

const struct reg_kind *reg_kind_by_plural(const char *plural)
{
    for (size_t i = 0; i < REG_NKINDS; i++)
        if (strcmp(reg_kinds[i].plural, plural) == 0)
            return &reg_kinds[i];
    return NULL;
}

const struct reg_field *reg_field(const struct reg_kind *k, const char *name)
{
    for (size_t i = 0; i < k->nfields; i++)
        if (strcmp(k->fields[i].name, name) == 0)
            return &k->fields[i];
    return NULL;
}

int reg_id_valid(const struct reg_kind *k, const char *id)
{
    return k->fields[0].format(id);
}

/* --- validation --------------------------------------------------------- */

static int fail(struct reg_error *err, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct reg_error *err, int status, const char *field, const char *fmt, ...)
{
    va_list ap;
    err->status = status;
    snprintf(err->pointer, sizeof err->pointer, "%s%s", field ? "/" : "", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof err->detail, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int enum_index(const char *const *values, const char *s)
{
    for (int i = 0; values[i]; i++)
        if (strcmp(values[i], s) == 0)
            return i;
    return -1;
}

static void enum_list(const char *const *values, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; values[i] && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", values[i]);
}

/* Printable text: no control characters (jansson already checked UTF-8). */
/* No C0 or C1 control characters (C1: U+0080..U+009F, 0xc2 0x80..0x9f in
 * UTF-8, among them CSI, which terminals act on). */
static int printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return 0;
        if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            return 0;
    }
    return 1;
}

/* Length in characters (code points) of valid UTF-8. */
static size_t utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

int reg_text_check(const json_t *v, size_t min, size_t max, char *msg, size_t len)
{
    if (!json_is_string(v)) {
        snprintf(msg, len, "must be a string");
        return -EINVAL;
    }
    size_t n = utf8_length(json_string_value(v));
    if (n < min || n > max) {
        snprintf(msg, len, "length must be %zu to %zu characters", min, max);
        return -EINVAL;
    }
    if (!printable(json_string_value(v))) {
        snprintf(msg, len, "must not contain control characters");
        return -EINVAL;
    }
    return 0;
}

static int check_string(const struct reg_field *f, json_t *v, struct reg_error *err)
{
    char msg[128];
    const char *s = json_string_value(v);

    if (reg_text_check(v, (size_t)f->min, (size_t)f->max, msg, sizeof msg) != 0)
        return fail(err, 422, f->name, "%s", msg);
    if (f->format && !f->format(s))
        return fail(err, 422, f->name, "must be %s", f->format_desc);
    return 0;
}

static int check_ref(const struct reg_field *f, json_t *v, const struct reg_lookup *lk,
                     struct reg_error *err)
{
    const struct reg_kind *rk = &reg_kinds[f->ref];
    const char *id;
    json_t *obj = NULL;
    int rc = 0;

    if (!json_is_string(v))
        return fail(err, 422, f->name, "must be the id of a %s", rk->name);
    id = json_string_value(v);
    if (strlen(id) != json_string_length(v) || !reg_id_valid(rk, id))
        return fail(err, 422, f->name, "must be the id of a %s (%s)", rk->name,
                    rk->fields[0].format_desc);
    if (lk == NULL)
        return 0;
    rc = lk->get(lk->arg, rk, id, &obj);
    if (rc == -ENOENT)
        return fail(err, 422, f->name, "refers to %s \"%s\", which does not exist", rk->name, id);
    if (rc != 0)
        return fail(err, 500, f->name, "looking up %s \"%s\" failed", rk->name, id);
    if (f->ref_roles) {
        const char *role = json_string_value(json_object_get(obj, "role"));
        if (role == NULL || enum_index(f->ref_roles, role) < 0) {
            char allowed[128];
            enum_list(f->ref_roles, allowed, sizeof allowed);
            rc = fail(err, 422, f->name, "party \"%s\" has role %s; allowed: %s", id,
                      role ? role : "(none)", allowed);
        }
    }
    json_decref(obj);
    return rc;
}

static int check_enumset(const struct reg_field *f, json_t *v, json_t **norm, struct reg_error *err)
{
    unsigned seen = 0;
    size_t i;
    json_t *e;
    char allowed[256];

    enum_list(f->values, allowed, sizeof allowed);
    if (!json_is_array(v) || json_array_size(v) < (size_t)f->min)
        return fail(err, 422, f->name, "must be a list of at least %lld of: %s", f->min, allowed);
    json_array_foreach(v, i, e)
    {
        int idx = json_is_string(e) ? enum_index(f->values, json_string_value(e)) : -1;
        if (idx < 0)
            return fail(err, 422, f->name, "items must be one of: %s", allowed);
        if (seen & (1u << idx))
            return fail(err, 422, f->name, "lists \"%s\" twice", json_string_value(e));
        seen |= 1u << idx;
    }
    /* Canonical order, so equal sets compare and store equal. */
    *norm = json_array();
    for (int k = 0; f->values[k]; k++)
        if (seen & (1u << k))
            json_array_append_new(*norm, json_string(f->values[k]));
    return 0;
}

/* Type and bounds of one present value; '*norm' receives the value to store
 * (a new reference). */
static int check_value(const struct reg_field *f, json_t *v, const struct reg_lookup *lk,
                       json_t **norm, struct reg_error *err)
{
    char allowed[256];
    int rc;

    switch (f->type) {
    case RT_ID:
    case RT_STRING:
        rc = check_string(f, v, err);
        break;
    case RT_INT:
        if (!json_is_integer(v))
            return fail(err, 422, f->name, "must be an integer");
        if (json_integer_value(v) < f->min || json_integer_value(v) > f->max)
            return fail(err, 422, f->name, "must be between %lld and %lld", f->min, f->max);
        rc = 0;
        break;
    case RT_BOOL:
        rc = json_is_boolean(v) ? 0 : fail(err, 422, f->name, "must be true or false");
        break;
    case RT_ENUM:
        enum_list(f->values, allowed, sizeof allowed);
        rc = json_is_string(v) && enum_index(f->values, json_string_value(v)) >= 0
                 ? 0
                 : fail(err, 422, f->name, "must be one of: %s", allowed);
        break;
    case RT_ENUMSET:
        return check_enumset(f, v, norm, err);
    case RT_REF:
        rc = check_ref(f, v, lk, err);
        break;
    case RT_TIME: {
        int64_t ms;
        rc = json_is_string(v) && time_parse_ms(json_string_value(v), &ms) == 0
                 ? 0
                 : fail(err, 422, f->name, "must be an RFC 3339 time");
        break;
    }
    default:
        rc = fail(err, 422, f->name, "unsupported type");
    }
    if (rc == 0)
        *norm = json_incref(v);
    return rc;
}

static json_t *default_value(const struct reg_field *f)
{
    return f->def ? json_loads(f->def, JSON_DECODE_ANY, NULL) : json_null();
}

static int check_readonly(const struct reg_field *f, json_t *v, const json_t *current,
                          struct reg_error *err)
{
    json_t *expect = current ? json_incref(json_object_get(current, f->name)) : default_value(f);
    int same;

    if (expect == NULL)
        expect = json_null();
    same = json_equal(v, expect);
    json_decref(expect);
    if (!same)
        return fail(err, 422, f->name, "is read-only%s",
                    strncmp(f->name, "light", 5) == 0 || strcmp(f->name, "traffic_light") == 0
                        ? "; set it with PUT /v1/segments/{id}/traffic-light"
                        : "");
    return 0;
}

static int check_key(const struct reg_kind *k, const struct reg_field *f, json_t *v,
                     const char *url_id, json_t *out, struct reg_error *err)
{
    json_t *norm = NULL;

    if (v == NULL) {
        if (url_id == NULL) {
            if (f->flags & RF_REQUIRED)
                return fail(err, 422, f->name, "is required");
            return 0; /* derived after the other fields */
        }
        json_object_set_new(out, f->name, json_string(url_id));
        return reg_id_valid(k, url_id) ? 0 : fail(err, 404, NULL, "no %s with that id", k->name);
    }
    if (check_value(f, v, NULL, &norm, err) != 0)
        return -EINVAL;
    json_object_set_new(out, f->name, norm);
    if (url_id && strcmp(url_id, json_string_value(v)) != 0)
        return fail(err, 422, f->name, "does not match the id in the URL");
    return 0;
}

static int check_field(const struct reg_kind *k, const struct reg_field *f, json_t *src,
                       const json_t *current, const char *url_id, const struct reg_lookup *lk,
                       json_t *out, struct reg_error *err)
{
    json_t *v = json_object_get(src, f->name), *norm = NULL;

    if (json_is_null(v))
        v = NULL;
    if (f->flags & RF_SERVER)
        return 0;
    if (f->flags & RF_READONLY)
        return v ? check_readonly(f, v, current, err) : 0;
    if (f->flags & RF_KEY)
        return check_key(k, f, v, url_id, out, err);
    if (v == NULL) {
        if (f->flags & RF_REQUIRED)
            return fail(err, 422, f->name, "is required");
        json_object_set_new(out, f->name, default_value(f));
        return 0;
    }
    if (check_value(f, v, lk, &norm, err) != 0)
        return -EINVAL;
    json_object_set_new(out, f->name, norm);
    return 0;
}

static json_t *merge_patch(const json_t *current, json_t *patch)
{
    json_t *m = json_deep_copy(current), *v;
    const char *key;

    json_object_foreach(patch, key, v)
    {
        if (json_is_null(v))
            json_object_del(m, key);
        else
            json_object_set(m, key, v);
    }
    return m;
}

int reg_validate(const struct reg_kind *k, json_t *in, const json_t *current, const char *id,
                 int patch, const struct reg_lookup *lk, json_t **out, struct reg_error *err)
{
    json_t *src = NULL, *res = NULL, *v;
    const char *key;
    int rc = -EINVAL;

    *out = NULL;
    memset(err, 0, sizeof *err);
    if (!json_is_object(in))
        return fail(err, 422, NULL, "the body must be a JSON object");
    src = patch && current ? merge_patch(current, in) : json_incref(in);
    json_object_foreach(src, key, v)
    {
        if (reg_field(k, key) == NULL) {
            fail(err, 422, key, "is not a field of %s", k->name);
            goto out;
        }
    }
    res = json_object();
    for (size_t i = 0; i < k->nfields; i++)
        if (check_field(k, &k->fields[i], src, current, id, lk, res, err) != 0)
            goto out;
    if (json_object_get(res, "id") == NULL) {
        /* Only assignments get here: their id is derived from the pair. */
        char derived[256];
        snprintf(derived, sizeof derived, "%s:%s", json_string_value(json_object_get(res, "party")),
                 json_string_value(json_object_get(res, "installation")));
        if (!reg_id_valid(k, derived)) {
            fail(err, 422, "id",
                 "is needed: the derived id \"%s\" would be longer than 96 characters", derived);
            goto out;
        }
        json_object_set_new(res, "id", json_string(derived));
    }
    if (k->check && k->check(res, current, lk, err) != 0)
        goto out;
    *out = res;
    res = NULL;
    rc = 0;
out:
    json_decref(src);
    json_decref(res);
    return rc;
}

/* A segment must not become its own ancestor. Checked only when the
 * parent changes; the walk up is bounded so that a corrupted store cannot
 * loop it. Trees have no depth limit of their own. */
#define SEGMENT_WALK_MAX 4096

static int check_segment(const json_t *obj, const json_t *current, const struct reg_lookup *lk,
                         struct reg_error *err)
{
    const char *self = json_string_value(json_object_get(obj, "id"));
    json_t *parent = json_object_get(obj, "parent");
    json_t *cur = NULL;
    char next[128];

    if (!json_is_string(parent) || lk == NULL ||
        (current && json_equal(parent, json_object_get(current, "parent"))))
        return 0;
    str_copy(next, sizeof next, json_string_value(parent));
    for (int steps = 0;; steps++) {
        if (strcmp(next, self) == 0)
            return fail(err, 422, "parent", "would make segment \"%s\" its own ancestor", self);
        if (steps == SEGMENT_WALK_MAX)
            return fail(err, 500, "parent", "the ancestry of \"%s\" is longer than %d segments",
                        json_string_value(parent), SEGMENT_WALK_MAX);
        int rc = lk->get(lk->arg, &reg_kinds[REG_SEGMENT], next, &cur);
        if (rc == -ENOENT)
            return 0;
        if (rc != 0)
            return fail(err, 500, "parent", "looking up segment \"%s\" failed", next);
        json_t *p = json_object_get(cur, "parent");
        int more = json_is_string(p);
        if (more)
            str_copy(next, sizeof next, json_string_value(p));
        json_decref(cur);
        if (!more)
            return 0;
    }
}

static int check_installation(const json_t *obj, const json_t *current, const struct reg_lookup *lk,
                              struct reg_error *err)
{
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    const char *dir = json_string_value(json_object_get(obj, "direction"));
    static const struct {
        const char *kind, *dirs;
    } allowed[] = {
        {"heat_pump", "consumption"},
        {"storage_heater", "consumption"},
        {"air_conditioning", "consumption"},
        {"wallbox", "consumption bidirectional"},
        {"pv", "production"},
        {"chp", "production"},
    };
    (void)lk;
    (void)current;

    for (size_t i = 0; i < ARRAY_LEN(allowed); i++) {
        if (strcmp(kind, allowed[i].kind) == 0 && strstr(allowed[i].dirs, dir) == NULL)
            return fail(err, 422, "direction", "a %s must have direction %s", kind,
                        allowed[i].dirs);
    }
    if (json_is_true(json_object_get(obj, "sec14a"))) {
        if (strcmp(dir, "production") == 0)
            return fail(err, 422, "sec14a", "only consumers can be controllable under §14a EnWG");
        if (json_integer_value(json_object_get(obj, "rated_power_w")) <= 4200)
            return fail(err, 422, "sec14a",
                        "§14a EnWG applies to devices above 4.2 kW; rated_power_w is %lld",
                        (long long)json_integer_value(json_object_get(obj, "rated_power_w")));
    }
    return 0;
}

json_t *reg_value_from_text(const struct reg_field *f, const char *text, char *msg, size_t mlen)
{
    long long v;

    if (*text == '\0')
        return json_null();
    switch (f->type) {
    case RT_BOOL:
        if (strcasecmp(text, "true") == 0 || strcmp(text, "1") == 0)
            return json_true();
        if (strcasecmp(text, "false") == 0 || strcmp(text, "0") == 0)
            return json_false();
        snprintf(msg, mlen, "%s: expected true or false", f->name);
        return NULL;
    case RT_INT:
        if (parse_ll(text, -(1LL << 53), 1LL << 53, &v) != 0) {
            snprintf(msg, mlen, "%s: expected an integer", f->name);
            return NULL;
        }
        return json_integer(v);
    case RT_ENUMSET: {
        json_t *a = json_array();
        const char *p = text;
        while (p) {
            const char *bar = strchr(p, '|');
            size_t n = bar ? (size_t)(bar - p) : strlen(p);
            json_array_append_new(a, json_stringn(p, n));
            p = bar ? bar + 1 : NULL;
        }
        return a;
    }
    default: {
        json_t *s = json_string(text);
        if (s == NULL)
            snprintf(msg, mlen, "%s: not valid UTF-8", f->name);
        return s;
    }
    }
}

json_t *reg_filter_value(const struct reg_field *f, const char *text, char *msg, size_t mlen)
{
    struct reg_error err;
    json_t *v = reg_value_from_text(f, text, msg, mlen), *norm = NULL;

    if (v == NULL || json_is_null(v))
        return v;
    /* The checks of a body value, except that a reference need not exist. */
    if (check_value(f, v, NULL, &norm, &err) != 0) {
        snprintf(msg, mlen, "%s: %s", f->name, err.detail);
        json_decref(v);
        return NULL;
    }
    json_decref(v);
    return norm;
}
