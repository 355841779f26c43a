/*
 * test_request.c - request bodies of request.h: a table of accepted bodies
 * with the canonical form each must give, a table of refused bodies with
 * the JSON pointer each must name, the checks against 'now' that restore
 * mode skips, limits counted in characters and intervals, and the round
 * trip through request_spec_json() for everything that is accepted.
 *
 * A case is a base body of one action plus an RFC 7396 merge patch (null
 * removes a member); in the tables a single quote stands for a double
 * quote. Table runners print every failing row by name before they fail.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/jsonx.h"
#include "common/util.h"
#include "request/request.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define SEC  INT64_C(1000)
#define MIN  (60 * SEC)
#define H    (60 * MIN)
#define DAY  (24 * H)
#define NOW  INT64_C(1795888800000) /* 2026-11-28T18:00:00Z, the 'now' of every case */
#define YEAR (365 * DAY)

/* --- bodies ---------------------------------------------------------------------- */

/* The base bodies, valid at NOW. */
#define LIMIT_F                                                                            \
    "'purpose':'grid','action':'limit','target':{'installation':'inst-1'},'value_w':4200," \
    "'window':{'end':'2026-11-28T19:00:00Z'}"
#define DIM_F                                                                                    \
    "'purpose':'grid','action':'dim','target':{'installation':'inst-1'},'window':{'duration_s':" \
    "3600}"
#define SWITCH_F                                                                      \
    "'purpose':'market','action':'switch','target':{'device':'dev-1'},'level':'off'," \
    "'window':{'start':'2026-11-28T20:00:00Z','end':'2026-11-28T21:00:00Z'}"
#define SCHED_F                                                                               \
    "'purpose':'market','action':'schedule','target':{'installation':'inst-1'},'intervals':[" \
    "{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':3000},"           \
    "{'start':'2026-11-28T19:15:00Z','end':'2026-11-28T19:30:00Z','level':'off'}]"
#define RELEASE_F                                                               \
    "'purpose':'market','action':'release','target':{'installation':'inst-1'}," \
    "'window':{'until_released':true}"

enum base { B_LIMIT, B_DIM, B_SWITCH, B_SCHED, B_RELEASE, B_RAW /* the patch is the body */ };

static const char *const bases[] = {
    [B_LIMIT] = "{" LIMIT_F "}", [B_DIM] = "{" DIM_F "}",         [B_SWITCH] = "{" SWITCH_F "}",
    [B_SCHED] = "{" SCHED_F "}", [B_RELEASE] = "{" RELEASE_F "}", [B_RAW] = NULL,
};

/* Pieces of canonical forms. */
#define C_INST   "'target':{'installation':'inst-1'}"
#define C_SEG    "'target':{'segment':'seg-1'"
#define C_W1     "'window':{'start':'2026-11-28T18:00:00.000Z','end':'2026-11-28T19:00:00.000Z'}"
#define C_W_SW   "'window':{'start':'2026-11-28T20:00:00.000Z','end':'2026-11-28T21:00:00.000Z'}"
#define C_LIMIT  "'purpose':'grid','action':'limit'," C_INST ",'value_w':4200,"
#define C_DIM    "'purpose':'grid','action':'dim',"
#define C_SWITCH "'purpose':'market','action':'switch','target':{'device':'dev-1'},"
#define C_SCHED  "'purpose':'market','action':'schedule'," C_INST ","
#define C_IVS                                                                               \
    "'intervals':[{'start':'2026-11-28T19:00:00.000Z','end':'2026-11-28T19:15:00.000Z',"    \
    "'value_w':3000},{'start':'2026-11-28T19:15:00.000Z','end':'2026-11-28T19:30:00.000Z'," \
    "'level':'off'}]"
#define C_RELEASE "'purpose':'market','action':'release'," C_INST ","

/* Ids at and over the limit of 96 characters. */
#define ID96                                                                                       \
    "A.b_c:d-A.b_c:d-A.b_c:d-A.b_c:d-A.b_c:d-A.b_c:d-A.b_c:d-A.b_c:d-A.b_c:d-A.b_c:d-A.b_c:d-A.b_" \
    "c:d-"
#define ID97 ID96 "x"
_Static_assert(sizeof ID96 == 97, "ID96 holds 96 characters");

/* Parse 's' with single quotes standing for double quotes, as the API does. */
static json_t *J(const char *s)
{
    size_t n = strlen(s);
    char *buf = malloc(n + 1), msg[200];
    json_t *j = NULL;
    assert_non_null(buf);
    for (size_t i = 0; i <= n; i++)
        buf[i] = s[i] == '\'' ? '"' : s[i];
    int rc = jsonx_parse(buf, n, &jsonx_api_limits, &j, msg, sizeof msg);
    free(buf);
    if (rc != 0)
        fail_msg("test body does not parse: %s: %s", msg, s);
    return j;
}

/* RFC 7396 merge patch of 'patch' into the object 'dst'. */
static void merge(json_t *dst, const json_t *patch)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v)
    {
        json_t *cur = json_object_get(dst, k);
        if (json_is_null(v)) {
            json_object_del(dst, k);
        } else if (json_is_object(v)) {
            if (!json_is_object(cur)) {
                cur = json_object();
                json_object_set_new(dst, k, cur);
            }
            merge(cur, v);
        } else {
            json_object_set_new(dst, k, json_deep_copy(v));
        }
    }
}

static json_t *make_body(enum base b, const char *patch)
{
    if (b == B_RAW)
        return J(patch);
    json_t *body = J(bases[b]), *p = J(patch);
    assert_true(json_is_object(p));
    merge(body, p);
    json_decref(p);
    return body;
}

static void print_json(const char *label, const json_t *j)
{
    char *s = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    print_message("      %s: %s\n", label, s ? s : "(null)");
    free(s);
}

/* --- checks ---------------------------------------------------------------------- */

