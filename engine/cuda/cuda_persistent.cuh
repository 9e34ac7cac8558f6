// Persistent execution of one-position steps (cuda_persistent.cu).
#ifndef MIMO_CUDA_PERSISTENT_CUH
#define MIMO_CUDA_PERSISTENT_CUH

struct CudaEngine;
struct CudaPersistent;

// Whether a step of n positions runs in the persistent kernel: --exec persistent, one position, with the
// lm head (other steps replay graphs as in graph mode).
bool cuda_persistent_runs(const CudaEngine *e, int n, bool with_head);
// Records the step on first use (not while the stream is being captured: the upload synchronises).
int cuda_persistent_prepare(CudaEngine *e, int n, mimo_error *err);
// Enqueues one step (its input already on the device; recorded on first use): zeroes the counters,
// launches the kernel, copies its status back for cuda_persistent_check (and, with phase stamps on or
// MIMO_CUDA_PERSIST_PROFILE=1, its timestamps). Capturable once prepared.
int cuda_persistent_step(CudaEngine *e, int n, mimo_error *err);
// After a step that ran in the persistent kernel, once the stream has synchronised (or a later result of
// the stream was read): an error where one of its waits timed out; else, with phase stamps on, the step's
// phases into the engine's log (so: once per persistent step, never after other steps).
int cuda_persistent_check(CudaEngine *e, mimo_error *err);
void cuda_persistent_destroy(CudaPersistent *p);

#endif
