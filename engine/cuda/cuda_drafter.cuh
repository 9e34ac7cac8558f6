// The DFlash drafter on the GPU (internal to the CUDA backend, which wires these into its
// mimo_backend_ops). Mirrors engine/cpu/cpu_drafter.c, the reference it is judged against.
#ifndef MIMO_CUDA_DRAFTER_CUH
#define MIMO_CUDA_DRAFTER_CUH

#include "cuda_engine.cuh"

// Uploads the drafter's weights and allocates its context K/V cache (max_context positions per
// layer, f32); replaces a drafter attached before. Refused on a shard (shard_count > 1).
int  cuda_drafter_attach(CudaEngine *e, const mimo_drafter_weights *w, mimo_error *err);
void cuda_drafter_destroy(CudaDrafter *d);
// n positions of target features [n, n_target_layers * hidden] from host memory -> fc ->
// hidden_norm -> each layer's context K/V at positions length..length+n-1.
int  cuda_drafter_append(CudaEngine *e, const float *target_hidden, int n, mimo_error *err);
int  cuda_drafter_truncate(CudaEngine *e, int n_context, mimo_error *err);
int  cuda_drafter_length(const CudaEngine *e);
// One pass over the block tokens at positions length..length+B-1: logits / argmax for all B.
int  cuda_drafter_draft(CudaEngine *e, const int32_t *block, int B, mimo_forward_out *out, mimo_error *err);

#endif
