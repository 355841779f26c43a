/*
 * fuzz_wakeup.c - libFuzzer target for wake-up datagrams: the strict parser
 * on any bytes, then, for whatever parses, the signature check, a re-encoding
 * with the same fields and the whole of wakeup_accept(). The GWA key is
 * generated once per process, so no private key lives in the repository;
 * committed seeds are signed by throwaway keys and exercise the parser and
 * the "bad signature" path.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "common/wakeup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *fuzz_key(void)
{
    static EVP_PKEY *key;
    if (key == NULL && (key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1")) == NULL)
        abort();
    return key;
}

static int any_smgw(void *arg, const char *smgw_id)
{
    (void)arg;
    (void)smgw_id;
    return 1;
}

static EVP_PKEY *any_gwa(void *arg, const char *gwa_id)
{
    (void)gwa_id;
    return arg;
}

/* What a successful decode promises about the bytes it read. */
static void check_fields(const uint8_t *data, size_t size, const struct wakeup *w)
{
    size_t glen = strlen(w->gwa_id);

    if (size > WAKEUP_MAX_LEN || size != w->signed_len + 2 + w->sig_len ||
        w->signed_len != WAKEUP_FIXED_LEN - 2 + glen || glen < 1 || glen > WAKEUP_GWA_ID_MAX ||
        w->sig_len < WAKEUP_SIG_MIN || w->sig_len > WAKEUP_SIG_MAX)
        abort();
    if (memcmp(data, "CLWU\x01", 5) != 0 || strlen(w->smgw_id) != WAKEUP_SMGW_ID_LEN ||
        memcmp(data + 5, w->smgw_id, WAKEUP_SMGW_ID_LEN) != 0 || data[19] != glen ||
        memcmp(data + 20, w->gwa_id, glen) != 0 || w->ts_ms < 0 ||
        memcmp(data + 28 + glen, w->nonce, WAKEUP_NONCE_LEN) != 0 ||
        data[w->signed_len] != (uint8_t)(w->sig_len >> 8) ||
        data[w->signed_len + 1] != (uint8_t)w->sig_len || data[w->signed_len + 2] != 0x30)
        abort();
}

/* Signing the decoded fields again gives the same signed bytes, and that
 * datagram is accepted exactly once. */
static void check_reencode(const uint8_t *data, const struct wakeup *w, EVP_PKEY *key)
{
    struct wakeup_checks checks = {any_smgw, any_gwa, key, NULL};
    uint8_t out[WAKEUP_MAX_LEN];
    struct wakeup again;
    const char *why;

    int n = wakeup_encode(w, key, out, sizeof out);
    if (n <= 0 || memcmp(out, data, w->signed_len) != 0)
        abort();
    if (wakeup_decode(out, (size_t)n, &again, &why) != 0 || again.signed_len != w->signed_len ||
        again.ts_ms != w->ts_ms || strcmp(again.gwa_id, w->gwa_id) != 0 ||
        wakeup_verify_signature(out, (size_t)n, &again, key) != 0)
        abort();
    if ((checks.nonces = wakeup_nonces_new(4, WAKEUP_WINDOW_MS)) == NULL)
        abort();
    if (wakeup_accept(&checks, out, (size_t)n, w->ts_ms, &again, &why) != 0 || why != NULL ||
        wakeup_accept(&checks, out, (size_t)n, w->ts_ms, &again, &why) != WAKEUP_EREPLAY)
        abort();
    wakeup_nonces_free(checks.nonces);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wakeup_checks checks = {any_smgw, any_gwa, NULL, NULL};
    EVP_PKEY *key = fuzz_key();
    const char *why = "unset";
    struct wakeup w, w2;

    int rc = wakeup_decode(data, size, &w, &why);
    if (rc != 0) {
        if (rc != WAKEUP_EMALFORMED || why == NULL)
            abort();
        return 0;
    }
    if (why != NULL)
        abort();
    check_fields(data, size, &w);

    /* Not signed by this process's key (short of forging ECDSA). */
    rc = wakeup_verify_signature(data, size, &w, key);
    if (rc != WAKEUP_EBADSIG || ERR_peek_error() != 0)
        abort();
    checks.arg = key;
    if ((checks.nonces = wakeup_nonces_new(4, WAKEUP_WINDOW_MS)) == NULL)
        abort();
    rc = wakeup_accept(&checks, data, size, w.ts_ms, &w2, &why);
    if (rc != WAKEUP_EBADSIG || why == NULL || wakeup_nonces_count(checks.nonces) != 0)
        abort();
    wakeup_nonces_free(checks.nonces);

    check_reencode(data, &w, key);
    return 0;
}
