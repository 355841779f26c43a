/*
 * test_wakeup.c - the wake-up datagram: codec, signatures, the checks of
 * wakeup_accept() in their order, and the replay cache. Keys are generated at
 * run time; the signature tests run once per curve.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "common/wakeup.h"

#define SMGW "EABC0012345678"
#define GWA  "gwa-1.example:de"
#define T0   INT64_C(1790000000000) /* a Unix time in milliseconds, 2026 */
#define W    WAKEUP_WINDOW_MS

/* --- fixtures --- */

struct fx {
    const char *curve;
    EVP_PKEY *key;     /* the GWA's key */
    EVP_PKEY *other;   /* another key on the same curve */
    EVP_PKEY *foreign; /* a key on the other curve */
};

static EVP_PKEY *ec_key(const char *curve)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    assert_non_null(k);
    return k;
}

static int setup_curve(void **state, const char *curve, const char *foreign)
{
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    f->curve = curve;
    f->key = ec_key(curve);
    f->other = ec_key(curve);
    f->foreign = ec_key(foreign);
    *state = f;
    return 0;
}

static int setup_brainpool(void **state)
{
    return setup_curve(state, "brainpoolP256r1", "prime256v1");
}

static int setup_p256(void **state)
{
    return setup_curve(state, "prime256v1", "brainpoolP256r1");
}

static int teardown_curve(void **state)
{
    struct fx *f = *state;
    EVP_PKEY_free(f->key);
    EVP_PKEY_free(f->other);
    EVP_PKEY_free(f->foreign);
    free(f);
    return 0;
}

/* A message with a deterministic nonce derived from 'seed' (never zero). */
static void msg(struct wakeup *w, const char *smgw, const char *gwa, int64_t ts, unsigned seed)
{
    memset(w, 0, sizeof *w);
    strncpy(w->smgw_id, smgw, sizeof w->smgw_id - 1);
    strncpy(w->gwa_id, gwa, sizeof w->gwa_id - 1);
    w->ts_ms = ts;
    for (int i = 0; i < WAKEUP_NONCE_LEN; i++)
        w->nonce[i] = (uint8_t)(seed >> (8 * (i % 4)) ^ (unsigned)(i * 37 + 1));
}

static size_t encode(const struct wakeup *w, EVP_PKEY *key, uint8_t *buf)
{
    int n = wakeup_encode(w, key, buf, WAKEUP_MAX_LEN);
    assert_true(n > 0);
    return (size_t)n;
}

/* The receiver: one SMGW, one GWA with one key, and a replay cache. */
struct rx {
    const char *smgw;
    const char *gwa;
    EVP_PKEY *key;
    int key_lookups;
    struct wakeup_checks checks;
};

static int rx_smgw_ours(void *arg, const char *smgw_id)
{
    const struct rx *r = arg;
    return strcmp(smgw_id, r->smgw) == 0;
}

static EVP_PKEY *rx_gwa_key(void *arg, const char *gwa_id)
{
    struct rx *r = arg;
    r->key_lookups++;
    return strcmp(gwa_id, r->gwa) == 0 ? r->key : NULL;
}

static void rx_init(struct rx *r, EVP_PKEY *key, size_t capacity)
{
    memset(r, 0, sizeof *r);
    r->smgw = SMGW;
    r->gwa = GWA;
    r->key = key;
    r->checks.smgw_ours = rx_smgw_ours;
    r->checks.gwa_key = rx_gwa_key;
    r->checks.arg = r;
    r->checks.nonces = wakeup_nonces_new(capacity, W);
    assert_non_null(r->checks.nonces);
}

static int accept_at(struct rx *r, const uint8_t *buf, size_t n, int64_t now, const char **why)
{
    struct wakeup out;
    return wakeup_accept(&r->checks, buf, n, now, &out, why);
}

/* --- round trip --- */

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    struct wakeup w, d, e;
    uint8_t buf[WAKEUP_MAX_LEN], buf2[WAKEUP_MAX_LEN];
    const char *why = "unset";
    struct rx r;

    msg(&w, SMGW, GWA, T0, 1);
    size_t n = encode(&w, f->key, buf);
    assert_int_equal(wakeup_decode(buf, n, &d, &why), 0);
    assert_null(why);
    assert_string_equal(d.smgw_id, SMGW);
    assert_string_equal(d.gwa_id, GWA);
    assert_true(d.ts_ms == T0);
    assert_memory_equal(d.nonce, w.nonce, WAKEUP_NONCE_LEN);
    assert_int_equal(d.signed_len, WAKEUP_FIXED_LEN - 2 + strlen(GWA));
    assert_int_equal(n, WAKEUP_FIXED_LEN + strlen(GWA) + d.sig_len);
    assert_true(d.sig_len >= 8 && d.sig_len <= 72); /* 256-bit curve */
    assert_memory_equal(buf, "CLWU\x01" SMGW, 19);
    assert_int_equal(wakeup_verify_signature(buf, n, &d, f->key), 0);

    rx_init(&r, f->key, 16);
    assert_int_equal(wakeup_accept(&r.checks, buf, n, T0, &e, &why), 0);
    assert_null(why);
    assert_string_equal(e.smgw_id, SMGW);
    assert_memory_equal(e.nonce, w.nonce, WAKEUP_NONCE_LEN);
    assert_int_equal(wakeup_nonces_count(r.checks.nonces), 1);

    /* A zero nonce asks for a random one, different each time. */
    memset(w.nonce, 0, sizeof w.nonce);
    size_t n2 = encode(&w, f->key, buf2);
    n = encode(&w, f->key, buf);
    assert_int_equal(wakeup_decode(buf, n, &d, NULL), 0);
    assert_int_equal(wakeup_decode(buf2, n2, &e, NULL), 0);
    assert_memory_not_equal(d.nonce, e.nonce, WAKEUP_NONCE_LEN);
    assert_int_equal(accept_at(&r, buf, n, T0, NULL), 0);
    assert_int_equal(accept_at(&r, buf2, n2, T0, NULL), 0);
    wakeup_nonces_free(r.checks.nonces);
}

