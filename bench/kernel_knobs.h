/* The CUDA backend's environment knobs: every variable engine/cuda/ reads that changes what runs or how it
 * is timed (README "Environment knobs"). `mimo-bench kernels` records the ones that are set (`gemv_knobs` in
 * its JSON), so that an A/B run's file says what it ran; tests/bench/test_kernel_knobs.c holds this list to
 * the engine's getenv calls, so that a new knob cannot go unrecorded. */
#ifndef MIMO_BENCH_KERNEL_KNOBS_H
#define MIMO_BENCH_KERNEL_KNOBS_H

#include <stddef.h>

extern const char *const mimo_cuda_knobs[];
extern const size_t mimo_cuda_knob_count;

#endif
