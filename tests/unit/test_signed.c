/*
 * test_signed.c - CMS SignedData of meter data (meter/signed.h) against a
 * PKI that the real tool (CLSM_PKI_TOOL, else $CLSM_BUILD_DIR/clsm-pki)
 * makes in the group setup: a message of the connection's gateway opens;
 * a tampered one, another gateway's, an expired signer, a signer of the
 * wrong sub-CA or of another PKI, detached content, two signers, a missing
 * signer certificate and bytes that are no CMS are refused with their
 * reason.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/pki.h"
#include "meter/signed.h"

static char dir[64], other[96], tool[1024];
static X509_STORE *store;
static X509 *smgw_ca;

static const char DOC[] = "<MeterData xmlns='urn:clsm:cosem-xml:1'>the signed words</MeterData>";

static int run_tool(const char *const *args)
{
    char *argv[16];
    size_t n = 0;
    int status;
    argv[n++] = tool;
    while (*args && n < 15)
        argv[n++] = (char *)*args++;
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        execv(tool, argv);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *path(const char *d, const char *name)
{
    static char buf[4][256];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", d, name);
    return p;
}

static X509 *cert(const char *d, const char *name)
{
    X509 *x = NULL;
    char err[PKI_ERRLEN];
    assert_int_equal(pki_load_cert(path(d, name), &x, err, sizeof err), 0);
    return x;
}

static EVP_PKEY *key(const char *d, const char *name)
{
    EVP_PKEY *k = NULL;
    char err[PKI_ERRLEN];
    assert_int_equal(pki_load_key(path(d, name), &k, err, sizeof err), 0);
    return k;
}

static int setup(void **state)
{
    const char *t = getenv("CLSM_PKI_TOOL"), *b = getenv("CLSM_BUILD_DIR");
    char err[PKI_ERRLEN];
    (void)state;
    snprintf(tool, sizeof tool, "%s", t ? t : "");
    if (t == NULL)
        snprintf(tool, sizeof tool, "%s/clsm-pki", b ? b : "build");
    snprintf(dir, sizeof dir, "/tmp/clsm-signed-XXXXXX");
    if (access(tool, X_OK) != 0 || mkdtemp(dir) == NULL)
        return -1;
    snprintf(other, sizeof other, "%s/other", dir);
    const char *init[] = {"init", dir, NULL};
    const char *gw1[] = {"leaf", dir, "--ca", "smgw", "--cn", "EABC0000000001", NULL};
    const char *gw2[] = {"leaf", dir, "--ca", "smgw", "--cn", "EABC0000000002", NULL};
    const char *old[] = {"leaf",           dir,           "--ca", "smgw", "--cn",
                         "EABC0000000003", "--not-after", "-1",   NULL};
    const char *emt[] = {"leaf", dir, "--ca", "emt", "--cn", "EABC0000000004", NULL};
    const char *init2[] = {"init", other, NULL};
    const char *gw9[] = {"leaf", other, "--ca", "smgw", "--cn", "EABC0000000001", NULL};
    if (run_tool(init) || run_tool(gw1) || run_tool(gw2) || run_tool(old) || run_tool(emt) ||
        run_tool(init2) || run_tool(gw9))
        return -1;
    const char *chain[] = {path(dir, "smgw-chain.pem")};
    if (pki_load_ca_store(chain, 1, &store, err, sizeof err) != 0 ||
        pki_load_cert(path(dir, "smgw-ca.crt"), &smgw_ca, err, sizeof err) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    X509_STORE_free(store);
    X509_free(smgw_ca);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The DER of 'doc' signed by d/smgw|emt/<cn>; 'flags' as for CMS_sign. */
