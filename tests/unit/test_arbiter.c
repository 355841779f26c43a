/*
 * test_arbiter.c - the arbitration rules of arbiter.h: tables of cases for
 * floors, steps, admission and timelines, and properties over random
 * installations and request sets, checked against a small reference model
 * of the header's rules.
 *
 * Table runners report every failing row by name before they fail, so one
 * run shows all the rules an implementation gets wrong. A property failure
 * prints its seed; CLSM_ARBITER_SEED=<seed> replays that one world.
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

#include "arbiter/arbiter.h"

#define MIN     INT64_C(60000)
#define Q       (15 * MIN)
#define H       (60 * MIN)
#define T0      INT64_C(1790000000000) /* "now" of every case: a Unix time in ms, 2026 */
#define AT(m)   (T0 + (m)*MIN)         /* 'm' minutes after now */
#define NC      ARB_NO_CAP
#define FL      ARB_FLOOR
#define FOREVER ARB_FOREVER
#define CONS    ARB_CONSUMPTION
#define PROD    ARB_PRODUCTION

#define VNB  "vnb-1" /* the grid operator of every installation here */
#define VNB2 "vnb-2" /* a grid operator of another grid */
#define TSO  "tso-1"
#define LF   "lf-1"
#define AGG  "agg-1"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* --- installations ------------------------------------------------------- */

enum preset { I_HP, I_HP_BIG, I_WB, I_WB14, I_PV, I_CHP, I_BAT, I_BAT0 };

/* clang-format off */
static const struct arb_inst presets[] = {
    /* a §14a heat pump of 9 kW: floor 4.2 kW */
    [I_HP] = {.id = "hp", .kind = ARB_HEAT_PUMP, .consumes = true, .rated_w = 9000,
              .sec14a = true, .floor_w = 4200, .vnb = VNB},
    /* a §14a heat pump of 20 kW: floor 40 % */
    [I_HP_BIG] = {.id = "hp-big", .kind = ARB_HEAT_PUMP, .consumes = true, .rated_w = 20000,
                  .sec14a = true, .floor_w = 8000, .vnb = VNB},
    /* a wallbox without §14a */
    [I_WB] = {.id = "wb", .kind = ARB_WALLBOX, .consumes = true, .rated_w = 11000, .vnb = VNB},
    /* a §14a wallbox sharing an energy manager with another one: 7.56 kW / 2 */
    [I_WB14] = {.id = "wb14", .kind = ARB_WALLBOX, .consumes = true, .rated_w = 11000,
                .sec14a = true, .floor_w = 3780, .vnb = VNB},
    [I_PV] = {.id = "pv", .kind = ARB_PV, .produces = true, .rated_w = 10000, .vnb = VNB},
    [I_CHP] = {.id = "chp", .kind = ARB_CHP, .produces = true, .rated_w = 2000, .vnb = VNB},
    /* a bidirectional §14a battery */
    [I_BAT] = {.id = "bat", .kind = ARB_BATTERY, .consumes = true, .produces = true,
               .rated_w = 5000, .sec14a = true, .floor_w = 4200, .vnb = VNB},
    /* a bidirectional battery without §14a */
    [I_BAT0] = {.id = "bat0", .kind = ARB_BATTERY, .consumes = true, .produces = true,
                .rated_w = 5000, .vnb = VNB},
};
/* clang-format on */

/* --- printing and comparing ---------------------------------------------- */

/* Text of a time; the last eight results stay valid. */
static const char *tm(int64_t t)
{
    static char buf[8][32];
    static int i;
    i = (i + 1) % 8;
    if (t == FOREVER)
        snprintf(buf[i], sizeof buf[i], "forever");
    else if ((t - T0) % MIN == 0)
        snprintf(buf[i], sizeof buf[i], "%+lldmin", (long long)((t - T0) / MIN));
    else
        snprintf(buf[i], sizeof buf[i], "%+lldms", (long long)(t - T0));
    return buf[i];
}

/* Text of a cap or step value; the last eight results stay valid. */
static const char *val(int64_t v)
{
    static char buf[8][32];
    static int i;
    i = (i + 1) % 8;
    if (v == NC)
        snprintf(buf[i], sizeof buf[i], "none");
    else if (v == FL)
        snprintf(buf[i], sizeof buf[i], "floor");
    else
        snprintf(buf[i], sizeof buf[i], "%lld", (long long)v);
    return buf[i];
}

static const char *nz(const char *s)
{
    return s != NULL ? s : "-";
}

static bool same_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static void print_steps(const char *title, const struct arb_step *s, size_t n)
{
    print_message("    %s:", title);
    for (size_t i = 0; i < n; i++)
        print_message(" [%s,%s) %s %s;", tm(s[i].start_ms), tm(s[i].end_ms),
                      s[i].dir == CONS ? "cons" : "prod", val(s[i].value_w));
    print_message("\n");
}

static void print_slots(const char *title, const struct arb_slot *s, size_t n)
{
    print_message("    %s:\n", title);
    for (size_t i = 0; i < n; i++)
        print_message("      [%s,%s) cons %s by %s%s, prod %s by %s%s\n", tm(s[i].start_ms),
                      tm(s[i].end_ms), val(s[i].dir[CONS].cap_w), nz(s[i].dir[CONS].by),
                      s[i].dir[CONS].grid ? " (grid)" : "", val(s[i].dir[PROD].cap_w),
                      nz(s[i].dir[PROD].by), s[i].dir[PROD].grid ? " (grid)" : "");
}

static bool cap_eq(const struct arb_cap *a, const struct arb_cap *b)
{
    return a->cap_w == b->cap_w && same_str(a->by, b->by) && a->grid == b->grid;
}

static bool caps_eq(const struct arb_slot *a, const struct arb_slot *b)
{
    return cap_eq(&a->dir[CONS], &b->dir[CONS]) && cap_eq(&a->dir[PROD], &b->dir[PROD]);
}

static bool slot_eq(const struct arb_slot *a, const struct arb_slot *b)
{
    return a->start_ms == b->start_ms && a->end_ms == b->end_ms && caps_eq(a, b);
}

static bool slots_eq(const struct arb_slot *a, const struct arb_slot *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!slot_eq(&a[i], &b[i]))
            return false;
    return true;
}

static int step_cmp(const void *pa, const void *pb)
{
    const struct arb_step *a = pa, *b = pb;
    if (a->start_ms != b->start_ms)
        return a->start_ms < b->start_ms ? -1 : 1;
    return (int)a->dir - (int)b->dir;
}

/* Equal as sets: the header orders steps by start only. */
static bool steps_eq(const struct arb_step *a, const struct arb_step *b, size_t n)
{
    struct arb_step x[ARB_MAX_STEPS], y[ARB_MAX_STEPS];
    memcpy(x, a, n * sizeof *a);
    memcpy(y, b, n * sizeof *b);
    qsort(x, n, sizeof *x, step_cmp);
    qsort(y, n, sizeof *y, step_cmp);
    for (size_t i = 0; i < n; i++)
        if (x[i].start_ms != y[i].start_ms || x[i].end_ms != y[i].end_ms || x[i].dir != y[i].dir ||
            x[i].value_w != y[i].value_w)
            return false;
    return true;
}

static bool sorted_by_start(const struct arb_step *s, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (s[i].start_ms < s[i - 1].start_ms)
            return false;
    return true;
}

/* A reason for people: non-empty and terminated inside its buffer. */
static bool text_ok(const char text[ARB_TEXT_MAX])
{
    return text[0] != '\0' && memchr(text, '\0', ARB_TEXT_MAX) != NULL;
}

/* Ends a table test: every failing row was printed before. */
static void table_done(const char *table, int fails, size_t rows)
{
    if (fails > 0)
        fail_msg("%s: %d of %zu cases failed", table, fails, rows);
}

/* --- arbiter_floor_single() ---------------------------------------------- */

static const struct floor_case {
    const char *name;
    enum arb_kind kind;
    bool consumes;
    int64_t rated_w;
    bool sec14a;
    int64_t want;
} floor_cases[] = {
    {"wallbox 11 kW", ARB_WALLBOX, true, 11000, true, 4200},
    {"wallbox 22 kW: 40 % is for heat pumps and AC only", ARB_WALLBOX, true, 22000, true, 4200},
    {"heat pump of exactly 11 kW is not above 11 kW", ARB_HEAT_PUMP, true, 11000, true, 4200},
    {"heat pump of 11.001 kW: 40 %", ARB_HEAT_PUMP, true, 11001, true, 4400},
    {"heat pump 12 kW: 40 %", ARB_HEAT_PUMP, true, 12000, true, 4800},
    {"heat pump 20 kW: 40 %", ARB_HEAT_PUMP, true, 20000, true, 8000},
    {"air conditioning 15 kW: 40 %", ARB_AIR_CONDITIONING, true, 15000, true, 6000},
    {"air conditioning 9 kW", ARB_AIR_CONDITIONING, true, 9000, true, 4200},
    {"storage heater 30 kW: 4.2 kW", ARB_STORAGE_HEATER, true, 30000, true, 4200},
    {"battery consuming", ARB_BATTERY, true, 5000, true, 4200},
    {"other kind consuming", ARB_OTHER_KIND, true, 8000, true, 4200},
    {"rated exactly 4.2 kW", ARB_WALLBOX, true, 4200, true, 4200},
    {"wallbox rated below 4.2 kW: its rated power", ARB_WALLBOX, true, 3700, true, 3700},
    {"heat pump rated 3 kW: its rated power", ARB_HEAT_PUMP, true, 3000, true, 3000},
    {"heat pump 20 kW without §14a", ARB_HEAT_PUMP, true, 20000, false, 0},
    {"wallbox without §14a", ARB_WALLBOX, true, 11000, false, 0},
    {"§14a flag on what does not consume", ARB_PV, false, 10000, true, 0},
    {"§14a wallbox that does not consume", ARB_WALLBOX, false, 11000, true, 0},
};

static void test_floor_single(void **state)
{
    int fails = 0;
    (void)state;
    for (size_t i = 0; i < COUNT(floor_cases); i++) {
        const struct floor_case *c = &floor_cases[i];
        int64_t got = arbiter_floor_single(c->kind, c->consumes, c->rated_w, c->sec14a);
        if (got != c->want) {
            print_message("  FAIL floor_single \"%s\": %lld, want %lld\n", c->name, (long long)got,
                          (long long)c->want);
            fails++;
        }
    }
    table_done("arbiter_floor_single", fails, COUNT(floor_cases));
}

/* --- arbiter_simultaneity_permille() -------------------------------------- */

static void test_simultaneity(void **state)
{
    /* n = 1 has no others to weigh; 1000 is the only neutral answer. */
    static const struct {
        size_t n;
        int want;
    } cases[] = {{1, 1000}, {2, 800}, {3, 750}, {4, 700},  {5, 650}, {6, 600},
                 {7, 550},  {8, 500}, {9, 500}, {10, 500}, {50, 500}};
    int fails = 0;
    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        int got = arbiter_simultaneity_permille(cases[i].n);
        if (got != cases[i].want) {
            print_message("  FAIL simultaneity n=%zu: %d, want %d\n", cases[i].n, got,
                          cases[i].want);
            fails++;
        }
    }
    table_done("arbiter_simultaneity_permille", fails, COUNT(cases));
}

/* --- arbiter_floors() ----------------------------------------------------- */

struct member {
    enum arb_kind kind;
    bool consumes;
    int64_t rated_w;
    bool sec14a;
};

