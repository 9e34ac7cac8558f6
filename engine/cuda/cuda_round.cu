// A decode round on the device (engine.h "a decode round kept on the device"; DFLASH.md "One decode
// round" and "Verification"): drafter pass -> proposals (argmax, or drawn from the drafter's q) written
// straight into the target's step input -> one target pass (eager or graph) -> the drafter's context
// fed from the target's hidden states on the device -> accept (greedy prefix, or speculative sampling
// with the residual draw). The accept count moves the KV and drafter lengths on the device (RoundLengths),
// so a round reads no position from the host and graph mode captures the whole round once per shape; the
// host's one synchronisation is waiting for the result, which the accept kernel publishes in mapped memory.
//
// Sampling is the host's mimo_sampling_probs: softmax(logits / T), then the top-k / top-p kept set
// (cuda_row_select.cuh), renormalised. The draws take the caller's uniforms in the host loop's order,
// and the probabilities are the host's formulas in float, so a round draws what the host loop would
// draw (up to float rounding at a draw's or a cut's boundary).
#include "cuda_drafter.cuh"
#include "cuda_persistent.cuh"
#include "cuda_round.cuh"
#include "cuda_row_select.cuh"

#include <limits.h>
#include <string.h>
#include <time.h>

#define ROUND_THREADS 1024   // 32 warps: the block scan below relies on it
#define ROUND_MAX_B MIMO_DFLASH_MAX_BLOCK

// max and sum of exp((l - max) / T) of one row: what turns a logit into the host's probability;
// then the top-k / top-p kept set (cuda_row_select.cuh) and its mass, which renormalises it
// (everything kept, mass 1, without top-k / top-p).
struct RowStats {
    float max;
    double sum;
    uint32_t cut_key;
    int cut_index;
    double kept_mass;
};

// What the host gives a round (copied to the device at the round's start: a graph replays it).
struct RoundInput {
    int t0, forced;
    float inv_t;
    int top_k;                        // 0: off
    float top_p;                      // 1: off
    unsigned seq;                     // the result carries it back: the host waits for its own round
    double du[ROUND_MAX_B];           // sampled drafting, block positions 1..B-1
    double vu[ROUND_MAX_B + 1];       // acceptance tests, then the final draw
};

// What a round gives back, written by the accept kernel into mapped host memory; seq last.
struct RoundResultDev {
    int accepted;
    int32_t drafts[ROUND_MAX_B];
    int32_t bonus;
    int uniforms_used;
    long long t_start, t_drafted, t_verified;   // %globaltimer (ns): round start, drafter done, accept done
    volatile unsigned seq;
};

// Lengths the device keeps between rounds: the accept count moves them without the host.
struct RoundLengths {
    int target, drafter;              // now
    int next_target, next_drafter;    // after this round (committed at its end)
    long long stamp[2];               // round start, drafter done
};

// A captured round (graph mode) per shape: block size and flags.
#define ROUND_GRAPH_KEYS ((ROUND_MAX_B + 1) * 8)

struct CudaRound {
    RowStats *tstats, *dstats;        // target rows [B], drafter rows [B]
    int32_t *d_block;                 // drafter block tokens [B]
    RoundInput *h_in, *d_in;          // pinned host / device
    RoundResultDev *h_result;         // mapped pinned host memory, written by the device
    RoundLengths *d_lens;
    int known_target, known_drafter;  // what d_lens holds, as far as the host knows (-1: unknown)
    unsigned seq;
    cudaGraphExec_t graphs[ROUND_GRAPH_KEYS];
};

// ---- block-wide pieces (prefix sums and the kept set: cuda_row_select.cuh) ----

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

// p(v) = the host's mimo_sampling_probs: softmax(row / T)[v] (raw), zero outside the kept set, the
// kept ones renormalised by their mass.
struct SoftmaxWeight {
    const float *row;
    RowStats s;
    float inv_t;
    __device__ float raw(int v) const { return (float)((double)expf((row[v] - s.max) * inv_t) / s.sum); }
    __device__ float operator()(int v) const
    {
        const float r = raw(v);
        const uint32_t key = __float_as_uint(r);
        if (key < s.cut_key || (key == s.cut_key && v > s.cut_index))
            return 0.0f;
        return (float)((double)r / s.kept_mass);
    }
};

// softmax(row / T) of a row whose max and sum are known, for the selection.
struct RawProb {
    SoftmaxWeight w;
    __device__ float operator()(int v) const { return w.raw(v); }
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
    return RowStats{m, s, 0u, INT_MAX, 1.0};
}

