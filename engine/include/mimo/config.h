/* The MiMo-V2 model configuration (MODEL.md): parsed from a Hugging Face config.json (both the
 * native keys and the transformers 5.x spelling), validated, and counted. Nothing about a model size
 * is hard-coded anywhere else: every shape comes from here. */
#ifndef MIMO_CONFIG_H
#define MIMO_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include "mimo/error.h"

#define MIMO_MAX_LAYERS 256

/* How a weight matrix is stored. */
typedef enum {
    MIMO_WFMT_F32,
    MIMO_WFMT_BF16,
    MIMO_WFMT_FP8,    /* float8_e4m3 + fp32 128x128 block scale multipliers */
    MIMO_WFMT_MXFP4,  /* packed E2M1 pairs + UE8M0 scales per 32 along K */
    MIMO_WFMT_COUNT
} mimo_weight_format;
const char *mimo_weight_format_name(mimo_weight_format f);   /* "f32", "bf16", "fp8", "mxfp4" */
int mimo_weight_format_from_name(const char *s, mimo_weight_format *out);
/* Storage bytes of a [rows, cols] matrix including its scales. */
uint64_t mimo_weight_format_bytes(mimo_weight_format f, int64_t rows, int64_t cols);

/* The storage of each weight group (what the checkpoint holds, or what synth writes). */
typedef struct {
    mimo_weight_format embed, lm_head;
    mimo_weight_format qkv, o_proj;
    mimo_weight_format dense_mlp;   /* layer-0 style dense SwiGLU */
    mimo_weight_format experts;     /* routed (and shared) experts: the FP4 ablation switches this */
    mimo_weight_format router;      /* f32 or bf16 (moe_router_dtype) */
    mimo_weight_format norms;       /* norms, sinks, router bias: f32 or bf16 */
} mimo_storage;

/* Attention geometry of one layer kind. */
typedef struct {
    int    n_heads, n_kv_heads;
    int    head_dim;     /* q and k */
    int    v_head_dim;
    int    rope_dim;     /* round(head_dim * partial_rotary_factor), even */
    double rope_theta;
    bool   has_sink;
    int    window;       /* SWA window (keys with pos_q - pos_k < window); 0 = full attention */
} mimo_attn_shape;

typedef struct {
    char   model_type[64];
    int    hidden_size, num_layers, vocab_size;
    float  rms_eps;
    int    max_position_embeddings;

    bool   layer_is_swa[MIMO_MAX_LAYERS];   /* hybrid_layer_pattern / layer_types */
    bool   layer_is_moe[MIMO_MAX_LAYERS];   /* moe_layer_freq / mlp_layer_types */
    mimo_attn_shape full, swa;
    float  partial_rotary_factor;
    float  attention_value_scale;           /* 1 when absent */

    int    intermediate_size;               /* dense MLP width */
    int    n_routed_experts, experts_per_tok, moe_intermediate_size, n_shared_experts;
    bool   norm_topk_prob;
    float  routed_scaling_factor;           /* 1 when null/absent */
    int    n_group, topk_group;
    char   scoring_func[16], topk_method[16];
    bool   tie_word_embeddings;

    /* fused qkv row order: plain (q|k|v) or TP-interleaved in qkv_groups groups of
     * (heads/groups q heads, kv/groups k heads, kv/groups v heads), with FP8 scale rows padded
     * per group to a multiple of 128 rows. */
    bool   qkv_interleaved;
    int    qkv_groups;

    mimo_storage storage;
} mimo_config;

static inline const mimo_attn_shape *mimo_layer_attn(const mimo_config *c, int layer)
{
    return c->layer_is_swa[layer] ? &c->swa : &c->full;
}
int mimo_qkv_rows(const mimo_config *c, int layer);  /* heads*dqk + kv*dqk + kv*dv */

/* Parse + validate. path names the file in messages. Missing or contradictory keys -> -1 with the key named. */
int mimo_config_load(const char *path, mimo_config *cfg, mimo_error *err);
int mimo_config_parse_json(const char *json_text, const char *path, mimo_config *cfg, mimo_error *err);
int mimo_config_validate(const mimo_config *cfg, mimo_error *err);
/* Writes the native-key form (what synth writes); round-trips through mimo_config_parse_json. */
char *mimo_config_to_json(const mimo_config *cfg);   /* malloc'd */

/* Presets: "tiny", "small", "mimo-v2-flash", "mimo-v2.5-pro". */
int mimo_config_preset(const char *name, mimo_config *cfg, mimo_error *err);
const char *const *mimo_preset_names(void);   /* NULL-terminated */

/* Parameter counts and bytes. "active" = what one token touches (top-k experts, no others). */
typedef struct {
    uint64_t total, active;
    uint64_t embed, lm_head, attention, dense_mlp, router, experts, norms;  /* total params per group */
    uint64_t expert_params_per_expert_layer;   /* one expert's gate+up+down */
    uint64_t bytes_total;                      /* with cfg->storage */
    uint64_t bytes_active;
    uint64_t bytes_by_format[MIMO_WFMT_COUNT]; /* total bytes held in each format */
} mimo_param_counts;
void mimo_config_count(const mimo_config *cfg, mimo_param_counts *out);

#endif
