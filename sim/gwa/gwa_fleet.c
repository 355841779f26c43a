/*
 * gwa_fleet.c - the gateways and devices of one GWA, scanned out of a
 * registry import document; see gwa_fleet.h.
 */
#include "gwa/gwa_fleet.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/jsonx.h"
#include "common/util.h"
#include "registry/registry.h"

#define MAX_DEPTH 64         /* nesting the skipper follows */
#define MAX_ITEMS (1u << 24) /* kept gateways or devices */
#define NO_SLOT   0u         /* index slots hold position + 1 */

struct idx {
    uint32_t *slot;
    size_t mask;
};

struct gwa_fleet {
    struct gwa_gw *gws;
    size_t ngws, capgws;
    struct gwa_dev *devs;
    size_t ndevs, capdevs;
    struct idx gw_idx, dev_idx;
};

/* --- the index: open addressing over positions in an array ----------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static const char *gw_key(const struct gwa_fleet *f, uint32_t i)
{
    return f->gws[i].id;
}

static const char *dev_key(const struct gwa_fleet *f, uint32_t i)
{
    return f->devs[i].id;
}

typedef const char *(*key_fn)(const struct gwa_fleet *f, uint32_t i);

/* Build an index over 'n' entries at half load at most. Returns 0, -ENOMEM,
 * or -EEXIST with '*dup' set to the position of a repeated key. */
static int idx_build(const struct gwa_fleet *f, struct idx *x, size_t n, key_fn key, size_t *dup)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    x->slot = calloc(cap, sizeof *x->slot);
    if (x->slot == NULL)
        return -ENOMEM;
    x->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        const char *k = key(f, (uint32_t)i);
        size_t s = (size_t)hash_str(k) & x->mask;
        for (; x->slot[s] != NO_SLOT; s = (s + 1) & x->mask) {
            if (strcmp(key(f, x->slot[s] - 1), k) == 0) {
                *dup = i;
                return -EEXIST;
            }
        }
        x->slot[s] = (uint32_t)i + 1;
    }
    return 0;
}

static long idx_find(const struct gwa_fleet *f, const struct idx *x, key_fn key, const char *k)
{
    if (x->slot == NULL)
        return -1;
    for (size_t s = (size_t)hash_str(k) & x->mask; x->slot[s] != NO_SLOT; s = (s + 1) & x->mask)
        if (strcmp(key(f, x->slot[s] - 1), k) == 0)
            return (long)(x->slot[s] - 1);
    return -1;
}

/* --- the scanner: value extents without building a tree ---------------------- */

struct scan {
    const char *buf, *p, *end;
    const char *why; /* static reason after a failure */
};

static int fail(struct scan *s, const char *why)
{
    s->why = why;
    return -EINVAL;
}

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int expect(struct scan *s, char c, const char *why)
{
    skip_ws(s);
    if (s->p == s->end || *s->p != c)
        return fail(s, why);
    s->p++;
    return 0;
}

/* At a '"': move past the closing quote. */
static int skip_string(struct scan *s)
{
    for (s->p++; s->p < s->end;) {
        unsigned char c = (unsigned char)*s->p++;
        if (c == '"')
            return 0;
        if (c < 0x20)
            return fail(s, "control character in a string");
        if (c == '\\') {
            if (s->p == s->end)
                break;
            s->p++;
        }
    }
    return fail(s, "unterminated string");
}

/* Move past one value. Nesting is matched with a stack; the content of
 * skipped values is checked only as far as strings and brackets go. */
static int skip_value(struct scan *s)
{
    char stack[MAX_DEPTH];
    int depth = 0;

    skip_ws(s);
    if (s->p == s->end)
        return fail(s, "a value is missing");
    do {
        char c = *s->p;
        if (c == '"') {
            if (skip_string(s) != 0)
                return -EINVAL;
        } else if (c == '{' || c == '[') {
            if (depth == MAX_DEPTH)
                return fail(s, "nested too deeply");
            stack[depth++] = c == '{' ? '}' : ']';
            s->p++;
        } else if (c == '}' || c == ']') {
            if (depth == 0 || stack[depth - 1] != c)
                return fail(s, "unbalanced brackets");
            depth--;
            s->p++;
        } else if (depth == 0) {
            const char *start = s->p;
            while (s->p < s->end && !strchr(",]} \t\r\n", *s->p))
                s->p++;
            if (s->p == start)
                return fail(s, "unexpected character");
        } else {
            s->p++;
        }
    } while (depth > 0 && s->p < s->end);
    return depth == 0 ? 0 : fail(s, "unterminated array or object");
}

struct span {
    const char *b, *e; /* NULL when absent */
};

/* The top-level object: find the "smgws" and "devices" members. Keys are
 * compared as written (the import documents we make never escape them). */
