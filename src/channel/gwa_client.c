/*
 * gwa_client.c - channel requests to GWAs over HTTPS, libcurl's multi
 * interface driven by libevent; see gwa_client.h and
 * docs/protocols/gwa.md for the wire format.
 */
#include "channel/gwa_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/gwa_answer.h"
#include "common/curlev.h"
#include "common/strmap.h"
#include "common/jsonx.h"
#include "common/log.h"
#include "common/util.h"
#include "registry/registry.h"
#include "store/store.h"

#define MAX_ANSWER GWA_ANSWER_MAX

/* A request is queued, in a submission, accepted and waiting for its
 * channel, or in a status poll. Submitted, waiting and polled requests are
 * the GWA's pending ones, limited by max_pending. */
enum req_state { RQ_NONE, RQ_QUEUED, RQ_SUBMITTING, RQ_WAITING, RQ_POLLING };

struct gwa;

struct req_list {
    struct req *head, *tail;
};

struct req {
    char device[97];
    char smgw[16];
    char gwa_req_id[97];
    enum req_state state;
    int cancelled; /* no longer wanted while in an exchange */
    bool urgent;   /* in the urgent queue when queued */
    int64_t accepted_ms;
    struct gwa *gwa;
    struct req *prev, *next; /* in its GWA's queue or list of waiting requests */
};

struct gwa {
    char id[97];
    char endpoint[520];
    int max_concurrent;
    int in_flight;
    int pending; /* RQ_SUBMITTING, RQ_WAITING, RQ_POLLING */
    int64_t paused_until_ms;
    int backoff_s;
    struct req_list queue[2]; /* RQ_QUEUED, oldest first: [0] urgent, [1] the rest */
    struct req_list waiting;  /* RQ_WAITING, least recently polled first */
    struct gwa *next;
};

enum xfer_kind { X_SUBMIT, X_STATUS };

struct xfer {
    struct gwa_client *g;
    struct gwa *gwa;
    enum xfer_kind kind;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char *answer;
    size_t answer_len, answer_cap;
    int too_big;
    long retry_after;
    struct req **reqs;
    size_t n;
    struct xfer *prev, *next; /* exchanges in flight */
};

struct gwa_client {
    struct event_base *base;
    struct store *store;
    struct gwa_client_config cfg;
    char emt_id[97], endpoint[300], cert[1024], key[1024], ca[1024], curves[256], ciphers[512];
    gwa_result_fn fn;
    void *arg;
    struct curlev *http;
    struct event *pump_ev;
    struct event *poll_timer;
    struct gwa *gwas;
    struct xfer *xfers;
    struct strmap index; /* wanted requests by device */
    int queued, in_flight;
};

/* --- small helpers ----------------------------------------------------------------- */

static int64_t now_ms(void)
{
    return time_now_ms();
}

static struct gwa *gwa_find(struct gwa_client *g, const char *id)
{
    for (struct gwa *w = g->gwas; w; w = w->next)
        if (strcmp(w->id, id) == 0)
            return w;
    return NULL;
}

/* The GWA of a gateway, from the registry (endpoint and limit refreshed on
 * every lookup, so registry changes take effect). */
static struct gwa *gwa_for(struct gwa_client *g, const char *smgw)
{
    struct store_scope all = {SCOPE_ALL, NULL, NULL};
    json_t *gw = NULL, *ga = NULL;
    struct gwa *w = NULL;

    if (store_reg_get(g->store, &reg_kinds[REG_SMGW], smgw, &all, &gw) != 0)
        return NULL;
    const char *id = json_string_value(json_object_get(gw, "gwa"));
    if (id && store_reg_get(g->store, &reg_kinds[REG_GWA], id, &all, &ga) == 0) {
        w = gwa_find(g, id);
        if (w == NULL && (w = calloc(1, sizeof *w)) != NULL) {
            str_copy(w->id, sizeof w->id, id);
            w->next = g->gwas;
            g->gwas = w;
        }
        if (w) {
            str_copy(w->endpoint, sizeof w->endpoint,
                     json_string_value(json_object_get(ga, "endpoint")));
            w->max_concurrent = (int)json_integer_value(json_object_get(ga, "max_concurrent"));
            if (w->max_concurrent < 1)
                w->max_concurrent = 1;
        }
    }
    json_decref(gw);
    json_decref(ga);
    return w;
}

