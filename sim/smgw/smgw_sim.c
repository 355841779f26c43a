/*
 * smgw_sim.c - clsm-smgw-sim: a fleet of simulated Smart Meter Gateways and
 * their CLS devices in one event-driven process (sim.h). Options, start-up,
 * the once-a-second tick, the stats endpoint and shutdown live here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "api/http.h"
#include "common/log.h"
#include "common/pki.h"
#include "common/tls.h"
#include "common/wakeup.h"
#include "smgw/sim.h"

#define MAX_FAULTS        256
#define MAX_GWA_OVERRIDES 16

struct fault_spec {
    unsigned kind;
    char device[97];
    char arg[97];
};

struct cli {
    struct fault_spec faults[MAX_FAULTS];
    int nfaults;
    char gwa_over[MAX_GWA_OVERRIDES][400];
    int ngwa_over;
};

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: clsm-smgw-sim --pki DIR --registry FILE [options]\n"
        "\n"
        "A fleet of Smart Meter Gateways with their CLS devices (Steuerbox model,\n"
        "MQTT clients on libmosquitto) in one process.\n"
        "\n"
        "  --pki DIR              test PKI (clsm-pki): gateway bundle, root, GWA certificates\n"
        "  --registry FILE        registry import document: gateways, devices, GWAs\n"
        "  --bundle FILE          gateway credentials (default DIR/smgw/gateways.pem)\n"
        "  --udp HOST:PORT        wake-up socket (default 127.0.0.1:0)\n"
        "  --stats HOST:PORT      plain HTTP: GET /v1/stats, GET /v1/devices/ID[?cmd=ID]\n"
        "  --gwa ID=URL           a GWA's endpoint, overriding the registry\n"
        "  --keepalive S          device MQTT keepalive (default 60)\n"
        "  --telemetry S          telemetry interval of connected devices (0 = off)\n"
        "  --heartbeat S          device heartbeat timeout before failsafe (default 120)\n"
        "  --channel-idle S       close channels idle this long (default 300)\n"
        "  --max-channels N       open channels at most (default: what descriptors allow)\n"
        "  --meter HOST:PORT      post signed meter data to clsmd's meter listener there\n"
        "  --meter-period-s S     each gateway posts every S seconds (default 900)\n"
        "  --curves LIST          TLS groups (default brainpoolP256r1:prime256v1)\n"
        "  --fault KIND:DEVICE[:ARG]  nack | slow:MS | drop | wrongid | claim:OTHER | malformed\n"
        "                         | overdraw (confirms caps, draws its full demand)\n"
        "                         | smoke | door (stays open) | fill:PCT   (sensors)\n"
        "  --log-level LEVEL      debug, info, warn, error\n");
}

static int parse_fault(const char *spec, struct fault_spec *f)
{
    char buf[256], *kind = buf, *dev, *arg;
    if (str_copy(buf, sizeof buf, spec) != 0 || (dev = strchr(buf, ':')) == NULL)
        return -EINVAL;
    *dev++ = '\0';
    arg = strchr(dev, ':');
    if (arg)
        *arg++ = '\0';
    static const struct {
        const char *name;
        unsigned kind;
        int needs_arg;
    } kinds[] = {{"nack", F_NACK, 0},         {"slow", F_SLOW, 1},   {"drop", F_DROP, 0},
                 {"wrongid", F_WRONG_ID, 0},  {"claim", F_CLAIM, 1}, {"malformed", F_MALFORMED, 0},
                 {"overdraw", F_OVERDRAW, 0}, {"smoke", F_SMOKE, 0}, {"door", F_DOOR, 0},
                 {"fill", F_FILL, 1}};
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
        if (strcmp(kind, kinds[i].name) != 0)
            continue;
        if (kinds[i].needs_arg != (arg != NULL))
            return -EINVAL;
        f->kind = kinds[i].kind;
        str_copy(f->device, sizeof f->device, dev);
        str_copy(f->arg, sizeof f->arg, arg ? arg : "");
        return 0;
    }
    return -EINVAL;
}

static int parse_args(struct sim *s, struct cli *cli, int argc, char **argv)
{
    struct sim_opts *o = &s->opt;
    long long v;
    str_copy(o->udp.host, sizeof o->udp.host, "127.0.0.1");
    o->keepalive_s = 60;
    o->channel_idle_s = 300;
    o->heartbeat_s = 120;
    o->log_level = LOG_INFO;
    str_copy(o->curves, sizeof o->curves, "brainpoolP256r1:prime256v1");
    o->meter_period_s = 900;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = val != NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--pki") == 0 && ok) {
            str_copy(o->pki, sizeof o->pki, val);
        } else if (strcmp(a, "--registry") == 0 && ok) {
            str_copy(o->registry, sizeof o->registry, val);
        } else if (strcmp(a, "--bundle") == 0 && ok) {
            str_copy(o->bundle, sizeof o->bundle, val);
        } else if (strcmp(a, "--udp") == 0 && ok) {
            ok = hostport_parse(val, &o->udp) == 0;
        } else if (strcmp(a, "--stats") == 0 && ok) {
            ok = hostport_parse(val, &o->stats) == 0;
            o->have_stats = 1;
        } else if (strcmp(a, "--gwa") == 0 && ok && cli->ngwa_over < MAX_GWA_OVERRIDES) {
            ok = strchr(val, '=') != NULL;
            str_copy(cli->gwa_over[cli->ngwa_over++], sizeof cli->gwa_over[0], val);
        } else if (strcmp(a, "--fault") == 0 && ok && cli->nfaults < MAX_FAULTS) {
            ok = parse_fault(val, &cli->faults[cli->nfaults++]) == 0;
        } else if (strcmp(a, "--meter") == 0 && ok) {
            ok = hostport_parse(val, &o->meter) == 0;
            o->have_meter = 1;
        } else if (strcmp(a, "--meter-period-s") == 0 && ok) {
            ok = parse_ll(val, 1, 86400, &v) == 0;
            o->meter_period_s = (int)v;
        } else if (strcmp(a, "--curves") == 0 && ok) {
            str_copy(o->curves, sizeof o->curves, val);
        } else if (strcmp(a, "--log-level") == 0 && ok) {
            enum log_level l;
            ok = log_level_parse(val, &l) == 0;
            o->log_level = (int)l;
        } else if ((strcmp(a, "--keepalive") == 0 || strcmp(a, "--telemetry") == 0 ||
                    strcmp(a, "--heartbeat") == 0 || strcmp(a, "--channel-idle") == 0 ||
                    strcmp(a, "--max-channels") == 0) &&
                   ok) {
            ok = parse_ll(val, 0, 10000000, &v) == 0;
            int *dst = strcmp(a, "--keepalive") == 0      ? &o->keepalive_s
                       : strcmp(a, "--telemetry") == 0    ? &o->telemetry_s
                       : strcmp(a, "--heartbeat") == 0    ? &o->heartbeat_s
                       : strcmp(a, "--channel-idle") == 0 ? &o->channel_idle_s
                                                          : &o->max_channels;
            *dst = (int)v;
        } else {
            ok = 0;
        }
        if (!ok) {
            fprintf(stderr, "clsm-smgw-sim: bad or incomplete argument \"%s\"\n", a);
            usage(stderr);
            return -1;
        }
    }
    if (!o->pki[0] || !o->registry[0]) {
        fprintf(stderr, "clsm-smgw-sim: --pki and --registry are required\n");
        return -1;
    }
    if (!o->bundle[0])
        snprintf(o->bundle, sizeof o->bundle, "%s/smgw/gateways.pem", o->pki);
    return 0;
}

/* Five descriptors per channel: the TLS connection to clsmd, both ends of
 * the home-area connection of the device, and the socket pair libmosquitto
 * keeps per client to interrupt its loop. Kept aside: 200 for everything
 * else and up to 1,000 for order fetches, which run while channels are
 * open. */
