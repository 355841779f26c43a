/*
 * config.c - the table of clsmd options and the INI/env/flag loaders; see
 * config.h. Adding an option means adding one row to 'options'.
 */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "common/log.h"

enum opt_type { OPT_INT, OPT_SIZE, OPT_STR, OPT_SECRET, OPT_ENUM, OPT_HOSTPORT };

struct option {
    const char *key;
    enum opt_type type;
    const char *def;
    long long min, max; /* value bounds; string length bounds for strings */
    const char *const *values;
    size_t offset;
    size_t size; /* buffer size for strings */
    const char *help;
};

static const char *const sync_values[] = {"normal", "full", NULL};
static const char *const level_values[] = {"debug", "info", "warn", "error", NULL};
static const char *const tls_versions[] = {"1.2", "1.3", NULL};

#define OFF(f) offsetof(struct clsm_config, f)
#define SZ(f)  sizeof(((struct clsm_config *)0)->f)

static const struct option options[] = {
    {"api.listen", OPT_HOSTPORT, "127.0.0.1:8080", 0, 0, NULL, OFF(api_listen), 0,
     "Address of the operator REST API (host:port; port 0 picks a free port)."},
    {"api.max_body", OPT_SIZE, "1M", 1024, 64LL << 20, NULL, OFF(api_max_body), 0,
     "Largest request body accepted by API routes (413 above)."},
    {"api.max_import_body", OPT_SIZE, "32M", 1024, 1LL << 30, NULL, OFF(api_max_import_body), 0,
     "Largest body accepted by POST /v1/import."},
    {"api.max_connections", OPT_INT, "1024", 1, 100000, NULL, OFF(api_max_connections), 0,
     "Open API connections; further ones get 503 and are closed."},
    {"api.idle_timeout_s", OPT_INT, "60", 1, 3600, NULL, OFF(api_idle_timeout_s), 0,
     "Seconds an idle keep-alive connection stays open."},
    {"api.request_timeout_s", OPT_INT, "30", 1, 3600, NULL, OFF(api_request_timeout_s), 0,
     "Seconds allowed to receive one request's head and body (408 after)."},
    {"store.path", OPT_STR, "var/clsm.db", 1, CONFIG_PATH_MAX - 1, NULL, OFF(store_path),
     SZ(store_path), "SQLite database file (created with its directory if missing)."},
    {"store.synchronous", OPT_ENUM, "full", 0, 0, sync_values, OFF(store_synchronous), 0,
     "SQLite synchronous mode: full survives power loss, normal only process crashes."},
    {"store.busy_timeout_ms", OPT_INT, "5000", 0, 600000, NULL, OFF(store_busy_timeout_ms), 0,
     "How long a statement waits for a lock held by another process."},
    {"auth.admin_token", OPT_SECRET, "", 0, CONFIG_TOKEN_MAX - 1, NULL, OFF(auth_admin_token),
     SZ(auth_admin_token),
     "Bearer token with admin rights (at least 16 characters); empty disables it."},
    {"log.level", OPT_ENUM, "info", 0, 0, level_values, OFF(log_level), 0,
     "Least severe level written: debug, info, warn or error."},
    {"shutdown.grace_ms", OPT_INT, "2000", 0, 600000, NULL, OFF(shutdown_grace_ms), 0,
     "On SIGTERM/SIGINT, how long in-flight requests may take to finish."},
    {"events.max_streams", OPT_INT, "256", 1, 100000, NULL, OFF(events_max_streams), 0,
     "Concurrent GET /v1/events streams; further ones get 503."},
    {"events.max_stream_output", OPT_SIZE, "1M", 4096, 64LL << 20, NULL,
     OFF(events_max_stream_output), 0,
     "Bytes queued towards one event stream; a client that falls further behind is cut off."},
    {"events.heartbeat_s", OPT_INT, "15", 1, 3600, NULL, OFF(events_heartbeat_s), 0,
     "Seconds between keepalive comments on event streams."},
    {"webhook.timeout_s", OPT_INT, "10", 1, 600, NULL, OFF(webhook_timeout_s), 0,
     "Seconds one webhook delivery (HTTP POST) may take."},
    {"webhook.retry_max_s", OPT_INT, "300", 1, 86400, NULL, OFF(webhook_retry_max_s), 0,
     "Longest back-off between attempts after failed webhook deliveries."},
    {"webhook.failing_after_s", OPT_INT, "3600", 1, 604800, NULL, OFF(webhook_failing_after_s), 0,
     "A subscription whose deliveries failed this long is marked failing (still retried)."},
    {"webhook.batch_max", OPT_INT, "100", 1, 1000, NULL, OFF(webhook_batch_max), 0,
     "Events in one webhook delivery."},
    {"webhook.batch_bytes", OPT_SIZE, "256k", 1024, 16LL << 20, NULL, OFF(webhook_batch_bytes), 0,
     "Bytes of one webhook delivery body (a single larger event goes alone)."},
    {"webhook.max_per_party", OPT_INT, "16", 1, 1000, NULL, OFF(webhook_max_per_party), 0,
     "Webhook subscriptions one party (or the admin) may hold."},
    {"tls.cert", OPT_STR, "", 0, CONFIG_PATH_MAX - 1, NULL, OFF(tls_cert), SZ(tls_cert),
     "clsmd's EMT certificate (PEM, with its chain); empty turns the CLS channels off."},
    {"tls.key", OPT_STR, "", 0, CONFIG_PATH_MAX - 1, NULL, OFF(tls_key), SZ(tls_key),
     "Private key of tls.cert (PEM)."},
    {"tls.smgw_ca", OPT_STR, "", 0, CONFIG_PATH_MAX - 1, NULL, OFF(tls_smgw_ca), SZ(tls_smgw_ca),
     "The SMGW sub-CA gateways' certificates must come from (PEM; its root may be included)."},
    {"tls.gwa_ca", OPT_STR, "", 0, CONFIG_PATH_MAX - 1, NULL, OFF(tls_gwa_ca), SZ(tls_gwa_ca),
     "The GWA sub-CA a GWA's server certificate must come from (PEM)."},
    {"tls.curves", OPT_STR, "brainpoolP256r1:brainpoolP384r1:prime256v1:secp384r1", 1, 255, NULL,
     OFF(tls_curves), SZ(tls_curves), "Key exchange groups offered, in order of preference."},
    {"tls.ciphers", OPT_STR,
     "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA256:"
     "ECDHE-ECDSA-AES256-SHA384",
     1, 511, NULL, OFF(tls_ciphers), SZ(tls_ciphers), "TLS 1.2 cipher suites (OpenSSL names)."},
    {"tls.ciphersuites", OPT_STR, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384", 1, 255, NULL,
     OFF(tls_ciphersuites), SZ(tls_ciphersuites), "TLS 1.3 cipher suites."},
    {"tls.min_version", OPT_ENUM, "1.2", 0, 0, tls_versions, OFF(tls_min_version), 0,
     "Oldest TLS version accepted."},
    {"tls.max_version", OPT_ENUM, "1.3", 0, 0, tls_versions, OFF(tls_max_version), 0,
     "Newest TLS version offered (TLS 1.3 needs NIST curves with OpenSSL 3.0)."},
    {"channel.listen", OPT_HOSTPORT, "127.0.0.1:4443", 0, 0, NULL, OFF(channel_listen), 0,
     "Where gateways open CLS channels (TLS; the lpc-mqtt device protocol)."},
    {"meter.listen", OPT_HOSTPORT, "127.0.0.1:4444", 0, 0, NULL, OFF(meter_listen), 0,
     "Where gateways post signed meter data (HTTPS with their certificates)."},
    {"meter.max_connections", OPT_INT, "1000", 1, 100000, NULL, OFF(meter_max_connections), 0,
     "Open meter data connections."},
    {"meter.retention_days", OPT_INT, "90", 0, 36500, NULL, OFF(meter_retention_days), 0,
     "Days meter values are kept as received; older ones are condensed to hourly values (0: "
     "never)."},
    {"sensor.door_open_alarm_s", OPT_INT, "600", 1, 86400, NULL, OFF(sensor_door_open_alarm_s), 0,
     "A door contact open this long raises the alarm door_open."},
    {"sensor.fill_level_alarm_pct", OPT_INT, "90", 1, 100, NULL, OFF(sensor_fill_level_alarm_pct),
     0, "A fill level at or above this raises the alarm fill_level."},
    {"sensor.rescan_s", OPT_INT, "60", 1, 86400, NULL, OFF(sensor_rescan_s), 0,
     "How often the registry is read for sensors to keep channels to."},
    {"channel.endpoint", OPT_STR, "", 0, 299, NULL, OFF(channel_endpoint), SZ(channel_endpoint),
     "host:port the GWA tells gateways to dial; empty means channel.listen."},
    {"channel.max_channels", OPT_INT, "10000", 1, 1000000, NULL, OFF(channel_max_channels), 0,
     "Open channels; beyond it the least recently used idle channel is closed."},
    {"channel.handshake_timeout_s", OPT_INT, "10", 1, 600, NULL, OFF(channel_handshake_timeout_s),
     0, "Seconds a gateway has to finish the TLS handshake."},
    {"channel.identify_timeout_s", OPT_INT, "10", 1, 600, NULL, OFF(channel_identify_timeout_s), 0,
     "Seconds the device has to identify itself (MQTT CONNECT) after the handshake."},
    {"channel.idle_timeout_s", OPT_INT, "300", 5, 86400, NULL, OFF(channel_idle_timeout_s), 0,
     "An open channel silent this long is closed (a device keepalive shortens it)."},
    {"channel.max_frame", OPT_SIZE, "64k", 256, 16LL << 20, NULL, OFF(channel_max_frame), 0,
     "Largest device protocol frame (MQTT packet) accepted."},
    {"channel.max_output", OPT_SIZE, "256k", 4096, 64LL << 20, NULL, OFF(channel_max_output), 0,
     "Bytes queued towards one device before sending is refused."},
    {"channel.heartbeat_s", OPT_INT, "30", 0, 3600, NULL, OFF(channel_heartbeat_s), 0,
     "Heartbeat to devices whose channel was quiet this long (0: none); keeps them out of "
     "failsafe."},
    {"emt.id", OPT_STR, "clsmd", 1, 96, NULL, OFF(emt_id), SZ(emt_id),
     "Our name as an external market participant towards the GWAs."},
    {"gwa.timeout_s", OPT_INT, "10", 1, 600, NULL, OFF(gwa_timeout_s), 0,
     "Seconds one HTTPS request to a GWA may take."},
    {"gwa.batch_max", OPT_INT, "100", 1, 10000, NULL, OFF(gwa_batch_max), 0,
     "Channel requests sent to one GWA in one HTTPS request."},
    {"gwa.max_pending", OPT_INT, "500", 0, 1000000, NULL, OFF(gwa_max_pending), 0,
     "Channel requests one GWA may have from us that have not yet opened (0: no limit); more wait "
     "in our queue."},
    {"gwa.retry_max_s", OPT_INT, "60", 1, 3600, NULL, OFF(gwa_retry_max_s), 0,
     "Longest back-off after failed requests to a GWA."},
    {"gwa.channel_wait_s", OPT_INT, "120", 5, 3600, NULL, OFF(gwa_channel_wait_s), 0,
     "How long an accepted channel request may take until the gateway dials in."},
    {"command.deadline_s", OPT_INT, "300", 5, 86400, NULL, OFF(command_deadline_s), 0,
     "Default time until an operator command must be confirmed on the device."},
    {"command.ack_timeout_s", OPT_INT, "10", 1, 600, NULL, OFF(command_ack_timeout_s), 0,
     "Seconds without an acknowledgement before a command is sent again (same id)."},
    {"request.compliance_grace_s", OPT_INT, "300", 0, 86400, NULL, OFF(request_compliance_grace_s),
     0, "Seconds a device may draw above the cap it confirmed before it is reported noncompliant."},
    {"request.grid_deadline_s", OPT_INT, "300", 10, 86400, NULL, OFF(request_grid_deadline_s), 0,
     "Default time to confirmation of a grid request on its devices (the 5 minutes of §14a)."},
    {"request.cascade_deadline_s", OPT_INT, "720", 10, 86400, NULL, OFF(request_cascade_deadline_s),
     0, "Default time to confirmation of a grid request through the TSO cascade (12 minutes)."},
    {"request.market_deadline_s", OPT_INT, "900", 10, 86400, NULL, OFF(request_market_deadline_s),
     0, "Default time to confirmation of a market request."},
    {"request.max_targets", OPT_INT, "200000", 1, 10000000, NULL, OFF(request_max_targets), 0,
     "Installations one request may address."},
};

