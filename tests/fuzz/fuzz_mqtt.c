/*
 * fuzz_mqtt.c - libFuzzer target for the MQTT codec: decodes the input as a
 * stream of packets with small limits, as clsmd reads a device channel (and,
 * where a limit stopped it, on with the protocol maxima so that large
 * remaining lengths are reached too), and aborts when an invariant breaks: a packet longer than its
 * input, a string outside its packet, a field that breaks a rule the decoder promises, a prefix
 * that does not ask for more bytes, limits that are not monotonic, or a re-encoded packet that
 * differs from its bytes or decodes differently.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "driver/mqtt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct mqtt_limits small = {
    .max_packet = 512, .max_client_id = 32, .max_topic = 64, .max_filters = 4};
static const struct mqtt_limits maxima = {.max_packet = MQTT_MAX_REMAINING,
                                          .max_client_id = 65535,
                                          .max_topic = 65535,
                                          .max_filters = MQTT_MAX_FILTERS};

static void check(int ok)
{
    if (!ok)
        abort();
}

/* An absent field is NULL and empty; a present one lies within [lo, hi). */
static void check_inside(const void *ptr, size_t len, const uint8_t *lo, const uint8_t *hi)
{
    const uint8_t *p = ptr;
    if (p == NULL) {
        check(len == 0);
        return;
    }
    check(p >= lo && p <= hi && len <= (size_t)(hi - p));
}

static void check_str(struct mqtt_str s, const uint8_t *lo, const uint8_t *hi)
{
    check_inside(s.ptr, s.len, lo, hi);
    check(mqtt_utf8_valid(s.ptr, s.len));
}

static void check_connect(const struct mqtt_connect *c, const struct mqtt_limits *lim,
                          const uint8_t *lo, const uint8_t *hi)
{
    check_str(c->protocol_name, lo, hi);
    if (c->bad_protocol) {
        check(c->client_id.ptr == NULL && !c->will && !c->has_username);
        return;
    }
    check(c->level == 4 && c->protocol_name.len == 4);
    check_str(c->client_id, lo, hi);
    check(c->client_id.ptr != NULL && c->client_id.len <= lim->max_client_id);
    check(c->will_qos <= 2 && (c->will || (c->will_qos == 0 && !c->will_retain)));
    check(!c->has_password || c->has_username);
    check(c->will == (c->will_topic.ptr != NULL));
    if (c->will)
        check(mqtt_topic_valid(c->will_topic.ptr, c->will_topic.len) &&
              c->will_topic.len <= lim->max_topic);
    check_inside(c->will_message.ptr, c->will_message.len, lo, hi);
    check_str(c->username, lo, hi);
    check(c->has_username == (c->username.ptr != NULL));
    check_inside(c->password.ptr, c->password.len, lo, hi);
    check(c->has_password == (c->password.ptr != NULL));
}

static void check_filters(const struct mqtt_subscribe *s, const struct mqtt_limits *lim,
                          const uint8_t *lo, const uint8_t *hi)
{
    check(s->packet_id != 0 && s->count >= 1 && s->count <= lim->max_filters);
    for (size_t i = 0; i < s->count; i++) {
        check_str(s->filters[i], lo, hi);
        check(mqtt_filter_valid(s->filters[i].ptr, s->filters[i].len));
        check(s->filters[i].len <= lim->max_topic && s->qos[i] <= 2);
    }
}

