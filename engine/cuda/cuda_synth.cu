// Synthetic weights generated on the device, bit for bit the rule of engine/checkpoint/synth.c
// (see the comment at its top): element i of a tensor (plain row-major index in the WHOLE tensor)
// comes from mimo_hash2(mimo_mix64(seed) ^ mimo_fnv1a64(name), i). Because the draw is counter
// based, a shard generates only its own rows / columns, with their global indices: this is how a
// rank's share of MiMo-V2.5-Pro is replayed on one GPU without any checkpoint.
#include "cuda_engine.cuh"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <string>
#include <vector>

extern "C" {
#include "mimo/hash.h"
#include "mimo/synth.h"
#include "mimo/weights.h"
}

// ---- the rule on the device ----

__device__ __forceinline__ uint64_t dev_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
__device__ __forceinline__ uint64_t dev_hash2(uint64_t stream, uint64_t index) { return dev_mix64(stream ^ dev_mix64(index)); }
__device__ __forceinline__ float dev_unit_symmetric(uint64_t bits)
{
    return (float)(int32_t)((uint32_t)(bits >> 40) - (1u << 23)) * (1.0f / 8388608.0f);
}
__device__ __forceinline__ float dev_e2m1_value(uint32_t code)
{
    const float mag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    float v = mag[code & 7];
    return (code & 8) ? -v : v;
}
__device__ __forceinline__ uint8_t dev_f32_to_fp8(float x)
{
    return (uint8_t)__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3);
}
__device__ __forceinline__ uint16_t dev_f32_to_bf16(float x)
{
    __nv_bfloat16 b = __float2bfloat16_rn(x);
    return *reinterpret_cast<uint16_t *>(&b);
}

// What one matrix of a set is drawn from.
struct SynthMat {
    GpuMat m;                  // destination (a set: matrix blockIdx.y)
    const uint64_t *streams;   // [count] per-matrix hash streams
    const int32_t *row_list;   // local row -> global plain row (NULL: row0 + local row)
    int row0;
    int gcols, col0;           // global columns, first local column
    float amp;                 // amplitude (non-code matrices)
    int code;                  // drawn as E2M1 codes (experts, any MXFP4 matrix)
    float code_scale;          // 2^(e-127)
};

__global__ void synth_matrix_kernel(const SynthMat s)
{
    const GpuMat &m = s.m;
    const int mat = blockIdx.y;
    const uint64_t stream = s.streams[mat];
    uint8_t *base = (uint8_t *)m.data + (size_t)mat * m.expert_stride_data;
    const size_t row_bytes = gpu_row_bytes(m.fmt, m.ld);
    const bool packed = m.fmt == MIMO_WFMT_MXFP4;
    const int per_row = packed ? m.cols / 2 : m.cols;   // work items per row
    const size_t total = (size_t)m.rows * per_row;
    for (size_t w = (size_t)blockIdx.x * blockDim.x + threadIdx.x; w < total; w += (size_t)gridDim.x * blockDim.x) {
        const int r = (int)(w / per_row), j = (int)(w % per_row);
        const uint64_t grow = s.row_list ? (uint64_t)s.row_list[r] : (uint64_t)(s.row0 + r);
        uint8_t *row = base + (size_t)r * row_bytes;
        if (packed) {
            const uint64_t i0 = grow * (uint64_t)s.gcols + (uint64_t)(s.col0 + 2 * j);
            uint32_t lo = (uint32_t)(dev_hash2(stream, i0) >> 60), hi = (uint32_t)(dev_hash2(stream, i0 + 1) >> 60);
            row[j] = (uint8_t)e2m1_bytes_to_device(lo | (hi << 4));   // the device byte order (cuda_common.cuh)
            continue;
        }
        const uint64_t i = grow * (uint64_t)s.gcols + (uint64_t)(s.col0 + j);
        const uint64_t bits = dev_hash2(stream, i);
        if (s.code) {
            const float v = dev_e2m1_value((uint32_t)(bits >> 60));
            switch (m.fmt) {
            case MIMO_WFMT_FP8: row[j] = dev_f32_to_fp8(v); break;
            case MIMO_WFMT_BF16: ((uint16_t *)row)[j] = dev_f32_to_bf16(v * s.code_scale); break;
            default: ((float *)row)[j] = v * s.code_scale; break;
            }
        } else {
            const float u = dev_unit_symmetric(bits);
            switch (m.fmt) {
            case MIMO_WFMT_FP8: row[j] = dev_f32_to_fp8(u * 256.0f); break;
            case MIMO_WFMT_BF16: ((uint16_t *)row)[j] = dev_f32_to_bf16(s.amp * u); break;
            default: ((float *)row)[j] = s.amp * u; break;
            }
        }
    }
}

