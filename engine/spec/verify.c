/* Verification of a drafted block (DFLASH.md "Verification: lossless by construction").
 * Greedy: longest matching prefix + the target's argmax as bonus. Sampling: the speculative-sampling
 * rule (accept x with probability min(1, p(x)/q(x)); on the first rejection draw from
 * normalize(max(0, p - q)); if all are accepted draw the bonus from p at the next position), which
 * reproduces the target's sampling distribution exactly for any q. */
#include "mimo/generate.h"

#include <string.h>

int mimo_verify_greedy(const int32_t *draft, int n_draft, const int32_t *target_argmax, int32_t *bonus)
{
    int a = 0;
    while (a < n_draft && draft[a] == target_argmax[a])
        a++;
    *bonus = target_argmax[a];
    return a;
}

int32_t mimo_spec_sample_probs(const float *probs, int n, mimo_rng *rng)
{
    double total = 0;
    for (int i = 0; i < n; i++)
        total += probs[i];
    double u = mimo_rng_uniform(rng) * total, c = 0;
    int last_nonzero = 0;
    for (int i = 0; i < n; i++) {
        if (probs[i] <= 0)
            continue;
        c += probs[i];
        last_nonzero = i;
        if (u < c)
            return i;
    }
    return last_nonzero;   /* u landed on the rounding slack at the top */
}

bool mimo_residual_distribution(const float *p, const float *q, int32_t x, int n, float *out)
{
    double mass = 0;
    for (int i = 0; i < n; i++) {
        double qi = q ? q[i] : (i == x ? 1.0 : 0.0);
        double r = (double)p[i] - qi;
        out[i] = r > 0 ? (float)r : 0.0f;
        mass += out[i];
    }
    if (!(mass > 0)) {
        memcpy(out, p, (size_t)n * sizeof *out);
        return false;
    }
    for (int i = 0; i < n; i++)
        out[i] = (float)(out[i] / mass);
    return true;
}

/* Probability of accepting proposal x drawn from q against p. */
static double accept_probability(double px, double qx)
{
    if (qx <= 0)
        return px > 0 ? 1.0 : 0.0;   /* x could not have been drawn from q: only reachable by a bad caller */
    double r = px / qx;
    return r < 1.0 ? r : 1.0;
}

int mimo_verify_sampling(const float *target_probs, const float *draft_probs, const int32_t *draft, int n_draft,
                         int n, mimo_rng *rng, float *scratch, int32_t *bonus)
{
    for (int i = 0; i < n_draft; i++) {
        const float *p = target_probs + (size_t)i * n;
        const float *q = draft_probs ? draft_probs + (size_t)i * n : NULL;
        int32_t x = draft[i];
        double px = (x >= 0 && x < n) ? p[x] : 0.0;
        double qx = q ? ((x >= 0 && x < n) ? q[x] : 0.0) : 1.0;
        if (mimo_rng_uniform(rng) < accept_probability(px, qx))
            continue;
        mimo_residual_distribution(p, q, x, n, scratch);
        *bonus = mimo_spec_sample_probs(scratch, n, rng);
        return i;
    }
    *bonus = mimo_spec_sample_probs(target_probs + (size_t)n_draft * n, n, rng);
    return n_draft;
}
