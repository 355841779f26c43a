/*
 * registry.h - the registry model of DESIGN.md §3 as data: one descriptor per
 * kind of entity (party, segment, gwa, smgw, device, installation,
 * assignment) with its fields, types, bounds and formats, and the validation
 * of outside JSON against those descriptors.
 *
 * The descriptors are the single source of truth used by the API (routes,
 * filters, error messages), the store backends (columns), the import and the
 * CLI (tables, CSV columns). Everything here is constant and pure: no I/O,
 * safe from any thread. Lookups of referenced entities go through a callback.
 */
#ifndef CLSM_REGISTRY_H
#define CLSM_REGISTRY_H

#include <jansson.h>
#include <stddef.h>

struct reg_kind;

enum reg_kind_id {
    REG_PARTY,
    REG_SEGMENT,
    REG_GWA,
    REG_SMGW,
    REG_DEVICE,
    REG_INSTALLATION,
    REG_ASSIGNMENT,
    REG_NKINDS
};

enum reg_type {
    RT_ID,     /* string key; format from the field */
    RT_STRING, /* printable UTF-8; length bounds min..max */
    RT_INT,    /* integer in min..max */
    RT_BOOL,
    RT_ENUM,    /* one of 'values' */
    RT_ENUMSET, /* JSON array of distinct 'values' (stored in canonical order) */
    RT_REF,     /* id of an entity of kind 'ref' */
    RT_TIME,    /* RFC 3339 string in JSON, milliseconds in the store */
};

#define RF_REQUIRED 0x01u /* must be present (and not null) on input */
#define RF_READONLY 0x02u /* changed only by its own endpoint; input must match */
#define RF_SERVER   0x04u /* bookkeeping set by the store; ignored on input */
#define RF_FILTER   0x08u /* usable as ?name=value on list routes */
#define RF_SUBTREE  0x10u /* a segment filter that includes child segments */
#define RF_KEY      0x20u /* the entity id */

struct reg_field {
    const char *name; /* JSON member, column and CSV header name */
    enum reg_type type;
    unsigned flags;
    long long min, max;           /* RT_INT: value range; strings: length range */
    int (*format)(const char *s); /* strings and ids: nonzero when well formed */
    const char *format_desc;      /* what 'format' expects, for messages */
    const char *const *values;    /* RT_ENUM, RT_ENUMSET: NULL-terminated */
    enum reg_kind_id ref;         /* RT_REF */
    const char *const *ref_roles; /* RT_REF to a party: roles allowed, or NULL */
    const char *def;              /* default as JSON text, or NULL (then null) */
};

/* A validation failure: HTTP-ish status (422 invalid, also for a reference to
 * a missing entity; 404 when the id in the URL is malformed), the JSON pointer of the field below
 * the object ("/rated_power_w") and a sentence for people. */
struct reg_error {
    int status;
    char pointer[160];
    char detail[320];
};

/* How validation finds referenced entities. get() returns 0 and a new
 * reference in '*obj', or -ENOENT. */
struct reg_lookup {
    int (*get)(void *arg, const struct reg_kind *k, const char *id, json_t **obj);
    void *arg;
};

struct reg_kind {
    enum reg_kind_id id;
    const char *name;   /* "installation" */
    const char *plural; /* "installations": URL path, table and import key */
    const struct reg_field *fields;
    size_t nfields;
    /* Fields that together are unique besides the id, or NULL. */
    const char *const *unique;
    /* Rules across fields of one validated object (and its references);
     * 'current' is the stored entity being replaced, or NULL. NULL when
     * there are none. Returns 0 or -EINVAL with 'err' filled. */
    int (*check)(const json_t *obj, const json_t *current, const struct reg_lookup *lk,
                 struct reg_error *err);
};

/* Kinds in dependency order: a kind only references kinds before it. */
extern const struct reg_kind reg_kinds[REG_NKINDS];

/* The kind with that plural name, or NULL. */
const struct reg_kind *reg_kind_by_plural(const char *plural);

/* The field of that name, or NULL. */
const struct reg_field *reg_field(const struct reg_kind *k, const char *name);

/* Well-formedness of ids: nonzero when valid. */
int reg_is_party_id(const char *s);       /* 13 digits (BDEW/DVGW market partner id) */
int reg_is_smgw_id(const char *s);        /* E + 3 letters + 10 digits, EABC0012345678 */
int reg_is_metering_point(const char *s); /* DE + 31 letters/digits, or 11 digits */
int reg_is_generic_id(const char *s);     /* [A-Za-z0-9][A-Za-z0-9._:-]{0,95} */
/* The format check of the key field of 'k'. */
int reg_id_valid(const struct reg_kind *k, const char *id);

/*
 * Validate 'in' (a JSON object from outside) as an entity of kind 'k'.
 * 'current' is the stored entity when replacing one, NULL when creating.
 * 'id' (may be NULL) is the id from the URL; a body id must equal it.
 * 'patch' nonzero merges 'in' into 'current' first (RFC 7396 on top-level
 * members). On success returns 0 and '*out' (new reference) holds every
 * writable field with defaults applied. On failure returns -EINVAL and fills
 * 'err'; '*out' is NULL. Read-only fields in 'in' must equal their current
 * (or default) value; server fields are ignored; unknown fields are errors.
 */
int reg_validate(const struct reg_kind *k, json_t *in, const json_t *current, const char *id,
                 int patch, const struct reg_lookup *lk, json_t **out, struct reg_error *err);

/* Check text from outside as registry strings are checked: a JSON string of
 * 'min'..'max' characters (code points) without control characters. Returns
 * 0, or -EINVAL with the reason ("must be a string", ...) in 'msg'. */
int reg_text_check(const json_t *v, size_t min, size_t max, char *msg, size_t len);

/* Convert one text value (from a query string or a CSV cell) to the JSON
 * value of field 'f': "true"/"false" for booleans, decimal integers, '|'
 * separated lists for sets; strings stay strings. An empty string becomes
 * JSON null. Returns a new reference, or NULL with 'msg' filled. */
json_t *reg_value_from_text(const struct reg_field *f, const char *text, char *msg, size_t mlen);

/* A list filter value from a query string: reg_value_from_text() followed
 * by the checks a body value passes (type, bounds, format, allowed values),
 * except that a referenced entity need not exist. Returns a new reference
 * (JSON null for an empty text), or NULL with 'msg' filled. */
json_t *reg_filter_value(const struct reg_field *f, const char *text, char *msg, size_t mlen);

#endif
