/*
 * wan.c - the gateways' wide-area side: signed wake-ups in, orders fetched
 * from the GWA over mutual TLS (with session resumption), CLS channels
 * dialled to clsmd with each gateway's own certificate and proxied to the
 * device's home-area connection. See sim.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/pki.h"
#include "common/wakeup.h"
#include "smgw/sim.h"

#define FETCH_MAX_ANSWER (1u << 20)
#define CHAN_MAX_BUFFER  (1u << 20)

/* --- sockets ---------------------------------------------------------------------------- */

/* A non-blocking TCP socket bound to the gateway's own loopback address. */
evutil_socket_t gw_socket(const struct gw *g)
{
    struct sockaddr_in a;
    evutil_socket_t fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    fleet_gw_addr(g->idx, &a);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || evutil_make_socket_nonblocking(fd) != 0) {
        evutil_closesocket(fd);
        return -1;
    }
    return fd;
}

static int resolve(const char *hostport, struct sockaddr_storage *out, socklen_t *len)
{
    struct hostport hp;
    struct addrinfo hints, *res = NULL;
    char port[16];
    if (hostport_parse(hostport, &hp) != 0)
        return -EINVAL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof port, "%d", hp.port);
    if (getaddrinfo(hp.host, port, &hints, &res) != 0 || res == NULL)
        return -EADDRNOTAVAIL;
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* A TLS client for gateway 'g': its certificate and key, parsed from the
 * bundle bytes only now (100,000 parsed keys would cost memory for nothing). */
SSL *gw_ssl(struct sim *s, const struct gw *g)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    char err[256];
    SSL *ssl = NULL;
    if (pki_bundle_parse_entry(g->cert_der, g->cert_len, g->key_der, g->key_len, &cert, &key, err,
                               sizeof err) != 0) {
        LOG(LOG_ERROR, "gateway credentials unusable", LOG_S("smgw", g->id), LOG_S("error", err));
        return NULL;
    }
    ssl = SSL_new(s->ctx);
    if (ssl && (SSL_use_certificate(ssl, cert) != 1 || SSL_use_PrivateKey(ssl, key) != 1 ||
                (s->smgw_ca && SSL_add1_chain_cert(ssl, s->smgw_ca) != 1))) {
        SSL_free(ssl);
        ssl = NULL;
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return ssl;
}

/* --- channels ------------------------------------------------------------------------- */

static void lru_unlink(struct sim *s, struct chan *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (s->lru_head == c)
        s->lru_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else if (s->lru_tail == c)
        s->lru_tail = c->prev;
    c->prev = c->next = NULL;
}

void chan_touch(struct chan *c)
{
    struct sim *s = c->s;
    c->last_ms = time_now_ms();
    if (s->lru_head == c)
        return;
    lru_unlink(s, c);
    c->next = s->lru_head;
    if (s->lru_head)
        s->lru_head->prev = c;
    s->lru_head = c;
    if (s->lru_tail == NULL)
        s->lru_tail = c;
}

void chan_close(struct chan *c, const char *reason, int lost)
{
    struct sim *s = c->s;
    struct dev *d = c->dev;
    LOG(LOG_DEBUG, "channel closed", LOG_S("smgw", s->gws[d->gw].id), LOG_S("device", d->id),
        LOG_S("reason", reason));
    lru_unlink(s, c);
    s->nchans--;
    s->chans_closed++;
    d->chan = NULL;
    device_disconnect(s, d, lost);
    if (c->wan)
        bufferevent_free(c->wan);
    if (c->han)
        bufferevent_free(c->han);
    free(c);
}

static void wan_read_cb(struct bufferevent *bev, void *arg)
{
    struct chan *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    chan_touch(c);
    if (c->han == NULL) {
        if (evbuffer_get_length(in) > CHAN_MAX_BUFFER)
            chan_close(c, "too much data before the device connected", 1);
        return; /* held until the device is there */
    }
    evbuffer_add_buffer(bufferevent_get_output(c->han), in);
    if (evbuffer_get_length(bufferevent_get_output(c->han)) > CHAN_MAX_BUFFER)
        chan_close(c, "the device does not read", 1);
}

static void han_read_cb(struct bufferevent *bev, void *arg)
{
    struct chan *c = arg;
    chan_touch(c);
    evbuffer_add_buffer(bufferevent_get_output(c->wan), bufferevent_get_input(bev));
    if (evbuffer_get_length(bufferevent_get_output(c->wan)) > CHAN_MAX_BUFFER)
        chan_close(c, "clsmd does not read", 1);
}

