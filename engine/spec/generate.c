/* The decode loop (DFLASH.md "One decode round"): prefill, then rounds. Without DFlash a round is
 * one target step; with DFlash a round is draft -> verify -> accept -> bonus -> rollback.
 *
 * Conventions:
 * - Block = [t0, MASK x (B-1)] at positions p..p+B-1, p = target KV length = drafter context length;
 *   t0 is the last emitted token, not yet in the target's KV.
 * - The drafter's output at block position i (1..B-1) proposes the token at block position i (the
 *   reference implementation's convention: logits for positions 1..B-1); output 0 is unused.
 * - The target's row j (0..B-1) of the verify pass predicts the token after block position j, so
 *   draft i is judged by row i-1 and the bonus after a accepted drafts comes from row a.
 * - After a round emitting k tokens (k = a + 1 unless a stop token or max-new ends the block), the
 *   target KV keeps p + k positions (t0 and the accepted drafts that were emitted before the last
 *   one) and the drafter's context gains the same k positions' target features.
 * Timing uses CLOCK_MONOTONIC around mimo_engine_sync so device backends are timed honestly. */
#include "mimo/generate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Prompt positions per prefill forward: bounds the logits buffer ([chunk, vocab]). */
#define PREFILL_CHUNK 64

void mimo_generate_options_default(mimo_generate_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_new_tokens = 128;
    o->sampling.temperature = 0.0f;
    o->sampling.top_k = 0;
    o->sampling.top_p = 1.0f;
    o->seed = 0;
    o->dflash = false;
    o->block = 0;
    o->draft_mode = MIMO_DRAFT_ARGMAX;
    o->accept = MIMO_ACCEPT_MEASURED;
}

const char *mimo_stop_reason_name(mimo_stop_reason r)
{
    switch (r) {
    case MIMO_STOP_MAX_TOKENS: return "max_tokens";
    case MIMO_STOP_STOP_TOKEN: return "stop_token";
    case MIMO_STOP_CONTEXT_FULL: return "context_full";
    case MIMO_STOP_INTERRUPTED: return "interrupted";
    }
    return "?";
}

void mimo_generation_free(mimo_generation *g)
{
    if (!g)
        return;
    free(g->tokens);
    free(g->rounds);
    memset(g, 0, sizeof *g);
}

