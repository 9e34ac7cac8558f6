#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/formats.h"
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

static mimo_tensor_source *synth(const mimo_config *c)
{
    mimo_tensor_source *s;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_synth_target(c, 123, &s, &err), 0, "%s", err.msg);
    return s;
}

static void copy_tensor(mimo_tensor_source *dst, const char *new_name, const mimo_tensor_view *v)
{
    void *d = malloc(v->nbytes ? v->nbytes : 1);
    memcpy(d, v->data, v->nbytes);
    mimo_source_add(dst, new_name, v->dtype, v->ndim, v->shape, d, v->nbytes);
}

/* A copy of src without `skip` (NULL = keep all); strip_prefix drops a leading "model.". */
static mimo_tensor_source *clone(mimo_tensor_source *src, const char *skip, bool strip_prefix)
{
    mimo_tensor_source *out = mimo_source_new_memory();
    for (int i = 0; i < mimo_source_count(src); i++) {
        const char *name = mimo_source_name_at(src, i);
        if (skip && !strcmp(name, skip))
            continue;
        mimo_tensor_view v;
        cr_assert_eq(mimo_source_get(src, name, &v, NULL), 0);
        copy_tensor(out, strip_prefix && !strncmp(name, "model.", 6) ? name + 6 : name, &v);
    }
    return out;
}

typedef struct {
    int  count;
    char last[512];
} warnings;

static void collect(void *ctx, const char *msg)
{
    warnings *w = ctx;
    w->count++;
    snprintf(w->last, sizeof w->last, "%s", msg);
}

Test(weights_bind, binds_every_tensor_with_its_format)
{
    mimo_config c = tiny();
    mimo_tensor_source *s = synth(&c);
    mimo_weights w;
    mimo_error err = {{0}};
    warnings wn = {0};
    cr_assert_eq(mimo_weights_bind(&c, s, &w, collect, &wn, &err), 0, "%s", err.msg);
    cr_assert_eq(wn.count, 0, "%s", wn.last);
    cr_assert_eq(memcmp(&w.storage, &c.storage, sizeof c.storage), 0, "found storage equals the config's");
    cr_assert_eq(w.embed.rows, 512);
    cr_assert_eq(w.layers[0].qkv.format, MIMO_WFMT_FP8);
    cr_assert_null(w.layers[0].qkv_row_of_plain);
    cr_assert_not_null(w.layers[0].gate.data);
    cr_assert_null(w.layers[0].expert_gate);
    cr_assert_not_null(w.layers[1].expert_gate);
    cr_assert_eq(w.layers[1].expert_down[7].format, MIMO_WFMT_MXFP4);
    cr_assert_eq(w.layers[1].expert_down[7].rows, 64);
    cr_assert_not_null(w.layers[0].sink);
    cr_assert_null(w.layers[1].shared_gate);
    cr_assert(fabsf(w.final_norm[0] - 1.0f) <= 1.0f / 16.0f);
    mimo_weights_free(&w);
    mimo_source_free(s);
}

Test(weights_bind, missing_tensor_is_named)
{
    mimo_config c = tiny();
    mimo_tensor_source *s = synth(&c);
    const char *victims[] = {"model.layers.2.mlp.experts.5.down_proj.weight",
                             "model.layers.2.mlp.experts.5.down_proj.weight_scale",
                             "model.layers.0.self_attn.qkv_proj.weight_scale_inv",
                             "model.layers.3.self_attn.attention_sink_bias",
                             "model.layers.1.mlp.gate.weight",
                             "model.norm.weight", "lm_head.weight"};
    for (size_t i = 0; i < sizeof victims / sizeof victims[0]; i++) {
        mimo_tensor_source *t = clone(s, victims[i], false);
        mimo_weights w;
        mimo_error err = {{0}};
        cr_assert_eq(mimo_weights_bind(&c, t, &w, NULL, NULL, &err), -1, "without %s", victims[i]);
        cr_assert(strstr(err.msg, victims[i]) && strstr(err.msg, "missing"), "error should name %s: %s", victims[i],
                  err.msg);
        mimo_source_free(t);
    }
    mimo_source_free(s);
}

