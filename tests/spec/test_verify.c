/* Verification (DFLASH.md): greedy prefix matching, and the statistical core of lossless sampling —
 * over 20,000+ draws on hand-made target/draft distributions, the tokens a block emits follow the
 * target's distribution (after temperature 0.7, top-k and top-p) for sampled and for argmax drafting. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "mimo/generate.h"
#include "spec_stats.h"

Test(verify, greedy_accepts_the_matching_prefix)
{
    int32_t bonus;
    const int32_t target[4] = {3, 5, 9, 2};
    const int32_t d1[3] = {3, 5, 7};
    cr_expect_eq(mimo_verify_greedy(d1, 3, target, &bonus), 2);
    cr_expect_eq(bonus, 9);
    const int32_t d2[3] = {3, 5, 9};
    cr_expect_eq(mimo_verify_greedy(d2, 3, target, &bonus), 3);
    cr_expect_eq(bonus, 2);
    const int32_t d3[3] = {4, 5, 9};
    cr_expect_eq(mimo_verify_greedy(d3, 3, target, &bonus), 0, "a later match does not count after a mismatch");
    cr_expect_eq(bonus, 3);
}

Test(verify, residual_distribution_on_hand_made_p_and_q)
{
    const float p[4] = {0.5f, 0.3f, 0.2f, 0.0f};
    const float q[4] = {0.2f, 0.5f, 0.1f, 0.2f};
    float r[4];
    cr_expect(mimo_residual_distribution(p, q, 1, 4, r));
    const float want[4] = {0.75f, 0.0f, 0.25f, 0.0f};
    for (int i = 0; i < 4; i++)
        cr_expect_float_eq(r[i], want[i], 1e-6, "r[%d]", i);
    /* one-hot q at x: p without x, renormalised */
    cr_expect(mimo_residual_distribution(p, NULL, 0, 4, r));
    const float want1[4] = {0.0f, 0.6f, 0.4f, 0.0f};
    for (int i = 0; i < 4; i++)
        cr_expect_float_eq(r[i], want1[i], 1e-6, "r[%d]", i);
    /* p == q: no residual mass; p itself is returned */
    cr_expect(!mimo_residual_distribution(p, p, 0, 4, r));
    for (int i = 0; i < 4; i++)
        cr_expect_float_eq(r[i], p[i], 0);
}

#define V 12
#define DRAWS 40000

/* Hand-made logits: three target rows and two draft rows, deliberately different. */
static const float target_logits[3][V] = {
    {2.0f, 1.5f, 1.4f, 0.2f, -0.3f, 0.9f, -2.0f, 0.0f, 1.1f, -1.0f, 0.4f, 0.3f},
    {-0.5f, 0.3f, 2.2f, 2.1f, 0.0f, -1.0f, 1.0f, 0.6f, -0.2f, 0.8f, 0.1f, -3.0f},
    {0.0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f, 1.0f, 1.1f}};
static const float draft_logits[2][V] = {
    {1.0f, 2.0f, 0.5f, 0.8f, 1.2f, -0.5f, 0.7f, 1.5f, 0.0f, 0.3f, -1.0f, 0.9f},
    {0.2f, -0.4f, 1.0f, 2.5f, 0.3f, 0.9f, 0.0f, 1.7f, 0.5f, -0.6f, 1.3f, 0.1f}};

static void distributions(float p[3][V], float q[2][V])
{
    mimo_sampling_params sp = {.temperature = 0.7f, .top_k = 7, .top_p = 0.9f};
    for (int r = 0; r < 3; r++)
        mimo_sampling_probs(&sp, target_logits[r], V, p[r]);
    for (int r = 0; r < 2; r++)
        mimo_sampling_probs(&sp, draft_logits[r], V, q[r]);
}

static void expect_distribution(const long *counts, const float *probs, long total, const char *what)
{
    double pr[V];
    for (int i = 0; i < V; i++)
        pr[i] = probs[i];
    double stat;
    int dof;
    double pv = spec_chi_square_p(counts, pr, V, total, &stat, &dof);
    cr_expect(pv > 0.001, "%s: chi2 %.2f dof %d p %.3g", what, stat, dof, pv);
}

/* Runs DRAWS blocks of two drafts; checks the first and second emitted tokens against p0 and p1
 * and the first position's acceptance rate against sum_x min(p0, q0) (one-hot q: p0(x)). */
