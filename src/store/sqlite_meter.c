/*
 * sqlite_meter.c - the SQLite backend's part for meter data: documents,
 * values and the gateways of metering points (store.h, migration 5).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/util.h"
#include "store/sqlite_impl.h"

int sq__meter_doc_put(struct store *s, const char *smgw, const char *id, int64_t created_ms,
                      int64_t received_ms, int64_t values)
{
    sqlite3_stmt *st = sq__prep(s, "INSERT OR IGNORE INTO meter_documents (smgw, id, created_at,"
                                   " received_at, nvalues) VALUES (?1, ?2, ?3, ?4, ?5)");
    if (st == NULL)
        return sq__fail(s);
    sqlite3_bind_text(st, 1, smgw, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, created_ms);
    sqlite3_bind_int64(st, 4, received_ms);
    sqlite3_bind_int64(st, 5, values);
    int rc = sq__step_done(s, st);
    if (rc != 0)
        return rc;
    return sq__changes(s) == 1 ? 0 : -EEXIST;
}

int sq__meter_doc_exists(struct store *s, const char *smgw, const char *id)
{
    sqlite3_stmt *st = sq__prep(s, "SELECT 1 FROM meter_documents WHERE smgw = ?1 AND id = ?2");
    if (st == NULL)
        return sq__fail(s);
    sqlite3_bind_text(st, 1, smgw, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? -ENOENT : sq__fail(s);
}

int sq__meter_point_audience(struct store *s, const char *point, json_t **parties)
{
    sqlite3_stmt *st = sq__prep(
        s, "SELECT g.vnb FROM installations i JOIN segments g ON g.id = i.segment"
           " WHERE i.metering_point = ?1"
           " UNION SELECT a.party FROM assignments a JOIN installations i ON i.id = a.installation"
           " WHERE i.metering_point = ?1 AND a.rights LIKE '%read%'"
           " UNION SELECT g.vnb FROM meter_points m JOIN smgws w ON w.id = m.smgw"
           " JOIN segments g ON g.id = w.segment WHERE m.point = ?1"
           " AND NOT EXISTS (SELECT 1 FROM installations WHERE metering_point = ?1)");
    if (st == NULL)
        return sq__fail(s);
    sqlite3_bind_text(st, 1, point, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, json_string((const char *)sqlite3_column_text(st, 0)));
    if (rc != SQLITE_DONE) {
        rc = sq__fail(s);
        sqlite3_reset(st);
        json_decref(arr);
        return rc;
    }
    sqlite3_reset(st);
    *parties = arr;
    return 0;
}

int sq__gateway_parties(struct store *s, const char *smgw, json_t **parties)
{
    sqlite3_stmt *st = sq__prep(s, "SELECT DISTINCT a.party FROM assignments a"
                                   " JOIN installations i ON i.id = a.installation"
                                   " JOIN devices d ON d.id = i.device WHERE d.smgw = ?1"
                                   " ORDER BY a.party");
    if (st == NULL)
        return sq__fail(s);
    sqlite3_bind_text(st, 1, smgw, -1, SQLITE_STATIC);
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, json_string((const char *)sqlite3_column_text(st, 0)));
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        return sq__fail(s);
    }
    *parties = arr;
    return 0;
}

int sq__readings_put(struct store *s, const char *smgw, const struct store_reading *r, size_t n,
                     size_t *stored)
{
    sqlite3_stmt *st = sq__prep(s, "INSERT OR IGNORE INTO readings (point, obis, time, value,"
                                   " scaler, unit, status, smgw) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
                                   " ?7, ?8)");
    *stored = 0;
    if (st == NULL)
        return sq__fail(s);
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_text(st, 1, r[i].point, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, r[i].obis, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, r[i].time_ms);
        sqlite3_bind_int64(st, 4, r[i].value);
        sqlite3_bind_int(st, 5, r[i].scaler);
        sqlite3_bind_int(st, 6, r[i].unit);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)r[i].status);
        sqlite3_bind_text(st, 8, smgw, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return sq__fail(s);
        *stored += (size_t)sq__changes(s);
    }
    return 0;
}

int sq__meter_point_owner(struct store *s, const char *point, const char *bind_smgw, char *smgw,
                          char *installation)
{
    sqlite3_stmt *st = sq__prep(s, "SELECT d.smgw, i.id FROM installations i"
                                   " JOIN devices d ON d.id = i.device"
                                   " WHERE i.metering_point = ?1 ORDER BY i.id LIMIT 1");
    if (st == NULL)
        return sq__fail(s);
    sqlite3_bind_text(st, 1, point, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    smgw[0] = '\0';
    if (installation)
        installation[0] = '\0';
    if (rc == SQLITE_ROW) {
        str_copy(smgw, 97, (const char *)sqlite3_column_text(st, 0));
        if (installation)
            str_copy(installation, 97, (const char *)sqlite3_column_text(st, 1));
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq__fail(s);
    st = sq__prep(s, "SELECT smgw FROM meter_points WHERE point = ?1");
    if (st == NULL)
        return sq__fail(s);
    sqlite3_bind_text(st, 1, point, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        str_copy(smgw, 97, (const char *)sqlite3_column_text(st, 0));
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc != SQLITE_DONE)
        return sq__fail(s);
    if (bind_smgw == NULL)
        return -ENOENT;
    st = sq__prep(s, "INSERT INTO meter_points (point, smgw, first_seen) VALUES (?1, ?2, ?3)");
    if (st == NULL)
        return sq__fail(s);
    sqlite3_bind_text(st, 1, point, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, bind_smgw, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, time_now_ms());
    if ((rc = sq__step_done(s, st)) != 0)
        return rc;
    str_copy(smgw, 97, bind_smgw);
    return 0;
}

int sq__readings_downsample(struct store *s, int64_t before_ms, int64_t *rows)
{
    *rows = 0;
    sqlite3_stmt *st = sq__prep(s, "SELECT min(time) FROM readings WHERE res = 0 AND time < ?1");
    if (st == NULL)
        return sq__fail(s);
    sqlite3_bind_int64(st, 1, before_ms);
    int rc = sqlite3_step(st);
    bool any = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    int64_t first = any ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return sq__fail(s);
    if (!any)
        return 0;
    int64_t from = first - ((first % 3600000) + 3600000) % 3600000, to = from + 3600000;
    if (to > before_ms)
        return 0; /* the hour is not wholly past the limit yet */
    /* The hour's values as received, condensed, aside; then out with them
     * and in with the condensed ones. An hour condensed before keeps its
     * row: values that came late for it are dropped. One group per point
     * and OBIS code (a scaler or unit that changed within the hour takes
     * the last one's), so the new rows cannot collide. */
    static const char *const steps[] = {
        "CREATE TEMP TABLE IF NOT EXISTS condensed (point TEXT, obis TEXT, time INTEGER,"
        " value INTEGER, scaler INTEGER, unit INTEGER, status INTEGER, smgw TEXT, n INTEGER)",
        "DELETE FROM temp.condensed",
        "INSERT INTO temp.condensed SELECT point, obis, ?1,"
        " CASE WHEN obis LIKE '%:_.7.%' OR obis LIKE '%:__.7.%' THEN CAST(round(avg(value))"
        " AS INTEGER) ELSE value END, scaler, unit, status, smgw, count(*) + 0 * max(time)"
        " FROM readings WHERE time >= ?1 AND time < ?2 AND res = 0 GROUP BY point, obis",
        "DELETE FROM readings WHERE time >= ?1 AND time < ?2 AND res = 0",
        "INSERT OR IGNORE INTO readings (point, obis, time, value, scaler, unit, status, smgw,"
        " res, n) SELECT point, obis, time, value, scaler, unit, status, smgw, 3600, n"
        " FROM temp.condensed",
    };
    /* In a savepoint: a failure here must not cost the rest of the
     * transaction (the group commit's other writers). */
    if ((st = sq__prep(s, "SAVEPOINT condense")) == NULL || (rc = sq__step_done(s, st)) != 0)
        return st ? rc : sq__fail(s);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        st = sq__prep(s, steps[i]);
        rc = st ? 0 : sq__fail(s);
        if (rc == 0 && sqlite3_bind_parameter_count(st) >= 1)
            sqlite3_bind_int64(st, 1, from);
        if (rc == 0 && sqlite3_bind_parameter_count(st) >= 2)
            sqlite3_bind_int64(st, 2, to);
        if (rc == 0)
            rc = sq__step_done(s, st);
        if (rc != 0) {
            *rows = 0;
            sqlite3_stmt *back = sq__prep(s, "ROLLBACK TO condense");
            if (back)
                sq__step_done(s, back);
            sqlite3_stmt *rel = sq__prep(s, "RELEASE condense");
            if (rel)
                sq__step_done(s, rel);
            return rc;
        }
        if (i == 3)
            *rows = sq__changes(s);
    }
    st = sq__prep(s, "RELEASE condense");
    return st ? sq__step_done(s, st) : sq__fail(s);
}

