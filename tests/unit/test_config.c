/*
 * test_config.c - the configuration table and its three sources.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config.h"
#include "common/log.h"

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/clsm-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_defaults(void **state)
{
    struct clsm_config c;
    struct config_error err;
    (void)state;
    config_defaults(&c);
    assert_string_equal(c.api_listen.host, "127.0.0.1");
    assert_int_equal(c.api_listen.port, 8080);
    assert_int_equal(c.api_max_body, 1 << 20);
    assert_int_equal(c.api_max_import_body, 32 << 20);
    assert_string_equal(c.store_path, "var/clsm.db");
    assert_string_equal(config_synchronous_name(&c), "full");
    assert_int_equal(c.log_level, LOG_INFO);
    assert_string_equal(c.auth_admin_token, "");
    assert_int_equal(config_validate(&c, &err), 0);
}

static void test_set_values_and_errors(void **state)
{
    struct clsm_config c;
    struct config_error err;
    (void)state;
    config_defaults(&c);
    assert_int_equal(config_set(&c, "api.listen", "[::1]:9000", "t", &err), 0);
    assert_string_equal(c.api_listen.host, "::1");
    assert_int_equal(c.api_listen.port, 9000);
    assert_int_equal(config_set(&c, "api.max_body", "64k", "t", &err), 0);
    assert_int_equal(c.api_max_body, 65536);
    assert_int_equal(config_set(&c, "api.max_body", "2M", "t", &err), 0);
    assert_int_equal(c.api_max_body, 2 << 20);
    assert_int_equal(config_set(&c, "log.level", "debug", "t", &err), 0);
    assert_int_equal(c.log_level, LOG_DEBUG);

    assert_int_equal(config_set(&c, "api.nope", "1", "flag", &err), -ENOENT);
    assert_non_null(strstr(err.msg, "unknown option"));
    assert_int_equal(config_set(&c, "api.listen", "no-port", "flag", &err), -EINVAL);
    assert_non_null(strstr(err.msg, "host:port"));
    assert_int_equal(config_set(&c, "api.listen", "host:70000", "flag", &err), -EINVAL);
    assert_int_equal(config_set(&c, "api.listen", "::1:80", "flag", &err), -EINVAL);
    assert_int_equal(config_set(&c, "api.max_connections", "0", "flag", &err), -EINVAL);
    assert_non_null(strstr(err.msg, "out of range"));
    assert_int_equal(config_set(&c, "api.max_connections", "12x", "flag", &err), -EINVAL);
    assert_int_equal(config_set(&c, "api.max_body", "1T", "flag", &err), -EINVAL);
    assert_int_equal(config_set(&c, "api.max_body", "512", "flag", &err), -EINVAL);
    assert_int_equal(config_set(&c, "log.level", "loud", "flag", &err), -EINVAL);
    assert_int_equal(config_set(&c, "store.synchronous", "off", "flag", &err), -EINVAL);
    assert_int_equal(config_set(&c, "store.path", "", "flag", &err), -EINVAL);
    /* A failed set leaves the old value. */
    assert_int_equal(c.api_listen.port, 9000);
}

static void test_validate(void **state)
{
    struct clsm_config c;
    struct config_error err;
    (void)state;
    config_defaults(&c);
    assert_int_equal(config_set(&c, "auth.admin_token", "short", "t", &err), 0);
    assert_int_equal(config_validate(&c, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "16"));
    assert_int_equal(config_set(&c, "auth.admin_token", "0123456789abcdef", "t", &err), 0);
    assert_int_equal(config_validate(&c, &err), 0);
    assert_int_equal(config_set(&c, "api.max_import_body", "1k", "t", &err), 0);
    assert_int_equal(config_validate(&c, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "max_import_body"));
}

