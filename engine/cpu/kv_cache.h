/* The CPU backend's KV cache.
 *
 * Layout: per layer, K [max_ctx, n_kv_heads, head_dim] and V [max_ctx, n_kv_heads, v_head_dim] in
 * float32, indexed by absolute position. Every position is stored for every layer, SWA layers
 * included: the sliding window is applied by the attention mask, not by evicting keys. That costs
 * memory on SWA layers (irrelevant at the sizes the CPU reference runs) and buys simplicity:
 * truncating to any earlier length is O(1) (only `length` changes) and can never lose a live key,
 * which a ring buffer would after a speculative rollback. */
#ifndef MIMO_CPU_KV_CACHE_H
#define MIMO_CPU_KV_CACHE_H

#include "mimo/config.h"

typedef struct {
    int    n_kv_heads, head_dim, v_head_dim;
    float *k;   /* [max_ctx, n_kv_heads, head_dim] */
    float *v;   /* [max_ctx, n_kv_heads, v_head_dim] */
} mimo_cpu_kv_layer;

typedef struct {
    int max_ctx;
    int length;            /* positions 0..length-1 are valid */
    int n_layers;
    mimo_cpu_kv_layer *layers;
} mimo_cpu_kv_cache;

void mimo_cpu_kv_init(mimo_cpu_kv_cache *c, const mimo_config *cfg, int n_layers, int max_ctx);
void mimo_cpu_kv_free(mimo_cpu_kv_cache *c);

/* Row of position pos, kv head g (writable: forward stores the new keys there). */
float *mimo_cpu_kv_key(const mimo_cpu_kv_cache *c, int layer, int pos, int g);
float *mimo_cpu_kv_value(const mimo_cpu_kv_cache *c, int layer, int pos, int g);
/* Stride in floats between consecutive positions of one kv head. */
size_t mimo_cpu_kv_key_stride(const mimo_cpu_kv_cache *c, int layer);
size_t mimo_cpu_kv_value_stride(const mimo_cpu_kv_cache *c, int layer);

/* Drops every position >= length (0 <= length <= c->length), O(1). */
void mimo_cpu_kv_truncate(mimo_cpu_kv_cache *c, int length);

#endif
