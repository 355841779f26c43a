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
#include <event2/listener.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"

#define MAX_LISTENERS    4
#define MAX_RSP_HEADERS  16
#define LINGER_S         2
#define LINGER_MAX_BYTES (1 << 20)
#define WRITE_TIMEOUT_S  30

enum conn_state {
    CS_HEAD,    /* waiting for (more of) a request head */
    CS_BODY,    /* head parsed, reading Content-Length bytes */
    CS_HANDLE,  /* the handler owns the request; reading paused */
    CS_CLOSING, /* last answer queued; close once written */
    CS_LINGER,  /* answer written, write side shut; discarding input */
    CS_DEAD,    /* waiting to be freed by the reaper */
};

struct http_conn;

struct http_request {
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
};

struct http_conn {
    struct http_server *srv;
    struct bufferevent *bev;
    struct event *timer;
    enum conn_state state;
    struct http_request *req;
    int64_t first_byte_us;
    size_t lingered;
    int read_paused; /* EV_READ disabled while a handler holds the request */
    char peer[64];
    struct http_conn *prev, *next;
};

struct http_server {
    struct event_base *base;
    struct http_limits lim;
    struct http_callbacks cb;
    struct evconnlistener *listeners[MAX_LISTENERS];
    int nlisteners;
    struct event *resume; /* re-enables listeners after descriptor exhaustion */
    struct event *reaper; /* frees dead connections outside their callbacks */
    struct http_conn *conns, *dead;
    int nconns;
    int shutting_down;
    void (*done)(void *arg);
    void *done_arg;
};

/* --- parsing --------------------------------------------------------------- */

static int is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Cut the next line at '*p'; returns it NUL-terminated without CR/LF, or
 * NULL at the end or for a line with a stray CR or NUL. */
static char *next_line(char **p, char *end, int *bad)
{
    char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
    if (nl == NULL)
        return NULL;
    char *e = nl;
    if (e > s && e[-1] == '\r')
        e--;
    for (char *q = s; q < e; q++) {
        if (*q == '\r' || *q == '\0') {
            *bad = 1;
            return NULL;
        }
    }
    *e = '\0';
    *p = nl + 1;
    return s;
}

static int has_token(const char *list, const char *tok)
{
    size_t tl = strlen(tok);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *e = p;
        while (e > start && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - start) == tl && strncasecmp(start, tok, tl) == 0)
            return 1;
    }
    return 0;
}

static int parse_request_line(char *line, struct http_head *h, const char **why)
{
    char *sp1 = strchr(line, ' '), *sp2;
    if (sp1 == NULL || sp1 == line || sp1 - line > 15) {
        *why = "malformed request line";
        return 400;
    }
    *sp1 = '\0';
    for (char *c = line; *c; c++) {
        if (!is_tchar((unsigned char)*c)) {
            *why = "malformed method";
            return 400;
        }
    }
    h->method = line;
    h->path = sp1 + 1;
    sp2 = strchr(h->path, ' ');
    if (sp2 == NULL || sp2 == h->path) {
        *why = "malformed request line";
        return 400;
    }
    *sp2 = '\0';
    const char *ver = sp2 + 1;
    if (h->path[0] != '/') {
        *why = "the request target must be an absolute path";
        return 400;
    }
    for (const char *c = h->path; *c; c++) {
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
            *why = "invalid character in the request target";
            return 400;
        }
    }
    if (strncmp(ver, "HTTP/", 5) != 0 || !isdigit((unsigned char)ver[5]) || ver[6] != '.' ||
        !isdigit((unsigned char)ver[7]) || ver[8] != '\0') {
        *why = "malformed HTTP version";
        return 400;
    }
    if (ver[5] != '1') {
        *why = "only HTTP/1.0 and HTTP/1.1 are spoken here";
        return 505;
    }
    h->minor = ver[7] - '0';
    char *q = strchr(h->path, '?');
    if (q) {
        *q = '\0';
        h->query = q + 1;
    }
    return 0;
}

