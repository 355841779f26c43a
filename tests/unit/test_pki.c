/*
 * test_pki.c - loading the test PKI: certificates, keys, trust stores,
 * verification, names, fingerprints and the gateway bundle, against two PKIs
 * that the real tool (CLSM_PKI_TOOL, else $CLSM_BUILD_DIR/clsm-pki) makes in
 * the group setup.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/pki.h"

#define NGW 5

static char dir[64];      /* brainpoolP256r1, the default */
static char dir_nist[80]; /* prime256v1 */
static char tool[1024];
static char err[PKI_ERRLEN];

/* --- fixtures ---------------------------------------------------------------- */

/* Run the tool with a NULL-terminated argument list; returns its exit status. */
static int run_tool(const char *const *args)
{
    char *argv[16];
    size_t n = 0;
    int status;
    pid_t pid;

    argv[n++] = tool;
    while (*args && n < 15)
        argv[n++] = (char *)*args++;
    argv[n] = NULL;
    pid = fork();
    if (pid == 0) {
        execv(tool, argv);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *path_in(const char *d, const char *name)
{
    static char buf[4][256];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", d, name);
    return p;
}

static int setup(void **state)
{
    const char *t = getenv("CLSM_PKI_TOOL"), *b = getenv("CLSM_BUILD_DIR");
    (void)state;
    if (t)
        snprintf(tool, sizeof tool, "%s", t);
    else
        snprintf(tool, sizeof tool, "%s/clsm-pki", b ? b : "build");
    if (access(tool, X_OK) != 0) {
        fprintf(stderr, "test_pki: %s is not executable; set CLSM_PKI_TOOL\n", tool);
        return -1;
    }
    snprintf(dir, sizeof dir, "/tmp/clsm-pki-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(dir_nist, sizeof dir_nist, "%s/nist", dir);
    const char *init[] = {"init", dir, "--gwa", "GWA-01", NULL};
    const char *smgw[] = {"smgw", dir, "--count", "5", "--prefix", "ETST", "--jobs", "2", NULL};
    const char *expired[] = {"leaf",           dir,           "--ca", "smgw", "--cn",
                             "ETST0000000099", "--not-after", "-1",   NULL};
    const char *wrong[] = {"leaf", dir, "--ca", "emt", "--cn", "ETST0000000098", NULL};
    const char *init2[] = {"init", dir_nist, "--curve", "prime256v1", NULL};
    const char *smgw2[] = {"smgw", dir_nist, "--count", "2", "--prefix", "ENST", NULL};
    if (run_tool(init) != 0 || run_tool(smgw) != 0 || run_tool(expired) != 0 ||
        run_tool(wrong) != 0 || run_tool(init2) != 0 || run_tool(smgw2) != 0) {
        fprintf(stderr, "test_pki: %s failed to make the fixtures in %s\n", tool, dir);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static X509 *cert_at(const char *path)
{
    X509 *x = NULL;
    if (pki_load_cert(path, &x, err, sizeof err) != 0)
        fail_msg("%s", err);
    return x;
}

static X509_STORE *store_of(const char *path)
{
    X509_STORE *st = NULL;
    const char *paths[] = {path};
    if (pki_load_ca_store(paths, 1, &st, err, sizeof err) != 0)
        fail_msg("%s", err);
    return st;
}

/* X509_verify_cert() itself, with the strict RFC 5280 checks on, so that the
 * shape of the certificates is tested too. Returns the X509_V_ERR code. */
static int verify_direct(X509_STORE *st, X509 *x)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_CTX_init(ctx, st, x, NULL), 1);
    X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_X509_STRICT);
    int ok = X509_verify_cert(ctx);
    int e = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    assert_true(ok == 1 ? e == X509_V_OK : e != X509_V_OK);
    return e;
}

/* Bundle entries collected by the reader. */
struct entry {
    char id[PKI_CN_MAX + 1];
    uint8_t cert[PKI_DER_MAX], key[PKI_DER_MAX];
    size_t cert_len, key_len;
};

struct collect {
    struct entry e[16];
    size_t n;
    int stop_at; /* return 7 when entry 'stop_at' (1-based) arrives; 0 never */
};

static int collect_fn(void *arg, const char *id, const uint8_t *cert_der, size_t cert_len,
                      const uint8_t *key_der, size_t key_len)
{
    struct collect *c = arg;
    struct entry *e;
    if (c->n == 16)
        return -E2BIG;
    e = &c->e[c->n++];
    snprintf(e->id, sizeof e->id, "%s", id);
    memcpy(e->cert, cert_der, cert_len);
    memcpy(e->key, key_der, key_len);
    e->cert_len = cert_len;
    e->key_len = key_len;
    return c->stop_at && (size_t)c->stop_at == c->n ? 7 : 0;
}

static struct collect *read_bundle(const char *d)
{
    struct collect *c = calloc(1, sizeof *c);
    assert_non_null(c);
    if (pki_bundle_read(path_in(d, "smgw/gateways.pem"), collect_fn, c, err, sizeof err) != 0)
        fail_msg("%s", err);
    return c;
}

static X509 *gateway_cert(const char *d, size_t i)
{
    struct collect *c = read_bundle(d);
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    assert_true(i < c->n);
    assert_int_equal(pki_bundle_parse_entry(c->e[i].cert, c->e[i].cert_len, c->e[i].key,
                                            c->e[i].key_len, &x, &k, err, sizeof err),
                     0);
    EVP_PKEY_free(k);
    free(c);
    return x;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 1 << 20);
    assert_non_null(f);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    return buf;
}

static void spit(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* The 'n'th PEM block (0-based) of 'text', with its length. */
static const char *block(const char *text, size_t n, size_t *len)
{
    const char *p = text;
    for (size_t i = 0; i <= n; i++) {
        p = strstr(i ? p + 1 : p, "-----BEGIN ");
        assert_non_null(p);
    }
    const char *end = strstr(p, "-----END ");
    assert_non_null(end);
    end = strchr(end, '\n');
    assert_non_null(end);
    *len = (size_t)(end + 1 - p);
    return p;
}

/* --- loading ----------------------------------------------------------------- */

static void test_load_cert_and_key(void **state)
{
    X509 *x = cert_at(path_in(dir, "emt/clsmd.crt"));
    EVP_PKEY *k = NULL;
    char cn[PKI_CN_MAX + 1];
    (void)state;
    assert_int_equal(pki_load_key(path_in(dir, "emt/clsmd.key"), &k, err, sizeof err), 0);
    assert_int_equal(X509_check_private_key(x, k), 1);
    assert_int_equal(pki_cert_cn(x, cn, sizeof cn), 0);
    assert_string_equal(cn, "clsmd"); /* the first certificate of the chain file */
    X509_free(x);
    EVP_PKEY_free(k);
}

static void test_load_errors(void **state)
{
    X509 *x = (X509 *)1;
    EVP_PKEY *k = (EVP_PKEY *)1;
    (void)state;
    assert_int_equal(pki_load_cert(path_in(dir, "nope.crt"), &x, err, sizeof err), -ENOENT);
    assert_null(x);
    assert_non_null(strstr(err, "nope.crt"));
    assert_non_null(strstr(err, "No such file"));

    assert_int_equal(pki_load_cert(path_in(dir, "root.key"), &x, err, sizeof err), -EINVAL);
    assert_null(x);
    assert_non_null(strstr(err, "root.key: no readable PEM certificate"));

    assert_int_equal(pki_load_key(path_in(dir, "root.crt"), &k, err, sizeof err), -EINVAL);
    assert_null(k);
    assert_non_null(strstr(err, "root.crt: holds no readable PEM private key"));

    /* An encrypted key is refused, not prompted for. */
    EVP_PKEY *real = NULL;
    assert_int_equal(pki_load_key(path_in(dir, "root.key"), &real, err, sizeof err), 0);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(
        PEM_write_bio_PKCS8PrivateKey(b, real, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)"secret"),
        1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    spit(path_in(dir, "encrypted.key"), data, (size_t)n);
    BIO_free(b);
    EVP_PKEY_free(real);
    assert_int_equal(pki_load_key(path_in(dir, "encrypted.key"), &k, err, sizeof err), -EINVAL);
    assert_null(k);
    assert_non_null(strstr(err, "encrypted.key: the private key is encrypted"));
}

static void test_ca_store_errors(void **state)
{
    X509_STORE *st = (X509_STORE *)1;
    const char *two[] = {path_in(dir, "smgw-chain.pem"), path_in(dir, "missing.pem")};
    const char *keyonly[] = {path_in(dir, "root.key")};
    size_t len, blen;
    (void)state;

    assert_int_equal(pki_load_ca_store(two, 0, &st, err, sizeof err), -EINVAL);
    assert_null(st);
    assert_int_equal(pki_load_ca_store(two, 2, &st, err, sizeof err), -ENOENT);
    assert_null(st);
    assert_non_null(strstr(err, "missing.pem"));
    assert_int_equal(pki_load_ca_store(keyonly, 1, &st, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "root.key: holds no PEM certificate"));

    /* The second certificate of a chain file with its base64 broken. */
    char *text = slurp(path_in(dir, "smgw-chain.pem"), &len);
    const char *b2 = block(text, 1, &blen);
    text[(size_t)(b2 - text) + 100] = '!';
    const char *broken[] = {path_in(dir, "broken-chain.pem")};
    spit(broken[0], text, len);
    free(text);
    assert_int_equal(pki_load_ca_store(broken, 1, &st, err, sizeof err), -EINVAL);
    assert_null(st);
    assert_non_null(strstr(err, "broken-chain.pem: certificate 2 is malformed"));
}

/* --- verification ------------------------------------------------------------ */

static void test_gateway_verifies(void **state)
{
    X509_STORE *st = store_of(path_in(dir, "smgw-chain.pem"));
    X509 *x = gateway_cert(dir, 0);
    int verr = -1;
    (void)state;
    assert_int_equal(verify_direct(st, x), X509_V_OK);
    assert_int_equal(pki_verify_cert(st, x, X509_PURPOSE_SSL_CLIENT, &verr, err, sizeof err), 0);
    assert_int_equal(verr, 0);
    /* A gateway certificate is for TLS clients only. */
    assert_int_equal(pki_verify_cert(st, x, X509_PURPOSE_SSL_SERVER, &verr, err, sizeof err),
                     -EACCES);
    assert_int_equal(verr, X509_V_ERR_INVALID_PURPOSE);
    X509_free(x);
    X509_STORE_free(st);
}

static void test_emt_and_gwa_verify(void **state)
{
    static const char *const which[][2] = {{"emt-chain.pem", "emt/clsmd.crt"},
                                           {"gwa-chain.pem", "gwa/GWA-01.crt"}};
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        X509_STORE *st = store_of(path_in(dir, which[i][0]));
        X509 *x = cert_at(path_in(dir, which[i][1]));
        assert_int_equal(verify_direct(st, x), X509_V_OK);
        /* Both are TLS servers (for gateways, for clsmd) and TLS clients
         * (clsmd towards GWAs, GWAs towards gateways). */
        assert_int_equal(pki_verify_cert(st, x, X509_PURPOSE_SSL_SERVER, NULL, err, sizeof err), 0);
        assert_int_equal(pki_verify_cert(st, x, X509_PURPOSE_SSL_CLIENT, NULL, err, sizeof err), 0);
        X509_free(x);
        X509_STORE_free(st);
    }
    /* An EMT certificate does not verify against the GWA chain. */
    X509_STORE *gwa = store_of(path_in(dir, "gwa-chain.pem"));
    X509 *emt = cert_at(path_in(dir, "emt/clsmd.crt"));
    assert_int_equal(verify_direct(gwa, emt), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    X509_free(emt);
    X509_STORE_free(gwa);
}

static void test_gateway_not_against_emt_chain(void **state)
{
    X509_STORE *st = store_of(path_in(dir, "emt-chain.pem"));
    X509 *x = gateway_cert(dir, 0);
    int verr = 0;
    (void)state;
    assert_int_equal(verify_direct(st, x), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    assert_int_equal(pki_verify_cert(st, x, 0, &verr, err, sizeof err), -EACCES);
    assert_int_equal(verr, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    assert_non_null(strstr(err, "CN=ETST0000000001"));
    X509_free(x);
    X509_STORE_free(st);
}

/* Trusting the root trusts every sub-CA that a peer sends along; the
 * issuing sub-CA is pinned with pki_issued_by(). */
static void test_issuing_ca_is_pinned(void **state)
{
    X509_STORE *st = store_of(path_in(dir, "smgw-chain.pem"));
    X509 *smgw_ca = cert_at(path_in(dir, "smgw-ca.crt"));
    X509 *emt_ca = cert_at(path_in(dir, "emt-ca.crt"));
    X509 *root = cert_at(path_in(dir, "root.crt"));
    X509 *gw = gateway_cert(dir, 0);
    X509 *wrong = cert_at(path_in(dir, "emt/ETST0000000098.crt"));
    STACK_OF(X509) *sent = sk_X509_new_null();
    (void)state;

    assert_true(pki_issued_by(gw, smgw_ca));
    assert_false(pki_issued_by(gw, emt_ca));
    assert_false(pki_issued_by(gw, root));
    assert_true(pki_issued_by(smgw_ca, root));
    assert_true(pki_issued_by(wrong, emt_ca));
    assert_false(pki_issued_by(wrong, smgw_ca));

    /* Right names and key id, but a signature the sub-CA never made. */
    unsigned char *der = NULL;
    int n = i2d_X509(gw, &der);
    assert_true(n > 0);
    der[n - 1] ^= 1;
    const unsigned char *p = der;
    X509 *forged = d2i_X509(NULL, &p, n);
    assert_non_null(forged);
    assert_false(pki_issued_by(forged, smgw_ca));
    X509_free(forged);
    OPENSSL_free(der);

    /* A gateway-like name from the EMT sub-CA verifies against the SMGW
     * chain when the EMT sub-CA comes along, as a TLS client sends it. */
    assert_int_equal(verify_direct(st, wrong), X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    assert_int_equal(sk_X509_push(sent, emt_ca), 1);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_CTX_init(ctx, st, wrong, sent), 1);
    assert_int_equal(X509_verify_cert(ctx), 1);
    X509_STORE_CTX_free(ctx);

    sk_X509_free(sent);
    X509_free(wrong);
    X509_free(gw);
    X509_free(root);
    X509_free(emt_ca);
    X509_free(smgw_ca);
    X509_STORE_free(st);
}

static void test_expired_leaf(void **state)
{
    X509_STORE *st = store_of(path_in(dir, "smgw-chain.pem"));
    X509 *x = cert_at(path_in(dir, "smgw/ETST0000000099.crt"));
    int verr = 0;
    (void)state;
    assert_int_equal(verify_direct(st, x), X509_V_ERR_CERT_HAS_EXPIRED);
    assert_int_equal(pki_verify_cert(st, x, X509_PURPOSE_SSL_CLIENT, &verr, err, sizeof err),
                     -EACCES);
    assert_int_equal(verr, X509_V_ERR_CERT_HAS_EXPIRED);
    assert_non_null(strstr(err, "certificate has expired"));
    assert_non_null(strstr(err, "depth 0"));
    /* Expired yesterday: notAfter lies between two and zero days ago. */
    assert_true(X509_cmp_time(X509_get0_notAfter(x), NULL) < 0);
    time_t two_days_ago = time(NULL) - 2 * 86400;
    assert_true(X509_cmp_time(X509_get0_notAfter(x), &two_days_ago) > 0);
    X509_free(x);
    X509_STORE_free(st);
}

/* --- names and fingerprints ---------------------------------------------------- */

static X509 *named(const char *cn1, int len1, const char *cn2)
{
    X509 *x = X509_new();
    X509_NAME *nm = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC,
                                                (const unsigned char *)"clsm test PKI", -1, -1, 0),
                     1);
    if (cn1)
        assert_int_equal(X509_NAME_add_entry_by_NID(nm, NID_commonName, V_ASN1_UTF8STRING,
                                                    (const unsigned char *)cn1, len1, -1, 0),
                         1);
    if (cn2)
        assert_int_equal(X509_NAME_add_entry_by_NID(nm, NID_commonName, MBSTRING_ASC,
                                                    (const unsigned char *)cn2, -1, -1, 0),
                         1);
    return x;
}

static void test_cn(void **state)
{
    char cn[PKI_CN_MAX + 1], small[14];
    X509 *gw = gateway_cert(dir, 2);
    (void)state;
    assert_int_equal(pki_cert_cn(gw, cn, sizeof cn), 0);
    assert_string_equal(cn, "ETST0000000003");
    assert_int_equal(pki_cert_cn(gw, small, sizeof small), -ENOSPC); /* 14 bytes + NUL */
    assert_string_equal(small, "");
    X509_free(gw);

    X509 *none = named(NULL, 0, NULL);
    assert_int_equal(pki_cert_cn(none, cn, sizeof cn), -ENOENT);
    X509_free(none);

    X509 *nul = named("EABC0000000001\0evil", 19, NULL);
    assert_int_equal(pki_cert_cn(nul, cn, sizeof cn), -EINVAL);
    assert_string_equal(cn, "");
    X509_free(nul);

    X509 *two = named("EABC0000000001", -1, "EABC0000000002");
    assert_int_equal(pki_cert_cn(two, cn, sizeof cn), -EINVAL);
    X509_free(two);

    X509 *empty = named("", 0, NULL);
    assert_int_equal(pki_cert_cn(empty, cn, sizeof cn), -EINVAL);
    X509_free(empty);

    X509 *utf8 = named("Gr\xc3\xbc\xc3\x9f Gott", -1, NULL);
    assert_int_equal(pki_cert_cn(utf8, cn, sizeof cn), 0);
    assert_string_equal(cn, "Gr\xc3\xbc\xc3\x9f Gott");
    X509_free(utf8);
}

static void test_fingerprint(void **state)
{
    struct collect *c = read_bundle(dir);
    char hex[PKI_SHA256_HEX], want[PKI_SHA256_HEX], prev[PKI_SHA256_HEX] = "";
    (void)state;
    for (size_t i = 0; i < c->n; i++) {
        unsigned char md[32];
        X509 *x = NULL;
        EVP_PKEY *k = NULL;
        /* Independently: SHA-256 of the DER bytes as they stand in the file. */
        assert_int_equal(EVP_Digest(c->e[i].cert, c->e[i].cert_len, md, NULL, EVP_sha256(), NULL),
                         1);
        for (size_t j = 0; j < 32; j++)
            snprintf(want + 2 * j, 3, "%02x", md[j]);
        assert_int_equal(pki_bundle_parse_entry(c->e[i].cert, c->e[i].cert_len, c->e[i].key,
                                                c->e[i].key_len, &x, &k, err, sizeof err),
                         0);
        assert_int_equal(pki_cert_sha256_hex(x, hex), 0);
        assert_int_equal(strlen(hex), 64);
        assert_string_equal(hex, want);
        assert_string_not_equal(hex, prev);
        memcpy(prev, hex, sizeof prev);
        X509_free(x);
        EVP_PKEY_free(k);
    }
    free(c);
}

/* --- the bundle -------------------------------------------------------------- */

static void test_bundle_in_order_with_matching_keys(void **state)
{
    struct collect *c = read_bundle(dir);
    X509 *certs[NGW] = {NULL};
    EVP_PKEY *keys[NGW] = {NULL};
    (void)state;
    assert_int_equal(c->n, NGW);
    for (size_t i = 0; i < c->n; i++) {
        char want[32], cn[PKI_CN_MAX + 1];
        snprintf(want, sizeof want, "ETST%010zu", i + 1);
        assert_string_equal(c->e[i].id, want);
        assert_int_equal(pki_bundle_parse_entry(c->e[i].cert, c->e[i].cert_len, c->e[i].key,
                                                c->e[i].key_len, &certs[i], &keys[i], err,
                                                sizeof err),
                         0);
        assert_int_equal(X509_check_private_key(certs[i], keys[i]), 1);
        assert_int_equal(pki_cert_cn(certs[i], cn, sizeof cn), 0);
        assert_string_equal(cn, want);
        if (i > 0) {
            /* Each gateway has its own key and serial number. */
            assert_int_not_equal(EVP_PKEY_eq(keys[i], keys[i - 1]), 1);
            assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(certs[i]),
                                                  X509_get0_serialNumber(certs[i - 1])),
                                 0);
        }
    }
    /* A key with another gateway's certificate is refused. */
    X509 *x = (X509 *)1;
    EVP_PKEY *k = (EVP_PKEY *)1;
    assert_int_equal(pki_bundle_parse_entry(c->e[0].cert, c->e[0].cert_len, c->e[1].key,
                                            c->e[1].key_len, &x, &k, err, sizeof err),
                     -EINVAL);
    assert_null(x);
    assert_null(k);
    assert_non_null(strstr(err, "does not belong"));
    for (size_t i = 0; i < NGW; i++) {
        X509_free(certs[i]);
        EVP_PKEY_free(keys[i]);
    }
    free(c);
}

