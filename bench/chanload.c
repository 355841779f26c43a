/*
 * chanload.c - load generator for the CLS channel benchmarks: many gateways
 * dialling a TLS endpoint with their own certificates (from a clsm-pki
 * bundle), all on one libevent loop.
 *
 *   chanload open HOST:PORT PKI -c CONC -t SECONDS [--http | --tls-only]
 *       dial, finish the mutual-TLS handshake, then open a CLS channel (MQTT
 *       CONNECT as the gateway's device "SB-<gateway>", SUBSCRIBE, SUBACK),
 *       or with --http GET / (for nginx), or with --tls-only nothing; close;
 *       repeat with CONC at a time. Prints completed exchanges per second.
 *   chanload idle HOST:PORT PKI -n N [-t SECONDS] [--tls-only]
 *       open N channels as above and hold them, answering what the server
 *       sends, until SECONDS pass or SIGTERM. Prints when all are open.
 *       With --tls-only the connections stay bare TLS (for nginx).
 *   chanload devices HOST:PORT PKI -n N --api HOST:PORT --token T -m M [-w W]
 *       open N channels as devices (the Steuerbox model answers every
 *       control), then submit M commands through clsmd's API, W in flight,
 *       and wait until clsmd reports them confirmed (GET /metrics). Prints
 *       confirmed commands per second.
 *
 * Each gateway's socket binds to its own loopback address (as the fleet
 * simulator does), so ephemeral ports never run out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/pki.h"
#include "common/tls.h"
#include "common/util.h"
#include "driver/lpc_msg.h"
#include "driver/mqtt.h"
#include "smgw/steuerbox.h"

enum mode { M_OPEN, M_IDLE, M_DEVICES };
enum sub { S_CHANNEL, S_HTTP, S_TLS };

struct gwc {
    char id[16];
    char dev[24];
    uint8_t *cert, *key;
    size_t cert_len, key_len;
    struct steuerbox sb;
};

struct load;

struct conn {
    struct load *l;
    struct bufferevent *bev;
    size_t gw;
    int ready;
};

struct load {
    struct event_base *base;
    SSL_CTX *ctx;
    X509 *ca;
    enum mode mode;
    enum sub sub;
    struct sockaddr_in to, api;
    struct gwc *gws;
    size_t ngws, cap, next_gw;
    int conc, target, seconds, stopping, settled, in_start;
    int open_now, ready_now;
    long started;
    uint64_t done, failed, lost;
    int64_t start_us, end_us;
    char token[256];
    char version[96];
    /* devices mode */
    long submit_total, submitted, answered, refused, window;
    long long finished_before, confirmed_before, failed_before, confirmed_now, failed_now;
    int have_before, metrics_busy;
    struct bufferevent *metrics;
    struct event *tick, *sig, *timeout;
};

static int on_entry(void *arg, const char *id, const uint8_t *cert, size_t cl, const uint8_t *key,
                    size_t kl)
{
    struct load *l = arg;
    if (l->ngws == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 1024;
        struct gwc *g = realloc(l->gws, nc * sizeof *g);
        if (g == NULL)
            return -ENOMEM;
        l->gws = g;
        l->cap = nc;
    }
    struct gwc *g = &l->gws[l->ngws++];
    memset(g, 0, sizeof *g);
    str_copy(g->id, sizeof g->id, id);
    snprintf(g->dev, sizeof g->dev, "SB-%s", id);
    g->cert = malloc(cl);
    g->key = malloc(kl);
    if (!g->cert || !g->key)
        return -ENOMEM;
    memcpy(g->cert, cert, cl);
    memcpy(g->key, key, kl);
    g->cert_len = cl;
    g->key_len = kl;
    return 0;
}

/* --- gateway connections ------------------------------------------------------------ */

static void start_one(struct load *l);
static void pump(struct load *l);

static void conn_done(struct conn *c, int ok)
{
    struct load *l = c->l;
    if (l->mode != M_OPEN && c->ready)
        l->lost++; /* a held channel ended */
    else if (ok)
        l->done++;
    else
        l->failed++;
    l->open_now--;
    if (c->ready)
        l->ready_now--;
    bufferevent_free(c->bev);
    free(c);
    pump(l);
}