/* A NUL-terminated, non-empty text of printable ASCII inside 'cap' bytes. */
static bool printable_in(const char *s, size_t cap, bool nonempty)
{
    const char *end = memchr(s, '\0', cap);
    if (end == NULL || (nonempty && end == s))
        return false;
    for (; s < end; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

/* The value at JSON pointer 'ptr' (RFC 6901) in 'doc', or NULL. */
static const json_t *pointer_get(const json_t *doc, const char *ptr)
{
    char tok[200];
    while (doc != NULL && *ptr == '/') {
        size_t n = 0;
        for (ptr++; *ptr != '\0' && *ptr != '/' && n + 1 < sizeof tok; ptr++) {
            if (ptr[0] == '~' && (ptr[1] == '0' || ptr[1] == '1'))
                tok[n++] = *++ptr == '0' ? '~' : '/';
            else
                tok[n++] = *ptr;
        }
        tok[n] = '\0';
        if (json_is_object(doc)) {
            doc = json_object_get(doc, tok);
        } else if (json_is_array(doc)) {
            char *e;
            unsigned long i = strtoul(tok, &e, 10);
            doc = tok[0] != '\0' && *e == '\0' ? json_array_get(doc, (size_t)i) : NULL;
        } else {
            doc = NULL;
        }
    }
    return *ptr == '\0' ? doc : NULL;
}

/* 'ptr' names a place in 'body': the body itself, a value in it, or a
 * member that is missing from an object that is there. */
static bool names_place(const json_t *body, const char *ptr)
{
    char parent[160];
    if (ptr[0] == '\0' || pointer_get(body, ptr) != NULL)
        return true;
    const char *slash = strrchr(ptr, '/');
    if (slash == NULL || (size_t)(slash - ptr) >= sizeof parent)
        return false;
    memcpy(parent, ptr, (size_t)(slash - ptr));
    parent[slash - ptr] = '\0';
    return json_is_object(pointer_get(body, parent));
}

/* Equal in every field that carries meaning; 'why' gets the first that is not. */
static bool spec_equal(const struct req_spec *a, const struct req_spec *b, const char **why)
{
#define SAME(f)         \
    if (a->f != b->f) { \
        *why = #f;      \
        return false;   \
    }
#define SAME_STR(f)                \
    if (strcmp(a->f, b->f) != 0) { \
        *why = #f;                 \
        return false;              \
    }
    SAME(purpose);
    SAME(act.action);
    SAME(cascade);
    SAME(target);
    SAME_STR(target_id);
    SAME(kinds);
    SAME(sec14a);
    SAME(act.start_ms);
    SAME(act.end_ms);
    SAME(act.has_dir);
    SAME(act.dir);
    SAME(act.value_w);
    SAME(act.level);
    SAME(act.nintervals);
    for (size_t i = 0; i < a->act.nintervals; i++) {
        SAME(intervals[i].start_ms);
        SAME(intervals[i].end_ms);
        SAME(intervals[i].is_level);
        SAME(intervals[i].level);
        SAME(intervals[i].has_dir);
        SAME(intervals[i].dir);
        SAME(intervals[i].value_w);
    }
    SAME(until_released);
    SAME(deadline_ms);
    SAME_STR(supersedes);
    SAME_STR(reason);
    SAME_STR(external_id);
#undef SAME
#undef SAME_STR
    return true;
}

/* act.intervals points into the spec's own array, or is NULL without intervals. */
static bool intervals_linked(const struct req_spec *s)
{
    return s->act.nintervals > 0 ? s->act.intervals == s->intervals : s->act.intervals == NULL;
}

/* request_spec_json() of 's' parses again in restore mode, now and three
 * years later, into an equal spec with the same canonical form. */
static bool round_trip(const char *name, const struct req_spec *s)
{
    static const int64_t nows[] = {NOW, NOW + 3 * YEAR};
    struct req_spec back;
    struct req_error err;
    const char *why = NULL;
    bool ok = true;
    json_t *c1 = request_spec_json(s);

    if (c1 == NULL) {
        print_message("  FAIL round trip \"%s\": request_spec_json() gave NULL\n", name);
        return false;
    }
    for (size_t i = 0; ok && i < COUNT(nows); i++) {
        int rc = request_parse(c1, nows[i], true, &back, &err);
        json_t *c2 = rc == 0 ? request_spec_json(&back) : NULL;
        if (rc != 0) {
            print_message("  FAIL round trip \"%s\": canonical form refused: %s: %s\n", name,
                          err.pointer, err.text);
            ok = false;
        } else if (!spec_equal(s, &back, &why)) {
            print_message("  FAIL round trip \"%s\": %s differs\n", name, why);
            ok = false;
        } else if (!intervals_linked(&back)) {
            print_message("  FAIL round trip \"%s\": act.intervals not linked\n", name);
            ok = false;
        } else if (c2 == NULL || !json_equal(c1, c2)) {
            print_message("  FAIL round trip \"%s\": canonical forms differ\n", name);
            print_json("first ", c1);
            print_json("second", c2);
            ok = false;
        }
        json_decref(c2);
    }
    json_decref(c1);
    return ok;
}

/* 'body' is refused at 'now' with 'pointer' and a reason. */
static bool refused(const char *name, const json_t *body, int64_t now, bool restore,
                    const char *pointer)
{
    struct req_spec s;
    struct req_error err;
    memset(&err, 0x5a, sizeof err); /* stale bytes: both fields must be written */
    int rc = request_parse(body, now, restore, &s, &err);
    bool ok = rc == -EINVAL && printable_in(err.pointer, sizeof err.pointer, false) &&
              printable_in(err.text, sizeof err.text, true) && strcmp(err.pointer, pointer) == 0 &&
              names_place(body, err.pointer);
    if (!ok) {
        bool term = memchr(err.pointer, '\0', sizeof err.pointer) &&
                    memchr(err.text, '\0', sizeof err.text);
        print_message("  FAIL refuse%s \"%s\": rc %d, pointer \"%s\" (want \"%s\"), text \"%s\"\n",
                      restore ? " (restore)" : "", name, rc, term ? err.pointer : "?", pointer,
                      term ? err.text : "?");
        print_json("body", body);
    }
    return ok;
}

/* 'body' is accepted at 'now'; the spec goes to 'out'. */
static bool accepted(const char *name, const json_t *body, int64_t now, bool restore,
                     struct req_spec *out)
{
    struct req_error err;
    memset(out, 0x5a, sizeof *out);
    int rc = request_parse(body, now, restore, out, &err);
    if (rc != 0) {
        print_message("  FAIL accept%s \"%s\": rc %d, %s: %s\n", restore ? " (restore)" : "", name,
                      rc, err.pointer, err.text);
        print_json("body", body);
        return false;
    }
    if (!intervals_linked(out)) {
        print_message("  FAIL accept \"%s\": act.intervals not linked\n", name);
        return false;
    }
    return true;
}

static void table_done(const char *table, int fails, size_t rows)
{
    if (fails > 0)
        fail_msg("%s: %d of %zu cases failed", table, fails, rows);
}

/* --- accepted bodies ------------------------------------------------------------- */

static const struct ok_case {
    const char *name;
    enum base base;
    const char *patch;
    const char *want; /* the canonical form */
} ok_cases[] = {
    /* clang-format off */
    /* limit */
    {"limit: installation, end", B_LIMIT, "{}", "{" C_LIMIT C_W1 "}"},
    {"limit: consumption", B_LIMIT, "{'direction':'consumption'}",
     "{" C_LIMIT "'direction':'consumption'," C_W1 "}"},
    {"limit: market, production, 0 W", B_LIMIT,
     "{'purpose':'market','direction':'production','value_w':0}",
     "{'purpose':'market','action':'limit'," C_INST ",'value_w':0,'direction':'production',"
     C_W1 "}"},
    {"limit: 1000000000 W", B_LIMIT, "{'value_w':1000000000}",
     "{'purpose':'grid','action':'limit'," C_INST ",'value_w':1000000000," C_W1 "}"},
    {"limit: device", B_LIMIT, "{'target':{'installation':null,'device':'SB-000123'}}",
     "{'purpose':'grid','action':'limit','target':{'device':'SB-000123'},'value_w':4200," C_W1
     "}"},
    {"limit: id of 96 characters", B_LIMIT, "{'target':{'installation':'" ID96 "'}}",
     "{'purpose':'grid','action':'limit','target':{'installation':'" ID96 "'},'value_w':4200,"
     C_W1 "}"},
    {"limit: start in the past, end ahead", B_LIMIT,
     "{'window':{'start':'2026-11-28T17:00:00Z'}}",
     "{" C_LIMIT "'window':{'start':'2026-11-28T17:00:00.000Z','end':'2026-11-28T19:00:00.000Z'}}"},
    {"limit: offsets and fractions", B_LIMIT,
     "{'window':{'start':'2026-11-28T19:30:00.5+01:00','end':'2026-11-28T13:00:00.25-06:00'}}",
     "{" C_LIMIT "'window':{'start':'2026-11-28T18:30:00.500Z','end':'2026-11-28T19:00:00.250Z'}}"},
    {"limit: start exactly a year (366 days) ahead", B_LIMIT,
     "{'window':{'start':'2027-11-29T18:00:00Z','end':'2027-11-29T19:00:00Z'}}",
     "{" C_LIMIT "'window':{'start':'2027-11-29T18:00:00.000Z','end':'2027-11-29T19:00:00.000Z'}}"},
    {"limit: end exactly two years ahead", B_LIMIT, "{'window':{'end':'2028-11-29T18:00:00Z'}}",
     "{" C_LIMIT "'window':{'start':'2026-11-28T18:00:00.000Z','end':'2028-11-29T18:00:00.000Z'}}"},
    {"limit: deadline", B_LIMIT, "{'deadline':'2026-11-28T18:05:00Z'}",
     "{" C_LIMIT C_W1 ",'deadline':'2026-11-28T18:05:00.000Z'}"},
    {"limit: deadline after the window", B_LIMIT, "{'deadline':'2026-11-29T18:05:00Z'}",
     "{" C_LIMIT C_W1 ",'deadline':'2026-11-29T18:05:00.000Z'}"},
    {"limit: cascade", B_LIMIT, "{'cascade':true}", "{" C_LIMIT C_W1 ",'cascade':true}"},
    {"limit: cascade false", B_LIMIT, "{'cascade':false}", "{" C_LIMIT C_W1 "}"},
    {"limit: supersedes of 39 characters", B_LIMIT,
     "{'supersedes':'req-0123456789abcdef0123456789abcdef012'}",
     "{" C_LIMIT C_W1 ",'supersedes':'req-0123456789abcdef0123456789abcdef012'}"},
    {"limit: reason and external_id in UTF-8", B_LIMIT,
     "{'reason':'Engpass im Umspannwerk Nord – Stufe 2 ⚡','external_id':'Störung #4711/ä'}",
     "{" C_LIMIT C_W1 ",'reason':'Engpass im Umspannwerk Nord – Stufe 2 ⚡',"
     "'external_id':'Störung #4711/ä'}"},
    {"limit: one-character reason", B_LIMIT, "{'reason':'x','external_id':'y'}",
     "{" C_LIMIT C_W1 ",'reason':'x','external_id':'y'}"},
    /* dim */
    {"dim: duration", B_DIM, "{}", "{" C_DIM C_INST "," C_W1 "}"},
    {"dim: duration of 1 s", B_DIM, "{'window':{'duration_s':1}}",
     "{" C_DIM C_INST ",'window':{'start':'2026-11-28T18:00:00.000Z','end':'2026-11-28T18:00:01.000Z'}}"},
    {"dim: duration of 366 days", B_DIM, "{'window':{'duration_s':31622400}}",
     "{" C_DIM C_INST ",'window':{'start':'2026-11-28T18:00:00.000Z','end':'2027-11-29T18:00:00.000Z'}}"},
    {"dim: start and duration", B_DIM,
     "{'window':{'start':'2026-11-28T20:00:00Z','duration_s':900}}",
     "{" C_DIM C_INST ",'window':{'start':'2026-11-28T20:00:00.000Z','end':'2026-11-28T20:15:00.000Z'}}"},
    {"dim: until released", B_DIM, "{'window':{'duration_s':null,'until_released':true}}",
     "{" C_DIM C_INST ",'window':{'start':'2026-11-28T18:00:00.000Z','until_released':true}}"},
    {"dim: segment without filter", B_DIM, "{'target':{'installation':null,'segment':'seg-1'}}",
     "{" C_DIM C_SEG "}," C_W1 "}"},
    {"dim: segment, kind as a string", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'kind':'heat_pump'}}}",
     "{" C_DIM C_SEG ",'filter':{'kind':['heat_pump']}}," C_W1 "}"},
    {"dim: segment, kinds in canonical order, duplicates once", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':"
     "{'kind':['wallbox','heat_pump','wallbox']}}}",
     "{" C_DIM C_SEG ",'filter':{'kind':['heat_pump','wallbox']}}," C_W1 "}"},
    {"dim: segment, every kind", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'kind':['other','chp',"
     "'air_conditioning','storage_heater','battery','pv','wallbox','heat_pump']}}}",
     "{" C_DIM C_SEG ",'filter':{'kind':['heat_pump','wallbox','pv','battery','storage_heater',"
     "'air_conditioning','chp','other']}}," C_W1 "}"},
    {"dim: segment, sec14a only", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'sec14a':true}}}",
     "{" C_DIM C_SEG ",'filter':{'sec14a':true}}," C_W1 "}"},
    {"dim: segment, pv without sec14a", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'kind':['pv'],'sec14a':false}}}",
     "{" C_DIM C_SEG ",'filter':{'kind':['pv'],'sec14a':false}}," C_W1 "}"},
    {"dim: segment, empty filter", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{}}}",
     "{" C_DIM C_SEG "}," C_W1 "}"},
    /* switch */
    {"switch: off, device, start and end", B_SWITCH, "{}",
     "{" C_SWITCH "'level':'off'," C_W_SW "}"},
    {"switch: on", B_SWITCH, "{'level':'on'}", "{" C_SWITCH "'level':'on'," C_W_SW "}"},
    {"switch: dim until released", B_SWITCH,
     "{'level':'dim','window':{'end':null,'until_released':true}}",
     "{" C_SWITCH "'level':'dim','window':{'start':'2026-11-28T20:00:00.000Z',"
     "'until_released':true}}"},
    {"switch: deadline at the window's start", B_SWITCH, "{'deadline':'2026-11-28T20:00:00Z'}",
     "{" C_SWITCH "'level':'off'," C_W_SW ",'deadline':'2026-11-28T20:00:00.000Z'}"},
    {"switch: market with cascade false", B_SWITCH, "{'cascade':false}",
     "{" C_SWITCH "'level':'off'," C_W_SW "}"},
    /* schedule */
    {"schedule: window from the intervals", B_SCHED, "{}",
     "{" C_SCHED C_IVS ",'window':{'start':'2026-11-28T19:00:00.000Z',"
     "'end':'2026-11-28T19:30:00.000Z'}}"},
    {"schedule: directions, a gap, levels", B_SCHED,
     "{'intervals':["
     "{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':0,'direction':'production'},"
     "{'start':'2026-11-28T20:00:00Z','end':'2026-11-28T20:15:00Z','value_w':5000,'direction':'consumption'},"
     "{'start':'2026-11-28T20:15:00Z','end':'2026-11-28T20:30:00Z','level':'on'},"
     "{'start':'2026-11-28T20:30:00Z','end':'2026-11-28T20:45:00Z','level':'dim'}]}",
     "{" C_SCHED "'intervals':["
     "{'start':'2026-11-28T19:00:00.000Z','end':'2026-11-28T19:15:00.000Z','value_w':0,'direction':'production'},"
     "{'start':'2026-11-28T20:00:00.000Z','end':'2026-11-28T20:15:00.000Z','value_w':5000,'direction':'consumption'},"
     "{'start':'2026-11-28T20:15:00.000Z','end':'2026-11-28T20:30:00.000Z','level':'on'},"
     "{'start':'2026-11-28T20:30:00.000Z','end':'2026-11-28T20:45:00.000Z','level':'dim'}],"
     "'window':{'start':'2026-11-28T19:00:00.000Z','end':'2026-11-28T20:45:00.000Z'}}"},
    {"schedule: one interval from now, 1e9 W", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T18:00:00Z','end':'2026-11-28T18:15:00Z','value_w':1000000000}]}",
     "{" C_SCHED "'intervals':[{'start':'2026-11-28T18:00:00.000Z','end':'2026-11-28T18:15:00.000Z',"
     "'value_w':1000000000}],'window':{'start':'2026-11-28T18:00:00.000Z',"
     "'end':'2026-11-28T18:15:00.000Z'}}"},
    {"schedule: inside a given window", B_SCHED,
     "{'window':{'start':'2026-11-28T18:30:00Z','end':'2026-11-28T20:00:00Z'}}",
     "{" C_SCHED C_IVS ",'window':{'start':'2026-11-28T18:30:00.000Z',"
     "'end':'2026-11-28T20:00:00.000Z'}}"},
    {"schedule: a window exactly around the intervals", B_SCHED,
     "{'window':{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:30:00Z'}}",
     "{" C_SCHED C_IVS ",'window':{'start':'2026-11-28T19:00:00.000Z',"
     "'end':'2026-11-28T19:30:00.000Z'}}"},
    {"schedule: window by duration", B_SCHED, "{'window':{'duration_s':5400}}",
     "{" C_SCHED C_IVS ",'window':{'start':'2026-11-28T18:00:00.000Z',"
     "'end':'2026-11-28T19:30:00.000Z'}}"},
    {"schedule: a span of exactly 7 days", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T20:00:00Z','value_w':3000},"
     "{'start':'2026-12-05T18:00:00Z','end':'2026-12-05T19:00:00Z','level':'off'}]}",
     "{" C_SCHED "'intervals':[{'start':'2026-11-28T19:00:00.000Z','end':'2026-11-28T20:00:00.000Z',"
     "'value_w':3000},{'start':'2026-12-05T18:00:00.000Z','end':'2026-12-05T19:00:00.000Z',"
     "'level':'off'}],'window':{'start':'2026-11-28T19:00:00.000Z','end':'2026-12-05T19:00:00.000Z'}}"},
    {"schedule: on a segment with a deadline", B_SCHED,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'kind':'wallbox'}},"
     "'deadline':'2026-11-28T19:00:00Z'}",
     "{'purpose':'market','action':'schedule'," C_SEG ",'filter':{'kind':['wallbox']}}," C_IVS
     ",'window':{'start':'2026-11-28T19:00:00.000Z','end':'2026-11-28T19:30:00.000Z'},"
     "'deadline':'2026-11-28T19:00:00.000Z'}"},
    /* release */
    {"release: until released", B_RELEASE, "{}",
     "{" C_RELEASE "'window':{'start':'2026-11-28T18:00:00.000Z','until_released':true}}"},
    {"release: consumption", B_RELEASE, "{'direction':'consumption'}",
     "{" C_RELEASE "'direction':'consumption','window':{'start':'2026-11-28T18:00:00.000Z',"
     "'until_released':true}}"},
    {"release: grid, production, cascade, end", B_RELEASE,
     "{'purpose':'grid','direction':'production','cascade':true,"
     "'window':{'until_released':null,'end':'2026-11-29T06:00:00Z'}}",
     "{'purpose':'grid','action':'release'," C_INST ",'direction':'production','cascade':true,"
     "'window':{'start':'2026-11-28T18:00:00.000Z','end':'2026-11-29T06:00:00.000Z'}}"},
    {"release: segment with a filter", B_RELEASE,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'kind':'battery','sec14a':true}}}",
     "{'purpose':'market','action':'release'," C_SEG ",'filter':{'kind':['battery'],"
     "'sec14a':true}},'window':{'start':'2026-11-28T18:00:00.000Z','until_released':true}}"},
    /* clang-format on */
};

