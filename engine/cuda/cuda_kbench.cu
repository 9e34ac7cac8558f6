// `mimo-bench kernels` on the GPU: calibration, per-kernel bandwidth at one rank's shapes, whole steps.
#include "cuda_drafter.cuh"
#include "cuda_engine.cuh"
#include "cuda_kbench.h"

#include <algorithm>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <vector>

extern "C" {
#include "mimo/dflash.h"
#include "mimo/hash.h"
}

namespace {

__device__ __forceinline__ uint64_t kb_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Random but valid contents for a weight buffer of `fmt` (finite values, no NaN codes).
__global__ void kb_fill_kernel(uint8_t *p, size_t bytes, int fmt, uint64_t seed)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < bytes / 4; i += (size_t)gridDim.x * blockDim.x) {
        uint64_t h = kb_mix64(seed ^ kb_mix64(i));
        uint32_t w = (uint32_t)h;
        if (fmt == MIMO_WFMT_F32) {
            w = __float_as_uint(((float)(h >> 40) / 16777216.0f - 0.5f) * 0.1f);
        } else if (fmt == MIMO_WFMT_BF16) {
            w = (w & 0x80FF80FFu) | 0x3C003C00u;   // bf16 pairs with exponents near 2^-7
        } else if (fmt == MIMO_WFMT_FP8) {
            w &= 0xF7F7F7F7u;                        // never S.1111.111 (NaN)
        }
        ((uint32_t *)p)[i] = w;
    }
}

__global__ void kb_fill_f32(float *p, size_t n, float v)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = v;
}

// Streaming read: 16-byte loads, 4 in flight per thread, one word written per block.
__global__ void __launch_bounds__(512) kb_stream_read(const uint4 *p, size_t n16, uint32_t *out)
{
    uint32_t acc = 0;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n16; i += 4 * stride) {
        uint4 a = __ldcs(p + i), b = __ldcs(p + i + stride), c = __ldcs(p + i + 2 * stride), d = __ldcs(p + i + 3 * stride);
        acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
    }
    for (; i < n16; i += stride) {
        uint4 a = __ldcs(p + i);
        acc ^= a.x ^ a.y ^ a.z ^ a.w;
    }
    acc = __reduce_xor_sync(0xFFFFFFFFu, acc);
    if (threadIdx.x % 32 == 0)
        atomicXor(out + blockIdx.x, acc);
}

// The kernel-boundary probe (bench_boundaries): waits for the kernel before it as `mode` says (0:
// griddepcontrol.wait; 1: thread 0 polls the predecessor's count of finished blocks, relaxed, then acquires;
// 2: nothing, launched in stream order), stamps when each block is past the wait, stays busy for busy_ns,
// stamps its end, and in mode 1 counts itself finished (fence, then atomic add).
__global__ void kb_boundary_probe(long long *passed, long long *ended, const unsigned *wait_count, unsigned wait_need,
                                  unsigned *done_count, long long busy_ns, int mode)
{
    pdl_trigger();
    if (mode == 0) {
        pdl_wait();
    } else if (mode == 1 && wait_count) {
        if (threadIdx.x == 0) {
            while (ld_relaxed_gpu(wait_count) < wait_need) {
            }
            (void)ld_acquire_gpu(wait_count);
        }
        __syncthreads();
    }
    if (threadIdx.x == 0)
        passed[blockIdx.x] = globaltimer_ns();
    const long long t0 = globaltimer_ns();
    while (globaltimer_ns() - t0 < busy_ns) {
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        ended[blockIdx.x] = globaltimer_ns();
        if (mode == 1) {
            __threadfence();
            atomicAdd(done_count, 1u);
        }
    }
}

#define KBENCH_BATCH 16   // launches per timed sample of a kernel (time_us)

struct Bench {
    CudaEngine e;
    mimo_error *err;
    cudaEvent_t ev0, ev1;
    int reps;
    Bench() : e() {}
    ~Bench() { cuda_engine_free_scratch(&e, true); }
    void release() { cuda_engine_free_scratch(&e, false); }
};

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.empty() ? NAN : v[v.size() / 2];
}

