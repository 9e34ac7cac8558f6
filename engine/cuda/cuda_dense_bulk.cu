// The dense (bf16 / fp8) GEMVs of several positions on the tensor cores, their weights streamed through
// shared memory by the tensor-memory copy engine (dense_bulk_kernel; GemvKnobs::dense_bulk says where it
// runs).
//
// Why (results/kernels/README.md, twenty-second session): at 8 and 16 positions the per-lane-load kernel
// (gemv_mma_kernel) gives each block 16 rows over the whole row, so every block reads all n input rows
// again: for the MiMo-V2.5-Pro shard's qkv projection 212 blocks x 196 KB = 41 MB of L2 reads at 8
// positions (82 MB at 16) for 21 MB of weights, and each warp waits on its loads a pipeline step at a time.
// Nsight Compute timed it at 13.3 us with every weight byte in L2: not the memory, the structure. Measured:
// back to back (each launch filling the SMs' shared memory until it ends) this kernel is about as fast
// (qkv 12.2 against 13.4 us, o_proj 12.1 against 12.9 at 8 positions; 17.4 / 15.1 against 19.5 / 17.7 at
// 16); in the steps, whose kernels before it leave room for its blocks to request weights before their wait,
// the 8 / 16-position verify steps take 8.5 / 13.8 ms against 8.8 / 14.3.
//
// Here a block is a tile of 128 rows over a chunk of the columns (gridDim.z chunks; the chunks' partial sums
// meet in the split workspace, summed in chunk order by the tile's last block: deterministic). The block's
// input chunk is converted once into shared memory as hi + lo halves (bf16 for bf16 weights, fp16 for fp8:
// ~16 / 22 bits, as gemv_mma_kernel), so the input is read (rows / 128) times instead of (rows / 16). One
// producer thread streams the tile through a ring of 16 KB stages, each stage one two-dimensional tensor copy
// (128 rows x 128 bytes, the hardware's 128-byte swizzle: conflict-free ldmatrix reads), the first stages
// before the kernel waits on its predecessor (weights are never written). Eight consumer warps take 16 rows
// each of every stage: ldmatrix for A (fp8 bytes converted to halves in registers, the block scale applied
// to each stage's partial sums), B from the staged input, m16n8k16 MMAs with fp32 accumulators.
//
// The k order: for fp8 a lane's ldmatrix word holds codes 4t..4t+3 of a 16-code chunk, used as the MMA's
// k pairs (2t, 2t+1) and (2t+8, 2t+9); the staged input keeps columns in order, so the lane's B pairs are
// the 4 consecutive columns at 4t. For bf16 the MMA's own order; the input is staged permuted within each
// 16-column group so that a lane's two B pairs (columns 2t, 2t+1, 2t+8, 2t+9) are 8 consecutive bytes.
//
// With a folded RMSNorm (GemvNormX; the qkv projection of several positions) the block stages
// x * w, its chunk's norm weights loaded into shared memory before the wait, sums each position's x^2 over
// its chunk, and the tile's last block (or the only one) scales the sums by the norm's factor.
#include "cuda_bulk_copy.cuh"
#include "cuda_ops.cuh"
#include "cuda_tensor_map.cuh"

