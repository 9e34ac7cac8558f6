/* The CPU reference engine end to end on the tiny preset: against an independent whole-sequence
 * reference, KV-cache decode, sliding windows, multi-position calls, truncation, stability. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/cpu/cpu_ops.h"
#include "reference_forward.h"
#include "support.h"
#include "tiny_model.h"

#define SEED 1234

/* (a) token-by-token decode with the KV cache == a fresh full-prefix pass == the independent
 * reference, at every position (the prompt is longer than the SWA window). */
Test(cpu_forward, decode_with_cache_matches_full_prefix_pass)
{
    tiny_model m;
    tiny_model_load(&m, NULL, SEED);
    const int V = m.cfg.vocab_size;
    const int n = m.cfg.swa.window * 2 + 5;
    int32_t *tokens = malloc((size_t)n * sizeof *tokens);
    tiny_tokens(tokens, n, V, 7);

    float *ref = malloc((size_t)n * V * sizeof *ref);
    reference_forward(&m.w, tokens, n, ref);

    tiny_engine step = tiny_engine_create(&m, n, false);
    float *logits = malloc((size_t)n * V * sizeof *logits);
    for (int i = 0; i < n; i++) {
        tiny_forward(&step, tokens + i, 1, logits + (size_t)i * V, NULL);
        double e = mimo_test_rel_err(logits + (size_t)i * V, ref + (size_t)i * V, (size_t)V);
        cr_assert_leq(e, 1e-5, "decode step %d: rel err %g vs the reference", i, e);
    }
    cr_assert_eq(step.ops->length(step.impl), n);

    /* fresh engines fed whole prefixes in one call */
    int prefixes[] = { 1, m.cfg.swa.window, n };
    for (size_t t = 0; t < sizeof prefixes / sizeof *prefixes; t++) {
        int p = prefixes[t];
        tiny_engine fresh = tiny_engine_create(&m, n, false);
        float *full = malloc((size_t)p * V * sizeof *full);
        tiny_forward(&fresh, tokens, p, full, NULL);
        double e = mimo_test_rel_err(logits + (size_t)(p - 1) * V, full + (size_t)(p - 1) * V, (size_t)V);
        cr_assert_leq(e, 1e-5, "prefix %d: cached decode vs full pass rel err %g", p, e);
        free(full);
        tiny_engine_destroy(&fresh);
    }
    tiny_engine_destroy(&step);
    free(tokens);
    free(ref);
    free(logits);
    tiny_model_free(&m);
}

static void make_all_swa(mimo_config *c)
{
    for (int l = 0; l < c->num_layers; l++)
        c->layer_is_swa[l] = true;
}

/* Logits of the last of n tokens on a fresh engine running the first `layers` layers (0 = all). */
static void last_logits(const tiny_model *m, int layers, const int32_t *tokens, int n, float *out)
{
    mimo_engine_options o;
    memset(&o, 0, sizeof o);
    o.max_context = n;
    o.shard_count = 1;
    o.layers_limit = layers;
    tiny_engine e = tiny_engine_create_opts(m, &o);
    float *all = malloc((size_t)n * m->cfg.vocab_size * sizeof *all);
    tiny_forward(&e, tokens, n, all, NULL);
    memcpy(out, all + (size_t)(n - 1) * m->cfg.vocab_size, (size_t)m->cfg.vocab_size * sizeof *out);
    free(all);
    tiny_engine_destroy(&e);
}

/* (b) All layers SWA with window W. One layer sees exactly the keys with pos_q - pos_k < W; a stack
 * of L layers therefore sees tokens back to distance L*(W-1) and not one further. */
