/* Synthetic checkpoints: deterministic from a seed (counter-based hash of tensor name and element
 * index), scaled so activations stay O(1), router balanced. The same rule is implemented in CUDA
 * to generate full-scale weights on the device, bit-identical to this one. */
#ifndef MIMO_SYNTH_H
#define MIMO_SYNTH_H

#include "mimo/config.h"
#include "mimo/tensor_source.h"

/* How element i (plain row-major index) of a synthetic tensor is drawn (the full rule, with every
 * constant, is at the top of engine/checkpoint/synth.c; the GPU generator matches it bit for bit):
 *   bits = mimo_hash2(stream, i), stream = mimo_mix64(seed) ^ mimo_fnv1a64(weight name)
 *   u    = mimo_bits_to_unit_symmetric(bits);  a = mimo_synth_amplitude(...) (a power of two)
 *   f32/bf16 matrices: a * u (bf16 rounds to nearest even);
 *   fp8 matrices: fp8(u * 256) with every 128x128 block scale a / 256;
 *   experts (and any MXFP4 matrix): E2M1 code = bits >> 60 with scale byte 125 + log2(a) for every
 *     block, so FP8 (scale 2^(e-127), fp8 = the E2M1 value) and BF16/F32 expert storage hold exactly
 *     the same values (the FP4 ablation changes bytes only);
 *   norms 1 + u/16, sinks u, router correction bias 0. */
/* tensor_name: the weight's full name (e.g. "model.layers.3.self_attn.o_proj.weight"); layer: its layer
 * (-1 for embed/lm_head/final norm). */
float mimo_synth_amplitude(const mimo_config *cfg, const char *tensor_suffix, int layer);

/* Builds every target tensor into an in-memory source (small presets; the caller frees). */
int mimo_synth_target(const mimo_config *cfg, uint64_t seed, mimo_tensor_source **out, mimo_error *err);

/* Writes the target's config.json + sharded safetensors + index to dir (the drafter and the
 * tokenizer are written beside it by `mimo-bench synth`: see dflash.h and tokenizer.h). */
int mimo_synth_write_dir(const mimo_config *cfg, uint64_t seed, const char *dir, mimo_error *err);

#endif
