// Hopper's bulk asynchronous copy (the TMA unit's one-dimensional form, and its tiled forms of two to four
// dimensions through a tensor map) from global into shared memory, completed on a shared-memory mbarrier: one thread
// starts the copy of a contiguous byte range (or a tensor's box), any thread waits for it. Used where a kernel loads weights (which no kernel writes) before it waits on its
// predecessor under programmatic dependent launch, so that the bytes stream in while the kernels before
// it run (gemv1_staged_kernel), and for a producer warp streaming weights through a ring of shared-memory
// stages (BulkRing: expert_glu_bulk_kernel, expert_down_bulk_kernel, dense_bulk_kernel). Tensor maps:
// cuda_tensor_map.cuh.
#ifndef MIMO_CUDA_BULK_COPY_CUH
#define MIMO_CUDA_BULK_COPY_CUH

#include <stdint.h>

__device__ __forceinline__ uint32_t smem_address(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

// A barrier expecting `count` arrivals a phase (and the bytes they announce).
__device__ __forceinline__ void bulk_barrier_init_count(uint64_t *bar, uint32_t count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_address(bar)), "r"(count) : "memory");
}

// Makes the calling thread's barrier initialisations visible to the copy engine.
__device__ __forceinline__ void bulk_barrier_init_fence()
{
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

// A barrier expecting one arrival (the copying thread's), visible to the copy engine after the fence.
__device__ __forceinline__ void bulk_barrier_init(uint64_t *bar)
{
    bulk_barrier_init_count(bar, 1);
    bulk_barrier_init_fence();
}

// The calling thread's arrival on bar, announcing `bytes` more to land in its current phase.
__device__ __forceinline__ void bulk_barrier_expect(uint64_t *bar, uint32_t bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_address(bar)), "r"(bytes)
                 : "memory");
}

// Orders the calling thread's earlier shared-memory accesses (generic proxy) before later bulk copies
// (the async proxy) into the same bytes: a consumer done reading a stage, before it releases it for refill.
__device__ __forceinline__ void bulk_proxy_fence() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

// A plain arrival on bar (no bytes).
__device__ __forceinline__ void bulk_barrier_arrive(uint64_t *bar)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_address(bar)) : "memory");
}

// Copies bytes (a multiple of 16; both addresses 16-byte aligned) from src to dst, counted against the
// bytes bar's current phase expects (bulk_barrier_expect), without an arrival of its own.
__device__ __forceinline__ void bulk_copy_counted(void *dst, const void *src, uint32_t bytes, uint64_t *bar)
{
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                     smem_address(dst)),
                 "l"(src), "r"(bytes), "r"(smem_address(bar))
                 : "memory");
}

// Copies bytes (a multiple of 16; both addresses 16-byte aligned) from src to dst, completing bar's
// current phase: the calling thread arrives on bar expecting that many bytes.
__device__ __forceinline__ void bulk_copy_to_shared(void *dst, const void *src, uint32_t bytes, uint64_t *bar)
{
    bulk_barrier_expect(bar, bytes);
    bulk_copy_counted(dst, src, bytes, bar);
}

// Copies a box of a two-dimensional tensor (the tensor map's box at element column col, row row; parts past
// the tensor's end land as zeros) to dst, counted against the bytes bar's current phase expects. map: the
// address of a __grid_constant__ kernel parameter.
__device__ __forceinline__ void bulk_tensor_copy_2d(void *dst, const void *map, int col, int row, uint64_t *bar)
{
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
                 "%3}], [%4];" ::"r"(smem_address(dst)),
                 "l"((uint64_t)map), "r"(col), "r"(row), "r"(smem_address(bar))
                 : "memory");
}

// The same for a three-dimensional tensor: the box at element column col, row row, matrix mat.
__device__ __forceinline__ void bulk_tensor_copy_3d(void *dst, const void *map, int col, int row, int mat,
                                                    uint64_t *bar)
{
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
                 "%3, %4}], [%5];" ::"r"(smem_address(dst)),
                 "l"((uint64_t)map), "r"(col), "r"(row), "r"(mat), "r"(smem_address(bar))
                 : "memory");
}