static void test_bundle_parse_entry_errors(void **state)
{
    struct collect *c = read_bundle(dir);
    X509 *x;
    EVP_PKEY *k;
    uint8_t junk[40] = {0x30, 0x03, 0x02, 0x01, 0x01};
    (void)state;
    assert_int_equal(pki_bundle_parse_entry(junk, sizeof junk, c->e[0].key, c->e[0].key_len, &x, &k,
                                            err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "certificate does not parse"));
    /* Trailing bytes after the certificate are not ignored. */
    c->e[0].cert[c->e[0].cert_len] = 0;
    assert_int_equal(pki_bundle_parse_entry(c->e[0].cert, c->e[0].cert_len + 1, c->e[0].key,
                                            c->e[0].key_len, &x, &k, err, sizeof err),
                     -EINVAL);
    assert_int_equal(pki_bundle_parse_entry(c->e[0].cert, c->e[0].cert_len, c->e[0].cert,
                                            c->e[0].cert_len, &x, &k, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "private key does not parse"));
    assert_null(x);
    assert_null(k);
    free(c);
}

static void test_bundle_callback_stops(void **state)
{
    struct collect *c = calloc(1, sizeof *c);
    (void)state;
    c->stop_at = 2;
    assert_int_equal(
        pki_bundle_read(path_in(dir, "smgw/gateways.pem"), collect_fn, c, err, sizeof err), 7);
    assert_int_equal(c->n, 2);
    free(c);
}

