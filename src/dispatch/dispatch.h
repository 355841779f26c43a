/*
 * dispatch.h - driving devices: commands go to a device through its channel
 * (asking the GWA for one when none is open), are acknowledged, read back
 * and confirmed, within a deadline (DESIGN.md §1 steps 2-7).
 *
 * Each command walks one state machine, changed only by its transition
 * function (persisted, logged, audited):
 *
 *   pending -> channel_requested -> channel_open -> sent -> acked -> confirmed
 *                     ^                                 |        |
 *                     +-------- channel lost -----------+--------+
 *   any of them -> failed (the GWA refused, the device said nack, deadline)
 *
 * A command keeps its id on every retry, so a device that already applied
 * it de-duplicates the repetition (applied once). Commands of one device
 * run one after another. State changes are written in one transaction per
 * loop iteration (group commit); a submitted command is acknowledged to the
 * caller only once it is durable, and only then sent.
 *
 * Everything runs on the loop thread of the base given at creation.
 */
#ifndef CLSM_DISPATCH_H
#define CLSM_DISPATCH_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "channel/channel.h"
#include "channel/gwa_client.h"
#include "driver/lpc_msg.h"

struct store;
struct audit;
struct committer;
struct dispatch;

struct dispatch_config {
    int deadline_s;    /* default time to confirmation */
    int ack_timeout_s; /* silence after a send before sending again */
};

/* Create the dispatcher; 'store', 'audit' and 'committer' (the group
 * commit its commands are written by) are borrowed. */
struct dispatch *dispatch_new(struct event_base *base, struct store *store, struct audit *audit,
                              struct committer *committer, const struct dispatch_config *cfg);

/* Connect the channel manager and the GWA client (created with
 * dispatch_channel_listener() and dispatch_gwa_result()). Either may be
 * NULL when channels are off; commands then fail with a reason. */
void dispatch_attach(struct dispatch *d, struct channel_mgr *channels, struct gwa_client *gwa);

/* What the channel manager reports to; see channel.h. */
struct channel_listener dispatch_channel_listener(struct dispatch *d);

/* What the GWA client reports to (a gwa_result_fn); 'arg' is the dispatch. */
void dispatch_gwa_result(void *arg, const char *device, enum gwa_outcome outcome, int status,
                         const char *reason);

/* Called once a submitted command is durable (rc 0, 'command' borrowed, in
 * the API form of dispatch_command()) or could not be stored (rc < 0). */
typedef void (*dispatch_done_fn)(void *arg, int rc, const json_t *command);

/*
 * Submit 'control' (the neutral form, already validated) for 'device' on
 * behalf of 'by', to be confirmed by 'deadline_ms' (0: the configured
 * default). 'done' is called later, from the loop, once the command is
 * stored. Returns 0, -ENOENT (no such device) or -ENOMEM; on error 'done'
 * is not called.
 */
int dispatch_submit(struct dispatch *d, const char *device, const json_t *control, const char *by,
                    int64_t deadline_ms, dispatch_done_fn done, void *arg);

#define DISPATCH_ID_MAX 40

/*
 * Queue 'control' for 'device' on behalf of 'by' without an answer
 * callback (the reconciler's way): the command is written by the next
 * commit, together with whatever the caller changed in this loop
 * iteration, and sent after it. Its id is copied to 'id_out' (may be
 * NULL). The observer hears of its progress. 'urgent' (grid work) asks
 * for the channel ahead of other work waiting for a GWA (operators'
 * commands through dispatch_submit() are always urgent). Returns 0,
 * -ENOENT (no such device), -ENOMEM or -EIO.
 */
int dispatch_send(struct dispatch *d, const char *device, const json_t *control, const char *by,
                  int64_t deadline_ms, bool urgent, char id_out[DISPATCH_ID_MAX]);

/* The id of the device's unfinished command (the head of its queue), or
 * NULL; valid until the loop runs again. */
const char *dispatch_busy(struct dispatch *d, const char *device);

/* Whether the device has an open channel now. */
bool dispatch_channel_open(struct dispatch *d, const char *device);

/*
 * Who wants to hear what happens to devices (the reconciler). Every
 * pointer is valid during the call only; callbacks may submit commands.
 *   command: a command changed state ('state' as in the diagram above;
 *            'error' for failed; 'permanent' when retrying cannot help:
 *            the GWA refused with a 4xx, the device refused the control)
 *   state:   the device reported its state (before any confirmation it
 *            brings is announced through 'command')
 *   channel: a channel to the device opened or closed
 */
struct dispatch_observer {
    void (*command)(void *arg, const char *device, const char *cmd, const char *state, int attempts,
                    const char *error, bool permanent);
    void (*state)(void *arg, const char *device, const struct lpc_state *st);
    void (*channel)(void *arg, const char *device, bool open);
    /* Measured power the device reported on its own (W, > 0 consumption). */
    void (*telemetry)(void *arg, const char *device, int64_t time_ms, int64_t watts);
    void *arg;
};
void dispatch_set_observer(struct dispatch *d, const struct dispatch_observer *o);

/* Every telemetry message of every device, as decoded (sensors.h). */
typedef void (*dispatch_sensor_fn)(void *arg, const char *device, const struct lpc_telemetry *t);
void dispatch_set_sensor_listener(struct dispatch *d, dispatch_sensor_fn fn, void *arg);

/* Keep a channel to 'device' open (sensors, which report only through
 * it): ask the GWA now, and again after every close or refusal, backing
 * off from 5 s to 5 minutes. Returns 0 or -ENOENT (not in the registry). */
int dispatch_keep_channel(struct dispatch *d, const char *device);

/* The command with that id in API form (new reference), or -ENOENT. */
int dispatch_command(struct dispatch *d, const char *id, json_t **out);

/* Pick up the commands that were not finished when clsmd last stopped. */
int dispatch_resume(struct dispatch *d);

/* For metrics: commands in memory (not yet finished) by state, and how
 * many entered each state since start (confirmed and failed are the
 * finished ones). States are indexed in the order of the diagram above. */
#define DISPATCH_NSTATES 7
struct dispatch_stats {
    int live[DISPATCH_NSTATES];
    uint64_t entered[DISPATCH_NSTATES];
    /* Channel requests to GWAs: in our queue, with a GWA and not yet
     * opened, and HTTPS exchanges in flight (all 0 without a GWA client). */
    int gwa_queued, gwa_waiting, gwa_exchanges;
};
const char *dispatch_state_name(int state);
void dispatch_stats(const struct dispatch *d, struct dispatch_stats *out);

/* Free everything (commit_now() first, or changes are lost). */
void dispatch_free(struct dispatch *d);

#endif
