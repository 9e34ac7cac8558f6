/* Binds the target's tensors (MODEL.md "Tensor names") from a tensor source and checks them
 * against the config. Matrices alias the source; what has to be converted lives in w->owned:
 *  - norm / sink / router-bias vectors, converted to f32;
 *  - the fused qkv built from separate q/k/v_proj (transformers spelling): rows concatenate for
 *    f32 / bf16 / mxfp4; for FP8 the scale rows concatenate too when q's and k's row counts are
 *    multiples of 128 (block boundaries line up), otherwise the three parts are dequantized to f32
 *    (exact values, wider storage); mixed formats across q/k/v also go to f32;
 *  - the interleaved-qkv row map and the expert matrix arrays.
 * Names are looked up with the "model." prefix first, then without (lm_head: the reverse). */
#include "mimo/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/formats.h"

void mimo_tensor_name_layer(char *buf, size_t n, int layer, const char *suffix)
{
    snprintf(buf, n, "model.layers.%d.%s", layer, suffix);
}

void mimo_tensor_name_expert(char *buf, size_t n, int layer, int expert, const char *proj)
{
    snprintf(buf, n, "model.layers.%d.mlp.experts.%d.%s_proj.weight", layer, expert, proj);
}

/* ---- owned allocations ---- */

typedef struct {
    void **ptrs;
    size_t n, cap;
} owned_list;

static void *own(mimo_weights *w, void *p)
{
    owned_list *o = w->owned;
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 64;
        o->ptrs = mimo_xrealloc(o->ptrs, o->cap * sizeof *o->ptrs);
    }
    o->ptrs[o->n++] = p;
    return p;
}

void mimo_weights_free(mimo_weights *w)
{
    if (!w)
        return;
    owned_list *o = w->owned;
    if (o) {
        for (size_t i = 0; i < o->n; i++)
            free(o->ptrs[i]);
        free(o->ptrs);
        free(o);
    }
    memset(w, 0, sizeof *w);
}

/* ---- binding context ---- */

typedef struct {
    const mimo_config  *cfg;
    mimo_tensor_source *src;
    mimo_weights       *w;
    mimo_error         *err;
    char              **used;   /* names bound (strdup'd), for the unknown-tensor report */
    int                 n_used, cap_used;
    bool                norms_seen;
} bind_ctx;

static void mark_used(bind_ctx *b, const char *name)
{
    if (b->n_used == b->cap_used) {
        b->cap_used = b->cap_used ? 2 * b->cap_used : 256;
        b->used = mimo_xrealloc(b->used, (size_t)b->cap_used * sizeof *b->used);
    }
    b->used[b->n_used++] = mimo_xstrdup(name);
}

/* Resolves a canonical name to the spelling present in the source; NULL when absent. */
static const char *resolve(bind_ctx *b, const char *canonical, char *buf, size_t n)
{
    if (mimo_source_has(b->src, canonical)) {
        snprintf(buf, n, "%s", canonical);
        return buf;
    }
    if (!strncmp(canonical, "model.", 6)) {
        if (mimo_source_has(b->src, canonical + 6)) {
            snprintf(buf, n, "%s", canonical + 6);
            return buf;
        }
    } else {
        snprintf(buf, n, "model.%s", canonical);
        if (mimo_source_has(b->src, buf))
            return buf;
    }
    return NULL;
}

static const char *where(bind_ctx *b, const char *name)
{
    const char *f = mimo_source_file_of(b->src, name);
    return f ? f : (mimo_source_dir(b->src) ? mimo_source_dir(b->src) : "(memory)");
}

