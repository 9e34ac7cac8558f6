/* `compare`: several results files side by side, per suite and configuration, with the CI gate.
 * The comparison is built once as a JSON object (written as compare.json) and rendered from it as
 * the terminal table and compare.md. */
#ifndef MIMO_BENCH_COMPARE_H
#define MIMO_BENCH_COMPARE_H

#include "mimo/error.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>

/* Builds the comparison of n >= 1 loaded results files (roots[i] read from paths[i]; the first is the
 * baseline). fail_if_slower_pct: NAN for no gate; otherwise rows whose decode_tps median in a later
 * file is slower than the baseline's by more than that many percent are listed under "regressions".
 * Returns a new reference: {"schema_version","kind","baseline","fail_if_slower_pct","files":[...],
 * "rows":[{"key","label","suite","forced_profile","cells":[...]}], "unmatched":[...], "regressions":[...]}. */
json_t *mimo_compare_build(const char *const *paths, json_t *const *roots, int n, double fail_if_slower_pct);

/* " — acceptance: forced (profile P), not measured" for each forced profile among the rows ("" if none);
 * titles of tables showing tau end with it. malloc'd. */
char *mimo_compare_forced_suffix(const json_t *cmp);

/* Number of regressions recorded in a comparison. */
size_t mimo_compare_n_regressions(const json_t *cmp);

/* Renderings. */
void mimo_compare_print_terminal(const json_t *cmp, FILE *f);
void mimo_compare_print_markdown(const json_t *cmp, FILE *f);

/* The label every tau-bearing title carries for a forced-acceptance configuration:
 * "acceptance: forced (profile P), not measured". */
void mimo_forced_label(const char *profile, char *buf, size_t size);

#endif
