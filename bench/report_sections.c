/* The report's sections for one results file: tables always, plots when gnuplot is there and the data
 * is present (otherwise one line saying why). Every title or caption that shows tau carries
 * "acceptance: forced (profile P), not measured" for forced-acceptance configurations. */
#include "compare.h"
#include "report.h"
#include "report_io.h"
#include "results_read.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TAU 64

/* Rotating buffers so that several formatted numbers can sit in one table row. */
static const char *fnum(double v, const char *fmt)
{
    static char bufs[32][48];
    static int next;
    char *b = bufs[next++ % 32];
    if (isfinite(v))
        snprintf(b, sizeof bufs[0], fmt, v);
    else
        snprintf(b, sizeof bufs[0], "-");
    return b;
}

/* A number for a gnuplot data file: NaN marks a missing value (gnuplot skips it). */
static void dat_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, " %.6g", v);
    else
        fprintf(f, " NaN");
}

/* Data-file string column: double-quoted, no quotes inside. */
static void dat_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++)
        fputc(*s == '"' ? '\'' : *s, f);
    fputc('"', f);
}

/* Short configuration label for plot axes: the fields that vary in an ablation. */
static char *short_label(const json_t *entry)
{
    const json_t *c = json_object_get(entry, "config");
    char fp4[32], dflash[32], exec[64], block[32];
    mimo_rfile_field_text(json_object_get(c, "fp4"), fp4, sizeof fp4);
    mimo_rfile_field_text(json_object_get(c, "dflash"), dflash, sizeof dflash);
    mimo_rfile_field_text(json_object_get(c, "exec"), exec, sizeof exec);
    mimo_rfile_field_text(json_object_get(c, "block"), block, sizeof block);
    const char *profile;
    bool forced = mimo_rfile_is_forced(entry, &profile);
    if (mimo_rfile_dflash(entry))
        return mimo_strf("fp4 %s, dflash B%s, %s%s", fp4, block, exec, forced ? " (forced acc.)" : "");
    return mimo_strf("fp4 %s, AR, %s", fp4, exec);
}

/* Full label plus the forced-acceptance statement when it applies. */
static char *tau_label(const json_t *entry)
{
    char *label = mimo_rfile_config_label(entry);
    const char *profile;
    if (!mimo_rfile_is_forced(entry, &profile))
        return label;
    char forced[300];
    mimo_forced_label(profile, forced, sizeof forced);
    char *out = mimo_strf("%s [%s]", label, forced);
    free(label);
    return out;
}

/* " — acceptance: forced (profile P), not measured" for each distinct forced profile among the entries
 * selected by use[] (NULL: all); "" when none. malloc'd. */
static char *forced_suffix(const json_t *configs, const bool *use)
{
    char *out = mimo_xstrdup("");
    size_t i;
    json_t *entry;
    json_array_foreach(configs, i, entry) {
        const char *profile;
        if ((use && !use[i]) || !mimo_rfile_is_forced(entry, &profile))
            continue;
        char label[300];
        mimo_forced_label(profile, label, sizeof label);
        if (strstr(out, label))
            continue;
        char *joined = mimo_strf("%s — %s", out, label);
        free(out);
        out = joined;
    }
    return out;
}

static bool usable(const json_t *entry)
{
    return mimo_rfile_available(entry, NULL);
}

/* Suite names across the configurations, in first-seen order. */
static int collect_suites(const json_t *configs, const char **names, int max)
{
    int n = 0;
    size_t i;
    json_t *entry;
    json_array_foreach(configs, i, entry) {
        const char *suite;
        json_t *stats;
        json_object_foreach(json_object_get(entry, "suites"), suite, stats) {
            bool seen = false;
            for (int k = 0; k < n; k++)
                seen |= !strcmp(names[k], suite);
            if (!seen && n < max)
                names[n++] = suite;
        }
    }
    return n;
}

/* Draws a plot into the section, or records why not. */
static void plot_or_skip(mimo_report_doc *d, mimo_report_section *s, const char *name, const char *title,
                         const char *body, const char *data, int width, int height)
{
    if (!d->gnuplot) {
        s->plot_skipped = mimo_strf("%s", d->gnuplot_note ? d->gnuplot_note : "gnuplot unavailable");
        d->n_plots_skipped++;
        return;
    }
    mimo_error err;
    mimo_error_clear(&err);
    if (mimo_gnuplot_render(d->out_dir, name, title, body, data, width, height, &err) != 0) {
        s->plot_skipped = mimo_strf("%s", err.msg);
        fprintf(stderr, "mimo-bench report: plot skipped: %s\n", err.msg);
        d->n_plots_skipped++;
        return;
    }
    s->plot = mimo_xstrdup(name);
    d->n_plots++;
}

static void skip_plot(mimo_report_doc *d, mimo_report_section *s, const char *why)
{
    s->plot_skipped = mimo_xstrdup(why);
    d->n_plots_skipped++;
}

/* ---- overview and the per-suite table ---- */

