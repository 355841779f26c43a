/*
 * clsmd.c - the CLS-Management server: reads its configuration, opens the
 * store, serves the API on one libevent loop and shuts down gracefully on
 * SIGTERM or SIGINT.
 */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <curl/curl.h>
#include <openssl/x509v3.h>

#include "api/api.h"
#include "audit/audit.h"
#include "channel/channel.h"
#include "channel/gwa_client.h"
#include "common/config.h"
#include "common/log.h"
#include "common/tls.h"
#include "dispatch/dispatch.h"
#include "meter/meter.h"
#include "meter/sensors.h"
#include "request/requests.h"
#include "store/commit.h"
#include "store/store.h"

extern char **environ;

struct clsmd {
    struct clsm_config cfg;
    struct event_base *base;
    struct store *store;
    struct committer *committer;
    struct audit *audit;
    struct api *api;
    struct dispatch *dispatch;
    struct requests *requests;
    struct channel_mgr *channels;
    struct gwa_client *gwa;
    struct meter *meter;
    struct sensors *sensors;
    SSL_CTX *meter_tls; /* holds the trust the meter service verifies signers with */
    X509 *smgw_ca;
    struct event *sigterm, *sigint, *grace;
    int stopping;
    int pending_stops; /* parts still draining after a signal */
};

static void usage(FILE *out)
{
    fprintf(out, "usage: clsmd [--config FILE] [--set KEY=VALUE]... [--check-config]\n"
                 "       clsmd --help-config | --list-routes | --version\n"
                 "\n"
                 "  --config FILE    read options from an INI file\n"
                 "  --set KEY=VALUE  set one option (after the file and CLSM_* variables)\n"
                 "  --check-config   print the effective configuration and exit\n"
                 "  --help-config    print the reference of all options and exit\n"
                 "  --list-routes    print the API routes and exit\n");
}

static void warn_env(const char *name, void *arg)
{
    (void)arg;
    static const char *const client_vars[] = {"CLSM_URL", "CLSM_TOKEN", NULL};
    for (int i = 0; client_vars[i]; i++)
        if (strcmp(name, client_vars[i]) == 0)
            return;
    LOG(LOG_WARN, "ignoring unknown environment variable", LOG_S("name", name));
}

#define MAX_SETS 128

/* Defaults, then the file, then CLSM_* variables, then --set flags.
 * Returns 0, 1 when the process should exit 0 (help), or -1 on errors. */
static int load_config(struct clsmd *d, int argc, char **argv, int *check_only)
{
    struct config_error err;
    const char *file = NULL, *sets[MAX_SETS];
    int nsets = 0;

    config_defaults(&d->cfg);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            file = argv[++i];
        } else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc && nsets < MAX_SETS) {
            sets[nsets++] = argv[++i];
        } else if (strcmp(argv[i], "--check-config") == 0) {
            *check_only = 1;
        } else if (strcmp(argv[i], "--help-config") == 0) {
            config_reference(stdout);
            return 1;
        } else if (strcmp(argv[i], "--list-routes") == 0) {
            api_print_routes(stdout);
            return 1;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("clsmd %s\n", CLSM_VERSION);
            return 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 1;
        } else {
            fprintf(stderr, "clsmd: unknown or incomplete argument \"%s\"\n", argv[i]);
            usage(stderr);
            return -1;
        }
    }
    if (file && config_load_file(&d->cfg, file, &err) != 0)
        goto fail;
    if (config_load_env(&d->cfg, environ, warn_env, NULL, &err) != 0)
        goto fail;
    for (int i = 0; i < nsets; i++) {
        char kv[CONFIG_PATH_MAX + 128], *eq;
        if (str_copy(kv, sizeof kv, sets[i]) != 0 || (eq = strchr(kv, '=')) == NULL) {
            snprintf(err.msg, sizeof err.msg, "--set %.64s: expected KEY=VALUE", sets[i]);
            goto fail;
        }
        *eq = '\0';
        if (config_set(&d->cfg, kv, eq + 1, "--set", &err) != 0)
            goto fail;
    }
    if (config_validate(&d->cfg, &err) != 0)
        goto fail;
    return 0;
fail:
    fprintf(stderr, "clsmd: configuration error: %s\n", err.msg);
    return -1;
}

/* One part (API, channels) has drained; the loop ends after the last. */
static void stopped_cb(void *arg)
{
    struct clsmd *d = arg;
    if (--d->pending_stops == 0)
        event_base_loopbreak(d->base);
}

