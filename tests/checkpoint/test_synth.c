#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/formats.h"
#include "mimo/hash.h"
#include "mimo/synth.h"
#include "mimo/weights.h"
#include "support.h"

static mimo_config tiny(void)
{
    mimo_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_preset("tiny", &c, &err), 0, "%s", err.msg);
    return c;
}

static mimo_tensor_source *synth(const mimo_config *c, uint64_t seed)
{
    mimo_tensor_source *s;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_synth_target(c, seed, &s, &err), 0, "%s", err.msg);
    return s;
}

static void count_warning(void *ctx, const char *msg)
{
    (void)msg;
    (*(int *)ctx)++;
}

static void bind_ok(const mimo_config *c, mimo_tensor_source *s, mimo_weights *w)
{
    mimo_error err = {{0}};
    int warnings = 0;
    cr_assert_eq(mimo_weights_bind(c, s, w, count_warning, &warnings, &err), 0, "%s", err.msg);
    cr_assert_eq(warnings, 0, "synth wrote tensors that bind does not know");
}

Test(synth, deterministic_from_seed)
{
    mimo_config c = tiny();
    mimo_tensor_source *a = synth(&c, 7), *b = synth(&c, 7), *d = synth(&c, 8);
    cr_assert_eq(mimo_source_count(a), mimo_source_count(b));
    int differ = 0, weights = 0;
    for (int i = 0; i < mimo_source_count(a); i++) {
        const char *name = mimo_source_name_at(a, i);
        cr_assert_str_eq(name, mimo_source_name_at(b, i));
        mimo_tensor_view va, vb, vd;
        cr_assert_eq(mimo_source_get(a, name, &va, NULL), 0);
        cr_assert_eq(mimo_source_get(b, name, &vb, NULL), 0);
        cr_assert_eq(mimo_source_get(d, name, &vd, NULL), 0);
        cr_assert_eq(va.nbytes, vb.nbytes);
        cr_assert_eq(memcmp(va.data, vb.data, va.nbytes), 0, "%s differs between two runs with one seed", name);
        if (strstr(name, ".weight") && !strstr(name, "scale")) {
            weights++;
            differ += memcmp(va.data, vd.data, va.nbytes) != 0;
        }
    }
    cr_assert_eq(differ, weights, "another seed must change every weight tensor (%d of %d changed)", differ, weights);
    mimo_source_free(a);
    mimo_source_free(b);
    mimo_source_free(d);
}

static void expect_tensor(mimo_tensor_source *s, const char *name, mimo_dtype dt, int ndim, int64_t d0, int64_t d1)
{
    mimo_tensor_view v;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_source_get(s, name, &v, &err), 0, "%s", err.msg);
    cr_expect_eq(v.dtype, dt, "%s dtype %s", name, mimo_dtype_name(v.dtype));
    cr_expect_eq(v.ndim, ndim, "%s ndim", name);
    cr_expect_eq(v.shape[0], d0, "%s dim 0 = %lld", name, (long long)v.shape[0]);
    if (ndim > 1)
        cr_expect_eq(v.shape[1], d1, "%s dim 1 = %lld", name, (long long)v.shape[1]);
}

