/* Bytes per step and the bandwidth calibration hook (see roofline.h). */
#include "roofline.h"
#include "results_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double mimo_roofline_expected_experts(int n_experts, int top_k, int n_tokens)
{
    if (n_experts <= 0 || top_k <= 0 || n_tokens <= 0)
        return 0;
    if (top_k >= n_experts)
        return n_experts;
    return n_experts * (1.0 - pow(1.0 - (double)top_k / n_experts, n_tokens));
}

static double matrix_bytes(mimo_weight_format f, int64_t rows, int64_t cols)
{
    return (double)mimo_weight_format_bytes(f, rows, cols);
}

void mimo_roofline_step_bytes(const mimo_config *cfg, int layers_run, int n_tokens, double context_len,
                              int kv_elem_bytes, int shard_count, const mimo_drafter_config *drafter,
                              mimo_step_bytes *out)
{
    memset(out, 0, sizeof *out);
    const mimo_storage *s = &cfg->storage;
    const int64_t h = cfg->hidden_size;
    if (layers_run <= 0 || layers_run > cfg->num_layers)
        layers_run = cfg->num_layers;
    double tp = shard_count > 1 ? shard_count : 1;
    double experts_touched = mimo_roofline_expected_experts(cfg->n_routed_experts, cfg->experts_per_tok, n_tokens);
    out->expected_experts_per_layer = experts_touched;
    double norm_elem = s->norms == MIMO_WFMT_BF16 ? 2 : 4;

    for (int l = 0; l < layers_run; l++) {
        const mimo_attn_shape *a = mimo_layer_attn(cfg, l);
        out->attention += (matrix_bytes(s->qkv, mimo_qkv_rows(cfg, l), h) +
                           matrix_bytes(s->o_proj, h, (int64_t)a->n_heads * a->v_head_dim)) / tp;
        out->norms += 2 * h * norm_elem + (a->has_sink ? a->n_heads * norm_elem : 0);
        double ctx = context_len;
        if (a->window > 0 && ctx > a->window)
            ctx = a->window;
        out->kv_read += ctx * a->n_kv_heads * (double)(a->head_dim + a->v_head_dim) * kv_elem_bytes / tp;
        if (cfg->layer_is_moe[l]) {
            int64_t mi = cfg->moe_intermediate_size;
            double one_expert = 2 * matrix_bytes(s->experts, mi, h) + matrix_bytes(s->experts, h, mi);
            out->router += matrix_bytes(s->router, cfg->n_routed_experts, h) + cfg->n_routed_experts * norm_elem;
            out->experts += experts_touched * one_expert / tp;
            out->shared_experts += cfg->n_shared_experts * one_expert / tp;
        } else {
            int64_t di = cfg->intermediate_size;
            out->dense_mlp += (2 * matrix_bytes(s->dense_mlp, di, h) + matrix_bytes(s->dense_mlp, h, di)) / tp;
        }
    }
    out->norms += h * norm_elem;   /* final norm */
    /* embedding: only the rows of the step's tokens are read */
    out->embed_rows = n_tokens * matrix_bytes(s->embed, 1, h);
    out->lm_head = matrix_bytes(s->lm_head, cfg->vocab_size, h) / tp;

    if (drafter && drafter->num_layers > 0) {
        const mimo_drafter_config *d = drafter;
        const int64_t dh = d->hidden_size;
        double per_layer = matrix_bytes(MIMO_WFMT_BF16, (int64_t)d->n_heads * d->head_dim, dh) +
                           2 * matrix_bytes(MIMO_WFMT_BF16, (int64_t)d->n_kv_heads * d->head_dim, dh) +
                           matrix_bytes(MIMO_WFMT_BF16, dh, (int64_t)d->n_heads * d->head_dim) +
                           2 * matrix_bytes(MIMO_WFMT_BF16, d->intermediate_size, dh) +
                           matrix_bytes(MIMO_WFMT_BF16, dh, d->intermediate_size);
        double kv = 0;
        for (int l = 0; l < d->num_layers && l < 64; l++) {
            double ctx = context_len;
            if (d->layer_is_swa[l] && d->window > 0 && ctx > d->window)
                ctx = d->window;
            kv += ctx * d->n_kv_heads * 2.0 * d->head_dim * kv_elem_bytes;
        }
        out->drafter = d->num_layers * per_layer + kv +
                       matrix_bytes(MIMO_WFMT_BF16, dh, (int64_t)d->n_target_layers * dh) +
                       matrix_bytes(s->lm_head, cfg->vocab_size, h) / tp;   /* drafts go through the target's lm_head */
    }
    out->total = out->attention + out->router + out->experts + out->shared_experts + out->dense_mlp + out->norms +
                 out->embed_rows + out->lm_head + out->kv_read + out->drafter;
}

#ifdef MIMO_HAVE_CUDA
#include <cuda_runtime_api.h>

