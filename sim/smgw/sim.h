/*
 * sim.h - the gateway-fleet simulator's shared state: N Smart Meter
 * Gateways in one event-driven process, each with the CLS devices behind
 * it (DESIGN.md §2 "Processes").
 *
 * A gateway answers signed wake-ups (wan.c), fetches its orders from the
 * GWA over mutual TLS and dials clsmd with its own certificate; the CLS
 * channel is proxied to the device on the home-area network side, where
 * each device is an MQTT client built on libmosquitto running the
 * Steuerbox model (device.c). Everything runs on one libevent loop; the
 * fleet tables are fixed after loading (fleet.c).
 *
 * Each device's MQTT client binds to its own loopback address
 * (127.64.0.0/10 by device index), so the gateway knows from the peer
 * address which device a home-area connection belongs to; each gateway's
 * outgoing connections bind to 127.128.0.0/9 by gateway index, so that a
 * fleet of 100,000 never runs out of ephemeral ports.
 */
#ifndef CLSM_SIM_H
#define CLSM_SIM_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdint.h>

#include "common/util.h"
#include "smgw/steuerbox.h"

struct mosquitto;
struct sim;
struct chan;

/* Faults that tests aim at single devices (--fault KIND:DEVICE[:ARG]). */
enum fault {
    F_NONE = 0,
    F_NACK = 1 << 0,      /* every control answered nack (error 3) */
    F_SLOW = 1 << 1,      /* acks delayed by fault_ms */
    F_DROP = 1 << 2,      /* the first control is applied, then the channel drops */
    F_WRONG_ID = 1 << 3,  /* connects with an id the registry does not know */
    F_CLAIM = 1 << 4,     /* connects claiming another device's id (fault_arg) */
    F_MALFORMED = 1 << 5, /* sends a malformed MQTT frame instead of CONNECT */
    F_OVERDRAW = 1 << 6,  /* confirms every cap but draws its full demand */
    F_SMOKE = 1 << 7,     /* a smoke detector that detects smoke */
    F_DOOR = 1 << 8,      /* a door contact whose door stays open */
    F_FILL = 1 << 9,      /* a fill level sensor at fault_arg percent */
};

struct dev {
    struct sim *sim;
    char id[97];
    uint32_t idx;
    uint32_t gw;
    struct steuerbox sb;
    struct chan *chan;      /* while a channel is up */
    struct mosquitto *mosq; /* while the MQTT client exists */
    struct event *mev;      /* its socket */
    int mqtt_up;            /* CONNACK received */
    unsigned faults;
    int fault_ms;
    int dropped_once;
    char fault_arg[97];
    int64_t last_telemetry_ms;
    uint32_t failsafe_w, failsafe_s; /* from the registry */
    uint64_t controls, acks, nacks, duplicates;
    char mp[34];                     /* metering point of its installations ("" none) */
    bool sensor;                     /* a sensor (registry kind), not a Steuerbox */
    uint64_t import_mwh, export_mwh; /* the meter's registers, in mWh */
    int64_t metered_ms;              /* registers advanced up to here */
};

struct fetch;
struct push;

struct gw {
    char id[15];
    uint32_t idx;
    int gwa; /* index into sim.gwas, -1 when unknown */
    uint8_t *cert_der, *key_der;
    uint32_t cert_len, key_len;
    uint32_t first_dev, ndev;
    SSL_SESSION *gwa_session; /* resumed on the next order fetch */
    struct fetch *fetch;      /* the order fetch in progress, or NULL */
    int fetch_again;
    struct push *push; /* the meter data post in progress, or NULL */
    uint64_t wakeups, fetches;
};

