#include "compare.h"

#include "report_io.h"
#include "results_read.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void mimo_forced_label(const char *profile, char *buf, size_t size)
{
    snprintf(buf, size, "acceptance: forced (profile %s), not measured", profile ? profile : "?");
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The file's base name; the whole path when another file has the same base name, numbered when it is
 * the very same path (compare a.json a.json). */
static json_t *file_label(const char *const *paths, int n, int index)
{
    const char *name = base_name(paths[index]);
    bool same_path = false, same_name = false;
    for (int j = 0; j < n; j++) {
        if (j == index || strcmp(base_name(paths[j]), name) != 0)
            continue;
        same_name = true;
        if (!strcmp(paths[j], paths[index]) && j < index)
            same_path = true;
    }
    if (same_path)
        return json_sprintf("%s (#%d)", paths[index], index + 1);
    return json_string(same_name ? paths[index] : name);
}

/* Index of the row with this key + suite in rows, or -1. */
static long find_row(json_t *rows, const char *key, const char *suite)
{
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        if (!strcmp(json_string_value(json_object_get(row, "key")), key) &&
            !strcmp(json_string_value(json_object_get(row, "suite")), suite))
            return (long)i;
    }
    return -1;
}

static json_t *new_row(const json_t *entry, const char *key, const char *suite, int n_files)
{
    char *label = mimo_rfile_config_label(entry);
    const char *profile;
    bool forced = mimo_rfile_is_forced(entry, &profile);
    json_t *cells = json_array();
    for (int i = 0; i < n_files; i++)
        json_array_append_new(cells, json_pack("{s:i, s:b}", "file", i, "present", 0));
    json_t *row = json_pack("{s:s, s:s, s:s, s:O, s:o, s:o}", "key", key, "label", label, "suite", suite,
                            "config", json_object_get(entry, "config"),
                            "forced_profile", forced ? json_string(profile) : json_null(), "cells", cells);
    free(label);
    return row;
}

static void fill_cell(json_t *cell, const json_t *entry, const json_t *suite_stats)
{
    const char *reason;
    json_object_set_new(cell, "present", json_true());
    if (!mimo_rfile_available(entry, &reason)) {
        json_object_set_new(cell, "available", json_false());
        json_object_set_new(cell, "reason", json_string(reason));
        return;
    }
    json_object_set_new(cell, "available", json_true());
    double ttft = mimo_rfile_num(suite_stats, "ttft_ms.median");
    json_object_set_new(cell, "decode_tps_median", num_or_null(mimo_rfile_num(suite_stats, "decode_tps.median")));
    json_object_set_new(cell, "decode_tps_mean", num_or_null(mimo_rfile_num(suite_stats, "decode_tps.mean")));
    json_object_set_new(cell, "decode_tps_ratio_of_sums",
                        num_or_null(mimo_rfile_num(suite_stats, "decode_tps.ratio_of_sums")));
    json_object_set_new(cell, "tau_mean", num_or_null(mimo_rfile_num(suite_stats, "tau.mean")));
    json_object_set_new(cell, "ttft_ms_median", num_or_null(ttft));
}

/* Every (configuration, suite) of one file as a row cell; an unavailable configuration with no suites
 * still gets one row under suite "-" so that it shows up. */
static void add_file(json_t *rows, const json_t *root, int file, int n_files)
{
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(root, "configs"), i, entry) {
        char *key = mimo_rfile_config_key(entry);
        json_t *suites = json_object_get(entry, "suites");
        const char *suite;
        json_t *stats;
        bool any = false;
        json_object_foreach(suites, suite, stats) {
            any = true;
            long r = find_row(rows, key, suite);
            if (r < 0) {
                json_array_append_new(rows, new_row(entry, key, suite, n_files));
                r = (long)json_array_size(rows) - 1;
            }
            json_t *cell = json_array_get(json_object_get(json_array_get(rows, (size_t)r), "cells"), (size_t)file);
            fill_cell(cell, entry, stats);
        }
        if (!any) {
            long r = find_row(rows, key, "-");
            if (r < 0) {
                json_array_append_new(rows, new_row(entry, key, "-", n_files));
                r = (long)json_array_size(rows) - 1;
            }
            json_t *cell = json_array_get(json_object_get(json_array_get(rows, (size_t)r), "cells"), (size_t)file);
            fill_cell(cell, entry, NULL);
        }
        free(key);
    }
}

