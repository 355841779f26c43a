/*
 * clsm-pki.c - makes a test PKI shaped like the German SM-PKI (a root, sub-CAs
 * for GWA, EMT and SMGW, and their leaves) and issues gateway certificates in
 * bulk on worker threads, for the demo, the simulators and the tests.
 *
 * Exit status: 0 success, 1 failure (including a refusal to overwrite), 2 bad
 * usage or an unusable input file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/pki.h"
#include "common/util.h"

#define EXIT_FAIL       1
#define EXIT_USAGE      2
#define MAX_IDS         10000000ull /* gateways per bundle */
#define MAX_IDS_FILE    (256L << 20)
#define MAX_JOBS        256
#define MAX_NAMES       64   /* --emt / --gwa ids per init */
#define WINDOW          4096 /* entries issued ahead of the writer */
#define DAY             86400L
#define ROOT_DAYS       3650
#define SUBCA_DAYS      2920
#define LEAF_DAYS       730
#define MAX_DAY_OFFSET  36500
#define BACKDATE        3600 /* default notBefore: an hour ago, for clock skew */
#define SMGW_ID_LEN     14
#define SMGW_PREFIX_LEN 4

static const char subject_o[] = "clsm test PKI";
static const char subject_c[] = "DE";

/* --- tables -------------------------------------------------------------- */

struct curve {
    const char *name; /* OpenSSL group name, also written to DIR/curve */
};

static const struct curve curves[] = {
    {"brainpoolP256r1"},
    {"prime256v1"},
};

enum profile { P_ROOT, P_SUBCA, P_SERVER, P_GATEWAY };

/* The extensions of each kind of certificate, besides the key identifiers. */
struct profile_def {
    const char *bc, *ku, *eku, *san;
};

static const struct profile_def profiles[] = {
    [P_ROOT] = {"critical,CA:TRUE,pathlen:1", "critical,keyCertSign,cRLSign", NULL, NULL},
    [P_SUBCA] = {"critical,CA:TRUE,pathlen:0", "critical,keyCertSign,cRLSign", NULL, NULL},
    /* EMT (clsmd) and GWA: TLS server and client; the GWA also signs
     * wake-up datagrams, hence digitalSignature. */
    [P_SERVER] = {"critical,CA:FALSE", "critical,digitalSignature,keyAgreement",
                  "serverAuth,clientAuth", "DNS:localhost,IP:127.0.0.1,IP:::1"},
    [P_GATEWAY] = {"critical,CA:FALSE", "critical,digitalSignature,keyAgreement", "clientAuth",
                   NULL},
};

/* The sub-CAs, in the order init makes them. */
struct subca {
    const char *name; /* file stem and --ca value */
    const char *cn;
    enum profile leaf;
};

static const struct subca subcas[] = {
    {"gwa", "clsm test GWA CA", P_SERVER},
    {"emt", "clsm test EMT CA", P_SERVER},
    {"smgw", "clsm test SMGW CA", P_GATEWAY},
};

static const char root_cn[] = "clsm test root CA";

/* --- errors -------------------------------------------------------------- */

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print an error and evaluate to EXIT_FAIL, visibly so for the analyzer. */
#define FAIL(...) (errmsg(__VA_ARGS__), EXIT_FAIL)

static void die_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "clsm-pki: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see clsm-pki --help)\n");
    exit(EXIT_USAGE);
}

/* Print an error, with OpenSSL's reason when it has one. */
static void errmsg(const char *fmt, ...)
{
    unsigned long e = ERR_peek_error();
    va_list ap;
    fprintf(stderr, "clsm-pki: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (e != 0 && ERR_reason_error_string(e) != NULL)
        fprintf(stderr, " (%s)", ERR_reason_error_string(e));
    fputc('\n', stderr);
    ERR_clear_error();
}

/* --- arguments ----------------------------------------------------------- */

static long long num_arg(const char *opt, const char *s, long long min, long long max)
{
    long long v;
    if (parse_ll(s, min, max, &v) != 0)
        die_usage("%s wants a whole number from %lld to %lld, not \"%s\"", opt, min, max, s);
    return v;
}

static const struct curve *curve_arg(const char *s)
{
    for (size_t i = 0; i < ARRAY_LEN(curves); i++)
        if (strcmp(curves[i].name, s) == 0)
            return &curves[i];
    die_usage("unknown curve \"%s\" (brainpoolP256r1 or prime256v1)", s);
}

static const struct subca *subca_arg(const char *s)
{
    for (size_t i = 0; i < ARRAY_LEN(subcas); i++)
        if (strcmp(subcas[i].name, s) == 0)
            return &subcas[i];
    die_usage("unknown CA \"%s\" (smgw, emt or gwa)", s);
}

/* A name that is also a file name: 1-64 of [A-Za-z0-9._-], not starting
 * with a dot. */
static int is_file_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PKI_CN_MAX || s[0] == '.')
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* Printable ASCII, 1-64 characters: what a --cn may hold. */
static int is_cn(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PKI_CN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    return 1;
}

static int is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "EABC": E and three upper-case letters, the issuer part of an SM-PKI id. */
static int is_smgw_prefix(const char *s)
{
    return strlen(s) == SMGW_PREFIX_LEN && s[0] == 'E' && is_upper(s[1]) && is_upper(s[2]) &&
           is_upper(s[3]);
}

/* "EABC0000000001": the prefix and ten digits. */
static int is_smgw_id(const char *s, size_t n)
{
    char pre[SMGW_PREFIX_LEN + 1];
    if (n != SMGW_ID_LEN)
        return 0;
    memcpy(pre, s, SMGW_PREFIX_LEN);
    pre[SMGW_PREFIX_LEN] = '\0';
    if (!is_smgw_prefix(pre))
        return 0;
    for (size_t i = SMGW_PREFIX_LEN; i < n; i++)
        if (!is_digit(s[i]))
            return 0;
    return 1;
}