static void grace_cb(evutil_socket_t fd, short what, void *arg)
{
    struct clsmd *d = arg;
    (void)fd;
    (void)what;
    LOG(LOG_WARN, "shutdown grace period over; closing remaining connections",
        LOG_I("grace_ms", d->cfg.shutdown_grace_ms));
    event_base_loopbreak(d->base);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct clsmd *d = arg;
    (void)what;
    if (d->stopping) {
        LOG(LOG_WARN, "second signal; stopping now", LOG_I("signal", sig));
        event_base_loopbreak(d->base);
        return;
    }
    d->stopping = 1;
    LOG(LOG_INFO, "shutting down", LOG_S("signal", sig == SIGTERM ? "TERM" : "INT"));
    struct timeval tv = {(time_t)(d->cfg.shutdown_grace_ms / 1000),
                         (suseconds_t)(d->cfg.shutdown_grace_ms % 1000) * 1000};
    event_add(d->grace, &tv);
    d->pending_stops = 1 + (d->channels != NULL) + (d->meter != NULL);
    if (d->channels)
        channel_mgr_shutdown(d->channels, stopped_cb, d);
    if (d->meter)
        meter_shutdown(d->meter, stopped_cb, d);
    api_shutdown(d->api, stopped_cb, d);
}

static const int tls_versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};

/* The passive EMT: the meter data listener, with the TLS profile and the
 * gateway trust of the channels. Off with the channels. */
static int start_meter(struct clsmd *d, const struct tls_profile *prof)
{
    char err[512];
    struct hostport bound;

    d->meter_tls =
        tls_server_ctx(prof, d->cfg.tls_cert, d->cfg.tls_key, d->cfg.tls_smgw_ca, err, sizeof err);
    if (d->meter_tls == NULL) {
        LOG(LOG_ERROR, "cannot set up TLS for meter data", LOG_S("error", err));
        return -1;
    }
    /* The sub-CA among the trusted certificates issues gateways; with only
     * self-signed ones the first of them. */
    X509_STORE *trust = SSL_CTX_get_cert_store(d->meter_tls);
    /* As for the TLS peers: every certificate in the trust file is an
     * anchor, so a file with only the SMGW sub-CA works for signers too. */
    X509_STORE_set_flags(trust, X509_V_FLAG_PARTIAL_CHAIN);
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(trust);
    for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
        X509 *c = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        if (c && (d->smgw_ca == NULL || !(X509_get_extension_flags(c) & EXFLAG_SS))) {
            X509_free(d->smgw_ca);
            d->smgw_ca = X509_dup(c);
            if (!(X509_get_extension_flags(c) & EXFLAG_SS))
                break;
        }
    }
    if (d->smgw_ca == NULL) {
        LOG(LOG_ERROR, "tls.smgw_ca holds no certificate", LOG_S("file", d->cfg.tls_smgw_ca));
        return -1;
    }
    struct meter_config mc = {(int)d->cfg.meter_max_connections, 60,
                              (int)d->cfg.meter_retention_days};
    d->meter =
        meter_new(d->base, d->store, d->committer, d->audit, d->meter_tls, trust, d->smgw_ca, &mc);
    if (d->meter == NULL)
        return -1;
    int rc = meter_listen(d->meter, &d->cfg.meter_listen, &bound);
    if (rc != 0) {
        LOG(LOG_ERROR, "cannot listen for meter data", LOG_S("host", d->cfg.meter_listen.host),
            LOG_I("port", d->cfg.meter_listen.port), LOG_S("error", strerror(-rc)));
        return -1;
    }
    char addr[300];
    snprintf(addr, sizeof addr, strchr(bound.host, ':') ? "[%s]:%d" : "%s:%d", bound.host,
             bound.port);
    LOG(LOG_INFO, "meter data listening", LOG_S("addr", addr));
    return 0;
}

/* The CLS channels: TLS listener, lpc-mqtt, the GWA client. Off (with a
 * warning) when no EMT certificate is configured. */
