/* Binds a drafter's tensors by name (DFLASH.md; no "model." prefix, though one is accepted) and
 * checks every shape against the drafter config. Matrices keep their storage (f32 or bf16) and
 * alias the source; vectors (norms, sinks, mask embedding) are converted to f32 and owned. */
#include "mimo/dflash.h"
#include "mimo/formats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything bind allocates, freed by mimo_drafter_free. */
typedef struct {
    void **blocks;
    int n, cap;
} owned_list;

static void *own(owned_list *o, size_t bytes)
{
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 32;
        o->blocks = mimo_xrealloc(o->blocks, (size_t)o->cap * sizeof *o->blocks);
    }
    void *p = mimo_xcalloc(1, bytes);
    o->blocks[o->n++] = p;
    return p;
}

/* Finds name or "model." + name. */
static int lookup(mimo_tensor_source *src, const char *name, mimo_tensor_view *v, mimo_error *err)
{
    char prefixed[200];
    snprintf(prefixed, sizeof prefixed, "model.%s", name);
    if (!mimo_source_has(src, name) && mimo_source_has(src, prefixed))
        return mimo_source_get(src, prefixed, v, err);
    return mimo_source_get(src, name, v, err);
}

static const char *where(mimo_tensor_source *src, const char *name)
{
    const char *f = mimo_source_file_of(src, name);
    return f ? f : "drafter";
}

static int bind_matrix(mimo_tensor_source *src, const char *name, int64_t rows, int64_t cols, mimo_matrix *m, mimo_error *err)
{
    mimo_tensor_view v;
    if (lookup(src, name, &v, err))
        return mimo_fail_prefix(err, "drafter");
    if (v.ndim != 2 || v.shape[0] != rows || v.shape[1] != cols)
        return mimo_fail(err, "%s: drafter tensor '%s' has shape [%lld%s%lld], expected [%lld, %lld]", where(src, name), name,
                         (long long)v.shape[0], v.ndim == 2 ? ", " : " ndim ", (long long)(v.ndim == 2 ? v.shape[1] : v.ndim),
                         (long long)rows, (long long)cols);
    memset(m, 0, sizeof *m);
    if (v.dtype == MIMO_DTYPE_F32)
        m->format = MIMO_WFMT_F32;
    else if (v.dtype == MIMO_DTYPE_BF16)
        m->format = MIMO_WFMT_BF16;
    else
        return mimo_fail(err, "%s: drafter tensor '%s' has dtype %s; the drafter takes F32 or BF16", where(src, name), name,
                         mimo_dtype_name(v.dtype));
    if (v.nbytes != (size_t)(rows * cols) * mimo_dtype_size(v.dtype))
        return mimo_fail(err, "%s: drafter tensor '%s' holds %zu bytes, expected %lld", where(src, name), name, v.nbytes,
                         (long long)(rows * cols * (int64_t)mimo_dtype_size(v.dtype)));
    m->rows = rows;
    m->cols = cols;
    m->data = v.data;
    return 0;
}

/* A vector of n floats; [n] or [1, n] accepted. */
static int bind_vector(mimo_tensor_source *src, owned_list *o, const char *name, int64_t n, const float **out, mimo_error *err)
{
    mimo_tensor_view v;
    if (lookup(src, name, &v, err))
        return mimo_fail_prefix(err, "drafter");
    int64_t count = 1;
    for (int d = 0; d < v.ndim; d++)
        count *= v.shape[d];
    if (count != n || v.ndim < 1 || v.shape[v.ndim - 1] != n)
        return mimo_fail(err, "%s: drafter tensor '%s' must have %lld elements", where(src, name), name, (long long)n);
    float *f = own(o, (size_t)n * sizeof *f);
    if (v.dtype == MIMO_DTYPE_F32 && v.nbytes == (size_t)n * 4) {
        memcpy(f, v.data, (size_t)n * sizeof *f);
    } else if (v.dtype == MIMO_DTYPE_BF16 && v.nbytes == (size_t)n * 2) {
        const uint16_t *b = v.data;
        for (int64_t i = 0; i < n; i++)
            f[i] = mimo_bf16_to_f32(b[i]);
    } else {
        return mimo_fail(err, "%s: drafter tensor '%s' has dtype %s; vectors take F32 or BF16", where(src, name), name,
                         mimo_dtype_name(v.dtype));
    }
    *out = f;
    return 0;
}

