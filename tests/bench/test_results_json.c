/* The results writers against results/schema.json (through the project's own validator), the
 * null-with-reason rule, the atomic writer, and schema_version checks. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "environment.h"
#include "results_json.h"
#include "roofline.h"
#include "schema_check.h"
#include "support.h"

static json_t *model_block(void)
{
    json_t *m = json_pack("{s:s, s:s, s:i, s:s, s:{s:i, s:i}, s:{s:i, s:i}, s:{s:i, s:i}}",
                          "source", "preset", "preset", "tiny", "seed", 0, "config_digest", "fnv1a64:0",
                          "params", "total", 1000, "active", 100, "bytes_by_format", "bf16", 10, "mxfp4", 20,
                          "shard", "rank", 0, "count", 1);
    cr_assert_not_null(m);
    return m;
}

/* A complete document made by the writers: one DFlash config with two requests, one of which has a
 * single output token (so tpot/decode_tps are null with reasons). */
static json_t *build_document(void)
{
    char *argv[] = {"run", "--preset", "tiny", "--out", "a b.json"};
    json_t *root = mimo_results_new(5, argv);
    json_object_set_new(root, "environment", mimo_environment_collect(-1));
    json_object_set_new(root, "model", model_block());

    static const mimo_round_record rounds[] = {
        {.drafted = 7, .accepted = 5, .emitted = 6, .t_draft_us = 10, .t_verify_us = 20, .t_total_us = 31},
        {.drafted = 7, .accepted = 7, .emitted = 8, .t_draft_us = 11, .t_verify_us = 21, .t_total_us = 33}};
    mimo_request_record reqs[2] = {
        {.suite = "coding", .id = "c1", .prompt_tokens = 12, .output_tokens = 15, .ttft_ms = 3, .decode_ms = 0.064,
         .e2e_ms = 3.064, .rounds = rounds, .n_rounds = 2, .stop_reason = "max_tokens"},
        {.suite = "coding", .id = "c2", .prompt_tokens = 9, .output_tokens = 1, .ttft_ms = 2, .decode_ms = 0,
         .e2e_ms = 2, .rounds = NULL, .n_rounds = 0, .stop_reason = "stop_token"}};

    json_t *entry = json_object();
    json_t *config = json_pack("{s:s, s:b, s:b, s:s, s:i, s:f, s:i, s:f, s:i, s:{s:s, s:s}}", "backend", "cpu", "fp4", 1,
                               "dflash", 1, "exec", "eager", "block", 8, "temperature", 0.0, "top_k", 0, "top_p", 1.0,
                               "seed", 0, "acceptance", "mode", "forced", "profile", "mimo-published");
    cr_assert_not_null(config);
    json_object_set_new(entry, "config", config);
    json_object_set_new(entry, "available", json_true());
    json_t *ra = json_array();
    for (int i = 0; i < 2; i++)
        json_array_append_new(ra, mimo_results_request(&reqs[i]));
    json_object_set_new(entry, "requests", ra);
    mimo_suite_metrics m;
    mimo_error err;
    cr_assert_eq(mimo_suite_metrics_compute(reqs, 2, 8, &m, &err), 0, "%s", err.msg);
    json_t *suites = json_object();
    json_object_set_new(suites, "coding", mimo_results_suite(&m));
    json_object_set_new(entry, "suites", suites);
    mimo_step_bytes sb = {.attention = 100, .experts = 200, .total = 300, .expected_experts_per_layer = 2.5};
    json_object_set_new(entry, "roofline", mimo_roofline_json(&sb, 8, 20, 4, NAN, "none",
                                                              "no GPU calibration on the cpu backend", 0.032));
    json_object_set_new(entry, "kernels", json_pack("{s:b, s:s}", "available", 0, "reason", "run without --trace"));
    json_object_set_new(entry, "timing", json_pack("{s:s}", "pass", "timed"));
    mimo_json_set_number(entry, "harness_overhead_fraction", 0.01, NULL);
    json_array_append_new(json_object_get(root, "configs"), entry);

    /* an unavailable configuration is recorded too */
    json_t *un = json_object();
    json_t *c2 = json_deep_copy(config);
    json_object_set_new(c2, "exec", json_string("persistent"));
    json_object_set_new(un, "config", c2);
    json_object_set_new(un, "available", json_false());
    json_object_set_new(un, "reason", json_string("not built yet"));
    json_array_append_new(json_object_get(root, "configs"), un);
    return root;
}

