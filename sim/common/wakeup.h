/*
 * wakeup.h - the signed wake-up datagram a gateway administrator (GWA) sends
 * to a Smart Meter Gateway (SMGW) over UDP, and the checks the SMGW applies
 * before it dials the GWA for its orders (DESIGN.md §5.3).
 *
 * The wire format is our own, modelled on BSI TR-03109-1 and written down in
 * docs/protocols/wakeup.md: "CLWU", version 1, SMGW id, GWA id, timestamp in
 * Unix milliseconds, a 16-byte random nonce and a DER ECDSA-SHA256 signature
 * of the GWA over all bytes before the signature length. Every length is
 * explicit and checked; a datagram is at most WAKEUP_MAX_LEN bytes.
 *
 * The codec functions (encode, decode, verify) keep no state and may be called
 * from any thread; they only read the EVP_PKEY, which OpenSSL 3 allows from
 * several threads at once. The replay cache is not thread-safe: each event
 * loop owns its own cache and only that loop calls wakeup_nonces_*() and
 * wakeup_accept() with it.
 */
#ifndef CLSM_SIM_WAKEUP_H
#define CLSM_SIM_WAKEUP_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define WAKEUP_VERSION     1
#define WAKEUP_SMGW_ID_LEN 14 /* 'E' + 3 upper-case letters + 10 digits */
#define WAKEUP_GWA_ID_MAX  96 /* as registry ids: 1-96 of [A-Za-z0-9._:-] */
#define WAKEUP_NONCE_LEN   16
#define WAKEUP_SIG_MIN     8     /* smallest DER SEQUENCE of two INTEGERs */
#define WAKEUP_SIG_MAX     104   /* DER ECDSA on a curve of up to 384 bits */
#define WAKEUP_FIXED_LEN   46    /* every byte except GWA id and signature */
#define WAKEUP_MAX_LEN     256   /* no datagram is longer (the largest is 246) */
#define WAKEUP_WINDOW_MS   60000 /* accepted clock difference, either way */

/* Failures of wakeup_accept(), in the order it checks them. Each is a
 * distinct negative errno value, so callers may also pass them to strerror(). */
#define WAKEUP_EMALFORMED  (-EBADMSG)      /* not a well-formed datagram */
#define WAKEUP_ENOTOURS    (-ENXIO)        /* names an SMGW that is not ours */
#define WAKEUP_ETIME       (-ERANGE)       /* timestamp outside the window */
#define WAKEUP_EUNKNOWNGWA (-ENOKEY)       /* names a GWA we have no key for */
#define WAKEUP_EBADSIG     (-EKEYREJECTED) /* signature does not verify */
#define WAKEUP_EREPLAY     (-EALREADY)     /* nonce seen within the window */
#define WAKEUP_EOVERLOAD   (-EBUSY)        /* replay cache full of live nonces */

/* One wake-up message. The caller fills the first four fields for
 * wakeup_encode(); wakeup_decode() fills all of them. Strings are
 * NUL-terminated. */
struct wakeup {
    char smgw_id[WAKEUP_SMGW_ID_LEN + 1];
    char gwa_id[WAKEUP_GWA_ID_MAX + 1];
    int64_t ts_ms; /* Unix milliseconds, 0 .. INT64_MAX */
    uint8_t nonce[WAKEUP_NONCE_LEN];
    /* Set by wakeup_decode(), ignored by wakeup_encode(): the signature covers
     * buf[0 .. signed_len) and is the sig_len bytes at buf + signed_len + 2. */
    size_t signed_len;
    size_t sig_len;
};

/* Build and sign a datagram into 'out' ('len' bytes; WAKEUP_MAX_LEN always
 * suffices). 'gwa_key' is the GWA's EC private key on a curve of at most 384
 * bits; it is only borrowed. When w->nonce is all zero a fresh nonce is drawn
 * from RAND_bytes() and written only into 'out' (decode 'out' to learn it);
 * otherwise w->nonce is used as given, which lets tests build deterministic
 * datagrams. A sender must never reuse a nonce. Returns the datagram length,
 * -EINVAL when an id, the timestamp or the key is not acceptable, -ENOSPC when
 * 'out' is too small (then 'out' is untouched), -ENOMEM, or -EIO when OpenSSL
 * fails. */
int wakeup_encode(const struct wakeup *w, EVP_PKEY *gwa_key, uint8_t *out, size_t len);

/* Parse 'len' bytes strictly: every field is checked, the signature must be a
 * minimal DER SEQUENCE of two positive INTEGERs and must end exactly at 'len'.
 * Nothing is verified cryptographically. Returns 0 and fills 'out', or
 * WAKEUP_EMALFORMED and points '*why' at a static English reason ('out' may
 * then hold part of the fields). '*why' is NULL after success; 'why' may be
 * NULL. */
