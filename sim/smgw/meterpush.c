/*
 * meterpush.c - the gateways' meter data: every --meter-period-s seconds
 * each gateway posts the values of its meters to clsmd's meter data
 * listener (docs/protocols/meter-data.md): a COSEM-XML document in CMS
 * SignedData signed with the gateway's key, over HTTPS with its
 * certificate. Gateways take turns across the period.
 *
 * Meters: one electricity meter per device that names a metering point
 * (registers 1.8.0 and 2.8.0 integrate the device's measured power, 1.7.0
 * and 2.7.0 are that power now), and, for some households, a water, gas or
 * heat meter whose registers grow at a steady rate.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/pki.h"
#include "common/util.h"
#include "smgw/sim.h"

#define PUSH_MAX_ANSWER 65536

struct push {
    struct sim *s;
    struct gw *g;
    struct bufferevent *bev;
    size_t values;
};

/* --- the document ------------------------------------------------------------------------- */

struct text {
    char *p;
    size_t len, cap;
    int failed;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = t->cap - t->len;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->p && (size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t nc = t->cap ? t->cap * 2 : 4096;
        while (nc < t->len + (size_t)n + 1)
            nc *= 2;
        char *q = realloc(t->p, nc);
        if (q == NULL) {
            t->failed = 1;
            return;
        }
        t->p = q;
        t->cap = nc;
    }
}

/* Households with more meters than electricity: some of them. */
static const struct {
    const char *medium, *obis, *tag;
    int scaler, unit, every;
    uint64_t per_hour; /* register growth in units of 10^scaler */
} other_meters[] = {
    {"water", "8-0:1.0.0", "W", -3, 13, 3, 15}, /* litres: 15 l/h */
    {"gas", "7-0:3.0.0", "G", -2, 13, 5, 12},   /* 10 l: 0.12 m3/h */
    {"heat", "6-0:1.0.0", "H", 0, 30, 7, 1500}, /* Wh: 1.5 kW */
};

static void electricity(struct text *t, struct dev *d, const char *period, const char *time,
                        int64_t now_ms, size_t *values)
{
    int64_t w = steuerbox_measured_w(&d->sb, now_ms);
    if (d->metered_ms == 0)
        d->metered_ms = now_ms;
    int64_t dt = now_ms - d->metered_ms;
    if (dt > 0) {
        uint64_t mwh = (uint64_t)((w < 0 ? -w : w) * dt / 3600); /* W x ms / 3600 = mWh */
        if (w >= 0)
            d->import_mwh += mwh;
        else
            d->export_mwh += mwh;
        d->metered_ms = now_ms;
    }
    add(t,
        "<MeteringPoint id='%s' meter='1SIM%s' medium='electricity'><ProfileGeneric%s>"
        "<CaptureObjects>"
        "<CaptureObject index='1' obis='1-0:1.8.0' scaler='-1' unit='30'/>"
        "<CaptureObject index='2' obis='1-0:2.8.0' scaler='-1' unit='30'/>"
        "<CaptureObject index='3' obis='1-0:1.7.0' scaler='0' unit='27'/>"
        "<CaptureObject index='4' obis='1-0:2.7.0' scaler='0' unit='27'/>"
        "</CaptureObjects><Buffer><Entry time='%s'><Value index='1'>%llu</Value>"
        "<Value index='2'>%llu</Value><Value index='3'>%lld</Value><Value index='4'>%lld"
        "</Value></Entry></Buffer></ProfileGeneric></MeteringPoint>",
        d->mp, d->mp + 23, period, time, (unsigned long long)(d->import_mwh / 100),
        (unsigned long long)(d->export_mwh / 100), (long long)(w > 0 ? w : 0),
        (long long)(w < 0 ? -w : 0));
    *values += 4;
}

int meter_document(struct sim *s, struct gw *g, int64_t now_ms, uint8_t **der, size_t *len,
                   size_t *values)
{
    struct text t = {0};
    char time[40], period[24] = "";
    /* The values as of the start of the period (a quarter hour by default),
     * the profile's period when it is one a COSEM profile may have. */
    int64_t p = s->opt.meter_period_s > 0 ? s->opt.meter_period_s : 1;
    int64_t at = now_ms / 1000 / p * p * 1000;
    if (p >= 60 && 86400 % p == 0)
        snprintf(period, sizeof period, " period='%lld'", (long long)p);
    time_format_ms(at, time, sizeof time);
    *der = NULL;
    *len = 0;
    *values = 0;
    add(&t, "<MeterData xmlns='urn:clsm:cosem-xml:1' id='%s-%lld' smgw='%s' created='%s'>", g->id,
        (long long)(at / 1000), g->id, time);
    for (uint32_t k = 0; k < g->ndev; k++) {
        struct dev *d = &s->devs[g->first_dev + k];
        if (d->mp[0])
            electricity(&t, d, period, time, now_ms, values);
    }
    for (size_t m = 0; m < ARRAY_LEN(other_meters); m++) {
        if (g->idx % (uint32_t)other_meters[m].every != 0)
            continue;
        /* DE + 16 zeros + a letter for the medium + the gateway id: 33. */
        uint64_t v = (uint64_t)(at / 1000) * other_meters[m].per_hour / 3600;
        add(&t,
            "<MeteringPoint id='DE0000000000000000%s%s' meter='%sSIM%s' medium='%s'>"
            "<ProfileGeneric%s><CaptureObjects><CaptureObject index='1' obis='%s' scaler='%d'"
            " unit='%d'/></CaptureObjects><Buffer><Entry time='%s'><Value index='1'>%llu"
            "</Value></Entry></Buffer></ProfileGeneric></MeteringPoint>",
            other_meters[m].tag, g->id, other_meters[m].tag, g->id, other_meters[m].medium, period,
            other_meters[m].obis, other_meters[m].scaler, other_meters[m].unit, time,
            (unsigned long long)v);
        *values += 1;
    }
    add(&t, "</MeterData>");
    if (t.failed || *values == 0) {
        free(t.p);
        return t.failed ? -ENOMEM : -ENOENT;
    }

    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    char err[256];
    int rc = -EIO;
    if (pki_bundle_parse_entry(g->cert_der, g->cert_len, g->key_der, g->key_len, &cert, &key, err,
                               sizeof err) == 0) {
        BIO *in = BIO_new_mem_buf(t.p, (int)t.len);
        CMS_ContentInfo *cms = in ? CMS_sign(cert, key, NULL, in, CMS_BINARY) : NULL;
        unsigned char *out = NULL;
        int n = cms ? i2d_CMS_ContentInfo(cms, &out) : -1;
        if (n > 0) {
            *der = malloc((size_t)n);
            if (*der) {
                memcpy(*der, out, (size_t)n);
                *len = (size_t)n;
                rc = 0;
            }
        }
        OPENSSL_free(out);
        CMS_ContentInfo_free(cms);
        BIO_free(in);
    }
    ERR_clear_error();
    X509_free(cert);
    EVP_PKEY_free(key);
    free(t.p);
    return rc;
}

