/*
 * test_cosem.c - the COSEM-XML meter data document (meter/cosem.h): a
 * household document with electricity, heat, gas and water read back value
 * by value; OBIS codes; and a table of refused documents, each a valid one
 * with one thing changed, with the words the reason must contain. Attacks
 * on the XML parser (entity expansion, external entities, deep nesting,
 * oversize) are among them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "meter/cosem.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define NOW      INT64_C(1795888800000) /* 2026-11-28T18:00:00Z */

#define MP_E "DE0001234567890000000000000000001"
#define MP_W "DE0001234567890000000000000000002"

/* A document at NOW: one electricity point with a 15-minute profile of
 * energy taken, fed in and power taken over an hour; a water point with
 * one daily value. 'x' is inserted into the electricity profile's first
 * entry, 'head' before <MeterData> and the whole can be varied by replacing
 * pieces in the tests. */
static char *doc_with(const char *from, const char *to)
{
    static const char base[] =
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        "<MeterData xmlns='urn:clsm:cosem-xml:1' id='doc-1' smgw='EABC0000000001'"
        " created='2026-11-28T17:50:00Z'>\n"
        " <MeteringPoint id='" MP_E "' meter='1ESY1160000001' medium='electricity'>\n"
        "  <ProfileGeneric period='900'>\n"
        "   <CaptureObjects>\n"
        "    <CaptureObject index='1' obis='1-0:1.8.0' scaler='-1' unit='30'/>\n"
        "    <CaptureObject index='2' obis='1-0:2.8.0' scaler='-1' unit='30'/>\n"
        "    <CaptureObject index='3' obis='1-0:1.7.0' scaler='0' unit='27'/>\n"
        "   </CaptureObjects>\n"
        "   <Buffer>\n"
        "    <Entry time='2026-11-28T16:45:00Z'><Value index='1'>1000</Value>"
        "<Value index='2'>50</Value><Value index='3'>4200</Value></Entry>\n"
        "    <Entry time='2026-11-28T17:00:00Z' status='8'><Value index='1'>1010</Value>"
        "<Value index='2'>50</Value><Value index='3'>4100</Value></Entry>\n"
        "    <Entry time='2026-11-28T17:15:00Z'><Value index='1'>1021</Value>"
        "<Value index='2'>51</Value><Value index='3'>0</Value></Entry>\n"
        "    <Entry time='2026-11-28T17:30:00Z'><Value index='1'>1021</Value>"
        "<Value index='3'>0</Value></Entry>\n"
        "   </Buffer>\n"
        "  </ProfileGeneric>\n"
        " </MeteringPoint>\n"
        " <MeteringPoint id='" MP_W "' meter='3WAT0000001' medium='water'>\n"
        "  <!-- a daily reading -->\n"
        "  <ProfileGeneric period='86400'>\n"
        "   <CaptureObjects><CaptureObject index='1' obis='8-0:1.0.0' scaler='-3' unit='13'/>"
        "</CaptureObjects>\n"
        "   <Buffer><Entry time='2026-11-28T00:00:00Z'><Value index='1'>123456</Value></Entry>"
        "</Buffer>\n"
        "  </ProfileGeneric>\n"
        " </MeteringPoint>\n"
        "</MeterData>\n";
    const char *at = from ? strstr(base, from) : NULL;
    assert_true(from == NULL || at != NULL);
    size_t n = strlen(base) + (to ? strlen(to) : 0) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    if (at == NULL) {
        memcpy(out, base, sizeof base);
    } else {
        size_t pre = (size_t)(at - base), tl = strlen(to);
        memcpy(out, base, pre);
        memcpy(out + pre, to, tl);
        memcpy(out + pre + tl, at + strlen(from), strlen(at + strlen(from)) + 1);
    }
    return out;
}

static int parse(const char *text, struct cosem_doc *d, char *err, size_t errlen)
{
    return cosem_parse(text, strlen(text), NOW, d, err, errlen);
}

