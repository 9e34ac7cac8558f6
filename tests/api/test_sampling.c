/* Sampling (sampling.h): greedy ties, temperature, top-k and top-p sets, seeded determinism, and
 * empirical frequencies against the probabilities. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "mimo/sampling.h"

Test(sampling, argmax_takes_lowest_index_on_ties)
{
    const float x[6] = { 0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 2.0f };
    cr_assert_eq(mimo_argmax(x, 6), 1);
    const float one[1] = { -3.0f };
    cr_assert_eq(mimo_argmax(one, 1), 0);
    const float neg[3] = { -5.0f, -1.0f, -1.0f };
    cr_assert_eq(mimo_argmax(neg, 3), 1);
}

Test(sampling, greedy_is_one_hot_argmax_and_draws_nothing)
{
    const float x[5] = { 0.1f, 3.0f, 3.0f, -2.0f, 0.0f };
    float p[5];
    mimo_sampling_params sp = { .temperature = 0.0f, .top_k = 0, .top_p = 1.0f };
    mimo_sampling_probs(&sp, x, 5, p);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(p[i], i == 1 ? 1.0f : 0.0f);
    mimo_rng rng;
    mimo_rng_init(&rng, 42);
    float scratch[5];
    cr_assert_eq(mimo_sample(&sp, x, 5, scratch, &rng), 1);
    cr_assert_eq(rng.counter, 0u, "greedy must not consume random numbers");
}

Test(sampling, temperature_scales_logits)
{
    const float x[4] = { 1.0f, 2.0f, 0.0f, -1.0f };
    const float temps[3] = { 0.5f, 1.0f, 2.0f };
    for (int t = 0; t < 3; t++) {
        mimo_sampling_params sp = { .temperature = temps[t], .top_k = 0, .top_p = 1.0f };
        float p[4];
        mimo_sampling_probs(&sp, x, 4, p);
        double z = 0.0;
        for (int i = 0; i < 4; i++)
            z += exp(x[i] / temps[t]);
        for (int i = 0; i < 4; i++)
            cr_assert_float_eq(p[i], exp(x[i] / temps[t]) / z, 1e-6, "T=%g token %d", temps[t], i);
    }
    /* lower temperature sharpens */
    mimo_sampling_params cold = { 0.5f, 0, 1.0f }, hot = { 2.0f, 0, 1.0f };
    float pc[4], ph[4];
    mimo_sampling_probs(&cold, x, 4, pc);
    mimo_sampling_probs(&hot, x, 4, ph);
    cr_assert_gt(pc[1], ph[1]);
}

Test(sampling, top_k_keeps_k_largest_renormalised)
{
    const float x[6] = { 0.0f, 3.0f, 1.0f, 2.0f, 2.0f, -1.0f };
    mimo_sampling_params sp = { .temperature = 1.0f, .top_k = 3, .top_p = 1.0f };
    float p[6];
    mimo_sampling_probs(&sp, x, 6, p);
    /* kept: 1 (3.0), then the tie 3 and 4 (2.0) */
    double z = exp(3.0) + 2 * exp(2.0);
    const bool kept[6] = { false, true, false, true, true, false };
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(p[i], kept[i] ? exp(x[i]) / z : 0.0, 1e-6, "token %d", i);

    /* ties at the cut go to the lower index */
    sp.top_k = 2;
    mimo_sampling_probs(&sp, x, 6, p);
    cr_assert_gt(p[3], 0.0f);
    cr_assert_eq(p[4], 0.0f);
    /* top_k >= n is off */
    sp.top_k = 6;
    mimo_sampling_probs(&sp, x, 6, p);
    for (int i = 0; i < 6; i++)
        cr_assert_gt(p[i], 0.0f);
}

