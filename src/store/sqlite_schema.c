/*
 * sqlite_schema.c - the versioned schema of the SQLite backend. Migrations
 * are append-only: a released entry is never edited; changes come as a new
 * entry. Column names equal the field names of registry.c (a unit test holds
 * the two together).
 */
#include "store/store_impl.h"

#include "common/util.h"

static const char migration_1[] =
    /* Registry (DESIGN.md §3). Ids are text; times are milliseconds since the
     * Unix epoch (UTC). References restrict deletion: an entity that others
     * still point to cannot vanish silently. */
    "CREATE TABLE parties ("
    " id TEXT PRIMARY KEY CHECK (length(id) = 13),"
    " name TEXT NOT NULL,"
    " role TEXT NOT NULL CHECK (role IN ('vnb','uenb','lf','aggregator','msb','admin')),"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) STRICT;"

    "CREATE TABLE segments ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " level TEXT NOT NULL CHECK (level IN ('substation','transformer','feeder','other')),"
    " parent TEXT REFERENCES segments(id),"
    " vnb TEXT NOT NULL REFERENCES parties(id),"
    " traffic_light TEXT NOT NULL DEFAULT 'green'"
    "  CHECK (traffic_light IN ('green','yellow','red')),"
    " light_since INTEGER, light_set_by TEXT, light_reason TEXT,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) STRICT;"
    "CREATE INDEX segments_parent ON segments(parent);"
    "CREATE INDEX segments_vnb ON segments(vnb);"

    "CREATE TABLE gwas ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " endpoint TEXT NOT NULL,"
    " max_concurrent INTEGER NOT NULL CHECK (max_concurrent BETWEEN 1 AND 10000),"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) STRICT;"

    "CREATE TABLE smgws ("
    " id TEXT PRIMARY KEY CHECK (length(id) = 14),"
    " gwa TEXT NOT NULL REFERENCES gwas(id),"
    " segment TEXT NOT NULL REFERENCES segments(id),"
    " cert_fingerprint TEXT,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) STRICT;"
    "CREATE INDEX smgws_gwa ON smgws(gwa);"
    "CREATE INDEX smgws_segment ON smgws(segment);"

    "CREATE TABLE devices ("
    " id TEXT PRIMARY KEY,"
    " smgw TEXT NOT NULL REFERENCES smgws(id),"
    " kind TEXT NOT NULL,"
    " driver TEXT NOT NULL CHECK (driver IN ('lpc-mqtt','sunspec')),"
    " firmware TEXT,"
    " failsafe_limit_w INTEGER NOT NULL CHECK (failsafe_limit_w >= 0),"
    " failsafe_duration_s INTEGER NOT NULL CHECK (failsafe_duration_s >= 0),"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL) STRICT;"
    "CREATE INDEX devices_smgw ON devices(smgw);"

    "CREATE TABLE installations ("
    " id TEXT PRIMARY KEY,"
    " device TEXT NOT NULL REFERENCES devices(id),"
    " output INTEGER NOT NULL CHECK (output BETWEEN 0 AND 15),"
    " kind TEXT NOT NULL,"
    " direction TEXT NOT NULL CHECK (direction IN ('consumption','production','bidirectional')),"
    " rated_power_w INTEGER NOT NULL CHECK (rated_power_w > 0),"
    " sec14a INTEGER NOT NULL CHECK (sec14a IN (0, 1)),"
    " energy_manager TEXT,"
    " segment TEXT NOT NULL REFERENCES segments(id),"
    " metering_point TEXT,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " UNIQUE (device, output)) STRICT;"
    "CREATE INDEX installations_segment ON installations(segment);"
    "CREATE INDEX installations_kind ON installations(kind);"
    "CREATE INDEX installations_energy_manager ON installations(energy_manager);"

    "CREATE TABLE assignments ("
    " id TEXT PRIMARY KEY,"
    " party TEXT NOT NULL REFERENCES parties(id),"
    " installation TEXT NOT NULL REFERENCES installations(id),"
    " rights TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " UNIQUE (party, installation)) STRICT;"
    "CREATE INDEX assignments_installation ON assignments(installation);"

    /* API tokens: only the SHA-256 of the secret is kept. */
    "CREATE TABLE tokens ("
    " id TEXT PRIMARY KEY,"
    " party TEXT NOT NULL REFERENCES parties(id) ON DELETE CASCADE,"
    " hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
    " label TEXT,"
    " created_at INTEGER NOT NULL) STRICT;"
    "CREATE INDEX tokens_party ON tokens(party);";

static const char migration_2[] =
    /* The append-only event log (audit.h): each row hashes its content and
     * the previous row's hash. */
    "CREATE TABLE events ("
    " seq INTEGER PRIMARY KEY,"
    " time INTEGER NOT NULL,"
    " kind TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " actor TEXT NOT NULL,"
    " payload TEXT NOT NULL,"
    " prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),"
    " hash BLOB NOT NULL CHECK (length(hash) = 32)) STRICT;"
    "CREATE INDEX events_subject ON events(subject);"
    "CREATE INDEX events_kind_time ON events(kind, time);"

    /* Commands on devices and how far each got (dispatch.h). 'control' is
     * the neutral control as JSON; the times record each step. */
    "CREATE TABLE commands ("
    " id TEXT PRIMARY KEY,"
    " device TEXT NOT NULL REFERENCES devices(id),"
    " control TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('pending','channel_requested','channel_open',"
    "'sent','acked','confirmed','failed')),"
    " requested_by TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " deadline INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " error TEXT,"
    " steps TEXT NOT NULL) STRICT;"
    "CREATE INDEX commands_device ON commands(device);"
    "CREATE INDEX commands_active ON commands(state) WHERE state NOT IN ('confirmed','failed');";

