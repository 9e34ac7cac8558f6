// MXFP4 gate/up expert slots on the tensor cores, their weights streamed through shared memory by the
// bulk-copy engine (expert_glu_bulk_kernel; GemvKnobs::slot_bulk says where it runs).
//
// Why (results/kernels/README.md, thirteenth and nineteenth sessions): on the CUDA cores each MXFP4 code
// costs ~5 instructions (decode, FMA, loads), which at the H100's bandwidth is as much issue time as the
// bytes take, so the slot kernels stay at 0.45-0.61 of the calibration; a tensor-core kernel that loaded its
// weights per lane (13th session) removed the arithmetic but waited on its loads (a chunk ahead a warp is
// too little in flight). Here one producer lane streams the block's rows through a ring of shared-memory
// stages (a tensor copy per matrix and stage, and per matrix and tile of its scale bytes; completion on a
// barrier), and eight consumer warps decode and multiply: nothing in flight costs a register.
//
// A block: one slot's tiles of 16 gate rows and the same 16 up rows, over the whole row, one tile after the
// other through the same ring (so the input row is staged once a block, and the ring does not drain
// between tiles); the launcher splits each slot's tiles evenly over its share of one wave of resident
// blocks (GemvKnobs::slot_bulk_tiles). A stage holds 2048 columns of a tile's 32 rows: per matrix one
// four-dimensional tensor copy of 8 segments of 128 bytes x 16 rows, landing [segment][row][128 bytes] with
// the hardware's 128-byte swizzle (16-byte unit u of row r at u ^ (r mod 8): the 8 row groups' words of one
// scale block lie in 32 distinct banks); two stages of 32 KB, two blocks an SM. (The first form copied 1 KB
// a row, 32 copies a stage and 32 more for a tile's scales into rows padded apart: 42.3 us at 8 positions
// against 36.4 now, 80.0 against 65.9 at 16; eight 3-d copies a matrix, one a segment, 37.5 / 68.1;
// results/kernels/README.md, twenty-sixth session.) Consumer warp w takes the stage's 128-column chunks w
// and w + 8 (4 scale blocks each) of both matrices. Its m16n8k16 MMAs: A = 16
// rows x 16 codes decoded into halves (code x 2^-14, exact), B = the slot's input row, scaled by a power of
// two into the half range and split as hi + lo. In a chunk, lane (g, t) holds 8 consecutive codes of scale
// block j (columns 32 j + 8 t ..) of rows g and g + 8, so every MMA of block j sums one scale block; B's
// columns 2 j and 2 j + 1 (hi, lo) are the only non-zero ones for block j (lanes with g = 2 j, 2 j + 1 fill
// them), so after the chunk's 8 MMAs lane (g, t) holds block t's sums in its two accumulator columns and
// applies that block's scale in fp32. No scale touches a half, and no lane's B is idle: each lane feeds
// exactly one block per chunk. (Measured, results/kernels/README.md, twentieth session: 32-row tiles and
// 256- / 512-byte copies were slower, the MXFP4 slots' CUDA-core kernel's equal at best; twenty-first: on
// the H200, 4 tiles a block at 8 positions 42.3 us against 48.3 with one, 8 at 16 positions 80.0 against
// 93.0.)
// Sums are in a fixed order (deterministic) but not the CUDA-core kernel's: they agree to ~1e-6.
// With a folded RMSNorm (GemvNormX) the slot's input row is the residual: x * w staged, the norm's factor
// (from the row's sum of x^2, which the staging has in registers) folded into the final scale.
// With the router's top-k (GemvRouteIn) the producer warp picks the slot's expert from the router's logits
// after the wait (the route kernel's function), before its first copy; the consumers never need the id.
#include "cuda_bulk_copy.cuh"
#include "cuda_ops.cuh"
#include "cuda_route_topk.cuh"
#include "cuda_tensor_map.cuh"

