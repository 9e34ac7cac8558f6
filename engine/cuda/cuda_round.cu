// A decode round on the device (engine.h "a decode round kept on the device"; DFLASH.md "One decode
// round" and "Verification"): drafter pass -> proposals (argmax, or drawn from the drafter's q) written
// straight into the target's step input -> one target pass (eager or graph) -> the drafter's context
// fed from the target's hidden states on the device -> accept (greedy prefix, or speculative sampling
// with the residual draw) -> one small copy of the result, the round's only host synchronisation.
//
// Sampling here is temperature only (softmax(logits / T) over the whole vocabulary); top-k and top-p
// stay on the host loop. The draws take the caller's uniforms in the host loop's order, and the
// probabilities are the host's formulas in float, so a round draws what the host loop would draw
// (up to float rounding at a draw's boundary).
#include "cuda_drafter.cuh"
#include "cuda_round.cuh"

#include <limits.h>
#include <string.h>

#define ROUND_THREADS 1024   // 32 warps: the block scan below relies on it
#define ROUND_MAX_B MIMO_DFLASH_MAX_BLOCK

// max and sum of exp((l - max) / T) of one row: what turns a logit into the host's probability.
struct RowStats {
    float max;
    double sum;
};

struct RoundResultDev {
    int accepted;
    int32_t drafts[ROUND_MAX_B];
    int32_t bonus;
    int uniforms_used;
};

struct CudaRound {
    RowStats *tstats, *dstats;        // target rows [B], drafter rows [B]
    int32_t *d_block;                 // drafter block tokens [B]
    RoundResultDev *d_result, *h_result;
    cudaEvent_t ev[4];   // draft start, draft end, accept end, result copied
};

// ---- block-wide pieces ----

__device__ __forceinline__ double warp_inclusive_scan(double v)
{
    const int lane = threadIdx.x % 32;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        double up = __shfl_up_sync(0xFFFFFFFFu, v, o);
        if (lane >= o)
            v += up;
    }
    return v;
}

// Exclusive prefix of v over the block's 1024 threads (32 warps); *total gets the block's sum.
// Every thread calls it.
__device__ double block_exclusive_scan(double v, double *total)
{
    __shared__ double warp_prefix[32], block_total;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const double incl = warp_inclusive_scan(v);
    __syncthreads();
    if (lane == 31)
        warp_prefix[warp] = incl;
    __syncthreads();
    if (warp == 0) {
        const double w = warp_prefix[lane];
        const double wi = warp_inclusive_scan(w);
        warp_prefix[lane] = wi - w;
        if (lane == 31)
            block_total = wi;
    }
    __syncthreads();
    *total = block_total;
    return warp_prefix[warp] + (incl - v);
}

// Inverse-CDF draw over the weights w(0..V-1) (unnormalised, >= 0): the first index whose running sum
// exceeds u * total, like mimo_spec_sample_probs. Returns -1 when the total is zero.
template <class Weight> __device__ int block_inverse_cdf(const Weight &w, int V, double u)
{
    __shared__ int found, last_nonzero;
    const int chunk = (V + blockDim.x - 1) / blockDim.x;
    const int lo = min(V, (int)threadIdx.x * chunk), hi = min(V, lo + chunk);
    double s = 0.0;
    int last = -1;
    for (int v = lo; v < hi; v++) {
        const float x = w(v);
        if (x > 0.0f) {
            s += x;
            last = v;
        }
    }
    if (threadIdx.x == 0) {
        found = INT_MAX;
        last_nonzero = -1;
    }
    double total;
    const double prefix = block_exclusive_scan(s, &total);   // (its barriers publish found / last_nonzero)
    if (last >= 0)
        atomicMax(&last_nonzero, last);
    const double target = u * total;
    if (s > 0.0 && target >= prefix && target < prefix + s) {
        double c = prefix;
        for (int v = lo; v < hi; v++) {
            const float x = w(v);
            if (x <= 0.0f)
                continue;
            c += x;
            if (target < c) {
                atomicMin(&found, v);
                break;
            }
        }
    }
    __syncthreads();
    const int r = found != INT_MAX ? found : last_nonzero;   // u landed on the rounding slack at the top
    __syncthreads();
    return total > 0.0 ? r : -1;
}

// p(v) = softmax(row / T)[v], the host's mimo_sampling_probs at top_k 0, top_p 1.
struct SoftmaxWeight {
    const float *row;
    RowStats s;
    float inv_t;
    __device__ float operator()(int v) const { return (float)((double)expf((row[v] - s.max) * inv_t) / s.sum); }
};