static void test_accepted(void **state)
{
    int fails = 0;
    (void)state;
    for (size_t i = 0; i < COUNT(ok_cases); i++) {
        const struct ok_case *c = &ok_cases[i];
        json_t *body = make_body(c->base, c->patch), *want = J(c->want), *got = NULL;
        struct req_spec s, again;
        const char *why = "";
        bool ok = accepted(c->name, body, NOW, false, &s);
        if (ok) {
            got = request_spec_json(&s);
            if (got == NULL || !json_equal(got, want)) {
                print_message("  FAIL accept \"%s\": canonical form\n", c->name);
                print_json("got ", got);
                print_json("want", want);
                ok = false;
            }
            ok = round_trip(c->name, &s) && ok;
            /* Restore mode takes whatever the normal mode takes, unchanged. */
            if (!accepted(c->name, body, NOW, true, &again) || !spec_equal(&s, &again, &why)) {
                print_message("  FAIL restore \"%s\": differs (%s)\n", c->name, why);
                ok = false;
            }
        }
        fails += !ok;
        json_decref(got);
        json_decref(want);
        json_decref(body);
    }
    table_done("accepted bodies", fails, COUNT(ok_cases));
}

/* --- refused bodies -------------------------------------------------------------- */

/* BAD: refused in restore mode too; LATE: refused only because of now. */
/* clang-format off */
#define BAD(name, base, patch, pointer)  {name, base, patch, pointer, false}
#define LATE(name, base, patch, pointer) {name, base, patch, pointer, true}
/* clang-format on */

