/*
 * test_mqtt.c - the MQTT 3.1.1 codec: tables of hand-written valid and
 * invalid packets, every flag and length rule, limits, incremental and
 * back-to-back decoding, and encode/decode round trips for every encoder.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driver/mqtt.h"

#define BYTES(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})
#define ARR(a)     a, sizeof a

/* Small limits so that the limit cases stay short. */
static const struct mqtt_limits lim = {
    .max_packet = 1024, .max_client_id = 23, .max_topic = 64, .max_filters = 4};

/* --- packets used by several tests ----------------------------------------- */

/* CONNECT, client id "dev1", clean session, keepalive 60. */
static const uint8_t connect_dev1[] = {0x10, 0x10, 0x00, 0x04, 'M',  'Q', 'T', 'T', 0x04,
                                       0x02, 0x00, 0x3c, 0x00, 0x04, 'd', 'e', 'v', '1'};
/* CONNECT with all flags: will QoS 1 retained on "w/t" ("bye"), user "u",
 * binary password 00 ff, keepalive 300, client id "c". */
static const uint8_t connect_full[] = {
    0x10, 0x1e, 0x00, 0x04, 'M',  'Q',  'T', 'T', 0x04, 0xee, 0x01, 0x2c, 0x00, 0x01, 'c',  0x00,
    0x03, 'w',  '/',  't',  0x00, 0x03, 'b', 'y', 'e',  0x00, 0x01, 'u',  0x00, 0x02, 0x00, 0xff};
/* SUBSCRIBE id 1: "a/+" QoS 1, "#" QoS 0. */
static const uint8_t subscribe_2[] = {0x82, 0x0c, 0x00, 0x01, 0x00, 0x03, 'a',
                                      '/',  '+',  0x01, 0x00, 0x01, '#',  0x00};
/* PUBLISH QoS 1, dup, retain, "a/b", id 0x1234, payload "hi". */
static const uint8_t publish_q1[] = {0x3b, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x12, 0x34, 'h', 'i'};
/* PUBLISH QoS 0 "a/b" payload "hi". */
static const uint8_t publish_q0[] = {0x30, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'};
/* UNSUBSCRIBE id 7: "a/#", "b". */
static const uint8_t unsubscribe_2[] = {0xa2, 0x0a, 0x00, 0x07, 0x00, 0x03,
                                        'a',  '/',  '#',  0x00, 0x01, 'b'};
/* SUBACK id 1: granted 1, 2, failure. */
static const uint8_t suback_3[] = {0x90, 0x05, 0x00, 0x01, 0x01, 0x02, 0x80};

/* --- the valid table -------------------------------------------------------- */

struct vcase {
    const char *name;
    const uint8_t *bytes;
    size_t len;
    enum mqtt_type type;
};

static const struct vcase valid[] = {
    {"CONNECT empty client id",
     BYTES(0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00),
     MQTT_CONNECT},
    {"CONNECT dev1", ARR(connect_dev1), MQTT_CONNECT},
    {"CONNECT all flags", ARR(connect_full), MQTT_CONNECT},
    {"CONNECT empty user name",
     BYTES(0x10, 0x0f, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x82, 0x00, 0x00, 0x00, 0x01, 'c',
           0x00, 0x00),
     MQTT_CONNECT},
    {"CONNECT MQIsdp 3 (bad protocol)",
     BYTES(0x10, 0x0f, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x02, 0x00, 0x3c, 0x00, 0x01,
           'c'),
     MQTT_CONNECT},
    {"CONNECT MQTT 5 (bad protocol)",
     BYTES(0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3c, 0x00, 0x00, 0x00),
     MQTT_CONNECT},
    {"CONNACK accepted", BYTES(0x20, 0x02, 0x00, 0x00), MQTT_CONNACK},
    {"CONNACK session present", BYTES(0x20, 0x02, 0x01, 0x00), MQTT_CONNACK},
    {"CONNACK not authorized", BYTES(0x20, 0x02, 0x00, 0x05), MQTT_CONNACK},
    {"PUBLISH QoS 0", ARR(publish_q0), MQTT_PUBLISH},
    {"PUBLISH QoS 0 retain, empty payload", BYTES(0x31, 0x05, 0x00, 0x03, 'a', '/', 'b'),
     MQTT_PUBLISH},
    {"PUBLISH QoS 1 dup retain", ARR(publish_q1), MQTT_PUBLISH},
    {"PUBLISH QoS 2", BYTES(0x34, 0x07, 0x00, 0x03, 'a', '/', 'b', 0x12, 0x34), MQTT_PUBLISH},
    {"PUBLISH QoS 2 dup", BYTES(0x3c, 0x07, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x01), MQTT_PUBLISH},
    {"PUBLISH UTF-8 topic", BYTES(0x30, 0x06, 0x00, 0x04, 'c', '/', 0xc3, 0xbc), MQTT_PUBLISH},
    {"PUBLISH topic /", BYTES(0x30, 0x03, 0x00, 0x01, '/'), MQTT_PUBLISH},
    {"PUBLISH topic a//b$", BYTES(0x30, 0x07, 0x00, 0x05, 'a', '/', '/', 'b', '$'), MQTT_PUBLISH},
    {"PUBLISH payload with NUL", BYTES(0x30, 0x05, 0x00, 0x01, 't', 0x00, 0x00), MQTT_PUBLISH},
    {"PUBACK", BYTES(0x40, 0x02, 0x00, 0x01), MQTT_PUBACK},
    {"PUBREC", BYTES(0x50, 0x02, 0xff, 0xff), MQTT_PUBREC},
    {"PUBREL", BYTES(0x62, 0x02, 0x00, 0x01), MQTT_PUBREL},
    {"PUBCOMP", BYTES(0x70, 0x02, 0x00, 0x01), MQTT_PUBCOMP},
    {"SUBSCRIBE two filters", ARR(subscribe_2), MQTT_SUBSCRIBE},
    {"SUBSCRIBE wildcard levels",
     BYTES(0x82, 0x13, 0x00, 0x02, 0x00, 0x01, '+', 0x02, 0x00, 0x05, '+', '/', '+', '/', '#', 0x01,
           0x00, 0x02, '/', '+', 0x00),
     MQTT_SUBSCRIBE},
    {"SUBSCRIBE $SYS/#",
     BYTES(0x82, 0x0b, 0x00, 0x03, 0x00, 0x06, '$', 'S', 'Y', 'S', '/', '#', 0x00), MQTT_SUBSCRIBE},
    {"SUBACK one code", BYTES(0x90, 0x03, 0x00, 0x01, 0x00), MQTT_SUBACK},
    {"SUBACK three codes", ARR(suback_3), MQTT_SUBACK},
    {"UNSUBSCRIBE", ARR(unsubscribe_2), MQTT_UNSUBSCRIBE},
    {"UNSUBACK", BYTES(0xb0, 0x02, 0x00, 0x07), MQTT_UNSUBACK},
    {"PINGREQ", BYTES(0xc0, 0x00), MQTT_PINGREQ},
    {"PINGRESP", BYTES(0xd0, 0x00), MQTT_PINGRESP},
    {"DISCONNECT", BYTES(0xe0, 0x00), MQTT_DISCONNECT},
};

#define NVALID (sizeof valid / sizeof valid[0])

static uint8_t *copy(const uint8_t *b, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    if (n)
        memcpy(p, b, n);
    return p;
}

/* Each valid packet decodes whole; with trailing bytes of a next packet it
 * still takes only its own length. */
static void test_valid_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVALID; i++) {
        const struct vcase *c = &valid[i];
        struct mqtt_packet pk;
        const char *why = NULL;
        uint8_t *b = copy(c->bytes, c->len);
        int rc = mqtt_decode(b, c->len, &lim, &pk, &why);
        if (rc != (int)c->len || pk.type != c->type)
            fail_msg("%s: rc %d type %d (%s)", c->name, rc, rc > 0 ? (int)pk.type : -1,
                     why ? why : "");
        free(b);

        uint8_t more[512];
        assert_true(c->len + 2 <= sizeof more);
        memcpy(more, c->bytes, c->len);
        more[c->len] = 0xc0; /* a PINGREQ follows */
        more[c->len + 1] = 0x00;
        assert_int_equal(mqtt_decode(more, c->len + 2, &lim, &pk, NULL), (int)c->len);
    }
}

/* Fed one byte at a time, every valid packet gives 0 until it is complete. */
static void test_incremental(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVALID; i++) {
        const struct vcase *c = &valid[i];
        for (size_t n = 0; n <= c->len; n++) {
            struct mqtt_packet pk;
            const char *why = NULL;
            uint8_t *b = copy(c->bytes, n); /* exact size: ASan sees any overread */
            int rc = mqtt_decode(b, n, &lim, &pk, &why);
            int want = n == c->len ? (int)c->len : 0;
            if (rc != want)
                fail_msg("%s: %zu of %zu bytes gave %d (%s)", c->name, n, c->len, rc,
                         why ? why : "");
            free(b);
        }
    }
}