// max(0, p(v) - q(v)): the residual after a rejection; q one-hot at x for argmax drafting.
struct ResidualWeight {
    SoftmaxWeight p;
    SoftmaxWeight q;   // q.row == NULL: one-hot at x
    int x;
    __device__ float operator()(int v) const
    {
        const float qv = q.row ? q(v) : (v == x ? 1.0f : 0.0f);
        const float r = p(v) - qv;
        return r > 0.0f ? r : 0.0f;
    }
};

// Row statistics, one block per row.
__device__ RowStats block_row_stats(const float *row, int V, float inv_t)
{
    __shared__ float red_f[32];
    __shared__ double red_d[32];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
    float m = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x)
        m = fmaxf(m, row[v]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        m = fmaxf(m, __shfl_xor_sync(0xFFFFFFFFu, m, o));
    if (lane == 0)
        red_f[warp] = m;
    __syncthreads();
    m = -INFINITY;
    for (int w = 0; w < nw; w++)
        m = fmaxf(m, red_f[w]);
    double s = 0.0;
    for (int v = threadIdx.x; v < V; v += blockDim.x)
        s += (double)expf((row[v] - m) * inv_t);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        s += __shfl_xor_sync(0xFFFFFFFFu, s, o);
    if (lane == 0)
        red_d[warp] = s;
    __syncthreads();
    s = 0.0;
    for (int w = 0; w < nw; w++)
        s += red_d[w];
    __syncthreads();
    return RowStats{m, s};
}

// ---- kernels ----

__global__ void round_drafter_block_kernel(int32_t *block, int t0, int mask, int B)
{
    for (int i = threadIdx.x; i < B; i += blockDim.x)
        block[i] = i == 0 ? t0 : mask;
}

// The target's step input: step[0] = p, step[1] = t0, step[1 + i] = proposal for block position i
// (block b handles position i = b + 1): the drafter's argmax, or a draw from softmax(row / T).
struct FillArgs {
    int *step;
    int p, t0, B, V;
    const int32_t *dargmax;
    const float *dlogits;
    int dld;
    bool sampled;
    float inv_t;
    RowStats *dstats;
    double u[ROUND_MAX_B];
};

__global__ void __launch_bounds__(ROUND_THREADS) round_fill_step_kernel(const FillArgs a)
{
    const int i = blockIdx.x + 1;
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        a.step[0] = a.p;
        a.step[1] = a.t0;
    }
    if (i >= a.B)
        return;
    if (!a.sampled) {
        if (threadIdx.x == 0)
            a.step[1 + i] = a.dargmax[i];
        return;
    }
    const float *row = a.dlogits + (size_t)i * a.dld;
    const RowStats s = block_row_stats(row, a.V, a.inv_t);
    const int x = block_inverse_cdf(SoftmaxWeight{row, s, a.inv_t}, a.V, a.u[i - 1]);
    if (threadIdx.x == 0) {
        a.dstats[i] = s;
        a.step[1 + i] = x >= 0 ? x : a.dargmax[i];
    }
}

__global__ void __launch_bounds__(ROUND_THREADS) round_row_stats_kernel(const float *logits, int ld, int V, float inv_t,
                                                                        RowStats *out)
{
    const RowStats s = block_row_stats(logits + (size_t)blockIdx.x * ld, V, inv_t);
    if (threadIdx.x == 0)
        out[blockIdx.x] = s;
}

struct AcceptArgs {
    const float *tlogits;   // target rows [B][tld]
    int tld;
    const int32_t *targmax; // [B]
    const float *dlogits;   // drafter rows [B][dld] (row i proposed block position i)
    int dld;
    const int *tokens;      // [t0, drafts...]
    const RowStats *tstats, *dstats;
    int B, V, forced;
    bool sampled, draft_sampled;
    float inv_t;
    double u[ROUND_MAX_B + 1];
    RoundResultDev *out;
};