static int compare_floats(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

#define CAL_CHECK(call)                                                                          \
    do {                                                                                         \
        cudaError_t e_ = (call);                                                                 \
        if (e_ != cudaSuccess) {                                                                 \
            snprintf(why, why_size, "calibration: %s: %s", #call, cudaGetErrorString(e_));       \
            goto done;                                                                           \
        }                                                                                        \
    } while (0)

bool mimo_roofline_calibrate(int device, double *gbps, char *method, size_t method_size, char *why, size_t why_size)
{
    /* Device-to-device copies of a buffer far larger than L2; read + write bytes counted, median of
     * repeats. A dedicated streaming-read kernel of the CUDA backend can replace this hook. */
    const size_t bytes = (size_t)512 << 20;
    enum { REPEATS = 10 };
    void *a = NULL, *b = NULL;
    cudaEvent_t start = NULL, stop = NULL;
    bool ok = false;
    float ms[REPEATS];
    *gbps = NAN;
    CAL_CHECK(cudaSetDevice(device));
    CAL_CHECK(cudaMalloc(&a, bytes));
    CAL_CHECK(cudaMalloc(&b, bytes));
    CAL_CHECK(cudaMemset(a, 1, bytes));
    CAL_CHECK(cudaEventCreate(&start));
    CAL_CHECK(cudaEventCreate(&stop));
    CAL_CHECK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));   /* warm-up */
    for (int r = 0; r < REPEATS; r++) {
        CAL_CHECK(cudaEventRecord(start, 0));
        CAL_CHECK(cudaMemcpyAsync(r % 2 ? a : b, r % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice, 0));
        CAL_CHECK(cudaEventRecord(stop, 0));
        CAL_CHECK(cudaEventSynchronize(stop));
        CAL_CHECK(cudaEventElapsedTime(&ms[r], start, stop));
    }
    qsort(ms, REPEATS, sizeof ms[0], compare_floats);
    if (ms[REPEATS / 2] > 0) {
        *gbps = 2.0 * (double)bytes / (ms[REPEATS / 2] * 1e-3) / 1e9;
        snprintf(method, method_size, "cudaMemcpy device-to-device of %zu MiB, read+write bytes counted, median of %d",
                 bytes >> 20, REPEATS);
        ok = true;
    } else {
        snprintf(why, why_size, "calibration: zero elapsed time");
    }
done:
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (a) cudaFree(a);
    if (b) cudaFree(b);
    return ok;
}
#else
bool mimo_roofline_calibrate(int device, double *gbps, char *method, size_t method_size, char *why, size_t why_size)
{
    *gbps = NAN;
    snprintf(method, method_size, "none");
    snprintf(why, why_size, "this build has no CUDA backend: no GPU calibration");
    return false;
}
#endif

json_t *mimo_roofline_json(const mimo_step_bytes *b, int n_tokens, double context_len, int kv_elem_bytes,
                           double calibration_gbps, const char *calibration_method, const char *why_calibration,
                           double measured_step_ms)
{
    json_t *o = json_object();
    json_object_set_new(o, "bytes_per_step", json_integer((json_int_t)llround(b->total)));
    json_t *parts = json_object();
    json_object_set_new(parts, "attention", json_integer((json_int_t)llround(b->attention)));
    json_object_set_new(parts, "router", json_integer((json_int_t)llround(b->router)));
    json_object_set_new(parts, "routed_experts", json_integer((json_int_t)llround(b->experts)));
    json_object_set_new(parts, "shared_experts", json_integer((json_int_t)llround(b->shared_experts)));
    json_object_set_new(parts, "dense_mlp", json_integer((json_int_t)llround(b->dense_mlp)));
    json_object_set_new(parts, "norms", json_integer((json_int_t)llround(b->norms)));
    json_object_set_new(parts, "embed_rows", json_integer((json_int_t)llround(b->embed_rows)));
    json_object_set_new(parts, "lm_head", json_integer((json_int_t)llround(b->lm_head)));
    json_object_set_new(parts, "kv_read", json_integer((json_int_t)llround(b->kv_read)));
    json_object_set_new(parts, "drafter", json_integer((json_int_t)llround(b->drafter)));
    json_object_set_new(o, "bytes_by_part", parts);
    json_object_set_new(o, "step_tokens", json_integer(n_tokens));
    json_object_set_new(o, "expected_experts_per_layer", json_real(b->expected_experts_per_layer));
    json_object_set_new(o, "context_len", json_real(context_len));
    json_object_set_new(o, "kv_elem_bytes", json_integer(kv_elem_bytes));
    json_object_set_new(o, "model_note", json_string(
        "bytes = weights touched (attention, router, E*(1-(1-k/E)^B) routed experts, shared experts, dense MLP, "
        "norms, embedding rows, lm_head) + KV read at the mean context (SWA capped at the window) + the drafter pass"));
    mimo_json_set_number(o, "calibration_gbps", calibration_gbps, why_calibration);
    json_object_set_new(o, "calibration_method", json_string(calibration_method ? calibration_method : "none"));
    double roofline_ms = isfinite(calibration_gbps) && calibration_gbps > 0 ? b->total / (calibration_gbps * 1e9) * 1e3 : NAN;
    mimo_json_set_number(o, "roofline_ms", roofline_ms, why_calibration);
    mimo_json_set_number(o, "measured_step_ms", measured_step_ms, "no rounds measured");
    double eff = isfinite(roofline_ms) && measured_step_ms > 0 ? roofline_ms / measured_step_ms : NAN;
    mimo_json_set_number(o, "efficiency", eff,
                         isfinite(roofline_ms) ? "no rounds measured" : why_calibration);
    return o;
}