static void test_curves(void **state)
{
    const struct {
        const char *dir, *curve;
    } cases[] = {{dir, "brainpoolP256r1"}, {dir_nist, "prime256v1"}};
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        char group[64], line[64] = "";
        size_t len;
        const char *files[] = {"root.crt", "smgw-ca.crt", "emt-ca.crt", "gwa-ca.crt",
                               "emt/clsmd.crt"};
        char *text = slurp(path_in(cases[i].dir, "curve"), &len);
        snprintf(line, sizeof line, "%s\n", cases[i].curve);
        assert_string_equal(text, line);
        free(text);
        for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
            X509 *x = cert_at(path_in(cases[i].dir, files[f]));
            assert_int_equal(
                EVP_PKEY_get_group_name(X509_get0_pubkey(x), group, sizeof group, NULL), 1);
            assert_string_equal(group, cases[i].curve);
            assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
            X509_free(x);
        }
        X509 *gw = gateway_cert(cases[i].dir, 0);
        assert_int_equal(EVP_PKEY_get_group_name(X509_get0_pubkey(gw), group, sizeof group, NULL),
                         1);
        assert_string_equal(group, cases[i].curve);
        X509_free(gw);
    }
}

/* Malformed bundles, each built from real blocks of the good one. */
static void test_bundle_malformed(void **state)
{
    size_t len, cl, kl, c2l;
    char *good = slurp(path_in(dir, "smgw/gateways.pem"), &len);
    const char *c1 = block(good, 0, &cl), *k1 = block(good, 1, &kl), *c2 = block(good, 2, &c2l);
    char buf[32768];
    const struct {
        const char *what, *parts[4], *msg;
        size_t good_entries;
    } cases[] = {
        {"empty", {""}, "entry 1: no gateway credentials in the file", 0},
        {"text only", {"hello\n"}, "no gateway credentials", 0},
        {"certificate alone", {"C1"}, "the certificate of ETST0000000001 is not followed", 0},
        {"key first", {"K1", "C1"}, "entry 1: a private key without a certificate before it", 0},
        {"two certificates",
         {"C1", "C2", "K1"},
         "certificate of ETST0000000001 is not followed",
         0},
        {"bad base64",
         {"C1", "K1", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"},
         "entry 2 (after ETST0000000001): malformed PEM",
         1},
        {"no end line", {"C1", "K1", "-----BEGIN CERTIFICATE-----\nMIIB\n"}, "malformed PEM", 1},
        {"foreign block",
         {"C1", "-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n"},
         "unexpected PEM block \"EC PRIVATE KEY\"",
         0},
        {"not DER",
         {"-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n", "K1"},
         "entry 1: the certificate does not parse as DER",
         0},
        {"headers",
         {"C1", "-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: "
                "AES-128-CBC,00000000000000000000000000000000\n\nMAA=\n-----END PRIVATE "
                "KEY-----\n"},
         "encrypted keys are not supported",
         0},
    };
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        for (size_t p = 0; p < 4 && cases[i].parts[p]; p++) {
            const char *s = cases[i].parts[p];
            size_t l = strlen(s);
            if (strcmp(s, "C1") == 0)
                s = c1, l = cl;
            else if (strcmp(s, "K1") == 0)
                s = k1, l = kl;
            else if (strcmp(s, "C2") == 0)
                s = c2, l = c2l;
            assert_true(n + l < sizeof buf);
            memcpy(buf + n, s, l);
            n += l;
        }
        spit(path_in(dir, "bad.pem"), buf, n);
        struct collect *c = calloc(1, sizeof *c);
        int rc = pki_bundle_read(path_in(dir, "bad.pem"), collect_fn, c, err, sizeof err);
        if (rc != -EINVAL || strstr(err, cases[i].msg) == NULL || c->n != cases[i].good_entries)
            fail_msg("%s: rc %d, %zu entries, \"%s\"", cases[i].what, rc, c->n, err);
        assert_non_null(strstr(err, "bad.pem"));
        free(c);
    }

    /* A block over PKI_DER_MAX bytes: 23,040 base64 digits, 17,280 bytes. */
    size_t big = (size_t)snprintf(buf, sizeof buf, "-----BEGIN CERTIFICATE-----\n");
    for (size_t line = 0; line < 360; line++) {
        memset(buf + big, 'A', 64);
        buf[big + 64] = '\n';
        big += 65;
    }
    big += (size_t)snprintf(buf + big, sizeof buf - big, "-----END CERTIFICATE-----\n");
    spit(path_in(dir, "bad.pem"), buf, big);
    assert_int_equal(
        pki_bundle_read(path_in(dir, "bad.pem"), collect_fn, &(struct collect){0}, err, sizeof err),
        -EINVAL);
    assert_non_null(strstr(err, "a CERTIFICATE block of 17280 bytes (1 to 16384 allowed)"));

    /* Certificates that parse but name no gateway: no CN, or a CN with a
     * NUL byte in it. */
    const struct {
        const char *cn;
        int len;
    } names[] = {{NULL, 0}, {"ETST0000000001\0x", 16}};
    EVP_PKEY *key = EVP_EC_gen("prime256v1");
    assert_non_null(key);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        X509 *x = named(names[i].cn, names[i].len, NULL);
        BIO *b = BIO_new(BIO_s_mem());
        char *data;
        assert_int_equal(X509_set_pubkey(x, key), 1);
        assert_true(X509_sign(x, key, EVP_sha256()) > 0);
        assert_int_equal(PEM_write_bio_X509(b, x), 1);
        long n = BIO_get_mem_data(b, &data);
        memcpy(buf, data, (size_t)n);
        memcpy(buf + n, k1, kl);
        spit(path_in(dir, "bad.pem"), buf, (size_t)n + kl);
        struct collect *c = calloc(1, sizeof *c);
        assert_int_equal(pki_bundle_read(path_in(dir, "bad.pem"), collect_fn, c, err, sizeof err),
                         -EINVAL);
        assert_non_null(strstr(err, "entry 1: the certificate has no usable common name"));
        assert_int_equal(c->n, 0);
        free(c);
        BIO_free(b);
        X509_free(x);
    }
    EVP_PKEY_free(key);
    free(good);

    struct collect none = {0};
    assert_int_equal(
        pki_bundle_read(path_in(dir, "absent.pem"), collect_fn, &none, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "absent.pem"));
    assert_int_equal(none.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_cert_and_key),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_ca_store_errors),
        cmocka_unit_test(test_gateway_verifies),
        cmocka_unit_test(test_emt_and_gwa_verify),
        cmocka_unit_test(test_gateway_not_against_emt_chain),
        cmocka_unit_test(test_issuing_ca_is_pinned),
        cmocka_unit_test(test_expired_leaf),
        cmocka_unit_test(test_cn),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_bundle_in_order_with_matching_keys),
        cmocka_unit_test(test_bundle_parse_entry_errors),
        cmocka_unit_test(test_bundle_callback_stops),
        cmocka_unit_test(test_curves),
        cmocka_unit_test(test_bundle_malformed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
