// The DFlash drafter on the GPU (internal to the CUDA backend, which wires these into its
// mimo_backend_ops). Mirrors engine/cpu/cpu_drafter.c, the reference it is judged against.
#ifndef MIMO_CUDA_DRAFTER_CUH
#define MIMO_CUDA_DRAFTER_CUH

#include "cuda_engine.cuh"

// Uploads the drafter's weights and allocates its context K/V cache (max_context positions per
// layer, f32); replaces a drafter attached before. Refused on a shard (shard_count > 1).
int  cuda_drafter_attach(CudaEngine *e, const mimo_drafter_weights *w, mimo_error *err);
// The same with allow_shard: on a shard the drafter's head is the shard's slice of the lm head
// (the kernel benchmark's drafter pass; drafting itself needs the whole vocabulary).
int  cuda_drafter_attach_to(CudaEngine *e, const mimo_drafter_weights *w, bool allow_shard, mimo_error *err);
void cuda_drafter_destroy(CudaDrafter *d);
// n positions of target features [n, n_target_layers * hidden] from host memory -> fc ->
// hidden_norm -> each layer's context K/V at positions length..length+n-1.
int  cuda_drafter_append(CudaEngine *e, const float *target_hidden, int n, mimo_error *err);
int  cuda_drafter_truncate(CudaEngine *e, int n_context, mimo_error *err);
int  cuda_drafter_length(const CudaEngine *e);
// One pass over the block tokens at positions length..length+B-1: logits / argmax for all B.
int  cuda_drafter_draft(CudaEngine *e, const int32_t *block, int B, mimo_forward_out *out, mimo_error *err);

// ---- device-resident pieces of a decode round (cuda_round.cu) ----
// The drafter pass enqueued without copies or a sync: block (host) tells where MASK takes the mask
// embedding; the token ids come from d_block on the device when given, else from block; the block's
// first position is *d_pos on the device when given, else the host's context length. With head,
// logits [B][cuda_drafter_logits_ld] and argmax [B] stay on the device.
int  cuda_drafter_pass(CudaEngine *e, const int32_t *block, const int32_t *d_block, const int *d_pos, int B, bool head,
                       mimo_error *err);
const float   *cuda_drafter_logits(const CudaEngine *e);
const int32_t *cuda_drafter_argmax(const CudaEngine *e);
int  cuda_drafter_logits_ld(const CudaEngine *e);
int  cuda_drafter_mask_token(const CudaEngine *e);
// Bytes one drafter pass over B positions streams at the current context length (its layers, the lm
// head rows of this device, the context K/V it attends to, norms, embedding rows), and one append of
// B context positions (fc, each layer's k/v projections).
void cuda_drafter_bytes(const CudaEngine *e, int B, double *pass, double *append);
// Appends n (<= 16) context positions from the target's hidden-state outputs on the device
// (hidden [n_target_layers][rows_per_output][hidden]), enqueued only. Without d_pos they go at the host's
// context length, which advances; with d_pos at *d_pos on the device, and the caller keeps the host's
// length (cuda_drafter_set_length).
int  cuda_drafter_append_device(CudaEngine *e, const float *hidden, int rows_per_output, int n, const int *d_pos,
                                mimo_error *err);
int  cuda_drafter_set_length(CudaEngine *e, int n_context, mimo_error *err);
// The block attention's kernel (MIMO_CUDA_DRAFT_ATTN_GROUP): 1 (default) the query heads of a kv head and every
// block row over blocks of 8 (a row a warp) where the head width allows (draft_attn_group_kernel), 2 the same in
// one block a kv head and split, 0 a block a query head and row (draft_attn_split_kernel). Read on first use;
// tests set it.
int &cuda_draft_attn_group_knob();

#endif