/* --- requests: the index by device, the lists, the states ---------------------------- */

static struct req *find_req(struct gwa_client *g, const char *device)
{
    return strmap_get(&g->index, device);
}

static void list_push(struct req_list *l, struct req *r, int front)
{
    r->prev = front ? NULL : l->tail;
    r->next = front ? l->head : NULL;
    if (r->prev)
        r->prev->next = r;
    else
        l->head = r;
    if (r->next)
        r->next->prev = r;
    else
        l->tail = r;
}

static void list_del(struct req_list *l, struct req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
}

static struct req *r_named(struct req *r, const char *device, const char *smgw, struct gwa *w)
{
    str_copy(r->device, sizeof r->device, device);
    str_copy(r->smgw, sizeof r->smgw, smgw);
    r->gwa = w;
    return r;
}

static int is_pending(enum req_state s)
{
    return s == RQ_SUBMITTING || s == RQ_WAITING || s == RQ_POLLING;
}

/* Every change of state goes through here: it moves the request between
 * its GWA's lists and keeps the counts. 'front': to the head of the queue
 * (a submission that failed keeps its place). */
static void set_state(struct gwa_client *g, struct req *r, enum req_state to, int front)
{
    struct gwa *w = r->gwa;
    enum req_state from = r->state;

    if (from == RQ_QUEUED) {
        list_del(&w->queue[!r->urgent], r);
        g->queued--;
    } else if (from == RQ_WAITING) {
        list_del(&w->waiting, r);
    }
    w->pending += is_pending(to) - is_pending(from);
    r->state = to;
    if (to == RQ_QUEUED) {
        list_push(&w->queue[!r->urgent], r, front);
        g->queued++;
    } else if (to == RQ_WAITING) {
        list_push(&w->waiting, r, front);
    }
}

/* The request to send next: urgent ones first. */
static struct req *next_queued(const struct gwa *w)
{
    return w->queue[0].head ? w->queue[0].head : w->queue[1].head;
}

/* Forget a request: out of its lists, the counts and the index. */
static void req_free(struct gwa_client *g, struct req *r)
{
    set_state(g, r, RQ_NONE, 0);
    if (!r->cancelled)
        strmap_del(&g->index, r->device);
    free(r);
}

static void schedule_pump(struct gwa_client *g)
{
    event_active(g->pump_ev, EV_TIMEOUT, 0);
}

/* --- HTTP exchanges ------------------------------------------------------------------ */

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t add = size * n;
    if (x->answer_len + add + 1 > MAX_ANSWER) {
        x->too_big = 1;
        return 0;
    }
    if (x->answer_len + add + 1 > x->answer_cap) {
        size_t nc = x->answer_cap ? x->answer_cap : 4096;
        while (nc < x->answer_len + add + 1)
            nc *= 2;
        char *b = realloc(x->answer, nc);
        if (b == NULL)
            return 0;
        x->answer = b;
        x->answer_cap = nc;
    }
    memcpy(x->answer + x->answer_len, p, add);
    x->answer_len += add;
    x->answer[x->answer_len] = '\0';
    return add;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;
    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        char v[32];
        size_t vl = len - 12 < sizeof v - 1 ? len - 12 : sizeof v - 1;
        memcpy(v, p + 12, vl);
        v[vl] = '\0';
        x->retry_after = strtol(v, NULL, 10);
    }
    return len;
}

static void xfer_free(struct xfer *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x->answer);
    free(x->reqs);
    free(x);
}