json_t *mimo_compare_build(const char *const *paths, json_t *const *roots, int n, double fail_if_slower_pct)
{
    json_t *files = json_array();
    for (int i = 0; i < n; i++) {
        const json_t *tool = json_object_get(roots[i], "tool");
        const json_t *env = json_object_get(roots[i], "environment");
        const char *commit = json_string_value(json_object_get(tool, "git_commit"));
        if (!commit)
            commit = json_string_value(json_object_get(tool, "commit"));
        const char *gpu = json_string_value(json_object_get(env, "gpu_name"));
        if (!gpu)
            gpu = json_string_value(json_object_get(json_object_get(env, "gpu"), "name"));
        json_array_append_new(files, json_pack("{s:i, s:s, s:o, s:o, s:o, s:b}", "index", i, "path", paths[i],
                                               "label", file_label(paths, n, i),
                                               "git_commit", commit ? json_string(commit) : json_null(),
                                               "gpu", gpu ? json_string(gpu) : json_null(), "incomplete",
                                               json_is_true(json_object_get(roots[i], "incomplete"))));
    }
    json_t *rows = json_array();
    for (int i = 0; i < n; i++)
        add_file(rows, roots[i], i, n);

    json_t *unmatched = json_array(), *regressions = json_array();
    size_t r;
    json_t *row;
    json_array_foreach(rows, r, row) {
        json_t *cells = json_object_get(row, "cells");
        json_t *base = json_array_get(cells, 0);
        double base_med = mimo_rfile_num(base, "decode_tps_median");
        json_t *missing = json_array();
        size_t c;
        json_t *cell;
        json_array_foreach(cells, c, cell) {
            if (!json_is_true(json_object_get(cell, "present"))) {
                json_array_append_new(missing, json_integer((json_int_t)c));
                continue;
            }
            double med = mimo_rfile_num(cell, "decode_tps_median");
            bool comparable = isfinite(base_med) && base_med > 0 && isfinite(med);
            json_object_set_new(cell, "speedup", num_or_null(comparable ? med / base_med : NAN));
            if (c == 0 || !comparable || isnan(fail_if_slower_pct))
                continue;
            double slower_pct = (1.0 - med / base_med) * 100.0;
            if (slower_pct > fail_if_slower_pct) {
                json_object_set_new(cell, "regression", json_true());
                json_array_append_new(regressions,
                                      json_pack("{s:i, s:s, s:s, s:s, s:f, s:f, s:f}", "file", (int)c,
                                                "path", paths[c], "config", json_string_value(json_object_get(row, "label")),
                                                "suite", json_string_value(json_object_get(row, "suite")),
                                                "baseline_decode_tps_median", base_med, "decode_tps_median", med,
                                                "slower_pct", slower_pct));
            }
        }
        if (json_array_size(missing) > 0)
            json_array_append_new(unmatched, json_pack("{s:O, s:O, s:o}", "config", json_object_get(row, "label"),
                                                       "suite", json_object_get(row, "suite"), "missing_in", missing));
        else
            json_decref(missing);
    }
    return json_pack("{s:i, s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "schema_version", MIMO_RFILE_SCHEMA_VERSION,
                     "kind", "mimo-bench compare", "baseline", paths[0], "fail_if_slower_pct",
                     num_or_null(fail_if_slower_pct), "files", files, "rows", rows, "unmatched", unmatched,
                     "regressions", regressions);
}

char *mimo_compare_forced_suffix(const json_t *cmp)
{
    char *out = mimo_xstrdup("");
    size_t r;
    json_t *row;
    json_array_foreach(json_object_get(cmp, "rows"), r, row) {
        const char *profile = json_string_value(json_object_get(row, "forced_profile"));
        if (!profile)
            continue;
        char label[300];
        mimo_forced_label(profile, label, sizeof label);
        if (strstr(out, label))
            continue;
        size_t len = strlen(out);
        out = mimo_xrealloc(out, len + strlen(label) + 8);
        sprintf(out + len, " — %s", label);
    }
    return out;
}

size_t mimo_compare_n_regressions(const json_t *cmp)
{
    return json_array_size(json_object_get(cmp, "regressions"));
}

/* ---- rendering ---- */

static void fmt_num(char *buf, size_t size, const json_t *cell, const char *field, const char *unit_fmt)
{
    double v = mimo_rfile_num(cell, field);
    if (isfinite(v))
        snprintf(buf, size, unit_fmt, v);
    else
        snprintf(buf, size, "-");
}