static const char *const type_names[] = {"integer", "size", "string",
                                         "secret",  "enum", "host:port"};

static void fail(struct config_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct config_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

static const struct option *find(const char *key)
{
    for (size_t i = 0; i < ARRAY_LEN(options); i++)
        if (strcmp(options[i].key, key) == 0)
            return &options[i];
    return NULL;
}

/* "64k", "1M", "2G" or plain bytes. */
static int parse_size(const char *s, long long *out)
{
    char num[32];
    size_t n = strlen(s);
    int shift = 0;

    if (n == 0 || n >= sizeof num)
        return -EINVAL;
    memcpy(num, s, n + 1);
    switch (num[n - 1]) {
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    default:
        break;
    }
    if (shift)
        num[n - 1] = '\0';
    long long v;
    int rc = parse_ll(num, 0, INT64_MAX >> 30, &v);
    if (rc)
        return rc;
    *out = v << shift;
    return 0;
}

static int set_value(struct clsm_config *c, const struct option *o, const char *value,
                     const char *origin, struct config_error *err)
{
    char *base = (char *)c;
    long long v;
    size_t len = strlen(value);

    switch (o->type) {
    case OPT_INT:
    case OPT_SIZE:
        if ((o->type == OPT_INT ? parse_ll(value, INT64_MIN, INT64_MAX, &v)
                                : parse_size(value, &v)) != 0) {
            fail(err, "%s: %s: expected %s, got \"%.64s\"", origin, o->key,
                 o->type == OPT_INT ? "an integer" : "a size such as 65536, 64k or 1M", value);
            return -EINVAL;
        }
        if (v < o->min || v > o->max) {
            fail(err, "%s: %s: %lld is out of range [%lld, %lld]", origin, o->key, v, o->min,
                 o->max);
            return -EINVAL;
        }
        memcpy(base + o->offset, &v, sizeof v);
        return 0;
    case OPT_STR:
    case OPT_SECRET:
        if ((long long)len < o->min || (long long)len > o->max) {
            fail(err, "%s: %s: length %zu is out of range [%lld, %lld]", origin, o->key, len,
                 o->min, o->max);
            return -EINVAL;
        }
        memcpy(base + o->offset, value, len + 1);
        return 0;
    case OPT_ENUM:
        for (int i = 0; o->values[i]; i++) {
            if (strcmp(o->values[i], value) == 0) {
                memcpy(base + o->offset, &i, sizeof i);
                return 0;
            }
        }
        fail(err, "%s: %s: \"%.64s\" is not one of the allowed values", origin, o->key, value);
        return -EINVAL;
    case OPT_HOSTPORT:
        if (hostport_parse(value, (struct hostport *)(void *)(base + o->offset)) != 0) {
            fail(err, "%s: %s: expected host:port such as 127.0.0.1:8080, got \"%.64s\"", origin,
                 o->key, value);
            return -EINVAL;
        }
        return 0;
    }
    return -EINVAL;
}

void config_defaults(struct clsm_config *c)
{
    struct config_error err;
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < ARRAY_LEN(options); i++) {
        int rc = set_value(c, &options[i], options[i].def, "default", &err);
        (void)rc; /* defaults are checked by the unit tests */
    }
}