static const struct bad_case {
    const char *name;
    enum base base;
    const char *patch;
    const char *pointer;
    bool now_only; /* refused because of 'now': restore mode takes it */
} bad_cases[] = {
    /* clang-format off */
    /* the body as a whole */
    BAD("an array", B_RAW, "[]", ""),
    BAD("an array of a request", B_RAW, "[{" LIMIT_F "}]", ""),
    BAD("a string", B_RAW, "'limit'", ""),
    BAD("a number", B_RAW, "42", ""),
    BAD("null", B_RAW, "null", ""),
    BAD("true", B_RAW, "true", ""),
    BAD("empty object", B_RAW, "{}", "/purpose"),
    BAD("unknown field", B_LIMIT, "{'priority':1}", "/priority"),
    BAD("unknown field in other case", B_DIM, "{'Window':{}}", "/Window"),
    BAD("unknown field on a schedule", B_SCHED, "{'comment':'x'}", "/comment"),
    BAD("unknown field that is null", B_RAW, "{" RELEASE_F ",'id':null}", "/id"),
    /* purpose and action */
    BAD("no purpose", B_LIMIT, "{'purpose':null}", "/purpose"),
    BAD("purpose in capitals", B_LIMIT, "{'purpose':'Grid'}", "/purpose"),
    BAD("purpose unknown", B_LIMIT, "{'purpose':'tso'}", "/purpose"),
    BAD("purpose a number", B_LIMIT, "{'purpose':0}", "/purpose"),
    BAD("no action", B_LIMIT, "{'action':null}", "/action"),
    BAD("action unknown", B_LIMIT, "{'action':'curtail'}", "/action"),
    BAD("action a list", B_LIMIT, "{'action':['limit']}", "/action"),
    /* fields that do not belong to the action */
    BAD("dim with value_w", B_DIM, "{'value_w':4200}", "/value_w"),
    BAD("dim with direction", B_DIM, "{'direction':'consumption'}", "/direction"),
    BAD("dim with level", B_DIM, "{'level':'off'}", "/level"),
    BAD("dim with intervals", B_DIM, "{'intervals':[]}", "/intervals"),
    BAD("limit with level", B_LIMIT, "{'level':'off'}", "/level"),
    BAD("limit with intervals", B_LIMIT, "{'intervals':[]}", "/intervals"),
    BAD("switch with value_w", B_SWITCH, "{'value_w':0}", "/value_w"),
    BAD("switch with direction", B_SWITCH, "{'direction':'production'}", "/direction"),
    BAD("switch with intervals", B_SWITCH, "{'intervals':[]}", "/intervals"),
    BAD("schedule with value_w", B_SCHED, "{'value_w':3000}", "/value_w"),
    BAD("schedule with direction", B_SCHED, "{'direction':'consumption'}", "/direction"),
    BAD("schedule with level", B_SCHED, "{'level':'off'}", "/level"),
    BAD("release with value_w", B_RELEASE, "{'value_w':0}", "/value_w"),
    BAD("release with level", B_RELEASE, "{'level':'on'}", "/level"),
    BAD("release with intervals", B_RELEASE, "{'intervals':[]}", "/intervals"),
    /* values */
    BAD("limit without value_w", B_LIMIT, "{'value_w':null}", "/value_w"),
    BAD("value_w null", B_RAW,
        "{'purpose':'grid','action':'limit','target':{'installation':'i'},'value_w':null,"
        "'window':{'duration_s':60}}",
        "/value_w"),
    BAD("value_w 4200.0", B_LIMIT, "{'value_w':4200.0}", "/value_w"),
    BAD("value_w 1e9 (a real)", B_LIMIT, "{'value_w':1e9}", "/value_w"),
    BAD("value_w as a string", B_LIMIT, "{'value_w':'4200'}", "/value_w"),
    BAD("value_w -1", B_LIMIT, "{'value_w':-1}", "/value_w"),
    BAD("value_w 1000000001", B_LIMIT, "{'value_w':1000000001}", "/value_w"),
    BAD("value_w INT64_MIN", B_LIMIT, "{'value_w':-9223372036854775808}", "/value_w"),
    BAD("value_w true", B_LIMIT, "{'value_w':true}", "/value_w"),
    BAD("direction both", B_LIMIT, "{'direction':'both'}", "/direction"),
    BAD("direction in capitals", B_LIMIT, "{'direction':'Consumption'}", "/direction"),
    BAD("direction a number", B_LIMIT, "{'direction':0}", "/direction"),
    BAD("direction null", B_RAW, "{" LIMIT_F ",'direction':null}", "/direction"),
    BAD("release direction unknown", B_RELEASE, "{'direction':'up'}", "/direction"),
    BAD("switch without level", B_SWITCH, "{'level':null}", "/level"),
    BAD("level unknown", B_SWITCH, "{'level':'half'}", "/level"),
    BAD("level in capitals", B_SWITCH, "{'level':'OFF'}", "/level"),
    BAD("level a number", B_SWITCH, "{'level':0}", "/level"),
    BAD("level a boolean", B_SWITCH, "{'level':false}", "/level"),
    /* targets */
    BAD("no target", B_LIMIT, "{'target':null}", "/target"),
    BAD("target a string", B_LIMIT, "{'target':'inst-1'}", "/target"),
    BAD("target a list", B_LIMIT, "{'target':['inst-1']}", "/target"),
    BAD("target empty", B_LIMIT, "{'target':{'installation':null}}", "/target"),
    BAD("installation and device", B_LIMIT, "{'target':{'device':'dev-1'}}", "/target"),
    BAD("device and segment", B_LIMIT,
     "{'target':{'installation':null,'device':'dev-1','segment':'seg-1'}}", "/target"),
    BAD("all three", B_LIMIT, "{'target':{'device':'dev-1','segment':'seg-1'}}", "/target"),
    BAD("installation id empty", B_LIMIT, "{'target':{'installation':''}}", "/target/installation"),
    BAD("installation id starts with a dash", B_LIMIT, "{'target':{'installation':'-inst'}}",
     "/target/installation"),
    BAD("installation id with a space", B_LIMIT, "{'target':{'installation':'inst 1'}}",
     "/target/installation"),
    BAD("installation id with a slash", B_LIMIT, "{'target':{'installation':'a/b'}}",
     "/target/installation"),
    BAD("installation id of 97 characters", B_LIMIT, "{'target':{'installation':'" ID97 "'}}",
     "/target/installation"),
    BAD("installation id with an umlaut", B_LIMIT, "{'target':{'installation':'Zähler-1'}}",
     "/target/installation"),
    BAD("installation id a number", B_LIMIT, "{'target':{'installation':17}}",
     "/target/installation"),
    BAD("installation id null", B_RAW,
     "{'purpose':'grid','action':'dim','target':{'installation':null},'window':{'duration_s':60}}",
     "/target/installation"),
    BAD("device id bad", B_LIMIT, "{'target':{'installation':null,'device':'dev 1'}}",
     "/target/device"),
    BAD("segment id bad", B_LIMIT, "{'target':{'installation':null,'segment':'*'}}",
     "/target/segment"),
    BAD("unknown target member", B_LIMIT, "{'target':{'site':'x'}}", "/target/site"),
    BAD("target kind in capitals", B_LIMIT,
     "{'target':{'installation':null,'Installation':'inst-1'}}", "/target/Installation"),
    BAD("filter with an installation", B_LIMIT, "{'target':{'filter':{'kind':'pv'}}}",
     "/target/filter"),
    BAD("filter with a device", B_LIMIT,
     "{'target':{'installation':null,'device':'dev-1','filter':{}}}", "/target/filter"),
    BAD("filter without any target", B_LIMIT,
     "{'target':{'installation':null,'filter':{'kind':'pv'}}}", "/target"),
    BAD("filter not an object", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':'pv'}}", "/target/filter"),
    BAD("filter member unknown", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'kinds':['pv']}}}",
     "/target/filter/kinds"),
    BAD("filter member unknown next to kind", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'kind':'pv','rated_w':5}}}",
     "/target/filter/rated_w"),
    BAD("kind unknown", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'kind':'nuclear'}}}",
     "/target/filter/kind"),
    BAD("kind misspelt", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'kind':'heatpump'}}}",
     "/target/filter/kind"),
    BAD("kind list, second unknown", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'kind':['pv','nuclear']}}}",
     "/target/filter/kind/1"),
    BAD("kind list, a number", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'kind':['pv',3]}}}",
     "/target/filter/kind/1"),
    BAD("kind list empty", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'kind':[]}}}",
     "/target/filter/kind"),
    BAD("kind list of 9", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'kind':['pv','pv','pv','pv',"
     "'pv','pv','pv','pv','pv']}}}",
     "/target/filter/kind"),
    BAD("kind a number", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'kind':3}}}",
     "/target/filter/kind"),
    BAD("sec14a a string", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'sec14a':'true'}}}",
     "/target/filter/sec14a"),
    BAD("sec14a a number", B_DIM,
     "{'target':{'installation':null,'segment':'seg-1','filter':{'sec14a':1}}}",
     "/target/filter/sec14a"),
    /* windows */
    BAD("limit without window", B_LIMIT, "{'window':null}", "/window"),
    BAD("window a string", B_LIMIT, "{'window':'PT1H'}", "/window"),
    BAD("window null", B_RAW, "{" SCHED_F ",'window':null}", "/window"),
    BAD("window empty", B_LIMIT, "{'window':{'end':null}}", "/window"),
    BAD("window with a start only", B_LIMIT,
     "{'window':{'end':null,'start':'2026-11-28T18:30:00Z'}}", "/window"),
    BAD("end and duration_s", B_LIMIT, "{'window':{'duration_s':60}}", "/window"),
    BAD("end and until_released", B_LIMIT, "{'window':{'until_released':true}}", "/window"),
    BAD("duration_s and until_released", B_DIM, "{'window':{'until_released':true}}", "/window"),
    BAD("all three ends", B_LIMIT, "{'window':{'duration_s':60,'until_released':true}}", "/window"),
    BAD("until_released false", B_DIM, "{'window':{'duration_s':null,'until_released':false}}",
     "/window/until_released"),
    BAD("until_released a string", B_RELEASE, "{'window':{'until_released':'true'}}",
     "/window/until_released"),
    BAD("unknown window member", B_LIMIT, "{'window':{'length':5}}", "/window/length"),
    BAD("duration instead of duration_s", B_DIM, "{'window':{'duration_s':null,'duration':60}}",
     "/window/duration"),
    BAD("start not a time", B_LIMIT, "{'window':{'start':'tomorrow'}}", "/window/start"),
    BAD("start without a zone", B_LIMIT, "{'window':{'start':'2026-11-28T18:30:00'}}",
     "/window/start"),
    BAD("start a number", B_LIMIT, "{'window':{'start':1795888800000}}", "/window/start"),
    BAD("end with a space", B_LIMIT, "{'window':{'end':'2026-11-28 19:00:00Z'}}", "/window/end"),
    BAD("end on 30 February", B_LIMIT, "{'window':{'end':'2027-02-30T19:00:00Z'}}", "/window/end"),
    BAD("end at 24:00", B_LIMIT, "{'window':{'end':'2026-11-28T24:00:00Z'}}", "/window/end"),
    BAD("end before 1970", B_LIMIT, "{'window':{'end':'1969-12-31T23:00:00Z'}}", "/window/end"),
    BAD("end a number", B_LIMIT, "{'window':{'end':1795892400000}}", "/window/end"),
    BAD("duration_s 0", B_DIM, "{'window':{'duration_s':0}}", "/window/duration_s"),
    BAD("duration_s -60", B_DIM, "{'window':{'duration_s':-60}}", "/window/duration_s"),
    BAD("duration_s 1.5", B_DIM, "{'window':{'duration_s':1.5}}", "/window/duration_s"),
    BAD("duration_s 3600.0", B_DIM, "{'window':{'duration_s':3600.0}}", "/window/duration_s"),
    BAD("duration_s as a string", B_DIM, "{'window':{'duration_s':'3600'}}", "/window/duration_s"),
    BAD("duration_s over 366 days", B_DIM, "{'window':{'duration_s':31622401}}",
     "/window/duration_s"),
    BAD("inverted", B_LIMIT, "{'window':{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T18:30:00Z'}}",
     "/window/end"),
    BAD("empty (end = start)", B_LIMIT,
     "{'window':{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:00:00Z'}}", "/window/end"),
    BAD("end at the default start", B_LIMIT, "{'window':{'end':'2026-11-28T18:00:00Z'}}",
     "/window/end"),
    LATE("over", B_LIMIT, "{'window':{'start':'2026-11-28T16:00:00Z','end':'2026-11-28T17:00:00Z'}}",
     "/window/end"),
    LATE("ending exactly now", B_LIMIT,
     "{'window':{'start':'2026-11-28T17:00:00Z','end':'2026-11-28T18:00:00Z'}}", "/window/end"),
    LATE("over, by duration", B_DIM, "{'window':{'start':'2026-11-28T16:00:00Z','duration_s':3600}}",
     "/window"),
    LATE("start more than a year ahead", B_LIMIT,
     "{'window':{'start':'2027-11-29T18:00:01Z','end':'2027-11-29T19:00:00Z'}}", "/window/start"),
    LATE("start more than a year ahead, by duration", B_DIM,
     "{'window':{'start':'2028-01-01T00:00:00Z'}}", "/window/start"),
    LATE("until released from more than a year ahead", B_RELEASE,
     "{'window':{'start':'2028-01-01T00:00:00Z'}}", "/window/start"),
    LATE("end more than two years ahead", B_LIMIT, "{'window':{'end':'2028-11-29T18:00:01Z'}}",
     "/window/end"),
    /* schedules */
    BAD("no intervals", B_SCHED, "{'intervals':null}", "/intervals"),
    BAD("intervals empty", B_SCHED, "{'intervals':[]}", "/intervals"),
    BAD("intervals an object", B_SCHED,
     "{'intervals':{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':1}}",
     "/intervals"),
    BAD("interval a number", B_SCHED, "{'intervals':[1]}", "/intervals/0"),
    BAD("interval unknown member", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':1,"
     "'power':5}]}",
     "/intervals/0/power"),
    BAD("interval without start", B_SCHED,
     "{'intervals':[{'end':'2026-11-28T19:15:00Z','value_w':1}]}", "/intervals/0/start"),
    BAD("interval without end", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:15:00Z','value_w':1}]}", "/intervals/0/end"),
    BAD("interval start not a time", B_SCHED,
     "{'intervals':[{'start':'19:00','end':'2026-11-28T19:15:00Z','value_w':1}]}",
     "/intervals/0/start"),
    BAD("interval empty", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:00:00Z','value_w':1}]}",
     "/intervals/0/end"),
    BAD("second interval inverted", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':1},"
     "{'start':'2026-11-28T19:30:00Z','end':'2026-11-28T19:20:00Z','value_w':1}]}",
     "/intervals/1/end"),
    BAD("unsorted", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:15:00Z','end':'2026-11-28T19:30:00Z','value_w':1},"
     "{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':1}]}",
     "/intervals/1/start"),
    BAD("overlapping by a minute", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:16:00Z','value_w':1},"
     "{'start':'2026-11-28T19:15:00Z','end':'2026-11-28T19:30:00Z','value_w':1}]}",
     "/intervals/1/start"),
    BAD("overlapping by a millisecond", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00.001Z','value_w':1},"
     "{'start':'2026-11-28T19:15:00Z','end':'2026-11-28T19:30:00Z','value_w':1}]}",
     "/intervals/1/start"),
    BAD("third inside the second", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':1},"
     "{'start':'2026-11-28T19:15:00Z','end':'2026-11-28T20:00:00Z','value_w':1},"
     "{'start':'2026-11-28T19:30:00Z','end':'2026-11-28T19:45:00Z','value_w':1}]}",
     "/intervals/2/start"),
    BAD("value_w and level", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':1,"
     "'level':'off'}]}",
     "/intervals/0"),
    BAD("neither value_w nor level", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':1},"
     "{'start':'2026-11-28T19:15:00Z','end':'2026-11-28T19:30:00Z'}]}",
     "/intervals/1"),
    BAD("direction only", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z',"
     "'direction':'consumption'}]}",
     "/intervals/0"),
    BAD("level with a direction", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':1},"
     "{'start':'2026-11-28T19:15:00Z','end':'2026-11-28T19:30:00Z','level':'off',"
     "'direction':'consumption'}]}",
     "/intervals/1/direction"),
    BAD("level unknown", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':1},"
     "{'start':'2026-11-28T19:15:00Z','end':'2026-11-28T19:30:00Z','level':'half'}]}",
     "/intervals/1/level"),
    BAD("interval value_w real", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':4200.0}]}",
     "/intervals/0/value_w"),
    BAD("interval value_w string", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':'1'}]}",
     "/intervals/0/value_w"),
    BAD("interval value_w -1", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':-1}]}",
     "/intervals/0/value_w"),
    BAD("interval value_w 1000000001", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z',"
     "'value_w':1000000001}]}",
     "/intervals/0/value_w"),
    BAD("interval direction unknown", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':1,"
     "'direction':'both'}]}",
     "/intervals/0/direction"),
    BAD("span over 7 days by a millisecond", B_SCHED,
     "{'intervals':[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T20:00:00Z','value_w':1},"
     "{'start':'2026-12-05T18:00:00Z','end':'2026-12-05T19:00:00.001Z','value_w':1}]}",
     "/intervals"),
    BAD("starts before the given window", B_SCHED,
     "{'window':{'start':'2026-11-28T19:10:00Z','end':'2026-11-28T20:00:00Z'}}", "/intervals"),
    BAD("ends after the given window", B_SCHED, "{'window':{'end':'2026-11-28T19:20:00Z'}}",
     "/intervals"),
    BAD("ends after a window by duration", B_SCHED, "{'window':{'duration_s':3600}}", "/intervals"),
    BAD("schedule until released", B_SCHED, "{'window':{'until_released':true}}",
     "/window/until_released"),
    LATE("schedule with a window that is over", B_SCHED,
     "{'window':{'start':'2026-11-28T16:00:00Z','end':'2026-11-28T17:00:00Z'},'intervals':["
     "{'start':'2026-11-28T16:00:00Z','end':'2026-11-28T16:15:00Z','value_w':1}]}",
     "/window/end"),
    /* deadline */
    LATE("deadline passed", B_LIMIT,
     "{'window':{'start':'2026-11-28T17:00:00Z'},'deadline':'2026-11-28T17:59:59Z'}", "/deadline"),
    LATE("deadline exactly now", B_LIMIT, "{'deadline':'2026-11-28T18:00:00Z'}", "/deadline"),
    BAD("deadline before the window's start", B_SWITCH, "{'deadline':'2026-11-28T19:59:59Z'}",
     "/deadline"),
    BAD("deadline not a time", B_LIMIT, "{'deadline':'in 5 minutes'}", "/deadline"),
    BAD("deadline a number", B_LIMIT, "{'deadline':300}", "/deadline"),
    BAD("deadline null", B_RAW, "{" LIMIT_F ",'deadline':null}", "/deadline"),
    /* cascade, supersedes */
    BAD("cascade on a market request", B_SWITCH, "{'cascade':true}", "/cascade"),
    BAD("cascade a string", B_LIMIT, "{'cascade':'true'}", "/cascade"),
    BAD("cascade a number", B_LIMIT, "{'cascade':1}", "/cascade"),
    BAD("supersedes a number", B_LIMIT, "{'supersedes':17}", "/supersedes"),
    BAD("supersedes empty", B_LIMIT, "{'supersedes':''}", "/supersedes"),
    BAD("supersedes with a space", B_LIMIT, "{'supersedes':'req 1'}", "/supersedes"),
    BAD("supersedes a list", B_LIMIT, "{'supersedes':['req-1']}", "/supersedes"),
    BAD("supersedes of 40 characters", B_LIMIT,
     "{'supersedes':'req-0123456789abcdef0123456789abcdef0123'}", "/supersedes"),
    /* free texts */
    BAD("reason empty", B_LIMIT, "{'reason':''}", "/reason"),
    BAD("reason a number", B_LIMIT, "{'reason':1}", "/reason"),
    BAD("reason null", B_RAW, "{" LIMIT_F ",'reason':null}", "/reason"),
    BAD("reason with a newline", B_LIMIT, "{'reason':'a\\nb'}", "/reason"),
    BAD("reason with a tab", B_LIMIT, "{'reason':'a\\tb'}", "/reason"),
    BAD("reason with an escape sequence", B_LIMIT, "{'reason':'\\u001b[31mred'}", "/reason"),
    BAD("reason with DEL", B_LIMIT, "{'reason':'a\\u007fb'}", "/reason"),
    BAD("external_id empty", B_LIMIT, "{'external_id':''}", "/external_id"),
    BAD("external_id with a carriage return", B_LIMIT, "{'external_id':'x\\r'}", "/external_id"),
    BAD("external_id a list", B_LIMIT, "{'external_id':['x']}", "/external_id"),
    /* clang-format on */
};