/* The fields of a packet decoded from [lo, hi) against the decoder's contract. */
static void check_packet(const struct mqtt_packet *pk, const struct mqtt_limits *lim,
                         const uint8_t *lo, const uint8_t *hi)
{
    const struct mqtt_publish *p = &pk->publish;

    switch (pk->type) {
    case MQTT_CONNECT:
        check_connect(&pk->connect, lim, lo, hi);
        break;
    case MQTT_CONNACK:
        check(pk->connack.rc <= 5 && (pk->connack.session_present == 0 ||
                                      (pk->connack.session_present == 1 && pk->connack.rc == 0)));
        break;
    case MQTT_PUBLISH:
        check_str(p->topic, lo, hi);
        check(mqtt_topic_valid(p->topic.ptr, p->topic.len) && p->topic.len <= lim->max_topic);
        check(p->qos <= 2 && (p->qos > 0) == (p->packet_id != 0) && (!p->dup || p->qos > 0));
        check(p->payload.ptr != NULL);
        check_inside(p->payload.ptr, p->payload.len, lo, hi);
        check(p->payload.ptr + p->payload.len == hi); /* the payload ends the packet */
        break;
    case MQTT_SUBSCRIBE:
        check_filters(&pk->subscribe, lim, lo, hi);
        break;
    case MQTT_UNSUBSCRIBE:
        check_filters(&pk->unsubscribe, lim, lo, hi);
        break;
    case MQTT_SUBACK:
        check(pk->suback.packet_id != 0 && pk->suback.count >= 1 &&
              pk->suback.count <= lim->max_filters);
        for (size_t i = 0; i < pk->suback.count; i++)
            check(pk->suback.codes[i] <= 2 || pk->suback.codes[i] == MQTT_SUBACK_FAILURE);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
    case MQTT_UNSUBACK:
        check(pk->packet_id != 0);
        break;
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
    case MQTT_DISCONNECT:
        check(hi - lo == 2);
        break;
    default:
        abort();
    }
}

