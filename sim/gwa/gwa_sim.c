/*
 * gwa_sim.c - clsm-gwa-sim, one simulated gateway administrator: reads its
 * options, its gateways (a registry document) and its credentials (a test
 * PKI), then serves docs/protocols/gwa.md on one libevent loop and sends
 * signed wake-ups, until SIGTERM or SIGINT.
 */
#include <errno.h>
#include <event2/event.h>
#include <netdb.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/log.h"
#include "common/pki.h"
#include "common/tls.h"
#include "common/util.h"
#include "gwa/gwa_api.h"
#include "gwa/gwa_fleet.h"
#include "gwa/gwa_orders.h"
#include "gwa/gwa_waker.h"
#include "registry/registry.h"

#define MAX_LIST         100000 /* --emt / --deny values */
#define GRACE_MS         5000   /* after SIGTERM, before connections are cut */
#define EXPIRE_PERIOD_MS 250

/* --- options -------------------------------------------------------------------- */

struct strlist {
    const char **v; /* pointers into argv or the defaults below */
    size_t n, cap;
};

struct opts {
    const char *id, *pki, *listen, *registry, *wakeup, *log_level;
    struct strlist emts, deny;
    long long retries, interval_ms, latency_ms, drop_pct, fail503_pct, throttle, seed;
    long long max_orders, max_connections;
    long long help, version;
};

enum opt_kind { OPT_STR, OPT_INT, OPT_LIST, OPT_FLAG };

struct opt_def {
    const char *name, *arg;
    enum opt_kind kind;
    size_t off;
    long long min, max;
    const char *def; /* NULL: none (required when 'min' is 1 for strings) */
    const char *help;
};

#define O(f)     offsetof(struct opts, f)
#define REQUIRED 1

static const struct opt_def opt_defs[] = {
    {"--id", "ID", OPT_STR, O(id), REQUIRED, 0, NULL,
     "this GWA (required); its TLS and signing credentials are PKI/gwa/ID.crt and .key"},
    {"--pki", "DIR", OPT_STR, O(pki), REQUIRED, 0, NULL,
     "the test PKI made by clsm-pki (required); clients must chain to DIR/root.crt"},
    {"--listen", "HOST:PORT", OPT_STR, O(listen), 0, 0, "127.0.0.1:0",
     "HTTPS address; port 0 picks a free port (see the \"gwa listening\" log line)"},
    {"--registry", "FILE", OPT_STR, O(registry), REQUIRED, 0, NULL,
     "registry import document (required): the smgws whose \"gwa\" is ID, and their devices"},
    {"--emt", "ID", OPT_LIST, O(emts), 0, 0, "clsmd",
     "an EMT entitled to reach every CLS of our gateways; repeatable"},
    {"--deny", "CLS", OPT_LIST, O(deny), 0, 0, NULL,
     "a CLS device that no EMT may reach (answered 403); repeatable"},
    {"--wakeup", "HOST:PORT", OPT_STR, O(wakeup), REQUIRED, 0, NULL,
     "UDP address of the gateway fleet simulator (required)"},
    {"--wakeup-retries", "N", OPT_INT, O(retries), 1, 255, "3",
     "wake-ups per order; an order not fetched after N of them fails"},
    {"--wakeup-interval-ms", "N", OPT_INT, O(interval_ms), 10, 3600000, "2000",
     "wait after each wake-up before the next one (or the failure)"},
    {"--latency-ms", "N", OPT_INT, O(latency_ms), 0, 60000, "0",
     "fault: delay every HTTP answer by N ms"},
    {"--drop-wakeups", "PCT", OPT_INT, O(drop_pct), 0, 100, "0",
     "fault: this share of wake-ups is not sent (counted as attempts)"},
    {"--fail-503", "PCT", OPT_INT, O(fail503_pct), 0, 100, "0",
     "fault: this share of channel-request POSTs is answered 503, Retry-After: 1"},
    {"--throttle", "N", OPT_INT, O(throttle), 0, 1000000, "0",
     "fault: at most N channel-request POSTs per second, the rest 429, Retry-After: 1 (0: off)"},
    {"--seed", "N", OPT_INT, O(seed), 0, INT64_MAX, "1",
     "seed of the fault injection (same seed, same faults)"},
    {"--max-orders", "N", OPT_INT, O(max_orders), 1, 100000000, "1000000",
     "orders kept at most; channel requests beyond are answered 503"},
    {"--max-connections", "N", OPT_INT, O(max_connections), 1, 1000000, "4096",
     "open HTTPS connections at most"},
    {"--log-level", "LEVEL", OPT_STR, O(log_level), 0, 0, "info", "debug, info, warn or error"},
    {"--help", NULL, OPT_FLAG, O(help), 0, 0, NULL, "print this help and exit"},
    {"--version", NULL, OPT_FLAG, O(version), 0, 0, NULL, "print the version and exit"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: clsm-gwa-sim --id ID --pki DIR --registry FILE --wakeup HOST:PORT "
                 "[OPTION]...\n\n"
                 "A gateway administrator for tests and demos (docs/protocols/gwa.md): takes\n"
                 "channel requests from EMTs over mutual TLS, checks entitlements, wakes the\n"
                 "gateways with signed UDP datagrams and hands them their orders.\n\n");
    for (size_t i = 0; i < ARRAY_LEN(opt_defs); i++) {
        const struct opt_def *d = &opt_defs[i];
        char head[64];
        snprintf(head, sizeof head, "%s%s%s", d->name, d->arg ? " " : "", d->arg ? d->arg : "");
        fprintf(out, "  %s\n      %s", head, d->help);
        if (d->def)
            fprintf(out, " (default %s)", d->def);
        fputc('\n', out);
    }
}

