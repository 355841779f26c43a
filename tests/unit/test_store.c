/*
 * test_store.c - the SQLite backend: migrations, registry reads and writes,
 * scopes, pagination, transactions and tokens, on a real database file.
 */
#include <errno.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"
#include "store/store_impl.h"

static char dir[64];
static char path[128];
static const struct store_options opts = {1, 1000};

static struct store *open_store(void)
{
    struct store *s = NULL;
    char err[256];
    int rc = store_open(path, &opts, &s, err, sizeof err);
    if (rc != 0)
        fail_msg("store_open: %s", err);
    return s;
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/clsm-store-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/sub/dir/clsm.db", dir);
    *state = open_store();
    return 0;
}

static int teardown(void **state)
{
    char cmd[200];
    store_close(*state);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const struct reg_kind *K(const char *plural)
{
    return reg_kind_by_plural(plural);
}

static int put(struct store *s, const char *plural, const char *json)
{
    json_t *o = json_loads(json, 0, NULL);
    if (o == NULL)
        fail_msg("bad fixture %s", json);
    int rc = store_reg_insert(s, K(plural), o);
    json_decref(o);
    return rc;
}

static const struct store_scope ALL = {SCOPE_ALL, NULL, NULL};

/* A small world: two VNBs with a segment tree each, one supplier. */
static void populate(struct store *s)
{
    assert_int_equal(
        put(s, "parties", "{\"id\":\"9900000000001\",\"name\":\"VNB A\",\"role\":\"vnb\"}"), 0);
    assert_int_equal(
        put(s, "parties", "{\"id\":\"9900000000002\",\"name\":\"VNB B\",\"role\":\"vnb\"}"), 0);
    assert_int_equal(
        put(s, "parties", "{\"id\":\"9900000000003\",\"name\":\"LF\",\"role\":\"lf\"}"), 0);
    assert_int_equal(
        put(s, "segments",
            "{\"id\":\"A\",\"name\":\"a\",\"level\":\"substation\",\"vnb\":\"9900000000001\"}"),
        0);
    assert_int_equal(put(s, "segments",
                         "{\"id\":\"A.T1\",\"name\":\"t\",\"level\":\"transformer\",\"parent\":"
                         "\"A\",\"vnb\":\"9900000000001\"}"),
                     0);
    assert_int_equal(put(s, "segments",
                         "{\"id\":\"A.T1.F1\",\"name\":\"f\",\"level\":\"feeder\",\"parent\":\"A."
                         "T1\",\"vnb\":\"9900000000001\"}"),
                     0);
    assert_int_equal(
        put(s, "segments",
            "{\"id\":\"B\",\"name\":\"b\",\"level\":\"substation\",\"vnb\":\"9900000000002\"}"),
        0);
    assert_int_equal(
        put(s, "gwas",
            "{\"id\":\"G\",\"name\":\"g\",\"endpoint\":\"https://g\",\"max_concurrent\":4}"),
        0);
    assert_int_equal(
        put(s, "smgws", "{\"id\":\"EABC0000000001\",\"gwa\":\"G\",\"segment\":\"A.T1.F1\"}"), 0);
    assert_int_equal(
        put(s, "devices",
            "{\"id\":\"D1\",\"smgw\":\"EABC0000000001\",\"kind\":\"steuerbox\",\"driver\":\"lpc-"
            "mqtt\",\"failsafe_limit_w\":4200,\"failsafe_duration_s\":7200}"),
        0);
    for (int i = 0; i < 5; i++) {
        char b[512];
        snprintf(b, sizeof b,
                 "{\"id\":\"I%d\",\"device\":\"D1\",\"output\":%d,\"kind\":\"%s\","
                 "\"direction\":\"consumption\",\"rated_power_w\":%d,\"sec14a\":%s,"
                 "\"segment\":\"%s\"}",
                 i, i, i % 2 ? "wallbox" : "heat_pump", 9000 + i, i % 2 ? "true" : "false",
                 i < 2 ? "A.T1.F1" : (i < 4 ? "A.T1" : "B"));
        assert_int_equal(put(s, "installations", b), 0);
    }
    assert_int_equal(put(s, "assignments",
                         "{\"id\":\"x1\",\"party\":\"9900000000003\",\"installation\":\"I1\","
                         "\"rights\":[\"read\",\"control\"]}"),
                     0);
    assert_int_equal(put(s, "assignments",
                         "{\"id\":\"x4\",\"party\":\"9900000000003\",\"installation\":\"I4\","
                         "\"rights\":[\"read\"]}"),
                     0);
}

static void test_migrations_and_schema(void **state)
{
    struct store *s = *state;
    sqlite3 *db;
    assert_int_equal(store_schema_version(s), store_sqlite_nmigrations);
    assert_int_equal(store_ping(s), 0);
    /* Every descriptor field is a column, and every column a field. */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    for (size_t k = 0; k < REG_NKINDS; k++) {
        char sql[128];
        sqlite3_stmt *st;
        size_t cols = 0;
        snprintf(sql, sizeof sql, "SELECT name FROM pragma_table_info('%s')", reg_kinds[k].plural);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(st, 0);
            if (reg_field(&reg_kinds[k], name) == NULL)
                fail_msg("column %s.%s has no descriptor field", reg_kinds[k].plural, name);
            cols++;
        }
        sqlite3_finalize(st);
        assert_int_equal(cols, reg_kinds[k].nfields);
    }
    sqlite3_close(db);
    /* Reopening applies nothing new. */
    store_close(s);
    *state = s = open_store();
    assert_int_equal(store_schema_version(s), store_sqlite_nmigrations);
}

