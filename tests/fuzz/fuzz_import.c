/*
 * fuzz_import.c - libFuzzer target for the import body: bytes go through
 * the API's bounded JSON parser and the atomic import into an in-memory
 * store, then are rolled back by dropping the store.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/jsonx.h"
#include "common/log.h"
#include "registry/import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct store_options opts = {0, 0};
    struct store *s = NULL;
    struct reg_error err;
    json_t *doc = NULL, *summary = NULL;
    char msg[256];

    log_init(LOG_ERROR, 2);
    if (jsonx_parse((const char *)data, size, &jsonx_api_limits, &doc, msg, sizeof msg) != 0)
        return 0;
    if (store_open(":memory:", &opts, &s, msg, sizeof msg) != 0)
        abort();
    if (reg_import(s, doc, &summary, &err) == 0) {
        if (summary == NULL)
            abort();
    } else if (summary != NULL || err.detail[0] == '\0') {
        abort(); /* every failure must explain itself */
    }
    json_decref(summary);
    json_decref(doc);
    store_close(s);
    return 0;
}
