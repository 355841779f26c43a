/*
 * metrics.c - per-route counters and histograms; see metrics.h.
 */
#include "api/metrics.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_STATUSES 16

static const double bounds_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                  0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
#define NBUCKETS (sizeof bounds_s / sizeof bounds_s[0])

struct slot {
    const char *method, *pattern;
    struct {
        int status;
        uint64_t count;
    } statuses[MAX_STATUSES];
    uint64_t buckets[NBUCKETS + 1]; /* last: above every bound */
    uint64_t count;
    double sum_s;
};

struct metrics {
    size_t n;
    struct slot *slots; /* n + 1: the last is "unmatched" */
};

struct metrics *metrics_new(size_t n)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->slots = calloc(n + 1, sizeof *m->slots);
    if (m->slots == NULL) {
        free(m);
        return NULL;
    }
    m->n = n;
    return m;
}

void metrics_label(struct metrics *m, size_t i, const char *method, const char *pattern)
{
    if (i < m->n) {
        m->slots[i].method = method;
        m->slots[i].pattern = pattern;
    }
}

void metrics_free(struct metrics *m)
{
    if (m) {
        free(m->slots);
        free(m);
    }
}

void metrics_observe(struct metrics *m, int route, int status, int64_t duration_us)
{
    struct slot *s = &m->slots[route >= 0 && (size_t)route < m->n ? (size_t)route : m->n];
    double d = (double)duration_us / 1e6;
    size_t b = 0;

    for (size_t i = 0; i < MAX_STATUSES; i++) {
        if (s->statuses[i].status == status || s->statuses[i].status == 0) {
            s->statuses[i].status = status;
            s->statuses[i].count++;
            break;
        }
    }
    while (b < NBUCKETS && d > bounds_s[b])
        b++;
    s->buckets[b]++;
    s->count++;
    s->sum_s += d;
}

static void labels(const struct metrics *m, size_t i, char *buf, size_t len)
{
    if (i < m->n)
        snprintf(buf, len, "method=\"%s\",route=\"%s\"", m->slots[i].method, m->slots[i].pattern);
    else
        snprintf(buf, len, "method=\"\",route=\"unmatched\"");
}

void metrics_render(const struct metrics *m, struct evbuffer *out)
{
    char lb[256];

    evbuffer_add_printf(out, "# HELP clsm_http_requests_total API requests answered, by route "
                             "and status.\n# TYPE clsm_http_requests_total counter\n");
    for (size_t i = 0; i <= m->n; i++) {
        labels(m, i, lb, sizeof lb);
        for (size_t k = 0; k < MAX_STATUSES && m->slots[i].statuses[k].status; k++)
            evbuffer_add_printf(out, "clsm_http_requests_total{%s,status=\"%d\"} %llu\n", lb,
                                m->slots[i].statuses[k].status,
                                (unsigned long long)m->slots[i].statuses[k].count);
    }
    evbuffer_add_printf(out, "# HELP clsm_http_request_duration_seconds Time from the first "
                             "byte of a request to its answer.\n"
                             "# TYPE clsm_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= m->n; i++) {
        const struct slot *s = &m->slots[i];
        uint64_t cum = 0;
        if (s->count == 0)
            continue;
        labels(m, i, lb, sizeof lb);
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += s->buckets[b];
            evbuffer_add_printf(out,
                                "clsm_http_request_duration_seconds_bucket{%s,le=\"%g\"} %llu\n",
                                lb, bounds_s[b], (unsigned long long)cum);
        }
        evbuffer_add_printf(out, "clsm_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n",
                            lb, (unsigned long long)s->count);
        evbuffer_add_printf(out, "clsm_http_request_duration_seconds_sum{%s} %.6f\n", lb, s->sum_s);
        evbuffer_add_printf(out, "clsm_http_request_duration_seconds_count{%s} %llu\n", lb,
                            (unsigned long long)s->count);
    }
}

uint64_t metrics_count_status(const struct metrics *m, int status)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= m->n; i++)
        for (size_t k = 0; k < MAX_STATUSES; k++)
            if (m->slots[i].statuses[k].status == status)
                n += m->slots[i].statuses[k].count;
    return n;
}
