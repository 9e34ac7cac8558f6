/* The decode loop on the tiny preset (CPU): greedy DFlash equals greedy autoregressive decoding
 * token for token (real drafter, and doubles that always / never / sometimes agree), over prompts,
 * weight seeds and block sizes 2..16; the target KV cache after rollback equals the cache built from
 * the accepted tokens alone (SWA window edge inside the block); the drafter's context holds exactly
 * the accepted positions; stop tokens and max-new end a block mid-way; every round is recorded. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/generate.h"
#include "spec_rig.h"

#define MAX_NEW 20

static void generate_ok(mimo_engine *e, const int32_t *prompt, int n, const mimo_generate_options *o,
                        const mimo_draft_override *ovr, mimo_generation *g)
{
    mimo_error err = {{0}};
    cr_assert_eq(mimo_generate_with_override(e, prompt, n, o, ovr, g, NULL, &err), 0, "%s", err.msg);
}

/* Bookkeeping every generation must satisfy. */
static void check_rounds(const mimo_generation *g, int B, bool dflash)
{
    int emitted = 1;   /* the prefill's token */
    for (int r = 0; r < g->n_rounds; r++) {
        const mimo_round_record *rr = &g->rounds[r];
        if (dflash) {
            cr_expect_eq(rr->drafted, B - 1);
        } else {
            cr_expect_eq(rr->drafted, 0);
        }
        cr_expect(rr->accepted >= 0 && rr->accepted <= rr->drafted);
        cr_expect(rr->emitted >= 1 && rr->emitted <= rr->accepted + 1);
        if (r + 1 < g->n_rounds)
            cr_expect_eq(rr->emitted, rr->accepted + 1, "only the last round may be cut short");
        cr_expect(rr->t_draft_us >= 0 && rr->t_verify_us > 0);
        cr_expect(rr->t_total_us >= rr->t_draft_us + rr->t_verify_us - 1e-6);
        emitted += rr->emitted;
    }
    cr_expect_eq(emitted, g->n_tokens, "rounds account for every token");
    cr_expect(g->ttft_ms > 0 && g->e2e_ms >= g->ttft_ms);
}

Test(generate, greedy_dflash_equals_autoregressive, .timeout = 240)
{
    /* Two weight seeds (the first in tiny's own FP8 storage), prompts shorter and longer than the
     * SWA window (8), every block size class. */
    const int prompt_lens[2][3] = {{3, 9, 21}, {5, 13, 0}};
    const int blocks[] = {2, 3, 5, 8, 16};
    const uint64_t weight_seeds[] = {1, 42};
    for (size_t ws = 0; ws < 2; ws++) {
        spec_rig rig;
        spec_rig_open_storage(&rig, weight_seeds[ws], true, 512, ws == 0);
        for (size_t pi = 0; pi < 3 && prompt_lens[ws][pi]; pi++) {
            int32_t prompt[32];
            int n = prompt_lens[ws][pi];
            spec_random_prompt(prompt, n, rig.cfg.vocab_size, 1000 * ws + pi);
            mimo_generate_options o;
            mimo_generate_options_default(&o);
            o.max_new_tokens = MAX_NEW + MIMO_DFLASH_MAX_BLOCK;
            mimo_generation ref;
            generate_ok(rig.e, prompt, n, &o, NULL, &ref);
            cr_assert_eq(ref.n_tokens, o.max_new_tokens);
            check_rounds(&ref, 1, false);
            o.max_new_tokens = MAX_NEW;
            o.dflash = true;
            for (size_t bi = 0; bi < sizeof blocks / sizeof blocks[0]; bi++) {
                o.block = blocks[bi];
                for (int mode = -1; mode <= ORACLE_MIXED; mode++) {
                    oracle_drafter od = {ref.tokens, ref.n_tokens, n, rig.cfg.vocab_size, (oracle_mode)mode, 99 + bi, 0};
                    mimo_draft_override ovr = {oracle_propose, &od};
                    mimo_generation g;
                    generate_ok(rig.e, prompt, n, &o, mode < 0 ? NULL : &ovr, &g);
                    const char *what = mode < 0 ? "real drafter" : mode == ORACLE_AGREE ? "always agrees"
                                     : mode == ORACLE_NEVER ? "never agrees" : "mixed";
                    cr_assert_eq(g.n_tokens, MAX_NEW, "%s B=%d", what, o.block);
                    for (int i = 0; i < MAX_NEW; i++)
                        cr_assert_eq(g.tokens[i], ref.tokens[i], "seed %llu prompt %zu B=%d %s: token %d differs",
                                     (unsigned long long)weight_seeds[ws], pi, o.block, what, i);
                    check_rounds(&g, o.block, true);
                    cr_expect_eq(g.stop_reason, MIMO_STOP_MAX_TOKENS);
                    for (int r = 0; r + 1 < g.n_rounds; r++) {
                        if (mode == ORACLE_AGREE)
                            cr_expect_eq(g.rounds[r].accepted, o.block - 1, "an agreeing drafter is fully accepted");
                        if (mode == ORACLE_NEVER)
                            cr_expect_eq(g.rounds[r].accepted, 0, "a disagreeing drafter is never accepted");
                    }
                    if (mode == ORACLE_AGREE)
                        cr_expect_leq(g.n_rounds, (MAX_NEW - 1 + o.block - 1) / o.block, "B=%d: fewer rounds", o.block);
                    if (mode >= 0)
                        cr_expect_eq(od.calls, g.n_rounds);
                    mimo_generation_free(&g);
                }
            }
            mimo_generation_free(&ref);
        }
        spec_rig_close(&rig);
    }
}

