/* config.json -> mimo_config (MODEL.md), in both spellings:
 *  - native MiMo keys: hybrid_layer_pattern, moe_layer_freq, swa_*, sliding_window_size, layernorm_epsilon;
 *  - Hugging Face transformers 5.x (model_type mimo_v2_flash): layer_types, mlp_layer_types,
 *    rope_parameters, rms_norm_eps, sliding_window. Without swa_* keys that class gives SWA layers twice
 *    the full layers' kv heads, the same q heads and head dims, and a sink; we apply the same defaults.
 *
 * Keys this engine adds (documented in the README; all optional):
 *  - "qkv_layout": "plain" (default) | "tp_interleaved", "qkv_groups": N (default 8): the fused qkv row
 *    order. Interleaved = N groups of (heads/N q heads, kv/N k heads, kv/N v heads), FP8 scale rows
 *    padded per group (the published MiMo-V2.5-Pro layout).
 *  - "quantization_config.expert_quant_method" (alias "quantization_config.experts"): "mxfp4" | "fp8" |
 *    "bf16" | "f32": the expert store (an FP4 checkpoint says "mxfp4"; quant_method "mxfp4" alone means
 *    MXFP4 experts with everything else in torch_dtype).
 *  - "swa_partial_rotary_factor": RoPE fraction of SWA layers when it differs from partial_rotary_factor.
 *  - "mimo_storage": {"embed","lm_head","qkv","o_proj","dense_mlp","experts","router","norms": format}
 *    the exact storage per weight group; overrides what torch_dtype/quantization_config imply.
 *    mimo_config_to_json always writes it so that storage round-trips exactly. */
#include "mimo/config.h"
#include "mimo/file_io.h"
#include "mimo/json_config.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    mimo_json_ctx j;    /* file + error, for the shared key readers */
    json_t       *root;
} parse_ctx;

/* round(head_dim * factor), rounded to an even number (RoPE rotates pairs). */
static int rope_dim_of(int head_dim, double factor)
{
    return 2 * (int)lround(head_dim * factor / 2.0);
}

/* ---- per-layer patterns ---- */

static int parse_layer_kinds(parse_ctx *p, json_t *root, mimo_config *c, bool *from_layer_types)
{
    json_t *hyb = mimo_json_get(root, "hybrid_layer_pattern");
    json_t *lt = mimo_json_get(root, "layer_types");
    *from_layer_types = false;
    if (hyb) {
        if (!json_is_array(hyb))
            return mimo_json_fail_type(&p->j, "hybrid_layer_pattern", "an array of 0/1");
        if ((int)json_array_size(hyb) != c->num_layers)
            return mimo_fail(p->j.err, "%s: key 'hybrid_layer_pattern' has %zu entries but num_hidden_layers is %d",
                             p->j.path, json_array_size(hyb), c->num_layers);
        for (int l = 0; l < c->num_layers; l++) {
            json_t *e = json_array_get(hyb, (size_t)l);
            if (!json_is_integer(e) || (json_integer_value(e) != 0 && json_integer_value(e) != 1))
                return mimo_fail(p->j.err, "%s: key 'hybrid_layer_pattern' entry %d must be 0 or 1", p->j.path, l);
            c->layer_is_swa[l] = json_integer_value(e) == 1;
        }
        return 0;
    }
    if (lt) {
        if (!json_is_array(lt))
            return mimo_json_fail_type(&p->j, "layer_types", "an array of strings");
        if ((int)json_array_size(lt) != c->num_layers)
            return mimo_fail(p->j.err, "%s: key 'layer_types' has %zu entries but num_hidden_layers is %d",
                             p->j.path, json_array_size(lt), c->num_layers);
        for (int l = 0; l < c->num_layers; l++) {
            const char *s = json_string_value(json_array_get(lt, (size_t)l));
            if (s && !strcmp(s, "full_attention"))
                c->layer_is_swa[l] = false;
            else if (s && (!strcmp(s, "sliding_attention") || !strcmp(s, "sliding_window_attention")))
                c->layer_is_swa[l] = true;
            else
                return mimo_fail(p->j.err, "%s: key 'layer_types' entry %d must be \"full_attention\" or \"sliding_attention\"",
                                 p->j.path, l);
        }
        *from_layer_types = true;
        return 0;
    }
    return mimo_fail(p->j.err, "%s: missing key 'hybrid_layer_pattern' (or 'layer_types')", p->j.path);
}

