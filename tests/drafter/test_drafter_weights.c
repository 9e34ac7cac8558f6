/* The synthetic drafter: deterministic, sane amplitudes, every tensor DFLASH.md names, bound back
 * by name with shapes checked; written to disk and read back. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/dflash.h"
#include "mimo/formats.h"
#include "support.h"

static void tiny_drafter(mimo_drafter_config *c)
{
    mimo_config target;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_preset("tiny", &target, &err), 0, "%s", err.msg);
    mimo_drafter_config_for_target(&target, c);
}

static double rms_bf16(const mimo_tensor_view *v)
{
    const uint16_t *b = v->data;
    size_t n = v->nbytes / 2;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double x = mimo_bf16_to_f32(b[i]);
        s += x * x;
    }
    return sqrt(s / (double)n);
}

Test(drafter_weights, synth_is_deterministic_named_and_scaled)
{
    mimo_drafter_config c;
    tiny_drafter(&c);
    mimo_error err = {{0}};
    mimo_tensor_source *a = NULL, *b = NULL, *other = NULL;
    cr_assert_eq(mimo_drafter_synth(&c, 7, &a, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_drafter_synth(&c, 7, &b, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_drafter_synth(&c, 8, &other, &err), 0, "%s", err.msg);
    /* 4 globals + 12 per layer (sinks on) */
    cr_expect_eq(mimo_source_count(a), 4 + 12 * c.num_layers);
    const char *names[] = {"fc.weight", "hidden_norm.weight", "norm.weight", "mask_embedding",
                           "layers.0.self_attn.q_proj.weight", "layers.1.self_attn.attention_sink_bias",
                           "layers.1.mlp.down_proj.weight", "layers.0.self_attn.k_norm.weight"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        mimo_tensor_view va, vb, vo;
        cr_assert_eq(mimo_source_get(a, names[i], &va, &err), 0, "%s", err.msg);
        cr_assert_eq(mimo_source_get(b, names[i], &vb, &err), 0, "%s", err.msg);
        cr_assert_eq(mimo_source_get(other, names[i], &vo, &err), 0, "%s", err.msg);
        cr_expect_eq(va.nbytes, vb.nbytes);
        cr_expect(memcmp(va.data, vb.data, va.nbytes) == 0, "%s: same seed, same bytes", names[i]);
        cr_expect(memcmp(va.data, vo.data, va.nbytes) != 0, "%s: another seed, other bytes", names[i]);
    }
    /* Unit-gain projections: uniform(-a, a) with a = sqrt(3 / fan_in) has RMS 1/sqrt(fan_in). */
    mimo_tensor_view q, fc, norm;
    cr_assert_eq(mimo_source_get(a, "layers.0.self_attn.q_proj.weight", &q, &err), 0);
    cr_expect_float_eq(rms_bf16(&q), 1.0 / sqrt((double)c.hidden_size), 0.05 / sqrt((double)c.hidden_size));
    cr_assert_eq(mimo_source_get(a, "fc.weight", &fc, &err), 0);
    cr_expect_eq(fc.shape[0], c.hidden_size);
    cr_expect_eq(fc.shape[1], (int64_t)c.n_target_layers * c.hidden_size);
    cr_assert_eq(mimo_source_get(a, "norm.weight", &norm, &err), 0);
    cr_expect_float_eq(rms_bf16(&norm), 1.0, 0.05);
    mimo_source_free(a);
    mimo_source_free(b);
    mimo_source_free(other);
}

