// Kernels of the CUDA backend: op bodies as __device__ functions over one unit of work, thin
// __global__ wrappers, and the host launchers declared in cuda_ops.cuh.
#include "cuda_attention_block.cuh"
#include "cuda_bulk_copy.cuh"
#include "cuda_ops.cuh"
#include "cuda_route_topk.cuh"

#include <math.h>
#include <stdlib.h>

// ---------------------------------------------------------------------------------------------
// GEMV / small GEMM over 1..16 positions, any storage format. Three paths (launch_gemv_f picks):
//  - gemv_mma_kernel: tensor cores, bf16 / fp8 / mxfp4 weights over 2..16 positions;
//  - gemv1_kernel:    CUDA cores, one position and expert slots (one position each), any format;
//  - gemv_kernel:     CUDA cores, f32 weights over 2..16 positions (inputs staged in shared memory).
// All accumulate in fp32 and sum in a fixed order (eager == graph, run == run, bit for bit).
//
// gemv_kernel: a block of 8 warps owns a tile of 8 * RPW rows; the inputs are staged through shared
// memory in chunks of GEMV_KC columns; each lane streams 16-byte weight vectors (4..32 elements) of
// RPW rows at once, so several loads are in flight before the first use.

#define GEMV_THREADS 256
#define GEMV_WARPS 8
#define GEMV_KC 1024

template <int NT> struct GemvShape { static constexpr int RPW = NT >= 8 ? 2 : 4; };

template <int FMT> struct FmtTraits;
template <> struct FmtTraits<MIMO_WFMT_F32>   { static constexpr int VEC = 4; };
template <> struct FmtTraits<MIMO_WFMT_BF16>  { static constexpr int VEC = 8; };
template <> struct FmtTraits<MIMO_WFMT_FP8>   { static constexpr int VEC = 16; };
template <> struct FmtTraits<MIMO_WFMT_MXFP4> { static constexpr int VEC = 32; };

// Elements per 32-bit word of the 16-byte vector, and their decoding (without the block scale).
template <int FMT> struct WordTraits { static constexpr int EPW = FmtTraits<FMT>::VEC / 4; };

template <int FMT>
__device__ __forceinline__ void decode_word(uint32_t word, float s, float *w)
{
    if (FMT == MIMO_WFMT_F32) {
        w[0] = __uint_as_float(word);
    } else if (FMT == MIMO_WFMT_BF16) {
        w[0] = __uint_as_float(word << 16);
        w[1] = __uint_as_float(word & 0xFFFF0000u);
    } else if (FMT == MIMO_WFMT_FP8) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            __half2_raw h2 = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)(word >> (16 * h)), __NV_E4M3);
            float2 f = __half22float2(__half2(h2));
            w[2 * h] = f.x * s;
            w[2 * h + 1] = f.y * s;
        }
    } else {
#pragma unroll
        for (int b = 0; b < 4; b++) {
            const __half2 k2_14 = __floats2half2_rn(16384.0f, 16384.0f);
            float2 f = __half22float2(__hmul2(dev_e2m1x2_scaled((word >> (8 * b)) & 0xFFu), k2_14));
            w[2 * b] = f.x * s;
            w[2 * b + 1] = f.y * s;
        }
    }
}

// Block scale of the 16-byte vector at column c of row r (1 for f32/bf16).
template <int FMT>
__device__ __forceinline__ float vec_scale(const GpuMat &m, const void *sbase, int r, int c)
{
    if (FMT == MIMO_WFMT_FP8) {
        return __ldg((const float *)sbase + fp8_scale_row(m, r) * m.scale_ld + c / 128);
    }
    if (FMT == MIMO_WFMT_MXFP4)
        return dev_e8m0_to_f32(__ldg((const uint8_t *)sbase + (size_t)r * m.scale_ld + c / 32));
    return 1.0f;
}

// Block reduction (blockDim.x a multiple of 32, <= 1024): lanes by xor shuffles, then the warps'
// results in warp order from shared memory red[32] (every thread gets the result; fixed order).

struct SumOp {
    template <typename T> __device__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
    __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// The warp's lanes by xor shuffles (offsets 16 .. 1): every lane gets the result.
template <typename T, typename Op> __device__ __forceinline__ T warp_reduce(T v, Op op)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = op(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
    return v;
}
__device__ __forceinline__ float warp_sum(float v) { return warp_reduce(v, SumOp()); }
__device__ __forceinline__ float warp_max(float v) { return warp_reduce(v, MaxOp()); }

template <typename T, typename Op> __device__ T block_reduce(T v, T init, Op op, T *red)
{
    v = warp_reduce(v, op);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
    __syncthreads();
    if (lane == 0)
        red[warp] = v;
    __syncthreads();
    T r = init;
    for (int i = 0; i < nw; i++)
        r = op(r, red[i]);
    return r;
}

// The operands of one GEMV unit: the matrices' data and scales and the input row — for an expert slot
// matrix slot_expert[slot] of the sets and input row slot / x_slot_div (read after the unit's pdl_wait:
// the ids come from the router), else the plain matrices and input row slot (a plain launch's units are
// position 0, or with GemvKnobs::gemv1_positions the CUDA-core kernel's one position each).
struct GemvOperands {
    const uint8_t *data, *sdata, *data2, *sdata2;
    const float *x;
};

// picked >= 0: the slot's expert as the kernel picked it (GemvRouteIn), else read from slot_expert.
template <bool GLU> __device__ __forceinline__ GemvOperands gemv_operands(const GemvParams &p, int slot, int picked = -1)
{
    GemvOperands o = {(const uint8_t *)p.w.data, (const uint8_t *)p.w.scales,
                      GLU ? (const uint8_t *)p.w2.data : nullptr, GLU ? (const uint8_t *)p.w2.scales : nullptr, p.x};
    if (p.slot_expert) {
        const int e = picked >= 0 ? picked : p.slot_expert[slot];
        o.data = expert_data(p.w, e);
        o.sdata = expert_scales(p.w, e);
        if (GLU) {
            o.data2 = expert_data(p.w2, e);
            o.sdata2 = expert_scales(p.w2, e);
        }
        o.x += (long long)(slot / p.x_slot_div) * p.ldx;
    } else {
        o.x += (long long)slot * p.ldx;
    }
    return o;
}

// One tile of output rows for one unit (slot in expert mode, else all positions).
template <int FMT, int NT, bool GLU>
__device__ void gemv_tile(const GemvParams &p, int tile, int slot, float *xs)
{
    constexpr int VEC = FmtTraits<FMT>::VEC;
    constexpr int RPW = GemvShape<NT>::RPW;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int row0 = tile * GEMV_WARPS * RPW + warp * RPW;
    const GpuMat &m = p.w;
    const GemvOperands o = gemv_operands<GLU>(p, slot);   // gemv_kernel waited already
    const uint8_t *data = o.data, *sdata = o.sdata, *data2 = o.data2, *sdata2 = o.sdata2;
    const float *x = o.x;
    const int nt = p.slot_expert ? 1 : p.n;
    const size_t row_bytes = gpu_row_bytes(FMT, m.ld);

    float acc[RPW][NT], acc2[GLU ? RPW : 1][GLU ? NT : 1];
#pragma unroll
    for (int r = 0; r < RPW; r++)
#pragma unroll
        for (int t = 0; t < NT; t++) {
            acc[r][t] = 0.0f;
            if (GLU)
                acc2[r][t] = 0.0f;
        }

    for (int k0 = 0; k0 < m.ld; k0 += GEMV_KC) {
        const int kc = min(GEMV_KC, m.ld - k0);
        __syncthreads();
        for (int i = threadIdx.x; i < NT * GEMV_KC; i += GEMV_THREADS) {
            int t = i / GEMV_KC, c = i % GEMV_KC;
            xs[i] = (t < nt && k0 + c < m.cols) ? x[(size_t)t * p.ldx + k0 + c] : 0.0f;
        }
        __syncthreads();
        for (int v = lane; v * VEC < kc; v += 32) {
            const int c = k0 + v * VEC;
            uint4 raw[RPW], raw2[GLU ? RPW : 1];
#pragma unroll
            for (int r = 0; r < RPW; r++) {
                int row = min(row0 + r, m.rows - 1);
                raw[r] = __ldg((const uint4 *)(data + (size_t)row * row_bytes) + c / VEC);
                if (GLU)
                    raw2[r] = __ldg((const uint4 *)(data2 + (size_t)row * row_bytes) + c / VEC);
            }
            constexpr int EPW = WordTraits<FMT>::EPW;
#pragma unroll
            for (int r = 0; r < RPW; r++) {
                const int row = min(row0 + r, m.rows - 1);
                const float s = vec_scale<FMT>(m, sdata, row, c);
                const float s2 = GLU ? vec_scale<FMT>(p.w2, sdata2, row, c) : 1.0f;
                const uint32_t words[4] = {raw[r].x, raw[r].y, raw[r].z, raw[r].w};
                uint32_t words2[4] = {0, 0, 0, 0};
                if (GLU) {
                    words2[0] = raw2[r].x;
                    words2[1] = raw2[r].y;
                    words2[2] = raw2[r].z;
                    words2[3] = raw2[r].w;
                }
                // Wide position counts decode one word at a time to bound the live registers.
#pragma unroll(NT >= 8 ? 1 : 4)
                for (int q = 0; q < 4; q++) {
                    float w[EPW], w2[EPW];
                    decode_word<FMT>(words[q], s, w);
                    if (GLU)
                        decode_word<FMT>(words2[q], s2, w2);
                    const float *xq = xs + (c - k0) + q * EPW;
#pragma unroll
                    for (int t = 0; t < NT; t++) {
#pragma unroll
                        for (int e = 0; e < EPW; e++) {
                            const float xv = xq[t * GEMV_KC + e];
                            acc[r][t] = fmaf(w[e], xv, acc[r][t]);
                            if (GLU)
                                acc2[r][t] = fmaf(w2[e], xv, acc2[r][t]);
                        }
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < RPW; r++) {
        const int row = row0 + r;
#pragma unroll
        for (int t = 0; t < NT; t++) {
            float v = warp_sum(acc[r][t]);
            float v2 = GLU ? warp_sum(acc2[r][t]) : 0.0f;
            if (lane == 0 && row < m.rows && t < nt) {
                size_t yrow = p.slot_expert ? (size_t)slot : (size_t)t;
                float *y = p.y + yrow * p.ldy + row;
                float out = GLU ? silu_f(v) * v2 : v;
                *y = p.accumulate ? *y + out : out;
            }
        }
    }
}

// Single-position variant (1-token decode, every expert slot): no shared memory, no barriers.
// Lanes form groups of `lpr` lanes (a power of two; fewer than 32 when a row holds few vectors,
// e.g. a shard's 256-wide expert down projection); a group owns R rows. Per chunk of columns each
// lane loads its U vectors' inputs into registers once, then streams the R rows' weight vectors
// (R*U 16-byte loads in flight), so x is read once per R rows. x rows must be readable up to the
// matrix's padded width (ld) and finite there (padding weights are zero).
// Row shapes of MXFP4 expert slots: ROWS_WIDE (slots of many positions) one vector per row and twice
// the rows, so each input word serves twice the weight words (the inputs' L1 traffic was twice the
// weights' bytes); ROWS_NARROW half the rows, twice the warps (slots of one position are few warps);
// ROWS_ONEPASS the narrow rows with six vectors per lane, so a 192-vector row (6144 columns) is one pass
// of the loop: every weight load of the lane is in flight at once, and the lane waits for memory once
// instead of once per pass (worth 1.3 % of the 1-token step once the inputs come from shared memory, XS
// below; nothing while their L1 traffic was the bound: results/kernels/README.md, seventh session).
enum { ROWS_DEFAULT = 0, ROWS_WIDE = 1, ROWS_NARROW = 2, ROWS_ONEPASS = 3 };
template <int FMT, int SHAPE = ROWS_DEFAULT> struct Gemv1Shape {
    static constexpr bool FP4 = FMT == MIMO_WFMT_MXFP4;
    static constexpr int U = FP4 ? (SHAPE == ROWS_WIDE ? 1 : SHAPE == ROWS_ONEPASS ? 6 : 2) : (32 / FmtTraits<FMT>::VEC);
    static constexpr int R = FP4 && (SHAPE == ROWS_NARROW || SHAPE == ROWS_ONEPASS) ? 2 : 8 / U;
    __host__ __device__ static constexpr int RG(bool glu) { return glu ? (R > 1 ? R / 2 : 1) : R; }   // rows per lane group
};

// n consecutive fp32 inputs with the widest loads (16-byte aligned when n >= 4). Activations are
// read with coherent loads, never ld.global.nc (__ldg): under programmatic dependent launch the
// kernel starts before its producer has finished, and only coherent loads issued after
// pdl_wait() are guaranteed to see the producer's writes (weights, never written, may use __ldg).
template <int N> __device__ __forceinline__ void load_inputs(const float *p, float *out)
{
#pragma unroll
    for (int i = 0; i < N / 4; i++) {
        const float4 a = ((const float4 *)p)[i];
        out[4 * i] = a.x;
        out[4 * i + 1] = a.y;
        out[4 * i + 2] = a.z;
        out[4 * i + 3] = a.w;
    }
}
template <> __device__ __forceinline__ void load_inputs<2>(const float *p, float *out)
{
    const float2 a = *(const float2 *)p;
    out[0] = a.x;
    out[1] = a.y;
}
template <> __device__ __forceinline__ void load_inputs<1>(const float *p, float *out) { out[0] = *p; }

// acc + the dot product of word q of a 16-byte weight vector (block scale s) with its inputs xq.
// fp8 / mxfp4: the word's elements share the block scale, so their unscaled products are summed (in
// order) and scaled once (mxfp4 codes come out of the half trick as code * 2^-14: 2^14 goes there
// too) — fewer operations per byte on the kernel's bottleneck, the ALU. Other formats: element by
// element in order.
// x * 2^100 for word_dot's MXFP4 decode (exact: a power of two, far from the float range's ends
// for activations).
template <int N> __device__ __forceinline__ void mxfp4_prescale_inputs(float *xq)
{
#pragma unroll
    for (int i = 0; i < N; i++)
        xq[i] *= 1.2676506002282294e30f;   // 2^100
}

// The block scale of gemv1's vector at column c of row r: vec_scale, except MXFP4's, which is the UE8M0
// scale times 2^26 (word_dot's decode leaves the products times 2^-26) built without branches: 2^(e-101)
// is a normal float for every e <= 228 (e = 0 too), e in 229..254 overflows to infinity as the product
// of the two factors did, and 0xFF stays NaN.
template <int FMT>
__device__ __forceinline__ float gemv1_vec_scale(const GpuMat &m, const void *sbase, int r, int c)
{
    if (FMT == MIMO_WFMT_MXFP4) {
        const uint32_t e = __ldg((const uint8_t *)sbase + (size_t)r * m.scale_ld + c / 32);
        const uint32_t bits = min(e + 26u, 255u) << 23;
        return __uint_as_float(e == 255u ? 0x7FC00000u : bits);
    }
    return vec_scale<FMT>(m, sbase, r, c);
}

template <int FMT>
__device__ __forceinline__ float word_dot(const uint4 &v, int q, float s, const float *xq, float acc)
{
    constexpr int EPW = WordTraits<FMT>::EPW;
    const uint32_t word = q == 0 ? v.x : q == 1 ? v.y : q == 2 ? v.z : v.w;
    if (FMT == MIMO_WFMT_FP8) {
        float part = 0.0f;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            __half2_raw h2 = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)(word >> (16 * h)), __NV_E4M3);
            const float2 f = __half22float2(__half2(h2));
            part = fmaf(f.x, xq[2 * h], part);
            part = fmaf(f.y, xq[2 * h + 1], part);
        }
        return fmaf(part, s, acc);
    }
    if (FMT == MIMO_WFMT_MXFP4) {
        // Each code straight into fp32 bits (no half -> float conversions, which run at a quarter of
        // the FMA rate): the inputs come pre-scaled by 2^100 (mxfp4_prescale_inputs), so the products
        // and the partial sum are the exact ones times 2^-26, undone with the block scale.
        float part = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e++)
            part = fmaf(dev_e2m1_f32_scaled(word, e), xq[e], part);
        return fmaf(part, s, acc);   // s carries the 2^26 (gemv1_vec_scale)
    }
    float w[EPW];
    decode_word<FMT>(word, s, w);
#pragma unroll
    for (int e = 0; e < EPW; e++)
        acc = fmaf(w[e], xq[e], acc);
    return acc;
}

// An MXFP4 slot's input row staged in shared memory (XS below): every 32 inputs (one weight vector's) are
// followed by 4 floats of padding, so the 16-byte reads of 8 lanes with consecutive vectors fall in 8
// distinct groups of 4 banks (read from global memory, each lane's 128-byte chunk is its own L1 line, and
// every 16-byte input load of a warp costs 32 L1 wavefronts instead of 4: the slot kernels' bound).
__host__ __device__ constexpr int xs_padded_index(int c) { return c + (c >> 5) * 4; }

// A 16-byte weight vector. In the persistent kernel with an L2 policy of evict-first: the weights are read
// once per step, and streamed through L2 they evicted the kernel's code and the activations, which its
// bodies then fetched from memory (MiMo-V2.5-Pro shard, 1-token step: 7.9 -> 6.4 ms; results/kernels/
// README.md, ninth session). The op kernels keep plain __ldg (there the hint measured +1.5 % on the
// 1-token step, -4 % on `small`).
__device__ __forceinline__ uint4 load_weights(const UnitCtx &u, const uint4 *p)
{
    if (!u.persist)
        return __ldg(p);
    uint64_t policy;
    asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p), "l"(policy));
    return v;
}

// PDL order of a unit: an expert-slot unit (its ids come from the router) waits first and lets its
// dependents launch only after that, so that a kernel launched after it finds the ids final
// (GemvParams::ids_settled); any other unit lets them launch at once and waits later itself.
__device__ __forceinline__ void slot_aware_trigger_wait(const UnitCtx &u, bool slot)
{
    if (slot) {
        u.wait();
        u.trigger();
    } else {
        u.trigger();
    }
}

// The dot products of a lane group's R rows from row0 over the vectors [vbeg, nvec) (lanes of the group
// take every lpr-th vector), summed over the group's lanes: acc (and acc2, the up projection's). Plain
// matrices wait for their predecessor (unit.wait()) after issuing their first weight loads; after_wait()
// runs right after that wait (the caller's reads of what earlier kernels wrote). XS: x is the padded
// shared-memory copy of the input row (xs_padded_index), MXFP4's already scaled
// (mxfp4_prescale_inputs).
// The storage rows of a lane group's R rows: row0 + r, the last row repeated past the matrix's end
// (their loads stay in bounds; nothing is written for them).
struct Gemv1Rows {
    int row0, last;
    __device__ __forceinline__ int operator()(int r) const { return min(row0 + r, last); }
};
// The same from a list (the qkv projection's rotated pairs, GemvQkvOut).
template <int R> struct Gemv1RowList {
    int row[R];
    __device__ __forceinline__ int operator()(int r) const { return row[r]; }
};

template <int FMT, bool GLU, int SHAPE, bool XS = false, typename RowOf, typename AfterWait>
__device__ __forceinline__ void gemv1_rows(const UnitCtx &unit, const GpuMat &m, const GpuMat &m2, const uint8_t *data,
                                           const uint8_t *sdata, const uint8_t *data2, const uint8_t *sdata2,
                                           const float *x, RowOf row_of, int sl, int lpr, int vbeg, int nvec, bool &waited,
                                           float (&acc)[Gemv1Shape<FMT, SHAPE>::RG(GLU)],
                                           float (&acc2)[Gemv1Shape<FMT, SHAPE>::RG(GLU)], AfterWait after_wait)
{
    constexpr int VEC = FmtTraits<FMT>::VEC;
    constexpr int EPW = WordTraits<FMT>::EPW;
    constexpr int U = Gemv1Shape<FMT, SHAPE>::U;
    constexpr int R = Gemv1Shape<FMT, SHAPE>::RG(GLU);
    const size_t row_bytes = gpu_row_bytes(FMT, m.ld);
#pragma unroll
    for (int r = 0; r < R; r++) {
        acc[r] = 0.0f;
        acc2[r] = 0.0f;
    }
    for (int v0 = vbeg + sl; v0 < nvec; v0 += lpr * U) {
        // the R x U weight vectors first: all these loads are in flight before the first use
        uint4 raw[R][U], raw2[GLU ? R : 1][U];
#pragma unroll
        for (int r = 0; r < R; r++) {
            const int row = row_of(r);
            const uint4 *wrow = (const uint4 *)(data + (size_t)row * row_bytes);
            const uint4 *wrow2 = GLU ? (const uint4 *)(data2 + (size_t)row * row_bytes) : nullptr;
#pragma unroll
            for (int u = 0; u < U; u++) {
                const int v = v0 + u * lpr;
                raw[r][u] = v < nvec ? load_weights(unit, wrow + v) : make_uint4(0, 0, 0, 0);
                if (GLU)
                    raw2[r][u] = v < nvec ? load_weights(unit, wrow2 + v) : make_uint4(0, 0, 0, 0);
            }
        }
        if (!waited) {
            unit.wait();
            waited = true;
            after_wait();
        }
        // then, word by word, the inputs (L1-resident: every warp reads the same x) and the math;
        // the accumulation order (u, word, element) is fixed
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int v = v0 + u * lpr;
            const int c = (v < nvec ? v : 0) * VEC;
            float s[R], s2[R];
#pragma unroll
            for (int r = 0; r < R; r++) {
                const int row = row_of(r);
                s[r] = gemv1_vec_scale<FMT>(m, sdata, row, c);
                s2[r] = GLU ? gemv1_vec_scale<FMT>(m2, sdata2, row, c) : 1.0f;
            }
#pragma unroll
            for (int q = 0; q < 4; q++) {
                float xq[EPW];
                load_inputs<EPW>(x + (XS ? xs_padded_index(c) : c) + q * EPW, xq);
                if (FMT == MIMO_WFMT_MXFP4 && !XS)
                    mxfp4_prescale_inputs<EPW>(xq);
#pragma unroll
                for (int r = 0; r < R; r++) {
                    acc[r] = word_dot<FMT>(raw[r][u], q, s[r], xq, acc[r]);
                    if (GLU)
                        acc2[r] = word_dot<FMT>(raw2[r][u], q, s2[r], xq, acc2[r]);
                }
            }
        }
    }
    if (!waited) {   // lanes without columns
        unit.wait();
        waited = true;
        after_wait();
    }
#pragma unroll
    for (int r = 0; r < R; r++) {
        for (int o = lpr / 2; o > 0; o >>= 1) {
            acc[r] += __shfl_xor_sync(0xFFFFFFFFu, acc[r], o);
            if (GLU)
                acc2[r] += __shfl_xor_sync(0xFFFFFFFFu, acc2[r], o);
        }
    }
}

#define GEMV1_COMBINE_RED UNIT_RED_FLOATS   // floats of shared memory: k x rows per warp at most