static void send_open(struct conn *c)
{
    struct gwc *g = &c->l->gws[c->gw];
    uint8_t buf[512];
    char topic[64];
    struct mqtt_connect con;
    struct mqtt_subscribe sub;

    if (c->l->sub == S_HTTP) {
        evbuffer_add_printf(bufferevent_get_output(c->bev),
                            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        return;
    }
    memset(&con, 0, sizeof con);
    con.client_id.ptr = g->dev;
    con.client_id.len = strlen(g->dev);
    con.clean_session = 1;
    con.keepalive = c->l->mode == M_OPEN ? 60 : 0;
    int n = mqtt_encode_connect(buf, sizeof buf, &con);
    snprintf(topic, sizeof topic, "cls/%s/control", g->dev);
    memset(&sub, 0, sizeof sub);
    sub.packet_id = 1;
    sub.count = 1;
    sub.filters[0].ptr = topic;
    sub.filters[0].len = strlen(topic);
    sub.qos[0] = 1;
    int k = mqtt_encode_subscribe(buf + n, sizeof buf - (size_t)n, &sub);
    bufferevent_write(c->bev, buf, (size_t)(n + k));
}

static void publish(struct conn *c, const char *kind, const char *payload, size_t len)
{
    struct gwc *g = &c->l->gws[c->gw];
    char topic[64];
    uint8_t buf[LPC_REPORT_BUF + 128];
    struct mqtt_publish p;
    memset(&p, 0, sizeof p);
    snprintf(topic, sizeof topic, "cls/%s/%s", g->dev, kind);
    p.topic.ptr = topic;
    p.topic.len = strlen(topic);
    p.payload.ptr = (const uint8_t *)payload;
    p.payload.len = len;
    int n = mqtt_encode_publish(buf, sizeof buf, &p);
    if (n > 0)
        bufferevent_write(c->bev, buf, (size_t)n);
}

/* A control from clsmd, answered by the device model. */
static void on_control(struct conn *c, const struct mqtt_publish *p)
{
    struct gwc *g = &c->l->gws[c->gw];
    char ack[LPC_REPORT_BUF], state[LPC_REPORT_BUF];
    unsigned flags = 0;
    int64_t now = time_now_ms();
    uint8_t pa[4];
    if (p->qos == 1) {
        int n = mqtt_encode_puback(pa, sizeof pa, p->packet_id);
        bufferevent_write(c->bev, pa, (size_t)n);
    }
    int n = steuerbox_control(&g->sb, (const char *)p->payload.ptr, p->payload.len, now, ack,
                              sizeof ack, &flags);
    if (n > 0)
        publish(c, "ack", ack, (size_t)n);
    if (flags & SB_CTL_STATE) {
        int k = steuerbox_state(&g->sb, now, state, sizeof state);
        if (k > 0)
            publish(c, "state", state, (size_t)k);
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct load *l = c->l;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (l->sub == S_HTTP) {
        evbuffer_drain(in, evbuffer_get_length(in)); /* the answer; wait for the close */
        return;
    }
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        struct mqtt_packet p;
        const char *why;
        if (avail == 0)
            return;
        const uint8_t *buf = evbuffer_pullup(in, (ev_ssize_t)avail);
        int n = mqtt_decode(buf, avail, NULL, &p, &why);
        if (n == 0)
            return;
        if (n < 0) {
            conn_done(c, 0);
            return;
        }
        if (p.type == MQTT_SUBACK && !c->ready) {
            if (l->mode == M_OPEN) {
                evbuffer_drain(in, (size_t)n);
                conn_done(c, 1);
                return;
            }
            c->ready = 1;
            l->ready_now++;
            steuerbox_link_restored(&l->gws[c->gw].sb, time_now_ms());
            evbuffer_drain(in, (size_t)n);
            pump(l);
            return; /* the rest stays buffered for the next callback */
        } else if (p.type == MQTT_PUBLISH) {
            on_control(c, &p.publish);
        } else if (p.type == MQTT_CONNACK && p.connack.rc != 0) {
            evbuffer_drain(in, (size_t)n);
            conn_done(c, 0);
            return;
        }
        evbuffer_drain(in, (size_t)n);
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        struct load *l = c->l;
        if (l->version[0] == 0) {
            SSL *ssl = bufferevent_openssl_get_ssl(bev);
            int group = (int)SSL_get_negotiated_group(ssl);
            snprintf(l->version, sizeof l->version, "%s %s %s", SSL_get_version(ssl),
                     SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)),
                     group ? OBJ_nid2sn(group) : "?");
        }
        if (l->sub == S_TLS && l->mode == M_OPEN) {
            conn_done(c, 1);
            return;
        }
        if (l->sub == S_TLS) { /* hold the bare TLS connection (reference servers) */
            c->ready = 1;
            l->ready_now++;
            pump(l);
            return;
        }
        send_open(c);
        return;
    }
    while (bufferevent_get_openssl_error(bev))
        ;
    /* With --http the server's close ends a successful exchange. */
    conn_done(c, c->l->sub == S_HTTP && (what & BEV_EVENT_EOF));
}

