/*
 * store_sqlite.c - the SQLite backend of store.h: WAL journal, foreign keys
 * on, migrations at open, every statement prepared once and cached.
 *
 * SQL for registry entities is built from the descriptors of registry.h, so
 * that a field added there needs only a migration here. Values are always
 * bound, never pasted into SQL; the only names pasted are table and column
 * names from the constant descriptors.
 */
#include "store/sqlite_impl.h"
#include "store/store_impl.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/jsonx.h"
#include "common/log.h"
#include "common/util.h"

#define APPLICATION_ID 0x434c534d /* "CLSM" */
#define STMT_CACHE     96
#define SQL_MAX        4096

struct stmt_entry {
    char *sql;
    sqlite3_stmt *st;
    uint64_t used;
};

struct sq {
    struct store base;
    sqlite3 *db;
    int in_tx;
    int tx_broken; /* SQLite rolled the explicit transaction back itself */
    int version;
    uint64_t tick;
    char err[512];
    struct stmt_entry cache[STMT_CACHE];
};

/* A bounded SQL text builder; overflow is a programming error caught by
 * tests, reported as -EIO. */
struct sb {
    char s[SQL_MAX];
    size_t n;
    int overflow;
};

static void sb_add(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    int w;
    if (b->overflow)
        return;
    va_start(ap, fmt);
    w = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= sizeof b->s - b->n)
        b->overflow = 1;
    else
        b->n += (size_t)w;
}

static struct sq *SQ(struct store *s)
{
    return (struct sq *)(void *)s;
}

static int db_fail(struct sq *q, int rc)
{
    snprintf(q->err, sizeof q->err, "%s", sqlite3_errmsg(q->db));
    /* After I/O, full-disk or out-of-memory errors SQLite may roll back the
     * whole transaction; later statements would then run outside it, each
     * committing on its own. Refuse them until the caller rolls back. */
    if (q->in_tx && sqlite3_get_autocommit(q->db))
        q->tx_broken = 1;
    switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return -EEXIST;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return -EBUSY;
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
        return -EINVAL;
    default:
        LOG(LOG_ERROR, "sqlite error", LOG_I("code", rc), LOG_S("error", q->err));
        return -EIO;
    }
}

/* A prepared statement for 'sql' from the cache (prepared on first use),
 * reset and with bindings cleared. Returns NULL on error with q->err set. */
static sqlite3_stmt *prep(struct sq *q, const char *sql)
{
    struct stmt_entry *victim = &q->cache[0];
    if (q->tx_broken) {
        snprintf(q->err, sizeof q->err, "the transaction was rolled back after an error");
        return NULL;
    }
    for (size_t i = 0; i < STMT_CACHE; i++) {
        struct stmt_entry *e = &q->cache[i];
        if (e->sql && strcmp(e->sql, sql) == 0) {
            e->used = ++q->tick;
            sqlite3_reset(e->st);
            sqlite3_clear_bindings(e->st);
            return e->st;
        }
        if (e->used < victim->used)
            victim = e;
    }
    if (victim->st) {
        sqlite3_finalize(victim->st);
        free(victim->sql);
        victim->st = NULL;
        victim->sql = NULL;
    }
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        db_fail(q, rc);
        LOG(LOG_ERROR, "sqlite prepare failed", LOG_S("error", q->err), LOG_S("sql", sql));
        return NULL;
    }
    victim->sql = strdup(sql);
    if (victim->sql == NULL) {
        sqlite3_finalize(st);
        return NULL;
    }
    victim->st = st;
    victim->used = ++q->tick;
    return st;
}

static int exec(struct sq *q, const char *sql)
{
    int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : db_fail(q, rc);
}

/* Step a statement that returns no rows; 0 or a mapped error. */
static int step_done(struct sq *q, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : db_fail(q, sqlite3_extended_errcode(q->db));
    sqlite3_reset(st);
    return ret;
}

/* --- value mapping ------------------------------------------------------- */

static int bind_value(sqlite3_stmt *st, int idx, const struct reg_field *f, const json_t *v)
{
    if (v == NULL || json_is_null(v))
        return sqlite3_bind_null(st, idx);
    switch (f->type) {
    case RT_BOOL:
        return sqlite3_bind_int(st, idx, json_is_true(v));
    case RT_INT:
        return sqlite3_bind_int64(st, idx, json_integer_value(v));
    case RT_TIME: {
        int64_t ms = 0;
        if (json_is_string(v) && time_parse_ms(json_string_value(v), &ms) != 0)
            return SQLITE_MISMATCH;
        return sqlite3_bind_int64(st, idx, json_is_integer(v) ? json_integer_value(v) : ms);
    }
    case RT_ENUMSET: {
        char buf[512];
        size_t n = 0, i;
        json_t *e;
        buf[0] = '\0';
        json_array_foreach(v, i, e)
        {
            int w = snprintf(buf + n, sizeof buf - n, "%s%s", i ? "," : "", json_string_value(e));
            if (w < 0 || (size_t)w >= sizeof buf - n)
                return SQLITE_TOOBIG;
            n += (size_t)w;
        }
        return sqlite3_bind_text(st, idx, buf, (int)n, SQLITE_TRANSIENT);
    }
    default:
        return sqlite3_bind_text(st, idx, json_string_value(v), (int)json_string_length(v),
                                 SQLITE_STATIC);
    }
}

