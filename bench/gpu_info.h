/* What the harness records about the GPU (environment block of the results file). Implemented in
 * gpu_info_cuda.c with the CUDA runtime C API when MIMO_HAVE_CUDA is defined; otherwise every query
 * says "no CUDA backend in this build". */
#ifndef MIMO_BENCH_GPU_INFO_H
#define MIMO_BENCH_GPU_INFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char     name[256];
    char     uuid_hash[17];        /* FNV-1a 64 of the UUID bytes, hex: identifies the card, not the host */
    int      sm_count;
    uint64_t memory_bytes;
    int      compute_major, compute_minor;
    int      driver_version;       /* cudaDriverGetVersion, e.g. 13000 */
    int      runtime_version;      /* cudaRuntimeGetVersion */
    int      sm_clock_khz;         /* cudaDevAttrClockRate (may be 0 on drivers that no longer report it) */
    int      memory_clock_khz;
    int      memory_bus_width_bits;
    int      nccl_version;         /* 0 when libnccl could not be loaded */
    int      cupti_version;        /* 0 when unavailable */
} mimo_gpu_info;

/* Number of visible CUDA devices; 0 with why filled when there are none or no CUDA in this build. */
int  mimo_gpu_count(char *why, size_t n);
/* Fills info for device; false (why filled) on failure. */
bool mimo_gpu_query(int device, mimo_gpu_info *info, char *why, size_t n);
/* Current SM / memory clocks in MHz (NVML-free: through the runtime attributes); false if unknown. */
bool mimo_gpu_clocks(int device, int *sm_mhz, int *mem_mhz, char *why, size_t n);

#endif
