/*
 * test_lpc_msg.c - the lpc-mqtt messages: tables of valid and invalid
 * controls, acks, states and telemetry, round trips, encoder refusals and
 * topics.
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
#include "driver/lpc_msg.h"

#define T0 "2026-11-28T18:00:00Z"

/* One decoder behind a common signature, so that tables can share code. */
typedef int (*decode_fn)(const char *buf, size_t len, void *out, struct lpc_error *err);
typedef int (*encode_fn)(const void *in, char *buf, size_t len);

static int dec_control(const char *b, size_t n, void *o, struct lpc_error *e)
{
    return lpc_control_decode(b, n, o, e);
}
static int dec_ack(const char *b, size_t n, void *o, struct lpc_error *e)
{
    return lpc_ack_decode(b, n, o, e);
}
static int dec_state(const char *b, size_t n, void *o, struct lpc_error *e)
{
    return lpc_state_decode(b, n, o, e);
}
static int dec_telemetry(const char *b, size_t n, void *o, struct lpc_error *e)
{
    return lpc_telemetry_decode(b, n, o, e);
}
static int enc_control(const void *i, char *b, size_t n)
{
    return lpc_control_encode(i, b, n);
}
static int enc_ack(const void *i, char *b, size_t n)
{
    return lpc_ack_encode(i, b, n);
}
static int enc_state(const void *i, char *b, size_t n)
{
    return lpc_state_encode(i, b, n);
}
static int enc_telemetry(const void *i, char *b, size_t n)
{
    return lpc_telemetry_encode(i, b, n);
}

struct codec {
    const char *name;
    decode_fn dec;
    encode_fn enc;
    size_t size;
};

static const struct codec control_codec = {"control", dec_control, enc_control,
                                           sizeof(struct lpc_control)};
static const struct codec ack_codec = {"ack", dec_ack, enc_ack, sizeof(struct lpc_ack)};
static const struct codec state_codec = {"state", dec_state, enc_state, sizeof(struct lpc_state)};
static const struct codec telemetry_codec = {"telemetry", dec_telemetry, enc_telemetry,
                                             sizeof(struct lpc_telemetry)};

/* Decode 'json', encode the result, decode and encode again: the second
 * text must equal the first (the encoder's output is a fixed point). */
static void round_trip(const struct codec *c, const char *json)
{
    void *a = calloc(1, c->size), *b = calloc(1, c->size);
    char t1[LPC_MAX_CONTROL + 1], t2[LPC_MAX_CONTROL + 1];
    struct lpc_error err;
    int rc, n1, n2;

    rc = c->dec(json, strlen(json), a, &err);
    if (rc != 0)
        fail_msg("%s %s: %d %s %s", c->name, json, rc, err.field, err.reason);
    n1 = c->enc(a, t1, sizeof t1);
    assert_true(n1 > 0);
    assert_int_equal((size_t)n1, strlen(t1));
    assert_int_equal(c->dec(t1, (size_t)n1, b, &err), 0);
    n2 = c->enc(b, t2, sizeof t2);
    assert_int_equal(n1, n2);
    assert_string_equal(t1, t2);
    free(a);
    free(b);
}

struct bad {
    const char *json;
    int rc;
    const char *field;
};

static void expect_bad(const struct codec *c, const struct bad *t, size_t n)
{
    void *out = calloc(1, c->size);
    for (size_t i = 0; i < n; i++) {
        struct lpc_error err;
        memset(&err, 0, sizeof err);
        int rc = c->dec(t[i].json, strlen(t[i].json), out, &err);
        if (rc != t[i].rc || strcmp(err.field, t[i].field) != 0 || err.reason[0] == '\0')
            fail_msg("%s #%zu %s: got %d field '%s' (%s), want %d '%s'", c->name, i, t[i].json, rc,
                     err.field, err.reason, t[i].rc, t[i].field);
    }
    free(out);
}

/* --- controls ------------------------------------------------------------- */

static const struct {
    const char *json;
    enum lpc_ctl_type type;
} good_controls[] = {
    {"{\"cmd\":\"c1\",\"type\":\"limit\",\"direction\":\"consumption\",\"value_w\":4200,"
     "\"active\":true,\"duration_s\":900}",
     LPC_CTL_LIMIT},
    {"{\"type\":\"limit\",\"cmd\":\"c2\",\"direction\":\"production\",\"value_w\":0,"
     "\"active\":false}",
     LPC_CTL_LIMIT},
    {"{\"cmd\":\"c3\",\"type\":\"limit\",\"direction\":\"consumption\",\"value_w\":1000000000,"
     "\"active\":true,\"duration_s\":604800}",
     LPC_CTL_LIMIT},
    {"{\"cmd\":\"r1\",\"type\":\"relay\",\"index\":1,\"closed\":true}", LPC_CTL_RELAY},
    {"{\"cmd\":\"s1\",\"type\":\"switch\",\"level\":\"dim\"}", LPC_CTL_SWITCH},
    {"{\"cmd\":\"p1\",\"type\":\"schedule\",\"intervals\":["
     "{\"start\":\"2026-11-28T18:00:00Z\",\"end\":\"2026-11-28T18:15:00Z\","
     "\"direction\":\"consumption\",\"value_w\":4200},"
     "{\"start\":\"2026-11-28T19:15:00+01:00\",\"end\":\"2026-11-28T18:30:00.5Z\",\"level\":"
     "\"off\"}"
     "]}",
     LPC_CTL_SCHEDULE},
    {"{\"cmd\":\"p2\",\"type\":\"schedule\",\"intervals\":[]}", LPC_CTL_SCHEDULE},
    {"{\"cmd\":\"f1\",\"type\":\"failsafe\",\"value_w\":4200,\"duration_s\":7200}",
     LPC_CTL_FAILSAFE},
    {"{\"cmd\":\"q1\",\"type\":\"read\"}", LPC_CTL_READ},
    {" {\"cmd\" : \"h1\", \"type\" : \"heartbeat\"}\n", LPC_CTL_HEARTBEAT},
    {"{\"cmd\":\"Aa0.b_c:d-e12345678901234567890123456789012345678901234567890123\","
     "\"type\":\"read\"}",
     LPC_CTL_READ},
};

static void test_control_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_controls / sizeof good_controls[0]; i++) {
        struct lpc_control c;
        struct lpc_error err;
        const char *j = good_controls[i].json;
        int rc = lpc_control_decode(j, strlen(j), &c, &err);
        if (rc != 0)
            fail_msg("#%zu: %d %s %s", i, rc, err.field, err.reason);
        assert_int_equal(c.type, good_controls[i].type);
        round_trip(&control_codec, j);
    }
}

