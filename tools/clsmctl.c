/*
 * clsmctl.c - the operator CLI: talks to clsmd's REST API with libcurl and
 * prints readable tables (or the raw JSON with --json).
 *
 * Exit status: 0 success, 1 the server answered with an error, 2 bad usage
 * or unreadable input, 3 the server could not be reached.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "ctl.h"
#include "ctl_table.h"
#include "registry/csvimport.h"
#include "registry/registry.h"

#define MAX_RESPONSE   (512u << 20)
#define MAX_INPUT_FILE (256L << 20)

void die_usage(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "clsmctl: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see clsmctl --help)\n");
    exit(EXIT_USAGE);
}

/* --- HTTP ------------------------------------------------------------------ */

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t add = size * n;
    if (r->len + add + 1 > MAX_RESPONSE) {
        r->too_big = 1;
        return 0;
    }
    if (r->len + add + 1 > r->cap) {
        size_t nc = r->cap ? r->cap : 4096;
        while (nc < r->len + add + 1)
            nc *= 2;
        char *b = realloc(r->body, nc);
        if (b == NULL)
            return 0;
        r->body = b;
        r->cap = nc;
    }
    memcpy(r->body + r->len, p, add);
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

void resp_free(struct resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* One request; returns 0 when an answer arrived (of any status). */
int http(struct ctl *c, const char *method, const char *path, const char *body, size_t len,
         struct resp *r)
{
    struct curl_slist *h = NULL;
    char url[2048], auth[400];
    CURLcode rc;

    memset(r, 0, sizeof *r);
    snprintf(url, sizeof url, "%s%s", c->url, path);
    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 300L);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    if (c->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
        h = curl_slist_append(h, auth);
    }
    h = curl_slist_append(h, "Accept: application/json");
    if (body) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
    rc = curl_easy_perform(c->curl);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) {
        fprintf(stderr, "clsmctl: %s %s: %s\n", method, url,
                r->too_big ? "answer too large" : curl_easy_strerror(rc));
        resp_free(r);
        return -1;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status);
    return 0;
}

/* Print an error answer; 'lines' maps import entity indexes to file lines. */
int report_error(const struct resp *r, const char *file, const size_t *lines, size_t nlines)
{
    json_t *p = r->body ? json_loads(r->body, 0, NULL) : NULL;
    const char *detail = json_string_value(json_object_get(p, "detail"));
    const char *title = json_string_value(json_object_get(p, "title"));
    const char *ptr = json_string_value(json_object_get(p, "pointer"));
    const char *field = json_string_value(json_object_get(p, "field"));

    if (file && lines && ptr) {
        char kind[64];
        size_t idx;
        int off = 0;
        if (sscanf(ptr, "/%63[^/]/%zu%n", kind, &idx, &off) == 2 && idx < nlines)
            fprintf(stderr, "%s:%zu: %s\n", file, lines[idx],
                    ptr[off] == '/' ? ptr + off + 1 : "(the whole record)");
    }
    fprintf(stderr, "clsmctl: %ld %s: %s", r->status, title ? title : "error",
            detail ? detail : (r->body ? r->body : ""));
    if (field)
        fprintf(stderr, " (%s)", field);
    fputc('\n', stderr);
    json_decref(p);
    return EXIT_ANSWER;
}

/* GET 'path' and parse the answer; returns 0 or an exit status. */
int get_json(struct ctl *c, const char *path, json_t **out)
{
    struct resp r;
    *out = NULL;
    if (http(c, "GET", path, NULL, 0, &r) != 0)
        return EXIT_UNREACHABLE;
    if (r.status >= 400) {
        int rc = report_error(&r, NULL, NULL, 0);
        resp_free(&r);
        return rc;
    }
    *out = json_loads(r.body ? r.body : "", 0, NULL);
    resp_free(&r);
    if (*out == NULL) {
        fprintf(stderr, "clsmctl: the server answered with invalid JSON\n");
        return EXIT_ANSWER;
    }
    return 0;
}