/* A point in time: RFC 3339, or a whole number of days from now ("-1",
 * "+30", "0"). */
static time_t when_arg(const char *opt, const char *s, time_t now)
{
    int64_t ms;
    long long days;
    if (parse_ll(s[0] == '+' && s[1] != '-' ? s + 1 : s, -MAX_DAY_OFFSET, MAX_DAY_OFFSET, &days) ==
        0)
        return now + (time_t)days * DAY;
    if (time_parse_ms(s, &ms) == 0)
        return (time_t)(ms / 1000);
    die_usage("%s wants an RFC 3339 time (2026-11-28T18:00:00Z) or a day offset from -%d to +%d, "
              "not \"%s\"",
              opt, MAX_DAY_OFFSET, MAX_DAY_OFFSET, s);
}

/* --- files --------------------------------------------------------------- */

static void path_join(char *out, size_t len, const char *dir, const char *name)
{
    int n = snprintf(out, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len)
        die_usage("path too long: %s/%s", dir, name);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    return FAIL("%s: %s", path, strerror(errno));
}

/* Open "<path>.tmp" for writing with 'mode'; the caller renames it into
 * place once complete, so that no reader ever sees half a file. */
static FILE *open_tmp(const char *path, mode_t mode, char *tmp, size_t tmplen)
{
    int fd, n = snprintf(tmp, tmplen, "%s.tmp", path);
    FILE *f;
    if (n < 0 || (size_t)n >= tmplen) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return NULL;
    if (fchmod(fd, mode) != 0 || (f = fdopen(fd, "wb")) == NULL) {
        close(fd);
        unlink(tmp);
        return NULL;
    }
    return f;
}

/* Flush, sync and close 'f', then rename 'tmp' to 'path'. */
static int commit_tmp(FILE *f, const char *tmp, const char *path)
{
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        unlink(tmp);
        return FAIL("%s: %s", path, strerror(e));
    }
    return 0;
}

/* Write the memory BIOs 'a' and 'b' (may be NULL) into 'path'. */
static int write_bios(const char *path, mode_t mode, BIO *a, BIO *b)
{
    char tmp[4096];
    BIO *parts[] = {a, b};
    FILE *f = open_tmp(path, mode, tmp, sizeof tmp);
    if (f == NULL)
        return FAIL("%s: %s", path, strerror(errno));
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) {
        char *data;
        long n = parts[i] ? BIO_get_mem_data(parts[i], &data) : 0;
        if (n > 0 && fwrite(data, 1, (size_t)n, f) != (size_t)n) {
            int e = errno;
            fclose(f);
            unlink(tmp);
            return FAIL("%s: %s", path, strerror(e));
        }
    }
    return commit_tmp(f, tmp, path);
}

static BIO *pem_certs(X509 *const *certs, size_t n)
{
    BIO *b = BIO_new(BIO_s_mem());
    for (size_t i = 0; b && i < n; i++)
        if (!PEM_write_bio_X509(b, certs[i])) {
            BIO_free(b);
            return NULL;
        }
    return b;
}

static BIO *pem_key(EVP_PKEY *key)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b && !PEM_write_bio_PKCS8PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)) {
        BIO_free(b);
        return NULL;
    }
    return b;
}

/* Write certificates (0644) and, when 'key' is not NULL, the key (0600). */
static int write_pair(const char *crt_path, X509 *const *certs, size_t n, const char *key_path,
                      EVP_PKEY *key)
{
    BIO *c = pem_certs(certs, n), *k = key ? pem_key(key) : NULL;
    int rc;
    if (c == NULL || (key && k == NULL))
        rc = FAIL("%s: cannot encode", key && k == NULL ? key_path : crt_path);
    else if ((rc = write_bios(crt_path, 0644, c, NULL)) == 0 && key)
        rc = write_bios(key_path, 0600, k, NULL);
    BIO_free(c);
    BIO_free(k);
    return rc;
}

/* --- keys and certificates ----------------------------------------------- */

/* A key generator for one curve; reused for every key of a thread. */
static EVP_PKEY_CTX *keygen_new(const struct curve *cv)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_group_name(ctx, cv->name) <= 0) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static EVP_PKEY *keygen(EVP_PKEY_CTX *ctx)
{
    EVP_PKEY *k = NULL;
    if (EVP_PKEY_generate(ctx, &k) <= 0)
        return NULL;
    return k;
}

/* The extensions of one profile that do not depend on the subject key. */
struct exts {
    X509_EXTENSION *e[4];
    size_t n;
};

static void exts_free(struct exts *x)
{
    for (size_t i = 0; i < x->n; i++)
        X509_EXTENSION_free(x->e[i]);
    x->n = 0;
}

static int exts_init(struct exts *x, enum profile p)
{
    const struct profile_def *d = &profiles[p];
    const struct {
        int nid;
        const char *v;
    } want[] = {{NID_basic_constraints, d->bc},
                {NID_key_usage, d->ku},
                {NID_ext_key_usage, d->eku},
                {NID_subject_alt_name, d->san}};
    X509V3_CTX ctx;

    x->n = 0;
    X509V3_set_ctx(&ctx, NULL, NULL, NULL, NULL, 0);
    for (size_t i = 0; i < ARRAY_LEN(want); i++) {
        if (want[i].v == NULL)
            continue;
        x->e[x->n] = X509V3_EXT_conf_nid(NULL, &ctx, want[i].nid, want[i].v);
        if (x->e[x->n] == NULL) {
            exts_free(x);
            return -1;
        }
        x->n++;
    }
    return 0;
}

/* Subject and authority key identifiers (RFC 5280 4.2.1.2 method 1: the
 * SHA-1 of the public key bits). 'issuer' NULL means self-signed. */
