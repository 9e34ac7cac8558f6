#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/config.h"

/* A small native config (MiMo keys). %s slots let tests drop or change single keys. */
static const char *native_json =
    "{\"model_type\": \"mimo_v2_flash\", \"hidden_size\": 64, \"num_hidden_layers\": 4, \"vocab_size\": 512,"
    " \"layernorm_epsilon\": 1e-6, \"hybrid_layer_pattern\": [0, 1, 1, 0], \"moe_layer_freq\": [0, 1, 1, 1],"
    " \"num_attention_heads\": 8, \"num_key_value_heads\": 2, \"head_dim\": 24, \"v_head_dim\": 16,"
    " \"rope_theta\": 5000000, \"swa_num_attention_heads\": 8, \"swa_num_key_value_heads\": 4,"
    " \"swa_head_dim\": 24, \"swa_v_head_dim\": 16, \"swa_rope_theta\": 10000, \"sliding_window_size\": 8,"
    " \"add_swa_attention_sink_bias\": true, \"add_full_attention_sink_bias\": false,"
    " \"attention_value_scale\": 0.707, \"partial_rotary_factor\": 0.334, \"intermediate_size\": 128,"
    " \"n_routed_experts\": 8, \"num_experts_per_tok\": 2, \"moe_intermediate_size\": 32,"
    " \"norm_topk_prob\": true, \"routed_scaling_factor\": null, \"scoring_func\": \"sigmoid\","
    " \"topk_method\": \"noaux_tc\", \"n_group\": 1, \"topk_group\": 1, \"tie_word_embeddings\": false,"
    " \"torch_dtype\": \"bfloat16\", \"moe_router_dtype\": \"bfloat16\","
    " \"quantization_config\": {\"quant_method\": \"fp8\", \"fmt\": \"e4m3\", \"weight_block_size\": [128, 128],"
    "   \"ignored_layers\": [\"model.layers.0.self_attn.o_proj\"], \"expert_quant_method\": \"mxfp4\"}}";

/* The transformers 5.x spelling of a similar model: no swa_* keys. */
static const char *hf5_json =
    "{\"model_type\": \"mimo_v2_flash\", \"hidden_size\": 64, \"num_hidden_layers\": 3, \"vocab_size\": 256,"
    " \"rms_norm_eps\": 1e-5, \"layer_types\": [\"full_attention\", \"sliding_attention\", \"sliding_attention\"],"
    " \"mlp_layer_types\": [\"dense\", \"sparse\", \"sparse\"], \"num_attention_heads\": 4,"
    " \"num_key_value_heads\": 2, \"head_dim\": 32, \"v_head_dim\": 16, \"sliding_window\": 16,"
    " \"rope_parameters\": {\"full_attention\": {\"rope_theta\": 5000000.0, \"partial_rotary_factor\": 0.5},"
    "   \"sliding_attention\": {\"rope_theta\": 10000.0, \"partial_rotary_factor\": 0.25}},"
    " \"intermediate_size\": 96, \"n_routed_experts\": 4, \"num_experts_per_tok\": 2,"
    " \"moe_intermediate_size\": 32, \"norm_topk_prob\": true}";

Test(config, parses_native_form)
{
    mimo_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_parse_json(native_json, "native.json", &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.hidden_size, 64);
    cr_assert_eq(c.num_layers, 4);
    cr_assert(!c.layer_is_swa[0] && c.layer_is_swa[1] && c.layer_is_swa[2] && !c.layer_is_swa[3]);
    cr_assert(!c.layer_is_moe[0] && c.layer_is_moe[1] && c.layer_is_moe[3]);
    cr_assert_eq(c.full.n_kv_heads, 2);
    cr_assert_eq(c.swa.n_kv_heads, 4);
    cr_assert_eq(c.full.rope_dim, 8);   /* round(24 * 0.334) = 8 */
    cr_assert_eq(c.swa.window, 8);
    cr_assert_eq(c.full.window, 0);
    cr_assert(c.swa.has_sink && !c.full.has_sink);
    cr_assert_float_eq(c.attention_value_scale, 0.707f, 1e-7);
    cr_assert_float_eq(c.routed_scaling_factor, 1.0f, 0);
    cr_assert_float_eq(c.rms_eps, 1e-6f, 1e-12);
    cr_assert_eq(c.storage.qkv, MIMO_WFMT_FP8);
    cr_assert_eq(c.storage.o_proj, MIMO_WFMT_BF16);
    cr_assert_eq(c.storage.dense_mlp, MIMO_WFMT_FP8);
    cr_assert_eq(c.storage.experts, MIMO_WFMT_MXFP4);
    cr_assert_eq(c.storage.router, MIMO_WFMT_BF16);
    cr_assert_eq(c.storage.embed, MIMO_WFMT_BF16);
    cr_assert(!c.qkv_interleaved);
    cr_assert_eq(mimo_qkv_rows(&c, 0), 8 * 24 + 2 * 24 + 2 * 16);
    cr_assert_eq(mimo_qkv_rows(&c, 1), 8 * 24 + 4 * 24 + 4 * 16);
}