static void test_refuses_newer_and_foreign(void **state)
{
    struct store *s2 = NULL;
    sqlite3 *db;
    char err[256], other[160];
    (void)state;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "INSERT INTO schema_migrations VALUES (999, 0)", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(path, &opts, &s2, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "newer"));
    assert_null(s2);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "DELETE FROM schema_migrations WHERE version = 999", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    snprintf(other, sizeof other, "%s/foreign.db", dir);
    assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "PRAGMA application_id = 1234; CREATE TABLE t(x)", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(other, &opts, &s2, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "not a clsm database"));

    assert_int_equal(store_open("postgresql://db/clsm", &opts, &s2, err, sizeof err), -ENOTSUP);
    assert_int_equal(store_open("/proc/nope/clsm.db", &opts, &s2, err, sizeof err) < 0, 1);
}

static void test_crud(void **state)
{
    struct store *s = *state;
    json_t *o = NULL;
    populate(s);
    assert_int_equal(store_reg_get(s, K("installations"), "I1", &ALL, &o), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "rated_power_w")), 9001);
    assert_true(json_is_true(json_object_get(o, "sec14a")));
    assert_true(json_is_null(json_object_get(o, "energy_manager")));
    assert_true(json_is_string(json_object_get(o, "created_at")));
    json_object_set_new(o, "rated_power_w", json_integer(11000));
    assert_int_equal(store_reg_update(s, K("installations"), o), 0);
    json_decref(o);
    assert_int_equal(store_reg_get(s, K("installations"), "I1", &ALL, &o), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "rated_power_w")), 11000);
    json_object_set_new(o, "id", json_string("nope"));
    assert_int_equal(store_reg_update(s, K("installations"), o), -ENOENT);
    json_decref(o);
    assert_int_equal(store_reg_get(s, K("installations"), "nope", &ALL, &o), -ENOENT);
    assert_null(o);

    /* Duplicate id, duplicate (device, output). */
    assert_int_equal(
        put(s, "parties", "{\"id\":\"9900000000001\",\"name\":\"again\",\"role\":\"vnb\"}"),
        -EEXIST);
    assert_int_equal(
        put(s, "installations",
            "{\"id\":\"I9\",\"device\":\"D1\",\"output\":0,\"kind\":\"pv\",\"direction\":"
            "\"production\",\"rated_power_w\":1,\"sec14a\":false,\"segment\":\"B\"}"),
        -EEXIST);
    /* Referenced rows cannot be deleted; unreferenced ones can. */
    assert_int_equal(store_reg_delete(s, K("parties"), "9900000000001"), -EBUSY);
    assert_int_equal(store_reg_delete(s, K("segments"), "A.T1"), -EBUSY);
    assert_int_equal(store_reg_delete(s, K("assignments"), "x4"), 0);
    assert_int_equal(store_reg_delete(s, K("assignments"), "x4"), -ENOENT);
    assert_int_equal(store_reg_delete(s, K("installations"), "I4"), 0);
    /* A reference to a missing row is refused by the database as well. */
    assert_int_equal(
        put(s, "smgws", "{\"id\":\"EABC0000000009\",\"gwa\":\"nope\",\"segment\":\"A\"}"), -EBUSY);
}