static int add_key_ids(X509 *x, X509 *issuer)
{
    const unsigned char *pk;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen;
    int pklen, ok = 0;
    ASN1_OCTET_STRING *skid = ASN1_OCTET_STRING_new();
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    const ASN1_OCTET_STRING *ikid;

    if (skid == NULL || akid == NULL ||
        !X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, X509_get_X509_PUBKEY(x)) ||
        !EVP_Digest(pk, (size_t)pklen, md, &mdlen, EVP_sha1(), NULL) ||
        !ASN1_OCTET_STRING_set(skid, md, (int)mdlen) ||
        !X509_add1_ext_i2d(x, NID_subject_key_identifier, skid, 0, X509V3_ADD_DEFAULT))
        goto out;
    ikid = issuer ? X509_get0_subject_key_id(issuer) : skid;
    if (ikid == NULL || (akid->keyid = ASN1_OCTET_STRING_dup(ikid)) == NULL ||
        !X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT))
        goto out;
    ok = 1;
out:
    ASN1_OCTET_STRING_free(skid);
    AUTHORITY_KEYID_free(akid);
    return ok ? 0 : -1;
}

/* Set the subject public key of 'x' from the EC point of 'key'. This is
 * what X509_set_pubkey() does, without its round trip through OpenSSL 3's
 * encoder and decoder, which costs more than key generation and signing
 * together on P-256; other key types take the general path. */
static int set_pubkey(X509 *x, EVP_PKEY *key)
{
    unsigned char pt[256], *penc;
    char group[64];
    size_t len;
    int nid;

    if (!EVP_PKEY_is_a(key, "EC") || !EVP_PKEY_get_group_name(key, group, sizeof group, NULL) ||
        (nid = OBJ_sn2nid(group)) == NID_undef ||
        !EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &len) ||
        len > INT_MAX)
        return X509_set_pubkey(x, key) ? 0 : -1;
    if ((penc = OPENSSL_memdup(pt, len)) == NULL)
        return -1;
    if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                                V_ASN1_OBJECT, OBJ_nid2obj(nid), penc, (int)len)) {
        OPENSSL_free(penc);
        return -1;
    }
    return 0;
}

/* A random positive 128-bit serial number. */
static int set_serial(X509 *x)
{
    unsigned char r[16];
    BIGNUM *bn;
    int ok;
    if (RAND_bytes(r, sizeof r) != 1)
        return -1;
    r[sizeof r - 1] |= 1; /* never zero */
    bn = BN_bin2bn(r, sizeof r, NULL);
    ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

static int set_subject(X509 *x, const char *cn)
{
    X509_NAME *nm = X509_get_subject_name(x);
    if (!X509_NAME_add_entry_by_NID(nm, NID_countryName, MBSTRING_ASC,
                                    (const unsigned char *)subject_c, -1, -1, 0) ||
        !X509_NAME_add_entry_by_NID(nm, NID_organizationName, MBSTRING_UTF8,
                                    (const unsigned char *)subject_o, -1, -1, 0) ||
        !X509_NAME_add_entry_by_NID(nm, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
                                    -1, -1, 0))
        return -1;
    return 0;
}

/* Who signs: a CA certificate and its key. 'cert' is NULL for the root,
 * which signs itself with 'key'. */
struct issuer {
    X509 *cert;
    EVP_PKEY *key;
};

struct validity {
    time_t not_before, not_after;
};

/* Issue a certificate for 'subject_key' named 'cn' with the extensions 'x'.
 * Returns the certificate or NULL (OpenSSL's error queue says why). */
static X509 *issue(const struct issuer *ca, const struct exts *x, const char *cn,
                   EVP_PKEY *subject_key, const struct validity *v)
{
    X509 *c = X509_new();
    int ok = c && X509_set_version(c, X509_VERSION_3) && set_serial(c) == 0 &&
             set_subject(c, cn) == 0 &&
             X509_set_issuer_name(c, ca->cert ? X509_get_subject_name(ca->cert)
                                              : X509_get_subject_name(c)) &&
             ASN1_TIME_set(X509_getm_notBefore(c), v->not_before) &&
             ASN1_TIME_set(X509_getm_notAfter(c), v->not_after) && set_pubkey(c, subject_key) == 0;
    for (size_t i = 0; ok && i < x->n; i++)
        ok = X509_add_ext(c, x->e[i], -1);
    ok = ok && add_key_ids(c, ca->cert) == 0 && X509_sign(c, ca->key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(c);
        return NULL;
    }
    return c;
}

/* Make a key and a certificate for it in one step; 'ca' NULL makes a
 * self-signed certificate. */
static int issue_new(const struct issuer *ca, enum profile p, const char *cn, EVP_PKEY_CTX *kg,
                     const struct validity *v, X509 **cert, EVP_PKEY **key)
{
    struct exts x;
    *cert = NULL;
    if ((*key = keygen(kg)) == NULL)
        return FAIL("%s: cannot generate a key", cn);
    if (exts_init(&x, p) != 0)
        return FAIL("%s: cannot build the extensions", cn);
    struct issuer self = {NULL, *key};
    *cert = issue(ca ? ca : &self, &x, cn, *key, v);
    exts_free(&x);
    if (*cert == NULL)
        return FAIL("%s: cannot issue the certificate", cn);
    return 0;
}

static struct validity days_from_now(time_t now, long days)
{
    struct validity v = {now - BACKDATE, now + (time_t)days * DAY};
    return v;
}

/* --- an existing PKI ----------------------------------------------------- */

struct pki {
    const char *dir;
    const struct curve *curve;
    X509 *ca_cert;
    EVP_PKEY *ca_key;
};

static void pki_close(struct pki *p)
{
    X509_free(p->ca_cert);
    EVP_PKEY_free(p->ca_key);
    p->ca_cert = NULL;
    p->ca_key = NULL;
}

/* Read DIR/curve and the sub-CA 'ca' of the PKI in 'dir'. */
static int pki_open(struct pki *p, const char *dir, const struct subca *ca)
{
    char path[4096], name[64] = "", err[PKI_ERRLEN];
    FILE *f;

    memset(p, 0, sizeof *p);
    p->dir = dir;
    path_join(path, sizeof path, dir, "curve");
    if ((f = fopen(path, "r")) == NULL)
        return FAIL("%s holds no PKI made by 'clsm-pki init' (%s: %s)", dir, path, strerror(errno));
    if (fgets(name, sizeof name, f) == NULL)
        name[0] = '\0';
    fclose(f);
    name[strcspn(name, "\r\n")] = '\0';
    for (size_t i = 0; i < ARRAY_LEN(curves); i++)
        if (strcmp(curves[i].name, name) == 0)
            p->curve = &curves[i];
    if (p->curve == NULL)
        return FAIL("%s: unknown curve \"%s\"", path, name);
    char stem[64];
    snprintf(stem, sizeof stem, "%s-ca.crt", ca->name);
    path_join(path, sizeof path, dir, stem);
    if (pki_load_cert(path, &p->ca_cert, err, sizeof err) != 0)
        return FAIL("%s", err);
    snprintf(stem, sizeof stem, "%s-ca.key", ca->name);
    path_join(path, sizeof path, dir, stem);
    if (pki_load_key(path, &p->ca_key, err, sizeof err) != 0) {
        pki_close(p);
        return FAIL("%s", err);
    }
    if (X509_check_private_key(p->ca_cert, p->ca_key) != 1) {
        pki_close(p);
        return FAIL("%s does not belong to %s-ca.crt", path, ca->name);
    }
    return 0;
}

/* --- init ---------------------------------------------------------------- */

struct init_args {
    const char *dir;
    const struct curve *curve;
    const char *emt[MAX_NAMES], *gwa[MAX_NAMES];
    size_t nemt, ngwa;
    long days;
    int force;
};

static void add_name(const char **list, size_t *n, const char *opt, const char *id)
{
    if (!is_file_id(id))
        die_usage("%s \"%s\": use 1-64 of A-Z a-z 0-9 . _ - (not starting with a dot)", opt, id);
    for (size_t i = 0; i < *n; i++)
        if (strcmp(list[i], id) == 0)
            die_usage("%s \"%s\" given twice", opt, id);
    if (*n == MAX_NAMES)
        die_usage("at most %d %s ids", MAX_NAMES, opt);
    list[(*n)++] = id;
}

static void init_parse(int argc, char **argv, struct init_args *a)
{
    memset(a, 0, sizeof *a);
    a->curve = &curves[0];
    a->days = LEAF_DAYS;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--force") == 0) {
            a->force = 1;
            continue;
        }
        if (o[0] != '-') {
            if (a->dir)
                die_usage("init: more than one DIR (\"%s\", \"%s\")", a->dir, o);
            a->dir = o;
            continue;
        }
        if (v == NULL)
            die_usage("init: %s needs a value", o);
        if (strcmp(o, "--curve") == 0)
            a->curve = curve_arg(v);
        else if (strcmp(o, "--emt") == 0)
            add_name(a->emt, &a->nemt, o, v);
        else if (strcmp(o, "--gwa") == 0)
            add_name(a->gwa, &a->ngwa, o, v);
        else if (strcmp(o, "--days") == 0)
            a->days = (long)num_arg(o, v, 1, MAX_DAY_OFFSET);
        else
            die_usage("init: unknown option \"%s\"", o);
        i++;
    }
    if (a->dir == NULL)
        die_usage("init needs a DIR");
    if (a->nemt == 0)
        a->emt[a->nemt++] = "clsmd";
}

