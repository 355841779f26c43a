/*
 * cosem.h - the meter data document: COSEM-XML in the style of the DKE
 * K461 profile (DESIGN.md §5.6, docs/protocols/meter-data.md).
 *
 * A document from one gateway holds metering points; each point holds
 * load profiles whose capture objects name an OBIS code, a scaler and a
 * DLMS unit, and whose entries carry a capture time and one integer value
 * per capture object. cosem_parse() checks all of it under fixed limits
 * and returns the values as flat readings; it never loads a DTD, never
 * expands an entity and never touches the network.
 */
#ifndef CLSM_COSEM_H
#define CLSM_COSEM_H

#include <stddef.h>
#include <stdint.h>

#define COSEM_NS           "urn:clsm:cosem-xml:1"
#define COSEM_MAX_BYTES    (4u << 20)        /* one document */
#define COSEM_MAX_POINTS   256               /* metering points per document */
#define COSEM_MAX_OBJECTS  16                /* capture objects per profile */
#define COSEM_MAX_READINGS 100000            /* values per document */
#define COSEM_ID_MAX       64                /* document, metering point and meter ids */
#define COSEM_FUTURE_MS    (5 * 60 * 1000LL) /* clock skew allowed */
#define COSEM_PAST_MS      (400LL * 24 * 60 * 60 * 1000) /* oldest capture time */

enum cosem_medium { COSEM_ELECTRICITY, COSEM_HEAT, COSEM_GAS, COSEM_WATER, COSEM_NMEDIA };

/* DLMS unit codes (IEC 62056-6-2) that the document may use. */
enum cosem_unit {
    COSEM_UNIT_M3 = 13, /* volume */
    COSEM_UNIT_J = 25,  /* energy (heat) */
    COSEM_UNIT_W = 27,  /* active power */
    COSEM_UNIT_WH = 30, /* active energy */
};

struct cosem_point {
    char id[COSEM_ID_MAX + 1];    /* metering point (Zählpunkt) */
    char meter[COSEM_ID_MAX + 1]; /* meter id */
    enum cosem_medium medium;
};

/* One value: value * 10^scaler in 'unit' at 'time_ms'. */
struct cosem_reading {
    uint32_t point; /* index into cosem_doc.points */
    uint8_t obis[6];
    int8_t scaler;
    uint8_t unit;
    uint32_t status; /* the entry's status word (0: fine) */
    int64_t time_ms;
    int64_t value;
};

struct cosem_doc {
    char id[COSEM_ID_MAX + 1]; /* the sender's id of the document */
    char smgw[16];
    int64_t created_ms;
    struct cosem_point *points;
    size_t npoints;
    struct cosem_reading *readings;
    size_t nreadings;
};

/*
 * Parse and check a document received at 'now_ms'. On success fills 'out'
 * (free with cosem_doc_free()) and returns 0. On failure returns -EINVAL
 * (or -ENOMEM) and writes a reason for the sender to 'err'; 'out' is then
 * empty.
 */
int cosem_parse(const char *buf, size_t len, int64_t now_ms, struct cosem_doc *out, char *err,
                size_t errlen);
void cosem_doc_free(struct cosem_doc *d);

/* "A-B:C.D.E" or "A-B:C.D.E*F" (F 255 when absent). 0 or -EINVAL. */
int cosem_obis_parse(const char *s, uint8_t out[6]);
/* The short form when F is 255. 'buf' holds at least 24 bytes. */
char *cosem_obis_format(const uint8_t obis[6], char *buf, size_t len);

const char *cosem_medium_name(enum cosem_medium m);
const char *cosem_unit_name(int unit); /* "Wh", "W", "m3", "J", or NULL */

#endif