void escape(struct ctl *c, const char *s, char *out, size_t len)
{
    char *e = curl_easy_escape(c->curl, s, 0);
    snprintf(out, len, "%s", e ? e : "");
    curl_free(e);
}

/* Every item of a list route, following the cursors. */
static int get_all(struct ctl *c, const char *plural, const char *filters, json_t **items)
{
    char path[2048], cursor[512] = "";
    *items = json_array();
    for (;;) {
        json_t *page;
        snprintf(path, sizeof path, "/v1/%s?limit=1000%s%s%s%s", plural, filters[0] ? "&" : "",
                 filters, cursor[0] ? "&cursor=" : "", cursor);
        int rc = get_json(c, path, &page);
        if (rc != 0) {
            json_decref(*items);
            *items = NULL;
            return rc;
        }
        json_array_extend(*items, json_object_get(page, "items"));
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        if (next)
            escape(c, next, cursor, sizeof cursor);
        json_decref(page);
        if (next == NULL)
            return 0;
    }
}

void print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2));
    if (s)
        printf("%s\n", s);
    free(s);
}

const struct reg_kind *kind_arg(const char *s)
{
    for (size_t i = 0; i < REG_NKINDS; i++)
        if (strcmp(reg_kinds[i].plural, s) == 0 || strcmp(reg_kinds[i].name, s) == 0)
            return &reg_kinds[i];
    die_usage("unknown kind \"%s\" (parties, segments, gwas, smgws, devices, installations, "
              "assignments)",
              s);
}

/* --- commands ---------------------------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    char *buf;

    if (f == NULL || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "clsmctl: %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        exit(EXIT_USAGE);
    }
    if (st.st_size > MAX_INPUT_FILE) {
        fclose(f);
        die_usage("%s: larger than %ld MiB", path, MAX_INPUT_FILE >> 20);
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        fclose(f);
        die_usage("%s: cannot read", path);
    }
    fclose(f);
    buf[st.st_size] = '\0';
    *len = (size_t)st.st_size;
    return buf;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* The kind of a CSV file from --kind or its name ("installations.csv"). */
static const struct reg_kind *csv_kind(const char *file, const char *given)
{
    char base[256];
    const char *slash = strrchr(file, '/');
    if (given)
        return kind_arg(given);
    snprintf(base, sizeof base, "%s", slash ? slash + 1 : file);
    base[strlen(base) - 4] = '\0';
    for (size_t i = 0; i < REG_NKINDS; i++)
        if (strcmp(reg_kinds[i].plural, base) == 0)
            return &reg_kinds[i];
    die_usage("%s: name the kind with --kind (the file name is not a kind)", file);
}

static void print_import_summary(struct ctl *c, json_t *res)
{
    json_t *counts = json_object_get(res, "imported"), *v;
    const char *key;
    static const char *const hdr[] = {"kind", "created", "updated", "unchanged"};
    if (c->json) {
        print_json(res);
        return;
    }
    struct table *t = table_new(4, hdr);
    if (t == NULL)
        return;
    for (size_t col = 1; col < 4; col++)
        table_numeric(t, col);
    json_object_foreach(counts, key, v)
    {
        char num[3][32];
        static const char *const what[] = {"created", "updated", "unchanged"};
        for (size_t i = 0; i < 3; i++)
            snprintf(num[i], sizeof num[i], "%" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(v, what[i])));
        const char *row[] = {key, num[0], num[1], num[2]};
        table_add(t, row);
    }
    table_print(t, stdout);
    table_free(t);
}