/* --- the invalid table ------------------------------------------------------ */

struct icase {
    const char *name;
    const uint8_t *bytes;
    size_t len;
    int err;
    const char *why; /* a substring of the reason */
};

static const struct icase invalid[] = {
    /* fixed header: type and flags, refused from the first byte */
    {"type 0", BYTES(0x00, 0x00), -EPROTO, "reserved packet type"},
    {"type 15", BYTES(0xf0), -EPROTO, "reserved packet type"},
    {"CONNECT flags 1", BYTES(0x11), -EPROTO, "reserved fixed-header flags"},
    {"CONNACK flags 8", BYTES(0x28, 0x02, 0x00, 0x00), -EPROTO, "reserved fixed-header flags"},
    {"PUBACK flags 2", BYTES(0x42, 0x02, 0x00, 0x01), -EPROTO, "reserved fixed-header flags"},
    {"PUBREC flags 1", BYTES(0x51), -EPROTO, "reserved fixed-header flags"},
    {"PUBREL flags 0", BYTES(0x60, 0x02, 0x00, 0x01), -EPROTO, "must be 0x2"},
    {"PUBREL flags 3", BYTES(0x63), -EPROTO, "must be 0x2"},
    {"PUBCOMP flags 2", BYTES(0x72), -EPROTO, "reserved fixed-header flags"},
    {"SUBSCRIBE flags 0", BYTES(0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00), -EPROTO,
     "must be 0x2"},
    {"SUBSCRIBE flags 3", BYTES(0x83), -EPROTO, "must be 0x2"},
    {"SUBACK flags 2", BYTES(0x92), -EPROTO, "reserved fixed-header flags"},
    {"UNSUBSCRIBE flags 0", BYTES(0xa0, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'), -EPROTO, "must be 0x2"},
    {"UNSUBSCRIBE flags 0xa", BYTES(0xaa), -EPROTO, "must be 0x2"},
    {"UNSUBACK flags 1", BYTES(0xb1), -EPROTO, "reserved fixed-header flags"},
    {"PINGREQ flags 1", BYTES(0xc1, 0x00), -EPROTO, "reserved fixed-header flags"},
    {"PINGRESP flags 4", BYTES(0xd4, 0x00), -EPROTO, "reserved fixed-header flags"},
    {"DISCONNECT flags 8", BYTES(0xe8, 0x00), -EPROTO, "reserved fixed-header flags"},
    {"PUBLISH QoS 3", BYTES(0x36), -EPROTO, "QoS 3"},
    {"PUBLISH QoS 3 dup retain", BYTES(0x3f), -EPROTO, "QoS 3"},
    {"PUBLISH dup at QoS 0", BYTES(0x38, 0x05, 0x00, 0x03, 'a', '/', 'b'), -EPROTO, "DUP"},
    /* remaining length */
    {"varint not shortest", BYTES(0xc0, 0x80, 0x00), -EPROTO, "shortest form"},
    {"varint over the limit", BYTES(0x30, 0x81, 0x08), -EMSGSIZE, "larger than the limit"},
    {"varint bound already over the limit", BYTES(0x30, 0x80, 0x80), -EMSGSIZE, "larger than"},
    /* lengths fixed by the type, refused before the body arrives */
    {"CONNACK length 3", BYTES(0x20, 0x03), -EPROTO, "CONNACK remaining length"},
    {"CONNACK length 1", BYTES(0x20, 0x01, 0x00), -EPROTO, "CONNACK remaining length"},
    {"PUBACK length 3", BYTES(0x40, 0x03), -EPROTO, "PUBACK remaining length"},
    {"PUBACK length 0", BYTES(0x40, 0x00), -EPROTO, "PUBACK remaining length"},
    {"PUBREC length 1", BYTES(0x50, 0x01, 0x01), -EPROTO, "PUBREC remaining length"},
    {"PUBREL length 4", BYTES(0x62, 0x04), -EPROTO, "PUBREL remaining length"},
    {"PUBCOMP length 0", BYTES(0x70, 0x00), -EPROTO, "PUBCOMP remaining length"},
    {"SUBACK length 2", BYTES(0x90, 0x02, 0x00, 0x01), -EPROTO, "SUBACK remaining length"},
    {"UNSUBACK length 3", BYTES(0xb0, 0x03), -EPROTO, "UNSUBACK remaining length"},
    {"PINGREQ length 1", BYTES(0xc0, 0x01), -EPROTO, "PINGREQ remaining length"},
    {"PINGRESP length 2", BYTES(0xd0, 0x02), -EPROTO, "PINGRESP remaining length"},
    {"DISCONNECT length 1", BYTES(0xe0, 0x01, 0x00), -EPROTO, "DISCONNECT remaining length"},
    /* packet identifiers */
    {"PUBACK id 0", BYTES(0x40, 0x02, 0x00, 0x00), -EPROTO, "packet identifier 0"},
    {"PUBREC id 0", BYTES(0x50, 0x02, 0x00, 0x00), -EPROTO, "packet identifier 0"},
    {"PUBREL id 0", BYTES(0x62, 0x02, 0x00, 0x00), -EPROTO, "packet identifier 0"},
    {"PUBCOMP id 0", BYTES(0x70, 0x02, 0x00, 0x00), -EPROTO, "packet identifier 0"},
    {"UNSUBACK id 0", BYTES(0xb0, 0x02, 0x00, 0x00), -EPROTO, "packet identifier 0"},
    /* CONNACK */
    {"CONNACK reserved ack flag", BYTES(0x20, 0x02, 0x02, 0x00), -EPROTO, "acknowledge flag"},
    {"CONNACK return code 6", BYTES(0x20, 0x02, 0x00, 0x06), -EPROTO, "return code"},
    {"CONNACK return code 0xff", BYTES(0x20, 0x02, 0x00, 0xff), -EPROTO, "return code"},
    {"CONNACK session present refused", BYTES(0x20, 0x02, 0x01, 0x01), -EPROTO, "session present"},
    /* CONNECT */
    {"CONNECT empty", BYTES(0x10, 0x00), -EPROTO, "middle of a field"},
    {"CONNECT without level", BYTES(0x10, 0x06, 0x00, 0x04, 'M', 'Q', 'T', 'T'), -EPROTO,
     "middle of a field"},
    {"CONNECT without keepalive", BYTES(0x10, 0x08, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02),
     -EPROTO, "middle of a field"},
    {"CONNECT without client id",
     BYTES(0x10, 0x0a, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c), -EPROTO,
     "middle of a field"},
    {"CONNECT protocol name past the end", BYTES(0x10, 0x03, 0x00, 0x04, 'M'), -EPROTO,
     "past the end"},
    {"CONNECT protocol name not UTF-8",
     BYTES(0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 0xff, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00),
     -EPROTO, "UTF-8"},
    {"CONNECT reserved flag",
     BYTES(0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x03, 0x00, 0x3c, 0x00, 0x00), -EPROTO,
     "reserved CONNECT flag"},
    {"CONNECT will QoS without will",
     BYTES(0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x0a, 0x00, 0x3c, 0x00, 0x00), -EPROTO,
     "without the will flag"},
    {"CONNECT will QoS 2 without will",
     BYTES(0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x12, 0x00, 0x3c, 0x00, 0x00), -EPROTO,
     "without the will flag"},
    {"CONNECT will retain without will",
     BYTES(0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x22, 0x00, 0x3c, 0x00, 0x00), -EPROTO,
     "without the will flag"},
    {"CONNECT will QoS 3",
     BYTES(0x10, 0x12, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x1e, 0x00, 0x3c, 0x00, 0x00, 0x00,
           0x01, 't', 0x00, 0x01, 'm'),
     -EPROTO, "will QoS 3"},
    {"CONNECT password without user name",
     BYTES(0x10, 0x0f, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x42, 0x00, 0x3c, 0x00, 0x00, 0x00,
           0x01, 'p'),
     -EPROTO, "password flag without"},
    {"CONNECT client id not UTF-8",
     BYTES(0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x02, 0xc3,
           0x28),
     -EPROTO, "UTF-8"},
    {"CONNECT client id with U+0000",
     BYTES(0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 0x00),
     -EPROTO, "U+0000"},
    {"CONNECT client id past the end",
     BYTES(0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x05, 'a'),
     -EPROTO, "past the end"},
    {"CONNECT trailing byte",
     BYTES(0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00, 0xff),
     -EPROTO, "left over"},
    {"CONNECT will flag without will topic",
     BYTES(0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06, 0x00, 0x3c, 0x00, 0x00), -EPROTO,
     "middle of a field"},
    {"CONNECT will without message",
     BYTES(0x10, 0x0f, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06, 0x00, 0x3c, 0x00, 0x00, 0x00,
           0x01, 't'),
     -EPROTO, "middle of a field"},
    {"CONNECT will topic empty",
     BYTES(0x10, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06, 0x00, 0x3c, 0x00, 0x00, 0x00,
           0x00, 0x00, 0x00),
     -EPROTO, "empty topic name"},
    {"CONNECT will topic wildcard",
     BYTES(0x10, 0x13, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x06, 0x00, 0x3c, 0x00, 0x00, 0x00,
           0x03, 'a', '/', '#', 0x00, 0x00),
     -EPROTO, "wildcard in a topic name"},
    {"CONNECT user name flag without user name",
     BYTES(0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x82, 0x00, 0x3c, 0x00, 0x00), -EPROTO,
     "middle of a field"},
    {"CONNECT user name not UTF-8",
     BYTES(0x10, 0x0f, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x82, 0x00, 0x3c, 0x00, 0x00, 0x00,
           0x01, 0x80),
     -EPROTO, "UTF-8"},
    {"CONNECT password flag without password",
     BYTES(0x10, 0x0f, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xc2, 0x00, 0x3c, 0x00, 0x00, 0x00,
           0x01, 'u'),
     -EPROTO, "middle of a field"},
    {"CONNECT password past the end",
     BYTES(0x10, 0x12, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xc2, 0x00, 0x3c, 0x00, 0x00, 0x00,
           0x01, 'u', 0x00, 0x09, 'p'),
     -EPROTO, "past the end"},
    /* PUBLISH */
    {"PUBLISH empty", BYTES(0x30, 0x00), -EPROTO, "middle of a field"},
    {"PUBLISH empty topic", BYTES(0x30, 0x02, 0x00, 0x00), -EPROTO, "empty topic name"},
    {"PUBLISH topic past the end", BYTES(0x30, 0x03, 0x00, 0x05, 'a'), -EPROTO, "past the end"},
    {"PUBLISH topic with +", BYTES(0x30, 0x05, 0x00, 0x03, 'a', '/', '+'), -EPROTO, "wildcard"},
    {"PUBLISH topic with #", BYTES(0x30, 0x03, 0x00, 0x01, '#'), -EPROTO, "wildcard"},
    {"PUBLISH topic with + inside", BYTES(0x30, 0x04, 0x00, 0x02, 'a', '+'), -EPROTO, "wildcard"},
    {"PUBLISH topic with U+0000", BYTES(0x30, 0x05, 0x00, 0x03, 'a', 0x00, 'b'), -EPROTO, "U+0000"},
    {"PUBLISH topic surrogate", BYTES(0x30, 0x05, 0x00, 0x03, 0xed, 0xa0, 0x80), -EPROTO, "UTF-8"},
    {"PUBLISH topic overlong", BYTES(0x30, 0x04, 0x00, 0x02, 0xc0, 0xaf), -EPROTO, "UTF-8"},
    {"PUBLISH QoS 1 without id", BYTES(0x32, 0x05, 0x00, 0x03, 'a', '/', 'b'), -EPROTO,
     "middle of a field"},
    {"PUBLISH QoS 1 id half", BYTES(0x32, 0x06, 0x00, 0x03, 'a', '/', 'b', 0x01), -EPROTO,
     "middle of a field"},
    {"PUBLISH QoS 1 id 0", BYTES(0x32, 0x07, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x00), -EPROTO,
     "packet identifier 0"},
    {"PUBLISH QoS 2 id 0", BYTES(0x34, 0x07, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x00), -EPROTO,
     "packet identifier 0"},
    /* SUBSCRIBE */
    {"SUBSCRIBE empty", BYTES(0x82, 0x00), -EPROTO, "middle of a field"},
    {"SUBSCRIBE id 0", BYTES(0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00), -EPROTO,
     "packet identifier 0"},
    {"SUBSCRIBE no filter", BYTES(0x82, 0x02, 0x00, 0x01), -EPROTO, "no topic filter"},
    {"SUBSCRIBE missing QoS", BYTES(0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'), -EPROTO,
     "middle of a field"},
    {"SUBSCRIBE QoS 3", BYTES(0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03), -EPROTO,
     "requested QoS 3"},
    {"SUBSCRIBE QoS reserved bits", BYTES(0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x04), -EPROTO,
     "reserved bits"},
    {"SUBSCRIBE QoS 0x81", BYTES(0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x81), -EPROTO,
     "reserved bits"},
    {"SUBSCRIBE empty filter", BYTES(0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00), -EPROTO,
     "empty topic filter"},
    {"SUBSCRIBE filter a+", BYTES(0x82, 0x07, 0x00, 0x01, 0x00, 0x02, 'a', '+', 0x00), -EPROTO,
     "not a whole level"},
    {"SUBSCRIBE filter +a", BYTES(0x82, 0x07, 0x00, 0x01, 0x00, 0x02, '+', 'a', 0x00), -EPROTO,
     "not a whole level"},
    {"SUBSCRIBE filter a#", BYTES(0x82, 0x07, 0x00, 0x01, 0x00, 0x02, 'a', '#', 0x00), -EPROTO,
     "not a whole level"},
    {"SUBSCRIBE filter #/", BYTES(0x82, 0x07, 0x00, 0x01, 0x00, 0x02, '#', '/', 0x00), -EPROTO,
     "not a whole level"},
    {"SUBSCRIBE filter a/#/b",
     BYTES(0x82, 0x0a, 0x00, 0x01, 0x00, 0x05, 'a', '/', '#', '/', 'b', 0x00), -EPROTO,
     "not a whole level"},
    {"SUBSCRIBE filter ++", BYTES(0x82, 0x07, 0x00, 0x01, 0x00, 0x02, '+', '+', 0x00), -EPROTO,
     "not a whole level"},
    {"SUBSCRIBE filter not UTF-8", BYTES(0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0xfe, 0x00), -EPROTO,
     "UTF-8"},
    {"SUBSCRIBE second filter bad",
     BYTES(0x82, 0x0b, 0x00, 0x01, 0x00, 0x01, 'a', 0x00, 0x00, 0x02, 'b', '#', 0x00), -EPROTO,
     "not a whole level"},
    {"SUBSCRIBE five filters over the limit of 4",
     BYTES(0x82, 0x16, 0x00, 0x01, 0x00, 0x01, 'a', 0x00, 0x00, 0x01, 'b', 0x00, 0x00, 0x01, 'c',
           0x00, 0x00, 0x01, 'd', 0x00, 0x00, 0x01, 'e', 0x00),
     -EMSGSIZE, "more topic filters than the limit"},
    /* SUBACK */
    {"SUBACK id 0", BYTES(0x90, 0x03, 0x00, 0x00, 0x00), -EPROTO, "packet identifier 0"},
    {"SUBACK code 3", BYTES(0x90, 0x03, 0x00, 0x01, 0x03), -EPROTO, "reserved SUBACK"},
    {"SUBACK code 0x81", BYTES(0x90, 0x04, 0x00, 0x01, 0x00, 0x81), -EPROTO, "reserved SUBACK"},
    {"SUBACK five codes over the limit of 4", BYTES(0x90, 0x07, 0x00, 0x01, 0, 1, 2, 0x80, 0),
     -EMSGSIZE, "more SUBACK return codes"},
    /* UNSUBSCRIBE */
    {"UNSUBSCRIBE empty", BYTES(0xa2, 0x00), -EPROTO, "middle of a field"},
    {"UNSUBSCRIBE id 0", BYTES(0xa2, 0x05, 0x00, 0x00, 0x00, 0x01, 'a'), -EPROTO,
     "packet identifier 0"},
    {"UNSUBSCRIBE no filter", BYTES(0xa2, 0x02, 0x00, 0x07), -EPROTO, "no topic filter"},
    {"UNSUBSCRIBE empty filter", BYTES(0xa2, 0x04, 0x00, 0x07, 0x00, 0x00), -EPROTO,
     "empty topic filter"},
    {"UNSUBSCRIBE bad filter", BYTES(0xa2, 0x06, 0x00, 0x07, 0x00, 0x02, 'a', '#'), -EPROTO,
     "not a whole level"},
    {"UNSUBSCRIBE stray QoS byte", BYTES(0xa2, 0x06, 0x00, 0x07, 0x00, 0x01, 'a', 0x01), -EPROTO,
     "middle of a field"},
};

#define NINVALID (sizeof invalid / sizeof invalid[0])

/* Each invalid packet gives its errno and reason; no prefix of it succeeds or
 * gives another error (a prefix may only ask for more bytes). */
static void test_invalid_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NINVALID; i++) {
        const struct icase *c = &invalid[i];
        for (size_t n = 0; n <= c->len; n++) {
            struct mqtt_packet pk;
            const char *why = NULL;
            uint8_t *b = copy(c->bytes, n);
            int rc = mqtt_decode(b, n, &lim, &pk, &why);
            free(b);
            if (n < c->len && (rc == 0 || rc == c->err))
                continue;
            if (rc != c->err)
                fail_msg("%s: %zu of %zu bytes gave %d, expected %d (%s)", c->name, n, c->len, rc,
                         c->err, why ? why : "");
            if (why == NULL || strstr(why, c->why) == NULL)
                fail_msg("%s: reason \"%s\" lacks \"%s\"", c->name, why ? why : "(null)", c->why);
        }
    }
}

/* --- fields of decoded packets ---------------------------------------------- */

static void assert_str(struct mqtt_str s, const char *want)
{
    assert_non_null(s.ptr);
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.ptr, want, s.len);
}

