/*
 * test_gwa_answer.c - reading GWA answers: the documented shapes, every
 * item status, and what a GWA may get wrong (wrong types, missing items,
 * unknown statuses, ids and reasons that do not fit, broken JSON).
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

#include "channel/gwa_answer.h"

static int parse(const char *s, enum gwa_answer_kind kind, size_t n, struct gwa_item *items,
                 char *why)
{
    return gwa_answer_parse(s, strlen(s), kind, n, items, why, 200);
}

static void test_submit_documented(void **state)
{
    (void)state;
    struct gwa_item it[3];
    char why[200];
    assert_int_equal(
        parse("{\"results\": [{\"status\": \"accepted\", \"id\": \"cr-GWA-01-17\"},"
              " {\"status\": \"rejected\", \"code\": 403, \"reason\": \"not entitled\"},"
              " {\"status\": \"rejected\", \"code\": 404, \"reason\": \"gateway unknown\"}]}",
              GWA_ANSWER_SUBMIT, 3, it, why),
        0);
    assert_int_equal(it[0].status, GWA_ITEM_ACCEPTED);
    assert_string_equal(it[0].id, "cr-GWA-01-17");
    assert_int_equal(it[1].status, GWA_ITEM_REJECTED);
    assert_int_equal(it[1].code, 403);
    assert_string_equal(it[1].reason, "not entitled");
    assert_int_equal(it[2].code, 404);
    assert_string_equal(gwa_item_status_name(it[2].status), "rejected");
}

static void test_status_every_state(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum gwa_item_status st;
    } cases[] = {{"pending", GWA_ITEM_PENDING},     {"woken", GWA_ITEM_WOKEN},
                 {"delivered", GWA_ITEM_DELIVERED}, {"failed", GWA_ITEM_FAILED},
                 {"unknown", GWA_ITEM_UNKNOWN},     {"accepted", GWA_ITEM_MISSING},
                 {"rejected", GWA_ITEM_MISSING},    {"Delivered", GWA_ITEM_MISSING}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char doc[200], why[200];
        struct gwa_item it[1];
        snprintf(doc, sizeof doc,
                 "{\"results\":[{\"id\":\"cr-1\",\"status\":\"%s\",\"reason\":\"r\"}]}",
                 cases[i].name);
        assert_int_equal(parse(doc, GWA_ANSWER_STATUS, 1, it, why), 0);
        assert_int_equal(it[0].status, cases[i].st);
    }
    /* And the submit statuses are not status-poll statuses. */
    struct gwa_item it[1];
    char why[200];
    assert_int_equal(parse("{\"results\":[{\"status\":\"delivered\",\"id\":\"x\"}]}",
                           GWA_ANSWER_SUBMIT, 1, it, why),
                     0);
    assert_int_equal(it[0].status, GWA_ITEM_MISSING);
}

