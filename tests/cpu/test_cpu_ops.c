/* The shared CPU primitives (cpu_ops.h) on hand-made inputs: attention masks and sinks, RoPE,
 * RMSNorm, softmax, SwiGLU. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../../engine/cpu/cpu_ops.h"
#include "mimo/hash.h"

static float unit(uint64_t stream, uint64_t i) { return mimo_bits_to_unit_symmetric(mimo_hash2(stream, i)); }

#define NK 9
#define DQK 6
#define DV 5

static float q[DQK], k[NK * DQK], v[NK * DV];

static void fill_qkv(void)
{
    for (int i = 0; i < DQK; i++)
        q[i] = 2.0f * unit(1, (uint64_t)i);
    for (int i = 0; i < NK * DQK; i++)
        k[i] = unit(2, (uint64_t)i);
    for (int i = 0; i < NK * DV; i++)
        v[i] = unit(3, (uint64_t)i);
}

static void attend(float sink, const mimo_cpu_attn_mask *mask, int pos_q, float *out)
{
    float scratch[NK];
    mimo_cpu_attention_one(q, DQK, DV, pos_q, mask, k, DQK, v, DV, 0, NK, 0.5f, sink, scratch, out);
}

/* (c) a sink of -inf is no sink; a finite sink s scales the output by exactly Z / (Z + e^s),
 * Z = sum_j exp(score_j), because the virtual key's value is zero. */
Test(cpu_ops, attention_sink_scales_output_by_formula)
{
    fill_qkv();
    mimo_cpu_attn_mask mask = { .window = 0, .causal = true };
    float none[DV], neg_inf[DV], sunk[DV];
    const int pos_q = NK - 1;

    /* the same attention without any sink, written out */
    double z = 0.0, direct[DV] = { 0 };
    for (int j = 0; j < NK; j++) {
        double s = 0.0;
        for (int d = 0; d < DQK; d++)
            s += (double)q[d] * k[j * DQK + d];
        double e = exp(0.5 * s);
        z += e;
        for (int d = 0; d < DV; d++)
            direct[d] += e * v[j * DV + d];
    }
    attend(-INFINITY, &mask, pos_q, neg_inf);
    for (int d = 0; d < DV; d++)
        cr_assert_float_eq(neg_inf[d], direct[d] / z, 1e-6, "dim %d", d);

    float scratch[NK];
    mimo_cpu_attention_scores(q, DQK, pos_q, &mask, k, DQK, 0, NK, 0.5f, scratch);
    mimo_cpu_softmax(scratch, NK);
    memset(none, 0, sizeof none);
    mimo_cpu_attention_accumulate(scratch, NK, v, DV, DV, none);
    cr_assert(memcmp(none, neg_inf, sizeof none) == 0, "sink -inf must equal no sink exactly");

    const float sinks[] = { -3.0f, 0.0f, 2.5f, 8.0f };
    for (size_t t = 0; t < sizeof sinks / sizeof *sinks; t++) {
        attend(sinks[t], &mask, pos_q, sunk);
        double factor = z / (z + exp(sinks[t]));
        for (int d = 0; d < DV; d++)
            cr_assert_float_eq(sunk[d], none[d] * factor, 1e-6 + 1e-5 * fabs(none[d]),
                               "sink %g dim %d: %g vs %g", sinks[t], d, sunk[d], none[d] * factor);
    }
    attend(8.0f, &mask, pos_q, sunk);
    cr_assert_lt(fabsf(sunk[0]), fabsf(none[0]), "a large sink must shrink the output");
}

Test(cpu_ops, window_and_causal_mask)
{
    fill_qkv();
    float scores[NK];
    mimo_cpu_attn_mask swa = { .window = 3, .causal = true };
    mimo_cpu_attention_scores(q, DQK, 6, &swa, k, DQK, 0, NK, 1.0f, scores);
    for (int j = 0; j < NK; j++) {
        bool visible = j <= 6 && 6 - j < 3;   /* keys 4, 5, 6 */
        cr_assert_eq(isfinite(scores[j]) != 0, visible, "key %d visibility", j);
    }
    mimo_cpu_attn_mask bidirectional = { .window = 0, .causal = false };
    mimo_cpu_attention_scores(q, DQK, 2, &bidirectional, k, DQK, 0, NK, 1.0f, scores);
    for (int j = 0; j < NK; j++)
        cr_assert(isfinite(scores[j]), "non-causal: key %d must be visible", j);
    /* key positions are absolute: a segment starting at position 10 */
    mimo_cpu_attention_scores(q, DQK, 12, &swa, k, DQK, 10, NK, 1.0f, scores);
    for (int j = 0; j < NK; j++)
        cr_assert_eq(isfinite(scores[j]) != 0, j <= 2, "segment key %d", j);

    /* nothing visible and no sink: zero output, no NaN */
    float out[DV];
    mimo_cpu_attn_mask none_visible = { .window = 1, .causal = true };
    float scratch[NK];
    mimo_cpu_attention_one(q, DQK, DV, 100, &none_visible, k, DQK, v, DV, 0, NK, 1.0f, -INFINITY, scratch, out);
    for (int d = 0; d < DV; d++)
        cr_assert_eq(out[d], 0.0f);
}