namespace {

constexpr int DB_CONSUMERS = 8;                       // consumer warps
constexpr int DB_TILE_ROWS = 16 * DB_CONSUMERS;       // rows a block
constexpr int DB_ROW_BYTES = 128;                     // bytes of a row a stage holds: the swizzle's span
constexpr int DB_STAGE_BYTES = DB_TILE_ROWS * DB_ROW_BYTES;
constexpr int DB_STAGES = 4;
constexpr int DB_THREADS = (DB_CONSUMERS + 1) * 32;   // and the producer warp
constexpr int DB_ALIGN = 1024;                        // the 128-byte swizzle's stage alignment
constexpr size_t DB_MAX_SMEM = 200 * 1024;
constexpr int DB_X_BATCH = 8;                         // float4 input loads a thread has in flight
constexpr int DB_MAX_CHUNKS = 32;
constexpr int DB_MAX_POSITIONS = 16;
// The default takes matrices of at least this many rows: the MiMo-V2.5-Pro shard's router (384 rows, 3
// tiles) measured slower than on gemv_mma_kernel (results/kernels/README.md, twenty-second session).
constexpr int DB_MIN_ROWS_DEFAULT = 1024;

template <int FMT> struct DbFmt {
    static constexpr bool F16 = FMT == MIMO_WFMT_FP8;   // MMA operand type
    static constexpr int STAGE_COLS = DB_ROW_BYTES / (FMT == MIMO_WFMT_FP8 ? 1 : 2);
};

// Dynamic shared memory of a block whose chunk has `cols` columns, from a 1024-aligned base: the stages, the
// ring's barriers and the last-block flag, with a folded norm (GemvNormX) the positions' sums of x^2 (double)
// and factors and the chunk's norm weights (cols floats, loaded before the wait), then the input chunk's hi
// then lo halves (8 x ntl rows of cols halves; rows 32 bytes past a multiple of 128 apart: a half warp's
// 8-byte reads hit distinct banks). After the MMAs the tile's sums go over the staged input: fin [128
// rows][8 ntl + 1 positions] floats (rows an odd number of words apart).
constexpr int DB_NORM_POSITIONS = DB_MAX_POSITIONS;
struct DbLayout {
    size_t bars, flag, norm_sums, norm_factors, norm_w, xs_pitch, xs_hi, xs_lo, fin, fin_pitch, total;
};
__host__ __device__ inline DbLayout db_layout(int cols, int ntl, bool norm_x)
{
    DbLayout l;
    l.bars = (size_t)DB_STAGES * DB_STAGE_BYTES;
    l.flag = l.bars + 2 * DB_STAGES * sizeof(uint64_t);
    l.norm_sums = l.flag + 16;
    l.norm_factors = l.norm_sums + (size_t)DB_NORM_POSITIONS * sizeof(double);
    l.xs_pitch = (size_t)cols * 2 + 32;
    l.norm_w = l.norm_factors + DB_NORM_POSITIONS * sizeof(float);
    l.xs_hi = norm_x ? l.norm_w + (size_t)cols * sizeof(float) : l.flag + 16;
    l.xs_lo = l.xs_hi + (size_t)8 * ntl * l.xs_pitch;
    l.fin = l.xs_hi;
    l.fin_pitch = (size_t)8 * ntl + 1;
    const size_t end = l.xs_lo + (size_t)8 * ntl * l.xs_pitch, fin_end = l.fin + DB_TILE_ROWS * l.fin_pitch * 4;
    l.total = (end > fin_end ? end : fin_end) + DB_ALIGN;   // and the base's alignment slack
    return l;
}

using DbRing = BulkRing<DB_STAGES, DB_CONSUMERS>;

__device__ __forceinline__ void ldmatrix_x4(const void *p, uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(smem_address(p)));
}

// One input unit (4 columns from c of position pos) into the staged hi / lo halves.
template <int FMT>
__device__ __forceinline__ void store_input_unit(float4 v, int pos, int c, uint8_t *xs_hi, uint8_t *xs_lo, size_t pitch)
{
    uint32_t h0, l0, h1, l1;
    split_pair<DbFmt<FMT>::F16>(v.x, v.y, &h0, &l0);
    split_pair<DbFmt<FMT>::F16>(v.z, v.w, &h1, &l1);
    // fp8: columns in order; bf16: column c of a 16-group at 4 ((c % 8) / 2) + 2 (c / 8) + c % 2
    const int s0 = FMT == MIMO_WFMT_FP8 ? c : (c & ~15) + 4 * ((c % 8) / 2) + 2 * ((c % 16) / 8);
    const int s1 = FMT == MIMO_WFMT_FP8 ? c + 2 : s0 + 4;
    uint8_t *hr = xs_hi + pos * pitch, *lr = xs_lo + pos * pitch;
    *(uint32_t *)(hr + 2 * s0) = h0;
    *(uint32_t *)(hr + 2 * s1) = h1;
    *(uint32_t *)(lr + 2 * s0) = l0;
    *(uint32_t *)(lr + 2 * s1) = l1;
}

