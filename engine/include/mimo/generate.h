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
} mimo_generate_options;
void mimo_generate_options_default(mimo_generate_options *o);

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

#endif
