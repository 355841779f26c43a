/*
 * steuerbox.h - the Steuerbox device model of the gateway-fleet simulator:
 * an FNN control box with two relays, a consumption and a production limit,
 * a schedule and a failsafe, speaking lpc-mqtt (driver/lpc_msg.h), in front
 * of one simulated installation whose measured power follows the limits.
 *
 * The model is pure: no I/O and no clock reads. Every function that depends
 * on time takes 'now_ms' (milliseconds since the epoch) and first advances
 * the model to that instant (limits expire, the failsafe starts or ends);
 * 'now_ms' must not decrease, and an earlier value is taken as the latest
 * one seen. One model belongs to one thread at a time; models share
 * nothing, so a fleet may run them on several threads.
 *
 * The caller owns the struct (the fleet keeps 100,000 of them in an array)
 * and must call steuerbox_fini() when done: a stored schedule lives on the
 * heap. The members are private; read them through the functions below.
 * Behaviour and its reasons: docs/protocols/lpc-mqtt.md, "The device".
 */
#ifndef CLSM_STEUERBOX_H
#define CLSM_STEUERBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver/lpc_msg.h"

/* What the Steuerbox controls; decides the demand or generation profile and
 * which limit directions the device supports. */
enum steuerbox_kind {
    SB_HEAT_PUMP,      /* consumption */
    SB_WALLBOX,        /* consumption */
    SB_STORAGE_HEATER, /* consumption */
    SB_BATTERY,        /* consumption (charging) and production limits */
    SB_PV,             /* production */
    SB_NKINDS
};

enum steuerbox_link {
    SB_LINK_IDLE, /* no channel, nobody supervising: no failsafe timer */
    SB_LINK_UP,   /* channel open: failsafe after a heartbeat timeout without a control */
    SB_LINK_LOST, /* channel lost: failsafe at loss + heartbeat timeout unless restored */
};

#define SB_DEDUPE            256  /* command ids remembered for de-duplication */
#define SB_RING_BYTES        7    /* per id: 48-bit hash + 8-bit application count */
#define SB_HEARTBEAT_TIMEOUT 120  /* s without contact before the failsafe starts */
#define SB_UNLIMITED         (-1) /* steuerbox_effective_limit_w(): no cap */

/* Flags steuerbox_control() reports. */
#define SB_CTL_APPLIED   0x1u /* the control changed the model */
#define SB_CTL_DUPLICATE 0x2u /* a repeated command id: acked ok, not applied again */
#define SB_CTL_NACK      0x4u /* the ack is a nack */
#define SB_CTL_STATE     0x8u /* publish a state message now (after the ack) */

struct sb_schedule; /* private, on the heap */

struct steuerbox {
    const char *device_id;        /* borrowed: must outlive the model */
    struct sb_schedule *schedule; /* owned; NULL when none */
    uint64_t seed;
    int64_t now_ms;            /* latest time seen */
    int64_t contact_ms;        /* last control (UP) or the loss (LOST) */
    int64_t failsafe_until_ms; /* while in failsafe */
    int64_t limit_until_ms[2]; /* LPC_NONE: until replaced */
    uint32_t limit_w[2];       /* by enum lpc_direction */
    uint32_t last_eff[2];      /* effective caps last reported; UINT32_MAX = none */
    uint32_t rated_w, dim_w, failsafe_w, failsafe_s, heartbeat_s;
    uint32_t duplicates; /* repeated command ids seen */
    uint8_t kind, link, mode, last_mode;
    bool limit_active[2], relay_closed[2];
    bool overdraw;     /* a faulty installation: draws its demand whatever the cap */
    uint8_t ring_next; /* next ring slot to overwrite */
    char last_cmd[LPC_CMD_MAX + 1];
    uint8_t ring[SB_DEDUPE][SB_RING_BYTES];
};

/* The kind called 'name' ("heat_pump", "wallbox", "storage_heater",
 * "battery", "pv": the registry's installation kinds). Returns 0 or -EINVAL. */
int steuerbox_kind_parse(const char *name, enum steuerbox_kind *out);
const char *steuerbox_kind_name(enum steuerbox_kind kind);

/* Set up '*sb' in normal mode with both relays open, no limits, no
 * schedule, link idle. 'device_id' (borrowed) must be a valid CLS device id;
 * 'rated_w' 1..LPC_MAX_POWER_W; the failsafe settings as in the registry
 * (failsafe_limit_w 0..LPC_MAX_POWER_W, failsafe_duration_s
 * 0..LPC_MAX_FAILSAFE_S; 4200 W and 7200 s by default). The same value is
 * the cap of the "dim" level. 'seed' varies the profile between devices.
 * Returns 0 or -EINVAL (then '*sb' is unusable but needs no fini). */
