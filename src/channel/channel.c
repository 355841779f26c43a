/*
 * channel.c - the TLS listener for gateways, the channel state machine and
 * the table of open channels by device; see channel.h.
 */
#include "channel/channel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "audit/audit.h"
#include "common/log.h"
#include "driver/driver.h"
#include "registry/registry.h"
#include "store/store.h"

#define MAX_LISTENERS         4
#define CLOSE_WRITE_TIMEOUT_S 10

/* Why a channel was refused; counted per reason (the audit record carries
 * the detail). */
enum refusal {
    R_TLS,
    R_HANDSHAKE_TIMEOUT,
    R_UNKNOWN_GATEWAY,
    R_BAD_NAME,
    R_FINGERPRINT,
    R_IDENTIFY_TIMEOUT,
    R_UNKNOWN_DEVICE,
    R_NOT_BEHIND,
    R_WRONG_DRIVER,
    R_PROTOCOL,
    R_CAPACITY,
    R_OTHER,
    NREASONS
};

struct channel {
    struct channel_mgr *m;
    uint64_t id;
    enum channel_state state;
    struct bufferevent *bev;
    struct event *timer;
    const struct driver_ops *drv;
    void *drv_state;
    int keepalive_s;
    int64_t created_ms, opened_ms, last_rx_ms, last_tx_ms;
    uint64_t heartbeats;
    uint64_t rx_bytes, tx_bytes;
    char peer[48];
    char smgw[16];
    char device[97];
    char close_reason[96];
    struct channel *prev, *next;         /* every channel, in id order */
    struct channel *lru_prev, *lru_next; /* open channels, most recently heard first */
    struct channel *hnext;               /* device table chain */
};

struct channel_mgr {
    struct event_base *base;
    STACK_OF(X509) * issuers; /* gateway certificates must come from one of these */
    struct store *store;
    struct audit *audit;
    SSL_CTX *tls;
    struct channel_limits lim;
    struct channel_listener l;
    struct evconnlistener *listeners[MAX_LISTENERS];
    int nlisteners;
    struct event *resume;
    struct event *reaper;
    struct event *heartbeat;
    struct channel *head, *tail; /* all channels */
    struct channel *lru_head, *lru_tail;
    struct channel *dead;
    struct channel **table; /* open channels by device */
    size_t table_size, nopen;
    int counts[CH_CLOSED + 1];
    uint64_t next_id;
    uint64_t refused[NREASONS];
    int shutting_down;
    void (*done)(void *arg);
    void *done_arg;
};

static const char *const state_names[] = {"handshake", "identify", "open", "closing", "closed"};

static const char *const reason_names[NREASONS] = {
    "tls_handshake", "handshake_timeout", "unknown_gateway", "bad_certificate_name",
    "fingerprint",   "identify_timeout",  "unknown_device",  "device_not_behind_gateway",
    "wrong_driver",  "protocol_error",    "capacity",        "other"};

const char *channel_state_name(enum channel_state s)
{
    return state_names[s];
}

int channel_state_parse(const char *s)
{
    for (int i = 0; i <= CH_CLOSED; i++)
        if (strcmp(s, state_names[i]) == 0)
            return i;
    return -1;
}

/* --- the device table ----------------------------------------------------------- */

static size_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

static int table_grow(struct channel_mgr *m)
{
    size_t n = m->table_size ? m->table_size * 2 : 1024;
    struct channel **t = calloc(n, sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < m->table_size; i++) {
        struct channel *c = m->table[i], *next;
        for (; c; c = next) {
            next = c->hnext;
            size_t b = hash_str(c->device) & (n - 1);
            c->hnext = t[b];
            t[b] = c;
        }
    }
    free(m->table);
    m->table = t;
    m->table_size = n;
    return 0;
}

struct channel *channel_mgr_find(struct channel_mgr *m, const char *device)
{
    if (m->table_size == 0)
        return NULL;
    for (struct channel *c = m->table[hash_str(device) & (m->table_size - 1)]; c; c = c->hnext)
        if (strcmp(c->device, device) == 0)
            return c;
    return NULL;
}

