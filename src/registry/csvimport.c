/*
 * csvimport.c - CSV to import document; see csvimport.h.
 */
#include "registry/csvimport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/csv.h"

#define MAX_COLUMNS 64

struct conv {
    const struct reg_kind *kind;
    const struct reg_field *cols[MAX_COLUMNS];
    size_t ncols;
    json_t *items;
    size_t *lines;
    size_t nlines, cap;
    char *msg;
    size_t msglen;
};

static int header(struct conv *cv, size_t line, char **fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct reg_field *f = reg_field(cv->kind, fields[i]);
        if (f == NULL || (f->flags & (RF_READONLY | RF_SERVER))) {
            snprintf(cv->msg, cv->msglen,
                     "line %zu: column \"%.64s\" is not a writable field of %s", line, fields[i],
                     cv->kind->name);
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (cv->cols[j] == f) {
                snprintf(cv->msg, cv->msglen, "line %zu: column \"%s\" appears twice", line,
                         f->name);
                return -EINVAL;
            }
        }
        cv->cols[i] = f;
    }
    cv->ncols = n;
    return 0;
}

static int record(void *arg, size_t line, char **fields, size_t n)
{
    struct conv *cv = arg;
    if (cv->ncols == 0)
        return header(cv, line, fields, n);
    if (n != cv->ncols) {
        snprintf(cv->msg, cv->msglen, "line %zu: %zu fields, but the header has %zu", line, n,
                 cv->ncols);
        return -EINVAL;
    }
    json_t *obj = json_object();
    for (size_t i = 0; i < n; i++) {
        char m[160];
        if (fields[i][0] == '\0')
            continue;
        json_t *v = reg_value_from_text(cv->cols[i], fields[i], m, sizeof m);
        if (v == NULL) {
            snprintf(cv->msg, cv->msglen, "line %zu: %s", line, m);
            json_decref(obj);
            return -EINVAL;
        }
        json_object_set_new(obj, cv->cols[i]->name, v);
    }
    if (cv->nlines == cv->cap) {
        size_t nc = cv->cap ? cv->cap * 2 : 64;
        size_t *nl = realloc(cv->lines, nc * sizeof *nl);
        if (nl == NULL) {
            json_decref(obj);
            return -ENOMEM;
        }
        cv->lines = nl;
        cv->cap = nc;
    }
    cv->lines[cv->nlines++] = line;
    json_array_append_new(cv->items, obj);
    return 0;
}

int reg_csv_to_import(const char *buf, size_t len, const struct reg_kind *k, json_t **doc,
                      size_t **lines, char *msg, size_t msglen)
{
    struct csv_limits lim = {MAX_COLUMNS, 4096, CSV_IMPORT_MAX_RECORDS + 1};
    struct conv cv;
    int rc;

    memset(&cv, 0, sizeof cv);
    cv.kind = k;
    cv.items = json_array();
    cv.msg = msg;
    cv.msglen = msglen;
    *doc = NULL;
    *lines = NULL;
    rc = csv_parse(buf, len, csv_guess_delimiter(buf, len), &lim, record, &cv, msg, msglen);
    if (rc == 0 && cv.ncols == 0) {
        snprintf(msg, msglen, "the file has no header line");
        rc = -EINVAL;
    }
    if (rc != 0) {
        json_decref(cv.items);
        free(cv.lines);
        return rc == -ENOMEM ? rc : (rc == -E2BIG ? -E2BIG : -EINVAL);
    }
    *doc = json_pack("{s:o}", k->plural, cv.items);
    *lines = cv.lines;
    return 0;
}
