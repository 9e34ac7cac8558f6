/* The MoE router and feed-forward block on hand-built cases (cpu_layers.h). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/cpu/cpu_layers.h"
#include "../../engine/cpu/cpu_ops.h"

#define E 8

static mimo_config router_config(int k, bool norm, float scale)
{
    mimo_config c;
    memset(&c, 0, sizeof c);
    c.n_routed_experts = E;
    c.experts_per_tok = k;
    c.norm_topk_prob = norm;
    c.routed_scaling_factor = scale;
    c.n_group = 1;
    c.topk_group = 1;
    return c;
}

static double sig(double x) { return 1.0 / (1.0 + exp(-x)); }

/* Weight of expert e in the routing result, 0 if not chosen. */
static float weight_of(const int *chosen, const float *w, int k, int e)
{
    for (int i = 0; i < k; i++)
        if (chosen[i] == e)
            return w[i];
    return 0.0f;
}

/* (d) the correction bias decides which experts run, never how much they weigh. */
Test(moe, correction_bias_changes_choice_not_weights)
{
    mimo_config c = router_config(2, true, 2.5f);
    const float logits[E] = { 2.0f, 1.5f, 0.0f, -1.0f, -1.0f, -2.0f, -0.5f, -3.0f };
    float bias[E] = { 0 };
    int chosen[2];
    float w[2], tmp[3 * E];

    mimo_cpu_moe_route(&c, logits, bias, chosen, w, tmp);
    cr_assert_eq(chosen[0], 0);
    cr_assert_eq(chosen[1], 1);
    double s0 = sig(2.0), s1 = sig(1.5), s2 = sig(0.0);
    cr_assert_float_eq(w[0], s0 / (s0 + s1) * 2.5, 1e-6);
    cr_assert_float_eq(w[1], s1 / (s0 + s1) * 2.5, 1e-6);

    bias[2] = 1.0f;   /* lifts expert 2 (0.5 + 1) above expert 1 (0.82) but not above expert 0 */
    bias[0] = 0.1f;   /* a bias on a chosen expert must not leak into its weight */
    mimo_cpu_moe_route(&c, logits, bias, chosen, w, tmp);
    cr_assert_eq(chosen[0], 2, "expert 2 ranks first by score + bias (1.5 > 0.98)");
    cr_assert_eq(chosen[1], 0);
    cr_assert_float_eq(weight_of(chosen, w, 2, 2), s2 / (s0 + s2) * 2.5, 1e-6, "weight uses the unbiased score");
    cr_assert_float_eq(weight_of(chosen, w, 2, 0), s0 / (s0 + s2) * 2.5, 1e-6);

    /* without normalisation the weights are the raw scores times the scaling factor */
    c.norm_topk_prob = false;
    mimo_cpu_moe_route(&c, logits, bias, chosen, w, tmp);
    cr_assert_float_eq(weight_of(chosen, w, 2, 2), s2 * 2.5, 1e-6);
    cr_assert_float_eq(weight_of(chosen, w, 2, 0), s0 * 2.5, 1e-6);

    /* NULL bias = zero bias */
    mimo_cpu_moe_route(&c, logits, NULL, chosen, w, tmp);
    cr_assert_eq(chosen[0], 0);
    cr_assert_eq(chosen[1], 1);
}

Test(moe, ties_go_to_the_lower_index)
{
    mimo_config c = router_config(3, true, 1.0f);
    float logits[E];
    for (int e = 0; e < E; e++)
        logits[e] = 0.25f;
    int chosen[3];
    float w[3], tmp[3 * E];
    mimo_cpu_moe_route(&c, logits, NULL, chosen, w, tmp);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(chosen[i], i);
        cr_assert_float_eq(w[i], 1.0 / 3.0, 1e-6);
    }
}

Test(moe, group_limit_keeps_best_groups)
{
    mimo_config c = router_config(2, true, 1.0f);
    c.n_group = 4;      /* groups {0,1} {2,3} {4,5} {6,7} */
    c.topk_group = 1;
    /* the single best expert (3) sits in a group whose pair sum is beaten by group {4,5} */
    const float logits[E] = { -4.0f, -4.0f, -4.0f, 3.0f, 1.5f, 1.5f, -4.0f, -4.0f };
    int chosen[2];
    float w[2], tmp[3 * E];
    mimo_cpu_moe_route(&c, logits, NULL, chosen, w, tmp);
    /* pair sums: {2,3} = sig(-4)+sig(3) = 0.97; {4,5} = 2*sig(1.5) = 1.64 */
    cr_assert_eq(chosen[0], 4);
    cr_assert_eq(chosen[1], 5);
}

