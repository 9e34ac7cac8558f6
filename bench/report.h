/* `report`: plots (gnuplot at run time, PNG + SVG) and tables for results files, tied together by a
 * self-contained index.html and an index.md. The document is built as a list of sections (title,
 * text, tables, an optional plot or the reason it was skipped) and rendered twice (Markdown, HTML). */
#ifndef MIMO_BENCH_REPORT_H
#define MIMO_BENCH_REPORT_H

#include "mimo/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* ---- the document ---- */
typedef struct {
    char  *caption;
    int    n_cols;
    char **header;
    char **cells;            /* n_rows * n_cols, row-major */
    int    n_rows, cap_rows;
} mimo_report_table;

typedef struct {
    int    level;            /* 2 = per file, 3 = a section inside it */
    char  *title;
    char  *text;             /* may be NULL */
    char  *plot;             /* base name of NAME.png / NAME.svg in the output directory, or NULL */
    char  *plot_skipped;     /* why there is no plot (NULL when nothing was to be plotted) */
    mimo_report_table **tables;   /* pointers: stable while more are added */
    int    n_tables;
} mimo_report_section;

typedef struct {
    char  *out_dir;
    bool   gnuplot;          /* plots are drawn */
    char  *gnuplot_note;     /* why not, when !gnuplot */
    mimo_report_section **sections;
    int    n_sections, cap_sections;
    int    n_plots, n_plots_skipped;
} mimo_report_doc;

/* printf into a new malloc'd string. */
char *mimo_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

mimo_report_section *mimo_report_add_section(mimo_report_doc *d, int level, const char *title);
void mimo_report_section_text(mimo_report_section *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A table with n_cols headers (const char *). */
mimo_report_table *mimo_report_add_table(mimo_report_section *s, const char *caption, int n_cols, ...);
/* Appends a row of n_cols cells; each cell printf-formatted from the varargs as strings. */
void mimo_report_table_row(mimo_report_table *t, ...);
void mimo_report_doc_free(mimo_report_doc *d);

/* index.md / index.html into the document's out_dir (atomically). */
int mimo_report_write_markdown(const mimo_report_doc *d, const char *const *inputs, int n, mimo_error *err);
int mimo_report_write_html(const mimo_report_doc *d, const char *const *inputs, int n, mimo_error *err);

/* ---- plots ---- */
/* true when gnuplot can be run (on PATH and MIMO_NO_GNUPLOT is not 1); else why. */
bool mimo_gnuplot_available(char *why, size_t size);
/* Writes DIR/NAME.gp and DIR/NAME.dat and runs gnuplot on the script, which draws NAME.png (pngcairo)
 * and NAME.svg. body: the plot commands after the terminal set-up, reading 'NAME.dat' (use the
 * placeholder @DAT@, replaced by the data file's name); gnuplot runs with DIR as its directory. */
int mimo_gnuplot_render(const char *dir, const char *name, const char *title, const char *body, const char *data,
                        int width, int height, mimo_error *err);
/* A string as a gnuplot single-quoted literal (quotes doubled). malloc'd. */
char *mimo_gnuplot_quote(const char *s);

/* ---- the published figures (DFLASH.md) ---- */
/* Mean tau the MiMo seed reports for suite at block 8 (coding 6.30, math 5.56, agent 4.29), NAN otherwise. */
double mimo_published_tau(const char *suite);
#define MIMO_PUBLISHED_BLOCK 8
/* Constant per-position acceptance alpha with 1 + sum_{i=1}^{B-1} alpha^i = mean_tau. */
double mimo_alpha_for_mean(double mean_tau, int block);
/* Truncated-geometric P(tau = t), t = 1..block, into p[t-1]. */
void mimo_truncated_geometric(double alpha, int block, double *p);

/* ---- the sections for one results file ---- */
/* Appends the sections of file `index` (1-based in titles; prefix for plot file names). */
void mimo_report_add_file(mimo_report_doc *d, const char *path, const json_t *root, int index, int n_files);
/* Appends a side-by-side section for several files (n >= 2). */
void mimo_report_add_comparison(mimo_report_doc *d, const char *const *paths, json_t *const *roots, int n);

#endif