namespace {

constexpr int EGB_CHUNK = 128;                            // columns of a consumer warp's chunk: 4 scale blocks
constexpr int EGB_CONSUMERS = 8;                          // consumer warps
constexpr int EGB_CHUNKS_PER_WARP = 2;                    // of a stage
constexpr int EGB_TILE_ROWS = 16;                         // gate rows a block (and as many up rows)
constexpr int EGB_ROWS = 2 * EGB_TILE_ROWS;               // rows a stage holds: gate, then up
constexpr int EGB_STAGE_CHUNKS = EGB_CONSUMERS * EGB_CHUNKS_PER_WARP;
constexpr int EGB_STAGE_COLS = EGB_CHUNK * EGB_STAGE_CHUNKS;
constexpr int EGB_SEG = 256;                              // columns of a 128-byte segment: two chunks
constexpr int EGB_STAGE_SEGS = EGB_STAGE_COLS / EGB_SEG;
constexpr int EGB_BOX_BYTES = EGB_STAGE_SEGS * EGB_TILE_ROWS * 128;   // a matrix's tensor copy a stage
constexpr int EGB_STAGE_BYTES = 2 * EGB_BOX_BYTES;
constexpr int EGB_STAGES = 2;
constexpr int EGB_THREADS = (EGB_CONSUMERS + 1) * 32;     // and the producer warp
constexpr int EGB_BAR_BYTES = 128;                        // the stages' full and empty barriers
constexpr int EGB_ALIGN = 1024;                           // the 128-byte swizzle's alignment
constexpr size_t EGB_MAX_SMEM = 200 * 1024;
constexpr int EGB_X_GROUPS = 4;                           // 8-column input groups a consumer thread stages
constexpr int EGB_MAX_LD = EGB_X_GROUPS * 8 * EGB_CONSUMERS * 32;
// The default (GemvKnobs::slot_bulk 1) takes rows of at least this many columns: measured faster on the
// MiMo-V2.5-Pro shard's 6144 and, with the blocks of a launch balanced (egb_tiles_per_block), on `small`'s 2048
// (8 positions 60.1 -> 50.3 us, 16 positions 114.6 -> 96.6; with the earlier powers-of-two tile counts it was
// slower there: results/kernels/README.md, twenty-fifth session); MiMo-V2-Flash's 4096 in its shard's steps
// only, with the session's other two changes (0/4: 8 positions 10.1 -> 6.7 ms).
constexpr int EGB_MIN_LD_DEFAULT = 2048;

// The dynamic shared memory of a block for rows of ld columns, from a 1024-aligned base: the stages (each
// the gate box, then the up box: [segment][row][128 bytes], swizzled), two tiles' scale bytes (this tile's and
// the next one's; a box a matrix, rows 4 x an odd number of words apart — the box's columns past the row's
// end land as zeros — so the 8 row groups of a warp's byte reads hit distinct banks; a box 16 x that pitch,
// a multiple of 128 bytes), the ring's barriers, the input row's hi and lo halves (lo 64 bytes further than
// hi's end, so a quarter warp's hi and lo reads take distinct banks), and the base's alignment slack.
struct EgbLayout {
    int scale_pitch;
    size_t scales, scale_tile, bars, xs_hi, xs_lo, total;
};
__host__ __device__ inline EgbLayout egb_layout(int ld)
{
    EgbLayout l;
    const int words = ld / EGB_CHUNK;   // scale bytes of a row / 4
    l.scale_pitch = (words % 8 == 4 ? words : words + (12 - words % 8) % 8) * 4;
    l.scales = (size_t)EGB_STAGES * EGB_STAGE_BYTES;
    l.scale_tile = (size_t)EGB_ROWS * l.scale_pitch;
    l.bars = l.scales + 2 * l.scale_tile;
    l.xs_hi = l.bars + EGB_BAR_BYTES;
    l.xs_lo = l.xs_hi + (size_t)2 * ld + 64;
    l.total = l.xs_lo + (size_t)2 * ld + EGB_ALIGN;
    return l;
}

// The tensor maps of a launch: the gate and up sets' codes as [expert][segment][row][128 bytes] (a box: a
// stage's 8 segments of a tile's 16 rows, 128-byte swizzle) and their scale bytes as [expert][row][word] (a
// box: a tile's 16 rows, each the layout's pitch wide, unswizzled).
struct EgbMaps {
    CUtensorMap codes[2], scales[2];
};

using EgbRing = BulkRing<EGB_STAGES, EGB_CONSUMERS>;

// The input row x (ld floats) times 2^kx as hi + lo halves, for every 8 columns c..c+7 the pairs (c, c+4),
// (c+1, c+5), (c+2, c+6), (c+3, c+7) (e2m1_pair_scaled's order). kx puts the row's largest magnitude in
// [2^14, 2^15): the halves keep ~22 bits of every input within 2^24 of it. Returns kx (consumer threads).
// A thread's 8-column groups are loaded at once and kept in registers (one round trip: loops of dependent
// loads cost the first measured build ~10 us a block before its first MMA).
// NORMX (GemvNormX, norm = its weights and eps): x is the residual row; x * w is staged and *factor set to the
// norm's 1 / sqrt(sum x^2 / ld + eps) (the warps' sums in a fixed order, in double: deterministic).
template <bool NORMX>
__device__ int stage_input_halves(const float *x, int ld, uint4 *hi, uint4 *lo, float *warp_max, double *warp_sq,
                                  const GemvNormX &norm, float *factor)
{
    const int tid = threadIdx.x, nthreads = EGB_CONSUMERS * 32;
    float4 v[EGB_X_GROUPS][2], nw[NORMX ? EGB_X_GROUPS : 1][2];
#pragma unroll
    for (int i = 0; i < EGB_X_GROUPS; i++) {
        const int grp = tid + i * nthreads;
        v[i][0] = v[i][1] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (grp < ld / 8) {
            v[i][0] = ((const float4 *)x)[2 * grp];
            v[i][1] = ((const float4 *)x)[2 * grp + 1];
        }
        if constexpr (NORMX) {
            nw[i][0] = nw[i][1] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (grp < ld / 8) {
                nw[i][0] = __ldg((const float4 *)norm.w + 2 * grp);
                nw[i][1] = __ldg((const float4 *)norm.w + 2 * grp + 1);
            }
        }
    }
    if constexpr (NORMX) {
        float sq = 0.0f;
#pragma unroll
        for (int i = 0; i < EGB_X_GROUPS; i++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const float4 a = v[i][h], b = nw[i][h];
                sq += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w;
                v[i][h] = make_float4(a.x * b.x, a.y * b.y, a.z * b.z, a.w * b.w);
            }
        for (int o = 16; o > 0; o >>= 1)
            sq += __shfl_xor_sync(0xFFFFFFFFu, sq, o);
        if (tid % 32 == 0)
            warp_sq[tid / 32] = (double)sq;
    }
    float m = 0.0f;
#pragma unroll
    for (int i = 0; i < EGB_X_GROUPS; i++)
#pragma unroll
        for (int h = 0; h < 2; h++)
            m = fmaxf(m, max_abs4(v[i][h]));
    for (int o = 16; o > 0; o >>= 1)
        m = fmaxf(m, __shfl_xor_sync(0xFFFFFFFFu, m, o));
    if (tid % 32 == 0)
        warp_max[tid / 32] = m;
    consumers_sync<EGB_CONSUMERS * 32>();
    m = 0.0f;
    for (int w = 0; w < EGB_CONSUMERS; w++)
        m = fmaxf(m, warp_max[w]);
    if constexpr (NORMX) {
        double sum = 0.0;
        for (int w = 0; w < EGB_CONSUMERS; w++)
            sum += warp_sq[w];
        *factor = rms_norm_factor(sum, ld, norm.eps);
    }
    const int kx = half_range_exponent(m);
    const float f = __uint_as_float((uint32_t)(127 + kx) << 23);
#pragma unroll
    for (int i = 0; i < EGB_X_GROUPS; i++) {
        const int grp = tid + i * nthreads;
        if (grp >= ld / 8)
            break;
        input_group_halves(v[i][0], v[i][1], f, hi + grp, lo + grp);
    }
    return kx;
}

template <bool NORMX, bool ROUTE>
__global__ void __launch_bounds__(EGB_THREADS, 2)
    expert_glu_bulk_kernel(const __grid_constant__ EgbMaps maps, const GemvParams p, int tiles_per_block)
{
    extern __shared__ uint8_t egb_raw[];
    uint8_t *egb_smem = egb_raw + ((EGB_ALIGN - smem_address(egb_raw) % EGB_ALIGN) % EGB_ALIGN);
    __shared__ float red[2][2][EGB_CONSUMERS][EGB_TILE_ROWS];   // [tile parity][matrix][warp][row]
    __shared__ float warp_max[EGB_CONSUMERS];
    __shared__ double warp_sq[NORMX ? EGB_CONSUMERS : 1];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int ld = p.w.ld, rows = p.w.rows, slot = blockIdx.y;
    const int tile0 = blockIdx.x * tiles_per_block;
    const int ntile = min(tiles_per_block, (rows + EGB_TILE_ROWS - 1) / EGB_TILE_ROWS - tile0);
    const int nch = ld / EGB_CHUNK, nstage = (nch + EGB_STAGE_CHUNKS - 1) / EGB_STAGE_CHUNKS;
    const EgbLayout L = egb_layout(ld);
    const EgbRing ring{(uint64_t *)(egb_smem + L.bars), (uint64_t *)(egb_smem + L.bars) + EGB_STAGES};
    uint8_t *stages = egb_smem;
    if (threadIdx.x == 0)
        ring.init();
    if constexpr (ROUTE)
        __syncthreads();   // the barriers' initialisation, before the wait: the consumers stage during the top-k
    // the expert ids come from the router: wait first, then let dependents launch (slot_aware_trigger_wait)
    pdl_wait();
    pdl_trigger();
    int e = 0;   // the producer's (the consumers' scale bytes and codes arrive by its copies)
    if constexpr (ROUTE) {
        if (warp == EGB_CONSUMERS)
            e = route_slot_expert(p.route, slot);
    } else {
        e = p.slot_expert[slot];
        __syncthreads();   // the barriers' initialisation
    }

    if (warp == EGB_CONSUMERS) {   // the producer: a tensor copy a matrix and stage, and a tile's scale boxes
        if (lane == 0) {
            for (int m = 0; m < 2; m++) {
                bulk_tensor_map_prefetch(&maps.codes[m]);
                bulk_tensor_map_prefetch(&maps.scales[m]);
            }
            const uint32_t scale_bytes = (uint32_t)L.scale_tile;   // whole boxes land, zeros included
            for (int ti = 0, q = 0; ti < ntile; ti++) {
                const int row_base = (tile0 + ti) * EGB_TILE_ROWS;
                for (int s = 0; s < nstage; s++, q++) {   // q: the block's stage count, over its tiles
                    // (the wait also frees the tile's scale buffer: stage q - 2 is past every stage of the tile
                    // two back, the last one that read it)
                    const int buf = ring.acquire(q);
                    bulk_barrier_expect(ring.full + buf, EGB_STAGE_BYTES + (s == 0 ? scale_bytes : 0u));
                    for (int m = 0; m < 2; m++)
                        bulk_tensor_copy_4d(stages + (size_t)buf * EGB_STAGE_BYTES + m * EGB_BOX_BYTES, &maps.codes[m],
                                            0, row_base, s * EGB_STAGE_SEGS, e, ring.full + buf);
                    if (s == 0)   // with a tile's first stage
                        for (int m = 0; m < 2; m++)
                            bulk_tensor_copy_3d(egb_smem + L.scales + (ti % 2) * L.scale_tile +
                                                    (size_t)m * EGB_TILE_ROWS * L.scale_pitch,
                                                &maps.scales[m], 0, row_base, e, ring.full + buf);
                }
            }
        }
        return;
    }

    // consumers: the input row into shared memory while the first stages land
    uint4 *xs_hi = (uint4 *)(egb_smem + L.xs_hi), *xs_lo = (uint4 *)(egb_smem + L.xs_lo);
    float norm = 1.0f;   // a folded norm's factor, or one published by the GEMV before (GemvParams::norm_factor)
    const int kx = stage_input_halves<NORMX>(p.x + (long long)(slot / p.x_slot_div) * p.ldx, ld, xs_hi, xs_lo, warp_max,
                                             warp_sq, p.norm_x, &norm);
    if (!NORMX && p.norm_factor)
        norm = __ldcg(p.norm_factor + slot / p.x_slot_div);
    consumers_sync<EGB_CONSUMERS * 32>();

    const int g = lane / 4, t = lane % 4;
    const int jb = g / 2;                           // the scale block whose B columns this lane fills
    const uint4 *xb = g % 2 ? xs_lo : xs_hi;        // column 2 jb (hi) or 2 jb + 1 (lo)
    // the lane's word of a box's row g (row g + 8 is 1024 bytes on)
    const uint32_t lane_off = swizzle128_row_offset(g, g, t);
    // undo the codes' 2^-14 and the inputs' 2^kx (exact: a power of two), then the norm's factor
    const float undo = __uint_as_float((uint32_t)(127 + 14 - kx) << 23) * norm;
    for (int ti = 0; ti < ntile; ti++) {
        const int row_base = (tile0 + ti) * EGB_TILE_ROWS;
        const uint8_t *scales = egb_smem + L.scales + (ti % 2) * L.scale_tile;   // landed with its first stage
        float acc[2][2] = {};   // [matrix][row g, g + 8]: block t's sums of each chunk
        for (int s = 0; s < nstage; s++) {
            const int q = ti * nstage + s, buf = ring.wait_full(q);   // q: the producer's count
            const int nc = min(EGB_STAGE_CHUNKS, nch - s * EGB_STAGE_CHUNKS);
#pragma unroll
            for (int cc = 0; cc < EGB_CHUNKS_PER_WARP; cc++) {
                const int cs = warp + cc * EGB_CONSUMERS;   // the chunk of the stage
                if (cs >= nc)
                    break;
                // the chunk: units 4 (cs % 2) .. + 3 of segment cs / 2
                const uint8_t *st = stages + (size_t)buf * EGB_STAGE_BYTES + (cs / 2) * (EGB_TILE_ROWS * 128);
                const int u0 = 4 * (cs % 2);
                uint32_t w[2][2][4];   // [matrix][row g, g + 8][block]
#pragma unroll
                for (int m = 0; m < 2; m++)
#pragma unroll
                    for (int k = 0; k < 2; k++)
#pragma unroll
                        for (int j = 0; j < 4; j++)
                            w[m][k][j] = *(const uint32_t *)(st + m * EGB_BOX_BYTES + 1024 * k +
                                                             swizzle128_unit(lane_off, u0 + j));
                const int chunk = s * EGB_STAGE_CHUNKS + cs;
                float c[2][4];   // [matrix]: the gate and up tiles
                e2m1_chunk_mma<2>(w, xb[chunk * 16 + 4 * jb + t], jb, c);
                // lane (g, t): columns 2t (hi) and 2t + 1 (lo) hold block t's sums of rows g and g + 8
#pragma unroll
                for (int m = 0; m < 2; m++)
#pragma unroll
                    for (int k = 0; k < 2; k++) {
                        const uint8_t sb = scales[(m * EGB_TILE_ROWS + g + 8 * k) * L.scale_pitch + chunk * 4 + t];
                        acc[m][k] = fmaf(c[m][2 * k] + c[m][2 * k + 1], dev_e8m0_to_f32(sb), acc[m][k]);
                    }
            }
            ring.release(q, lane);   // this warp is done with the stage
        }
        // the row's sums over the 4 lanes of a row group (their blocks), then over the chunk warps
#pragma unroll
        for (int m = 0; m < 2; m++)
#pragma unroll
            for (int k = 0; k < 2; k++) {
                acc[m][k] += __shfl_xor_sync(0xFFFFFFFFu, acc[m][k], 1);
                acc[m][k] += __shfl_xor_sync(0xFFFFFFFFu, acc[m][k], 2);
                if (t == 0)
                    red[ti % 2][m][warp][g + 8 * k] = acc[m][k];
            }
        consumers_sync<EGB_CONSUMERS * 32>();   // this tile's red half is next written two tiles on, after another sync
        if (threadIdx.x < EGB_TILE_ROWS && row_base + (int)threadIdx.x < rows) {
            float v[2];
#pragma unroll
            for (int m = 0; m < 2; m++) {
                float sum = 0.0f;
                for (int k = 0; k < EGB_CONSUMERS; k++)   // fixed order: deterministic
                    sum += red[ti % 2][m][k][threadIdx.x];
                v[m] = sum * undo;
            }
            p.y[(size_t)slot * p.ldy + row_base + threadIdx.x] = silu_f(v[0]) * v[1];
        }
    }
}

}  // namespace