int config_set(struct clsm_config *c, const char *key, const char *value, const char *origin,
               struct config_error *err)
{
    const struct option *o = find(key);
    if (o == NULL) {
        fail(err, "%s: unknown option \"%.64s\"", origin, key);
        return -ENOENT;
    }
    return set_value(c, o, value, origin, err);
}

static char *trim(char *s)
{
    char *e;
    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* One INI line; 'section' is updated by "[section]" lines. */
static int ini_line(struct clsm_config *c, char *line, char *section, size_t seclen,
                    const char *origin, struct config_error *err)
{
    char *s = trim(line), key[160];

    if (*s == '\0' || *s == '#' || *s == ';')
        return 0;
    if (*s == '[') {
        char *end = strchr(s, ']');
        if (end == NULL || end[1] != '\0' || end == s + 1 || (size_t)(end - s) >= seclen) {
            fail(err, "%s: malformed section header", origin);
            return -EINVAL;
        }
        *end = '\0';
        memcpy(section, s + 1, (size_t)(end - s));
        return 0;
    }
    char *eq = strchr(s, '=');
    if (eq == NULL) {
        fail(err, "%s: expected \"key = value\"", origin);
        return -EINVAL;
    }
    *eq = '\0';
    char *k = trim(s), *v = trim(eq + 1);
    size_t vl = strlen(v);
    if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
        v[vl - 1] = '\0';
        v++;
    }
    int n = section[0] ? snprintf(key, sizeof key, "%s.%s", section, k)
                       : snprintf(key, sizeof key, "%s", k);
    if (n < 0 || (size_t)n >= sizeof key) {
        fail(err, "%s: key too long", origin);
        return -EINVAL;
    }
    return config_set(c, key, v, origin, err) ? -EINVAL : 0;
}

