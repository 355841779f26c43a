/*
 * dispatch.c - commands on devices through channels and GWAs; see
 * dispatch.h.
 */
#include "dispatch/dispatch.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "common/log.h"
#include "common/strmap.h"
#include "common/util.h"
#include "driver/driver.h"
#include "driver/lpc_msg.h"
#include "registry/registry.h"
#include "store/commit.h"
#include "store/store.h"

enum cmd_state {
    C_PENDING,
    C_CHANNEL_REQUESTED,
    C_CHANNEL_OPEN,
    C_SENT,
    C_ACKED,
    C_CONFIRMED,
    C_FAILED,
    C_NSTATES
};

static const char *const cmd_state_names[C_NSTATES] = {
    "pending", "channel_requested", "channel_open", "sent", "acked", "confirmed", "failed"};

struct dev;

struct cmd {
    char id[40];
    struct dev *dev;
    json_t *control;
    enum cmd_state state;
    char by[40];
    int64_t created_ms, deadline_ms, updated_ms;
    int64_t steps[C_NSTATES];
    int attempts;
    int stored;      /* durable at least once: may be sent */
    char error[512]; /* holds a GWA reason (up to 255 bytes) with its prefix */
    bool permanent;  /* failed for a reason retrying will not change */
    bool urgent;     /* its channel is asked for ahead of other work */
    struct event *timer;
    int dirty;
    struct cmd *dirty_next;
    unsigned gen, written_gen; /* changes, and the change last written */
    dispatch_done_fn done;
    void *done_arg;
    struct cmd *next; /* the device's queue */
};

struct dev {
    char id[97];
    char smgw[16];
    struct channel *ch;
    int channel_asked;
    struct cmd *head, *tail;
    /* A device whose channel is kept open (sensors): asked for again after
     * a close or a refusal, backing off 5 s .. 5 min. */
    bool keep;
    int keep_backoff_s;
    struct event *keep_ev;
    struct dispatch *d;
};

struct dispatch {
    struct event_base *base;
    struct store *store;
    struct audit *audit;
    struct dispatch_config cfg;
    struct channel_mgr *channels;
    struct gwa_client *gwa;
    struct committer *committer;
    struct cmd *dirty, *writing;
    struct strmap devs; /* struct dev by id */
    struct strmap cmds; /* unfinished struct cmd by id */
    int counts[C_NSTATES];
    uint64_t entered[C_NSTATES];
    struct dispatch_observer obs;
    dispatch_sensor_fn sensor_fn;
    void *sensor_arg;
};

_Static_assert(C_NSTATES == DISPATCH_NSTATES, "dispatch.h must know every command state");

/* --- tables of devices and live commands ------------------------------------------- */

static void dev_free(void *p)
{
    struct dev *v = p;
    if (v->keep_ev)
        event_free(v->keep_ev);
    free(v);
}

static struct dev *dev_find(struct dispatch *d, const char *id)
{
    return strmap_get(&d->devs, id);
}

/* The device, created on first use from the registry (which says its
 * gateway). NULL when the registry does not know it. */
static struct dev *dev_get(struct dispatch *d, const char *id)
{
    struct dev *v = dev_find(d, id);
    struct store_scope all = {SCOPE_ALL, NULL, NULL};
    json_t *o = NULL;

    if (v)
        return v;
    if (!reg_id_valid(&reg_kinds[REG_DEVICE], id) ||
        store_reg_get(d->store, &reg_kinds[REG_DEVICE], id, &all, &o) != 0)
        return NULL;
    v = calloc(1, sizeof *v);
    if (v && strmap_put(&d->devs, id, v) != 0) {
        free(v);
        v = NULL;
    }
    if (v) {
        str_copy(v->id, sizeof v->id, id);
        str_copy(v->smgw, sizeof v->smgw, json_string_value(json_object_get(o, "smgw")));
        if (d->channels)
            v->ch = channel_mgr_find(d->channels, id);
    }
    json_decref(o);
    return v;
}

static struct cmd *cmd_find(struct dispatch *d, const char *id)
{
    return strmap_get(&d->cmds, id);
}