/* Refuse to overwrite a PKI: each file init writes must be absent. */
static int init_check_free(const struct init_args *a)
{
    static const char *const fixed[] = {"root.crt",       "root.key",      "curve",
                                        "smgw-chain.pem", "emt-chain.pem", "gwa-chain.pem"};
    char names[ARRAY_LEN(fixed) + 2 * ARRAY_LEN(subcas) + 2 * MAX_NAMES][PKI_CN_MAX + 16];
    char path[4096];
    size_t n = 0;

    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        snprintf(names[n++], sizeof names[0], "%s", fixed[i]);
    for (size_t i = 0; i < ARRAY_LEN(subcas); i++) {
        snprintf(names[n++], sizeof names[0], "%s-ca.crt", subcas[i].name);
        snprintf(names[n++], sizeof names[0], "%s-ca.key", subcas[i].name);
    }
    for (size_t i = 0; i < a->nemt; i++)
        snprintf(names[n++], sizeof names[0], "emt/%s.crt", a->emt[i]);
    for (size_t i = 0; i < a->ngwa; i++)
        snprintf(names[n++], sizeof names[0], "gwa/%s.crt", a->gwa[i]);
    for (size_t i = 0; i < n; i++) {
        path_join(path, sizeof path, a->dir, names[i]);
        if (exists(path))
            return FAIL("%s already holds a PKI (%s exists); use --force to replace it", a->dir,
                        path);
    }
    return 0;
}

/* Issue and write the leaves of one sub-CA ("emt/<id>.crt" and ".key"). */
static int init_leaves(const struct init_args *a, const struct subca *sc, const struct issuer *ca,
                       const char *const *ids, size_t n, EVP_PKEY_CTX *kg, time_t now)
{
    struct validity v = days_from_now(now, a->days);
    char sub[4096], crt[4096], key[4096], name[128];
    int rc = 0;

    path_join(sub, sizeof sub, a->dir, sc->name);
    if (make_dir(sub) != 0)
        return EXIT_FAIL;
    for (size_t i = 0; i < n && rc == 0; i++) {
        X509 *c;
        EVP_PKEY *k;
        if ((rc = issue_new(ca, sc->leaf, ids[i], kg, &v, &c, &k)) != 0)
            break;
        X509 *chain[] = {c, ca->cert};
        snprintf(name, sizeof name, "%s.crt", ids[i]);
        path_join(crt, sizeof crt, sub, name);
        snprintf(name, sizeof name, "%s.key", ids[i]);
        path_join(key, sizeof key, sub, name);
        rc = write_pair(crt, chain, 2, key, k);
        X509_free(c);
        EVP_PKEY_free(k);
    }
    return rc;
}