/* clang-format off */
#define WB14 {ARB_WALLBOX, true, 11000, true}    /* floor 4200 */
#define WB3K {ARB_WALLBOX, true, 3000, true}     /* floor 3000 */
#define HP15 {ARB_HEAT_PUMP, true, 15000, true}  /* floor 6000 */
#define HP20 {ARB_HEAT_PUMP, true, 20000, true}  /* floor 8000 */
#define HPNO {ARB_HEAT_PUMP, true, 15000, false} /* no §14a */
#define PVNO {ARB_PV, false, 10000, false}       /* a generator */
#define MAXGRP 10
static const struct floors_case {
    const char *name;
    size_t n;
    struct member m[MAXGRP];
    int64_t group;
    int64_t want[MAXGRP];
} floors_cases[] = {
    {.name = "empty group", .n = 0, .group = 0},
    {.name = "one wallbox on its own", .n = 1, .m = {WB14}, .group = 4200, .want = {4200}},
    {.name = "one big heat pump on its own", .n = 1, .m = {HP20}, .group = 8000, .want = {8000}},
    {.name = "one consumer without §14a", .n = 1, .m = {HPNO}, .group = 0},
    {.name = "two wallboxes: 4.2 + 0.8 x 4.2 = 7.56 kW", .n = 2, .m = {WB14, WB14}, .group = 7560,
     .want = {3780, 3780}},
    {.name = "three wallboxes: factor 0.75", .n = 3, .m = {WB14, WB14, WB14}, .group = 10500,
     .want = {3500, 3500, 3500}},
    {.name = "four wallboxes: factor 0.7", .n = 4, .m = {WB14, WB14, WB14, WB14}, .group = 13020,
     .want = {3255, 3255, 3255, 3255}},
    {.name = "five wallboxes: factor 0.65", .n = 5, .m = {WB14, WB14, WB14, WB14, WB14},
     .group = 15120, .want = {3024, 3024, 3024, 3024, 3024}},
    {.name = "six wallboxes: factor 0.6", .n = 6, .m = {WB14, WB14, WB14, WB14, WB14, WB14},
     .group = 16800, .want = {2800, 2800, 2800, 2800, 2800, 2800}},
    {.name = "seven wallboxes: factor 0.55", .n = 7,
     .m = {WB14, WB14, WB14, WB14, WB14, WB14, WB14}, .group = 18060,
     .want = {2580, 2580, 2580, 2580, 2580, 2580, 2580}},
    /* 8000 + 0.5 x 29400 = 22700; 8000/37400 and 4200/37400 of it, the
     * remainder of 2 W to the heat pump */
    {.name = "big heat pump and seven wallboxes: factor 0.5, remainder to the largest", .n = 8,
     .m = {HP20, WB14, WB14, WB14, WB14, WB14, WB14, WB14}, .group = 22700,
     .want = {4857, 2549, 2549, 2549, 2549, 2549, 2549, 2549}},
    /* 6000 + 0.5 x 33600 = 22800: 3454 + 8 x 2418 = 22798 */
    {.name = "heat pump and eight wallboxes: factor 0.5", .n = 9,
     .m = {WB14, WB14, WB14, WB14, HP15, WB14, WB14, WB14, WB14}, .group = 22800,
     .want = {2418, 2418, 2418, 2418, 3456, 2418, 2418, 2418, 2418}},
    {.name = "ten wallboxes: factor 0.5", .n = 10,
     .m = {WB14, WB14, WB14, WB14, WB14, WB14, WB14, WB14, WB14, WB14}, .group = 23100,
     .want = {2310, 2310, 2310, 2310, 2310, 2310, 2310, 2310, 2310, 2310}},
    /* the factor counts §14a members only: two, not three */
    {.name = "two wallboxes and a PV", .n = 3, .m = {WB14, PVNO, WB14}, .group = 7560,
     .want = {3780, 0, 3780}},
    /* 6000 + 0.8 x 4200 = 9360: 5505.9 and 3854.1, remainder 1 W */
    {.name = "heat pump, heat pump without §14a, wallbox", .n = 3, .m = {HP15, HPNO, WB14},
     .group = 9360, .want = {5506, 0, 3854}},
    /* 8000 + 0.8 x 4200 = 11360: 3910.8 and 7449.2, remainder 1 W */
    {.name = "largest member last", .n = 2, .m = {WB14, HP20}, .group = 11360,
     .want = {3910, 7450}},
    /* 4200 + 0.8 x 3000 = 6600: 3850 and 2750 */
    {.name = "a member rated below 4.2 kW", .n = 2, .m = {WB3K, WB14}, .group = 6600,
     .want = {2750, 3850}},
    {.name = "one §14a member among others", .n = 3, .m = {PVNO, HP15, HPNO}, .group = 6000,
     .want = {0, 6000, 0}},
    {.name = "no §14a member at all", .n = 3, .m = {HPNO, PVNO, HPNO}, .group = 0,
     .want = {0, 0, 0}},
};
/* clang-format on */

static void test_floors(void **state)
{
    int fails = 0;
    (void)state;
    for (size_t i = 0; i < COUNT(floors_cases); i++) {
        const struct floors_case *c = &floors_cases[i];
        struct arb_inst inst[MAXGRP];
        struct arb_inst *ptr[MAXGRP];
        int64_t sum = 0;
        bool bad = false;

        for (size_t k = 0; k < c->n; k++) {
            inst[k] = (struct arb_inst){.id = "m",
                                        .kind = c->m[k].kind,
                                        .consumes = c->m[k].consumes,
                                        .produces = !c->m[k].consumes,
                                        .rated_w = c->m[k].rated_w,
                                        .sec14a = c->m[k].sec14a,
                                        .floor_w = 99999, /* must be overwritten */
                                        .vnb = VNB};
            ptr[k] = &inst[k];
        }
        int64_t got = arbiter_floors(ptr, c->n);
        for (size_t k = 0; k < c->n; k++) {
            sum += inst[k].floor_w;
            bad |= inst[k].floor_w != c->want[k];
        }
        if (got != c->group || bad || sum != got) {
            print_message("  FAIL floors \"%s\": group %lld (want %lld), members:", c->name,
                          (long long)got, (long long)c->group);
            for (size_t k = 0; k < c->n; k++)
                print_message(" %lld/%lld", (long long)inst[k].floor_w, (long long)c->want[k]);
            print_message("\n");
            fails++;
        }
    }
    table_done("arbiter_floors", fails, COUNT(floors_cases));
}

/* Eight equal members: 18900 W, 2362.5 each; the remainder of 4 W goes to
 * one of the (equally) largest members. */
static void test_floors_equal_members(void **state)
{
    struct arb_inst inst[8];
    struct arb_inst *ptr[8];
    int64_t sum = 0;
    int raised = 0;
    (void)state;
    for (size_t k = 0; k < 8; k++) {
        inst[k] = (struct arb_inst){.id = "wb",
                                    .kind = ARB_WALLBOX,
                                    .consumes = true,
                                    .rated_w = 11000,
                                    .sec14a = true,
                                    .vnb = VNB};
        ptr[k] = &inst[k];
    }
    assert_int_equal(arbiter_floors(ptr, 8), 18900);
    for (size_t k = 0; k < 8; k++) {
        sum += inst[k].floor_w;
        if (inst[k].floor_w != 2362) {
            assert_int_equal(inst[k].floor_w, 2366);
            raised++;
        }
    }
    assert_int_equal(sum, 18900);
    assert_int_equal(raised, 1);
}

/* --- arbiter_steps() ------------------------------------------------------ */

#define WIN .start_ms = AT(0), .end_ms = AT(60)
/* clang-format off */
#define SP_LIMIT(v)        {.action = ARB_LIMIT, WIN, .value_w = (v)}
#define SP_LIMIT_DIR(d, v) {.action = ARB_LIMIT, WIN, .has_dir = true, .dir = (d), .value_w = (v)}
#define SP_DIM             {.action = ARB_DIM, WIN}
#define SP_SWITCH(l)       {.action = ARB_SWITCH, WIN, .level = (l)}
#define SP_RELEASE         {.action = ARB_RELEASE, WIN}
#define SP_RELEASE_DIR(d)  {.action = ARB_RELEASE, WIN, .has_dir = true, .dir = (d)}
#define SP_FOREVER(v)      {.action = ARB_LIMIT, .start_ms = AT(0), .end_ms = FOREVER, \
                            .value_w = (v)}
#define SP_SCHEDULE(...)                                                                           \
    {.action = ARB_SCHEDULE, WIN, .intervals = (const struct arb_interval[]){__VA_ARGS__},         \
     .nintervals = sizeof((const struct arb_interval[]){__VA_ARGS__}) / sizeof(struct arb_interval)}
/* schedule intervals: watts in the installation's own direction, watts in a
 * named direction, a level */
#define IW(s, e, v)     {.start_ms = AT(s), .end_ms = AT(e), .value_w = (v)}
#define IWD(s, e, d, v) {.start_ms = AT(s), .end_ms = AT(e), .has_dir = true, .dir = (d), \
                         .value_w = (v)}
#define IL(s, e, l)     {.start_ms = AT(s), .end_ms = AT(e), .is_level = true, .level = (l)}
/* a step from minute s to minute e */
#define ST(s, e, d, v)  {AT(s), AT(e), (d), (v)}
/* clang-format on */

/* clang-format off */
static const struct steps_case {
    const char *name;
    enum preset inst;
    struct arb_action_spec spec;
    size_t room; /* 0: ARB_MAX_STEPS */
    int rc;
    const char *code; /* on -EINVAL; NULL: any "rejected." code */
    struct arb_step want[6];
} steps_cases[] = {
    /* limit */
    {.name = "limit without direction: a consumer's consumption", .inst = I_HP,
     .spec = SP_LIMIT(5000), .rc = 1, .want = {ST(0, 60, CONS, 5000)}},
    {.name = "limit without direction: a generator's production", .inst = I_PV,
     .spec = SP_LIMIT(3000), .rc = 1, .want = {ST(0, 60, PROD, 3000)}},
    {.name = "limit without direction: a CHP to 0 W", .inst = I_CHP, .spec = SP_LIMIT(0), .rc = 1,
     .want = {ST(0, 60, PROD, 0)}},
    {.name = "limit without direction on a bidirectional one", .inst = I_BAT,
     .spec = SP_LIMIT(2000), .rc = -EINVAL, .code = "rejected.direction"},
    {.name = "limit production of a battery", .inst = I_BAT, .spec = SP_LIMIT_DIR(PROD, 2000),
     .rc = 1, .want = {ST(0, 60, PROD, 2000)}},
    {.name = "limit consumption of a battery", .inst = I_BAT, .spec = SP_LIMIT_DIR(CONS, 4500),
     .rc = 1, .want = {ST(0, 60, CONS, 4500)}},
    {.name = "limit naming a consumer's own direction", .inst = I_HP,
     .spec = SP_LIMIT_DIR(CONS, 6000), .rc = 1, .want = {ST(0, 60, CONS, 6000)}},
    {.name = "limit production of a pure consumer", .inst = I_HP, .spec = SP_LIMIT_DIR(PROD, 2000),
     .rc = -EINVAL, .code = "rejected.direction"},
    {.name = "limit consumption of a pure generator", .inst = I_PV,
     .spec = SP_LIMIT_DIR(CONS, 2000), .rc = -EINVAL, .code = "rejected.direction"},
    {.name = "limit below the floor: clipping is admission's job", .inst = I_HP,
     .spec = SP_LIMIT(1000), .rc = 1, .want = {ST(0, 60, CONS, 1000)}},
    {.name = "limit until released", .inst = I_HP, .spec = SP_FOREVER(5000), .rc = 1,
     .want = {{AT(0), FOREVER, CONS, 5000}}},
    {.name = "negative limit", .inst = I_HP, .spec = SP_LIMIT(-5), .rc = -EINVAL},
    /* -1 W is ARB_FLOOR: taken as a value it would turn a limit into a dim */
    {.name = "limit of -1 W on a generator", .inst = I_PV, .spec = SP_LIMIT(-1), .rc = -EINVAL},
    {.name = "schedule of -1 W", .inst = I_HP, .spec = SP_SCHEDULE(IW(0, 15, -1)), .rc = -EINVAL},
    /* dim */
    {.name = "dim a §14a heat pump", .inst = I_HP, .spec = SP_DIM, .rc = 1,
     .want = {ST(0, 60, CONS, FL)}},
    {.name = "dim a §14a battery: consumption only", .inst = I_BAT, .spec = SP_DIM, .rc = 1,
     .want = {ST(0, 60, CONS, FL)}},
    {.name = "dim a consumer without §14a", .inst = I_WB, .spec = SP_DIM, .rc = -EINVAL,
     .code = "rejected.not_sec14a"},
    {.name = "dim a generator", .inst = I_PV, .spec = SP_DIM, .rc = -EINVAL,
     .code = "rejected.not_sec14a"},
    {.name = "dim a battery without §14a", .inst = I_BAT0, .spec = SP_DIM, .rc = -EINVAL,
     .code = "rejected.not_sec14a"},
    /* switch */
    {.name = "switch on a consumer", .inst = I_HP, .spec = SP_SWITCH(ARB_LEVEL_ON), .rc = 1,
     .want = {ST(0, 60, CONS, NC)}},
    {.name = "switch off a consumer", .inst = I_HP, .spec = SP_SWITCH(ARB_LEVEL_OFF), .rc = 1,
     .want = {ST(0, 60, CONS, 0)}},
    {.name = "switch dim a §14a consumer", .inst = I_HP, .spec = SP_SWITCH(ARB_LEVEL_DIM), .rc = 1,
     .want = {ST(0, 60, CONS, FL)}},
    {.name = "switch on a generator", .inst = I_PV, .spec = SP_SWITCH(ARB_LEVEL_ON), .rc = 1,
     .want = {ST(0, 60, PROD, NC)}},
    {.name = "switch off a generator", .inst = I_PV, .spec = SP_SWITCH(ARB_LEVEL_OFF), .rc = 1,
     .want = {ST(0, 60, PROD, 0)}},
    {.name = "switch on a battery: both directions", .inst = I_BAT, .spec = SP_SWITCH(ARB_LEVEL_ON),
     .rc = 2, .want = {ST(0, 60, CONS, NC), ST(0, 60, PROD, NC)}},
    {.name = "switch off a battery: both directions", .inst = I_BAT,
     .spec = SP_SWITCH(ARB_LEVEL_OFF), .rc = 2, .want = {ST(0, 60, CONS, 0), ST(0, 60, PROD, 0)}},
    {.name = "switch dim a §14a battery: floor and no cap", .inst = I_BAT,
     .spec = SP_SWITCH(ARB_LEVEL_DIM), .rc = 2, .want = {ST(0, 60, CONS, FL), ST(0, 60, PROD, NC)}},
    {.name = "switch off a battery without §14a", .inst = I_BAT0, .spec = SP_SWITCH(ARB_LEVEL_OFF),
     .rc = 2, .want = {ST(0, 60, CONS, 0), ST(0, 60, PROD, 0)}},
    {.name = "switch dim a consumer without §14a", .inst = I_WB, .spec = SP_SWITCH(ARB_LEVEL_DIM),
     .rc = -EINVAL, .code = "rejected.not_sec14a"},
    {.name = "switch dim a generator", .inst = I_PV, .spec = SP_SWITCH(ARB_LEVEL_DIM),
     .rc = -EINVAL, .code = "rejected.not_sec14a"},
    /* schedule */
    {.name = "schedule of watts on a consumer", .inst = I_HP,
     .spec = SP_SCHEDULE(IW(0, 15, 5000), IW(15, 30, 3000), IW(30, 45, 0)), .rc = 3,
     .want = {ST(0, 15, CONS, 5000), ST(15, 30, CONS, 3000), ST(30, 45, CONS, 0)}},
    {.name = "schedule with a gap: no step in the gap", .inst = I_HP,
     .spec = SP_SCHEDULE(IW(0, 15, 5000), IW(30, 45, 6000)), .rc = 2,
     .want = {ST(0, 15, CONS, 5000), ST(30, 45, CONS, 6000)}},
    {.name = "schedule of watts on a generator", .inst = I_PV,
     .spec = SP_SCHEDULE(IW(0, 15, 0), IW(15, 60, 4000)), .rc = 2,
     .want = {ST(0, 15, PROD, 0), ST(15, 60, PROD, 4000)}},
    {.name = "schedule of watts without direction on a battery", .inst = I_BAT,
     .spec = SP_SCHEDULE(IW(0, 15, 1000)), .rc = -EINVAL, .code = "rejected.direction"},
    {.name = "schedule of watts with directions on a battery", .inst = I_BAT,
     .spec = SP_SCHEDULE(IWD(0, 15, PROD, 1000), IWD(15, 30, CONS, 4500)), .rc = 2,
     .want = {ST(0, 15, PROD, 1000), ST(15, 30, CONS, 4500)}},
    {.name = "schedule of levels on a battery", .inst = I_BAT,
     .spec = SP_SCHEDULE(IL(0, 15, ARB_LEVEL_ON), IL(15, 30, ARB_LEVEL_DIM),
     IL(30, 45, ARB_LEVEL_OFF)), .rc = 6, .want = {ST(0, 15, CONS, NC), ST(0, 15, PROD, NC),
     ST(15, 30, CONS, FL), ST(15, 30, PROD, NC), ST(30, 45, CONS, 0), ST(30, 45, PROD, 0)}},
    {.name = "schedule of levels on a generator", .inst = I_PV,
     .spec = SP_SCHEDULE(IL(0, 15, ARB_LEVEL_OFF), IL(15, 30, ARB_LEVEL_ON)), .rc = 2,
     .want = {ST(0, 15, PROD, 0), ST(15, 30, PROD, NC)}},
    {.name = "schedule mixing a level and watts", .inst = I_HP,
     .spec = SP_SCHEDULE(IL(0, 15, ARB_LEVEL_OFF), IW(15, 30, 6000)), .rc = 2,
     .want = {ST(0, 15, CONS, 0), ST(15, 30, CONS, 6000)}},
    {.name = "schedule level dim without §14a", .inst = I_WB,
     .spec = SP_SCHEDULE(IL(0, 15, ARB_LEVEL_DIM)), .rc = -EINVAL, .code = "rejected.not_sec14a"},
    {.name = "schedule of production watts on a consumer", .inst = I_HP,
     .spec = SP_SCHEDULE(IW(0, 15, 5000), IWD(15, 30, PROD, 1000)), .rc = -EINVAL,
     .code = "rejected.direction"},
    /* release */
    {.name = "release a consumer", .inst = I_HP, .spec = SP_RELEASE, .rc = 1,
     .want = {ST(0, 60, CONS, NC)}},
    {.name = "release a generator", .inst = I_PV, .spec = SP_RELEASE, .rc = 1,
     .want = {ST(0, 60, PROD, NC)}},
    {.name = "release production of a battery", .inst = I_BAT, .spec = SP_RELEASE_DIR(PROD),
     .rc = 1, .want = {ST(0, 60, PROD, NC)}},
    {.name = "release consumption of a battery", .inst = I_BAT, .spec = SP_RELEASE_DIR(CONS),
     .rc = 1, .want = {ST(0, 60, CONS, NC)}},
    {.name = "release without direction on a battery: both directions", .inst = I_BAT,
     .spec = SP_RELEASE, .rc = 2, .want = {ST(0, 60, CONS, NC), ST(0, 60, PROD, NC)}},
    {.name = "release production of a consumer", .inst = I_HP, .spec = SP_RELEASE_DIR(PROD),
     .rc = -EINVAL, .code = "rejected.direction"},
    /* room */
    {.name = "room for one of two steps", .inst = I_BAT, .spec = SP_SWITCH(ARB_LEVEL_OFF),
     .room = 1, .rc = -E2BIG},
    {.name = "room for exactly two steps", .inst = I_BAT, .spec = SP_SWITCH(ARB_LEVEL_OFF),
     .room = 2, .rc = 2, .want = {ST(0, 60, CONS, 0), ST(0, 60, PROD, 0)}},
};
/* clang-format on */

