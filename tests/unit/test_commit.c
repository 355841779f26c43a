/*
 * test_commit.c - the group commit (store/commit.h) on a real event loop and
 * a real SQLite file: writers in registration order inside one transaction,
 * done() after it, rollback and retry on failure, and changes made from
 * done().
 */
#include <errno.h>
#include <event2/event.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/commit.h"
#include "store/store.h"

struct env {
    char dir[64], path[128];
    struct store *store;
    struct event_base *base;
    struct committer *c;
    char log[1024]; /* "w1.write w2.write w1.done:0 ..." */
};

/* A writer of the test: inserts one event row per write (so that the
 * transaction can be seen), fails while 'fail' > 0. */
struct tw {
    struct env *env;
    const char *name;
    int fail;   /* write() fails this many more times */
    int insert; /* write() inserts event row 'seq' */
    int64_t seq;
    int writes, dones, last_rc;
    int want_in_done; /* done() asks for another commit this many times */
    int now_in_done;  /* done() calls commit_now() (must be a no-op) */
    int now_rc;
};

static void logf_(struct env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void logf_(struct env *e, const char *fmt, ...)
{
    va_list ap;
    size_t n = strlen(e->log);
    va_start(ap, fmt);
    vsnprintf(e->log + n, sizeof e->log - n, fmt, ap);
    va_end(ap);
}

static int tw_write(void *arg)
{
    struct tw *w = arg;
    static const uint8_t zero[32];
    w->writes++;
    logf_(w->env, "%s.write ", w->name);
    if (w->insert) {
        int rc =
            store_event_insert(w->env->store, w->seq, 1, "test", "s", "a", "", "{}", zero, zero);
        if (rc != 0)
            return rc;
    }
    if (w->fail > 0) {
        w->fail--;
        return -EIO;
    }
    return 0;
}

static void tw_done(void *arg, int rc)
{
    struct tw *w = arg;
    w->dones++;
    w->last_rc = rc;
    logf_(w->env, "%s.done:%d ", w->name, rc < 0 ? -1 : rc);
    if (w->want_in_done > 0) {
        w->want_in_done--;
        commit_want(w->env->c);
    }
    if (w->now_in_done) {
        w->now_in_done = 0;
        w->now_rc = commit_now(w->env->c);
    }
}

static void add(struct env *e, struct tw *w, const char *name)
{
    w->env = e;
    w->name = name;
    struct commit_writer cw = {tw_write, tw_done, w};
    assert_int_equal(commit_add(e->c, &cw), 0);
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    const struct store_options opts = {1, 0}; /* no busy wait: a lock fails at once */
    char err[256];
    snprintf(e->dir, sizeof e->dir, "/tmp/clsm-commit-XXXXXX");
    if (mkdtemp(e->dir) == NULL)
        return -1;
    snprintf(e->path, sizeof e->path, "%s/clsm.db", e->dir);
    if (store_open(e->path, &opts, &e->store, err, sizeof err) != 0)
        return -1;
    e->base = event_base_new();
    e->c = commit_new(e->base, e->store);
    *state = e;
    return e->base && e->c ? 0 : -1;
}

static int teardown(void **state)
{
    struct env *e = *state;
    char cmd[128];
    commit_free(e->c);
    event_base_free(e->base);
    store_close(e->store);
    snprintf(cmd, sizeof cmd, "rm -rf %s", e->dir);
    free(e);
    return system(cmd) == 0 ? 0 : -1;
}

/* Run the loop until nothing is active or pending within 'ms'. */
static void run(struct env *e, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(e->base, &tv);
    event_base_dispatch(e->base);
}

/* Whether event row 'seq' is in the file, seen through another connection. */
static int row_visible(struct env *e, int64_t seq)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int found = 0;
    assert_int_equal(sqlite3_open_v2(e->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT 1 FROM events WHERE seq = ?1", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_int64(st, 1, seq);
    found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return found;
}

static void test_order_and_one_transaction(void **state)
{
    struct env *e = *state;
    struct tw a = {.insert = 1, .seq = 1}, b = {.insert = 1, .seq = 2}, c = {0};
    add(e, &a, "a");
    add(e, &b, "b");
    add(e, &c, "c");
    /* Many wishes in one iteration make one commit. */
    for (int i = 0; i < 5; i++)
        commit_want(e->c);
    assert_int_equal(a.writes, 0); /* nothing before the loop runs */
    run(e, 50);
    assert_string_equal(e->log, "a.write b.write c.write a.done:0 b.done:0 c.done:0 ");
    unsigned long long failed = 9;
    assert_int_equal(commit_count(e->c, &failed), 1);
    assert_int_equal(failed, 0);
    assert_true(row_visible(e, 1));
    assert_true(row_visible(e, 2));
    /* No wish, no commit. */
    run(e, 20);
    assert_int_equal(a.writes, 1);
}

static void test_failure_rolls_back_and_retries(void **state)
{
    struct env *e = *state;
    struct tw a = {.insert = 1, .seq = 7}, b = {.fail = 1};
    add(e, &a, "a");
    add(e, &b, "b");
    commit_want(e->c);
    run(e, 50);
    /* b failed: a's row is rolled back and both hear of it. */
    assert_string_equal(e->log, "a.write b.write a.done:-1 b.done:-1 ");
    assert_true(a.last_rc < 0);
    assert_false(row_visible(e, 7));
    unsigned long long failed = 0;
    assert_int_equal(commit_count(e->c, &failed), 0);
    assert_int_equal(failed, 1);
    /* The committer tries again after a second, on its own. */
    run(e, 1500);
    assert_int_equal(a.writes, 2);
    assert_int_equal(b.writes, 2);
    assert_int_equal(a.last_rc, 0);
    assert_int_equal(b.last_rc, 0);
    assert_true(row_visible(e, 7));
    assert_int_equal(commit_count(e->c, &failed), 1);
    assert_int_equal(failed, 1);
}

static void test_begin_fails_under_a_foreign_lock(void **state)
{
    struct env *e = *state;
    struct tw a = {.insert = 1, .seq = 3};
    sqlite3 *other;
    add(e, &a, "a");
    assert_int_equal(sqlite3_open(e->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(commit_now(e->c), -EIO);
    /* No write without a transaction; done() still learns of the failure. */
    assert_int_equal(a.writes, 0);
    assert_int_equal(a.dones, 1);
    assert_true(a.last_rc < 0);
    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(commit_now(e->c), 0);
    assert_int_equal(a.writes, 1);
    assert_int_equal(a.last_rc, 0);
    assert_true(row_visible(e, 3));
}

static void test_changes_during_done(void **state)
{
    struct env *e = *state;
    struct tw a = {.want_in_done = 2, .now_in_done = 1, .now_rc = 99}, b = {0};
    add(e, &a, "a");
    add(e, &b, "b");
    commit_want(e->c);
    run(e, 100);
    /* commit_now() from inside done() does nothing (and says 0); the wishes
     * made in done() bring one further commit each, in later iterations,
     * and b's done() of the first commit comes before the second write. */
    assert_int_equal(a.now_rc, 0);
    assert_int_equal(a.writes, 3);
    assert_int_equal(b.writes, 3);
    assert_string_equal(e->log, "a.write b.write a.done:0 b.done:0 "
                                "a.write b.write a.done:0 b.done:0 "
                                "a.write b.write a.done:0 b.done:0 ");
    assert_int_equal(commit_count(e->c, NULL), 3);
}

static void test_a_want_replaces_the_retry_timer(void **state)
{
    struct env *e = *state;
    struct tw a = {.fail = 1};
    add(e, &a, "a");
    assert_int_equal(commit_now(e->c), -EIO);
    /* A new change does not wait for the second of back-off. */
    commit_want(e->c);
    run(e, 100);
    assert_int_equal(a.writes, 2);
    assert_int_equal(a.last_rc, 0);
}

static void test_writer_limit(void **state)
{
    struct env *e = *state;
    struct tw w[COMMIT_MAX_WRITERS + 1];
    memset(w, 0, sizeof w);
    for (int i = 0; i < COMMIT_MAX_WRITERS; i++)
        add(e, &w[i], "w");
    struct commit_writer cw = {tw_write, tw_done, &w[COMMIT_MAX_WRITERS]};
    assert_int_equal(commit_add(e->c, &cw), -ENOSPC);
    assert_int_equal(commit_now(e->c), 0);
    assert_int_equal(w[COMMIT_MAX_WRITERS].writes, 0);
    assert_int_equal(w[COMMIT_MAX_WRITERS - 1].writes, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_and_one_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_rolls_back_and_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_begin_fails_under_a_foreign_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_during_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_want_replaces_the_retry_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_limit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