static int start_xfer(struct gwa_client *g, struct gwa *w, enum xfer_kind kind, struct req **reqs,
                      size_t n)
{
    struct xfer *x = calloc(1, sizeof *x);
    char url[600];
    json_t *body;

    if (x == NULL)
        return -ENOMEM;
    x->g = g;
    x->gwa = w;
    x->kind = kind;
    x->reqs = reqs;
    x->n = n;
    if (kind == X_SUBMIT) {
        json_t *items = json_array();
        char until[40];
        for (size_t i = 0; i < n; i++)
            json_array_append_new(
                items, json_pack("{s:s, s:s, s:s, s:s}", "smgw", reqs[i]->smgw, "cls",
                                 reqs[i]->device, "endpoint", g->endpoint, "valid_until",
                                 time_format_ms(now_ms() + g->cfg.channel_wait_s * 1000LL, until,
                                                sizeof until)));
        body = json_pack("{s:s, s:o}", "emt", g->emt_id, "requests", items);
        snprintf(url, sizeof url, "%s/v1/channel-requests", w->endpoint);
    } else {
        json_t *ids = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(ids, json_string(reqs[i]->gwa_req_id));
        body = json_pack("{s:s, s:o}", "emt", g->emt_id, "ids", ids);
        snprintf(url, sizeof url, "%s/v1/channel-requests/status", w->endpoint);
    }
    x->body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    x->easy = curl_easy_init();
    if (x->body == NULL || x->easy == NULL) {
        x->reqs = NULL; /* the caller keeps them */
        xfer_free(x);
        return -ENOMEM;
    }
    x->headers = curl_slist_append(NULL, "Content-Type: application/json");
    x->headers = curl_slist_append(x->headers, "Accept: application/json");
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT, (long)g->cfg.timeout_s);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(x->easy, CURLOPT_SSLCERT, g->cert);
    curl_easy_setopt(x->easy, CURLOPT_SSLKEY, g->key);
    if (g->ca[0])
        curl_easy_setopt(x->easy, CURLOPT_CAINFO, g->ca);
    if (g->curves[0])
        curl_easy_setopt(x->easy, CURLOPT_SSL_EC_CURVES, g->curves);
    if (g->ciphers[0])
        curl_easy_setopt(x->easy, CURLOPT_SSL_CIPHER_LIST, g->ciphers);
    curl_easy_setopt(x->easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (curlev_add(g->http, x->easy) != 0) {
        x->reqs = NULL;
        xfer_free(x);
        return -ENOMEM;
    }
    w->in_flight++;
    g->in_flight++;
    x->next = g->xfers;
    if (g->xfers)
        g->xfers->prev = x;
    g->xfers = x;
    return 0;
}

/* Back to the queue after a failed exchange; the GWA pauses for 'pause_s'
 * (Retry-After) or the next step of its back-off. */
static void requeue(struct gwa_client *g, struct xfer *x, long pause_s, const char *why)
{
    struct gwa *w = x->gwa;
    if (pause_s <= 0) {
        w->backoff_s = w->backoff_s ? w->backoff_s * 2 : 1;
        if (w->backoff_s > g->cfg.retry_max_s)
            w->backoff_s = g->cfg.retry_max_s;
        pause_s = w->backoff_s;
    }
    w->paused_until_ms = now_ms() + pause_s * 1000;
    LOG(LOG_WARN, "gwa request failed; retrying", LOG_S("gwa", w->id), LOG_S("reason", why),
        LOG_I("retry_in_s", pause_s), LOG_I("requests", (long long)x->n));
    for (size_t i = x->n; i-- > 0;) {
        struct req *r = x->reqs[i];
        if (r->cancelled)
            req_free(g, r);
        else if (x->kind == X_SUBMIT)
            set_state(g, r, RQ_QUEUED, 1);
        else
            set_state(g, r, RQ_WAITING, 0); /* polled again later */
    }
    struct timeval tv = {pause_s, 0};
    event_add(g->poll_timer, &tv);
}

