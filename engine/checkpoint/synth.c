/* Synthetic target checkpoints (MODEL.md "Presets"), deterministic from a seed.
 *
 * THE RULE (the CUDA generator reproduces it bit for bit; every multiply below is by a power of two,
 * hence exact, so FMA contraction cannot change a result):
 *
 *   name    = the canonical tensor name of the WEIGHT ("model.layers.3.mlp.experts.5.up_proj.weight",
 *             "lm_head.weight", ...); its scale tensors are derived, never hashed.
 *   stream  = mimo_mix64(seed) ^ mimo_fnv1a64(name)
 *   bits(i) = mimo_hash2(stream, i)              i = element index in PLAIN row-major order
 *                                                (fused qkv: plain q|k|v order, whatever the storage order)
 *   u(i)    = mimo_bits_to_unit_symmetric(bits(i))   in [-1, 1), a multiple of 2^-23
 *   a       = mimo_synth_amplitude(cfg, name, layer) a power of two (computed on the host)
 *
 *   Expert matrices (routed and shared, every storage) and any matrix stored as MXFP4:
 *     code(i) = bits(i) >> 60   (E2M1 nibble, 0x8..0xF negative)
 *     e       = 125 + log2(a)   (UE8M0 scale byte, the same for every block of the tensor)
 *     value   = mimo_e2m1_values[code] * 2^(e-127)           (max |value| = 1.5 a)
 *     MXFP4 storage: packed nibbles (element 2k low, 2k+1 high) + scale bytes e;
 *     FP8 storage:   fp8 = mimo_f32_to_fp8_e4m3(mimo_e2m1_values[code]) (exact), every block scale 2^(e-127);
 *     BF16 / F32:    the value itself (exact).  => identical values in every expert storage.
 *   Other matrices (embed, lm_head, qkv, o_proj, dense mlp, router):
 *     F32:  a * u;   BF16: mimo_f32_to_bf16(a * u);
 *     FP8:  fp8 = mimo_f32_to_fp8_e4m3(u * 256), every block scale a / 256 (interleaved qkv: scale rows
 *           padded per group, all equal anyway).
 *   Vectors (stored F32, or BF16 = mimo_f32_to_bf16 of the F32 value):
 *     input_layernorm / post_attention_layernorm / norm:  1 + u / 16       (a = 1/16 noise around 1)
 *     attention_sink_bias:                                u                (a = 1)
 *     e_score_correction_bias:                            0                (router balanced by symmetry)
 *
 * Amplitudes (the power of two nearest to, in log2): fan-in matrices sqrt(3/in) so each output has
 * RMS ~1 for RMS-1 inputs; o_proj and down projections (dense, expert) also / sqrt(2 * num_layers) so
 * that the residual stream stays O(1) (GPT-2 style); embed 1; lm_head 4*sqrt(3/hidden) (logits of
 * a few units); router sqrt(3/hidden) with zero bias: experts are exchangeable, so the expected load
 * is uniform, as for a trained model with its balancing bias.
 */
#include "mimo/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/formats.h"
#include "mimo/hash.h"
#include "mimo/weights.h"

static float pow2_nearest(double x)
{
    return (float)ldexp(1.0, (int)lround(log2(x)));
}