static int parse_mlp_kinds(parse_ctx *p, json_t *root, mimo_config *c)
{
    json_t *freq = mimo_json_get(root, "moe_layer_freq");
    json_t *mt = mimo_json_get(root, "mlp_layer_types");
    if (freq && json_is_array(freq)) {
        if ((int)json_array_size(freq) != c->num_layers)
            return mimo_fail(p->j.err, "%s: key 'moe_layer_freq' has %zu entries but num_hidden_layers is %d",
                             p->j.path, json_array_size(freq), c->num_layers);
        for (int l = 0; l < c->num_layers; l++) {
            json_t *e = json_array_get(freq, (size_t)l);
            if (!json_is_integer(e) || (json_integer_value(e) != 0 && json_integer_value(e) != 1))
                return mimo_fail(p->j.err, "%s: key 'moe_layer_freq' entry %d must be 0 or 1", p->j.path, l);
            c->layer_is_moe[l] = json_integer_value(e) == 1;
        }
        return 0;
    }
    if (freq) {
        /* DeepSeek spelling: an integer period plus first_k_dense_replace. */
        int k, first_dense;
        if (mimo_json_read_int(&p->j, freq, "moe_layer_freq", &k) || mimo_json_opt_int(&p->j, root, "first_k_dense_replace", 0, &first_dense))
            return -1;
        if (k <= 0)
            return mimo_fail(p->j.err, "%s: key 'moe_layer_freq' must be positive", p->j.path);
        for (int l = 0; l < c->num_layers; l++)
            c->layer_is_moe[l] = l >= first_dense && l % k == 0;
        return 0;
    }
    if (mt) {
        if (!json_is_array(mt))
            return mimo_json_fail_type(&p->j, "mlp_layer_types", "an array of strings");
        if ((int)json_array_size(mt) != c->num_layers)
            return mimo_fail(p->j.err, "%s: key 'mlp_layer_types' has %zu entries but num_hidden_layers is %d",
                             p->j.path, json_array_size(mt), c->num_layers);
        for (int l = 0; l < c->num_layers; l++) {
            const char *s = json_string_value(json_array_get(mt, (size_t)l));
            if (s && !strcmp(s, "dense"))
                c->layer_is_moe[l] = false;
            else if (s && (!strcmp(s, "sparse") || !strcmp(s, "moe")))
                c->layer_is_moe[l] = true;
            else
                return mimo_fail(p->j.err, "%s: key 'mlp_layer_types' entry %d must be \"dense\" or \"sparse\"", p->j.path, l);
        }
        return 0;
    }
    return mimo_fail(p->j.err, "%s: missing key 'moe_layer_freq' (or 'mlp_layer_types')", p->j.path);
}

/* ---- RoPE: top-level keys or rope_parameters (flat, or keyed by layer type) ---- */

static int parse_rope(parse_ctx *p, json_t *root, bool swa_defaults, double *full_theta, double *swa_theta,
                      double *full_factor, double *swa_factor, bool *have_swa_theta)
{
    json_t *rp = mimo_json_get(root, "rope_parameters");
    json_t *rp_full = NULL, *rp_swa = NULL;
    if (rp && !json_is_object(rp))
        return mimo_json_fail_type(&p->j, "rope_parameters", "an object");
    if (rp) {
        rp_full = mimo_json_get(rp, "full_attention");
        rp_swa = mimo_json_get(rp, "sliding_attention");
        if (!rp_full && !rp_swa)
            rp_full = rp;   /* flat form: one set for every layer */
    }
    /* theta of full layers */
    json_t *t = mimo_json_get(root, "rope_theta");
    if (!t && rp_full)
        t = mimo_json_get(rp_full, "rope_theta");
    if (!t)
        return mimo_json_fail_missing(&p->j, "rope_theta");
    if (mimo_json_read_num(&p->j, t, "rope_theta", full_theta))
        return -1;
    /* partial factor of full layers */
    json_t *f = mimo_json_get(root, "partial_rotary_factor");
    if (!f && rp_full)
        f = mimo_json_get(rp_full, "partial_rotary_factor");
    *full_factor = 1.0;
    if (f && mimo_json_read_num(&p->j, f, "partial_rotary_factor", full_factor))
        return -1;
    /* SWA theta: swa_rope_theta, rope_parameters.sliding_attention, or (transformers defaults) the full one */
    json_t *st = mimo_json_get(root, "swa_rope_theta");
    if (!st && rp_swa)
        st = mimo_json_get(rp_swa, "rope_theta");
    *have_swa_theta = st != NULL;
    *swa_theta = *full_theta;
    if (st && mimo_json_read_num(&p->j, st, "swa_rope_theta", swa_theta))
        return -1;
    if (!st && swa_defaults)
        *have_swa_theta = true;
    json_t *sf = mimo_json_get(root, "swa_partial_rotary_factor");
    if (!sf && rp_swa)
        sf = mimo_json_get(rp_swa, "partial_rotary_factor");
    *swa_factor = *full_factor;
    if (sf && mimo_json_read_num(&p->j, sf, "swa_partial_rotary_factor", swa_factor))
        return -1;
    return 0;
}

/* ---- storage: torch_dtype + quantization_config + moe_router_dtype + mimo_storage ---- */

static int parse_format(parse_ctx *p, json_t *v, const char *key, mimo_weight_format *out)
{
    if (!json_is_string(v) || mimo_weight_format_from_name(json_string_value(v), out))
        return mimo_fail(p->j.err, "%s: key '%s' must be one of f32, bf16, fp8, mxfp4", p->j.path, key);
    return 0;
}

