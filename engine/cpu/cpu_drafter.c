/* The DFlash drafter's forward pass on the CPU (DFLASH.md "The drafter").
 *
 * Context: each appended target position's features (hidden states after the target_layer_ids,
 * concatenated) go through fc and hidden_norm; every drafter layer then projects them with its own
 * k_proj/v_proj (per-head k_norm, RoPE at the position) into its context K/V cache ("KV injection").
 * The features are not run through the layers: only the block is.
 *
 * Block: x_0 = embed(t0), x_i = mask_embedding (or embed[mask]) for the masks, at positions
 * p..p+B-1 (p = context length). Per layer: h = RMSNorm(x); q, k, v from h; attention of every block
 * query over [context K/V ; block K/V], non-causal inside the block, the window hiding old context
 * on sliding layers, a per-head sink; x += o_proj(attn); x += SwiGLU(RMSNorm(x)). Final RMSNorm and
 * the target's lm_head give logits for all B positions. The block's K/V are discarded. */
#include "cpu_drafter.h"
#include "cpu_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mimo_cpu_drafter {
    const mimo_weights *target;
    const mimo_drafter_weights *w;
    mimo_drafter_config cfg;
    int max_ctx, length;
    float **ctx_k, **ctx_v;     /* per layer [max_ctx, kv_heads, head_dim] */
    /* work buffers */
    float *feat;                /* [hidden] projected context feature */
    float *kv_row;              /* [kv_heads * head_dim] */
    float *x, *h;               /* [B, hidden] residual stream and normed input */
    float *q, *bk, *bv;         /* [B, heads*hd], [B, kv*hd], [B, kv*hd] */
    float *attn;                /* [heads * hd] one position's head outputs */
    float *delta;               /* [hidden] */
    float *scores;              /* [max_ctx + MIMO_DFLASH_MAX_BLOCK] */
    float *mlp;                 /* [2 * intermediate] */
    float *logits;              /* [vocab] when the caller wants argmax only */
};

void mimo_cpu_drafter_destroy(mimo_cpu_drafter *d)
{
    if (!d)
        return;
    for (int l = 0; d->ctx_k && l < d->cfg.num_layers; l++) {
        free(d->ctx_k[l]);
        free(d->ctx_v[l]);
    }
    free(d->ctx_k);
    free(d->ctx_v);
    free(d->feat);
    free(d->kv_row);
    free(d->x);
    free(d->h);
    free(d->q);
    free(d->bk);
    free(d->bv);
    free(d->attn);
    free(d->delta);
    free(d->scores);
    free(d->mlp);
    free(d->logits);
    free(d);
}

int mimo_cpu_drafter_create(const mimo_weights *target, const mimo_drafter_weights *w, int max_context,
                            mimo_cpu_drafter **out, mimo_error *err)
{
    *out = NULL;
    const mimo_drafter_config *c = &w->cfg;
    if (c->hidden_size != target->cfg.hidden_size)
        return mimo_fail(err, "drafter: hidden_size %d != target hidden_size %d", c->hidden_size, target->cfg.hidden_size);
    if (c->mask_token_id < 0 || c->mask_token_id >= target->cfg.vocab_size)
        return mimo_fail(err, "drafter: mask_token_id %d outside the target vocabulary [0, %d)", c->mask_token_id,
                         target->cfg.vocab_size);
    if (c->num_layers < 1 || c->num_layers > 64 || c->n_kv_heads < 1 || c->n_heads % c->n_kv_heads)
        return mimo_fail(err, "drafter: bad layer/head counts (%d layers, %d/%d heads)", c->num_layers, c->n_heads, c->n_kv_heads);
    if (max_context < 1)
        return mimo_fail(err, "drafter: max_context must be >= 1");
    mimo_cpu_drafter *d = mimo_xcalloc(1, sizeof *d);
    d->target = target;
    d->w = w;
    d->cfg = *c;
    d->max_ctx = max_context;
    const size_t H = (size_t)c->hidden_size, D = (size_t)c->head_dim, B = MIMO_DFLASH_MAX_BLOCK;
    const size_t QD = (size_t)c->n_heads * D, KD = (size_t)c->n_kv_heads * D;
    d->ctx_k = mimo_xcalloc((size_t)c->num_layers, sizeof *d->ctx_k);
    d->ctx_v = mimo_xcalloc((size_t)c->num_layers, sizeof *d->ctx_v);
    for (int l = 0; l < c->num_layers; l++) {
        d->ctx_k[l] = mimo_xmalloc((size_t)max_context * KD * sizeof(float));
        d->ctx_v[l] = mimo_xmalloc((size_t)max_context * KD * sizeof(float));
    }
    d->feat = mimo_xmalloc(H * sizeof(float));
    d->kv_row = mimo_xmalloc(KD * sizeof(float));
    d->x = mimo_xmalloc(B * H * sizeof(float));
    d->h = mimo_xmalloc(B * H * sizeof(float));
    d->q = mimo_xmalloc(B * QD * sizeof(float));
    d->bk = mimo_xmalloc(B * KD * sizeof(float));
    d->bv = mimo_xmalloc(B * KD * sizeof(float));
    d->attn = mimo_xmalloc(QD * sizeof(float));
    d->delta = mimo_xmalloc(H * sizeof(float));
    d->scores = mimo_xmalloc(((size_t)max_context + B) * sizeof(float));
    d->mlp = mimo_xmalloc(2 * (size_t)c->intermediate_size * sizeof(float));
    d->logits = mimo_xmalloc((size_t)target->cfg.vocab_size * sizeof(float));
    *out = d;
    return 0;
}

