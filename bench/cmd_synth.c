/* mimo-bench synth: writes a preset's synthetic target (config.json + safetensors + index), its
 * DFlash drafter (DIR/drafter) and a synthetic tokenizer (DIR/tokenizer.json). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "mimo/dflash.h"
#include "mimo/synth.h"
#include "mimo/tokenizer.h"

static const char usage[] =
    "mimo-bench synth --preset P --out DIR [--seed N] [--experts mxfp4|fp8|bf16|f32] [--force-large]\n"
    "  presets: tiny, small, mimo-v2-flash, mimo-v2.5-pro; --experts changes only the expert storage\n"
    "  (the values stay identical); full-scale presets are replayed on the GPU from device-generated\n"
    "  weights and are written to disk only with --force-large";

/* Beyond this the checkpoint is a full-scale model (hundreds of GB): refuse without --force-large. */
#define SYNTH_LARGE_BYTES (64ull << 30)

static const char *human(double v, char *buf, size_t n) { return mimo_format_si(v, false, buf, n); }
static const char *human_bytes(double v, char *buf, size_t n) { return mimo_format_si(v, true, buf, n); }

int mimo_cmd_synth(int argc, char **argv)
{
    const char *preset = NULL, *out = NULL, *experts = NULL;
    uint64_t seed = 0;
    bool force_large = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: %s\n", usage);
            return MIMO_EXIT_OK;
        } else if (!strcmp(a, "--force-large")) {
            force_large = true;
        } else if (!strcmp(a, "--preset") || !strcmp(a, "--out") || !strcmp(a, "--seed") || !strcmp(a, "--experts")) {
            if (!has_value)
                return mimo_usage_error("synth", usage, "%s needs a value", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--preset"))
                preset = v;
            else if (!strcmp(a, "--out"))
                out = v;
            else if (!strcmp(a, "--experts"))
                experts = v;
            else if (!mimo_parse_u64(v, &seed))
                return mimo_usage_error("synth", usage, "--seed: '%s' is not a non-negative integer", v);
        } else {
            return mimo_usage_error("synth", usage, "unknown argument '%s'", a);
        }
    }
    if (!preset)
        return mimo_usage_error("synth", usage, "--preset is required");
    if (!out)
        return mimo_usage_error("synth", usage, "--out is required");

    mimo_config cfg;
    mimo_error err = {{0}};
    if (mimo_config_preset(preset, &cfg, &err))
        return mimo_usage_error("synth", usage, "%s", err.msg);
    if (experts) {
        mimo_weight_format f;
        if (mimo_weight_format_from_name(experts, &f))
            return mimo_usage_error("synth", usage, "--experts: '%s' is not one of mxfp4, fp8, bf16, f32", experts);
        cfg.storage.experts = f;
        if (mimo_config_validate(&cfg, &err))
            return mimo_usage_error("synth", usage, "--experts %s: %s", experts, err.msg);
    }
    mimo_param_counts counts;
    mimo_config_count(&cfg, &counts);
    if (counts.bytes_total > SYNTH_LARGE_BYTES && !force_large)
        return mimo_usage_error("synth", usage,
                                "preset %s is %.0f GB of weights: full-scale presets are replayed on the GPU from "
                                "device-generated weights (e.g. `run --preset %s --shard 0/8`); pass --force-large "
                                "to write it to disk anyway",
                                preset, counts.bytes_total / 1e9, preset);

    char hb[32];
    fprintf(stderr, "synth: writing %s (%s, experts %s, seed %llu) to %s\n", preset,
            human_bytes((double)counts.bytes_total, hb, sizeof hb),
            mimo_weight_format_name(cfg.storage.experts), (unsigned long long)seed, out);
    if (mimo_synth_write_dir(&cfg, seed, out, &err)) {
        fprintf(stderr, "mimo-bench synth: %s\n", err.msg);
        return MIMO_EXIT_FAILURE;
    }
    char path[4096];
    mimo_drafter_config dcfg;
    mimo_drafter_config_for_target(&cfg, &dcfg);
    snprintf(path, sizeof path, "%s/drafter", out);
    if (mimo_drafter_write_dir(&dcfg, seed, path, &err)) {
        fprintf(stderr, "mimo-bench synth: drafter: %s\n", err.msg);
        return MIMO_EXIT_FAILURE;
    }
    snprintf(path, sizeof path, "%s/tokenizer.json", out);
    if (mimo_tokenizer_write_synthetic(cfg.vocab_size, path, &err)) {
        fprintf(stderr, "mimo-bench synth: tokenizer: %s\n", err.msg);
        return MIMO_EXIT_FAILURE;
    }
    char h1[32], h2[32], h3[32];
    printf("wrote %s: preset %s, seed %llu, %s params (%s active), %s, experts %s; "
           "drafter %d layers (block %d); tokenizer.json (vocab %d)\n",
           out, preset, (unsigned long long)seed, human((double)counts.total, h1, sizeof h1),
           human((double)counts.active, h2, sizeof h2), human_bytes((double)counts.bytes_total, h3, sizeof h3),
           mimo_weight_format_name(cfg.storage.experts), dcfg.num_layers, dcfg.block_size, cfg.vocab_size);
    return MIMO_EXIT_OK;
}