static int run_steps(const struct arb_action_spec *spec, enum preset p, struct arb_step *out,
                     size_t room, const char **code, char *text)
{
    struct arb_inst inst = presets[p];
    *code = NULL;
    text[0] = '\0';
    return arbiter_steps(spec, &inst, out, room, code, text);
}

static void test_steps(void **state)
{
    int fails = 0;
    (void)state;
    for (size_t i = 0; i < COUNT(steps_cases); i++) {
        const struct steps_case *c = &steps_cases[i];
        struct arb_step out[ARB_MAX_STEPS];
        char text[ARB_TEXT_MAX];
        const char *code;
        bool ok;

        int rc =
            run_steps(&c->spec, c->inst, out, c->room != 0 ? c->room : ARB_MAX_STEPS, &code, text);
        if (c->rc >= 0)
            ok = rc == c->rc && steps_eq(out, c->want, (size_t)rc) &&
                 sorted_by_start(out, (size_t)rc);
        else if (c->rc == -EINVAL)
            ok = rc == -EINVAL && code != NULL &&
                 (c->code != NULL ? strcmp(code, c->code) == 0
                                  : strncmp(code, "rejected.", 9) == 0) &&
                 text_ok(text);
        else
            ok = rc == c->rc;
        if (!ok) {
            print_message("  FAIL steps \"%s\": rc %d (want %d), code %s (want %s)\n", c->name, rc,
                          c->rc, nz(code), nz(c->code));
            if (rc > 0)
                print_steps("got", out, (size_t)rc);
            if (c->rc > 0)
                print_steps("want", c->want, (size_t)c->rc);
            fails++;
        }
    }
    table_done("arbiter_steps", fails, COUNT(steps_cases));
}

/* 96 quarter hours of levels on a bidirectional installation: the most a
 * request may have, 192 steps, and one more than room for. */
static void test_steps_full_day(void **state)
{
    static const enum arb_level lv[] = {ARB_LEVEL_ON, ARB_LEVEL_DIM, ARB_LEVEL_OFF};
    struct arb_interval iv[96];
    struct arb_step out[ARB_MAX_STEPS];
    char text[ARB_TEXT_MAX];
    const char *code;
    (void)state;

    for (int k = 0; k < 96; k++)
        iv[k] = (struct arb_interval){.start_ms = AT(15 * k),
                                      .end_ms = AT(15 * k + 15),
                                      .is_level = true,
                                      .level = lv[k % 3]};
    struct arb_action_spec spec = {.action = ARB_SCHEDULE,
                                   .start_ms = AT(0),
                                   .end_ms = AT(24 * 60),
                                   .intervals = iv,
                                   .nintervals = 96};
    assert_int_equal(run_steps(&spec, I_BAT, out, ARB_MAX_STEPS, &code, text), 192);
    assert_true(sorted_by_start(out, 192));
    for (size_t k = 0; k < 192; k++) {
        const struct arb_interval *v = &iv[(out[k].start_ms - AT(0)) / Q];
        int64_t want = v->level == ARB_LEVEL_OFF                        ? 0
                       : v->level == ARB_LEVEL_ON || out[k].dir == PROD ? NC
                                                                        : FL;
        assert_int_equal(out[k].end_ms, v->end_ms);
        assert_int_equal(out[k].value_w, want);
    }
    assert_int_equal(run_steps(&spec, I_BAT, out, ARB_MAX_STEPS - 1, &code, text), -E2BIG);
    /* a single limit does not fit into no room either */
    struct arb_action_spec lim = SP_LIMIT(5000);
    assert_int_equal(run_steps(&lim, I_HP, out, 0, &code, text), -E2BIG);
}

/* --- arbiter_admit() ------------------------------------------------------- */

/* clang-format off */
#define RQ(id_, party_, role_, purpose_, action_, seq_, ...)                                       \
    {.id = (id_), .party = (party_), .role = (role_), .purpose = (purpose_), .action = (action_), \
     .seq = (seq_), .steps = (const struct arb_step[]){__VA_ARGS__},                              \
     .nsteps = sizeof((const struct arb_step[]){__VA_ARGS__}) / sizeof(struct arb_step)}
#define VLIM(id, seq, ...) RQ(id, VNB, ARB_ROLE_VNB, ARB_GRID, ARB_LIMIT, seq, __VA_ARGS__)
#define VREL(id, seq, ...) RQ(id, VNB, ARB_ROLE_VNB, ARB_GRID, ARB_RELEASE, seq, __VA_ARGS__)
#define VON(id, seq, ...)  RQ(id, VNB, ARB_ROLE_VNB, ARB_GRID, ARB_SWITCH, seq, __VA_ARGS__)
#define TLIM(id, seq, ...) RQ(id, TSO, ARB_ROLE_UENB, ARB_GRID, ARB_LIMIT, seq, __VA_ARGS__)
#define MLIM(id, party, seq, ...) \
    RQ(id, party, ARB_ROLE_MARKET, ARB_MARKET, ARB_LIMIT, seq, __VA_ARGS__)
#define MREL(id, party, seq, ...) \
    RQ(id, party, ARB_ROLE_MARKET, ARB_MARKET, ARB_RELEASE, seq, __VA_ARGS__)
/* clang-format on */

/* Requests in force when the cases below are decided (steps resolved). */
static const struct arb_req a_vnb5000 = VLIM("a-vnb5000", 10, ST(-60, 120, CONS, 5000));
static const struct arb_req a_tso4400 = TLIM("a-tso4400", 11, ST(-60, 120, CONS, 4400));
static const struct arb_req a_vnbrel = VREL("a-vnbrel", 12, ST(-60, 120, CONS, NC));
static const struct arb_req a_vnb5000_late = VLIM("a-vnb5000-late", 13, ST(30, 120, CONS, 5000));
static const struct arb_req a_vnb_on = VON("a-vnb-on", 14, ST(-60, 120, CONS, NC));
static const struct arb_req a_lf = MLIM("a-lf", LF, 20, ST(0, 60, CONS, 6000));
static const struct arb_req a_lf_rel = MREL("a-lf-rel", LF, 21, ST(0, 60, CONS, NC));
static const struct arb_req a_lf_rel_half = MREL("a-lf-rel-half", LF, 24, ST(0, 30, CONS, NC));
static const struct arb_req a_agg_rel = MREL("a-agg-rel", AGG, 22, ST(0, 60, CONS, NC));
static const struct arb_req a_agg_later = MLIM("a-agg-later", AGG, 23, ST(60, 120, CONS, 6000));

/* clang-format off */
#define P_VNB      {VNB, ARB_ROLE_VNB, false}
#define P_VNB2     {VNB2, ARB_ROLE_VNB, false}
#define P_TSO      {TSO, ARB_ROLE_UENB, false}
#define P_LF       {LF, ARB_ROLE_MARKET, true}
#define P_LF_NOCTL {LF, ARB_ROLE_MARKET, false}
#define P_AGG      {AGG, ARB_ROLE_MARKET, true}
#define P_VNB_CTL  {VNB, ARB_ROLE_VNB, true}
#define P_TSO_CTL  {TSO, ARB_ROLE_UENB, true}
#define P_OTHER    {"x-1", ARB_ROLE_OTHER, true}
/* clang-format on */
#define CW(v)       ST(0, 60, CONS, v) /* consumption now for an hour */
#define OK          "admitted"
#define CLIPPED     "clipped.floor_14a"
#define CONFLICT    "rejected.conflict"
#define YELLOW      "rejected.yellow_above_grid_cap"
#define RED         "rejected.red_light"
#define OVER        "rejected.window_over"
#define GRID_LIMIT  .purpose = ARB_GRID, .action = ARB_LIMIT
#define MKT_LIMIT   .purpose = ARB_MARKET, .action = ARB_LIMIT
#define MKT_RELEASE .purpose = ARB_MARKET, .action = ARB_RELEASE
#define MKT_SWITCH  .purpose = ARB_MARKET, .action = ARB_SWITCH