Test(synth, names_shapes_dtypes_follow_model_md)
{
    mimo_config c = tiny();   /* hidden 64, vocab 512, full 8q/2kv, swa 8q/4kv, dqk 24, dv 16 */
    mimo_tensor_source *s = synth(&c, 1);
    expect_tensor(s, "model.embed_tokens.weight", MIMO_DTYPE_BF16, 2, 512, 64);
    expect_tensor(s, "lm_head.weight", MIMO_DTYPE_BF16, 2, 512, 64);
    expect_tensor(s, "model.norm.weight", MIMO_DTYPE_F32, 1, 64, 0);
    expect_tensor(s, "model.layers.0.input_layernorm.weight", MIMO_DTYPE_F32, 1, 64, 0);
    expect_tensor(s, "model.layers.0.post_attention_layernorm.weight", MIMO_DTYPE_F32, 1, 64, 0);
    expect_tensor(s, "model.layers.0.self_attn.qkv_proj.weight", MIMO_DTYPE_F8_E4M3, 2, 8 * 24 + 2 * 24 + 2 * 16, 64);
    expect_tensor(s, "model.layers.0.self_attn.qkv_proj.weight_scale_inv", MIMO_DTYPE_F32, 2, 3, 1);
    expect_tensor(s, "model.layers.1.self_attn.qkv_proj.weight", MIMO_DTYPE_F8_E4M3, 2, 8 * 24 + 4 * 24 + 4 * 16, 64);
    expect_tensor(s, "model.layers.0.self_attn.o_proj.weight", MIMO_DTYPE_BF16, 2, 64, 8 * 16);
    expect_tensor(s, "model.layers.0.self_attn.attention_sink_bias", MIMO_DTYPE_F32, 1, 8, 0);
    expect_tensor(s, "model.layers.1.self_attn.attention_sink_bias", MIMO_DTYPE_F32, 1, 8, 0);
    expect_tensor(s, "model.layers.0.mlp.gate_proj.weight", MIMO_DTYPE_F8_E4M3, 2, 128, 64);
    expect_tensor(s, "model.layers.0.mlp.down_proj.weight", MIMO_DTYPE_F8_E4M3, 2, 64, 128);
    expect_tensor(s, "model.layers.0.mlp.down_proj.weight_scale_inv", MIMO_DTYPE_F32, 2, 1, 1);
    expect_tensor(s, "model.layers.1.mlp.gate.weight", MIMO_DTYPE_BF16, 2, 8, 64);
    expect_tensor(s, "model.layers.1.mlp.gate.e_score_correction_bias", MIMO_DTYPE_F32, 1, 8, 0);
    expect_tensor(s, "model.layers.3.mlp.experts.7.gate_proj.weight", MIMO_DTYPE_U8, 2, 32, 32);
    expect_tensor(s, "model.layers.3.mlp.experts.7.gate_proj.weight_scale", MIMO_DTYPE_U8, 2, 32, 2);
    expect_tensor(s, "model.layers.3.mlp.experts.7.down_proj.weight", MIMO_DTYPE_U8, 2, 64, 16);
    expect_tensor(s, "model.layers.3.mlp.experts.7.down_proj.weight_scale", MIMO_DTYPE_U8, 2, 64, 1);
    cr_assert(!mimo_source_has(s, "model.layers.0.mlp.gate.weight"), "a dense layer has no router");
    cr_assert(!mimo_source_has(s, "model.layers.1.mlp.gate_proj.weight"), "an MoE layer has no dense MLP");
    /* 4 globals-ish: embed, lm_head, norm; per layer 2 norms + qkv(2) + o + sink; dense 6; MoE 2 + 8*3*2 */
    int want = 3 + 4 * 6 + 6 + 3 * (2 + 8 * 3 * 2);
    cr_assert_eq(mimo_source_count(s), want);
    mimo_weights w;
    bind_ok(&c, s, &w);
    mimo_weights_free(&w);
    mimo_source_free(s);
}