static int parse_storage(parse_ctx *p, json_t *root, mimo_storage *s)
{
    mimo_weight_format base = MIMO_WFMT_BF16;
    json_t *td = mimo_json_get(root, "torch_dtype");
    const char *td_key = "torch_dtype";
    if (!td) {
        td = mimo_json_get(root, "dtype");
        td_key = "dtype";
    }
    if (td) {
        if (parse_format(p, td, td_key, &base))
            return -1;
        if (base != MIMO_WFMT_F32 && base != MIMO_WFMT_BF16)
            return mimo_fail(p->j.err, "%s: key '%s' must be float32 or bfloat16", p->j.path, td_key);
    }
    s->embed = s->lm_head = s->qkv = s->o_proj = s->dense_mlp = s->experts = s->norms = base;
    s->router = MIMO_WFMT_F32;

    json_t *rd = mimo_json_get(root, "moe_router_dtype");
    if (rd && parse_format(p, rd, "moe_router_dtype", &s->router))
        return -1;

    json_t *q = mimo_json_get(root, "quantization_config");
    if (q) {
        if (!json_is_object(q))
            return mimo_json_fail_type(&p->j, "quantization_config", "an object");
        json_t *m = mimo_json_get(q, "quant_method");
        const char *method = json_is_string(m) ? json_string_value(m) : NULL;
        if (!method)
            return mimo_json_fail_missing(&p->j, "quantization_config.quant_method");
        if (!strcmp(method, "fp8")) {
            json_t *fmt = mimo_json_get(q, "fmt");
            if (fmt && (!json_is_string(fmt) || strcmp(json_string_value(fmt), "e4m3")))
                return mimo_fail(p->j.err, "%s: key 'quantization_config.fmt' must be \"e4m3\"", p->j.path);
            json_t *bs = mimo_json_get(q, "weight_block_size");
            if (bs && (!json_is_array(bs) || json_array_size(bs) != 2 ||
                       json_integer_value(json_array_get(bs, 0)) != 128 ||
                       json_integer_value(json_array_get(bs, 1)) != 128))
                return mimo_fail(p->j.err, "%s: key 'quantization_config.weight_block_size' must be [128, 128]", p->j.path);
            s->qkv = s->o_proj = s->dense_mlp = s->experts = MIMO_WFMT_FP8;
            json_t *ign = mimo_json_get(q, "ignored_layers");
            if (!ign)
                ign = mimo_json_get(q, "modules_to_not_convert");
            if (ign && !json_is_array(ign))
                return mimo_json_fail_type(&p->j, "quantization_config.ignored_layers", "an array of strings");
            for (size_t i = 0; ign && i < json_array_size(ign); i++) {
                const char *name = json_string_value(json_array_get(ign, i));
                if (!name)
                    continue;
                if (strstr(name, "o_proj"))
                    s->o_proj = base;
                else if (strstr(name, "qkv_proj") || strstr(name, "q_proj") || strstr(name, "k_proj") ||
                         strstr(name, "v_proj"))
                    s->qkv = base;
                else if (strstr(name, "experts"))
                    s->experts = base;
                else if (strstr(name, "gate_proj") || strstr(name, "up_proj") || strstr(name, "down_proj"))
                    s->dense_mlp = base;
                /* anything else (router "mlp.gate", lm_head, ...) is never quantized here */
            }
        } else if (!strcmp(method, "mxfp4")) {
            s->experts = MIMO_WFMT_MXFP4;
        } else {
            return mimo_fail(p->j.err, "%s: key 'quantization_config.quant_method' \"%s\" is not supported (fp8, mxfp4)",
                             p->j.path, method);
        }
        json_t *eq = mimo_json_get(q, "expert_quant_method");
        const char *eq_key = "quantization_config.expert_quant_method";
        if (!eq) {
            eq = mimo_json_get(q, "experts");   /* short alias */
            eq_key = "quantization_config.experts";
        }
        if (eq && parse_format(p, eq, eq_key, &s->experts))
            return -1;
    }

    json_t *ms = mimo_json_get(root, "mimo_storage");
    if (ms) {
        if (!json_is_object(ms))
            return mimo_json_fail_type(&p->j, "mimo_storage", "an object");
        static const struct { const char *key; size_t off; } groups[] = {
            {"embed", offsetof(mimo_storage, embed)},         {"lm_head", offsetof(mimo_storage, lm_head)},
            {"qkv", offsetof(mimo_storage, qkv)},             {"o_proj", offsetof(mimo_storage, o_proj)},
            {"dense_mlp", offsetof(mimo_storage, dense_mlp)}, {"experts", offsetof(mimo_storage, experts)},
            {"router", offsetof(mimo_storage, router)},       {"norms", offsetof(mimo_storage, norms)},
        };
        for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
            json_t *v = mimo_json_get(ms, groups[i].key);
            char key[64];
            snprintf(key, sizeof key, "mimo_storage.%s", groups[i].key);
            if (v && parse_format(p, v, key, (mimo_weight_format *)((char *)s + groups[i].off)))
                return -1;
        }
    }
    return 0;
}

static int parse_attn_full(parse_ctx *p, json_t *root, mimo_config *c)
{
    mimo_attn_shape *a = &c->full;
    if (mimo_json_need_int(&p->j, root, "num_attention_heads", &a->n_heads) ||
        mimo_json_need_int(&p->j, root, "num_key_value_heads", &a->n_kv_heads) ||
        mimo_json_need_int(&p->j, root, "head_dim", &a->head_dim))
        return -1;
    /* v_head_dim absent = a standard attention layer with dv = dqk */
    if (mimo_json_opt_int(&p->j, root, "v_head_dim", a->head_dim, &a->v_head_dim))
        return -1;
    return 0;
}