static int channel_budget(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 10000;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    long fetches = (long)rl.rlim_cur > 6000 ? 1000 : (long)rl.rlim_cur / 6;
    long n = ((long)rl.rlim_cur - 200 - fetches) / 5;
    return n > 1 ? (int)n : 1;
}

/* --- stats ---------------------------------------------------------------------------- */

static json_t *stats_json(const struct sim *s)
{
    static const char *const bad[] = {"malformed",     "not_ours", "stale",    "unknown_gwa",
                                      "bad_signature", "replay",   "overload", "other"};
    json_t *w = json_object();
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        json_object_set_new(w, bad[i], json_integer((json_int_t)s->wakeups_bad[i]));
    return json_pack(
        "{s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:I, s:I, s:I, s:I, s:I, "
        "s:I, s:I, s:I, s:I}",
        "gateways", (json_int_t)s->ngws, "devices", (json_int_t)s->ndevs, "wakeups_rejected", w,
        "wakeups_accepted", (json_int_t)s->wakeups_ok, "fetches_ok", (json_int_t)s->fetches_ok,
        "fetches_failed", (json_int_t)s->fetches_failed, "orders", (json_int_t)s->orders,
        "orders_unknown", (json_int_t)s->orders_unknown, "channels_opened",
        (json_int_t)s->chans_opened, "channels_failed", (json_int_t)s->chans_failed,
        "channels_closed", (json_int_t)s->chans_closed, "channels_open", s->nchans,
        "channels_evicted", (json_int_t)s->chans_evicted, "meter_pushes_ok",
        (json_int_t)s->pushes_ok, "meter_pushes_failed", (json_int_t)s->pushes_failed,
        "meter_values", (json_int_t)s->push_values, "controls", (json_int_t)s->controls, "acks",
        (json_int_t)s->acks, "nacks", (json_int_t)s->nacks, "duplicates", (json_int_t)s->duplicates,
        "states", (json_int_t)s->states);
}

