#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/convert.h"
#include "mimo/formats.h"
#include "mimo/hash.h"
#include "mimo/synth.h"
#include "mimo/weights.h"
#include "support.h"

static mimo_config tiny_with(mimo_weight_format experts)
{
    mimo_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_preset("tiny", &c, &err), 0, "%s", err.msg);
    c.storage.experts = experts;
    return c;
}

static char *subdir(const char *root, const char *name)
{
    char *p = malloc(strlen(root) + strlen(name) + 2);
    sprintf(p, "%s/%s", root, name);
    return p;
}

static void convert_ok(const char *in, const char *out, mimo_weight_format f, uint64_t *inexact)
{
    mimo_error err = {{0}};
    *inexact = 0;
    cr_assert_eq(mimo_convert_checkpoint(in, out, f, inexact, &err), 0, "%s", err.msg);
}

typedef struct {
    mimo_config         cfg;
    mimo_tensor_source *src;
    mimo_weights        w;
} loaded;

static void load(const char *dir, loaded *l)
{
    mimo_error err = {{0}};
    char *cfg = subdir(dir, "config.json");
    cr_assert_eq(mimo_config_load(cfg, &l->cfg, &err), 0, "%s", err.msg);
    free(cfg);
    cr_assert_eq(mimo_source_open_dir(dir, &l->src, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_weights_bind(&l->cfg, l->src, &l->w, NULL, NULL, &err), 0, "%s", err.msg);
}

static void unload(loaded *l)
{
    mimo_weights_free(&l->w);
    mimo_source_free(l->src);
}

static void assert_same_expert_values(const loaded *a, const loaded *b)
{
    const mimo_config *c = &a->cfg;
    for (int l = 0; l < c->num_layers; l++) {
        if (!c->layer_is_moe[l])
            continue;
        for (int e = 0; e < c->n_routed_experts; e++) {
            const mimo_matrix *ma[3] = {&a->w.layers[l].expert_gate[e], &a->w.layers[l].expert_up[e],
                                        &a->w.layers[l].expert_down[e]};
            const mimo_matrix *mb[3] = {&b->w.layers[l].expert_gate[e], &b->w.layers[l].expert_up[e],
                                        &b->w.layers[l].expert_down[e]};
            for (int p = 0; p < 3; p++)
                for (int64_t r = 0; r < ma[p]->rows; r++)
                    for (int64_t col = 0; col < ma[p]->cols; col++)
                        cr_assert_eq(mimo_matrix_get(ma[p], r, col), mimo_matrix_get(mb[p], r, col),
                                     "layer %d expert %d proj %d (%lld, %lld)", l, e, p, (long long)r, (long long)col);
        }
    }
}

/* Every non-expert tensor is copied byte for byte. */
static void assert_rest_identical(mimo_tensor_source *a, mimo_tensor_source *b)
{
    int checked = 0;
    for (int i = 0; i < mimo_source_count(a); i++) {
        const char *name = mimo_source_name_at(a, i);
        if (strstr(name, ".experts."))
            continue;
        mimo_tensor_view va, vb;
        mimo_error err = {{0}};
        cr_assert_eq(mimo_source_get(a, name, &va, &err), 0, "%s", err.msg);
        cr_assert_eq(mimo_source_get(b, name, &vb, &err), 0, "%s", err.msg);
        cr_assert_eq(va.dtype, vb.dtype, "%s", name);
        cr_assert_eq(va.nbytes, vb.nbytes, "%s", name);
        cr_assert_eq(memcmp(va.data, vb.data, va.nbytes), 0, "%s", name);
        checked++;
    }
    cr_assert_gt(checked, 20);
}

Test(convert, mxfp4_bf16_mxfp4_and_fp8_round_trips_are_exact, .timeout = 60)
{
    char *root = mimo_test_tmpdir();
    char *d0 = subdir(root, "mxfp4"), *d1 = subdir(root, "bf16"), *d2 = subdir(root, "back"), *d3 = subdir(root, "fp8"),
         *d4 = subdir(root, "back2");
    mimo_config c = tiny_with(MIMO_WFMT_MXFP4);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_synth_write_dir(&c, 77, d0, &err), 0, "%s", err.msg);
    /* a drafter and tokenizer stand-in travel along */
    char *dd = subdir(d0, "drafter");
    cr_assert_eq(mimo_make_dirs(dd, &err), 0);
    char *dcfg = subdir(dd, "config.json"), *tok = subdir(d0, "tokenizer.json");
    cr_assert_eq(mimo_write_text_file_atomic(dcfg, "{\"drafter\": true}", &err), 0);
    cr_assert_eq(mimo_write_text_file_atomic(tok, "{\"tokenizer\": 1}", &err), 0);

    uint64_t inexact;
    convert_ok(d0, d1, MIMO_WFMT_BF16, &inexact);
    cr_assert_eq(inexact, 0);
    convert_ok(d1, d2, MIMO_WFMT_MXFP4, &inexact);
    cr_assert_eq(inexact, 0);
    convert_ok(d0, d3, MIMO_WFMT_FP8, &inexact);
    cr_assert_eq(inexact, 0);
    convert_ok(d3, d4, MIMO_WFMT_MXFP4, &inexact);
    cr_assert_eq(inexact, 0);

    loaded l0, l1, l2, l3, l4;
    load(d0, &l0);
    load(d1, &l1);
    load(d2, &l2);
    load(d3, &l3);
    load(d4, &l4);
    cr_assert_eq(l1.cfg.storage.experts, MIMO_WFMT_BF16);
    cr_assert_eq(l1.w.storage.experts, MIMO_WFMT_BF16);
    cr_assert_eq(l2.w.storage.experts, MIMO_WFMT_MXFP4);
    cr_assert_eq(l3.w.storage.experts, MIMO_WFMT_FP8);
    cr_assert_eq(l4.w.storage.experts, MIMO_WFMT_MXFP4);
    /* only the expert storage changed in the config */
    mimo_storage s = l1.cfg.storage;
    s.experts = MIMO_WFMT_MXFP4;
    cr_assert_eq(memcmp(&s, &l0.cfg.storage, sizeof s), 0);
    assert_same_expert_values(&l0, &l1);
    assert_same_expert_values(&l0, &l2);
    assert_same_expert_values(&l0, &l3);
    assert_same_expert_values(&l0, &l4);
    assert_rest_identical(l0.src, l1.src);
    assert_rest_identical(l0.src, l3.src);
    /* and equal to what synth writes directly with that expert storage */
    mimo_config cb = tiny_with(MIMO_WFMT_BF16);
    mimo_tensor_source *direct;
    cr_assert_eq(mimo_synth_target(&cb, 77, &direct, &err), 0, "%s", err.msg);
    const char *en = "model.layers.2.mlp.experts.6.down_proj.weight";
    mimo_tensor_view va, vb;
    cr_assert_eq(mimo_source_get(direct, en, &va, NULL), 0);
    cr_assert_eq(mimo_source_get(l1.src, en, &vb, NULL), 0);
    cr_assert_eq(memcmp(va.data, vb.data, va.nbytes), 0, "convert to bf16 == synth --experts bf16");
    mimo_source_free(direct);

    char *dcfg2 = subdir(d1, "drafter/config.json"), *tok2 = subdir(d1, "tokenizer.json");
    char *text = mimo_test_read_file(dcfg2, NULL);
    cr_assert(text && strstr(text, "drafter"), "drafter copied");
    free(text);
    text = mimo_test_read_file(tok2, NULL);
    cr_assert(text && strstr(text, "tokenizer"), "tokenizer copied");
    free(text);

    unload(&l0), unload(&l1), unload(&l2), unload(&l3), unload(&l4);
    free(dcfg), free(tok), free(dcfg2), free(tok2), free(dd);
    free(d0), free(d1), free(d2), free(d3), free(d4);
    mimo_test_rmtree(root);
    free(root);
}