// The row's statistics, then its top-k / top-p cut (top_k 0 and top_p 1: everything kept).
__device__ RowStats block_sampling_stats(const float *row, int V, float inv_t, int top_k, float top_p)
{
    RowStats s = block_row_stats(row, V, inv_t);
    const bool use_k = top_k > 0 && top_k < V, use_p = top_p > 0.0f && top_p < 1.0f;
    if (!use_k && !use_p)
        return s;
    const RawProb prob{SoftmaxWeight{row, s, inv_t}};
    RankedPrefix cut;
    unsigned long long mass;   // top-p's reference: the top-k set's mass, or the row's
    if (use_k) {
        cut = block_ranked_prefix(prob, V, false, (unsigned long long)top_k);
        mass = cut.mass;
    } else {
        mass = block_total_fx(prob, V);
    }
    if (use_p) {
        // the host: the first prefix whose renormalised cumulative mass is >= top_p
        unsigned long long target = (unsigned long long)ceil((double)top_p * (double)mass);
        cut = block_ranked_prefix(prob, V, true, target < 1 ? 1 : target);
    }
    s.cut_key = cut.key;
    s.cut_index = cut.index;
    s.kept_mass = (double)cut.mass / ROW_SELECT_FX_ONE;
    return s;
}

// ---- kernels ----

__global__ void round_set_lengths_kernel(RoundLengths *lens, int target, int drafter)
{
    lens->target = target;
    lens->drafter = drafter;
}

__global__ void round_drafter_block_kernel(int32_t *block, const RoundInput *in, int mask, int B, RoundLengths *lens)
{
    for (int i = threadIdx.x; i < B; i += blockDim.x)
        block[i] = i == 0 ? in->t0 : mask;
    if (threadIdx.x == 0)
        lens->stamp[0] = globaltimer_ns();
}

// The target's step input: step[0] = p (the device's target length), step[1] = t0, step[1 + i] = the
// proposal for block position i (block b handles i = b + 1): the drafter's argmax, or a draw from
// softmax(row / T).
struct FillArgs {
    int *step;
    const RoundInput *in;
    RoundLengths *lens;
    int B, V;
    const int32_t *dargmax;
    const float *dlogits;
    int dld;
    bool sampled;
    RowStats *dstats;
};

__global__ void __launch_bounds__(ROUND_THREADS) round_fill_step_kernel(const FillArgs a)
{
    const int i = blockIdx.x + 1;
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        const long long now = globaltimer_ns();
        if (a.B == 1)
            a.lens->stamp[0] = now;   // no drafter pass: the round starts here
        a.lens->stamp[1] = now;
        a.step[0] = a.lens->target;
        a.step[1] = a.in->t0;
    }
    if (i >= a.B)
        return;
    if (!a.sampled) {
        if (threadIdx.x == 0)
            a.step[1 + i] = a.dargmax[i];
        return;
    }
    const float inv_t = a.in->inv_t;
    const float *row = a.dlogits + (size_t)i * a.dld;
    const RowStats s = block_sampling_stats(row, a.V, inv_t, a.in->top_k, a.in->top_p);
    const int x = block_inverse_cdf(SoftmaxWeight{row, s, inv_t}, a.V, a.in->du[i - 1]);
    if (threadIdx.x == 0) {
        a.dstats[i] = s;
        a.step[1 + i] = x >= 0 ? x : a.dargmax[i];
    }
}

__global__ void __launch_bounds__(ROUND_THREADS) round_row_stats_kernel(const float *logits, int ld, int V,
                                                                        const RoundInput *in, RowStats *out)
{
    const RowStats s = block_sampling_stats(logits + (size_t)blockIdx.x * ld, V, in->inv_t, in->top_k, in->top_p);
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
    const RoundInput *in;
    RoundLengths *lens;
    int B, V;
    bool sampled, draft_sampled, feed_drafter;
    RoundResultDev *out;    // mapped host memory
};