static void add_overview(mimo_report_doc *d, const char *path, const json_t *root, int index, int n_files)
{
    char *title = n_files > 1 ? mimo_strf("File %d: %s", index, path) : mimo_strf("Results: %s", path);
    mimo_report_section *s = mimo_report_add_section(d, 2, title);
    free(title);
    const json_t *tool = json_object_get(root, "tool");
    const json_t *env = json_object_get(root, "environment");
    const json_t *model = json_object_get(root, "model");
    char text[1024];
    mimo_rfile_field_text(json_object_get(root, "command"), text, sizeof text);
    mimo_report_section_text(s, "Command: `%s`", text);
    char version[64], commit[64], gpu[256], host[256], source[64], preset[128], shard_r[16], shard_n[16];
    mimo_rfile_field_text(json_object_get(tool, "version"), version, sizeof version);
    mimo_rfile_field_text(json_object_get(tool, "git_commit"), commit, sizeof commit);
    const json_t *gpu_v = json_object_get(env, "gpu_name");
    if (!gpu_v)
        gpu_v = json_object_get(json_object_get(env, "gpu"), "name");
    mimo_rfile_field_text(gpu_v, gpu, sizeof gpu);
    mimo_rfile_field_text(json_object_get(env, "host"), host, sizeof host);
    mimo_rfile_field_text(json_object_get(model, "source"), source, sizeof source);
    const json_t *what = json_object_get(model, "preset");
    if (!what)
        what = json_object_get(model, "path");
    mimo_rfile_field_text(what, preset, sizeof preset);
    mimo_rfile_field_text(json_object_get(json_object_get(model, "shard"), "rank"), shard_r, sizeof shard_r);
    mimo_rfile_field_text(json_object_get(json_object_get(model, "shard"), "count"), shard_n, sizeof shard_n);
    mimo_report_section_text(s, "mimo-bench %s, commit %s; GPU %s; host %s; model %s %s, shard %s/%s.", version,
                             commit, gpu, host, source, preset, shard_r, shard_n);
    if (json_is_true(json_object_get(root, "incomplete")))
        mimo_report_section_text(s, "This run was interrupted: its results are incomplete.");

    const json_t *configs = json_object_get(root, "configs");
    char *suffix = forced_suffix(configs, NULL);
    char *caption = mimo_strf("Per configuration and suite: tau, acceptance, decode_tps (tokens/s after the first; "
                              "ratio_of_sums is Spec-Bench's aggregate), TTFT and TPOT medians%s", suffix);
    free(suffix);
    mimo_report_table *t = mimo_report_add_table(s, caption, 13, "configuration", "suite", "requests", "rounds",
                                                 "tau mean", "draft acceptance", "decode_tps median", "mean", "p5",
                                                 "p95", "ratio_of_sums", "ttft_ms median", "tpot_ms median");
    free(caption);
    mimo_report_table *un = NULL;
    size_t i;
    json_t *entry;
    json_array_foreach(configs, i, entry) {
        const char *reason;
        if (!mimo_rfile_available(entry, &reason)) {
            if (!un)
                un = mimo_report_add_table(s, "Configurations not run on this build/machine", 2, "configuration",
                                           "reason");
            char *label = mimo_rfile_config_label(entry);
            mimo_report_table_row(un, label, reason);
            free(label);
            continue;
        }
        char *label = tau_label(entry);
        const char *suite;
        json_t *st;
        json_object_foreach(json_object_get(entry, "suites"), suite, st) {
            mimo_report_table_row(t, label, suite, fnum(mimo_rfile_num(st, "requests"), "%.0f"),
                                  fnum(mimo_rfile_num(st, "rounds"), "%.0f"), fnum(mimo_rfile_num(st, "tau.mean"), "%.2f"),
                                  fnum(mimo_rfile_num(st, "draft_acceptance_rate"), "%.3f"),
                                  fnum(mimo_rfile_num(st, "decode_tps.median"), "%.2f"),
                                  fnum(mimo_rfile_num(st, "decode_tps.mean"), "%.2f"),
                                  fnum(mimo_rfile_num(st, "decode_tps.p5"), "%.2f"),
                                  fnum(mimo_rfile_num(st, "decode_tps.p95"), "%.2f"),
                                  fnum(mimo_rfile_num(st, "decode_tps.ratio_of_sums"), "%.2f"),
                                  fnum(mimo_rfile_num(st, "ttft_ms.median"), "%.2f"),
                                  fnum(mimo_rfile_num(st, "tpot_ms.median"), "%.3f"));
        }
        free(label);
    }
}

/* ---- tau: histograms per suite and means vs the seed ---- */

/* Measured histogram of one suite as fractions; returns the number of tau values (0 when absent). */
static int suite_histogram(const json_t *stats, double *frac)
{
    const json_t *hist = json_object_get(json_object_get(stats, "tau"), "histogram");
    size_t n = json_array_size(hist);
    if (n == 0 || n > MAX_TAU)
        return 0;
    /* histogram[k] counts rounds with tau = from + k (h5's writer: from = 1). */
    long from = 1;
    const json_t *from_v = json_object_get(json_object_get(stats, "tau"), "histogram_tau_from");
    if (json_is_integer(from_v))
        from = (long)json_integer_value(from_v);
    if (from < 0 || from > 1)
        return 0;
    double sum = 0;
    double counts[MAX_TAU + 1] = {0};
    for (size_t k = 0; k < n; k++) {
        double v = json_number_value(json_array_get(hist, k));
        counts[k] = isfinite(v) && v > 0 ? v : 0;
        sum += counts[k];
    }
    if (sum <= 0)
        return 0;
    int n_tau = 0;
    for (size_t k = 0; k < n; k++) {
        long tau = from + (long)k;
        if (tau < 1)
            continue;
        frac[tau - 1] = counts[k] / sum;
        n_tau = (int)tau;
    }
    return n_tau;
}