static void assert_bin(struct mqtt_bin b, const void *want, size_t len)
{
    assert_int_equal(b.len, len);
    if (len)
        assert_memory_equal(b.ptr, want, len);
}

static void test_connect_fields(void **state)
{
    struct mqtt_packet pk;
    (void)state;

    assert_int_equal(mqtt_decode(ARR(connect_full), &lim, &pk, NULL), (int)sizeof connect_full);
    const struct mqtt_connect *c = &pk.connect;
    assert_int_equal(pk.type, MQTT_CONNECT);
    assert_str(c->protocol_name, "MQTT");
    assert_int_equal(c->level, 4);
    assert_false(c->bad_protocol);
    assert_true(c->clean_session);
    assert_int_equal(c->keepalive, 300);
    assert_str(c->client_id, "c");
    assert_true(c->will);
    assert_int_equal(c->will_qos, 1);
    assert_true(c->will_retain);
    assert_str(c->will_topic, "w/t");
    assert_bin(c->will_message, "bye", 3);
    assert_true(c->has_username);
    assert_str(c->username, "u");
    assert_true(c->has_password);
    assert_bin(c->password, "\x00\xff", 2);
    /* Strings point into the buffer. */
    assert_ptr_equal(c->client_id.ptr, (const char *)connect_full + 14);

    assert_int_equal(mqtt_decode(ARR(connect_dev1), &lim, &pk, NULL), (int)sizeof connect_dev1);
    assert_str(c->client_id, "dev1");
    assert_int_equal(c->keepalive, 60);
    assert_false(c->will);
    assert_false(c->has_username);
    assert_false(c->has_password);
    assert_null(c->username.ptr);
    assert_null(c->password.ptr);
    assert_null(c->will_topic.ptr);

    /* Empty client id without clean session: decoded; CONNACK 0x02 is the
     * server's decision (MQTT-3.1.3-8). */
    static const uint8_t empty_id[] = {0x10, 0x0c, 0x00, 0x04, 'M',  'Q',  'T',
                                       'T',  0x04, 0x00, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(mqtt_decode(ARR(empty_id), &lim, &pk, NULL), (int)sizeof empty_id);
    assert_non_null(c->client_id.ptr);
    assert_int_equal(c->client_id.len, 0);
    assert_false(c->clean_session);
    assert_int_equal(c->keepalive, 0);
}

static void test_connect_bad_protocol(void **state)
{
    struct mqtt_packet pk;
    (void)state;
    /* MQTT 3.1: decoded so that the server can answer CONNACK 0x01. */
    static const uint8_t v31[] = {0x10, 0x0f, 0x00, 0x06, 'M',  'Q',  'I',  's', 'd',
                                  'p',  0x03, 0x02, 0x00, 0x3c, 0x00, 0x01, 'c'};
    assert_int_equal(mqtt_decode(ARR(v31), &lim, &pk, NULL), (int)sizeof v31);
    assert_true(pk.connect.bad_protocol);
    assert_str(pk.connect.protocol_name, "MQIsdp");
    assert_int_equal(pk.connect.level, 3);
    assert_null(pk.connect.client_id.ptr);

    /* "MQTT" level 5 with MQTT 5 properties that 3.1.1 rules would refuse. */
    static const uint8_t v5[] = {0x10, 0x10, 0x00, 0x04, 'M',  'Q',  'T',  'T',  0x05,
                                 0x02, 0x00, 0x3c, 0x03, 0x21, 0x00, 0x0a, 0x00, 0x00};
    assert_int_equal(mqtt_decode(ARR(v5), &lim, &pk, NULL), (int)sizeof v5);
    assert_true(pk.connect.bad_protocol);
    assert_int_equal(pk.connect.level, 5);

    /* Right name, level 3; wrong name, level 4; lower case name. */
    static const uint8_t l3[] = {0x10, 0x0c, 0x00, 0x04, 'M',  'Q',  'T',
                                 'T',  0x03, 0x02, 0x00, 0x3c, 0x00, 0x00};
    assert_int_equal(mqtt_decode(ARR(l3), &lim, &pk, NULL), (int)sizeof l3);
    assert_true(pk.connect.bad_protocol);
    static const uint8_t mqtx[] = {0x10, 0x0c, 0x00, 0x04, 'm',  'q',  't',
                                   't',  0x04, 0x02, 0x00, 0x3c, 0x00, 0x00};
    assert_int_equal(mqtt_decode(ARR(mqtx), &lim, &pk, NULL), (int)sizeof mqtx);
    assert_true(pk.connect.bad_protocol);
    assert_int_equal(pk.connect.level, 4);

    /* Only name and level are needed: a bare "XYZ" level 9 is enough. */
    static const uint8_t bare[] = {0x10, 0x06, 0x00, 0x03, 'X', 'Y', 'Z', 0x09};
    assert_int_equal(mqtt_decode(ARR(bare), &lim, &pk, NULL), (int)sizeof bare);
    assert_true(pk.connect.bad_protocol);
}

static void test_publish_fields(void **state)
{
    struct mqtt_packet pk;
    (void)state;

    assert_int_equal(mqtt_decode(ARR(publish_q1), &lim, &pk, NULL), (int)sizeof publish_q1);
    assert_int_equal(pk.type, MQTT_PUBLISH);
    assert_true(pk.publish.dup);
    assert_int_equal(pk.publish.qos, 1);
    assert_true(pk.publish.retain);
    assert_str(pk.publish.topic, "a/b");
    assert_int_equal(pk.publish.packet_id, 0x1234);
    assert_bin(pk.publish.payload, "hi", 2);
    assert_ptr_equal(pk.publish.payload.ptr, publish_q1 + 9);

    assert_int_equal(mqtt_decode(ARR(publish_q0), &lim, &pk, NULL), (int)sizeof publish_q0);
    assert_false(pk.publish.dup);
    assert_int_equal(pk.publish.qos, 0);
    assert_false(pk.publish.retain);
    assert_int_equal(pk.publish.packet_id, 0);
    assert_bin(pk.publish.payload, "hi", 2);

    static const uint8_t q2[] = {0x34, 0x07, 0x00, 0x03, 'a', '/', 'b', 0xbe, 0xef};
    assert_int_equal(mqtt_decode(ARR(q2), &lim, &pk, NULL), (int)sizeof q2);
    assert_int_equal(pk.publish.qos, 2);
    assert_int_equal(pk.publish.packet_id, 0xbeef);
    assert_int_equal(pk.publish.payload.len, 0);
    assert_ptr_equal(pk.publish.payload.ptr, q2 + sizeof q2);
}

static void test_other_fields(void **state)
{
    struct mqtt_packet pk;
    (void)state;

    assert_int_equal(mqtt_decode(ARR(subscribe_2), &lim, &pk, NULL), (int)sizeof subscribe_2);
    assert_int_equal(pk.subscribe.packet_id, 1);
    assert_int_equal(pk.subscribe.count, 2);
    assert_str(pk.subscribe.filters[0], "a/+");
    assert_int_equal(pk.subscribe.qos[0], 1);
    assert_str(pk.subscribe.filters[1], "#");
    assert_int_equal(pk.subscribe.qos[1], 0);

    assert_int_equal(mqtt_decode(ARR(unsubscribe_2), &lim, &pk, NULL), (int)sizeof unsubscribe_2);
    assert_int_equal(pk.type, MQTT_UNSUBSCRIBE);
    assert_int_equal(pk.unsubscribe.packet_id, 7);
    assert_int_equal(pk.unsubscribe.count, 2);
    assert_str(pk.unsubscribe.filters[0], "a/#");
    assert_str(pk.unsubscribe.filters[1], "b");
    assert_int_equal(pk.unsubscribe.qos[0], 0);

    assert_int_equal(mqtt_decode(ARR(suback_3), &lim, &pk, NULL), (int)sizeof suback_3);
    assert_int_equal(pk.suback.packet_id, 1);
    assert_int_equal(pk.suback.count, 3);
    assert_memory_equal(pk.suback.codes, "\x01\x02\x80", 3);

    static const uint8_t connack[] = {0x20, 0x02, 0x01, 0x00};
    assert_int_equal(mqtt_decode(ARR(connack), &lim, &pk, NULL), 4);
    assert_true(pk.connack.session_present);
    assert_int_equal(pk.connack.rc, 0);
    static const uint8_t connack5[] = {0x20, 0x02, 0x00, 0x05};
    assert_int_equal(mqtt_decode(ARR(connack5), &lim, &pk, NULL), 4);
    assert_false(pk.connack.session_present);
    assert_int_equal(pk.connack.rc, MQTT_CONNACK_NOT_AUTHORIZED);

    static const uint8_t acks[][4] = {{0x40, 0x02, 0x12, 0x34},
                                      {0x50, 0x02, 0x12, 0x34},
                                      {0x62, 0x02, 0x12, 0x34},
                                      {0x70, 0x02, 0x12, 0x34},
                                      {0xb0, 0x02, 0x12, 0x34}};
    static const enum mqtt_type ack_types[] = {MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP,
                                               MQTT_UNSUBACK};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(mqtt_decode(acks[i], 4, &lim, &pk, NULL), 4);
        assert_int_equal(pk.type, ack_types[i]);
        assert_int_equal(pk.packet_id, 0x1234);
    }
}

