/* The trace side without a GPU: the kernel categoriser, the per-kernel/category summary and the Chrome
 * trace export, on synthetic records. */
#include <criterion/criterion.h>

#include "support.h"
#include "trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

Test(trace, categories_by_kernel_name)
{
    struct {
        const char *name;
        const char *category;
    } cases[] = {
        {"attn_decode_paged", "attention"},
        {"flash_attention_fwd", "attention"},
        {"moe_expert_gemv_mxfp4", "moe"},
        {"router_topk_softmax", "moe"},
        {"void gemv1_combine_kernel<3, 3, 2>(GemvParams, int)", "moe"},
        {"void gemv1_expert_kernel<3, true, 2, 3, true>(GemvParams, int, int)", "moe"},
        {"void gemv1_kernel<2, false, 2, 0, false>(GemvParams, int, int)", "dense-gemv"},
        {"dense_gemv_bf16", "dense-gemv"},
        {"lm_head_gemv", "dense-gemv"},
        {"rmsnorm_kernel", "norm/rope"},
        {"apply_rope", "norm/rope"},
        {"qk_norm_attn", "norm/rope"},
        {"sample_argmax", "sampling/verify"},
        {"dflash_verify_accept", "draft"},
        {"drafter_attention", "draft"},
        {"ncclDevKernel_AllReduce_Sum_bf16_RING_LL", "comm"},
        {"round_commit_lengths_kernel(RoundLengths*)", "other"},   /* a commit, not communication */
        {"_Z15mystery_kernelPf", "other"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_str_eq(mimo_trace_category(MIMO_TRACE_KERNEL, cases[i].name), cases[i].category, "%s",
                         cases[i].name);
    cr_expect_str_eq(mimo_trace_category(MIMO_TRACE_MEMCPY, "memcpy HtoD"), "memcpy");
    cr_expect_str_eq(mimo_trace_category(MIMO_TRACE_MEMSET, "memset"), "memcpy");
    cr_expect_str_eq(mimo_trace_category(MIMO_TRACE_KERNEL, NULL), "other");
}

/* Records deliberately out of order, on two devices and three streams, one starting before the origin. */
static void synthetic(mimo_trace_records *r)
{
    mimo_trace_records_init(r, 10000);
    cr_assert_eq(mimo_trace_records_add(r, MIMO_TRACE_KERNEL, "moe_expert_gemv", 30000, 40000, 0, 7, 0, NULL), 0);
    cr_assert_eq(mimo_trace_records_add(r, MIMO_TRACE_KERNEL, "attn_decode", 12000, 20000, 0, 7, 0, NULL), 0);
    cr_assert_eq(mimo_trace_records_add(r, MIMO_TRACE_KERNEL, "moe_expert_gemv", 50000, 60000, 0, 7, 0, NULL), 0);
    cr_assert_eq(mimo_trace_records_add(r, MIMO_TRACE_MEMCPY, "memcpy DtoH", 61000, 62000, 0, 7, 4096, NULL), 0);
    cr_assert_eq(mimo_trace_records_add(r, MIMO_TRACE_KERNEL, "rmsnorm", 9000, 11000, 1, 3, 0, NULL), 0);
    cr_assert_eq(mimo_trace_records_add(r, MIMO_TRACE_MEMSET, "memset", 15000, 16000, 0, 9, 256, NULL), 0);
    cr_assert_eq(mimo_trace_records_add(r, MIMO_TRACE_SYNC, "cudaStreamSynchronize", 10500, 62500, 0, 7, 0, NULL), 0);
}

Test(trace, rejects_records_that_end_before_they_start)
{
    mimo_trace_records r;
    mimo_trace_records_init(&r, 0);
    mimo_error err;
    cr_expect_eq(mimo_trace_records_add(&r, MIMO_TRACE_KERNEL, "k", 200, 100, 0, 0, 0, &err), -1);
    cr_expect(strstr(err.msg, "k") != NULL);
    cr_expect_eq(r.n, 0);
    mimo_trace_records_free(&r);
}

Test(trace, summary_groups_by_kernel_and_category)
{
    mimo_trace_records r;
    synthetic(&r);
    r.dropped = 3;
    json_t *s = mimo_trace_summary(&r, 2);
    cr_assert_not_null(s);
    cr_expect_eq(json_integer_value(json_object_get(s, "dropped_records")), 3);
    cr_expect_eq(json_integer_value(json_object_get(s, "records")), 7);
    /* busy time: 10 + 8 + 10 + 1 + 2 + 1 us = 32 us (the sync is a host wait, not GPU work) */
    cr_expect_float_eq(json_real_value(json_object_get(s, "gpu_time_us")), 32.0, 1e-9);
    json_t *cats = json_object_get(s, "categories");
    cr_expect_eq(json_object_size(cats), MIMO_TRACE_N_CATEGORIES);
    json_t *moe = json_object_get(cats, "moe");
    cr_expect_eq(json_integer_value(json_object_get(moe, "count")), 2);
    cr_expect_float_eq(json_real_value(json_object_get(moe, "total_us")), 20.0, 1e-9);
    cr_expect_float_eq(json_real_value(json_object_get(moe, "per_round_us")), 10.0, 1e-9);
    cr_expect_float_eq(json_real_value(json_object_get(json_object_get(cats, "memcpy"), "total_us")), 2.0, 1e-9);
    double share_sum = 0;
    const char *key;
    json_t *v;
    json_object_foreach(cats, key, v)
        share_sum += json_number_value(json_object_get(v, "share"));
    cr_expect_float_eq(share_sum, 1.0, 1e-9);
    /* kernels sorted by total time: moe (20 us) first */
    json_t *first = json_array_get(json_object_get(s, "kernels"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(first, "name")), "moe_expert_gemv");
    cr_expect_float_eq(json_real_value(json_object_get(first, "mean_us")), 10.0, 1e-9);
    cr_expect_eq(json_array_size(json_object_get(s, "kernels")), 5);
    json_decref(s);

    /* unknown rounds: null with a reason, never a made-up number */
    s = mimo_trace_summary(&r, 0);
    cr_expect(json_is_null(json_object_get(s, "rounds")));
    cr_expect(json_is_string(json_object_get(s, "rounds_null_reason")));
    json_decref(s);
    mimo_trace_records_free(&r);
}

static double kernel_field(json_t *summary, const char *name, const char *field)
{
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(summary, "kernels"), i, k)
        if (!strcmp(json_string_value(json_object_get(k, "name")), name))
            return json_number_value(json_object_get(k, field));
    cr_assert_fail("kernel %s not in the summary", name);
    return 0;
}

/* Under programmatic dependent launch a kernel's record starts while its predecessor runs: exclusive times
 * charge each record only with what it adds to its stream's busy time, and add up to that time. */
Test(trace, exclusive_time_counts_overlap_once)
{
    mimo_trace_records r;
    mimo_trace_records_init(&r, 0);
    cr_assert_eq(mimo_trace_records_add(&r, MIMO_TRACE_KERNEL, "gemv_a", 1000, 11000, 0, 1, 0, NULL), 0);
    cr_assert_eq(mimo_trace_records_add(&r, MIMO_TRACE_KERNEL, "rmsnorm_b", 3000, 16000, 0, 1, 0, NULL), 0);
    cr_assert_eq(mimo_trace_records_add(&r, MIMO_TRACE_KERNEL, "inside_e", 4000, 6000, 0, 1, 0, NULL), 0);
    cr_assert_eq(mimo_trace_records_add(&r, MIMO_TRACE_KERNEL, "gemv_a", 14000, 20000, 0, 1, 0, NULL), 0);
    cr_assert_eq(mimo_trace_records_add(&r, MIMO_TRACE_KERNEL, "other_stream_d", 0, 5000, 0, 2, 0, NULL), 0);
    json_t *s = mimo_trace_summary(&r, 2);
    cr_assert_not_null(s);
    cr_expect_float_eq(json_real_value(json_object_get(s, "gpu_time_us")), 10.0 + 13.0 + 2.0 + 6.0 + 5.0, 1e-9);
    /* stream 1 busy from 1 to 20 us, stream 2 from 0 to 5 us */
    cr_expect_float_eq(json_real_value(json_object_get(s, "gpu_exclusive_us")), 19.0 + 5.0, 1e-9);
    cr_expect_float_eq(kernel_field(s, "gemv_a", "exclusive_us"), 10.0 + 4.0, 1e-9);
    cr_expect_float_eq(kernel_field(s, "gemv_a", "total_us"), 10.0 + 6.0, 1e-9);
    cr_expect_float_eq(kernel_field(s, "rmsnorm_b", "exclusive_us"), 5.0, 1e-9);
    cr_expect_float_eq(kernel_field(s, "inside_e", "exclusive_us"), 0.0, 1e-9);
    cr_expect_float_eq(kernel_field(s, "other_stream_d", "exclusive_us"), 5.0, 1e-9);
    cr_expect_float_eq(kernel_field(s, "gemv_a", "per_round_exclusive_us"), 7.0, 1e-9);
    double cat_sum = 0, share_sum = 0;
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(s, "categories"), key, v) {
        cat_sum += json_number_value(json_object_get(v, "exclusive_us"));
        share_sum += json_number_value(json_object_get(v, "exclusive_share"));
    }
    cr_expect_float_eq(cat_sum, 24.0, 1e-9);
    cr_expect_float_eq(share_sum, 1.0, 1e-9);
    json_decref(s);
    mimo_trace_records_free(&r);
}

