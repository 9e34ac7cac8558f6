/* Built-in model presets (MODEL.md "Presets the engine ships"). Each is an ordinary mimo_config:
 * everything downstream treats it exactly like a parsed config.json. */
#include "mimo/config.h"

#include <math.h>
#include <string.h>

static const char *const preset_names[] = {"tiny", "small", "mimo-v2-flash", "mimo-v2.5-pro", NULL};

const char *const *mimo_preset_names(void) { return preset_names; }

static void set_attn(mimo_attn_shape *a, int heads, int kv, int dqk, int dv, double theta, float factor,
                     bool sink, int window)
{
    a->n_heads = heads;
    a->n_kv_heads = kv;
    a->head_dim = dqk;
    a->v_head_dim = dv;
    a->rope_dim = 2 * (int)lround(dqk * (double)factor / 2.0);  /* same rule as the parser */
    a->rope_theta = theta;
    a->has_sink = sink;
    a->window = window;
}

static void common_defaults(mimo_config *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->model_type, "mimo_v2_flash");
    c->rms_eps = 1e-5f;
    c->max_position_embeddings = 262144;
    c->attention_value_scale = 1.0f;
    c->norm_topk_prob = true;
    c->routed_scaling_factor = 1.0f;
    c->n_group = 1;
    c->topk_group = 1;
    strcpy(c->scoring_func, "sigmoid");
    strcpy(c->topk_method, "noaux_tc");
    c->qkv_groups = 1;
}

/* CI-sized, every feature: dense + MoE, SWA + full with sinks on both, window 8 (< test prompts),
 * GQA, dqk 24 != dv 16, partial RoPE (8 of 24 dims), 8 experts top-2, vocab 512, every storage format. */
static void preset_tiny(mimo_config *c)
{
    common_defaults(c);
    c->hidden_size = 64;
    c->num_layers = 4;
    c->vocab_size = 512;
    c->max_position_embeddings = 4096;
    const bool swa[4] = {false, true, true, false};
    const bool moe[4] = {false, true, true, true};
    for (int l = 0; l < 4; l++) {
        c->layer_is_swa[l] = swa[l];
        c->layer_is_moe[l] = moe[l];
    }
    c->partial_rotary_factor = 0.334f;
    set_attn(&c->full, 8, 2, 24, 16, 5e6, c->partial_rotary_factor, true, 0);
    set_attn(&c->swa, 8, 4, 24, 16, 1e4, c->partial_rotary_factor, true, 8);
    c->attention_value_scale = 0.707f;
    c->intermediate_size = 128;
    c->n_routed_experts = 8;
    c->experts_per_tok = 2;
    c->moe_intermediate_size = 32;
    c->routed_scaling_factor = 1.5f;
    c->storage = (mimo_storage){.embed = MIMO_WFMT_BF16, .lm_head = MIMO_WFMT_BF16, .qkv = MIMO_WFMT_FP8,
                                .o_proj = MIMO_WFMT_BF16, .dense_mlp = MIMO_WFMT_FP8,
                                .experts = MIMO_WFMT_MXFP4, .router = MIMO_WFMT_BF16, .norms = MIMO_WFMT_F32};
}

/* GPU demo: runs in seconds, ~1.5 GB of weights in its default storage (MXFP4 experts ~1.1 GB,
 * embed + lm_head bf16 ~0.26 GB, FP8 attention and dense layer ~0.15 GB), Flash-like ratios. */
static void preset_small(mimo_config *c)
{
    common_defaults(c);
    c->hidden_size = 2048;
    c->num_layers = 8;
    c->vocab_size = 32000;
    for (int l = 0; l < c->num_layers; l++) {
        c->layer_is_swa[l] = !(l == 0 || (l + 1) % 4 == 0);   /* full at 0, 3, 7 */
        c->layer_is_moe[l] = l != 0;
    }
    c->partial_rotary_factor = 0.334f;
    set_attn(&c->full, 32, 4, 192, 128, 5e6, c->partial_rotary_factor, false, 0);
    set_attn(&c->swa, 32, 8, 192, 128, 1e4, c->partial_rotary_factor, true, 128);
    c->attention_value_scale = 0.707f;
    c->intermediate_size = 8192;
    c->n_routed_experts = 64;
    c->experts_per_tok = 8;
    c->moe_intermediate_size = 768;
    c->storage = (mimo_storage){.embed = MIMO_WFMT_BF16, .lm_head = MIMO_WFMT_BF16, .qkv = MIMO_WFMT_FP8,
                                .o_proj = MIMO_WFMT_FP8, .dense_mlp = MIMO_WFMT_FP8,
                                .experts = MIMO_WFMT_MXFP4, .router = MIMO_WFMT_F32, .norms = MIMO_WFMT_F32};
}

