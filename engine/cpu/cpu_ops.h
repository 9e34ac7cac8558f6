/* Shared CPU primitives of the reference engine (target and DFlash drafter). Plain float32 math,
 * written to be read: every GPU kernel is judged against these. All vectors are caller-owned;
 * no function keeps state. Output buffers must not alias inputs unless a function says so. */
#ifndef MIMO_CPU_OPS_H
#define MIMO_CPU_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include "mimo/weights.h"

/* ---- elementwise / vector ---- */

/* out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i]. out may equal x. */
void mimo_cpu_rmsnorm(float *out, const float *x, const float *weight, int n, float eps);
/* Root mean square of x[n] (a diagnostic: the residual stream's size). */
float mimo_cpu_rms(const float *x, int n);
/* In-place softmax over x[n]. */
void mimo_cpu_softmax(float *x, int n);
/* silu(x) = x * sigmoid(x). */
float mimo_cpu_silu(float x);
float mimo_cpu_sigmoid(float x);
/* out[i] = silu(gate[i]) * up[i]. out may equal gate or up. */
void mimo_cpu_swiglu(float *out, const float *gate, const float *up, int n);
/* y[i] += a * x[i]. */
void mimo_cpu_axpy(float *y, float a, const float *x, int n);
float mimo_cpu_dot(const float *a, const float *b, int n);

/* ---- matrices ---- */

/* y[m->rows] = W x[m->cols] (W in any storage format; decoded by mimo_matrix_gemv_f32). */
void mimo_cpu_matvec(const mimo_matrix *m, const float *x, float *y);
/* Dense SwiGLU MLP: out[down.rows] = down(silu(gate x) * up x).
 * scratch holds 2 * gate->rows floats. out must not alias x. */
void mimo_cpu_swiglu_mlp(const mimo_matrix *gate, const mimo_matrix *up, const mimo_matrix *down,
                         const float *x, float *out, float *scratch);

/* ---- rotary position embedding ---- */

/* NeoX "rotate-half" RoPE, in place, on the first rope_dim dims of each of n_heads heads
 * (head h starts at x + h*head_stride). Pair i (i < rope_dim/2) is (x[i], x[i + rope_dim/2]),
 * rotated by angle position * theta^(-2i/rope_dim). Dims >= rope_dim are untouched.
 * rope_dim must be even; 0 is a no-op. Angles are computed in double, then applied in float. */
void mimo_cpu_rope_neox(float *x, int n_heads, int head_stride, int rope_dim, int position, double theta);

/* ---- attention ---- */

/* Which keys a query at pos_q sees. window > 0: only keys with pos_q - pos_k < window.
 * causal: only keys with pos_k <= pos_q (the DFlash drafter is non-causal inside its block). */
typedef struct {
    int   window;   /* 0 = unlimited */
    bool  causal;
} mimo_cpu_attn_mask;

static inline bool mimo_cpu_attn_visible(const mimo_cpu_attn_mask *m, int pos_q, int pos_k)
{
    if (m->causal && pos_k > pos_q)
        return false;
    if (m->window > 0 && pos_q - pos_k >= m->window)
        return false;
    return true;
}

/* Step 1 of attention for one query head: scores[j] = scale * dot(q, key_j) for keys j = 0..n_keys-1,
 * key_j at k + j*k_stride with position key_pos0 + j; keys the mask hides get -INFINITY.
 * A query may gather keys from several buffers by calling this once per segment into consecutive
 * parts of one scores array. */
void mimo_cpu_attention_scores(const float *q, int dqk, int pos_q, const mimo_cpu_attn_mask *mask,
                               const float *k, size_t k_stride, int key_pos0, int n_keys,
                               float scale, float *scores);
/* Step 2: in-place softmax over scores[n] with an optional sink: a virtual key of logit `sink`
 * whose value is zero, i.e. p_j = exp(s_j) / (sum_i exp(s_i) + exp(sink)). sink = -INFINITY means
 * no sink. All-masked rows (every s_j = -inf, no sink) give all-zero weights. */
void mimo_cpu_softmax_with_sink(float *scores, int n, float sink);
/* Step 3: out[dv] += sum_j p[j] * value_j, value_j at v + j*v_stride (zero weights are skipped). */
void mimo_cpu_attention_accumulate(const float *p, int n, const float *v, size_t v_stride, int dv, float *out);

/* Steps 1-3 for one query head over one contiguous run of keys (positions key_pos0..+n_keys-1):
 * out[dv] = the attention output. scratch holds n_keys floats. */
void mimo_cpu_attention_one(const float *q, int dqk, int dv, int pos_q, const mimo_cpu_attn_mask *mask,
                            const float *k, size_t k_stride, const float *v, size_t v_stride,
                            int key_pos0, int n_keys, float scale, float sink,
                            float *scratch, float *out);

#endif