static void add_tau_histograms(mimo_report_doc *d, const json_t *root, const char *prefix)
{
    const json_t *configs = json_object_get(root, "configs");
    const char *suites[32];
    int n_suites = collect_suites(configs, suites, 32);
    size_t n_cfg = json_array_size(configs);
    bool any_dflash = false;
    size_t i;
    json_t *entry;
    json_array_foreach(configs, i, entry)
        any_dflash |= usable(entry) && mimo_rfile_dflash(entry);
    if (!any_dflash) {
        mimo_report_section *s = mimo_report_add_section(d, 3, "tau histograms per suite");
        skip_plot(d, s, "no configuration ran DFlash, so every round has tau = 1");
        return;
    }
    for (int k = 0; k < n_suites; k++) {
        const char *suite = suites[k];
        bool *use = mimo_xcalloc(n_cfg, sizeof *use);
        double (*frac)[MAX_TAU] = mimo_xcalloc(n_cfg, sizeof *frac);
        int max_tau = 0, n_series = 0;
        json_array_foreach(configs, i, entry) {
            const json_t *st = json_object_get(json_object_get(entry, "suites"), suite);
            if (!usable(entry) || !mimo_rfile_dflash(entry) || !st)
                continue;
            int n_tau = suite_histogram(st, frac[i]);
            if (n_tau == 0)
                continue;
            use[i] = true;
            n_series++;
            if (n_tau > max_tau)
                max_tau = n_tau;
        }
        double published = mimo_published_tau(suite);
        double pub[MIMO_PUBLISHED_BLOCK] = {0};
        double alpha = NAN;
        if (isfinite(published)) {
            alpha = mimo_alpha_for_mean(published, MIMO_PUBLISHED_BLOCK);
            mimo_truncated_geometric(alpha, MIMO_PUBLISHED_BLOCK, pub);
            if (max_tau < MIMO_PUBLISHED_BLOCK)
                max_tau = MIMO_PUBLISHED_BLOCK;
        }
        char *suffix = forced_suffix(configs, use);
        char *title = mimo_strf("tau histogram, suite %s (fraction of rounds)%s", suite, suffix);
        mimo_report_section *s = mimo_report_add_section(d, 3, title);
        if (n_series == 0) {
            skip_plot(d, s, "no DFlash configuration has a tau histogram for this suite");
            free(title);
            free(suffix);
            free(use);
            free(frac);
            continue;
        }
        if (isfinite(published))
            mimo_report_section_text(s, "Published: the MiMo seed's mean tau %.2f at block %d, drawn as the truncated "
                                        "geometric histogram of a constant per-position acceptance alpha = %.4f "
                                        "(E[tau] = 1 + sum alpha^i).", published, MIMO_PUBLISHED_BLOCK, alpha);
        else
            mimo_report_section_text(s, "The seed publishes no tau for suite %s; measured histograms only.", suite);

        /* Table and data: one row per tau value, one column per series. */
        int n_cols = 1 + n_series + (isfinite(published) ? 1 : 0);
        mimo_report_table *t = mimo_report_add_table(s, title, 1, "tau");
        /* widen the table by hand: headers come from the series */
        t->n_cols = n_cols;
        t->header = mimo_xrealloc(t->header, (size_t)n_cols * sizeof *t->header);
        int col = 1;
        mimo_report_buffer data;
        mimo_report_buffer_open(&data);
        fprintf(data.f, "# tau");
        mimo_report_buffer body;
        mimo_report_buffer_open(&body);
        fprintf(body.f, "set style data histogram\nset style histogram clustered gap 1\n"
                        "set style fill solid 0.85 border -1\nset boxwidth 0.9\nset yrange [0:*]\n"
                        "set xlabel 'tau (accepted drafts + 1)'\nset ylabel 'fraction of rounds'\n"
                        "set key below\nset grid ytics\nplot ");
        json_array_foreach(configs, i, entry) {
            if (!use[i])
                continue;
            char *label = short_label(entry);
            t->header[col] = mimo_strf("%s", label);
            char *q = mimo_gnuplot_quote(label);
            fprintf(body.f, "%s@DAT@ using %d%s title %s", col > 1 ? ", " : "", col + 1, col == 1 ? ":xtic(1)" : "", q);
            fprintf(data.f, " | %s", label);
            free(q);
            free(label);
            col++;
        }
        if (isfinite(published)) {
            t->header[col] = mimo_strf("published (mean %.2f, B=%d)", published, MIMO_PUBLISHED_BLOCK);
            char *label = mimo_strf("published: seed mean %.2f at B=%d, truncated geometric", published,
                                    MIMO_PUBLISHED_BLOCK);
            char *q = mimo_gnuplot_quote(label);
            fprintf(body.f, ", @DAT@ using %d with linespoints lw 2 pt 7 lc rgb 'black' title %s", col + 1, q);
            fprintf(data.f, " | %s", label);
            free(q);
            free(label);
        }
        fprintf(data.f, "\n");
        for (int tau = 1; tau <= max_tau; tau++) {
            char **cells = mimo_xcalloc((size_t)n_cols, sizeof *cells);
            cells[0] = mimo_strf("%d", tau);
            fprintf(data.f, "\"%d\"", tau);
            int c = 1;
            json_array_foreach(configs, i, entry) {
                if (!use[i])
                    continue;
                cells[c++] = mimo_strf("%.4f", frac[i][tau - 1]);
                dat_num(data.f, frac[i][tau - 1]);
            }
            if (isfinite(published)) {
                double v = tau <= MIMO_PUBLISHED_BLOCK ? pub[tau - 1] : NAN;
                cells[c++] = mimo_xstrdup(fnum(v, "%.4f"));
                dat_num(data.f, v);
            }
            fprintf(data.f, "\n");
            /* row with n_cols cells: grow like mimo_report_table_row does */
            if (t->n_rows == t->cap_rows) {
                t->cap_rows = t->cap_rows ? 2 * t->cap_rows : 8;
                t->cells = mimo_xrealloc(t->cells, (size_t)t->cap_rows * (size_t)n_cols * sizeof *t->cells);
            }
            for (int cc = 0; cc < n_cols; cc++)
                t->cells[(size_t)t->n_rows * (size_t)n_cols + (size_t)cc] = cells[cc];
            t->n_rows++;
            free(cells);
        }
        fprintf(body.f, "\n");
        fflush(body.f);
        fflush(data.f);
        char *name = mimo_strf("%stau_hist_%s", prefix, suite);
        for (char *p = name; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-'))
                *p = '_';
        plot_or_skip(d, s, name, title, body.data, data.data, 900, 480);
        mimo_report_buffer_discard(&body);
        mimo_report_buffer_discard(&data);
        free(name);
        free(title);
        free(suffix);
        free(use);
        free(frac);
    }
}

static void add_tau_vs_seed(mimo_report_doc *d, const json_t *root, const char *prefix)
{
    const json_t *configs = json_object_get(root, "configs");
    const char *suites[32];
    int n_suites = collect_suites(configs, suites, 32);
    size_t n_cfg = json_array_size(configs);
    bool *use = mimo_xcalloc(n_cfg, sizeof *use);
    int n_series = 0;
    size_t i;
    json_t *entry;
    json_array_foreach(configs, i, entry) {
        use[i] = usable(entry) && mimo_rfile_dflash(entry);
        n_series += use[i];
    }
    char *suffix = forced_suffix(configs, use);
    char *title = mimo_strf("Mean tau by suite vs the seed's table (block %d)%s", MIMO_PUBLISHED_BLOCK, suffix);
    mimo_report_section *s = mimo_report_add_section(d, 3, title);
    mimo_report_section_text(s, "Seed table (DFLASH.md): coding 6.30, math 5.56, agent 4.29 at block 8 "
                                "(tau = accepted drafts + 1; mean tau = emitted / rounds).");
    mimo_report_table *t = mimo_report_add_table(s, title, 6, "configuration", "suite", "tau mean", "seed tau",
                                                 "measured / seed", "draft acceptance");
    if (n_series == 0) {
        skip_plot(d, s, "no configuration ran DFlash, so every round has tau = 1");
        free(use);
        free(suffix);
        free(title);
        return;
    }
    mimo_report_buffer data, body;
    mimo_report_buffer_open(&data);
    mimo_report_buffer_open(&body);
    fprintf(body.f, "set style data histogram\nset style histogram clustered gap 1\n"
                    "set style fill solid 0.85 border -1\nset boxwidth 0.9\nset yrange [0:*]\n"
                    "set ylabel 'mean tau'\nset key below\nset grid ytics\nplot ");
    int col = 1;
    json_array_foreach(configs, i, entry) {
        if (!use[i])
            continue;
        char *label = short_label(entry);
        char *q = mimo_gnuplot_quote(label);
        fprintf(body.f, "%s@DAT@ using %d%s title %s", col > 1 ? ", " : "", col + 1, col == 1 ? ":xtic(1)" : "", q);
        free(q);
        free(label);
        col++;
    }
    fprintf(body.f, ", @DAT@ using %d title 'seed (published)' lc rgb 'black'\n", col + 1);
    for (int k = 0; k < n_suites; k++) {
        double seed = mimo_published_tau(suites[k]);
        dat_str(data.f, suites[k]);
        json_array_foreach(configs, i, entry) {
            if (!use[i])
                continue;
            const json_t *st = json_object_get(json_object_get(entry, "suites"), suites[k]);
            double tau = mimo_rfile_num(st, "tau.mean");
            dat_num(data.f, tau);
            if (!st)
                continue;
            char *label = tau_label(entry);
            mimo_report_table_row(t, label, suites[k], fnum(tau, "%.2f"), fnum(seed, "%.2f"),
                                  fnum(tau / seed, "%.3f"), fnum(mimo_rfile_num(st, "draft_acceptance_rate"), "%.3f"));
            free(label);
        }
        dat_num(data.f, seed);
        fprintf(data.f, "\n");
    }
    fflush(body.f);
    fflush(data.f);
    char *name = mimo_strf("%stau_vs_seed", prefix);
    plot_or_skip(d, s, name, title, body.data, data.data, 1000, 480);
    free(name);
    mimo_report_buffer_discard(&body);
    mimo_report_buffer_discard(&data);
    free(use);
    free(suffix);
    free(title);
}

/* ---- decode TPS per ablation configuration ---- */

static void add_tps(mimo_report_doc *d, const json_t *root, const char *prefix)
{
    const json_t *configs = json_object_get(root, "configs");
    const char *suites[32];
    int n_suites = collect_suites(configs, suites, 32);
    mimo_report_section *s = mimo_report_add_section(d, 3, "Decode TPS per configuration (median, whiskers p5–p95)");
    mimo_report_table *t = mimo_report_add_table(s, "decode_tps per configuration and suite (tokens/s)", 6,
                                                 "configuration", "suite", "median", "p5", "p95", "ratio_of_sums");
    mimo_report_buffer data, body;
    mimo_report_buffer_open(&data);
    mimo_report_buffer_open(&body);
    int rows = 0;
    size_t i;
    json_t *entry;
    json_array_foreach(configs, i, entry) {
        if (!usable(entry) || !json_object_size(json_object_get(entry, "suites")))
            continue;
        char *label = short_label(entry);
        char *full = mimo_rfile_config_label(entry);
        dat_str(data.f, label);
        for (int k = 0; k < n_suites; k++) {
            const json_t *st = json_object_get(json_object_get(entry, "suites"), suites[k]);
            double med = mimo_rfile_num(st, "decode_tps.median");
            dat_num(data.f, med);
            dat_num(data.f, mimo_rfile_num(st, "decode_tps.p5"));
            dat_num(data.f, mimo_rfile_num(st, "decode_tps.p95"));
            if (st)
                mimo_report_table_row(t, full, suites[k], fnum(med, "%.2f"),
                                      fnum(mimo_rfile_num(st, "decode_tps.p5"), "%.2f"),
                                      fnum(mimo_rfile_num(st, "decode_tps.p95"), "%.2f"),
                                      fnum(mimo_rfile_num(st, "decode_tps.ratio_of_sums"), "%.2f"));
        }
        fprintf(data.f, "\n");
        rows++;
        free(label);
        free(full);
    }
    if (rows == 0 || n_suites == 0) {
        skip_plot(d, s, "no configuration produced decode_tps");
    } else {
        fprintf(body.f, "set style data histogram\nset style histogram errorbars gap 1 lw 1\n"
                        "set style fill solid 0.85 border -1\nset boxwidth 0.9\nset yrange [0:*]\n"
                        "set ylabel 'decode tokens/s (median; bars p5-p95)'\nset xtics rotate by -30\nset rmargin 14\n"
                        "set key below\nset grid ytics\nplot ");
        for (int k = 0; k < n_suites; k++) {
            char *q = mimo_gnuplot_quote(suites[k]);
            fprintf(body.f, "%s@DAT@ using %d:%d:%d%s title %s", k ? ", " : "", 2 + 3 * k, 3 + 3 * k, 4 + 3 * k,
                    k == 0 ? ":xtic(1)" : "", q);
            free(q);
        }
        fprintf(body.f, "\n");
        fflush(body.f);
        fflush(data.f);
        char *name = mimo_strf("%sdecode_tps", prefix);
        plot_or_skip(d, s, name, "decode TPS per configuration (median, p5-p95)", body.data, data.data, 1100, 560);
        free(name);
    }
    mimo_report_buffer_discard(&body);
    mimo_report_buffer_discard(&data);
}

/* ---- step-time breakdown by kernel category ---- */

static const char *const categories[] = {"attention", "moe", "dense-gemv", "norm/rope", "sampling/verify",
                                         "draft", "comm", "memcpy", "other"};
#define N_CATEGORIES (sizeof categories / sizeof categories[0])
/* One fixed colour per category, the same in the stacked bars and the timeline. */
static const char *const category_colors[] = {"#9467bd", "#d62728", "#1f77b4", "#ff7f0e", "#2ca02c",
                                              "#17becf", "#8c564b", "#7f7f7f", "#bcbd22"};

static void add_kernels(mimo_report_doc *d, const json_t *root, const char *prefix)
{
    const json_t *configs = json_object_get(root, "configs");
    mimo_report_section *s = mimo_report_add_section(d, 3, "Step time by kernel category");
    bool per_round = true;
    int n_with = 0;
    size_t i;
    json_t *entry;
    json_array_foreach(configs, i, entry) {
        const json_t *k = json_object_get(entry, "kernels");
        if (!usable(entry) || !json_is_object(json_object_get(k, "categories")))
            continue;
        n_with++;
        per_round &= mimo_rfile_num(k, "rounds") > 0;
    }
    if (n_with == 0) {
        /* The run says why there are none (run without --trace, cpu backend, no CUPTI): pass it on. */
        const char *reason = NULL;
        json_array_foreach(configs, i, entry) {
            if (usable(entry) && !reason)
                reason = json_string_value(json_object_get(json_object_get(entry, "kernels"), "reason"));
        }
        char *why = mimo_strf("no configuration has kernel records (%s)",
                              reason ? reason : "run with --trace on a GPU build");
        skip_plot(d, s, why);
        free(why);
        return;
    }
    const char *unit = per_round ? "µs per decode round" : "ms in the traced pass";
    mimo_report_section_text(s, "From CUPTI activity records of the traced pass (a separate pass from the timed "
                                "one: tracing has overhead). Stacked: GPU time per category, in %s%s. Each record "
                                "counts with its exclusive time, the part after the previous records of its stream "
                                "ended (with programmatic dependent launch a kernel's record starts while its "
                                "predecessor runs, and plain durations would count the overlap twice); results files "
                                "without exclusive times show plain durations.", unit,
                             per_round ? " (all GPU time of the traced pass, prefill included, divided by its decode "
                                         "rounds)" : "");
    char *caption = mimo_strf("GPU time by kernel category (%s)", unit);
    mimo_report_table *t = mimo_report_add_table(s, caption, 11, "configuration", categories[0], categories[1],
                                                 categories[2], categories[3], categories[4], categories[5],
                                                 categories[6], categories[7], categories[8], "total");
    free(caption);
    mimo_report_table *top = mimo_report_add_table(s, "Top kernels by GPU time (up to 10 per configuration)", 8,
                                                   "configuration", "kernel", "category", "count", "total_us",
                                                   "mean_us", "share", "exclusive_us");
    mimo_report_table *cupti = mimo_report_add_table(s, "CUPTI tracing: records and the cost of tracing (median "
                                                        "decode round, traced pass over timed pass)", 5,
                                                     "configuration", "records", "dropped", "overhead (median)",
                                                     "overhead (means)");
    mimo_report_table *phase_table = NULL;
    mimo_report_buffer data, body;
    mimo_report_buffer_open(&data);
    mimo_report_buffer_open(&body);
    json_array_foreach(configs, i, entry) {
        const json_t *k = json_object_get(entry, "kernels");
        const json_t *cats = json_object_get(k, "categories");
        if (!usable(entry) || !json_is_object(cats))
            continue;
        double scale = per_round ? 1.0 / mimo_rfile_num(k, "rounds") : 1e-3;
        char *label = short_label(entry);
        char *full = mimo_rfile_config_label(entry);
        const char *cells[N_CATEGORIES + 2];
        double total = 0;
        cells[0] = full;
        dat_str(data.f, label);
        for (size_t c = 0; c < N_CATEGORIES; c++) {
            const json_t *cat = json_object_get(cats, categories[c]);
            double v = mimo_rfile_num(cat, json_is_number(json_object_get(cat, "exclusive_us")) ? "exclusive_us"
                                                                                              : "total_us");
            v = isfinite(v) ? v * scale : 0.0;
            total += v;
            cells[c + 1] = fnum(v, "%.1f");
            dat_num(data.f, v);
        }
        cells[N_CATEGORIES + 1] = fnum(total, "%.1f");
        fprintf(data.f, "\n");
        const json_t *ov = json_object_get(k, "tracing_overhead");
        mimo_report_table_row(cupti, full, fnum(mimo_rfile_num(k, "records"), "%.0f"),
                              fnum(mimo_rfile_num(k, "dropped_records"), "%.0f"),
                              fnum(100.0 * mimo_rfile_num(ov, "overhead_fraction"), "%.1f %%"),
                              fnum(100.0 * mimo_rfile_num(ov, "overhead_fraction_of_means"), "%.1f %%"));
        mimo_report_table_row(t, cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7],
                              cells[8], cells[9], cells[10]);
        const json_t *phases = json_object_get(k, "persistent_phases_us");
        if (json_is_object(phases)) {
            if (!phase_table)
                phase_table = mimo_report_add_table(s, "Persistent kernel phases (its own device timestamps; inside "
                                                       "the persistent kernel's time above)", 3, "configuration",
                                                    "phase category", "µs");
            const char *pc;
            json_t *pv;
            json_object_foreach((json_t *)phases, pc, pv)
                mimo_report_table_row(phase_table, full, pc, fnum(json_number_value(pv), "%.1f"));
        }
        size_t j;
        json_t *kern;
        json_array_foreach(json_object_get(k, "kernels"), j, kern) {
            if (j >= 10)
                break;
            char name[200], cat[64];
            mimo_rfile_field_text(json_object_get(kern, "name"), name, sizeof name);
            mimo_rfile_field_text(json_object_get(kern, "category"), cat, sizeof cat);
            mimo_report_table_row(top, full, name, cat, fnum(mimo_rfile_num(kern, "count"), "%.0f"),
                                  fnum(mimo_rfile_num(kern, "total_us"), "%.1f"),
                                  fnum(mimo_rfile_num(kern, "mean_us"), "%.2f"),
                                  fnum(mimo_rfile_num(kern, "share"), "%.3f"),
                                  fnum(mimo_rfile_num(kern, "exclusive_us"), "%.1f"));
        }
        free(label);
        free(full);
    }
    fprintf(body.f, "set style data histogram\nset style histogram rowstacked\nset style fill solid 0.85 border -1\n"
                    "set boxwidth 0.7\nset yrange [0:*]\nset ylabel '%s'\nset xtics rotate by -30\nset rmargin 14\n"
                    "set key below\nset grid ytics\nplot ", unit);
    for (size_t c = 0; c < N_CATEGORIES; c++)
        fprintf(body.f, "%s@DAT@ using %zu%s title '%s' lc rgb '%s'", c ? ", " : "", c + 2,
                c == 0 ? ":xtic(1)" : "", categories[c], category_colors[c]);
    fprintf(body.f, "\n");
    fflush(body.f);
    fflush(data.f);
    char *name = mimo_strf("%skernel_categories", prefix);
    char *title = mimo_strf("step time by kernel category (%s)", unit);
    plot_or_skip(d, s, name, title, body.data, data.data, 1100, 560);
    free(name);
    free(title);
    mimo_report_buffer_discard(&body);
    mimo_report_buffer_discard(&data);
}

