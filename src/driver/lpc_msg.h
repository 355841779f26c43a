/*
 * lpc_msg.h - the messages of the device protocol "lpc-mqtt" (DESIGN.md §5.5,
 * docs/protocols/lpc-mqtt.md): controls from clsmd to a Steuerbox, and acks,
 * state and telemetry from the Steuerbox back, as JSON in MQTT PUBLISH
 * payloads on the topics cls/<device-id>/{control,ack,state,telemetry}.
 *
 * Both ends use this one module: clsmd encodes controls and decodes the
 * rest, the device model in the simulator does the opposite. Decoders take
 * bytes from outside: they bound the payload and the JSON (lpc_json_limits),
 * reject unknown fields, and check every field; an encoder runs the same
 * checks on what it produces, so that anything one end sends is something
 * the other end accepts.
 *
 * Everything here is pure and reentrant: no globals, no I/O, no clock reads.
 * Structs are plain values owned by the caller; no function keeps a pointer
 * to its arguments.
 */
#ifndef CLSM_LPC_MSG_H
#define CLSM_LPC_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/jsonx.h"

/* Limits of the wire format. */
#define LPC_CMD_MAX        64                /* bytes of a command id */
#define LPC_DEVICE_ID_MAX  96                /* bytes of a CLS device id */
#define LPC_REASON_MAX     200               /* bytes of a nack reason */
#define LPC_MAX_INTERVALS  96                /* intervals of one schedule */
#define LPC_MAX_CONTROL    16384             /* payload bytes of a control */
#define LPC_MAX_REPORT     8192              /* payload bytes of an ack, state or telemetry */
#define LPC_MAX_POWER_W    1000000000        /* any power value, W */
#define LPC_MAX_LIMIT_S    604800            /* duration of a limit: 7 days */
#define LPC_MAX_FAILSAFE_S 86400             /* failsafe duration: 1 day (registry bound) */
#define LPC_MAX_SPAN_MS    604800000         /* first start to last end of a schedule */
#define LPC_TOPIC_MAX      112               /* "cls/" + id + "/" + "telemetry" + NUL */
#define LPC_REPORT_BUF     1024              /* holds any encoded ack, state or telemetry + NUL */
#define LPC_TIME_MAX       253402300799999LL /* 9999-12-31T23:59:59.999Z */

/* "No value": a time that is absent or JSON null, a power without a limit. */
#define LPC_NONE INT64_MIN

/* jsonx limits of every decoder: depth 4, strings 256 bytes, 1,024 values. */
extern const struct jsonx_limits lpc_json_limits;

/* --- vocabulary ----------------------------------------------------------- */

enum lpc_direction { LPC_CONSUMPTION, LPC_PRODUCTION, LPC_NDIR };

/* The FNN two-relay state as one level: on = normal operation, dim = §14a
 * reduced power, off = locked. */
enum lpc_level { LPC_LEVEL_ON, LPC_LEVEL_DIM, LPC_LEVEL_OFF };

enum lpc_mode { LPC_MODE_NORMAL, LPC_MODE_FAILSAFE };

enum lpc_topic { LPC_TOPIC_CONTROL, LPC_TOPIC_ACK, LPC_TOPIC_STATE, LPC_TOPIC_TELEMETRY };

/* Nack error numbers. */
enum lpc_nack {
    LPC_ERR_PROTOCOL = 2,    /* malformed control: bad JSON, field, value or size */
    LPC_ERR_EXECUTION = 3,   /* well-formed and supported, but could not be carried out */
    LPC_ERR_UNSUPPORTED = 4, /* a control type or direction this device does not have */
};

/* Wire names ("consumption", "dim", "failsafe", "telemetry"). */
const char *lpc_direction_name(enum lpc_direction d);
const char *lpc_level_name(enum lpc_level l);
const char *lpc_mode_name(enum lpc_mode m);
const char *lpc_topic_name(enum lpc_topic t);

/* The level the two relays encode: relay 1 closed = off (whatever relay 0
 * is), else relay 0 closed = dim, else on. */
enum lpc_level lpc_level_from_relays(bool relay0_closed, bool relay1_closed);

/* The relay positions a `switch` sets for 'l': on = both open, dim = relay
 * 0 closed, off = relay 1 closed and relay 0 open. */
void lpc_relays_from_level(enum lpc_level l, bool closed[2]);

