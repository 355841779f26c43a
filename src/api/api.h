/*
 * api.h - the operator REST API of clsmd (DESIGN.md §5.1): routes, bearer
 * token authentication, visibility rules, problem+json errors and metrics,
 * served by http.c on the caller's event loop.
 *
 * The API borrows the store and the event base; both must outlive it. All
 * functions must be called from the loop thread of that base.
 */
#ifndef CLSM_API_H
#define CLSM_API_H

#include <event2/event.h>
#include <stdio.h>

#include "common/config.h"
#include "store/store.h"

struct api;

/* Create the API from the configuration (limits, admin token). Returns
 * NULL when out of memory. */
struct api *api_new(struct event_base *base, struct store *store, const struct clsm_config *cfg);

struct dispatch;
struct channel_mgr;

/* Give the API the parts that drive devices: the dispatcher (commands) and
 * the channel manager (may be NULL when channels are off). Both are
 * borrowed and must outlive the API. */
void api_set_runtime(struct api *api, struct dispatch *dispatch, struct channel_mgr *channels);

struct requests;

/* Give the API the requests runtime (borrowed; it must outlive the API).
 * Traffic-light changes and registry writes through the API are passed on
 * to it. */
void api_set_requests(struct api *api, struct requests *requests);

struct audit;
struct committer;

/* Serve live events, webhooks and the audit listing (api_events.c): makes
 * the API the listener of 'audit' and registers the webhooks' writer with
 * 'committer' (both borrowed; they must outlive the API). Loads the stored
 * webhook subscriptions. Returns 0, or -1 when that fails. */
int api_set_events(struct api *api, struct audit *audit, struct committer *committer,
                   const struct clsm_config *cfg);

/* Listen on 'addr'; the bound address is written to 'bound'. Returns 0 or a
 * negative errno. */
int api_listen(struct api *api, const struct hostport *addr, struct hostport *bound);

/* Stop accepting and call 'done' once the requests in progress are
 * answered. */
void api_shutdown(struct api *api, void (*done)(void *arg), void *arg);

/* Close everything and free the API. */
void api_free(struct api *api);

/* Print every served route as "METHOD PATTERN" lines (for tests that hold
 * the routes against docs/openapi.yaml). */
void api_print_routes(FILE *out);

#endif
