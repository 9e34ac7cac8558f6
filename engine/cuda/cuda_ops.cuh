// The CUDA backend's operations. Each op's body is a __device__ function over one unit of work
// (a tile of output rows, one (position, expert) slot's tile, one (head, position, key split)),
// wrapped by a thin __global__ kernel; these host launchers enqueue one op on a stream. The engine
// builds a per-step instruction list of such ops (cuda_backend.cu) that eager mode launches and
// graph mode captures.
#ifndef MIMO_CUDA_OPS_CUH
#define MIMO_CUDA_OPS_CUH

#include "cuda_common.cuh"

// Workspace of the tensor-core GEMV's column split across blocks (plain matrices of few row tiles, e.g.
// the router at 8 tokens: its 24 tiles would use 24 SMs): partial sums and one arrival counter per row
// tile, zero between launches (the last block of a tile sums the partials in chunk order and resets its
// counter). An engine owns one (cuda_alloc_split_workspace); NULL partials: no split.
#define MIMO_CUDA_SPLITK_WS_FLOATS (1 << 20)
#define MIMO_CUDA_SPLITK_COUNTERS 4096
struct GemvSplitWorkspace {
    float *partials;     // MIMO_CUDA_SPLITK_WS_FLOATS
    unsigned *counters;  // MIMO_CUDA_SPLITK_COUNTERS
};

// The last block's sum of a tile's partials: element q of each of the kch chunks (chunk c at src + c *
// stride), added in chunk order (deterministic: the same sum, bit for bit, as a loop over c), the loads
// issued BATCH at a time before any add. A loop that adds each load as it comes compiled to an L2 round trip
// every 4 chunks, one element after another; the tail of a split launch is on the step's chain (the next
// kernel waits for it).
constexpr int SPLIT_BATCH = 8;
template <typename T> __device__ __forceinline__ void split_add(T &s, T v) { s += v; }
__device__ __forceinline__ void split_add(float4 &s, float4 v)
{
    s.x += v.x;
    s.y += v.y;
    s.z += v.z;
    s.w += v.w;
}
template <int BATCH = SPLIT_BATCH, typename T>
__device__ __forceinline__ T split_sum_in_order(const T *src, size_t stride, int kch)
{
    T s{};   // zeros
    for (int c0 = 0; c0 < kch; c0 += BATCH) {
        T v[BATCH];
#pragma unroll
        for (int j = 0; j < BATCH; j++)
            if (c0 + j < kch)
                v[j] = __ldcg(src + (size_t)(c0 + j) * stride);
#pragma unroll
        for (int j = 0; j < BATCH; j++)
            if (c0 + j < kch)
                split_add(s, v[j]);
    }
    return s;
}

// The attention layout of one layer on this device (possibly a shard of the heads).
struct AttnGeom {
    int n_heads, n_kv, dqk, dv, rope_dim;
    double theta;
    const double *inv_freq;   // device: theta^(-2i/rope_dim), i < rope_dim/2 (cuda_upload_rope_table)
    float value_scale;
    int window;        // 0 = full
    int ring;          // cache slots: max_context (full) or window + 16 (SWA ring)
};

// The RoPE rotation of pair `pair` at position pos: cos and sin of the angle in double, rounded to float
// (as the reference).
__device__ __forceinline__ void rope_cos_sin(const double *inv_freq, int pair, int pos, float *c, float *s)
{
    double sn, cs;
    sincos((double)pos * inv_freq[pair], &sn, &cs);
    *c = (float)cs;
    *s = (float)sn;
}

// Pair `pair` of a head (NeoX rotate-half: dims pair and pair + half) rotated at position pos into
// dst[pair], dst[pair + half]: the one arithmetic of the qkv_rope_store kernel and the qkv projection's
// epilogue (GemvQkvOut), which agree bit for bit.
__device__ __forceinline__ void rope_store_pair(const double *inv_freq, int pair, int half, int pos, float x1, float x2,
                                                float *dst)
{
    float c, s;
    rope_cos_sin(inv_freq, pair, pos, &c, &s);
    dst[pair] = x1 * c - x2 * s;
    dst[pair + half] = x2 * c + x1 * s;
}

