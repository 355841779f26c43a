/*
 * device.c - the home-area side: each CLS device is an MQTT client built on
 * libmosquitto, driven by the simulator's event loop, speaking lpc-mqtt
 * through the gateway's channel and running the Steuerbox model. The
 * gateway's home-area listener pairs incoming connections with channels by
 * the device's loopback address. See sim.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "driver/lpc_msg.h"
#include "smgw/sim.h"

/* Work that must not run inside a libmosquitto callback (freeing the
 * client there would pull the ground from under it) waits for the next
 * loop turn. */
struct later {
    struct sim *s;
    struct dev *d;
    struct chan *chan;
    char *payload; /* a delayed ack */
    size_t len;
    char reason[64];
};

static void service(struct dev *d);

static void publish(struct dev *d, enum lpc_topic kind, const char *payload, size_t len)
{
    char topic[LPC_TOPIC_MAX];
    if (d->mosq == NULL || lpc_topic_build(d->id, kind, topic, sizeof topic) < 0)
        return;
    mosquitto_publish(d->mosq, NULL, topic, (int)len, payload, 1, false);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
    struct later *l = arg;
    (void)fd;
    (void)what;
    if (l->d->chan == l->chan && l->chan != NULL) {
        if (l->payload) {
            publish(l->d, LPC_TOPIC_ACK, l->payload, l->len);
            service(l->d);
        } else {
            chan_close(l->chan, l->reason, 1);
        }
    }
    free(l->payload);
    free(l);
}

static void run_later(struct sim *s, struct dev *d, int delay_ms, const char *payload, size_t len,
                      const char *reason)
{
    struct later *l = calloc(1, sizeof *l);
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    if (l == NULL)
        return;
    l->s = s;
    l->d = d;
    l->chan = d->chan;
    if (payload) {
        l->payload = malloc(len);
        if (l->payload)
            memcpy(l->payload, payload, len);
        l->len = len;
    }
    if (reason)
        str_copy(l->reason, sizeof l->reason, reason);
    if (event_base_once(s->base, -1, EV_TIMEOUT, later_cb, l, &tv) != 0) {
        free(l->payload);
        free(l);
    }
}

/* --- the MQTT client ------------------------------------------------------------------- */

static struct sim *sim_of(struct dev *d);
/* Watch the client's socket for what it wants. */
static void service(struct dev *d)
{
    if (d->mosq == NULL || d->mev == NULL)
        return;
    short want = (short)(EV_READ | EV_PERSIST | (mosquitto_want_write(d->mosq) ? EV_WRITE : 0));
    if (event_get_events(d->mev) != want) {
        struct sim *s = sim_of(d);
        event_del(d->mev);
        event_assign(d->mev, s->base, mosquitto_socket(d->mosq), want, event_get_callback(d->mev),
                     d);
        event_add(d->mev, NULL);
    }
}

static struct sim *sim_of(struct dev *d)
{
    return d->sim;
}

static void socket_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dev *d = arg;
    int rc = MOSQ_ERR_SUCCESS;
    (void)fd;
    if (what & EV_READ)
        rc = mosquitto_loop_read(d->mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS && (what & EV_WRITE))
        rc = mosquitto_loop_write(d->mosq, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
        if (d->chan)
            run_later(sim_of(d), d, 0, NULL, 0, "the device lost its MQTT connection");
        return;
    }
    service(d);
}

static void on_connect(struct mosquitto *m, void *arg, int rc)
{
    struct dev *d = arg;
    char topic[LPC_TOPIC_MAX];
    if (rc != 0) {
        if (d->chan)
            run_later(sim_of(d), d, 0, NULL, 0, "clsmd refused the MQTT connection");
        return;
    }
    d->mqtt_up = 1;
    lpc_topic_build(d->id, LPC_TOPIC_CONTROL, topic, sizeof topic);
    mosquitto_subscribe(m, NULL, topic, 1);
}

/* A control from clsmd: apply it (the model de-duplicates command ids),
 * acknowledge, and report the state when the model says so. */
