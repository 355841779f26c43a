/*
 * http_parse.c - the pure part of the HTTP/1.1 server: request heads,
 * percent-decoding, reason phrases and problem documents. No I/O and no
 * state; the fuzz target drives it directly. See http.h.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/http.h"
#include "common/jsonx.h"

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

char *http_problem_body(int status, const char *slug, const char *detail, const char *instance,
                        const char *field, const char *pointer)
{
    char type[96], text[512];
    json_t *p;
    char *out;

    snprintf(type, sizeof type, "urn:clsm:problem:%s", slug);
    p = json_pack("{s:s, s:s, s:i}", "type", type, "title", http_reason(status), "status", status);
    if (p == NULL)
        return NULL;
    /* Each text may quote decoded bytes from outside, or end in a cut
     * character; the document must still be JSON. */
    const char *const names[] = {"detail", "instance", "field", "pointer"};
    const char *const values[] = {detail, instance, field, pointer};
    for (size_t i = 0; i < 4; i++) {
        if (values[i] == NULL)
            continue;
        snprintf(text, sizeof text, "%s", values[i]);
        jsonx_utf8_repair(text);
        json_object_set_new(p, names[i], json_string(text));
    }
    out = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    return out;
}