/* --- representation -------------------------------------------------------------------- */

/* The row as store.h wants it (times in milliseconds). */
static json_t *cmd_row(const struct cmd *c)
{
    json_t *steps = json_object();
    for (int i = 0; i < C_NSTATES; i++)
        if (c->steps[i])
            json_object_set_new(steps, cmd_state_names[i], json_integer(c->steps[i]));
    json_t *o = json_pack(
        "{s:s, s:s, s:O, s:s, s:s, s:I, s:I, s:I, s:i, s:o}", "id", c->id, "device", c->dev->id,
        "control", c->control, "state", cmd_state_names[c->state], "requested_by", c->by,
        "created_at", (json_int_t)c->created_ms, "deadline", (json_int_t)c->deadline_ms,
        "updated_at", (json_int_t)c->updated_ms, "attempts", c->attempts, "steps", steps);
    json_object_set_new(o, "error", c->error[0] ? json_string(c->error) : json_null());
    return o;
}

/* Write the command: the whole row the first time, then what changes. */
static int cmd_put(struct dispatch *d, const struct cmd *c)
{
    char steps[C_NSTATES * 40 + 8];
    size_t n = 0;
    steps[n++] = '{';
    for (int i = 0; i < C_NSTATES; i++)
        if (c->steps[i])
            n += (size_t)snprintf(steps + n, sizeof steps - n, "%s\"%s\":%lld", n > 1 ? "," : "",
                                  cmd_state_names[i], (long long)c->steps[i]);
    snprintf(steps + n, sizeof steps - n, "}");
    struct store_command row = {
        .id = c->id,
        .device = c->dev->id,
        .state = cmd_state_names[c->state],
        .requested_by = c->by,
        .error = c->error[0] ? c->error : NULL,
        .steps = steps,
        .created_at = c->created_ms,
        .deadline = c->deadline_ms,
        .updated_at = c->updated_ms,
        .attempts = c->attempts,
        .is_new = !c->stored,
    };
    char *control = NULL;
    if (row.is_new) {
        control = json_dumps(c->control, JSON_COMPACT | JSON_SORT_KEYS);
        if (control == NULL)
            return -ENOMEM;
        row.control = control;
    }
    int rc = store_command_put(d->store, &row);
    free(control);
    return rc;
}

/* A stored row in API form: times as RFC 3339. */
static json_t *api_form(const json_t *row)
{
    char t[40];
    json_t *o = json_deep_copy(row), *steps = json_object(), *v;
    const char *key;
    static const char *const times[] = {"created_at", "deadline", "updated_at"};
    for (size_t i = 0; i < ARRAY_LEN(times); i++)
        json_object_set_new(o, times[i],
                            json_string(time_format_ms(
                                json_integer_value(json_object_get(row, times[i])), t, sizeof t)));
    json_object_foreach(json_object_get(row, "steps"), key, v) json_object_set_new(
        steps, key, json_string(time_format_ms(json_integer_value(v), t, sizeof t)));
    json_object_set_new(o, "steps", steps);
    return o;
}

/* --- durability --------------------------------------------------------------------------- */

/* Put 'c' on the list the next commit writes. */
static void enlist(struct dispatch *d, struct cmd *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        c->dirty_next = d->dirty;
        d->dirty = c;
    }
    commit_want(d->committer);
}

static void mark_dirty(struct dispatch *d, struct cmd *c)
{
    c->gen++;
    enlist(d, c);
}

static void kick(struct dispatch *d, struct dev *v);
static void cmd_free(struct dispatch *d, struct cmd *c);

/* The group commit's writer: every changed command, in the one transaction
 * of this loop iteration. */
static int dispatch_write(void *arg)
{
    struct dispatch *d = arg;
    d->writing = d->dirty;
    d->dirty = NULL;
    for (struct cmd *c = d->writing; c; c = c->dirty_next) {
        int rc = cmd_put(d, c);
        if (rc != 0)
            return rc;
        c->written_gen = c->gen;
    }
    return 0;
}