// Times fn (which enqueues on st): each of `reps` timed samples is `batch` back-to-back calls
// (fn(i) rotates its buffers by i) between two events, divided by batch, after a warm-up; the
// median sample in microseconds. Batching keeps the launch queue full, so a kernel is charged the
// gap it has inside a step (a stream or graph), not the event and launch latency of a lone launch.
// With chain, every call of a batch after its first carries the programmatic-dependent-launch attribute, as
// consecutive kernels of a step do (cuda_run_program): its blocks may start, and issue the loads before
// their griddepcontrol.wait, while the previous call finishes.
template <typename F> int time_us(Bench &b, F fn, double *us, int batch = 1, bool chain = false)
{
    mimo_error *err = b.err;
    std::vector<double> t;
    // call i of a batch (its j-th): chained to the one before unless it is the batch's first
    auto call_fn = [&](int i, int j) {
        cuda_pdl_chain(chain && j > 0);
        const int rc = fn(i);
        cuda_pdl_chain(false);
        return rc;
    };
    for (int i = 0; i < 3 * batch; i++)
        if (call_fn(i, i % batch))
            return -1;
    CUDA_CHECK(cudaStreamSynchronize(b.e.stream));
    int call = 0;
    for (int i = 0; i < b.reps; i++) {
        CUDA_CHECK(cudaEventRecord(b.ev0, b.e.stream));
        for (int j = 0; j < batch; j++)
            if (call_fn(call++, j))
                return -1;
        CUDA_CHECK(cudaEventRecord(b.ev1, b.e.stream));
        CUDA_CHECK(cudaEventSynchronize(b.ev1));
        float ms;
        CUDA_CHECK(cudaEventElapsedTime(&ms, b.ev0, b.ev1));
        t.push_back(ms * 1000.0 / batch);
    }
    *us = median(t);
    return 0;
}

int fill_matrix(Bench &b, GpuMat &m, int count, uint64_t seed)
{
    mimo_error *err = b.err;
    size_t bytes = (size_t)m.expert_stride_data * count;
    kb_fill_kernel<<<1024, 256, 0, b.e.stream>>>((uint8_t *)m.data, bytes, m.fmt, seed);
    CUDA_CHECK_LAUNCH("kb_fill_kernel");
    if (m.fmt == MIMO_WFMT_FP8) {
        kb_fill_f32<<<256, 256, 0, b.e.stream>>>((float *)m.scales, (size_t)m.expert_stride_scales * count, 1.0f / 64.0f);
        CUDA_CHECK_LAUNCH("kb_fill_f32");
    } else if (m.fmt == MIMO_WFMT_MXFP4) {
        CUDA_CHECK(cudaMemsetAsync((void *)m.scales, 120, (size_t)m.expert_stride_scales * count, b.e.stream));
    }
    return 0;
}

uint64_t mat_bytes(const GpuMat &m)
{
    return (uint64_t)m.expert_stride_data + (uint64_t)m.expert_stride_scales * (m.fmt == MIMO_WFMT_FP8 ? 4 : m.fmt == MIMO_WFMT_MXFP4 ? 1 : 0);
}

