/* mimo-bench inspect DIR: lists a checkpoint's tensors (dtype, format, shape, bytes, shard), checks
 * every tensor MODEL.md names against config.json (reporting ALL missing and mis-shaped tensors, not
 * just the first), lists unknown tensors, prints parameter counts and bytes per format, and looks at
 * drafter/ and tokenizer.json. Exit 3 when a tensor is missing or mis-shaped (or unknown, with --strict). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mimo/dflash.h"
#include "mimo/weights.h"

static const char usage[] =
    "mimo-bench inspect DIR [--summary] [--strict]\n"
    "  --summary: skip the per-tensor listing; --strict: unknown tensors are problems too (exit 3)";

typedef struct {
    mimo_tensor_source *src;
    bool    *used;                         /* by source index */
    int      missing, misshaped;
    uint64_t bytes_by_format[MIMO_WFMT_COUNT];
    uint64_t matrices_by_format[MIMO_WFMT_COUNT];
} checker;

static int index_of(checker *c, const char *name)
{
    int lo = 0, hi = mimo_source_count(c->src);
    while (lo < hi) {
        int mid = (lo + hi) / 2, k = strcmp(mimo_source_name_at(c->src, mid), name);
        if (!k)
            return mid;
        if (k < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* The spelling present in the source (with or without "model."), or NULL. */
static const char *resolve(checker *c, const char *canonical, char *buf, size_t n)
{
    const char *alt = !strncmp(canonical, "model.", 6) ? canonical + 6 : NULL;
    char prefixed[300];
    if (!alt) {
        /* tensor names are far shorter than prefixed; a cut one would only fail to match */
        if (snprintf(prefixed, sizeof prefixed, "model.%s", canonical) >= (int)sizeof prefixed)
            prefixed[sizeof prefixed - 1] = '\0';
        alt = prefixed;
    }
    if (mimo_source_has(c->src, canonical))
        snprintf(buf, n, "%s", canonical);
    else if (mimo_source_has(c->src, alt))
        snprintf(buf, n, "%s", alt);
    else
        return NULL;
    return buf;
}

static void problem(checker *c, bool missing, const char *fmt, const char *a, const char *b)
{
    if (missing)
        c->missing++;
    else
        c->misshaped++;
    printf("  PROBLEM: ");
    printf(fmt, a, b);
    printf("\n");
}

static bool get_shaped(checker *c, const char *name, int ndim, int64_t d0, int64_t d1, mimo_tensor_view *v)
{
    mimo_error err = {{0}};
    if (mimo_source_get(c->src, name, v, &err)) {
        problem(c, false, "%s%s", err.msg, "");
        return false;
    }
    int i = index_of(c, name);
    if (i >= 0)
        c->used[i] = true;
    bool ok = v->ndim == ndim && v->shape[0] == d0 && (ndim < 2 || v->shape[1] == d1);
    if (!ok) {
        char want[96];
        if (ndim == 1)
            snprintf(want, sizeof want, "[%lld]", (long long)d0);
        else
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)d0, (long long)d1);
        problem(c, false, "mis-shaped tensor '%s': expected %s", name, want);
    }
    return ok;
}

static void check_vector(checker *c, const char *canonical, int64_t n)
{
    char buf[300];
    const char *name = resolve(c, canonical, buf, sizeof buf);
    if (!name) {
        problem(c, true, "missing tensor '%s'%s", canonical, "");
        return;
    }
    mimo_tensor_view v;
    if (get_shaped(c, name, 1, n, 0, &v) && v.dtype != MIMO_DTYPE_F32 && v.dtype != MIMO_DTYPE_BF16)
        problem(c, false, "tensor '%s' has dtype %s (expected F32 or BF16)", name, mimo_dtype_name(v.dtype));
}

static void check_matrix_named(checker *c, const char *name, int64_t rows, int64_t cols, int64_t scale_rows)
{
    mimo_tensor_view v, s;
    mimo_error err = {{0}};
    if (mimo_source_get(c->src, name, &v, &err)) {
        problem(c, false, "%s%s", err.msg, "");
        return;
    }
    char sname[320];
    mimo_weight_format f;
    switch (v.dtype) {
    case MIMO_DTYPE_F32:
    case MIMO_DTYPE_BF16:
        f = v.dtype == MIMO_DTYPE_F32 ? MIMO_WFMT_F32 : MIMO_WFMT_BF16;
        if (!get_shaped(c, name, 2, rows, cols, &v))
            return;
        break;
    case MIMO_DTYPE_F8_E4M3:
        f = MIMO_WFMT_FP8;
        if (!get_shaped(c, name, 2, rows, cols, &v))
            return;
        snprintf(sname, sizeof sname, "%s_scale_inv", name);
        if (!mimo_source_has(c->src, sname)) {
            problem(c, true, "missing tensor '%s'%s", sname, "");
            return;
        }
        if (!get_shaped(c, sname, 2, scale_rows > 0 ? scale_rows : (rows + 127) / 128, (cols + 127) / 128, &s))
            return;
        break;
    case MIMO_DTYPE_U8:
        f = MIMO_WFMT_MXFP4;
        if (!get_shaped(c, name, 2, rows, cols / 2, &v))
            return;
        snprintf(sname, sizeof sname, "%s_scale", name);
        if (!mimo_source_has(c->src, sname)) {
            problem(c, true, "missing tensor '%s'%s", sname, "");
            return;
        }
        if (!get_shaped(c, sname, 2, rows, cols / 32, &s))
            return;
        break;
    default:
        problem(c, false, "tensor '%s' has dtype %s (matrices: F32, BF16, F8_E4M3, U8 for MXFP4)", name,
                mimo_dtype_name(v.dtype));
        return;
    }
    c->matrices_by_format[f]++;
    c->bytes_by_format[f] += mimo_weight_format_bytes(f, rows, cols);
}

static void check_matrix(checker *c, const char *canonical, int64_t rows, int64_t cols)
{
    char buf[300];
    const char *name = resolve(c, canonical, buf, sizeof buf);
    if (!name)
        problem(c, true, "missing tensor '%s'%s", canonical, "");
    else
        check_matrix_named(c, name, rows, cols, 0);
}

static void check_model(checker *c, const mimo_config *cfg)
{
    const int64_t H = cfg->hidden_size, V = cfg->vocab_size;
    char name[300], buf[300];
    check_matrix(c, "model.embed_tokens.weight", V, H);
    if (!cfg->tie_word_embeddings || resolve(c, "lm_head.weight", buf, sizeof buf))
        check_matrix(c, "lm_head.weight", V, H);
    check_vector(c, "model.norm.weight", H);
    for (int l = 0; l < cfg->num_layers; l++) {
        const mimo_attn_shape *a = mimo_layer_attn(cfg, l);
        mimo_tensor_name_layer(name, sizeof name, l, "input_layernorm.weight");
        check_vector(c, name, H);
        mimo_tensor_name_layer(name, sizeof name, l, "post_attention_layernorm.weight");
        check_vector(c, name, H);
        mimo_tensor_name_layer(name, sizeof name, l, "self_attn.qkv_proj.weight");
        const char *fused = resolve(c, name, buf, sizeof buf);
        if (fused) {
            bool il = cfg->qkv_interleaved && cfg->qkv_groups > 1;
            check_matrix_named(c, fused, mimo_qkv_rows(cfg, l), H, il ? mimo_qkv_scale_rows(cfg, l) : 0);
        } else {
            const int64_t rows[3] = {(int64_t)a->n_heads * a->head_dim, (int64_t)a->n_kv_heads * a->head_dim,
                                     (int64_t)a->n_kv_heads * a->v_head_dim};
            static const char *const parts[3] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                                 "self_attn.v_proj.weight"};
            for (int p = 0; p < 3; p++) {
                mimo_tensor_name_layer(name, sizeof name, l, parts[p]);
                check_matrix(c, name, rows[p], H);
            }
        }
        mimo_tensor_name_layer(name, sizeof name, l, "self_attn.o_proj.weight");
        check_matrix(c, name, H, (int64_t)a->n_heads * a->v_head_dim);
        if (a->has_sink) {
            mimo_tensor_name_layer(name, sizeof name, l, "self_attn.attention_sink_bias");
            check_vector(c, name, a->n_heads);
        }
        if (!cfg->layer_is_moe[l]) {
            const int64_t I = cfg->intermediate_size;
            mimo_tensor_name_layer(name, sizeof name, l, "mlp.gate_proj.weight");
            check_matrix(c, name, I, H);
            mimo_tensor_name_layer(name, sizeof name, l, "mlp.up_proj.weight");
            check_matrix(c, name, I, H);
            mimo_tensor_name_layer(name, sizeof name, l, "mlp.down_proj.weight");
            check_matrix(c, name, H, I);
            continue;
        }
        const int64_t E = cfg->n_routed_experts, I = cfg->moe_intermediate_size;
        mimo_tensor_name_layer(name, sizeof name, l, "mlp.gate.weight");
        check_matrix(c, name, E, H);
        mimo_tensor_name_layer(name, sizeof name, l, "mlp.gate.e_score_correction_bias");
        check_vector(c, name, E);
        for (int e = 0; e < E + cfg->n_shared_experts; e++) {
            static const char *const proj[3] = {"gate", "up", "down"};
            for (int p = 0; p < 3; p++) {
                char suffix[128];
                if (e < E)
                    snprintf(suffix, sizeof suffix, "mlp.experts.%d.%s_proj.weight", e, proj[p]);
                else
                    snprintf(suffix, sizeof suffix, "mlp.shared_experts.%d.%s_proj.weight", e - (int)E, proj[p]);
                mimo_tensor_name_layer(name, sizeof name, l, suffix);
                if (e >= E && cfg->n_shared_experts == 1 && !resolve(c, name, buf, sizeof buf)) {
                    snprintf(suffix, sizeof suffix, "mlp.shared_experts.%s_proj.weight", proj[p]);
                    mimo_tensor_name_layer(name, sizeof name, l, suffix);
                }
                check_matrix(c, name, p == 2 ? H : I, p == 2 ? I : H);
            }
        }
    }
}

