/* End-to-end losslessness of sampled DFlash on a small-vocabulary model (tiny's layer mix at hidden 32,
 * vocabulary 64), 20,000 generations per drafting mode (test_verify adds 20,000+ draws on hand-made
 * distributions, the statistical core): with temperature 0.7,
 * top-k and top-p, the 2nd and 3rd generated tokens (the first round's) follow the exact marginals
 * of plain sampling, computed by enumerating the target's kept tokens. Drafting by argmax (one-hot
 * q) and by sampling (full q), with doubles that propose plausible tokens so that both acceptance
 * and residual paths run, and with the real (random) drafter. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/generate.h"
#include "spec_rig.h"
#include "spec_stats.h"

#define PROMPT 5
#define RUNS 20000

static const mimo_sampling_params params = {.temperature = 0.7f, .top_k = 8, .top_p = 0.9f};

typedef struct {
    int V;
    float *p1;     /* [V] after the prompt */
    float **p2;    /* [V] rows per t1 (NULL outside the support) */
    float ***p3;   /* [t1][t2] rows */
    double *m2, *m3;   /* exact marginals of tokens 2 and 3 */
} exact_law;

static float *probs_after(mimo_engine *e, const int32_t *seq, int n)
{
    mimo_error err = {{0}};
    int V = mimo_engine_config(e)->vocab_size;
    float *logits = malloc((size_t)n * V * sizeof(float)), *p = malloc((size_t)V * sizeof(float));
    mimo_forward_out fo = {logits, NULL, NULL};
    cr_assert_eq(mimo_engine_truncate(e, 0, &err), 0);
    cr_assert_eq(mimo_engine_forward(e, seq, n, &fo, &err), 0, "%s", err.msg);
    mimo_sampling_probs(&params, logits + (size_t)(n - 1) * V, V, p);
    free(logits);
    return p;
}

static void exact_marginals(mimo_engine *e, const int32_t *prompt, exact_law *law)
{
    int V = law->V = mimo_engine_config(e)->vocab_size;
    int32_t seq[PROMPT + 2];
    memcpy(seq, prompt, PROMPT * sizeof *seq);
    law->p1 = probs_after(e, seq, PROMPT);
    law->p2 = calloc((size_t)V, sizeof *law->p2);
    law->p3 = calloc((size_t)V, sizeof *law->p3);
    law->m2 = calloc((size_t)V, sizeof *law->m2);
    law->m3 = calloc((size_t)V, sizeof *law->m3);
    for (int a = 0; a < V; a++) {
        if (law->p1[a] <= 0)
            continue;
        seq[PROMPT] = a;
        law->p2[a] = probs_after(e, seq, PROMPT + 1);
        law->p3[a] = calloc((size_t)V, sizeof **law->p3);
        for (int b = 0; b < V; b++) {
            if (law->p2[a][b] <= 0)
                continue;
            law->m2[b] += (double)law->p1[a] * law->p2[a][b];
            seq[PROMPT + 1] = b;
            law->p3[a][b] = probs_after(e, seq, PROMPT + 2);
            for (int c = 0; c < V; c++)
                law->m3[c] += (double)law->p1[a] * law->p2[a][b] * law->p3[a][b][c];
        }
    }
}

static void free_law(exact_law *law)
{
    for (int a = 0; a < law->V; a++) {
        if (law->p3[a])
            for (int b = 0; b < law->V; b++)
                free(law->p3[a][b]);
        free(law->p3[a]);
        free(law->p2[a]);
    }
    free(law->p1);
    free(law->p2);
    free(law->p3);
    free(law->m2);
    free(law->m3);
}

/* A double that knows the target's conditionals: proposes their most likely token (argmax mode)
 * or samples from a blurred copy q = 0.6 p + 0.4 uniform-over-8-tokens (sampled mode, q returned). */
typedef struct {
    const exact_law *law;
    bool sampled;
    mimo_rng rng;
} law_drafter;

static int law_propose(void *ctx, const int32_t *seq, int n_seq, int n_draft, int32_t *proposals, float *q,
                       bool *q_filled, mimo_error *err)
{
    law_drafter *d = ctx;
    const exact_law *law = d->law;
    int V = law->V;
    for (int i = 0; i < n_draft; i++) {
        const float *p = NULL;
        int gen = n_seq - PROMPT + i;   /* index of the proposed token among the generated */
        if (gen == 1 && law->p2[seq[PROMPT]])
            p = law->p2[seq[PROMPT]];
        else if (gen == 2 && law->p3[seq[PROMPT]])
            p = law->p3[seq[PROMPT]][i == 0 ? seq[PROMPT + 1] : proposals[0]];
        float *qi = q + (size_t)i * V;
        for (int t = 0; t < V; t++)
            qi[t] = (p ? 0.6f * p[t] : 0.0f) + (t < 8 ? 0.4f / 8 : 0.0f) + (p ? 0.0f : 0.6f / V);
        proposals[i] = d->sampled ? mimo_spec_sample_probs(qi, V, &d->rng) : mimo_argmax(qi, V);
    }
    *q_filled = d->sampled;
    return 0;
}