static int scan_top(struct scan *s, struct span *smgws, struct span *devices)
{
    if (expect(s, '{', "the document is not a JSON object") != 0)
        return -EINVAL;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
    } else {
        for (;;) {
            skip_ws(s);
            if (s->p == s->end || *s->p != '"')
                return fail(s, "expected a member name");
            const char *k = s->p + 1;
            if (skip_string(s) != 0)
                return -EINVAL;
            size_t klen = (size_t)(s->p - 1 - k);
            if (expect(s, ':', "expected ':' after a member name") != 0)
                return -EINVAL;
            skip_ws(s);
            const char *v = s->p;
            if (skip_value(s) != 0)
                return -EINVAL;
            struct span *t = klen == 5 && memcmp(k, "smgws", 5) == 0     ? smgws
                             : klen == 7 && memcmp(k, "devices", 7) == 0 ? devices
                                                                         : NULL;
            if (t && t->b)
                return fail(s, "a section appears twice");
            if (t) {
                t->b = v;
                t->e = s->p;
            }
            skip_ws(s);
            if (s->p < s->end && *s->p == ',') {
                s->p++;
                continue;
            }
            if (expect(s, '}', "expected ',' or '}' after a member") != 0)
                return -EINVAL;
            break;
        }
    }
    skip_ws(s);
    return s->p == s->end ? 0 : fail(s, "bytes after the document");
}

/* --- loading ------------------------------------------------------------------ */

struct loader {
    struct gwa_fleet *f;
    const char *path;
    const char *gwa_id;
    const char *buf;
    const char *section;
    char *err;
    size_t errlen;
};

static size_t line_of(const char *buf, const char *at)
{
    size_t line = 1;
    for (const char *p = buf; p < at; p++)
        line += *p == '\n';
    return line;
}