static void test_upsert(void **state)
{
    struct store *s = *state;
    json_t *o = json_loads("{\"id\":\"9900000000009\",\"name\":\"n1\",\"role\":\"msb\"}", 0, NULL),
           *g;
    int created = -1;
    assert_int_equal(store_reg_upsert(s, K("parties"), o, &created), 0);
    assert_int_equal(created, 1);
    json_object_set_new(o, "name", json_string("n2"));
    assert_int_equal(store_reg_upsert(s, K("parties"), o, &created), 0);
    assert_int_equal(created, 0);
    assert_int_equal(store_reg_get(s, K("parties"), "9900000000009", &ALL, &g), 0);
    assert_string_equal(json_string_value(json_object_get(g, "name")), "n2");
    json_decref(g);
    json_decref(o);
}

static size_t list_ids(struct store *s, struct store_query *q, char *out, size_t len)
{
    json_t *items, *it;
    int more;
    size_t i, n = 0;
    assert_int_equal(store_reg_list(s, q, &items, &more), 0);
    out[0] = '\0';
    json_array_foreach(items, i, it) n += (size_t)snprintf(
        out + n, len - n, "%s%s", i ? "," : "", json_string_value(json_object_get(it, "id")));
    size_t count = json_array_size(items);
    json_decref(items);
    return count;
}

static void test_list_filters_scopes(void **state)
{
    struct store *s = *state;
    struct store_query q;
    char ids[512];
    json_t *v;
    populate(s);

    memset(&q, 0, sizeof q);
    q.kind = K("installations");
    q.scope = ALL;
    q.limit = 100;
    list_ids(s, &q, ids, sizeof ids);
    assert_string_equal(ids, "I0,I1,I2,I3,I4");

    /* Segment filters include child segments unless exact. */
    q.filters[0].field = reg_field(q.kind, "segment");
    q.filters[0].value = v = json_string("A");
    q.nfilters = 1;
    list_ids(s, &q, ids, sizeof ids);
    assert_string_equal(ids, "I0,I1,I2,I3");
    q.exact = 1;
    list_ids(s, &q, ids, sizeof ids);
    assert_string_equal(ids, "");
    q.exact = 0;
    json_decref(v);

    q.filters[0].field = reg_field(q.kind, "sec14a");
    q.filters[0].value = json_true();
    list_ids(s, &q, ids, sizeof ids);
    assert_string_equal(ids, "I1,I3");
    q.filters[1].field = reg_field(q.kind, "kind");
    q.filters[1].value = v = json_string("heat_pump");
    q.nfilters = 2;
    list_ids(s, &q, ids, sizeof ids);
    assert_string_equal(ids, "");
    json_decref(v);
    q.nfilters = 0;

    /* Scopes: a VNB sees its segments' installations; a supplier its
     * assignments; nobody else anything. */
    q.scope = (struct store_scope){SCOPE_VNB, NULL, "9900000000001"};
    list_ids(s, &q, ids, sizeof ids);
    assert_string_equal(ids, "I0,I1,I2,I3");
    q.scope = (struct store_scope){SCOPE_VNB, NULL, "9900000000002"};
    list_ids(s, &q, ids, sizeof ids);
    assert_string_equal(ids, "I4");
    q.scope = (struct store_scope){SCOPE_ASSIGNED, NULL, "9900000000003"};
    list_ids(s, &q, ids, sizeof ids);
    assert_string_equal(ids, "I1,I4");
    q.scope = (struct store_scope){SCOPE_NONE, NULL, "9900000000003"};
    list_ids(s, &q, ids, sizeof ids);
    assert_string_equal(ids, "");

    json_t *o = NULL;
    struct store_scope vb = {SCOPE_VNB, NULL, "9900000000002"};
    assert_int_equal(store_reg_get(s, K("installations"), "I1", &vb, &o), -ENOENT);
    assert_int_equal(store_reg_get(s, K("installations"), "I4", &vb, &o), 0);
    json_decref(o);
    struct store_scope self = {SCOPE_FIELD, "id", "9900000000003"};
    q.kind = K("parties");
    q.scope = self;
    list_ids(s, &q, ids, sizeof ids);
    assert_string_equal(ids, "9900000000003");
    q.kind = K("assignments");
    q.scope = (struct store_scope){SCOPE_VNB, NULL, "9900000000002"};
    list_ids(s, &q, ids, sizeof ids);
    assert_string_equal(ids, "x4");
    q.kind = K("segments");
    q.scope = (struct store_scope){SCOPE_VNB, NULL, "9900000000001"};
    list_ids(s, &q, ids, sizeof ids);
    assert_string_equal(ids, "A,A.T1,A.T1.F1");
    q.kind = K("gwas");
    list_ids(s, &q, ids, sizeof ids);
    assert_string_equal(ids, ""); /* a scope that does not apply shows nothing */
}