static const struct admit_case {
    const char *name;
    enum preset inst;
    enum arb_light light;
    struct arb_party party;
    enum arb_purpose purpose;
    enum arb_action action;
    struct arb_step steps[3];
    const struct arb_req *active[4]; /* NULL-terminated */
    const char *code;
    const char *alt;      /* another acceptable code, where the header allows two */
    const char *conflict; /* rejected.conflict: the request named */
    int64_t want[3];      /* admitted: the resolved step values */
} admit_cases[] = {
    /* 1. authority */
    {"the segment's VNB: grid limit", I_HP, .party = P_VNB, GRID_LIMIT, .steps = {CW(5000)},
     .code = OK, .want = {5000}},
    {"another VNB: grid limit", I_HP, .party = P_VNB2, GRID_LIMIT, .steps = {CW(5000)},
     .code = "rejected.foreign_grid"},
    {"a TSO: grid limit", I_HP, .party = P_TSO, GRID_LIMIT, .steps = {CW(5000)}, .code = OK,
     .want = {5000}},
    {"a market party: grid limit", I_HP, .party = P_LF, GRID_LIMIT, .steps = {CW(5000)},
     .code = "rejected.not_grid_operator"},
    {"someone else: grid limit", I_HP, .party = P_OTHER, GRID_LIMIT, .steps = {CW(5000)},
     .code = "rejected.not_grid_operator"},
    {"a market party: grid release", I_HP, .party = P_LF, .purpose = ARB_GRID,
     .action = ARB_RELEASE, .steps = {CW(NC)}, .code = "rejected.not_grid_operator"},
    {"market party with the control right", I_HP, .party = P_LF, MKT_LIMIT, .steps = {CW(5000)},
     .code = OK, .want = {5000}},
    {"market party without the control right", I_HP, .party = P_LF_NOCTL, MKT_LIMIT,
     .steps = {CW(5000)}, .code = "rejected.no_control_right"},
    {"market release without the control right", I_HP, .party = P_LF_NOCTL, MKT_RELEASE,
     .steps = {CW(NC)}, .code = "rejected.no_control_right"},
    {"the VNB asking for the market", I_HP, .party = P_VNB_CTL, MKT_LIMIT, .steps = {CW(5000)},
     .code = "rejected.not_market_party"},
    {"a TSO asking for the market", I_HP, .party = P_TSO_CTL, MKT_LIMIT, .steps = {CW(5000)},
     .code = "rejected.not_market_party"},
    {"someone else asking for the market", I_HP, .party = P_OTHER, MKT_LIMIT, .steps = {CW(5000)},
     .code = "rejected.not_market_party", .alt = "rejected.no_control_right"},
    {"authority before the window", I_HP, .party = P_VNB2, GRID_LIMIT,
     .steps = {ST(-120, -60, CONS, 5000)}, .code = "rejected.foreign_grid"},
    {"authority before the light", I_HP, ARB_RED, .party = P_LF_NOCTL, MKT_LIMIT,
     .steps = {CW(5000)}, .code = "rejected.no_control_right"},
    /* 2. window */
    {"window ended an hour ago", I_HP, .party = P_VNB, GRID_LIMIT,
     .steps = {ST(-120, -60, CONS, 5000)}, .code = OVER},
    {"window ends exactly now", I_HP, .party = P_VNB, GRID_LIMIT, .steps = {ST(-60, 0, CONS, 5000)},
     .code = OVER},
    {"window ends 1 ms after now", I_HP, .party = P_VNB, GRID_LIMIT,
     .steps = {{AT(-60), AT(0) + 1, CONS, 5000}}, .code = OK, .want = {5000}},
    {"window started an hour ago, still running", I_HP, .party = P_VNB, GRID_LIMIT,
     .steps = {ST(-60, 60, CONS, 5000)}, .code = OK, .want = {5000}},
    {"schedule with one interval over, one to come", I_HP, .party = P_VNB, .purpose = ARB_GRID,
     .action = ARB_SCHEDULE, .steps = {ST(-120, -60, CONS, 5000), ST(0, 60, CONS, 6000)},
     .code = OK, .want = {5000, 6000}},
    {"window before the light", I_HP, ARB_RED, .party = P_LF, MKT_LIMIT,
     .steps = {ST(-120, -60, CONS, 5000)}, .code = OVER},
    /* 3. traffic light */
    {"red: market limit refused", I_HP, ARB_RED, .party = P_LF, MKT_LIMIT, .steps = {CW(5000)},
     .code = RED},
    {"red: a market party may still release", I_HP, ARB_RED, .party = P_LF, MKT_RELEASE,
     .steps = {CW(NC)}, .code = OK, .want = {NC}},
    {"red: the VNB passes", I_HP, ARB_RED, .party = P_VNB, GRID_LIMIT, .steps = {CW(5000)},
     .code = OK, .want = {5000}},
    {"red: a TSO passes", I_HP, ARB_RED, .party = P_TSO, GRID_LIMIT, .steps = {CW(5000)},
     .code = OK, .want = {5000}},
    {"red: the VNB is clipped, not refused", I_HP, ARB_RED, .party = P_VNB, GRID_LIMIT,
     .steps = {CW(0)}, .code = CLIPPED, .want = {4200}},
    {"yellow without grid cap: market limit", I_HP, ARB_YELLOW, .party = P_LF, MKT_LIMIT,
     .steps = {CW(8000)}, .code = OK, .want = {8000}},
    {"yellow without grid cap: market on", I_HP, ARB_YELLOW, .party = P_LF, MKT_SWITCH,
     .steps = {CW(NC)}, .code = OK, .want = {NC}},
    {"yellow: above the VNB's cap", I_HP, ARB_YELLOW, .party = P_LF, MKT_LIMIT, .steps = {CW(6000)},
     .active = {&a_vnb5000}, .code = YELLOW},
    {"yellow: equal to the VNB's cap", I_HP, ARB_YELLOW, .party = P_LF, MKT_LIMIT,
     .steps = {CW(5000)}, .active = {&a_vnb5000}, .code = OK, .want = {5000}},
    {"yellow: below the VNB's cap", I_HP, ARB_YELLOW, .party = P_LF, MKT_LIMIT, .steps = {CW(4500)},
     .active = {&a_vnb5000}, .code = OK, .want = {4500}},
    {"yellow: market on under a cap", I_HP, ARB_YELLOW, .party = P_LF, MKT_SWITCH,
     .steps = {CW(NC)}, .active = {&a_vnb5000}, .code = YELLOW},
    {"yellow: a market party may still release under a cap", I_HP, ARB_YELLOW, .party = P_LF,
     MKT_RELEASE, .steps = {CW(NC)}, .active = {&a_vnb5000}, .code = OK, .want = {NC}},
    {"yellow: the other direction has no cap", I_BAT, ARB_YELLOW, .party = P_LF, MKT_LIMIT,
     .steps = {ST(0, 60, PROD, 8000)}, .active = {&a_vnb5000}, .code = OK, .want = {8000}},
    {"yellow: the VNB's cap, not the TSO's lower one", I_HP, ARB_YELLOW, .party = P_LF, MKT_LIMIT,
     .steps = {CW(4500)}, .active = {&a_tso4400, &a_vnb5000}, .code = OK, .want = {4500}},
    {"yellow: the TSO's cap when the VNB has none", I_HP, ARB_YELLOW, .party = P_LF, MKT_LIMIT,
     .steps = {CW(4500)}, .active = {&a_tso4400}, .code = YELLOW},
    {"yellow: a cap the VNB released", I_HP, ARB_YELLOW, .party = P_LF, MKT_LIMIT,
     .steps = {CW(8000)}, .active = {&a_vnb5000, &a_vnbrel}, .code = OK, .want = {8000}},
    {"yellow: the VNB released its cap, the TSO's holds", I_HP, ARB_YELLOW, .party = P_LF,
     MKT_LIMIT, .steps = {CW(4500)}, .active = {&a_vnb5000, &a_vnbrel, &a_tso4400}, .code = YELLOW},
    {"yellow: the VNB's explicit on overrides the TSO's cap", I_HP, ARB_YELLOW, .party = P_LF,
     MKT_LIMIT, .steps = {CW(4500)}, .active = {&a_tso4400, &a_vnb_on}, .code = OK, .want = {4500}},
    {"yellow: a cap that starts after the step's start", I_HP, ARB_YELLOW, .party = P_LF, MKT_LIMIT,
     .steps = {CW(8000)}, .active = {&a_vnb5000_late}, .code = OK, .want = {8000}},
    {"yellow: a later step starts under the cap", I_HP, ARB_YELLOW, .party = P_LF,
     .purpose = ARB_MARKET, .action = ARB_SCHEDULE,
     .steps = {ST(0, 30, CONS, 8000), ST(30, 60, CONS, 6000)}, .active = {&a_vnb5000_late},
     .code = YELLOW},
    {"yellow: grid requests pass above the cap", I_HP, ARB_YELLOW, .party = P_VNB, GRID_LIMIT,
     .steps = {CW(8000)}, .active = {&a_tso4400}, .code = OK, .want = {8000}},
    {"yellow before the market slot", I_HP, ARB_YELLOW, .party = P_AGG, MKT_LIMIT,
     .steps = {CW(6000)}, .active = {&a_vnb5000, &a_lf}, .code = YELLOW},
    /* 4. market slot */
    {"slot held by another party", I_HP, .party = P_AGG, MKT_LIMIT,
     .steps = {ST(30, 120, CONS, 4500)}, .active = {&a_lf}, .code = CONFLICT, .conflict = "a-lf"},
    {"slot held by the same party", I_HP, .party = P_LF, MKT_LIMIT, .steps = {CW(4500)},
     .active = {&a_lf}, .code = CONFLICT, .conflict = "a-lf"},
    {"slot held by a later window", I_HP, .party = P_LF, MKT_LIMIT,
     .steps = {ST(30, 90, CONS, 4500)}, .active = {&a_agg_later}, .code = CONFLICT,
     .conflict = "a-agg-later"},
    {"adjacent windows do not overlap", I_HP, .party = P_AGG, MKT_LIMIT,
     .steps = {ST(60, 120, CONS, 4500)}, .active = {&a_lf}, .code = OK, .want = {4500}},
    {"another direction is another slot", I_BAT, .party = P_AGG, MKT_LIMIT,
     .steps = {ST(0, 60, PROD, 1000)}, .active = {&a_lf}, .code = OK, .want = {1000}},
    {"a market release holds no slot", I_HP, .party = P_LF, MKT_LIMIT, .steps = {CW(5000)},
     .active = {&a_agg_rel}, .code = OK, .want = {5000}},
    {"a market release needs no slot", I_HP, .party = P_LF, MKT_RELEASE, .steps = {CW(NC)},
     .active = {&a_lf}, .code = OK, .want = {NC}},
    {"grid requests hold no market slot", I_HP, .party = P_LF, MKT_LIMIT, .steps = {CW(5000)},
     .active = {&a_vnb5000, &a_tso4400}, .code = OK, .want = {5000}},
    {"grid requests ignore market slots", I_HP, .party = P_VNB, GRID_LIMIT, .steps = {CW(5000)},
     .active = {&a_lf}, .code = OK, .want = {5000}},
    {"market on takes a slot too", I_HP, .party = P_AGG, MKT_SWITCH, .steps = {CW(NC)},
     .active = {&a_lf}, .code = CONFLICT, .conflict = "a-lf"},
    {"one step of a schedule overlaps", I_HP, .party = P_LF, .purpose = ARB_MARKET,
     .action = ARB_SCHEDULE, .steps = {ST(0, 30, CONS, 5000), ST(75, 120, CONS, 5000)},
     .active = {&a_agg_later}, .code = CONFLICT, .conflict = "a-agg-later"},
    {"a slot its holder released is free", I_HP, .party = P_AGG, MKT_LIMIT, .steps = {CW(4500)},
     .active = {&a_lf, &a_lf_rel}, .code = OK, .want = {4500}},
    {"a slot its holder released in part", I_HP, .party = P_AGG, MKT_LIMIT, .steps = {CW(4500)},
     .active = {&a_lf, &a_lf_rel_half}, .code = CONFLICT, .conflict = "a-lf"},
    {"a slot released by another party is not free", I_HP, .party = P_AGG, MKT_LIMIT,
     .steps = {CW(4500)}, .active = {&a_lf, &a_agg_rel}, .code = CONFLICT, .conflict = "a-lf"},
    {"slot before the floor", I_HP, .party = P_AGG, MKT_LIMIT, .steps = {CW(1000)},
     .active = {&a_lf}, .code = CONFLICT, .conflict = "a-lf"},
    {"red before the slot", I_HP, ARB_RED, .party = P_AGG, MKT_LIMIT, .steps = {CW(5000)},
     .active = {&a_lf}, .code = RED},
    /* 5. floors */
    {"VNB below the floor: clipped", I_HP, .party = P_VNB, GRID_LIMIT, .steps = {CW(1000)},
     .code = CLIPPED, .want = {4200}},
    {"VNB at the floor", I_HP, .party = P_VNB, GRID_LIMIT, .steps = {CW(4200)}, .code = OK,
     .want = {4200}},
    {"VNB 0 W on a §14a consumer", I_HP, .party = P_VNB, GRID_LIMIT, .steps = {CW(0)},
     .code = CLIPPED, .want = {4200}},
    {"TSO below the floor: clipped", I_HP, .party = P_TSO, GRID_LIMIT, .steps = {CW(1000)},
     .code = CLIPPED, .want = {4200}},
    {"dim resolves to the floor, no clipping", I_HP, .party = P_VNB, .purpose = ARB_GRID,
     .action = ARB_DIM, .steps = {CW(FL)}, .code = OK, .want = {4200}},
    {"a market party may not dim (the grid operator's measure)", I_HP, .party = P_LF,
     .purpose = ARB_MARKET, .action = ARB_DIM, .steps = {CW(FL)},
     .code = "rejected.dim_is_grid_only"},
    {"market below the floor: clipped", I_HP, .party = P_LF, MKT_LIMIT, .steps = {CW(2000)},
     .code = CLIPPED, .want = {4200}},
    {"a generator may go to 0 W", I_PV, .party = P_VNB, GRID_LIMIT, .steps = {ST(0, 60, PROD, 0)},
     .code = OK, .want = {0}},
    {"a consumer without §14a may go to 0 W", I_WB, .party = P_VNB, GRID_LIMIT, .steps = {CW(0)},
     .code = OK, .want = {0}},
    {"battery off: consumption clipped, production 0 W", I_BAT, .party = P_VNB, .purpose = ARB_GRID,
     .action = ARB_SWITCH, .steps = {ST(0, 60, CONS, 0), ST(0, 60, PROD, 0)}, .code = CLIPPED,
     .want = {4200, 0}},
    {"battery dim: floor and no cap", I_BAT, .party = P_VNB, .purpose = ARB_GRID,
     .action = ARB_SWITCH, .steps = {ST(0, 60, CONS, FL), ST(0, 60, PROD, NC)}, .code = OK,
     .want = {4200, NC}},
    {"group member: its share of the group floor", I_WB14, .party = P_VNB, GRID_LIMIT,
     .steps = {CW(3000)}, .code = CLIPPED, .want = {3780}},
    {"group member dimmed: its share", I_WB14, .party = P_VNB, .purpose = ARB_GRID,
     .action = ARB_DIM, .steps = {CW(FL)}, .code = OK, .want = {3780}},
    {"big heat pump: 40 % floor", I_HP_BIG, .party = P_VNB, GRID_LIMIT, .steps = {CW(6000)},
     .code = CLIPPED, .want = {8000}},
    {"schedule: only the low step raised", I_HP, .party = P_VNB, .purpose = ARB_GRID,
     .action = ARB_SCHEDULE, .steps = {ST(0, 15, CONS, 3000), ST(15, 30, CONS, 6000)},
     .code = CLIPPED, .want = {4200, 6000}},
    {"on is no cap and stays so", I_HP, .party = P_VNB, .purpose = ARB_GRID, .action = ARB_SWITCH,
     .steps = {CW(NC)}, .code = OK, .want = {NC}},
    {"market production of a battery to 0 W", I_BAT, .party = P_LF, MKT_LIMIT,
     .steps = {ST(0, 60, PROD, 0)}, .code = OK, .want = {0}},
    {"yellow, below the grid cap and below the floor", I_HP, ARB_YELLOW, .party = P_LF, MKT_LIMIT,
     .steps = {CW(1000)}, .active = {&a_vnb5000}, .code = CLIPPED, .want = {4200}},
};

