/*
 * tls.c - building SSL_CTX objects from a profile; see tls.h.
 */
#include "common/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

void tls_profile_default(struct tls_profile *p)
{
    memset(p, 0, sizeof *p);
    str_copy(p->curves, sizeof p->curves, "brainpoolP256r1:brainpoolP384r1:prime256v1:secp384r1");
    str_copy(p->ciphers, sizeof p->ciphers,
             "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
             "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384");
    str_copy(p->ciphersuites, sizeof p->ciphersuites,
             "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384");
    p->min_version = TLS1_2_VERSION;
    p->max_version = TLS1_3_VERSION;
}

int tls_version_parse(const char *s, int *out)
{
    if (strcmp(s, "1.2") == 0)
        *out = TLS1_2_VERSION;
    else if (strcmp(s, "1.3") == 0)
        *out = TLS1_3_VERSION;
    else
        return -EINVAL;
    return 0;
}

const char *tls_last_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(buf, len, "no details");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

static SSL_CTX *fail(SSL_CTX *ctx, char *err, size_t errlen, const char *what, const char *arg)
{
    char e[256];
    snprintf(err, errlen, "%s%s%s: %s", what, arg ? " " : "", arg ? arg : "",
             tls_last_error(e, sizeof e));
    SSL_CTX_free(ctx);
    return NULL;
}

static SSL_CTX *build(const SSL_METHOD *m, const struct tls_profile *p, const char *cert,
                      const char *key, const char *verify_ca, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(m);
    if (ctx == NULL)
        return fail(NULL, err, errlen, "creating a TLS context", NULL);
    if (!SSL_CTX_set_min_proto_version(ctx, p->min_version) ||
        !SSL_CTX_set_max_proto_version(ctx, p->max_version))
        return fail(ctx, err, errlen, "setting TLS versions", NULL);
    if (!SSL_CTX_set_cipher_list(ctx, p->ciphers))
        return fail(ctx, err, errlen, "TLS 1.2 ciphers", p->ciphers);
    if (!SSL_CTX_set_ciphersuites(ctx, p->ciphersuites))
        return fail(ctx, err, errlen, "TLS 1.3 cipher suites", p->ciphersuites);
    if (!SSL_CTX_set1_groups_list(ctx, p->curves))
        return fail(ctx, err, errlen, "curves", p->curves);
    /* Idle channels keep no buffers: thousands of them stay small. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (cert && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return fail(ctx, err, errlen, "certificate", cert);
    if (key && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        return fail(ctx, err, errlen, "private key", key);
    if (cert && key && SSL_CTX_check_private_key(ctx) != 1)
        return fail(ctx, err, errlen, "the key does not match the certificate", cert);
    if (verify_ca) {
        if (SSL_CTX_load_verify_locations(ctx, verify_ca, NULL) != 1)
            return fail(ctx, err, errlen, "trusted certificates", verify_ca);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_set_verify_depth(ctx, 4);
        /* A sub-CA in the file is a trust anchor by itself: a file with only
         * the SMGW sub-CA admits gateways and nothing the root's other
         * sub-CAs issued. */
        X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
    }
    return ctx;
}

SSL_CTX *tls_server_ctx(const struct tls_profile *p, const char *cert, const char *key,
                        const char *verify_ca, char *err, size_t errlen)
{
    SSL_CTX *ctx = build(TLS_server_method(), p, cert, key, verify_ca, err, errlen);
    if (ctx) {
        /* Each client is a different gateway: a session cache per context
         * lets one gateway resume, nothing more. */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        static const unsigned char sid[] = "clsm";
        SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    }
    return ctx;
}

SSL_CTX *tls_client_ctx(const struct tls_profile *p, const char *cert, const char *key,
                        const char *verify_ca, char *err, size_t errlen)
{
    return build(TLS_client_method(), p, cert, key, verify_ca, err, errlen);
}