// One block: the host loop's verification (generate.c dflash_round / ar_round) on the device, then
// the lengths after the round (the KV keeps t0 and the accepted drafts) and the result for the host.
__global__ void __launch_bounds__(ROUND_THREADS) round_accept_kernel(const AcceptArgs a)
{
    const RoundInput *in = a.in;
    const int nd = a.B - 1, forced = in->forced;
    const float inv_t = in->inv_t;
    int accepted, bonus = -1, used = 0;
    if (forced >= 0 || !a.sampled) {
        if (forced >= 0) {
            accepted = forced;
        } else {
            accepted = 0;
            while (accepted < nd && a.tokens[1 + accepted] == a.targmax[accepted])
                accepted++;
        }
        if (!a.sampled) {
            bonus = a.targmax[accepted];
        } else {
            const float *row = a.tlogits + (size_t)accepted * a.tld;
            bonus = block_inverse_cdf(SoftmaxWeight{row, a.tstats[accepted], inv_t}, a.V, in->vu[0]);
            used = 1;
        }
    } else {
        // Speculative sampling: draft i (block position i + 1) is judged by target row i.
        accepted = nd;
        for (int i = 0; i < nd; i++) {
            const int x = a.tokens[1 + i];
            const float *trow = a.tlogits + (size_t)i * a.tld;
            const SoftmaxWeight p{trow, a.tstats[i], inv_t};
            const SoftmaxWeight q{a.draft_sampled ? a.dlogits + (size_t)(i + 1) * a.dld : nullptr,
                                  a.draft_sampled ? a.dstats[i + 1] : RowStats{0.0f, 1.0, 0u, INT_MAX, 1.0}, inv_t};
            const double px = p(x), qx = q.row ? q(x) : 1.0;
            const double ratio = qx > 0.0 ? (px / qx < 1.0 ? px / qx : 1.0) : (px > 0.0 ? 1.0 : 0.0);
            used++;
            if (in->vu[i] < ratio)
                continue;
            accepted = i;
            bonus = block_inverse_cdf(ResidualWeight{p, q, x}, a.V, in->vu[used]);
            if (bonus < 0)   // no residual mass (p == q): draw from p, like mimo_residual_distribution
                bonus = block_inverse_cdf(p, a.V, in->vu[used]);
            used++;
            break;
        }
        if (accepted == nd) {
            const float *row = a.tlogits + (size_t)nd * a.tld;
            bonus = block_inverse_cdf(SoftmaxWeight{row, a.tstats[nd], inv_t}, a.V, in->vu[used]);
            used++;
        }
        if (bonus < 0)
            bonus = a.targmax[accepted];
    }
    if (threadIdx.x == 0) {
        RoundLengths *l = a.lens;
        l->next_target = l->target + accepted + 1;
        l->next_drafter = a.feed_drafter ? l->target + accepted + 1 : l->drafter;
        RoundResultDev *o = a.out;
        o->accepted = accepted;
        for (int i = 0; i < nd; i++)
            o->drafts[i] = a.tokens[1 + i];
        o->bonus = bonus;
        o->uniforms_used = used;
        o->t_start = l->stamp[0];
        o->t_drafted = l->stamp[1];
        o->t_verified = globaltimer_ns();
        __threadfence_system();   // every field before the flag the host waits on
        o->seq = in->seq;
    }
}

