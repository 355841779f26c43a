/*
 * ctl.h - what the files of clsmctl share: the client context, one HTTP
 * exchange with clsmd, and error reporting. Exit statuses: 0 success,
 * EXIT_ANSWER the server refused, EXIT_USAGE bad usage or input,
 * EXIT_UNREACHABLE the server could not be reached.
 */
#ifndef CLSM_CTL_H
#define CLSM_CTL_H

#include <curl/curl.h>
#include <jansson.h>
#include <stddef.h>

#include "registry/registry.h"

#define EXIT_ANSWER      1
#define EXIT_USAGE       2
#define EXIT_UNREACHABLE 3

struct ctl {
    const char *url;
    const char *token;
    int json;
    CURL *curl;
};

struct resp {
    long status;
    char *body;
    size_t len, cap;
    int too_big;
};

/* Print "clsmctl: ..." and the hint to --help, and exit EXIT_USAGE. */
void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* One request; 'body' (JSON, may be NULL) is sent as is. Returns 0 when an
 * answer of any status arrived (free it with resp_free()), -1 after printing
 * why the server could not be reached. */
int http(struct ctl *c, const char *method, const char *path, const char *body, size_t len,
         struct resp *r);
void resp_free(struct resp *r);

/* Print an error answer (problem document) and return EXIT_ANSWER; 'lines'
 * maps "/<kind>/<n>" pointers of an import to lines of 'file'. */
int report_error(const struct resp *r, const char *file, const size_t *lines, size_t nlines);

/* GET 'path' and parse the JSON answer; 0 or an exit status. */
int get_json(struct ctl *c, const char *path, json_t **out);

/* URL-escape 's' into 'out'. */
void escape(struct ctl *c, const char *s, char *out, size_t len);

void print_json(const json_t *j);

/* The registry kind a name (plural or singular) means; exits on others. */
const struct reg_kind *kind_arg(const char *s);

/* Commands in other files. */
int cmd_command(struct ctl *c, int argc, char **argv);
int cmd_events(struct ctl *c, int argc, char **argv);
int cmd_audit(struct ctl *c, int argc, char **argv);

#endif
