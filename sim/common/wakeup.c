/*
 * wakeup.c - wake-up datagram codec, signature check and replay cache; see
 * wakeup.h and docs/protocols/wakeup.md.
 */
#include "common/wakeup.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rand.h>

static const uint8_t magic[4] = {'C', 'L', 'W', 'U'};

/* --- identifiers, shared by encoder and decoder --- */

static int is_upper(uint8_t c)
{
    return c >= 'A' && c <= 'Z';
}

static int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(uint8_t c)
{
    return is_upper(c) || (c >= 'a' && c <= 'z') || is_digit(c);
}

static int is_smgw_id(const uint8_t *p)
{
    if (p[0] != 'E')
        return 0;
    for (int i = 1; i < 4; i++)
        if (!is_upper(p[i]))
            return 0;
    for (int i = 4; i < WAKEUP_SMGW_ID_LEN; i++)
        if (!is_digit(p[i]))
            return 0;
    return 1;
}

/* The registry's rule for ids, so every GWA it knows can be named. */
static int is_gwa_id(const uint8_t *p, size_t n)
{
    if (n < 1 || n > WAKEUP_GWA_ID_MAX || !is_alnum(p[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!is_alnum(p[i]) && p[i] != '.' && p[i] != '_' && p[i] != ':' && p[i] != '-')
            return 0;
    return 1;
}

static int is_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* An EC key whose DER signatures fit WAKEUP_SIG_MAX. */
static int key_usable(EVP_PKEY *key)
{
    return key != NULL && EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) > 0 &&
           EVP_PKEY_get_bits(key) <= 384;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* --- encoding --- */

static int sign(EVP_PKEY *key, const uint8_t *tbs, size_t tbslen, uint8_t *sig, size_t *siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = -EIO;

    if (ctx == NULL)
        return -ENOMEM;
    if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestSign(ctx, sig, siglen, tbs, tbslen) == 1)
        rc = 0;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

int wakeup_encode(const struct wakeup *w, EVP_PKEY *gwa_key, uint8_t *out, size_t len)
{
    uint8_t buf[WAKEUP_MAX_LEN], *p = buf;
    const char *gnul = memchr(w->gwa_id, '\0', sizeof w->gwa_id);
    size_t glen = gnul ? (size_t)(gnul - w->gwa_id) : 0, siglen = WAKEUP_SIG_MAX;
    int rc;

    /* Both ids are fixed arrays; a missing NUL is an error, not an overread. */
    if (memchr(w->smgw_id, '\0', sizeof w->smgw_id) != w->smgw_id + WAKEUP_SMGW_ID_LEN ||
        !is_smgw_id((const uint8_t *)w->smgw_id) || !is_gwa_id((const uint8_t *)w->gwa_id, glen) ||
        w->ts_ms < 0 || !key_usable(gwa_key))
        return -EINVAL;
    memcpy(p, magic, sizeof magic);
    p += sizeof magic;
    *p++ = WAKEUP_VERSION;
    memcpy(p, w->smgw_id, WAKEUP_SMGW_ID_LEN);
    p += WAKEUP_SMGW_ID_LEN;
    *p++ = (uint8_t)glen;
    memcpy(p, w->gwa_id, glen);
    p += glen;
    put_be(p, (uint64_t)w->ts_ms, 8);
    p += 8;
    memcpy(p, w->nonce, WAKEUP_NONCE_LEN);
    if (is_zero(p, WAKEUP_NONCE_LEN) &&
        (RAND_bytes(p, WAKEUP_NONCE_LEN) != 1 || is_zero(p, WAKEUP_NONCE_LEN)))
        return -EIO;
    p += WAKEUP_NONCE_LEN;
    /* The signature covers everything before its own length field. */
    if ((rc = sign(gwa_key, buf, (size_t)(p - buf), p + 2, &siglen)) != 0)
        return rc;
    if (siglen < WAKEUP_SIG_MIN || siglen > WAKEUP_SIG_MAX)
        return -EIO;
    put_be(p, siglen, 2);
    p += 2 + siglen;
    if ((size_t)(p - buf) > len)
        return -ENOSPC;
    memcpy(out, buf, (size_t)(p - buf));
    return (int)(p - buf);
}

/* --- decoding --- */

struct reader {
    const uint8_t *p;
    size_t left;
};

static const uint8_t *take(struct reader *r, size_t n)
{
    const uint8_t *q = r->p;
    if (r->left < n)
        return NULL;
    r->p += n;
    r->left -= n;
    return q;
}

static int bad(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return WAKEUP_EMALFORMED;
}

/* One DER INTEGER of an ECDSA signature: positive, minimally encoded, at
 * most 49 bytes (a 384-bit value with a leading zero). */
static int der_int(const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp, *v = p + 2;
    size_t n;

    if (end - p < 3 || p[0] != 0x02)
        return -1;
    n = p[1];
    if (n < 1 || n > 49 || (size_t)(end - v) < n)
        return -1;
    if ((v[0] & 0x80) != 0 || (v[0] == 0 && (n == 1 || (v[1] & 0x80) == 0)))
        return -1; /* negative, zero, or a needless leading zero */
    *pp = v + n;
    return 0;
}

/* SEQUENCE { INTEGER r, INTEGER s } filling exactly 'n' bytes. OpenSSL checks
 * the same again; checking here keeps junk out of the verifier and makes the
 * encoding of a signature unique up to ECDSA's own (r, -s) malleability. */
static int der_ecdsa_sig(const uint8_t *sig, size_t n)
{
    const uint8_t *p = sig + 2, *end = sig + n;

    if (n < WAKEUP_SIG_MIN || sig[0] != 0x30 || sig[1] != n - 2)
        return 0;
    return der_int(&p, end) == 0 && der_int(&p, end) == 0 && p == end;
}

static int decode_ids(struct reader *r, struct wakeup *out, const char **why)
{
    const uint8_t *p;
    size_t n;

    if ((p = take(r, WAKEUP_SMGW_ID_LEN)) == NULL)
        return bad(why, "ends inside the SMGW id");
    if (!is_smgw_id(p))
        return bad(why, "SMGW id is not E + 3 upper-case letters + 10 digits");
    memcpy(out->smgw_id, p, WAKEUP_SMGW_ID_LEN);
    out->smgw_id[WAKEUP_SMGW_ID_LEN] = '\0';
    if ((p = take(r, 1)) == NULL)
        return bad(why, "ends before the GWA id length");
    n = *p;
    if (n < 1 || n > WAKEUP_GWA_ID_MAX)
        return bad(why, "GWA id length is not 1-96");
    if ((p = take(r, n)) == NULL)
        return bad(why, "ends inside the GWA id");
    if (!is_gwa_id(p, n))
        return bad(why, "GWA id has a character outside A-Z a-z 0-9 . _ : - or starts with one "
                        "of . _ : -");
    memcpy(out->gwa_id, p, n);
    out->gwa_id[n] = '\0';
    return 0;
}

static int decode_sig(struct reader *r, const uint8_t *buf, struct wakeup *out, const char **why)
{
    const uint8_t *p;
    size_t n;

    out->signed_len = (size_t)(r->p - buf);
    if ((p = take(r, 2)) == NULL)
        return bad(why, "ends before the signature length");
    n = (size_t)get_be(p, 2);
    if (n < WAKEUP_SIG_MIN || n > WAKEUP_SIG_MAX)
        return bad(why, "signature length is not 8-104");
    if ((p = take(r, n)) == NULL)
        return bad(why, "ends inside the signature");
    if (r->left != 0)
        return bad(why, "bytes after the signature");
    if (!der_ecdsa_sig(p, n))
        return bad(why, "signature is not a minimal DER ECDSA signature");
    out->sig_len = n;
    return 0;
}

int wakeup_decode(const uint8_t *buf, size_t len, struct wakeup *out, const char **why)
{
    struct reader r = {buf, len};
    const uint8_t *p;
    uint64_t ts;
    int rc;

    if (why)
        *why = NULL;
    if (buf == NULL)
        return bad(why, "no datagram");
    if (len > WAKEUP_MAX_LEN)
        return bad(why, "longer than 256 bytes");
    if ((p = take(&r, sizeof magic)) == NULL || memcmp(p, magic, sizeof magic) != 0)
        return bad(why, "does not start with CLWU");
    if ((p = take(&r, 1)) == NULL || *p != WAKEUP_VERSION)
        return bad(why, "version is not 1");
    if ((rc = decode_ids(&r, out, why)) != 0)
        return rc;
    if ((p = take(&r, 8)) == NULL)
        return bad(why, "ends inside the timestamp");
    ts = get_be(p, 8);
    if (ts > INT64_MAX)
        return bad(why, "timestamp above 2^63 - 1");
    out->ts_ms = (int64_t)ts;
    if ((p = take(&r, WAKEUP_NONCE_LEN)) == NULL)
        return bad(why, "ends inside the nonce");
    if (is_zero(p, WAKEUP_NONCE_LEN))
        return bad(why, "nonce is all zero");
    memcpy(out->nonce, p, WAKEUP_NONCE_LEN);
    return decode_sig(&r, buf, out, why);
}

/* --- signature --- */

int wakeup_verify_signature(const uint8_t *buf, size_t len, const struct wakeup *w,
                            EVP_PKEY *gwa_pub)
{
    EVP_MD_CTX *ctx;
    int rc;

    if (buf == NULL || w == NULL || !key_usable(gwa_pub) || len > WAKEUP_MAX_LEN ||
        w->sig_len < WAKEUP_SIG_MIN || w->sig_len > WAKEUP_SIG_MAX ||
        w->signed_len < WAKEUP_FIXED_LEN - 2 || len != w->signed_len + 2 + w->sig_len)
        return -EINVAL;
    if ((ctx = EVP_MD_CTX_new()) == NULL)
        return -ENOMEM;
    rc = -EIO;
    if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, gwa_pub) == 1)
        rc = EVP_DigestVerify(ctx, buf + w->signed_len + 2, w->sig_len, buf, w->signed_len) == 1
                 ? 0
                 : WAKEUP_EBADSIG;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error(); /* a failed verification leaves entries we do not report */
    return rc;
}

