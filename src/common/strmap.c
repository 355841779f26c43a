/*
 * strmap.c - a string-keyed table; see strmap.h.
 */
#include "common/strmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

void *strmap_get(const struct strmap *m, const char *key)
{
    if (m->nb == 0)
        return NULL;
    for (struct strmap_ent *e = m->b[hash(key) & (m->nb - 1)]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e->val;
    return NULL;
}

static int grow(struct strmap *m)
{
    size_t nb = m->nb ? m->nb * 2 : 64;
    struct strmap_ent **b = calloc(nb, sizeof *b);
    if (b == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < m->nb; i++) {
        for (struct strmap_ent *e = m->b[i], *n; e; e = n) {
            n = e->next;
            size_t k = hash(e->key) & (nb - 1);
            e->next = b[k];
            b[k] = e;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

int strmap_put(struct strmap *m, const char *key, void *val)
{
    if (m->nb == 0 || m->n >= m->nb) {
        if (grow(m) != 0)
            return -ENOMEM;
    }
    size_t k = hash(key) & (m->nb - 1);
    for (struct strmap_ent *e = m->b[k]; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            e->val = val;
            return 0;
        }
    }
    size_t len = strlen(key) + 1;
    struct strmap_ent *e = malloc(sizeof *e + len);
    if (e == NULL)
        return -ENOMEM;
    memcpy(e->key, key, len);
    e->val = val;
    e->next = m->b[k];
    m->b[k] = e;
    m->n++;
    return 0;
}

void strmap_del(struct strmap *m, const char *key)
{
    if (m->nb == 0)
        return;
    for (struct strmap_ent **p = &m->b[hash(key) & (m->nb - 1)]; *p; p = &(*p)->next) {
        if (strcmp((*p)->key, key) == 0) {
            struct strmap_ent *e = *p;
            *p = e->next;
            free(e);
            m->n--;
            return;
        }
    }
}

void strmap_clear(struct strmap *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->nb; i++) {
        for (struct strmap_ent *e = m->b[i], *n; e; e = n) {
            n = e->next;
            if (free_val)
                free_val(e->val);
            free(e);
        }
    }
    free(m->b);
    m->b = NULL;
    m->nb = m->n = 0;
}
