/*
 * gwa_waker.h - wake-ups of the GWA simulator: signed UDP datagrams
 * (docs/protocols/wakeup.md) to the gateways that have open orders, sent
 * again while the orders are not fetched, until the orders fail.
 *
 * Wake-ups are per gateway: one datagram wakes a gateway for all its open
 * orders, and each of them counts it as one attempt. A gateway that needs a
 * wake-up joins a send queue; the queue is worked off from the event loop
 * in slices of 5 ms of signing, with the sockets served in between (a
 * signature costs 25 us on P-256 and 340 us on brainpoolP256r1, so a burst
 * of 10,000 gateways must not stall the HTTP side). After each
 * wake-up the gateway waits 'interval_ms'; if it still has open orders
 * then, those that have seen 'retries' attempts fail ("the gateway did not
 * answer the wake-up") and the others are woken again. Since the interval
 * is one constant, the waiting gateways form a FIFO list with one timer.
 *
 * Threading and ownership: the waker belongs to the loop thread of
 * 'base'. It borrows the order table, the key and the fleet's gateways
 * (using their wake fields); all must outlive it.
 */
#ifndef CLSM_GWA_WAKER_H
#define CLSM_GWA_WAKER_H

#include <event2/event.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gwa/gwa_fleet.h"
#include "gwa/gwa_orders.h"

#define GWA_WAKER_FAILED_REASON "the gateway did not answer the wake-up"

struct gwa_waker_config {
    const char *gwa_id;             /* named in every datagram */
    EVP_PKEY *key;                  /* the GWA's signing key, borrowed */
    struct sockaddr_storage target; /* the gateway fleet simulator */
    socklen_t target_len;
    int retries;         /* attempts before an order fails, 1 .. 255 */
    int64_t interval_ms; /* between attempts */
    int drop_pct;        /* share of wake-ups not sent (fault injection) */
    uint64_t seed;
};

struct gwa_waker_counts {
    uint64_t sent;    /* datagrams handed to the kernel */
    uint64_t dropped; /* not sent by fault injection */
    uint64_t retried; /* wake-ups (sent or dropped) that repeat an earlier one */
    uint64_t errors;  /* signing or sending failed */
};

struct gwa_waker;

/* Create the waker and its UDP socket. Returns NULL with 'err' filled on
 * failure. */
struct gwa_waker *gwa_waker_new(struct event_base *base, struct gwa_orders *orders,
                                const struct gwa_waker_config *cfg, char *err, size_t errlen);

/* Free the waker and close its socket; NULL is ignored. Gateways still
 * queued are left as they are. */
void gwa_waker_free(struct gwa_waker *w);

/* 'gw' has new open orders: wake it soon. */
void gwa_waker_need(struct gwa_waker *w, struct gwa_gw *gw);

/* 'gw' has no open orders any more (fetched): stop waiting for it. */
void gwa_waker_forget(struct gwa_waker *w, struct gwa_gw *gw);

/* Stop sending; queued gateways stay queued. */
void gwa_waker_stop(struct gwa_waker *w);

void gwa_waker_counts(const struct gwa_waker *w, struct gwa_waker_counts *out);

#endif
