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

/*
 * Check that replacing an entity of kind 'k' by 'obj' keeps the entities
 * that reference it valid: a reference that demands a role (a segment's
 * vnb, an assignment's party) must still find that role. Returns 0, or
 * -EBUSY with 'err' (status 409, pointer /role) naming one referrer.
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
 * -EBUSY (a role change that referrers forbid, 409) or -EIO (database).
 */
int reg_import(struct store *s, json_t *doc, json_t **summary, struct reg_error *err);

#endif