static uint8_t *sign_by(const char *d, const char *leaf, const char *doc, unsigned flags,
                        size_t *len)
{
    char crt[128], k[128];
    snprintf(crt, sizeof crt, "%s.crt", leaf);
    snprintf(k, sizeof k, "%s.key", leaf);
    X509 *x = cert(d, crt);
    EVP_PKEY *pk = key(d, k);
    BIO *in = BIO_new_mem_buf(doc, (int)strlen(doc));
    CMS_ContentInfo *cms = CMS_sign(x, pk, NULL, in, flags | CMS_BINARY);
    assert_non_null(cms);
    unsigned char *der = NULL;
    int n = i2d_CMS_ContentInfo(cms, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    uint8_t *out = malloc(*len);
    memcpy(out, der, *len);
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    EVP_PKEY_free(pk);
    X509_free(x);
    return out;
}

static int open_msg(const uint8_t *der, size_t len, X509 *peer, char *signer, char **content,
                    char *err, size_t errlen)
{
    size_t clen;
    int rc = signed_open(der, len, store, smgw_ca, peer, signer, content, &clen, err, errlen);
    if (rc == 0)
        assert_int_equal(clen, strlen(*content));
    else
        assert_null(*content);
    return rc;
}

static void expect_refusal(const uint8_t *der, size_t len, X509 *peer, int want_rc,
                           const char *reason)
{
    char signer[16], err[400], *content = NULL;
    int rc = open_msg(der, len, peer, signer, &content, err, sizeof err);
    if (rc != want_rc || strstr(err, reason) == NULL)
        fail_msg("rc %d, \"%s\"; expected %d, \"%s\"", rc, err, want_rc, reason);
    assert_string_equal(signer, "");
}

static void test_opens_for_its_gateway(void **state)
{
    (void)state;
    size_t len;
    uint8_t *der = sign_by(dir, "smgw/EABC0000000001", DOC, 0, &len);
    X509 *peer = cert(dir, "smgw/EABC0000000001.crt");
    char signer[16], err[400], *content = NULL;
    assert_int_equal(open_msg(der, len, peer, signer, &content, err, sizeof err), 0);
    assert_string_equal(content, DOC);
    assert_string_equal(signer, "EABC0000000001");
    free(content);
    /* Without a connection to compare with (a replay from the store). */
    assert_int_equal(open_msg(der, len, NULL, signer, &content, err, sizeof err), 0);
    free(content);
    X509_free(peer);
    free(der);
}

static void test_tampered_and_foreign(void **state)
{
    (void)state;
    size_t len;
    uint8_t *der = sign_by(dir, "smgw/EABC0000000001", DOC, 0, &len);
    X509 *peer = cert(dir, "smgw/EABC0000000001.crt"),
         *peer2 = cert(dir, "smgw/EABC0000000002.crt");
    /* Another gateway's connection. */
    expect_refusal(der, len, peer2, -EACCES, "not the gateway of this connection");
    /* One byte of the content changed. */
    uint8_t *at = NULL;
    for (size_t i = 0; i + 6 <= len && at == NULL; i++)
        if (memcmp(der + i, "signed", 6) == 0)
            at = der + i;
    assert_non_null(at);
    at[0] = 'S';
    expect_refusal(der, len, peer, -EACCES, "signature does not verify");
    free(der);
    /* Signed with keys the SMGW sub-CA never certified. */
    der = sign_by(dir, "smgw/EABC0000000003", DOC, 0, &len);
    expect_refusal(der, len, NULL, -EACCES, "expired");
    free(der);
    der = sign_by(dir, "emt/EABC0000000004", DOC, 0, &len);
    expect_refusal(der, len, NULL, -EACCES, "unable to get local issuer");
    /* Even where the trust file also holds the EMT sub-CA (a store of
     * every chain), only the SMGW sub-CA issues gateways. */
    X509_STORE *wide = NULL;
    char signer[16], err[400], *content = NULL;
    size_t clen;
    const char *chains[] = {path(dir, "smgw-chain.pem"), path(dir, "emt-chain.pem")};
    assert_int_equal(pki_load_ca_store(chains, 2, &wide, err, sizeof err), 0);
    assert_int_equal(
        signed_open(der, len, wide, smgw_ca, NULL, signer, &content, &clen, err, sizeof err),
        -EACCES);
    assert_non_null(strstr(err, "not issued by the SMGW sub-CA"));
    assert_null(content);
    X509_STORE_free(wide);
    free(der);
    der = sign_by(other, "smgw/EABC0000000001", DOC, 0, &len);
    expect_refusal(der, len, peer, -EACCES, "not valid");
    free(der);
    X509_free(peer);
    X509_free(peer2);
}

static void test_shapes(void **state)
{
    (void)state;
    size_t len;
    /* Detached content, no signer certificate. */
    uint8_t *der = sign_by(dir, "smgw/EABC0000000001", DOC, CMS_DETACHED, &len);
    expect_refusal(der, len, NULL, -EINVAL, "detached");
    free(der);
    der = sign_by(dir, "smgw/EABC0000000001", DOC, CMS_NOCERTS, &len);
    expect_refusal(der, len, NULL, -EACCES, "signature does not verify");
    free(der);
    /* Two signers. */
    X509 *x1 = cert(dir, "smgw/EABC0000000001.crt"), *x2 = cert(dir, "smgw/EABC0000000002.crt");
    EVP_PKEY *k1 = key(dir, "smgw/EABC0000000001.key"), *k2 = key(dir, "smgw/EABC0000000002.key");
    BIO *in = BIO_new_mem_buf(DOC, (int)strlen(DOC));
    CMS_ContentInfo *cms = CMS_sign(NULL, NULL, NULL, NULL, CMS_PARTIAL | CMS_BINARY);
    assert_non_null(CMS_add1_signer(cms, x1, k1, EVP_sha256(), 0));
    assert_non_null(CMS_add1_signer(cms, x2, k2, EVP_sha256(), 0));
    assert_int_equal(CMS_final(cms, in, NULL, CMS_BINARY), 1);
    unsigned char *d = NULL;
    int n = i2d_CMS_ContentInfo(cms, &d);
    expect_refusal(d, (size_t)n, NULL, -EACCES, "exactly one signer");
    /* Bytes after the message. */
    uint8_t *longer = malloc((size_t)n + 1);
    memcpy(longer, d, (size_t)n);
    longer[n] = 0;
    expect_refusal(longer, (size_t)n + 1, NULL, -EINVAL, "bytes after its end");
    free(longer);
    OPENSSL_free(d);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    /* Not SignedData: plain data. */
    in = BIO_new_mem_buf(DOC, (int)strlen(DOC));
    cms = CMS_data_create(in, CMS_BINARY);
    d = NULL;
    n = i2d_CMS_ContentInfo(cms, &d);
    expect_refusal(d, (size_t)n, NULL, -EINVAL, "not SignedData");
    OPENSSL_free(d);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    /* No CMS at all. */
    expect_refusal((const uint8_t *)DOC, strlen(DOC), NULL, -EINVAL, "not a DER-encoded CMS");
    expect_refusal((const uint8_t *)"", 0, NULL, -EINVAL, "1..");
    X509_free(x1);
    X509_free(x2);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opens_for_its_gateway),
        cmocka_unit_test(test_tampered_and_foreign),
        cmocka_unit_test(test_shapes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