Test(drafter_weights, bind_checks_names_and_shapes)
{
    mimo_drafter_config c;
    tiny_drafter(&c);
    mimo_error err = {{0}};
    mimo_tensor_source *src = NULL;
    cr_assert_eq(mimo_drafter_synth(&c, 3, &src, &err), 0, "%s", err.msg);
    mimo_drafter_weights w;
    cr_assert_eq(mimo_drafter_bind(&c, src, &w, &err), 0, "%s", err.msg);
    cr_expect_eq(w.fc.rows, c.hidden_size);
    cr_expect_eq(w.fc.cols, (int64_t)c.n_target_layers * c.hidden_size);
    cr_expect_eq(w.fc.format, MIMO_WFMT_BF16);
    cr_expect_not_null(w.mask_embedding);
    cr_expect_not_null(w.layers[1].sink);
    cr_expect_eq(w.layers[0].q_proj.rows, (int64_t)c.n_heads * c.head_dim);
    cr_expect_eq(w.layers[0].k_proj.rows, (int64_t)c.n_kv_heads * c.head_dim);
    cr_expect_eq(w.layers[0].down.cols, c.intermediate_size);
    mimo_tensor_view nv;
    cr_assert_eq(mimo_source_get(src, "norm.weight", &nv, &err), 0);
    cr_expect_float_eq(w.final_norm[5], mimo_bf16_to_f32(((const uint16_t *)nv.data)[5]), 0);
    mimo_drafter_free(&w);

    /* a config asking for a wider drafter than the tensors: the tensor is named */
    mimo_drafter_config wide = c;
    wide.intermediate_size += 8;
    cr_expect_eq(mimo_drafter_bind(&wide, src, &w, &err), -1);
    cr_expect(strstr(err.msg, "layers.0.mlp.gate_proj.weight") != NULL, "%s", err.msg);
    /* more target layers than fc takes */
    mimo_drafter_config more = c;
    more.n_target_layers += 1;
    cr_expect_eq(mimo_drafter_bind(&more, src, &w, &err), -1);
    cr_expect(strstr(err.msg, "fc.weight") != NULL, "%s", err.msg);
    /* sink asked but absent: bind names it */
    mimo_drafter_config nosink = c;
    nosink.has_sink = false;
    mimo_tensor_source *src2 = NULL;
    cr_assert_eq(mimo_drafter_synth(&nosink, 3, &src2, &err), 0);
    cr_expect_eq(mimo_drafter_bind(&c, src2, &w, &err), -1);
    cr_expect(strstr(err.msg, "attention_sink_bias") != NULL, "%s", err.msg);
    cr_expect_eq(mimo_drafter_bind(&nosink, src2, &w, &err), 0, "%s", err.msg);
    cr_expect_null(w.layers[0].sink);
    mimo_drafter_free(&w);
    mimo_source_free(src2);
    mimo_source_free(src);
}

Test(drafter_weights, mask_embedding_is_optional)
{
    mimo_drafter_config c;
    tiny_drafter(&c);
    mimo_error err = {{0}};
    mimo_tensor_source *full = NULL;
    cr_assert_eq(mimo_drafter_synth(&c, 3, &full, &err), 0);
    /* copy every tensor but mask_embedding */
    mimo_tensor_source *src = mimo_source_new_memory();
    for (int i = 0; i < mimo_source_count(full); i++) {
        const char *name = mimo_source_name_at(full, i);
        if (!strcmp(name, "mask_embedding"))
            continue;
        mimo_tensor_view v;
        cr_assert_eq(mimo_source_get(full, name, &v, &err), 0);
        void *copy = malloc(v.nbytes);
        memcpy(copy, v.data, v.nbytes);
        mimo_source_add(src, name, v.dtype, v.ndim, v.shape, copy, v.nbytes);
    }
    mimo_drafter_weights w;
    cr_assert_eq(mimo_drafter_bind(&c, src, &w, &err), 0, "%s", err.msg);
    cr_expect_null(w.mask_embedding);
    mimo_drafter_free(&w);
    mimo_source_free(src);
    mimo_source_free(full);
}

Test(drafter_weights, write_dir_reads_back)
{
    mimo_drafter_config c, back;
    tiny_drafter(&c);
    mimo_error err = {{0}};
    char *dir = mimo_test_tmpdir();
    cr_assert_not_null(dir);
    char sub[512], cfg_path[600];
    snprintf(sub, sizeof sub, "%s/model/drafter", dir);
    cr_assert_eq(mimo_drafter_write_dir(&c, 11, sub, &err), 0, "%s", err.msg);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", sub);
    cr_assert_eq(mimo_drafter_config_load(cfg_path, &back, &err), 0, "%s", err.msg);
    cr_expect_eq(back.block_size, c.block_size);
    cr_expect_eq(back.n_target_layers, c.n_target_layers);
    cr_expect_eq(back.window, c.window);
    mimo_tensor_source *disk = NULL, *mem = NULL;
    cr_assert_eq(mimo_source_open_dir(sub, &disk, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_drafter_synth(&c, 11, &mem, &err), 0);
    cr_expect_eq(mimo_source_count(disk), mimo_source_count(mem));
    mimo_drafter_weights w;
    cr_assert_eq(mimo_drafter_bind(&back, disk, &w, &err), 0, "%s", err.msg);
    mimo_tensor_view a, b;
    cr_assert_eq(mimo_source_get(disk, "layers.1.mlp.up_proj.weight", &a, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_source_get(mem, "layers.1.mlp.up_proj.weight", &b, &err), 0);
    cr_expect(a.nbytes == b.nbytes && memcmp(a.data, b.data, a.nbytes) == 0);
    mimo_drafter_free(&w);
    mimo_source_free(disk);
    mimo_source_free(mem);
    mimo_error e2 = {{0}};
    cr_expect_eq(mimo_drafter_config_load("/nonexistent/drafter/config.json", &back, &e2), -1);
    cr_expect(strstr(e2.msg, "/nonexistent/drafter/config.json") != NULL, "%s", e2.msg);
    mimo_test_rmtree(dir);
    free(dir);
}