static void test_pagination(void **state)
{
    struct store *s = *state;
    struct store_query q;
    json_t *items;
    int more;
    populate(s);
    memset(&q, 0, sizeof q);
    q.kind = K("installations");
    q.scope = ALL;
    q.limit = 2;
    assert_int_equal(store_reg_list(s, &q, &items, &more), 0);
    assert_int_equal(json_array_size(items), 2);
    assert_true(more);
    json_decref(items);
    q.after = "I3";
    assert_int_equal(store_reg_list(s, &q, &items, &more), 0);
    assert_int_equal(json_array_size(items), 1);
    assert_false(more);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "id")), "I4");
    json_decref(items);
}

static void test_transactions(void **state)
{
    struct store *s = *state;
    json_t *o = NULL;
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_begin(s), -EBUSY);
    assert_int_equal(put(s, "parties", "{\"id\":\"9900000000007\",\"name\":\"t\",\"role\":\"lf\"}"),
                     0);
    assert_int_equal(store_rollback(s), 0);
    assert_int_equal(store_reg_get(s, K("parties"), "9900000000007", &ALL, &o), -ENOENT);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(put(s, "parties", "{\"id\":\"9900000000007\",\"name\":\"t\",\"role\":\"lf\"}"),
                     0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_reg_get(s, K("parties"), "9900000000007", &ALL, &o), 0);
    json_decref(o);
    /* Committed data survives closing and reopening. */
    store_close(s);
    *state = s = open_store();
    assert_int_equal(store_reg_get(s, K("parties"), "9900000000007", &ALL, &o), 0);
    json_decref(o);
}

static void test_tokens_and_light(void **state)
{
    struct store *s = *state;
    uint8_t h1[TOKEN_HASH_LEN], h2[TOKEN_HASH_LEN];
    struct store_principal p;
    json_t *items, *seg;
    populate(s);
    token_hash("one", 3, h1);
    token_hash("two", 3, h2);
    assert_int_equal(store_token_add(s, "tok_1", "9900000000003", h1, "erp", 1000), 0);
    assert_int_equal(store_token_add(s, "tok_1", "9900000000003", h2, NULL, 1000), -EEXIST);
    assert_int_equal(store_token_add(s, "tok_2", "9900000000099", h2, NULL, 1000), -EBUSY);
    assert_int_equal(store_token_lookup(s, h1, &p), 0);
    assert_string_equal(p.party, "9900000000003");
    assert_string_equal(p.role, "lf");
    assert_int_equal(store_token_lookup(s, h2, &p), -ENOENT);
    assert_int_equal(store_token_list(s, "9900000000003", &items), 0);
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "label")),
                        "erp");
    assert_null(json_object_get(json_array_get(items, 0), "hash"));
    json_decref(items);
    assert_int_equal(store_token_delete(s, "9900000000001", "tok_1"), -ENOENT);
    assert_int_equal(store_token_delete(s, "9900000000003", "tok_1"), 0);
    assert_int_equal(store_token_lookup(s, h1, &p), -ENOENT);

    assert_int_equal(store_segment_set_light(s, "A.T1", "red", "9900000000001", "storm", 5000), 0);
    assert_int_equal(store_segment_set_light(s, "nope", "red", "x", NULL, 5000), -ENOENT);
    assert_int_equal(store_segment_set_light(s, "A.T1", "purple", "x", NULL, 5000), -EINVAL);
    assert_int_equal(store_reg_get(s, K("segments"), "A.T1", &ALL, &seg), 0);
    assert_string_equal(json_string_value(json_object_get(seg, "traffic_light")), "red");
    assert_string_equal(json_string_value(json_object_get(seg, "light_since")),
                        "1970-01-01T00:00:05.000Z");
    assert_string_equal(json_string_value(json_object_get(seg, "light_reason")), "storm");
    json_decref(seg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_and_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_newer_and_foreign, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upsert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filters_scopes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagination, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens_and_light, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