static void test_household_document(void **state)
{
    (void)state;
    char *text = doc_with(NULL, NULL), err[400];
    struct cosem_doc d;
    assert_int_equal(parse(text, &d, err, sizeof err), 0);
    assert_string_equal(d.id, "doc-1");
    assert_string_equal(d.smgw, "EABC0000000001");
    int64_t created;
    assert_int_equal(time_parse_ms("2026-11-28T17:50:00Z", &created), 0);
    assert_int_equal(d.created_ms, created);
    assert_int_equal(d.npoints, 2);
    assert_string_equal(d.points[0].id, MP_E);
    assert_string_equal(d.points[0].meter, "1ESY1160000001");
    assert_int_equal(d.points[0].medium, COSEM_ELECTRICITY);
    assert_int_equal(d.points[1].medium, COSEM_WATER);
    assert_int_equal(d.nreadings, 3 + 3 + 3 + 2 + 1);
    /* Sorted by point, OBIS, time: the first four are 1-0:1.7.0. */
    int64_t t0;
    assert_int_equal(time_parse_ms("2026-11-28T16:45:00Z", &t0), 0);
    const struct cosem_reading *r = d.readings;
    char o[24];
    assert_string_equal(cosem_obis_format(r[0].obis, o, sizeof o), "1-0:1.7.0");
    assert_int_equal(r[0].value, 4200);
    assert_int_equal(r[0].unit, COSEM_UNIT_W);
    assert_int_equal(r[0].time_ms, t0);
    assert_int_equal(r[1].status, 8);
    assert_int_equal(r[1].value, 4100);
    assert_string_equal(cosem_obis_format(r[4].obis, o, sizeof o), "1-0:1.8.0");
    assert_int_equal(r[4].scaler, -1);
    assert_int_equal(r[7].value, 1021);
    assert_int_equal(r[7].time_ms, t0 + 45 * 60 * 1000);
    assert_string_equal(cosem_obis_format(r[8].obis, o, sizeof o), "1-0:2.8.0");
    assert_int_equal(r[10].value, 51);
    assert_int_equal(r[11].point, 1);
    assert_int_equal(r[11].value, 123456);
    assert_int_equal(r[11].scaler, -3);
    assert_int_equal(r[11].unit, COSEM_UNIT_M3);
    cosem_doc_free(&d);
    free(text);
}

static void test_heat_gas_and_market_location(void **state)
{
    (void)state;
    char *text = doc_with(" <MeteringPoint id='" MP_W "'",
                          " <MeteringPoint id='DE0001234567890000000000000000003' meter='6HEAT1'"
                          " medium='heat'><ProfileGeneric><CaptureObjects>"
                          "<CaptureObject index='1' obis='6-0:1.0.0' scaler='3' unit='25'/>"
                          "</CaptureObjects><Buffer><Entry time='2026-11-28T17:07:00Z'>"
                          "<Value index='1'>77</Value></Entry></Buffer></ProfileGeneric>"
                          "</MeteringPoint>\n <MeteringPoint id='12345678901' meter='7GAS1'"
                          " medium='gas'><ProfileGeneric><CaptureObjects>"
                          "<CaptureObject index='4' obis='7-0:3.0.0*255' scaler='-2' unit='13'/>"
                          "</CaptureObjects><Buffer><Entry time='2026-11-28T17:00:00Z'>"
                          "<Value index='4'>9</Value></Entry></Buffer></ProfileGeneric>"
                          "</MeteringPoint>\n <MeteringPoint id='" MP_W "'");
    char err[400], o[24];
    struct cosem_doc d;
    assert_int_equal(parse(text, &d, err, sizeof err), 0);
    assert_int_equal(d.npoints, 4);
    assert_int_equal(d.points[1].medium, COSEM_HEAT);
    assert_int_equal(d.points[2].medium, COSEM_GAS);
    assert_string_equal(d.points[2].id, "12345678901");
    assert_int_equal(d.nreadings, 11 + 1 + 1 + 1);
    const struct cosem_reading *heat = &d.readings[11], *gas = &d.readings[12];
    assert_int_equal(heat->point, 1);
    assert_int_equal(heat->unit, COSEM_UNIT_J);
    assert_int_equal(heat->scaler, 3);
    assert_int_equal(heat->value, 77);
    assert_string_equal(cosem_obis_format(gas->obis, o, sizeof o), "7-0:3.0.0");
    assert_int_equal(gas->value, 9);
    cosem_doc_free(&d);
    free(text);
}