static int same_str(struct mqtt_str a, struct mqtt_str b)
{
    return a.len == b.len && (a.ptr == NULL) == (b.ptr == NULL) &&
           (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int same_bin(struct mqtt_bin a, struct mqtt_bin b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int same_filters(const struct mqtt_subscribe *a, const struct mqtt_subscribe *b)
{
    if (a->packet_id != b->packet_id || a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (!same_str(a->filters[i], b->filters[i]) || a->qos[i] != b->qos[i])
            return 0;
    return 1;
}

static int same_packet(const struct mqtt_packet *a, const struct mqtt_packet *b)
{
    const struct mqtt_connect *x = &a->connect, *y = &b->connect;
    const struct mqtt_publish *p = &a->publish, *q = &b->publish;

    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case MQTT_CONNECT:
        return same_str(x->protocol_name, y->protocol_name) && x->level == y->level &&
               x->bad_protocol == y->bad_protocol && x->clean_session == y->clean_session &&
               x->keepalive == y->keepalive && same_str(x->client_id, y->client_id) &&
               x->will == y->will && x->will_qos == y->will_qos &&
               x->will_retain == y->will_retain && same_str(x->will_topic, y->will_topic) &&
               same_bin(x->will_message, y->will_message) && x->has_username == y->has_username &&
               same_str(x->username, y->username) && x->has_password == y->has_password &&
               same_bin(x->password, y->password);
    case MQTT_PUBLISH:
        return p->dup == q->dup && p->qos == q->qos && p->retain == q->retain &&
               same_str(p->topic, q->topic) && p->packet_id == q->packet_id &&
               same_bin(p->payload, q->payload);
    case MQTT_SUBSCRIBE:
        return same_filters(&a->subscribe, &b->subscribe);
    case MQTT_UNSUBSCRIBE:
        return same_filters(&a->unsubscribe, &b->unsubscribe);
    case MQTT_SUBACK:
        return a->suback.packet_id == b->suback.packet_id && a->suback.count == b->suback.count &&
               memcmp(a->suback.codes, b->suback.codes, a->suback.count) == 0;
    case MQTT_CONNACK:
        return a->connack.session_present == b->connack.session_present &&
               a->connack.rc == b->connack.rc;
    case MQTT_PUBACK:
    case MQTT_UNSUBACK:
        return a->packet_id == b->packet_id;
    default:
        return 1;
    }
}

/* Encode the packet again where we have an encoder: the encoding is
 * canonical, so the bytes must be the original ones, and they must decode to
 * the same fields. */
static int encode_like(const struct mqtt_packet *pk, uint8_t *out, size_t cap)
{
    switch (pk->type) {
    case MQTT_CONNECT:
        return pk->connect.bad_protocol ? 0 : mqtt_encode_connect(out, cap, &pk->connect);
    case MQTT_PUBLISH:
        /* QoS 2 is decoded only */
        return pk->publish.qos > 1 ? 0 : mqtt_encode_publish(out, cap, &pk->publish);
    case MQTT_SUBSCRIBE:
        return mqtt_encode_subscribe(out, cap, &pk->subscribe);
    case MQTT_UNSUBSCRIBE:
        return mqtt_encode_unsubscribe(out, cap, &pk->unsubscribe);
    case MQTT_SUBACK:
        return mqtt_encode_suback(out, cap, &pk->suback);
    case MQTT_CONNACK:
        return mqtt_encode_connack(out, cap, pk->connack.session_present, pk->connack.rc);
    case MQTT_PUBACK:
        return mqtt_encode_puback(out, cap, pk->packet_id);
    case MQTT_UNSUBACK:
        return mqtt_encode_unsuback(out, cap, pk->packet_id);
    case MQTT_PINGREQ:
        return mqtt_encode_pingreq(out, cap);
    case MQTT_PINGRESP:
        return mqtt_encode_pingresp(out, cap);
    case MQTT_DISCONNECT:
        return mqtt_encode_disconnect(out, cap);
    default:
        return 0; /* PUBREC, PUBREL, PUBCOMP have no encoder */
    }
}

static void reencode(const struct mqtt_packet *pk, const struct mqtt_limits *lim,
                     const uint8_t *orig, size_t n)
{
    struct mqtt_packet again;
    uint8_t *out = malloc(n); /* exactly: ASan sees an encoder that writes more */
    int m;

    check(out != NULL);
    m = encode_like(pk, out, n);
    if (m != 0) {
        check(m == (int)n && memcmp(out, orig, n) == 0);
        check(encode_like(pk, NULL, 0) == m);
        check(encode_like(pk, out, n - 1) == -ENOSPC);
        check(mqtt_decode(out, n, lim, &again, NULL) == m);
        check(same_packet(pk, &again));
    }
    free(out);
}

/* A decoded packet of 'n' bytes: a prefix only asks for more, bytes after it
 * do not matter, and larger limits accept it too. */
static void check_prefixes(const uint8_t *p, size_t n, const struct mqtt_limits *lim)
{
    struct mqtt_packet tmp;

    for (size_t k = 0; k < n && k <= MQTT_MAX_HEADER + 1; k++)
        check(mqtt_decode(p, k, lim, &tmp, NULL) == 0);
    check(mqtt_decode(p, n - 1, lim, &tmp, NULL) == 0);
    check(mqtt_decode(p, n, lim, &tmp, NULL) == (int)n);
    check(mqtt_decode(p, n, NULL, &tmp, NULL) == (int)n);
}

/* Decode packets from 'data' until the end, a short packet or an error;
 * returns 0 or the error, with '*stop' at the packet that ended the run. */
static int run_stream(const uint8_t *data, size_t size, const struct mqtt_limits *lim, size_t *stop)
{
    size_t off = 0;
    int rc = 0;

    while (off < size) {
        struct mqtt_packet pk;
        const char *why = NULL;

        rc = mqtt_decode(data + off, size - off, lim, &pk, &why);
        if (rc == 0)
            break;
        if (rc < 0) {
            check(rc == -EPROTO || rc == -EMSGSIZE);
            check(why != NULL && why[0] != '\0');
            /* Larger limits pass the same checks up to the same fault. */
            if (rc == -EPROTO)
                check(mqtt_decode(data + off, size - off, NULL, &pk, &why) == -EPROTO);
            break;
        }
        check((size_t)rc <= size - off && rc >= 2);
        check_packet(&pk, lim, data + off, data + off + rc);
        reencode(&pk, lim, data + off, (size_t)rc);
        check_prefixes(data + off, (size_t)rc, lim);
        off += (size_t)rc;
        rc = 0;
    }
    *stop = off;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off;

    /* The validators on raw bytes: a topic name is always a valid filter. */
    if (size <= 256 && mqtt_topic_valid((const char *)data, size))
        check(mqtt_filter_valid((const char *)data, size) && mqtt_utf8_valid(data, size));

    if (run_stream(data, size, &small, &off) == -EMSGSIZE)
        run_stream(data + off, size - off, &maxima, &off);
    return 0;
}
