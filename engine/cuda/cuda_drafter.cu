// The DFlash drafter on the GPU (DFLASH.md "The drafter"), a transcription of the CPU reference
// engine/cpu/cpu_drafter.c onto the backend's ops (cuda_gemv, cuda_rmsnorm, cuda_embed,
// cuda_argmax) plus kernels of its own: per-head RMSNorm + RoPE (q_norm / k_norm), a row scale
// (attention_value_scale), the mask embedding's rows, and the block attention (a kv head's query heads and
// every block row a block, or a query head and row a block), which the target's kernels cannot express (their
// queries are causal over one cache; here every block query sees [context cache ; block K/V]).
//
// Context: features [n, n_ids*hidden] -> fc -> hidden_norm -> per layer k_proj/v_proj (k_norm, RoPE
// at the absolute position, value scale) straight into that layer's context cache rows, kept across
// rounds. Block: embed (mask_embedding for MASK positions 1..B-1 when the drafter ships one), then
// per layer pre-norm attention (queries from the block only, non-causal, window on sliding layers,
// sink) and pre-norm SwiGLU with residuals; final norm; the target's lm_head. Block K/V are
// discarded. Eager launches on the engine's stream; every call returns with the stream drained.
#include "cuda_attention_block.cuh"
#include "cuda_drafter.cuh"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRAFT_ROWS MIMO_DFLASH_MAX_BLOCK   // block positions and context positions per launch
#define DRAFT_ATTN_SPLIT 64                // keys scored per attention block
#define DRAFT_ATTN_THREADS 128
#define DRAFT_MAX_HEAD_DIM 512

static_assert(MIMO_DFLASH_MAX_BLOCK <= MIMO_MAX_DECODE_POSITIONS, "a block must fit one gemv launch");

struct CudaDrafterLayer {
    bool is_swa;
    float *input_norm, *post_norm, *q_norm, *k_norm;
    float *sink;                       // [heads] or NULL
    GpuMat q_proj, k_proj, v_proj, o_proj, gate, up, down;
    GpuMat qkv;                        // q, k and v in one matrix (upload_qkv; data NULL where they stay apart)
    float *kcache, *vcache;            // [max_ctx][kv_heads * head_dim], indexed by absolute position
};

struct CudaDrafter {
    mimo_drafter_config cfg;
    int max_ctx, length;
    int feat_dim;                      // n_target_layers * hidden
    int ld_feat, ld_h, ld_q, ld_i, kd; // row strides (gemv inputs padded to whole 32-column rows)
    int ld_qkv;                        // a row of qkv_out: the block's q, k and v from one GEMV
    int max_splits;                    // attention key splits at the longest span
    int ld_logits;                     // the lm head's rows on this device (the vocabulary, or a shard's slice)
    GemvSplitWorkspace split;          // the engine's (GemvParams::split): its GEMVs take the target's kernels
    GpuMat fc;
    float *hidden_norm, *final_norm, *mask_embedding;
    const double *rope_inv_freq;       // device: theta^(-2i/rope_dim) (cuda_upload_rope_table)
    std::vector<CudaDrafterLayer> layers;
    // work buffers, DRAFT_ROWS rows each
    float *feat_in, *feat, *x, *h, *q, *bk, *bv, *qkv_out, *attn, *mlp, *logits, *partial;
    int32_t *d_block, *d_argmax;
    std::vector<void *> allocations;   // everything above on the device, freed by cuda_drafter_destroy
};

// ---- kernels ----

__device__ __forceinline__ float draft_warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
    return v;
}

__device__ __forceinline__ float draft_warp_max(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
    return v;
}

// Sum (or max) over the block; red holds 32 floats. Safe to call repeatedly with the same red.
__device__ float draft_block_reduce(float v, float *red, bool is_max)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float other = __shfl_xor_sync(0xFFFFFFFFu, v, o);
        v = is_max ? fmaxf(v, other) : v + other;
    }
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
    __syncthreads();
    if (lane == 0)
        red[warp] = v;
    __syncthreads();
    float r = is_max ? -INFINITY : 0.0f;
    for (int w = 0; w < nw; w++)
        r = is_max ? fmaxf(r, red[w]) : r + red[w];
    return r;
}

// Where the drafter's positions come from: pos0 (host), plus *d_pos when given (the context length
// kept on the device by a device round). DraftPos::at(row) is the absolute position of a row.
struct DraftPos {
    int pos0;
    const int *d_pos;
    __device__ int base() const { return pos0 + (d_pos ? *d_pos : 0); }
};

// Row i of x replaced by the drafter's mask embedding where bit i of rows is set: one launch for a block's MASK
// positions, which were a copy each (7 copies ~2 us apart on the stream at block 8: results/kernels/README.md,
// thirty-first session).
static_assert(MIMO_DFLASH_MAX_BLOCK <= 32, "a block's rows in one 32-bit mask");
__global__ void draft_mask_rows_kernel(float *x, int ld, const float *mask_embedding, int H, uint32_t rows)
{
    pdl_trigger();
    pdl_wait();
    if (!((rows >> blockIdx.x) & 1u))
        return;
    for (int c = threadIdx.x; c < H; c += blockDim.x)
        x[(size_t)blockIdx.x * ld + c] = mask_embedding[c];
}

