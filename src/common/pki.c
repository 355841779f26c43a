/*
 * pki.c - loading certificates, keys, trust stores and the gateway bundle of
 * the test SM-PKI; see pki.h.
 */
#include "common/pki.h"

#include <errno.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The reason of the oldest OpenSSL error, for messages; clears the queue so
 * that it does not leak into the caller's next TLS call. */
static const char *ossl_reason(void)
{
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "no details from OpenSSL";
}

/* Open 'path' for reading as a BIO; errno tells why it cannot be opened. */
static int open_bio(const char *path, BIO **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    *out = NULL;
    if (f == NULL) {
        int e = errno;
        seterr(err, errlen, "%s: %s", path, strerror(e));
        return e == ENOENT || e == EACCES ? -e : -EIO;
    }
    *out = BIO_new_fp(f, BIO_CLOSE);
    if (*out == NULL) {
        fclose(f);
        seterr(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    return 0;
}

/* A private key is never encrypted here: refuse instead of prompting, and
 * note in '*u' (an int, may be NULL) that a pass phrase was wanted. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    if (u)
        *(int *)u = 1;
    return -1;
}

int pki_load_cert(const char *path, X509 **out, char *err, size_t errlen)
{
    BIO *b;
    int rc;

    *out = NULL;
    if ((rc = open_bio(path, &b, err, errlen)) != 0)
        return rc;
    *out = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
    if (*out == NULL) {
        seterr(err, errlen, "%s: no readable PEM certificate (%s)", path, ossl_reason());
        rc = -EINVAL;
    }
    BIO_free(b);
    return rc;
}

int pki_load_key(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
    BIO *b;
    int rc, encrypted = 0;

    *out = NULL;
    if ((rc = open_bio(path, &b, err, errlen)) != 0)
        return rc;
    *out = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, &encrypted);
    if (*out == NULL) {
        /* OpenSSL 3 only says "unsupported" here, whatever the file holds. */
        ERR_clear_error();
        if (encrypted)
            seterr(err, errlen, "%s: the private key is encrypted (clsm reads unencrypted keys)",
                   path);
        else
            seterr(err, errlen, "%s: holds no readable PEM private key", path);
        rc = -EINVAL;
    }
    BIO_free(b);
    return rc;
}

/* True when the last PEM read failed only because no block was left. */
static int pem_at_end(void)
{
    unsigned long e = ERR_peek_last_error();
    return ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
}

/* Add every certificate of one PEM file to 'store'. */
static int add_file(X509_STORE *store, const char *path, char *err, size_t errlen)
{
    BIO *b;
    X509 *x;
    size_t n = 0;
    int rc;

    if ((rc = open_bio(path, &b, err, errlen)) != 0)
        return rc;
    ERR_clear_error();
    while ((x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL)) != NULL) {
        int ok = X509_STORE_add_cert(store, x);
        X509_free(x);
        if (!ok) {
            seterr(err, errlen, "%s: certificate %zu: %s", path, n + 1, ossl_reason());
            rc = -ENOMEM;
            goto out;
        }
        n++;
    }
    if (!pem_at_end()) {
        seterr(err, errlen, "%s: certificate %zu is malformed (%s)", path, n + 1, ossl_reason());
        rc = -EINVAL;
    } else if (n == 0) {
        seterr(err, errlen, "%s: holds no PEM certificate", path);
        rc = -EINVAL;
    }
    ERR_clear_error();
out:
    BIO_free(b);
    return rc;
}