static void assert_valid(const json_t *doc)
{
    mimo_schema_report rep;
    mimo_error err = {""};
    int rc = mimo_results_validate_json(doc, &rep, &err);
    cr_assert_eq(rc, 0, "validation failed: %s\n%s", err.msg, rep.all);
}

Test(results_json, writer_output_validates)
{
    json_t *doc = build_document();
    assert_valid(doc);
    json_decref(doc);
}

Test(results_json, non_finite_becomes_null_with_reason)
{
    json_t *doc = build_document();
    json_t *entry = json_array_get(json_object_get(doc, "configs"), 0);
    json_t *one_token = json_array_get(json_object_get(entry, "requests"), 1);
    cr_assert(json_is_null(json_object_get(one_token, "tpot_ms")));
    cr_assert(json_is_string(json_object_get(one_token, "tpot_ms_null_reason")));
    cr_assert(json_is_null(json_object_get(one_token, "decode_tps")));
    cr_assert(json_is_string(json_object_get(one_token, "decode_tps_null_reason")));
    json_t *roof = json_object_get(entry, "roofline");
    cr_assert(json_is_null(json_object_get(roof, "calibration_gbps")));
    cr_assert_str_eq(json_string_value(json_object_get(roof, "calibration_gbps_null_reason")),
                     "no GPU calibration on the cpu backend");
    cr_assert(json_is_null(json_object_get(roof, "efficiency")));
    /* the finite request keeps real numbers: 14 tokens after the first in 0.064 ms */
    json_t *first = json_array_get(json_object_get(entry, "requests"), 0);
    cr_assert_float_eq(json_real_value(json_object_get(first, "decode_tps")), 14 / 0.000064, 1e-3);

    json_t *o = json_object();
    double v[] = {1, NAN, INFINITY};
    mimo_json_set_number(o, "x", INFINITY, "overflow");
    mimo_json_set_number_array(o, "arr", v, 3, NULL);
    cr_assert(json_is_null(json_object_get(o, "x")));
    cr_assert_str_eq(json_string_value(json_object_get(o, "x_null_reason")), "overflow");
    cr_assert(json_is_null(json_array_get(json_object_get(o, "arr"), 1)));
    cr_assert(json_is_null(json_array_get(json_object_get(o, "arr"), 2)));
    cr_assert(json_is_string(json_object_get(o, "arr_null_reason")));
    /* serialisation never emits NaN/Infinity tokens */
    char *text = json_dumps(o, 0);
    cr_assert(strstr(text, "nan") == NULL && strstr(text, "inf") == NULL, "%s", text);
    free(text);
    json_decref(o);
    json_decref(doc);
}

Test(results_json, command_is_shell_quoted)
{
    json_t *doc = build_document();
    cr_assert_str_eq(json_string_value(json_object_get(doc, "command")),
                     "mimo-bench run --preset tiny --out 'a b.json'");
    cr_assert_eq(json_integer_value(json_object_get(doc, "schema_version")), 1);
    cr_assert(json_is_false(json_object_get(doc, "incomplete")));
    json_decref(doc);
}