int mimo_cpu_drafter_length(const mimo_cpu_drafter *d) { return d->length; }

int mimo_cpu_drafter_truncate(mimo_cpu_drafter *d, int n_context, mimo_error *err)
{
    if (n_context < 0 || n_context > d->length)
        return mimo_fail(err, "drafter: cannot truncate context to %d (length %d)", n_context, d->length);
    d->length = n_context;   /* positions are indexed absolutely: nothing to move */
    return 0;
}

/* Per-head RMSNorm (q_norm / k_norm), then RoPE at pos, over n_heads heads of x. */
static void norm_rope_heads(const mimo_drafter_config *c, float *x, int n_heads, const float *norm, int pos)
{
    for (int hh = 0; hh < n_heads; hh++)
        mimo_cpu_rmsnorm(x + (size_t)hh * c->head_dim, x + (size_t)hh * c->head_dim, norm, c->head_dim, c->rms_eps);
    mimo_cpu_rope_neox(x, n_heads, c->head_dim, c->rope_dim, pos, c->rope_theta);
}

int mimo_cpu_drafter_append(mimo_cpu_drafter *d, const float *target_hidden, int n, mimo_error *err)
{
    const mimo_drafter_config *c = &d->cfg;
    if (n < 0 || d->length + n > d->max_ctx)
        return mimo_fail(err, "drafter: appending %d context positions at %d exceeds max_context %d", n, d->length, d->max_ctx);
    const size_t KD = (size_t)c->n_kv_heads * c->head_dim, F = (size_t)c->n_target_layers * c->hidden_size;
    for (int i = 0; i < n; i++) {
        int pos = d->length + i;
        mimo_cpu_matvec(&d->w->fc, target_hidden + (size_t)i * F, d->feat);
        mimo_cpu_rmsnorm(d->feat, d->feat, d->w->hidden_norm, c->hidden_size, c->rms_eps);
        for (int l = 0; l < c->num_layers; l++) {
            const mimo_drafter_layer *L = &d->w->layers[l];
            float *k = d->ctx_k[l] + (size_t)pos * KD, *v = d->ctx_v[l] + (size_t)pos * KD;
            mimo_cpu_matvec(&L->k_proj, d->feat, k);
            norm_rope_heads(c, k, c->n_kv_heads, L->k_norm, pos);
            mimo_cpu_matvec(&L->v_proj, d->feat, v);
            for (size_t j = 0; j < KD; j++)
                v[j] *= c->attention_value_scale;
        }
    }
    d->length += n;
    return 0;
}

/* Attention of block position i (query q_i) of layer l over [context ; block]: into d->attn. */
static void block_attention(mimo_cpu_drafter *d, int l, int i, int B)
{
    const mimo_drafter_config *c = &d->cfg;
    const mimo_drafter_layer *L = &d->w->layers[l];
    const int D = c->head_dim, kv = c->n_kv_heads, group = c->n_heads / c->n_kv_heads;
    const size_t KD = (size_t)kv * D;
    const int p = d->length, pos_q = p + i;
    mimo_cpu_attn_mask mask = {.window = c->layer_is_swa[l] ? c->window : 0, .causal = false};
    /* Context keys older than the window are hidden from every query of the block: skip them. */
    int first = (mask.window > 0 && p - mask.window + 1 > 0) ? p - mask.window + 1 : 0;
    int n_ctx = p - first;
    float scale = (float)(1.0 / sqrt((double)D));
    const float *q_i = d->q + (size_t)i * c->n_heads * D;
    memset(d->attn, 0, (size_t)c->n_heads * D * sizeof(float));
    for (int hq = 0; hq < c->n_heads; hq++) {
        int g = hq / group;
        const float *qh = q_i + (size_t)hq * D;
        const float *ck = d->ctx_k[l] + (size_t)first * KD + (size_t)g * D;
        const float *cv = d->ctx_v[l] + (size_t)first * KD + (size_t)g * D;
        mimo_cpu_attention_scores(qh, D, pos_q, &mask, ck, KD, first, n_ctx, scale, d->scores);
        mimo_cpu_attention_scores(qh, D, pos_q, &mask, d->bk + (size_t)g * D, KD, p, B, scale, d->scores + n_ctx);
        float sink = (c->has_sink && L->sink) ? L->sink[hq] : -INFINITY;
        mimo_cpu_softmax_with_sink(d->scores, n_ctx + B, sink);
        float *out = d->attn + (size_t)hq * D;
        mimo_cpu_attention_accumulate(d->scores, n_ctx, cv, KD, D, out);
        mimo_cpu_attention_accumulate(d->scores + n_ctx, B, d->bv + (size_t)g * D, KD, D, out);
    }
}