int config_load_file(struct clsm_config *c, const char *path, struct config_error *err)
{
    char line[4096], section[64] = "", origin[CONFIG_PATH_MAX + 32];
    int lineno = 0, rc = 0;
    long total = 0;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        rc = -errno;
        fail(err, "%s: %s", path, strerror(errno));
        return rc;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        size_t n = strlen(line);
        lineno++;
        total += (long)n;
        snprintf(origin, sizeof origin, "%s:%d", path, lineno);
        if (total > (1L << 20)) {
            fail(err, "%s: file larger than 1 MiB", path);
            rc = -EFBIG;
            goto out;
        }
        if (n == sizeof line - 1 && line[n - 1] != '\n' && !feof(f)) {
            fail(err, "%s: line longer than %zu bytes", origin, sizeof line - 2);
            rc = -EINVAL;
            goto out;
        }
        if (memchr(line, '\0', n) != NULL || (n > 0 && line[n - 1] != '\n' && !feof(f))) {
            fail(err, "%s: unreadable line", origin);
            rc = -EINVAL;
            goto out;
        }
        rc = ini_line(c, line, section, sizeof section, origin, err);
        if (rc)
            goto out;
    }
    if (ferror(f)) {
        fail(err, "%s: read error", path);
        rc = -EIO;
    }