static void test_admit(void **state)
{
    int fails = 0;
    (void)state;
    for (size_t i = 0; i < COUNT(admit_cases); i++) {
        const struct admit_case *c = &admit_cases[i];
        struct arb_inst inst = presets[c->inst];
        struct arb_step out[3];
        struct arb_decision d;
        size_t ns = 0, na = 0;

        inst.light = c->light;
        while (ns < COUNT(c->steps) && c->steps[ns].end_ms != 0)
            ns++;
        while (na < COUNT(c->active) && c->active[na] != NULL)
            na++;
        struct arb_req r = {.id = "r",
                            .party = c->party.id,
                            .role = c->party.role,
                            .purpose = c->purpose,
                            .action = c->action,
                            .seq = 100,
                            .steps = c->steps,
                            .nsteps = ns};
        bool want_admitted = strncmp(c->code, "rejected.", 9) != 0;
        bool want_clipped = strcmp(c->code, CLIPPED) == 0;
        /* stale values: every field of the decision must be written */
        memset(out, 0x5a, sizeof out);
        d = (struct arb_decision){.admitted = !want_admitted,
                                  .code = NULL,
                                  .text = "",
                                  .conflict = "stale",
                                  .clipped = !want_clipped};

        int rc = arbiter_admit(&r, &c->party, &inst, c->active, na, AT(0), out, &d);
        bool ok = rc == 0 && d.code != NULL &&
                  (strcmp(d.code, c->code) == 0 || (c->alt && strcmp(d.code, c->alt) == 0)) &&
                  d.admitted == want_admitted && d.clipped == want_clipped && text_ok(d.text);
        if (c->conflict != NULL)
            ok = ok && same_str(d.conflict, c->conflict);
        else if (want_admitted)
            ok = ok && d.conflict == NULL;
        for (size_t k = 0; ok && want_admitted && k < ns; k++)
            ok = out[k].start_ms == c->steps[k].start_ms && out[k].end_ms == c->steps[k].end_ms &&
                 out[k].dir == c->steps[k].dir && out[k].value_w == c->want[k];
        if (!ok) {
            print_message("  FAIL admit \"%s\": rc %d, code %s (want %s), admitted %d, "
                          "clipped %d, conflict %s (want %s), text \"%.*s\"\n",
                          c->name, rc, nz(d.code), c->code, d.admitted, d.clipped,
                          d.conflict == NULL ? "-" : d.conflict, nz(c->conflict), ARB_TEXT_MAX - 1,
                          d.text);
            if (d.admitted)
                print_steps("resolved", out, ns);
            fails++;
        }
    }
    table_done("arbiter_admit", fails, COUNT(admit_cases));
}

static void test_admit_no_steps(void **state)
{
    struct arb_inst inst = presets[I_HP];
    struct arb_party p = P_VNB;
    struct arb_req r = {.id = "r",
                        .party = VNB,
                        .role = ARB_ROLE_VNB,
                        .purpose = ARB_GRID,
                        .action = ARB_LIMIT,
                        .seq = 1,
                        .steps = NULL,
                        .nsteps = 0};
    struct arb_decision d;
    struct arb_step out[1];
    (void)state;
    assert_int_equal(arbiter_admit(&r, &p, &inst, NULL, 0, AT(0), out, &d), -EINVAL);
}

/* Two active market requests both overlap the new one: the request named is
 * one of them. */
static void test_admit_two_conflicts(void **state)
{
    static const struct arb_req *const active[] = {&a_agg_later, &a_lf};
    struct arb_inst inst = presets[I_HP];
    struct arb_party p = P_AGG;
    static const struct arb_step st[] = {ST(30, 90, CONS, 4500)};
    struct arb_req r = {.id = "r",
                        .party = AGG,
                        .role = ARB_ROLE_MARKET,
                        .purpose = ARB_MARKET,
                        .action = ARB_LIMIT,
                        .seq = 100,
                        .steps = st,
                        .nsteps = 1};
    struct arb_decision d;
    struct arb_step out[1];
    (void)state;
    assert_int_equal(arbiter_admit(&r, &p, &inst, active, 2, AT(0), out, &d), 0);
    assert_false(d.admitted);
    assert_string_equal(d.code, CONFLICT);
    assert_non_null(d.conflict);
    assert_true(strcmp(d.conflict, "a-lf") == 0 || strcmp(d.conflict, "a-agg-later") == 0);
}

/* --- arbiter_timeline() and arbiter_at() ---------------------------------- */

/* clang-format off */
#define CAP(c, b, g)         {(c), (b), (g)}
#define NO                   {NC, NULL, false}
#define SL(s, e, cons, prod) {AT(s), AT(e), {cons, prod}}
/* clang-format on */
#define MAXTLR 6