// One warp per (head, row): RMSNorm over the head's dims with weight w (mean of squares in double,
// like mimo_cpu_rmsnorm), then NeoX RoPE of the first rope_dim dims at position base + row
// (angles in double, applied in float, like mimo_cpu_rope_neox). Row r of x goes to row r of out, or
// with out_at_position to row base + r (the context cache, indexed by position).
__global__ void draft_head_norm_rope_kernel(const float *x, int ld, float *out, int ld_out, bool out_at_position, int D,
                                            int rope_dim, const double *inv_freq, const float *w, float eps, DraftPos where)
{
    pdl_trigger();   // programmatic dependent launch inside a pass (cuda_drafter_pass)
    pdl_wait();
    __shared__ float v[DRAFT_MAX_HEAD_DIM];
    const int base = where.base();
    const float *hx = x + (size_t)blockIdx.y * ld + (size_t)blockIdx.x * D;
    float *ho = out + (size_t)(out_at_position ? base + (int)blockIdx.y : (int)blockIdx.y) * ld_out + (size_t)blockIdx.x * D;
    double ss = 0.0;
    for (int i = threadIdx.x; i < D; i += 32) {
        float a = hx[i];
        v[i] = a;
        ss += (double)a * a;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        ss += __shfl_xor_sync(0xFFFFFFFFu, ss, o);
    const float inv = rms_norm_factor(ss, D, eps);
    __syncwarp();
    for (int i = threadIdx.x; i < D; i += 32)
        v[i] = v[i] * inv * w[i];
    __syncwarp();
    const int half = rope_dim / 2, pos = base + (int)blockIdx.y;
    for (int i = threadIdx.x; i < D; i += 32) {
        float o = v[i];
        if (i < 2 * half) {
            const int pair = i < half ? i : i - half;
            float c, s;
            rope_cos_sin(inv_freq, pair, pos, &c, &s);
            float a = v[pair], b = v[pair + half];
            o = i < half ? a * c - b * s : b * c + a * s;
        }
        ho[i] = o;
    }
}

// out[row] = s * x[row] for one row per block; the output row is base + row with out_at_position.
__global__ void draft_scale_rows_kernel(const float *x, int ld, float *out, int ld_out, bool out_at_position, int cols,
                                        float s, DraftPos where)
{
    pdl_trigger();   // programmatic dependent launch inside a pass (cuda_drafter_pass)
    pdl_wait();
    const int r = out_at_position ? where.base() + (int)blockIdx.x : (int)blockIdx.x;
    const float *row = x + (size_t)blockIdx.x * ld;
    float *o = out + (size_t)r * ld_out;
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        o[c] = row[c] * s;
}

// The keys of block attention: n_ctx context positions first..first+n_ctx-1 (cache rows by
// position), then the B block positions p..p+B-1 (bk/bv rows). A key is hidden from the query at
// pos_q when window > 0 and pos_q - pos_k >= window (mimo_cpu_attn_visible, non-causal).
struct DraftAttn {
    const float *q;
    int ldq;
    const float *kc, *vc, *bk, *bv;
    int kd, ldb, D, n_heads, group;    // kd: a cache row; ldb: a row of bk / bv
    DraftPos where;                    // p, the block's first position (= the context length)
    int B, window;
    float scale;
    float *partial;                    // [B][heads][nsplit][2 + D]: max, sum, unnormalised output
};

__global__ void __launch_bounds__(DRAFT_ATTN_THREADS) draft_attn_split_kernel(const DraftAttn a)
{
    pdl_trigger();   // programmatic dependent launch inside a pass (cuda_drafter_pass)
    pdl_wait();
    __shared__ float qs[DRAFT_MAX_HEAD_DIM];
    __shared__ float ps[DRAFT_ATTN_SPLIT];
    __shared__ float red[32];
    const int head = blockIdx.x, i = blockIdx.y, split = blockIdx.z, nsplit = gridDim.z;
    const int p = a.where.base();
    // Context keys older than the window are hidden from every block query: not scored at all.
    const int first = (a.window > 0 && p - a.window + 1 > 0) ? p - a.window + 1 : 0, n_ctx = p - first;
    const int kvh = head / a.group, pos_q = p + i, D = a.D;
    const int lo = split * DRAFT_ATTN_SPLIT;
    const int nk = min(DRAFT_ATTN_SPLIT, n_ctx + a.B - lo);
    float *part = a.partial + (((size_t)i * a.n_heads + head) * nsplit + split) * (2 + D);
    if (nk <= 0) {   // a split past the keys (the grid is sized for the longest span): empty
        if (threadIdx.x == 0) {
            part[0] = -INFINITY;
            part[1] = 0.0f;
        }
        return;
    }
    for (int d = threadIdx.x; d < D; d += blockDim.x)
        qs[d] = a.q[(size_t)i * a.ldq + (size_t)head * D + d];
    __syncthreads();
    // Keys: the context rows first..first+n_ctx-1 (cache rows by position), then the block's (bk/bv).
    const auto key_pos = [&](int j) { return lo + j < n_ctx ? first + lo + j : p + (lo + j - n_ctx); };
    const auto row_of = [&](const float *cache, const float *block, int j) {
        const int key = lo + j;
        return (key < n_ctx ? cache + (size_t)(first + key) * a.kd : block + (size_t)(key - n_ctx) * a.ldb) + (size_t)kvh * D;
    };
    const bool vec4 = (D & 3) == 0 && (a.kd & 3) == 0 && (a.ldb & 3) == 0 && (uintptr_t)a.bk % 16 == 0;
    block_key_scores(
        qs, nk, D, vec4, [&](int j) { return row_of(a.kc, a.bk, j); },
        [&](int j, float s) { ps[j] = (a.window > 0 && pos_q - key_pos(j) >= a.window) ? -INFINITY : a.scale * s; });
    __syncthreads();
    float m = -INFINITY;
    for (int j = threadIdx.x; j < nk; j += blockDim.x)
        m = fmaxf(m, ps[j]);
    m = draft_block_reduce(m, red, true);
    float l = 0.0f;
    for (int j = threadIdx.x; j < nk; j += blockDim.x) {
        float e = ps[j] == -INFINITY ? 0.0f : expf(ps[j] - m);
        ps[j] = e;
        l += e;
    }
    l = draft_block_reduce(l, red, false);   // its barriers order the ps writes before the reads below
    __shared__ float vred[DRAFT_ATTN_THREADS / 32][DRAFT_MAX_HEAD_DIM];
    block_weighted_rows<DRAFT_MAX_HEAD_DIM>(ps, nk, D, [&](int j) { return row_of(a.vc, a.bv, j); }, vred, part + 2);
    if (threadIdx.x == 0) {
        part[0] = l > 0.0f ? m : -INFINITY;
        part[1] = l;
    }
}

// The same partials for all the query heads of one kv head and every block row at once (the pass's form where
// head widths are at most DRAFT_GROUP_MAX_DIM: MiMo's drafter's 128). draft_attn_split_kernel reads a split's key
// and value rows from L2 once per query head and block row — group x B times (32 at the MiMo drafter's 4 heads a
// kv head and block 8), 26 us a layer of `small`'s drafter pass in a trace (results/kernels/README.md,
// thirty-first session). Here a block stages the split's rows in shared memory once for its share of the kv
// head's query rows (row r: head r mod group of the kv head, block row r / group; grid.z blocks share them, a
// row a warp by default); warp w takes its rows w, w + 8, ...: lane i holds the query's dims i, i + 32, ..., each
// key's dot product is summed over the lanes by a transposed butterfly (key j's in lane j mod 32), the softmax is
// the warp's, and the probabilities in shared memory weight the value rows, a lane's dims each.
#define DRAFT_GROUP_MAX_DIM 128
#define DRAFT_GROUP_WARPS 8
#define DRAFT_GROUP_DIMS (DRAFT_GROUP_MAX_DIM / 32)   // dims of a query / value row a lane holds
static_assert(DRAFT_ATTN_SPLIT % 32 == 0, "a split of whole warps of keys");

// Dynamic shared memory of draft_attn_group_kernel for head width D: the split's key rows, its value rows, and
// each warp's probabilities.
static size_t draft_group_smem(int D)
{
    return (size_t)2 * DRAFT_ATTN_SPLIT * D * sizeof(float) + (size_t)DRAFT_GROUP_WARPS * DRAFT_ATTN_SPLIT * sizeof(float);
}

__global__ void __launch_bounds__(DRAFT_GROUP_WARPS * 32) draft_attn_group_kernel(const DraftAttn a)
{
    pdl_trigger();   // programmatic dependent launch inside a pass (cuda_drafter_pass)
    pdl_wait();
    extern __shared__ float4 draft_group_smem4[];
    const int D = a.D, kvh = blockIdx.x, split = blockIdx.y, nsplit = gridDim.y;
    float *ks = (float *)draft_group_smem4, *vs = ks + DRAFT_ATTN_SPLIT * D;
    float *pw = vs + DRAFT_ATTN_SPLIT * D + (threadIdx.x / 32) * DRAFT_ATTN_SPLIT;   // this warp's probabilities
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    // this block's query rows [r0, r1) of the kv head's group x B (grid.z blocks share them)
    const int all_rows = a.group * a.B, per_block = (all_rows + gridDim.z - 1) / gridDim.z;
    const int r0 = blockIdx.z * per_block, r1 = min(all_rows, r0 + per_block);
    const int p = a.where.base();
    // Context keys older than the window are hidden from every block query: not scored at all.
    const int first = (a.window > 0 && p - a.window + 1 > 0) ? p - a.window + 1 : 0, n_ctx = p - first;
    const int lo = split * DRAFT_ATTN_SPLIT, nk = min(DRAFT_ATTN_SPLIT, n_ctx + a.B - lo);
    const auto part_of = [&](int r) {
        const int head = kvh * a.group + r % a.group, i = r / a.group;
        return a.partial + (((size_t)i * a.n_heads + head) * nsplit + split) * (2 + D);
    };
    if (nk <= 0) {   // a split past the keys (the grid is sized for the longest span): empty
        for (int r = r0 + threadIdx.x; r < r1; r += blockDim.x) {
            float *part = part_of(r);
            part[0] = -INFINITY;
            part[1] = 0.0f;
        }
        return;
    }
    // Keys: the context rows first..first+n_ctx-1 (cache rows by position), then the block's (bk/bv).
    const auto row_of = [&](const float *cache, const float *block, int j) {
        const int key = lo + j;
        return (key < n_ctx ? cache + (size_t)(first + key) * a.kd : block + (size_t)(key - n_ctx) * a.ldb) + (size_t)kvh * D;
    };
    const bool vec4 = (D & 3) == 0 && (a.kd & 3) == 0 && (a.ldb & 3) == 0 && (uintptr_t)a.kc % 16 == 0 &&
                      (uintptr_t)a.vc % 16 == 0 && (uintptr_t)a.bk % 16 == 0 && (uintptr_t)a.bv % 16 == 0;
    if (vec4) {
        const int d4 = D / 4;
#pragma unroll 4
        for (int u = threadIdx.x; u < nk * d4; u += blockDim.x) {
            ((float4 *)ks)[u] = ((const float4 *)row_of(a.kc, a.bk, u / d4))[u % d4];
            ((float4 *)vs)[u] = ((const float4 *)row_of(a.vc, a.bv, u / d4))[u % d4];
        }
    } else {
        for (int u = threadIdx.x; u < nk * D; u += blockDim.x) {
            ks[u] = row_of(a.kc, a.bk, u / D)[u % D];
            vs[u] = row_of(a.vc, a.bv, u / D)[u % D];
        }
    }
    __syncthreads();
    for (int r = r0 + warp; r < r1; r += DRAFT_GROUP_WARPS) {
        const int head = kvh * a.group + r % a.group, i = r / a.group, pos_q = p + i;
        float q[DRAFT_GROUP_DIMS];
#pragma unroll
        for (int c = 0; c < DRAFT_GROUP_DIMS; c++) {
            const int d = lane + 32 * c;
            q[c] = d < D ? a.q[(size_t)i * a.ldq + (size_t)head * D + d] : 0.0f;
        }
        float score[DRAFT_ATTN_SPLIT / 32], m = -INFINITY;   // of keys lane, lane + 32, ...
#pragma unroll
        for (int h = 0; h < DRAFT_ATTN_SPLIT / 32; h++) {
            float dot[32];
#pragma unroll
            for (int k = 0; k < 32; k++) {
                const int j = 32 * h + k;   // the same in every lane
                float s = 0.0f;
                if (j < nk)
#pragma unroll
                    for (int c = 0; c < DRAFT_GROUP_DIMS; c++) {
                        const int d = lane + 32 * c;
                        if (d < D)
                            s = fmaf(q[c], ks[j * D + d], s);
                    }
                dot[k] = s;
            }
            const float sum = warp_transposed_sum<32>(dot, lane);   // key 32 h + lane's
            const int j = 32 * h + lane, key = lo + j;
            const int key_pos = key < n_ctx ? first + key : p + (key - n_ctx);
            score[h] = j < nk && !(a.window > 0 && pos_q - key_pos >= a.window) ? a.scale * sum : -INFINITY;
            m = fmaxf(m, score[h]);
        }
        m = draft_warp_max(m);
        float l = 0.0f;
#pragma unroll
        for (int h = 0; h < DRAFT_ATTN_SPLIT / 32; h++) {
            const float e = score[h] == -INFINITY ? 0.0f : expf(score[h] - m);
            pw[32 * h + lane] = e;
            l += e;
        }
        l = draft_warp_sum(l);
        __syncwarp();   // the probabilities, for every lane
        float acc[DRAFT_GROUP_DIMS] = {};
        for (int j = 0; j < nk; j++) {
            const float e = pw[j];
#pragma unroll
            for (int c = 0; c < DRAFT_GROUP_DIMS; c++) {
                const int d = lane + 32 * c;
                if (d < D)
                    acc[c] = fmaf(e, vs[j * D + d], acc[c]);
            }
        }
        float *part = part_of(r);
#pragma unroll
        for (int c = 0; c < DRAFT_GROUP_DIMS; c++)
            if (lane + 32 * c < D)
                part[2 + lane + 32 * c] = acc[c];
        if (lane == 0) {
            part[0] = l > 0.0f ? m : -INFINITY;
            part[1] = l;
        }
        __syncwarp();   // pw is the next row's
    }
}

// Merges the splits of one (head, block row) with the sink (a virtual key whose value is zero).
__global__ void draft_attn_merge_kernel(const float *partial, int nsplit, int D, int n_heads, const float *sink,
                                        float *out, int ldo)
{
    pdl_trigger();   // programmatic dependent launch inside a pass (cuda_drafter_pass)
    pdl_wait();
    const int head = blockIdx.x, i = blockIdx.y;
    const float *part = partial + ((size_t)i * n_heads + head) * nsplit * (2 + D);
    const float sk = sink ? sink[head] : -INFINITY;
    float M = sk;
    for (int s = 0; s < nsplit; s++)
        M = fmaxf(M, part[(size_t)s * (2 + D)]);
    float L = sk > -INFINITY ? expf(sk - M) : 0.0f;
    for (int s = 0; s < nsplit; s++) {
        const float *ps = part + (size_t)s * (2 + D);
        if (ps[1] > 0.0f)
            L += ps[1] * expf(ps[0] - M);
    }
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.0f;
        for (int s = 0; s < nsplit; s++) {
            const float *ps = part + (size_t)s * (2 + D);
            if (ps[1] > 0.0f)
                acc += ps[2 + d] * expf(ps[0] - M);
        }
        out[(size_t)i * ldo + (size_t)head * D + d] = L > 0.0f ? acc / L : 0.0f;   // nothing visible: zero
    }
}