static int parse_attn_swa(parse_ctx *p, json_t *root, mimo_config *c, bool swa_defaults, bool any_swa)
{
    mimo_attn_shape *a = &c->swa;
    if (swa_defaults) {
        /* transformers 5.x defaults: same q heads and dims, twice the kv heads */
        int kv2 = c->full.n_kv_heads * 2;
        if (mimo_json_opt_int(&p->j, root, "swa_num_attention_heads", c->full.n_heads, &a->n_heads) ||
            mimo_json_opt_int(&p->j, root, "swa_num_key_value_heads", kv2, &a->n_kv_heads) ||
            mimo_json_opt_int(&p->j, root, "swa_head_dim", c->full.head_dim, &a->head_dim) ||
            mimo_json_opt_int(&p->j, root, "swa_v_head_dim", c->full.v_head_dim, &a->v_head_dim))
            return -1;
    } else if (any_swa) {
        if (mimo_json_need_int(&p->j, root, "swa_num_attention_heads", &a->n_heads) ||
            mimo_json_need_int(&p->j, root, "swa_num_key_value_heads", &a->n_kv_heads) ||
            mimo_json_need_int(&p->j, root, "swa_head_dim", &a->head_dim))
            return -1;
        if (mimo_json_opt_int(&p->j, root, "swa_v_head_dim", a->head_dim, &a->v_head_dim))
            return -1;
    } else {
        /* no SWA layer: keep the SWA shape equal to the full one so nothing downstream divides by 0 */
        int h, kv, hd, vd;
        if (mimo_json_opt_int(&p->j, root, "swa_num_attention_heads", c->full.n_heads, &h) ||
            mimo_json_opt_int(&p->j, root, "swa_num_key_value_heads", c->full.n_kv_heads, &kv) ||
            mimo_json_opt_int(&p->j, root, "swa_head_dim", c->full.head_dim, &hd) ||
            mimo_json_opt_int(&p->j, root, "swa_v_head_dim", hd, &vd))
            return -1;
        a->n_heads = h, a->n_kv_heads = kv, a->head_dim = hd, a->v_head_dim = vd;
    }
    json_t *w = mimo_json_get(root, "sliding_window_size");
    const char *wkey = "sliding_window_size";
    if (!w) {
        w = mimo_json_get(root, "sliding_window");
        wkey = "sliding_window";
    }
    if (!w) {
        if (any_swa)
            return mimo_fail(p->j.err, "%s: missing key 'sliding_window_size' (or 'sliding_window')", p->j.path);
        a->window = 0;
    } else if (mimo_json_read_int(&p->j, w, wkey, &a->window)) {
        return -1;
    }
    return 0;
}

