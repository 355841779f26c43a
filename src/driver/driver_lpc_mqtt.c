/*
 * driver_lpc_mqtt.c - the server end of one MQTT 3.1.1 session per channel
 * carrying the lpc-mqtt messages (docs/protocols/lpc-mqtt.md): the device
 * connects with its id as client id, subscribes to cls/<id>/control, and
 * publishes acks, states and telemetry with QoS 1. See driver.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/channel.h"
#include "common/log.h"
#include "common/util.h"
#include "driver/driver.h"
#include "driver/lpc_msg.h"
#include "driver/mqtt.h"

#define PULL_MAX (64 * 1024 + MQTT_MAX_HEADER) /* a frame is decoded from contiguous bytes */

struct lpc_session {
    int connected; /* CONNECT accepted */
    int ready;     /* subscribed to its control topic: the channel is open */
    uint16_t next_pid;
    char device[LPC_DEVICE_ID_MAX + 1];
    char control_topic[LPC_TOPIC_MAX];
};

const struct driver_ops *driver_find(const char *name)
{
    return strcmp(name, driver_lpc_mqtt.name) == 0 ? &driver_lpc_mqtt : NULL;
}

static int lpc_attach(struct channel *ch, void **state)
{
    struct lpc_session *s = calloc(1, sizeof *s);
    (void)ch;
    if (s == NULL)
        return -ENOMEM;
    s->next_pid = 1;
    *state = s;
    return 0;
}

static void lpc_detach(struct channel *ch, void *state)
{
    (void)ch;
    free(state);
}

static int send_packet(struct channel *ch, const uint8_t *buf, int n)
{
    return n < 0 ? n : channel_send(ch, buf, (size_t)n);
}

/* The first packet: CONNECT, whose client id names the device. */
static void on_connect(struct channel *ch, struct lpc_session *s, const struct mqtt_connect *c)
{
    uint8_t buf[8];
    char id[LPC_DEVICE_ID_MAX + 1];

    if (c->bad_protocol) {
        send_packet(ch, buf, mqtt_encode_connack(buf, sizeof buf, 0, MQTT_CONNACK_BAD_PROTOCOL));
        channel_close(ch, "not MQTT 3.1.1");
        return;
    }
    if (c->client_id.len == 0 || c->client_id.len > LPC_DEVICE_ID_MAX) {
        send_packet(ch, buf, mqtt_encode_connack(buf, sizeof buf, 0, MQTT_CONNACK_ID_REJECTED));
        channel_close(ch, "the MQTT client id must be the CLS device id");
        return;
    }
    memcpy(id, c->client_id.ptr, c->client_id.len);
    id[c->client_id.len] = '\0';
    if (!lpc_device_id_valid(id)) {
        send_packet(ch, buf, mqtt_encode_connack(buf, sizeof buf, 0, MQTT_CONNACK_ID_REJECTED));
        channel_close(ch, "the MQTT client id is not a device id");
        return;
    }
    if (c->will) {
        send_packet(ch, buf, mqtt_encode_connack(buf, sizeof buf, 0, MQTT_CONNACK_ID_REJECTED));
        channel_close(ch, "will messages are not supported");
        return;
    }
    /* The refusal goes out before the close, if the registry says no. */
    int n = mqtt_encode_connack(buf, sizeof buf, 0, MQTT_CONNACK_NOT_AUTHORIZED);
    if (channel_identified(ch, id, buf, n > 0 ? (size_t)n : 0) != 0)
        return;
    s->connected = 1;
    str_copy(s->device, sizeof s->device, id);
    lpc_topic_build(id, LPC_TOPIC_CONTROL, s->control_topic, sizeof s->control_topic);
    send_packet(ch, buf, mqtt_encode_connack(buf, sizeof buf, 0, MQTT_CONNACK_ACCEPTED));
    channel_alive(ch, c->keepalive);
    /* Controls may flow once the device subscribed to its control topic. */
}

static void on_subscribe(struct channel *ch, struct lpc_session *s,
                         const struct mqtt_subscribe *sub)
{
    struct mqtt_suback ack;
    uint8_t buf[64];
    ack.packet_id = sub->packet_id;
    ack.count = sub->count;
    /* A device reads its own control topic and nothing else. */
    int subscribed = 0;
    for (size_t i = 0; i < sub->count; i++) {
        int own = sub->filters[i].len == strlen(s->control_topic) &&
                  memcmp(sub->filters[i].ptr, s->control_topic, sub->filters[i].len) == 0;
        ack.codes[i] = own ? (sub->qos[i] > 1 ? 1 : sub->qos[i]) : MQTT_SUBACK_FAILURE;
        subscribed |= own;
    }
    send_packet(ch, buf, mqtt_encode_suback(buf, sizeof buf, &ack));
    if (subscribed && !s->ready) {
        s->ready = 1;
        channel_ready(ch);
    }
}

