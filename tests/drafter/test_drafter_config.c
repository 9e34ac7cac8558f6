/* The drafter's config.json: Qwen3 keys + DFlash keys (dflash_config or top level), MiMo extras,
 * errors naming the key, the round trip, and the drafters written next to each preset. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/dflash.h"

static const char *qwen3_dflash =
    "{\"model_type\": \"qwen3\", \"hidden_size\": 256, \"num_attention_heads\": 8, \"num_key_value_heads\": 2,"
    " \"head_dim\": 32, \"intermediate_size\": 768, \"num_hidden_layers\": 3, \"rms_norm_eps\": 1e-6,"
    " \"rope_theta\": 1000000, \"layer_types\": [\"full_attention\", \"sliding_attention\", \"full_attention\"],"
    " \"sliding_window\": 2048, \"block_size\": 16, \"num_target_layers\": 36,"
    " \"dflash_config\": {\"target_layer_ids\": [1, 9, 17, 25, 33], \"mask_token_id\": 151669}}";

Test(drafter_config, parses_qwen3_style_with_dflash_config)
{
    mimo_drafter_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_drafter_config_parse_json(qwen3_dflash, "t.json", &c, &err), 0, "%s", err.msg);
    cr_expect_eq(c.hidden_size, 256);
    cr_expect_eq(c.n_heads, 8);
    cr_expect_eq(c.n_kv_heads, 2);
    cr_expect_eq(c.head_dim, 32);
    cr_expect_eq(c.rope_dim, 32);
    cr_expect_eq(c.intermediate_size, 768);
    cr_expect_eq(c.num_layers, 3);
    cr_expect_float_eq(c.rope_theta, 1e6, 1e-3);
    cr_expect(!c.layer_is_swa[0] && c.layer_is_swa[1] && !c.layer_is_swa[2]);
    cr_expect_eq(c.window, 2048);
    cr_expect_eq(c.block_size, 16);
    cr_expect_eq(c.n_target_layers, 5);
    int ids[5] = {1, 9, 17, 25, 33};
    for (int i = 0; i < 5; i++)
        cr_expect_eq(c.target_layer_ids[i], ids[i]);
    cr_expect_eq(c.mask_token_id, 151669);
    cr_expect(!c.has_sink);
    cr_expect_float_eq(c.attention_value_scale, 1.0f, 0);
}

Test(drafter_config, top_level_keys_rope_parameters_and_mimo_extras)
{
    const char *j = "{\"hidden_size\": 64, \"num_attention_heads\": 4, \"intermediate_size\": 96, \"num_hidden_layers\": 2,"
                    " \"rope_parameters\": {\"rope_theta\": 10000.0, \"partial_rotary_factor\": 0.5},"
                    " \"hybrid_layer_pattern\": [1, 1], \"sliding_window_size\": 1024, \"add_swa_attention_sink_bias\": true,"
                    " \"attention_value_scale\": 0.5, \"block_size\": 8, \"target_layer_ids\": [0, 3], \"mask_token_id\": 7}";
    mimo_drafter_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_drafter_config_parse_json(j, "t.json", &c, &err), 0, "%s", err.msg);
    cr_expect_eq(c.n_kv_heads, 4);
    cr_expect_eq(c.head_dim, 16);
    cr_expect_eq(c.rope_dim, 8);
    cr_expect_float_eq(c.rope_theta, 1e4, 1e-6);
    cr_expect(c.layer_is_swa[0] && c.layer_is_swa[1]);
    cr_expect_eq(c.window, 1024);
    cr_expect(c.has_sink);
    cr_expect_float_eq(c.attention_value_scale, 0.5f, 0);
    cr_expect_eq(c.block_size, 8);
    cr_expect_eq(c.n_target_layers, 2);
    cr_expect_eq(c.target_layer_ids[1], 3);
    cr_expect_eq(c.mask_token_id, 7);
}

Test(drafter_config, default_target_layers_follow_the_reference_rule)
{
    /* z-lab: evenly spaced over [1, L-3], one per drafter layer: 36 layers, 5 -> [1, 9, 17, 25, 33]. */
    const char *j = "{\"hidden_size\": 64, \"num_attention_heads\": 4, \"intermediate_size\": 96, \"num_hidden_layers\": 5,"
                    " \"block_size\": 16, \"num_target_layers\": 36, \"dflash_config\": {\"mask_token_id\": 5}}";
    mimo_drafter_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_drafter_config_parse_json(j, "t.json", &c, &err), 0, "%s", err.msg);
    int ids[5] = {1, 9, 17, 25, 33};
    cr_assert_eq(c.n_target_layers, 5);
    for (int i = 0; i < 5; i++)
        cr_expect_eq(c.target_layer_ids[i], ids[i]);
}