static void table_remove(struct channel_mgr *m, struct channel *ch)
{
    if (m->table_size == 0)
        return;
    struct channel **pp = &m->table[hash_str(ch->device) & (m->table_size - 1)];
    for (; *pp; pp = &(*pp)->hnext) {
        if (*pp == ch) {
            *pp = ch->hnext;
            ch->hnext = NULL;
            m->nopen--;
            return;
        }
    }
}

static int table_add(struct channel_mgr *m, struct channel *ch)
{
    if (m->nopen + 1 > m->table_size / 2 && table_grow(m) != 0)
        return -ENOMEM;
    size_t b = hash_str(ch->device) & (m->table_size - 1);
    ch->hnext = m->table[b];
    m->table[b] = ch;
    m->nopen++;
    return 0;
}

static void lru_unlink(struct channel_mgr *m, struct channel *ch)
{
    if (ch->lru_prev)
        ch->lru_prev->lru_next = ch->lru_next;
    else if (m->lru_head == ch)
        m->lru_head = ch->lru_next;
    else
        return; /* not linked */
    if (ch->lru_next)
        ch->lru_next->lru_prev = ch->lru_prev;
    else
        m->lru_tail = ch->lru_prev;
    ch->lru_prev = ch->lru_next = NULL;
}

static void lru_touch(struct channel_mgr *m, struct channel *ch)
{
    lru_unlink(m, ch);
    ch->lru_next = m->lru_head;
    if (m->lru_head)
        m->lru_head->lru_prev = ch;
    m->lru_head = ch;
    if (m->lru_tail == NULL)
        m->lru_tail = ch;
}

/* --- records ---------------------------------------------------------------------- */

static void record(struct channel *ch, const char *kind, enum refusal code, const char *reason)
{
    struct channel_mgr *m = ch->m;
    char subject[128];
    snprintf(subject, sizeof subject, ch->smgw[0] ? "smgw:%s" : "peer:%s",
             ch->smgw[0] ? ch->smgw : ch->peer);
    json_t *p = json_pack("{s:I, s:s}", "channel", (json_int_t)ch->id, "peer", ch->peer);
    if (ch->smgw[0])
        json_object_set_new(p, "smgw", json_string(ch->smgw));
    if (ch->device[0])
        json_object_set_new(p, "device", json_string(ch->device));
    if (reason) {
        json_object_set_new(p, "reason", json_string(reason));
        json_object_set_new(p, "code", json_string(reason_names[code]));
    }
    if (m->audit)
        audit_append(m->audit, kind, subject, "system", p);
    else
        json_decref(p);
}

/* Refuse a channel that never opened: count, log, record, close. */
static void refuse(struct channel *ch, enum refusal code, const char *reason)
{
    ch->m->refused[code]++;
    LOG(LOG_WARN, "channel refused", LOG_I("channel", (long long)ch->id), LOG_S("peer", ch->peer),
        LOG_S("smgw", ch->smgw), LOG_S("device", ch->device), LOG_S("reason", reason));
    record(ch, "channel.refused", code, reason);
    channel_set_state(ch, CH_CLOSING, reason);
}

/* --- the state machine --------------------------------------------------------------- */

static void arm(struct channel *ch, int seconds)
{
    struct timeval tv = {seconds, 0};
    event_add(ch->timer, &tv);
}

static int allowed(enum channel_state from, enum channel_state to)
{
    switch (to) {
    case CH_IDENTIFY:
        return from == CH_HANDSHAKE;
    case CH_OPEN:
        return from == CH_IDENTIFY;
    case CH_CLOSING:
        return from != CH_CLOSING && from != CH_CLOSED;
    case CH_CLOSED:
        return from != CH_CLOSED;
    default:
        return 0;
    }
}

static void reap_later(struct channel *ch);