/* The longest ids and 384-bit curves still fit the 256-byte limit. */
static void test_largest(void **state)
{
    static const char *curves[] = {"secp384r1", "brainpoolP384r1"};
    char gwa[WAKEUP_GWA_ID_MAX + 1];
    uint8_t buf[WAKEUP_MAX_LEN];
    struct wakeup w, d;
    (void)state;

    memset(gwa, 'g', WAKEUP_GWA_ID_MAX);
    gwa[WAKEUP_GWA_ID_MAX] = '\0';
    for (size_t c = 0; c < 2; c++) {
        EVP_PKEY *k = ec_key(curves[c]);
        msg(&w, SMGW, gwa, INT64_MAX, 7);
        size_t n = encode(&w, k, buf);
        assert_true(n <= WAKEUP_FIXED_LEN + WAKEUP_GWA_ID_MAX + WAKEUP_SIG_MAX);
        assert_int_equal(wakeup_decode(buf, n, &d, NULL), 0);
        assert_string_equal(d.gwa_id, gwa);
        assert_true(d.ts_ms == INT64_MAX);
        assert_int_equal(wakeup_verify_signature(buf, n, &d, k), 0);
        EVP_PKEY_free(k);
    }
}

static void test_encode_rejects(void **state)
{
    static const char *bad_smgw[] = {"",
                                     "EABC001234567",
                                     "FABC0012345678",
                                     "eABC0012345678",
                                     "EAbC0012345678",
                                     "EAB10012345678",
                                     "EABC001234567X"};
    static const char *bad_gwa[] = {"", ".gwa", "-gwa", "gw a", "gw/a", "gw\xc3\xa4"};
    struct fx *f = *state;
    struct wakeup w;
    uint8_t buf[WAKEUP_MAX_LEN], copy[WAKEUP_MAX_LEN];

    for (size_t i = 0; i < sizeof bad_smgw / sizeof *bad_smgw; i++) {
        msg(&w, bad_smgw[i], GWA, T0, 1);
        assert_int_equal(wakeup_encode(&w, f->key, buf, sizeof buf), -EINVAL);
    }
    for (size_t i = 0; i < sizeof bad_gwa / sizeof *bad_gwa; i++) {
        msg(&w, SMGW, bad_gwa[i], T0, 1);
        assert_int_equal(wakeup_encode(&w, f->key, buf, sizeof buf), -EINVAL);
    }
    msg(&w, SMGW, GWA, T0, 1);
    memset(w.gwa_id, 'a', sizeof w.gwa_id); /* no terminating NUL */
    assert_int_equal(wakeup_encode(&w, f->key, buf, sizeof buf), -EINVAL);
    msg(&w, SMGW, GWA, T0, 1);
    w.smgw_id[WAKEUP_SMGW_ID_LEN] = '9'; /* no terminating NUL */
    assert_int_equal(wakeup_encode(&w, f->key, buf, sizeof buf), -EINVAL);
    msg(&w, SMGW, GWA, -1, 1);
    assert_int_equal(wakeup_encode(&w, f->key, buf, sizeof buf), -EINVAL);

    msg(&w, SMGW, GWA, T0, 1);
    assert_int_equal(wakeup_encode(&w, NULL, buf, sizeof buf), -EINVAL);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *p521 = ec_key("secp521r1");
    assert_non_null(ed);
    assert_int_equal(wakeup_encode(&w, ed, buf, sizeof buf), -EINVAL);
    assert_int_equal(wakeup_encode(&w, p521, buf, sizeof buf), -EINVAL);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(p521);

    /* Too small a buffer: refused and left untouched. */
    size_t n = encode(&w, f->key, buf);
    memset(buf, 0xa5, sizeof buf);
    memcpy(copy, buf, sizeof buf);
    assert_int_equal(wakeup_encode(&w, f->key, buf, WAKEUP_FIXED_LEN + strlen(GWA) + 7), -ENOSPC);
    assert_int_equal(wakeup_encode(&w, f->key, buf, 0), -ENOSPC);
    assert_memory_equal(buf, copy, sizeof buf);
    assert_true(n > WAKEUP_FIXED_LEN + strlen(GWA) + 7);

    /* DER signatures on a 256-bit curve take 70-72 bytes, so room for 71
     * sometimes suffices; the datagram never ends beyond the room given.
     * On brainpoolP256r1 a 72-byte signature comes about once in 16, so
     * sign until both outcomes were seen (2,000 tries miss that with a
     * probability below 10^-50). */
    size_t room = WAKEUP_FIXED_LEN + strlen(GWA) + 71;
    int fits = 0, too_big = 0;
    for (int i = 0; i < 2000 && !(fits > 0 && too_big > 0); i++) {
        int rc = wakeup_encode(&w, f->key, buf, room);
        assert_true(rc == -ENOSPC || (rc > 0 && (size_t)rc <= room));
        fits += rc > 0;
        too_big += rc == -ENOSPC;
    }
    assert_true(fits > 0 && too_big > 0);
}

/* --- signatures --- */

