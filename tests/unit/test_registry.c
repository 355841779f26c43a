/*
 * test_registry.c - validation of entities against the registry
 * descriptors, as a table of cases, plus the id formats.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "registry/registry.h"

/* Entities that references may point at, by "<plural>/<id>". */
static json_t *world;

static int fake_get(void *arg, const struct reg_kind *k, const char *id, json_t **obj)
{
    char key[200];
    (void)arg;
    snprintf(key, sizeof key, "%s/%s", k->plural, id);
    json_t *o = json_object_get(world, key);
    if (o == NULL)
        return -ENOENT;
    *obj = json_incref(o);
    return 0;
}

static const struct reg_lookup lk = {fake_get, NULL};

static int setup(void **state)
{
    (void)state;
    world = json_pack(
        "{s:{s:s,s:s}, s:{s:s,s:s}, s:{s:s,s:n}, s:{s:s,s:s}, s:{s:s,s:s}, s:{s:s}, s:{s:s}, "
        "s:{s:s}, s:{s:s}}",
        "parties/9900000000001", "id", "9900000000001", "role", "vnb", "parties/9900000000002",
        "id", "9900000000002", "role", "lf", "segments/S1", "id", "S1", "parent", "segments/S2",
        "id", "S2", "parent", "S1", "segments/S3", "id", "S3", "parent", "S2", "gwas/G1", "id",
        "G1", "smgws/EABC0012345678", "id", "EABC0012345678", "devices/D1", "id", "D1",
        "installations/I1", "id", "I1");
    return world ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(world);
    return 0;
}

struct vcase {
    const char *kind;
    const char *in;
    const char *current; /* JSON of the stored entity, or NULL */
    const char *url_id;
    int patch;
    int status;          /* 0: valid */
    const char *pointer; /* expected error pointer */
};