int mimo_cpu_drafter_draft(mimo_cpu_drafter *d, const int32_t *block, int B, mimo_forward_out *out, mimo_error *err)
{
    const mimo_drafter_config *c = &d->cfg;
    const mimo_weights *t = d->target;
    const int V = t->cfg.vocab_size;
    if (B < 2 || B > MIMO_DFLASH_MAX_BLOCK)
        return mimo_fail(err, "drafter: block size %d out of range [2, %d]", B, MIMO_DFLASH_MAX_BLOCK);
    for (int i = 0; i < B; i++)
        if (block[i] < 0 || block[i] >= V)
            return mimo_fail(err, "drafter: block token %d out of range [0, %d)", block[i], V);
    const size_t H = (size_t)c->hidden_size, D = (size_t)c->head_dim;
    const size_t QD = (size_t)c->n_heads * D, KD = (size_t)c->n_kv_heads * D;
    const int p = d->length;

    for (int i = 0; i < B; i++) {
        float *x = d->x + (size_t)i * H;
        if (i > 0 && block[i] == c->mask_token_id && d->w->mask_embedding)
            memcpy(x, d->w->mask_embedding, H * sizeof(float));
        else
            mimo_matrix_row_f32(&t->embed, block[i], x);
    }
    for (int l = 0; l < c->num_layers; l++) {
        const mimo_drafter_layer *L = &d->w->layers[l];
        for (int i = 0; i < B; i++) {
            float *h = d->h + (size_t)i * H, *q = d->q + (size_t)i * QD;
            float *k = d->bk + (size_t)i * KD, *v = d->bv + (size_t)i * KD;
            mimo_cpu_rmsnorm(h, d->x + (size_t)i * H, L->input_norm, c->hidden_size, c->rms_eps);
            mimo_cpu_matvec(&L->q_proj, h, q);
            norm_rope_heads(c, q, c->n_heads, L->q_norm, p + i);
            mimo_cpu_matvec(&L->k_proj, h, k);
            norm_rope_heads(c, k, c->n_kv_heads, L->k_norm, p + i);
            mimo_cpu_matvec(&L->v_proj, h, v);
            for (size_t j = 0; j < KD; j++)
                v[j] *= c->attention_value_scale;
        }
        /* Every query sees every block key, so all of them exist before any residual update. */
        for (int i = 0; i < B; i++) {
            float *x = d->x + (size_t)i * H;
            block_attention(d, l, i, B);
            mimo_cpu_matvec(&L->o_proj, d->attn, d->delta);
            mimo_cpu_axpy(x, 1.0f, d->delta, c->hidden_size);
            mimo_cpu_rmsnorm(d->h, x, L->post_attn_norm, c->hidden_size, c->rms_eps);
            mimo_cpu_swiglu_mlp(&L->gate, &L->up, &L->down, d->h, d->delta, d->mlp);
            mimo_cpu_axpy(x, 1.0f, d->delta, c->hidden_size);
        }
    }
    for (int i = 0; i < B; i++) {
        if (!out->logits && !out->argmax)
            break;
        float *logits = out->logits ? out->logits + (size_t)i * V : d->logits;
        mimo_cpu_rmsnorm(d->h, d->x + (size_t)i * H, d->w->final_norm, c->hidden_size, c->rms_eps);
        mimo_cpu_matvec(&t->lm_head, d->h, logits);
        if (out->argmax) {
            int32_t best = 0;
            for (int j = 1; j < V; j++)
                if (logits[j] > logits[best])
                    best = j;
            out->argmax[i] = best;
        }
    }
    /* out->hidden: the drafter has no target-layer outputs; leave the caller's buffer alone. */
    return 0;
}
