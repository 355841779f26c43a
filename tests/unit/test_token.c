/*
 * test_token.c - token format, uniqueness and hashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/token.h"

static void test_generate(void **state)
{
    char t1[TOKEN_LEN + 1], t2[TOKEN_LEN + 1], id1[TOKEN_ID_LEN + 1], id2[TOKEN_ID_LEN + 1];
    (void)state;
    assert_int_equal(token_generate(t1, id1), 0);
    assert_int_equal(token_generate(t2, id2), 0);
    assert_int_equal(strlen(t1), TOKEN_LEN);
    assert_int_equal(strncmp(t1, "clsm_", 5), 0);
    assert_int_equal(strlen(id1), TOKEN_ID_LEN);
    assert_int_equal(strncmp(id1, "tok_", 4), 0);
    assert_string_not_equal(t1, t2);
    assert_string_not_equal(id1, id2);
    assert_int_equal(
        strspn(t1 + 5, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        TOKEN_LEN - 5);
}

static void test_hash(void **state)
{
    uint8_t a[TOKEN_HASH_LEN], b[TOKEN_HASH_LEN], c[TOKEN_HASH_LEN];
    static const uint8_t abc[TOKEN_HASH_LEN] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                                0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                                0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                                0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    (void)state;
    token_hash("abc", 3, a); /* FIPS 180-2 test vector */
    assert_memory_equal(a, abc, TOKEN_HASH_LEN);
    token_hash("abc", 3, b);
    token_hash("abd", 3, c);
    assert_true(token_hash_equal(a, b));
    assert_false(token_hash_equal(a, c));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
