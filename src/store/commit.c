/*
 * commit.c - group commit on the loop; see commit.h.
 */
#include "store/commit.h"

#include <errno.h>
#include <stdlib.h>

#include "common/log.h"
#include "store/store.h"

struct committer {
    struct event_base *base;
    struct store *store;
    struct event *ev;
    struct commit_writer w[COMMIT_MAX_WRITERS];
    int n;
    int in_commit;
    unsigned long long commits, failed;
};

static void commit_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    commit_now(arg);
}

struct committer *commit_new(struct event_base *base, struct store *store)
{
    struct committer *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->base = base;
    c->store = store;
    c->ev = event_new(base, -1, 0, commit_cb, c);
    if (c->ev == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

void commit_free(struct committer *c)
{
    if (c == NULL)
        return;
    event_free(c->ev);
    free(c);
}

int commit_add(struct committer *c, const struct commit_writer *w)
{
    if (c->n == COMMIT_MAX_WRITERS)
        return -ENOSPC;
    c->w[c->n++] = *w;
    return 0;
}

void commit_want(struct committer *c)
{
    /* A change made by a done() callback goes into the next iteration's
     * transaction; a pending retry timer is replaced by "now". */
    event_active(c->ev, EV_TIMEOUT, 0);
}

int commit_now(struct committer *c)
{
    int rc = 0;
    if (c->in_commit)
        return 0; /* a done() asked again: the event above brings it back */
    c->in_commit = 1;
    event_del(c->ev);
    if (store_begin(c->store) != 0)
        rc = -EIO;
    for (int i = 0; i < c->n && rc == 0; i++)
        rc = c->w[i].write(c->w[i].arg);
    if (rc == 0 && store_commit(c->store) != 0)
        rc = -EIO;
    if (rc != 0) {
        store_rollback(c->store);
        c->failed++;
        LOG(LOG_ERROR, "commit failed; retrying in a second",
            LOG_S("error", store_errmsg(c->store)));
        struct timeval tv = {1, 0};
        event_add(c->ev, &tv);
    } else {
        c->commits++;
    }
    for (int i = 0; i < c->n; i++)
        c->w[i].done(c->w[i].arg, rc);
    c->in_commit = 0;
    return rc;
}

unsigned long long commit_count(const struct committer *c, unsigned long long *failed)
{
    if (failed)
        *failed = c->failed;
    return c->commits;
}
