// MXFP4 expert slots (one position each: the routed experts' gate/up and down projections) on the
// tensor cores. The CUDA-core kernel (cuda_kernels.cu, gemv1) is bound by its decode there: Nsight
// Compute at the MiMo-V2.5-Pro shard shapes counts ~6.6 instructions per weight, most of them integer
// bit work on the ALU pipe, which Hopper issues at half the FMA rate (results/kernels/README.md).
// Here:
//  - the slot's input row is staged once per block in shared memory as fp16 hi + lo (x = hi + lo
//    keeps ~22 bits of x: the accuracy of the fp32 path), in the order the weight pairs come out of
//    a word;
//  - a 32-bit word of codes gives four half2 operands with two masks each: codes e and e + 4 sit 16
//    bits apart, like the two halves of a half2, so one shift places both (value * 2^-14, exact);
//    the block's power-of-two scale is folded in by one exact half multiply;
//  - m16n8k16 mma.sync with fp32 accumulation. Inside a lane's 32 columns the k order is the pairs'
//    order, the same for weights and inputs (a dot product does not care).
// A warp owns 16 rows and a slice of the columns; ksplit warps of a block share the 16 rows and meet
// in shared memory (fixed order: deterministic).
#include "cuda_ops.cuh"

#define FP4S_THREADS 256
#define FP4S_WARPS 8
#define FP4S_PIPE 2       // 128-column blocks whose weights are in flight before their math
#define FP4S_MAX_SMEM (48 * 1024)