// Expert slots with the MoE combine (GemvParams::combine_x, not GLU): the block's unit is position t, its
// warps take the position's k slots (warp w: slots w, w + 8, ...) over the same rows, one lane group's R
// rows each, and meet in shared memory: x[t][row] += sum_j w[t k + j] y_j[row], the sum in slot order as
// the combine kernel takes it (the same products, the same result). norm_out: the new x rows also go to
// h times the norm's weights, the block's sum of their squares to partials[t][tile].
template <int FMT, int SHAPE, bool NORM_OUT_ = false, bool EARLY = false>
__device__ void gemv1_combine_tile(const UnitCtx &u, const GemvParams &p, int tile, int t, int lpr, float *red)
{
    constexpr int VEC = FmtTraits<FMT>::VEC;
    constexpr int R = Gemv1Shape<FMT, SHAPE>::RG(false);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int groups = 32 / lpr, rows_per_warp = groups * R, k = p.combine_k;
    const int row_first = tile * rows_per_warp, row0 = row_first + (lane / lpr) * R, sl = lane % lpr;
    const GpuMat &m = p.w;
    const int own_row = row_first + (int)threadIdx.x;
    const bool owns_row = (int)threadIdx.x < rows_per_warp && own_row < m.rows;
    constexpr bool norm_out = NORM_OUT_;
    const float norm_w = norm_out && owns_row ? __ldg(p.norm_out.w + own_row) : 0.0f;   // never written
    // The expert ids come from the router. EARLY (the op kernel given GemvParams::ids_settled: the gate/up
    // slots before it let it launch only after their own wait, so the ids are final): the ids are read
    // and the first pass's weight loads issued before the wait, like a plain matrix's. Else (and always
    // in the persistent kernel, whose units may start before the router's) the wait comes first.
    u.trigger();
    bool waited = !EARLY;
    if constexpr (!EARLY)
        u.wait();
    // x's old values (at most one row per thread: rows_per_warp <= 32 * 8 = GEMV_THREADS), read right after
    // the wait so that the sum below does not wait for them
    float x_old = 0.0f;
    const auto read_old = [&] { x_old = owns_row ? p.combine_x[(size_t)t * p.combine_ldx + own_row] : 0.0f; };
    if constexpr (!EARLY)
        read_old();
    for (int j = warp; j < k; j += GEMV_WARPS) {
        const int slot = t * k + j;
        // before the wait from L2 (ld.global.cg): this SM's L1 may hold an earlier layer's ids
        const int e = EARLY && !waited ? __ldcg(p.slot_expert + slot) : p.slot_expert[slot];
        float acc[R], acc2[R];
        gemv1_rows<FMT, false, SHAPE>(u, m, m, expert_data(m, e), expert_scales(m, e), nullptr, nullptr,
                                      p.x + (long long)slot * p.ldx, Gemv1Rows{row0, m.rows - 1}, sl, lpr, 0,
                                      m.ld / VEC, waited, acc, acc2,
                                      read_old);
        if (sl == 0)
#pragma unroll
            for (int r = 0; r < R; r++)
                red[j * rows_per_warp + (lane / lpr) * R + r] = acc[r];
    }
    if (!waited) {   // warps without a slot (k < 8)
        u.wait();
        waited = true;
        read_old();
    }
    __syncthreads();
    double sq = 0.0;
    if (owns_row) {
        const int i = threadIdx.x;
        float s = 0.0f;
        for (int j = 0; j < k; j++)
            s = fmaf(p.combine_w[t * k + j], red[j * rows_per_warp + i], s);
        const float v = x_old + s;
        p.combine_x[(size_t)t * p.combine_ldx + own_row] = v;
        if constexpr (norm_out) {
            p.norm_out.h[(size_t)t * p.norm_out.ldh + own_row] = v * norm_w;
            sq = (double)v * v;
        }
    }
    if constexpr (norm_out) {   // a deferred norm (GemvNormOut): the block's sum of squares, uniform across the block
        __shared__ double norm_red[GEMV_WARPS];
        sq = block_reduce(sq, 0.0, SumOp(), norm_red);
        if (threadIdx.x == 0)
            p.norm_out.partials[(size_t)t * p.norm_out.partial_stride + tile] = sq;
    }
}

// The deferred RMSNorm (GemvNormIn): this thread's partial sums of position t (at most
// MIMO_CUDA_NORM_PARTIALS_MAX / GEMV_THREADS), loaded right after the wait and used only at the end
// (norm_in_factor), so that no load of the GEMV waits behind them.
constexpr int NORM_PARTIALS_PER_THREAD = MIMO_CUDA_NORM_PARTIALS_MAX / GEMV_THREADS;
__device__ __forceinline__ void norm_in_load(const GemvNormIn &n, int t, double (&v)[NORM_PARTIALS_PER_THREAD])
{
    const double *part = n.partials + (size_t)t * n.partial_stride;
#pragma unroll
    for (int i = 0; i < NORM_PARTIALS_PER_THREAD; i++) {
        const int b = (int)threadIdx.x + i * GEMV_THREADS;
        v[i] = b < n.count ? part[b] : 0.0;   // coherent loads: written by the previous kernel
    }
}

// The norm's factor from the block's partial sums (every thread of the block calls it; two barriers), as
// the norm kernel computes it.
__device__ __forceinline__ float norm_in_factor(const GemvNormIn &n, const double (&v)[NORM_PARTIALS_PER_THREAD],
                                                double *red)
{
    double share = 0.0;
#pragma unroll
    for (int i = 0; i < NORM_PARTIALS_PER_THREAD; i++)
        share += v[i];
    const double ss = block_reduce(share, 0.0, SumOp(), red);
    return rms_norm_factor(ss, n.dim, n.eps);
}

// With ksplit > 1 the block's warps split the columns: warp w takes slice w % ksplit of the row
// group w / ksplit, and the partial sums meet in shared memory (small matrices get enough warps).
// XS (MXFP4 expert slots): the block's input row is first copied into xs (shared memory, padded).
// NORM_IN (a reader of a deferred norm, GemvNormIn): the outputs are scaled by the norm's factor;
// NORM_OUT (its writer, GemvNormOut: one position, accumulating into x, not GLU): the new x rows also go
// to h times the norm's weights, and the block's sum of their squares to partials[tile]. Compile-time
// variants: as runtime branches the norm's registers and barriers cost every other GEMV 0.5-1 us.
// NORM_FACTOR (expert slots of one position reading h, GemvParams::norm_factor): the outputs are scaled by
// the factor an earlier reader published.
enum { NORM_NONE = 0, NORM_IN = 1, NORM_OUT = 2, NORM_FACTOR = 3 };
// QKV: the qkv projection of one position writing q and the cache itself (GemvParams::qkv_out): its
// rows in pair order (qkv_pair_order_row), stored by qkv_store_pair.
// ROUTE (expert slots, GemvRouteIn): after the wait warp 0 picks the slot's expert from the router's logits
// (route_slot_expert) and hands it to the block through shared memory (one barrier).
template <int FMT, bool GLU, int SHAPE, bool XS = false, int NORM = NORM_NONE, bool QKV = false, bool ROUTE = false>
__device__ void gemv1_tile(const UnitCtx &u, const GemvParams &p, int tile, int slot, int lpr, int ksplit, float *red,
                           float *xs = nullptr)
{
    static_assert(NORM != NORM_OUT || !GLU, "a deferred norm's writer accumulates into x (no gate/up pair)");
    static_assert(!QKV || (!GLU && !XS && NORM != NORM_OUT && Gemv1Shape<FMT, SHAPE>::RG(GLU) % 2 == 0),
                  "the qkv epilogue: plain rows, an even number per lane group");
    __shared__ double norm_red[GEMV_WARPS];
    constexpr int VEC = FmtTraits<FMT>::VEC;
    constexpr int R = Gemv1Shape<FMT, SHAPE>::RG(GLU);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int groups = 32 / lpr;
    const int ks = warp % ksplit, wrow = warp / ksplit;
    const int row0 = ((tile * (GEMV_WARPS / ksplit) + wrow) * groups + lane / lpr) * R;
    const int sl = lane % lpr;
    const GpuMat &m = p.w;
    constexpr bool norm_in = NORM == NORM_IN, norm_out = NORM == NORM_OUT;
    // NORM_FACTOR; in the persistent kernel the NORM_NONE body stands in for it (PersistGemv1), with the
    // factor given at run time (in the op kernels u.persist is a null constant: there NORM alone decides)
    const bool norm_factor = NORM == NORM_FACTOR || (NORM == NORM_NONE && u.persist && p.norm_factor);
    // the norm's weights of the rows this lane writes (never written: loaded before the wait)
    float norm_w[norm_out ? R : 1];
    if constexpr (norm_out)
#pragma unroll
        for (int r = 0; r < R; r++)
            norm_w[r] = sl == 0 && ks == 0 && row0 + r < m.rows ? __ldg(p.norm_out.w + row0 + r) : 0.0f;
    // PDL: the expert ids come from the router kernel, so expert mode waits first (and only then lets its
    // dependents launch: slot_aware_trigger_wait); plain matrices issue their first weight loads before
    // waiting (UnitCtx::wait, cuda_common.cuh)
    bool waited = p.slot_expert != nullptr;
    // XS: the padded input row into shared memory, MXFP4's scaled once here rather than by every lane for
    // every word; with settled inputs (GemvParams::x_settled, op kernels) before the wait, off the chain of
    // the expert ids, else after it
    const auto stage_inputs = [&](const float *x) {   // from L2 (ld.global.cg): L1 may hold an earlier layer's h
        for (int i = threadIdx.x; i < m.ld / 4; i += GEMV_THREADS) {
            const float4 f = __ldcg((const float4 *)x + i);
            float v[4] = {f.x, f.y, f.z, f.w};
            if (FMT == MIMO_WFMT_MXFP4)
                mxfp4_prescale_inputs<4>(v);
            *(float4 *)(xs + xs_padded_index(4 * i)) = make_float4(v[0], v[1], v[2], v[3]);
        }
    };
    const bool early_inputs = XS && p.x_settled && !u.persist;
    if constexpr (XS)
        if (early_inputs)
            stage_inputs(p.x + (long long)(slot / p.x_slot_div) * p.ldx);
    slot_aware_trigger_wait(u, waited);
    int picked = -1;
    if constexpr (ROUTE) {
        __shared__ int route_pick;
        if (warp == 0) {
            const int e = route_slot_expert(p.route, slot);
            if (lane == 0)
                route_pick = e;
        }
        __syncthreads();
        picked = route_pick;
    }
    const GemvOperands o = gemv_operands<GLU>(p, slot, picked);
    const int nvec_all = m.ld / VEC;
    const int vbeg = (int)((long long)nvec_all * ks / ksplit);
    const int nvec = (int)((long long)nvec_all * (ks + 1) / ksplit);   // this slice: [vbeg, nvec)
    // the accumulated outputs' old values, read right after the wait so that the write at the end does
    // not wait for them (their lane and warp write them); a deferred norm's partial sums likewise
    float *ybase = p.y + (size_t)slot * p.ldy;   // a slot's row, or a plain launch's position (gemv_operands)
    float y_old[R];
    double norm_part[norm_in ? NORM_PARTIALS_PER_THREAD : 1] = {};
    float factor = 1.0f;
    int qkv_pos = 0;
    auto read_old = [&] {
        if constexpr (QKV)
            qkv_pos = *p.qkv_out.d_len;
#pragma unroll
        for (int r = 0; r < R; r++)
            y_old[r] = p.accumulate && sl == 0 && ks == 0 && row0 + r < m.rows ? ybase[row0 + r] : 0.0f;
        if constexpr (norm_in)
            norm_in_load(p.norm_in, 0, norm_part);   // one position (cuda_gemv_takes_norm_in)
        if (norm_factor)   // stored two kernels back (L2: this SM's L1 may hold an earlier layer's)
            factor = __ldcg(p.norm_factor + slot / p.x_slot_div);
    };
    if (waited)
        read_old();
    float acc[R], acc2[R];
    if constexpr (XS) {   // expert mode: waited above; every thread of the block reaches the barrier
        if (!early_inputs)
            stage_inputs(o.x);
        __syncthreads();
        gemv1_rows<FMT, GLU, SHAPE, true>(u, m, p.w2, o.data, o.sdata, o.data2, o.sdata2, xs, Gemv1Rows{row0, m.rows - 1},
                                          sl, lpr, vbeg, nvec, waited, acc, acc2, read_old);
    } else if constexpr (QKV) {
        Gemv1RowList<R> rows;
#pragma unroll
        for (int r = 0; r < R; r++)
            rows.row[r] = qkv_pair_order_row(p.qkv_out, min(row0 + r, m.rows - 1));
        gemv1_rows<FMT, GLU, SHAPE>(u, m, p.w2, o.data, o.sdata, o.data2, o.sdata2, o.x, rows, sl, lpr, vbeg, nvec, waited,
                                    acc, acc2, read_old);
    } else {
        gemv1_rows<FMT, GLU, SHAPE>(u, m, p.w2, o.data, o.sdata, o.data2, o.sdata2, o.x, Gemv1Rows{row0, m.rows - 1}, sl,
                                    lpr, vbeg, nvec, waited, acc, acc2, read_old);
    }
    float scale = 1.0f;
    if constexpr (norm_in) {
        scale = norm_in_factor(p.norm_in, norm_part, norm_red);
        if (p.norm_in.factor_out && tile == 0 && threadIdx.x == 0)
            *p.norm_in.factor_out = scale;   // for the expert slots after this GEMV (GemvParams::norm_factor)
    }
    if (norm_factor)
        scale = factor;
    if (ksplit > 1) {
        // red[(wrow * groups + group) * R + r][ks] (x2 for the up projection)
        const int slots_per_block = (GEMV_WARPS / ksplit) * groups * R;
        if (sl == 0)
#pragma unroll
            for (int r = 0; r < R; r++) {
                const int i = (wrow * groups + lane / lpr) * R + r;
                red[i * ksplit + ks] = acc[r];
                if (GLU)
                    red[(slots_per_block + i) * ksplit + ks] = acc2[r];
            }
        __syncthreads();
        if (!norm_out && ks != 0)   // the writer's warps all meet in its sum of squares below
            return;
        if (ks == 0 && sl == 0)
#pragma unroll
            for (int r = 0; r < R; r++) {
                const int i = (wrow * groups + lane / lpr) * R + r;
                float a = 0.0f, a2 = 0.0f;
                for (int k = 0; k < ksplit; k++) {   // fixed order: deterministic
                    a += red[i * ksplit + k];
                    if (GLU)
                        a2 += red[(slots_per_block + i) * ksplit + k];
                }
                acc[r] = a;
                acc2[r] = a2;
            }
    }
    if constexpr (QKV) {
#pragma unroll
        for (int r = 0; r < R; r += 2)
            if (ks == 0 && sl == 0 && row0 + r < m.rows) {   // rows even (cuda_gemv_takes_qkv_out): both in range
                float a = acc[r], b = acc[r + 1];
                if (norm_in || norm_factor) {
                    a *= scale;
                    b *= scale;
                }
                qkv_store_pair(p.qkv_out, row0 + r, a, b, 0, qkv_pos);
            }
    } else {
        double sq = 0.0;
#pragma unroll
        for (int r = 0; r < R; r++) {
            const int row = row0 + r;
            if (ks == 0 && sl == 0 && row < m.rows) {
                float a = acc[r], a2 = acc2[r];
                if (norm_in || norm_factor) {
                    a *= scale;
                    a2 *= scale;
                }
                const float out = GLU ? silu_f(a) * a2 : a;
                const float v = p.accumulate ? y_old[r] + out : out;
                ybase[row] = v;
                if constexpr (norm_out) {
                    p.norm_out.h[row] = v * norm_w[r];
                    sq += (double)v * v;
                }
            }
        }
        if constexpr (norm_out) {
            sq = block_reduce(sq, 0.0, SumOp(), norm_red);
            if (threadIdx.x == 0)
                p.norm_out.partials[tile] = sq;
        }
    }
}

// The staged GEMV: a plain bf16 matrix of one position (o_proj, accumulating into x) whose rows stream into
// shared memory before the wait, so that they load while the latency-bound kernels before it (attention,
// merge) run instead of after them. A block is the plain kernel's 16-row tile (gemv1_tile at lpr 32 without
// column split, R = 2 rows a warp there), here 4 warps of 4 rows: each lane takes the plain kernel's vectors
// of a row in its order, and a warp's rows share the lane's inputs, loaded once. (Measured on the
// MiMo-V2.5-Pro shard's 1-token step, results/kernels/README.md, seventeenth session: 8 warps of 2 rows
// re-reading the inputs per pair of rows spent 4.9 us after the wait on the inputs' L1 traffic; 4 warps of 4
// rows 3.71-3.73 ms a step against 3.76-3.78 with 8 of 2, 3.81-3.87 with 2 of 8, 4.11 with 1 of 16, and
// 3.91-3.94 for the plain kernel.) Every row's sum, the writes and the deferred norm's partial (NORM_OUT: the
// tile's pairs of rows summed in the plain block's order) are the plain kernel's bit for bit: the persistent
// kernel, which has no staged body, runs the plain one. Shared memory: the warps' barriers, then their rows
// (gemv1_staged_bytes).
#define GEMV_STAGED_TILE_ROWS 16   // gemv1_tile's rows a block at lpr 32 for bf16: GEMV_WARPS x 2
#define GEMV_STAGED_WARPS 4
#define GEMV_STAGED_BARRIER_BYTES 128
#define GEMV_STAGED_PASSES 2       // passes of the plain kernel's loop at most: rows of up to 256 vectors
template <int NORM>
__global__ void __launch_bounds__(GEMV_STAGED_WARPS * 32) gemv1_staged_kernel(const GemvParams p)
{
    constexpr int FMT = MIMO_WFMT_BF16, VEC = FmtTraits<FMT>::VEC, EPW = WordTraits<FMT>::EPW;
    constexpr int U = Gemv1Shape<FMT>::U, W = GEMV_STAGED_WARPS, RW = GEMV_STAGED_TILE_ROWS / W;
    static_assert(Gemv1Shape<FMT>::RG(false) * GEMV_WARPS == GEMV_STAGED_TILE_ROWS && RW % 2 == 0,
                  "the staged block is the plain kernel's tile, in its pairs of rows");
    extern __shared__ float4 gemv1_staged4[];
    __shared__ double pair_sq[GEMV_STAGED_TILE_ROWS / 2];
    constexpr bool norm_out = NORM == NORM_OUT;
    const GpuMat &m = p.w;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const size_t row_bytes = gpu_row_bytes(FMT, m.ld);
    const int row0 = blockIdx.x * GEMV_STAGED_TILE_ROWS + warp * RW;
    const int nrows = max(0, min(RW, m.rows - row0));
    uint64_t *landed = (uint64_t *)gemv1_staged4 + warp;
    const uint4 *rows = (const uint4 *)((const uint8_t *)gemv1_staged4 + GEMV_STAGED_BARRIER_BYTES +
                                        (size_t)warp * RW * row_bytes);
    if (lane == 0) {
        bulk_barrier_init(landed);
        if (nrows > 0)
            bulk_copy_to_shared((void *)rows, (const uint8_t *)m.data + (size_t)row0 * row_bytes,
                                (uint32_t)(nrows * row_bytes), landed);
    }
    float norm_w[RW];   // never written: loaded before the wait
#pragma unroll
    for (int r = 0; r < RW; r++)
        norm_w[r] = norm_out && lane == 0 && r < nrows ? __ldg(p.norm_out.w + row0 + r) : 0.0f;
    pdl_trigger();
    __syncthreads();   // the barriers' initialisation, for the other lanes
    pdl_wait();
    // the inputs of the lane's vectors (v = lane + 32 (u + U pass), the plain kernel's), the old outputs
    const int nvec = m.ld / VEC;
    float xv[GEMV_STAGED_PASSES][U][VEC];
#pragma unroll
    for (int pass = 0; pass < GEMV_STAGED_PASSES; pass++)
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int v = lane + 32 * (u + U * pass);
            load_inputs<VEC>(p.x + (v < nvec ? v : 0) * VEC, xv[pass][u]);
        }
    float y_old[RW];
#pragma unroll
    for (int r = 0; r < RW; r++)
        y_old[r] = p.accumulate && lane == 0 && r < nrows ? p.y[row0 + r] : 0.0f;
    float acc[RW];
#pragma unroll
    for (int r = 0; r < RW; r++)
        acc[r] = 0.0f;
    if (nrows > 0) {   // warp-uniform
        bulk_barrier_wait(landed, 0);
#pragma unroll
        for (int pass = 0; pass < GEMV_STAGED_PASSES; pass++) {
            if (lane + 32 * U * pass >= nvec)   // the plain kernel's loop ends there for this lane
                break;
#pragma unroll
            for (int u = 0; u < U; u++) {
                const int v = lane + 32 * (u + U * pass);
#pragma unroll
                for (int r = 0; r < RW; r++) {
                    // rows past the matrix's end repeat its last one, vectors past the row are zeros (as there)
                    const uint4 w = v < nvec ? rows[(size_t)min(r, nrows - 1) * nvec + v] : make_uint4(0, 0, 0, 0);
#pragma unroll
                    for (int q = 0; q < 4; q++)
                        acc[r] = word_dot<FMT>(w, q, 1.0f, xv[pass][u] + q * EPW, acc[r]);
                }
            }
        }
    }
    double sq[RW / 2];
#pragma unroll
    for (int r = 0; r < RW; r++) {
        acc[r] = warp_sum(acc[r]);
        if (r % 2 == 0)
            sq[r / 2] = 0.0;
        if (lane == 0 && r < nrows) {
            const float v = p.accumulate ? y_old[r] + acc[r] : acc[r];
            p.y[row0 + r] = v;
            if constexpr (norm_out) {
                p.norm_out.h[row0 + r] = v * norm_w[r];
                sq[r / 2] += (double)v * v;
            }
        }
    }
    if constexpr (norm_out) {   // the plain block's sum: its warps' pairs in order (block_reduce)
        if (lane == 0)
#pragma unroll
            for (int i = 0; i < RW / 2; i++)
                pair_sq[warp * (RW / 2) + i] = sq[i];
        __syncthreads();
        if (threadIdx.x == 0) {
            double t = 0.0;
            for (int i = 0; i < GEMV_STAGED_TILE_ROWS / 2; i++)
                t += pair_sq[i];
            p.norm_out.partials[blockIdx.x] = t;
        }
    }
}

// One unit (row tile, slot) of the CUDA-core GEMV, with the shared memory its runner gives it.
template <int FMT, bool GLU, int SHAPE, bool XS, int NORM, bool QKV = false, bool ROUTE = false>
__device__ void gemv1_unit(const UnitCtx &u, const UnitSmem &sm, const GemvParams &p, int lpr, int ksplit)
{
    gemv1_tile<FMT, GLU, SHAPE, XS, NORM, QKV, ROUTE>(u, p, u.block.x, u.block.y, lpr, ksplit, sm.red, (float *)sm.dyn);
}