int wakeup_decode(const uint8_t *buf, size_t len, struct wakeup *out, const char **why);

/* Check the signature of a datagram that wakeup_decode() accepted into 'w'
 * against the GWA's public key 'gwa_pub' (borrowed). Returns 0 when it
 * verifies, WAKEUP_EBADSIG when it does not, -EINVAL when 'w' does not
 * describe 'len' bytes or the key is not an EC key of at most 384 bits,
 * -ENOMEM when OpenSSL cannot allocate, or -EIO when OpenSSL fails otherwise.
 * The OpenSSL error queue is cleared before it returns. */
int wakeup_verify_signature(const uint8_t *buf, size_t len, const struct wakeup *w,
                            EVP_PKEY *gwa_pub);

/*
 * The replay cache: the nonces of accepted datagrams, each kept until its
 * datagram would be refused as stale anyway (timestamp + window), so that the
 * cache holds only nonces stamped within the last window (or up to a window
 * ahead) and never fills with old ones.
 * Its memory is allocated once at creation (about 32 bytes per entry of
 * capacity) and never grows. When it holds 'capacity' live nonces it refuses
 * new ones rather than forget a live one, which would open a replay.
 */
struct wakeup_nonces;

/* Create a cache for at most 'capacity' nonces (1 .. 1 << 26) of datagrams
 * accepted within +-'window_ms' (1 .. 3,600,000; WAKEUP_WINDOW_MS normally).
 * Returns NULL on bad arguments or when memory or randomness for the hash
 * key is not available. Free it with wakeup_nonces_free(). */
struct wakeup_nonces *wakeup_nonces_new(size_t capacity, int64_t window_ms);

/* Free the cache; NULL is ignored. */
void wakeup_nonces_free(struct wakeup_nonces *c);

/* The window the cache was created with. */
int64_t wakeup_nonces_window(const struct wakeup_nonces *c);

/* Entries held, live or expired but not yet reclaimed; never above the
 * capacity. For tests and metrics. */
size_t wakeup_nonces_count(const struct wakeup_nonces *c);

/* Record 'nonce' of a datagram stamped 'ts_ms', at time 'now_ms' (both Unix
 * milliseconds, not negative). Returns 0 when the nonce was new and is now
 * remembered, WAKEUP_EREPLAY when it was seen within the window,
 * WAKEUP_EOVERLOAD when the cache is full of live nonces (nothing is
 * evicted), or WAKEUP_ETIME when ts_ms is more than a window in the future
 * of now_ms or more than a window older than the latest now_ms the cache
 * has been given. Judging age against that latest time means a clock that
 * steps back cannot revive a nonce the cache has already forgotten. Call it
 * only for datagrams whose signature has been verified, so that forgeries
 * cannot fill it. */
int wakeup_nonces_seen_or_add(struct wakeup_nonces *c, const uint8_t nonce[WAKEUP_NONCE_LEN],
                              int64_t ts_ms, int64_t now_ms);

/* What the receiver knows: its SMGWs, the GWA keys and its replay cache. */
struct wakeup_checks {
    /* Returns nonzero when 'smgw_id' is one of the gateways this receiver
     * serves. */
    int (*smgw_ours)(void *arg, const char *smgw_id);
    /* Returns the public key of the GWA named 'gwa_id', or NULL when it is
     * unknown. The key stays owned by the callee and must stay valid until
     * wakeup_accept() returns. */
    EVP_PKEY *(*gwa_key)(void *arg, const char *gwa_id);
    void *arg;                    /* passed to both callbacks */
    struct wakeup_nonces *nonces; /* its window is the acceptance window */
};

/* Decide whether to act on the datagram 'buf' received at 'now_ms' (Unix
 * milliseconds, not negative). Checks in this order and stops at the first
 * failure: well formed (WAKEUP_EMALFORMED), addressed to one of our SMGWs
 * (WAKEUP_ENOTOURS), |now - ts| within the cache's window (WAKEUP_ETIME),
 * GWA known (WAKEUP_EUNKNOWNGWA), signature valid (WAKEUP_EBADSIG), nonce
 * new (WAKEUP_EREPLAY, WAKEUP_EOVERLOAD, or WAKEUP_ETIME when the clock
 * stepped back behind what the cache has seen). The cheap checks come first
 * so junk and old captured datagrams cost no signature verification; the
 * cache is touched only after the signature verified. Reasons given before
 * the signature check describe what an unauthenticated datagram claims.
 * Returns 0 and fills 'out', or one of those codes (-EINVAL for bad
 * arguments or an unusable GWA key, -ENOMEM) and points '*why' at a static
 * English reason ('why' may be NULL; it is NULL after success). Only the loop
 * that owns c->nonces may call it. */
int wakeup_accept(const struct wakeup_checks *c, const uint8_t *buf, size_t len, int64_t now_ms,
                  struct wakeup *out, const char **why);

#endif