/* Pins the documented element rule (the CUDA generator's contract). */
Test(synth, element_rule_matches_the_documentation)
{
    mimo_config c = tiny();
    const uint64_t seed = 42;
    mimo_tensor_source *s = synth(&c, seed);
    mimo_tensor_view v;

    /* bf16 uniform matrix: bf16(a * u) */
    const char *emb = "model.embed_tokens.weight";
    cr_assert_eq(mimo_source_get(s, emb, &v, NULL), 0);
    uint64_t stream = mimo_mix64(seed) ^ mimo_fnv1a64(emb);
    float a = mimo_synth_amplitude(&c, emb, -1);
    for (uint64_t i = 0; i < 1000; i += 37)
        cr_assert_eq(((const uint16_t *)v.data)[i],
                     mimo_f32_to_bf16(a * mimo_bits_to_unit_symmetric(mimo_hash2(stream, i))));

    /* fp8 uniform matrix: fp8(u * 256), scale a / 256 */
    const char *qkv = "model.layers.2.self_attn.qkv_proj.weight";
    cr_assert_eq(mimo_source_get(s, qkv, &v, NULL), 0);
    stream = mimo_mix64(seed) ^ mimo_fnv1a64(qkv);
    for (uint64_t i = 0; i < 1000; i += 13)
        cr_assert_eq(((const uint8_t *)v.data)[i],
                     mimo_f32_to_fp8_e4m3(mimo_bits_to_unit_symmetric(mimo_hash2(stream, i)) * 256.0f));
    cr_assert_eq(mimo_source_get(s, "model.layers.2.self_attn.qkv_proj.weight_scale_inv", &v, NULL), 0);
    cr_assert_eq(((const float *)v.data)[0], mimo_synth_amplitude(&c, qkv, 2) / 256.0f);

    /* expert: nibble = hash >> 60, scale byte 125 + log2(a) */
    const char *ex = "model.layers.1.mlp.experts.3.up_proj.weight";
    cr_assert_eq(mimo_source_get(s, ex, &v, NULL), 0);
    stream = mimo_mix64(seed) ^ mimo_fnv1a64(ex);
    const uint8_t *packed = v.data;
    for (uint64_t i = 0; i < 32 * 64; i++) {
        uint8_t code = (uint8_t)((i & 1) ? packed[i / 2] >> 4 : packed[i / 2] & 0xF);
        cr_assert_eq(code, (uint8_t)(mimo_hash2(stream, i) >> 60), "element %llu", (unsigned long long)i);
    }
    cr_assert_eq(mimo_source_get(s, "model.layers.1.mlp.experts.3.up_proj.weight_scale", &v, NULL), 0);
    float amp = mimo_synth_amplitude(&c, ex, 1);
    cr_assert_eq(((const uint8_t *)v.data)[5], (uint8_t)(125 + (int)lround(log2(amp))));
    cr_assert_eq(amp, exp2f(roundf(log2f(amp))), "amplitudes are powers of two");

    /* norms: 1 + u/16 */
    const char *nm = "model.layers.1.input_layernorm.weight";
    cr_assert_eq(mimo_source_get(s, nm, &v, NULL), 0);
    stream = mimo_mix64(seed) ^ mimo_fnv1a64(nm);
    cr_assert_eq(((const float *)v.data)[9], 1.0f + mimo_bits_to_unit_symmetric(mimo_hash2(stream, 9)) / 16.0f);
    mimo_source_free(s);
}

Test(synth, expert_values_identical_in_every_storage)
{
    mimo_config c = tiny();
    const mimo_weight_format fmts[4] = {MIMO_WFMT_MXFP4, MIMO_WFMT_FP8, MIMO_WFMT_BF16, MIMO_WFMT_F32};
    mimo_tensor_source *src[4];
    mimo_weights w[4];
    for (int f = 0; f < 4; f++) {
        mimo_config cf = c;
        cf.storage.experts = fmts[f];
        src[f] = synth(&cf, 3);
        bind_ok(&cf, src[f], &w[f]);
        cr_assert_eq(w[f].storage.experts, fmts[f]);
    }
    long checked = 0;
    for (int l = 0; l < c.num_layers; l++) {
        if (!c.layer_is_moe[l])
            continue;
        for (int e = 0; e < c.n_routed_experts; e++) {
            const mimo_matrix *m[4][3];
            for (int f = 0; f < 4; f++) {
                m[f][0] = &w[f].layers[l].expert_gate[e];
                m[f][1] = &w[f].layers[l].expert_up[e];
                m[f][2] = &w[f].layers[l].expert_down[e];
            }
            for (int p = 0; p < 3; p++)
                for (int64_t r = 0; r < m[0][p]->rows; r++)
                    for (int64_t col = 0; col < m[0][p]->cols; col++) {
                        float ref = mimo_matrix_get(m[0][p], r, col);
                        for (int f = 1; f < 4; f++)
                            cr_assert_eq(mimo_matrix_get(m[f][p], r, col), ref, "layer %d expert %d %s", l, e,
                                         mimo_weight_format_name(fmts[f]));
                        checked++;
                    }
        }
    }
    cr_assert_gt(checked, 10000);
    /* and the non-expert weights are untouched by the expert storage */
    cr_assert_eq(memcmp(w[0].layers[1].qkv.data, w[2].layers[1].qkv.data, (size_t)(w[0].layers[1].qkv.rows * 64)), 0);
    for (int f = 0; f < 4; f++) {
        mimo_weights_free(&w[f]);
        mimo_source_free(src[f]);
    }
}

