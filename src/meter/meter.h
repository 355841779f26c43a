/*
 * meter.h - the passive EMT: gateways post signed meter data over mutual
 * TLS (DESIGN.md §5.6, docs/protocols/meter-data.md).
 *
 * The service has its own HTTPS listener. For POST /v1/meter-data it checks
 * the connection's gateway (SMGW sub-CA, in the registry), opens the CMS
 * SignedData (signed.h), parses the document (cosem.h), checks that the
 * document and each of its metering points belong to that gateway, and
 * hands the values to the group commit (store/commit.h): the answer goes
 * out once they are durable. A document is stored once per gateway and id;
 * a value once per metering point, OBIS code and time. A refused document
 * stores nothing; its reason is answered and recorded in the event log
 * (meter_data.rejected).
 */
#ifndef CLSM_METER_H
#define CLSM_METER_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdint.h>

#include "common/util.h"

struct store;
struct committer;
struct audit;
struct meter;

struct meter_config {
    int max_connections;
    int request_timeout_s;
    int retention_days; /* values as received; older ones are condensed to hours (0: never) */
};

struct meter_stats {
    uint64_t documents, duplicates, rejected, values, values_stored, values_condensed;
};

/* 'ctx' verifies client certificates against the SMGW trust ('store' of
 * the same anchors, borrowed); 'smgw_ca' (borrowed) is the sub-CA that
 * issues gateways. NULL when out of memory or the writer cannot be added. */
struct meter *meter_new(struct event_base *base, struct store *store, struct committer *committer,
                        struct audit *audit, SSL_CTX *ctx, X509_STORE *trust, X509 *smgw_ca,
                        const struct meter_config *cfg);
int meter_listen(struct meter *m, const struct hostport *addr, struct hostport *bound);
/* Stop accepting; 'done' once the last connection is gone. */
void meter_shutdown(struct meter *m, void (*done)(void *arg), void *arg);
void meter_free(struct meter *m);
void meter_stats(const struct meter *m, struct meter_stats *out);

/* Told, once stored, of every power value (1-x:1.7 taken, > 0; 1-x:2.7 fed
 * in, < 0; in W) of a metering point that an installation names, for the
 * compliance of switched devices (requests.h). */
typedef void (*meter_power_fn)(void *arg, const char *installation, int64_t time_ms, int64_t watts);
void meter_set_power_listener(struct meter *m, meter_power_fn fn, void *arg);

#endif