static void test_control_values(void **state)
{
    struct lpc_control c;
    struct lpc_error err;
    const char *j;
    (void)state;

    j = good_controls[0].json;
    assert_int_equal(lpc_control_decode(j, strlen(j), &c, &err), 0);
    assert_string_equal(c.cmd, "c1");
    assert_int_equal(c.u.limit.direction, LPC_CONSUMPTION);
    assert_int_equal(c.u.limit.value_w, 4200);
    assert_true(c.u.limit.active);
    assert_int_equal(c.u.limit.duration_s, 900);

    j = good_controls[1].json; /* no duration: until replaced */
    assert_int_equal(lpc_control_decode(j, strlen(j), &c, &err), 0);
    assert_int_equal(c.u.limit.direction, LPC_PRODUCTION);
    assert_false(c.u.limit.active);
    assert_int_equal(c.u.limit.duration_s, 0);

    j = good_controls[5].json;
    assert_int_equal(lpc_control_decode(j, strlen(j), &c, &err), 0);
    assert_int_equal(c.u.schedule.n, 2);
    assert_false(c.u.schedule.iv[0].is_level);
    assert_int_equal(c.u.schedule.iv[0].value_w, 4200);
    assert_int_equal(c.u.schedule.iv[0].end_ms - c.u.schedule.iv[0].start_ms, 900000);
    assert_true(c.u.schedule.iv[1].is_level);
    assert_int_equal(c.u.schedule.iv[1].level, LPC_LEVEL_OFF);
    /* +01:00 is taken into account; the fraction is kept in ms. */
    assert_int_equal(c.u.schedule.iv[1].start_ms, c.u.schedule.iv[0].end_ms);
    assert_int_equal(c.u.schedule.iv[1].end_ms - c.u.schedule.iv[1].start_ms, 900500);

    j = good_controls[3].json;
    assert_int_equal(lpc_control_decode(j, strlen(j), &c, &err), 0);
    assert_int_equal(c.u.relay.index, 1);
    assert_true(c.u.relay.closed);
}

#define LIMIT(extra)                                                                            \
    "{\"cmd\":\"c\",\"type\":\"limit\",\"direction\":\"consumption\",\"value_w\":1,\"active\":" \
    "true" extra "}"
#define SCHED(ivs) "{\"cmd\":\"c\",\"type\":\"schedule\",\"intervals\":[" ivs "]}"
#define IVV(s, e) \
    "{\"start\":\"" s "\",\"end\":\"" e "\",\"direction\":\"consumption\",\"value_w\":1}"

static const struct bad bad_controls[] = {
    {"", -EINVAL, ""},
    {"[]", -EINVAL, ""},
    {"{", -EINVAL, ""},
    {"not json", -EINVAL, ""},
    {"{\"cmd\":\"c\",\"type\":\"read\",\"cmd\":\"d\"}", -EINVAL, ""},
    {"{\"cmd\":\"c\",\"type\":\"read\",\"x\":\"a\\u0000b\"}", -EINVAL, ""},
    {"{\"cmd\":\"c\",\"type\":\"read\",\"x\":[[[[1]]]]}", -E2BIG, ""},
    {"{\"type\":\"read\"}", -EINVAL, "/cmd"},
    {"{\"cmd\":\"\",\"type\":\"read\"}", -EINVAL, "/cmd"},
    {"{\"cmd\":\"a b\",\"type\":\"read\"}", -EINVAL, "/cmd"},
    {"{\"cmd\":\"a/b\",\"type\":\"read\"}", -EINVAL, "/cmd"},
    {"{\"cmd\":7,\"type\":\"read\"}", -EINVAL, "/cmd"},
    {"{\"cmd\":null,\"type\":\"read\"}", -EINVAL, "/cmd"},
    {"{\"cmd\":\"12345678901234567890123456789012345678901234567890123456789012345\","
     "\"type\":\"read\"}",
     -EINVAL, "/cmd"},
    {"{\"cmd\":\"c\"}", -EINVAL, "/type"},
    {"{\"cmd\":\"c\",\"type\":5}", -EINVAL, "/type"},
    {"{\"cmd\":\"c\",\"type\":\"reboot\"}", -ENOTSUP, "/type"},
    {"{\"cmd\":\"c\",\"type\":\"reboot\",\"x\":1}", -ENOTSUP, "/type"},
    {"{\"cmd\":\"c\",\"type\":\"read\",\"x\":1}", -EINVAL, "/x"},
    {"{\"cmd\":\"c\",\"type\":\"read\",\"a~b/c\":1}", -EINVAL, "/a~0b~1c"},
    {"{\"cmd\":\"c\",\"type\":\"read\",\"\\u00e4\\u0001\":1}", -EINVAL, "/???"},
    {"{\"cmd\":\"c\",\"type\":\"heartbeat\",\"value_w\":1}", -EINVAL, "/value_w"},
    {"{\"cmd\":\"c\",\"type\":\"limit\",\"value_w\":1,\"active\":true}", -EINVAL, "/direction"},
    {"{\"cmd\":\"c\",\"type\":\"limit\",\"direction\":\"both\",\"value_w\":1,\"active\":true}",
     -EINVAL, "/direction"},
    {"{\"cmd\":\"c\",\"type\":\"limit\",\"direction\":\"consumption\",\"value_w\":-1,"
     "\"active\":true}",
     -EINVAL, "/value_w"},
    {"{\"cmd\":\"c\",\"type\":\"limit\",\"direction\":\"consumption\",\"value_w\":1000000001,"
     "\"active\":true}",
     -EINVAL, "/value_w"},
    {"{\"cmd\":\"c\",\"type\":\"limit\",\"direction\":\"consumption\",\"value_w\":4200.0,"
     "\"active\":true}",
     -EINVAL, "/value_w"},
    {"{\"cmd\":\"c\",\"type\":\"limit\",\"direction\":\"consumption\",\"value_w\":\"4200\","
     "\"active\":true}",
     -EINVAL, "/value_w"},
    {"{\"cmd\":\"c\",\"type\":\"limit\",\"direction\":\"consumption\",\"value_w\":"
     "99999999999999999999,\"active\":true}",
     -EINVAL, ""},
    {"{\"cmd\":\"c\",\"type\":\"limit\",\"direction\":\"consumption\",\"value_w\":1}", -EINVAL,
     "/active"},
    {"{\"cmd\":\"c\",\"type\":\"limit\",\"direction\":\"consumption\",\"value_w\":1,"
     "\"active\":\"yes\"}",
     -EINVAL, "/active"},
    {LIMIT(",\"duration_s\":604801"), -EINVAL, "/duration_s"},
    {LIMIT(",\"duration_s\":-5"), -EINVAL, "/duration_s"},
    {LIMIT(",\"duration_s\":null"), -EINVAL, "/duration_s"},
    {LIMIT(",\"until\":\"" T0 "\""), -EINVAL, "/until"},
    {"{\"cmd\":\"c\",\"type\":\"relay\",\"index\":2,\"closed\":true}", -EINVAL, "/index"},
    {"{\"cmd\":\"c\",\"type\":\"relay\",\"index\":0}", -EINVAL, "/closed"},
    {"{\"cmd\":\"c\",\"type\":\"relay\",\"index\":0,\"open\":true}", -EINVAL, "/open"},
    {"{\"cmd\":\"c\",\"type\":\"switch\",\"level\":\"half\"}", -EINVAL, "/level"},
    {"{\"cmd\":\"c\",\"type\":\"switch\"}", -EINVAL, "/level"},
    {"{\"cmd\":\"c\",\"type\":\"failsafe\",\"value_w\":4200,\"duration_s\":86401}", -EINVAL,
     "/duration_s"},
    {"{\"cmd\":\"c\",\"type\":\"failsafe\",\"duration_s\":7200}", -EINVAL, "/value_w"},
    {"{\"cmd\":\"c\",\"type\":\"schedule\"}", -EINVAL, "/intervals"},
    {"{\"cmd\":\"c\",\"type\":\"schedule\",\"intervals\":{}}", -EINVAL, "/intervals"},
    {SCHED("1"), -EINVAL, "/intervals/0"},
    {SCHED("{\"start\":\"" T0 "\",\"end\":\"2026-11-28T19:00:00Z\",\"level\":\"on\","
           "\"value_w\":1,\"direction\":\"consumption\"}"),
     -EINVAL, "/intervals/0/level"},
    {SCHED("{\"start\":\"" T0 "\",\"end\":\"2026-11-28T19:00:00Z\"}"), -EINVAL,
     "/intervals/0/value_w"},
    {SCHED("{\"start\":\"" T0 "\",\"end\":\"2026-11-28T19:00:00Z\",\"value_w\":1}"), -EINVAL,
     "/intervals/0/direction"},
    {SCHED("{\"start\":\"" T0 "\",\"end\":\"2026-11-28T19:00:00Z\",\"level\":\"dim\","
           "\"direction\":\"production\"}"),
     -EINVAL, "/intervals/0/direction"},
    {SCHED("{\"end\":\"2026-11-28T19:00:00Z\",\"level\":\"dim\"}"), -EINVAL, "/intervals/0/start"},
    {SCHED(IVV(T0, T0)), -EINVAL, "/intervals/0/end"},
    {SCHED(IVV(T0, "2026-11-28T17:00:00Z")), -EINVAL, "/intervals/0/end"},
    {SCHED(IVV(T0, "2026-11-28T19:00:00Z") "," IVV("2026-11-28T18:59:59Z", "2026-11-28T20:00:00Z")),
     -EINVAL, "/intervals/1/start"},
    {SCHED(IVV("2026-11-28T19:00:00Z", "2026-11-28T20:00:00Z") "," IVV(T0, "2026-11-28T18:30:00Z")),
     -EINVAL, "/intervals/1/start"},
    {SCHED(IVV("yesterday", T0)), -EINVAL, "/intervals/0/start"},
    {SCHED(IVV("2026-02-30T18:00:00Z", "2026-03-01T19:00:00Z")), -EINVAL, "/intervals/0/start"},
    {SCHED(IVV("1970-01-01T00:30:00+01:00", "1970-01-01T02:00:00Z")), -EINVAL,
     "/intervals/0/start"},
    {SCHED(IVV(T0, "2026-11-28T19:00:00")), -EINVAL, "/intervals/0/end"},
    {SCHED("{\"start\":\"" T0 "\",\"end\":\"2026-11-28T19:00:00Z\",\"level\":\"on\","
           "\"note\":\"x\"}"),
     -EINVAL, "/intervals/0/note"},
    {SCHED(IVV(T0, "2026-11-29T19:00:00Z") "," IVV("2026-12-05T00:00:00Z",
                                                   "2026-12-05T18:00:00.001Z")),
     -EINVAL, "/intervals/1/end"},
};