/* --- replay cache --- */

/*
 * Linear probing over nslots > capacity slots (load at most 3/4), keyed by a
 * seeded hash of the nonce. A slot is empty when expiry_ms is 0 (a real
 * expiry is ts + window > 0). An entry is live while now <= expiry_ms.
 * Expired entries are reclaimed two ways: an insert overwrites the first
 * expired slot on its probe path in place (the chain stays intact), and when
 * no free slot is left a purge walks the whole table, deleting expired entries
 * with backward shifts.
 */
struct nonce_slot {
    uint8_t nonce[WAKEUP_NONCE_LEN];
    int64_t expiry_ms;
};

struct wakeup_nonces {
    struct nonce_slot *slots;
    size_t nslots, capacity, count;
    int64_t window_ms;
    int64_t latest_ms;     /* the latest now_ms given: time never runs back here */
    int64_t min_expiry_ms; /* no entry expires before this (a lower bound) */
    int64_t last_purge_ms; /* INT64_MIN before the first purge */
    uint64_t key[2];
};

#define NONCES_CAPACITY_MAX ((size_t)1 << 26)
#define NONCES_WINDOW_MAX   3600000

struct wakeup_nonces *wakeup_nonces_new(size_t capacity, int64_t window_ms)
{
    struct wakeup_nonces *c;