// ---- host helpers ----

// With the engine's split workspace (GemvKnobs::drafter_split), as the target's step gives it: the
// several-position GEMVs of 1024 rows or more then run dense_bulk_kernel where its rules take them, fewer rows
// the tensor-core kernel's column split (cuda_gemv's rules); without it they take the tensor-core kernel
// unsplit. The drafter's launches share the engine's stream, so the split's counters are zero between
// launches.
static GemvParams drafter_gemv_params(const CudaDrafter *d, const GpuMat &w, const float *x, int ldx, float *y, int ldy,
                                      int n, bool accumulate)
{
    GemvParams p = gemv_params(w, x, ldx, y, ldy, n, accumulate);
    if (cuda_gemv_knobs().drafter_split)
        p.split = d->split;
    return p;
}

static int gemv(const CudaDrafter *d, const GpuMat &w, const GpuMat *w2, const float *x, int ldx, float *y, int ldy,
                int n, bool accumulate, cudaStream_t st, mimo_error *err)
{
    GemvParams p = drafter_gemv_params(d, w, x, ldx, y, ldy, n, accumulate);
    if (w2)
        p.w2 = *w2;
    return cuda_gemv(p, w2 != nullptr, st, err);
}

// y = W rmsnorm(x) for n rows: the norm folded into the GEMV where its kernel takes it (GemvNormX: it reads the
// residual rows x and normalises them itself, as the target's step does), else the norm kernel into d->h first.
static int normed_gemv(CudaDrafter *d, const float *norm_w, const GpuMat &w, float *y, int ldy, int n, cudaStream_t st,
                       mimo_error *err)
{
    GemvParams p = drafter_gemv_params(d, w, d->x, d->ld_h, y, ldy, n, false);
    p.norm_x = GemvNormX{norm_w, d->cfg.rms_eps};
    if (w.ld == d->ld_h && cuda_gemv_takes_norm_x(p, false))
        return cuda_gemv(p, false, st, err);
    if (cuda_rmsnorm(d->x, d->ld_h, norm_w, d->cfg.hidden_size, d->cfg.rms_eps, d->h, d->ld_h, n, st, err))
        return -1;
    cuda_pdl_chain(true);   // inside a pass every launch after its first is chained (cuda_drafter_pass)
    return gemv(d, w, nullptr, d->h, d->ld_h, y, ldy, n, false, st, err);
}

