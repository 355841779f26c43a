/*
 * ctl_events.c - clsmctl's commands on the event log: follow live events
 * (GET /v1/events) and verify the hash chain of the audit log, through the
 * API or straight from the SQLite file (docs/events.md).
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "common/util.h"
#include "ctl.h"

#define AUDIT_PAGE 1000
#define SSE_LINE   (1 << 20) /* longest line of an event stream we accept */

/* --- audit verify ------------------------------------------------------------------- */

struct verify {
    struct audit_chain chain;
    int64_t fault_seq;
    enum audit_fault fault;
    int json;
};

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* 64 hex digits into 32 bytes; -1 for anything else. */
static int unhex32(const char *s, uint8_t out[32])
{
    if (s == NULL || strlen(s) != 64)
        return -1;
    for (size_t i = 0; i < 32; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Check one stored event; 0 to go on, 1 at the first fault. */
static int verify_one(struct verify *v, const struct audit_event *ev, const uint8_t prev[32],
                      const uint8_t hash[32])
{
    enum audit_fault f = audit_chain_next(&v->chain, ev, prev, hash);
    if (f == AUDIT_CHAIN_OK)
        return 0;
    v->fault = f;
    v->fault_seq = ev->seq;
    return 1;
}

static const char *fault_name(enum audit_fault f)
{
    switch (f) {
    case AUDIT_CHAIN_GAP:
        return "gap";
    case AUDIT_CHAIN_LINK:
        return "link";
    case AUDIT_CHAIN_HASH:
        return "hash";
    default:
        return "ok";
    }
}

static void describe(const struct verify *v, char *buf, size_t len)
{
    int64_t want = v->chain.seq + 1, seq = v->fault_seq;
    switch (v->fault) {
    case AUDIT_CHAIN_GAP:
        if (seq > want && seq == want + 1)
            snprintf(buf, len, "event %lld is missing: the log goes from %lld to %lld",
                     (long long)want, (long long)v->chain.seq, (long long)seq);
        else if (seq > want)
            snprintf(buf, len, "events %lld to %lld are missing: the log goes from %lld to %lld",
                     (long long)want, (long long)seq - 1, (long long)v->chain.seq, (long long)seq);
        else
            snprintf(buf, len, "event %lld comes out of order after event %lld", (long long)seq,
                     (long long)v->chain.seq);
        break;
    case AUDIT_CHAIN_LINK:
        snprintf(buf, len,
                 "event %lld does not link to event %lld: its prev_hash is not that event's hash "
                 "(rows inserted, deleted or replaced)",
                 (long long)seq, (long long)v->chain.seq);
        break;
    case AUDIT_CHAIN_HASH:
        snprintf(buf, len, "event %lld does not match its hash: the row was changed",
                 (long long)seq);
        break;
    default:
        buf[0] = '\0';
    }
}

/* Print the outcome; 0 for an intact chain, EXIT_ANSWER otherwise. */
static int report(const struct verify *v, int64_t anchor_seq, int have_anchor, int anchor_found)
{
    char msg[400], head[65] = "";
    int broken = v->fault != AUDIT_CHAIN_OK;
    if (!broken && have_anchor && !anchor_found) {
        snprintf(msg, sizeof msg,
                 "the anchored event %lld is not in the log (it ends at %lld: cut off?)",
                 (long long)anchor_seq, (long long)v->chain.seq);
        broken = 2;
    } else {
        describe(v, msg, sizeof msg);
    }
    if (v->chain.checked)
        hex_encode(v->chain.hash, 32, head);
    if (v->json) {
        json_t *o = json_pack("{s:b, s:I, s:I}", "ok", !broken, "checked",
                              (json_int_t)v->chain.checked, "last_seq", (json_int_t)v->chain.seq);
        json_object_set_new(o, "last_hash", head[0] ? json_string(head) : json_null());
        if (broken) {
            json_object_set_new(o, "fault",
                                json_string(broken == 2 ? "anchor" : fault_name(v->fault)));
            json_object_set_new(o, "seq", json_integer(broken == 2 ? anchor_seq : v->fault_seq));
            json_object_set_new(o, "detail", json_string(msg));
        }
        print_json(o);
        json_decref(o);
    } else if (broken) {
        printf("audit chain BROKEN: %s\n", msg);
        if (v->chain.checked)
            printf("events 1 to %lld are intact; last intact hash %s\n", (long long)v->chain.seq,
                   head);
    } else if (v->chain.checked == 0) {
        printf("the event log is empty\n");
    } else {
        printf("audit chain intact: %lld events, 1 to %lld; last hash %s\n",
               (long long)v->chain.checked, (long long)v->chain.seq, head);
    }
    return broken ? EXIT_ANSWER : 0;
}

struct anchor {
    int set, found;
    int64_t seq;
    uint8_t hash[32];
};

/* An anchor (a hash recorded earlier) must match where the walk passes it. */
static int check_anchor(struct anchor *a, struct verify *v, int64_t seq, const uint8_t hash[32])
{
    if (!a->set || seq != a->seq)
        return 0;
    a->found = 1;
    if (memcmp(hash, a->hash, 32) == 0)
        return 0;
    v->fault = AUDIT_CHAIN_HASH;
    v->fault_seq = seq;
    return 1;
}

static int verify_api(struct ctl *c, struct verify *v, struct anchor *a)
{
    int64_t after = 0;
    for (;;) {
        char path[128];
        json_t *page, *it;
        size_t i;
        snprintf(path, sizeof path, "/v1/audit?after=%lld&limit=%d", (long long)after, AUDIT_PAGE);
        int rc = get_json(c, path, &page);
        if (rc != 0)
            return -rc;
        json_t *items = json_object_get(page, "items");
        json_array_foreach(items, i, it)
        {
            struct audit_event ev = {
                json_integer_value(json_object_get(it, "seq")),
                json_integer_value(json_object_get(it, "time_ms")),
                json_string_value(json_object_get(it, "kind")),
                json_string_value(json_object_get(it, "subject")),
                json_string_value(json_object_get(it, "actor")),
                json_string_value(json_object_get(it, "audience")),
                json_string_value(json_object_get(it, "payload")),
            };
            uint8_t prev[32], hash[32];
            if (!ev.kind || !ev.subject || !ev.actor || !ev.audience || !ev.payload ||
                unhex32(json_string_value(json_object_get(it, "prev_hash")), prev) != 0 ||
                unhex32(json_string_value(json_object_get(it, "hash")), hash) != 0) {
                fprintf(stderr, "clsmctl: the server sent an event without its fields\n");
                json_decref(page);
                return -EXIT_ANSWER;
            }
            if (verify_one(v, &ev, prev, hash) || check_anchor(a, v, ev.seq, hash)) {
                json_decref(page);
                return 0;
            }
            after = ev.seq;
        }
        int more = json_is_integer(json_object_get(page, "next_after"));
        json_decref(page);
        if (!more)
            return 0;
    }
}

static const char *col_text(sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    return s ? s : "";
}

/* Read the SQLite file itself, read-only, without clsmd's code paths. */
static int verify_db(const char *file, struct verify *v, struct anchor *a)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db,
                                "SELECT seq, time, kind, subject, actor, audience, payload,"
                                " prev_hash, hash FROM events ORDER BY seq",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "clsmctl: %s: %s\n", file, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return -EXIT_USAGE;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct audit_event ev = {
            sqlite3_column_int64(st, 0),
            sqlite3_column_int64(st, 1),
            col_text(st, 2),
            col_text(st, 3),
            col_text(st, 4),
            col_text(st, 5),
            col_text(st, 6),
        };
        uint8_t prev[32] = {0}, hash[32] = {0};
        if (sqlite3_column_bytes(st, 7) == 32)
            memcpy(prev, sqlite3_column_blob(st, 7), 32);
        if (sqlite3_column_bytes(st, 8) == 32)
            memcpy(hash, sqlite3_column_blob(st, 8), 32);
        if (verify_one(v, &ev, prev, hash) || check_anchor(a, v, ev.seq, hash)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "clsmctl: %s: %s\n", file, sqlite3_errmsg(db));
        rc = -EXIT_USAGE;
    } else {
        rc = 0;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

static int cmd_audit_verify(struct ctl *c, int argc, char **argv)
{
    const char *db = NULL;
    struct verify v;
    struct anchor a;

    memset(&v, 0, sizeof v);
    memset(&a, 0, sizeof a);
    v.json = c->json;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            db = argv[++i];
        } else if (strcmp(argv[i], "--anchor") == 0 && i + 1 < argc) {
            const char *arg = argv[++i], *colon = strchr(arg, ':');
            char num[24];
            if (colon == NULL || (size_t)(colon - arg) >= sizeof num)
                die_usage("--anchor takes SEQ:HASH (64 hex digits)");
            snprintf(num, sizeof num, "%.*s", (int)(colon - arg), arg);
            long long seq;
            if (parse_ll(num, 1, INT64_MAX, &seq) != 0 || unhex32(colon + 1, a.hash) != 0)
                die_usage("--anchor takes SEQ:HASH (64 hex digits)");
            a.seq = seq;
            a.set = 1;
        } else {
            die_usage("audit verify: unexpected argument \"%s\"", argv[i]);
        }
    }
    int rc = db ? verify_db(db, &v, &a) : verify_api(c, &v, &a);
    if (rc != 0)
        return -rc;
    return report(&v, a.seq, a.set, a.found);
}