Test(config, parses_transformers5_form_with_its_defaults)
{
    mimo_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_parse_json(hf5_json, "hf5.json", &c, &err), 0, "%s", err.msg);
    cr_assert(!c.layer_is_swa[0] && c.layer_is_swa[1] && c.layer_is_swa[2]);
    cr_assert(!c.layer_is_moe[0] && c.layer_is_moe[1]);
    cr_assert_eq(c.swa.n_heads, 4);
    cr_assert_eq(c.swa.n_kv_heads, 4);     /* twice the full layers' */
    cr_assert_eq(c.swa.head_dim, 32);
    cr_assert_eq(c.swa.v_head_dim, 16);
    cr_assert(c.swa.has_sink);
    cr_assert(!c.full.has_sink);
    cr_assert_eq(c.swa.window, 16);
    cr_assert_eq(c.full.rope_dim, 16);
    cr_assert_eq(c.swa.rope_dim, 8);
    cr_assert_float_eq(c.full.rope_theta, 5e6, 0);
    cr_assert_float_eq(c.swa.rope_theta, 1e4, 0);
    cr_assert_float_eq(c.rms_eps, 1e-5f, 1e-12);
    cr_assert_eq(c.storage.experts, MIMO_WFMT_BF16);
    cr_assert_eq(c.storage.router, MIMO_WFMT_F32);

    /* ...and it survives the native writer */
    char *js = mimo_config_to_json(&c);
    mimo_config d;
    cr_assert_eq(mimo_config_parse_json(js, "rt.json", &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.swa.rope_dim, 8);
    cr_assert_eq(d.full.rope_dim, 16);
    cr_assert_eq(d.swa.n_kv_heads, 4);
    free(js);
}

Test(config, flat_rope_parameters)
{
    const char *js =
        "{\"hidden_size\": 32, \"num_hidden_layers\": 1, \"vocab_size\": 64, \"rms_norm_eps\": 1e-5,"
        " \"layer_types\": [\"full_attention\"], \"mlp_layer_types\": [\"dense\"], \"num_attention_heads\": 2,"
        " \"num_key_value_heads\": 1, \"head_dim\": 16, \"intermediate_size\": 64,"
        " \"rope_parameters\": {\"rope_theta\": 1000.0, \"partial_rotary_factor\": 0.5}}";
    mimo_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_parse_json(js, "flat.json", &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.full.rope_dim, 8);
    cr_assert_eq(c.full.v_head_dim, 16);
    cr_assert_float_eq(c.full.rope_theta, 1000.0, 0);
}