static void start_one(struct load *l)
{
    struct conn *c = calloc(1, sizeof *c);
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    char err[256];
    struct sockaddr_in from;

    if (c == NULL) {
        fprintf(stderr, "chanload: out of memory\n");
        exit(1);
    }
    c->l = l;
    c->gw = l->next_gw++ % l->ngws;
    l->started++;
    struct gwc *g = &l->gws[c->gw];
    SSL *ssl = SSL_new(l->ctx);
    if (pki_bundle_parse_entry(g->cert, g->cert_len, g->key, g->key_len, &cert, &key, err,
                               sizeof err) != 0 ||
        SSL_use_certificate(ssl, cert) != 1 || SSL_use_PrivateKey(ssl, key) != 1 ||
        SSL_add1_chain_cert(ssl, l->ca) != 1) {
        fprintf(stderr, "chanload: gateway %s: unusable credentials\n", g->id);
        exit(1);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    evutil_socket_t fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    memset(&from, 0, sizeof from);
    from.sin_family = AF_INET;
    from.sin_addr.s_addr =
        htonl((127u << 24) | ((200u + (uint32_t)(c->gw >> 16)) << 16) | (uint32_t)(c->gw & 0xffff));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&from, sizeof from) != 0 ||
        evutil_make_socket_nonblocking(fd) != 0) {
        perror("chanload: socket");
        exit(1);
    }
    c->bev = bufferevent_openssl_socket_new(l->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    l->open_now++;
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&l->to, sizeof l->to) != 0) {
        perror("chanload: connect");
        exit(1);
    }
}

static void api_start(struct load *l);

/* Keep CONC exchanges going (open), or open the next channels with at most
 * CONC handshakes in flight until TARGET are up (idle, devices). */
static void pump(struct load *l)
{
    if (l->stopping || l->in_start)
        return;
    l->in_start = 1;
    if (l->mode == M_OPEN) {
        while (l->open_now < l->conc)
            start_one(l);
    } else {
        while (l->started < l->target && l->open_now - l->ready_now < l->conc)
            start_one(l);
    }
    l->in_start = 0;
    if (l->mode != M_OPEN && !l->settled && l->started == l->target &&
        l->open_now == l->ready_now) {
        l->settled = 1;
        l->end_us = time_mono_us();
        printf("channels open=%d failed=%llu seconds=%.2f per_s=%.0f tls=\"%s\"\n", l->ready_now,
               (unsigned long long)l->failed, (double)(l->end_us - l->start_us) / 1e6,
               (double)l->ready_now * 1e6 / (double)(l->end_us - l->start_us), l->version);
        fflush(stdout);
        if (l->mode == M_DEVICES)
            api_start(l);
    }
}

/* --- commands through the API (devices mode) ----------------------------------------- */

static void finish(struct load *l);

/* One complete HTTP/1.1 answer at the front of 'in': its status, and its
 * body copied into 'body' (truncated). Returns the bytes it spans, or 0 when
 * it is not complete yet. Answers here always carry Content-Length. */
