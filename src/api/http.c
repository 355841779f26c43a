/*
 * http.c - HTTP/1.1 server connections, request parsing and replies; see
 * http.h. A connection is a small state machine: it reads a head, then a
 * body, hands the request over, writes the answer, and either waits for the
 * next request or closes (draining what the peer still sends, so that an
 * early answer such as 413 is not lost to a TCP reset).
 */
#include "api/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <jansson.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/tls.h"

#define MAX_LISTENERS    4
#define MAX_RSP_HEADERS  16
#define LINGER_S         2
#define LINGER_MAX_BYTES (1 << 20)
#define DISCARD_MAX      (64 * 1024) /* body dropped to keep a connection after an early answer */
#define WRITE_TIMEOUT_S  30

enum conn_state {
    CS_HEAD,    /* waiting for (more of) a request head */
    CS_BODY,    /* head parsed, reading Content-Length bytes */
    CS_HANDLE,  /* the handler owns the request; reading paused */
    CS_DISCARD, /* answered from the head; dropping its (small) body */
    CS_CLOSING, /* last answer queued; close once written */
    CS_LINGER,  /* answer written, write side shut; discarding input */
    CS_STREAM,  /* a streamed answer (http_stream_begin) runs; input is dropped */
    CS_DEAD,    /* waiting to be freed by the reaper */
};

struct http_conn;

struct http_request {
    struct http_server *srv;
    struct http_conn *conn; /* NULL once the connection is gone */
    char *headbuf;
    struct http_head head;
    char *body;
    size_t body_len;
    int64_t start_us;
    int is_head;
    void *data;
    struct http_header rsp[MAX_RSP_HEADERS];
    size_t nrsp;
    char peer[64];
    struct http_stream_cb stream; /* a streamed answer's owner */
    size_t stream_max;
    int chunked;
};

struct http_conn {
    struct http_server *srv;
    struct bufferevent *bev;
    struct event *timer;
    enum conn_state state;
    struct http_request *req;
    int64_t first_byte_us;
    size_t lingered;
    size_t discard;  /* body bytes still to drop in CS_DISCARD */
    int reading;     /* EV_READ enabled */
    int peer_closed; /* the peer sent its FIN */
    int processing;  /* inside conn_process() */
    int streamed;    /* the answer was a stream: close at once when written */
    char peer[64];
    struct http_conn *prev, *next;
};

struct http_server {
    struct event_base *base;
    SSL_CTX *tls; /* NULL for plain HTTP */
    struct http_limits lim;
    struct http_callbacks cb;
    struct evconnlistener *listeners[MAX_LISTENERS];
    int nlisteners;
    struct event *resume; /* re-enables listeners after descriptor exhaustion */
    struct event *reaper; /* frees dead connections outside their callbacks */
    struct http_conn *conns, *dead;
    int nconns;
    int shutting_down;
    long long refused;
    int64_t refused_logged_us;
    void (*done)(void *arg);
    void *done_arg;
};

static void conn_kill(struct http_conn *c);
static void conn_process(struct http_conn *c);

/* --- requests and replies -------------------------------------------------- */

