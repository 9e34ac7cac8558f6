/* The DFlash drafter on the GPU (engine/cuda/cuda_drafter.cu) against the CPU drafter (the
 * reference) on the tiny preset (and at hidden 128 and 2048: the dense bulk kernel's GEMVs, the MiMo head
 * width): drafter logits over several rounds of append / draft / truncate (context past the window, blocks
 * 2..16, with and without mask_embedding, value scale != 1; both block attention kernels);
 * greedy DFlash on the GPU equals greedy autoregressive decoding on the GPU token for token (real
 * drafter and an always-agreeing double, eager and graph targets, several prompts and block sizes);
 * forced acceptance runs on the GPU. Skips where no CUDA device is present (CI). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/backend.h"
#include "support.h"
#include "mimo/engine.h"
#include "mimo/generate.h"
#include "mimo/synth.h"
#include "../spec/spec_rig.h"

#ifdef MIMO_HAVE_CUDA
#include "../../engine/cuda/cuda_testing.h"
#include "cuda_rig.h"

static void drafter_rounds_match_cpu(bool all_swa, bool drop_mask_embedding, int hidden)
{
    need_gpu();
    rig cpu, gpu;
    rig_open_hidden(&cpu, MIMO_BACKEND_CPU, MIMO_EXEC_EAGER, 96, all_swa, drop_mask_embedding, hidden);
    rig_open_hidden(&gpu, MIMO_BACKEND_CUDA, MIMO_EXEC_EAGER, 96, all_swa, drop_mask_embedding, hidden);
    const int NF = cpu.dcfg.n_target_layers, H = cpu.cfg.hidden_size, V = cpu.cfg.vocab_size;
    const int mask = cpu.dcfg.mask_token_id;
    /* Rounds of (append n, draft B, truncate to keep): 20 at once crosses a 16-position launch and
     * the window (8); truncations drop rejected tails like the decode loop's rollback. */
    const struct { int append, B, keep_back; } rounds[] = {
        {20, 4, 3}, {3, 8, 0}, {5, 16, 2}, {1, 2, 0}, {17, 5, 4}, {9, 3, 0},
    };
    float *feat = malloc((size_t)32 * NF * H * sizeof *feat);
    float *lg = malloc((size_t)MIMO_DFLASH_MAX_BLOCK * V * sizeof *lg);
    float *lc = malloc((size_t)MIMO_DFLASH_MAX_BLOCK * V * sizeof *lc);
    int32_t ag[MIMO_DFLASH_MAX_BLOCK], ac[MIMO_DFLASH_MAX_BLOCK], block[MIMO_DFLASH_MAX_BLOCK];
    mimo_rng rng;
    mimo_rng_init(&rng, 2026);
    mimo_error err = {{0}};
    for (size_t r = 0; r < sizeof rounds / sizeof rounds[0]; r++) {
        const int n = rounds[r].append, B = rounds[r].B;
        for (int i = 0; i < n * NF * H; i++)
            feat[i] = (float)(2 * mimo_rng_uniform(&rng) - 1);
        cr_assert_eq(mimo_engine_drafter_append(cpu.e, feat, n, &err), 0, "%s", err.msg);
        cr_assert_eq(mimo_engine_drafter_append(gpu.e, feat, n, &err), 0, "%s", err.msg);
        cr_assert_eq(mimo_engine_drafter_length(gpu.e), mimo_engine_drafter_length(cpu.e));
        block[0] = (int32_t)((r * 131 + 7) % (size_t)V);
        for (int i = 1; i < B; i++)
            block[i] = mask;
        if (B > 4)
            block[2] = 11;   /* a real token inside the block takes its embedding row */
        mimo_forward_out og = {lg, ag, NULL}, oc = {lc, ac, NULL};
        cr_assert_eq(mimo_engine_draft(gpu.e, block, B, &og, &err), 0, "%s", err.msg);
        cr_assert_eq(mimo_engine_draft(cpu.e, block, B, &oc, &err), 0, "%s", err.msg);
        double e = mimo_test_rel_err(lg, lc, (size_t)B * V);
        cr_expect_leq(e, 1e-4, "round %zu (context %d, B=%d): GPU drafter logits vs CPU: rel err %.3g", r,
                      mimo_engine_drafter_length(cpu.e), B, e);
        for (int i = 0; i < B; i++)
            if (mimo_test_top2_margin(lc + (size_t)i * V, V) > 1e-2f)   /* clear winners only: the logits agree to ~1e-4 */
                cr_expect_eq(ag[i], ac[i], "round %zu block position %d: argmax %d vs CPU %d", r, i, ag[i], ac[i]);
        /* argmax only (no logits buffer) gives the same proposals */
        int32_t ag2[MIMO_DFLASH_MAX_BLOCK];
        mimo_forward_out oa = {NULL, ag2, NULL};
        cr_assert_eq(mimo_engine_draft(gpu.e, block, B, &oa, &err), 0, "%s", err.msg);
        for (int i = 0; i < B; i++)
            cr_expect_eq(ag2[i], ag[i], "argmax-only draft differs at %d", i);
        /* drafting leaves the context alone; the rollback drops the tail in both */
        int keep = mimo_engine_drafter_length(cpu.e) - rounds[r].keep_back;
        cr_assert_eq(mimo_engine_drafter_truncate(cpu.e, keep, &err), 0, "%s", err.msg);
        cr_assert_eq(mimo_engine_drafter_truncate(gpu.e, keep, &err), 0, "%s", err.msg);
        cr_assert_eq(mimo_engine_drafter_length(gpu.e), keep);
    }
    /* bad requests fail with a reason, like the CPU's */
    int len = mimo_engine_drafter_length(gpu.e);
    cr_expect_neq(mimo_engine_drafter_truncate(gpu.e, len + 1, &err), 0, "cannot grow by truncation");
    cr_expect_eq(mimo_engine_drafter_length(gpu.e), len);
    cr_expect_neq(mimo_engine_drafter_append(gpu.e, feat, 96, &err), 0, "past max_context");
    cr_expect(strstr(err.msg, "max_context") != NULL, "%s", err.msg);
    cr_expect_neq(mimo_engine_draft(gpu.e, block, 1, &(mimo_forward_out){lg, ag, NULL}, &err), 0, "block of 1");
    block[0] = V;
    cr_expect_neq(mimo_engine_draft(gpu.e, block, 4, &(mimo_forward_out){lg, ag, NULL}, &err), 0, "token outside vocab");
    free(feat);
    free(lg);
    free(lc);
    rig_close(&cpu);
    rig_close(&gpu);
}