static int parse_header_line(char *line, struct http_head *h, const char **why)
{
    char *colon = strchr(line, ':');
    if (line[0] == ' ' || line[0] == '\t') {
        *why = "folded header lines are not accepted";
        return 400;
    }
    if (colon == NULL || colon == line) {
        *why = "malformed header line";
        return 400;
    }
    for (char *c = line; c < colon; c++) {
        if (!is_tchar((unsigned char)*c)) {
            *why = "malformed header name";
            return 400;
        }
    }
    *colon = '\0';
    char *v = colon + 1, *e;
    while (*v == ' ' || *v == '\t')
        v++;
    e = v + strlen(v);
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    for (char *c = v; *c; c++) {
        unsigned char u = (unsigned char)*c;
        if ((u < 0x20 && u != '\t') || u == 0x7f) {
            *why = "control character in a header value";
            return 400;
        }
    }
    if (h->nheaders == HTTP_MAX_HEADERS) {
        *why = "too many header fields";
        return 431;
    }
    h->headers[h->nheaders].name = line;
    h->headers[h->nheaders].value = v;
    h->nheaders++;
    return 0;
}

const char *http_head_get(const struct http_head *h, const char *name)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (strcasecmp(h->headers[i].name, name) == 0)
            return h->headers[i].value;
    return NULL;
}

static int count_header(const struct http_head *h, const char *name)
{
    int n = 0;
    for (size_t i = 0; i < h->nheaders; i++)
        n += strcasecmp(h->headers[i].name, name) == 0;
    return n;
}

/* Framing and connection semantics from the parsed header fields. */
static int interpret_headers(struct http_head *h, const char **why)
{
    const char *cl = http_head_get(h, "Content-Length");
    const char *te = http_head_get(h, "Transfer-Encoding");
    const char *conn = http_head_get(h, "Connection");
    const char *expect = http_head_get(h, "Expect");

    if (count_header(h, "Content-Length") > 1 || count_header(h, "Host") > 1) {
        *why = "repeated Content-Length or Host";
        return 400;
    }
    if (te) {
        *why = cl ? "both Transfer-Encoding and Content-Length" : NULL;
        if (cl)
            return 400;
        if (has_token(te, "chunked")) {
            *why = "chunked request bodies are not accepted; send Content-Length";
            return 411;
        }
        *why = "unknown transfer coding";
        return 501;
    }
    if (cl) {
        long long v;
        if (parse_ll(cl, 0, 1LL << 50, &v) != 0) {
            *why = "malformed Content-Length";
            return 400;
        }
        h->content_length = v;
    }
    if (h->minor >= 1 && http_head_get(h, "Host") == NULL) {
        *why = "HTTP/1.1 requests need a Host header";
        return 400;
    }
    if (h->minor >= 1)
        h->keep_alive = !(conn && has_token(conn, "close"));
    else
        h->keep_alive = conn && has_token(conn, "keep-alive");
    if (expect) {
        if (strcasecmp(expect, "100-continue") != 0) {
            *why = "unknown expectation";
            return 417;
        }
        h->expect_continue = h->minor >= 1;
    }
    return 0;
}

int http_parse_head(char *buf, size_t len, struct http_head *h, const char **why)
{
    char *p = buf, *end = buf + len, *line;
    int bad = 0, rc;

    memset(h, 0, sizeof *h);
    h->content_length = -1;
    *why = "malformed request";
    /* RFC 9112 §2.2: empty lines before a request line are ignored. */
    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    line = next_line(&p, end, &bad);
    if (line == NULL)
        return 400;
    rc = parse_request_line(line, h, why);
    if (rc)
        return rc;
    for (;;) {
        line = next_line(&p, end, &bad);
        if (line == NULL) {
            *why = bad ? "stray CR or NUL in the head" : "unterminated head";
            return 400;
        }
        if (*line == '\0')
            break;
        rc = parse_header_line(line, h, why);
        if (rc)
            return rc;
    }
    if (p != end) {
        *why = "data after the end of the head";
        return 400;
    }
    return interpret_headers(h, why);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int http_unescape(const char *in, size_t len, char *out, int form)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            int hi, lo;
            if (len - i < 3 || (hi = hexval(in[i + 1])) < 0 || (lo = hexval(in[i + 2])) < 0)
                return -EINVAL;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && form) {
            c = ' ';
        }
        if (c == '\0')
            return -EINVAL;
        out[o++] = c;
    }
    out[o] = '\0';
    return (int)o;
}

/* --- replies --------------------------------------------------------------- */

