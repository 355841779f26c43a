/*
 * test_steuerbox.c - the Steuerbox device model: limits and their expiry,
 * relay levels, schedules, failsafe on channel loss, de-duplication, nacks
 * and the power profiles, driven through lpc-mqtt payloads as clsmd sends
 * them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "smgw/steuerbox.h"

#define S   1000LL
#define MIN (60 * S)
#define H   (60 * MIN)

/* 2026-11-28 12:00 CET */
static int64_t noon(void)
{
    int64_t t;
    assert_int_equal(time_parse_ms("2026-11-28T11:00:00Z", &t), 0);
    return t;
}

/* RFC 3339 text of 'ms'; the last eight results stay valid. */
static char *iso(int64_t ms)
{
    static char buf[8][40];
    static int i;
    i = (i + 1) % 8;
    return time_format_ms(ms, buf[i], sizeof buf[i]);
}

/* Send a control built from 'fmt'; the ack must be well formed. Returns the
 * SB_CTL_* flags and fills '*ack'. The link stays as the control left it:
 * up, with the heartbeat timer running. */
__attribute__((format(printf, 4, 0))) static unsigned
vsend(struct steuerbox *sb, int64_t now, struct lpc_ack *ack, const char *fmt, va_list ap)
{
    char payload[4096], buf[512];
    struct lpc_error err;
    unsigned flags = 0;
    int n;

    vsnprintf(payload, sizeof payload, fmt, ap);
    n = steuerbox_control(sb, payload, strlen(payload), now, buf, sizeof buf, &flags);
    assert_true(n > 0);
    if (lpc_ack_decode(buf, (size_t)n, ack, &err) != 0)
        fail_msg("bad ack %s: %s %s", buf, err.field, err.reason);
    return flags;
}

__attribute__((format(printf, 4, 5))) static unsigned
send_raw(struct steuerbox *sb, int64_t now, struct lpc_ack *ack, const char *fmt, ...)
{
    va_list ap;
    unsigned flags;
    va_start(ap, fmt);
    flags = vsend(sb, now, ack, fmt, ap);
    va_end(ap);
    return flags;
}

/* As send_raw(), as one short session: the channel then ends in order, as
 * the fleet simulator reports it, so no heartbeat timer runs afterwards. */
__attribute__((format(printf, 4, 5))) static unsigned
send(struct steuerbox *sb, int64_t now, struct lpc_ack *ack, const char *fmt, ...)
{
    va_list ap;
    unsigned flags;
    va_start(ap, fmt);
    flags = vsend(sb, now, ack, fmt, ap);
    va_end(ap);
    steuerbox_link_closed(sb, now);
    return flags;
}

static unsigned limit(struct steuerbox *sb, int64_t now, const char *cmd, const char *dir,
                      long long w, long long duration_s)
{
    struct lpc_ack ack;
    unsigned f = send(sb, now, &ack,
                      "{\"cmd\":\"%s\",\"type\":\"limit\",\"direction\":\"%s\",\"value_w\":%lld,"
                      "\"active\":true,\"duration_s\":%lld}",
                      cmd, dir, w, duration_s);
    assert_true(ack.ok);
    return f;
}

static void sw(struct steuerbox *sb, int64_t now, const char *cmd, const char *level)
{
    struct lpc_ack ack;
    send(sb, now, &ack, "{\"cmd\":\"%s\",\"type\":\"switch\",\"level\":\"%s\"}", cmd, level);
    assert_true(ack.ok);
}

static void state(struct steuerbox *sb, int64_t now, struct lpc_state *s)
{
    char buf[1024];
    struct lpc_error err;
    int n = steuerbox_state(sb, now, buf, sizeof buf);
    assert_true(n > 0);
    if (lpc_state_decode(buf, (size_t)n, s, &err) != 0)
        fail_msg("bad state %s: %s %s", buf, err.field, err.reason);
}

static void init(struct steuerbox *sb, enum steuerbox_kind kind, uint32_t rated)
{
    assert_int_equal(steuerbox_init(sb, "SB-000123", kind, rated, 7, 4200, 7200), 0);
}

/* --- set-up --------------------------------------------------------------- */

static void test_init(void **st)
{
    struct steuerbox sb;
    enum steuerbox_kind k;
    (void)st;

    assert_true(sizeof(struct steuerbox) <= 2048);
    print_message("sizeof(struct steuerbox) = %zu\n", sizeof(struct steuerbox));
    assert_int_equal(steuerbox_init(&sb, "", SB_PV, 1000, 1, 4200, 7200), -EINVAL);
    assert_int_equal(steuerbox_init(&sb, "-x", SB_PV, 1000, 1, 4200, 7200), -EINVAL);
    assert_int_equal(steuerbox_init(&sb, "a/b", SB_PV, 1000, 1, 4200, 7200), -EINVAL);
    assert_int_equal(steuerbox_init(&sb, NULL, SB_PV, 1000, 1, 4200, 7200), -EINVAL);
    assert_int_equal(steuerbox_init(&sb, "x", SB_NKINDS, 1000, 1, 4200, 7200), -EINVAL);
    assert_int_equal(steuerbox_init(&sb, "x", SB_PV, 0, 1, 4200, 7200), -EINVAL);
    assert_int_equal(steuerbox_init(&sb, "x", SB_PV, LPC_MAX_POWER_W + 1, 1, 4200, 7200), -EINVAL);
    assert_int_equal(steuerbox_init(&sb, "x", SB_PV, 1000, 1, LPC_MAX_POWER_W + 1, 7200), -EINVAL);
    assert_int_equal(steuerbox_init(&sb, "x", SB_PV, 1000, 1, 4200, 86401), -EINVAL);

    init(&sb, SB_HEAT_PUMP, 9000);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_NORMAL);
    assert_int_equal(steuerbox_link_state(&sb), SB_LINK_IDLE);
    assert_int_equal(steuerbox_effective_limit_w(&sb, noon()), SB_UNLIMITED);
    assert_int_equal(steuerbox_applied_count(&sb, "x"), 0);
    assert_int_equal(steuerbox_set_heartbeat_timeout(&sb, 0), -EINVAL);
    assert_int_equal(steuerbox_set_heartbeat_timeout(&sb, 86401), -EINVAL);
    assert_int_equal(steuerbox_set_dim_w(&sb, LPC_MAX_POWER_W + 1), -EINVAL);
    steuerbox_fini(&sb);

    assert_int_equal(steuerbox_kind_parse("storage_heater", &k), 0);
    assert_int_equal(k, SB_STORAGE_HEATER);
    assert_string_equal(steuerbox_kind_name(SB_PV), "pv");
    assert_int_equal(steuerbox_kind_parse("toaster", &k), -EINVAL);
}

