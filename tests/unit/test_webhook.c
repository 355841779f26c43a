/*
 * test_webhook.c - webhook subscriptions (api/webhook.h): the check of
 * subscription bodies (a table of cases), the signature (RFC 4231 vectors)
 * and the subscription rows in a real SQLite store. Deliveries are tested
 * end to end in tests/integration/test_webhooks.py.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/webhook.h"
#include "store/store.h"

static void test_spec_parse(void **state)
{
    static const struct {
        const char *body, *pointer; /* pointer NULL: accepted */
    } cases[] = {
        {"{\"url\":\"http://127.0.0.1:8080/hook\"}", NULL},
        {"{\"url\":\"https://example.org/a/b?c=d\",\"kinds\":[\"request.\",\"command.failed\"],"
         "\"secret\":\"0123456789abcdef\"}",
         NULL},
        {"{\"url\":\"http://[::1]:9/x\",\"kinds\":[]}", NULL},
        {"{}", "/url"},
        {"{\"url\":null}", "/url"},
        {"{\"url\":42}", "/url"},
        {"{\"url\":\"ftp://example.org/x\"}", "/url"},
        {"{\"url\":\"file:///etc/passwd\"}", "/url"},
        {"{\"url\":\"example.org/x\"}", "/url"},
        {"{\"url\":\"http://\"}", "/url"},
        {"{\"url\":\"https:/example.org/x\"}", "/url"},
        {"{\"url\":\"HTTP://example.org/x\"}", "/url"},
        {"{\"url\":\"http://user:pw@example.org/\"}", "/url"},
        {"{\"url\":\"http://user@example.org/\"}", "/url"},
        {"{\"url\":\"http://example.org/#frag\"}", "/url"},
        {"{\"url\":\"http://example.org/a b\"}", "/url"},
        {"{\"url\":\"http://example.org/\\u00e4\"}", "/url"},
        {"{\"url\":\"http://example.org/\\n\"}", "/url"},
        {"{\"url\":\"http://x\",\"kinds\":\"request.\"}", "/kinds"},
        {"{\"url\":\"http://x\",\"kinds\":[1]}", "/kinds/0"},
        {"{\"url\":\"http://x\",\"kinds\":[\"ok.\",\"not ok\"]}", "/kinds/1"},
        {"{\"url\":\"http://x\",\"kinds\":[\"\"]}", "/kinds/0"},
        {"{\"url\":\"http://x\",\"kinds\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\","
         "\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]}",
         "/kinds/16"},
        {"{\"url\":\"http://x\",\"secret\":\"short\"}", "/secret"},
        {"{\"url\":\"http://x\",\"secret\":123}", "/secret"},
        {"{\"url\":\"http://x\",\"secret\":\"0123456789abcdef 0\"}", "/secret"},
        {"{\"url\":\"http://x\",\"secret\":\"0123456789abcdef\\u0000x\"}", "/secret"},
        {"{\"url\":\"http://x\",\"events\":[]}", "/events"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct webhook_spec spec;
        char pointer[96] = "?", why[160] = "";
        json_t *body = json_loads(cases[i].body, JSON_ALLOW_NUL, NULL);
        if (body == NULL)
            fail_msg("bad fixture %s", cases[i].body);
        int rc = webhook_spec_parse(body, &spec, pointer, sizeof pointer, why, sizeof why);
        json_decref(body);
        if (cases[i].pointer == NULL && rc != 0)
            fail_msg("%s: refused at %s: %s", cases[i].body, pointer, why);
        if (cases[i].pointer &&
            (rc != -EINVAL || strcmp(pointer, cases[i].pointer) != 0 || why[0] == '\0'))
            fail_msg("%s: rc %d at \"%s\" (%s), want %s", cases[i].body, rc, pointer, why,
                     cases[i].pointer);
    }
    /* What an accepted body gives. */
    struct webhook_spec spec;
    char pointer[96], why[160];
    json_t *body = json_loads(cases[1].body, 0, NULL);
    assert_int_equal(webhook_spec_parse(body, &spec, pointer, sizeof pointer, why, sizeof why), 0);
    json_decref(body);
    assert_string_equal(spec.url, "https://example.org/a/b?c=d");
    assert_int_equal(spec.kinds.nkinds, 2);
    assert_string_equal(spec.kinds.kinds[1], "command.failed");
    assert_true(spec.has_secret);
    assert_string_equal(spec.secret, "0123456789abcdef");
    /* Not an object at all. */
    body = json_array();
    assert_int_equal(webhook_spec_parse(body, &spec, pointer, sizeof pointer, why, sizeof why),
                     -EINVAL);
    assert_string_equal(pointer, "");
    json_decref(body);
}

