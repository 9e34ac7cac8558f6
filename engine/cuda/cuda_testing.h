/* A small C interface to single CUDA ops, for the tests (tests/cuda): each call uploads its inputs,
 * poisons the outputs with NaN on the device, runs the op once and copies the result back. Each
 * returns 0, or -1 with err filled (also when no device is present). */
#ifndef MIMO_CUDA_TESTING_H
#define MIMO_CUDA_TESTING_H

#include <stdbool.h>
#include <stdint.h>
#include "mimo/engine.h"
#include "mimo/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y[t][r] = sum_c W[r][c] x[t][c], t < n <= 16; x [n][cols], y [n][rows]. */
int mimo_cuda_test_gemv(const mimo_matrix *w, const float *x, int n, float *y, mimo_error *err);
/* y[t][r] += sum_c W[r][c] x[t][c] (y holds the old values on entry), as the residual projections do. */
int mimo_cuda_test_gemv_accumulate(const mimo_matrix *w, const float *x, int n, float *y, mimo_error *err);
/* y[t][r] = silu(gate x_t)[r] * (up x_t)[r]. */
int mimo_cuda_test_gemv_glu(const mimo_matrix *gate, const mimo_matrix *up, const float *x, int n, float *y,
                            mimo_error *err);
/* Expert-slot mode: slots s < n_slots use expert ids[s] of the set, input row x[s / x_div]. With up
 * experts (else NULL): y = silu(gate x) * (up x), the routed experts' gate/up projection. */
int mimo_cuda_test_expert_gemv(const mimo_matrix *experts, const mimo_matrix *up_experts, int n_experts,
                               const int32_t *ids, int n_slots, const float *x, int x_div, float *y, mimo_error *err);
/* The routed experts' down projection with the MoE combine, positions t < n_slots / k:
 * x[t][r] += sum_j w[t k + j] (E_ids[t k + j] act[t k + j])[r] (x [n_slots / k][rows] in and out,
 * act [n_slots][cols]). fused: the combine inside the GEMV where the path allows (the step's way);
 * else the GEMV into slot rows, then the combine kernel. */
int mimo_cuda_test_expert_down_combine(const mimo_matrix *experts, int n_experts, const int32_t *ids, const float *w,
                                       int n_slots, int k, const float *act, float *x, bool fused, mimo_error *err);
/* Which GEMV kernels the calls above use (for testing every path): 0 = the launchers' defaults,
 * 1 = the CUDA-core kernel at one position and for expert slots (the default's choice, set
 * explicitly), 2 = tensor cores there (f32 weights keep the CUDA-core kernel), 3 = path 2 with 4
 * column blocks in flight per warp, 4 = path 2 with at most 2 warps sharing a row tile's columns,
 * 5 = path 1 with the 3-blocks-per-SM build everywhere (the default uses 2), 6 = path 1 with
 * MXFP4 expert slots in the wide row shape at any slot count and for both projections (the default:
 * gate/up pairs of several positions), 7 = path 6 with 3 blocks per SM, 8 = path 1 with MXFP4 slots in
 * the default row shape, 9 = the narrow row shape (the default's choice for the slots of one position
 * when they are few warps) with 3 blocks per SM, 10 = the narrow row shape at 2 blocks per SM (gate/up
 * rows of 65..192 MXFP4 vectors in its one-pass form), 11 = the defaults with the MoE combine's kernel
 * on the 3-blocks-per-SM build at any grid size, 12 = path 10 without the one-pass form, 13 = the
 * defaults with MXFP4 gate/up slots reading their inputs from global memory (the default: a padded copy
 * in shared memory), 14 = the defaults with every RMSNorm of a step a kernel of its own (the default defers
 * them into the GEMVs around them where those take it), 15 = the defaults with the expert down projection
 * told that its ids were final at launch (GemvParams::ids_settled: its weight loads before its wait, the
 * step's way after the gate/up slots), 16 = the defaults with the MXFP4 gate/up slots told that their inputs
 * were final at launch (GemvParams::x_settled: their input row staged before their wait, the step's way
 * after the route kernel), 17 = the defaults without the staged GEMV (plain matrices of one position whose
 * rows the default bulk-copies into shared memory before its wait, gemv1_staged_kernel, read them from
 * global memory after it), 18 = the defaults with every MXFP4 gate/up slot launch expert_glu_bulk_kernel
 * takes on it (the default: several positions, rows of 2048 columns or more; paths 1-17 keep every MXFP4
 * gate/up slot off it, on the kernels they test), 19 / 20 = path 18 with 4 / 3 row tiles a block of that
 * kernel (the default: a slot's tiles split evenly over its share of one wave), 21 = the defaults with every
 * MXFP4 expert down projection with the MoE combine that expert_down_bulk_kernel takes on it (the default:
 * several positions, 2048 rows or more; paths 1-17 keep it off), 22 / 23 = the defaults with the dense bulk
 * kernel's launches in one / two column chunks (dense_bulk_kernel: the bf16 / fp8 GEMVs of several positions, on by
 * default; paths 1-17 keep them on the per-lane-load kernels they test; a shape the chunk count does not divide
 * falls back there), 24 = the defaults with the qkv projection's RoPE and cache store on the dense bulk kernel (the
 * default leaves them to the RoPE kernel after it), 25 = the defaults with the CUDA-core kernel of one position
 * taking the several positions of every plain matrix of at most 1024 rows, a block row each (the default: f32
 * matrices only), 26 = the defaults with none of them (f32 matrices of several positions on the several-position
 * CUDA-core kernel), 27 = the defaults with the RMSNorms of several positions never folded into the GEMVs that read
 * them (GemvNormX), 28 = the defaults with the dense bulk kernel's launches in ten column chunks (more than its
 * last block loads at once), 29 = the defaults without the dense bulk kernel's launches of several waves (the lm
 * head's shape on gemv_mma_kernel). Returns -1 for an unknown path. */