Test(trace, persistent_phases_are_summed_apart)
{
    mimo_trace_records r;
    mimo_trace_records_init(&r, 0);
    cr_assert_eq(mimo_trace_records_add(&r, MIMO_TRACE_KERNEL, "persistent_engine", 1000, 101000, 0, 1, 0, NULL), 0);
    cr_assert_eq(mimo_trace_records_add(&r, MIMO_TRACE_PHASE, "phase attention", 2000, 32000, 0, 1, 0, NULL), 0);
    cr_assert_eq(mimo_trace_records_add(&r, MIMO_TRACE_PHASE, "phase moe experts", 32000, 92000, 0, 1, 0, NULL), 0);
    json_t *s = mimo_trace_summary(&r, 1);
    cr_expect_float_eq(json_real_value(json_object_get(s, "gpu_time_us")), 100.0, 1e-9, "no double counting");
    json_t *ph = json_object_get(s, "persistent_phases_us");
    cr_expect_float_eq(json_real_value(json_object_get(ph, "attention")), 30.0, 1e-9);
    cr_expect_float_eq(json_real_value(json_object_get(ph, "moe")), 60.0, 1e-9);
    json_decref(s);
    mimo_trace_records_free(&r);
}

Test(trace, chrome_trace_is_valid_and_monotonic)
{
    char *dir = mimo_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/trace.json", dir);
    mimo_trace_records r;
    synthetic(&r);
    mimo_error err;
    cr_assert_eq(mimo_trace_write_chrome(&r, path, &err), 0, "%s", err.msg);
    mimo_trace_records_free(&r);

    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    cr_assert_not_null(root, "not valid JSON: %s (line %d)", jerr.text, jerr.line);
    json_t *events = json_object_get(root, "traceEvents");
    cr_assert(json_is_array(events));
    size_t i;
    json_t *e;
    double last_ts = -1;
    int n_x = 0, n_process_names = 0, n_thread_names = 0;
    bool seen_dtoh = false;
    json_array_foreach(events, i, e) {
        const char *ph = json_string_value(json_object_get(e, "ph"));
        cr_assert_not_null(ph);
        cr_expect(json_is_integer(json_object_get(e, "pid")) && json_is_integer(json_object_get(e, "tid")));
        if (!strcmp(ph, "M")) {
            const char *name = json_string_value(json_object_get(e, "name"));
            n_process_names += !strcmp(name, "process_name");
            n_thread_names += !strcmp(name, "thread_name");
            cr_expect(json_is_string(json_object_get(json_object_get(e, "args"), "name")));
            continue;
        }
        cr_assert_str_eq(ph, "X");
        n_x++;
        double ts = json_number_value(json_object_get(e, "ts")), dur = json_number_value(json_object_get(e, "dur"));
        cr_expect(ts >= 0, "negative ts %g", ts);
        cr_expect(dur >= 0, "negative dur %g", dur);
        cr_expect(ts >= last_ts, "events out of order: %g after %g", ts, last_ts);
        last_ts = ts;
        cr_expect(json_is_string(json_object_get(e, "name")) && json_is_string(json_object_get(e, "cat")));
        if (!strcmp(json_string_value(json_object_get(e, "name")), "memcpy DtoH")) {
            seen_dtoh = true;
            cr_expect_eq(json_integer_value(json_object_get(json_object_get(e, "args"), "bytes")), 4096);
            /* origin moved back to the earliest record (9000 ns): 61000 ns -> 52 us */
            cr_expect_float_eq(ts, 52.0, 1e-9);
            cr_expect_float_eq(dur, 1.0, 1e-9);
            cr_expect_eq(json_integer_value(json_object_get(e, "pid")), 0);
            cr_expect_eq(json_integer_value(json_object_get(e, "tid")), 7);
        }
    }
    cr_expect_eq(n_x, 7);
    cr_expect(seen_dtoh);
    cr_expect_eq(n_process_names, 2, "one process per device");
    cr_expect_eq(n_thread_names, 4, "streams 7, 9 and 3 and the sync lane");
    json_decref(root);
    mimo_test_rmtree(dir);
    free(dir);
}