static const char migration_3[] =
    /* Who may see an event (audit.h): party ids separated by spaces; empty
     * means the admin only. Part of the event's hash when not empty. */
    "ALTER TABLE events ADD COLUMN audience TEXT NOT NULL DEFAULT '';"

    /* Webhook subscriptions (webhook.h): where a party wants its events
     * posted, which kinds, the signing secret (kept as given: signing needs
     * it), and how far delivery got ('cursor': the last event seq handled). */
    "CREATE TABLE webhooks ("
    " id TEXT PRIMARY KEY,"
    " party TEXT REFERENCES parties(id) ON DELETE CASCADE,"
    " admin INTEGER NOT NULL CHECK (admin IN (0, 1)),"
    " url TEXT NOT NULL,"
    " kinds TEXT NOT NULL,"
    " secret TEXT,"
    " created_at INTEGER NOT NULL,"
    " cursor INTEGER NOT NULL CHECK (cursor >= 0),"
    " state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active','failing')),"
    " failures INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT,"
    " last_attempt_at INTEGER, last_success_at INTEGER, failing_since INTEGER) STRICT;"
    "CREATE INDEX webhooks_party ON webhooks(party);";

static const char migration_4[] =
    /* Switching and control requests (request/requests.h). 'spec' is the
     * canonical request as JSON, 'decision' the arbiter's verdict with its
     * counts; 'seq' is the admission order the arbiter ranks by. A request
     * is in force while ended_at is NULL. The first answer is kept for
     * Idempotency-Key replays. */
    "CREATE TABLE requests ("
    " id TEXT PRIMARY KEY,"
    " seq INTEGER NOT NULL UNIQUE,"
    " party TEXT NOT NULL,"
    " role TEXT NOT NULL,"
    " spec TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('received','admitted','rejected','scheduled',"
    "'executing','completed','partially_completed','late','failed','cancelled','superseded',"
    "'expired')),"
    " decision TEXT NOT NULL,"
    " deadline INTEGER NOT NULL,"
    " window_end INTEGER,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " ended_at INTEGER,"
    " superseded_by TEXT,"
    " idem_key TEXT,"
    " body_hash TEXT,"
    " answer TEXT) STRICT;"
    "CREATE UNIQUE INDEX requests_idem ON requests(party, idem_key) WHERE idem_key IS NOT NULL;"
    "CREATE INDEX requests_party ON requests(party, seq);"
    "CREATE INDEX requests_state ON requests(state, seq);"
    "CREATE INDEX requests_live ON requests(seq) WHERE ended_at IS NULL"
    " OR state IN ('admitted','scheduled','executing');"
    /* What a request does on each installation it targets: the arbiter's
     * decision and the resolved steps (JSON) it put in force. */
    "CREATE TABLE request_targets ("
    " request TEXT NOT NULL,"
    " installation TEXT NOT NULL,"
    " device TEXT NOT NULL,"
    " code TEXT NOT NULL,"
    " text TEXT NOT NULL,"
    " conflict TEXT,"
    " steps TEXT NOT NULL,"
    " PRIMARY KEY (request, installation)) STRICT, WITHOUT ROWID;"
    "CREATE INDEX request_targets_installation ON request_targets(installation);"
    /* One execution per request and device, with the time of each step. */
    "CREATE TABLE executions ("
    " request TEXT NOT NULL,"
    " device TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('pending','channel_requested','channel_open','sent',"
    "'acked','confirmed','failed','skipped')),"
    " late INTEGER NOT NULL DEFAULT 0,"
    " deadline INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " error TEXT,"
    " command TEXT,"
    " steps TEXT NOT NULL,"
    " PRIMARY KEY (request, device)) STRICT, WITHOUT ROWID;"
    /* The state each device last confirmed (JSON), for reconciliation. */
    "CREATE TABLE device_states ("
    " device TEXT PRIMARY KEY,"
    " state TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL) STRICT;";

/* Meter data: documents once per gateway and id, values once per metering
 * point, OBIS code and capture time ('res' 0 as received, 3600 for an hour
 * that retention condensed from 'n' values), and the gateway of each
 * metering point that no installation names. */
static const char migration_5[] =
    "CREATE TABLE meter_documents ("
    " smgw TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " received_at INTEGER NOT NULL,"
    " nvalues INTEGER NOT NULL,"
    " PRIMARY KEY (smgw, id)) STRICT, WITHOUT ROWID;"
    "CREATE TABLE readings ("
    " point TEXT NOT NULL,"
    " obis TEXT NOT NULL,"
    " time INTEGER NOT NULL,"
    " value INTEGER NOT NULL,"
    " scaler INTEGER NOT NULL,"
    " unit INTEGER NOT NULL,"
    " status INTEGER NOT NULL,"
    " smgw TEXT NOT NULL,"
    " res INTEGER NOT NULL DEFAULT 0,"
    " n INTEGER NOT NULL DEFAULT 1,"
    " PRIMARY KEY (point, obis, time)) STRICT, WITHOUT ROWID;"
    "CREATE INDEX readings_raw_time ON readings(time) WHERE res = 0;"
    "CREATE TABLE meter_points ("
    " point TEXT PRIMARY KEY,"
    " smgw TEXT NOT NULL,"
    " first_seen INTEGER NOT NULL) STRICT;"
    "CREATE INDEX installations_metering_point ON installations(metering_point)"
    " WHERE metering_point IS NOT NULL;";

const char *const store_sqlite_migrations[] = {migration_1, migration_2, migration_3, migration_4,
                                               migration_5};
const int store_sqlite_nmigrations = (int)ARRAY_LEN(store_sqlite_migrations);
