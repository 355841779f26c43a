/*
 * test_audit.c - the hash-chained event log (audit/audit.h) on the real
 * group commit and a real SQLite file: audiences, the hash format, the
 * listener (once per durable event, in order), events surviving a failed
 * commit, appends from inside the listener, a restart, and the chain check
 * used by clsmctl audit verify.
 */
#include <errno.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/audit.h"
#include "store/commit.h"
#include "store/store.h"

#define MAX_SEEN 64

struct seen {
    int64_t seq;
    char kind[32], audience[512], payload[128];
};

struct env {
    char dir[64], path[128];
    struct store *store;
    struct event_base *base;
    struct committer *c;
    struct audit *a;
    struct seen seen[MAX_SEEN];
    int nseen;
    int echo; /* the listener appends an "echo" event after each "ping" */
};

static void listener(void *arg, const struct audit_event *ev)
{
    struct env *e = arg;
    assert_true(e->nseen < MAX_SEEN);
    struct seen *s = &e->seen[e->nseen++];
    s->seq = ev->seq;
    snprintf(s->kind, sizeof s->kind, "%s", ev->kind);
    snprintf(s->audience, sizeof s->audience, "%s", ev->audience);
    snprintf(s->payload, sizeof s->payload, "%s", ev->payload);
    if (e->echo && strcmp(ev->kind, "ping") == 0)
        assert_int_equal(audit_append(e->a, "echo", "test:1", "system", json_object()), 0);
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    const struct store_options opts = {1, 0};
    char err[256];
    snprintf(e->dir, sizeof e->dir, "/tmp/clsm-audit-XXXXXX");
    if (mkdtemp(e->dir) == NULL)
        return -1;
    snprintf(e->path, sizeof e->path, "%s/clsm.db", e->dir);
    if (store_open(e->path, &opts, &e->store, err, sizeof err) != 0)
        return -1;
    e->base = event_base_new();
    e->c = commit_new(e->base, e->store);
    e->a = audit_new(e->store, e->c);
    if (e->a == NULL)
        return -1;
    audit_set_listener(e->a, listener, e);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    char cmd[128];
    audit_free(e->a);
    commit_free(e->c);
    event_base_free(e->base);
    store_close(e->store);
    snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
    free(e);
    return system(cmd) == 0 ? 0 : -1;
}

static void run(struct env *e, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(e->base, &tv);
    event_base_dispatch(e->base);
}

static json_t *stored(struct env *e)
{
    struct store_event_filter f = {0, INT64_MAX, NULL, NULL, 0, 1000};
    json_t *items = NULL;
    assert_int_equal(store_event_list(e->store, &f, &items), 0);
    return items;
}

