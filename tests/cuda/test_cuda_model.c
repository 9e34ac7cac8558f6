/* The whole model on the GPU against the CPU reference (tiny preset), graph == eager bit for bit,
 * device-generated weights == the CPU generator's, rollback, the FP4 ablation, shard replay.
 * Skips where no CUDA device is present (CI). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/cuda/cuda_testing.h"
#include "mimo/backend.h"
#include "mimo/engine.h"
#include "mimo/synth.h"
#include "support.h"

#ifdef MIMO_HAVE_CUDA

#define SEED 1234u
#define PROMPT 21
#define STEPS 64

static void need_gpu(void)
{
    char reason[256];
    if (!mimo_cuda_backend_available(reason, sizeof reason))
        cr_skip_test("no CUDA device: %s", reason);
}

static mimo_engine *make(const char *preset, mimo_backend_kind b, mimo_exec_mode x, void (*tweak)(mimo_engine_options *))
{
    mimo_config cfg;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_preset(preset, &cfg, &err), 0, "%s", err.msg);
    mimo_engine_options o;
    mimo_engine_options_default(&o);
    o.backend = b;
    o.exec = b == MIMO_BACKEND_CUDA ? x : MIMO_EXEC_EAGER;
    o.max_context = 512;
    o.n_hidden_layers = 2;
    o.hidden_layers[0] = 0;
    o.hidden_layers[1] = cfg.num_layers - 1;
    if (tweak)
        tweak(&o);
    mimo_engine *e = NULL;
    cr_assert_eq(mimo_engine_create_synthetic(&cfg, SEED, &o, &e, &err), 0, "%s", err.msg);
    return e;
}

static void prompt_tokens(int32_t *t, int n, int vocab)
{
    for (int i = 0; i < n; i++)
        t[i] = (int32_t)((i * 7919u + 13u) % (unsigned)vocab);
}

/* Greedy decode: the prompt in one call (chunked inside), then STEPS single-token steps; logits of
 * every step into logits [(PROMPT + STEPS), vocab], tokens into out. */
static void greedy(mimo_engine *e, float *logits, int32_t *out, float *hidden)
{
    const mimo_config *cfg = mimo_engine_config(e);
    const int V = cfg->vocab_size;
    int32_t prompt[PROMPT], arg[PROMPT];
    prompt_tokens(prompt, PROMPT, V);
    mimo_error err = {{0}};
    mimo_forward_out o = {.logits = logits, .argmax = arg, .hidden = hidden};
    cr_assert_eq(mimo_engine_forward(e, prompt, PROMPT, &o, &err), 0, "%s", err.msg);
    int32_t tok = arg[PROMPT - 1];
    for (int s = 0; s < STEPS; s++) {
        out[s] = tok;
        mimo_forward_out o1 = {.logits = logits + (size_t)(PROMPT + s) * V, .argmax = &tok, .hidden = NULL};
        cr_assert_eq(mimo_engine_forward(e, &out[s], 1, &o1, &err), 0, "%s", err.msg);
    }
}