// In place on n rows of x at positions where.base() + row.
static int head_norm_rope(const CudaDrafter *d, float *x, int ld, int n_heads, const float *w, DraftPos where, int n,
                          cudaStream_t st, mimo_error *err)
{
    const mimo_drafter_config *c = &d->cfg;
    return cuda_launch("draft_head_norm_rope_kernel", err, draft_head_norm_rope_kernel, dim3(n_heads, n), dim3(32), 0, st,
                       (const float *)x, ld, x, ld, false, c->head_dim, c->rope_dim, d->rope_inv_freq, w, c->rms_eps,
                       where);
}

static int scale_values(const CudaDrafter *d, float *v, int ld, int n, cudaStream_t st, mimo_error *err)
{
    if (d->cfg.attention_value_scale == 1.0f)
        return 0;   // x * 1 == x: the reference's multiply changes nothing
    return cuda_launch("draft_scale_rows_kernel", err, draft_scale_rows_kernel, dim3(n), dim3(128), 0, st, (const float *)v,
                       ld, v, ld, false, d->kd, d->cfg.attention_value_scale, DraftPos{0, nullptr});
}

// The n staged context rows k (bk) and v (bv) of layer l into its cache at positions where.base() + row:
// k with k_norm and RoPE, v with the value scale.
static int store_context(const CudaDrafter *d, const CudaDrafterLayer &L, int n, DraftPos where, cudaStream_t st,
                         mimo_error *err)
{
    const mimo_drafter_config *c = &d->cfg;
    return cuda_launch("draft_head_norm_rope_kernel", err, draft_head_norm_rope_kernel, dim3(c->n_kv_heads, n), dim3(32),
                       0, st, (const float *)d->bk, d->kd, L.kcache, d->kd, true, c->head_dim, c->rope_dim,
                       d->rope_inv_freq, L.k_norm, c->rms_eps, where) ||
           cuda_launch("draft_scale_rows_kernel", err, draft_scale_rows_kernel, dim3(n), dim3(128), 0, st,
                       (const float *)d->bv, d->kd, L.vcache, d->kd, true, d->kd, c->attention_value_scale, where);
}

// MIMO_CUDA_DRAFT_ATTN_GROUP (cuda_drafter.cuh): 1 unless set to 0 or 2.
int &cuda_draft_attn_group_knob()
{
    static int on = [] {
        const char *v = getenv("MIMO_CUDA_DRAFT_ATTN_GROUP");
        return v && (v[0] == '0' || v[0] == '2') ? v[0] - '0' : 1;
    }();
    return on;
}

// The block's q, k and v rows of a pass: in qkv_out from one GEMV where the layer has its q, k and v in one
// matrix, else in q, bk and bv.
struct DraftBlockRows {
    float *q, *bk, *bv;
    int ldq, ldb;
};

// Block attention of layer l for the B block rows r into d->attn. With a device position the
// grid covers the longest span and splits past the keys stay empty.
static int block_attention(CudaDrafter *d, int l, int B, const DraftBlockRows &r, DraftPos where, cudaStream_t st,
                           mimo_error *err)
{
    const mimo_drafter_config *c = &d->cfg;
    const CudaDrafterLayer &L = d->layers[l];
    DraftAttn a;
    a.q = r.q;
    a.ldq = r.ldq;
    a.kc = L.kcache;
    a.vc = L.vcache;
    a.bk = r.bk;
    a.bv = r.bv;
    a.kd = d->kd;
    a.ldb = r.ldb;
    a.D = c->head_dim;
    a.n_heads = c->n_heads;
    a.group = c->n_heads / c->n_kv_heads;
    a.where = where;
    a.B = B;
    a.window = L.is_swa ? c->window : 0;
    a.scale = (float)(1.0 / sqrt((double)c->head_dim));
    a.partial = d->partial;
    int nsplit = d->max_splits;
    if (!where.d_pos) {
        const int p = where.pos0, first = (a.window > 0 && p - a.window + 1 > 0) ? p - a.window + 1 : 0;
        nsplit = (p - first + B + DRAFT_ATTN_SPLIT - 1) / DRAFT_ATTN_SPLIT;
    }
    if (nsplit > d->max_splits)
        return mimo_fail(err, "cuda drafter: %d attention key splits exceed the %d allocated", nsplit, d->max_splits);
    if (c->head_dim <= DRAFT_GROUP_MAX_DIM && cuda_draft_attn_group_knob()) {
        // a kv head's query rows over blocks of a row a warp (the knob's 2: all of them in one block, 4 a warp at
        // the MiMo drafter's shape — 27 us a layer of `small`'s pass in a trace, latency-bound on 8 warps an SM)
        const int rows = a.group * B;
        const int z = cuda_draft_attn_group_knob() == 2 ? 1 : (rows + DRAFT_GROUP_WARPS - 1) / DRAFT_GROUP_WARPS;
        if (cuda_launch("draft_attn_group_kernel", err, draft_attn_group_kernel, dim3(c->n_kv_heads, nsplit, z),
                        dim3(DRAFT_GROUP_WARPS * 32), draft_group_smem(c->head_dim), st, a))
            return -1;
    } else if (cuda_launch("draft_attn_split_kernel", err, draft_attn_split_kernel, dim3(c->n_heads, B, nsplit),
                           dim3(DRAFT_ATTN_THREADS), 0, st, a)) {
        return -1;
    }
    return cuda_launch("draft_attn_merge_kernel", err, draft_attn_merge_kernel, dim3(c->n_heads, B), dim3(128), 0, st,
                       (const float *)d->partial, nsplit, c->head_dim, c->n_heads, (const float *)L.sink, d->attn, d->ld_q);
}