static int unhex(const char *s, uint8_t out[32])
{
    for (size_t i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* Walk the stored chain as clsmctl does; returns the first fault. */
static enum audit_fault verify_stored(struct env *e, int64_t *at)
{
    json_t *items = stored(e), *it;
    struct audit_chain ch;
    size_t i;
    enum audit_fault f = AUDIT_CHAIN_OK;
    memset(&ch, 0, sizeof ch);
    json_array_foreach(items, i, it)
    {
        uint8_t prev[32], hash[32];
        struct audit_event ev = {
            json_integer_value(json_object_get(it, "seq")),
            json_integer_value(json_object_get(it, "time_ms")),
            json_string_value(json_object_get(it, "kind")),
            json_string_value(json_object_get(it, "subject")),
            json_string_value(json_object_get(it, "actor")),
            json_string_value(json_object_get(it, "audience")),
            json_string_value(json_object_get(it, "payload")),
        };
        assert_int_equal(unhex(json_string_value(json_object_get(it, "prev_hash")), prev), 0);
        assert_int_equal(unhex(json_string_value(json_object_get(it, "hash")), hash), 0);
        f = audit_chain_next(&ch, &ev, prev, hash);
        if (f != AUDIT_CHAIN_OK) {
            *at = ev.seq;
            break;
        }
    }
    json_decref(items);
    return f;
}

static void test_audience_joining(void **state)
{
    struct env *e = *state;
    const char *dupes[] = {"9900000000001", NULL,           "9900000000002", "",
                           "9900000000001", "9900000000003"};
    const char *nulls[] = {NULL, NULL};
    const char *many[AUDIT_AUDIENCE_MAX + 4];
    char ids[AUDIT_AUDIENCE_MAX + 4][16], want[512] = "";

    for (int i = 0; i < AUDIT_AUDIENCE_MAX + 4; i++) {
        snprintf(ids[i], sizeof ids[i], "99000000001%02d", i);
        many[i] = ids[i];
        if (i < AUDIT_AUDIENCE_MAX)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", i ? " " : "", ids[i]);
    }
    assert_int_equal(audit_append_to(e->a, "k", "s", "a", dupes, 6, json_object()), 0);
    assert_int_equal(audit_append_to(e->a, "k", "s", "a", nulls, 2, json_object()), 0);
    assert_int_equal(audit_append_to(e->a, "k", "s", "a", NULL, 0, json_object()), 0);
    assert_int_equal(
        audit_append_to(e->a, "k", "s", "a", many, AUDIT_AUDIENCE_MAX + 4, json_object()), 0);
    assert_int_equal(audit_append(e->a, "k", "s", "a", json_pack("{s:i}", "b", 1)), 0);
    run(e, 50);
    assert_int_equal(e->nseen, 5);
    /* Duplicates, NULLs and empty ids are skipped, the order kept. */
    assert_string_equal(e->seen[0].audience, "9900000000001 9900000000002 9900000000003");
    assert_string_equal(e->seen[1].audience, "");
    assert_string_equal(e->seen[2].audience, "");
    /* Only the first AUDIT_AUDIENCE_MAX entries count. */
    assert_string_equal(e->seen[3].audience, want);
    assert_string_equal(e->seen[4].audience, "");
    assert_string_equal(e->seen[4].payload, "{\"b\":1}");
    /* What the listener heard is what was stored. */
    json_t *items = stored(e);
    assert_int_equal(json_array_size(items), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(items, 0), "audience")),
                        e->seen[0].audience);
    json_decref(items);
    int64_t at = 0;
    assert_int_equal(verify_stored(e, &at), AUDIT_CHAIN_OK);
}

/* The hash as it was defined before audiences existed: SHA-256 over the
 * length-prefixed fields prev, seq, time, kind, subject, actor, payload. */
static void old_hash(const uint8_t prev[32], const char *const *fields, size_t n, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 32;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    for (size_t i = 0; i < n + 1; i++) {
        const void *p = i == 0 ? (const void *)prev : fields[i - 1];
        size_t l = i == 0 ? 32 : strlen(fields[i - 1]);
        uint8_t pre[8];
        for (int k = 0; k < 8; k++)
            pre[k] = (uint8_t)((uint64_t)l >> (56 - 8 * k));
        EVP_DigestUpdate(md, pre, 8);
        EVP_DigestUpdate(md, p, l);
    }
    EVP_DigestFinal_ex(md, out, &len);
    EVP_MD_CTX_free(md);
}

static void test_hash_compatibility(void **state)
{
    uint8_t prev[32], want[32], empty[32], none[32], with[32], other[32];
    const char *fields[] = {"42",        "1700000000123", "command.failed",
                            "device:D1", "admin",         "{\"a\":1}"};
    (void)state;
    for (int i = 0; i < 32; i++)
        prev[i] = (uint8_t)(i * 7);
    old_hash(prev, fields, 6, want);
    audit_hash(prev, 42, 1700000000123, "command.failed", "device:D1", "admin", "", "{\"a\":1}",
               empty);
    audit_hash(prev, 42, 1700000000123, "command.failed", "device:D1", "admin", NULL, "{\"a\":1}",
               none);
    audit_hash(prev, 42, 1700000000123, "command.failed", "device:D1", "admin", "9900000000001",
               "{\"a\":1}", with);
    audit_hash(prev, 42, 1700000000123, "command.failed", "device:D1", "admin", "9900000000002",
               "{\"a\":1}", other);
    assert_memory_equal(empty, want, 32);
    assert_memory_equal(none, want, 32);
    /* A named audience is part of the hash. */
    assert_memory_not_equal(with, want, 32);
    assert_memory_not_equal(with, other, 32);
    /* Every field counts, the previous hash too. */
    prev[0] ^= 1;
    audit_hash(prev, 42, 1700000000123, "command.failed", "device:D1", "admin", "", "{\"a\":1}",
               empty);
    assert_memory_not_equal(empty, want, 32);
}