Test(weights_bind, misshaped_tensor_is_named_with_its_file)
{
    mimo_config c = tiny();
    mimo_tensor_source *s = synth(&c);
    const char *name = "model.layers.1.self_attn.o_proj.weight";
    int64_t shape[2] = {64, 64};
    mimo_source_add(s, name, MIMO_DTYPE_BF16, 2, shape, calloc(64 * 64, 2), 64 * 64 * 2);
    char *dir = mimo_test_tmpdir();
    mimo_error err = {{0}};
    cr_assert_eq(mimo_source_write_dir(s, dir, 1 << 20, &err), 0, "%s", err.msg);
    mimo_tensor_source *disk;
    cr_assert_eq(mimo_source_open_dir(dir, &disk, &err), 0, "%s", err.msg);
    mimo_weights w;
    cr_assert_eq(mimo_weights_bind(&c, disk, &w, NULL, NULL, &err), -1);
    cr_assert(strstr(err.msg, name), "%s", err.msg);
    cr_assert(strstr(err.msg, ".safetensors"), "names the shard file: %s", err.msg);
    cr_assert(strstr(err.msg, "[64, 64]") && strstr(err.msg, "[64, 128]"), "%s", err.msg);
    mimo_source_free(disk);

    /* wrong dtype for a norm */
    const char *norm = "model.layers.0.input_layernorm.weight";
    int64_t n64[1] = {64};
    mimo_source_add(s, name, MIMO_DTYPE_BF16, 2, (int64_t[2]){64, 128}, calloc(64 * 128, 2), 64 * 128 * 2);
    mimo_source_add(s, norm, MIMO_DTYPE_I32, 1, n64, calloc(64, 4), 64 * 4);
    cr_assert_eq(mimo_weights_bind(&c, s, &w, NULL, NULL, &err), -1);
    cr_assert(strstr(err.msg, norm) && strstr(err.msg, "I32"), "%s", err.msg);
    /* an MXFP4 scale of the wrong shape */
    const char *sc = "model.layers.3.mlp.experts.0.up_proj.weight_scale";
    mimo_source_add(s, norm, MIMO_DTYPE_F32, 1, n64, calloc(64, 4), 64 * 4);
    mimo_source_add(s, sc, MIMO_DTYPE_U8, 2, (int64_t[2]){32, 1}, calloc(32, 1), 32);
    cr_assert_eq(mimo_weights_bind(&c, s, &w, NULL, NULL, &err), -1);
    cr_assert(strstr(err.msg, sc), "%s", err.msg);
    mimo_source_free(s);
    mimo_test_rmtree(dir);
    free(dir);
}

Test(weights_bind, unknown_tensor_is_a_warning)
{
    mimo_config c = tiny();
    mimo_tensor_source *s = synth(&c);
    int64_t shape[1] = {12};
    mimo_source_add(s, "model.layers.0.self_attn.rotary_emb.inv_freq", MIMO_DTYPE_F32, 1, shape, calloc(12, 4), 48);
    mimo_weights w;
    mimo_error err = {{0}};
    warnings wn = {0};
    cr_assert_eq(mimo_weights_bind(&c, s, &w, collect, &wn, &err), 0, "%s", err.msg);
    cr_assert_eq(wn.count, 1);
    cr_assert(strstr(wn.last, "unknown tensor") && strstr(wn.last, "rotary_emb.inv_freq"), "%s", wn.last);
    mimo_weights_free(&w);
    /* NULL warn callback: still fine */
    cr_assert_eq(mimo_weights_bind(&c, s, &w, NULL, NULL, &err), 0, "%s", err.msg);
    mimo_weights_free(&w);
    mimo_source_free(s);
}

