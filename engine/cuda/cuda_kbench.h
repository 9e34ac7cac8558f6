/* Kernel roofline benchmarks on the GPU (`mimo-bench kernels`): a streaming-read calibration
 * kernel, every weight-streaming kernel at one rank's shapes of a preset, and whole-step times of the
 * shard replay. Plain C interface; bench/cmd_kernels.c turns the result into JSON. */
#ifndef MIMO_CUDA_KBENCH_H
#define MIMO_CUDA_KBENCH_H

#include <stdbool.h>
#include "mimo/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MIMO_KBENCH_MAX_ROWS 128
#define MIMO_KBENCH_MAX_TOKENS 8
#define MIMO_KBENCH_DEFAULT_CONTEXT 256

typedef struct {
    const char *preset;
    int shard_rank, shard_count;
    int tokens[MIMO_KBENCH_MAX_TOKENS];
    int n_tokens;
    int layers;          /* whole-step replay: 0 = all layers (or as many as fit), else the first K */
    int reps;            /* timed repetitions per measurement (median reported) */
    int context;         /* whole steps: positions already in the cache when a step runs (0: 256) */
    bool steps;          /* also time whole steps */
    bool steps_only;     /* no kernel rows: the calibration and whole steps only */
} mimo_kbench_options;

typedef struct {
    char   name[48];      /* qkv_proj, o_proj, dense_gate_up, dense_down, router, expert_gate_up, expert_down, lm_head, step_* */
    char   format[8];
    int    rows, cols, tokens;
    char   exec[12];      /* steps: eager | graph; kernels: "" */
    int    layers;        /* steps: layers replayed */
    double median_us, bytes, gbps, ratio;   /* ratio = gbps / calibration (kernels) or roofline / time (steps) */
    double chained_us, chained_ratio;       /* kernels: the same batch with each launch PDL-chained to the one
                                               before, as inside a step; ratio to calibration */
} mimo_kbench_row;

/* One way a kernel waits for the kernel before it (mimo_kbench_result::boundary). */
typedef struct {
    const char *name;      /* pdl_wait | counter_poll | stream_order */
    double release_us;     /* the previous kernel's last block ending -> this kernel's first block past its wait (median) */
    double last_block_us;  /* ... -> its last block past the wait (median) */
    double per_kernel_us;  /* the chain's time per kernel (graph replay, CUDA events), busy time included */
} mimo_kbench_boundary;
#define MIMO_KBENCH_BOUNDARY_MODES 3
#define MIMO_KBENCH_BOUNDARY_KERNELS 400
#define MIMO_KBENCH_BOUNDARY_BUSY_US 3.0

typedef struct {
    char   device[128];
    int    sm_count;
    double l2_mb, mem_gb;
    double calibration_gbps;       /* streaming read, 16-byte loads, 1 GiB */
    double copy_gbps;              /* cudaMemcpy device to device, read + write counted */
    /* kernel boundaries: a chain of MIMO_KBENCH_BOUNDARY_KERNELS kernels of one block per SM, each busy
     * MIMO_KBENCH_BOUNDARY_BUSY_US on every block, replayed as a CUDA graph, with the dependent waiting by
     * griddepcontrol.wait (programmatic dependent launch), by polling a counter its predecessor's blocks bump
     * (fence + atomic), or launched in plain stream order */
    mimo_kbench_boundary boundary[MIMO_KBENCH_BOUNDARY_MODES];
    int    n_rows;
    mimo_kbench_row rows[MIMO_KBENCH_MAX_ROWS];
    char   note[256];
} mimo_kbench_result;

int mimo_cuda_kernel_bench(const mimo_kbench_options *o, mimo_kbench_result *r, mimo_error *err);

#ifdef __cplusplus
}
#endif

#endif