static void test_bad_items_stay_local(void **state)
{
    (void)state;
    struct gwa_item it[8];
    char why[200];
    assert_int_equal(parse("{\"results\": [1, null, {\"status\": 5},"
                           " {\"status\": \"accepted\"},"
                           " {\"status\": \"accepted\", \"id\": \"a b\"},"
                           " {\"status\": \"rejected\", \"code\": \"403\", \"reason\": 7},"
                           " {\"status\": \"accepted\", \"id\": \"ok-1\"}]}",
                           GWA_ANSWER_SUBMIT, 8, it, why),
                     0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(it[i].status, GWA_ITEM_MISSING);
    assert_int_equal(it[5].status, GWA_ITEM_REJECTED);
    assert_int_equal(it[5].code, 0);       /* a string is no code */
    assert_string_equal(it[5].reason, ""); /* a number is no reason */
    assert_int_equal(it[6].status, GWA_ITEM_ACCEPTED);
    assert_int_equal(it[7].status, GWA_ITEM_MISSING); /* fewer results than requests */
}

static void test_codes_out_of_range(void **state)
{
    (void)state;
    struct gwa_item it[3];
    char why[200];
    assert_int_equal(parse("{\"results\": [{\"status\":\"rejected\",\"code\":99},"
                           "{\"status\":\"rejected\",\"code\":600},"
                           "{\"status\":\"rejected\",\"code\":599}]}",
                           GWA_ANSWER_SUBMIT, 3, it, why),
                     0);
    assert_int_equal(it[0].code, 0);
    assert_int_equal(it[1].code, 0);
    assert_int_equal(it[2].code, 599);
}

static void test_reason_cleaned_and_cut(void **state)
{
    (void)state;
    struct gwa_item it[2];
    char why[200], doc[1200];
    assert_int_equal(parse("{\"results\":[{\"status\":\"rejected\",\"reason\":\"a\\u0001b\\nc\"}]}",
                           GWA_ANSWER_SUBMIT, 1, it, why),
                     0);
    assert_string_equal(it[0].reason, "a b c");
    /* 254 ASCII bytes, then a two-byte character that does not fit whole. */
    int n = snprintf(doc, sizeof doc, "{\"results\":[{\"status\":\"rejected\",\"reason\":\"");
    memset(doc + n, 'x', 254);
    n += 254;
    n += snprintf(doc + n, sizeof doc - (size_t)n, "\xc3\xa4zz\"}]}");
    assert_int_equal(gwa_answer_parse(doc, (size_t)n, GWA_ANSWER_SUBMIT, 1, it, why, sizeof why),
                     0);
    assert_int_equal(strlen(it[0].reason), 254);
    /* An id longer than the limit is not usable: the item is missing. */
    n = snprintf(doc, sizeof doc, "{\"results\":[{\"status\":\"accepted\",\"id\":\"");
    memset(doc + n, 'i', GWA_ITEM_ID_MAX + 1);
    n += GWA_ITEM_ID_MAX + 1;
    n += snprintf(doc + n, sizeof doc - (size_t)n, "\"}]}");
    assert_int_equal(gwa_answer_parse(doc, (size_t)n, GWA_ANSWER_SUBMIT, 1, it, why, sizeof why),
                     0);
    assert_int_equal(it[0].status, GWA_ITEM_MISSING);
}

static void test_whole_answer_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",     "[1,2",        "{\"results\": {\"0\": 1}}",          "{\"result\": []}", "[]",
        "null", "\"results\"", "{\"results\": [], \"results\": []}", /* duplicate key */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct gwa_item it[2];
        char why[200];
        memset(it, 0x5a, sizeof it);
        int rc = parse(bad[i], GWA_ANSWER_SUBMIT, 2, it, why);
        assert_true(rc == -EINVAL || rc == -E2BIG);
        assert_true(why[0] != '\0');
        assert_int_equal(it[0].status, GWA_ITEM_MISSING);
        assert_int_equal(it[1].status, GWA_ITEM_MISSING);
    }
}

static void test_too_large(void **state)
{
    (void)state;
    struct gwa_item it[1];
    char why[200];
    size_t len = (size_t)GWA_ANSWER_MAX + 1;
    char *big = malloc(len);
    assert_non_null(big);
    memset(big, ' ', len);
    assert_int_equal(gwa_answer_parse(big, len, GWA_ANSWER_SUBMIT, 1, it, why, sizeof why), -E2BIG);
    assert_non_null(strstr(why, "bytes"));
    free(big);
}

static void test_detail(void **state)
{
    (void)state;
    char d[32];
    const char *p = "{\"title\":\"Forbidden\",\"status\":403,\"detail\":\"not an EMT\\r\\n\"}";
    gwa_answer_detail(p, strlen(p), d, sizeof d);
    assert_string_equal(d, "not an EMT  ");
    gwa_answer_detail("<html>", 6, d, sizeof d);
    assert_string_equal(d, "");
    gwa_answer_detail(NULL, 0, d, sizeof d);
    assert_string_equal(d, "");
    p = "{\"detail\":\"0123456789012345678901234567890123456789\"}";
    gwa_answer_detail(p, strlen(p), d, sizeof d);
    assert_int_equal(strlen(d), sizeof d - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_documented),
        cmocka_unit_test(test_status_every_state),
        cmocka_unit_test(test_bad_items_stay_local),
        cmocka_unit_test(test_codes_out_of_range),
        cmocka_unit_test(test_reason_cleaned_and_cut),
        cmocka_unit_test(test_whole_answer_refused),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_detail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