int pki_load_ca_store(const char *const *paths, size_t n, X509_STORE **out, char *err,
                      size_t errlen)
{
    X509_STORE *st;
    int rc = 0;

    *out = NULL;
    if (n == 0) {
        seterr(err, errlen, "no trusted certificate files given");
        return -EINVAL;
    }
    if ((st = X509_STORE_new()) == NULL) {
        seterr(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = add_file(st, paths[i], err, errlen);
    if (rc != 0) {
        X509_STORE_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

int pki_verify_cert(X509_STORE *store, X509 *cert, int purpose, int *verr, char *err, size_t errlen)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = 0, e, depth;
    char subject[256] = "?", cn[PKI_CN_MAX + 1];

    if (verr)
        *verr = 0;
    if (ctx == NULL || !X509_STORE_CTX_init(ctx, store, cert, NULL)) {
        seterr(err, errlen, "cannot set up verification: %s", ossl_reason());
        X509_STORE_CTX_free(ctx);
        return -ENOMEM;
    }
    if (purpose != 0 && !X509_STORE_CTX_set_purpose(ctx, purpose)) {
        seterr(err, errlen, "unknown certificate purpose %d", purpose);
        rc = -EINVAL;
        goto out;
    }
    if (X509_verify_cert(ctx) == 1)
        goto out;
    e = X509_STORE_CTX_get_error(ctx);
    depth = X509_STORE_CTX_get_error_depth(ctx);
    X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
    if (cur == NULL)
        cur = cert;
    if (pki_cert_cn(cur, cn, sizeof cn) == 0)
        snprintf(subject, sizeof subject, "CN=%s", cn);
    if (verr)
        *verr = e;
    seterr(err, errlen, "certificate %s: %s (depth %d)", subject, X509_verify_cert_error_string(e),
           depth);
    rc = -EACCES;
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    return rc;
}

int pki_issued_by(X509 *cert, X509 *ca)
{
    EVP_PKEY *k = X509_get0_pubkey(ca);
    int ok = k != NULL && X509_check_issued(ca, cert) == X509_V_OK && X509_verify(cert, k) == 1;
    ERR_clear_error();
    return ok;
}

/* The one common name of 'nm'; see pki_cert_cn(). */
static int name_cn(const X509_NAME *nm, char *buf, size_t len)
{
    unsigned char *u = NULL;
    int i, n, rc = 0;

    if (len > 0)
        buf[0] = '\0';
    i = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
    if (i < 0)
        return -ENOENT;
    if (X509_NAME_get_index_by_NID(nm, NID_commonName, i) >= 0)
        return -EINVAL;
    n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, i)));
    if (n <= 0) {
        ERR_clear_error();
        rc = -EINVAL;
    } else if (memchr(u, '\0', (size_t)n) != NULL) {
        rc = -EINVAL;
    } else if ((size_t)n >= len) {
        rc = -ENOSPC;
    } else {
        memcpy(buf, u, (size_t)n);
        buf[n] = '\0';
    }
    OPENSSL_free(u);
    return rc;
}

int pki_cert_cn(X509 *cert, char *buf, size_t len)
{
    return name_cn(X509_get_subject_name(cert), buf, len);
}