    if (capacity < 1 || capacity > NONCES_CAPACITY_MAX || window_ms < 1 ||
        window_ms > NONCES_WINDOW_MAX)
        return NULL;
    if ((c = calloc(1, sizeof *c)) == NULL)
        return NULL;
    c->capacity = capacity;
    c->nslots = capacity + capacity / 3 + 1;
    c->window_ms = window_ms;
    c->min_expiry_ms = INT64_MAX;
    c->last_purge_ms = INT64_MIN;
    c->slots = calloc(c->nslots, sizeof *c->slots);
    /* Nonces are chosen by the signing GWA, not by strangers, but a secret
     * hash key keeps even a misbehaving GWA from building long chains. */
    if (c->slots == NULL || RAND_bytes((unsigned char *)c->key, sizeof c->key) != 1) {
        wakeup_nonces_free(c);
        return NULL;
    }
    return c;
}

void wakeup_nonces_free(struct wakeup_nonces *c)
{
    if (c == NULL)
        return;
    free(c->slots);
    free(c);
}

int64_t wakeup_nonces_window(const struct wakeup_nonces *c)
{
    return c->window_ms;
}

size_t wakeup_nonces_count(const struct wakeup_nonces *c)
{
    return c->count;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static size_t home(const struct wakeup_nonces *c, const uint8_t *nonce)
{
    uint64_t a, b, h;

    memcpy(&a, nonce, 8);
    memcpy(&b, nonce + 8, 8);
    h = mix64(mix64(a ^ c->key[0]) ^ b ^ c->key[1]);
    return (size_t)(((h >> 32) * (uint64_t)c->nslots) >> 32); /* nslots < 2^32 */
}

static int64_t add_sat(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b; /* b >= 0 */
}

static size_t next(const struct wakeup_nonces *c, size_t i)
{
    return i + 1 == c->nslots ? 0 : i + 1;
}

/* Remove slot i and pull later members of its cluster back so that every
 * entry stays reachable from its home without tombstones. */
static void slot_delete(struct wakeup_nonces *c, size_t i)
{
    for (size_t j = next(c, i); c->slots[j].expiry_ms != 0; j = next(c, j)) {
        size_t k = home(c, c->slots[j].nonce);
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            c->slots[i] = c->slots[j];
            i = j;
        }
    }
    c->slots[i].expiry_ms = 0;
    c->count--;
}

