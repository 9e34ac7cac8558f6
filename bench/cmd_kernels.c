/* mimo-bench kernels: roofline benchmarks of the CUDA kernels (PERFORMANCE.md). A streaming-read
 * calibration kernel, every weight-streaming kernel at one rank's shapes for 1/8/16 positions
 * (median time, bytes, GB/s, ratio to the calibration), and whole-step times of the shard replay
 * against their roofline. Writes JSON (results/kernels/<device>-<commit>.json unless --out). */
#include "cli.h"
#include "kernel_knobs.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mimo/build_info.h"
#include "mimo/config.h"
#include "mimo/engine.h"
#include "mimo/tensor_source.h"

#ifdef MIMO_HAVE_CUDA
#include "../engine/cuda/cuda_kbench.h"
#endif

static const char *usage =
    "mimo-bench kernels [--preset P] [--shard R/N] [--tokens 1,8,16] [--layers K] [--reps N]\n"
    "                   [--context N] [--no-steps | --steps-only] [--out FILE.json]\n"
    "  --preset P     shapes to benchmark (default mimo-v2.5-pro)\n"
    "  --shard R/N    one rank's share (default 0/8)\n"
    "  --tokens LIST  positions per step (default 1,8,16)\n"
    "  --layers K     whole-step replay of the first K layers (default: as many as fit)\n"
    "  --reps N       timed repetitions per figure, median reported (default 50)\n"
    "  --context N    positions in the cache when a whole step runs, 16..32768 (default 256; the drafter pass\n"
    "                 keeps 256)\n"
    "  --no-steps     kernels only, no whole-step replay\n"
    "  --steps-only   the calibration and whole steps only, no kernel rows (quicker A/Bs of a step)\n"
    "  --out FILE     JSON output (default results/kernels/<device>-<commit>.json)\n";

#ifdef MIMO_HAVE_CUDA
static void slug(const char *in, char *out, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; in[i] && j + 1 < n; i++) {
        char c = in[i];
        out[j++] = ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? c : '-';
    }
    out[j] = 0;
}

static json_t *num_or_null(double v)
{
    return v == v && v < 1e300 && v > -1e300 ? json_real(v) : json_null();
}

static json_t *to_json(const mimo_kbench_options *o, const mimo_kbench_result *r)
{
    json_t *root = json_object();
    json_object_set_new(root, "schema", json_string("mimo-bench kernels v1"));
    json_object_set_new(root, "device", json_string(r->device));
    json_object_set_new(root, "commit", json_string(mimo_git_commit()));
    json_object_set_new(root, "build_flags", json_string(mimo_build_flags()));
    json_object_set_new(root, "sm_count", json_integer(r->sm_count));
    json_object_set_new(root, "l2_mb", num_or_null(r->l2_mb));
    json_object_set_new(root, "memory_gb", num_or_null(r->mem_gb));
    json_object_set_new(root, "preset", json_string(o->preset));
    char shard[32];
    snprintf(shard, sizeof shard, "%d/%d", o->shard_rank, o->shard_count);
    json_object_set_new(root, "shard", json_string(shard));
    json_object_set_new(root, "calibration_gbps", num_or_null(r->calibration_gbps));
    json_object_set_new(root, "calibration", json_string("streaming read of 1 GiB, 16-byte loads, 4 blocks of 512 threads per SM"));
    json_object_set_new(root, "copy_gbps", num_or_null(r->copy_gbps));
    json_t *boundary = json_object();
    json_object_set_new(boundary, "method",
                        json_string("a chain of kernels of one 256-thread block per SM, each busy on every block, "
                                    "replayed as a CUDA graph; release: the previous kernel's last block ending -> "
                                    "the first block past its wait (median over the chain, %globaltimer); "
                                    "per_kernel: the chain's CUDA-event time / kernels"));
    json_object_set_new(boundary, "kernels", json_integer(MIMO_KBENCH_BOUNDARY_KERNELS));
    json_object_set_new(boundary, "busy_us", json_real(MIMO_KBENCH_BOUNDARY_BUSY_US));
    for (int m = 0; m < MIMO_KBENCH_BOUNDARY_MODES; m++) {
        const mimo_kbench_boundary *x = &r->boundary[m];
        if (!x->name)
            continue;
        json_object_set_new(boundary, x->name,
                            json_pack("{s:o, s:o, s:o}", "release_us", num_or_null(x->release_us), "last_block_us",
                                      num_or_null(x->last_block_us), "per_kernel_us", num_or_null(x->per_kernel_us)));
    }
    json_object_set_new(root, "kernel_boundary", boundary);
    json_object_set_new(root, "reps", json_integer(o->reps));
    json_object_set_new(root, "timing",
                        json_string("kernels: median over reps of (CUDA-event time of 16 back-to-back launches on rotated "
                                    "weights / 16), after warm-up; *_pdl_chained: the same with launches 2..16 of each "
                                    "batch carrying the programmatic-dependent-launch attribute, as kernels inside a "
                                    "step; steps: median over reps of one forward call (host upload, launch or graph "
                                    "replay, copies back) at `context` positions in the cache (the drafter rows at 256)"));
    json_object_set_new(root, "context", json_integer(o->context > 0 ? o->context : MIMO_KBENCH_DEFAULT_CONTEXT));
    /* the CUDA backend's knobs that are set (kernel_knobs.h) */
    json_t *knobs = json_object();
    for (size_t i = 0; i < mimo_cuda_knob_count; i++)
        if (getenv(mimo_cuda_knobs[i]))
            json_object_set_new(knobs, mimo_cuda_knobs[i], json_string(getenv(mimo_cuda_knobs[i])));
    json_object_set_new(root, "gemv_knobs", knobs);
    if (r->note[0])
        json_object_set_new(root, "note", json_string(r->note));
    json_t *kernels = json_array(), *steps = json_array();
    for (int i = 0; i < r->n_rows; i++) {
        const mimo_kbench_row *x = &r->rows[i];
        json_t *j = json_object();
        json_object_set_new(j, "name", json_string(x->name));
        json_object_set_new(j, "tokens", json_integer(x->tokens));
        json_object_set_new(j, "median_us", num_or_null(x->median_us));
        json_object_set_new(j, "bytes", num_or_null(x->bytes));
        json_object_set_new(j, "gbps", num_or_null(x->gbps));
        if (!strncmp(x->name, "step_", 5)) {
            json_object_set_new(j, "exec", json_string(x->exec));
            json_object_set_new(j, "layers", json_integer(x->layers));
            json_object_set_new(j, "roofline_us", num_or_null(x->bytes / (r->calibration_gbps * 1e9) * 1e6));
            json_object_set_new(j, "roofline_over_time", num_or_null(x->ratio));
            json_array_append_new(steps, j);
        } else {
            json_object_set_new(j, "format", json_string(x->format));
            json_object_set_new(j, "rows", json_integer(x->rows));
            json_object_set_new(j, "cols", json_integer(x->cols));
            json_object_set_new(j, "ratio_to_calibration", num_or_null(x->ratio));
            json_object_set_new(j, "median_us_pdl_chained", num_or_null(x->chained_us));
            json_object_set_new(j, "ratio_to_calibration_pdl_chained", num_or_null(x->chained_ratio));
            json_array_append_new(kernels, j);
        }
    }
    json_object_set_new(root, "kernels", kernels);
    json_object_set_new(root, "steps", steps);
    return root;
}
#endif