// The cache slot of position pos (a sliding window's ring wraps).
__device__ __forceinline__ int attn_cache_slot(const AttnGeom &g, int pos) { return g.window > 0 ? pos % g.ring : pos; }

// The qkv projection's split, RoPE and KV-cache store (cuda_qkv_rope_store's work) done by the GEMV
// itself (GemvParams::qkv_out, cuda_gemv_takes_qkv_out): its rows in pair order, a rotated pair's two rows
// (plain rows base + i and base + i + rope_dim / 2 of a head, read through row_map where the storage order
// differs) side by side, so that one lane group (CUDA cores) or thread (tensor-core epilogue) holds both;
// the rotated q / k values, the other rows as they are and v scaled go where the kernel would write them:
// q [n][heads][dqk], the cache slots of positions *d_len + t.
struct GemvQkvOut {
    float *q;                  // NULL: none
    float *kcache, *vcache;
    const int32_t *row_map;    // plain row i at storage row row_map[i]; NULL: identity
    const int *d_len;
    AttnGeom g;
};

// GemvQkvOut: the storage row behind row L of the qkv projection in pair order, where each q / k head's
// rotated dimensions come as pairs, plain (d, d + rope_dim / 2) in rows (base + 2i, base + 2i + 1), so that
// one lane group holds both; every other row keeps its place.
__device__ __forceinline__ int qkv_pair_order_row(const GemvQkvOut &o, int L)
{
    const AttnGeom &g = o.g;
    int plain = L;
    if (L < (g.n_heads + g.n_kv) * g.dqk) {   // q heads then k heads, dqk rows each
        const int d = L % g.dqk;
        if (d < g.rope_dim)
            plain = L - d + d / 2 + (d & 1) * (g.rope_dim / 2);
    }
    return o.row_map ? __ldg(o.row_map + plain) : plain;
}

// Rows L and L + 1 of the pair order, values x1 and x2 of the step's position t (at pos), to their places
// in q and the cache slot of pos: rotated where they are a pair, v scaled (qkv_rope_store_position's
// arithmetic).
__device__ __forceinline__ void qkv_store_pair(const GemvQkvOut &o, int L, float x1, float x2, int t, int pos)
{
    const AttnGeom &g = o.g;
    const int qn = g.n_heads * g.dqk, kn = g.n_kv * g.dqk;
    const int slot = attn_cache_slot(g, pos);
    if (L >= qn + kn) {
        float *v = o.vcache + (size_t)slot * g.n_kv * g.dv + (L - qn - kn);
        v[0] = x1 * g.value_scale;
        v[1] = x2 * g.value_scale;
        return;
    }
    const bool is_q = L < qn;
    const int j = is_q ? L : L - qn, d = j % g.dqk;
    float *dst = (is_q ? o.q + (size_t)t * qn : o.kcache + (size_t)slot * kn) + (j - d);
    if (d < g.rope_dim) {
        rope_store_pair(g.inv_freq, d / 2, g.rope_dim / 2, pos, x1, x2, dst);
    } else {
        dst[d] = x1;
        dst[d + 1] = x2;
    }
}

// An RMSNorm deferred across a GEMV boundary (cuda_backend.cu, defer_norms): rather than a norm kernel
// between the GEMV that writes the residual stream x and the GEMVs that read rmsnorm(x) * w, the writer
// also stores h = x * w and, per block, the sum of its rows' x^2 (in double, as the norm kernel sums);
// the readers take h and multiply their dot products by 1 / sqrt(sum / dim + eps), summing the partials
// in a fixed order (deterministic; the factor only scales each output, so it is applied at the end).
// partials[t * partial_stride + b]: position t, block b of the writer.
#define MIMO_CUDA_NORM_PARTIALS_MAX 512   // blocks of a writer per position
struct GemvNormOut {
    float *h;                 // NULL: none
    int ldh;
    const float *w;           // the norm's weights, [rows]
    double *partials;
    int partial_stride;
};
struct GemvNormIn {
    const double *partials;   // NULL: none
    int count, partial_stride, dim;
    float eps;
    float *factor_out;        // NULL, or where block 0 stores the factor (one position) for the expert slots
                              // that read h after this GEMV (GemvParams::norm_factor)
};