int steuerbox_init(struct steuerbox *sb, const char *device_id, enum steuerbox_kind kind,
                   uint32_t rated_w, uint64_t seed, uint32_t failsafe_w, uint32_t failsafe_s);

/* Release the stored schedule. '*sb' may be initialised again afterwards. */
void steuerbox_fini(struct steuerbox *sb);

/* Configuration beyond init: the heartbeat timeout (1..86400 s, default
 * SB_HEARTBEAT_TIMEOUT) and the cap of the "dim" level (0..LPC_MAX_POWER_W,
 * default the failsafe value given to init). Return 0 or -EINVAL. */
int steuerbox_set_heartbeat_timeout(struct steuerbox *sb, uint32_t seconds);
int steuerbox_set_dim_w(struct steuerbox *sb, uint32_t dim_w);

/* Handle one PUBLISH on cls/<id>/control: decode, apply, and write the
 * ack JSON (for cls/<id>/ack) into 'ack' with a NUL. Any payload counts as
 * contact with the controller (restarts the heartbeat timer and ends a
 * failsafe). '*flags' receives SB_CTL_* bits. Returns the ack length, or
 * -ENOSPC when 'acklen' is too small (the control is applied all the same;
 * LPC_REPORT_BUF bytes are always enough). */
int steuerbox_control(struct steuerbox *sb, const char *payload, size_t len, int64_t now_ms,
                      char *ack, size_t acklen, unsigned *flags);

/* Fill '*out' with the state now. */
void steuerbox_snapshot(struct steuerbox *sb, int64_t now_ms, struct lpc_state *out);

/* Write the state message (cls/<id>/state) or the telemetry message
 * (cls/<id>/telemetry) now into 'buf' with a NUL. Return the length or
 * -ENOSPC (LPC_REPORT_BUF bytes are always enough). */
int steuerbox_state(struct steuerbox *sb, int64_t now_ms, char *buf, size_t len);
int steuerbox_telemetry(struct steuerbox *sb, int64_t now_ms, char *buf, size_t len);

/* Advance the model to 'now_ms'. Returns 1 when the mode or an effective
 * limit changed since the last tick or control (the caller should publish
 * a state message), else 0. Call it at least at every instant something is
 * due, or simply every few seconds. */
int steuerbox_tick(struct steuerbox *sb, int64_t now_ms);

/* The channel to the controller opened (or came back): the link is up and
 * a running failsafe ends; the orders held before it apply again. */
void steuerbox_link_restored(struct steuerbox *sb, int64_t now_ms);

/* The channel broke without an orderly end. Unless it is restored within
 * the heartbeat timeout, the failsafe starts at now_ms + timeout. */
void steuerbox_link_lost(struct steuerbox *sb, int64_t now_ms);

/* The channel ended in order (the SMGW or clsmd closed an idle channel):
 * the link is idle and no failsafe timer runs. */
void steuerbox_link_closed(struct steuerbox *sb, int64_t now_ms);

/* The cap on the device's own direction now (production for PV, else
 * consumption), in W, or SB_UNLIMITED. */
int64_t steuerbox_effective_limit_w(struct steuerbox *sb, int64_t now_ms);

/* Measured power now: the profile's demand (or generation) capped by the
 * effective limit; > 0 consumption, < 0 production, in W. */
int64_t steuerbox_measured_w(struct steuerbox *sb, int64_t now_ms);

/* The uncapped profile at 'now_ms' (>= 0, in the device's direction):
 * deterministic in (kind, rated power, seed, time). */
int64_t steuerbox_demand_w(const struct steuerbox *sb, int64_t now_ms);

/* How often the control with id 'cmd_id' was applied, as long as it is
 * among the last SB_DEDUPE applied ones (else 0). Read and heartbeat are
 * never recorded. */
unsigned steuerbox_applied_count(const struct steuerbox *sb, const char *cmd_id);

/* Current mode and link state, and how many repeated command ids were
 * acked without being applied. */
enum lpc_mode steuerbox_mode(const struct steuerbox *sb);
enum steuerbox_link steuerbox_link_state(const struct steuerbox *sb);
uint32_t steuerbox_duplicates(const struct steuerbox *sb);

#endif