int mimo_cmd_kernels(int argc, char **argv)
{
    const char *preset = "mimo-v2.5-pro", *out = NULL;
    int rank = 0, count = 8;
    int32_t *tok = NULL;
    int n_tok = 0;
    long layers = 0, reps = 50, context = 256;
    bool steps = true, kernel_rows = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-steps") || !strcmp(a, "--steps-only")) {
            if (!strcmp(a, "--no-steps"))
                steps = false;
            else
                kernel_rows = false;
            if (!steps && !kernel_rows) {
                free(tok);
                return mimo_usage_error("kernels", usage, "--no-steps and --steps-only leave nothing to run");
            }
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: %s", usage);
            free(tok);
            return MIMO_EXIT_OK;
        }
        static const char *const valued[] = {"--preset", "--shard", "--tokens", "--layers", "--reps", "--context", "--out", NULL};
        bool known = false;
        for (int k = 0; valued[k]; k++)
            known |= !strcmp(a, valued[k]);
        if (!known) {
            free(tok);
            return mimo_usage_error("kernels", usage, "unknown flag '%s'", a);
        }
        if (i + 1 >= argc) {
            free(tok);
            return mimo_usage_error("kernels", usage, "%s needs a value", a);
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--preset")) {
            preset = v;
        } else if (!strcmp(a, "--shard")) {
            if (!mimo_parse_shard(v, &rank, &count)) {
                free(tok);
                return mimo_usage_error("kernels", usage, "bad --shard '%s' (want R/N)", v);
            }
        } else if (!strcmp(a, "--tokens")) {
            free(tok);
            tok = NULL;
            if (!mimo_parse_int_list(v, 1, 16, &tok, &n_tok) || n_tok < 1 || n_tok > 8) {
                free(tok);
                return mimo_usage_error("kernels", usage, "bad --tokens '%s' (1..8 values in 1..16)", v);
            }
        } else if (!strcmp(a, "--layers")) {
            if (!mimo_parse_int(v, 1, 100000, &layers)) {
                free(tok);
                return mimo_usage_error("kernels", usage, "bad --layers '%s'", v);
            }
        } else if (!strcmp(a, "--reps")) {
            if (!mimo_parse_int(v, 1, 100000, &reps)) {
                free(tok);
                return mimo_usage_error("kernels", usage, "bad --reps '%s'", v);
            }
        } else if (!strcmp(a, "--context")) {
            if (!mimo_parse_int(v, 16, 32768, &context)) {
                free(tok);
                return mimo_usage_error("kernels", usage, "bad --context '%s' (16..32768 positions)", v);
            }
        } else if (!strcmp(a, "--out")) {
            out = v;
        } else {
            free(tok);
            return mimo_usage_error("kernels", usage, "unknown flag '%s'", a);
        }
    }
    mimo_config cfg;
    mimo_error err = {{0}};
    if (mimo_config_preset(preset, &cfg, &err)) {
        free(tok);
        return mimo_usage_error("kernels", usage, "%s", err.msg);
    }
