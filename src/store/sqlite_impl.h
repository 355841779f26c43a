/*
 * sqlite_impl.h - what the files of the SQLite backend share: the cached
 * statement, the step helpers and the functions of sqlite_requests.c that
 * store_sqlite.c puts into its vtable. Not for use outside src/store/.
 */
#ifndef CLSM_SQLITE_IMPL_H
#define CLSM_SQLITE_IMPL_H

#include <sqlite3.h>

#include "store/store.h"

/* A prepared statement for 'sql' from the backend's cache, reset and with
 * bindings cleared; NULL with the error recorded. */
sqlite3_stmt *sq__prep(struct store *s, const char *sql);
/* Step a statement that returns no rows and reset it: 0 or -errno. */
int sq__step_done(struct store *s, sqlite3_stmt *st);
/* Record the database's current error and map it to -errno. */
int sq__fail(struct store *s);
/* Rows changed by the last statement. */
int sq__changes(struct store *s);

int sq__request_put(struct store *s, const struct store_request *r);
int sq__request_get(struct store *s, const char *id, json_t **out);
int sq__request_find_idem(struct store *s, const char *party, const char *key, json_t **out);
int sq__request_max_seq(struct store *s, int64_t *seq);
int sq__request_list(struct store *s, const struct store_request_query *q, json_t **items,
                     int *more);
int sq__target_put(struct store *s, const struct store_target *t);
int sq__targets_of(struct store *s, const char *request, json_t **items);
int sq__execution_put(struct store *s, const struct store_execution *e);
int sq__executions_of(struct store *s, const char *request, const char *after, int limit,
                      json_t **items, int *more);
int sq__device_state_put(struct store *s, const char *device, const char *state, int64_t at);
int sq__device_state_get(struct store *s, const char *device, json_t **out);
int sq__meter_doc_put(struct store *s, const char *smgw, const char *id, int64_t created_ms,
                      int64_t received_ms, int64_t values);
int sq__meter_doc_exists(struct store *s, const char *smgw, const char *id);
int sq__meter_point_audience(struct store *s, const char *point, json_t **parties);
int sq__gateway_parties(struct store *s, const char *smgw, json_t **parties);
int sq__readings_put(struct store *s, const char *smgw, const struct store_reading *r, size_t n,
                     size_t *stored);
int sq__meter_point_owner(struct store *s, const char *point, const char *bind_smgw, char *smgw,
                          char *installation);
int sq__readings_downsample(struct store *s, int64_t before_ms, int64_t *rows);
int sq__readings_query(struct store *s, const struct store_reading_query *q, json_t **items,
                       int *more);

#endif
