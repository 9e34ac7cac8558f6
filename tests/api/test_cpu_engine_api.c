/* The CPU backend through the public engine API (engine.h): synthetic tiny engine, forward outputs,
 * argmax convention, truncation, hidden-state layout. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/engine.h"
#include "mimo/sampling.h"

static mimo_engine *tiny_engine(int max_ctx, int n_threads)
{
    mimo_config cfg;
    mimo_error err = { { 0 } };
    cr_assert_eq(mimo_config_preset("tiny", &cfg, &err), 0, "%s", err.msg);
    mimo_engine_options o;
    mimo_engine_options_default(&o);
    o.max_context = max_ctx;
    o.n_threads = n_threads;
    o.n_hidden_layers = 2;
    o.hidden_layers[0] = 1;
    o.hidden_layers[1] = cfg.num_layers - 1;
    mimo_engine *e = NULL;
    cr_assert_eq(mimo_engine_create_synthetic(&cfg, 42, &o, &e, &err), 0, "%s", err.msg);
    return e;
}

Test(cpu_engine_api, forward_argmax_truncate)
{
    mimo_engine *e = tiny_engine(32, 1);
    const mimo_config *cfg = mimo_engine_config(e);
    const int V = cfg->vocab_size, H = cfg->hidden_size, n = 7;
    int32_t tokens[7] = { 3, 141, 59, 265, 35, 89, 79 };
    float *logits = malloc((size_t)n * V * sizeof *logits), *hidden = malloc((size_t)2 * n * H * sizeof *hidden);
    int32_t argmax[7];
    mimo_forward_out out = { .logits = logits, .argmax = argmax, .hidden = hidden };
    mimo_error err = { { 0 } };
    cr_assert_eq(mimo_engine_forward(e, tokens, n, &out, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_engine_length(e), n);
    for (int i = 0; i < n; i++)
        cr_assert_eq(argmax[i], mimo_argmax(logits + (size_t)i * V, V), "position %d", i);

    /* argmax alone (no logits buffer) gives the same tokens */
    cr_assert_eq(mimo_engine_truncate(e, 0, &err), 0, "%s", err.msg);
    int32_t argmax2[7];
    mimo_forward_out only_argmax = { .argmax = argmax2 };
    cr_assert_eq(mimo_engine_forward(e, tokens, n, &only_argmax, &err), 0, "%s", err.msg);
    cr_assert(memcmp(argmax, argmax2, sizeof argmax) == 0);

    /* truncate + one step reproduces the last position */
    float *last = malloc((size_t)V * sizeof *last);
    cr_assert_eq(mimo_engine_truncate(e, n - 1, &err), 0, "%s", err.msg);
    mimo_forward_out one = { .logits = last };
    cr_assert_eq(mimo_engine_forward(e, tokens + n - 1, 1, &one, &err), 0, "%s", err.msg);
    cr_assert(memcmp(last, logits + (size_t)(n - 1) * V, (size_t)V * sizeof *last) == 0);

    /* the engine refuses what does not fit */
    cr_assert_eq(mimo_engine_truncate(e, n + 1, &err), -1);
    int32_t many[32] = { 0 };
    cr_assert_eq(mimo_engine_forward(e, many, 32 - n + 1, &out, &err), -1);
    cr_assert_eq(mimo_engine_length(e), n);
    free(logits);
    free(hidden);
    free(last);
    mimo_engine_destroy(e);
}

Test(cpu_engine_api, threads_give_identical_outputs)
{
    mimo_engine *a = tiny_engine(16, 1), *b = tiny_engine(16, 2);
    const int V = mimo_engine_config(a)->vocab_size, H = mimo_engine_config(a)->hidden_size, n = 9;
    int32_t tokens[9] = { 1, 2, 3, 500, 400, 300, 7, 8, 9 };
    float *la = malloc((size_t)n * V * sizeof *la), *lb = malloc((size_t)n * V * sizeof *lb);
    float *ha = malloc((size_t)2 * n * H * sizeof *ha), *hb = malloc((size_t)2 * n * H * sizeof *hb);
    mimo_forward_out oa = { .logits = la, .hidden = ha }, ob = { .logits = lb, .hidden = hb };
    mimo_error err = { { 0 } };
    cr_assert_eq(mimo_engine_forward(a, tokens, n, &oa, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_engine_forward(b, tokens, n, &ob, &err), 0, "%s", err.msg);
    cr_assert(memcmp(la, lb, (size_t)n * V * sizeof *la) == 0);
    cr_assert(memcmp(ha, hb, (size_t)2 * n * H * sizeof *ha) == 0);
    free(la);
    free(lb);
    free(ha);
    free(hb);
    mimo_engine_destroy(a);
    mimo_engine_destroy(b);
}

/* The persistent kernel's phase stamps through the API on a backend that has no persistent steps: turning
 * them on and off succeeds, nothing is kept, and step 0 is out of range. */
Test(cpu_engine_api, phase_stamps_keep_nothing_without_persistent_steps)
{
    mimo_engine *e = tiny_engine(32, 1);
    mimo_error err = { { 0 } };
    cr_assert_eq(mimo_engine_set_phase_stamps(e, true, &err), 0, "%s", err.msg);
    int32_t tokens[3] = { 3, 141, 59 };
    mimo_forward_out out = { 0 };
    for (int i = 0; i < 3; i++)
        cr_assert_eq(mimo_engine_forward(e, tokens + i, 1, &out, &err), 0, "%s", err.msg);
    long dropped = -1;
    cr_assert_eq(mimo_engine_phase_steps(e, &dropped), 0);
    cr_assert_eq(dropped, 0);
    int n = -1;
    cr_assert_null(mimo_engine_phase_step(e, 0, &n));
    cr_assert_eq(n, 0);
    cr_assert_eq(mimo_engine_set_phase_stamps(e, false, &err), 0, "%s", err.msg);
    mimo_engine_destroy(e);
}