static void reply_json(struct http_request *req, int status, json_t *j)
{
    char *t = json_dumps(j, JSON_COMPACT);
    http_reply(req, status, "application/json", t, t ? strlen(t) : 0);
    free(t);
    json_decref(j);
}

static void on_stats(void *arg, struct http_request *req)
{
    struct sim *s = arg;
    const char *path = http_req_path(req);
    if (strcmp(path, "/v1/stats") == 0) {
        reply_json(req, 200, stats_json(s));
        return;
    }
    if (strncmp(path, "/v1/devices/", 12) == 0) {
        struct dev *d = fleet_dev(s, path + 12);
        if (d == NULL) {
            http_reply_problem(req, 404, "not-found", "no such device");
            return;
        }
        const char *q = http_req_query(req);
        char state[1024];
        int n = steuerbox_state(&d->sb, time_now_ms(), state, sizeof state);
        json_t *j = json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I}", "id", d->id, "smgw",
                              s->gws[d->gw].id, "channel", d->chan != NULL, "controls",
                              (json_int_t)d->controls, "acks", (json_int_t)d->acks, "nacks",
                              (json_int_t)d->nacks, "duplicates", (json_int_t)d->duplicates);
        json_object_set_new(j, "state", n > 0 ? json_loads(state, 0, NULL) : json_null());
        if (q && strncmp(q, "cmd=", 4) == 0)
            json_object_set_new(j, "applied", json_integer(steuerbox_applied_count(&d->sb, q + 4)));
        reply_json(req, 200, j);
        return;
    }
    http_reply_problem(req, 404, "not-found", "no such resource");
}

/* --- the tick and signals -------------------------------------------------------------- */

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sim *s = arg;
    int64_t now = time_now_ms();
    (void)fd;
    (void)what;
    device_tick(s, now);
    meter_tick(s, now);
    while (s->lru_tail && now - s->lru_tail->last_ms > s->opt.channel_idle_s * 1000LL)
        chan_close(s->lru_tail, "idle", 0);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct sim *s = arg;
    (void)what;
    LOG(LOG_INFO, "stopping", LOG_I("signal", sig));
    event_base_loopbreak(s->base);
}