/* --- remaining length ------------------------------------------------------- */

static void test_varint_five_bytes(void **state)
{
    static const uint8_t five[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x7f};
    static const uint8_t max[] = {0x30, 0xff, 0xff, 0xff, 0x7f};
    struct mqtt_packet pk;
    const char *why = NULL;
    (void)state;

    /* Even with no limit beyond the protocol's, and already before the 5th
     * byte is there. */
    assert_int_equal(mqtt_decode(five, sizeof five, NULL, &pk, &why), -EPROTO);
    assert_non_null(strstr(why, "longer than 4 bytes"));
    why = NULL;
    assert_int_equal(mqtt_decode(five, 5, NULL, &pk, &why), -EPROTO);
    assert_non_null(strstr(why, "longer than 4 bytes"));
    assert_int_equal(mqtt_decode(five, 4, NULL, &pk, &why), 0);

    /* The largest legal value just waits for its 268 MB. */
    assert_int_equal(mqtt_decode(max, sizeof max, NULL, &pk, &why), 0);
    struct mqtt_limits huge = lim;
    huge.max_packet = SIZE_MAX; /* clamped to the protocol maximum */
    assert_int_equal(mqtt_decode(max, sizeof max, &huge, &pk, &why), 0);
}

static void test_early_emsgsize(void **state)
{
    static const uint8_t big[] = {0x30, 0xff, 0xff, 0xff, 0x7f};
    struct mqtt_packet pk;
    const char *why = NULL;
    struct mqtt_limits l = lim;
    (void)state;

    /* 127 + 128 * x can still be <= 1024 after two bytes, not after three. */
    assert_int_equal(mqtt_decode(big, 2, &lim, &pk, &why), 0);
    assert_int_equal(mqtt_decode(big, 3, &lim, &pk, &why), -EMSGSIZE);
    assert_non_null(strstr(why, "larger than the limit"));
    assert_int_equal(mqtt_decode(big, sizeof big, &lim, &pk, &why), -EMSGSIZE);

    /* Exactly the limit is fine; one more is not, before any body byte. */
    static const uint8_t at[] = {0x30, 0x80, 0x08}, over[] = {0x30, 0x81, 0x08};
    assert_int_equal(mqtt_decode(ARR(at), &lim, &pk, &why), 0);
    assert_int_equal(mqtt_decode(ARR(over), &lim, &pk, &why), -EMSGSIZE);

    /* With a limit of 127 a continuation bit alone proves >= 128. */
    static const uint8_t cont[] = {0x30, 0x80};
    l.max_packet = 127;
    assert_int_equal(mqtt_decode(ARR(cont), &l, &pk, &why), -EMSGSIZE);
    l.max_packet = 128;
    assert_int_equal(mqtt_decode(ARR(cont), &l, &pk, &why), 0);

    /* A limit of 0 allows only the empty packets. */
    static const uint8_t ping[] = {0xc0, 0x00}, puback[] = {0x40, 0x02};
    l.max_packet = 0;
    assert_int_equal(mqtt_decode(ARR(ping), &l, &pk, &why), 2);
    assert_int_equal(mqtt_decode(ARR(puback), &l, &pk, &why), -EMSGSIZE);
}

