/* Sampling from logits: greedy, temperature, top-k, top-p, from a seeded counter-based RNG. */
#ifndef MIMO_SAMPLING_H
#define MIMO_SAMPLING_H

#include <stdint.h>
#include "mimo/hash.h"

typedef struct {
    float temperature;   /* 0 = greedy */
    int   top_k;         /* 0 = off */
    float top_p;         /* 1 = off */
} mimo_sampling_params;

/* Index of the largest logit (lowest index on ties). */
int32_t mimo_argmax(const float *logits, int n);
/* The target distribution after temperature, top-k, then top-p: probs[n] sums to 1, zeros outside
 * the kept set. temperature 0 gives the one-hot argmax. */
void    mimo_sampling_probs(const mimo_sampling_params *p, const float *logits, int n, float *probs);
/* Inverse-CDF draw from probs with one uniform from rng. */
int32_t mimo_sample_from_probs(const float *probs, int n, mimo_rng *rng);
int32_t mimo_sample(const mimo_sampling_params *p, const float *logits, int n, float *scratch, mimo_rng *rng);

#endif
