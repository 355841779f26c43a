/*
 * test_csv.c - the CSV reader and the CSV-to-import conversion.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/csv.h"
#include "registry/csvimport.h"

struct collect {
    char out[2048];
    size_t n;
    size_t lines[16];
    size_t nrec;
};

static int collect(void *arg, size_t line, char **f, size_t n)
{
    struct collect *c = arg;
    if (c->nrec < 16)
        c->lines[c->nrec] = line;
    c->nrec++;
    for (size_t i = 0; i < n; i++)
        c->n += (size_t)snprintf(c->out + c->n, sizeof c->out - c->n, "%s%s", i ? "|" : "[", f[i]);
    c->n += (size_t)snprintf(c->out + c->n, sizeof c->out - c->n, "]");
    return 0;
}

static const struct csv_limits lim = {8, 16, 10};

static int run(const char *in, struct collect *c, char *msg)
{
    memset(c, 0, sizeof *c);
    return csv_parse(in, strlen(in), ',', &lim, collect, c, msg, 128);
}

static void test_well_formed(void **state)
{
    struct collect c;
    char msg[128];
    (void)state;
    assert_int_equal(run("a,b\r\n1,2\n\n\"x,y\",\"say \"\"hi\"\"\"\n", &c, msg), 0);
    assert_string_equal(c.out, "[a|b][1|2][x,y|say \"hi\"]");
    assert_int_equal(c.lines[2], 4);
    assert_int_equal(run("a,\n,b", &c, msg), 0);
    assert_string_equal(c.out, "[a|][|b]");
    assert_int_equal(run("\xef\xbb\xbfh\n\"multi\nline\",z\n", &c, msg), 0);
    assert_string_equal(c.out, "[h][multi\nline|z]");
    assert_int_equal(run("", &c, msg), 0);
    assert_int_equal(c.nrec, 0);
}

static void test_malformed(void **state)
{
    struct collect c;
    char msg[128];
    (void)state;
    assert_int_equal(run("a,\"b\n", &c, msg), -EINVAL);
    assert_non_null(strstr(msg, "unterminated"));
    assert_int_equal(run("a,b\"c\"\n", &c, msg), -EINVAL);
    assert_non_null(strstr(msg, "quote inside"));
    assert_int_equal(run("\"a\"b\n", &c, msg), -EINVAL);
    assert_non_null(strstr(msg, "after a closing quote"));
    assert_int_equal(run("a\rb\n", &c, msg), -EINVAL);
    assert_int_equal(csv_parse("a\0b", 3, ',', &lim, collect, &c, msg, sizeof msg), -EINVAL);
    assert_non_null(strstr(msg, "NUL"));
}

static void test_limits(void **state)
{
    struct collect c;
    char msg[128];
    (void)state;
    assert_int_equal(run("1,2,3,4,5,6,7,8,9\n", &c, msg), -E2BIG);
    assert_non_null(strstr(msg, "too many fields"));
    assert_int_equal(run("12345678901234567\n", &c, msg), -E2BIG);
    assert_non_null(strstr(msg, "too long"));
    assert_int_equal(run("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n", &c, msg), -E2BIG);
    assert_non_null(strstr(msg, "line 11"));
}

static void test_delimiter(void **state)
{
    (void)state;
    assert_int_equal(csv_guess_delimiter("a;b;c\n1,5;2;3", 13), ';');
    assert_int_equal(csv_guess_delimiter("a,b;c\n", 6), ',');
    assert_int_equal(csv_guess_delimiter("a\n", 2), ',');
}

static void test_to_import(void **state)
{
    const struct reg_kind *k = reg_kind_by_plural("installations");
    const char *csv = "id;device;kind;direction;rated_power_w;sec14a;output\n"
                      "HP-1;SB-1;heat_pump;consumption;9000;true;\n"
                      "WB-1;SB-1;wallbox;consumption;11000;0;1\n";
    json_t *doc;
    size_t *lines;
    char msg[256];
    (void)state;
    assert_int_equal(reg_csv_to_import(csv, strlen(csv), k, &doc, &lines, msg, sizeof msg), 0);
    json_t *items = json_object_get(doc, "installations");
    assert_int_equal(json_array_size(items), 2);
    json_t *a = json_array_get(items, 0), *b = json_array_get(items, 1);
    assert_int_equal(json_integer_value(json_object_get(a, "rated_power_w")), 9000);
    assert_true(json_is_true(json_object_get(a, "sec14a")));
    assert_null(json_object_get(a, "output")); /* empty cell: default applies */
    assert_true(json_is_false(json_object_get(b, "sec14a")));
    assert_int_equal(json_integer_value(json_object_get(b, "output")), 1);
    assert_int_equal(lines[0], 2);
    assert_int_equal(lines[1], 3);
    json_decref(doc);
    free(lines);
}

static void test_to_import_errors(void **state)
{
    const struct reg_kind *k = reg_kind_by_plural("installations");
    json_t *doc;
    size_t *lines;
    char msg[256];
    (void)state;
#define BAD(text, needle)                                                                         \
    do {                                                                                          \
        assert_int_equal(reg_csv_to_import(text, strlen(text), k, &doc, &lines, msg, sizeof msg), \
                         -EINVAL);                                                                \
        assert_non_null(strstr(msg, needle));                                                     \
        assert_null(doc);                                                                         \
    } while (0)
    BAD("id,colour\nx,red\n", "colour");
    BAD("id,created_at\nx,2026-01-01T00:00:00Z\n", "created_at");
    BAD("id,id\nx,y\n", "twice");
    BAD("id,rated_power_w\nx,lots\n", "line 2: rated_power_w");
    BAD("id,sec14a\nx,maybe\n", "sec14a");
    BAD("id,kind\nx\n", "line 2: 1 fields");
    BAD("", "no header");
    BAD("id\n\"x\n", "unterminated");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),      cmocka_unit_test(test_delimiter),
        cmocka_unit_test(test_to_import),   cmocka_unit_test(test_to_import_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
