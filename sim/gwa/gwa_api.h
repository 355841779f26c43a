/*
 * gwa_api.h - the HTTPS side of the GWA simulator (docs/protocols/gwa.md):
 * channel requests and status polls from EMTs, order fetches from woken
 * gateways, plus /healthz and /v1/stats for tests, with fault injection
 * (latency, 503 share, 429 throttle).
 *
 * Clients are told apart by their verified TLS certificate: an EMT has a
 * leaf issued by the EMT sub-CA whose CN is an id such as "clsmd"; a gateway
 * one issued by the SMGW sub-CA whose CN is a gateway id. Anything else
 * (a GWA certificate, say) may only read /healthz and /v1/stats.
 *
 * Threading and ownership: everything belongs to the loop thread of the
 * event_base given at creation. The api borrows the fleet, the order table,
 * the waker and the CA certificates, which must outlive it, and takes its
 * own reference to the TLS context.
 */
#ifndef CLSM_GWA_API_H
#define CLSM_GWA_API_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "gwa/gwa_fleet.h"
#include "gwa/gwa_orders.h"
#include "gwa/gwa_waker.h"

#define GWA_API_MAX_EMTS     64
#define GWA_API_MAX_REQUESTS 1000    /* channel requests or ids per POST */
#define GWA_API_MAX_BODY     1048576 /* 1 MiB, as the interface says */
#define GWA_API_MAX_FETCH    1000    /* orders per GET /v1/orders answer */

struct gwa_api_config {
    const char *gwa_id;
    const char *const *emts; /* EMTs entitled to reach every CLS of our gateways */
    size_t nemts;            /* 1 .. GWA_API_MAX_EMTS */
    int latency_ms;          /* every answer waits this long */
    int fail503_pct;         /* share of channel-request POSTs answered 503 */
    int throttle;            /* channel-request POSTs per second, 0 = no limit */
    uint64_t seed;
    int max_connections;
    SSL_CTX *tls;           /* verifies clients against the root */
    X509 *emt_ca, *smgw_ca; /* sub-CAs that tell EMTs and gateways apart */
};

struct gwa_api;

/* Create the API. Returns NULL when out of memory. */
struct gwa_api *gwa_api_new(struct event_base *base, const struct gwa_api_config *cfg,
                            struct gwa_fleet *fleet, struct gwa_orders *orders,
                            struct gwa_waker *waker);

/* Listen on 'addr'; the bound address goes to 'bound'. Returns 0 or a
 * negative errno. */
int gwa_api_listen(struct gwa_api *api, const struct hostport *addr, struct hostport *bound);

/* Stop accepting; requests in progress (also those held back by the
 * latency fault) are answered. 'done' runs once no connection is left. */
void gwa_api_shutdown(struct gwa_api *api, void (*done)(void *arg), void *arg);

/* Answer what is still held back, close everything and free the API;
 * NULL is ignored. */
void gwa_api_free(struct gwa_api *api);

#endif