// Columns col0 .. col0 + cols of the n input rows (zeros for the rows up to 8 x NTL) into the staged hi / lo
// halves; a thread's loads are in flight together, DB_X_BATCH at a time (consumer threads).
template <int FMT, int NTL>
__device__ void stage_input(const GemvParams &p, int col0, int cols, uint8_t *xs_hi, uint8_t *xs_lo, size_t pitch)
{
    const int per_row = cols / 4, units = 8 * NTL * per_row, tid = threadIdx.x;
    for (int base = 0; base < units; base += DB_X_BATCH * DB_CONSUMERS * 32) {
        float4 v[DB_X_BATCH];
#pragma unroll
        for (int i = 0; i < DB_X_BATCH; i++) {
            const int u = base + tid + i * DB_CONSUMERS * 32, pos = u / per_row;
            v[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (u < units && pos < p.n)   // coherent: the predecessor wrote x
                v[i] = __ldcg((const float4 *)(p.x + (size_t)pos * p.ldx + col0) + u % per_row);
        }
#pragma unroll
        for (int i = 0; i < DB_X_BATCH; i++) {
            const int u = base + tid + i * DB_CONSUMERS * 32;
            if (u >= units)
                break;
            store_input_unit<FMT>(v[i], u / per_row, 4 * (u % per_row), xs_hi, xs_lo, pitch);
        }
    }
}

// stage_input with a folded norm (GemvNormX): x * w staged (the chunk's weights in shared memory, norm_w), and
// each position's sum of x^2 over the chunk into norm_sums[pos]. Warp w takes positions w and w + 8 (its units
// j: position w + 8 (j / per_row), cols a multiple of 128 (db_chunks), so a warp's 32 units are one
// position's), each lane summing its units in registers: one warp reduction a position at the end, in a fixed
// order (deterministic).
template <int FMT, int NTL>
__device__ void stage_input_norm(const GemvParams &p, int col0, int cols, uint8_t *xs_hi, uint8_t *xs_lo, size_t pitch,
                                 double *norm_sums, const float4 *norm_w)
{
    const int per_row = cols / 4, units = NTL * per_row, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float sq[NTL] = {};
    for (int base = 0; base < units; base += DB_X_BATCH * 32) {
        float4 v[DB_X_BATCH];
#pragma unroll
        for (int i = 0; i < DB_X_BATCH; i++) {
            const int j = base + lane + 32 * i, pos = warp + 8 * (j / per_row);
            v[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (j < units && pos < p.n)   // coherent: the predecessor wrote x
                v[i] = __ldcg((const float4 *)(p.x + (size_t)pos * p.ldx + col0) + j % per_row);
        }
#pragma unroll
        for (int i = 0; i < DB_X_BATCH; i++) {
            const int j = base + lane + 32 * i, k = j / per_row, cu = j % per_row;
            if (j >= units)
                break;
            const float4 w = norm_w[cu];
            const float4 a = v[i];
#pragma unroll
            for (int kk = 0; kk < NTL; kk++)   // registers, not a dynamic index
                if (kk == k)
                    sq[kk] += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w;
            store_input_unit<FMT>(make_float4(a.x * w.x, a.y * w.y, a.z * w.z, a.w * w.w), warp + 8 * k, 4 * cu, xs_hi,
                                  xs_lo, pitch);
        }
    }
#pragma unroll
    for (int kk = 0; kk < NTL; kk++) {
        float s = sq[kk];
        for (int o = 16; o > 0; o >>= 1)
            s += __shfl_xor_sync(0xFFFFFFFFu, s, o);
        if (lane == 0)
            norm_sums[warp + 8 * kk] = (double)s;
    }
}

// The outputs' old values of an accumulating launch (y += the tile's sums), a thread's items of the output
// loop (row lr, position pos of item i = thread + 256 k), loaded together: a load and store an item in turn
// would wait an L2 round trip each (the compiler cannot move a load above the store before it).
constexpr int DB_OUT_ITEMS = DB_TILE_ROWS * DB_MAX_POSITIONS / (DB_CONSUMERS * 32);
__device__ __forceinline__ void db_load_old_outputs(const GemvParams &p, int row_base, float (&old)[DB_OUT_ITEMS])
{
#pragma unroll
    for (int k = 0; k < DB_OUT_ITEMS; k++) {
        const int i = threadIdx.x + k * DB_CONSUMERS * 32, lr = i % DB_TILE_ROWS, pos = i / DB_TILE_ROWS;
        if (pos < p.n && row_base + lr < p.w.rows)   // coherent: the predecessor wrote y
            old[k] = __ldcg(p.y + (size_t)pos * p.ldy + row_base + lr);
    }
}

// The fp8 block scale of row r (clamped into the matrix) at column c.
__device__ __forceinline__ float db_fp8_scale(const GpuMat &m, int r, int c)
{
    return __ldg((const float *)m.scales + fp8_scale_row(m, min(r, m.rows - 1)) * m.scale_ld + c / 128);
}

template <int FMT, int NTL, bool NORMX>
__global__ void __launch_bounds__(DB_THREADS, 3)
    dense_bulk_kernel(const __grid_constant__ CUtensorMap wmap, const GemvParams p, int cols)
{
    constexpr bool F16 = DbFmt<FMT>::F16;
    constexpr int STAGE_COLS = DbFmt<FMT>::STAGE_COLS, NW = 8 * NTL;
    extern __shared__ uint8_t db_raw[];
    uint8_t *smem = db_raw + ((DB_ALIGN - smem_address(db_raw) % DB_ALIGN) % DB_ALIGN);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int tile = blockIdx.x, chunk = blockIdx.z, kch = gridDim.z;
    const int row_base = tile * DB_TILE_ROWS, col0 = chunk * cols, nstage = cols / STAGE_COLS;
    const DbLayout L = db_layout(cols, NTL, NORMX);
    double *norm_sums = (double *)(smem + L.norm_sums);
    float *norm_factors = (float *)(smem + L.norm_factors);
    // a folded norm's sums of x^2 of the chunks: [tile][chunk][position], after the partial sums (db_chunks)
    double *ws_norm = (double *)(p.split.partials + (size_t)gridDim.x * kch * DB_TILE_ROWS * NW) + (size_t)tile * kch * NW;
    const DbRing ring{(uint64_t *)(smem + L.bars), (uint64_t *)(smem + L.bars) + DB_STAGES};
    int *last_flag = (int *)(smem + L.flag);
    if (threadIdx.x == 0)
        ring.init();
    __syncthreads();   // the barriers' initialisation

    if (warp == DB_CONSUMERS) {   // the producer: the weights, never written, need no wait
        if (lane == 0) {
            bulk_tensor_map_prefetch(&wmap);
            for (int s = 0; s < nstage; s++) {
                const int buf = ring.acquire(s);
                bulk_barrier_expect(ring.full + buf, DB_STAGE_BYTES);   // rows past the end land as zeros
                bulk_tensor_copy_2d(smem + (size_t)buf * DB_STAGE_BYTES, &wmap, col0 + s * STAGE_COLS, row_base,
                               ring.full + buf);
            }
        }
        return;
    }

    float4 *norm_w = (float4 *)(smem + L.norm_w);
    if constexpr (NORMX) {   // the chunk's norm weights, never written: before the wait
        for (int i = threadIdx.x; i < cols / 4; i += DB_CONSUMERS * 32)
            norm_w[i] = __ldg((const float4 *)(p.norm_x.w + col0) + i);
        consumers_sync<DB_CONSUMERS * 32>();
    }
    pdl_wait();   // x, y and the split workspace come from the kernels before
    pdl_trigger();
    uint8_t *xs_hi = smem + L.xs_hi, *xs_lo = smem + L.xs_lo;
    if constexpr (NORMX)
        stage_input_norm<FMT, NTL>(p, col0, cols, xs_hi, xs_lo, L.xs_pitch, norm_sums, norm_w);
    else
        stage_input<FMT, NTL>(p, col0, cols, xs_hi, xs_lo, L.xs_pitch);
    consumers_sync<DB_CONSUMERS * 32>();
    if (NORMX && threadIdx.x < NW) {   // this chunk's sums of x^2
        const double sum = norm_sums[threadIdx.x];
        if (kch == 1)
            norm_factors[threadIdx.x] = rms_norm_factor(sum, p.w.ld, p.norm_x.eps);
        else
            __stcg(ws_norm + (size_t)chunk * NW + threadIdx.x, sum);   // before the fence below
    }

    const int g = lane / 4, t = lane % 4;
    const int rA = row_base + warp * 16 + g, rB = rA + 8;
    // ldmatrix: lanes 8 i .. 8 i + 7 address matrix i: rows (i & 1) x 8 + 0..7 of the warp's 16, chunk i / 2
    const int lrow = warp * 16 + ((lane >> 3) & 1) * 8 + (lane & 7), lchunk = lane >> 4;
    const uint8_t *xh = xs_hi + (size_t)g * L.xs_pitch + 8 * t, *xl = xs_lo + (size_t)g * L.xs_pitch + 8 * t;
    float acc[NTL][4] = {};
    for (int s = 0; s < nstage; s++) {
        float sA = 1.0f, sB = 1.0f;
        if (FMT == MIMO_WFMT_FP8) {
            sA = db_fp8_scale(p.w, rA, col0 + s * STAGE_COLS);
            sB = db_fp8_scale(p.w, rB, col0 + s * STAGE_COLS);
        }
        const int buf = ring.wait_full(s);
        const uint8_t *st = smem + (size_t)buf * DB_STAGE_BYTES + lrow * DB_ROW_BYTES;
        float part[NTL][4] = {};
#pragma unroll
        for (int j = 0; j < 4; j++) {   // 16-byte chunks 2 j and 2 j + 1 of the rows
            const int c = 2 * j + lchunk;
            uint32_t r0, r1, r2, r3;
            ldmatrix_x4(st + ((c ^ (lrow & 7)) << 4), r0, r1, r2, r3);
            if constexpr (FMT == MIMO_WFMT_FP8) {
                // r0 / r1: codes 4t..4t+3 of chunk 2j, rows g / g + 8; r2 / r3: of chunk 2j + 1
                const uint32_t w[2][2] = {{r0, r1}, {r2, r3}};
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    uint32_t a[4];
#pragma unroll
                    for (int q = 0; q < 4; q++) {   // a0: row g low pair, a1: row g + 8, a2 / a3: high pairs
                        a[q] = fp8x2_to_half2_bits(w[h][q & 1] >> (16 * (q >> 1)));
                    }
                    const int col = s * STAGE_COLS + 16 * (2 * j + h);
#pragma unroll
                    for (int nt = 0; nt < NTL; nt++) {
                        const uint2 bh = *(const uint2 *)(xh + (size_t)nt * 8 * L.xs_pitch + 2 * col);
                        const uint2 bl = *(const uint2 *)(xl + (size_t)nt * 8 * L.xs_pitch + 2 * col);
                        mma_16816<F16>(part[nt], a[0], a[1], a[2], a[3], bh.x, bh.y);
                        mma_16816<F16>(part[nt], a[0], a[1], a[2], a[3], bl.x, bl.y);
                    }
                }
            } else {
                const int col = s * STAGE_COLS + 16 * j;
#pragma unroll
                for (int nt = 0; nt < NTL; nt++) {
                    const uint2 bh = *(const uint2 *)(xh + (size_t)nt * 8 * L.xs_pitch + 2 * col);
                    const uint2 bl = *(const uint2 *)(xl + (size_t)nt * 8 * L.xs_pitch + 2 * col);
                    mma_16816<F16>(part[nt], r0, r1, r2, r3, bh.x, bh.y);
                    mma_16816<F16>(part[nt], r0, r1, r2, r3, bl.x, bl.y);
                }
            }
        }
        ring.release(s, lane);
#pragma unroll
        for (int nt = 0; nt < NTL; nt++) {
            acc[nt][0] = fmaf(part[nt][0], sA, acc[nt][0]);
            acc[nt][1] = fmaf(part[nt][1], sA, acc[nt][1]);
            acc[nt][2] = fmaf(part[nt][2], sB, acc[nt][2]);
            acc[nt][3] = fmaf(part[nt][3], sB, acc[nt][3]);
        }
    }

    // lane (g, t): rows rA (c0, c1) and rB (c2, c3), positions nt 8 + 2t and + 1. The tile's sums go to fin,
    // over the staged input: every warp is done reading it first.
    float *fin = (float *)(smem + L.fin);
    const int fp = (int)L.fin_pitch;
    float old[DB_OUT_ITEMS] = {};   // an accumulating launch's old outputs
    consumers_sync<DB_CONSUMERS * 32>();
    if (kch == 1) {   // (the norm's factors were set before the MMAs' syncs)
        if (p.accumulate && !p.qkv_out.q)
            db_load_old_outputs(p, row_base, old);
#pragma unroll
        for (int nt = 0; nt < NTL; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int pos = nt * 8 + 2 * t + (i & 1);
                fin[(warp * 16 + g + (i < 2 ? 0 : 8)) * fp + pos] = NORMX ? acc[nt][i] * norm_factors[pos] : acc[nt][i];
            }
    } else {
        // the column chunks' partial sums: [tile][chunk][row of the tile][position]; the tile's last block
        // to arrive sums them in chunk order (deterministic)
        float *ws_tile = p.split.partials + (size_t)tile * kch * DB_TILE_ROWS * NW;
        float *ws = ws_tile + (size_t)chunk * DB_TILE_ROWS * NW;
#pragma unroll
        for (int nt = 0; nt < NTL; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++)
                __stcg(ws + (size_t)(warp * 16 + g + (i < 2 ? 0 : 8)) * NW + nt * 8 + 2 * t + (i & 1), acc[nt][i]);
        __threadfence();
        consumers_sync<DB_CONSUMERS * 32>();
        if (threadIdx.x == 0)
            *last_flag = atomicAdd(p.split.counters + tile, 1u) == (unsigned)kch - 1;
        consumers_sync<DB_CONSUMERS * 32>();
        if (!*last_flag)
            return;
        __threadfence();
        // the outputs' old values, then the partial sums four consecutive elements (one row, four positions)
        // a float4: a thread's loads in flight together (split_sum_in_order), 8 float4 at a time over its
        // quads (16 at 9-16 positions spilled: three blocks an SM leave 72 registers a thread)
        if (p.accumulate && !p.qkv_out.q)
            db_load_old_outputs(p, row_base, old);
        constexpr int QUADS = DB_TILE_ROWS * NW / 4 / (DB_CONSUMERS * 32);
        float4 sums[QUADS];
#pragma unroll
        for (int k = 0; k < QUADS; k++)
            sums[k] = split_sum_in_order<8 / QUADS>((const float4 *)ws_tile + threadIdx.x + k * DB_CONSUMERS * 32,
                                                    DB_TILE_ROWS * NW / 4, kch);
        if constexpr (NORMX) {   // the row's sums of x^2 over the chunks in order
            if (threadIdx.x < NW)
                norm_factors[threadIdx.x] =
                    rms_norm_factor(split_sum_in_order(ws_norm + threadIdx.x, NW, kch), p.w.ld, p.norm_x.eps);
            consumers_sync<DB_CONSUMERS * 32>();
        }
#pragma unroll
        for (int k = 0; k < QUADS; k++) {
            const int i = 4 * (threadIdx.x + k * DB_CONSUMERS * 32);
            const float e[4] = {sums[k].x, sums[k].y, sums[k].z, sums[k].w};
#pragma unroll
            for (int u = 0; u < 4; u++)
                fin[(i / NW) * fp + i % NW + u] = NORMX ? e[u] * norm_factors[i % NW + u] : e[u];
        }
        if (threadIdx.x == 0)
            p.split.counters[tile] = 0;   // for the next launch (stream order)
    }
    consumers_sync<DB_CONSUMERS * 32>();
    // the outputs, consecutive threads on consecutive rows
    const GemvQkvOut &o = p.qkv_out;
    if (!o.q) {
#pragma unroll
        for (int k = 0; k < DB_OUT_ITEMS; k++) {
            const int i = threadIdx.x + k * DB_CONSUMERS * 32, lr = i % DB_TILE_ROWS, pos = i / DB_TILE_ROWS;
            if (pos < p.n && row_base + lr < p.w.rows) {
                const float v = fin[lr * fp + pos];
                p.y[(size_t)pos * p.ldy + row_base + lr] = p.accumulate ? old[k] + v : v;
            }
        }
        return;
    }
    const int pos0 = *o.d_len, qk_rows = (o.g.n_heads + o.g.n_kv) * o.g.dqk, half = o.g.rope_dim / 2;
    for (int i = threadIdx.x; i < DB_TILE_ROWS * p.n; i += DB_CONSUMERS * 32) {
        const int lr = i % DB_TILE_ROWS, pos = i / DB_TILE_ROWS, row = row_base + lr;
        if (row >= p.w.rows)
            continue;
        const float v = fin[lr * fp + pos];
        // the qkv epilogue (no row map: cuda_dense_bulk_takes): row's place L in the pair order
        // (qkv_pair_order_row's inverse); the even one of each pair stores both, its partner in this tile
        int L = row, partner = row + 1;
        if (row < qk_rows) {
            const int e = row % o.g.dqk;
            if (e < o.g.rope_dim) {
                L = row - e + (e < half ? 2 * e : 2 * (e - half) + 1);
                partner = row + half;
            }
        }
        if (L % 2 == 0)
            qkv_store_pair(o, L, v, fin[(partner - row_base) * fp + pos], pos, pos0 + pos);
    }
}

}  // namespace

