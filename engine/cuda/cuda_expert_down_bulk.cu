// The MXFP4 expert down projection with the MoE combine, several positions, on the tensor cores with its
// weights streamed through shared memory by the bulk-copy engine (expert_down_bulk_kernel;
// GemvKnobs::down_bulk says where it runs).
//
// Why: at 8 and 16 positions the CUDA-core kernel with the combine (gemv1_combine_kernel) runs at 0.38 of the
// calibration on the H200 (29 us for 49 MB at 8 positions, about as long as on the H100): issue- and
// latency-bound, like the gate/up slots before expert_glu_bulk_kernel (cuda_expert_bulk.cu, whose design
// this follows). Measured (results/kernels/README.md, twenty-first session): 28.4 us at 8 positions (0.40),
// the 8-position step 8.83 against 9.00 ms; still issue-bound (61% of issue slots, 5.4 instructions a
// code), and one copy a tile is as fast as 16 copies of 1 KB; with the scales converted once a stage and
// zero-started MMAs, 27.3 us (0.41).
//
// A block: 128 rows of position t's k slots (16 rows a consumer warp), the combine's sum over the slots in
// registers, x[t][row] += sum_j w_j y_j[row] written by the lane holding the row. The producer warp copies
// each slot's 128 rows and their scale bytes (contiguous: two bulk copies a slot) into a ring of stages;
// every consumer warp reads every stage (its own 16 rows of it).
//
// The MMAs: rows of ld / 2 bytes are a multiple of 32 words apart, so lanes reading the same column of
// different rows would share a bank. So at step i of a 256-column segment, row group g (rows g and g + 8
// of the warp's 16, lanes (g, 0..3)) takes scale block (i + g) mod 8: the 8 groups read 8 different blocks,
// 32 distinct banks. A's rows then hold different blocks, and B's column g holds the input's block
// (i + g) mod 8 (lanes (g, 0..3) fill it), so C[g][g] and C[g + 8][g] are the rows' sums over their block
// (the other columns are not used): lane (g, g / 2) holds both and applies the blocks' scales in fp32 after
// each step. The input rides as hi + lo halves (two MMAs a half-block), as in the gate/up kernel.
// Sums are in a fixed order (deterministic), the slots in order like the combine kernel's; they agree with
// the CUDA-core kernel's to ~1e-6.
#include "cuda_bulk_copy.cuh"
#include "cuda_ops.cuh"