Test(sampling, top_p_keeps_smallest_set_reaching_p)
{
    /* probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625 via logits = log(p) */
    const double probs[5] = { 0.5, 0.25, 0.125, 0.0625, 0.0625 };
    float x[5];
    for (int i = 0; i < 5; i++)
        x[i] = (float)log(probs[i]);
    float p[5];
    struct { float top_p; int kept; } cases[] = { { 0.3f, 1 }, { 0.45f, 1 }, { 0.6f, 2 }, { 0.7f, 2 }, { 0.8f, 3 },
                                                  { 0.9f, 4 }, { 0.99f, 5 }, { 0.01f, 1 } };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        mimo_sampling_params sp = { .temperature = 1.0f, .top_k = 0, .top_p = cases[c].top_p };
        mimo_sampling_probs(&sp, x, 5, p);
        double mass = 0.0;
        for (int i = 0; i < cases[c].kept; i++)
            mass += probs[i];
        for (int i = 0; i < 5; i++)
            cr_assert_float_eq(p[i], i < cases[c].kept ? probs[i] / mass : 0.0, 1e-5, "top_p %g token %d: %g",
                               cases[c].top_p, i, p[i]);
    }
    /* top-k first, then top-p on the renormalised top-k distribution: k=2 gives (2/3, 1/3); p=0.6 keeps 1 */
    mimo_sampling_params both = { .temperature = 1.0f, .top_k = 2, .top_p = 0.6f };
    mimo_sampling_probs(&both, x, 5, p);
    cr_assert_float_eq(p[0], 1.0, 1e-6);
    both.top_p = 0.7f;   /* 2/3 < 0.7: both kept */
    mimo_sampling_probs(&both, x, 5, p);
    cr_assert_float_eq(p[0], 2.0 / 3.0, 1e-5);
    cr_assert_float_eq(p[1], 1.0 / 3.0, 1e-5);
    cr_assert_eq(p[2], 0.0f);
}

Test(sampling, seeded_draws_are_deterministic)
{
    float x[50];
    for (int i = 0; i < 50; i++)
        x[i] = (float)sin(i * 0.7) * 2.0f;
    mimo_sampling_params sp = { .temperature = 0.8f, .top_k = 20, .top_p = 0.95f };
    float scratch[50];
    mimo_rng a, b, c;
    mimo_rng_init(&a, 7);
    mimo_rng_init(&b, 7);
    mimo_rng_init(&c, 8);
    int differ = 0;
    for (int t = 0; t < 200; t++) {
        int32_t ta = mimo_sample(&sp, x, 50, scratch, &a);
        int32_t tb = mimo_sample(&sp, x, 50, scratch, &b);
        int32_t tc = mimo_sample(&sp, x, 50, scratch, &c);
        cr_assert_eq(ta, tb, "same seed, draw %d", t);
        differ += ta != tc;
    }
    cr_assert_gt(differ, 0, "another seed must give another sequence");
}

Test(sampling, never_draws_a_zero_probability_token)
{
    const float probs[6] = { 0.0f, 0.3f, 0.0f, 0.7f, 0.0f, 0.0f };
    mimo_rng rng;
    mimo_rng_init(&rng, 3);
    for (int t = 0; t < 5000; t++) {
        int32_t i = mimo_sample_from_probs(probs, 6, &rng);
        cr_assert(i == 1 || i == 3, "drew token %d", i);
    }
}

/* Empirical frequencies over many draws are within 5 standard errors of the probabilities. */
Test(sampling, frequencies_match_probabilities)
{
    const float x[6] = { 1.0f, 0.2f, -0.5f, 2.0f, 0.0f, -3.0f };
    mimo_sampling_params sp = { .temperature = 1.3f, .top_k = 5, .top_p = 0.9f };
    float p[6], scratch[6];
    mimo_sampling_probs(&sp, x, 6, p);
    enum { DRAWS = 200000 };
    int count[6] = { 0 };
    mimo_rng rng;
    mimo_rng_init(&rng, 2024);
    for (int t = 0; t < DRAWS; t++)
        count[mimo_sample(&sp, x, 6, scratch, &rng)]++;
    for (int i = 0; i < 6; i++) {
        double f = (double)count[i] / DRAWS;
        double se = sqrt(p[i] * (1.0 - p[i]) / DRAWS);
        cr_assert_leq(fabs(f - p[i]), 5.0 * se + 1e-9, "token %d: frequency %g vs probability %g", i, f, p[i]);
        if (p[i] == 0.0f)
            cr_assert_eq(count[i], 0);
    }
}
