/* Test helper for the CPU engine tests: the `tiny` preset (optionally edited), its synthetic
 * weights, and a CPU backend over them, driven through the backend table directly (the cpu tests
 * link mimo_cpu, not the engine API). Header-only: each test binary is one .c file. */
#ifndef MIMO_TEST_TINY_MODEL_H
#define MIMO_TEST_TINY_MODEL_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/backend.h"
#include "mimo/hash.h"
#include "mimo/synth.h"

typedef struct {
    mimo_config cfg;
    mimo_tensor_source *src;
    mimo_weights w;
} tiny_model;

/* The tiny preset; edit (may be NULL) changes the config before the weights are drawn. */
static inline void tiny_model_load(tiny_model *m, void (*edit)(mimo_config *), uint64_t seed)
{
    mimo_error err = { { 0 } };
    memset(m, 0, sizeof *m);
    cr_assert_eq(mimo_config_preset("tiny", &m->cfg, &err), 0, "preset: %s", err.msg);
    if (edit) {
        edit(&m->cfg);
        cr_assert_eq(mimo_config_validate(&m->cfg, &err), 0, "edited config: %s", err.msg);
    }
    cr_assert_eq(mimo_synth_target(&m->cfg, seed, &m->src, &err), 0, "synth: %s", err.msg);
    cr_assert_eq(mimo_weights_bind(&m->cfg, m->src, &m->w, NULL, NULL, &err), 0, "bind: %s", err.msg);
}

static inline void tiny_model_free(tiny_model *m)
{
    mimo_weights_free(&m->w);
    mimo_source_free(m->src);
}

typedef struct {
    const mimo_backend_ops *ops;
    void *impl;
} tiny_engine;

/* A CPU backend over m. all_hidden: hidden-state outputs after every layer (up to 16). */
static inline tiny_engine tiny_engine_create_opts(const tiny_model *m, const mimo_engine_options *o)
{
    mimo_error err = { { 0 } };
    tiny_engine e = { 0 };
    cr_assert_eq(mimo_cpu_backend_create(&m->w, o, &e.ops, &e.impl, &err), 0, "cpu backend: %s", err.msg);
    return e;
}

static inline tiny_engine tiny_engine_create(const tiny_model *m, int max_ctx, bool all_hidden)
{
    mimo_engine_options o;
    memset(&o, 0, sizeof o);
    o.backend = MIMO_BACKEND_CPU;
    o.exec = MIMO_EXEC_EAGER;
    o.max_context = max_ctx;
    o.shard_count = 1;
    o.n_threads = 1;
    if (all_hidden) {
        o.n_hidden_layers = m->cfg.num_layers < MIMO_MAX_HIDDEN_OUTPUTS ? m->cfg.num_layers : MIMO_MAX_HIDDEN_OUTPUTS;
        for (int l = 0; l < o.n_hidden_layers; l++)
            o.hidden_layers[l] = l;
    }
    return tiny_engine_create_opts(m, &o);
}

static inline void tiny_engine_destroy(tiny_engine *e)
{
    e->ops->destroy(e->impl);
}

/* Forward n tokens; logits [n, vocab] (may be NULL), hidden as configured (may be NULL). */
static inline void tiny_forward(tiny_engine *e, const int32_t *tokens, int n, float *logits, float *hidden)
{
    mimo_error err = { { 0 } };
    mimo_forward_out out = { .logits = logits, .argmax = NULL, .hidden = hidden };
    cr_assert_eq(e->ops->forward(e->impl, tokens, n, &out, &err), 0, "forward: %s", err.msg);
}

static inline void tiny_truncate(tiny_engine *e, int length)
{
    mimo_error err = { { 0 } };
    cr_assert_eq(e->ops->truncate(e->impl, length, &err), 0, "truncate: %s", err.msg);
}

/* A fixed pseudo-random prompt over the vocabulary. */
static inline void tiny_tokens(int32_t *tokens, int n, int vocab, uint64_t seed)
{
    for (int i = 0; i < n; i++)
        tokens[i] = (int32_t)(mimo_hash2(seed, (uint64_t)i) % (uint64_t)vocab);
}

/* Lowest index of the largest logit (the engine's convention; mimo_argmax lives in mimo_api). */
static inline int32_t tiny_argmax(const float *x, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static inline bool tiny_all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return false;
    return true;
}

#endif