static void wan_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct chan *c = arg;
    struct sim *s = c->s;
    if (what & BEV_EVENT_CONNECTED) {
        c->wan_up = 1;
        s->chans_opened++;
        if (device_connect(s, c->dev) != 0)
            chan_close(c, "the device could not connect", 1);
        return;
    }
    unsigned long e = bufferevent_get_openssl_error(bev);
    char msg[160] = "clsmd closed the channel";
    if (e)
        snprintf(msg, sizeof msg, "TLS: %s", ERR_reason_error_string(e));
    if (!c->wan_up)
        s->chans_failed++;
    while (bufferevent_get_openssl_error(bev))
        ;
    /* clsmd ending the channel is orderly; a broken connection is not. */
    chan_close(c, msg, !(what & BEV_EVENT_EOF) || !c->wan_up);
}

static void han_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct chan *c = arg;
    (void)bev;
    (void)what;
    chan_close(c, "the device closed its connection", 1);
}

void chan_attach_han(struct chan *c, evutil_socket_t fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->han = bufferevent_socket_new(c->s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->han == NULL) {
        evutil_closesocket(fd);
        chan_close(c, "out of memory", 1);
        return;
    }
    bufferevent_setcb(c->han, han_read_cb, NULL, han_event_cb, c);
    bufferevent_enable(c->han, EV_READ | EV_WRITE);
    /* What clsmd sent before the device was there. */
    struct evbuffer *held = bufferevent_get_input(c->wan);
    if (evbuffer_get_length(held) > 0)
        evbuffer_add_buffer(bufferevent_get_output(c->han), held);
}

/* Dial clsmd for device 'd' (an order said so). */
static void chan_open(struct sim *s, struct dev *d, const struct sockaddr_storage *to,
                      socklen_t tolen)
{
    struct gw *g = &s->gws[d->gw];
    struct chan *c;
    SSL *ssl;
    evutil_socket_t fd;

    if (d->chan)
        return; /* already up: the order is served */
    while (s->nchans >= s->opt.max_channels && s->lru_tail) {
        s->chans_evicted++;
        chan_close(s->lru_tail, "closed to make room (descriptor budget)", 0);
    }
    c = calloc(1, sizeof *c);
    ssl = c ? gw_ssl(s, g) : NULL;
    fd = ssl ? gw_socket(g) : -1;
    if (fd < 0) {
        s->chans_failed++;
        LOG(LOG_WARN, "cannot dial clsmd", LOG_S("smgw", g->id), LOG_S("device", d->id),
            LOG_S("error", strerror(errno)));
        SSL_free(ssl);
        free(c);
        return;
    }
    c->s = s;
    c->dev = d;
    c->opened_ms = c->last_ms = time_now_ms();
    c->wan = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (c->wan == NULL) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        free(c);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(c->wan, 1);
    bufferevent_setcb(c->wan, wan_read_cb, NULL, wan_event_cb, c);
    bufferevent_enable(c->wan, EV_READ | EV_WRITE);
    d->chan = c;
    s->nchans++;
    chan_touch(c);
    if (bufferevent_socket_connect(c->wan, (const struct sockaddr *)to, (int)tolen) != 0)
        chan_close(c, "connect failed", 1);
}

/* --- orders from the GWA ------------------------------------------------------------------- */

struct fetch {
    struct sim *s;
    struct gw *g;
    struct bufferevent *bev;
};

static void fetch_start(struct sim *s, struct gw *g);

static void handle_orders(struct sim *s, struct gw *g, const char *body, size_t len)
{
    json_t *doc = json_loadb(body, len, 0, NULL), *o;
    size_t i;
    json_array_foreach(json_object_get(doc, "orders"), i, o)
    {
        const char *cls = json_string_value(json_object_get(o, "cls"));
        const char *ep = json_string_value(json_object_get(o, "endpoint"));
        struct dev *d = cls ? fleet_dev(s, cls) : NULL;
        struct sockaddr_storage to;
        socklen_t tolen;
        s->orders++;
        if (d == NULL || d->gw != g->idx || ep == NULL || resolve(ep, &to, &tolen) != 0) {
            s->orders_unknown++;
            LOG(LOG_WARN, "order not served", LOG_S("smgw", g->id), LOG_S("cls", cls),
                LOG_S("endpoint", ep));
            continue;
        }
        chan_open(s, d, &to, tolen);
    }
    json_decref(doc);
}