/* Forward tokens and return the logits of the last n_out positions (malloc'd). */
static float *forward_logits(mimo_engine *e, const int32_t *t, int n)
{
    mimo_error err = {{0}};
    int V = mimo_engine_config(e)->vocab_size;
    float *logits = malloc((size_t)n * V * sizeof(float));
    mimo_forward_out fo = {logits, NULL, NULL};
    cr_assert_eq(mimo_engine_forward(e, t, n, &fo, &err), 0, "%s", err.msg);
    return logits;
}

Test(generate, rollback_equals_the_cache_of_accepted_tokens)
{
    /* Prompt 12 > tiny's window 8: the SWA layers' window edge falls inside the 8-position block. */
    spec_rig rig;
    spec_rig_open(&rig, 5, false, 128);
    mimo_error err = {{0}};
    enum { P = 12, B = 8, NEXT = 4 };
    int32_t seq[P + B], next[NEXT];
    spec_random_prompt(seq, P + B, rig.cfg.vocab_size, 77);
    spec_random_prompt(next, NEXT, rig.cfg.vocab_size, 78);
    int V = rig.cfg.vocab_size;
    cr_assert_lt(rig.cfg.swa.window, P + 1);
    for (int a = 0; a < B; a++) {
        /* speculative: prompt, whole block, roll back to t0 + a accepted */
        cr_assert_eq(mimo_engine_truncate(rig.e, 0, &err), 0);
        free(forward_logits(rig.e, seq, P));
        free(forward_logits(rig.e, seq + P, B));
        cr_assert_eq(mimo_engine_truncate(rig.e, P + a + 1, &err), 0, "%s", err.msg);
        cr_assert_eq(mimo_engine_length(rig.e), P + a + 1);
        float *spec = forward_logits(rig.e, next, NEXT);
        /* reference: only the accepted tokens ever entered the cache */
        cr_assert_eq(mimo_engine_truncate(rig.e, 0, &err), 0);
        free(forward_logits(rig.e, seq, P + a + 1));
        float *plain = forward_logits(rig.e, next, NEXT);
        cr_expect(memcmp(spec, plain, (size_t)NEXT * V * sizeof(float)) == 0, "accepted %d: logits after rollback differ", a);
        free(spec);
        free(plain);
    }
    spec_rig_close(&rig);
}

