/* Dispatch from the backend-neutral API to the chosen backend's table. */
#include "mimo/backend.h"
#include "mimo/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mimo_engine {
    const mimo_backend_ops *ops;
    void *impl;
    mimo_config cfg;
    mimo_engine_options opts;
    /* set when the engine built its own synthetic weights (cpu create_synthetic) */
    mimo_tensor_source *own_source;
    mimo_weights *own_weights;
    const mimo_drafter_config *drafter;
    mimo_drafter_config drafter_cfg;
};

const char *mimo_backend_name(mimo_backend_kind k) { return k == MIMO_BACKEND_CUDA ? "cuda" : "cpu"; }

const char *mimo_exec_name(mimo_exec_mode m)
{
    switch (m) {
    case MIMO_EXEC_EAGER: return "eager";
    case MIMO_EXEC_GRAPH: return "graph";
    case MIMO_EXEC_PERSISTENT: return "persistent";
    }
    return "?";
}

void mimo_engine_options_default(mimo_engine_options *o)
{
    memset(o, 0, sizeof *o);
    o->backend = MIMO_BACKEND_CPU;
    o->exec = MIMO_EXEC_EAGER;
    o->max_context = 4096;
    o->shard_rank = 0;
    o->shard_count = 1;
    o->expert_format = MIMO_WFMT_MXFP4;
    o->n_threads = 1;
}

bool mimo_backend_available(mimo_backend_kind k, char *reason, size_t reason_size)
{
    if (k == MIMO_BACKEND_CPU)
        return true;
#ifdef MIMO_HAVE_CUDA
    return mimo_cuda_backend_available(reason, reason_size);
#else
    if (reason)
        snprintf(reason, reason_size, "this build has no CUDA backend (nvcc was not found at configure time)");
    return false;
#endif
}

static int check_options(const mimo_config *cfg, const mimo_engine_options *o, mimo_error *err)
{
    if (o->max_context < 1)
        return mimo_fail(err, "engine: max_context must be >= 1 (got %d)", o->max_context);
    if (o->n_hidden_layers < 0 || o->n_hidden_layers > MIMO_MAX_HIDDEN_OUTPUTS)
        return mimo_fail(err, "engine: at most %d hidden-state outputs", MIMO_MAX_HIDDEN_OUTPUTS);
    for (int i = 0; i < o->n_hidden_layers; i++)
        if (o->hidden_layers[i] < 0 || o->hidden_layers[i] >= cfg->num_layers)
            return mimo_fail(err, "engine: hidden-state layer %d out of range [0, %d)", o->hidden_layers[i], cfg->num_layers);
    if (o->shard_count < 1 || o->shard_rank < 0 || o->shard_rank >= o->shard_count)
        return mimo_fail(err, "engine: bad shard %d/%d", o->shard_rank, o->shard_count);
    if (o->layers_limit < 0 || o->layers_limit > cfg->num_layers)
        return mimo_fail(err, "engine: --layers %d out of range [1, %d]", o->layers_limit, cfg->num_layers);
    if (o->backend == MIMO_BACKEND_CPU) {
        if (o->exec != MIMO_EXEC_EAGER)
            return mimo_fail(err, "engine: the cpu backend runs eager only (asked for --exec %s)", mimo_exec_name(o->exec));
        if (o->shard_count != 1)
            return mimo_fail(err, "engine: shard replay (--shard) needs the cuda backend");
    }
    return 0;
}

static mimo_engine *wrap(const mimo_config *cfg, const mimo_engine_options *o, const mimo_backend_ops *ops, void *impl)
{
    mimo_engine *e = mimo_xcalloc(1, sizeof *e);
    e->ops = ops;
    e->impl = impl;
    e->cfg = *cfg;
    e->opts = *o;
    return e;
}

int mimo_engine_create(const mimo_weights *w, const mimo_engine_options *o, mimo_engine **out, mimo_error *err)
{
    const mimo_backend_ops *ops = NULL;
    void *impl = NULL;
    *out = NULL;
    if (check_options(&w->cfg, o, err))
        return -1;
    if (o->backend == MIMO_BACKEND_CUDA) {
#ifdef MIMO_HAVE_CUDA
        if (mimo_cuda_backend_create(w, o, &ops, &impl, err))
            return -1;
#else
        return mimo_fail(err, "engine: this build has no CUDA backend (nvcc was not found at configure time)");
#endif
    } else if (mimo_cpu_backend_create(w, o, &ops, &impl, err)) {
        return -1;
    }
    *out = wrap(&w->cfg, o, ops, impl);
    return 0;
}