/* Remaining lengths at every varint width boundary, encoded and decoded. */
static void test_varint_boundaries(void **state)
{
    static const struct {
        size_t rem;
        uint8_t hdr[5];
        size_t hlen;
    } cases[] = {
        {127, {0x30, 0x7f}, 2},
        {128, {0x30, 0x80, 0x01}, 3},
        {16383, {0x30, 0xff, 0x7f}, 3},
        {16384, {0x30, 0x80, 0x80, 0x01}, 4},
        {2097151, {0x30, 0xff, 0xff, 0x7f}, 4},
        {2097152, {0x30, 0x80, 0x80, 0x80, 0x01}, 5},
    };
    uint8_t *payload = calloc(1, 2097152);
    uint8_t *buf = malloc(2097152 + 5);
    (void)state;
    assert_non_null(payload);
    assert_non_null(buf);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mqtt_publish p = {.topic = {"t", 1}, .payload = {payload, cases[i].rem - 3}};
        struct mqtt_packet pk;
        size_t total = cases[i].hlen + cases[i].rem;
        int n = mqtt_encode_publish(buf, total, &p);
        assert_int_equal(n, (int)total);
        assert_memory_equal(buf, cases[i].hdr, cases[i].hlen);
        assert_int_equal(mqtt_decode(buf, total, NULL, &pk, NULL), n);
        assert_int_equal(pk.publish.payload.len, cases[i].rem - 3);
        assert_int_equal(mqtt_decode(buf, total - 1, NULL, &pk, NULL), 0);
    }
    free(payload);
    free(buf);

    /* The protocol maximum, as a size query (the payload is never read). */
    struct mqtt_publish p = {.topic = {"t", 1},
                             .payload = {(const uint8_t *)"", MQTT_MAX_REMAINING - 3}};
    assert_int_equal(mqtt_encode_publish(NULL, 0, &p), (int)(MQTT_MAX_REMAINING + 5));
    p.payload.len++;
    assert_int_equal(mqtt_encode_publish(NULL, 0, &p), -EMSGSIZE);
    p.payload.len = SIZE_MAX;
    assert_int_equal(mqtt_encode_publish(NULL, 0, &p), -EMSGSIZE);
}

/* --- streams ---------------------------------------------------------------- */

static void test_back_to_back(void **state)
{
    uint8_t stream[256];
    size_t n = 0, off = 0;
    struct mqtt_packet pk;
    (void)state;

    memcpy(stream + n, connect_dev1, sizeof connect_dev1);
    n += sizeof connect_dev1;
    memcpy(stream + n, subscribe_2, sizeof subscribe_2);
    n += sizeof subscribe_2;
    memcpy(stream + n, publish_q1, sizeof publish_q1);
    n += sizeof publish_q1;
    stream[n++] = 0xc0;
    stream[n++] = 0x00;

    static const enum mqtt_type want[] = {MQTT_CONNECT, MQTT_SUBSCRIBE, MQTT_PUBLISH, MQTT_PINGREQ};
    for (size_t i = 0; i < 4; i++) {
        int rc = mqtt_decode(stream + off, n - off, &lim, &pk, NULL);
        assert_true(rc > 0);
        assert_int_equal(pk.type, want[i]);
        if (pk.type == MQTT_PUBLISH) {
            assert_str(pk.publish.topic, "a/b");
            assert_ptr_equal(pk.publish.topic.ptr, (const char *)stream + off + 4);
        }
        off += (size_t)rc;
    }
    assert_int_equal(off, n);
    assert_int_equal(mqtt_decode(stream + off, 0, &lim, &pk, NULL), 0);

    /* A good packet followed by garbage: the first still decodes, the garbage
     * is refused on its own. */
    static const uint8_t tail[] = {0xc0, 0x00, 0xff, 0x00};
    assert_int_equal(mqtt_decode(ARR(tail), &lim, &pk, NULL), 2);
    assert_int_equal(mqtt_decode(tail + 2, 2, &lim, &pk, NULL), -EPROTO);
}

/* A larger packet, one byte at a time, and a short-read pattern. */
static void test_incremental_large(void **state)
{
    uint8_t payload[300], buf[400];
    struct mqtt_publish p = {
        .qos = 1, .packet_id = 9, .topic = {"cls/SB-1/control", 16}, .payload = {payload, 300}};
    struct mqtt_packet pk;
    (void)state;

    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)i;
    int n = mqtt_encode_publish(buf, sizeof buf, &p);
    assert_int_equal(n, 3 + 2 + 16 + 2 + 300);
    for (int i = 0; i < n; i++) {
        uint8_t *b = copy(buf, (size_t)i);
        assert_int_equal(mqtt_decode(b, (size_t)i, &lim, &pk, NULL), 0);
        free(b);
    }
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, NULL), n);
    assert_bin(pk.publish.payload, payload, 300);
}

