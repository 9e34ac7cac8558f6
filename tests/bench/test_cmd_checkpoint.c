/* The checkpoint commands end to end: synth -> inspect -> convert -> inspect, and their failures. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mimo/synth.h"
#include "mimo/weights.h"
#include "support.h"

static int run(const char *fmt, const char *a, const char *b, char **out)
{
    char args[8192];
    snprintf(args, sizeof args, fmt, a, b);
    return mimo_test_run_bench(args, out);
}

Test(cmd_checkpoint, synth_inspect_convert)
{
    char *root = mimo_test_tmpdir(), *out = NULL;
    char tiny[1024], conv[1024], path[1100];
    snprintf(tiny, sizeof tiny, "%s/tiny", root);
    snprintf(conv, sizeof conv, "%s/tiny-fp8", root);

    cr_assert_eq(run("synth --preset tiny --out '%s' --seed 5%s", tiny, "", &out), MIMO_EXIT_OK, "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/drafter/config.json", tiny);
    char *text = mimo_test_read_file(path, NULL);
    cr_assert_not_null(text, "synth writes the drafter");
    free(text);
    snprintf(path, sizeof path, "%s/tokenizer.json", tiny);
    text = mimo_test_read_file(path, NULL);
    cr_assert_not_null(text, "synth writes the tokenizer");
    free(text);

    cr_assert_eq(run("inspect '%s'%s", tiny, "", &out), MIMO_EXIT_OK, "%s", out);
    cr_assert(strstr(out, "model.layers.3.mlp.experts.7.down_proj.weight_scale"), "lists tensors");
    cr_assert(strstr(out, "missing: 0, mis-shaped: 0, unknown: 0"), "%s", out);
    cr_assert(strstr(out, "experts mxfp4"), "%s", out);
    free(out);

    cr_assert_eq(run("convert '%s' '%s' --experts fp8", tiny, conv, &out), MIMO_EXIT_OK, "%s", out);
    cr_assert(strstr(out, "lossless"), "%s", out);
    free(out);
    cr_assert_eq(run("inspect --summary '%s'%s", conv, "", &out), MIMO_EXIT_OK, "%s", out);
    cr_assert(strstr(out, "experts fp8"), "%s", out);
    cr_assert(strstr(out, "drafter: ") && !strstr(out, "drafter: none"), "drafter copied: %s", out);
    free(out);

    /* usage errors */
    cr_assert_eq(run("synth --preset tiny%s%s", "", "", &out), MIMO_EXIT_USAGE);
    free(out);
    cr_assert_eq(run("synth --preset huge --out '%s'%s", conv, "", &out), MIMO_EXIT_USAGE);
    cr_assert(strstr(out, "huge"), "%s", out);
    free(out);
    cr_assert_eq(run("synth --preset mimo-v2.5-pro --out '%s/pro'%s", root, "", &out), MIMO_EXIT_USAGE);
    cr_assert(strstr(out, "--force-large"), "%s", out);
    free(out);
    cr_assert_eq(run("convert '%s' '%s' --experts int3", tiny, conv, &out), MIMO_EXIT_USAGE);
    free(out);
    cr_assert_eq(run("convert '%s' '%s/x' --experts bf16", root, root, &out), MIMO_EXIT_BAD_INPUT, "%s", out);
    free(out);
    cr_assert_eq(run("inspect '%s/nope'%s", root, "", &out), MIMO_EXIT_BAD_INPUT);
    free(out);
    mimo_test_rmtree(root);
    free(root);
}