void channel_set_state(struct channel *ch, enum channel_state to, const char *reason)
{
    struct channel_mgr *m = ch->m;
    enum channel_state from = ch->state;

    if (!allowed(from, to)) {
        LOG(LOG_ERROR, "channel state change refused", LOG_I("channel", (long long)ch->id),
            LOG_S("from", state_names[from]), LOG_S("to", state_names[to]));
        return;
    }
    m->counts[from]--;
    m->counts[to]++;
    ch->state = to;
    switch (to) {
    case CH_IDENTIFY:
        arm(ch, m->lim.identify_timeout_s);
        break;
    case CH_OPEN:
        ch->opened_ms = ch->last_rx_ms = ch->last_tx_ms = time_now_ms();
        lru_touch(m, ch);
        arm(ch, m->lim.idle_timeout_s);
        LOG(LOG_INFO, "channel open", LOG_I("channel", (long long)ch->id), LOG_S("smgw", ch->smgw),
            LOG_S("device", ch->device), LOG_S("peer", ch->peer));
        record(ch, "channel.opened", R_OTHER, NULL);
        if (m->l.opened)
            m->l.opened(m->l.arg, ch, ch->device);
        break;
    case CH_CLOSING:
        snprintf(ch->close_reason, sizeof ch->close_reason, "%s", reason ? reason : "closed");
        event_del(ch->timer);
        if (from == CH_OPEN) {
            table_remove(m, ch);
            lru_unlink(m, ch);
            LOG(LOG_INFO, "channel closed", LOG_I("channel", (long long)ch->id),
                LOG_S("smgw", ch->smgw), LOG_S("device", ch->device),
                LOG_S("reason", ch->close_reason));
            record(ch, "channel.closed", R_OTHER, ch->close_reason);
            if (m->l.closed)
                m->l.closed(m->l.arg, ch, ch->device, ch->close_reason);
        }
        bufferevent_disable(ch->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(ch->bev)) == 0)
            channel_set_state(ch, CH_CLOSED, NULL);
        break;
    case CH_CLOSED:
        reap_later(ch);
        break;
    default:
        break;
    }
}

/* --- the connection ------------------------------------------------------------------- */

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
    struct channel_mgr *m = arg;
    (void)fd;
    (void)what;
    while (m->dead) {
        struct channel *ch = m->dead;
        m->dead = ch->next;
        if (ch->drv && ch->drv->detach)
            ch->drv->detach(ch, ch->drv_state);
        SSL *ssl = bufferevent_openssl_get_ssl(ch->bev);
        if (ssl)
            SSL_shutdown(ssl); /* close_notify, best effort */
        bufferevent_free(ch->bev);
        event_free(ch->timer);
        free(ch);
    }
    if (m->shutting_down && m->head == NULL && m->done) {
        void (*done)(void *) = m->done;
        m->done = NULL;
        done(m->done_arg);
    }
}

static void reap_later(struct channel *ch)
{
    struct channel_mgr *m = ch->m;
    bufferevent_disable(ch->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(ch->bev, NULL, NULL, NULL, NULL);
    event_del(ch->timer);
    if (ch->prev)
        ch->prev->next = ch->next;
    else
        m->head = ch->next;
    if (ch->next)
        ch->next->prev = ch->prev;
    else
        m->tail = ch->prev;
    m->counts[CH_CLOSED]--;
    ch->prev = NULL;
    ch->next = m->dead;
    m->dead = ch;
    event_active(m->reaper, EV_TIMEOUT, 0);
}

void channel_close(struct channel *ch, const char *reason)
{
    /* A channel closed before it opened was refused: one mechanism counts,
     * logs and records every refusal. */
    if (ch->state == CH_IDENTIFY)
        refuse(ch, R_PROTOCOL, reason);
    else if (ch->state != CH_CLOSING && ch->state != CH_CLOSED)
        channel_set_state(ch, CH_CLOSING, reason);
}

int channel_send(struct channel *ch, const void *buf, size_t len)
{
    struct evbuffer *out;
    if (ch->state != CH_OPEN && ch->state != CH_IDENTIFY)
        return -EPIPE;
    if (len == 0)
        return 0;
    out = bufferevent_get_output(ch->bev);
    if (evbuffer_get_length(out) + len > ch->m->lim.max_output)
        return -ENOBUFS;
    if (evbuffer_add(out, buf, len) != 0)
        return -ENOMEM;
    ch->tx_bytes += len;
    ch->last_tx_ms = time_now_ms();
    return 0;
}

void channel_alive(struct channel *ch, int keepalive_s)
{
    if (keepalive_s > 0)
        ch->keepalive_s = keepalive_s;
    ch->last_rx_ms = time_now_ms();
    if (ch->state != CH_OPEN)
        return;
    lru_touch(ch->m, ch);
    /* MQTT 3.1.1 §3.1.2.10: one and a half keepalive periods. */
    int idle =
        ch->keepalive_s > 0 ? ch->keepalive_s + ch->keepalive_s / 2 + 1 : ch->m->lim.idle_timeout_s;
    arm(ch, idle);
}

static int cert_common_name(X509 *cert, char *buf, size_t len)
{
    X509_NAME *name = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0)
        return -EINVAL; /* none, or more than one */
    ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    int n = ASN1_STRING_length(s);
    if (n <= 0 || (size_t)n >= len || memchr(ASN1_STRING_get0_data(s), '\0', (size_t)n))
        return -EINVAL;
    memcpy(buf, ASN1_STRING_get0_data(s), (size_t)n);
    buf[n] = '\0';
    return 0;
}