// The new row, or NULL when the table is full (the row is dropped).
mimo_kbench_row *add_row(mimo_kbench_result *r, const char *name, int fmt, int rows, int cols, int tokens,
                         const char *exec, int layers, double us, double bytes, double ratio_base, bool is_step)
{
    if (r->n_rows >= MIMO_KBENCH_MAX_ROWS)
        return nullptr;
    mimo_kbench_row *x = &r->rows[r->n_rows++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    snprintf(x->format, sizeof x->format, "%s", fmt >= 0 ? mimo_weight_format_name((mimo_weight_format)fmt) : "mixed");
    snprintf(x->exec, sizeof x->exec, "%s", exec);
    x->rows = rows;
    x->cols = cols;
    x->tokens = tokens;
    x->layers = layers;
    x->median_us = us;
    x->bytes = bytes;
    x->gbps = bytes / (us * 1e-6) / 1e9;
    // kernels: share of the calibration bandwidth; steps: roofline time / measured time
    x->ratio = is_step ? (bytes / (ratio_base * 1e9) * 1e6) / us : x->gbps / ratio_base;
    return x;
}

// One weight-streaming kernel at one position count: a plain matrix (or gate+up pair) rotated
// through enough copies to exceed L2, or an expert set with random experts per slot; combine: the expert
// down projection with the MoE combine into the positions' residual rows (GemvParams::combine_x), the step's
// form of it.
// split_ws: the engine's split workspace (GemvParams::split), as the target's step gives its GEMVs; the drafter's
// get it where GemvKnobs::drafter_split says.
int bench_gemv(Bench &b, mimo_kbench_result *r, const char *name, int fmt, int rows, int cols, bool glu, int n_experts,
               int k, int tokens, bool expert_down, double l2_bytes, bool combine = false, bool split_ws = true)
{
    mimo_error *err = b.err;
    GpuMat w, w2;
    const bool expert = n_experts > 0;
    int copies = 1;
    const uint64_t one = cuda_matrix_device_bytes(fmt, rows, cols);
    if (!expert)
        copies = (int)std::min<double>(64.0, std::max(2.0, ceil(4.0 * l2_bytes / (double)(one * (glu ? 2 : 1)))));
    const int count = expert ? n_experts : copies;
    if (cuda_alloc_matrix_set(&b.e, fmt, rows, cols, 0, count, &w, err) || fill_matrix(b, w, count, 11))
        return -1;
    if (glu && (cuda_alloc_matrix_set(&b.e, fmt, rows, cols, 0, count, &w2, err) || fill_matrix(b, w2, count, 12)))
        return -1;
    const int slots = expert ? tokens * k : tokens;
    void *px, *py, *pid;
    const int ld = gpu_pad_cols(cols);
    if (cuda_engine_alloc(&b.e, &px, (size_t)16 * 8 * ld * 4, err) || cuda_engine_alloc(&b.e, &py, (size_t)16 * 8 * rows * 4, err))
        return -1;
    kb_fill_f32<<<64, 256, 0, b.e.stream>>>((float *)px, (size_t)16 * 8 * ld, 0.5f);
    CUDA_CHECK_LAUNCH("kb_fill_f32");
    // 16 rotating sets of expert ids; bytes count the distinct experts of each set.
    const int nsets = 16;
    std::vector<int32_t> ids((size_t)nsets * slots);
    double distinct = 0;
    uint64_t rng = 0x1234567ull;
    for (int s = 0; s < nsets && expert; s++) {
        std::vector<int> seen(n_experts, 0);
        for (int t = 0; t < tokens; t++)
            for (int j = 0; j < k; j++) {
                int e;
                do {   // k distinct experts per token, like the router
                    rng = mimo_mix64(rng);
                    e = (int)(rng % (uint64_t)n_experts);
                    bool dup = false;
                    for (int q = 0; q < j; q++)
                        dup |= ids[(size_t)s * slots + t * k + q] == e;
                    if (!dup)
                        break;
                } while (true);
                ids[(size_t)s * slots + t * k + j] = e;
                if (!seen[e]++)
                    distinct += 1.0 / nsets;
            }
    }
    if (cuda_engine_alloc(&b.e, &pid, ids.size() * 4 + 4, err))
        return -1;
    CUDA_CHECK(cudaMemcpyAsync(pid, ids.data(), ids.size() * 4, cudaMemcpyHostToDevice, b.e.stream));
    void *pcx = nullptr, *pcw = nullptr;   // the combine's residual rows and slot weights
    if (combine) {
        if (cuda_engine_alloc(&b.e, &pcx, (size_t)tokens * rows * 4, err) ||
            cuda_engine_alloc(&b.e, &pcw, (size_t)slots * 4, err))
            return -1;
        kb_fill_f32<<<64, 256, 0, b.e.stream>>>((float *)pcx, (size_t)tokens * rows, 0.5f);
        CUDA_CHECK_LAUNCH("kb_fill_f32");
        kb_fill_f32<<<1, 256, 0, b.e.stream>>>((float *)pcw, (size_t)slots, 0.125f);
        CUDA_CHECK_LAUNCH("kb_fill_f32");
    }
    GemvSplitWorkspace split;   // as the engine's step gives its GEMVs
    if (cuda_alloc_split_workspace(&b.e, &split, err))
        return -1;
    // MIMO_KBENCH_L2_HOT=1 (a diagnostic, named in the JSON): plain matrices do not rotate, so that one
    // that fits stays in L2 (the kernel's speed with its weights in L2)
    const char *hot_env = getenv("MIMO_KBENCH_L2_HOT");
    const bool l2_hot = hot_env && hot_env[0] == '1';
    auto launch = [&](int i) -> int {
        // plain matrices rotate through their copies (larger than L2 together); expert slots through
        // the id sets
        const int c = l2_hot ? 0 : i % copies;
        GemvParams p = gemv_params(expert ? w : cuda_expert_at(w, c), (const float *)px, ld, (float *)py, rows, slots);
        if (glu)
            p.w2 = expert ? w2 : cuda_expert_at(w2, c);
        if (expert)
            p.slot_expert = (const int *)pid + (size_t)(i % nsets) * slots;
        p.x_slot_div = expert_down ? 1 : k;
        if (split_ws)
            p.split = split;
        if (combine) {
            p.combine_x = (float *)pcx;
            p.combine_w = (const float *)pcw;
            p.combine_ldx = rows;
            p.combine_k = k;
        }
        return cuda_gemv(p, glu, b.e.stream, err);
    };
    double us = 0.0, us_chained = 0.0;
    if (time_us(b, launch, &us, KBENCH_BATCH) || time_us(b, launch, &us_chained, KBENCH_BATCH, true))
        return -1;
    double bytes = (double)(one * (glu ? 2 : 1)) * (expert ? distinct : 1.0);
    if (mimo_kbench_row *x = add_row(r, name, fmt, rows, cols, tokens, "", 0, us, bytes, r->calibration_gbps, false)) {
        x->chained_us = us_chained;
        x->chained_ratio = bytes / (us_chained * 1e-6) / 1e9 / r->calibration_gbps;
    }
    b.release();
    return 0;
}

// The drafter pass's GEMVs at n positions: q, k and v in one matrix (the pass's form of them for a bf16 drafter,
// cuda_drafter.cu; here without its folded input norm), o, the SwiGLU gate/up pair and the down projection (its
// head is the target's lm head, timed above).
int bench_drafter_gemvs(Bench &b, mimo_kbench_result *r, const mimo_drafter_config &d, int n, double l2)
{
    const int H = d.hidden_size, QD = d.n_heads * d.head_dim, KD = d.n_kv_heads * d.head_dim, I = d.intermediate_size;
    const bool split = cuda_gemv_knobs().drafter_split != 0;
    const int bf16 = MIMO_WFMT_BF16;
    return bench_gemv(b, r, "drafter_qkv_proj", bf16, QD + 2 * KD, H, false, 0, 0, n, false, l2, false, split) ||
           bench_gemv(b, r, "drafter_o_proj", bf16, H, QD, false, 0, 0, n, false, l2, false, split) ||
           bench_gemv(b, r, "drafter_gate_up", bf16, I, H, true, 0, 0, n, false, l2, false, split) ||
           bench_gemv(b, r, "drafter_down", bf16, H, I, false, 0, 0, n, false, l2, false, split);
}

int calibrate(Bench &b, mimo_kbench_result *r)
{
    mimo_error *err = b.err;
    const size_t bytes = (size_t)1 << 30;
    void *p, *q, *out;
    if (cuda_engine_alloc(&b.e, &p, bytes, err) || cuda_engine_alloc(&b.e, &q, bytes, err) ||
        cuda_engine_alloc(&b.e, &out, (size_t)r->sm_count * 8 * 4, err))
        return -1;
    CUDA_CHECK(cudaMemset(p, 0x5A, bytes));
    CUDA_CHECK(cudaMemset(out, 0, (size_t)r->sm_count * 8 * 4));
    double us = 0.0;
    auto rd = [&](int) -> int {
        kb_stream_read<<<r->sm_count * 4, 512, 0, b.e.stream>>>((const uint4 *)p, bytes / 16, (uint32_t *)out);
        CUDA_CHECK_LAUNCH("kb_stream_read");
        return 0;
    };
    if (time_us(b, rd, &us))
        return -1;
    r->calibration_gbps = bytes / (us * 1e-6) / 1e9;
    auto cp = [&](int) -> int {
        CUDA_CHECK(cudaMemcpyAsync(q, p, bytes, cudaMemcpyDeviceToDevice, b.e.stream));
        return 0;
    };
    if (time_us(b, cp, &us))
        return -1;
    r->copy_gbps = 2.0 * bytes / (us * 1e-6) / 1e9;
    b.release();
    return 0;
}

// A graph's executable, destroyed on every way out of the scope.
struct GraphExec {
    cudaGraphExec_t exec = nullptr;
    ~GraphExec()
    {
        if (exec)
            cudaGraphExecDestroy(exec);
    }
};

// How long the step of one kernel to the next takes by itself (mimo_kbench_result::boundary): per mode, a chain
// of kernels with one block per SM captured into a graph (launched through cuda_launch, chained as a step's
// kernels are: MIMO_CUDA_PDL=0 takes the attribute off here too), replayed once to warm up and once timed; the
// releases are read from the blocks' %globaltimer stamps (the chain's first ten kernels skipped).
int bench_boundaries(Bench &b, mimo_kbench_result *r)
{
    mimo_error *err = b.err;
    const int K = MIMO_KBENCH_BOUNDARY_KERNELS, blocks = r->sm_count;
    const long long busy_ns = (long long)(MIMO_KBENCH_BOUNDARY_BUSY_US * 1000.0);
    long long *passed = nullptr, *ended = nullptr;
    unsigned *counts = nullptr;
    if (cuda_engine_alloc(&b.e, (void **)&passed, sizeof(long long) * blocks * K, err) ||
        cuda_engine_alloc(&b.e, (void **)&ended, sizeof(long long) * blocks * K, err) ||
        cuda_engine_alloc(&b.e, (void **)&counts, sizeof(unsigned) * K, err))
        return -1;
    static const char *const names[MIMO_KBENCH_BOUNDARY_MODES] = {"pdl_wait", "counter_poll", "stream_order"};
    std::vector<long long> hp((size_t)blocks * K), he((size_t)blocks * K);
    for (int mode = 0; mode < MIMO_KBENCH_BOUNDARY_MODES; mode++) {
        CUDA_CHECK(cudaStreamBeginCapture(b.e.stream, cudaStreamCaptureModeThreadLocal));
        int rc = cudaMemsetAsync(counts, 0, sizeof(unsigned) * K, b.e.stream) == cudaSuccess
                     ? 0
                     : mimo_fail(err, "kernels: the kernel-boundary probe's counters");
        for (int k = 0; k < K && !rc; k++) {
            cuda_pdl_chain(mode != 2 && k > 0);   // the first follows the memset in stream order
            rc = cuda_launch("kb_boundary_probe", err, kb_boundary_probe, dim3(blocks), dim3(256), 0, b.e.stream,
                             passed + (size_t)k * blocks, ended + (size_t)k * blocks,
                             (const unsigned *)(k > 0 ? counts + k - 1 : nullptr), (unsigned)blocks, counts + k,
                             busy_ns, mode);
        }
        cuda_pdl_chain(false);
        cudaGraph_t graph = nullptr;
        const cudaError_t end_rc = cudaStreamEndCapture(b.e.stream, &graph);
        GraphExec g;
        cudaError_t graph_rc = end_rc;
        if (!rc && end_rc == cudaSuccess)
            graph_rc = cudaGraphInstantiate(&g.exec, graph, 0);
        if (graph)
            cudaGraphDestroy(graph);
        if (rc)
            return -1;
        if (graph_rc != cudaSuccess)
            return mimo_fail(err, "kernels: the kernel-boundary probe's graph (%s): %s", names[mode],
                             cudaGetErrorString(graph_rc));
        CUDA_CHECK(cudaGraphLaunch(g.exec, b.e.stream));   // warm-up
        CUDA_CHECK(cudaEventRecord(b.ev0, b.e.stream));
        CUDA_CHECK(cudaGraphLaunch(g.exec, b.e.stream));
        CUDA_CHECK(cudaEventRecord(b.ev1, b.e.stream));
        CUDA_CHECK(cudaEventSynchronize(b.ev1));
        float ms = 0.0f;
        CUDA_CHECK(cudaEventElapsedTime(&ms, b.ev0, b.ev1));
        CUDA_CHECK(cudaMemcpy(hp.data(), passed, sizeof(long long) * hp.size(), cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(he.data(), ended, sizeof(long long) * he.size(), cudaMemcpyDeviceToHost));
        std::vector<double> first, last;
        for (int k = 10; k < K; k++) {
            const long long *p = &hp[(size_t)k * blocks], *e = &he[(size_t)(k - 1) * blocks];
            const long long prev_end = *std::max_element(e, e + blocks);
            first.push_back((*std::min_element(p, p + blocks) - prev_end) / 1000.0);
            last.push_back((*std::max_element(p, p + blocks) - prev_end) / 1000.0);
        }
        mimo_kbench_boundary *x = &r->boundary[mode];
        x->name = names[mode];
        x->release_us = median(first);
        x->last_block_us = median(last);
        x->per_kernel_us = ms * 1000.0 / K;
    }
    b.release();
    return 0;
}

// Weight bytes one step over n positions touches on this rank (distinct experts expected under
// uniform routing: E (1 - (1 - k/E)^n)), plus the KV cache read at context length ctx.
double step_bytes(const CudaEngine *e, int n, int ctx)
{
    const mimo_config *c = &e->cfg;
    double b = mat_bytes(e->lm_head) + (double)n * e->embed.ld * 2;
    for (int l = 0; l < e->n_layers; l++) {
        const CudaLayer &L = e->layers[l];
        b += mat_bytes(L.qkv) + mat_bytes(L.o_proj) + 2.0 * c->hidden_size * 4;
        int keys = L.geom.window > 0 ? std::min(ctx, L.geom.window) : ctx;
        b += (double)keys * L.geom.n_kv * (L.geom.dqk + L.geom.dv) * 4;
        if (!L.is_moe) {
            b += mat_bytes(L.gate) + mat_bytes(L.up) + mat_bytes(L.down);
        } else {
            const double E = c->n_routed_experts, k = c->experts_per_tok;
            double distinct = E * (1.0 - pow(1.0 - k / E, n));
            b += mat_bytes(L.router) + distinct * (mat_bytes(L.egate) + mat_bytes(L.eup) + mat_bytes(L.edown));
            if (L.sgate.rows)
                b += c->n_shared_experts * (mat_bytes(L.sgate) + mat_bytes(L.sup) + mat_bytes(L.sdown));
        }
    }
    return b;
}

// The engine of a shard replay (eager; context for 1024 positions, or for ctx and a step of the most positions).
mimo_engine_options replay_options(int rank, int count, int ctx = 0)
{
    mimo_engine_options o;
    mimo_engine_options_default(&o);
    o.backend = MIMO_BACKEND_CUDA;
    o.max_context = std::max(1024, ctx + MIMO_MAX_DECODE_POSITIONS);
    o.shard_rank = rank;
    o.shard_count = count;
    return o;
}

int bench_steps(Bench &b, mimo_kbench_result *r, const char *preset, int rank, int count, int layers, const int *tokens,
                int n_tokens, int ctx, bool note_layers)
{
    mimo_error *err = b.err;
    mimo_config cfg;
    if (mimo_config_preset(preset, &cfg, err))
        return -1;
    mimo_engine_options o = replay_options(rank, count, ctx);
    // As many layers as fit (with 4 GiB to spare) unless asked.
    int K = layers > 0 ? std::min(layers, cfg.num_layers) : cfg.num_layers;
    size_t free_b, total_b;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    while (K > 1 && cuda_weight_bytes(&cfg, &o, K) + (4ull << 30) > free_b)
        K--;
    o.layers_limit = K < cfg.num_layers ? K : 0;
    if (note_layers && K < cfg.num_layers)
        snprintf(r->note, sizeof r->note, "%s shard %d/%d: whole steps replay the first %d of %d layers (device memory)",
                 preset, rank, count, K, cfg.num_layers);
    const mimo_exec_mode execs[] = {MIMO_EXEC_EAGER, MIMO_EXEC_GRAPH, MIMO_EXEC_PERSISTENT};
    for (int x = 0; x < 3; x++) {
        o.exec = execs[x];
        const mimo_backend_ops *ops;
        void *impl;
        if (mimo_cuda_backend_create_synthetic(&cfg, 42, &o, &ops, &impl, err))
            return -1;
        CudaEngine *e = (CudaEngine *)impl;
        std::vector<int32_t> toks(ctx);
        for (int i = 0; i < ctx; i++)
            toks[i] = (int32_t)((i * 7919u + 1u) % (unsigned)cfg.vocab_size);
        std::vector<int32_t> arg(ctx);
        mimo_forward_out out = {NULL, arg.data(), NULL};
        int rc = ops->forward(impl, toks.data(), ctx, &out, err);
        for (int ti = 0; ti < n_tokens && rc == 0; ti++) {
            const int n = tokens[ti];
            if (o.exec == MIMO_EXEC_PERSISTENT && n != 1)
                continue;   // the persistent kernel runs one-position steps (others replay graphs)
            std::vector<double> t;
            for (int i = 0; i < b.reps + 3 && rc == 0; i++) {
                CUDA_CHECK(cudaEventRecord(b.ev0, e->stream));
                rc = ops->forward(impl, toks.data(), n, &out, err);
                CUDA_CHECK(cudaEventRecord(b.ev1, e->stream));
                CUDA_CHECK(cudaEventSynchronize(b.ev1));
                float ms;
                CUDA_CHECK(cudaEventElapsedTime(&ms, b.ev0, b.ev1));
                if (i >= 3)
                    t.push_back(ms * 1000.0);
                if (rc == 0)
                    rc = ops->truncate(impl, ctx, err);
            }
            if (rc == 0) {
                char name[48];
                snprintf(name, sizeof name, "step_%s_%dtok", preset, n);
                add_row(r, name, -1, 0, 0, n, mimo_exec_name(o.exec), e->n_layers, median(t), step_bytes(e, n, ctx),
                        r->calibration_gbps, true);
            }
        }
        ops->destroy(impl);
        if (rc)
            return -1;
    }
    return 0;
}

// One call of fn (which enqueues on st) between two events, in microseconds.
template <typename F> int event_time_us(Bench &b, cudaStream_t st, F fn, double *us)
{
    mimo_error *err = b.err;
    CUDA_CHECK(cudaEventRecord(b.ev0, st));
    if (fn())
        return -1;
    CUDA_CHECK(cudaEventRecord(b.ev1, st));
    CUDA_CHECK(cudaEventSynchronize(b.ev1));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, b.ev0, b.ev1));
    *us = ms * 1000.0;
    return 0;
}

