/*
 * audit.c - the hash-chained event log on the group commit; see audit.h.
 */
#include "audit/audit.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "store/commit.h"
#include "store/store.h"

#define QUEUE_MAX 200000 /* events waiting for a commit; beyond it they are counted as lost */

struct pending {
    int64_t time_ms;
    char *kind, *subject, *actor, *audience, *payload;
};

struct audit {
    struct store *store;
    struct committer *committer;
    int64_t seq; /* last durable event */
    uint8_t hash[32];
    int64_t w_seq; /* what the open transaction wrote, until done() */
    uint8_t w_hash[32];
    size_t w_n;
    struct pending *q;
    size_t n, cap;
    uint64_t written, lost;
    audit_listener_fn listener;
    void *listener_arg;
};

static void put_field(EVP_MD_CTX *md, const void *p, size_t n)
{
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    EVP_DigestUpdate(md, len, sizeof len);
    EVP_DigestUpdate(md, p, n);
}

void audit_hash(const uint8_t prev[32], int64_t seq, int64_t time_ms, const char *kind,
                const char *subject, const char *actor, const char *audience, const char *payload,
                uint8_t out[32])
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
    if (audience && audience[0])
        put_field(md, audience, strlen(audience));
    EVP_DigestFinal_ex(md, out, &n);
    EVP_MD_CTX_free(md);
}

static void pending_free(struct pending *p)
{
    free(p->kind);
    free(p->subject);
    free(p->actor);
    free(p->audience);
    free(p->payload);
}

static int audit_write(void *arg)
{
    struct audit *a = arg;
    uint8_t prev[32];
    int64_t seq = a->seq;

    a->w_n = 0;
    memcpy(prev, a->hash, 32);
    for (size_t i = 0; i < a->n; i++) {
        struct pending *p = &a->q[i];
        uint8_t hash[32];
        audit_hash(prev, seq + 1, p->time_ms, p->kind, p->subject, p->actor, p->audience,
                   p->payload, hash);
        int rc = store_event_insert(a->store, seq + 1, p->time_ms, p->kind, p->subject, p->actor,
                                    p->audience, p->payload, prev, hash);
        if (rc != 0)
            return rc;
        seq++;
        memcpy(prev, hash, 32);
    }
    a->w_n = a->n;
    a->w_seq = seq;
    memcpy(a->w_hash, prev, 32);
    return 0;
}

static void audit_done(void *arg, int rc)
{
    struct audit *a = arg;
    size_t n = a->w_n;
    a->w_n = 0;
    if (rc != 0 || n == 0)
        return; /* still queued; the committer retries */
    int64_t first = a->seq + 1;
    a->seq = a->w_seq;
    memcpy(a->hash, a->w_hash, 32);
    a->written += n;
    for (size_t i = 0; i < n; i++) {
        struct pending p = a->q[i]; /* a listener may append, moving the queue */
        if (a->listener) {
            struct audit_event ev = {first + (int64_t)i, p.time_ms, p.kind, p.subject, p.actor,
                                     p.audience,         p.payload};
            a->listener(a->listener_arg, &ev);
        }
        pending_free(&p);
    }
    /* Events appended after the write (by a listener, say) wait for the next. */
    memmove(a->q, a->q + n, (a->n - n) * sizeof *a->q);
    a->n -= n;
    if (a->n)
        commit_want(a->committer);
}

struct audit *audit_new(struct store *store, struct committer *committer)
{
    struct audit *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->store = store;
    a->committer = committer;
    int rc = store_event_last(store, &a->seq, a->hash);
    struct commit_writer w = {audit_write, audit_done, a};
    if ((rc != 0 && rc != -ENOENT) || commit_add(committer, &w) != 0) {
        free(a);
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
    if (a->n)
        LOG(LOG_ERROR, "audit events not written at shutdown", LOG_I("events", (long long)a->n));
    for (size_t i = 0; i < a->n; i++)
        pending_free(&a->q[i]);
    free(a->q);
    free(a);
}

void audit_set_listener(struct audit *a, audit_listener_fn fn, void *arg)
{
    a->listener = fn;
    a->listener_arg = arg;
}

/* "p1 p2 p3": the distinct non-NULL ids, in the order given. */
static char *join_audience(const char *const *aud, size_t n)
{
    size_t len = 1;
    if (n > AUDIT_AUDIENCE_MAX)
        n = AUDIT_AUDIENCE_MAX;
    for (size_t i = 0; i < n; i++)
        if (aud[i])
            len += strlen(aud[i]) + 1;
    char *s = malloc(len), *p = s;
    if (s == NULL)
        return NULL;
    *p = '\0';
    for (size_t i = 0; i < n; i++) {
        int dup = aud[i] == NULL || aud[i][0] == '\0';
        for (size_t k = 0; k < i && !dup; k++)
            dup = aud[k] && strcmp(aud[k], aud[i]) == 0;
        if (dup)
            continue;
        if (p != s)
            *p++ = ' ';
        size_t l = strlen(aud[i]);
        memcpy(p, aud[i], l + 1);
        p += l;
    }
    return s;
}

int audit_append_to(struct audit *a, const char *kind, const char *subject, const char *actor,
                    const char *const *audience, size_t naud, json_t *payload)
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
    p.audience = join_audience(audience, naud);
    p.payload = text;
    if (a->n == a->cap || !p.kind || !p.subject || !p.actor || !p.audience || !p.payload) {
        pending_free(&p);
        a->lost++;
        LOG(LOG_ERROR, "audit event lost", LOG_S("kind", kind), LOG_S("subject", subject));
        return -ENOMEM;
    }
    a->q[a->n++] = p;
    commit_want(a->committer);
    return 0;
}

int audit_append(struct audit *a, const char *kind, const char *subject, const char *actor,
                 json_t *payload)
{
    return audit_append_to(a, kind, subject, actor, NULL, 0, payload);
}

uint64_t audit_written(const struct audit *a)
{
    return a->written;
}

uint64_t audit_lost(const struct audit *a)
{
    return a->lost;
}

size_t audit_queued(const struct audit *a)
{
    return a->n;
}

int64_t audit_last_seq(const struct audit *a)
{
    return a->seq;
}

enum audit_fault audit_chain_next(struct audit_chain *ch, const struct audit_event *ev,
                                  const uint8_t prev[32], const uint8_t hash[32])
{
    uint8_t want[32];
    if (ev->seq != ch->seq + 1)
        return AUDIT_CHAIN_GAP;
    if (memcmp(prev, ch->hash, 32) != 0)
        return AUDIT_CHAIN_LINK;
    audit_hash(prev, ev->seq, ev->time_ms, ev->kind, ev->subject, ev->actor, ev->audience,
               ev->payload, want);
    if (memcmp(want, hash, 32) != 0)
        return AUDIT_CHAIN_HASH;
    ch->seq = ev->seq;
    memcpy(ch->hash, hash, 32);
    ch->checked++;
    return AUDIT_CHAIN_OK;
}