static size_t http_answer(struct evbuffer *in, int *status, char *body, size_t blen)
{
    char head[2048];
    size_t n = evbuffer_get_length(in);
    struct evbuffer_ptr e = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (e.pos < 0)
        return 0;
    size_t hl = (size_t)e.pos + 4;
    if (hl >= sizeof head) {
        fprintf(stderr, "chanload: answer head over %zu bytes\n", sizeof head);
        exit(1);
    }
    evbuffer_copyout(in, head, hl);
    head[hl] = 0;
    long long cl = 0;
    const char *h = strstr(head, "\r\nContent-Length:");
    if (h) {
        char num[24];
        size_t k = 0;
        for (h += 17; *h == ' '; h++)
            ;
        while (k < sizeof num - 1 && h[k] >= '0' && h[k] <= '9') {
            num[k] = h[k];
            k++;
        }
        num[k] = '\0';
        if (parse_ll(num, 0, 1LL << 40, &cl) != 0)
            cl = -1;
    }
    if (cl < 0 || hl + (size_t)cl > n)
        return 0;
    *status = 0;
    for (size_t k = 9; k < 12 && k < hl && head[k] >= '0' && head[k] <= '9'; k++)
        *status = *status * 10 + (head[k] - '0');
    size_t k = (size_t)cl < blen - 1 ? (size_t)cl : blen - 1;
    const char *all = (const char *)evbuffer_pullup(in, (ev_ssize_t)(hl + k));
    memcpy(body, all + hl, k);
    body[k] = 0;
    return hl + (size_t)cl;
}

static void api_submit(struct load *l, struct bufferevent *bev)
{
    if (l->submitted >= l->submit_total)
        return;
    long k = l->submitted++;
    struct gwc *g = &l->gws[(size_t)k % l->ngws];
    /* Alternate the level per round over the devices, so every command
     * changes the device's state and its confirmation reads a new state. */
    const char *level = (k / (long)l->ngws) % 2 ? "on" : "dim";
    char body[128];
    int bl =
        snprintf(body, sizeof body, "{\"control\":{\"type\":\"switch\",\"level\":\"%s\"}}", level);
    evbuffer_add_printf(bufferevent_get_output(bev),
                        "POST /v1/devices/%s/commands HTTP/1.1\r\nHost: clsm\r\n"
                        "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %d\r\n\r\n%s",
                        g->dev, l->token, bl, body);
}

static void api_read_cb(struct bufferevent *bev, void *arg)
{
    struct load *l = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    int status;
    char body[256];
    size_t n;
    while ((n = http_answer(in, &status, body, sizeof body)) > 0) {
        evbuffer_drain(in, n);
        l->answered++;
        if (status != 202) {
            if (l->refused++ < 3)
                fprintf(stderr, "chanload: command refused: %d %s\n", status, body);
        }
        api_submit(l, bev);
    }
}

static void api_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct load *l = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED)
        return;
    fprintf(stderr, "chanload: the API connection closed\n");
    l->stopping = 1;
    event_base_loopbreak(l->base);
}

