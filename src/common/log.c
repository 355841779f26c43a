/*
 * log.c - logfmt lines to one descriptor; see log.h.
 */
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static struct {
    enum log_level min;
    int fd;
} logger = {LOG_INFO, 2};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(enum log_level min, int fd)
{
    logger.min = min;
    logger.fd = fd;
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *log_level_name(enum log_level lvl)
{
    return level_names[lvl];
}

int log_enabled(enum log_level lvl)
{
    return lvl >= logger.min;
}

struct line {
    char buf[LOG_LINE_MAX];
    size_t len;
    int full;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (l->full || l->len + n > sizeof l->buf - 32) {
        l->full = 1;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static int needs_quotes(const char *s)
{
    if (*s == '\0')
        return 1;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f)
            return 1;
    }
    return 0;
}

/* Values are escaped so that a line stays one line of printable ASCII. */
static void put_value(struct line *l, const char *s)
{
    if (!needs_quotes(s)) {
        put(l, s, strlen(s));
        return;
    }
    put(l, "\"", 1);
    for (; *s && !l->full; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c == '\n') {
            put(l, "\\n", 2);
        } else if (c < ' ' || c >= 0x7f) {
            int n = snprintf(esc, sizeof esc, "\\x%02x", c);
            put(l, esc, (size_t)n);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
    put(l, "\"", 1);
}

static void put_time(struct line *l)
{
    struct timespec ts;
    struct tm tm;
    char b[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(b, sizeof b, "ts=%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(b + n, sizeof b - n, ".%03ldZ", ts.tv_nsec / 1000000);
    put(l, b, n + (size_t)m);
}

void log_emit(enum log_level lvl, const char *msg, const struct log_field *f, size_t n)
{
    struct line l;
    char num[40];

    l.len = 0;
    l.full = 0;
    put_time(&l);
    put(&l, " level=", 7);
    put(&l, level_names[lvl], strlen(level_names[lvl]));
    put(&l, " msg=", 5);
    put_value(&l, msg ? msg : "");
    for (size_t i = 0; i < n && !l.full; i++) {
        size_t before = l.len;
        put(&l, " ", 1);
        put(&l, f[i].key, strlen(f[i].key));
        put(&l, "=", 1);
        if (f[i].type == LOG_FT_STR) {
            put_value(&l, f[i].s ? f[i].s : "");
        } else if (f[i].type == LOG_FT_INT) {
            int k = snprintf(num, sizeof num, "%lld", f[i].i);
            put(&l, num, (size_t)k);
        } else {
            int k = snprintf(num, sizeof num, "%.6g", f[i].d);
            put(&l, num, (size_t)k);
        }
        if (l.full)
            l.len = before;
    }
    if (l.full) {
        /* Room for this was reserved by put(). */
        memcpy(l.buf + l.len, " truncated=1", 12);
        l.len += 12;
    }
    l.buf[l.len++] = '\n';
    ssize_t off = 0;
    while ((size_t)off < l.len) {
        ssize_t w = write(logger.fd, l.buf + off, l.len - (size_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += w;
    }
}
