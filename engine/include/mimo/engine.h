/* The backend-neutral engine API. A backend (cpu, cuda) holds the target weights (and optionally
 * the DFlash drafter), the KV caches, and runs forward passes of 1..16 positions (any number for
 * prefill). Everything above it — decode loops, DFlash, the harness — uses only this header. */
#ifndef MIMO_ENGINE_H
#define MIMO_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include "mimo/dflash.h"
#include "mimo/sampling.h"

typedef enum { MIMO_BACKEND_CPU, MIMO_BACKEND_CUDA } mimo_backend_kind;
typedef enum { MIMO_EXEC_EAGER, MIMO_EXEC_GRAPH, MIMO_EXEC_PERSISTENT } mimo_exec_mode;
const char *mimo_backend_name(mimo_backend_kind k);
const char *mimo_exec_name(mimo_exec_mode m);

#define MIMO_MAX_DECODE_POSITIONS 16
#define MIMO_MAX_HIDDEN_OUTPUTS 16

typedef struct {
    mimo_backend_kind backend;
    mimo_exec_mode    exec;          /* cuda only; cpu is always eager */
    int  max_context;                /* KV capacity in positions */
    int  n_hidden_layers;            /* hidden states after these layers are outputs */
    int  hidden_layers[MIMO_MAX_HIDDEN_OUTPUTS];
    int  shard_rank, shard_count;    /* tensor-parallel share to build (1 = whole model) */
    int  layers_limit;               /* 0 = all layers; else replay the first K (reported as such) */
    bool override_experts;           /* FP4 ablation: re-store experts in expert_format at load */
    mimo_weight_format expert_format;
    int  device;                     /* cuda device index */
    int  n_threads;                  /* cpu worker threads (0 = 1) */
} mimo_engine_options;
void mimo_engine_options_default(mimo_engine_options *o);

/* Outputs of one forward call over n positions. Any pointer may be NULL (not computed/copied). */
typedef struct {
    float   *logits;   /* [n, vocab] */
    int32_t *argmax;   /* [n] */
    float   *hidden;   /* [n_hidden_layers, n, hidden] */
} mimo_forward_out;

typedef struct mimo_engine mimo_engine;

/* True when this build and machine can run the backend; else fills reason. */
bool mimo_backend_available(mimo_backend_kind k, char *reason, size_t reason_size);

/* From bound host weights (which must outlive the engine). */
int mimo_engine_create(const mimo_weights *w, const mimo_engine_options *o, mimo_engine **out, mimo_error *err);
/* From a preset config + seed: the cpu backend builds the synthetic weights in memory; the cuda
 * backend generates them on the device (bit-identical), which is how full-scale shards are replayed. */
int mimo_engine_create_synthetic(const mimo_config *cfg, uint64_t seed, const mimo_engine_options *o,
                                 mimo_engine **out, mimo_error *err);
void mimo_engine_destroy(mimo_engine *e);

/* Appends n tokens at positions length..length+n-1 and computes their outputs. */
int mimo_engine_forward(mimo_engine *e, const int32_t *tokens, int n, mimo_forward_out *out, mimo_error *err);
/* Drops every position >= length, in O(1). */
int mimo_engine_truncate(mimo_engine *e, int length, mimo_error *err);
int mimo_engine_length(const mimo_engine *e);
const mimo_config *mimo_engine_config(const mimo_engine *e);
const mimo_engine_options *mimo_engine_get_options(const mimo_engine *e);
/* Waits for queued device work (a no-op on cpu): callers timing phases use it. */
int mimo_engine_sync(mimo_engine *e, mimo_error *err);

/* ---- DFlash drafter on the same backend ---- */
int mimo_engine_attach_drafter(mimo_engine *e, const mimo_drafter_weights *d, mimo_error *err);
const mimo_drafter_config *mimo_engine_drafter_config(const mimo_engine *e);   /* NULL if none */
/* Appends n positions of context features: the target's hidden states after each
 * target_layer_id, laid out [n, n_target_layers*hidden] (layer-major within a position). */
int mimo_engine_drafter_append(mimo_engine *e, const float *target_hidden, int n, mimo_error *err);
int mimo_engine_drafter_truncate(mimo_engine *e, int n_context, mimo_error *err);
int mimo_engine_drafter_length(const mimo_engine *e);
/* One drafter pass over the block tokens [t0, MASK x (B-1)] at positions pos..pos+B-1
 * (pos = drafter context length); outputs for all B positions (logits over the target vocab). */