static int item_fail(struct loader *l, const char *at, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int item_fail(struct loader *l, const char *at, size_t i, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(l->err, l->errlen, "%s:%zu: %s[%zu]: %s", l->path, line_of(l->buf, at), l->section, i,
             why);
    return -EINVAL;
}

/* The string member 'name' of element 'obj', or NULL after filling 'err'. */
static const char *member(struct loader *l, json_t *obj, const char *name, const char *at, size_t i)
{
    const char *v = json_string_value(json_object_get(obj, name));
    if (v == NULL)
        item_fail(l, at, i, "\"%s\" must be a string", name);
    return v;
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    if (n >= MAX_ITEMS)
        return -E2BIG;
    size_t nc = *cap ? *cap * 2 : 1024;
    void *p = realloc(*arr, nc * size);
    if (p == NULL)
        return -ENOMEM;
    *arr = p;
    *cap = nc;
    return 0;
}

static int take_smgw(struct loader *l, json_t *o, const char *at, size_t i)
{
    const char *id = member(l, o, "id", at, i), *gwa = id ? member(l, o, "gwa", at, i) : NULL;
    if (gwa == NULL)
        return -EINVAL;
    if (strcmp(gwa, l->gwa_id) != 0)
        return 0;
    if (!reg_is_smgw_id(id))
        return item_fail(l, at, i, "\"%.40s\" is not a gateway id such as EABC0012345678", id);
    struct gwa_fleet *f = l->f;
    int rc = grow((void **)&f->gws, &f->capgws, f->ngws, sizeof *f->gws);
    if (rc != 0)
        return rc == -E2BIG ? item_fail(l, at, i, "too many gateways") : rc;
    struct gwa_gw *g = &f->gws[f->ngws++];
    memset(g, 0, sizeof *g);
    memcpy(g->id, id, sizeof g->id);
    return 0;
}

static int take_device(struct loader *l, json_t *o, const char *at, size_t i)
{
    const char *id = member(l, o, "id", at, i), *smgw = id ? member(l, o, "smgw", at, i) : NULL;
    if (smgw == NULL)
        return -EINVAL;
    struct gwa_fleet *f = l->f;
    struct gwa_gw *g = gwa_fleet_gateway(f, smgw);
    if (g == NULL)
        return 0;
    if (!reg_is_generic_id(id))
        return item_fail(l, at, i, "\"%.100s\" is not a device id", id);
    int rc = grow((void **)&f->devs, &f->capdevs, f->ndevs, sizeof *f->devs);
    if (rc != 0)
        return rc == -E2BIG ? item_fail(l, at, i, "too many devices") : rc;
    struct gwa_dev *d = &f->devs[f->ndevs];
    d->id = strdup(id);
    d->gw = g;
    d->denied = 0;
    if (d->id == NULL)
        return -ENOMEM;
    f->ndevs++;
    return 0;
}

typedef int (*take_fn)(struct loader *l, json_t *o, const char *at, size_t i);

/* Parse each element of the array in 'sp' on its own and pass it on. */
static int each_item(struct loader *l, const struct span *sp, const char *section, take_fn take)
{
    struct scan s = {l->buf, sp->b, sp->e, NULL};
    char msg[200];
    size_t i = 0;

    l->section = section;
    if (sp->b == NULL)
        return 0;
    if (*s.p != '[') {
        snprintf(l->err, l->errlen, "%s:%zu: \"%s\" must be an array", l->path,
                 line_of(l->buf, s.p), section);
        return -EINVAL;
    }
    s.p++;
    skip_ws(&s);
    if (s.p < s.end && *s.p == ']')
        return 0;
    for (;; i++) {
        skip_ws(&s);
        const char *at = s.p;
        if (skip_value(&s) != 0)
            return item_fail(l, s.p, i, "%s", s.why);
        json_t *o = NULL;
        if (jsonx_parse(at, (size_t)(s.p - at), &jsonx_api_limits, &o, msg, sizeof msg) != 0)
            return item_fail(l, at, i, "%s", msg);
        int rc = json_is_object(o) ? take(l, o, at, i) : item_fail(l, at, i, "not an object");
        json_decref(o);
        if (rc != 0)
            return rc;
        skip_ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        if (s.p < s.end && *s.p == ']')
            return 0;
        return item_fail(l, s.p, i, "expected ',' or ']' after the element");
    }
}

static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    char *buf = NULL;
    size_t got = 0;

    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (st.st_size > GWA_FLEET_MAX_FILE) {
        rc = -EFBIG;
        snprintf(err, errlen, "%s: larger than %lld bytes", path, GWA_FLEET_MAX_FILE);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = -ENOMEM;
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "file shrank");
            goto out;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

static int build_index(struct loader *l, struct idx *x, size_t n, key_fn key, const char *what)
{
    size_t dup = 0;
    int rc = idx_build(l->f, x, n, key, &dup);
    if (rc == -EEXIST)
        snprintf(l->err, l->errlen, "%s: %s \"%s\" appears twice", l->path, what,
                 key(l->f, (uint32_t)dup));
    else if (rc != 0)
        snprintf(l->err, l->errlen, "%s: out of memory", l->path);
    return rc == -EEXIST ? -EINVAL : rc;
}

int gwa_fleet_load(const char *path, const char *gwa_id, struct gwa_fleet **out, char *err,
                   size_t errlen)
{
    struct span smgws = {NULL, NULL}, devices = {NULL, NULL};
    struct loader l = {NULL, path, gwa_id, NULL, NULL, err, errlen};
    char *buf = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if ((rc = read_file(path, &buf, &len, err, errlen)) != 0)
        return rc;
    l.buf = buf;
    l.f = calloc(1, sizeof *l.f);
    if (l.f == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    struct scan s = {buf, buf, buf + len, NULL};
    if (scan_top(&s, &smgws, &devices) != 0) {
        snprintf(err, errlen, "%s:%zu: %s", path, line_of(buf, s.p), s.why);
        rc = -EINVAL;
        goto out;
    }
    /* Gateways first, so that devices can be matched whatever the order of
     * the sections in the file. */
    if ((rc = each_item(&l, &smgws, "smgws", take_smgw)) != 0 ||
        (rc = build_index(&l, &l.f->gw_idx, l.f->ngws, gw_key, "gateway")) != 0 ||
        (rc = each_item(&l, &devices, "devices", take_device)) != 0 ||
        (rc = build_index(&l, &l.f->dev_idx, l.f->ndevs, dev_key, "device")) != 0)
        goto out;
    *out = l.f;
    l.f = NULL;
out:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "%s: out of memory", path);
    gwa_fleet_free(l.f);
    free(buf);
    return rc;
}

void gwa_fleet_free(struct gwa_fleet *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->ndevs; i++)
        free(f->devs[i].id);
    free(f->devs);
    free(f->gws);
    free(f->gw_idx.slot);
    free(f->dev_idx.slot);
    free(f);
}

struct gwa_gw *gwa_fleet_gateway(const struct gwa_fleet *f, const char *id)
{
    long i = idx_find(f, &f->gw_idx, gw_key, id);
    return i < 0 ? NULL : &f->gws[i];
}

struct gwa_dev *gwa_fleet_device(const struct gwa_fleet *f, const char *id)
{
    long i = idx_find(f, &f->dev_idx, dev_key, id);
    return i < 0 ? NULL : &f->devs[i];
}

int gwa_fleet_deny(struct gwa_fleet *f, const char *id)
{
    struct gwa_dev *d = gwa_fleet_device(f, id);
    if (d == NULL)
        return -ENOENT;
    d->denied = 1;
    return 0;
}

size_t gwa_fleet_gateways(const struct gwa_fleet *f)
{
    return f->ngws;
}

size_t gwa_fleet_devices(const struct gwa_fleet *f)
{
    return f->ndevs;
}