int mimo_engine_create_synthetic(const mimo_config *cfg, uint64_t seed, const mimo_engine_options *o,
                                 mimo_engine **out, mimo_error *err)
{
    *out = NULL;
    if (check_options(cfg, o, err))
        return -1;
    if (o->backend == MIMO_BACKEND_CUDA) {
#ifdef MIMO_HAVE_CUDA
        const mimo_backend_ops *ops;
        void *impl;
        if (mimo_cuda_backend_create_synthetic(cfg, seed, o, &ops, &impl, err))
            return -1;
        *out = wrap(cfg, o, ops, impl);
        return 0;
#else
        return mimo_fail(err, "engine: this build has no CUDA backend (nvcc was not found at configure time)");
#endif
    }
    /* the cpu path holds every synthetic weight in host memory: a full-scale preset would run the
     * machine out of memory (and be killed) long before its first token, so it is refused here */
    mimo_param_counts counts;
    mimo_config_count(cfg, &counts);
    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
    double host_bytes = pages > 0 && page_size > 0 ? (double)pages * (double)page_size : 0;
    if (host_bytes > 0 && (double)counts.bytes_total > host_bytes / 2)
        return mimo_fail(err, "engine: the synthetic %s weights need %.1f GB of host memory, more than half of this "
                         "machine's %.1f GB: full-scale presets run on the cuda backend (--shard R/N)",
                         cfg->model_type, counts.bytes_total / 1e9, host_bytes / 1e9);
    mimo_tensor_source *src = NULL;
    if (mimo_synth_target(cfg, seed, &src, err))
        return -1;
    mimo_weights *w = mimo_xcalloc(1, sizeof *w);
    if (mimo_weights_bind(cfg, src, w, NULL, NULL, err)) {
        free(w);
        mimo_source_free(src);
        return -1;
    }
    if (mimo_engine_create(w, o, out, err)) {
        mimo_weights_free(w);
        free(w);
        mimo_source_free(src);
        return -1;
    }
    (*out)->own_source = src;
    (*out)->own_weights = w;
    return 0;
}

void mimo_engine_destroy(mimo_engine *e)
{
    if (!e)
        return;
    e->ops->destroy(e->impl);
    if (e->own_weights) {
        mimo_weights_free(e->own_weights);
        free(e->own_weights);
    }
    mimo_source_free(e->own_source);
    free(e);
}

int mimo_engine_forward(mimo_engine *e, const int32_t *tokens, int n, mimo_forward_out *out, mimo_error *err)
{
    if (n < 1)
        return mimo_fail(err, "engine: forward needs at least one position");
    if (mimo_engine_length(e) + n > e->opts.max_context)
        return mimo_fail(err, "engine: context full (%d + %d > max_context %d)", mimo_engine_length(e), n, e->opts.max_context);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= e->cfg.vocab_size)
            return mimo_fail(err, "engine: token id %d out of range [0, %d)", tokens[i], e->cfg.vocab_size);
    return e->ops->forward(e->impl, tokens, n, out, err);
}

int mimo_engine_truncate(mimo_engine *e, int length, mimo_error *err)
{
    if (length < 0 || length > mimo_engine_length(e))
        return mimo_fail(err, "engine: cannot truncate to %d (length %d)", length, mimo_engine_length(e));
    return e->ops->truncate(e->impl, length, err);
}

int mimo_engine_length(const mimo_engine *e) { return e->ops->length(e->impl); }
const mimo_config *mimo_engine_config(const mimo_engine *e) { return &e->cfg; }
const mimo_engine_options *mimo_engine_get_options(const mimo_engine *e) { return &e->opts; }
int mimo_engine_sync(mimo_engine *e, mimo_error *err) { return e->ops->sync ? e->ops->sync(e->impl, err) : 0; }

int mimo_engine_attach_drafter(mimo_engine *e, const mimo_drafter_weights *d, mimo_error *err)
{
    if (!e->ops->attach_drafter)
        return mimo_fail(err, "engine: the %s backend has no DFlash drafter support", e->ops->name);
    if (d->cfg.hidden_size != e->cfg.hidden_size)
        return mimo_fail(err, "drafter: hidden_size %d != target hidden_size %d", d->cfg.hidden_size, e->cfg.hidden_size);
    if (e->ops->attach_drafter(e->impl, d, err))
        return -1;
    e->drafter_cfg = d->cfg;
    e->drafter = &e->drafter_cfg;
    return 0;
}