const char *http_reason(int status)
{
    static const struct {
        int code;
        const char *text;
    } reasons[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {411, "Length Required"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {417, "Expectation Failed"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {503, "Service Unavailable"},
        {505, "HTTP Version Not Supported"},
    };
    for (size_t i = 0; i < ARRAY_LEN(reasons); i++)
        if (reasons[i].code == status)
            return reasons[i].text;
    return "Unknown";
}

static void conn_kill(struct http_conn *c);
static void conn_after_reply(struct http_conn *c, int keep);
static void arm_timer(struct http_conn *c, int seconds);

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

static void request_free(struct http_request *req)
{
    for (size_t i = 0; i < req->nrsp; i++) {
        free(req->rsp[i].name);
        free(req->rsp[i].value);
    }
    free(req->headbuf);
    free(req->body);
    free(req);
}

void http_reply(struct http_request *req, int status, const char *content_type, const void *body,
                size_t len)
{
    struct http_conn *c = req->conn;
    struct http_server *srv;
    int keep;

    if (c == NULL) {
        request_free(req);
        return;
    }
    srv = c->srv;
    keep = req->head.keep_alive && !srv->shutting_down && status != 408 && status < 500 &&
           c->state != CS_CLOSING;
    /* An unread body (an early 413, say) leaves the framing unknown. */
    if (c->state == CS_HEAD || c->state == CS_BODY)
        keep = 0;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\n", req->head.minor == 0 ? 0 : 1, status,
                        http_reason(status));
    if (status != 204 && status != 304) {
        if (content_type)
            evbuffer_add_printf(out, "Content-Type: %s\r\n", content_type);
        evbuffer_add_printf(out, "Content-Length: %zu\r\n", len);
    }
    if (!keep)
        evbuffer_add_printf(out, "Connection: close\r\n");
    else if (req->head.minor == 0)
        evbuffer_add_printf(out, "Connection: keep-alive\r\n");
    for (size_t i = 0; i < req->nrsp; i++)
        evbuffer_add_printf(out, "%s: %s\r\n", req->rsp[i].name, req->rsp[i].value);
    evbuffer_add(out, "\r\n", 2);
    if (!req->is_head && status != 204 && status != 304 && len > 0)
        evbuffer_add(out, body, len);
    if (srv->cb.on_done)
        srv->cb.on_done(srv->cb.arg, req, status, time_mono_us() - req->start_us);
    c->req = NULL;
    request_free(req);
    conn_after_reply(c, keep);
}

void http_reply_problem(struct http_request *req, int status, const char *type_slug,
                        const char *detail)
{
    char type[96];
    snprintf(type, sizeof type, "urn:clsm:problem:%s", type_slug);
    json_t *p =
        json_pack("{s:s, s:s, s:i}", "type", type, "title", http_reason(status), "status", status);
    if (detail)
        json_object_set_new(p, "detail", json_string(detail));
    char *s = json_dumps(p, JSON_COMPACT);
    http_reply(req, status, "application/problem+json", s, s ? strlen(s) : 0);
    free(s);
    json_decref(p);
}

/* --- connections ----------------------------------------------------------- */

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
        bufferevent_free(c->bev);
        event_free(c->timer);
        free(c);
    }
    server_check_done(srv);
}

/* Take the connection out of service; it is freed by the reaper after the
 * current callback returns. A request in a handler's hands survives. */
static void conn_kill(struct http_conn *c)
{
    struct http_server *srv = c->srv;
    if (c->state == CS_DEAD)
        return;
    /* A request still being read is ours; one in a handler's hands is
     * orphaned and freed by its http_reply(). */
    if (c->req && c->state != CS_HANDLE) {
        request_free(c->req);
        c->req = NULL;
    }
    c->state = CS_DEAD;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    event_del(c->timer);
    if (c->req) {
        c->req->conn = NULL;
        c->req = NULL;
    }
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
}

static void arm_timer(struct http_conn *c, int seconds)
{
    struct timeval tv = {seconds, 0};
    event_add(c->timer, &tv);
}

static struct http_request *request_new(struct http_conn *c)
{
    struct http_request *req = calloc(1, sizeof *req);
    if (req == NULL)
        return NULL;
    req->conn = c;
    req->start_us = c->first_byte_us;
    memcpy(req->peer, c->peer, sizeof req->peer);
    return req;
}

