/*
 * mqtt.h - a pure MQTT 3.1.1 packet codec: one decoder that validates every
 * packet strictly against the OASIS standard (2014), and encoders for the
 * packets a server end or a test client sends.
 *
 * There is no I/O, no allocation and no state: the caller owns every buffer.
 * clsmd uses it as the server end of one MQTT session per device channel
 * (DESIGN.md 5.5, "lpc-mqtt"); test and benchmark clients use the same code.
 * QoS 2 traffic (PUBLISH with QoS 2, PUBREC, PUBREL, PUBCOMP) is decoded and
 * validated but has no encoders: lpc-mqtt uses QoS 1, and what to do with a
 * QoS 2 PUBLISH is the session's decision.
 *
 * Thread-safety: every function is pure and may be called from any thread at
 * the same time, as long as the buffers it is given are not modified during
 * the call.
 *
 * Ownership: a decoded struct mqtt_packet borrows from the buffer given to
 * mqtt_decode(). Its strings and payloads point into that buffer, are not
 * NUL-terminated, and stay valid exactly as long as the buffer is neither
 * freed nor changed (for an evbuffer: until the bytes are drained).
 */
#ifndef CLSM_MQTT_H
#define CLSM_MQTT_H

#include <stddef.h>
#include <stdint.h>

/* The largest remaining length the 4-byte varint can carry. */
#define MQTT_MAX_REMAINING 268435455u
/* The largest fixed header: one type byte and a 4-byte remaining length. */
#define MQTT_MAX_HEADER 5
/* Topic filters per SUBSCRIBE/UNSUBSCRIBE and return codes per SUBACK that a
 * struct mqtt_packet can hold; a packet with more is refused (-EMSGSIZE). */
#define MQTT_MAX_FILTERS 16

/* Control packet types, numbered as on the wire (first byte >> 4). */
enum mqtt_type {
    MQTT_CONNECT = 1,
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBSCRIBE = 8,
    MQTT_SUBACK = 9,
    MQTT_UNSUBSCRIBE = 10,
    MQTT_UNSUBACK = 11,
    MQTT_PINGREQ = 12,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14
};

/* CONNACK return codes (MQTT 3.1.1, table 3.1). */
enum mqtt_connack_rc {
    MQTT_CONNACK_ACCEPTED = 0,
    MQTT_CONNACK_BAD_PROTOCOL = 1,
    MQTT_CONNACK_ID_REJECTED = 2,
    MQTT_CONNACK_UNAVAILABLE = 3,
    MQTT_CONNACK_BAD_CREDENTIALS = 4,
    MQTT_CONNACK_NOT_AUTHORIZED = 5
};

/* The SUBACK return code for a refused subscription. */
#define MQTT_SUBACK_FAILURE 0x80

/* Hard limits for mqtt_decode(); going over one gives -EMSGSIZE. */
struct mqtt_limits {
    size_t max_packet;    /* remaining length, bytes (at most MQTT_MAX_REMAINING) */
    size_t max_client_id; /* CONNECT client identifier, bytes */
    size_t max_topic;     /* topic names and filters (PUBLISH, will, (UN)SUBSCRIBE), bytes */
    size_t max_filters;   /* filters per (UN)SUBSCRIBE, codes per SUBACK (<= MQTT_MAX_FILTERS) */
};

/* A UTF-8 string as on the wire: well-formed, without U+0000, not
 * NUL-terminated. An absent optional string has ptr NULL and len 0; an empty
 * one that is present has ptr non-NULL and len 0. */
struct mqtt_str {
    const char *ptr;
    size_t len;
};

/* Binary data (will message, password, PUBLISH payload); same rules for
 * absence as struct mqtt_str. */
struct mqtt_bin {
    const uint8_t *ptr;
    size_t len;
};

struct mqtt_connect {
    struct mqtt_str protocol_name; /* "MQTT" unless bad_protocol */
    uint8_t level;                 /* 4 unless bad_protocol */
    /* Set when the protocol name is not "MQTT" or the level is not 4. Only
     * protocol_name and level are then filled: the rest of the packet belongs
     * to another protocol version and is skipped unread, so that the server
     * can answer CONNACK 0x01 (MQTT-3.1.2-2) and close. */
    int bad_protocol;
    int clean_session;
    uint16_t keepalive;        /* seconds, 0 = off */
    struct mqtt_str client_id; /* may be empty */
    int will;                  /* will flag; the four will_ fields below are used only if set */
    uint8_t will_qos;
    int will_retain;
    struct mqtt_str will_topic;
    struct mqtt_bin will_message;
    int has_username;
    struct mqtt_str username;
    int has_password; /* only together with has_username */
    struct mqtt_bin password;
};