static int apply_cli(struct sim *s, const struct cli *cli)
{
    for (int i = 0; i < cli->ngwa_over; i++) {
        char id[128];
        const char *eq = strchr(cli->gwa_over[i], '=');
        snprintf(id, sizeof id, "%.*s", (int)(eq - cli->gwa_over[i]), cli->gwa_over[i]);
        int found = 0;
        for (int k = 0; k < s->ngwas; k++) {
            if (strcmp(s->gwas[k].id, id) == 0) {
                str_copy(s->gwas[k].endpoint, sizeof s->gwas[k].endpoint, eq + 1);
                found = 1;
            }
        }
        if (!found)
            LOG(LOG_WARN, "--gwa names a GWA the registry does not have", LOG_S("gwa", id));
    }
    for (int i = 0; i < cli->nfaults; i++) {
        struct dev *d = fleet_dev(s, cli->faults[i].device);
        if (d == NULL) {
            LOG(LOG_ERROR, "--fault names an unknown device",
                LOG_S("device", cli->faults[i].device));
            return -1;
        }
        d->faults |= cli->faults[i].kind;
        if (cli->faults[i].kind == F_OVERDRAW)
            d->sb.overdraw = true;
        long long ms = 0;
        if (cli->faults[i].kind == F_SLOW) {
            if (parse_ll(cli->faults[i].arg, 0, 600000, &ms) != 0) {
                LOG(LOG_ERROR, "--fault slow needs milliseconds", LOG_S("arg", cli->faults[i].arg));
                return -1;
            }
            d->fault_ms = (int)ms;
        }
        if (cli->faults[i].kind == F_FILL && parse_ll(cli->faults[i].arg, 0, 100, &ms) != 0) {
            LOG(LOG_ERROR, "--fault fill needs a percentage", LOG_S("arg", cli->faults[i].arg));
            return -1;
        }
        if (cli->faults[i].kind == F_CLAIM || cli->faults[i].kind == F_FILL)
            str_copy(d->fault_arg, sizeof d->fault_arg, cli->faults[i].arg);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct sim sim; /* large: keep it off the stack */
    static struct cli cli;
    struct sim *s = &sim;
    struct tls_profile prof;
    char err[512], path[1100 + 16];
    int status = 1;

    s->udp = -1;
    if (parse_args(s, &cli, argc, argv) != 0)
        return 2;
    log_init((enum log_level)s->opt.log_level, 2);
    signal(SIGPIPE, SIG_IGN);
    if (s->opt.max_channels <= 0)
        s->opt.max_channels = channel_budget();
    s->base = event_base_new();
    tls_profile_default(&prof);
    str_copy(prof.curves, sizeof prof.curves, s->opt.curves);
    prof.max_version = TLS1_2_VERSION; /* brainpool certificates need TLS 1.2 with OpenSSL 3.0 */
    snprintf(path, sizeof path, "%.1000s/root.crt", s->opt.pki);
    s->ctx = tls_client_ctx(&prof, NULL, NULL, path, err, sizeof err);
    if (s->base == NULL || s->ctx == NULL) {
        LOG(LOG_ERROR, "cannot set up TLS", LOG_S("error", err));
        return 1;
    }
    SSL_CTX_set_session_cache_mode(s->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    snprintf(path, sizeof path, "%.1000s/smgw-ca.crt", s->opt.pki);
    if (pki_load_cert(path, &s->smgw_ca, err, sizeof err) != 0) {
        LOG(LOG_ERROR, "cannot read the SMGW sub-CA", LOG_S("error", err));
        return 1;
    }
    if (fleet_load(s) != 0)
        goto out;
    if (apply_cli(s, &cli) != 0)
        goto out;
    s->nonces = wakeup_nonces_new(1000000, WAKEUP_WINDOW_MS);
    if (s->nonces == NULL || han_start(s) != 0 || wan_start(s) != 0)
        goto out;
    if (s->opt.have_meter) {
        struct sockaddr_in *a = (struct sockaddr_in *)&s->meter_addr;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)s->opt.meter.port);
        if (inet_pton(AF_INET, s->opt.meter.host, &a->sin_addr) != 1) {
            LOG(LOG_ERROR, "--meter needs an IPv4 address", LOG_S("host", s->opt.meter.host));
            goto out;
        }
        s->meter_addrlen = sizeof *a;
    }
    if (s->opt.have_stats) {
        struct http_limits lim = {16384, 0, 1 << 20, 64, 60, 30};
        struct http_callbacks cb = {NULL, on_stats, NULL, NULL, s};
        struct hostport bound;
        s->stats_srv = http_server_new(s->base, &lim, &cb);
        if (s->stats_srv == NULL || http_server_listen(s->stats_srv, &s->opt.stats, &bound) != 0)
            goto out;
        s->opt.stats.port = bound.port;
    }
    struct event *sigterm = evsignal_new(s->base, SIGTERM, signal_cb, s);
    struct event *sigint = evsignal_new(s->base, SIGINT, signal_cb, s);
    s->tick = event_new(s->base, -1, EV_PERSIST, tick_cb, s);
    struct timeval one = {1, 0};
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    event_add(s->tick, &one);
    LOG(LOG_INFO, "smgw-sim ready", LOG_I("gateways", s->ngws), LOG_I("devices", s->ndevs),
        LOG_I("udp_port", s->opt.udp.port), LOG_I("stats_port", s->opt.stats.port),
        LOG_I("han_port", s->han_port), LOG_I("max_channels", s->opt.max_channels));
    event_base_dispatch(s->base);
    status = 0;
    event_free(sigterm);
    event_free(sigint);
    event_free(s->tick);
out:
    meter_stop(s);
    wan_stop(s);
    han_stop(s);
    http_server_free(s->stats_srv);
    wakeup_nonces_free(s->nonces);
    fleet_free(s);
    SSL_CTX_free(s->ctx);
    X509_free(s->smgw_ca);
    event_base_free(s->base);
    return status;
}