int cmd_audit(struct ctl *c, int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "verify") != 0)
        die_usage("usage: audit verify [--db FILE] [--anchor SEQ:HASH]");
    return cmd_audit_verify(c, argc - 1, argv + 1);
}

/* --- events -------------------------------------------------------------------------- */

struct watch {
    int json;
    long long count, seen;
    char *line;
    size_t len;
    char data[SSE_LINE];
    size_t dlen;
};

static void print_event(struct watch *w)
{
    json_t *ev = json_loadb(w->data, w->dlen, 0, NULL);
    if (ev == NULL)
        return;
    if (w->json) {
        printf("%.*s\n", (int)w->dlen, w->data);
    } else {
        char *payload = json_dumps(json_object_get(ev, "payload"), JSON_COMPACT | JSON_ENCODE_ANY);
        printf("%6lld  %s  %-22s %-28s %-14s %s\n",
               (long long)json_integer_value(json_object_get(ev, "seq")),
               json_string_value(json_object_get(ev, "time")),
               json_string_value(json_object_get(ev, "kind")),
               json_string_value(json_object_get(ev, "subject")),
               json_string_value(json_object_get(ev, "actor")), payload ? payload : "");
        free(payload);
    }
    fflush(stdout);
    json_decref(ev);
    w->seen++;
}

