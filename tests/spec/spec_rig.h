/* Test rig for the decode-loop tests: the tiny preset on the CPU with its synthetic drafter, and
 * drafter doubles (test-only overrides of the proposals) built from a reference continuation. */
#ifndef MIMO_TEST_SPEC_RIG_H
#define MIMO_TEST_SPEC_RIG_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/generate.h"

typedef struct {
    mimo_config cfg;
    mimo_drafter_config dcfg;
    mimo_tensor_source *dsrc;
    mimo_drafter_weights dw;
    mimo_engine *e;
} spec_rig;

/* Engine options with hidden-state outputs at the drafter's target layers (what the drafter reads). */
static inline mimo_engine_options spec_rig_options(const spec_rig *r, int max_context)
{
    mimo_engine_options o;
    mimo_engine_options_default(&o);
    o.max_context = max_context;
    o.n_hidden_layers = r->dcfg.n_target_layers;
    memcpy(o.hidden_layers, r->dcfg.target_layer_ids, sizeof(int) * (size_t)r->dcfg.n_target_layers);
    return o;
}

/* The synthetic drafter of r->dcfg, bound and attached to r->e; with drop_mask_embedding it has no mask
 * embedding (embed[mask_token_id] stands in). */
static inline void spec_rig_attach_drafter(spec_rig *r, uint64_t seed, bool drop_mask_embedding)
{
    mimo_error err = {{0}};
    cr_assert_eq(mimo_drafter_synth(&r->dcfg, seed, &r->dsrc, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_drafter_bind(&r->dcfg, r->dsrc, &r->dw, &err), 0, "%s", err.msg);
    if (drop_mask_embedding)
        r->dw.mask_embedding = NULL;
    cr_assert_eq(mimo_engine_attach_drafter(r->e, &r->dw, &err), 0, "%s", err.msg);
}

/* The rig on any target config (the engine and, optionally, its synthetic drafter on the CPU). */
static inline void spec_rig_open_config(spec_rig *r, const mimo_config *cfg, uint64_t seed, bool with_drafter,
                                        int max_context)
{
    memset(r, 0, sizeof *r);
    mimo_error err = {{0}};
    r->cfg = *cfg;
    mimo_drafter_config_for_target(&r->cfg, &r->dcfg);
    mimo_engine_options o = spec_rig_options(r, max_context);
    cr_assert_eq(mimo_engine_create_synthetic(&r->cfg, seed, &o, &r->e, &err), 0, "%s", err.msg);
    if (with_drafter)
        spec_rig_attach_drafter(r, seed + 1, false);
}

/* The tiny preset with BF16 attention and dense MLP, which the CPU reference decodes several times
 * faster than tiny's own FP8 (these tests are about the loop, not the formats); preset_storage keeps
 * tiny's own storage. */
static inline mimo_config spec_tiny_config(bool preset_storage)
{
    mimo_config cfg;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_preset("tiny", &cfg, &err), 0, "%s", err.msg);
    if (!preset_storage) {
        cfg.storage.qkv = MIMO_WFMT_BF16;
        cfg.storage.o_proj = MIMO_WFMT_BF16;
        cfg.storage.dense_mlp = MIMO_WFMT_BF16;
    }
    return cfg;
}

static inline void spec_rig_open_storage(spec_rig *r, uint64_t seed, bool with_drafter, int max_context, bool preset_storage)
{
    mimo_config cfg = spec_tiny_config(preset_storage);
    spec_rig_open_config(r, &cfg, seed, with_drafter, max_context);
}

static inline void spec_rig_open(spec_rig *r, uint64_t seed, bool with_drafter, int max_context)
{
    spec_rig_open_storage(r, seed, with_drafter, max_context, false);
}

static inline void spec_rig_close(spec_rig *r)
{
    mimo_engine_destroy(r->e);
    if (r->dsrc) {
        mimo_drafter_free(&r->dw);
        mimo_source_free(r->dsrc);
    }
    memset(r, 0, sizeof *r);
}

static inline void spec_random_prompt(int32_t *ids, int n, int vocab, uint64_t seed)
{
    for (int i = 0; i < n; i++)
        ids[i] = (int32_t)(mimo_hash2(mimo_mix64(seed), (uint64_t)i) % (uint64_t)vocab);
}

/* A drafter double that knows the reference continuation ref (the greedy output): it proposes
 * ref's next tokens (agree), or a token that is never ref's (never), or per position one of the
 * two by a hash (mixed). */
typedef enum { ORACLE_AGREE, ORACLE_NEVER, ORACLE_MIXED } oracle_mode;
typedef struct {
    const int32_t *ref;
    int n_ref, n_prompt, vocab;
    oracle_mode mode;
    uint64_t seed;
    int calls;
} oracle_drafter;

static inline int oracle_propose(void *ctx, const int32_t *seq, int n_seq, int n_draft, int32_t *proposals,
                                 float *q, bool *q_filled, mimo_error *err)
{
    oracle_drafter *o = ctx;
    o->calls++;
    int next = n_seq - o->n_prompt;   /* index in ref of the token after seq */
    for (int i = 0; i < n_draft; i++) {
        int idx = next + i;
        int32_t t = idx < o->n_ref ? o->ref[idx] : 0;
        int32_t wrong = (t + 1) % o->vocab;
        switch (o->mode) {
        case ORACLE_AGREE: proposals[i] = t; break;
        case ORACLE_NEVER: proposals[i] = wrong; break;
        case ORACLE_MIXED: proposals[i] = (mimo_hash2(o->seed, (uint64_t)idx) & 3) ? t : wrong; break;
        }
    }
    *q_filled = false;
    return 0;
}

#endif