/* MiMo-V2-Flash: 48 layers (1 dense + 47 MoE), full attention at l = 0 and (l+1) % 6 == 0 (9 of 48). */
static void preset_flash(mimo_config *c)
{
    common_defaults(c);
    c->hidden_size = 4096;
    c->num_layers = 48;
    c->vocab_size = 152576;
    for (int l = 0; l < c->num_layers; l++) {
        c->layer_is_swa[l] = !(l == 0 || (l + 1) % 6 == 0);
        c->layer_is_moe[l] = l != 0;
    }
    c->partial_rotary_factor = 0.334f;
    set_attn(&c->full, 64, 4, 192, 128, 5e6, c->partial_rotary_factor, false, 0);
    set_attn(&c->swa, 64, 8, 192, 128, 1e4, c->partial_rotary_factor, true, 128);
    c->attention_value_scale = 0.707f;
    c->intermediate_size = 16384;
    c->n_routed_experts = 256;
    c->experts_per_tok = 8;
    c->moe_intermediate_size = 2048;
    c->storage = (mimo_storage){.embed = MIMO_WFMT_BF16, .lm_head = MIMO_WFMT_BF16, .qkv = MIMO_WFMT_FP8,
                                .o_proj = MIMO_WFMT_FP8, .dense_mlp = MIMO_WFMT_FP8,
                                .experts = MIMO_WFMT_MXFP4, .router = MIMO_WFMT_F32, .norms = MIMO_WFMT_F32};
}

/* MiMo-V2.5-Pro: 70 layers (1 dense + 69 MoE), 10 full / 60 SWA. MODEL.md gives the counts but not
 * the positions: full at l % 7 == 0 (0, 7, ..., 63) is our assumption. TP-interleaved qkv in 8 groups,
 * o_proj BF16 (ignored_layers), router BF16. */
static void preset_pro(mimo_config *c)
{
    common_defaults(c);
    c->hidden_size = 6144;
    c->num_layers = 70;
    c->vocab_size = 152576;
    for (int l = 0; l < c->num_layers; l++) {
        c->layer_is_swa[l] = l % 7 != 0;
        c->layer_is_moe[l] = l != 0;
    }
    c->partial_rotary_factor = 0.334f;
    set_attn(&c->full, 128, 8, 192, 128, 1e7, c->partial_rotary_factor, false, 0);
    set_attn(&c->swa, 128, 8, 192, 128, 1e4, c->partial_rotary_factor, true, 128);
    c->attention_value_scale = 0.707f;
    c->intermediate_size = 16384;
    c->n_routed_experts = 384;
    c->experts_per_tok = 8;
    c->moe_intermediate_size = 2048;
    c->qkv_interleaved = true;
    c->qkv_groups = 8;
    c->storage = (mimo_storage){.embed = MIMO_WFMT_BF16, .lm_head = MIMO_WFMT_BF16, .qkv = MIMO_WFMT_FP8,
                                .o_proj = MIMO_WFMT_BF16, .dense_mlp = MIMO_WFMT_FP8,
                                .experts = MIMO_WFMT_MXFP4, .router = MIMO_WFMT_BF16, .norms = MIMO_WFMT_F32};
}

int mimo_config_preset(const char *name, mimo_config *cfg, mimo_error *err)
{
    if (!name)
        return mimo_fail(err, "preset name missing");
    if (!strcmp(name, "tiny"))
        preset_tiny(cfg);
    else if (!strcmp(name, "small"))
        preset_small(cfg);
    else if (!strcmp(name, "mimo-v2-flash"))
        preset_flash(cfg);
    else if (!strcmp(name, "mimo-v2.5-pro"))
        preset_pro(cfg);
    else
        return mimo_fail(err, "unknown preset '%s' (tiny, small, mimo-v2-flash, mimo-v2.5-pro)", name);
    if (mimo_config_validate(cfg, err))
        return mimo_fail_prefix(err, "preset %s", name);
    return 0;
}