// An RMSNorm folded into the GEMVs that read it, for several positions (cuda_backend.cu, fold_norm_x), whose
// writers do not take GemvNormOut: the reader's x is the residual stream itself, and its kernel forms
// rmsnorm(x) * w while it loads its input — x * w into its operands, the sums of x^2 of each position over
// its columns (summed in double, over the column chunks in order, as the split partial sums) into the factor
// 1 / sqrt(sum / dim + eps) that scales its dot products, dim = the matrix's columns (cuda_gemv_takes_norm_x
// says which kernels take it). One kernel boundary less on the chain than the norm kernel between the writer
// and the readers: measured on the Pro shard's verify steps, 7.80 -> 7.58 ms at 8 positions, 12.03 -> 11.87 at
// 16 (results/kernels/README.md, twenty-seventh session).
struct GemvNormX {
    const float *w;   // the norm's weights, [columns]; NULL: none
    float eps;
};

// The router's top-k done by the gate/up expert slots themselves (cuda_backend.cu, fuse_route): each block of
// slot t k + j runs the top-k of position t's logits on one warp after its wait (route_topk_warp, the route
// kernel's body: the same picks and weights bit for bit) and streams its j-th pick's weights; the blocks of
// slot t k with blockIdx.x 0 store the position's ids and weights (slot_expert, combine_w) for the down
// projection after it, which waits before it reads them. One kernel boundary less on the chain router ->
// top-k -> gate/up (cuda_gemv_takes_route says which kernel takes it).
struct GemvRouteIn {
    const float *logits;   // [positions][E]; NULL: none (the ids are read from slot_expert)
    const float *bias;     // [E] or NULL
    int E, k;              // k = GemvParams::x_slot_div
    int norm_topk, redux;  // redux: cuda_route_redux_knob's rounds
    float scaling;
    int32_t *ids;          // [positions][k]: GemvParams::slot_expert
    float *weights;        // [positions][k]
};

// y[t][r] (+)= sum_c W[r][c] x[t][c] for t < n; with glu: y = silu(W x) * (W2 x).
// Expert mode (slot_expert != NULL): unit slot s uses matrix slot_expert[s] of the expert set,
// input row s / x_slot_div, output row s, one position per slot (n = number of slots).
struct GemvParams {
    GpuMat w, w2;
    const float *x;
    int ldx;
    float *y;
    int ldy;
    int n;
    int accumulate;
    const int *slot_expert;
    int x_slot_div;
    // The ids in slot_expert were final when this kernel was launched: its predecessor in the stream is an
    // expert-slot kernel over the same ids, and such kernels let their dependents launch only after their
    // own wait (so the router's top-k had completed). The down projection with the MoE combine then reads
    // the ids and issues its first weight loads before its wait (in its op kernel; the persistent kernel
    // waits first). build_step sets it for the down projection after the gate/up slots; fuse_route clears it
    // where those slots pick the experts themselves (GemvRouteIn: the ids are written right before it).
    int ids_settled;
    // The input rows of these expert slots were final when this kernel was launched: its predecessor is the
    // route kernel, which lets its dependents launch only after its own wait (so the router and the kernels
    // before it, which wrote h, had completed). The MXFP4 gate/up slots then stage their input row in shared
    // memory before their wait (their op kernel; the persistent kernel waits first). build_step sets it for
    // the gate/up slots after the route op (fuse_route clears it where the route op goes).
    int x_settled;
    // Expert slots of one position reading a deferred norm's h (MoE layers: the gate/up slots after the
    // router): the norm's factor, stored by the router (GemvNormIn::factor_out), one load after the wait
    // that scales the dot products. NULL: none. (Summing the writer's partials in the slots themselves
    // measured slower than the norm kernel: results/kernels/README.md, eighth session.)
    const float *norm_factor;
    // Expert slots with the MoE combine (not GLU; n = positions x combine_k slots):
    // combine_x[t][row] += sum_j combine_w[t k + j] y[t k + j][row], in slot order. cuda_gemv fuses it
    // into the CUDA-core kernel where that runs the slots, else writes y and runs cuda_moe_combine.
    const float *combine_w;
    float *combine_x;
    int combine_ldx, combine_k;
    GemvSplitWorkspace split;   // the column split across blocks (tensor-core kernel); zeros: none
    // the deferred RMSNorm (above): norm_out on a writer of x (cuda_gemv_norm_partials says where it is
    // taken), norm_in on a reader of h (cuda_gemv_takes_norm_in); zeros: none
    GemvNormOut norm_out;
    GemvNormIn norm_in;
    GemvQkvOut qkv_out;   // the qkv projection's RoPE and cache store at one position; zeros: none
    GemvNormX norm_x;     // x is the residual: the kernel normalises it (above); zeros: none
    GemvRouteIn route;    // the slots pick their experts from the router's logits (above); zeros: none
};

