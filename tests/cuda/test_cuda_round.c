/* The device round (engine/cuda/cuda_round.cu): its sampling and verification kernels against the
 * host's verification (engine/spec/verify.c, engine/api/sampling.c) on the same rows and the same
 * uniforms, and whole rounds against the host loop: greedy and sampled plain steps token for token,
 * greedy DFlash on the device equal to greedy autoregressive decoding, sampled DFlash reproducible
 * and consistent, a stop token inside a block rolled back. Skips where no CUDA device is present.
 * The kernel cases use fixed seeds: a draw that lands within float rounding of a boundary could
 * legitimately go either way, and a fixed set keeps the comparison exact and repeatable. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/cuda/cuda_testing.h"
#include "mimo/backend.h"
#include "mimo/engine.h"
#include "mimo/generate.h"
#include "mimo/sampling.h"
#include "mimo/synth.h"
#include "../spec/spec_rig.h"

#ifdef MIMO_HAVE_CUDA
#include "cuda_rig.h"

/* Gaussian-ish logits (sum of uniforms) of spread `scale`. */
static void random_row(float *row, int V, float scale, mimo_rng *rng)
{
    for (int v = 0; v < V; v++)
        row[v] = scale * (float)(mimo_rng_uniform(rng) + mimo_rng_uniform(rng) + mimo_rng_uniform(rng) - 1.5);
}

typedef struct {
    int accepted, used;
    int32_t bonus;
    int32_t drafts[MIMO_DFLASH_MAX_BLOCK];
} verdict;

/* The host loop's decisions for one round on these rows (generate.c: draft_block, dflash_round). */
static verdict host_round(const float *tl, const float *dl, int B, int V, const mimo_sampling_params *params,
                          bool draft_sampled, int forced, const int32_t *given_drafts, mimo_rng *draft_rng,
                          mimo_rng *verify_rng)
{
    verdict h;
    memset(&h, 0, sizeof h);
    const mimo_sampling_params sp = *params;
    const float T = sp.temperature;
    float *p = malloc((size_t)B * V * sizeof *p), *q = malloc((size_t)B * V * sizeof *q), *scratch = malloc((size_t)V * sizeof *scratch);
    const bool dsampled = T > 0 && draft_sampled && B > 1;
    for (int i = 1; i < B; i++) {
        if (dsampled) {
            mimo_sampling_probs(&sp, dl + (size_t)i * V, V, q + (size_t)(i - 1) * V);
            h.drafts[i - 1] = mimo_spec_sample_probs(q + (size_t)(i - 1) * V, V, draft_rng);
        } else {
            h.drafts[i - 1] = given_drafts[i - 1];
        }
    }
    int32_t targmax[MIMO_DFLASH_MAX_BLOCK];
    for (int j = 0; j < B; j++) {
        targmax[j] = mimo_argmax(tl + (size_t)j * V, V);
        mimo_sampling_probs(&sp, tl + (size_t)j * V, V, p + (size_t)j * V);
    }
    const uint64_t c0 = verify_rng->counter;
    if (forced >= 0) {
        h.accepted = forced;
        h.bonus = T == 0 ? targmax[forced] : mimo_spec_sample_probs(p + (size_t)forced * V, V, verify_rng);
    } else if (T == 0) {
        h.accepted = mimo_verify_greedy(h.drafts, B - 1, targmax, &h.bonus);
    } else {
        h.accepted = mimo_verify_sampling(p, dsampled ? q : NULL, h.drafts, B - 1, V, verify_rng, scratch, &h.bonus);
    }
    h.used = (int)(verify_rng->counter - c0);
    free(p);
    free(q);
    free(scratch);
    return h;
}

/* Logits of few distinct values (most of them the lowest): probabilities tie in buckets larger than
 * the device selection's sort (cuda_row_select.cuh), so the cut falls among ties taken in index order. */
static void tied_row(float *row, int V, mimo_rng *rng)
{
    for (int v = 0; v < V; v++) {
        const double u = mimo_rng_uniform(rng);
        row[v] = u < 0.8 ? 0.0f : u < 0.95 ? 1.0f : 2.5f;
    }
}

/* top-k / top-p settings the cases cycle through (T comes from the case). None puts top-p exactly on
 * a cumulative mass of tied probabilities (top-k 40 with top-p 0.8 would: 32 ties of 1/40 each sum to
 * 0.8 exactly, below the float 0.8f, which the host's float rounding of 1/40 reaches and the device's
 * exact fixed-point sum does not: a cut within rounding of its boundary, like a draw at one). */