Test(generate, loop_leaves_target_and_drafter_caches_as_if_only_accepted_tokens_ran, .timeout = 120)
{
    spec_rig rig;
    spec_rig_open(&rig, 9, true, 256);
    mimo_error err = {{0}};
    const int V = rig.cfg.vocab_size, H = rig.cfg.hidden_size, NF = rig.dcfg.n_target_layers;
    int32_t prompt[14];
    spec_random_prompt(prompt, 14, V, 5);
    mimo_generate_options o;
    mimo_generate_options_default(&o);
    o.max_new_tokens = 40;
    mimo_generation ref;
    generate_ok(rig.e, prompt, 14, &o, NULL, &ref);
    /* the AR engine's next logits after its generation */
    int32_t probe[3] = {ref.tokens[ref.n_tokens - 1], 7, 300};
    cr_assert_eq(mimo_engine_length(rig.e), 14 + ref.n_tokens - 1);
    float *want = forward_logits(rig.e, probe, 3);

    o.dflash = true;
    o.block = 8;
    oracle_drafter od = {ref.tokens, ref.n_tokens, 14, V, ORACLE_MIXED, 3, 0};
    mimo_draft_override ovr = {oracle_propose, &od};
    mimo_generation g;
    generate_ok(rig.e, prompt, 14, &o, &ovr, &g);
    cr_assert_eq(g.n_tokens, ref.n_tokens);
    int rejected_tails = 0;
    for (int r = 0; r < g.n_rounds; r++)
        rejected_tails += g.rounds[r].accepted < g.rounds[r].drafted;
    cr_assert_gt(rejected_tails, 0, "the double must cause rollbacks");
    int len = mimo_engine_length(rig.e);
    cr_assert_eq(len, 14 + g.n_tokens - 1, "target KV keeps prompt + emitted tokens but the last");
    cr_assert_eq(mimo_engine_drafter_length(rig.e), len, "drafter context = target positions");

    /* drafter: a draft now equals one from a context rebuilt from the accepted tokens alone */
    int32_t block[8] = {g.tokens[g.n_tokens - 1]};
    for (int i = 1; i < 8; i++)
        block[i] = rig.dcfg.mask_token_id;
    float *draft_after = malloc((size_t)8 * V * sizeof(float));
    float *draft_rebuilt = malloc((size_t)8 * V * sizeof(float));
    mimo_forward_out dfo = {draft_after, NULL, NULL};
    cr_assert_eq(mimo_engine_draft(rig.e, block, 8, &dfo, &err), 0, "%s", err.msg);
    float *got = forward_logits(rig.e, probe, 3);
    cr_expect(memcmp(got, want, 3 * (size_t)V * sizeof(float)) == 0, "target cache after DFlash differs from AR");

    int32_t *all = malloc((size_t)len * sizeof *all);
    memcpy(all, prompt, sizeof prompt);
    memcpy(all + 14, g.tokens, (size_t)(g.n_tokens - 1) * sizeof *all);
    float *hidden = malloc((size_t)NF * len * H * sizeof(float));
    float *feat = malloc((size_t)NF * len * H * sizeof(float));
    cr_assert_eq(mimo_engine_truncate(rig.e, 0, &err), 0);
    cr_assert_eq(mimo_engine_drafter_truncate(rig.e, 0, &err), 0);
    mimo_forward_out hfo = {NULL, NULL, hidden};
    cr_assert_eq(mimo_engine_forward(rig.e, all, len, &hfo, &err), 0, "%s", err.msg);
    for (int p = 0; p < len; p++)
        for (int l = 0; l < NF; l++)
            memcpy(feat + ((size_t)p * NF + l) * H, hidden + ((size_t)l * len + p) * H, (size_t)H * sizeof(float));
    cr_assert_eq(mimo_engine_drafter_append(rig.e, feat, len, &err), 0, "%s", err.msg);
    dfo.logits = draft_rebuilt;
    cr_assert_eq(mimo_engine_draft(rig.e, block, 8, &dfo, &err), 0, "%s", err.msg);
    cr_expect(memcmp(draft_after, draft_rebuilt, (size_t)8 * V * sizeof(float)) == 0,
              "drafter context after the loop differs from one built from the accepted tokens");
    free(all);
    free(hidden);
    free(feat);
    free(draft_after);
    free(draft_rebuilt);
    free(got);
    free(want);
    mimo_generation_free(&g);
    mimo_generation_free(&ref);
    spec_rig_close(&rig);
}