namespace {

// Codes p and p + 4 of word w (p < 4) as a half2 (low half: code p), each the code's value * 2^-14:
// the code's exponent/mantissa bits to the half's bits 11..9, its sign to bit 15.
__device__ __forceinline__ uint32_t fp4_pair(uint32_t w, int p)
{
    const uint32_t mag = p < 3 ? w << (9 - 4 * p) : w >> 3;
    const uint32_t sign = w << (12 - 4 * p);
    return (mag & 0x0E000E00u) | (sign & 0x80008000u);
}

// The pair times the block scale 2^(e-127), as a half2: one exact multiply by 2^(e-113) while that is
// a normal half and every product stays one (e in [104, 128]); otherwise through float (values
// outside the half range saturate, as in the other tensor-core path).
__device__ __forceinline__ uint32_t fp4_pair_scaled(uint32_t bits, int e)
{
    __half2 h = *reinterpret_cast<__half2 *>(&bits);
    if (e >= 104 && e <= 128) {
        const __half f = __ushort_as_half((unsigned short)((e - 113 + 15) << 10));
        h = __hmul2(h, __halves2half2(f, f));
    } else {
        const float2 v = __half22float2(h);
        const float sc = dev_e8m0_to_f32((uint8_t)e) * 16384.0f;
        h = __floats2half2_rn(v.x * sc, v.y * sc);
    }
    return *reinterpret_cast<uint32_t *>(&h);
}

__device__ __forceinline__ void fp4s_mma(float *c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                         uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t half2_bits(float lo, float hi)
{
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&h);
}

// Shared memory: the staged input, pairs [K/2] of hi then [K/2] of lo (pair q holds columns
// 8 (q / 4) + q % 4 and that + 4), then the split reduction [warps][matrices][16 rows].
size_t fp4s_smem_bytes(int K) { return (size_t)K * 4 + FP4S_WARPS * 2 * 16 * sizeof(float); }

template <bool GLU>
__global__ void __launch_bounds__(FP4S_THREADS, 2) gemv_mxfp4_slots_kernel(const GemvParams p, int ksplit)
{
    constexpr int NM = GLU ? 2 : 1;
    extern __shared__ uint4 fp4s_smem[];
    const int K = p.w.ld;
    uint32_t *xs_hi = (uint32_t *)fp4s_smem, *xs_lo = xs_hi + K / 2;
    float *red = (float *)(xs_lo + K / 2);
    const int slot = blockIdx.y;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;

    // the expert ids and the input come from earlier kernels (PDL: cuda_common.cuh)
    pdl_trigger();
    pdl_wait();
    const int expert = p.slot_expert[slot];
    const int ks = warp % ksplit, tiles_per_block = FP4S_WARPS / ksplit;
    const int tile = blockIdx.x * tiles_per_block + warp / ksplit;
    const int rows = p.w.rows;
    const int rA = min(tile * 16 + g, rows - 1), rB = min(tile * 16 + g + 8, rows - 1);
    const size_t row_bytes = (size_t)K / 2;
    const uint8_t *dA[NM], *dB[NM], *sA[NM], *sB[NM];
#pragma unroll
    for (int m = 0; m < NM; m++) {
        const GpuMat &M = m == 0 ? p.w : p.w2;
        const uint8_t *d = (const uint8_t *)M.data + (long long)expert * M.expert_stride_data;
        const uint8_t *s = (const uint8_t *)M.scales + (long long)expert * M.expert_stride_scales;
        dA[m] = d + (size_t)rA * row_bytes;
        dB[m] = d + (size_t)rB * row_bytes;
        sA[m] = s + (size_t)rA * M.scale_ld;
        sB[m] = s + (size_t)rB * M.scale_ld;
    }
    const int nblk = (K + 127) / 128;
    const int b0 = nblk * ks / ksplit, b1 = nblk * (ks + 1) / ksplit;

    // The weights of FP4S_PIPE blocks (16 bytes of two rows per matrix per lane) are loaded before
    // their math; the first ones before the input is staged, which overlaps the two.
    uint4 wa[FP4S_PIPE][NM], wb[FP4S_PIPE][NM];
    int ea[FP4S_PIPE][NM], eb[FP4S_PIPE][NM];
    auto load_blocks = [&](int blk0) {
#pragma unroll
        for (int q = 0; q < FP4S_PIPE; q++) {
            const int c = (blk0 + q) * 128 + t * 32;
            const bool valid = blk0 + q < b1 && c < K;
#pragma unroll
            for (int m = 0; m < NM; m++) {
                wa[q][m] = valid ? __ldg((const uint4 *)(dA[m] + c / 2)) : make_uint4(0, 0, 0, 0);
                wb[q][m] = valid ? __ldg((const uint4 *)(dB[m] + c / 2)) : make_uint4(0, 0, 0, 0);
                ea[q][m] = valid ? __ldg(sA[m] + c / 32) : 127;
                eb[q][m] = valid ? __ldg(sB[m] + c / 32) : 127;
            }
        }
    };
    load_blocks(b0);

    // The input row, 8 columns (one word of codes) per group: all of a thread's loads in flight at once.
    const float *x = p.x + (long long)(slot / p.x_slot_div) * p.ldx;
    for (int base = 0; base < K / 8; base += 4 * FP4S_THREADS) {
        float4 v[4][2];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int grp = base + i * FP4S_THREADS + threadIdx.x;
            const float4 *src = (const float4 *)(x + 8 * grp);   // coherent loads (written by the previous kernel)
            v[i][0] = grp < K / 8 ? src[0] : make_float4(0.f, 0.f, 0.f, 0.f);
            v[i][1] = grp < K / 8 ? src[1] : make_float4(0.f, 0.f, 0.f, 0.f);
        }
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int grp = base + i * FP4S_THREADS + threadIdx.x;
            if (grp >= K / 8)
                continue;
            const float a[4] = {v[i][0].x, v[i][0].y, v[i][0].z, v[i][0].w}, b[4] = {v[i][1].x, v[i][1].y, v[i][1].z, v[i][1].w};
            uint32_t hi[4], lo[4];
#pragma unroll
            for (int pr = 0; pr < 4; pr++) {   // pair pr: columns pr and pr + 4 of the group
                const float ah = __half2float(__float2half_rn(a[pr])), bh = __half2float(__float2half_rn(b[pr]));
                hi[pr] = half2_bits(ah, bh);
                lo[pr] = half2_bits(a[pr] - ah, b[pr] - bh);
            }
            ((uint4 *)xs_hi)[grp] = make_uint4(hi[0], hi[1], hi[2], hi[3]);
            ((uint4 *)xs_lo)[grp] = make_uint4(lo[0], lo[1], lo[2], lo[3]);
        }
    }
    __syncthreads();

    // hi and lo products in separate accumulators: two independent mma chains
    float acc[NM][2][4];
#pragma unroll
    for (int m = 0; m < NM; m++)
