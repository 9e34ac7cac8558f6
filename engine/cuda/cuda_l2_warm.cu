// Warming L2 with a GEMV's weights ahead of it (cuda_ops.cuh, cuda_l2_warm). The step program forks
// this kernel onto a side stream while its latency-bound ops run (RoPE, attention, routing), so that
// memory streams weights that a later GEMV then reads from L2. Only a hint: results never depend on it.
#include "cuda_ops.cuh"

#include <stdlib.h>

namespace {

constexpr int WARM_THREADS = 512;
constexpr int WARM_UNROLL = 4;

// mode 0: 16-byte loads through L2 (the kernel ends once the bytes are there); 1: the same loads with an
// L2 evict-last policy; 2: prefetch.global.L2 per 128-byte line (fire and forget).
__global__ void __launch_bounds__(WARM_THREADS) l2_warm_kernel(const uint4 *p, size_t n16, int mode, unsigned *sink)
{
    const size_t stride = (size_t)gridDim.x * WARM_THREADS;
    size_t i = (size_t)blockIdx.x * WARM_THREADS + threadIdx.x;
    if (mode == 2) {
        // a line is 8 vectors: thread i touches line i
        for (size_t line = i; line * 8 < n16; line += stride)
            asm volatile("prefetch.global.L2 [%0];" ::"l"(p + line * 8));
        return;
    }
    uint64_t policy = 0;
    if (mode == 1)
        asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(policy));
    unsigned acc = 0;
    for (; i < n16; i += stride * WARM_UNROLL) {
        uint4 v[WARM_UNROLL];
#pragma unroll
        for (int u = 0; u < WARM_UNROLL; u++) {
            const size_t j = i + (size_t)u * stride;
            v[u] = make_uint4(0, 0, 0, 0);
            if (j < n16) {
                if (mode == 1)
                    asm volatile("ld.global.L2::cache_hint.v4.u32 {%0,%1,%2,%3}, [%4], %5;"
                                 : "=r"(v[u].x), "=r"(v[u].y), "=r"(v[u].z), "=r"(v[u].w)
                                 : "l"(p + j), "l"(policy));
                else
                    asm volatile("ld.global.cg.v4.u32 {%0,%1,%2,%3}, [%4];"
                                 : "=r"(v[u].x), "=r"(v[u].y), "=r"(v[u].z), "=r"(v[u].w)
                                 : "l"(p + j));
            }
        }
#pragma unroll
        for (int u = 0; u < WARM_UNROLL; u++)
            acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
    // the loads must complete before the kernel does: their values feed a store that almost never happens
    if (acc == 0x9e3779b9u)
        atomicAdd(sink, 1u);
}

} // namespace

int cuda_l2_warm(const void *p, size_t bytes, unsigned *sink, cudaStream_t st, mimo_error *err)
{
    const GemvKnobs &kn = cuda_gemv_knobs();
    const size_t n16 = bytes / 16;
    if (n16 == 0)
        return 0;
    static int sm_count = 0;
    if (!sm_count) {
        int device = 0;
        CUDA_CHECK(cudaGetDevice(&device));
        CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device));
    }
    int blocks = kn.l2_warm_blocks > 0 ? kn.l2_warm_blocks : sm_count;
    const size_t most = (n16 + WARM_THREADS - 1) / WARM_THREADS;
    if ((size_t)blocks > most)
        blocks = (int)most;
    return cuda_launch("l2_warm_kernel", err, l2_warm_kernel, dim3(blocks), dim3(WARM_THREADS), 0, st, (const uint4 *)p,
                       n16, kn.l2_warm_mode, sink);
}