/* After the commit: answer the submitters, start what became durable and
 * drop what is finished. After a failed one: the commands stay dirty. */
static void dispatch_done(void *arg, int rc)
{
    struct dispatch *d = arg;
    struct cmd *list = d->writing, *c, *next;
    d->writing = NULL;
    if (rc != 0) {
        for (c = list; c; c = next) {
            next = c->dirty_next;
            c->dirty_next = d->dirty;
            d->dirty = c;
            /* Submitters learn of it now; their commands stay and retry. */
            if (c->done) {
                dispatch_done_fn done = c->done;
                c->done = NULL;
                done(c->done_arg, -EIO, NULL);
            }
        }
        return;
    }
    for (c = list; c; c = next) {
        next = c->dirty_next;
        c->dirty = 0;
        c->dirty_next = NULL;
        int first = !c->stored;
        c->stored = 1;
        if (c->gen != c->written_gen)
            enlist(d, c); /* changed after it was written */
        if (c->done) {
            dispatch_done_fn done = c->done;
            json_t *row = cmd_row(c), *api = api_form(row);
            c->done = NULL;
            done(c->done_arg, 0, api);
            json_decref(api);
            json_decref(row);
        }
        if (!c->dirty && (c->state == C_CONFIRMED || c->state == C_FAILED))
            cmd_free(d, c);
        else if (first)
            kick(d, c->dev);
    }
}

/* --- the command state machine -------------------------------------------------------------- */

static int may_follow(enum cmd_state from, enum cmd_state to)
{
    if (from == C_CONFIRMED || from == C_FAILED)
        return 0;
    switch (to) {
    case C_CHANNEL_REQUESTED:
        return 1; /* first ask, or ask again after the channel was lost */
    case C_CHANNEL_OPEN:
        return from == C_PENDING || from == C_CHANNEL_REQUESTED || from == C_SENT ||
               from == C_ACKED;
    case C_SENT:
        return from == C_CHANNEL_OPEN || from == C_SENT || from == C_ACKED;
    case C_ACKED:
        return from == C_SENT;
    case C_CONFIRMED:
        return from == C_ACKED || from == C_SENT;
    case C_FAILED:
        return 1;
    default:
        return 0;
    }
}

static void arm(struct cmd *c, int64_t at_ms)
{
    int64_t in = at_ms - time_now_ms();
    if (in < 0)
        in = 0;
    struct timeval tv = {(time_t)(in / 1000), (suseconds_t)(in % 1000) * 1000};
    event_add(c->timer, &tv);
}

/* The single transition function of commands. */
static void cmd_set_state(struct dispatch *d, struct cmd *c, enum cmd_state to, const char *error)
{
    if (!may_follow(c->state, to)) {
        LOG(LOG_ERROR, "command state change refused", LOG_S("command", c->id),
            LOG_S("from", cmd_state_names[c->state]), LOG_S("to", cmd_state_names[to]));
        return;
    }
    d->counts[c->state]--;
    d->counts[to]++;
    d->entered[to]++;
    c->state = to;
    c->updated_ms = c->steps[to] = time_now_ms();
    if (error)
        str_copy(c->error, sizeof c->error, error);
    LOG(to == C_FAILED ? LOG_WARN : LOG_DEBUG, "command", LOG_S("command", c->id),
        LOG_S("device", c->dev->id), LOG_S("state", cmd_state_names[to]),
        LOG_I("attempts", c->attempts), LOG_S("error", error));
    if (d->obs.command)
        d->obs.command(d->obs.arg, c->dev->id, c->id, cmd_state_names[to], c->attempts,
                       to == C_FAILED ? c->error : NULL, c->permanent);
    if (to == C_CONFIRMED || to == C_FAILED) {
        event_del(c->timer);
        json_t *p = json_pack("{s:s, s:s, s:i}", "command", c->id, "device", c->dev->id, "attempts",
                              c->attempts);
        if (error)
            json_object_set_new(p, "error", json_string(error));
        char subject[128];
        snprintf(subject, sizeof subject, "device:%s", c->dev->id);
        if (d->audit)
            audit_append(d->audit, to == C_CONFIRMED ? "command.confirmed" : "command.failed",
                         subject, c->by, p);
        else
            json_decref(p);
        /* Next in line for this device. */
        struct dev *v = c->dev;
        if (v->head == c) {
            v->head = c->next;
            if (v->tail == c)
                v->tail = NULL;
        }
        c->next = NULL;
        if (v->head)
            kick(d, v);
    } else {
        arm(c, to == C_SENT && c->steps[C_SENT] + d->cfg.ack_timeout_s * 1000LL < c->deadline_ms
                   ? c->steps[C_SENT] + d->cfg.ack_timeout_s * 1000LL
                   : c->deadline_ms);
    }
    mark_dirty(d, c);
}