static const struct {
    int top_k;
    float top_p;
} cuts[] = {{0, 1.0f}, {5, 1.0f}, {0, 0.9f}, {40, 0.83f}, {0, 0.3f}, {3000, 0.97f}, {1, 1.0f}, {200, 1.0f}};

Test(cuda_round, verification_kernels_match_the_host_verification, .timeout = 300)
{
    need_gpu();
    const int blocks[] = {1, 2, 4, 8, 16};
    const int vocabs[] = {7, 300, 4099};
    const float temps[] = {0.0f, 0.6f, 1.0f, 1.7f};
    const int ncuts = (int)(sizeof cuts / sizeof *cuts);
    mimo_rng rng;
    mimo_rng_init(&rng, 20261126);
    long cases = 0, rejections = 0, full = 0, drafted = 0, cut_cases = 0;
    for (size_t bi = 0; bi < sizeof blocks / sizeof *blocks; bi++)
        for (size_t vi = 0; vi < sizeof vocabs / sizeof *vocabs; vi++)
            for (size_t ti = 0; ti < sizeof temps / sizeof *temps; ti++)
                for (int mode = 0; mode < 3; mode++) {   /* argmax drafts, sampled drafts, forced */
                    const int B = blocks[bi], V = vocabs[vi];
                    const float T = temps[ti];
                    for (int rep = 0; rep < 4; rep++) {
                        float *tl = malloc((size_t)B * V * sizeof *tl), *dl = malloc((size_t)B * V * sizeof *dl);
                        /* the drafter sees the target's next-row logits plus noise: acceptance is mixed;
                         * rep 3: tied probabilities */
                        const float scale = 2.0f + 2.0f * rep;
                        for (int j = 0; j < B; j++)
                            if (rep == 3)
                                tied_row(tl + (size_t)j * V, V, &rng);
                            else
                                random_row(tl + (size_t)j * V, V, scale, &rng);
                        for (int i = 0; i < B; i++) {
                            float *row = dl + (size_t)i * V;
                            random_row(row, V, 1.0f, &rng);
                            if (rep == 3)
                                memcpy(row, tl + (size_t)(i > 0 ? i - 1 : 0) * V, (size_t)V * sizeof *row);
                            else if (i > 0)
                                for (int v = 0; v < V; v++)
                                    row[v] += tl[(size_t)(i - 1) * V + v];
                        }
                        const mimo_sampling_params sp = {T, cuts[cases % ncuts].top_k, cuts[cases % ncuts].top_p};
                        cut_cases += T > 0 && (sp.top_k > 0 || sp.top_p < 1.0f);
                        int32_t given[MIMO_DFLASH_MAX_BLOCK];
                        for (int i = 1; i < B; i++)   /* mostly the drafter's argmax, sometimes a random token */
                            given[i - 1] = mimo_rng_uniform(&rng) < 0.8 ? mimo_argmax(dl + (size_t)i * V, V)
                                                                         : (int32_t)(mimo_rng_uniform(&rng) * V);
                        const bool dsampled = mode == 1;
                        const int forced = mode == 2 ? (int)(mimo_rng_uniform(&rng) * B) : -1;
                        mimo_rng draft_rng, verify_rng;
                        mimo_rng_init(&draft_rng, (uint64_t)cases * 2 + 1);
                        mimo_rng_init(&verify_rng, (uint64_t)cases * 2 + 2);
                        double du[MIMO_DFLASH_MAX_BLOCK], vu[MIMO_DFLASH_MAX_BLOCK + 1];
                        mimo_rng peek = draft_rng;
                        for (int i = 0; i < B; i++)
                            du[i] = mimo_rng_uniform(&peek);
                        peek = verify_rng;
                        for (int i = 0; i <= B; i++)
                            vu[i] = mimo_rng_uniform(&peek);
                        verdict h = host_round(tl, dl, B, V, &sp, dsampled, forced, given, &draft_rng, &verify_rng);
                        int32_t drafts[MIMO_DFLASH_MAX_BLOCK];
                        memcpy(drafts, given, sizeof drafts);
                        int accepted = -7, used = -7;
                        int32_t bonus = -7;
                        mimo_error err = {{0}};
                        cr_assert_eq(mimo_cuda_test_round_verify(tl, dl, B, V, &sp, dsampled, du, vu, forced, drafts,
                                                                 &accepted, &bonus, &used, &err),
                                     0, "%s", err.msg);
                        char what[96];
                        snprintf(what, sizeof what, "%s, top-k %d top-p %g", mode == 0 ? "argmax drafts" : mode == 1 ? "sampled drafts" : "forced",
                                 sp.top_k, (double)sp.top_p);
                        for (int i = 0; i < B - 1; i++)
                            cr_assert_eq(drafts[i], h.drafts[i], "B=%d V=%d T=%g %s rep %d: draft %d is %d, host %d", B, V,
                                         T, what, rep, i, drafts[i], h.drafts[i]);
                        cr_assert_eq(accepted, h.accepted, "B=%d V=%d T=%g %s rep %d: accepted %d, host %d", B, V, T, what,
                                     rep, accepted, h.accepted);
                        cr_assert_eq(bonus, h.bonus, "B=%d V=%d T=%g %s rep %d: bonus %d, host %d", B, V, T, what, rep,
                                     bonus, h.bonus);
                        cr_assert_eq(used, h.used, "B=%d V=%d T=%g %s rep %d: uniforms used %d, host %d", B, V, T, what,
                                     rep, used, h.used);
                        if (mode != 2 && B > 1) {
                            drafted++;
                            rejections += accepted < B - 1;
                            full += accepted == B - 1;
                        }
                        cases++;
                        free(tl);
                        free(dl);
                    }
                }
    /* the cases exercise both outcomes, or the comparison above proves little */
    cr_expect_gt(rejections, drafted / 10, "%ld rejections in %ld drafted rounds", rejections, drafted);
    cr_expect_gt(full, 0, "no round accepted its whole block (%ld drafted)", drafted);
    cr_log_info("%ld cases (%ld sampled with top-k / top-p), %ld drafted rounds: %ld with a rejection, %ld fully accepted",
                cases, cut_cases, drafted, rejections, full);
}