static void test_document_element(void **state)
{
    (void)state;
    static const char *const docs[][2] = {
        {"<Data xmlns='urn:clsm:cosem-xml:1'/>", "must be <MeterData>"},
        {"<MeterData xmlns='urn:clsm:cosem-xml:1' id='d' smgw='EABC0000000001'"
         " created='2026-11-28T17:50:00Z'/>",
         "no <MeteringPoint>"},
        {"<MeterData xmlns='urn:clsm:cosem-xml:1' id='d' smgw='EABC0000000001'"
         " created='2026-11-28T17:50:00Z'><MeteringPoint id='" MP_E "' meter='m'"
         " medium='electricity'/></MeterData>",
         "without a <ProfileGeneric>"},
        {"<MeterData xmlns='urn:clsm:cosem-xml:1' smgw='EABC0000000001'"
         " created='2026-11-28T17:50:00Z'/>",
         "needs the attribute 'id'"},
        {"not xml at all", "not well-formed"},
    };
    for (size_t i = 0; i < COUNT(docs); i++) {
        char err[400] = "";
        struct cosem_doc d;
        assert_int_equal(parse(docs[i][0], &d, err, sizeof err), -EINVAL);
        if (strstr(err, docs[i][1]) == NULL)
            fail_msg("%s: \"%s\"", docs[i][0], err);
    }
}

static void test_obis(void **state)
{
    (void)state;
    uint8_t o[6];
    char buf[24];
    assert_int_equal(cosem_obis_parse("1-0:1.8.0", o), 0);
    assert_memory_equal(o, ((uint8_t[]){1, 0, 1, 8, 0, 255}), 6);
    assert_string_equal(cosem_obis_format(o, buf, sizeof buf), "1-0:1.8.0");
    assert_int_equal(cosem_obis_parse("255-255:255.255.255*0", o), 0);
    assert_string_equal(cosem_obis_format(o, buf, sizeof buf), "255-255:255.255.255*0");
    static const char *const bad[] = {"",           "1-0:1.8",      "1-0:1.8.0.",   "1.0:1.8.0",
                                      "1-0:1.8.0*", "256-0:1.8.0",  "1-0:1.8.0*1x", "1-0:1.8.0 ",
                                      "a-0:1.8.0",  "1-0:1.8.1000", "-1-0:1.8.0"};
    for (size_t i = 0; i < COUNT(bad); i++)
        if (cosem_obis_parse(bad[i], o) != -EINVAL)
            fail_msg("accepted OBIS \"%s\"", bad[i]);
}

/* --- refused documents -------------------------------------------------------------------- */

struct refusal {
    const char *name, *from, *to, *reason;
};