static void test_file(void **state)
{
    struct clsm_config c;
    struct config_error err;
    (void)state;
    config_defaults(&c);
    char *p = write_tmp("# comment\n; other comment\n\n[api]\nlisten = 0.0.0.0:9090\n"
                        "max_body=128k\n[store]\n  path = \"/tmp/x y.db\"  \n");
    assert_int_equal(config_load_file(&c, p, &err), 0);
    assert_string_equal(c.api_listen.host, "0.0.0.0");
    assert_int_equal(c.api_max_body, 128 << 10);
    assert_string_equal(c.store_path, "/tmp/x y.db");
    unlink(p);

    p = write_tmp("[api]\nlisten = 0.0.0.0:9090\nbogus = 1\n");
    assert_int_equal(config_load_file(&c, p, &err), -EINVAL);
    assert_non_null(strstr(err.msg, ":3:"));
    assert_non_null(strstr(err.msg, "api.bogus"));
    unlink(p);

    p = write_tmp("[api\nlisten = 1\n");
    assert_int_equal(config_load_file(&c, p, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "section"));
    unlink(p);

    p = write_tmp("[api]\njust a line\n");
    assert_int_equal(config_load_file(&c, p, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "key = value"));
    unlink(p);

    assert_int_equal(config_load_file(&c, "/nonexistent/clsm.ini", &err), -ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/clsm.ini"));
}

static void test_file_limits(void **state)
{
    struct clsm_config c;
    struct config_error err;
    (void)state;
    config_defaults(&c);
    char *big = malloc(6000);
    memset(big, 'a', 5999);
    big[5999] = '\0';
    char *p = write_tmp(big);
    assert_int_equal(config_load_file(&c, p, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "longer"));
    unlink(p);
    free(big);
}

static int warned;
static void on_warn(const char *name, void *arg)
{
    (void)arg;
    if (strncmp(name, "CLSM_BOGUS", 10) == 0)
        warned++;
}

static void test_env(void **state)
{
    struct clsm_config c;
    struct config_error err;
    (void)state;
    config_defaults(&c);
    char *env[] = {"PATH=/bin",
                   "CLSM_API_MAX_BODY=256k",
                   "CLSM_STORE_PATH=/tmp/e.db",
                   "CLSM_BOGUS_THING=1",
                   "CLSM_AUTH_ADMIN_TOKEN=abcdefghijklmnopq",
                   NULL};
    warned = 0;
    assert_int_equal(config_load_env(&c, env, on_warn, NULL, &err), 0);
    assert_int_equal(c.api_max_body, 256 << 10);
    assert_string_equal(c.store_path, "/tmp/e.db");
    assert_string_equal(c.auth_admin_token, "abcdefghijklmnopq");
    assert_int_equal(warned, 1);

    char *bad[] = {"CLSM_API_LISTEN=nowhere", NULL};
    assert_int_equal(config_load_env(&c, bad, NULL, NULL, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "CLSM_API_LISTEN"));
}

static void test_dump_redacts(void **state)
{
    struct clsm_config c;
    struct config_error err;
    char buf[4096];
    (void)state;
    config_defaults(&c);
    assert_int_equal(config_set(&c, "auth.admin_token", "supersecret-token-1", "t", &err), 0);
    FILE *f = fmemopen(buf, sizeof buf, "w");
    config_dump(&c, f);
    fclose(f);
    assert_null(strstr(buf, "supersecret"));
    assert_non_null(strstr(buf, "admin_token = (set)"));
    assert_non_null(strstr(buf, "[api]\nlisten = 127.0.0.1:8080"));

    f = fmemopen(buf, sizeof buf, "w");
    config_reference(f);
    fclose(f);
    assert_non_null(strstr(buf, "`api.listen`"));
    assert_non_null(strstr(buf, "`store.synchronous`"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),     cmocka_unit_test(test_set_values_and_errors),
        cmocka_unit_test(test_validate),     cmocka_unit_test(test_file),
        cmocka_unit_test(test_file_limits),  cmocka_unit_test(test_env),
        cmocka_unit_test(test_dump_redacts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