// ---- attach / destroy ----

void cuda_drafter_destroy(CudaDrafter *d)
{
    if (!d)
        return;
    for (void *p : d->allocations)
        cudaFree(p);
    delete d;
}

static int alloc_zeroed(CudaEngine *e, float **p, size_t n, mimo_error *err)
{
    void *v;
    if (cuda_engine_alloc(e, &v, n * sizeof(float), err))
        return -1;
    CUDA_CHECK(cudaMemset(v, 0, n * sizeof(float)));   // padding columns of gemv inputs must read as zero
    *p = (float *)v;
    return 0;
}

static uint64_t drafter_device_bytes(const CudaDrafter *d, const mimo_drafter_weights *w, int vocab)
{
    const mimo_drafter_config *c = &d->cfg;
    uint64_t b = cuda_matrix_device_bytes(w->fc.format, w->fc.rows, w->fc.cols) + 3ull * c->hidden_size * 4;
    for (int l = 0; l < c->num_layers; l++) {
        const mimo_drafter_layer *L = &w->layers[l];
        const mimo_matrix *ms[] = {&L->q_proj, &L->k_proj, &L->v_proj, &L->o_proj, &L->gate, &L->up, &L->down};
        for (const mimo_matrix *m : ms)
            b += cuda_matrix_device_bytes(m->format, m->rows, m->cols);
        b += (2ull * c->hidden_size + 2ull * c->head_dim + c->n_heads) * 4;
        b += 2ull * d->max_ctx * d->kd * 4;
    }
    b += (uint64_t)DRAFT_ROWS * (d->ld_feat + 3ull * d->ld_h + 2ull * d->ld_q + 2ull * d->kd + d->ld_qkv + d->ld_i + vocab) * 4;
    b += (uint64_t)DRAFT_ROWS * c->n_heads * d->max_splits * (2ull + c->head_dim) * 4;
    return b;
}

// A layer's q, k and v projections. Where their format has no scales (bf16, f32: MiMo's drafter is bf16) and
// their columns agree, one matrix of their rows in that order, q_proj, k_proj and v_proj its row ranges: the pass
// runs one GEMV a layer for the three (one launch, one input read, a matrix big enough for the bulk kernel's
// column split) and the context append keeps its k and v GEMVs. Else three matrices.
static int upload_qkv(CudaEngine *e, const mimo_drafter_layer *lw, CudaDrafterLayer &L, const char *what, mimo_error *err)
{
    const mimo_matrix *parts[3] = {&lw->q_proj, &lw->k_proj, &lw->v_proj};
    GpuMat *views[3] = {&L.q_proj, &L.k_proj, &L.v_proj};
    const int fmt = parts[0]->format;
    bool together = fmt == MIMO_WFMT_BF16 || fmt == MIMO_WFMT_F32;
    long long rows = 0;
    for (const mimo_matrix *m : parts) {
        together = together && m->format == fmt && m->cols == parts[0]->cols;
        rows += m->rows;
    }
    if (!together) {
        for (int i = 0; i < 3; i++)
            if (cuda_upload_matrix(e, parts[i], views[i], what, err))
                return -1;
        return 0;
    }
    if (cuda_alloc_matrix_set(e, fmt, (int)rows, (int)parts[0]->cols, 0, 1, &L.qkv, err))
        return mimo_fail_prefix(err, "cuda upload of %s qkv", what);
    const size_t row_bytes = gpu_row_bytes(fmt, L.qkv.ld);
    long long row0 = 0;
    for (int i = 0; i < 3; i++) {
        GpuMat v = L.qkv;
        v.data = (const uint8_t *)L.qkv.data + (size_t)row0 * row_bytes;
        v.rows = (int)parts[i]->rows;
        v.expert_stride_data = (long long)v.rows * (long long)row_bytes;
        if (cuda_upload_matrix_into(e, parts[i], v, 0, err))
            return mimo_fail_prefix(err, "cuda upload of %s qkv", what);
        *views[i] = v;
        row0 += parts[i]->rows;
    }
    return 0;
}

