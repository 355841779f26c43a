/*
 * test_metrics.c - counters and histograms in the Prometheus text format.
 */
#include <event2/buffer.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "api/metrics.h"

static void test_render(void **state)
{
    struct metrics *m = metrics_new(2);
    struct evbuffer *b = evbuffer_new();
    (void)state;
    metrics_label(m, 0, "GET", "/v1/a");
    metrics_label(m, 1, "POST", "/v1/a");
    metrics_observe(m, 0, 200, 300);  /* 0.3 ms */
    metrics_observe(m, 0, 200, 3000); /* 3 ms */
    metrics_observe(m, 0, 404, 10);
    metrics_observe(m, -1, 404, 10);
    metrics_observe(m, 1, 422, 5000000); /* above every bound */
    metrics_render(m, b);
    evbuffer_add(b, "", 1);
    const char *t = (const char *)evbuffer_pullup(b, -1);
    assert_non_null(
        strstr(t, "clsm_http_requests_total{method=\"GET\",route=\"/v1/a\",status=\"200\"} 2\n"));
    assert_non_null(
        strstr(t, "clsm_http_requests_total{method=\"GET\",route=\"/v1/a\",status=\"404\"} 1\n"));
    assert_non_null(strstr(t, "route=\"unmatched\",status=\"404\"} 1\n"));
    assert_non_null(strstr(t, "clsm_http_request_duration_seconds_bucket{method=\"GET\",route=\"/"
                              "v1/a\",le=\"0.0005\"} 2\n"));
    assert_non_null(strstr(t, "clsm_http_request_duration_seconds_bucket{method=\"GET\",route=\"/"
                              "v1/a\",le=\"0.005\"} 3\n"));
    assert_non_null(strstr(t, "clsm_http_request_duration_seconds_bucket{method=\"POST\",route=\"/"
                              "v1/a\",le=\"2.5\"} 0\n"));
    assert_non_null(strstr(t, "clsm_http_request_duration_seconds_bucket{method=\"POST\",route=\"/"
                              "v1/a\",le=\"+Inf\"} 1\n"));
    assert_non_null(
        strstr(t, "clsm_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/a\"} 3\n"));
    assert_int_equal(metrics_count_status(m, 404), 2);
    assert_int_equal(metrics_count_status(m, 500), 0);
    evbuffer_free(b);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_render)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