float mimo_synth_amplitude(const mimo_config *cfg, const char *name, int layer)
{
    const double H = cfg->hidden_size;
    const double residual_damp = 1.0 / sqrt(2.0 * cfg->num_layers);
    const bool expert = strstr(name, "experts.") != NULL;
    if (strstr(name, "embed_tokens"))
        return 1.0f;
    if (strstr(name, "lm_head"))
        return pow2_nearest(4.0 * sqrt(3.0 / H));
    if (strstr(name, "layernorm") || strstr(name, "norm.weight"))
        return 1.0f / 16.0f;
    if (strstr(name, "attention_sink_bias"))
        return 1.0f;
    if (strstr(name, "e_score_correction_bias"))
        return 0.0f;
    if (strstr(name, "o_proj")) {
        const mimo_attn_shape *a = mimo_layer_attn(cfg, layer < 0 ? 0 : layer);
        return pow2_nearest(sqrt(3.0 / ((double)a->n_heads * a->v_head_dim)) * residual_damp);
    }
    if (strstr(name, "down_proj")) {
        double in = expert ? cfg->moe_intermediate_size : cfg->intermediate_size;
        return pow2_nearest(sqrt(3.0 / in) * residual_damp);
    }
    /* qkv / q / k / v, gate_proj, up_proj, router (mlp.gate.weight): fan-in = hidden */
    return pow2_nearest(sqrt(3.0 / H));
}

/* ---- element generators ---- */

static uint64_t stream_of(uint64_t seed, const char *name)
{
    return mimo_mix64(seed) ^ mimo_fnv1a64(name);
}

static void add(mimo_tensor_source *src, const char *name, mimo_dtype dt, int ndim, int64_t d0, int64_t d1,
                void *data, size_t nbytes)
{
    int64_t shape[2] = {d0, d1};
    mimo_source_add(src, name, dt, ndim, shape, data, nbytes);
}

/* A vector of n values v(i) = base + a*u(i), stored f32 or bf16. */
static void add_vector(mimo_tensor_source *src, const char *name, mimo_weight_format f, int64_t n, uint64_t seed,
                       float base, float amp)
{
    uint64_t stream = stream_of(seed, name);
    if (f == MIMO_WFMT_BF16) {
        uint16_t *d = mimo_xmalloc((size_t)n * 2);
        for (int64_t i = 0; i < n; i++)
            d[i] = mimo_f32_to_bf16(base + amp * mimo_bits_to_unit_symmetric(mimo_hash2(stream, (uint64_t)i)));
        add(src, name, MIMO_DTYPE_BF16, 1, n, 0, d, (size_t)n * 2);
    } else {
        float *d = mimo_xmalloc((size_t)n * 4);
        for (int64_t i = 0; i < n; i++)
            d[i] = base + amp * mimo_bits_to_unit_symmetric(mimo_hash2(stream, (uint64_t)i));
        add(src, name, MIMO_DTYPE_F32, 1, n, 0, d, (size_t)n * 4);
    }
}

/* Derives "X.weight_scale" / "X.weight_scale_inv" from "X.weight". */
static void scale_name(char *out, size_t n, const char *weight_name, const char *suffix)
{
    /* "X.weight" + "_scale"; synthetic names are far shorter than out, a longer one would only be cut */
    if (snprintf(out, n, "%s%s", weight_name, suffix) >= (int)n && n > 0)
        out[n - 1] = '\0';
}

/* Storage element index of plain element (r, c). */
static uint64_t storage_index(const int32_t *row_map, int64_t r, int64_t c, int64_t cols)
{
    return (uint64_t)(row_map ? row_map[r] : r) * (uint64_t)cols + (uint64_t)c;
}

/* FP8 block-scale tensor [scale_rows (0 = ceil(rows/128)), ceil(cols/128)], every block = scale. */
static void add_fp8_scales(mimo_tensor_source *src, const char *name, int64_t rows, int64_t cols,
                           int64_t scale_rows, float scale)
{
    char sname[256];
    int64_t sr = scale_rows > 0 ? scale_rows : (rows + 127) / 128, sc = (cols + 127) / 128;
    float *s = mimo_xmalloc((size_t)(sr * sc) * 4);
    for (int64_t i = 0; i < sr * sc; i++)
        s[i] = scale;
    scale_name(sname, sizeof sname, name, "_scale_inv");
    add(src, sname, MIMO_DTYPE_F32, 2, sr, sc, s, (size_t)(sr * sc) * 4);
}