static int attach_inner(CudaEngine *e, CudaDrafter *d, const mimo_drafter_weights *w, mimo_error *err)
{
    const mimo_drafter_config *c = &d->cfg;
    const int H = c->hidden_size;
    char what[96];
    if (cuda_upload_matrix(e, &w->fc, &d->fc, "drafter fc", err) ||
        cuda_upload_vector(e, w->hidden_norm, H, &d->hidden_norm, err) ||
        cuda_upload_vector(e, w->final_norm, H, &d->final_norm, err) ||
        (w->mask_embedding && cuda_upload_vector(e, w->mask_embedding, H, &d->mask_embedding, err)))
        return -1;
    if (cuda_upload_rope_table(e, c->rope_theta, c->rope_dim, &d->rope_inv_freq, err))
        return -1;
    d->layers.resize(c->num_layers);
    for (int l = 0; l < c->num_layers; l++) {
        const mimo_drafter_layer *lw = &w->layers[l];
        CudaDrafterLayer &L = d->layers[l];
        memset(&L, 0, sizeof L);
        L.is_swa = c->layer_is_swa[l];
        snprintf(what, sizeof what, "drafter layer %d", l);
        if (cuda_upload_vector(e, lw->input_norm, H, &L.input_norm, err) ||
            cuda_upload_vector(e, lw->post_attn_norm, H, &L.post_norm, err) ||
            cuda_upload_vector(e, lw->q_norm, c->head_dim, &L.q_norm, err) ||
            cuda_upload_vector(e, lw->k_norm, c->head_dim, &L.k_norm, err) ||
            (c->has_sink && lw->sink && cuda_upload_vector(e, lw->sink, c->n_heads, &L.sink, err)) ||
            upload_qkv(e, lw, L, what, err) || cuda_upload_matrix(e, &lw->o_proj, &L.o_proj, what, err) ||
            cuda_upload_matrix(e, &lw->gate, &L.gate, what, err) || cuda_upload_matrix(e, &lw->up, &L.up, what, err) ||
            cuda_upload_matrix(e, &lw->down, &L.down, what, err))
            return -1;
        if (alloc_zeroed(e, &L.kcache, (size_t)d->max_ctx * d->kd, err) || alloc_zeroed(e, &L.vcache, (size_t)d->max_ctx * d->kd, err))
            return -1;
    }
    const size_t R = DRAFT_ROWS;
    if (alloc_zeroed(e, &d->feat_in, R * d->ld_feat, err) || alloc_zeroed(e, &d->feat, R * d->ld_h, err) ||
        alloc_zeroed(e, &d->x, R * d->ld_h, err) || alloc_zeroed(e, &d->h, R * d->ld_h, err) ||
        alloc_zeroed(e, &d->q, R * d->ld_q, err) || alloc_zeroed(e, &d->attn, R * d->ld_q, err) ||
        alloc_zeroed(e, &d->bk, R * d->kd, err) || alloc_zeroed(e, &d->bv, R * d->kd, err) ||
        alloc_zeroed(e, &d->qkv_out, R * d->ld_qkv, err) ||
        alloc_zeroed(e, &d->mlp, R * d->ld_i, err) || alloc_zeroed(e, &d->logits, R * d->ld_logits, err) ||
        alloc_zeroed(e, &d->partial, R * c->n_heads * d->max_splits * (2 + (size_t)c->head_dim), err))
        return -1;
    void *v;
    if (cuda_engine_alloc(e, &v, R * sizeof(int32_t), err))
        return -1;
    d->d_block = (int32_t *)v;
    if (cuda_engine_alloc(e, &v, R * sizeof(int32_t), err))
        return -1;
    d->d_argmax = (int32_t *)v;
    CUDA_CHECK(cudaDeviceSynchronize());
    return 0;
}

int cuda_drafter_attach_to(CudaEngine *e, const mimo_drafter_weights *w, bool allow_shard, mimo_error *err)
{
    const mimo_drafter_config *c = &w->cfg;
    if (e->nshard > 1 && !allow_shard)
        return mimo_fail(err, "cuda: the DFlash drafter needs the whole target on one device (this engine is shard %d "
                              "of %d); run DFlash without --shard", e->rank, e->nshard);
    if (c->hidden_size != e->cfg.hidden_size)
        return mimo_fail(err, "drafter: hidden_size %d != target hidden_size %d", c->hidden_size, e->cfg.hidden_size);
    if (c->mask_token_id < 0 || c->mask_token_id >= e->cfg.vocab_size)
        return mimo_fail(err, "drafter: mask_token_id %d outside the target vocabulary [0, %d)", c->mask_token_id,
                         e->cfg.vocab_size);
    if (c->num_layers < 1 || c->num_layers > 64 || c->n_kv_heads < 1 || c->n_heads < 1 || c->n_heads % c->n_kv_heads)
        return mimo_fail(err, "drafter: bad layer/head counts (%d layers, %d/%d heads)", c->num_layers, c->n_heads, c->n_kv_heads);
    if (c->head_dim < 1 || c->head_dim > DRAFT_MAX_HEAD_DIM || c->rope_dim < 0 || c->rope_dim > c->head_dim)
        return mimo_fail(err, "cuda drafter: head_dim %d / rope_dim %d outside the kernels' range (head_dim <= %d)",
                         c->head_dim, c->rope_dim, DRAFT_MAX_HEAD_DIM);
    if (c->n_target_layers < 1 || c->n_target_layers > MIMO_DFLASH_MAX_TARGET_LAYERS)
        return mimo_fail(err, "drafter: n_target_layers %d out of range [1, %d]", c->n_target_layers,
                         MIMO_DFLASH_MAX_TARGET_LAYERS);
    if (e->max_ctx < 1)
        return mimo_fail(err, "drafter: max_context must be >= 1");

    CUDA_CHECK(cudaFuncSetAttribute(draft_attn_group_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)draft_group_smem(DRAFT_GROUP_MAX_DIM)));
    CudaDrafter *d = new CudaDrafter();
    d->cfg = *c;
    d->max_ctx = e->max_ctx;
    d->split = e->split;
    d->feat_dim = c->n_target_layers * c->hidden_size;
    d->ld_feat = gpu_pad_cols(d->feat_dim);
    d->ld_h = gpu_pad_cols(c->hidden_size);
    d->ld_q = gpu_pad_cols(c->n_heads * c->head_dim);
    d->ld_i = gpu_pad_cols(c->intermediate_size);
    d->kd = c->n_kv_heads * c->head_dim;
    d->ld_qkv = gpu_pad_cols(c->n_heads * c->head_dim + 2 * d->kd);
    d->ld_logits = e->vocab_local;
    int span = 0;   // the most context keys one block query can see
    for (int l = 0; l < c->num_layers; l++) {
        int s = c->layer_is_swa[l] && c->window > 0 && c->window < d->max_ctx ? c->window : d->max_ctx;
        span = s > span ? s : span;
    }
    d->max_splits = (span + DRAFT_ROWS + DRAFT_ATTN_SPLIT - 1) / DRAFT_ATTN_SPLIT;

    size_t free_b = 0, total_b = 0;
    cudaError_t mrc = cudaMemGetInfo(&free_b, &total_b);
    if (mrc != cudaSuccess) {
        delete d;
        return mimo_fail(err, "cuda: cudaMemGetInfo failed: %s", cudaGetErrorString(mrc));
    }
    const uint64_t need = drafter_device_bytes(d, w, e->vocab_local) + (16ull << 20);
    if (need > free_b) {
        delete d;
        return mimo_fail(err, "cuda: not enough device memory for the DFlash drafter: it needs %.2f GiB (context cache "
                              "for max_context %d), %.2f GiB are free", need / 1073741824.0, e->max_ctx, free_b / 1073741824.0);
    }

    // The upload helpers track allocations in e->allocations: collect the drafter's apart so that
    // it can be freed (or replaced) without the engine.
    std::vector<void *> engine_allocations;
    engine_allocations.swap(e->allocations);
    int rc = attach_inner(e, d, w, err);
    d->allocations.swap(e->allocations);
    e->allocations.swap(engine_allocations);
    if (rc) {
        cudaDeviceSynchronize();
        cuda_drafter_destroy(d);
        return mimo_fail_prefix(err, "cuda: attaching the DFlash drafter");
    }
    if (e->drafter) {
        CUDA_CHECK(cudaStreamSynchronize(e->stream));
        cuda_drafter_destroy(e->drafter);
    }
    e->drafter = d;
    return 0;
}

