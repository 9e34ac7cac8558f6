/* mimo-bench convert IN OUT --experts F: re-encodes the expert weights (the FP4 ablation on disk);
 * everything else is copied unchanged, config.json records the new storage. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "mimo/convert.h"
#include "mimo/weights.h"

static const char usage[] =
    "mimo-bench convert IN OUT --experts mxfp4|fp8|bf16|f32\n"
    "  re-encodes routed/shared expert weights from any of F32/BF16/FP8/MXFP4; copies the other tensors,\n"
    "  drafter/ and tokenizer.json; reports how many values the new format could not hold exactly";

int mimo_cmd_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *experts = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: %s\n", usage);
            return MIMO_EXIT_OK;
        } else if (!strcmp(a, "--experts")) {
            if (i + 1 >= argc)
                return mimo_usage_error("convert", usage, "--experts needs a value");
            experts = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return mimo_usage_error("convert", usage, "unknown flag '%s'", a);
        } else if (!in) {
            in = a;
        } else if (!out) {
            out = a;
        } else {
            return mimo_usage_error("convert", usage, "unexpected argument '%s'", a);
        }
    }
    if (!in || !out)
        return mimo_usage_error("convert", usage, "IN and OUT directories are required");
    if (!experts)
        return mimo_usage_error("convert", usage, "--experts is required");
    mimo_weight_format f;
    if (mimo_weight_format_from_name(experts, &f))
        return mimo_usage_error("convert", usage, "--experts: '%s' is not one of mxfp4, fp8, bf16, f32", experts);

    mimo_error err = {{0}};
    char path[4096];
    mimo_config cfg;
    snprintf(path, sizeof path, "%s/config.json", in);
    if (mimo_config_load(path, &cfg, &err)) {
        fprintf(stderr, "mimo-bench convert: %s\n", err.msg);
        return MIMO_EXIT_BAD_INPUT;
    }
    /* every tensor read and the model bound before anything is written: a truncated shard or a
     * mis-shaped tensor is bad input, not a half-converted OUT */
    mimo_tensor_source *probe;
    if (mimo_source_open_dir(in, &probe, &err)) {
        fprintf(stderr, "mimo-bench convert: %s\n", err.msg);
        return MIMO_EXIT_BAD_INPUT;
    }
    int bad = 0;
    for (int i = 0; i < mimo_source_count(probe) && !bad; i++) {
        mimo_tensor_view v;
        bad = mimo_source_get(probe, mimo_source_name_at(probe, i), &v, &err);
    }
    mimo_weights w;
    if (!bad && !(bad = mimo_weights_bind(&cfg, probe, &w, NULL, NULL, &err)))
        mimo_weights_free(&w);
    mimo_source_free(probe);
    if (bad) {
        fprintf(stderr, "mimo-bench convert: %s\n", err.msg);
        return MIMO_EXIT_BAD_INPUT;
    }
    uint64_t inexact = 0;
    if (mimo_convert_checkpoint(in, out, f, &inexact, &err)) {
        fprintf(stderr, "mimo-bench convert: %s\n", err.msg);
        return MIMO_EXIT_FAILURE;
    }
    printf("wrote %s: experts %s -> %s, %llu expert values not exactly representable%s\n", out,
           mimo_weight_format_name(cfg.storage.experts), mimo_weight_format_name(f), (unsigned long long)inexact,
           inexact ? " (rounded)" : " (lossless)");
    return MIMO_EXIT_OK;
}