/* --- limits --------------------------------------------------------------- */

static void test_limit_caps_measured(void **st)
{
    struct steuerbox sb, ref;
    struct lpc_state s;
    int64_t t0 = noon(), max_demand = 0;
    int at_cap = 0;
    (void)st;

    init(&ref, SB_HEAT_PUMP, 9000);
    for (int64_t t = t0; t < t0 + 24 * H; t += 5 * MIN) {
        int64_t d = steuerbox_demand_w(&ref, t);
        assert_int_equal(steuerbox_measured_w(&ref, t), d); /* unlimited: follows demand */
        max_demand = d > max_demand ? d : max_demand;
    }
    assert_true(max_demand > 2000);
    steuerbox_fini(&ref);

    init(&sb, SB_HEAT_PUMP, 9000);
    assert_int_equal(limit(&sb, t0, "c1", "consumption", 2000, 0), SB_CTL_APPLIED | SB_CTL_STATE);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0), 2000);
    for (int64_t t = t0; t < t0 + 24 * H; t += 5 * MIN) {
        int64_t d = steuerbox_demand_w(&sb, t), m = steuerbox_measured_w(&sb, t);
        assert_int_equal(m, d < 2000 ? d : 2000);
        at_cap += m == 2000;
    }
    assert_true(at_cap > 0);
    state(&sb, t0 + 24 * H, &s);
    assert_true(s.limit[LPC_CONSUMPTION].active);
    assert_int_equal(s.limit[LPC_CONSUMPTION].value_w, 2000);
    assert_int_equal(s.limit[LPC_CONSUMPTION].until_ms, LPC_NONE);
    assert_int_equal(s.effective_w[LPC_CONSUMPTION], 2000);
    assert_int_equal(s.effective_w[LPC_PRODUCTION], LPC_NONE); /* a heat pump has none */
    assert_true(s.measured_w <= 2000);
    assert_string_equal(s.last_cmd, "c1");
    steuerbox_fini(&sb);
}

/* The fleet simulator's overdraw fault: the limit is taken and reported,
 * but the installation draws its whole demand. */
static void test_overdraw_ignores_the_cap(void **st)
{
    struct steuerbox sb;
    struct lpc_state s;
    int64_t t0 = noon();
    int above = 0;
    (void)st;

    init(&sb, SB_HEAT_PUMP, 9000);
    sb.overdraw = true;
    assert_int_equal(limit(&sb, t0, "c1", "consumption", 2000, 0), SB_CTL_APPLIED | SB_CTL_STATE);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0), 2000);
    for (int64_t t = t0; t < t0 + 24 * H; t += 5 * MIN) {
        int64_t d = steuerbox_demand_w(&sb, t);
        assert_int_equal(steuerbox_measured_w(&sb, t), d);
        above += d > 2000;
    }
    assert_true(above > 0);
    state(&sb, t0 + 24 * H, &s);
    assert_int_equal(s.effective_w[LPC_CONSUMPTION], 2000); /* it says it holds the cap */
    steuerbox_fini(&sb);
}

static void test_limit_duration_expires(void **st)
{
    struct steuerbox sb;
    struct lpc_state s;
    struct lpc_ack ack;
    int64_t t0 = noon();
    (void)st;

    init(&sb, SB_HEAT_PUMP, 9000);
    limit(&sb, t0, "c1", "consumption", 3000, 900);
    assert_int_equal(steuerbox_tick(&sb, t0 + 1), 0);
    state(&sb, t0 + 1, &s);
    assert_int_equal(s.limit[0].until_ms, t0 + 900 * S);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + 900 * S - 1), 3000);
    assert_int_equal(steuerbox_tick(&sb, t0 + 900 * S), 1);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + 900 * S), SB_UNLIMITED);
    assert_int_equal(steuerbox_tick(&sb, t0 + 901 * S), 0);
    state(&sb, t0 + 901 * S, &s);
    assert_false(s.limit[0].active);
    assert_int_equal(s.limit[0].until_ms, LPC_NONE);
    assert_int_equal(s.limit[0].value_w, 3000);
    assert_int_equal(s.effective_w[0], LPC_NONE);

    /* A newer limit replaces the older one; active false lifts it. */
    limit(&sb, t0 + H, "c2", "consumption", 3000, 0);
    limit(&sb, t0 + H, "c3", "consumption", 5000, 0);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + H), 5000);
    send(&sb, t0 + H, &ack,
         "{\"cmd\":\"c4\",\"type\":\"limit\",\"direction\":\"consumption\",\"value_w\":1000,"
         "\"active\":false,\"duration_s\":600}");
    assert_true(ack.ok);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + H), SB_UNLIMITED);
    state(&sb, t0 + H, &s);
    assert_false(s.limit[0].active);
    assert_int_equal(s.limit[0].value_w, 1000);
    assert_int_equal(s.limit[0].until_ms, LPC_NONE);

    /* Without a duration a limit holds, a week later too. */
    limit(&sb, t0 + 2 * H, "c5", "consumption", 2500, 0);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + 2 * H + 7 * 24 * H), 2500);
    steuerbox_fini(&sb);
}

