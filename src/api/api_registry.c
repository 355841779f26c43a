/*
 * api_registry.c - handlers of the registry resources: list, read, create,
 * replace, patch and delete for every kind of registry.h, the bulk import,
 * traffic lights and API tokens. Validation is registry.c's; persistence is
 * the store's; this file maps both onto HTTP answers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "common/log.h"
#include "common/util.h"
#include "registry/import.h"
#include "request/requests.h"

#define LIST_DEFAULT 100
#define LIST_MAX     1000

/* A registry error: validation (422), a missing entity (404), a conflict
 * (409), or a failure of the store underneath (answered 503). */
static void reply_reg_error(struct api_call *c, const struct reg_error *err)
{
    if (err->status >= 500) {
        api__problem(c, 503, "store-unavailable", NULL, NULL, "%s; nothing was changed",
                     err->detail);
        return;
    }
    api__problem(c, err->status,
                 err->status == 404   ? "not-found"
                 : err->status == 409 ? "conflict"
                                      : "validation",
                 NULL, err->pointer, "%s%s%s", err->pointer[0] ? err->pointer + 1 : "",
                 err->pointer[0] ? ": " : "", err->detail);
}

static void reply_store_error(struct api_call *c, int rc)
{
    api__problem(c, rc == -EBUSY ? 409 : 503, rc == -EBUSY ? "conflict" : "store-unavailable", NULL,
                 NULL, "%s",
                 rc == -EBUSY ? "the change conflicts with other entities"
                              : "the store failed; nothing was changed");
}

/* A list filter value from the query string, checked like a body value. */
static json_t *filter_value(struct api_call *c, const struct reg_field *f, const char *text)
{
    char msg[200] = "";
    json_t *v = reg_filter_value(f, text, msg, sizeof msg);
    if (v == NULL)
        api__problem(c, 400, "invalid-parameter", f->name, NULL, "%s", msg);
    return v;
}

