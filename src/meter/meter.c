/*
 * meter.c - the meter data listener and its writer; see meter.h.
 */
#include "meter/meter.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "audit/audit.h"
#include "common/log.h"
#include "common/pki.h"
#include "meter/cosem.h"
#include "meter/signed.h"
#include "registry/registry.h"
#include "store/commit.h"
#include "store/store.h"

#define PATH                     "/v1/meter-data"
#define METER_MAX_PENDING_VALUES 1000000 /* in documents waiting for their commit */

/* A document waiting for the commit. */
struct job {
    struct meter *m;
    struct http_request *req; /* NULL once the connection is gone */
    char smgw[16];
    struct cosem_doc doc;
    struct store_reading *rows;
    char (*obis)[24];
    bool *bind;       /* per metering point: no gateway known yet */
    char (*inst)[97]; /* per metering point: the installation naming it, or "" */
    bool duplicate;
    size_t taken_by; /* 1 + the point another gateway bound first; 0: none */
    size_t stored;
    int64_t received_ms;
    struct job *next;
};

struct meter {
    struct event_base *base;
    struct store *store;
    struct committer *committer;
    struct audit *audit;
    X509_STORE *trust;
    X509 *smgw_ca;
    struct http_server *http;
    struct job *pending, **pending_tail; /* in the next commit */
    struct job *writing;                 /* in the commit under way */
    struct meter_stats stats;
    size_t pending_values; /* in documents waiting for their commit */
    meter_power_fn power_fn;
    void *power_arg;
    int retention_days;
    struct event *retention_ev;
    bool retention_due;    /* condense an hour with the next commit */
    bool retention_failed; /* and never again */
    int64_t condensed;     /* values condensed by the commit under way */
};

/* --- answers ------------------------------------------------------------------------------ */

static void reply_json(struct http_request *req, int status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    http_reply(req, status, "application/json", s, s ? strlen(s) : 0);
    free(s);
    json_decref(body);
}

static void problem(struct http_request *req, int status, const char *slug, const char *detail)
{
    char *s = http_problem_body(status, slug, detail, http_req_path(req), NULL, NULL);
    http_reply(req, status, "application/problem+json", s, s ? strlen(s) : 0);
    free(s);
}