static void fetch_done(struct fetch *f, int ok)
{
    struct sim *s = f->s;
    struct gw *g = f->g;
    struct evbuffer *in = bufferevent_get_input(f->bev);
    size_t n = evbuffer_get_length(in);
    const char *p = n ? (const char *)evbuffer_pullup(in, -1) : "";
    const char *end = NULL;
    for (size_t i = 0; i + 4 <= n && end == NULL; i++)
        if (memcmp(p + i, "\r\n\r\n", 4) == 0)
            end = p + i;

    /* A complete answer counts, however the connection ended (peers may
     * close TLS without close_notify). */
    if (end) {
        const char *cl = NULL;
        for (const char *q = p; q < end; q++)
            if (strncasecmp(q, "\r\nContent-Length:", 17) == 0)
                cl = q + 17;
        long long want = -1;
        if (cl) {
            char num[24];
            size_t k = 0;
            while (*cl == ' ')
                cl++;
            while (k < sizeof num - 1 && cl[k] >= '0' && cl[k] <= '9') {
                num[k] = cl[k];
                k++;
            }
            num[k] = '\0';
            if (parse_ll(num, 0, FETCH_MAX_ANSWER, &want) != 0)
                want = -1;
        }
        ok = want >= 0 && (size_t)want == n - (size_t)(end + 4 - p);
    }
    if (ok && n > 12 && strncmp(p, "HTTP/1.1 200", 12) == 0 && end) {
        s->fetches_ok++;
        handle_orders(s, g, end + 4, n - (size_t)(end + 4 - p));
    } else {
        s->fetches_failed++;
        LOG(LOG_WARN, "order fetch failed", LOG_S("smgw", g->id), LOG_I("bytes", (long long)n));
    }
    bufferevent_free(f->bev);
    free(f);
    g->fetch = NULL;
    if (g->fetch_again) {
        g->fetch_again = 0;
        fetch_start(s, g);
    }
}

static void fetch_read_cb(struct bufferevent *bev, void *arg)
{
    struct fetch *f = arg;
    if (evbuffer_get_length(bufferevent_get_input(bev)) > FETCH_MAX_ANSWER)
        fetch_done(f, 0);
}

static void fetch_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct fetch *f = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* Keep the session for the next wake-up (TLS session resumption). */
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        SSL_SESSION *sess = ssl ? SSL_get1_session(ssl) : NULL;
        if (sess) {
            SSL_SESSION_free(f->g->gwa_session);
            f->g->gwa_session = sess;
        }
        return;
    }
    while (bufferevent_get_openssl_error(bev))
        ;
    fetch_done(f, (what & BEV_EVENT_EOF) != 0);
}

static void fetch_start(struct sim *s, struct gw *g)
{
    struct gwa_info *w = g->gwa >= 0 ? &s->gwas[g->gwa] : NULL;
    struct fetch *f;
    SSL *ssl;
    evutil_socket_t fd;

    if (w == NULL || w->addrlen == 0) {
        s->fetches_failed++;
        return;
    }
    g->fetches++;
    f = calloc(1, sizeof *f);
    ssl = f ? gw_ssl(s, g) : NULL;
    fd = ssl ? gw_socket(g) : -1;
    if (fd < 0) {
        SSL_free(ssl);
        free(f);
        s->fetches_failed++;
        return;
    }
    if (g->gwa_session)
        SSL_set_session(ssl, g->gwa_session);
    f->s = s;
    f->g = g;
    f->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (f->bev == NULL) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        free(f);
        return;
    }
    g->fetch = f;
    bufferevent_openssl_set_allow_dirty_shutdown(f->bev, 1);
    bufferevent_setcb(f->bev, fetch_read_cb, NULL, fetch_event_cb, f);
    bufferevent_enable(f->bev, EV_READ | EV_WRITE);
    evbuffer_add_printf(bufferevent_get_output(f->bev),
                        "GET /v1/orders HTTP/1.1\r\nHost: gwa\r\nConnection: close\r\n\r\n");
    if (bufferevent_socket_connect(f->bev, (struct sockaddr *)&w->addr, (int)w->addrlen) != 0)
        fetch_done(f, 0);
}

/* --- wake-ups ------------------------------------------------------------------------------- */