static void finish(struct gwa_client *g, struct req *r, enum gwa_outcome o, int status,
                   const char *reason)
{
    char device[97];
    str_copy(device, sizeof device, r->device);
    req_free(g, r);
    g->fn(g->arg, device, o, status, reason);
}

/* The GWA refused the whole exchange: every request in it fails with the
 * GWA's reason. */
static void refuse_all(struct gwa_client *g, struct xfer *x, long status)
{
    char detail[GWA_ITEM_REASON_MAX + 1], reason[400];
    gwa_answer_detail(x->answer, x->answer_len, detail, sizeof detail);
    snprintf(reason, sizeof reason, "GWA %s answered %ld%s%s", x->gwa->id, status,
             detail[0] ? ": " : "", detail);
    for (size_t i = 0; i < x->n; i++) {
        if (x->reqs[i]->cancelled)
            req_free(g, x->reqs[i]);
        else
            finish(g, x->reqs[i], GWA_REFUSED, (int)status, reason);
    }
}

static void submit_results(struct gwa_client *g, struct xfer *x, const struct gwa_item *items)
{
    for (size_t i = 0; i < x->n; i++) {
        struct req *r = x->reqs[i];
        const struct gwa_item *it = &items[i];
        if (r->cancelled) {
            req_free(g, r);
        } else if (it->status == GWA_ITEM_ACCEPTED) {
            str_copy(r->gwa_req_id, sizeof r->gwa_req_id, it->id);
            r->accepted_ms = now_ms();
            set_state(g, r, RQ_WAITING, 0);
            g->fn(g->arg, r->device, GWA_ACCEPTED, 0, NULL);
        } else {
            char reason[400];
            snprintf(reason, sizeof reason, "GWA %s refused: %s", x->gwa->id,
                     it->reason[0]                     ? it->reason
                     : it->status == GWA_ITEM_REJECTED ? "no reason given"
                                                       : "no usable result for this request");
            finish(g, r, GWA_REFUSED, it->code, reason);
        }
    }
}

static void status_results(struct gwa_client *g, struct xfer *x, const struct gwa_item *items)
{
    for (size_t i = 0; i < x->n; i++) {
        struct req *r = x->reqs[i];
        if (r->cancelled) {
            req_free(g, r);
        } else if (items[i].status == GWA_ITEM_FAILED) {
            char reason[400];
            snprintf(reason, sizeof reason, "GWA %s: %s", x->gwa->id,
                     items[i].reason[0] ? items[i].reason : "failed");
            finish(g, r, GWA_REFUSED, 0, reason);
        } else {
            /* pending, woken, delivered: the channel is on its way; unknown or
             * unreadable: it expires after channel_wait_s and is asked again. */
            set_state(g, r, RQ_WAITING, 0);
        }
    }
}

static void xfer_done(struct gwa_client *g, struct xfer *x, CURLcode result)
{
    long status = 0;

    x->gwa->in_flight--;
    g->in_flight--;
    if (x->prev)
        x->prev->next = x->next;
    else
        g->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (result != CURLE_OK) {
        requeue(g, x, 0, x->too_big ? "answer too large" : curl_easy_strerror(result));
    } else if (status == 429 || status == 503) {
        requeue(g, x, x->retry_after > 0 && x->retry_after <= 3600 ? x->retry_after : 0,
                status == 429 ? "429 Too Many Requests" : "503 Service Unavailable");
    } else if (status == 200) {
        char why[200];
        struct gwa_item *items = calloc(x->n ? x->n : 1, sizeof *items);
        if (items == NULL) {
            requeue(g, x, 0, "out of memory");
        } else if (gwa_answer_parse(x->answer ? x->answer : "", x->answer_len,
                                    x->kind == X_SUBMIT ? GWA_ANSWER_SUBMIT : GWA_ANSWER_STATUS,
                                    x->n, items, why, sizeof why) != 0) {
            requeue(g, x, 0, why);
        } else {
            x->gwa->backoff_s = 0;
            if (x->kind == X_SUBMIT)
                submit_results(g, x, items);
            else
                status_results(g, x, items);
        }
        free(items);
    } else if (status >= 500) {
        requeue(g, x, 0, "server error");
    } else {
        refuse_all(g, x, status);
    }
    xfer_free(x); /* the array; its requests went on above */
    schedule_pump(g);
}

