/*
 * fuzz_gwa.c - libFuzzer target for a GWA's answers (channel/gwa_answer.h):
 * any bytes as a submit and as a status answer for a few request counts,
 * and as a problem document. Checks what the parser promises: statuses in
 * range, an id on every accepted item, nothing but "missing" after a
 * refusal (which always says why), reasons and ids NUL-terminated without
 * control characters.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channel/gwa_answer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t counts[] = {0, 1, 3, 17};
    struct gwa_item items[17];
    char why[200], detail[GWA_ITEM_REASON_MAX + 1];

    for (int kind = GWA_ANSWER_SUBMIT; kind <= GWA_ANSWER_STATUS; kind++) {
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
            int rc = gwa_answer_parse((const char *)data, size, (enum gwa_answer_kind)kind,
                                      counts[c], items, why, sizeof why);
            if (strnlen(why, sizeof why) == sizeof why || (rc != 0 && why[0] == '\0'))
                abort();
            for (size_t i = 0; i < counts[c]; i++) {
                if (items[i].status > GWA_ITEM_UNKNOWN)
                    abort();
                if (rc != 0 && items[i].status != GWA_ITEM_MISSING)
                    abort();
                if (items[i].status == GWA_ITEM_ACCEPTED && items[i].id[0] == '\0')
                    abort();
                if (kind == GWA_ANSWER_SUBMIT && items[i].status > GWA_ITEM_REJECTED)
                    abort();
                check_text(items[i].reason, sizeof items[i].reason);
                check_text(items[i].id, sizeof items[i].id);
            }
        }
    }
    gwa_answer_detail((const char *)data, size, detail, sizeof detail);
    check_text(detail, sizeof detail);
    return 0;
}