int mimo_cuda_test_set_gemv_path(int path);
#define MIMO_CUDA_TEST_GEMV_PATHS 30
/* Launches of the CUDA-core kernel of one position over a plain matrix's several positions in this process. */
long long mimo_cuda_test_gemv1_positions_launches(void);
/* Launches of the staged GEMV in this process so far (a test checks that its shape took it). */
long long mimo_cuda_test_gemv_staged_launches(void);
/* Launches of expert_glu_bulk_kernel (the MXFP4 gate/up slots on the tensor cores) in this process so far. */
long long mimo_cuda_test_expert_glu_bulk_launches(void);
/* Launches of expert_down_bulk_kernel (the MXFP4 down projection with the MoE combine on the tensor cores). */
long long mimo_cuda_test_expert_down_bulk_launches(void);
/* Launches of dense_bulk_kernel (the bf16 / fp8 GEMVs of several positions on the tensor cores). */
long long mimo_cuda_test_dense_bulk_launches(void);
/* The drafter's block attention kernel (cuda_draft_attn_group_knob): 1 the query heads of a kv head and every block
 * row over blocks of a row a warp (the default), 2 all of them in one block, 0 a block a query head and row. */
void mimo_cuda_test_set_draft_attn_group(int mode);
/* An RMSNorm between two GEMVs at one position, as a step takes it: writer x += W a (x [W rows] in and
 * out), h = rmsnorm(x) * norm_w, reader y = R h (with reader_up: silu(R h) * (U h)). Deferred where
 * the kernels take it (the writer leaves h = x * norm_w and partial sums of squares, the reader scales
 * by the norm's factor; *deferred = 1), else the norm kernel between them (*deferred = 0). */
int mimo_cuda_test_norm_between_gemvs(const mimo_matrix *writer, const float *a, float *x, const float *norm_w,
                                      float eps, const mimo_matrix *reader, const mimo_matrix *reader_up, float *y,
                                      int *deferred, mimo_error *err);
/* A MoE layer's post-attention norm at one position: writer x += W a, h = rmsnorm(x) * norm_w, then the
 * router y_router = R h and the gate/up slots y_slots[j] = silu(G_ids[j] h) * (U_ids[j] h), j < k. Deferred
 * where the kernels take it (the router sums the writer's partials and stores the norm's factor, the slots
 * take it: *deferred = 1), else the norm kernel (*deferred = 0). */
int mimo_cuda_test_norm_to_expert_slots(const mimo_matrix *writer, const float *a, float *x, const float *norm_w,
                                        float eps, const mimo_matrix *router, const mimo_matrix *gate,
                                        const mimo_matrix *up, int n_experts, const int32_t *ids, int k,
                                        float *y_router, float *y_slots, int *deferred, mimo_error *err);
/* The readers of an RMSNorm of several positions, as a step takes them: h_t = rmsnorm(x_t) * norm_w (t < n),
 * then a plain matrix y[t] = W h_t (up and ids NULL), or gate/up expert slots (w and up: n_experts each, ids
 * [n k]) y[t k + j] = silu(G_ids[t k + j] h_t) * (U_ids[t k + j] h_t). The norm folded into the GEMV where its
 * kernel takes it (GemvNormX: *folded = 1), else the norm kernel first (*folded = 0). */
int mimo_cuda_test_gemv_rmsnorm_in(const mimo_matrix *w, const mimo_matrix *up, int n_experts, const int32_t *ids,
                                   int k, const float *x, const float *norm_w, float eps, int n, float *y, int *folded,
                                   mimo_error *err);
/* Where the gate/up slots' kernel does the router's top-k itself (GemvKnobs::route_fused): 0 nowhere, 1 the bulk
 * kernel (the default; a path set by mimo_cuda_test_set_gemv_path restores it), 2 the CUDA-core kernel of one
 * position too. */
void mimo_cuda_test_set_route_fused(int mode);
/* The router's top-k feeding a MoE layer's gate/up expert slots over n positions, as a step takes them: logits
 * [n][n_experts] (bias [n_experts] or NULL) -> ids [n k] and weights [n k] (the route kernel's picks), then
 * y[t k + j] = silu(G_ids[t k + j] h_t) * (U_ids[t k + j] h_t), x [n][cols]; h = x, or with norm_w
 * rmsnorm(x_t) * norm_w folded into the slots (GemvNormX), or with norm_factor ([n]) h_t = norm_factor[t] x_t as
 * a deferred norm's published factor (GemvParams::norm_factor; one position): an error where the slots' kernel
 * does not take them. The top-k done by the slots' kernel itself where it takes it (GemvRouteIn: *fused = 1),
 * else the route kernel first (*fused = 0). */
