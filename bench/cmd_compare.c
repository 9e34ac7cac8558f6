/* mimo-bench compare A.json B.json [...] [--fail-if-slower PCT] [--out DIR]
 * Side-by-side table per suite and configuration; the first file is the baseline. With
 * --fail-if-slower it is the CI gate: exit 5 when a matched decode_tps median regressed past PCT. */
#include "cli.h"
#include "compare.h"
#include "report_io.h"
#include "results_read.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const compare_usage =
    "mimo-bench compare A.json B.json [...] [--fail-if-slower PCT] [--out DIR]\n"
    "  Puts results files side by side per suite and configuration (matched on backend, fp4, dflash,\n"
    "  exec, block, acceptance): decode_tps median/mean/ratio_of_sums, tau mean, ttft median, speedup\n"
    "  vs the first file. --fail-if-slower PCT exits 5 when any matched decode_tps median in a later\n"
    "  file is more than PCT percent below the first file's. --out DIR also writes compare.md and\n"
    "  compare.json there. Exit 3 names a file that is malformed or of another schema_version.";

static int write_outputs(const json_t *cmp, const char *dir, mimo_error *err)
{
    if (mimo_report_mkdirs(dir, err) != 0)
        return -1;
    char path[4200];
    mimo_report_buffer md;
    mimo_report_buffer_open(&md);
    mimo_compare_print_markdown(cmp, md.f);
    snprintf(path, sizeof path, "%s/compare.md", dir);
    if (mimo_report_buffer_commit(&md, path, err) != 0)
        return -1;
    mimo_report_buffer js;
    mimo_report_buffer_open(&js);
    json_dumpf(cmp, js.f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', js.f);
    snprintf(path, sizeof path, "%s/compare.json", dir);
    return mimo_report_buffer_commit(&js, path, err);
}

int mimo_cmd_compare(int argc, char **argv)
{
    const char **paths = mimo_xcalloc((size_t)argc, sizeof *paths);
    int n = 0;
    double fail_pct = NAN;
    const char *out_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s\n", compare_usage);
            free(paths);
            return MIMO_EXIT_OK;
        } else if (!strcmp(argv[i], "--fail-if-slower")) {
            if (i + 1 >= argc || !mimo_parse_double(argv[i + 1], 0, 100, &fail_pct)) {
                free(paths);
                return mimo_usage_error("compare", compare_usage, "--fail-if-slower needs a percentage 0..100");
            }
            i++;
        } else if (!strcmp(argv[i], "--out")) {
            if (i + 1 >= argc || !*argv[i + 1]) {
                free(paths);
                return mimo_usage_error("compare", compare_usage, "--out needs a directory");
            }
            out_dir = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            free(paths);
            return mimo_usage_error("compare", compare_usage, "unknown option '%s'", argv[i]);
        } else {
            paths[n++] = argv[i];
        }
    }
    if (n < 2) {
        free(paths);
        return mimo_usage_error("compare", compare_usage, "needs at least two results files (got %d)", n);
    }

    json_t **roots = mimo_xcalloc((size_t)n, sizeof *roots);
    int rc = MIMO_EXIT_OK;
    mimo_error err;
    mimo_error_clear(&err);
    for (int i = 0; i < n && rc == MIMO_EXIT_OK; i++) {
        if (mimo_rfile_load(paths[i], &roots[i], &err) != 0) {
            fprintf(stderr, "mimo-bench compare: %s\n", err.msg);
            rc = MIMO_EXIT_BAD_INPUT;
        }
    }
    if (rc == MIMO_EXIT_OK) {
        json_t *cmp = mimo_compare_build(paths, roots, n, fail_pct);
        mimo_compare_print_terminal(cmp, stdout);
        fflush(stdout);
        if (out_dir && write_outputs(cmp, out_dir, &err) != 0) {
            fprintf(stderr, "mimo-bench compare: %s\n", err.msg);
            rc = MIMO_EXIT_FAILURE;
        }
        if (rc == MIMO_EXIT_OK && !isnan(fail_pct) && mimo_compare_n_regressions(cmp) > 0) {
            fprintf(stderr, "mimo-bench compare: %zu regression(s) past --fail-if-slower %g\n",
                    mimo_compare_n_regressions(cmp), fail_pct);
            rc = MIMO_EXIT_REGRESSION;
        }
        json_decref(cmp);
    }
    for (int i = 0; i < n; i++)
        json_decref(roots[i]);
    free(roots);
    free(paths);
    return rc;
}