static void on_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg)
{
    struct dev *d = arg;
    struct sim *s = sim_of(d);
    char ack[LPC_REPORT_BUF], state[LPC_REPORT_BUF];
    unsigned flags = 0;
    int64_t now = time_now_ms();
    (void)m;

    s->controls++;
    d->controls++;
    if (d->chan)
        chan_touch(d->chan);
    if (d->faults & F_NACK) {
        struct lpc_control *c = malloc(sizeof *c);
        struct lpc_error err;
        struct lpc_ack a;
        if (c == NULL)
            return;
        lpc_control_decode(msg->payload, (size_t)msg->payloadlen, c, &err);
        lpc_ack_nack(&a, c->cmd, c->cmd[0] ? LPC_ERR_EXECUTION : LPC_ERR_PROTOCOL, NULL,
                     "simulated execution fault");
        free(c);
        int n = lpc_ack_encode(&a, ack, sizeof ack);
        if (n > 0)
            publish(d, LPC_TOPIC_ACK, ack, (size_t)n);
        s->nacks++;
        d->nacks++;
        return;
    }
    int n = steuerbox_control(&d->sb, msg->payload, (size_t)msg->payloadlen, now, ack, sizeof ack,
                              &flags);
    if (flags & SB_CTL_DUPLICATE) {
        s->duplicates++;
        d->duplicates++;
    }
    if ((d->faults & F_DROP) && !d->dropped_once && (flags & SB_CTL_APPLIED)) {
        /* Applied, but the channel goes down before the ack: the retry
         * with the same command id must not apply it again. */
        d->dropped_once = 1;
        run_later(s, d, 0, NULL, 0, "fault: channel dropped mid-command");
        return;
    }
    if (n > 0) {
        if (flags & SB_CTL_NACK) {
            s->nacks++;
            d->nacks++;
        } else {
            s->acks++;
            d->acks++;
        }
        if (d->faults & F_SLOW)
            run_later(s, d, d->fault_ms, ack, (size_t)n, NULL);
        else
            publish(d, LPC_TOPIC_ACK, ack, (size_t)n);
    }
    if (flags & SB_CTL_STATE) {
        int k = steuerbox_state(&d->sb, now, state, sizeof state);
        if (k > 0) {
            s->states++;
            publish(d, LPC_TOPIC_STATE, state, (size_t)k);
        }
    }
}