const mimo_drafter_config *mimo_engine_drafter_config(const mimo_engine *e) { return e->drafter; }

int mimo_engine_drafter_append(mimo_engine *e, const float *target_hidden, int n, mimo_error *err)
{
    if (!e->drafter)
        return mimo_fail(err, "engine: no drafter attached");
    return e->ops->drafter_append(e->impl, target_hidden, n, err);
}

int mimo_engine_drafter_truncate(mimo_engine *e, int n_context, mimo_error *err)
{
    if (!e->drafter)
        return mimo_fail(err, "engine: no drafter attached");
    return e->ops->drafter_truncate(e->impl, n_context, err);
}

int mimo_engine_drafter_length(const mimo_engine *e) { return e->drafter ? e->ops->drafter_length(e->impl) : 0; }

int mimo_engine_draft(mimo_engine *e, const int32_t *block, int B, mimo_forward_out *out, mimo_error *err)
{
    if (!e->drafter)
        return mimo_fail(err, "engine: no drafter attached");
    if (B < 2 || B > MIMO_DFLASH_MAX_BLOCK)
        return mimo_fail(err, "engine: draft block size %d out of range [2, %d]", B, MIMO_DFLASH_MAX_BLOCK);
    return e->ops->draft(e->impl, block, B, out, err);
}

int mimo_engine_set_phase_stamps(mimo_engine *e, bool on, mimo_error *err)
{
    return e->ops->set_phase_stamps ? e->ops->set_phase_stamps(e->impl, on, err) : 0;
}

int mimo_engine_phase_steps(const mimo_engine *e, long *dropped)
{
    if (dropped)
        *dropped = 0;
    return e->ops->phase_steps ? e->ops->phase_steps(e->impl, dropped) : 0;
}

const mimo_phase *mimo_engine_phase_step(const mimo_engine *e, int s, int *n)
{
    int count = 0;
    const mimo_phase *p = e->ops->phase_step ? e->ops->phase_step(e->impl, s, &count) : NULL;
    if (n)
        *n = count;
    return p;
}

bool mimo_engine_has_device_round(const mimo_engine *e, const mimo_sampling_params *p)
{
    return e->ops->has_device_round && e->ops->has_device_round(e->impl, p);
}

int mimo_engine_device_round(mimo_engine *e, const mimo_round_request *rq, mimo_round_result *rs, mimo_error *err)
{
    if (!mimo_engine_has_device_round(e, &rq->sampling))
        return mimo_fail(err, "engine: the %s backend does not run decode rounds on the device here", e->ops->name);
    if (rq->B < 1 || rq->B > MIMO_DFLASH_MAX_BLOCK || rq->B > MIMO_MAX_DECODE_POSITIONS)
        return mimo_fail(err, "engine: round block size %d out of range [1, %d]", rq->B, MIMO_DFLASH_MAX_BLOCK);
    if (rq->B > 1 && !e->drafter)
        return mimo_fail(err, "engine: a round of %d positions needs a drafter attached", rq->B);
    if (rq->feed_drafter && !e->drafter)
        return mimo_fail(err, "engine: feed_drafter without a drafter attached");
    if (rq->t0 < 0 || rq->t0 >= e->cfg.vocab_size)
        return mimo_fail(err, "engine: token id %d out of range [0, %d)", rq->t0, e->cfg.vocab_size);
    if (rq->forced_accept >= rq->B)
        return mimo_fail(err, "engine: forced accept count %d out of range [0, %d]", rq->forced_accept, rq->B - 1);
    if (!(rq->sampling.temperature >= 0.0f) || !isfinite(rq->sampling.temperature))
        return mimo_fail(err, "engine: temperature must be a finite number >= 0");
    if (rq->sampling.top_k < 0 || !(rq->sampling.top_p > 0.0f && rq->sampling.top_p <= 1.0f))
        return mimo_fail(err, "engine: top_k must be >= 0 and top_p in (0, 1] (got %d, %g)", rq->sampling.top_k,
                         (double)rq->sampling.top_p);
    if (mimo_engine_length(e) + rq->B > e->opts.max_context)
        return mimo_fail(err, "engine: context full (%d + %d > max_context %d)", mimo_engine_length(e), rq->B,
                         e->opts.max_context);
    if (rq->feed_drafter && mimo_engine_drafter_length(e) != mimo_engine_length(e))
        return mimo_fail(err, "engine: the drafter's context (%d) is not the target's (%d)", mimo_engine_drafter_length(e),
                         mimo_engine_length(e));
    return e->ops->device_round(e->impl, rq, rs, err);
}