static void test_refused(void **state)
{
    int fails = 0;
    (void)state;
    for (size_t i = 0; i < COUNT(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        json_t *body = make_body(c->base, c->patch);
        struct req_spec s;
        bool ok = refused(c->name, body, NOW, false, c->pointer);
        /* Restore mode skips the checks against now and nothing else. */
        if (c->now_only)
            ok = accepted(c->name, body, NOW, true, &s) && round_trip(c->name, &s) && ok;
        else
            ok = refused(c->name, body, NOW, true, c->pointer) && ok;
        fails += !ok;
        json_decref(body);
    }
    table_done("refused bodies", fails, COUNT(bad_cases));
}

/* --- fields of the spec ------------------------------------------------------------ */

static void parse_ok(const char *body_text, struct req_spec *s)
{
    json_t *body = J(body_text);
    bool ok = accepted(body_text, body, NOW, false, s) && round_trip(body_text, s);
    json_decref(body);
    assert_true(ok);
}

static void test_spec_fields(void **state)
{
    struct req_spec s;
    (void)state;

    parse_ok("{" LIMIT_F "}", &s);
    assert_int_equal(s.purpose, ARB_GRID);
    assert_int_equal(s.act.action, ARB_LIMIT);
    assert_int_equal(s.target, REQ_TARGET_INSTALLATION);
    assert_string_equal(s.target_id, "inst-1");
    assert_int_equal(s.act.value_w, 4200);
    assert_false(s.act.has_dir);
    assert_true(s.act.start_ms == NOW && s.act.end_ms == NOW + H);
    assert_false(s.until_released);
    assert_false(s.cascade);
    assert_true(s.deadline_ms == 0);
    assert_int_equal(s.kinds, 0);
    assert_int_equal(s.sec14a, -1);
    assert_int_equal(s.act.nintervals, 0);
    assert_null(s.act.intervals);
    assert_string_equal(s.supersedes, "");
    assert_string_equal(s.reason, "");
    assert_string_equal(s.external_id, "");

    parse_ok("{'purpose':'market','action':'limit','target':{'device':'d.1'},'value_w':0,"
             "'direction':'production','window':{'start':'2026-11-28T18:30:00.125+00:30',"
             "'end':'2026-11-28T20:00:00Z'},'deadline':'2026-11-28T18:10:00Z',"
             "'supersedes':'req-00000000000000ff','reason':'Ü','external_id':'e-1'}",
             &s);
    assert_int_equal(s.purpose, ARB_MARKET);
    assert_int_equal(s.target, REQ_TARGET_DEVICE);
    assert_string_equal(s.target_id, "d.1");
    assert_true(s.act.has_dir);
    assert_int_equal(s.act.dir, ARB_PRODUCTION);
    assert_int_equal(s.act.value_w, 0);
    assert_true(s.act.start_ms == NOW + 125 && s.act.end_ms == NOW + 2 * H);
    assert_true(s.deadline_ms == NOW + 10 * MIN);
    assert_string_equal(s.supersedes, "req-00000000000000ff");
    assert_string_equal(s.reason, "Ü");
    assert_string_equal(s.external_id, "e-1");

    parse_ok("{'purpose':'grid','action':'dim','cascade':true,'target':{'segment':'ms-7',"
             "'filter':{'kind':['wallbox','heat_pump'],'sec14a':true}},"
             "'window':{'duration_s':900}}",
             &s);
    assert_int_equal(s.act.action, ARB_DIM);
    assert_true(s.cascade);
    assert_int_equal(s.target, REQ_TARGET_SEGMENT);
    assert_string_equal(s.target_id, "ms-7");
    assert_int_equal(s.kinds, (1u << ARB_WALLBOX) | (1u << ARB_HEAT_PUMP));
    assert_int_equal(s.sec14a, 1);
    assert_true(s.act.end_ms == NOW + 15 * MIN);

    parse_ok("{'purpose':'grid','action':'dim','target':{'segment':'ms-7',"
             "'filter':{'kind':'other','sec14a':false}},'window':{'duration_s':900}}",
             &s);
    assert_int_equal(s.kinds, 1u << ARB_OTHER_KIND);
    assert_int_equal(s.sec14a, 0);

    parse_ok("{" SWITCH_F "}", &s);
    assert_int_equal(s.act.action, ARB_SWITCH);
    assert_int_equal(s.act.level, ARB_LEVEL_OFF);
    assert_true(s.act.start_ms == NOW + 2 * H && s.act.end_ms == NOW + 3 * H);

    parse_ok("{" SCHED_F "}", &s);
    assert_int_equal(s.act.action, ARB_SCHEDULE);
    assert_int_equal(s.act.nintervals, 2);
    assert_ptr_equal(s.act.intervals, s.intervals);
    assert_true(s.act.start_ms == NOW + H && s.act.end_ms == NOW + H + 30 * MIN);
    assert_true(s.intervals[0].start_ms == NOW + H && s.intervals[0].end_ms == NOW + H + 15 * MIN);
    assert_false(s.intervals[0].is_level);
    assert_false(s.intervals[0].has_dir);
    assert_int_equal(s.intervals[0].value_w, 3000);
    assert_true(s.intervals[1].start_ms == NOW + H + 15 * MIN);
    assert_true(s.intervals[1].is_level);
    assert_int_equal(s.intervals[1].level, ARB_LEVEL_OFF);

    parse_ok("{'purpose':'market','action':'schedule','target':{'installation':'i'},'intervals':"
             "[{'start':'2026-11-28T19:00:00Z','end':'2026-11-28T19:15:00Z','value_w':7,"
             "'direction':'consumption'},{'start':'2026-11-28T19:15:00Z',"
             "'end':'2026-11-28T19:30:00Z','level':'dim'}]}",
             &s);
    assert_true(s.intervals[0].has_dir);
    assert_int_equal(s.intervals[0].dir, ARB_CONSUMPTION);
    assert_int_equal(s.intervals[0].value_w, 7);
    assert_int_equal(s.intervals[1].level, ARB_LEVEL_DIM);

    parse_ok("{" RELEASE_F ",'direction':'consumption'}", &s);
    assert_int_equal(s.act.action, ARB_RELEASE);
    assert_true(s.until_released);
    assert_true(s.act.start_ms == NOW && s.act.end_ms == ARB_FOREVER);
    assert_true(s.act.has_dir);
    assert_int_equal(s.act.dir, ARB_CONSUMPTION);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(request_purpose_name(ARB_GRID), "grid");
    assert_string_equal(request_purpose_name(ARB_MARKET), "market");
    assert_string_equal(request_action_name(ARB_LIMIT), "limit");
    assert_string_equal(request_action_name(ARB_DIM), "dim");
    assert_string_equal(request_action_name(ARB_SWITCH), "switch");
    assert_string_equal(request_action_name(ARB_SCHEDULE), "schedule");
    assert_string_equal(request_action_name(ARB_RELEASE), "release");
    assert_string_equal(request_target_name(REQ_TARGET_INSTALLATION), "installation");
    assert_string_equal(request_target_name(REQ_TARGET_DEVICE), "device");
    assert_string_equal(request_target_name(REQ_TARGET_SEGMENT), "segment");
    assert_string_equal(request_purpose_name((enum arb_purpose)7), "?");
    assert_string_equal(request_action_name((enum arb_action)7), "?");
    assert_string_equal(request_target_name((enum req_target_kind)7), "?");
}

/* --- limits in characters and intervals ---------------------------------------------- */

static const struct text_case {
    const char *field;
    const char *unit; /* one character, 1 to 4 bytes of UTF-8 */
    size_t count;
    bool ok;
} text_cases[] = {
    {"reason", "a", 500, true},
    {"reason", "a", 501, false},
    {"reason", "ä", 500, true},
    {"reason", "ä", 501, false},
    {"reason", "€", 500, true},
    {"reason", "€", 501, false},
    {"reason", "\xf0\x9f\x94\x8c", 500, true},
    {"reason", "\xf0\x9f\x94\x8c", 501, false},
    {"external_id", "a", 100, true},
    {"external_id", "a", 101, false},
    {"external_id", "ä", 100, true},
    {"external_id", "ä", 101, false},
    {"external_id", "\xf0\x9f\x94\x8c", 100, true},
    {"external_id", "\xf0\x9f\x94\x8c", 101, false},
};

static void test_text_lengths(void **state)
{
    int fails = 0;
    (void)state;
    for (size_t i = 0; i < COUNT(text_cases); i++) {
        const struct text_case *c = &text_cases[i];
        size_t ulen = strlen(c->unit);
        char *text = malloc(ulen * c->count + 1), name[80], ptr[40];
        struct req_spec s;
        assert_non_null(text);
        for (size_t k = 0; k < c->count; k++)
            memcpy(text + k * ulen, c->unit, ulen);
        text[ulen * c->count] = '\0';
        json_t *body = J("{" LIMIT_F "}");
        json_object_set_new(body, c->field, json_string(text));
        snprintf(name, sizeof name, "%s of %zu x %zu bytes", c->field, c->count, ulen);
        snprintf(ptr, sizeof ptr, "/%s", c->field);
        bool ok;
        if (c->ok) {
            ok = accepted(name, body, NOW, false, &s) && round_trip(name, &s);
            ok =
                ok && strcmp(strcmp(c->field, "reason") == 0 ? s.reason : s.external_id, text) == 0;
        } else {
            ok = refused(name, body, NOW, false, ptr);
        }
        fails += !ok;
        json_decref(body);
        free(text);
    }
    table_done("text lengths", fails, COUNT(text_cases));
}

/* A schedule of 'n' back-to-back intervals of 'len' from one hour after now,
 * alternating between a value and a level. */
static json_t *schedule_of(size_t n, int64_t len)
{
    json_t *body = J("{'purpose':'grid','action':'schedule','target':{'installation':'i'}}");
    json_t *ivs = json_array();
    for (size_t i = 0; i < n; i++) {
        char a[40], b[40];
        int64_t t = NOW + H + (int64_t)i * len;
        json_t *iv = json_pack("{s:s, s:s}", "start", time_format_ms(t, a, sizeof a), "end",
                               time_format_ms(t + len, b, sizeof b));
        if (i % 2 == 0)
            json_object_set_new(iv, "value_w", json_integer((json_int_t)i * 100));
        else
            json_object_set_new(iv, "level", json_string("off"));
        json_array_append_new(ivs, iv);
    }
    json_object_set_new(body, "intervals", ivs);
    return body;
}

static void test_interval_counts(void **state)
{
    static const struct {
        size_t n;
        int64_t len;
        bool ok;
    } cases[] = {
        {1, 15 * MIN, true},   {2, 15 * MIN, true},   {95, 15 * MIN, true},
        {96, 15 * MIN, true},  {96, 105 * MIN, true}, /* 96 x 105 min = exactly 7 days */
        {97, 15 * MIN, false}, {97, 1 * MIN, false},  {200, 1 * MIN, false},
    };
    int fails = 0;
    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        json_t *body = schedule_of(cases[i].n, cases[i].len);
        char name[64];
        struct req_spec s;
        bool ok;
        snprintf(name, sizeof name, "%zu intervals of %lld min", cases[i].n,
                 (long long)(cases[i].len / MIN));
        if (!cases[i].ok) {
            ok = refused(name, body, NOW, false, "/intervals");
        } else {
            size_t last = cases[i].n - 1;
            ok = accepted(name, body, NOW, false, &s) && round_trip(name, &s) &&
                 s.act.nintervals == cases[i].n && s.act.start_ms == NOW + H &&
                 s.act.end_ms == NOW + H + (int64_t)cases[i].n * cases[i].len &&
                 s.intervals[last].start_ms == NOW + H + (int64_t)last * cases[i].len &&
                 s.intervals[last].is_level == (last % 2 == 1) &&
                 (last % 2 == 1 || s.intervals[last].value_w == (int64_t)last * 100);
            if (!ok)
                print_message("  FAIL \"%s\": fields\n", name);
        }
        fails += !ok;
        json_decref(body);
    }
    table_done("interval counts", fails, COUNT(cases));
}