/* One line of the stream (without its line end). */
static void sse_line(struct watch *w, const char *p, size_t n)
{
    if (n == 0) {
        if (w->dlen)
            print_event(w);
        w->dlen = 0;
        return;
    }
    if (n >= 5 && memcmp(p, "data:", 5) == 0) {
        p += 5;
        n -= 5;
        if (n && *p == ' ') {
            p++;
            n--;
        }
        if (w->dlen + n < sizeof w->data) {
            memcpy(w->data + w->dlen, p, n);
            w->dlen += n;
        }
    }
}

static size_t on_stream(char *p, size_t size, size_t n, void *arg)
{
    struct watch *w = arg;
    size_t total = size * n;
    for (size_t i = 0; i < total; i++) {
        if (p[i] == '\r')
            continue;
        if (p[i] == '\n') {
            sse_line(w, w->line, w->len);
            w->len = 0;
            if (w->count && w->seen >= w->count)
                return 0; /* enough: stop reading */
            continue;
        }
        if (w->len + 1 < SSE_LINE)
            w->line[w->len++] = p[i];
    }
    return total;
}

int cmd_events(struct ctl *c, int argc, char **argv)
{
    const char *after = NULL, *kind = NULL;
    long long count = 0;
    char url[2048], auth[400], ekind[600] = "";
    struct curl_slist *h = NULL;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--after") == 0 && i + 1 < argc)
            after = argv[++i];
        else if (strcmp(argv[i], "--kind") == 0 && i + 1 < argc)
            kind = argv[++i];
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc &&
                 parse_ll(argv[i + 1], 1, 1000000000, &count) == 0)
            i++;
        else
            die_usage("events: unexpected argument \"%s\"", argv[i]);
    }
    long long a;
    if (after && parse_ll(after, 0, INT64_MAX, &a) != 0)
        die_usage("events: --after takes an event sequence number");
    if (kind)
        escape(c, kind, ekind, sizeof ekind);
    snprintf(url, sizeof url, "%s/v1/events%s%s%s%s%s", c->url, after || kind ? "?" : "",
             after ? "after=" : "", after ? after : "", after && kind ? "&" : "",
             kind ? "kind=" : "");
    if (kind)
        snprintf(url + strlen(url), sizeof url - strlen(url), "%s", ekind);
    struct watch *w = calloc(1, sizeof *w);
    if (w == NULL || (w->line = malloc(SSE_LINE)) == NULL) {
        free(w);
        return EXIT_USAGE;
    }
    w->json = c->json;
    w->count = count;
    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_stream);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_FAILONERROR, 0L);
    if (c->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
        h = curl_slist_append(h, auth);
    }
    h = curl_slist_append(h, "Accept: text/event-stream");
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
    CURLcode rc = curl_easy_perform(c->curl);
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    int ret = 0;
    if (status >= 400) {
        struct resp r = {status, w->line, w->len, 0, 0};
        w->line[w->len < SSE_LINE ? w->len : SSE_LINE - 1] = '\0';
        ret = report_error(&r, NULL, NULL, 0);
    } else if (rc != CURLE_OK && !(count && w->seen >= count)) {
        fprintf(stderr, "clsmctl: GET %s: %s\n", url, curl_easy_strerror(rc));
        ret = EXIT_UNREACHABLE;
    }
    free(w->line);
    free(w);
    return ret;
}
