// Weights from host (bound mimo_weights) to the device: rows padded to 32 elements, scales copied as stored,
// MXFP4 codes put in the device's byte order (cuda_common.cuh), expert matrices of a layer packed into one set.
// The FP4 ablation (override_experts) re-stores the experts' values in the asked format on the host first.
#include "cuda_engine.cuh"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <algorithm>
#include <vector>

extern "C" {
#include "mimo/formats.h"
#include "mimo/weights.h"
}

static long long ceil_div_ll(long long a, long long b) { return (a + b - 1) / b; }

// Scale entries of one device matrix (0 for f32/bf16).
static long long gpu_scale_count(int fmt, long long rows, long long cols, long long group_rows)
{
    if (fmt == MIMO_WFMT_FP8)
        return gpu_fp8_scale_rows(rows, group_rows) * ceil_div_ll(cols, 128);
    if (fmt == MIMO_WFMT_MXFP4)
        return rows * (gpu_pad_cols((int)cols) / 32);
    return 0;
}
static size_t gpu_scale_elem_bytes(int fmt) { return fmt == MIMO_WFMT_FP8 ? 4 : 1; }

uint64_t cuda_matrix_device_bytes(int fmt, long long rows, long long cols)
{
    return (uint64_t)rows * gpu_row_bytes(fmt, gpu_pad_cols((int)cols)) +
           (uint64_t)gpu_scale_count(fmt, rows, cols, 0) * gpu_scale_elem_bytes(fmt);
}

uint64_t cuda_weight_bytes(const mimo_config *c, const mimo_engine_options *o, int n_layers)
{
    const int N = o->shard_count > 0 ? o->shard_count : 1;
    const long long H = c->hidden_size;
    const mimo_storage *s = &c->storage;
    const int efmt = o->override_experts ? o->expert_format : s->experts;
    uint64_t b = cuda_matrix_device_bytes(s->embed, c->vocab_size, H) +
                 cuda_matrix_device_bytes(s->lm_head, c->vocab_size / N, H) + H * 4;
    for (int l = 0; l < n_layers; l++) {
        const mimo_attn_shape *a = mimo_layer_attn(c, l);
        long long qkv = (long long)(a->n_heads / N) * a->head_dim + (long long)(a->n_kv_heads / N) * (a->head_dim + a->v_head_dim);
        b += cuda_matrix_device_bytes(s->qkv, qkv + 128, H) + cuda_matrix_device_bytes(s->o_proj, H, (long long)(a->n_heads / N) * a->v_head_dim);
        b += 2 * H * 4 + 4 * a->n_heads + 4 * qkv;
        if (c->layer_is_moe[l]) {
            long long I = c->moe_intermediate_size / N;
            b += cuda_matrix_device_bytes(s->router, c->n_routed_experts, H) + 4 * c->n_routed_experts;
            b += (uint64_t)(c->n_routed_experts + c->n_shared_experts) *
                 (2 * cuda_matrix_device_bytes(efmt, I, H) + cuda_matrix_device_bytes(efmt, H, I));
        } else {
            long long I = c->intermediate_size / N;
            b += 2 * cuda_matrix_device_bytes(s->dense_mlp, I, H) + cuda_matrix_device_bytes(s->dense_mlp, H, I);
        }
    }
    return b;
}

