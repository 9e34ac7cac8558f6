/* The CUDA tests' shared rig: the tiny target generated on a backend with hidden-state outputs at the
 * drafter's target layers, and a synthetic drafter attached (tests/cuda). */
#ifndef MIMO_TEST_CUDA_RIG_H
#define MIMO_TEST_CUDA_RIG_H

#include <criterion/criterion.h>
#include <string.h>

#include "mimo/backend.h"
#include "mimo/engine.h"
#include "mimo/synth.h"
#include "../spec/spec_rig.h"

#define TARGET_SEED 1234u
#define DRAFTER_SEED 77u

static inline void need_gpu(void)
{
    char reason[256];
    if (!mimo_cuda_backend_available(reason, sizeof reason))
        cr_skip_test("no CUDA device: %s", reason);
}

/* The tiny target (synthetic, same seed on both backends: the device generator is bit-identical
 * to the CPU's) with hidden-state outputs at the drafter's target layers, and a drafter attached: the
 * decode-loop tests' rig (tests/spec/spec_rig.h) on a chosen backend and execution mode. */
typedef spec_rig rig;

/* hidden > 0: the tiny target at that hidden size (and its drafter's shapes with it). */
static inline void rig_open_hidden(rig *r, mimo_backend_kind b, mimo_exec_mode x, int max_context, bool all_swa,
                                   bool drop_mask_embedding, int hidden)
{
    memset(r, 0, sizeof *r);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_preset("tiny", &r->cfg, &err), 0, "%s", err.msg);
    if (hidden > 0)
        r->cfg.hidden_size = hidden;
    mimo_drafter_config_for_target(&r->cfg, &r->dcfg);
    if (all_swa) {
        for (int l = 0; l < r->dcfg.num_layers; l++)
            r->dcfg.layer_is_swa[l] = true;
        r->dcfg.attention_value_scale = 0.75f;   /* exercised, not just 1 */
    }
    mimo_engine_options o = spec_rig_options(r, max_context);
    o.backend = b;
    o.exec = b == MIMO_BACKEND_CUDA ? x : MIMO_EXEC_EAGER;
    cr_assert_eq(mimo_engine_create_synthetic(&r->cfg, TARGET_SEED, &o, &r->e, &err), 0, "%s", err.msg);
    spec_rig_attach_drafter(r, DRAFTER_SEED, drop_mask_embedding);
}

static inline void rig_open(rig *r, mimo_backend_kind b, mimo_exec_mode x, int max_context, bool all_swa, bool drop_mask_embedding)
{
    rig_open_hidden(r, b, x, max_context, all_swa, drop_mask_embedding, 0);
}

static inline void rig_close(rig *r) { spec_rig_close(r); }

#endif