/* The TLS verification accepts whatever chains to a trusted certificate;
 * if that includes the root, a leaf of another sub-CA (an EMT's, say) would
 * pass. Only the SMGW sub-CA issues gateways: the certificate above the leaf
 * in the chain the handshake verified must be one of ours. The signatures
 * along that chain are already checked, so comparing certificates suffices
 * (no second signature verification per handshake). */
static int issued_by_gateway_ca(const struct channel_mgr *m, SSL *ssl)
{
    if (m->issuers == NULL || sk_X509_num(m->issuers) == 0)
        return 1;
    STACK_OF(X509) *chain = SSL_get0_verified_chain(ssl);
    if (chain == NULL || sk_X509_num(chain) < 2)
        return 0;
    X509 *issuer = sk_X509_value(chain, 1);
    for (int i = 0; i < sk_X509_num(m->issuers); i++)
        if (X509_cmp(sk_X509_value(m->issuers, i), issuer) == 0)
            return 1;
    return 0;
}

/* TLS is up: the gateway is who its certificate says, if the registry
 * knows it (and its pinned fingerprint, when one is set, matches). */
static void identify_gateway(struct channel *ch)
{
    SSL *ssl = bufferevent_openssl_get_ssl(ch->bev);
    X509 *cert = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
    struct store_scope all = {SCOPE_ALL, NULL, NULL};
    json_t *gw = NULL;
    char cn[64];
    int rc;

    if (cert == NULL || cert_common_name(cert, cn, sizeof cn) != 0 || !reg_is_smgw_id(cn)) {
        X509_free(cert);
        refuse(ch, R_BAD_NAME, "the certificate does not name a gateway id");
        return;
    }
    if (!issued_by_gateway_ca(ch->m, ssl)) {
        X509_free(cert);
        refuse(ch, R_BAD_NAME, "the certificate was not issued by the SMGW sub-CA");
        return;
    }
    str_copy(ch->smgw, sizeof ch->smgw, cn);
    rc = store_reg_get(ch->m->store, &reg_kinds[REG_SMGW], cn, &all, &gw);
    if (rc != 0) {
        X509_free(cert);
        refuse(ch, rc == -ENOENT ? R_UNKNOWN_GATEWAY : R_OTHER,
               rc == -ENOENT ? "gateway not in the registry" : "registry lookup failed");
        return;
    }
    const char *pin = json_string_value(json_object_get(gw, "cert_fingerprint"));
    if (pin) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        char hex[2 * EVP_MAX_MD_SIZE + 1];
        X509_digest(cert, EVP_sha256(), md, &mdlen);
        hex_encode(md, mdlen, hex);
        if (strcmp(hex, pin) != 0) {
            json_decref(gw);
            X509_free(cert);
            refuse(ch, R_FINGERPRINT, "certificate fingerprint differs from the registry");
            return;
        }
    }
    json_decref(gw);
    X509_free(cert);
    ch->drv = &driver_lpc_mqtt; /* one listener per device protocol */
    if (ch->drv->attach(ch, &ch->drv_state) != 0) {
        ch->drv = NULL;
        refuse(ch, R_OTHER, "out of memory");
        return;
    }
    channel_set_state(ch, CH_IDENTIFY, NULL);
    /* Bytes that arrived with the end of the handshake. */
    if (evbuffer_get_length(bufferevent_get_input(ch->bev)) > 0)
        ch->drv->input(ch, ch->drv_state, bufferevent_get_input(ch->bev));
}

