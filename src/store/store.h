/*
 * store.h - persistence for clsmd behind one interface; SQLite is the
 * default backend (store_sqlite.c), others plug in through struct store_ops.
 *
 * Registry entities travel as jansson objects shaped by the descriptors of
 * registry.h; no SQL leaves a backend. A store is used by one thread at a
 * time (the API loop). Functions return 0 or a negative errno:
 *   -ENOENT  no such entity (or not visible in the given scope)
 *   -EEXIST  the id, or a unique combination of fields, is taken
 *   -EBUSY   the entity is still referenced by others, or references a
 *            missing one
 *   -EINVAL  a value the schema refuses (a CHECK or NOT NULL constraint);
 *            validation normally stops these earlier
 *   -EIO     the database failed; store_errmsg() says how. Inside an
 *            explicit transaction that SQLite rolled back by itself, every
 *            further call fails with -EIO until store_rollback().
 * Returned json_t objects are new references owned by the caller.
 */
#ifndef CLSM_STORE_H
#define CLSM_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/token.h"
#include "registry/registry.h"

struct store;

struct store_options {
    int synchronous_full; /* 1: fsync at every commit; 0: WAL 'normal' */
    int busy_timeout_ms;
};

/* Who is looking: restricts reads to what that party may see. */
enum store_scope_kind {
    SCOPE_ALL,      /* everything (admin) */
    SCOPE_NONE,     /* nothing */
    SCOPE_FIELD,    /* entities whose 'field' equals the party id */
    SCOPE_VNB,      /* entities in segments whose VNB is the party */
    SCOPE_ASSIGNED, /* installations assigned to the party, and their assignments */
};

struct store_scope {
    enum store_scope_kind kind;
    const char *field; /* SCOPE_FIELD */
    const char *party;
};

#define STORE_MAX_FILTERS 8

/* A list query: equality filters (a RF_SUBTREE field also matches child
 * segments), keyset pagination by id, and a scope. */
struct store_query {
    const struct reg_kind *kind;
    struct store_scope scope;
    struct {
        const struct reg_field *field;
        json_t *value; /* borrowed */
    } filters[STORE_MAX_FILTERS];
    size_t nfilters;
    int exact;         /* treat RF_SUBTREE filters as plain equality */
    const char *after; /* return ids greater than this, or NULL */
    int limit;         /* 1..1000 */
};

/* A token's owner, as found by store_token_lookup(). */
struct store_principal {
    char party[32];
    char role[16];
};

/* Open (creating if needed) the store at 'path' and apply pending
 * migrations. On failure returns a negative errno and writes a reason to
 * 'err'. The store is closed with store_close(). */
int store_open(const char *path, const struct store_options *opt, struct store **out, char *err,
               size_t errlen);
void store_close(struct store *s);

/* The last database error message; valid until the next call. */
const char *store_errmsg(struct store *s);

/* Schema version after migrations. */
int store_schema_version(struct store *s);

/* Cheap liveness check of the database. */
int store_ping(struct store *s);

/* Explicit transactions; writes between begin and commit are atomic. Nested
 * begin is an error (-EBUSY). */
int store_begin(struct store *s);
int store_commit(struct store *s);
int store_rollback(struct store *s);

/* Registry entities. 'obj' must have passed reg_validate(). */
int store_reg_get(struct store *s, const struct reg_kind *k, const char *id,
                  const struct store_scope *scope, json_t **out);
int store_reg_insert(struct store *s, const struct reg_kind *k, const json_t *obj);
int store_reg_update(struct store *s, const struct reg_kind *k, const json_t *obj);
/* Insert or update by id; '*created' tells which. */
int store_reg_upsert(struct store *s, const struct reg_kind *k, const json_t *obj, int *created);
int store_reg_delete(struct store *s, const struct reg_kind *k, const char *id);
/* '*items' receives an array; '*more' is set when further items follow the
 * last one returned. */
int store_reg_list(struct store *s, const struct store_query *q, json_t **items, int *more);

/* Set a segment's traffic light with who set it, why and when. */
int store_segment_set_light(struct store *s, const char *segment, const char *light,
                            const char *set_by, const char *reason, int64_t now_ms);

/* API tokens. Only hashes are stored. */
int store_token_add(struct store *s, const char *id, const char *party,
                    const uint8_t hash[TOKEN_HASH_LEN], const char *label, int64_t now_ms);
int store_token_lookup(struct store *s, const uint8_t hash[TOKEN_HASH_LEN],
                       struct store_principal *out);
int store_token_list(struct store *s, const char *party, json_t **items);
int store_token_delete(struct store *s, const char *party, const char *id);