/* --- relays --------------------------------------------------------------- */

static void test_relays_and_switch(void **st)
{
    static const struct {
        const char *json;
        enum lpc_level level;
        bool r0, r1;
        int64_t eff;
    } steps[] = {
        {"{\"cmd\":\"a\",\"type\":\"relay\",\"index\":0,\"closed\":true}", LPC_LEVEL_DIM, true,
         false, 4200},
        {"{\"cmd\":\"b\",\"type\":\"relay\",\"index\":1,\"closed\":true}", LPC_LEVEL_OFF, true,
         true, 0},
        {"{\"cmd\":\"c\",\"type\":\"relay\",\"index\":0,\"closed\":false}", LPC_LEVEL_OFF, false,
         true, 0},
        {"{\"cmd\":\"d\",\"type\":\"relay\",\"index\":1,\"closed\":false}", LPC_LEVEL_ON, false,
         false, SB_UNLIMITED},
        {"{\"cmd\":\"e\",\"type\":\"switch\",\"level\":\"dim\"}", LPC_LEVEL_DIM, true, false, 4200},
        {"{\"cmd\":\"f\",\"type\":\"switch\",\"level\":\"off\"}", LPC_LEVEL_OFF, false, true, 0},
        {"{\"cmd\":\"g\",\"type\":\"switch\",\"level\":\"on\"}", LPC_LEVEL_ON, false, false,
         SB_UNLIMITED},
    };
    struct steuerbox sb;
    struct lpc_state s;
    struct lpc_ack ack;
    int64_t t = noon();
    (void)st;

    init(&sb, SB_WALLBOX, 11000);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++, t += MIN) {
        send(&sb, t, &ack, "%s", steps[i].json);
        assert_true(ack.ok);
        state(&sb, t, &s);
        assert_int_equal(s.level, steps[i].level);
        assert_int_equal(s.relay_closed[0], steps[i].r0);
        assert_int_equal(s.relay_closed[1], steps[i].r1);
        assert_int_equal(steuerbox_effective_limit_w(&sb, t), steps[i].eff);
        if (steps[i].eff == 0)
            assert_int_equal(steuerbox_measured_w(&sb, t), 0);
    }
    /* Dim and a manual limit: the lower one wins. */
    sw(&sb, t, "h", "dim");
    limit(&sb, t, "i", "consumption", 3000, 0);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t), 3000);
    limit(&sb, t, "j", "consumption", 6000, 0);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t), 4200);
    assert_int_equal(steuerbox_set_dim_w(&sb, 5000), 0);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t), 5000);
    /* Off caps a limit too; the wallbox then draws nothing whatever its
     * session says. */
    sw(&sb, t, "k", "off");
    for (int64_t u = t; u < t + 24 * H; u += 10 * MIN)
        assert_int_equal(steuerbox_measured_w(&sb, u), 0);
    steuerbox_fini(&sb);
}

/* --- schedules ------------------------------------------------------------ */

static void test_schedule_boundaries(void **st)
{
    struct steuerbox sb;
    struct lpc_ack ack;
    struct lpc_state s;
    int64_t t0 = noon();
    unsigned f;
    (void)st;

    init(&sb, SB_HEAT_PUMP, 9000);
    limit(&sb, t0, "m1", "consumption", 5000, 0);
    f = send(&sb, t0, &ack,
             "{\"cmd\":\"p1\",\"type\":\"schedule\",\"intervals\":["
             "{\"start\":\"%s\",\"end\":\"%s\",\"direction\":\"consumption\",\"value_w\":1000},"
             "{\"start\":\"%s\",\"end\":\"%s\",\"level\":\"off\"},"
             "{\"start\":\"%s\",\"end\":\"%s\",\"level\":\"dim\"}]}",
             iso(t0 + 10 * MIN), iso(t0 + 20 * MIN), iso(t0 + 20 * MIN), iso(t0 + 30 * MIN),
             iso(t0 + 40 * MIN), iso(t0 + 50 * MIN));
    assert_true(ack.ok);
    assert_int_equal(f, SB_CTL_APPLIED | SB_CTL_STATE);

    static const struct {
        int64_t at;
        int64_t eff;
        int changed; /* what tick() reports */
    } steps[] = {
        {10 * MIN - 1, 5000, 0}, {10 * MIN, 1000, 1},     {20 * MIN - 1, 1000, 0},
        {20 * MIN, 0, 1},        {30 * MIN - 1, 0, 0},    {30 * MIN, 5000, 1},
        {40 * MIN, 4200, 1},     {50 * MIN - 1, 4200, 0}, {50 * MIN, 5000, 1},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int64_t t = t0 + steps[i].at;
        assert_int_equal(steuerbox_tick(&sb, t), steps[i].changed);
        assert_int_equal(steuerbox_effective_limit_w(&sb, t), steps[i].eff);
        if (steps[i].eff == 0)
            assert_int_equal(steuerbox_measured_w(&sb, t), 0);
    }
    /* The manual limit was only overridden, and the relays never moved. */
    state(&sb, t0 + 50 * MIN, &s);
    assert_true(s.limit[0].active);
    assert_int_equal(s.limit[0].value_w, 5000);
    assert_int_equal(s.level, LPC_LEVEL_ON);
    steuerbox_fini(&sb);
}