static json_t *column_value(sqlite3_stmt *st, int col, const struct reg_field *f)
{
    char tbuf[40];
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return json_null();
    switch (f->type) {
    case RT_BOOL:
        return json_boolean(sqlite3_column_int(st, col));
    case RT_INT:
        return json_integer(sqlite3_column_int64(st, col));
    case RT_TIME:
        return json_string(time_format_ms(sqlite3_column_int64(st, col), tbuf, sizeof tbuf));
    case RT_ENUMSET: {
        json_t *a = json_array();
        const char *p = (const char *)sqlite3_column_text(st, col);
        while (p && *p) {
            const char *c = strchr(p, ',');
            size_t n = c ? (size_t)(c - p) : strlen(p);
            json_array_append_new(a, json_stringn(p, n));
            p = c ? c + 1 : NULL;
        }
        return a;
    }
    default:
        return json_stringn((const char *)sqlite3_column_text(st, col),
                            (size_t)sqlite3_column_bytes(st, col));
    }
}

static json_t *row_object(sqlite3_stmt *st, const struct reg_kind *k)
{
    json_t *o = json_object();
    for (size_t i = 0; i < k->nfields; i++)
        json_object_set_new(o, k->fields[i].name, column_value(st, (int)i, &k->fields[i]));
    return o;
}

static int writable(const struct reg_field *f)
{
    return !(f->flags & (RF_READONLY | RF_SERVER));
}

static void select_cols(struct sb *b, const struct reg_kind *k)
{
    sb_add(b, "SELECT ");
    for (size_t i = 0; i < k->nfields; i++)
        sb_add(b, "%st.%s", i ? ", " : "", k->fields[i].name);
    sb_add(b, " FROM %s t WHERE 1=1", k->plural);
}

/* The scope as a WHERE clause; returns the number of party parameters it
 * uses (0 or 1), which are bound next. */
static int scope_sql(struct sb *b, const struct reg_kind *k, const struct store_scope *sc)
{
    switch (sc->kind) {
    case SCOPE_ALL:
        return 0;
    case SCOPE_FIELD:
        if (reg_field(k, sc->field) == NULL)
            break;
        sb_add(b, " AND t.%s = ?", sc->field);
        return 1;
    case SCOPE_VNB:
        if (k->id == REG_SEGMENT) {
            sb_add(b, " AND t.vnb = ?");
            return 1;
        }
        if (k->id == REG_INSTALLATION) {
            sb_add(b, " AND t.segment IN (SELECT id FROM segments WHERE vnb = ?)");
            return 1;
        }
        if (k->id == REG_ASSIGNMENT) {
            sb_add(b, " AND t.installation IN (SELECT i.id FROM installations i"
                      " JOIN segments s ON s.id = i.segment WHERE s.vnb = ?)");
            return 1;
        }
        break;
    case SCOPE_ASSIGNED:
        if (k->id == REG_INSTALLATION) {
            sb_add(b, " AND t.id IN (SELECT installation FROM assignments WHERE party = ?)");
            return 1;
        }
        if (k->id == REG_ASSIGNMENT) {
            sb_add(b, " AND t.party = ?");
            return 1;
        }
        break;
    case SCOPE_NONE:
        break;
    }
    sb_add(b, " AND 0");
    return 0;
}

/* --- registry -------------------------------------------------------------- */

