/*
 * store_impl.h - the backend vtable behind store.h. Only store.c and the
 * backends include this file.
 *
 * Each backend allocates a struct that begins with a struct store and sets
 * 'ops'; store.c forwards every public call to it. Contracts are those of
 * store.h.
 */
#ifndef CLSM_STORE_IMPL_H
#define CLSM_STORE_IMPL_H

#include "store/store.h"

struct store_ops {
    const char *name;
    void (*close)(struct store *s);
    const char *(*errmsg)(struct store *s);
    int (*schema_version)(struct store *s);
    int (*ping)(struct store *s);
    int (*begin)(struct store *s);
    int (*commit)(struct store *s);
    int (*rollback)(struct store *s);
    int (*reg_get)(struct store *s, const struct reg_kind *k, const char *id,
                   const struct store_scope *scope, json_t **out);
    int (*reg_insert)(struct store *s, const struct reg_kind *k, const json_t *obj);
    int (*reg_update)(struct store *s, const struct reg_kind *k, const json_t *obj);
    int (*reg_upsert)(struct store *s, const struct reg_kind *k, const json_t *obj, int *created);
    int (*reg_delete)(struct store *s, const struct reg_kind *k, const char *id);
    int (*reg_list)(struct store *s, const struct store_query *q, json_t **items, int *more);
    int (*segment_set_light)(struct store *s, const char *segment, const char *light,
                             const char *set_by, const char *reason, int64_t now_ms);
    int (*token_add)(struct store *s, const char *id, const char *party,
                     const uint8_t hash[TOKEN_HASH_LEN], const char *label, int64_t now_ms);
    int (*token_lookup)(struct store *s, const uint8_t hash[TOKEN_HASH_LEN],
                        struct store_principal *out);
    int (*token_list)(struct store *s, const char *party, json_t **items);
    int (*token_delete)(struct store *s, const char *party, const char *id);
    int (*event_last)(struct store *s, int64_t *seq, uint8_t hash[32]);
    int (*event_insert)(struct store *s, int64_t seq, int64_t time_ms, const char *kind,
                        const char *subject, const char *actor, const char *audience,
                        const char *payload, const uint8_t prev[32], const uint8_t hash[32]);
    int (*command_put)(struct store *s, const struct store_command *cmd);
    int (*command_get)(struct store *s, const char *id, json_t **out);
    int (*command_active)(struct store *s, json_t **items);
    /* Reading events; webhook subscriptions. */
    int (*event_list)(struct store *s, const struct store_event_filter *f, json_t **items);
    int (*webhook_insert)(struct store *s, const struct store_webhook *w);
    int (*webhook_all)(struct store *s, json_t **items);
    int (*webhook_delete)(struct store *s, const char *id);
    int (*webhook_progress)(struct store *s, const struct store_webhook_state *st);
    /* Requests, their targets and executions; device states. */
    int (*request_put)(struct store *s, const struct store_request *r);
    int (*request_get)(struct store *s, const char *id, json_t **out);
    int (*request_find_idem)(struct store *s, const char *party, const char *key, json_t **out);
    int (*request_max_seq)(struct store *s, int64_t *seq);
    int (*request_list)(struct store *s, const struct store_request_query *q, json_t **items,
                        int *more);
    int (*target_put)(struct store *s, const struct store_target *t);
    int (*targets_of)(struct store *s, const char *request, json_t **items);
    int (*execution_put)(struct store *s, const struct store_execution *e);
    int (*executions_of)(struct store *s, const char *request, const char *after, int limit,
                         json_t **items, int *more);
    int (*device_state_put)(struct store *s, const char *device, const char *state, int64_t at);
    int (*device_state_get)(struct store *s, const char *device, json_t **out);
    /* Meter data. */
    int (*meter_doc_put)(struct store *s, const char *smgw, const char *id, int64_t created_ms,
                         int64_t received_ms, int64_t values);
    int (*meter_doc_exists)(struct store *s, const char *smgw, const char *id);
    int (*meter_point_audience)(struct store *s, const char *point, json_t **parties);
    int (*gateway_parties)(struct store *s, const char *smgw, json_t **parties);
    int (*readings_put)(struct store *s, const char *smgw, const struct store_reading *r, size_t n,
                        size_t *stored);
    int (*meter_point_owner)(struct store *s, const char *point, const char *bind_smgw, char *smgw,
                             char *installation);
    int (*readings_downsample)(struct store *s, int64_t before_ms, int64_t *rows);
    int (*readings_query)(struct store *s, const struct store_reading_query *q, json_t **items,
                          int *more);
};

struct store {
    const struct store_ops *ops;
};

/* The SQLite backend's constructor. */
int store_sqlite_open(const char *path, const struct store_options *opt, struct store **out,
                      char *err, size_t errlen);

/* Schema migrations of the SQLite backend, applied in order; entry i brings
 * the schema to version i + 1. */
extern const char *const store_sqlite_migrations[];
extern const int store_sqlite_nmigrations;

#endif