/* Every single-bit change is refused: by the parser, or by the signature. */
static void test_every_bit_flip(void **state)
{
    struct fx *f = *state;
    struct wakeup w, d;
    uint8_t buf[WAKEUP_MAX_LEN];
    int parsed = 0;

    msg(&w, SMGW, GWA, T0, 2);
    size_t n = encode(&w, f->key, buf);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            if (wakeup_decode(buf, n, &d, NULL) == 0) {
                parsed++;
                assert_int_equal(wakeup_verify_signature(buf, n, &d, f->key), WAKEUP_EBADSIG);
            }
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* At least every bit of timestamp and nonce reached the verifier. */
    assert_true(parsed >= 8 * (8 + WAKEUP_NONCE_LEN));
    assert_int_equal(wakeup_decode(buf, n, &d, NULL), 0);
    assert_int_equal(wakeup_verify_signature(buf, n, &d, f->key), 0);
}

static void test_bad_signature(void **state)
{
    struct fx *f = *state;
    struct wakeup w, d;
    uint8_t buf[WAKEUP_MAX_LEN];
    const char *why;
    struct rx r;

    rx_init(&r, f->key, 16);
    /* The last byte of s: still well-formed DER, wrong value. */
    msg(&w, SMGW, GWA, T0, 3);
    size_t n = encode(&w, f->key, buf);
    buf[n - 1] ^= 1;
    assert_int_equal(accept_at(&r, buf, n, T0, &why), WAKEUP_EBADSIG);
    assert_string_equal(why, "signature does not verify with the GWA key");
    assert_int_equal(ERR_peek_error(), 0); /* nothing left for unrelated code */
    /* A changed timestamp. */
    buf[n - 1] ^= 1;
    buf[20 + strlen(GWA) + 7] ^= 1; /* the timestamp's last byte */
    assert_int_equal(accept_at(&r, buf, n, T0, &why), WAKEUP_EBADSIG);

    /* r above the group order, s = 1: well-formed DER that the verifier
     * refuses with an OpenSSL error, which must not be left on the queue. */
    buf[20 + strlen(GWA) + 7] ^= 1;
    assert_int_equal(wakeup_decode(buf, n, &d, NULL), 0);
    uint8_t *sig = buf + d.signed_len; /* the length field, then the DER */
    memcpy(sig, (const uint8_t[]){0x00, 40, 0x30, 38, 0x02, 33, 0x00}, 7);
    memset(sig + 7, 0xff, 32);
    memcpy(sig + 39, (const uint8_t[]){0x02, 0x01, 0x01}, 3);
    n = d.signed_len + 2 + 40;
    assert_int_equal(wakeup_decode(buf, n, &d, NULL), 0);
    assert_int_equal(wakeup_verify_signature(buf, n, &d, f->key), WAKEUP_EBADSIG);
    assert_int_equal(ERR_peek_error(), 0);

    /* Signed by another key of the same curve, and by a key of another curve. */
    n = encode(&w, f->other, buf);
    assert_int_equal(accept_at(&r, buf, n, T0, &why), WAKEUP_EBADSIG);
    n = encode(&w, f->foreign, buf);
    assert_int_equal(accept_at(&r, buf, n, T0, &why), WAKEUP_EBADSIG);
    assert_int_equal(wakeup_decode(buf, n, &d, NULL), 0);
    assert_int_equal(wakeup_verify_signature(buf, n, &d, f->key), WAKEUP_EBADSIG);
    assert_int_equal(wakeup_verify_signature(buf, n, &d, f->foreign), 0);

    /* Forgeries never reach the replay cache. */
    assert_int_equal(wakeup_nonces_count(r.checks.nonces), 0);
    n = encode(&w, f->key, buf);
    assert_int_equal(accept_at(&r, buf, n, T0, &why), 0);

    /* A struct that does not describe the buffer, or an unusable key. */
    assert_int_equal(wakeup_decode(buf, n, &d, NULL), 0);
    assert_int_equal(wakeup_verify_signature(buf, n - 1, &d, f->key), -EINVAL);
    assert_int_equal(wakeup_verify_signature(buf, n, &d, NULL), -EINVAL);
    d.sig_len++;
    assert_int_equal(wakeup_verify_signature(buf, n, &d, f->key), -EINVAL);
    wakeup_nonces_free(r.checks.nonces);
}

/* --- wakeup_accept(): codes and order --- */

static void test_accept_codes(void **state)
{
    struct fx *f = *state;
    struct wakeup w;
    uint8_t buf[WAKEUP_MAX_LEN];
    const char *why;
    struct rx r;
    size_t n;

    rx_init(&r, f->key, 16);
    /* Malformed: the parser's reason comes through. */
    msg(&w, SMGW, GWA, T0, 10);
    n = encode(&w, f->key, buf);
    buf[0] = 'X';
    assert_int_equal(accept_at(&r, buf, n, T0, &why), WAKEUP_EMALFORMED);
    assert_string_equal(why, "does not start with CLWU");

    /* Not ours: refused before any key lookup or signature work. */
    msg(&w, "EXYZ0000000001", GWA, T0, 11);
    n = encode(&w, f->key, buf);
    assert_int_equal(accept_at(&r, buf, n, T0, &why), WAKEUP_ENOTOURS);
    assert_string_equal(why, "not addressed to one of our SMGWs");
    assert_int_equal(r.key_lookups, 0);

    /* Unknown GWA, correctly signed by it. */
    msg(&w, SMGW, "gwa-2", T0, 12);
    n = encode(&w, f->key, buf);
    assert_int_equal(accept_at(&r, buf, n, T0, &why), WAKEUP_EUNKNOWNGWA);
    assert_string_equal(why, "unknown GWA");
    assert_int_equal(r.key_lookups, 1);

    /* The GWA's key is not usable for ECDSA. */
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(ed);
    r.key = ed;
    msg(&w, SMGW, GWA, T0, 13);
    n = encode(&w, f->key, buf);
    assert_int_equal(accept_at(&r, buf, n, T0, &why), -EINVAL);
    r.key = f->key;
    EVP_PKEY_free(ed);

    /* Bad arguments. */
    assert_int_equal(accept_at(&r, buf, n, -1, &why), -EINVAL);
    assert_int_equal(wakeup_nonces_count(r.checks.nonces), 0);
    wakeup_nonces_free(r.checks.nonces);
}

