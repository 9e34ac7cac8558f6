/* The decode loop: prefill, then rounds. Without DFlash a round emits one token (drafted = accepted
 * = 0, emitted = 1); with DFlash a round is draft -> verify -> accept -> bonus -> rollback. Every
 * round is recorded. Backend-neutral: it uses only engine.h. */
#ifndef MIMO_GENERATE_H
#define MIMO_GENERATE_H

#include "mimo/engine.h"
#include "mimo/sampling.h"

typedef enum { MIMO_ACCEPT_MEASURED, MIMO_ACCEPT_FORCED } mimo_accept_mode;

/* A forced-acceptance profile: a tau histogram (tau 1..block) or a mean tau turned into a constant
 * per-position acceptance alpha (DFLASH.md). */
typedef struct {
    char   name[64];        /* "mimo-published:coding", "mean:5.2", "hist:...", ... */
    int    block;           /* block size the profile is for */
    bool   has_histogram;
    double histogram[MIMO_DFLASH_MAX_BLOCK + 1];  /* P(tau = t), t = 1..block */
    double mean_tau;
    double alpha;           /* when !has_histogram */
} mimo_accept_profile;

typedef enum {
    MIMO_DRAFT_ARGMAX,      /* one-hot q: the common choice */
    MIMO_DRAFT_SAMPLED      /* proposals sampled from the drafter's q */
} mimo_draft_mode;

typedef struct {
    int   max_new_tokens;
    mimo_sampling_params sampling;
    uint64_t seed;
    const int32_t *stop_tokens; int n_stop_tokens;
    bool  dflash;
    int   block;                /* 0 = from the drafter config */
    mimo_draft_mode draft_mode;
    mimo_accept_mode accept;
    mimo_accept_profile profile;   /* forced mode */
    bool  host_rounds;             /* verify on the host even where the backend runs rounds on the device */
} mimo_generate_options;
void mimo_generate_options_default(mimo_generate_options *o);

/* Phase times: host wall time around each phase for rounds verified on the host; device (event) time
 * of the drafter pass and of verify + accept for rounds run on the device. t_total_us is wall time. */
typedef struct {
    int    drafted, accepted, emitted;
    double t_draft_us, t_verify_us, t_total_us;
} mimo_round_record;

typedef enum { MIMO_STOP_MAX_TOKENS, MIMO_STOP_STOP_TOKEN, MIMO_STOP_CONTEXT_FULL, MIMO_STOP_INTERRUPTED } mimo_stop_reason;
const char *mimo_stop_reason_name(mimo_stop_reason r);

typedef struct {
    int32_t *tokens; int n_tokens;            /* generated tokens (prompt excluded) */
    mimo_round_record *rounds; int n_rounds;  /* the prefill's first token is not a round */
    double ttft_ms;                           /* prefill + first token */
    double decode_ms;                         /* wall time after the first token */
    double e2e_ms;
    mimo_stop_reason stop_reason;
} mimo_generation;
void mimo_generation_free(mimo_generation *g);

/* Conventions of the DFlash round (generate.c): block = [t0, MASK x (B-1)] at p..p+B-1 with p the
 * target KV length = drafter context length; the drafter's output at block position i (1..B-1)
 * proposes the token at block position i (the reference implementation's convention); the
 * target's verify row j predicts the token after block position j. After a round emitting k tokens
 * the target KV keeps p + k positions and the drafter context gains those k positions' features.
 * The engine's hidden-state outputs (mimo_engine_options.hidden_layers) must be the drafter's
 * target_layer_ids, in order. */
/* Runs one request from an empty KV cache (the caller's engine is truncated to 0 first).
 * With opts->dflash the engine must have a drafter attached. interrupt may be NULL; when it becomes
 * non-zero the loop stops after the current round with MIMO_STOP_INTERRUPTED. */
int mimo_generate(mimo_engine *e, const int32_t *prompt, int n_prompt, const mimo_generate_options *opts,
                  mimo_generation *out, volatile int *interrupt, mimo_error *err);