static int write_named(const char *dir, const char *name, X509 *const *certs, size_t n,
                       const char *keyname, EVP_PKEY *key)
{
    char crt[4096], kp[4096];
    path_join(crt, sizeof crt, dir, name);
    if (keyname)
        path_join(kp, sizeof kp, dir, keyname);
    return write_pair(crt, certs, n, keyname ? kp : NULL, key);
}

static int cmd_init(int argc, char **argv)
{
    struct init_args a;
    X509 *root = NULL, *sub[ARRAY_LEN(subcas)] = {NULL};
    EVP_PKEY *root_key = NULL, *sub_key[ARRAY_LEN(subcas)] = {NULL};
    EVP_PKEY_CTX *kg = NULL;
    time_t now = time(NULL);
    char path[4096], name[64];
    int rc;

    init_parse(argc, argv, &a);
    if (!a.force && (rc = init_check_free(&a)) != 0)
        return rc;
    if ((rc = make_dir(a.dir)) != 0)
        return rc;
    if ((kg = keygen_new(a.curve)) == NULL)
        return FAIL("curve %s is not available in this OpenSSL", a.curve->name);

    struct validity vroot = days_from_now(now, ROOT_DAYS), vsub = days_from_now(now, SUBCA_DAYS);
    if ((rc = issue_new(NULL, P_ROOT, root_cn, kg, &vroot, &root, &root_key)) != 0 ||
        (rc = write_named(a.dir, "root.crt", &root, 1, "root.key", root_key)) != 0)
        goto out;
    struct issuer by_root = {root, root_key};
    for (size_t i = 0; i < ARRAY_LEN(subcas); i++) {
        const struct subca *sc = &subcas[i];
        char crt[64], key[64];
        if ((rc = issue_new(&by_root, P_SUBCA, sc->cn, kg, &vsub, &sub[i], &sub_key[i])) != 0)
            goto out;
        snprintf(crt, sizeof crt, "%s-ca.crt", sc->name);
        snprintf(key, sizeof key, "%s-ca.key", sc->name);
        snprintf(name, sizeof name, "%s-chain.pem", sc->name);
        X509 *chain[] = {sub[i], root};
        if ((rc = write_named(a.dir, crt, &sub[i], 1, key, sub_key[i])) != 0 ||
            (rc = write_named(a.dir, name, chain, 2, NULL, NULL)) != 0)
            goto out;
        struct issuer ca = {sub[i], sub_key[i]};
        if (strcmp(sc->name, "emt") == 0)
            rc = init_leaves(&a, sc, &ca, a.emt, a.nemt, kg, now);
        else if (strcmp(sc->name, "gwa") == 0)
            rc = init_leaves(&a, sc, &ca, a.gwa, a.ngwa, kg, now);
        else {
            path_join(path, sizeof path, a.dir, sc->name);
            rc = make_dir(path);
        }
        if (rc != 0)
            goto out;
    }
    /* The curve file comes last: its presence marks a complete PKI. */
    BIO *cb = BIO_new(BIO_s_mem());
    path_join(path, sizeof path, a.dir, "curve");
    rc = cb && BIO_printf(cb, "%s\n", a.curve->name) > 0 ? write_bios(path, 0644, cb, NULL)
                                                         : FAIL("%s: cannot write", path);
    BIO_free(cb);
    if (rc == 0)
        fprintf(stderr,
                "clsm-pki: test PKI on %s in %s: root, sub-CAs gwa emt smgw, %zu EMT, %zu "
                "GWA certificate(s)\n",
                a.curve->name, a.dir, a.nemt, a.ngwa);
out:
    X509_free(root);
    EVP_PKEY_free(root_key);
    for (size_t i = 0; i < ARRAY_LEN(subcas); i++) {
        X509_free(sub[i]);
        EVP_PKEY_free(sub_key[i]);
    }
    EVP_PKEY_CTX_free(kg);
    return rc;
}

/* --- smgw: bulk issuance ------------------------------------------------- */

/* The gateway ids: a list read from a file, or prefix + counter. */
struct idset {
    char (*list)[SMGW_ID_LEN + 1];
    size_t n;
    char prefix[SMGW_PREFIX_LEN + 1];
    unsigned long long first;
};

static void id_at(const struct idset *s, size_t i, char out[SMGW_ID_LEN + 1])
{
    if (s->list) {
        memcpy(out, s->list[i], SMGW_ID_LEN + 1);
        return;
    }
    snprintf(out, SMGW_ID_LEN + 1, "%s%010llu", s->prefix, s->first + i);
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, SMGW_ID_LEN);
}

/* Read ids one a line (a trailing CR is allowed, empty lines are not). */
static void read_ids(const char *path, struct idset *s)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, lineno = 0, alloc = 0;
    ssize_t len;

    if (f == NULL)
        die_usage("--ids %s: %s", path, strerror(errno));
    while ((len = getline(&line, &cap, f)) > 0) {
        size_t n = (size_t)len;
        lineno++;
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        if (!is_smgw_id(line, n))
            die_usage("%s:%zu: \"%.40s\" is not a gateway id (E, 3 upper-case letters, 10 "
                      "digits: EABC0000000001)",
                      path, lineno, line);
        if (s->n == MAX_IDS)
            die_usage("%s: more than %llu ids", path, MAX_IDS);
        if (s->n == alloc) {
            alloc = alloc ? alloc * 2 : 1024;
            void *nl = realloc(s->list, alloc * sizeof *s->list);
            if (nl == NULL)
                die_usage("%s: out of memory", path);
            s->list = nl;
        }
        memcpy(s->list[s->n++], line, SMGW_ID_LEN + 1);
    }
    if (ferror(f))
        die_usage("--ids %s: %s", path, strerror(errno));
    free(line);
    fclose(f);
    if (s->n == 0)
        die_usage("%s: no gateway ids", path);
    /* Two certificates for one gateway would make the bundle ambiguous. */
    char(*sorted)[SMGW_ID_LEN + 1] = malloc(s->n * sizeof *sorted);
    if (sorted == NULL)
        die_usage("%s: out of memory", path);
    memcpy(sorted, s->list, s->n * sizeof *sorted);
    qsort(sorted, s->n, sizeof *sorted, cmp_id);
    for (size_t i = 1; i < s->n; i++)
        if (memcmp(sorted[i - 1], sorted[i], SMGW_ID_LEN) == 0)
            die_usage("%s: gateway %s is listed twice", path, sorted[i]);
    free(sorted);
}