void mimo_generate_accept_rng_init(mimo_rng *rng, uint64_t seed)
{
    mimo_rng_init(rng, seed ^ 0x616363657074ull);   /* "accept" */
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

/* Everything one request needs, freed together. */
typedef struct {
    mimo_engine *e;
    const mimo_generate_options *opts;
    const mimo_draft_override *ovr;
    const mimo_drafter_config *dcfg;   /* NULL without a drafter */
    bool greedy;
    bool device;                      /* rounds run on the device (mimo_engine_device_round) */
    int V, H, n_feat;                 /* vocab, hidden, target layers feeding the drafter */
    int B;
    mimo_rng sample_rng, draft_rng, accept_rng;

    float *logits;       /* [max(B, PREFILL_CHUNK), V] */
    int32_t *argmax;     /* [max(B, PREFILL_CHUNK)] */
    float *hidden;       /* [n_feat, max(B, PREFILL_CHUNK), H] */
    float *features;     /* [max(B, PREFILL_CHUNK), n_feat * H] */
    float *probs;        /* [B, V] target rows after temperature/top-k/top-p */
    float *q;            /* [B - 1, V] draft distributions */
    float *scratch;      /* [V] */

    int32_t *seq; int n_seq, cap_seq;   /* prompt + emitted: what the override sees */
    mimo_generation *out;
    int cap_rounds;
} loop_state;

static void push_round(loop_state *s, const mimo_round_record *r)
{
    mimo_generation *g = s->out;
    if (g->n_rounds == s->cap_rounds) {
        s->cap_rounds = s->cap_rounds ? 2 * s->cap_rounds : 64;
        g->rounds = mimo_xrealloc(g->rounds, (size_t)s->cap_rounds * sizeof *g->rounds);
    }
    g->rounds[g->n_rounds++] = *r;
}

static bool is_stop(const mimo_generate_options *o, int32_t t)
{
    for (int i = 0; i < o->n_stop_tokens; i++)
        if (o->stop_tokens[i] == t)
            return true;
    return false;
}

/* Emits one token; returns true when generation must end after it. */
static bool emit(loop_state *s, int32_t t, mimo_stop_reason *why)
{
    mimo_generation *g = s->out;
    g->tokens[g->n_tokens++] = t;
    if (s->n_seq == s->cap_seq) {
        s->cap_seq *= 2;
        s->seq = mimo_xrealloc(s->seq, (size_t)s->cap_seq * sizeof *s->seq);
    }
    s->seq[s->n_seq++] = t;
    if (is_stop(s->opts, t)) {
        *why = MIMO_STOP_STOP_TOKEN;
        return true;
    }
    if (g->n_tokens >= s->opts->max_new_tokens) {
        *why = MIMO_STOP_MAX_TOKENS;
        return true;
    }
    return false;
}

/* A round's tokens: the a accepted drafts, then the bonus, until a stop token or max-new ends the
 * request. Returns how many were emitted (a + 1, or fewer when the request ended inside the block). */
static int emit_round(loop_state *s, const int32_t *draft, int a, int32_t bonus, bool *done, mimo_stop_reason *why)
{
    int k = 0;
    for (; k < a && !*done; k++)
        *done = emit(s, draft[k], why);
    if (!*done) {
        *done = emit(s, bonus, why);
        k++;
    }
    return k;
}

/* The target's choice at one row: argmax (greedy) or a draw from the sampling distribution. */
static int32_t target_choice(loop_state *s, const float *logits_row, int32_t argmax)
{
    if (s->greedy)
        return argmax;
    mimo_sampling_probs(&s->opts->sampling, logits_row, s->V, s->scratch);
    return mimo_spec_sample_probs(s->scratch, s->V, &s->sample_rng);
}

/* hidden [n_feat, n, H] -> features [n, n_feat * H] (layer-major within a position), appended. */
static int append_features(loop_state *s, int n, mimo_error *err)
{
    for (int pos = 0; pos < n; pos++)
        for (int l = 0; l < s->n_feat; l++)
            memcpy(s->features + ((size_t)pos * s->n_feat + l) * s->H, s->hidden + ((size_t)l * n + pos) * s->H,
                   (size_t)s->H * sizeof(float));
    return mimo_engine_drafter_append(s->e, s->features, n, err);
}

/* Forward over n tokens gathering logits/argmax and, when a drafter listens, hidden states. */
static int forward(loop_state *s, const int32_t *tokens, int n, mimo_error *err)
{
    /* Greedy choices need only the argmax: the logits are not copied back. */
    mimo_forward_out fo = {s->greedy ? NULL : s->logits, s->argmax, s->dcfg ? s->hidden : NULL};
    return mimo_engine_forward(s->e, tokens, n, &fo, err);
}

/* Hidden rows of the last forward (over n positions) for its first k positions, compacted to
 * [n_feat, k, H] so append_features can use them. */
static void keep_hidden_prefix(loop_state *s, int n, int k)
{
    if (k == n)
        return;
    for (int l = 1; l < s->n_feat; l++)
        memmove(s->hidden + (size_t)l * k * s->H, s->hidden + (size_t)l * n * s->H, (size_t)k * s->H * sizeof(float));
}

static int prefill(loop_state *s, const int32_t *prompt, int n_prompt, int32_t *first, mimo_error *err)
{
    for (int done = 0; done < n_prompt; ) {
        int n = n_prompt - done < PREFILL_CHUNK ? n_prompt - done : PREFILL_CHUNK;
        if (forward(s, prompt + done, n, err))
            return mimo_fail_prefix(err, "prefill at position %d", done);
        if (s->dcfg && append_features(s, n, err))
            return mimo_fail_prefix(err, "drafter context at position %d", done);
        done += n;
        if (done == n_prompt)
            *first = target_choice(s, s->logits + (size_t)(n - 1) * s->V, s->argmax[n - 1]);
    }
    return 0;
}

/* One plain autoregressive step: t0 in, the next token out. */
static int ar_round(loop_state *s, int32_t t0, bool *done, mimo_stop_reason *why, mimo_error *err)
{
    double t_start = now_us();
    if (forward(s, &t0, 1, err) || mimo_engine_sync(s->e, err))
        return -1;
    if (s->dcfg && append_features(s, 1, err))   /* keeps the drafter's context whole if DFlash resumes */
        return -1;
    double t_verify = now_us();
    int32_t next = target_choice(s, s->logits, s->argmax[0]);
    *done = emit(s, next, why);
    mimo_round_record r = {0, 0, 1, 0.0, t_verify - t_start, now_us() - t_start};
    push_round(s, &r);
    return 0;
}

/* The drafter's proposals for block positions 1..B-1 (into draft[0..B-2]); q filled for sampled drafting. */
static int draft_block(loop_state *s, int32_t t0, int B, int32_t *draft, bool *q_filled, mimo_error *err)
{
    *q_filled = false;
    if (s->dcfg) {
        int32_t block[MIMO_DFLASH_MAX_BLOCK];
        block[0] = t0;
        for (int i = 1; i < B; i++)
            block[i] = s->dcfg->mask_token_id;
        mimo_forward_out fo = {s->logits, s->argmax, NULL};
        if (mimo_engine_draft(s->e, block, B, &fo, err))
            return mimo_fail_prefix(err, "draft");
        bool sampled = s->opts->draft_mode == MIMO_DRAFT_SAMPLED && !s->greedy;
        for (int i = 1; i < B; i++) {
            if (sampled) {
                float *q = s->q + (size_t)(i - 1) * s->V;
                mimo_sampling_probs(&s->opts->sampling, s->logits + (size_t)i * s->V, s->V, q);
                draft[i - 1] = mimo_spec_sample_probs(q, s->V, &s->draft_rng);
            } else {
                draft[i - 1] = s->argmax[i];
            }
        }
        *q_filled = sampled;
    }
    if (s->ovr) {
        bool filled = false;
        if (s->ovr->propose(s->ovr->ctx, s->seq, s->n_seq, B - 1, draft, s->q, &filled, err))
            return mimo_fail_prefix(err, "draft override");
        *q_filled = filled && !s->greedy;
    }
    for (int i = 0; i < B - 1; i++)
        if (draft[i] < 0 || draft[i] >= s->V)
            return mimo_fail(err, "draft: proposal %d at block position %d outside the vocabulary", draft[i], i + 1);
    return 0;
}

static int dflash_round(loop_state *s, int32_t t0, int B, bool *done, mimo_stop_reason *why, mimo_error *err)
{
    const int p = mimo_engine_length(s->e);
    int32_t draft[MIMO_DFLASH_MAX_BLOCK], block[MIMO_DFLASH_MAX_BLOCK];
    bool q_filled;

    double t_start = now_us();
    if (draft_block(s, t0, B, draft, &q_filled, err) || mimo_engine_sync(s->e, err))
        return -1;
    double t_drafted = now_us();

    block[0] = t0;
    memcpy(block + 1, draft, (size_t)(B - 1) * sizeof *draft);
    if (forward(s, block, B, err) || mimo_engine_sync(s->e, err))
        return mimo_fail_prefix(err, "verify");
    double t_verified = now_us();

    int a;
    int32_t bonus;
    if (s->opts->accept == MIMO_ACCEPT_FORCED) {
        /* Timing replay: the count comes from the profile; drafts are taken as they are. */
        a = mimo_accept_profile_draw(&s->opts->profile, B, &s->accept_rng);
        bonus = target_choice(s, s->logits + (size_t)a * s->V, s->argmax[a]);
    } else if (s->greedy) {
        a = mimo_verify_greedy(draft, B - 1, s->argmax, &bonus);
    } else {
        for (int j = 0; j < B; j++)
            mimo_sampling_probs(&s->opts->sampling, s->logits + (size_t)j * s->V, s->V, s->probs + (size_t)j * s->V);
        a = mimo_verify_sampling(s->probs, q_filled ? s->q : NULL, draft, B - 1, s->V, &s->sample_rng, s->scratch, &bonus);
    }

    const int k = emit_round(s, draft, a, bonus, done, why);
    /* Roll back: keep t0 and the emitted drafts (k positions); the drafter learns the same positions. */
    if (mimo_engine_truncate(s->e, p + k, err))
        return mimo_fail_prefix(err, "rollback");
    if (s->dcfg) {
        keep_hidden_prefix(s, B, k);
        if (append_features(s, k, err))
            return mimo_fail_prefix(err, "drafter context");
    }
    mimo_round_record r = {B - 1, a, k, t_drafted - t_start, t_verified - t_drafted, now_us() - t_start};
    push_round(s, &r);
    return 0;
}

/* A round on the device: the same draws from the same streams as the host rounds above, one
 * synchronisation (the result); phase times are the device's. */
static int device_round(loop_state *s, int32_t t0, int B, bool *done, mimo_stop_reason *why, mimo_error *err)
{
    const int p = mimo_engine_length(s->e);
    mimo_round_request rq;
    memset(&rq, 0, sizeof rq);
    rq.B = B;
    rq.t0 = t0;
    rq.sampling = s->opts->sampling;
    rq.draft_sampled = B > 1 && s->opts->draft_mode == MIMO_DRAFT_SAMPLED && !s->greedy;
    rq.feed_drafter = s->dcfg != NULL;
    rq.forced_accept = -1;
    double t_start = now_us();
    if (B > 1 && s->opts->accept == MIMO_ACCEPT_FORCED)
        rq.forced_accept = mimo_accept_profile_draw(&s->opts->profile, B, &s->accept_rng);
    for (int i = 0; rq.draft_sampled && i < B - 1; i++)
        rq.draft_uniforms[i] = mimo_rng_uniform(&s->draft_rng);
    if (!s->greedy) {
        mimo_rng peek = s->sample_rng;   /* the round says how many it used */
        for (int i = 0; i < B; i++)
            rq.verify_uniforms[i] = mimo_rng_uniform(&peek);
    }
    mimo_round_result rs;
    if (mimo_engine_device_round(s->e, &rq, &rs, err))
        return -1;
    s->sample_rng.counter += (uint64_t)rs.verify_uniforms_used;

    const int a = rs.accepted;
    const int k = emit_round(s, rs.drafts, a, rs.bonus, done, why);
    /* The round kept a + 1 positions; a stop token or max-new inside the block keeps fewer. */
    if (k < a + 1 && (mimo_engine_truncate(s->e, p + k, err) || (s->dcfg && mimo_engine_drafter_truncate(s->e, p + k, err))))
        return mimo_fail_prefix(err, "rollback");
    mimo_round_record r = {B - 1, a, k, rs.draft_us, rs.verify_us, now_us() - t_start};
    push_round(s, &r);
    return 0;
}

static int check_options(mimo_engine *e, const mimo_generate_options *o, const mimo_draft_override *ovr,
                         int n_prompt, loop_state *s, mimo_error *err)
{
    const mimo_config *cfg = mimo_engine_config(e);
    if (n_prompt < 1)
        return mimo_fail(err, "generate: the prompt is empty");
    if (o->max_new_tokens < 1)
        return mimo_fail(err, "generate: max_new_tokens must be >= 1 (got %d)", o->max_new_tokens);
    if (!(o->sampling.temperature >= 0) || !isfinite(o->sampling.temperature))
        return mimo_fail(err, "generate: temperature must be >= 0");
    if (!(o->sampling.top_p > 0 && o->sampling.top_p <= 1))
        return mimo_fail(err, "generate: top_p must be in (0, 1]");
    if (o->sampling.top_k < 0)
        return mimo_fail(err, "generate: top_k must be >= 0");
    s->V = cfg->vocab_size;
    s->H = cfg->hidden_size;
    s->greedy = o->sampling.temperature == 0.0f;
    s->dcfg = mimo_engine_drafter_config(e);
    s->device = !o->host_rounds && !ovr && mimo_engine_has_device_round(e, &o->sampling);
    if (!o->dflash) {
        s->dcfg = NULL;   /* plain decoding leaves an attached drafter alone */
        s->B = 1;
        return 0;
    }
    if (!s->dcfg && !ovr)
        return mimo_fail(err, "generate: DFlash needs a drafter attached to the engine");
    s->B = o->block ? o->block : s->dcfg ? s->dcfg->block_size : 0;
    if (s->B < 2 || s->B > MIMO_DFLASH_MAX_BLOCK)
        return mimo_fail(err, "generate: block size %d out of range [2, %d]", s->B, MIMO_DFLASH_MAX_BLOCK);
    if (s->B > MIMO_MAX_DECODE_POSITIONS)
        return mimo_fail(err, "generate: block size %d exceeds the engine's %d decode positions", s->B, MIMO_MAX_DECODE_POSITIONS);
    if (o->accept == MIMO_ACCEPT_FORCED && !o->profile.has_histogram && !(o->profile.alpha >= 0 && o->profile.alpha <= 1))
        return mimo_fail(err, "generate: forced acceptance needs a profile");
    if (s->dcfg) {
        const mimo_engine_options *eo = mimo_engine_get_options(e);
        bool same = eo->n_hidden_layers == s->dcfg->n_target_layers;
        for (int i = 0; same && i < eo->n_hidden_layers; i++)
            same = eo->hidden_layers[i] == s->dcfg->target_layer_ids[i];
        if (!same)
            return mimo_fail(err, "generate: the engine's hidden-state outputs must be the drafter's target_layer_ids "
                                  "(create the engine with hidden_layers = target_layer_ids)");
        if (s->dcfg->mask_token_id >= s->V)
            return mimo_fail(err, "generate: drafter mask_token_id %d outside the target vocabulary (%d)", s->dcfg->mask_token_id, s->V);
        s->n_feat = s->dcfg->n_target_layers;
    }
    return 0;
}

int mimo_generate_with_override(mimo_engine *e, const int32_t *prompt, int n_prompt, const mimo_generate_options *opts,
                                const mimo_draft_override *ovr, mimo_generation *out, volatile int *interrupt,
                                mimo_error *err)
{
    memset(out, 0, sizeof *out);
    loop_state s;
    memset(&s, 0, sizeof s);
    s.e = e;
    s.opts = opts;
    s.ovr = opts->dflash ? ovr : NULL;
    s.out = out;
    if (check_options(e, opts, s.ovr, n_prompt, &s, err))
        return -1;
    if (mimo_engine_truncate(e, 0, err))
        return -1;
    if (s.dcfg && mimo_engine_drafter_truncate(e, 0, err))
        return -1;
    if (!opts->dflash && mimo_engine_drafter_config(e) && mimo_engine_drafter_truncate(e, 0, err))
        return -1;
    mimo_rng_init(&s.sample_rng, opts->seed);
    mimo_rng_init(&s.draft_rng, opts->seed ^ 0x6472616674ull);    /* "draft" */
    mimo_generate_accept_rng_init(&s.accept_rng, opts->seed);

    int rows = s.B > PREFILL_CHUNK ? s.B : PREFILL_CHUNK;
    s.logits = mimo_xmalloc((size_t)rows * s.V * sizeof(float));
    s.argmax = mimo_xmalloc((size_t)rows * sizeof(int32_t));
    s.scratch = mimo_xmalloc((size_t)s.V * sizeof(float));
    if (s.dcfg) {
        s.hidden = mimo_xmalloc((size_t)s.n_feat * rows * s.H * sizeof(float));
        s.features = mimo_xmalloc((size_t)s.n_feat * rows * s.H * sizeof(float));
    }
    if (opts->dflash) {
        s.probs = mimo_xmalloc((size_t)s.B * s.V * sizeof(float));
        s.q = mimo_xmalloc((size_t)s.B * s.V * sizeof(float));
    }
    s.cap_seq = n_prompt + opts->max_new_tokens + 1;
    s.seq = mimo_xmalloc((size_t)s.cap_seq * sizeof *s.seq);
    memcpy(s.seq, prompt, (size_t)n_prompt * sizeof *prompt);
    s.n_seq = n_prompt;
    out->tokens = mimo_xmalloc((size_t)opts->max_new_tokens * sizeof *out->tokens);

    int rc = -1;
    const int max_context = mimo_engine_get_options(e)->max_context;
    double t0_us = now_us();
    int32_t token = 0;
    if (n_prompt + 1 > max_context) {
        mimo_fail(err, "generate: prompt of %d tokens does not fit max_context %d", n_prompt, max_context);
        goto done;
    }
    if (prefill(&s, prompt, n_prompt, &token, err) || mimo_engine_sync(e, err))
        goto done;
    mimo_stop_reason why = MIMO_STOP_MAX_TOKENS;
    bool finished = emit(&s, token, &why);
    double t_first = now_us();
    out->ttft_ms = (t_first - t0_us) * 1e-3;

    while (!finished) {
        if (interrupt && *interrupt) {
            why = MIMO_STOP_INTERRUPTED;
            break;
        }
        int room = max_context - mimo_engine_length(e);
        int32_t t0 = out->tokens[out->n_tokens - 1];
        int B = opts->dflash ? (room < s.B ? room : s.B) : 1;
        if (room < 1) {
            why = MIMO_STOP_CONTEXT_FULL;
            break;
        }
        /* Near the end of the context a block that no longer fits falls back to a plain step. */
        int rc_round = s.device  ? device_round(&s, t0, B, &finished, &why, err)
                       : B >= 2  ? dflash_round(&s, t0, B, &finished, &why, err)
                                 : ar_round(&s, t0, &finished, &why, err);
        if (rc_round)
            goto done;
    }
    out->stop_reason = why;
    double t_end = now_us();
    out->decode_ms = (t_end - t_first) * 1e-3;
    out->e2e_ms = (t_end - t0_us) * 1e-3;
    rc = 0;
done:
    free(s.logits);
    free(s.argmax);
    free(s.scratch);
    free(s.hidden);
    free(s.features);
    free(s.probs);
    free(s.q);
    free(s.seq);
    if (rc)
        mimo_generation_free(out);
    return rc;
}

int mimo_generate(mimo_engine *e, const int32_t *prompt, int n_prompt, const mimo_generate_options *opts,
                  mimo_generation *out, volatile int *interrupt, mimo_error *err)
{
    return mimo_generate_with_override(e, prompt, n_prompt, opts, NULL, out, interrupt, err);
}