// One block: the host loop's verification (generate.c dflash_round / ar_round) on the device.
__global__ void __launch_bounds__(ROUND_THREADS) round_accept_kernel(const AcceptArgs a)
{
    const int nd = a.B - 1;
    int accepted, bonus = -1, used = 0;
    if (a.forced >= 0 || !a.sampled) {
        if (a.forced >= 0) {
            accepted = a.forced;
        } else {
            accepted = 0;
            while (accepted < nd && a.tokens[1 + accepted] == a.targmax[accepted])
                accepted++;
        }
        if (!a.sampled) {
            bonus = a.targmax[accepted];
        } else {
            const float *row = a.tlogits + (size_t)accepted * a.tld;
            bonus = block_inverse_cdf(SoftmaxWeight{row, a.tstats[accepted], a.inv_t}, a.V, a.u[0]);
            used = 1;
        }
    } else {
        // Speculative sampling: draft i (block position i + 1) is judged by target row i.
        accepted = nd;
        for (int i = 0; i < nd; i++) {
            const int x = a.tokens[1 + i];
            const float *trow = a.tlogits + (size_t)i * a.tld;
            const SoftmaxWeight p{trow, a.tstats[i], a.inv_t};
            const SoftmaxWeight q{a.draft_sampled ? a.dlogits + (size_t)(i + 1) * a.dld : nullptr,
                                  a.draft_sampled ? a.dstats[i + 1] : RowStats{0.0f, 1.0}, a.inv_t};
            const double px = p(x), qx = q.row ? q(x) : 1.0;
            const double ratio = qx > 0.0 ? (px / qx < 1.0 ? px / qx : 1.0) : (px > 0.0 ? 1.0 : 0.0);
            used++;
            if (a.u[i] < ratio)
                continue;
            accepted = i;
            bonus = block_inverse_cdf(ResidualWeight{p, q, x}, a.V, a.u[used]);
            if (bonus < 0)   // no residual mass (p == q): draw from p, like mimo_residual_distribution
                bonus = block_inverse_cdf(p, a.V, a.u[used]);
            used++;
            break;
        }
        if (accepted == nd) {
            const float *row = a.tlogits + (size_t)nd * a.tld;
            bonus = block_inverse_cdf(SoftmaxWeight{row, a.tstats[nd], a.inv_t}, a.V, a.u[used]);
            used++;
        }
        if (bonus < 0)
            bonus = a.targmax[accepted];
    }
    if (threadIdx.x == 0) {
        a.out->accepted = accepted;
        for (int i = 0; i < nd; i++)
            a.out->drafts[i] = a.tokens[1 + i];
        a.out->bonus = bonus;
        a.out->uniforms_used = used;
    }
}

// ---- host side ----

static int make_round_state(CudaEngine *e, CudaRound *r, mimo_error *err)
{
    void *v;
    if (cuda_engine_alloc(e, &v, 2 * ROUND_MAX_B * sizeof(RowStats), err))
        return -1;
    r->tstats = (RowStats *)v;
    r->dstats = r->tstats + ROUND_MAX_B;
    if (cuda_engine_alloc(e, &v, ROUND_MAX_B * sizeof(int32_t), err))
        return -1;
    r->d_block = (int32_t *)v;
    if (cuda_engine_alloc(e, &v, sizeof(RoundResultDev), err))
        return -1;
    r->d_result = (RoundResultDev *)v;
    CUDA_CHECK(cudaMallocHost((void **)&r->h_result, sizeof(RoundResultDev)));
    for (int i = 0; i < 4; i++)
        CUDA_CHECK(cudaEventCreate(&r->ev[i]));
    return 0;
}

static CudaRound *round_state(CudaEngine *e, mimo_error *err)
{
    if (!e->round) {
        CudaRound *r = new CudaRound();
        memset(r, 0, sizeof *r);
        if (make_round_state(e, r, err)) {
            cuda_round_destroy(r);
            return nullptr;
        }
        e->round = r;
    }
    return e->round;
}

void cuda_round_destroy(CudaRound *r)
{
    if (!r)
        return;
    if (r->h_result)
        cudaFreeHost(r->h_result);
    for (int i = 0; i < 4; i++)
        if (r->ev[i])
            cudaEventDestroy(r->ev[i]);
    delete r;   // device buffers are the engine's allocations
}

bool cuda_has_device_round(const CudaEngine *e, const mimo_sampling_params *p)
{
    const bool plain_sampling = p->temperature == 0.0f ||
                                ((p->top_k <= 0 || p->top_k >= e->cfg.vocab_size) && !(p->top_p > 0.0f && p->top_p < 1.0f));
    return e->nshard == 1 && plain_sampling;
}