/* What the device publishes: an ack, its state or telemetry. */
static void on_publish(struct channel *ch, struct lpc_session *s, const struct mqtt_publish *p)
{
    const struct channel_listener *l = channel_listener_of(ch);
    char device[LPC_DEVICE_ID_MAX + 1];
    enum lpc_topic kind;
    struct lpc_error err;
    uint8_t buf[8];

    if (p->qos > 1) {
        channel_close(ch, "QoS 2 is not used by lpc-mqtt");
        return;
    }
    if (lpc_topic_parse(p->topic.ptr, p->topic.len, device, &kind) != 0 ||
        strcmp(device, s->device) != 0 || kind == LPC_TOPIC_CONTROL) {
        channel_close(ch, "published to a topic that is not its own ack, state or telemetry");
        return;
    }
    if (p->qos == 1)
        send_packet(ch, buf, mqtt_encode_puback(buf, sizeof buf, p->packet_id));
    const char *payload = (const char *)p->payload.ptr;
    size_t len = p->payload.len;
    if (kind == LPC_TOPIC_ACK) {
        struct lpc_ack a;
        if (lpc_ack_decode(payload, len, &a, &err) == 0) {
            if (l->ack)
                l->ack(l->arg, s->device, a.cmd, a.ok, a.error, a.ok ? NULL : a.reason);
            return;
        }
    } else if (kind == LPC_TOPIC_STATE) {
        struct lpc_state st;
        if (lpc_state_decode(payload, len, &st, &err) == 0) {
            if (l->state)
                l->state(l->arg, s->device, &st);
            return;
        }
    } else {
        struct lpc_telemetry t;
        if (lpc_telemetry_decode(payload, len, &t, &err) == 0) {
            if (l->telemetry)
                l->telemetry(l->arg, s->device, &t);
            return;
        }
    }
    /* A malformed report is the device's problem, not the channel's: say
     * so and go on (the dispatcher's timers retry what it waited for). */
    LOG(LOG_WARN, "device report refused", LOG_S("device", s->device),
        LOG_S("topic", lpc_topic_name(kind)), LOG_S("field", err.field),
        LOG_S("reason", err.reason));
}

static void on_packet(struct channel *ch, struct lpc_session *s, const struct mqtt_packet *p)
{
    uint8_t buf[8];

    if (!s->connected) {
        if (p->type == MQTT_CONNECT)
            on_connect(ch, s, &p->connect);
        else
            channel_close(ch, "the first MQTT packet must be CONNECT");
        return;
    }
    channel_alive(ch, 0);
    switch (p->type) {
    case MQTT_SUBSCRIBE:
        on_subscribe(ch, s, &p->subscribe);
        break;
    case MQTT_UNSUBSCRIBE:
        send_packet(ch, buf, mqtt_encode_unsuback(buf, sizeof buf, p->unsubscribe.packet_id));
        break;
    case MQTT_PUBLISH:
        on_publish(ch, s, &p->publish);
        break;
    case MQTT_PUBACK:
        break; /* delivery of a control; its effect is confirmed by the ack */
    case MQTT_PINGREQ:
        send_packet(ch, buf, mqtt_encode_pingresp(buf, sizeof buf));
        break;
    case MQTT_DISCONNECT:
        channel_close(ch, "the device disconnected");
        break;
    default: {
        char why[80];
        snprintf(why, sizeof why, "unexpected MQTT %s", mqtt_type_name((int)p->type));
        channel_close(ch, why);
        break;
    }
    }
}

static void lpc_input(struct channel *ch, void *state, struct evbuffer *in)
{
    struct lpc_session *s = state;
    struct mqtt_limits lim = {channel_max_frame(ch), LPC_DEVICE_ID_MAX, LPC_TOPIC_MAX, 4};
    struct mqtt_packet p;
    const char *why = NULL;

    while (evbuffer_get_length(in) > 0) {
        size_t avail = evbuffer_get_length(in);
        size_t pull = avail < PULL_MAX ? avail : PULL_MAX;
        const uint8_t *buf = evbuffer_pullup(in, (ev_ssize_t)pull);
        int n = mqtt_decode(buf, pull, &lim, &p, &why);
        if (n == 0)
            return; /* wait for the rest */
        if (n < 0) {
            char reason[160];
            snprintf(reason, sizeof reason, "malformed MQTT: %s", why ? why : "unknown");
            evbuffer_drain(in, avail);
            channel_close(ch, reason);
            return;
        }
        on_packet(ch, s, &p);
        evbuffer_drain(in, (size_t)n);
        enum channel_state cs = channel_state_of(ch);
        if (cs != CH_IDENTIFY && cs != CH_OPEN) {
            evbuffer_drain(in, evbuffer_get_length(in));
            return;
        }
    }
}

/* A control in neutral form becomes a QoS 1 PUBLISH on the control topic:
 * the JSON with "cmd" first. */
static int lpc_send(struct channel *ch, void *state, const char *cmd, const json_t *control)
{
    struct lpc_session *s = state;
    char *body, *payload;
    uint8_t *pkt;
    int rc;

    if (!s->ready || channel_state_of(ch) != CH_OPEN)
        return -EPIPE;
    if (!lpc_cmd_id_valid(cmd) || !json_is_object(control) || json_object_size(control) == 0)
        return -EINVAL;
    body = json_dumps(control, JSON_COMPACT);
    if (body == NULL)
        return -ENOMEM;
    size_t plen = strlen(body) + strlen(cmd) + 16;
    payload = malloc(plen);
    if (payload == NULL) {
        free(body);
        return -ENOMEM;
    }
    int w = snprintf(payload, plen, "{\"cmd\":\"%s\",%s", cmd, body + 1);
    free(body);
    struct mqtt_publish pub = {0};
    pub.qos = 1;
    pub.topic.ptr = s->control_topic;
    pub.topic.len = strlen(s->control_topic);
    pub.packet_id = s->next_pid;
    pub.payload.ptr = (const uint8_t *)payload;
    pub.payload.len = (size_t)w;
    s->next_pid = (uint16_t)(s->next_pid == 65535 ? 1 : s->next_pid + 1);
    int n = mqtt_encode_publish(NULL, 0, &pub);
    pkt = n > 0 ? malloc((size_t)n) : NULL;
    rc = pkt ? send_packet(ch, pkt, mqtt_encode_publish(pkt, (size_t)n, &pub)) : -ENOMEM;
    free(pkt);
    free(payload);
    return rc;
}

const struct driver_ops driver_lpc_mqtt = {
    .name = "lpc-mqtt",
    .attach = lpc_attach,
    .input = lpc_input,
    .send = lpc_send,
    .detach = lpc_detach,
};