static void test_control_invalid(void **state)
{
    (void)state;
    expect_bad(&control_codec, bad_controls, sizeof bad_controls / sizeof bad_controls[0]);
}

/* A failed decode still names the command when its id was valid, so the
 * device can nack it by id; not when it was not. */
static void test_control_invalid_keeps_cmd(void **state)
{
    struct lpc_control c;
    struct lpc_error err;
    const char *j = LIMIT(",\"duration_s\":-5");
    (void)state;
    assert_int_equal(lpc_control_decode(j, strlen(j), &c, &err), -EINVAL);
    assert_string_equal(c.cmd, "c");
    j = "{\"cmd\":\"c\",\"type\":\"reboot\"}";
    assert_int_equal(lpc_control_decode(j, strlen(j), &c, &err), -ENOTSUP);
    assert_string_equal(c.cmd, "c");
    j = "{\"cmd\":\"a b\",\"type\":\"read\"}";
    assert_int_equal(lpc_control_decode(j, strlen(j), &c, &err), -EINVAL);
    assert_string_equal(c.cmd, "");
}

/* Build a schedule document of 'n' quarter-hour intervals. */
static char *schedule_doc(size_t n)
{
    size_t cap = 256 + n * 160, o = 0;
    char *buf = malloc(cap);
    o += (size_t)snprintf(buf + o, cap - o,
                          "{\"cmd\":\"big\",\"type\":\"schedule\",\"intervals\":[");
    for (size_t i = 0; i < n; i++) {
        unsigned a = (unsigned)i * 15, b = a + 15;
        o += (size_t)snprintf(buf + o, cap - o,
                              "%s{\"start\":\"2026-11-%02uT%02u:%02u:00Z\",\"end\":\"2026-11-"
                              "%02uT%02u:%02u:00Z\",\"level\":\"dim\"}",
                              i ? "," : "", 28 + a / 1440, a / 60 % 24, a % 60, 28 + b / 1440,
                              b / 60 % 24, b % 60);
    }
    snprintf(buf + o, cap - o, "]}");
    return buf;
}

