/*
 * fuzz_cosem.c - libFuzzer target for the COSEM-XML meter data document
 * (meter/cosem.h): any bytes through cosem_parse() at a fixed 'now'.
 *
 * Invariants checked, aborting on a breach:
 * - cosem_parse() returns 0, -EINVAL or -ENOMEM;
 * - a refusal carries a non-empty printable reason and keeps nothing;
 * - an accepted document has at least one metering point, every reading
 *   names one of them, uses a unit and scaler the interface allows, lies
 *   in the accepted time range, and readings are sorted and unique by
 *   (point, OBIS, time).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meter/cosem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW INT64_C(1795888800000) /* 2026-11-28T18:00:00Z; the seeds are written for it */

#define CHECK(cond)  \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

static bool printable_in(const char *s, size_t cap)
{
    const char *end = memchr(s, '\0', cap);
    if (end == NULL || end == s)
        return false;
    for (; s < end; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cosem_doc d;
    char err[400];
    int rc = cosem_parse((const char *)data, size, NOW, &d, err, sizeof err);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (rc != 0) {
        CHECK(printable_in(err, sizeof err));
        CHECK(d.points == NULL && d.readings == NULL && d.npoints == 0 && d.nreadings == 0);
        return 0;
    }
    CHECK(d.npoints >= 1 && d.npoints <= COSEM_MAX_POINTS);
    CHECK(d.nreadings <= COSEM_MAX_READINGS);
    for (size_t i = 0; i < d.nreadings; i++) {
        const struct cosem_reading *r = &d.readings[i];
        CHECK(r->point < d.npoints);
        CHECK(cosem_unit_name(r->unit) != NULL);
        CHECK(r->scaler >= -9 && r->scaler <= 9);
        CHECK(r->value >= 0);
        CHECK(r->time_ms <= NOW + COSEM_FUTURE_MS && r->time_ms >= NOW - COSEM_PAST_MS);
        if (i > 0) {
            const struct cosem_reading *p = &d.readings[i - 1];
            int c =
                p->point != r->point ? (p->point < r->point ? -1 : 1) : memcmp(p->obis, r->obis, 6);
            CHECK(c < 0 || (c == 0 && p->time_ms < r->time_ms));
        }
    }
    cosem_doc_free(&d);
    return 0;
}
