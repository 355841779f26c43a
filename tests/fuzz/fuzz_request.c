/*
 * fuzz_request.c - libFuzzer target for request bodies (request/request.h):
 * any bytes through jsonx_parse() with the API limits, then request_parse()
 * at a fixed 'now'.
 *
 * Invariants checked, aborting on a breach:
 * - request_parse() returns 0 or -EINVAL; a refusal carries a non-empty
 *   reason and a pointer ("" or starting with '/'), both NUL-terminated
 *   printable ASCII inside their buffers;
 * - an accepted spec links act.intervals to its own array;
 * - restore mode takes every body the normal mode takes, with the same
 *   canonical form;
 * - the canonical form survives text (dump, jsonx_parse) and parses again
 *   in restore mode into a spec with the same canonical form.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonx.h"
#include "request/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW INT64_C(1795888800000) /* 2026-11-28T18:00:00Z; the seeds are written for it */

#define CHECK(cond)  \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

static bool printable_in(const char *s, size_t cap, bool nonempty)
{
    const char *end = memchr(s, '\0', cap);
    if (end == NULL || (nonempty && end == s))
        return false;
    for (; s < end; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

static void check_result(int rc, const struct req_spec *s, const struct req_error *err)
{
    CHECK(rc == 0 || rc == -EINVAL);
    if (rc == 0) {
        CHECK(s->act.nintervals <= REQ_MAX_INTERVALS);
        CHECK(s->act.nintervals > 0 ? s->act.intervals == s->intervals : s->act.intervals == NULL);
        return;
    }
    CHECK(printable_in(err->text, sizeof err->text, true));
    CHECK(printable_in(err->pointer, sizeof err->pointer, false));
    CHECK(err->pointer[0] == '\0' || err->pointer[0] == '/');
}

/* The canonical form 'c' as text, read back the way a stored request is. */
static json_t *through_text(const json_t *c)
{
    json_t *back = NULL;
    char *text = json_dumps(c, JSON_COMPACT);
    CHECK(text != NULL);
    CHECK(jsonx_parse(text, strlen(text), &jsonx_api_limits, &back, NULL, 0) == 0);
    CHECK(json_equal(c, back));
    free(text);
    return back;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Each spec is several kilobytes: keep them off the stack. */
    static struct req_spec first, again, restored;
    struct req_error err;
    json_t *body = NULL;

    if (jsonx_parse((const char *)data, size, &jsonx_api_limits, &body, NULL, 0) != 0)
        return 0;
    memset(&err, 0x5a, sizeof err);
    int rc = request_parse(body, NOW, false, &first, &err);
    check_result(rc, &first, &err);
    if (rc != 0) {
        /* Restore mode may take it (a window that is over) or not; either
         * way the answer keeps the same promises. */
        memset(&err, 0x5a, sizeof err);
        check_result(request_parse(body, NOW, true, &restored, &err), &restored, &err);
        json_decref(body);
        return 0;
    }

    json_t *c1 = request_spec_json(&first);
    CHECK(c1 != NULL);

    rc = request_parse(body, NOW, true, &restored, &err);
    check_result(rc, &restored, &err);
    CHECK(rc == 0);
    json_t *cr = request_spec_json(&restored);
    CHECK(cr != NULL && json_equal(c1, cr));

    json_t *stored = through_text(c1);
    rc = request_parse(stored, NOW, true, &again, &err);
    check_result(rc, &again, &err);
    CHECK(rc == 0);
    json_t *c2 = request_spec_json(&again);
    CHECK(c2 != NULL && json_equal(c1, c2));

    json_decref(c2);
    json_decref(stored);
    json_decref(cr);
    json_decref(c1);
    json_decref(body);
    return 0;
}
