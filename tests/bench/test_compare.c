/* compare: the side-by-side table and the CI gate (--fail-if-slower), on hand-made results files. */
#include <criterion/criterion.h>

#include "cli.h"
#include "compare.h"
#include "results_fixture.h"
#include "results_read.h"
#include "support.h"

#include <stdlib.h>
#include <string.h>

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

/* Writes a fixture to DIR/name and returns the path (static buffer per call site is not enough: malloc'd). */
static char *write_fixture(const char *name, fixture_opts o)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    cr_assert_eq(fixture_write(&o, path), 0, "cannot write %s", path);
    return path;
}

static int run_compare(const char *args, char **out)
{
    return mimo_test_run_bench(args, out);
}

TestSuite(compare, .init = setup, .fini = teardown, .timeout = 60);

Test(compare, identical_files_pass_the_gate)
{
    char *a = write_fixture("a.json", (fixture_opts){.tps_scale = 1.0});
    char args[8192], *out = NULL;
    snprintf(args, sizeof args, "compare %s %s --fail-if-slower 1", a, a);
    int rc = run_compare(args, &out);
    cr_expect_eq(rc, MIMO_EXIT_OK, "rc %d, output:\n%s", rc, out);
    cr_expect(strstr(out, "passed") != NULL, "gate verdict missing:\n%s", out);
    cr_expect(strstr(out, "1.000x") != NULL, "speedup of identical files should be 1.000x:\n%s", out);
    free(out);
    free(a);
}

Test(compare, twenty_percent_slower_trips_ten_but_not_thirty)
{
    char *a = write_fixture("base.json", (fixture_opts){.tps_scale = 1.0});
    char *b = write_fixture("slow.json", (fixture_opts){.tps_scale = 0.8});
    char args[8192], *out = NULL;
    snprintf(args, sizeof args, "compare %s %s --fail-if-slower 10", a, b);
    int rc = run_compare(args, &out);
    cr_expect_eq(rc, MIMO_EXIT_REGRESSION, "rc %d, output:\n%s", rc, out);
    cr_expect(strstr(out, "REGRESSION") != NULL, "regressed rows must be marked:\n%s", out);
    cr_expect(strstr(out, "20.0% slower") != NULL, "slowdown must be quantified:\n%s", out);
    free(out);
    snprintf(args, sizeof args, "compare %s %s --fail-if-slower 30", a, b);
    rc = run_compare(args, &out);
    cr_expect_eq(rc, MIMO_EXIT_OK, "20%% slower must pass a 30%% gate; rc %d:\n%s", rc, out);
    cr_expect(strstr(out, "0.800x") != NULL, "speedup 0.800x expected:\n%s", out);
    free(out);
    /* Without a gate a slowdown is reported but never fails. */
    snprintf(args, sizeof args, "compare %s %s", a, b);
    cr_expect_eq(run_compare(args, NULL), MIMO_EXIT_OK);
    free(a);
    free(b);
}

Test(compare, faster_later_file_passes)
{
    char *a = write_fixture("base.json", (fixture_opts){.tps_scale = 1.0});
    char *b = write_fixture("fast.json", (fixture_opts){.tps_scale = 1.5});
    char args[8192], *out = NULL;
    snprintf(args, sizeof args, "compare %s %s --fail-if-slower 0", a, b);
    int rc = run_compare(args, &out);
    cr_expect_eq(rc, MIMO_EXIT_OK, "rc %d:\n%s", rc, out);
    cr_expect(strstr(out, "1.500x") != NULL, "speedup 1.500x expected:\n%s", out);
    free(out);
    free(a);
    free(b);
}