#define INST "\"id\":\"I2\",\"device\":\"D1\",\"segment\":\"S3\""
static const struct vcase cases[] = {
    /* parties */
    {"parties", "{\"id\":\"9900000000003\",\"name\":\"X\",\"role\":\"msb\"}", NULL, NULL, 0, 0,
     NULL},
    {"parties", "{\"id\":\"990000000000\",\"name\":\"X\",\"role\":\"msb\"}", NULL, NULL, 0, 422,
     "/id"},
    {"parties", "{\"id\":\"99000000000a3\",\"name\":\"X\",\"role\":\"msb\"}", NULL, NULL, 0, 422,
     "/id"},
    {"parties", "{\"id\":\"9900000000003\",\"name\":\"\",\"role\":\"msb\"}", NULL, NULL, 0, 422,
     "/name"},
    {"parties", "{\"id\":\"9900000000003\",\"name\":\"a\\u0007b\",\"role\":\"msb\"}", NULL, NULL, 0,
     422, "/name"},
    {"parties", "{\"id\":\"9900000000003\",\"name\":\"X\",\"role\":\"king\"}", NULL, NULL, 0, 422,
     "/role"},
    {"parties", "{\"id\":\"9900000000003\",\"name\":\"X\"}", NULL, NULL, 0, 422, "/role"},
    {"parties", "{\"id\":\"9900000000003\",\"name\":\"X\",\"role\":\"msb\",\"x\":1}", NULL, NULL, 0,
     422, "/x"},
    {"parties", "{\"id\":\"9900000000003\",\"name\":7,\"role\":\"msb\"}", NULL, NULL, 0, 422,
     "/name"},
    {"parties", "[]", NULL, NULL, 0, 422, ""},
    {"parties", "{\"name\":\"X\",\"role\":\"msb\"}", NULL, "9900000000003", 0, 0, NULL},
    {"parties", "{\"id\":\"9900000000004\",\"name\":\"X\",\"role\":\"msb\"}", NULL, "9900000000003",
     0, 422, "/id"},
    {"parties", "{\"name\":\"X\",\"role\":\"msb\",\"created_at\":\"whatever\"}", NULL,
     "9900000000003", 0, 0, NULL},
    /* segments: references, roles, cycles, read-only light */
    {"segments",
     "{\"id\":\"S9\",\"name\":\"n\",\"level\":\"feeder\",\"vnb\":\"9900000000001\",\"parent\":"
     "\"S3\"}",
     NULL, NULL, 0, 0, NULL},
    {"segments", "{\"id\":\"S9\",\"name\":\"n\",\"level\":\"feeder\",\"vnb\":\"9900000000002\"}",
     NULL, NULL, 0, 422, "/vnb"},
    {"segments", "{\"id\":\"S9\",\"name\":\"n\",\"level\":\"feeder\",\"vnb\":\"9900000000009\"}",
     NULL, NULL, 0, 422, "/vnb"},
    {"segments",
     "{\"id\":\"S9\",\"name\":\"n\",\"level\":\"feeder\",\"vnb\":\"9900000000001\",\"parent\":"
     "\"nope\"}",
     NULL, NULL, 0, 422, "/parent"},
    {"segments", "{\"id\":\"S9\",\"name\":\"n\",\"level\":\"branch\",\"vnb\":\"9900000000001\"}",
     NULL, NULL, 0, 422, "/level"},
    {"segments",
     "{\"name\":\"n\",\"level\":\"feeder\",\"vnb\":\"9900000000001\",\"parent\":\"S3\"}", NULL,
     "S1", 0, 422, "/parent"},
    {"segments",
     "{\"name\":\"n\",\"level\":\"feeder\",\"vnb\":\"9900000000001\",\"parent\":\"S1\"}", NULL,
     "S1", 0, 422, "/parent"},
    {"segments",
     "{\"id\":\"S9\",\"name\":\"n\",\"level\":\"feeder\",\"vnb\":\"9900000000001\",\"traffic_"
     "light\":\"red\"}",
     NULL, NULL, 0, 422, "/traffic_light"},
    {"segments",
     "{\"id\":\"S9\",\"name\":\"n\",\"level\":\"feeder\",\"vnb\":\"9900000000001\",\"traffic_"
     "light\":\"green\"}",
     NULL, NULL, 0, 0, NULL},
    {"segments", "{\"traffic_light\":\"green\"}",
     "{\"id\":\"S2\",\"name\":\"n\",\"level\":\"feeder\",\"vnb\":\"9900000000001\",\"parent\":"
     "\"S1\",\"traffic_light\":\"red\"}",
     "S2", 1, 422, "/traffic_light"},
    {"segments", "{\"traffic_light\":\"red\",\"name\":\"m\"}",
     "{\"id\":\"S2\",\"name\":\"n\",\"level\":\"feeder\",\"vnb\":\"9900000000001\",\"parent\":"
     "\"S1\",\"traffic_light\":\"red\"}",
     "S2", 1, 0, NULL},
    {"segments",
     "{\"id\":\"bad id\",\"name\":\"n\",\"level\":\"feeder\",\"vnb\":\"9900000000001\"}", NULL,
     NULL, 0, 422, "/id"},
    /* gwas */
    {"gwas", "{\"id\":\"G2\",\"name\":\"g\",\"endpoint\":\"https://gwa.example:9443/api\"}", NULL,
     NULL, 0, 0, NULL},
    {"gwas", "{\"id\":\"G2\",\"name\":\"g\",\"endpoint\":\"http://gwa.example\"}", NULL, NULL, 0,
     422, "/endpoint"},
    {"gwas", "{\"id\":\"G2\",\"name\":\"g\",\"endpoint\":\"https://gwa example\"}", NULL, NULL, 0,
     422, "/endpoint"},
    {"gwas", "{\"id\":\"G2\",\"name\":\"g\",\"endpoint\":\"https://g\",\"max_concurrent\":0}", NULL,
     NULL, 0, 422, "/max_concurrent"},
    {"gwas", "{\"id\":\"G2\",\"name\":\"g\",\"endpoint\":\"https://g\",\"max_concurrent\":10001}",
     NULL, NULL, 0, 422, "/max_concurrent"},
    {"gwas", "{\"id\":\"G2\",\"name\":\"g\",\"endpoint\":\"https://g\",\"max_concurrent\":1.5}",
     NULL, NULL, 0, 422, "/max_concurrent"},
    /* smgws */
    {"smgws", "{\"id\":\"EXYZ0000000001\",\"gwa\":\"G1\",\"segment\":\"S3\"}", NULL, NULL, 0, 0,
     NULL},
    {"smgws", "{\"id\":\"Exyz0000000001\",\"gwa\":\"G1\",\"segment\":\"S3\"}", NULL, NULL, 0, 422,
     "/id"},
    {"smgws", "{\"id\":\"EXYZ000000001\",\"gwa\":\"G1\",\"segment\":\"S3\"}", NULL, NULL, 0, 422,
     "/id"},
    {"smgws", "{\"id\":\"EXYZ0000000001\",\"gwa\":\"G7\",\"segment\":\"S3\"}", NULL, NULL, 0, 422,
     "/gwa"},
    {"smgws",
     "{\"id\":\"EXYZ0000000001\",\"gwa\":\"G1\",\"segment\":\"S3\",\"cert_fingerprint\":\"AB\"}",
     NULL, NULL, 0, 422, "/cert_fingerprint"},
    /* devices */
    {"devices", "{\"id\":\"D2\",\"smgw\":\"EABC0012345678\",\"kind\":\"steuerbox\"}", NULL, NULL, 0,
     0, NULL},
    {"devices", "{\"id\":\"D2\",\"smgw\":\"EABC0012345678\",\"kind\":\"toaster\"}", NULL, NULL, 0,
     422, "/kind"},
    {"devices",
     "{\"id\":\"D2\",\"smgw\":\"EABC0012345678\",\"kind\":\"steuerbox\",\"driver\":\"modbus\"}",
     NULL, NULL, 0, 422, "/driver"},
    {"devices",
     "{\"id\":\"D2\",\"smgw\":\"EABC0012345678\",\"kind\":\"steuerbox\",\"failsafe_duration_s\":"
     "86401}",
     NULL, NULL, 0, 422, "/failsafe_duration_s"},
    {"devices",
     "{\"id\":\"D2\",\"smgw\":\"EABC0012345678\",\"kind\":\"steuerbox\",\"failsafe_limit_w\":-1}",
     NULL, NULL, 0, 422, "/failsafe_limit_w"},
    /* installations: kinds, directions, §14a */
    {"installations",
     "{" INST ",\"kind\":\"heat_pump\",\"direction\":\"consumption\",\"rated_power_w\":9000,"
     "\"sec14a\":true}",
     NULL, NULL, 0, 0, NULL},
    {"installations",
     "{" INST ",\"kind\":\"heat_pump\",\"direction\":\"production\",\"rated_power_w\":9000}", NULL,
     NULL, 0, 422, "/direction"},
    {"installations",
     "{" INST ",\"kind\":\"pv\",\"direction\":\"consumption\",\"rated_power_w\":9000}", NULL, NULL,
     0, 422, "/direction"},
    {"installations",
     "{" INST ",\"kind\":\"wallbox\",\"direction\":\"bidirectional\",\"rated_power_w\":11000,"
     "\"sec14a\":true}",
     NULL, NULL, 0, 0, NULL},
    {"installations",
     "{" INST
     ",\"kind\":\"battery\",\"direction\":\"production\",\"rated_power_w\":5000,\"sec14a\":true}",
     NULL, NULL, 0, 422, "/sec14a"},
    {"installations",
     "{" INST
     ",\"kind\":\"wallbox\",\"direction\":\"consumption\",\"rated_power_w\":4200,\"sec14a\":true}",
     NULL, NULL, 0, 422, "/sec14a"},
    {"installations",
     "{" INST
     ",\"kind\":\"wallbox\",\"direction\":\"consumption\",\"rated_power_w\":4201,\"sec14a\":true}",
     NULL, NULL, 0, 0, NULL},
    {"installations",
     "{" INST ",\"kind\":\"wallbox\",\"direction\":\"consumption\",\"rated_power_w\":0}", NULL,
     NULL, 0, 422, "/rated_power_w"},
    {"installations",
     "{" INST ",\"kind\":\"wallbox\",\"direction\":\"consumption\",\"rated_power_w\":100000001}",
     NULL, NULL, 0, 422, "/rated_power_w"},
    {"installations",
     "{" INST ",\"kind\":\"wallbox\",\"direction\":\"consumption\",\"rated_power_w\":\"11000\"}",
     NULL, NULL, 0, 422, "/rated_power_w"},
    {"installations",
     "{" INST
     ",\"kind\":\"wallbox\",\"direction\":\"consumption\",\"rated_power_w\":11000,\"output\":16}",
     NULL, NULL, 0, 422, "/output"},
    {"installations",
     "{" INST ",\"kind\":\"wallbox\",\"direction\":\"consumption\",\"rated_power_w\":11000,"
     "\"sec14a\":\"yes\"}",
     NULL, NULL, 0, 422, "/sec14a"},
    {"installations",
     "{" INST ",\"kind\":\"wallbox\",\"direction\":\"consumption\",\"rated_power_w\":11000,"
     "\"metering_point\":\"DE0001234567890000000000000000001\"}",
     NULL, NULL, 0, 0, NULL},
    {"installations",
     "{" INST ",\"kind\":\"wallbox\",\"direction\":\"consumption\",\"rated_power_w\":11000,"
     "\"metering_point\":\"DE00012345\"}",
     NULL, NULL, 0, 422, "/metering_point"},
    {"installations",
     "{" INST ",\"kind\":\"wallbox\",\"direction\":\"consumption\",\"rated_power_w\":11000,"
     "\"energy_manager\":\"EM 1\"}",
     NULL, NULL, 0, 422, "/energy_manager"},
    {"installations",
     "{\"id\":\"I2\",\"device\":\"D9\",\"segment\":\"S3\",\"kind\":\"wallbox\",\"direction\":"
     "\"consumption\",\"rated_power_w\":11000}",
     NULL, NULL, 0, 422, "/device"},
    /* assignments: derived id, roles, sets */
    {"assignments",
     "{\"party\":\"9900000000002\",\"installation\":\"I1\",\"rights\":[\"control\",\"read\"]}",
     NULL, NULL, 0, 0, NULL},
    {"assignments", "{\"party\":\"9900000000001\",\"installation\":\"I1\",\"rights\":[\"read\"]}",
     NULL, NULL, 0, 422, "/party"},
    {"assignments", "{\"party\":\"9900000000002\",\"installation\":\"I1\",\"rights\":[]}", NULL,
     NULL, 0, 422, "/rights"},
    {"assignments",
     "{\"party\":\"9900000000002\",\"installation\":\"I1\",\"rights\":[\"read\",\"read\"]}", NULL,
     NULL, 0, 422, "/rights"},
    {"assignments", "{\"party\":\"9900000000002\",\"installation\":\"I1\",\"rights\":[\"write\"]}",
     NULL, NULL, 0, 422, "/rights"},
    {"assignments", "{\"party\":\"9900000000002\",\"installation\":\"I1\",\"rights\":\"read\"}",
     NULL, NULL, 0, 422, "/rights"},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct vcase *c = &cases[i];
        const struct reg_kind *k = reg_kind_by_plural(c->kind);
        json_t *in = json_loads(c->in, JSON_DECODE_ANY, NULL), *out = NULL;
        json_t *cur = c->current ? json_loads(c->current, 0, NULL) : NULL;
        struct reg_error err;
        memset(&err, 0, sizeof err);
        if (in == NULL || k == NULL || (c->current && cur == NULL))
            fail_msg("case %zu: bad fixture", i);
        int rc = reg_validate(k, in, cur, c->url_id, c->patch, &lk, &out, &err);
        if (c->status == 0 && rc != 0)
            fail_msg("case %zu (%s): expected valid, got %d %s: %s", i, c->kind, err.status,
                     err.pointer, err.detail);
        if (c->status != 0) {
            if (rc == 0)
                fail_msg("case %zu (%s): expected %d %s, got valid", i, c->kind, c->status,
                         c->pointer);
            if (err.status != c->status || strcmp(err.pointer, c->pointer) != 0)
                fail_msg("case %zu (%s): expected %d %s, got %d %s (%s)", i, c->kind, c->status,
                         c->pointer, err.status, err.pointer, err.detail);
            assert_null(out);
            assert_true(strlen(err.detail) > 0);
        }
        json_decref(in);
        json_decref(cur);
        json_decref(out);
    }
}

