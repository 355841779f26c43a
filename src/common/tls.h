/*
 * tls.h - TLS contexts built from one profile (DESIGN.md §5.4): protocol
 * versions, TLS 1.2 cipher suites, TLS 1.3 suites and curves, for both the
 * server side (clsmd's channel listener, the GWA simulator) and the client
 * side (clsmd towards a GWA, simulated gateways towards clsmd).
 *
 * Contexts are reference counted by OpenSSL; the caller owns the one it
 * gets and releases it with SSL_CTX_free(). Building a context reads files
 * and is meant for start-up; using one is thread-safe.
 */
#ifndef CLSM_TLS_H
#define CLSM_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

struct tls_profile {
    char curves[256];       /* "brainpoolP256r1:brainpoolP384r1:prime256v1:secp384r1" */
    char ciphers[512];      /* TLS 1.2 suites, OpenSSL names */
    char ciphersuites[256]; /* TLS 1.3 suites */
    int min_version;        /* TLS1_2_VERSION or TLS1_3_VERSION */
    int max_version;
};

/* The profile of DESIGN.md §5.4: TLS 1.2 and 1.3, ECDHE-ECDSA with AES-GCM
 * (and the AES-CBC-SHA256/384 suites of TR-03116-3), brainpool and NIST
 * curves. */
void tls_profile_default(struct tls_profile *p);

/* Parse "1.2" or "1.3" into a version constant. Returns 0 or -EINVAL. */
int tls_version_parse(const char *s, int *out);

/*
 * A context for one side. 'cert' and 'key' (PEM files) may be NULL for a
 * client that sets them per connection (SSL_use_certificate). 'verify_ca'
 * (a PEM file of trusted certificates) turns on peer verification: a server
 * then requires a client certificate chaining to it, a client verifies the
 * server against it. Every certificate in the file is a trust anchor, a
 * sub-CA too (partial chains), so a file holding only one sub-CA admits
 * only what that sub-CA issued. Returns NULL with 'err' filled when a file cannot be
 * read, the key does not match, or the profile names something OpenSSL
 * does not know.
 */
SSL_CTX *tls_server_ctx(const struct tls_profile *p, const char *cert, const char *key,
                        const char *verify_ca, char *err, size_t errlen);
SSL_CTX *tls_client_ctx(const struct tls_profile *p, const char *cert, const char *key,
                        const char *verify_ca, char *err, size_t errlen);

/* The text of OpenSSL's error queue (and clears it), for logs. */
const char *tls_last_error(char *buf, size_t len);

#endif