/* --- the post ---------------------------------------------------------------------------- */

static void push_done(struct push *p, int ok, const char *why)
{
    struct sim *s = p->s;
    if (ok) {
        s->pushes_ok++;
        s->push_values += p->values;
    } else {
        s->pushes_failed++;
        LOG(LOG_WARN, "meter data not taken", LOG_S("smgw", p->g->id), LOG_S("reason", why));
    }
    p->g->push = NULL;
    bufferevent_free(p->bev);
    free(p);
}

static const char *find(const char *b, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(b + i, needle, k) == 0)
            return b + i;
    return NULL;
}

/* The answer's status once its head is in ("HTTP/1.1 201 ..."). */
static void push_read_cb(struct bufferevent *bev, void *arg)
{
    struct push *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    if (n > PUSH_MAX_ANSWER) {
        push_done(p, 0, "answer too long");
        return;
    }
    const char *b = (const char *)evbuffer_pullup(in, -1);
    if (n < 12 || find(b, n, "\r\n\r\n") == NULL)
        return;
    int status = 0;
    for (int k = 9; k < 12 && b[k] >= '0' && b[k] <= '9'; k++)
        status = status * 10 + (b[k] - '0');
    char why[160];
    if (status == 200 || status == 201) {
        push_done(p, 1, NULL);
    } else {
        const char *detail = find(b, n, "\"detail\":\"");
        snprintf(why, sizeof why, "HTTP %d%s%.100s", status, detail ? ": " : "",
                 detail ? detail + 10 : "");
        push_done(p, 0, why);
    }
}

static void push_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct push *p = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED)
        return;
    push_done(p, 0,
              what & BEV_EVENT_TIMEOUT ? "no answer"
              : what & BEV_EVENT_EOF   ? "connection closed"
                                       : "connection failed");
}

static void push_start(struct sim *s, struct gw *g, int64_t now_ms)
{
    uint8_t *der = NULL;
    size_t len = 0, values = 0;
    int rc = meter_document(s, g, now_ms, &der, &len, &values);
    if (rc == -ENOENT)
        return; /* no meter behind this gateway */
    struct push *p = rc == 0 ? calloc(1, sizeof *p) : NULL;
    SSL *ssl = p ? gw_ssl(s, g) : NULL;
    evutil_socket_t fd = ssl ? gw_socket(g) : -1;
    if (fd < 0) {
        SSL_free(ssl);
        free(p);
        free(der);
        s->pushes_failed++;
        return;
    }
    p->s = s;
    p->g = g;
    p->values = values;
    p->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (p->bev == NULL) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        free(p);
        free(der);
        s->pushes_failed++;
        return;
    }
    g->push = p;
    struct timeval limit = {30, 0}; /* a clsmd that never answers does not stop the pushes */
    bufferevent_set_timeouts(p->bev, &limit, &limit);
    bufferevent_openssl_set_allow_dirty_shutdown(p->bev, 1);
    bufferevent_setcb(p->bev, push_read_cb, NULL, push_event_cb, p);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    struct evbuffer *out = bufferevent_get_output(p->bev);
    evbuffer_add_printf(out,
                        "POST /v1/meter-data HTTP/1.1\r\nHost: clsmd\r\nContent-Type: "
                        "application/pkcs7-mime; smime-type=signed-data\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\n\r\n",
                        len);
    evbuffer_add(out, der, len);
    free(der);
    if (bufferevent_socket_connect(p->bev, (struct sockaddr *)&s->meter_addr,
                                   (int)s->meter_addrlen) != 0)
        push_done(p, 0, "cannot connect");
}

void meter_tick(struct sim *s, int64_t now_ms)
{
    if (!s->opt.have_meter || s->opt.meter_period_s <= 0 || s->meter_addrlen == 0)
        return;
    uint32_t period = (uint32_t)s->opt.meter_period_s;
    uint32_t slot = (uint32_t)((now_ms / 1000) % period);
    for (uint32_t i = slot; i < s->ngws; i += period) {
        struct gw *g = &s->gws[i];
        if (g->push == NULL)
            push_start(s, g, now_ms);
    }
}

void meter_stop(struct sim *s)
{
    for (uint32_t i = 0; i < s->ngws; i++) {
        struct push *p = s->gws[i].push;
        if (p) {
            bufferevent_free(p->bev);
            free(p);
            s->gws[i].push = NULL;
        }
    }
}