/* A matrix [rows, cols] drawn as E2M1 codes with one scale byte (experts; any MXFP4 matrix). */
static void add_code_matrix(mimo_tensor_source *src, const char *name, mimo_weight_format f, int64_t rows,
                            int64_t cols, uint64_t seed, float amp, const int32_t *row_map, int64_t scale_rows)
{
    const uint64_t stream = stream_of(seed, name);
    const int log2a = (int)lround(log2(amp));
    const uint8_t e = (uint8_t)(125 + log2a);
    const float scale = (float)ldexp(1.0, e - 127);
    const uint64_t n = (uint64_t)rows * (uint64_t)cols;
    char sname[256];
    size_t esize = f == MIMO_WFMT_F32 ? 4 : f == MIMO_WFMT_BF16 ? 2 : 1;
    uint8_t *d = mimo_xcalloc(f == MIMO_WFMT_MXFP4 ? (size_t)(n / 2) : (size_t)n * esize, 1);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            uint8_t code = (uint8_t)(mimo_hash2(stream, (uint64_t)r * (uint64_t)cols + (uint64_t)c) >> 60);
            uint64_t o = storage_index(row_map, r, c, cols);
            switch (f) {
            case MIMO_WFMT_MXFP4: d[o / 2] |= (uint8_t)((o & 1) ? code << 4 : code); break;
            case MIMO_WFMT_FP8:   d[o] = mimo_f32_to_fp8_e4m3(mimo_e2m1_values[code]); break;
            case MIMO_WFMT_BF16:  ((uint16_t *)d)[o] = mimo_f32_to_bf16(mimo_e2m1_values[code] * scale); break;
            default:              ((float *)d)[o] = mimo_e2m1_values[code] * scale; break;
            }
        }
    switch (f) {
    case MIMO_WFMT_MXFP4: {
        size_t ns = (size_t)(rows * (cols / 32));
        uint8_t *scales = mimo_xmalloc(ns);
        memset(scales, e, ns);
        add(src, name, MIMO_DTYPE_U8, 2, rows, cols / 2, d, (size_t)(n / 2));
        scale_name(sname, sizeof sname, name, "_scale");
        add(src, sname, MIMO_DTYPE_U8, 2, rows, cols / 32, scales, ns);
        break;
    }
    case MIMO_WFMT_FP8:
        add(src, name, MIMO_DTYPE_F8_E4M3, 2, rows, cols, d, (size_t)n);
        add_fp8_scales(src, name, rows, cols, scale_rows, scale);
        break;
    case MIMO_WFMT_BF16:
        add(src, name, MIMO_DTYPE_BF16, 2, rows, cols, d, (size_t)n * 2);
        break;
    default:
        add(src, name, MIMO_DTYPE_F32, 2, rows, cols, d, (size_t)n * 4);
        break;
    }
}

/* A uniform matrix [rows, cols]; row_map (may be NULL) sends plain row r to storage row row_map[r];
 * scale_rows is the FP8 scale tensor's row count (padded per group for interleaved qkv). */
static void add_uniform_matrix(mimo_tensor_source *src, const char *name, mimo_weight_format f, int64_t rows,
                               int64_t cols, uint64_t seed, float amp, const int32_t *row_map, int64_t scale_rows)
{
    if (f == MIMO_WFMT_MXFP4) {
        add_code_matrix(src, name, f, rows, cols, seed, amp, row_map, scale_rows);
        return;
    }
    const uint64_t stream = stream_of(seed, name);
    const uint64_t n = (uint64_t)rows * (uint64_t)cols;
    size_t esize = f == MIMO_WFMT_F32 ? 4 : f == MIMO_WFMT_BF16 ? 2 : 1;
    uint8_t *d = mimo_xmalloc((size_t)n * esize);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            float u = mimo_bits_to_unit_symmetric(mimo_hash2(stream, (uint64_t)r * (uint64_t)cols + (uint64_t)c));
            uint64_t o = storage_index(row_map, r, c, cols);
            if (f == MIMO_WFMT_F32)
                ((float *)d)[o] = amp * u;
            else if (f == MIMO_WFMT_BF16)
                ((uint16_t *)d)[o] = mimo_f32_to_bf16(amp * u);
            else
                d[o] = mimo_f32_to_fp8_e4m3(u * 256.0f);
        }
    mimo_dtype dt = f == MIMO_WFMT_F32 ? MIMO_DTYPE_F32 : f == MIMO_WFMT_BF16 ? MIMO_DTYPE_BF16 : MIMO_DTYPE_F8_E4M3;
    add(src, name, dt, 2, rows, cols, d, (size_t)n * esize);
    if (f == MIMO_WFMT_FP8)
        add_fp8_scales(src, name, rows, cols, scale_rows, amp / 256.0f);
}