/* Nonzero when 's' is a command id: 1-64 bytes of A-Z a-z 0-9 . _ : - */
int lpc_cmd_id_valid(const char *s);

/* Nonzero when 's' is a CLS device id as the registry has it: 1-96 bytes of
 * A-Z a-z 0-9 . _ : -, starting with a letter or digit. */
int lpc_device_id_valid(const char *s);

/* --- errors --------------------------------------------------------------- */

/* Why a message was refused: the JSON pointer of the offending field
 * ("/intervals/3/end"; "" for the message as a whole) and a sentence. Both
 * are printable ASCII whatever the input was: bytes of outside keys that
 * are not are shown as '?', and long keys are cut. */
struct lpc_error {
    char field[64];
    char reason[160];
};

/* --- controls (clsmd -> device) ------------------------------------------- */

enum lpc_ctl_type {
    LPC_CTL_LIMIT,
    LPC_CTL_RELAY,
    LPC_CTL_SWITCH,
    LPC_CTL_SCHEDULE,
    LPC_CTL_FAILSAFE,
    LPC_CTL_READ,
    LPC_CTL_HEARTBEAT,
};

const char *lpc_ctl_type_name(enum lpc_ctl_type t);

/* One schedule interval [start, end) with either a power limit in one
 * direction (is_level false) or a level (is_level true). */
struct lpc_interval {
    int64_t start_ms, end_ms;
    bool is_level;
    enum lpc_direction direction; /* when !is_level */
    int64_t value_w;              /* when !is_level: 0..LPC_MAX_POWER_W */
    enum lpc_level level;         /* when is_level */
};

struct lpc_limit {
    enum lpc_direction direction;
    int64_t value_w; /* 0..LPC_MAX_POWER_W */
    bool active;
    int64_t duration_s; /* 0..LPC_MAX_LIMIT_S; 0 = until replaced */
};

struct lpc_relay {
    int64_t index; /* 0 or 1 */
    bool closed;
};

struct lpc_switch {
    enum lpc_level level;
};

/* Intervals sorted by start, not overlapping (an interval may start where
 * the previous one ends), spanning at most LPC_MAX_SPAN_MS. */
struct lpc_schedule {
    size_t n; /* 0..LPC_MAX_INTERVALS; 0 deletes the stored schedule */
    struct lpc_interval iv[LPC_MAX_INTERVALS];
};

struct lpc_failsafe {
    int64_t value_w;    /* 0..LPC_MAX_POWER_W */
    int64_t duration_s; /* 0..LPC_MAX_FAILSAFE_S */
};

/* A control; 'u' holds the member named by 'type' (none for read and
 * heartbeat). About 4 KiB because of the schedule: keep it off hot
 * structures. */
struct lpc_control {
    char cmd[LPC_CMD_MAX + 1];
    enum lpc_ctl_type type;
    union {
        struct lpc_limit limit;
        struct lpc_relay relay;
        struct lpc_switch sw;
        struct lpc_schedule schedule;
        struct lpc_failsafe failsafe;
    } u;
};

/* Write 'c' as JSON text into 'buf' with a terminating NUL. Returns the
 * length without the NUL, -ENOSPC when 'len' is too small, -EINVAL when 'c'
 * breaks a rule of the format (then nothing useful is in 'buf'), -ENOMEM. */
int lpc_control_encode(const struct lpc_control *c, char *buf, size_t len);

/* Decode and check 'len' bytes (not NUL-terminated) into '*c'. Returns 0;
 * -E2BIG for a payload over LPC_MAX_CONTROL, JSON over the limits or more
 * than LPC_MAX_INTERVALS intervals; -ENOTSUP for a well-formed "type" that
 * is not one of the above; -EINVAL for anything else wrong. On failure 'err'
 * says why and c->cmd holds the command id if the message had a valid one
 * (else ""), so that the device can nack it by id. */
int lpc_control_decode(const char *buf, size_t len, struct lpc_control *c, struct lpc_error *err);

/* --- acks (device -> clsmd) ----------------------------------------------- */

struct lpc_ack {
    char cmd[LPC_CMD_MAX + 1]; /* "" = JSON null: only for a nack with error 2 */
    bool ok;
    int error;                       /* nack: 2, 3 or 4 */
    char reason[LPC_REASON_MAX + 1]; /* nack: 1-200 bytes of UTF-8, no control characters */
};