static struct bufferevent *api_connect(struct load *l)
{
    struct bufferevent *b = bufferevent_socket_new(l->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (b == NULL || bufferevent_socket_connect(b, (struct sockaddr *)&l->api, sizeof l->api)) {
        perror("chanload: API");
        exit(1);
    }
    bufferevent_enable(b, EV_READ | EV_WRITE);
    return b;
}

/* The value of the sample 'name' in a Prometheus text body, or -1. */
static long long sample(const char *text, const char *name)
{
    const char *p = text;
    size_t n = strlen(name);
    while ((p = strstr(p, name)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
        p += n;
    }
    return -1;
}

static void metrics_read_cb(struct bufferevent *bev, void *arg)
{
    struct load *l = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    static char body[1 << 16];
    int status;
    size_t n = http_answer(in, &status, body, sizeof body);
    if (n == 0)
        return;
    evbuffer_drain(in, n);
    l->metrics_busy = 0;
    long long c = sample(body, "clsm_command_transitions_total{state=\"confirmed\"}");
    long long f = sample(body, "clsm_command_transitions_total{state=\"failed\"}");
    if (status != 200 || c < 0 || f < 0) {
        fprintf(stderr, "chanload: /metrics has no command counters (status %d)\n", status);
        exit(1);
    }
    if (!l->have_before) {
        l->have_before = 1;
        l->confirmed_before = c;
        l->failed_before = f;
        l->start_us = time_mono_us();
        for (long w = 0; w < l->window; w++) {
            struct bufferevent *b = api_connect(l);
            bufferevent_setcb(b, api_read_cb, NULL, api_event_cb, l);
            api_submit(l, b);
        }
        return;
    }
    l->confirmed_now = c - l->confirmed_before;
    l->failed_now = f - l->failed_before;
    if (l->confirmed_now + l->failed_now >= l->submit_total - l->refused &&
        l->answered == l->submit_total)
        finish(l);
}

static void metrics_poll(evutil_socket_t fd, short what, void *arg)
{
    struct load *l = arg;
    (void)fd;
    (void)what;
    if (l->metrics_busy || l->stopping)
        return;
    l->metrics_busy = 1;
    evbuffer_add_printf(bufferevent_get_output(l->metrics),
                        "GET /metrics HTTP/1.1\r\nHost: clsm\r\n\r\n");
}

static void api_start(struct load *l)
{
    struct timeval tv = {0, 20000};
    l->metrics = api_connect(l);
    bufferevent_setcb(l->metrics, metrics_read_cb, NULL, api_event_cb, l);
    l->tick = event_new(l->base, -1, EV_PERSIST, metrics_poll, l);
    event_add(l->tick, &tv);
    metrics_poll(-1, 0, l);
}

static void finish(struct load *l)
{
    l->end_us = time_mono_us();
    double sec = (double)(l->end_us - l->start_us) / 1e6;
    printf("commands submitted=%ld refused=%ld confirmed=%lld failed=%lld seconds=%.2f "
           "confirmed_per_s=%.0f lost_channels=%llu\n",
           l->submitted, l->refused, l->confirmed_now, l->failed_now, sec,
           (double)l->confirmed_now / sec, (unsigned long long)l->lost);
    fflush(stdout);
    l->stopping = 1;
    event_base_loopbreak(l->base);
}

/* --- main ------------------------------------------------------------------------------ */

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct load *l = arg;
    (void)fd;
    (void)what;
    l->stopping = 1;
    event_base_loopbreak(l->base);
}

static int parse_addr(const char *s, struct sockaddr_in *out)
{
    struct hostport hp;
    if (hostport_parse(s, &hp) != 0)
        return -1;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)hp.port);
    return inet_pton(AF_INET, hp.host, &out->sin_addr) == 1 ? 0 : -1;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: chanload open HOST:PORT PKI [-c CONC] [-t SECONDS] [--http | --tls-only]\n"
            "       chanload idle HOST:PORT PKI -n N [-c CONC] [-t SECONDS] [--tls-only]\n"
            "       chanload devices HOST:PORT PKI -n N --api HOST:PORT --token T -m M "
            "[-w W] [-c CONC]\n");
    exit(2);
}

/* A non-negative integer option up to 'max', or the usage. */
static long long number(const char *v, long long max)
{
    long long x;
    if (parse_ll(v, 0, max, &x) != 0)
        usage();
    return x;
}