Test(generate, stop_tokens_and_max_new_end_a_block_midway)
{
    spec_rig rig;
    spec_rig_open(&rig, 3, true, 256);
    int32_t prompt[10];
    spec_random_prompt(prompt, 10, rig.cfg.vocab_size, 11);
    mimo_generate_options o;
    mimo_generate_options_default(&o);
    o.max_new_tokens = 48;
    mimo_generation ref;
    generate_ok(rig.e, prompt, 10, &o, NULL, &ref);

    /* stop on the token at index 10 (first occurrence wins), inside a block of an agreeing double */
    int32_t stop = ref.tokens[10];
    int first = 0;
    while (ref.tokens[first] != stop)
        first++;
    o.stop_tokens = &stop;
    o.n_stop_tokens = 1;
    mimo_generation ar_stop, g;
    generate_ok(rig.e, prompt, 10, &o, NULL, &ar_stop);
    cr_assert_eq(ar_stop.n_tokens, first + 1);
    cr_expect_eq(ar_stop.stop_reason, MIMO_STOP_STOP_TOKEN);
    o.dflash = true;
    o.block = 8;
    oracle_drafter od = {ref.tokens, ref.n_tokens, 10, rig.cfg.vocab_size, ORACLE_AGREE, 0, 0};
    mimo_draft_override ovr = {oracle_propose, &od};
    generate_ok(rig.e, prompt, 10, &o, &ovr, &g);
    cr_assert_eq(g.n_tokens, first + 1, "DFlash stops at the stop token inside the block");
    cr_expect(memcmp(g.tokens, ar_stop.tokens, (size_t)g.n_tokens * sizeof(int32_t)) == 0);
    cr_expect_eq(g.stop_reason, MIMO_STOP_STOP_TOKEN);
    check_rounds(&g, 8, true);
    mimo_generation_free(&g);
    mimo_generation_free(&ar_stop);

    /* max-new inside a block: 13 = 1 (prefill) + 7 + 5 with B = 8 (7 drafts + bonus per round) */
    o.n_stop_tokens = 0;
    o.max_new_tokens = 14;
    generate_ok(rig.e, prompt, 10, &o, &ovr, &g);
    cr_assert_eq(g.n_tokens, 14);
    cr_expect(memcmp(g.tokens, ref.tokens, 14 * sizeof(int32_t)) == 0);
    cr_expect_eq(g.stop_reason, MIMO_STOP_MAX_TOKENS);
    cr_assert_eq(g.n_rounds, 2);
    cr_expect_eq(g.rounds[0].emitted, 8);
    cr_expect_eq(g.rounds[1].emitted, 5);
    cr_expect_eq(g.rounds[1].accepted, 7);
    check_rounds(&g, 8, true);
    mimo_generation_free(&g);

    /* a single new token: the prefill's, no rounds */
    o.max_new_tokens = 1;
    generate_ok(rig.e, prompt, 10, &o, &ovr, &g);
    cr_expect_eq(g.n_tokens, 1);
    cr_expect_eq(g.n_rounds, 0);
    cr_expect_eq(g.tokens[0], ref.tokens[0]);
    mimo_generation_free(&g);
    mimo_generation_free(&ref);
    spec_rig_close(&rig);
}

