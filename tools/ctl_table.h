/*
 * ctl_table.h - aligned text tables for clsmctl's human-readable output.
 *
 * A table copies every cell it is given and frees them in table_free().
 */
#ifndef CLSM_CTL_TABLE_H
#define CLSM_CTL_TABLE_H

#include <jansson.h>
#include <stdio.h>

struct table;

/* A table with 'ncols' columns named by 'headers' (copied). NULL on OOM. */
struct table *table_new(size_t ncols, const char *const *headers);
void table_free(struct table *t);

/* Append a row of 'ncols' cells (copied; NULL prints as "-"). Returns 0 or
 * -ENOMEM. */
int table_add(struct table *t, const char *const *cells);

/* Mark column 'col' as numeric (right-aligned). */
void table_numeric(struct table *t, size_t col);

/* Print with columns separated by two spaces. */
void table_print(const struct table *t, FILE *out);

/* Render a JSON scalar or array as cell text into 'buf': null as "-",
 * arrays joined with '|'. */
const char *table_cell(const json_t *v, char *buf, size_t len);

#endif