static void test_control_limits(void **state)
{
    struct lpc_control c;
    struct lpc_error err;
    char *doc;
    (void)state;

    doc = schedule_doc(96);
    assert_int_equal(lpc_control_decode(doc, strlen(doc), &c, &err), 0);
    assert_int_equal(c.u.schedule.n, 96);
    free(doc);

    doc = schedule_doc(97);
    assert_true(strlen(doc) <= LPC_MAX_CONTROL);
    assert_int_equal(lpc_control_decode(doc, strlen(doc), &c, &err), -E2BIG);
    assert_string_equal(err.field, "/intervals");
    free(doc);

    /* Over the payload limit before any parsing. */
    doc = malloc(LPC_MAX_CONTROL + 2);
    memset(doc, ' ', LPC_MAX_CONTROL + 1);
    memcpy(doc, "{\"cmd\":\"c\",\"type\":\"read\"}", 25);
    doc[LPC_MAX_CONTROL + 1] = '\0';
    assert_int_equal(lpc_control_decode(doc, LPC_MAX_CONTROL + 1, &c, &err), -E2BIG);
    assert_string_equal(err.field, "");
    assert_int_equal(lpc_control_decode(doc, LPC_MAX_CONTROL, &c, &err), 0);
    free(doc);

    /* Strings over 256 bytes. */
    doc = malloc(400);
    snprintf(doc, 400, "{\"cmd\":\"c\",\"type\":\"read\",\"x\":\"%0300d\"}", 0);
    assert_int_equal(lpc_control_decode(doc, strlen(doc), &c, &err), -E2BIG);
    free(doc);
}

/* The largest control there can be (96 intervals, 64-byte id, widest
 * values) stays under LPC_MAX_CONTROL and comes back as it was. */
static void test_control_worst_case(void **state)
{
    static struct lpc_control c, back;
    static char buf[LPC_MAX_CONTROL + 1];
    struct lpc_error err;
    int n;
    (void)state;

    memset(&c, 0, sizeof c);
    memset(c.cmd, 'x', LPC_CMD_MAX);
    c.type = LPC_CTL_SCHEDULE;
    c.u.schedule.n = LPC_MAX_INTERVALS;
    for (int i = 0; i < LPC_MAX_INTERVALS; i++) {
        struct lpc_interval *iv = &c.u.schedule.iv[i];
        iv->start_ms = 253402000000123LL + (int64_t)i * 3000000;
        iv->end_ms = iv->start_ms + 2999999;
        iv->direction = LPC_CONSUMPTION;
        iv->value_w = LPC_MAX_POWER_W;
    }
    n = lpc_control_encode(&c, buf, sizeof buf);
    assert_true(n > 10000);
    assert_true(n <= LPC_MAX_CONTROL);
    print_message("worst-case control: %d bytes\n", n);
    assert_int_equal(lpc_control_decode(buf, (size_t)n, &back, &err), 0);
    assert_int_equal(back.u.schedule.n, LPC_MAX_INTERVALS);
    assert_int_equal(back.u.schedule.iv[95].end_ms, c.u.schedule.iv[95].end_ms);
    assert_int_equal(back.u.schedule.iv[95].value_w, LPC_MAX_POWER_W);
    assert_string_equal(back.cmd, c.cmd);
}

/* Encoders refuse what decoders would refuse, and small buffers. */
static void test_control_encode_refusals(void **state)
{
    struct lpc_control c;
    char buf[512];
    int n;
    (void)state;

    memset(&c, 0, sizeof c);
    str_copy(c.cmd, sizeof c.cmd, "c1");
    c.type = LPC_CTL_LIMIT;
    c.u.limit.value_w = 4200;
    c.u.limit.active = true;
    n = lpc_control_encode(&c, buf, sizeof buf);
    assert_true(n > 0);
    assert_string_equal(buf, "{\"cmd\":\"c1\",\"type\":\"limit\",\"direction\":\"consumption\","
                             "\"value_w\":4200,\"active\":true,\"duration_s\":0}");
    assert_int_equal(lpc_control_encode(&c, buf, (size_t)n), -ENOSPC);
    assert_int_equal(lpc_control_encode(&c, buf, (size_t)n + 1), n);
    assert_int_equal(lpc_control_encode(&c, buf, 0), -ENOSPC);

    c.u.limit.value_w = -1;
    assert_int_equal(lpc_control_encode(&c, buf, sizeof buf), -EINVAL);
    c.u.limit.value_w = 1;
    c.u.limit.direction = (enum lpc_direction)7;
    assert_int_equal(lpc_control_encode(&c, buf, sizeof buf), -EINVAL);
    c.u.limit.direction = LPC_PRODUCTION;
    c.u.limit.duration_s = LPC_MAX_LIMIT_S + 1;
    assert_int_equal(lpc_control_encode(&c, buf, sizeof buf), -EINVAL);
    c.u.limit.duration_s = 0;
    str_copy(c.cmd, sizeof c.cmd, "bad id");
    assert_int_equal(lpc_control_encode(&c, buf, sizeof buf), -EINVAL);
    memset(c.cmd, 'x', sizeof c.cmd); /* not terminated */
    assert_int_equal(lpc_control_encode(&c, buf, sizeof buf), -EINVAL);
    str_copy(c.cmd, sizeof c.cmd, "c1");
    c.type = (enum lpc_ctl_type)99;
    assert_int_equal(lpc_control_encode(&c, buf, sizeof buf), -EINVAL);

    c.type = LPC_CTL_SCHEDULE;
    c.u.schedule.n = LPC_MAX_INTERVALS + 1;
    assert_int_equal(lpc_control_encode(&c, buf, sizeof buf), -EINVAL);
    c.u.schedule.n = 2;
    c.u.schedule.iv[0] = (struct lpc_interval){1000, 2000, true, LPC_CONSUMPTION, 0, LPC_LEVEL_OFF};
    c.u.schedule.iv[1] = (struct lpc_interval){1500, 3000, true, LPC_CONSUMPTION, 0, LPC_LEVEL_ON};
    assert_int_equal(lpc_control_encode(&c, buf, sizeof buf), -EINVAL); /* overlap */
    c.u.schedule.iv[1].start_ms = 2000;
    assert_true(lpc_control_encode(&c, buf, sizeof buf) > 0);
    c.u.schedule.iv[1].end_ms = LPC_TIME_MAX + 1;
    assert_int_equal(lpc_control_encode(&c, buf, sizeof buf), -EINVAL);
}

/* --- acks ----------------------------------------------------------------- */

static const char *const good_acks[] = {
    "{\"cmd\":\"c1\",\"result\":\"ok\"}",
    "{\"cmd\":\"c1\",\"result\":\"nack\",\"error\":2,\"reason\":\"/value_w: too big\"}",
    "{\"cmd\":\"c1\",\"result\":\"nack\",\"error\":3,\"reason\":\"relay stuck\"}",
    "{\"cmd\":\"c1\",\"result\":\"nack\",\"error\":4,\"reason\":\"\\u00dcberlast \\u26a1\"}",
    "{\"cmd\":null,\"result\":\"nack\",\"error\":2,\"reason\":\"/cmd: is required\"}",
};

#define TEN "1234567890"