static const struct refusal refusals[] = {
    {"tampered root", "<MeterData ", "<MeterDatum ", "not well-formed"},
    {"no namespace", " xmlns='urn:clsm:cosem-xml:1'", "", "namespace"},
    {"foreign namespace", "urn:clsm:cosem-xml:1", "urn:other", "namespace"},
    {"unknown attribute", "id='doc-1'", "id='doc-1' extra='1'", "unknown attribute 'extra'"},
    {"bad document id", "id='doc-1'", "id='doc 1'", "not a document id"},
    {"bad gateway id", "EABC0000000001", "EABC00000001", "not a gateway id"},
    {"created in the future", "created='2026-11-28T17:50:00Z'", "created='2026-11-28T18:10:00Z'",
     "in the future"},
    {"created long ago", "created='2026-11-28T17:50:00Z'", "created='2024-01-01T00:00:00Z'",
     "older than 400 days"},
    {"bad time", "created='2026-11-28T17:50:00Z'", "created='yesterday'", "not an RFC 3339"},
    {"bad metering point", MP_E, "DE123", "not a metering point"},
    {"bad medium", "medium='electricity'", "medium='steam'", "medium must be"},
    {"point twice", MP_W, MP_E, "twice"},
    {"OBIS not taken", "obis='1-0:2.8.0'", "obis='1-0:32.7.0'", "not a quantity"},
    {"OBIS malformed", "obis='1-0:2.8.0'", "obis='1-0:2.8'", "not an OBIS code"},
    {"OBIS of another medium", "obis='1-0:2.8.0'", "obis='7-0:3.0.0'", "measures gas"},
    {"wrong unit", "obis='1-0:1.7.0' scaler='0' unit='27'", "obis='1-0:1.7.0' scaler='0' unit='30'",
     "does not fit"},
    {"unknown unit", "scaler='-3' unit='13'", "scaler='-3' unit='300'", "integer in 1..255"},
    {"scaler out of range", "scaler='-1' unit='30'/>\n    <CaptureObject index='2'",
     "scaler='-10' unit='30'/>\n    <CaptureObject index='2'", "scaler"},
    {"index twice", "index='2' obis='1-0:2.8.0'", "index='1' obis='1-0:2.8.0'", "index 1 twice"},
    {"OBIS twice", "obis='1-0:2.8.0'", "obis='1-0:1.8.0'", "same OBIS code twice"},
    {"entry off the period", "time='2026-11-28T17:15:00Z'", "time='2026-11-28T17:16:00Z'",
     "not on the profile's period"},
    {"entries out of order", "time='2026-11-28T17:15:00Z'", "time='2026-11-28T16:00:00Z'",
     "follow each other"},
    {"entry in the future", "time='2026-11-28T17:30:00Z'", "time='2026-11-29T17:30:00Z'",
     "in the future"},
    {"negative value", ">4100<", ">-4100<", "not a non-negative integer"},
    {"decimal value", ">4100<", ">41.5<", "not a non-negative integer"},
    {"control character in a value", ">4100<", ">41\x7f<", "\"41?\" is not a non-negative"},
    {"empty value", ">4100<", "><", "holds one integer"},
    {"value too large", ">4100<", ">99999999999999999999<", "not a non-negative integer"},
    {"value of no object", "<Value index='3'>0</Value></Entry>\n    <Entry time='2026-11-28T17:30",
     "<Value index='4'>0</Value></Entry>\n    <Entry time='2026-11-28T17:30",
     "no capture object with index 4"},
    {"value index twice", "<Value index='2'>51</Value>", "<Value index='1'>51</Value>",
     "index 1 twice in one entry"},
    {"element in a value", ">4100<", "><b>4100</b><", "holds one integer"},
    {"text between elements", "</Entry>\n    <Entry time='2026-11-28T17:00:00Z'",
     "</Entry>hello<Entry time='2026-11-28T17:00:00Z'", "text where an element belongs"},
    {"unknown element", "<Buffer>", "<Buffer><Extra/>", "<Entry> elements"},
    {"no capture objects",
     "<CaptureObjects><CaptureObject index='1' obis='8-0:1.0.0' scaler='-3' "
     "unit='13'/></CaptureObjects>",
     "<CaptureObjects></CaptureObjects>", "is empty"},
    {"buffer missing",
     "   <Buffer><Entry time='2026-11-28T00:00:00Z'><Value index='1'>123456"
     "</Value></Entry></Buffer>\n",
     "", "followed by <Buffer>"},
    {"period not dividing a day", "period='900'", "period='7000'", "period must divide a day"},
    {"same value in two profiles",
     "  </ProfileGeneric>\n </MeteringPoint>\n <MeteringPoint id='" MP_W,
     "  </ProfileGeneric>\n<ProfileGeneric><CaptureObjects><CaptureObject index='1' "
     "obis='1-0:1.7.0' scaler='0' unit='27'/></CaptureObjects><Buffer><Entry "
     "time='2026-11-28T17:00:00Z'><Value index='1'>1</Value></Entry></Buffer></ProfileGeneric>"
     " </MeteringPoint>\n <MeteringPoint id='" MP_W,
     "two values of 1-0:1.7.0 at 2026-11-28T17:00:00"},
    {"entity expansion (billion laughs)", "<MeterData ",
     "<!DOCTYPE MeterData [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;'>"
     "<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;'>]>\n<MeterData ",
     "document type declaration is not allowed"},
    {"external entity", "<MeterData ",
     "<!DOCTYPE MeterData [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>\n<MeterData ",
     "document type declaration is not allowed"},
    {"external DTD", "<MeterData ",
     "<!DOCTYPE MeterData SYSTEM 'http://127.0.0.1:9/x.dtd'>\n<MeterData ",
     "document type declaration is not allowed"},
    {"entity reference without DTD", ">4100<", ">&x;<", "not well-formed"},
    {"truncated", "</MeterData>", "</MeterDa", "not well-formed"},
    {"control character", "meter='1ESY1160000001'", "meter='1ESY&#9;1'", "control character"},
};