/* clang-format off */
static const struct tl_case {
    const char *name;
    enum preset inst;
    enum arb_light light;
    struct arb_req reqs[MAXTLR];
    int64_t from, to;
    struct arb_slot want[6];
} tl_cases[] = {
    {.name = "nothing in force", .inst = I_HP, .from = AT(0), .to = AT(60),
     .want = {SL(0, 60, NO, NO)}},
    {.name = "one VNB limit inside the range", .inst = I_HP,
     .reqs = {VLIM("v1", 1, ST(60, 120, CONS, 5000))}, .from = AT(0), .to = AT(180),
     .want = {SL(0, 60, NO, NO), SL(60, 120, CAP(5000, "v1", true), NO), SL(120, 180, NO, NO)}},
    {.name = "the lowest VNB cap at each instant; equal neighbours merge", .inst = I_HP,
     .reqs = {VLIM("v1", 1, ST(0, 120, CONS, 6000)), VLIM("v2", 2, ST(60, 180, CONS, 5000))},
     .from = AT(0), .to = AT(180),
     .want = {SL(0, 60, CAP(6000, "v1", true), NO), SL(60, 180, CAP(5000, "v2", true), NO)}},
    {.name = "the VNB over the TSO, even when the TSO's cap is lower", .inst = I_HP,
     .reqs = {TLIM("t1", 1, ST(0, 60, CONS, 4500)), VLIM("v1", 2, ST(0, 60, CONS, 5000))},
     .from = AT(0), .to = AT(60), .want = {SL(0, 60, CAP(5000, "v1", true), NO)}},
    {.name = "the TSO where the VNB has nothing in force", .inst = I_HP,
     .reqs = {TLIM("t1", 1, ST(0, 180, CONS, 4500)), VLIM("v1", 2, ST(60, 120, CONS, 5000))},
     .from = AT(0), .to = AT(180), .want = {SL(0, 60, CAP(4500, "t1", true), NO),
     SL(60, 120, CAP(5000, "v1", true), NO), SL(120, 180, CAP(4500, "t1", true), NO)}},
    {.name = "the lowest TSO cap", .inst = I_HP,
     .reqs = {TLIM("t1", 1, ST(0, 120, CONS, 6000)), TLIM("t2", 2, ST(60, 120, CONS, 4500))},
     .from = AT(0), .to = AT(120),
     .want = {SL(0, 60, CAP(6000, "t1", true), NO), SL(60, 120, CAP(4500, "t2", true), NO)}},
    {.name = "the VNB's explicit on lifts the TSO's cap", .inst = I_HP,
     .reqs = {TLIM("t1", 1, ST(0, 60, CONS, 4500)), VON("v-on", 2, ST(0, 60, CONS, NC))},
     .from = AT(0), .to = AT(60), .want = {SL(0, 60, NO, NO)}},
    {.name = "a market cap inside the grid cap", .inst = I_HP,
     .reqs = {VLIM("v1", 1, ST(0, 120, CONS, 5000)), MLIM("m1", LF, 2, ST(60, 180, CONS, 4500))},
     .from = AT(0), .to = AT(180),
     .want = {SL(0, 60, CAP(5000, "v1", true), NO), SL(60, 180, CAP(4500, "m1", false), NO)}},
    {.name = "a market cap above the grid cap", .inst = I_HP,
     .reqs = {VLIM("v1", 1, ST(0, 60, CONS, 4500)), MLIM("m1", LF, 2, ST(0, 120, CONS, 6000))},
     .from = AT(0), .to = AT(120),
     .want = {SL(0, 60, CAP(4500, "v1", true), NO), SL(60, 120, CAP(6000, "m1", false), NO)}},
    {.name = "grid and market equal: set by the grid", .inst = I_HP,
     .reqs = {MLIM("m1", LF, 1, ST(0, 60, CONS, 5000)), VLIM("v1", 2, ST(0, 60, CONS, 5000))},
     .from = AT(0), .to = AT(60), .want = {SL(0, 60, CAP(5000, "v1", true), NO)}},
    {.name = "VNB tie: the smaller id, not the earlier one", .inst = I_HP,
     .reqs = {VLIM("v-b", 1, ST(0, 60, CONS, 5000)), VLIM("v-a", 2, ST(0, 60, CONS, 5000))},
     .from = AT(0), .to = AT(60), .want = {SL(0, 60, CAP(5000, "v-a", true), NO)}},
    {.name = "TSO tie: the smaller id", .inst = I_HP,
     .reqs = {TLIM("t-b", 1, ST(0, 60, CONS, 4500)), TLIM("t-a", 2, ST(0, 60, CONS, 4500))},
     .from = AT(0), .to = AT(60), .want = {SL(0, 60, CAP(4500, "t-a", true), NO)}},
    {.name = "the earliest market request holds the slot, not the lowest", .inst = I_HP,
     .reqs = {MLIM("m-late", AGG, 5, ST(0, 60, CONS, 4500)),
     MLIM("m-early", LF, 3, ST(0, 60, CONS, 7000))}, .from = AT(0), .to = AT(60),
     .want = {SL(0, 60, CAP(7000, "m-early", false), NO)}},
    {.name = "a market release holds no slot", .inst = I_HP,
     .reqs = {MREL("m-rel", AGG, 3, ST(0, 60, CONS, NC)), MLIM("m1", LF, 5, ST(0, 60, CONS, 4500))},
     .from = AT(0), .to = AT(60), .want = {SL(0, 60, CAP(4500, "m1", false), NO)}},
    {.name = "a released market request holds no slot", .inst = I_HP,
     .reqs = {MLIM("m1", LF, 1, ST(0, 60, CONS, 4500)), MREL("r1", LF, 2, ST(0, 60, CONS, NC)),
     MLIM("m2", AGG, 3, ST(0, 60, CONS, 6000))}, .from = AT(0), .to = AT(60),
     .want = {SL(0, 60, CAP(6000, "m2", false), NO)}},
    {.name = "a VNB release lifts earlier VNB caps in its window only", .inst = I_HP,
     .reqs = {VLIM("v1", 1, ST(0, 180, CONS, 5000)), VREL("r1", 2, ST(60, 120, CONS, NC))},
     .from = AT(0), .to = AT(180), .want = {SL(0, 60, CAP(5000, "v1", true), NO),
     SL(60, 120, NO, NO), SL(120, 180, CAP(5000, "v1", true), NO)}},
    {.name = "a release leaves later caps of the party", .inst = I_HP,
     .reqs = {VREL("r1", 1, ST(0, 120, CONS, NC)), VLIM("v1", 2, ST(60, 180, CONS, 5000))},
     .from = AT(0), .to = AT(180),
     .want = {SL(0, 60, NO, NO), SL(60, 180, CAP(5000, "v1", true), NO)}},
    {.name = "a VNB release does not lift a TSO cap", .inst = I_HP,
     .reqs = {VLIM("v1", 1, ST(0, 120, CONS, 5000)), TLIM("t1", 2, ST(0, 120, CONS, 4500)),
     VREL("r1", 3, ST(0, 60, CONS, NC))}, .from = AT(0), .to = AT(120),
     .want = {SL(0, 60, CAP(4500, "t1", true), NO), SL(60, 120, CAP(5000, "v1", true), NO)}},
    {.name = "a release lifts its direction only", .inst = I_BAT,
     .reqs = {VLIM("v1", 1, ST(0, 60, CONS, 5000), ST(0, 60, PROD, 2000)),
     VREL("r1", 2, ST(0, 60, PROD, NC))}, .from = AT(0), .to = AT(60),
     .want = {SL(0, 60, CAP(5000, "v1", true), NO)}},
    {.name = "a market release lifts its own party's caps only", .inst = I_HP,
     .reqs = {MLIM("m1", LF, 1, ST(0, 120, CONS, 5000)), MREL("r-agg", AGG, 2, ST(0, 60, CONS, NC)),
     MREL("r-lf", LF, 3, ST(60, 120, CONS, NC))}, .from = AT(0), .to = AT(120),
     .want = {SL(0, 60, CAP(5000, "m1", false), NO), SL(60, 120, NO, NO)}},
    {.name = "a market party's release leaves grid caps", .inst = I_HP,
     .reqs = {VLIM("v1", 1, ST(0, 60, CONS, 5000)), MREL("r1", LF, 2, ST(0, 60, CONS, NC))},
     .from = AT(0), .to = AT(60), .want = {SL(0, 60, CAP(5000, "v1", true), NO)}},
    {.name = "a VNB release leaves market caps", .inst = I_HP,
     .reqs = {MLIM("m1", LF, 1, ST(0, 60, CONS, 4500)), VREL("r1", 2, ST(0, 60, CONS, NC))},
     .from = AT(0), .to = AT(60), .want = {SL(0, 60, CAP(4500, "m1", false), NO)}},
    {.name = "red: market requests suspended, grid caps hold", .inst = I_HP, .light = ARB_RED,
     .reqs = {VLIM("v1", 1, ST(0, 120, CONS, 6000)), MLIM("m1", LF, 2, ST(0, 60, CONS, 4500))},
     .from = AT(0), .to = AT(120), .want = {SL(0, 120, CAP(6000, "v1", true), NO)}},
    {.name = "yellow: market requests keep their effect", .inst = I_HP, .light = ARB_YELLOW,
     .reqs = {VLIM("v1", 1, ST(0, 120, CONS, 6000)), MLIM("m1", LF, 2, ST(0, 60, CONS, 4500))},
     .from = AT(0), .to = AT(120),
     .want = {SL(0, 60, CAP(4500, "m1", false), NO), SL(60, 120, CAP(6000, "v1", true), NO)}},
    {.name = "red: a market cap alone has no effect", .inst = I_PV, .light = ARB_RED,
     .reqs = {MLIM("m1", LF, 1, ST(0, 60, PROD, 0))}, .from = AT(0), .to = AT(60),
     .want = {SL(0, 60, NO, NO)}},
    {.name = "floor: a grid cap below it is raised", .inst = I_HP,
     .reqs = {VLIM("v1", 1, ST(0, 60, CONS, 1000))}, .from = AT(0), .to = AT(60),
     .want = {SL(0, 60, CAP(4200, "v1", true), NO)}},
    {.name = "floor: a market cap below it is raised", .inst = I_HP,
     .reqs = {MLIM("m1", LF, 1, ST(0, 60, CONS, 2000))}, .from = AT(0), .to = AT(60),
     .want = {SL(0, 60, CAP(4200, "m1", false), NO)}},
    {.name = "floor: a group member's share", .inst = I_WB14,
     .reqs = {VLIM("v1", 1, ST(0, 60, CONS, 3000))}, .from = AT(0), .to = AT(60),
     .want = {SL(0, 60, CAP(3780, "v1", true), NO)}},
    {.name = "floor: consumption only, production to 0 W", .inst = I_BAT,
     .reqs = {VLIM("v1", 1, ST(0, 60, CONS, 0), ST(0, 60, PROD, 0))}, .from = AT(0), .to = AT(60),
     .want = {SL(0, 60, CAP(4200, "v1", true), CAP(0, "v1", true))}},
    {.name = "no floor without §14a", .inst = I_WB, .reqs = {VLIM("v1", 1, ST(0, 60, CONS, 0))},
     .from = AT(0), .to = AT(60), .want = {SL(0, 60, CAP(0, "v1", true), NO)}},
    {.name = "equal neighbours of one request merge", .inst = I_HP, .reqs = {RQ("s1", VNB,
     ARB_ROLE_VNB, ARB_GRID, ARB_SCHEDULE, 1, ST(0, 60, CONS, 5000), ST(60, 120, CONS, 5000),
     ST(120, 180, CONS, 6000))}, .from = AT(0), .to = AT(180), .want = {SL(0, 120,
     CAP(5000, "s1", true), NO), SL(120, 180, CAP(6000, "s1", true), NO)}},
    {.name = "equal caps of two requests stay apart", .inst = I_HP,
     .reqs = {VLIM("v1", 1, ST(0, 60, CONS, 5000)), VLIM("v2", 2, ST(60, 120, CONS, 5000))},
     .from = AT(0), .to = AT(120),
     .want = {SL(0, 60, CAP(5000, "v1", true), NO), SL(60, 120, CAP(5000, "v2", true), NO)}},
    {.name = "a window cut to the range", .inst = I_HP,
     .reqs = {VLIM("v1", 1, ST(-120, 300, CONS, 5000))}, .from = AT(0), .to = AT(60),
     .want = {SL(0, 60, CAP(5000, "v1", true), NO)}},
    {.name = "steps outside the range", .inst = I_HP,
     .reqs = {VLIM("v1", 1, ST(-120, -60, CONS, 5000)), VLIM("v2", 2, ST(120, 180, CONS, 5000))},
     .from = AT(0), .to = AT(60), .want = {SL(0, 60, NO, NO)}},
    {.name = "until released", .inst = I_HP, .reqs = {VLIM("v1", 1, {AT(0), FOREVER, CONS, 5000})},
     .from = AT(-60), .to = AT(60),
     .want = {SL(-60, 0, NO, NO), SL(0, 60, CAP(5000, "v1", true), NO)}},
    {.name = "VNB on consumption, TSO on production", .inst = I_BAT,
     .reqs = {VLIM("v1", 1, ST(0, 60, CONS, 5000)), TLIM("t1", 2, ST(0, 60, PROD, 1000))},
     .from = AT(0), .to = AT(60),
     .want = {SL(0, 60, CAP(5000, "v1", true), CAP(1000, "t1", true))}},
    {.name = "grid on consumption, market on production", .inst = I_BAT,
     .reqs = {VLIM("v1", 1, ST(0, 60, CONS, 5000)), MLIM("m1", LF, 2, ST(0, 60, PROD, 2000))},
     .from = AT(0), .to = AT(60),
     .want = {SL(0, 60, CAP(5000, "v1", true), CAP(2000, "m1", false))}},
    /* v1 until +60, then m1 (4500) all through a release of v1 and the TSO's
     * cap of 5000, then the TSO's cap alone */
    {.name = "grid, market, release and TSO: boundaries merge where nothing changes", .inst = I_HP,
     .reqs = {VLIM("v1", 1, ST(0, 240, CONS, 6000)), MLIM("m1", LF, 2, ST(60, 180, CONS, 4500)),
     VREL("r1", 3, ST(120, 240, CONS, NC)), TLIM("t1", 4, ST(150, 240, CONS, 5000))}, .from = AT(0),
     .to = AT(240), .want = {SL(0, 60, CAP(6000, "v1", true), NO),
     SL(60, 180, CAP(4500, "m1", false), NO), SL(180, 240, CAP(5000, "t1", true), NO)}},
    {.name = "red: the grid cap alone after a VNB release", .inst = I_HP, .light = ARB_RED,
     .reqs = {VLIM("v1", 1, ST(0, 120, CONS, 6000)), VREL("r1", 2, ST(60, 120, CONS, NC)),
     MLIM("m1", LF, 3, ST(0, 120, CONS, 4500))}, .from = AT(0), .to = AT(120),
     .want = {SL(0, 60, CAP(6000, "v1", true), NO), SL(60, 120, NO, NO)}},
    {.name = "a range boundary inside a step", .inst = I_HP,
     .reqs = {VLIM("v1", 1, ST(0, 60, CONS, 5000))}, .from = AT(0) + 1, .to = AT(60) - 1,
     .want = {{AT(0) + 1, AT(60) - 1, {CAP(5000, "v1", true), NO}}}},
};
/* clang-format on */

static size_t timeline_of(const struct tl_case *c, struct arb_inst *inst,
                          const struct arb_req **ptr, bool reverse)
{
    size_t n = 0;
    *inst = presets[c->inst];
    inst->light = c->light;
    while (n < MAXTLR && c->reqs[n].id != NULL)
        n++;
    for (size_t k = 0; k < n; k++)
        ptr[k] = &c->reqs[reverse ? n - 1 - k : k];
    return n;
}

static void test_timeline(void **state)
{
    int fails = 0;
    (void)state;
    for (size_t i = 0; i < COUNT(tl_cases); i++) {
        const struct tl_case *c = &tl_cases[i];
        const struct arb_req *ptr[MAXTLR];
        struct arb_inst inst;
        struct arb_slot got[16], rev[16], at;
        size_t nw = 0;
        const char *why = NULL;

        while (nw < COUNT(c->want) && c->want[nw].end_ms != 0)
            nw++;
        size_t n = timeline_of(c, &inst, ptr, false);
        int rc = arbiter_timeline(&inst, ptr, n, c->from, c->to, got, COUNT(got));
        if (rc != (int)nw || !slots_eq(got, c->want, nw))
            why = "timeline";
        timeline_of(c, &inst, ptr, true);
        int rrc = arbiter_timeline(&inst, ptr, n, c->from, c->to, rev, COUNT(rev));
        if (why == NULL && (rrc != rc || !slots_eq(got, rev, nw)))
            why = "timeline of the reversed input";
        for (size_t k = 0; why == NULL && k < nw; k++) {
            const struct arb_slot *w = &c->want[k];
            int64_t t[2] = {w->start_ms, w->end_ms - 1};
            for (int j = 0; j < 2 && why == NULL; j++) {
                memset(&at, 0x5a, sizeof at);
                arbiter_at(&inst, ptr, n, t[j], &at);
                if (at.start_ms != t[j] || at.end_ms != t[j] + 1 || !caps_eq(&at, w))
                    why = "arbiter_at";
            }
        }
        if (why != NULL) {
            print_message("  FAIL timeline \"%s\": %s (rc %d, want %zu)\n", c->name, why, rc, nw);
            print_slots("got", got, rc > 0 ? (size_t)rc : 0);
            print_slots("want", c->want, nw);
            if (strcmp(why, "arbiter_at") == 0)
                print_slots("arbiter_at", &at, 1);
            fails++;
        }
    }
    table_done("arbiter_timeline", fails, COUNT(tl_cases));
}

/* Five slots: room for five fills them; room for fewer writes the first
 * ones and says -E2BIG. */
static const struct arb_req e2big_v1 = VLIM("v1", 1, ST(60, 120, CONS, 5000));
static const struct arb_req e2big_v2 = VLIM("v2", 2, ST(180, 240, CONS, 6000));

static void test_timeline_e2big(void **state)
{
    const struct arb_req *reqs[] = {&e2big_v1, &e2big_v2};
    struct arb_inst inst = presets[I_HP];
    struct arb_slot all[8], part[8];
    (void)state;

    assert_int_equal(arbiter_timeline(&inst, reqs, 2, AT(0), AT(300), all, 8), 5);
    assert_int_equal(arbiter_timeline(&inst, reqs, 2, AT(0), AT(300), part, 5), 5);
    assert_true(slots_eq(all, part, 5));
    for (size_t room = 0; room < 5; room++) {
        memset(part, 0, sizeof part);
        assert_int_equal(arbiter_timeline(&inst, reqs, 2, AT(0), AT(300), part, room), -E2BIG);
        assert_true(slots_eq(all, part, room));
    }
}

/* --- names ---------------------------------------------------------------- */

static void test_names(void **state)
{
    /* the kinds as the registry and the API spell them */
    static const struct {
        const char *s;
        enum arb_kind k;
    } kinds[] = {{"heat_pump", ARB_HEAT_PUMP},
                 {"wallbox", ARB_WALLBOX},
                 {"pv", ARB_PV},
                 {"battery", ARB_BATTERY},
                 {"storage_heater", ARB_STORAGE_HEATER},
                 {"air_conditioning", ARB_AIR_CONDITIONING},
                 {"chp", ARB_CHP},
                 {"other", ARB_OTHER_KIND}};
    enum arb_kind k;
    (void)state;
    for (size_t i = 0; i < COUNT(kinds); i++) {
        k = ARB_OTHER_KIND;
        assert_int_equal(arb_kind_parse(kinds[i].s, &k), 0);
        assert_int_equal(k, kinds[i].k);
    }
    assert_true(arb_kind_parse("heatpump", &k) < 0);
    assert_true(arb_kind_parse("", &k) < 0);
    assert_non_null(arb_dir_name(CONS));
    assert_non_null(arb_dir_name(PROD));
    assert_string_not_equal(arb_dir_name(CONS), arb_dir_name(PROD));
    assert_string_not_equal(arb_light_name(ARB_GREEN), arb_light_name(ARB_YELLOW));
    assert_string_not_equal(arb_light_name(ARB_YELLOW), arb_light_name(ARB_RED));
    assert_string_not_equal(arb_light_name(ARB_GREEN), arb_light_name(ARB_RED));
}

/* --- a reference model of the header's rules ------------------------------ */

/* The value of 'q' at 't' on 'd', when one of its steps covers that instant
 * (a request's steps on one direction do not overlap). */
static bool step_at(const struct arb_req *q, int64_t t, enum arb_dir d, int64_t *v)
{
    for (size_t i = 0; i < q->nsteps; i++) {
        const struct arb_step *s = &q->steps[i];
        if (s->dir == d && s->start_ms <= t && t < s->end_ms) {
            *v = s->value_w;
            return true;
        }
    }
    return false;
}

/* A later release of the same party covers 't' on 'd'. */
static bool released(const struct arb_req *q, const struct arb_req *const *reqs, size_t n,
                     int64_t t, enum arb_dir d)
{
    int64_t v;
    for (size_t i = 0; i < n; i++) {
        const struct arb_req *r = reqs[i];
        if (r->action == ARB_RELEASE && r->seq > q->seq && strcmp(r->party, q->party) == 0 &&
            step_at(r, t, d, &v))
            return true;
    }
    return false;
}