// y (+)= W x over n positions (or n expert slots once slot_expert is set), every other field zero.
static inline GemvParams gemv_params(const GpuMat &w, const float *x, int ldx, float *y, int ldy, int n,
                                     bool accumulate = false)
{
    GemvParams p = {};
    p.w = w;
    p.x = x;
    p.ldx = ldx;
    p.y = y;
    p.ldy = ldy;
    p.n = n;
    p.accumulate = accumulate;
    p.x_slot_div = 1;
    return p;
}

int cuda_gemv(const GemvParams &p, bool glu, cudaStream_t st, mimo_error *err);
// Partial sums per position this GEMV writes when given norm_out (its blocks), 0 where its kernel does
// not take it: the CUDA-core kernel accumulating into x at one position, or expert down slots with the
// MoE combine fused (at most MIMO_CUDA_NORM_PARTIALS_MAX); 0 also with the defer_norm knob off.
int cuda_gemv_norm_partials(const GemvParams &p, bool glu);
// Whether this GEMV's kernel takes norm_in: the CUDA-core kernel over one position's plain matrix, not
// accumulating (expert slots do not: measured slower); false with the defer_norm knob off.
bool cuda_gemv_takes_norm_in(const GemvParams &p, bool glu);
// Whether this GEMV's kernel takes norm_x (GemvNormX): plain matrices of 2..16 positions on dense_bulk_kernel
// (where its column chunks allow it) or gemv_mma_kernel's plain build, and MXFP4 gate/up slots on
// expert_glu_bulk_kernel; false with the norm_x knob off.
bool cuda_gemv_takes_norm_x(const GemvParams &p, bool glu);
// Whether this GEMV's kernel takes route (GemvRouteIn): MXFP4 gate/up slots on expert_glu_bulk_kernel (route_fused
// 1 or 2) or on gemv1_expert_kernel with their input row in shared memory (2), up to ROUTE_REG_EXPERTS experts.
bool cuda_gemv_takes_route(const GemvParams &p, bool glu);
// Whether an expert-slot GEMV takes a published norm factor (GemvParams::norm_factor): one position on the
// CUDA-core kernel or, where it takes them there (`small`'s gate/up slots), expert_glu_bulk_kernel, with
// defer_norm and norm_factor on.
bool cuda_gemv_takes_norm_factor(const GemvParams &p, bool glu);
// Whether this GEMV's kernel takes GemvParams::qkv_out for geometry g: the qkv projection of one position
// on the CUDA-core kernel in a format whose lane groups hold an even number of rows (bf16, fp8, MXFP4), or
// of 2..16 positions on the tensor-core kernel (the same formats), each in its default build; even head and
// RoPE widths; the qkv_rope knob on.
bool cuda_gemv_takes_qkv_out(const GemvParams &p, const AttnGeom &g);
// The launch knobs (defaults, or the MIMO_CUDA_* experiment variables read on first use):
// gemv1 = 0: tensor cores at one position and for expert slots (not f32); else the CUDA-core kernel there;
// mma_pipe = 2 | 4 column blocks in flight per warp; mma_ksplit = 1..8 warps sharing a tile's columns;
// gemv1_blocks = 2 | 3: the CUDA-core kernel compiled for at least that many blocks per SM (0: 2);
// gemv1_warps_per_sm, gemv1_ksplit_max: the CUDA-core kernel splits a row's columns over up to
// ksplit_max warps (a power of two; 0: by shape) until the launch has that many warps of work per SM;
// gemv1_wide: MXFP4 expert slots in the wide row shape (more rows per lane group, one vector per row):
// -1 for gate/up slots of several positions, 0 never, 1 always; gemv1_narrow: the narrow one (half the
// rows per lane group, twice the warps): -1 for the slots of one position when the default shape gives
// fewer than ~12 warps per SM, 0 never, 1 wherever not wide; fused_combine (MIMO_CUDA_FUSED_COMBINE) = 0:
// the MoE combine as its own kernel after the expert down projection, 1 (default): fused into it where
// possible; mma_splitk (MIMO_CUDA_MMA_SPLITK) = 0: the tensor-core kernel never splits columns across
// blocks, 1 (default): where a matrix has too few row tiles for the GPU and a workspace is given
// (GemvParams::split); combine_blocks (MIMO_CUDA_COMBINE_BLOCKS) = 2 | 3: the build of the expert down
// projection with the MoE combine (0: 3 where its grid is more than one wave at 2 blocks per SM, else 2);
// gemv1_onepass (MIMO_CUDA_GEMV1_ONEPASS) = 1: narrow MXFP4 gate/up slots whose rows fit one pass of six
// vectors per lane take the one-pass shape, 0: they loop in the narrow one; slot_xsmem (MIMO_CUDA_SLOT_XSMEM)
// = 1: MXFP4 gate/up slots read their input row from a padded copy in shared memory, 0: from global memory;
// defer_norm (MIMO_CUDA_DEFER_NORM) = 1: the step defers its RMSNorms into the GEMVs around them where they
// take it (GemvNormOut / GemvNormIn), 0: a norm kernel each; early_ids (MIMO_CUDA_EARLY_IDS) = 2 (default):
// the down projection with the combine of one position takes GemvParams::ids_settled (its first weight loads
// before its wait), 1: at every position count, 0: never (measured on the Pro shard, H100: 1-token step
// 4.36 -> 4.30 ms; at 8 positions 10.22 -> 10.66 ms with it, hence one position only); norm_factor
// (MIMO_CUDA_NORM_FACTOR) = 1: with defer_norm, the post-attention norm of MoE layers is deferred too, the
// router publishing the factor to the gate/up slots (GemvParams::norm_factor), 0: it stays a kernel;
// qkv_rope (MIMO_CUDA_QKV_ROPE) = 1: the qkv projection of a step does the RoPE and the cache store
// itself where its kernel takes it (GemvQkvOut), 0: the qkv_rope_store kernel after it;
// slot_bulk (MIMO_CUDA_SLOT_BULK) = 1: MXFP4 gate/up slots of several positions with rows of at least 2048
// columns run expert_glu_bulk_kernel (tensor cores, weights streamed by bulk copies; cuda_expert_bulk.cu),
// 2: every shape and position count it takes (tests; slower at one position and on short rows), 0: never;
// slot_bulk_tiles (MIMO_CUDA_SLOT_BULK_TILES) = 0 (default): each slot's 16-row tiles split evenly over its
// share of one wave of resident blocks, N > 0: N tiles a block (1: the twentieth
// session's one tile a block); down_bulk (MIMO_CUDA_DOWN_BULK) = 1: the MXFP4 expert down projection with
// the MoE combine, several positions, on matrices of at least 2048 rows runs expert_down_bulk_kernel
// (cuda_expert_down_bulk.cu), 2: every shape and position count it takes (tests), 0: never; down_bulk_blocks
// (MIMO_CUDA_DOWN_BULK_BLOCKS) = 3 (default) | 2: that kernel's build for so many blocks an SM;
// gemv1_positions (MIMO_CUDA_GEMV1_POSITIONS) = 1: plain f32 matrices of several positions (which have no
// tensor-core path) run the CUDA-core kernel of one position with a block row per position (launch_gemv1_v),
// 2: plain matrices of every format with at most GEMV1_POSITIONS_MAX_ROWS rows too, 0: never (the
// several-position CUDA-core kernel, gemv_kernel, whose blocks take every position of a row tile);
// norm_x (MIMO_CUDA_NORM_X) = 1: the step folds the RMSNorms of several positions into the GEMVs that read
// them where every reader takes it (GemvNormX), 0: never; route_early (MIMO_CUDA_ROUTE_EARLY) = 1: the route
// kernel lets the gate/up slots' bulk kernel after it launch before its own wait (cuda_gemv_waits_first), 0:
// after it, as for every other successor; route_fused (MIMO_CUDA_ROUTE_FUSED) = 1: the op kernels' step lets the
// gate/up slots' bulk kernel (several positions) pick its experts from the router's logits (GemvRouteIn) instead
// of a route kernel before it, 2: the CUDA-core slots of one position too (slower there: their input row staged
// after the wait, the down projection's weight loads after its wait), 0: never; dense_bulk_waves
// (MIMO_CUDA_DENSE_BULK_WAVES) = 1: a matrix that no column split puts on dense_bulk_kernel in one wave (the lm
// head, the drafter's down projection) runs there in several waves where two blocks an SM fit and the last wave
// is mostly full (db_chunks), 0: it stays on gemv_mma_kernel; drafter_split (MIMO_CUDA_DRAFTER_SPLIT) = 1: the
// drafter's GEMVs get the engine's split workspace (GemvParams::split), so that its several-position matrices
// take dense_bulk_kernel as the target's do, 0: none (gemv_mma_kernel, no column split).
struct GemvKnobs {
    int gemv1 = -1, mma_pipe = 2, mma_ksplit = 8, gemv1_blocks = 0, gemv1_warps_per_sm = 8, gemv1_ksplit_max = 0,
        gemv1_wide = -1, gemv1_narrow = -1, fused_combine = 1, mma_splitk = 1, combine_blocks = 0, gemv1_onepass = 1,
        slot_xsmem = 1, defer_norm = 1, early_ids = 2, norm_factor = 1, qkv_rope = 1, gemv_staged = 1,
        slot_bulk = 1, slot_bulk_tiles = 0, down_bulk = 1, down_bulk_blocks = 3, dense_bulk = 1, dense_bulk_chunks = 0, dense_bulk_qkv = 0,
        gemv1_positions = 1, norm_x = 1, route_early = 1, route_fused = 1, dense_bulk_waves = 1, drafter_split = 1;
};
GemvKnobs &cuda_gemv_knobs();
// Launches of the staged GEMV so far (gemv1_staged_kernel; tests check that a shape took it).
long long cuda_gemv_staged_launches();
long long cuda_gemv1_positions_launches();   // launch_gemv1 over a plain matrix's several positions
// MXFP4 gate/up expert slots on expert_glu_bulk_kernel (cuda_expert_bulk.cu): whether p goes there (the
// knob, the shape), its launch, and its one-time setup (cuda_gemv_prepare calls it).
bool cuda_expert_glu_bulk_takes(const GemvParams &p, bool glu);
int cuda_expert_glu_bulk(const GemvParams &p, cudaStream_t st, mimo_error *err);
int cuda_expert_glu_bulk_prepare(mimo_error *err);
long long cuda_expert_glu_bulk_launches();   // so far in this process (tests check a shape took it)
// The MXFP4 expert down projection with the MoE combine on expert_down_bulk_kernel (cuda_expert_down_bulk.cu):
// the same four.
bool cuda_expert_down_bulk_takes(const GemvParams &p, bool glu);
int cuda_expert_down_bulk(const GemvParams &p, cudaStream_t st, mimo_error *err);
int cuda_expert_down_bulk_prepare(mimo_error *err);
long long cuda_expert_down_bulk_launches();
// The dense (bf16 / fp8) GEMVs of several positions on dense_bulk_kernel (cuda_dense_bulk.cu): the same four.
bool cuda_dense_bulk_takes(const GemvParams &p, bool glu);
int cuda_dense_bulk(const GemvParams &p, cudaStream_t st, mimo_error *err);
int cuda_dense_bulk_prepare(mimo_error *err);
long long cuda_dense_bulk_launches();
// Whether dense_bulk_kernel, where it runs a qkv projection, also takes its RoPE and cache store (the knob,
// the row map, the geometry).
bool cuda_dense_bulk_takes_qkv(const int32_t *row_map, const AttnGeom &g);
// Once per process before the first gemv (and before any graph capture).
int cuda_gemv_prepare(mimo_error *err);

