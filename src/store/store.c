/*
 * store.c - the backend-neutral front of store.h: chooses a backend at open
 * and forwards each call through its vtable.
 */
#include "store/store_impl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int store_open(const char *path, const struct store_options *opt, struct store **out, char *err,
               size_t errlen)
{
    *out = NULL;
    if (strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0) {
        snprintf(err, errlen, "the PostgreSQL backend is not part of this build yet");
        return -ENOTSUP;
    }
    if (strncmp(path, "sqlite:", 7) == 0)
        path += 7;
    return store_sqlite_open(path, opt, out, err, errlen);
}

void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}

const char *store_errmsg(struct store *s)
{
    return s->ops->errmsg(s);
}

int store_schema_version(struct store *s)
{
    return s->ops->schema_version(s);
}

int store_ping(struct store *s)
{
    return s->ops->ping(s);
}

int store_begin(struct store *s)
{
    return s->ops->begin(s);
}

int store_commit(struct store *s)
{
    return s->ops->commit(s);
}

int store_rollback(struct store *s)
{
    return s->ops->rollback(s);
}

int store_reg_get(struct store *s, const struct reg_kind *k, const char *id,
                  const struct store_scope *scope, json_t **out)
{
    return s->ops->reg_get(s, k, id, scope, out);
}

int store_reg_insert(struct store *s, const struct reg_kind *k, const json_t *obj)
{
    return s->ops->reg_insert(s, k, obj);
}

int store_reg_update(struct store *s, const struct reg_kind *k, const json_t *obj)
{
    return s->ops->reg_update(s, k, obj);
}

int store_reg_upsert(struct store *s, const struct reg_kind *k, const json_t *obj, int *created)
{
    return s->ops->reg_upsert(s, k, obj, created);
}

int store_reg_delete(struct store *s, const struct reg_kind *k, const char *id)
{
    return s->ops->reg_delete(s, k, id);
}

int store_reg_list(struct store *s, const struct store_query *q, json_t **items, int *more)
{
    return s->ops->reg_list(s, q, items, more);
}

int store_segment_set_light(struct store *s, const char *segment, const char *light,
                            const char *set_by, const char *reason, int64_t now_ms)
{
    return s->ops->segment_set_light(s, segment, light, set_by, reason, now_ms);
}

int store_token_add(struct store *s, const char *id, const char *party,
                    const uint8_t hash[TOKEN_HASH_LEN], const char *label, int64_t now_ms)
{
    return s->ops->token_add(s, id, party, hash, label, now_ms);
}

int store_token_lookup(struct store *s, const uint8_t hash[TOKEN_HASH_LEN],
                       struct store_principal *out)
{
    return s->ops->token_lookup(s, hash, out);
}

int store_token_list(struct store *s, const char *party, json_t **items)
{
    return s->ops->token_list(s, party, items);
}

int store_token_delete(struct store *s, const char *party, const char *id)
{
    return s->ops->token_delete(s, party, id);
}

int store_event_last(struct store *s, int64_t *seq, uint8_t hash[32])
{
    return s->ops->event_last(s, seq, hash);
}

int store_event_insert(struct store *s, int64_t seq, int64_t time_ms, const char *kind,
                       const char *subject, const char *actor, const char *audience,
                       const char *payload, const uint8_t prev[32], const uint8_t hash[32])
{
    return s->ops->event_insert(s, seq, time_ms, kind, subject, actor, audience, payload, prev,
                                hash);
}

int store_command_put(struct store *s, const struct store_command *cmd)
{
    return s->ops->command_put(s, cmd);
}

int store_command_get(struct store *s, const char *id, json_t **out)
{
    return s->ops->command_get(s, id, out);
}

int store_command_active(struct store *s, json_t **items)
{
    return s->ops->command_active(s, items);
}

/* --- reading events; webhook subscriptions ------------------------------------ */

int store_event_list(struct store *s, const struct store_event_filter *f, json_t **items)
{
    return s->ops->event_list(s, f, items);
}

int store_webhook_insert(struct store *s, const struct store_webhook *w)
{
    return s->ops->webhook_insert(s, w);
}

int store_webhook_all(struct store *s, json_t **items)
{
    return s->ops->webhook_all(s, items);
}

int store_webhook_delete(struct store *s, const char *id)
{
    return s->ops->webhook_delete(s, id);
}

int store_webhook_progress(struct store *s, const struct store_webhook_state *st)
{
    return s->ops->webhook_progress(s, st);
}

/* --- requests ---------------------------------------------------------------- */

int store_request_put(struct store *s, const struct store_request *r)
{
    return s->ops->request_put(s, r);
}

int store_request_get(struct store *s, const char *id, json_t **out)
{
    return s->ops->request_get(s, id, out);
}

int store_request_find_idem(struct store *s, const char *party, const char *key, json_t **out)
{
    return s->ops->request_find_idem(s, party, key, out);
}

int store_request_max_seq(struct store *s, int64_t *seq)
{
    return s->ops->request_max_seq(s, seq);
}

int store_request_list(struct store *s, const struct store_request_query *q, json_t **items,
                       int *more)
{
    return s->ops->request_list(s, q, items, more);
}

int store_target_put(struct store *s, const struct store_target *t)
{
    return s->ops->target_put(s, t);
}

int store_targets_of(struct store *s, const char *request, json_t **items)
{
    return s->ops->targets_of(s, request, items);
}

int store_execution_put(struct store *s, const struct store_execution *e)
{
    return s->ops->execution_put(s, e);
}

int store_executions_of(struct store *s, const char *request, const char *after, int limit,
                        json_t **items, int *more)
{
    return s->ops->executions_of(s, request, after, limit, items, more);
}

int store_device_state_put(struct store *s, const char *device, const char *state, int64_t at)
{
    return s->ops->device_state_put(s, device, state, at);
}

int store_device_state_get(struct store *s, const char *device, json_t **out)
{
    return s->ops->device_state_get(s, device, out);
}

int store_meter_doc_put(struct store *s, const char *smgw, const char *id, int64_t created_ms,
                        int64_t received_ms, int64_t values)
{
    return s->ops->meter_doc_put(s, smgw, id, created_ms, received_ms, values);
}

int store_readings_put(struct store *s, const char *smgw, const struct store_reading *r, size_t n,
                       size_t *stored)
{
    return s->ops->readings_put(s, smgw, r, n, stored);
}

int store_meter_point_owner(struct store *s, const char *point, const char *bind_smgw, char *smgw,
                            char *installation)
{
    return s->ops->meter_point_owner(s, point, bind_smgw, smgw, installation);
}

int store_readings_query(struct store *s, const struct store_reading_query *q, json_t **items,
                         int *more)
{
    return s->ops->readings_query(s, q, items, more);
}

int store_meter_doc_exists(struct store *s, const char *smgw, const char *id)
{
    return s->ops->meter_doc_exists(s, smgw, id);
}

int store_meter_point_audience(struct store *s, const char *point, json_t **parties)
{
    return s->ops->meter_point_audience(s, point, parties);
}

int store_readings_downsample(struct store *s, int64_t before_ms, int64_t *rows)
{
    return s->ops->readings_downsample(s, before_ms, rows);
}

int store_gateway_parties(struct store *s, const char *smgw, json_t **parties)
{
    return s->ops->gateway_parties(s, smgw, parties);
}