static void send_read(struct dispatch *d, struct cmd *c)
{
    char id[64];
    json_t *read = json_pack("{s:s}", "type", "read");
    const struct driver_ops *drv = channel_driver(c->dev->ch);
    snprintf(id, sizeof id, "%s.r%d", c->id, c->attempts);
    int rc = drv->send(c->dev->ch, channel_driver_state(c->dev->ch), id, read);
    json_decref(read);
    if (rc != 0)
        LOG(LOG_WARN, "read-back not sent", LOG_S("command", c->id), LOG_I("rc", rc));
    (void)d;
}

/* Send the command (again, with the same id) over the open channel. */
static void send_cmd(struct dispatch *d, struct cmd *c)
{
    struct channel *ch = c->dev->ch;
    const struct driver_ops *drv = channel_driver(ch);
    int rc;

    if (c->state != C_CHANNEL_OPEN && c->state != C_SENT && c->state != C_ACKED)
        cmd_set_state(d, c, C_CHANNEL_OPEN, NULL);
    c->attempts++;
    rc = drv->send(ch, channel_driver_state(ch), c->id, c->control);
    if (rc == -EINVAL) {
        cmd_set_state(d, c, C_FAILED, "the device protocol cannot carry this control");
        return;
    }
    if (rc != 0) {
        /* The channel is full or closing; the timer sends again. */
        LOG(LOG_WARN, "command not sent", LOG_S("command", c->id), LOG_I("rc", rc));
    }
    cmd_set_state(d, c, C_SENT, NULL);
}

static void ask_for_channel(struct dispatch *d, struct cmd *c)
{
    struct dev *v = c->dev;
    if (d->gwa == NULL) {
        cmd_set_state(d, c, C_FAILED, "no channel and no GWA client (channels are off)");
        return;
    }
    if (!v->channel_asked || c->urgent) { /* again when urgent: moves it ahead */
        int rc = gwa_client_request(d->gwa, v->smgw, v->id, c->urgent);
        if (rc != 0) {
            cmd_set_state(d, c, C_FAILED,
                          rc == -ENOENT ? "the gateway or its GWA is not in the registry"
                                        : "cannot ask the GWA for a channel");
            return;
        }
        v->channel_asked = 1;
    }
    if (c->state != C_CHANNEL_REQUESTED)
        cmd_set_state(d, c, C_CHANNEL_REQUESTED, NULL);
}

/* Move the device's first command along as far as it can go now. */
static void kick(struct dispatch *d, struct dev *v)
{
    struct cmd *c = v->head;
    if (c == NULL || !c->stored)
        return;
    if (v->ch && channel_state_of(v->ch) == CH_OPEN) {
        if (c->state == C_PENDING || c->state == C_CHANNEL_REQUESTED || c->state == C_CHANNEL_OPEN)
            send_cmd(d, c);
    } else if (c->state == C_PENDING || c->state == C_CHANNEL_OPEN || c->state == C_SENT ||
               c->state == C_ACKED) {
        ask_for_channel(d, c);
    }
}

/* The per-command timer: past the deadline it fails; otherwise an
 * unacknowledged send is repeated (same id). */
struct timer_ctx {
    struct dispatch *d;
    struct cmd *c;
};