// out[t] = rmsnorm(x[t]) * w, t < n (out may equal x).
int cuda_rmsnorm(const float *x, int ldx, const float *w, int dim, float eps, float *out, int ldo, int n,
                 cudaStream_t st, mimo_error *err);

// out[t][c] = embed[tokens[t]][c].
int cuda_embed(const GpuMat &embed, const int32_t *tokens, int n, float *out, int ldo, cudaStream_t st, mimo_error *err);

// Splits the fused qkv projection (storage order via row_map: plain row i at storage row
// row_map[i], NULL = identity) into q [n][heads][dqk] with RoPE, and writes RoPE'd k and scaled v
// into the cache slots of positions *d_len + t.
int cuda_qkv_rope_store(const float *qkv, int ldqkv, const int32_t *row_map, const AttnGeom &g, const int *d_len,
                        int n, float *q, float *kcache, float *vcache, cudaStream_t st, mimo_error *err);

// Attention of n query positions (*d_len + t) over the cache: partials over key splits of
// split_keys keys, then a merge with the sink. out [n][ldo >= heads*dv].
int cuda_attention(const float *q, const float *kcache, const float *vcache, const float *sink, const AttnGeom &g,
                   const int *d_len, int n, int max_context, float *partial, float *out, int ldo, cudaStream_t st,
                   mimo_error *err);