static long long dense_bulk_launch_count = 0;
long long cuda_dense_bulk_launches() { return dense_bulk_launch_count; }

static int db_sm_count = 0;

static int db_stage_cols(int fmt)
{
    return fmt == MIMO_WFMT_FP8 ? DbFmt<MIMO_WFMT_FP8>::STAGE_COLS : DbFmt<MIMO_WFMT_BF16>::STAGE_COLS;
}

template <int FMT, bool NORMX> static const void *db_kernel_of(int ntl)
{
    return ntl == 1 ? (const void *)dense_bulk_kernel<FMT, 1, NORMX> : (const void *)dense_bulk_kernel<FMT, 2, NORMX>;
}

static const void *db_kernel(int fmt, int ntl, bool norm_x)
{
    if (fmt == MIMO_WFMT_FP8)
        return norm_x ? db_kernel_of<MIMO_WFMT_FP8, true>(ntl) : db_kernel_of<MIMO_WFMT_FP8, false>(ntl);
    return norm_x ? db_kernel_of<MIMO_WFMT_BF16, true>(ntl) : db_kernel_of<MIMO_WFMT_BF16, false>(ntl);
}

// Blocks an SM holds of the variant at that shared memory (cached: a host query, capture-safe).
static int db_blocks_per_sm(int fmt, int ntl, bool norm_x, size_t smem)
{
    static struct { const void *k; size_t smem; int blocks; } cache[32];
    static int used = 0;
    const void *k = db_kernel(fmt, ntl, norm_x);
    for (int i = 0; i < used; i++)
        if (cache[i].k == k && cache[i].smem == smem)
            return cache[i].blocks;
    int blocks = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, k, DB_THREADS, smem) != cudaSuccess) {
        (void)cudaGetLastError();
        blocks = 0;
    }
    if (used < 32)
        cache[used++] = {k, smem, blocks};
    return blocks;
}