static int list_add(struct strlist *l, const char *v)
{
    if (l->n == MAX_LIST)
        return -E2BIG;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        const char **p = realloc(l->v, nc * sizeof *p);
        if (p == NULL)
            return -ENOMEM;
        l->v = p;
        l->cap = nc;
    }
    l->v[l->n++] = v;
    return 0;
}

/* Store 'val' for option 'd'. Returns 0 or -1 after a message. */
static int opt_set(struct opts *o, const struct opt_def *d, const char *val)
{
    char *base = (char *)o;
    switch (d->kind) {
    case OPT_STR:
        *(const char **)(void *)(base + d->off) = val;
        return 0;
    case OPT_FLAG:
        *(long long *)(void *)(base + d->off) = 1;
        return 0;
    case OPT_LIST:
        if (list_add((struct strlist *)(void *)(base + d->off), val) == 0)
            return 0;
        fprintf(stderr, "clsm-gwa-sim: too many %s values\n", d->name);
        return -1;
    case OPT_INT:
        if (parse_ll(val, d->min, d->max, (long long *)(void *)(base + d->off)) == 0)
            return 0;
        fprintf(stderr, "clsm-gwa-sim: %s wants a whole number from %lld to %lld, not \"%s\"\n",
                d->name, d->min, d->max, val);
        return -1;
    }
    return -1;
}

static const struct opt_def *opt_find(const char *name, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(opt_defs); i++)
        if (strlen(opt_defs[i].name) == len && strncmp(opt_defs[i].name, name, len) == 0)
            return &opt_defs[i];
    return NULL;
}

/* Defaults, then argv ("--name value" or "--name=value"), then the
 * required ones. Returns 0, 1 to exit 0 (help, version), or -1. */
static int opts_parse(struct opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < ARRAY_LEN(opt_defs); i++)
        if (opt_defs[i].def && opt_defs[i].kind != OPT_LIST &&
            opt_set(o, &opt_defs[i], opt_defs[i].def) != 0)
            return -1;
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        size_t len = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
        const struct opt_def *d = opt_find(argv[i], len);
        if (d == NULL || (d->kind == OPT_FLAG && eq)) {
            fprintf(stderr, "clsm-gwa-sim: unknown option \"%s\" (see --help)\n", argv[i]);
            return -1;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (d->kind != OPT_FLAG && val == NULL) {
            if (i + 1 == argc) {
                fprintf(stderr, "clsm-gwa-sim: %s needs a value\n", d->name);
                return -1;
            }
            val = argv[++i];
        }
        if (opt_set(o, d, val) != 0)
            return -1;
    }
    if (o->help || o->version)
        return 1;
    for (size_t i = 0; i < ARRAY_LEN(opt_defs); i++) {
        const struct opt_def *d = &opt_defs[i];
        if (d->kind == OPT_STR && d->min == REQUIRED &&
            *(const char **)(void *)((char *)o + d->off) == NULL) {
            fprintf(stderr, "clsm-gwa-sim: %s is required (see --help)\n", d->name);
            return -1;
        }
        if (d->kind == OPT_LIST && d->def &&
            ((struct strlist *)(void *)((char *)o + d->off))->n == 0 && opt_set(o, d, d->def) != 0)
            return -1;
    }
    return 0;
}