int http_add_header(struct http_request *req, const char *name, const char *value)
{
    if (req->nrsp == MAX_RSP_HEADERS || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return -EINVAL;
    req->rsp[req->nrsp].name = strdup(name);
    req->rsp[req->nrsp].value = strdup(value);
    if (!req->rsp[req->nrsp].name || !req->rsp[req->nrsp].value) {
        free(req->rsp[req->nrsp].name);
        free(req->rsp[req->nrsp].value);
        return -ENOMEM;
    }
    req->nrsp++;
    return 0;
}

static struct http_request *request_new(struct http_conn *c)
{
    struct http_request *req = calloc(1, sizeof *req);
    if (req == NULL)
        return NULL;
    req->srv = c->srv;
    req->conn = c;
    req->start_us = c->first_byte_us ? c->first_byte_us : time_mono_us();
    req->head.minor = 1;
    memcpy(req->peer, c->peer, sizeof req->peer);
    return req;
}

static void request_free(struct http_request *req)
{
    if (req->srv->cb.on_free)
        req->srv->cb.on_free(req->srv->cb.arg, req);
    for (size_t i = 0; i < req->nrsp; i++) {
        free(req->rsp[i].name);
        free(req->rsp[i].value);
    }
    free(req->headbuf);
    free(req->body);
    free(req);
}

/* --- the connection state machine -------------------------------------------- */

static void arm_timer(struct http_conn *c, int seconds)
{
    struct timeval tv = {seconds, 0};
    event_add(c->timer, &tv);
}

/* Read from the socket only in states that consume input, while the peer
 * still sends and while queued answers stay below the output limit (a
 * client that pipelines requests but reads no answers stops being read). */
static void conn_update_reading(struct http_conn *c)
{
    size_t out = evbuffer_get_length(bufferevent_get_output(c->bev));
    int want = !c->peer_closed &&
               (c->state == CS_LINGER || c->state == CS_DISCARD || c->state == CS_STREAM ||
                ((c->state == CS_HEAD || c->state == CS_BODY) && out < c->srv->lim.max_output));
    if (want && !c->reading)
        bufferevent_enable(c->bev, EV_READ);
    else if (!want && c->reading)
        bufferevent_disable(c->bev, EV_READ);
    c->reading = want;
}

/*
 * The one place where a connection changes state. Each state decides what
 * the connection reads and which timer runs:
 *   CS_HEAD    waiting for a request; idle timer, then request timer from
 *              its first byte (set in conn_process)
 *   CS_BODY    reading a body; the request timer keeps running
 *   CS_HANDLE  a handler holds the request; no timer; reading stops only if
 *              the handler does not answer at once (see read_body)
 *   CS_DISCARD answered from the head alone; the small body that follows is
 *              dropped, then the next request may come
 *   CS_CLOSING the last answer is being written; no reading
 *   CS_LINGER  written and our side shut; input is drained and dropped for
 *              a short while so the peer reads the answer before the close
 *   CS_STREAM  a streamed answer runs; no timer (its owner writes, and the
 *              write timeout catches a peer that stopped reading); input is
 *              read only to notice the peer going away, and dropped
 */
static void conn_enter(struct http_conn *c, enum conn_state to)
{
    c->state = to;
    switch (to) {
    case CS_HEAD:
        c->first_byte_us = 0;
        arm_timer(c, c->srv->lim.idle_timeout_s);
        conn_update_reading(c);
        break;
    case CS_BODY:
    case CS_DISCARD:
        break;
    case CS_HANDLE:
    case CS_CLOSING:
    case CS_STREAM:
        event_del(c->timer);
        if (to != CS_HANDLE)
            conn_update_reading(c);
        break;
    case CS_LINGER:
        /* (never for TLS: half-closing the socket would cut the record
         * layer; TLS connections close once written, see write_cb) */
        shutdown(bufferevent_getfd(c->bev), SHUT_WR);
        arm_timer(c, LINGER_S);
        conn_update_reading(c);
        break;
    case CS_DEAD:
        break;
    }
}

void http_reply(struct http_request *req, int status, const char *content_type, const void *body,
                size_t len)
{
    struct http_conn *c = req->conn;
    int keep, bodyless = req->is_head || status == 204 || status == 304;

    if (c == NULL) {
        request_free(req);
        return;
    }
    /* Keep the connection after a request answered well: read whole, or
     * refused from its head with a body small enough to drop. Other early
     * answers (413, 408, a large refused body) leave the connection in a
     * state not worth recovering. */
    long long cl = req->head.content_length > 0 ? req->head.content_length : 0;
    int early = c->state == CS_BODY && req->head.method != NULL;
    keep = (c->state == CS_HANDLE || (early && cl <= DISCARD_MAX && !req->head.expect_continue)) &&
           req->head.keep_alive && !c->srv->shutting_down && !c->peer_closed && status != 408 &&
           status != 413 && status < 500;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\n", req->head.minor == 0 ? 0 : 1, status,
                        http_reason(status));
    if (status != 204 && status != 304) {
        if (content_type)
            evbuffer_add_printf(out, "Content-Type: %s\r\n", content_type);
        evbuffer_add_printf(out, "Content-Length: %zu\r\n", len);
    }
    if (!keep)
        evbuffer_add(out, "Connection: close\r\n", 19);
    else if (req->head.minor == 0)
        evbuffer_add(out, "Connection: keep-alive\r\n", 24);
    for (size_t i = 0; i < req->nrsp; i++)
        evbuffer_add_printf(out, "%s: %s\r\n", req->rsp[i].name, req->rsp[i].value);
    evbuffer_add(out, "\r\n", 2);
    if (!bodyless && len > 0)
        evbuffer_add(out, body, len);
    if (c->srv->cb.on_done)
        c->srv->cb.on_done(c->srv->cb.arg, req, status, time_mono_us() - req->start_us);
    c->req = NULL;
    request_free(req);
    if (!keep) {
        conn_enter(c, CS_CLOSING);
        return;
    }
    if (early && cl > 0) {
        c->discard = (size_t)cl;
        conn_enter(c, CS_DISCARD);
        return; /* conn_process goes on with the body bytes */
    }
    conn_enter(c, CS_HEAD);
    /* An answer given later, outside conn_process: look at what the peer
     * sent meanwhile. */
    if (!c->processing && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

/* --- streamed answers --------------------------------------------------------- */

int http_stream_begin(struct http_request *req, int status, const char *content_type,
                      size_t max_queued, const struct http_stream_cb *cb)
{
    struct http_conn *c = req->conn;
    if (cb)
        req->stream = *cb;
    req->stream_max = max_queued;
    if (c == NULL)
        return -EPIPE;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    req->chunked = req->head.minor >= 1 && !req->is_head;
    evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\n", req->head.minor == 0 ? 0 : 1, status,
                        http_reason(status));
    if (content_type)
        evbuffer_add_printf(out, "Content-Type: %s\r\n", content_type);
    if (req->chunked)
        evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
    evbuffer_add(out, "Connection: close\r\n", 19);
    for (size_t i = 0; i < req->nrsp; i++)
        evbuffer_add_printf(out, "%s: %s\r\n", req->rsp[i].name, req->rsp[i].value);
    evbuffer_add(out, "\r\n", 2);
    if (c->srv->cb.on_done)
        c->srv->cb.on_done(c->srv->cb.arg, req, status, time_mono_us() - req->start_us);
    c->streamed = 1;
    conn_enter(c, CS_STREAM);
    return 0;
}

int http_stream_write(struct http_request *req, const void *buf, size_t len)
{
    struct http_conn *c = req->conn;
    if (c == NULL || c->state != CS_STREAM)
        return -EPIPE;
    if (req->is_head || len == 0)
        return 0;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) + len > req->stream_max)
        return -ENOBUFS;
    if (req->chunked)
        evbuffer_add_printf(out, "%zx\r\n", len);
    evbuffer_add(out, buf, len);
    if (req->chunked)
        evbuffer_add(out, "\r\n", 2);
    return 0;
}