// Column chunks of the launch: the knob's count, or (0, the default) the fewest with which the whole launch
// is one wave of resident blocks and each block's chunk fits its ring (every weight byte requested before
// the wait: the staged GEMV's way at one position); else the fewest that give the SMs 1.5 blocks each in one
// wave (measured on the Pro shard's qkv: 216 blocks 12.2 us, 162 blocks 14.0; its o_proj at 8 positions in 4
// chunks of 8 stages instead of 8 of 4: faster chained, slower in the steps — results/kernels/README.md,
// thirtieth session); else the most that fit one wave. A matrix that no count puts in one wave (the lm head of
// 19072 x 6144, the drafter's down projection; GemvKnobs::dense_bulk_waves) takes the count with which two
// blocks or more an SM are resident and the last wave is the fullest, if it is at least DB_WAVE_FILL full: the
// Pro shard's lm head at 8 positions in 6 chunks (2 blocks an SM, 3.4 waves) 66.9 against 75.7 us on
// gemv_mma_kernel, in 4 (1 an SM, 4.5 waves) 79.9 (thirtieth session). 0: none fits. A folded norm
// (GemvNormX) needs chunks of a multiple of 128 columns (stage_input) and the workspace for its sums of x^2
// after the partial sums (two floats a double, a block's positions).
constexpr double DB_WAVE_FILL = 0.75;
static int db_chunks(const GemvParams &p)
{
    const bool norm_x = p.norm_x.w != nullptr;
    const int ntl = p.n <= 8 ? 1 : 2, stages = p.w.ld / db_stage_cols(p.w.fmt);
    const int tiles = (p.w.rows + DB_TILE_ROWS - 1) / DB_TILE_ROWS, knob = cuda_gemv_knobs().dense_bulk_chunks;
    int best = 0, spread = 0, waves = 0, waves_blocks_per_sm = 0;
    double waves_fill = 0.0;
    for (int kch = 1; kch <= DB_MAX_CHUNKS && kch <= stages; kch++) {
        if (stages % kch || (knob > 0 && kch != knob) || (norm_x && (p.w.ld / kch) % 128))
            continue;
        const size_t smem = db_layout(p.w.ld / kch, ntl, norm_x).total;
        if (smem > DB_MAX_SMEM)
            continue;
        const long long blocks = (long long)tiles * kch;
        const long long partials = blocks * DB_TILE_ROWS * 8 * ntl + (norm_x ? blocks * 2 * 8 * ntl : 0);
        if (kch > 1 && (tiles > MIMO_CUDA_SPLITK_COUNTERS || partials > MIMO_CUDA_SPLITK_WS_FLOATS))
            continue;
        if (knob > 0)
            return kch;
        const int per_sm = db_blocks_per_sm(p.w.fmt, ntl, norm_x, smem);
        const long long places = (long long)per_sm * db_sm_count;
        if (blocks > places) {   // several waves: the fullest last wave of the most resident blocks
            if (per_sm >= 2) {
                const double w = (double)blocks / (double)places, fill = w / ceil(w);
                if (per_sm > waves_blocks_per_sm || (per_sm == waves_blocks_per_sm && fill > waves_fill)) {
                    waves = kch;
                    waves_blocks_per_sm = per_sm;
                    waves_fill = fill;
                }
            }
            continue;
        }
        if (stages / kch <= DB_STAGES)
            return kch;
        best = kch;
        if (!spread && 2 * blocks >= 3 * (long long)db_sm_count)
            spread = kch;
    }
    if (spread || best)
        return spread ? spread : best;
    return cuda_gemv_knobs().dense_bulk_waves && waves_fill >= DB_WAVE_FILL ? waves : 0;
}

