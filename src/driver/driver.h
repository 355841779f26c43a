/*
 * driver.h - device protocols behind one vtable (DESIGN.md §2): a driver
 * speaks one wire protocol over a channel; the dispatcher talks to every
 * device through these four entries and never sees the protocol.
 *
 * Controls are given in clsm's neutral form: a JSON object such as
 * {"type": "limit", "direction": "consumption", "value_w": 4200,
 *  "active": true, "duration_s": 3600} (docs/protocols/lpc-mqtt.md lists the
 * types). Drivers report acks, states and telemetry through the channel's
 * listener (channel.h). Everything runs on the channel's loop thread.
 */
#ifndef CLSM_DRIVER_H
#define CLSM_DRIVER_H

#include <event2/buffer.h>
#include <jansson.h>

struct channel;

struct driver_ops {
    const char *name; /* as in the registry: "lpc-mqtt" */
    /* The channel's transport is up (TLS done): allocate per-channel state
     * into '*state'. Returns 0 or -ENOMEM. */
    int (*attach)(struct channel *ch, void **state);
    /* Bytes arrived in 'in': consume whole frames, identify the device
     * (channel_identified()), report what the device says. On a protocol
     * violation the driver closes the channel with a reason. */
    void (*input)(struct channel *ch, void *state, struct evbuffer *in);
    /* Send control 'control' under command id 'cmd' (1-64 characters).
     * Returns 0, -EINVAL (a control the protocol cannot carry), -ENOBUFS
     * (output limit) or -EPIPE (channel not open). */
    int (*send)(struct channel *ch, void *state, const char *cmd, const json_t *control);
    /* The channel is going away: free the state. */
    void (*detach)(struct channel *ch, void *state);
};

extern const struct driver_ops driver_lpc_mqtt;

/* The driver of that name, or NULL. */
const struct driver_ops *driver_find(const char *name);

#endif