Test(compare, wrong_schema_version_is_bad_input_naming_the_file)
{
    char *a = write_fixture("a.json", (fixture_opts){.tps_scale = 1.0});
    char *b = write_fixture("future.json", (fixture_opts){.tps_scale = 1.0, .schema_version = 2});
    char args[8192], *out = NULL;
    snprintf(args, sizeof args, "compare %s %s", a, b);
    int rc = run_compare(args, &out);
    cr_expect_eq(rc, MIMO_EXIT_BAD_INPUT, "rc %d:\n%s", rc, out);
    cr_expect(strstr(out, "future.json") != NULL, "the file at fault must be named:\n%s", out);
    cr_expect(strstr(out, "schema_version 2") != NULL, "the reason must be given:\n%s", out);
    free(out);
    free(a);
    free(b);
}

Test(compare, malformed_and_missing_files_are_bad_input)
{
    char *a = write_fixture("a.json", (fixture_opts){.tps_scale = 1.0});
    char bad[4200], args[8192], *out = NULL;
    snprintf(bad, sizeof bad, "%s/broken.json", dir);
    FILE *f = fopen(bad, "w");
    fputs("{\"schema_version\": 1, \"configs\": [", f);
    fclose(f);
    snprintf(args, sizeof args, "compare %s %s", a, bad);
    cr_expect_eq(run_compare(args, &out), MIMO_EXIT_BAD_INPUT);
    cr_expect(strstr(out, "broken.json") != NULL, "%s", out);
    free(out);
    /* valid JSON, wrong shape */
    f = fopen(bad, "w");
    fputs("{\"schema_version\": 1, \"configs\": [{\"suites\": {}}]}", f);
    fclose(f);
    cr_expect_eq(run_compare(args, &out), MIMO_EXIT_BAD_INPUT);
    cr_expect(strstr(out, "configs[0]") != NULL, "%s", out);
    free(out);
    snprintf(args, sizeof args, "compare %s %s/does-not-exist.json", a, dir);
    cr_expect_eq(run_compare(args, NULL), MIMO_EXIT_BAD_INPUT);
    free(a);
}

Test(compare, usage_errors)
{
    char *a = write_fixture("a.json", (fixture_opts){.tps_scale = 1.0});
    char args[8192];
    snprintf(args, sizeof args, "compare %s", a);
    cr_expect_eq(run_compare(args, NULL), MIMO_EXIT_USAGE, "one file is not a comparison");
    snprintf(args, sizeof args, "compare %s %s --fail-if-slower abc", a, a);
    cr_expect_eq(run_compare(args, NULL), MIMO_EXIT_USAGE);
    snprintf(args, sizeof args, "compare %s %s --fail-if-slower -5", a, a);
    cr_expect_eq(run_compare(args, NULL), MIMO_EXIT_USAGE);
    snprintf(args, sizeof args, "compare %s %s --bogus", a, a);
    cr_expect_eq(run_compare(args, NULL), MIMO_EXIT_USAGE);
    free(a);
}

Test(compare, unmatched_configs_are_listed_and_out_dir_written)
{
    char *a = write_fixture("a.json", (fixture_opts){.tps_scale = 1.0, .forced = true});
    char *b = write_fixture("b.json", (fixture_opts){.tps_scale = 1.0, .forced = true, .with_unavailable = true});
    char args[8192], *out = NULL, outdir[4200];
    snprintf(outdir, sizeof outdir, "%s/cmp", dir);
    snprintf(args, sizeof args, "compare %s %s --fail-if-slower 5 --out %s", a, b, outdir);
    int rc = run_compare(args, &out);
    cr_expect_eq(rc, MIMO_EXIT_OK, "an unmatched config is not a regression; rc %d:\n%s", rc, out);
    cr_expect(strstr(out, "unmatched") != NULL, "unmatched configs must be listed:\n%s", out);
    cr_expect(strstr(out, "exec=persistent") != NULL, "%s", out);
    cr_expect(strstr(out, "acceptance: forced (profile mimo-published), not measured") != NULL,
              "forced acceptance must be labelled where tau is shown:\n%s", out);
    free(out);

    char path[4300];
    snprintf(path, sizeof path, "%s/compare.md", outdir);
    char *md = mimo_test_read_file(path, NULL);
    cr_assert_not_null(md, "compare.md missing");
    cr_expect(strstr(md, "| configuration | suite |") != NULL);
    cr_expect(strstr(md, "Unmatched") != NULL);
    cr_expect(strstr(md, "per configuration and suite — acceptance: forced (profile mimo-published), not measured") !=
                  NULL, "the title of the table showing tau must carry the forced label");
    free(md);
    snprintf(path, sizeof path, "%s/compare.json", outdir);
    json_error_t jerr;
    json_t *cmp = json_load_file(path, 0, &jerr);
    cr_assert_not_null(cmp, "compare.json invalid: %s", jerr.text);
    /* 8 configurations x 2 suites matched + the unavailable one */
    cr_expect_eq(json_array_size(json_object_get(cmp, "rows")), 17);
    cr_expect_eq(json_array_size(json_object_get(cmp, "unmatched")), 1);
    cr_expect_eq(json_array_size(json_object_get(cmp, "regressions")), 0);
    json_decref(cmp);
    free(a);
    free(b);
}