static int fail_missing(bind_ctx *b, const char *canonical)
{
    const char *dir = mimo_source_dir(b->src);
    return mimo_fail(b->err, "missing tensor '%s' in %s", canonical, dir ? dir : "(memory)");
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

/* Gets a tensor and checks its shape (ndim 1 or 2) and byte size. */
static int get_checked(bind_ctx *b, const char *name, int ndim, int64_t d0, int64_t d1, mimo_tensor_view *v)
{
    if (mimo_source_get(b->src, name, v, b->err))
        return -1;
    int64_t want[2] = {d0, d1};
    bool ok = v->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++)
        ok = v->shape[d] == want[d];
    if (!ok) {
        char got[128], exp[128];
        shape_str(got, sizeof got, v->ndim, v->shape);
        shape_str(exp, sizeof exp, ndim, want);
        return mimo_fail(b->err, "tensor '%s' in %s has shape %s, expected %s", name, where(b, name), got, exp);
    }
    uint64_t elems = 1;
    for (int d = 0; d < ndim; d++)
        elems *= (uint64_t)want[d];
    if ((uint64_t)v->nbytes != elems * mimo_dtype_size(v->dtype))
        return mimo_fail(b->err, "tensor '%s' in %s holds %zu bytes, its shape needs %llu", name, where(b, name),
                         v->nbytes, (unsigned long long)(elems * mimo_dtype_size(v->dtype)));
    mark_used(b, name);
    return 0;
}

/* ---- vectors -> f32 ---- */

static int bind_vector(bind_ctx *b, const char *canonical, int64_t n, const float **out)
{
    char buf[256];
    const char *name = resolve(b, canonical, buf, sizeof buf);
    if (!name)
        return fail_missing(b, canonical);
    mimo_tensor_view v;
    if (get_checked(b, name, 1, n, 0, &v))
        return -1;
    float *f = own(b->w, mimo_xmalloc((size_t)n * sizeof(float)));
    switch (v.dtype) {
    case MIMO_DTYPE_F32:
        memcpy(f, v.data, (size_t)n * sizeof(float));
        break;
    case MIMO_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            f[i] = mimo_bf16_to_f32(((const uint16_t *)v.data)[i]);
        break;
    default:
        return mimo_fail(b->err, "tensor '%s' in %s has dtype %s, expected F32 or BF16", name, where(b, name),
                         mimo_dtype_name(v.dtype));
    }
    if (strstr(name, "layernorm") || strstr(name, "norm.weight")) {
        if (!b->norms_seen)
            b->w->storage.norms = v.dtype == MIMO_DTYPE_BF16 ? MIMO_WFMT_BF16 : MIMO_WFMT_F32;
        b->norms_seen = true;
    }
    *out = f;
    return 0;
}

/* ---- matrices ---- */

static void scale_tensor_name(char *out, size_t n, const char *weight_name, const char *suffix)
{
    snprintf(out, n, "%s%s", weight_name, suffix);
}

/* Binds "X.weight" [rows, cols] in whatever format its dtype says. scale_rows_override > 0 gives the
 * expected FP8 scale rows (interleaved qkv). */
static int bind_matrix_named(bind_ctx *b, const char *name, int64_t rows, int64_t cols, int64_t scale_rows_override,
                             mimo_matrix *m)
{
    mimo_tensor_view v, s;
    char sname[300];
    if (mimo_source_get(b->src, name, &v, b->err))
        return -1;
    memset(m, 0, sizeof *m);
    m->rows = rows;
    m->cols = cols;
    switch (v.dtype) {
    case MIMO_DTYPE_F32:
    case MIMO_DTYPE_BF16:
        if (get_checked(b, name, 2, rows, cols, &v))
            return -1;
        m->format = v.dtype == MIMO_DTYPE_F32 ? MIMO_WFMT_F32 : MIMO_WFMT_BF16;
        m->data = v.data;
        return 0;
    case MIMO_DTYPE_F8_E4M3: {
        if (get_checked(b, name, 2, rows, cols, &v))
            return -1;
        scale_tensor_name(sname, sizeof sname, name, "_scale_inv");
        if (!mimo_source_has(b->src, sname))
            return fail_missing(b, sname);
        int64_t sr = scale_rows_override > 0 ? scale_rows_override : (rows + 127) / 128;
        if (get_checked(b, sname, 2, sr, (cols + 127) / 128, &s))
            return -1;
        if (s.dtype != MIMO_DTYPE_F32)
            return mimo_fail(b->err, "tensor '%s' in %s has dtype %s, expected F32", sname, where(b, sname),
                             mimo_dtype_name(s.dtype));
        m->format = MIMO_WFMT_FP8;
        m->data = v.data;
        m->scales = s.data;
        return 0;
    }
    case MIMO_DTYPE_U8: {
        if (cols % 32)
            return mimo_fail(b->err, "tensor '%s' in %s: MXFP4 needs an input dim multiple of 32 (got %lld)", name,
                             where(b, name), (long long)cols);
        if (get_checked(b, name, 2, rows, cols / 2, &v))
            return -1;
        scale_tensor_name(sname, sizeof sname, name, "_scale");
        if (!mimo_source_has(b->src, sname))
            return fail_missing(b, sname);
        if (get_checked(b, sname, 2, rows, cols / 32, &s))
            return -1;
        if (s.dtype != MIMO_DTYPE_U8)
            return mimo_fail(b->err, "tensor '%s' in %s has dtype %s, expected U8 (UE8M0)", sname, where(b, sname),
                             mimo_dtype_name(s.dtype));
        m->format = MIMO_WFMT_MXFP4;
        m->data = v.data;
        m->scales = s.data;
        return 0;
    }
    default:
        return mimo_fail(b->err, "tensor '%s' in %s has dtype %s: matrices must be F32, BF16, F8_E4M3 or U8 (MXFP4)",
                         name, where(b, name), mimo_dtype_name(v.dtype));
    }
}