/* Replaces the first occurrence of `from` in native_json with `to`. */
static char *edit(const char *base, const char *from, const char *to)
{
    const char *at = strstr(base, from);
    cr_assert_not_null(at, "test bug: '%s' not in the base JSON", from);
    size_t n = strlen(base) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    size_t pre = (size_t)(at - base);
    memcpy(out, base, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    return out;
}

static void expect_error(const char *from, const char *to, const char *key)
{
    char *js = edit(native_json, from, to);
    mimo_config c;
    mimo_error err = {{0}};
    int rc = mimo_config_parse_json(js, "bad.json", &c, &err);
    cr_expect_eq(rc, -1, "replacing [%s] by [%s] should fail", from, to);
    cr_expect(strstr(err.msg, key) != NULL, "error for [%s] should name '%s': %s", to, key, err.msg);
    cr_expect(strstr(err.msg, "bad.json") != NULL, "error should name the file: %s", err.msg);
    free(js);
}

Test(config, missing_keys_are_named)
{
    expect_error("\"hidden_size\": 64,", "", "hidden_size");
    expect_error("\"num_hidden_layers\": 4,", "", "num_hidden_layers");
    expect_error("\"vocab_size\": 512,", "", "vocab_size");
    expect_error("\"layernorm_epsilon\": 1e-6,", "", "layernorm_epsilon");
    expect_error("\"hybrid_layer_pattern\": [0, 1, 1, 0],", "", "hybrid_layer_pattern");
    expect_error("\"moe_layer_freq\": [0, 1, 1, 1],", "", "moe_layer_freq");
    expect_error("\"num_attention_heads\": 8,", "", "num_attention_heads");
    expect_error("\"num_key_value_heads\": 2,", "", "num_key_value_heads");
    expect_error("\"head_dim\": 24,", "", "head_dim");
    expect_error("\"rope_theta\": 5000000,", "", "rope_theta");
    expect_error("\"swa_num_attention_heads\": 8,", "", "swa_num_attention_heads");
    expect_error("\"swa_num_key_value_heads\": 4,", "", "swa_num_key_value_heads");
    expect_error("\"swa_head_dim\": 24,", "", "swa_head_dim");
    expect_error("\"swa_rope_theta\": 10000,", "", "swa_rope_theta");
    expect_error("\"sliding_window_size\": 8,", "", "sliding_window_size");
    expect_error("\"intermediate_size\": 128,", "", "intermediate_size");
    expect_error("\"n_routed_experts\": 8,", "", "n_routed_experts");
    expect_error("\"num_experts_per_tok\": 2,", "", "num_experts_per_tok");
    expect_error("\"moe_intermediate_size\": 32,", "", "moe_intermediate_size");
    expect_error("\"quant_method\": \"fp8\",", "", "quantization_config.quant_method");
}

Test(config, contradictory_values_are_named)
{
    expect_error("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3", "num_key_value_heads");
    expect_error("\"swa_num_key_value_heads\": 4", "\"swa_num_key_value_heads\": 3", "swa_num_key_value_heads");
    expect_error("\"partial_rotary_factor\": 0.334", "\"partial_rotary_factor\": 1.5", "partial_rotary_factor");
    expect_error("\"partial_rotary_factor\": 0.334", "\"partial_rotary_factor\": 0", "partial_rotary_factor");
    expect_error("\"head_dim\": 24", "\"head_dim\": 25", "head_dim");
    expect_error("\"num_experts_per_tok\": 2", "\"num_experts_per_tok\": 9", "num_experts_per_tok");
    expect_error("\"hybrid_layer_pattern\": [0, 1, 1, 0]", "\"hybrid_layer_pattern\": [0, 1, 1]", "hybrid_layer_pattern");
    expect_error("\"hybrid_layer_pattern\": [0, 1, 1, 0]", "\"hybrid_layer_pattern\": [0, 1, 2, 0]", "hybrid_layer_pattern");
    expect_error("\"moe_layer_freq\": [0, 1, 1, 1]", "\"moe_layer_freq\": [0, 1, 1, 1, 1]", "moe_layer_freq");
    expect_error("\"sliding_window_size\": 8", "\"sliding_window_size\": 0", "sliding_window_size");
    expect_error("\"sliding_window_size\": 8", "\"sliding_window_size\": -4", "sliding_window_size");
    expect_error("\"hidden_size\": 64", "\"hidden_size\": -64", "hidden_size");
    expect_error("\"hidden_size\": 64", "\"hidden_size\": \"big\"", "hidden_size");
    expect_error("\"num_hidden_layers\": 4", "\"num_hidden_layers\": 0", "num_hidden_layers");
    expect_error("\"n_group\": 1", "\"n_group\": 3", "n_group");
    expect_error("\"scoring_func\": \"sigmoid\"", "\"scoring_func\": \"softmax\"", "scoring_func");
    expect_error("\"moe_router_dtype\": \"bfloat16\"", "\"moe_router_dtype\": \"fp8\"", "moe_router_dtype");
    expect_error("\"moe_intermediate_size\": 32", "\"moe_intermediate_size\": 40", "moe_intermediate_size");
    expect_error("\"weight_block_size\": [128, 128]", "\"weight_block_size\": [64, 64]", "weight_block_size");
    expect_error("\"torch_dtype\": \"bfloat16\"", "\"torch_dtype\": \"fp8\"", "torch_dtype");
    expect_error("\"norm_topk_prob\": true", "\"norm_topk_prob\": \"yes\"", "norm_topk_prob");
    expect_error("\"model_type\"", "\"qkv_layout\": \"tp_interleaved\", \"qkv_groups\": 4, \"model_type\"", "qkv_groups");
    expect_error("\"model_type\"", "\"qkv_layout\": \"zigzag\", \"model_type\"", "qkv_layout");
}

Test(config, invalid_json_is_an_error_not_a_crash)
{
    mimo_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_parse_json("{\"hidden_size\": ", "x.json", &c, &err), -1);
    cr_assert(strstr(err.msg, "x.json"));
    cr_assert_eq(mimo_config_parse_json("[1, 2]", "x.json", &c, &err), -1);
    cr_assert_eq(mimo_config_parse_json(NULL, "x.json", &c, &err), -1);
    cr_assert_eq(mimo_config_load("/nonexistent/config.json", &c, &err), -1);
    cr_assert(strstr(err.msg, "/nonexistent/config.json"));
}