// MINB blocks per SM at least (2: <= 128 registers, 3: <= 80): the kernel is latency-bound, and
// occupancy is what hides the latency (launch_gemv1 picks the variant).
template <int FMT, bool GLU, int MINB, int SHAPE, bool XS = false, int NORM = NORM_NONE, bool QKV = false>
__global__ void __launch_bounds__(GEMV_THREADS, MINB) gemv1_kernel(const GemvParams p, int lpr, int ksplit)
{
    __shared__ float red[UNIT_RED_FLOATS];
    extern __shared__ float4 gemv1_xs4[];   // XS: the padded input row (dynamic shared memory)
    gemv1_unit<FMT, GLU, SHAPE, XS, NORM, QKV>(kernel_unit(), UnitSmem{red, gemv1_xs4}, p, lpr, ksplit);
}

// The same kernel for expert slots under its own name: a trace (CUPTI records carry only the kernel's
// name) can then tell the routed experts' work from the dense GEMVs'. ROUTE: the MXFP4 gate/up slots picking
// their experts themselves (GemvRouteIn).
template <int FMT, bool GLU, int MINB, int SHAPE, bool XS = false, int NORM = NORM_NONE, bool ROUTE = false>
__global__ void __launch_bounds__(GEMV_THREADS, MINB) gemv1_expert_kernel(const GemvParams p, int lpr, int ksplit)
{
    __shared__ float red[UNIT_RED_FLOATS];
    extern __shared__ float4 gemv1_xs4[];
    gemv1_unit<FMT, GLU, SHAPE, XS, NORM, false, ROUTE>(kernel_unit(), UnitSmem{red, gemv1_xs4}, p, lpr, ksplit);
}

template <int FMT, int SHAPE, bool NORM_OUT_, bool EARLY = false>
__device__ void gemv1_combine_unit(const UnitCtx &u, const UnitSmem &sm, const GemvParams &p, int lpr)
{
    gemv1_combine_tile<FMT, SHAPE, NORM_OUT_, EARLY>(u, p, u.block.x, u.block.y, lpr, sm.red);
}

// EARLY: the variant for GemvParams::ids_settled (a compile-time one: as a runtime branch its registers
// made the 3-blocks-per-SM build spill).
template <int FMT, int MINB, int SHAPE, bool NORM_OUT_ = false, bool EARLY = false>
__global__ void __launch_bounds__(GEMV_THREADS, MINB) gemv1_combine_kernel(const GemvParams p, int lpr)
{
    __shared__ float red[GEMV1_COMBINE_RED];
    gemv1_combine_unit<FMT, SHAPE, NORM_OUT_, EARLY>(kernel_unit(), UnitSmem{red, nullptr}, p, lpr);
}

// The most dynamic shared memory gemv1_kernel takes without opting in (cudaFuncSetAttribute): 48 KiB
// per block in all, less its static reduction buffers.
#define GEMV1_XS_MAX_BYTES (48 * 1024 - UNIT_RED_FLOATS * (int)sizeof(float) - GEMV_WARPS * (int)sizeof(double))

// Bytes of the padded input row of MXFP4 gate/up slots on the CUDA-core kernel, and whether the slots stage it
// in shared memory (the knob, the size): launch_gemv1_v's choice, which cuda_gemv_takes_route asks too.
static size_t gemv1_slot_xs_bytes(const GemvParams &p) { return (size_t)xs_padded_index(p.w.ld) * sizeof(float); }
static bool gemv1_slots_stage_inputs(const GemvParams &p)
{
    return p.slot_expert && cuda_gemv_knobs().slot_xsmem && gemv1_slot_xs_bytes(p) <= GEMV1_XS_MAX_BYTES;
}

// The device's SMs (cuda_gemv_prepare reads them; the launch shapes aim at a number of warps or blocks
// per SM).
static int gemv_sm_count = 132;

// Lanes per row of a slot launch without column split (whole rows per lane group): the fewest lanes
// (a power of two up to 32) whose U vectors each cover the row's nvec vectors.
static int gemv1_whole_row_lanes(int nvec, int U)
{
    int lpr = 1;
    while (lpr < 32 && lpr * U < nvec)
        lpr *= 2;
    return lpr;
}

// The combine kernel's grid (a block per row tile of one warp's rows and position) and lanes per row.
template <int FMT, int SHAPE> static dim3 gemv1_combine_grid(const GemvParams &p, int *lpr)
{
    *lpr = gemv1_whole_row_lanes(p.w.ld / FmtTraits<FMT>::VEC, Gemv1Shape<FMT, SHAPE>::U);
    const int rows_per_warp = (32 / *lpr) * Gemv1Shape<FMT, SHAPE>::RG(false);
    return dim3((p.w.rows + rows_per_warp - 1) / rows_per_warp, p.n / p.combine_k);
}

// The staged GEMV's shared memory and where it runs: a plain bf16 matrix of one position that the plain
// kernel takes on whole warps per row group without column split (lpr 32, ksplit 1: its tile), in at most
// GEMV_STAGED_PASSES passes of its loop, outside the persistent kernel's recording (which has no staged
// body), with the knob on.
#define GEMV_STAGED_MAX_BYTES (72 * 1024)   // three blocks an SM in the H100's 228 KB
static long long gemv1_staged_launch_count = 0;
long long cuda_gemv_staged_launches() { return gemv1_staged_launch_count; }

static size_t gemv1_staged_bytes(const GemvParams &p)
{
    return GEMV_STAGED_BARRIER_BYTES + (size_t)GEMV_STAGED_TILE_ROWS * gpu_row_bytes(MIMO_WFMT_BF16, p.w.ld);
}

static bool gemv1_staged_takes(const GemvParams &p, int lpr, int ksplit)
{
    constexpr int VEC = FmtTraits<MIMO_WFMT_BF16>::VEC, U = Gemv1Shape<MIMO_WFMT_BF16>::U;
    return cuda_gemv_knobs().gemv_staged && p.w.fmt == MIMO_WFMT_BF16 && !p.slot_expert && !p.combine_x &&
           !p.qkv_out.q && !p.norm_in.partials && !p.norm_factor && p.n == 1 && lpr == 32 && ksplit == 1 &&
           p.w.ld / VEC <= GEMV_STAGED_PASSES * 32 * U && gemv1_staged_bytes(p) <= GEMV_STAGED_MAX_BYTES &&
           !cuda_persist_recorder();
}

// plan != NULL: only the launch's grid into *plan, nothing launched (cuda_gemv_norm_partials).
template <int FMT, bool GLU, int MINB, int SHAPE>
static int launch_gemv1_v(const GemvParams &p, cudaStream_t st, mimo_error *err, dim3 *plan)
{
    constexpr int U = Gemv1Shape<FMT, SHAPE>::U;
    constexpr int R = Gemv1Shape<FMT, SHAPE>::RG(GLU);
    const int nvec = p.w.ld / FmtTraits<FMT>::VEC;
    if constexpr (!GLU) {
        if (p.combine_x) {   // a block per (row tile, position): its warps take the position's slots
            int lpr;
            const dim3 grid = gemv1_combine_grid<FMT, SHAPE>(p, &lpr);
            if (plan) {
                *plan = grid;
                return 0;
            }
            const int early_knob = cuda_gemv_knobs().early_ids;
            const bool early = p.ids_settled && (early_knob == 1 || (early_knob == 2 && p.n == p.combine_k));
            const bool norm = p.norm_out.h != nullptr;
            const auto kernel = norm ? (early ? gemv1_combine_kernel<FMT, MINB, SHAPE, true, true>
                                              : gemv1_combine_kernel<FMT, MINB, SHAPE, true, false>)
                                     : (early ? gemv1_combine_kernel<FMT, MINB, SHAPE, false, true>
                                              : gemv1_combine_kernel<FMT, MINB, SHAPE, false, false>);
            return cuda_launch("gemv1_combine_kernel", err, kernel, grid, dim3(GEMV_THREADS), 0, st, p, lpr);
        }
    }
    // a block row per slot, or per position where the kernel takes a plain matrix's several positions
    // (gemv1_takes_positions: each in the launch shape of one position, so each position's sums are the
    // one-position launch's bit for bit)
    const int units = p.slot_expert || p.n > 1 ? p.n : 1, shape_units = p.slot_expert ? p.n : 1;
    // Split the columns over up to 8 warps until the launch has ~8 warps per SM of work; MXFP4 expert
    // slots keep whole rows (measured, results/kernels/README.md: the split's shared-memory reduction
    // costs more than the parallelism gains there).
    const GemvKnobs &kn = cuda_gemv_knobs();
    const int ksplit_max = kn.gemv1_ksplit_max > 0 ? kn.gemv1_ksplit_max
                                                   : (FMT == MIMO_WFMT_MXFP4 && p.slot_expert ? 1 : GEMV_WARPS);
    int ksplit = 1;
    for (;;) {
        int lpr = 1;
        while (lpr < 32 && lpr * U * ksplit < nvec)
            lpr *= 2;
        long long warps = (long long)(p.w.rows + (32 / lpr) * R - 1) / ((32 / lpr) * R) * ksplit * shape_units;
        if (ksplit >= ksplit_max || warps >= (long long)gemv_sm_count * kn.gemv1_warps_per_sm || nvec / (ksplit * 2) < U)
            break;
        ksplit *= 2;
    }
    int lpr = 1;
    while (lpr < 32 && lpr * U * ksplit < nvec)
        lpr *= 2;
    const int rows_per_block = (GEMV_WARPS / ksplit) * (32 / lpr) * R;
    dim3 grid((p.w.rows + rows_per_block - 1) / rows_per_block, units);
    if (plan) {
        *plan = grid;
        return 0;
    }
    if constexpr (FMT == MIMO_WFMT_BF16 && !GLU && MINB == 2 && SHAPE == ROWS_DEFAULT)
        if (gemv1_staged_takes(p, lpr, ksplit)) {   // the same grid (plan above): a block per tile
            gemv1_staged_launch_count++;
            return cuda_launch("gemv1_staged_kernel", err,
                               p.norm_out.h ? gemv1_staged_kernel<NORM_OUT> : gemv1_staged_kernel<NORM_NONE>, grid,
                               dim3(GEMV_STAGED_WARPS * 32), gemv1_staged_bytes(p), st, p);
        }
    // MXFP4 gate/up slots read their input row from padded shared memory (xs_padded_index)
    if constexpr (FMT == MIMO_WFMT_MXFP4 && GLU) {
        if (gemv1_slots_stage_inputs(p)) {
            const bool route = p.route.logits != nullptr;   // cuda_gemv checked cuda_gemv_takes_route
            const auto kernel = p.norm_factor ? (route ? gemv1_expert_kernel<FMT, GLU, MINB, SHAPE, true, NORM_FACTOR, true>
                                                       : gemv1_expert_kernel<FMT, GLU, MINB, SHAPE, true, NORM_FACTOR>)
                                              : (route ? gemv1_expert_kernel<FMT, GLU, MINB, SHAPE, true, NORM_NONE, true>
                                                       : gemv1_expert_kernel<FMT, GLU, MINB, SHAPE, true>);
            return cuda_launch("gemv1_expert_kernel", err, kernel, grid, dim3(GEMV_THREADS), gemv1_slot_xs_bytes(p), st, p,
                               lpr, ksplit);
        }
    }
    if (p.route.logits)
        return mimo_fail(err, "cuda gemv: the router's top-k on a slot kernel without it");
    if (p.slot_expert)   // expert slots never sum a deferred norm's partials, at most take its factor
        return cuda_launch("gemv1_expert_kernel", err,
                           p.norm_factor ? gemv1_expert_kernel<FMT, GLU, MINB, SHAPE, false, NORM_FACTOR>
                                         : gemv1_expert_kernel<FMT, GLU, MINB, SHAPE>,
                           grid, dim3(GEMV_THREADS), 0, st, p, lpr, ksplit);
    if (p.qkv_out.q) {   // cuda_gemv checked cuda_gemv_takes_qkv_out
        if constexpr (!GLU && FMT != MIMO_WFMT_F32 && MINB == 2 && SHAPE == ROWS_DEFAULT)
            return cuda_launch("gemv1_kernel", err,
                               p.norm_in.partials ? gemv1_kernel<FMT, GLU, MINB, SHAPE, false, NORM_IN, true>
                                                  : gemv1_kernel<FMT, GLU, MINB, SHAPE, false, NORM_NONE, true>,
                               grid, dim3(GEMV_THREADS), 0, st, p, lpr, ksplit);
        return mimo_fail(err, "cuda gemv: the qkv epilogue on a kernel variant without it");
    }
    if (p.norm_in.partials)
        return cuda_launch("gemv1_kernel", err, gemv1_kernel<FMT, GLU, MINB, SHAPE, false, NORM_IN>, grid,
                           dim3(GEMV_THREADS), 0, st, p, lpr, ksplit);
    if constexpr (!GLU)
        if (p.norm_out.h)
            return cuda_launch("gemv1_kernel", err, gemv1_kernel<FMT, GLU, MINB, SHAPE, false, NORM_OUT>, grid,
                               dim3(GEMV_THREADS), 0, st, p, lpr, ksplit);
    return cuda_launch("gemv1_kernel", err, gemv1_kernel<FMT, GLU, MINB, SHAPE>, grid, dim3(GEMV_THREADS), 0, st, p, lpr,
                       ksplit);
}

// Warps of a launch of expert slots (whole rows per warp: no column split) in a row shape of U vectors
// per lane and R rows per lane group.
static long long gemv1_slot_warps(const GemvParams &p, int vec, int U, int R)
{
    const int rows_per_warp = (32 / gemv1_whole_row_lanes(p.w.ld / vec, U)) * R;
    return (long long)(p.w.rows + rows_per_warp - 1) / rows_per_warp * p.n;
}

template <int FMT, bool GLU>
static int launch_gemv1(const GemvParams &p, cudaStream_t st, mimo_error *err, dim3 *plan = nullptr)
{
    // Variants by measurement (H100, results/kernels/README.md): the 128-register build everywhere
    // (the 80-register one spills), MXFP4 gate/up slots of several positions in the wide row shape
    // (gate/up 66.8 vs 69.5 us at 8 tokens, 122 vs 130 at 16; the down projection is slower wide),
    // MXFP4 slots of one position in the narrow one where the default shape leaves fewer than ~12 warps
    // per SM (MiMo-V2.5-Pro's shard: slower alone, 18.3 vs 14.9 us, but the 1-token step is faster with
    // it, 5.77 vs 5.92 ms: more, lighter warps overlap the neighbouring kernels; the `small` preset's
    // slots, with 2-3x the warps, are slower narrow, in the step too). The down projection with the MoE
    // combine on the 80-register build where its grid is more than one wave at 2 blocks per SM (the Pro
    // shard: 1-token step 5.15 -> 5.00 ms, 8 tokens 10.44 -> 10.30; `small`'s one wave is slower on it).
    const GemvKnobs &kn = cuda_gemv_knobs();
    const bool many_fp4_slots = FMT == MIMO_WFMT_MXFP4 && p.slot_expert && p.n > 8;
    const bool wide = FMT == MIMO_WFMT_MXFP4 && p.slot_expert &&
                      (kn.gemv1_wide == 1 || (kn.gemv1_wide < 0 && many_fp4_slots && GLU));
    bool narrow = FMT == MIMO_WFMT_MXFP4 && p.slot_expert && !wide && kn.gemv1_narrow != 0;
    if (narrow && kn.gemv1_narrow < 0)
        narrow = !many_fp4_slots && gemv1_slot_warps(p, FmtTraits<FMT>::VEC, Gemv1Shape<FMT>::U,
                                                      Gemv1Shape<FMT>::RG(GLU)) < (long long)gemv_sm_count * 12;
    int blocks = kn.gemv1_blocks == 3 ? 3 : 2;
    if (p.combine_x && !GLU) {
        int lpr;
        const dim3 g = wide     ? gemv1_combine_grid<FMT, ROWS_WIDE>(p, &lpr)
                       : narrow ? gemv1_combine_grid<FMT, ROWS_NARROW>(p, &lpr)
                                : gemv1_combine_grid<FMT, ROWS_DEFAULT>(p, &lpr);
        blocks = kn.combine_blocks ? kn.combine_blocks
                                   : kn.gemv1_blocks == 3 || (long long)g.x * g.y > 2LL * gemv_sm_count ? 3 : 2;
    }
    if constexpr (FMT == MIMO_WFMT_MXFP4) {
        // gate/up slots of one position in one pass where the narrow shape would loop 2-6 times
        if constexpr (GLU) {
            const int nvec = p.w.ld / FmtTraits<FMT>::VEC;
            const int U1 = Gemv1Shape<FMT, ROWS_ONEPASS>::U;
            if (narrow && kn.gemv1_onepass != 0 && nvec > 32 * Gemv1Shape<FMT, ROWS_NARROW>::U && nvec <= 32 * U1)
                return blocks == 2 ? launch_gemv1_v<FMT, GLU, 2, ROWS_ONEPASS>(p, st, err, plan)
                                   : launch_gemv1_v<FMT, GLU, 3, ROWS_ONEPASS>(p, st, err, plan);
        }
        if (wide)
            return blocks == 2 ? launch_gemv1_v<FMT, GLU, 2, ROWS_WIDE>(p, st, err, plan)
                               : launch_gemv1_v<FMT, GLU, 3, ROWS_WIDE>(p, st, err, plan);
        if (narrow)
            return blocks == 2 ? launch_gemv1_v<FMT, GLU, 2, ROWS_NARROW>(p, st, err, plan)
                               : launch_gemv1_v<FMT, GLU, 3, ROWS_NARROW>(p, st, err, plan);
    }
    return blocks == 2 ? launch_gemv1_v<FMT, GLU, 2, ROWS_DEFAULT>(p, st, err, plan)
                       : launch_gemv1_v<FMT, GLU, 3, ROWS_DEFAULT>(p, st, err, plan);
}

template <int FMT, int NT, bool GLU>
__global__ void __launch_bounds__(GEMV_THREADS) gemv_kernel(const GemvParams p)
{
    const bool slot = p.slot_expert != nullptr;
    slot_aware_trigger_wait(kernel_unit(), slot);
    if (!slot)
        pdl_wait();
    extern __shared__ float4 gemv_smem4[];
    gemv_tile<FMT, NT, GLU>(p, blockIdx.x, blockIdx.y, (float *)gemv_smem4);
}

template <int FMT, int NT, bool GLU>
static int launch_gemv_t(const GemvParams &p, cudaStream_t st, mimo_error *err)
{
    constexpr int RPW = GemvShape<NT>::RPW;
    const int rows_per_block = GEMV_WARPS * RPW;
    dim3 grid((p.w.rows + rows_per_block - 1) / rows_per_block, p.slot_expert ? p.n : 1);
    size_t smem = (size_t)NT * GEMV_KC * sizeof(float);
    return cuda_launch("gemv_kernel", err, gemv_kernel<FMT, NT, GLU>, grid, dim3(GEMV_THREADS), smem, st, p);
}

// Raises the dynamic shared-memory limit of every instantiation (once, before any capture).
template <int FMT, bool GLU>
static int prepare_gemv_f(mimo_error *err)
{
    CUDA_CHECK(cudaFuncSetAttribute(gemv_kernel<FMT, 1, GLU>, cudaFuncAttributeMaxDynamicSharedMemorySize, 1 * GEMV_KC * 4));
    CUDA_CHECK(cudaFuncSetAttribute(gemv_kernel<FMT, 2, GLU>, cudaFuncAttributeMaxDynamicSharedMemorySize, 2 * GEMV_KC * 4));
    CUDA_CHECK(cudaFuncSetAttribute(gemv_kernel<FMT, 4, GLU>, cudaFuncAttributeMaxDynamicSharedMemorySize, 4 * GEMV_KC * 4));
    CUDA_CHECK(cudaFuncSetAttribute(gemv_kernel<FMT, 8, GLU>, cudaFuncAttributeMaxDynamicSharedMemorySize, 8 * GEMV_KC * 4));
    CUDA_CHECK(cudaFuncSetAttribute(gemv_kernel<FMT, 16, GLU>, cudaFuncAttributeMaxDynamicSharedMemorySize, 16 * GEMV_KC * 4));
    return 0;
}

int cuda_gemv_prepare(mimo_error *err)
{
    static bool done = false;
    if (done)
        return 0;
    int device = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&gemv_sm_count, cudaDevAttrMultiProcessorCount, device));
    CUDA_CHECK(cudaFuncSetAttribute(gemv1_staged_kernel<NORM_NONE>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    GEMV_STAGED_MAX_BYTES));
    CUDA_CHECK(cudaFuncSetAttribute(gemv1_staged_kernel<NORM_OUT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    GEMV_STAGED_MAX_BYTES));
    if (cuda_expert_glu_bulk_prepare(err) || cuda_expert_down_bulk_prepare(err) || cuda_dense_bulk_prepare(err) || prepare_gemv_f<MIMO_WFMT_F32, false>(err) ||
        prepare_gemv_f<MIMO_WFMT_F32, true>(err) || prepare_gemv_f<MIMO_WFMT_BF16, false>(err) || prepare_gemv_f<MIMO_WFMT_BF16, true>(err) ||
        prepare_gemv_f<MIMO_WFMT_FP8, false>(err) || prepare_gemv_f<MIMO_WFMT_FP8, true>(err) ||
        prepare_gemv_f<MIMO_WFMT_MXFP4, false>(err) || prepare_gemv_f<MIMO_WFMT_MXFP4, true>(err))
        return -1;
    done = true;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// GEMV on the tensor cores (1..16 positions, expert slots too): mma.sync m16n8k16, fp32 accumulation.
// Operands: fp8 and mxfp4 weights decode exactly into fp16 (fp8 by the hardware conversion; e2m1 codes
// by placing their bits in a half, which is the value times 2^-14); bf16 weights are used as stored.
// The scale of each block (fp8: 128x128 multiplier; mxfp4: power of two per 32; the 2^14) is applied
// to the partial sum of the lane's block. The inputs are split x = hi + lo into two operands of the
// weights' type, so the result keeps ~16 bits of x (fp32-path accuracy, ~1e-6 relative).
// A warp owns 16 rows and a slice of the columns; `ksplit` warps of a block share a row tile and
// meet in shared memory. Each lane loads EL consecutive elements of two rows (16-byte loads); inside
// a block the k order is permuted identically for weights and inputs (a dot product does not care).
template <int FMT> struct MmaShape {
    static constexpr int EL = FMT == MIMO_WFMT_MXFP4 ? 32 : 16;   // elements per lane per block
    static constexpr int BLK = 4 * EL;                             // columns per block
    static constexpr bool F16 = FMT != MIMO_WFMT_BF16;             // operand type
};

__device__ __forceinline__ uint32_t pack2(float lo, float hi, bool f16)
{
    if (f16) {
        __half2 v = __floats2half2_rn(lo, hi);
        return *reinterpret_cast<uint32_t *>(&v);
    }
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}
__device__ __forceinline__ float round_op(float x, bool f16)
{
    return f16 ? __half2float(__float2half_rn(x)) : __bfloat162float(__float2bfloat16_rn(x));
}