int channel_identified(struct channel *ch, const char *device, const void *refusal, size_t len)
{
    struct store_scope all = {SCOPE_ALL, NULL, NULL};
    json_t *dev = NULL;
    int rc;

    str_copy(ch->device, sizeof ch->device, device);
    rc = reg_id_valid(&reg_kinds[REG_DEVICE], device)
             ? store_reg_get(ch->m->store, &reg_kinds[REG_DEVICE], device, &all, &dev)
             : -ENOENT;
    if (rc != 0) {
        channel_send(ch, refusal, len);
        refuse(ch, rc == -ENOENT ? R_UNKNOWN_DEVICE : R_OTHER,
               rc == -ENOENT ? "device not in the registry" : "registry lookup failed");
        return -EPERM;
    }
    const char *smgw = json_string_value(json_object_get(dev, "smgw"));
    const char *drv = json_string_value(json_object_get(dev, "driver"));
    int behind = smgw && strcmp(smgw, ch->smgw) == 0;
    int same_driver = drv && strcmp(drv, ch->drv->name) == 0;
    json_decref(dev);
    if (!behind || !same_driver) {
        channel_send(ch, refusal, len);
        refuse(ch, behind ? R_WRONG_DRIVER : R_NOT_BEHIND,
               behind ? "device uses another driver" : "device not behind this gateway");
        return -EPERM;
    }
    return 0;
}

void channel_ready(struct channel *ch)
{
    if (ch->state != CH_IDENTIFY || ch->device[0] == '\0')
        return;
    struct channel *old = channel_mgr_find(ch->m, ch->device);
    if (old)
        channel_close(old, "replaced by a new channel");
    if (table_add(ch->m, ch) != 0) {
        refuse(ch, R_OTHER, "out of memory");
        return;
    }
    channel_set_state(ch, CH_OPEN, NULL);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct channel *ch = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    ch->rx_bytes += evbuffer_get_length(in);
    if (ch->state == CH_IDENTIFY || ch->state == CH_OPEN)
        ch->drv->input(ch, ch->drv_state, in);
    else
        evbuffer_drain(in, evbuffer_get_length(in));
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct channel *ch = arg;
    (void)bev;
    if (ch->state == CH_CLOSING)
        channel_set_state(ch, CH_CLOSED, NULL);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct channel *ch = arg;
    char msg[200];
    unsigned long e;

    if (what & BEV_EVENT_CONNECTED) {
        if (ch->state == CH_HANDSHAKE)
            identify_gateway(ch);
        return;
    }
    if ((e = bufferevent_get_openssl_error(bev)) != 0) {
        const char *r = ERR_reason_error_string(e);
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
        if (vr != X509_V_OK) /* say which: expired, unknown issuer, ... */
            snprintf(msg, sizeof msg, "TLS: %s: %s", r ? r : "error",
                     X509_verify_cert_error_string(vr));
        else
            snprintf(msg, sizeof msg, "TLS: %s", r ? r : "error");
        /* Drain the rest of the queue, so it does not leak into the next. */
        while (bufferevent_get_openssl_error(bev))
            ;
    } else if (what & BEV_EVENT_TIMEOUT) {
        snprintf(msg, sizeof msg, "write timeout");
    } else {
        snprintf(msg, sizeof msg, "%s",
                 ch->state == CH_HANDSHAKE ? "connection closed during the TLS handshake"
                                           : "connection closed by the gateway");
    }
    if (ch->state == CH_HANDSHAKE)
        refuse(ch, R_TLS, msg);
    else if (ch->state == CH_IDENTIFY)
        refuse(ch, R_PROTOCOL, msg);
    else if (ch->state == CH_OPEN)
        channel_set_state(ch, CH_CLOSING, msg);
    /* The connection is gone: nothing queued can be written any more. */
    if (ch->state == CH_CLOSING)
        channel_set_state(ch, CH_CLOSED, NULL);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct channel *ch = arg;
    (void)fd;
    (void)what;
    switch (ch->state) {
    case CH_HANDSHAKE:
        refuse(ch, R_HANDSHAKE_TIMEOUT, "TLS handshake not finished in time");
        break;
    case CH_IDENTIFY:
        refuse(ch, R_IDENTIFY_TIMEOUT, "device did not identify itself in time");
        break;
    case CH_OPEN:
        channel_close(ch, "idle: nothing heard from the device");
        break;
    default:
        break;
    }
}

