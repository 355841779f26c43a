/*
 * http.h - a small HTTP/1.1 server on libevent bufferevents.
 *
 * It exists instead of libevent's evhttp because the API must answer every
 * error, including those found before a handler runs (oversized bodies,
 * malformed heads, timeouts), as application/problem+json; must choose the
 * body limit per route before reading the body; and must drain in-flight
 * requests on shutdown. It speaks HTTP/1.0 and 1.1 with keep-alive and
 * pipelining (requests on one connection are answered in order, one at a
 * time), Content-Length bodies and Expect: 100-continue. Chunked request
 * bodies are refused with 411.
 *
 * Threading: a server and its requests belong to the loop thread of the
 * event_base given at creation; call everything from that thread.
 *
 * Ownership: the server owns each struct http_request. A handler receives it
 * in on_request and must answer it exactly once with http_reply() (now or
 * later, from the same loop); the request is freed after that call, so the
 * pointer must not be used afterwards. If the peer goes away before the
 * answer, the request stays valid until http_reply(), which then discards
 * the answer.
 */
#ifndef CLSM_HTTP_H
#define CLSM_HTTP_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define HTTP_MAX_HEADERS       64
#define HTTP_MAX_QUERY_PARAMS  32
#define HTTP_MAX_PATH_SEGMENTS 16

struct http_server;
struct http_request;

struct http_header {
    char *name;
    char *value;
};

/* A parsed request head; strings point into the buffer given to
 * http_parse_head() and stay valid as long as it does. */
struct http_head {
    char *method;
    char *path;  /* request target up to '?' (still percent-encoded) */
    char *query; /* after '?', or NULL */
    int minor;   /* HTTP/1.<minor> */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t nheaders;
    long long content_length; /* -1 when absent */
    int keep_alive;
    int expect_continue;
};

/*
 * Parse a request head of 'len' bytes (up to and including the empty line)
 * in place. Returns 0, or the HTTP status to answer (400 malformed, 411
 * chunked body, 417 unknown expectation, 431 too many headers, 501 unknown
 * transfer coding, 505 version) with '*why' set to a static explanation.
 * Pure; used by the server and by the fuzz target.
 */
int http_parse_head(char *buf, size_t len, struct http_head *h, const char **why);

/* The value of header 'name' (case-insensitive), or NULL. */
const char *http_head_get(const struct http_head *h, const char *name);

/* Percent-decode 'in' (of 'len' bytes) into 'out' (at least len+1 bytes);
 * with 'form' set '+' means space. Returns the decoded length or -EINVAL for
 * a bad escape or a NUL byte. */
int http_unescape(const char *in, size_t len, char *out, int form);

struct http_limits {
    size_t max_head;   /* request line and headers, bytes */
    size_t max_body;   /* default body limit; on_head may choose another */
    size_t max_output; /* queued answer bytes before reading pauses */
    int max_connections;
    int idle_timeout_s;    /* keep-alive connection without a request */
    int request_timeout_s; /* from the first byte of a request to its last */
};

struct http_callbacks {
    /* After the head was read, before any body: return the largest body
     * accepted for this request, or -1 for the default. It may instead
     * answer the request at once with http_reply() (a refusal that needs no
     * body); then the body is never read and the connection closes after
     * the answer. May be NULL. */
    long long (*on_head)(void *arg, struct http_request *req);
    /* A complete request to answer with http_reply(). */
    void (*on_request)(void *arg, struct http_request *req);
    /* After any answer was queued, including the server's own errors:
     * 'duration_us' counts from the first byte of the request. May be NULL. */
    void (*on_done)(void *arg, struct http_request *req, int status, int64_t duration_us);
    /* Just before a request is freed, answered or abandoned: release what
     * http_req_set_data() attached. May be NULL. */
    void (*on_free)(void *arg, struct http_request *req);
    void *arg;
};

/* Create a server on 'base'. Returns NULL when out of memory. */
struct http_server *http_server_new(struct event_base *base, const struct http_limits *lim,
                                    const struct http_callbacks *cb);

/* Serve HTTPS with 'ctx' (the server takes its own reference; NULL turns
 * TLS off). Call before http_server_listen(). With a context that verifies
 * peers, every request has a client certificate (http_req_peer_cert()). */
void http_server_set_tls(struct http_server *srv, SSL_CTX *ctx);

/* Listen on 'addr'. The bound address (with the real port when 0 was given)
 * is written to 'bound' (may be NULL). Returns 0 or a negative errno. */