static void cmd_timer(struct dispatch *d, struct cmd *c)
{
    int64_t now = time_now_ms();
    if (now >= c->deadline_ms) {
        char why[200];
        snprintf(why, sizeof why, "not confirmed by the deadline (last step: %s)",
                 cmd_state_names[c->state]);
        cmd_set_state(d, c, C_FAILED, why);
        return;
    }
    if (c->state == C_SENT && c->dev->ch) {
        send_cmd(d, c);
        return;
    }
    if (c->state == C_ACKED && c->dev->ch) {
        send_read(d, c);
        arm(c, now + d->cfg.ack_timeout_s * 1000LL < c->deadline_ms
                   ? now + d->cfg.ack_timeout_s * 1000LL
                   : c->deadline_ms);
        return;
    }
    arm(c, c->deadline_ms);
}

static void cmd_free(struct dispatch *d, struct cmd *c)
{
    strmap_del(&d->cmds, c->id);
    d->counts[c->state]--;
    if (c->timer) {
        struct timer_ctx *tc = event_get_callback_arg(c->timer);
        event_free(c->timer);
        free(tc);
    }
    json_decref(c->control);
    free(c);
}

static void timer_trampoline(evutil_socket_t fd, short what, void *arg)
{
    struct timer_ctx *tc = arg;
    (void)fd;
    (void)what;
    cmd_timer(tc->d, tc->c);
}

static struct cmd *cmd_new(struct dispatch *d, struct dev *v, const char *id, const json_t *control,
                           const char *by, int64_t deadline_ms)
{
    struct cmd *c = calloc(1, sizeof *c);
    struct timer_ctx *tc = calloc(1, sizeof *tc);
    if (c == NULL || tc == NULL) {
        free(c);
        free(tc);
        return NULL;
    }
    tc->d = d;
    tc->c = c;
    c->timer = evtimer_new(d->base, timer_trampoline, tc);
    if (c->timer == NULL) {
        free(c);
        free(tc);
        return NULL;
    }
    str_copy(c->id, sizeof c->id, id);
    if (strmap_put(&d->cmds, c->id, c) != 0) {
        event_free(c->timer);
        free(tc);
        free(c);
        return NULL;
    }
    c->dev = v;
    c->control = json_deep_copy(control);
    str_copy(c->by, sizeof c->by, by);
    c->created_ms = c->updated_ms = c->steps[C_PENDING] = time_now_ms();
    c->deadline_ms = deadline_ms;
    c->state = C_PENDING;
    d->counts[C_PENDING]++;
    d->entered[C_PENDING]++;
    if (v->tail)
        v->tail->next = c;
    else
        v->head = c;
    v->tail = c;
    arm(c, deadline_ms);
    return c;
}

/* --- what channels and GWAs report ---------------------------------------------------------- */

static void on_opened(void *arg, struct channel *ch, const char *device)
{
    struct dispatch *d = arg;
    struct dev *v = dev_find(d, device);
    if (d->gwa)
        gwa_client_done(d->gwa, device);
    if (d->obs.channel)
        d->obs.channel(d->obs.arg, device, true);
    if (v == NULL)
        return; /* nothing to do for it (yet) */
    v->ch = ch;
    v->channel_asked = 0;
    v->keep_backoff_s = 0;
    kick(d, v);
}

/* --- kept channels ------------------------------------------------------------------------ */

static void keep_ask(struct dispatch *d, struct dev *v)
{
    if (!v->keep || v->ch || v->channel_asked || d->gwa == NULL)
        return;
    if (gwa_client_request(d->gwa, v->smgw, v->id, false) == 0)
        v->channel_asked = 1;
}

static void keep_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dev *v = arg;
    (void)fd;
    (void)what;
    keep_ask(v->d, v);
}

/* Ask again later: 5 s, doubling up to 5 minutes until a channel opens. */
static void keep_later(struct dispatch *d, struct dev *v)
{
    if (!v->keep)
        return;
    if (v->keep_ev == NULL && (v->keep_ev = evtimer_new(d->base, keep_cb, v)) == NULL)
        return;
    v->keep_backoff_s = v->keep_backoff_s ? v->keep_backoff_s * 2 : 5;
    if (v->keep_backoff_s > 300)
        v->keep_backoff_s = 300;
    struct timeval tv = {v->keep_backoff_s, 0};
    evtimer_add(v->keep_ev, &tv);
}