/* Checks that need more than a range. Returns 0 or -1 after a message. */
static int opts_check(const struct opts *o, struct hostport *listen, struct hostport *wakeup,
                      enum log_level *lvl)
{
    if (!reg_is_generic_id(o->id)) {
        fprintf(stderr, "clsm-gwa-sim: --id \"%s\" is not an id (1-96 of A-Z a-z 0-9 . _ : -)\n",
                o->id);
        return -1;
    }
    if (o->emts.n > GWA_API_MAX_EMTS) {
        fprintf(stderr, "clsm-gwa-sim: at most %d --emt values\n", GWA_API_MAX_EMTS);
        return -1;
    }
    for (size_t i = 0; i < o->emts.n; i++) {
        if (!reg_is_generic_id(o->emts.v[i])) {
            fprintf(stderr, "clsm-gwa-sim: --emt \"%s\" is not an EMT id\n", o->emts.v[i]);
            return -1;
        }
    }
    if (hostport_parse(o->listen, listen) != 0) {
        fprintf(stderr, "clsm-gwa-sim: --listen \"%s\" is not HOST:PORT\n", o->listen);
        return -1;
    }
    if (hostport_parse(o->wakeup, wakeup) != 0 || wakeup->port == 0) {
        fprintf(stderr, "clsm-gwa-sim: --wakeup \"%s\" is not HOST:PORT\n", o->wakeup);
        return -1;
    }
    if (log_level_parse(o->log_level, lvl) != 0) {
        fprintf(stderr, "clsm-gwa-sim: --log-level \"%s\" is not debug, info, warn or error\n",
                o->log_level);
        return -1;
    }
    return 0;
}

/* --- the process ------------------------------------------------------------------ */

struct sim {
    struct opts o;
    struct event_base *base;
    struct gwa_fleet *fleet;
    struct gwa_orders *orders;
    struct gwa_waker *waker;
    struct gwa_api *api;
    SSL_CTX *tls;
    EVP_PKEY *key;
    X509 *emt_ca, *smgw_ca;
    struct event *sigterm, *sigint, *grace, *expire;
    int stopping;
};

static void stopped_cb(void *arg)
{
    struct sim *s = arg;
    event_base_loopbreak(s->base);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sim *s = arg;
    (void)fd;
    (void)what;
    LOG(LOG_WARN, "shutdown grace period over; closing remaining connections",
        LOG_I("grace_ms", GRACE_MS));
    event_base_loopbreak(s->base);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct sim *s = arg;
    (void)what;
    if (s->stopping) {
        LOG(LOG_WARN, "second signal; stopping now", LOG_I("signal", sig));
        event_base_loopbreak(s->base);
        return;
    }
    s->stopping = 1;
    LOG(LOG_INFO, "shutting down", LOG_S("gwa", s->o.id),
        LOG_S("signal", sig == SIGTERM ? "TERM" : "INT"));
    struct timeval tv = {GRACE_MS / 1000, (GRACE_MS % 1000) * 1000};
    event_add(s->grace, &tv);
    gwa_waker_stop(s->waker);
    gwa_api_shutdown(s->api, stopped_cb, s);
}

static void expire_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sim *s = arg;
    (void)fd;
    (void)what;
    gwa_orders_expire(s->orders, time_now_ms());
}

static int load_fleet(struct sim *s)
{
    char err[600];
    int64_t t0 = time_mono_us();
    int rc = gwa_fleet_load(s->o.registry, s->o.id, &s->fleet, err, sizeof err);
    if (rc != 0) {
        LOG(LOG_ERROR, "cannot load the registry", LOG_S("gwa", s->o.id), LOG_S("error", err));
        return -1;
    }
    LOG(LOG_INFO, "registry loaded", LOG_S("gwa", s->o.id), LOG_S("file", s->o.registry),
        LOG_I("gateways", (long long)gwa_fleet_gateways(s->fleet)),
        LOG_I("devices", (long long)gwa_fleet_devices(s->fleet)),
        LOG_I("ms", (time_mono_us() - t0) / 1000));
    if (gwa_fleet_gateways(s->fleet) == 0)
        LOG(LOG_WARN, "no gateway in the registry is administered by this GWA",
            LOG_S("gwa", s->o.id), LOG_S("file", s->o.registry));
    for (size_t i = 0; i < s->o.deny.n; i++)
        if (gwa_fleet_deny(s->fleet, s->o.deny.v[i]) != 0)
            LOG(LOG_WARN, "--deny names no device of this GWA", LOG_S("cls", s->o.deny.v[i]));
    return 0;
}