int pki_cert_sha256_hex(X509 *cert, char out[PKI_SHA256_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    out[0] = '\0';
    if (!X509_digest(cert, EVP_sha256(), md, &n) || n != 32) {
        ERR_clear_error();
        return -EIO;
    }
    hex_encode(md, n, out);
    return 0;
}

/* --- the fleet bundle ------------------------------------------------------ */

/* One PEM block as PEM_read_bio() returns it. */
struct block {
    char *name, *header;
    unsigned char *data;
    long len;
};

static void block_free(struct block *b)
{
    OPENSSL_free(b->name);
    OPENSSL_free(b->header);
    OPENSSL_free(b->data);
    memset(b, 0, sizeof *b);
}

/* Reading state: where we are, for messages. */
struct reader {
    const char *path;
    size_t entry;              /* 1-based number of the current entry */
    char prev[PKI_CN_MAX + 1]; /* id of the entry before, or "" */
    char id[PKI_CN_MAX + 1];   /* id of the current certificate */
    struct block cert;         /* the certificate waiting for its key */
    char *err;
    size_t errlen;
};

static int bad(struct reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Describe a malformed bundle: "<path>: entry N (after EABC...): <what>". */
static int bad(struct reader *r, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (r->prev[0])
        seterr(r->err, r->errlen, "%s: entry %zu (after %s): %s", r->path, r->entry, r->prev, what);
    else
        seterr(r->err, r->errlen, "%s: entry %zu: %s", r->path, r->entry, what);
    ERR_clear_error();
    return -EINVAL;
}

/* Step over one DER element at '*p' (not past 'end') with the given tag
 * and class; with 'enter' into its contents. Returns 0 or -1. */
static int der_step(const unsigned char **p, const unsigned char *end, int want_tag, int want_class,
                    int enter)
{
    const unsigned char *q = *p;
    long len;
    int tag, cls, r = ASN1_get_object(&q, &len, &tag, &cls, end - *p);
    if ((r & 0x81) != 0 || tag != want_tag || cls != want_class)
        return -1; /* malformed, indefinite length, or not the element wanted */
    *p = enter ? q : q + len;
    return 0;
}

/* The subject name of a DER certificate, found by walking the headers of
 * tbsCertificate. d2i_X509() would also decode the public key through
 * OpenSSL 3's provider decoders, which made reading 100,000 entries take
 * 15 s instead of half a second. The caller frees the name. */
static X509_NAME *der_subject(const unsigned char *der, long len)
{
    const unsigned char *p = der, *end = der + len, *q;
    long l;
    int tag, cls;

    if (der_step(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, 1) != 0 || /* Certificate */
        der_step(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, 1) != 0)   /* tbsCertificate */
        return NULL;
    /* An optional [0] EXPLICIT version comes first. */
    q = p;
    if ((ASN1_get_object(&q, &l, &tag, &cls, end - p) & 0x81) == 0 &&
        cls == V_ASN1_CONTEXT_SPECIFIC && tag == 0)
        p = q + l;
    if (der_step(&p, end, V_ASN1_INTEGER, V_ASN1_UNIVERSAL, 0) != 0 ||  /* serialNumber */
        der_step(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, 0) != 0 || /* signature */
        der_step(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, 0) != 0 || /* issuer */
        der_step(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, 0) != 0)   /* validity */
        return NULL;
    q = p;
    if (der_step(&q, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, 0) != 0) /* subject */
        return NULL;
    return d2i_X509_NAME(NULL, &p, q - p);
}

/* Keep a CERTIFICATE block after finding its common name. */
static int take_cert(struct reader *r, struct block *b)
{
    X509_NAME *nm;
    int rc;

    if (r->cert.data != NULL)
        return bad(r, "the certificate of %s is not followed by its private key", r->id);
    if ((nm = der_subject(b->data, b->len)) == NULL)
        return bad(r, "the certificate does not parse as DER");
    rc = name_cn(nm, r->id, sizeof r->id);
    X509_NAME_free(nm);
    if (rc != 0)
        return bad(r, "the certificate has no usable common name (%s)",
                   rc == -ENOSPC ? "over 64 bytes" : "missing, repeated or not text");
    r->cert = *b;
    memset(b, 0, sizeof *b);
    return 0;
}

/* A PRIVATE KEY block completes the entry. */
static int take_key(struct reader *r, struct block *b, pki_bundle_fn fn, void *arg)
{
    int rc;
    if (r->cert.data == NULL)
        return bad(r, "a private key without a certificate before it");
    rc = fn(arg, r->id, r->cert.data, (size_t)r->cert.len, b->data, (size_t)b->len);
    block_free(&r->cert);
    memcpy(r->prev, r->id, sizeof r->prev);
    r->entry++;
    return rc;
}

static int next_block(struct reader *r, struct block *b, pki_bundle_fn fn, void *arg)
{
    if (b->header != NULL && b->header[0] != '\0')
        return bad(r, "a PEM block with headers (encrypted keys are not supported)");
    if (b->len <= 0 || (unsigned long)b->len > PKI_DER_MAX)
        return bad(r, "a %.40s block of %ld bytes (1 to %u allowed)", b->name, b->len, PKI_DER_MAX);
    if (strcmp(b->name, PEM_STRING_X509) == 0)
        return take_cert(r, b);
    if (strcmp(b->name, PEM_STRING_PKCS8INF) == 0)
        return take_key(r, b, fn, arg);
    return bad(r, "unexpected PEM block \"%.40s\" (want CERTIFICATE, then PRIVATE KEY)", b->name);
}

int pki_bundle_read(const char *path, pki_bundle_fn fn, void *arg, char *err, size_t errlen)
{
    struct reader r = {.path = path, .entry = 1, .err = err, .errlen = errlen};
    struct block b = {0};
    BIO *bio;
    int rc;

    if ((rc = open_bio(path, &bio, err, errlen)) != 0)
        return rc;
    ERR_clear_error();
    for (;;) {
        if (!PEM_read_bio(bio, &b.name, &b.header, &b.data, &b.len)) {
            if (!pem_at_end())
                rc = bad(&r, "malformed PEM (%s)", ossl_reason());
            else if (r.cert.data != NULL)
                rc = bad(&r, "the certificate of %s is not followed by its private key", r.id);
            else if (r.entry == 1)
                rc = bad(&r, "no gateway credentials in the file");
            break;
        }
        rc = next_block(&r, &b, fn, arg);
        block_free(&b);
        if (rc != 0)
            break;
    }
    ERR_clear_error();
    block_free(&b);
    block_free(&r.cert);
    BIO_free(bio);
    return rc;
}

int pki_bundle_parse_entry(const uint8_t *cert_der, size_t cert_len, const uint8_t *key_der,
                           size_t key_len, X509 **cert, EVP_PKEY **key, char *err, size_t errlen)
{
    const unsigned char *p = cert_der;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    int rc = 0;

    *cert = NULL;
    *key = NULL;
    if (cert_len > PKI_DER_MAX || key_len > PKI_DER_MAX) {
        seterr(err, errlen, "entry larger than %u bytes", PKI_DER_MAX);
        return -EINVAL;
    }
    *cert = d2i_X509(NULL, &p, (long)cert_len);
    if (*cert == NULL || p != cert_der + cert_len) {
        seterr(err, errlen, "the certificate does not parse as DER (%s)", ossl_reason());
        rc = -EINVAL;
        goto out;
    }
    p = key_der;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)key_len);
    if (p8 == NULL || p != key_der + key_len || (*key = EVP_PKCS82PKEY(p8)) == NULL) {
        seterr(err, errlen, "the private key does not parse as PKCS#8 DER (%s)", ossl_reason());
        rc = -EINVAL;
        goto out;
    }
    if (X509_check_private_key(*cert, *key) != 1) {
        seterr(err, errlen, "the private key does not belong to the certificate");
        rc = -EINVAL;
    }
out:
    ERR_clear_error();
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (rc != 0) {
        X509_free(*cert);
        EVP_PKEY_free(*key);
        *cert = NULL;
        *key = NULL;
    }
    return rc;
}