/* A register's last value per bucket (SQLite takes the bare columns from
 * the row of max()), a power's mean (C.D = 1.7 or 2.7). */
int sq__readings_query(struct store *s, const struct store_reading_query *q, json_t **items,
                       int *more)
{
    sqlite3_stmt *st = sq__prep(
        s, "SELECT obis, (time / ?5) * ?5 AS bucket,"
           " CASE WHEN obis LIKE '%:_.7.%' OR obis LIKE '%:__.7.%' THEN CAST(round(avg(value))"
           " AS INTEGER) ELSE value END, scaler, unit, sum(n), max(time)"
           " FROM readings WHERE point = ?1 AND (?2 IS NULL OR obis = ?2)"
           " AND time >= ?3 AND time < ?4"
           " GROUP BY obis, bucket, scaler, unit ORDER BY obis, bucket LIMIT ?6");
    if (st == NULL)
        return sq__fail(s);
    sqlite3_bind_text(st, 1, q->point, -1, SQLITE_STATIC);
    if (q->obis)
        sqlite3_bind_text(st, 2, q->obis, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, q->from_ms);
    sqlite3_bind_int64(st, 4, q->to_ms);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)q->bucket_s * 1000);
    sqlite3_bind_int(st, 6, q->limit + 1);
    json_t *arr = json_array();
    int rc, n = 0;
    *more = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == q->limit) {
            *more = 1;
            break;
        }
        json_array_append_new(
            arr,
            json_pack("{s:s, s:I, s:I, s:i, s:i, s:i}", "obis", sqlite3_column_text(st, 0), "time",
                      (json_int_t)sqlite3_column_int64(st, 1), "value",
                      (json_int_t)sqlite3_column_int64(st, 2), "scaler", sqlite3_column_int(st, 3),
                      "unit", sqlite3_column_int(st, 4), "count", sqlite3_column_int(st, 5)));
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