// The DFlash drafter of the preset (mimo_drafter_config_for_target) on this rank: its head is the
// rank's slice of the lm head (as in a tensor-parallel deployment; the drafter's own layers are
// replicated). Times one drafter pass over a block at context 256, and one context append of a
// block's positions from the target's hidden states on the device; the target engine replays one
// layer only, since neither touches the target's layers. The drafter's weights are drawn on the host
// (mimo_drafter_synth) and uploaded.
int bench_drafter(Bench &b, mimo_kbench_result *r, const char *preset, int rank, int count)
{
    mimo_error *err = b.err;
    mimo_config cfg;
    if (mimo_config_preset(preset, &cfg, err))
        return -1;
    mimo_drafter_config dcfg;
    mimo_drafter_config_for_target(&cfg, &dcfg);
    mimo_engine_options o = replay_options(rank, count);
    o.layers_limit = 1;
    o.n_hidden_layers = dcfg.n_target_layers;
    memcpy(o.hidden_layers, dcfg.target_layer_ids, sizeof(int) * (size_t)dcfg.n_target_layers);
    const mimo_backend_ops *ops;
    void *impl;
    if (mimo_cuda_backend_create_synthetic(&cfg, 42, &o, &ops, &impl, err))
        return -1;
    CudaEngine *e = (CudaEngine *)impl;
    mimo_tensor_source *src = NULL;
    mimo_drafter_weights w;
    memset(&w, 0, sizeof w);
    int rc = mimo_drafter_synth(&dcfg, 77, &src, err);
    if (rc == 0)
        rc = mimo_drafter_bind(&dcfg, src, &w, err);
    if (rc == 0)
        rc = cuda_drafter_attach_to(e, &w, true, err);
    mimo_drafter_free(&w);
    mimo_source_free(src);
    const int ctx = 256, B = dcfg.block_size;
    std::vector<float> feat((size_t)ctx * dcfg.n_target_layers * dcfg.hidden_size);
    for (size_t i = 0; i < feat.size(); i++)
        feat[i] = (float)((i * 2654435761u) % 2001u) / 1000.0f - 1.0f;
    if (rc == 0)
        rc = cuda_drafter_append(e, feat.data(), ctx, err);
    std::vector<int32_t> block(B, dcfg.mask_token_id);
    block[0] = 11;
    std::vector<double> tp, ta;
    auto pass = [&]() { return cuda_drafter_pass(e, block.data(), nullptr, nullptr, B, true, err); };
    auto append = [&]() { return cuda_drafter_append_device(e, e->hidden_out, MIMO_MAX_DECODE_POSITIONS, B, nullptr, err); };
    for (int i = 0; i < b.reps + 3 && rc == 0; i++) {
        double us_pass = 0, us_append = 0;
        rc = event_time_us(b, e->stream, pass, &us_pass);
        if (rc == 0)
            rc = event_time_us(b, e->stream, append, &us_append);
        if (rc == 0)
            rc = cuda_drafter_truncate(e, ctx, err);   // the appended block is dropped again
        if (i >= 3) {
            tp.push_back(us_pass);
            ta.push_back(us_append);
        }
    }
    if (rc == 0) {
        double pass_bytes, append_bytes;
        cuda_drafter_bytes(e, B, &pass_bytes, &append_bytes);
        char name[48];
        snprintf(name, sizeof name, "step_%s_drafter_pass_%dtok", preset, B);
        add_row(r, name, -1, 0, 0, B, "eager", dcfg.num_layers, median(tp), pass_bytes, r->calibration_gbps, true);
        snprintf(name, sizeof name, "step_%s_drafter_append_%dtok", preset, B);
        add_row(r, name, -1, 0, 0, B, "eager", dcfg.num_layers, median(ta), append_bytes, r->calibration_gbps, true);
    }
    ops->destroy(impl);
    return rc;
}

}  // namespace