int http_server_listen(struct http_server *srv, const struct hostport *addr,
                       struct hostport *bound);

/* Stop accepting, close idle connections, and let requests in progress be
 * answered (their connections close afterwards). 'done' runs once no
 * connection is left. */
void http_server_shutdown(struct http_server *srv, void (*done)(void *arg), void *arg);

/* Number of open connections. */
int http_server_connections(const struct http_server *srv);

/* Close all connections and free the server. Requests not yet answered are
 * discarded; their handlers must not call http_reply() afterwards. */
void http_server_free(struct http_server *srv);

/* Accessors of a request; strings live as long as the request. */
const char *http_req_method(const struct http_request *req);
const char *http_req_path(const struct http_request *req);
const char *http_req_query(const struct http_request *req);
const char *http_req_header(const struct http_request *req, const char *name);
const char *http_req_body(const struct http_request *req, size_t *len);
const char *http_req_peer(const struct http_request *req);
/* The TLS client certificate of the connection (a new reference the caller
 * X509_free()s), or NULL for plain HTTP, no certificate, or a request whose
 * connection is gone. */
X509 *http_req_peer_cert(const struct http_request *req);
int64_t http_req_start_us(const struct http_request *req);

/* One pointer of the caller's, e.g. the matched route. */
void http_req_set_data(struct http_request *req, void *data);
void *http_req_data(const struct http_request *req);

/* Add a response header before http_reply(). The name and value are copied;
 * CR and LF are refused (-EINVAL). At most 16 headers. */
int http_add_header(struct http_request *req, const char *name, const char *value);

/* Answer the request; 'body' is copied. For HEAD the body is not sent. */
void http_reply(struct http_request *req, int status, const char *content_type, const void *body,
                size_t len);

/*
 * Streamed answers (Server-Sent Events). Instead of http_reply() a handler
 * may answer with http_stream_begin(): the status line and headers go out
 * at once (with "Connection: close"), then the body in pieces queued with
 * http_stream_write() - as chunks for HTTP/1.1, up to the close for
 * HTTP/1.0 - until http_stream_end(). The request then belongs to the
 * caller until http_stream_end(), which must be called exactly once, also
 * when http_stream_begin() failed; it frees the request (the pointer is
 * invalid afterwards) and closes the connection once the rest is written.
 * The connection's input is read and dropped while streaming, so that a
 * peer going away is noticed.
 *
 * 'closed' tells the owner that the stream cannot go on: the peer closed
 * it, failed, or did not take queued bytes for 30 s (shutdown = 0; nothing
 * can be written any more), or the server shuts down (shutdown = 1; a last
 * write is still possible). 'drained' tells that everything queued has been
 * written, so that more can follow at the reader's pace. Either may be
 * NULL; neither is called after http_stream_end(), which may be called from
 * within them.
 */
struct http_stream_cb {
    void (*closed)(void *arg, int shutdown);
    void (*drained)(void *arg);
    void *arg;
};

/* Begin a stream with 'status' and 'content_type' (headers added with
 * http_add_header() go out too); at most 'max_queued' bytes may wait
 * unwritten. Returns 0, or -EPIPE when the connection is already gone. */
int http_stream_begin(struct http_request *req, int status, const char *content_type,
                      size_t max_queued, const struct http_stream_cb *cb);

/* Queue 'len' bytes of the body. Returns 0; -ENOBUFS when they would take
 * the unwritten bytes over 'max_queued' (nothing is queued: the reader is
 * too slow); -EPIPE when the stream cannot go on. For HEAD nothing is sent. */
int http_stream_write(struct http_request *req, const void *buf, size_t len);

/* Bytes queued and not yet written (0 once the connection is gone). */
size_t http_stream_queued(const struct http_request *req);

/* End the stream and free the request; see above. */
void http_stream_end(struct http_request *req);

/* Answer with an RFC 9457 problem document built from the arguments. */
void http_reply_problem(struct http_request *req, int status, const char *type_slug,
                        const char *detail);

/* Reason phrase of a status code ("Not Found"). */
const char *http_reason(int status);

/* An RFC 9457 problem document as compact JSON text: type
 * "urn:clsm:problem:<slug>", title, status and, when not NULL, detail,
 * instance, field (a query parameter or header) and pointer (a JSON pointer
 * into the body). Invalid UTF-8 in the texts is replaced. Returns a string
 * the caller free()s, or NULL when out of memory. */
char *http_problem_body(int status, const char *slug, const char *detail, const char *instance,
                        const char *field, const char *pointer);

#endif
