/*
 * test_util.c - number parsing, addresses, time stamps and encodings.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"

static void test_parse_ll(void **state)
{
    long long v;
    (void)state;
    assert_int_equal(parse_ll("42", 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(parse_ll("-5", -10, 10, &v), 0);
    assert_int_equal(v, -5);
    assert_int_equal(parse_ll("101", 0, 100, &v), -ERANGE);
    assert_int_equal(parse_ll("99999999999999999999", 0, 100, &v), -ERANGE);
    assert_int_equal(parse_ll("", 0, 100, &v), -EINVAL);
    assert_int_equal(parse_ll(" 1", 0, 100, &v), -EINVAL);
    assert_int_equal(parse_ll("+1", 0, 100, &v), -EINVAL);
    assert_int_equal(parse_ll("1 ", 0, 100, &v), -EINVAL);
    assert_int_equal(parse_ll("0x10", 0, 100, &v), -EINVAL);
    assert_int_equal(parse_ll(NULL, 0, 100, &v), -EINVAL);
}

static void test_hostport(void **state)
{
    struct hostport hp;
    (void)state;
    assert_int_equal(hostport_parse("127.0.0.1:8080", &hp), 0);
    assert_string_equal(hp.host, "127.0.0.1");
    assert_int_equal(hp.port, 8080);
    assert_int_equal(hostport_parse("[::1]:0", &hp), 0);
    assert_string_equal(hp.host, "::1");
    assert_int_equal(hostport_parse("localhost:65535", &hp), 0);
    assert_int_equal(hostport_parse("localhost:65536", &hp), -EINVAL);
    assert_int_equal(hostport_parse(":80", &hp), -EINVAL);
    assert_int_equal(hostport_parse("host", &hp), -EINVAL);
    assert_int_equal(hostport_parse("[::1]80", &hp), -EINVAL);
    assert_int_equal(hostport_parse("a b:80", &hp), -EINVAL);
    assert_int_equal(hostport_parse("::1:80", &hp), -EINVAL);
}

static void test_time(void **state)
{
    int64_t ms;
    char buf[40];
    (void)state;
    assert_int_equal(time_parse_ms("1970-01-01T00:00:00Z", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(time_parse_ms("2026-11-28T18:21:30.123Z", &ms), 0);
    assert_string_equal(time_format_ms(ms, buf, sizeof buf), "2026-11-28T18:21:30.123Z");
    assert_int_equal(time_parse_ms("2026-11-28T19:21:30.123+01:00", &ms), 0);
    assert_string_equal(time_format_ms(ms, buf, sizeof buf), "2026-11-28T18:21:30.123Z");
    assert_int_equal(time_parse_ms("2024-02-29T00:00:00Z", &ms), 0);
    assert_int_equal(time_parse_ms("2026-02-30T00:00:00Z", &ms), -EINVAL);
    assert_int_equal(time_parse_ms("2026-13-01T00:00:00Z", &ms), -EINVAL);
    assert_int_equal(time_parse_ms("2026-11-28 18:21:30Z", &ms), -EINVAL);
    assert_int_equal(time_parse_ms("2026-11-28T18:21:30", &ms), -EINVAL);
    assert_int_equal(time_parse_ms("2026-11-28T18:21:30.Z", &ms), -EINVAL);
    assert_int_equal(time_parse_ms("2026-11-28T18:21:30Zjunk", &ms), -EINVAL);
    assert_int_equal(time_parse_ms("", &ms), -EINVAL);
}

static void test_b64url(void **state)
{
    char enc[64];
    uint8_t dec[64];
    (void)state;
    assert_int_equal(b64url_encode((const uint8_t *)"T1.F1", 5, enc, sizeof enc), 7);
    assert_string_equal(enc, "VDEuRjE");
    assert_int_equal(b64url_decode(enc, dec, sizeof dec), 5);
    assert_memory_equal(dec, "T1.F1", 5);
    const uint8_t bin[] = {0xfb, 0xff, 0x00};
    assert_int_equal(b64url_encode(bin, 3, enc, sizeof enc), 4);
    assert_string_equal(enc, "-_8A");
    assert_int_equal(b64url_decode("a+b", dec, sizeof dec), -EINVAL);
    assert_int_equal(b64url_decode("a", dec, sizeof dec), -EINVAL);
    assert_int_equal(b64url_decode("VDF", dec, sizeof dec), -EINVAL); /* nonzero tail bits */
    assert_int_equal(b64url_decode("VDEuRjE", dec, 2), -ENOSPC);
    assert_int_equal(b64url_encode(bin, 3, enc, 4), -ENOSPC);
}

static void test_hex_and_copy(void **state)
{
    char out[8];
    const uint8_t b[] = {0x01, 0xab, 0xff};
    (void)state;
    hex_encode(b, 3, out);
    assert_string_equal(out, "01abff");
    assert_int_equal(str_copy(out, sizeof out, "1234567"), 0);
    assert_int_equal(str_copy(out, sizeof out, "12345678"), -ENOSPC);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ll),     cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_time),         cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_hex_and_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