Test(generate, context_limit_and_interrupt)
{
    spec_rig rig;
    spec_rig_open(&rig, 4, true, 40);
    int32_t prompt[10];
    spec_random_prompt(prompt, 10, rig.cfg.vocab_size, 12);
    mimo_generate_options o;
    mimo_generate_options_default(&o);
    o.max_new_tokens = 100;
    mimo_generation ar, g;
    generate_ok(rig.e, prompt, 10, &o, NULL, &ar);
    cr_expect_eq(ar.stop_reason, MIMO_STOP_CONTEXT_FULL);
    cr_expect_eq(ar.n_tokens, 40 - 10 + 1, "every position used, plus the token never fed back");
    o.dflash = true;
    o.block = 8;
    generate_ok(rig.e, prompt, 10, &o, NULL, &g);
    cr_expect_eq(g.stop_reason, MIMO_STOP_CONTEXT_FULL);
    cr_assert_eq(g.n_tokens, ar.n_tokens, "near the end DFlash falls back to plain steps");
    cr_expect(memcmp(g.tokens, ar.tokens, (size_t)g.n_tokens * sizeof(int32_t)) == 0);
    mimo_generation_free(&g);
    mimo_generation_free(&ar);

    volatile int stop_now = 1;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_generate(rig.e, prompt, 10, &o, &g, &stop_now, &err), 0, "%s", err.msg);
    cr_expect_eq(g.stop_reason, MIMO_STOP_INTERRUPTED);
    cr_expect_eq(g.n_tokens, 1);
    mimo_generation_free(&g);
    spec_rig_close(&rig);
}

Test(generate, bad_requests_fail_with_a_reason)
{
    spec_rig rig;
    spec_rig_open(&rig, 4, false, 64);
    int32_t prompt[4] = {1, 2, 3, 4};
    mimo_generate_options o;
    mimo_generate_options_default(&o);
    mimo_generation g;
    mimo_error err = {{0}};
    o.dflash = true;
    cr_expect_eq(mimo_generate(rig.e, prompt, 4, &o, &g, NULL, &err), -1);
    cr_expect(strstr(err.msg, "drafter") != NULL, "%s", err.msg);
    o.dflash = false;
    cr_expect_eq(mimo_generate(rig.e, prompt, 0, &o, &g, NULL, &err), -1);
    o.max_new_tokens = 0;
    cr_expect_eq(mimo_generate(rig.e, prompt, 4, &o, &g, NULL, &err), -1);
    o.max_new_tokens = 4;
    o.sampling.top_p = 0;
    cr_expect_eq(mimo_generate(rig.e, prompt, 4, &o, &g, NULL, &err), -1);
    spec_rig_close(&rig);

    /* an engine whose hidden outputs are not the drafter's target layers */
    spec_rig_open(&rig, 4, false, 64);
    mimo_engine_options eo;
    mimo_engine_options_default(&eo);
    mimo_engine *plain = NULL;
    cr_assert_eq(mimo_engine_create_synthetic(&rig.cfg, 4, &eo, &plain, &err), 0, "%s", err.msg);
    mimo_tensor_source *src = NULL;
    mimo_drafter_weights dw;
    cr_assert_eq(mimo_drafter_synth(&rig.dcfg, 5, &src, &err), 0);
    cr_assert_eq(mimo_drafter_bind(&rig.dcfg, src, &dw, &err), 0);
    cr_assert_eq(mimo_engine_attach_drafter(plain, &dw, &err), 0, "%s", err.msg);
    mimo_generate_options_default(&o);
    o.dflash = true;
    cr_expect_eq(mimo_generate(plain, prompt, 4, &o, &g, NULL, &err), -1);
    cr_expect(strstr(err.msg, "target_layer_ids") != NULL, "%s", err.msg);
    o.block = 17;
    cr_expect_eq(mimo_generate(plain, prompt, 4, &o, &g, NULL, &err), -1);
    mimo_engine_destroy(plain);
    mimo_drafter_free(&dw);
    mimo_source_free(src);
    spec_rig_close(&rig);
}
