/*
 * audit.c - the hash-chained event log with group commit; see audit.h.
 */
#include "audit/audit.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "store/store.h"

#define QUEUE_MAX 100000 /* events waiting for a commit; beyond it they are counted as lost */

struct pending {
    int64_t time_ms;
    char *kind, *subject, *actor, *payload;
};

struct audit {
    struct event_base *base;
    struct store *store;
    struct event *flush_ev;
    int64_t seq;
    uint8_t hash[32];
    struct pending *q;
    size_t n, cap;
    uint64_t written, lost;
};

static void put_field(EVP_MD_CTX *md, const void *p, size_t n)
{
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    EVP_DigestUpdate(md, len, sizeof len);
    EVP_DigestUpdate(md, p, n);
}

/* Every field is length-prefixed, so no two different events hash the
 * same bytes. */
void audit_hash(const uint8_t prev[32], int64_t seq, int64_t time_ms, const char *kind,
                const char *subject, const char *actor, const char *payload, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char num[48];
    unsigned int n = 32;

    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    put_field(md, prev, 32);
    snprintf(num, sizeof num, "%lld", (long long)seq);
    put_field(md, num, strlen(num));
    snprintf(num, sizeof num, "%lld", (long long)time_ms);
    put_field(md, num, strlen(num));
    put_field(md, kind, strlen(kind));
    put_field(md, subject, strlen(subject));
    put_field(md, actor, strlen(actor));
    put_field(md, payload, strlen(payload));
    EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
}

static void pending_free(struct pending *p)
{
    free(p->kind);
    free(p->subject);
    free(p->actor);
    free(p->payload);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    audit_flush(arg);
}

struct audit *audit_new(struct event_base *base, struct store *store)
{
    struct audit *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->base = base;
    a->store = store;
    a->flush_ev = event_new(base, -1, 0, flush_cb, a);
    int rc = store_event_last(store, &a->seq, a->hash);
    if (a->flush_ev == NULL || (rc != 0 && rc != -ENOENT)) {
        audit_free(a);
        return NULL;
    }
    if (rc == -ENOENT) {
        a->seq = 0;
        memset(a->hash, 0, sizeof a->hash);
    }
    return a;
}

void audit_free(struct audit *a)
{
    if (a == NULL)
        return;
    audit_flush(a);
    for (size_t i = 0; i < a->n; i++)
        pending_free(&a->q[i]);
    free(a->q);
    if (a->flush_ev)
        event_free(a->flush_ev);
    free(a);
}

int audit_append(struct audit *a, const char *kind, const char *subject, const char *actor,
                 json_t *payload)
{
    struct pending p;
    char *text = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(payload);
    if (a->n == a->cap && a->n < QUEUE_MAX) {
        size_t nc = a->cap ? a->cap * 2 : 256;
        struct pending *q = realloc(a->q, nc * sizeof *q);
        if (q) {
            a->q = q;
            a->cap = nc;
        }
    }
    p.time_ms = time_now_ms();
    p.kind = strdup(kind);
    p.subject = strdup(subject);
    p.actor = strdup(actor);
    p.payload = text;
    if (a->n == a->cap || !p.kind || !p.subject || !p.actor || !p.payload) {
        pending_free(&p);
        a->lost++;
        LOG(LOG_ERROR, "audit event lost", LOG_S("kind", kind), LOG_S("subject", subject));
        return -ENOMEM;
    }
    a->q[a->n++] = p;
    /* Written at the end of this loop iteration, together with whatever
     * else is appended in it. */
    event_active(a->flush_ev, EV_TIMEOUT, 0);
    return 0;
}

int audit_flush(struct audit *a)
{
    int64_t seq = a->seq;
    uint8_t hash[32], prev[32];
    size_t i;
    int rc;

    if (a->n == 0)
        return 0;
    if (store_begin(a->store) != 0)
        goto fail;
    memcpy(prev, a->hash, 32);
    for (i = 0; i < a->n; i++) {
        struct pending *p = &a->q[i];
        audit_hash(prev, seq + 1, p->time_ms, p->kind, p->subject, p->actor, p->payload, hash);
        rc = store_event_insert(a->store, seq + 1, p->time_ms, p->kind, p->subject, p->actor,
                                p->payload, prev, hash);
        if (rc != 0) {
            store_rollback(a->store);
            goto fail;
        }
        seq++;
        memcpy(prev, hash, 32);
    }
    if (store_commit(a->store) != 0) {
        store_rollback(a->store);
        goto fail;
    }
    a->seq = seq;
    memcpy(a->hash, prev, 32);
    a->written += a->n;
    for (i = 0; i < a->n; i++)
        pending_free(&a->q[i]);
    a->n = 0;
    return 0;
fail:
    LOG(LOG_ERROR, "audit flush failed; will retry", LOG_S("error", store_errmsg(a->store)),
        LOG_I("queued", (long long)a->n));
    struct timeval tv = {1, 0};
    event_add(a->flush_ev, &tv);
    return -EIO;
}

uint64_t audit_written(const struct audit *a)
{
    return a->written;
}

uint64_t audit_lost(const struct audit *a)
{
    return a->lost;
}