int cuda_attention_splits(const AttnGeom &g, int max_context, int n);      // key splits of a launch of n positions
int cuda_attention_split_keys(const AttnGeom &g, int max_context, int n);  // keys per split
// The first keys per split the rule tries (doubled while a span needs more than 128 splits), or 0: the rule's
// own (MIMO_CUDA_ATTN_SPLIT_KEYS=16..256, a power of two, for A/B runs; tests set it). The partials are sized
// for the finest splits, so any start fits them.
int &cuda_attention_split_keys_knob();
// 1 (default): the merge of a head with at most 16 active splits loads them all at once into registers
// (the same result bit for bit); 0: loops over them (MIMO_CUDA_MERGE_REGISTERS=0, for A/B runs). Read from
// the environment on first use; tests set it.
int &cuda_attention_merge_registers_knob();
// Splits of several positions: a block per (up to this many query heads of a kv head, position, split) that
// stages the split's rows once for all its heads (an even number, 2..16), or 0: a block per query head
// (MIMO_CUDA_ATTN_GROUP, for A/B runs; tests set it). Splits past 32 keys go through the staging in tiles
// of 32; rows wider than the grouped kernels take (qk + v > 320, either > 256) always run per head.
int &cuda_attention_group_knob();
// The partials any launch of 1..n positions needs.
size_t cuda_attention_partial_floats(const AttnGeom &g, int max_context, int n);

