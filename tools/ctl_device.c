/*
 * ctl_device.c - clsmctl's commands on devices: send a control and follow
 * the command until the device confirmed it or it failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "ctl_table.h"

static void print_command(const json_t *cmd)
{
    static const char *const order[] = {"pending", "channel_requested", "channel_open", "sent",
                                        "acked",   "confirmed",         "failed"};
    static const char *const hdr[] = {"step", "at"};
    const json_t *steps = json_object_get(cmd, "steps");
    printf("command %s on %s: %s", json_string_value(json_object_get(cmd, "id")),
           json_string_value(json_object_get(cmd, "device")),
           json_string_value(json_object_get(cmd, "state")));
    if (json_is_string(json_object_get(cmd, "error")))
        printf(" (%s)", json_string_value(json_object_get(cmd, "error")));
    printf(", %lld attempt(s)\n", (long long)json_integer_value(json_object_get(cmd, "attempts")));
    struct table *t = table_new(2, hdr);
    for (size_t i = 0; t && i < sizeof order / sizeof order[0]; i++) {
        const char *at = json_string_value(json_object_get(steps, order[i]));
        if (at) {
            const char *row[] = {order[i], at};
            table_add(t, row);
        }
    }
    if (t)
        table_print(t, stdout);
    table_free(t);
}

static int final(const json_t *cmd)
{
    const char *st = json_string_value(json_object_get(cmd, "state"));
    return st && (strcmp(st, "confirmed") == 0 || strcmp(st, "failed") == 0);
}

int cmd_command(struct ctl *c, int argc, char **argv)
{
    const char *deadline = NULL;
    int wait = 0, rc;
    char path[512], eid[300];
    struct resp r;
    json_error_t jerr;

    if (argc < 2)
        die_usage("command needs DEVICE and CONTROL_JSON, e.g. "
                  "'{\"type\":\"limit\",\"direction\":\"consumption\",\"value_w\":4200,"
                  "\"active\":true,\"duration_s\":3600}'");
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--deadline") == 0 && i + 1 < argc)
            deadline = argv[++i];
        else if (strcmp(argv[i], "--wait") == 0)
            wait = 1;
        else
            die_usage("command: unexpected argument \"%s\"", argv[i]);
    }
    json_t *control = json_loads(argv[1], 0, &jerr);
    if (control == NULL)
        die_usage("command: CONTROL_JSON is not JSON: %s", jerr.text);
    json_t *body = json_pack("{s:o}", "control", control);
    if (deadline)
        json_object_set_new(body, "deadline", json_string(deadline));
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    escape(c, argv[0], eid, sizeof eid);
    snprintf(path, sizeof path, "/v1/devices/%s/commands", eid);
    if (s == NULL || http(c, "POST", path, s, strlen(s), &r) != 0) {
        free(s);
        return EXIT_UNREACHABLE;
    }
    free(s);
    if (r.status != 202) {
        rc = report_error(&r, NULL, NULL, 0);
        resp_free(&r);
        return rc;
    }
    json_t *cmd = json_loads(r.body, 0, NULL);
    resp_free(&r);
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(cmd, "id")));
    while (wait && !final(cmd)) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        json_decref(cmd);
        snprintf(path, sizeof path, "/v1/commands/%s", id);
        if ((rc = get_json(c, path, &cmd)) != 0)
            return rc;
    }
    if (c->json)
        print_json(cmd);
    else if (wait)
        print_command(cmd);
    else
        printf("%s\n", id);
    rc = wait && strcmp(json_string_value(json_object_get(cmd, "state")), "confirmed") != 0
             ? EXIT_ANSWER
             : 0;
    json_decref(cmd);
    return rc;
}
