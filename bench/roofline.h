/* The roofline of one decode step (HARNESS.md, PERFORMANCE.md): the bytes a step must stream —
 * weights actually touched plus the KV cache read — divided by a streaming bandwidth measured in the
 * same run. A verify of B tokens touches the union of the experts its tokens route to; with uniform
 * routing of k of E experts per token the expected number of distinct experts per layer is
 * E * (1 - (1 - k/E)^B). */
#ifndef MIMO_BENCH_ROOFLINE_H
#define MIMO_BENCH_ROOFLINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "mimo/config.h"
#include "mimo/dflash.h"

typedef struct {
    double attention, router, experts, shared_experts, dense_mlp, norms, embed_rows, lm_head, kv_read;
    double drafter;              /* the DFlash drafter's pass (0 without DFlash) */
    double total;
    double expected_experts_per_layer;
} mimo_step_bytes;

/* Bytes one step streams: the target over n_tokens positions (1 without DFlash, B for a verify) on
 * layers 0..layers_run-1, reading context_len cached positions (SWA layers at most their window),
 * kv_elem_bytes per cached element; shard_count > 1 divides the tensor-parallel parts (attention,
 * MLP, experts, lm_head, KV) by the shard count. drafter may be NULL. */
void mimo_roofline_step_bytes(const mimo_config *cfg, int layers_run, int n_tokens, double context_len,
                              int kv_elem_bytes, int shard_count, const mimo_drafter_config *drafter,
                              mimo_step_bytes *out);

/* Expected distinct experts per layer touched by n_tokens tokens routing top-k of E uniformly. */
double mimo_roofline_expected_experts(int n_experts, int top_k, int n_tokens);

/* The calibration hook: streaming bandwidth of the device in GB/s, measured now. Returns false with
 * why on builds/backends without a GPU ("no GPU calibration on the cpu backend"). method names how. */
bool mimo_roofline_calibrate(int device, double *gbps, char *method, size_t method_size, char *why, size_t why_size);

/* The results "roofline" object for one configuration. calibration_gbps / measured_step_ms may be
 * NaN (then null with why_calibration / "no rounds measured"). */
json_t *mimo_roofline_json(const mimo_step_bytes *b, int n_tokens, double context_len, int kv_elem_bytes,
                           double calibration_gbps, const char *calibration_method, const char *why_calibration,
                           double measured_step_ms);

#endif
