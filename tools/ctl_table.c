/*
 * ctl_table.c - aligned text tables; see ctl_table.h.
 */
#include "ctl_table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct table {
    size_t ncols, nrows, cap;
    char **cells; /* row-major; row 0 is the header */
    unsigned char *numeric;
};

static char *dup_or_dash(const char *s)
{
    return strdup(s ? s : "-");
}

struct table *table_new(size_t ncols, const char *const *headers)
{
    struct table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->ncols = ncols;
    t->numeric = calloc(ncols, 1);
    if (t->numeric == NULL || table_add(t, headers) != 0) {
        table_free(t);
        return NULL;
    }
    return t;
}

void table_free(struct table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->numeric);
    free(t);
}

int table_add(struct table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        char **n = realloc(t->cells, nc * t->ncols * sizeof *n);
        if (n == NULL)
            return -ENOMEM;
        t->cells = n;
        t->cap = nc;
    }
    for (size_t c = 0; c < t->ncols; c++) {
        t->cells[t->nrows * t->ncols + c] = dup_or_dash(cells[c]);
        if (t->cells[t->nrows * t->ncols + c] == NULL) {
            for (size_t k = 0; k < c; k++)
                free(t->cells[t->nrows * t->ncols + k]);
            return -ENOMEM;
        }
    }
    t->nrows++;
    return 0;
}

void table_numeric(struct table *t, size_t col)
{
    if (col < t->ncols)
        t->numeric[col] = 1;
}

void table_print(const struct table *t, FILE *out)
{
    size_t *w = calloc(t->ncols, sizeof *w);
    if (w == NULL)
        return;
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t l = strlen(t->cells[r * t->ncols + c]);
            if (l > w[c])
                w[c] = l;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            int width = (int)w[c];
            if (c + 1 == t->ncols && !t->numeric[c])
                fprintf(out, "%s", s);
            else if (t->numeric[c] && r > 0)
                fprintf(out, "%*s%s", width, s, c + 1 < t->ncols ? "  " : "");
            else
                fprintf(out, "%-*s%s", width, s, c + 1 < t->ncols ? "  " : "");
        }
        fputc('\n', out);
    }
    free(w);
}

const char *table_cell(const json_t *v, char *buf, size_t len)
{
    size_t i, n = 0;
    json_t *e;

    switch (json_typeof(v)) {
    case JSON_STRING:
        snprintf(buf, len, "%s", json_string_value(v));
        break;
    case JSON_INTEGER:
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(buf, len, "%g", json_real_value(v));
        break;
    case JSON_TRUE:
        snprintf(buf, len, "true");
        break;
    case JSON_FALSE:
        snprintf(buf, len, "false");
        break;
    case JSON_ARRAY:
        buf[0] = '\0';
        json_array_foreach(v, i, e)
        {
            char part[256];
            table_cell(e, part, sizeof part);
            int k = snprintf(buf + n, len - n, "%s%s", i ? "|" : "", part);
            if (k < 0 || (size_t)k >= len - n)
                break;
            n += (size_t)k;
        }
        break;
    default:
        snprintf(buf, len, "-");
    }
    return buf;
}
