/* An independent judge of the CPU engine for the tests: MODEL.md's forward pass written again from
 * the spec, in double precision, over a whole sequence at once, layer by layer, with no KV cache
 * and no code shared with engine/cpu (only mimo_matrix_row_f32 to read weights). Slow and plain. */
#ifndef MIMO_TEST_REFERENCE_FORWARD_H
#define MIMO_TEST_REFERENCE_FORWARD_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/weights.h"

/* y[rows] = W x, reading W one decoded row at a time. */
static void ref_matvec(const mimo_matrix *m, const double *x, double *y)
{
    float *row = malloc((size_t)m->cols * sizeof *row);
    for (int64_t r = 0; r < m->rows; r++) {
        mimo_matrix_row_f32(m, r, row);
        double s = 0.0;
        for (int64_t c = 0; c < m->cols; c++)
            s += (double)row[c] * x[c];
        y[r] = s;
    }
    free(row);
}

static void ref_rmsnorm(double *out, const double *x, const float *w, int n, double eps)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    double inv = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++)
        out[i] = x[i] * inv * w[i];
}

/* NeoX: dims i and i + rope_dim/2 form a rotated pair. */
static void ref_rope(double *head, int rope_dim, int pos, double theta)
{
    int half = rope_dim / 2;
    for (int i = 0; i < half; i++) {
        double ang = pos * pow(theta, -2.0 * i / rope_dim);
        double a = head[i], b = head[i + half];
        head[i] = a * cos(ang) - b * sin(ang);
        head[i + half] = b * cos(ang) + a * sin(ang);
    }
}

static double ref_silu(double x) { return x / (1.0 + exp(-x)); }

/* out[hidden] = down(silu(gate h) * up h). */
static void ref_mlp(const mimo_matrix *gate, const mimo_matrix *up, const mimo_matrix *down, const double *h,
                    double *out)
{
    int width = (int)gate->rows;
    double *g = malloc((size_t)width * sizeof *g), *u = malloc((size_t)width * sizeof *u);
    ref_matvec(gate, h, g);
    ref_matvec(up, h, u);
    for (int i = 0; i < width; i++)
        g[i] = ref_silu(g[i]) * u[i];
    ref_matvec(down, g, out);
    free(g);
    free(u);
}

/* out[hidden] = the MoE block: sigmoid router, top-k by score + bias (ties to the lower index). */
static void ref_moe(const mimo_config *cfg, const mimo_layer_weights *lw, const double *h, double *out)
{
    int E = cfg->n_routed_experts, K = cfg->experts_per_tok, H = cfg->hidden_size;
    double *score = malloc((size_t)E * sizeof *score), *tmp = malloc((size_t)H * sizeof *tmp);
    bool *taken = calloc((size_t)E, sizeof *taken);
    int *chosen = malloc((size_t)K * sizeof *chosen);
    ref_matvec(&lw->router, h, score);
    for (int e = 0; e < E; e++)
        score[e] = 1.0 / (1.0 + exp(-score[e]));
    double sum = 0.0;
    for (int k = 0; k < K; k++) {
        int best = -1;
        double best_v = -INFINITY;
        for (int e = 0; e < E; e++) {
            double v = score[e] + (lw->router_bias ? lw->router_bias[e] : 0.0);
            if (!taken[e] && (best < 0 || v > best_v)) {
                best = e;
                best_v = v;
            }
        }
        taken[best] = true;
        chosen[k] = best;
        sum += score[best];
    }
    memset(out, 0, (size_t)H * sizeof *out);
    for (int k = 0; k < K; k++) {
        int e = chosen[k];
        double w = score[e] * (cfg->norm_topk_prob ? 1.0 / sum : 1.0) * cfg->routed_scaling_factor;
        ref_mlp(&lw->expert_gate[e], &lw->expert_up[e], &lw->expert_down[e], h, tmp);
        for (int i = 0; i < H; i++)
            out[i] += w * tmp[i];
    }
    for (int s = 0; lw->shared_gate && s < cfg->n_shared_experts; s++) {
        ref_mlp(&lw->shared_gate[s], &lw->shared_up[s], &lw->shared_down[s], h, tmp);
        for (int i = 0; i < H; i++)
            out[i] += tmp[i];
    }
    free(score);
    free(tmp);
    free(taken);
    free(chosen);
}