Test(trace, chrome_trace_of_nothing_is_still_valid)
{
    char *dir = mimo_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/empty.json", dir);
    mimo_trace_records r;
    mimo_trace_records_init(&r, 0);
    cr_assert_eq(mimo_trace_write_chrome(&r, path, NULL), 0);
    json_t *root = json_load_file(path, 0, NULL);
    cr_assert_not_null(root);
    cr_expect_eq(json_array_size(json_object_get(root, "traceEvents")), 0);
    json_decref(root);
    snprintf(path, sizeof path, "%s/no/such/dir/t.json", dir);
    mimo_error err;
    cr_expect_eq(mimo_trace_write_chrome(&r, path, &err), -1, "an unwritable path fails cleanly");
    mimo_trace_records_free(&r);
    mimo_test_rmtree(dir);
    free(dir);
}

Test(trace, availability_says_why)
{
    char why[256] = "";
    bool ok = mimo_trace_available(why, sizeof why);
    if (!ok)
        cr_expect(strlen(why) > 10, "an unavailable tracer must say why");
}

/* A persistent kernel's steps against its CUPTI records (trace_phases.c): only that kernel's records, by
 * start time; a step matches a record whose length agrees within 10 % + 20 us, and the shift puts the
 * step's stamps at the record's start. Its phase names ("<instruction>:<kernel>") fall in the categories
 * of the kernels they ran. */