int mimo_config_parse_json(const char *json_text, const char *path, mimo_config *cfg, mimo_error *err)
{
    if (!path)
        path = "config.json";
    json_error_t jerr;
    json_t *root = json_loads(json_text ? json_text : "", 0, &jerr);
    if (!root)
        return mimo_fail(err, "%s:%d: invalid JSON: %s", path, jerr.line, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return mimo_fail(err, "%s: top level must be a JSON object", path);
    }
    parse_ctx pc = {{path, err}, root}, *p = &pc;
    mimo_config c;
    memset(&c, 0, sizeof c);
    int rc = -1;
    double d;

    if (mimo_json_opt_str(&p->j, root, "model_type", "mimo_v2_flash", c.model_type, sizeof c.model_type) ||
        mimo_json_need_int(&p->j, root, "hidden_size", &c.hidden_size) ||
        mimo_json_need_int(&p->j, root, "num_hidden_layers", &c.num_layers) ||
        mimo_json_need_int(&p->j, root, "vocab_size", &c.vocab_size) ||
        mimo_json_opt_int(&p->j, root, "max_position_embeddings", 262144, &c.max_position_embeddings))
        goto done;
    if (c.num_layers <= 0 || c.num_layers > MIMO_MAX_LAYERS) {
        mimo_fail(err, "%s: key 'num_hidden_layers' must be in 1..%d (got %d)", path, MIMO_MAX_LAYERS, c.num_layers);
        goto done;
    }
    {
        json_t *eps = mimo_json_get(root, "layernorm_epsilon");
        const char *ekey = "layernorm_epsilon";
        if (!eps) {
            eps = mimo_json_get(root, "rms_norm_eps");
            ekey = "rms_norm_eps";
        }
        if (!eps) {
            mimo_fail(err, "%s: missing key 'layernorm_epsilon' (or 'rms_norm_eps')", path);
            goto done;
        }
        if (mimo_json_read_num(&p->j, eps, ekey, &d))
            goto done;
        c.rms_eps = (float)d;
    }

    bool from_layer_types;
    if (parse_layer_kinds(p, root, &c, &from_layer_types) || parse_mlp_kinds(p, root, &c))
        goto done;
    bool any_swa = false, any_full = false, any_moe = false, any_dense = false;
    for (int l = 0; l < c.num_layers; l++) {
        any_swa |= c.layer_is_swa[l];
        any_full |= !c.layer_is_swa[l];
        any_moe |= c.layer_is_moe[l];
        any_dense |= !c.layer_is_moe[l];
    }
    /* transformers-5 defaults apply when the config spells layers as layer_types and has no swa_* keys */
    bool swa_defaults = from_layer_types && !mimo_json_get(root, "swa_num_attention_heads") &&
                        !mimo_json_get(root, "swa_num_key_value_heads") && !mimo_json_get(root, "swa_head_dim");

    if (parse_attn_full(p, root, &c) || parse_attn_swa(p, root, &c, swa_defaults, any_swa))
        goto done;
    c.full.window = 0;

    double full_theta, swa_theta, full_factor, swa_factor;
    bool have_swa_theta = false;
    if (parse_rope(p, root, swa_defaults, &full_theta, &swa_theta, &full_factor, &swa_factor, &have_swa_theta))
        goto done;
    if (any_swa && !have_swa_theta) {
        mimo_json_fail_missing(&p->j, "swa_rope_theta");
        goto done;
    }
    c.full.rope_theta = full_theta;
    c.swa.rope_theta = swa_theta;
    c.partial_rotary_factor = (float)full_factor;
    c.full.rope_dim = rope_dim_of(c.full.head_dim, full_factor);
    c.swa.rope_dim = rope_dim_of(c.swa.head_dim, swa_factor);

    if (mimo_json_opt_bool(&p->j, root, "add_full_attention_sink_bias", false, &c.full.has_sink) ||
        mimo_json_opt_bool(&p->j, root, "add_swa_attention_sink_bias", swa_defaults, &c.swa.has_sink))
        goto done;
    if (mimo_json_opt_num(&p->j, root, "attention_value_scale", 1.0, &d))
        goto done;
    c.attention_value_scale = (float)d;

    /* MLP / MoE */
    if (any_dense ? mimo_json_need_int(&p->j, root, "intermediate_size", &c.intermediate_size)
                  : mimo_json_opt_int(&p->j, root, "intermediate_size", 0, &c.intermediate_size))
        goto done;
    if (any_moe) {
        if (mimo_json_need_int(&p->j, root, "n_routed_experts", &c.n_routed_experts) ||
            mimo_json_need_int(&p->j, root, "num_experts_per_tok", &c.experts_per_tok) ||
            mimo_json_need_int(&p->j, root, "moe_intermediate_size", &c.moe_intermediate_size))
            goto done;
    } else if (mimo_json_opt_int(&p->j, root, "n_routed_experts", 0, &c.n_routed_experts) ||
               mimo_json_opt_int(&p->j, root, "num_experts_per_tok", 0, &c.experts_per_tok) ||
               mimo_json_opt_int(&p->j, root, "moe_intermediate_size", 0, &c.moe_intermediate_size)) {
        goto done;
    }
    if (mimo_json_opt_int(&p->j, root, "n_shared_experts", 0, &c.n_shared_experts) ||
        mimo_json_opt_bool(&p->j, root, "norm_topk_prob", true, &c.norm_topk_prob) ||
        mimo_json_opt_num(&p->j, root, "routed_scaling_factor", 1.0, &d))
        goto done;
    c.routed_scaling_factor = (float)d;
    if (mimo_json_opt_int(&p->j, root, "n_group", 1, &c.n_group) || mimo_json_opt_int(&p->j, root, "topk_group", 1, &c.topk_group) ||
        mimo_json_opt_str(&p->j, root, "scoring_func", "sigmoid", c.scoring_func, sizeof c.scoring_func) ||
        mimo_json_opt_str(&p->j, root, "topk_method", "noaux_tc", c.topk_method, sizeof c.topk_method) ||
        mimo_json_opt_bool(&p->j, root, "tie_word_embeddings", false, &c.tie_word_embeddings))
        goto done;

    /* qkv row order */
    {
        char layout[32];
        if (mimo_json_opt_str(&p->j, root, "qkv_layout", "plain", layout, sizeof layout) ||
            mimo_json_opt_int(&p->j, root, "qkv_groups", 8, &c.qkv_groups))
            goto done;
        if (!strcmp(layout, "plain")) {
            c.qkv_interleaved = false;
            c.qkv_groups = 1;
        } else if (!strcmp(layout, "tp_interleaved")) {
            c.qkv_interleaved = true;
        } else {
            mimo_fail(err, "%s: key 'qkv_layout' must be \"plain\" or \"tp_interleaved\"", path);
            goto done;
        }
    }

    if (parse_storage(p, root, &c.storage))
        goto done;
    if (mimo_config_validate(&c, err)) {
        mimo_fail_prefix(err, "%s", path);
        goto done;
    }
    *cfg = c;
    rc = 0;
done:
    json_decref(root);
    return rc;
}

int mimo_config_load(const char *path, mimo_config *cfg, mimo_error *err)
{
    char *text;
    if (mimo_read_text_file(path, 64u << 20, &text, NULL, err))
        return -1;
    int rc = mimo_config_parse_json(text, path, cfg, err);
    free(text);
    return rc;
}

/* ---- validation (names the native key at fault) ---- */