namespace {

constexpr int EDB_WARPS = 8;                       // consumer warps
constexpr int EDB_TILE_ROWS = 16 * EDB_WARPS;      // rows a block
constexpr int EDB_STAGES = 3;                      // ring stages (one slot's rows each)
constexpr int EDB_THREADS = (EDB_WARPS + 1) * 32;  // and the producer warp
constexpr int EDB_BAR_BYTES = 128;
constexpr int EDB_SEG = 256;                       // columns of a segment: 8 scale blocks
constexpr int EDB_MAX_LD = 512;
constexpr int EDB_MAX_K = 8;
constexpr size_t EDB_MAX_SMEM = 200 * 1024;
// The default (GemvKnobs::down_bulk 1) takes matrices of at least this many rows: the MiMo-V2.5-Pro shard's
// 6144 (hidden) measured; the smaller presets' not.
constexpr int EDB_MIN_ROWS_DEFAULT = 6144;

// The dynamic shared memory of a block for rows of ld columns: barriers; stages of the tile's weights, then
// its scale bytes; the position's k input rows as hi, then lo halves; each consumer warp's 16 rows' scales as
// floats (converted once a stage, read at every step).
struct EdbLayout {
    size_t stage_w, stage, xs_hi, xs_lo, scales_f, total;
};
__host__ __device__ inline EdbLayout edb_layout(int ld)
{
    EdbLayout l;
    l.stage_w = (size_t)EDB_TILE_ROWS * (ld / 2);
    l.stage = l.stage_w + ((size_t)EDB_TILE_ROWS * (ld / 32) + 15) / 16 * 16;
    l.xs_hi = EDB_BAR_BYTES + (size_t)EDB_STAGES * l.stage;
    l.xs_lo = l.xs_hi + (size_t)EDB_MAX_K * ld * 2;
    l.scales_f = l.xs_lo + (size_t)EDB_MAX_K * ld * 2;
    l.total = l.scales_f + (size_t)EDB_WARPS * 16 * (ld / 32) * sizeof(float);
    return l;
}

using EdbRing = BulkRing<EDB_STAGES, EDB_WARPS>;

// MINB: blocks an SM the build is for (GemvKnobs::down_bulk_blocks): 3 holds the Pro shard's 8-position
// launch (48 row tiles x 8 positions) in one wave on 132 SMs, at 72 registers; 2 has 93.
template <int MINB> __global__ void __launch_bounds__(EDB_THREADS, MINB) expert_down_bulk_kernel(const GemvParams p)
{
    extern __shared__ __align__(16) uint8_t edb_smem[];
    __shared__ float undo[EDB_MAX_K];   // a slot's 2^(14 - kx): the codes' 2^-14 and its inputs' 2^kx undone
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int ld = p.w.ld, rows = p.w.rows, pos = blockIdx.y, k = p.combine_k;
    const int row_base = blockIdx.x * EDB_TILE_ROWS, nrows = min(EDB_TILE_ROWS, rows - row_base);
    const EdbLayout L = edb_layout(ld);
    const EdbRing ring{(uint64_t *)edb_smem, (uint64_t *)edb_smem + EDB_STAGES};
    uint8_t *stages = edb_smem + EDB_BAR_BYTES;
    if (threadIdx.x == 0)
        ring.init();
    // the expert ids, weights and inputs come from the kernels before: wait first, then let dependents launch
    pdl_wait();
    pdl_trigger();
    __syncthreads();

    if (warp == EDB_WARPS) {   // the producer: slot j's rows and scale bytes into stage j mod 3
        if (lane == 0) {
            const uint32_t wbytes = (uint32_t)nrows * (ld / 2), sbytes = (uint32_t)nrows * p.w.scale_ld;
            for (int j = 0; j < k; j++) {
                const int buf = ring.acquire(j);
                const int e = p.slot_expert[pos * k + j];
                uint8_t *st = stages + (size_t)buf * L.stage;
                bulk_barrier_expect(ring.full + buf, wbytes + sbytes);
                bulk_copy_counted(st, expert_data(p.w, e) + (size_t)row_base * (ld / 2), wbytes, ring.full + buf);
                bulk_copy_counted(st + L.stage_w, expert_scales(p.w, e) + (size_t)row_base * p.w.scale_ld, sbytes,
                                  ring.full + buf);
            }
        }
        return;
    }

    // consumers: warp w stages slot w's input row as hi + lo halves (its own scaling) while the copies land
    const int groups = ld / 8;   // 8-column groups of a row
    uint4 *xs_hi = (uint4 *)(edb_smem + L.xs_hi), *xs_lo = (uint4 *)(edb_smem + L.xs_lo);
    for (int j = warp; j < k; j += EDB_WARPS) {
        const float4 *x = (const float4 *)(p.x + (long long)(pos * k + j) * p.ldx);
        float4 v[EDB_MAX_LD / 256][2];
        float m = 0.0f;
#pragma unroll
        for (int i = 0; i < EDB_MAX_LD / 256; i++) {
            const int grp = lane + 32 * i;
            v[i][0] = v[i][1] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (grp < groups) {
                v[i][0] = x[2 * grp];
                v[i][1] = x[2 * grp + 1];
            }
            m = fmaxf(m, fmaxf(max_abs4(v[i][0]), max_abs4(v[i][1])));
        }
        for (int o = 16; o > 0; o >>= 1)
            m = fmaxf(m, __shfl_xor_sync(0xFFFFFFFFu, m, o));
        const int kx = half_range_exponent(m);
        const float f = __uint_as_float((uint32_t)(127 + kx) << 23);
#pragma unroll
        for (int i = 0; i < EDB_MAX_LD / 256; i++) {
            const int grp = lane + 32 * i;
            if (grp < groups)
                input_group_halves(v[i][0], v[i][1], f, xs_hi + j * groups + grp, xs_lo + j * groups + grp);
        }
        if (lane == 0)
            undo[j] = __uint_as_float((uint32_t)(127 + 14 - kx) << 23);
    }
    const int g = lane / 4, tq = lane % 4;
    const bool owner = tq == g / 2;   // lane (g, g / 2) ends with rows g and g + 8 of the warp's 16
    const int r0 = row_base + warp * 16 + g, r1 = r0 + 8;
    float *xrow = p.combine_x + (size_t)pos * p.combine_ldx;
    const float old0 = owner && r0 < rows ? xrow[r0] : 0.0f, old1 = owner && r1 < rows ? xrow[r1] : 0.0f;
    consumers_sync<EDB_WARPS * 32>();

    const int row_bytes = ld / 2, nseg = ld / EDB_SEG, nb = ld / 32;   // nb: scale blocks (and bytes) a row
    float *wsc = (float *)(edb_smem + L.scales_f) + warp * 16 * nb;       // this warp's rows' scales [row][block]
    float s0 = 0.0f, s1 = 0.0f;   // the combine's sums of rows r0, r1 (in the owner lane)
    for (int j = 0; j < k; j++) {
        const int buf = ring.wait_full(j);
        const uint8_t *st = stages + (size_t)buf * L.stage;
        const uint8_t *w0 = st + (warp * 16 + g) * row_bytes + 4 * tq, *w1 = w0 + 8 * row_bytes;
        {   // the warp's 16 rows' scale bytes as floats, 4 a lane at a time (scale_ld == nb, a multiple of 4)
            const uint8_t *sc = st + L.stage_w + warp * 16 * nb;
            for (int q = 4 * lane; q < 16 * nb; q += 128) {
                const uint32_t v = *(const uint32_t *)(sc + q);
                *(float4 *)(wsc + q) = make_float4(dev_e8m0_to_f32(v & 0xFF), dev_e8m0_to_f32((v >> 8) & 0xFF),
                                                   dev_e8m0_to_f32((v >> 16) & 0xFF), dev_e8m0_to_f32(v >> 24));
            }
            __syncwarp();
        }
        const float *sf0 = wsc + g * nb, *sf1 = sf0 + 8 * nb;
        const uint4 *xh = xs_hi + j * groups + tq, *xl = xs_lo + j * groups + tq;
        float a0 = 0.0f, a1 = 0.0f;
        for (int sg = 0; sg < nseg; sg++) {
#pragma unroll
            for (int i = 0; i < 8; i++) {
                const int b = sg * 8 + ((i + g) & 7);   // this row group's scale block at step i
                const uint32_t wa = *(const uint32_t *)(w0 + 16 * b), wb = *(const uint32_t *)(w1 + 16 * b);
                const uint4 h = xh[4 * b], l = xl[4 * b];
                float c[4];
#pragma unroll
                for (int hh = 0; hh < 2; hh++) {
                    const uint32_t p0 = e2m1_pair_scaled(wa, 2 * hh), p1 = e2m1_pair_scaled(wb, 2 * hh);
                    const uint32_t p2 = e2m1_pair_scaled(wa, 2 * hh + 1), p3 = e2m1_pair_scaled(wb, 2 * hh + 1);
                    if (hh == 0)
                        mma_16816_first(c, p0, p1, p2, p3, h.x, h.y);
                    else
                        mma_16816<true>(c, p0, p1, p2, p3, h.z, h.w);
                    mma_16816<true>(c, p0, p1, p2, p3, hh ? l.z : l.x, hh ? l.w : l.y);
                }
                a0 = fmaf(g & 1 ? c[1] : c[0], sf0[b], a0);
                a1 = fmaf(g & 1 ? c[3] : c[2], sf1[b], a1);
            }
        }
        ring.release(j, lane);
        const float wj = p.combine_w[pos * k + j];
        s0 = fmaf(wj, a0 * undo[j], s0);
        s1 = fmaf(wj, a1 * undo[j], s1);
    }
    if (owner) {
        if (r0 < rows)
            xrow[r0] = old0 + s0;
        if (r1 < rows)
            xrow[r1] = old1 + s1;
    }
}

// Bulk copies of whole tiles: 16-byte aligned rows, scale rows and experts, and each tile's scale bytes a
// multiple of 16 (the last tile's included).
bool edb_copyable(const GpuMat &m)
{
    return (uintptr_t)m.data % 16 == 0 && m.expert_stride_data % 16 == 0 && (uintptr_t)m.scales % 16 == 0 &&
           m.expert_stride_scales % 16 == 0 && (long long)m.rows * m.scale_ld % 16 == 0 &&
           (long long)EDB_TILE_ROWS * m.scale_ld % 16 == 0;
}

}  // namespace

