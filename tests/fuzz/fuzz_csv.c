/*
 * fuzz_csv.c - libFuzzer target for CSV files as clsmctl imports them. The
 * first byte picks the kind of entity; the rest is the file.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "registry/csvimport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = NULL;
    size_t *lines = NULL;
    char msg[256];

    if (size < 1)
        return 0;
    const struct reg_kind *k = &reg_kinds[data[0] % REG_NKINDS];
    int rc = reg_csv_to_import((const char *)data + 1, size - 1, k, &doc, &lines, msg, sizeof msg);
    if (rc == 0) {
        json_t *items = json_object_get(doc, k->plural);
        if (!json_is_array(items))
            abort();
        /* Each entity remembers a line within the file. */
        for (size_t i = 0; i < json_array_size(items); i++)
            if (lines[i] == 0 || (i > 0 && lines[i] <= lines[i - 1]))
                abort();
    } else if (doc != NULL || lines != NULL) {
        abort();
    }
    json_decref(doc);
    free(lines);
    return 0;
}