static void test_refusals(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t i = 0; i < COUNT(refusals); i++) {
        const struct refusal *c = &refusals[i];
        char *text = doc_with(c->from, c->to), err[400] = "";
        struct cosem_doc d;
        int rc = parse(text, &d, err, sizeof err);
        for (const char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
                fail_msg("%s: a control character in the reason", c->name);
        if (rc != -EINVAL || strstr(err, c->reason) == NULL) {
            print_error("%s: rc %d, reason \"%s\" (expected \"%s\")\n", c->name, rc, err,
                        c->reason);
            failed++;
        } else if (d.readings != NULL || d.points != NULL || d.nreadings || d.npoints) {
            print_error("%s: refused but something was kept\n", c->name);
            failed++;
        }
        free(text);
    }
    assert_int_equal(failed, 0);
}

static void test_empty_and_oversized(void **state)
{
    (void)state;
    char err[400];
    struct cosem_doc d;
    assert_int_equal(cosem_parse("", 0, NOW, &d, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "empty"));
    size_t n = COSEM_MAX_BYTES + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    assert_int_equal(cosem_parse(big, n, NOW, &d, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "larger than"));
    free(big);
}

static void test_utf16_cannot_hide_a_dtd(void **state)
{
    (void)state;
    /* "<!DOCTYPE" in UTF-16 escapes a byte scan for ASCII; the document is
     * read as UTF-8 whatever it declares, so it is refused either way. */
    static const char doc[] = "<?xml version='1.0' encoding='UTF-16'?><!DOCTYPE MeterData "
                              "[<!ENTITY a 'aaaa'>]><MeterData xmlns='urn:clsm:cosem-xml:1'/>";
    for (int bom = 0; bom < 3; bom++) {
        size_t n = strlen(doc);
        unsigned char buf[512];
        size_t k = 0;
        if (bom == 1) {
            buf[k++] = 0xff;
            buf[k++] = 0xfe;
        } else if (bom == 2) {
            buf[k++] = 0xfe;
            buf[k++] = 0xff;
        }
        for (size_t i = 0; i < n; i++) { /* UTF-16LE, or BE after the BE mark */
            buf[k++] = bom == 2 ? 0 : (unsigned char)doc[i];
            buf[k++] = bom == 2 ? (unsigned char)doc[i] : 0;
        }
        char err[400];
        struct cosem_doc d;
        assert_int_equal(cosem_parse((const char *)buf, k, NOW, &d, err, sizeof err), -EINVAL);
        assert_true(strstr(err, "UTF-8") != NULL || strstr(err, "not well-formed") != NULL);
    }
}

