/*
 * config.h - clsmd configuration: one table of options with types, bounds and
 * defaults, filled from an INI file, CLSM_* environment variables and
 * --set key=value flags (later sources override earlier ones).
 *
 * A struct clsm_config holds only fixed-size fields; it owns no heap memory and
 * may be copied. Functions here are not thread-safe; configuration is read
 * once at start-up, before the loops start.
 */
#ifndef CLSM_CONFIG_H
#define CLSM_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "common/util.h"

#define CONFIG_PATH_MAX  1024
#define CONFIG_TOKEN_MAX 256

struct clsm_config {
    struct hostport api_listen;
    long long api_max_body;
    long long api_max_import_body;
    long long api_max_connections;
    long long api_idle_timeout_s;
    long long api_request_timeout_s;
    char store_path[CONFIG_PATH_MAX];
    int store_synchronous; /* index into {"normal", "full"} */
    long long store_busy_timeout_ms;
    char auth_admin_token[CONFIG_TOKEN_MAX];
    int log_level; /* enum log_level */
    long long shutdown_grace_ms;
    /* Live events and webhooks. */
    long long events_max_streams;
    long long events_max_stream_output;
    long long events_heartbeat_s;
    long long webhook_timeout_s;
    long long webhook_retry_max_s;
    long long webhook_failing_after_s;
    long long webhook_batch_max;
    long long webhook_batch_bytes;
    long long webhook_max_per_party;
    /* TLS of the CLS channels (clsmd as EMT). */
    char tls_cert[CONFIG_PATH_MAX];
    char tls_key[CONFIG_PATH_MAX];
    char tls_smgw_ca[CONFIG_PATH_MAX];
    char tls_gwa_ca[CONFIG_PATH_MAX];
    char tls_curves[256];
    char tls_ciphers[512];
    char tls_ciphersuites[256];
    int tls_min_version; /* index into {"1.2", "1.3"} */
    int tls_max_version;
    /* CLS channels. */
    struct hostport channel_listen;
    char channel_endpoint[300];
    long long channel_max_channels;
    struct hostport meter_listen;
    long long meter_max_connections;
    long long meter_retention_days;
    long long sensor_door_open_alarm_s;
    long long sensor_fill_level_alarm_pct;
    long long sensor_rescan_s;
    long long channel_handshake_timeout_s;
    long long channel_identify_timeout_s;
    long long channel_idle_timeout_s;
    long long channel_max_frame;
    long long channel_max_output;
    long long channel_heartbeat_s;
    /* Towards the gateway administrators. */
    char emt_id[97];
    long long gwa_timeout_s;
    long long gwa_batch_max;
    long long gwa_max_pending;
    long long gwa_retry_max_s;
    long long gwa_channel_wait_s;
    /* Operator commands on devices. */
    long long command_deadline_s;
    long long command_ack_timeout_s;
    long long request_grid_deadline_s;
    long long request_compliance_grace_s;
    long long request_cascade_deadline_s;
    long long request_market_deadline_s;
    long long request_max_targets;
};

/* Where a value came from and what was wrong with it, for messages such as
 * "clsm.ini:12: api.listen: expected host:port". */
struct config_error {
    char msg[512];
};

/* Fill 'c' with the defaults of every option. */
void config_defaults(struct clsm_config *c);

/* Set one option. 'origin' names the source for error messages. Returns 0,
 * -ENOENT for an unknown key or -EINVAL for a bad value (with 'err' filled). */
int config_set(struct clsm_config *c, const char *key, const char *value, const char *origin,
               struct config_error *err);

/* Read an INI file: "[section]" lines and "key = value" lines (key becomes
 * "section.key"); '#' and ';' start comments. Limits: 1 MiB file, 4 KiB
 * line. Returns 0 or a negative errno with 'err' filled. */
int config_load_file(struct clsm_config *c, const char *path, struct config_error *err);

/* Apply CLSM_<SECTION>_<KEY> variables from 'envp' (NULL-terminated). Unknown
 * CLSM_* names are reported through 'warn' (may be NULL) and otherwise
 * ignored, because clients of the same installation use CLSM_URL and
 * CLSM_TOKEN. Returns 0 or -EINVAL with 'err' filled. */
int config_load_env(struct clsm_config *c, char *const *envp,
                    void (*warn)(const char *name, void *arg), void *arg, struct config_error *err);

/* Checks that involve more than one option. Returns 0 or -EINVAL. */
int config_validate(const struct clsm_config *c, struct config_error *err);

/* Write the effective configuration as an INI file, secrets redacted. */
void config_dump(const struct clsm_config *c, FILE *out);

/* Write the reference of all options (key, type, default, bounds, help) as a
 * Markdown table. */
void config_reference(FILE *out);

/* Name of the store.synchronous setting ("normal" or "full"). */
const char *config_synchronous_name(const struct clsm_config *c);

#endif