// Router: from logits [n][E] picks top-k per position by sigmoid + bias; ids [n*k], weights [n*k].
// trigger_first: the kernel after it may launch before the route's wait (route_unit), only where that kernel
// waits before it reads anything (cuda_gemv_waits_first).
int cuda_route(const float *logits, const float *bias, int E, int k, bool norm_topk, float scaling, int n,
               int32_t *ids, float *weights, cudaStream_t st, mimo_error *err, bool trigger_first = false);
// Whether this GEMV's kernel waits on its predecessor before it reads any input (the gate/up slots' bulk
// kernel), so that the kernel before it may trigger its launch early; with the route_early knob on.
bool cuda_gemv_waits_first(const GemvParams &p, bool glu);
// 1 (default): up to 512 experts, each round of the top-k compares integer keys with two redux.sync
// (route_pick_redux); 0: five shuffle pairs of (score, index) (MIMO_CUDA_ROUTE_REDUX=0, for A/B runs). The
// picks are the same. Read from the environment on first use; tests set it.
int &cuda_route_redux_knob();

// x[t][c] += sum_j w[t*k+j] * y[(t*k+j)][c].
int cuda_moe_combine(const float *y, int ldy, const float *w, int k, int dim, int n, float *x, int ldx,
                     cudaStream_t st, mimo_error *err);