typedef struct {
    char med[32], mean[32], ros[32], tau[32], ttft[32], speedup[32], note[256];
} cell_text;

/* A cell without numbers: every figure "-", the note says why. */
static void dash_cell(cell_text *t, const char *note)
{
    snprintf(t->med, sizeof t->med, "-");
    snprintf(t->mean, sizeof t->mean, "-");
    snprintf(t->ros, sizeof t->ros, "-");
    snprintf(t->tau, sizeof t->tau, "-");
    snprintf(t->ttft, sizeof t->ttft, "-");
    snprintf(t->speedup, sizeof t->speedup, "-");
    snprintf(t->note, sizeof t->note, "%s", note);
}

static void cell_to_text(const json_t *cell, bool baseline, cell_text *t)
{
    memset(t, 0, sizeof *t);
    if (!json_is_true(json_object_get(cell, "present"))) {
        dash_cell(t, "not in this file");
        return;
    }
    if (json_is_false(json_object_get(cell, "available"))) {
        const char *reason = json_string_value(json_object_get(cell, "reason"));
        char note[sizeof t->note];
        snprintf(note, sizeof note, "unavailable: %s", reason ? reason : "(no reason given)");
        dash_cell(t, note);
        return;
    }
    fmt_num(t->med, sizeof t->med, cell, "decode_tps_median", "%.2f");
    fmt_num(t->mean, sizeof t->mean, cell, "decode_tps_mean", "%.2f");
    fmt_num(t->ros, sizeof t->ros, cell, "decode_tps_ratio_of_sums", "%.2f");
    fmt_num(t->tau, sizeof t->tau, cell, "tau_mean", "%.2f");
    fmt_num(t->ttft, sizeof t->ttft, cell, "ttft_ms_median", "%.2f");
    if (baseline)
        snprintf(t->speedup, sizeof t->speedup, "baseline");
    else
        fmt_num(t->speedup, sizeof t->speedup, cell, "speedup", "%.3fx");
    if (json_is_true(json_object_get(cell, "regression")))
        snprintf(t->note, sizeof t->note, "REGRESSION");
}

static const char *file_label_at(const json_t *cmp, size_t i)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(cmp, "files"), i), "label"));
}

static void print_footer(const json_t *cmp, FILE *f, bool markdown)
{
    const json_t *unmatched = json_object_get(cmp, "unmatched");
    if (json_array_size(unmatched) > 0) {
        fprintf(f, markdown ? "\n## Unmatched configurations\n\n" : "\nunmatched (not in every file):\n");
        size_t i;
        json_t *u;
        json_array_foreach(unmatched, i, u) {
            fprintf(f, markdown ? "- %s, suite %s: missing in" : "  %s, suite %s: missing in",
                    json_string_value(json_object_get(u, "config")), json_string_value(json_object_get(u, "suite")));
            size_t j;
            json_t *m;
            json_array_foreach(json_object_get(u, "missing_in"), j, m)
                fprintf(f, " %s", file_label_at(cmp, (size_t)json_integer_value(m)));
            fprintf(f, "\n");
        }
    }
    double pct = mimo_rfile_num(cmp, "fail_if_slower_pct");
    if (isfinite(pct)) {
        const json_t *regs = json_object_get(cmp, "regressions");
        if (markdown)
            fprintf(f, "\n## Gate\n\n");
        else
            fprintf(f, "\n");
        if (json_array_size(regs) == 0)
            fprintf(f, "gate --fail-if-slower %g: passed (no decode_tps median more than %g%% below the baseline)\n",
                    pct, pct);
        else {
            fprintf(f, "gate --fail-if-slower %g: FAILED, %zu regression(s):\n", pct, json_array_size(regs));
            if (markdown)
                fprintf(f, "\n");
            size_t i;
            json_t *r;
            json_array_foreach(regs, i, r)
                fprintf(f, "%s%s, suite %s, %s: decode_tps median %.2f vs baseline %.2f (%.1f%% slower)\n",
                        markdown ? "- " : "  ", json_string_value(json_object_get(r, "config")),
                        json_string_value(json_object_get(r, "suite")), json_string_value(json_object_get(r, "path")),
                        mimo_rfile_num(r, "decode_tps_median"), mimo_rfile_num(r, "baseline_decode_tps_median"),
                        mimo_rfile_num(r, "slower_pct"));
        }
    }
}

