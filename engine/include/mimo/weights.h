/* The target model's weights, bound by name from a tensor source and checked against the config.
 * Matrices keep their storage format; backends decode them (the CPU reference on the fly, the GPU
 * in registers). Data pointers alias the source (mmap or memory), which must outlive the weights. */
#ifndef MIMO_WEIGHTS_H
#define MIMO_WEIGHTS_H

#include "mimo/config.h"
#include "mimo/tensor_source.h"

/* One [rows, cols] weight matrix (out, in), y = W x. */
typedef struct {
    mimo_weight_format format;
    int64_t     rows, cols;
    const void *data;    /* f32 | bf16 (uint16) | fp8 bytes | packed e2m1 pairs [rows, cols/2] */
    const void *scales;  /* fp8: float [ceil(rows/128) (per group, see below), ceil(cols/128)];
                            mxfp4: uint8 [rows, cols/32]; NULL otherwise */
    /* FP8 only: when > 0, rows come in groups of scale_group_rows whose scale rows are padded per
     * group (the interleaved qkv layout). 0 = plain: scale row = row / 128. */
    int64_t     scale_group_rows;
} mimo_matrix;

/* Decodes row r of m into out[cols] (float). The reference every kernel is judged by. */
void  mimo_matrix_row_f32(const mimo_matrix *m, int64_t r, float *out);
/* Single element (slow; for tests). */
float mimo_matrix_get(const mimo_matrix *m, int64_t r, int64_t c);
/* y[rows] = W x[cols] in float (f64 accumulation not required). */
void  mimo_matrix_gemv_f32(const mimo_matrix *m, const float *x, float *y);
uint64_t mimo_matrix_bytes(const mimo_matrix *m);

typedef struct {
    bool is_swa, is_moe;
    const float *input_norm, *post_attn_norm;   /* [hidden], f32 (converted at bind time) */
    mimo_matrix qkv;        /* rows = mimo_qkv_rows(); in storage order */
    const int32_t *qkv_row_of_plain; /* NULL = plain order; else plain row i lives at storage row map[i] */
    mimo_matrix o_proj;     /* [hidden, heads*dv] */
    const float *sink;      /* [heads] or NULL */
    /* dense */
    mimo_matrix gate, up, down;
    /* moe */
    mimo_matrix router;              /* [experts, hidden], f32 or bf16 */
    const float *router_bias;        /* e_score_correction_bias [experts] */
    mimo_matrix *expert_gate, *expert_up, *expert_down;   /* [n_routed_experts] */
    mimo_matrix *shared_gate, *shared_up, *shared_down;   /* [n_shared_experts] or NULL */
} mimo_layer_weights;

typedef struct {
    mimo_config cfg;
    mimo_matrix embed;       /* [vocab, hidden] */
    mimo_matrix lm_head;     /* [vocab, hidden] */
    const float *final_norm; /* [hidden] */
    mimo_layer_weights *layers;
    mimo_storage storage;    /* what was actually found, per group */
    void *owned;             /* converted vectors and maps; freed by mimo_weights_free */
} mimo_weights;

/* Binds every tensor MODEL.md names (both fused qkv and separate q/k/v spellings; HF "model." prefix
 * optional). Missing or mis-shaped tensors -> -1 naming the tensor and file. Unknown names are
 * reported through warn (may be NULL) and otherwise ignored. */
typedef void (*mimo_warn_fn)(void *ctx, const char *msg);
int  mimo_weights_bind(const mimo_config *cfg, mimo_tensor_source *src, mimo_weights *w,
                       mimo_warn_fn warn, void *warn_ctx, mimo_error *err);
void mimo_weights_free(mimo_weights *w);

/* Canonical tensor names (with the "model." prefix where MODEL.md has it). buf >= 128 bytes. */
void mimo_tensor_name_layer(char *buf, size_t n, int layer, const char *suffix);
void mimo_tensor_name_expert(char *buf, size_t n, int layer, int expert, const char *proj /* gate|up|down */);

/* TP-interleaved fused qkv (cfg->qkv_interleaved): row_of_plain[i] = storage row of plain (q|k|v) row i,
 * for i < mimo_qkv_rows(cfg, layer). Group g holds q heads [g*H/G, (g+1)*H/G), then its kv/G k heads,
 * then its kv/G v heads. Plain layout: the identity. */
void mimo_qkv_interleave_map(const mimo_config *cfg, int layer, int32_t *row_of_plain);
/* Applies a qkv layout named by the checkpoint index metadata ("qkv_layout": "tp_interleaved",
 * "qkv_groups": "8") when cfg says plain. mimo_weights_bind does this itself. */
int mimo_config_apply_source_layout(mimo_config *cfg, mimo_tensor_source *src, mimo_error *err);
/* Rows of the fused qkv FP8 scale tensor: ceil(rows/128), or qkv_groups * ceil(rows/groups/128) interleaved. */
int64_t mimo_qkv_scale_rows(const mimo_config *cfg, int layer);

#endif