Test(cpu_forward, sliding_window_hides_old_tokens)
{
    tiny_model m;
    tiny_model_load(&m, make_all_swa, SEED);
    const int V = m.cfg.vocab_size, W = m.cfg.swa.window, L = m.cfg.num_layers;
    cr_assert_gt(W, 1);
    float *base = malloc((size_t)V * sizeof *base), *changed = malloc((size_t)V * sizeof *changed);

    struct { int layers, reach; } cases[] = { { 1, W - 1 }, { L, L * (W - 1) } };
    for (size_t c = 0; c < 2; c++) {
        int reach = cases[c].reach, n = reach + 2;   /* last position n-1; token 0 is one beyond reach */
        int32_t *tokens = malloc((size_t)n * sizeof *tokens);
        tiny_tokens(tokens, n, V, 99);
        last_logits(&m, cases[c].layers, tokens, n, base);

        int32_t *edit = malloc((size_t)n * sizeof *edit);
        memcpy(edit, tokens, (size_t)n * sizeof *edit);
        edit[0] = (tokens[0] + 1) % V;                  /* distance reach + 1: invisible */
        last_logits(&m, cases[c].layers, edit, n, changed);
        cr_assert(memcmp(base, changed, (size_t)V * sizeof *base) == 0,
                  "%d layer(s): a token at distance %d changed the output", cases[c].layers, reach + 1);

        memcpy(edit, tokens, (size_t)n * sizeof *edit);
        edit[1] = (tokens[1] + 1) % V;                  /* distance reach: the oldest visible */
        last_logits(&m, cases[c].layers, edit, n, changed);
        cr_assert_gt(mimo_test_rel_err(changed, base, (size_t)V), 1e-6,
                     "%d layer(s): the token at distance %d did not change the output", cases[c].layers, reach);

        memcpy(edit, tokens, (size_t)n * sizeof *edit);
        edit[n - 2] = (tokens[n - 2] + 1) % V;          /* a recent token */
        last_logits(&m, cases[c].layers, edit, n, changed);
        cr_assert_gt(mimo_test_rel_err(changed, base, (size_t)V), 1e-6, "a recent token did not change the output");
        free(tokens);
        free(edit);
    }
    free(base);
    free(changed);
    tiny_model_free(&m);
}

/* (e) 64 greedy decode steps stay finite, with the residual stream's RMS after every layer in a
 * bounded band (the synthetic weights are scaled to keep activations O(1)). */
Test(cpu_forward, long_decode_stays_finite_and_bounded)
{
    tiny_model m;
    tiny_model_load(&m, NULL, SEED);
    const int V = m.cfg.vocab_size, H = m.cfg.hidden_size, steps = 64;
    tiny_engine e = tiny_engine_create(&m, steps + 1, true);
    const int n_out = m.cfg.num_layers < MIMO_MAX_HIDDEN_OUTPUTS ? m.cfg.num_layers : MIMO_MAX_HIDDEN_OUTPUTS;
    float *logits = malloc((size_t)V * sizeof *logits);
    float *hidden = malloc((size_t)n_out * H * sizeof *hidden);
    int32_t token = 1;
    float lo = INFINITY, hi = 0.0f;
    for (int s = 0; s < steps; s++) {
        tiny_forward(&e, &token, 1, logits, hidden);
        cr_assert(tiny_all_finite(logits, (size_t)V), "step %d: non-finite logits", s);
        for (int l = 0; l < n_out; l++) {
            const float *x = hidden + (size_t)l * H;
            cr_assert(tiny_all_finite(x, (size_t)H), "step %d layer %d: non-finite residual", s, l);
            double ss = 0.0;
            for (int d = 0; d < H; d++)
                ss += (double)x[d] * x[d];
            float rms = (float)sqrt(ss / H);
            lo = fminf(lo, rms);
            hi = fmaxf(hi, rms);
        }
        token = tiny_argmax(logits, V);
    }
    cr_assert_geq(lo, 0.1f, "residual RMS fell to %g", lo);
    cr_assert_leq(hi, 10.0f, "residual RMS grew to %g", hi);
    tiny_engine_destroy(&e);
    free(logits);
    free(hidden);
    tiny_model_free(&m);
}

/* (f) one call over k positions (k = 1..16) == the same positions fed one at a time: logits, argmax
 * and hidden states, exactly (the engine runs the same computation in the same order). */