Test(results_json, atomic_write_round_trips_and_validates_from_disk)
{
    char *dir = mimo_test_tmpdir();
    cr_assert_not_null(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/out.json", dir);
    json_t *doc = build_document();
    mimo_error err = {""};
    cr_assert_eq(mimo_results_write_atomic(doc, path, &err), 0, "%s", err.msg);
    mimo_schema_report rep;
    cr_assert_eq(mimo_results_validate_file(path, &rep, &err), 0, "%s", err.msg);
    /* only the file itself: no temp files left behind */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", dir);
    cr_assert_eq(system(cmd), 0);
    json_decref(doc);
    mimo_test_rmtree(dir);
    free(dir);
}

Test(results_json, atomic_write_into_unwritable_dir_fails_cleanly)
{
    char *dir = mimo_test_tmpdir();
    char path[512];
    json_t *doc = build_document();
    mimo_error err = {""};
    snprintf(path, sizeof path, "%s/missing/out.json", dir);
    cr_assert_eq(mimo_results_write_atomic(doc, path, &err), -1);
    cr_assert(strstr(err.msg, path) != NULL, "error should name the path: %s", err.msg);
    if (geteuid() != 0) {   /* root ignores directory permissions */
        char ro[400];
        snprintf(ro, sizeof ro, "%s/ro", dir);
        cr_assert_eq(mkdir(ro, 0555), 0);
        snprintf(path, sizeof path, "%s/out.json", ro);
        cr_assert_eq(mimo_results_write_atomic(doc, path, &err), -1);
        struct stat st;
        cr_assert_neq(stat(path, &st), 0, "no partial file may exist");
        chmod(ro, 0755);
    }
    json_decref(doc);
    mimo_test_rmtree(dir);
    free(dir);
}

Test(results_json, wrong_schema_version_is_rejected)
{
    json_t *doc = build_document();
    json_object_set_new(doc, "schema_version", json_integer(2));
    mimo_schema_report rep;
    mimo_error err = {""};
    cr_assert_eq(mimo_results_validate_json(doc, &rep, &err), 3);
    cr_assert(strstr(err.msg, "schema_version 2") != NULL, "%s", err.msg);
    json_object_del(doc, "schema_version");
    cr_assert_eq(mimo_results_validate_json(doc, &rep, &err), 3);
    json_decref(doc);
}

Test(results_json, validator_catches_broken_documents)
{
    mimo_schema_report rep;
    mimo_error err = {""};
    json_t *doc = build_document();
    json_t *entry = json_array_get(json_object_get(doc, "configs"), 0);
    json_t *req = json_array_get(json_object_get(entry, "requests"), 0);

    json_object_del(req, "ttft_ms");                                    /* required field */
    cr_assert_eq(mimo_results_validate_json(doc, &rep, &err), 3);
    cr_assert(strstr(rep.first, "/configs/0/requests/0") && strstr(rep.first, "ttft_ms"), "%s", rep.first);
    json_object_set_new(req, "ttft_ms", json_string("fast"));          /* type */
    cr_assert_eq(mimo_results_validate_json(doc, &rep, &err), 3);
    json_object_set_new(req, "ttft_ms", json_real(-1));                /* minimum */
    cr_assert_eq(mimo_results_validate_json(doc, &rep, &err), 3);
    json_object_set_new(req, "ttft_ms", json_real(1));
    assert_valid(doc);
    json_object_set_new(json_object_get(entry, "config"), "exec", json_string("warp"));   /* enum */
    cr_assert_eq(mimo_results_validate_json(doc, &rep, &err), 3);
    cr_assert(strstr(rep.first, "/configs/0/config/exec") != NULL, "%s", rep.first);
    json_decref(doc);

    /* the validator rejects keywords it does not implement rather than ignoring them */
    json_t *schema = json_pack("{s:s, s:i}", "type", "object", "minProperties", 1);
    json_t *inst = json_object();
    cr_assert_eq(mimo_schema_validate(schema, inst, &rep), -1);
    cr_assert(strstr(rep.first, "unsupported keyword") != NULL, "%s", rep.first);
    json_decref(schema);
    json_decref(inst);
}

Test(results_json, integer_type_and_refs)
{
    json_t *schema = json_loads("{\"$defs\": {\"n\": {\"type\": \"integer\", \"minimum\": 0}},"
                                " \"type\": \"array\", \"items\": {\"$ref\": \"#/$defs/n\"}}", 0, NULL);
    cr_assert_not_null(schema);
    mimo_schema_report rep;
    json_t *ok = json_loads("[0, 3, 4.0]", 0, NULL);
    json_t *bad = json_loads("[1, 2.5, -1]", 0, NULL);
    cr_assert_eq(mimo_schema_validate(schema, ok, &rep), 0, "%s", rep.all);
    cr_assert_eq(mimo_schema_validate(schema, bad, &rep), -1);
    cr_assert_eq(rep.n_errors, 2, "%s", rep.all);
    json_decref(ok);
    json_decref(bad);
    json_decref(schema);
}