static int cmd_import(struct ctl *c, int argc, char **argv)
{
    const char *file = NULL, *kind = NULL;
    size_t len, *lines = NULL, nlines = 0;
    char *buf, *body;
    struct resp r;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--kind") == 0 && i + 1 < argc)
            kind = argv[++i];
        else if (file == NULL && argv[i][0] != '-')
            file = argv[i];
        else
            die_usage("import: unexpected argument \"%s\"", argv[i]);
    }
    if (file == NULL)
        die_usage("import needs a FILE.json or FILE.csv");
    buf = read_file(file, &len);
    if (has_suffix(file, ".csv")) {
        char msg[256];
        json_t *doc;
        const struct reg_kind *k = csv_kind(file, kind);
        if (reg_csv_to_import(buf, len, k, &doc, &lines, msg, sizeof msg) != 0) {
            fprintf(stderr, "clsmctl: %s: %s\n", file, msg);
            free(buf);
            return EXIT_USAGE;
        }
        nlines = json_array_size(json_object_get(doc, k->plural));
        body = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        free(buf);
        if (body == NULL)
            return EXIT_USAGE;
        len = strlen(body);
    } else {
        if (kind)
            die_usage("--kind applies to CSV files only");
        body = buf;
    }
    if (http(c, "POST", "/v1/import", body, len, &r) != 0) {
        rc = EXIT_UNREACHABLE;
    } else if (r.status != 200) {
        rc = report_error(&r, file, lines, nlines);
    } else {
        json_t *res = json_loads(r.body, 0, NULL);
        print_import_summary(c, res);
        json_decref(res);
        rc = 0;
    }
    resp_free(&r);
    free(body);
    free(lines);
    return rc;
}

static int show_one(struct ctl *c, const struct reg_kind *k, const char *id)
{
    char path[512], eid[300];
    json_t *obj, *v;
    const char *key;
    static const char *const hdr[] = {"field", "value"};

    escape(c, id, eid, sizeof eid);
    snprintf(path, sizeof path, "/v1/%s/%s", k->plural, eid);
    int rc = get_json(c, path, &obj);
    if (rc != 0)
        return rc;
    if (c->json) {
        print_json(obj);
    } else {
        struct table *t = table_new(2, hdr);
        json_object_foreach(obj, key, v)
        {
            char cell[1024];
            const char *row[] = {key, table_cell(v, cell, sizeof cell)};
            if (t)
                table_add(t, row);
        }
        if (t)
            table_print(t, stdout);
        table_free(t);
    }
    json_decref(obj);
    return 0;
}

static int show_list(struct ctl *c, const struct reg_kind *k, const char *filters)
{
    const char *hdr[32];
    size_t ncols = 0, i;
    json_t *items, *it;

    int rc = get_all(c, k->plural, filters, &items);
    if (rc != 0)
        return rc;
    if (c->json) {
        print_json(items);
        json_decref(items);
        return 0;
    }
    for (size_t f = 0; f < k->nfields && ncols < 32; f++)
        if (!(k->fields[f].flags & RF_SERVER))
            hdr[ncols++] = k->fields[f].name;
    struct table *t = table_new(ncols, hdr);
    json_array_foreach(items, i, it)
    {
        char cells[32][256];
        const char *row[32];
        for (size_t col = 0; col < ncols; col++)
            row[col] = table_cell(json_object_get(it, hdr[col]), cells[col], sizeof cells[col]);
        if (t)
            table_add(t, row);
    }
    if (t)
        table_print(t, stdout);
    table_free(t);
    fprintf(stderr, "%zu %s\n", json_array_size(items),
            json_array_size(items) == 1 ? k->name : k->plural);
    json_decref(items);
    return 0;
}

static int cmd_get(struct ctl *c, int argc, char **argv)
{
    char filters[1024] = "";
    size_t n = 0;
    const char *id = NULL;

    if (argc < 1)
        die_usage("get needs a KIND");
    const struct reg_kind *k = kind_arg(argv[0]);
    for (int i = 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL) {
            if (id)
                die_usage("get: more than one id given");
            id = argv[i];
            continue;
        }
        char name[128], val[512];
        snprintf(name, sizeof name, "%.*s", (int)(eq - argv[i]), argv[i]);
        escape(c, eq + 1, val, sizeof val);
        int w = snprintf(filters + n, sizeof filters - n, "%s%s=%s", n ? "&" : "", name, val);
        if (w < 0 || (size_t)w >= sizeof filters - n)
            die_usage("get: filters too long");
        n += (size_t)w;
    }
    if (id && n)
        die_usage("get: give an id or filters, not both");
    return id ? show_one(c, k, id) : show_list(c, k, filters);
}

