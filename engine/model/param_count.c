/* Parameter and byte counts of a config (MODEL.md "Known sizes").
 * Conventions: "active" = everything one token touches with top-k routing: all non-expert weights
 * (the whole embedding table and lm_head included, the usual convention behind "42B active"),
 * the top-k routed experts and every shared expert of each MoE layer. Sinks count as attention;
 * norms, sinks and the router's correction bias are stored in storage.norms; bytes include FP8/MXFP4
 * scales (FP8 scale rows padded per group for the interleaved qkv layout). */
#include "mimo/config.h"

#include <string.h>

static uint64_t vector_bytes(mimo_weight_format f, uint64_t n)
{
    return n * (f == MIMO_WFMT_F32 ? 4u : 2u);
}

static uint64_t qkv_bytes(const mimo_config *c, int layer)
{
    int64_t rows = mimo_qkv_rows(c, layer);
    if (c->storage.qkv == MIMO_WFMT_FP8 && c->qkv_interleaved && c->qkv_groups > 0) {
        int64_t gr = rows / c->qkv_groups;
        uint64_t scale_rows = (uint64_t)c->qkv_groups * (uint64_t)((gr + 127) / 128);
        return (uint64_t)rows * (uint64_t)c->hidden_size + 4 * scale_rows * (uint64_t)((c->hidden_size + 127) / 128);
    }
    return mimo_weight_format_bytes(c->storage.qkv, rows, c->hidden_size);
}

void mimo_config_count(const mimo_config *c, mimo_param_counts *out)
{
    memset(out, 0, sizeof *out);
    const mimo_storage *s = &c->storage;
    const uint64_t H = (uint64_t)c->hidden_size, V = (uint64_t)c->vocab_size;
    uint64_t *fmt = out->bytes_by_format;
    uint64_t b;

    /* embeddings and head */
    out->embed = V * H;
    b = mimo_weight_format_bytes(s->embed, c->vocab_size, c->hidden_size);
    fmt[s->embed] += b;
    out->bytes_active += b;
    if (!c->tie_word_embeddings) {
        out->lm_head = V * H;
        b = mimo_weight_format_bytes(s->lm_head, c->vocab_size, c->hidden_size);
        fmt[s->lm_head] += b;
        out->bytes_active += b;
    }
    out->norms = H;   /* final norm */
    uint64_t norm_elems = H;

    const uint64_t expert_params = 3 * H * (uint64_t)c->moe_intermediate_size;
    out->expert_params_per_expert_layer = expert_params;
    uint64_t active_experts = 0;
    uint64_t expert_bytes_one = mimo_weight_format_bytes(s->experts, c->moe_intermediate_size, c->hidden_size) * 2 +
                                mimo_weight_format_bytes(s->experts, c->hidden_size, c->moe_intermediate_size);

    for (int l = 0; l < c->num_layers; l++) {
        const mimo_attn_shape *a = mimo_layer_attn(c, l);
        uint64_t qkv = (uint64_t)mimo_qkv_rows(c, l) * H;
        uint64_t o = H * (uint64_t)a->n_heads * (uint64_t)a->v_head_dim;
        uint64_t sink = a->has_sink ? (uint64_t)a->n_heads : 0;
        out->attention += qkv + o + sink;
        b = qkv_bytes(c, l);
        fmt[s->qkv] += b;
        out->bytes_active += b;
        b = mimo_weight_format_bytes(s->o_proj, c->hidden_size, (int64_t)a->n_heads * a->v_head_dim);
        fmt[s->o_proj] += b;
        out->bytes_active += b;
        norm_elems += sink;

        out->norms += 2 * H;
        norm_elems += 2 * H;

        if (!c->layer_is_moe[l]) {
            out->dense_mlp += 3 * H * (uint64_t)c->intermediate_size;
            b = 2 * mimo_weight_format_bytes(s->dense_mlp, c->intermediate_size, c->hidden_size) +
                mimo_weight_format_bytes(s->dense_mlp, c->hidden_size, c->intermediate_size);
            fmt[s->dense_mlp] += b;
            out->bytes_active += b;
        } else {
            uint64_t E = (uint64_t)c->n_routed_experts;
            out->router += E * H + E;   /* weight + e_score_correction_bias */
            b = mimo_weight_format_bytes(s->router, c->n_routed_experts, c->hidden_size);
            fmt[s->router] += b;
            out->bytes_active += b;
            norm_elems += E;

            uint64_t n_exp = E + (uint64_t)c->n_shared_experts;
            uint64_t n_act = (uint64_t)c->experts_per_tok + (uint64_t)c->n_shared_experts;
            out->experts += n_exp * expert_params;
            active_experts += n_act * expert_params;
            fmt[s->experts] += n_exp * expert_bytes_one;
            out->bytes_active += n_act * expert_bytes_one;
        }
    }
    b = vector_bytes(s->norms, norm_elems);
    fmt[s->norms] += b;
    out->bytes_active += b;

    out->total = out->embed + out->lm_head + out->attention + out->dense_mlp + out->router + out->experts + out->norms;
    out->active = out->total - out->experts + active_experts;
    for (int f = 0; f < MIMO_WFMT_COUNT; f++)
        out->bytes_total += fmt[f];
}
