/*
 * csvimport.h - turning a CSV file of one registry kind into an import
 * document (import.h), as clsmctl does before sending it.
 *
 * The first record is the header: each column names a writable field of the
 * kind. Every further record becomes one entity; an empty cell leaves the
 * field out (so its default applies). Values are converted by field type
 * (reg_value_from_text). Pure; thread-safe.
 */
#ifndef CLSM_CSVIMPORT_H
#define CLSM_CSVIMPORT_H

#include <jansson.h>
#include <stddef.h>

#include "registry/registry.h"

/* Limits for CSV files: 64 columns, 4 KiB cells, 1,000,000 records. */
#define CSV_IMPORT_MAX_RECORDS 1000000

/*
 * Convert 'len' bytes of CSV (',' or ';' delimited, see csv.h) into
 * '*doc' = {"<plural>": [ ... ]} (new reference). '*lines' (malloc'd, caller
 * frees) receives for each entity the line it started on, so that errors the
 * server reports as "/<plural>/<n>/..." can be shown as "line L". Returns 0,
 * -EINVAL/-E2BIG with 'msg' naming the line and column, or -ENOMEM.
 */
int reg_csv_to_import(const char *buf, size_t len, const struct reg_kind *k, json_t **doc,
                      size_t **lines, char *msg, size_t msglen);

#endif
