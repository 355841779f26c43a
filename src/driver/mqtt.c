/*
 * mqtt.c - the MQTT 3.1.1 packet codec: strict decoder, encoders and the
 * string validators; see mqtt.h. Rule numbers such as MQTT-3.1.2-3 refer to
 * the normative statements of the OASIS standard.
 */
#include "driver/mqtt.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define MQTT_MAX_STRING 65535u

static const struct mqtt_limits protocol_maxima = {
    .max_packet = MQTT_MAX_REMAINING,
    .max_client_id = MQTT_MAX_STRING,
    .max_topic = MQTT_MAX_STRING,
    .max_filters = MQTT_MAX_FILTERS,
};

/* --- validators ------------------------------------------------------------ */

int mqtt_utf8_valid(const void *s, size_t len)
{
    const uint8_t *p = s, *end;

    if (len == 0)
        return 1;
    if (p == NULL || len > MQTT_MAX_STRING)
        return 0;
    end = p + len;
    while (p < end) {
        uint8_t c = *p++;
        uint32_t cp;
        size_t n;

        if (c < 0x80) {
            if (c == 0)
                return 0; /* MQTT-1.5.3-2 */
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07u;
        } else {
            return 0; /* continuation byte, 0xc0/0xc1 overlong lead, or beyond U+10FFFF */
        }
        if ((size_t)(end - p) < n)
            return 0;
        for (size_t i = 0; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3fu);
        }
        p += n;
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0; /* overlong or out of range */
        if (cp >= 0xd800 && cp <= 0xdfff)
            return 0; /* surrogate, MQTT-1.5.3-1 */
    }
    return 1;
}

/* The wildcard rules of a filter, for a string already known to be UTF-8.
 * Multi-byte sequences never contain '+', '#' or '/' bytes, so a byte scan
 * is exact. */
static int filter_shape_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        int starts_level = i == 0 || s[i - 1] == '/';
        int ends_level = i + 1 == len || s[i + 1] == '/';
        if (s[i] == '+' && (!starts_level || !ends_level))
            return 0;
        if (s[i] == '#' && (!starts_level || i + 1 != len))
            return 0;
    }
    return 1;
}

static int topic_shape_ok(const char *s, size_t len)
{
    return memchr(s, '+', len) == NULL && memchr(s, '#', len) == NULL;
}

int mqtt_topic_valid(const char *s, size_t len)
{
    return len > 0 && mqtt_utf8_valid(s, len) && topic_shape_ok(s, len);
}

int mqtt_filter_valid(const char *s, size_t len)
{
    return len > 0 && mqtt_utf8_valid(s, len) && filter_shape_ok(s, len);
}

/* --- decoding -------------------------------------------------------------- */

struct dec {
    const uint8_t *p, *end; /* the unread part of the variable header and payload */
    const struct mqtt_limits *lim;
    const char *why;
};

static int fail(struct dec *d, int rc, const char *why)
{
    d->why = why;
    return rc;
}

static int get_u8(struct dec *d, uint8_t *v)
{
    if (d->p >= d->end)
        return fail(d, -EPROTO, "packet ends in the middle of a field");
    *v = *d->p++;
    return 0;
}

static int get_u16(struct dec *d, uint16_t *v)
{
    if (d->end - d->p < 2)
        return fail(d, -EPROTO, "packet ends in the middle of a field");
    *v = (uint16_t)(d->p[0] << 8 | d->p[1]);
    d->p += 2;
    return 0;
}

static int get_packet_id(struct dec *d, uint16_t *id)
{
    int rc = get_u16(d, id);
    if (rc == 0 && *id == 0)
        return fail(d, -EPROTO, "packet identifier 0"); /* MQTT-2.3.1-1 */
    return rc;
}

