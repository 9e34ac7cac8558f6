/* The CPU reference backend: the target's forward pass (MODEL.md) one position at a time, the KV
 * cache, and the DFlash drafter (cpu_drafter.h), wired into a mimo_backend_ops table.
 *
 * A call over n positions runs them strictly in order through the whole layer stack, each one
 * attending to the cache including the earlier positions of the same call. A multi-position call
 * is therefore the same computation, bit for bit, as feeding the positions one at a time. */
#include "mimo/backend.h"
#include "cpu_drafter.h"
#include "cpu_layers.h"
#include "cpu_ops.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const mimo_weights *w;
    const mimo_config *cfg;
    mimo_engine_options opts;
    int n_layers;               /* layers run: all, or the first layers_limit */
    mimo_cpu_kv_cache kv;
    mimo_cpu_scratch scratch;
    float *x;                   /* [hidden] residual stream of the current position */
    float *h;                   /* [hidden] normed input of the current sub-block */
    float *delta;               /* [hidden] output of the current sub-block */
    float *logits;              /* [vocab] when the caller wants argmax but not logits */
    mimo_cpu_drafter *drafter;  /* NULL until attach_drafter */
    mimo_cpu_pool *pool;        /* NULL when n_threads <= 1 */
} cpu_backend;

/* Lowest index of the largest value (the engine's argmax convention). */
static int32_t argmax_lowest(const float *x, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* The residual stream after layer l goes to hidden output slot j when the options ask for it. */
static void emit_hidden(const cpu_backend *b, int layer, int i, int n, float *hidden_out)
{
    const int hidden = b->cfg->hidden_size;
    for (int j = 0; j < b->opts.n_hidden_layers; j++)
        if (b->opts.hidden_layers[j] == layer)
            memcpy(hidden_out + ((size_t)j * n + i) * hidden, b->x, (size_t)hidden * sizeof(float));
}

/* One position through embedding, every layer, final norm and lm_head. */
static void forward_position(cpu_backend *b, int32_t token, int pos, int i, int n, mimo_forward_out *out)
{
    const mimo_config *cfg = b->cfg;
    const mimo_weights *w = b->w;
    const int hidden = cfg->hidden_size;

    mimo_matrix_row_f32(&w->embed, token, b->x);
    for (int l = 0; l < b->n_layers; l++) {
        const mimo_layer_weights *lw = &w->layers[l];
        mimo_cpu_rmsnorm(b->h, b->x, lw->input_norm, hidden, cfg->rms_eps);
        mimo_cpu_attention(cfg, lw, l, &b->kv, pos, b->h, b->delta, &b->scratch);
        mimo_cpu_axpy(b->x, 1.0f, b->delta, hidden);

        mimo_cpu_rmsnorm(b->h, b->x, lw->post_attn_norm, hidden, cfg->rms_eps);
        mimo_cpu_ffn(cfg, lw, b->h, b->delta, &b->scratch);
        mimo_cpu_axpy(b->x, 1.0f, b->delta, hidden);

        if (out->hidden)
            emit_hidden(b, l, i, n, out->hidden);
    }
    b->kv.length = pos + 1;   /* this position's keys and values now belong to the cache */

    if (!out->logits && !out->argmax)
        return;
    float *logits = out->logits ? out->logits + (size_t)i * cfg->vocab_size : b->logits;
    mimo_cpu_rmsnorm(b->h, b->x, w->final_norm, hidden, cfg->rms_eps);
    mimo_cpu_pool_matvec(b->pool, &w->lm_head, b->h, logits);
    if (out->argmax)
        out->argmax[i] = argmax_lowest(logits, cfg->vocab_size);
}

static int cpu_forward(void *impl, const int32_t *tokens, int n, mimo_forward_out *out, mimo_error *err)
{
    cpu_backend *b = impl;
    mimo_forward_out none = { 0 };
    if (!out)
        out = &none;
    if (n < 1 || b->kv.length + n > b->kv.max_ctx)
        return mimo_fail(err, "cpu: forward of %d positions at length %d exceeds max_context %d",
                         n, b->kv.length, b->kv.max_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= b->cfg->vocab_size)
            return mimo_fail(err, "cpu: token id %d out of range [0, %d)", tokens[i], b->cfg->vocab_size);
    /* Hidden outputs of layers beyond a layers_limit replay are never computed: zero, not stale. */
    if (out->hidden && b->n_layers < b->cfg->num_layers)
        memset(out->hidden, 0, (size_t)b->opts.n_hidden_layers * n * b->cfg->hidden_size * sizeof(float));
    int start = b->kv.length;
    for (int i = 0; i < n; i++)
        forward_position(b, tokens[i], start + i, i, n, out);
    return 0;
}

static int cpu_truncate(void *impl, int length, mimo_error *err)
{
    cpu_backend *b = impl;
    if (length < 0 || length > b->kv.length)
        return mimo_fail(err, "cpu: cannot truncate to %d (length %d)", length, b->kv.length);
    mimo_cpu_kv_truncate(&b->kv, length);
    return 0;
}

static int cpu_length(const void *impl) { return ((const cpu_backend *)impl)->kv.length; }

static int cpu_sync(void *impl, mimo_error *err) { return 0; }

static void cpu_destroy(void *impl)
{
    cpu_backend *b = impl;
    if (!b)
        return;
    if (b->drafter)
        mimo_cpu_drafter_destroy(b->drafter);
    mimo_cpu_pool_destroy(b->pool);
    mimo_cpu_kv_free(&b->kv);
    mimo_cpu_scratch_free(&b->scratch);
    free(b->x);
    free(b->h);
    free(b->delta);
    free(b->logits);
    free(b);
}

/* ---- the DFlash drafter: cpu_drafter.c does the work ---- */

static int cpu_attach_drafter(void *impl, const mimo_drafter_weights *d, mimo_error *err)
{
    cpu_backend *b = impl;
    mimo_cpu_drafter *drafter = NULL;
    if (mimo_cpu_drafter_create(b->w, d, b->opts.max_context, &drafter, err))
        return -1;
    if (b->drafter)
        mimo_cpu_drafter_destroy(b->drafter);
    b->drafter = drafter;
    return 0;
}

static int cpu_drafter_append(void *impl, const float *target_hidden, int n, mimo_error *err)
{
    cpu_backend *b = impl;
    if (!b->drafter)
        return mimo_fail(err, "cpu: no drafter attached");
    return mimo_cpu_drafter_append(b->drafter, target_hidden, n, err);
}

static int cpu_drafter_truncate(void *impl, int n_context, mimo_error *err)
{
    cpu_backend *b = impl;
    if (!b->drafter)
        return mimo_fail(err, "cpu: no drafter attached");
    return mimo_cpu_drafter_truncate(b->drafter, n_context, err);
}

static int cpu_drafter_length(const void *impl)
{
    const cpu_backend *b = impl;
    return b->drafter ? mimo_cpu_drafter_length(b->drafter) : 0;
}

static int cpu_draft(void *impl, const int32_t *block, int B, mimo_forward_out *out, mimo_error *err)
{
    cpu_backend *b = impl;
    if (!b->drafter)
        return mimo_fail(err, "cpu: no drafter attached");
    return mimo_cpu_drafter_draft(b->drafter, block, B, out, err);
}

static const mimo_backend_ops cpu_ops = {
    .name = "cpu",
    .forward = cpu_forward,
    .truncate = cpu_truncate,
    .length = cpu_length,
    .sync = cpu_sync,
    .destroy = cpu_destroy,
    .attach_drafter = cpu_attach_drafter,
    .drafter_append = cpu_drafter_append,
    .drafter_truncate = cpu_drafter_truncate,
    .drafter_length = cpu_drafter_length,
    .draft = cpu_draft,
};

int mimo_cpu_backend_create(const mimo_weights *w, const mimo_engine_options *o,
                            const mimo_backend_ops **ops, void **impl, mimo_error *err)
{
    *ops = NULL;
    *impl = NULL;
    const mimo_config *cfg = &w->cfg;
    if (o->max_context < 1)
        return mimo_fail(err, "cpu: max_context must be >= 1 (got %d)", o->max_context);
    if (o->layers_limit < 0 || o->layers_limit > cfg->num_layers)
        return mimo_fail(err, "cpu: layers_limit %d out of range [0, %d]", o->layers_limit, cfg->num_layers);
    if (o->n_hidden_layers < 0 || o->n_hidden_layers > MIMO_MAX_HIDDEN_OUTPUTS)
        return mimo_fail(err, "cpu: at most %d hidden-state outputs (asked for %d)", MIMO_MAX_HIDDEN_OUTPUTS,
                         o->n_hidden_layers);
    for (int j = 0; j < o->n_hidden_layers; j++)
        if (o->hidden_layers[j] < 0 || o->hidden_layers[j] >= cfg->num_layers)
            return mimo_fail(err, "cpu: hidden-state layer %d out of range [0, %d)", o->hidden_layers[j],
                             cfg->num_layers);
    for (int l = 0; l < cfg->num_layers; l++) {
        const mimo_attn_shape *a = mimo_layer_attn(cfg, l);
        if (a->n_kv_heads < 1 || a->n_heads % a->n_kv_heads != 0)
            return mimo_fail(err, "cpu: layer %d: %d q heads not a multiple of %d kv heads", l, a->n_heads,
                             a->n_kv_heads);
        if (a->rope_dim < 0 || a->rope_dim > a->head_dim || a->rope_dim % 2 != 0)
            return mimo_fail(err, "cpu: layer %d: rope_dim %d must be even and <= head_dim %d", l, a->rope_dim,
                             a->head_dim);
    }

    cpu_backend *b = mimo_xcalloc(1, sizeof *b);
    b->w = w;
    b->cfg = cfg;
    b->opts = *o;
    b->n_layers = o->layers_limit > 0 ? o->layers_limit : cfg->num_layers;
    mimo_cpu_kv_init(&b->kv, cfg, b->n_layers, o->max_context);
    mimo_cpu_scratch_init(&b->scratch, w, b->n_layers, o->max_context);
    b->pool = mimo_cpu_pool_create(o->n_threads);
    b->scratch.pool = b->pool;
    b->x = mimo_xmalloc((size_t)cfg->hidden_size * sizeof(float));
    b->h = mimo_xmalloc((size_t)cfg->hidden_size * sizeof(float));
    b->delta = mimo_xmalloc((size_t)cfg->hidden_size * sizeof(float));
    b->logits = mimo_xmalloc((size_t)cfg->vocab_size * sizeof(float));
    *ops = &cpu_ops;
    *impl = b;
    return 0;
}
