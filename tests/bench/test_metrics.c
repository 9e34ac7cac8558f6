/* Harness metrics on hand-made rounds: every expected value below is worked out by hand. */
#include <criterion/criterion.h>
#include <math.h>

#include "metrics.h"

#define R(d, a, e) {.drafted = (d), .accepted = (a), .emitted = (e), .t_draft_us = 1, .t_verify_us = 2, .t_total_us = 3}

Test(metrics, percentile_linear_interpolation)
{
    const double v[] = {10, 20, 30, 40, 50};
    cr_assert_float_eq(mimo_percentile_sorted(v, 5, 50), 30, 1e-12);
    /* h = 4 * 0.05 = 0.2 -> 10 + 0.2 * 10 */
    cr_assert_float_eq(mimo_percentile_sorted(v, 5, 5), 12, 1e-12);
    /* h = 4 * 0.95 = 3.8 -> 40 + 0.8 * 10 */
    cr_assert_float_eq(mimo_percentile_sorted(v, 5, 95), 48, 1e-12);
    cr_assert_float_eq(mimo_percentile_sorted(v, 5, 0), 10, 1e-12);
    cr_assert_float_eq(mimo_percentile_sorted(v, 5, 100), 50, 1e-12);
    const double two[] = {1, 2};
    cr_assert_float_eq(mimo_percentile_sorted(two, 2, 50), 1.5, 1e-12);
    cr_assert(isnan(mimo_percentile_sorted(v, 0, 50)));
}

Test(metrics, stats_skip_non_finite_and_sort)
{
    const double v[] = {5, NAN, 1, INFINITY, 3};
    mimo_stats s;
    mimo_stats_compute(v, 5, &s);
    cr_assert_eq(s.n, 3);
    cr_assert_float_eq(s.mean, 3, 1e-12);
    cr_assert_float_eq(s.median, 3, 1e-12);
    cr_assert_float_eq(s.min, 1, 1e-12);
    cr_assert_float_eq(s.max, 5, 1e-12);
    /* sorted {1,3,5}: h = 2 * 0.05 = 0.1 -> 1.2; h = 1.9 -> 3 + 0.9 * 2 = 4.8 */
    cr_assert_float_eq(s.p5, 1.2, 1e-12);
    cr_assert_float_eq(s.p95, 4.8, 1e-12);
    mimo_stats_compute(v + 1, 1, &s);
    cr_assert_eq(s.n, 0);
    cr_assert(isnan(s.mean) && isnan(s.median));
}

Test(metrics, request_tpot_and_decode_tps)
{
    mimo_request_record r = {.output_tokens = 11, .ttft_ms = 50, .decode_ms = 200, .e2e_ms = 250};
    cr_assert_float_eq(mimo_request_tpot_ms(&r), 20, 1e-12);        /* (250 - 50) / 10 */
    cr_assert_float_eq(mimo_request_decode_tps(&r), 50, 1e-9);      /* 10 tokens / 0.2 s */
    r.output_tokens = 1;
    cr_assert(isnan(mimo_request_tpot_ms(&r)));
    cr_assert(isnan(mimo_request_decode_tps(&r)));
    r.output_tokens = 5;
    r.decode_ms = 0;
    cr_assert(isnan(mimo_request_decode_tps(&r)));
}

Test(metrics, dflash_rounds_tau_rates_histogram)
{
    /* block 4 (3 drafts per round). taus: 4, 1, 3, 2 */
    const mimo_round_record rounds[] = {R(3, 3, 4), R(3, 0, 1), R(3, 2, 3), R(3, 1, 2)};
    mimo_request_record req = {.suite = "coding", .id = "a", .output_tokens = 11, .ttft_ms = 10,
                               .decode_ms = 100, .e2e_ms = 110, .rounds = rounds, .n_rounds = 4};
    mimo_suite_metrics m;
    mimo_error err;
    cr_assert_eq(mimo_suite_metrics_compute(&req, 1, 4, &m, &err), 0, "%s", err.msg);
    cr_assert_eq(m.rounds, 4);
    cr_assert_eq(m.drafted, 12);
    cr_assert_eq(m.accepted, 6);
    cr_assert_eq(m.emitted, 10);
    cr_assert_float_eq(m.tau_mean, 2.5, 1e-12);                    /* 10 emitted / 4 rounds */
    cr_assert_float_eq(m.tau_median, 2.5, 1e-12);                  /* {1,2,3,4} */
    cr_assert_eq(m.block, 4);
    cr_assert_eq(m.tau_histogram[0], 1);
    cr_assert_eq(m.tau_histogram[1], 1);
    cr_assert_eq(m.tau_histogram[2], 1);
    cr_assert_eq(m.tau_histogram[3], 1);
    cr_assert_float_eq(m.draft_acceptance_rate, 0.5, 1e-12);       /* 6 / 12 */
    cr_assert_eq(m.n_positions, 3);
    /* position 1: reached 4, accepted 3; position 2: reached 3 (a >= 1), accepted 2;
     * position 3: reached 2 (a >= 2), accepted 1 */
    cr_assert_float_eq(m.per_position_acceptance[0], 0.75, 1e-12);
    cr_assert_float_eq(m.per_position_acceptance[1], 2.0 / 3.0, 1e-12);
    cr_assert_float_eq(m.per_position_acceptance[2], 0.5, 1e-12);
    /* every round took t_total_us = 3 */
    cr_assert_eq(m.round_ms.n, 4);
    cr_assert_float_eq(m.round_ms.median, 0.003, 1e-12);
}