int cuda_device_round(CudaEngine *e, const mimo_round_request *rq, mimo_round_result *rs, mimo_error *err)
{
    CudaRound *r = round_state(e, err);
    if (!r)
        return -1;
    const int B = rq->B, V = e->cfg.vocab_size, p = e->length;
    const bool sampled = rq->temperature > 0.0f, draft_sampled = sampled && rq->draft_sampled && B > 1;
    const float inv_t = sampled ? 1.0f / rq->temperature : 1.0f;
    if (B > 1 && !e->drafter)
        return mimo_fail(err, "cuda: a round of %d positions needs the drafter", B);
    cudaStream_t st = e->stream;
    memset(rs, 0, sizeof *rs);

    CUDA_CHECK(cudaEventRecord(r->ev[0], st));
    int32_t block[ROUND_MAX_B];
    if (B > 1) {
        const int mask = cuda_drafter_mask_token(e);
        for (int i = 0; i < B; i++)
            block[i] = i == 0 ? rq->t0 : mask;
        round_drafter_block_kernel<<<1, 32, 0, st>>>(r->d_block, rq->t0, mask, B);
        CUDA_CHECK_LAUNCH("round_drafter_block_kernel");
        if (cuda_drafter_pass(e, block, r->d_block, B, true, err))
            return mimo_fail_prefix(err, "round: draft");
    }
    CUDA_CHECK(cudaEventRecord(r->ev[1], st));

    FillArgs f;
    memset(&f, 0, sizeof f);
    f.step = e->d_step;
    f.p = p;
    f.t0 = rq->t0;
    f.B = B;
    f.V = V;
    f.dargmax = B > 1 ? cuda_drafter_argmax(e) : nullptr;
    f.dlogits = B > 1 ? cuda_drafter_logits(e) : nullptr;
    f.dld = B > 1 ? cuda_drafter_logits_ld(e) : 0;
    f.sampled = draft_sampled;
    f.inv_t = inv_t;
    f.dstats = r->dstats;
    memcpy(f.u, rq->draft_uniforms, sizeof f.u);
    round_fill_step_kernel<<<B > 1 ? B - 1 : 1, ROUND_THREADS, 0, st>>>(f);
    CUDA_CHECK_LAUNCH("round_fill_step_kernel");
    if (cuda_run_step(e, B, err))
        return mimo_fail_prefix(err, "round: verify");
    if (sampled) {
        round_row_stats_kernel<<<B, ROUND_THREADS, 0, st>>>(e->logits, e->vocab_local, V, inv_t, r->tstats);
        CUDA_CHECK_LAUNCH("round_row_stats_kernel");
    }
    AcceptArgs a;
    memset(&a, 0, sizeof a);
    a.tlogits = e->logits;
    a.tld = e->vocab_local;
    a.targmax = e->d_argmax;
    a.dlogits = f.dlogits;
    a.dld = f.dld;
    a.tokens = e->d_step + 1;
    a.tstats = r->tstats;
    a.dstats = r->dstats;
    a.B = B;
    a.V = V;
    a.forced = rq->forced_accept;
    a.sampled = sampled;
    a.draft_sampled = draft_sampled;
    a.inv_t = inv_t;
    memcpy(a.u, rq->verify_uniforms, sizeof a.u);
    a.out = r->d_result;
    round_accept_kernel<<<1, ROUND_THREADS, 0, st>>>(a);
    CUDA_CHECK_LAUNCH("round_accept_kernel");
    CUDA_CHECK(cudaEventRecord(r->ev[2], st));
    CUDA_CHECK(cudaMemcpyAsync(r->h_result, r->d_result, sizeof(RoundResultDev), cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaEventRecord(r->ev[3], st));
    // The drafter's context gains the round's B positions (the rollback below keeps the accepted
    // ones); it runs while the host reads the result and emits.
    if (rq->feed_drafter && cuda_drafter_append_device(e, e->hidden_out, MIMO_MAX_DECODE_POSITIONS, B, err))
        return mimo_fail_prefix(err, "round: drafter context");
    CUDA_CHECK(cudaEventSynchronize(r->ev[3]));   // the round's one synchronisation: the accept count

    const RoundResultDev *h = r->h_result;
    if (h->accepted < 0 || h->accepted >= B || h->bonus < 0 || h->bonus >= V)
        return mimo_fail(err, "cuda: round result out of range (accepted %d of %d, bonus %d)", h->accepted, B - 1, h->bonus);
    rs->accepted = h->accepted;
    memcpy(rs->drafts, h->drafts, (size_t)(B - 1) * sizeof(int32_t));
    rs->bonus = h->bonus;
    rs->verify_uniforms_used = h->uniforms_used;
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, r->ev[0], r->ev[1]));
    rs->draft_us = B > 1 ? ms * 1000.0 : 0.0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, r->ev[1], r->ev[2]));
    rs->verify_us = ms * 1000.0;
    // The KV keeps t0 and the accepted drafts; the drafter's context the same positions.
    e->length = p + h->accepted + 1;
    if (rq->feed_drafter && cuda_drafter_truncate(e, p + h->accepted + 1, err))
        return -1;
    return 0;
}

// ---- test entry (cuda_testing.h) ----

extern "C" {
#include "cuda_testing.h"
}

