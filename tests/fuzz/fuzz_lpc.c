/*
 * fuzz_lpc.c - libFuzzer target for the lpc-mqtt decoders. The first byte
 * picks what the rest goes through (byte % 5: 0 control, 1 ack, 2 state,
 * 3 telemetry, 4 topic; the seeds start with 'A'..'E' for these).
 *
 * Invariants checked, aborting on a breach:
 * - a decoder returns 0, -EINVAL or -E2BIG (a control also -ENOTSUP);
 * - a refusal names a reason, and field and reason are printable ASCII;
 * - a refused control keeps either no command id or a valid one, and a
 *   nack built from the refusal encodes and decodes back unchanged;
 * - an accepted message encodes within its payload limit, the encoding
 *   decodes, and encoding again gives the same bytes;
 * - an accepted topic is rebuilt byte for byte.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "driver/lpc_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)  \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

typedef int (*decode_fn)(const char *buf, size_t len, void *out, struct lpc_error *err);
typedef int (*encode_fn)(const void *in, char *buf, size_t len);

static int dec_control(const char *b, size_t n, void *o, struct lpc_error *e)
{
    return lpc_control_decode(b, n, o, e);
}
static int dec_ack(const char *b, size_t n, void *o, struct lpc_error *e)
{
    return lpc_ack_decode(b, n, o, e);
}
static int dec_state(const char *b, size_t n, void *o, struct lpc_error *e)
{
    return lpc_state_decode(b, n, o, e);
}
static int dec_telemetry(const char *b, size_t n, void *o, struct lpc_error *e)
{
    return lpc_telemetry_decode(b, n, o, e);
}
static int enc_control(const void *i, char *b, size_t n)
{
    return lpc_control_encode(i, b, n);
}
static int enc_ack(const void *i, char *b, size_t n)
{
    return lpc_ack_encode(i, b, n);
}
static int enc_state(const void *i, char *b, size_t n)
{
    return lpc_state_encode(i, b, n);
}
static int enc_telemetry(const void *i, char *b, size_t n)
{
    return lpc_telemetry_encode(i, b, n);
}

static const struct codec {
    decode_fn dec;
    encode_fn enc;
    size_t max;
} codecs[] = {
    {dec_control, enc_control, LPC_MAX_CONTROL},
    {dec_ack, enc_ack, LPC_MAX_REPORT},
    {dec_state, enc_state, LPC_MAX_REPORT},
    {dec_telemetry, enc_telemetry, LPC_MAX_REPORT},
};

static int is_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* The device's answer to a refused control must itself be a valid ack. */
static void check_nack(const struct lpc_control *c, int rc, const struct lpc_error *err)
{
    static char buf[1024];
    struct lpc_ack a, back;
    struct lpc_error e2;
    int n;

    CHECK(c->cmd[0] == '\0' || lpc_cmd_id_valid(c->cmd));
    CHECK(rc != -ENOTSUP || c->cmd[0] != '\0');
    lpc_ack_nack(&a, c->cmd, rc == -ENOTSUP ? LPC_ERR_UNSUPPORTED : LPC_ERR_PROTOCOL, err, NULL);
    n = lpc_ack_encode(&a, buf, sizeof buf);
    CHECK(n > 0);
    CHECK(lpc_ack_decode(buf, (size_t)n, &back, &e2) == 0);
    CHECK(!back.ok && back.error == a.error);
    CHECK(strcmp(back.cmd, a.cmd) == 0 && strcmp(back.reason, a.reason) == 0);
}

static void check_message(int kind, const char *buf, size_t len)
{
    static struct lpc_control c1, c2; /* the largest struct; the others fit */
    static char t1[LPC_MAX_CONTROL + 1], t2[LPC_MAX_CONTROL + 1];
    const struct codec *k = &codecs[kind];
    struct lpc_error err;
    int rc, n1, n2;

    memset(&err, 0, sizeof err);
    rc = k->dec(buf, len, &c1, &err);
    if (rc != 0) {
        CHECK(rc == -EINVAL || rc == -E2BIG || (kind == 0 && rc == -ENOTSUP));
        CHECK(err.reason[0] != '\0');
        CHECK(is_printable(err.field) && is_printable(err.reason));
        if (kind == 0)
            check_nack(&c1, rc, &err);
        return;
    }
    n1 = k->enc(&c1, t1, sizeof t1);
    CHECK(n1 > 0 && (size_t)n1 <= k->max);
    CHECK(k->dec(t1, (size_t)n1, &c2, &err) == 0);
    n2 = k->enc(&c2, t2, sizeof t2);
    CHECK(n1 == n2 && memcmp(t1, t2, (size_t)n1) == 0);
}

static void check_topic(const char *buf, size_t len)
{
    char id[LPC_DEVICE_ID_MAX + 1], out[LPC_TOPIC_MAX];
    enum lpc_topic kind;
    int n;

    if (lpc_topic_parse(buf, len, id, &kind) != 0)
        return;
    CHECK(lpc_device_id_valid(id));
    n = lpc_topic_build(id, kind, out, sizeof out);
    CHECK(n > 0 && (size_t)n == len && memcmp(out, buf, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int kind;

    if (size == 0)
        return 0;
    kind = data[0] % 5;
    if (kind == 4)
        check_topic((const char *)data + 1, size - 1);
    else
        check_message(kind, (const char *)data + 1, size - 1);
    return 0;
}