Test(metrics, autoregressive_rounds_have_tau_one)
{
    const mimo_round_record rounds[] = {R(0, 0, 1), R(0, 0, 1), R(0, 0, 1)};
    mimo_request_record req = {.suite = "math", .id = "b", .output_tokens = 4, .ttft_ms = 5,
                               .decode_ms = 30, .e2e_ms = 35, .rounds = rounds, .n_rounds = 3};
    mimo_suite_metrics m;
    mimo_error err;
    cr_assert_eq(mimo_suite_metrics_compute(&req, 1, 1, &m, &err), 0, "%s", err.msg);
    cr_assert_float_eq(m.tau_mean, 1, 1e-12);
    cr_assert_eq(m.block, 1);
    cr_assert_eq(m.tau_histogram[0], 3);
    cr_assert(isnan(m.draft_acceptance_rate));
    cr_assert_eq(m.n_positions, 0);
    cr_assert_float_eq(m.decode_tps.mean, 100, 1e-9);              /* 3 tokens / 0.03 s */
}

Test(metrics, ratio_of_sums_differs_from_mean_of_ratios)
{
    /* request 1: 10 tokens after the first in 1 s (10 tok/s); request 2: 90 in 1 s... use 2: 100 in 4 s (25) */
    const mimo_round_record r1[] = {R(0, 0, 1)}, r2[] = {R(0, 0, 1)};
    mimo_request_record reqs[2] = {
        {.suite = "chat", .id = "1", .output_tokens = 11, .ttft_ms = 100, .decode_ms = 1000, .e2e_ms = 1100, .rounds = r1, .n_rounds = 1},
        {.suite = "chat", .id = "2", .output_tokens = 101, .ttft_ms = 300, .decode_ms = 4000, .e2e_ms = 4300, .rounds = r2, .n_rounds = 1},
    };
    mimo_suite_metrics m;
    mimo_error err;
    cr_assert_eq(mimo_suite_metrics_compute(reqs, 2, 1, &m, &err), 0, "%s", err.msg);
    cr_assert_float_eq(m.decode_tps.mean, 17.5, 1e-9);             /* (10 + 25) / 2 */
    cr_assert_float_eq(m.decode_tps.median, 17.5, 1e-9);
    cr_assert_float_eq(m.decode_tps.min, 10, 1e-9);
    cr_assert_float_eq(m.decode_tps.max, 25, 1e-9);
    cr_assert_float_eq(m.decode_tps_ratio_of_sums, 22, 1e-9);      /* 110 tokens / 5 s */
    cr_assert_float_eq(m.ttft_ms.mean, 200, 1e-9);
    cr_assert_float_eq(m.tpot_ms.min, 40, 1e-9);                   /* 4000 / 100 */
    cr_assert_float_eq(m.tpot_ms.max, 100, 1e-9);                  /* 1000 / 10 */
}

Test(metrics, histogram_grows_to_largest_tau_and_rejects_bad_rounds)
{
    const mimo_round_record good[] = {R(7, 7, 8), R(7, 0, 1)};
    mimo_request_record req = {.suite = "s", .id = "x", .output_tokens = 10, .ttft_ms = 1, .decode_ms = 2,
                               .e2e_ms = 3, .rounds = good, .n_rounds = 2};
    mimo_suite_metrics m;
    mimo_error err;
    cr_assert_eq(mimo_suite_metrics_compute(&req, 1, 1, &m, &err), 0, "%s", err.msg);
    cr_assert_eq(m.block, 8);
    cr_assert_eq(m.tau_histogram[7], 1);
    cr_assert_float_eq(m.per_position_acceptance[6], 1.0, 1e-12);  /* position 7: reached once, accepted */

    const mimo_round_record bad[] = {R(2, 3, 4)};
    req.rounds = bad;
    req.n_rounds = 1;
    cr_assert_eq(mimo_suite_metrics_compute(&req, 1, 4, &m, &err), -1);
    cr_assert(strstr(err.msg, "inconsistent") != NULL, "%s", err.msg);
}