/* 'q' sets a cap (possibly "none", from an "on") at 't' on 'd'. */
static bool in_force(const struct arb_inst *inst, const struct arb_req *q,
                     const struct arb_req *const *reqs, size_t n, int64_t t, enum arb_dir d,
                     int64_t *v)
{
    if (q->action == ARB_RELEASE)
        return false;
    if (q->purpose == ARB_MARKET && inst->light == ARB_RED)
        return false;
    return step_at(q, t, d, v) && !released(q, reqs, n, t, d);
}

struct model {
    struct arb_cap grid, market, eff;
    bool raised; /* eff was raised to the floor */
};

/* The grid cap: the VNB's lowest when the VNB has a grid request in force
 * (a release is none), else the TSO's lowest; ties to the smaller id. */
static struct arb_cap model_grid(const struct arb_inst *inst, const struct arb_req *const *reqs,
                                 size_t n, int64_t t, enum arb_dir d)
{
    static const enum arb_role order[] = {ARB_ROLE_VNB, ARB_ROLE_UENB};
    struct arb_cap g = {NC, NULL, false};
    bool any = false;
    int64_t v;

    for (size_t o = 0; o < 2 && !any; o++) {
        for (size_t i = 0; i < n; i++) {
            const struct arb_req *q = reqs[i];
            if (q->purpose != ARB_GRID || q->role != order[o] ||
                !in_force(inst, q, reqs, n, t, d, &v))
                continue;
            any = true;
            if (v == NC)
                continue;
            if (v < g.cap_w || (v == g.cap_w && strcmp(q->id, g.by) < 0))
                g = (struct arb_cap){v, q->id, true};
        }
    }
    return g;
}

static void model_at(const struct arb_inst *inst, const struct arb_req *const *reqs, size_t n,
                     int64_t t, enum arb_dir d, struct model *m)
{
    int64_t v, first = INT64_MAX;

    m->grid = model_grid(inst, reqs, n, t, d);
    m->market = (struct arb_cap){NC, NULL, false};
    for (size_t i = 0; i < n; i++) {
        const struct arb_req *q = reqs[i];
        if (q->purpose == ARB_MARKET && q->seq < first && in_force(inst, q, reqs, n, t, d, &v)) {
            first = q->seq;
            m->market = (struct arb_cap){v, v == NC ? NULL : q->id, false};
        }
    }
    m->eff = m->market.cap_w < m->grid.cap_w ? m->market : m->grid;
    m->raised = false;
    if (d == CONS && m->eff.cap_w != NC && m->eff.cap_w < inst->floor_w) {
        m->eff.cap_w = inst->floor_w;
        m->raised = true;
    }
}

/* --- properties over random worlds ------------------------------------------ */

#define PMAXR  14 /* requests tried per world */
#define PMAXS  8  /* steps per request: three intervals on two directions at most */
#define PITER  5000
#define PSEED  UINT64_C(0x5eed0a7b17e70001)
#define PSLOTS 256

struct rng {
    uint64_t s;
};

static uint64_t rnd(struct rng *g)
{
    uint64_t x = g->s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return g->s = x;
}

/* 0 .. n-1 */
static int64_t pick(struct rng *g, int64_t n)
{
    return (int64_t)(rnd(g) % (uint64_t)n);
}

struct world {
    uint64_t seed;
    struct rng g;
    struct arb_inst inst;
    struct arb_req req[PMAXR];
    struct arb_step step[PMAXR][PMAXS];
    char id[PMAXR][24];
    bool live[PMAXR]; /* admitted and not superseded */
    size_t nreq;
    const struct arb_req *in[PMAXR]; /* the live ones */
    size_t n;
    int64_t from, to;
};

static void print_req(const char *what, const struct arb_req *q)
{
    static const char *const roles[] = {"vnb", "tso", "market", "other"};
    static const char *const actions[] = {"limit", "dim", "switch", "schedule", "release"};
    char title[128];
    snprintf(title, sizeof title, "%s%s %s (%s, %s) %s seq %lld", what, q->id, q->party,
             roles[q->role], q->purpose == ARB_GRID ? "grid" : "market", actions[q->action],
             (long long)q->seq);
    print_steps(title, q->steps, q->nsteps);
}

static void dump_world(const struct world *w)
{
    print_message("  world: kind %d, consumes %d, produces %d, rated %lld, §14a %d, floor %lld, "
                  "light %d\n",
                  (int)w->inst.kind, w->inst.consumes, w->inst.produces, (long long)w->inst.rated_w,
                  w->inst.sec14a, (long long)w->inst.floor_w, (int)w->inst.light);
    if (w->from != w->to)
        print_message("  range [%s, %s)\n", tm(w->from), tm(w->to));
    for (size_t i = 0; i < w->n; i++)
        print_req("", w->in[i]);
}

__attribute__((format(printf, 2, 3))) static void pfail(const struct world *w, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dump_world(w);
    fail_msg("seed 0x%016llx (CLSM_ARBITER_SEED=0x%016llx replays it): %s",
             (unsigned long long)w->seed, (unsigned long long)w->seed, msg);
}

static void refresh_in(struct world *w)
{
    w->n = 0;
    for (size_t i = 0; i < w->nreq; i++)
        if (w->live[i])
            w->in[w->n++] = &w->req[i];
}

static const int64_t pvalues[] = {0, 1000, 3000, 4200, 5000, 8000, 20000};

/* A random installation, on its own or behind an energy manager with up to
 * three other members; the group's floors are checked on the way. */
static void gen_inst(struct world *w)
{
    static const int64_t rated[] = {3000, 4200, 7000, 11000, 15000, 30000};
    struct arb_inst other[3];
    struct arb_inst *m[4];
    struct rng *g = &w->g;
    enum arb_kind k = (enum arb_kind)pick(g, ARB_OTHER_KIND + 1);
    bool cons = false, prod = false;

    switch (k) {
    case ARB_HEAT_PUMP:
    case ARB_STORAGE_HEATER:
    case ARB_AIR_CONDITIONING:
        cons = true;
        break;
    case ARB_WALLBOX:
        cons = true;
        prod = pick(g, 4) == 0;
        break;
    case ARB_PV:
    case ARB_CHP:
        prod = true;
        break;
    case ARB_BATTERY:
        cons = prod = true;
        break;
    case ARB_OTHER_KIND:
        cons = pick(g, 3) != 1;
        prod = !cons || pick(g, 2) == 0;
        break;
    }
    w->inst = (struct arb_inst){.id = "inst",
                                .kind = k,
                                .consumes = cons,
                                .produces = prod,
                                .rated_w = rated[pick(g, COUNT(rated))],
                                .sec14a = cons && pick(g, 10) < 7,
                                .floor_w = -7,
                                .light = ARB_GREEN,
                                .vnb = VNB};
    size_t nm = pick(g, 2) == 0 ? 1 : 2 + (size_t)pick(g, 3);
    m[0] = &w->inst;
    for (size_t i = 1; i < nm; i++) {
        other[i - 1] = (struct arb_inst){.id = "member",
                                         .kind = pick(g, 2) ? ARB_WALLBOX : ARB_HEAT_PUMP,
                                         .consumes = true,
                                         .rated_w = rated[pick(g, COUNT(rated))],
                                         .sec14a = pick(g, 4) != 0,
                                         .vnb = VNB};
        m[i] = &other[i - 1];
    }
    int64_t gf = arbiter_floors(m, nm);

    /* the members' floors add up to the group's, and the group's follows
     * the factor (rounded either way) */
    int64_t sum = 0, maxf = 0, all = 0;
    size_t k14 = 0;
    for (size_t i = 0; i < nm; i++) {
        int64_t f1 = arbiter_floor_single(m[i]->kind, m[i]->consumes, m[i]->rated_w, m[i]->sec14a);
        sum += m[i]->floor_w;
        if (m[i]->floor_w < 0 || m[i]->floor_w > f1 || (!m[i]->sec14a && m[i]->floor_w != 0))
            pfail(w, "member %zu of %zu: floor %lld, alone %lld", i, nm, (long long)m[i]->floor_w,
                  (long long)f1);
        if (m[i]->sec14a) {
            k14++;
            all += f1;
            maxf = f1 > maxf ? f1 : maxf;
        }
    }
    int64_t exact1000 =
        k14 <= 1 ? all * 1000
                 : maxf * 1000 + (int64_t)arbiter_simultaneity_permille(k14) * (all - maxf);
    if (sum != gf || gf * 1000 <= exact1000 - 1000 || gf * 1000 >= exact1000 + 1000)
        pfail(w, "group of %zu (%zu §14a): floor %lld, members add up to %lld, want %lld.%03lld",
              nm, k14, (long long)gf, (long long)sum, (long long)(exact1000 / 1000),
              (long long)(exact1000 % 1000));
}

/* A random action within a random window around now. */
static void gen_spec(struct world *w, struct arb_action_spec *sp, struct arb_interval *iv)
{
    struct rng *g = &w->g;
    int64_t a = pick(g, 10);

    memset(sp, 0, sizeof *sp);
    sp->action = a < 4   ? ARB_LIMIT
                 : a < 5 ? ARB_DIM
                 : a < 6 ? ARB_SWITCH
                 : a < 8 ? ARB_SCHEDULE
                         : ARB_RELEASE;
    sp->start_ms = AT(15 * (pick(g, 10) - 3));
    sp->end_ms = pick(g, 10) == 0 ? FOREVER : sp->start_ms + (1 + pick(g, 8)) * Q;
    sp->has_dir = pick(g, 2) == 0;
    sp->dir = (enum arb_dir)pick(g, 2);
    sp->value_w = pvalues[pick(g, COUNT(pvalues))];
    sp->level = (enum arb_level)pick(g, 3);
    if (sp->action != ARB_SCHEDULE)
        return;
    int64_t t = sp->start_ms;
    size_t n = 0;
    for (int64_t want = 1 + pick(g, 3); (int64_t)n < want; n++) {
        int64_t s = t + pick(g, 2) * Q;
        int64_t e = s + (1 + pick(g, 3)) * Q;
        if (e > sp->end_ms)
            break;
        iv[n] = (struct arb_interval){.start_ms = s,
                                      .end_ms = e,
                                      .is_level = pick(g, 5) < 2,
                                      .level = (enum arb_level)pick(g, 3),
                                      .has_dir = pick(g, 2) == 0,
                                      .dir = (enum arb_dir)pick(g, 2),
                                      .value_w = pvalues[pick(g, COUNT(pvalues))]};
        t = e;
    }
    if (n == 0) /* a window of one quarter hour: one interval filling it */
        iv[n++] = (struct arb_interval){
            .start_ms = sp->start_ms, .end_ms = sp->start_ms + Q, .value_w = sp->value_w};
    sp->intervals = iv;
    sp->nintervals = n;
}

/* Some instant where step 'a' overlaps step 'b' of 'q' is not lifted by a
 * later release of q's own party (a released span holds no slot). */
static bool holds_overlap(const struct arb_step *a, const struct arb_req *q,
                          const struct arb_step *b, const struct arb_req *const *reqs, size_t n)
{
    int64_t t = a->start_ms > b->start_ms ? a->start_ms : b->start_ms;
    int64_t end = a->end_ms < b->end_ms ? a->end_ms : b->end_ms;

    if (a->dir != b->dir)
        return false;
    while (t < end) {
        int64_t next = t;
        for (size_t i = 0; i < n; i++) {
            const struct arb_req *r = reqs[i];
            if (r->action != ARB_RELEASE || r->seq <= q->seq || strcmp(r->party, q->party) != 0)
                continue;
            for (size_t k = 0; k < r->nsteps; k++)
                if (r->steps[k].dir == a->dir && r->steps[k].start_ms <= t &&
                    t < r->steps[k].end_ms && r->steps[k].end_ms > next)
                    next = r->steps[k].end_ms;
        }
        if (next == t)
            return true;
        t = next;
    }
    return false;
}

/* What arbiter_admit() must answer, by the header's rules in their order;
 * '*alt' is a second acceptable answer, or NULL. */
static const char *expect_code(const struct world *w, const struct arb_req *r,
                               const struct arb_party *p, const char **alt)
{
    const struct arb_inst *in = &w->inst;
    bool market = r->purpose == ARB_MARKET;

    *alt = NULL;
    if (!market && p->role == ARB_ROLE_VNB && strcmp(p->id, in->vnb) != 0)
        return "rejected.foreign_grid";
    if (!market && p->role != ARB_ROLE_VNB && p->role != ARB_ROLE_UENB)
        return "rejected.not_grid_operator";
    if (market && (p->role == ARB_ROLE_VNB || p->role == ARB_ROLE_UENB))
        return "rejected.not_market_party";
    if (market && p->role == ARB_ROLE_OTHER) {
        *alt = "rejected.no_control_right";
        return "rejected.not_market_party";
    }
    if (market && !p->controls)
        return "rejected.no_control_right";
    if (market && r->action == ARB_DIM)
        return "rejected.dim_is_grid_only";
    /* rule 2: some step must end after now */
    bool live = false;
    for (size_t i = 0; i < r->nsteps; i++)
        live = live || r->steps[i].end_ms > AT(0);
    if (!live)
        return OVER;
    /* rule 3: a party may always take its own restriction back */
    if (market && r->action != ARB_RELEASE && in->light == ARB_RED)
        return RED;
    if (market && r->action != ARB_RELEASE && in->light == ARB_YELLOW) {
        for (size_t i = 0; i < r->nsteps; i++) {
            const struct arb_step *s = &r->steps[i];
            struct arb_cap gc = model_grid(in, w->in, w->n, s->start_ms, s->dir);
            int64_t v = s->value_w == FL ? in->floor_w : s->value_w;
            if (v > gc.cap_w)
                return YELLOW;
        }
    }
    /* a span its holder has released holds no slot */
    if (market && r->action != ARB_RELEASE)
        for (size_t i = 0; i < w->n; i++) {
            const struct arb_req *q = w->in[i];
            if (q->purpose != ARB_MARKET || q->action == ARB_RELEASE)
                continue;
            for (size_t a = 0; a < r->nsteps; a++)
                for (size_t b = 0; b < q->nsteps; b++)
                    if (holds_overlap(&r->steps[a], q, &q->steps[b], w->in, w->n))
                        return CONFLICT;
        }
    for (size_t i = 0; i < r->nsteps; i++) {
        const struct arb_step *s = &r->steps[i];
        if (s->dir == CONS && s->value_w != FL && s->value_w < in->floor_w)
            return CLIPPED;
    }
    return OK;
}