Test(config, expert_store_spellings)
{
    char *js = edit(native_json, "\"expert_quant_method\": \"mxfp4\"", "\"experts\": \"bf16\"");
    mimo_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_parse_json(js, "e.json", &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.storage.experts, MIMO_WFMT_BF16);
    cr_assert_eq(c.storage.qkv, MIMO_WFMT_FP8);
    free(js);
    js = edit(native_json, "\"expert_quant_method\": \"mxfp4\"", "\"expert_quant_method\": \"int4\"");
    cr_assert_eq(mimo_config_parse_json(js, "e.json", &c, &err), -1);
    cr_assert(strstr(err.msg, "expert_quant_method"), "%s", err.msg);
    free(js);
    /* gpt-oss style: quant_method mxfp4 = MXFP4 experts, the rest in torch_dtype */
    js = edit(native_json, "\"quant_method\": \"fp8\"", "\"quant_method\": \"mxfp4\"");
    cr_assert_eq(mimo_config_parse_json(js, "e.json", &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.storage.experts, MIMO_WFMT_MXFP4);
    cr_assert_eq(c.storage.qkv, MIMO_WFMT_BF16);
    free(js);
}

Test(config, interleaved_layout_key)
{
    char *js = edit(native_json, "\"model_type\"", "\"qkv_layout\": \"tp_interleaved\", \"qkv_groups\": 2, \"model_type\"");
    mimo_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_parse_json(js, "il.json", &c, &err), 0, "%s", err.msg);
    cr_assert(c.qkv_interleaved);
    cr_assert_eq(c.qkv_groups, 2);
    free(js);
}

static void assert_same_config(const mimo_config *a, const mimo_config *b, const char *name)
{
    cr_assert_str_eq(a->model_type, b->model_type, "%s", name);
    cr_assert_eq(a->hidden_size, b->hidden_size, "%s", name);
    cr_assert_eq(a->num_layers, b->num_layers, "%s", name);
    cr_assert_eq(a->vocab_size, b->vocab_size, "%s", name);
    cr_assert_eq(a->rms_eps, b->rms_eps, "%s", name);
    cr_assert_eq(a->max_position_embeddings, b->max_position_embeddings, "%s", name);
    for (int l = 0; l < a->num_layers; l++) {
        cr_assert_eq(a->layer_is_swa[l], b->layer_is_swa[l], "%s layer %d", name, l);
        cr_assert_eq(a->layer_is_moe[l], b->layer_is_moe[l], "%s layer %d", name, l);
    }
    const mimo_attn_shape *sa[2] = {&a->full, &a->swa}, *sb[2] = {&b->full, &b->swa};
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(sa[k]->n_heads, sb[k]->n_heads, "%s", name);
        cr_assert_eq(sa[k]->n_kv_heads, sb[k]->n_kv_heads, "%s", name);
        cr_assert_eq(sa[k]->head_dim, sb[k]->head_dim, "%s", name);
        cr_assert_eq(sa[k]->v_head_dim, sb[k]->v_head_dim, "%s", name);
        cr_assert_eq(sa[k]->rope_dim, sb[k]->rope_dim, "%s", name);
        cr_assert_eq(sa[k]->rope_theta, sb[k]->rope_theta, "%s", name);
        cr_assert_eq(sa[k]->has_sink, sb[k]->has_sink, "%s", name);
        cr_assert_eq(sa[k]->window, sb[k]->window, "%s", name);
    }
    cr_assert_eq(a->partial_rotary_factor, b->partial_rotary_factor, "%s", name);
    cr_assert_eq(a->attention_value_scale, b->attention_value_scale, "%s", name);
    cr_assert_eq(a->intermediate_size, b->intermediate_size, "%s", name);
    cr_assert_eq(a->n_routed_experts, b->n_routed_experts, "%s", name);
    cr_assert_eq(a->experts_per_tok, b->experts_per_tok, "%s", name);
    cr_assert_eq(a->moe_intermediate_size, b->moe_intermediate_size, "%s", name);
    cr_assert_eq(a->n_shared_experts, b->n_shared_experts, "%s", name);
    cr_assert_eq(a->norm_topk_prob, b->norm_topk_prob, "%s", name);
    cr_assert_eq(a->routed_scaling_factor, b->routed_scaling_factor, "%s", name);
    cr_assert_eq(a->n_group, b->n_group, "%s", name);
    cr_assert_eq(a->topk_group, b->topk_group, "%s", name);
    cr_assert_str_eq(a->scoring_func, b->scoring_func, "%s", name);
    cr_assert_str_eq(a->topk_method, b->topk_method, "%s", name);
    cr_assert_eq(a->tie_word_embeddings, b->tie_word_embeddings, "%s", name);
    cr_assert_eq(a->qkv_interleaved, b->qkv_interleaved, "%s", name);
    if (a->qkv_interleaved)
        cr_assert_eq(a->qkv_groups, b->qkv_groups, "%s", name);
    cr_assert_eq(memcmp(&a->storage, &b->storage, sizeof a->storage), 0, "%s storage", name);
}