Test(cuda_model, tiny_matches_cpu_reference)
{
    need_gpu();
    mimo_engine *cpu = make("tiny", MIMO_BACKEND_CPU, MIMO_EXEC_EAGER, NULL);
    mimo_engine *gpu = make("tiny", MIMO_BACKEND_CUDA, MIMO_EXEC_EAGER, NULL);
    const mimo_config *cfg = mimo_engine_config(cpu);
    const int V = cfg->vocab_size, H = cfg->hidden_size;
    const size_t nl = (size_t)(PROMPT + STEPS) * V;
    float *lc = malloc(nl * sizeof(float)), *lg = malloc(nl * sizeof(float));
    float *hc = malloc((size_t)2 * PROMPT * H * sizeof(float)), *hg = malloc((size_t)2 * PROMPT * H * sizeof(float));
    for (size_t i = 0; i < nl; i++)
        lg[i] = NAN;
    int32_t tc[STEPS], tg[STEPS];
    greedy(cpu, lc, tc, hc);
    greedy(gpu, lg, tg, hg);
    double hrel = mimo_test_rel_err(hg, hc, (size_t)2 * PROMPT * H);
    cr_assert(hrel < 1e-3, "hidden states rel err %g", hrel);
    /* Greedy tokens equal until a near-tie; logits compared while the two runs see the same tokens. */
    int same = STEPS;
    for (int s = 0; s < STEPS; s++)
        if (tc[s] != tg[s]) {
            same = s;
            break;
        }
    if (same < STEPS) {
        /* token `same` is the argmax of logits row PROMPT + same - 1 */
        const float *row = lc + (size_t)(PROMPT + same - 1) * V;
        float m = mimo_test_top2_margin(row, V);
        cr_log_warn("greedy tokens diverge at step %d (CPU top-1 margin %g)", same, m);
        cr_assert(m < 5e-3f * (1.0f + fabsf(row[tc[same]])), "divergence at step %d is not a near-tie (margin %g)", same, m);
    }
    double rel = mimo_test_rel_err(lg, lc, (size_t)(PROMPT + same) * V);
    cr_assert(rel < 1e-2, "logits rel err %g", rel);
    cr_log_info("tiny GPU vs CPU: logits rel err %g over %d positions, %d/%d greedy tokens equal", rel, PROMPT + same,
                same, STEPS);
    free(lc);
    free(lg);
    free(hc);
    free(hg);
    mimo_engine_destroy(cpu);
    mimo_engine_destroy(gpu);
}

static void run_tokens(mimo_engine *e, const int32_t *toks, int n, int chunk, float *logits)
{
    mimo_error err = {{0}};
    const int V = mimo_engine_config(e)->vocab_size;
    for (int i = 0; i < n; i += chunk) {
        int m = n - i < chunk ? n - i : chunk;
        mimo_forward_out o = {.logits = logits + (size_t)i * V, .argmax = NULL, .hidden = NULL};
        cr_assert_eq(mimo_engine_forward(e, toks + i, m, &o, &err), 0, "%s", err.msg);
    }
}

/* full-attention spans of 8192 keys: 64-key splits (several positions': in tiles of the grouped kernel) */
static void context_8192(mimo_engine_options *o) { o->max_context = 8192; }

static void graph_matches_eager(void (*tweak)(mimo_engine_options *))
{
    mimo_engine *eg = make("tiny", MIMO_BACKEND_CUDA, MIMO_EXEC_EAGER, tweak);
    mimo_engine *gr = make("tiny", MIMO_BACKEND_CUDA, MIMO_EXEC_GRAPH, tweak);
    const int V = mimo_engine_config(eg)->vocab_size, n = 60;
    int32_t toks[60];
    prompt_tokens(toks, n, V);
    float *a = malloc((size_t)n * V * sizeof(float)), *b = malloc((size_t)n * V * sizeof(float));
    /* mixed chunk sizes: 16, then singles and 8s (several graphs, lengths crossing the window) */
    run_tokens(eg, toks, 16, 16, a);
    run_tokens(gr, toks, 16, 16, b);
    run_tokens(eg, toks + 16, 20, 1, a + (size_t)16 * V);
    run_tokens(gr, toks + 16, 20, 1, b + (size_t)16 * V);
    run_tokens(eg, toks + 36, 24, 8, a + (size_t)36 * V);
    run_tokens(gr, toks + 36, 24, 8, b + (size_t)36 * V);
    size_t ndiff = 0, first = 0;
    for (size_t i = 0; i < (size_t)n * V; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) && ndiff++ == 0)
            first = i;
    cr_assert_eq(ndiff, 0, "graph and eager logits differ in %zu of %zu values; first at position %zu, column %zu: "
                 "eager %.9g graph %.9g", ndiff, (size_t)n * V, first / (size_t)V, first % (size_t)V, a[first], b[first]);
    free(a);
    free(b);
    mimo_engine_destroy(eg);
    mimo_engine_destroy(gr);
}