static int cmd_set_light(struct ctl *c, int argc, char **argv)
{
    const char *reason = NULL;
    char path[512], eid[300];
    struct resp r;
    int rc;

    if (argc < 2)
        die_usage("set-light needs SEGMENT and green|yellow|red");
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
            reason = argv[++i];
        else
            die_usage("set-light: unexpected argument \"%s\"", argv[i]);
    }
    json_t *body = json_pack("{s:s}", "light", argv[1]);
    if (reason)
        json_object_set_new(body, "reason", json_string(reason));
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    escape(c, argv[0], eid, sizeof eid);
    snprintf(path, sizeof path, "/v1/segments/%s/traffic-light", eid);
    if (s == NULL || http(c, "PUT", path, s, strlen(s), &r) != 0) {
        free(s);
        return EXIT_UNREACHABLE;
    }
    free(s);
    if (r.status != 200) {
        rc = report_error(&r, NULL, NULL, 0);
    } else {
        json_t *seg = json_loads(r.body, 0, NULL);
        if (c->json)
            print_json(seg);
        else
            printf("%s is %s since %s (set by %s)\n", argv[0],
                   json_string_value(json_object_get(seg, "traffic_light")),
                   json_string_value(json_object_get(seg, "light_since")),
                   json_string_value(json_object_get(seg, "light_set_by")));
        json_decref(seg);
        rc = 0;
    }
    resp_free(&r);
    return rc;
}

/* Installations per segment (rows) and kind (columns), with totals. */
static int cmd_summary(struct ctl *c, int argc, char **argv)
{
    json_t *segs, *insts, *it, *counts = json_object();
    const struct reg_field *kf = reg_field(&reg_kinds[REG_INSTALLATION], "kind");
    size_t i, nk = 0;
    int rc;
    (void)argv;

    if (argc > 0)
        die_usage("summary takes no arguments");
    if ((rc = get_all(c, "segments", "", &segs)) != 0 ||
        (rc = get_all(c, "installations", "", &insts)) != 0) {
        json_decref(counts);
        return rc;
    }
    json_array_foreach(insts, i, it)
    {
        const char *seg = json_string_value(json_object_get(it, "segment"));
        const char *kind = json_string_value(json_object_get(it, "kind"));
        if (seg == NULL || kind == NULL)
            continue; /* not an installation as this clsmctl knows them */
        json_t *row = json_object_get(counts, seg);
        if (row == NULL)
            json_object_set_new(counts, seg, row = json_object());
        json_object_set_new(row, kind,
                            json_integer(json_integer_value(json_object_get(row, kind)) + 1));
        if (json_is_true(json_object_get(it, "sec14a")))
            json_object_set_new(row, "§14a",
                                json_integer(json_integer_value(json_object_get(row, "§14a")) + 1));
    }
    if (c->json) {
        print_json(counts);
        goto out;
    }
    const char *hdr[16];
    hdr[nk++] = "segment";
    hdr[nk++] = "level";
    /* Only the kinds that occur, in the registry's order. */
    for (int v = 0; kf->values[v] && nk < 13; v++) {
        const char *key;
        json_t *row;
        json_object_foreach(counts, key, row)
        {
            if (json_object_get(row, kf->values[v])) {
                hdr[nk++] = kf->values[v];
                break;
            }
        }
    }
    hdr[nk++] = "§14a";
    hdr[nk++] = "total";
    struct table *t = table_new(nk, hdr);
    long long totals[16] = {0};
    json_array_foreach(segs, i, it)
    {
        const char *id = json_string_value(json_object_get(it, "id"));
        json_t *row = json_object_get(counts, id);
        if (row == NULL)
            continue;
        char cells[16][64];
        const char *cellp[16] = {id, json_string_value(json_object_get(it, "level"))};
        long long sum = 0;
        for (size_t col = 2; col < nk; col++) {
            long long n = col + 1 == nk ? sum : json_integer_value(json_object_get(row, hdr[col]));
            if (col + 2 < nk)
                sum += n;
            totals[col] += n;
            snprintf(cells[col], sizeof cells[col], "%lld", n);
            cellp[col] = cells[col];
        }
        if (t)
            table_add(t, cellp);
    }
    char tc[16][64];
    const char *trow[16] = {"total", ""};
    for (size_t col = 2; col < nk; col++) {
        snprintf(tc[col], sizeof tc[col], "%lld", totals[col]);
        trow[col] = tc[col];
        if (t)
            table_numeric(t, col);
    }
    if (t) {
        table_add(t, trow);
        table_print(t, stdout);
    }
    table_free(t);
out:
    json_decref(counts);
    json_decref(segs);
    json_decref(insts);
    return 0;
}