static int start_channels(struct clsmd *d)
{
    struct tls_profile prof;
    struct hostport bound;
    char err[512], endpoint[300];
    SSL_CTX *ctx;

    if (!d->cfg.tls_cert[0]) {
        LOG(LOG_WARN, "tls.cert is not set; CLS channels are off",
            LOG_S("hint", "scripts/mkpki.sh makes a test PKI"));
        return 0;
    }
    tls_profile_default(&prof);
    str_copy(prof.curves, sizeof prof.curves, d->cfg.tls_curves);
    str_copy(prof.ciphers, sizeof prof.ciphers, d->cfg.tls_ciphers);
    str_copy(prof.ciphersuites, sizeof prof.ciphersuites, d->cfg.tls_ciphersuites);
    prof.min_version = tls_versions[d->cfg.tls_min_version];
    prof.max_version = tls_versions[d->cfg.tls_max_version];
    ctx =
        tls_server_ctx(&prof, d->cfg.tls_cert, d->cfg.tls_key, d->cfg.tls_smgw_ca, err, sizeof err);
    if (ctx == NULL) {
        LOG(LOG_ERROR, "cannot set up TLS for channels", LOG_S("error", err));
        return -1;
    }
    struct channel_limits lim = {
        (int)d->cfg.channel_max_channels,       (int)d->cfg.channel_handshake_timeout_s,
        (int)d->cfg.channel_identify_timeout_s, (int)d->cfg.channel_idle_timeout_s,
        (size_t)d->cfg.channel_max_frame,       (size_t)d->cfg.channel_max_output,
        (int)d->cfg.channel_heartbeat_s,
    };
    struct channel_listener l = dispatch_channel_listener(d->dispatch);
    d->channels = channel_mgr_new(d->base, d->store, d->audit, ctx, &lim, &l);
    SSL_CTX_free(ctx);
    if (d->channels == NULL)
        return -1;
    int rc = channel_mgr_listen(d->channels, &d->cfg.channel_listen, &bound);
    if (rc != 0) {
        LOG(LOG_ERROR, "cannot listen for channels", LOG_S("host", d->cfg.channel_listen.host),
            LOG_I("port", d->cfg.channel_listen.port), LOG_S("error", strerror(-rc)));
        return -1;
    }
    snprintf(endpoint, sizeof endpoint, "%s:%d", bound.host, bound.port);
    if (d->cfg.channel_endpoint[0])
        str_copy(endpoint, sizeof endpoint, d->cfg.channel_endpoint);
    struct gwa_client_config gc = {
        .emt_id = d->cfg.emt_id,
        .endpoint = endpoint,
        .cert = d->cfg.tls_cert,
        .key = d->cfg.tls_key,
        .ca = d->cfg.tls_gwa_ca[0] ? d->cfg.tls_gwa_ca : NULL,
        .curves = d->cfg.tls_curves,
        .ciphers = d->cfg.tls_ciphers,
        .timeout_s = (int)d->cfg.gwa_timeout_s,
        .batch_max = (int)d->cfg.gwa_batch_max,
        .max_pending = (int)d->cfg.gwa_max_pending,
        .retry_max_s = (int)d->cfg.gwa_retry_max_s,
        .channel_wait_s = (int)d->cfg.gwa_channel_wait_s,
        .poll_s = 2,
    };
    d->gwa = gwa_client_new(d->base, d->store, &gc, dispatch_gwa_result, d->dispatch);
    if (d->gwa == NULL)
        return -1;
    dispatch_attach(d->dispatch, d->channels, d->gwa);
    LOG(LOG_INFO, "channels listening", LOG_S("addr", endpoint),
        LOG_I("max_channels", d->cfg.channel_max_channels));
    return start_meter(d, &prof);
}

/* One descriptor per channel and API connection, plus the store, the
 * listeners and the GWA connections. Raise the soft limit up to the hard
 * one and say so when even that is short: accepting would fail (and pause)
 * before the configured limits are reached. */
static void fd_budget(const struct clsmd *d)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)(d->cfg.channel_max_channels + d->cfg.api_max_connections + 256);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return;
    rlim_t had = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        rl.rlim_cur = had;
    if (rl.rlim_cur < want)
        LOG(LOG_WARN, "the descriptor limit is below channel.max_channels + api.max_connections",
            LOG_I("limit", (long long)rl.rlim_cur), LOG_I("wanted", (long long)want),
            LOG_S("hint", "raise the hard limit (LimitNOFILE=, ulimit -Hn) or lower the options"));
}

static void on_meter_power(void *arg, const char *installation, int64_t time_ms, int64_t watts)
{
    requests_measured_installation(arg, installation, time_ms, watts);
}