int dispatch_keep_channel(struct dispatch *d, const char *device)
{
    struct dev *v = dev_get(d, device);
    if (v == NULL)
        return -ENOENT;
    if (v->keep)
        return 0;
    v->keep = true;
    v->d = d;
    keep_ask(d, v);
    return 0;
}

void dispatch_set_sensor_listener(struct dispatch *d, dispatch_sensor_fn fn, void *arg)
{
    d->sensor_fn = fn;
    d->sensor_arg = arg;
}

static void on_closed(void *arg, struct channel *ch, const char *device, const char *reason)
{
    struct dispatch *d = arg;
    struct dev *v = dev_find(d, device);
    (void)reason;
    if (v == NULL || v->ch != ch)
        return;
    v->ch = NULL;
    if (d->obs.channel)
        d->obs.channel(d->obs.arg, device, false);
    /* A command in flight is asked for again; the device de-duplicates
     * its id if it got it the first time. */
    if (v->head && v->head->stored && v->head->state != C_PENDING)
        ask_for_channel(d, v->head);
    else
        keep_later(d, v);
}

/* Does the reported state show that 'control' took effect? */
static int confirms(const json_t *control, const struct lpc_state *st)
{
    const char *type = json_string_value(json_object_get(control, "type"));
    if (type == NULL)
        return 0;
    if (strcmp(type, "limit") == 0) {
        const char *dir = json_string_value(json_object_get(control, "direction"));
        int i = dir && strcmp(dir, "production") == 0 ? LPC_PRODUCTION : LPC_CONSUMPTION;
        return st->limit[i].value_w == json_integer_value(json_object_get(control, "value_w")) &&
               st->limit[i].active == json_is_true(json_object_get(control, "active"));
    }
    if (strcmp(type, "relay") == 0) {
        json_int_t idx = json_integer_value(json_object_get(control, "index"));
        return idx >= 0 && idx < 2 &&
               st->relay_closed[idx] == json_is_true(json_object_get(control, "closed"));
    }
    if (strcmp(type, "switch") == 0) {
        const char *level = json_string_value(json_object_get(control, "level"));
        return level && strcmp(lpc_level_name(st->level), level) == 0;
    }
    if (strcmp(type, "failsafe") == 0)
        return st->failsafe.value_w == json_integer_value(json_object_get(control, "value_w")) &&
               st->failsafe.duration_s ==
                   json_integer_value(json_object_get(control, "duration_s"));
    /* read, schedule: a state after the acknowledgement is the proof. */
    return 1;
}

static void on_ack(void *arg, const char *device, const char *cmd, int ok, int error,
                   const char *reason)
{
    struct dispatch *d = arg;
    struct dev *v = dev_find(d, device);
    struct cmd *c = v ? v->head : NULL;
    if (c == NULL || strcmp(c->id, cmd) != 0)
        return; /* a read-back's ack, or a late one */
    if (c->state != C_SENT)
        return;
    if (!ok) {
        char why[300];
        snprintf(why, sizeof why, "the device refused it (error %d%s%s)", error, reason ? ": " : "",
                 reason ? reason : "");
        c->permanent = true; /* the same control would be refused again */
        cmd_set_state(d, c, C_FAILED, why);
        return;
    }
    cmd_set_state(d, c, C_ACKED, NULL);
    const char *type = json_string_value(json_object_get(c->control, "type"));
    if (type && strcmp(type, "heartbeat") == 0)
        cmd_set_state(d, c, C_CONFIRMED, NULL);
    else
        send_read(d, c);
}

static void on_state(void *arg, const char *device, const struct lpc_state *state)
{
    struct dispatch *d = arg;
    if (d->obs.state)
        d->obs.state(d->obs.arg, device, state);
    struct dev *v = dev_find(d, device);
    struct cmd *c = v ? v->head : NULL;
    if (c == NULL || c->state != C_ACKED)
        return;
    if (confirms(c->control, state))
        cmd_set_state(d, c, C_CONFIRMED, NULL);
    else
        cmd_set_state(d, c, C_FAILED, "the device acknowledged, but its state does not show it");
}