Test(cuda_dflash, drafter_logits_match_the_cpu_drafter_over_rounds, .timeout = 120)
{
    drafter_rounds_match_cpu(false, false, 0);
}

Test(cuda_dflash, drafter_logits_match_all_sliding_value_scale_no_mask_embedding, .timeout = 120)
{
    drafter_rounds_match_cpu(true, true, 0);
}

/* The drafter's GEMVs of several positions on dense_bulk_kernel (GEMV path 22: every bf16 one of several
 * positions there in one column chunk, whatever its rows; the drafter given the engine's split workspace) with a
 * target of hidden 128: q, k and v in one GEMV with the layer's input norm folded in, o_proj and the down
 * projection adding into the residual, the lm head with the final norm folded in (the SwiGLU pair stays on the
 * tensor-core kernel); the same comparison with the CPU drafter. The launch count says they ran there. */
Test(cuda_dflash, drafter_logits_match_on_the_dense_bulk_kernel, .timeout = 120)
{
    need_gpu();
    cr_assert_eq(mimo_cuda_test_set_gemv_path(22), 0);
    const long long before = mimo_cuda_test_dense_bulk_launches();
    drafter_rounds_match_cpu(true, false, 128);
    cr_assert_gt(mimo_cuda_test_dense_bulk_launches(), before, "no drafter GEMV ran on the dense bulk kernel");
    mimo_cuda_test_set_gemv_path(0);
}