int cuda_drafter_attach(CudaEngine *e, const mimo_drafter_weights *w, mimo_error *err)
{
    return cuda_drafter_attach_to(e, w, false, err);
}

// ---- the ops ----

int cuda_drafter_length(const CudaEngine *e) { return e->drafter ? e->drafter->length : 0; }

int cuda_drafter_truncate(CudaEngine *e, int n_context, mimo_error *err)
{
    const CudaDrafter *d = e->drafter;
    if (d && (n_context < 0 || n_context > d->length))
        return mimo_fail(err, "drafter: cannot truncate context to %d (length %d)", n_context, d->length);
    return cuda_drafter_set_length(e, n_context, err);   // the cache is indexed by position: nothing to move
}

// fc -> hidden_norm -> each layer's k/v (staged in bk/bv, then k_norm + RoPE and the value scale on
// the way into the context cache) for the m feature rows in d->feat_in, at positions where.base() + row.
// Enqueued only.
// Programmatic dependent launch inside a sequence of the drafter's kernels: off while it lives (the
// first kernel, after copies, is launched plainly; the caller turns the chain on after it), and off
// again however the sequence returns.
struct PdlChainOff {
    PdlChainOff() { cuda_pdl_chain(false); }
    ~PdlChainOff() { cuda_pdl_chain(false); }
};

static int append_rows(CudaEngine *e, int m, DraftPos where, mimo_error *err)
{
    CudaDrafter *d = e->drafter;
    const mimo_drafter_config *c = &d->cfg;
    cudaStream_t st = e->stream;
    PdlChainOff pdl_off;
    if (gemv(d, d->fc, nullptr, d->feat_in, d->ld_feat, d->feat, d->ld_h, m, false, st, err))
        return mimo_fail_prefix(err, "cuda drafter context");
    cuda_pdl_chain(true);
    if (cuda_rmsnorm(d->feat, d->ld_h, d->hidden_norm, c->hidden_size, c->rms_eps, d->feat, d->ld_h, m, st, err))
        return mimo_fail_prefix(err, "cuda drafter context");
    for (int l = 0; l < c->num_layers; l++) {
        CudaDrafterLayer &L = d->layers[l];
        if (gemv(d, L.k_proj, nullptr, d->feat, d->ld_h, d->bk, d->kd, m, false, st, err) ||
            gemv(d, L.v_proj, nullptr, d->feat, d->ld_h, d->bv, d->kd, m, false, st, err) ||
            store_context(d, L, m, where, st, err))
            return mimo_fail_prefix(err, "cuda drafter context (layer %d)", l);
    }
    return 0;
}

int cuda_drafter_append(CudaEngine *e, const float *target_hidden, int n, mimo_error *err)
{
    CudaDrafter *d = e->drafter;
    if (!d)
        return mimo_fail(err, "cuda: no drafter attached");
    if (n < 0 || d->length + n > d->max_ctx)
        return mimo_fail(err, "drafter: appending %d context positions at %d exceeds max_context %d", n, d->length, d->max_ctx);
    cudaStream_t st = e->stream;
    for (int off = 0; off < n; off += DRAFT_ROWS) {
        const int m = n - off < DRAFT_ROWS ? n - off : DRAFT_ROWS;
        CUDA_CHECK(cudaMemcpy2DAsync(d->feat_in, (size_t)d->ld_feat * sizeof(float), target_hidden + (size_t)off * d->feat_dim,
                                     (size_t)d->feat_dim * sizeof(float), (size_t)d->feat_dim * sizeof(float), (size_t)m,
                                     cudaMemcpyHostToDevice, st));
        if (append_rows(e, m, DraftPos{d->length + off, nullptr}, err))
            return mimo_fail_prefix(err, "at position %d", d->length + off);
    }
    CUDA_CHECK(cudaStreamSynchronize(st));
    d->length += n;
    return 0;
}

// feat_in[t][j * H + c] = hidden[(j * rows_per_output + t) * H + c]: the target's hidden-state outputs
// (one [16][H] slab per target layer) regrouped into the drafter's feature rows.
__global__ void draft_gather_features_kernel(const float *hidden, int rows_per_output, int H, float *feat_in, int ld_feat)
{
    const int t = blockIdx.x, j = blockIdx.y;
    const float *src = hidden + ((size_t)j * rows_per_output + t) * H;
    float *dst = feat_in + (size_t)t * ld_feat + (size_t)j * H;
    for (int c = threadIdx.x; c < H; c += blockDim.x)
        dst[c] = src[c];
}

int cuda_drafter_append_device(CudaEngine *e, const float *hidden, int rows_per_output, int n, const int *d_pos,
                               mimo_error *err)
{
    CudaDrafter *d = e->drafter;
    if (!d)
        return mimo_fail(err, "cuda: no drafter attached");
    if (n < 1 || n > DRAFT_ROWS || d->length + n > d->max_ctx)
        return mimo_fail(err, "drafter: appending %d context positions at %d (at most %d, max_context %d)", n, d->length,
                         DRAFT_ROWS, d->max_ctx);
    draft_gather_features_kernel<<<dim3(n, d->cfg.n_target_layers), 256, 0, e->stream>>>(hidden, rows_per_output,
                                                                                        d->cfg.hidden_size, d->feat_in,
                                                                                        d->ld_feat);
    CUDA_CHECK_LAUNCH("draft_gather_features_kernel");
    if (append_rows(e, n, d_pos ? DraftPos{0, d_pos} : DraftPos{d->length, nullptr}, err))
        return -1;
    if (!d_pos)
        d->length += n;
    return 0;
}

int cuda_drafter_set_length(CudaEngine *e, int n_context, mimo_error *err)
{
    CudaDrafter *d = e->drafter;
    if (!d)
        return mimo_fail(err, "cuda: no drafter attached");
    if (n_context < 0 || n_context > d->max_ctx)
        return mimo_fail(err, "drafter: context length %d outside [0, %d]", n_context, d->max_ctx);
    d->length = n_context;
    return 0;
}

const float *cuda_drafter_logits(const CudaEngine *e) { return e->drafter->logits; }
const int32_t *cuda_drafter_argmax(const CudaEngine *e) { return e->drafter->d_argmax; }
int cuda_drafter_logits_ld(const CudaEngine *e) { return e->drafter->ld_logits; }
int cuda_drafter_mask_token(const CudaEngine *e) { return e->drafter->cfg.mask_token_id; }

static double mat_bytes(const GpuMat &m) { return (double)cuda_matrix_device_bytes(m.fmt, m.rows, m.cols); }