#pragma unroll
        for (int i = 0; i < 4; i++)
            acc[m][0][i] = acc[m][1][i] = 0.0f;

    for (int blk0 = b0; blk0 < b1; blk0 += FP4S_PIPE) {
        if (blk0 != b0)
            load_blocks(blk0);
#pragma unroll
        for (int q = 0; q < FP4S_PIPE; q++) {
            if (blk0 + q >= b1)   // warp-uniform: mma.sync needs the whole warp
                continue;
            const int c = (blk0 + q) * 128 + t * 32;
            const bool bvalid = g == 0 && c < K;   // B column n = g: only position 0 exists
#pragma unroll
            for (int w = 0; w < 4; w++) {   // word w of the lane's 16 bytes: columns c + 8w .. c + 8w + 7
                uint4 bh = make_uint4(0, 0, 0, 0), bl = make_uint4(0, 0, 0, 0);
                if (bvalid) {
                    bh = *(const uint4 *)(xs_hi + c / 2 + 4 * w);
                    bl = *(const uint4 *)(xs_lo + c / 2 + 4 * w);
                }
#pragma unroll
                for (int m = 0; m < NM; m++) {
                    const uint32_t worda = w == 0 ? wa[q][m].x : w == 1 ? wa[q][m].y : w == 2 ? wa[q][m].z : wa[q][m].w;
                    const uint32_t wordb = w == 0 ? wb[q][m].x : w == 1 ? wb[q][m].y : w == 2 ? wb[q][m].z : wb[q][m].w;
                    uint32_t pa[4], pb[4];
#pragma unroll
                    for (int pr = 0; pr < 4; pr++) {
                        pa[pr] = fp4_pair_scaled(fp4_pair(worda, pr), ea[q][m]);
                        pb[pr] = fp4_pair_scaled(fp4_pair(wordb, pr), eb[q][m]);
                    }
                    // k slots (2t, 2t+1) <- pair 0 / 2, (2t+8, 2t+9) <- pair 1 / 3; B the same pairs of x
                    fp4s_mma(acc[m][0], pa[0], pb[0], pa[1], pb[1], bh.x, bh.y);
                    fp4s_mma(acc[m][1], pa[0], pb[0], pa[1], pb[1], bl.x, bl.y);
                    fp4s_mma(acc[m][0], pa[2], pb[2], pa[3], pb[3], bh.z, bh.w);
                    fp4s_mma(acc[m][1], pa[2], pb[2], pa[3], pb[3], bl.z, bl.w);
                }
            }
        }
    }

    // C[g][0] and C[g + 8][0] (position 0) sit in the lanes with t == 0
    if (t == 0)
#pragma unroll
        for (int m = 0; m < NM; m++) {
            red[(warp * NM + m) * 16 + g] = acc[m][0][0] + acc[m][1][0];
            red[(warp * NM + m) * 16 + g + 8] = acc[m][0][2] + acc[m][1][2];
        }
    __syncthreads();
    for (int i = threadIdx.x; i < tiles_per_block * 16; i += blockDim.x) {
        const int tl = i / 16, r = i % 16, row = (blockIdx.x * tiles_per_block + tl) * 16 + r;
        if (row >= rows)
            continue;
        float v[NM];
#pragma unroll
        for (int m = 0; m < NM; m++) {
            float s = 0.0f;
            for (int k = 0; k < ksplit; k++)   // fixed order
                s += red[((tl * ksplit + k) * NM + m) * 16 + r];
            v[m] = s;
        }
        const float out = GLU ? silu_f(v[0]) * v[NM - 1] : v[0];
        float *y = p.y + (size_t)slot * p.ldy + row;
        *y = p.accumulate ? *y + out : out;
    }
}

}  // namespace

bool cuda_gemv_mxfp4_slots_fits(const GemvParams &p)
{
    return p.w.fmt == MIMO_WFMT_MXFP4 && p.slot_expert && p.w.ld % 32 == 0 && fp4s_smem_bytes(p.w.ld) <= FP4S_MAX_SMEM;
}

int cuda_gemv_mxfp4_slots(const GemvParams &p, bool glu, cudaStream_t st, mimo_error *err)
{
    if (!cuda_gemv_mxfp4_slots_fits(p))
        return mimo_fail(err, "cuda gemv: the MXFP4 slot kernel cannot take this matrix (%d columns)", p.w.ld);
    const int nblk = (p.w.ld + 127) / 128, tiles = (p.w.rows + 15) / 16;
    // split the columns over up to 8 warps until the launch has ~8 warps of work per SM
    int ksplit = 1;
    while (ksplit < FP4S_WARPS && ksplit * 2 <= nblk && (long long)tiles * ksplit * p.n < 132LL * 8)
        ksplit *= 2;
    const int tiles_per_block = FP4S_WARPS / ksplit;
    const dim3 grid((tiles + tiles_per_block - 1) / tiles_per_block, p.n);
    const size_t smem = fp4s_smem_bytes(p.w.ld);
    if (glu)
        return cuda_launch("gemv_mxfp4_slots_kernel", err, gemv_mxfp4_slots_kernel<true>, grid, dim3(FP4S_THREADS), smem,
                           st, p, ksplit);
    return cuda_launch("gemv_mxfp4_slots_kernel", err, gemv_mxfp4_slots_kernel<false>, grid, dim3(FP4S_THREADS), smem, st,
                       p, ksplit);
}