static void test_schedule_level_overrides_relays(void **st)
{
    struct steuerbox sb;
    struct lpc_ack ack;
    int64_t t0 = noon();
    (void)st;

    init(&sb, SB_HEAT_PUMP, 9000);
    sw(&sb, t0, "s1", "off");
    send(&sb, t0, &ack,
         "{\"cmd\":\"p1\",\"type\":\"schedule\",\"intervals\":["
         "{\"start\":\"%s\",\"end\":\"%s\",\"level\":\"on\"}]}",
         iso(t0 + H), iso(t0 + 2 * H));
    assert_true(ack.ok);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + H - 1), 0);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + H), SB_UNLIMITED);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + 2 * H), 0);

    /* A new schedule replaces the stored one; an empty one deletes it. */
    send(&sb, t0 + 2 * H, &ack,
         "{\"cmd\":\"p2\",\"type\":\"schedule\",\"intervals\":["
         "{\"start\":\"%s\",\"end\":\"%s\",\"level\":\"on\"}]}",
         iso(t0 + 3 * H), iso(t0 + 4 * H));
    send(&sb, t0 + 2 * H, &ack,
         "{\"cmd\":\"p3\",\"type\":\"schedule\",\"intervals\":["
         "{\"start\":\"%s\",\"end\":\"%s\",\"level\":\"on\"}]}",
         iso(t0 + 5 * H), iso(t0 + 6 * H));
    assert_true(ack.ok);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + 3 * H), 0);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + 5 * H), SB_UNLIMITED);
    send(&sb, t0 + 5 * H, &ack, "{\"cmd\":\"p4\",\"type\":\"schedule\",\"intervals\":[]}");
    assert_true(ack.ok);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + 5 * H), 0);
    steuerbox_fini(&sb);
}

static void test_schedule_nacks(void **st)
{
    struct steuerbox sb;
    struct lpc_ack ack;
    int64_t t0 = noon();
    unsigned f;
    (void)st;

    init(&sb, SB_HEAT_PUMP, 9000);
    /* Entirely before the device's time: an execution error. */
    f = send(&sb, t0, &ack,
             "{\"cmd\":\"old\",\"type\":\"schedule\",\"intervals\":["
             "{\"start\":\"%s\",\"end\":\"%s\",\"level\":\"off\"}]}",
             iso(t0 - 2 * H), iso(t0));
    assert_int_equal(f, SB_CTL_NACK);
    assert_false(ack.ok);
    assert_int_equal(ack.error, LPC_ERR_EXECUTION);
    assert_string_equal(ack.cmd, "old");
    /* A production limit on a heat pump: not supported. */
    f = send(&sb, t0, &ack,
             "{\"cmd\":\"pv\",\"type\":\"schedule\",\"intervals\":["
             "{\"start\":\"%s\",\"end\":\"%s\",\"direction\":\"production\",\"value_w\":0}]}",
             iso(t0), iso(t0 + H));
    assert_int_equal(ack.error, LPC_ERR_UNSUPPORTED);
    /* Overlapping intervals: a protocol error naming the field. */
    f = send(&sb, t0, &ack,
             "{\"cmd\":\"ov\",\"type\":\"schedule\",\"intervals\":["
             "{\"start\":\"%s\",\"end\":\"%s\",\"level\":\"off\"},"
             "{\"start\":\"%s\",\"end\":\"%s\",\"level\":\"on\"}]}",
             iso(t0), iso(t0 + H), iso(t0 + 30 * MIN), iso(t0 + 2 * H));
    assert_int_equal(ack.error, LPC_ERR_PROTOCOL);
    assert_non_null(strstr(ack.reason, "/intervals/1/start"));
    /* Nothing of it was kept. */
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + 10 * MIN), SB_UNLIMITED);
    assert_int_equal(steuerbox_applied_count(&sb, "old"), 0);
    assert_int_equal(steuerbox_applied_count(&sb, "ov"), 0);
    steuerbox_fini(&sb);
}

/* --- failsafe ------------------------------------------------------------- */

static void test_failsafe_after_loss_and_duration(void **st)
{
    struct steuerbox sb;
    struct lpc_state s;
    int64_t t0 = noon(), lost = t0 + 10 * S, enter = lost + SB_HEARTBEAT_TIMEOUT * S;
    (void)st;

    init(&sb, SB_HEAT_PUMP, 9000);
    steuerbox_link_restored(&sb, t0);
    limit(&sb, t0, "c1", "consumption", 1000, 0);
    sw(&sb, t0, "c2", "dim");
    assert_int_equal(steuerbox_set_dim_w(&sb, 3000), 0);
    steuerbox_link_lost(&sb, lost);
    assert_int_equal(steuerbox_link_state(&sb), SB_LINK_LOST);
    assert_int_equal(steuerbox_tick(&sb, enter - 1), 0);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_NORMAL);
    assert_int_equal(steuerbox_effective_limit_w(&sb, enter - 1), 1000);

    assert_int_equal(steuerbox_tick(&sb, enter), 1);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_FAILSAFE);
    /* The failsafe value replaces the controller's lower limit. */
    assert_int_equal(steuerbox_effective_limit_w(&sb, enter), 4200);
    state(&sb, enter + MIN, &s);
    assert_int_equal(s.mode, LPC_MODE_FAILSAFE);
    assert_int_equal(s.failsafe.until_ms, enter + 7200 * S);
    assert_int_equal(s.effective_w[LPC_CONSUMPTION], 4200);
    assert_true(s.measured_w <= 4200);
    /* A second loss report does not restart the clock. */
    steuerbox_link_lost(&sb, enter + H);
    assert_int_equal(steuerbox_tick(&sb, enter + 7200 * S - 1), 0);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_FAILSAFE);

    /* After its duration: normal and unlimited; the orders are forgotten. */
    assert_int_equal(steuerbox_tick(&sb, enter + 7200 * S), 1);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_NORMAL);
    assert_int_equal(steuerbox_link_state(&sb), SB_LINK_IDLE);
    assert_int_equal(steuerbox_effective_limit_w(&sb, enter + 7200 * S), SB_UNLIMITED);
    state(&sb, enter + 7200 * S, &s);
    assert_false(s.limit[0].active);
    assert_int_equal(s.level, LPC_LEVEL_ON);
    assert_int_equal(s.failsafe.until_ms, LPC_NONE);
    /* Idle: no further failsafe however long nothing happens. */
    assert_int_equal(steuerbox_tick(&sb, enter + 30 * 24 * H), 0);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_NORMAL);
    steuerbox_fini(&sb);
}