static void test_signature(void **state)
{
    char sig[72];
    (void)state;
    /* RFC 4231, test case 2. */
    webhook_sign("Jefe", "what do ya want for nothing?", 28, sig);
    assert_string_equal(sig,
                        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* Another key, another signature; the body counts to its last byte. */
    char other[72];
    webhook_sign("Jefe", "what do ya want for nothing!", 28, other);
    assert_string_not_equal(sig, other);
}

static void test_subscription_rows(void **state)
{
    char dir[64] = "/tmp/clsm-webhook-XXXXXX", path[128], err[256], cmd[128];
    const struct store_options opts = {1, 1000};
    struct store *s = NULL;
    json_t *items = NULL, *party;
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/clsm.db", dir);
    assert_int_equal(store_open(path, &opts, &s, err, sizeof err), 0);
    party = json_pack("{s:s, s:s, s:s}", "id", "9900000000001", "name", "n", "role", "lf");
    assert_int_equal(store_reg_insert(s, reg_kind_by_plural("parties"), party), 0);
    json_decref(party);

    struct store_webhook a = {
        "wh-a", "9900000000001", "http://x/a", "[\"request.\"]", "0123456789abcdef", 0, 1000, 5};
    struct store_webhook b = {"wh-b", NULL, "http://x/b", "[]", NULL, 1, 2000, 0};
    struct store_webhook orphan = {"wh-c", "9900000000009", "http://x/c", "[]", NULL, 0, 1, 0};
    assert_int_equal(store_webhook_insert(s, &a), 0);
    assert_int_equal(store_webhook_insert(s, &b), 0);
    assert_int_equal(store_webhook_insert(s, &a), -EEXIST);
    assert_int_equal(store_webhook_insert(s, &orphan), -EBUSY); /* no such party */

    struct store_webhook_state st = {"wh-a", 42, "failing", 3, "HTTP 500", 3000, 0, 2500};
    assert_int_equal(store_webhook_progress(s, &st), 0);
    st.id = "wh-nope";
    assert_int_equal(store_webhook_progress(s, &st), -ENOENT);
    st.id = "wh-a";
    st.state = "broken";
    assert_int_equal(store_webhook_progress(s, &st), -EINVAL);

    assert_int_equal(store_webhook_all(s, &items), 0);
    assert_int_equal(json_array_size(items), 2);
    json_t *ra = json_array_get(items, 0), *rb = json_array_get(items, 1);
    assert_string_equal(json_string_value(json_object_get(ra, "id")), "wh-a");
    assert_int_equal(json_integer_value(json_object_get(ra, "cursor")), 42);
    assert_string_equal(json_string_value(json_object_get(ra, "state")), "failing");
    assert_int_equal(json_integer_value(json_object_get(ra, "failures")), 3);
    assert_string_equal(json_string_value(json_object_get(ra, "last_error")), "HTTP 500");
    assert_true(json_is_null(json_object_get(ra, "last_success_at")));
    assert_int_equal(json_integer_value(json_object_get(ra, "failing_since")), 2500);
    assert_string_equal(json_string_value(json_array_get(json_object_get(ra, "kinds"), 0)),
                        "request.");
    assert_string_equal(json_string_value(json_object_get(ra, "secret")), "0123456789abcdef");
    assert_true(json_is_null(json_object_get(rb, "party")));
    assert_true(json_is_true(json_object_get(rb, "admin")));
    assert_true(json_is_null(json_object_get(rb, "secret")));
    json_decref(items);

    /* A party's subscriptions go with it. */
    assert_int_equal(store_reg_delete(s, reg_kind_by_plural("parties"), "9900000000001"), 0);
    st.state = "active";
    assert_int_equal(store_webhook_progress(s, &st), -ENOENT);
    assert_int_equal(store_webhook_delete(s, "wh-a"), -ENOENT);
    assert_int_equal(store_webhook_delete(s, "wh-b"), 0);
    assert_int_equal(store_webhook_all(s, &items), 0);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);
    store_close(s);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_parse),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_subscription_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