static long long expert_glu_bulk_launch_count = 0;
long long cuda_expert_glu_bulk_launches() { return expert_glu_bulk_launch_count; }

// Tensor copies of a set: its size known, codes and scale rows and experts on 16-byte boundaries (ld a
// multiple of 512), whole 128-byte segments.
static bool egb_copyable(const GpuMat &m)
{
    return m.count >= 1 && (uintptr_t)m.data % 16 == 0 && m.expert_stride_data % 16 == 0 && m.ld % (2 * EGB_SEG) == 0 &&
           m.scale_ld % 16 == 0 && m.expert_stride_scales % 16 == 0 && (uintptr_t)m.scales % 16 == 0;
}

static int egb_sm_count = 0;

// Tiles a block takes by default (GemvKnobs::slot_bulk_tiles 0; a count N > 0 sets it): as many as split
// each slot's tiles evenly over its share of one wave of resident blocks (the Pro shard's 8 positions: 64
// slots x 16 tiles at 2 blocks an SM on 132 SMs, 4 blocks a slot of 4 tiles; `small`'s 64 slots x 48 tiles,
// 4 blocks of 12 — the earlier rule's powers of two gave 3 blocks of 16, 192 blocks on 264 places). 0 where
// the occupancy query failed.
static int egb_balanced_tiles(const GemvParams &p)
{
    const int ntiles = (p.w.rows + EGB_TILE_ROWS - 1) / EGB_TILE_ROWS;
    if (egb_sm_count == 0)   // before cuda_expert_glu_bulk_prepare
        return 0;
    static int cached_ld = -1, cached_blocks = 0;   // blocks an SM at that row length
    if (cached_ld != p.w.ld) {
        int blocks = 0;
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, expert_glu_bulk_kernel<false, false>, EGB_THREADS,
                                                          egb_layout(p.w.ld).total) != cudaSuccess) {
            (void)cudaGetLastError();   // not a sticky error: the caller reports it
            return 0;
        }
        cached_ld = p.w.ld;
        cached_blocks = blocks > 0 ? blocks : 1;
    }
    const long long resident = (long long)cached_blocks * egb_sm_count;
    const int blocks_per_slot = (int)max(1LL, min((long long)ntiles, resident / p.n));
    return (ntiles + blocks_per_slot - 1) / blocks_per_slot;
}