extern "C" int mimo_cuda_kernel_bench(const mimo_kbench_options *o, mimo_kbench_result *r, mimo_error *err)
{
    memset(r, 0, sizeof *r);
    char reason[256];
    if (!mimo_cuda_backend_available(reason, sizeof reason))
        return mimo_fail(err, "kernels: %s", reason);
    mimo_config cfg;
    if (mimo_config_preset(o->preset, &cfg, err))
        return -1;
    const int N = o->shard_count, R = o->shard_rank;
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    snprintf(r->device, sizeof r->device, "%.120s", prop.name);
    r->sm_count = prop.multiProcessorCount;
    r->l2_mb = prop.l2CacheSize / 1048576.0;
    r->mem_gb = prop.totalGlobalMem / 1e9;
    Bench b;
    b.err = err;
    b.reps = o->reps > 0 ? o->reps : 50;
    CUDA_CHECK(cudaStreamCreateWithFlags(&b.e.stream, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreate(&b.ev0));
    CUDA_CHECK(cudaEventCreate(&b.ev1));
    if (cuda_gemv_prepare(err) || calibrate(b, r) || bench_boundaries(b, r))
        return -1;
    const double l2 = prop.l2CacheSize;
    const int H = cfg.hidden_size;
    const mimo_storage *s = &cfg.storage;
    const mimo_attn_shape *a = &cfg.full;
    const int qkv_rows = a->n_heads / N * a->head_dim + a->n_kv_heads / N * (a->head_dim + a->v_head_dim);
    const int I = cfg.intermediate_size / N, Ie = cfg.moe_intermediate_size / N, k = cfg.experts_per_tok;
    mimo_drafter_config dcfg;
    mimo_drafter_config_for_target(&cfg, &dcfg);
    for (int ti = 0; ti < o->n_tokens && !o->steps_only; ti++) {
        const int n = o->tokens[ti];
        if (bench_gemv(b, r, "qkv_proj", s->qkv, qkv_rows, H, false, 0, 0, n, false, l2) ||
            bench_gemv(b, r, "o_proj", s->o_proj, H, a->n_heads / N * a->v_head_dim, false, 0, 0, n, false, l2) ||
            bench_gemv(b, r, "dense_gate_up", s->dense_mlp, I, H, true, 0, 0, n, false, l2) ||
            bench_gemv(b, r, "dense_down", s->dense_mlp, H, I, false, 0, 0, n, false, l2) ||
            bench_gemv(b, r, "router", s->router, cfg.n_routed_experts, H, false, 0, 0, n, false, l2) ||
            bench_gemv(b, r, "expert_gate_up", s->experts, Ie, H, true, cfg.n_routed_experts, k, n, false, l2) ||
            bench_gemv(b, r, "expert_down", s->experts, H, Ie, false, cfg.n_routed_experts, k, n, true, l2) ||
            bench_gemv(b, r, "expert_down_combine", s->experts, H, Ie, false, cfg.n_routed_experts, k, n, true, l2,
                       true) ||
            bench_gemv(b, r, "lm_head", s->lm_head, cfg.vocab_size / N, H, false, 0, 0, n, false, l2))
            return mimo_fail_prefix(err, "kernels (%d tokens)", n);
        // the FP4 ablation's expert storage, same shapes
        if (bench_gemv(b, r, "expert_gate_up", MIMO_WFMT_FP8, Ie, H, true, cfg.n_routed_experts, k, n, false, l2) ||
            bench_gemv(b, r, "expert_gate_up", MIMO_WFMT_BF16, Ie, H, true, cfg.n_routed_experts, k, n, false, l2))
            return mimo_fail_prefix(err, "kernels (%d tokens)", n);
        // the DFlash drafter's matrices (bf16, replicated on every rank) at its block size: its pass's GEMVs
        if (n == dcfg.block_size && bench_drafter_gemvs(b, r, dcfg, n, l2))
            return mimo_fail_prefix(err, "kernels (the drafter's GEMVs, %d tokens)", n);
    }
    if (o->steps) {
        b.release();
        const int ctx = o->context > 0 ? o->context : MIMO_KBENCH_DEFAULT_CONTEXT;
        if (bench_steps(b, r, o->preset, R, N, o->layers, o->tokens, o->n_tokens, ctx, true))
            return mimo_fail_prefix(err, "kernels: whole steps of %s", o->preset);
        if (bench_drafter(b, r, o->preset, R, N))
            return mimo_fail_prefix(err, "kernels: the drafter pass of %s", o->preset);
        const int one[1] = {1};
        if (strcmp(o->preset, "small") && bench_steps(b, r, "small", 0, 1, 0, one, 1, ctx, false))
            return mimo_fail_prefix(err, "kernels: whole steps of small");
    }
    cudaEventDestroy(b.ev0);
    cudaEventDestroy(b.ev1);
    return 0;
}