__global__ void fill_f32_kernel(float *p, size_t n, float v)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = v;
}

// v(i) = base + amp * u(i0 + i), rounded through bf16 when the norms are stored so.
__global__ void synth_vector_kernel(float *out, int n, uint64_t stream, int i0, float base, float amp, int as_bf16)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float v = base + amp * dev_unit_symmetric(dev_hash2(stream, (uint64_t)(i0 + i)));
        out[i] = as_bf16 ? __uint_as_float((uint32_t)dev_f32_to_bf16(v) << 16) : v;
    }
}

// ---- host side ----

namespace {

struct Gen {
    CudaEngine *e;
    uint64_t seed;
    mimo_error *err;
    std::vector<uint64_t> streams;
    uint64_t *d_streams;       // scratch for one set's streams
    int d_streams_cap;

    uint64_t stream_of(const char *name) const { return mimo_mix64(seed) ^ mimo_fnv1a64(name); }

    // Allocates and draws a set of `names.size()` matrices of local shape [rows, cols] (rows from
    // row_list or [row0, row0 + rows), columns [col0, col0 + cols) of gcols).
    int matrix_set(const std::vector<std::string> &names, int layer, int fmt, bool code, int rows, const int32_t *row_list_host,
                   int row0, int cols, int gcols, int col0, GpuMat *out)
    {
        const int count = (int)names.size();
        const mimo_config *cfg = &e->cfg;
        if (fmt == MIMO_WFMT_MXFP4 && (cols % 32 || col0 % 32))
            return mimo_fail(err, "cuda synth: %s: an MXFP4 slice of %d columns at %d is not whole blocks", names[0].c_str(),
                             cols, col0);
        if (cuda_alloc_matrix_set(e, fmt, rows, cols, 0, count, out, err))
            return -1;
        const float amp = mimo_synth_amplitude(cfg, names[0].c_str(), layer);
        const bool as_code = code || fmt == MIMO_WFMT_MXFP4;
        const int log2a = (int)lround(log2((double)amp));
        const int ebyte = 125 + log2a;
        const float code_scale = (float)ldexp(1.0, ebyte - 127);
        if (count > d_streams_cap) {
            void *p;
            if (cuda_engine_alloc(e, &p, (size_t)count * sizeof(uint64_t), err))
                return -1;
            d_streams = (uint64_t *)p;
            d_streams_cap = count;
        }
        streams.resize(count);
        for (int i = 0; i < count; i++)
            streams[i] = stream_of(names[i].c_str());
        // On the kernel's stream: a plain cudaMemcpy from pageable memory may return before its DMA
        // has landed, and the legacy stream does not order a non-blocking stream's kernel after it
        // (this once drew a matrix from the previous matrix's streams).
        CUDA_CHECK(cudaMemcpyAsync(d_streams, streams.data(), (size_t)count * sizeof(uint64_t), cudaMemcpyHostToDevice,
                                   e->stream));
        int32_t *d_rows = NULL;
        if (row_list_host) {
            void *p;
            CUDA_CHECK(cudaMalloc(&p, (size_t)rows * sizeof(int32_t)));
            d_rows = (int32_t *)p;
            cudaError_t rc = cudaMemcpyAsync(d_rows, row_list_host, (size_t)rows * sizeof(int32_t), cudaMemcpyHostToDevice,
                                             e->stream);
            if (rc != cudaSuccess) {
                cudaFree(d_rows);
                CUDA_CHECK(rc);
            }
        }
        SynthMat s;
        memset(&s, 0, sizeof s);
        s.m = *out;
        s.streams = d_streams;
        s.row_list = d_rows;
        s.row0 = row0;
        s.gcols = gcols;
        s.col0 = col0;
        s.amp = amp;
        s.code = as_code;
        s.code_scale = code_scale;
        size_t items = (size_t)rows * (fmt == MIMO_WFMT_MXFP4 ? cols / 2 : cols);
        int blocks = (int)((items + 255) / 256 < 1024 ? (items + 255) / 256 : 1024);
        synth_matrix_kernel<<<dim3(blocks > 0 ? blocks : 1, count), 256, 0, e->stream>>>(s);
        cudaError_t lrc = cudaGetLastError();
        if (lrc == cudaSuccess)
            lrc = cudaStreamSynchronize(e->stream);
        if (d_rows)
            cudaFree(d_rows);
        CUDA_CHECK(lrc);
        // Scales: every block of the tensor has the same one.
        if (fmt == MIMO_WFMT_FP8) {
            size_t n = (size_t)out->expert_stride_scales * count;
            float v = as_code ? code_scale : amp / 256.0f;
            fill_f32_kernel<<<256, 256, 0, e->stream>>>((float *)out->scales, n, v);
            CUDA_CHECK_LAUNCH("fill_f32_kernel");
        } else if (fmt == MIMO_WFMT_MXFP4) {
            CUDA_CHECK(cudaMemsetAsync((void *)out->scales, ebyte, (size_t)out->expert_stride_scales * count, e->stream));
        }
        CUDA_CHECK(cudaStreamSynchronize(e->stream));
        return 0;
    }

