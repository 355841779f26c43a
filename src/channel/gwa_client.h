/*
 * gwa_client.h - asking gateway administrators for CLS channels (DESIGN.md
 * §1 steps 3-5, §5.2; docs/protocols/gwa.md).
 *
 * clsmd posts channel requests to the GWA responsible for a gateway over
 * HTTPS with its EMT certificate. Requests to one GWA are batched, at most
 * 'max_concurrent' HTTP requests run at a time (from the registry), at most
 * 'max_pending' requests are with the GWA and not yet opened, 429 and
 * 503 answers pause that GWA for their Retry-After, other failures back off
 * exponentially. Accepted requests are tracked (status polls) until the
 * caller says the channel opened (gwa_client_done()) or the GWA reports a
 * failure, which is passed on with the GWA's reason.
 *
 * libcurl's multi interface runs on the caller's event loop; everything
 * here is for that loop's thread.
 */
#ifndef CLSM_GWA_CLIENT_H
#define CLSM_GWA_CLIENT_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

struct store;
struct gwa_client;

struct gwa_client_config {
    const char *emt_id;   /* our name towards the GWA */
    const char *endpoint; /* host:port gateways dial for channels */
    const char *cert;     /* EMT certificate and key (PEM files) */
    const char *key;
    const char *ca;     /* what a GWA's server certificate must chain to */
    const char *curves; /* TLS profile (tls.h) */
    const char *ciphers;
    int timeout_s;      /* per HTTP request */
    int batch_max;      /* channel requests per HTTP request */
    int max_pending;    /* per GWA: submitted, not yet opened (0: no limit) */
    int retry_max_s;    /* longest back-off */
    int channel_wait_s; /* accepted: time until the gateway must dial in */
    int poll_s;         /* status polls of accepted requests */
};

/* How a channel request ended, for the callback. */
enum gwa_outcome {
    GWA_ACCEPTED, /* the GWA took it; the gateway should dial in */
    GWA_REFUSED,  /* the GWA refused it (403, 404, ...) or reported failure */
    GWA_EXPIRED,  /* accepted, but no channel within channel_wait_s */
};

/* Called once when a request is accepted, and once more if it later fails
 * or expires. 'reason' is the GWA's text (or ours) and 'status' the HTTP
 * status behind a refusal (0 otherwise). Valid during the call only. */
typedef void (*gwa_result_fn)(void *arg, const char *device, enum gwa_outcome outcome, int status,
                              const char *reason);

/* Create the client. 'store' (borrowed) gives GWA endpoints and limits.
 * Returns NULL on failure. */
struct gwa_client *gwa_client_new(struct event_base *base, struct store *store,
                                  const struct gwa_client_config *cfg, gwa_result_fn fn, void *arg);
void gwa_client_free(struct gwa_client *g);

/*
 * Ask for a channel to 'device' behind gateway 'smgw' (the GWA is found in
 * the registry). Urgent requests (grid work) leave our queue before all
 * others; each kind in the order asked. A request already pending for the
 * device is not repeated, but moves ahead when now asked for urgently.
 * Returns 0, -ENOENT (gateway or GWA unknown), or -ENOMEM.
 */
int gwa_client_request(struct gwa_client *g, const char *smgw, const char *device, bool urgent);

/* The channel to 'device' opened (or is no longer wanted): stop tracking. */
void gwa_client_done(struct gwa_client *g, const char *device);

/* For metrics: requests in our queue, HTTPS exchanges in flight, and
 * requests with the GWAs (submitted, not yet opened). */
void gwa_client_counts(const struct gwa_client *g, int *queued, int *exchanges, int *with_gwa);

#endif