/* Admission of 'r' (steps in 'raw') against the live requests, checked
 * against the rules; on success the resolved steps land in w->step[k]. */
static void admit_one(struct world *w, size_t k, const struct arb_party *p,
                      enum arb_purpose purpose, enum arb_action action, const struct arb_step *raw,
                      size_t ns)
{
    struct arb_req *r = &w->req[k];
    struct arb_decision d;
    const char *alt;

    for (int attempt = 0; attempt < 2; attempt++) {
        *r = (struct arb_req){.id = w->id[k],
                              .party = p->id,
                              .role = p->role,
                              .purpose = purpose,
                              .action = action,
                              .seq = 1000 * (int64_t)(k + 1),
                              .steps = raw,
                              .nsteps = ns};
        w->inst.light = (enum arb_light)(pick(&w->g, 20) < 12 ? ARB_GREEN
                                         : pick(&w->g, 3)     ? ARB_YELLOW
                                                              : ARB_RED);
        refresh_in(w);
        const char *want = expect_code(w, r, p, &alt);
        memset(&d, 0, sizeof d);
        if (arbiter_admit(r, p, &w->inst, w->in, w->n, AT(0), w->step[k], &d) != 0)
            pfail(w, "%s: arbiter_admit failed", r->id);
        if (d.code == NULL || strcmp(d.code, want) != 0)
            print_req("asking: ", r);
        if (d.code == NULL || !text_ok(d.text) ||
            (strcmp(d.code, want) != 0 && (alt == NULL || strcmp(d.code, alt) != 0)))
            pfail(w, "%s by %s under light %d: code %s, want %s", r->id, p->id, (int)w->inst.light,
                  nz(d.code), want);
        if (d.admitted != (strncmp(want, "rejected.", 9) != 0) ||
            d.clipped != (strcmp(want, CLIPPED) == 0))
            pfail(w, "%s: admitted %d, clipped %d for %s", r->id, d.admitted, d.clipped, want);
        if (d.admitted) {
            for (size_t i = 0; i < ns; i++) {
                const struct arb_step *s = &raw[i], *o = &w->step[k][i];
                int64_t v = s->dir == CONS && (s->value_w == FL || s->value_w < w->inst.floor_w)
                                ? w->inst.floor_w
                                : s->value_w;
                if (o->start_ms != s->start_ms || o->end_ms != s->end_ms || o->dir != s->dir ||
                    o->value_w != v)
                    pfail(w, "%s: step %zu resolved to %s, want %s", r->id, i, val(o->value_w),
                          val(v));
            }
            r->steps = w->step[k];
            w->live[k] = true;
            return;
        }
        if (strcmp(d.code, CONFLICT) != 0)
            return;
        /* the named request must be a live market request this one overlaps;
         * half the time the party supersedes it */
        size_t j = 0;
        while (j < w->nreq && !(w->live[j] && same_str(w->req[j].id, d.conflict)))
            j++;
        if (j == w->nreq || w->req[j].purpose != ARB_MARKET)
            pfail(w, "%s: conflict names %s, not a live market request", r->id, nz(d.conflict));
        if (pick(&w->g, 2) != 0)
            return;
        w->live[j] = false;
    }
}

static void gen_requests(struct world *w)
{
    static const struct arb_party parties[] = {
        {VNB, ARB_ROLE_VNB, false},    {TSO, ARB_ROLE_UENB, false},
        {LF, ARB_ROLE_MARKET, true},   {AGG, ARB_ROLE_MARKET, true},
        {VNB2, ARB_ROLE_VNB, false},   {"msb-1", ARB_ROLE_MARKET, false},
        {"x-1", ARB_ROLE_OTHER, true},
    };
    static const int weight[] = {6, 3, 4, 4, 1, 1, 1}; /* out of 20 */
    struct rng *g = &w->g;
    size_t want = 1 + (size_t)pick(g, PMAXR);

    for (size_t k = 0; k < want; k++) {
        struct arb_action_spec sp;
        struct arb_interval iv[3];
        struct arb_step raw[PMAXS];
        char text[ARB_TEXT_MAX];
        const char *code = NULL;
        size_t pi = 0;
        int64_t x = pick(g, 20);

        while (x >= weight[pi])
            x -= weight[pi++];
        const struct arb_party *p = &parties[pi];
        bool grid = p->role == ARB_ROLE_VNB || p->role == ARB_ROLE_UENB;
        if (p->role == ARB_ROLE_OTHER || pick(g, 10) == 0)
            grid = !grid;
        gen_spec(w, &sp, iv);
        snprintf(w->id[k], sizeof w->id[k], "r%02zu", k);
        w->nreq = k + 1;
        w->live[k] = false;
        int ns = arbiter_steps(&sp, &w->inst, raw, PMAXS, &code, text);
        if (ns < 0) {
            if (ns != -EINVAL || code == NULL || strncmp(code, "rejected.", 9) != 0)
                pfail(w, "arbiter_steps: %d, code %s", ns, nz(code));
            continue;
        }
        if (ns == 0 || !sorted_by_start(raw, (size_t)ns))
            pfail(w, "arbiter_steps: %d steps, or not sorted", ns);
        admit_one(w, k, p, grid ? ARB_GRID : ARB_MARKET, sp.action, raw, (size_t)ns);
    }
    refresh_in(w);
}

/* Renumber the grid requests (not releases): any seq keeping each one on
 * the same side of its own party's releases. */
static void renumber_grid(struct world *w, struct arb_req *cp, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct arb_req *q = &cp[i];
        int64_t lo = 0, hi = 1000 * (PMAXR + 2);
        if (q->purpose != ARB_GRID || q->action == ARB_RELEASE)
            continue;
        for (size_t j = 0; j < n; j++) {
            const struct arb_req *r = &cp[j];
            if (r->action != ARB_RELEASE || strcmp(r->party, q->party) != 0)
                continue;
            if (r->seq < q->seq && r->seq > lo)
                lo = r->seq;
            if (r->seq > q->seq && r->seq < hi)
                hi = r->seq;
        }
        for (int tries = 0; tries < 100; tries++) {
            int64_t s = lo + 1 + pick(&w->g, hi - lo - 1);
            bool used = false;
            for (size_t j = 0; j < n; j++)
                used |= j != i && cp[j].seq == s;
            if (!used) {
                q->seq = s;
                break;
            }
        }
    }
}

static void check_slot_model(const struct world *w, const struct arb_slot *s, int64_t t)
{
    for (int d = 0; d < ARB_NDIR; d++) {
        const struct arb_cap *c = &s->dir[d];
        struct model m;
        model_at(&w->inst, w->in, w->n, t, (enum arb_dir)d, &m);

        /* P1: never below a §14a consumer's floor */
        if (d == CONS && w->inst.sec14a && c->cap_w < w->inst.floor_w)
            pfail(w, "at %s: consumption cap %s below the floor %lld", tm(t), val(c->cap_w),
                  (long long)w->inst.floor_w);
        /* P2: never above the grid cap (unless the floor is above it) */
        if (c->cap_w > m.grid.cap_w && !(d == CONS && c->cap_w == w->inst.floor_w))
            pfail(w, "at %s dir %d: cap %s above the grid cap %s by %s", tm(t), d, val(c->cap_w),
                  val(m.grid.cap_w), nz(m.grid.by));
        /* P6: the reference model; who set a floor-raised cap is left open */
        if (c->cap_w != m.eff.cap_w ||
            (!m.raised && (!same_str(c->by, m.eff.by) || c->grid != m.eff.grid)))
            pfail(w, "at %s dir %d: cap %s by %s grid %d, model %s by %s grid %d", tm(t), d,
                  val(c->cap_w), nz(c->by), c->grid, val(m.eff.cap_w), nz(m.eff.by), m.eff.grid);
    }
}

static void check_world(struct world *w)
{
    struct arb_slot sl[PSLOTS], other[PSLOTS], at;
    struct rng *g = &w->g;

    w->inst.light = (enum arb_light)(pick(g, 10) < 6 ? ARB_GREEN
                                     : pick(g, 2)    ? ARB_YELLOW
                                                     : ARB_RED);
    /* sometimes the floor grew after admission (the group shrank) */
    if (w->inst.sec14a && pick(g, 5) == 0)
        w->inst.floor_w =
            arbiter_floor_single(w->inst.kind, w->inst.consumes, w->inst.rated_w, true);
    w->from = AT(-60) + pick(g, 2 * Q);
    w->to = AT(180) + pick(g, 4 * Q);

    int n = arbiter_timeline(&w->inst, w->in, w->n, w->from, w->to, sl, PSLOTS);
    if (n <= 0)
        pfail(w, "arbiter_timeline: %d", n);

    /* P5: consecutive slots covering [from, to), neighbours differ */
    if (sl[0].start_ms != w->from || sl[n - 1].end_ms != w->to)
        pfail(w, "slots cover [%s, %s)", tm(sl[0].start_ms), tm(sl[n - 1].end_ms));
    for (int i = 0; i < n; i++) {
        if (sl[i].start_ms >= sl[i].end_ms)
            pfail(w, "slot %d is empty", i);
        if (i > 0 && (sl[i].start_ms != sl[i - 1].end_ms || caps_eq(&sl[i], &sl[i - 1])))
            pfail(w, "slot %d does not follow on slot %d, or equals it", i, i - 1);
        check_slot_model(w, &sl[i], sl[i].start_ms);
        check_slot_model(w, &sl[i], sl[i].end_ms - 1);
        check_slot_model(w, &sl[i], sl[i].start_ms + pick(g, sl[i].end_ms - sl[i].start_ms));
    }
    if (n > 1) {
        memset(other, 0, sizeof other);
        if (arbiter_timeline(&w->inst, w->in, w->n, w->from, w->to, other, (size_t)n - 1) !=
                -E2BIG ||
            !slots_eq(sl, other, (size_t)n - 1))
            pfail(w, "room for %d of %d slots: not -E2BIG with the first ones", n - 1, n);
    }

    /* P4: arbiter_at() agrees with the timeline */
    for (int k = 0; k < 16; k++) {
        int64_t t = w->from + pick(g, w->to - w->from);
        int i = 0;
        while (sl[i].end_ms <= t)
            i++;
        arbiter_at(&w->inst, w->in, w->n, t, &at);
        if (at.start_ms != t || at.end_ms != t + 1 || !caps_eq(&at, &sl[i]))
            pfail(w, "arbiter_at(%s) differs from slot %d", tm(t), i);
    }

    /* P3: neither the input order nor the grid requests' seq matter */
    struct arb_req cp[PMAXR];
    const struct arb_req *ptr[PMAXR];
    for (size_t i = 0; i < w->n; i++)
        cp[i] = *w->in[i];
    renumber_grid(w, cp, w->n);
    for (size_t i = 0; i < w->n; i++)
        ptr[i] = &cp[i];
    for (size_t i = w->n; i > 1; i--) {
        size_t j = (size_t)pick(g, (int64_t)i);
        const struct arb_req *x = ptr[i - 1];
        ptr[i - 1] = ptr[j];
        ptr[j] = x;
    }
    int m = arbiter_timeline(&w->inst, ptr, w->n, w->from, w->to, other, PSLOTS);
    if (m != n || !slots_eq(sl, other, (size_t)n)) {
        print_slots("timeline", sl, (size_t)n);
        print_slots("shuffled and renumbered", other, m > 0 ? (size_t)m : 0);
        for (size_t i = 0; i < w->n; i++)
            print_message("    %s: seq %lld\n", ptr[i]->id, (long long)ptr[i]->seq);
        pfail(w, "the timeline depends on the order or the seq of grid requests");
    }
}

static void run_world(uint64_t seed)
{
    struct world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->seed = seed;
    /* splitmix64 of the seed: never zero for xorshift */
    uint64_t z = seed + UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    w->g.s = (z ^ (z >> 31)) | 1;
    gen_inst(w);
    gen_requests(w);
    check_world(w);
    free(w);
}

static void test_properties(void **state)
{
    const char *env = getenv("CLSM_ARBITER_SEED");
    (void)state;
    if (env != NULL && *env != '\0') {
        run_world(strtoull(env, NULL, 0));
        return;
    }
    for (uint64_t i = 0; i < PITER; i++)
        run_world(PSEED + i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floor_single),
        cmocka_unit_test(test_simultaneity),
        cmocka_unit_test(test_floors),
        cmocka_unit_test(test_floors_equal_members),
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_steps_full_day),
        cmocka_unit_test(test_admit),
        cmocka_unit_test(test_admit_no_steps),
        cmocka_unit_test(test_admit_two_conflicts),
        cmocka_unit_test(test_timeline),
        cmocka_unit_test(test_timeline_e2big),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