/* "PKI/<rel>" into 'buf'; returns 0 or -1 after a log line. */
static int pki_path(const struct sim *s, char *buf, size_t len, const char *rel)
{
    int n = snprintf(buf, len, "%s/%s", s->o.pki, rel);
    if (n < 0 || (size_t)n >= len) {
        LOG(LOG_ERROR, "path too long", LOG_S("pki", s->o.pki), LOG_S("file", rel));
        return -1;
    }
    return 0;
}

static int load_pki(struct sim *s)
{
    char crt[4096], key[4096], root[4096], emt[4096], smgw[4096], err[PKI_ERRLEN];
    char crt_rel[128], key_rel[128];
    struct tls_profile prof;

    snprintf(crt_rel, sizeof crt_rel, "gwa/%s.crt", s->o.id);
    snprintf(key_rel, sizeof key_rel, "gwa/%s.key", s->o.id);
    if (pki_path(s, crt, sizeof crt, crt_rel) != 0 || pki_path(s, key, sizeof key, key_rel) != 0 ||
        pki_path(s, root, sizeof root, "root.crt") != 0 ||
        pki_path(s, emt, sizeof emt, "emt-ca.crt") != 0 ||
        pki_path(s, smgw, sizeof smgw, "smgw-ca.crt") != 0)
        return -1;
    if (pki_load_key(key, &s->key, err, sizeof err) != 0 ||
        pki_load_cert(emt, &s->emt_ca, err, sizeof err) != 0 ||
        pki_load_cert(smgw, &s->smgw_ca, err, sizeof err) != 0) {
        LOG(LOG_ERROR, "cannot load the PKI", LOG_S("gwa", s->o.id), LOG_S("error", err));
        return -1;
    }
    tls_profile_default(&prof);
    /* OpenSSL 3.0 refuses brainpool certificates in TLS 1.3 after the
     * version is chosen, so a brainpool GWA offers TLS 1.2 only
     * (DESIGN.md §5.4); clients that could do 1.3 would fail otherwise. */
    char group[64] = "";
    if (EVP_PKEY_get_group_name(s->key, group, sizeof group, NULL) == 1 &&
        strncmp(group, "brainpool", 9) == 0)
        prof.max_version = TLS1_2_VERSION;
    s->tls = tls_server_ctx(&prof, crt, key, root, err, sizeof err);
    if (s->tls == NULL) {
        LOG(LOG_ERROR, "cannot set up TLS", LOG_S("gwa", s->o.id), LOG_S("error", err));
        return -1;
    }
    /* Clients chain to the root; the two sub-CAs are in the store as well so
     * that clients sending only their leaf (the gateway fleet simulator)
     * verify too. The role is pinned by issuer per request (gwa_api.c). */
    X509_STORE *store = SSL_CTX_get_cert_store(s->tls);
    if (X509_STORE_add_cert(store, s->emt_ca) != 1 || X509_STORE_add_cert(store, s->smgw_ca) != 1) {
        LOG(LOG_ERROR, "cannot set up TLS", LOG_S("gwa", s->o.id),
            LOG_S("error", tls_last_error(err, sizeof err)));
        return -1;
    }
    LOG(LOG_INFO, "tls ready", LOG_S("gwa", s->o.id), LOG_S("curve", group),
        LOG_S("max_version", prof.max_version == TLS1_2_VERSION ? "1.2" : "1.3"));
    return 0;
}

static int resolve_udp(const struct hostport *hp, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints, *res = NULL;
    char port[16];

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof port, "%d", hp->port);
    int rc = getaddrinfo(hp->host, port, &hints, &res);
    if (rc != 0) {
        LOG(LOG_ERROR, "cannot resolve the wake-up address", LOG_S("host", hp->host),
            LOG_S("error", gai_strerror(rc)));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* A storm of gateways needs a descriptor each: raise the soft limit as far
 * as --max-connections asks and the hard limit allows. */
static void raise_fd_limit(const struct sim *s)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)s->o.max_connections + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        LOG(LOG_WARN, "descriptor limit below --max-connections", LOG_S("gwa", s->o.id),
            LOG_I("limit", (long long)rl.rlim_cur), LOG_I("max_connections", s->o.max_connections));
}