static int sq_reg_get(struct store *s, const struct reg_kind *k, const char *id,
                      const struct store_scope *scope, json_t **out)
{
    struct sq *q = SQ(s);
    struct sb b = {.n = 0};
    sqlite3_stmt *st;
    int np, rc;

    *out = NULL;
    select_cols(&b, k);
    sb_add(&b, " AND t.id = ?");
    np = scope_sql(&b, k, scope);
    if (b.overflow || (st = prep(q, b.s)) == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (np)
        sqlite3_bind_text(st, 2, scope->party, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = row_object(st, k);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = -ENOENT;
    } else {
        rc = db_fail(q, sqlite3_extended_errcode(q->db));
    }
    sqlite3_reset(st);
    return rc;
}

/* Bind the writable fields of 'obj' from parameter 1 on, then the time
 * stamps; returns the next free parameter index. */
static int bind_writable(sqlite3_stmt *st, const struct reg_kind *k, const json_t *obj, int64_t now,
                         int with_created)
{
    int idx = 1;
    for (size_t i = 0; i < k->nfields; i++) {
        const struct reg_field *f = &k->fields[i];
        if (!writable(f))
            continue;
        if (bind_value(st, idx++, f, json_object_get(obj, f->name)) != SQLITE_OK)
            return -1;
    }
    if (with_created)
        sqlite3_bind_int64(st, idx++, now);
    sqlite3_bind_int64(st, idx++, now);
    return idx;
}

static void insert_sql(struct sb *b, const struct reg_kind *k)
{
    int n = 0;
    sb_add(b, "INSERT INTO %s (", k->plural);
    for (size_t i = 0; i < k->nfields; i++)
        if (writable(&k->fields[i]))
            sb_add(b, "%s%s", n++ ? ", " : "", k->fields[i].name);
    sb_add(b, ", created_at, updated_at) VALUES (");
    for (int i = 0; i < n + 2; i++)
        sb_add(b, "%s?", i ? ", " : "");
    sb_add(b, ")");
}

static int sq_reg_insert(struct store *s, const struct reg_kind *k, const json_t *obj)
{
    struct sq *q = SQ(s);
    struct sb b = {.n = 0};
    sqlite3_stmt *st;

    insert_sql(&b, k);
    if (b.overflow || (st = prep(q, b.s)) == NULL)
        return -EIO;
    if (bind_writable(st, k, obj, time_now_ms(), 1) < 0)
        return -EINVAL;
    return step_done(q, st);
}

static int sq_reg_update(struct store *s, const struct reg_kind *k, const json_t *obj)
{
    struct sq *q = SQ(s);
    struct sb b = {.n = 0};
    sqlite3_stmt *st;
    int n = 0, idx, rc;

    sb_add(&b, "UPDATE %s SET ", k->plural);
    for (size_t i = 0; i < k->nfields; i++)
        if (writable(&k->fields[i]))
            sb_add(&b, "%s%s = ?", n++ ? ", " : "", k->fields[i].name);
    sb_add(&b, ", updated_at = ? WHERE id = ?");
    if (b.overflow || (st = prep(q, b.s)) == NULL)
        return -EIO;
    idx = bind_writable(st, k, obj, time_now_ms(), 0);
    if (idx < 0)
        return -EINVAL;
    sqlite3_bind_text(st, idx, json_string_value(json_object_get(obj, "id")), -1, SQLITE_STATIC);
    rc = step_done(q, st);
    if (rc == 0 && sqlite3_changes(q->db) == 0)
        rc = -ENOENT;
    return rc;
}

static int sq_reg_upsert(struct store *s, const struct reg_kind *k, const json_t *obj, int *created)
{
    struct sq *q = SQ(s);
    struct sb b = {.n = 0};
    struct store_scope all = {SCOPE_ALL, NULL, NULL};
    sqlite3_stmt *st;
    json_t *cur = NULL;
    int n = 0;

    int rc = sq_reg_get(s, k, json_string_value(json_object_get(obj, "id")), &all, &cur);
    if (rc != 0 && rc != -ENOENT)
        return rc;
    json_decref(cur);
    *created = rc == -ENOENT;
    insert_sql(&b, k);
    sb_add(&b, " ON CONFLICT (id) DO UPDATE SET ");
    for (size_t i = 0; i < k->nfields; i++)
        if (writable(&k->fields[i]) && !(k->fields[i].flags & RF_KEY))
            sb_add(&b, "%s%s = excluded.%s", n++ ? ", " : "", k->fields[i].name, k->fields[i].name);
    sb_add(&b, ", updated_at = excluded.updated_at");
    if (b.overflow || (st = prep(q, b.s)) == NULL)
        return -EIO;
    if (bind_writable(st, k, obj, time_now_ms(), 1) < 0)
        return -EINVAL;
    return step_done(q, st);
}

static int sq_reg_delete(struct store *s, const struct reg_kind *k, const char *id)
{
    struct sq *q = SQ(s);
    struct sb b = {.n = 0};
    sqlite3_stmt *st;
    int rc;

    sb_add(&b, "DELETE FROM %s WHERE id = ?", k->plural);
    if (b.overflow || (st = prep(q, b.s)) == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = step_done(q, st);
    if (rc == 0 && sqlite3_changes(q->db) == 0)
        rc = -ENOENT;
    return rc;
}

static int sq_reg_list(struct store *s, const struct store_query *qu, json_t **items, int *more)
{
    struct sq *q = SQ(s);
    struct sb b = {.n = 0};
    const struct reg_kind *k = qu->kind;
    sqlite3_stmt *st;
    int np, idx = 1, rc, count = 0;

    *items = NULL;
    *more = 0;
    select_cols(&b, k);
    np = scope_sql(&b, k, &qu->scope);
    for (size_t i = 0; i < qu->nfilters; i++) {
        const struct reg_field *f = qu->filters[i].field;
        if (json_is_null(qu->filters[i].value))
            sb_add(&b, " AND t.%s IS NULL", f->name);
        else if ((f->flags & RF_SUBTREE) && !qu->exact)
            sb_add(&b,
                   " AND t.%s IN (WITH RECURSIVE sub(id) AS (SELECT ? UNION"
                   " SELECT s.id FROM segments s JOIN sub ON s.parent = sub.id)"
                   " SELECT id FROM sub)",
                   f->name);
        else
            sb_add(&b, " AND t.%s = ?", f->name);
    }
    if (qu->after)
        sb_add(&b, " AND t.id > ?");
    sb_add(&b, " ORDER BY t.id LIMIT ?");
    if (b.overflow || (st = prep(q, b.s)) == NULL)
        return -EIO;
    if (np)
        sqlite3_bind_text(st, idx++, qu->scope.party, -1, SQLITE_STATIC);
    for (size_t i = 0; i < qu->nfilters; i++)
        if (!json_is_null(qu->filters[i].value))
            bind_value(st, idx++, qu->filters[i].field, qu->filters[i].value);
    if (qu->after)
        sqlite3_bind_text(st, idx++, qu->after, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, idx, qu->limit + 1);

    json_t *arr = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count++ == qu->limit) {
            *more = 1;
            break;
        }
        json_array_append_new(arr, row_object(st, k));
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = db_fail(q, sqlite3_extended_errcode(q->db));
        sqlite3_reset(st);
        json_decref(arr);
        return rc;
    }
    sqlite3_reset(st);
    *items = arr;
    return 0;
}

