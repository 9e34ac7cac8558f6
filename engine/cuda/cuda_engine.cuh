// The CUDA backend's engine state (internal): device weights per layer, activations, KV cache, and
// the per-step instruction list from which eager mode launches and graph mode captures.
#ifndef MIMO_CUDA_ENGINE_CUH
#define MIMO_CUDA_ENGINE_CUH

#include "cuda_ops.cuh"

#include <vector>

extern "C" {
#include "mimo/backend.h"
}

struct CudaLayer {
    bool is_swa, is_moe;
    float *input_norm, *post_norm;
    GpuMat qkv;
    int32_t *qkv_map;          // plain row -> storage row, or NULL
    int qkv_rows;              // storage rows of the (local) projection
    GpuMat o_proj;
    float *sink;               // [local heads] or NULL
    GpuMat gate, up, down;     // dense (local slice)
    GpuMat router;             // [E, hidden], replicated
    float *router_bias;
    GpuMat egate, eup, edown;  // expert sets [E] (local intermediate slice)
    GpuMat sgate, sup, sdown;  // shared expert sets [n_shared] or rows == 0
    AttnGeom geom;
    float *kcache, *vcache;
};

enum CudaOp {
    OP_EMBED,
    OP_RMSNORM,
    OP_GEMV,
    OP_QKV_ROPE,
    OP_ATTENTION,
    OP_ROUTE,
    OP_ARGMAX,
    OP_COPY,
};

// One instruction of a step: the op, the layer it belongs to (-1 = none), and its operands.
struct CudaInstr {
    CudaOp op;
    int layer;
    int n;                     // positions (or slots for expert GEMVs)
    GemvParams gemv;
    bool glu;
    const float *src;
    float *dst;
    const float *weight;
    int dim;
    void *copy_dst;
    const void *copy_src;
    size_t copy_bytes;
    const char *label;         // what it is, for the per-op profile (MIMO_CUDA_PROFILE=1)
};

// Per-op time of eager steps (events around every instruction), printed at destroy.
struct CudaProfileEntry {
    const char *label;
    int n;                     // positions of the step
    double total_us;
    long count;
};

struct CudaDrafter;      // cuda_drafter.cu
struct CudaPersistent;   // cuda_persistent.cu
struct CudaRound;     // cuda_round.cu

struct CudaEngine {
    mimo_config cfg;
    mimo_engine_options opts;
    int n_layers;
    int rank, nshard;
    int vocab_local, vocab_base;
    int max_ctx;
    int length;
    cudaStream_t stream;

    GpuMat embed, lm_head;
    float *final_norm;
    std::vector<CudaLayer> layers;

    // activations
    int *d_step;               // [0] = length before the step, [1..16] = tokens
    int *h_step;               // pinned mirror
    float *x, *h, *qkv, *q, *attn, *partial, *router_logits, *route_w, *act, *yslot, *mlp, *logits;
    int32_t *route_ids, *d_argmax;
    float *hidden_out;         // [n_hidden_layers][16][hidden]
    GemvSplitWorkspace split;  // the tensor-core GEMV's column split across blocks (GemvParams::split)
    double *norm_partials;     // the deferred RMSNorms' partial sums (GemvNormOut): 2 sites x 16 positions x
                               // MIMO_CUDA_NORM_PARTIALS_MAX; NULL: every norm a kernel
    float *norm_factor;        // a deferred norm's factor for the expert slots (GemvParams::norm_factor)
    int qkv_ld, q_ld, attn_ld, mlp_ld, act_ld;

    std::vector<void *> allocations;

    bool profile;
    std::vector<cudaEvent_t> prof_events;
    std::vector<CudaProfileEntry> prof;

    // graph mode: one graph per position count
    cudaGraphExec_t graphs[MIMO_MAX_DECODE_POSITIONS + 1];
    std::vector<CudaInstr> program;
    CudaPersistent *persist;   // persistent mode: the one-position step, recorded on first use
    // the persistent kernel's phase stamps (mimo_engine_set_phase_stamps): phase_log holds the kept steps'
    // phases back to back, step s's from phase_begin[s] to phase_begin[s + 1] (or the end)
    bool phase_stamps;
    std::vector<mimo_phase> phase_log;
    std::vector<size_t> phase_begin;
    long phase_dropped;