Test(trace, persistent_kernel_spans_and_step_matching)
{
    mimo_trace_records r;
    mimo_trace_records_init(&r, 0);
    cr_assert_eq(mimo_trace_records_add(&r, MIMO_TRACE_KERNEL, "_Z22persistent_step_kernel10PersistStep", 900000,
                                        1000000, 0, 5, 0, NULL), 0);
    cr_assert_eq(mimo_trace_records_add(&r, MIMO_TRACE_KERNEL, "argmax_kernel", 100000, 110000, 0, 5, 0, NULL), 0);
    cr_assert_eq(mimo_trace_records_add(&r, MIMO_TRACE_KERNEL, "persistent_step_kernel", 200000, 300000, 1, 6, 0,
                                        NULL), 0);
    cr_assert_eq(mimo_trace_records_add(&r, MIMO_TRACE_MEMCPY, "persistent_step_kernel", 400000, 410000, 0, 5, 64,
                                        NULL), 0);   /* not a kernel */
    mimo_trace_span *s = NULL;
    cr_assert_eq(mimo_trace_kernel_spans(&r, "persistent_step_kernel", &s), 2);
    cr_assert_eq(s[0].start_ns, 200000);
    cr_assert_eq(s[0].device, 1);
    cr_assert_eq(s[0].stream, 6);
    cr_assert_eq(s[1].start_ns, 900000);
    int64_t shift = 0;
    /* the record is 100 us; a step stamped 5e9 ns later on its own clock */
    cr_expect(mimo_trace_span_matches(&s[0], 5000000000ull, 5000095000ull, &shift));
    cr_expect_eq(shift, (int64_t)200000 - 5000000000ll);
    cr_expect(mimo_trace_span_matches(&s[0], 100, 100 + 100000, &shift), "equal lengths match");
    cr_expect(!mimo_trace_span_matches(&s[0], 100, 100 + 130000, &shift), "a step longer than its kernel");
    cr_expect(!mimo_trace_span_matches(&s[0], 100, 100 + 60000, &shift), "a step far shorter than its kernel");
    cr_expect(!mimo_trace_span_matches(&s[0], 200, 100, &shift), "a step that ends before it starts");
    free(s);
    cr_expect_eq(mimo_trace_kernel_spans(&r, "no_such_kernel", &s), 0);
    cr_expect_null(s);
    mimo_trace_records_free(&r);

    cr_expect_str_eq(mimo_trace_category(MIMO_TRACE_KERNEL, "expert_gate_up:gemv1_expert_kernel"), "moe");
    cr_expect_str_eq(mimo_trace_category(MIMO_TRACE_KERNEL, "route_topk:route_kernel"), "moe");
    cr_expect_str_eq(mimo_trace_category(MIMO_TRACE_KERNEL, "qkv_proj:gemv1_kernel"), "dense-gemv");
    cr_expect_str_eq(mimo_trace_category(MIMO_TRACE_KERNEL, "attention:attention_split_kernel"), "attention");
    cr_expect_str_eq(mimo_trace_category(MIMO_TRACE_KERNEL, "rmsnorm:rmsnorm_kernel"), "norm/rope");
    cr_expect_str_eq(mimo_trace_category(MIMO_TRACE_KERNEL, "qkv_rope_store:qkv_rope_store_kernel"), "norm/rope");
}
