/*
 * gwa_answer.c - reading a GWA's answers; see gwa_answer.h.
 */
#include "channel/gwa_answer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/jsonx.h"
#include "common/util.h"

static const char *const status_names[] = {"missing", "accepted",  "rejected", "pending",
                                           "woken",   "delivered", "failed",   "unknown"};

const char *gwa_item_status_name(enum gwa_item_status s)
{
    return (size_t)s < ARRAY_LEN(status_names) ? status_names[s] : "?";
}

/* Copy outside text (valid UTF-8, as jsonx guarantees) for logs and
 * reasons: control characters become spaces; a cut never splits a
 * character. */
static void clean_copy(char *out, size_t outlen, const char *in)
{
    size_t n = 0;
    if (outlen == 0)
        return;
    for (; in[n] && n + 1 < outlen; n++)
        out[n] = (unsigned char)in[n] < 0x20 || in[n] == 0x7f ? ' ' : in[n];
    if (((unsigned char)in[n] & 0xc0) == 0x80) { /* cut inside a character */
        while (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0x80)
            n--;
        if (n > 0)
            n--; /* its lead byte */
    }
    out[n] = '\0';
}

static int id_usable(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > GWA_ITEM_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f)
            return 0;
    }
    return 1;
}

static void read_item(const json_t *res, enum gwa_answer_kind kind, struct gwa_item *it)
{
    static const struct {
        const char *name;
        enum gwa_item_status st;
        enum gwa_answer_kind kind;
    } known[] = {
        {"accepted", GWA_ITEM_ACCEPTED, GWA_ANSWER_SUBMIT},
        {"rejected", GWA_ITEM_REJECTED, GWA_ANSWER_SUBMIT},
        {"pending", GWA_ITEM_PENDING, GWA_ANSWER_STATUS},
        {"woken", GWA_ITEM_WOKEN, GWA_ANSWER_STATUS},
        {"delivered", GWA_ITEM_DELIVERED, GWA_ANSWER_STATUS},
        {"failed", GWA_ITEM_FAILED, GWA_ANSWER_STATUS},
        {"unknown", GWA_ITEM_UNKNOWN, GWA_ANSWER_STATUS},
    };
    const char *st = json_string_value(json_object_get(res, "status"));
    const char *id = json_string_value(json_object_get(res, "id"));
    const char *reason = json_string_value(json_object_get(res, "reason"));
    const json_t *code = json_object_get(res, "code");

    if (!json_is_object(res) || st == NULL)
        return;
    for (size_t i = 0; i < ARRAY_LEN(known); i++) {
        if (known[i].kind != kind || strcmp(st, known[i].name) != 0)
            continue;
        if (known[i].st == GWA_ITEM_ACCEPTED && (id == NULL || !id_usable(id)))
            return;
        it->status = known[i].st;
        if (id && id_usable(id))
            str_copy(it->id, sizeof it->id, id);
        if (reason)
            clean_copy(it->reason, sizeof it->reason, reason);
        if (json_is_integer(code) && json_integer_value(code) >= 100 &&
            json_integer_value(code) <= 599)
            it->code = (int)json_integer_value(code);
        return;
    }
}

int gwa_answer_parse(const char *buf, size_t len, enum gwa_answer_kind kind, size_t n,
                     struct gwa_item *items, char *why, size_t whylen)
{
    json_t *answer = NULL;
    char msg[160];
    int rc;

    memset(items, 0, n * sizeof *items);
    if (whylen)
        why[0] = '\0';
    if (len > GWA_ANSWER_MAX) {
        snprintf(why, whylen, "answer of %zu bytes, over %u", len, GWA_ANSWER_MAX);
        return -E2BIG;
    }
    rc = jsonx_parse(buf, len, &jsonx_api_limits, &answer, msg, sizeof msg);
    if (rc != 0) {
        snprintf(why, whylen, "answer is not JSON: %s", msg);
        return rc;
    }
    const json_t *results = json_object_get(answer, "results");
    if (!json_is_array(results)) {
        json_decref(answer);
        snprintf(why, whylen, "answer has no \"results\" array");
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        read_item(json_array_get(results, i), kind, &items[i]);
    json_decref(answer);
    return 0;
}

void gwa_answer_detail(const char *buf, size_t len, char *out, size_t outlen)
{
    json_t *answer = NULL;
    if (outlen)
        out[0] = '\0';
    if (buf == NULL || len > GWA_ANSWER_MAX ||
        jsonx_parse(buf, len, &jsonx_api_limits, &answer, NULL, 0) != 0)
        return;
    const char *d = json_string_value(json_object_get(answer, "detail"));
    if (d)
        clean_copy(out, outlen, d);
    json_decref(answer);
}