static void add_matrix(mimo_tensor_source *src, const mimo_config *cfg, const char *name, int layer,
                       mimo_weight_format f, int64_t rows, int64_t cols, uint64_t seed, bool expert)
{
    float amp = mimo_synth_amplitude(cfg, name, layer);
    if (expert)
        add_code_matrix(src, name, f, rows, cols, seed, amp, NULL, 0);
    else
        add_uniform_matrix(src, name, f, rows, cols, seed, amp, NULL, 0);
}

static void synth_globals(const mimo_config *cfg, uint64_t seed, mimo_tensor_source *src)
{
    const mimo_storage *s = &cfg->storage;
    add_matrix(src, cfg, "model.embed_tokens.weight", -1, s->embed, cfg->vocab_size, cfg->hidden_size, seed, false);
    if (!cfg->tie_word_embeddings)
        add_matrix(src, cfg, "lm_head.weight", -1, s->lm_head, cfg->vocab_size, cfg->hidden_size, seed, false);
    add_vector(src, "model.norm.weight", s->norms, cfg->hidden_size, seed, 1.0f, 1.0f / 16.0f);
}

static void synth_layer(const mimo_config *cfg, uint64_t seed, int l, mimo_tensor_source *src)
{
    const mimo_storage *s = &cfg->storage;
    const mimo_attn_shape *a = mimo_layer_attn(cfg, l);
    const int H = cfg->hidden_size;
    char name[256];

    mimo_tensor_name_layer(name, sizeof name, l, "input_layernorm.weight");
    add_vector(src, name, s->norms, H, seed, 1.0f, 1.0f / 16.0f);
    mimo_tensor_name_layer(name, sizeof name, l, "post_attention_layernorm.weight");
    add_vector(src, name, s->norms, H, seed, 1.0f, 1.0f / 16.0f);

    /* fused qkv in storage order, values by plain row */
    int rows = mimo_qkv_rows(cfg, l);
    int32_t *map = NULL;
    if (cfg->qkv_interleaved && cfg->qkv_groups > 1) {
        map = mimo_xmalloc((size_t)rows * sizeof *map);
        mimo_qkv_interleave_map(cfg, l, map);
    }
    mimo_tensor_name_layer(name, sizeof name, l, "self_attn.qkv_proj.weight");
    add_uniform_matrix(src, name, s->qkv, rows, H, seed, mimo_synth_amplitude(cfg, name, l), map,
                       mimo_qkv_scale_rows(cfg, l));
    free(map);
    mimo_tensor_name_layer(name, sizeof name, l, "self_attn.o_proj.weight");
    add_matrix(src, cfg, name, l, s->o_proj, H, (int64_t)a->n_heads * a->v_head_dim, seed, false);
    if (a->has_sink) {
        mimo_tensor_name_layer(name, sizeof name, l, "self_attn.attention_sink_bias");
        add_vector(src, name, s->norms, a->n_heads, seed, 0.0f, 1.0f);
    }

    if (!cfg->layer_is_moe[l]) {
        const int I = cfg->intermediate_size;
        mimo_tensor_name_layer(name, sizeof name, l, "mlp.gate_proj.weight");
        add_matrix(src, cfg, name, l, s->dense_mlp, I, H, seed, false);
        mimo_tensor_name_layer(name, sizeof name, l, "mlp.up_proj.weight");
        add_matrix(src, cfg, name, l, s->dense_mlp, I, H, seed, false);
        mimo_tensor_name_layer(name, sizeof name, l, "mlp.down_proj.weight");
        add_matrix(src, cfg, name, l, s->dense_mlp, H, I, seed, false);
        return;
    }
    const int E = cfg->n_routed_experts, I = cfg->moe_intermediate_size;
    mimo_tensor_name_layer(name, sizeof name, l, "mlp.gate.weight");
    add_matrix(src, cfg, name, l, s->router, E, H, seed, false);
    mimo_tensor_name_layer(name, sizeof name, l, "mlp.gate.e_score_correction_bias");
    add_vector(src, name, s->norms, E, seed, 0.0f, 0.0f);
    for (int e = 0; e < E; e++) {
        mimo_tensor_name_expert(name, sizeof name, l, e, "gate");
        add_matrix(src, cfg, name, l, s->experts, I, H, seed, true);
        mimo_tensor_name_expert(name, sizeof name, l, e, "up");
        add_matrix(src, cfg, name, l, s->experts, I, H, seed, true);
        mimo_tensor_name_expert(name, sizeof name, l, e, "down");
        add_matrix(src, cfg, name, l, s->experts, H, I, seed, true);
    }
    for (int e = 0; e < cfg->n_shared_experts; e++) {
        static const char *const projs[3] = {"gate", "up", "down"};
        for (int p = 0; p < 3; p++) {
            char suffix[96];
            snprintf(suffix, sizeof suffix, "mlp.shared_experts.%d.%s_proj.weight", e, projs[p]);
            mimo_tensor_name_layer(name, sizeof name, l, suffix);
            add_matrix(src, cfg, name, l, s->experts, p == 2 ? H : I, p == 2 ? I : H, seed, true);
        }
    }
}