static int cmd_token(struct ctl *c, int argc, char **argv)
{
    const char *label = NULL;
    char path[512], eid[300];
    struct resp r;
    int rc;

    if (argc < 2 || strcmp(argv[0], "create") != 0)
        die_usage("usage: token create PARTY [--label TEXT]");
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--label") == 0 && i + 1 < argc)
            label = argv[++i];
        else
            die_usage("token: unexpected argument \"%s\"", argv[i]);
    }
    json_t *body = label ? json_pack("{s:s}", "label", label) : json_object();
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    escape(c, argv[1], eid, sizeof eid);
    snprintf(path, sizeof path, "/v1/parties/%s/tokens", eid);
    if (s == NULL || http(c, "POST", path, s, strlen(s), &r) != 0) {
        free(s);
        return EXIT_UNREACHABLE;
    }
    free(s);
    if (r.status != 201) {
        rc = report_error(&r, NULL, NULL, 0);
    } else {
        json_t *t = json_loads(r.body, 0, NULL);
        if (c->json)
            print_json(t);
        else
            printf("%s\n", json_string_value(json_object_get(t, "token")));
        json_decref(t);
        rc = 0;
    }
    resp_free(&r);
    return rc;
}

/* Change fields of one entity: FIELD=VALUE, typed by the registry (an
 * empty value clears an optional field). */
static int cmd_patch(struct ctl *c, int argc, char **argv)
{
    char path[512], eid[300], msg[160];
    struct resp r;
    int rc;

    if (argc < 3)
        die_usage("patch needs KIND ID FIELD=VALUE...");
    const struct reg_kind *k = kind_arg(argv[0]);
    json_t *body = json_object();
    for (int i = 2; i < argc; i++) {
        char name[128];
        const char *eq = strchr(argv[i], '=');
        if (eq == NULL || (size_t)(eq - argv[i]) >= sizeof name)
            die_usage("patch: expected FIELD=VALUE, got \"%s\"", argv[i]);
        snprintf(name, sizeof name, "%.*s", (int)(eq - argv[i]), argv[i]);
        const struct reg_field *f = reg_field(k, name);
        if (f == NULL)
            die_usage("patch: %s has no field \"%s\"", k->name, name);
        json_t *v = reg_value_from_text(f, eq + 1, msg, sizeof msg);
        if (v == NULL)
            die_usage("patch: %s", msg);
        json_object_set_new(body, name, v);
    }
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    escape(c, argv[1], eid, sizeof eid);
    snprintf(path, sizeof path, "/v1/%s/%s", k->plural, eid);
    if (s == NULL || http(c, "PATCH", path, s, strlen(s), &r) != 0) {
        free(s);
        return EXIT_UNREACHABLE;
    }
    free(s);
    if (r.status != 200) {
        rc = report_error(&r, NULL, NULL, 0);
    } else {
        json_t *o = json_loads(r.body, 0, NULL);
        if (c->json)
            print_json(o);
        else
            printf("%s %s updated\n", k->name, argv[1]);
        json_decref(o);
        rc = 0;
    }
    resp_free(&r);
    return rc;
}