// EL elements of one row from column c, as loaded (16 bytes; bf16: 32) plus the mxfp4 scale byte.
struct RowRaw {
    uint4 a, b;
    int e;
};

template <int FMT>
__device__ __forceinline__ void load_row_raw(const uint8_t *row, const uint8_t *scale_row, int c, RowRaw &r)
{
    if (FMT == MIMO_WFMT_BF16) {
        const uint4 *v = (const uint4 *)(row + (size_t)c * 2);
        r.a = __ldg(v);
        r.b = __ldg(v + 1);
    } else if (FMT == MIMO_WFMT_FP8) {
        r.a = __ldg((const uint4 *)(row + c));
    } else {
        r.a = __ldg((const uint4 *)(row + c / 2));
        r.e = __ldg(scale_row + c / 32);
    }
}

__device__ __forceinline__ RowRaw zero_row_raw()
{
    RowRaw r;
    r.a = r.b = make_uint4(0, 0, 0, 0);
    r.e = 127;
    return r;
}

// A loaded row segment as EL/2 operand pairs (element 2i in the low half); fp8 unscaled (its block
// scale is applied to the partial sums), mxfp4 with its power-of-two scale folded in (a fragment
// mixes 4 lanes' 32-column blocks, so it cannot be applied afterwards).
template <int FMT>
__device__ __forceinline__ void decode_row_op(const RowRaw &r, uint32_t *out)
{
    if (FMT == MIMO_WFMT_BF16) {
        out[0] = r.a.x; out[1] = r.a.y; out[2] = r.a.z; out[3] = r.a.w;
        out[4] = r.b.x; out[5] = r.b.y; out[6] = r.b.z; out[7] = r.b.w;
    } else if (FMT == MIMO_WFMT_FP8) {
        const uint32_t w[4] = {r.a.x, r.a.y, r.a.z, r.a.w};
#pragma unroll
        for (int q = 0; q < 4; q++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                out[2 * q + h] = fp8x2_to_half2_bits(w[q] >> (16 * h));
            }
    } else {
        const uint32_t w[4] = {r.a.x, r.a.y, r.a.z, r.a.w};
        const int e = r.e;
        if (e >= 104 && e <= 128) {
            // value = code * 2^(e-127) = (half code * 2^-14) * 2^(e-113): one exact half multiply
            // (every result is a half, subnormals down to 2^-24 included)
            const __half f = __ushort_as_half((unsigned short)((e - 113 + 15) << 10));
            const __half2 f2 = __halves2half2(f, f);
#pragma unroll
            for (int q = 0; q < 4; q++)
#pragma unroll
                for (int b = 0; b < 4; b++) {
                    __half2 h = __hmul2(dev_e2m1x2_scaled((w[q] >> (8 * b)) & 0xFFu), f2);
                    out[4 * q + b] = *reinterpret_cast<uint32_t *>(&h);
                }
        } else {
            // scales outside [2^-23, 2^1]: through float (values outside the half range saturate)
            const float sc = dev_e8m0_to_f32((uint8_t)e) * 16384.0f;
#pragma unroll
            for (int q = 0; q < 4; q++)
#pragma unroll
                for (int b = 0; b < 4; b++) {
                    float2 f = __half22float2(dev_e2m1x2_scaled((w[q] >> (8 * b)) & 0xFFu));
                    __half2 h = __floats2half2_rn(f.x * sc, f.y * sc);
                    out[4 * q + b] = *reinterpret_cast<uint32_t *>(&h);
                }
        }
    }
}

// Scale of the lane's block applied to partial sums: the fp8 block multiplier (a 64-column block
// lies inside one 128-column scale block, so the 4 lanes of a fragment share it); 1 otherwise.
template <int FMT>
__device__ __forceinline__ float block_scale(const GpuMat &M, const uint8_t *sc, int r, int c)
{
    if (FMT == MIMO_WFMT_FP8)
        return vec_scale<FMT>(M, sc, r, c);
    return 1.0f;
}

// PIPE: column blocks whose weights are loaded before the tensor-core work on them (the loads in
// flight per lane: PIPE x 2 rows x matrices).
// QKV: the qkv projection of 2..16 positions writing q and the cache itself (GemvParams::qkv_out), its
// rows in pair order as in gemv1_tile.
// NORMX: a folded RMSNorm (GemvNormX; plain rows): x * w into the MMAs, each lane's sums of x^2 (the warps of
// row tile 0 cover the block's columns once) reduced per position in a fixed order into the factor that
// scales the outputs — over the column chunks through the split workspace as the partial sums.
template <int FMT, int NTL, bool GLU, int PIPE, bool QKV = false, bool NORMX = false>
__device__ void gemv_mma_tile(const GemvParams &p, int tile, int slot, int ksplit, float *red)
{
    static_assert(!QKV || !GLU, "the qkv epilogue: plain rows");
    static_assert(!NORMX || (!GLU && !QKV), "a folded norm: plain rows");
    constexpr int EL = MmaShape<FMT>::EL, BLK = MmaShape<FMT>::BLK, NM = GLU ? 2 : 1;
    constexpr bool F16 = MmaShape<FMT>::F16;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int ks = warp % ksplit, rt = warp / ksplit, tiles_per_block = GEMV_WARPS / ksplit;
    bool waited = p.slot_expert != nullptr;   // PDL as in gemv1_tile
    slot_aware_trigger_wait(kernel_unit(), waited);
    const GemvOperands o = gemv_operands<GLU>(p, slot);
    const uint8_t *data[2] = {o.data, o.data2};
    const uint8_t *sc[2] = {o.sdata, o.sdata2};
    const float *x = o.x;
    const int npos = p.slot_expert ? 1 : p.n;
    float *ybase = p.slot_expert ? p.y + (size_t)slot * p.ldy : p.y;
    const GpuMat *mats[2] = {&p.w, &p.w2};
    const int rows = p.w.rows, ld = p.w.ld;
    const int row_base = (tile * tiles_per_block + rt) * 16;
    int rA = min(row_base + g, rows - 1), rB = min(row_base + g + 8, rows - 1);
    if constexpr (QKV) {
        rA = qkv_pair_order_row(p.qkv_out, rA);
        rB = qkv_pair_order_row(p.qkv_out, rB);
    }
    const size_t row_bytes = gpu_row_bytes(FMT, ld);
    const int nblk = (ld + BLK - 1) / BLK;
    // this block's chunk of the column blocks (gridDim.z chunks: the column split across blocks), then
    // this warp's share of it
    const int kch = gridDim.z, cb0 = nblk * (int)blockIdx.z / kch, cb1 = nblk * ((int)blockIdx.z + 1) / kch;
    const int b0 = cb0 + (cb1 - cb0) * ks / ksplit, b1 = cb0 + (cb1 - cb0) * (ks + 1) / ksplit;
    float acc[NM][NTL][4];
#pragma unroll
    for (int m = 0; m < NM; m++)
#pragma unroll
        for (int nt = 0; nt < NTL; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++)
                acc[m][nt][i] = 0.0f;
    float sq[NTL] = {};   // NORMX: this lane's sums of x^2 of position nt 8 + g
    for (int blk0 = b0; blk0 < b1; blk0 += PIPE) {
        // the raw weights of PIPE blocks first (the loads in flight), then per block: inputs,
        // decode, tensor-core work (only raw vectors stay live across the pipeline: registers)
        RowRaw ra[PIPE][NM], rb[PIPE][NM];
#pragma unroll
        for (int q = 0; q < PIPE; q++) {
            const int c = (blk0 + q) * BLK + t * EL;
            const bool valid = blk0 + q < b1 && c < ld;
#pragma unroll
            for (int m = 0; m < NM; m++) {
                if (valid) {
                    const uint8_t *sa = FMT == MIMO_WFMT_MXFP4 ? sc[m] + (size_t)rA * mats[m]->scale_ld : nullptr;
                    const uint8_t *sb = FMT == MIMO_WFMT_MXFP4 ? sc[m] + (size_t)rB * mats[m]->scale_ld : nullptr;
                    load_row_raw<FMT>(data[m] + (size_t)rA * row_bytes, sa, c, ra[q][m]);
                    load_row_raw<FMT>(data[m] + (size_t)rB * row_bytes, sb, c, rb[q][m]);
                } else {
                    ra[q][m] = rb[q][m] = zero_row_raw();
                }
            }
        }
        if (!waited) {
            pdl_wait();
            waited = true;
        }
#pragma unroll
        for (int q = 0; q < PIPE; q++) {
            // mma.sync needs the whole warp: skip only on the warp-uniform block test; lanes past
            // the row's end feed zeros
            if (blk0 + q >= b1)
                continue;
            const int c = (blk0 + q) * BLK + t * EL;
            const bool valid = c < ld;
            uint32_t xh[NTL][EL / 2], xl[NTL][EL / 2];
            float4 nw[NORMX ? EL / 4 : 1];
            if constexpr (NORMX) {
#pragma unroll
                for (int i = 0; i < EL / 4; i++)
                    nw[i] = valid ? __ldg((const float4 *)(p.norm_x.w + c) + i) : make_float4(0.f, 0.f, 0.f, 0.f);
            }
#pragma unroll
            for (int nt = 0; nt < NTL; nt++) {
                const int pos = nt * 8 + g;
                const bool ok = valid && pos < npos;
                const float4 *xv = (const float4 *)(x + (size_t)(ok ? pos : 0) * p.ldx + (ok ? c : 0));
#pragma unroll
                for (int i = 0; i < EL / 4; i++) {
                    float4 f = ok ? xv[i] : make_float4(0.f, 0.f, 0.f, 0.f);   // coherent (load_inputs)
                    if constexpr (NORMX) {
                        if (rt == 0)
                            sq[nt] += f.x * f.x + f.y * f.y + f.z * f.z + f.w * f.w;
                        f = make_float4(f.x * nw[i].x, f.y * nw[i].y, f.z * nw[i].z, f.w * nw[i].w);
                    }
                    float hx = round_op(f.x, F16), hy = round_op(f.y, F16), hz = round_op(f.z, F16), hw = round_op(f.w, F16);
                    xh[nt][2 * i] = pack2(hx, hy, F16);
                    xh[nt][2 * i + 1] = pack2(hz, hw, F16);
                    xl[nt][2 * i] = pack2(f.x - hx, f.y - hy, F16);
                    xl[nt][2 * i + 1] = pack2(f.z - hz, f.w - hw, F16);
                }
            }
#pragma unroll
            for (int m = 0; m < NM; m++) {
                uint32_t wa[EL / 2], wb[EL / 2];
                decode_row_op<FMT>(ra[q][m], wa);
                decode_row_op<FMT>(rb[q][m], wb);
                // mxfp4: one scale per 32 columns = per lane block; fp8: per 128 (the lane's 16 share it)
                // C element (row, position) of this lane mixes all 4 lanes' columns: the scale must
                // be the block's (uniform over the 4 lanes), never a per-lane one
                const int cblk = (blk0 + q) * BLK;
                const float sA = block_scale<FMT>(*mats[m], sc[m], rA, cblk);
                const float sB = block_scale<FMT>(*mats[m], sc[m], rB, cblk);
                float part[NTL][4];
#pragma unroll
                for (int nt = 0; nt < NTL; nt++)
#pragma unroll
                    for (int i = 0; i < 4; i++)
                        part[nt][i] = 0.0f;
#pragma unroll
                for (int j = 0; j < EL / 4; j++)
#pragma unroll
                    for (int nt = 0; nt < NTL; nt++) {
                        mma_16816<F16>(part[nt], wa[2 * j], wb[2 * j], wa[2 * j + 1], wb[2 * j + 1], xh[nt][2 * j],
                                       xh[nt][2 * j + 1]);
                        mma_16816<F16>(part[nt], wa[2 * j], wb[2 * j], wa[2 * j + 1], wb[2 * j + 1], xl[nt][2 * j],
                                       xl[nt][2 * j + 1]);
                    }
#pragma unroll
                for (int nt = 0; nt < NTL; nt++) {
                    acc[m][nt][0] = fmaf(part[nt][0], sA, acc[m][nt][0]);
                    acc[m][nt][1] = fmaf(part[nt][1], sA, acc[m][nt][1]);
                    acc[m][nt][2] = fmaf(part[nt][2], sB, acc[m][nt][2]);
                    acc[m][nt][3] = fmaf(part[nt][3], sB, acc[m][nt][3]);
                }
            }
        }
    }
    if (!waited)
        pdl_wait();
    // red[warp][m][row 0..15][n 0..8*NTL)
    const int NW = 8 * NTL;
    __shared__ double norm_sq[NORMX ? GEMV_WARPS * 16 : 1];   // [warp of row tile 0][position]
    __shared__ float norm_factors[NORMX ? 16 : 1];
    if constexpr (NORMX) {   // the lane's sums over its 4 column lanes t, then over the warps in order
#pragma unroll
        for (int nt = 0; nt < NTL; nt++) {
            sq[nt] += __shfl_xor_sync(0xFFFFFFFFu, sq[nt], 1);
            sq[nt] += __shfl_xor_sync(0xFFFFFFFFu, sq[nt], 2);
            if (rt == 0 && t == 0)
                norm_sq[ks * 16 + nt * 8 + g] = (double)sq[nt];
        }
    }
#pragma unroll
    for (int m = 0; m < NM; m++)
#pragma unroll
        for (int nt = 0; nt < NTL; nt++) {
            float *r = red + ((size_t)(warp * NM + m) * 16) * NW;
            r[g * NW + nt * 8 + 2 * t] = acc[m][nt][0];
            r[g * NW + nt * 8 + 2 * t + 1] = acc[m][nt][1];
            r[(g + 8) * NW + nt * 8 + 2 * t] = acc[m][nt][2];
            r[(g + 8) * NW + nt * 8 + 2 * t + 1] = acc[m][nt][3];
        }
    __syncthreads();
    const int per_chunk = tiles_per_block * 16 * NW;   // partial sums of one block (per matrix)
    // NORMX: the chunks' sums of x^2 [tile][chunk][position] after the launch's partial sums
    double *ws_norm = (double *)(p.split.partials + (size_t)gridDim.x * kch * NM * per_chunk) + (size_t)tile * kch * NW;
    if (NORMX && threadIdx.x < NW) {
        double sum = 0.0;
        for (int k = 0; k < ksplit; k++)
            sum += norm_sq[k * 16 + threadIdx.x];
        if (kch > 1)
            __stcg(ws_norm + (size_t)blockIdx.z * NW + threadIdx.x, sum);   // before the fence below
        else
            norm_factors[threadIdx.x] = rms_norm_factor(sum, ld, p.norm_x.eps);
    }
    if (kch > 1) {
        // the column split across blocks: this block's partials into the workspace; the tile's last block
        // to arrive sums the chunks in chunk order (deterministic) and finishes below
        float *ws = p.split.partials + (size_t)tile * kch * NM * per_chunk;
        for (int i = threadIdx.x; i < per_chunk; i += blockDim.x) {
            const int tl = i / (16 * NW), row = (i / NW) % 16, n = i % NW;
#pragma unroll
            for (int m = 0; m < NM; m++) {
                float sum = 0.0f;
                for (int k = 0; k < ksplit; k++)
                    sum += red[((size_t)((tl * ksplit + k) * NM + m) * 16 + row) * NW + n];
                ws[((size_t)blockIdx.z * NM + m) * per_chunk + i] = sum;
            }
        }
        __threadfence();
        __syncthreads();
        __shared__ int last_block;
        if (threadIdx.x == 0)
            last_block = atomicAdd(p.split.counters + tile, 1u) == (unsigned)kch - 1;
        __syncthreads();
        if (!last_block)
            return;
        __threadfence();
        if (threadIdx.x == 0)
            p.split.counters[tile] = 0;   // for the next launch (stream order)
        if (NORMX && threadIdx.x < NW)   // in chunk order: deterministic
            norm_factors[threadIdx.x] =
                rms_norm_factor(split_sum_in_order(ws_norm + threadIdx.x, NW, kch), ld, p.norm_x.eps);
    }
    if (NORMX)
        __syncthreads();   // the factors
    // element i (tile tl, row, position n) of matrix m, summed over the warps or chunks
    const auto sum_of = [&](int i, int m) {
        const int tl = i / (16 * NW), row = (i / NW) % 16, n = i % NW;
        float sum = 0.0f;
        if (kch > 1) {   // in chunk order: deterministic
            const float *ws = p.split.partials + (size_t)tile * kch * NM * per_chunk;
            sum = split_sum_in_order(ws + (size_t)m * per_chunk + i, (size_t)NM * per_chunk, kch);
        } else {
            for (int k = 0; k < ksplit; k++)   // fixed order: deterministic
                sum += red[((size_t)((tl * ksplit + k) * NM + m) * 16 + row) * NW + n];
        }
        return sum;
    };
    if constexpr (QKV) {   // (row, row + 1) pairs of one position: rows even (cuda_gemv_takes_qkv_out)
        const int pos0 = *p.qkv_out.d_len;
        for (int i2 = threadIdx.x; i2 < per_chunk / 2; i2 += blockDim.x) {
            const int tl = i2 / (8 * NW), row = 2 * ((i2 / NW) % 8), n = i2 % NW;
            const int grow = (tile * tiles_per_block + tl) * 16 + row;
            if (grow >= rows || n >= npos)
                continue;
            const int i = (tl * 16 + row) * NW + n;
            qkv_store_pair(p.qkv_out, grow, sum_of(i, 0), sum_of(i + NW, 0), n, pos0 + n);
        }
    } else {
        for (int i = threadIdx.x; i < per_chunk; i += blockDim.x) {
            const int tl = i / (16 * NW), row = (i / NW) % 16, n = i % NW;
            const int grow = (tile * tiles_per_block + tl) * 16 + row;
            if (grow >= rows || n >= npos)
                continue;
            float v[NM];
#pragma unroll
            for (int m = 0; m < NM; m++)
                v[m] = sum_of(i, m);
            float out = GLU ? silu_f(v[0]) * v[NM - 1] : v[0];
            if constexpr (NORMX)
                out *= norm_factors[n];
            float *y = ybase + (size_t)n * p.ldy + grow;
            *y = p.accumulate ? *y + out : out;
        }
    }
}

// At least 2 blocks per SM (<= 128 registers), as for gemv1_kernel.
template <int FMT, int NTL, bool GLU, int PIPE, bool QKV = false, bool NORMX = false>
__global__ void __launch_bounds__(GEMV_THREADS, 2) gemv_mma_kernel(const GemvParams p, int ksplit)
{
    __shared__ float red[GEMV_WARPS * (GLU ? 2 : 1) * 16 * 8 * NTL];
    gemv_mma_tile<FMT, NTL, GLU, PIPE, QKV, NORMX>(p, blockIdx.x, blockIdx.y, ksplit, red);
}

// Launch knobs (cuda_ops.cuh), for experiments in the kernel benchmarks: MIMO_CUDA_MMA_PIPE = 2 | 4,
// MIMO_CUDA_MMA_KSPLIT = 1..8, MIMO_CUDA_GEMV1 = 1 | 0, MIMO_CUDA_GEMV1_BLOCKS = 2 | 3 (unset: by
// shape), read on first use; tests set them directly.
// The chain state of cuda_launch (cuda_common.cuh): per host thread, off outside step programs.
static thread_local bool pdl_chain_state = false;
void cuda_pdl_chain(bool previous_is_kernel) { pdl_chain_state = previous_is_kernel; }
bool cuda_pdl_chained() { return pdl_chain_state; }

// An on/off A/B knob: on unless the variable is set to 0.
static int env_switch_on(const char *name)
{
    const char *v = getenv(name);
    return !(v && v[0] == '0');
}

bool cuda_pdl_enabled()
{
    static const int on = env_switch_on("MIMO_CUDA_PDL");
    return on != 0;
}

GemvKnobs &cuda_gemv_knobs()
{
    static GemvKnobs k;
    static bool read = false;
    if (!read) {
        const char *v;
        if ((v = getenv("MIMO_CUDA_MMA_PIPE")) && atoi(v) == 4)
            k.mma_pipe = 4;
        if ((v = getenv("MIMO_CUDA_MMA_KSPLIT")) && atoi(v) >= 1 && atoi(v) <= GEMV_WARPS)
            k.mma_ksplit = atoi(v);
        if ((v = getenv("MIMO_CUDA_GEMV1")))
            k.gemv1 = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_GEMV1_BLOCKS")) && (atoi(v) == 2 || atoi(v) == 3))
            k.gemv1_blocks = atoi(v);
        if ((v = getenv("MIMO_CUDA_GEMV1_WARPS")) && atoi(v) >= 1 && atoi(v) <= 256)
            k.gemv1_warps_per_sm = atoi(v);
        if ((v = getenv("MIMO_CUDA_GEMV1_KSPLIT_MAX")) && atoi(v) >= 1 && atoi(v) <= GEMV_WARPS)
            k.gemv1_ksplit_max = atoi(v);
        if ((v = getenv("MIMO_CUDA_GEMV1_WIDE")))
            k.gemv1_wide = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_GEMV1_NARROW")))
            k.gemv1_narrow = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_GEMV1_ONEPASS")))
            k.gemv1_onepass = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_SLOT_XSMEM")))
            k.slot_xsmem = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_FUSED_COMBINE")))
            k.fused_combine = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_MMA_SPLITK")))
            k.mma_splitk = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_COMBINE_BLOCKS")) && (atoi(v) == 2 || atoi(v) == 3))
            k.combine_blocks = atoi(v);
        if ((v = getenv("MIMO_CUDA_DEFER_NORM")))
            k.defer_norm = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_EARLY_IDS")) && atoi(v) >= 0 && atoi(v) <= 2)
            k.early_ids = atoi(v);
        if ((v = getenv("MIMO_CUDA_NORM_FACTOR")))
            k.norm_factor = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_QKV_ROPE")))
            k.qkv_rope = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_GEMV_STAGED")))
            k.gemv_staged = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_SLOT_BULK")) && atoi(v) >= 0 && atoi(v) <= 2)
            k.slot_bulk = atoi(v);
        if ((v = getenv("MIMO_CUDA_SLOT_BULK_TILES")) && atoi(v) >= 0 && atoi(v) <= 64)
            k.slot_bulk_tiles = atoi(v);
        if ((v = getenv("MIMO_CUDA_DOWN_BULK")) && atoi(v) >= 0 && atoi(v) <= 2)
            k.down_bulk = atoi(v);
        if ((v = getenv("MIMO_CUDA_DOWN_BULK_BLOCKS")) && (atoi(v) == 2 || atoi(v) == 3))
            k.down_bulk_blocks = atoi(v);
        if ((v = getenv("MIMO_CUDA_DENSE_BULK")))
            k.dense_bulk = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_DENSE_BULK_CHUNKS")) && atoi(v) >= 0 && atoi(v) <= 32)
            k.dense_bulk_chunks = atoi(v);
        if ((v = getenv("MIMO_CUDA_DENSE_BULK_QKV")))
            k.dense_bulk_qkv = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_GEMV1_POSITIONS")) && atoi(v) >= 0 && atoi(v) <= 2)
            k.gemv1_positions = atoi(v);
        if ((v = getenv("MIMO_CUDA_NORM_X")))
            k.norm_x = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_ROUTE_EARLY")))
            k.route_early = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_ROUTE_FUSED")) && atoi(v) >= 0 && atoi(v) <= 2)
            k.route_fused = atoi(v);
        if ((v = getenv("MIMO_CUDA_DENSE_BULK_WAVES")))
            k.dense_bulk_waves = atoi(v) ? 1 : 0;
        if ((v = getenv("MIMO_CUDA_DRAFTER_SPLIT")))
            k.drafter_split = atoi(v) ? 1 : 0;
        read = true;
    }
    return k;
}