// The same for a four-dimensional tensor: the box at element column col, row row, and coordinates c2, c3.
__device__ __forceinline__ void bulk_tensor_copy_4d(void *dst, const void *map, int col, int row, int c2, int c3,
                                                    uint64_t *bar)
{
    asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, "
                 "%3, %4, %5}], [%6];" ::"r"(smem_address(dst)),
                 "l"((uint64_t)map), "r"(col), "r"(row), "r"(c2), "r"(c3), "r"(smem_address(bar))
                 : "memory");
}

// Starts fetching a tensor map (the address of a __grid_constant__ kernel parameter) into the copy engine's
// cache, so that the block's first tensor copy does not wait for it.
__device__ __forceinline__ void bulk_tensor_map_prefetch(const void *map)
{
    asm volatile("prefetch.tensormap [%0];" ::"l"((uint64_t)map) : "memory");
}

// A box landed with the 128-byte swizzle holds 128-byte rows whose 16-byte unit u sits at unit u ^ (row mod
// 8). The byte offset of lane (g, t)'s word (bytes 4 t..) of a row whose row mod 8 is g, unit 0 before the
// swizzle, is swizzle128_row_offset(row, g, t); unit u of it is swizzle128_unit(that, u): a lane reading
// unit u of its row g of 8 consecutive rows hits 32 distinct banks.
__device__ __forceinline__ uint32_t swizzle128_row_offset(int row, int g, int t)
{
    return (uint32_t)row * 128 + ((uint32_t)g << 4) + 4 * t;
}
__device__ __forceinline__ uint32_t swizzle128_unit(uint32_t row_offset, int u) { return row_offset ^ ((uint32_t)u << 4); }

// Waits until bar's phase `parity` has completed (the copies on it have landed).
__device__ __forceinline__ void bulk_barrier_wait(uint64_t *bar, uint32_t parity)
{
    uint32_t done = 0;
    while (!done)
        asm volatile("{\n\t.reg .pred p;\n\t"
                     "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n\t"
                     "selp.u32 %0, 1, 0, p;\n\t}"
                     : "=r"(done)
                     : "r"(smem_address(bar)), "r"(parity)
                     : "memory");
}

// A ring of STAGES shared-memory stages that one producer fills by bulk copies and CONSUMERS warps read:
// stage q (a count over the kernel's stages) uses buffer q mod STAGES; full[b] completes when the producer's
// announced bytes have landed, empty[b] when every consumer warp is done with the buffer.
template <int STAGES, int CONSUMERS> struct BulkRing {
    uint64_t *full, *empty;   // STAGES barriers each

    // By one thread, before the block's barrier that makes it visible.
    __device__ __forceinline__ void init() const
    {
        for (int s = 0; s < STAGES; s++) {
            bulk_barrier_init_count(full + s, 1);             // the producer's announcement
            bulk_barrier_init_count(empty + s, CONSUMERS);    // every consumer warp done with it
        }
        bulk_barrier_init_fence();
    }
    // The producer: waits until stage q's buffer is free (its previous use released), and returns the buffer.
    __device__ __forceinline__ int acquire(int q) const
    {
        const int buf = q % STAGES, use = q / STAGES;
        if (use > 0)
            bulk_barrier_wait(empty + buf, (use - 1) & 1);
        return buf;
    }
    // A consumer warp: waits until stage q has landed, and returns its buffer.
    __device__ __forceinline__ int wait_full(int q) const
    {
        const int buf = q % STAGES;
        bulk_barrier_wait(full + buf, (q / STAGES) & 1);
        return buf;
    }
    // A consumer warp done reading stage q: its reads ordered before the producer's next copies there.
    __device__ __forceinline__ void release(int q, int lane) const
    {
        bulk_proxy_fence();
        __syncwarp();
        if (lane == 0)
            bulk_barrier_arrive(empty + q % STAGES);
    }
};

// A barrier of a block's first THREADS threads only (named barrier 1): the consumer warps of a ring, while
// the producer keeps its own pace.
template <int THREADS> __device__ __forceinline__ void consumers_sync()
{
    asm volatile("bar.sync 1, %0;" ::"n"(THREADS) : "memory");
}

#endif