/* --- limits ----------------------------------------------------------------- */

static void test_limits(void **state)
{
    char s[80];
    uint8_t buf[512];
    struct mqtt_packet pk;
    const char *why = NULL;
    int n;
    (void)state;
    memset(s, 'x', sizeof s);

    /* Client id: 23 bytes pass, 24 do not. */
    struct mqtt_connect c = {.clean_session = 1, .client_id = {s, 23}};
    n = mqtt_encode_connect(buf, sizeof buf, &c);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, &why), n);
    c.client_id.len = 24;
    n = mqtt_encode_connect(buf, sizeof buf, &c);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, &why), -EMSGSIZE);
    assert_non_null(strstr(why, "client identifier"));
    assert_int_equal(mqtt_decode(buf, (size_t)n, NULL, &pk, &why), n);

    /* Topic: 64 bytes pass, 65 do not, in PUBLISH, will, (UN)SUBSCRIBE. */
    struct mqtt_publish p = {.topic = {s, 64}};
    n = mqtt_encode_publish(buf, sizeof buf, &p);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, &why), n);
    p.topic.len = 65;
    n = mqtt_encode_publish(buf, sizeof buf, &p);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, &why), -EMSGSIZE);
    assert_non_null(strstr(why, "topic name longer"));

    c.client_id.len = 1;
    c.will = 1;
    c.will_topic = (struct mqtt_str){s, 65};
    n = mqtt_encode_connect(buf, sizeof buf, &c);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, &why), -EMSGSIZE);
    c.will_topic.len = 64;
    n = mqtt_encode_connect(buf, sizeof buf, &c);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, &why), n);

    struct mqtt_subscribe sub = {.packet_id = 1, .count = 1, .filters = {{s, 65}}};
    n = mqtt_encode_subscribe(buf, sizeof buf, &sub);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, &why), -EMSGSIZE);
    assert_non_null(strstr(why, "topic filter longer"));
    n = mqtt_encode_unsubscribe(buf, sizeof buf, &sub);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, &why), -EMSGSIZE);
    sub.filters[0].len = 64;
    n = mqtt_encode_unsubscribe(buf, sizeof buf, &sub);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, &why), n);

    /* Filters: the limit, and MQTT_MAX_FILTERS above any larger limit. */
    struct mqtt_limits l = lim;
    sub.count = MQTT_MAX_FILTERS;
    for (size_t i = 0; i < MQTT_MAX_FILTERS; i++)
        sub.filters[i] = (struct mqtt_str){s, 1};
    n = mqtt_encode_subscribe(buf, sizeof buf, &sub);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, &why), -EMSGSIZE);
    l.max_filters = 100;
    assert_int_equal(mqtt_decode(buf, (size_t)n, &l, &pk, &why), n);
    assert_int_equal(pk.subscribe.count, MQTT_MAX_FILTERS);
    assert_int_equal(mqtt_decode(buf, (size_t)n, NULL, &pk, &why), n);
    /* Seventeen filters by hand: one more than the struct holds. */
    buf[1] = (uint8_t)(buf[1] + 4);
    memcpy(buf + n, "\x00\x01x\x00", 4);
    assert_int_equal(mqtt_decode(buf, (size_t)n + 4, &l, &pk, &why), -EMSGSIZE);
    assert_int_equal(mqtt_decode(buf, (size_t)n + 4, NULL, &pk, &why), -EMSGSIZE);

    /* SUBACK codes follow the same limit. */
    struct mqtt_suback sa = {.packet_id = 1, .count = 5};
    n = mqtt_encode_suback(buf, sizeof buf, &sa);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, &why), -EMSGSIZE);
    assert_int_equal(mqtt_decode(buf, (size_t)n, NULL, &pk, &why), n);
}

static void test_why_optional(void **state)
{
    static const uint8_t bad[] = {0xf0, 0x00};
    struct mqtt_packet pk;
    const char *why = "untouched";
    (void)state;
    assert_int_equal(mqtt_decode(ARR(bad), &lim, &pk, NULL), -EPROTO);
    assert_int_equal(mqtt_decode(ARR(publish_q0), &lim, &pk, &why), (int)sizeof publish_q0);
    assert_string_equal(why, "untouched");
    assert_int_equal(mqtt_decode(publish_q0, 3, &lim, &pk, &why), 0);
    assert_string_equal(why, "untouched");
}

/* --- encoders: exact bytes, round trips, errors ----------------------------- */

static void test_encode_connect(void **state)
{
    uint8_t buf[128];
    struct mqtt_packet pk;
    (void)state;

    struct mqtt_connect full = {.clean_session = 1,
                                .keepalive = 300,
                                .client_id = {"c", 1},
                                .will = 1,
                                .will_qos = 1,
                                .will_retain = 1,
                                .will_topic = {"w/t", 3},
                                .will_message = {(const uint8_t *)"bye", 3},
                                .has_username = 1,
                                .username = {"u", 1},
                                .has_password = 1,
                                .password = {(const uint8_t *)"\x00\xff", 2}};
    int n = mqtt_encode_connect(buf, sizeof buf, &full);
    assert_int_equal(n, (int)sizeof connect_full);
    assert_memory_equal(buf, connect_full, sizeof connect_full);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, NULL), n);
    assert_int_equal(pk.connect.will_qos, 1);
    assert_str(pk.connect.will_topic, "w/t");

    struct mqtt_connect dev1 = {.clean_session = 1, .keepalive = 60, .client_id = {"dev1", 4}};
    n = mqtt_encode_connect(buf, sizeof buf, &dev1);
    assert_int_equal(n, (int)sizeof connect_dev1);
    assert_memory_equal(buf, connect_dev1, sizeof connect_dev1);

    /* Will fields are ignored without the will flag; a will of QoS 2 and an
     * empty message round-trips. */
    struct mqtt_connect c = {.client_id = {"id", 2}, .will_qos = 2, .will_retain = 1};
    n = mqtt_encode_connect(buf, sizeof buf, &c);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, NULL), n);
    assert_false(pk.connect.will);
    assert_int_equal(pk.connect.will_qos, 0);
    c.will = 1;
    c.will_topic = (struct mqtt_str){"t", 1};
    n = mqtt_encode_connect(buf, sizeof buf, &c);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, NULL), n);
    assert_true(pk.connect.will);
    assert_int_equal(pk.connect.will_qos, 2);
    assert_true(pk.connect.will_retain);
    assert_int_equal(pk.connect.will_message.len, 0);
    assert_false(pk.connect.clean_session);

    /* Errors. */
    struct mqtt_connect e = c;
    e.will_qos = 3;
    assert_int_equal(mqtt_encode_connect(buf, sizeof buf, &e), -EINVAL);
    e = c;
    e.will_topic = (struct mqtt_str){"a/+", 3};
    assert_int_equal(mqtt_encode_connect(buf, sizeof buf, &e), -EINVAL);
    e.will_topic = (struct mqtt_str){"", 0};
    assert_int_equal(mqtt_encode_connect(buf, sizeof buf, &e), -EINVAL);
    e = c;
    e.has_password = 1;
    e.password = (struct mqtt_bin){(const uint8_t *)"p", 1};
    assert_int_equal(mqtt_encode_connect(buf, sizeof buf, &e), -EINVAL);
    e = c;
    e.client_id = (struct mqtt_str){"a\0b", 3};
    assert_int_equal(mqtt_encode_connect(buf, sizeof buf, &e), -EINVAL);
    e = c;
    e.has_username = 1;
    e.username = (struct mqtt_str){"\xff", 1};
    assert_int_equal(mqtt_encode_connect(buf, sizeof buf, &e), -EINVAL);
    e = c;
    e.will_message = (struct mqtt_bin){NULL, 1};
    assert_int_equal(mqtt_encode_connect(buf, sizeof buf, &e), -EINVAL);
}

