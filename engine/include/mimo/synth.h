/* Synthetic checkpoints: deterministic from a seed (counter-based hash of tensor name and element
 * index), scaled so activations stay O(1), router balanced. The same rule is implemented in CUDA
 * to generate full-scale weights on the device, bit-identical to this one. */
#ifndef MIMO_SYNTH_H
#define MIMO_SYNTH_H

#include "mimo/config.h"
#include "mimo/tensor_source.h"

/* How element i of a synthetic tensor is drawn (exposed so the GPU generator can match it):
 *   u   = mimo_bits_to_unit_symmetric(mimo_hash2(stream, i)), stream = mimo_mix64(seed) ^ mimo_fnv1a64(name)
 *   f32/bf16/fp8 matrices: w = amplitude * u; fp8 stores round(w / s) with every block scale
 *     s = amplitude / 448 (so no reduction is needed); bf16 rounds to nearest even.
 *   experts: values are drawn as MXFP4 codes first (nibble = hash bits, scale byte fixed per tensor
 *     from amplitude), so FP8 and BF16 expert storage hold exactly the same values (the FP4
 *     ablation changes bytes only). */
float mimo_synth_amplitude(const mimo_config *cfg, const char *tensor_suffix, int layer);

/* Builds every target tensor into an in-memory source (small presets; the caller frees). */
int mimo_synth_target(const mimo_config *cfg, uint64_t seed, mimo_tensor_source **out, mimo_error *err);

/* Writes the target's config.json + sharded safetensors + index to dir (the drafter and the
 * tokenizer are written beside it by `mimo-bench synth`: see dflash.h and tokenizer.h). */
int mimo_synth_write_dir(const mimo_config *cfg, uint64_t seed, const char *dir, mimo_error *err);

#endif
