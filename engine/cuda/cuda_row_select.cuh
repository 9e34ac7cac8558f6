// Block-wide selections over one row of probabilities (one 1024-thread block per row; every thread
// calls): prefix sums, and the kept set of top-k / top-p sampling — the host's mimo_sampling_probs
// (engine/api/sampling.c): top-k, renormalise, then the shortest prefix of the ranking whose
// renormalised mass reaches top_p.
//
// The ranking is by probability, highest first, equal probabilities by lower index (the host's
// order). A kept set is a prefix of it, so its last member tells it: (cut_key, cut_index) keeps v
// when key(p(v)) > cut_key, or key == cut_key and v <= cut_index, where key is the float's bits
// (non-negative floats order like their bits).
//
// The prefix is found by a radix select over the keys, 5 bits a pass: each pass counts and weighs
// the bucket still holding the cut, digit by digit, with warp ballots and reductions (no atomics),
// until that bucket holds at most ROW_SELECT_CANDIDATES elements, which are then sorted in shared
// memory and walked. Masses are fixed point (units of 2^-52), so every sum is exact and independent
// of order: the selection is deterministic, and graph replays equal eager runs bit for bit.
#pragma once

#include <limits.h>
#include <stdint.h>

#define ROW_SELECT_CANDIDATES 2048
#define ROW_SELECT_FX_ONE 4503599627370496.0   // 2^52: a probability's fixed-point unit

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

__device__ __forceinline__ unsigned long long prob_fx(float p) { return (unsigned long long)((double)p * ROW_SELECT_FX_ONE); }

// A prefix of the ranking: its last member and its length and mass (fixed point).
struct RankedPrefix {
    uint32_t key;
    int index;
    unsigned long long count, mass;
};

// Fixed-point mass of the whole row (integer sums: the same whatever the order).
template <class Prob> __device__ unsigned long long block_total_fx(const Prob &prob, int V)
{
    __shared__ unsigned long long total;
    if (threadIdx.x == 0)
        total = 0;
    __syncthreads();
    unsigned long long s = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x)
        s += prob_fx(prob(v));
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        s += __shfl_xor_sync(0xFFFFFFFFu, s, o);
    if (threadIdx.x % 32 == 0)
        atomicAdd(&total, s);
    __syncthreads();
    const unsigned long long t = total;
    __syncthreads();
    return t;
}

