/*
 * test_jsonx.c - JSON parsing with limits.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/jsonx.h"

static int parse(const char *s, json_t **out)
{
    char msg[200];
    return jsonx_parse(s, strlen(s), &jsonx_api_limits, out, msg, sizeof msg);
}

static void test_ok(void **state)
{
    json_t *j;
    (void)state;
    assert_int_equal(parse("{\"a\": [1, 2, {\"b\": \"c\"}]}", &j), 0);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "a"), 1)), 2);
    json_decref(j);
    /* Brackets inside strings do not count as nesting. */
    assert_int_equal(parse("{\"a\": \"[[[[[[[[[[[[[[[[[[[[[[[[\\\"]]]\"}", &j), 0);
    json_decref(j);
}

static void test_depth(void **state)
{
    char buf[128];
    json_t *j = NULL;
    (void)state;
    memset(buf, 0, sizeof buf);
    for (int i = 0; i < 16; i++)
        buf[i] = '[';
    for (int i = 16; i < 32; i++)
        buf[i] = ']';
    assert_int_equal(parse(buf, &j), 0);
    json_decref(j);
    memset(buf, 0, sizeof buf);
    for (int i = 0; i < 17; i++)
        buf[i] = '[';
    for (int i = 17; i < 34; i++)
        buf[i] = ']';
    assert_int_equal(parse(buf, &j), -E2BIG);
    assert_null(j);
}

static void test_strings_and_values(void **state)
{
    json_t *j = NULL;
    char *big = malloc(5000);
    struct jsonx_limits few = {16, 4096, 3};
    (void)state;
    big[0] = '"';
    memset(big + 1, 'a', 4097);
    big[4098] = '"';
    big[4099] = '\0';
    assert_int_equal(parse(big, &j), -E2BIG);
    big[4097] = '"';
    big[4098] = '\0';
    assert_int_equal(parse(big, &j), 0);
    json_decref(j);
    free(big);
    assert_int_equal(jsonx_parse("[1,2,3]", 7, &few, &j, NULL, 0), -E2BIG);
    assert_int_equal(jsonx_parse("[1,2]", 5, &few, &j, NULL, 0), 0);
    json_decref(j);
}

static void test_rejects(void **state)
{
    json_t *j = NULL;
    char msg[200];
    (void)state;
    assert_int_equal(parse("{\"a\":1,\"a\":2}", &j), -EINVAL);
    assert_int_equal(parse("{\"a\":\"x\\u0000y\"}", &j), -EINVAL);
    assert_int_equal(parse("\"\xff\xfe\"", &j), -EINVAL);
    assert_int_equal(parse("{\"a\":}", &j), -EINVAL);
    assert_int_equal(parse("", &j), -EINVAL);
    assert_int_equal(jsonx_parse("{} x", 4, &jsonx_api_limits, &j, msg, sizeof msg), -EINVAL);
    assert_non_null(strstr(msg, "line"));
    assert_null(j);
}

static void test_utf8_repair(void **state)
{
    (void)state;
    struct {
        const char *in, *out;
    } cases[] = {
        {"plain", "plain"},
        {"\xc3\xa4 ok", "\xc3\xa4 ok"},
        {"cut \xc3", "cut ?"},
        {"\xff\xfe", "??"},
        {"\xc0\xaf", "??"},           /* overlong '/' */
        {"\xed\xa0\x80", "???"},      /* surrogate */
        {"\xf4\x90\x80\x80", "????"}, /* above U+10FFFF */
        {"\xe2\x82\xac\xe2\x82", "\xe2\x82\xac??"},
        {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%s", cases[i].in);
        jsonx_utf8_repair(buf);
        assert_string_equal(buf, cases[i].out);
        json_t *j = json_string(buf);
        assert_non_null(j);
        json_decref(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_strings_and_values),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_utf8_repair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