int main(int argc, char **argv)
{
    static struct load l;
    char err[PKI_ERRLEN], path[1024];
    struct tls_profile prof;

    if (argc < 4)
        usage();
    if (strcmp(argv[1], "open") == 0)
        l.mode = M_OPEN;
    else if (strcmp(argv[1], "idle") == 0)
        l.mode = M_IDLE;
    else if (strcmp(argv[1], "devices") == 0)
        l.mode = M_DEVICES;
    else
        usage();
    if (parse_addr(argv[2], &l.to) != 0)
        usage();
    const char *pki = argv[3];
    l.conc = 32;
    l.window = 16;
    for (int i = 4; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--http") == 0)
            l.sub = S_HTTP;
        else if (strcmp(a, "--tls-only") == 0)
            l.sub = S_TLS;
        else if (v == NULL)
            usage();
        else if (strcmp(a, "-c") == 0)
            l.conc = (int)number(v, 1000000), i++;
        else if (strcmp(a, "-t") == 0)
            l.seconds = (int)number(v, 86400), i++;
        else if (strcmp(a, "-n") == 0)
            l.target = (int)number(v, 100000000), i++;
        else if (strcmp(a, "-m") == 0)
            l.submit_total = (long)number(v, 1000000000), i++;
        else if (strcmp(a, "-w") == 0)
            l.window = (long)number(v, 1000000), i++;
        else if (strcmp(a, "--token") == 0)
            str_copy(l.token, sizeof l.token, v), i++;
        else if (strcmp(a, "--api") == 0) {
            if (parse_addr(v, &l.api) != 0)
                usage();
            i++;
        } else
            usage();
    }
    if (l.conc < 1 || l.window < 1 || (l.mode != M_OPEN && l.target < 1) ||
        (l.mode == M_DEVICES && (l.submit_total < 1 || l.token[0] == 0 || l.api.sin_port == 0)))
        usage();

    snprintf(path, sizeof path, "%s/smgw/%s", pki, PKI_BUNDLE_NAME);
    if (pki_bundle_read(path, on_entry, &l, err, sizeof err) != 0) {
        fprintf(stderr, "chanload: %s\n", err);
        return 1;
    }
    if (l.target > 0 && (size_t)l.target < l.ngws)
        l.ngws = (size_t)l.target; /* the first N gateways only */
    if (l.mode != M_OPEN && (size_t)l.target > l.ngws) {
        fprintf(stderr, "chanload: the bundle holds %zu gateways, not %d\n", l.ngws, l.target);
        return 1;
    }
    for (size_t i = 0; i < l.ngws; i++) {
        /* The kinds fleet.py gives the installations, in the same order. */
        static const enum steuerbox_kind kinds[] = {SB_HEAT_PUMP, SB_WALLBOX, SB_PV};
        static const uint32_t rated[] = {9000, 11000, 8000};
        if (steuerbox_init(&l.gws[i].sb, l.gws[i].dev, kinds[i % 3], rated[i % 3], i + 1, 4200,
                           7200) != 0) {
            fprintf(stderr, "chanload: %s: not a device id\n", l.gws[i].dev);
            return 1;
        }
    }
    snprintf(path, sizeof path, "%s/smgw-ca.crt", pki);
    if (pki_load_cert(path, &l.ca, err, sizeof err) != 0) {
        fprintf(stderr, "chanload: %s\n", err);
        return 1;
    }
    snprintf(path, sizeof path, "%s/emt-ca.crt", pki);
    tls_profile_default(&prof);
    l.ctx = tls_client_ctx(&prof, NULL, NULL, path, err, sizeof err);
    if (l.ctx == NULL) {
        fprintf(stderr, "chanload: %s\n", err);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    l.base = event_base_new();
    l.sig = evsignal_new(l.base, SIGTERM, on_stop, &l);
    event_add(l.sig, NULL);
    if (l.seconds > 0) {
        struct timeval tv = {l.seconds, 0};
        l.timeout = evtimer_new(l.base, on_stop, &l);
        event_add(l.timeout, &tv);
    }
    l.start_us = time_mono_us();
    pump(&l);
    event_base_dispatch(l.base);
    if (l.mode == M_OPEN) {
        double sec = (double)(time_mono_us() - l.start_us) / 1e6;
        printf("exchanges done=%llu failed=%llu seconds=%.2f per_s=%.0f tls=\"%s\"\n",
               (unsigned long long)l.done, (unsigned long long)l.failed, sec, (double)l.done / sec,
               l.version);
    } else if (l.mode == M_IDLE) {
        printf("held open=%d lost=%llu\n", l.ready_now, (unsigned long long)l.lost);
    }
    return l.mode == M_DEVICES && l.confirmed_now + l.refused < l.submit_total ? 1 : 0;
}