// The qkv epilogue (GemvKnobs::dense_bulk_qkv; off by default: the tile's last block stores the pairs after
// every chunk has landed, a tail the RoPE kernel after a plain projection does not have — the 8 / 16-position
// steps measured 8.59 / 14.02 ms with it, 8.52 / 13.83 without, results/kernels/README.md, twenty-second
// session): every rotated pair of rows (d, d + rope_dim / 2 of a q / k head) inside one tile (the other
// pairs, two rows from an even one, always are), and no row map (the tile's rows' places in the pair order
// are computed, not looked up).
bool cuda_dense_bulk_takes_qkv(const int32_t *row_map, const AttnGeom &g)
{
    if (!cuda_gemv_knobs().dense_bulk_qkv || row_map || g.dqk % 2 || g.rope_dim % 2)
        return false;
    const int half = g.rope_dim / 2;
    for (int h = 0; h < g.n_heads + g.n_kv; h++)
        for (int e = 0; e < half; e++)
            if ((h * g.dqk + e) / DB_TILE_ROWS != (h * g.dqk + e + half) / DB_TILE_ROWS)
                return false;
    return true;
}

bool cuda_dense_bulk_takes(const GemvParams &p, bool glu)
{
    const int mode = cuda_gemv_knobs().dense_bulk;
    if (glu || mode == 0 || !cuda_tensor_map_available() || db_sm_count == 0 ||
        (p.w.fmt != MIMO_WFMT_FP8 && p.w.fmt != MIMO_WFMT_BF16) || p.slot_expert || p.n < 2 ||
        p.n > DB_MAX_POSITIONS || (p.qkv_out.q && !cuda_dense_bulk_takes_qkv(p.qkv_out.row_map, p.qkv_out.g)) || p.norm_out.h ||
        p.norm_in.partials || p.norm_factor || p.combine_x)
        return false;
    const bool norm_x = p.norm_x.w != nullptr;
    if (norm_x && (cuda_gemv_knobs().norm_x == 0 || p.n > DB_NORM_POSITIONS || (uintptr_t)p.norm_x.w % 16))
        return false;
    if (p.w.ld % db_stage_cols(p.w.fmt) || (uintptr_t)p.w.data % 16 || gpu_row_bytes(p.w.fmt, p.w.ld) % 16 ||
        p.ldx % 4 || (uintptr_t)p.x % 16 || (p.w.fmt == MIMO_WFMT_FP8 && !p.w.scales) || cuda_persist_recorder())
        return false;
    if (!p.split.partials || !p.split.counters)   // a launch with one chunk could do without; keep one rule
        return false;
    // the default: matrices of DB_MIN_ROWS_DEFAULT rows or more (the router's 384 measured slower here, with a
    // folded norm too: results/kernels/README.md, twenty-seventh session)
    if (p.w.rows < DB_MIN_ROWS_DEFAULT && cuda_gemv_knobs().dense_bulk_chunks == 0)
        return false;
    return db_chunks(p) > 0;
}

