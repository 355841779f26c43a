/*
 * cosem.c - parsing and checking the COSEM-XML meter data document; see
 * cosem.h and docs/protocols/meter-data.md.
 */
#include "meter/cosem.h"

#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "registry/registry.h"

/* What a capture object may measure: medium, OBIS value groups A, C and D
 * (B 0..64 and E 0..63 free, F 255) and the units allowed for it. */
struct quantity {
    enum cosem_medium medium;
    uint8_t a, c, d;
    uint8_t unit1, unit2;
};

static const struct quantity quantities[] = {
    {COSEM_ELECTRICITY, 1, 1, 8, COSEM_UNIT_WH, COSEM_UNIT_WH}, /* energy taken */
    {COSEM_ELECTRICITY, 1, 2, 8, COSEM_UNIT_WH, COSEM_UNIT_WH}, /* energy fed in */
    {COSEM_ELECTRICITY, 1, 1, 7, COSEM_UNIT_W, COSEM_UNIT_W},   /* power taken */
    {COSEM_ELECTRICITY, 1, 2, 7, COSEM_UNIT_W, COSEM_UNIT_W},   /* power fed in */
    {COSEM_HEAT, 6, 1, 0, COSEM_UNIT_WH, COSEM_UNIT_J},         /* heat energy */
    {COSEM_GAS, 7, 3, 0, COSEM_UNIT_M3, COSEM_UNIT_M3},         /* gas volume */
    {COSEM_WATER, 8, 1, 0, COSEM_UNIT_M3, COSEM_UNIT_M3},       /* cold water volume */
    {COSEM_WATER, 9, 1, 0, COSEM_UNIT_M3, COSEM_UNIT_M3},       /* warm water volume */
};

static const char *const media[] = {"electricity", "heat", "gas", "water"};

const char *cosem_medium_name(enum cosem_medium m)
{
    return (unsigned)m < COSEM_NMEDIA ? media[m] : "?";
}

const char *cosem_unit_name(int unit)
{
    switch (unit) {
    case COSEM_UNIT_WH:
        return "Wh";
    case COSEM_UNIT_W:
        return "W";
    case COSEM_UNIT_M3:
        return "m3";
    case COSEM_UNIT_J:
        return "J";
    default:
        return NULL;
    }
}

/* --- OBIS --------------------------------------------------------------------------------- */

static int obis_group(const char **p, char end, uint8_t *out)
{
    unsigned v = 0;
    int n = 0;
    while (**p >= '0' && **p <= '9' && n < 3) {
        v = v * 10 + (unsigned)(**p - '0');
        (*p)++;
        n++;
    }
    if (n == 0 || v > 255 || **p != end)
        return -EINVAL;
    if (end)
        (*p)++;
    *out = (uint8_t)v;
    return 0;
}

int cosem_obis_parse(const char *s, uint8_t out[6])
{
    const char *p = s;
    if (obis_group(&p, '-', &out[0]) || obis_group(&p, ':', &out[1]) ||
        obis_group(&p, '.', &out[2]) || obis_group(&p, '.', &out[3]))
        return -EINVAL;
    const char *star = strchr(p, '*');
    if (star == NULL) {
        out[5] = 255;
        return obis_group(&p, '\0', &out[4]);
    }
    if (obis_group(&p, '*', &out[4]))
        return -EINVAL;
    return obis_group(&p, '\0', &out[5]);
}

char *cosem_obis_format(const uint8_t o[6], char *buf, size_t len)
{
    if (o[5] == 255)
        snprintf(buf, len, "%u-%u:%u.%u.%u", o[0], o[1], o[2], o[3], o[4]);
    else
        snprintf(buf, len, "%u-%u:%u.%u.%u*%u", o[0], o[1], o[2], o[3], o[4], o[5]);
    return buf;
}

/* --- the walk ----------------------------------------------------------------------------- */

struct walk {
    int64_t now_ms;
    struct cosem_doc *doc;
    size_t cap_points, cap_readings;
    char *err;
    size_t errlen;
};

/* A capture object of the profile being read. */
struct object {
    unsigned index;
    uint8_t obis[6];
    int8_t scaler;
    uint8_t unit;
};