static int egb_tiles_per_block(const GemvParams &p)
{
    const int knob = cuda_gemv_knobs().slot_bulk_tiles;
    return knob > 0 ? min(knob, (p.w.rows + EGB_TILE_ROWS - 1) / EGB_TILE_ROWS) : egb_balanced_tiles(p);
}

bool cuda_expert_glu_bulk_takes(const GemvParams &p, bool glu)
{
    const int mode = cuda_gemv_knobs().slot_bulk;
    // by default at several positions, and at one where its slots' tiles fill more than a wave of blocks (each
    // block taking two tiles or more: `small`'s 768 rows, not the Pro shard's 256; results/kernels/README.md,
    // twenty-ninth session)
    return glu && mode != 0 && p.w.fmt == MIMO_WFMT_MXFP4 && p.slot_expert && !p.accumulate &&
           (mode == 2 || (p.w.ld >= EGB_MIN_LD_DEFAULT && (p.n > p.x_slot_div || egb_balanced_tiles(p) >= 2))) &&
           cuda_tensor_map_available() &&
           p.w.scale_ld == p.w.ld / 32 && p.w2.scale_ld == p.w.scale_ld && p.w2.ld == p.w.ld &&
           p.w2.rows == p.w.rows && egb_copyable(p.w) && egb_copyable(p.w2) && p.w.ld <= EGB_MAX_LD &&
           egb_layout(p.w.ld).total <= EGB_MAX_SMEM &&
           (!p.norm_x.w || (cuda_gemv_knobs().norm_x != 0 && !p.norm_factor && (uintptr_t)p.norm_x.w % 16 == 0)) &&
           !cuda_persist_recorder();   // the persistent kernel has no such body
}