/* --- now and restore ------------------------------------------------------------------- */

/* A request stored yesterday reads back today although its window and
 * deadline are over; taken fresh today it would be refused. */
static void test_restore_stored_request(void **state)
{
    struct req_spec s, back;
    struct req_error err;
    (void)state;
    json_t *body = J("{" SCHED_F ",'deadline':'2026-11-28T19:05:00Z','reason':'r'}");
    assert_int_equal(request_parse(body, NOW, false, &s, &err), 0);
    json_t *stored = request_spec_json(&s);
    assert_non_null(stored);

    assert_int_equal(request_parse(stored, NOW + DAY, false, &back, &err), -EINVAL);
    assert_string_equal(err.pointer, "/window/end");
    assert_int_equal(request_parse(stored, NOW + DAY, true, &back, &err), 0);
    const char *why = "";
    assert_true(spec_equal(&s, &back, &why));
    assert_ptr_equal(back.act.intervals, back.intervals);

    /* Just before the window ends only the deadline is in the past. */
    assert_int_equal(request_parse(stored, NOW + H + 29 * MIN, false, &back, &err), -EINVAL);
    assert_string_equal(err.pointer, "/deadline");
    assert_int_equal(request_parse(stored, NOW + H + 29 * MIN, true, &back, &err), 0);
    json_decref(stored);
    json_decref(body);
}