/* Over the limit: make room by closing the open channel heard from least
 * recently; the dispatcher asks for it again if it still needs it. */
static int make_room(struct channel_mgr *m)
{
    int live = m->counts[CH_HANDSHAKE] + m->counts[CH_IDENTIFY] + m->counts[CH_OPEN];
    if (live < m->lim.max_channels)
        return 0;
    if (m->lru_tail == NULL)
        return -EBUSY;
    channel_close(m->lru_tail, "closed to make room for another channel");
    return 0;
}

static void peer_name(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
        snprintf(buf, len, "%s:%d", host, ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
        snprintf(buf, len, "[%s]:%d", host, ntohs(s6->sin6_port));
    } else {
        snprintf(buf, len, "unknown");
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct channel_mgr *m = arg;
    struct channel *ch;
    SSL *ssl;
    (void)l;
    (void)salen;

    if (m->shutting_down || make_room(m) != 0) {
        m->refused[R_CAPACITY]++;
        evutil_closesocket(fd);
        return;
    }
    ch = calloc(1, sizeof *ch);
    ssl = ch ? SSL_new(m->tls) : NULL;
    if (ssl == NULL) {
        free(ch);
        evutil_closesocket(fd);
        return;
    }
    ch->m = m;
    ch->id = ++m->next_id;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ch->created_ms = time_now_ms();
    peer_name(sa, ch->peer, sizeof ch->peer);
    ch->bev = bufferevent_openssl_socket_new(m->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
    ch->timer = evtimer_new(m->base, timer_cb, ch);
    if (ch->bev == NULL || ch->timer == NULL) {
        if (ch->bev)
            bufferevent_free(ch->bev);
        else {
            SSL_free(ssl);
            evutil_closesocket(fd);
        }
        if (ch->timer)
            event_free(ch->timer);
        free(ch);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(ch->bev, 1);
    struct timeval wt = {CLOSE_WRITE_TIMEOUT_S, 0};
    bufferevent_set_timeouts(ch->bev, NULL, &wt);
    bufferevent_setcb(ch->bev, read_cb, write_cb, event_cb, ch);
    bufferevent_enable(ch->bev, EV_READ | EV_WRITE);
    ch->prev = m->tail;
    if (m->tail)
        m->tail->next = ch;
    else
        m->head = ch;
    m->tail = ch;
    ch->state = CH_HANDSHAKE;
    m->counts[CH_HANDSHAKE]++;
    arm(ch, m->lim.handshake_timeout_s);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct channel_mgr *m = arg;
    (void)fd;
    (void)what;
    for (int i = 0; i < m->nlisteners; i++)
        evconnlistener_enable(m->listeners[i]);
}

/* Out of descriptors: pause accepting for a second instead of spinning. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct channel_mgr *m = arg;
    int err = EVUTIL_SOCKET_ERROR();
    (void)l;
    LOG(LOG_WARN, "channel accept failed", LOG_S("error", evutil_socket_error_to_string(err)),
        LOG_I("channels", m->counts[CH_HANDSHAKE] + m->counts[CH_IDENTIFY] + m->counts[CH_OPEN]));
    struct timeval tv = {1, 0};
    for (int i = 0; i < m->nlisteners; i++)
        evconnlistener_disable(m->listeners[i]);
    event_add(m->resume, &tv);
}

/* Heartbeats keep a device out of its failsafe while its channel is open
 * (DESIGN.md §4): every open channel quiet towards the device for
 * heartbeat_s gets one. The sweep runs every few seconds over the open
 * channels. */
static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    struct channel_mgr *m = arg;
    int64_t now = time_now_ms();
    json_t *hb = json_pack("{s:s}", "type", "heartbeat");
    (void)fd;
    (void)what;
    for (struct channel *ch = m->lru_head; ch && hb; ch = ch->lru_next) {
        if (ch->state != CH_OPEN || now - ch->last_tx_ms < m->lim.heartbeat_s * 1000LL)
            continue;
        char id[48];
        snprintf(id, sizeof id, "hb-%llu-%llu", (unsigned long long)ch->id,
                 (unsigned long long)++ch->heartbeats);
        if (ch->drv->send(ch, ch->drv_state, id, hb) != 0)
            ch->last_tx_ms = now; /* full or closing: try at the next period */
    }
    json_decref(hb);
}

/* --- the manager ----------------------------------------------------------------------- */

/* The sub-CAs among the trusted certificates (those not self-signed): the
 * issuers gateway certificates must come from. */
static STACK_OF(X509) * issuing_cas(SSL_CTX *tls)
{
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(tls));
    STACK_OF(X509) *out = sk_X509_new_null();
    for (int i = 0; out && i < sk_X509_OBJECT_num(objs); i++) {
        X509 *c = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        if (c && !(X509_get_extension_flags(c) & EXFLAG_SS) && X509_up_ref(c))
            sk_X509_push(out, c);
    }
    return out;
}

struct channel_mgr *channel_mgr_new(struct event_base *base, struct store *store,
                                    struct audit *audit, SSL_CTX *tls,
                                    const struct channel_limits *lim,
                                    const struct channel_listener *listener)
{
    struct channel_mgr *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->issuers = issuing_cas(tls);
    m->base = base;
    m->store = store;
    m->audit = audit;
    m->lim = *lim;
    if (listener)
        m->l = *listener;
    SSL_CTX_up_ref(tls);
    m->tls = tls;
    m->resume = evtimer_new(base, resume_cb, m);
    m->reaper = event_new(base, -1, 0, reaper_cb, m);
    m->heartbeat = event_new(base, -1, EV_PERSIST, heartbeat_cb, m);
    if (m->resume == NULL || m->reaper == NULL || m->heartbeat == NULL || table_grow(m) != 0) {
        channel_mgr_free(m);
        return NULL;
    }
    if (m->lim.heartbeat_s > 0) {
        struct timeval tv = {m->lim.heartbeat_s < 10 ? 1 : 5, 0};
        event_add(m->heartbeat, &tv);
    }
    return m;
}

int channel_mgr_listen(struct channel_mgr *m, const struct hostport *addr, struct hostport *bound)
{
    struct addrinfo hints, *res = NULL;
    char port[16];
    int rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof port, "%d", addr->port);
    rc = getaddrinfo(addr->host, port, &hints, &res);
    if (rc != 0)
        return -EADDRNOTAVAIL;
    /* One address is enough for gateways; the first that binds. */
    for (struct addrinfo *ai = res; ai && m->nlisteners == 0; ai = ai->ai_next) {
        struct evconnlistener *l = evconnlistener_new_bind(
            m->base, accept_cb, m, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096, ai->ai_addr,
            (int)ai->ai_addrlen);
        if (l == NULL)
            continue;
        evconnlistener_set_error_cb(l, accept_error_cb);
        m->listeners[m->nlisteners++] = l;
        if (bound) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &sl);
            str_copy(bound->host, sizeof bound->host, addr->host);
            bound->port =
                ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)(void *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
        }
    }
    freeaddrinfo(res);
    return m->nlisteners ? 0 : -EADDRINUSE;
}