static void test_listener_once_in_order(void **state)
{
    struct env *e = *state;
    for (int i = 0; i < 3; i++)
        assert_int_equal(audit_append(e->a, "k", "s", "a", json_pack("{s:i}", "n", i)), 0);
    assert_int_equal(audit_queued(e->a), 3);
    assert_int_equal(e->nseen, 0); /* nothing before it is durable */
    run(e, 50);
    assert_int_equal(e->nseen, 3);
    for (int i = 0; i < 3; i++) {
        char p[32];
        snprintf(p, sizeof p, "{\"n\":%d}", i);
        assert_int_equal(e->seen[i].seq, i + 1);
        assert_string_equal(e->seen[i].payload, p);
    }
    assert_int_equal(audit_written(e->a), 3);
    assert_int_equal(audit_queued(e->a), 0);
    assert_int_equal(audit_last_seq(e->a), 3);
    /* Later commits (for other writers) do not repeat them. */
    assert_int_equal(commit_now(e->c), 0);
    run(e, 20);
    assert_int_equal(e->nseen, 3);
    assert_int_equal(audit_append(e->a, "k", "s", "a", json_object()), 0);
    run(e, 50);
    assert_int_equal(e->nseen, 4);
    assert_int_equal(e->seen[3].seq, 4);
}

static int fail_write(void *arg)
{
    int *fail = arg;
    return *fail ? -EIO : 0;
}

static void nothing_done(void *arg, int rc)
{
    (void)arg;
    (void)rc;
}