// The launch's tensor maps: a set's codes as [expert][segment][row][128 bytes], its scale bytes as
// [expert][row][word] with boxes as wide as the layout's pitch (the words past a row's end land as zeros).
static int egb_maps(const GemvParams &p, EgbMaps *maps, mimo_error *err)
{
    const EgbLayout L = egb_layout(p.w.ld);
    for (int m = 0; m < 2; m++) {
        const GpuMat &w = m ? p.w2 : p.w;
        const cuuint64_t dims[4] = {128, (cuuint64_t)w.rows, (cuuint64_t)w.ld / EGB_SEG, (cuuint64_t)w.count};
        const cuuint64_t strides[3] = {(cuuint64_t)w.ld / 2, 128, (cuuint64_t)w.expert_stride_data};
        const cuuint32_t box[4] = {128, EGB_TILE_ROWS, EGB_STAGE_SEGS, 1};
        if (cuda_tensor_map_encode(&maps->codes[m], CU_TENSOR_MAP_DATA_TYPE_UINT8, 4, w.data, dims, strides, box, err))
            return -1;
        const cuuint64_t sdims[3] = {(cuuint64_t)w.scale_ld / 4, (cuuint64_t)w.rows, (cuuint64_t)w.count};
        const cuuint64_t sstrides[2] = {(cuuint64_t)w.scale_ld, (cuuint64_t)w.expert_stride_scales};
        const cuuint32_t sbox[3] = {(cuuint32_t)L.scale_pitch / 4, EGB_TILE_ROWS, 1};
        if (cuda_tensor_map_encode(&maps->scales[m], CU_TENSOR_MAP_DATA_TYPE_UINT32, 3, w.scales, sdims, sstrides, sbox,
                                   err, CU_TENSOR_MAP_SWIZZLE_NONE))
            return -1;
    }
    return 0;
}

