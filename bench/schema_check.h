/* A small JSON Schema validator for the subset results/schema.json uses: type (string or list;
 * "integer" accepts integral reals), required, properties, additionalProperties (a schema, or false),
 * items (one schema), enum, const, minimum, maximum, and "$ref": "#/$defs/NAME". Annotation keywords
 * ($schema, $id, $defs, $comment, title, description) are ignored; any other keyword is reported as
 * unsupported, so the schema can never silently claim more than is checked. */
#ifndef MIMO_BENCH_SCHEMA_CHECK_H
#define MIMO_BENCH_SCHEMA_CHECK_H

#include <jansson.h>
#include <stddef.h>
#include "mimo/error.h"

typedef struct {
    int  n_errors;
    char first[1024];   /* the first error, with its JSON pointer */
    char all[8192];     /* up to a few dozen errors, one per line */
} mimo_schema_report;

/* 0 when instance is valid against schema (the root of the schema document); -1 otherwise. */
int mimo_schema_validate(const json_t *schema, const json_t *instance, mimo_schema_report *report);

/* The schema path: $MIMO_SCHEMA, else $MIMO_SOURCE_DIR/results/schema.json (env, then the
 * configure-time source directory). */
void mimo_schema_path(char *buf, size_t n);
json_t *mimo_schema_load(mimo_error *err);

/* Validates a results file. Returns 0 when valid; 3 (MIMO_EXIT_BAD_INPUT) when unreadable,
 * invalid or of another schema_version (err explains); 1 when the schema cannot be loaded. */
int mimo_results_validate_file(const char *path, mimo_schema_report *report, mimo_error *err);
/* The same for an in-memory document. */
int mimo_results_validate_json(const json_t *doc, mimo_schema_report *report, mimo_error *err);

#endif