namespace {
// Device buffers of one test call, freed on every path.
struct TestBuffers {
    std::vector<void *> p;
    template <typename T> int alloc(T **out, size_t n, mimo_error *err)
    {
        void *v = nullptr;
        CUDA_CHECK(cudaMalloc(&v, n * sizeof(T) + 16));
        p.push_back(v);
        *out = (T *)v;
        return 0;
    }
    ~TestBuffers()
    {
        cudaDeviceSynchronize();
        for (void *v : p)
            cudaFree(v);
    }
};
}  // namespace

extern "C" int mimo_cuda_test_round_verify(const float *target_logits, const float *drafter_logits, int B, int V,
                                           float temperature, bool draft_sampled, const double *draft_uniforms,
                                           const double *verify_uniforms, int forced, int32_t *drafts, int *accepted,
                                           int32_t *bonus, int *uniforms_used, mimo_error *err)
{
    if (B < 1 || B > ROUND_MAX_B || V < 1 || forced >= B)
        return mimo_fail(err, "round test: B %d / V %d / forced %d out of range", B, V, forced);
    TestBuffers b;
    float *tl = nullptr, *dl = nullptr;
    int32_t *targ = nullptr, *darg = nullptr;
    int *step = nullptr;
    RowStats *tstats = nullptr, *dstats = nullptr;
    RoundResultDev *res = nullptr;
    if (b.alloc(&tl, (size_t)B * V, err) || b.alloc(&dl, (size_t)B * V, err) || b.alloc(&targ, B, err) ||
        b.alloc(&darg, B, err) || b.alloc(&step, 1 + B, err) || b.alloc(&tstats, B, err) || b.alloc(&dstats, B, err) ||
        b.alloc(&res, 1, err))
        return -1;
    const bool sampled = temperature > 0.0f, dsampled = sampled && draft_sampled && B > 1;
    const float inv_t = sampled ? 1.0f / temperature : 1.0f;
    CUDA_CHECK(cudaMemcpy(tl, target_logits, (size_t)B * V * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dl, drafter_logits, (size_t)B * V * sizeof(float), cudaMemcpyHostToDevice));
    std::vector<int> h_step(1 + B, 0);
    for (int i = 1; i < B; i++)
        h_step[1 + i] = drafts[i - 1];
    CUDA_CHECK(cudaMemcpy(step, h_step.data(), (1 + B) * sizeof(int), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemset(res, 0xFF, sizeof *res));   // poisoned: -1 everywhere
    cudaStream_t st = 0;
    if (cuda_argmax(tl, V, V, B, 0, targ, st, err) || cuda_argmax(dl, V, V, B, 0, darg, st, err))
        return -1;
    if (dsampled) {
        FillArgs f;
        memset(&f, 0, sizeof f);
        f.step = step;
        f.B = B;
        f.V = V;
        f.dargmax = darg;
        f.dlogits = dl;
        f.dld = V;
        f.sampled = true;
        f.inv_t = inv_t;
        f.dstats = dstats;
        for (int i = 0; i < B - 1; i++)
            f.u[i] = draft_uniforms[i];
        round_fill_step_kernel<<<B - 1, ROUND_THREADS, 0, st>>>(f);
        CUDA_CHECK_LAUNCH("round_fill_step_kernel");
    }
    if (sampled) {
        round_row_stats_kernel<<<B, ROUND_THREADS, 0, st>>>(tl, V, V, inv_t, tstats);
        CUDA_CHECK_LAUNCH("round_row_stats_kernel");
    }
    AcceptArgs a;
    memset(&a, 0, sizeof a);
    a.tlogits = tl;
    a.tld = V;
    a.targmax = targ;
    a.dlogits = dl;
    a.dld = V;
    a.tokens = step + 1;
    a.tstats = tstats;
    a.dstats = dstats;
    a.B = B;
    a.V = V;
    a.forced = forced;
    a.sampled = sampled;
    a.draft_sampled = dsampled;
    a.inv_t = inv_t;
    for (int i = 0; i < B && sampled; i++)
        a.u[i] = verify_uniforms[i];
    a.out = res;
    round_accept_kernel<<<1, ROUND_THREADS, 0, st>>>(a);
    CUDA_CHECK_LAUNCH("round_accept_kernel");
    RoundResultDev h;
    CUDA_CHECK(cudaMemcpy(&h, res, sizeof h, cudaMemcpyDeviceToHost));
    for (int i = 0; i < B - 1; i++)
        drafts[i] = h.drafts[i];
    *accepted = h.accepted;
    *bonus = h.bonus;
    *uniforms_used = h.uniforms_used;
    return 0;
}
