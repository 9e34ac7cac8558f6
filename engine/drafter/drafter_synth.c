/* Synthetic drafter tensors, drawn by the target synth's rule (synth.h):
 *   u = mimo_bits_to_unit_symmetric(mimo_hash2(stream, i)), stream = mimo_mix64(seed) ^ mimo_fnv1a64(name)
 * with name = "drafter/" + tensor name, so the drafter's streams never coincide with the target's.
 * Matrices are BF16 (MiMo's drafter is BF16), w = amplitude * u with amplitude sqrt(3 / fan_in)
 * (unit gain: activations stay O(1)); o_proj and down_proj are halved so the residual stream grows
 * slowly; norm weights are 1 + 0.05 u, sinks 0.5 u. */
#include "mimo/dflash.h"
#include "mimo/formats.h"
#include "mimo/hash.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t drafter_stream(uint64_t seed, const char *name)
{
    char buf[256];
    snprintf(buf, sizeof buf, "drafter/%s", name);
    return mimo_mix64(seed) ^ mimo_fnv1a64(buf);
}

/* Element i of a synthetic drafter tensor before storage rounding. */
static float drafter_value(uint64_t stream, uint64_t i, float amplitude, float offset)
{
    return offset + amplitude * mimo_bits_to_unit_symmetric(mimo_hash2(stream, i));
}

static void add_bf16(mimo_tensor_source *src, uint64_t seed, const char *name, int64_t rows, int64_t cols,
                     float amplitude, float offset)
{
    int64_t n = rows * cols;
    uint16_t *data = mimo_xmalloc((size_t)n * sizeof *data);
    uint64_t stream = drafter_stream(seed, name);
    for (int64_t i = 0; i < n; i++)
        data[i] = mimo_f32_to_bf16(drafter_value(stream, (uint64_t)i, amplitude, offset));
    int64_t shape[2] = {rows, cols};
    mimo_source_add(src, name, MIMO_DTYPE_BF16, 2, shape, data, (size_t)n * sizeof *data);
}

static void add_matrix(mimo_tensor_source *src, uint64_t seed, const char *name, int64_t rows, int64_t cols, float gain)
{
    add_bf16(src, seed, name, rows, cols, gain * sqrtf(3.0f / (float)cols), 0.0f);
}

static void add_vector(mimo_tensor_source *src, uint64_t seed, const char *name, int64_t n, float amplitude, float offset)
{
    int64_t shape[1] = {n};
    uint16_t *data = mimo_xmalloc((size_t)n * sizeof *data);
    uint64_t stream = drafter_stream(seed, name);
    for (int64_t i = 0; i < n; i++)
        data[i] = mimo_f32_to_bf16(drafter_value(stream, (uint64_t)i, amplitude, offset));
    mimo_source_add(src, name, MIMO_DTYPE_BF16, 1, shape, data, (size_t)n * sizeof *data);
}

int mimo_drafter_synth(const mimo_drafter_config *cfg, uint64_t seed, mimo_tensor_source **out, mimo_error *err)
{
    *out = NULL;
    if (cfg->hidden_size < 1 || cfg->num_layers < 1 || cfg->num_layers > 64 || cfg->n_heads < 1 ||
        cfg->n_kv_heads < 1 || cfg->head_dim < 2 || cfg->intermediate_size < 1 || cfg->n_target_layers < 1 ||
        cfg->n_target_layers > MIMO_DFLASH_MAX_TARGET_LAYERS)
        return mimo_fail(err, "drafter synth: incomplete drafter config (hidden %d, layers %d, heads %d/%d, target layers %d)",
                         cfg->hidden_size, cfg->num_layers, cfg->n_heads, cfg->n_kv_heads, cfg->n_target_layers);
    const int64_t H = cfg->hidden_size, D = cfg->head_dim, I = cfg->intermediate_size;
    const int64_t QD = (int64_t)cfg->n_heads * D, KD = (int64_t)cfg->n_kv_heads * D;
    mimo_tensor_source *src = mimo_source_new_memory();
    char name[160];

    add_matrix(src, seed, "fc.weight", H, (int64_t)cfg->n_target_layers * H, 1.0f);
    add_vector(src, seed, "hidden_norm.weight", H, 0.05f, 1.0f);
    add_vector(src, seed, "norm.weight", H, 0.05f, 1.0f);
    add_vector(src, seed, "mask_embedding", H, sqrtf(3.0f), 0.0f);   /* RMS 1 */
    for (int l = 0; l < cfg->num_layers; l++) {
#define NAME(suffix) (snprintf(name, sizeof name, "layers.%d.%s", l, suffix), name)
        add_matrix(src, seed, NAME("self_attn.q_proj.weight"), QD, H, 1.0f);
        add_matrix(src, seed, NAME("self_attn.k_proj.weight"), KD, H, 1.0f);
        add_matrix(src, seed, NAME("self_attn.v_proj.weight"), KD, H, 1.0f);
        add_matrix(src, seed, NAME("self_attn.o_proj.weight"), H, QD, 0.5f);
        add_vector(src, seed, NAME("self_attn.q_norm.weight"), D, 0.05f, 1.0f);
        add_vector(src, seed, NAME("self_attn.k_norm.weight"), D, 0.05f, 1.0f);
        if (cfg->has_sink)
            add_vector(src, seed, NAME("self_attn.attention_sink_bias"), cfg->n_heads, 0.5f, 0.0f);
        add_matrix(src, seed, NAME("mlp.gate_proj.weight"), I, H, 1.0f);
        add_matrix(src, seed, NAME("mlp.up_proj.weight"), I, H, 1.0f);
        add_matrix(src, seed, NAME("mlp.down_proj.weight"), H, I, 0.5f);
        add_vector(src, seed, NAME("input_layernorm.weight"), H, 0.05f, 1.0f);
        add_vector(src, seed, NAME("post_attention_layernorm.weight"), H, 0.05f, 1.0f);
#undef NAME
    }
    *out = src;
    return 0;
}
