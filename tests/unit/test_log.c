/*
 * test_log.c - logfmt lines: escaping, levels, truncation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"

static int pipefd[2];

static size_t drain(char *buf, size_t len)
{
    ssize_t n = read(pipefd[0], buf, len - 1);
    buf[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

static int setup(void **state)
{
    (void)state;
    if (pipe(pipefd) != 0)
        return -1;
    log_init(LOG_INFO, pipefd[1]);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    close(pipefd[0]);
    close(pipefd[1]);
    log_init(LOG_INFO, 2);
    return 0;
}

static void test_fields_and_quoting(void **state)
{
    char buf[8192];
    (void)state;
    LOG(LOG_INFO, "channel open", LOG_S("smgw", "EABC0012345678"), LOG_I("port", 4443),
        LOG_S("peer", "a b=\"c\"\n\x01"), LOG_S("empty", ""), LOG_S("null", NULL),
        LOG_D("ratio", 0.5));
    drain(buf, sizeof buf);
    assert_non_null(strstr(buf, " level=info msg=\"channel open\" smgw=EABC0012345678 port=4443 "
                                "peer=\"a b=\\\"c\\\"\\n\\x01\" empty=\"\" null=\"\" ratio=0.5\n"));
    assert_true(strncmp(buf, "ts=", 3) == 0);
    assert_non_null(strchr(buf, 'Z'));
}

static void test_levels(void **state)
{
    char buf[1024];
    enum log_level l;
    (void)state;
    LOGM(LOG_DEBUG, "hidden");
    LOGM(LOG_WARN, "shown");
    drain(buf, sizeof buf);
    assert_null(strstr(buf, "hidden"));
    assert_non_null(strstr(buf, "level=warn msg=shown"));
    assert_int_equal(log_level_parse("error", &l), 0);
    assert_int_equal(l, LOG_ERROR);
    assert_int_equal(log_level_parse("verbose", &l), -EINVAL);
    assert_string_equal(log_level_name(LOG_DEBUG), "debug");
    assert_false(log_enabled(LOG_DEBUG));
    assert_true(log_enabled(LOG_ERROR));
}

static void test_truncation(void **state)
{
    char big[6000], buf[8192];
    (void)state;
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    LOG(LOG_ERROR, "long", LOG_S("a", "first"), LOG_S("b", big), LOG_S("c", "last"));
    size_t n = drain(buf, sizeof buf);
    assert_true(n <= 4096);
    assert_non_null(strstr(buf, "a=first"));
    assert_null(strstr(buf, "b=xxx"));
    assert_non_null(strstr(buf, "truncated=1\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_and_quoting),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_truncation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