static const struct bad bad_acks[] = {
    {"{\"result\":\"ok\"}", -EINVAL, "/cmd"},
    {"{\"cmd\":\"c\"}", -EINVAL, "/result"},
    {"{\"cmd\":\"c\",\"result\":\"fine\"}", -EINVAL, "/result"},
    {"{\"cmd\":\"c\",\"result\":true}", -EINVAL, "/result"},
    {"{\"cmd\":\"c\",\"result\":\"ok\",\"error\":2}", -EINVAL, "/error"},
    {"{\"cmd\":\"c\",\"result\":\"ok\",\"reason\":\"x\"}", -EINVAL, "/reason"},
    {"{\"cmd\":\"c\",\"result\":\"nack\",\"reason\":\"x\"}", -EINVAL, "/error"},
    {"{\"cmd\":\"c\",\"result\":\"nack\",\"error\":3}", -EINVAL, "/reason"},
    {"{\"cmd\":\"c\",\"result\":\"nack\",\"error\":5,\"reason\":\"x\"}", -EINVAL, "/error"},
    {"{\"cmd\":\"c\",\"result\":\"nack\",\"error\":1,\"reason\":\"x\"}", -EINVAL, "/error"},
    {"{\"cmd\":\"c\",\"result\":\"nack\",\"error\":\"2\",\"reason\":\"x\"}", -EINVAL, "/error"},
    {"{\"cmd\":\"c\",\"result\":\"nack\",\"error\":2,\"reason\":\"\"}", -EINVAL, "/reason"},
    {"{\"cmd\":\"c\",\"result\":\"nack\",\"error\":2,\"reason\":\"a\\nb\"}", -EINVAL, "/reason"},
    {"{\"cmd\":\"c\",\"result\":\"nack\",\"error\":2,\"reason\":"
     "\"" TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN TEN "1\"}",
     -EINVAL, "/reason"},
    {"{\"cmd\":null,\"result\":\"ok\"}", -EINVAL, "/cmd"},
    {"{\"cmd\":null,\"result\":\"nack\",\"error\":3,\"reason\":\"x\"}", -EINVAL, "/cmd"},
    {"{\"cmd\":\"c\",\"result\":\"ok\",\"time\":\"" T0 "\"}", -EINVAL, "/time"},
    {"[\"c\",\"ok\"]", -EINVAL, ""},
};

static void test_ack_tables(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_acks / sizeof good_acks[0]; i++)
        round_trip(&ack_codec, good_acks[i]);
    expect_bad(&ack_codec, bad_acks, sizeof bad_acks / sizeof bad_acks[0]);
}