Test(weights_bind, names_without_model_prefix)
{
    mimo_config c = tiny();
    mimo_tensor_source *s = synth(&c);
    mimo_tensor_source *t = clone(s, NULL, true);
    cr_assert(mimo_source_has(t, "layers.0.input_layernorm.weight"));
    mimo_weights a, b;
    mimo_error err = {{0}};
    warnings wn = {0};
    cr_assert_eq(mimo_weights_bind(&c, s, &a, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_weights_bind(&c, t, &b, collect, &wn, &err), 0, "%s", err.msg);
    cr_assert_eq(wn.count, 0, "%s", wn.last);
    cr_assert_eq(mimo_matrix_get(&a.layers[2].expert_up[3], 5, 7), mimo_matrix_get(&b.layers[2].expert_up[3], 5, 7));
    cr_assert_eq(a.layers[3].sink[2], b.layers[3].sink[2]);
    mimo_weights_free(&a);
    mimo_weights_free(&b);
    mimo_source_free(s);
    mimo_source_free(t);
}

/* Splits every fused qkv into q/k/v_proj (the transformers spelling), keeping exact values: FP8
 * parts get their own scale blocks (synth's scales are uniform per tensor, so any block's will do). */
static mimo_tensor_source *split_qkv(const mimo_config *c, mimo_tensor_source *src)
{
    mimo_tensor_source *out = mimo_source_new_memory();
    for (int i = 0; i < mimo_source_count(src); i++) {
        const char *name = mimo_source_name_at(src, i);
        mimo_tensor_view v;
        cr_assert_eq(mimo_source_get(src, name, &v, NULL), 0);
        if (!strstr(name, "qkv_proj")) {
            copy_tensor(out, name, &v);
            continue;
        }
        if (strstr(name, "scale"))
            continue;
        int l = atoi(name + strlen("model.layers."));
        const mimo_attn_shape *a = mimo_layer_attn(c, l);
        int64_t rows[3] = {(int64_t)a->n_heads * a->head_dim, (int64_t)a->n_kv_heads * a->head_dim,
                           (int64_t)a->n_kv_heads * a->v_head_dim};
        const char *parts[3] = {"q_proj", "k_proj", "v_proj"};
        size_t esize = mimo_dtype_size(v.dtype);
        int64_t cols = v.shape[1], r0 = 0;
        const float *scale = NULL;
        const uint8_t *mx_scale = NULL;
        if (v.dtype == MIMO_DTYPE_U8) {
            char sname[256];
            snprintf(sname, sizeof sname, "%s_scale", name);
            mimo_tensor_view sv;
            cr_assert_eq(mimo_source_get(src, sname, &sv, NULL), 0);
            mx_scale = sv.data;
        }
        if (v.dtype == MIMO_DTYPE_F8_E4M3) {
            char sname[256];
            snprintf(sname, sizeof sname, "%s_scale_inv", name);
            mimo_tensor_view sv;
            cr_assert_eq(mimo_source_get(src, sname, &sv, NULL), 0);
            scale = sv.data;
        }
        for (int p = 0; p < 3; p++) {
            char pname[256];
            snprintf(pname, sizeof pname, "model.layers.%d.self_attn.%s.weight", l, parts[p]);
            size_t nb = (size_t)(rows[p] * cols) * esize;
            void *d = malloc(nb);
            memcpy(d, (const uint8_t *)v.data + (size_t)(r0 * cols) * esize, nb);
            mimo_source_add(out, pname, v.dtype, 2, (int64_t[2]){rows[p], cols}, d, nb);
            if (mx_scale) {
                int64_t sc = cols * 2 / 32;
                uint8_t *ms = malloc((size_t)(rows[p] * sc));
                memcpy(ms, mx_scale + r0 * sc, (size_t)(rows[p] * sc));
                strcat(pname, "_scale");
                mimo_source_add(out, pname, MIMO_DTYPE_U8, 2, (int64_t[2]){rows[p], sc}, ms, (size_t)(rows[p] * sc));
            }
            if (scale) {
                int64_t sr = (rows[p] + 127) / 128, sc = (cols + 127) / 128;
                float *s = malloc((size_t)(sr * sc) * 4);
                for (int64_t k = 0; k < sr * sc; k++)
                    s[k] = scale[0];
                strcat(pname, "_scale_inv");
                mimo_source_add(out, pname, MIMO_DTYPE_F32, 2, (int64_t[2]){sr, sc}, s, (size_t)(sr * sc) * 4);
            }
            r0 += rows[p];
        }
    }
    return out;
}

static void check_split_equals_fused(mimo_config *c, mimo_weight_format expect_fused_format)
{
    mimo_tensor_source *s = synth(c), *t = split_qkv(c, s);
    cr_assert(!mimo_source_has(t, "model.layers.0.self_attn.qkv_proj.weight"));
    mimo_weights a, b;
    mimo_error err = {{0}};
    warnings wn = {0};
    cr_assert_eq(mimo_weights_bind(c, s, &a, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_weights_bind(c, t, &b, collect, &wn, &err), 0, "%s", err.msg);
    cr_assert_eq(wn.count, 0, "%s", wn.last);
    int64_t H = c->hidden_size;
    float *x = malloc((size_t)H * 4), *y = malloc((size_t)H * 4);
    for (int l = 0; l < c->num_layers; l++) {
        cr_assert_eq(b.layers[l].qkv.format, expect_fused_format, "layer %d", l);
        cr_assert_eq(b.layers[l].qkv.rows, mimo_qkv_rows(c, l));
        for (int64_t r = 0; r < b.layers[l].qkv.rows; r++) {
            mimo_matrix_row_f32(&a.layers[l].qkv, r, x);
            mimo_matrix_row_f32(&b.layers[l].qkv, r, y);
            cr_assert_eq(memcmp(x, y, (size_t)H * 4), 0, "layer %d row %lld", l, (long long)r);
        }
    }
    free(x);
    free(y);
    mimo_weights_free(&a);
    mimo_weights_free(&b);
    mimo_source_free(s);
    mimo_source_free(t);
}

Test(weights_bind, separate_qkv_spelling)
{
    mimo_config c = tiny();
    /* tiny: q rows 192 is not a multiple of 128, so FP8 parts are dequantized to f32 */
    check_split_equals_fused(&c, MIMO_WFMT_F32);
    c.storage.qkv = MIMO_WFMT_BF16;
    check_split_equals_fused(&c, MIMO_WFMT_BF16);
    c.storage.qkv = MIMO_WFMT_MXFP4;
    check_split_equals_fused(&c, MIMO_WFMT_MXFP4);
    /* head_dim 32: q rows 256 and k rows 64/128 ... make both multiples of 128 -> FP8 kept with scale rows */
    c = tiny();
    c.full.head_dim = c.swa.head_dim = 32;
    c.full.rope_dim = c.swa.rope_dim = 8;
    c.full.n_kv_heads = c.swa.n_kv_heads = 4;
    check_split_equals_fused(&c, MIMO_WFMT_FP8);
}

Test(weights_bind, interleaved_qkv_equals_plain_after_mapping)
{
    mimo_config plain = tiny(), il = tiny();
    il.qkv_interleaved = true;
    il.qkv_groups = 2;
    /* the plain checkpoint, re-laid by hand into the interleaved order */
    mimo_tensor_source *s = synth(&plain);
    mimo_tensor_source *t = clone(s, NULL, false);
    for (int l = 0; l < plain.num_layers; l++) {
        char name[256];
        mimo_tensor_name_layer(name, sizeof name, l, "self_attn.qkv_proj.weight");
        mimo_tensor_view v;
        cr_assert_eq(mimo_source_get(s, name, &v, NULL), 0);
        int rows = mimo_qkv_rows(&plain, l), cols = plain.hidden_size;
        int32_t *map = malloc((size_t)rows * 4);
        mimo_qkv_interleave_map(&il, l, map);
        /* a permutation */
        bool *hit = calloc((size_t)rows, 1);
        for (int r = 0; r < rows; r++) {
            cr_assert(map[r] >= 0 && map[r] < rows && !hit[map[r]]);
            hit[map[r]] = true;
        }
        free(hit);
        uint8_t *d = malloc(v.nbytes);
        for (int r = 0; r < rows; r++)
            memcpy(d + (size_t)map[r] * (size_t)cols, (const uint8_t *)v.data + (size_t)r * (size_t)cols, (size_t)cols);
        mimo_source_add(t, name, v.dtype, 2, v.shape, d, v.nbytes);
        /* padded scale rows, all equal to the plain tensor's (uniform per tensor) */
        char sname[300];
        snprintf(sname, sizeof sname, "%s_scale_inv", name);
        mimo_tensor_view sv;
        cr_assert_eq(mimo_source_get(s, sname, &sv, NULL), 0);
        int64_t sr = mimo_qkv_scale_rows(&il, l);
        float *sc = malloc((size_t)sr * 4);
        for (int64_t k = 0; k < sr; k++)
            sc[k] = ((const float *)sv.data)[0];
        mimo_source_add(t, sname, MIMO_DTYPE_F32, 2, (int64_t[2]){sr, 1}, sc, (size_t)sr * 4);
        free(map);
    }
    mimo_weights a, b;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_weights_bind(&plain, s, &a, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_weights_bind(&il, t, &b, NULL, NULL, &err), 0, "%s", err.msg);
    float x[64], y[64];
    for (int l = 0; l < plain.num_layers; l++) {
        cr_assert_eq(b.layers[l].qkv.scale_group_rows, mimo_qkv_rows(&il, l) / 2);
        for (int r = 0; r < mimo_qkv_rows(&plain, l); r++) {
            mimo_matrix_row_f32(&a.layers[l].qkv, r, x);
            mimo_matrix_row_f32(&b.layers[l].qkv, b.layers[l].qkv_row_of_plain[r], y);
            cr_assert_eq(memcmp(x, y, sizeof x), 0, "layer %d row %d", l, r);
        }
    }
    /* the layout may come from the index metadata instead of config.json */
    {
        char *dir = mimo_test_tmpdir();
        cr_assert_eq(mimo_source_write_dir(t, dir, 1 << 20, &err), 0, "%s", err.msg);
        char path[4200];
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        char *idx = mimo_test_read_file(path, NULL);
        cr_assert_not_null(idx);
        char *at = strstr(idx, "\"metadata\": {");
        cr_assert_not_null(at);
        size_t pre = (size_t)(at - idx) + strlen("\"metadata\": {");
        char *patched = malloc(strlen(idx) + 128);
        memcpy(patched, idx, pre);
        strcpy(patched + pre, "\"qkv_layout\": \"tp_interleaved\", \"qkv_groups\": \"2\", ");
        strcat(patched, idx + pre);
        cr_assert_eq(mimo_write_text_file_atomic(path, patched, &err), 0);
        free(idx);
        free(patched);
        mimo_tensor_source *disk;
        cr_assert_eq(mimo_source_open_dir(dir, &disk, &err), 0, "%s", err.msg);
        cr_assert_str_eq(mimo_source_metadata(disk, "qkv_layout"), "tp_interleaved");
        mimo_weights m;
        cr_assert_eq(mimo_weights_bind(&plain, disk, &m, NULL, NULL, &err), 0, "%s", err.msg);
        cr_assert(m.cfg.qkv_interleaved);
        for (int l = 0; l < plain.num_layers; l++) {
            cr_assert_not_null(m.layers[l].qkv_row_of_plain);
            for (int r = 0; r < mimo_qkv_rows(&plain, l); r += 7) {
                mimo_matrix_row_f32(&a.layers[l].qkv, r, x);
                mimo_matrix_row_f32(&m.layers[l].qkv, m.layers[l].qkv_row_of_plain[r], y);
                cr_assert_eq(memcmp(x, y, sizeof x), 0, "metadata layout: layer %d row %d", l, r);
            }
        }
        mimo_weights_free(&m);
        mimo_source_free(disk);
        mimo_test_rmtree(dir);
        free(dir);
    }
    /* the interleaved config with the wrong number of scale rows is refused */
    char sname[256];
    mimo_tensor_name_layer(sname, sizeof sname, 0, "self_attn.qkv_proj.weight_scale_inv");
    mimo_source_add(t, sname, MIMO_DTYPE_F32, 2, (int64_t[2]){3, 1}, calloc(3, 4), 12);
    mimo_weights bad;
    cr_assert_eq(mimo_weights_bind(&il, t, &bad, NULL, NULL, &err), -1);
    cr_assert(strstr(err.msg, sname), "%s", err.msg);
    mimo_weights_free(&a);
    mimo_weights_free(&b);
    mimo_source_free(s);
    mimo_source_free(t);
}

Test(weights_bind, interleave_map_groups_heads)
{
    mimo_config c = tiny();   /* full layer: 8 q heads, 2 kv, dqk 24, dv 16 -> 2 groups of 136 rows */
    c.qkv_interleaved = true;
    c.qkv_groups = 2;
    int32_t map[272];
    mimo_qkv_interleave_map(&c, 0, map);
    cr_assert_eq(map[0], 0);                       /* q head 0 starts group 0 */
    cr_assert_eq(map[4 * 24], 136);                /* q head 4 starts group 1 */
    cr_assert_eq(map[8 * 24], 4 * 24);             /* k head 0 follows group 0's q heads */
    cr_assert_eq(map[8 * 24 + 24], 136 + 4 * 24);  /* k head 1 in group 1 */
    cr_assert_eq(map[10 * 24], 5 * 24);            /* v head 0 after k head 0 */
    cr_assert_eq(map[10 * 24 + 16], 136 + 5 * 24); /* v head 1 in group 1 */
    cr_assert_eq(mimo_qkv_scale_rows(&c, 0), 4);
}

Test(weights_bind, shared_experts_both_spellings)
{
    mimo_config c = tiny();
    c.n_shared_experts = 1;
    mimo_tensor_source *s = synth(&c);
    cr_assert(mimo_source_has(s, "model.layers.1.mlp.shared_experts.0.up_proj.weight"));
    mimo_weights w;
    mimo_error err = {{0}};
    warnings wn = {0};
    cr_assert_eq(mimo_weights_bind(&c, s, &w, collect, &wn, &err), 0, "%s", err.msg);
    cr_assert_eq(wn.count, 0, "%s", wn.last);
    cr_assert_not_null(w.layers[1].shared_up);
    float v = mimo_matrix_get(&w.layers[1].shared_down[0], 3, 4);
    mimo_weights_free(&w);
    /* DeepSeek's unindexed spelling */
    mimo_tensor_source *t = mimo_source_new_memory();
    for (int i = 0; i < mimo_source_count(s); i++) {
        const char *name = mimo_source_name_at(s, i);
        mimo_tensor_view tv;
        cr_assert_eq(mimo_source_get(s, name, &tv, NULL), 0);
        char renamed[256];
        const char *at = strstr(name, "shared_experts.0.");
        if (at)
            snprintf(renamed, sizeof renamed, "%.*sshared_experts.%s", (int)(at - name), name, at + strlen("shared_experts.0."));
        copy_tensor(t, at ? renamed : name, &tv);
    }
    cr_assert(mimo_source_has(t, "model.layers.1.mlp.shared_experts.up_proj.weight"));
    cr_assert_eq(mimo_weights_bind(&c, t, &w, NULL, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_matrix_get(&w.layers[1].shared_down[0], 3, 4), v);
    mimo_weights_free(&w);
    mimo_source_free(s);
    mimo_source_free(t);
}