static void test_encode_publish(void **state)
{
    uint8_t buf[64];
    struct mqtt_packet pk;
    (void)state;

    struct mqtt_publish q1 = {.dup = 1,
                              .qos = 1,
                              .retain = 1,
                              .topic = {"a/b", 3},
                              .packet_id = 0x1234,
                              .payload = {(const uint8_t *)"hi", 2}};
    int n = mqtt_encode_publish(buf, sizeof buf, &q1);
    assert_int_equal(n, (int)sizeof publish_q1);
    assert_memory_equal(buf, publish_q1, sizeof publish_q1);

    struct mqtt_publish q0 = {
        .topic = {"a/b", 3}, .packet_id = 77, .payload = {(const uint8_t *)"hi", 2}};
    n = mqtt_encode_publish(buf, sizeof buf, &q0);
    assert_int_equal(n, (int)sizeof publish_q0); /* the id is ignored at QoS 0 */
    assert_memory_equal(buf, publish_q0, sizeof publish_q0);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, NULL), n);
    assert_int_equal(pk.publish.packet_id, 0);

    struct mqtt_publish empty = {.qos = 1, .packet_id = 1, .topic = {"t", 1}};
    n = mqtt_encode_publish(buf, sizeof buf, &empty);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, NULL), n);
    assert_int_equal(pk.publish.payload.len, 0);
    assert_int_equal(pk.publish.packet_id, 1);

    struct mqtt_publish e = q1;
    e.qos = 2;
    assert_int_equal(mqtt_encode_publish(buf, sizeof buf, &e), -EINVAL);
    e = q1;
    e.packet_id = 0;
    assert_int_equal(mqtt_encode_publish(buf, sizeof buf, &e), -EINVAL);
    e = q0;
    e.dup = 1;
    assert_int_equal(mqtt_encode_publish(buf, sizeof buf, &e), -EINVAL);
    e = q0;
    e.topic = (struct mqtt_str){"a/#", 3};
    assert_int_equal(mqtt_encode_publish(buf, sizeof buf, &e), -EINVAL);
    e.topic = (struct mqtt_str){"", 0};
    assert_int_equal(mqtt_encode_publish(buf, sizeof buf, &e), -EINVAL);
    e.topic = (struct mqtt_str){NULL, 0};
    assert_int_equal(mqtt_encode_publish(buf, sizeof buf, &e), -EINVAL);
    e = q0;
    e.payload = (struct mqtt_bin){NULL, 5};
    assert_int_equal(mqtt_encode_publish(buf, sizeof buf, &e), -EINVAL);
}

static void test_encode_subscriptions(void **state)
{
    uint8_t buf[128];
    struct mqtt_packet pk;
    (void)state;

    struct mqtt_subscribe s = {
        .packet_id = 1, .count = 2, .filters = {{"a/+", 3}, {"#", 1}}, .qos = {1, 0}};
    int n = mqtt_encode_subscribe(buf, sizeof buf, &s);
    assert_int_equal(n, (int)sizeof subscribe_2);
    assert_memory_equal(buf, subscribe_2, sizeof subscribe_2);

    struct mqtt_subscribe u = {.packet_id = 7, .count = 2, .filters = {{"a/#", 3}, {"b", 1}}};
    u.qos[0] = 2; /* ignored */
    n = mqtt_encode_unsubscribe(buf, sizeof buf, &u);
    assert_int_equal(n, (int)sizeof unsubscribe_2);
    assert_memory_equal(buf, unsubscribe_2, sizeof unsubscribe_2);
    assert_int_equal(mqtt_decode(buf, (size_t)n, &lim, &pk, NULL), n);
    assert_int_equal(pk.unsubscribe.count, 2);

    struct mqtt_suback sa = {.packet_id = 1, .count = 3, .codes = {1, 2, 0x80}};
    n = mqtt_encode_suback(buf, sizeof buf, &sa);
    assert_int_equal(n, (int)sizeof suback_3);
    assert_memory_equal(buf, suback_3, sizeof suback_3);

    /* Full round trip of the largest SUBSCRIBE. */
    static const char *const f[] = {"a", "+", "#", "a/+/b", "/", "+/#", "$SYS/x", "c/\xc3\xbc",
                                    "1", "2", "3", "4",     "5", "6",   "7",      "8"};
    struct mqtt_subscribe big = {.packet_id = 0xffff, .count = MQTT_MAX_FILTERS};
    for (size_t i = 0; i < MQTT_MAX_FILTERS; i++) {
        big.filters[i] = (struct mqtt_str){f[i], strlen(f[i])};
        big.qos[i] = (uint8_t)(i % 3);
    }
    n = mqtt_encode_subscribe(buf, sizeof buf, &big);
    assert_true(n > 0);
    assert_int_equal(mqtt_decode(buf, (size_t)n, NULL, &pk, NULL), n);
    assert_int_equal(pk.subscribe.packet_id, 0xffff);
    assert_int_equal(pk.subscribe.count, MQTT_MAX_FILTERS);
    for (size_t i = 0; i < MQTT_MAX_FILTERS; i++) {
        assert_str(pk.subscribe.filters[i], f[i]);
        assert_int_equal(pk.subscribe.qos[i], i % 3);
    }

    /* Errors. */
    struct mqtt_subscribe e = s;
    e.packet_id = 0;
    assert_int_equal(mqtt_encode_subscribe(buf, sizeof buf, &e), -EINVAL);
    assert_int_equal(mqtt_encode_unsubscribe(buf, sizeof buf, &e), -EINVAL);
    e = s;
    e.count = 0;
    assert_int_equal(mqtt_encode_subscribe(buf, sizeof buf, &e), -EINVAL);
    e.count = MQTT_MAX_FILTERS + 1;
    assert_int_equal(mqtt_encode_subscribe(buf, sizeof buf, &e), -EINVAL);
    e = s;
    e.qos[1] = 3;
    assert_int_equal(mqtt_encode_subscribe(buf, sizeof buf, &e), -EINVAL);
    assert_true(mqtt_encode_unsubscribe(buf, sizeof buf, &e) > 0);
    e = s;
    e.filters[1] = (struct mqtt_str){"a#", 2};
    assert_int_equal(mqtt_encode_subscribe(buf, sizeof buf, &e), -EINVAL);
    assert_int_equal(mqtt_encode_unsubscribe(buf, sizeof buf, &e), -EINVAL);
    struct mqtt_suback se = sa;
    se.codes[2] = 0x81;
    assert_int_equal(mqtt_encode_suback(buf, sizeof buf, &se), -EINVAL);
    se = sa;
    se.packet_id = 0;
    assert_int_equal(mqtt_encode_suback(buf, sizeof buf, &se), -EINVAL);
    se = sa;
    se.count = 0;
    assert_int_equal(mqtt_encode_suback(buf, sizeof buf, &se), -EINVAL);
}

static void test_encode_small(void **state)
{
    uint8_t buf[8];
    struct mqtt_packet pk;
    (void)state;

    assert_int_equal(mqtt_encode_connack(buf, sizeof buf, 1, 0), 4);
    assert_memory_equal(buf, "\x20\x02\x01\x00", 4);
    assert_int_equal(mqtt_decode(buf, 4, &lim, &pk, NULL), 4);
    assert_true(pk.connack.session_present);
    assert_int_equal(mqtt_encode_connack(buf, sizeof buf, 0, MQTT_CONNACK_BAD_PROTOCOL), 4);
    assert_memory_equal(buf, "\x20\x02\x00\x01", 4);
    assert_int_equal(mqtt_decode(buf, 4, &lim, &pk, NULL), 4);
    assert_int_equal(pk.connack.rc, 1);
    assert_int_equal(mqtt_encode_connack(buf, sizeof buf, 1, 1), -EINVAL);
    assert_int_equal(mqtt_encode_connack(buf, sizeof buf, 0, 6), -EINVAL);

    assert_int_equal(mqtt_encode_puback(buf, sizeof buf, 0xabcd), 4);
    assert_memory_equal(buf, "\x40\x02\xab\xcd", 4);
    assert_int_equal(mqtt_decode(buf, 4, &lim, &pk, NULL), 4);
    assert_int_equal(pk.type, MQTT_PUBACK);
    assert_int_equal(pk.packet_id, 0xabcd);
    assert_int_equal(mqtt_encode_puback(buf, sizeof buf, 0), -EINVAL);

    assert_int_equal(mqtt_encode_unsuback(buf, sizeof buf, 7), 4);
    assert_memory_equal(buf, "\xb0\x02\x00\x07", 4);
    assert_int_equal(mqtt_decode(buf, 4, &lim, &pk, NULL), 4);
    assert_int_equal(pk.type, MQTT_UNSUBACK);
    assert_int_equal(pk.packet_id, 7);
    assert_int_equal(mqtt_encode_unsuback(buf, sizeof buf, 0), -EINVAL);

    int (*const empty[])(uint8_t *, size_t) = {mqtt_encode_pingreq, mqtt_encode_pingresp,
                                               mqtt_encode_disconnect};
    static const uint8_t first[] = {0xc0, 0xd0, 0xe0};
    static const enum mqtt_type types[] = {MQTT_PINGREQ, MQTT_PINGRESP, MQTT_DISCONNECT};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(empty[i](buf, sizeof buf), 2);
        assert_int_equal(buf[0], first[i]);
        assert_int_equal(buf[1], 0);
        assert_int_equal(mqtt_decode(buf, 2, &lim, &pk, NULL), 2);
        assert_int_equal(pk.type, types[i]);
        assert_int_equal(empty[i](buf, 1), -ENOSPC);
        assert_int_equal(empty[i](NULL, 0), 2);
    }
}