void cuda_drafter_bytes(const CudaEngine *e, int B, double *pass, double *append)
{
    const CudaDrafter *d = e->drafter;
    const mimo_drafter_config *c = &d->cfg;
    const double norm = (double)c->hidden_size * 4;
    double p = mat_bytes(e->lm_head) + norm + (double)B * c->hidden_size * 2, a = mat_bytes(d->fc) + norm;
    for (int l = 0; l < c->num_layers; l++) {
        const CudaDrafterLayer &L = d->layers[l];
        p += mat_bytes(L.q_proj) + mat_bytes(L.k_proj) + mat_bytes(L.v_proj) + mat_bytes(L.o_proj) + mat_bytes(L.gate) +
             mat_bytes(L.up) + mat_bytes(L.down) + 2 * norm + 2.0 * c->head_dim * 4;
        const int keys = L.is_swa && c->window > 0 && c->window < d->length ? c->window : d->length;
        p += 2.0 * keys * d->kd * 4;   // the context K/V the block attends to
        a += mat_bytes(L.k_proj) + mat_bytes(L.v_proj) + c->head_dim * 4.0;
    }
    *pass = p;
    *append = a;
}

int cuda_drafter_pass(CudaEngine *e, const int32_t *block, const int32_t *d_block, const int *d_pos, int B, bool head,
                      mimo_error *err)
{
    CudaDrafter *d = e->drafter;
    if (!d)
        return mimo_fail(err, "cuda: no drafter attached");
    const mimo_drafter_config *c = &d->cfg;
    const int V = e->cfg.vocab_size, H = c->hidden_size, p = d->length;
    if (B < 2 || B > MIMO_DFLASH_MAX_BLOCK)
        return mimo_fail(err, "drafter: block size %d out of range [2, %d]", B, MIMO_DFLASH_MAX_BLOCK);
    for (int i = 0; i < B; i++)
        if (block[i] < 0 || block[i] >= V)
            return mimo_fail(err, "drafter: block token %d out of range [0, %d)", block[i], V);
    if (p + B > d->max_ctx)
        return mimo_fail(err, "drafter: a block of %d at position %d exceeds max_context %d", B, p, d->max_ctx);
    cudaStream_t st = e->stream;
    const DraftPos where = d_pos ? DraftPos{0, d_pos} : DraftPos{p, nullptr};
    if (!d_block) {
        CUDA_CHECK(cudaMemcpyAsync(d->d_block, block, (size_t)B * sizeof(int32_t), cudaMemcpyHostToDevice, st));
        d_block = d->d_block;
    }
    if (cuda_embed(e->embed, d_block, B, d->x, d->ld_h, st, err))
        return -1;
    // Programmatic dependent launch between the pass's kernels (cuda_common.cuh), from the kernel after
    // the first one that follows the embedding; off again however the pass returns.
    PdlChainOff pdl_off;
    uint32_t mask_rows = 0;   // the block's MASK positions, where the drafter ships a mask embedding
    for (int i = 1; i < B; i++)
        if (block[i] == c->mask_token_id && d->mask_embedding)
            mask_rows |= 1u << i;
    if (mask_rows) {
        if (cuda_launch("draft_mask_rows_kernel", err, draft_mask_rows_kernel, dim3(B), dim3(256), 0, st, d->x, d->ld_h,
                        (const float *)d->mask_embedding, H, mask_rows))
            return -1;
        cuda_pdl_chain(true);
    }
    for (int l = 0; l < c->num_layers; l++) {
        CudaDrafterLayer &L = d->layers[l];
        // q, k, v of every block position first: every query sees every block key. One GEMV where the layer
        // has them in one matrix (its input norm folded in where the kernel takes it), else three.
        const bool together = L.qkv.data != nullptr;
        const int QD = c->n_heads * c->head_dim;
        const DraftBlockRows r = together ? DraftBlockRows{d->qkv_out, d->qkv_out + QD, d->qkv_out + QD + d->kd, d->ld_qkv, d->ld_qkv}
                                          : DraftBlockRows{d->q, d->bk, d->bv, d->ld_q, d->kd};
        if (together ? normed_gemv(d, L.input_norm, L.qkv, d->qkv_out, d->ld_qkv, B, st, err)
                     : cuda_rmsnorm(d->x, d->ld_h, L.input_norm, H, c->rms_eps, d->h, d->ld_h, B, st, err))
            return mimo_fail_prefix(err, "cuda drafter layer %d", l);
        cuda_pdl_chain(true);
        if ((!together && (gemv(d, L.q_proj, nullptr, d->h, d->ld_h, r.q, r.ldq, B, false, st, err) ||
                           gemv(d, L.k_proj, nullptr, d->h, d->ld_h, r.bk, r.ldb, B, false, st, err) ||
                           gemv(d, L.v_proj, nullptr, d->h, d->ld_h, r.bv, r.ldb, B, false, st, err))) ||
            head_norm_rope(d, r.q, r.ldq, c->n_heads, L.q_norm, where, B, st, err) ||
            head_norm_rope(d, r.bk, r.ldb, c->n_kv_heads, L.k_norm, where, B, st, err) ||
            scale_values(d, r.bv, r.ldb, B, st, err) || block_attention(d, l, B, r, where, st, err) ||
            gemv(d, L.o_proj, nullptr, d->attn, d->ld_q, d->x, d->ld_h, B, true, st, err) ||
            cuda_rmsnorm(d->x, d->ld_h, L.post_norm, H, c->rms_eps, d->h, d->ld_h, B, st, err) ||
            gemv(d, L.gate, &L.up, d->h, d->ld_h, d->mlp, d->ld_i, B, false, st, err) ||
            gemv(d, L.down, nullptr, d->mlp, d->ld_i, d->x, d->ld_h, B, true, st, err))
            return mimo_fail_prefix(err, "cuda drafter layer %d", l);
    }
    if (head) {
        // The target's lm head (on a shard: its slice of the vocabulary, argmax in global ids).
        if (normed_gemv(d, d->final_norm, e->lm_head, d->logits, d->ld_logits, B, st, err) ||
            cuda_argmax(d->logits, d->ld_logits, e->vocab_local, B, e->vocab_base, d->d_argmax, st, err))
            return mimo_fail_prefix(err, "cuda drafter head");
    }
    return 0;
}

int cuda_drafter_draft(CudaEngine *e, const int32_t *block, int B, mimo_forward_out *out, mimo_error *err)
{
    const bool head = out->logits || out->argmax;
    if (cuda_drafter_pass(e, block, nullptr, nullptr, B, head, err))
        return -1;
    CudaDrafter *d = e->drafter;
    const int V = e->cfg.vocab_size;
    cudaStream_t st = e->stream;
    if (out->logits)
        CUDA_CHECK(cudaMemcpy2DAsync(out->logits, (size_t)V * sizeof(float), d->logits, (size_t)d->ld_logits * sizeof(float),
                                     (size_t)V * sizeof(float), (size_t)B, cudaMemcpyDeviceToHost, st));
    if (out->argmax)
        CUDA_CHECK(cudaMemcpyAsync(out->argmax, d->d_argmax, (size_t)B * sizeof(int32_t), cudaMemcpyDeviceToHost, st));
    // out->hidden: the drafter has no target-layer outputs; the caller's buffer is left alone.
    CUDA_CHECK(cudaStreamSynchronize(st));
    return 0;
}