/* ---- activations stay O(1): a one-position forward pass (RoPE is the identity at position 0, and
 * attention sees only the token itself, plus the sink) through every layer ---- */

static void rmsnorm(const float *x, const float *w, int n, float eps, float *out)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float r = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++)
        out[i] = x[i] * r * w[i];
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

static void swiglu(const mimo_matrix *g, const mimo_matrix *u, const mimo_matrix *d, const float *h, float scale,
                   float *acc)
{
    int64_t I = g->rows, H = d->rows;
    float *a = malloc((size_t)I * 4), *b = malloc((size_t)I * 4), *o = malloc((size_t)H * 4);
    mimo_matrix_gemv_f32(g, h, a);
    mimo_matrix_gemv_f32(u, h, b);
    for (int64_t i = 0; i < I; i++)
        a[i] = silu(a[i]) * b[i];
    mimo_matrix_gemv_f32(d, a, o);
    for (int64_t i = 0; i < H; i++)
        acc[i] += scale * o[i];
    free(a);
    free(b);
    free(o);
}

/* Returns the max residual RMS over layers; counts expert picks into load[l][e]. */
static double forward_one(const mimo_weights *w, int token, int *load, double *min_rms)
{
    const mimo_config *c = &w->cfg;
    const int H = c->hidden_size, E = c->n_routed_experts;
    float *x = malloc((size_t)H * 4), *h = malloc((size_t)H * 4), *tmp = malloc((size_t)H * 4);
    mimo_matrix_row_f32(&w->embed, token, x);
    double max_rms = 0;
    *min_rms = 1e30;
    for (int l = 0; l < c->num_layers; l++) {
        const mimo_layer_weights *lw = &w->layers[l];
        const mimo_attn_shape *a = mimo_layer_attn(c, l);
        int rows = mimo_qkv_rows(c, l);
        float *qkv = malloc((size_t)rows * 4), *attn = malloc((size_t)a->n_heads * a->v_head_dim * 4);
        rmsnorm(x, lw->input_norm, H, c->rms_eps, h);
        mimo_matrix_gemv_f32(&lw->qkv, h, qkv);
#define PLAIN(i) qkv[lw->qkv_row_of_plain ? lw->qkv_row_of_plain[i] : (i)]
        int group = a->n_heads / a->n_kv_heads;
        for (int hd = 0; hd < a->n_heads; hd++) {
            int kv = hd / group;
            double s = 0;
            for (int d = 0; d < a->head_dim; d++)
                s += PLAIN(hd * a->head_dim + d) * PLAIN(a->n_heads * a->head_dim + kv * a->head_dim + d);
            s /= sqrt((double)a->head_dim);
            double p = lw->sink ? 1.0 / (1.0 + exp(lw->sink[hd] - s)) : 1.0;
            for (int d = 0; d < a->v_head_dim; d++)
                attn[hd * a->v_head_dim + d] = (float)p * c->attention_value_scale *
                    PLAIN((a->n_heads + a->n_kv_heads) * a->head_dim + kv * a->v_head_dim + d);
        }
#undef PLAIN
        mimo_matrix_gemv_f32(&lw->o_proj, attn, tmp);
        for (int i = 0; i < H; i++)
            x[i] += tmp[i];
        free(qkv);
        free(attn);
        rmsnorm(x, lw->post_attn_norm, H, c->rms_eps, h);
        if (!lw->is_moe) {
            swiglu(&lw->gate, &lw->up, &lw->down, h, 1.0f, x);
        } else {
            float *s = malloc((size_t)E * 4);
            bool *chosen = calloc((size_t)E, 1);
            mimo_matrix_gemv_f32(&lw->router, h, s);
            for (int e = 0; e < E; e++)
                s[e] = 1.0f / (1.0f + expf(-s[e]));
            int pick[64];
            float wsum = 0;
            for (int k = 0; k < c->experts_per_tok; k++) {
                int best = -1;
                for (int e = 0; e < E; e++)
                    if (!chosen[e] && (best < 0 || s[e] + lw->router_bias[e] > s[best] + lw->router_bias[best]))
                        best = e;
                chosen[best] = true;
                pick[k] = best;
                wsum += s[best];
                load[l * E + best]++;
            }
            for (int k = 0; k < c->experts_per_tok; k++) {
                float wk = (c->norm_topk_prob ? s[pick[k]] / wsum : s[pick[k]]) * c->routed_scaling_factor;
                swiglu(&lw->expert_gate[pick[k]], &lw->expert_up[pick[k]], &lw->expert_down[pick[k]], h, wk, x);
            }
            free(s);
            free(chosen);
        }
        double ss = 0;
        for (int i = 0; i < H; i++) {
            cr_assert(isfinite(x[i]), "layer %d: non-finite residual", l);
            ss += (double)x[i] * x[i];
        }
        double rms = sqrt(ss / H);
        if (rms > max_rms)
            max_rms = rms;
        if (rms < *min_rms)
            *min_rms = rms;
    }
    free(x);
    free(h);
    free(tmp);
    return max_rms;
}