out:
    fclose(f);
    return rc;
}

/* "CLSM_API_MAX_BODY" -> "api.max_body": the first '_' after the prefix
 * separates section and key; the rest are part of the key. */
int config_load_env(struct clsm_config *c, char *const *envp,
                    void (*warn)(const char *name, void *arg), void *arg, struct config_error *err)
{
    for (; envp && *envp; envp++) {
        const char *e = *envp, *eq = strchr(e, '=');
        char key[160], origin[200];
        size_t n;

        if (strncmp(e, "CLSM_", 5) != 0 || eq == NULL)
            continue;
        n = (size_t)(eq - (e + 5));
        if (n == 0 || n >= sizeof key)
            continue;
        int dot = 0;
        for (size_t i = 0; i < n; i++) {
            char ch = e[5 + i];
            if (ch == '_' && !dot) {
                key[i] = '.';
                dot = 1;
            } else {
                key[i] = (char)tolower((unsigned char)ch);
            }
        }
        key[n] = '\0';
        snprintf(origin, sizeof origin, "environment %.*s", (int)(eq - e), e);
        if (find(key) == NULL) {
            if (warn)
                warn(origin + 12, arg);
            continue;
        }
        if (config_set(c, key, eq + 1, origin, err) != 0)
            return -EINVAL;
    }
    return 0;
}