static void print_listing(mimo_tensor_source *src)
{
    printf("tensors:\n");
    for (int i = 0; i < mimo_source_count(src); i++) {
        const char *name = mimo_source_name_at(src, i);
        mimo_tensor_view v;
        mimo_error err = {{0}};
        if (mimo_source_get(src, name, &v, &err)) {
            printf("  %-64s  (unreadable: %s)\n", name, err.msg);
            continue;
        }
        char shape[96];
        size_t k = 0;
        k += (size_t)snprintf(shape + k, sizeof shape - k, "[");
        for (int d = 0; d < v.ndim && k < sizeof shape; d++)
            k += (size_t)snprintf(shape + k, sizeof shape - k, "%s%lld", d ? ", " : "", (long long)v.shape[d]);
        if (k < sizeof shape)
            snprintf(shape + k, sizeof shape - k, "]");
        const char *file = mimo_source_file_of(src, name);
        const char *base = file ? strrchr(file, '/') : NULL;
        printf("  %-64s %-8s %-16s %12zu  %s\n", name, mimo_dtype_name(v.dtype), shape, v.nbytes,
               base ? base + 1 : "");
    }
}

static const char *human(double v, char *buf, size_t n) { return mimo_format_si(v, false, buf, n); }
static const char *human_bytes(double v, char *buf, size_t n) { return mimo_format_si(v, true, buf, n); }

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* What generate and run would refuse when attaching the drafter to this target. */
static bool drafter_fits(const mimo_drafter_config *d, const mimo_config *cfg, const char *path)
{
    bool ok = true;
    if (d->hidden_size != cfg->hidden_size) {
        printf("drafter: PROBLEM: %s: hidden_size %d != target hidden_size %d\n", path, d->hidden_size, cfg->hidden_size);
        ok = false;
    }
    if (d->mask_token_id >= cfg->vocab_size) {
        printf("drafter: PROBLEM: %s: mask_token_id %d is outside the target vocabulary [0, %d)\n", path,
               d->mask_token_id, cfg->vocab_size);
        ok = false;
    }
    for (int i = 0; i < d->n_target_layers; i++)
        if (d->target_layer_ids[i] >= cfg->num_layers) {
            printf("drafter: PROBLEM: %s: target_layer_ids[%d] = %d, the target has %d layers\n", path, i,
                   d->target_layer_ids[i], cfg->num_layers);
            ok = false;
        }
    return ok;
}