/* ---- whole rounds through mimo_generate ---- */

static void run(mimo_engine *e, const int32_t *prompt, int n, const mimo_generate_options *o, mimo_generation *g)
{
    mimo_error err = {{0}};
    cr_assert_eq(mimo_generate(e, prompt, n, o, g, NULL, &err), 0, "%s", err.msg);
}

static void expect_same_tokens(const mimo_generation *a, const mimo_generation *b, const char *what)
{
    cr_assert_eq(a->n_tokens, b->n_tokens, "%s: %d tokens vs %d", what, a->n_tokens, b->n_tokens);
    for (int i = 0; i < a->n_tokens; i++)
        cr_assert_eq(a->tokens[i], b->tokens[i], "%s: token %d is %d vs %d", what, i, a->tokens[i], b->tokens[i]);
}

/* Rounds account for every token; KV and drafter context hold exactly the emitted positions. */
static void expect_consistent(const rig *r, const mimo_generation *g, int n_prompt, int B, const char *what)
{
    int emitted = 1;
    for (int k = 0; k < g->n_rounds; k++) {
        const mimo_round_record *rr = &g->rounds[k];
        cr_expect_eq(rr->drafted, B - 1, "%s round %d", what, k);
        cr_expect(rr->accepted >= 0 && rr->accepted <= B - 1, "%s round %d: accepted %d", what, k, rr->accepted);
        if (k + 1 < g->n_rounds)
            cr_expect_eq(rr->emitted, rr->accepted + 1, "%s round %d", what, k);
        cr_expect(rr->t_verify_us > 0, "%s round %d: device verify time recorded", what, k);
        cr_expect(B == 1 || rr->t_draft_us > 0, "%s round %d: device draft time recorded", what, k);
        emitted += rr->emitted;
    }
    cr_expect_eq(emitted, g->n_tokens, "%s: rounds account for every token", what);
    cr_expect_eq(mimo_engine_length(r->e), n_prompt + g->n_tokens - 1, "%s: the last token is not in the KV yet", what);
    if (B > 1)
        cr_expect_eq(mimo_engine_drafter_length(r->e), mimo_engine_length(r->e), "%s: drafter context = target KV", what);
}