struct slot {
    BIO *pem; /* certificate and key, or NULL while not ready */
};

/* Shared by the workers and the writer; 'mu' guards every field below it. */
struct job {
    const struct idset *ids;
    const struct pki *pki;
    struct validity v;
    pthread_mutex_t mu;
    pthread_cond_t ready; /* a slot was filled, or a worker failed */
    pthread_cond_t space; /* the writer freed a slot */
    size_t next;          /* the next index to issue */
    size_t written;       /* entries the writer has taken */
    int failed;
    char err[PKI_ERRLEN];
    struct slot ring[WINDOW];
};

/* One worker's own copies: OpenSSL objects are not shared between threads. */
struct worker {
    struct job *job;
    pthread_t tid;
    EVP_PKEY_CTX *kg;
    struct issuer ca;
    struct exts x;
};

static void job_fail(struct job *j, const char *what, const char *id)
{
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    pthread_mutex_lock(&j->mu);
    if (!j->failed)
        snprintf(j->err, sizeof j->err, "%s: %s%s%s%s", id, what, r ? " (" : "", r ? r : "",
                 r ? ")" : "");
    j->failed = 1;
    pthread_cond_broadcast(&j->ready);
    pthread_cond_broadcast(&j->space);
    pthread_mutex_unlock(&j->mu);
    ERR_clear_error();
}

/* Key, certificate and their PEM text for gateway 'id'. */
static BIO *make_entry(struct worker *w, const char *id)
{
    EVP_PKEY *k = keygen(w->kg);
    X509 *c = k ? issue(&w->ca, &w->x, id, k, &w->job->v) : NULL;
    BIO *b = c ? BIO_new(BIO_s_mem()) : NULL;
    if (b && (!PEM_write_bio_X509(b, c) ||
              !PEM_write_bio_PKCS8PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))) {
        BIO_free(b);
        b = NULL;
    }
    if (b == NULL)
        job_fail(w->job, k == NULL ? "cannot generate a key" : "cannot issue the certificate", id);
    X509_free(c);
    EVP_PKEY_free(k);
    return b;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct job *j = w->job;
    char id[SMGW_ID_LEN + 1];

    for (;;) {
        size_t i;
        pthread_mutex_lock(&j->mu);
        while (!j->failed && j->next < j->ids->n && j->next >= j->written + WINDOW)
            pthread_cond_wait(&j->space, &j->mu);
        if (j->failed || j->next >= j->ids->n) {
            pthread_mutex_unlock(&j->mu);
            return NULL;
        }
        i = j->next++;
        pthread_mutex_unlock(&j->mu);

        id_at(j->ids, i, id);
        BIO *b = make_entry(w, id);
        if (b == NULL)
            return NULL;
        pthread_mutex_lock(&j->mu);
        j->ring[i % WINDOW].pem = b;
        pthread_cond_broadcast(&j->ready);
        pthread_mutex_unlock(&j->mu);
    }
}

static void workers_free(struct worker *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        EVP_PKEY_CTX_free(w[i].kg);
        X509_free(w[i].ca.cert);
        EVP_PKEY_free(w[i].ca.key);
        exts_free(&w[i].x);
    }
    free(w);
}

static struct worker *workers_new(struct job *j, size_t n)
{
    struct worker *w = calloc(n, sizeof *w);
    for (size_t i = 0; w && i < n; i++) {
        w[i].job = j;
        w[i].kg = keygen_new(j->pki->curve);
        w[i].ca.cert = X509_dup(j->pki->ca_cert);
        w[i].ca.key = EVP_PKEY_dup(j->pki->ca_key);
        if (w[i].kg == NULL || w[i].ca.cert == NULL || w[i].ca.key == NULL ||
            exts_init(&w[i].x, P_GATEWAY) != 0) {
            workers_free(w, i + 1);
            return NULL;
        }
    }
    return w;
}

/* Write entries in id order as the workers finish them. */
static int write_entries(struct job *j, FILE *f, const char *out)
{
    int64_t last = time_mono_us();
    int tty = isatty(STDERR_FILENO);

    for (size_t i = 0; i < j->ids->n; i++) {
        struct slot *s = &j->ring[i % WINDOW];
        char *data;
        pthread_mutex_lock(&j->mu);
        while (!j->failed && s->pem == NULL)
            pthread_cond_wait(&j->ready, &j->mu);
        BIO *b = s->pem;
        s->pem = NULL;
        j->written = i + 1;
        pthread_cond_broadcast(&j->space);
        pthread_mutex_unlock(&j->mu);
        if (b == NULL)
            return -1; /* a worker failed; j->err says why */
        long n = BIO_get_mem_data(b, &data);
        size_t wrote = fwrite(data, 1, (size_t)n, f);
        BIO_free(b);
        if (wrote != (size_t)n) {
            job_fail(j, strerror(errno), out);
            return -1;
        }
        if (tty && time_mono_us() - last > 1000000) {
            last = time_mono_us();
            fprintf(stderr, "\rclsm-pki: %zu/%zu", i + 1, j->ids->n);
        }
    }
    if (tty)
        fprintf(stderr, "\r");
    return 0;
}

