// The router's top-k on one warp (sigmoid scores, top-k by score + bias, ties to the lower index, renormalised
// weights): the route kernel's body (cuda_kernels.cu), and the gate/up slots' kernels' where they pick their
// slot's expert themselves (GemvRouteIn: expert_glu_bulk_kernel, gemv1_expert_kernel). One function for all:
// the same picks bit for bit.
#ifndef MIMO_CUDA_ROUTE_TOPK_CUH
#define MIMO_CUDA_ROUTE_TOPK_CUH

#include "cuda_ops.cuh"
#include <math.h>

// Arg-max over a warp: (value, index) pairs, larger value wins, the lower index on ties; every lane
// ends with the winner.
__device__ __forceinline__ void warp_argmax(float &v, int &i)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xFFFFFFFFu, v, o);
        const int oi = __shfl_xor_sync(0xFFFFFFFFu, i, o);
        if (ov > v || (ov == v && oi < i)) {
            v = ov;
            i = oi;
        }
    }
}

// A position's top-k on one warp (the route kernel's block; one warp of a fused gate/up block): k rounds of a
// warp arg-max (no block barriers: the rounds are the router's critical path). Up to ROUTE_REG_EXPERTS experts
// the scores live in registers, loaded all at once (a loop of dependent loads was a latency chain); more experts
// use shared memory. Lane j keeps the j-th pick (k <= 32, cuda_route) and writes it once, normalised, at the end
// (reading the weights back from global memory was one more round trip on the critical path).
#define ROUTE_REG_EXPERTS 512
#define ROUTE_PER_LANE (ROUTE_REG_EXPERTS / 32)