static void test_normalised_output(void **state)
{
    const struct reg_kind *k = reg_kind_by_plural("assignments");
    json_t *in = json_loads("{\"party\":\"9900000000002\",\"installation\":\"I1\","
                            "\"rights\":[\"control\",\"read\"]}",
                            0, NULL);
    json_t *out;
    struct reg_error err;
    (void)state;
    assert_int_equal(reg_validate(k, in, NULL, NULL, 0, &lk, &out, &err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "id")), "9900000000002:I1");
    json_t *r = json_object_get(out, "rights");
    assert_string_equal(json_string_value(json_array_get(r, 0)), "read");
    assert_string_equal(json_string_value(json_array_get(r, 1)), "control");
    assert_null(json_object_get(out, "created_at"));
    json_decref(in);
    json_decref(out);

    k = reg_kind_by_plural("devices");
    in = json_loads("{\"id\":\"D2\",\"smgw\":\"EABC0012345678\",\"kind\":\"steuerbox\"}", 0, NULL);
    assert_int_equal(reg_validate(k, in, NULL, NULL, 0, &lk, &out, &err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "driver")), "lpc-mqtt");
    assert_int_equal(json_integer_value(json_object_get(out, "failsafe_limit_w")), 4200);
    assert_int_equal(json_integer_value(json_object_get(out, "failsafe_duration_s")), 7200);
    assert_true(json_is_null(json_object_get(out, "firmware")));
    json_decref(in);
    json_decref(out);
}