static int cmd_me(struct ctl *c, int argc, char **argv)
{
    json_t *me;
    (void)argv;
    if (argc > 0)
        die_usage("me takes no arguments");
    int rc = get_json(c, "/v1/me", &me);
    if (rc != 0)
        return rc;
    if (c->json)
        print_json(me);
    else
        printf("party %s, role %s\n",
               json_is_string(json_object_get(me, "party"))
                   ? json_string_value(json_object_get(me, "party"))
                   : "(configured admin token)",
               json_string_value(json_object_get(me, "role")));
    json_decref(me);
    return 0;
}

struct command {
    const char *name, *args, *help;
    int (*fn)(struct ctl *c, int argc, char **argv);
};

static const struct command commands[] = {
    {"import", "FILE.json|FILE.csv [--kind KIND]",
     "import registry entities, all or nothing (CSV: one kind per file, header = field names)",
     cmd_import},
    {"get", "KIND [ID | FIELD=VALUE...]", "show one entity, or list them with filters", cmd_get},
    {"set-light", "SEGMENT green|yellow|red [--reason TEXT]", "set a segment's traffic light",
     cmd_set_light},
    {"summary", "", "installations per segment and kind", cmd_summary},
    {"token", "create PARTY [--label TEXT]", "create an API token (the secret is shown once)",
     cmd_token},
    {"me", "", "show whom the token belongs to", cmd_me},
    {"patch", "KIND ID FIELD=VALUE...", "change fields of one entity", cmd_patch},
    {"command", "DEVICE CONTROL_JSON [--deadline RFC3339] [--wait]",
     "send a control to a device (admin); --wait follows it until confirmed or failed",
     cmd_command},
    {"events", "[--after SEQ] [--kind PREFIX,...] [--count N]",
     "follow the live events this token may see (after SEQ: the log from there first)", cmd_events},
    {"audit", "verify [--db FILE] [--anchor SEQ:HASH]",
     "check the hash chain of the event log (admin; --db reads the SQLite file itself); "
     "exit 1 at the first broken link",
     cmd_audit},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: clsmctl [--url URL] [--token TOKEN] [--json] COMMAND [ARGS]\n\n"
                 "  --url URL      clsmd API (default $CLSM_URL or http://127.0.0.1:8080)\n"
                 "  --token TOKEN  bearer token (default $CLSM_TOKEN)\n"
                 "  --json         print JSON instead of tables\n\ncommands:\n");
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        fprintf(out, "  %s %s\n      %s\n", commands[i].name, commands[i].args, commands[i].help);
}

int main(int argc, char **argv)
{
    struct ctl c = {getenv("CLSM_URL"), getenv("CLSM_TOKEN"), 0, NULL};
    int i, rc;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
            c.url = argv[++i];
        else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc)
            c.token = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            c.json = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else
            die_usage("unknown option \"%s\"", argv[i]);
    }
    if (i == argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (c.url == NULL || c.url[0] == '\0')
        c.url = "http://127.0.0.1:8080";
    if (strncmp(c.url, "http://", 7) != 0 && strncmp(c.url, "https://", 8) != 0)
        die_usage("--url must start with http:// or https://");
    for (size_t k = 0; k < ARRAY_LEN(commands); k++) {
        if (strcmp(commands[k].name, argv[i]) != 0)
            continue;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        c.curl = curl_easy_init();
        if (c.curl == NULL)
            return EXIT_USAGE;
        rc = commands[k].fn(&c, argc - i - 1, argv + i + 1);
        curl_easy_cleanup(c.curl);
        curl_global_cleanup();
        return rc;
    }
    die_usage("unknown command \"%s\"", argv[i]);
}
