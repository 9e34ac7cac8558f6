/* Hand-made results files for the compare/report tests, following HARNESS.md's skeleton and
 * results/schema.json (every required field present). Header-only: included by the test files. */
#ifndef MIMO_TEST_RESULTS_FIXTURE_H
#define MIMO_TEST_RESULTS_FIXTURE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct {
    double tps_scale;        /* every decode_tps number is multiplied by this */
    bool   forced;           /* DFlash configurations use forced acceptance (profile mimo-published) */
    bool   with_unavailable; /* add an exec=persistent configuration with available = false */
    bool   only_ar;          /* only the autoregressive (DFlash off) configurations */
    const char *trace_file;  /* kernels.trace_file of the first DFlash configuration (with kernels) */
    int    schema_version;   /* 0 = 1 */
    bool   shard;            /* a --shard 0/8 run: model.shard.count = 8 and a projection per config */
} fixture_opts;

static json_t *fixture_stats(double median, double spread)
{
    return json_pack("{s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:s}", "n", 3, "mean", median * 1.01, "median", median,
                     "p5", median - spread, "p95", median + spread, "min", median - 1.5 * spread, "max",
                     median + 1.5 * spread, "percentile_method", "linear (type 7)");
}

static json_t *fixture_suite(double tps, bool dflash, double tau_mean)
{
    json_t *hist = json_array();
    int block = dflash ? 8 : 1;
    for (int t = 1; t <= block; t++)   /* rounds with tau = t: peaked at the mean */
        json_array_append_new(hist, json_integer(dflash ? 10 + 5 * (t <= (int)tau_mean ? t : 1) : 40));
    json_t *pos = json_array();
    for (int i = 1; i < block; i++)
        json_array_append_new(pos, json_real(0.9));
    json_t *tps_stats = fixture_stats(tps, tps * 0.1);
    json_object_set_new(tps_stats, "ratio_of_sums", json_real(tps * 0.98));
    return json_pack("{s:i, s:i, s:{s:f, s:f, s:o}, s:o, s:o, s:o, s:o, s:o}", "requests", 3, "rounds", 40, "tau",
                     "mean", tau_mean, "median", tau_mean, "histogram", hist, "draft_acceptance_rate",
                     dflash ? json_real(0.75) : json_null(), "per_position_acceptance", pos, "decode_tps", tps_stats,
                     "ttft_ms", fixture_stats(12.0, 1.0), "tpot_ms", fixture_stats(1000.0 / tps, 0.1));
}

static json_t *fixture_config(bool fp4, bool dflash, const char *exec, bool forced)
{
    return json_pack("{s:s, s:b, s:b, s:s, s:i, s:f, s:i, s:f, s:i, s:{s:s, s:o}}", "backend", "cuda", "fp4", fp4,
                     "dflash", dflash, "exec", exec, "block", dflash ? 8 : 1, "temperature", 0.0, "top_k", 0, "top_p",
                     1.0, "seed", 1, "acceptance", "mode", forced && dflash ? "forced" : "measured", "profile",
                     forced && dflash ? json_string("mimo-published") : json_null());
}

static json_t *fixture_request(const char *suite, double tps)
{
    json_t *rounds = json_array();
    for (int i = 0; i < 3; i++)
        json_array_append_new(rounds, json_pack("{s:i, s:i, s:i, s:f, s:f, s:f}", "drafted", 7, "accepted", 5,
                                                "emitted", 6, "t_draft_us", 100.0, "t_verify_us", 400.0,
                                                "t_total_us", 520.0));
    return json_pack("{s:s, s:s, s:i, s:i, s:f, s:f, s:f, s:s, s:o}", "suite", suite, "id", "q1", "prompt_tokens",
                     20, "output_tokens", 19, "ttft_ms", 12.0, "tpot_ms", 1000.0 / tps, "decode_tps", tps,
                     "stop_reason", "max_tokens", "rounds", rounds);
}

static json_t *fixture_kernels(const char *trace_file)
{
    static const char *const cats[] = {"attention", "moe", "dense-gemv", "norm/rope", "sampling/verify",
                                       "draft", "comm", "memcpy", "other"};
    json_t *c = json_object();
    for (int i = 0; i < 9; i++)
        json_object_set_new(c, cats[i], json_pack("{s:i, s:f, s:f, s:f, s:f}", "count", 40, "total_us", 400.0 + 50 * i,
                                                  "mean_us", 10.0 + i, "share", 1.0 / 9, "exclusive_us",
                                                  100.0 + 10 * i));
    json_t *k = json_pack("{s:s, s:i, s:i, s:o, s:[{s:s, s:s, s:i, s:f, s:f, s:f}]}", "source", "cupti-activity",
                          "rounds", 40, "dropped_records", 0, "categories", c, "kernels", "name",
                          "moe_expert_gemv_mxfp4", "category", "moe", "count", 40, "total_us", 800.0, "mean_us",
                          20.0, "share", 0.2);
    if (trace_file)
        json_object_set_new(k, "trace_file", json_string(trace_file));
    return k;
}