/* Attention of layer l over the whole sequence x [n, hidden] (already normed into hn), added to x. */
static void ref_attention(const mimo_weights *w, int l, const double *hn, int n, double *x)
{
    const mimo_config *cfg = &w->cfg;
    const mimo_layer_weights *lw = &w->layers[l];
    const mimo_attn_shape *a = mimo_layer_attn(cfg, l);
    int H = cfg->hidden_size, heads = a->n_heads, kvh = a->n_kv_heads, dqk = a->head_dim, dv = a->v_head_dim;
    int rows = heads * dqk + kvh * dqk + kvh * dv;
    double *storage = malloc((size_t)rows * sizeof *storage);
    double *qkv = malloc((size_t)n * rows * sizeof *qkv);
    for (int i = 0; i < n; i++) {
        double *p = qkv + (size_t)i * rows;
        ref_matvec(&lw->qkv, hn + (size_t)i * H, storage);
        for (int r = 0; r < rows; r++)
            p[r] = storage[lw->qkv_row_of_plain ? lw->qkv_row_of_plain[r] : r];
        for (int hq = 0; hq < heads + kvh; hq++)   /* q heads then k heads: contiguous */
            ref_rope(p + (size_t)hq * dqk, a->rope_dim, i, a->rope_theta);
        for (int r = (heads + kvh) * dqk; r < rows; r++)
            p[r] *= cfg->attention_value_scale;
    }
    double *attn = malloc((size_t)heads * dv * sizeof *attn);
    double *prob = malloc((size_t)n * sizeof *prob);
    double *o = malloc((size_t)H * sizeof *o);
    for (int i = 0; i < n; i++) {
        for (int hq = 0; hq < heads; hq++) {
            int g = hq / (heads / kvh);
            const double *q = qkv + (size_t)i * rows + (size_t)hq * dqk;
            double max = -INFINITY;
            for (int j = 0; j < n; j++) {
                bool visible = j <= i && (a->window == 0 || i - j < a->window);
                prob[j] = -INFINITY;
                if (!visible)
                    continue;
                const double *k = qkv + (size_t)j * rows + (size_t)heads * dqk + (size_t)g * dqk;
                double s = 0.0;
                for (int d = 0; d < dqk; d++)
                    s += q[d] * k[d];
                prob[j] = s / sqrt((double)dqk);
                if (prob[j] > max)
                    max = prob[j];
            }
            double sink = (a->has_sink && lw->sink) ? lw->sink[hq] : -INFINITY;
            if (sink > max)
                max = sink;
            double denom = exp(sink - max);
            for (int j = 0; j < n; j++)
                denom += (prob[j] = exp(prob[j] - max));
            double *out = attn + (size_t)hq * dv;
            memset(out, 0, (size_t)dv * sizeof *out);
            for (int j = 0; j < n; j++) {
                const double *v = qkv + (size_t)j * rows + (size_t)(heads + kvh) * dqk + (size_t)g * dv;
                for (int d = 0; d < dv; d++)
                    out[d] += prob[j] / denom * v[d];
            }
        }
        ref_matvec(&lw->o_proj, attn, o);
        for (int d = 0; d < H; d++)
            x[(size_t)i * H + d] += o[d];
    }
    free(storage);
    free(qkv);
    free(attn);
    free(prob);
    free(o);
}

/* logits [n, vocab] (as float) for tokens[0..n) at positions 0..n-1. */
static void reference_forward(const mimo_weights *w, const int32_t *tokens, int n, float *logits)
{
    const mimo_config *cfg = &w->cfg;
    int H = cfg->hidden_size, V = cfg->vocab_size;
    double *x = malloc((size_t)n * H * sizeof *x), *hn = malloc((size_t)n * H * sizeof *hn);
    double *delta = malloc((size_t)H * sizeof *delta), *lg = malloc((size_t)V * sizeof *lg);
    float *row = malloc((size_t)H * sizeof *row);
    for (int i = 0; i < n; i++) {
        mimo_matrix_row_f32(&w->embed, tokens[i], row);
        for (int d = 0; d < H; d++)
            x[(size_t)i * H + d] = row[d];
    }
    for (int l = 0; l < cfg->num_layers; l++) {
        const mimo_layer_weights *lw = &w->layers[l];
        for (int i = 0; i < n; i++)
            ref_rmsnorm(hn + (size_t)i * H, x + (size_t)i * H, lw->input_norm, H, cfg->rms_eps);
        ref_attention(w, l, hn, n, x);
        for (int i = 0; i < n; i++) {
            ref_rmsnorm(hn + (size_t)i * H, x + (size_t)i * H, lw->post_attn_norm, H, cfg->rms_eps);
            if (cfg->layer_is_moe[l])
                ref_moe(cfg, lw, hn + (size_t)i * H, delta);
            else
                ref_mlp(&lw->gate, &lw->up, &lw->down, hn + (size_t)i * H, delta);
            for (int d = 0; d < H; d++)
                x[(size_t)i * H + d] += delta[d];
        }
    }
    for (int i = 0; i < n; i++) {
        ref_rmsnorm(hn, x + (size_t)i * H, w->final_norm, H, cfg->rms_eps);
        ref_matvec(&w->lm_head, hn, lg);
        for (int v = 0; v < V; v++)
            logits[(size_t)i * V + v] = (float)lg[v];
    }
    free(x);
    free(hn);
    free(delta);
    free(lg);
    free(row);
}

#endif
