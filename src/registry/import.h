/*
 * import.h - bulk import of registry entities: one JSON document applied in
 * one transaction, all or nothing.
 *
 * The document is an object whose members are plural kind names ("parties",
 * "segments", ...) holding arrays of entities. Kinds are applied in
 * dependency order whatever their order in the document, segments parents
 * first; each entity is inserted or, if its id exists, replaced, or left
 * alone when nothing in it differs (so the same document imported twice
 * writes nothing the second time).
 */
#ifndef CLSM_IMPORT_H
#define CLSM_IMPORT_H

#include <jansson.h>

#include "registry/registry.h"
#include "store/store.h"

/* A reg_lookup that reads referenced entities from 's' (any scope). */
void reg_lookup_store(struct reg_lookup *lk, struct store *s);

/* One entity that references another: its kind, the referencing field and
 * its id. */
struct reg_referrer {
    const struct reg_kind *kind;
    const struct reg_field *field;
    char id[128];
};

/*
 * Find one entity that references entity 'id' of kind 'k' through a field
 * for which 'match' (may be NULL: every reference field) returns nonzero.
 * Returns 1 with '*out' filled, 0 when there is none, or a negative errno
 * when the store fails.
 */
int reg_find_referrer(struct store *s, const struct reg_kind *k, const char *id,
                      int (*match)(const struct reg_field *f, void *arg), void *arg,
                      struct reg_referrer *out);

/*
 * Check that replacing an entity of kind 'k' by 'obj' keeps the entities
 * that reference it valid: a reference that demands a role (a segment's
 * vnb, an assignment's party) must still find that role. Returns 0, -EBUSY
 * with 'err' (status 409, pointer /role) naming one referrer, or -EIO with
 * 'err' (status 500) when the store fails.
 */
int reg_check_referrers(struct store *s, const struct reg_kind *k, const json_t *obj,
                        struct reg_error *err);

/*
 * Apply 'doc' to 's' inside one transaction. On success returns 0 and
 * '*summary' (new reference) holds per kind {"created": n, "updated": m,
 * "unchanged": u}.
 * On failure nothing is written and 'err' points at the offending entity and
 * field ("/installations/17/rated_power_w"); returns -EINVAL (invalid input,
 * err->status 422), -EEXIST (a unique field combination is taken, 409),
 * -EBUSY (a role change that referrers forbid, 409), or -EIO/-ENOMEM (the
 * store or memory failed, 500). 'err' is filled on every failure.
 */
int reg_import(struct store *s, json_t *doc, json_t **summary, struct reg_error *err);

#endif
