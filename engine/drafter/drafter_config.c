/* The DFlash drafter's config.json (DFLASH.md "Files"): a Qwen3-style config plus block_size,
 * num_target_layers and dflash_config {target_layer_ids, mask_token_id}, and MiMo's extra keys
 * (per-layer windows, sink bias, attention_value_scale). Also the drafter synth writes next to
 * each target preset. */
#include "mimo/dflash.h"
#include "mimo/file_io.h"
#include "mimo/json_config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- key readers: the shared ones (mimo/json_config.h) plus the drafter's range checks ---- */

static int read_int(json_t *obj, const char *key, bool required, int def, long min, long max,
                    const char *path, int *out, mimo_error *err)
{
    mimo_json_ctx c = {path, err};
    if (required ? mimo_json_need_int(&c, obj, key, out) : mimo_json_opt_int(&c, obj, key, def, out))
        return -1;
    if (*out < min || *out > max)
        return mimo_fail(err, "%s: key '%s' = %d out of range [%ld, %ld]", path, key, *out, min, max);
    return 0;
}

static int read_number(json_t *obj, const char *key, double def, const char *path, double *out, mimo_error *err)
{
    mimo_json_ctx c = {path, err};
    return mimo_json_opt_num(&c, obj, key, def, out);
}

static int read_bool(json_t *obj, const char *key, bool def, const char *path, bool *out, mimo_error *err)
{
    mimo_json_ctx c = {path, err};
    return mimo_json_opt_bool(&c, obj, key, def, out);
}

/* A key of the DFlash block: dflash_config first, then the top level. */
static json_t *dflash_key(json_t *root, const char *key)
{
    json_t *d = json_object_get(root, "dflash_config");
    json_t *v = json_is_object(d) ? json_object_get(d, key) : NULL;
    return v ? v : json_object_get(root, key);
}

/* z-lab's rule when a config names no target layers: evenly spaced in [1, L-3]. */
static void default_target_layer_ids(int n_target_depth, int n_ids, int *ids)
{
    if (n_ids == 1) {
        ids[0] = n_target_depth / 2;
        return;
    }
    int start = 1, end = n_target_depth - 3;
    if (end < start)
        end = start;
    for (int i = 0; i < n_ids; i++)
        ids[i] = (int)lround(start + (double)i * (end - start) / (n_ids - 1));
}

static int parse_layer_types(json_t *root, const char *path, mimo_drafter_config *cfg, mimo_error *err)
{
    json_t *types = json_object_get(root, "layer_types");
    json_t *hybrid = json_object_get(root, "hybrid_layer_pattern");
    if (json_is_array(types)) {
        if ((int)json_array_size(types) != cfg->num_layers)
            return mimo_fail(err, "%s: key 'layer_types' has %zu entries, num_hidden_layers is %d", path,
                             json_array_size(types), cfg->num_layers);
        for (int l = 0; l < cfg->num_layers; l++) {
            const char *t = json_string_value(json_array_get(types, (size_t)l));
            if (t && !strcmp(t, "sliding_attention"))
                cfg->layer_is_swa[l] = true;
            else if (t && !strcmp(t, "full_attention"))
                cfg->layer_is_swa[l] = false;
            else
                return mimo_fail(err, "%s: key 'layer_types[%d]' must be \"full_attention\" or \"sliding_attention\"", path, l);
        }
    } else if (json_is_array(hybrid)) {
        if ((int)json_array_size(hybrid) != cfg->num_layers)
            return mimo_fail(err, "%s: key 'hybrid_layer_pattern' has %zu entries, num_hidden_layers is %d", path,
                             json_array_size(hybrid), cfg->num_layers);
        for (int l = 0; l < cfg->num_layers; l++) {
            json_t *v = json_array_get(hybrid, (size_t)l);
            if (!json_is_integer(v))
                return mimo_fail(err, "%s: key 'hybrid_layer_pattern[%d]' must be 0 or 1", path, l);
            cfg->layer_is_swa[l] = json_integer_value(v) != 0;
        }
    } else {
        /* No per-layer list: Qwen3's use_sliding_window switches every layer. */
        bool all_swa;
        if (read_bool(root, "use_sliding_window", false, path, &all_swa, err))
            return -1;
        for (int l = 0; l < cfg->num_layers; l++)
            cfg->layer_is_swa[l] = all_swa;
    }
    return 0;
}