void mimo_compare_print_terminal(const json_t *cmp, FILE *f)
{
    const json_t *files = json_object_get(cmp, "files");
    fprintf(f, "baseline: %s (speedup = decode_tps median / baseline's)\n",
            json_string_value(json_object_get(cmp, "baseline")));
    size_t i;
    json_t *file;
    json_array_foreach(files, i, file) {
        if (json_is_true(json_object_get(file, "incomplete")))
            fprintf(f, "note: %s is marked incomplete (the run was interrupted)\n",
                    json_string_value(json_object_get(file, "path")));
    }
    size_t r;
    json_t *row;
    json_array_foreach(json_object_get(cmp, "rows"), r, row) {
        const char *profile = json_string_value(json_object_get(row, "forced_profile"));
        char forced[300] = "";
        if (profile) {
            char lab[280];
            mimo_forced_label(profile, lab, sizeof lab);
            snprintf(forced, sizeof forced, "  [%s]", lab);
        }
        fprintf(f, "\n== %s | suite %s%s\n", json_string_value(json_object_get(row, "label")),
                json_string_value(json_object_get(row, "suite")), forced);
        fprintf(f, "  %-36s %10s %10s %10s %8s %10s %9s  %s\n", "file", "tps med", "tps mean", "tps sums",
                "tau mean", "ttft ms", "speedup", "");
        size_t c;
        json_t *cell;
        json_array_foreach(json_object_get(row, "cells"), c, cell) {
            cell_text t;
            cell_to_text(cell, c == 0, &t);
            fprintf(f, "  %-36.36s %10s %10s %10s %8s %10s %9s  %s\n",
                    json_string_value(json_object_get(json_array_get(files, c), "label")), t.med, t.mean, t.ros,
                    t.tau, t.ttft, t.speedup, t.note);
        }
    }
    print_footer(cmp, f, false);
}

void mimo_compare_print_markdown(const json_t *cmp, FILE *f)
{
    const json_t *files = json_object_get(cmp, "files");
    fprintf(f, "# mimo-bench compare\n\nFiles (the first is the baseline; speedup = decode_tps median / baseline's):\n\n");
    size_t i;
    json_t *file;
    json_array_foreach(files, i, file) {
        fprintf(f, "%zu. `", i + 1);
        mimo_md_text(f, json_string_value(json_object_get(file, "path")));
        fprintf(f, "`");
        const char *commit = json_string_value(json_object_get(file, "git_commit"));
        const char *gpu = json_string_value(json_object_get(file, "gpu"));
        if (commit)
            fprintf(f, " commit %s", commit);
        if (gpu) {
            fprintf(f, ", ");
            mimo_md_text(f, gpu);
        }
        if (json_is_true(json_object_get(file, "incomplete")))
            fprintf(f, " (incomplete: the run was interrupted)");
        fprintf(f, "\n");
    }
    char *forced = mimo_compare_forced_suffix(cmp);
    fprintf(f, "\n## decode_tps (tokens/s), tau and TTFT per configuration and suite%s\n\n", forced);
    free(forced);
    size_t r;
    json_t *row;
    fprintf(f, "| configuration | suite | file | decode_tps median | decode_tps mean | decode_tps ratio_of_sums | "
               "tau mean | ttft_ms median | speedup | note |\n");
    fprintf(f, "|---|---|---|---:|---:|---:|---:|---:|---:|---|\n");
    json_array_foreach(json_object_get(cmp, "rows"), r, row) {
        const char *profile = json_string_value(json_object_get(row, "forced_profile"));
        size_t c;
        json_t *cell;
        json_array_foreach(json_object_get(row, "cells"), c, cell) {
            cell_text t;
            cell_to_text(cell, c == 0, &t);
            fprintf(f, "| ");
            mimo_md_text(f, json_string_value(json_object_get(row, "label")));
            if (profile) {
                char lab[280];
                mimo_forced_label(profile, lab, sizeof lab);
                fprintf(f, " (");
                mimo_md_text(f, lab);
                fprintf(f, ")");
            }
            fprintf(f, " | ");
            mimo_md_text(f, json_string_value(json_object_get(row, "suite")));
            fprintf(f, " | ");
            mimo_md_text(f, json_string_value(json_object_get(json_array_get(files, c), "label")));
            fprintf(f, " | %s | %s | %s | %s | %s | %s | ", t.med, t.mean, t.ros, t.tau, t.ttft, t.speedup);
            mimo_md_text(f, t.note);
            fprintf(f, " |\n");
        }
    }
    print_footer(cmp, f, true);
}
