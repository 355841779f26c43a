/*
 * curlev.h - libcurl's multi interface driven by a libevent loop: the
 * outbound HTTP(S) of the GWA client and of the webhooks.
 *
 * The caller prepares easy handles (with CURLOPT_PRIVATE to find its own
 * state again) and adds them; when a transfer ends, the handle is taken out
 * of the multi handle and 'done' is called with it and its result. The
 * caller then frees the easy handle. Everything runs on the loop thread.
 */
#ifndef CLSM_CURLEV_H
#define CLSM_CURLEV_H

#include <curl/curl.h>
#include <event2/event.h>

struct curlev;

typedef void (*curlev_done_fn)(void *arg, CURL *easy, CURLcode result);

/* NULL when out of memory. */
struct curlev *curlev_new(struct event_base *base, curlev_done_fn done, void *arg);
/* Start a transfer: 0, or -ENOMEM (libcurl refused the handle). */
int curlev_add(struct curlev *c, CURL *easy);
/* Abandon a transfer in progress ('done' is not called for it). */
void curlev_remove(struct curlev *c, CURL *easy);
void curlev_free(struct curlev *c);

#endif