struct gwa_info {
    char id[97];
    char endpoint[300]; /* https://host:port */
    EVP_PKEY *pub;      /* verifies its wake-ups */
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

/* A CLS channel: the TLS connection to clsmd (wan) and the device's
 * home-area TCP connection (han), proxied both ways. */
struct chan {
    struct sim *s;
    struct dev *dev;
    struct bufferevent *wan, *han;
    int wan_up;
    int64_t opened_ms, last_ms;
    struct chan *prev, *next; /* open channels, most recently used first */
};

struct sim_opts {
    char pki[1024];
    char registry[1024];
    char bundle[1100];
    struct hostport udp;
    struct hostport stats;
    int have_stats;
    int keepalive_s;
    int telemetry_s;
    int channel_idle_s;
    int max_channels;
    int heartbeat_s;
    struct hostport meter; /* clsmd's meter data listener */
    int have_meter;
    int meter_period_s;
    char curves[256];
    char ciphers[512];
    int log_level;
};

struct sim {
    struct event_base *base;
    struct sim_opts opt;
    SSL_CTX *ctx;  /* client side: verifies clsmd and the GWAs against the root */
    X509 *smgw_ca; /* sent with each gateway certificate, so peers trusting
                      only the root can build the chain */
    struct gw *gws;
    uint32_t ngws;
    struct dev *devs;
    uint32_t ndevs;
    uint32_t *gw_index;  /* open-addressing table of gateway indexes by id */
    uint32_t *dev_index; /* and of devices */
    uint32_t gw_slots, dev_slots;
    struct gwa_info gwas[16];
    int ngwas;
    struct wakeup_nonces *nonces;
    evutil_socket_t udp;
    struct event *udp_ev;
    struct evconnlistener *han;
    int han_port;
    struct event *tick;
    struct chan *lru_head, *lru_tail;
    int nchans;
    struct http_server *stats_srv;
    /* counters for /v1/stats */
    uint64_t wakeups_ok, wakeups_bad[8], fetches_ok, fetches_failed, orders, orders_unknown;
    uint64_t chans_opened, chans_failed, chans_closed, chans_evicted;
    uint64_t controls, acks, nacks, duplicates, states, telemetry;
    uint64_t pushes_ok, pushes_failed, push_values;
    struct sockaddr_storage meter_addr;
    socklen_t meter_addrlen;
};

/* --- fleet.c --------------------------------------------------------------------- */

/* Load the gateways and devices of the registry document that also have
 * credentials in the bundle. Returns 0 or -1 with a message logged. */
int fleet_load(struct sim *s);
struct gw *fleet_gw(struct sim *s, const char *id);
struct dev *fleet_dev(struct sim *s, const char *id);
/* Loopback addresses of a device (home-area side) and a gateway (its
 * outgoing connections). */
void fleet_dev_addr(uint32_t idx, struct sockaddr_in *out);
void fleet_gw_addr(uint32_t idx, struct sockaddr_in *out);
/* The device whose home-area address this is, or NULL. */
struct dev *fleet_dev_by_addr(struct sim *s, const struct sockaddr_in *a);
void fleet_free(struct sim *s);

/* --- wan.c ------------------------------------------------------------------------- */

int wan_start(struct sim *s);
/* A datagram arrived on the wake-up socket. */
void wan_wakeup_cb(evutil_socket_t fd, short what, void *arg);
/* Close a channel (both sides) with a reason for the log. 'lost' says the
 * link broke (the device's failsafe timer starts) rather than ended in
 * order. */
void chan_close(struct chan *c, const char *reason, int lost);
/* The home-area side of 'dev' connected: proxy it to the channel. */
void chan_attach_han(struct chan *c, evutil_socket_t fd);
/* Mark activity (for the idle timeout and eviction order). */
void chan_touch(struct chan *c);
void wan_stop(struct sim *s);
/* A TCP socket from the gateway's own loopback address, and a TLS client
 * with its certificate and key. */
evutil_socket_t gw_socket(const struct gw *g);
SSL *gw_ssl(struct sim *s, const struct gw *g);

/* --- meterpush.c --------------------------------------------------------------------- */

/* Once a second: the gateways whose turn it is post their meter values. */
void meter_tick(struct sim *s, int64_t now_ms);
/* Abandon posts in progress (shutdown). */
void meter_stop(struct sim *s);
/* Build the signed document of gateway 'g' at 'now_ms' (DER, malloc'd). */
int meter_document(struct sim *s, struct gw *g, int64_t now_ms, uint8_t **der, size_t *len,
                   size_t *values);

/* --- device.c ----------------------------------------------------------------------- */

int han_start(struct sim *s);
/* The WAN side of a channel to 'd' is up: start its MQTT client. */
int device_connect(struct sim *s, struct dev *d);
/* The channel is gone: stop the client, tell the model whether the link
 * was lost or closed in order. */
void device_disconnect(struct sim *s, struct dev *d, int lost);
/* Once a second: keepalives, model ticks, telemetry. */
void device_tick(struct sim *s, int64_t now_ms);
void han_stop(struct sim *s);

#endif
