/*
 * csv.c - the CSV state machine; see csv.h.
 */
#include "common/csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct csv_state {
    const struct csv_limits *lim;
    char **fields;
    char *buf; /* all fields of the record, NUL-separated */
    size_t buflen, bufcap;
    size_t *starts;
    size_t nfields;
    size_t records;
    char *msg;
    size_t msglen;
};

static int err(struct csv_state *st, int rc, size_t line, const char *what)
{
    if (st->msg)
        snprintf(st->msg, st->msglen, "line %zu: %s", line, what);
    return rc;
}

static int put_byte(struct csv_state *st, char c, size_t fieldlen, size_t line)
{
    if (fieldlen >= st->lim->max_field_len)
        return err(st, -E2BIG, line, "field too long");
    if (st->buflen + 1 >= st->bufcap)
        return -ENOMEM; /* cannot happen: sized from the limits */
    st->buf[st->buflen++] = c;
    return 0;
}

static int end_field(struct csv_state *st, size_t line)
{
    if (st->nfields >= st->lim->max_fields)
        return err(st, -E2BIG, line, "too many fields");
    st->buf[st->buflen++] = '\0';
    st->nfields++;
    if (st->nfields < st->lim->max_fields)
        st->starts[st->nfields] = st->buflen;
    return 0;
}

static int end_record(struct csv_state *st, size_t line, csv_record_fn fn, void *arg)
{
    if (++st->records > st->lim->max_records)
        return err(st, -E2BIG, line, "too many records");
    for (size_t i = 0; i < st->nfields; i++)
        st->fields[i] = st->buf + st->starts[i];
    int rc = fn(arg, line, st->fields, st->nfields);
    st->nfields = 0;
    st->buflen = 0;
    st->starts[0] = 0;
    return rc;
}

static int run(struct csv_state *st, const char *p, const char *end, char delim, csv_record_fn fn,
               void *arg)
{
    size_t line = 1, rec_line = 1, flen = 0;
    int quoted = 0, in_field = 0, after_quote = 0, rc;

    while (p < end) {
        char c = *p++;
        if (c == '\0')
            return err(st, -EINVAL, line, "NUL byte");
        if (quoted) {
            if (c == '"') {
                if (p < end && *p == '"') {
                    p++;
                    if ((rc = put_byte(st, '"', flen++, line)))
                        return rc;
                } else {
                    quoted = 0;
                    after_quote = 1;
                }
                continue;
            }
            if (c == '\n')
                line++;
            if ((rc = put_byte(st, c, flen++, line)))
                return rc;
            continue;
        }
        if (c == '\r' && p < end && *p == '\n')
            c = *p++;
        if (c == delim || c == '\n') {
            if (c == '\n' && !in_field && st->nfields == 0) {
                line++; /* empty line */
                rec_line = line;
                continue;
            }
            if ((rc = end_field(st, line)))
                return rc;
            flen = 0;
            after_quote = 0;
            in_field = c == delim;
            if (c == '\n') {
                if ((rc = end_record(st, rec_line, fn, arg)))
                    return rc;
                line++;
                rec_line = line;
            }
            continue;
        }
        if (after_quote)
            return err(st, -EINVAL, line, "text after a closing quote");
        if (c == '"') {
            if (flen > 0)
                return err(st, -EINVAL, line, "quote inside an unquoted field");
            quoted = 1;
            in_field = 1;
            continue;
        }
        if (c == '\r')
            return err(st, -EINVAL, line, "bare carriage return");
        in_field = 1;
        if ((rc = put_byte(st, c, flen++, line)))
            return rc;
    }
    if (quoted)
        return err(st, -EINVAL, line, "unterminated quoted field");
    if (in_field || st->nfields > 0) {
        if ((rc = end_field(st, line)))
            return rc;
        return end_record(st, rec_line, fn, arg);
    }
    return 0;
}

int csv_parse(const char *buf, size_t len, char delim, const struct csv_limits *lim,
              csv_record_fn fn, void *arg, char *msg, size_t msglen)
{
    struct csv_state st;
    int rc;

    memset(&st, 0, sizeof st);
    st.lim = lim;
    st.msg = msg;
    st.msglen = msglen;
    st.bufcap = lim->max_fields * (lim->max_field_len + 1) + 1;
    st.buf = malloc(st.bufcap);
    st.fields = calloc(lim->max_fields + 1, sizeof *st.fields);
    st.starts = calloc(lim->max_fields + 1, sizeof *st.starts);
    if (st.buf == NULL || st.fields == NULL || st.starts == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
        buf += 3;
        len -= 3;
    }
    rc = run(&st, buf, buf + len, delim, fn, arg);
out:
    free(st.buf);
    free(st.fields);
    free(st.starts);
    return rc;
}

char csv_guess_delimiter(const char *buf, size_t len)
{
    int semi = 0, comma = 0;
    for (size_t i = 0; i < len && buf[i] != '\n'; i++) {
        semi += buf[i] == ';';
        comma += buf[i] == ',';
    }
    return semi > 0 && comma == 0 ? ';' : ',';
}
