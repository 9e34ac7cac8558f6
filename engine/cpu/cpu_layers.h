/* The two halves of a target decoder layer on the CPU, for one position at a time:
 * attention (attention.c) and the feed-forward block, dense or MoE (moe.c). */
#ifndef MIMO_CPU_LAYERS_H
#define MIMO_CPU_LAYERS_H

#include "mimo/weights.h"
#include "cpu_threads.h"
#include "kv_cache.h"

/* Work buffers, sized once for the largest of the first n_layers layers (mimo_cpu_scratch_init). */
typedef struct {
    float *qkv_storage;  /* [max qkv rows]: the fused projection in storage row order */
    float *qkv;          /* [max qkv rows]: the same in plain q|k|v order */
    float *attn;         /* [max heads * dv]: concatenated head outputs, input of o_proj */
    float *scores;       /* [max_ctx] attention weights of one head */
    float *router;       /* [n_routed_experts] router scores */
    float *router_tmp;   /* [3 * n_routed_experts] selection scratch */
    int   *chosen;       /* [experts_per_tok] */
    float *chosen_w;     /* [experts_per_tok] */
    float *mlp;          /* [2 * max ffn width]: gate and up of one MLP */
    float *ffn_out;      /* [hidden] one expert's output */
    mimo_cpu_pool *pool; /* worker threads for the matrix-vector products, or NULL (not owned) */
} mimo_cpu_scratch;

void mimo_cpu_scratch_init(mimo_cpu_scratch *s, const mimo_weights *w, int n_layers, int max_ctx);
void mimo_cpu_scratch_free(mimo_cpu_scratch *s);

/* out[hidden] = attention of layer `layer` for the token at position pos, given its normed input h.
 * Stores this position's K and V into the cache at pos first; attends to cache positions <= pos
 * (minus what the SWA window hides). The cache's length is not changed. */
void mimo_cpu_attention(const mimo_config *cfg, const mimo_layer_weights *lw, int layer,
                        mimo_cpu_kv_cache *kv, int pos, const float *h, float *out, mimo_cpu_scratch *s);

/* The MoE router for one token: from router logits [n_routed_experts] (h @ Wrouter^T) and the
 * correction bias, picks experts_per_tok experts (chosen[k], ascending by rank) and their weights.
 * Selection uses sigmoid(logit) + bias; weights use sigmoid(logit) alone, normalised when
 * norm_topk_prob, times routed_scaling_factor. tmp holds 3 * n_routed_experts floats. Ties go to
 * the lower expert index. With n_group > 1 the DeepSeek-V3 group limit applies first (groups
 * ranked by the sum of their top-2 biased scores, only the best topk_group groups kept). */
void mimo_cpu_moe_route(const mimo_config *cfg, const float *logits, const float *bias,
                        int *chosen, float *weights, float *tmp);

/* out[hidden] = the feed-forward block of layer `layer` (dense SwiGLU or MoE) on normed input h. */
void mimo_cpu_ffn(const mimo_config *cfg, const mimo_layer_weights *lw, const float *h, float *out,
                  mimo_cpu_scratch *s);

#endif