int mimo_drafter_config_parse_json(const char *json_text, const char *path, mimo_drafter_config *cfg, mimo_error *err)
{
    if (!path)
        path = "drafter config";
    memset(cfg, 0, sizeof *cfg);
    json_error_t jerr;
    json_t *root = json_loads(json_text, 0, &jerr);
    if (!root)
        return mimo_fail(err, "%s: invalid JSON at line %d: %s", path, jerr.line, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return mimo_fail(err, "%s: top level must be an object", path);
    }
    int rc = -1;
    double d;

    if (read_int(root, "hidden_size", true, 0, 1, 1 << 20, path, &cfg->hidden_size, err) ||
        read_int(root, "num_hidden_layers", true, 0, 1, 64, path, &cfg->num_layers, err) ||
        read_int(root, "num_attention_heads", true, 0, 1, 4096, path, &cfg->n_heads, err) ||
        read_int(root, "num_key_value_heads", false, cfg->n_heads, 1, 4096, path, &cfg->n_kv_heads, err) ||
        read_int(root, "head_dim", false, cfg->hidden_size / cfg->n_heads, 2, 4096, path, &cfg->head_dim, err) ||
        read_int(root, "intermediate_size", true, 0, 1, 1 << 22, path, &cfg->intermediate_size, err))
        goto done;
    if (cfg->n_heads % cfg->n_kv_heads) {
        mimo_fail(err, "%s: key 'num_attention_heads' (%d) is not a multiple of 'num_key_value_heads' (%d)", path,
                  cfg->n_heads, cfg->n_kv_heads);
        goto done;
    }
    if (cfg->head_dim % 2) {
        mimo_fail(err, "%s: key 'head_dim' must be even (RoPE pairs), got %d", path, cfg->head_dim);
        goto done;
    }
    if (read_number(root, "rms_norm_eps", 1e-6, path, &d, err))
        goto done;
    cfg->rms_eps = (float)d;
    if (cfg->rms_eps <= 0) {
        mimo_fail(err, "%s: key 'rms_norm_eps' must be > 0", path);
        goto done;
    }
    {
        json_t *rp = json_object_get(root, "rope_parameters");
        double theta = 1e6;
        if (json_object_get(root, "rope_theta")) {
            if (read_number(root, "rope_theta", 1e6, path, &theta, err))
                goto done;
        } else if (json_is_object(rp) && json_object_get(rp, "rope_theta")) {
            if (read_number(rp, "rope_theta", 1e6, path, &theta, err))
                goto done;
        }
        if (theta <= 0) {
            mimo_fail(err, "%s: key 'rope_theta' must be > 0", path);
            goto done;
        }
        cfg->rope_theta = theta;
        double factor = 1.0;
        if (json_object_get(root, "partial_rotary_factor")) {
            if (read_number(root, "partial_rotary_factor", 1.0, path, &factor, err))
                goto done;
        } else if (json_is_object(rp) && json_object_get(rp, "partial_rotary_factor")) {
            if (read_number(rp, "partial_rotary_factor", 1.0, path, &factor, err))
                goto done;
        }
        if (factor <= 0 || factor > 1) {
            mimo_fail(err, "%s: key 'partial_rotary_factor' must be in (0, 1]", path);
            goto done;
        }
        cfg->rope_dim = (int)lround(cfg->head_dim * factor) & ~1;
        if (cfg->rope_dim < 2)
            cfg->rope_dim = 2;
    }
    if (parse_layer_types(root, path, cfg, err))
        goto done;
    {
        int window = 0;
        const char *wkey = json_object_get(root, "sliding_window_size") ? "sliding_window_size" : "sliding_window";
        if (read_int(root, wkey, false, 0, 0, 1 << 30, path, &window, err))
            goto done;
        cfg->window = window;
        bool any_swa = false;
        for (int l = 0; l < cfg->num_layers; l++)
            any_swa |= cfg->layer_is_swa[l];
        if (any_swa && window < 1) {
            mimo_fail(err, "%s: key 'sliding_window' must be >= 1 when a layer is sliding_attention", path);
            goto done;
        }
    }
    {
        /* a sink on any layer kind, under MiMo's or Qwen-style names */
        static const char *const sink_keys[] = {"add_swa_attention_sink_bias", "add_full_attention_sink_bias",
                                                "attention_sink_bias", "use_sink_bias"};
        cfg->has_sink = false;
        for (size_t k = 0; k < sizeof sink_keys / sizeof sink_keys[0]; k++) {
            bool on;
            if (read_bool(root, sink_keys[k], false, path, &on, err))
                goto done;
            cfg->has_sink |= on;
        }
    }
    if (read_number(root, "attention_value_scale", 1.0, path, &d, err))
        goto done;
    cfg->attention_value_scale = (float)d;

    {
        json_t *v = dflash_key(root, "block_size");
        if (!json_is_integer(v)) {
            mimo_fail(err, "%s: missing integer key 'block_size' (top level or dflash_config)", path);
            goto done;
        }
        json_int_t b = json_integer_value(v);
        if (b < 2 || b > MIMO_DFLASH_MAX_BLOCK) {
            mimo_fail(err, "%s: key 'block_size' = %lld out of range [2, %d]", path, (long long)b, MIMO_DFLASH_MAX_BLOCK);
            goto done;
        }
        cfg->block_size = (int)b;
    }
    {
        /* num_target_layers is the target's depth (z-lab); it bounds the ids and gives default ones. */
        int target_depth = 0;
        json_t *nt = dflash_key(root, "num_target_layers");
        if (nt && !json_is_integer(nt)) {
            mimo_fail(err, "%s: key 'num_target_layers' must be an integer", path);
            goto done;
        }
        if (nt)
            target_depth = (int)json_integer_value(nt);
        json_t *ids = dflash_key(root, "target_layer_ids");
        if (json_is_array(ids)) {
            size_t n = json_array_size(ids);
            if (n < 1 || n > MIMO_DFLASH_MAX_TARGET_LAYERS) {
                mimo_fail(err, "%s: key 'target_layer_ids' must have 1..%d entries (has %zu)", path,
                          MIMO_DFLASH_MAX_TARGET_LAYERS, n);
                goto done;
            }
            cfg->n_target_layers = (int)n;
            for (size_t i = 0; i < n; i++) {
                json_t *x = json_array_get(ids, i);
                if (!json_is_integer(x) || json_integer_value(x) < 0 ||
                    (target_depth > 0 && json_integer_value(x) >= target_depth)) {
                    mimo_fail(err, "%s: key 'target_layer_ids[%zu]' must be an integer in [0, num_target_layers)", path, i);
                    goto done;
                }
                cfg->target_layer_ids[i] = (int)json_integer_value(x);
            }
        } else if (ids) {
            mimo_fail(err, "%s: key 'target_layer_ids' must be an array", path);
            goto done;
        } else if (target_depth > 0) {
            cfg->n_target_layers = cfg->num_layers < MIMO_DFLASH_MAX_TARGET_LAYERS ? cfg->num_layers : MIMO_DFLASH_MAX_TARGET_LAYERS;
            default_target_layer_ids(target_depth, cfg->n_target_layers, cfg->target_layer_ids);
        } else {
            mimo_fail(err, "%s: missing key 'dflash_config.target_layer_ids' (and no 'num_target_layers' to derive it)", path);
            goto done;
        }
    }
    {
        json_t *m = dflash_key(root, "mask_token_id");
        if (!json_is_integer(m) || json_integer_value(m) < 0) {
            mimo_fail(err, "%s: missing or negative key 'dflash_config.mask_token_id'", path);
            goto done;
        }
        cfg->mask_token_id = (int)json_integer_value(m);
    }
    rc = 0;
done:
    json_decref(root);
    return rc;
}