/* An f32 matrix over caller storage. */
static mimo_matrix f32_matrix(float *data, int rows, int cols)
{
    mimo_matrix m;
    memset(&m, 0, sizeof m);
    m.format = MIMO_WFMT_F32;
    m.rows = rows;
    m.cols = cols;
    m.data = data;
    return m;
}

/* The MoE block sums exactly the chosen experts' SwiGLU outputs with the router's weights. Expert e
 * is built so that its output is (silu(1) * (e+1)) * unit vector e: which expert ran is visible. */
Test(moe, ffn_mixes_chosen_experts)
{
    enum { H = 8, W = 4 };
    mimo_config c = router_config(2, true, 1.0f);
    c.hidden_size = H;
    static float gate[E][W * H], up[E][W * H], down[E][H * W], router[E * H];
    mimo_matrix g[E], u[E], d[E];
    for (int e = 0; e < E; e++) {
        memset(gate[e], 0, sizeof gate[e]);
        memset(up[e], 0, sizeof up[e]);
        memset(down[e], 0, sizeof down[e]);
        gate[e][0 * H + 0] = 1.0f;              /* gate row 0 reads h[0] (= 1 below) */
        up[e][0 * H + 0] = (float)(e + 1);      /* up row 0 = (e+1) h[0] */
        down[e][e * W + 0] = 1.0f;              /* output dim e gets intermediate 0 */
        g[e] = f32_matrix(gate[e], W, H);
        u[e] = f32_matrix(up[e], W, H);
        d[e] = f32_matrix(down[e], H, W);
    }
    /* router: expert e's logit = router[e] . h = r_e * h[1] */
    const float r[E] = { 0.1f, 3.0f, -1.0f, 0.5f, 2.0f, -2.0f, 0.0f, 1.0f };
    memset(router, 0, sizeof router);
    for (int e = 0; e < E; e++)
        router[e * H + 1] = r[e];
    mimo_layer_weights lw;
    memset(&lw, 0, sizeof lw);
    lw.is_moe = true;
    lw.router = f32_matrix(router, E, H);
    lw.expert_gate = g;
    lw.expert_up = u;
    lw.expert_down = d;

    mimo_weights w;
    memset(&w, 0, sizeof w);
    w.cfg = c;
    w.cfg.num_layers = 1;
    w.cfg.layer_is_moe[0] = true;
    w.layers = &lw;
    mimo_cpu_scratch s;
    memset(&s, 0, sizeof s);
    /* scratch_init reads attention shapes too: give the layer a minimal one */
    w.cfg.full = (mimo_attn_shape){ .n_heads = 1, .n_kv_heads = 1, .head_dim = 2, .v_head_dim = 2 };
    mimo_cpu_scratch_init(&s, &w, 1, 4);

    float h[H] = { 1.0f, 1.0f }, out[H];
    mimo_cpu_ffn(&w.cfg, &lw, h, out, &s);
    double s1 = sig(3.0), s4 = sig(2.0), silu1 = 1.0 / (1.0 + exp(-1.0));
    for (int i = 0; i < H; i++) {
        double want = 0.0;
        if (i == 1)
            want = s1 / (s1 + s4) * silu1 * 2.0;
        if (i == 4)
            want = s4 / (s1 + s4) * silu1 * 5.0;
        cr_assert_float_eq(out[i], want, 1e-6, "dim %d: %g vs %g", i, out[i], want);
    }

    /* a dense layer is the plain SwiGLU MLP */
    lw.is_moe = false;
    lw.gate = g[2];
    lw.up = u[2];
    lw.down = d[2];
    mimo_cpu_ffn(&w.cfg, &lw, h, out, &s);
    for (int i = 0; i < H; i++)
        cr_assert_float_eq(out[i], i == 2 ? silu1 * 3.0 : 0.0, 1e-6, "dense dim %d", i);
    mimo_cpu_scratch_free(&s);
}