void api__reg_list(struct api_call *c)
{
    static const char *const allowed[] = {"limit", "cursor", NULL};
    struct store_query q;
    const char *lim = api__query(c, "limit"), *cur = api__query(c, "cursor");
    char after[128];
    long long limit = LIST_DEFAULT;
    json_t *items = NULL;
    int more = 0, rc;

    memset(&q, 0, sizeof q);
    if (api__check_query(c, allowed, c->kind) != 0)
        return;
    if (lim && parse_ll(lim, 1, LIST_MAX, &limit) != 0) {
        api__problem(c, 400, "invalid-parameter", "limit", NULL,
                     "limit must be an integer from 1 to %d", LIST_MAX);
        return;
    }
    if (cur) {
        int n = b64url_decode(cur, (uint8_t *)after, sizeof after - 1);
        if (n <= 0 || (after[n] = '\0', strlen(after) != (size_t)n) ||
            !reg_id_valid(c->kind, after)) {
            api__problem(c, 400, "invalid-parameter", "cursor", NULL,
                         "cursor is not one this server issued");
            return;
        }
        q.after = after;
    }
    q.kind = c->kind;
    q.scope = api__scope(c, c->kind);
    q.limit = (int)limit;
    for (size_t i = 0; i < c->nquery; i++) {
        const struct reg_field *f = reg_field(c->kind, c->query[i].name);
        if (f == NULL)
            continue; /* limit, cursor */
        if (q.nfilters == STORE_MAX_FILTERS) {
            api__problem(c, 400, "limits", NULL, NULL, "too many filters");
            goto out;
        }
        q.filters[q.nfilters].field = f;
        q.filters[q.nfilters].value = filter_value(c, f, c->query[i].value);
        if (q.filters[q.nfilters].value == NULL)
            goto out;
        q.nfilters++;
    }
    rc = store_reg_list(c->api->store, &q, &items, &more);
    if (rc != 0) {
        reply_store_error(c, rc);
        goto out;
    }
    json_t *next = json_null();
    if (more && json_array_size(items) > 0) {
        const char *last = json_string_value(
            json_object_get(json_array_get(items, json_array_size(items) - 1), "id"));
        char enc[200];
        b64url_encode((const uint8_t *)last, strlen(last), enc, sizeof enc);
        next = json_string(enc);
    }
    api__json(c, 200, json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
out:
    for (size_t i = 0; i < q.nfilters; i++)
        json_decref(q.filters[i].value);
}

void api__reg_get(struct api_call *c)
{
    struct store_scope sc = api__scope(c, c->kind);
    json_t *obj = NULL;
    int rc;

    if (api__check_query(c, NULL, NULL) != 0)
        return;
    rc = reg_id_valid(c->kind, c->params[0])
             ? store_reg_get(c->api->store, c->kind, c->params[0], &sc, &obj)
             : -ENOENT;
    if (rc == -ENOENT) {
        api__problem(c, 404, "not-found", NULL, NULL, "no %s with id \"%s\"", c->kind->name,
                     c->params[0]);
        return;
    }
    if (rc != 0) {
        reply_store_error(c, rc);
        return;
    }
    api__json(c, 200, obj);
}

/* Answer with the entity as now stored (with its time stamps). */
/* The registry changed: what the requests runtime caches is read again. */
static void changed(struct api_call *c)
{
    if (c->api->requests)
        requests_registry_changed(c->api->requests);
}

static void reply_stored(struct api_call *c, int status, const char *id)
{
    struct store_scope all = {SCOPE_ALL, NULL, NULL};
    json_t *obj = NULL;
    changed(c);
    int rc = store_reg_get(c->api->store, c->kind, id, &all, &obj);
    if (rc != 0) {
        reply_store_error(c, rc);
        return;
    }
    if (status == 201) {
        char loc[256];
        snprintf(loc, sizeof loc, "/v1/%s/%s", c->kind->plural, id);
        http_add_header(c->req, "Location", loc);
    }
    api__json(c, status, obj);
}

/* -EEXIST from the store: on create the id may be taken; otherwise (and on
 * every update) a unique combination of fields is. */
static void reply_conflict(struct api_call *c, const json_t *obj, int creating)
{
    struct store_scope all = {SCOPE_ALL, NULL, NULL};
    const char *id = json_string_value(json_object_get(obj, "id"));
    json_t *cur = NULL;

    if (creating && store_reg_get(c->api->store, c->kind, id, &all, &cur) == 0) {
        json_decref(cur);
        api__problem(c, 409, "conflict", NULL, "/id", "a %s with id \"%s\" already exists",
                     c->kind->name, id);
        return;
    }
    const char *const *u = c->kind->unique;
    char ptr[64];
    snprintf(ptr, sizeof ptr, "/%s", u ? u[0] : "id");
    api__problem(c, 409, "conflict", NULL, ptr, "another %s already has the same %s%s%s",
                 c->kind->name, u ? u[0] : "key", u && u[1] ? " and " : "", u && u[1] ? u[1] : "");
}

void api__reg_create(struct api_call *c)
{
    struct reg_lookup lk;
    struct reg_error err;
    json_t *body = NULL, *obj = NULL;
    int rc;

    if (api__check_query(c, NULL, NULL) != 0 || api__body(c, 0, &body) != 0)
        return;
    reg_lookup_store(&lk, c->api->store);
    if (reg_validate(c->kind, body, NULL, NULL, 0, &lk, &obj, &err) != 0) {
        reply_reg_error(c, &err);
        goto out;
    }
    rc = store_reg_insert(c->api->store, c->kind, obj);
    if (rc == -EEXIST)
        reply_conflict(c, obj, 1);
    else if (rc != 0)
        reply_store_error(c, rc);
    else {
        LOG(LOG_INFO, "registry created", LOG_S("kind", c->kind->name),
            LOG_S("id", json_string_value(json_object_get(obj, "id"))));
        reply_stored(c, 201, json_string_value(json_object_get(obj, "id")));
    }
out:
    json_decref(body);
    json_decref(obj);
}

static void update(struct api_call *c, int patch)
{
    struct store_scope all = {SCOPE_ALL, NULL, NULL};
    struct reg_lookup lk;
    struct reg_error err;
    json_t *body = NULL, *obj = NULL, *cur = NULL;
    int rc;

    if (api__check_query(c, NULL, NULL) != 0 || api__body(c, 0, &body) != 0)
        return;
    rc = reg_id_valid(c->kind, c->params[0])
             ? store_reg_get(c->api->store, c->kind, c->params[0], &all, &cur)
             : -ENOENT;
    if (rc != 0) {
        if (rc == -ENOENT)
            api__problem(c, 404, "not-found", NULL, NULL, "no %s with id \"%s\"", c->kind->name,
                         c->params[0]);
        else
            reply_store_error(c, rc);
        goto out;
    }
    reg_lookup_store(&lk, c->api->store);
    if (reg_validate(c->kind, body, cur, c->params[0], patch, &lk, &obj, &err) != 0 ||
        reg_check_referrers(c->api->store, c->kind, obj, &err) != 0) {
        reply_reg_error(c, &err);
        goto out;
    }
    rc = store_reg_update(c->api->store, c->kind, obj);
    if (rc == -EEXIST)
        reply_conflict(c, obj, 0);
    else if (rc != 0)
        reply_store_error(c, rc);
    else {
        LOG(LOG_INFO, "registry updated", LOG_S("kind", c->kind->name), LOG_S("id", c->params[0]));
        reply_stored(c, 200, c->params[0]);
    }
out:
    json_decref(body);
    json_decref(obj);
    json_decref(cur);
}

void api__reg_replace(struct api_call *c)
{
    update(c, 0);
}

void api__reg_patch(struct api_call *c)
{
    update(c, 1);
}

/* Name one entity that still points at the one to delete. */
static void reply_referenced(struct api_call *c)
{
    struct reg_referrer r;
    int rc = reg_find_referrer(c->api->store, c->kind, c->params[0], NULL, NULL, &r);
    if (rc < 0) {
        reply_store_error(c, rc);
        return;
    }
    if (rc == 0) {
        api__problem(c, 409, "conflict", NULL, NULL, "%s \"%s\" is still referenced", c->kind->name,
                     c->params[0]);
        return;
    }
    api__problem(c, 409, "conflict", NULL, NULL,
                 "%s \"%s\" is still referenced by %s \"%s\" (field %s)", c->kind->name,
                 c->params[0], r.kind->name, r.id, r.field->name);
}

void api__reg_delete(struct api_call *c)
{
    int rc;
    if (api__check_query(c, NULL, NULL) != 0)
        return;
    rc = reg_id_valid(c->kind, c->params[0])
             ? store_reg_delete(c->api->store, c->kind, c->params[0])
             : -ENOENT;
    if (rc == -ENOENT)
        api__problem(c, 404, "not-found", NULL, NULL, "no %s with id \"%s\"", c->kind->name,
                     c->params[0]);
    else if (rc == -EBUSY)
        reply_referenced(c);
    else if (rc != 0)
        reply_store_error(c, rc);
    else {
        LOG(LOG_INFO, "registry deleted", LOG_S("kind", c->kind->name), LOG_S("id", c->params[0]));
        if (c->kind->id == REG_PARTY)
            api__events_party_deleted(c->api, c->params[0]);
        changed(c);
        api__json(c, 204, NULL);
    }
}

void api__import(struct api_call *c)
{
    struct reg_error err;
    json_t *body = NULL, *summary = NULL;
    int rc;

    if (api__check_query(c, NULL, NULL) != 0 || api__body(c, 0, &body) != 0)
        return;
    rc = reg_import(c->api->store, body, &summary, &err);
    json_decref(body);
    if (rc != 0) {
        if (err.status >= 500)
            api__problem(c, 503, "store-unavailable", NULL, NULL, "%s; nothing was imported",
                         err.detail);
        else
            api__problem(c, err.status, err.status == 409 ? "conflict" : "validation", NULL,
                         err.pointer, "%s: %s; nothing was imported", err.pointer, err.detail);
        return;
    }
    LOG(LOG_INFO, "registry imported", LOG_S("by", c->who.party[0] ? c->who.party : "admin"));
    changed(c);
    api__json(c, 200, json_pack("{s:o}", "imported", summary));
}

/* --- traffic light ----------------------------------------------------------- */

void api__set_light(struct api_call *c)
{
    static const char *const lights[] = {"green", "yellow", "red", NULL};
    struct store_scope sc = api__scope(c, c->kind);
    json_t *body = NULL, *seg = NULL, *v;
    const char *key, *light = NULL, *reason = NULL;
    char msg[128], ptr[160];
    int rc;

    if (api__check_query(c, NULL, NULL) != 0)
        return;
    /* Decided before the segment is looked up, so that the answer tells
     * nothing about which segments exist. */
    if (!c->who.admin && strcmp(c->who.role, "vnb") != 0) {
        api__problem(c, 403, "forbidden", NULL, NULL,
                     "only a VNB (for its own segments) or an admin sets a traffic light");
        return;
    }
    rc = reg_id_valid(c->kind, c->params[0])
             ? store_reg_get(c->api->store, c->kind, c->params[0], &sc, &seg)
             : -ENOENT;
    if (rc != 0) {
        if (rc == -ENOENT)
            api__problem(c, 404, "not-found", NULL, NULL, "no segment with id \"%s\"",
                         c->params[0]);
        else
            reply_store_error(c, rc);
        return;
    }
    json_decref(seg);
    if (api__body(c, 0, &body) != 0)
        return;
    json_object_foreach(body, key, v)
    {
        snprintf(ptr, sizeof ptr, "/%s", key);
        if (strcmp(key, "light") == 0) {
            light = json_string_value(v);
        } else if (strcmp(key, "reason") == 0) {
            if (!json_is_null(v) && reg_text_check(v, 0, 500, msg, sizeof msg) != 0) {
                api__problem(c, 422, "validation", NULL, ptr, "reason: %s", msg);
                goto out;
            }
            reason = json_string_value(v);
        } else {
            api__problem(c, 422, "validation", NULL, ptr,
                         "unknown field; a traffic light takes \"light\" and \"reason\"");
            goto out;
        }
    }
    int ok = 0;
    for (int i = 0; light && lights[i] && !ok; i++)
        ok = strcmp(light, lights[i]) == 0;
    if (!ok) {
        api__problem(c, 422, "validation", NULL, "/light", "light must be green, yellow or red");
        goto out;
    }
    const char *by = c->who.party[0] ? c->who.party : "admin";
    rc = store_segment_set_light(c->api->store, c->params[0], light, by, reason, time_now_ms());
    if (rc != 0) {
        reply_store_error(c, rc);
        goto out;
    }
    LOG(LOG_INFO, "traffic light set", LOG_S("segment", c->params[0]), LOG_S("light", light),
        LOG_S("by", by));
    if (c->api->requests)
        requests_light_changed(c->api->requests, c->params[0], light, by, reason);
    struct store_scope all = {SCOPE_ALL, NULL, NULL};
    rc = store_reg_get(c->api->store, c->kind, c->params[0], &all, &seg);
    if (rc != 0)
        reply_store_error(c, rc);
    else
        api__json(c, 200, seg);
out:
    json_decref(body);
}

/* --- tokens ------------------------------------------------------------------ */

/* The party named in the URL must exist; answers 404 otherwise. */
static int party_exists(struct api_call *c)
{
    struct store_scope all = {SCOPE_ALL, NULL, NULL};
    json_t *p = NULL;
    int rc = reg_is_party_id(c->params[0])
                 ? store_reg_get(c->api->store, c->kind, c->params[0], &all, &p)
                 : -ENOENT;
    json_decref(p);
    if (rc == -ENOENT)
        api__problem(c, 404, "not-found", NULL, NULL, "no party with id \"%s\"", c->params[0]);
    else if (rc != 0)
        reply_store_error(c, rc);
    return rc;
}

void api__token_create(struct api_call *c)
{
    char token[TOKEN_LEN + 1], id[TOKEN_ID_LEN + 1], ts[40];
    uint8_t hash[TOKEN_HASH_LEN];
    json_t *body = NULL, *label = NULL, *v;
    const char *key;
    int64_t now = time_now_ms();
    int rc;

    if (api__check_query(c, NULL, NULL) != 0 || party_exists(c) != 0 || api__body(c, 1, &body) != 0)
        return;
    json_object_foreach(body, key, v)
    {
        char ptr[160], msg[128];
        snprintf(ptr, sizeof ptr, "/%s", key);
        if (strcmp(key, "label") != 0) {
            api__problem(c, 422, "validation", NULL, ptr,
                         "unknown field; only \"label\" may be given");
            goto out;
        }
        if (!json_is_null(v) && reg_text_check(v, 1, 100, msg, sizeof msg) != 0) {
            api__problem(c, 422, "validation", NULL, ptr, "label: %s", msg);
            goto out;
        }
        label = json_is_null(v) ? NULL : v;
    }
    if (token_generate(token, id) != 0) {
        api__problem(c, 503, "unavailable", NULL, NULL, "no random numbers available");
        goto out;
    }
    token_hash(token, strlen(token), hash);
    rc = store_token_add(c->api->store, id, c->params[0], hash, json_string_value(label), now);
    if (rc != 0) {
        reply_store_error(c, rc);
        goto out;
    }
    LOG(LOG_INFO, "token created", LOG_S("party", c->params[0]), LOG_S("token_id", id));
    api__json(c, 201,
              json_pack("{s:s, s:s, s:O, s:s, s:s}", "id", id, "party", c->params[0], "label",
                        label ? label : json_null(), "created_at",
                        time_format_ms(now, ts, sizeof ts), "token", token));
out:
    json_decref(body);
}

void api__token_list(struct api_call *c)
{
    json_t *items = NULL;
    int rc;
    if (api__check_query(c, NULL, NULL) != 0 || party_exists(c) != 0)
        return;
    rc = store_token_list(c->api->store, c->params[0], &items);
    if (rc != 0)
        reply_store_error(c, rc);
    else
        api__json(c, 200, json_pack("{s:o}", "items", items));
}

void api__token_delete(struct api_call *c)
{
    int rc;
    if (api__check_query(c, NULL, NULL) != 0 || party_exists(c) != 0)
        return;
    rc = store_token_delete(c->api->store, c->params[0], c->params[1]);
    if (rc == -ENOENT)
        api__problem(c, 404, "not-found", NULL, NULL, "party %s has no token \"%s\"", c->params[0],
                     c->params[1]);
    else if (rc != 0)
        reply_store_error(c, rc);
    else {
        LOG(LOG_INFO, "token revoked", LOG_S("party", c->params[0]),
            LOG_S("token_id", c->params[1]));
        api__json(c, 204, NULL);
    }
}
