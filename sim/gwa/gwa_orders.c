/*
 * gwa_orders.c - the order table: a hash by id, an intrusive list of open
 * orders per gateway and a binary min-heap on the time each order is
 * dropped; see gwa_orders.h.
 */
#include "gwa/gwa_orders.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

#define MIN_BUCKETS 1024u

struct gwa_orders {
    char gwa_id[97];
    size_t gwa_len;
    size_t max;
    uint64_t next_seq;
    struct gwa_order **bucket; /* by id; chained */
    size_t nbuckets;           /* a power of two */
    unsigned bucket_bits;
    struct gwa_order **heap; /* by drop_ms */
    size_t n, heap_cap;
    size_t pending, woken;
    uint64_t delivered, failed, expired;
};

static const char *const state_names[] = {"pending", "woken", "delivered", "failed"};

const char *gwa_order_state_name(enum gwa_order_state s)
{
    return (unsigned)s < ARRAY_LEN(state_names) ? state_names[s] : "unknown";
}

/* --- the id hash ---------------------------------------------------------------- */

static size_t slot_of(const struct gwa_orders *t, uint64_t seq)
{
    return (size_t)((seq * 0x9E3779B97F4A7C15ull) >> (64 - t->bucket_bits));
}

static int rehash(struct gwa_orders *t, unsigned bits)
{
    size_t n = (size_t)1 << bits;
    struct gwa_order **nb = calloc(n, sizeof *nb), **old = t->bucket;
    size_t oldn = t->nbuckets;
    if (nb == NULL)
        return -ENOMEM;
    t->bucket = nb;
    t->nbuckets = n;
    t->bucket_bits = bits;
    for (size_t i = 0; i < oldn; i++) {
        for (struct gwa_order *o = old[i], *next; o; o = next) {
            next = o->id_next;
            size_t s = slot_of(t, o->seq);
            o->id_next = nb[s];
            nb[s] = o;
        }
    }
    free(old);
    return 0;
}

static void id_unlink(struct gwa_orders *t, struct gwa_order *o)
{
    for (struct gwa_order **pp = &t->bucket[slot_of(t, o->seq)]; *pp; pp = &(*pp)->id_next) {
        if (*pp == o) {
            *pp = o->id_next;
            return;
        }
    }
}

/* --- the heap ----------------------------------------------------------------------- */

static void heap_set(struct gwa_orders *t, size_t i, struct gwa_order *o)
{
    t->heap[i] = o;
    o->heap_pos = i;
}

static void sift_up(struct gwa_orders *t, size_t i)
{
    struct gwa_order *o = t->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (t->heap[parent]->drop_ms <= o->drop_ms)
            break;
        heap_set(t, i, t->heap[parent]);
        i = parent;
    }
    heap_set(t, i, o);
}

static void sift_down(struct gwa_orders *t, size_t i)
{
    struct gwa_order *o = t->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= t->n)
            break;
        if (c + 1 < t->n && t->heap[c + 1]->drop_ms < t->heap[c]->drop_ms)
            c++;
        if (t->heap[c]->drop_ms >= o->drop_ms)
            break;
        heap_set(t, i, t->heap[c]);
        i = c;
    }
    heap_set(t, i, o);
}

static void heap_remove(struct gwa_orders *t, struct gwa_order *o)
{
    size_t i = o->heap_pos;
    struct gwa_order *last = t->heap[--t->n];
    if (last == o)
        return;
    heap_set(t, i, last);
    sift_up(t, i);
    sift_down(t, last->heap_pos);
}

/* --- the gateway's open orders -------------------------------------------------------- */

static void open_append(struct gwa_gw *g, struct gwa_order *o)
{
    o->gw_next = NULL;
    o->gw_prev = g->open_tail;
    if (g->open_tail)
        g->open_tail->gw_next = o;
    else
        g->open_head = o;
    g->open_tail = o;
    g->nopen++;
}

static void open_unlink(struct gwa_gw *g, struct gwa_order *o)
{
    if (o->gw_prev)
        o->gw_prev->gw_next = o->gw_next;
    else
        g->open_head = o->gw_next;
    if (o->gw_next)
        o->gw_next->gw_prev = o->gw_prev;
    else
        g->open_tail = o->gw_prev;
    o->gw_prev = o->gw_next = NULL;
    g->nopen--;
}

static int is_open(const struct gwa_order *o)
{
    return o->state == ORDER_PENDING || o->state == ORDER_WOKEN;
}

static void count_state(struct gwa_orders *t, const struct gwa_order *o, int delta)
{
    if (o->state == ORDER_PENDING)
        t->pending = (size_t)((long long)t->pending + delta);
    else if (o->state == ORDER_WOKEN)
        t->woken = (size_t)((long long)t->woken + delta);
}

/* --- public ----------------------------------------------------------------------------- */