template <int FMT, int NTL, bool GLU>
static int launch_gemv_mma(const GemvParams &p, cudaStream_t st, mimo_error *err)
{
    const GemvKnobs &kn = cuda_gemv_knobs();
    const int nblk = (p.w.ld + MmaShape<FMT>::BLK - 1) / MmaShape<FMT>::BLK;
    // as many warps on the columns as there are blocks to share (at most the block's 8)
    int ksplit = 1;
    while (ksplit < kn.mma_ksplit && ksplit * 2 <= nblk)
        ksplit *= 2;
    const int rows_per_block = (GEMV_WARPS / ksplit) * 16;
    dim3 grid((p.w.rows + rows_per_block - 1) / rows_per_block, p.slot_expert ? p.n : 1);
    if (kn.mma_splitk && p.split.partials && !p.slot_expert && (int)grid.x * 2 < gemv_sm_count &&
        (int)grid.x <= MIMO_CUDA_SPLITK_COUNTERS) {
        // too few row tiles for the GPU: split the columns over up to 8 blocks per tile, each warp keeping
        // at least one column block (a folded norm's sums of x^2 after the partial sums: two floats a double)
        int kch = gemv_sm_count / (int)grid.x;
        kch = kch > 8 ? 8 : kch;
        const long long per_tile = (long long)(GLU ? 2 : 1) * rows_per_block * 8 * NTL + (p.norm_x.w ? 2 * 8 * NTL : 0);
        while (kch > 1 && (nblk / kch < ksplit || (long long)grid.x * kch * per_tile > MIMO_CUDA_SPLITK_WS_FLOATS))
            kch--;
        grid.z = kch;
    }
    if (p.norm_x.w) {   // cuda_gemv checked cuda_gemv_takes_norm_x
        if constexpr (!GLU)
            if (kn.mma_pipe == 2)
                return cuda_launch("gemv_mma_kernel", err, gemv_mma_kernel<FMT, NTL, GLU, 2, false, true>, grid,
                                   dim3(GEMV_THREADS), 0, st, p, ksplit);
        return mimo_fail(err, "cuda gemv: a folded norm on a kernel variant without it");
    }
    if (p.qkv_out.q) {   // cuda_gemv checked cuda_gemv_takes_qkv_out
        if constexpr (!GLU)
            if (kn.mma_pipe == 2)
                return cuda_launch("gemv_mma_kernel", err, gemv_mma_kernel<FMT, NTL, GLU, 2, true>, grid,
                                   dim3(GEMV_THREADS), 0, st, p, ksplit);
        return mimo_fail(err, "cuda gemv: the qkv epilogue on a kernel variant without it");
    }
    if (kn.mma_pipe == 4)
        return cuda_launch("gemv_mma_kernel", err, gemv_mma_kernel<FMT, NTL, GLU, 4>, grid, dim3(GEMV_THREADS), 0, st, p,
                           ksplit);
    return cuda_launch("gemv_mma_kernel", err, gemv_mma_kernel<FMT, NTL, GLU, 2>, grid, dim3(GEMV_THREADS), 0, st, p, ksplit);
}

// One position (decode step) and expert slots (one position each): the CUDA-core kernel, which
// measured faster than the tensor-core path at these shapes on the H100 for bf16 and fp8, and for
// mxfp4 expert slots at 8 and 16 tokens (within 6% at one token): results/kernels/README.md.
// MIMO_CUDA_GEMV1=0 selects the tensor cores there (cuda_gemv_knobs).
static bool gemv1_runs(const GemvParams &p)
{
    return (p.slot_expert || p.n <= 1) && (p.w.fmt == MIMO_WFMT_F32 || cuda_gemv_knobs().gemv1 != 0);
}

// Whether the CUDA-core kernel takes the MoE combine (GemvParams::combine_x) itself: expert down slots
// on that kernel, k slots per position, k x (at most 128) rows per warp in its shared memory.
static bool gemv1_fuses_combine(const GemvParams &p, bool glu)
{
    return !glu && p.slot_expert && gemv1_runs(p) && cuda_gemv_knobs().fused_combine &&
           p.combine_k * 128 <= GEMV1_COMBINE_RED;
}

// Whether the CUDA-core kernel of one position takes a plain matrix's several positions, a block row each
// (GemvKnobs::gemv1_positions): f32 matrices, which have no tensor-core path (the `small` preset's router, 64
// x 2048: the several-position kernel gives its few row tiles all the positions and no column split, 25.7 us
// at 8 positions against 3.3 at one; results/kernels/README.md, twenty-fifth session), or with the knob at 2
// every format up to GEMV1_POSITIONS_MAX_ROWS rows. The deferred norms and the qkv epilogue stay on the paths
// that take them (one position, or the tensor cores).
#define GEMV1_POSITIONS_MAX_ROWS 1024
static long long gemv1_positions_launch_count = 0;
long long cuda_gemv1_positions_launches() { return gemv1_positions_launch_count; }

static bool gemv1_takes_positions(const GemvParams &p)
{
    const int mode = cuda_gemv_knobs().gemv1_positions;
    return mode != 0 && !p.slot_expert && p.n > 1 && p.n <= 16 && !p.combine_x && !p.qkv_out.q && !p.norm_in.partials &&
           !p.norm_out.h && !p.norm_factor && !p.norm_x.w && !cuda_persist_recorder() &&
           (p.w.fmt == MIMO_WFMT_F32 || (mode == 2 && p.w.rows <= GEMV1_POSITIONS_MAX_ROWS));
}

template <int FMT, bool GLU>
static int launch_gemv_f(const GemvParams &p, cudaStream_t st, mimo_error *err)
{
    int n = p.slot_expert ? 1 : p.n;
    if (cuda_expert_glu_bulk_takes(p, GLU) && gemv1_runs(p))   // it checks the format and the gate/up pair
        return cuda_expert_glu_bulk(p, st, err);
    if (gemv1_runs(p))
        return launch_gemv1<FMT, GLU>(p, st, err);
    if (gemv1_takes_positions(p)) {
        gemv1_positions_launch_count++;
        return launch_gemv1<FMT, GLU>(p, st, err);
    }
    if (cuda_dense_bulk_takes(p, GLU))   // it checks the format, the positions and the shape
        return cuda_dense_bulk(p, st, err);
    if (FMT != MIMO_WFMT_F32 && n <= 8) return launch_gemv_mma<FMT == MIMO_WFMT_F32 ? MIMO_WFMT_BF16 : FMT, 1, GLU>(p, st, err);
    if (FMT != MIMO_WFMT_F32 && n <= 16) return launch_gemv_mma<FMT == MIMO_WFMT_F32 ? MIMO_WFMT_BF16 : FMT, 2, GLU>(p, st, err);
    if (n <= 2) return launch_gemv_t<FMT, 2, GLU>(p, st, err);
    if (n <= 4) return launch_gemv_t<FMT, 4, GLU>(p, st, err);
    if (n <= 8) return launch_gemv_t<FMT, 8, GLU>(p, st, err);
    if (n <= 16) return launch_gemv_t<FMT, 16, GLU>(p, st, err);
    return mimo_fail(err, "cuda gemv: %d positions (at most 16 per call)", n);
}

// The blocks of the CUDA-core kernel's launch for p (no gate/up pair), planned as launch_gemv1 would.
static int gemv1_plan_blocks(const GemvParams &p)
{
    dim3 grid(0);
    mimo_error err;
    int rc = -1;
    switch (p.w.fmt) {
    case MIMO_WFMT_F32: rc = launch_gemv1<MIMO_WFMT_F32, false>(p, 0, &err, &grid); break;
    case MIMO_WFMT_BF16: rc = launch_gemv1<MIMO_WFMT_BF16, false>(p, 0, &err, &grid); break;
    case MIMO_WFMT_FP8: rc = launch_gemv1<MIMO_WFMT_FP8, false>(p, 0, &err, &grid); break;
    case MIMO_WFMT_MXFP4: rc = launch_gemv1<MIMO_WFMT_MXFP4, false>(p, 0, &err, &grid); break;
    }
    return rc == 0 ? (int)grid.x : 0;
}

int cuda_gemv_norm_partials(const GemvParams &p, bool glu)
{
    if (!cuda_gemv_knobs().defer_norm || glu || p.n < 1)
        return 0;
    GemvParams plain = p;   // the bulk down projection, which does not take norm_out, wins where it runs
    plain.norm_out = GemvNormOut{};
    if (cuda_expert_down_bulk_takes(plain, glu) && gemv1_runs(p))
        return 0;
    const bool plain_residual = !p.slot_expert && !p.combine_x && p.accumulate && p.n == 1 && gemv1_runs(p);
    const bool combined = p.combine_x && gemv1_fuses_combine(p, glu);
    if (!plain_residual && !combined)
        return 0;
    const int blocks = gemv1_plan_blocks(p);
    return blocks <= MIMO_CUDA_NORM_PARTIALS_MAX ? blocks : 0;
}

// Expert slots do not take it: measured (results/kernels/README.md, eighth session), the MXFP4 gate/up
// slots' reader variant cost 3.2 us more per layer than the norm kernel it replaced (2.6 us), and the
// post-attention norm of MoE layers stays a kernel; plain readers (qkv, lm head) gain.
bool cuda_gemv_takes_norm_factor(const GemvParams &p, bool glu)
{
    (void)glu;
    const GemvKnobs &kn = cuda_gemv_knobs();
    return kn.defer_norm && kn.norm_factor && p.slot_expert && !p.accumulate && !p.combine_x && p.n == p.x_slot_div &&
           gemv1_runs(p);
}

bool cuda_gemv_takes_qkv_out(const GemvParams &p, const AttnGeom &g)
{
    const GemvKnobs &kn = cuda_gemv_knobs();
    const bool even_rows_per_group = p.w.fmt == MIMO_WFMT_BF16 || p.w.fmt == MIMO_WFMT_FP8 || p.w.fmt == MIMO_WFMT_MXFP4;
    const int rows = (g.n_heads + g.n_kv) * g.dqk + g.n_kv * g.dv;
    // one position: the CUDA-core kernel (lane groups of 2 or 4 rows); 2..16: the tensor-core one (16-row
    // tiles), each in its default build
    // where dense_bulk_kernel runs the plain projection of several positions, only it takes the epilogue
    // (GemvKnobs::dense_bulk_qkv; by default the step keeps the RoPE kernel after it: measured faster)
    GemvParams plain = p;
    plain.qkv_out = GemvQkvOut{};
    const bool dense = p.n > 1 && cuda_dense_bulk_takes(plain, false);
    const bool kernel = p.n == 1 ? gemv1_runs(p) && kn.gemv1_blocks != 3
                                 : p.n <= 16 && !gemv1_runs(p) &&
                                       (dense ? cuda_dense_bulk_takes_qkv(p.qkv_out.row_map, g) : kn.mma_pipe == 2);
    return kn.qkv_rope && kernel && even_rows_per_group && !p.slot_expert && !p.accumulate && !p.combine_x &&
           !p.norm_out.h && p.n >= 1 && p.w.rows == rows && rows % 2 == 0 && g.dqk % 2 == 0 && g.rope_dim % 2 == 0 &&
           g.rope_dim <= g.dqk && (g.rope_dim < 2 || g.inv_freq);
}

// As launch_gemv_f dispatches: the gate/up slots' bulk kernel, or a plain matrix's several positions past the
// CUDA-core kernels (gemv1_takes_positions refuses norm_x) on the dense bulk kernel or else the tensor-core
// kernel's plain build (bf16 / fp8 / MXFP4, the default pipeline, no qkv epilogue) for matrices of at most
// GEMV_MMA_NORM_X_MAX_ROWS rows (the router: there the norm weights' loads beside each step's inputs cost
// less than the norm kernel; on the Pro shard's lm head, 19072 rows, they cost 17 us a step more:
// results/kernels/README.md, twenty-seventh session); p carries the norm_x it asks about, whose weights span
// the matrix's columns.
#define GEMV_MMA_NORM_X_MAX_ROWS 1024
bool cuda_gemv_takes_norm_x(const GemvParams &p, bool glu)
{
    const GemvKnobs &kn = cuda_gemv_knobs();
    if (!p.norm_x.w || kn.norm_x == 0 || p.norm_in.partials || p.norm_out.h || p.norm_factor || p.combine_x ||
        p.accumulate || (uintptr_t)p.norm_x.w % 16)
        return false;
    if (p.slot_expert)
        return glu && cuda_expert_glu_bulk_takes(p, glu) && gemv1_runs(p);
    if (p.n < 2 || p.n > 16 || gemv1_runs(p))
        return false;
    if (cuda_dense_bulk_takes(p, glu))
        return true;
    return !glu && p.w.fmt != MIMO_WFMT_F32 && kn.mma_pipe == 2 && !p.qkv_out.q && p.w.rows <= GEMV_MMA_NORM_X_MAX_ROWS;
}

bool cuda_gemv_takes_route(const GemvParams &p, bool glu)
{
    const GemvRouteIn &r = p.route;
    const GemvKnobs &kn = cuda_gemv_knobs();
    if (!r.logits || !kn.route_fused || p.slot_expert != r.ids || !r.ids || !r.weights || r.E < 1 ||
        r.E > ROUTE_REG_EXPERTS || r.k < 1 || r.k > 32 || r.k > r.E || r.k != p.x_slot_div || p.n % r.k ||
        p.combine_x || !glu || !gemv1_runs(p) || cuda_persist_recorder())
        return false;
    if (cuda_expert_glu_bulk_takes(p, glu))
        return true;
    // with knob 2 the CUDA-core kernel's MXFP4 gate/up slots with their input row in shared memory
    // (launch_gemv1_v): measured slower at one position (results/kernels/README.md, twenty-eighth session)
    return kn.route_fused == 2 && p.w.fmt == MIMO_WFMT_MXFP4 && gemv1_slots_stage_inputs(p) && !p.x_settled &&
           !p.norm_in.partials && !p.norm_out.h && !p.norm_x.w;
}

bool cuda_gemv_waits_first(const GemvParams &p, bool glu)
{
    return cuda_gemv_knobs().route_early && !p.combine_x && cuda_expert_glu_bulk_takes(p, glu) && gemv1_runs(p);
}

bool cuda_gemv_takes_norm_in(const GemvParams &p, bool glu)
{
    (void)glu;
    return cuda_gemv_knobs().defer_norm && !p.slot_expert && !p.accumulate && !p.combine_x && p.n == 1 && gemv1_runs(p);
}

int cuda_gemv(const GemvParams &p, bool glu, cudaStream_t st, mimo_error *err)
{
    if (p.n < 1)
        return 0;
    if (p.norm_out.h) {
        const int partials = cuda_gemv_norm_partials(p, glu);
        if (!partials || p.norm_out.partial_stride < partials)
            return mimo_fail(err, "cuda gemv: a deferred RMSNorm's writer on a kernel that does not take it "
                                  "(cuda_gemv_norm_partials)");
    }
    if (p.norm_in.partials && (p.norm_out.h || !cuda_gemv_takes_norm_in(p, glu) ||
                               p.norm_in.count > MIMO_CUDA_NORM_PARTIALS_MAX))
        return mimo_fail(err, "cuda gemv: a deferred RMSNorm's reader on a kernel that does not take it "
                              "(cuda_gemv_takes_norm_in)");
    if (p.norm_factor && (p.norm_out.h || p.norm_in.partials || !cuda_gemv_takes_norm_factor(p, glu)))
        return mimo_fail(err, "cuda gemv: a deferred RMSNorm's factor on a kernel that does not take it "
                              "(cuda_gemv_takes_norm_factor)");
    if (p.qkv_out.q && !cuda_gemv_takes_qkv_out(p, p.qkv_out.g))
        return mimo_fail(err, "cuda gemv: the qkv projection's RoPE and cache store on a kernel that does not take "
                              "them (cuda_gemv_takes_qkv_out)");
    if (p.norm_x.w && !cuda_gemv_takes_norm_x(p, glu))
        return mimo_fail(err, "cuda gemv: a folded RMSNorm on a kernel that does not take it (cuda_gemv_takes_norm_x)");
    if (p.route.logits && !cuda_gemv_takes_route(p, glu))
        return mimo_fail(err, "cuda gemv: the router's top-k on a kernel that does not take it (cuda_gemv_takes_route)");
    if (p.w.ld % MIMO_CUDA_COL_ALIGN)
        return mimo_fail(err, "cuda gemv: row stride %d not a multiple of %d", p.w.ld, MIMO_CUDA_COL_ALIGN);
    if (glu && (p.w2.fmt != p.w.fmt || p.w2.rows != p.w.rows || p.w2.ld != p.w.ld))
        return mimo_fail(err, "cuda gemv: gate and up matrices differ in format or shape");
    if (p.combine_x) {
        if (glu || !p.slot_expert || p.combine_k < 1 || p.n % p.combine_k)
            return mimo_fail(err, "cuda gemv: the MoE combine needs expert slots, no gate/up pair and k | n (n %d, k %d)",
                             p.n, p.combine_k);
        if (cuda_expert_down_bulk_takes(p, glu) && gemv1_runs(p))
            return cuda_expert_down_bulk(p, st, err);
        if (!gemv1_fuses_combine(p, glu)) {   // the slots into y, then the combine kernel
            GemvParams q = p;
            q.combine_x = nullptr;
            q.combine_w = nullptr;
            return cuda_gemv(q, false, st, err) ||
                   cuda_moe_combine(p.y, p.ldy, p.combine_w, p.combine_k, p.w.rows, p.n / p.combine_k, p.combine_x,
                                    p.combine_ldx, st, err);
        }
    }
    switch (p.w.fmt) {
    case MIMO_WFMT_F32: return glu ? launch_gemv_f<MIMO_WFMT_F32, true>(p, st, err) : launch_gemv_f<MIMO_WFMT_F32, false>(p, st, err);
    case MIMO_WFMT_BF16: return glu ? launch_gemv_f<MIMO_WFMT_BF16, true>(p, st, err) : launch_gemv_f<MIMO_WFMT_BF16, false>(p, st, err);
    case MIMO_WFMT_FP8: return glu ? launch_gemv_f<MIMO_WFMT_FP8, true>(p, st, err) : launch_gemv_f<MIMO_WFMT_FP8, false>(p, st, err);
    case MIMO_WFMT_MXFP4: return glu ? launch_gemv_f<MIMO_WFMT_MXFP4, true>(p, st, err) : launch_gemv_f<MIMO_WFMT_MXFP4, false>(p, st, err);
    }
    return mimo_fail(err, "cuda gemv: unknown weight format %d", p.w.fmt);
}

// ---------------------------------------------------------------------------------------------
// RMSNorm: one position per block. The mean of squares is summed in double like the reference.
// A decode step has one block per position, so the row is read with 16-byte loads that are all in
// flight at once and kept in registers between the sum and the scaling (a loop of dependent loads
// made this a latency chain: ~18 us per row at hidden 6144).

#define RMS_THREADS 1024
#define RMS_VECS 4   // float4s per thread kept in registers: rows up to 16384 floats at 1024 threads

