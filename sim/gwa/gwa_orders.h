/*
 * gwa_orders.h - the order table of the GWA simulator: one order per
 * accepted channel request (docs/protocols/gwa.md), found by its id or
 * through its gateway, until it expires.
 *
 * An order is PENDING when accepted, WOKEN once a wake-up for its gateway
 * went out (or was dropped by fault injection: the GWA cannot tell),
 * DELIVERED when the gateway fetched it, FAILED when the gateway did not
 * answer the wake-ups. Every change goes through gwa_orders_set_state(),
 * which checks the transition, keeps the gateway's list of open orders and
 * the counters, and logs it.
 *
 * An order is dropped (its id becomes unknown) when its valid_until passes,
 * and a finished order (delivered or failed) at the latest
 * GWA_ORDERS_KEEP_FINISHED_MS after it finished, so that status polls can
 * read the outcome while finished orders cannot fill the table. The table
 * holds at most 'max' orders of any state; gwa_orders_add() refuses more.
 *
 * Threading and ownership: the table belongs to the simulator's loop
 * thread and owns its orders. An order pointer stays valid until the order
 * is dropped by gwa_orders_expire() or the table is freed; do not keep one
 * across a call to gwa_orders_expire().
 */
#ifndef CLSM_GWA_ORDERS_H
#define CLSM_GWA_ORDERS_H

#include <stddef.h>
#include <stdint.h>

#include "gwa/gwa_fleet.h"

#define GWA_ORDERS_KEEP_FINISHED_MS (10 * 60 * 1000)
#define GWA_ORDERS_ID_MAX           128 /* "cr-" + GWA id (96) + "-" + 20 digits + NUL */

enum gwa_order_state { ORDER_PENDING, ORDER_WOKEN, ORDER_DELIVERED, ORDER_FAILED };

struct gwa_order {
    uint64_t seq;
    int64_t valid_until_ms; /* Unix milliseconds */
    int64_t drop_ms;        /* dropped from the table at this time */
    struct gwa_gw *gw;
    const struct gwa_dev *dev;
    const char *reason; /* static text, ORDER_FAILED only */
    size_t heap_pos;
    struct gwa_order *id_next;           /* hash chain */
    struct gwa_order *gw_prev, *gw_next; /* the gateway's open orders */
    uint16_t emt;                        /* index into the simulator's EMT list */
    uint8_t state;                       /* enum gwa_order_state */
    uint8_t attempts;                    /* wake-ups sent (or dropped) for it */
    char endpoint[];                     /* host:port the gateway dials */
};

struct gwa_orders_counts {
    size_t live, pending, woken; /* now in the table */
    uint64_t delivered, failed, expired;
};

struct gwa_orders;

/* A table for at most 'max' orders (1 .. 100,000,000) whose ids are
 * "cr-<gwa_id>-<n>" ('gwa_id' is copied). Returns NULL when out of memory
 * or for bad arguments. */
struct gwa_orders *gwa_orders_new(const char *gwa_id, size_t max);

/* Free the table and all orders; NULL is ignored. */
void gwa_orders_free(struct gwa_orders *t);

/* Orders that can still be added. */
size_t gwa_orders_room(const struct gwa_orders *t);

/* Add a PENDING order for device 'dev' behind gateway 'gw', owned by EMT
 * number 'emt', to be dialled at 'endpoint', void after 'valid_until_ms'.
 * Returns 0 and the order in '*out', -ENOSPC when the table is full, or
 * -ENOMEM. */
int gwa_orders_add(struct gwa_orders *t, struct gwa_gw *gw, const struct gwa_dev *dev, uint16_t emt,
                   const char *endpoint, int64_t valid_until_ms, struct gwa_order **out);

/* The order with the id 'id', or NULL when there is none (any string may
 * be passed). */
struct gwa_order *gwa_orders_find(const struct gwa_orders *t, const char *id);

/* Write the id of 'o' into 'buf' (GWA_ORDERS_ID_MAX bytes suffice). */
void gwa_orders_id(const struct gwa_orders *t, const struct gwa_order *o, char *buf, size_t len);

/*
 * Move 'o' to state 'to' at 'now_ms' (Unix milliseconds). Allowed:
 * PENDING -> WOKEN, PENDING|WOKEN -> DELIVERED|FAILED; 'reason' (static
 * text) is kept for FAILED. A finished order leaves its gateway's open list
 * and is dropped at the latest GWA_ORDERS_KEEP_FINISHED_MS later. Returns 0,
 * or -EINVAL for any other transition (nothing changes).
 */
int gwa_orders_set_state(struct gwa_orders *t, struct gwa_order *o, enum gwa_order_state to,
                         const char *reason, int64_t now_ms);

/* Drop every order whose time has come at 'now_ms'; open orders whose
 * valid_until passed count as expired. Returns the number dropped. */
size_t gwa_orders_expire(struct gwa_orders *t, int64_t now_ms);

/* The name of a state as used on the wire ("pending", ...). */
const char *gwa_order_state_name(enum gwa_order_state s);

void gwa_orders_counts(const struct gwa_orders *t, struct gwa_orders_counts *out);

#endif