struct mqtt_connack {
    int session_present;
    uint8_t rc; /* enum mqtt_connack_rc */
};

struct mqtt_publish {
    int dup;
    uint8_t qos; /* 0, 1 or 2 */
    int retain;
    struct mqtt_str topic;
    uint16_t packet_id; /* non-zero when qos > 0, else 0 */
    struct mqtt_bin payload;
};

/* SUBSCRIBE and UNSUBSCRIBE (an UNSUBSCRIBE has no QoS; its qos[] is 0). */
struct mqtt_subscribe {
    uint16_t packet_id;
    size_t count; /* 1..MQTT_MAX_FILTERS */
    struct mqtt_str filters[MQTT_MAX_FILTERS];
    uint8_t qos[MQTT_MAX_FILTERS]; /* requested QoS 0..2 */
};

struct mqtt_suback {
    uint16_t packet_id;
    size_t count;                    /* 1..MQTT_MAX_FILTERS */
    uint8_t codes[MQTT_MAX_FILTERS]; /* 0, 1, 2 or MQTT_SUBACK_FAILURE */
};

/* One decoded packet; 'type' says which member of the union is filled
 * (none for PINGREQ, PINGRESP and DISCONNECT). */
struct mqtt_packet {
    enum mqtt_type type;
    union {
        struct mqtt_connect connect;       /* MQTT_CONNECT */
        struct mqtt_connack connack;       /* MQTT_CONNACK */
        struct mqtt_publish publish;       /* MQTT_PUBLISH */
        uint16_t packet_id;                /* PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK */
        struct mqtt_subscribe subscribe;   /* MQTT_SUBSCRIBE */
        struct mqtt_subscribe unsubscribe; /* MQTT_UNSUBSCRIBE */
        struct mqtt_suback suback;         /* MQTT_SUBACK */
    };
};

/*
 * Decode the packet at the start of 'buf' ('len' bytes, which may hold less
 * than one packet or more than one).
 *
 * Returns the number of bytes the packet took (> 0) when a whole valid packet
 * is in 'buf'; 0 when more bytes are needed to decide; or a negative errno
 * with '*why' set to a static, human-readable reason: -EPROTO for a malformed
 * packet (anything MQTT 3.1.1 forbids, including bytes left over inside the
 * remaining length) and -EMSGSIZE when a limit in 'lim' is exceeded. Errors
 * are reported as early as the bytes allow: a reserved type or wrong flags
 * after the first byte, a remaining length over lim->max_packet or longer
 * than 4 bytes as soon as it is certain, before the body has arrived. After a
 * negative return the stream cannot be resynchronised; close the connection.
 *
 * 'lim' may be NULL for the protocol maxima. A max_filters above
 * MQTT_MAX_FILTERS counts as MQTT_MAX_FILTERS. A server that wants to answer
 * CONNACK 0x02 for an overlong client id passes a generous max_client_id and
 * compares out->connect.client_id.len itself. 'why' may be NULL; it is left
 * alone unless the return value is negative.
 *
 * A remaining length must be in its shortest encoding (the only one the
 * standard's algorithm produces); a padded one such as 0x80 0x00 is -EPROTO.
 *
 * '*out' is meaningful only after a positive return (it may have been
 * written to otherwise); its pointers borrow from 'buf' (see the ownership
 * note at the top). The decoder neither allocates nor keeps any state between
 * calls, so feeding a growing buffer again after a 0 is the way to read a
 * stream.
 */
int mqtt_decode(const uint8_t *buf, size_t len, const struct mqtt_limits *lim,
                struct mqtt_packet *out, const char **why);