Test(cuda_model, graph_equals_eager_bit_for_bit)
{
    need_gpu();
    graph_matches_eager(NULL);
    graph_matches_eager(context_8192);
}

/* --exec persistent: one-position steps run in the persistent kernel (the prompt's chunk replays its
 * graph); logits, greedy tokens and the hidden states copied out equal eager mode's bit for bit, with
 * the experts in each format (each format's GEMV variants are entries of the kernel's table). */
static void persistent_matches_eager(void (*tweak)(mimo_engine_options *), const char *what)
{
    mimo_engine *eg = make("tiny", MIMO_BACKEND_CUDA, MIMO_EXEC_EAGER, tweak);
    mimo_engine *ps = make("tiny", MIMO_BACKEND_CUDA, MIMO_EXEC_PERSISTENT, tweak);
    const mimo_config *cfg = mimo_engine_config(eg);
    const int V = cfg->vocab_size, H = cfg->hidden_size, P = 16, STEPS_P = 48;
    float *la = malloc((size_t)P * V * sizeof(float)), *lb = malloc((size_t)P * V * sizeof(float));
    float *ha = malloc((size_t)2 * P * H * sizeof(float)), *hb = malloc((size_t)2 * P * H * sizeof(float));
    int32_t toks[16], aa[16], ab[16];
    prompt_tokens(toks, P, V);
    mimo_error err = {{0}};
    int n = P;
    for (int s = 0; s <= STEPS_P; s++) {   /* the prompt, then single tokens past the SWA window */
        mimo_forward_out oa = {.logits = la, .argmax = aa, .hidden = ha};
        mimo_forward_out ob = {.logits = lb, .argmax = ab, .hidden = hb};
        memset(lb, 0xFF, (size_t)n * V * sizeof(float));   /* NaN: every value must be written */
        memset(hb, 0xFF, (size_t)2 * n * H * sizeof(float));
        cr_assert_eq(mimo_engine_forward(eg, toks, n, &oa, &err), 0, "%s", err.msg);
        cr_assert_eq(mimo_engine_forward(ps, toks, n, &ob, &err), 0, "%s: %s", what, err.msg);
        size_t ndiff = 0, first = 0;
        for (size_t i = 0; i < (size_t)n * V; i++)
            if (memcmp(&la[i], &lb[i], sizeof(float)) && ndiff++ == 0)
                first = i;
        cr_assert_eq(ndiff, 0, "%s, call %d (%d positions): persistent and eager logits differ in %zu of %zu values; "
                     "first at column %zu: eager %.9g persistent %.9g", what, s, n, ndiff, (size_t)n * V,
                     first % (size_t)V, la[first], lb[first]);
        cr_assert_eq(memcmp(ha, hb, (size_t)2 * n * H * sizeof(float)), 0, "%s, call %d: hidden states differ", what, s);
        cr_assert_eq(memcmp(aa, ab, (size_t)n * sizeof(int32_t)), 0, "%s, call %d: argmax differs", what, s);
        toks[0] = aa[n - 1];
        n = 1;
    }
    cr_assert_eq(mimo_engine_length(ps), P + STEPS_P);
    free(la);
    free(lb);
    free(ha);
    free(hb);
    mimo_engine_destroy(eg);
    mimo_engine_destroy(ps);
}

static void experts_bf16(mimo_engine_options *o);
static void experts_fp8(mimo_engine_options *o);
Test(cuda_model, persistent_equals_eager_bit_for_bit)
{
    need_gpu();
    persistent_matches_eager(NULL, "mxfp4 experts");
    persistent_matches_eager(experts_bf16, "bf16 experts");
    persistent_matches_eager(experts_fp8, "fp8 experts");
    persistent_matches_eager(context_8192, "context 8192");
}

/* The persistent kernel's phase stamps (mimo_engine_set_phase_stamps, HARNESS.md "CUPTI"): each
 * one-position step run in the kernel is kept with one phase per instruction; the phases tile the step
 * (each starts where the previous ended, none runs backwards, names "<instruction>:<kernel>"), steps follow
 * each other in time, the logits equal an unstamped engine's bit for bit; the prompt's chunk (a graph) and
 * graph-mode engines keep nothing; at most MIMO_PHASE_MAX_STEPS steps are kept and the rest counted;
 * turning stamps off clears them. */