static void test_patch_removes_optional(void **state)
{
    const struct reg_kind *k = reg_kind_by_plural("devices");
    json_t *cur = json_loads("{\"id\":\"D2\",\"smgw\":\"EABC0012345678\",\"kind\":\"steuerbox\","
                             "\"firmware\":\"1.0\",\"driver\":\"lpc-mqtt\"}",
                             0, NULL);
    json_t *in = json_loads("{\"firmware\":null,\"kind\":\"inverter\"}", 0, NULL), *out;
    struct reg_error err;
    (void)state;
    assert_int_equal(reg_validate(k, in, cur, "D2", 1, &lk, &out, &err), 0);
    assert_true(json_is_null(json_object_get(out, "firmware")));
    assert_string_equal(json_string_value(json_object_get(out, "kind")), "inverter");
    assert_string_equal(json_string_value(json_object_get(out, "smgw")), "EABC0012345678");
    json_decref(in);
    json_decref(cur);
    json_decref(out);
}

static void test_lengths_in_characters(void **state)
{
    const struct reg_kind *k = reg_kind_by_plural("parties");
    char name[700], body[800];
    struct reg_error err;
    json_t *in, *out;
    (void)state;
    for (int i = 0; i < 200; i++)
        memcpy(name + 2 * i, "\xc3\xa4", 2); /* 200 x 'ä': 400 bytes, 200 characters */
    name[400] = '\0';
    snprintf(body, sizeof body, "{\"id\":\"9900000000003\",\"name\":\"%s\",\"role\":\"lf\"}", name);
    in = json_loads(body, 0, NULL);
    assert_int_equal(reg_validate(k, in, NULL, NULL, 0, &lk, &out, &err), 0);
    json_decref(in);
    json_decref(out);
    snprintf(body, sizeof body,
             "{\"id\":\"9900000000003\",\"name\":\"%s\xc3\xa4\",\"role\":\"lf\"}", name);
    in = json_loads(body, 0, NULL);
    assert_int_equal(reg_validate(k, in, NULL, NULL, 0, &lk, &out, &err), -EINVAL);
    assert_string_equal(err.pointer, "/name");
    json_decref(in);
}