static void check_activations(const mimo_config *c, int n_tokens)
{
    mimo_tensor_source *s = synth(c, 11);
    mimo_weights w;
    bind_ok(c, s, &w);
    int *load = calloc((size_t)c->num_layers * (size_t)c->n_routed_experts, sizeof(int));
    double worst = 0, least = 1e30;
    for (int t = 0; t < n_tokens; t++) {
        double mn, mx = forward_one(&w, (t * 7919) % c->vocab_size, load, &mn);
        worst = fmax(worst, mx);
        least = fmin(least, mn);
    }
    cr_assert_lt(worst, 4.0, "residual RMS grew to %g", worst);
    cr_assert_gt(least, 0.1, "residual RMS collapsed to %g", least);
    /* routing: every expert used, none hogging (uniform expected load) */
    const int E = c->n_routed_experts;
    double mean = (double)n_tokens * c->experts_per_tok / E;
    for (int l = 0; l < c->num_layers; l++) {
        if (!c->layer_is_moe[l])
            continue;
        for (int e = 0; e < E; e++) {
            int n = load[l * E + e];
            cr_assert(n > 0.25 * mean && n < 2.5 * mean, "layer %d expert %d load %d (mean %.1f)", l, e, n, mean);
        }
    }
    free(load);
    mimo_weights_free(&w);
    mimo_source_free(s);
}

Test(synth, activations_bounded_and_routing_balanced_tiny)
{
    mimo_config c = tiny();
    check_activations(&c, 256);
}