static int start(struct sim *s, const struct hostport *listen, const struct hostport *wakeup)
{
    struct gwa_waker_config wc;
    struct hostport bound;
    char err[512], addr[300];

    if (load_fleet(s) != 0 || load_pki(s) != 0)
        return -1;
    raise_fd_limit(s);
    memset(&wc, 0, sizeof wc);
    if (resolve_udp(wakeup, &wc.target, &wc.target_len) != 0)
        return -1;
    wc.gwa_id = s->o.id;
    wc.key = s->key;
    wc.retries = (int)s->o.retries;
    wc.interval_ms = s->o.interval_ms;
    wc.drop_pct = (int)s->o.drop_pct;
    wc.seed = (uint64_t)s->o.seed;
    s->orders = gwa_orders_new(s->o.id, (size_t)s->o.max_orders);
    s->waker = s->orders ? gwa_waker_new(s->base, s->orders, &wc, err, sizeof err) : NULL;
    if (s->waker == NULL) {
        LOG(LOG_ERROR, "cannot set up wake-ups", LOG_S("gwa", s->o.id),
            LOG_S("error", s->orders ? err : "out of memory"));
        return -1;
    }
    struct gwa_api_config ac = {
        s->o.id,
        s->o.emts.v,
        s->o.emts.n,
        (int)s->o.latency_ms,
        (int)s->o.fail503_pct,
        (int)s->o.throttle,
        (uint64_t)s->o.seed,
        (int)s->o.max_connections,
        s->tls,
        s->emt_ca,
        s->smgw_ca,
    };
    s->api = gwa_api_new(s->base, &ac, s->fleet, s->orders, s->waker);
    if (s->api == NULL)
        return -1;
    int rc = gwa_api_listen(s->api, listen, &bound);
    if (rc != 0) {
        LOG(LOG_ERROR, "cannot listen", LOG_S("gwa", s->o.id), LOG_S("host", listen->host),
            LOG_I("port", listen->port), LOG_S("error", strerror(-rc)));
        return -1;
    }
    snprintf(addr, sizeof addr, strchr(bound.host, ':') ? "[%s]:%d" : "%s:%d", bound.host,
             bound.port);
    LOG(LOG_INFO, "gwa listening", LOG_S("addr", addr), LOG_S("gwa", s->o.id),
        LOG_S("wakeup", s->o.wakeup), LOG_I("emts", (long long)s->o.emts.n),
        LOG_S("version", CLSM_VERSION));
    return 0;
}

int main(int argc, char **argv)
{
    struct sim s;
    struct hostport listen, wakeup;
    enum log_level lvl;
    int status = 1;

    memset(&s, 0, sizeof s);
    int rc = opts_parse(&s.o, argc, argv);
    if (rc == 0)
        rc = opts_check(&s.o, &listen, &wakeup, &lvl);
    if (rc != 0 || s.o.help || s.o.version) {
        if (rc > 0 && s.o.help)
            usage(stdout);
        else if (rc > 0)
            printf("clsm-gwa-sim %s\n", CLSM_VERSION);
        free(s.o.emts.v);
        free(s.o.deny.v);
        return rc > 0 ? 0 : 2;
    }
    log_init(lvl, 2);
    signal(SIGPIPE, SIG_IGN);
    s.base = event_base_new();
    if (s.base == NULL)
        goto out;
    s.sigterm = evsignal_new(s.base, SIGTERM, signal_cb, &s);
    s.sigint = evsignal_new(s.base, SIGINT, signal_cb, &s);
    s.grace = evtimer_new(s.base, grace_cb, &s);
    s.expire = event_new(s.base, -1, EV_PERSIST, expire_cb, &s);
    if (!s.sigterm || !s.sigint || !s.grace || !s.expire)
        goto out;
    event_add(s.sigterm, NULL);
    event_add(s.sigint, NULL);
    if (start(&s, &listen, &wakeup) != 0)
        goto out;
    struct timeval tv = {0, EXPIRE_PERIOD_MS * 1000};
    event_add(s.expire, &tv);
    event_base_dispatch(s.base);
    status = 0;
    /* Freeing the signal events restores the default action; a second
     * signal during the clean-up must not turn exit 0 into a kill. */
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
out:
    /* The API first: it answers what the latency fault still holds. */
    gwa_api_free(s.api);
    gwa_waker_free(s.waker);
    gwa_orders_free(s.orders);
    gwa_fleet_free(s.fleet);
    SSL_CTX_free(s.tls);
    EVP_PKEY_free(s.key);
    X509_free(s.emt_ca);
    X509_free(s.smgw_ca);
    if (s.sigterm)
        event_free(s.sigterm);
    if (s.sigint)
        event_free(s.sigint);
    if (s.grace)
        event_free(s.grace);
    if (s.expire)
        event_free(s.expire);
    if (s.base)
        event_base_free(s.base);
    free(s.o.emts.v);
    free(s.o.deny.v);
    LOG(LOG_INFO, "stopped", LOG_S("gwa", s.o.id), LOG_I("status", status));
    return status;
}
