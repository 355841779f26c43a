/*
 * sqlite_requests.c - the SQLite backend's part for requests, their targets
 * and executions, and the states devices confirmed (store.h, migration 4).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "store/sqlite_impl.h"

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static json_t *col_json(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    json_t *v = t ? json_loads(t, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_null();
}

static json_t *col_text(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    return t ? json_string(t) : json_null();
}

static json_t *col_int(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null()
                                                     : json_integer(sqlite3_column_int64(st, i));
}

/* Run a query of rows made by 'row' into an array; with 'limit' > 0 one
 * extra row tells '*more'. */
static int rows(struct store *s, sqlite3_stmt *st, json_t *(*row)(sqlite3_stmt *), int limit,
                json_t **items, int *more)
{
    int rc, n = 0;
    json_t *arr = json_array();
    if (more)
        *more = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (limit > 0 && n == limit) {
            if (more)
                *more = 1;
            break;
        }
        json_array_append_new(arr, row(st));
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = sq__fail(s);
        sqlite3_reset(st);
        json_decref(arr);
        return rc;
    }
    sqlite3_reset(st);
    *items = arr;
    return 0;
}

static int one(struct store *s, sqlite3_stmt *st, json_t *(*row)(sqlite3_stmt *), json_t **out)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = row(st);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? -ENOENT : sq__fail(s);
    }
    sqlite3_reset(st);
    return rc;
}

/* --- requests ------------------------------------------------------------------------ */

#define REQUEST_COLUMNS                                                                     \
    "SELECT id, seq, party, role, spec, state, decision, deadline, window_end, created_at," \
    " updated_at, ended_at, superseded_by, idem_key, body_hash, answer FROM requests"

static json_t *request_row(sqlite3_stmt *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", col_text(st, 0));
    json_object_set_new(o, "seq", col_int(st, 1));
    json_object_set_new(o, "party", col_text(st, 2));
    json_object_set_new(o, "role", col_text(st, 3));
    json_object_set_new(o, "spec", col_json(st, 4));
    json_object_set_new(o, "state", col_text(st, 5));
    json_object_set_new(o, "decision", col_json(st, 6));
    json_object_set_new(o, "deadline", col_int(st, 7));
    json_object_set_new(o, "window_end", col_int(st, 8));
    json_object_set_new(o, "created_at", col_int(st, 9));
    json_object_set_new(o, "updated_at", col_int(st, 10));
    json_object_set_new(o, "ended_at", col_int(st, 11));
    json_object_set_new(o, "superseded_by", col_text(st, 12));
    json_object_set_new(o, "idem_key", col_text(st, 13));
    json_object_set_new(o, "body_hash", col_text(st, 14));
    json_object_set_new(o, "answer", col_json(st, 15));
    return o;
}

int sq__request_put(struct store *s, const struct store_request *r)
{
    sqlite3_stmt *st;
    if (r->is_new) {
        st = sq__prep(s, "INSERT INTO requests (id, seq, party, role, spec, state, decision,"
                         " deadline, window_end, created_at, updated_at, ended_at, superseded_by,"
                         " idem_key, body_hash, answer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                         " ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)");
        if (st == NULL)
            return -EIO;
        sqlite3_bind_int64(st, 2, r->seq);
        sqlite3_bind_text(st, 3, r->party, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, r->role, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, r->spec, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 8, r->deadline);
        if (r->window_end == INT64_MAX)
            sqlite3_bind_null(st, 9);
        else
            sqlite3_bind_int64(st, 9, r->window_end);
        sqlite3_bind_int64(st, 10, r->created_at);
        bind_text_or_null(st, 14, r->idem_key);
        bind_text_or_null(st, 15, r->body_hash);
        bind_text_or_null(st, 16, r->answer);
    } else {
        st = sq__prep(s, "UPDATE requests SET state = ?6, decision = ?7, updated_at = ?11,"
                         " ended_at = ?12, superseded_by = ?13 WHERE id = ?1");
        if (st == NULL)
            return -EIO;
    }
    sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, r->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, r->decision, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, r->updated_at);
    if (r->ended_at)
        sqlite3_bind_int64(st, 12, r->ended_at);
    else
        sqlite3_bind_null(st, 12);
    bind_text_or_null(st, 13, r->superseded_by);
    int rc = sq__step_done(s, st);
    if (rc == 0 && !r->is_new && sq__changes(s) == 0)
        return -ENOENT;
    return rc;
}

int sq__request_get(struct store *s, const char *id, json_t **out)
{
    sqlite3_stmt *st = sq__prep(s, REQUEST_COLUMNS " WHERE id = ?1");
    *out = NULL;
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return one(s, st, request_row, out);
}

int sq__request_find_idem(struct store *s, const char *party, const char *key, json_t **out)
{
    sqlite3_stmt *st = sq__prep(s, REQUEST_COLUMNS " WHERE party = ?1 AND idem_key = ?2");
    *out = NULL;
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, party, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    return one(s, st, request_row, out);
}

int sq__request_max_seq(struct store *s, int64_t *seq)
{
    sqlite3_stmt *st = sq__prep(s, "SELECT coalesce(max(seq), 0) FROM requests");
    if (st == NULL)
        return -EIO;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        rc = sq__fail(s);
    }
    sqlite3_reset(st);
    return rc;
}