int device_connect(struct sim *s, struct dev *d)
{
    struct sockaddr_in a;
    char bind_addr[INET_ADDRSTRLEN], client_id[112];

    if (d->faults & F_MALFORMED) {
        /* What a broken device sends: not MQTT at all. */
        static const char junk[] = "\x10\xff\xff\xff\xff\x7f garbage";
        bufferevent_write(d->chan->wan, junk, sizeof junk - 1);
        return 0;
    }
    if (d->faults & F_CLAIM)
        str_copy(client_id, sizeof client_id, d->fault_arg);
    else
        snprintf(client_id, sizeof client_id, (d->faults & F_WRONG_ID) ? "%s-X" : "%s", d->id);
    d->mosq = mosquitto_new(client_id, true, d);
    if (d->mosq == NULL)
        return -ENOMEM;
    mosquitto_int_option(d->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_callback_set(d->mosq, on_connect);
    mosquitto_message_callback_set(d->mosq, on_message);
    fleet_dev_addr(d->idx, &a);
    inet_ntop(AF_INET, &a.sin_addr, bind_addr, sizeof bind_addr);
    /* A blocking connect is instant on loopback: the kernel completes the
     * handshake from the listener's backlog; this loop accepts it later. */
    int rc =
        mosquitto_connect_bind(d->mosq, "127.0.0.1", s->han_port, s->opt.keepalive_s, bind_addr);
    if (rc != MOSQ_ERR_SUCCESS) {
        LOG(LOG_WARN, "device cannot connect", LOG_S("device", d->id),
            LOG_S("error", mosquitto_strerror(rc)));
        mosquitto_destroy(d->mosq);
        d->mosq = NULL;
        return -EIO;
    }
    d->mev = event_new(s->base, mosquitto_socket(d->mosq), EV_READ | EV_PERSIST, socket_cb, d);
    if (d->mev == NULL || event_add(d->mev, NULL) != 0)
        return -ENOMEM;
    steuerbox_link_restored(&d->sb, time_now_ms());
    service(d);
    return 0;
}

void device_disconnect(struct sim *s, struct dev *d, int lost)
{
    (void)s;
    if (d->mev) {
        event_free(d->mev);
        d->mev = NULL;
    }
    if (d->mosq) {
        mosquitto_destroy(d->mosq);
        d->mosq = NULL;
        if (lost)
            steuerbox_link_lost(&d->sb, time_now_ms());
        else
            steuerbox_link_closed(&d->sb, time_now_ms());
    }
    d->mqtt_up = 0;
}

/* A sensor's readings: a door contact, smoke detector, fill level and
 * room climate in one (the registry does not say which); quiet unless a
 * fault says otherwise. */
static int sensor_telemetry(struct dev *d, int64_t now, char *buf, size_t len)
{
    long long fill = 40;
    if (d->faults & F_FILL)
        parse_ll(d->fault_arg, 0, 100, &fill);
    struct lpc_telemetry t = {now,
                              LPC_NONE,
                              (d->faults & F_DOOR) ? 1 : 0,
                              (d->faults & F_SMOKE) ? 1 : 0,
                              fill,
                              210 + (int64_t)(d->idx % 20),
                              45};
    return lpc_telemetry_encode(&t, buf, len);
}

void device_tick(struct sim *s, int64_t now)
{
    char buf[1024];
    for (struct chan *c = s->lru_head; c; c = c->next) {
        struct dev *d = c->dev;
        if (d->mosq == NULL || !d->mqtt_up)
            continue;
        mosquitto_loop_misc(d->mosq);
        if (steuerbox_tick(&d->sb, now)) {
            int n = steuerbox_state(&d->sb, now, buf, sizeof buf);
            if (n > 0) {
                s->states++;
                publish(d, LPC_TOPIC_STATE, buf, (size_t)n);
            }
        }
        /* Sensors report on their own (every 10 s unless --telemetry says). */
        int every = s->opt.telemetry_s > 0 ? s->opt.telemetry_s : d->sensor ? 10 : 0;
        if (every > 0 && now - d->last_telemetry_ms >= every * 1000LL) {
            int n = d->sensor ? sensor_telemetry(d, now, buf, sizeof buf)
                              : steuerbox_telemetry(&d->sb, now, buf, sizeof buf);
            d->last_telemetry_ms = now;
            if (n > 0) {
                s->telemetry++;
                publish(d, LPC_TOPIC_TELEMETRY, buf, (size_t)n);
            }
        }
        service(d);
    }
}

/* --- the gateway's home-area listener ---------------------------------------------------- */

static void han_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                          int salen, void *arg)
{
    struct sim *s = arg;
    struct dev *d = sa->sa_family == AF_INET && salen >= (int)sizeof(struct sockaddr_in)
                        ? fleet_dev_by_addr(s, (struct sockaddr_in *)(void *)sa)
                        : NULL;
    (void)l;
    if (d == NULL || d->chan == NULL || d->chan->han != NULL) {
        evutil_closesocket(fd); /* no channel waits for this device */
        return;
    }
    chan_attach_han(d->chan, fd);
}

int han_start(struct sim *s)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    mosquitto_lib_init();
    s->han = evconnlistener_new_bind(s->base, han_accept_cb, s,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096,
                                     (struct sockaddr *)&a, sizeof a);
    if (s->han == NULL)
        return -1;
    socklen_t len = sizeof a;
    getsockname(evconnlistener_get_fd(s->han), (struct sockaddr *)&a, &len);
    s->han_port = ntohs(a.sin_port);
    return 0;
}

void han_stop(struct sim *s)
{
    if (s->han)
        evconnlistener_free(s->han);
    s->han = NULL;
    mosquitto_lib_cleanup();
}