// The round's last kernel: the lengths after it become the lengths (the drafter's context append
// before it wrote at the old length).
__global__ void round_commit_lengths_kernel(RoundLengths *lens)
{
    lens->target = lens->next_target;
    lens->drafter = lens->next_drafter;
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
    if (cuda_engine_alloc(e, &v, sizeof(RoundInput), err))
        return -1;
    r->d_in = (RoundInput *)v;
    if (cuda_engine_alloc(e, &v, sizeof(RoundLengths), err))
        return -1;
    r->d_lens = (RoundLengths *)v;
    // on the engine's stream: a legacy-stream memset is not ordered with its (non-blocking) stream and
    // could land after the first round's round_set_lengths_kernel, zeroing the lengths it wrote
    CUDA_CHECK(cudaMemsetAsync(r->d_lens, 0, sizeof(RoundLengths), e->stream));
    CUDA_CHECK(cudaMallocHost((void **)&r->h_in, sizeof(RoundInput)));
    CUDA_CHECK(cudaHostAlloc((void **)&r->h_result, sizeof(RoundResultDev), cudaHostAllocMapped));
    memset((void *)r->h_result, 0, sizeof(RoundResultDev));
    r->known_target = r->known_drafter = -1;
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

void cuda_round_drop_graphs(CudaRound *r)
{
    if (!r)
        return;
    for (int i = 0; i < ROUND_GRAPH_KEYS; i++)
        if (r->graphs[i]) {
            cudaGraphExecDestroy(r->graphs[i]);
            r->graphs[i] = nullptr;
        }
}

void cuda_round_destroy(CudaRound *r)
{
    if (!r)
        return;
    cuda_round_drop_graphs(r);
    if (r->h_in)
        cudaFreeHost(r->h_in);
    if (r->h_result)
        cudaFreeHost((void *)r->h_result);
    delete r;   // device buffers are the engine's allocations
}

bool cuda_has_device_round(const CudaEngine *e, const mimo_sampling_params *p)
{
    (void)p;   // every temperature / top-k / top-p (the kept set is selected on the device)
    return e->nshard == 1;
}

namespace {
struct RoundShape {
    int B;
    bool sampled, draft_sampled, feed_drafter;
    int key() const { return B * 8 + (sampled ? 4 : 0) + (draft_sampled ? 2 : 0) + (feed_drafter ? 1 : 0); }
};
}  // namespace

// The buffers of a round's sampling and verification kernels (the engine's, or a test's).
struct RoundRows {
    int *step;                       // [1 + B]: p, t0, then the proposals
    const RoundInput *in;
    RoundLengths *lens;
    const float *tlogits;            // target rows [B][tld], argmax [B]
    int tld;
    const int32_t *targmax;
    const float *dlogits;            // drafter rows [B][dld], argmax [B] (NULL when B = 1)
    int dld;
    const int32_t *dargmax;
    RowStats *tstats, *dstats;
    RoundResultDev *out;             // mapped host memory
};

// The proposals into the step input (argmax, or drawn from the drafter's rows), with p and t0.
static int launch_fill(const RoundRows &w, const RoundShape &sh, int V, cudaStream_t st, mimo_error *err)
{
    const FillArgs f = {w.step, w.in, w.lens, sh.B, V, w.dargmax, w.dlogits, w.dld, sh.draft_sampled, w.dstats};
    round_fill_step_kernel<<<sh.B > 1 ? sh.B - 1 : 1, ROUND_THREADS, 0, st>>>(f);
    CUDA_CHECK_LAUNCH("round_fill_step_kernel");
    return 0;
}

// The target rows' statistics (sampling) and the accept kernel.
static int launch_verify(const RoundRows &w, const RoundShape &sh, int V, cudaStream_t st, mimo_error *err)
{
    if (sh.sampled) {
        round_row_stats_kernel<<<sh.B, ROUND_THREADS, 0, st>>>(w.tlogits, w.tld, V, w.in, w.tstats);
        CUDA_CHECK_LAUNCH("round_row_stats_kernel");
    }
    const AcceptArgs a = {w.tlogits, w.tld,   w.targmax,  w.dlogits,        w.dld,            w.step + 1,
                          w.tstats,  w.dstats, w.in,      w.lens,           sh.B,             V,
                          sh.sampled, sh.draft_sampled, sh.feed_drafter, w.out};
    round_accept_kernel<<<1, ROUND_THREADS, 0, st>>>(a);
    CUDA_CHECK_LAUNCH("round_accept_kernel");
    return 0;
}

// Everything of one round on the stream, reading its inputs and positions from the device only:
// what graph mode captures once per shape.
static int enqueue_round(CudaEngine *e, CudaRound *r, const RoundShape &sh, mimo_error *err)
{
    cudaStream_t st = e->stream;
    const int B = sh.B, V = e->cfg.vocab_size;
    int *d_drafter_len = &r->d_lens->drafter;
    CUDA_CHECK(cudaMemcpyAsync(r->d_in, r->h_in, sizeof(RoundInput), cudaMemcpyHostToDevice, st));
    if (B > 1) {
        const int mask = cuda_drafter_mask_token(e);
        int32_t block[ROUND_MAX_B];
        for (int i = 0; i < B; i++)
            block[i] = mask;   // block[0] (t0) is the device's; only the mask positions matter here
        round_drafter_block_kernel<<<1, 32, 0, st>>>(r->d_block, r->d_in, mask, B, r->d_lens);
        CUDA_CHECK_LAUNCH("round_drafter_block_kernel");
        if (cuda_drafter_pass(e, block, r->d_block, d_drafter_len, B, true, err))
            return mimo_fail_prefix(err, "round: draft");
    }
    const RoundRows rows = {e->d_step,
                            r->d_in,
                            r->d_lens,
                            e->logits,
                            e->vocab_local,
                            e->d_argmax,
                            B > 1 ? cuda_drafter_logits(e) : nullptr,
                            B > 1 ? cuda_drafter_logits_ld(e) : 0,
                            B > 1 ? cuda_drafter_argmax(e) : nullptr,
                            r->tstats,
                            r->dstats,
                            r->h_result};
    if (launch_fill(rows, sh, V, st, err))
        return -1;
    // a plain round's one position in the persistent kernel under --exec persistent (prepared before capture)
    if (cuda_persistent_runs(e, B, true) ? cuda_persistent_step(e, B, err) : cuda_run_step_program(e, B, err))
        return mimo_fail_prefix(err, "round: verify");
    if (launch_verify(rows, sh, V, st, err))
        return -1;
    // The drafter's context gains the round's B positions at its old length (the lengths committed
    // below keep the accepted ones); this runs while the host reads the result and emits.
    if (sh.feed_drafter && cuda_drafter_append_device(e, e->hidden_out, MIMO_MAX_DECODE_POSITIONS, B, d_drafter_len, err))
        return mimo_fail_prefix(err, "round: drafter context");
    round_commit_lengths_kernel<<<1, 1, 0, st>>>(r->d_lens);
    CUDA_CHECK_LAUNCH("round_commit_lengths_kernel");
    return 0;
}

// Waits for the result of round seq (the mapped flag), watching the stream for errors so that a
// failed kernel is reported instead of waited on forever.
static int wait_result(CudaEngine *e, CudaRound *r, unsigned seq, mimo_error *err)
{
    for (long spin = 0; r->h_result->seq != seq; spin++) {
        if ((spin & 255) != 255)
            continue;
        cudaError_t q = cudaStreamQuery(e->stream);
        if (q != cudaSuccess && q != cudaErrorNotReady)
            return mimo_fail(err, "cuda: a decode round failed: %s", cudaGetErrorString(q));
        if (q == cudaSuccess && r->h_result->seq != seq)
            return mimo_fail(err, "cuda: a decode round finished without its result (round %u)", seq);
        if ((spin & 65535) == 65535) {
            struct timespec ts = {0, 20000};   // long rounds: let other threads run
            nanosleep(&ts, NULL);
        }
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    return 0;
}

int cuda_device_round(CudaEngine *e, const mimo_round_request *rq, mimo_round_result *rs, mimo_error *err)
{
    CudaRound *r = round_state(e, err);
    if (!r)
        return -1;
    const int B = rq->B, V = e->cfg.vocab_size, p = e->length;
    if (B > 1 && !e->drafter)
        return mimo_fail(err, "cuda: a round of %d positions needs the drafter", B);
    const mimo_sampling_params &sp = rq->sampling;
    const RoundShape sh = {B, sp.temperature > 0.0f, sp.temperature > 0.0f && rq->draft_sampled && B > 1, rq->feed_drafter};
    const int drafter_len = e->drafter ? cuda_drafter_length(e) : 0;
    memset(rs, 0, sizeof *rs);

    // The device's lengths move with the accept count; the host writes them only after something
    // else moved them (a forward, a truncation, an append from the host).
    if (r->known_target != p || r->known_drafter != drafter_len) {
        round_set_lengths_kernel<<<1, 1, 0, e->stream>>>(r->d_lens, p, drafter_len);
        CUDA_CHECK_LAUNCH("round_set_lengths_kernel");
    }
    RoundInput *in = r->h_in;
    in->t0 = rq->t0;
    in->forced = rq->forced_accept;
    in->inv_t = sh.sampled ? 1.0f / sp.temperature : 1.0f;
    in->top_k = sp.top_k;
    in->top_p = sp.top_p;
    in->seq = ++r->seq;
    memcpy(in->du, rq->draft_uniforms, sizeof in->du);
    memcpy(in->vu, rq->verify_uniforms, sizeof in->vu);
    if (cuda_persistent_runs(e, B, true) && cuda_persistent_prepare(e, B, err))
        return -1;
    auto enqueue = [&] { return enqueue_round(e, r, sh, err); };
    // graph mode: the whole round, captured once per shape; persistent mode too (a plain round's step is
    // the persistent kernel inside the graph, a DFlash round's block the graph's kernels)
    const bool captured = e->opts.exec == MIMO_EXEC_GRAPH || e->opts.exec == MIMO_EXEC_PERSISTENT;
    if (captured ? cuda_launch_captured(e, &r->graphs[sh.key()], enqueue, err) : enqueue()) {
        r->known_target = r->known_drafter = -1;
        return -1;
    }
    if (wait_result(e, r, in->seq, err)) {   // the round's one synchronisation: its result
        r->known_target = r->known_drafter = -1;
        return -1;
    }
    // the persistent kernel's status was copied back before the result (stream order)
    if (cuda_persistent_runs(e, B, true) && cuda_persistent_check(e, err)) {
        r->known_target = r->known_drafter = -1;
        return -1;
    }
    const RoundResultDev *h = r->h_result;
    if (h->accepted < 0 || h->accepted >= B || h->bonus < 0 || h->bonus >= V)
        return mimo_fail(err, "cuda: round result out of range (accepted %d of %d, bonus %d)", h->accepted, B - 1, h->bonus);
    rs->accepted = h->accepted;
    memcpy(rs->drafts, (const void *)h->drafts, (size_t)(B - 1) * sizeof(int32_t));
    rs->bonus = h->bonus;
    rs->verify_uniforms_used = h->uniforms_used;
    rs->draft_us = B > 1 ? (h->t_drafted - h->t_start) * 1e-3 : 0.0;
    rs->verify_us = (h->t_verified - h->t_drafted) * 1e-3;
    // The KV keeps t0 and the accepted drafts; the drafter's context the same positions.
    e->length = p + h->accepted + 1;
    r->known_target = e->length;
    r->known_drafter = drafter_len;
    if (rq->feed_drafter) {
        if (cuda_drafter_set_length(e, e->length, err))
            return -1;
        r->known_drafter = e->length;
    }
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
                                           const mimo_sampling_params *sampling, bool draft_sampled, const double *draft_uniforms,
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
    RoundInput *d_in = nullptr;
    RoundLengths *lens = nullptr;
    if (b.alloc(&tl, (size_t)B * V, err) || b.alloc(&dl, (size_t)B * V, err) || b.alloc(&targ, B, err) ||
        b.alloc(&darg, B, err) || b.alloc(&step, 1 + B, err) || b.alloc(&tstats, B, err) || b.alloc(&dstats, B, err) ||
        b.alloc(&d_in, 1, err) || b.alloc(&lens, 1, err))
        return -1;
    RoundResultDev *res = nullptr;
    CUDA_CHECK(cudaHostAlloc((void **)&res, sizeof *res, cudaHostAllocMapped));
    struct FreeHost {
        void *p;
        ~FreeHost() { cudaFreeHost(p); }
    } free_res{(void *)res};
    memset((void *)res, 0xFF, sizeof *res);   // poisoned: -1 everywhere
    const bool sampled = sampling->temperature > 0.0f, dsampled = sampled && draft_sampled && B > 1;
    RoundInput in;
    memset(&in, 0, sizeof in);
    in.t0 = 0;
    in.forced = forced;
    in.inv_t = sampled ? 1.0f / sampling->temperature : 1.0f;
    in.top_k = sampling->top_k;
    in.top_p = sampling->top_p;
    in.seq = 1;
    for (int i = 0; i < B - 1 && dsampled; i++)
        in.du[i] = draft_uniforms[i];
    for (int i = 0; i < B && sampled; i++)
        in.vu[i] = verify_uniforms[i];
    CUDA_CHECK(cudaMemcpy(d_in, &in, sizeof in, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemset(lens, 0, sizeof *lens));
    CUDA_CHECK(cudaMemcpy(tl, target_logits, (size_t)B * V * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dl, drafter_logits, (size_t)B * V * sizeof(float), cudaMemcpyHostToDevice));
    std::vector<int> h_step(1 + B, 0);
    for (int i = 1; i < B; i++)
        h_step[1 + i] = drafts[i - 1];
    CUDA_CHECK(cudaMemcpy(step, h_step.data(), (1 + B) * sizeof(int), cudaMemcpyHostToDevice));
    cudaStream_t st = 0;
    if (cuda_argmax(tl, V, V, B, 0, targ, st, err) || cuda_argmax(dl, V, V, B, 0, darg, st, err))
        return -1;
    const RoundShape sh = {B, sampled, dsampled, false};
    const RoundRows rows = {step, d_in, lens, tl, V, targ, dl, V, darg, tstats, dstats, res};
    // given drafts stay as they are; sampled ones are drawn like a round's
    if ((dsampled && launch_fill(rows, sh, V, st, err)) || launch_verify(rows, sh, V, st, err))
        return -1;
    CUDA_CHECK(cudaDeviceSynchronize());
    if (res->seq != 1)
        return mimo_fail(err, "round test: the accept kernel did not publish its result");
    for (int i = 0; i < B - 1; i++)
        drafts[i] = res->drafts[i];
    *accepted = res->accepted;
    *bonus = res->bonus;
    *uniforms_used = res->uniforms_used;
    return 0;
}