static void test_failsafe_late_tick(void **st)
{
    struct steuerbox sb;
    int64_t t0 = noon();
    (void)st;

    /* Nobody looked for three hours: the failsafe started and ended in
     * between, at the right instants. */
    init(&sb, SB_HEAT_PUMP, 9000);
    limit(&sb, t0, "c1", "consumption", 1000, 0);
    steuerbox_link_lost(&sb, t0);
    assert_int_equal(steuerbox_tick(&sb, t0 + 3 * H), 1);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_NORMAL);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + 3 * H), SB_UNLIMITED);
    steuerbox_fini(&sb);
}

static void test_failsafe_left_on_restore(void **st)
{
    struct steuerbox sb;
    struct lpc_state s;
    int64_t t0 = noon(), enter = t0 + SB_HEARTBEAT_TIMEOUT * S;
    (void)st;

    init(&sb, SB_HEAT_PUMP, 9000);
    steuerbox_link_restored(&sb, t0);
    limit(&sb, t0, "c1", "consumption", 1000, 0);
    steuerbox_link_lost(&sb, t0);
    steuerbox_tick(&sb, enter);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_FAILSAFE);
    steuerbox_link_restored(&sb, enter + 30 * MIN);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_NORMAL);
    assert_int_equal(steuerbox_link_state(&sb), SB_LINK_UP);
    /* The orders held before the failsafe apply again until restated. */
    assert_int_equal(steuerbox_effective_limit_w(&sb, enter + 30 * MIN), 1000);
    assert_int_equal(steuerbox_tick(&sb, enter + 30 * MIN), 1);
    state(&sb, enter + 30 * MIN, &s);
    assert_int_equal(s.mode, LPC_MODE_NORMAL);
    assert_int_equal(s.failsafe.until_ms, LPC_NONE);

    steuerbox_fini(&sb);

    /* Restored within the timeout: no failsafe at all. */
    init(&sb, SB_HEAT_PUMP, 9000);
    steuerbox_link_restored(&sb, t0);
    limit(&sb, t0, "c1", "consumption", 1000, 0);
    steuerbox_link_lost(&sb, t0 + S);
    steuerbox_link_restored(&sb, t0 + S + 119 * S);
    assert_int_equal(steuerbox_tick(&sb, t0 + S + 121 * S), 0);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_NORMAL);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + S + 121 * S), 1000);
    steuerbox_fini(&sb);
}

static void test_heartbeat_watchdog(void **st)
{
    struct steuerbox sb;
    struct lpc_ack ack;
    int64_t t0 = noon(), t = t0;
    unsigned f;
    (void)st;

    init(&sb, SB_HEAT_PUMP, 9000);
    steuerbox_link_restored(&sb, t0);
    for (int i = 0; i < 10; i++, t += MIN) {
        char id[16];
        snprintf(id, sizeof id, "hb-%d", i);
        f = send_raw(&sb, t, &ack, "{\"cmd\":\"%s\",\"type\":\"heartbeat\"}", id);
        assert_true(ack.ok);
        assert_string_equal(ack.cmd, id);
        assert_int_equal(f, 0);
        assert_int_equal(steuerbox_tick(&sb, t + 59 * S), 0);
    }
    t -= MIN;                                                  /* the last heartbeat */
    assert_int_equal(steuerbox_applied_count(&sb, "hb-0"), 0); /* not recorded */
    assert_int_equal(steuerbox_tick(&sb, t + 120 * S - 1), 0);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_NORMAL);
    assert_int_equal(steuerbox_tick(&sb, t + 120 * S), 1);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_FAILSAFE);
    assert_int_equal(steuerbox_link_state(&sb), SB_LINK_LOST);

    /* Any control is contact again: the failsafe ends and a state is due. */
    f = send_raw(&sb, t + 10 * MIN, &ack, "{\"cmd\":\"q1\",\"type\":\"read\"}");
    assert_true(ack.ok);
    assert_int_equal(f, SB_CTL_STATE);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_NORMAL);
    assert_int_equal(steuerbox_link_state(&sb), SB_LINK_UP);

    /* A shorter configured timeout. */
    assert_int_equal(steuerbox_set_heartbeat_timeout(&sb, 30), 0);
    assert_int_equal(steuerbox_tick(&sb, t + 10 * MIN + 29 * S), 0);
    assert_int_equal(steuerbox_tick(&sb, t + 10 * MIN + 30 * S), 1);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_FAILSAFE);
    steuerbox_fini(&sb);
}