static void test_events_kept_after_failed_commit(void **state)
{
    struct env *e = *state;
    int fail = 1;
    struct commit_writer w = {fail_write, nothing_done, &fail};
    sqlite3 *other;
    assert_int_equal(commit_add(e->c, &w), 0);

    /* The log wrote its rows, a later writer failed: all rolled back. */
    assert_int_equal(audit_append(e->a, "k", "s", "a", json_object()), 0);
    assert_int_equal(audit_append(e->a, "k", "s", "a", json_object()), 0);
    assert_int_equal(commit_now(e->c), -EIO);
    assert_int_equal(e->nseen, 0);
    assert_int_equal(audit_queued(e->a), 2);
    assert_int_equal(audit_written(e->a), 0);
    assert_int_equal(audit_last_seq(e->a), 0);
    json_t *items = stored(e);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);

    /* The transaction cannot even begin. */
    fail = 0;
    assert_int_equal(sqlite3_open(e->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(audit_append(e->a, "k", "s", "a", json_object()), 0);
    assert_int_equal(commit_now(e->c), -EIO);
    assert_int_equal(e->nseen, 0);
    assert_int_equal(audit_queued(e->a), 3);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);

    /* The retry writes them with the numbers they would have had. */
    run(e, 1500);
    assert_int_equal(e->nseen, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(e->seen[i].seq, i + 1);
    assert_int_equal(audit_queued(e->a), 0);
    assert_int_equal(audit_lost(e->a), 0);
    int64_t at = 0;
    assert_int_equal(verify_stored(e, &at), AUDIT_CHAIN_OK);
}

static void test_append_from_listener(void **state)
{
    struct env *e = *state;
    e->echo = 1;
    assert_int_equal(audit_append(e->a, "ping", "test:1", "system", json_object()), 0);
    assert_int_equal(audit_append(e->a, "ping", "test:1", "system", json_object()), 0);
    run(e, 100);
    /* Each echo is written by a later commit, after the pings. */
    assert_int_equal(e->nseen, 4);
    assert_string_equal(e->seen[0].kind, "ping");
    assert_string_equal(e->seen[1].kind, "ping");
    assert_string_equal(e->seen[2].kind, "echo");
    assert_string_equal(e->seen[3].kind, "echo");
    for (int i = 0; i < 4; i++)
        assert_int_equal(e->seen[i].seq, i + 1);
    assert_int_equal(commit_count(e->c, NULL), 2);
    int64_t at = 0;
    assert_int_equal(verify_stored(e, &at), AUDIT_CHAIN_OK);
}

static void test_restart_continues_the_chain(void **state)
{
    struct env *e = *state;
    assert_int_equal(audit_append(e->a, "k", "s", "a", json_object()), 0);
    run(e, 50);
    audit_free(e->a);
    commit_free(e->c);
    /* A new log on the same store (a restart) goes on from there. */
    e->c = commit_new(e->base, e->store);
    e->a = audit_new(e->store, e->c);
    assert_non_null(e->a);
    audit_set_listener(e->a, listener, e);
    assert_int_equal(audit_last_seq(e->a), 1);
    assert_int_equal(audit_append(e->a, "k", "s", "a", json_object()), 0);
    run(e, 50);
    assert_int_equal(e->seen[e->nseen - 1].seq, 2);
    int64_t at = 0;
    assert_int_equal(verify_stored(e, &at), AUDIT_CHAIN_OK);
}

/* Tampering, as clsmctl audit verify sees it. */
static void tamper(struct env *e, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(e->path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    sqlite3_close(db);
}

static void fill(struct env *e, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(audit_append(e->a, "k", "s", "a", json_pack("{s:i}", "n", i)), 0);
    run(e, 50);
}

static void test_chain_check_finds_edits(void **state)
{
    struct env *e = *state;
    int64_t at = 0;
    fill(e, 5);
    tamper(e, "UPDATE events SET payload = '{\"n\":9}' WHERE seq = 3");
    assert_int_equal(verify_stored(e, &at), AUDIT_CHAIN_HASH);
    assert_int_equal(at, 3);
}

static void test_chain_check_finds_deletions(void **state)
{
    struct env *e = *state;
    int64_t at = 0;
    fill(e, 5);
    tamper(e, "DELETE FROM events WHERE seq = 2");
    assert_int_equal(verify_stored(e, &at), AUDIT_CHAIN_GAP);
    assert_int_equal(at, 3);
    tamper(e, "DELETE FROM events WHERE seq = 1");
    assert_int_equal(verify_stored(e, &at), AUDIT_CHAIN_GAP);
    assert_int_equal(at, 3);
}

static void test_chain_check_finds_insertions(void **state)
{
    struct env *e = *state;
    int64_t at = 0;
    fill(e, 4);
    /* Renumber 3 and 4 upwards and put a row in between that copies
     * event 2's hash as its link: the next event no longer links. */
    tamper(e, "UPDATE events SET seq = -seq WHERE seq >= 3;"
              "UPDATE events SET seq = 1 - seq WHERE seq < 0;"
              "INSERT INTO events (seq, time, kind, subject, actor, payload, prev_hash, hash)"
              " SELECT 3, time, kind, subject, actor, payload, hash, hash FROM events"
              " WHERE seq = 2");
    assert_int_equal(verify_stored(e, &at), AUDIT_CHAIN_HASH);
    assert_int_equal(at, 3);
    /* Give the inserted row a hash that matches its content: the break
     * moves to the link of the event after it. */
    json_t *items = stored(e), *row = json_array_get(items, 2);
    uint8_t prev[32], hash[32];
    char hex[65], sql[256];
    assert_int_equal(unhex(json_string_value(json_object_get(row, "prev_hash")), prev), 0);
    audit_hash(prev, 3, json_integer_value(json_object_get(row, "time_ms")),
               json_string_value(json_object_get(row, "kind")),
               json_string_value(json_object_get(row, "subject")),
               json_string_value(json_object_get(row, "actor")), "",
               json_string_value(json_object_get(row, "payload")), hash);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", hash[i]);
    snprintf(sql, sizeof sql, "UPDATE events SET hash = x'%s' WHERE seq = 3", hex);
    json_decref(items);
    tamper(e, sql);
    assert_int_equal(verify_stored(e, &at), AUDIT_CHAIN_LINK);
    assert_int_equal(at, 4);
}

static size_t count_list(struct env *e, int64_t after, int64_t upto, const char *party,
                         const char *const *kinds, size_t nkinds, int limit, int64_t *first)
{
    struct store_event_filter f = {after, upto, party, kinds, nkinds, limit};
    json_t *items = NULL;
    assert_int_equal(store_event_list(e->store, &f, &items), 0);
    size_t n = json_array_size(items);
    if (first)
        *first = n ? json_integer_value(json_object_get(json_array_get(items, 0), "seq")) : 0;
    json_decref(items);
    return n;
}

static void test_reading_the_log(void **state)
{
    struct env *e = *state;
    const char *p1[] = {"9900000000001"}, *p12[] = {"9900000000001", "9900000000012"};
    int64_t first = 0;
    /* 1: p1 request.admitted, 2: p1+p12 request.rejected, 3: admin command.failed,
     * 4: p12 command.confirmed */
    audit_append_to(e->a, "request.admitted", "s", "a", p1, 1, json_object());
    audit_append_to(e->a, "request.rejected", "s", "a", p12, 2, json_object());
    audit_append(e->a, "command.failed", "s", "a", json_object());
    audit_append_to(e->a, "command.confirmed", "s", "a", p12 + 1, 1, json_object());
    run(e, 50);
    assert_int_equal(count_list(e, 0, INT64_MAX, NULL, NULL, 0, 100, &first), 4);
    /* A party: whole ids only ("9900000000001" is not "990000000001x"). */
    assert_int_equal(count_list(e, 0, INT64_MAX, "9900000000001", NULL, 0, 100, &first), 2);
    assert_int_equal(count_list(e, 0, INT64_MAX, "9900000000012", NULL, 0, 100, &first), 2);
    assert_int_equal(first, 2);
    assert_int_equal(count_list(e, 0, INT64_MAX, "990000000001", NULL, 0, 100, NULL), 0);
    assert_int_equal(count_list(e, 0, INT64_MAX, "0000000001 9", NULL, 0, 100, NULL), 0);
    /* Kind prefixes, any of them. */
    const char *req[] = {"request."}, *two[] = {"request.rej", "command.f"};
    assert_int_equal(count_list(e, 0, INT64_MAX, NULL, req, 1, 100, NULL), 2);
    assert_int_equal(count_list(e, 0, INT64_MAX, NULL, two, 2, 100, &first), 2);
    assert_int_equal(first, 2);
    assert_int_equal(count_list(e, 0, INT64_MAX, "9900000000012", two, 2, 100, NULL), 1);
    /* The range and the limit. */
    assert_int_equal(count_list(e, 1, 3, NULL, NULL, 0, 100, &first), 2);
    assert_int_equal(first, 2);
    assert_int_equal(count_list(e, 0, INT64_MAX, NULL, NULL, 0, 3, NULL), 3);
    assert_int_equal(count_list(e, 4, INT64_MAX, NULL, NULL, 0, 100, NULL), 0);
    /* Out of bounds. */
    struct store_event_filter bad = {0, 10, NULL, NULL, 0, 0};
    json_t *items = NULL;
    assert_int_equal(store_event_list(e->store, &bad, &items), -EINVAL);
    bad.limit = 10;
    bad.nkinds = STORE_EVENT_KINDS + 1;
    assert_int_equal(store_event_list(e->store, &bad, &items), -EINVAL);
    assert_null(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reading_the_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audience_joining, setup, teardown),
        cmocka_unit_test(test_hash_compatibility),
        cmocka_unit_test_setup_teardown(test_listener_once_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_kept_after_failed_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_from_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_continues_the_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_check_finds_edits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_check_finds_deletions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_check_finds_insertions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