static void test_derived_id_too_long(void **state)
{
    const struct reg_kind *k = reg_kind_by_plural("assignments");
    char inst[100], body[300];
    struct reg_error err;
    json_t *in, *out;
    (void)state;
    memset(inst, 'i', 90);
    inst[90] = '\0';
    char key[120];
    snprintf(key, sizeof key, "installations/%s", inst);
    json_object_set_new(world, key, json_pack("{s:s}", "id", inst));
    snprintf(body, sizeof body,
             "{\"party\":\"9900000000002\",\"installation\":\"%s\",\"rights\":[\"read\"]}", inst);
    in = json_loads(body, 0, NULL);
    assert_int_equal(reg_validate(k, in, NULL, NULL, 0, &lk, &out, &err), -EINVAL);
    assert_string_equal(err.pointer, "/id");
    assert_non_null(strstr(err.detail, "96"));
    json_decref(in);
}

static void test_ids(void **state)
{
    (void)state;
    assert_true(reg_is_party_id("9900000000001"));
    assert_false(reg_is_party_id("99000000000011"));
    assert_true(reg_is_smgw_id("EABC0012345678"));
    assert_false(reg_is_smgw_id("1ABC0012345678"));
    assert_false(reg_is_smgw_id("EAB10012345678"));
    assert_true(reg_is_generic_id("UW-MUS.T1.F1"));
    assert_true(reg_is_generic_id("9900000000002:HP-1"));
    assert_false(reg_is_generic_id("-x"));
    assert_false(reg_is_generic_id(""));
    assert_false(reg_is_generic_id("a/b"));
    char longid[98];
    memset(longid, 'a', 97);
    longid[97] = '\0';
    assert_false(reg_is_generic_id(longid));
    longid[96] = '\0';
    assert_true(reg_is_generic_id(longid));
}