/* Refuse a document: answer, count, and record the reason. */
static void reject(struct meter *m, struct http_request *req, const char *smgw, const char *doc_id,
                   int status, const char *slug, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void reject(struct meter *m, struct http_request *req, const char *smgw, const char *doc_id,
                   int status, const char *slug, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    m->stats.rejected++;
    LOG(LOG_WARN, "meter data refused", LOG_S("smgw", smgw), LOG_S("document", doc_id),
        LOG_I("status", status), LOG_S("reason", detail));
    json_t *p = json_pack("{s:s, s:i, s:s}", "reason", detail, "status", status, "peer",
                          http_req_peer(req));
    if (doc_id && doc_id[0])
        json_object_set_new(p, "document", json_string(doc_id));
    audit_append(m->audit, "meter_data.rejected", smgw && smgw[0] ? smgw : "unknown", smgw, p);
    problem(req, status, slug, detail);
}

/* --- the writer ------------------------------------------------------------------------- */

static void job_free(struct job *j)
{
    if (j->req)
        http_req_set_data(j->req, NULL);
    cosem_doc_free(&j->doc);
    free(j->rows);
    free(j->obis);
    free(j->bind);
    free(j->inst);
    free(j);
}

static int write_job(struct meter *m, struct job *j)
{
    int rc;
    /* A point first seen in two documents of one commit goes to the
     * gateway whose document is written first; the other is refused. */
    for (size_t i = 0; i < j->doc.npoints; i++) {
        char owner[97];
        if (!j->bind[i])
            continue;
        if ((rc = store_meter_point_owner(m->store, j->doc.points[i].id, j->smgw, owner, NULL)) !=
            0)
            return rc;
        if (strcmp(owner, j->smgw) != 0) {
            j->taken_by = i + 1;
            return 0;
        }
    }
    rc = store_meter_doc_put(m->store, j->smgw, j->doc.id, j->doc.created_ms, j->received_ms,
                             (int64_t)j->doc.nreadings);
    if (rc == -EEXIST) {
        j->duplicate = true;
        return 0;
    }
    if (rc != 0)
        return rc;
    return store_readings_put(m->store, j->smgw, j->rows, j->doc.nreadings, &j->stored);
}

/* Retention: one hour of old values per commit, then again at once while
 * there is more, else in a minute. */
static void retention_cb(evutil_socket_t fd, short what, void *arg)
{
    struct meter *m = arg;
    (void)fd;
    (void)what;
    m->retention_due = true;
    commit_want(m->committer);
}

static void retention_next(struct meter *m, bool more)
{
    struct timeval tv = {more ? 0 : 60, 0};
    if (m->retention_ev)
        evtimer_add(m->retention_ev, &tv);
}

static int meter_write(void *arg)
{
    struct meter *m = arg;
    m->condensed = -1;
    if (m->retention_due) {
        int64_t before = time_now_ms() - m->retention_days * 86400000LL;
        if (store_readings_downsample(m->store, before, &m->condensed) != 0) {
            /* Undone on its own; the commit goes on without it. */
            LOG(LOG_ERROR, "meter values could not be condensed; retention stops until restart",
                LOG_S("error", store_errmsg(m->store)));
            m->retention_failed = true;
            m->condensed = 0;
        }
    }
    m->writing = m->pending;
    m->pending = NULL;
    m->pending_tail = &m->pending;
    for (struct job *j = m->writing; j; j = j->next) {
        int rc = write_job(m, j);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* One power value of a point, signed (fed in < 0), for tell_power(). */
struct power {
    uint32_t point;
    int64_t time_ms, watts;
};

static int by_point_time(const void *a, const void *b)
{
    const struct power *x = a, *y = b;
    if (x->point != y->point)
        return x->point < y->point ? -1 : 1;
    return (x->time_ms > y->time_ms) - (x->time_ms < y->time_ms);
}

/* Power values of installations' metering points to the listener: per
 * point and time the net of taken (1.7) and fed in (2.7), in time order. */
static void tell_power(struct meter *m, const struct job *j)
{
    if (m->power_fn == NULL)
        return;
    struct power *p = calloc(j->doc.nreadings ? j->doc.nreadings : 1, sizeof *p);
    size_t n = 0;
    if (p == NULL)
        return;
    for (size_t i = 0; i < j->doc.nreadings; i++) {
        const struct cosem_reading *r = &j->doc.readings[i];
        if (!j->inst[r->point][0] || r->obis[3] != 7 || (r->obis[2] != 1 && r->obis[2] != 2))
            continue;
        int64_t w = r->value;
        for (int k = 0; k < r->scaler && w < INT64_MAX / 10; k++)
            w *= 10;
        for (int k = 0; k > r->scaler; k--)
            w /= 10;
        p[n++] = (struct power){r->point, r->time_ms, r->obis[2] == 2 ? -w : w};
    }
    qsort(p, n, sizeof *p, by_point_time);
    for (size_t i = 0; i < n;) {
        struct power net = p[i++];
        while (i < n && p[i].point == net.point && p[i].time_ms == net.time_ms)
            net.watts += p[i++].watts;
        m->power_fn(m->power_arg, j->inst[net.point], net.time_ms, net.watts);
    }
    free(p);
}

static void meter_done(void *arg, int rc)
{
    struct meter *m = arg;
    struct job *js = m->writing;
    m->writing = NULL;
    if (m->retention_due) {
        m->retention_due = rc != 0; /* again with the retry */
        if (rc == 0) {
            m->stats.values_condensed += (uint64_t)(m->condensed > 0 ? m->condensed : 0);
            if (m->condensed > 0)
                LOG(LOG_DEBUG, "meter values condensed to hours",
                    LOG_I("values", (long long)m->condensed));
            if (!m->retention_failed)
                retention_next(m, m->condensed > 0);
        }
    }
    if (rc != 0) {
        /* Rolled back: everything again with the next commit, first. */
        struct job *last = js;
        if (js == NULL)
            return;
        while (last->next)
            last = last->next;
        last->next = m->pending;
        if (m->pending == NULL)
            m->pending_tail = &last->next;
        m->pending = js;
        for (struct job *j = js; j; j = j->next) {
            j->stored = 0;
            j->duplicate = false;
            j->taken_by = 0;
        }
        return;
    }
    for (struct job *j = js, *next; j; j = next) {
        next = j->next;
        m->pending_values -= j->doc.nreadings;
        if (j->taken_by) {
            if (j->req)
                reject(m, j->req, j->smgw, j->doc.id, 403, "forbidden",
                       "metering point %s is not behind gateway %s",
                       j->doc.points[j->taken_by - 1].id, j->smgw);
            job_free(j);
            continue;
        }
        m->stats.documents++;
        m->stats.duplicates += j->duplicate ? 1 : 0;
        m->stats.values += j->doc.nreadings;
        m->stats.values_stored += j->stored;
        if (!j->duplicate)
            tell_power(m, j);
        if (j->req)
            reply_json(j->req, j->duplicate ? 200 : 201,
                       json_pack("{s:s, s:s, s:I, s:I, s:b}", "document", j->doc.id, "smgw",
                                 j->smgw, "values", (json_int_t)j->doc.nreadings, "stored",
                                 (json_int_t)j->stored, "duplicate", j->duplicate));
        job_free(j);
    }
}

/* --- the request ------------------------------------------------------------------------ */

/* The gateway of the connection: issued by the SMGW sub-CA, named by a
 * gateway id, in the registry. 0 or the HTTP status of the refusal. */
static int peer_gateway(struct meter *m, struct http_request *req, X509 **peer, char smgw[16],
                        char *why, size_t whylen)
{
    *peer = http_req_peer_cert(req);
    smgw[0] = '\0';
    if (*peer == NULL) {
        snprintf(why, whylen, "no client certificate");
        return 401;
    }
    if (!pki_issued_by(*peer, m->smgw_ca)) {
        snprintf(why, whylen, "the client certificate was not issued by the SMGW sub-CA");
        return 403;
    }
    if (pki_cert_cn(*peer, smgw, 16) != 0 || !reg_is_smgw_id(smgw)) {
        smgw[0] = '\0';
        snprintf(why, whylen, "the client certificate names no gateway");
        return 403;
    }
    struct store_scope all = {SCOPE_ALL, NULL, NULL};
    json_t *gw = NULL;
    int rc = store_reg_get(m->store, &reg_kinds[REG_SMGW], smgw, &all, &gw);
    json_decref(gw);
    if (rc == -ENOENT) {
        snprintf(why, whylen, "gateway %s is not in the registry", smgw);
        return 403;
    }
    if (rc != 0) {
        snprintf(why, whylen, "the store does not answer");
        return 503;
    }
    return 0;
}

/* Whether a document of another gateway, waiting for its commit, binds
 * metering point 'point' (seen for the first time) to that gateway. */
static bool bound_elsewhere(const struct meter *m, const char *point, const char *smgw)
{
    const struct job *lists[2] = {m->pending, m->writing};
    for (int l = 0; l < 2; l++)
        for (const struct job *j = lists[l]; j; j = j->next)
            if (strcmp(j->smgw, smgw) != 0)
                for (size_t i = 0; i < j->doc.npoints; i++)
                    if (j->bind[i] && strcmp(j->doc.points[i].id, point) == 0)
                        return true;
    return false;
}

/* The VNB of the segment of gateway 'smgw' into 'out' (97 bytes; "" when
 * unknown). */
static void gateway_vnb(struct meter *m, const char *smgw, char *out)
{
    struct store_scope all = {SCOPE_ALL, NULL, NULL};
    json_t *gw = NULL, *seg = NULL;
    out[0] = '\0';
    if (store_reg_get(m->store, &reg_kinds[REG_SMGW], smgw, &all, &gw) == 0) {
        const char *id = json_string_value(json_object_get(gw, "segment"));
        if (id && store_reg_get(m->store, &reg_kinds[REG_SEGMENT], id, &all, &seg) == 0)
            str_copy(out, 97, json_string_value(json_object_get(seg, "vnb")));
    }
    json_decref(gw);
    json_decref(seg);
}

/* Star-shaped forwarding: one event per metering point with its values,
 * for the parties entitled to them (webhooks and streams deliver it). */
static int forward(struct meter *m, const struct job *j)
{
    const struct cosem_doc *d = &j->doc;
    json_t **parties = calloc(d->npoints, sizeof *parties);
    char vnb[97] = "";
    size_t r = 0;
    if (parties == NULL)
        return -ENOMEM;
    /* Every audience first: when one cannot be read, nothing goes out. */
    for (size_t i = 0; i < d->npoints; i++) {
        if (j->bind[i] && !vnb[0])
            gateway_vnb(m, j->smgw, vnb);
        if (!j->bind[i] &&
            store_meter_point_audience(m->store, d->points[i].id, &parties[i]) != 0) {
            for (size_t k = 0; k < i; k++)
                json_decref(parties[k]);
            free(parties);
            return -EIO;
        }
    }
    for (size_t i = 0; i < d->npoints; i++) {
        const struct cosem_point *p = &d->points[i];
        const char *aud[AUDIT_AUDIENCE_MAX];
        size_t naud = 0, k;
        json_t *v;
        if (j->bind[i] && vnb[0])
            aud[naud++] = vnb;
        json_array_foreach(parties[i], k, v)
        {
            if (naud < AUDIT_AUDIENCE_MAX)
                aud[naud++] = json_string_value(v);
        }
        json_t *values = json_array();
        for (; r < d->nreadings && d->readings[r].point == i; r++) {
            const struct cosem_reading *x = &d->readings[r];
            char t[40];
            const char *unit = cosem_unit_name(x->unit);
            json_array_append_new(
                values, json_pack("{s:s, s:s, s:I, s:i, s:s, s:I}", "obis", j->obis[r], "time",
                                  time_format_ms(x->time_ms, t, sizeof t), "value",
                                  (json_int_t)x->value, "scaler", (int)x->scaler, "unit",
                                  unit ? unit : "?", "status", (json_int_t)x->status));
        }
        char subject[96];
        snprintf(subject, sizeof subject, "metering_point:%s", p->id);
        audit_append_to(m->audit, "meter_data.values", subject, j->smgw, aud, naud,
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "metering_point", p->id,
                                  "meter", p->meter, "medium", cosem_medium_name(p->medium), "smgw",
                                  j->smgw, "document", d->id, "values", values));
        json_decref(parties[i]);
    }
    free(parties);
    return 0;
}

static void take_document(struct meter *m, struct http_request *req)
{
    char smgw[16], why[600], signer[16];
    /* on_head() checked the gateway; here only its certificate and name. */
    X509 *peer = http_req_peer_cert(req);
    if (peer == NULL || pki_cert_cn(peer, smgw, sizeof smgw) != 0) {
        X509_free(peer);
        problem(req, 403, "forbidden", "the connection's certificate names no gateway");
        return;
    }
    size_t len;
    const char *body = http_req_body(req, &len);
    char *content = NULL;
    size_t clen = 0;
    int rc = signed_open((const uint8_t *)body, len, m->trust, m->smgw_ca, peer, signer, &content,
                         &clen, why, sizeof why);
    X509_free(peer);
    if (rc != 0) {
        reject(m, req, smgw, NULL, rc == -EACCES ? 403 : 400,
               rc == -EACCES ? "signature" : "bad-message", "%s", why);
        return;
    }
    struct job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        free(content);
        problem(req, 503, "overload", "out of memory");
        return;
    }
    j->m = m;
    j->received_ms = time_now_ms();
    rc = cosem_parse(content, clen, j->received_ms, &j->doc, why, sizeof why);
    free(content);
    if (rc != 0) {
        job_free(j);
        reject(m, req, smgw, NULL, rc == -ENOMEM ? 503 : 422, "document", "%s", why);
        return;
    }
    if (strcmp(j->doc.smgw, smgw) != 0) {
        reject(m, req, smgw, j->doc.id, 403, "forbidden",
               "the document names gateway %s, the connection is gateway %s", j->doc.smgw, smgw);
        job_free(j);
        return;
    }
    str_copy(j->smgw, sizeof j->smgw, smgw);
    rc = store_meter_doc_exists(m->store, smgw, j->doc.id);
    if (rc == 0) { /* sent before: stored then, nothing to do now */
        m->stats.documents++;
        m->stats.duplicates++;
        m->stats.values += j->doc.nreadings;
        reply_json(req, 200,
                   json_pack("{s:s, s:s, s:I, s:I, s:b}", "document", j->doc.id, "smgw", smgw,
                             "values", (json_int_t)j->doc.nreadings, "stored", (json_int_t)0,
                             "duplicate", 1));
        job_free(j);
        return;
    }
    if (rc != -ENOENT) {
        job_free(j);
        problem(req, 503, "store-unavailable", "the store does not answer");
        return;
    }
    j->bind = calloc(j->doc.npoints, sizeof *j->bind);
    j->inst = calloc(j->doc.npoints, sizeof *j->inst);
    j->rows = calloc(j->doc.nreadings ? j->doc.nreadings : 1, sizeof *j->rows);
    j->obis = calloc(j->doc.nreadings ? j->doc.nreadings : 1, sizeof *j->obis);
    if (j->bind == NULL || j->inst == NULL || j->rows == NULL || j->obis == NULL) {
        job_free(j);
        problem(req, 503, "overload", "out of memory");
        return;
    }
    for (size_t i = 0; i < j->doc.npoints; i++) {
        char owner[97];
        rc = store_meter_point_owner(m->store, j->doc.points[i].id, NULL, owner, j->inst[i]);
        if (rc == -ENOENT && bound_elsewhere(m, j->doc.points[i].id, smgw)) {
            reject(m, req, smgw, j->doc.id, 403, "forbidden",
                   "metering point %s is not behind gateway %s", j->doc.points[i].id, smgw);
            job_free(j);
            return;
        } else if (rc == -ENOENT) {
            j->bind[i] = true; /* first seen: bound to this gateway with the values */
        } else if (rc != 0) {
            job_free(j);
            problem(req, 503, "store-unavailable", "the store does not answer");
            return;
        } else if (strcmp(owner, smgw) != 0) {
            reject(m, req, smgw, j->doc.id, 403, "forbidden",
                   "metering point %s is not behind gateway %s", j->doc.points[i].id, smgw);
            job_free(j);
            return;
        }
    }
    for (size_t i = 0; i < j->doc.nreadings; i++) {
        const struct cosem_reading *r = &j->doc.readings[i];
        cosem_obis_format(r->obis, j->obis[i], sizeof j->obis[i]);
        j->rows[i] = (struct store_reading){j->doc.points[r->point].id,
                                            j->obis[i],
                                            r->time_ms,
                                            r->value,
                                            r->scaler,
                                            r->unit,
                                            r->status};
    }
    if (forward(m, j) != 0) {
        job_free(j);
        problem(req, 503, "store-unavailable", "the store does not answer");
        return;
    }
    j->req = req;
    http_req_set_data(req, j);
    m->pending_values += j->doc.nreadings;
    *m->pending_tail = j;
    m->pending_tail = &j->next;
    commit_want(m->committer);
}

/* Before the body: the gateway (a refusal here never reads the 5 MiB),
 * and room in the queue of documents waiting for their commit. */
static long long on_head(void *arg, struct http_request *req)
{
    struct meter *m = arg;
    if (strcmp(http_req_path(req), PATH) != 0 || strcmp(http_req_method(req), "POST") != 0)
        return -1;
    char smgw[16], why[300];
    X509 *peer = NULL;
    int status = peer_gateway(m, req, &peer, smgw, why, sizeof why);
    X509_free(peer);
    if (status == 503) {
        problem(req, 503, "store-unavailable", why);
    } else if (status != 0) {
        reject(m, req, smgw, NULL, status, "forbidden", "%s", why);
    } else if (m->pending_values >= METER_MAX_PENDING_VALUES) {
        http_add_header(req, "Retry-After", "5");
        problem(req, 503, "busy", "too many values wait to be stored; send again later");
    } else {
        return SIGNED_MAX_BYTES;
    }
    return 0;
}

static void on_request(void *arg, struct http_request *req)
{
    struct meter *m = arg;
    if (strcmp(http_req_path(req), PATH) != 0) {
        problem(req, 404, "not-found", "this listener takes POST " PATH " only");
        return;
    }
    if (strcmp(http_req_method(req), "POST") != 0) {
        http_add_header(req, "Allow", "POST");
        problem(req, 405, "method-not-allowed", "POST " PATH);
        return;
    }
    take_document(m, req);
}

static void on_free(void *arg, struct http_request *req)
{
    struct job *j = http_req_data(req);
    (void)arg;
    if (j)
        j->req = NULL; /* answered no more; the values are stored anyway */
}

/* --- life cycle -------------------------------------------------------------------------- */

struct meter *meter_new(struct event_base *base, struct store *store, struct committer *committer,
                        struct audit *audit, SSL_CTX *ctx, X509_STORE *trust, X509 *smgw_ca,
                        const struct meter_config *cfg)
{
    struct meter *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->base = base;
    m->store = store;
    m->committer = committer;
    m->audit = audit;
    m->trust = trust;
    m->smgw_ca = smgw_ca;
    m->pending_tail = &m->pending;
    struct http_limits lim = {
        .max_head = 16384,
        .max_body = 4096,
        .max_output = 65536,
        .max_connections = cfg->max_connections,
        .idle_timeout_s = 60,
        .request_timeout_s = cfg->request_timeout_s,
    };
    struct http_callbacks cb = {on_head, on_request, NULL, on_free, m};
    struct commit_writer w = {meter_write, meter_done, m};
    m->http = http_server_new(base, &lim, &cb);
    if (m->http == NULL || commit_add(committer, &w) != 0) {
        meter_free(m);
        return NULL;
    }
    http_server_set_tls(m->http, ctx);
    m->retention_days = cfg->retention_days;
    if (m->retention_days > 0) {
        m->retention_ev = evtimer_new(base, retention_cb, m);
        if (m->retention_ev == NULL) {
            meter_free(m);
            return NULL;
        }
        struct timeval first = {5, 0};
        evtimer_add(m->retention_ev, &first);
    }
    return m;
}

int meter_listen(struct meter *m, const struct hostport *addr, struct hostport *bound)
{
    return http_server_listen(m->http, addr, bound);
}

void meter_shutdown(struct meter *m, void (*done)(void *arg), void *arg)
{
    http_server_shutdown(m->http, done, arg);
}

void meter_free(struct meter *m)
{
    if (m == NULL)
        return;
    if (m->http)
        http_server_free(m->http);
    if (m->retention_ev)
        event_free(m->retention_ev);
    for (struct job *j = m->pending, *n; j; j = n) {
        n = j->next;
        j->req = NULL;
        job_free(j);
    }
    for (struct job *j = m->writing, *n; j; j = n) {
        n = j->next;
        j->req = NULL;
        job_free(j);
    }
    free(m);
}

void meter_stats(const struct meter *m, struct meter_stats *out)
{
    *out = m->stats;
}

void meter_set_power_listener(struct meter *m, meter_power_fn fn, void *arg)
{
    m->power_fn = fn;
    m->power_arg = arg;
}