Test(convert, refuses_bad_requests)
{
    char *root = mimo_test_tmpdir();
    char *d0 = subdir(root, "in");
    mimo_config c = tiny_with(MIMO_WFMT_MXFP4);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_synth_write_dir(&c, 1, d0, &err), 0, "%s", err.msg);
    uint64_t inexact = 0;
    cr_assert_eq(mimo_convert_checkpoint(d0, d0, MIMO_WFMT_BF16, &inexact, &err), -1);
    cr_assert(strstr(err.msg, "differ"), "%s", err.msg);
    char *missing = subdir(root, "nope");
    cr_assert_eq(mimo_convert_checkpoint(missing, d0, MIMO_WFMT_BF16, &inexact, &err), -1);
    cr_assert(strstr(err.msg, "nope"), "%s", err.msg);
    free(missing);
    free(d0);
    mimo_test_rmtree(root);
    free(root);
}

Test(convert, lossy_conversions_are_counted)
{
    /* random f32 values do not fit MXFP4 or FP8: the count says so; an exact power-of-two grid does */
    const int64_t rows = 64, cols = 64;
    mimo_tensor_source *src = mimo_source_new_memory();
    float *w = malloc((size_t)(rows * cols) * 4), *g = malloc((size_t)(rows * cols) * 4);
    for (int64_t i = 0; i < rows * cols; i++) {
        w[i] = mimo_bits_to_unit_symmetric(mimo_hash2(99, (uint64_t)i)) * 0.1f;
        g[i] = mimo_e2m1_values[mimo_hash2(98, (uint64_t)i) >> 60] * 0.125f;
    }
    mimo_source_add(src, "x.weight", MIMO_DTYPE_F32, 2, (int64_t[2]){rows, cols}, w, (size_t)(rows * cols) * 4);
    mimo_source_add(src, "g.weight", MIMO_DTYPE_F32, 2, (int64_t[2]){rows, cols}, g, (size_t)(rows * cols) * 4);
    mimo_tensor_source *dst = mimo_source_new_memory();
    mimo_error err = {{0}};
    uint64_t inexact = 0;
    cr_assert_eq(mimo_convert_matrix(src, "x.weight", rows, cols, MIMO_WFMT_MXFP4, dst, &inexact, &err), 0, "%s", err.msg);
    cr_assert_gt(inexact, (uint64_t)(rows * cols / 2));
    inexact = 0;
    cr_assert_eq(mimo_convert_matrix(src, "x.weight", rows, cols, MIMO_WFMT_FP8, dst, &inexact, &err), 0, "%s", err.msg);
    cr_assert_gt(inexact, 0);
    /* FP8 with the power-of-two block scale: error within E4M3's half-ulp */
    mimo_tensor_view q, s;
    cr_assert_eq(mimo_source_get(dst, "x.weight", &q, NULL), 0);
    cr_assert_eq(mimo_source_get(dst, "x.weight_scale_inv", &s, NULL), 0);
    float sc = ((const float *)s.data)[0];
    cr_assert_eq(sc, exp2f(roundf(log2f(sc))), "power-of-two scale");
    for (int64_t i = 0; i < rows * cols; i++) {
        float back = mimo_fp8_e4m3_to_f32(((const uint8_t *)q.data)[i]) * sc;
        cr_assert_leq(fabsf(back - w[i]), fabsf(w[i]) / 16 + sc / 512, "element %lld", (long long)i);
    }
    inexact = 0;
    for (int f = 0; f < MIMO_WFMT_COUNT; f++)
        cr_assert_eq(mimo_convert_matrix(src, "g.weight", rows, cols, (mimo_weight_format)f, dst, &inexact, &err), 0);
    cr_assert_eq(inexact, 0, "MXFP4-grid values are exact in every format");
    cr_assert_eq(mimo_convert_matrix(src, "missing.weight", rows, cols, MIMO_WFMT_BF16, dst, &inexact, &err), -1);
    cr_assert(strstr(err.msg, "missing.weight"), "%s", err.msg);
    cr_assert_eq(mimo_convert_matrix(src, "x.weight", rows, 32, MIMO_WFMT_BF16, dst, &inexact, &err), -1);
    cr_assert(strstr(err.msg, "x.weight"), "%s", err.msg);
    mimo_source_free(src);
    mimo_source_free(dst);
}