/* ---- one decode round's kernel timeline from a Chrome trace ---- */

typedef struct {
    double ts, dur;
    const char *name, *cat;
} trace_event;

static int cmp_event(const void *a, const void *b)
{
    const trace_event *x = a, *y = b;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

typedef struct {
    double span;     /* µs from the previous marker to this one */
    size_t marker;   /* index into the markers */
} round_window;

static int by_span(const void *a, const void *b)
{
    const round_window *x = a, *y = b;
    return (x->span > y->span) - (x->span < y->span);
}

static bool is_round_marker(const trace_event *e)
{
    /* The host reads each round's tokens back: a sync or a device-to-host copy ends a round. */
    return !strcmp(e->cat, "sync") || (!strcmp(e->cat, "memcpy") && strstr(e->name, "DtoH"));
}

static int category_index(const char *cat)
{
    for (size_t c = 0; c < N_CATEGORIES; c++)
        if (!strcmp(categories[c], cat))
            return (int)c;
    return (int)N_CATEGORIES - 1;
}

static void add_timeline(mimo_report_doc *d, const char *path, const json_t *root, const char *prefix)
{
    mimo_report_section *s = mimo_report_add_section(d, 3, "One decode round's kernel timeline");
    const json_t *configs = json_object_get(root, "configs");
    const char *trace_file = NULL;
    const json_t *traced = NULL;
    size_t i;
    json_t *entry;
    json_array_foreach(configs, i, entry) {
        const char *tf = json_string_value(json_object_get(json_object_get(entry, "kernels"), "trace_file"));
        if (tf && usable(entry)) {
            trace_file = tf;
            traced = entry;
            break;
        }
    }
    if (!trace_file) {
        const char *reason = NULL;
        json_array_foreach(configs, i, entry) {
            if (usable(entry) && !reason)
                reason = json_string_value(json_object_get(json_object_get(entry, "kernels"), "reason"));
        }
        char *why = mimo_strf("no configuration has a trace file (%s)", reason ? reason : "run with --trace on a GPU build");
        skip_plot(d, s, why);
        free(why);
        return;
    }
    /* As written (relative to where `run` ran), else next to the results file (moved together). */
    json_t *trace = json_load_file(trace_file, 0, NULL);
    const char *slash = strrchr(path, '/');
    if (!trace && trace_file[0] != '/' && slash) {
        char *rel = mimo_strf("%.*s/%s", (int)(slash - path), path, trace_file);
        trace = json_load_file(rel, 0, NULL);
        free(rel);
    }
    if (!trace) {
        const char *base = strrchr(trace_file, '/');
        char *near = mimo_strf("%.*s%s", slash ? (int)(slash - path + 1) : 0, path, base ? base + 1 : trace_file);
        trace = json_load_file(near, 0, NULL);
        free(near);
    }
    const json_t *events = json_object_get(trace, "traceEvents");
    size_t n_ev = json_array_size(events), n = 0;
    trace_event *ev = mimo_xcalloc(n_ev ? n_ev : 1, sizeof *ev);
    json_t *e;
    json_array_foreach(events, i, e) {
        const char *ph = json_string_value(json_object_get(e, "ph"));
        double ts = mimo_rfile_num(e, "ts"), dur = mimo_rfile_num(e, "dur");
        if (!ph || strcmp(ph, "X") || !isfinite(ts) || !isfinite(dur))
            continue;
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *cat = json_string_value(json_object_get(e, "cat"));
        ev[n++] = (trace_event){ts, dur, name ? name : "?", cat ? cat : "other"};
    }
    if (n == 0) {
        char *why = mimo_strf("trace file %s is unreadable or has no complete (ph X) events", trace_file);
        skip_plot(d, s, why);
        free(why);
        free(ev);
        json_decref(trace);
        return;
    }
    qsort(ev, n, sizeof *ev, cmp_event);
    /* Choose the round between the two round markers in the middle of the trace; without markers, a
     * window of at most 200 events from the middle. */
    size_t *markers = mimo_xcalloc(n, sizeof *markers), n_markers = 0;
    for (size_t k = 0; k < n; k++)
        if (is_round_marker(&ev[k]))
            markers[n_markers++] = k;
    size_t lo = 0, hi = n;   /* events [lo, hi) */
    const char *method;
    /* A round: the events between two markers with real work between them (a copy and the sync that
     * waits for it are adjacent markers, not a round). Of all such windows take the one of median span:
     * decode rounds outnumber prefills, so it is a typical decode round, not a prompt's prefill. */
    round_window *win = mimo_xcalloc(n_markers ? n_markers : 1, sizeof *win);
    size_t n_win = 0;
    for (size_t m = 1; m < n_markers; m++)
        if (markers[m] - markers[m - 1] >= 3)
            win[n_win++] = (round_window){ev[markers[m]].ts - ev[markers[m - 1]].ts, m};
    if (n_win > 0) {
        qsort(win, n_win, sizeof *win, by_span);
        size_t m = win[n_win / 2].marker;
        lo = markers[m - 1] + 1;
        hi = markers[m] + 1;
        method = "the events between one device-to-host copy or synchronization and the next (the host reads "
                 "each round's tokens back); of all such windows the one of median length, i.e. a typical "
                 "decode round";
    } else if (n > 200) {
        lo = n / 2 - 100;
        hi = lo + 200;
        method = "no round markers (syncs or device-to-host copies) in the trace: 200 consecutive events from its middle";
    } else {
        method = "no round markers in the trace: all of its events";
    }
    free(markers);
    free(win);
    double t0 = ev[lo].ts;
    char *label = short_label(traced);
    mimo_report_section_text(s, "Trace `%s` (configuration %s). Window: %s; %zu events, times relative to the "
                                "first.", trace_file, label, method, hi - lo);
    mimo_report_table *t = mimo_report_add_table(s, "Kernels of the round", 5, "start_us", "dur_us", "category",
                                                 "name", "end_us");
    mimo_report_buffer data;
    mimo_report_buffer_open(&data);
    for (size_t k = lo; k < hi; k++) {
        if (!strcmp(ev[k].cat, "sync"))   /* host waits, not GPU work */
            continue;
        double start = ev[k].ts - t0, end = start + ev[k].dur;
        int lane = category_index(ev[k].cat);
        fprintf(data.f, "%.3f %.3f %d %ld\n", start, end, lane, strtol(category_colors[lane] + 1, NULL, 16));
        mimo_report_table_row(t, fnum(start, "%.2f"), fnum(ev[k].dur, "%.2f"), ev[k].cat, ev[k].name,
                              fnum(end, "%.2f"));
    }
    fflush(data.f);
    mimo_report_buffer body;
    mimo_report_buffer_open(&body);
    fprintf(body.f, "set yrange [-0.6:%zu-0.4]\nset ytics (", N_CATEGORIES);
    for (size_t c = 0; c < N_CATEGORIES; c++)
        fprintf(body.f, "%s'%s' %zu", c ? ", " : "", categories[c], c);
    fprintf(body.f, ")\nset xlabel 'time in the round (us)'\nset grid xtics\nset style fill solid 0.85 border -1\n"
                    "plot @DAT@ using (($1+$2)/2):3:1:2:($3-0.35):($3+0.35):4 with boxxyerror lc rgb variable notitle\n");
    fflush(body.f);
    char *name = mimo_strf("%stimeline", prefix);
    char *title = mimo_strf("one decode round's kernels: %s", label);
    plot_or_skip(d, s, name, title, body.data, data.data, 1100, 420);
    free(name);
    free(title);
    free(label);
    mimo_report_buffer_discard(&body);
    mimo_report_buffer_discard(&data);
    free(ev);
    json_decref(trace);
}

/* ---- efficiency vs roofline ---- */

static void add_roofline(mimo_report_doc *d, const json_t *root, const char *prefix)
{
    const json_t *configs = json_object_get(root, "configs");
    mimo_report_section *s = mimo_report_add_section(d, 3, "Efficiency vs roofline");
    mimo_report_section_text(s, "roofline_ms = bytes one step must stream / streaming bandwidth measured in the same "
                                "run; efficiency = roofline_ms / measured step ms.");
    mimo_report_table *t = mimo_report_add_table(s, "Roofline per configuration", 6, "configuration",
                                                 "bytes per step", "calibration GB/s", "roofline ms",
                                                 "measured step ms", "efficiency");
    mimo_report_buffer data;
    mimo_report_buffer_open(&data);
    int plotted = 0;
    size_t i;
    json_t *entry;
    json_array_foreach(configs, i, entry) {
        const json_t *r = json_object_get(entry, "roofline");
        if (!usable(entry) || !json_is_object(r))
            continue;
        double roof = mimo_rfile_num(r, "roofline_ms"), meas = mimo_rfile_num(r, "measured_step_ms");
        double eff = mimo_rfile_num(r, "efficiency");
        if (!isfinite(eff) && isfinite(roof) && isfinite(meas) && meas > 0)
            eff = roof / meas;
        char *full = mimo_rfile_config_label(entry);
        mimo_report_table_row(t, full, fnum(mimo_rfile_num(r, "bytes_per_step"), "%.0f"),
                              fnum(mimo_rfile_num(r, "calibration_gbps"), "%.1f"), fnum(roof, "%.4f"),
                              fnum(meas, "%.4f"), fnum(eff, "%.3f"));
        free(full);
        if (isfinite(roof) && isfinite(meas)) {
            char *label = short_label(entry);
            char *x = mimo_strf("%s (%s)", label, fnum(100 * eff, "%.0f%%"));
            dat_str(data.f, x);
            dat_num(data.f, meas);
            dat_num(data.f, roof);
            fprintf(data.f, "\n");
            free(x);
            free(label);
            plotted++;
        }
    }
    fflush(data.f);
    if (t->n_rows == 0)
        skip_plot(d, s, "no configuration has a roofline object");
    else if (plotted == 0) {
        const char *reason = NULL;
        json_array_foreach(configs, i, entry) {
            if (usable(entry) && !reason)
                reason = json_string_value(json_object_get(json_object_get(entry, "roofline"), "roofline_ms_null_reason"));
        }
        char *why = mimo_strf("no configuration has both a roofline and a measured step time (%s)",
                              reason ? reason : "no calibration or no rounds");
        skip_plot(d, s, why);
        free(why);
    }
    else {
        const char *body = "set style data histogram\nset style histogram clustered gap 1\n"
                           "set style fill solid 0.85 border -1\nset boxwidth 0.9\nset yrange [0:*]\n"
                           "set ylabel 'ms per step'\nset xtics rotate by -30\nset rmargin 14\nset key below\n"
                           "set grid ytics\nplot @DAT@ using 2:xtic(1) title 'measured step', "
                           "@DAT@ using 3 title 'roofline (bytes / calibrated bandwidth)'\n";
        char *name = mimo_strf("%sroofline", prefix);
        plot_or_skip(d, s, name, "measured step time vs roofline (efficiency in the labels)", body, data.data, 1100,
                     560);
        free(name);
    }
    mimo_report_buffer_discard(&data);
}

/* ---- --shard runs: projected node TPS ---- */

static void add_projection(mimo_report_doc *d, const json_t *root, const char *prefix)
{
    const json_t *configs = json_object_get(root, "configs");
    const json_t *shard = json_object_get(json_object_get(root, "model"), "shard");
    double count = mimo_rfile_num(shard, "count");
    mimo_report_section *s = mimo_report_add_section(d, 3, "Projected node TPS (--shard runs; a projection)");
    mimo_report_table *t = NULL;
    mimo_report_buffer data;
    mimo_report_buffer_open(&data);
    int rows = 0;
    size_t i;
    json_t *entry;
    json_array_foreach(configs, i, entry) {
        const json_t *p = json_object_get(entry, "projection");
        if (!p)
            p = json_object_get(entry, "projected_node_tps");
        if (!usable(entry) || !p)
            continue;
        double tps = json_is_number(p) ? json_number_value(p) : mimo_rfile_num(p, "projected_node_tps");
        if (!isfinite(tps))
            tps = mimo_rfile_num(p, "value");
        if (!t)
            t = mimo_report_add_table(s, "Projected node TPS = tau / (rank step ms + draft ms + comm ms)", 7,
                                      "configuration", "projected node TPS", "tau", "rank step ms", "draft ms",
                                      "comm ms", "assumptions");
        /* What the projection assumes, in the run's words: its label, the communication model (or
         * where a measured comm time came from) and any free-text assumptions. */
        char assume[2048] = "";
        static const char *const keys[] = {"label", "comm_model", "comm_source", "assumptions"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            const json_t *v = json_is_object(p) ? json_object_get(p, keys[k]) : NULL;
            if (!v)
                continue;
            char text[1024];
            mimo_rfile_field_text(v, text, sizeof text);
            size_t len = strlen(assume);
            snprintf(assume + len, sizeof assume - len, "%s%s", len ? "; " : "", text);
        }
        if (!assume[0])
            snprintf(assume, sizeof assume, "the run states no assumptions");
        char *full = tau_label(entry);
        mimo_report_table_row(t, full, fnum(tps, "%.1f"), fnum(mimo_rfile_num(p, "tau"), "%.2f"),
                              fnum(mimo_rfile_num(p, "rank_step_ms"), "%.3f"), fnum(mimo_rfile_num(p, "draft_ms"), "%.3f"),
                              fnum(mimo_rfile_num(p, "comm_ms"), "%.3f"), assume);
        mimo_report_section_text(s, "%s: %s", full, assume);
        free(full);
        if (isfinite(tps)) {
            char *label = short_label(entry);
            dat_str(data.f, label);
            dat_num(data.f, tps);
            fprintf(data.f, "\n");
            free(label);
            rows++;
        }
    }
    fflush(data.f);
    if (!t) {
        skip_plot(d, s, isfinite(count) && count > 1 ? "this --shard run records no projection"
                                                    : "not a --shard run (no projection to draw)");
    } else if (rows == 0) {
        skip_plot(d, s, "the projections have no finite value");
    } else {
        char *suffix = forced_suffix(configs, NULL);
        char *title = mimo_strf("projected node TPS (projection, not measured)%s", suffix);
        const char *body = "set style data histogram\nset style fill solid 0.85 border -1\nset boxwidth 0.7\n"
                           "set yrange [0:*]\nset ylabel 'tokens/s (projected)'\nset xtics rotate by -30\nset rmargin 14\n"
                           "set grid ytics\nplot @DAT@ using 2:xtic(1) notitle\n";
        char *name = mimo_strf("%sprojection", prefix);
        plot_or_skip(d, s, name, title, body, data.data, 1000, 520);
        free(name);
        free(title);
        free(suffix);
    }
    mimo_report_buffer_discard(&data);
}

void mimo_report_add_file(mimo_report_doc *d, const char *path, const json_t *root, int index, int n_files)
{
    char *prefix = n_files > 1 ? mimo_strf("f%d_", index) : mimo_xstrdup("");
    add_overview(d, path, root, index, n_files);
    add_tau_histograms(d, root, prefix);
    add_tau_vs_seed(d, root, prefix);
    add_tps(d, root, prefix);
    add_kernels(d, root, prefix);
    add_timeline(d, path, root, prefix);
    add_roofline(d, root, prefix);
    add_projection(d, root, prefix);
    free(prefix);
}

void mimo_report_add_comparison(mimo_report_doc *d, const char *const *paths, json_t *const *roots, int n)
{
    json_t *cmp = mimo_compare_build(paths, roots, n, NAN);
    mimo_report_section *s = mimo_report_add_section(d, 2, "Files side by side (the first is the baseline)");
    size_t r;
    json_t *row;
    char *suffix = mimo_compare_forced_suffix(cmp);
    char *caption = mimo_strf("decode_tps median, tau mean and speedup vs the first file%s", suffix);
    free(suffix);
    mimo_report_table *t = mimo_report_add_table(s, caption, 6, "configuration", "suite", "file",
                                                 "decode_tps median", "tau mean", "speedup");
    free(caption);
    const json_t *files = json_object_get(cmp, "files");
    json_array_foreach(json_object_get(cmp, "rows"), r, row) {
        const char *profile = json_string_value(json_object_get(row, "forced_profile"));
        char *label;
        if (profile) {
            char forced[300];
            mimo_forced_label(profile, forced, sizeof forced);
            label = mimo_strf("%s [%s]", json_string_value(json_object_get(row, "label")), forced);
        } else {
            label = mimo_xstrdup(json_string_value(json_object_get(row, "label")));
        }
        size_t c;
        json_t *cell;
        json_array_foreach(json_object_get(row, "cells"), c, cell) {
            const char *file = json_string_value(json_object_get(json_array_get(files, c), "label"));
            if (!json_is_true(json_object_get(cell, "present"))) {
                mimo_report_table_row(t, label, json_string_value(json_object_get(row, "suite")), file, "not in file",
                                      "-", "-");
                continue;
            }
            mimo_report_table_row(t, label, json_string_value(json_object_get(row, "suite")), file,
                                  fnum(mimo_rfile_num(cell, "decode_tps_median"), "%.2f"),
                                  fnum(mimo_rfile_num(cell, "tau_mean"), "%.2f"),
                                  c == 0 ? "baseline" : fnum(mimo_rfile_num(cell, "speedup"), "%.3fx"));
        }
        free(label);
    }
    json_decref(cmp);
}