static int bind_matrix(bind_ctx *b, const char *canonical, int64_t rows, int64_t cols, mimo_matrix *m)
{
    char buf[256];
    const char *name = resolve(b, canonical, buf, sizeof buf);
    if (!name)
        return fail_missing(b, canonical);
    return bind_matrix_named(b, name, rows, cols, 0, m);
}

/* Separate q/k/v_proj -> one fused plain matrix in owned memory (see the top of the file). */
static int fuse_qkv(bind_ctx *b, const mimo_matrix part[3], mimo_matrix *out)
{
    const int64_t cols = part[0].cols;
    const int64_t rows = part[0].rows + part[1].rows + part[2].rows;
    bool same = part[0].format == part[1].format && part[1].format == part[2].format;
    mimo_weight_format f = part[0].format;
    if (same && f == MIMO_WFMT_FP8 && (part[0].rows % 128 || part[1].rows % 128))
        same = false;   /* scale blocks would straddle the seams */
    memset(out, 0, sizeof *out);
    out->rows = rows;
    out->cols = cols;
    if (!same) {
        float *d = own(b->w, mimo_xmalloc((size_t)(rows * cols) * sizeof(float)));
        int64_t r0 = 0;
        for (int p = 0; p < 3; r0 += part[p].rows, p++)
            for (int64_t r = 0; r < part[p].rows; r++)
                mimo_matrix_row_f32(&part[p], r, d + (r0 + r) * cols);
        out->format = MIMO_WFMT_F32;
        out->data = d;
        return 0;
    }
    out->format = f;
    size_t row_bytes = f == MIMO_WFMT_F32 ? (size_t)cols * 4 : f == MIMO_WFMT_BF16 ? (size_t)cols * 2
                     : f == MIMO_WFMT_FP8 ? (size_t)cols : (size_t)cols / 2;
    uint8_t *d = own(b->w, mimo_xmalloc((size_t)rows * row_bytes));
    size_t off = 0;
    for (int p = 0; p < 3; p++) {
        memcpy(d + off, part[p].data, (size_t)part[p].rows * row_bytes);
        off += (size_t)part[p].rows * row_bytes;
    }
    out->data = d;
    if (f == MIMO_WFMT_FP8 || f == MIMO_WFMT_MXFP4) {
        size_t srow_bytes = f == MIMO_WFMT_FP8 ? (size_t)((cols + 127) / 128) * 4 : (size_t)cols / 32;
        int64_t srows[3];
        for (int p = 0; p < 3; p++)
            srows[p] = f == MIMO_WFMT_FP8 ? (part[p].rows + 127) / 128 : part[p].rows;
        uint8_t *s = own(b->w, mimo_xmalloc((size_t)(srows[0] + srows[1] + srows[2]) * srow_bytes));
        off = 0;
        for (int p = 0; p < 3; p++) {
            memcpy(s + off, part[p].scales, (size_t)srows[p] * srow_bytes);
            off += (size_t)srows[p] * srow_bytes;
        }
        out->scales = s;
    }
    return 0;
}

