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
// zero-started MMAs, 27.3 us (0.41). The twenty-third session's form below: see the MMAs' paragraph.
//
// A block: 128 rows of position t's k slots (16 rows a consumer warp), the combine's sum over the slots in
// registers, x[t][row] += sum_j w_j y_j[row] written by one lane a row. The producer copies each slot's 128
// rows into a ring of stages — one tensor copy a 128-byte column segment (rows of 256 columns: one), landing
// with the hardware's 128-byte swizzle, rows past the matrix's end as zeros — and the rows' scale bytes (one
// bulk copy); every consumer warp reads every stage (its own 16 rows of it).
//
// The MMAs are the gate/up kernel's (e2m1_chunk_mma): in a 128-column chunk (4 scale blocks), lane
// (g, t) holds 8 consecutive codes of block j (columns 32 j + 8 t ..) of rows g and g + 8 for each j; every
// MMA (j, h) sums one block, B's columns 2 j (hi) and 2 j + 1 (lo) carry the input's block j, so after the
// chunk's 8 MMAs lane (g, t) holds block t's sums of both rows and applies its scales in fp32. The swizzle
// puts 16-byte unit u of row r at unit u ^ (r mod 8): the 8 row groups' words of one block lie in 32
// distinct banks. (The first form read the unswizzled rows, 32 words apart, block (i + g) mod 8 at step i,
// and used one C column a row group: 4.65 instructions a code in its loop against 3.6 here, 5.2 against 4.0
// in all; results/kernels/README.md, twenty-third session.) The input rides as hi + lo halves, as in gate/up.
// Sums are in a fixed order (deterministic), the slots in order like the combine kernel's; they agree with
// the CUDA-core kernel's to ~1e-6.
#include "cuda_bulk_copy.cuh"
#include "cuda_ops.cuh"
#include "cuda_tensor_map.cuh"