Test(synth, activations_bounded_through_many_layers, .timeout = 60)
{
    mimo_config c = tiny();
    c.num_layers = 24;
    c.hidden_size = 128;
    c.n_routed_experts = 16;
    c.experts_per_tok = 4;
    for (int l = 0; l < c.num_layers; l++) {
        c.layer_is_swa[l] = l % 4 != 0;
        c.layer_is_moe[l] = l != 0;
    }
    c.storage.experts = MIMO_WFMT_MXFP4;
    check_activations(&c, 96);
}

Test(synth, interleaved_qkv_holds_the_plain_values)
{
    mimo_config plain = tiny(), il = tiny();
    il.qkv_interleaved = true;
    il.qkv_groups = 2;
    mimo_tensor_source *sp = synth(&plain, 5), *si = synth(&il, 5);
    mimo_weights wp, wi;
    bind_ok(&plain, sp, &wp);
    bind_ok(&il, si, &wi);
    float *a = malloc(64 * 4), *b = malloc(64 * 4);
    for (int l = 0; l < plain.num_layers; l++) {
        cr_assert_not_null(wi.layers[l].qkv_row_of_plain);
        cr_assert_gt(wi.layers[l].qkv.scale_group_rows, 0);
        for (int r = 0; r < mimo_qkv_rows(&plain, l); r++) {
            mimo_matrix_row_f32(&wp.layers[l].qkv, r, a);
            mimo_matrix_row_f32(&wi.layers[l].qkv, wi.layers[l].qkv_row_of_plain[r], b);
            cr_assert_eq(memcmp(a, b, 64 * 4), 0, "layer %d plain row %d", l, r);
        }
    }
    /* the scale rows are padded per group: full layer 272 rows = 2 groups of 136 -> 2 x 2 scale rows */
    mimo_tensor_view v;
    cr_assert_eq(mimo_source_get(si, "model.layers.0.self_attn.qkv_proj.weight_scale_inv", &v, NULL), 0);
    cr_assert_eq(v.shape[0], 4);
    free(a);
    free(b);
    mimo_weights_free(&wp);
    mimo_weights_free(&wi);
    mimo_source_free(sp);
    mimo_source_free(si);
}

Test(synth, write_dir_round_trips_through_open_dir)
{
    mimo_config c = tiny();
    char *dir = mimo_test_tmpdir();
    mimo_error err = {{0}};
    cr_assert_eq(mimo_synth_write_dir(&c, 9, dir, &err), 0, "%s", err.msg);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    mimo_config back;
    cr_assert_eq(mimo_config_load(path, &back, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(&back.storage, &c.storage, sizeof c.storage), 0);
    mimo_tensor_source *disk, *mem = synth(&c, 9);
    cr_assert_eq(mimo_source_open_dir(dir, &disk, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_source_count(disk), mimo_source_count(mem));
    for (int i = 0; i < mimo_source_count(mem); i++) {
        const char *name = mimo_source_name_at(mem, i);
        mimo_tensor_view a, b;
        cr_assert_eq(mimo_source_get(mem, name, &a, NULL), 0);
        cr_assert_eq(mimo_source_get(disk, name, &b, &err), 0, "%s", err.msg);
        cr_assert_eq(a.dtype, b.dtype);
        cr_assert_eq(a.nbytes, b.nbytes);
        cr_assert_eq(memcmp(a.data, b.data, a.nbytes), 0, "%s", name);
        cr_assert_not_null(mimo_source_file_of(disk, name));
    }
    mimo_weights w;
    bind_ok(&back, disk, &w);
    mimo_weights_free(&w);
    mimo_source_free(disk);
    mimo_source_free(mem);
    mimo_test_rmtree(dir);
    free(dir);
}

Test(synth, rejects_an_invalid_config)
{
    mimo_config c = tiny();
    c.experts_per_tok = 99;
    mimo_tensor_source *s = NULL;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_synth_target(&c, 1, &s, &err), -1);
    cr_assert(strstr(err.msg, "num_experts_per_tok"), "%s", err.msg);
    cr_assert_null(s);
}