// argmax over v columns of each of n rows (lowest index on ties), plus base.
int cuda_argmax(const float *logits, int ldl, int v, int n, int base, int32_t *out, cudaStream_t st, mimo_error *err);

// A device-to-device copy as a kernel (the persistent kernel's copies; steps otherwise use cudaMemcpyAsync).
int cuda_copy_device(void *dst, const void *src, size_t bytes, cudaStream_t st, mimo_error *err);

// ---- persistent execution (cuda_persistent.cu records a step; cuda_kernels.cu runs it) ----
// One instruction of the persistent kernel: a recorded launch.
struct PersistOp {
    int kind;             // entry of the persistent kernel's table (cuda_persist_kind)
    unsigned units;       // blocks of the op's own launch
    uint3 grid;           // its grid
    unsigned wait_units;  // units of the previous instruction (0 for the first)
    alignas(16) unsigned char args[PERSIST_ARG_BYTES];   // the launch's arguments (KernelArgs::Pack)
};
// A recorded step on the device. Unit j of instruction i runs on block (first_i + j) % blocks, first_i where
// instruction i - 1's units ended; each block has its list of (instruction, first unit) pairs in instruction
// order, sched[sched_begin[b] .. sched_begin[b + 1]).
struct PersistStep {
    const PersistOp *ops;
    const uint2 *sched;
    const unsigned *sched_begin;
    unsigned *done;        // finished units of instruction i at done[i * PERSIST_COUNTER_STRIDE], zero before
    unsigned *status;      // zero before the launch; instruction + 1 of a wait that timed out
    long long *stamps;     // NULL, or [2 x instructions + 1]: when each one's last unit finished, then when
                           // its first block passed its wait, then when the first block started (globaltimer,
                           // ns; profiling and phase stamps)
    int n_ops;             // instructions
};
// The table entry that runs this kernel's launches, -1 where the persistent kernel has none.
int cuda_persist_kind(const void *kernel);
// Blocks of the persistent kernel per SM with dyn_smem bytes of dynamic shared memory (0: it does not fit).
int cuda_persistent_occupancy(size_t dyn_smem, int *ctas_per_sm, mimo_error *err);
// Runs a recorded step on ctas blocks (all resident: at most the occupancy times the SMs).
int cuda_persistent_launch(const PersistStep &step, int ctas, size_t dyn_smem, cudaStream_t st, mimo_error *err);

#endif
