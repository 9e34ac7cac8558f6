#include <criterion/criterion.h>
#include <math.h>

#include "mimo/config.h"

static mimo_config preset(const char *name)
{
    mimo_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_preset(name, &c, &err), 0, "%s: %s", name, err.msg);
    return c;
}

static void assert_within(double got, double want, double rel, const char *what)
{
    cr_assert(fabs(got - want) <= rel * want, "%s: got %.4g, want %.4g +- %.1f%%", what, got, want, rel * 100);
}

Test(param_count, v25_pro_matches_published_sizes)
{
    mimo_config c = preset("mimo-v2.5-pro");
    mimo_param_counts n;
    mimo_config_count(&c, &n);
    assert_within((double)n.total, 1.021e12, 0.005, "total");
    assert_within((double)n.active, 41.9e9, 0.005, "active");
    /* one expert = gate + up + down */
    cr_assert_eq(n.expert_params_per_expert_layer, 3ull * 6144 * 2048);
}

Test(param_count, v2_flash_roughly_309b_15b)
{
    mimo_config c = preset("mimo-v2-flash");
    mimo_param_counts n;
    mimo_config_count(&c, &n);
    assert_within((double)n.total, 309e9, 0.01, "total");
    assert_within((double)n.active, 15e9, 0.05, "active");
}

Test(param_count, groups_sum_to_total_and_bytes_to_formats)
{
    for (const char *const *p = mimo_preset_names(); *p; p++) {
        mimo_config c = preset(*p);
        mimo_param_counts n;
        mimo_config_count(&c, &n);
        cr_assert_eq(n.total, n.embed + n.lm_head + n.attention + n.dense_mlp + n.router + n.experts + n.norms, "%s", *p);
        uint64_t sum = 0;
        for (int f = 0; f < MIMO_WFMT_COUNT; f++)
            sum += n.bytes_by_format[f];
        cr_assert_eq(sum, n.bytes_total, "%s", *p);
        cr_assert_lt(n.active, n.total, "%s", *p);
        cr_assert_lt(n.bytes_active, n.bytes_total, "%s", *p);
    }
}

Test(param_count, small_preset_is_one_to_two_gigabytes)
{
    mimo_config c = preset("small");
    mimo_param_counts n;
    mimo_config_count(&c, &n);
    cr_assert(n.bytes_total >= 1000000000ull && n.bytes_total <= 2000000000ull, "small = %llu bytes",
              (unsigned long long)n.bytes_total);
}

Test(param_count, fp4_ablation_changes_only_expert_bytes)
{
    mimo_config c = preset("tiny");
    mimo_param_counts a, b;
    mimo_config_count(&c, &a);
    c.storage.experts = MIMO_WFMT_BF16;
    mimo_config_count(&c, &b);
    cr_assert_eq(a.total, b.total);
    uint64_t expert_bytes_bf16 = a.experts * 2;
    uint64_t expert_bytes_fp4 = a.experts / 2 + a.experts / 32;
    cr_assert_eq(b.bytes_total - a.bytes_total, expert_bytes_bf16 - expert_bytes_fp4);
}

Test(param_count, weight_format_bytes)
{
    cr_assert_eq(mimo_weight_format_bytes(MIMO_WFMT_F32, 3, 5), 60);
    cr_assert_eq(mimo_weight_format_bytes(MIMO_WFMT_BF16, 3, 5), 30);
    cr_assert_eq(mimo_weight_format_bytes(MIMO_WFMT_FP8, 256, 129), 256 * 129 + 4 * 2 * 2);
    cr_assert_eq(mimo_weight_format_bytes(MIMO_WFMT_MXFP4, 4, 64), 4 * 32 + 4 * 2);
    mimo_weight_format f;
    for (int i = 0; i < MIMO_WFMT_COUNT; i++) {
        cr_assert_eq(mimo_weight_format_from_name(mimo_weight_format_name((mimo_weight_format)i), &f), 0);
        cr_assert_eq((int)f, i);
    }
    cr_assert_eq(mimo_weight_format_from_name("int4", &f), -1);
}