Test(cpu_ops, softmax_with_sink_sums_below_one)
{
    float s[4] = { 1.0f, 2.0f, -INFINITY, 0.5f };
    mimo_cpu_softmax_with_sink(s, 4, 1.0f);
    double sum = s[0] + s[1] + s[2] + s[3];
    double z = exp(1.0) + exp(2.0) + exp(0.5);
    cr_assert_float_eq(sum, z / (z + exp(1.0)), 1e-6);
    cr_assert_eq(s[2], 0.0f);
    float big[3] = { 1000.0f, 1000.0f, -1000.0f };   /* no overflow */
    mimo_cpu_softmax(big, 3);
    cr_assert_float_eq(big[0], 0.5f, 1e-6);
    cr_assert_float_eq(big[2], 0.0f, 1e-6);
}

Test(cpu_ops, rope_neox_rotates_half_pairs)
{
    enum { HEAD = 10, ROPE = 6, HALF = 3 };
    const double theta = 10000.0;
    float x[2 * HEAD], orig[2 * HEAD];
    for (int i = 0; i < 2 * HEAD; i++)
        orig[i] = x[i] = unit(5, (uint64_t)i);

    mimo_cpu_rope_neox(x, 2, HEAD, ROPE, 0, theta);
    cr_assert(memcmp(x, orig, sizeof x) == 0, "position 0 is the identity");

    const int pos = 7;
    mimo_cpu_rope_neox(x, 2, HEAD, ROPE, pos, theta);
    for (int h = 0; h < 2; h++) {
        const float *o = orig + h * HEAD, *r = x + h * HEAD;
        for (int i = 0; i < HALF; i++) {
            double ang = pos * pow(theta, -2.0 * i / ROPE);
            cr_assert_float_eq(r[i], o[i] * cos(ang) - o[i + HALF] * sin(ang), 1e-6, "head %d pair %d", h, i);
            cr_assert_float_eq(r[i + HALF], o[i + HALF] * cos(ang) + o[i] * sin(ang), 1e-6, "head %d pair %d", h, i);
        }
        for (int i = ROPE; i < HEAD; i++)
            cr_assert_eq(r[i], o[i], "dim %d beyond rope_dim must be untouched", i);
    }

    /* the point of RoPE: q.k depends only on the distance between positions */
    float qa[HEAD], ka[HEAD], qb[HEAD], kb[HEAD];
    for (int i = 0; i < HEAD; i++) {
        qa[i] = qb[i] = unit(6, (uint64_t)i);
        ka[i] = kb[i] = unit(7, (uint64_t)i);
    }
    mimo_cpu_rope_neox(qa, 1, HEAD, ROPE, 9, theta);
    mimo_cpu_rope_neox(ka, 1, HEAD, ROPE, 4, theta);
    mimo_cpu_rope_neox(qb, 1, HEAD, ROPE, 109, theta);
    mimo_cpu_rope_neox(kb, 1, HEAD, ROPE, 104, theta);
    cr_assert_float_eq(mimo_cpu_dot(qa, ka, HEAD), mimo_cpu_dot(qb, kb, HEAD), 1e-5);
}

Test(cpu_ops, rmsnorm_swiglu_silu)
{
    float x[4] = { 1.0f, -2.0f, 3.0f, -4.0f }, w[4] = { 1.0f, 0.5f, 2.0f, 1.0f }, out[4];
    mimo_cpu_rmsnorm(out, x, w, 4, 1e-6f);
    double rms = sqrt((1.0 + 4.0 + 9.0 + 16.0) / 4.0 + 1e-6);
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(out[i], x[i] / rms * w[i], 1e-6);
    cr_assert_float_eq(mimo_cpu_rms(x, 4), sqrt(7.5), 1e-6);

    cr_assert_float_eq(mimo_cpu_silu(0.0f), 0.0f, 1e-9);
    cr_assert_float_eq(mimo_cpu_silu(2.0f), 2.0 / (1.0 + exp(-2.0)), 1e-6);
    float g[3] = { -1.0f, 0.0f, 3.0f }, u[3] = { 2.0f, 5.0f, -1.0f }, y[3];
    mimo_cpu_swiglu(y, g, u, 3);
    for (int i = 0; i < 3; i++)
        cr_assert_float_eq(y[i], g[i] / (1.0 + exp(-g[i])) * u[i], 1e-6);
}
