/*
 * test_import.c - atomic bulk import into a real (in-memory) store.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "registry/import.h"

static const struct store_options opts = {0, 1000};
static const struct store_scope ALL = {SCOPE_ALL, NULL, NULL};

static int setup(void **state)
{
    struct store *s;
    char err[200];
    if (store_open(":memory:", &opts, &s, err, sizeof err) != 0)
        return -1;
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    store_close(*state);
    return 0;
}

/* Children before parents on purpose: the import orders them. */
static const char *DOC =
    "{\"installations\":[{\"id\":\"I1\",\"device\":\"D1\",\"kind\":\"heat_pump\","
    "\"direction\":\"consumption\",\"rated_power_w\":9000,\"sec14a\":true,\"segment\":\"F1\"}],"
    "\"segments\":[{\"id\":\"F1\",\"name\":\"f\",\"level\":\"feeder\",\"parent\":\"T1\",\"vnb\":"
    "\"9900000000001\"},{\"id\":\"T1\",\"name\":\"t\",\"level\":\"transformer\",\"parent\":\"S\","
    "\"vnb\":\"9900000000001\"},{\"id\":\"S\",\"name\":\"s\",\"level\":\"substation\",\"vnb\":"
    "\"9900000000001\"}],"
    "\"parties\":[{\"id\":\"9900000000001\",\"name\":\"v\",\"role\":\"vnb\"},{\"id\":"
    "\"9900000000002\",\"name\":\"l\",\"role\":\"lf\"}],"
    "\"gwas\":[{\"id\":\"G\",\"name\":\"g\",\"endpoint\":\"https://g\"}],"
    "\"smgws\":[{\"id\":\"EABC0000000001\",\"gwa\":\"G\",\"segment\":\"F1\"}],"
    "\"devices\":[{\"id\":\"D1\",\"smgw\":\"EABC0000000001\",\"kind\":\"steuerbox\"}],"
    "\"assignments\":[{\"party\":\"9900000000002\",\"installation\":\"I1\",\"rights\":[\"read\"]}]"
    "}";

static int run(struct store *s, const char *text, json_t **summary, struct reg_error *err)
{
    json_t *doc = json_loads(text, 0, NULL);
    if (doc == NULL)
        fail_msg("bad fixture");
    int rc = reg_import(s, doc, summary, err);
    json_decref(doc);
    return rc;
}

static long long count(json_t *summary, const char *kind, const char *what)
{
    return json_integer_value(json_object_get(json_object_get(summary, kind), what));
}

static int exists(struct store *s, const char *plural, const char *id)
{
    json_t *o = NULL;
    int rc = store_reg_get(s, reg_kind_by_plural(plural), id, &ALL, &o);
    json_decref(o);
    return rc == 0;
}

static void test_import_and_reimport(void **state)
{
    struct store *s = *state;
    struct reg_error err;
    json_t *sum;
    assert_int_equal(run(s, DOC, &sum, &err), 0);
    assert_int_equal(count(sum, "segments", "created"), 3);
    assert_int_equal(count(sum, "installations", "created"), 1);
    assert_int_equal(count(sum, "assignments", "created"), 1);
    json_decref(sum);
    assert_true(exists(s, "assignments", "9900000000002:I1"));
    json_t *before = NULL, *after = NULL;
    assert_int_equal(store_reg_get(s, reg_kind_by_plural("segments"), "S", &ALL, &before), 0);
    assert_int_equal(run(s, DOC, &sum, &err), 0);
    assert_int_equal(count(sum, "segments", "created"), 0);
    assert_int_equal(count(sum, "segments", "updated"), 0);
    assert_int_equal(count(sum, "segments", "unchanged"), 3);
    json_decref(sum);
    assert_int_equal(store_reg_get(s, reg_kind_by_plural("segments"), "S", &ALL, &after), 0);
    assert_true(json_equal(before, after)); /* not even updated_at moved */
    json_decref(before);
    json_decref(after);
    /* A changed field counts as updated. */
    char changed[4096];
    snprintf(changed, sizeof changed, "%s", DOC);
    char *p = strstr(changed, "\"name\":\"s\"");
    memcpy(p, "\"name\":\"z\"", 10);
    assert_int_equal(run(s, changed, &sum, &err), 0);
    assert_int_equal(count(sum, "segments", "updated"), 1);
    assert_int_equal(count(sum, "segments", "unchanged"), 2);
    json_decref(sum);
}

static void test_error_rolls_back(void **state)
{
    struct store *s = *state;
    struct reg_error err;
    json_t *sum = NULL;
    char bad[4096];
    /* Everything valid except the last installation's power. */
    snprintf(bad, sizeof bad, "%s", DOC);
    char *p = strstr(bad, "9000");
    memcpy(p, "-900", 4);
    assert_int_equal(run(s, bad, &sum, &err), -EINVAL);
    assert_null(sum);
    assert_int_equal(err.status, 422);
    assert_string_equal(err.pointer, "/installations/0/rated_power_w");
    assert_false(exists(s, "parties", "9900000000001"));
    assert_false(exists(s, "segments", "S"));
}

