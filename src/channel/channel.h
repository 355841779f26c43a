/*
 * channel.h - secured CLS channels from Smart Meter Gateways (DESIGN.md
 * §5.4).
 *
 * A channel is one mutually authenticated TLS connection that an SMGW
 * opened to us, bound to one CLS device behind it. The gateway is known
 * from its certificate (CN = gateway id, which must be in the registry and
 * chain to the SMGW sub-CA); the device from the first message of its
 * protocol (driver.h), which must name a device the registry places behind
 * that gateway. Anything else is refused, logged and recorded.
 *
 * Each channel walks one state machine, changed only by channel_set_state():
 *
 *   CH_HANDSHAKE -> CH_IDENTIFY -> CH_OPEN -> CH_CLOSING -> CH_CLOSED
 *         \_______________\____________\__________/
 *                  (any state may close)
 *
 * The manager owns every channel. Callers never free one: channel_close()
 * starts an orderly close and the loop frees it after the current callback.
 * All functions run on the loop thread of the manager's event base.
 */
#ifndef CLSM_CHANNEL_H
#define CLSM_CHANNEL_H

#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

struct store;
struct audit;
struct lpc_state;
struct lpc_telemetry;
struct channel;
struct channel_mgr;
struct driver_ops;

enum channel_state { CH_HANDSHAKE, CH_IDENTIFY, CH_OPEN, CH_CLOSING, CH_CLOSED };

/* What a driver reports up, and channel life-cycle changes; the dispatcher
 * implements these. Every pointer argument is valid during the call only.
 * Device states and telemetry use the structs of lpc_msg.h, which double
 * as clsm's neutral form (the protocol was modelled on the domain). */
struct channel_listener {
    /* The channel to 'device' is open (replacing an older one, if any). */
    void (*opened)(void *arg, struct channel *ch, const char *device);
    /* The open channel to 'device' closed; 'reason' says why. */
    void (*closed)(void *arg, struct channel *ch, const char *device, const char *reason);
    /* The device acknowledged command 'cmd': 'ok', or an error number
     * (2 protocol, 3 execution, 4 not supported) and reason. */
    void (*ack)(void *arg, const char *device, const char *cmd, int ok, int error,
                const char *reason);
    /* The device reported its state. */
    void (*state)(void *arg, const char *device, const struct lpc_state *state);
    /* The device reported telemetry. */
    void (*telemetry)(void *arg, const char *device, const struct lpc_telemetry *telemetry);
    void *arg;
};

struct channel_limits {
    int max_channels;
    int handshake_timeout_s;
    int identify_timeout_s;
    int idle_timeout_s;
    size_t max_frame;
    size_t max_output;
    int heartbeat_s; /* heartbeat towards devices quiet this long; 0 = none */
};

/* Create the manager. It borrows 'store' (registry lookups) and 'audit'
 * (records of refused and opened channels), which must outlive it, and
 * takes its own reference to 'tls' (a server context that verifies client
 * certificates against the SMGW sub-CA). The sub-CAs among the context's
 * trusted certificates are the only accepted issuers of gateway
 * certificates (all trusted ones, if there is no sub-CA among them). NULL
 * when out of memory. */
struct channel_mgr *channel_mgr_new(struct event_base *base, struct store *store,
                                    struct audit *audit, SSL_CTX *tls,
                                    const struct channel_limits *lim,
                                    const struct channel_listener *listener);

/* Listen for gateways on 'addr'; the bound address goes to 'bound'. */
int channel_mgr_listen(struct channel_mgr *m, const struct hostport *addr, struct hostport *bound);

/* Stop accepting and close every channel; 'done' runs when none is left. */
void channel_mgr_shutdown(struct channel_mgr *m, void (*done)(void *arg), void *arg);

/* Free the manager and what is left of its channels. */
void channel_mgr_free(struct channel_mgr *m);

/* The open channel to 'device', or NULL. */
struct channel *channel_mgr_find(struct channel_mgr *m, const char *device);

/* Numbers of channels by state, for metrics. */
void channel_mgr_counts(const struct channel_mgr *m, int counts[CH_CLOSED + 1]);

/* Counters of refusals by reason since start, as a JSON object. */
json_t *channel_mgr_refusals(const struct channel_mgr *m);

/* A page of channels as JSON objects, ordered by channel id after 'after'
 * (0 for the first page), filtered by state, gateway and device (NULL: any).
 * '*more' is set when further channels follow. New reference. */
json_t *channel_mgr_list(const struct channel_mgr *m, uint64_t after, int limit, const char *state,
                         const char *smgw, const char *device, int *more);

/* Name of a state ("open"), and the state of a name (-1 when unknown). */
const char *channel_state_name(enum channel_state s);
int channel_state_parse(const char *s);

/* --- for drivers ------------------------------------------------------------ */

/* The single transition function: checks that 'to' may follow the current
 * state, records the change (log, audit for refusals and opens), informs the
 * listener and arms the timer of the new state. 'reason' explains closes
 * and refusals ("certificate expired", "device not behind this gateway"). */
void channel_set_state(struct channel *ch, enum channel_state to, const char *reason);

/* The driver has read the device id from the first message. Checks it
 * against the registry (device exists, uses this driver, sits behind this
 * channel's gateway) and returns 0; the channel stays CH_IDENTIFY until the
 * driver calls channel_ready(). Otherwise 'refusal' ('len' bytes, the
 * protocol's way of saying no; may be empty) is sent, the channel is refused
 * (closing) and -EPERM returned. */
int channel_identified(struct channel *ch, const char *device, const void *refusal, size_t len);

/* The identified device is ready for controls (for lpc-mqtt: it subscribed
 * to its control topic): the channel becomes CH_OPEN, replacing an older
 * channel to the same device, and the dispatcher hears of it. */
void channel_ready(struct channel *ch);

/* Queue bytes towards the device. Returns 0, -ENOBUFS when the output limit
 * would be exceeded, or -EPIPE once the channel is closing. */
int channel_send(struct channel *ch, const void *buf, size_t len);

/* Start an orderly close (queued output is still written). */
void channel_close(struct channel *ch, const char *reason);

/* The device was heard from: pushes the idle deadline out; 'keepalive_s'
 * (0: keep the configured idle timeout) is the device's own keepalive. */
void channel_alive(struct channel *ch, int keepalive_s);

/* Accessors. */
enum channel_state channel_state_of(const struct channel *ch);
const char *channel_smgw(const struct channel *ch);
const char *channel_device(const struct channel *ch);
const struct channel_listener *channel_listener_of(const struct channel *ch);
size_t channel_max_frame(const struct channel *ch);

/* The lpc-mqtt driver's send/read entry points for the dispatcher, with the
 * driver chosen by the channel; see driver.h. */
const struct driver_ops *channel_driver(const struct channel *ch);
void *channel_driver_state(const struct channel *ch);

#endif