/* Answer an error found by the server itself, then close. */
static void conn_fail(struct http_conn *c, int status, const char *why)
{
    struct http_request *req = c->req;
    if (req == NULL) {
        req = request_new(c);
        if (req == NULL) {
            conn_kill(c);
            return;
        }
        c->req = req;
        req->head.minor = 1;
    }
    if (req->start_us == 0)
        req->start_us = time_mono_us();
    req->head.keep_alive = 0;
    http_reply_problem(req, status, "http", why);
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
        free(req);
        conn_kill(c);
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
    long long limit = (long long)srv->lim.max_body;
    if (srv->cb.on_head) {
        long long l = srv->cb.on_head(srv->cb.arg, req);
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
        evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
    c->state = CS_BODY;
    return 0;
}

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
    c->state = CS_HANDLE;
    event_del(c->timer);
    c->srv->cb.on_request(c->srv->cb.arg, req);
    /* A handler that answers later: stop reading (pipelined requests wait in
     * the kernel) until it does. Most answer at once, and then this costs
     * no system call. */
    if (c->state == CS_HANDLE && !c->read_paused) {
        bufferevent_disable(c->bev, EV_READ);
        c->read_paused = 1;
    }
    return 0;
}

static void conn_process(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (c->state == CS_HEAD) {
            if (avail == 0) {
                if (c->first_byte_us == 0)
                    arm_timer(c, c->srv->lim.idle_timeout_s);
                return;
            }
            if (c->first_byte_us == 0) {
                c->first_byte_us = time_mono_us();
                arm_timer(c, c->srv->lim.request_timeout_s);
            }
            avail = skip_blank_lines(in, avail);
            if (avail == 0)
                return;
            if (read_head(c, in, avail) != 0)
                return;
        } else if (c->state == CS_BODY) {
            if (read_body(c, in, avail) != 0)
                return;
        } else if (c->state == CS_LINGER) {
            c->lingered += avail;
            evbuffer_drain(in, avail);
            if (c->lingered > LINGER_MAX_BYTES)
                conn_kill(c);
            return;
        } else {
            return;
        }
    }
}

static void conn_after_reply(struct http_conn *c, int keep)
{
    c->first_byte_us = 0;
    if (!keep) {
        c->state = CS_CLOSING;
        event_del(c->timer);
        bufferevent_disable(c->bev, EV_READ);
        bufferevent_enable(c->bev, EV_WRITE);
        return;
    }
    c->state = CS_HEAD;
    if (c->read_paused) {
        bufferevent_enable(c->bev, EV_READ);
        c->read_paused = 0;
    }
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
    else
        arm_timer(c, c->srv->lim.idle_timeout_s);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_process(arg);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct http_conn *c = arg;
    if (c->state != CS_CLOSING)
        return;
    /* Everything is written: shut our side and drain the peer's rest. */
    shutdown(bufferevent_getfd(bev), SHUT_WR);
    c->state = CS_LINGER;
    bufferevent_enable(bev, EV_READ);
    arm_timer(c, LINGER_S);
    conn_process(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct http_conn *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
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
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
        port = ntohs(s4->sin_port);
        snprintf(buf, len, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
        port = ntohs(s6->sin6_port);
        snprintf(buf, len, "[%s]:%d", host, port);
    } else {
        snprintf(buf, len, "unknown");
    }
}

static void refuse_busy(evutil_socket_t fd)
{
    static const char body[] =
        "{\"type\":\"urn:clsm:problem:http\",\"title\":\"Service Unavailable\",\"status\":503,"
        "\"detail\":\"too many open connections\"}";
    char msg[512];
    int n =
        snprintf(msg, sizeof msg,
                 "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
                 "Retry-After: 1\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
                 sizeof body - 1, body);
    ssize_t w = send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    /* Read what already arrived, so that closing does not reset the
     * connection before the client has read the answer. */
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 16 && recv(fd, msg, sizeof msg, MSG_DONTWAIT) > 0; i++)
        ;
    evutil_closesocket(fd);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct http_server *srv = arg;
    struct http_conn *c;
    (void)l;
    (void)salen;

    if (srv->shutting_down || srv->nconns >= srv->lim.max_connections) {
        LOG(LOG_WARN, "api connection refused", LOG_S("reason", "connection limit"),
            LOG_I("connections", srv->nconns));
        refuse_busy(fd);
        return;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    c->srv = srv;
    c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
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
    c->state = CS_HEAD;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    struct timeval wt = {WRITE_TIMEOUT_S, 0};
    bufferevent_set_timeouts(c->bev, NULL, &wt);
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    arm_timer(c, srv->lim.idle_timeout_s);
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
        /* Idle keep-alive connections go now; busy ones after their answer. */
        if (c->state == CS_HEAD && c->first_byte_us == 0)
            conn_kill(c);
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
