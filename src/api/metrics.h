/*
 * metrics.h - request counters and latency histograms per API route, in
 * the Prometheus text format.
 *
 * One slot per route (method + pattern) and one for requests that matched
 * none. Owned by the API loop thread; not thread-safe.
 */
#ifndef CLSM_METRICS_H
#define CLSM_METRICS_H

#include <event2/buffer.h>
#include <stddef.h>
#include <stdint.h>

struct metrics;

/* Metrics for 'n' routes. Returns NULL when out of memory. */
struct metrics *metrics_new(size_t n);

/* Name route 'i' for the labels; the strings must outlive the metrics. */
void metrics_label(struct metrics *m, size_t i, const char *method, const char *pattern);
void metrics_free(struct metrics *m);

/* Count one answered request of route 'route' (0..n-1, or -1 for none). */
void metrics_observe(struct metrics *m, int route, int status, int64_t duration_us);

/* Append the counters and histograms to 'out'. */
void metrics_render(const struct metrics *m, struct evbuffer *out);

/* Total requests observed with this status (all routes); for tests. */
uint64_t metrics_count_status(const struct metrics *m, int status);

#endif