int mimo_engine_draft(mimo_engine *e, const int32_t *block, int B, mimo_forward_out *out, mimo_error *err);

/* ---- a decode round kept on the device (DFLASH.md "One decode round") ----
 * Draft the block [t0, MASK x (B-1)] with the attached drafter, verify it with one target pass, accept
 * (greedy: the longest matching prefix; sampling: the speculative-sampling rule), and feed the drafter's
 * context, with one host synchronisation per round: the read of the result. Greedy and sampling
 * (temperature, top-k, top-p: mimo_sampling_probs's distribution) run on the device. B = 1 is a plain step
 * (the token is chosen on the device). Uniforms come from the caller so that the device draws exactly
 * what the host loop would draw from the same RNG streams. */
typedef struct {
    int      B;                  /* 1 (plain step) or 2..MIMO_DFLASH_MAX_BLOCK (needs a drafter) */
    int32_t  t0;                 /* the last emitted token, not yet in the target's KV */
    mimo_sampling_params sampling;   /* temperature 0 = greedy; top-k / top-p as in mimo_sampling_probs */
    bool     draft_sampled;      /* proposals drawn from the drafter's q (else its argmax) */
    bool     feed_drafter;       /* append the round's target features to the drafter's context */
    int      forced_accept;      /* >= 0: accept this many drafts unverified (timing replay); -1: verify */
    double   draft_uniforms[MIMO_DFLASH_MAX_BLOCK];      /* B - 1, for sampled drafting */
    double   verify_uniforms[MIMO_DFLASH_MAX_BLOCK + 1]; /* up to B: acceptance tests, then the final draw */
} mimo_round_request;

typedef struct {
    int      accepted;                              /* drafts accepted (0..B-1) */
    int32_t  drafts[MIMO_DFLASH_MAX_BLOCK];         /* B - 1 proposals */
    int32_t  bonus;                                 /* the target's token after the accepted drafts */
    int      verify_uniforms_used;                  /* how far the caller's sampling stream advanced */
    double   draft_us, verify_us;                   /* device time of the drafter pass, of verify + accept */
} mimo_round_result;

/* True when this engine runs whole rounds on the device for this temperature / top-k / top-p. */
bool mimo_engine_has_device_round(const mimo_engine *e, const mimo_sampling_params *p);
/* One round; afterwards the target KV holds p + accepted + 1 positions and, with feed_drafter, the
 * drafter's context the same (the caller truncates both when it emits fewer). */
int mimo_engine_device_round(mimo_engine *e, const mimo_round_request *rq, mimo_round_result *rs, mimo_error *err);

/* ---- a persistent kernel's own phase timestamps (HARNESS.md "CUPTI") ----
 * A step run in a persistent kernel (--exec persistent) is one kernel to a tracer. With phase stamps on,
 * the engine also keeps, for each such step (up to MIMO_PHASE_MAX_STEPS, then counted as dropped), the
 * device time (%globaltimer, ns) at which the kernel started and at which each of its instructions' last
 * unit ended: phase i spans from the previous instruction's end (the kernel's start for the first) to its
 * own end, so the phases tile the kernel. Turning stamps on or off clears what was kept. Engines that run
 * no persistent steps (other exec modes, the cpu backend) keep none. Stamping costs a little device time
 * per step: trace with it, time without. */
#define MIMO_PHASE_MAX_STEPS 512
typedef struct {
    const char *name;            /* "<step instruction>:<kernel>", e.g. "qkv_proj:gemv1_kernel"; owned by the engine */
    uint64_t    start_ns, end_ns;
} mimo_phase;
int mimo_engine_set_phase_stamps(mimo_engine *e, bool on, mimo_error *err);
/* Steps kept since stamps were turned on, and those past MIMO_PHASE_MAX_STEPS that were not. */
int mimo_engine_phase_steps(const mimo_engine *e, long *dropped);
/* Step s's phases in instruction order (*n of them, n may be NULL); NULL where s is out of range. Valid until
 * stamps are turned on or off again or the engine is destroyed. */
const mimo_phase *mimo_engine_phase_step(const mimo_engine *e, int s, int *n);

#endif
