/* End to end on the cpu: `mimo-bench run` of a built-in suite on the tiny preset, then `validate`.
 * Small on purpose (--requests 2 --max-new 8) so the whole binary stays well under a minute. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "support.h"

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

static json_t *load(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    cr_assert_not_null(j, "%s: %s", path, je.text);
    return j;
}

TestSuite(run_e2e, .init = setup, .fini = teardown, .timeout = 120);

Test(run_e2e, tiny_coding_run_then_validate)
{
    char args[1024], path[512];
    char *out = NULL;
    snprintf(path, sizeof path, "%s/r.json", dir);
    snprintf(args, sizeof args, "run --preset tiny --suite coding --requests 2 --max-new 8 --out '%s'", path);
    int rc = mimo_test_run_bench(args, &out);
    cr_assert_eq(rc, 0, "run failed (%d):\n%s", rc, out);
    cr_assert(strstr(out, "[config 1/1]") != NULL, "progress lines expected on stderr:\n%s", out);
    cr_assert(strstr(out, "coding") != NULL, "summary table expected:\n%s", out);
    free(out);

    snprintf(args, sizeof args, "validate '%s'", path);
    rc = mimo_test_run_bench(args, &out);
    cr_assert_eq(rc, 0, "validate failed (%d):\n%s", rc, out);
    free(out);

    json_t *doc = load(path);
    cr_assert(json_is_false(json_object_get(doc, "incomplete")));
    json_t *configs = json_object_get(doc, "configs");
    cr_assert_eq(json_array_size(configs), 1);
    json_t *entry = json_array_get(configs, 0);
    cr_assert(json_is_true(json_object_get(entry, "available")), "%s",
              json_string_value(json_object_get(entry, "reason")));
    json_t *cfg = json_object_get(entry, "config");
    /* synthetic weights: DFlash timing replays default to the published acceptance */
    cr_assert(json_is_true(json_object_get(cfg, "dflash")));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(cfg, "acceptance"), "mode")), "forced");
    json_t *reqs = json_object_get(entry, "requests");
    cr_assert_eq(json_array_size(reqs), 2);
    long emitted = 0, rounds = 0;
    size_t i, k;
    json_t *r, *rd;
    json_array_foreach(reqs, i, r) {
        cr_assert_str_eq(json_string_value(json_object_get(r, "suite")), "coding");
        /* synthetic runs ignore stop tokens: exactly --max-new tokens */
        cr_assert_eq(json_integer_value(json_object_get(r, "output_tokens")), 8);
        long req_emitted = 0;
        json_array_foreach(json_object_get(r, "rounds"), k, rd) {
            req_emitted += json_integer_value(json_object_get(rd, "emitted"));
            rounds++;
        }
        /* the first token comes from the prefill, every later one from a round */
        cr_assert_eq(req_emitted, 7);
        emitted += req_emitted;
    }
    json_t *coding = json_object_get(json_object_get(entry, "suites"), "coding");
    cr_assert_not_null(coding);
    cr_assert_eq(json_integer_value(json_object_get(coding, "rounds")), rounds);
    cr_assert_float_eq(json_number_value(json_object_get(json_object_get(coding, "tau"), "mean")),
                       (double)emitted / rounds, 1e-9);
    json_t *roof = json_object_get(entry, "roofline");
    cr_assert_gt(json_integer_value(json_object_get(roof, "bytes_per_step")), 0);
    cr_assert(json_is_null(json_object_get(roof, "calibration_gbps")));
    json_decref(doc);
}

Test(run_e2e, chat_states_which_forced_figure_it_uses)
{
    char args[1024], path[512];
    char *out = NULL;
    snprintf(path, sizeof path, "%s/c.json", dir);
    snprintf(args, sizeof args, "run --preset tiny --suite chat --requests 1 --max-new 4 --out '%s'", path);
    int rc = mimo_test_run_bench(args, &out);
    cr_assert_eq(rc, 0, "run failed (%d):\n%s", rc, out);
    free(out);
    json_t *doc = load(path);
    json_t *chat = json_object_get(json_object_get(json_array_get(json_object_get(doc, "configs"), 0), "suites"), "chat");
    json_t *prof = json_object_get(chat, "acceptance_profile");
    cr_assert_not_null(prof, "the forced profile of each suite is recorded");
    cr_assert(strstr(json_string_value(json_object_get(prof, "note")), "agent") != NULL);
    json_decref(doc);
}