// The order of warp_argmax's comparisons as unsigned keys (redux.sync compares integers): a larger float has
// a larger key, -0 ranks as +0, NaN ranks below every number (key 0: never picked before one), -inf (a
// picked expert) just above NaN.
#define ROUTE_KEY_NONE 0u
#define ROUTE_KEY_NEG_INF 0x007FFFFFu
__device__ __forceinline__ unsigned route_key(float v)
{
    const unsigned b = v == 0.0f ? 0u : __float_as_uint(v);
    return v != v ? ROUTE_KEY_NONE : (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// One round of the top-k on keys: the largest key of the warp, then the lowest expert index holding it
// (ties to the lower index, as warp_argmax): two redux.sync where warp_argmax takes five shuffle pairs.
// -1 where no key ranks above NaN (the caller keeps a valid index).
__device__ __forceinline__ int route_pick_redux(const unsigned (&key)[ROUTE_PER_LANE], int lane)
{
    unsigned best = ROUTE_KEY_NONE;
#pragma unroll
    for (int i = 0; i < ROUTE_PER_LANE; i++)
        best = max(best, key[i]);
    const unsigned top = __reduce_max_sync(0xFFFFFFFFu, best);
    unsigned first = 0xFFFFFFFFu;
#pragma unroll
    for (int i = ROUTE_PER_LANE - 1; i >= 0; i--)   // the lane's lowest index with the top key
        if (key[i] == top)
            first = (unsigned)(lane + 32 * i);
    const unsigned pick = __reduce_min_sync(0xFFFFFFFFu, first);
    return top == ROUTE_KEY_NONE ? -1 : (int)pick;
}

// The top-k of one position's logits [E] (the whole warp): lane j < k ends with the j-th pick in *id and its
// weight (normalised, scaled) in *weight. sel: 2 E floats of shared memory where E > ROUTE_REG_EXPERTS, else
// unused.
__device__ __forceinline__ void route_topk_warp(const float *logits, const float *bias, int E, int k, bool norm_topk,
                                                float scaling, bool redux, float *sel, int *id, float *weight)
{
    const int lane = threadIdx.x % 32;
    float sum = 0.0f, my_w = 0.0f;
    int my_id = 0;
    if (E <= ROUTE_REG_EXPERTS) {
        float score[ROUTE_PER_LANE], biased[ROUTE_PER_LANE];
#pragma unroll
        for (int i = 0; i < ROUTE_PER_LANE; i++) {
            const int e = lane + 32 * i;
            score[i] = e < E ? logits[e] : 0.0f;
            biased[i] = e < E && bias ? __ldg(bias + e) : 0.0f;
        }
#pragma unroll
        for (int i = 0; i < ROUTE_PER_LANE; i++) {
            score[i] = 1.0f / (1.0f + expf(-score[i]));
            biased[i] = lane + 32 * i < E ? score[i] + biased[i] : -INFINITY;
        }
        // redux: each round on integer keys (route_pick_redux); else a scan and warp_argmax of the biased
        // scores. The same picks.
        unsigned key[ROUTE_PER_LANE];
#pragma unroll
        for (int i = 0; i < ROUTE_PER_LANE; i++)
            key[i] = lane + 32 * i < E ? route_key(biased[i]) : ROUTE_KEY_NONE;
        for (int j = 0; j < k; j++) {
            int bi;
            if (redux) {
                bi = route_pick_redux(key, lane);
            } else {
                float bv = -INFINITY;
                bi = 0x7FFFFFFF;
#pragma unroll
                for (int i = 0; i < ROUTE_PER_LANE; i++) {
                    const int e = lane + 32 * i;
                    if (e < E && (biased[i] > bv || (biased[i] == bv && e < bi))) {
                        bv = biased[i];
                        bi = e;
                    }
                }
                warp_argmax(bv, bi);
            }
            if (bi < 0 || bi >= E)
                bi = 0;   // every score NaN: keep a valid index
            float w = 0.0f;
#pragma unroll
            for (int i = 0; i < ROUTE_PER_LANE; i++)
                if (lane + 32 * i == bi) {
                    w = score[i];
                    biased[i] = -INFINITY;
                    key[i] = ROUTE_KEY_NEG_INF;
                }
            w = __shfl_sync(0xFFFFFFFFu, w, bi % 32);
            sum += w;
            if (lane == j) {
                my_id = bi;
                my_w = w;
            }
        }
    } else {
        for (int e = lane; e < E; e += 32) {
            float sc = 1.0f / (1.0f + expf(-logits[e]));
            sel[e] = sc + (bias ? bias[e] : 0.0f);
            sel[E + e] = sc;
        }
        __syncwarp();
        for (int j = 0; j < k; j++) {
            float bv = -INFINITY;
            int bi = 0x7FFFFFFF;
            for (int e = lane; e < E; e += 32) {
                const float v = sel[e];
                if (v > bv || (v == bv && e < bi)) {
                    bv = v;
                    bi = e;
                }
            }
            warp_argmax(bv, bi);
            if (bi < 0 || bi >= E)
                bi = 0;   // every score NaN: keep a valid index
            const float w = sel[E + bi];
            sum += w;
            if (lane == j) {
                my_id = bi;
                my_w = w;
            }
            __syncwarp();
            if (lane == 0)
                sel[bi] = -INFINITY;
            __syncwarp();
        }
    }
    *id = my_id;
    *weight = (norm_topk ? my_w / sum : my_w) * scaling;
}

// route_topk_warp's picks of one position into ids[0..k) and weights[0..k).
__device__ __forceinline__ void route_position(const float *logits, const float *bias, int E, int k, bool norm_topk,
                                               float scaling, bool redux, int32_t *ids, float *weights, float *sel)
{
    int id;
    float w;
    route_topk_warp(logits, bias, E, k, norm_topk, scaling, redux, sel, &id, &w);
    const int lane = threadIdx.x % 32;
    if (lane < k) {
        ids[lane] = id;
        weights[lane] = w;
    }
}

// GemvRouteIn: the expert of slot t k + j, position t's j-th pick, from the router's logits by the calling warp
// (every lane gets it); the first block (blockIdx.x 0) of slot t k stores the position's picks and their weights
// for the down projection.
__device__ __forceinline__ int route_slot_expert(const GemvRouteIn &r, int slot)
{
    const int t = slot / r.k, j = slot % r.k, lane = threadIdx.x % 32;
    const bool store = blockIdx.x == 0 && j == 0;
    int id;
    float w;
    // the top-k's picks come in order: a block that does not store them stops at its own (the first j + 1)
    route_topk_warp(r.logits + (size_t)t * r.E, r.bias, r.E, store ? r.k : j + 1, r.norm_topk != 0, r.scaling,
                    r.redux != 0, nullptr, &id, &w);
    if (store && lane < r.k) {
        r.ids[t * r.k + lane] = id;
        r.weights[t * r.k + lane] = w;
    }
    return __shfl_sync(0xFFFFFFFFu, id, j);
}

#endif