/* Run the workers and the writer; returns 0 or 1 (message printed). */
static int issue_bundle(struct job *j, size_t jobs, FILE *f, const char *out)
{
    struct worker *w = workers_new(j, jobs);
    size_t started = 0;
    int rc;

    if (w == NULL)
        return FAIL("cannot set up %zu workers", jobs);
    for (; started < jobs; started++)
        if (pthread_create(&w[started].tid, NULL, worker_main, &w[started]) != 0) {
            job_fail(j, "cannot start a thread", "workers");
            break;
        }
    rc = started == jobs ? write_entries(j, f, out) : -1;
    if (rc != 0) {
        pthread_mutex_lock(&j->mu);
        j->failed = 1;
        pthread_cond_broadcast(&j->space);
        pthread_mutex_unlock(&j->mu);
    }
    for (size_t i = 0; i < started; i++)
        pthread_join(w[i].tid, NULL);
    workers_free(w, jobs);
    for (size_t i = 0; i < WINDOW; i++)
        BIO_free(j->ring[i].pem);
    return rc == 0 ? 0 : FAIL("%s", j->err);
}

struct smgw_args {
    const char *dir, *ids_file, *out;
    long long count, first;
    const char *prefix;
    long jobs, days;
    int force;
};

static void smgw_parse(int argc, char **argv, struct smgw_args *a)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    memset(a, 0, sizeof *a);
    a->first = 1;
    a->jobs = cpus > 0 ? (cpus < MAX_JOBS ? cpus : MAX_JOBS) : 1;
    a->days = LEAF_DAYS;
    int have_first = 0;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--force") == 0) {
            a->force = 1;
            continue;
        }
        if (o[0] != '-') {
            if (a->dir)
                die_usage("smgw: more than one DIR (\"%s\", \"%s\")", a->dir, o);
            a->dir = o;
            continue;
        }
        if (v == NULL)
            die_usage("smgw: %s needs a value", o);
        if (strcmp(o, "--ids") == 0)
            a->ids_file = v;
        else if (strcmp(o, "--count") == 0)
            a->count = num_arg(o, v, 1, (long long)MAX_IDS);
        else if (strcmp(o, "--prefix") == 0)
            a->prefix = v;
        else if (strcmp(o, "--first") == 0) {
            a->first = num_arg(o, v, 0, 9999999999LL);
            have_first = 1;
        } else if (strcmp(o, "--jobs") == 0)
            a->jobs = (long)num_arg(o, v, 1, MAX_JOBS);
        else if (strcmp(o, "--out") == 0)
            a->out = v;
        else if (strcmp(o, "--days") == 0)
            a->days = (long)num_arg(o, v, 1, MAX_DAY_OFFSET);
        else
            die_usage("smgw: unknown option \"%s\"", o);
        i++;
    }
    if (a->dir == NULL)
        die_usage("smgw needs a DIR");
    if (a->ids_file && (a->count || a->prefix || have_first))
        die_usage("smgw: give --ids FILE or --count N --prefix EABC, not both");
    if (a->ids_file == NULL && (a->count == 0 || a->prefix == NULL))
        die_usage("smgw needs --ids FILE, or --count N and --prefix EABC");
    if (a->prefix && !is_smgw_prefix(a->prefix))
        die_usage("--prefix \"%s\": want E and 3 upper-case letters (EABC)", a->prefix);
    if (a->count && a->first + a->count - 1 > 9999999999LL)
        die_usage("--first %lld --count %lld runs past 10 digits", a->first, a->count);
}

static int cmd_smgw(int argc, char **argv)
{
    struct smgw_args a;
    struct idset ids = {0};
    struct pki pki;
    struct job *j;
    char out[4096], tmp[4096];
    FILE *f;
    int rc;

    smgw_parse(argc, argv, &a);
    if (a.ids_file) {
        read_ids(a.ids_file, &ids);
    } else {
        ids.n = (size_t)a.count;
        ids.first = (unsigned long long)a.first;
        memcpy(ids.prefix, a.prefix, SMGW_PREFIX_LEN + 1);
    }
    if (a.out)
        snprintf(out, sizeof out, "%s", a.out);
    else
        path_join(out, sizeof out, a.dir, "smgw/" PKI_BUNDLE_NAME);
    if (!a.force && exists(out)) {
        free(ids.list);
        return FAIL("%s exists; use --force to replace it", out);
    }
    if ((rc = pki_open(&pki, a.dir, subca_arg("smgw"))) != 0) {
        free(ids.list);
        return rc;
    }
    if ((size_t)a.jobs > ids.n)
        a.jobs = (long)ids.n;
    j = calloc(1, sizeof *j);
    if (j == NULL || (f = open_tmp(out, 0600, tmp, sizeof tmp)) == NULL) {
        rc = FAIL("%s: %s", out, j ? strerror(errno) : "out of memory");
        goto out;
    }
    j->ids = &ids;
    j->pki = &pki;
    j->v = days_from_now(time(NULL), a.days);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->ready, NULL);
    pthread_cond_init(&j->space, NULL);
    setvbuf(f, NULL, _IOFBF, 1 << 20);

    int64_t t0 = time_mono_us();
    rc = issue_bundle(j, (size_t)a.jobs, f, out);
    if (rc != 0) {
        fclose(f);
        unlink(tmp);
    } else if ((rc = commit_tmp(f, tmp, out)) == 0) {
        double s = (double)(time_mono_us() - t0) / 1e6;
        fprintf(stderr,
                "clsm-pki: issued %zu gateway certificates on %s in %.2f s with %ld jobs: "
                "%.0f certificates per second -> %s\n",
                ids.n, pki.curve->name, s, a.jobs, s > 0 ? (double)ids.n / s : 0.0, out);
    }
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->ready);
    pthread_cond_destroy(&j->space);
out:
    free(j);
    free(ids.list);
    pki_close(&pki);
    return rc;
}

/* --- leaf: one certificate for tests ------------------------------------- */

struct leaf_args {
    const char *dir, *cn, *out, *nb, *na;
    const struct subca *ca;
    long days;
    int have_days, force;
};