/* --- what may not go wrong at the edges ------------------------------------------------ */

/* Keys that cannot be echoed as they are still give a pointer that is safe
 * to put into a log line or an answer. */
static void test_unknown_key_pointer_is_printable(void **state)
{
    static const char *const keys[] = {"a\x01z", "a\x7fz",
                                       "gr\xc3\xb6\xc3\x9f"
                                       "e",
                                       "a/b",
                                       "k0123456789012345678901234567890123456789012345678901234567"
                                       "89012345678901234567890123456789"};
    (void)state;
    for (size_t i = 0; i < COUNT(keys); i++) {
        struct req_spec s;
        struct req_error err;
        json_t *body = J("{" LIMIT_F "}");
        json_object_set_new(body, keys[i], json_true());
        assert_int_equal(request_parse(body, NOW, false, &s, &err), -EINVAL);
        assert_true(printable_in(err.pointer, sizeof err.pointer, true));
        assert_true(printable_in(err.text, sizeof err.text, true));
        assert_int_equal(err.pointer[0], '/');
        assert_int_equal(err.pointer[1], keys[i][0]);
        json_decref(body);
    }
}

/*
 * A schedule without a window takes its window from its intervals; that
 * window is a window like any other, so the checks against now apply to it
 * (request.h: "a window that is over" is refused). Intervals that are all
 * over, or that start more than a year ahead, must be refused as they are
 * with an explicit window.
 */