// Allocates a device matrix set of `count` matrices [rows, cols] in fmt (zeroed, padding scales
// set so that padding decodes to zero, never NaN).
int cuda_alloc_matrix_set(CudaEngine *e, int fmt, int rows, int cols, long long group_rows, int count, GpuMat *out,
                          mimo_error *err)
{
    GpuMat m;
    memset(&m, 0, sizeof m);
    m.fmt = fmt;
    m.rows = rows;
    m.cols = cols;
    m.ld = gpu_pad_cols(cols);
    m.scale_group_rows = fmt == MIMO_WFMT_FP8 ? (int)group_rows : 0;
    m.scale_group_srows = group_rows > 0 ? (int)ceil_div_ll(group_rows, 128) : 0;
    m.scale_ld = fmt == MIMO_WFMT_FP8 ? (int)ceil_div_ll(cols, 128) : m.ld / 32;
    const size_t data_bytes = (size_t)rows * gpu_row_bytes(fmt, m.ld);
    const long long nscale = gpu_scale_count(fmt, rows, cols, m.scale_group_rows);
    const size_t scale_bytes = (size_t)nscale * gpu_scale_elem_bytes(fmt);
    // Each matrix of a set starts on a 256-byte boundary.
    const size_t stride = (data_bytes + 255) / 256 * 256;
    m.expert_stride_data = (long long)stride;
    m.count = count;
    m.expert_stride_scales = nscale;
    void *d = NULL, *s = NULL;
    if (cuda_engine_alloc(e, &d, stride * count, err))
        return -1;
    CUDA_CHECK(cudaMemsetAsync(d, 0, stride * count, e->stream));
    CUDA_CHECK(cudaStreamSynchronize(e->stream));
    if (scale_bytes) {
        if (cuda_engine_alloc(e, &s, scale_bytes * count, err))
            return -1;
        // mxfp4 padding blocks get scale 2^0; fp8 scales are all overwritten.
        CUDA_CHECK(cudaMemsetAsync(s, fmt == MIMO_WFMT_MXFP4 ? 127 : 0, scale_bytes * count, e->stream));
        CUDA_CHECK(cudaStreamSynchronize(e->stream));
    }
    m.data = d;
    m.scales = s;
    *out = m;
    return 0;
}

// The codes of `rows` rows of `words` 32-bit words each, `pitch_words` apart, from the file's byte order into
// the device's (e2m1_bytes_to_device), in place.
__global__ void mxfp4_codes_to_device_kernel(uint32_t *codes, size_t pitch_words, size_t words, size_t rows)
{
    const size_t total = rows * words;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        uint32_t *w = codes + (i / words) * pitch_words + i % words;
        *w = e2m1_bytes_to_device(*w);
    }
}

// Copies host matrix src into matrix `index` of the device set dst (same shape and format).
int cuda_upload_matrix_into(CudaEngine *e, const mimo_matrix *src, const GpuMat &dst, int index, mimo_error *err)
{
    const size_t spitch = gpu_row_bytes(src->format, (int)src->cols);
    const size_t dpitch = gpu_row_bytes(dst.fmt, dst.ld);
    uint8_t *d = (uint8_t *)dst.data + (size_t)index * dst.expert_stride_data;
    CUDA_CHECK(cudaMemcpy2D(d, dpitch, src->data, spitch, spitch, (size_t)src->rows, cudaMemcpyHostToDevice));
    if (dst.fmt == MIMO_WFMT_MXFP4 && src->rows > 0) {
        // on the legacy stream, after the copy (its rows are whole words: mxfp4 columns are multiples of 32)
        const size_t words = spitch / 4, total = (size_t)src->rows * words;
        const int blocks = (int)std::min<size_t>((total + 255) / 256, 4096);
        mxfp4_codes_to_device_kernel<<<blocks, 256>>>((uint32_t *)d, dpitch / 4, words, (size_t)src->rows);
        CUDA_CHECK_LAUNCH("mxfp4_codes_to_device_kernel");
        CUDA_CHECK(cudaStreamSynchronize(0));
    }
    if (dst.scales) {
        uint8_t *s = (uint8_t *)dst.scales + (size_t)index * dst.expert_stride_scales * gpu_scale_elem_bytes(dst.fmt);
        if (dst.fmt == MIMO_WFMT_MXFP4) {
            // host scales [rows, cols/32]; device [rows, ld/32] (equal: mxfp4 cols are multiples of 32)
            CUDA_CHECK(cudaMemcpy2D(s, dst.ld / 32, src->scales, src->cols / 32, src->cols / 32, (size_t)src->rows,
                                    cudaMemcpyHostToDevice));
        } else {
            size_t n = (size_t)gpu_scale_count(MIMO_WFMT_FP8, src->rows, src->cols, src->scale_group_rows) * 4;
            CUDA_CHECK(cudaMemcpy(s, src->scales, n, cudaMemcpyHostToDevice));
        }
    }
    return 0;
}