Test(cuda_round, plain_steps_on_the_device_equal_the_host_loop, .timeout = 240)
{
    need_gpu();
    rig r;
    rig_open(&r, MIMO_BACKEND_CUDA, MIMO_EXEC_GRAPH, 256, false, false);
    mimo_sampling_params probe = {0.9f, 0, 1.0f};
    cr_assert(mimo_engine_has_device_round(r.e, &probe), "the CUDA backend runs temperature rounds on the device");
    probe.top_k = 5;
    probe.top_p = 0.9f;
    cr_assert(mimo_engine_has_device_round(r.e, &probe), "and top-k / top-p ones");
    int32_t prompt[12];
    spec_random_prompt(prompt, 12, r.cfg.vocab_size, 91);
    const mimo_sampling_params settings[] = {{0.0f, 0, 1.0f}, {0.9f, 0, 1.0f}, {1.5f, 0, 1.0f},
                                             {0.9f, 20, 1.0f}, {1.2f, 0, 0.8f}, {1.0f, 50, 0.9f}};
    for (size_t ti = 0; ti < sizeof settings / sizeof *settings; ti++) {
        mimo_generate_options o;
        mimo_generate_options_default(&o);
        o.max_new_tokens = 64;
        o.sampling = settings[ti];
        o.seed = 5 + ti;
        mimo_generation dev, host;
        run(r.e, prompt, 12, &o, &dev);
        expect_consistent(&r, &dev, 12, 1, "device plain steps");
        o.host_rounds = true;
        run(r.e, prompt, 12, &o, &host);
        char what[112];
        snprintf(what, sizeof what, "plain steps at T=%g top-k %d top-p %g, device vs host", (double)o.sampling.temperature,
                 o.sampling.top_k, (double)o.sampling.top_p);
        expect_same_tokens(&dev, &host, what);
        mimo_generation_free(&dev);
        mimo_generation_free(&host);
    }
    rig_close(&r);
}

Test(cuda_round, greedy_dflash_on_the_device_equals_autoregressive, .timeout = 300)
{
    need_gpu();
    const mimo_exec_mode execs[] = {MIMO_EXEC_EAGER, MIMO_EXEC_GRAPH, MIMO_EXEC_PERSISTENT};
    for (int xi = 0; xi < 3; xi++) {
        rig r;
        rig_open(&r, MIMO_BACKEND_CUDA, execs[xi], 256, false, false);
        for (int pi = 0; pi < 2; pi++) {
            int32_t prompt[24];
            const int n = pi ? 19 : 4;
            spec_random_prompt(prompt, n, r.cfg.vocab_size, 400 + pi);
            mimo_generate_options o;
            mimo_generate_options_default(&o);
            o.max_new_tokens = 40;
            o.host_rounds = true;
            mimo_generation ar, ar_dev;
            run(r.e, prompt, n, &o, &ar);
            o.host_rounds = false;   /* plain rounds on the device (persistent: the persistent kernel) */
            run(r.e, prompt, n, &o, &ar_dev);
            char what_ar[80];
            snprintf(what_ar, sizeof what_ar, "exec %s prompt %d: device vs host autoregressive rounds",
                     mimo_exec_name(execs[xi]), pi);
            expect_same_tokens(&ar_dev, &ar, what_ar);
            mimo_generation_free(&ar_dev);
            o.dflash = true;
            const int blocks[] = {2, 4, 8, 16};
            for (int bi = 0; bi < 4; bi++) {
                o.block = blocks[bi];
                mimo_generation dev, host;
                run(r.e, prompt, n, &o, &dev);
                char what[96];
                snprintf(what, sizeof what, "exec %s prompt %d B=%d: device DFlash vs autoregressive",
                         mimo_exec_name(execs[xi]), pi, o.block);
                expect_same_tokens(&dev, &ar, what);
                expect_consistent(&r, &dev, n, o.block, what);
                o.host_rounds = true;
                run(r.e, prompt, n, &o, &host);
                o.host_rounds = false;
                expect_same_tokens(&host, &ar, "host DFlash vs autoregressive");
                mimo_generation_free(&dev);
                mimo_generation_free(&host);
            }
            mimo_generation_free(&ar);
        }
        rig_close(&r);
    }
}