void channel_mgr_shutdown(struct channel_mgr *m, void (*done)(void *arg), void *arg)
{
    m->shutting_down = 1;
    m->done = done;
    m->done_arg = arg;
    for (int i = 0; i < m->nlisteners; i++)
        evconnlistener_free(m->listeners[i]);
    m->nlisteners = 0;
    for (struct channel *ch = m->head; ch; ch = ch->next)
        channel_close(ch, "clsmd is shutting down");
    event_active(m->reaper, EV_TIMEOUT, 0);
}

void channel_mgr_free(struct channel_mgr *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < m->nlisteners; i++)
        evconnlistener_free(m->listeners[i]);
    memset(&m->l, 0, sizeof m->l); /* nobody to tell any more */
    m->audit = NULL;
    while (m->head) {
        struct channel *ch = m->head;
        if (ch->state == CH_OPEN) {
            table_remove(m, ch);
            lru_unlink(m, ch);
        }
        m->counts[ch->state]--;
        m->counts[CH_CLOSED]++;
        ch->state = CH_CLOSED;
        reap_later(ch);
    }
    m->done = NULL;
    if (m->reaper) {
        reaper_cb(-1, 0, m);
        event_free(m->reaper);
    }
    if (m->resume)
        event_free(m->resume);
    if (m->heartbeat)
        event_free(m->heartbeat);
    SSL_CTX_free(m->tls);
    sk_X509_pop_free(m->issuers, X509_free);
    free(m->table);
    free(m);
}