int mimo_drafter_config_load(const char *path, mimo_drafter_config *cfg, mimo_error *err)
{
    char *text;
    if (mimo_read_text_file(path, 64u << 20, &text, NULL, err))
        return mimo_fail_prefix(err, "drafter config");
    int rc = mimo_drafter_config_parse_json(text, path, cfg, err);
    free(text);
    return rc;
}

char *mimo_drafter_config_to_json(const mimo_drafter_config *cfg)
{
    json_t *root = json_object();
    json_object_set_new(root, "architectures", json_pack("[s]", "DFlashDraftModel"));
    json_object_set_new(root, "model_type", json_string("qwen3"));
    json_object_set_new(root, "hidden_size", json_integer(cfg->hidden_size));
    json_object_set_new(root, "num_hidden_layers", json_integer(cfg->num_layers));
    json_object_set_new(root, "num_attention_heads", json_integer(cfg->n_heads));
    json_object_set_new(root, "num_key_value_heads", json_integer(cfg->n_kv_heads));
    json_object_set_new(root, "head_dim", json_integer(cfg->head_dim));
    json_object_set_new(root, "intermediate_size", json_integer(cfg->intermediate_size));
    json_object_set_new(root, "rms_norm_eps", json_real(cfg->rms_eps));
    json_object_set_new(root, "rope_theta", json_real(cfg->rope_theta));
    if (cfg->rope_dim != cfg->head_dim)
        json_object_set_new(root, "partial_rotary_factor", json_real((double)cfg->rope_dim / cfg->head_dim));
    json_t *types = json_array();
    bool any_swa = false;
    for (int l = 0; l < cfg->num_layers; l++) {
        json_array_append_new(types, json_string(cfg->layer_is_swa[l] ? "sliding_attention" : "full_attention"));
        any_swa |= cfg->layer_is_swa[l];
    }
    json_object_set_new(root, "layer_types", types);
    json_object_set_new(root, "use_sliding_window", json_boolean(any_swa));
    json_object_set_new(root, "sliding_window", any_swa ? json_integer(cfg->window) : json_null());
    /* MiMo's extras: sink bias on the drafter's layers, value scale. */
    json_object_set_new(root, "add_swa_attention_sink_bias", json_boolean(cfg->has_sink));
    json_object_set_new(root, "add_full_attention_sink_bias", json_boolean(cfg->has_sink));
    json_object_set_new(root, "attention_value_scale", json_real(cfg->attention_value_scale));
    json_object_set_new(root, "block_size", json_integer(cfg->block_size));
    int depth = 0;
    for (int i = 0; i < cfg->n_target_layers; i++)
        if (cfg->target_layer_ids[i] + 1 > depth)
            depth = cfg->target_layer_ids[i] + 1;
    json_object_set_new(root, "num_target_layers", json_integer(depth));
    json_t *dc = json_object();
    json_t *ids = json_array();
    for (int i = 0; i < cfg->n_target_layers; i++)
        json_array_append_new(ids, json_integer(cfg->target_layer_ids[i]));
    json_object_set_new(dc, "target_layer_ids", ids);
    json_object_set_new(dc, "mask_token_id", json_integer(cfg->mask_token_id));
    json_object_set_new(root, "dflash_config", dc);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(root);
    return text;
}

