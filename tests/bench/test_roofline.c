/* Bytes one decode step streams (roofline.c): the expected-distinct-experts law and how the byte
 * count follows the expert format, the verify width and the shard count. */
#include <criterion/criterion.h>
#include <math.h>

#include "roofline.h"

Test(roofline, expected_distinct_experts)
{
    cr_assert_float_eq(mimo_roofline_expected_experts(8, 2, 1), 2.0, 1e-12);
    /* 8 * (1 - 0.75^4) */
    cr_assert_float_eq(mimo_roofline_expected_experts(8, 2, 4), 5.46875, 1e-12);
    cr_assert_float_eq(mimo_roofline_expected_experts(384, 8, 8), 384 * (1 - pow(1 - 8.0 / 384, 8)), 1e-9);
    cr_assert_lt(mimo_roofline_expected_experts(8, 2, 1000), 8.0 + 1e-9);
    cr_assert_gt(mimo_roofline_expected_experts(8, 2, 1000), 7.999);
    cr_assert_float_eq(mimo_roofline_expected_experts(8, 0, 4), 0.0, 1e-12);
}

Test(roofline, bytes_follow_format_tokens_and_shards)
{
    mimo_config cfg;
    mimo_error err;
    cr_assert_eq(mimo_config_preset("tiny", &cfg, &err), 0, "%s", err.msg);
    mimo_step_bytes fp4, fp8, verify, sharded;
    cfg.storage.experts = MIMO_WFMT_MXFP4;
    mimo_roofline_step_bytes(&cfg, 0, 1, 100, 2, 1, NULL, &fp4);
    cfg.storage.experts = MIMO_WFMT_FP8;
    mimo_roofline_step_bytes(&cfg, 0, 1, 100, 2, 1, NULL, &fp8);
    /* only the expert bytes change, in the ratio of the formats' storage */
    cr_assert_float_eq(fp4.attention, fp8.attention, 1e-9);
    cr_assert_float_eq(fp4.lm_head, fp8.lm_head, 1e-9);
    int64_t mi = cfg.moe_intermediate_size, h = cfg.hidden_size;
    double ratio = (double)mimo_weight_format_bytes(MIMO_WFMT_FP8, mi, h) / (double)mimo_weight_format_bytes(MIMO_WFMT_MXFP4, mi, h);
    cr_assert_gt(fp4.experts, 0);
    cr_assert_float_eq(fp8.experts / fp4.experts, ratio, 0.05 * ratio);
    cr_assert_float_eq(fp4.total, fp4.attention + fp4.router + fp4.experts + fp4.shared_experts + fp4.dense_mlp +
                                      fp4.norms + fp4.embed_rows + fp4.lm_head + fp4.kv_read + fp4.drafter, 1e-6);

    /* a verify of 4 tokens touches E(1-(1-k/E)^4) experts per MoE layer instead of k */
    cfg.storage.experts = MIMO_WFMT_MXFP4;
    mimo_roofline_step_bytes(&cfg, 0, 4, 100, 2, 1, NULL, &verify);
    double expect = mimo_roofline_expected_experts(cfg.n_routed_experts, cfg.experts_per_tok, 4) / cfg.experts_per_tok;
    cr_assert_float_eq(verify.experts / fp4.experts, expect, 1e-9);
    cr_assert_float_eq(verify.attention, fp4.attention, 1e-9);   /* weights, not activations */

    /* tensor-parallel shards split attention and experts */
    mimo_roofline_step_bytes(&cfg, 0, 1, 100, 2, 2, NULL, &sharded);
    cr_assert_float_eq(sharded.attention * 2, fp4.attention, 1e-6);
    cr_assert_float_eq(sharded.experts * 2, fp4.experts, 1e-6);

    /* the KV read grows with the context (until every SWA layer is capped by its window) */
    mimo_step_bytes longer;
    mimo_roofline_step_bytes(&cfg, 0, 1, 200, 2, 1, NULL, &longer);
    cr_assert_gt(longer.kv_read, fp4.kv_read);

    /* the drafter adds its own pass */
    mimo_drafter_config d;
    mimo_drafter_config_for_target(&cfg, &d);
    mimo_step_bytes with_drafter;
    mimo_roofline_step_bytes(&cfg, 0, d.block_size, 100, 2, 1, &d, &with_drafter);
    cr_assert_gt(with_drafter.drafter, 0);
}

Test(roofline, json_nulls_without_calibration)
{
    mimo_step_bytes b = {.total = 1e6};
    json_t *o = mimo_roofline_json(&b, 1, 10, 2, NAN, "none", "no GPU calibration on the cpu backend", 2.0);
    cr_assert(json_is_null(json_object_get(o, "efficiency")));
    cr_assert(json_is_string(json_object_get(o, "efficiency_null_reason")));
    json_decref(o);
    /* 1e6 bytes at 1000 GB/s = 1 us = 0.001 ms; measured 0.002 ms -> efficiency 0.5 */
    o = mimo_roofline_json(&b, 1, 10, 2, 1000, "test", NULL, 0.002);
    cr_assert_float_eq(json_real_value(json_object_get(o, "roofline_ms")), 0.001, 1e-12);
    cr_assert_float_eq(json_real_value(json_object_get(o, "efficiency")), 0.5, 1e-9);
    json_decref(o);
}