static int validate_attn(const mimo_attn_shape *a, bool swa, mimo_error *err)
{
    const char *pre = swa ? "swa_" : "";
    if (a->n_heads <= 0)
        return mimo_fail(err, "key '%snum_attention_heads' must be positive", pre);
    if (a->n_kv_heads <= 0)
        return mimo_fail(err, "key '%snum_key_value_heads' must be positive", pre);
    if (a->n_heads % a->n_kv_heads)
        return mimo_fail(err, "key '%snum_key_value_heads' (%d) must divide %snum_attention_heads (%d)",
                         pre, a->n_kv_heads, pre, a->n_heads);
    if (a->head_dim <= 0 || a->head_dim % 2)
        return mimo_fail(err, "key '%shead_dim' must be positive and even (got %d)", pre, a->head_dim);
    if (a->v_head_dim <= 0)
        return mimo_fail(err, "key '%sv_head_dim' must be positive", pre);
    if (a->rope_dim <= 0 || a->rope_dim % 2 || a->rope_dim > a->head_dim)
        return mimo_fail(err, "key '%spartial_rotary_factor' gives rope dim %d: must be even, > 0 and <= %shead_dim (%d)",
                         pre, a->rope_dim, pre, a->head_dim);
    if (!(a->rope_theta > 0))
        return mimo_fail(err, "key '%srope_theta' must be positive", pre);
    if (swa && a->window <= 0)
        return mimo_fail(err, "key 'sliding_window_size' must be positive on SWA layers (got %d)", a->window);
    if (!swa && a->window != 0)
        return mimo_fail(err, "full-attention layers have no window (got %d)", a->window);
    return 0;
}

static bool format_is_matrix(mimo_weight_format f) { return f >= 0 && f < MIMO_WFMT_COUNT; }

int mimo_config_validate(const mimo_config *c, mimo_error *err)
{
    if (c->hidden_size <= 0)
        return mimo_fail(err, "key 'hidden_size' must be positive");
    if (c->num_layers <= 0 || c->num_layers > MIMO_MAX_LAYERS)
        return mimo_fail(err, "key 'num_hidden_layers' must be in 1..%d", MIMO_MAX_LAYERS);
    if (c->vocab_size <= 0)
        return mimo_fail(err, "key 'vocab_size' must be positive");
    if (!(c->rms_eps > 0) || !isfinite(c->rms_eps))
        return mimo_fail(err, "key 'layernorm_epsilon' must be positive");
    bool any_swa = false, any_full = false, any_moe = false, any_dense = false;
    for (int l = 0; l < c->num_layers; l++) {
        any_swa |= c->layer_is_swa[l];
        any_full |= !c->layer_is_swa[l];
        any_moe |= c->layer_is_moe[l];
        any_dense |= !c->layer_is_moe[l];
    }
    if (any_full && validate_attn(&c->full, false, err))
        return -1;
    if (any_swa && validate_attn(&c->swa, true, err))
        return -1;
    if (!(c->attention_value_scale > 0) || !isfinite(c->attention_value_scale))
        return mimo_fail(err, "key 'attention_value_scale' must be positive");
    if (any_dense && c->intermediate_size <= 0)
        return mimo_fail(err, "key 'intermediate_size' must be positive (dense layers exist)");
    if (any_moe) {
        if (c->n_routed_experts <= 0)
            return mimo_fail(err, "key 'n_routed_experts' must be positive (MoE layers exist)");
        if (c->experts_per_tok <= 0 || c->experts_per_tok > c->n_routed_experts)
            return mimo_fail(err, "key 'num_experts_per_tok' (%d) must be in 1..n_routed_experts (%d)",
                             c->experts_per_tok, c->n_routed_experts);
        if (c->moe_intermediate_size <= 0)
            return mimo_fail(err, "key 'moe_intermediate_size' must be positive");
        if (c->n_group <= 0 || c->n_routed_experts % c->n_group)
            return mimo_fail(err, "key 'n_group' (%d) must divide n_routed_experts (%d)", c->n_group, c->n_routed_experts);
        if (c->topk_group <= 0 || c->topk_group > c->n_group)
            return mimo_fail(err, "key 'topk_group' (%d) must be in 1..n_group (%d)", c->topk_group, c->n_group);
        if ((int64_t)c->topk_group * (c->n_routed_experts / c->n_group) < c->experts_per_tok)
            return mimo_fail(err, "key 'topk_group' (%d) leaves fewer experts than num_experts_per_tok", c->topk_group);
        if (strcmp(c->scoring_func, "sigmoid"))
            return mimo_fail(err, "key 'scoring_func' \"%s\" is not supported (sigmoid)", c->scoring_func);
        if (!(c->routed_scaling_factor > 0) || !isfinite(c->routed_scaling_factor))
            return mimo_fail(err, "key 'routed_scaling_factor' must be positive");
    }
    if (c->n_shared_experts < 0)
        return mimo_fail(err, "key 'n_shared_experts' must be >= 0");
    if (c->n_shared_experts > 0 && c->moe_intermediate_size <= 0)
        return mimo_fail(err, "key 'moe_intermediate_size' must be positive (shared experts exist)");

    const mimo_storage *s = &c->storage;
    const mimo_weight_format all[] = {s->embed, s->lm_head, s->qkv, s->o_proj, s->dense_mlp, s->experts, s->router, s->norms};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!format_is_matrix(all[i]))
            return mimo_fail(err, "key 'mimo_storage' holds an unknown format");
    if (s->router != MIMO_WFMT_F32 && s->router != MIMO_WFMT_BF16)
        return mimo_fail(err, "key 'moe_router_dtype' must be float32 or bfloat16");
    if (s->norms != MIMO_WFMT_F32 && s->norms != MIMO_WFMT_BF16)
        return mimo_fail(err, "key 'mimo_storage.norms' must be f32 or bf16");
    /* MXFP4 needs K (the input dim) in whole blocks of 32 */
    if (s->experts == MIMO_WFMT_MXFP4 && (any_moe || c->n_shared_experts > 0)) {
        if (c->hidden_size % 32)
            return mimo_fail(err, "key 'hidden_size' (%d) must be a multiple of 32 for MXFP4 experts", c->hidden_size);
        if (c->moe_intermediate_size % 32)
            return mimo_fail(err, "key 'moe_intermediate_size' (%d) must be a multiple of 32 for MXFP4 experts",
                             c->moe_intermediate_size);
    }
    struct { mimo_weight_format f; const char *key; } k32[] = {
        {s->embed, "mimo_storage.embed"}, {s->lm_head, "mimo_storage.lm_head"}, {s->qkv, "mimo_storage.qkv"},
        {s->o_proj, "mimo_storage.o_proj"}, {s->dense_mlp, "mimo_storage.dense_mlp"}};
    for (size_t i = 0; i < sizeof k32 / sizeof k32[0]; i++)
        if (k32[i].f == MIMO_WFMT_MXFP4) {
            bool ok = c->hidden_size % 32 == 0;
            for (int l = 0; l < c->num_layers; l++) {
                const mimo_attn_shape *a = mimo_layer_attn(c, l);
                ok &= (a->n_heads * a->v_head_dim) % 32 == 0 && (c->layer_is_moe[l] || c->intermediate_size % 32 == 0);
            }
            if (!ok)
                return mimo_fail(err, "key '%s': mxfp4 needs every input dim to be a multiple of 32", k32[i].key);
        }
    if (c->qkv_interleaved) {
        if (c->qkv_groups <= 0)
            return mimo_fail(err, "key 'qkv_groups' must be positive");
        for (int kind = 0; kind < 2; kind++) {
            if (kind ? !any_swa : !any_full)
                continue;
            const mimo_attn_shape *a = kind ? &c->swa : &c->full;
            if (a->n_heads % c->qkv_groups || a->n_kv_heads % c->qkv_groups)
                return mimo_fail(err, "key 'qkv_groups' (%d) must divide the %s layers' q heads (%d) and kv heads (%d)",
                                 c->qkv_groups, kind ? "SWA" : "full", a->n_heads, a->n_kv_heads);
        }
    }
    return 0;
}

