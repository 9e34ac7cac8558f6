/* The feed-forward half of a target layer (MODEL.md step 3): dense SwiGLU, or the sigmoid-scored
 * MoE with the noaux_tc correction bias, plus shared experts when a config has them. */
#include "cpu_layers.h"
#include "cpu_ops.h"

#include <math.h>
#include <string.h>

/* Index of the largest of x[0..n) (lowest index on ties); -INFINITY entries are never chosen
 * unless all are. */
static int argmax_first(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* DeepSeek-V3 group limit: keep only the topk_group groups whose two best biased scores sum highest. */
static void limit_to_best_groups(const mimo_config *cfg, float *sel, float *group_score)
{
    int E = cfg->n_routed_experts, G = cfg->n_group, per = E / G;
    for (int g = 0; g < G; g++) {
        float top1 = -INFINITY, top2 = -INFINITY;
        for (int e = g * per; e < (g + 1) * per; e++) {
            if (sel[e] > top1) {
                top2 = top1;
                top1 = sel[e];
            } else if (sel[e] > top2) {
                top2 = sel[e];
            }
        }
        group_score[g] = per >= 2 ? top1 + top2 : top1;
    }
    /* mark kept groups by setting their score to +inf, one at a time */
    for (int k = 0; k < cfg->topk_group; k++) {
        int best = -1;
        for (int g = 0; g < G; g++)
            if (group_score[g] != INFINITY && (best < 0 || group_score[g] > group_score[best]))
                best = g;
        group_score[best] = INFINITY;
    }
    for (int g = 0; g < G; g++)
        if (group_score[g] != INFINITY)
            for (int e = g * per; e < (g + 1) * per; e++)
                sel[e] = -INFINITY;
}

void mimo_cpu_moe_route(const mimo_config *cfg, const float *logits, const float *bias,
                        int *chosen, float *weights, float *tmp)
{
    const int E = cfg->n_routed_experts, K = cfg->experts_per_tok;
    float *score = tmp;         /* sigmoid(logit): what the weights use */
    float *sel = tmp + E;       /* score + bias: what the choice uses */
    for (int e = 0; e < E; e++) {
        score[e] = mimo_cpu_sigmoid(logits[e]);
        sel[e] = score[e] + (bias ? bias[e] : 0.0f);
    }
    if (cfg->n_group > 1 && cfg->topk_group < cfg->n_group && E % cfg->n_group == 0)
        limit_to_best_groups(cfg, sel, tmp + 2 * E);

    float sum = 0.0f;
    for (int k = 0; k < K; k++) {
        int e = argmax_first(sel, E);
        sel[e] = -INFINITY;
        chosen[k] = e;
        weights[k] = score[e];
        sum += score[e];
    }
    float norm = (cfg->norm_topk_prob && sum > 0.0f) ? 1.0f / sum : 1.0f;
    for (int k = 0; k < K; k++)
        weights[k] *= norm * cfg->routed_scaling_factor;
}

/* down(silu(gate h) * up h), the products shared among the pool's threads. */
static void swiglu_mlp(const mimo_matrix *gate, const mimo_matrix *up, const mimo_matrix *down, const float *h,
                       float *out, mimo_cpu_scratch *s)
{
    int width = (int)gate->rows;
    float *g = s->mlp, *u = s->mlp + width;
    mimo_cpu_pool_matvec(s->pool, gate, h, g);
    mimo_cpu_pool_matvec(s->pool, up, h, u);
    mimo_cpu_swiglu(g, g, u, width);
    mimo_cpu_pool_matvec(s->pool, down, g, out);
}

static void moe_ffn(const mimo_config *cfg, const mimo_layer_weights *lw, const float *h, float *out,
                    mimo_cpu_scratch *s)
{
    const int hidden = cfg->hidden_size;
    mimo_cpu_pool_matvec(s->pool, &lw->router, h, s->router);
    mimo_cpu_moe_route(cfg, s->router, lw->router_bias, s->chosen, s->chosen_w, s->router_tmp);

    memset(out, 0, (size_t)hidden * sizeof *out);
    for (int k = 0; k < cfg->experts_per_tok; k++) {
        int e = s->chosen[k];
        swiglu_mlp(&lw->expert_gate[e], &lw->expert_up[e], &lw->expert_down[e], h, s->ffn_out, s);
        mimo_cpu_axpy(out, s->chosen_w[k], s->ffn_out, hidden);
    }
    if (lw->shared_gate) {
        for (int i = 0; i < cfg->n_shared_experts; i++) {
            swiglu_mlp(&lw->shared_gate[i], &lw->shared_up[i], &lw->shared_down[i], h, s->ffn_out, s);
            mimo_cpu_axpy(out, 1.0f, s->ffn_out, hidden);
        }
    }
}

void mimo_cpu_ffn(const mimo_config *cfg, const mimo_layer_weights *lw, const float *h, float *out,
                  mimo_cpu_scratch *s)
{
    if (lw->is_moe)
        moe_ffn(cfg, lw, h, out, s);
    else
        swiglu_mlp(&lw->gate, &lw->up, &lw->down, h, out, s);
}