static void test_deep_nesting(void **state)
{
    (void)state;
    /* 100,000 nested elements inside a value: libxml2's depth limit or
     * our structure refuses it, without exhausting the stack. */
    size_t depth = 100000;
    char *inner = malloc(depth * 7 + 16), *p = inner;
    assert_non_null(inner);
    for (size_t i = 0; i < depth; i++, p += 3)
        memcpy(p, "<a>", 3);
    for (size_t i = 0; i < depth; i++, p += 4)
        memcpy(p, "</a>", 4);
    *p = '\0';
    char *text = doc_with(">4100<", inner), err[400];
    struct cosem_doc d;
    assert_int_equal(parse(text, &d, err, sizeof err), -EINVAL);
    free(text);
    free(inner);
}

/* Append to the text at '*p' (up to 'end'); the test fails on overflow. */
static void put(char **p, char *end, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void put(char **p, char *end, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(*p, (size_t)(end - *p), fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && n < end - *p);
    *p += n;
}

static void test_too_many_values(void **state)
{
    (void)state;
    /* Five capture objects (the 1-0:1.8.0 register of channels B 1..5)
     * over 20,001 quarter hours: 100,005 values in about 3.4 MB. */
    size_t entries = 20001;
    size_t cap = entries * 200 + 4096;
    char *text = malloc(cap), *p = text, *end = text + cap;
    assert_non_null(text);
    put(&p, end,
        "<MeterData xmlns='urn:clsm:cosem-xml:1' id='big' smgw='EABC0000000001'"
        " created='2026-11-28T17:50:00Z'><MeteringPoint id='" MP_E
        "' meter='m' medium='electricity'><ProfileGeneric><CaptureObjects>");
    for (int b = 1; b <= 5; b++)
        put(&p, end, "<CaptureObject index='%d' obis='1-%d:1.8.0' scaler='0' unit='30'/>", b, b);
    put(&p, end, "</CaptureObjects><Buffer>");
    for (size_t i = 0; i < entries; i++) {
        char ts[40];
        time_format_ms(NOW - (int64_t)(entries - i) * 900 * 1000, ts, sizeof ts);
        put(&p, end, "<Entry time='%s'>", ts);
        for (int b = 1; b <= 5; b++)
            put(&p, end, "<Value index='%d'>1</Value>", b);
        put(&p, end, "</Entry>");
    }
    put(&p, end, "</Buffer></ProfileGeneric></MeteringPoint></MeterData>");
    assert_true((size_t)(p - text) < COSEM_MAX_BYTES);
    char err[400];
    struct cosem_doc d;
    assert_int_equal(cosem_parse(text, (size_t)(p - text), NOW, &d, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "more than 100000 values"));
    /* One entry fewer than the limit allows is taken. */
    char *cut = strstr(text, "<Entry");
    char *keep = cut;
    for (int k = 0; k < 2; k++) /* drop the first two entries: 99,995 values */
        keep = strstr(keep + 1, "<Entry");
    memmove(cut, keep, strlen(keep) + 1);
    assert_int_equal(cosem_parse(text, strlen(text), NOW, &d, err, sizeof err), 0);
    assert_int_equal(d.nreadings, 99995);
    cosem_doc_free(&d);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_household_document),
        cmocka_unit_test(test_heat_gas_and_market_location),
        cmocka_unit_test(test_document_element),
        cmocka_unit_test(test_obis),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_empty_and_oversized),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_utf16_cannot_hide_a_dtd),
        cmocka_unit_test(test_too_many_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