static int sq_segment_set_light(struct store *s, const char *segment, const char *light,
                                const char *set_by, const char *reason, int64_t now_ms)
{
    struct sq *q = SQ(s);
    sqlite3_stmt *st = prep(q, "UPDATE segments SET traffic_light = ?2, light_since = ?3,"
                               " light_set_by = ?4, light_reason = ?5 WHERE id = ?1");
    int rc;
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, segment, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, light, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    sqlite3_bind_text(st, 4, set_by, -1, SQLITE_STATIC);
    if (reason)
        sqlite3_bind_text(st, 5, reason, -1, SQLITE_STATIC);
    rc = step_done(q, st);
    if (rc == 0 && sqlite3_changes(q->db) == 0)
        rc = -ENOENT;
    return rc;
}

/* --- tokens ------------------------------------------------------------------ */

static int sq_token_add(struct store *s, const char *id, const char *party,
                        const uint8_t hash[TOKEN_HASH_LEN], const char *label, int64_t now_ms)
{
    struct sq *q = SQ(s);
    sqlite3_stmt *st = prep(q, "INSERT INTO tokens (id, party, hash, label, created_at)"
                               " VALUES (?1, ?2, ?3, ?4, ?5)");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, party, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, hash, TOKEN_HASH_LEN, SQLITE_STATIC);
    if (label)
        sqlite3_bind_text(st, 4, label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_ms);
    return step_done(q, st);
}

static int sq_token_lookup(struct store *s, const uint8_t hash[TOKEN_HASH_LEN],
                           struct store_principal *out)
{
    struct sq *q = SQ(s);
    sqlite3_stmt *st = prep(q, "SELECT t.party, p.role FROM tokens t"
                               " JOIN parties p ON p.id = t.party WHERE t.hash = ?1");
    int rc;
    if (st == NULL)
        return -EIO;
    sqlite3_bind_blob(st, 1, hash, TOKEN_HASH_LEN, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        str_copy(out->party, sizeof out->party, (const char *)sqlite3_column_text(st, 0));
        str_copy(out->role, sizeof out->role, (const char *)sqlite3_column_text(st, 1));
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? -ENOENT : db_fail(q, sqlite3_extended_errcode(q->db));
    }
    sqlite3_reset(st);
    return rc;
}

static int sq_token_list(struct store *s, const char *party, json_t **items)
{
    struct sq *q = SQ(s);
    sqlite3_stmt *st = prep(q, "SELECT id, label, created_at FROM tokens WHERE party = ?1"
                               " ORDER BY created_at, id");
    char tbuf[40];
    int rc;
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, party, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *label = (const char *)sqlite3_column_text(st, 1);
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:o, s:s}", "id", (const char *)sqlite3_column_text(st, 0),
                           "party", party, "label", label ? json_string(label) : json_null(),
                           "created_at",
                           time_format_ms(sqlite3_column_int64(st, 2), tbuf, sizeof tbuf)));
    }
    if (rc != SQLITE_DONE) {
        rc = db_fail(q, sqlite3_extended_errcode(q->db));
        sqlite3_reset(st);
        json_decref(arr);
        return rc;
    }
    sqlite3_reset(st);
    *items = arr;
    return 0;
}

static int sq_token_delete(struct store *s, const char *party, const char *id)
{
    struct sq *q = SQ(s);
    sqlite3_stmt *st = prep(q, "DELETE FROM tokens WHERE party = ?1 AND id = ?2");
    int rc;
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, party, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    rc = step_done(q, st);
    if (rc == 0 && sqlite3_changes(q->db) == 0)
        rc = -ENOENT;
    return rc;
}

/* --- events ------------------------------------------------------------------ */

static int sq_event_last(struct store *s, int64_t *seq, uint8_t hash[32])
{
    struct sq *q = SQ(s);
    sqlite3_stmt *st = prep(q, "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1");
    int rc;
    if (st == NULL)
        return -EIO;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 1) == 32) {
        *seq = sqlite3_column_int64(st, 0);
        memcpy(hash, sqlite3_column_blob(st, 1), 32);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? -ENOENT : db_fail(q, sqlite3_extended_errcode(q->db));
    }
    sqlite3_reset(st);
    return rc;
}

static int sq_event_insert(struct store *s, int64_t seq, int64_t time_ms, const char *kind,
                           const char *subject, const char *actor, const char *audience,
                           const char *payload, const uint8_t prev[32], const uint8_t hash[32])
{
    struct sq *q = SQ(s);
    sqlite3_stmt *st = prep(q, "INSERT INTO events (seq, time, kind, subject, actor, payload,"
                               " prev_hash, hash, audience)"
                               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, time_ms);
    sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, payload, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 7, prev, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 8, hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, audience ? audience : "", -1, SQLITE_STATIC);
    return step_done(q, st);
}