size_t http_stream_queued(const struct http_request *req)
{
    return req->conn ? evbuffer_get_length(bufferevent_get_output(req->conn->bev)) : 0;
}

void http_stream_end(struct http_request *req)
{
    struct http_conn *c = req->conn;
    memset(&req->stream, 0, sizeof req->stream);
    if (c == NULL) {
        request_free(req);
        return;
    }
    if (c->req == req)
        c->req = NULL;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->state == CS_STREAM && req->chunked)
        evbuffer_add(out, "0\r\n\r\n", 5);
    request_free(req);
    if (evbuffer_get_length(out) > 0)
        conn_enter(c, CS_CLOSING);
    else
        conn_kill(c);
}

void http_reply_problem(struct http_request *req, int status, const char *type_slug,
                        const char *detail)
{
    char *s = http_problem_body(status, type_slug, detail, NULL, NULL, NULL);
    http_reply(req, status, "application/problem+json", s, s ? strlen(s) : 0);
    free(s);
}

static void server_check_done(struct http_server *srv)
{
    if (srv->shutting_down && srv->nconns == 0 && srv->done) {
        void (*done)(void *) = srv->done;
        srv->done = NULL;
        done(srv->done_arg);
    }
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *srv = arg;
    (void)fd;
    (void)what;
    while (srv->dead) {
        struct http_conn *c = srv->dead;
        srv->dead = c->next;
        if (srv->tls) {
            SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
            if (ssl)
                SSL_shutdown(ssl); /* close_notify, best effort */
        }
        bufferevent_free(c->bev);
        event_free(c->timer);
        free(c);
    }
    server_check_done(srv);
}