static void test_accept_window(void **state)
{
    static const struct {
        int64_t skew_ms; /* ts - now */
        int rc;
        const char *why;
    } cases[] = {
        {-61000, WAKEUP_ETIME, "timestamp too old"},
        {61000, WAKEUP_ETIME, "timestamp in the future"},
        {-60001, WAKEUP_ETIME, "timestamp too old"},
        {60001, WAKEUP_ETIME, "timestamp in the future"},
        {-59000, 0, NULL},
        {59000, 0, NULL},
        {-60000, 0, NULL},
        {60000, 0, NULL},
        {0, 0, NULL},
    };
    struct fx *f = *state;
    struct wakeup w;
    uint8_t buf[WAKEUP_MAX_LEN];
    const char *why;
    struct rx r;

    rx_init(&r, f->key, 16);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int lookups = r.key_lookups;
        msg(&w, SMGW, GWA, T0 + cases[i].skew_ms, 100 + (unsigned)i);
        size_t n = encode(&w, f->key, buf);
        assert_int_equal(accept_at(&r, buf, n, T0, &why), cases[i].rc);
        if (cases[i].why)
            assert_string_equal(why, cases[i].why);
        else
            assert_null(why);
        /* A stale datagram costs no key lookup and no signature check. */
        assert_int_equal(r.key_lookups, lookups + (cases[i].rc == 0));
    }
    assert_int_equal(wakeup_nonces_count(r.checks.nonces), 5);
    wakeup_nonces_free(r.checks.nonces);
}

static void test_accept_replay(void **state)
{
    struct fx *f = *state;
    struct wakeup w;
    uint8_t buf[WAKEUP_MAX_LEN], forged[WAKEUP_MAX_LEN];
    const char *why;
    struct rx r;

    rx_init(&r, f->key, 16);
    msg(&w, SMGW, GWA, T0, 20);
    size_t n = encode(&w, f->key, buf);
    assert_int_equal(accept_at(&r, buf, n, T0, &why), 0);
    assert_int_equal(accept_at(&r, buf, n, T0 + 1, &why), WAKEUP_EREPLAY);
    assert_string_equal(why, "nonce seen before (replay)");
    assert_int_equal(accept_at(&r, buf, n, T0 + W, &why), WAKEUP_EREPLAY);
    /* Once out of the window the same bytes are stale, not replays. */
    assert_int_equal(accept_at(&r, buf, n, T0 + W + 1, &why), WAKEUP_ETIME);
    /* A fresh signature over the same nonce is a replay too. */
    msg(&w, SMGW, GWA, T0 + 5, 20);
    n = encode(&w, f->key, buf);
    assert_int_equal(accept_at(&r, buf, n, T0 + 5, &why), WAKEUP_EREPLAY);
    assert_int_equal(wakeup_nonces_count(r.checks.nonces), 1);

    /* A forgery carrying a nonce does not burn it for the real datagram. */
    msg(&w, SMGW, GWA, T0, 21);
    size_t nf = encode(&w, f->other, forged);
    assert_int_equal(accept_at(&r, forged, nf, T0, &why), WAKEUP_EBADSIG);
    n = encode(&w, f->key, buf);
    assert_int_equal(accept_at(&r, buf, n, T0, &why), 0);
    /* Nor does a stale datagram. */
    msg(&w, SMGW, GWA, T0 - 2 * W, 22);
    n = encode(&w, f->key, buf);
    assert_int_equal(accept_at(&r, buf, n, T0, &why), WAKEUP_ETIME);
    w.ts_ms = T0;
    n = encode(&w, f->key, buf);
    assert_int_equal(accept_at(&r, buf, n, T0, &why), 0);
    assert_int_equal(wakeup_nonces_count(r.checks.nonces), 3);
    wakeup_nonces_free(r.checks.nonces);
}

/* The receiver's clock steps back after the cache forgot a nonce: that
 * datagram is fresh again by the clock, but must still be refused. */
static void test_accept_clock_back(void **state)
{
    struct fx *f = *state;
    uint8_t a[WAKEUP_MAX_LEN], b[WAKEUP_MAX_LEN];
    struct wakeup w;
    const char *why;
    struct rx r;

    rx_init(&r, f->key, 1);
    msg(&w, SMGW, GWA, T0, 40);
    size_t na = encode(&w, f->key, a);
    msg(&w, SMGW, GWA, T0 + W + 1, 41);
    size_t nb = encode(&w, f->key, b);
    assert_int_equal(accept_at(&r, a, na, T0, &why), 0);
    assert_int_equal(accept_at(&r, b, nb, T0 + W + 1, &why), 0); /* a's nonce is gone */
    assert_int_equal(wakeup_nonces_count(r.checks.nonces), 1);
    assert_int_equal(accept_at(&r, a, na, T0 + 10, &why), WAKEUP_ETIME);
    assert_string_equal(why, "timestamp too old for the replay cache (clock stepped back)");
    assert_int_equal(accept_at(&r, b, nb, T0 + 10, &why), WAKEUP_EREPLAY);
    wakeup_nonces_free(r.checks.nonces);
}