/* --- commands ------------------------------------------------------------------ */

static int sq_command_put(struct store *s, const struct store_command *c)
{
    struct sq *q = SQ(s);
    sqlite3_stmt *st;
    if (c->is_new) {
        st = prep(q, "INSERT INTO commands (id, device, control, state, requested_by, created_at,"
                     " deadline, updated_at, attempts, error, steps)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
        if (st == NULL)
            return -EIO;
        sqlite3_bind_text(st, 2, c->device, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, c->control, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, c->requested_by, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, c->created_at);
        sqlite3_bind_int64(st, 7, c->deadline);
    } else {
        st = prep(q, "UPDATE commands SET state = ?4, updated_at = ?8, attempts = ?9,"
                     " error = ?10, steps = ?11 WHERE id = ?1");
        if (st == NULL)
            return -EIO;
    }
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, c->state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, c->updated_at);
    sqlite3_bind_int(st, 9, c->attempts);
    if (c->error)
        sqlite3_bind_text(st, 10, c->error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 10);
    sqlite3_bind_text(st, 11, c->steps, -1, SQLITE_STATIC);
    int rc = step_done(q, st);
    if (rc == 0 && !c->is_new && sqlite3_changes(q->db) == 0)
        return -ENOENT;
    return rc;
}

static json_t *command_row(sqlite3_stmt *st)
{
    json_t *control = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
    json_t *steps = json_loads((const char *)sqlite3_column_text(st, 10), 0, NULL);
    json_t *o = json_pack(
        "{s:s, s:s, s:o, s:s, s:s, s:I, s:I, s:I, s:I, s:o}", "id",
        (const char *)sqlite3_column_text(st, 0), "device",
        (const char *)sqlite3_column_text(st, 1), "control", control ? control : json_object(),
        "state", (const char *)sqlite3_column_text(st, 3), "requested_by",
        (const char *)sqlite3_column_text(st, 4), "created_at",
        (json_int_t)sqlite3_column_int64(st, 5), "deadline",
        (json_int_t)sqlite3_column_int64(st, 6), "updated_at",
        (json_int_t)sqlite3_column_int64(st, 7), "attempts",
        (json_int_t)sqlite3_column_int64(st, 8), "steps", steps ? steps : json_object());
    const char *err = (const char *)sqlite3_column_text(st, 9);
    json_object_set_new(o, "error", err ? json_string(err) : json_null());
    return o;
}

#define COMMAND_COLUMNS                                                                  \
    "SELECT id, device, control, state, requested_by, created_at, deadline, updated_at," \
    " attempts, error, steps FROM commands"

static int sq_command_get(struct store *s, const char *id, json_t **out)
{
    struct sq *q = SQ(s);
    sqlite3_stmt *st = prep(q, COMMAND_COLUMNS " WHERE id = ?1");
    int rc;
    *out = NULL;
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = command_row(st);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? -ENOENT : db_fail(q, sqlite3_extended_errcode(q->db));
    }
    sqlite3_reset(st);
    return rc;
}

static int sq_command_active(struct store *s, json_t **items)
{
    struct sq *q = SQ(s);
    sqlite3_stmt *st = prep(q, COMMAND_COLUMNS " WHERE state NOT IN ('confirmed', 'failed')"
                                               " ORDER BY created_at, id");
    int rc;
    *items = NULL;
    if (st == NULL)
        return -EIO;
    json_t *arr = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, command_row(st));
    if (rc != SQLITE_DONE) {
        rc = db_fail(q, sqlite3_extended_errcode(q->db));
        sqlite3_reset(st);
        json_decref(arr);
        return rc;
    }
    sqlite3_reset(st);
    *items = arr;
    return 0;
}

/* --- for the other files of the backend (sqlite_impl.h) ------------------------ */

sqlite3_stmt *sq__prep(struct store *s, const char *sql)
{
    return prep(SQ(s), sql);
}

int sq__step_done(struct store *s, sqlite3_stmt *st)
{
    return step_done(SQ(s), st);
}

int sq__fail(struct store *s)
{
    return db_fail(SQ(s), sqlite3_extended_errcode(SQ(s)->db));
}

int sq__changes(struct store *s)
{
    return sqlite3_changes(SQ(s)->db);
}

/* --- transactions and life cycle ------------------------------------------ */

static int sq_begin(struct store *s)
{
    struct sq *q = SQ(s);
    if (q->in_tx)
        return -EBUSY;
    int rc = exec(q, "BEGIN IMMEDIATE");
    if (rc == 0)
        q->in_tx = 1;
    return rc;
}

static int sq_commit(struct store *s)
{
    struct sq *q = SQ(s);
    if (q->tx_broken) {
        snprintf(q->err, sizeof q->err, "the transaction was rolled back after an error");
        return -EIO;
    }
    int rc = exec(q, "COMMIT");
    if (rc == 0 || sqlite3_get_autocommit(q->db))
        q->in_tx = 0;
    return rc;
}

