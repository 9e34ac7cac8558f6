/* report: plots + index.html/index.md when gnuplot is present, tables only without it, the forced-
 * acceptance label, and the published-figure helpers. */
#include <criterion/criterion.h>

#include "cli.h"
#include "report.h"
#include "results_fixture.h"
#include "support.h"
#include "trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *dir;

static void setup(void)
{
    dir = mimo_test_tmpdir();
    cr_assert_not_null(dir);
}

static void teardown(void)
{
    mimo_test_rmtree(dir);
    free(dir);
}

static bool exists_nonempty(const char *d, const char *name)
{
    char path[8800];
    snprintf(path, sizeof path, "%s/%s", d, name);
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

static char *read_in(const char *d, const char *name)
{
    char path[8800];
    snprintf(path, sizeof path, "%s/%s", d, name);
    return mimo_test_read_file(path, NULL);
}

/* A small Chrome trace of three "rounds" separated by device-to-host copies, for the timeline. */
static void write_trace(const char *path)
{
    mimo_trace_records r;
    mimo_trace_records_init(&r, 1000000);
    uint64_t t = 1000000;
    for (int round = 0; round < 3; round++) {
        const char *names[] = {"rmsnorm_kernel", "attn_decode", "moe_expert_gemv_mxfp4", "lm_head_gemv", "argmax"};
        for (int k = 0; k < 5; k++, t += 3000)
            cr_assert_eq(mimo_trace_records_add(&r, MIMO_TRACE_KERNEL, names[k], t, t + 2500, 0, 7, 0, NULL), 0);
        cr_assert_eq(mimo_trace_records_add(&r, MIMO_TRACE_MEMCPY, "memcpy DtoH", t, t + 1000, 0, 7, 64, NULL), 0);
        t += 2000;
    }
    mimo_error err;
    cr_assert_eq(mimo_trace_write_chrome(&r, path, &err), 0, "%s", err.msg);
    mimo_trace_records_free(&r);
}

TestSuite(report, .init = setup, .fini = teardown, .timeout = 120);

Test(report, plots_and_index_with_gnuplot)
{
    char why[256];
    if (!mimo_gnuplot_available(why, sizeof why))
        cr_skip_test("gnuplot unavailable: %s", why);
    char trace[4200], results[4200], out[4200], args[16384], *log = NULL;
    snprintf(trace, sizeof trace, "%s/trace.json", dir);
    write_trace(trace);
    snprintf(results, sizeof results, "%s/r.json", dir);
    fixture_opts o = {.tps_scale = 1.0, .forced = true, .with_unavailable = true, .trace_file = trace};
    cr_assert_eq(fixture_write(&o, results), 0);
    snprintf(out, sizeof out, "%s/report", dir);
    snprintf(args, sizeof args, "report %s --out %s", results, out);
    int rc = mimo_test_run_bench(args, &log);
    cr_assert_eq(rc, MIMO_EXIT_OK, "rc %d:\n%s", rc, log);
    free(log);

    const char *plots[] = {"tau_hist_coding", "tau_hist_math", "tau_vs_seed", "decode_tps", "kernel_categories",
                           "timeline", "roofline"};
    for (size_t i = 0; i < sizeof plots / sizeof plots[0]; i++) {
        char png[300], svg[300], gp[300], dat[300];
        snprintf(png, sizeof png, "%s.png", plots[i]);
        snprintf(svg, sizeof svg, "%s.svg", plots[i]);
        snprintf(gp, sizeof gp, "%s.gp", plots[i]);
        snprintf(dat, sizeof dat, "%s.dat", plots[i]);
        cr_expect(exists_nonempty(out, png), "%s missing", png);
        cr_expect(exists_nonempty(out, svg), "%s missing", svg);
        cr_expect(exists_nonempty(out, gp), "%s missing", gp);
        cr_expect(exists_nonempty(out, dat), "%s missing", dat);
    }
    char *png = read_in(out, "decode_tps.png");
    cr_assert_not_null(png);
    cr_expect(!memcmp(png, "\x89PNG", 4), "decode_tps.png is not a PNG");
    free(png);
    char *svg = read_in(out, "tau_vs_seed.svg");
    cr_expect(strstr(svg, "<svg") != NULL, "tau_vs_seed.svg is not an SVG");
    free(svg);

    char *html = read_in(out, "index.html");
    cr_assert_not_null(html, "index.html missing");
    cr_expect(strstr(html, "data:image/png;base64,") != NULL, "plots must be embedded");
    cr_expect(strstr(html, "src=\"http") == NULL && strstr(html, "href=\"http") == NULL &&
              strstr(html, "<link") == NULL && strstr(html, "<script") == NULL, "index.html must be self-contained");
    cr_expect(strstr(html, "acceptance: forced (profile mimo-published), not measured") != NULL);
    free(html);

    char *md = read_in(out, "index.md");
    cr_assert_not_null(md, "index.md missing");
    cr_expect(strstr(md, "![") != NULL && strstr(md, "tau_hist_coding.png") != NULL, "index.md must show the plots");
    cr_expect(strstr(md, "tau histogram, suite coding (fraction of rounds) — acceptance: forced (profile "
                         "mimo-published), not measured") != NULL, "tau titles must carry the forced label");
    cr_expect(strstr(md, "not a --shard run") != NULL, "the skipped projection plot must say why");
    cr_expect(strstr(md, "the persistent kernel is not built yet") != NULL, "unavailable configs must be listed");
    cr_expect(strstr(md, "6.30") != NULL, "the seed's figures must be shown");
    /* the category stack takes exclusive times where the file has them: (900 + 360) / 40 rounds, not the
     * overlapping durations' (3600 + 1800) / 40 */
    cr_expect(strstr(md, "31.5") != NULL && strstr(md, "135.0") == NULL, "categories must use exclusive_us");
    free(md);

    char *gp = read_in(out, "tau_hist_coding.gp");
    cr_expect(strstr(gp, "acceptance: forced (profile mimo-published), not measured") != NULL,
              "the plot title itself must carry the forced label");
    free(gp);
}

Test(report, tables_only_without_gnuplot)
{
    char results[4200], out[4200], args[16384], *log = NULL;
    snprintf(results, sizeof results, "%s/r.json", dir);
    fixture_opts o = {.tps_scale = 1.0, .forced = false};
    cr_assert_eq(fixture_write(&o, results), 0);
    snprintf(out, sizeof out, "%s/report", dir);
    snprintf(args, sizeof args, "report %s --out %s", results, out);
    cr_assert_eq(setenv("MIMO_NO_GNUPLOT", "1", 1), 0);
    int rc = mimo_test_run_bench(args, &log);
    unsetenv("MIMO_NO_GNUPLOT");
    cr_assert_eq(rc, MIMO_EXIT_OK, "rc %d:\n%s", rc, log);
    cr_expect(strstr(log, "plots skipped") != NULL, "stderr must say plots were skipped:\n%s", log);
    free(log);
    cr_expect(!exists_nonempty(out, "decode_tps.png"), "no plots without gnuplot");
    cr_expect(exists_nonempty(out, "index.html"));
    char *md = read_in(out, "index.md");
    cr_assert_not_null(md);
    cr_expect(strstr(md, "Plots skipped: MIMO_NO_GNUPLOT=1") != NULL, "index.md must say why:\n%s", md);
    cr_expect(strstr(md, "| configuration | suite | requests |") != NULL, "tables are still written");
    cr_expect(strstr(md, "not measured") == NULL, "measured results must not be labelled forced");
    free(md);
}

Test(report, several_files_and_bad_input)
{
    char a[4200], b[4200], out[4200], args[16384], *log = NULL;
    snprintf(a, sizeof a, "%s/a.json", dir);
    snprintf(b, sizeof b, "%s/b.json", dir);
    cr_assert_eq(fixture_write(&(fixture_opts){.tps_scale = 1.0}, a), 0);
    cr_assert_eq(fixture_write(&(fixture_opts){.tps_scale = 0.5, .only_ar = true}, b), 0);
    snprintf(out, sizeof out, "%s/two", dir);
    snprintf(args, sizeof args, "report %s %s --out %s", a, b, out);
    setenv("MIMO_NO_GNUPLOT", "1", 1);
    int rc = mimo_test_run_bench(args, &log);
    unsetenv("MIMO_NO_GNUPLOT");
    cr_assert_eq(rc, MIMO_EXIT_OK, "%s", log);
    free(log);
    char *md = read_in(out, "index.md");
    cr_expect(strstr(md, "File 2:") != NULL);
    cr_expect(strstr(md, "Files side by side") != NULL);
    cr_expect(strstr(md, "0.500x") != NULL, "speedup of the half-speed file:\n%s", md);
    cr_expect(strstr(md, "no configuration ran DFlash") != NULL, "AR-only file: tau plots skipped with a reason");
    free(md);

    snprintf(args, sizeof args, "report %s --out %s/x", b, dir);
    cr_expect_eq(mimo_test_run_bench(args, NULL), MIMO_EXIT_OK);
    snprintf(args, sizeof args, "report %s", a);
    cr_expect_eq(mimo_test_run_bench(args, NULL), MIMO_EXIT_USAGE, "--out is required");
    fixture_opts v2 = {.tps_scale = 1.0, .schema_version = 7};
    cr_assert_eq(fixture_write(&v2, b), 0);
    snprintf(args, sizeof args, "report %s --out %s/y", b, dir);
    cr_expect_eq(mimo_test_run_bench(args, &log), MIMO_EXIT_BAD_INPUT);
    cr_expect(strstr(log, "b.json") != NULL, "%s", log);
    free(log);
}

Test(report, shard_projection_with_its_assumptions)
{
    char why[256];
    if (!mimo_gnuplot_available(why, sizeof why))
        cr_skip_test("gnuplot unavailable: %s", why);
    char results[4200], out[4200], args[16384], *log = NULL;
    snprintf(results, sizeof results, "%s/shard.json", dir);
    cr_assert_eq(fixture_write(&(fixture_opts){.tps_scale = 1.0, .shard = true}, results), 0);
    snprintf(out, sizeof out, "%s/report", dir);
    snprintf(args, sizeof args, "report %s --out %s", results, out);
    int rc = mimo_test_run_bench(args, &log);
    cr_assert_eq(rc, MIMO_EXIT_OK, "%s", log);
    free(log);
    cr_expect(exists_nonempty(out, "projection.png") && exists_nonempty(out, "projection.svg"));
    char *md = read_in(out, "index.md");
    cr_expect(strstr(md, "projection, not a measurement") != NULL, "the projection must be labelled as such");
    cr_expect(strstr(md, "2 all-reduces per layer x 10 us each") != NULL, "its comm model must be stated");
    cr_expect(strstr(md, "1016.9") != NULL, "projected node TPS 6 / 5.9 ms = 1016.9 tokens/s must be shown");
    free(md);
}

/* Valid skeleton, odd contents: wrong types, nulls, empty objects, absurd histograms. Reading must
 * never crash or read out of bounds (run under ASan in the sanitizer build); odd values show as "-". */
Test(report, odd_values_do_not_crash_report_or_compare)
{
    const char *odd =
        "{\"schema_version\": 1, \"tool\": [], \"environment\": null, \"command\": 7, \"model\": {\"shard\": \"x\"},"
        " \"incomplete\": true, \"configs\": ["
        "  {\"config\": {}, \"suites\": {\"coding\": {\"tau\": {\"histogram\": \"x\"}, \"decode_tps\": null}}},"
        "  {\"config\": {\"dflash\": true, \"block\": \"8\", \"acceptance\": {\"mode\": \"forced\"}},"
        "   \"suites\": {\"math\": {\"tau\": {\"mean\": \"six\", \"histogram\": [1e300, -5, null, \"a\", 3],"
        "                                    \"histogram_tau_from\": 1},"
        "                           \"decode_tps\": {\"median\": -1, \"p5\": null}}, \"\": {}},"
        "   \"kernels\": {\"categories\": [], \"kernels\": {}, \"trace_file\": \"/nonexistent/trace.json\"},"
        "   \"roofline\": {\"roofline_ms\": \"fast\"}, \"projection\": 12},"
        "  {\"config\": {\"dflash\": true}, \"available\": false}"
        "]}";
    char path[4200], args[16384], *log = NULL;
    snprintf(path, sizeof path, "%s/odd.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(odd, f);
    fclose(f);
    snprintf(args, sizeof args, "report %s --out %s/odd-report", path, dir);
    int rc = mimo_test_run_bench(args, &log);
    cr_expect_eq(rc, MIMO_EXIT_OK, "rc %d:\n%s", rc, log);
    free(log);
    snprintf(args, sizeof args, "compare %s %s --fail-if-slower 5 --out %s/odd-cmp", path, path, dir);
    rc = mimo_test_run_bench(args, &log);
    cr_expect_eq(rc, MIMO_EXIT_OK, "rc %d:\n%s", rc, log);
    cr_expect(strstr(log, "incomplete") != NULL, "an interrupted run must be pointed out:\n%s", log);
    free(log);
}

Test(report, published_figures)
{
    /* DFLASH.md: mean 6.30 at B=8 -> alpha 0.9304; 5.56 -> 0.8927; 4.29 -> 0.8102 */
    cr_expect_float_eq(mimo_alpha_for_mean(6.30, 8), 0.9304, 5e-4);
    cr_expect_float_eq(mimo_alpha_for_mean(5.56, 8), 0.8927, 5e-4);
    cr_expect_float_eq(mimo_alpha_for_mean(4.29, 8), 0.8102, 5e-4);
    cr_expect(isnan(mimo_alpha_for_mean(9.0, 8)), "a mean above the block is impossible");
    cr_expect_float_eq(mimo_published_tau("coding"), 6.30, 1e-12);
    cr_expect(isnan(mimo_published_tau("chat")));
    const char *suites[] = {"coding", "math", "agent"};
    for (int s = 0; s < 3; s++) {
        double mean = mimo_published_tau(suites[s]);
        double p[8], sum = 0, e = 0;
        mimo_truncated_geometric(mimo_alpha_for_mean(mean, 8), 8, p);
        for (int t = 1; t <= 8; t++) {
            cr_expect(p[t - 1] >= 0);
            sum += p[t - 1];
            e += t * p[t - 1];
        }
        cr_expect_float_eq(sum, 1.0, 1e-9, "%s: probabilities sum to %g", suites[s], sum);
        cr_expect_float_eq(e, mean, 1e-6, "%s: the histogram's mean %g must be the published %g", suites[s], e, mean);
    }
}

Test(report, gnuplot_quote_doubles_quotes)
{
    char *q = mimo_gnuplot_quote("it's");
    cr_expect_str_eq(q, "'it''s'");
    free(q);
}