/* Fill '*a' as "ok" for 'cmd'. */
void lpc_ack_ok(struct lpc_ack *a, const char *cmd);

/* Fill '*a' as a nack for 'cmd' ("" when the control had no valid id) with
 * error number 'code' and a reason made of 'err' ("/value_w: must be ..."),
 * or 'text' when 'err' is NULL. The reason is cut to LPC_REASON_MAX. */
void lpc_ack_nack(struct lpc_ack *a, const char *cmd, enum lpc_nack code,
                  const struct lpc_error *err, const char *text);

/* As lpc_control_encode(). */
int lpc_ack_encode(const struct lpc_ack *a, char *buf, size_t len);

/* Returns 0, or -EINVAL/-E2BIG with 'err' filled (limit LPC_MAX_REPORT). */
int lpc_ack_decode(const char *buf, size_t len, struct lpc_ack *a, struct lpc_error *err);

/* --- state (device -> clsmd) ---------------------------------------------- */

struct lpc_limit_state {
    int64_t value_w; /* last value set, 0..LPC_MAX_POWER_W */
    bool active;
    int64_t until_ms; /* LPC_NONE = until replaced; only when active */
};

struct lpc_failsafe_state {
    int64_t value_w;
    int64_t duration_s;
    int64_t until_ms; /* end of the running failsafe; LPC_NONE in normal mode */
};

struct lpc_state {
    int64_t time_ms;
    struct lpc_limit_state limit[LPC_NDIR]; /* indexed by enum lpc_direction */
    bool relay_closed[2];
    enum lpc_level level; /* must equal lpc_level_from_relays() */
    enum lpc_mode mode;
    struct lpc_failsafe_state failsafe;
    int64_t effective_w[LPC_NDIR];  /* the cap now; LPC_NONE = none */
    int64_t measured_w;             /* > 0 consumption, < 0 production */
    char last_cmd[LPC_CMD_MAX + 1]; /* last applied command id; "" = none yet */
};

/* As lpc_control_encode(). */
int lpc_state_encode(const struct lpc_state *s, char *buf, size_t len);

/* Returns 0, or -EINVAL/-E2BIG with 'err' filled (limit LPC_MAX_REPORT). */
int lpc_state_decode(const char *buf, size_t len, struct lpc_state *s, struct lpc_error *err);

/* --- telemetry (device -> clsmd) ------------------------------------------ */

/* Measurements: each LPC_NONE when the device does not report it (at
 * least one is there). Steuerboxen report power, sensors their readings. */
struct lpc_telemetry {
    int64_t time_ms;
    int64_t measured_w;     /* -LPC_MAX_POWER_W..LPC_MAX_POWER_W, sign as in state */
    int64_t door_open;      /* 1 open, 0 closed (door contact) */
    int64_t smoke;          /* 1 smoke detected, 0 none (smoke detector) */
    int64_t fill_level_pct; /* 0..100 (fill level) */
    int64_t temperature_dc; /* -500..1000, tenths of a degree Celsius (room climate) */
    int64_t humidity_pct;   /* 0..100, relative (room climate) */
};

/* As lpc_control_encode(). */
int lpc_telemetry_encode(const struct lpc_telemetry *t, char *buf, size_t len);

/* Returns 0, or -EINVAL/-E2BIG with 'err' filled (limit LPC_MAX_REPORT). */
int lpc_telemetry_decode(const char *buf, size_t len, struct lpc_telemetry *t,
                         struct lpc_error *err);

/* --- topics --------------------------------------------------------------- */

/* Write "cls/<device_id>/<kind>" into 'buf' (LPC_TOPIC_MAX is always
 * enough). Returns the length, -EINVAL for a bad device id or kind, or
 * -ENOSPC. */
int lpc_topic_build(const char *device_id, enum lpc_topic kind, char *buf, size_t len);

/* Split an MQTT topic ('len' bytes, not NUL-terminated) into the device id
 * (copied into 'device_id', LPC_DEVICE_ID_MAX + 1 bytes) and the kind.
 * Returns 0, or -EINVAL when the topic is not exactly cls/<valid id>/<kind>;
 * then the outputs are unspecified. */
int lpc_topic_parse(const char *topic, size_t len, char device_id[LPC_DEVICE_ID_MAX + 1],
                    enum lpc_topic *kind);

#endif