static void expect_law(const long *counts, const double *m, int V, long total, const char *what)
{
    double stat;
    int dof;
    double p = spec_chi_square_p(counts, m, V, total, &stat, &dof);
    cr_expect(p > 0.001, "%s: chi2 %.1f dof %d p %.3g", what, stat, dof, p);
}

static void run(spec_rig *rig, const int32_t *prompt, const exact_law *law, mimo_draft_mode mode, bool use_double,
                int runs, const char *what)
{
    int V = law->V;
    long *c2 = calloc((size_t)V, sizeof *c2), *c3 = calloc((size_t)V, sizeof *c3);
    long accepted = 0, rounds = 0;
    mimo_generate_options o;
    mimo_generate_options_default(&o);
    o.sampling = params;
    o.max_new_tokens = 3;
    o.dflash = true;
    o.block = 3;
    o.draft_mode = mode;
    law_drafter d = {law, mode == MIMO_DRAFT_SAMPLED, {0, 0}};
    mimo_rng_init(&d.rng, 4242);
    mimo_draft_override ovr = {law_propose, &d};
    for (int r = 0; r < runs; r++) {
        mimo_generation g;
        mimo_error err = {{0}};
        o.seed = 1000003ull * (uint64_t)r + 17;
        cr_assert_eq(mimo_generate_with_override(rig->e, prompt, PROMPT, &o, use_double ? &ovr : NULL, &g, NULL, &err), 0,
                     "%s", err.msg);
        cr_assert_eq(g.n_tokens, 3);
        c2[g.tokens[1]]++;
        c3[g.tokens[2]]++;
        for (int i = 0; i < g.n_rounds; i++) {
            accepted += g.rounds[i].accepted;
            rounds++;
        }
        mimo_generation_free(&g);
    }
    char label[128];
    snprintf(label, sizeof label, "%s, token 2", what);
    expect_law(c2, law->m2, V, runs, label);
    snprintf(label, sizeof label, "%s, token 3", what);
    expect_law(c3, law->m3, V, runs, label);
    if (use_double)
        cr_expect_gt(accepted, rounds / 10, "%s: acceptance must be exercised (%ld of %ld rounds)", what, accepted, rounds);
    free(c2);
    free(c3);
}

Test(sampling_e2e, dflash_sampling_matches_plain_sampling, .timeout = 900)
{
    spec_rig rig;
    mimo_config cfg = spec_tiny_config(false);
    cfg.hidden_size = 32;   /* small and fast: 20,000 generations per drafting mode */
    cfg.vocab_size = 64;
    spec_rig_open_config(&rig, &cfg, 21, true, 64);
    int32_t prompt[PROMPT];
    spec_random_prompt(prompt, PROMPT, rig.cfg.vocab_size, 31);
    exact_law law;
    exact_marginals(rig.e, prompt, &law);

    /* plain sampling against the same law: the harness itself is right */
    {
        long *c2 = calloc((size_t)law.V, sizeof *c2);
        mimo_generate_options o;
        mimo_generate_options_default(&o);
        o.sampling = params;
        o.max_new_tokens = 2;
        for (int r = 0; r < RUNS / 2; r++) {
            mimo_generation g;
            mimo_error err = {{0}};
            o.seed = (uint64_t)r * 7919 + 3;
            cr_assert_eq(mimo_generate(rig.e, prompt, PROMPT, &o, &g, NULL, &err), 0, "%s", err.msg);
            c2[g.tokens[1]]++;
            mimo_generation_free(&g);
        }
        expect_law(c2, law.m2, law.V, RUNS / 2, "plain sampling, token 2");
        free(c2);
    }
    run(&rig, prompt, &law, MIMO_DRAFT_ARGMAX, true, RUNS, "argmax drafting (double)");
    run(&rig, prompt, &law, MIMO_DRAFT_SAMPLED, true, RUNS, "sampled drafting (double)");
    run(&rig, prompt, &law, MIMO_DRAFT_SAMPLED, false, RUNS / 2, "sampled drafting (real drafter)");
    free_law(&law);
    spec_rig_close(&rig);
}
