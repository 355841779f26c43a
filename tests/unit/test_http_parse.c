/*
 * test_http_parse.c - request heads, as a table of accepted and refused
 * inputs, and percent-decoding.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/http.h"

struct hcase {
    const char *head;
    int status;
};

static const struct hcase cases[] = {
    {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0},
    {"GET /v1/x?a=b HTTP/1.0\r\n\r\n", 0},
    {"\r\nGET / HTTP/1.1\nHost: x\n\n", 0},
    {"POST /v1/import HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n", 0},
    {"GET / HTTP/1.1\r\n\r\n", 400}, /* no Host */
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
    {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400},
    {"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET x HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
    {"GET / HTTQ/1.1\r\nHost: x\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\rinjected\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\x7f\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 411},
    {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
    {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417},
    {"GET / HTTP/1.1\r\nHost: x\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: x\r\n\r\nextra", 400},
    {"", 400},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_head h;
        const char *why = NULL;
        size_t n = strlen(cases[i].head);
        char *buf = malloc(n + 1);
        memcpy(buf, cases[i].head, n + 1);
        int rc = http_parse_head(buf, n, &h, &why);
        if (rc != cases[i].status)
            fail_msg("case %zu: expected %d, got %d (%s)", i, cases[i].status, rc, why ? why : "");
        if (rc != 0)
            assert_non_null(why);
        free(buf);
    }
}

static void test_fields(void **state)
{
    char buf[] = "PUT /v1/a%20b?x=1&y HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, close\r\n"
                 "Expect: 100-Continue\r\nContent-Length: 42\r\nX-Many:  a  b  \r\n\r\n";
    struct http_head h;
    const char *why;
    (void)state;
    assert_int_equal(http_parse_head(buf, strlen(buf), &h, &why), 0);
    assert_string_equal(h.method, "PUT");
    assert_string_equal(h.path, "/v1/a%20b");
    assert_string_equal(h.query, "x=1&y");
    assert_int_equal(h.minor, 1);
    assert_int_equal(h.content_length, 42);
    assert_false(h.keep_alive);
    assert_true(h.expect_continue);
    assert_string_equal(http_head_get(&h, "x-many"), "a  b");
    assert_null(http_head_get(&h, "Authorization"));

    char b10[] = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    assert_int_equal(http_parse_head(b10, strlen(b10), &h, &why), 0);
    assert_true(h.keep_alive);
    assert_int_equal(h.content_length, -1);
}

static void test_too_many_headers(void **state)
{
    char buf[8192];
    size_t n = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: x\r\n");
    struct http_head h;
    const char *why;
    (void)state;
    for (int i = 0; i < HTTP_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "X-%d: y\r\n", i);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
    assert_int_equal(http_parse_head(buf, n, &h, &why), 431);
}

static void test_unescape(void **state)
{
    char out[64];
    (void)state;
    assert_int_equal(http_unescape("a%3Ab", 5, out, 0), 3);
    assert_string_equal(out, "a:b");
    assert_int_equal(http_unescape("a+b", 3, out, 1), 3);
    assert_string_equal(out, "a b");
    assert_int_equal(http_unescape("a+b", 3, out, 0), 3);
    assert_string_equal(out, "a+b");
    assert_int_equal(http_unescape("%zz", 3, out, 0), -EINVAL);
    assert_int_equal(http_unescape("%4", 2, out, 0), -EINVAL);
    assert_int_equal(http_unescape("%", 1, out, 0), -EINVAL);
    assert_int_equal(http_unescape("%00", 3, out, 0), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_too_many_headers),
        cmocka_unit_test(test_unescape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