struct gwa_orders *gwa_orders_new(const char *gwa_id, size_t max)
{
    struct gwa_orders *t;
    if (max == 0 || max > 100000000u || strlen(gwa_id) >= sizeof t->gwa_id)
        return NULL;
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    str_copy(t->gwa_id, sizeof t->gwa_id, gwa_id);
    t->gwa_len = strlen(gwa_id);
    t->max = max;
    t->next_seq = 1;
    if (rehash(t, 10) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

void gwa_orders_free(struct gwa_orders *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->heap[i]);
    free(t->heap);
    free(t->bucket);
    free(t);
}

size_t gwa_orders_room(const struct gwa_orders *t)
{
    return t->max - t->n;
}

int gwa_orders_add(struct gwa_orders *t, struct gwa_gw *gw, const struct gwa_dev *dev, uint16_t emt,
                   const char *endpoint, int64_t valid_until_ms, struct gwa_order **out)
{
    size_t elen = strlen(endpoint);
    struct gwa_order *o;

    *out = NULL;
    if (t->n >= t->max)
        return -ENOSPC;
    if (t->n == t->heap_cap) {
        size_t nc = t->heap_cap ? t->heap_cap * 2 : MIN_BUCKETS;
        struct gwa_order **h = realloc(t->heap, nc * sizeof *h);
        if (h == NULL)
            return -ENOMEM;
        t->heap = h;
        t->heap_cap = nc;
    }
    if (t->n >= t->nbuckets && rehash(t, t->bucket_bits + 1) != 0)
        return -ENOMEM;
    o = calloc(1, sizeof *o + elen + 1);
    if (o == NULL)
        return -ENOMEM;
    o->seq = t->next_seq++;
    o->valid_until_ms = valid_until_ms;
    o->drop_ms = valid_until_ms;
    o->gw = gw;
    o->dev = dev;
    o->emt = emt;
    o->state = ORDER_PENDING;
    memcpy(o->endpoint, endpoint, elen + 1);
    size_t s = slot_of(t, o->seq);
    o->id_next = t->bucket[s];
    t->bucket[s] = o;
    heap_set(t, t->n++, o);
    sift_up(t, o->heap_pos);
    open_append(gw, o);
    count_state(t, o, 1);
    *out = o;
    return 0;
}

struct gwa_order *gwa_orders_find(const struct gwa_orders *t, const char *id)
{
    uint64_t seq = 0;
    const char *p;

    if (strncmp(id, "cr-", 3) != 0 || strncmp(id + 3, t->gwa_id, t->gwa_len) != 0 ||
        id[3 + t->gwa_len] != '-')
        return NULL;
    p = id + 4 + t->gwa_len;
    if (*p < '1' || *p > '9' || strlen(p) > 20)
        return NULL;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || seq > (UINT64_MAX - 9) / 10)
            return NULL;
        seq = seq * 10 + (uint64_t)(*p - '0');
    }
    for (struct gwa_order *o = t->bucket[slot_of(t, seq)]; o; o = o->id_next)
        if (o->seq == seq)
            return o;
    return NULL;
}

void gwa_orders_id(const struct gwa_orders *t, const struct gwa_order *o, char *buf, size_t len)
{
    snprintf(buf, len, "cr-%s-%llu", t->gwa_id, (unsigned long long)o->seq);
}

int gwa_orders_set_state(struct gwa_orders *t, struct gwa_order *o, enum gwa_order_state to,
                         const char *reason, int64_t now_ms)
{
    char id[GWA_ORDERS_ID_MAX];

    if (!is_open(o) || (to == ORDER_WOKEN && o->state != ORDER_PENDING) || to == ORDER_PENDING)
        return -EINVAL;
    count_state(t, o, -1);
    o->state = (uint8_t)to;
    count_state(t, o, 1);
    gwa_orders_id(t, o, id, sizeof id);
    if (to == ORDER_WOKEN) {
        LOG(LOG_DEBUG, "order woken", LOG_S("id", id), LOG_S("smgw", o->gw->id),
            LOG_S("cls", o->dev->id));
        return 0;
    }
    open_unlink(o->gw, o);
    if (now_ms + GWA_ORDERS_KEEP_FINISHED_MS < o->drop_ms) {
        o->drop_ms = now_ms + GWA_ORDERS_KEEP_FINISHED_MS;
        sift_up(t, o->heap_pos);
    }
    if (to == ORDER_DELIVERED) {
        t->delivered++;
        LOG(LOG_DEBUG, "order delivered", LOG_S("id", id), LOG_S("smgw", o->gw->id),
            LOG_S("cls", o->dev->id), LOG_S("endpoint", o->endpoint));
    } else {
        t->failed++;
        o->reason = reason;
        LOG(LOG_INFO, "order failed", LOG_S("id", id), LOG_S("smgw", o->gw->id),
            LOG_S("cls", o->dev->id), LOG_I("attempts", o->attempts), LOG_S("reason", reason));
    }
    return 0;
}

size_t gwa_orders_expire(struct gwa_orders *t, int64_t now_ms)
{
    size_t n = 0;
    while (t->n > 0 && t->heap[0]->drop_ms <= now_ms) {
        struct gwa_order *o = t->heap[0];
        if (is_open(o)) {
            char id[GWA_ORDERS_ID_MAX];
            gwa_orders_id(t, o, id, sizeof id);
            LOG(LOG_INFO, "order expired", LOG_S("id", id), LOG_S("smgw", o->gw->id),
                LOG_S("cls", o->dev->id), LOG_S("state", gwa_order_state_name(o->state)));
            count_state(t, o, -1);
            open_unlink(o->gw, o);
            t->expired++;
        }
        heap_remove(t, o);
        id_unlink(t, o);
        free(o);
        n++;
    }
    return n;
}

void gwa_orders_counts(const struct gwa_orders *t, struct gwa_orders_counts *out)
{
    out->live = t->n;
    out->pending = t->pending;
    out->woken = t->woken;
    out->delivered = t->delivered;
    out->failed = t->failed;
    out->expired = t->expired;
}