    CudaDrafter *drafter;      // the DFlash drafter, NULL until attach_drafter (cuda_drafter.cu)
    CudaRound *round;          // device-round state, made on the first round (cuda_round.cu)
};

// Builds the instruction list of one step over n positions as the persistent kernel runs it (its op table:
// the qkv projection and qkv_rope_store as two ops).
void cuda_build_step(CudaEngine *e, int n, std::vector<CudaInstr> &prog);
// Enqueues the instruction list of one step over n positions (with the lm head and argmax) whose input
// (d_step) is already on the device: launched, or captured into a caller's graph.
int cuda_run_step_program(CudaEngine *e, int n, mimo_error *err);
// Graph mode: captures enqueue() (work put on e->stream) into *slot on first use, then launches *slot.
template <typename Enqueue> int cuda_launch_captured(CudaEngine *e, cudaGraphExec_t *slot, Enqueue enqueue, mimo_error *err)
{
    if (!*slot) {
        cudaGraph_t graph;
        CUDA_CHECK(cudaStreamBeginCapture(e->stream, cudaStreamCaptureModeThreadLocal));
        int rc = enqueue();
        cudaError_t end = cudaStreamEndCapture(e->stream, &graph);
        if (rc)
            return -1;
        CUDA_CHECK(end);
        cudaError_t inst = cudaGraphInstantiate(slot, graph, 0);
        cudaGraphDestroy(graph);
        CUDA_CHECK(inst);
    }
    CUDA_CHECK(cudaGraphLaunch(*slot, e->stream));
    return 0;
}

// Enqueues an instruction list on the engine's stream.
int cuda_run_program(CudaEngine *e, const std::vector<CudaInstr> &prog, mimo_error *err);

// Allocation tracked by the engine (freed at destroy).
int cuda_engine_alloc(CudaEngine *e, void **p, size_t bytes, mimo_error *err);
// Matrix s of an expert set, as a matrix of its own.
GpuMat cuda_expert_at(const GpuMat &set, int s);
// A GEMV column-split workspace (GemvParams::split), counters zeroed on the engine's stream.
int cuda_alloc_split_workspace(CudaEngine *e, GemvSplitWorkspace *ws, mimo_error *err);
// For a scratch engine (tests, benchmarks): waits for its stream, frees its allocations, and destroys
// the stream too when destroy_stream (teardown paths: errors are not reported).
void cuda_engine_free_scratch(CudaEngine *e, bool destroy_stream);

// Weights: from host weights (upload) or generated on the device (synthetic). Both fill e->layers,
// e->embed, e->lm_head, e->final_norm.
int cuda_upload_weights(CudaEngine *e, const mimo_weights *w, mimo_error *err);
int cuda_synth_weights(CudaEngine *e, uint64_t seed, mimo_error *err);
// A device set of `count` matrices [rows, cols] in fmt (zeroed; one matrix when count == 1).
int cuda_alloc_matrix_set(CudaEngine *e, int fmt, int rows, int cols, long long group_rows, int count, GpuMat *out,
                          mimo_error *err);
uint64_t cuda_matrix_device_bytes(int fmt, long long rows, long long cols);
// One host matrix / float vector onto the device (allocations tracked in e->allocations).
int cuda_upload_matrix(CudaEngine *e, const mimo_matrix *m, GpuMat *out, const char *what, mimo_error *err);
// Host matrix src into matrix `index` of the device set dst (same shape and format; MXFP4 codes in the device's
// byte order).
int cuda_upload_matrix_into(CudaEngine *e, const mimo_matrix *src, const GpuMat &dst, int index, mimo_error *err);
int cuda_upload_vector(CudaEngine *e, const float *src, size_t n, float **out, mimo_error *err);
// The NeoX RoPE inverse frequencies theta^(-2i/rope_dim), i < rope_dim/2, on the device (AttnGeom::inv_freq),
// computed on the host exactly as the CPU reference computes them, so the kernels take the same angles
// without a double pow per element; NULL when rope_dim < 2.
int cuda_upload_rope_table(CudaEngine *e, double theta, int rope_dim, const double **out, mimo_error *err);
// Device bytes the weights will take (for the memory check before any allocation).
uint64_t cuda_weight_bytes(const mimo_config *cfg, const mimo_engine_options *o, int n_layers);

#endif