/* Spread n ids over a target of L layers, first and last included. */
static void spread_ids(int L, int n, int *ids)
{
    if (n > L)
        n = L;
    for (int i = 0; i < n; i++)
        ids[i] = n == 1 ? L - 1 : (int)lround((double)i * (L - 1) / (n - 1));
}

void mimo_drafter_config_for_target(const mimo_config *target, mimo_drafter_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    int H = target->hidden_size, L = target->num_layers;
    cfg->hidden_size = H;
    cfg->head_dim = H >= 2048 ? 128 : H >= 256 ? 64 : (H / 4 >= 8 ? (H / 4) & ~1 : 8);
    cfg->n_heads = H / cfg->head_dim > 0 ? H / cfg->head_dim : 1;
    /* GQA: 4 q heads per kv head at scale, 2 on small shapes (tiny: 4 heads over 2 kv heads). */
    cfg->n_kv_heads = cfg->n_heads >= 16 && cfg->n_heads % 4 == 0 ? cfg->n_heads / 4
                    : cfg->n_heads % 2 == 0 ? cfg->n_heads / 2 : cfg->n_heads;
    cfg->intermediate_size = target->intermediate_size > 0 ? target->intermediate_size : 3 * H;
    cfg->rms_eps = target->rms_eps > 0 ? target->rms_eps : 1e-6f;
    cfg->rope_theta = target->full.rope_theta > 0 ? target->full.rope_theta : 1e6;
    cfg->rope_dim = cfg->head_dim;
    cfg->has_sink = true;
    cfg->attention_value_scale = 1.0f;
    /* Not one of the synthetic tokenizer's specials (the last three ids, <|im_end|> among them). */
    cfg->mask_token_id = target->vocab_size > 4 ? target->vocab_size - 4 : 0;

    if (L >= 24) {
        /* The MiMo shape (DFLASH.md): 5 SWA layers, window 1024, block 8. */
        cfg->num_layers = 5;
        cfg->block_size = 8;
        cfg->window = 1024;
        for (int l = 0; l < cfg->num_layers; l++)
            cfg->layer_is_swa[l] = true;
        cfg->n_target_layers = 5;
        cfg->target_layer_ids[0] = 0;
        for (int k = 1; k < 5; k++)   /* 70 layers: [0, 15, 31, 47, 69]; 48: [0, 11, 23, 35, 47] */
            cfg->target_layer_ids[k] = L == 70 ? (k < 4 ? 16 * k - 1 : 69) : (int)lround(k * L / 4.0) - 1;
    } else if (H >= 512) {
        /* GPU demo size: 3 layers (2 SWA + 1 full), block 8. */
        cfg->num_layers = 3;
        cfg->block_size = 8;
        cfg->window = 256;
        cfg->layer_is_swa[0] = cfg->layer_is_swa[1] = true;
        cfg->n_target_layers = L >= 4 ? 4 : L;
        spread_ids(L, cfg->n_target_layers, cfg->target_layer_ids);
    } else {
        /* CI size: 2 layers (SWA with a small window + full), block 4: every feature present. */
        cfg->num_layers = 2;
        cfg->block_size = 4;
        cfg->window = 8;
        cfg->layer_is_swa[0] = true;
        cfg->n_target_layers = L >= 3 ? 3 : L;
        spread_ids(L, cfg->n_target_layers, cfg->target_layer_ids);
    }
}
