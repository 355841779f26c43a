/*
 * import.c - atomic bulk import; see import.h.
 */
#include "registry/import.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static int lookup_get(void *arg, const struct reg_kind *k, const char *id, json_t **obj)
{
    struct store_scope all = {SCOPE_ALL, NULL, NULL};
    return store_reg_get(arg, k, id, &all, obj);
}

void reg_lookup_store(struct reg_lookup *lk, struct store *s)
{
    lk->get = lookup_get;
    lk->arg = s;
}

/* Fill 'err' for a failure of the store itself; returns -EIO. */
static int store_failed(struct store *s, struct reg_error *err)
{
    err->status = 500;
    err->pointer[0] = '\0';
    snprintf(err->detail, sizeof err->detail, "the store failed: %s", store_errmsg(s));
    return -EIO;
}

static int role_allowed(const char *const *roles, const char *role)
{
    for (int i = 0; roles[i]; i++)
        if (strcmp(roles[i], role) == 0)
            return 1;
    return 0;
}

int reg_find_referrer(struct store *s, const struct reg_kind *k, const char *id,
                      int (*match)(const struct reg_field *f, void *arg), void *arg,
                      struct reg_referrer *out)
{
    for (size_t rk = 0; rk < REG_NKINDS; rk++) {
        for (size_t f = 0; f < reg_kinds[rk].nfields; f++) {
            const struct reg_field *fd = &reg_kinds[rk].fields[f];
            struct store_query q;
            json_t *items = NULL, *v;
            int more = 0, rc;
            if (fd->type != RT_REF || fd->ref != k->id || (match && !match(fd, arg)))
                continue;
            memset(&q, 0, sizeof q);
            q.kind = &reg_kinds[rk];
            q.scope.kind = SCOPE_ALL;
            q.filters[0].field = fd;
            q.filters[0].value = v = json_string(id);
            q.nfilters = 1;
            q.exact = 1;
            q.limit = 1;
            rc = store_reg_list(s, &q, &items, &more);
            json_decref(v);
            if (rc == 0 && json_array_size(items) > 0) {
                out->kind = &reg_kinds[rk];
                out->field = fd;
                str_copy(out->id, sizeof out->id,
                         json_string_value(json_object_get(json_array_get(items, 0), "id")));
                rc = 1;
            }
            json_decref(items);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* References that demand a role the new 'role' does not have. */
static int demands_other_role(const struct reg_field *f, void *arg)
{
    return f->ref_roles != NULL && !role_allowed(f->ref_roles, arg);
}

int reg_check_referrers(struct store *s, const struct reg_kind *k, const json_t *obj,
                        struct reg_error *err)
{
    const char *id = json_string_value(json_object_get(obj, "id"));
    const char *role = json_string_value(json_object_get(obj, "role"));
    struct reg_referrer r;

    int rc = reg_find_referrer(s, k, id, demands_other_role, (void *)(role ? role : ""), &r);
    if (rc < 0)
        return store_failed(s, err);
    if (rc == 0)
        return 0;
    err->status = 409;
    snprintf(err->pointer, sizeof err->pointer, "/role");
    snprintf(err->detail, sizeof err->detail,
             "%s \"%s\" is the %s of %s \"%s\", which needs another role", k->name, id,
             r.field->name, r.kind->name, r.id);
    return -EBUSY;
}

/* Prefix err->pointer with "/<plural>/<index>". */
static void locate(struct reg_error *err, const struct reg_kind *k, size_t i)
{
    char p[sizeof err->pointer + 64];
    snprintf(p, sizeof p, "/%s/%zu%s", k->plural, i, err->pointer);
    p[sizeof err->pointer - 1] = '\0';
    memcpy(err->pointer, p, sizeof err->pointer);
}

enum outcome { CREATED, UPDATED, UNCHANGED };

/* Nonzero when every writable field of 'obj' equals the stored one. */
static int same_as_stored(const struct reg_kind *k, const json_t *obj, const json_t *cur)
{
    for (size_t f = 0; f < k->nfields; f++) {
        const struct reg_field *fd = &k->fields[f];
        if (fd->flags & (RF_READONLY | RF_SERVER))
            continue;
        json_t *a = json_object_get(obj, fd->name), *b = json_object_get(cur, fd->name);
        if (!json_equal(a ? a : json_null(), b ? b : json_null()))
            return 0;
    }
    return 1;
}

static int import_one(struct store *s, const struct reg_kind *k, json_t *item,
                      const struct reg_lookup *lk, enum outcome *out, struct reg_error *err)
{
    struct store_scope all = {SCOPE_ALL, NULL, NULL};
    json_t *cur = NULL, *obj = NULL, *idv = json_object_get(item, "id");
    int rc;

    if (json_is_string(idv) && reg_id_valid(k, json_string_value(idv))) {
        rc = store_reg_get(s, k, json_string_value(idv), &all, &cur);
        if (rc != 0 && rc != -ENOENT)
            return store_failed(s, err);
    }
    rc = reg_validate(k, item, cur, NULL, 0, lk, &obj, err);
    if (rc == 0 && cur == NULL) {
        rc = store_reg_get(s, k, json_string_value(json_object_get(obj, "id")), &all, &cur);
        if (rc == 0) {
            /* The id was derived (an assignment's): validate against what is
             * stored under it. */
            json_decref(obj);
            obj = NULL;
            rc = reg_validate(k, item, cur, NULL, 0, lk, &obj, err);
        } else if (rc == -ENOENT) {
            rc = 0;
        } else {
            rc = store_failed(s, err);
        }
    }
    if (rc == 0 && cur != NULL && same_as_stored(k, obj, cur)) {
        /* Nothing to write: updated_at keeps telling when data changed. */
        *out = UNCHANGED;
        goto done;
    }
    if (rc == 0 && cur != NULL)
        rc = reg_check_referrers(s, k, obj, err);
    if (rc == 0) {
        int created = 0;
        rc = store_reg_upsert(s, k, obj, &created);
        *out = created ? CREATED : UPDATED;
        if (rc == -EEXIST) {
            err->status = 409;
            err->pointer[0] = '\0';
            snprintf(err->detail, sizeof err->detail,
                     "another %s already has the same combination of %s", k->name,
                     k->unique ? k->unique[0] : "fields");
            if (k->unique && k->unique[1]) {
                size_t n = strlen(err->detail);
                snprintf(err->detail + n, sizeof err->detail - n, " and %s", k->unique[1]);
            }
        } else if (rc != 0) {
            rc = store_failed(s, err);
        }
    }
done:
    json_decref(cur);
    json_decref(obj);
    return rc;
}

/* Whether an item names, in a self-referencing field, a parent that is
 * neither stored nor already imported: '*pending' is set. Returns 0 or a
 * store failure (with 'err' filled). */
static int parent_pending(struct store *s, const struct reg_kind *k, json_t *item, int *pending,
                          struct reg_error *err)
{
    *pending = 0;
    for (size_t f = 0; f < k->nfields; f++) {
        const struct reg_field *fd = &k->fields[f];
        json_t *v = json_object_get(item, fd->name), *obj = NULL;
        struct store_scope all = {SCOPE_ALL, NULL, NULL};
        if (fd->type != RT_REF || fd->ref != k->id || !json_is_string(v))
            continue;
        if (!reg_id_valid(k, json_string_value(v)))
            return 0; /* validation will explain */
        int rc = store_reg_get(s, k, json_string_value(v), &all, &obj);
        json_decref(obj);
        if (rc == -ENOENT)
            *pending = 1;
        else if (rc != 0)
            return store_failed(s, err);
        return 0;
    }
    return 0;
}

/* The id an item names in its self-referencing field, or NULL. */
static const char *self_ref(const struct reg_kind *k, json_t *item)
{
    for (size_t f = 0; f < k->nfields; f++)
        if (k->fields[f].type == RT_REF && k->fields[f].ref == k->id)
            return json_string_value(json_object_get(item, k->fields[f].name));
    return NULL;
}

/* Items left waiting for a parent: either the parent is in the document
 * but waits itself (a cycle), or it exists nowhere (validation says so). */
static int explain_leftover(const struct reg_kind *k, json_t *arr, const char *state,
                            const struct reg_lookup *lk, struct reg_error *err)
{
    size_t n = json_array_size(arr);
    for (size_t i = 0; i < n; i++) {
        if (state[i])
            continue;
        const char *parent = self_ref(k, json_array_get(arr, i));
        for (size_t j = 0; parent && j < n; j++) {
            const char *id = json_string_value(json_object_get(json_array_get(arr, j), "id"));
            if (!state[j] && id && strcmp(id, parent) == 0) {
                err->status = 422;
                snprintf(err->pointer, sizeof err->pointer, "/parent");
                snprintf(err->detail, sizeof err->detail,
                         "the parent references of \"%s\" and others in this document form a "
                         "cycle",
                         parent);
                locate(err, k, i);
                return -EINVAL;
            }
        }
        json_t *obj = NULL;
        int rc = reg_validate(k, json_array_get(arr, i), NULL, NULL, 0, lk, &obj, err);
        json_decref(obj);
        if (rc == 0) {
            /* Cannot happen: a parent that validates was stored before. */
            err->status = 500;
            snprintf(err->detail, sizeof err->detail, "import order could not be resolved");
            rc = -EIO;
        }
        locate(err, k, i);
        return rc;
    }
    return 0;
}

/* Items of one kind; those whose parent (same kind) comes later in the list
 * wait for it, so a tree may be listed in any order. */
static int import_kind(struct store *s, const struct reg_kind *k, json_t *arr,
                       const struct reg_lookup *lk, json_t *counts, struct reg_error *err)
{
    size_t n = json_array_size(arr), done = 0, count[3] = {0, 0, 0};
    char *state = calloc(n ? n : 1, 1);
    int rc = 0, progress = 1;

    if (state == NULL) {
        err->status = 500;
        snprintf(err->detail, sizeof err->detail, "out of memory");
        return -ENOMEM;
    }
    while (done < n && progress && rc == 0) {
        progress = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            enum outcome o = UNCHANGED;
            json_t *item = json_array_get(arr, i);
            int pending = 0;
            if (state[i])
                continue;
            if (json_is_object(item) && (rc = parent_pending(s, k, item, &pending, err)) != 0)
                break;
            if (pending)
                continue;
            rc = import_one(s, k, item, lk, &o, err);
            if (rc != 0) {
                locate(err, k, i);
                break;
            }
            state[i] = 1;
            done++;
            progress = 1;
            count[o]++;
        }
    }
    if (rc == 0 && done < n)
        rc = explain_leftover(k, arr, state, lk, err);
    free(state);
    if (rc == 0)
        json_object_set_new(counts, k->plural,
                            json_pack("{s:I, s:I, s:I}", "created", (json_int_t)count[CREATED],
                                      "updated", (json_int_t)count[UPDATED], "unchanged",
                                      (json_int_t)count[UNCHANGED]));
    return rc;
}

int reg_import(struct store *s, json_t *doc, json_t **summary, struct reg_error *err)
{
    struct reg_lookup lk;
    const char *key;
    json_t *v, *counts = NULL;
    int rc = 0;

    *summary = NULL;
    memset(err, 0, sizeof *err);
    err->status = 422;
    if (!json_is_object(doc)) {
        snprintf(err->detail, sizeof err->detail, "the import document must be a JSON object");
        return -EINVAL;
    }
    json_object_foreach(doc, key, v)
    {
        if (reg_kind_by_plural(key) == NULL || !json_is_array(v)) {
            snprintf(err->pointer, sizeof err->pointer, "/%s", key);
            snprintf(err->detail, sizeof err->detail,
                     reg_kind_by_plural(key) ? "must be an array"
                                             : "is not a kind of registry entity");
            return -EINVAL;
        }
    }
    reg_lookup_store(&lk, s);
    if (store_begin(s) != 0)
        return store_failed(s, err);
    counts = json_object();
    for (size_t i = 0; i < REG_NKINDS && rc == 0; i++) {
        json_t *arr = json_object_get(doc, reg_kinds[i].plural);
        if (arr)
            rc = import_kind(s, &reg_kinds[i], arr, &lk, counts, err);
    }
    if (rc == 0 && store_commit(s) != 0)
        rc = store_failed(s, err);
    if (rc != 0) {
        store_rollback(s);
        json_decref(counts);
        return rc;
    }
    *summary = counts;
    return 0;
}