static void test_accept_overloaded(void **state)
{
    struct fx *f = *state;
    uint8_t bufs[5][WAKEUP_MAX_LEN];
    size_t lens[5];
    struct wakeup w;
    const char *why;
    struct rx r;

    rx_init(&r, f->key, 4);
    for (unsigned i = 0; i < 5; i++) {
        msg(&w, SMGW, GWA, T0, 30 + i);
        lens[i] = encode(&w, f->key, bufs[i]);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(accept_at(&r, bufs[i], lens[i], T0, &why), 0);
    assert_int_equal(accept_at(&r, bufs[4], lens[4], T0, &why), WAKEUP_EOVERLOAD);
    assert_string_equal(why, "replay cache full of live nonces");
    /* Nothing live was evicted: each earlier datagram is still a replay. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(accept_at(&r, bufs[i], lens[i], T0 + 1000, &why), WAKEUP_EREPLAY);
    assert_int_equal(wakeup_nonces_count(r.checks.nonces), 4);
    /* Once the first four expire there is room again. */
    msg(&w, SMGW, GWA, T0 + W + 1, 34);
    lens[4] = encode(&w, f->key, bufs[4]);
    assert_int_equal(accept_at(&r, bufs[4], lens[4], T0 + W + 1, &why), 0);
    assert_true(wakeup_nonces_count(r.checks.nonces) <= 4);
    wakeup_nonces_free(r.checks.nonces);
}

/* --- the parser, on hand-built datagrams --- */

struct raw {
    const char *magic;
    int version;
    const char *smgw;
    int gwa_len; /* -1: strlen(gwa) */
    const char *gwa;
    uint64_t ts;
    uint8_t nonce[WAKEUP_NONCE_LEN];
    int sig_len_field; /* -1: the real length */
    uint8_t sig[WAKEUP_SIG_MAX + 8];
    size_t sig_n;
};

/* r = 0x11 * 32, s = 0x22 * 32: well-formed DER, not a real signature. */
static void raw_default(struct raw *r)
{
    memset(r, 0, sizeof *r);
    r->magic = "CLWU";
    r->version = 1;
    r->smgw = SMGW;
    r->gwa_len = -1;
    r->gwa = GWA;
    r->ts = (uint64_t)T0;
    memset(r->nonce, 0x5a, sizeof r->nonce);
    r->sig_len_field = -1;
    static const uint8_t head[] = {0x30, 0x44, 0x02, 0x20};
    memcpy(r->sig, head, 4);
    memset(r->sig + 4, 0x11, 32);
    r->sig[36] = 0x02;
    r->sig[37] = 0x20;
    memset(r->sig + 38, 0x22, 32);
    r->sig_n = 70;
}

static size_t raw_build(const struct raw *r, uint8_t *out)
{
    size_t o = 0, glen = r->gwa_len < 0 ? strlen(r->gwa) : (size_t)r->gwa_len;
    size_t sl = r->sig_len_field < 0 ? r->sig_n : (size_t)r->sig_len_field;

    memcpy(out + o, r->magic, 4);
    o += 4;
    out[o++] = (uint8_t)r->version;
    memcpy(out + o, r->smgw, 14);
    o += 14;
    out[o++] = (uint8_t)glen;
    memcpy(out + o, r->gwa, strlen(r->gwa));
    o += strlen(r->gwa);
    for (int i = 7; i >= 0; i--)
        out[o++] = (uint8_t)(r->ts >> (8 * i));
    memcpy(out + o, r->nonce, WAKEUP_NONCE_LEN);
    o += WAKEUP_NONCE_LEN;
    out[o++] = (uint8_t)(sl >> 8);
    out[o++] = (uint8_t)sl;
    memcpy(out + o, r->sig, r->sig_n);
    return o + r->sig_n;
}

static void expect_bad(const struct raw *r, const char *why_expected)
{
    uint8_t buf[512];
    struct wakeup d;
    const char *why = NULL;
    size_t n = raw_build(r, buf);

    assert_int_equal(wakeup_decode(buf, n, &d, &why), WAKEUP_EMALFORMED);
    assert_non_null(why);
    assert_string_equal(why, why_expected);
}

static void test_decode_truncated(void **state)
{
    uint8_t buf[512];
    struct wakeup d;
    const char *why;
    struct raw r;
    (void)state;

    raw_default(&r);
    size_t n = raw_build(&r, buf);
    assert_int_equal(wakeup_decode(buf, n, &d, &why), 0);
    assert_null(why);
    assert_int_equal(d.sig_len, 70);
    for (size_t len = 0; len < n; len++) {
        why = NULL;
        assert_int_equal(wakeup_decode(buf, len, &d, &why), WAKEUP_EMALFORMED);
        assert_non_null(why);
    }
    assert_int_equal(wakeup_decode(buf, 20, &d, &why), WAKEUP_EMALFORMED);
    assert_string_equal(why, "ends inside the GWA id");
    assert_int_equal(wakeup_decode(buf, n - 1, &d, &why), WAKEUP_EMALFORMED);
    assert_string_equal(why, "ends inside the signature");
    assert_int_equal(wakeup_decode(NULL, 0, &d, &why), WAKEUP_EMALFORMED);
    assert_int_equal(wakeup_decode(buf, 0, &d, NULL), WAKEUP_EMALFORMED);

    /* One byte more. */
    buf[n] = 0;
    assert_int_equal(wakeup_decode(buf, n + 1, &d, &why), WAKEUP_EMALFORMED);
    assert_string_equal(why, "bytes after the signature");
    /* Longer than any datagram. */
    memset(buf + n, 0, sizeof buf - n);
    assert_int_equal(wakeup_decode(buf, WAKEUP_MAX_LEN + 1, &d, &why), WAKEUP_EMALFORMED);
    assert_string_equal(why, "longer than 256 bytes");
}

static void test_decode_fields(void **state)
{
    static const char *smgw_bad = "SMGW id is not E + 3 upper-case letters + 10 digits";
    static const char *gwa_bad = "GWA id has a character outside A-Z a-z 0-9 . _ : - or starts "
                                 "with one of . _ : -";
    static const char *bad_smgw[] = {"FABC0012345678", "eABC0012345678", "EAbC0012345678",
                                     "EAB10012345678", "EABC00123456X8", "EABC001234567\0"};
    static const char *bad_gwa[] = {".a", "_a", "a b", "a/b", "a\xff", "a\n"};
    struct raw r;
    (void)state;

    raw_default(&r);
    r.magic = "CLWV";
    expect_bad(&r, "does not start with CLWU");
    raw_default(&r);
    r.version = 0;
    expect_bad(&r, "version is not 1");
    r.version = 2;
    expect_bad(&r, "version is not 1");
    for (size_t i = 0; i < sizeof bad_smgw / sizeof *bad_smgw; i++) {
        raw_default(&r);
        r.smgw = bad_smgw[i];
        expect_bad(&r, smgw_bad);
    }
    raw_default(&r);
    r.gwa_len = 0;
    r.gwa = "";
    expect_bad(&r, "GWA id length is not 1-96");
    char long_gwa[WAKEUP_GWA_ID_MAX + 2];
    memset(long_gwa, 'a', sizeof long_gwa - 1);
    long_gwa[sizeof long_gwa - 1] = '\0';
    r.gwa = long_gwa;
    r.gwa_len = -1;
    expect_bad(&r, "GWA id length is not 1-96");
    for (size_t i = 0; i < sizeof bad_gwa / sizeof *bad_gwa; i++) {
        raw_default(&r);
        r.gwa = bad_gwa[i];
        expect_bad(&r, gwa_bad);
    }
    /* A length byte that disagrees with the id shifts every later field. */
    raw_default(&r);
    r.gwa_len = (int)strlen(GWA) + 1; /* takes the timestamp's first byte, 0x00 */
    expect_bad(&r, gwa_bad);
    r.gwa_len = (int)strlen(GWA) - 1; /* signature length 0x5a00 */
    expect_bad(&r, "signature length is not 8-104");

    raw_default(&r);
    r.ts = (uint64_t)INT64_MAX + 1;
    expect_bad(&r, "timestamp above 2^63 - 1");
    raw_default(&r);
    memset(r.nonce, 0, sizeof r.nonce);
    expect_bad(&r, "nonce is all zero");
    raw_default(&r);
    r.sig_len_field = 7;
    expect_bad(&r, "signature length is not 8-104");
    r.sig_len_field = 105;
    expect_bad(&r, "signature length is not 8-104");
    r.sig_len_field = 69;
    expect_bad(&r, "bytes after the signature");
    r.sig_len_field = 71;
    expect_bad(&r, "ends inside the signature");
}

static void test_decode_der(void **state)
{
    static const char *der_bad = "signature is not a minimal DER ECDSA signature";
    static const struct {
        size_t at;
        uint8_t val;
    } flips[] = {
        {0, 0x31},  /* not a SEQUENCE */
        {1, 0x43},  /* SEQUENCE length disagrees */
        {2, 0x03},  /* r is not an INTEGER */
        {3, 0x21},  /* r overruns into s */
        {4, 0x81},  /* r negative */
        {4, 0x00},  /* r with a needless leading zero (next byte 0x11) */
        {36, 0x04}, /* s is not an INTEGER */
        {37, 0x1f}, /* s ends before the SEQUENCE does */
        {38, 0x80}, /* s negative */
    };
    struct raw r;
    uint8_t buf[512];
    struct wakeup d;
    (void)state;

    for (size_t i = 0; i < sizeof flips / sizeof *flips; i++) {
        raw_default(&r);
        r.sig[flips[i].at] = flips[i].val;
        expect_bad(&r, der_bad);
    }
    /* r = 0: one zero byte. */
    raw_default(&r);
    static const uint8_t zero_r[] = {0x30, 0x25, 0x02, 0x01, 0x00, 0x02, 0x20};
    memcpy(r.sig, zero_r, sizeof zero_r);
    memset(r.sig + 7, 0x22, 32);
    r.sig_n = 39;
    expect_bad(&r, der_bad);
    /* A needed leading zero and the smallest signature are fine. */
    raw_default(&r);
    static const uint8_t small[] = {0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x01};
    memcpy(r.sig, small, sizeof small);
    r.sig_n = sizeof small;
    assert_int_equal(wakeup_decode(buf, raw_build(&r, buf), &d, NULL), 0);
    /* r of 49 bytes (384 bits and a leading zero) fits; 50 bytes do not. */
    static const uint8_t wide[] = {0x30, 0x36, 0x02, 0x31, 0x00};
    memcpy(r.sig, wide, sizeof wide);
    memset(r.sig + 5, 0xcc, 48);
    memcpy(r.sig + 53, (const uint8_t[]){0x02, 0x01, 0x01}, 3);
    r.sig_n = 56;
    assert_int_equal(wakeup_decode(buf, raw_build(&r, buf), &d, NULL), 0);
    r.sig[1] = 0x37;
    r.sig[3] = 0x32;
    r.sig[4] = 0x01;
    r.sig[53] = 0xcc;
    memcpy(r.sig + 54, (const uint8_t[]){0x02, 0x01, 0x01}, 3);
    r.sig_n = 57;
    expect_bad(&r, der_bad);
    /* An INTEGER of length 0. */
    static const uint8_t empty[] = {0x30, 0x07, 0x02, 0x00, 0x02, 0x03, 0x01, 0x01, 0x01};
    memcpy(r.sig, empty, sizeof empty);
    r.sig_n = sizeof empty;
    expect_bad(&r, der_bad);
    /* INTEGER with a long-form length. */
    static const uint8_t longform[] = {0x30, 0x07, 0x02, 0x81, 0x01, 0x01, 0x02, 0x01, 0x01};
    memcpy(r.sig, longform, sizeof longform);
    r.sig_n = sizeof longform;
    expect_bad(&r, der_bad);
    /* Something after the two INTEGERs, inside the SEQUENCE. */
    static const uint8_t extra[] = {0x30, 0x08, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00, 0x00};
    memcpy(r.sig, extra, sizeof extra);
    r.sig_n = sizeof extra;
    expect_bad(&r, der_bad);
}

/* --- the replay cache --- */

static void nonce_of(uint8_t *n, uint64_t i)
{
    memset(n, 0, WAKEUP_NONCE_LEN);
    for (int b = 0; b < 8; b++)
        n[b] = (uint8_t)(i >> (8 * b));
    n[15] = 0xee; /* never all zero */
}

static void test_nonces_basic(void **state)
{
    uint8_t a[WAKEUP_NONCE_LEN], b[WAKEUP_NONCE_LEN];
    (void)state;

    assert_null(wakeup_nonces_new(0, W));
    assert_null(wakeup_nonces_new(((size_t)1 << 26) + 1, W));
    assert_null(wakeup_nonces_new(10, 0));
    assert_null(wakeup_nonces_new(10, 3600001));
    wakeup_nonces_free(NULL);

    struct wakeup_nonces *c = wakeup_nonces_new(10, W);
    assert_non_null(c);
    assert_true(wakeup_nonces_window(c) == W);
    nonce_of(a, 1);
    nonce_of(b, 2);
    assert_int_equal(wakeup_nonces_seen_or_add(c, a, T0, T0), 0);
    assert_int_equal(wakeup_nonces_seen_or_add(c, a, T0, T0), WAKEUP_EREPLAY);
    assert_int_equal(wakeup_nonces_seen_or_add(c, a, T0 - 5, T0 + 7), WAKEUP_EREPLAY);
    assert_int_equal(wakeup_nonces_seen_or_add(c, b, T0 - W - 1, T0), WAKEUP_ETIME);
    assert_int_equal(wakeup_nonces_seen_or_add(c, b, T0 + W + 1, T0), WAKEUP_ETIME);
    assert_int_equal(wakeup_nonces_seen_or_add(c, b, -1, T0), WAKEUP_ETIME);
    assert_int_equal(wakeup_nonces_seen_or_add(c, b, T0, -1), WAKEUP_ETIME);
    assert_int_equal(wakeup_nonces_count(c), 1);
    assert_int_equal(wakeup_nonces_seen_or_add(c, b, T0 + W, T0), 0);
    /* a's datagram (T0) is live until T0 + W; b's until T0 + 2W. */
    assert_int_equal(wakeup_nonces_seen_or_add(c, a, T0 + W + 1, T0 + W + 1), 0);
    assert_int_equal(wakeup_nonces_seen_or_add(c, b, T0 + 2 * W, T0 + 2 * W), WAKEUP_EREPLAY);
    assert_int_equal(wakeup_nonces_count(c), 2);
    /* Extreme times do not overflow. */
    assert_int_equal(wakeup_nonces_seen_or_add(c, b, INT64_MAX, INT64_MAX), 0);
    assert_int_equal(wakeup_nonces_seen_or_add(c, b, INT64_MAX, INT64_MAX), WAKEUP_EREPLAY);
    wakeup_nonces_free(c);
}

/* Far more nonces than capacity over time: old ones make room, the count
 * never passes the capacity, and recent ones are still caught. */
static void test_nonces_bounded(void **state)
{
    const size_t cap = 1000;
    uint8_t n[WAKEUP_NONCE_LEN];
    int64_t now = T0;
    size_t max_count = 0, drops = 0, prev = 0;
    (void)state;

    struct wakeup_nonces *c = wakeup_nonces_new(cap, W);
    assert_non_null(c);
    for (uint64_t i = 0; i < 200 * cap; i++) {
        /* 300 ms apart, stamped up to a window early or late: at most 400
         * live at once. */
        int64_t ts = now + (int64_t)(i % 5) * W / 2 - W;
        nonce_of(n, i);
        assert_int_equal(wakeup_nonces_seen_or_add(c, n, ts, now), 0);
        assert_int_equal(wakeup_nonces_seen_or_add(c, n, ts, now), WAKEUP_EREPLAY);
        if (i >= 100) {
            nonce_of(n, i - 100); /* 30 s ago: live whatever its stamp */
            int64_t old_ts = now - 30000 + (int64_t)((i - 100) % 5) * W / 2 - W;
            if (old_ts >= now - W)
                assert_int_equal(wakeup_nonces_seen_or_add(c, n, old_ts, now), WAKEUP_EREPLAY);
        }
        size_t count = wakeup_nonces_count(c);
        assert_true(count <= cap);
        max_count = count > max_count ? count : max_count;
        drops += count < prev;
        prev = count;
        now += 300;
    }
    assert_int_equal(max_count, cap); /* it filled up with expired entries... */
    assert_true(drops > 0);           /* ...and reclaimed them */
    wakeup_nonces_free(c);
}

static void test_nonces_full(void **state)
{
    uint8_t n[WAKEUP_NONCE_LEN];
    (void)state;

    struct wakeup_nonces *c = wakeup_nonces_new(8, W);
    assert_non_null(c);
    for (uint64_t i = 0; i < 8; i++) {
        nonce_of(n, i);
        assert_int_equal(wakeup_nonces_seen_or_add(c, n, T0 + (int64_t)i, T0), 0);
    }
    nonce_of(n, 8);
    assert_int_equal(wakeup_nonces_seen_or_add(c, n, T0, T0), WAKEUP_EOVERLOAD);
    assert_int_equal(wakeup_nonces_seen_or_add(c, n, T0, T0 + 1), WAKEUP_EOVERLOAD);
    for (uint64_t i = 0; i < 8; i++) {
        nonce_of(n, i);
        assert_int_equal(wakeup_nonces_seen_or_add(c, n, T0, T0 + W), WAKEUP_EREPLAY);
    }
    assert_int_equal(wakeup_nonces_count(c), 8);
    /* The first entry (stamped T0) expires after T0 + W; the rest later. */
    nonce_of(n, 8);
    assert_int_equal(wakeup_nonces_seen_or_add(c, n, T0 + W, T0 + W + 1), 0);
    nonce_of(n, 9);
    assert_int_equal(wakeup_nonces_seen_or_add(c, n, T0 + W, T0 + W + 1), WAKEUP_EOVERLOAD);
    nonce_of(n, 1);
    assert_int_equal(wakeup_nonces_seen_or_add(c, n, T0 + W, T0 + W + 1), WAKEUP_EREPLAY);
    assert_int_equal(wakeup_nonces_count(c), 8);
    wakeup_nonces_free(c);
}

/* Random inserts and replays against a brute-force list of what is live. */
struct model_entry {
    uint64_t id;
    int64_t at, ts, expiry; /* inserted at 'at'; expiry <= at + 2 window */
};

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int model_live(const struct model_entry *m, size_t nm, uint64_t id, int64_t now, int64_t win)
{
    for (size_t i = nm; i-- > 0 && m[i].at >= now - 2 * win;)
        if (m[i].id == id && m[i].expiry >= now)
            return 1;
    return 0;
}

static void test_nonces_model(void **state)
{
    enum { OPS = 30000, HIST = 64 };
    const int64_t win = 1000;
    struct model_entry *m = calloc(OPS, sizeof *m);
    uint64_t rng = 0x9e3779b97f4a7c15u, next_id = 1;
    int64_t now = T0;
    size_t nm = 0, replays = 0;
    uint8_t n[WAKEUP_NONCE_LEN];
    (void)state;

    assert_non_null(m);
    struct wakeup_nonces *c = wakeup_nonces_new(256, win);
    assert_non_null(c);
    for (int op = 0; op < OPS; op++) {
        now += (int64_t)(xorshift(&rng) % 40);
        uint64_t id;
        int64_t ts;
        if (nm > 0 && xorshift(&rng) % 3 == 0) { /* an earlier nonce again */
            size_t k = nm - 1 - (size_t)(xorshift(&rng) % (nm < HIST ? nm : HIST));
            id = m[k].id;
            ts = xorshift(&rng) % 2 ? m[k].ts : now;
        } else {
            id = next_id++;
            ts = now - win + (int64_t)(xorshift(&rng) % (uint64_t)(2 * win + 1));
        }
        nonce_of(n, id);
        int rc = wakeup_nonces_seen_or_add(c, n, ts, now);
        if (now - ts > win || ts - now > win) {
            assert_int_equal(rc, WAKEUP_ETIME);
        } else if (model_live(m, nm, id, now, win)) {
            assert_int_equal(rc, WAKEUP_EREPLAY);
            replays++;
        } else {
            assert_int_equal(rc, 0);
            m[nm++] = (struct model_entry){id, now, ts, ts + win};
        }
        assert_true(wakeup_nonces_count(c) <= 256);
    }
    print_message("model: %zu replays caught among %d operations\n", replays, OPS);
    assert_true(replays > 1000);
    wakeup_nonces_free(c);
    free(m);
}

int main(void)
{
    const struct CMUnitTest per_curve[] = {
        cmocka_unit_test(test_round_trip),        cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_every_bit_flip),    cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_accept_codes),      cmocka_unit_test(test_accept_window),
        cmocka_unit_test(test_accept_replay),     cmocka_unit_test(test_accept_clock_back),
        cmocka_unit_test(test_accept_overloaded),
    };
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_largest),       cmocka_unit_test(test_decode_truncated),
        cmocka_unit_test(test_decode_fields), cmocka_unit_test(test_decode_der),
        cmocka_unit_test(test_nonces_basic),  cmocka_unit_test(test_nonces_bounded),
        cmocka_unit_test(test_nonces_full),   cmocka_unit_test(test_nonces_model),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("wakeup_brainpoolP256r1", per_curve, setup_brainpool,
                                          teardown_curve);
    failed +=
        cmocka_run_group_tests_name("wakeup_prime256v1", per_curve, setup_p256, teardown_curve);
    failed += cmocka_run_group_tests_name("wakeup", plain, NULL, NULL);
    return failed;
}