/* A transfer ended (curlev.h). */
static void on_done(void *arg, CURL *easy, CURLcode result)
{
    struct xfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    xfer_done(arg, x, result);
}

/* --- the pump: queued requests out, accepted ones polled -------------------------------- */

/* Queued requests go out in batches while the GWA has exchanges and
 * pending requests to spare; on a poll, expired requests end and the
 * oldest waiting ones are asked after in one exchange. */
static void pump_gwa(struct gwa_client *g, struct gwa *w, int64_t now, int poll)
{
    if (w->paused_until_ms > now)
        return;
    while (next_queued(w) && w->in_flight < w->max_concurrent &&
           (g->cfg.max_pending <= 0 || w->pending < g->cfg.max_pending)) {
        size_t n = 0, cap = (size_t)g->cfg.batch_max;
        if (g->cfg.max_pending > 0 && cap > (size_t)(g->cfg.max_pending - w->pending))
            cap = (size_t)(g->cfg.max_pending - w->pending);
        struct req **batch = calloc(cap, sizeof *batch);
        if (batch == NULL)
            return;
        while (n < cap && next_queued(w)) {
            batch[n] = next_queued(w);
            set_state(g, batch[n], RQ_SUBMITTING, 0);
            n++;
        }
        if (start_xfer(g, w, X_SUBMIT, batch, n) != 0) {
            for (size_t i = n; i-- > 0;)
                set_state(g, batch[i], RQ_QUEUED, 1);
            free(batch);
            return;
        }
    }
    if (!poll || w->waiting.head == NULL || w->in_flight >= w->max_concurrent)
        return;
    size_t n = 0, cap = (size_t)g->cfg.batch_max;
    struct req **batch = calloc(cap, sizeof *batch);
    if (batch == NULL)
        return;
    for (struct req *r = w->waiting.head, *next; r; r = next) {
        next = r->next;
        if (now - r->accepted_ms > g->cfg.channel_wait_s * 1000LL) {
            finish(g, r, GWA_EXPIRED, 0, "the gateway did not open the channel in time");
        } else if (n < cap) {
            set_state(g, r, RQ_POLLING, 0);
            batch[n++] = r;
        }
    }
    if (n == 0 || start_xfer(g, w, X_STATUS, batch, n) != 0) {
        for (size_t i = 0; i < n; i++)
            set_state(g, batch[i], RQ_WAITING, 0);
        free(batch);
    }
}

static void pump_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct gwa_client *g = arg;
    int64_t now = now_ms();
    (void)fd;
    (void)kind;
    for (struct gwa *w = g->gwas; w; w = w->next)
        pump_gwa(g, w, now, 0);
}

static void poll_cb(evutil_socket_t fd, short kind, void *arg)
{
    struct gwa_client *g = arg;
    int64_t now = now_ms();
    (void)fd;
    (void)kind;
    for (struct gwa *w = g->gwas; w; w = w->next)
        pump_gwa(g, w, now, 1);
    struct timeval tv = {g->cfg.poll_s, 0};
    event_add(g->poll_timer, &tv);
}

/* --- public ----------------------------------------------------------------------------- */

