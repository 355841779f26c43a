/*
 * steuerbox.c - the Steuerbox device model; see steuerbox.h and
 * docs/protocols/lpc-mqtt.md ("The device").
 */
#include "smgw/steuerbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define CAP_NONE   UINT32_MAX
#define HASH_BYTES (SB_RING_BYTES - 1)

/* A stored schedule: times as offsets from the first start, so that an
 * interval takes 16 bytes (a schedule spans at most 7 days < 2^32 ms). */
enum iv_what { IV_CONSUMPTION, IV_PRODUCTION, IV_ON, IV_DIM, IV_OFF };

struct sb_iv {
    uint32_t start_off, end_off; /* ms after base_ms */
    uint32_t value_w;            /* IV_CONSUMPTION, IV_PRODUCTION */
    uint8_t what;                /* enum iv_what */
};

struct sb_schedule {
    int64_t base_ms;
    size_t n;
    struct sb_iv iv[];
};

static const char *const kind_names[] = {"heat_pump", "wallbox", "storage_heater",
                                         "battery",   "pv",      NULL};

int steuerbox_kind_parse(const char *name, enum steuerbox_kind *out)
{
    for (int i = 0; kind_names[i] != NULL; i++) {
        if (strcmp(kind_names[i], name) == 0) {
            *out = (enum steuerbox_kind)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *steuerbox_kind_name(enum steuerbox_kind kind)
{
    return (unsigned)kind < SB_NKINDS ? kind_names[kind] : "?";
}

static enum lpc_direction own_direction(const struct steuerbox *sb)
{
    return sb->kind == SB_PV ? LPC_PRODUCTION : LPC_CONSUMPTION;
}

static bool supports(const struct steuerbox *sb, enum lpc_direction d)
{
    return sb->kind == SB_BATTERY || d == own_direction(sb);
}

/* --- time-driven transitions ---------------------------------------------- */

static void drop_schedule(struct steuerbox *sb)
{
    free(sb->schedule);
    sb->schedule = NULL;
}

static void enter_failsafe(struct steuerbox *sb, int64_t at)
{
    sb->mode = LPC_MODE_FAILSAFE;
    sb->link = SB_LINK_LOST;
    sb->failsafe_until_ms = at + (int64_t)sb->failsafe_s * 1000;
}

/* The failsafe ran its full duration without contact: the device returns to
 * autonomous normal operation and forgets the controller's orders. */
static void fall_back(struct steuerbox *sb)
{
    sb->mode = LPC_MODE_NORMAL;
    sb->link = SB_LINK_IDLE;
    sb->failsafe_until_ms = LPC_NONE;
    for (int d = 0; d < LPC_NDIR; d++) {
        sb->limit_active[d] = false;
        sb->limit_until_ms[d] = LPC_NONE;
    }
    sb->relay_closed[0] = sb->relay_closed[1] = false;
    drop_schedule(sb);
}

static int64_t schedule_end(const struct sb_schedule *s)
{
    return s->base_ms + s->iv[s->n - 1].end_off;
}

/* Bring the model to 'now' (never backwards) and return the time used. */
static int64_t advance(struct steuerbox *sb, int64_t now)
{
    if (now < sb->now_ms)
        now = sb->now_ms;
    sb->now_ms = now;
    if (sb->mode == LPC_MODE_NORMAL && sb->link != SB_LINK_IDLE) {
        int64_t due = sb->contact_ms + (int64_t)sb->heartbeat_s * 1000;
        if (now >= due)
            enter_failsafe(sb, due);
    }
    if (sb->mode == LPC_MODE_FAILSAFE && now >= sb->failsafe_until_ms)
        fall_back(sb);
    for (int d = 0; d < LPC_NDIR; d++) {
        if (sb->limit_active[d] && sb->limit_until_ms[d] != LPC_NONE &&
            now >= sb->limit_until_ms[d]) {
            sb->limit_active[d] = false;
            sb->limit_until_ms[d] = LPC_NONE;
        }
    }
    if (sb->schedule != NULL && now >= schedule_end(sb->schedule))
        drop_schedule(sb);
    return now;
}

/* Contact with the controller: the link is up, a failsafe ends. */
static void contact(struct steuerbox *sb, int64_t now)
{
    sb->link = SB_LINK_UP;
    sb->contact_ms = now;
    if (sb->mode == LPC_MODE_FAILSAFE) {
        sb->mode = LPC_MODE_NORMAL;
        sb->failsafe_until_ms = LPC_NONE;
    }
}

/* --- effective limits ----------------------------------------------------- */

static const struct sb_iv *running_interval(const struct steuerbox *sb, int64_t now)
{
    const struct sb_schedule *s = sb->schedule;

    if (s == NULL || now < s->base_ms)
        return NULL;
    for (size_t i = 0; i < s->n; i++) {
        if (now < s->base_ms + s->iv[i].start_off)
            return NULL;
        if (now < s->base_ms + s->iv[i].end_off)
            return &s->iv[i];
    }
    return NULL;
}

/* The cap on direction 'd' now, CAP_NONE for none (and for a direction the
 * device does not have). Precedence: the failsafe value alone in failsafe
 * mode; else a running schedule interval replaces the manual limit of its
 * direction or the relay level; the level caps what remains. */
static uint32_t cap_of(const struct steuerbox *sb, enum lpc_direction d, int64_t now)
{
    const struct sb_iv *iv = running_interval(sb, now);
    uint32_t cap = CAP_NONE;
    enum lpc_level level = lpc_level_from_relays(sb->relay_closed[0], sb->relay_closed[1]);

    if (!supports(sb, d))
        return CAP_NONE;
    if (sb->mode == LPC_MODE_FAILSAFE)
        return sb->failsafe_w;
    if (iv != NULL && iv->what == (uint8_t)d)
        cap = iv->value_w;
    else if (sb->limit_active[d])
        cap = sb->limit_w[d];
    if (iv != NULL && iv->what >= IV_ON)
        level = (enum lpc_level)(iv->what - IV_ON);
    if (level == LPC_LEVEL_OFF)
        cap = 0;
    else if (level == LPC_LEVEL_DIM && sb->dim_w < cap)
        cap = sb->dim_w;
    return cap;
}

/* Remember what is in force now; nonzero when it differs from before. */
static int refresh(struct steuerbox *sb, int64_t now)
{
    int changed = sb->mode != sb->last_mode;

    sb->last_mode = sb->mode;
    for (int d = 0; d < LPC_NDIR; d++) {
        uint32_t cap = cap_of(sb, (enum lpc_direction)d, now);
        changed |= cap != sb->last_eff[d];
        sb->last_eff[d] = cap;
    }
    return changed;
}

/* --- the profile ---------------------------------------------------------- */

#define LOCAL_OFFSET_MS 3600000 /* profiles run on CET all year */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static uint64_t noise(const struct steuerbox *sb, int64_t slot, uint64_t salt)
{
    return mix64(sb->seed ^ mix64((uint64_t)slot ^ salt));
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Heat pump: highest demand around 05:00, lowest around 17:00, compressor
 * cycles in 10-minute slots of which about 15 % idle. */
static int64_t heat_pump_pm(const struct steuerbox *sb, int64_t lmin, int64_t m)
{
    uint64_t n = noise(sb, floor_div(lmin, 10), 0x4870);
    int64_t d = (m - 300 + 1440) % 1440, dd = d < 720 ? d : 1440 - d;
    int64_t tri = 1000 - dd * 2000 / 720;

    if (n % 100 < 15)
        return 30;
    return 450 + tri / 4 + (int64_t)((n >> 8) % 201) - 100;
}

/* Wallbox: on 7 of 10 days a charging session at full power starting
 * between 17:00 and 20:00 for 1.5 to 4.5 hours, tapering in its last
 * quarter of an hour. */
static int64_t wallbox_pm(const struct steuerbox *sb, int64_t day, int64_t m)
{
    for (int64_t back = 0; back <= 1; back++) {
        uint64_t h = noise(sb, day - back, 0x5742);
        int64_t start = 17 * 60 + (int64_t)((h >> 8) % 180);
        int64_t len = 90 + (int64_t)((h >> 16) % 181);
        int64_t t = m + back * 1440 - start;

        if (h % 10 < 7 && t >= 0 && t < len)
            return t >= len - 15 ? 500 : 1000;
    }
    return 0;
}

/* Storage heater: charges in the night tariff window 22:00-06:00. */
static int64_t storage_heater_pm(const struct steuerbox *sb, int64_t lmin, int64_t m)
{
    if (m >= 22 * 60 || m < 6 * 60)
        return 800 + (int64_t)(noise(sb, floor_div(lmin, 15), 0x5348) % 201);
    return 0;
}

/* Parabola 0..1000..0 over [0, width). */
static int64_t arch(int64_t t, int64_t width)
{
    return t < 0 || t >= width ? 0 : 4 * t * (width - t) * 1000 / (width * width);
}

/* Battery: charges from the midday surplus, 10:00-16:00. */
static int64_t battery_pm(const struct steuerbox *sb, int64_t lmin, int64_t m)
{
    int64_t shape = arch(m - 600, 360);
    return shape * (700 + (int64_t)(noise(sb, floor_div(lmin, 15), 0x4241) % 301)) / 1000;
}

/* PV: a daylight arch from 06:00 to 20:00 under clouds that change every
 * quarter of an hour (55-100 % of clear sky). */
static int64_t pv_pm(const struct steuerbox *sb, int64_t lmin, int64_t m)
{
    int64_t shape = arch(m - 360, 840);
    return shape * (550 + (int64_t)(noise(sb, floor_div(lmin, 15), 0x5056) % 451)) / 1000;
}

int64_t steuerbox_demand_w(const struct steuerbox *sb, int64_t now_ms)
{
    int64_t lmin = floor_div(now_ms + LOCAL_OFFSET_MS, 60000);
    int64_t day = floor_div(lmin, 1440), m = lmin - day * 1440, pm = 0;

    switch ((enum steuerbox_kind)sb->kind) {
    case SB_HEAT_PUMP:
        pm = heat_pump_pm(sb, lmin, m);
        break;
    case SB_WALLBOX:
        pm = wallbox_pm(sb, day, m);
        break;
    case SB_STORAGE_HEATER:
        pm = storage_heater_pm(sb, lmin, m);
        break;
    case SB_BATTERY:
        pm = battery_pm(sb, lmin, m);
        break;
    case SB_PV:
        pm = pv_pm(sb, lmin, m);
        break;
    case SB_NKINDS:
        break;
    }
    return (int64_t)sb->rated_w * pm / 1000;
}

/* --- de-duplication ------------------------------------------------------- */

/* FNV-1a, then mixed; the ring keeps the low 48 bits. */
static uint64_t cmd_hash(const char *cmd)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (; *cmd; cmd++)
        h = (h ^ (unsigned char)*cmd) * 0x100000001b3u;
    return mix64(h);
}

static void hash_bytes(const char *cmd, uint8_t out[HASH_BYTES])
{
    uint64_t h = cmd_hash(cmd);
    for (int i = 0; i < HASH_BYTES; i++)
        out[i] = (uint8_t)(h >> (8 * i));
}

/* The ring entry of 'cmd', or NULL. An entry with count 0 is empty. */
static const uint8_t *ring_find(const struct steuerbox *sb, const char *cmd)
{
    uint8_t h[HASH_BYTES];

    hash_bytes(cmd, h);
    for (size_t i = 0; i < SB_DEDUPE; i++)
        if (sb->ring[i][HASH_BYTES] != 0 && memcmp(sb->ring[i], h, HASH_BYTES) == 0)
            return sb->ring[i];
    return NULL;
}

/* Count one application of 'cmd', taking the oldest slot for a new id. */
static void ring_count(struct steuerbox *sb, const char *cmd)
{
    uint8_t *e = (uint8_t *)ring_find(sb, cmd);

    if (e == NULL) {
        e = sb->ring[sb->ring_next];
        sb->ring_next = (uint8_t)((sb->ring_next + 1u) % SB_DEDUPE);
        hash_bytes(cmd, e);
        e[HASH_BYTES] = 0;
    }
    if (e[HASH_BYTES] < UINT8_MAX)
        e[HASH_BYTES]++;
}

unsigned steuerbox_applied_count(const struct steuerbox *sb, const char *cmd_id)
{
    const uint8_t *e = ring_find(sb, cmd_id);
    return e != NULL ? e[HASH_BYTES] : 0;
}

/* --- controls ------------------------------------------------------------- */

/* Appliers return 0, or a nack error number with '*why' set. */
typedef int (*applier)(struct steuerbox *sb, const struct lpc_control *c, int64_t now,
                       const char **why);

static int apply_limit(struct steuerbox *sb, const struct lpc_control *c, int64_t now,
                       const char **why)
{
    const struct lpc_limit *l = &c->u.limit;

    if (!supports(sb, l->direction)) {
        *why = l->direction == LPC_PRODUCTION ? "this device has no production limit"
                                              : "this device has no consumption limit";
        return LPC_ERR_UNSUPPORTED;
    }
    sb->limit_w[l->direction] = (uint32_t)l->value_w;
    sb->limit_active[l->direction] = l->active;
    sb->limit_until_ms[l->direction] =
        l->active && l->duration_s > 0 ? now + l->duration_s * 1000 : LPC_NONE;
    return 0;
}

static int apply_relay(struct steuerbox *sb, const struct lpc_control *c, int64_t now,
                       const char **why)
{
    (void)now;
    (void)why;
    sb->relay_closed[c->u.relay.index] = c->u.relay.closed;
    return 0;
}

static int apply_switch(struct steuerbox *sb, const struct lpc_control *c, int64_t now,
                        const char **why)
{
    (void)now;
    (void)why;
    lpc_relays_from_level(c->u.sw.level, sb->relay_closed);
    return 0;
}

static int apply_failsafe(struct steuerbox *sb, const struct lpc_control *c, int64_t now,
                          const char **why)
{
    (void)now;
    (void)why;
    sb->failsafe_w = (uint32_t)c->u.failsafe.value_w;
    sb->failsafe_s = (uint32_t)c->u.failsafe.duration_s;
    return 0;
}

static int apply_schedule(struct steuerbox *sb, const struct lpc_control *c, int64_t now,
                          const char **why)
{
    const struct lpc_schedule *s = &c->u.schedule;
    struct sb_schedule *ns;

    if (s->n == 0) {
        drop_schedule(sb);
        return 0;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (!s->iv[i].is_level && !supports(sb, s->iv[i].direction)) {
            *why = "the schedule limits a direction this device does not have";
            return LPC_ERR_UNSUPPORTED;
        }
    }
    if (s->iv[s->n - 1].end_ms <= now) {
        *why = "the schedule ends before the device's current time";
        return LPC_ERR_EXECUTION;
    }
    ns = malloc(sizeof *ns + s->n * sizeof ns->iv[0]);
    if (ns == NULL) {
        *why = "no memory for the schedule";
        return LPC_ERR_EXECUTION;
    }
    ns->base_ms = s->iv[0].start_ms;
    ns->n = s->n;
    for (size_t i = 0; i < s->n; i++) {
        const struct lpc_interval *iv = &s->iv[i];
        ns->iv[i].start_off = (uint32_t)(iv->start_ms - ns->base_ms);
        ns->iv[i].end_off = (uint32_t)(iv->end_ms - ns->base_ms);
        ns->iv[i].value_w = iv->is_level ? 0 : (uint32_t)iv->value_w;
        ns->iv[i].what = (uint8_t)(iv->is_level ? IV_ON + (int)iv->level : (int)iv->direction);
    }
    drop_schedule(sb);
    sb->schedule = ns;
    return 0;
}

static const applier appliers[] = {
    [LPC_CTL_LIMIT] = apply_limit,       [LPC_CTL_RELAY] = apply_relay,
    [LPC_CTL_SWITCH] = apply_switch,     [LPC_CTL_SCHEDULE] = apply_schedule,
    [LPC_CTL_FAILSAFE] = apply_failsafe, [LPC_CTL_READ] = NULL,
    [LPC_CTL_HEARTBEAT] = NULL,
};

/* Carry out a decoded control; fill the ack and the flags. */
static void execute(struct steuerbox *sb, const struct lpc_control *c, int64_t now,
                    struct lpc_ack *a, unsigned *flags)
{
    applier fn = appliers[c->type];
    const char *why = NULL;
    int code;

    lpc_ack_ok(a, c->cmd);
    if (c->type == LPC_CTL_READ)
        *flags |= SB_CTL_STATE;
    if (fn == NULL)
        return;
    if (ring_find(sb, c->cmd) != NULL) {
        sb->duplicates++;
        *flags |= SB_CTL_DUPLICATE | SB_CTL_STATE;
        return;
    }
    code = fn(sb, c, now, &why);
    if (code != 0) {
        lpc_ack_nack(a, c->cmd, (enum lpc_nack)code, NULL, why);
        *flags |= SB_CTL_NACK;
        return;
    }
    ring_count(sb, c->cmd);
    str_copy(sb->last_cmd, sizeof sb->last_cmd, c->cmd);
    *flags |= SB_CTL_APPLIED | SB_CTL_STATE;
}

int steuerbox_control(struct steuerbox *sb, const char *payload, size_t len, int64_t now_ms,
                      char *ack, size_t acklen, unsigned *flags)
{
    struct lpc_control c;
    struct lpc_error err;
    struct lpc_ack a;
    int rc;

    *flags = 0;
    now_ms = advance(sb, now_ms);
    contact(sb, now_ms);
    rc = lpc_control_decode(payload, len, &c, &err);
    if (rc == 0) {
        execute(sb, &c, now_ms, &a, flags);
    } else {
        lpc_ack_nack(&a, c.cmd, rc == -ENOTSUP ? LPC_ERR_UNSUPPORTED : LPC_ERR_PROTOCOL, &err,
                     NULL);
        *flags |= SB_CTL_NACK;
    }
    if (refresh(sb, now_ms))
        *flags |= SB_CTL_STATE;
    return lpc_ack_encode(&a, ack, acklen);
}

/* --- life cycle, link, queries -------------------------------------------- */

int steuerbox_init(struct steuerbox *sb, const char *device_id, enum steuerbox_kind kind,
                   uint32_t rated_w, uint64_t seed, uint32_t failsafe_w, uint32_t failsafe_s)
{
    if (device_id == NULL || !lpc_device_id_valid(device_id) || (unsigned)kind >= SB_NKINDS ||
        rated_w < 1 || rated_w > LPC_MAX_POWER_W || failsafe_w > LPC_MAX_POWER_W ||
        failsafe_s > LPC_MAX_FAILSAFE_S)
        return -EINVAL;
    memset(sb, 0, sizeof *sb);
    sb->device_id = device_id;
    sb->seed = seed;
    sb->now_ms = INT64_MIN;
    sb->failsafe_until_ms = LPC_NONE;
    sb->limit_until_ms[0] = sb->limit_until_ms[1] = LPC_NONE;
    sb->last_eff[0] = sb->last_eff[1] = CAP_NONE;
    sb->rated_w = rated_w;
    sb->dim_w = failsafe_w;
    sb->failsafe_w = failsafe_w;
    sb->failsafe_s = failsafe_s;
    sb->heartbeat_s = SB_HEARTBEAT_TIMEOUT;
    sb->kind = (uint8_t)kind;
    sb->link = SB_LINK_IDLE;
    sb->mode = sb->last_mode = LPC_MODE_NORMAL;
    return 0;
}

void steuerbox_fini(struct steuerbox *sb)
{
    drop_schedule(sb);
}

int steuerbox_set_heartbeat_timeout(struct steuerbox *sb, uint32_t seconds)
{
    if (seconds < 1 || seconds > 86400)
        return -EINVAL;
    sb->heartbeat_s = seconds;
    return 0;
}

int steuerbox_set_dim_w(struct steuerbox *sb, uint32_t dim_w)
{
    if (dim_w > LPC_MAX_POWER_W)
        return -EINVAL;
    sb->dim_w = dim_w;
    return 0;
}

int steuerbox_tick(struct steuerbox *sb, int64_t now_ms)
{
    return refresh(sb, advance(sb, now_ms));
}

void steuerbox_link_restored(struct steuerbox *sb, int64_t now_ms)
{
    contact(sb, advance(sb, now_ms));
}

void steuerbox_link_lost(struct steuerbox *sb, int64_t now_ms)
{
    now_ms = advance(sb, now_ms);
    /* An earlier loss or a running failsafe keeps its own clock. */
    if (sb->link != SB_LINK_LOST && sb->mode == LPC_MODE_NORMAL) {
        sb->link = SB_LINK_LOST;
        sb->contact_ms = now_ms;
    }
}

void steuerbox_link_closed(struct steuerbox *sb, int64_t now_ms)
{
    advance(sb, now_ms);
    if (sb->link == SB_LINK_UP)
        sb->link = SB_LINK_IDLE;
}

int64_t steuerbox_effective_limit_w(struct steuerbox *sb, int64_t now_ms)
{
    uint32_t cap = cap_of(sb, own_direction(sb), advance(sb, now_ms));
    return cap == CAP_NONE ? SB_UNLIMITED : (int64_t)cap;
}

int64_t steuerbox_measured_w(struct steuerbox *sb, int64_t now_ms)
{
    int64_t now = advance(sb, now_ms);
    uint32_t cap = cap_of(sb, own_direction(sb), now);
    int64_t w = steuerbox_demand_w(sb, now);

    if (cap != CAP_NONE && w > (int64_t)cap && !sb->overdraw)
        w = cap;
    return own_direction(sb) == LPC_PRODUCTION ? -w : w;
}

void steuerbox_snapshot(struct steuerbox *sb, int64_t now_ms, struct lpc_state *out)
{
    int64_t now = advance(sb, now_ms);

    memset(out, 0, sizeof *out);
    out->time_ms = now;
    for (int d = 0; d < LPC_NDIR; d++) {
        uint32_t cap = cap_of(sb, (enum lpc_direction)d, now);
        out->limit[d].value_w = sb->limit_w[d];
        out->limit[d].active = sb->limit_active[d];
        out->limit[d].until_ms = sb->limit_until_ms[d];
        out->effective_w[d] = cap == CAP_NONE ? LPC_NONE : (int64_t)cap;
    }
    out->relay_closed[0] = sb->relay_closed[0];
    out->relay_closed[1] = sb->relay_closed[1];
    out->level = lpc_level_from_relays(sb->relay_closed[0], sb->relay_closed[1]);
    out->mode = (enum lpc_mode)sb->mode;
    out->failsafe.value_w = sb->failsafe_w;
    out->failsafe.duration_s = sb->failsafe_s;
    out->failsafe.until_ms = sb->mode == LPC_MODE_FAILSAFE ? sb->failsafe_until_ms : LPC_NONE;
    out->measured_w = steuerbox_measured_w(sb, now);
    str_copy(out->last_cmd, sizeof out->last_cmd, sb->last_cmd);
}

int steuerbox_state(struct steuerbox *sb, int64_t now_ms, char *buf, size_t len)
{
    struct lpc_state s;
    steuerbox_snapshot(sb, now_ms, &s);
    return lpc_state_encode(&s, buf, len);
}

int steuerbox_telemetry(struct steuerbox *sb, int64_t now_ms, char *buf, size_t len)
{
    struct lpc_telemetry t = {0, 0, LPC_NONE, LPC_NONE, LPC_NONE, LPC_NONE, LPC_NONE};
    t.measured_w = steuerbox_measured_w(sb, now_ms);
    t.time_ms = sb->now_ms;
    return lpc_telemetry_encode(&t, buf, len);
}

enum lpc_mode steuerbox_mode(const struct steuerbox *sb)
{
    return (enum lpc_mode)sb->mode;
}

enum steuerbox_link steuerbox_link_state(const struct steuerbox *sb)
{
    return (enum steuerbox_link)sb->link;
}

uint32_t steuerbox_duplicates(const struct steuerbox *sb)
{
    return sb->duplicates;
}