/* Forced-acceptance profiles. spec: "mimo-published" (needs suite: coding|math|agent),
 * "dflash-paper-qwen3-8b" (suite: gsm8k|math500|humaneval|mbpp|mtbench), "mean:6.3",
 * "hist:p1,p2,...,pB". */
int  mimo_accept_profile_parse(const char *spec, const char *suite, int block, mimo_accept_profile *out, mimo_error *err);
/* alpha with E[tau] = 1 + sum_{i=1}^{B-1} alpha^i. */
double mimo_alpha_for_mean_tau(double mean_tau, int block);
/* Draw the accepted-draft count (0..B-1) of one round. */
int  mimo_accept_profile_draw(const mimo_accept_profile *p, int block, mimo_rng *rng);

/* ---- verification (verify.c): the statistical core, exposed for tests ---- */

/* Greedy: the longest prefix with draft[i] == target_argmax[i] (target_argmax[i] is the target's
 * choice for the token that draft[i] proposes). Returns the accepted count a (0..n_draft) and the
 * bonus target_argmax[a] (target_argmax has n_draft + 1 entries). */
int  mimo_verify_greedy(const int32_t *draft, int n_draft, const int32_t *target_argmax, int32_t *bonus);
/* normalize(max(0, p - q)) into out[n]; q == NULL means one-hot at x (so the residual is p without x).
 * Returns false (out = p) when the residual has no mass, which only happens when p == q. */
bool mimo_residual_distribution(const float *p, const float *q, int32_t x, int n, float *out);
/* Speculative sampling over one block: target_probs [n_draft + 1, n] (rows after temperature, top-k,
 * top-p), draft_probs [n_draft, n] or NULL for argmax drafting (one-hot q). Accepts draft[i] with
 * probability min(1, p(x)/q(x)); at the first rejection draws the bonus from the residual; if all are
 * accepted draws it from the last target row. scratch holds n floats. Returns the accepted count. */
int  mimo_verify_sampling(const float *target_probs, const float *draft_probs, const int32_t *draft, int n_draft,
                          int n, mimo_rng *rng, float *scratch, int32_t *bonus);
/* Inverse-CDF draw that tolerates rows not summing exactly to 1 (scales the uniform by the sum). */
int32_t mimo_spec_sample_probs(const float *probs, int n, mimo_rng *rng);

/* ---- test doubles: replace the drafter's proposals (see tests/spec) ---- */
typedef struct {
    /* seq = prompt + every emitted token (its last is the block's t0); fill proposals[n_draft]. For
     * sampled drafting, q [n_draft, vocab] may be filled with the distribution each proposal was drawn
     * from; leave it untouched (set *q_filled = false) for one-hot q. */
    int  (*propose)(void *ctx, const int32_t *seq, int n_seq, int n_draft, int32_t *proposals,
                    float *q, bool *q_filled, mimo_error *err);
    void *ctx;
} mimo_draft_override;
/* mimo_generate with the drafter's proposals replaced by ovr->propose (the attached drafter, if any,
 * still runs first so its cost and its context cache are exercised). No drafter need be attached. */
int mimo_generate_with_override(mimo_engine *e, const int32_t *prompt, int n_prompt, const mimo_generate_options *opts,
                                const mimo_draft_override *ovr, mimo_generation *out, volatile int *interrupt,
                                mimo_error *err);

/* The RNG stream a request with this seed draws its forced accepted counts from (one
 * mimo_accept_profile_draw per round, in order), apart from the sampling stream. */
void mimo_generate_accept_rng_init(mimo_rng *rng, uint64_t seed);

/* The built-in forced profiles' names and suites, for usage texts ("mimo-published: coding math agent"). */
const char *mimo_accept_profiles_help(void);
/* P(tau = t) of a profile at block B (t = 1..B), into probs[B + 1] (probs[0] = 0). */
void mimo_accept_profile_tau_law(const mimo_accept_profile *p, int block, double *probs);

#endif