static int get_bin(struct dec *d, struct mqtt_bin *b)
{
    uint16_t n;
    int rc = get_u16(d, &n);
    if (rc)
        return rc;
    if ((size_t)(d->end - d->p) < n)
        return fail(d, -EPROTO, "string or binary field runs past the end of the packet");
    b->ptr = d->p;
    b->len = n;
    d->p += n;
    return 0;
}

/* A UTF-8 string of at most 'max' bytes; 'too_long' is the reason when not. */
static int get_str(struct dec *d, struct mqtt_str *s, size_t max, const char *too_long)
{
    struct mqtt_bin b;
    int rc = get_bin(d, &b);
    if (rc)
        return rc;
    if (b.len > max)
        return fail(d, -EMSGSIZE, too_long);
    if (!mqtt_utf8_valid(b.ptr, b.len))
        return fail(d, -EPROTO, "malformed UTF-8 string or U+0000 in a string");
    s->ptr = (const char *)b.ptr;
    s->len = b.len;
    return 0;
}

static int get_topic(struct dec *d, struct mqtt_str *t)
{
    int rc = get_str(d, t, d->lim->max_topic, "topic name longer than the limit");
    if (rc)
        return rc;
    if (t->len == 0)
        return fail(d, -EPROTO, "empty topic name"); /* MQTT-4.7.3-1 */
    if (!topic_shape_ok(t->ptr, t->len))
        return fail(d, -EPROTO, "wildcard in a topic name"); /* MQTT-3.3.2-2 */
    return 0;
}

static int get_filter(struct dec *d, struct mqtt_str *f)
{
    int rc = get_str(d, f, d->lim->max_topic, "topic filter longer than the limit");
    if (rc)
        return rc;
    if (f->len == 0)
        return fail(d, -EPROTO, "empty topic filter"); /* MQTT-4.7.3-1 */
    if (!filter_shape_ok(f->ptr, f->len))
        return fail(d, -EPROTO, "wildcard that is not a whole level in a topic filter");
    return 0;
}

static size_t max_filters(const struct dec *d)
{
    return d->lim->max_filters < MQTT_MAX_FILTERS ? d->lim->max_filters : MQTT_MAX_FILTERS;
}