static void run_block_sampling(bool sampled_drafts, uint64_t seed)
{
    float p[3][V], q[2][V], scratch[V];
    distributions(p, q);
    float rows[3 * V], qrows[2 * V];
    memcpy(rows, p, sizeof rows);
    memcpy(qrows, q, sizeof qrows);
    mimo_rng rng, draft_rng;
    mimo_rng_init(&rng, seed);
    mimo_rng_init(&draft_rng, seed + 1000);
    long first[V] = {0}, second[V] = {0}, n_second = 0, accepted_first = 0;
    for (int t = 0; t < DRAWS; t++) {
        int32_t draft[2], bonus;
        for (int i = 0; i < 2; i++)
            draft[i] = sampled_drafts ? mimo_spec_sample_probs(q[i], V, &draft_rng) : mimo_argmax(q[i], V);
        int a = mimo_verify_sampling(rows, sampled_drafts ? qrows : NULL, draft, 2, V, &rng, scratch, &bonus);
        cr_assert(a >= 0 && a <= 2);
        cr_assert(bonus >= 0 && bonus < V);
        int32_t emitted[3];
        for (int i = 0; i < a; i++)
            emitted[i] = draft[i];
        emitted[a] = bonus;
        first[emitted[0]]++;
        if (a >= 1) {
            accepted_first++;
            second[emitted[1]]++;
            n_second++;
        }
    }
    expect_distribution(first, p[0], DRAWS, sampled_drafts ? "sampled q, first token" : "argmax q, first token");
    expect_distribution(second, p[1], n_second, sampled_drafts ? "sampled q, second token" : "argmax q, second token");
    double expect_accept = 0;
    if (sampled_drafts) {
        for (int i = 0; i < V; i++)
            expect_accept += fmin(p[0][i], q[0][i]);
    } else {
        expect_accept = p[0][mimo_argmax(q[0], V)];
    }
    double rate = (double)accepted_first / DRAWS, sd = sqrt(expect_accept * (1 - expect_accept) / DRAWS);
    cr_expect(fabs(rate - expect_accept) < 5 * sd + 1e-9, "acceptance %.4f vs %.4f", rate, expect_accept);
    cr_expect_gt(accepted_first, DRAWS / 20, "the test must exercise acceptance, not only residuals");
    cr_expect_lt(accepted_first, DRAWS - DRAWS / 20, "the test must exercise residuals, not only acceptance");
}

Test(verify, sampled_drafting_is_lossless)
{
    run_block_sampling(true, 12345);
}

Test(verify, argmax_drafting_is_lossless)
{
    run_block_sampling(false, 777);
}

Test(verify, a_broken_rule_is_caught)
{
    /* The same harness must reject a verifier that skips the residual (samples the bonus from p
     * after a rejection): its first token over-weights the rejected draft. */
    float p[3][V], q[2][V];
    distributions(p, q);
    mimo_rng rng, draft_rng;
    mimo_rng_init(&rng, 5);
    mimo_rng_init(&draft_rng, 6);
    long first[V] = {0};
    for (int t = 0; t < DRAWS; t++) {
        int32_t x = mimo_spec_sample_probs(q[0], V, &draft_rng);
        double ratio = q[0][x] > 0 ? fmin(1.0, p[0][x] / q[0][x]) : 0;
        if (mimo_rng_uniform(&rng) < ratio)
            first[x]++;
        else
            first[mimo_spec_sample_probs(p[0], V, &rng)]++;
    }
    double pr[V];
    for (int i = 0; i < V; i++)
        pr[i] = p[0][i];
    cr_expect_lt(spec_chi_square_p(first, pr, V, DRAWS, NULL, NULL), 0.001, "the chi-square harness has power");
}

Test(verify, a_draft_outside_the_target_support_is_always_rejected)
{
    float p[3][V], q[2][V], scratch[V];
    distributions(p, q);
    int32_t outside = -1;
    for (int i = 0; i < V; i++)
        if (p[0][i] == 0.0f)
            outside = i;
    cr_assert_geq(outside, 0, "top-k/top-p leave some token out");
    mimo_rng rng;
    mimo_rng_init(&rng, 9);
    float rows[3 * V];
    memcpy(rows, p, sizeof rows);
    for (int t = 0; t < 2000; t++) {
        int32_t draft[2] = {outside, 0}, bonus;
        cr_assert_eq(mimo_verify_sampling(rows, NULL, draft, 2, V, &rng, scratch, &bonus), 0);
        cr_assert_gt(p[0][bonus], 0.0f);
    }
}