static void leaf_parse(int argc, char **argv, struct leaf_args *a)
{
    memset(a, 0, sizeof *a);
    a->days = LEAF_DAYS;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--force") == 0) {
            a->force = 1;
            continue;
        }
        /* Day offsets may be negative: a value after an option is never
         * taken for an option. */
        if (o[0] != '-') {
            if (a->dir)
                die_usage("leaf: more than one DIR (\"%s\", \"%s\")", a->dir, o);
            a->dir = o;
            continue;
        }
        if (v == NULL)
            die_usage("leaf: %s needs a value", o);
        if (strcmp(o, "--ca") == 0)
            a->ca = subca_arg(v);
        else if (strcmp(o, "--cn") == 0)
            a->cn = v;
        else if (strcmp(o, "--not-before") == 0)
            a->nb = v;
        else if (strcmp(o, "--not-after") == 0)
            a->na = v;
        else if (strcmp(o, "--days") == 0) {
            a->days = (long)num_arg(o, v, 1, MAX_DAY_OFFSET);
            a->have_days = 1;
        } else if (strcmp(o, "--out") == 0)
            a->out = v;
        else
            die_usage("leaf: unknown option \"%s\"", o);
        i++;
    }
    if (a->dir == NULL || a->ca == NULL || a->cn == NULL)
        die_usage("leaf needs DIR, --ca smgw|emt|gwa and --cn NAME");
    if (!is_cn(a->cn))
        die_usage("--cn \"%s\": want 1-64 printable ASCII characters", a->cn);
    if (a->out == NULL && !is_file_id(a->cn))
        die_usage("--cn \"%s\" cannot be a file name; give --out PREFIX", a->cn);
    if (a->nb && a->na && a->have_days)
        die_usage("leaf: give at most two of --not-before, --not-after and --days");
}

/* The validity from the options: two of them fix the third. */
static struct validity leaf_validity(const struct leaf_args *a, time_t now)
{
    struct validity v = days_from_now(now, a->days);
    time_t len = (time_t)a->days * DAY;
    if (a->nb)
        v.not_before = when_arg("--not-before", a->nb, now);
    if (a->na)
        v.not_after = when_arg("--not-after", a->na, now);
    if (a->nb && !a->na)
        v.not_after = v.not_before + len;
    if (a->na && !a->nb)
        v.not_before = v.not_after - len;
    if (v.not_after <= v.not_before)
        die_usage("leaf: --not-after must be later than --not-before");
    return v;
}

static int cmd_leaf(int argc, char **argv)
{
    struct leaf_args a;
    struct pki pki;
    struct validity v;
    EVP_PKEY_CTX *kg;
    X509 *c = NULL;
    EVP_PKEY *k = NULL;
    char prefix[4096], crt[4200], key[4200];
    int rc;

    leaf_parse(argc, argv, &a);
    v = leaf_validity(&a, time(NULL));
    if (a.out)
        snprintf(prefix, sizeof prefix, "%s", a.out);
    else
        snprintf(prefix, sizeof prefix, "%s/%s/%s", a.dir, a.ca->name, a.cn);
    snprintf(crt, sizeof crt, "%s.crt", prefix);
    snprintf(key, sizeof key, "%s.key", prefix);
    if (!a.force && (exists(crt) || exists(key)))
        return FAIL("%s exists; use --force to replace it", exists(crt) ? crt : key);
    if ((rc = pki_open(&pki, a.dir, a.ca)) != 0)
        return rc;
    if ((kg = keygen_new(pki.curve)) == NULL) {
        rc = FAIL("curve %s is not available in this OpenSSL", pki.curve->name);
        goto out;
    }
    struct issuer ca = {pki.ca_cert, pki.ca_key};
    if ((rc = issue_new(&ca, a.ca->leaf, a.cn, kg, &v, &c, &k)) != 0)
        goto out;
    X509 *chain[] = {c, pki.ca_cert};
    if ((rc = write_pair(crt, chain, 2, key, k)) == 0)
        fprintf(stderr, "clsm-pki: %s (CN=%s, %s CA) and its key in %s\n", crt, a.cn, a.ca->name,
                key);
out:
    X509_free(c);
    EVP_PKEY_free(k);
    EVP_PKEY_CTX_free(kg);
    pki_close(&pki);
    return rc;
}

/* --- main ---------------------------------------------------------------- */

struct command {
    const char *name, *args, *help;
    int (*fn)(int argc, char **argv);
};

static const struct command commands[] = {
    {"init", "DIR [--curve brainpoolP256r1|prime256v1] [--emt ID]... [--gwa ID]... [--days N]",
     "make the root, the GWA, EMT and SMGW sub-CAs and the EMT (default: clsmd) and GWA\n"
     "      certificates; --days sets the EMT/GWA validity (default 730)",
     cmd_init},
    {"smgw",
     "DIR (--ids FILE | --count N --prefix EABC [--first 1]) [--jobs J] [--days N]\n"
     "      [--out FILE]",
     "issue one certificate and fresh key per gateway into a bundle (default\n"
     "      DIR/smgw/gateways.pem: certificate then PKCS#8 key, in id order)",
     cmd_smgw},
    {"leaf",
     "DIR --ca smgw|emt|gwa --cn NAME [--not-before WHEN] [--not-after WHEN] [--days N]\n"
     "      [--out PREFIX]",
     "issue one certificate and key (default DIR/<ca>/<NAME>.crt and .key); WHEN is\n"
     "      RFC 3339 or days from now (-1 = yesterday)",
     cmd_leaf},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: clsm-pki COMMAND ARGS [--force]\n\n"
                 "A test PKI shaped like the SM-PKI: root -> sub-CAs gwa, emt, smgw -> leaves.\n"
                 "--force replaces existing files instead of refusing.\n\ncommands:\n");
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        fprintf(out, "  %s %s\n      %s\n", commands[i].name, commands[i].args, commands[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        die_usage("no command given");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0))) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 2, argv + 2);
    die_usage("unknown command \"%s\"", argv[1]);
}