int sq__request_list(struct store *s, const struct store_request_query *q, json_t **items,
                     int *more)
{
    sqlite3_stmt *st;
    *items = NULL;
    if (q->limit < 1 || q->limit > 10000)
        return -EINVAL;
    if (q->live)
        st = sq__prep(s, REQUEST_COLUMNS " WHERE (ended_at IS NULL OR state IN ('admitted',"
                                         "'scheduled','executing')) AND seq > ?1"
                                         " ORDER BY seq LIMIT ?2");
    else
        st = sq__prep(s, REQUEST_COLUMNS " WHERE (?3 IS NULL OR party = ?3)"
                                         " AND (?4 IS NULL OR state = ?4)"
                                         " AND (?1 = 0 OR seq < ?1) ORDER BY seq DESC LIMIT ?2");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, q->before_seq);
    sqlite3_bind_int(st, 2, q->limit + 1);
    if (!q->live) {
        bind_text_or_null(st, 3, q->party);
        bind_text_or_null(st, 4, q->state);
    }
    return rows(s, st, request_row, q->limit, items, more);
}

/* --- targets ----------------------------------------------------------------------------- */

static json_t *target_row(sqlite3_stmt *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "installation", col_text(st, 0));
    json_object_set_new(o, "device", col_text(st, 1));
    json_object_set_new(o, "code", col_text(st, 2));
    json_object_set_new(o, "text", col_text(st, 3));
    json_object_set_new(o, "conflict", col_text(st, 4));
    json_object_set_new(o, "steps", col_json(st, 5));
    return o;
}

int sq__target_put(struct store *s, const struct store_target *t)
{
    sqlite3_stmt *st = sq__prep(s, "INSERT OR REPLACE INTO request_targets (request,"
                                   " installation, device, code, text, conflict, steps)"
                                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, t->request, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->installation, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->device, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->code, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, t->text, -1, SQLITE_STATIC);
    bind_text_or_null(st, 6, t->conflict);
    sqlite3_bind_text(st, 7, t->steps, -1, SQLITE_STATIC);
    return sq__step_done(s, st);
}

int sq__targets_of(struct store *s, const char *request, json_t **items)
{
    sqlite3_stmt *st =
        sq__prep(s, "SELECT installation, device, code, text, conflict, steps"
                    " FROM request_targets WHERE request = ?1 ORDER BY installation");
    *items = NULL;
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, request, -1, SQLITE_STATIC);
    return rows(s, st, target_row, 0, items, NULL);
}

/* --- executions ------------------------------------------------------------------------- */

static json_t *execution_row(sqlite3_stmt *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "device", col_text(st, 0));
    json_object_set_new(o, "state", col_text(st, 1));
    json_object_set_new(o, "late", json_boolean(sqlite3_column_int(st, 2)));
    json_object_set_new(o, "deadline", col_int(st, 3));
    json_object_set_new(o, "attempts", col_int(st, 4));
    json_object_set_new(o, "error", col_text(st, 5));
    json_object_set_new(o, "command", col_text(st, 6));
    json_object_set_new(o, "steps", col_json(st, 7));
    return o;
}

int sq__execution_put(struct store *s, const struct store_execution *e)
{
    sqlite3_stmt *st = sq__prep(s, "INSERT OR REPLACE INTO executions (request, device, state,"
                                   " late, deadline, attempts, error, command, steps)"
                                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, e->request, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->device, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e->state, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, e->late != 0);
    sqlite3_bind_int64(st, 5, e->deadline);
    sqlite3_bind_int(st, 6, e->attempts);
    bind_text_or_null(st, 7, e->error);
    bind_text_or_null(st, 8, e->command);
    sqlite3_bind_text(st, 9, e->steps, -1, SQLITE_STATIC);
    return sq__step_done(s, st);
}

int sq__executions_of(struct store *s, const char *request, const char *after, int limit,
                      json_t **items, int *more)
{
    sqlite3_stmt *st = sq__prep(s, "SELECT device, state, late, deadline, attempts, error,"
                                   " command, steps FROM executions WHERE request = ?1"
                                   " AND (?2 IS NULL OR device > ?2) ORDER BY device LIMIT ?3");
    *items = NULL;
    if (limit < 1 || limit > 10000)
        return -EINVAL;
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, request, -1, SQLITE_STATIC);
    bind_text_or_null(st, 2, after);
    sqlite3_bind_int(st, 3, limit + 1);
    return rows(s, st, execution_row, limit, items, more);
}

/* --- device states -------------------------------------------------------------------- */

int sq__device_state_put(struct store *s, const char *device, const char *state, int64_t at)
{
    sqlite3_stmt *st = sq__prep(s, "INSERT OR REPLACE INTO device_states (device, state,"
                                   " updated_at) VALUES (?1, ?2, ?3)");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, at);
    return sq__step_done(s, st);
}

static json_t *device_state_row(sqlite3_stmt *st)
{
    json_t *o = col_json(st, 0);
    if (json_is_object(o))
        json_object_set_new(o, "updated_at", col_int(st, 1));
    return o;
}

int sq__device_state_get(struct store *s, const char *device, json_t **out)
{
    sqlite3_stmt *st = sq__prep(s, "SELECT state, updated_at FROM device_states WHERE device = ?1");
    *out = NULL;
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    return one(s, st, device_state_row, out);
}