/*
 * Encoders. Each writes one complete packet into 'buf' (capacity 'cap') and
 * returns its length, or a negative errno: -ENOSPC when it does not fit (then
 * nothing was written), -EINVAL when the arguments cannot form a valid MQTT
 * 3.1.1 packet (so that we never send what our own decoder would refuse), or
 * -EMSGSIZE when the packet would exceed MQTT_MAX_REMAINING. With 'buf' NULL
 * nothing is written, 'cap' is ignored, and the length that would be written
 * is returned, so a caller can size a buffer first. The arguments are only
 * read; strings and payloads are copied into 'buf'.
 */

/* CONNECT with protocol "MQTT" level 4 (protocol_name, level and
 * bad_protocol are ignored): client id, keepalive, clean session, the will
 * when c->will is set, the user name when c->has_username is set and the
 * password when c->has_password is set. -EINVAL for malformed UTF-8, an
 * invalid will topic, will QoS above 2, a password without a user name or a
 * string longer than 65535 bytes. */
int mqtt_encode_connect(uint8_t *buf, size_t cap, const struct mqtt_connect *c);

/* CONNACK. -EINVAL for a return code above 5, or session_present set with a
 * non-zero return code (MQTT-3.2.2-4). */
int mqtt_encode_connack(uint8_t *buf, size_t cap, int session_present, uint8_t rc);

/* PUBLISH with QoS 0 or 1. p->packet_id is used for QoS 1 and must then be
 * non-zero; it is ignored for QoS 0. -EINVAL for QoS 2 or more, dup with
 * QoS 0, an invalid topic name (empty, wildcards, malformed UTF-8, over 65535
 * bytes) or a zero packet id with QoS 1. */
int mqtt_encode_publish(uint8_t *buf, size_t cap, const struct mqtt_publish *p);

/* PUBACK for 'packet_id'; -EINVAL when it is 0. */
int mqtt_encode_puback(uint8_t *buf, size_t cap, uint16_t packet_id);

/* SUBSCRIBE with s->count (1..MQTT_MAX_FILTERS) filters and requested QoS.
 * -EINVAL for a zero packet id, a count out of range, an invalid filter or a
 * QoS above 2. */
int mqtt_encode_subscribe(uint8_t *buf, size_t cap, const struct mqtt_subscribe *s);

/* SUBACK with s->count (1..MQTT_MAX_FILTERS) return codes. -EINVAL for a zero
 * packet id, a count out of range or a code other than 0, 1, 2 or 0x80. */
int mqtt_encode_suback(uint8_t *buf, size_t cap, const struct mqtt_suback *s);

/* UNSUBSCRIBE with s->count (1..MQTT_MAX_FILTERS) filters; s->qos is
 * ignored. -EINVAL as for mqtt_encode_subscribe(). */
int mqtt_encode_unsubscribe(uint8_t *buf, size_t cap, const struct mqtt_subscribe *s);

/* UNSUBACK for 'packet_id'; -EINVAL when it is 0. */
int mqtt_encode_unsuback(uint8_t *buf, size_t cap, uint16_t packet_id);

/* PINGREQ, PINGRESP and DISCONNECT: two bytes each. */
int mqtt_encode_pingreq(uint8_t *buf, size_t cap);
int mqtt_encode_pingresp(uint8_t *buf, size_t cap);
int mqtt_encode_disconnect(uint8_t *buf, size_t cap);

/*
 * Validators for strings that did not come through mqtt_decode() (such as
 * topics built from device ids). Each returns 1 when the 'len' bytes at 's'
 * are valid and 0 otherwise; 's' may be NULL only when 'len' is 0.
 */

/* Well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF) without U+0000 (MQTT-1.5.3-1, -2), at most 65535 bytes.
 * Other control characters and non-characters are accepted: the standard
 * only says SHOULD NOT for them. */
int mqtt_utf8_valid(const void *s, size_t len);

/* A topic name as PUBLISH and the will carry it: a valid UTF-8 string of at
 * least one byte without '+' or '#' (MQTT-4.7.3-1, MQTT-3.3.2-2). */
int mqtt_topic_valid(const char *s, size_t len);

/* A topic filter: a valid UTF-8 string of at least one byte where '+' only
 * stands for a whole level and '#' only for the whole last level
 * (MQTT-4.7.1-2, -3). */
int mqtt_filter_valid(const char *s, size_t len);

/* The name of packet type 't' ("CONNECT" ... "DISCONNECT") for logs, or
 * "RESERVED" for 0, 15 and anything else. The string is static. */
const char *mqtt_type_name(int t);

#endif