static long long expert_down_bulk_launch_count = 0;
long long cuda_expert_down_bulk_launches() { return expert_down_bulk_launch_count; }

bool cuda_expert_down_bulk_takes(const GemvParams &p, bool glu)
{
    const GemvKnobs &kn = cuda_gemv_knobs();
    const int mode = kn.down_bulk;
    return !glu && mode != 0 && kn.fused_combine && p.w.fmt == MIMO_WFMT_MXFP4 && p.slot_expert && p.combine_x &&
           !p.accumulate && !p.norm_out.h && !p.norm_in.partials && !p.norm_factor && !p.qkv_out.q &&
           p.combine_k >= 1 && p.combine_k <= EDB_MAX_K && p.n % p.combine_k == 0 &&
           (mode == 2 || (p.n > p.combine_k && p.w.rows >= EDB_MIN_ROWS_DEFAULT)) && p.w.ld % EDB_SEG == 0 &&
           p.w.ld <= EDB_MAX_LD && p.w.scale_ld == p.w.ld / 32 && edb_copyable(p.w) && p.ldx % 4 == 0 &&
           (uintptr_t)p.x % 16 == 0 && edb_layout(p.w.ld).total <= EDB_MAX_SMEM &&
           !cuda_persist_recorder();   // the persistent kernel has no such body
}

int cuda_expert_down_bulk(const GemvParams &p, cudaStream_t st, mimo_error *err)
{
    const dim3 grid((p.w.rows + EDB_TILE_ROWS - 1) / EDB_TILE_ROWS, p.n / p.combine_k);
    expert_down_bulk_launch_count++;
    const auto kernel =
        cuda_gemv_knobs().down_bulk_blocks == 2 ? expert_down_bulk_kernel<2> : expert_down_bulk_kernel<3>;
    return cuda_launch("expert_down_bulk_kernel", err, kernel, grid, dim3(EDB_THREADS), edb_layout(p.w.ld).total, st,
                       p);
}

int cuda_expert_down_bulk_prepare(mimo_error *err)
{
    CUDA_CHECK(cudaFuncSetAttribute(expert_down_bulk_kernel<2>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)EDB_MAX_SMEM));
    CUDA_CHECK(cudaFuncSetAttribute(expert_down_bulk_kernel<3>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)EDB_MAX_SMEM));
    return 0;
}
