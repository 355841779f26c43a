/*
 * pki.h - loading the test SM-PKI that tools/clsm-pki makes: certificates,
 * keys, trust stores and the fleet bundle of gateway credentials.
 *
 * Every function here is reentrant and may be called from any thread; none
 * keeps state between calls. Functions that can fail return 0 or a negative
 * errno-style code and then describe the failure, naming the file, in 'err'
 * (PKI_ERRLEN bytes are always enough; a shorter buffer truncates the text).
 * On failure every output pointer is set to NULL and nothing needs freeing.
 * Private keys are read unencrypted; an encrypted key is an error, never a
 * pass phrase prompt.
 */
#ifndef CLSM_PKI_H
#define CLSM_PKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h> /* X509_PURPOSE_* */
#include <stddef.h>
#include <stdint.h>

#define PKI_ERRLEN      512
#define PKI_CN_MAX      64 /* X.520 ub-common-name */
#define PKI_DER_MAX     16384u
#define PKI_SHA256_HEX  65 /* 64 hex digits and the NUL */
#define PKI_BUNDLE_NAME "gateways.pem"

/* Read the first certificate of the PEM file 'path' (later ones, such as the
 * issuing CA of a chain file, are ignored). On success '*out' is a new
 * certificate the caller frees with X509_free(). Returns 0, -ENOENT, -EACCES
 * or -EIO (cannot open), -EINVAL (no PEM certificate in the file) or
 * -ENOMEM. */
int pki_load_cert(const char *path, X509 **out, char *err, size_t errlen);

/* Read the private key of the PEM file 'path' (PKCS#8 "PRIVATE KEY" or the
 * traditional "EC PRIVATE KEY"). On success '*out' is a new key the caller
 * frees with EVP_PKEY_free(). Returns 0, -ENOENT, -EACCES or -EIO, -EINVAL
 * (no readable key, or an encrypted one) or -ENOMEM. */
int pki_load_key(const char *path, EVP_PKEY **out, char *err, size_t errlen);

/* Build a trust store from 'n' PEM files (such as smgw-chain.pem); every
 * certificate in them becomes a trust anchor, and each file must hold at
 * least one. On success '*out' is a new store the caller frees with
 * X509_STORE_free() (an SSL_CTX takes its own reference with
 * SSL_CTX_set1_verify_cert_store()). Returns 0, -EINVAL (n is 0, or a file
 * holds no certificate or a malformed one), -ENOENT, -EACCES or -EIO, or
 * -ENOMEM. */
int pki_load_ca_store(const char *const *paths, size_t n, X509_STORE **out, char *err,
                      size_t errlen);

/* Verify 'cert' against 'store' at the current time for 'purpose'
 * (X509_PURPOSE_SSL_CLIENT for a gateway, X509_PURPOSE_SSL_SERVER for
 * clsmd, or 0 for no purpose check). Returns 0 when it verifies, or -EACCES
 * with the X509_V_ERR_* code in '*verr' (when not NULL) and the reason, the
 * depth and the subject in 'err'; -EINVAL for an unknown purpose or -ENOMEM
 * (then '*verr' is 0). Neither argument changes ownership. */
int pki_verify_cert(X509_STORE *store, X509 *cert, int purpose, int *verr, char *err,
                    size_t errlen);

/* Nonzero when 'ca' issued 'cert': the issuer name and authority key id of
 * 'cert' match 'ca', which may sign certificates, and the key of 'ca'
 * verifies the signature of 'cert'. Validity and purpose are not checked.
 * A store that holds the root (as every *-chain.pem does) accepts leaves of
 * all three sub-CAs once the peer sends its sub-CA along, so the role of a
 * peer is pinned with this check on the verified leaf: clsmd accepts as
 * gateways only leaves issued by smgw-ca.crt. */
int pki_issued_by(X509 *cert, X509 *ca);

/* Copy the subject common name of 'cert' as UTF-8 into 'buf'. Returns 0,
 * -ENOENT (no common name), -EINVAL (more than one, an empty one, one that
 * is not valid text, or one holding a NUL byte, which could make
 * "EABC0000000001\0evil" look like a gateway) or -ENOSPC (it does not fit
 * into 'len' bytes with its NUL); on failure 'buf' holds an empty string
 * when len > 0. */
int pki_cert_cn(X509 *cert, char *buf, size_t len);

/* The SHA-256 fingerprint of the DER encoding of 'cert' as 64 lower-case hex
 * digits (what `openssl x509 -fingerprint -sha256` shows, without colons).
 * Returns 0 or -EIO (the certificate cannot be encoded); 'out' is then "". */
int pki_cert_sha256_hex(X509 *cert, char out[PKI_SHA256_HEX]);

/*
 * The fleet bundle (DIR/smgw/gateways.pem): for each gateway a CERTIFICATE
 * block followed by its PRIVATE KEY block (PKCS#8, unencrypted), in the
 * order they were issued. Text between blocks is ignored.
 *
 * Called once per entry, in file order: 'id' is the subject common name of
 * the certificate, 'cert_der' and 'key_der' the DER bytes of the two blocks.
 * All three are valid only during the call; copy what you keep. Only the
 * certificate's subject name has been parsed, and the key not at all (that
 * keeps reading 100,000 entries under a second), so an entry is only known
 * to be usable after pki_bundle_parse_entry(). A nonzero return stops the
 * reading and becomes pki_bundle_read()'s return value.
 */
typedef int (*pki_bundle_fn)(void *arg, const char *id, const uint8_t *cert_der, size_t cert_len,
                             const uint8_t *key_der, size_t key_len);

/* Read the bundle 'path', calling 'fn' for each entry. Returns 0 after the
 * last entry, the callback's nonzero value, -ENOENT, -EACCES or -EIO
 * (cannot open), or -EINVAL (malformed: a block that is not a certificate
 * or key, a certificate without its key, a key without a certificate, bad
 * base64, a certificate whose subject does not parse or lacks a usable
 * common name as pki_cert_cn() defines it, a block over PKI_DER_MAX bytes,
 * or no entry at all; 'err' names the file, the entry number and the
 * gateway before it). Entries before a malformed one have already been
 * passed to 'fn'. Duplicate ids are not detected here. */
int pki_bundle_read(const char *path, pki_bundle_fn fn, void *arg, char *err, size_t errlen);

/* Parse one entry's DER bytes (as given to a pki_bundle_fn) and check that
 * the key belongs to the certificate. On success '*cert' and '*key' are new
 * objects the caller frees with X509_free() and EVP_PKEY_free(). Returns 0,
 * -EINVAL (a part does not parse, or the key does not match) or -ENOMEM. */
int pki_bundle_parse_entry(const uint8_t *cert_der, size_t cert_len, const uint8_t *key_der,
                           size_t key_len, X509 **cert, EVP_PKEY **key, char *err, size_t errlen);

#endif