static int bind_qkv(bind_ctx *b, int l, mimo_layer_weights *lw)
{
    const mimo_config *c = b->cfg;
    const mimo_attn_shape *a = mimo_layer_attn(c, l);
    const int64_t H = c->hidden_size, rows = mimo_qkv_rows(c, l);
    char canon[256], buf[256];
    mimo_tensor_name_layer(canon, sizeof canon, l, "self_attn.qkv_proj.weight");
    const char *fused = resolve(b, canon, buf, sizeof buf);
    if (fused) {
        bool interleaved = c->qkv_interleaved && c->qkv_groups > 1;
        if (bind_matrix_named(b, fused, rows, H, interleaved ? mimo_qkv_scale_rows(c, l) : 0, &lw->qkv))
            return -1;
        if (interleaved) {
            int32_t *map = own(b->w, mimo_xmalloc((size_t)rows * sizeof *map));
            mimo_qkv_interleave_map(c, l, map);
            lw->qkv_row_of_plain = map;
            if (lw->qkv.format == MIMO_WFMT_FP8)
                lw->qkv.scale_group_rows = rows / c->qkv_groups;
        }
        return 0;
    }
    static const char *const parts[3] = {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"};
    const int64_t prow[3] = {(int64_t)a->n_heads * a->head_dim, (int64_t)a->n_kv_heads * a->head_dim,
                             (int64_t)a->n_kv_heads * a->v_head_dim};
    mimo_tensor_name_layer(buf, sizeof buf, l, parts[0]);
    char buf2[256];
    if (!resolve(b, buf, buf2, sizeof buf2))
        return mimo_fail(b->err, "missing tensor '%s' (or separate self_attn.q_proj/k_proj/v_proj) in %s", canon,
                         mimo_source_dir(b->src) ? mimo_source_dir(b->src) : "(memory)");
    if (c->qkv_interleaved && c->qkv_groups > 1)
        return mimo_fail(b->err, "layer %d: separate q/k/v_proj tensors but the config says qkv_layout tp_interleaved", l);
    mimo_matrix pm[3];
    for (int p = 0; p < 3; p++) {
        mimo_tensor_name_layer(canon, sizeof canon, l, parts[p]);
        if (bind_matrix(b, canon, prow[p], H, &pm[p]))
            return -1;
    }
    return fuse_qkv(b, pm, &lw->qkv);
}

static int bind_expert_set(bind_ctx *b, int l, const char *kind, int idx, bool indexed, mimo_matrix *g, mimo_matrix *u,
                           mimo_matrix *d)
{
    const int64_t H = b->cfg->hidden_size, I = b->cfg->moe_intermediate_size;
    char suffix[128], canon[256];
    mimo_matrix *out[3] = {g, u, d};
    static const char *const proj[3] = {"gate", "up", "down"};
    for (int p = 0; p < 3; p++) {
        if (indexed)
            snprintf(suffix, sizeof suffix, "mlp.%s.%d.%s_proj.weight", kind, idx, proj[p]);
        else
            snprintf(suffix, sizeof suffix, "mlp.%s.%s_proj.weight", kind, proj[p]);
        mimo_tensor_name_layer(canon, sizeof canon, l, suffix);
        if (bind_matrix(b, canon, p == 2 ? H : I, p == 2 ? I : H, out[p]))
            return -1;
    }
    return 0;
}

static int bind_layer(bind_ctx *b, int l)
{
    const mimo_config *c = b->cfg;
    mimo_layer_weights *lw = &b->w->layers[l];
    const mimo_attn_shape *a = mimo_layer_attn(c, l);
    const int64_t H = c->hidden_size;
    char canon[256];
    lw->is_swa = c->layer_is_swa[l];
    lw->is_moe = c->layer_is_moe[l];

    mimo_tensor_name_layer(canon, sizeof canon, l, "input_layernorm.weight");
    if (bind_vector(b, canon, H, &lw->input_norm))
        return -1;
    mimo_tensor_name_layer(canon, sizeof canon, l, "post_attention_layernorm.weight");
    if (bind_vector(b, canon, H, &lw->post_attn_norm))
        return -1;
    if (bind_qkv(b, l, lw))
        return -1;
    mimo_tensor_name_layer(canon, sizeof canon, l, "self_attn.o_proj.weight");
    if (bind_matrix(b, canon, H, (int64_t)a->n_heads * a->v_head_dim, &lw->o_proj))
        return -1;
    if (a->has_sink) {
        mimo_tensor_name_layer(canon, sizeof canon, l, "self_attn.attention_sink_bias");
        if (bind_vector(b, canon, a->n_heads, &lw->sink))
            return -1;
    }
    if (l == 0) {
        b->w->storage.qkv = lw->qkv.format;
        b->w->storage.o_proj = lw->o_proj.format;
    }

    if (!lw->is_moe) {
        const int64_t I = c->intermediate_size;
        mimo_tensor_name_layer(canon, sizeof canon, l, "mlp.gate_proj.weight");
        if (bind_matrix(b, canon, I, H, &lw->gate))
            return -1;
        mimo_tensor_name_layer(canon, sizeof canon, l, "mlp.up_proj.weight");
        if (bind_matrix(b, canon, I, H, &lw->up))
            return -1;
        mimo_tensor_name_layer(canon, sizeof canon, l, "mlp.down_proj.weight");
        if (bind_matrix(b, canon, H, I, &lw->down))
            return -1;
        b->w->storage.dense_mlp = lw->gate.format;
        return 0;
    }
    const int E = c->n_routed_experts;
    mimo_tensor_name_layer(canon, sizeof canon, l, "mlp.gate.weight");
    if (bind_matrix(b, canon, E, H, &lw->router))
        return -1;
    if (lw->router.format != MIMO_WFMT_F32 && lw->router.format != MIMO_WFMT_BF16)
        return mimo_fail(b->err, "tensor '%s' in %s: the router must be F32 or BF16 (got %s)", canon,
                         where(b, canon), mimo_weight_format_name(lw->router.format));
    b->w->storage.router = lw->router.format;
    mimo_tensor_name_layer(canon, sizeof canon, l, "mlp.gate.e_score_correction_bias");
    if (bind_vector(b, canon, E, &lw->router_bias))
        return -1;
    lw->expert_gate = own(b->w, mimo_xcalloc((size_t)E, sizeof(mimo_matrix)));
    lw->expert_up = own(b->w, mimo_xcalloc((size_t)E, sizeof(mimo_matrix)));
    lw->expert_down = own(b->w, mimo_xcalloc((size_t)E, sizeof(mimo_matrix)));
    for (int e = 0; e < E; e++)
        if (bind_expert_set(b, l, "experts", e, true, &lw->expert_gate[e], &lw->expert_up[e], &lw->expert_down[e]))
            return -1;
    b->w->storage.experts = lw->expert_gate[0].format;
    const int S = c->n_shared_experts;
    if (S > 0) {
        lw->shared_gate = own(b->w, mimo_xcalloc((size_t)S, sizeof(mimo_matrix)));
        lw->shared_up = own(b->w, mimo_xcalloc((size_t)S, sizeof(mimo_matrix)));
        lw->shared_down = own(b->w, mimo_xcalloc((size_t)S, sizeof(mimo_matrix)));
        /* per-expert "mlp.shared_experts.E.*"; with one shared expert also DeepSeek's "mlp.shared_experts.*" */
        char probe[256], buf[256];
        mimo_tensor_name_layer(probe, sizeof probe, l, "mlp.shared_experts.gate_proj.weight");
        bool unindexed = S == 1 && resolve(b, probe, buf, sizeof buf);
        for (int e = 0; e < S; e++)
            if (bind_expert_set(b, l, "shared_experts", e, !unindexed, &lw->shared_gate[e], &lw->shared_up[e],
                                &lw->shared_down[e]))
                return -1;
    }
    return 0;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void report_unknown(bind_ctx *b, mimo_warn_fn warn, void *warn_ctx)
{
    if (!warn)
        return;
    qsort(b->used, (size_t)b->n_used, sizeof *b->used, cmp_str);
    int n = mimo_source_count(b->src), j = 0, unknown = 0;
    for (int i = 0; i < n; i++) {
        const char *name = mimo_source_name_at(b->src, i);   /* sorted by name */
        while (j < b->n_used && strcmp(b->used[j], name) < 0)
            j++;
        if (j < b->n_used && !strcmp(b->used[j], name))
            continue;
        unknown++;
        if (unknown <= 20) {
            char msg[512];
            snprintf(msg, sizeof msg, "unknown tensor '%s' in %s (ignored)", name, where(b, name));
            warn(warn_ctx, msg);
        }
    }
    if (unknown > 20) {
        char msg[128];
        snprintf(msg, sizeof msg, "... %d unknown tensors in all (ignored)", unknown);
        warn(warn_ctx, msg);
    }
}

/* The index metadata may name the qkv layout ("qkv_layout": "tp_interleaved", "qkv_groups": "8")
 * when config.json does not: the published MiMo-V2.5-Pro checkpoint is interleaved. */
int mimo_config_apply_source_layout(mimo_config *cfg, mimo_tensor_source *src, mimo_error *err)
{
    const char *layout = mimo_source_metadata(src, "qkv_layout");
    if (!layout || cfg->qkv_interleaved)
        return 0;
    if (!strcmp(layout, "plain"))
        return 0;
    if (strcmp(layout, "tp_interleaved"))
        return mimo_fail(err, "%s: index metadata 'qkv_layout' must be \"plain\" or \"tp_interleaved\"",
                         mimo_source_dir(src) ? mimo_source_dir(src) : "(memory)");
    const char *groups = mimo_source_metadata(src, "qkv_groups");
    cfg->qkv_interleaved = true;
    cfg->qkv_groups = groups ? atoi(groups) : 8;
    if (mimo_config_validate(cfg, err))
        return mimo_fail_prefix(err, "%s: index metadata", mimo_source_dir(src) ? mimo_source_dir(src) : "(memory)");
    return 0;
}

int mimo_weights_bind(const mimo_config *cfg_in, mimo_tensor_source *src, mimo_weights *w, mimo_warn_fn warn,
                      void *warn_ctx, mimo_error *err)
{
    memset(w, 0, sizeof *w);
    if (mimo_config_validate(cfg_in, err))
        return mimo_fail_prefix(err, "config");
    mimo_config effective = *cfg_in;
    if (mimo_config_apply_source_layout(&effective, src, err))
        return -1;
    const mimo_config *cfg = &effective;
    w->cfg = *cfg;
    w->storage = cfg->storage;
    w->owned = mimo_xcalloc(1, sizeof(owned_list));
    w->layers = own(w, mimo_xcalloc((size_t)cfg->num_layers, sizeof *w->layers));
    bind_ctx b = {.cfg = &w->cfg, .src = src, .w = w, .err = err};
    const int64_t V = cfg->vocab_size, H = cfg->hidden_size;
    int rc = -1;

    if (bind_matrix(&b, "model.embed_tokens.weight", V, H, &w->embed))
        goto done;
    w->storage.embed = w->embed.format;
    char buf[256];
    if (cfg->tie_word_embeddings && !resolve(&b, "lm_head.weight", buf, sizeof buf)) {
        w->lm_head = w->embed;
    } else if (bind_matrix(&b, "lm_head.weight", V, H, &w->lm_head)) {
        goto done;
    }
    w->storage.lm_head = w->lm_head.format;
    if (bind_vector(&b, "model.norm.weight", H, &w->final_norm))
        goto done;
    for (int l = 0; l < cfg->num_layers; l++)
        if (bind_layer(&b, l))
            goto done;
    report_unknown(&b, warn, warn_ctx);
    rc = 0;
done:
    for (int i = 0; i < b.n_used; i++)
        free(b.used[i]);
    free(b.used);
    if (rc)
        mimo_weights_free(w);
    return rc;
}