/* Delete every expired entry. The walk starts after an empty slot, so a
 * backward shift only ever moves entries the walk has not reached yet. */
static void purge(struct wakeup_nonces *c, int64_t now_ms)
{
    size_t start = 0, i;

    while (c->slots[start].expiry_ms != 0)
        start++; /* exists: count <= capacity < nslots */
    c->min_expiry_ms = INT64_MAX;
    i = next(c, start);
    for (size_t steps = 1; steps < c->nslots; steps++) {
        while (c->slots[i].expiry_ms != 0 && c->slots[i].expiry_ms < now_ms)
            slot_delete(c, i);
        if (c->slots[i].expiry_ms != 0 && c->slots[i].expiry_ms < c->min_expiry_ms)
            c->min_expiry_ms = c->slots[i].expiry_ms;
        i = next(c, i);
    }
    c->last_purge_ms = now_ms;
}

/* A purge costs a walk over the whole table, so it runs only when it will
 * free something, and at most once per 1/64 window: a cache full of live
 * nonces answers "overloaded" in O(1). */
static int purge_worthwhile(const struct wakeup_nonces *c, int64_t now_ms)
{
    if (now_ms <= c->min_expiry_ms)
        return 0;
    return c->last_purge_ms == INT64_MIN || now_ms - c->last_purge_ms >= c->window_ms / 64;
}

