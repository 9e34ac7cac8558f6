/* Shared CPU primitives (see cpu_ops.h): the plain float32 math of the reference engine. */
#include "cpu_ops.h"

#include <math.h>
#include <string.h>

void mimo_cpu_rmsnorm(float *out, const float *x, const float *weight, int n, float eps)
{
    double sum_sq = 0.0;   /* double: the mean of squares of a long vector is the part that drifts */
    for (int i = 0; i < n; i++)
        sum_sq += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(sum_sq / n + eps));
    for (int i = 0; i < n; i++)
        out[i] = x[i] * inv * weight[i];
}

float mimo_cpu_rms(const float *x, int n)
{
    double sum_sq = 0.0;
    for (int i = 0; i < n; i++)
        sum_sq += (double)x[i] * x[i];
    return n > 0 ? (float)sqrt(sum_sq / n) : 0.0f;
}

void mimo_cpu_softmax(float *x, int n)
{
    mimo_cpu_softmax_with_sink(x, n, -INFINITY);
}

float mimo_cpu_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

float mimo_cpu_silu(float x) { return x * mimo_cpu_sigmoid(x); }

void mimo_cpu_swiglu(float *out, const float *gate, const float *up, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = mimo_cpu_silu(gate[i]) * up[i];
}

void mimo_cpu_axpy(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

float mimo_cpu_dot(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

void mimo_cpu_matvec(const mimo_matrix *m, const float *x, float *y)
{
    mimo_matrix_gemv_f32(m, x, y);
}

void mimo_cpu_swiglu_mlp(const mimo_matrix *gate, const mimo_matrix *up, const mimo_matrix *down,
                         const float *x, float *out, float *scratch)
{
    int width = (int)gate->rows;
    float *g = scratch, *u = scratch + width;
    mimo_cpu_matvec(gate, x, g);
    mimo_cpu_matvec(up, x, u);
    mimo_cpu_swiglu(g, g, u, width);
    mimo_cpu_matvec(down, g, out);
}

void mimo_cpu_rope_neox(float *x, int n_heads, int head_stride, int rope_dim, int position, double theta)
{
    int half = rope_dim / 2;
    for (int i = 0; i < half; i++) {
        double inv_freq = pow(theta, -2.0 * i / rope_dim);
        double angle = (double)position * inv_freq;
        float c = (float)cos(angle), s = (float)sin(angle);
        for (int h = 0; h < n_heads; h++) {
            float *head = x + (size_t)h * head_stride;
            float a = head[i], b = head[i + half];
            head[i] = a * c - b * s;
            head[i + half] = b * c + a * s;
        }
    }
}

void mimo_cpu_attention_scores(const float *q, int dqk, int pos_q, const mimo_cpu_attn_mask *mask,
                               const float *k, size_t k_stride, int key_pos0, int n_keys,
                               float scale, float *scores)
{
    for (int j = 0; j < n_keys; j++) {
        if (!mimo_cpu_attn_visible(mask, pos_q, key_pos0 + j))
            scores[j] = -INFINITY;
        else
            scores[j] = scale * mimo_cpu_dot(q, k + (size_t)j * k_stride, dqk);
    }
}

void mimo_cpu_softmax_with_sink(float *scores, int n, float sink)
{
    float max = sink;
    for (int j = 0; j < n; j++)
        if (scores[j] > max)
            max = scores[j];
    if (max == -INFINITY) {          /* nothing visible and no sink: no attention at all */
        memset(scores, 0, (size_t)n * sizeof *scores);
        return;
    }
    double denom = (sink == -INFINITY) ? 0.0 : exp((double)sink - max);
    for (int j = 0; j < n; j++) {
        float e = (scores[j] == -INFINITY) ? 0.0f : expf(scores[j] - max);
        scores[j] = e;
        denom += e;
    }
    float inv = (float)(1.0 / denom);
    for (int j = 0; j < n; j++)
        scores[j] *= inv;
}

void mimo_cpu_attention_accumulate(const float *p, int n, const float *v, size_t v_stride, int dv, float *out)
{
    for (int j = 0; j < n; j++)
        if (p[j] != 0.0f)
            mimo_cpu_axpy(out, p[j], v + (size_t)j * v_stride, dv);
}

void mimo_cpu_attention_one(const float *q, int dqk, int dv, int pos_q, const mimo_cpu_attn_mask *mask,
                            const float *k, size_t k_stride, const float *v, size_t v_stride,
                            int key_pos0, int n_keys, float scale, float sink,
                            float *scratch, float *out)
{
    mimo_cpu_attention_scores(q, dqk, pos_q, mask, k, k_stride, key_pos0, n_keys, scale, scratch);
    mimo_cpu_softmax_with_sink(scratch, n_keys, sink);
    memset(out, 0, (size_t)dv * sizeof *out);
    mimo_cpu_attention_accumulate(scratch, n_keys, v, v_stride, dv, out);
}