Test(cuda_model, persistent_phase_stamps_tile_each_step)
{
    need_gpu();
    mimo_engine *ps = make("tiny", MIMO_BACKEND_CUDA, MIMO_EXEC_PERSISTENT, NULL);
    mimo_engine *ref = make("tiny", MIMO_BACKEND_CUDA, MIMO_EXEC_PERSISTENT, NULL);
    mimo_engine *gr = make("tiny", MIMO_BACKEND_CUDA, MIMO_EXEC_GRAPH, NULL);
    const int V = mimo_engine_config(ps)->vocab_size, P = 16, S = 24;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_engine_set_phase_stamps(ps, true, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_engine_set_phase_stamps(gr, true, &err), 0, "%s", err.msg);
    int32_t toks[16];
    prompt_tokens(toks, P, V);
    float *a = malloc((size_t)P * V * sizeof(float)), *b = malloc((size_t)P * V * sizeof(float));
    run_tokens(ps, toks, P, P, a);
    run_tokens(ref, toks, P, P, b);
    run_tokens(gr, toks, P, P, b);
    long dropped = -1;
    cr_assert_eq(mimo_engine_phase_steps(ps, &dropped), 0, "the prompt's chunk is not a persistent step");
    for (int s = 0; s < S; s++) {
        int32_t t = toks[s % P];
        run_tokens(ps, &t, 1, 1, a);
        run_tokens(ref, &t, 1, 1, b);
        run_tokens(gr, &t, 1, 1, b + V);
        cr_assert_eq(memcmp(a, b, (size_t)V * sizeof(float)), 0, "step %d: stamped and unstamped logits differ", s);
    }
    cr_assert_eq(mimo_engine_phase_steps(ps, &dropped), S);
    cr_assert_eq(dropped, 0);
    cr_assert_eq(mimo_engine_phase_steps(gr, &dropped), 0, "graph mode has no persistent steps");
    int n0 = 0;
    uint64_t prev_end = 0;
    for (int s = 0; s < S; s++) {
        int n = 0;
        const mimo_phase *ph = mimo_engine_phase_step(ps, s, &n);
        cr_assert_not_null(ph);
        if (s == 0)
            n0 = n;
        cr_assert(n > 10 && n == n0, "step %d: %d phases (step 0: %d)", s, n, n0);
        cr_assert_geq(ph[0].start_ns, prev_end, "step %d starts before step %d ended", s, s - 1);
        for (int i = 0; i < n; i++) {
            cr_assert_geq(ph[i].end_ns, ph[i].start_ns, "step %d phase %d (%s) runs backwards", s, i, ph[i].name);
            if (i > 0)
                cr_assert_eq(ph[i].start_ns, ph[i - 1].end_ns, "step %d: phase %d does not start where %d ended", s, i,
                             i - 1);
            cr_assert(ph[i].name && strchr(ph[i].name, ':'), "step %d phase %d: name '%s'", s, i,
                      ph[i].name ? ph[i].name : "(null)");
        }
        const uint64_t span = ph[n - 1].end_ns - ph[0].start_ns;
        cr_assert(span > 0 && span < 1000000000ull, "step %d spans %llu ns", s, (unsigned long long)span);
        prev_end = ph[n - 1].end_ns;
    }
    int n = -1;
    cr_assert_null(mimo_engine_phase_step(ps, S, &n));
    cr_assert_eq(n, 0);
    /* past MIMO_PHASE_MAX_STEPS: counted, not kept (the context restarts with the prompt, whose chunks
     * keep nothing, every 32 steps) */
    cr_assert_eq(mimo_engine_set_phase_stamps(ps, true, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_engine_phase_steps(ps, &dropped), 0, "turning stamps on again clears them");
    const int extra = 9, total = MIMO_PHASE_MAX_STEPS + extra;
    for (int s = 0; s < total; s++) {
        if (s % 32 == 0) {
            cr_assert_eq(mimo_engine_truncate(ps, 0, &err), 0, "%s", err.msg);
            run_tokens(ps, toks, P, P, a);
        }
        int32_t t = toks[s % P];
        run_tokens(ps, &t, 1, 1, a);
    }
    cr_assert_eq(mimo_engine_phase_steps(ps, &dropped), MIMO_PHASE_MAX_STEPS);
    cr_assert_eq(dropped, extra);
    cr_assert_eq(mimo_engine_set_phase_stamps(ps, false, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_engine_phase_steps(ps, &dropped), 0, "turning stamps off clears them");
    free(a);
    free(b);
    mimo_engine_destroy(ps);
    mimo_engine_destroy(ref);
    mimo_engine_destroy(gr);
}

Test(cuda_model, rollback_then_replay_matches)
{
    need_gpu();
    /* 40 positions, roll back 16 (SWA ring slots overwritten), replay different tokens, compare with a
     * fresh engine fed the same final sequence. */
    mimo_engine *e = make("tiny", MIMO_BACKEND_CUDA, MIMO_EXEC_GRAPH, NULL);
    mimo_engine *f = make("tiny", MIMO_BACKEND_CUDA, MIMO_EXEC_EAGER, NULL);
    const int V = mimo_engine_config(e)->vocab_size;
    int32_t toks[40], alt[16];
    prompt_tokens(toks, 40, V);
    for (int i = 0; i < 16; i++)
        alt[i] = (toks[24 + i] + 5) % V;
    float *a = malloc((size_t)40 * V * sizeof(float)), *b = malloc((size_t)40 * V * sizeof(float));
    run_tokens(e, toks, 40, 8, a);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_engine_truncate(e, 24, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_engine_length(e), 24);
    run_tokens(e, alt, 16, 16, a + (size_t)24 * V);
    int32_t seq[40];
    memcpy(seq, toks, 24 * sizeof(int32_t));
    memcpy(seq + 24, alt, 16 * sizeof(int32_t));
    run_tokens(f, seq, 40, 8, b);
    double rel = mimo_test_rel_err(a + (size_t)24 * V, b + (size_t)24 * V, (size_t)16 * V);
    cr_assert(rel < 1e-5, "after rollback: rel err %g", rel);
    /* a rollback deeper than the ring's slack is refused, never silently wrong */
    cr_assert_neq(mimo_engine_truncate(e, 2, &err), 0);
    cr_assert(strstr(err.msg, "roll back") != NULL, "%s", err.msg);
    free(a);
    free(b);
    mimo_engine_destroy(e);
    mimo_engine_destroy(f);
}

static void experts_bf16(mimo_engine_options *o)
{
    o->override_experts = true;
    o->expert_format = MIMO_WFMT_BF16;
}
static void experts_fp8(mimo_engine_options *o)
{
    o->override_experts = true;
    o->expert_format = MIMO_WFMT_FP8;
}

Test(cuda_model, fp4_ablation_changes_bytes_not_values)
{
    need_gpu();
    mimo_engine *a = make("tiny", MIMO_BACKEND_CUDA, MIMO_EXEC_EAGER, NULL);
    mimo_engine *b = make("tiny", MIMO_BACKEND_CUDA, MIMO_EXEC_EAGER, experts_bf16);
    mimo_engine *c = make("tiny", MIMO_BACKEND_CUDA, MIMO_EXEC_EAGER, experts_fp8);
    const int V = mimo_engine_config(a)->vocab_size, n = 30;
    int32_t toks[30];
    prompt_tokens(toks, n, V);
    float *la = malloc((size_t)n * V * 4), *lb = malloc((size_t)n * V * 4), *lc = malloc((size_t)n * V * 4);
    run_tokens(a, toks, n, 16, la);
    run_tokens(b, toks, n, 16, lb);
    run_tokens(c, toks, n, 16, lc);
    double rb = mimo_test_rel_err(lb, la, (size_t)n * V), rc = mimo_test_rel_err(lc, la, (size_t)n * V);
    cr_assert(rb < 1e-5 && rc < 1e-5, "expert storage changed the outputs: bf16 %g fp8 %g", rb, rc);
    free(la);
    free(lb);
    free(lc);
    mimo_engine_destroy(a);
    mimo_engine_destroy(b);
    mimo_engine_destroy(c);
}

static void check_synth_identity(const char *preset)
{
    mimo_config cfg;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_preset(preset, &cfg, &err), 0, "%s", err.msg);
    mimo_tensor_source *src = NULL;
    cr_assert_eq(mimo_synth_target(&cfg, SEED, &src, &err), 0, "%s", err.msg);
    mimo_weights w;
    cr_assert_eq(mimo_weights_bind(&cfg, src, &w, NULL, NULL, &err), 0, "%s", err.msg);
    mimo_engine_options o;
    mimo_engine_options_default(&o);
    o.backend = MIMO_BACKEND_CUDA;
    o.max_context = 64;
    int mismatches = -1;
    char first[256] = "";
    cr_assert_eq(mimo_cuda_test_synth_matches_upload(&w, SEED, &o, &mismatches, first, sizeof first, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(mismatches, 0, "%s: %d device-generated tensors differ from the CPU generator's, first: %s", preset,
                 mismatches, first);
    mimo_weights_free(&w);
    mimo_source_free(src);
}

Test(cuda_model, device_synth_is_bit_identical_to_cpu_synth)
{
    need_gpu();
    check_synth_identity("tiny");
    check_synth_identity("small");
}

static void shard2(mimo_engine_options *o)
{
    o->shard_rank = 1;
    o->shard_count = 2;
}

Test(cuda_model, shard_replay_and_refusals)
{
    need_gpu();
    /* small: its 768-wide expert slices split into whole MXFP4 blocks (tiny's 32 would not) */
    mimo_engine *e = make("small", MIMO_BACKEND_CUDA, MIMO_EXEC_GRAPH, shard2);
    const int V = mimo_engine_config(e)->vocab_size;
    int32_t toks[8], arg[8];
    prompt_tokens(toks, 8, V);
    mimo_error err = {{0}};
    mimo_forward_out o = {.logits = NULL, .argmax = arg, .hidden = NULL};
    cr_assert_eq(mimo_engine_forward(e, toks, 8, &o, &err), 0, "%s", err.msg);
    for (int i = 0; i < 8; i++)   /* rank 1 of 2 owns vocab rows [V/2, V) */
        cr_assert(arg[i] >= V / 2 && arg[i] < V, "argmax %d outside the rank's vocab slice", arg[i]);
    mimo_engine_destroy(e);

    mimo_config cfg;
    mimo_engine *p = NULL;
    cr_assert_eq(mimo_config_preset("tiny", &cfg, &err), 0, "%s", err.msg);
    mimo_engine_options opt;
    mimo_engine_options_default(&opt);
    opt.backend = MIMO_BACKEND_CUDA;
    opt.shard_count = 2;
    opt.shard_rank = 0;
    cr_assert_neq(mimo_engine_create_synthetic(&cfg, SEED, &opt, &p, &err), 0, "tiny's 16-column MXFP4 slice must be refused");
    cr_assert(strstr(err.msg, "whole blocks") != NULL, "%s", err.msg);
    mimo_engine_options_default(&opt);
    opt.backend = MIMO_BACKEND_CUDA;
    /* more memory than any device has: refused before allocating */
    cr_assert_eq(mimo_config_preset("mimo-v2.5-pro", &cfg, &err), 0, "%s", err.msg);
    opt.exec = MIMO_EXEC_EAGER;
    cr_assert_neq(mimo_engine_create_synthetic(&cfg, SEED, &opt, &p, &err), 0);
    cr_assert(strstr(err.msg, "not enough device memory") != NULL, "%s", err.msg);
}

#else

Test(cuda_model, needs_cuda_build)
{
    cr_skip_test("no CUDA device: this build has no CUDA backend (nvcc was not found at configure time)");
}

#endif