Test(cmd_checkpoint, inspect_reports_every_problem)
{
    char *root = mimo_test_tmpdir(), *out = NULL;
    mimo_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_preset("tiny", &c, &err), 0);
    mimo_tensor_source *s;
    cr_assert_eq(mimo_synth_target(&c, 1, &s, &err), 0, "%s", err.msg);
    /* two mis-shaped, one missing (by renaming it to an unknown name) */
    mimo_source_add(s, "model.layers.1.self_attn.o_proj.weight", MIMO_DTYPE_BF16, 2, (int64_t[2]){64, 64},
                    calloc(64 * 64, 2), 64 * 64 * 2);
    mimo_source_add(s, "model.layers.2.mlp.experts.1.up_proj.weight_scale", MIMO_DTYPE_U8, 2, (int64_t[2]){32, 1},
                    calloc(32, 1), 32);
    mimo_tensor_source *t = mimo_source_new_memory();
    for (int i = 0; i < mimo_source_count(s); i++) {
        const char *name = mimo_source_name_at(s, i);
        mimo_tensor_view v;
        cr_assert_eq(mimo_source_get(s, name, &v, NULL), 0);
        void *d = malloc(v.nbytes);
        memcpy(d, v.data, v.nbytes);
        bool victim = !strcmp(name, "model.layers.3.post_attention_layernorm.weight");
        mimo_source_add(t, victim ? "model.layers.3.post_attention_norm.weight" : name, v.dtype, v.ndim, v.shape, d,
                        v.nbytes);
    }
    char dir[4200], path[4300];
    snprintf(dir, sizeof dir, "%s/bad", root);
    cr_assert_eq(mimo_source_write_dir(t, dir, 1 << 16, &err), 0, "%s", err.msg);
    char *js = mimo_config_to_json(&c);
    snprintf(path, sizeof path, "%s/config.json", dir);
    cr_assert_eq(mimo_write_text_file_atomic(path, js, &err), 0);
    free(js);

    cr_assert_eq(run("inspect --summary '%s'%s", dir, "", &out), MIMO_EXIT_BAD_INPUT, "%s", out);
    cr_assert(strstr(out, "missing tensor 'model.layers.3.post_attention_layernorm.weight'"), "%s", out);
    cr_assert(strstr(out, "mis-shaped tensor 'model.layers.1.self_attn.o_proj.weight'"), "%s", out);
    cr_assert(strstr(out, "mis-shaped tensor 'model.layers.2.mlp.experts.1.up_proj.weight_scale'"), "%s", out);
    cr_assert(strstr(out, "unknown tensor 'model.layers.3.post_attention_norm.weight'"), "%s", out);
    cr_assert(strstr(out, "missing: 1, mis-shaped: 2, unknown: 1"), "%s", out);
    free(out);
    mimo_source_free(s);
    mimo_source_free(t);
    mimo_test_rmtree(root);
    free(root);
}

Test(cmd_checkpoint, unknown_tensors_fail_only_with_strict)
{
    char *root = mimo_test_tmpdir(), *out = NULL;
    mimo_config c;
    mimo_error err = {{0}};
    cr_assert_eq(mimo_config_preset("tiny", &c, &err), 0);
    mimo_tensor_source *s;
    cr_assert_eq(mimo_synth_target(&c, 1, &s, &err), 0, "%s", err.msg);
    mimo_source_add(s, "model.mtp.0.proj.weight", MIMO_DTYPE_F32, 1, (int64_t[1]){4}, calloc(4, 4), 16);
    char dir[4200], path[4300];
    snprintf(dir, sizeof dir, "%s/extra", root);
    cr_assert_eq(mimo_source_write_dir(s, dir, 0, &err), 0, "%s", err.msg);
    char *js = mimo_config_to_json(&c);
    snprintf(path, sizeof path, "%s/config.json", dir);
    cr_assert_eq(mimo_write_text_file_atomic(path, js, &err), 0);
    free(js);
    cr_assert_eq(run("inspect --summary '%s'%s", dir, "", &out), MIMO_EXIT_OK, "%s", out);
    cr_assert(strstr(out, "warning: unknown tensor 'model.mtp.0.proj.weight'"), "%s", out);
    free(out);
    cr_assert_eq(run("inspect --summary --strict '%s'%s", dir, "", &out), MIMO_EXIT_BAD_INPUT, "%s", out);
    free(out);
    mimo_source_free(s);
    mimo_test_rmtree(root);
    free(root);
}