// The shortest prefix of the ranking whose length (by_mass false) or fixed-point mass (true)
// reaches target (1 <= target <= the row's count or mass).
template <class Prob>
__device__ RankedPrefix block_ranked_prefix(const Prob &prob, int V, bool by_mass, unsigned long long target)
{
    __shared__ unsigned int bin_count[32][32];          // [warp][digit]
    __shared__ unsigned long long bin_mass[32][32];
    __shared__ unsigned long long cand[ROW_SELECT_CANDIDATES];   // key << 32 | ~index: sorts descending
    __shared__ uint32_t s_prefix;
    __shared__ unsigned long long s_base_count, s_base_mass, s_rem, s_bucket;
    __shared__ int s_n;
    __shared__ RankedPrefix s_out;
    const unsigned FULL = 0xFFFFFFFFu;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();   // a previous call's readers are done with the shared state
    if (threadIdx.x == 0) {
        s_prefix = 0;
        s_base_count = s_base_mass = 0;
        s_rem = target;
        s_bucket = (unsigned long long)V;
    }
    __syncthreads();

    // Radix passes: bits >= hi of the bucket's keys are fixed (bit 31, the sign, is 0 for all).
    int hi = 31;
    while (hi > 0 && s_bucket > ROW_SELECT_CANDIDATES) {
        const int width = hi < 5 ? hi : 5, shift = hi - width;
        const uint32_t prefix = s_prefix;
        unsigned int my_count = 0;   // lane d: digit d of this warp's elements
        unsigned long long my_mass = 0;
        for (int base = 0; base < V; base += blockDim.x) {
            const int v = base + threadIdx.x;
            float p = 0.0f;
            bool in = false;
            if (v < V) {
                p = prob(v);
                in = (__float_as_uint(p) >> hi) == (prefix >> hi);
            }
            const unsigned digit = (__float_as_uint(p) >> shift) & ((1u << width) - 1u);
            unsigned present = __reduce_or_sync(FULL, in ? 1u << digit : 0u);
            const unsigned long long fx = in ? prob_fx(p) : 0ull;
            while (present) {
                const unsigned d = (unsigned)__ffs(present) - 1u;
                present &= present - 1u;
                const bool mine = in && digit == d;
                const unsigned c = (unsigned)__popc(__ballot_sync(FULL, mine));
                // fx <= 2^52: two 26-bit halves, each summed over 32 lanes within 32 bits
                const unsigned lo = __reduce_add_sync(FULL, mine ? (unsigned)(fx & 0x3FFFFFFull) : 0u);
                const unsigned up = __reduce_add_sync(FULL, mine ? (unsigned)(fx >> 26) : 0u);
                if (lane == (int)d) {
                    my_count += c;
                    my_mass += ((unsigned long long)up << 26) + lo;
                }
            }
        }
        bin_count[warp][lane] = my_count;
        bin_mass[warp][lane] = my_mass;
        __syncthreads();
        if (warp == 0) {
            unsigned long long c = 0, m = 0;
            for (int w = 0; w < (int)(blockDim.x / 32); w++) {
                c += bin_count[w][lane];
                m += bin_mass[w][lane];
            }
            unsigned long long sc = c, sm = m;   // over digits >= lane
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                const unsigned long long uc = __shfl_down_sync(FULL, sc, o), um = __shfl_down_sync(FULL, sm, o);
                if (lane + o < 32) {
                    sc += uc;
                    sm += um;
                }
            }
            const unsigned long long above = by_mass ? sm - m : sc - c, upto = by_mass ? sm : sc, rem = s_rem;
            const unsigned crossing = __ballot_sync(FULL, above < rem && upto >= rem);   // one digit: the bucket reaches rem
            __syncwarp();   // every lane has read s_rem before one lane writes it
            if (lane == (crossing ? __ffs(crossing) - 1 : 0)) {
                s_prefix |= (uint32_t)lane << shift;
                s_base_count += sc - c;
                s_base_mass += sm - m;
                s_rem = rem - above;
                s_bucket = c;
            }
        }
        __syncthreads();
        hi = shift;
    }

    const uint32_t prefix = s_prefix;
    const unsigned long long rem = s_rem, base_count = s_base_count, base_mass = s_base_mass;
    if (s_bucket <= ROW_SELECT_CANDIDATES) {
        // The bucket's elements, sorted by (key desc, index asc), walked until the target is reached.
        if (threadIdx.x == 0)
            s_n = 0;
        __syncthreads();
        for (int v = threadIdx.x; v < V; v += blockDim.x) {
            const uint32_t key = __float_as_uint(prob(v));
            if ((key >> hi) == (prefix >> hi))
                cand[atomicAdd(&s_n, 1)] = (unsigned long long)key << 32 | (0xFFFFFFFFu - (uint32_t)v);
        }
        __syncthreads();
        const int n = s_n;
        int n2 = 1;
        while (n2 < n)
            n2 <<= 1;
        for (int i = n + threadIdx.x; i < n2; i += blockDim.x)
            cand[i] = 0ull;   // below every element
        __syncthreads();
        for (int k = 2; k <= n2; k <<= 1)   // bitonic sort, descending
            for (int j = k >> 1; j > 0; j >>= 1) {
                for (int i = threadIdx.x; i < n2; i += blockDim.x) {
                    const int ixj = i ^ j;
                    if (ixj > i) {
                        const unsigned long long a = cand[i], b = cand[ixj];
                        if ((i & k) == 0 ? a < b : a > b) {
                            cand[i] = b;
                            cand[ixj] = a;
                        }
                    }
                }
                __syncthreads();
            }
        if (warp == 0) {
            unsigned long long run_c = 0, run_m = 0;
            for (int b0 = 0; b0 < n; b0 += 32) {
                const int i = b0 + lane;
                const unsigned long long e = i < n ? cand[i] : 0ull;
                const uint32_t key = (uint32_t)(e >> 32);
                unsigned long long ic = i < n ? 1ull : 0ull, im = i < n ? prob_fx(__uint_as_float(key)) : 0ull;
#pragma unroll
                for (int o = 1; o < 32; o <<= 1) {
                    const unsigned long long uc = __shfl_up_sync(FULL, ic, o), um = __shfl_up_sync(FULL, im, o);
                    if (lane >= o) {
                        ic += uc;
                        im += um;
                    }
                }
                const unsigned reached = __ballot_sync(FULL, i < n && (by_mass ? run_m + im : run_c + ic) >= rem);
                if (reached) {
                    if (lane == __ffs(reached) - 1)
                        s_out = RankedPrefix{key, (int)(0xFFFFFFFFu - (uint32_t)e), base_count + run_c + ic, base_mass + run_m + im};
                    break;
                }
                run_c += __shfl_sync(FULL, ic, 31);
                run_m += __shfl_sync(FULL, im, 31);
            }
        }
    } else {
        // Every key of the bucket is the prefix (all 31 bits fixed): ties, taken in index order.
        const unsigned long long fx = prob_fx(__uint_as_float(prefix));
        const unsigned long long need = by_mass ? (fx ? (rem + fx - 1) / fx : 1ull) : rem;
        const int chunk = (V + blockDim.x - 1) / blockDim.x;
        const int lo = min(V, (int)threadIdx.x * chunk), hi_v = min(V, lo + chunk);
        int ties = 0;
        for (int v = lo; v < hi_v; v++)
            ties += __float_as_uint(prob(v)) == prefix;
        double total;
        const double before = block_exclusive_scan((double)ties, &total);
        if (before < (double)need && before + ties >= (double)need) {
            unsigned long long seen = (unsigned long long)before;
            for (int v = lo; v < hi_v; v++)
                if (__float_as_uint(prob(v)) == prefix && ++seen == need) {
                    s_out = RankedPrefix{prefix, v, base_count + need, base_mass + need * fx};
                    break;
                }
        }
    }
    __syncthreads();
    return s_out;
}