/* Take the connection out of service; the reaper frees it after the current
 * callback. A request still being read is freed here; one a handler holds
 * is orphaned and freed by its http_reply(); a stream's owner learns that
 * the stream is over and frees it with http_stream_end(). */
static void conn_kill(struct http_conn *c)
{
    struct http_server *srv = c->srv;
    struct http_request *stream = NULL;
    if (c->state == CS_DEAD)
        return;
    if (c->req && c->state != CS_HANDLE && c->state != CS_STREAM)
        request_free(c->req);
    else if (c->req)
        c->req->conn = NULL;
    if (c->state == CS_STREAM)
        stream = c->req;
    c->req = NULL;
    conn_enter(c, CS_DEAD);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    event_del(c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    c->prev = NULL;
    c->next = srv->dead;
    srv->dead = c;
    event_active(srv->reaper, EV_TIMEOUT, 0);
    if (stream && stream->stream.closed)
        stream->stream.closed(stream->stream.arg, 0);
}

/* Answer an error found by the server itself; the connection closes. */
static void conn_fail(struct http_conn *c, int status, const char *why)
{
    if (c->req == NULL && (c->req = request_new(c)) == NULL) {
        conn_kill(c);
        return;
    }
    c->req->head.keep_alive = 0;
    http_reply_problem(c->req, status, "http", why);
}

/* Find the blank line ending a head in the first 'n' bytes. Returns the head
 * length including it, or 0. */
static size_t head_length(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\n')
            continue;
        if (p[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* Drop empty lines before a request line (RFC 9112 §2.2 allows ignoring
 * them); returns the bytes left. */
static size_t skip_blank_lines(struct evbuffer *in, size_t avail)
{
    size_t n = 0;
    while (n < avail) {
        unsigned char ch;
        struct evbuffer_ptr pos;
        evbuffer_ptr_set(in, &pos, n, EVBUFFER_PTR_SET);
        if (evbuffer_copyout_from(in, &pos, &ch, 1) != 1 || (ch != '\r' && ch != '\n'))
            break;
        n++;
    }
    evbuffer_drain(in, n);
    return avail - n;
}

/* Parse a complete head into a new request and let on_head choose the body
 * limit (or answer at once). Returns 0 when the body comes next. */
static int read_head(struct http_conn *c, struct evbuffer *in, size_t avail)
{
    struct http_server *srv = c->srv;
    size_t pull = avail < srv->lim.max_head ? avail : srv->lim.max_head;
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)pull);
    size_t hl = head_length(p, pull);
    const char *why;

    if (hl == 0) {
        if (avail >= srv->lim.max_head) {
            int no_line = memchr(p, '\n', pull) == NULL;
            conn_fail(c, no_line ? 414 : 431,
                      no_line ? "request line too long" : "request head too large");
        }
        return -1;
    }
    struct http_request *req = request_new(c);
    if (req == NULL || (req->headbuf = malloc(hl + 1)) == NULL) {
        if (req)
            request_free(req);
        conn_fail(c, 503, "out of memory");
        return -1;
    }
    c->req = req;
    evbuffer_remove(in, req->headbuf, hl);
    req->headbuf[hl] = '\0';
    int rc = http_parse_head(req->headbuf, hl, &req->head, &why);
    if (rc != 0) {
        req->head.minor = 1; /* errors are answered in our own version */
        conn_fail(c, rc, why);
        return -1;
    }
    req->is_head = strcmp(req->head.method, "HEAD") == 0;
    conn_enter(c, CS_BODY);
    long long limit = (long long)srv->lim.max_body;
    if (srv->cb.on_head) {
        long long l = srv->cb.on_head(srv->cb.arg, req);
        if (c->req == NULL) /* answered without the body */
            return c->state == CS_HEAD || c->state == CS_DISCARD ? 0 : -1;
        if (l >= 0)
            limit = l;
    }
    if (req->head.content_length > limit) {
        char msg[96];
        if (limit == 0)
            snprintf(msg, sizeof msg, "this request takes no body");
        else
            snprintf(msg, sizeof msg, "the body may have at most %lld bytes", limit);
        conn_fail(c, 413, msg);
        return -1;
    }
    if (req->head.expect_continue && req->head.content_length > 0)
        evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 0;
}

/* Once the whole body is there, hand the request to its handler. */
static int read_body(struct http_conn *c, struct evbuffer *in, size_t avail)
{
    struct http_request *req = c->req;
    size_t cl = req->head.content_length > 0 ? (size_t)req->head.content_length : 0;
    if (avail < cl)
        return -1;
    req->body = malloc(cl + 1);
    if (req->body == NULL) {
        conn_fail(c, 503, "out of memory");
        return -1;
    }
    evbuffer_remove(in, req->body, cl);
    req->body[cl] = '\0';
    req->body_len = cl;
    conn_enter(c, CS_HANDLE);
    c->srv->cb.on_request(c->srv->cb.arg, req);
    /* Most handlers have answered by now; for one that answers later, stop
     * reading until it does (costs system calls, so only then). */
    if (c->state == CS_HANDLE)
        conn_update_reading(c);
    return 0;
}

static void conn_process(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    c->processing = 1;
    for (int more = 1; more;) {
        size_t avail = evbuffer_get_length(in);
        more = 0;
        if (c->state == CS_HEAD && c->reading && avail > 0) {
            if (c->first_byte_us == 0) {
                c->first_byte_us = time_mono_us();
                arm_timer(c, c->srv->lim.request_timeout_s);
            }
            avail = skip_blank_lines(in, avail);
            more = avail > 0 && read_head(c, in, avail) == 0;
        } else if (c->state == CS_BODY) {
            more = read_body(c, in, avail) == 0;
        } else if (c->state == CS_DISCARD && avail > 0) {
            size_t n = avail < c->discard ? avail : c->discard;
            evbuffer_drain(in, n);
            c->discard -= n;
            if (c->discard == 0) {
                conn_enter(c, CS_HEAD);
                more = 1;
            }
        } else if (c->state == CS_LINGER || (c->state == CS_STREAM && avail > 0)) {
            c->lingered += avail;
            evbuffer_drain(in, avail);
            if (c->lingered > LINGER_MAX_BYTES)
                conn_kill(c);
        }
    }
    c->processing = 0;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_process(arg);
}

/* The output buffer ran empty. */
static void write_cb(struct bufferevent *bev, void *arg)
{
    struct http_conn *c = arg;
    (void)bev;
    if (c->state == CS_CLOSING) {
        /* After a stream the peer has sent all it will (its input was
         * drained), so no lingering is needed to protect the answer. */
        if (c->peer_closed || c->srv->tls || c->streamed)
            conn_kill(c);
        else
            conn_enter(c, CS_LINGER);
        return;
    }
    if (c->state == CS_STREAM) {
        if (c->req && c->req->stream.drained)
            c->req->stream.drained(c->req->stream.arg);
        return;
    }
    if (c->state == CS_HEAD && c->first_byte_us == 0 && c->srv->shutting_down) {
        conn_kill(c); /* idle now that its answer is out */
        return;
    }
    if (c->state == CS_HEAD || c->state == CS_BODY) {
        conn_update_reading(c); /* may resume after output backpressure */
        conn_process(c);
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct http_conn *c = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED)
        return; /* the TLS handshake is done; requests follow */
    /* A stream's peer that stops sending has gone (a reader of an event
     * stream has nothing to say). */
    if (!(what & BEV_EVENT_EOF) || c->state == CS_LINGER || c->state == CS_STREAM) {
        if ((what & BEV_EVENT_ERROR) && c->srv->tls) {
            unsigned long e = bufferevent_get_openssl_error(c->bev);
            char msg[256] = "connection reset";
            if (e)
                ERR_error_string_n(e, msg, sizeof msg);
            LOG(LOG_INFO, "tls connection failed", LOG_S("peer", c->peer), LOG_S("error", msg));
        }
        conn_kill(c); /* errors, write timeouts, and the end of lingering */
        return;
    }
    /* The peer finished sending. What it asked for is still answered: a
     * request in a handler's hands, or answers waiting to be written. */
    c->peer_closed = 1;
    conn_update_reading(c);
    if (c->state == CS_HANDLE)
        return;
    if (c->req) {
        request_free(c->req); /* a body that will never be complete */
        c->req = NULL;
    }
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
        conn_enter(c, CS_CLOSING);
    else
        conn_kill(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;
    (void)fd;
    (void)what;
    if ((c->state == CS_HEAD || c->state == CS_BODY) && c->first_byte_us != 0)
        conn_fail(c, 408, "the request was not received in time");
    else
        conn_kill(c);
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

/* Over the connection limit: a short answer written straight to the socket,
 * without allocating a connection. What already arrived is read first, so
 * that the close does not reset the connection before the client reads. */
static void refuse_busy(struct http_server *srv, evutil_socket_t fd)
{
    char msg[512],
        *body = http_problem_body(503, "http", "too many open connections", NULL, NULL, NULL);
    int n =
        snprintf(msg, sizeof msg,
                 "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
                 "Retry-After: 1\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
                 body ? strlen(body) : 0, body ? body : "");
    free(body);
    if (n > 0 && (size_t)n < sizeof msg) {
        ssize_t w = send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
    }
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 16 && recv(fd, msg, sizeof msg, MSG_DONTWAIT) > 0; i++)
        ;
    evutil_closesocket(fd);
    /* One warning per second at most, with the count, however many come. */
    int64_t now = time_mono_us();
    srv->refused++;
    if (now - srv->refused_logged_us >= 1000000) {
        LOG(LOG_WARN, "api connections refused", LOG_S("reason", "connection limit"),
            LOG_I("refused", srv->refused), LOG_I("connections", srv->nconns));
        srv->refused = 0;
        srv->refused_logged_us = now;
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct http_server *srv = arg;
    struct http_conn *c;
    (void)l;
    (void)salen;

    if (srv->shutting_down || srv->nconns >= srv->lim.max_connections) {
        refuse_busy(srv, fd);
        return;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    c->srv = srv;
    /* An answer goes out as it is written: without this, an answer larger
     * than one segment waits for the client's delayed ACK (about 40 ms). */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (srv->tls) {
        SSL *ssl = SSL_new(srv->tls);
        c->bev = ssl ? bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                      BEV_OPT_CLOSE_ON_FREE)
                     : NULL;
        if (c->bev)
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        else if (ssl)
            SSL_free(ssl);
    } else {
        c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    c->timer = evtimer_new(srv->base, timer_cb, c);
    if (c->bev == NULL || c->timer == NULL) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        if (c->timer)
            event_free(c->timer);
        free(c);
        return;
    }
    peer_name(sa, c->peer, sizeof c->peer);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    struct timeval wt = {WRITE_TIMEOUT_S, 0};
    bufferevent_set_timeouts(c->bev, NULL, &wt);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_WRITE);
    conn_enter(c, CS_HEAD);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *srv = arg;
    (void)fd;
    (void)what;
    for (int i = 0; i < srv->nlisteners; i++)
        evconnlistener_enable(srv->listeners[i]);
}

/* Out of descriptors: pause accepting for a second instead of spinning. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct http_server *srv = arg;
    int err = EVUTIL_SOCKET_ERROR();
    (void)l;
    LOG(LOG_WARN, "api accept failed", LOG_S("error", evutil_socket_error_to_string(err)));
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        struct timeval tv = {1, 0};
        for (int i = 0; i < srv->nlisteners; i++)
            evconnlistener_disable(srv->listeners[i]);
        event_add(srv->resume, &tv);
    }
}

/* --- server ---------------------------------------------------------------- */

struct http_server *http_server_new(struct event_base *base, const struct http_limits *lim,
                                    const struct http_callbacks *cb)
{
    struct http_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return NULL;
    srv->base = base;
    srv->lim = *lim;
    srv->cb = *cb;
    srv->resume = evtimer_new(base, resume_cb, srv);
    srv->reaper = event_new(base, -1, 0, reaper_cb, srv);
    if (srv->resume == NULL || srv->reaper == NULL) {
        http_server_free(srv);
        return NULL;
    }
    return srv;
}

void http_server_set_tls(struct http_server *srv, SSL_CTX *ctx)
{
    if (ctx)
        SSL_CTX_up_ref(ctx);
    SSL_CTX_free(srv->tls);
    srv->tls = ctx;
}

int http_server_listen(struct http_server *srv, const struct hostport *addr, struct hostport *bound)
{
    struct addrinfo hints, *res = NULL, *ai;
    char port[16];
    int rc, first_port = addr->port;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof port, "%d", addr->port);
    rc = getaddrinfo(addr->host, port, &hints, &res);
    if (rc != 0) {
        LOG(LOG_ERROR, "cannot resolve listen address", LOG_S("host", addr->host),
            LOG_S("error", gai_strerror(rc)));
        return -EADDRNOTAVAIL;
    }
    rc = -EADDRNOTAVAIL;
    for (ai = res; ai && srv->nlisteners < MAX_LISTENERS; ai = ai->ai_next) {
        if (first_port != addr->port) {
            /* Port 0: every address gets the port the first one got. */
            if (ai->ai_family == AF_INET)
                ((struct sockaddr_in *)(void *)ai->ai_addr)->sin_port = htons((uint16_t)first_port);
            else if (ai->ai_family == AF_INET6)
                ((struct sockaddr_in6 *)(void *)ai->ai_addr)->sin6_port =
                    htons((uint16_t)first_port);
        }
        struct evconnlistener *l = evconnlistener_new_bind(
            srv->base, accept_cb, srv, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024, ai->ai_addr,
            (int)ai->ai_addrlen);
        if (l == NULL) {
            rc = -errno;
            LOG(LOG_ERROR, "cannot listen", LOG_S("host", addr->host), LOG_I("port", addr->port),
                LOG_S("error", strerror(errno)));
            continue;
        }
        evconnlistener_set_error_cb(l, accept_error_cb);
        srv->listeners[srv->nlisteners++] = l;
        if (first_port == 0) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &sl);
            first_port =
                ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)(void *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
        }
        rc = 0;
    }
    freeaddrinfo(res);
    if (rc == 0 && bound) {
        str_copy(bound->host, sizeof bound->host, addr->host);
        bound->port = first_port;
    }
    return srv->nlisteners > 0 ? 0 : rc;
}

