/* Attention of one target layer for one position (MODEL.md step 2), plus the scratch buffers. */
#include "cpu_layers.h"
#include "cpu_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int max_int(int a, int b) { return a > b ? a : b; }

/* The widest feed-forward matrix of any layer (dense, routed or shared expert), read from the
 * weights themselves so that no config field can under-size the buffer. */
static int max_ffn_width(const mimo_weights *w, int n_layers)
{
    int width = 0;
    for (int l = 0; l < n_layers; l++) {
        const mimo_layer_weights *lw = &w->layers[l];
        if (!lw->is_moe) {
            width = max_int(width, (int)lw->gate.rows);
            continue;
        }
        for (int e = 0; e < w->cfg.n_routed_experts; e++)
            width = max_int(width, (int)lw->expert_gate[e].rows);
        for (int e = 0; lw->shared_gate && e < w->cfg.n_shared_experts; e++)
            width = max_int(width, (int)lw->shared_gate[e].rows);
    }
    return width;
}

void mimo_cpu_scratch_init(mimo_cpu_scratch *s, const mimo_weights *w, int n_layers, int max_ctx)
{
    const mimo_config *cfg = &w->cfg;
    int qkv_rows = 0, attn_width = 0;
    for (int l = 0; l < n_layers; l++) {
        const mimo_attn_shape *a = mimo_layer_attn(cfg, l);
        qkv_rows = max_int(qkv_rows, mimo_qkv_rows(cfg, l));
        attn_width = max_int(attn_width, a->n_heads * a->v_head_dim);
    }
    int ffn_width = max_ffn_width(w, n_layers);
    int experts = max_int(cfg->n_routed_experts, 1);
    int topk = max_int(cfg->experts_per_tok, 1);
    s->qkv_storage = mimo_xmalloc((size_t)qkv_rows * sizeof(float));
    s->qkv = mimo_xmalloc((size_t)qkv_rows * sizeof(float));
    s->attn = mimo_xmalloc((size_t)attn_width * sizeof(float));
    s->scores = mimo_xmalloc((size_t)max_ctx * sizeof(float));
    s->router = mimo_xmalloc((size_t)experts * sizeof(float));
    s->router_tmp = mimo_xmalloc((size_t)3 * experts * sizeof(float));
    s->chosen = mimo_xmalloc((size_t)topk * sizeof(int));
    s->chosen_w = mimo_xmalloc((size_t)topk * sizeof(float));
    s->mlp = mimo_xmalloc((size_t)2 * ffn_width * sizeof(float));
    s->ffn_out = mimo_xmalloc((size_t)cfg->hidden_size * sizeof(float));
    s->pool = NULL;   /* the backend lends its pool after init */
}

void mimo_cpu_scratch_free(mimo_cpu_scratch *s)
{
    free(s->qkv_storage);
    free(s->qkv);
    free(s->attn);
    free(s->scores);
    free(s->router);
    free(s->router_tmp);
    free(s->chosen);
    free(s->chosen_w);
    free(s->mlp);
    free(s->ffn_out);
    memset(s, 0, sizeof *s);
}

/* The fused projection in plain q|k|v row order, whatever the storage order. */
static void project_qkv(const mimo_layer_weights *lw, int rows, const float *h, mimo_cpu_scratch *s)
{
    if (!lw->qkv_row_of_plain) {
        mimo_cpu_pool_matvec(s->pool, &lw->qkv, h, s->qkv);
        return;
    }
    mimo_cpu_pool_matvec(s->pool, &lw->qkv, h, s->qkv_storage);
    for (int i = 0; i < rows; i++)
        s->qkv[i] = s->qkv_storage[lw->qkv_row_of_plain[i]];
}

void mimo_cpu_attention(const mimo_config *cfg, const mimo_layer_weights *lw, int layer,
                        mimo_cpu_kv_cache *kv, int pos, const float *h, float *out, mimo_cpu_scratch *s)
{
    const mimo_attn_shape *a = mimo_layer_attn(cfg, layer);
    const int heads = a->n_heads, kv_heads = a->n_kv_heads, dqk = a->head_dim, dv = a->v_head_dim;

    project_qkv(lw, mimo_qkv_rows(cfg, layer), h, s);
    float *q = s->qkv;
    float *k = q + (size_t)heads * dqk;
    float *v = k + (size_t)kv_heads * dqk;

    mimo_cpu_rope_neox(q, heads, dqk, a->rope_dim, pos, a->rope_theta);
    mimo_cpu_rope_neox(k, kv_heads, dqk, a->rope_dim, pos, a->rope_theta);
    for (int i = 0; i < kv_heads * dv; i++)
        v[i] *= cfg->attention_value_scale;

    /* this position's key and value become part of the history it attends to */
    for (int g = 0; g < kv_heads; g++) {
        memcpy(mimo_cpu_kv_key(kv, layer, pos, g), k + (size_t)g * dqk, (size_t)dqk * sizeof(float));
        memcpy(mimo_cpu_kv_value(kv, layer, pos, g), v + (size_t)g * dv, (size_t)dv * sizeof(float));
    }

    /* Keys 0..pos, causal; on SWA layers only the last `window` of them are visible, so the loop
     * starts there (the mask would hide the older ones anyway). */
    mimo_cpu_attn_mask mask = { .window = a->window, .causal = true };
    int first = (a->window > 0 && pos - a->window + 1 > 0) ? pos - a->window + 1 : 0;
    int n_keys = pos - first + 1;
    float scale = (float)(1.0 / sqrt((double)dqk));
    int group = heads / kv_heads;   /* q heads per kv head (GQA) */
    size_t k_stride = mimo_cpu_kv_key_stride(kv, layer), v_stride = mimo_cpu_kv_value_stride(kv, layer);
    for (int hq = 0; hq < heads; hq++) {
        int g = hq / group;
        float sink = (a->has_sink && lw->sink) ? lw->sink[hq] : -INFINITY;
        mimo_cpu_attention_one(q + (size_t)hq * dqk, dqk, dv, pos, &mask,
                               mimo_cpu_kv_key(kv, layer, first, g), k_stride,
                               mimo_cpu_kv_value(kv, layer, first, g), v_stride,
                               first, n_keys, scale, sink, s->scores, s->attn + (size_t)hq * dv);
    }
    mimo_cpu_pool_matvec(s->pool, &lw->o_proj, s->attn, out);
}