namespace {

constexpr int EDB_WARPS = 8;                       // consumer warps
constexpr int EDB_TILE_ROWS = 16 * EDB_WARPS;      // rows a block
constexpr int EDB_STAGES = 3;                      // ring stages (one slot's rows each)
constexpr int EDB_THREADS = (EDB_WARPS + 1) * 32;  // and the producer warp
constexpr int EDB_SEG = 256;                       // columns of a 128-byte segment: 8 scale blocks
constexpr int EDB_SEG_BYTES = EDB_TILE_ROWS * 128; // a segment's tensor copy
constexpr int EDB_ALIGN = 1024;                    // the 128-byte swizzle's alignment
// Up to `small`'s 768 columns (three segments: a 52 KB stage, 182 KB a block, one block an SM; its 8-position
// launch of 16 row tiles x 8 positions is one wave of 128 blocks).
constexpr int EDB_MAX_LD = 768;
constexpr int EDB_MAX_K = 8;
constexpr size_t EDB_MAX_SMEM = 200 * 1024;
// The default (GemvKnobs::down_bulk 1) takes matrices of at least this many rows: measured on the MiMo-V2.5-Pro
// shard's 6144 (hidden) and `small`'s 2048 (8 positions 40.1 -> 22.4 us, 16 positions 74.8 -> 42.7;
// results/kernels/README.md, twenty-fifth session); MiMo-V2-Flash's 4096 rows (512 columns at 4 ways) in its
// shard's steps only, with the session's other two changes (0/4: 8 positions 10.1 -> 6.7 ms).
constexpr int EDB_MIN_ROWS_DEFAULT = 2048;

// The dynamic shared memory of a block for rows of ld columns, from a 1024-aligned base: stages of the
// tile's weight segments, then its scale bytes (a stage a multiple of 1024 bytes); the ring's barriers; the
// position's k input rows as hi, then lo halves; and the base's alignment slack.
struct EdbLayout {
    size_t stage_w, stage, bars, xs_hi, xs_lo, total;
};
__host__ __device__ inline EdbLayout edb_layout(int ld)
{
    EdbLayout l;
    l.stage_w = (size_t)(ld / EDB_SEG) * EDB_SEG_BYTES;
    l.stage = l.stage_w + ((size_t)EDB_TILE_ROWS * (ld / 32) + EDB_ALIGN - 1) / EDB_ALIGN * EDB_ALIGN;
    l.bars = (size_t)EDB_STAGES * l.stage;
    l.xs_hi = l.bars + 2 * EDB_STAGES * sizeof(uint64_t);
    l.xs_lo = l.xs_hi + (size_t)EDB_MAX_K * ld * 2;
    l.total = l.xs_lo + (size_t)EDB_MAX_K * ld * 2 + EDB_ALIGN;
    return l;
}

using EdbRing = BulkRing<EDB_STAGES, EDB_WARPS>;

// MINB: blocks an SM the build is for (GemvKnobs::down_bulk_blocks): 3 holds the Pro shard's 8-position
// launch (48 row tiles x 8 positions) in one wave on 132 SMs.
template <int MINB>
__global__ void __launch_bounds__(EDB_THREADS, MINB)
    expert_down_bulk_kernel(const __grid_constant__ CUtensorMap wmap, const GemvParams p)
{
    extern __shared__ uint8_t edb_raw[];
    uint8_t *smem = edb_raw + ((EDB_ALIGN - smem_address(edb_raw) % EDB_ALIGN) % EDB_ALIGN);
    __shared__ float undo[EDB_MAX_K];   // a slot's 2^(14 - kx): the codes' 2^-14 and its inputs' 2^kx undone
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int ld = p.w.ld, rows = p.w.rows, pos = blockIdx.y, k = p.combine_k;
    const int row_base = blockIdx.x * EDB_TILE_ROWS, nrows = min(EDB_TILE_ROWS, rows - row_base);
    const EdbLayout L = edb_layout(ld);
    const EdbRing ring{(uint64_t *)(smem + L.bars), (uint64_t *)(smem + L.bars) + EDB_STAGES};
    if (threadIdx.x == 0)
        ring.init();
    // the expert ids, weights and inputs come from the kernels before: wait first, then let dependents launch
    pdl_wait();
    pdl_trigger();
    __syncthreads();

    const int nseg = ld / EDB_SEG;
    if (warp == EDB_WARPS) {   // the producer: slot j's segments and scale bytes into stage j mod 3
        if (lane == 0) {
            bulk_tensor_map_prefetch(&wmap);
            const uint32_t sbytes = (uint32_t)nrows * p.w.scale_ld;
            for (int j = 0; j < k; j++) {
                const int buf = ring.acquire(j);
                const int e = p.slot_expert[pos * k + j];
                uint8_t *st = smem + (size_t)buf * L.stage;
                bulk_barrier_expect(ring.full + buf, (uint32_t)L.stage_w + sbytes);   // whole boxes land
                for (int s = 0; s < nseg; s++)
                    bulk_tensor_copy_3d(st + (size_t)s * EDB_SEG_BYTES, &wmap, s * 128, row_base, e, ring.full + buf);
                bulk_copy_counted(st + L.stage_w, expert_scales(p.w, e) + (size_t)row_base * p.w.scale_ld, sbytes,
                                  ring.full + buf);
            }
        }
        return;
    }

    // consumers: warp w stages slot w's input row as hi + lo halves (its own scaling) while the copies land
    const int groups = ld / 8;   // 8-column groups of a row
    uint4 *xs_hi = (uint4 *)(smem + L.xs_hi), *xs_lo = (uint4 *)(smem + L.xs_lo);
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
    const int g = lane / 4, t = lane % 4, jb = g / 2;   // jb: the block whose B column (2 jb or 2 jb + 1) lane fills
    const int r0 = row_base + warp * 16 + g, r1 = r0 + 8;
    float *xrow = p.combine_x + (size_t)pos * p.combine_ldx;
    const bool owner = t == 0;   // lane (g, 0) ends with rows g and g + 8 of the warp's 16
    const float old0 = owner && r0 < rows ? xrow[r0] : 0.0f, old1 = owner && r1 < rows ? xrow[r1] : 0.0f;
    consumers_sync<EDB_WARPS * 32>();

    const int nb = ld / 32;   // scale blocks (and bytes) a row
    // the lane's word of its row g of the warp's 16 (row g + 8 is 1024 bytes on)
    const uint32_t lane_off = swizzle128_row_offset(warp * 16 + g, g, t);
    float s0 = 0.0f, s1 = 0.0f;   // the combine's sums of rows r0, r1 over the lane's blocks
    for (int j = 0; j < k; j++) {
        const int buf = ring.wait_full(j);
        const uint8_t *st = smem + (size_t)buf * L.stage;
        const uint8_t *sc = st + L.stage_w + (warp * 16 + g) * nb + t;   // row g's scale bytes; g + 8: 8 nb on
        const uint4 *xb = (g % 2 ? xs_lo : xs_hi) + j * groups + 4 * jb + t;
        float a0 = 0.0f, a1 = 0.0f;
        for (int s = 0; s < nseg; s++) {
            const uint8_t *seg = st + (size_t)s * EDB_SEG_BYTES;
#pragma unroll
            for (int c = 0; c < 2; c++) {   // the segment's 128-column chunks
                uint32_t w[1][2][4];        // [row g, g + 8][block]
#pragma unroll
                for (int r = 0; r < 2; r++)
#pragma unroll
                    for (int b = 0; b < 4; b++)
                        w[0][r][b] = *(const uint32_t *)(seg + 1024 * r + swizzle128_unit(lane_off, 4 * c + b));
                float cs[1][4];   // lane (g, t): block t's hi and lo sums of rows g and g + 8
                e2m1_chunk_mma<1>(w, xb[32 * s + 16 * c], jb, cs);
                const int blk = 8 * s + 4 * c;
                a0 = fmaf(cs[0][0] + cs[0][1], dev_e8m0_to_f32(sc[blk]), a0);
                a1 = fmaf(cs[0][2] + cs[0][3], dev_e8m0_to_f32(sc[8 * nb + blk]), a1);
            }
        }
        ring.release(j, lane);
        const float wj = p.combine_w[pos * k + j];
        s0 = fmaf(wj, a0 * undo[j], s0);
        s1 = fmaf(wj, a1 * undo[j], s1);
    }
    // the rows' sums over the 4 lanes of a row group (their blocks; the same order in every lane)
    s0 += __shfl_xor_sync(0xFFFFFFFFu, s0, 1);
    s1 += __shfl_xor_sync(0xFFFFFFFFu, s1, 1);
    s0 += __shfl_xor_sync(0xFFFFFFFFu, s0, 2);
    s1 += __shfl_xor_sync(0xFFFFFFFFu, s1, 2);
    if (owner) {
        if (r0 < rows)
            xrow[r0] = old0 + s0;
        if (r1 < rows)
            xrow[r1] = old1 + s1;
    }
}

// Tensor copies of the weights (16-byte aligned rows and experts, the set's size known) and bulk copies of
// each tile's scale bytes (16-byte aligned, a multiple of 16 bytes, the last tile's included).
bool edb_copyable(const GpuMat &m)
{
    return (uintptr_t)m.data % 16 == 0 && m.expert_stride_data % 16 == 0 && m.count >= 1 && (uintptr_t)m.scales % 16 == 0 &&
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
    return !glu && mode != 0 && kn.fused_combine && cuda_tensor_map_available() && p.w.fmt == MIMO_WFMT_MXFP4 && p.slot_expert && p.combine_x &&
           !p.accumulate && !p.norm_out.h && !p.norm_in.partials && !p.norm_factor && !p.qkv_out.q &&
           p.combine_k >= 1 && p.combine_k <= EDB_MAX_K && p.n % p.combine_k == 0 &&
           (mode == 2 || (p.n > p.combine_k && p.w.rows >= EDB_MIN_ROWS_DEFAULT)) && p.w.ld % EDB_SEG == 0 &&
           p.w.ld <= EDB_MAX_LD && p.w.scale_ld == p.w.ld / 32 && edb_copyable(p.w) && p.ldx % 4 == 0 &&
           (uintptr_t)p.x % 16 == 0 && edb_layout(p.w.ld).total <= EDB_MAX_SMEM &&
           !cuda_persist_recorder();   // the persistent kernel has no such body
}

int cuda_expert_down_bulk(const GemvParams &p, cudaStream_t st, mimo_error *err)
{
    // the set as [matrix][row][byte]: a box is a 128-byte segment of a tile's rows of one matrix
    CUtensorMap map;
    const cuuint64_t dims[3] = {(cuuint64_t)p.w.ld / 2, (cuuint64_t)p.w.rows, (cuuint64_t)p.w.count};
    const cuuint64_t strides[2] = {(cuuint64_t)p.w.ld / 2, (cuuint64_t)p.w.expert_stride_data};
    const cuuint32_t box[3] = {128, EDB_TILE_ROWS, 1};
    if (cuda_tensor_map_encode(&map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 3, p.w.data, dims, strides, box, err))
        return -1;
    const dim3 grid((p.w.rows + EDB_TILE_ROWS - 1) / EDB_TILE_ROWS, p.n / p.combine_k);
    expert_down_bulk_launch_count++;
    const auto kernel =
        cuda_gemv_knobs().down_bulk_blocks == 2 ? expert_down_bulk_kernel<2> : expert_down_bulk_kernel<3>;
    return cuda_launch("expert_down_bulk_kernel", err, kernel, grid, dim3(EDB_THREADS), edb_layout(p.w.ld).total, st,
                       map, p);
}

int cuda_expert_down_bulk_prepare(mimo_error *err)
{
    CUDA_CHECK(cudaFuncSetAttribute(expert_down_bulk_kernel<2>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)EDB_MAX_SMEM));
    CUDA_CHECK(cudaFuncSetAttribute(expert_down_bulk_kernel<3>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)EDB_MAX_SMEM));
    return cuda_tensor_map_prepare(err);   // without an encoder (an old driver) the kernel is not taken
}
