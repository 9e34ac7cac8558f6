/* The DFlash drafter (DFLASH.md): config, weights, and the synthetic drafter written next to every
 * preset's target. The drafter shares the target's embed_tokens and lm_head. */
#ifndef MIMO_DFLASH_H
#define MIMO_DFLASH_H

#include "mimo/weights.h"

#define MIMO_DFLASH_MAX_TARGET_LAYERS 16
#define MIMO_DFLASH_MAX_BLOCK 16

typedef struct {
    int    hidden_size, num_layers, n_heads, n_kv_heads, head_dim, intermediate_size;
    float  rms_eps;
    double rope_theta;
    int    rope_dim;              /* whole head_dim unless partial_rotary_factor says otherwise */
    bool   layer_is_swa[64];      /* sliding_attention layers add the window */
    int    window;                /* sliding window of the drafter's SWA layers */
    bool   has_sink;
    float  attention_value_scale; /* 1 when absent */
    int    block_size;
    int    n_target_layers;
    int    target_layer_ids[MIMO_DFLASH_MAX_TARGET_LAYERS];
    int    mask_token_id;
} mimo_drafter_config;

typedef struct {
    const float *input_norm, *post_attn_norm;   /* [hidden] */
    mimo_matrix q_proj, k_proj, v_proj, o_proj;
    const float *q_norm, *k_norm;               /* [head_dim] per-head RMS weights */
    const float *sink;                          /* [heads] or NULL */
    mimo_matrix gate, up, down;
} mimo_drafter_layer;

typedef struct {
    mimo_drafter_config cfg;
    mimo_matrix fc;                 /* [hidden, n_target_layers*hidden] */
    const float *hidden_norm;       /* [hidden] */
    const float *final_norm;        /* [hidden] */
    const float *mask_embedding;    /* [hidden] or NULL (then embed[mask_token_id]) */
    mimo_drafter_layer *layers;
    void *owned;
} mimo_drafter_weights;

int  mimo_drafter_config_load(const char *path, mimo_drafter_config *cfg, mimo_error *err);
int  mimo_drafter_config_parse_json(const char *json_text, const char *path, mimo_drafter_config *cfg, mimo_error *err);
char *mimo_drafter_config_to_json(const mimo_drafter_config *cfg);
/* The drafter that synth writes next to a target preset (MiMo-V2.5-Pro: 5 layers, block 8,
 * window 1024, target layers [0, 15, 31, 47, 69]). */
void mimo_drafter_config_for_target(const mimo_config *target, mimo_drafter_config *cfg);
int  mimo_drafter_bind(const mimo_drafter_config *cfg, mimo_tensor_source *src,
                       mimo_drafter_weights *w, mimo_error *err);
void mimo_drafter_free(mimo_drafter_weights *w);
/* The drafter's synthetic tensors; target supplies hidden size etc. via cfg. */
int  mimo_drafter_synth(const mimo_drafter_config *cfg, uint64_t seed, mimo_tensor_source **out, mimo_error *err);
/* config.json + safetensors of a synthetic drafter into dir (created if missing). */
int  mimo_drafter_write_dir(const mimo_drafter_config *cfg, uint64_t seed, const char *dir, mimo_error *err);

#endif