static int upload_matrix(CudaEngine *e, const mimo_matrix *m, GpuMat *out, const char *what, mimo_error *err)
{
    if (m->format == MIMO_WFMT_MXFP4 && m->cols % 32)
        return mimo_fail(err, "cuda upload: %s: mxfp4 columns %lld not a multiple of 32", what, (long long)m->cols);
    if (cuda_alloc_matrix_set(e, m->format, (int)m->rows, (int)m->cols, m->scale_group_rows, 1, out, err) ||
        cuda_upload_matrix_into(e, m, *out, 0, err))
        return mimo_fail_prefix(err, "cuda upload of %s", what);
    return 0;
}

// The FP4 ablation: the same values stored in fmt (exact when the source values are MXFP4 codes).
struct HostMatrix {
    mimo_matrix m;
    void *data, *scales;
};

static void restore_matrix(const mimo_matrix *src, int fmt, HostMatrix *out)
{
    const int64_t rows = src->rows, cols = src->cols;
    float *w = (float *)malloc((size_t)rows * cols * sizeof(float));
    for (int64_t r = 0; r < rows; r++)
        mimo_matrix_row_f32(src, r, w + r * cols);
    memset(out, 0, sizeof *out);
    out->m.format = (mimo_weight_format)fmt;
    out->m.rows = rows;
    out->m.cols = cols;
    if (fmt == MIMO_WFMT_BF16) {
        uint16_t *d = (uint16_t *)malloc((size_t)rows * cols * 2);
        for (int64_t i = 0; i < rows * cols; i++)
            d[i] = mimo_f32_to_bf16(w[i]);
        out->data = d;
    } else if (fmt == MIMO_WFMT_FP8) {
        uint8_t *d = (uint8_t *)malloc((size_t)rows * cols);
        float *s = (float *)malloc((size_t)ceil_div_ll(rows, 128) * ceil_div_ll(cols, 128) * sizeof(float));
        mimo_fp8_block_quantize(w, rows, cols, d, s);
        out->data = d;
        out->scales = s;
    } else if (fmt == MIMO_WFMT_MXFP4) {
        uint8_t *d = (uint8_t *)malloc((size_t)rows * cols / 2);
        uint8_t *s = (uint8_t *)malloc((size_t)rows * cols / 32);
        mimo_mxfp4_quantize(w, rows, cols, d, s);
        out->data = d;
        out->scales = s;
    } else {
        out->data = w;
        w = NULL;
    }
    free(w);
    out->m.data = out->data;
    out->m.scales = out->scales;
}

static int upload_expert_set(CudaEngine *e, const mimo_matrix *ms, int count, GpuMat *out, const char *what, mimo_error *err)
{
    const mimo_engine_options *o = &e->opts;
    const bool convert = o->override_experts && o->expert_format != ms[0].format;
    const int fmt = o->override_experts ? o->expert_format : ms[0].format;
    if (fmt == MIMO_WFMT_MXFP4 && ms[0].cols % 32)
        return mimo_fail(err, "cuda upload: %s: mxfp4 columns %lld not a multiple of 32", what, (long long)ms[0].cols);
    if (cuda_alloc_matrix_set(e, fmt, (int)ms[0].rows, (int)ms[0].cols, convert ? 0 : ms[0].scale_group_rows, count, out, err))
        return -1;
    for (int i = 0; i < count; i++) {
        if (ms[i].rows != ms[0].rows || ms[i].cols != ms[0].cols || ms[i].format != ms[0].format)
            return mimo_fail(err, "cuda upload: %s: expert %d differs in shape or format from expert 0", what, i);
        if (convert) {
            HostMatrix hm;
            restore_matrix(&ms[i], fmt, &hm);
            int rc = cuda_upload_matrix_into(e, &hm.m, *out, i, err);
            free(hm.data);
            free(hm.scales);
            if (rc)
                return -1;
        } else if (cuda_upload_matrix_into(e, &ms[i], *out, i, err)) {
            return -1;
        }
    }
    return 0;
}

static int upload_vec(CudaEngine *e, const float *src, size_t n, float **out, mimo_error *err)
{
    void *d;
    if (cuda_engine_alloc(e, &d, n * sizeof(float), err))
        return -1;
    CUDA_CHECK(cudaMemcpy(d, src, n * sizeof(float), cudaMemcpyHostToDevice));
    *out = (float *)d;
    return 0;
}