static void test_orderly_close_keeps_limits(void **st)
{
    struct steuerbox sb;
    int64_t t0 = noon();
    (void)st;

    init(&sb, SB_HEAT_PUMP, 9000);
    steuerbox_link_restored(&sb, t0);
    limit(&sb, t0, "c1", "consumption", 1000, 0);
    steuerbox_link_closed(&sb, t0 + S);
    assert_int_equal(steuerbox_link_state(&sb), SB_LINK_IDLE);
    assert_int_equal(steuerbox_tick(&sb, t0 + 24 * H), 0);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_NORMAL);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + 24 * H), 1000);
    steuerbox_fini(&sb);
}

static void test_failsafe_settings(void **st)
{
    struct steuerbox sb;
    struct lpc_state s;
    struct lpc_ack ack;
    int64_t t0 = noon(), enter = t0 + SB_HEARTBEAT_TIMEOUT * S;
    (void)st;

    init(&sb, SB_HEAT_PUMP, 9000);
    steuerbox_link_restored(&sb, t0);
    send(&sb, t0, &ack,
         "{\"cmd\":\"f1\",\"type\":\"failsafe\",\"value_w\":2000,\"duration_s\":600}");
    assert_true(ack.ok);
    state(&sb, t0, &s);
    assert_int_equal(s.failsafe.value_w, 2000);
    assert_int_equal(s.failsafe.duration_s, 600);
    sw(&sb, t0, "d1", "dim");
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0), 4200); /* dim keeps its own cap */
    steuerbox_link_lost(&sb, t0);
    steuerbox_tick(&sb, enter);
    assert_int_equal(steuerbox_effective_limit_w(&sb, enter), 2000);
    assert_int_equal(steuerbox_tick(&sb, enter + 600 * S - 1), 0);
    assert_int_equal(steuerbox_tick(&sb, enter + 600 * S), 1);
    assert_int_equal(steuerbox_effective_limit_w(&sb, enter + 600 * S), SB_UNLIMITED);

    /* Duration 0: the device goes straight back to normal. */
    steuerbox_link_restored(&sb, t0 + H);
    send(&sb, t0 + H, &ack,
         "{\"cmd\":\"f2\",\"type\":\"failsafe\",\"value_w\":0,\"duration_s\":0}");
    limit(&sb, t0 + H, "c1", "consumption", 1000, 0);
    steuerbox_link_lost(&sb, t0 + H);
    steuerbox_tick(&sb, t0 + H + 120 * S);
    assert_int_equal(steuerbox_mode(&sb), LPC_MODE_NORMAL);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + H + 120 * S), SB_UNLIMITED);
    steuerbox_fini(&sb);
}

/* --- de-duplication ------------------------------------------------------- */

static void test_dedupe(void **st)
{
    struct steuerbox sb;
    struct lpc_ack ack;
    struct lpc_state s;
    int64_t t0 = noon();
    char id[16];
    unsigned f;
    (void)st;

    init(&sb, SB_HEAT_PUMP, 9000);
    assert_int_equal(limit(&sb, t0, "c1", "consumption", 3000, 0), SB_CTL_APPLIED | SB_CTL_STATE);
    assert_int_equal(limit(&sb, t0, "c1", "consumption", 3000, 0), SB_CTL_DUPLICATE | SB_CTL_STATE);
    assert_int_equal(steuerbox_applied_count(&sb, "c1"), 1);
    assert_int_equal(steuerbox_duplicates(&sb), 1);

    /* A late repeat of c1 after c2 changes nothing. */
    limit(&sb, t0, "c2", "consumption", 5000, 0);
    f = limit(&sb, t0 + S, "c1", "consumption", 3000, 0);
    assert_true(f & SB_CTL_DUPLICATE);
    assert_false(f & SB_CTL_APPLIED);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + S), 5000);
    state(&sb, t0 + S, &s);
    assert_string_equal(s.last_cmd, "c2");
    assert_int_equal(steuerbox_applied_count(&sb, "c1"), 1);
    assert_int_equal(steuerbox_applied_count(&sb, "c2"), 1);

    /* Other control types are de-duplicated alike. */
    sw(&sb, t0, "s1", "off");
    sw(&sb, t0, "s2", "on");
    f = send(&sb, t0, &ack, "{\"cmd\":\"s1\",\"type\":\"switch\",\"level\":\"off\"}");
    assert_true(ack.ok);
    assert_true(f & SB_CTL_DUPLICATE);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0), 5000);

    /* Nacked controls are not remembered: a repeat is judged again. */
    send(&sb, t0, &ack,
         "{\"cmd\":\"n1\",\"type\":\"limit\",\"direction\":\"production\",\"value_w\":0,"
         "\"active\":true}");
    assert_int_equal(ack.error, LPC_ERR_UNSUPPORTED);
    f = send(&sb, t0, &ack,
             "{\"cmd\":\"n1\",\"type\":\"limit\",\"direction\":\"production\",\"value_w\":0,"
             "\"active\":true}");
    assert_int_equal(f, SB_CTL_NACK);
    assert_int_equal(steuerbox_applied_count(&sb, "n1"), 0);

    /* After SB_DEDUPE newer applied ids, c1 is forgotten and applies again. */
    for (int i = 0; i < SB_DEDUPE; i++) {
        snprintf(id, sizeof id, "x%d", i);
        limit(&sb, t0 + 2 * S, id, "consumption", 5000, 0);
    }
    assert_int_equal(steuerbox_applied_count(&sb, "c1"), 0);
    assert_int_equal(steuerbox_applied_count(&sb, "x0"), 1);
    assert_int_equal(steuerbox_applied_count(&sb, "x255"), 1);
    f = limit(&sb, t0 + 3 * S, "c1", "consumption", 3000, 0);
    assert_int_equal(f, SB_CTL_APPLIED | SB_CTL_STATE);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0 + 3 * S), 3000);
    assert_int_equal(steuerbox_applied_count(&sb, "c1"), 1);
    assert_int_equal(steuerbox_applied_count(&sb, "x0"), 0); /* its slot went to c1 */
    steuerbox_fini(&sb);
}