static int sq_rollback(struct store *s)
{
    struct sq *q = SQ(s);
    int rc = sqlite3_get_autocommit(q->db) ? 0 : exec(q, "ROLLBACK");
    q->in_tx = 0;
    q->tx_broken = 0;
    return rc;
}

static const char *sq_errmsg(struct store *s)
{
    return SQ(s)->err;
}

static int sq_schema_version(struct store *s)
{
    return SQ(s)->version;
}

static int sq_ping(struct store *s)
{
    struct sq *q = SQ(s);
    sqlite3_stmt *st = prep(q, "SELECT 1");
    int rc;
    if (st == NULL)
        return -EIO;
    rc = sqlite3_step(st) == SQLITE_ROW ? 0 : db_fail(q, sqlite3_extended_errcode(q->db));
    sqlite3_reset(st);
    return rc;
}

static void sq_close(struct store *s)
{
    struct sq *q = SQ(s);
    for (size_t i = 0; i < STMT_CACHE; i++) {
        sqlite3_finalize(q->cache[i].st);
        free(q->cache[i].sql);
    }
    if (q->db) {
        if (!sqlite3_get_autocommit(q->db))
            sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(q->db);
    }
    free(q);
}

/* Reading events and webhook subscriptions (at the end of this file). */
static int sq_event_list(struct store *s, const struct store_event_filter *f, json_t **items);
static int sq_webhook_insert(struct store *s, const struct store_webhook *w);
static int sq_webhook_all(struct store *s, json_t **items);
static int sq_webhook_delete(struct store *s, const char *id);
static int sq_webhook_progress(struct store *s, const struct store_webhook_state *st);

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .errmsg = sq_errmsg,
    .schema_version = sq_schema_version,
    .ping = sq_ping,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .reg_get = sq_reg_get,
    .reg_insert = sq_reg_insert,
    .reg_update = sq_reg_update,
    .reg_upsert = sq_reg_upsert,
    .reg_delete = sq_reg_delete,
    .reg_list = sq_reg_list,
    .segment_set_light = sq_segment_set_light,
    .token_add = sq_token_add,
    .token_lookup = sq_token_lookup,
    .token_list = sq_token_list,
    .token_delete = sq_token_delete,
    .event_last = sq_event_last,
    .event_insert = sq_event_insert,
    .command_put = sq_command_put,
    .command_get = sq_command_get,
    .command_active = sq_command_active,
    .event_list = sq_event_list,
    .webhook_insert = sq_webhook_insert,
    .webhook_all = sq_webhook_all,
    .webhook_delete = sq_webhook_delete,
    .webhook_progress = sq_webhook_progress,
    .request_put = sq__request_put,
    .request_get = sq__request_get,
    .request_find_idem = sq__request_find_idem,
    .request_max_seq = sq__request_max_seq,
    .request_list = sq__request_list,
    .target_put = sq__target_put,
    .targets_of = sq__targets_of,
    .execution_put = sq__execution_put,
    .executions_of = sq__executions_of,
    .device_state_put = sq__device_state_put,
    .device_state_get = sq__device_state_get,
    .meter_doc_put = sq__meter_doc_put,
    .meter_doc_exists = sq__meter_doc_exists,
    .meter_point_audience = sq__meter_point_audience,
    .gateway_parties = sq__gateway_parties,
    .readings_put = sq__readings_put,
    .meter_point_owner = sq__meter_point_owner,
    .readings_downsample = sq__readings_downsample,
    .readings_query = sq__readings_query,
};

/* mkdir -p of the directory holding 'path'. */
static int make_parent_dirs(const char *path)
{
    char dir[1024];
    if (str_copy(dir, sizeof dir, path) != 0)
        return -ENAMETOOLONG;
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0750) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int pragma_int(struct sq *q, const char *sql, int *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail(q, rc);
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(q, rc);
    sqlite3_finalize(st);
    return rc;
}