static int probe_insert(struct wakeup_nonces *c, const uint8_t *nonce, int64_t expiry,
                        int64_t now_ms)
{
    size_t i = home(c, nonce), reuse = SIZE_MAX;
    struct nonce_slot *s;

    for (; c->slots[i].expiry_ms != 0; i = next(c, i)) {
        s = &c->slots[i];
        if (memcmp(s->nonce, nonce, WAKEUP_NONCE_LEN) == 0) {
            if (s->expiry_ms >= now_ms)
                return WAKEUP_EREPLAY;
            s->expiry_ms = expiry; /* its earlier datagram is stale by now */
            if (expiry < c->min_expiry_ms)
                c->min_expiry_ms = expiry;
            return 0;
        }
        if (reuse == SIZE_MAX && s->expiry_ms < now_ms)
            reuse = i;
    }
    if (reuse == SIZE_MAX) {
        if (c->count >= c->capacity)
            return WAKEUP_EOVERLOAD;
        reuse = i;
        c->count++;
    }
    s = &c->slots[reuse];
    memcpy(s->nonce, nonce, WAKEUP_NONCE_LEN);
    s->expiry_ms = expiry;
    if (expiry < c->min_expiry_ms)
        c->min_expiry_ms = expiry;
    return 0;
}

int wakeup_nonces_seen_or_add(struct wakeup_nonces *c, const uint8_t nonce[WAKEUP_NONCE_LEN],
                              int64_t ts_ms, int64_t now_ms)
{
    int64_t expiry;
    int rc;

    if (ts_ms < 0 || now_ms < 0)
        return WAKEUP_ETIME;
    if (now_ms > c->latest_ms)
        c->latest_ms = now_ms;
    /* Stale is judged against the latest time seen: entries forgotten then
     * must not become acceptable when the clock steps back. All values are
     * >= 0, so the differences do not overflow. */
    if (c->latest_ms - ts_ms > c->window_ms || ts_ms - now_ms > c->window_ms)
        return WAKEUP_ETIME;
    expiry = add_sat(ts_ms, c->window_ms);
    rc = probe_insert(c, nonce, expiry, c->latest_ms);
    if (rc == WAKEUP_EOVERLOAD && purge_worthwhile(c, c->latest_ms)) {
        purge(c, c->latest_ms);
        rc = probe_insert(c, nonce, expiry, c->latest_ms);
    }
    return rc;
}

/* --- all checks --- */

static int reject(const char **why, int rc, const char *reason)
{
    if (why)
        *why = reason;
    return rc;
}

int wakeup_accept(const struct wakeup_checks *c, const uint8_t *buf, size_t len, int64_t now_ms,
                  struct wakeup *out, const char **why)
{
    EVP_PKEY *key;
    int rc;

    if (why)
        *why = NULL;
    if (c == NULL || c->smgw_ours == NULL || c->gwa_key == NULL || c->nonces == NULL || now_ms < 0)
        return reject(why, -EINVAL, "bad arguments");
    if ((rc = wakeup_decode(buf, len, out, why)) != 0)
        return rc;
    if (!c->smgw_ours(c->arg, out->smgw_id))
        return reject(why, WAKEUP_ENOTOURS, "not addressed to one of our SMGWs");
    if (now_ms - out->ts_ms > c->nonces->window_ms)
        return reject(why, WAKEUP_ETIME, "timestamp too old");
    if (out->ts_ms - now_ms > c->nonces->window_ms)
        return reject(why, WAKEUP_ETIME, "timestamp in the future");
    if ((key = c->gwa_key(c->arg, out->gwa_id)) == NULL)
        return reject(why, WAKEUP_EUNKNOWNGWA, "unknown GWA");
    rc = wakeup_verify_signature(buf, len, out, key);
    if (rc == WAKEUP_EBADSIG)
        return reject(why, rc, "signature does not verify with the GWA key");
    if (rc == -EINVAL)
        return reject(why, rc, "GWA key is not an EC key of at most 384 bits");
    if (rc != 0)
        return reject(why, rc, "signature check failed inside OpenSSL");
    rc = wakeup_nonces_seen_or_add(c->nonces, out->nonce, out->ts_ms, now_ms);
    if (rc == WAKEUP_EREPLAY)
        return reject(why, rc, "nonce seen before (replay)");
    if (rc == WAKEUP_EOVERLOAD)
        return reject(why, rc, "replay cache full of live nonces");
    if (rc == WAKEUP_ETIME)
        return reject(why, rc, "timestamp too old for the replay cache (clock stepped back)");
    return rc;
}