/* --- nacks ---------------------------------------------------------------- */

static void test_nacks(void **st)
{
    static const struct {
        enum steuerbox_kind kind;
        const char *json;
        int error; /* 0: ok */
        const char *cmd;
        const char *in_reason;
    } cases[] = {
        {SB_HEAT_PUMP, "{\"cmd\":\"u1\",\"type\":\"firmware_update\"}", 4, "u1", "/type"},
        {SB_HEAT_PUMP,
         "{\"cmd\":\"u2\",\"type\":\"limit\",\"direction\":\"production\",\"value_w\":0,"
         "\"active\":true}",
         4, "u2", "production"},
        {SB_PV,
         "{\"cmd\":\"u3\",\"type\":\"limit\",\"direction\":\"consumption\",\"value_w\":0,"
         "\"active\":true}",
         4, "u3", "consumption"},
        {SB_BATTERY,
         "{\"cmd\":\"b1\",\"type\":\"limit\",\"direction\":\"production\",\"value_w\":0,"
         "\"active\":true}",
         0, "b1", NULL},
        {SB_BATTERY,
         "{\"cmd\":\"b2\",\"type\":\"limit\",\"direction\":\"consumption\",\"value_w\":0,"
         "\"active\":true}",
         0, "b2", NULL},
        {SB_HEAT_PUMP,
         "{\"cmd\":\"m1\",\"type\":\"limit\",\"direction\":\"consumption\",\"value_w\":-5,"
         "\"active\":true}",
         2, "m1", "/value_w"},
        {SB_HEAT_PUMP, "{\"cmd\":\"m2\",\"type\":\"relay\",\"index\":3,\"closed\":true}", 2, "m2",
         "/index"},
        {SB_HEAT_PUMP, "{\"cmd\":\"m3\",\"type\":\"read\",\"verbose\":true}", 2, "m3", "/verbose"},
        {SB_HEAT_PUMP, "{\"type\":\"read\"}", 2, "", "/cmd"},
        {SB_HEAT_PUMP, "{\"cmd\":\"a b\",\"type\":\"read\"}", 2, "", "/cmd"},
        {SB_HEAT_PUMP, "{\"cmd\":\"m4\",\"type\":\"read\"", 2, "", "end of file"},
        {SB_HEAT_PUMP, "\xff\xfe", 2, "", "decode"},
    };
    (void)st;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct steuerbox sb;
        struct lpc_ack ack;
        unsigned f;

        init(&sb, cases[i].kind, 5000);
        f = send(&sb, noon(), &ack, "%s", cases[i].json);
        assert_string_equal(ack.cmd, cases[i].cmd);
        if (cases[i].error == 0) {
            assert_true(ack.ok);
            assert_int_equal(f, SB_CTL_APPLIED | SB_CTL_STATE);
        } else {
            if (ack.ok || ack.error != cases[i].error ||
                strstr(ack.reason, cases[i].in_reason) == NULL)
                fail_msg("#%zu: ok=%d error=%d reason=%s", i, ack.ok, ack.error, ack.reason);
            assert_true(f & SB_CTL_NACK);
            assert_false(f & SB_CTL_APPLIED);
            assert_int_equal(steuerbox_effective_limit_w(&sb, noon()), SB_UNLIMITED);
        }
        steuerbox_fini(&sb);
    }
}

static void test_ack_buffer_too_small(void **st)
{
    struct steuerbox sb;
    const char *j = "{\"cmd\":\"c1\",\"type\":\"switch\",\"level\":\"off\"}";
    char small[8];
    unsigned f;
    (void)st;

    init(&sb, SB_HEAT_PUMP, 9000);
    assert_int_equal(steuerbox_control(&sb, j, strlen(j), noon(), small, sizeof small, &f),
                     -ENOSPC);
    assert_int_equal(f, SB_CTL_APPLIED | SB_CTL_STATE);
    assert_int_equal(steuerbox_applied_count(&sb, "c1"), 1);
    steuerbox_fini(&sb);
}

/* --- profiles and messages ------------------------------------------------ */

static int64_t local(int64_t day0, int hour)
{
    return day0 + (int64_t)(hour - 1) * H; /* CET = UTC+1 */
}