    int matrix(const char *name, int layer, int fmt, bool code, int rows, const int32_t *row_list, int row0, int cols,
               int gcols, int col0, GpuMat *out)
    {
        std::vector<std::string> names(1, name);
        return matrix_set(names, layer, fmt, code, rows, row_list, row0, cols, gcols, col0, out);
    }

    int vector(const char *name, int n, int i0, float base, float amp, float **out)
    {
        void *p;
        if (cuda_engine_alloc(e, &p, (size_t)n * sizeof(float), err))
            return -1;
        *out = (float *)p;
        synth_vector_kernel<<<(n + 255) / 256, 256, 0, e->stream>>>(*out, n, stream_of(name), i0, base, amp,
                                                                     e->cfg.storage.norms == MIMO_WFMT_BF16);
        CUDA_CHECK_LAUNCH("synth_vector_kernel");
        return 0;
    }
};

}  // namespace

int cuda_synth_weights(CudaEngine *e, uint64_t seed, mimo_error *err)
{
    const mimo_config *c = &e->cfg;
    const mimo_storage *st = &c->storage;
    const int H = c->hidden_size, N = e->nshard, r = e->rank;
    const int efmt = e->opts.override_experts ? e->opts.expert_format : st->experts;
    Gen g;
    g.e = e;
    g.seed = seed;
    g.err = err;
    g.d_streams = NULL;
    g.d_streams_cap = 0;
    char name[256];

    if (g.matrix("model.embed_tokens.weight", -1, st->embed, false, c->vocab_size, NULL, 0, H, H, 0, &e->embed))
        return -1;
    if (c->tie_word_embeddings) {
        if (g.matrix("model.embed_tokens.weight", -1, st->embed, false, e->vocab_local, NULL, e->vocab_base, H, H, 0, &e->lm_head))
            return -1;
    } else if (g.matrix("lm_head.weight", -1, st->lm_head, false, e->vocab_local, NULL, e->vocab_base, H, H, 0, &e->lm_head)) {
        return -1;
    }
    if (g.vector("model.norm.weight", H, 0, 1.0f, 1.0f / 16.0f, &e->final_norm))
        return -1;

    for (int l = 0; l < e->n_layers; l++) {
        CudaLayer &L = e->layers[l];
        const mimo_attn_shape *a = mimo_layer_attn(c, l);
        const AttnGeom &geo = L.geom;
        mimo_tensor_name_layer(name, sizeof name, l, "input_layernorm.weight");
        if (g.vector(name, H, 0, 1.0f, 1.0f / 16.0f, &L.input_norm))
            return -1;
        mimo_tensor_name_layer(name, sizeof name, l, "post_attention_layernorm.weight");
        if (g.vector(name, H, 0, 1.0f, 1.0f / 16.0f, &L.post_norm))
            return -1;

        // qkv: this rank's q heads, kv heads, v heads, in plain order (rows are global plain rows).
        const int hq0 = r * geo.n_heads, kv0 = r * geo.n_kv;
        std::vector<int32_t> rows;
        for (int h = 0; h < geo.n_heads; h++)
            for (int d = 0; d < a->head_dim; d++)
                rows.push_back((hq0 + h) * a->head_dim + d);
        for (int j = 0; j < geo.n_kv; j++)
            for (int d = 0; d < a->head_dim; d++)
                rows.push_back(a->n_heads * a->head_dim + (kv0 + j) * a->head_dim + d);
        for (int j = 0; j < geo.n_kv; j++)
            for (int d = 0; d < a->v_head_dim; d++)
                rows.push_back(a->n_heads * a->head_dim + a->n_kv_heads * a->head_dim + (kv0 + j) * a->v_head_dim + d);
        L.qkv_rows = (int)rows.size();
        mimo_tensor_name_layer(name, sizeof name, l, "self_attn.qkv_proj.weight");
        if (g.matrix(name, l, st->qkv, false, L.qkv_rows, rows.data(), 0, H, H, 0, &L.qkv))
            return -1;
        mimo_tensor_name_layer(name, sizeof name, l, "self_attn.o_proj.weight");
        const int ocols = a->n_heads * a->v_head_dim;
        if (g.matrix(name, l, st->o_proj, false, H, NULL, 0, geo.n_heads * a->v_head_dim, ocols, hq0 * a->v_head_dim, &L.o_proj))
            return -1;
        if (a->has_sink) {
            mimo_tensor_name_layer(name, sizeof name, l, "self_attn.attention_sink_bias");
            if (g.vector(name, geo.n_heads, hq0, 0.0f, 1.0f, &L.sink))
                return -1;
        }

        if (!c->layer_is_moe[l]) {
            const int I = c->intermediate_size, Il = I / N;
            mimo_tensor_name_layer(name, sizeof name, l, "mlp.gate_proj.weight");
            if (g.matrix(name, l, st->dense_mlp, false, Il, NULL, r * Il, H, H, 0, &L.gate))
                return -1;
            mimo_tensor_name_layer(name, sizeof name, l, "mlp.up_proj.weight");
            if (g.matrix(name, l, st->dense_mlp, false, Il, NULL, r * Il, H, H, 0, &L.up))
                return -1;
            mimo_tensor_name_layer(name, sizeof name, l, "mlp.down_proj.weight");
            if (g.matrix(name, l, st->dense_mlp, false, H, NULL, 0, Il, I, r * Il, &L.down))
                return -1;
            continue;
        }
        const int E = c->n_routed_experts, I = c->moe_intermediate_size, Il = I / N;
        mimo_tensor_name_layer(name, sizeof name, l, "mlp.gate.weight");
        if (g.matrix(name, l, st->router, false, E, NULL, 0, H, H, 0, &L.router))
            return -1;
        L.router_bias = NULL;   // the rule's correction bias is zero: s + 0 == s
        static const char *const projs[3] = {"gate", "up", "down"};
        GpuMat *sets[3] = {&L.egate, &L.eup, &L.edown};
        for (int p = 0; p < 3; p++) {
            std::vector<std::string> names;
            for (int x = 0; x < E; x++) {
                mimo_tensor_name_expert(name, sizeof name, l, x, projs[p]);
                names.push_back(name);
            }
            int rc = p < 2 ? g.matrix_set(names, l, efmt, true, Il, NULL, r * Il, H, H, 0, sets[p])
                           : g.matrix_set(names, l, efmt, true, H, NULL, 0, Il, I, r * Il, sets[p]);
            if (rc)
                return -1;
        }
        if (c->n_shared_experts > 0) {
            GpuMat *ssets[3] = {&L.sgate, &L.sup, &L.sdown};
            for (int p = 0; p < 3; p++) {
                std::vector<std::string> names;
                for (int x = 0; x < c->n_shared_experts; x++) {
                    char suffix[96];
                    snprintf(suffix, sizeof suffix, "mlp.shared_experts.%d.%s_proj.weight", x, projs[p]);
                    mimo_tensor_name_layer(name, sizeof name, l, suffix);
                    names.push_back(name);
                }
                int rc = p < 2 ? g.matrix_set(names, l, efmt, true, Il, NULL, r * Il, H, H, 0, ssets[p])
                               : g.matrix_set(names, l, efmt, true, H, NULL, 0, Il, I, r * Il, ssets[p]);
                if (rc)
                    return -1;
            }
        }
    }
    CUDA_CHECK(cudaStreamSynchronize(e->stream));
    return 0;
}