static int smgw_ours(void *arg, const char *id)
{
    return fleet_gw(arg, id) != NULL;
}

static EVP_PKEY *gwa_key(void *arg, const char *id)
{
    struct sim *s = arg;
    for (int i = 0; i < s->ngwas; i++)
        if (strcmp(s->gwas[i].id, id) == 0)
            return s->gwas[i].pub;
    return NULL;
}

/* Counted by reason, in the order wakeup_accept() checks. */
static int bad_index(int rc)
{
    switch (rc) {
    case WAKEUP_EMALFORMED:
        return 0;
    case WAKEUP_ENOTOURS:
        return 1;
    case WAKEUP_ETIME:
        return 2;
    case WAKEUP_EUNKNOWNGWA:
        return 3;
    case WAKEUP_EBADSIG:
        return 4;
    case WAKEUP_EREPLAY:
        return 5;
    case WAKEUP_EOVERLOAD:
        return 6;
    default:
        return 7;
    }
}

void wan_wakeup_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sim *s = arg;
    struct wakeup_checks chk = {smgw_ours, gwa_key, s, s->nonces};
    uint8_t buf[WAKEUP_MAX_LEN + 1];
    (void)what;

    for (int i = 0; i < 256; i++) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        struct wakeup w;
        const char *why = NULL;
        if (n < 0)
            return;
        int rc = wakeup_accept(&chk, buf, (size_t)n, time_now_ms(), &w, &why);
        if (rc != 0) {
            s->wakeups_bad[bad_index(rc)]++;
            LOG(LOG_INFO, "wake-up ignored", LOG_S("reason", why), LOG_I("bytes", (long long)n));
            continue;
        }
        s->wakeups_ok++;
        struct gw *g = fleet_gw(s, w.smgw_id);
        g->wakeups++;
        if (g->fetch)
            g->fetch_again = 1;
        else
            fetch_start(s, g);
    }
}

int wan_start(struct sim *s)
{
    struct sockaddr_storage a;
    socklen_t alen;
    char hp[300];

    for (int i = 0; i < s->ngwas; i++) {
        struct gwa_info *w = &s->gwas[i];
        const char *ep = strncmp(w->endpoint, "https://", 8) == 0 ? w->endpoint + 8 : w->endpoint;
        str_copy(hp, sizeof hp, ep);
        char *slash = strchr(hp, '/');
        if (slash)
            *slash = '\0';
        if (resolve(hp, &w->addr, &w->addrlen) != 0)
            LOG(LOG_WARN, "GWA endpoint not usable", LOG_S("gwa", w->id),
                LOG_S("endpoint", w->endpoint));
    }
    snprintf(hp, sizeof hp, "%s:%d", s->opt.udp.host, s->opt.udp.port);
    if (resolve(hp, &a, &alen) != 0)
        return -1;
    s->udp = socket(AF_INET, SOCK_DGRAM, 0);
    if (s->udp < 0 || bind(s->udp, (struct sockaddr *)&a, alen) != 0 ||
        evutil_make_socket_nonblocking(s->udp) != 0) {
        LOG(LOG_ERROR, "cannot bind the wake-up socket", LOG_S("addr", hp),
            LOG_S("error", strerror(errno)));
        return -1;
    }
    int rcvbuf = 8 << 20;
    setsockopt(s->udp, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    alen = sizeof a;
    getsockname(s->udp, (struct sockaddr *)&a, &alen);
    s->opt.udp.port = ntohs(((struct sockaddr_in *)&a)->sin_port);
    s->udp_ev = event_new(s->base, s->udp, EV_READ | EV_PERSIST, wan_wakeup_cb, s);
    if (s->udp_ev == NULL || event_add(s->udp_ev, NULL) != 0)
        return -1;
    return 0;
}

void wan_stop(struct sim *s)
{
    while (s->lru_head)
        chan_close(s->lru_head, "simulator stopping", 0);
    for (uint32_t k = 0; k < s->ngws; k++) { /* fetches in progress end unanswered */
        struct fetch *f = s->gws[k].fetch;
        if (f) {
            bufferevent_free(f->bev);
            free(f);
            s->gws[k].fetch = NULL;
        }
    }
    if (s->udp_ev)
        event_free(s->udp_ev);
    if (s->udp >= 0)
        evutil_closesocket(s->udp);
    s->udp_ev = NULL;
    s->udp = -1;
}