/* ---- writer: the native form ---- */

static const char *torch_dtype_name(mimo_weight_format f)
{
    return f == MIMO_WFMT_F32 ? "float32" : "bfloat16";
}

char *mimo_config_to_json(const mimo_config *c)
{
    json_t *o = json_object();
    json_t *arr;
    json_object_set_new(o, "architectures", json_pack("[s]", "MiMoV2FlashForCausalLM"));
    json_object_set_new(o, "model_type", json_string(c->model_type[0] ? c->model_type : "mimo_v2_flash"));
    json_object_set_new(o, "hidden_size", json_integer(c->hidden_size));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->num_layers));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "layernorm_epsilon", json_real(c->rms_eps));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_position_embeddings));
    arr = json_array();
    for (int l = 0; l < c->num_layers; l++)
        json_array_append_new(arr, json_integer(c->layer_is_swa[l] ? 1 : 0));
    json_object_set_new(o, "hybrid_layer_pattern", arr);
    arr = json_array();
    for (int l = 0; l < c->num_layers; l++)
        json_array_append_new(arr, json_integer(c->layer_is_moe[l] ? 1 : 0));
    json_object_set_new(o, "moe_layer_freq", arr);

    json_object_set_new(o, "num_attention_heads", json_integer(c->full.n_heads));
    json_object_set_new(o, "num_key_value_heads", json_integer(c->full.n_kv_heads));
    json_object_set_new(o, "head_dim", json_integer(c->full.head_dim));
    json_object_set_new(o, "v_head_dim", json_integer(c->full.v_head_dim));
    json_object_set_new(o, "rope_theta", json_real(c->full.rope_theta));
    json_object_set_new(o, "swa_num_attention_heads", json_integer(c->swa.n_heads));
    json_object_set_new(o, "swa_num_key_value_heads", json_integer(c->swa.n_kv_heads));
    json_object_set_new(o, "swa_head_dim", json_integer(c->swa.head_dim));
    json_object_set_new(o, "swa_v_head_dim", json_integer(c->swa.v_head_dim));
    json_object_set_new(o, "swa_rope_theta", json_real(c->swa.rope_theta));
    json_object_set_new(o, "sliding_window_size", json_integer(c->swa.window));
    json_object_set_new(o, "add_full_attention_sink_bias", json_boolean(c->full.has_sink));
    json_object_set_new(o, "add_swa_attention_sink_bias", json_boolean(c->swa.has_sink));
    json_object_set_new(o, "attention_value_scale", json_real(c->attention_value_scale));
    /* rope dims are stored as fractions of head_dim; write the exact ratio where the shared factor
     * would not reproduce a kind's rope dim */
    double factor = c->partial_rotary_factor;
    if (rope_dim_of(c->full.head_dim, factor) != c->full.rope_dim && c->full.head_dim > 0)
        factor = (double)c->full.rope_dim / c->full.head_dim;
    json_object_set_new(o, "partial_rotary_factor", json_real(factor));
    if (c->swa.head_dim > 0 && rope_dim_of(c->swa.head_dim, factor) != c->swa.rope_dim)
        json_object_set_new(o, "swa_partial_rotary_factor", json_real((double)c->swa.rope_dim / c->swa.head_dim));

    json_object_set_new(o, "intermediate_size", json_integer(c->intermediate_size));
    json_object_set_new(o, "n_routed_experts", json_integer(c->n_routed_experts));
    json_object_set_new(o, "num_experts_per_tok", json_integer(c->experts_per_tok));
    json_object_set_new(o, "moe_intermediate_size", json_integer(c->moe_intermediate_size));
    json_object_set_new(o, "n_shared_experts", json_integer(c->n_shared_experts));
    json_object_set_new(o, "norm_topk_prob", json_boolean(c->norm_topk_prob));
    json_object_set_new(o, "routed_scaling_factor", json_real(c->routed_scaling_factor));
    json_object_set_new(o, "n_group", json_integer(c->n_group));
    json_object_set_new(o, "topk_group", json_integer(c->topk_group));
    json_object_set_new(o, "scoring_func", json_string(c->scoring_func[0] ? c->scoring_func : "sigmoid"));
    json_object_set_new(o, "topk_method", json_string(c->topk_method[0] ? c->topk_method : "noaux_tc"));
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
    json_object_set_new(o, "hidden_act", json_string("silu"));

    const mimo_storage *s = &c->storage;
    json_object_set_new(o, "moe_router_dtype", json_string(torch_dtype_name(s->router)));
    json_object_set_new(o, "torch_dtype", json_string(torch_dtype_name(s->embed)));
    /* An HF-style quantization_config for other tools; mimo_storage below is what this engine trusts. */
    bool any_fp8 = s->qkv == MIMO_WFMT_FP8 || s->o_proj == MIMO_WFMT_FP8 || s->dense_mlp == MIMO_WFMT_FP8 ||
                   s->experts == MIMO_WFMT_FP8;
    if (any_fp8 || s->experts == MIMO_WFMT_MXFP4) {
        json_t *q = json_object();
        if (any_fp8) {
            json_object_set_new(q, "quant_method", json_string("fp8"));
            json_object_set_new(q, "fmt", json_string("e4m3"));
            json_object_set_new(q, "activation_scheme", json_string("dynamic"));
            json_object_set_new(q, "weight_block_size", json_pack("[ii]", 128, 128));
            json_t *ign = json_array();
            if (s->o_proj != MIMO_WFMT_FP8)
                json_array_append_new(ign, json_string("o_proj"));
            if (s->qkv != MIMO_WFMT_FP8)
                json_array_append_new(ign, json_string("qkv_proj"));
            if (s->dense_mlp != MIMO_WFMT_FP8)
                json_array_append_new(ign, json_string("mlp.gate_proj"));
            json_object_set_new(q, "ignored_layers", ign);
        } else {
            json_object_set_new(q, "quant_method", json_string("mxfp4"));
        }
        json_object_set_new(q, "expert_quant_method", json_string(mimo_weight_format_name(s->experts)));
        json_object_set_new(o, "quantization_config", q);
    }
    json_t *ms = json_object();
    json_object_set_new(ms, "embed", json_string(mimo_weight_format_name(s->embed)));
    json_object_set_new(ms, "lm_head", json_string(mimo_weight_format_name(s->lm_head)));
    json_object_set_new(ms, "qkv", json_string(mimo_weight_format_name(s->qkv)));
    json_object_set_new(ms, "o_proj", json_string(mimo_weight_format_name(s->o_proj)));
    json_object_set_new(ms, "dense_mlp", json_string(mimo_weight_format_name(s->dense_mlp)));
    json_object_set_new(ms, "experts", json_string(mimo_weight_format_name(s->experts)));
    json_object_set_new(ms, "router", json_string(mimo_weight_format_name(s->router)));
    json_object_set_new(ms, "norms", json_string(mimo_weight_format_name(s->norms)));
    json_object_set_new(o, "mimo_storage", ms);
    json_object_set_new(o, "qkv_layout", json_string(c->qkv_interleaved ? "tp_interleaved" : "plain"));
    if (c->qkv_interleaved)
        json_object_set_new(o, "qkv_groups", json_integer(c->qkv_groups));

    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!text)
        return NULL;
    /* hand back malloc'd memory the caller can free() whatever jansson's allocator is */
    char *out = mimo_xstrdup(text);
    free(text);
    return out;
}