/* Events of the audit log (audit.h). store_event_last() gives the newest
 * sequence number and hash, or -ENOENT for an empty log. */
int store_event_last(struct store *s, int64_t *seq, uint8_t hash[32]);
int store_event_insert(struct store *s, int64_t seq, int64_t time_ms, const char *kind,
                       const char *subject, const char *actor, const char *audience,
                       const char *payload, const uint8_t prev[32], const uint8_t hash[32]);

/*
 * Commands on devices (dispatch.h). store_command_put() writes one from its
 * fields: the first time ('is_new') the whole row, afterwards only what
 * changes (state, updated_at, attempts, error, steps); -ENOENT when an
 * update finds no row. 'control' and 'steps' are JSON text (an object;
 * steps maps state names to milliseconds); times are milliseconds.
 *
 * store_command_get() and store_command_active() read rows back as JSON
 * objects with the members id, device, control (object), state,
 * requested_by, created_at, deadline, updated_at, attempts, error (string
 * or null) and steps (object); active ones are not confirmed or failed.
 */
struct store_command {
    const char *id, *device, *control, *state, *requested_by;
    const char *error; /* NULL: none */
    const char *steps;
    int64_t created_at, deadline, updated_at;
    int attempts;
    int is_new;
};
int store_command_put(struct store *s, const struct store_command *cmd);
int store_command_get(struct store *s, const char *id, json_t **out);
int store_command_active(struct store *s, json_t **items);

/*
 * Reading the event log (live events, webhooks, the audit listing).
 * store_event_list() returns, in sequence order, at most 'limit' events with
 * after < seq <= upto (the range bounds the rows examined, so a filter that
 * matches little cannot make one call scan the whole log) whose audience
 * names 'party' (NULL: any event) and whose kind starts with one of 'kinds'
 * (none: any kind). Items are objects with seq, time_ms, kind, subject,
 * actor, audience, payload (the stored text, which the hash covers),
 * prev_hash and hash (lower-case hex).
 */
#define STORE_EVENT_KINDS 16
#define STORE_EVENT_LIMIT 10000
struct store_event_filter {
    int64_t after, upto;
    const char *party;
    const char *const *kinds;
    size_t nkinds; /* at most STORE_EVENT_KINDS */
    int limit;     /* 1..STORE_EVENT_LIMIT */
};
int store_event_list(struct store *s, const struct store_event_filter *f, json_t **items);

/*
 * Webhook subscriptions (webhook.h). 'party' is NULL for the configured
 * admin token; 'kinds' is a JSON array of kind prefixes as text; 'secret'
 * may be NULL. store_webhook_all() returns every subscription as objects
 * with the members id, party (string or null), admin (bool), url, kinds
 * (array), secret (string or null), created_at, cursor, state, failures,
 * last_error, last_attempt_at, last_success_at and failing_since (times in
 * milliseconds or null). store_webhook_progress() writes how far delivery
 * got; -ENOENT when the subscription is gone (its party was deleted).
 */
struct store_webhook {
    const char *id, *party, *url, *kinds, *secret;
    int admin;
    int64_t created_at, cursor;
};
struct store_webhook_state {
    const char *id;
    int64_t cursor;
    const char *state; /* "active" or "failing" */
    int failures;
    const char *last_error;                                  /* NULL: none */
    int64_t last_attempt_at, last_success_at, failing_since; /* 0: never */
};
int store_webhook_insert(struct store *s, const struct store_webhook *w);
int store_webhook_all(struct store *s, json_t **items);
int store_webhook_delete(struct store *s, const char *id);
int store_webhook_progress(struct store *s, const struct store_webhook_state *st);

/*
 * Requests (request/requests.h). A request row is written whole the first
 * time ('is_new'), later only its state, decision, times and
 * superseded_by change. 'spec' and 'decision' are JSON text; window_end is
 * INT64_MAX for a window without end; ended_at is 0 while the request is
 * in force. The idempotency fields are written only with the first row.
 * Reads return rows as JSON objects with spec and decision parsed and the
 * times in milliseconds.
 */
struct store_request {
    const char *id, *party, *role, *spec, *state, *decision;
    const char *superseded_by;                 /* NULL: none */
    const char *idem_key, *body_hash, *answer; /* NULL: none */
    int64_t seq, deadline, window_end, created_at, updated_at, ended_at;
    int is_new;
};
int store_request_put(struct store *s, const struct store_request *r);
int store_request_get(struct store *s, const char *id, json_t **out);
/* The request 'party' sent with Idempotency-Key 'key' (-ENOENT: none). */
int store_request_find_idem(struct store *s, const char *party, const char *key, json_t **out);
/* The highest seq given so far (0 when none). */
int store_request_max_seq(struct store *s, int64_t *seq);