static int start(struct clsmd *d)
{
    struct store_options so = {d->cfg.store_synchronous == 1, (int)d->cfg.store_busy_timeout_ms};
    struct hostport bound;
    char err[512];
    int rc;

    rc = store_open(d->cfg.store_path, &so, &d->store, err, sizeof err);
    if (rc != 0) {
        LOG(LOG_ERROR, "cannot open the store", LOG_S("path", d->cfg.store_path),
            LOG_S("error", err));
        return -1;
    }
    LOG(LOG_INFO, "store open", LOG_S("path", d->cfg.store_path),
        LOG_I("schema_version", store_schema_version(d->store)),
        LOG_S("synchronous", config_synchronous_name(&d->cfg)));
    d->committer = commit_new(d->base, d->store);
    d->audit = d->committer ? audit_new(d->store, d->committer) : NULL;
    struct dispatch_config dc = {(int)d->cfg.command_deadline_s, (int)d->cfg.command_ack_timeout_s};
    d->dispatch = d->audit ? dispatch_new(d->base, d->store, d->audit, d->committer, &dc) : NULL;
    d->api = d->dispatch ? api_new(d->base, d->store, &d->cfg) : NULL;
    if (d->api == NULL)
        return -1;
    if (d->cfg.tls_cert[0])
        fd_budget(d);
    if (start_channels(d) != 0)
        return -1;
    api_set_runtime(d->api, d->dispatch, d->channels);
    if (api_set_events(d->api, d->audit, d->committer, &d->cfg) != 0)
        return -1;
    struct requests_config rq_cfg = {
        (int)d->cfg.request_grid_deadline_s,    (int)d->cfg.request_cascade_deadline_s,
        (int)d->cfg.request_market_deadline_s,  (int)d->cfg.request_max_targets,
        (int)d->cfg.request_compliance_grace_s,
    };
    d->requests = requests_new(d->base, d->store, d->audit, d->committer, d->dispatch, &rq_cfg);
    if (d->requests == NULL)
        return -1;
    api_set_requests(d->api, d->requests);
    if (d->meter)
        meter_set_power_listener(d->meter, on_meter_power, d->requests);
    if (d->gwa) { /* sensors report only through channels */
        struct sensors_config sc = {(int)d->cfg.sensor_door_open_alarm_s,
                                    (int)d->cfg.sensor_fill_level_alarm_pct,
                                    (int)d->cfg.sensor_rescan_s};
        d->sensors = sensors_new(d->base, d->store, d->audit, d->dispatch, &sc);
        if (d->sensors == NULL)
            return -1;
    }
    if (dispatch_resume(d->dispatch) != 0)
        LOG(LOG_ERROR, "unfinished commands could not be resumed",
            LOG_S("error", store_errmsg(d->store)));
    if (requests_resume(d->requests) != 0)
        LOG(LOG_ERROR, "requests could not be resumed", LOG_S("error", store_errmsg(d->store)));
    if (!d->cfg.auth_admin_token[0])
        LOG(LOG_WARN, "auth.admin_token is not set; only party tokens can use the API",
            LOG_S("hint", "set auth.admin_token or CLSM_AUTH_ADMIN_TOKEN"));
    rc = api_listen(d->api, &d->cfg.api_listen, &bound);
    if (rc != 0) {
        LOG(LOG_ERROR, "cannot listen for the API", LOG_S("host", d->cfg.api_listen.host),
            LOG_I("port", d->cfg.api_listen.port), LOG_S("error", strerror(-rc)));
        return -1;
    }
    char addr[300];
    snprintf(addr, sizeof addr, strchr(bound.host, ':') ? "[%s]:%d" : "%s:%d", bound.host,
             bound.port);
    LOG(LOG_INFO, "api listening", LOG_S("addr", addr), LOG_S("version", CLSM_VERSION));
    return 0;
}

int main(int argc, char **argv)
{
    struct clsmd d;
    int check_only = 0, rc, status = 1;
    enum log_level lvl;

    memset(&d, 0, sizeof d);
    rc = load_config(&d, argc, argv, &check_only);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (check_only) {
        config_dump(&d.cfg, stdout);
        return 0;
    }
    lvl = (enum log_level)d.cfg.log_level;
    log_init(lvl, 2);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    d.base = event_base_new();
    if (d.base == NULL)
        return 1;
    d.sigterm = evsignal_new(d.base, SIGTERM, signal_cb, &d);
    d.sigint = evsignal_new(d.base, SIGINT, signal_cb, &d);
    d.grace = evtimer_new(d.base, grace_cb, &d);
    if (!d.sigterm || !d.sigint || !d.grace)
        goto out;
    event_add(d.sigterm, NULL);
    event_add(d.sigint, NULL);
    if (start(&d) != 0)
        goto out;
    event_base_dispatch(d.base);
    status = 0;
out:
    /* Write what changed last; then commands (their submitters are answered
     * through the API) and what they use; the store closes last. */
    if (d.committer)
        commit_now(d.committer);
    sensors_free(d.sensors);
    requests_free(d.requests);
    dispatch_free(d.dispatch);
    gwa_client_free(d.gwa);
    channel_mgr_free(d.channels);
    meter_free(d.meter);
    SSL_CTX_free(d.meter_tls);
    X509_free(d.smgw_ca);
    api_free(d.api);
    audit_free(d.audit);
    commit_free(d.committer);
    store_close(d.store);
    curl_global_cleanup();
    if (d.sigterm)
        event_free(d.sigterm);
    if (d.sigint)
        event_free(d.sigint);
    if (d.grace)
        event_free(d.grace);
    event_base_free(d.base);
    LOG(LOG_INFO, "stopped", LOG_I("status", status));
    return status;
}