Test(cpu_forward, multi_position_call_equals_single_steps)
{
    tiny_model m;
    tiny_model_load(&m, NULL, SEED);
    const int V = m.cfg.vocab_size, H = m.cfg.hidden_size, prefix = 5;
    const int n_out = m.cfg.num_layers < MIMO_MAX_HIDDEN_OUTPUTS ? m.cfg.num_layers : MIMO_MAX_HIDDEN_OUTPUTS;
    int32_t tokens[5 + MIMO_MAX_DECODE_POSITIONS];
    tiny_tokens(tokens, prefix + MIMO_MAX_DECODE_POSITIONS, V, 3);

    tiny_engine single = tiny_engine_create(&m, prefix + MIMO_MAX_DECODE_POSITIONS, true);
    tiny_forward(&single, tokens, prefix, NULL, NULL);
    float *ref_logits = malloc((size_t)MIMO_MAX_DECODE_POSITIONS * V * sizeof(float));
    float *ref_hidden = malloc((size_t)MIMO_MAX_DECODE_POSITIONS * n_out * H * sizeof(float));
    float *one_hidden = malloc((size_t)n_out * H * sizeof(float));
    for (int i = 0; i < MIMO_MAX_DECODE_POSITIONS; i++) {
        tiny_forward(&single, tokens + prefix + i, 1, ref_logits + (size_t)i * V, one_hidden);
        for (int l = 0; l < n_out; l++)   /* hidden is [layer, position, hidden]: keep position-major here */
            memcpy(ref_hidden + ((size_t)i * n_out + l) * H, one_hidden + (size_t)l * H, (size_t)H * sizeof(float));
    }

    float *logits = malloc((size_t)MIMO_MAX_DECODE_POSITIONS * V * sizeof(float));
    float *hidden = malloc((size_t)MIMO_MAX_DECODE_POSITIONS * n_out * H * sizeof(float));
    int32_t argmax[MIMO_MAX_DECODE_POSITIONS];
    mimo_error err = { { 0 } };
    for (int k = 1; k <= MIMO_MAX_DECODE_POSITIONS; k++) {
        tiny_engine multi = tiny_engine_create(&m, prefix + MIMO_MAX_DECODE_POSITIONS, true);
        tiny_forward(&multi, tokens, prefix, NULL, NULL);
        mimo_forward_out out = { .logits = logits, .argmax = argmax, .hidden = hidden };
        cr_assert_eq(multi.ops->forward(multi.impl, tokens + prefix, k, &out, &err), 0, "%s", err.msg);
        cr_assert_eq(multi.ops->length(multi.impl), prefix + k);
        cr_assert(memcmp(logits, ref_logits, (size_t)k * V * sizeof(float)) == 0, "k=%d: logits differ", k);
        for (int i = 0; i < k; i++) {
            cr_assert_eq(argmax[i], tiny_argmax(ref_logits + (size_t)i * V, V), "k=%d pos %d argmax", k, i);
            for (int l = 0; l < n_out; l++)
                cr_assert(memcmp(hidden + ((size_t)l * k + i) * H, ref_hidden + ((size_t)i * n_out + l) * H,
                                 (size_t)H * sizeof(float)) == 0,
                          "k=%d: hidden state of layer %d at position %d differs", k, l, i);
        }
        tiny_engine_destroy(&multi);
    }
    tiny_engine_destroy(&single);
    free(ref_logits);
    free(ref_hidden);
    free(one_hidden);
    free(logits);
    free(hidden);
    tiny_model_free(&m);
}

/* (g) truncating the cache and decoding again reproduces the original logits, also after the
 * dropped slots were overwritten by a different continuation (a rejected speculative tail). */
Test(cpu_forward, truncate_and_redecode_reproduces_logits)
{
    tiny_model m;
    tiny_model_load(&m, NULL, SEED);
    const int V = m.cfg.vocab_size, n = m.cfg.swa.window + 12, keep = m.cfg.swa.window / 2 + 3;
    int32_t *tokens = malloc((size_t)n * sizeof *tokens), *other = malloc((size_t)n * sizeof *other);
    tiny_tokens(tokens, n, V, 11);
    tiny_tokens(other, n, V, 12);
    float *orig = malloc((size_t)n * V * sizeof *orig), *again = malloc((size_t)n * V * sizeof *again);

    tiny_engine e = tiny_engine_create(&m, n, false);
    tiny_forward(&e, tokens, n, orig, NULL);

    tiny_truncate(&e, keep);
    cr_assert_eq(e.ops->length(e.impl), keep);
    tiny_forward(&e, other + keep, n - keep, NULL, NULL);   /* overwrite the dropped slots */
    tiny_truncate(&e, keep);
    for (int i = keep; i < n; i++)   /* re-decode one at a time */
        tiny_forward(&e, tokens + i, 1, again + (size_t)i * V, NULL);
    cr_assert(memcmp(orig + (size_t)keep * V, again + (size_t)keep * V, (size_t)(n - keep) * V * sizeof(float)) == 0,
              "re-decoded logits differ after truncate to %d", keep);

    tiny_truncate(&e, 0);
    tiny_forward(&e, tokens, n, again, NULL);
    cr_assert(memcmp(orig, again, (size_t)n * V * sizeof(float)) == 0, "logits differ after truncate to 0");

    mimo_error err = { { 0 } };
    cr_assert_eq(e.ops->truncate(e.impl, n + 1, &err), -1, "truncating beyond the length must fail");
    cr_assert_eq(e.ops->length(e.impl), n);
    tiny_engine_destroy(&e);
    free(tokens);
    free(other);
    free(orig);
    free(again);
    tiny_model_free(&m);
}

/* Hidden output l is the residual stream after layer l: final norm + lm_head applied to it give the
 * logits of an engine that stops after layer l (layers_limit = l + 1). Unrun layers report zeros. */