int mimo_cmd_inspect(int argc, char **argv)
{
    const char *dir = NULL;
    bool summary = false, strict = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: %s\n", usage);
            return MIMO_EXIT_OK;
        } else if (!strcmp(argv[i], "--summary")) {
            summary = true;
        } else if (!strcmp(argv[i], "--strict")) {
            strict = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return mimo_usage_error("inspect", usage, "unknown flag '%s'", argv[i]);
        } else if (!dir) {
            dir = argv[i];
        } else {
            return mimo_usage_error("inspect", usage, "unexpected argument '%s'", argv[i]);
        }
    }
    if (!dir)
        return mimo_usage_error("inspect", usage, "a checkpoint directory is required");

    mimo_error err = {{0}};
    char path[4096];
    mimo_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (mimo_config_load(path, &cfg, &err)) {
        fprintf(stderr, "mimo-bench inspect: %s\n", err.msg);
        return MIMO_EXIT_BAD_INPUT;
    }
    mimo_tensor_source *src;
    if (mimo_source_open_dir(dir, &src, &err)) {
        fprintf(stderr, "mimo-bench inspect: %s\n", err.msg);
        return MIMO_EXIT_BAD_INPUT;
    }
    if (mimo_config_apply_source_layout(&cfg, src, &err)) {
        fprintf(stderr, "mimo-bench inspect: %s\n", err.msg);
        mimo_source_free(src);
        return MIMO_EXIT_BAD_INPUT;
    }
    printf("checkpoint %s: %d tensors, model_type %s, %d layers, hidden %d, vocab %d, %d experts top-%d\n", dir,
           mimo_source_count(src), cfg.model_type, cfg.num_layers, cfg.hidden_size, cfg.vocab_size,
           cfg.n_routed_experts, cfg.experts_per_tok);
    if (!summary)
        print_listing(src);

    printf("checks:\n");
    checker c = {.src = src, .used = calloc((size_t)mimo_source_count(src) + 1, sizeof(bool))};
    check_model(&c, &cfg);
    int unknown = 0;
    for (int i = 0; i < mimo_source_count(src); i++)
        if (!c.used[i]) {
            if (unknown < 50)
                printf("  %s: unknown tensor '%s'\n", strict ? "PROBLEM" : "warning", mimo_source_name_at(src, i));
            unknown++;
        }
    if (unknown > 50)
        printf("  ... %d unknown tensors in all\n", unknown);
    bool bad = c.missing || c.misshaped || (strict && unknown);
    if (!bad) {
        /* the checks above mirror the binder; binding too makes sure nothing slipped between them */
        mimo_weights w;
        if (mimo_weights_bind(&cfg, src, &w, NULL, NULL, &err)) {
            printf("  PROBLEM: %s\n", err.msg);
            bad = true;
        } else {
            printf("  target: all %s tensors present and well-shaped (%d unknown)\n", cfg.model_type, unknown);
            mimo_weights_free(&w);
        }
    }
    printf("  missing: %d, mis-shaped: %d, unknown: %d\n", c.missing, c.misshaped, unknown);

    mimo_param_counts n;
    mimo_config_count(&cfg, &n);
    char h[10][32];
    printf("parameters: total %s, active %s (embed %s, lm_head %s, attention %s, dense mlp %s, router %s, "
           "experts %s, norms %s)\n",
           human((double)n.total, h[0], 32), human((double)n.active, h[1], 32), human((double)n.embed, h[2], 32),
           human((double)n.lm_head, h[3], 32), human((double)n.attention, h[4], 32),
           human((double)n.dense_mlp, h[5], 32), human((double)n.router, h[6], 32), human((double)n.experts, h[7], 32),
           human((double)n.norms, h[8], 32));
    printf("qkv layout: %s", cfg.qkv_interleaved ? "tp_interleaved" : "plain");
    if (cfg.qkv_interleaved)
        printf(" (%d groups)", cfg.qkv_groups);
    printf("\n");
    printf("storage (config): embed %s, lm_head %s, qkv %s, o_proj %s, dense %s, experts %s, router %s, norms %s\n",
           mimo_weight_format_name(cfg.storage.embed), mimo_weight_format_name(cfg.storage.lm_head),
           mimo_weight_format_name(cfg.storage.qkv), mimo_weight_format_name(cfg.storage.o_proj),
           mimo_weight_format_name(cfg.storage.dense_mlp), mimo_weight_format_name(cfg.storage.experts),
           mimo_weight_format_name(cfg.storage.router), mimo_weight_format_name(cfg.storage.norms));
    printf("bytes (config storage): %s in all, %s touched per token (whole embedding counted)\n",
           human_bytes((double)n.bytes_total, h[0], 32), human_bytes((double)n.bytes_active, h[1], 32));
    printf("matrices found per format:");
    for (int f = 0; f < MIMO_WFMT_COUNT; f++)
        printf(" %s %llu (%s)", mimo_weight_format_name((mimo_weight_format)f),
               (unsigned long long)c.matrices_by_format[f], human_bytes((double)c.bytes_by_format[f], h[0], 32));
    printf("\n");

    snprintf(path, sizeof path, "%s/drafter", dir);
    if (is_dir(path)) {
        mimo_drafter_config dcfg;
        mimo_tensor_source *dsrc = NULL;
        char dpath[4200];
        snprintf(dpath, sizeof dpath, "%s/config.json", path);
        mimo_drafter_weights dw;
        if (mimo_drafter_config_load(dpath, &dcfg, &err) || mimo_source_open_dir(path, &dsrc, &err) ||
            mimo_drafter_bind(&dcfg, dsrc, &dw, &err)) {
            printf("drafter: PROBLEM: %s\n", err.msg);
            bad = true;
        } else if (!drafter_fits(&dcfg, &cfg, dpath)) {
            bad = true;
            mimo_drafter_free(&dw);
        } else {
            printf("drafter: %d layers, block %d, target layers %d, %d tensors: ok\n", dcfg.num_layers,
                   dcfg.block_size, dcfg.n_target_layers, mimo_source_count(dsrc));
            mimo_drafter_free(&dw);
        }
        mimo_source_free(dsrc);
    } else {
        printf("drafter: none (no %s)\n", path);
    }
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    printf("tokenizer: %s\n", is_file(path) ? path : "none");

    free(c.used);
    mimo_source_free(src);
    if (bad) {
        fprintf(stderr, "mimo-bench inspect: %s has problems (see above)\n", dir);
        return MIMO_EXIT_BAD_INPUT;
    }
    return MIMO_EXIT_OK;
}