/* A results file: the (fp4 x dflash x exec in {eager, graph}) matrix over suites coding and math. */
static json_t *fixture_results(const fixture_opts *o)
{
    json_t *configs = json_array();
    bool kernels_done = false;
    for (int fp4 = 1; fp4 >= 0; fp4--)
        for (int dflash = 0; dflash <= (o->only_ar ? 0 : 1); dflash++)
            for (int e = 0; e < 2; e++) {
                const char *exec = e ? "graph" : "eager";
                double base = 100.0 * o->tps_scale * (dflash ? 5.0 : 1.0) * (fp4 ? 1.4 : 1.0) * (e ? 1.2 : 1.0);
                json_t *suites = json_pack("{s:o, s:o}", "coding", fixture_suite(base, dflash, dflash ? 6.0 : 1.0),
                                           "math", fixture_suite(base * 0.9, dflash, dflash ? 5.2 : 1.0));
                json_t *entry = json_pack("{s:o, s:b, s:[o, o], s:o, s:{s:s}}", "config",
                                          fixture_config(fp4, dflash, exec, o->forced), "available", 1, "requests",
                                          fixture_request("coding", base), fixture_request("math", base * 0.9),
                                          "suites", suites, "timing", "pass", "timed");
                json_object_set_new(entry, "roofline",
                                    json_pack("{s:I, s:f, s:f, s:f, s:f}", "bytes_per_step", (json_int_t)5200000000LL, "calibration_gbps",
                                              3100.0, "efficiency", 0.55, "roofline_ms", 1.69, "measured_step_ms",
                                              1.69 / 0.55));
                if (o->shard)
                    json_object_set_new(entry, "projection",
                                        json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:s, s:i}", "label",
                                                  "projection, not a measurement", "projected_node_tps",
                                                  (dflash ? 6.0 : 1.0) / (4.0 + 0.5 + 1.4) * 1000.0, "tau",
                                                  dflash ? 6.0 : 1.0, "rank_step_ms", 4.0, "draft_ms", 0.5,
                                                  "comm_ms", 1.4, "comm_model",
                                                  "no measured NCCL run: 2 all-reduces per layer x 10 us each",
                                                  "shard_count", 8));
                if (dflash && !kernels_done) {
                    json_object_set_new(entry, "kernels", fixture_kernels(o->trace_file));
                    kernels_done = true;
                }
                json_array_append_new(configs, entry);
            }
    if (o->with_unavailable) {
        json_t *entry = json_pack("{s:o, s:b, s:s}", "config", fixture_config(true, true, "persistent", o->forced),
                                  "available", 0, "reason", "the persistent kernel is not built yet");
        json_array_append_new(configs, entry);
    }
    return json_pack("{s:i, s:{s:s, s:s, s:s, s:s}, s:{s:s, s:s, s:i, s:I, s:s, s:{s:b, s:s}}, s:s, "
                     "s:{s:s, s:s, s:i, s:s, s:{s:I, s:I}, s:{s:I}, s:{s:i, s:i}}, s:o, s:b}",
                     "schema_version", o->schema_version ? o->schema_version : 1,
                     "tool", "name", "mimo-bench", "version", "0.1.0", "git_commit", "fixture", "build_flags", "test",
                     "environment", "host", "test-host", "cpu", "test cpu", "cpu_cores", 2, "memory_bytes",
                     (json_int_t)1 << 30, "os", "linux", "gpu", "available", 1, "name", "NVIDIA H100 (fixture)",
                     "command", "mimo-bench run --preset small --matrix",
                     "model", "source", "preset", "preset", "small", "seed", 1, "config_digest", "0123abcd",
                     "params", "total", (json_int_t)1000000, "active", (json_int_t)100000, "bytes_by_format", "mxfp4",
                     (json_int_t)500000, "shard", "rank", 0, "count", o->shard ? 8 : 1,
                     "configs", configs, "incomplete", 0);
}

static int fixture_write(const fixture_opts *o, const char *path)
{
    json_t *root = fixture_results(o);
    if (!root)
        return -1;
    int rc = json_dump_file(root, path, JSON_INDENT(1));
    json_decref(root);
    return rc;
}

#endif