static void test_document_errors(void **state)
{
    struct store *s = *state;
    struct reg_error err;
    json_t *sum = NULL;
    assert_int_equal(run(s, "{\"widgets\":[]}", &sum, &err), -EINVAL);
    assert_string_equal(err.pointer, "/widgets");
    assert_int_equal(run(s, "{\"parties\":{}}", &sum, &err), -EINVAL);
    assert_string_equal(err.pointer, "/parties");
    assert_int_equal(run(s, "[]", &sum, &err), -EINVAL);
    assert_int_equal(run(s, "{\"parties\":[1]}", &sum, &err), -EINVAL);
    assert_string_equal(err.pointer, "/parties/0");
}

static void test_cycle_and_missing_parent(void **state)
{
    struct store *s = *state;
    struct reg_error err;
    json_t *sum = NULL;
    const char *cyc =
        "{\"parties\":[{\"id\":\"9900000000001\",\"name\":\"v\",\"role\":\"vnb\"}],"
        "\"segments\":[{\"id\":\"A\",\"name\":\"a\",\"level\":\"other\",\"parent\":\"B\",\"vnb\":"
        "\"9900000000001\"},{\"id\":\"B\",\"name\":\"b\",\"level\":\"other\",\"parent\":\"A\","
        "\"vnb\":\"9900000000001\"}]}";
    assert_int_equal(run(s, cyc, &sum, &err), -EINVAL);
    assert_string_equal(err.pointer, "/segments/0/parent");
    assert_non_null(strstr(err.detail, "cycle"));
    assert_false(exists(s, "parties", "9900000000001"));
    const char *orphan =
        "{\"parties\":[{\"id\":\"9900000000001\",\"name\":\"v\",\"role\":\"vnb\"}],"
        "\"segments\":[{\"id\":\"A\",\"name\":\"a\",\"level\":\"other\",\"parent\":\"Z\",\"vnb\":"
        "\"9900000000001\"}]}";
    assert_int_equal(run(s, orphan, &sum, &err), -EINVAL);
    assert_string_equal(err.pointer, "/segments/0/parent");
    assert_non_null(strstr(err.detail, "does not exist"));
}

static void test_unique_conflict(void **state)
{
    struct store *s = *state;
    struct reg_error err;
    json_t *sum = NULL;
    char dup[4096];
    /* A second installation on the same device output. */
    snprintf(dup, sizeof dup, "%s", DOC);
    char *p = strstr(dup, "}],\"segments\"");
    char tail[4096];
    snprintf(tail, sizeof tail, "%s", p);
    snprintf(p, sizeof dup - (size_t)(p - dup),
             "},{\"id\":\"I2\",\"device\":\"D1\",\"kind\":\"wallbox\",\"direction\":"
             "\"consumption\",\"rated_power_w\":11000,\"segment\":\"F1\"%s",
             tail);
    assert_int_equal(run(s, dup, &sum, &err), -EEXIST);
    assert_int_equal(err.status, 409);
    assert_non_null(strstr(err.detail, "device"));
    assert_string_equal(err.pointer, "/installations/1");
    assert_false(exists(s, "installations", "I1"));
}

static void test_role_change_checked_against_referrers(void **state)
{
    struct store *s = *state;
    struct reg_error err;
    json_t *sum = NULL, *p = NULL;
    assert_int_equal(run(s, DOC, &sum, &err), 0);
    json_decref(sum);
    /* The VNB of three segments cannot become a supplier... */
    assert_int_equal(
        run(s, "{\"parties\":[{\"id\":\"9900000000001\",\"name\":\"v\",\"role\":\"lf\"}]}", &sum,
            &err),
        -EBUSY);
    assert_int_equal(err.status, 409);
    assert_string_equal(err.pointer, "/parties/0/role");
    assert_non_null(strstr(err.detail, "segment"));
    /* ...nor the supplier of an assignment a VNB; a rename is fine. */
    assert_int_equal(
        run(s, "{\"parties\":[{\"id\":\"9900000000002\",\"name\":\"l\",\"role\":\"vnb\"}]}", &sum,
            &err),
        -EBUSY);
    assert_non_null(strstr(err.detail, "assignment"));
    assert_int_equal(
        run(s, "{\"parties\":[{\"id\":\"9900000000002\",\"name\":\"L2\",\"role\":\"aggregator\"}]}",
            &sum, &err),
        0);
    json_decref(sum);
    assert_int_equal(store_reg_get(s, reg_kind_by_plural("parties"), "9900000000001", &ALL, &p), 0);
    assert_string_equal(json_string_value(json_object_get(p, "role")), "vnb");
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_import_and_reimport, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_document_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cycle_and_missing_parent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_change_checked_against_referrers, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