static void test_profiles(void **st)
{
    struct steuerbox a, b, c;
    int64_t day0 = noon() - 11 * H; /* 2026-11-28T00:00Z */
    int differ = 0, sessions = 0;
    (void)st;

    for (int k = 0; k < SB_NKINDS; k++) {
        assert_int_equal(steuerbox_init(&a, "d", (enum steuerbox_kind)k, 7000, 99, 4200, 7200), 0);
        for (int64_t t = day0; t < day0 + 2 * 24 * H; t += MIN) {
            int64_t d = steuerbox_demand_w(&a, t);
            assert_true(d >= 0 && d <= 7000);
        }
        steuerbox_fini(&a);
    }

    assert_int_equal(steuerbox_init(&a, "pv1", SB_PV, 10000, 1, 4200, 7200), 0);
    assert_int_equal(steuerbox_init(&b, "pv2", SB_PV, 10000, 1, 4200, 7200), 0);
    assert_int_equal(steuerbox_init(&c, "pv3", SB_PV, 10000, 2, 4200, 7200), 0);
    for (int64_t t = day0; t < day0 + 24 * H; t += 5 * MIN) {
        int64_t m = steuerbox_measured_w(&a, t);
        assert_int_equal(m, -steuerbox_demand_w(&b, t)); /* same seed, same curve */
        assert_true(m <= 0 && m >= -10000);
        differ += steuerbox_demand_w(&b, t) != steuerbox_demand_w(&c, t);
    }
    assert_true(differ > 0);
    assert_int_equal(steuerbox_demand_w(&b, local(day0, 2)), 0);
    assert_int_equal(steuerbox_demand_w(&b, local(day0, 21)), 0);
    assert_true(steuerbox_demand_w(&b, local(day0, 13)) > 5000);
    /* A production limit caps feed-in: measured -1000 W at midday. */
    limit(&b, day0, "p1", "production", 1000, 0);
    assert_int_equal(steuerbox_measured_w(&b, local(day0, 13)), -1000);
    assert_int_equal(steuerbox_effective_limit_w(&b, local(day0, 13)), 1000);
    assert_int_equal(steuerbox_measured_w(&b, local(day0, 21)), 0);
    steuerbox_fini(&a);
    steuerbox_fini(&b);
    steuerbox_fini(&c);

    assert_int_equal(steuerbox_init(&a, "sh", SB_STORAGE_HEATER, 6000, 3, 4200, 7200), 0);
    assert_int_equal(steuerbox_demand_w(&a, local(day0, 12)), 0);
    assert_true(steuerbox_demand_w(&a, local(day0, 2)) >= 4800);
    steuerbox_fini(&a);

    assert_int_equal(steuerbox_init(&a, "wb", SB_WALLBOX, 11000, 5, 4200, 7200), 0);
    for (int64_t t = day0; t < day0 + 10 * 24 * H; t += 10 * MIN)
        sessions += steuerbox_demand_w(&a, t) == 11000;
    assert_true(sessions > 20);
    assert_int_equal(steuerbox_demand_w(&a, local(day0, 12)), 0);
    steuerbox_fini(&a);
}

static void test_time_does_not_go_back(void **st)
{
    struct steuerbox sb;
    int64_t t0 = noon();
    (void)st;

    init(&sb, SB_HEAT_PUMP, 9000);
    limit(&sb, t0, "c1", "consumption", 1000, 60);
    assert_int_equal(steuerbox_tick(&sb, t0 + 61 * S), 1);
    assert_int_equal(steuerbox_effective_limit_w(&sb, t0), SB_UNLIMITED);
    steuerbox_fini(&sb);
}

static void test_messages(void **st)
{
    struct steuerbox sb;
    struct lpc_telemetry tel;
    struct lpc_state s;
    struct lpc_error err;
    struct lpc_ack ack;
    char buf[LPC_REPORT_BUF], big_id[LPC_CMD_MAX + 1];
    int64_t t0 = noon();
    int n;
    (void)st;

    init(&sb, SB_BATTERY, LPC_MAX_POWER_W);
    n = steuerbox_telemetry(&sb, t0, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(lpc_telemetry_decode(buf, (size_t)n, &tel, &err), 0);
    assert_int_equal(tel.time_ms, t0);
    assert_int_equal(tel.measured_w, steuerbox_measured_w(&sb, t0));
    assert_int_equal(steuerbox_telemetry(&sb, t0, buf, 10), -ENOSPC);

    /* The widest state there can be fits the documented 1,024 bytes. */
    memset(big_id, '9', LPC_CMD_MAX);
    big_id[LPC_CMD_MAX] = '\0';
    steuerbox_link_restored(&sb, t0);
    send(&sb, t0, &ack,
         "{\"cmd\":\"%s\",\"type\":\"failsafe\",\"value_w\":1000000000,\"duration_s\":86400}",
         big_id);
    limit(&sb, t0, "c1", "consumption", 999999999, 604800);
    limit(&sb, t0, "c2", "production", 999999999, 604800);
    big_id[0] = '8'; /* the last applied id is a full 64 bytes too */
    send(&sb, t0, &ack, "{\"cmd\":\"%s\",\"type\":\"relay\",\"index\":1,\"closed\":true}", big_id);
    steuerbox_link_lost(&sb, t0);
    steuerbox_tick(&sb, t0 + 120 * S);
    state(&sb, t0 + 121 * S, &s);
    assert_int_equal(s.mode, LPC_MODE_FAILSAFE);
    assert_int_equal(s.effective_w[LPC_PRODUCTION], LPC_MAX_POWER_W);
    assert_string_equal(s.last_cmd, big_id);
    n = steuerbox_state(&sb, t0 + 121 * S, buf, sizeof buf);
    print_message("state message: %d bytes\n", n);
    assert_true(n > 0 && n < LPC_REPORT_BUF);
    assert_int_equal(steuerbox_state(&sb, t0 + 121 * S, buf, (size_t)n), -ENOSPC);
    steuerbox_fini(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_limit_caps_measured),
        cmocka_unit_test(test_limit_duration_expires),
        cmocka_unit_test(test_relays_and_switch),
        cmocka_unit_test(test_schedule_boundaries),
        cmocka_unit_test(test_schedule_level_overrides_relays),
        cmocka_unit_test(test_schedule_nacks),
        cmocka_unit_test(test_failsafe_after_loss_and_duration),
        cmocka_unit_test(test_failsafe_late_tick),
        cmocka_unit_test(test_failsafe_left_on_restore),
        cmocka_unit_test(test_heartbeat_watchdog),
        cmocka_unit_test(test_orderly_close_keeps_limits),
        cmocka_unit_test(test_failsafe_settings),
        cmocka_unit_test(test_dedupe),
        cmocka_unit_test(test_nacks),
        cmocka_unit_test(test_ack_buffer_too_small),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_time_does_not_go_back),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_overdraw_ignores_the_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