int cuda_dense_bulk(const GemvParams &p, cudaStream_t st, mimo_error *err)
{
    const int kch = db_chunks(p), ntl = p.n <= 8 ? 1 : 2;
    if (kch < 1)
        return mimo_fail(err, "cuda gemv: dense_bulk_kernel takes no column split of %d x %d", p.w.rows, p.w.ld);
    const int cols = p.w.ld / kch;
    CUtensorMap map;
    const cuuint64_t dims[2] = {(cuuint64_t)p.w.ld, (cuuint64_t)p.w.rows};
    const cuuint64_t strides[1] = {(cuuint64_t)gpu_row_bytes(p.w.fmt, p.w.ld)};
    const cuuint32_t box[2] = {(cuuint32_t)db_stage_cols(p.w.fmt), (cuuint32_t)DB_TILE_ROWS};
    const CUtensorMapDataType type =
        p.w.fmt == MIMO_WFMT_FP8 ? CU_TENSOR_MAP_DATA_TYPE_UINT8 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
    if (cuda_tensor_map_encode(&map, type, 2, p.w.data, dims, strides, box, err))
        return -1;
    const dim3 grid((p.w.rows + DB_TILE_ROWS - 1) / DB_TILE_ROWS, 1, kch);
    const bool norm_x = p.norm_x.w != nullptr;
    const size_t smem = db_layout(cols, ntl, norm_x).total;
    dense_bulk_launch_count++;
    const auto launch = [&](auto kernel) {
        return cuda_launch("dense_bulk_kernel", err, kernel, grid, dim3(DB_THREADS), smem, st, map, p, cols);
    };
    if (p.w.fmt == MIMO_WFMT_FP8) {
        if (norm_x)
            return ntl == 1 ? launch(dense_bulk_kernel<MIMO_WFMT_FP8, 1, true>) : launch(dense_bulk_kernel<MIMO_WFMT_FP8, 2, true>);
        return ntl == 1 ? launch(dense_bulk_kernel<MIMO_WFMT_FP8, 1, false>) : launch(dense_bulk_kernel<MIMO_WFMT_FP8, 2, false>);
    }
    if (norm_x)
        return ntl == 1 ? launch(dense_bulk_kernel<MIMO_WFMT_BF16, 1, true>) : launch(dense_bulk_kernel<MIMO_WFMT_BF16, 2, true>);
    return ntl == 1 ? launch(dense_bulk_kernel<MIMO_WFMT_BF16, 1, false>) : launch(dense_bulk_kernel<MIMO_WFMT_BF16, 2, false>);
}

int cuda_dense_bulk_prepare(mimo_error *err)
{
    int device = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&db_sm_count, cudaDevAttrMultiProcessorCount, device));
    const int fmts[2] = {MIMO_WFMT_FP8, MIMO_WFMT_BF16};
    for (int f = 0; f < 2; f++)
        for (int ntl = 1; ntl <= 2; ntl++)
            for (int norm_x = 0; norm_x < 2; norm_x++)
                CUDA_CHECK(cudaFuncSetAttribute(db_kernel(fmts[f], ntl, norm_x), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                (int)DB_MAX_SMEM));
    return cuda_tensor_map_prepare(err);   // without an encoder (an old driver) the kernel is not taken
}