/* The MiMo drafter's head width (128: a target of hidden 2048) with its defaults — q, k and v of 3072 rows on the
 * dense bulk kernel with the input norm folded, the block attention a kv head's 4 query heads and block rows a
 * warp each (draft_attn_group_kernel, 4 dims a lane) —, with all of a kv head's rows in one block, and with the
 * attention a block a query head and row (draft_attn_split_kernel); the same comparison with the CPU drafter. */
Test(cuda_dflash, drafter_logits_match_at_the_mimo_head_width, .timeout = 240)
{
    need_gpu();
    const long long before = mimo_cuda_test_dense_bulk_launches();
    drafter_rounds_match_cpu(false, false, 2048);
    cr_assert_gt(mimo_cuda_test_dense_bulk_launches(), before, "no drafter GEMV ran on the dense bulk kernel");
    mimo_cuda_test_set_draft_attn_group(2);
    drafter_rounds_match_cpu(true, false, 2048);
    mimo_cuda_test_set_draft_attn_group(0);
    drafter_rounds_match_cpu(true, true, 2048);
    mimo_cuda_test_set_draft_attn_group(1);
}

/* Tiny's head width (16) with the attention a block a query head and row, as before the grouped kernel. */
Test(cuda_dflash, drafter_logits_match_with_the_per_head_attention, .timeout = 120)
{
    need_gpu();
    mimo_cuda_test_set_draft_attn_group(0);
    drafter_rounds_match_cpu(false, false, 0);
    mimo_cuda_test_set_draft_attn_group(1);
}

#define MAX_NEW 24

static void generate_ok(mimo_engine *e, const int32_t *prompt, int n, const mimo_generate_options *o,
                        const mimo_draft_override *ovr, mimo_generation *g)
{
    mimo_error err = {{0}};
    cr_assert_eq(mimo_generate_with_override(e, prompt, n, o, ovr, g, NULL, &err), 0, "%s", err.msg);
}

Test(cuda_dflash, greedy_dflash_equals_greedy_autoregressive_on_the_gpu, .timeout = 240)
{
    need_gpu();
    const int prompt_lens[] = {3, 9, 21};
    const int blocks[] = {2, 4, 8, 16};
    /* persistent: the autoregressive reference's one-position steps run in the persistent kernel, the
     * verification's blocks replay graphs, and the two must agree */
    const mimo_exec_mode execs[] = {MIMO_EXEC_EAGER, MIMO_EXEC_GRAPH, MIMO_EXEC_PERSISTENT};
    for (size_t xi = 0; xi < 3; xi++) {
        rig r;
        rig_open(&r, MIMO_BACKEND_CUDA, execs[xi], 256, false, false);
        const int V = r.cfg.vocab_size;
        for (size_t pi = 0; pi < 3; pi++) {
            if (xi >= 1 && pi > 0)
                break;   /* graph / persistent: one prompt is enough (the drafter runs eagerly either way) */
            int32_t prompt[32];
            const int n = prompt_lens[pi];
            spec_random_prompt(prompt, n, V, 300 + pi);
            mimo_generate_options o;
            mimo_generate_options_default(&o);
            o.max_new_tokens = MAX_NEW + MIMO_DFLASH_MAX_BLOCK;
            mimo_generation ref;
            generate_ok(r.e, prompt, n, &o, NULL, &ref);
            cr_assert_eq(ref.n_tokens, o.max_new_tokens);
            o.max_new_tokens = MAX_NEW;
            o.dflash = true;
            for (size_t bi = 0; bi < sizeof blocks / sizeof blocks[0]; bi++) {
                o.block = blocks[bi];
                for (int agree = 0; agree < 2; agree++) {
                    oracle_drafter od = {ref.tokens, ref.n_tokens, n, V, ORACLE_AGREE, 5, 0};
                    mimo_draft_override ovr = {oracle_propose, &od};
                    mimo_generation g;
                    generate_ok(r.e, prompt, n, &o, agree ? &ovr : NULL, &g);
                    const char *what = agree ? "always-agreeing double" : "real drafter";
                    cr_assert_eq(g.n_tokens, MAX_NEW, "%s B=%d", what, o.block);
                    for (int i = 0; i < MAX_NEW; i++)
                        cr_assert_eq(g.tokens[i], ref.tokens[i], "exec %s prompt %zu B=%d %s: token %d differs",
                                     mimo_exec_name(execs[xi]), pi, o.block, what, i);
                    int emitted = 1;
                    for (int k = 0; k < g.n_rounds; k++) {
                        cr_expect_eq(g.rounds[k].drafted, o.block - 1);
                        if (k + 1 < g.n_rounds) {
                            cr_expect_eq(g.rounds[k].emitted, g.rounds[k].accepted + 1);
                            if (agree)
                                cr_expect_eq(g.rounds[k].accepted, o.block - 1, "an agreeing drafter is fully accepted");
                        }
                        emitted += g.rounds[k].emitted;
                    }
                    cr_expect_eq(emitted, g.n_tokens, "rounds account for every token");
                    /* the drafter's context is the target's: the accepted positions only */
                    cr_expect_eq(mimo_engine_drafter_length(r.e), mimo_engine_length(r.e));
                    mimo_generation_free(&g);
                }
            }
            mimo_generation_free(&ref);
        }
        rig_close(&r);
    }
}

