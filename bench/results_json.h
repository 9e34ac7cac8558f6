/* The results file (HARNESS.md "Results file skeleton"): built with jansson, validated against
 * results/schema.json, written atomically. Field names are a contract: add, never rename.
 *
 * Non-finite numbers: a number that is NaN or infinite (a tpot of a one-token request, an acceptance
 * rate without drafts, ...) is written as JSON null and a sibling string "<field>_null_reason" says why.
 * Array elements that are non-finite become null and the array gets a sibling
 * "<array>_null_reason". Nothing is dropped silently. */
#ifndef MIMO_BENCH_RESULTS_JSON_H
#define MIMO_BENCH_RESULTS_JSON_H

#include <jansson.h>
#include "metrics.h"

#define MIMO_RESULTS_SCHEMA_VERSION 1

/* obj[key] = v, or null + obj[key "_null_reason"] = reason (a default reason when NULL). */
void mimo_json_set_number(json_t *obj, const char *key, double v, const char *reason);
/* obj[key] = array of v[0..n-1] with non-finite elements as null (+ key "_null_reason"). */
void mimo_json_set_number_array(json_t *obj, const char *key, const double *v, int n, const char *reason);

/* {n, mean, median, p5, p95, min, max, percentile_method}. */
json_t *mimo_json_stats(const mimo_stats *s, const char *reason_if_empty);

/* The root: schema_version, tool {name, version, git_commit, build_flags}, command (argv joined and
 * shell-quoted), incomplete: false, configs: []. environment and model are the caller's. */
json_t *mimo_results_new(int argc, char **argv);

/* One requests[] entry (with its rounds[]). */
json_t *mimo_results_request(const mimo_request_record *r);
/* One suites{} value. */
json_t *mimo_results_suite(const mimo_suite_metrics *m);

/* Writes root to path: temp file in the same directory, fsync, rename. On any failure nothing is
 * left at path (nor a temp file) and err names the path. */
int mimo_results_write_atomic(const json_t *root, const char *path, mimo_error *err);

#endif