static void test_schedule_derived_window_against_now(void **state)
{
    static const struct {
        const char *name;
        const char *intervals;
    } cases[] = {
        {"intervals all over",
         "[{'start':'2026-11-28T16:00:00Z','end':'2026-11-28T16:15:00Z','value_w':1},"
         "{'start':'2026-11-28T16:15:00Z','end':'2026-11-28T16:30:00Z','level':'on'}]"},
        {"intervals ending exactly now",
         "[{'start':'2026-11-28T17:45:00Z','end':'2026-11-28T18:00:00Z','value_w':1}]"},
        {"intervals from more than a year ahead",
         "[{'start':'2028-01-01T00:00:00Z','end':'2028-01-01T00:15:00Z','value_w':1}]"},
    };
    int fails = 0;
    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        char text[600];
        struct req_spec s;
        struct req_error err;
        snprintf(text, sizeof text,
                 "{'purpose':'grid','action':'schedule','target':{'installation':'i'},"
                 "'intervals':%s}",
                 cases[i].intervals);
        json_t *body = J(text);
        int rc = request_parse(body, NOW, false, &s, &err);
        bool ok = rc == -EINVAL && err.pointer[0] == '/' && err.text[0] != '\0';
        if (!ok)
            print_message("  FAIL schedule \"%s\": rc %d, accepted at now\n", cases[i].name, rc);
        ok = accepted(cases[i].name, body, NOW, true, &s) && round_trip(cases[i].name, &s) && ok;
        fails += !ok;
        json_decref(body);
    }
    table_done("schedule windows from intervals", fails, COUNT(cases));
}

/*
 * request.h: "request_parse() of it gives 'spec' again". Every time the
 * parser takes must therefore be one the canonical form can write so that
 * it parses again: times that land after 9999-12-31 or before 1970 in UTC
 * through their offset must be refused or written back readably.
 */
static void test_canonical_times_parse_again(void **state)
{
    static const struct {
        const char *name;
        const char *body;
        bool restore;
    } cases[] = {
        {"deadline beyond year 9999 in UTC", "{" LIMIT_F ",'deadline':'9999-12-31T23:59:59-01:00'}",
         false},
        {"schedule before 1970 in UTC",
         "{'purpose':'grid','action':'schedule','target':{'installation':'i'},'intervals':"
         "[{'start':'1970-01-01T00:00:00+01:00','end':'1970-01-01T00:15:00Z','value_w':1}]}",
         false},
        {"stored window ending beyond year 9999 in UTC",
         "{'purpose':'grid','action':'dim','target':{'installation':'i'},'window':"
         "{'start':'9999-12-31T00:00:00Z','end':'9999-12-31T23:30:00-01:00'}}",
         true},
        {"stored window starting before 1970 in UTC",
         "{'purpose':'grid','action':'dim','target':{'installation':'i'},'window':"
         "{'start':'1970-01-01T00:30:00+01:00','end':'1970-01-01T02:00:00Z'}}",
         true},
    };
    int fails = 0;
    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        struct req_spec s;
        struct req_error err;
        json_t *body = J(cases[i].body);
        int rc = request_parse(body, NOW, cases[i].restore, &s, &err);
        bool ok = rc == 0 ? round_trip(cases[i].name, &s)
                          : rc == -EINVAL && printable_in(err.text, sizeof err.text, true);
        fails += !ok;
        json_decref(body);
    }
    table_done("canonical times", fails, COUNT(cases));
}

/*
 * Control characters include C1 (U+0080..U+009F): U+009B is the one-byte
 * CSI that some terminals honour like ESC [, U+0085 a line break. Free
 * texts end up in logs and answers, so they are refused like C0 and DEL.
 */
static void test_c1_controls_refused(void **state)
{
    static const struct {
        const char *field, *value;
    } cases[] = {
        {"reason", "a\xc2\x9b"
                   "31mred"},
        {"reason", "line\xc2\x85next"},
        {"external_id", "x\xc2\x80"},
    };
    int fails = 0;
    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        char ptr[40];
        json_t *body = J("{" LIMIT_F "}");
        json_object_set_new(body, cases[i].field, json_string(cases[i].value));
        snprintf(ptr, sizeof ptr, "/%s", cases[i].field);
        fails += !refused(cases[i].field, body, NOW, false, ptr);
        json_decref(body);
    }
    table_done("C1 control characters", fails, COUNT(cases));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_spec_fields),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_text_lengths),
        cmocka_unit_test(test_interval_counts),
        cmocka_unit_test(test_restore_stored_request),
        cmocka_unit_test(test_unknown_key_pointer_is_printable),
        cmocka_unit_test(test_schedule_derived_window_against_now),
        cmocka_unit_test(test_canonical_times_parse_again),
        cmocka_unit_test(test_c1_controls_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