struct gwa_client *gwa_client_new(struct event_base *base, struct store *store,
                                  const struct gwa_client_config *cfg, gwa_result_fn fn, void *arg)
{
    struct gwa_client *g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    g->base = base;
    g->store = store;
    g->cfg = *cfg;
    if (g->cfg.poll_s <= 0)
        g->cfg.poll_s = 2;
    str_copy(g->emt_id, sizeof g->emt_id, cfg->emt_id);
    str_copy(g->endpoint, sizeof g->endpoint, cfg->endpoint);
    str_copy(g->cert, sizeof g->cert, cfg->cert);
    str_copy(g->key, sizeof g->key, cfg->key);
    str_copy(g->ca, sizeof g->ca, cfg->ca ? cfg->ca : "");
    str_copy(g->curves, sizeof g->curves, cfg->curves ? cfg->curves : "");
    str_copy(g->ciphers, sizeof g->ciphers, cfg->ciphers ? cfg->ciphers : "");
    g->fn = fn;
    g->arg = arg;
    g->http = curlev_new(base, on_done, g);
    g->pump_ev = event_new(base, -1, 0, pump_cb, g);
    g->poll_timer = evtimer_new(base, poll_cb, g);
    if (!g->http || !g->pump_ev || !g->poll_timer) {
        gwa_client_free(g);
        return NULL;
    }
    struct timeval tv = {g->cfg.poll_s, 0};
    event_add(g->poll_timer, &tv);
    return g;
}

void gwa_client_free(struct gwa_client *g)
{
    if (g == NULL)
        return;
    while (g->xfers) {
        /* Exchanges in flight are abandoned with their requests. */
        struct xfer *x = g->xfers;
        g->xfers = x->next;
        curlev_remove(g->http, x->easy);
        for (size_t i = 0; i < x->n; i++)
            req_free(g, x->reqs[i]);
        xfer_free(x);
    }
    while (g->gwas) {
        struct gwa *w = g->gwas;
        g->gwas = w->next;
        while (next_queued(w))
            req_free(g, next_queued(w));
        while (w->waiting.head)
            req_free(g, w->waiting.head);
        free(w);
    }
    strmap_clear(&g->index, NULL);
    curlev_free(g->http);
    if (g->pump_ev)
        event_free(g->pump_ev);
    if (g->poll_timer)
        event_free(g->poll_timer);
    free(g);
}

int gwa_client_request(struct gwa_client *g, const char *smgw, const char *device, bool urgent)
{
    struct req *old = find_req(g, device);
    if (old != NULL) { /* already asked for; urgent now, it moves ahead */
        if (urgent && !old->urgent && old->state == RQ_QUEUED) {
            list_del(&old->gwa->queue[1], old);
            old->urgent = true;
            list_push(&old->gwa->queue[0], old, 0);
            schedule_pump(g);
        }
        old->urgent = old->urgent || urgent;
        return 0;
    }
    struct gwa *w = gwa_for(g, smgw);
    if (w == NULL)
        return -ENOENT;
    struct req *r = calloc(1, sizeof *r);
    if (r == NULL || strmap_put(&g->index, device, r_named(r, device, smgw, w)) != 0) {
        free(r);
        return -ENOMEM;
    }
    r->urgent = urgent;
    set_state(g, r, RQ_QUEUED, 0);
    schedule_pump(g);
    return 0;
}

void gwa_client_done(struct gwa_client *g, const char *device)
{
    struct req *r = find_req(g, device);
    if (r == NULL)
        return;
    if (r->state == RQ_QUEUED || r->state == RQ_WAITING) {
        req_free(g, r);
        schedule_pump(g); /* room for the next one */
    } else {
        /* In an exchange: dropped when its answer arrives. */
        strmap_del(&g->index, r->device);
        r->cancelled = 1;
    }
}

void gwa_client_counts(const struct gwa_client *g, int *queued, int *exchanges, int *with_gwa)
{
    *queued = g->queued;
    *exchanges = g->in_flight;
    *with_gwa = 0;
    for (const struct gwa *w = g->gwas; w; w = w->next)
        *with_gwa += w->pending;
}
