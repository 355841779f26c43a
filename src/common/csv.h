/*
 * csv.h - an RFC 4180 CSV reader with hard limits.
 *
 * Records end with CRLF or LF; fields are separated by one delimiter byte and
 * may be quoted ("" inside quotes is one quote). A leading UTF-8 byte order
 * mark and empty lines are skipped. Anything else that is not well formed is
 * an error with its line number; there is no guessing.
 */
#ifndef CLSM_CSV_H
#define CLSM_CSV_H

#include <stddef.h>

struct csv_limits {
    size_t max_fields;    /* fields per record */
    size_t max_field_len; /* bytes per field */
    size_t max_records;   /* records per document, header included */
};

/* Called once per record with 'n' NUL-terminated fields, valid only during the
 * call. 'line' is the 1-based line where the record starts. A nonzero return
 * stops parsing and becomes csv_parse()'s return value. */
typedef int (*csv_record_fn)(void *arg, size_t line, char **fields, size_t n);

/* Parse 'len' bytes. Returns 0, the callback's nonzero value, -EINVAL for
 * malformed input, -E2BIG when a limit is hit or -ENOMEM; on -EINVAL/-E2BIG
 * 'msg' describes the problem and its line. */
int csv_parse(const char *buf, size_t len, char delim, const struct csv_limits *lim,
              csv_record_fn fn, void *arg, char *msg, size_t msglen);

/* The delimiter of a file from its first line: ';' when it has a ';' and no
 * ',' (as spreadsheets write in many locales), else ','. */
char csv_guess_delimiter(const char *buf, size_t len);

#endif