static void on_telemetry(void *arg, const char *device, const struct lpc_telemetry *telemetry)
{
    struct dispatch *d = arg;
    if (d->obs.telemetry && telemetry->measured_w != LPC_NONE)
        d->obs.telemetry(d->obs.arg, device, telemetry->time_ms, telemetry->measured_w);
    if (d->sensor_fn)
        d->sensor_fn(d->sensor_arg, device, telemetry);
}

struct channel_listener dispatch_channel_listener(struct dispatch *d)
{
    struct channel_listener l = {on_opened, on_closed, on_ack, on_state, on_telemetry, d};
    return l;
}

void dispatch_gwa_result(void *arg, const char *device, enum gwa_outcome outcome, int status,
                         const char *reason)
{
    struct dispatch *d = arg;
    struct dev *v = dev_find(d, device);
    if (v == NULL)
        return;
    if (outcome == GWA_ACCEPTED)
        return; /* the gateway will dial in */
    v->channel_asked = 0;
    if (v->head == NULL)
        keep_later(d, v);
    if (outcome == GWA_EXPIRED) {
        /* Ask again while the deadline allows. */
        if (v->head && v->head->stored && !(v->ch && channel_state_of(v->ch) == CH_OPEN))
            ask_for_channel(d, v->head);
        return;
    }
    /* Refused: every waiting command of the device fails with the reason;
     * an answer of 4xx is the GWA's verdict, not a passing failure. */
    while (v->head) {
        struct cmd *c = v->head;
        c->permanent = status >= 400 && status < 500;
        cmd_set_state(d, c, C_FAILED, reason);
        if (v->head == c)
            break; /* not movable (already final): avoid looping */
    }
}

/* --- public -------------------------------------------------------------------------------------
 */

struct dispatch *dispatch_new(struct event_base *base, struct store *store, struct audit *audit,
                              struct committer *committer, const struct dispatch_config *cfg)
{
    struct dispatch *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->base = base;
    d->store = store;
    d->audit = audit;
    d->committer = committer;
    d->cfg = *cfg;
    struct commit_writer w = {dispatch_write, dispatch_done, d};
    if (commit_add(committer, &w) != 0) {
        dispatch_free(d);
        return NULL;
    }
    return d;
}

void dispatch_attach(struct dispatch *d, struct channel_mgr *channels, struct gwa_client *gwa)
{
    d->channels = channels;
    d->gwa = gwa;
}

int dispatch_submit(struct dispatch *d, const char *device, const json_t *control, const char *by,
                    int64_t deadline_ms, dispatch_done_fn done, void *arg)
{
    struct dev *v = dev_get(d, device);
    uint8_t rnd[8];
    char id[40], hex[17];

    if (v == NULL)
        return -ENOENT;
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return -EIO;
    hex_encode(rnd, sizeof rnd, hex);
    snprintf(id, sizeof id, "cmd-%s", hex);
    if (deadline_ms <= 0)
        deadline_ms = time_now_ms() + d->cfg.deadline_s * 1000LL;
    struct cmd *c = cmd_new(d, v, id, control, by, deadline_ms);
    if (c == NULL)
        return -ENOMEM;
    c->done = done;
    c->done_arg = arg;
    c->urgent = true; /* an operator's command */
    LOG(LOG_INFO, "command submitted", LOG_S("command", c->id), LOG_S("device", device),
        LOG_S("by", by));
    mark_dirty(d, c);
    return 0;
}

int dispatch_send(struct dispatch *d, const char *device, const json_t *control, const char *by,
                  int64_t deadline_ms, bool urgent, char id_out[DISPATCH_ID_MAX])
{
    struct dev *v = dev_get(d, device);
    uint8_t rnd[8];
    char id[40], hex[17];

    if (v == NULL)
        return -ENOENT;
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return -EIO;
    hex_encode(rnd, sizeof rnd, hex);
    snprintf(id, sizeof id, "cmd-%s", hex);
    struct cmd *c = cmd_new(d, v, id, control, by, deadline_ms);
    if (c == NULL)
        return -ENOMEM;
    c->urgent = urgent;
    if (id_out)
        str_copy(id_out, DISPATCH_ID_MAX, id);
    mark_dirty(d, c);
    return 0;
}

