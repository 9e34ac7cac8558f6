/* mimo-bench report FILE.json [...] --out DIR
 * Plots (gnuplot at run time, PNG + SVG) and tables for results files, tied together by a
 * self-contained DIR/index.html and DIR/index.md. Without gnuplot: tables only, and it says so. */
#include "cli.h"
#include "report.h"
#include "report_io.h"
#include "results_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const report_usage =
    "mimo-bench report FILE.json [...] --out DIR\n"
    "  Writes DIR/index.html (self-contained) and DIR/index.md with tables and, when gnuplot is on PATH,\n"
    "  plots as DIR/*.png and DIR/*.svg (each with its .gp script and .dat data): tau histograms per suite\n"
    "  beside the published figures, tau by suite vs the seed's table, decode TPS per configuration,\n"
    "  step time by kernel category, one round's kernel timeline, efficiency vs roofline, projected node\n"
    "  TPS for --shard runs. MIMO_NO_GNUPLOT=1 forces tables only.";

int mimo_cmd_report(int argc, char **argv)
{
    const char **paths = mimo_xcalloc((size_t)argc, sizeof *paths);
    int n = 0;
    const char *out_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s\n", report_usage);
            free(paths);
            return MIMO_EXIT_OK;
        } else if (!strcmp(argv[i], "--out")) {
            if (i + 1 >= argc || !*argv[i + 1]) {
                free(paths);
                return mimo_usage_error("report", report_usage, "--out needs a directory");
            }
            out_dir = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            free(paths);
            return mimo_usage_error("report", report_usage, "unknown option '%s'", argv[i]);
        } else {
            paths[n++] = argv[i];
        }
    }
    if (n == 0 || !out_dir) {
        free(paths);
        return mimo_usage_error("report", report_usage, n == 0 ? "needs at least one results file" : "needs --out DIR");
    }

    json_t **roots = mimo_xcalloc((size_t)n, sizeof *roots);
    mimo_error err;
    mimo_error_clear(&err);
    int rc = MIMO_EXIT_OK;
    for (int i = 0; i < n && rc == MIMO_EXIT_OK; i++) {
        if (mimo_rfile_load(paths[i], &roots[i], &err) != 0) {
            fprintf(stderr, "mimo-bench report: %s\n", err.msg);
            rc = MIMO_EXIT_BAD_INPUT;
        }
    }
    if (rc == MIMO_EXIT_OK && mimo_report_mkdirs(out_dir, &err) != 0) {
        fprintf(stderr, "mimo-bench report: %s\n", err.msg);
        rc = MIMO_EXIT_FAILURE;
    }
    if (rc == MIMO_EXIT_OK) {
        mimo_report_doc doc;
        memset(&doc, 0, sizeof doc);
        doc.out_dir = mimo_xstrdup(out_dir);
        char why[256];
        doc.gnuplot = mimo_gnuplot_available(why, sizeof why);
        if (!doc.gnuplot) {
            doc.gnuplot_note = mimo_xstrdup(why);
            fprintf(stderr, "mimo-bench report: plots skipped: %s; writing tables only\n", why);
        }
        for (int i = 0; i < n; i++)
            mimo_report_add_file(&doc, paths[i], roots[i], i + 1, n);
        if (n > 1)
            mimo_report_add_comparison(&doc, paths, roots, n);
        if (mimo_report_write_markdown(&doc, paths, n, &err) != 0 ||
            mimo_report_write_html(&doc, paths, n, &err) != 0) {
            fprintf(stderr, "mimo-bench report: %s\n", err.msg);
            rc = MIMO_EXIT_FAILURE;
        } else {
            printf("report: %s/index.html and %s/index.md (%d plots drawn, %d skipped)\n", out_dir, out_dir,
                   doc.n_plots, doc.n_plots_skipped);
        }
        mimo_report_doc_free(&doc);
    }
    for (int i = 0; i < n; i++)
        json_decref(roots[i]);
    free(roots);
    free(paths);
    return rc;
}