#ifndef MIMO_HAVE_CUDA
    (void)rank;
    (void)count;
    (void)layers;
    (void)reps;
    (void)context;
    (void)steps;
    (void)kernel_rows;
    (void)out;
    free(tok);
    fprintf(stderr, "mimo-bench kernels: this build has no CUDA backend (nvcc was not found at configure time)\n");
    return MIMO_EXIT_UNAVAILABLE;
#else
    char reason[256];
    if (!mimo_backend_available(MIMO_BACKEND_CUDA, reason, sizeof reason)) {
        free(tok);
        fprintf(stderr, "mimo-bench kernels: %s\n", reason);
        return MIMO_EXIT_UNAVAILABLE;
    }
    mimo_kbench_options o;
    memset(&o, 0, sizeof o);
    o.preset = preset;
    o.shard_rank = rank;
    o.shard_count = count;
    if (tok) {
        for (int i = 0; i < n_tok; i++)
            o.tokens[i] = tok[i];
        o.n_tokens = n_tok;
    } else {
        o.tokens[0] = 1;
        o.tokens[1] = 8;
        o.tokens[2] = 16;
        o.n_tokens = 3;
    }
    free(tok);
    o.layers = (int)layers;
    o.reps = (int)reps;
    o.context = (int)context;
    o.steps = steps;
    o.steps_only = !kernel_rows;
    mimo_kbench_result *r = malloc(sizeof *r);
    if (mimo_cuda_kernel_bench(&o, r, &err)) {
        fprintf(stderr, "mimo-bench kernels: %s\n", err.msg);
        free(r);
        return MIMO_EXIT_FAILURE;
    }
    printf("device %s, calibration (streaming read) %.0f GB/s, device copy %.0f GB/s\n", r->device, r->calibration_gbps,
           r->copy_gbps);
    for (int m = 0; m < MIMO_KBENCH_BOUNDARY_MODES; m++)
        printf("kernel boundary, %-13s previous kernel's end -> first block past its wait %.3f us (last block %.3f us); "
               "%.3f us per kernel of %.1f us busy\n",
               r->boundary[m].name, r->boundary[m].release_us, r->boundary[m].last_block_us, r->boundary[m].per_kernel_us,
               MIMO_KBENCH_BOUNDARY_BUSY_US);
    printf("%-28s %-6s %6s %6s %4s %10s %10s %8s %6s %10s %6s\n", "kernel", "format", "rows", "cols", "tok", "median_us",
           "MB", "GB/s", "ratio", "chained_us", "ratio");
    for (int i = 0; i < r->n_rows; i++) {
        const mimo_kbench_row *x = &r->rows[i];
        if (!strncmp(x->name, "step_", 5))
            printf("%-28s %-6s %6d layers %4d %10.1f %10.1f %8.0f %6.3f (roofline/time)\n", x->name, x->exec, x->layers,
                   x->tokens, x->median_us, x->bytes / 1e6, x->gbps, x->ratio);
        else
            printf("%-28s %-6s %6d %6d %4d %10.2f %10.2f %8.0f %6.3f %10.2f %6.3f\n", x->name, x->format, x->rows, x->cols,
                   x->tokens, x->median_us, x->bytes / 1e6, x->gbps, x->ratio, x->chained_us, x->chained_ratio);
    }
    if (r->note[0])
        printf("note: %s\n", r->note);
    char path[1024];
    if (out) {
        snprintf(path, sizeof path, "%s", out);
    } else {
        char dev[128], commit[16];
        slug(r->device, dev, sizeof dev);
        snprintf(commit, sizeof commit, "%.7s", mimo_git_commit());
        mkdir("results", 0777);
        mkdir("results/kernels", 0777);
        snprintf(path, sizeof path, "results/kernels/%s-%s.json", dev, commit);
    }
    json_t *root = to_json(&o, r);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(root);
    free(r);
    int rc = mimo_write_text_file_atomic(path, text, &err);
    free(text);
    if (rc) {
        fprintf(stderr, "mimo-bench kernels: %s\n", err.msg);
        return MIMO_EXIT_FAILURE;
    }
    printf("wrote %s\n", path);
    return MIMO_EXIT_OK;
#endif
}
