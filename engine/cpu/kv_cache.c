/* The CPU KV cache: full per-layer history in float32 (see kv_cache.h for why). */
#include "kv_cache.h"

#include <stdlib.h>

void mimo_cpu_kv_init(mimo_cpu_kv_cache *c, const mimo_config *cfg, int n_layers, int max_ctx)
{
    c->max_ctx = max_ctx;
    c->length = 0;
    c->n_layers = n_layers;
    c->layers = mimo_xcalloc((size_t)n_layers, sizeof *c->layers);
    for (int l = 0; l < n_layers; l++) {
        const mimo_attn_shape *a = mimo_layer_attn(cfg, l);
        mimo_cpu_kv_layer *kl = &c->layers[l];
        kl->n_kv_heads = a->n_kv_heads;
        kl->head_dim = a->head_dim;
        kl->v_head_dim = a->v_head_dim;
        kl->k = mimo_xcalloc((size_t)max_ctx * a->n_kv_heads * a->head_dim, sizeof(float));
        kl->v = mimo_xcalloc((size_t)max_ctx * a->n_kv_heads * a->v_head_dim, sizeof(float));
    }
}

void mimo_cpu_kv_free(mimo_cpu_kv_cache *c)
{
    if (!c->layers)
        return;
    for (int l = 0; l < c->n_layers; l++) {
        free(c->layers[l].k);
        free(c->layers[l].v);
    }
    free(c->layers);
    c->layers = NULL;
}

size_t mimo_cpu_kv_key_stride(const mimo_cpu_kv_cache *c, int layer)
{
    const mimo_cpu_kv_layer *kl = &c->layers[layer];
    return (size_t)kl->n_kv_heads * kl->head_dim;
}

size_t mimo_cpu_kv_value_stride(const mimo_cpu_kv_cache *c, int layer)
{
    const mimo_cpu_kv_layer *kl = &c->layers[layer];
    return (size_t)kl->n_kv_heads * kl->v_head_dim;
}

float *mimo_cpu_kv_key(const mimo_cpu_kv_cache *c, int layer, int pos, int g)
{
    const mimo_cpu_kv_layer *kl = &c->layers[layer];
    return kl->k + (size_t)pos * mimo_cpu_kv_key_stride(c, layer) + (size_t)g * kl->head_dim;
}

float *mimo_cpu_kv_value(const mimo_cpu_kv_cache *c, int layer, int pos, int g)
{
    const mimo_cpu_kv_layer *kl = &c->layers[layer];
    return kl->v + (size_t)pos * mimo_cpu_kv_value_stride(c, layer) + (size_t)g * kl->v_head_dim;
}

void mimo_cpu_kv_truncate(mimo_cpu_kv_cache *c, int length)
{
    c->length = length;
}