static int migrate(struct sq *q, char *err, size_t errlen)
{
    int rc = exec(q, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT");
    if (rc == 0)
        rc = pragma_int(q, "SELECT coalesce(max(version), 0) FROM schema_migrations", &q->version);
    if (rc != 0) {
        snprintf(err, errlen, "reading the schema version: %s", q->err);
        return rc;
    }
    if (q->version > store_sqlite_nmigrations) {
        snprintf(err, errlen, "database schema version %d is newer than this clsmd knows (%d)",
                 q->version, store_sqlite_nmigrations);
        return -EPROTO;
    }
    while (q->version < store_sqlite_nmigrations) {
        char sql[160];
        int v = q->version + 1;
        snprintf(sql, sizeof sql,
                 "INSERT INTO schema_migrations VALUES (%d, %lld); PRAGMA application_id = %d", v,
                 (long long)time_now_ms(), APPLICATION_ID);
        if ((rc = exec(q, "BEGIN IMMEDIATE")) != 0 ||
            (rc = exec(q, store_sqlite_migrations[v - 1])) != 0 || (rc = exec(q, sql)) != 0 ||
            (rc = exec(q, "COMMIT")) != 0) {
            snprintf(err, errlen, "migration %d failed: %s", v, q->err);
            sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        q->version = v;
        LOG(LOG_INFO, "store migrated", LOG_I("version", v));
    }
    return 0;
}

static int configure(struct sq *q, const struct store_options *opt, char *err, size_t errlen)
{
    int appid = 0, rc;
    char sql[128];

    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, opt->busy_timeout_ms);
    if ((rc = pragma_int(q, "PRAGMA application_id", &appid)) != 0) {
        snprintf(err, errlen, "%s", q->err);
        return rc;
    }
    if (appid != 0 && appid != APPLICATION_ID) {
        snprintf(err, errlen, "not a clsm database (application_id %d)", appid);
        return -EPROTO;
    }
    snprintf(sql, sizeof sql, "PRAGMA synchronous = %s", opt->synchronous_full ? "FULL" : "NORMAL");
    if ((rc = exec(q, "PRAGMA journal_mode = WAL")) != 0 || (rc = exec(q, sql)) != 0 ||
        (rc = exec(q, "PRAGMA foreign_keys = ON")) != 0 ||
        (rc = exec(q, "PRAGMA trusted_schema = OFF")) != 0) {
        snprintf(err, errlen, "%s", q->err);
        return rc;
    }
    return migrate(q, err, errlen);
}

int store_sqlite_open(const char *path, const struct store_options *opt, struct store **out,
                      char *err, size_t errlen)
{
    struct sq *q = calloc(1, sizeof *q);
    int rc;

    *out = NULL;
    if (q == NULL)
        return -ENOMEM;
    q->base.ops = &sqlite_ops;
    if (strcmp(path, ":memory:") != 0 && strncmp(path, "file:", 5) != 0 &&
        (rc = make_parent_dirs(path)) != 0) {
        snprintf(err, errlen, "creating the directory of %s: %s", path, strerror(-rc));
        free(q);
        return rc;
    }
    rc = sqlite3_open_v2(
        path, &q->db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "opening %s: %s", path,
                 q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
        sq_close(&q->base);
        return -EIO;
    }
    rc = configure(q, opt, err, errlen);
    if (rc != 0) {
        sq_close(&q->base);
        return rc;
    }
    *out = &q->base;
    return 0;
}

/* --- reading events; webhook subscriptions ----------------------------------- */

/* A column as a JSON string; bytes that are not UTF-8 (only a hand-edited
 * database has them) are replaced, so that the row can still be shown. */
static json_t *text_col(sqlite3_stmt *st, int col)
{
    const char *p = (const char *)sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (p == NULL)
        return json_null();
    json_t *v = json_stringn(p, n);
    if (v == NULL) {
        char *copy = strndup(p, n);
        if (copy) {
            jsonx_utf8_repair(copy);
            v = json_string(copy);
            free(copy);
        }
    }
    return v ? v : json_string("");
}

static json_t *hex_col(sqlite3_stmt *st, int col)
{
    char hex[129];
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    const void *p = sqlite3_column_blob(st, col);
    hex_encode(p ? p : "", n > 64 ? 64 : n, hex);
    return json_string(hex);
}

static int sq_event_list(struct store *s, const struct store_event_filter *f, json_t **items)
{
    struct sq *q = SQ(s);
    struct sb b = {.n = 0};
    sqlite3_stmt *st;
    int rc;

    *items = NULL;
    if (f->nkinds > STORE_EVENT_KINDS || f->limit < 1 || f->limit > STORE_EVENT_LIMIT)
        return -EINVAL;
    sb_add(&b, "SELECT seq, time, kind, subject, actor, audience, payload, prev_hash, hash"
               " FROM events WHERE seq > ?1 AND seq <= ?2");
    if (f->party)
        sb_add(&b, " AND instr(' ' || audience || ' ', ' ' || ?4 || ' ') > 0");
    for (size_t i = 0; i < f->nkinds; i++)
        sb_add(&b, "%s substr(kind, 1, length(?%zu)) = ?%zu", i ? " OR" : " AND (", i + 5, i + 5);
    sb_add(&b, "%s ORDER BY seq LIMIT ?3", f->nkinds ? ")" : "");
    if (b.overflow || (st = prep(q, b.s)) == NULL)
        return -EIO;
    sqlite3_bind_int64(st, 1, f->after);
    sqlite3_bind_int64(st, 2, f->upto);
    sqlite3_bind_int(st, 3, f->limit);
    if (f->party)
        sqlite3_bind_text(st, 4, f->party, -1, SQLITE_STATIC);
    for (size_t i = 0; i < f->nkinds; i++)
        sqlite3_bind_text(st, (int)i + 5, f->kinds[i], -1, SQLITE_STATIC);
    json_t *arr = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        json_object_set_new(o, "seq", json_integer(sqlite3_column_int64(st, 0)));
        json_object_set_new(o, "time_ms", json_integer(sqlite3_column_int64(st, 1)));
        json_object_set_new(o, "kind", text_col(st, 2));
        json_object_set_new(o, "subject", text_col(st, 3));
        json_object_set_new(o, "actor", text_col(st, 4));
        json_object_set_new(o, "audience", text_col(st, 5));
        json_object_set_new(o, "payload", text_col(st, 6));
        json_object_set_new(o, "prev_hash", hex_col(st, 7));
        json_object_set_new(o, "hash", hex_col(st, 8));
        json_array_append_new(arr, o);
    }
    if (rc != SQLITE_DONE) {
        rc = db_fail(q, sqlite3_extended_errcode(q->db));
        sqlite3_reset(st);
        json_decref(arr);
        return rc;
    }
    sqlite3_reset(st);
    *items = arr;
    return 0;
}

