/* Sampling from logits (sampling.h): temperature, then top-k, then top-p (nucleus), then an
 * inverse-CDF draw with one uniform from the seeded counter-based RNG. Backend-neutral. */
#include "mimo/sampling.h"
#include "mimo/error.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int32_t mimo_argmax(const float *logits, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

typedef struct {
    float p;
    int   index;
} ranked_token;

/* Most probable first; equal probabilities by lower index, so the kept sets are deterministic. */
static int by_prob_desc(const void *a, const void *b)
{
    const ranked_token *x = a, *y = b;
    if (x->p != y->p)
        return x->p > y->p ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

static void normalise(float *probs, int n)
{
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += probs[i];
    for (int i = 0; i < n; i++)
        probs[i] = (float)(probs[i] / sum);
}

/* Keeps the first `keep` tokens of the ranking, zeroes every other probability. */
static void keep_top(float *probs, const ranked_token *ranked, int n, int keep)
{
    for (int r = keep; r < n; r++)
        probs[ranked[r].index] = 0.0f;
}

void mimo_sampling_probs(const mimo_sampling_params *p, const float *logits, int n, float *probs)
{
    if (p->temperature <= 0.0f) {
        memset(probs, 0, (size_t)n * sizeof *probs);
        probs[mimo_argmax(logits, n)] = 1.0f;
        return;
    }

    /* temperature: softmax(logits / T), with the max subtracted for range */
    float max = logits[mimo_argmax(logits, n)];
    for (int i = 0; i < n; i++)
        probs[i] = (float)exp(((double)logits[i] - max) / p->temperature);
    normalise(probs, n);

    bool use_top_k = p->top_k > 0 && p->top_k < n;
    bool use_top_p = p->top_p > 0.0f && p->top_p < 1.0f;
    if (!use_top_k && !use_top_p)
        return;

    ranked_token *ranked = mimo_xmalloc((size_t)n * sizeof *ranked);
    for (int i = 0; i < n; i++)
        ranked[i] = (ranked_token){ probs[i], i };
    qsort(ranked, (size_t)n, sizeof *ranked, by_prob_desc);

    int kept = n;
    if (use_top_k) {
        kept = p->top_k;
        keep_top(probs, ranked, n, kept);
        normalise(probs, n);
    }
    if (use_top_p) {
        /* the smallest prefix of the ranking whose (renormalised) mass reaches top_p; never empty */
        double cumulative = 0.0;
        int keep = 0;
        while (keep < kept) {
            cumulative += probs[ranked[keep].index];
            keep++;
            if (cumulative >= p->top_p)
                break;
        }
        keep_top(probs, ranked, n, keep);
        normalise(probs, n);
    }
    free(ranked);
}

int32_t mimo_sample_from_probs(const float *probs, int n, mimo_rng *rng)
{
    double u = mimo_rng_uniform(rng);
    double cumulative = 0.0;
    int32_t last_nonzero = 0;
    for (int i = 0; i < n; i++) {
        if (probs[i] <= 0.0f)
            continue;
        cumulative += probs[i];
        last_nonzero = i;
        if (u < cumulative)
            return i;
    }
    return last_nonzero;   /* u landed in the rounding gap above the total mass */
}

int32_t mimo_sample(const mimo_sampling_params *p, const float *logits, int n, float *scratch, mimo_rng *rng)
{
    if (p->temperature <= 0.0f)
        return mimo_argmax(logits, n);   /* greedy draws no random number */
    mimo_sampling_probs(p, logits, n, scratch);
    return mimo_sample_from_probs(scratch, n, rng);
}