void http_server_shutdown(struct http_server *srv, void (*done)(void *arg), void *arg)
{
    struct http_conn *c, *next;
    srv->shutting_down = 1;
    srv->done = done;
    srv->done_arg = arg;
    for (int i = 0; i < srv->nlisteners; i++)
        evconnlistener_free(srv->listeners[i]);
    srv->nlisteners = 0;
    for (c = srv->conns; c; c = next) {
        next = c->next;
        /* Idle keep-alive connections go now (or once their last answer is
         * written, see write_cb); busy ones after their answer. */
        if (c->state == CS_HEAD && c->first_byte_us == 0 &&
            evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            conn_kill(c);
        /* Streams would never finish by themselves: their owners end them
         * (and may write a last word). */
        else if (c->state == CS_STREAM && c->req && c->req->stream.closed)
            c->req->stream.closed(c->req->stream.arg, 1);
    }
    event_active(srv->reaper, EV_TIMEOUT, 0);
}

int http_server_connections(const struct http_server *srv)
{
    return srv->nconns;
}

void http_server_free(struct http_server *srv)
{
    if (srv == NULL)
        return;
    for (int i = 0; i < srv->nlisteners; i++)
        evconnlistener_free(srv->listeners[i]);
    while (srv->conns)
        conn_kill(srv->conns);
    srv->done = NULL;
    if (srv->reaper) {
        reaper_cb(-1, 0, srv);
        event_free(srv->reaper);
    }
    if (srv->resume)
        event_free(srv->resume);
    SSL_CTX_free(srv->tls);
    free(srv);
}

/* --- request accessors ----------------------------------------------------- */

const char *http_req_method(const struct http_request *req)
{
    return req->head.method;
}

const char *http_req_path(const struct http_request *req)
{
    return req->head.path;
}

const char *http_req_query(const struct http_request *req)
{
    return req->head.query;
}

const char *http_req_header(const struct http_request *req, const char *name)
{
    return http_head_get(&req->head, name);
}

const char *http_req_body(const struct http_request *req, size_t *len)
{
    *len = req->body_len;
    return req->body ? req->body : "";
}

X509 *http_req_peer_cert(const struct http_request *req)
{
    if (req->conn == NULL || req->srv->tls == NULL)
        return NULL;
    SSL *ssl = bufferevent_openssl_get_ssl(req->conn->bev);
    return ssl ? SSL_get1_peer_certificate(ssl) : NULL;
}

const char *http_req_peer(const struct http_request *req)
{
    return req->peer;
}

int64_t http_req_start_us(const struct http_request *req)
{
    return req->start_us;
}

void http_req_set_data(struct http_request *req, void *data)
{
    req->data = data;
}

void *http_req_data(const struct http_request *req)
{
    return req->data;
}