Test(config, to_json_round_trips_every_preset)
{
    for (const char *const *p = mimo_preset_names(); *p; p++) {
        mimo_config a, b;
        mimo_error err = {{0}};
        cr_assert_eq(mimo_config_preset(*p, &a, &err), 0, "%s: %s", *p, err.msg);
        char *js = mimo_config_to_json(&a);
        cr_assert_not_null(js);
        cr_assert_eq(mimo_config_parse_json(js, *p, &b, &err), 0, "%s: %s", *p, err.msg);
        assert_same_config(&a, &b, *p);
        /* and changing storage round-trips too (the FP4 ablation) */
        a.storage.experts = MIMO_WFMT_FP8;
        a.storage.o_proj = MIMO_WFMT_F32;
        free(js);
        js = mimo_config_to_json(&a);
        cr_assert_eq(mimo_config_parse_json(js, *p, &b, &err), 0, "%s: %s", *p, err.msg);
        assert_same_config(&a, &b, *p);
        free(js);
    }
}

Test(config, presets_have_the_documented_features)
{
    mimo_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_preset("tiny", &c, &err), 0);
    bool swa = false, full = false, moe = false, dense = false;
    for (int l = 0; l < c.num_layers; l++) {
        swa |= c.layer_is_swa[l], full |= !c.layer_is_swa[l];
        moe |= c.layer_is_moe[l], dense |= !c.layer_is_moe[l];
    }
    cr_assert(c.num_layers >= 4 && swa && full && moe && dense);
    cr_assert(c.full.has_sink && c.swa.has_sink);
    cr_assert(c.swa.window > 0 && c.swa.window < 16);
    cr_assert(c.full.n_kv_heads < c.full.n_heads);
    cr_assert_neq(c.full.head_dim, c.full.v_head_dim);
    cr_assert(c.full.rope_dim < c.full.head_dim);
    cr_assert(c.n_routed_experts >= 8 && c.experts_per_tok == 2);
    cr_assert(c.vocab_size >= 256);
    cr_assert_eq(mimo_config_preset("mimo-v2.5-pro", &c, &err), 0);
    cr_assert_eq(c.storage.o_proj, MIMO_WFMT_BF16);
    cr_assert_eq(c.storage.router, MIMO_WFMT_BF16);
    cr_assert_eq(c.storage.experts, MIMO_WFMT_MXFP4);
    cr_assert_eq(c.full.rope_dim, 64);
    int n_full = 0;
    for (int l = 0; l < c.num_layers; l++)
        n_full += !c.layer_is_swa[l];
    cr_assert_eq(n_full, 10);
    cr_assert_eq(mimo_config_preset("mimo-v2-flash", &c, &err), 0);
    n_full = 0;
    for (int l = 0; l < c.num_layers; l++)
        n_full += !c.layer_is_swa[l];
    cr_assert_eq(n_full, 9);
    cr_assert_eq(mimo_config_preset("huge", &c, &err), -1);
    cr_assert(strstr(err.msg, "huge"));
}