static int fail(struct walk *w, const xmlNode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct walk *w, const xmlNode *at, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at)
        snprintf(w->err, w->errlen, "line %ld: %s", xmlGetLineNo(at), msg);
    else
        snprintf(w->err, w->errlen, "%s", msg);
    for (char *c = w->err; *c; c++) /* the sender's bytes, quoted, may hold anything */
        if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f)
            *c = '?';
    return -EINVAL;
}

static bool is_element(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* The next element among the children, skipping whitespace and comments;
 * anything else (text, CDATA, an entity reference, ...) is an error. */
static int next_element(struct walk *w, xmlNode **cur, xmlNode **out)
{
    for (; *cur; *cur = (*cur)->next) {
        xmlNode *n = *cur;
        if (n->type == XML_COMMENT_NODE)
            continue;
        if (n->type == XML_TEXT_NODE) {
            for (const xmlChar *c = n->content; c && *c; c++)
                if (*c != ' ' && *c != '\t' && *c != '\n' && *c != '\r')
                    return fail(w, n->parent, "text where an element belongs");
            continue;
        }
        if (n->type != XML_ELEMENT_NODE)
            return fail(w, n->parent ? n->parent : n, "unexpected XML node (type %d)",
                        (int)n->type);
        if (n->ns == NULL || strcmp((const char *)n->ns->href, COSEM_NS) != 0)
            return fail(w, n, "element <%s> is not in the namespace %s", (const char *)n->name,
                        COSEM_NS);
        *out = n;
        *cur = n->next;
        return 1;
    }
    *out = NULL;
    return 0;
}

/* Every attribute of 'n' must be in 'allowed' (NULL-terminated). */
static int only_attrs(struct walk *w, const xmlNode *n, const char *const *allowed)
{
    for (const xmlAttr *a = n->properties; a; a = a->next) {
        bool ok = false;
        for (size_t i = 0; a->ns == NULL && allowed[i] && !ok; i++)
            ok = strcmp((const char *)a->name, allowed[i]) == 0;
        if (!ok)
            return fail(w, n, "unknown attribute '%s' on <%s>", (const char *)a->name,
                        (const char *)n->name);
    }
    return 0;
}

/* The value of attribute 'name' into 'buf' (NUL-terminated, no control
 * characters). -EINVAL when missing (unless optional: then "") or too
 * long. */
static int attr(struct walk *w, const xmlNode *n, const char *name, bool optional, char *buf,
                size_t len)
{
    xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
    buf[0] = '\0';
    if (v == NULL)
        return optional ? 0
                        : fail(w, n, "<%s> needs the attribute '%s'", (const char *)n->name, name);
    size_t l = strlen((const char *)v);
    int rc = 0;
    if (l == 0 || l >= len)
        rc = fail(w, n, "attribute '%s' must be 1..%zu characters", name, len - 1);
    for (size_t i = 0; rc == 0 && i < l; i++)
        if (v[i] < 0x20 || v[i] == 0x7f)
            rc = fail(w, n, "attribute '%s' holds a control character", name);
    if (rc == 0)
        memcpy(buf, v, l + 1);
    xmlFree(v);
    return rc;
}

static int attr_int(struct walk *w, const xmlNode *n, const char *name, long long min,
                    long long max, long long *out)
{
    char buf[32];
    int rc = attr(w, n, name, false, buf, sizeof buf);
    if (rc != 0)
        return rc;
    if (parse_ll(buf, min, max, out) != 0)
        return fail(w, n, "attribute '%s' must be an integer in %lld..%lld", name, min, max);
    return 0;
}

static int attr_time(struct walk *w, const xmlNode *n, const char *name, int64_t *out)
{
    char buf[64];
    int rc = attr(w, n, name, false, buf, sizeof buf);
    if (rc != 0)
        return rc;
    if (time_parse_ms(buf, out) != 0)
        return fail(w, n, "attribute '%s' is not an RFC 3339 time: \"%s\"", name, buf);
    if (*out > w->now_ms + COSEM_FUTURE_MS)
        return fail(w, n, "time %s lies in the future", buf);
    if (*out < w->now_ms - COSEM_PAST_MS)
        return fail(w, n, "time %s is older than 400 days", buf);
    return 0;
}

static const struct quantity *quantity_of(const uint8_t o[6])
{
    for (size_t i = 0; i < ARRAY_LEN(quantities); i++) {
        const struct quantity *q = &quantities[i];
        if (q->a == o[0] && q->c == o[2] && q->d == o[3] && o[1] <= 64 && o[4] <= 63 && o[5] == 255)
            return q;
    }
    return NULL;
}

static int capture_object(struct walk *w, const xmlNode *n, enum cosem_medium medium,
                          struct object *obj)
{
    static const char *const allowed[] = {"index", "obis", "scaler", "unit", NULL};
    char obis[32], text[24];
    long long index, scaler, unit;
    int rc;
    if ((rc = only_attrs(w, n, allowed)) != 0 ||
        (rc = attr_int(w, n, "index", 1, COSEM_MAX_OBJECTS, &index)) != 0 ||
        (rc = attr(w, n, "obis", false, obis, sizeof obis)) != 0 ||
        (rc = attr_int(w, n, "scaler", -9, 9, &scaler)) != 0 ||
        (rc = attr_int(w, n, "unit", 1, 255, &unit)) != 0)
        return rc;
    if (cosem_obis_parse(obis, obj->obis) != 0)
        return fail(w, n, "\"%s\" is not an OBIS code (A-B:C.D.E)", obis);
    const struct quantity *q = quantity_of(obj->obis);
    if (q == NULL)
        return fail(w, n, "OBIS %s is not a quantity this interface takes",
                    cosem_obis_format(obj->obis, text, sizeof text));
    if (q->medium != medium)
        return fail(w, n, "OBIS %s measures %s, the metering point is %s", obis,
                    cosem_medium_name(q->medium), cosem_medium_name(medium));
    if (unit != q->unit1 && unit != q->unit2) {
        const char *u1 = cosem_unit_name(q->unit1), *u2 = cosem_unit_name(q->unit2);
        return fail(w, n, "unit %lld does not fit OBIS %s (expected %d = %s%s%s)", unit, obis,
                    q->unit1, u1, q->unit2 != q->unit1 ? " or that of " : "",
                    q->unit2 != q->unit1 ? u2 : "");
    }
    obj->index = (unsigned)index;
    obj->scaler = (int8_t)scaler;
    obj->unit = (uint8_t)unit;
    return 0;
}

static int add_reading(struct walk *w, const xmlNode *at, const struct cosem_reading *r)
{
    struct cosem_doc *d = w->doc;
    if (d->nreadings >= COSEM_MAX_READINGS)
        return fail(w, at, "more than %d values in one document", COSEM_MAX_READINGS);
    if (d->nreadings == w->cap_readings) {
        size_t nc = w->cap_readings ? w->cap_readings * 2 : 256;
        struct cosem_reading *p = realloc(d->readings, nc * sizeof *p);
        if (p == NULL)
            return -ENOMEM;
        d->readings = p;
        w->cap_readings = nc;
    }
    d->readings[d->nreadings++] = *r;
    return 0;
}

static int entry(struct walk *w, xmlNode *n, uint32_t point, const struct object *objs,
                 size_t nobjs, int64_t period_ms, int64_t *last_ms)
{
    static const char *const allowed[] = {"time", "status", NULL};
    static const char *const value_attrs[] = {"index", NULL};
    struct cosem_reading r = {.point = point};
    char status[16];
    bool seen[COSEM_MAX_OBJECTS + 1] = {false};
    long long st = 0;
    int rc;

    if ((rc = only_attrs(w, n, allowed)) != 0 || (rc = attr_time(w, n, "time", &r.time_ms)) != 0 ||
        (rc = attr(w, n, "status", true, status, sizeof status)) != 0)
        return rc;
    if (status[0] && parse_ll(status, 0, UINT32_MAX, &st) != 0)
        return fail(w, n, "status must be an integer in 0..%u", UINT32_MAX);
    r.status = (uint32_t)st;
    if (period_ms && r.time_ms % period_ms != 0)
        return fail(w, n, "capture time is not on the profile's period of %lld s",
                    (long long)(period_ms / 1000));
    if (r.time_ms <= *last_ms)
        return fail(w, n, "entries must follow each other in time");
    *last_ms = r.time_ms;

    xmlNode *cur = n->children, *v;
    while ((rc = next_element(w, &cur, &v)) == 1) {
        long long index, value;
        if (!is_element(v, "Value"))
            return fail(w, v, "<Entry> holds <Value> elements, not <%s>", (const char *)v->name);
        if ((rc = only_attrs(w, v, value_attrs)) != 0 ||
            (rc = attr_int(w, v, "index", 1, COSEM_MAX_OBJECTS, &index)) != 0)
            return rc;
        const struct object *o = NULL;
        for (size_t i = 0; i < nobjs; i++)
            if (objs[i].index == (unsigned)index)
                o = &objs[i];
        if (o == NULL)
            return fail(w, v, "no capture object with index %lld", index);
        if (seen[index])
            return fail(w, v, "index %lld twice in one entry", index);
        seen[index] = true;
        char text[32];
        xmlNode *t = v->children;
        if (t == NULL || t->type != XML_TEXT_NODE || t->next != NULL || t->content == NULL ||
            strlen((const char *)t->content) >= sizeof text)
            return fail(w, v, "<Value> holds one integer");
        str_copy(text, sizeof text, (const char *)t->content);
        if (parse_ll(text, 0, INT64_MAX, &value) != 0)
            return fail(w, v, "\"%s\" is not a non-negative integer", text);
        r.value = value;
        memcpy(r.obis, o->obis, sizeof r.obis);
        r.scaler = o->scaler;
        r.unit = o->unit;
        if ((rc = add_reading(w, v, &r)) != 0)
            return rc;
    }
    return rc;
}

static int profile(struct walk *w, xmlNode *n, uint32_t point, enum cosem_medium medium)
{
    static const char *const allowed[] = {"period", NULL};
    static const char *const none[] = {NULL};
    struct object objs[COSEM_MAX_OBJECTS];
    size_t nobjs = 0;
    long long period = 0;
    char tmp[16];
    int rc;

    if ((rc = only_attrs(w, n, allowed)) != 0 ||
        (rc = attr(w, n, "period", true, tmp, sizeof tmp)) != 0)
        return rc;
    if (tmp[0] && (parse_ll(tmp, 60, 86400, &period) != 0 || 86400 % period != 0))
        return fail(w, n, "period must divide a day, 60..86400 s");

    xmlNode *cur = n->children, *c, *b, *o, *e;
    if ((rc = next_element(w, &cur, &c)) < 0)
        return rc;
    if (rc == 0 || !is_element(c, "CaptureObjects"))
        return fail(w, n, "<ProfileGeneric> starts with <CaptureObjects>");
    if ((rc = only_attrs(w, c, none)) != 0)
        return rc;
    xmlNode *oc = c->children;
    while ((rc = next_element(w, &oc, &o)) == 1) {
        if (!is_element(o, "CaptureObject"))
            return fail(w, o, "<CaptureObjects> holds <CaptureObject> elements");
        if (nobjs == COSEM_MAX_OBJECTS)
            return fail(w, o, "more than %d capture objects", COSEM_MAX_OBJECTS);
        if ((rc = capture_object(w, o, medium, &objs[nobjs])) != 0)
            return rc;
        for (size_t i = 0; i < nobjs; i++) {
            if (objs[i].index == objs[nobjs].index)
                return fail(w, o, "index %u twice", objs[i].index);
            if (memcmp(objs[i].obis, objs[nobjs].obis, 6) == 0)
                return fail(w, o, "the same OBIS code twice in one profile");
        }
        nobjs++;
    }
    if (rc < 0)
        return rc;
    if (nobjs == 0)
        return fail(w, c, "<CaptureObjects> is empty");
    if ((rc = next_element(w, &cur, &b)) < 0)
        return rc;
    if (rc == 0 || !is_element(b, "Buffer"))
        return fail(w, n, "<CaptureObjects> is followed by <Buffer>");
    if ((rc = only_attrs(w, b, none)) != 0)
        return rc;
    int64_t last = INT64_MIN;
    xmlNode *ec = b->children;
    while ((rc = next_element(w, &ec, &e)) == 1) {
        if (!is_element(e, "Entry"))
            return fail(w, e, "<Buffer> holds <Entry> elements");
        if ((rc = entry(w, e, point, objs, nobjs, period * 1000, &last)) != 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    if ((rc = next_element(w, &cur, &b)) != 0)
        return rc < 0 ? rc : fail(w, b, "<ProfileGeneric> ends after <Buffer>");
    return 0;
}

static int metering_point(struct walk *w, xmlNode *n)
{
    static const char *const allowed[] = {"id", "meter", "medium", NULL};
    struct cosem_doc *d = w->doc;
    char medium[16];
    int rc;

    if (d->npoints == COSEM_MAX_POINTS)
        return fail(w, n, "more than %d metering points", COSEM_MAX_POINTS);
    if (d->npoints == w->cap_points) {
        size_t nc = w->cap_points ? w->cap_points * 2 : 8;
        struct cosem_point *p = realloc(d->points, nc * sizeof *p);
        if (p == NULL)
            return -ENOMEM;
        d->points = p;
        w->cap_points = nc;
    }
    struct cosem_point *p = &d->points[d->npoints];
    memset(p, 0, sizeof *p);
    if ((rc = only_attrs(w, n, allowed)) != 0 ||
        (rc = attr(w, n, "id", false, p->id, sizeof p->id)) != 0 ||
        (rc = attr(w, n, "meter", false, p->meter, sizeof p->meter)) != 0 ||
        (rc = attr(w, n, "medium", false, medium, sizeof medium)) != 0)
        return rc;
    if (!reg_is_metering_point(p->id))
        return fail(w, n, "\"%s\" is not a metering point id", p->id);
    if (!reg_is_generic_id(p->meter))
        return fail(w, n, "\"%s\" is not a meter id", p->meter);
    p->medium = COSEM_NMEDIA;
    for (int m = 0; m < COSEM_NMEDIA; m++)
        if (strcmp(medium, media[m]) == 0)
            p->medium = (enum cosem_medium)m;
    if (p->medium == COSEM_NMEDIA)
        return fail(w, n, "medium must be electricity, heat, gas or water, not \"%s\"", medium);
    for (size_t i = 0; i < d->npoints; i++)
        if (strcmp(d->points[i].id, p->id) == 0)
            return fail(w, n, "metering point %s twice", p->id);
    uint32_t idx = (uint32_t)d->npoints++;

    xmlNode *cur = n->children, *pg;
    size_t profiles = 0;
    while ((rc = next_element(w, &cur, &pg)) == 1) {
        if (!is_element(pg, "ProfileGeneric"))
            return fail(w, pg, "<MeteringPoint> holds <ProfileGeneric> elements");
        if ((rc = profile(w, pg, idx, p->medium)) != 0)
            return rc;
        profiles++;
    }
    if (rc < 0)
        return rc;
    return profiles ? 0 : fail(w, n, "<MeteringPoint> without a <ProfileGeneric>");
}

static int by_key(const void *a, const void *b)
{
    const struct cosem_reading *x = a, *y = b;
    if (x->point != y->point)
        return x->point < y->point ? -1 : 1;
    int c = memcmp(x->obis, y->obis, 6);
    if (c)
        return c;
    return (x->time_ms > y->time_ms) - (x->time_ms < y->time_ms);
}

static int walk_doc(struct walk *w, xmlDoc *xd)
{
    static const char *const allowed[] = {"id", "smgw", "created", NULL};
    struct cosem_doc *d = w->doc;
    xmlNode *root = xmlDocGetRootElement(xd), *mp;
    int rc;

    if (xd->intSubset || xd->extSubset)
        return fail(w, NULL, "a document type declaration is not allowed");
    if (root == NULL || !is_element(root, "MeterData"))
        return fail(w, root, "the document element must be <MeterData>");
    if (root->ns == NULL || strcmp((const char *)root->ns->href, COSEM_NS) != 0)
        return fail(w, root, "<MeterData> must be in the namespace %s", COSEM_NS);
    if ((rc = only_attrs(w, root, allowed)) != 0 ||
        (rc = attr(w, root, "id", false, d->id, sizeof d->id)) != 0 ||
        (rc = attr(w, root, "smgw", false, d->smgw, sizeof d->smgw)) != 0 ||
        (rc = attr_time(w, root, "created", &d->created_ms)) != 0)
        return rc;
    if (!reg_is_generic_id(d->id))
        return fail(w, root, "\"%s\" is not a document id ([A-Za-z0-9][A-Za-z0-9._:-]*)", d->id);
    if (!reg_is_smgw_id(d->smgw))
        return fail(w, root, "\"%s\" is not a gateway id", d->smgw);
    xmlNode *cur = root->children;
    while ((rc = next_element(w, &cur, &mp)) == 1) {
        if (!is_element(mp, "MeteringPoint"))
            return fail(w, mp, "<MeterData> holds <MeteringPoint> elements, not <%s>",
                        (const char *)mp->name);
        if ((rc = metering_point(w, mp)) != 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    if (d->npoints == 0)
        return fail(w, root, "no <MeteringPoint>");
    /* One value per metering point, quantity and time. */
    qsort(d->readings, d->nreadings, sizeof *d->readings, by_key);
    for (size_t i = 1; i < d->nreadings; i++) {
        if (by_key(&d->readings[i - 1], &d->readings[i]) == 0) {
            char o[24], t[40];
            const struct cosem_reading *r = &d->readings[i];
            return fail(w, NULL, "metering point %s has two values of %s at %s",
                        d->points[r->point].id, cosem_obis_format(r->obis, o, sizeof o),
                        time_format_ms(r->time_ms, t, sizeof t));
        }
    }
    return 0;
}

/* Whether the bytes hold a declaration "<!DOCTYPE" or "<!ENTITY". */
static bool has_declaration(const char *buf, size_t len)
{
    for (size_t i = 0; i + 8 <= len; i++)
        if (buf[i] == '<' && buf[i + 1] == '!' &&
            ((i + 9 <= len && memcmp(buf + i, "<!DOCTYPE", 9) == 0) ||
             memcmp(buf + i, "<!ENTITY", 8) == 0))
            return true;
    return false;
}

void cosem_doc_free(struct cosem_doc *d)
{
    if (d == NULL)
        return;
    free(d->points);
    free(d->readings);
    memset(d, 0, sizeof *d);
}

int cosem_parse(const char *buf, size_t len, int64_t now_ms, struct cosem_doc *out, char *err,
                size_t errlen)
{
    struct walk w = {.now_ms = now_ms, .doc = out, .err = err, .errlen = errlen};
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    if (len == 0)
        return fail(&w, NULL, "the document is empty");
    if (len > COSEM_MAX_BYTES)
        return fail(&w, NULL, "the document is larger than %u bytes", COSEM_MAX_BYTES);
    /* UTF-8 only (read as such whatever the document declares), so that
     * the scan below sees every declaration; then no DTD, hence no entity
     * of any kind, before libxml2 reads a byte. */
    if (len >= 2 && (((unsigned char)buf[0] == 0xfe && (unsigned char)buf[1] == 0xff) ||
                     ((unsigned char)buf[0] == 0xff && (unsigned char)buf[1] == 0xfe) ||
                     (buf[0] == 0 && buf[1] == 0)))
        return fail(&w, NULL, "the document must be UTF-8");
    if (has_declaration(buf, len))
        return fail(&w, NULL, "a document type declaration is not allowed");

    xmlParserCtxt *ctx = xmlNewParserCtxt();
    if (ctx == NULL)
        return -ENOMEM;
    xmlDoc *xd = xmlCtxtReadMemory(ctx, buf, (int)len, NULL, "UTF-8",
                                   XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    int rc;
    if (xd == NULL) {
        const xmlError *e = xmlCtxtGetLastError(ctx);
        char msg[200];
        str_copy(msg, sizeof msg, e && e->message ? e->message : "not well-formed");
        size_t l = strlen(msg);
        while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
            msg[--l] = '\0';
        for (char *c = msg; *c; c++) /* libxml2's messages may span lines */
            if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f)
                *c = ' ';
        rc = e ? fail(&w, NULL, "line %d: not well-formed XML: %s", e->line, msg)
               : fail(&w, NULL, "not well-formed XML");
    } else {
        rc = walk_doc(&w, xd);
        xmlFreeDoc(xd);
    }
    xmlFreeParserCtxt(ctx);
    if (rc != 0) {
        if (rc == -ENOMEM)
            snprintf(err, errlen, "out of memory");
        cosem_doc_free(out);
    }
    return rc;
}