/* --temperature / --top-k / --top-p reach the results file as given (config of HARNESS.md). */
Test(run_e2e, sampling_flags_are_recorded)
{
    char args[1024], path[512];
    char *out = NULL;
    snprintf(path, sizeof path, "%s/s.json", dir);
    snprintf(args, sizeof args,
             "run --preset tiny --suite math --requests 1 --max-new 4 --temperature 0.7 --top-k 5 --top-p 0.85 --out '%s'",
             path);
    int rc = mimo_test_run_bench(args, &out);
    cr_assert_eq(rc, 0, "run failed (%d):\n%s", rc, out);
    free(out);
    json_t *doc = load(path);
    json_t *cfg = json_object_get(json_array_get(json_object_get(doc, "configs"), 0), "config");
    cr_assert_float_eq(json_number_value(json_object_get(cfg, "temperature")), 0.7, 1e-9);
    cr_assert_eq(json_integer_value(json_object_get(cfg, "top_k")), 5);
    cr_assert_float_eq(json_number_value(json_object_get(cfg, "top_p")), 0.85, 1e-9);
    json_decref(doc);
}

Test(run_e2e, matrix_records_unavailable_configurations)
{
    char args[1024], path[512];
    char *out = NULL;
    snprintf(path, sizeof path, "%s/m.json", dir);
    snprintf(args, sizeof args, "run --preset tiny --suite math --requests 1 --max-new 4 --matrix --out '%s'", path);
    int rc = mimo_test_run_bench(args, &out);
    cr_assert_eq(rc, 0, "run failed (%d):\n%s", rc, out);
    free(out);
    json_t *doc = load(path);
    json_t *configs = json_object_get(doc, "configs");
    cr_assert_eq(json_array_size(configs), 12);   /* fp4 x dflash x exec */
    int available = 0;
    size_t i;
    json_t *e;
    json_array_foreach(configs, i, e) {
        const char *exec = json_string_value(json_object_get(json_object_get(e, "config"), "exec"));
        bool ok = json_is_true(json_object_get(e, "available"));
        available += ok;
        cr_assert_eq(ok, strcmp(exec, "eager") == 0, "config %zu (%s)", i, exec);
        if (ok) {   /* the cpu backend verifies on the host */
            const char *rounds = json_string_value(json_object_get(json_object_get(e, "config"), "rounds"));
            cr_assert(rounds && !strcmp(rounds, "host"), "config %zu: rounds %s", i, rounds ? rounds : "(missing)");
        }
        if (!ok)
            cr_assert(json_is_string(json_object_get(e, "reason")));
    }
    cr_assert_eq(available, 4);
    json_decref(doc);
    snprintf(args, sizeof args, "validate '%s'", path);
    cr_assert_eq(mimo_test_run_bench(args, NULL), 0);
}

Test(run_e2e, sigint_writes_a_valid_incomplete_file)
{
    char cmd[4096], path[512], args[700];
    snprintf(path, sizeof path, "%s/i.json", dir);
    /* many repeats: the run is still going when SIGINT arrives. The signal is sent only once the
     * progress line shows a request under way (a fixed delay raced with setup on a loaded machine,
     * where an interrupt before the first request rightly writes nothing). */
    snprintf(cmd, sizeof cmd,
             "%s run --preset tiny --suite chat --requests 1 --max-new 8 --repeats 1000000 --out '%s' "
             ">/dev/null 2>'%s.err' & pid=$!; "
             "for i in $(seq 1200); do grep -q 'chat 1/1' '%s.err' 2>/dev/null && break; sleep 0.05; done; "
             "kill -INT $pid; wait $pid",
             MIMO_BENCH_BIN, path, path, path);
    int status = system(cmd);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 130);
    json_t *doc = load(path);
    cr_assert(json_is_true(json_object_get(doc, "incomplete")));
    json_decref(doc);
    snprintf(args, sizeof args, "validate '%s'", path);
    cr_assert_eq(mimo_test_run_bench(args, NULL), 0);
}

Test(run_e2e, errors_exit_with_documented_codes)
{
    char args[1024];
    char *out = NULL;
    cr_assert_eq(mimo_test_run_bench("run --suite coding", &out), 2, "%s", out);   /* no model */
    free(out);
    cr_assert_eq(mimo_test_run_bench("run --preset tiny --exec sideways", &out), 2, "%s", out);
    free(out);
    snprintf(args, sizeof args, "run --preset tiny --suite coding --requests 1 --max-new 2 --out '%s/no/such/dir/r.json'", dir);
    cr_assert_eq(mimo_test_run_bench(args, &out), 1, "%s", out);
    cr_assert(strstr(out, "not writable") != NULL, "%s", out);
    free(out);
    snprintf(args, sizeof args, "validate '%s/absent.json'", dir);
    cr_assert_eq(mimo_test_run_bench(args, &out), 3, "%s", out);
    free(out);

    /* a results file of another schema version: a clear message and exit 3 */
    char path[512];
    snprintf(path, sizeof path, "%s/v2.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("{\"schema_version\": 2, \"configs\": []}\n", f);
    fclose(f);
    snprintf(args, sizeof args, "validate '%s'", path);
    cr_assert_eq(mimo_test_run_bench(args, &out), 3, "%s", out);
    cr_assert(strstr(out, "schema_version 2") != NULL, "%s", out);
    free(out);
}