static void expect_error(const char *json, const char *needle)
{
    mimo_drafter_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_drafter_config_parse_json(json, "bad.json", &c, &err), -1, "accepted: %s", json);
    cr_expect(strstr(err.msg, needle) != NULL, "message '%s' does not name '%s'", err.msg, needle);
    cr_expect(strstr(err.msg, "bad.json") != NULL, "message '%s' does not name the file", err.msg);
}

Test(drafter_config, errors_name_the_key)
{
    expect_error("{\"hidden_size\": 64}", "num_hidden_layers");
    expect_error("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"intermediate_size\": 96, \"num_hidden_layers\": 2,"
                 " \"target_layer_ids\": [0], \"mask_token_id\": 1}", "block_size");
    expect_error("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"intermediate_size\": 96, \"num_hidden_layers\": 2,"
                 " \"block_size\": 17, \"target_layer_ids\": [0], \"mask_token_id\": 1}", "block_size");
    expect_error("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"intermediate_size\": 96, \"num_hidden_layers\": 2,"
                 " \"block_size\": 4, \"mask_token_id\": 1}", "target_layer_ids");
    expect_error("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"intermediate_size\": 96, \"num_hidden_layers\": 2,"
                 " \"block_size\": 4, \"target_layer_ids\": [0]}", "mask_token_id");
    expect_error("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"intermediate_size\": 96, \"num_hidden_layers\": 2,"
                 " \"layer_types\": [\"full_attention\"], \"block_size\": 4, \"target_layer_ids\": [0], \"mask_token_id\": 1}",
                 "layer_types");
    expect_error("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"intermediate_size\": 96, \"num_hidden_layers\": 1,"
                 " \"layer_types\": [\"sliding_attention\"], \"block_size\": 4, \"target_layer_ids\": [0], \"mask_token_id\": 1}",
                 "sliding_window");
    expect_error("{\"hidden_size\": 64, \"num_attention_heads\": 6, \"num_key_value_heads\": 4, \"intermediate_size\": 96,"
                 " \"num_hidden_layers\": 1, \"block_size\": 4, \"target_layer_ids\": [0], \"mask_token_id\": 1}",
                 "num_key_value_heads");
    expect_error("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"intermediate_size\": 96, \"num_hidden_layers\": 1,"
                 " \"block_size\": 4, \"num_target_layers\": 4, \"target_layer_ids\": [0, 4], \"mask_token_id\": 1}",
                 "target_layer_ids[1]");
    /* wrongly typed values are errors, not silently read as their defaults */
    expect_error("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"intermediate_size\": 96, \"num_hidden_layers\": 1,"
                 " \"use_sink_bias\": \"yes\", \"block_size\": 4, \"target_layer_ids\": [0], \"mask_token_id\": 1}",
                 "use_sink_bias");
    expect_error("{\"hidden_size\": 64, \"num_attention_heads\": 4, \"intermediate_size\": 96, \"num_hidden_layers\": 1,"
                 " \"head_dim\": \"16\", \"block_size\": 4, \"target_layer_ids\": [0], \"mask_token_id\": 1}",
                 "head_dim");
    expect_error("{not json", "invalid JSON");
}