/* The library directly: regressions are counted per matched row and only past the threshold. */
Test(compare, build_counts_regressions_per_row)
{
    fixture_opts base = {.tps_scale = 1.0}, slow = {.tps_scale = 0.85};
    json_t *roots[3] = {fixture_results(&base), fixture_results(&slow), fixture_results(&base)};
    const char *paths[3] = {"base.json", "slow.json", "same.json"};
    json_t *cmp = mimo_compare_build(paths, roots, 3, 10.0);
    /* every one of the 16 rows of slow.json is 15% slower; same.json none */
    cr_expect_eq(mimo_compare_n_regressions(cmp), 16);
    json_t *row = json_array_get(json_object_get(cmp, "rows"), 0);
    double speedup = mimo_rfile_num(json_array_get(json_object_get(row, "cells"), 1), "speedup");
    cr_expect_float_eq(speedup, 0.85, 1e-9);
    json_decref(cmp);
    cmp = mimo_compare_build(paths, roots, 3, 20.0);
    cr_expect_eq(mimo_compare_n_regressions(cmp), 0);
    json_decref(cmp);
    cmp = mimo_compare_build(paths, roots, 3, NAN);
    cr_expect_eq(mimo_compare_n_regressions(cmp), 0, "no gate, no regressions");
    json_decref(cmp);
    for (int i = 0; i < 3; i++)
        json_decref(roots[i]);
}

Test(compare, config_key_ignores_block_without_dflash_and_profile_when_measured)
{
    json_t *e1 = json_pack("{s:{s:s, s:b, s:b, s:s, s:i, s:{s:s, s:n}}}", "config", "backend", "cpu", "fp4", 1,
                           "dflash", 0, "exec", "eager", "block", 1, "acceptance", "mode", "measured", "profile");
    json_t *e2 = json_pack("{s:{s:s, s:b, s:b, s:s, s:i, s:{s:s, s:n}}}", "config", "backend", "cpu", "fp4", 1,
                           "dflash", 0, "exec", "eager", "block", 16, "acceptance", "mode", "measured", "profile");
    json_t *e3 = json_pack("{s:{s:s, s:b, s:b, s:s, s:i, s:{s:s, s:s}}}", "config", "backend", "cpu", "fp4", 1,
                           "dflash", 1, "exec", "eager", "block", 8, "acceptance", "mode", "forced", "profile",
                           "mean:6.3");
    char *k1 = mimo_rfile_config_key(e1), *k2 = mimo_rfile_config_key(e2), *k3 = mimo_rfile_config_key(e3);
    cr_expect_str_eq(k1, k2);
    cr_expect_str_neq(k1, k3);
    cr_expect(strstr(k3, "forced:mean:6.3") != NULL, "%s", k3);
    free(k1);
    free(k2);
    free(k3);
    json_decref(e1);
    json_decref(e2);
    json_decref(e3);
}