int cuda_expert_glu_bulk(const GemvParams &p, cudaStream_t st, mimo_error *err)
{
    const int tpb = egb_tiles_per_block(p);
    if (tpb < 1)
        return mimo_fail(err, "cuda gemv: the occupancy of expert_glu_bulk_kernel at %d columns", p.w.ld);
    EgbMaps maps;
    if (egb_maps(p, &maps, err))
        return -1;
    const int ntiles = (p.w.rows + EGB_TILE_ROWS - 1) / EGB_TILE_ROWS;
    const dim3 grid((ntiles + tpb - 1) / tpb, p.n);
    expert_glu_bulk_launch_count++;
    const bool normx = p.norm_x.w != nullptr, route = p.route.logits != nullptr;
    const auto kernel = normx ? (route ? expert_glu_bulk_kernel<true, true> : expert_glu_bulk_kernel<true, false>)
                              : (route ? expert_glu_bulk_kernel<false, true> : expert_glu_bulk_kernel<false, false>);
    return cuda_launch("expert_glu_bulk_kernel", err, kernel, grid, dim3(EGB_THREADS), egb_layout(p.w.ld).total, st, maps,
                       p, tpb);
}

int cuda_expert_glu_bulk_prepare(mimo_error *err)
{
    int device = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&egb_sm_count, cudaDevAttrMultiProcessorCount, device));
    const auto kernels = {expert_glu_bulk_kernel<false, false>, expert_glu_bulk_kernel<true, false>,
                          expert_glu_bulk_kernel<false, true>, expert_glu_bulk_kernel<true, true>};
    for (const auto kernel : kernels)
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)EGB_MAX_SMEM));
    return cuda_tensor_map_prepare(err);   // without an encoder (an old driver) the kernel is not taken
}