int cuda_upload_weights(CudaEngine *e, const mimo_weights *w, mimo_error *err)
{
    const mimo_config *c = &e->cfg;
    const int H = c->hidden_size;
    char what[160];
    if (upload_matrix(e, &w->embed, &e->embed, "embed_tokens", err) || upload_matrix(e, &w->lm_head, &e->lm_head, "lm_head", err) ||
        upload_vec(e, w->final_norm, H, &e->final_norm, err))
        return -1;
    for (int l = 0; l < e->n_layers; l++) {
        const mimo_layer_weights *lw = &w->layers[l];
        CudaLayer &L = e->layers[l];
        snprintf(what, sizeof what, "layer %d", l);
        if (upload_vec(e, lw->input_norm, H, &L.input_norm, err) || upload_vec(e, lw->post_attn_norm, H, &L.post_norm, err) ||
            upload_matrix(e, &lw->qkv, &L.qkv, what, err) || upload_matrix(e, &lw->o_proj, &L.o_proj, what, err))
            return -1;
        L.qkv_rows = (int)lw->qkv.rows;
        if (lw->qkv_row_of_plain) {
            void *d;
            if (cuda_engine_alloc(e, &d, (size_t)lw->qkv.rows * sizeof(int32_t), err))
                return -1;
            CUDA_CHECK(cudaMemcpy(d, lw->qkv_row_of_plain, (size_t)lw->qkv.rows * sizeof(int32_t), cudaMemcpyHostToDevice));
            L.qkv_map = (int32_t *)d;
        }
        if (lw->sink && mimo_layer_attn(c, l)->has_sink && upload_vec(e, lw->sink, L.geom.n_heads, &L.sink, err))
            return -1;
        if (!lw->is_moe) {
            if (upload_matrix(e, &lw->gate, &L.gate, what, err) || upload_matrix(e, &lw->up, &L.up, what, err) ||
                upload_matrix(e, &lw->down, &L.down, what, err))
                return -1;
        } else {
            if (upload_matrix(e, &lw->router, &L.router, what, err) ||
                (lw->router_bias && upload_vec(e, lw->router_bias, c->n_routed_experts, &L.router_bias, err)) ||
                upload_expert_set(e, lw->expert_gate, c->n_routed_experts, &L.egate, what, err) ||
                upload_expert_set(e, lw->expert_up, c->n_routed_experts, &L.eup, what, err) ||
                upload_expert_set(e, lw->expert_down, c->n_routed_experts, &L.edown, what, err))
                return -1;
            if (lw->shared_gate && c->n_shared_experts > 0 &&
                (upload_expert_set(e, lw->shared_gate, c->n_shared_experts, &L.sgate, what, err) ||
                 upload_expert_set(e, lw->shared_up, c->n_shared_experts, &L.sup, what, err) ||
                 upload_expert_set(e, lw->shared_down, c->n_shared_experts, &L.sdown, what, err)))
                return -1;
        }
    }
    return 0;
}

int cuda_upload_matrix(CudaEngine *e, const mimo_matrix *m, GpuMat *out, const char *what, mimo_error *err)
{
    return upload_matrix(e, m, out, what, err);
}

int cuda_upload_vector(CudaEngine *e, const float *src, size_t n, float **out, mimo_error *err)
{
    return upload_vec(e, src, n, out, err);
}

int cuda_upload_rope_table(CudaEngine *e, double theta, int rope_dim, const double **out, mimo_error *err)
{
    *out = nullptr;
    if (rope_dim < 2)
        return 0;
    // theta^(-2i/rope_dim) with the CPU reference's own expression (mimo_cpu_rope_neox)
    std::vector<double> inv_freq(rope_dim / 2);
    for (int i = 0; i < rope_dim / 2; i++)
        inv_freq[i] = pow(theta, -2.0 * i / rope_dim);
    void *v;
    if (cuda_engine_alloc(e, &v, inv_freq.size() * sizeof(double), err))
        return -1;
    CUDA_CHECK(cudaMemcpyAsync(v, inv_freq.data(), inv_freq.size() * sizeof(double), cudaMemcpyHostToDevice, e->stream));
    CUDA_CHECK(cudaStreamSynchronize(e->stream));   // the host vector goes away
    *out = (const double *)v;
    return 0;
}