Test(cuda_dflash, forced_acceptance_runs_on_the_gpu, .timeout = 120)
{
    need_gpu();
    rig r;
    rig_open(&r, MIMO_BACKEND_CUDA, MIMO_EXEC_EAGER, 512, false, false);
    mimo_error err = {{0}};
    mimo_generate_options o;
    mimo_generate_options_default(&o);
    o.dflash = true;
    o.block = 8;
    o.accept = MIMO_ACCEPT_FORCED;
    o.max_new_tokens = 200;
    cr_assert_eq(mimo_accept_profile_parse("mimo-published", "coding", 8, &o.profile, &err), 0, "%s", err.msg);
    long rounds = 0, full = 0;
    for (int req = 0; req < 4; req++) {
        int32_t prompt[6];
        spec_random_prompt(prompt, 6, r.cfg.vocab_size, 700 + req);
        o.seed = (uint64_t)req;
        mimo_generation g;
        cr_assert_eq(mimo_generate(r.e, prompt, 6, &o, &g, NULL, &err), 0, "%s", err.msg);
        cr_assert_eq(g.n_tokens, 200);
        mimo_rng replay;
        mimo_generate_accept_rng_init(&replay, o.seed);
        for (int k = 0; k < g.n_rounds; k++) {
            const mimo_round_record *rr = &g.rounds[k];
            cr_assert_eq(rr->accepted, mimo_accept_profile_draw(&o.profile, 8, &replay), "round %d", k);
            cr_assert_eq(rr->drafted, 7);
            cr_assert(rr->t_draft_us > 0 && rr->t_verify_us > 0, "drafter and verify run in full");
            if (k + 1 < g.n_rounds)
                cr_assert_eq(rr->emitted, rr->accepted + 1);
            full += rr->accepted == 7;
            rounds++;
        }
        cr_expect_eq(mimo_engine_drafter_length(r.e), mimo_engine_length(r.e));
        mimo_generation_free(&g);
    }
    cr_expect_gt(full, 0, "the profile accepts whole blocks sometimes (%ld rounds)", rounds);
    rig_close(&r);
}

#else

Test(cuda_dflash, needs_cuda_build)
{
    cr_skip_test("no CUDA device: this build has no CUDA backend (nvcc was not found at configure time)");
}

#endif
