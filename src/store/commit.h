/*
 * commit.h - group commit on the event loop: one transaction per loop
 * iteration for everything that changed in it.
 *
 * Modules that keep state in memory and persist it (commands, requests,
 * executions, the event log) register a writer. When something changed, a
 * module calls commit_want(); at the end of the loop iteration the committer
 * opens one transaction, calls every writer's write() in registration order,
 * commits, and then calls every writer's done() with the outcome. A state
 * change and the audit event that records it are thus durable together or
 * not at all. On failure the transaction is rolled back, every done() learns
 * of it (rc < 0) and the committer tries again after a second; writers keep
 * their dirty state until a done() with rc 0.
 *
 * Everything runs on the loop thread of the base given at creation.
 */
#ifndef CLSM_COMMIT_H
#define CLSM_COMMIT_H

#include <event2/event.h>

struct store;
struct committer;

struct commit_writer {
    /* Write what changed, inside the open transaction. 0 or a negative errno. */
    int (*write)(void *arg);
    /* After the commit (rc 0) or the rollback (rc < 0). */
    void (*done)(void *arg, int rc);
    void *arg;
};

#define COMMIT_MAX_WRITERS 8

struct committer *commit_new(struct event_base *base, struct store *store);
void commit_free(struct committer *c);

/* Register a writer; the order of registration is the order of writing.
 * Returns 0 or -ENOSPC. */
int commit_add(struct committer *c, const struct commit_writer *w);

/* Ask for a commit at the end of this loop iteration (cheap to repeat). */
void commit_want(struct committer *c);

/* Commit now, outside the loop's schedule (start-up, shutdown). Returns 0
 * or -EIO. */
int commit_now(struct committer *c);

/* Commits done and failed since start. */
unsigned long long commit_count(const struct committer *c, unsigned long long *failed);

#endif