Test(cpu_forward, hidden_output_is_residual_after_layer)
{
    tiny_model m;
    tiny_model_load(&m, NULL, SEED);
    const int V = m.cfg.vocab_size, H = m.cfg.hidden_size, L = m.cfg.num_layers, n = 6;
    int32_t tokens[6];
    tiny_tokens(tokens, n, V, 21);
    tiny_engine all = tiny_engine_create(&m, n, true);
    float *hidden = malloc((size_t)L * n * H * sizeof *hidden);
    tiny_forward(&all, tokens, n, NULL, hidden);
    float *logits = malloc((size_t)n * V * sizeof *logits), *mine = malloc((size_t)V * sizeof *mine);
    float *normed = malloc((size_t)H * sizeof *normed);
    for (int l = 0; l < L; l++) {
        mimo_engine_options o;
        memset(&o, 0, sizeof o);
        o.max_context = n;
        o.shard_count = 1;
        o.layers_limit = l + 1;
        o.n_hidden_layers = L;
        for (int j = 0; j < L; j++)
            o.hidden_layers[j] = j;
        tiny_engine part = tiny_engine_create_opts(&m, &o);
        float *part_hidden = malloc((size_t)L * n * H * sizeof *part_hidden);
        tiny_forward(&part, tokens, n, logits, part_hidden);
        for (int i = 0; i < n; i++) {
            const float *x = hidden + ((size_t)l * n + i) * H;
            mimo_cpu_rmsnorm(normed, x, m.w.final_norm, H, m.cfg.rms_eps);
            mimo_cpu_matvec(&m.w.lm_head, normed, mine);
            cr_assert(memcmp(mine, logits + (size_t)i * V, (size_t)V * sizeof *mine) == 0,
                      "layer %d position %d: hidden output is not the residual after the layer", l, i);
        }
        for (int j = 0; j < L; j++)
            for (size_t d = 0; d < (size_t)n * H; d++)
                cr_assert_eq(part_hidden[(size_t)j * n * H + d], j <= l ? hidden[(size_t)j * n * H + d] : 0.0f,
                             "limit %d: hidden output of layer %d", l + 1, j);
        free(part_hidden);
        tiny_engine_destroy(&part);
    }
    free(hidden);
    free(logits);
    free(mine);
    free(normed);
    tiny_engine_destroy(&all);
    tiny_model_free(&m);
}

static void make_interleaved(mimo_config *c)
{
    c->qkv_interleaved = true;
    c->qkv_groups = 2;
}

/* The TP-interleaved fused qkv (rows stored per group) holds the same values as the plain layout
 * (synth draws them by plain row), so the engine's row map must give identical logits. */
Test(cpu_forward, interleaved_qkv_equals_plain)
{
    tiny_model plain, inter;
    tiny_model_load(&plain, NULL, SEED);
    tiny_model_load(&inter, make_interleaved, SEED);
    cr_assert_not_null(inter.w.layers[0].qkv_row_of_plain, "the edited config must bind a row map");
    const int V = plain.cfg.vocab_size, n = 12;
    int32_t tokens[12];
    tiny_tokens(tokens, n, V, 5);
    float *a = malloc((size_t)n * V * sizeof *a), *b = malloc((size_t)n * V * sizeof *b);
    tiny_engine ep = tiny_engine_create(&plain, n, false), ei = tiny_engine_create(&inter, n, false);
    tiny_forward(&ep, tokens, n, a, NULL);
    tiny_forward(&ei, tokens, n, b, NULL);
    cr_assert(memcmp(a, b, (size_t)n * V * sizeof *a) == 0, "interleaved qkv changed the logits");
    tiny_engine_destroy(&ep);
    tiny_engine_destroy(&ei);
    free(a);
    free(b);
    tiny_model_free(&plain);
    tiny_model_free(&inter);
}

Test(cpu_forward, rejects_bad_input)
{
    tiny_model m;
    tiny_model_load(&m, NULL, SEED);
    tiny_engine e = tiny_engine_create(&m, 4, false);
    mimo_error err = { { 0 } };
    mimo_forward_out out = { 0 };
    int32_t bad = m.cfg.vocab_size, ok[5] = { 1, 2, 3, 4, 5 };
    cr_assert_eq(e.ops->forward(e.impl, &bad, 1, &out, &err), -1);
    cr_assert(strstr(err.msg, "token"), "message: %s", err.msg);
    cr_assert_eq(e.ops->forward(e.impl, ok, 5, &out, &err), -1, "5 positions must not fit a 4-position cache");
    cr_assert_eq(e.ops->length(e.impl), 0, "a rejected call must not change the cache");
    cr_assert_eq(e.ops->forward(e.impl, ok, 4, &out, &err), 0, "%s", err.msg);
    cr_assert_eq(e.ops->length(e.impl), 4);
    tiny_engine_destroy(&e);
    tiny_model_free(&m);
}