static bool has(mimo_tensor_source *src, const char *name)
{
    char prefixed[200];
    snprintf(prefixed, sizeof prefixed, "model.%s", name);
    return mimo_source_has(src, name) || mimo_source_has(src, prefixed);
}

int mimo_drafter_bind(const mimo_drafter_config *cfg, mimo_tensor_source *src, mimo_drafter_weights *w, mimo_error *err)
{
    memset(w, 0, sizeof *w);
    w->cfg = *cfg;
    owned_list *o = mimo_xcalloc(1, sizeof *o);
    w->owned = o;
    const int64_t H = cfg->hidden_size, D = cfg->head_dim, I = cfg->intermediate_size;
    const int64_t QD = (int64_t)cfg->n_heads * D, KD = (int64_t)cfg->n_kv_heads * D;
    char name[160];

    if (bind_matrix(src, "fc.weight", H, (int64_t)cfg->n_target_layers * H, &w->fc, err) ||
        bind_vector(src, o, "hidden_norm.weight", H, &w->hidden_norm, err) ||
        bind_vector(src, o, "norm.weight", H, &w->final_norm, err))
        goto fail;
    if (has(src, "mask_embedding") && bind_vector(src, o, "mask_embedding", H, &w->mask_embedding, err))
        goto fail;
    w->layers = own(o, (size_t)cfg->num_layers * sizeof *w->layers);
    for (int l = 0; l < cfg->num_layers; l++) {
        mimo_drafter_layer *L = &w->layers[l];
#define NAME(suffix) (snprintf(name, sizeof name, "layers.%d.%s", l, suffix), name)
        if (bind_matrix(src, NAME("self_attn.q_proj.weight"), QD, H, &L->q_proj, err) ||
            bind_matrix(src, NAME("self_attn.k_proj.weight"), KD, H, &L->k_proj, err) ||
            bind_matrix(src, NAME("self_attn.v_proj.weight"), KD, H, &L->v_proj, err) ||
            bind_matrix(src, NAME("self_attn.o_proj.weight"), H, QD, &L->o_proj, err) ||
            bind_vector(src, o, NAME("self_attn.q_norm.weight"), D, &L->q_norm, err) ||
            bind_vector(src, o, NAME("self_attn.k_norm.weight"), D, &L->k_norm, err) ||
            bind_matrix(src, NAME("mlp.gate_proj.weight"), I, H, &L->gate, err) ||
            bind_matrix(src, NAME("mlp.up_proj.weight"), I, H, &L->up, err) ||
            bind_matrix(src, NAME("mlp.down_proj.weight"), H, I, &L->down, err) ||
            bind_vector(src, o, NAME("input_layernorm.weight"), H, &L->input_norm, err) ||
            bind_vector(src, o, NAME("post_attention_layernorm.weight"), H, &L->post_attn_norm, err))
            goto fail;
        if (cfg->has_sink) {
            if (bind_vector(src, o, NAME("self_attn.attention_sink_bias"), cfg->n_heads, &L->sink, err))
                goto fail;
        } else if (has(src, NAME("self_attn.attention_sink_bias"))) {
            mimo_fail(err, "drafter: tensor '%s' present but the config enables no sink bias", name);
            goto fail;
        }
#undef NAME
    }
    return 0;
fail:
    mimo_drafter_free(w);
    return -1;
}

void mimo_drafter_free(mimo_drafter_weights *w)
{
    owned_list *o = w->owned;
    if (o) {
        for (int i = 0; i < o->n; i++)
            free(o->blocks[i]);
        free(o->blocks);
        free(o);
    }
    memset(w, 0, sizeof *w);
}