int mimo_synth_target(const mimo_config *cfg, uint64_t seed, mimo_tensor_source **out, mimo_error *err)
{
    *out = NULL;
    if (mimo_config_validate(cfg, err))
        return mimo_fail_prefix(err, "synth");
    mimo_tensor_source *src = mimo_source_new_memory();
    synth_globals(cfg, seed, src);
    for (int l = 0; l < cfg->num_layers; l++)
        synth_layer(cfg, seed, l, src);
    *out = src;
    return 0;
}

int mimo_synth_write_dir(const mimo_config *cfg, uint64_t seed, const char *dir, mimo_error *err)
{
    if (mimo_config_validate(cfg, err))
        return mimo_fail_prefix(err, "synth");
    if (mimo_make_dirs(dir, err))
        return -1;
    /* One shard per layer (plus one for embed/head/norm), generated and written one at a time so
     * that memory stays at one layer's worth. */
    const int n_shards = cfg->num_layers + 1;
    mimo_shard_writer *sw = mimo_shard_writer_new(dir, n_shards);
    int rc = 0;
    for (int sh = 0; sh < n_shards && rc == 0; sh++) {
        mimo_tensor_source *src = mimo_source_new_memory();
        if (sh == 0)
            synth_globals(cfg, seed, src);
        else
            synth_layer(cfg, seed, sh - 1, src);
        rc = mimo_shard_writer_add(sw, src, err);
        mimo_source_free(src);
    }
    if (rc == 0)
        rc = mimo_shard_writer_finish(sw, err);
    mimo_shard_writer_free(sw);
    if (rc == 0) {
        char *js = mimo_config_to_json(cfg);
        char path[4096];
        snprintf(path, sizeof path, "%s/config.json", dir);
        rc = js ? mimo_write_text_file_atomic(path, js, err) : mimo_fail(err, "%s: cannot encode config", path);
        free(js);
    }
    return rc;
}
