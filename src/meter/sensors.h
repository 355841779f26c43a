/*
 * sensors.h - CLS sensors behind the gateways (door contacts, smoke
 * detectors, fill levels, room climate): clsmd keeps a channel open to
 * every device of kind "sensor" in the registry, reads their telemetry
 * (docs/protocols/lpc-mqtt.md §6) and raises alarms as events:
 *
 *   sensor.alarm    smoke; a door open longer than sensor.door_open_alarm_s;
 *                   a fill level at or above sensor.fill_level_alarm_pct
 *   sensor.cleared  the same condition over (a fill level 5 points below
 *                   the threshold)
 *
 * for the parties assigned to installations behind the sensor's gateway
 * (and the admin). The registry is read for sensors at start and every
 * sensor.rescan_s; readings are judged in memory, not stored.
 */
#ifndef CLSM_SENSORS_H
#define CLSM_SENSORS_H

#include <event2/event.h>
#include <jansson.h>

#include "driver/lpc_msg.h"

struct store;
struct audit;
struct dispatch;
struct sensors;

struct sensors_config {
    int door_open_alarm_s; /* a door open this long raises an alarm */
    int fill_level_alarm_pct;
    int rescan_s; /* how often the registry is read for new sensors */
};

struct sensors *sensors_new(struct event_base *base, struct store *store, struct audit *audit,
                            struct dispatch *dispatch, const struct sensors_config *cfg);
void sensors_free(struct sensors *s);

/* A sensor's telemetry (dispatch_set_sensor_listener()). */
void sensors_telemetry(void *arg, const char *device, const struct lpc_telemetry *t);

#endif
