/*
 * gwa_fleet.h - what one simulated gateway administrator (GWA) administers:
 * its Smart Meter Gateways and the CLS devices behind them, read from a
 * registry import document (the format of data/musterstadt/musterstadt.json).
 *
 * The document may describe a whole country; only the "smgws" whose "gwa" is
 * this GWA and the "devices" behind those gateways are kept. The file is
 * scanned, not parsed as one tree: the other sections (installations,
 * assignments, ...) are skipped by a bracket matcher and each kept element is
 * parsed on its own with jsonx, so loading 100,000 gateways needs little more
 * memory than the file itself, and that only while loading.
 *
 * Threading and ownership: a fleet belongs to the loop thread of the
 * simulator. The fleet owns its gateways and devices; pointers to them stay
 * valid until gwa_fleet_free(). A gateway's order and wake-up fields are
 * owned by gwa_orders and gwa_waker (see there); the fleet only sets them to
 * zero.
 */
#ifndef CLSM_GWA_FLEET_H
#define CLSM_GWA_FLEET_H

#include <stddef.h>
#include <stdint.h>

#define GWA_FLEET_MAX_FILE (1LL << 30) /* larger registry files are refused */

struct gwa_order;

struct gwa_gw {
    char id[15]; /* EABC0012345678 */
    /* Owned by gwa_orders: the gateway's open (pending or woken) orders,
     * oldest first. */
    struct gwa_order *open_head, *open_tail;
    uint32_t nopen;
    /* Owned by gwa_waker: the send queue and the list of gateways waiting
     * for the check after a wake-up. */
    uint8_t wake_queued, wake_checking;
    struct gwa_gw *wake_next;
    struct gwa_gw *check_prev, *check_next;
    int64_t check_mono_ms;
};

struct gwa_dev {
    char *id; /* the CLS device id */
    struct gwa_gw *gw;
    int denied; /* --deny: no EMT may reach it */
};

struct gwa_fleet;

/*
 * Read the registry document 'path' and keep the gateways administered by
 * 'gwa_id' and the devices behind them. Returns 0 and a new fleet in '*out'
 * (free it with gwa_fleet_free()), or -ENOENT/-EACCES (cannot read),
 * -EFBIG (over GWA_FLEET_MAX_FILE), -EINVAL (not a registry document: a
 * syntax error, a kept element without a valid id, a duplicate id) or
 * -ENOMEM, with 'err' naming the file and, where it helps, the element and
 * its line. On failure '*out' is NULL.
 */
int gwa_fleet_load(const char *path, const char *gwa_id, struct gwa_fleet **out, char *err,
                   size_t errlen);

/* Free the fleet and everything in it; NULL is ignored. */
void gwa_fleet_free(struct gwa_fleet *f);

/* The gateway or device with that id, or NULL when it is not administered
 * here. Lookups cost one hash and a short probe; 'id' may be any string. */
struct gwa_gw *gwa_fleet_gateway(const struct gwa_fleet *f, const char *id);
struct gwa_dev *gwa_fleet_device(const struct gwa_fleet *f, const char *id);

/* Mark the device 'id' as reachable by no EMT. Returns 0, or -ENOENT when
 * it is not a device of this fleet (then nothing changes). */
int gwa_fleet_deny(struct gwa_fleet *f, const char *id);

/* Counts, for logs and statistics. */
size_t gwa_fleet_gateways(const struct gwa_fleet *f);
size_t gwa_fleet_devices(const struct gwa_fleet *f);

#endif