// Waits for the predecessor (u.wait()) itself: the norm weights, never written, are loaded before the
// wait, so that the scaling after the reduction does not wait for them (one L2 round trip less at the end
// of the chain). Any block size (a multiple of 32).
__device__ void rmsnorm_row(const UnitCtx &u, const float *x, const float *w, int dim, float eps, float *out)
{
    __shared__ double red[32];
    const bool vec = (dim % 4) == 0 && (((uintptr_t)x | (uintptr_t)w | (uintptr_t)out) % 16) == 0;
    double ss = 0.0;
    if (vec) {
        const int n4 = dim / 4;
        const float4 *x4 = (const float4 *)x;
        const float4 *w4 = (const float4 *)w;
        float4 g[RMS_VECS];
#pragma unroll
        for (int k = 0; k < RMS_VECS; k++) {
            const int i = threadIdx.x + k * blockDim.x;
            g[k] = i < n4 ? __ldg(w4 + i) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
        u.wait();
        float4 v[RMS_VECS];
#pragma unroll
        for (int k = 0; k < RMS_VECS; k++) {
            const int i = threadIdx.x + k * blockDim.x;
            v[k] = i < n4 ? x4[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);   // coherent: x was just written
        }
#pragma unroll
        for (int k = 0; k < RMS_VECS; k++)
            ss += (double)v[k].x * v[k].x + (double)v[k].y * v[k].y + (double)v[k].z * v[k].z + (double)v[k].w * v[k].w;
        for (int i = threadIdx.x + RMS_VECS * blockDim.x; i < n4; i += blockDim.x) {   // longer rows
            const float4 a = x4[i];
            ss += (double)a.x * a.x + (double)a.y * a.y + (double)a.z * a.z + (double)a.w * a.w;
        }
        ss = block_reduce(ss, 0.0, SumOp(), red);
        const float inv = rms_norm_factor(ss, dim, eps);
        float4 *o4 = (float4 *)out;
#pragma unroll
        for (int k = 0; k < RMS_VECS; k++) {
            const int i = threadIdx.x + k * blockDim.x;
            if (i < n4)
                o4[i] = make_float4(v[k].x * inv * g[k].x, v[k].y * inv * g[k].y, v[k].z * inv * g[k].z,
                                    v[k].w * inv * g[k].w);
        }
        for (int i = threadIdx.x + RMS_VECS * blockDim.x; i < n4; i += blockDim.x) {
            const float4 a = x4[i], g = __ldg(w4 + i);
            o4[i] = make_float4(a.x * inv * g.x, a.y * inv * g.y, a.z * inv * g.z, a.w * inv * g.w);
        }
        return;
    }
    u.wait();
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        ss += (double)x[i] * x[i];
    ss = block_reduce(ss, 0.0, SumOp(), red);
    float inv = rms_norm_factor(ss, dim, eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        out[i] = x[i] * inv * w[i];
}

__device__ void rmsnorm_unit(const UnitCtx &u, const UnitSmem &, const float *x, int ldx, const float *w, int dim,
                             float eps, float *out, int ldo)
{
    u.trigger();
    rmsnorm_row(u, x + (size_t)u.block.x * ldx, w, dim, eps, out + (size_t)u.block.x * ldo);   // waits inside
}

__global__ void __launch_bounds__(RMS_THREADS) rmsnorm_kernel(const float *x, int ldx, const float *w, int dim, float eps,
                                                              float *out, int ldo)
{
    rmsnorm_unit(kernel_unit(), UnitSmem{}, x, ldx, w, dim, eps, out, ldo);
}

int cuda_rmsnorm(const float *x, int ldx, const float *w, int dim, float eps, float *out, int ldo, int n,
                 cudaStream_t st, mimo_error *err)
{
    return cuda_launch("rmsnorm_kernel", err, rmsnorm_kernel, dim3(n), dim3(RMS_THREADS), 0, st, x, ldx, w, dim, eps, out,
                       ldo);
}

// ---------------------------------------------------------------------------------------------
// Embedding rows.

__device__ void embed_unit(const UnitCtx &u, const UnitSmem &, const GpuMat &e, const int32_t *tokens, float *out, int ldo)
{
    u.trigger();
    u.wait();
    const int t = u.block.x;
    int tok = tokens[t];
    for (int c = threadIdx.x; c < e.cols; c += blockDim.x)
        out[(size_t)t * ldo + c] = dev_mat_get(e, (const uint8_t *)e.data, (const uint8_t *)e.scales, tok, c);
}

__global__ void embed_kernel(const GpuMat e, const int32_t *tokens, float *out, int ldo)
{
    embed_unit(kernel_unit(), UnitSmem{}, e, tokens, out, ldo);
}

int cuda_embed(const GpuMat &embed, const int32_t *tokens, int n, float *out, int ldo, cudaStream_t st, mimo_error *err)
{
    return cuda_launch("embed_kernel", err, embed_kernel, dim3(n), dim3(256), 0, st, embed, tokens, out, ldo);
}

// ---------------------------------------------------------------------------------------------
// QKV split + partial NeoX RoPE + KV-cache store. One block per position.

__device__ __forceinline__ float qkv_at(const float *qkv, const int32_t *map, int plain)
{
    return qkv[map ? map[plain] : plain];
}

__device__ void qkv_rope_store_position(const UnitCtx &u, const float *qkv, const int32_t *map, const AttnGeom &g,
                                        int pos, float *q, float *kc, float *vc)
{
    const int half = g.rope_dim / 2;
    const int qn = g.n_heads * g.dqk, kn = g.n_kv * g.dqk, vn = g.n_kv * g.dv;
    const int slot = attn_cache_slot(g, pos);
    float *kslot = kc + (size_t)slot * kn;
    float *vslot = vc + (size_t)slot * vn;
    // the unit's y spreads one position's rows over several blocks
    for (int i = u.block.y * blockDim.x + threadIdx.x; i < qn + kn + vn; i += blockDim.x * u.grid.y) {
        if (i >= qn + kn) {
            int j = i - qn - kn;
            vslot[j] = qkv_at(qkv, map, i) * g.value_scale;
            continue;
        }
        const bool is_q = i < qn;
        const int j = is_q ? i : i - qn;
        const int d = j % g.dqk, head0 = j - d;
        float *dst = is_q ? q + head0 : kslot + head0;
        const int base = (is_q ? 0 : qn) + head0;
        if (d >= g.rope_dim) {
            dst[d] = qkv_at(qkv, map, base + d);
        } else if (d < half) {
            rope_store_pair(g.inv_freq, d, half, pos, qkv_at(qkv, map, base + d), qkv_at(qkv, map, base + d + half), dst);
        }
    }
}

__device__ void qkv_rope_store_unit(const UnitCtx &u, const UnitSmem &, const float *qkv, int ldqkv, const int32_t *map,
                                    const AttnGeom &g, const int *d_len, float *q, float *kc, float *vc)
{
    u.trigger();
    u.wait();
    const int t = u.block.x;
    qkv_rope_store_position(u, qkv + (size_t)t * ldqkv, map, g, *d_len + t, q + (size_t)t * g.n_heads * g.dqk, kc, vc);
}

__global__ void qkv_rope_store_kernel(const float *qkv, int ldqkv, const int32_t *map, const AttnGeom g,
                                      const int *d_len, float *q, float *kc, float *vc)
{
    qkv_rope_store_unit(kernel_unit(), UnitSmem{}, qkv, ldqkv, map, g, d_len, q, kc, vc);
}

int cuda_qkv_rope_store(const float *qkv, int ldqkv, const int32_t *row_map, const AttnGeom &g, const int *d_len,
                        int n, float *q, float *kcache, float *vcache, cudaStream_t st, mimo_error *err)
{
    if (g.rope_dim >= 2 && !g.inv_freq)
        return mimo_fail(err, "cuda qkv_rope_store: the geometry has no RoPE table (cuda_upload_rope_table)");
    return cuda_launch("qkv_rope_store_kernel", err, qkv_rope_store_kernel, dim3(n, 8), dim3(256), 0, st, qkv, ldqkv,
                       row_map, g, d_len, q, kcache, vcache);
}

// ---------------------------------------------------------------------------------------------
// Decode attention. Unit = (query head, position, key split). Each split scores up to split_keys
// keys into shared memory, and writes (max, sum, unnormalised output) for the merge. Short splits
// (32 keys) give a decode step enough blocks and short chains; long spans use longer ones to bound the
// partials (cuda_attention_split_keys).

#define ATTN_MAX_SPLIT 256
#define ATTN_THREADS 256
#define ATTN_MAX_DIM 512

static bool attention_group_fits(const AttnGeom &g, int split_keys);

// Keys per split: 16 for one query position and for the grouped split of several (attention_group_split_kernel),
// 32 for the per-head split of several (measured on whole steps, H100: 1-token step 5.50 ms at 32, 5.77 at 64,
// 6.21 at 128, `small` 0.634 vs 0.668 ms; eighth session, MiMo-V2.5-Pro shard: 16 keys take the 1-token step
// from 4.39 to 4.35 ms and the per-head 8-token one from 10.22 to 10.55; fifteenth session: the grouped 8-token
// step 9.83 at 16 keys against 10.03 at 32; results/kernels/README.md), doubled while the span would need more
// than 128 splits; MIMO_CUDA_ATTN_SPLIT_KEYS=16..256 (a power of two) sets the start for every position count
// (A/B runs).
#define ATTN_FINEST_KEYS 16
static int attention_split_keys_from(int start, int span)
{
    int keys = start;
    while (keys < ATTN_MAX_SPLIT && (span + keys - 1) / keys > 128)
        keys *= 2;
    return keys;
}

int &cuda_attention_split_keys_knob()
{
    static int forced = [] {
        const char *v = getenv("MIMO_CUDA_ATTN_SPLIT_KEYS");
        const int k = v ? atoi(v) : 0;
        return k >= ATTN_FINEST_KEYS && k <= ATTN_MAX_SPLIT && (k & (k - 1)) == 0 ? k : 0;
    }();
    return forced;
}

int cuda_attention_split_keys(const AttnGeom &g, int max_context, int n)
{
    const int forced = cuda_attention_split_keys_knob();
    const int span = g.window > 0 ? g.window : max_context;
    const bool grouped = n > 1 && cuda_attention_group_knob() > 0 && attention_group_fits(g, ATTN_FINEST_KEYS);
    const int start = forced ? forced : n == 1 || grouped ? ATTN_FINEST_KEYS : 32;
    return attention_split_keys_from(start, span);
}

int cuda_attention_splits(const AttnGeom &g, int max_context, int n)
{
    const int span = g.window > 0 ? g.window : max_context;
    const int keys = cuda_attention_split_keys(g, max_context, n);
    return (span + keys - 1) / keys;
}

// Sized for the finest splits a launch of 1..n positions may take, whatever the knobs say when it runs (tests
// switch them after allocating).
size_t cuda_attention_partial_floats(const AttnGeom &g, int max_context, int n)
{
    const int span = g.window > 0 ? g.window : max_context;
    const int keys = attention_split_keys_from(ATTN_FINEST_KEYS, span);
    return (size_t)(n > 1 ? n : 1) * g.n_heads * ((span + keys - 1) / keys) * (2 + g.dv);
}

// The scores, softmax and weighted value rows of one split of nk > 0 keys (q in qs), its partial (max, sum,
// unnormalised output) into part.
template <class KeyRow, class ValueRow>
__device__ __forceinline__ void attention_split_rows(const float *qs, float *ps, float *red, int nk, const AttnGeom &g,
                                                     const KeyRow &key_row, const ValueRow &value_row, float *part)
{
    const float scale = rsqrtf((float)g.dqk);
    block_key_scores(qs, nk, g.dqk, (g.dqk & 3) == 0, key_row, [=](int j, float s) { ps[j] = s * scale; });
    __syncthreads();
    float m = -INFINITY;
    for (int j = threadIdx.x; j < nk; j += blockDim.x)
        m = fmaxf(m, ps[j]);
    m = block_reduce(m, -INFINITY, MaxOp(), red);
    float l = 0.0f;
    for (int j = threadIdx.x; j < nk; j += blockDim.x) {
        float e = expf(ps[j] - m);
        ps[j] = e;
        l += e;
    }
    l = block_reduce(l, 0.0f, SumOp(), red);   // (its barriers also order the ps writes before the reads below)
    __shared__ float vred[ATTN_THREADS / 32][ATTN_MAX_DIM];
    block_weighted_rows<ATTN_MAX_DIM>(ps, nk, g.dv, value_row, vred, part + 2);
    if (threadIdx.x == 0) {
        part[0] = m;
        part[1] = l;
    }
}

// The partial of a split past the causal end (the grid is sized for the longest context): no keys.
__device__ __forceinline__ void attention_split_none(float *part)
{
    if (threadIdx.x == 0) {
        part[0] = -INFINITY;
        part[1] = 0.0f;
    }
}

// The keys [lo, lo + nk) of a split for the query at pos_q (nk <= 0: none, past the causal end).
__device__ __forceinline__ void attention_split_span(const AttnGeom &g, int pos_q, int split, int split_keys, int *lo,
                                                     int *nk)
{
    const int lo_all = g.window > 0 ? max(0, pos_q - g.window + 1) : 0;
    *lo = lo_all + split * split_keys;
    *nk = min(pos_q + 1, *lo + split_keys) - *lo;   // causal
}

__device__ void attention_split(const float *q, const float *kc, const float *vc, const AttnGeom &g, int head,
                                int pos_q, int split, int split_keys, float *part)
{
    __shared__ float qs[ATTN_MAX_DIM];
    __shared__ float ps[ATTN_MAX_SPLIT];
    __shared__ float red[32];
    const int kvh = head / (g.n_heads / g.n_kv);
    int lo, nk;
    attention_split_span(g, pos_q, split, split_keys, &lo, &nk);
    if (nk <= 0) {
        attention_split_none(part);
        return;
    }
    for (int d = threadIdx.x; d < g.dqk; d += blockDim.x)
        qs[d] = q[(size_t)head * g.dqk + d];
    __syncthreads();
    const size_t kstride = (size_t)g.n_kv * g.dqk, vstride = (size_t)g.n_kv * g.dv;
    const int window = g.window, ring = g.ring, dqk = g.dqk, dv = g.dv;
    const auto slot_of = [=](int j) { return window > 0 ? (lo + j) % ring : lo + j; };
    attention_split_rows(
        qs, ps, red, nk, g, [=](int j) { return kc + slot_of(j) * kstride + (size_t)kvh * dqk; },
        [=](int j) { return vc + slot_of(j) * vstride + (size_t)kvh * dv; }, part);
}

// The op kernel's split of at most ATTN_STAGE_KEYS keys of MiMo-V2's widths: its key and value rows go
// through shared memory, those of earlier steps (positions < len) read before the wait — the cache slots of
// the step's own positions are what the qkv projection before it writes, the older ones are final when the
// kernel starts — so that after the wait only q and the step's own rows are loads on the chain. (Its own
// kernel: as one with the longer splits, their registers made the 8-token step slower, ab66-ab68.)
#define ATTN_STAGE_KEYS 16
#define ATTN_STAGE_K4 (ATTN_STAGE_KEYS * 192 / 4)   // float4s: MiMo-V2's qk width
#define ATTN_STAGE_V4 (ATTN_STAGE_KEYS * 128 / 4)   // and v width
__device__ void attention_split_staged(const UnitCtx &u, const float *q, const float *kc, const float *vc,
                                       const AttnGeom &g, int head, int len, int t, int split, int split_keys,
                                       float *part)
{
    __shared__ float qs[ATTN_MAX_DIM];
    __shared__ float ps[ATTN_MAX_SPLIT];
    __shared__ float red[32];
    __shared__ float4 k_stage[ATTN_STAGE_K4], v_stage[ATTN_STAGE_V4];
    constexpr int KR = ATTN_STAGE_K4 / ATTN_THREADS, VR = ATTN_STAGE_V4 / ATTN_THREADS;
    static_assert(KR * ATTN_THREADS == ATTN_STAGE_K4 && VR * ATTN_THREADS == ATTN_STAGE_V4,
                  "the staged rows: whole float4s per thread");
    const int kvh = head / (g.n_heads / g.n_kv);
    int lo, nk;
    attention_split_span(g, len + t, split, split_keys, &lo, &nk);
    const size_t kstride = (size_t)g.n_kv * g.dqk, vstride = (size_t)g.n_kv * g.dv;
    const int window = g.window, ring = g.ring, dqk = g.dqk, dv = g.dv;
    const auto slot_of = [=](int j) { return window > 0 ? (lo + j) % ring : lo + j; };
    const auto key_at = [=](int j) { return kc + slot_of(j) * kstride + (size_t)kvh * dqk; };
    const auto value_at = [=](int j) { return vc + slot_of(j) * vstride + (size_t)kvh * dv; };
    const int dk4 = dqk / 4, dv4 = dv / 4;
    const bool staged = nk > 0 && (dqk & 3) == 0 && (dv & 3) == 0 && nk * dk4 <= ATTN_STAGE_K4 &&
                        nk * dv4 <= ATTN_STAGE_V4 && blockDim.x == ATTN_THREADS;
    const int old_keys = min(max(len - lo, 0), max(nk, 0));   // keys of earlier steps
    float4 kr[KR], vr[VR];
    if (staged) {   // from L2 (ld.global.cg): this SM's L1 may hold a slot's earlier occupant
#pragma unroll
        for (int i = 0; i < KR; i++) {
            const int idx = threadIdx.x + i * ATTN_THREADS, j = idx / dk4;
            if (j < old_keys)
                kr[i] = __ldcg((const float4 *)key_at(j) + idx % dk4);
        }
#pragma unroll
        for (int i = 0; i < VR; i++) {
            const int idx = threadIdx.x + i * ATTN_THREADS, j = idx / dv4;
            if (j < old_keys)
                vr[i] = __ldcg((const float4 *)value_at(j) + idx % dv4);
        }
    }
    u.wait();
    if (nk <= 0) {
        attention_split_none(part);
        return;
    }
    for (int d = threadIdx.x; d < g.dqk; d += blockDim.x)
        qs[d] = q[(size_t)head * g.dqk + d];
    if (staged) {   // the staged rows, and the step's own ones now
#pragma unroll
        for (int i = 0; i < KR; i++) {
            const int idx = threadIdx.x + i * ATTN_THREADS, j = idx / dk4;
            if (j < nk)
                k_stage[idx] = j < old_keys ? kr[i] : __ldcg((const float4 *)key_at(j) + idx % dk4);
        }
#pragma unroll
        for (int i = 0; i < VR; i++) {
            const int idx = threadIdx.x + i * ATTN_THREADS, j = idx / dv4;
            if (j < nk)
                v_stage[idx] = j < old_keys ? vr[i] : __ldcg((const float4 *)value_at(j) + idx % dv4);
        }
    }
    __syncthreads();
    const float *ks = (const float *)k_stage, *vs = (const float *)v_stage;
    attention_split_rows(
        qs, ps, red, nk, g, [=](int j) { return staged ? ks + j * dqk : key_at(j); },
        [=](int j) { return staged ? vs + j * dv : value_at(j); }, part);
}

// STAGE (the op kernel's variant for splits of at most ATTN_STAGE_KEYS keys): the step's length is read
// before the wait (attention_split_staged waits after its early loads): it is set before the step's first
// kernel, which runs in stream order (cuda_run_program), and never written during the step.
template <bool STAGE = false>
__device__ void attention_split_unit(const UnitCtx &u, const UnitSmem &, const float *q, const float *kc, const float *vc,
                                     const AttnGeom &g, const int *d_len, int split_keys, float *partial)
{
    u.trigger();
    const int head = u.block.x, t = u.block.y, split = u.block.z, nsplit = u.grid.z;
    float *part = partial + (((size_t)t * g.n_heads + head) * nsplit + split) * (2 + g.dv);
    if constexpr (STAGE) {
        attention_split_staged(u, q + (size_t)t * g.n_heads * g.dqk, kc, vc, g, head, __ldcg(d_len), t, split,
                               split_keys, part);
    } else {
        u.wait();
        attention_split(q + (size_t)t * g.n_heads * g.dqk, kc, vc, g, head, *d_len + t, split, split_keys, part);
    }
}

// STAGE: the variant for splits of at most ATTN_STAGE_KEYS keys (attention_split_staged).
template <bool STAGE>
__global__ void __launch_bounds__(ATTN_THREADS) attention_split_kernel(const float *q, const float *kc, const float *vc,
                                                                       const AttnGeom g, const int *d_len, int split_keys,
                                                                       float *partial)
{
    attention_split_unit<STAGE>(kernel_unit(), UnitSmem{}, q, kc, vc, g, d_len, split_keys, partial);
}

// ---- The splits of several positions, the query heads of a kv head together ----
// Unit = (ATTN_GROUP_HPW x warps query heads of one kv head, position, key split). The per-head split above
// reads its split's key and value rows once per query head: at 8 positions on MiMo-V2.5-Pro's shard (16 query
// heads share its one kv head) that is 16 x 40 KB from L2 per (position, split). Here the block stages the
// rows once in shared memory (those of earlier steps before its wait, as attention_split_staged does) and each
// warp scores its heads against them: lane i holds the query's float4s i, i + 32, ..., so every key's dot
// product is a sum over the lanes, and a transposed butterfly of the 32 keys' partial sums leaves key j's score
// in lane j (31 shuffles for 32 keys); softmax within the warp, the value rows weighted by the shuffled
// probabilities. The same partials (max, sum, unnormalised output) for the merge, summed in another order.
// Splits of at most ATTN_GROUP_KEYS keys take attention_group_split_kernel (one tile); longer ones (spans past
// 4096 keys) attention_group_tiled_kernel, tiles of ATTN_GROUP_KEYS keys with a running max / sum / output
// (their own kernel: as one build with the short splits, the tiles' registers made the 8-token step at context
// 256 2 % slower, ab82 / ab83).
#define ATTN_GROUP_KEYS 32
#define ATTN_GROUP_HPW 2               // query heads per warp: each staged row read serves both
#define ATTN_GROUP_MAX_WARPS 8
#define ATTN_GROUP_CHUNKS 2            // float4s per lane of a query / value row: widths up to 256
#define ATTN_GROUP_ROW4 (320 / 4)      // float4s of a staged key (qk + v width): MiMo-V2's 192 + 128
#define ATTN_GROUP_STAGE_BATCH 10      // float4 loads a thread keeps in flight: a split of 32 such keys over 8 warps

static bool attention_group_fits(const AttnGeom &g, int split_keys)
{
    return split_keys <= ATTN_MAX_SPLIT && g.n_kv > 0 && g.n_heads % g.n_kv == 0 && g.dqk % 4 == 0 &&
           g.dv % 4 == 0 && g.dqk / 4 <= 32 * ATTN_GROUP_CHUNKS && g.dv / 4 <= 32 * ATTN_GROUP_CHUNKS &&
           (g.dqk + g.dv) / 4 <= ATTN_GROUP_ROW4;
}

// Where a block of the grouped split stands: its heads [head0, head_end) of kv head kvh, position t, split
// `split` of nsplit, keys [lo, lo + nk) (nk <= 0: past the causal end), whose cache slots run from slot0.
struct AttnGroupUnit {
    int warp, lane, kvh, head0, head_end, t, split, nsplit;
    int dk4, dv4, row4;   // float4s of a key row, a value row, a staged key (both)
    int len, lo, nk, slot0;
    size_t kstride, vstride;   // floats between a key's (value's) cache slots
};

__device__ __forceinline__ AttnGroupUnit attn_group_unit(const AttnGeom &g, const int *d_len, int split_keys)
{
    AttnGroupUnit u;
    const int warps = blockDim.x / 32;
    u.warp = threadIdx.x / 32;
    u.lane = threadIdx.x % 32;
    const int G = g.n_heads / g.n_kv, per_block = warps * ATTN_GROUP_HPW, groups = (G + per_block - 1) / per_block;
    u.kvh = blockIdx.x / groups;
    u.head0 = u.kvh * G + (int)(blockIdx.x % groups) * per_block;
    u.head_end = min(u.head0 + per_block, (u.kvh + 1) * G);
    u.t = blockIdx.y;
    u.split = blockIdx.z;
    u.nsplit = gridDim.z;
    u.dk4 = g.dqk / 4;
    u.dv4 = g.dv / 4;
    u.row4 = u.dk4 + u.dv4;
    // the step's length before the wait: set before the step's first kernel (attention_split_unit)
    u.len = __ldcg(d_len);
    attention_split_span(g, u.len + u.t, u.split, split_keys, &u.lo, &u.nk);
    u.kstride = (size_t)g.n_kv * g.dqk;
    u.vstride = (size_t)g.n_kv * g.dv;
    u.slot0 = g.window > 0 ? u.lo % g.ring : u.lo;
    return u;
}

// The split's keys [j0, j1) into shared memory as rows j - tile0, from L2 (ld.global.cg): this SM's L1 may
// hold a slot's earlier occupant. ATTN_GROUP_STAGE_BATCH loads of a thread in flight before its first store
// (a loop of load -> store waited for L2 once per float4: ten round trips per thread for MiMo-V2's 32 rows).
// A thread's float4s are blockDim.x apart: its row and column advance by a quotient and remainder taken once
// (a division per float4 was a fifth of the one-tile kernel's instructions, ab88). The split's slots are
// consecutive from slot0, wrapping once at most in a window's ring (nk <= window <= ring).
__device__ __forceinline__ void attn_group_stage(float4 *rows4, const float *kc, const float *vc, const AttnGeom &g,
                                                 const AttnGroupUnit &u, int j0, int j1, int tile0)
{
    const int count = (j1 - j0) * u.row4;
    if (count <= 0)
        return;
    const int step_j = (int)blockDim.x / u.row4, step_c = (int)blockDim.x - step_j * u.row4;
    int jr = (int)threadIdx.x / u.row4, c = (int)threadIdx.x - jr * u.row4;   // row (from j0) and column of i
    for (int base = 0; base < count; base += ATTN_GROUP_STAGE_BATCH * (int)blockDim.x) {
        float4 v[ATTN_GROUP_STAGE_BATCH];
        int jb = jr, cb = c;
#pragma unroll
        for (int b = 0; b < ATTN_GROUP_STAGE_BATCH; b++) {
            const int i = base + b * (int)blockDim.x + (int)threadIdx.x;
            if (i < count) {
                const int j = j0 + jb;
                const int slot = u.slot0 + j >= g.ring && g.window > 0 ? u.slot0 + j - g.ring : u.slot0 + j;
                const float4 *src = cb < u.dk4
                                        ? (const float4 *)(kc + slot * u.kstride + (size_t)u.kvh * g.dqk) + cb
                                        : (const float4 *)(vc + slot * u.vstride + (size_t)u.kvh * g.dv) + (cb - u.dk4);
                v[b] = __ldcg(src);
            }
            jb += step_j;
            cb += step_c;
            if (cb >= u.row4) {
                cb -= u.row4;
                jb++;
            }
        }
#pragma unroll
        for (int b = 0; b < ATTN_GROUP_STAGE_BATCH; b++) {
            const int i = base + b * (int)blockDim.x + (int)threadIdx.x;
            if (i < count)
                rows4[(j0 - tile0) * u.row4 + i] = v[b];
        }
        jr = jb;
        c = cb;
    }
}

// The key parts of rows [j0, j1) zero: keys past the split's (or tile's) end score 0 and are masked in
// attn_group_softmax, so the dot products run over every row without a test per key.
__device__ __forceinline__ void attn_group_zero_keys(float4 *rows4, const AttnGroupUnit &u, int j0, int j1)
{
    for (int i = (int)threadIdx.x; i < (j1 - j0) * u.dk4; i += (int)blockDim.x) {
        const int j = j0 + i / u.dk4;
        rows4[j * u.row4 + (i - (j - j0) * u.dk4)] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
}

__device__ __forceinline__ float *attn_group_partial(float *partial, const AttnGeom &g, const AttnGroupUnit &u, int head)
{
    return partial + (((size_t)u.t * g.n_heads + head) * u.nsplit + u.split) * (2 + g.dv);
}

// A split past the causal end: no keys.
__device__ __forceinline__ void attn_group_store_empty(float *partial, const AttnGeom &g, const AttnGroupUnit &u)
{
    if ((int)threadIdx.x < u.head_end - u.head0) {
        float *p = attn_group_partial(partial, g, u, u.head0 + (int)threadIdx.x);
        p[0] = -INFINITY;
        p[1] = 0.0f;
    }
}

// The first tile of a split, `first` of its keys (u.nk clamped to the tile) in a tile of tile_keys rows: the
// rows of earlier steps staged before the wait (final then), the rest of the tile zeroed, the wait, then the
// step's own rows. false: the split is past the causal end (its empty partial stored), nothing else to do.
__device__ __forceinline__ bool attn_group_first_tile(float4 *rows4, const float *kc, const float *vc, const AttnGeom &g,
                                                      const AttnGroupUnit &u, int first, int tile_keys, float *partial)
{
    const int old_keys = min(max(u.len - u.lo, 0), first);
    attn_group_stage(rows4, kc, vc, g, u, 0, old_keys, 0);
    attn_group_zero_keys(rows4, u, first, tile_keys);
    pdl_wait();
    if (u.nk <= 0) {
        attn_group_store_empty(partial, g, u);
        return false;
    }
    attn_group_stage(rows4, kc, vc, g, u, old_keys, first, 0);
    return true;
}

// This warp's heads and their query rows (zero past the block's heads).
__device__ __forceinline__ void attn_group_queries(const float *q, const AttnGeom &g, const AttnGroupUnit &u,
                                                   int (&heads)[ATTN_GROUP_HPW],
                                                   float4 (&qv)[ATTN_GROUP_HPW][ATTN_GROUP_CHUNKS])
{
#pragma unroll
    for (int h = 0; h < ATTN_GROUP_HPW; h++) {
        heads[h] = u.head0 + u.warp * ATTN_GROUP_HPW + h;
        const float4 *qrow = (const float4 *)(q + ((size_t)u.t * g.n_heads + heads[h]) * g.dqk);
#pragma unroll
        for (int c = 0; c < ATTN_GROUP_CHUNKS; c++) {
            const int i = u.lane + 32 * c;
            qv[h][c] = heads[h] < u.head_end && i < u.dk4 ? qrow[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
    }
}

// The lane's parts of the dot products of the staged rows 0..KEYS-1 (those past the split's keys zeroed:
// attn_group_zero_keys).
template <int KEYS>
__device__ __forceinline__ void attn_group_dots(float (&dot)[ATTN_GROUP_HPW][KEYS],
                                                const float4 (&qv)[ATTN_GROUP_HPW][ATTN_GROUP_CHUNKS],
                                                const float4 *rows4, const AttnGroupUnit &u)
{
#pragma unroll
    for (int j = 0; j < KEYS; j++) {
#pragma unroll
        for (int h = 0; h < ATTN_GROUP_HPW; h++)
            dot[h][j] = 0.0f;
#pragma unroll
        for (int c = 0; c < ATTN_GROUP_CHUNKS; c++) {
            const int i = u.lane + 32 * c;
            if (i < u.dk4) {
                const float4 k = rows4[j * u.row4 + i];   // one row for the whole warp: no bank conflicts
#pragma unroll
                for (int h = 0; h < ATTN_GROUP_HPW; h++) {
                    dot[h][j] = fmaf(qv[h][c].x, k.x, dot[h][j]);
                    dot[h][j] = fmaf(qv[h][c].y, k.y, dot[h][j]);
                    dot[h][j] = fmaf(qv[h][c].z, k.z, dot[h][j]);
                    dot[h][j] = fmaf(qv[h][c].w, k.w, dot[h][j]);
                }
            }
        }
    }
}

// Softmax over the staged keys 0..nk-1 (nk <= KEYS) of one head: key `lane`'s weight e relative to their max m,
// l their sum (m and l in every lane; lanes past nk, including a 16-key tile's upper half-warp, weigh 0).
template <int KEYS>
__device__ __forceinline__ void attn_group_softmax(float (&dot)[KEYS], int lane, int nk, float scale, float &m,
                                                   float &e, float &l)
{
    const float s = warp_transposed_sum(dot, lane) * scale;   // key `lane`'s score
    m = warp_max(lane < nk ? s : -INFINITY);
    e = lane < nk ? expf(s - m) : 0.0f;
    l = warp_sum(e);
}

// acc += the staged value rows 0..nk-1 weighted by lane j's e for key j.
__device__ __forceinline__ void attn_group_weigh_values(float4 (&acc)[ATTN_GROUP_HPW][ATTN_GROUP_CHUNKS],
                                                        const float (&e)[ATTN_GROUP_HPW], const float4 *rows4,
                                                        const AttnGroupUnit &u, int nk)
{
    for (int j = 0; j < nk; j++) {   // (unrolled over 32 keys the 8-token step measured 0.1 ms slower)
        float p[ATTN_GROUP_HPW];
#pragma unroll
        for (int h = 0; h < ATTN_GROUP_HPW; h++)
            p[h] = __shfl_sync(0xFFFFFFFFu, e[h], j);
#pragma unroll
        for (int c = 0; c < ATTN_GROUP_CHUNKS; c++) {
            const int i = u.lane + 32 * c;
            if (i < u.dv4) {
                const float4 v = rows4[j * u.row4 + u.dk4 + i];
#pragma unroll
                for (int h = 0; h < ATTN_GROUP_HPW; h++) {
                    acc[h][c].x = fmaf(p[h], v.x, acc[h][c].x);
                    acc[h][c].y = fmaf(p[h], v.y, acc[h][c].y);
                    acc[h][c].z = fmaf(p[h], v.z, acc[h][c].z);
                    acc[h][c].w = fmaf(p[h], v.w, acc[h][c].w);
                }
            }
        }
    }
}

__device__ __forceinline__ void attn_group_store(float *partial, const AttnGeom &g, const AttnGroupUnit &u,
                                                 const int (&heads)[ATTN_GROUP_HPW], const float (&m)[ATTN_GROUP_HPW],
                                                 const float (&l)[ATTN_GROUP_HPW],
                                                 const float4 (&acc)[ATTN_GROUP_HPW][ATTN_GROUP_CHUNKS])
{
#pragma unroll
    for (int h = 0; h < ATTN_GROUP_HPW; h++) {
        if (heads[h] >= u.head_end)
            continue;
        float *p = attn_group_partial(partial, g, u, heads[h]);
        if (u.lane == 0) {
            p[0] = m[h];
            p[1] = l[h];
        }
#pragma unroll
        for (int c = 0; c < ATTN_GROUP_CHUNKS; c++) {
            const int i = u.lane + 32 * c;
            if (i < u.dv4) {
                p[2 + 4 * i] = acc[h][c].x;
                p[2 + 4 * i + 1] = acc[h][c].y;
                p[2 + 4 * i + 2] = acc[h][c].z;
                p[2 + 4 * i + 3] = acc[h][c].w;
            }
        }
    }
}

// Splits of at most KEYS keys (16 or 32): one tile.
template <int KEYS>
__global__ void __launch_bounds__(ATTN_GROUP_MAX_WARPS * 32)
    attention_group_split_kernel(const float *q, const float *kc, const float *vc, const AttnGeom g, const int *d_len,
                                 int split_keys, float *partial)
{
    __shared__ float4 rows4[KEYS * ATTN_GROUP_ROW4];   // key j: its qk float4s, then its v ones
    pdl_trigger();
    const AttnGroupUnit u = attn_group_unit(g, d_len, split_keys);
    if (!attn_group_first_tile(rows4, kc, vc, g, u, max(u.nk, 0), KEYS, partial))
        return;
    int heads[ATTN_GROUP_HPW];
    float4 qv[ATTN_GROUP_HPW][ATTN_GROUP_CHUNKS];
    attn_group_queries(q, g, u, heads, qv);   // in flight across the barrier
    __syncthreads();
    if (heads[0] >= u.head_end)   // a warp without heads (after the barrier)
        return;
    float dot[ATTN_GROUP_HPW][KEYS];
    attn_group_dots<KEYS>(dot, qv, rows4, u);
    const float scale = rsqrtf((float)g.dqk);
    float m[ATTN_GROUP_HPW], e[ATTN_GROUP_HPW], l[ATTN_GROUP_HPW];
#pragma unroll
    for (int h = 0; h < ATTN_GROUP_HPW; h++)
        attn_group_softmax(dot[h], u.lane, u.nk, scale, m[h], e[h], l[h]);
    float4 acc[ATTN_GROUP_HPW][ATTN_GROUP_CHUNKS];
#pragma unroll
    for (int h = 0; h < ATTN_GROUP_HPW; h++)
#pragma unroll
        for (int c = 0; c < ATTN_GROUP_CHUNKS; c++)
            acc[h][c] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    attn_group_weigh_values(acc, e, rows4, u, u.nk);
    attn_group_store(partial, g, u, heads, m, l, acc);
}

// Splits of more than ATTN_GROUP_KEYS keys: tiles of that many, each staged, scored and weighed in turn, the
// split's (max, sum, output) rescaled to each half-tile's new max. Two blocks an SM: the registers capped at 128;
// left to the compiler (193, one block an SM) the 8-token step at context 4096 measured 10.69 ms against 10.43 /
// 10.48 (ab85).
__global__ void __launch_bounds__(ATTN_GROUP_MAX_WARPS * 32, 2)
    attention_group_tiled_kernel(const float *q, const float *kc, const float *vc, const AttnGeom g, const int *d_len,
                                 int split_keys, float *partial)
{
    __shared__ float4 rows4[ATTN_GROUP_KEYS * ATTN_GROUP_ROW4];   // key tile0 + j: its qk float4s, then its v ones
    pdl_trigger();
    const AttnGroupUnit u = attn_group_unit(g, d_len, split_keys);
    const int first = min(max(u.nk, 0), ATTN_GROUP_KEYS);   // the first tile's keys
    if (!attn_group_first_tile(rows4, kc, vc, g, u, first, ATTN_GROUP_KEYS, partial))
        return;
    int heads[ATTN_GROUP_HPW];
    float4 qv[ATTN_GROUP_HPW][ATTN_GROUP_CHUNKS];
    attn_group_queries(q, g, u, heads, qv);
    const bool has_heads = heads[0] < u.head_end;   // warps without heads still meet every barrier
    const float scale = rsqrtf((float)g.dqk);
    float m[ATTN_GROUP_HPW], l[ATTN_GROUP_HPW];
    float4 acc[ATTN_GROUP_HPW][ATTN_GROUP_CHUNKS];
#pragma unroll
    for (int h = 0; h < ATTN_GROUP_HPW; h++) {
        m[h] = -INFINITY;
        l[h] = 0.0f;
#pragma unroll
        for (int c = 0; c < ATTN_GROUP_CHUNKS; c++)
            acc[h][c] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
    for (int tile0 = 0; tile0 < u.nk; tile0 += ATTN_GROUP_KEYS) {
        const int tk = min(u.nk - tile0, ATTN_GROUP_KEYS);
        if (tile0 > 0) {
            __syncthreads();   // every warp is done with the previous tile
            attn_group_stage(rows4, kc, vc, g, u, tile0, tile0 + tk, tile0);
            attn_group_zero_keys(rows4, u, tk, ATTN_GROUP_KEYS);
        }
        __syncthreads();
        if (!has_heads)
            continue;
        // the tile's halves in turn: 16 keys' dot products live at a time (all 32 live spilled 360 bytes, the
        // halves 60)
        for (int half = 0; half * 16 < tk; half++) {
            const float4 *rows = rows4 + half * 16 * u.row4;
            const int hk = min(tk - half * 16, 16);
            float dot[ATTN_GROUP_HPW][16];
            attn_group_dots<16>(dot, qv, rows, u);
            float e[ATTN_GROUP_HPW];
#pragma unroll
            for (int h = 0; h < ATTN_GROUP_HPW; h++) {
                float mt, lt;
                attn_group_softmax(dot[h], u.lane, hk, scale, mt, e[h], lt);
                const float m_new = fmaxf(m[h], mt);
                const float keep = expf(m[h] - m_new), gain = expf(mt - m_new);   // keep: 0 at the first keys
                e[h] *= gain;
                l[h] = l[h] * keep + lt * gain;
                m[h] = m_new;
#pragma unroll
                for (int c = 0; c < ATTN_GROUP_CHUNKS; c++) {
                    acc[h][c].x *= keep;
                    acc[h][c].y *= keep;
                    acc[h][c].z *= keep;
                    acc[h][c].w *= keep;
                }
            }
            attn_group_weigh_values(acc, e, rows, u, hk);
        }
    }
    if (has_heads)
        attn_group_store(partial, g, u, heads, m, l, acc);
}

// MIMO_CUDA_ATTN_GROUP: the query heads a block of the grouped split takes (ATTN_GROUP_HPW per warp), 2..16;
// 0 never (the per-head split).
#define ATTN_GROUP_DEFAULT_HEADS 16
int &cuda_attention_group_knob()
{
    static int heads = [] {
        const char *v = getenv("MIMO_CUDA_ATTN_GROUP");
        if (!v)
            return ATTN_GROUP_DEFAULT_HEADS;
        const int h = atoi(v);
        return h == 0 || (h % ATTN_GROUP_HPW == 0 && h <= ATTN_GROUP_HPW * ATTN_GROUP_MAX_WARPS)
                   ? h
                   : ATTN_GROUP_DEFAULT_HEADS;
    }();
    return heads;
}

// A head of at most ATTN_MERGE_REG_SPLITS active splits and one value dimension per thread (the decode
// steps): every split's (max, sum, value) loads issued at once into registers, then attention_merge_head's
// arithmetic in its order (the same result bit for bit). A loop of load -> use over the splits was a chain
// of L2 round trips.
#define ATTN_MERGE_REG_SPLITS 16
__device__ __forceinline__ void attention_merge_head_short(const float *partial, int nsplit, const AttnGeom &g,
                                                           float sink, float *out)
{
    const int d = threadIdx.x;
    float pm[ATTN_MERGE_REG_SPLITS], pl[ATTN_MERGE_REG_SPLITS], pv[ATTN_MERGE_REG_SPLITS];
#pragma unroll
    for (int s = 0; s < ATTN_MERGE_REG_SPLITS; s++) {
        const float *p = partial + (size_t)s * (2 + g.dv);
        pm[s] = s < nsplit ? p[0] : -INFINITY;
        pl[s] = s < nsplit ? p[1] : 0.0f;
        pv[s] = s < nsplit && d < g.dv ? p[2 + d] : 0.0f;
    }
    float M = sink;
#pragma unroll
    for (int s = 0; s < ATTN_MERGE_REG_SPLITS; s++)
        if (s < nsplit)
            M = fmaxf(M, pm[s]);
    float L = (sink > -INFINITY) ? expf(sink - M) : 0.0f;
#pragma unroll
    for (int s = 0; s < ATTN_MERGE_REG_SPLITS; s++)
        if (s < nsplit && pl[s] > 0.0f)
            L += pl[s] * expf(pm[s] - M);
    if (d < g.dv) {
        float acc = 0.0f;
#pragma unroll
        for (int s = 0; s < ATTN_MERGE_REG_SPLITS; s++)
            if (s < nsplit && pl[s] > 0.0f)
                acc += pv[s] * expf(pm[s] - M);
        out[d] = L > 0.0f ? acc / L : 0.0f;
    }
}

__device__ void attention_merge_head(const float *partial, int nsplit, const AttnGeom &g, float sink, bool registers,
                                     float *out)
{
    if (registers && nsplit <= ATTN_MERGE_REG_SPLITS && g.dv <= (int)blockDim.x) {
        attention_merge_head_short(partial, nsplit, g, sink, out);
        return;
    }
    float M = sink;
    for (int s = 0; s < nsplit; s++)
        M = fmaxf(M, partial[(size_t)s * (2 + g.dv)]);
    float L = (sink > -INFINITY) ? expf(sink - M) : 0.0f;
    for (int s = 0; s < nsplit; s++) {
        const float *p = partial + (size_t)s * (2 + g.dv);
        if (p[1] > 0.0f)
            L += p[1] * expf(p[0] - M);
    }
    for (int d = threadIdx.x; d < g.dv; d += blockDim.x) {
        float acc = 0.0f;
        for (int s = 0; s < nsplit; s++) {
            const float *p = partial + (size_t)s * (2 + g.dv);
            if (p[1] > 0.0f)
                acc += p[2 + d] * expf(p[0] - M);
        }
        out[d] = L > 0.0f ? acc / L : 0.0f;
    }
}

__device__ void attention_merge_unit(const UnitCtx &u, const UnitSmem &, const float *partial, int nsplit, const AttnGeom &g,
                                     const int *d_len, int split_keys, const float *sink, int registers, float *out, int ldo)
{
    u.trigger();
    u.wait();
    const int head = u.block.x, t = u.block.y;
    const float *p = partial + ((size_t)t * g.n_heads + head) * nsplit * (2 + g.dv);
    // only the splits that hold keys of this query (the rest are empty by construction)
    const int pos_q = *d_len + t, lo_all = g.window > 0 ? max(0, pos_q - g.window + 1) : 0;
    const int active = min(nsplit, (pos_q + 1 - lo_all + split_keys - 1) / split_keys);
    attention_merge_head(p, active, g, sink ? sink[head] : -INFINITY, registers != 0,
                         out + (size_t)t * ldo + (size_t)head * g.dv);
}

__global__ void attention_merge_kernel(const float *partial, int nsplit, const AttnGeom g, const int *d_len, int split_keys,
                                       const float *sink, int registers, float *out, int ldo)
{
    attention_merge_unit(kernel_unit(), UnitSmem{}, partial, nsplit, g, d_len, split_keys, sink, registers, out, ldo);
}

int &cuda_attention_merge_registers_knob()
{
    static int registers = env_switch_on("MIMO_CUDA_MERGE_REGISTERS");
    return registers;
}

int cuda_attention(const float *q, const float *kcache, const float *vcache, const float *sink, const AttnGeom &g,
                   const int *d_len, int n, int max_context, float *partial, float *out, int ldo, cudaStream_t st,
                   mimo_error *err)
{
    if (g.dqk > ATTN_MAX_DIM || g.dv > ATTN_MAX_DIM)
        return mimo_fail(err, "cuda attention: head dims %d/%d > %d", g.dqk, g.dv, ATTN_MAX_DIM);
    const int nsplit = cuda_attention_splits(g, max_context, n), split_keys = cuda_attention_split_keys(g, max_context, n);
    const int group_heads = cuda_attention_group_knob();
    // One position keeps the per-head split: grouped, its 1-token step measured 4.17 against 3.92 ms; its
    // longer splits (spans past 2048) 4.18 against 4.15 at context 4096 (ab85: 65 blocks against 1040).
    if (n > 1 && group_heads > 0 && attention_group_fits(g, split_keys)) {
        const int warps = group_heads / ATTN_GROUP_HPW, per_block = group_heads, G = g.n_heads / g.n_kv;
        const dim3 grid(g.n_kv * ((G + per_block - 1) / per_block), n, nsplit);
        const bool tiled = split_keys > ATTN_GROUP_KEYS;
        if (cuda_launch(tiled ? "attention_group_tiled_kernel" : "attention_group_split_kernel", err,
                        tiled              ? attention_group_tiled_kernel
                        : split_keys <= 16 ? attention_group_split_kernel<16>
                                           : attention_group_split_kernel<ATTN_GROUP_KEYS>,
                        grid, dim3(warps * 32), 0, st, q, kcache, vcache, g, d_len, split_keys, partial))
            return -1;
    } else if (cuda_launch("attention_split_kernel", err,
                           split_keys <= ATTN_STAGE_KEYS ? attention_split_kernel<true> : attention_split_kernel<false>,
                           dim3(g.n_heads, n, nsplit), dim3(ATTN_THREADS), 0, st, q, kcache, vcache, g, d_len, split_keys,
                           partial)) {
        return -1;
    }
    return cuda_launch("attention_merge_kernel", err, attention_merge_kernel, dim3(g.n_heads, n), dim3(128), 0, st,
                       (const float *)partial, nsplit, g, d_len, split_keys, sink, cuda_attention_merge_registers_knob(),
                       out, ldo);
}

// ---------------------------------------------------------------------------------------------
// Router: sigmoid scores, top-k by score + bias (ties to the lower index), renormalised weights.

// One warp per position: in a larger block (the persistent kernel's) the other warps only wait.
// trigger_first: its dependents may launch before its wait (the gate/up slots' bulk kernel, which waits before
// it reads anything: its blocks set up while the router runs); else after it, so that the gate/up slots after
// it find their inputs final (GemvParams::x_settled).
__device__ void route_unit(const UnitCtx &u, const UnitSmem &sm, const float *logits, const float *bias, int E, int k,
                           bool norm_topk, float scaling, int redux, int32_t *ids, float *weights, int trigger_first)
{
    if (trigger_first)
        u.trigger();
    u.wait();
    if (!trigger_first)
        u.trigger();
    if (threadIdx.x >= 32)
        return;
    const int t = u.block.x;
    route_position(logits + (size_t)t * E, bias, E, k, norm_topk, scaling, redux != 0, ids + t * k, weights + t * k,
                   (float *)sm.dyn);
}

__global__ void route_kernel(const float *logits, const float *bias, int E, int k, bool norm_topk, float scaling,
                             int redux, int32_t *ids, float *weights, int trigger_first)
{
    extern __shared__ float route_sel[];
    route_unit(kernel_unit(), UnitSmem{nullptr, route_sel}, logits, bias, E, k, norm_topk, scaling, redux, ids, weights,
               trigger_first);
}

int &cuda_route_redux_knob()
{
    static int redux = env_switch_on("MIMO_CUDA_ROUTE_REDUX");
    return redux;
}

int cuda_route(const float *logits, const float *bias, int E, int k, bool norm_topk, float scaling, int n,
               int32_t *ids, float *weights, cudaStream_t st, mimo_error *err, bool trigger_first)
{
    size_t smem = E > ROUTE_REG_EXPERTS ? (size_t)2 * E * sizeof(float) : 0;
    if (k < 1 || k > 32 || k > E)
        return mimo_fail(err, "cuda router: top-k %d outside 1..min(32, %d experts)", k, E);
    if (smem > 48 * 1024)
        return mimo_fail(err, "cuda router: %d experts exceed the kernel's shared memory", E);
    return cuda_launch("route_kernel", err, route_kernel, dim3(n), dim3(32), smem, st, logits, bias, E, k, norm_topk,
                       scaling, cuda_route_redux_knob(), ids, weights, trigger_first ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// MoE combine: x += sum_j w_j * y_j (the expert outputs summed first, as the reference does).

#define COMBINE_MAX_K 16

__device__ void moe_combine_unit(const UnitCtx &u, const UnitSmem &, const float *y, int ldy, const float *w, int k, int dim,
                                 float *x, int ldx)
{
    u.trigger();
    u.wait();
    const int t = u.block.y;
    const int c = u.block.x * blockDim.x + threadIdx.x;
    if (c >= dim)
        return;
    // every slot's load issued before the sum (a loop over a run-time k serialised them)
    float yv[COMBINE_MAX_K], wv[COMBINE_MAX_K];
#pragma unroll
    for (int j = 0; j < COMBINE_MAX_K; j++) {
        yv[j] = j < k ? y[(size_t)(t * k + j) * ldy + c] : 0.0f;
        wv[j] = j < k ? w[t * k + j] : 0.0f;
    }
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < COMBINE_MAX_K; j++)
        if (j < k)
            s = fmaf(wv[j], yv[j], s);
    for (int j = COMBINE_MAX_K; j < k; j++)
        s = fmaf(w[t * k + j], y[(size_t)(t * k + j) * ldy + c], s);
    x[(size_t)t * ldx + c] += s;
}

__global__ void moe_combine_kernel(const float *y, int ldy, const float *w, int k, int dim, float *x, int ldx)
{
    moe_combine_unit(kernel_unit(), UnitSmem{}, y, ldy, w, k, dim, x, ldx);
}

int cuda_moe_combine(const float *y, int ldy, const float *w, int k, int dim, int n, float *x, int ldx,
                     cudaStream_t st, mimo_error *err)
{
    return cuda_launch("moe_combine_kernel", err, moe_combine_kernel, dim3((dim + 255) / 256, n), dim3(256), 0, st, y, ldy,
                       w, k, dim, x, ldx);
}

// ---------------------------------------------------------------------------------------------
// Argmax per row (lowest index on ties; NaN never wins).

__device__ void argmax_unit(const UnitCtx &u, const UnitSmem &, const float *logits, int ldl, int v, int base, int32_t *out)
{
    u.trigger();
    u.wait();
    __shared__ float red_v[32];
    __shared__ int red_i[32];
    const float *row = logits + (size_t)u.block.x * ldl;
    float bv = -INFINITY;
    int bi = 0x7FFFFFFF;
    for (int i = threadIdx.x; i < v; i += blockDim.x) {
        float x = row[i];
        if (x > bv || (x == bv && i < bi)) {
            bv = x;
            bi = i;
        }
    }
    warp_argmax(bv, bi);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
    if (lane == 0) {
        red_v[warp] = bv;
        red_i[warp] = bi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        bv = red_v[0];
        bi = red_i[0];
        for (int w = 1; w < nw; w++)
            if (red_v[w] > bv || (red_v[w] == bv && red_i[w] < bi)) {
                bv = red_v[w];
                bi = red_i[w];
            }
        out[u.block.x] = (bi == 0x7FFFFFFF ? 0 : bi) + base;
    }
}

__global__ void argmax_kernel(const float *logits, int ldl, int v, int base, int32_t *out)
{
    argmax_unit(kernel_unit(), UnitSmem{}, logits, ldl, v, base, out);
}

int cuda_argmax(const float *logits, int ldl, int v, int n, int base, int32_t *out, cudaStream_t st, mimo_error *err)
{
    return cuda_launch("argmax_kernel", err, argmax_kernel, dim3(n), dim3(1024), 0, st, logits, ldl, v, base, out);
}

// ---------------------------------------------------------------------------------------------
// Device-to-device copy (the persistent kernel's OP_COPY; eager and graph steps use cudaMemcpyAsync).

__device__ void copy_unit(const UnitCtx &u, const UnitSmem &, void *dst, const void *src, size_t bytes)
{
    u.trigger();
    u.wait();
    const size_t stride = (size_t)blockDim.x * u.grid.x, first = (size_t)u.block.x * blockDim.x + threadIdx.x;
    if ((((uintptr_t)dst | (uintptr_t)src | bytes) & 15) == 0) {
        for (size_t i = first; i < bytes / 16; i += stride)
            ((uint4 *)dst)[i] = ((const uint4 *)src)[i];
    } else {
        for (size_t i = first; i < bytes; i += stride)
            ((uint8_t *)dst)[i] = ((const uint8_t *)src)[i];
    }
}

__global__ void copy_kernel(void *dst, const void *src, size_t bytes)
{
    copy_unit(kernel_unit(), UnitSmem{}, dst, src, bytes);
}

int cuda_copy_device(void *dst, const void *src, size_t bytes, cudaStream_t st, mimo_error *err)
{
    const size_t words = (bytes + 15) / 16;
    const int blocks = (int)std::max<size_t>(1, std::min<size_t>((words + 255) / 256, 64));
    return cuda_launch("copy_kernel", err, copy_kernel, dim3(blocks), dim3(256), 0, st, dst, src, bytes);
}

// ---------------------------------------------------------------------------------------------
// The persistent kernel (--exec persistent; cuda_persistent.cu records a step's launches into PersistOp
// instructions and plans which block runs which unit). Each block walks its list of (instruction, first
// unit) pairs in instruction order, runs the op's unit body with the unit's coordinates, and adds one to
// the instruction's counter per finished unit. An op's body waits where its kernel would call
// griddepcontrol.wait (after its first weight loads), here until instruction i - 1's counter holds all its
// units: each instruction runs after the whole previous one, as a step's kernels do under programmatic
// dependent launch, and a block free of instruction i - 1 streams instruction i's weights meanwhile. Blocks
// never wait on a later instruction, and all of them are resident (the grid is the occupancy), so the walk
// cannot deadlock; a wait past PERSIST_WAIT_TIMEOUT_NS (a bug) sets the status and the rest of the step runs
// through without waiting.

__device__ __noinline__ void persist_wait_poll(const PersistWait &w)
{
    const long long t0 = globaltimer_ns();
    for (unsigned turn = 0; ld_relaxed_gpu(w.done) < w.need; turn++) {
        if (turn % 64 != 63)
            continue;
        if (*(volatile unsigned *)w.status != 0u)
            break;   // an earlier wait timed out: run through
        if (globaltimer_ns() - t0 > PERSIST_WAIT_TIMEOUT_NS) {
            atomicCAS(w.status, 0u, (unsigned)w.instr + 1u);
            break;
        }
    }
    (void)ld_acquire_gpu(w.done);   // after the relaxed polls: the acquire (a fence instead measured slower)
}

// An entry of the persistent kernel's table: the kernels whose launches it takes (takes) and the unit
// body it runs for them with the launch's arguments (run). The bodies are inlined into the kernel (out of
// line, with the calls' saved registers, the 1-token step measured 8.78 vs 7.74 ms).
template <typename Kernel> using PackOf = typename KernelArgs<typename std::remove_reference<Kernel>::type>::Pack;

template <int FMT, bool GLU, int SHAPE, bool XS, int NORM> struct PersistGemv1 {
    using Pack = PackOf<decltype(gemv1_kernel<FMT, GLU, 2, SHAPE, XS, NORM>)>;
    // the kernels launch_gemv1_v instantiates: expert slots (XS or none) and plain matrices (any NORM but XS)
    static bool takes(const void *k)
    {
        // (the NORM_FACTOR expert kernels run here on the NORM_NONE body, which takes GemvParams::norm_factor
        // at run time in this kernel only: eight more bodies made the persistent kernel 5 % slower)
        bool t = false;
        if constexpr (NORM == NORM_NONE)
            t = k == (const void *)gemv1_expert_kernel<FMT, GLU, 2, SHAPE, XS> ||
                k == (const void *)gemv1_expert_kernel<FMT, GLU, 3, SHAPE, XS> ||
                k == (const void *)gemv1_expert_kernel<FMT, GLU, 2, SHAPE, XS, NORM_FACTOR> ||
                k == (const void *)gemv1_expert_kernel<FMT, GLU, 3, SHAPE, XS, NORM_FACTOR>;
        if constexpr (!XS)
            t = t || k == (const void *)gemv1_kernel<FMT, GLU, 2, SHAPE, false, NORM> ||
                k == (const void *)gemv1_kernel<FMT, GLU, 3, SHAPE, false, NORM>;
        return t;
    }
    static __device__ __forceinline__ void run(const UnitCtx &u, const UnitSmem &sm, const unsigned char *a)
    {
        gemv1_unit<FMT, GLU, SHAPE, XS, NORM>(u, sm, Pack::template get<0>(a), Pack::template get<1>(a),
                                              Pack::template get<2>(a));
    }
};

template <int FMT, int SHAPE, bool NORM_OUT_> struct PersistCombine {
    using Pack = PackOf<decltype(gemv1_combine_kernel<FMT, 2, SHAPE, NORM_OUT_>)>;
    static bool takes(const void *k)
    {
        // the EARLY kernels too: here every unit waits first (the persistent kernel may start a unit
        // before the router's have finished)
        return k == (const void *)gemv1_combine_kernel<FMT, 2, SHAPE, NORM_OUT_> ||
               k == (const void *)gemv1_combine_kernel<FMT, 3, SHAPE, NORM_OUT_> ||
               k == (const void *)gemv1_combine_kernel<FMT, 2, SHAPE, NORM_OUT_, true> ||
               k == (const void *)gemv1_combine_kernel<FMT, 3, SHAPE, NORM_OUT_, true>;
    }
    static __device__ __forceinline__ void run(const UnitCtx &u, const UnitSmem &sm, const unsigned char *a)
    {
        gemv1_combine_unit<FMT, SHAPE, NORM_OUT_>(u, sm, Pack::template get<0>(a), Pack::template get<1>(a));
    }
};

// The other ops: a kernel and its unit body (Unit, a function object) with the same arguments.
template <typename KernelT, KernelT *Kernel, typename Unit> struct PersistOp1 {
    using Pack = PackOf<KernelT>;
    static bool takes(const void *k) { return k == (const void *)Kernel; }
    template <size_t... I>
    static __device__ __forceinline__ void call(const UnitCtx &u, const UnitSmem &sm, const unsigned char *a,
                                                std::index_sequence<I...>)
    {
        Unit()(u, sm, Pack::template get<I>(a)...);
    }
    static __device__ __forceinline__ void run(const UnitCtx &u, const UnitSmem &sm, const unsigned char *a)
    {
        call(u, sm, a, std::make_index_sequence<Pack::count>{});
    }
};
struct EmbedUnit {
    template <typename... A> __device__ void operator()(const UnitCtx &u, const UnitSmem &s, const A &...a) const
    {
        embed_unit(u, s, a...);
    }
};
struct RmsnormUnit {
    template <typename... A> __device__ void operator()(const UnitCtx &u, const UnitSmem &s, const A &...a) const
    {
        rmsnorm_unit(u, s, a...);
    }
};
struct QkvRopeUnit {
    template <typename... A> __device__ void operator()(const UnitCtx &u, const UnitSmem &s, const A &...a) const
    {
        qkv_rope_store_unit(u, s, a...);
    }
};
struct AttnSplitUnit {
    template <typename... A> __device__ void operator()(const UnitCtx &u, const UnitSmem &s, const A &...a) const
    {
        attention_split_unit(u, s, a...);
    }
};
struct AttnMergeUnit {
    template <typename... A> __device__ void operator()(const UnitCtx &u, const UnitSmem &s, const A &...a) const
    {
        attention_merge_unit(u, s, a...);
    }
};
struct RouteUnit {
    template <typename... A> __device__ void operator()(const UnitCtx &u, const UnitSmem &s, const A &...a) const
    {
        route_unit(u, s, a...);
    }
};
struct MoeCombineUnit {
    template <typename... A> __device__ void operator()(const UnitCtx &u, const UnitSmem &s, const A &...a) const
    {
        moe_combine_unit(u, s, a...);
    }
};
struct ArgmaxUnit {
    template <typename... A> __device__ void operator()(const UnitCtx &u, const UnitSmem &s, const A &...a) const
    {
        argmax_unit(u, s, a...);
    }
};
struct CopyUnit {
    template <typename... A> __device__ void operator()(const UnitCtx &u, const UnitSmem &s, const A &...a) const
    {
        copy_unit(u, s, a...);
    }
};
using PersistEmbed = PersistOp1<decltype(embed_kernel), embed_kernel, EmbedUnit>;
using PersistRmsnorm = PersistOp1<decltype(rmsnorm_kernel), rmsnorm_kernel, RmsnormUnit>;
using PersistQkvRope = PersistOp1<decltype(qkv_rope_store_kernel), qkv_rope_store_kernel, QkvRopeUnit>;
// both op kernels of the split record as one body (the persistent kernel does not stage)
using PersistAttnSplit = PersistOp1<decltype(attention_split_kernel<false>), attention_split_kernel<false>, AttnSplitUnit>;
using PersistAttnSplitStaged =
    PersistOp1<decltype(attention_split_kernel<true>), attention_split_kernel<true>, AttnSplitUnit>;
using PersistAttnMerge = PersistOp1<decltype(attention_merge_kernel), attention_merge_kernel, AttnMergeUnit>;
using PersistRoute = PersistOp1<decltype(route_kernel), route_kernel, RouteUnit>;
using PersistMoeCombine = PersistOp1<decltype(moe_combine_kernel), moe_combine_kernel, MoeCombineUnit>;
using PersistArgmax = PersistOp1<decltype(argmax_kernel), argmax_kernel, ArgmaxUnit>;
using PersistCopy = PersistOp1<decltype(copy_kernel), copy_kernel, CopyUnit>;

template <typename... E> struct PersistTable {
    static int kind_of(const void *k)
    {
        int i = 0, found = -1;
        ((found < 0 && E::takes(k) ? (void)(found = i) : (void)0, i++), ...);
        return found;
    }
    static __device__ __forceinline__ void run(int kind, const UnitCtx &u, const UnitSmem &sm, const unsigned char *a)
    {
        int i = 0;
        ((kind == i++ ? E::run(u, sm, a) : (void)0), ...);
    }
};

// What one-position steps launch (launch_gemv1's choices at the default knobs, for every weight format):
// plain matrices in the default row shape with or without a deferred norm, expert slots (MXFP4 in the
// narrow, one-pass or default shape with the padded input row), the expert down projection with the MoE
// combine. A launch outside it is refused when the step is recorded (cuda_persist_kind).
using PersistKernels = PersistTable<
    PersistEmbed,
    PersistRmsnorm,
    PersistQkvRope,
    PersistAttnSplit,
    PersistAttnSplitStaged,
    PersistAttnMerge,
    PersistRoute,
    PersistMoeCombine,
    PersistArgmax,
    PersistCopy,
    PersistGemv1<MIMO_WFMT_F32, false, ROWS_DEFAULT, false, NORM_NONE>,
    PersistGemv1<MIMO_WFMT_F32, false, ROWS_DEFAULT, false, NORM_IN>,
    PersistGemv1<MIMO_WFMT_F32, false, ROWS_DEFAULT, false, NORM_OUT>,
    PersistGemv1<MIMO_WFMT_F32, true, ROWS_DEFAULT, false, NORM_NONE>,
    PersistGemv1<MIMO_WFMT_F32, true, ROWS_DEFAULT, false, NORM_IN>,
    PersistGemv1<MIMO_WFMT_BF16, false, ROWS_DEFAULT, false, NORM_NONE>,
    PersistGemv1<MIMO_WFMT_BF16, false, ROWS_DEFAULT, false, NORM_IN>,
    PersistGemv1<MIMO_WFMT_BF16, false, ROWS_DEFAULT, false, NORM_OUT>,
    PersistGemv1<MIMO_WFMT_BF16, true, ROWS_DEFAULT, false, NORM_NONE>,
    PersistGemv1<MIMO_WFMT_BF16, true, ROWS_DEFAULT, false, NORM_IN>,
    PersistGemv1<MIMO_WFMT_FP8, false, ROWS_DEFAULT, false, NORM_NONE>,
    PersistGemv1<MIMO_WFMT_FP8, false, ROWS_DEFAULT, false, NORM_IN>,
    PersistGemv1<MIMO_WFMT_FP8, false, ROWS_DEFAULT, false, NORM_OUT>,
    PersistGemv1<MIMO_WFMT_FP8, true, ROWS_DEFAULT, false, NORM_NONE>,
    PersistGemv1<MIMO_WFMT_FP8, true, ROWS_DEFAULT, false, NORM_IN>,
    PersistGemv1<MIMO_WFMT_MXFP4, true, ROWS_DEFAULT, false, NORM_NONE>,
    PersistGemv1<MIMO_WFMT_MXFP4, true, ROWS_NARROW, false, NORM_NONE>,
    PersistGemv1<MIMO_WFMT_MXFP4, true, ROWS_DEFAULT, true, NORM_NONE>,
    PersistGemv1<MIMO_WFMT_MXFP4, true, ROWS_NARROW, true, NORM_NONE>,
    PersistGemv1<MIMO_WFMT_MXFP4, true, ROWS_ONEPASS, true, NORM_NONE>,
    PersistGemv1<MIMO_WFMT_MXFP4, false, ROWS_DEFAULT, false, NORM_NONE>,
    PersistGemv1<MIMO_WFMT_MXFP4, false, ROWS_NARROW, false, NORM_NONE>,
    PersistCombine<MIMO_WFMT_F32, ROWS_DEFAULT, false>,
    PersistCombine<MIMO_WFMT_F32, ROWS_DEFAULT, true>,
    PersistCombine<MIMO_WFMT_BF16, ROWS_DEFAULT, false>,
    PersistCombine<MIMO_WFMT_BF16, ROWS_DEFAULT, true>,
    PersistCombine<MIMO_WFMT_FP8, ROWS_DEFAULT, false>,
    PersistCombine<MIMO_WFMT_FP8, ROWS_DEFAULT, true>,
    PersistCombine<MIMO_WFMT_MXFP4, ROWS_DEFAULT, false>,
    PersistCombine<MIMO_WFMT_MXFP4, ROWS_DEFAULT, true>,
    PersistCombine<MIMO_WFMT_MXFP4, ROWS_NARROW, false>,
    PersistCombine<MIMO_WFMT_MXFP4, ROWS_NARROW, true>>;

int cuda_persist_kind(const void *kernel) { return PersistKernels::kind_of(kernel); }

__device__ __forceinline__ void red_release_add(unsigned *p, unsigned v)
{
    asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}

__device__ __forceinline__ unsigned atom_add_release(unsigned *p, unsigned v)
{
    unsigned old;
    asm volatile("atom.release.gpu.global.add.u32 %0, [%1], %2;" : "=r"(old) : "l"(p), "r"(v) : "memory");
    return old;
}

__global__ void __launch_bounds__(GEMV_THREADS, 2) persistent_step_kernel(const PersistStep s)
{
    __shared__ float red[UNIT_RED_FLOATS];
    __shared__ uint4 args[PERSIST_ARG_BYTES / 16];   // the instruction's arguments, read like kernel parameters
    __shared__ unsigned ready;                        // PersistWait::ready
    if (threadIdx.x == 0) {
        ready = 0u;
        if (s.stamps)
            atomicMin(s.stamps + 2 * s.n_ops, globaltimer_ns());
    }
    extern __shared__ float4 persist_dyn[];
    const UnitSmem sm{red, persist_dyn};
    const unsigned ctas = gridDim.x, k0 = s.sched_begin[blockIdx.x], k1 = s.sched_begin[blockIdx.x + 1];
    uint2 next = k0 < k1 ? s.sched[k0] : make_uint2(0u, 0u);
    for (unsigned k = k0; k < k1; k++) {
        const uint2 cur = next;   // (instruction, this block's first unit of it)
        if (k + 1 < k1)
            next = s.sched[k + 1];   // in flight while this instruction runs
        const int i = (int)cur.x;
        const PersistOp &op = s.ops[i];
        if (threadIdx.x < PERSIST_ARG_BYTES / 16)   // the previous unit's barrier ordered its reads before this
            args[threadIdx.x] = ((const uint4 *)op.args)[threadIdx.x];
        const unsigned units = op.units;
        const uint3 g = op.grid;
        const int kind = op.kind;
        PersistWait w{s.done + (size_t)(i > 0 ? i - 1 : 0) * PERSIST_COUNTER_STRIDE,
                      op.wait_units,
                      s.status,
                      &ready,
                      s.stamps ? s.stamps + s.n_ops + i : nullptr,
                      i};
        __syncthreads();
        for (unsigned j = cur.y; j < units; j += ctas) {
            const UnitCtx u{make_uint3(j % g.x, j / g.x % g.y, j / (g.x * g.y)), g, &w};
            PersistKernels::run(kind, u, sm, (const unsigned char *)args);
            w.need = 0;   // seen complete: the block's later units of this instruction need not wait
            __syncthreads();
            if (threadIdx.x == 0) {
                unsigned *count = s.done + (size_t)i * PERSIST_COUNTER_STRIDE;
                if (!s.stamps)
                    red_release_add(count, 1u);
                else if (atom_add_release(count, 1u) + 1u == units)
                    s.stamps[i] = globaltimer_ns();
            }
        }
    }
}

int cuda_persistent_occupancy(size_t dyn_smem, int *ctas_per_sm, mimo_error *err)
{
    CUDA_CHECK(cudaFuncSetAttribute(persistent_step_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)dyn_smem));
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(ctas_per_sm, persistent_step_kernel, GEMV_THREADS, dyn_smem));
    return 0;
}

int cuda_persistent_launch(const PersistStep &step, int ctas, size_t dyn_smem, cudaStream_t st, mimo_error *err)
{
    return cuda_launch("persistent_step_kernel", err, persistent_step_kernel, dim3(ctas), dim3(GEMV_THREADS), dyn_smem, st,
                       step);
}