static void test_ack_builders(void **state)
{
    struct lpc_ack a, back;
    struct lpc_error err, e2;
    char buf[LPC_REPORT_BUF], longtext[400], id[LPC_CMD_MAX + 1];
    int n;
    (void)state;

    lpc_ack_ok(&a, "c9");
    n = lpc_ack_encode(&a, buf, sizeof buf);
    assert_string_equal(buf, "{\"cmd\":\"c9\",\"result\":\"ok\"}");
    assert_int_equal(lpc_ack_decode(buf, (size_t)n, &back, &e2), 0);
    assert_true(back.ok);

    snprintf(err.field, sizeof err.field, "/value_w");
    snprintf(err.reason, sizeof err.reason, "must be an integer");
    lpc_ack_nack(&a, "c9", LPC_ERR_PROTOCOL, &err, NULL);
    n = lpc_ack_encode(&a, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(lpc_ack_decode(buf, (size_t)n, &back, &e2), 0);
    assert_false(back.ok);
    assert_int_equal(back.error, 2);
    assert_string_equal(back.reason, "/value_w: must be an integer");

    /* A long reason with a multi-byte character across the cut, and a
     * control character: the nack is still well formed. */
    memset(longtext, 'a', sizeof longtext);
    memcpy(longtext + LPC_REASON_MAX - 1, "\xc3\xa4", 2);
    longtext[10] = '\n';
    longtext[sizeof longtext - 1] = '\0';
    lpc_ack_nack(&a, "c9", LPC_ERR_EXECUTION, NULL, longtext);
    assert_int_equal(strlen(a.reason), LPC_REASON_MAX);
    assert_int_equal(a.reason[10], '?');
    n = lpc_ack_encode(&a, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(lpc_ack_decode(buf, (size_t)n, &back, &e2), 0);

    /* The widest ack: a 64-byte id and 200 bytes that all need escaping. */
    memset(longtext, '"', sizeof longtext);
    longtext[sizeof longtext - 1] = '\0';
    memset(id, 'x', LPC_CMD_MAX);
    id[LPC_CMD_MAX] = '\0';
    lpc_ack_nack(&a, id, LPC_ERR_EXECUTION, NULL, longtext);
    n = lpc_ack_encode(&a, buf, sizeof buf);
    print_message("widest ack: %d bytes\n", n);
    assert_true(n > 400 && n < LPC_REPORT_BUF);
    assert_int_equal(lpc_ack_decode(buf, (size_t)n, &back, &e2), 0);
    assert_int_equal(strlen(back.reason), LPC_REASON_MAX);
    assert_string_equal(back.cmd, id);

    lpc_ack_nack(&a, "", LPC_ERR_PROTOCOL, NULL, "");
    assert_string_equal(a.reason, "no reason given");
    n = lpc_ack_encode(&a, buf, sizeof buf);
    assert_true(strstr(buf, "\"cmd\":null") != NULL);

    /* Refusals: an ok without an id, a nack with an unknown number. */
    lpc_ack_ok(&a, "");
    assert_int_equal(lpc_ack_encode(&a, buf, sizeof buf), -EINVAL);
    lpc_ack_nack(&a, "c", (enum lpc_nack)7, NULL, "x");
    assert_int_equal(lpc_ack_encode(&a, buf, sizeof buf), -EINVAL);
    lpc_ack_nack(&a, "", LPC_ERR_UNSUPPORTED, NULL, "x");
    assert_int_equal(lpc_ack_encode(&a, buf, sizeof buf), -EINVAL);
    lpc_ack_nack(&a, "c", LPC_ERR_UNSUPPORTED, NULL, "x");
    a.reason[0] = '\xff';
    assert_int_equal(lpc_ack_encode(&a, buf, sizeof buf), -EINVAL);
}

/* --- state and telemetry -------------------------------------------------- */

#define LIMS(c, p) "\"limits\":{\"consumption\":" c ",\"production\":" p "}"
#define LIM_OFF    "{\"value_w\":0,\"active\":false,\"until\":null}"
#define LIM_ON     "{\"value_w\":4200,\"active\":true,\"until\":\"2026-11-28T20:00:00Z\"}"
#define FS_NORMAL \
    "\"mode\":\"normal\",\"failsafe\":{\"value_w\":4200,\"duration_s\":7200,\"until\":null}"
#define EFF(c, p) "\"effective\":{\"consumption\":" c ",\"production\":" p "}"
#define STATE(limits, relays, level, fs, eff, tail)                                             \
    "{\"time\":\"" T0 "\"," limits ",\"relays\":" relays ",\"level\":\"" level "\"," fs "," eff \
    ",\"measured_w\":3100,\"last_cmd\":\"c1\"" tail "}"
#define OO "[\"open\",\"open\"]"

static const char *const good_states[] = {
    STATE(LIMS(LIM_ON, LIM_OFF), OO, "on", FS_NORMAL, EFF("4200", "null"), ""),
    STATE(LIMS(LIM_OFF, LIM_OFF), "[\"closed\",\"open\"]", "dim", FS_NORMAL, EFF("4200", "null"),
          ""),
    STATE(LIMS(LIM_OFF, LIM_OFF), "[\"closed\",\"closed\"]", "off", FS_NORMAL, EFF("0", "0"), ""),
    STATE(LIMS(LIM_ON, LIM_OFF), OO, "on",
          "\"mode\":\"failsafe\",\"failsafe\":{\"value_w\":4200,\"duration_s\":7200,"
          "\"until\":\"2026-11-28T20:00:00.250Z\"}",
          EFF("4200", "4200"), ""),
    "{\"time\":\"" T0
    "\"," LIMS(LIM_OFF, LIM_OFF) ",\"relays\":" OO ",\"level\":\"on\"," FS_NORMAL
                                 "," EFF("null", "null") ",\"measured_w\":-5000,\"last_cmd\":null}",
};

static const struct bad bad_states[] = {
    {STATE(LIMS(LIM_OFF, LIM_OFF), OO, "dim", FS_NORMAL, EFF("null", "null"), ""), -EINVAL,
     "/level"},
    {STATE(LIMS(LIM_OFF, LIM_OFF), "[\"open\",\"closed\"]", "dim", FS_NORMAL, EFF("null", "null"),
           ""),
     -EINVAL, "/level"},
    {STATE(LIMS(LIM_OFF, LIM_OFF), OO, "on",
           "\"mode\":\"failsafe\",\"failsafe\":{\"value_w\":4200,\"duration_s\":7200,"
           "\"until\":null}",
           EFF("null", "null"), ""),
     -EINVAL, "/failsafe/until"},
    {STATE(LIMS(LIM_OFF, LIM_OFF), OO, "on",
           "\"mode\":\"normal\",\"failsafe\":{\"value_w\":4200,\"duration_s\":7200,"
           "\"until\":\"" T0 "\"}",
           EFF("null", "null"), ""),
     -EINVAL, "/failsafe/until"},
    {STATE(LIMS(LIM_OFF, LIM_OFF), OO, "on",
           "\"mode\":\"normal\",\"failsafe\":{\"value_w\":4200,\"duration_s\":86401,"
           "\"until\":null}",
           EFF("null", "null"), ""),
     -EINVAL, "/failsafe/duration_s"},
    {STATE(LIMS(LIM_OFF, LIM_OFF), OO, "on", "\"mode\":\"panic\",\"failsafe\":{}",
           EFF("null", "null"), ""),
     -EINVAL, "/mode"},
    {STATE(LIMS(LIM_OFF, LIM_OFF), "[\"open\",\"open\",\"open\"]", "on", FS_NORMAL,
           EFF("null", "null"), ""),
     -EINVAL, "/relays"},
    {STATE(LIMS(LIM_OFF, LIM_OFF), "[\"open\",\"shut\"]", "on", FS_NORMAL, EFF("null", "null"), ""),
     -EINVAL, "/relays/1"},
    {STATE(LIMS(LIM_OFF, LIM_OFF), "[false,false]", "on", FS_NORMAL, EFF("null", "null"), ""),
     -EINVAL, "/relays/0"},
    {STATE("\"limits\":{\"consumption\":" LIM_OFF "}", OO, "on", FS_NORMAL, EFF("null", "null"),
           ""),
     -EINVAL, "/limits/production"},
    {STATE(LIMS("{\"value_w\":0,\"active\":false,\"until\":\"" T0 "\"}", LIM_OFF), OO, "on",
           FS_NORMAL, EFF("null", "null"), ""),
     -EINVAL, "/limits/consumption/until"},
    {STATE(LIMS(LIM_OFF, "{\"value_w\":0,\"active\":false,\"until\":null,\"x\":1}"), OO, "on",
           FS_NORMAL, EFF("null", "null"), ""),
     -EINVAL, "/limits/production/x"},
    {STATE(LIMS(LIM_OFF, "{\"value_w\":0,\"active\":false}"), OO, "on", FS_NORMAL,
           EFF("null", "null"), ""),
     -EINVAL, "/limits/production/until"},
    {STATE(LIMS(LIM_OFF, LIM_OFF), OO, "on", FS_NORMAL, EFF("-1", "null"), ""), -EINVAL,
     "/effective/consumption"},
    {STATE(LIMS(LIM_OFF, LIM_OFF), OO, "on", FS_NORMAL, EFF("null", "\"none\""), ""), -EINVAL,
     "/effective/production"},
    {STATE(LIMS(LIM_OFF, LIM_OFF), OO, "on", FS_NORMAL, EFF("null", "null"), ",\"extra\":1"),
     -EINVAL, "/extra"},
    {STATE(LIMS(LIM_OFF, LIM_OFF), OO, "on", FS_NORMAL, "\"effective\":[1,2]", ""), -EINVAL,
     "/effective"},
    {"{\"time\":\"" T0
     "\"," LIMS(LIM_OFF, LIM_OFF) ",\"relays\":" OO ",\"level\":\"on\"," FS_NORMAL
                                  "," EFF("null", "null") ",\"measured_w\":2000000000,"
                                                          "\"last_cmd\":null}",
     -EINVAL, "/measured_w"},
    {"{\"time\":\"" T0 "\"," LIMS(LIM_OFF, LIM_OFF) ",\"relays\":" OO ",\"level\":\"on\"," FS_NORMAL
                                                    "," EFF("null", "null") ",\"measured_w\":0}",
     -EINVAL, "/last_cmd"},
    {"{" LIMS(LIM_OFF, LIM_OFF) ",\"relays\":" OO ",\"level\":\"on\"," FS_NORMAL
                                "," EFF("null", "null") ",\"measured_w\":0,\"last_cmd\":null}",
     -EINVAL, "/time"},
};

static void test_state_tables(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_states / sizeof good_states[0]; i++)
        round_trip(&state_codec, good_states[i]);
    expect_bad(&state_codec, bad_states, sizeof bad_states / sizeof bad_states[0]);
}

static void test_state_struct_round_trip(void **state)
{
    struct lpc_state s, back;
    struct lpc_ack ack;
    struct lpc_telemetry tel;
    struct lpc_error err;
    char buf[LPC_MAX_REPORT];
    int n;
    (void)state;

    memset(&s, 0, sizeof s);
    s.time_ms = 1796148000123LL;
    s.limit[LPC_CONSUMPTION] = (struct lpc_limit_state){4200, true, 1796151600000LL};
    s.limit[LPC_PRODUCTION] = (struct lpc_limit_state){0, false, LPC_NONE};
    s.relay_closed[0] = true;
    s.level = LPC_LEVEL_DIM;
    s.mode = LPC_MODE_NORMAL;
    s.failsafe = (struct lpc_failsafe_state){4200, 7200, LPC_NONE};
    s.effective_w[LPC_CONSUMPTION] = 4200;
    s.effective_w[LPC_PRODUCTION] = LPC_NONE;
    s.measured_w = -17;
    str_copy(s.last_cmd, sizeof s.last_cmd, "exe-42");
    n = lpc_state_encode(&s, buf, sizeof buf);
    assert_true(n > 0);
    assert_true(n < 1024);
    assert_int_equal(lpc_state_decode(buf, (size_t)n, &back, &err), 0);
    assert_int_equal(back.time_ms, s.time_ms);
    assert_int_equal(back.limit[0].until_ms, s.limit[0].until_ms);
    assert_int_equal(back.limit[1].until_ms, LPC_NONE);
    assert_true(back.relay_closed[0]);
    assert_false(back.relay_closed[1]);
    assert_int_equal(back.level, LPC_LEVEL_DIM);
    assert_int_equal(back.effective_w[1], LPC_NONE);
    assert_int_equal(back.measured_w, -17);
    assert_string_equal(back.last_cmd, "exe-42");

    s.level = LPC_LEVEL_ON; /* contradicts the relays */
    assert_int_equal(lpc_state_encode(&s, buf, sizeof buf), -EINVAL);
    s.level = LPC_LEVEL_DIM;
    s.mode = LPC_MODE_FAILSAFE; /* without an end */
    assert_int_equal(lpc_state_encode(&s, buf, sizeof buf), -EINVAL);
    s.mode = LPC_MODE_NORMAL;
    s.time_ms = -1;
    assert_int_equal(lpc_state_encode(&s, buf, sizeof buf), -EINVAL);
    s.time_ms = 0;
    assert_int_equal(lpc_state_encode(&s, buf, 10), -ENOSPC);

    /* Over the report limit before any parsing. */
    char *big = malloc(LPC_MAX_REPORT + 1);
    memset(big, ' ', LPC_MAX_REPORT + 1);
    assert_int_equal(lpc_state_decode(big, LPC_MAX_REPORT + 1, &back, &err), -E2BIG);
    assert_int_equal(lpc_ack_decode(big, LPC_MAX_REPORT + 1, &ack, &err), -E2BIG);
    assert_int_equal(lpc_telemetry_decode(big, LPC_MAX_REPORT + 1, &tel, &err), -E2BIG);
    free(big);
}

static const char *const good_telemetry[] = {
    "{\"time\":\"" T0 "\",\"measured_w\":3100}",
    "{\"measured_w\":-1000000000,\"time\":\"2026-11-28T19:00:00.999+01:00\"}",
    /* Sensors: any of their readings, without power. */
    "{\"time\":\"" T0 "\",\"door_open\":true}",
    "{\"time\":\"" T0 "\",\"smoke\":false,\"temperature_dc\":-500,\"humidity_pct\":100}",
    "{\"time\":\"" T0 "\",\"fill_level_pct\":0,\"temperature_dc\":1000}",
};

static const struct bad bad_telemetry[] = {
    {"{\"time\":\"" T0 "\"}", -EINVAL, ""}, /* no measurement at all */
    {"{\"time\":\"" T0 "\",\"measured_w\":1,\"temperature\":21}", -EINVAL, "/temperature"},
    {"{\"time\":\"" T0 "\",\"door_open\":1}", -EINVAL, "/door_open"},
    {"{\"time\":\"" T0 "\",\"smoke\":\"yes\"}", -EINVAL, "/smoke"},
    {"{\"time\":\"" T0 "\",\"fill_level_pct\":101}", -EINVAL, "/fill_level_pct"},
    {"{\"time\":\"" T0 "\",\"temperature_dc\":-501}", -EINVAL, "/temperature_dc"},
    {"{\"time\":\"" T0 "\",\"humidity_pct\":-1}", -EINVAL, "/humidity_pct"},
    {"{\"time\":\"" T0 "\",\"door_open\":null}", -EINVAL, "/door_open"},
    {"{\"time\":1796148000,\"measured_w\":1}", -EINVAL, "/time"},
    {"{\"time\":\"1970-01-01T00:30:00+01:00\",\"measured_w\":1}", -EINVAL, "/time"},
    {"{\"time\":\"9999-12-31T23:59:59-01:00\",\"measured_w\":1}", -EINVAL, "/time"},
    {"{\"time\":\"" T0 "\",\"measured_w\":1000000001}", -EINVAL, "/measured_w"},
    {"{\"time\":\"" T0 "\",\"measured_w\":true}", -EINVAL, "/measured_w"},
    {"\"" T0 "\"", -EINVAL, ""},
};

static void test_telemetry_tables(void **state)
{
    struct lpc_telemetry t = {-1, 0, LPC_NONE, LPC_NONE, LPC_NONE, LPC_NONE, LPC_NONE};
    char buf[128];
    (void)state;
    for (size_t i = 0; i < sizeof good_telemetry / sizeof good_telemetry[0]; i++)
        round_trip(&telemetry_codec, good_telemetry[i]);
    expect_bad(&telemetry_codec, bad_telemetry, sizeof bad_telemetry / sizeof bad_telemetry[0]);
    assert_int_equal(lpc_telemetry_encode(&t, buf, sizeof buf), -EINVAL);
    t.time_ms = 1796148000000LL;
    t.measured_w = 5;
    assert_int_equal(lpc_telemetry_encode(&t, buf, sizeof buf), 50);
    assert_string_equal(buf, "{\"time\":\"2026-12-01T18:00:00.000Z\",\"measured_w\":5}");
    /* A sensor: absent readings are left out; out-of-range ones refused. */
    t.measured_w = LPC_NONE;
    t.door_open = 1;
    t.temperature_dc = 215;
    assert_true(lpc_telemetry_encode(&t, buf, sizeof buf) > 0);
    assert_string_equal(
        buf, "{\"time\":\"2026-12-01T18:00:00.000Z\",\"door_open\":true,\"temperature_dc\":215}");
    struct lpc_telemetry back;
    struct lpc_error err;
    assert_int_equal(lpc_telemetry_decode(buf, strlen(buf), &back, &err), 0);
    assert_int_equal(back.door_open, 1);
    assert_int_equal(back.temperature_dc, 215);
    assert_int_equal(back.measured_w, LPC_NONE);
    assert_int_equal(back.smoke, LPC_NONE);
    t.door_open = 2;
    assert_int_equal(lpc_telemetry_encode(&t, buf, sizeof buf), -EINVAL);
    t.door_open = LPC_NONE;
    t.temperature_dc = 1001;
    assert_int_equal(lpc_telemetry_encode(&t, buf, sizeof buf), -EINVAL);
    t.temperature_dc = LPC_NONE;
    assert_int_equal(lpc_telemetry_encode(&t, buf, sizeof buf), -EINVAL); /* nothing measured */
}

/* --- vocabulary and topics ------------------------------------------------ */

static void test_levels_and_names(void **state)
{
    bool r[2];
    (void)state;
    assert_int_equal(lpc_level_from_relays(false, false), LPC_LEVEL_ON);
    assert_int_equal(lpc_level_from_relays(true, false), LPC_LEVEL_DIM);
    assert_int_equal(lpc_level_from_relays(false, true), LPC_LEVEL_OFF);
    assert_int_equal(lpc_level_from_relays(true, true), LPC_LEVEL_OFF);
    for (int l = LPC_LEVEL_ON; l <= LPC_LEVEL_OFF; l++) {
        lpc_relays_from_level((enum lpc_level)l, r);
        assert_int_equal(lpc_level_from_relays(r[0], r[1]), l);
    }
    lpc_relays_from_level(LPC_LEVEL_OFF, r);
    assert_false(r[0]);
    assert_true(r[1]);
    assert_string_equal(lpc_level_name(LPC_LEVEL_DIM), "dim");
    assert_string_equal(lpc_direction_name(LPC_PRODUCTION), "production");
    assert_string_equal(lpc_mode_name(LPC_MODE_FAILSAFE), "failsafe");
    assert_string_equal(lpc_ctl_type_name(LPC_CTL_HEARTBEAT), "heartbeat");
    assert_string_equal(lpc_topic_name(LPC_TOPIC_TELEMETRY), "telemetry");
    assert_string_equal(lpc_level_name((enum lpc_level)9), "?");
    assert_true(lpc_cmd_id_valid("-._:"));
    assert_false(lpc_cmd_id_valid(""));
    assert_true(lpc_device_id_valid("SB-000123"));
    assert_false(lpc_device_id_valid("-SB"));
}

static void test_topics(void **state)
{
    static const struct {
        const char *topic;
        const char *id;
        enum lpc_topic kind;
    } good[] = {
        {"cls/SB-000123/control", "SB-000123", LPC_TOPIC_CONTROL},
        {"cls/a/ack", "a", LPC_TOPIC_ACK},
        {"cls/x.y_z:1-2/state", "x.y_z:1-2", LPC_TOPIC_STATE},
        {"cls/9/telemetry", "9", LPC_TOPIC_TELEMETRY},
    };
    static const char *const bad[] = {
        "",
        "cls",
        "cls/",
        "cls/x",
        "cls/x/",
        "cls//ack",
        "cls/x/acks",
        "cls/x/ack/",
        "cls/x/ack/more",
        "CLS/x/ack",
        "clsx/x/ack",
        "cls/-x/ack",
        "cls/a b/ack",
        "cls/a+/ack",
        "cls/#/ack",
        "/cls/x/ack",
        "cls/x/Ack",
        "cls/x/control\n",
    };
    char id[LPC_DEVICE_ID_MAX + 1], buf[LPC_TOPIC_MAX], longid[LPC_DEVICE_ID_MAX + 2];
    enum lpc_topic kind;
    (void)state;

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(lpc_topic_parse(good[i].topic, strlen(good[i].topic), id, &kind), 0);
        assert_string_equal(id, good[i].id);
        assert_int_equal(kind, good[i].kind);
        assert_int_equal(lpc_topic_build(id, kind, buf, sizeof buf), (int)strlen(good[i].topic));
        assert_string_equal(buf, good[i].topic);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (lpc_topic_parse(bad[i], strlen(bad[i]), id, &kind) != -EINVAL)
            fail_msg("topic '%s' accepted", bad[i]);
    /* The length counts, not a NUL. */
    assert_int_equal(lpc_topic_parse("cls/a/ack\0x", 11, id, &kind), -EINVAL);
    assert_int_equal(lpc_topic_parse("cls/a/ackx", 9, id, &kind), 0);

    memset(longid, 'a', sizeof longid);
    longid[LPC_DEVICE_ID_MAX] = '\0';
    assert_int_equal(lpc_topic_build(longid, LPC_TOPIC_TELEMETRY, buf, sizeof buf),
                     4 + LPC_DEVICE_ID_MAX + 10);
    assert_int_equal(lpc_topic_parse(buf, strlen(buf), id, &kind), 0);
    assert_string_equal(id, longid);
    longid[LPC_DEVICE_ID_MAX] = 'a';
    longid[LPC_DEVICE_ID_MAX + 1] = '\0';
    assert_int_equal(lpc_topic_build(longid, LPC_TOPIC_ACK, buf, sizeof buf), -EINVAL);
    assert_int_equal(lpc_topic_build("a/b", LPC_TOPIC_ACK, buf, sizeof buf), -EINVAL);
    assert_int_equal(lpc_topic_build("", LPC_TOPIC_ACK, buf, sizeof buf), -EINVAL);
    assert_int_equal(lpc_topic_build("a", (enum lpc_topic)4, buf, sizeof buf), -EINVAL);
    assert_int_equal(lpc_topic_build("a", LPC_TOPIC_ACK, buf, 9), -ENOSPC);
    assert_int_equal(lpc_topic_build("a", LPC_TOPIC_ACK, buf, 10), 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_valid),
        cmocka_unit_test(test_control_values),
        cmocka_unit_test(test_control_invalid),
        cmocka_unit_test(test_control_invalid_keeps_cmd),
        cmocka_unit_test(test_control_limits),
        cmocka_unit_test(test_control_worst_case),
        cmocka_unit_test(test_control_encode_refusals),
        cmocka_unit_test(test_ack_tables),
        cmocka_unit_test(test_ack_builders),
        cmocka_unit_test(test_state_tables),
        cmocka_unit_test(test_state_struct_round_trip),
        cmocka_unit_test(test_telemetry_tables),
        cmocka_unit_test(test_levels_and_names),
        cmocka_unit_test(test_topics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