Test(cuda_round, sampled_dflash_on_the_device_is_reproducible_and_consistent, .timeout = 300)
{
    need_gpu();
    rig r;
    rig_open(&r, MIMO_BACKEND_CUDA, MIMO_EXEC_GRAPH, 256, false, false);
    int32_t prompt[8];
    spec_random_prompt(prompt, 8, r.cfg.vocab_size, 77);
    long accepted = 0, drafted = 0;
    for (int mode = 0; mode < 4; mode++) {   /* argmax / sampled drafts, without and with top-k + top-p */
        mimo_generate_options o;
        mimo_generate_options_default(&o);
        o.max_new_tokens = 96;
        o.sampling.temperature = 0.8f;
        if (mode >= 2) {
            o.sampling.top_k = 20;
            o.sampling.top_p = 0.9f;
        }
        o.dflash = true;
        o.block = 8;
        o.seed = 31;
        o.draft_mode = mode % 2 ? MIMO_DRAFT_SAMPLED : MIMO_DRAFT_ARGMAX;
        const char *what = mode % 2 ? "sampled drafts" : "argmax drafts";
        mimo_generation a, b;
        run(r.e, prompt, 8, &o, &a);
        expect_consistent(&r, &a, 8, 8, what);
        run(r.e, prompt, 8, &o, &b);
        expect_same_tokens(&a, &b, "the same seed twice");
        if (mode >= 2) {   /* the device's kept sets are the host's: the same draws, the same tokens */
            mimo_generation h;
            o.host_rounds = true;
            run(r.e, prompt, 8, &o, &h);
            o.host_rounds = false;
            expect_same_tokens(&a, &h, mode % 2 ? "top-k + top-p, sampled drafts: device vs host rounds"
                                                : "top-k + top-p, argmax drafts: device vs host rounds");
            mimo_generation_free(&h);
        }
        o.seed = 32;
        mimo_generation c;
        run(r.e, prompt, 8, &o, &c);
        int differ = a.n_tokens != c.n_tokens;
        for (int i = 0; !differ && i < a.n_tokens; i++)
            differ = a.tokens[i] != c.tokens[i];
        cr_expect(differ, "another seed draws another continuation");
        for (int k = 0; k < a.n_rounds; k++) {
            accepted += a.rounds[k].accepted;
            drafted += a.rounds[k].drafted;
        }
        mimo_generation_free(&a);
        mimo_generation_free(&b);
        mimo_generation_free(&c);
    }
    cr_log_info("sampled DFlash on the device: %ld of %ld drafts accepted", accepted, drafted);
    rig_close(&r);
}

/* Forced full acceptance (every round takes its 7 drafts): a stop token, or max-new, inside a block
 * ends the request mid-block, and the round's kept positions are rolled back to the emitted ones. */
Test(cuda_round, a_stop_inside_a_block_rolls_back, .timeout = 120)
{
    need_gpu();
    rig r;
    rig_open(&r, MIMO_BACKEND_CUDA, MIMO_EXEC_EAGER, 256, false, false);
    mimo_error err = {{0}};
    int32_t prompt[6];
    spec_random_prompt(prompt, 6, r.cfg.vocab_size, 12);
    mimo_generate_options o;
    mimo_generate_options_default(&o);
    o.max_new_tokens = 41;
    o.dflash = true;
    o.block = 8;
    o.accept = MIMO_ACCEPT_FORCED;
    cr_assert_eq(mimo_accept_profile_parse("hist:0,0,0,0,0,0,0,1", NULL, 8, &o.profile, &err), 0, "%s", err.msg);
    mimo_generation full;
    run(r.e, prompt, 6, &o, &full);
    cr_assert_eq(full.n_tokens, 41);
    for (int k = 0; k < full.n_rounds; k++)
        cr_assert_eq(full.rounds[k].accepted, 7, "the profile accepts every draft");
    /* token i of the output was emitted inside a block unless i % 8 == 0 (a bonus, or the prefill's):
     * stop at a token whose first appearance is inside a block */
    int stop_at = -1;
    for (int i = 1; i < full.n_tokens && stop_at < 0; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= full.tokens[j] == full.tokens[i];
        if (!seen && i % 8 != 0)
            stop_at = i;
    }
    cr_assert_geq(stop_at, 1, "a token first emitted inside a block to stop at");
    int32_t stop = full.tokens[stop_at];
    for (int variant = 0; variant < 2; variant++) {
        o.stop_tokens = variant ? NULL : &stop;
        o.n_stop_tokens = variant ? 0 : 1;
        o.max_new_tokens = variant ? 13 : 41;   /* 13: four tokens into the second round's block */
        const int want = variant ? 13 : stop_at + 1;
        mimo_generation g;
        run(r.e, prompt, 6, &o, &g);
        cr_assert_eq(g.n_tokens, want, "ends after %d tokens (got %d)", want, g.n_tokens);
        cr_expect_eq(g.stop_reason, variant ? MIMO_STOP_MAX_TOKENS : MIMO_STOP_STOP_TOKEN);
        for (int i = 0; i < g.n_tokens; i++)
            cr_assert_eq(g.tokens[i], full.tokens[i], "token %d", i);
        cr_expect_lt(g.rounds[g.n_rounds - 1].emitted, 8, "the last round stopped inside its block");
        expect_consistent(&r, &g, 6, 8, variant ? "max-new inside a block" : "stop token inside a block");
        mimo_generation_free(&g);
    }
    mimo_generation_free(&full);
    rig_close(&r);
}

#else

Test(cuda_round, needs_cuda_build)
{
    cr_skip_test("no CUDA device: this build has no CUDA backend (nvcc was not found at configure time)");
}

#endif