static void bind_text_or_null(sqlite3_stmt *st, int idx, const char *v)
{
    if (v)
        sqlite3_bind_text(st, idx, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, idx);
}

static void bind_time_or_null(sqlite3_stmt *st, int idx, int64_t ms)
{
    if (ms)
        sqlite3_bind_int64(st, idx, ms);
    else
        sqlite3_bind_null(st, idx);
}

static int sq_webhook_insert(struct store *s, const struct store_webhook *w)
{
    struct sq *q = SQ(s);
    sqlite3_stmt *st = prep(q, "INSERT INTO webhooks (id, party, admin, url, kinds, secret,"
                               " created_at, cursor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, w->id, -1, SQLITE_STATIC);
    bind_text_or_null(st, 2, w->party);
    sqlite3_bind_int(st, 3, w->admin != 0);
    sqlite3_bind_text(st, 4, w->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, w->kinds, -1, SQLITE_STATIC);
    bind_text_or_null(st, 6, w->secret);
    sqlite3_bind_int64(st, 7, w->created_at);
    sqlite3_bind_int64(st, 8, w->cursor);
    return step_done(q, st);
}

static json_t *int_or_null(sqlite3_stmt *st, int col)
{
    return sqlite3_column_type(st, col) == SQLITE_NULL
               ? json_null()
               : json_integer(sqlite3_column_int64(st, col));
}

static int sq_webhook_all(struct store *s, json_t **items)
{
    struct sq *q = SQ(s);
    sqlite3_stmt *st =
        prep(q, "SELECT id, party, admin, url, kinds, secret, created_at, cursor, state, failures,"
                " last_error, last_attempt_at, last_success_at, failing_since"
                " FROM webhooks ORDER BY id");
    int rc;
    *items = NULL;
    if (st == NULL)
        return -EIO;
    json_t *arr = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *kinds = json_loads((const char *)sqlite3_column_text(st, 4), 0, NULL);
        json_t *o = json_object();
        json_object_set_new(o, "id", text_col(st, 0));
        json_object_set_new(o, "party", text_col(st, 1));
        json_object_set_new(o, "admin", json_boolean(sqlite3_column_int(st, 2)));
        json_object_set_new(o, "url", text_col(st, 3));
        json_object_set_new(o, "kinds", json_is_array(kinds) ? kinds : json_array());
        if (kinds && !json_is_array(kinds))
            json_decref(kinds);
        json_object_set_new(o, "secret", text_col(st, 5));
        json_object_set_new(o, "created_at", json_integer(sqlite3_column_int64(st, 6)));
        json_object_set_new(o, "cursor", json_integer(sqlite3_column_int64(st, 7)));
        json_object_set_new(o, "state", text_col(st, 8));
        json_object_set_new(o, "failures", json_integer(sqlite3_column_int64(st, 9)));
        json_object_set_new(o, "last_error", text_col(st, 10));
        json_object_set_new(o, "last_attempt_at", int_or_null(st, 11));
        json_object_set_new(o, "last_success_at", int_or_null(st, 12));
        json_object_set_new(o, "failing_since", int_or_null(st, 13));
        json_array_append_new(arr, o);
    }
    if (rc != SQLITE_DONE) {
        rc = db_fail(q, sqlite3_extended_errcode(q->db));
        sqlite3_reset(st);
        json_decref(arr);
        return rc;
    }
    sqlite3_reset(st);
    *items = arr;
    return 0;
}

static int sq_webhook_delete(struct store *s, const char *id)
{
    struct sq *q = SQ(s);
    sqlite3_stmt *st = prep(q, "DELETE FROM webhooks WHERE id = ?1");
    int rc;
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = step_done(q, st);
    if (rc == 0 && sqlite3_changes(q->db) == 0)
        rc = -ENOENT;
    return rc;
}

static int sq_webhook_progress(struct store *s, const struct store_webhook_state *w)
{
    struct sq *q = SQ(s);
    sqlite3_stmt *st = prep(q, "UPDATE webhooks SET cursor = ?2, state = ?3, failures = ?4,"
                               " last_error = ?5, last_attempt_at = ?6, last_success_at = ?7,"
                               " failing_since = ?8 WHERE id = ?1");
    if (st == NULL)
        return -EIO;
    sqlite3_bind_text(st, 1, w->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, w->cursor);
    sqlite3_bind_text(st, 3, w->state, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, w->failures);
    bind_text_or_null(st, 5, w->last_error);
    bind_time_or_null(st, 6, w->last_attempt_at);
    bind_time_or_null(st, 7, w->last_success_at);
    bind_time_or_null(st, 8, w->failing_since);
    int rc = step_done(q, st);
    if (rc == 0 && sqlite3_changes(q->db) == 0)
        rc = -ENOENT;
    return rc;
}