void channel_mgr_counts(const struct channel_mgr *m, int counts[CH_CLOSED + 1])
{
    memcpy(counts, m->counts, sizeof m->counts);
}

json_t *channel_mgr_refusals(const struct channel_mgr *m)
{
    json_t *o = json_object();
    for (int i = 0; i < NREASONS; i++)
        json_object_set_new(o, reason_names[i], json_integer((json_int_t)m->refused[i]));
    return o;
}

static json_t *channel_json(const struct channel *ch)
{
    char t1[40], t2[40];
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:I, s:I}", "id", (json_int_t)ch->id, "state",
                          state_names[ch->state], "peer", ch->peer, "created_at",
                          time_format_ms(ch->created_ms, t1, sizeof t1), "rx_bytes",
                          (json_int_t)ch->rx_bytes, "tx_bytes", (json_int_t)ch->tx_bytes);
    json_object_set_new(o, "smgw", ch->smgw[0] ? json_string(ch->smgw) : json_null());
    json_object_set_new(o, "device", ch->device[0] ? json_string(ch->device) : json_null());
    json_object_set_new(o, "driver", ch->drv ? json_string(ch->drv->name) : json_null());
    json_object_set_new(o, "opened_at",
                        ch->opened_ms ? json_string(time_format_ms(ch->opened_ms, t2, sizeof t2))
                                      : json_null());
    json_object_set_new(o, "keepalive_s", json_integer(ch->keepalive_s));
    return o;
}

json_t *channel_mgr_list(const struct channel_mgr *m, uint64_t after, int limit, const char *state,
                         const char *smgw, const char *device, int *more)
{
    json_t *items = json_array();
    int want = state ? channel_state_parse(state) : -1;
    *more = 0;
    for (const struct channel *ch = m->head; ch; ch = ch->next) {
        if (ch->id <= after || (want >= 0 && (int)ch->state != want) ||
            (smgw && strcmp(ch->smgw, smgw) != 0) || (device && strcmp(ch->device, device) != 0))
            continue;
        if ((int)json_array_size(items) == limit) {
            *more = 1;
            break;
        }
        json_array_append_new(items, channel_json(ch));
    }
    return items;
}

enum channel_state channel_state_of(const struct channel *ch)
{
    return ch->state;
}

const char *channel_smgw(const struct channel *ch)
{
    return ch->smgw;
}

const char *channel_device(const struct channel *ch)
{
    return ch->device;
}

const struct channel_listener *channel_listener_of(const struct channel *ch)
{
    return &ch->m->l;
}

size_t channel_max_frame(const struct channel *ch)
{
    return ch->m->lim.max_frame;
}

const struct driver_ops *channel_driver(const struct channel *ch)
{
    return ch->drv;
}

void *channel_driver_state(const struct channel *ch)
{
    return ch->drv_state;
}