int config_validate(const struct clsm_config *c, struct config_error *err)
{
    size_t tl = strlen(c->auth_admin_token);
    if (tl > 0 && tl < 16) {
        fail(err, "auth.admin_token: must be at least 16 characters (or empty to disable)");
        return -EINVAL;
    }
    if (c->tls_cert[0] && (!c->tls_key[0] || !c->tls_smgw_ca[0])) {
        fail(err, "tls.cert: needs tls.key and tls.smgw_ca as well");
        return -EINVAL;
    }
    if (c->tls_min_version > c->tls_max_version) {
        fail(err, "tls.min_version: newer than tls.max_version");
        return -EINVAL;
    }
    if (c->api_max_import_body < c->api_max_body) {
        fail(err, "api.max_import_body: must not be smaller than api.max_body");
        return -EINVAL;
    }
    return 0;
}

static void format_value(const struct clsm_config *c, const struct option *o, char *buf, size_t len)
{
    const char *base = (const char *)c;
    long long v;
    int i;

    switch (o->type) {
    case OPT_INT:
    case OPT_SIZE:
        memcpy(&v, base + o->offset, sizeof v);
        snprintf(buf, len, "%lld", v);
        break;
    case OPT_STR:
        snprintf(buf, len, "%s", base + o->offset);
        break;
    case OPT_SECRET:
        snprintf(buf, len, "%s", base[o->offset] ? "(set)" : "");
        break;
    case OPT_ENUM:
        memcpy(&i, base + o->offset, sizeof i);
        snprintf(buf, len, "%s", o->values[i]);
        break;
    case OPT_HOSTPORT: {
        const struct hostport *hp = (const struct hostport *)(const void *)(base + o->offset);
        snprintf(buf, len, strchr(hp->host, ':') ? "[%s]:%d" : "%s:%d", hp->host, hp->port);
        break;
    }
    }
}

void config_dump(const struct clsm_config *c, FILE *out)
{
    char section[64] = "", val[CONFIG_PATH_MAX + 16];
    for (size_t i = 0; i < ARRAY_LEN(options); i++) {
        const struct option *o = &options[i];
        const char *dot = strchr(o->key, '.');
        size_t sl = (size_t)(dot - o->key);
        if (strlen(section) != sl || strncmp(section, o->key, sl) != 0) {
            snprintf(section, sizeof section, "%.*s", (int)sl, o->key);
            fprintf(out, "%s[%s]\n", i ? "\n" : "", section);
        }
        format_value(c, o, val, sizeof val);
        fprintf(out, "%s = %s\n", dot + 1, val);
    }
}

void config_reference(FILE *out)
{
    fprintf(out, "| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < ARRAY_LEN(options); i++) {
        const struct option *o = &options[i];
        char allowed[128] = "";
        if (o->type == OPT_INT || o->type == OPT_SIZE) {
            snprintf(allowed, sizeof allowed, "%lld .. %lld", o->min, o->max);
        } else if (o->type == OPT_ENUM) {
            size_t n = 0;
            for (int j = 0; o->values[j] && n < sizeof allowed; j++)
                n += (size_t)snprintf(allowed + n, sizeof allowed - n, "%s%s", j ? ", " : "",
                                      o->values[j]);
        } else if (o->type == OPT_STR || o->type == OPT_SECRET) {
            snprintf(allowed, sizeof allowed, "length %lld .. %lld", o->min, o->max);
        }
        char def[96];
        snprintf(def, sizeof def, o->def[0] ? "`%s`" : "(empty)", o->def);
        fprintf(out, "| `%s` | %s | %s | %s | %s |\n", o->key, type_names[o->type], def, allowed,
                o->help);
    }
}

const char *config_synchronous_name(const struct clsm_config *c)
{
    return sync_values[c->store_synchronous];
}
