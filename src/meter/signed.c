/*
 * signed.c - CMS SignedData of meter data; see signed.h.
 */
#include "meter/signed.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pki.h"

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    ERR_clear_error();
    return rc;
}

int signed_open(const uint8_t *der, size_t len, X509_STORE *store, X509 *smgw_ca, X509 *peer,
                char signer[16], char **content, size_t *content_len, char *err, size_t errlen)
{
    CMS_ContentInfo *cms = NULL;
    STACK_OF(X509) *signers = NULL;
    BIO *out = NULL;
    int rc;

    *content = NULL;
    *content_len = 0;
    signer[0] = '\0';
    err[0] = '\0';
    if (len == 0 || len > SIGNED_MAX_BYTES)
        return fail(err, errlen, -EINVAL, "the message must be 1..%u bytes of CMS (DER)",
                    SIGNED_MAX_BYTES);
    const unsigned char *p = der;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    if (cms == NULL || p != der + len) {
        rc = fail(err, errlen, -EINVAL, "not a DER-encoded CMS message%s",
                  cms ? " (bytes after its end)" : "");
        goto out;
    }
    if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
        rc = fail(err, errlen, -EINVAL, "the CMS message is not SignedData");
        goto out;
    }
    if (OBJ_obj2nid(CMS_get0_eContentType(cms)) != NID_pkcs7_data) {
        rc = fail(err, errlen, -EINVAL, "the signed content is not of type id-data");
        goto out;
    }
    if (sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) != 1) {
        rc = fail(err, errlen, -EACCES, "the message must have exactly one signer, it has %d",
                  sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)));
        goto out;
    }
    ASN1_OCTET_STRING **pos = CMS_get0_content(cms);
    if (pos == NULL || *pos == NULL) {
        rc = fail(err, errlen, -EINVAL, "the content is detached; it must be in the message");
        goto out;
    }
    out = BIO_new(BIO_s_mem());
    if (out == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    /* The signature here; the signer's chain below with our own rules (a
     * gateway certificate has no S/MIME purpose). */
    if (CMS_verify(cms, NULL, NULL, NULL, out, CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) != 1) {
        unsigned long e = ERR_peek_last_error();
        char why[200];
        ERR_error_string_n(e, why, sizeof why);
        rc = fail(err, errlen, -EACCES, "the signature does not verify (%s)",
                  e ? ERR_reason_error_string(e) ? ERR_reason_error_string(e) : why
                    : "no reason given");
        goto out;
    }
    signers = CMS_get0_signers(cms);
    X509 *s = signers && sk_X509_num(signers) == 1 ? sk_X509_value(signers, 0) : NULL;
    if (s == NULL) {
        rc = fail(err, errlen, -EACCES, "the signer's certificate is not in the message");
        goto out;
    }
    char why[300];
    int verr = 0;
    if ((rc = pki_verify_cert(store, s, 0, &verr, why, sizeof why)) != 0) {
        rc = fail(err, errlen, rc == -ENOMEM ? -ENOMEM : -EACCES,
                  "the signer's certificate is not valid: %s", why);
        goto out;
    }
    if (!pki_issued_by(s, smgw_ca)) {
        rc = fail(err, errlen, -EACCES,
                  "the signer's certificate was not issued by the SMGW sub-CA");
        goto out;
    }
    if (pki_cert_cn(s, signer, 16) != 0) {
        rc = fail(err, errlen, -EACCES, "the signer's certificate names no gateway");
        goto out;
    }
    if (peer && X509_cmp(s, peer) != 0) {
        rc = fail(err, errlen, -EACCES, "the signer %s is not the gateway of this connection",
                  signer);
        goto out;
    }
    char *data;
    long n = BIO_get_mem_data(out, &data);
    *content = malloc((size_t)n + 1);
    if (*content == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(*content, data, (size_t)n);
    (*content)[n] = '\0';
    *content_len = (size_t)n;
    rc = 0;
out:
    if (rc != 0 && rc != -ENOMEM && err[0] == '\0')
        fail(err, errlen, rc, "the message is refused");
    if (rc == -ENOMEM)
        fail(err, errlen, rc, "out of memory");
    if (rc != 0)
        signer[0] = '\0';
    sk_X509_free(signers);
    BIO_free(out);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return rc;
}