/* A list of requests, newest first (seq descending): of one party or all,
 * in one state or all, or only those in force or unfinished ('live', for
 * start-up, oldest first); keyset pagination by seq. */
struct store_request_query {
    const char *party;  /* NULL: every party */
    const char *state;  /* NULL: every state */
    int live;           /* ended_at NULL or state unfinished; ascending */
    int64_t before_seq; /* 0: from the newest (ascending with 'live': after_seq) */
    int limit;          /* 1..10000 */
};
int store_request_list(struct store *s, const struct store_request_query *q, json_t **items,
                       int *more);

/* What a request does on one installation. */
struct store_target {
    const char *request, *installation, *device, *code, *text, *steps;
    const char *conflict; /* NULL: none */
};
int store_target_put(struct store *s, const struct store_target *t);
/* The targets of a request, by installation id. */
int store_targets_of(struct store *s, const char *request, json_t **items);

/* One execution (request, device); written whole each time. */
struct store_execution {
    const char *request, *device, *state, *steps;
    const char *error, *command; /* NULL: none */
    int64_t deadline;
    int late, attempts;
};
int store_execution_put(struct store *s, const struct store_execution *e);
/* Executions of a request by device id, after 'after' (NULL: from the
 * first), at most 'limit' (1..10000). */
int store_executions_of(struct store *s, const char *request, const char *after, int limit,
                        json_t **items, int *more);

/* The state a device last confirmed, as JSON text (reconciliation). */
int store_device_state_put(struct store *s, const char *device, const char *state, int64_t at);
int store_device_state_get(struct store *s, const char *device, json_t **out);

/*
 * Meter data (meter/meter.h). A document is recorded once per gateway and
 * document id; its values go in once per metering point, OBIS code and
 * capture time (a value already there stays). A metering point that no
 * installation names belongs to the first gateway that sends it.
 */
struct store_reading {
    const char *point, *obis; /* "1-0:1.8.0" */
    int64_t time_ms, value;
    int scaler, unit;
    uint32_t status;
};
/* Record the document: 0, or -EEXIST when it was recorded before. */
int store_meter_doc_put(struct store *s, const char *smgw, const char *id, int64_t created_ms,
                        int64_t received_ms, int64_t values);
/* 0 when the document was recorded, -ENOENT when not. */
int store_meter_doc_exists(struct store *s, const char *smgw, const char *id);
/* The parties entitled to the values of a metering point, as a JSON array
 * of party ids: the VNB of the segment of the installation naming it and
 * the parties assigned to that installation with the read right; for a
 * point no installation names, the VNB of its gateway's segment. */
int store_meter_point_audience(struct store *s, const char *point, json_t **parties);
/* The parties assigned to any installation behind gateway 'smgw' (the
 * household's service providers), as a JSON array of party ids. */
int store_gateway_parties(struct store *s, const char *smgw, json_t **parties);
/* Insert 'n' values sent by 'smgw'; '*stored' counts those that were new. */
int store_readings_put(struct store *s, const char *smgw, const struct store_reading *r, size_t n,
                       size_t *stored);
/* The gateway a metering point belongs to: the one behind the installation
 * that names it, else the first that sent values for it (bound with
 * 'bind_smgw' when not NULL and no gateway is known yet). '*installation'
 * (may be NULL) gets the installation id or "". -ENOENT when unknown and
 * not bound. Both outputs hold at least 97 bytes. */
int store_meter_point_owner(struct store *s, const char *point, const char *bind_smgw, char *smgw,
                            char *installation);
/* Values of one metering point in [from, to), by OBIS code and time, in
 * buckets of 'bucket_s' seconds (time = bucket start): a register's last
 * value in the bucket, the mean of a power. Items: {"obis", "time" (ms),
 * "value", "scaler", "unit", "count"}; after 'limit' items '*more' is 1. */
/* Retention: condense the values received before 'before_ms' in the
 * oldest hour that still has such values into one value per metering
 * point, OBIS code and hour (a register's last value, a power's mean, at
 * the hour's start). '*rows' gets the values condensed (0: nothing older
 * is left). On failure the transaction is as before the call (its other
 * changes stand). */
int store_readings_downsample(struct store *s, int64_t before_ms, int64_t *rows);
struct store_reading_query {
    const char *point;
    const char *obis; /* NULL: all */
    int64_t from_ms, to_ms;
    int bucket_s; /* 900, 3600 or 86400 */
    int limit;    /* 1..100000 */
};
int store_readings_query(struct store *s, const struct store_reading_query *q, json_t **items,
                         int *more);

#endif