/* Every encoder, by number, on one set of arguments. */
static int encode_nth(int k, uint8_t *buf, size_t cap)
{
    static const struct mqtt_connect c = {.client_id = {"dev1", 4},
                                          .will = 1,
                                          .will_topic = {"w", 1},
                                          .has_username = 1,
                                          .username = {"u", 1}};
    static const struct mqtt_publish p = {
        .qos = 1, .packet_id = 3, .topic = {"a/b", 3}, .payload = {(const uint8_t *)"xyz", 3}};
    static const struct mqtt_subscribe s = {
        .packet_id = 1, .count = 2, .filters = {{"a", 1}, {"b/#", 3}}};
    static const struct mqtt_suback sa = {.packet_id = 1, .count = 2, .codes = {0, 0x80}};

    switch (k) {
    case 0:
        return mqtt_encode_connect(buf, cap, &c);
    case 1:
        return mqtt_encode_publish(buf, cap, &p);
    case 2:
        return mqtt_encode_subscribe(buf, cap, &s);
    case 3:
        return mqtt_encode_unsubscribe(buf, cap, &s);
    case 4:
        return mqtt_encode_suback(buf, cap, &sa);
    case 5:
        return mqtt_encode_connack(buf, cap, 0, 0);
    case 6:
        return mqtt_encode_puback(buf, cap, 5);
    case 7:
        return mqtt_encode_unsuback(buf, cap, 5);
    case 8:
        return mqtt_encode_pingreq(buf, cap);
    case 9:
        return mqtt_encode_pingresp(buf, cap);
    default:
        return mqtt_encode_disconnect(buf, cap);
    }
}

/* Every encoder: the size query, -ENOSPC for every short capacity with the
 * buffer untouched, and at the exact size no byte written past the end. */
static void test_encode_nospace(void **state)
{
    uint8_t buf[64];
    struct mqtt_packet pk;
    (void)state;

    for (int k = 0; k <= 10; k++) {
        int need = encode_nth(k, NULL, 0);
        assert_true(need >= 2 && (size_t)need < sizeof buf);
        for (size_t cap = 0; cap < (size_t)need; cap++) {
            memset(buf, 0xaa, sizeof buf);
            assert_int_equal(encode_nth(k, buf, cap), -ENOSPC);
            for (size_t i = 0; i < sizeof buf; i++)
                assert_int_equal(buf[i], 0xaa);
        }
        memset(buf, 0xaa, sizeof buf);
        assert_int_equal(encode_nth(k, buf, (size_t)need), need);
        assert_int_equal(buf[need], 0xaa);
        assert_int_equal(mqtt_decode(buf, (size_t)need, NULL, &pk, NULL), need);
        assert_int_equal(encode_nth(k, buf, sizeof buf), need);
    }
}

/* --- validators and names --------------------------------------------------- */

static void test_utf8(void **state)
{
    static const struct {
        const char *s;
        size_t len;
        int ok;
    } cases[] = {
        {"", 0, 1},
        {"abc", 3, 1},
        {"\xc3\xbc", 2, 1},         /* U+00FC */
        {"\xe2\x82\xac", 3, 1},     /* U+20AC */
        {"\xf0\x9d\x84\x9e", 4, 1}, /* U+1D11E */
        {"\xf4\x8f\xbf\xbf", 4, 1}, /* U+10FFFF */
        {"\xef\xbb\xbf", 3, 1},     /* U+FEFF is kept, not stripped (MQTT-1.5.3-3) */
        {"\x01\x1f\x7f", 3, 1},     /* control characters: SHOULD NOT, accepted */
        {"\xc2\x80", 2, 1},         /* U+0080 */
        {"\xef\xbf\xbf", 3, 1},     /* U+FFFF, a non-character: accepted */
        {"\xed\x9f\xbf", 3, 1},     /* U+D7FF */
        {"\xee\x80\x80", 3, 1},     /* U+E000 */
        {"\x00", 1, 0},             /* MQTT-1.5.3-2 */
        {"a\x00z", 3, 0},
        {"\x80", 1, 0},
        {"\xbf", 1, 0},
        {"\xc0\x80", 2, 0}, /* overlong U+0000 */
        {"\xc1\xbf", 2, 0},
        {"\xe0\x80\x80", 3, 0},
        {"\xe0\x9f\xbf", 3, 0},
        {"\xed\xa0\x80", 3, 0}, /* U+D800, MQTT-1.5.3-1 */
        {"\xed\xbf\xbf", 3, 0}, /* U+DFFF */
        {"\xf0\x8f\xbf\xbf", 4, 0},
        {"\xf4\x90\x80\x80", 4, 0}, /* U+110000 */
        {"\xf5\x80\x80\x80", 4, 0},
        {"\xf8\x88\x80\x80\x80", 5, 0},
        {"\xff", 1, 0},
        {"\xfe", 1, 0},
        {"\xc3", 1, 0},
        {"\xe2\x82", 2, 0},
        {"\xf0\x9d\x84", 3, 0},
        {"\xc3\x28", 2, 0},
        {"\xe2\x28\xac", 3, 0},
        {"\xe2\x82\x28", 3, 0},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (mqtt_utf8_valid(cases[i].s, cases[i].len) != cases[i].ok)
            fail_msg("utf8 case %zu: expected %d", i, cases[i].ok);
    assert_true(mqtt_utf8_valid(NULL, 0));
    assert_false(mqtt_utf8_valid(NULL, 1));

    char *big = malloc(65536);
    assert_non_null(big);
    memset(big, 'a', 65536);
    assert_true(mqtt_utf8_valid(big, 65535));
    assert_false(mqtt_utf8_valid(big, 65536));
    free(big);
}

static void test_topic_filter(void **state)
{
    static const struct {
        const char *s;
        int topic, filter;
    } cases[] = {
        {"a", 1, 1},      {"a/b/c", 1, 1},        {"/", 1, 1},    {"a//b", 1, 1},
        {"$SYS/x", 1, 1}, {"cls/SB-1/ack", 1, 1}, {" ", 1, 1},    {"+", 0, 1},
        {"#", 0, 1},      {"a/+", 0, 1},          {"+/a", 0, 1},  {"a/+/b", 0, 1},
        {"a/#", 0, 1},    {"+/+", 0, 1},          {"/#", 0, 1},   {"+/#", 0, 1},
        {"", 0, 0},       {"a+", 0, 0},           {"+a", 0, 0},   {"a/b+", 0, 0},
        {"a#", 0, 0},     {"#/a", 0, 0},          {"a/#/", 0, 0}, {"##", 0, 0},
        {"++", 0, 0},     {"a/+b/c", 0, 0},       {"\xff", 0, 0}, {"\xc3\xbc/+", 0, 1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].s);
        if (mqtt_topic_valid(cases[i].s, n) != cases[i].topic)
            fail_msg("topic \"%s\": expected %d", cases[i].s, cases[i].topic);
        if (mqtt_filter_valid(cases[i].s, n) != cases[i].filter)
            fail_msg("filter \"%s\": expected %d", cases[i].s, cases[i].filter);
    }
    assert_false(mqtt_topic_valid("a\0b", 3));
    assert_false(mqtt_filter_valid("a\0b", 3));
    assert_false(mqtt_topic_valid(NULL, 0));
}

static void test_type_names(void **state)
{
    static const char *const names[] = {"RESERVED",  "CONNECT",  "CONNACK",     "PUBLISH",
                                        "PUBACK",    "PUBREC",   "PUBREL",      "PUBCOMP",
                                        "SUBSCRIBE", "SUBACK",   "UNSUBSCRIBE", "UNSUBACK",
                                        "PINGREQ",   "PINGRESP", "DISCONNECT",  "RESERVED"};
    (void)state;
    for (int t = 0; t < 16; t++)
        assert_string_equal(mqtt_type_name(t), names[t]);
    assert_string_equal(mqtt_type_name(-1), "RESERVED");
    assert_string_equal(mqtt_type_name(16), "RESERVED");
    assert_string_equal(mqtt_type_name(1000), "RESERVED");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_table),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_invalid_table),
        cmocka_unit_test(test_connect_fields),
        cmocka_unit_test(test_connect_bad_protocol),
        cmocka_unit_test(test_publish_fields),
        cmocka_unit_test(test_other_fields),
        cmocka_unit_test(test_varint_five_bytes),
        cmocka_unit_test(test_early_emsgsize),
        cmocka_unit_test(test_varint_boundaries),
        cmocka_unit_test(test_back_to_back),
        cmocka_unit_test(test_incremental_large),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_why_optional),
        cmocka_unit_test(test_encode_connect),
        cmocka_unit_test(test_encode_publish),
        cmocka_unit_test(test_encode_subscriptions),
        cmocka_unit_test(test_encode_small),
        cmocka_unit_test(test_encode_nospace),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_topic_filter),
        cmocka_unit_test(test_type_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