const char *dispatch_busy(struct dispatch *d, const char *device)
{
    struct dev *v = dev_find(d, device);
    return v && v->head ? v->head->id : NULL;
}

bool dispatch_channel_open(struct dispatch *d, const char *device)
{
    struct dev *v = dev_find(d, device);
    return v && v->ch && channel_state_of(v->ch) == CH_OPEN;
}

void dispatch_set_observer(struct dispatch *d, const struct dispatch_observer *o)
{
    d->obs = *o;
}

int dispatch_command(struct dispatch *d, const char *id, json_t **out)
{
    struct cmd *c = cmd_find(d, id);
    json_t *row = NULL;
    int rc;

    *out = NULL;
    if (c) {
        row = cmd_row(c);
    } else if ((rc = store_command_get(d->store, id, &row)) != 0) {
        return rc;
    }
    *out = api_form(row);
    json_decref(row);
    return 0;
}

int dispatch_resume(struct dispatch *d)
{
    json_t *items = NULL, *it;
    size_t i;
    int rc = store_command_active(d->store, &items);
    if (rc != 0)
        return rc;
    json_array_foreach(items, i, it)
    {
        struct dev *v = dev_get(d, json_string_value(json_object_get(it, "device")));
        if (v == NULL)
            continue;
        struct cmd *c = cmd_new(d, v, json_string_value(json_object_get(it, "id")),
                                json_object_get(it, "control"),
                                json_string_value(json_object_get(it, "requested_by")),
                                json_integer_value(json_object_get(it, "deadline")));
        if (c == NULL)
            continue;
        c->created_ms = json_integer_value(json_object_get(it, "created_at"));
        c->attempts = (int)json_integer_value(json_object_get(it, "attempts"));
        json_t *steps = json_object_get(it, "steps"), *sv;
        const char *key;
        json_object_foreach(steps, key, sv)
        {
            for (int s = 0; s < C_NSTATES; s++)
                if (strcmp(key, cmd_state_names[s]) == 0)
                    c->steps[s] = json_integer_value(sv);
        }
        c->stored = 1;
        LOG(LOG_INFO, "command resumed", LOG_S("command", c->id), LOG_S("device", v->id),
            LOG_S("was", json_string_value(json_object_get(it, "state"))));
    }
    json_decref(items);
    /* Start each device's first command. */
    for (size_t b = 0; b < d->devs.nb; b++)
        for (struct strmap_ent *e = d->devs.b[b]; e; e = e->next)
            kick(d, e->val);
    return 0;
}

const char *dispatch_state_name(int state)
{
    return state >= 0 && state < C_NSTATES ? cmd_state_names[state] : "unknown";
}

void dispatch_stats(const struct dispatch *d, struct dispatch_stats *out)
{
    memcpy(out->live, d->counts, sizeof d->counts);
    memcpy(out->entered, d->entered, sizeof d->entered);
    out->gwa_queued = out->gwa_waiting = out->gwa_exchanges = 0;
    if (d->gwa)
        gwa_client_counts(d->gwa, &out->gwa_queued, &out->gwa_exchanges, &out->gwa_waiting);
}

void dispatch_free(struct dispatch *d)
{
    if (d == NULL)
        return;
    for (size_t b = 0; b < d->cmds.nb; b++) {
        while (d->cmds.b && d->cmds.b[b]) { /* cmd_free() takes it out of the table */
            struct cmd *c = d->cmds.b[b]->val;
            if (c->done)
                c->done(c->done_arg, -ECANCELED, NULL);
            cmd_free(d, c);
        }
    }
    strmap_clear(&d->cmds, NULL);
    strmap_clear(&d->devs, dev_free);
    free(d);
}
