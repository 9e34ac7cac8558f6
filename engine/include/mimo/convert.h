/* Offline re-encoding of expert weights (the FP4 ablation on disk, `mimo-bench convert`). Only the
 * routed and shared experts change storage; every other tensor is copied byte for byte. */
#ifndef MIMO_CONVERT_H
#define MIMO_CONVERT_H

#include "mimo/config.h"
#include "mimo/tensor_source.h"

/* Re-encodes the matrix "X.weight" [rows, cols] of src (F32, BF16, FP8 + weight_scale_inv, or
 * MXFP4 + weight_scale) into `to`, adding "X.weight" (+ its scale tensor) to dst. Encoding rules:
 *   bf16 / f32: decoded value rounded to nearest even (exact for MXFP4 and power-of-two-scaled FP8);
 *   fp8:   per 128x128 block the power-of-two scale 2^ceil(log2(amax/448)), values rounded to E4M3
 *          (exact for every MXFP4 block whose exponents span less than ~14 binades);
 *   mxfp4: the OCP rule per 32 (mimo_mxfp4_quantize) — exact for values that came from MXFP4.
 * *inexact (may be NULL) is increased by the number of elements whose value changed. */
int mimo_convert_matrix(mimo_tensor_source *src, const char *weight_name, int64_t rows, int64_t cols,
                        mimo_weight_format to, mimo_tensor_source *dst, uint64_t *inexact, mimo_error *err);

/* IN checkpoint dir -> OUT dir with experts stored as `experts`: config.json (storage updated),
 * re-sharded safetensors (one shard per layer) + index, and drafter/ and tokenizer.json copied
 * when present. OUT must differ from IN. */
int mimo_convert_checkpoint(const char *in_dir, const char *out_dir, mimo_weight_format experts,
                            uint64_t *inexact, mimo_error *err);

#endif
