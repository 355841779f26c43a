/*
 * log.h - structured logging in logfmt, one line per event, to stderr.
 *
 * Every line reads `ts=... level=... msg="..." key=value ...`. Values are quoted
 * and escaped when needed, so that outside strings (paths, ids) can never forge
 * a field or a line. The level is checked before any field is formatted.
 *
 * The logger is the one piece of process-wide state: the level and output are
 * set once at start-up by log_init() before any other thread exists; after that
 * the functions here may be called from any thread (each line is one write()).
 */
#ifndef CLSM_LOG_H
#define CLSM_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

enum log_ftype { LOG_FT_STR, LOG_FT_INT, LOG_FT_DBL };

/* One key=value field. Build them with the LOG_S/LOG_I/LOG_D macros. */
struct log_field {
    const char *key;
    enum log_ftype type;
    const char *s;
    long long i;
    double d;
};

#define LOG_S(k, v) ((struct log_field){.key = (k), .type = LOG_FT_STR, .s = (v)})
#define LOG_I(k, v) ((struct log_field){.key = (k), .type = LOG_FT_INT, .i = (long long)(v)})
#define LOG_D(k, v) ((struct log_field){.key = (k), .type = LOG_FT_DBL, .d = (double)(v)})

/* Set the minimum level and the output descriptor (normally 2). Call once at
 * start-up. */
void log_init(enum log_level min, int fd);

/* Parse "debug", "info", "warn" or "error". Returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

/* Name of a level ("info", ...). */
const char *log_level_name(enum log_level lvl);

/* Nonzero when lines at 'lvl' are written. */
int log_enabled(enum log_level lvl);

/* Write one line with 'n' fields. A NULL string value is written as "". Lines
 * longer than 4 KiB are cut at a field boundary and marked truncated=1. */
void log_emit(enum log_level lvl, const char *msg, const struct log_field *f, size_t n);

/* LOG(level, "message", LOG_S("smgw", id), LOG_I("status", 200)); at least one
 * field; use LOGM() for a message without fields. */
#define LOG(lvl, msg, ...)                                                    \
    do {                                                                      \
        if (log_enabled(lvl)) {                                               \
            const struct log_field log_f_[] = {__VA_ARGS__};                  \
            log_emit((lvl), (msg), log_f_, sizeof log_f_ / sizeof log_f_[0]); \
        }                                                                     \
    } while (0)

#define LOGM(lvl, msg)                       \
    do {                                     \
        if (log_enabled(lvl))                \
            log_emit((lvl), (msg), NULL, 0); \
    } while (0)

#endif