int mimo_cuda_test_route_to_expert_slots(const mimo_matrix *gate, const mimo_matrix *up, int n_experts,
                                         const float *logits, const float *bias, int k, bool norm_topk, float scaling,
                                         const float *x, const float *norm_w, float eps, const float *norm_factor,
                                         int n, int32_t *ids, float *weights, float *y, int *fused, mimo_error *err);
/* out[t] = rmsnorm(x[t]) * w. */
int mimo_cuda_test_rmsnorm(const float *x, const float *w, int dim, float eps, int n, float *out, mimo_error *err);

typedef struct {
    int n_heads, n_kv, dqk, dv, rope_dim;
    double theta;
    float value_scale;
    int window;          /* 0 = full attention */
    const float *sink;   /* [n_heads] or NULL */
    int max_context;
    bool merge_loops;    /* the merge loops over the splits (cuda_attention_merge_registers_knob 0) */
    int group_heads;     /* splits of several positions: query heads per block (cuda_attention_group_knob), 0 the
                            default, -1 a block per query head */
    int split_keys;      /* the keys per split the rule starts from (cuda_attention_split_keys_knob): 16..256, a
                            power of two, or 0 the default */
} mimo_cuda_test_attn;
/* Feeds P positions of plain-order fused qkv rows ([P][heads*dqk + kv*(dqk+dv)]) in chunks of
 * `chunk` positions through RoPE + KV store + attention; out [P][heads*dv]. */
int mimo_cuda_test_attention(const mimo_cuda_test_attn *a, const float *qkv, int P, int chunk, float *out,
                             mimo_error *err);
/* The fused qkv projection of n positions (w: its rows in storage order, plain row i at storage row
 * row_map[i], NULL = identity; x [n][w->cols]) with the RoPE and KV store of positions pos..pos+n-1:
 * fused = 1 by the GEMV itself (GemvQkvOut; an error where its kernel does not take it), 0 by the GEMV
 * then the qkv_rope_store kernel. q [n][heads*dqk]; k [n][kv*dqk] and v [n][kv*dv] from each position's
 * cache slot. */
int mimo_cuda_test_qkv_projection(const mimo_cuda_test_attn *a, const mimo_matrix *w, const int32_t *row_map,
                                  const float *x, int pos, int n, int fused, float *q, float *k, float *v,
                                  mimo_error *err);
/* The router over n positions: logits [n][E] -> ids [n][k], weights [n][k]. */
int mimo_cuda_test_route(const float *logits, const float *bias, int E, int k, bool norm_topk, float scaling, int n,
                         int32_t *ids, float *weights, mimo_error *err);
/* Which top-k rounds the router takes (cuda_route_redux_knob): 1 integer keys and redux.sync (the default),
 * 0 shuffles of (score, index) pairs. */
void mimo_cuda_test_set_route_redux(int on);
/* Lowest index of each row's maximum. */
int mimo_cuda_test_argmax(const float *x, int v, int n, int32_t *out, mimo_error *err);

/* The device round's sampling pieces (cuda_round.cu) on given rows: with draft_sampled, drafts[i] is
 * drawn from the sampling distribution (temperature, top-k, top-p) of drafter row i + 1 with
 * draft_uniforms[i] (else drafts[] is taken as given); then the target rows [B][V] verify them: greedy
 * at T = 0, else speculative sampling with verify_uniforms in the host loop's order; forced >= 0
 * accepts that many unverified. Outputs the accepted count, the bonus token and how many verify
 * uniforms were used. */
int mimo_cuda_test_round_verify(const float *target_logits, const float *drafter_logits, int B, int V,
                                const mimo_sampling_params *sampling, bool draft_sampled, const double *draft_uniforms, const double *verify_uniforms,
                                int forced, int32_t *drafts, int *accepted, int32_t *bonus, int *uniforms_used,
                                mimo_error *err);

/* Uploads MXFP4 matrix m as the engine does; codes = its code bytes as they lie on the device ([rows][cols / 2],
 * the device byte order of cuda_common.cuh), values = every element decoded there by the slow-path decoder
 * ([rows][cols]). */
int mimo_cuda_test_mxfp4_device_codes(const mimo_matrix *m, uint8_t *codes, float *values, mimo_error *err);

/* Builds the CUDA backend twice, from host weights w (uploaded) and generated on the device from
 * (w->cfg, seed), and compares every weight buffer byte for byte. *mismatches = the number of
 * tensors that differ; the first one is named in first (may be NULL). */
int mimo_cuda_test_synth_matches_upload(const mimo_weights *w, uint64_t seed, const mimo_engine_options *o,
                                        int *mismatches, char *first, size_t first_size, mimo_error *err);

#ifdef __cplusplus
}
#endif

#endif