static void test_value_from_text(void **state)
{
    const struct reg_kind *k = reg_kind_by_plural("installations");
    char msg[128];
    (void)state;
    json_t *v = reg_value_from_text(reg_field(k, "sec14a"), "TRUE", msg, sizeof msg);
    assert_true(json_is_true(v));
    json_decref(v);
    assert_null(reg_value_from_text(reg_field(k, "sec14a"), "ja", msg, sizeof msg));
    assert_non_null(strstr(msg, "sec14a"));
    v = reg_value_from_text(reg_field(k, "rated_power_w"), "-5", msg, sizeof msg);
    assert_int_equal(json_integer_value(v), -5);
    json_decref(v);
    assert_null(reg_value_from_text(reg_field(k, "rated_power_w"), "5kW", msg, sizeof msg));
    v = reg_value_from_text(reg_field(k, "kind"), "", msg, sizeof msg);
    assert_true(json_is_null(v));
    v = reg_value_from_text(reg_field(reg_kind_by_plural("assignments"), "rights"), "read|control",
                            msg, sizeof msg);
    assert_int_equal(json_array_size(v), 2);
    json_decref(v);
}

/* Kinds reference only kinds before them (the import order relies on it),
 * and every kind has an id field first. */
static void test_descriptor_invariants(void **state)
{
    (void)state;
    for (size_t i = 0; i < REG_NKINDS; i++) {
        const struct reg_kind *k = &reg_kinds[i];
        assert_int_equal(k->id, (int)i);
        assert_string_equal(k->fields[0].name, "id");
        assert_true(k->fields[0].flags & RF_KEY);
        for (size_t f = 0; f < k->nfields; f++)
            if (k->fields[f].type == RT_REF)
                assert_true(k->fields[f].ref <= k->id);
        assert_ptr_equal(reg_kind_by_plural(k->plural), k);
    }
    assert_null(reg_kind_by_plural("widgets"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_normalised_output),
        cmocka_unit_test(test_patch_removes_optional),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_lengths_in_characters),
        cmocka_unit_test(test_derived_id_too_long),
        cmocka_unit_test(test_value_from_text),
        cmocka_unit_test(test_descriptor_invariants),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
