// The two halves of one block's work in decode attention over a run of keys, shared by the target's
// attention (cuda_kernels.cu) and the drafter's block attention (cuda_drafter.cu): scores q . k for the
// run's keys, and the weighted sum of their value rows. Both are written so that a block's loads are in
// flight together (a loop of dependent loads was a latency chain in both kernels) and reduce in a fixed
// order (graph replays equal eager runs bit for bit). Every thread of the block calls them.
#pragma once

#include "cuda_common.cuh"

#define ATTN_SCORE_TPK 4   // threads sharing a key's score

// score(j) = q . key_row(j) over D dims for j < nk: ATTN_SCORE_TPK threads share a key, each reading an
// interleaved part of its row with independent 16-byte loads (vec4: D and the row starts are multiples of
// 4 floats), q from shared memory (qs, a broadcast); the parts meet by shuffles; store(j, score) is
// called by one thread per key. Key rows are read with coherent loads (the cache was just written).
template <class KeyRow, class Store>
__device__ __forceinline__ void block_key_scores(const float *qs, int nk, int D, bool vec4, const KeyRow &key_row,
                                                 const Store &store)
{
    const int sub = threadIdx.x % ATTN_SCORE_TPK, kpb = blockDim.x / ATTN_SCORE_TPK;
    for (int j0 = 0; j0 < nk; j0 += kpb) {
        const int j = j0 + threadIdx.x / ATTN_SCORE_TPK;
        float s = 0.0f;
        if (j < nk) {
            const float *k = key_row(j);
            if (vec4) {
                const float4 *k4 = (const float4 *)k;
#pragma unroll 12
                for (int d4 = sub; d4 < D / 4; d4 += ATTN_SCORE_TPK) {
                    const float4 kv = k4[d4];
                    s = fmaf(qs[4 * d4], kv.x, s);
                    s = fmaf(qs[4 * d4 + 1], kv.y, s);
                    s = fmaf(qs[4 * d4 + 2], kv.z, s);
                    s = fmaf(qs[4 * d4 + 3], kv.w, s);
                }
            } else {
                for (int d = sub; d < D; d += ATTN_SCORE_TPK)
                    s = fmaf(qs[d], k[d], s);
            }
        }
#pragma unroll
        for (int o = 1; o < ATTN_SCORE_TPK; o <<= 1)
            s += __shfl_xor_sync(0xFFFFFFFFu, s, o);
        if (j < nk && sub == 0)
            store(j, s);
    }
}

// out[d] = sum_j p[j] * value_row(j)[d] for d < D <= MAXD: warp w takes rows w, w + nw, ...; lane owns
// dims lane, lane + 32, ... (coalesced rows, independent loads in flight); the warps' sums meet in
// vred[warp][d] (shared, [blockDim.x / 32][MAXD]) in warp order.
template <int MAXD, class ValueRow>
__device__ __forceinline__ void block_weighted_rows(const float *p, int nk, int D, const ValueRow &value_row,
                                                    float (*vred)[MAXD], float *out)
{
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
    float acc[MAXD / 32];
#pragma unroll
    for (int c = 0; c < MAXD / 32; c++)
        acc[c] = 0.0f;
#pragma unroll 8
    for (int j = warp; j < nk; j += nw) {
        const float pj = p[j];
        const float *v = value_row(j);
#pragma unroll
        for (int c = 0; c < MAXD / 32; c++) {
            const int d = lane + 32 * c;
            if (d < D)
                acc[c] = fmaf(pj, v[d], acc[c]);
        }
    }
#pragma unroll
    for (int c = 0; c < MAXD / 32; c++) {
        const int d = lane + 32 * c;
        if (d < D)
            vred[warp][d] = acc[c];
    }
    __syncthreads();
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float s = 0.0f;
        for (int w = 0; w < nw; w++)   // fixed order: deterministic
            s += vred[w][d];
        out[d] = s;
    }
}

// v summed over the warp's lanes for lane j's key: v[i] holds the lane's part of key i's sum; at the step of
// offset O a lane with bit O set keeps the upper half of the keys it still holds, so lane j ends with key j.
// (One template step per offset: a loop over the offsets left the inner loop's bound unknown when it was to
// be unrolled, and v went to local memory.)
template <int O, int N> __device__ __forceinline__ void warp_transposed_step(float (&v)[N], int lane)
{
    const bool upper = (lane & O) != 0;
#pragma unroll
    for (int i = 0; i < O; i++) {
        const float send = upper ? v[i] : v[i + O];
        const float keep = upper ? v[i + O] : v[i];
        v[i] = keep + __shfl_xor_sync(0xFFFFFFFFu, send, O);
    }
}
// KEYS = 16: the two half-warps' sums first (16 shuffles), then the butterfly over 16 keys: lanes j and j + 16
// both end with key j.
template <int KEYS> __device__ __forceinline__ float warp_transposed_sum(float (&v)[KEYS], int lane)
{
    static_assert(KEYS == 16 || KEYS == 32, "a warp's transposed sum of 16 or 32 keys");
    if constexpr (KEYS == 32) {
        warp_transposed_step<16>(v, lane);
    } else {
#pragma unroll
        for (int i = 0; i < 16; i++)
            v[i] += __shfl_xor_sync(0xFFFFFFFFu, v[i], 16);
    }
    warp_transposed_step<8>(v, lane);
    warp_transposed_step<4>(v, lane);
    warp_transposed_step<2>(v, lane);
    warp_transposed_step<1>(v, lane);
    return v[0];
}