static int str_is(struct mqtt_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static int connect_flags(struct dec *d, uint8_t f, struct mqtt_connect *c)
{
    if (f & 0x01)
        return fail(d, -EPROTO, "reserved CONNECT flag set"); /* MQTT-3.1.2-3 */
    c->clean_session = (f >> 1) & 1;
    c->will = (f >> 2) & 1;
    c->will_qos = (uint8_t)((f >> 3) & 3);
    c->will_retain = (f >> 5) & 1;
    c->has_password = (f >> 6) & 1;
    c->has_username = (f >> 7) & 1;
    if (!c->will && (c->will_qos || c->will_retain))
        return fail(d, -EPROTO, "will QoS or retain set without the will flag");
    if (c->will_qos == 3)
        return fail(d, -EPROTO, "will QoS 3"); /* MQTT-3.1.2-14 */
    if (c->has_password && !c->has_username)
        return fail(d, -EPROTO, "password flag without the user name flag"); /* MQTT-3.1.2-22 */
    return 0;
}

static int parse_connect(struct dec *d, uint8_t flags, struct mqtt_packet *out)
{
    struct mqtt_connect *c = &out->connect;
    uint8_t cf;
    int rc;

    (void)flags;
    if ((rc = get_str(d, &c->protocol_name, MQTT_MAX_STRING, "string too long")) ||
        (rc = get_u8(d, &c->level)))
        return rc;
    if (!str_is(c->protocol_name, "MQTT") || c->level != 4) {
        /* Whatever follows is another protocol version's business
         * (MQTT-3.1.2-1, -2): the caller answers CONNACK 0x01 and closes. */
        c->bad_protocol = 1;
        d->p = d->end;
        return 0;
    }
    if ((rc = get_u8(d, &cf)) || (rc = connect_flags(d, cf, c)) || (rc = get_u16(d, &c->keepalive)))
        return rc;
    rc =
        get_str(d, &c->client_id, d->lim->max_client_id, "client identifier longer than the limit");
    if (rc)
        return rc;
    if (c->will && ((rc = get_topic(d, &c->will_topic)) || (rc = get_bin(d, &c->will_message))))
        return rc;
    if (c->has_username && (rc = get_str(d, &c->username, MQTT_MAX_STRING, "string too long")))
        return rc;
    if (c->has_password && (rc = get_bin(d, &c->password)))
        return rc;
    return 0;
}

static int parse_connack(struct dec *d, uint8_t flags, struct mqtt_packet *out)
{
    uint8_t af, code;

    (void)flags;
    af = d->p[0]; /* the rule table made the length exactly 2 */
    code = d->p[1];
    d->p += 2;
    if (af & 0xfe)
        return fail(d, -EPROTO, "reserved CONNACK acknowledge flag set"); /* MQTT 3.2.2.1 */
    if (code > MQTT_CONNACK_NOT_AUTHORIZED)
        return fail(d, -EPROTO, "reserved CONNACK return code");
    if (af && code != 0)
        return fail(d, -EPROTO, "session present with a refusing CONNACK"); /* MQTT-3.2.2-4 */
    out->connack.session_present = af;
    out->connack.rc = code;
    return 0;
}

static int parse_publish(struct dec *d, uint8_t flags, struct mqtt_packet *out)
{
    struct mqtt_publish *p = &out->publish;
    int rc;

    p->dup = (flags >> 3) & 1;
    p->qos = (uint8_t)((flags >> 1) & 3);
    p->retain = flags & 1;
    if ((rc = get_topic(d, &p->topic)))
        return rc;
    if (p->qos > 0 && (rc = get_packet_id(d, &p->packet_id)))
        return rc;
    p->payload.ptr = d->p;
    p->payload.len = (size_t)(d->end - d->p);
    d->p = d->end;
    return 0;
}

static int parse_ack(struct dec *d, uint8_t flags, struct mqtt_packet *out)
{
    (void)flags;
    return get_packet_id(d, &out->packet_id);
}

/* SUBSCRIBE (with a requested QoS after each filter) and UNSUBSCRIBE. */
static int parse_filters(struct dec *d, struct mqtt_subscribe *s, int with_qos)
{
    int rc = get_packet_id(d, &s->packet_id);
    if (rc)
        return rc;
    while (d->p < d->end) {
        if (s->count == max_filters(d))
            return fail(d, -EMSGSIZE, "more topic filters than the limit");
        if ((rc = get_filter(d, &s->filters[s->count])))
            return rc;
        if (with_qos) {
            uint8_t q;
            if ((rc = get_u8(d, &q)))
                return rc;
            if (q & 0xfc)
                return fail(d, -EPROTO, "reserved bits set in a requested QoS"); /* MQTT-3-8.3-4 */
            if (q == 3)
                return fail(d, -EPROTO, "requested QoS 3");
            s->qos[s->count] = q;
        }
        s->count++;
    }
    if (s->count == 0)
        return fail(d, -EPROTO, "no topic filter"); /* MQTT-3.8.3-3, MQTT-3.10.3-2 */
    return 0;
}

static int parse_subscribe(struct dec *d, uint8_t flags, struct mqtt_packet *out)
{
    (void)flags;
    return parse_filters(d, &out->subscribe, 1);
}

static int parse_unsubscribe(struct dec *d, uint8_t flags, struct mqtt_packet *out)
{
    (void)flags;
    return parse_filters(d, &out->unsubscribe, 0);
}

static int parse_suback(struct dec *d, uint8_t flags, struct mqtt_packet *out)
{
    struct mqtt_suback *s = &out->suback;
    int rc = get_packet_id(d, &s->packet_id);

    (void)flags;
    if (rc)
        return rc;
    while (d->p < d->end) {
        uint8_t code = *d->p++;
        if (s->count == max_filters(d))
            return fail(d, -EMSGSIZE, "more SUBACK return codes than the limit");
        if (code > 2 && code != MQTT_SUBACK_FAILURE)
            return fail(d, -EPROTO, "reserved SUBACK return code"); /* MQTT-3.9.3-2 */
        s->codes[s->count++] = code;
    }
    return 0;
}

static int parse_empty(struct dec *d, uint8_t flags, struct mqtt_packet *out)
{
    (void)d;
    (void)flags;
    (void)out;
    return 0;
}

#define ANY_LEN   SIZE_MAX
#define OWN_FLAGS 0xff /* PUBLISH: the flags are dup, QoS and retain */

/* What the fixed header of each type must look like (MQTT 3.1.1, 2.2). */
static const struct type_rule {
    const char *name;
    uint8_t flags; /* required low nibble of the first byte */
    size_t min_len, max_len;
    const char *bad_len;
    int (*parse)(struct dec *d, uint8_t flags, struct mqtt_packet *out);
} rules[16] = {
    [MQTT_CONNECT] = {"CONNECT", 0, 0, ANY_LEN, NULL, parse_connect},
    [MQTT_CONNACK] = {"CONNACK", 0, 2, 2, "CONNACK remaining length is not 2", parse_connack},
    [MQTT_PUBLISH] = {"PUBLISH", OWN_FLAGS, 0, ANY_LEN, NULL, parse_publish},
    [MQTT_PUBACK] = {"PUBACK", 0, 2, 2, "PUBACK remaining length is not 2", parse_ack},
    [MQTT_PUBREC] = {"PUBREC", 0, 2, 2, "PUBREC remaining length is not 2", parse_ack},
    [MQTT_PUBREL] = {"PUBREL", 2, 2, 2, "PUBREL remaining length is not 2", parse_ack},
    [MQTT_PUBCOMP] = {"PUBCOMP", 0, 2, 2, "PUBCOMP remaining length is not 2", parse_ack},
    [MQTT_SUBSCRIBE] = {"SUBSCRIBE", 2, 0, ANY_LEN, NULL, parse_subscribe},
    [MQTT_SUBACK] = {"SUBACK", 0, 3, ANY_LEN, "SUBACK remaining length below 3", parse_suback},
    [MQTT_UNSUBSCRIBE] = {"UNSUBSCRIBE", 2, 0, ANY_LEN, NULL, parse_unsubscribe},
    [MQTT_UNSUBACK] = {"UNSUBACK", 0, 2, 2, "UNSUBACK remaining length is not 2", parse_ack},
    [MQTT_PINGREQ] = {"PINGREQ", 0, 0, 0, "PINGREQ remaining length is not 0", parse_empty},
    [MQTT_PINGRESP] = {"PINGRESP", 0, 0, 0, "PINGRESP remaining length is not 0", parse_empty},
    [MQTT_DISCONNECT] = {"DISCONNECT", 0, 0, 0, "DISCONNECT remaining length is not 0",
                         parse_empty},
};

const char *mqtt_type_name(int t)
{
    if (t < 0 || t > 15 || rules[t].name == NULL)
        return "RESERVED";
    return rules[t].name;
}

static int check_flags(struct dec *d, const struct type_rule *r, uint8_t flags)
{
    if (r->flags == OWN_FLAGS) {
        uint8_t qos = (flags >> 1) & 3;
        if (qos == 3)
            return fail(d, -EPROTO, "PUBLISH with QoS 3"); /* MQTT-3.3.1-4 */
        if (qos == 0 && (flags & 0x08))
            return fail(d, -EPROTO, "PUBLISH with DUP set at QoS 0"); /* MQTT-3.3.1-2 */
        return 0;
    }
    if (flags != r->flags)
        return fail(d, -EPROTO,
                    r->flags ? "fixed-header flags of PUBREL, SUBSCRIBE, UNSUBSCRIBE must be 0x2"
                             : "reserved fixed-header flags set"); /* MQTT-2.2.2-1, -2 */
    return 0;
}

/* Read the remaining length that starts at buf[1]. Returns the length of the
 * fixed header (2..5) with '*rem' set, 0 when more bytes are needed, or a
 * negative errno as soon as the bytes so far prove the value invalid or
 * larger than 'max'. */
static int get_remaining(struct dec *d, const uint8_t *buf, size_t len, size_t max, size_t *rem)
{
    size_t v = 0, mult = 1;

    for (size_t i = 1;; i++) {
        if (i >= len)
            return 0;
        v += (size_t)(buf[i] & 0x7f) * mult;
        if (!(buf[i] & 0x80)) {
            if (buf[i] == 0 && i > 1)
                return fail(d, -EPROTO, "remaining length not in its shortest form");
            if (v > max)
                return fail(d, -EMSGSIZE, "packet larger than the limit");
            *rem = v;
            return (int)i + 1;
        }
        if (i == MQTT_MAX_HEADER - 1)
            return fail(d, -EPROTO, "remaining length longer than 4 bytes");
        mult *= 128;
        /* The shortest form means the next byte adds at least 'mult'. */
        if (v + mult > max)
            return fail(d, -EMSGSIZE, "packet larger than the limit");
    }
}

static int decode(struct dec *d, const uint8_t *buf, size_t len, struct mqtt_packet *out)
{
    const struct type_rule *r;
    uint8_t flags;
    size_t rem = 0, max;
    int hl, rc;

    if (len == 0)
        return 0;
    r = &rules[buf[0] >> 4];
    flags = buf[0] & 0x0f;
    if (r->parse == NULL)
        return fail(d, -EPROTO, "reserved packet type"); /* 0 and 15 */
    if ((rc = check_flags(d, r, flags)))
        return rc;
    max = d->lim->max_packet < MQTT_MAX_REMAINING ? d->lim->max_packet : MQTT_MAX_REMAINING;
    if ((hl = get_remaining(d, buf, len, max, &rem)) <= 0)
        return hl;
    if (rem < r->min_len || rem > r->max_len)
        return fail(d, -EPROTO, r->bad_len);
    if (len - (size_t)hl < rem)
        return 0;
    memset(out, 0, sizeof *out);
    out->type = (enum mqtt_type)(buf[0] >> 4);
    d->p = buf + hl;
    d->end = d->p + rem;
    if ((rc = r->parse(d, flags, out)))
        return rc;
    if (d->p != d->end)
        return fail(d, -EPROTO, "bytes left over at the end of the packet");
    return hl + (int)rem;
}

int mqtt_decode(const uint8_t *buf, size_t len, const struct mqtt_limits *lim,
                struct mqtt_packet *out, const char **why)
{
    struct dec d = {.lim = lim ? lim : &protocol_maxima};
    int rc = decode(&d, buf, len, out);

    if (rc < 0 && why)
        *why = d.why;
    return rc;
}

/* --- encoding -------------------------------------------------------------- */

static size_t varint_size(size_t v)
{
    return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

/* Size the packet and write its fixed header. Returns the whole length with
 * '*body' at the variable header, or with '*body' NULL for a size query
 * ('buf' NULL); or a negative errno. */
static int frame(uint8_t *buf, size_t cap, uint8_t first, size_t rem, uint8_t **body)
{
    size_t total;
    uint8_t *p = buf;

    *body = NULL;
    if (rem > MQTT_MAX_REMAINING)
        return -EMSGSIZE;
    total = 1 + varint_size(rem) + rem;
    if (buf == NULL)
        return (int)total;
    if (cap < total)
        return -ENOSPC;
    *p++ = first;
    do {
        uint8_t b = (uint8_t)(rem % 128);
        rem /= 128;
        *p++ = rem ? (uint8_t)(b | 0x80) : b;
    } while (rem);
    *body = p;
    return (int)total;
}

static uint8_t *put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put_bytes(uint8_t *p, const void *s, size_t len)
{
    if (len)
        memcpy(p, s, len);
    return p + len;
}

/* A length-prefixed field; 'len' was checked to be at most 65535. */
static uint8_t *put_field(uint8_t *p, const void *s, size_t len)
{
    return put_bytes(put_u16(p, (uint16_t)len), s, len);
}

static int bin_ok(struct mqtt_bin b)
{
    return b.len <= MQTT_MAX_STRING && (b.len == 0 || b.ptr != NULL);
}

int mqtt_encode_connect(uint8_t *buf, size_t cap, const struct mqtt_connect *c)
{
    static const uint8_t head[] = {0, 4, 'M', 'Q', 'T', 'T', 4};
    size_t rem = sizeof head + 1 + 2 + 2 + c->client_id.len;
    uint8_t cf = c->clean_session ? 0x02 : 0, *p;
    int n;

    if (!mqtt_utf8_valid(c->client_id.ptr, c->client_id.len))
        return -EINVAL;
    if (c->will) {
        if (!mqtt_topic_valid(c->will_topic.ptr, c->will_topic.len) || c->will_qos > 2 ||
            !bin_ok(c->will_message))
            return -EINVAL;
        cf = (uint8_t)(cf | 0x04 | c->will_qos << 3 | (c->will_retain ? 0x20 : 0));
        rem += 4 + c->will_topic.len + c->will_message.len;
    }
    if (c->has_username) {
        if (!mqtt_utf8_valid(c->username.ptr, c->username.len))
            return -EINVAL;
        cf |= 0x80;
        rem += 2 + c->username.len;
    }
    if (c->has_password) {
        if (!c->has_username || !bin_ok(c->password))
            return -EINVAL;
        cf |= 0x40;
        rem += 2 + c->password.len;
    }
    if ((n = frame(buf, cap, MQTT_CONNECT << 4, rem, &p)) < 0 || p == NULL)
        return n;
    p = put_bytes(p, head, sizeof head);
    *p++ = cf;
    p = put_u16(p, c->keepalive);
    p = put_field(p, c->client_id.ptr, c->client_id.len);
    if (c->will) {
        p = put_field(p, c->will_topic.ptr, c->will_topic.len);
        p = put_field(p, c->will_message.ptr, c->will_message.len);
    }
    if (c->has_username)
        p = put_field(p, c->username.ptr, c->username.len);
    if (c->has_password)
        put_field(p, c->password.ptr, c->password.len);
    return n;
}

int mqtt_encode_connack(uint8_t *buf, size_t cap, int session_present, uint8_t rc)
{
    uint8_t *p;
    int n;

    if (rc > MQTT_CONNACK_NOT_AUTHORIZED || (session_present && rc != 0))
        return -EINVAL;
    if ((n = frame(buf, cap, MQTT_CONNACK << 4, 2, &p)) < 0 || p == NULL)
        return n;
    p[0] = session_present ? 1 : 0;
    p[1] = rc;
    return n;
}

int mqtt_encode_publish(uint8_t *buf, size_t cap, const struct mqtt_publish *pb)
{
    uint8_t first, *p;
    size_t rem;
    int n;

    if (pb->qos > 1 || (pb->dup && pb->qos == 0) || (pb->qos == 1 && pb->packet_id == 0))
        return -EINVAL;
    if (!mqtt_topic_valid(pb->topic.ptr, pb->topic.len))
        return -EINVAL;
    if (pb->payload.len > 0 && pb->payload.ptr == NULL)
        return -EINVAL;
    if (pb->payload.len > MQTT_MAX_REMAINING)
        return -EMSGSIZE;
    rem = 2 + pb->topic.len + (pb->qos ? 2 : 0) + pb->payload.len;
    first = (uint8_t)(MQTT_PUBLISH << 4 | (pb->dup ? 0x08 : 0) | pb->qos << 1 |
                      (pb->retain ? 0x01 : 0));
    if ((n = frame(buf, cap, first, rem, &p)) < 0 || p == NULL)
        return n;
    p = put_field(p, pb->topic.ptr, pb->topic.len);
    if (pb->qos)
        p = put_u16(p, pb->packet_id);
    put_bytes(p, pb->payload.ptr, pb->payload.len);
    return n;
}

static int encode_id_only(uint8_t *buf, size_t cap, uint8_t first, uint16_t packet_id)
{
    uint8_t *p;
    int n;

    if (packet_id == 0)
        return -EINVAL;
    if ((n = frame(buf, cap, first, 2, &p)) < 0 || p == NULL)
        return n;
    put_u16(p, packet_id);
    return n;
}

int mqtt_encode_puback(uint8_t *buf, size_t cap, uint16_t packet_id)
{
    return encode_id_only(buf, cap, MQTT_PUBACK << 4, packet_id);
}

int mqtt_encode_unsuback(uint8_t *buf, size_t cap, uint16_t packet_id)
{
    return encode_id_only(buf, cap, MQTT_UNSUBACK << 4, packet_id);
}

static int encode_filters(uint8_t *buf, size_t cap, uint8_t first, const struct mqtt_subscribe *s,
                          int with_qos)
{
    size_t rem = 2;
    uint8_t *p;
    int n;

    if (s->packet_id == 0 || s->count == 0 || s->count > MQTT_MAX_FILTERS)
        return -EINVAL;
    for (size_t i = 0; i < s->count; i++) {
        if (!mqtt_filter_valid(s->filters[i].ptr, s->filters[i].len) || (with_qos && s->qos[i] > 2))
            return -EINVAL;
        rem += 2 + s->filters[i].len + (with_qos ? 1 : 0);
    }
    if ((n = frame(buf, cap, first, rem, &p)) < 0 || p == NULL)
        return n;
    p = put_u16(p, s->packet_id);
    for (size_t i = 0; i < s->count; i++) {
        p = put_field(p, s->filters[i].ptr, s->filters[i].len);
        if (with_qos)
            *p++ = s->qos[i];
    }
    return n;
}

int mqtt_encode_subscribe(uint8_t *buf, size_t cap, const struct mqtt_subscribe *s)
{
    return encode_filters(buf, cap, MQTT_SUBSCRIBE << 4 | 0x2, s, 1);
}

int mqtt_encode_unsubscribe(uint8_t *buf, size_t cap, const struct mqtt_subscribe *s)
{
    return encode_filters(buf, cap, MQTT_UNSUBSCRIBE << 4 | 0x2, s, 0);
}

int mqtt_encode_suback(uint8_t *buf, size_t cap, const struct mqtt_suback *s)
{
    uint8_t *p;
    int n;

    if (s->packet_id == 0 || s->count == 0 || s->count > MQTT_MAX_FILTERS)
        return -EINVAL;
    for (size_t i = 0; i < s->count; i++)
        if (s->codes[i] > 2 && s->codes[i] != MQTT_SUBACK_FAILURE)
            return -EINVAL;
    if ((n = frame(buf, cap, MQTT_SUBACK << 4, 2 + s->count, &p)) < 0 || p == NULL)
        return n;
    put_bytes(put_u16(p, s->packet_id), s->codes, s->count);
    return n;
}

static int encode_empty(uint8_t *buf, size_t cap, enum mqtt_type t)
{
    uint8_t *p;
    return frame(buf, cap, (uint8_t)(t << 4), 0, &p);
}

int mqtt_encode_pingreq(uint8_t *buf, size_t cap)
{
    return encode_empty(buf, cap, MQTT_PINGREQ);
}

int mqtt_encode_pingresp(uint8_t *buf, size_t cap)
{
    return encode_empty(buf, cap, MQTT_PINGRESP);
}

int mqtt_encode_disconnect(uint8_t *buf, size_t cap)
{
    return encode_empty(buf, cap, MQTT_DISCONNECT);
}
