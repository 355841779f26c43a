/*
 * strmap.h - a table from strings to pointers: chained hashing (FNV-1a),
 * doubling at a load factor of 1, each key copied into its entry. A zeroed
 * struct strmap is an empty table. Iterate over 'b[0..nb)' and each chain.
 */
#ifndef CLSM_STRMAP_H
#define CLSM_STRMAP_H

#include <stddef.h>

struct strmap_ent {
    struct strmap_ent *next;
    void *val;
    char key[];
};

struct strmap {
    struct strmap_ent **b;
    size_t nb, n;
};

void *strmap_get(const struct strmap *m, const char *key);
/* Add or replace: 0 or -ENOMEM. */
int strmap_put(struct strmap *m, const char *key, void *val);
void strmap_del(struct strmap *m, const char *key);
/* Empty the table, calling 'free_val' (may be NULL) on every value. */
void strmap_clear(struct strmap *m, void (*free_val)(void *));

#endif