static void expect_same(const mimo_drafter_config *a, const mimo_drafter_config *b)
{
    cr_expect_eq(a->hidden_size, b->hidden_size);
    cr_expect_eq(a->num_layers, b->num_layers);
    cr_expect_eq(a->n_heads, b->n_heads);
    cr_expect_eq(a->n_kv_heads, b->n_kv_heads);
    cr_expect_eq(a->head_dim, b->head_dim);
    cr_expect_eq(a->intermediate_size, b->intermediate_size);
    cr_expect_float_eq(a->rms_eps, b->rms_eps, 1e-12);
    cr_expect_float_eq(a->rope_theta, b->rope_theta, 1e-6);
    cr_expect_eq(a->rope_dim, b->rope_dim);
    for (int l = 0; l < a->num_layers; l++)
        cr_expect_eq(a->layer_is_swa[l], b->layer_is_swa[l]);
    cr_expect_eq(a->window, b->window);
    cr_expect_eq(a->has_sink, b->has_sink);
    cr_expect_float_eq(a->attention_value_scale, b->attention_value_scale, 1e-7);
    cr_expect_eq(a->block_size, b->block_size);
    cr_expect_eq(a->n_target_layers, b->n_target_layers);
    for (int i = 0; i < a->n_target_layers; i++)
        cr_expect_eq(a->target_layer_ids[i], b->target_layer_ids[i]);
    cr_expect_eq(a->mask_token_id, b->mask_token_id);
}

Test(drafter_config, every_preset_drafter_round_trips)
{
    for (const char *const *name = mimo_preset_names(); *name; name++) {
        mimo_config target;
        mimo_error err = {{0}};
        cr_assert_eq(mimo_config_preset(*name, &target, &err), 0, "%s", err.msg);
        mimo_drafter_config c, back;
        mimo_drafter_config_for_target(&target, &c);
        cr_expect_eq(c.hidden_size, target.hidden_size, "%s", *name);
        cr_expect(c.mask_token_id >= 0 && c.mask_token_id < target.vocab_size, "%s", *name);
        for (int i = 0; i < c.n_target_layers; i++) {
            cr_expect(c.target_layer_ids[i] >= 0 && c.target_layer_ids[i] < target.num_layers, "%s", *name);
            if (i)
                cr_expect_gt(c.target_layer_ids[i], c.target_layer_ids[i - 1], "%s ids ascend", *name);
        }
        cr_expect_eq(c.n_heads % c.n_kv_heads, 0, "%s", *name);
        char *json = mimo_drafter_config_to_json(&c);
        cr_assert_eq(mimo_drafter_config_parse_json(json, *name, &back, &err), 0, "%s: %s", *name, err.msg);
        expect_same(&c, &back);
        free(json);
    }
}

Test(drafter_config, preset_shapes)
{
    mimo_config target;
    mimo_error err = {{0}};
    mimo_drafter_config c;

    cr_assert_eq(mimo_config_preset("mimo-v2.5-pro", &target, &err), 0, "%s", err.msg);
    mimo_drafter_config_for_target(&target, &c);
    cr_expect_eq(c.num_layers, 5);
    cr_expect_eq(c.block_size, 8);
    cr_expect_eq(c.window, 1024);
    cr_expect(c.has_sink);
    int pro_ids[5] = {0, 15, 31, 47, 69};
    cr_assert_eq(c.n_target_layers, 5);
    for (int i = 0; i < 5; i++)
        cr_expect_eq(c.target_layer_ids[i], pro_ids[i]);
    for (int l = 0; l < 5; l++)
        cr_expect(c.layer_is_swa[l], "every MiMo drafter layer is sliding-window");

    cr_assert_eq(mimo_config_preset("mimo-v2-flash", &target, &err), 0, "%s", err.msg);
    mimo_drafter_config_for_target(&target, &c);
    cr_expect_eq(c.num_layers, 5);
    cr_expect_eq(c.block_size, 8);
    int flash_ids[5] = {0, 11, 23, 35, 47};
    for (int i = 0; i < 5; i++)
        cr_expect_eq(c.target_layer_ids[i], flash_ids[i]);

    cr_assert_eq(mimo_config_preset("tiny", &target, &err), 0, "%s", err.msg);
    mimo_drafter_config_for_target(&target, &c);
    cr_expect_eq(c.num_layers, 2);
    cr_expect_eq(c.block_size, 4);
    cr_expect(c.layer_is_swa[0] && !c.layer_is_swa[1], "tiny mixes a sliding and a full layer");

    cr_assert_eq(mimo_config_preset("small", &target, &err), 0, "%s", err.msg);
    mimo_drafter_config_for_target(&target, &c);
    cr_expect(c.num_layers >= 2 && c.num_layers <= 3);
    cr_expect_eq(c.block_size, 8);
}
