/*
 * test_evfilter.c - event filters (api/evfilter.h): sequence numbers and
 * kind prefixes from outside text, the visibility rule, and the public and
 * Server-Sent Events forms of an event. Tables of cases.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/evfilter.h"

static void test_parse_seq(void **state)
{
    static const struct {
        const char *in;
        int rc;
        int64_t out;
    } cases[] = {
        {"0", 0, 0},
        {"42", 0, 42},
        {"007", 0, 7},
        {"9223372036854775807", 0, INT64_MAX},
        {"9223372036854775808", -EINVAL, 0},
        {"99999999999999999999", -EINVAL, 0},
        {"", -EINVAL, 0},
        {"-1", -EINVAL, 0},
        {"+1", -EINVAL, 0},
        {" 1", -EINVAL, 0},
        {"1 ", -EINVAL, 0},
        {"1a", -EINVAL, 0},
        {"0x10", -EINVAL, 0},
        {"1.5", -EINVAL, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = -5;
        int rc = evfilter_parse_seq(cases[i].in, &v);
        if (rc != cases[i].rc)
            fail_msg("\"%s\": rc %d, want %d", cases[i].in, rc, cases[i].rc);
        if (rc == 0 && v != cases[i].out)
            fail_msg("\"%s\": %lld", cases[i].in, (long long)v);
    }
}

static void test_parse_kinds(void **state)
{
    static const struct {
        const char *in;
        int rc;
        size_t n;
    } cases[] = {
        {"request.", 0, 1},
        {"request.,command.failed", 0, 2},
        {"a,a,a", 0, 1}, /* repeats are kept once */
        {"A-Z_0.9", 0, 1},
        {"", -EINVAL, 0},
        {",", -EINVAL, 0},
        {"request.,", -EINVAL, 0},
        {",request.", -EINVAL, 0},
        {"request. ", -EINVAL, 0},
        {"req*", -EINVAL, 0},
        {"réquest", -EINVAL, 0},
        {"a\nb", -EINVAL, 0},
        {"a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p", 0, 16},
        {"a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", -E2BIG, 0},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 1},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", -EINVAL, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct evfilter f;
        char why[96] = "";
        memset(&f, 0, sizeof f);
        int rc = evfilter_parse_kinds(&f, cases[i].in, why, sizeof why);
        if (rc != cases[i].rc)
            fail_msg("\"%s\": rc %d, want %d", cases[i].in, rc, cases[i].rc);
        if (rc == 0 && f.nkinds != cases[i].n)
            fail_msg("\"%s\": %zu kinds", cases[i].in, f.nkinds);
        if (rc != 0 && why[0] == '\0')
            fail_msg("\"%s\": no reason given", cases[i].in);
    }
}

static void test_audience(void **state)
{
    static const struct {
        const char *audience, *party;
        int has;
    } cases[] = {
        {"9900000000001", "9900000000001", 1},
        {"9900000000001 9900000000002", "9900000000002", 1},
        {"9900000000001 9900000000002 9900000000003", "9900000000002", 1},
        {"", "9900000000001", 0},
        {"9900000000001", "", 0},
        {"99000000000012", "9900000000001", 0},
        {"9900000000001", "990000000000", 0},
        {"19900000000001 9900000000002", "9900000000001", 0},
        {"9900000000001 9900000000002", "9900000000001 9900000000002", 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (evfilter_audience_has(cases[i].audience, cases[i].party) != cases[i].has)
            fail_msg("\"%s\" has \"%s\": want %d", cases[i].audience, cases[i].party, cases[i].has);
    assert_false(evfilter_audience_has(NULL, "9900000000001"));
}

static void test_match(void **state)
{
    struct evfilter admin, party, kinds;
    (void)state;
    memset(&admin, 0, sizeof admin);
    memset(&party, 0, sizeof party);
    admin.admin = 1;
    snprintf(party.party, sizeof party.party, "%s", "9900000000001");
    kinds = party;
    assert_int_equal(evfilter_parse_kinds(&kinds, "request.,webhook.created", NULL, 0), 0);

    /* The admin sees all, admin-only events included. */
    assert_true(evfilter_match(&admin, "command.failed", ""));
    assert_true(evfilter_match(&admin, "request.admitted", "9900000000002"));
    /* A party sees what names it, and nothing admin-only. */
    assert_false(evfilter_match(&party, "command.failed", ""));
    assert_true(evfilter_match(&party, "request.admitted", "9900000000002 9900000000001"));
    assert_false(evfilter_match(&party, "request.admitted", "9900000000002"));
    /* Kinds narrow it further, by prefix. */
    assert_true(evfilter_match(&kinds, "request.admitted", "9900000000001"));
    assert_true(evfilter_match(&kinds, "webhook.created", "9900000000001"));
    assert_false(evfilter_match(&kinds, "webhook.deleted", "9900000000001"));
    assert_false(evfilter_match(&kinds, "requests", "9900000000001"));
    assert_false(evfilter_match(&kinds, "request.admitted", "9900000000002"));
}

static void test_event_forms(void **state)
{
    size_t len = 0;
    (void)state;
    json_t *ev = evfilter_event_json(7, 1700000000123, "command.failed", "device:D1", "admin",
                                     "{\"error\":\"x\\ny\",\"n\":1}");
    assert_non_null(ev);
    assert_int_equal(json_integer_value(json_object_get(ev, "seq")), 7);
    assert_string_equal(json_string_value(json_object_get(ev, "time")), "2023-11-14T22:13:20.123Z");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(ev, "payload"), "n")), 1);
    json_decref(ev);
    /* A payload that is not an object (a hand-edited store) becomes null. */
    const char *bad[] = {"[1]", "not json", "", "{\"a\":1,\"a\":2}"};
    for (size_t i = 0; i < 4; i++) {
        ev = evfilter_event_json(1, 0, "k", "s", "a", bad[i]);
        assert_non_null(ev);
        assert_true(json_is_null(json_object_get(ev, "payload")));
        json_decref(ev);
    }

    char *m = evfilter_sse_message(7, 1700000000123, "command.failed", "device:D1\nid: 99", "admin",
                                   "{\"error\":\"line\\nbreak\\r\"}", &len);
    assert_non_null(m);
    assert_int_equal(len, strlen(m));
    /* Three lines and the blank one; line breaks in values stay escaped. */
    const char *want_head = "id: 7\nevent: command.failed\ndata: {";
    assert_memory_equal(m, want_head, strlen(want_head));
    assert_string_equal(m + len - 2, "\n\n");
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += m[i] == '\n';
    assert_int_equal(lines, 4);
    assert_null(strchr(m, '\r'));
    json_t *data = json_loads(strstr(m, "data: ") + 6, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(data);
    assert_string_equal(json_string_value(json_object_get(data, "subject")), "device:D1\nid: 99");
    json_decref(data);
    free(m);

    /* A kind that could not be a field value is left out of the event line. */
    m = evfilter_sse_message(8, 0, "bad kind\nevent: x", "s", "a", "{}", &len);
    assert_non_null(m);
    assert_null(strstr(m, "\nevent:"));
    assert_memory_equal(m, "id: 8\ndata: ", 12);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_seq),   cmocka_unit_test(test_parse_kinds),
        cmocka_unit_test(test_audience),    cmocka_unit_test(test_match),
        cmocka_unit_test(test_event_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
