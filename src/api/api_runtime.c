/*
 * api_runtime.c - handlers that drive devices and show what drives them:
 * operator commands on a device (DESIGN.md §1 steps 2-7, through the same
 * dispatcher that requests will use) and the list of CLS channels.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "channel/channel.h"
#include "common/log.h"
#include "common/util.h"
#include "dispatch/dispatch.h"
#include "driver/lpc_msg.h"

#define CHANNEL_PAGE_DEFAULT 100
#define CHANNEL_PAGE_MAX     1000

/* Check a control in neutral form by the lpc-mqtt rules (the neutral form
 * is that protocol's message without its command id) and return it in
 * canonical form. NULL with 'err' filled when it is not acceptable. */
static json_t *canonical_control(const json_t *control, struct lpc_error *err)
{
    struct lpc_control *c = NULL;
    json_t *copy = NULL, *out = NULL;
    char *text = NULL, *buf = NULL;

    if (!json_is_object(control) || json_object_get(control, "cmd")) {
        snprintf(err->field, sizeof err->field, "%s", json_is_object(control) ? "/cmd" : "");
        snprintf(err->reason, sizeof err->reason, "%s",
                 json_is_object(control) ? "clsm chooses the command id"
                                         : "the control must be an object");
        return NULL;
    }
    copy = json_deep_copy(control);
    json_object_set_new(copy, "cmd", json_string("check"));
    text = json_dumps(copy, JSON_COMPACT);
    c = malloc(sizeof *c);
    buf = malloc(LPC_MAX_CONTROL + 1);
    if (text && c && buf && lpc_control_decode(text, strlen(text), c, err) == 0 &&
        lpc_control_encode(c, buf, LPC_MAX_CONTROL + 1) > 0) {
        out = json_loads(buf, 0, NULL);
        json_object_del(out, "cmd");
    } else if (!text || !c || !buf) {
        snprintf(err->reason, sizeof err->reason, "out of memory");
    }
    json_decref(copy);
    free(text);
    free(c);
    free(buf);
    return out;
}

static void submitted(void *arg, int rc, const json_t *command)
{
    struct api_call *c = arg;
    if (rc != 0) {
        api__problem(c, 503, "store-unavailable", NULL, NULL,
                     "the command could not be stored; it will be retried, but its outcome "
                     "is not known yet");
        free(c);
        return;
    }
    char loc[96];
    snprintf(loc, sizeof loc, "/v1/commands/%s", json_string_value(json_object_get(command, "id")));
    http_add_header(c->req, "Location", loc);
    api__json(c, 202, json_deep_copy(command));
    free(c);
}

void api__command_submit(struct api_call *c)
{
    json_t *body = NULL, *control = NULL, *v;
    const char *key, *deadline = NULL;
    struct lpc_error err;
    int64_t deadline_ms = 0;

    if (api__check_query(c, NULL, NULL) != 0 || api__body(c, 0, &body) != 0)
        return;
    if (c->api->dispatch == NULL) {
        api__problem(c, 503, "unavailable", NULL, NULL, "commands are not available");
        goto out;
    }
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "control") == 0)
            continue;
        if (strcmp(key, "deadline") == 0 && json_is_string(v) &&
            time_parse_ms(json_string_value(v), &deadline_ms) == 0) {
            deadline = json_string_value(v);
            continue;
        }
        char ptr[160];
        snprintf(ptr, sizeof ptr, "/%s", key);
        api__problem(c, 422, "validation", NULL, ptr, "%s",
                     strcmp(key, "deadline") == 0 ? "deadline must be an RFC 3339 time"
                                                  : "unknown field; give control and deadline");
        goto out;
    }
    if (deadline && deadline_ms <= time_now_ms()) {
        api__problem(c, 422, "validation", NULL, "/deadline", "the deadline has passed");
        goto out;
    }
    memset(&err, 0, sizeof err);
    control = canonical_control(json_object_get(body, "control"), &err);
    if (control == NULL) {
        char ptr[128];
        snprintf(ptr, sizeof ptr, "/control%s", err.field);
        api__problem(c, 422, "validation", NULL, ptr, "control%s%s: %s", err.field[0] ? " " : "",
                     err.field, err.reason);
        goto out;
    }
    /* The answer comes from 'submitted', once the command is durable; the
     * call outlives this handler. */
    struct api_call *keep = malloc(sizeof *keep);
    if (keep == NULL) {
        api__problem(c, 503, "overload", NULL, NULL, "out of memory");
        goto out;
    }
    memcpy(keep, c, sizeof *keep);
    int rc =
        dispatch_submit(c->api->dispatch, c->params[0], control,
                        c->who.party[0] ? c->who.party : "admin", deadline_ms, submitted, keep);
    if (rc != 0) {
        free(keep);
        if (rc == -ENOENT)
            api__problem(c, 404, "not-found", NULL, NULL, "no device with id \"%s\"", c->params[0]);
        else
            api__problem(c, 503, "overload", NULL, NULL, "the command could not be queued");
    }
out:
    json_decref(control);
    json_decref(body);
}

void api__command_get(struct api_call *c)
{
    json_t *cmd = NULL;
    int rc;
    if (api__check_query(c, NULL, NULL) != 0)
        return;
    rc = c->api->dispatch ? dispatch_command(c->api->dispatch, c->params[0], &cmd) : -ENOENT;
    if (rc == -ENOENT)
        api__problem(c, 404, "not-found", NULL, NULL, "no command with id \"%s\"", c->params[0]);
    else if (rc != 0)
        api__problem(c, 503, "store-unavailable", NULL, NULL, "the store failed");
    else
        api__json(c, 200, cmd);
}

void api__channel_list(struct api_call *c)
{
    static const char *const allowed[] = {"limit", "cursor", "state", "smgw", "device", NULL};
    const char *lim = api__query(c, "limit"), *cur = api__query(c, "cursor");
    const char *state = api__query(c, "state");
    long long limit = CHANNEL_PAGE_DEFAULT, after = 0;
    int more = 0;

    if (api__check_query(c, allowed, NULL) != 0)
        return;
    if (lim && parse_ll(lim, 1, CHANNEL_PAGE_MAX, &limit) != 0) {
        api__problem(c, 400, "invalid-parameter", "limit", NULL,
                     "limit must be an integer from 1 to %d", CHANNEL_PAGE_MAX);
        return;
    }
    if (cur && parse_ll(cur, 0, INT64_MAX, &after) != 0) {
        api__problem(c, 400, "invalid-parameter", "cursor", NULL,
                     "cursor is not one this server issued");
        return;
    }
    if (state && channel_state_parse(state) < 0) {
        api__problem(c, 400, "invalid-parameter", "state", NULL,
                     "state must be handshake, identify, open, closing or closed");
        return;
    }
    json_t *items = c->api->channels
                        ? channel_mgr_list(c->api->channels, (uint64_t)after, (int)limit, state,
                                           api__query(c, "smgw"), api__query(c, "device"), &more)
                        : json_array();
    json_t *next = json_null();
    if (more && json_array_size(items) > 0) {
        char buf[32];
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT,
                 json_integer_value(
                     json_object_get(json_array_get(items, json_array_size(items) - 1), "id")));
        next = json_string(buf);
    }
    json_t *body = json_pack("{s:o, s:o}", "items", items, "next_cursor", next);
    if (c->api->channels)
        json_object_set_new(body, "refused", channel_mgr_refusals(c->api->channels));
    api__json(c, 200, body);
}
