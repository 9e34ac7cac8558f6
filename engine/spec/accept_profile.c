/* Forced-acceptance profiles (DFLASH.md "Forced acceptance"): for timing replays on synthetic
 * weights, the accepted-draft count of a round is drawn from a tau histogram or from a mean tau
 * turned into a constant per-position acceptance alpha (a truncated geometric law):
 *   P(tau = t) = alpha^(t-1) (1 - alpha) for t < B,  alpha^(B-1) for t = B,
 *   E[tau] = 1 + sum_{i=1}^{B-1} alpha^i.
 * A mean given for a block other than the run's keeps its alpha (the per-position rate is the
 * drafter's property); the run's mean tau then follows from alpha at the run's block. */
#include "mimo/generate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *suite;
    double mean_tau;
} published_mean;

/* MiMo's published acceptance (block 8). */
static const published_mean mimo_published[] = {{"coding", 6.30}, {"math", 5.56}, {"agent", 4.29}};
/* The DFlash paper's Qwen3-8B means at block 16. */
static const published_mean paper_qwen3_8b[] = {
    {"gsm8k", 6.54}, {"math500", 7.87}, {"humaneval", 6.50}, {"mbpp", 5.95}, {"mtbench", 4.24}};

const char *mimo_accept_profiles_help(void)
{
    return "mimo-published[:coding|math|agent] (block 8), dflash-paper-qwen3-8b[:gsm8k|math500|humaneval|mbpp|mtbench] "
           "(block 16), mean:TAU, hist:P1,...,PB";
}

/* E[tau] at block B for per-position acceptance alpha. */
static double mean_tau_of_alpha(double alpha, int block)
{
    double s = 1.0, a = 1.0;
    for (int i = 1; i < block; i++) {
        a *= alpha;
        s += a;
    }
    return s;
}

double mimo_alpha_for_mean_tau(double mean_tau, int block)
{
    if (block < 2 || mean_tau <= 1.0)
        return 0.0;
    if (mean_tau >= block)
        return 1.0;
    double lo = 0.0, hi = 1.0;   /* E[tau] is increasing in alpha: bisect */
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (lo + hi);
        if (mean_tau_of_alpha(mid, block) < mean_tau)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

static int from_mean(const char *name, double mean, int native_block, int block, mimo_accept_profile *out, mimo_error *err)
{
    if (!(mean >= 1.0) || mean > native_block)
        return mimo_fail(err, "accept profile '%s': mean tau %g outside [1, %d]", name, mean, native_block);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    out->block = block;
    out->has_histogram = false;
    out->alpha = mimo_alpha_for_mean_tau(mean, native_block);
    out->mean_tau = mean_tau_of_alpha(out->alpha, block);
    return 0;
}

static int from_table(const char *profile, const published_mean *table, int n, int native_block, const char *suite,
                      int block, mimo_accept_profile *out, mimo_error *err)
{
    if (!suite || !*suite)
        return mimo_fail(err, "accept profile '%s' needs a suite (%s)", profile, mimo_accept_profiles_help());
    for (int i = 0; i < n; i++) {
        if (!strcmp(table[i].suite, suite)) {
            char name[64];
            snprintf(name, sizeof name, "%s:%s", profile, suite);
            return from_mean(name, table[i].mean_tau, native_block, block, out, err);
        }
    }
    return mimo_fail(err, "accept profile '%s' has no suite '%s' (%s)", profile, suite, mimo_accept_profiles_help());
}

int mimo_accept_profile_parse(const char *spec, const char *suite, int block, mimo_accept_profile *out, mimo_error *err)
{
    if (!spec)
        return mimo_fail(err, "accept profile: empty");
    if (block < 2 || block > MIMO_DFLASH_MAX_BLOCK)
        return mimo_fail(err, "accept profile '%s': block %d out of range [2, %d]", spec, block, MIMO_DFLASH_MAX_BLOCK);
    /* "NAME:SUITE" is the same as NAME with suite SUITE. */
    char base[64];
    const char *colon = strchr(spec, ':');
    size_t blen = colon ? (size_t)(colon - spec) : strlen(spec);
    if (blen >= sizeof base)
        return mimo_fail(err, "accept profile '%s': unknown (%s)", spec, mimo_accept_profiles_help());
    memcpy(base, spec, blen);
    base[blen] = '\0';
    const char *arg = colon ? colon + 1 : NULL;

    if (!strcmp(base, "mimo-published"))
        return from_table(base, mimo_published, 3, 8, arg ? arg : suite, block, out, err);
    if (!strcmp(base, "dflash-paper-qwen3-8b"))
        return from_table(base, paper_qwen3_8b, 5, 16, arg ? arg : suite, block, out, err);
    if (!strcmp(base, "mean")) {
        char *end;
        double mean = arg ? strtod(arg, &end) : NAN;
        if (!arg || end == arg || *end || !isfinite(mean))
            return mimo_fail(err, "accept profile '%s': expected mean:TAU with a number", spec);
        char name[64];
        snprintf(name, sizeof name, "mean:%g", mean);
        return from_mean(name, mean, block, block, out, err);
    }
    if (!strcmp(base, "hist")) {
        if (!arg)
            return mimo_fail(err, "accept profile '%s': expected hist:P1,...,P%d", spec, block);
        memset(out, 0, sizeof *out);
        int count = 0;
        double sum = 0;
        const char *p = arg;
        while (*p) {
            char *end;
            double v = strtod(p, &end);
            if (end == p || !isfinite(v) || v < 0)
                return mimo_fail(err, "accept profile '%s': histogram entry %d is not a number >= 0", spec, count + 1);
            if (count >= block)
                return mimo_fail(err, "accept profile '%s': more than %d entries for block %d", spec, block, block);
            out->histogram[++count] = v;
            sum += v;
            if (*end == ',')
                end++;
            else if (*end)
                return mimo_fail(err, "accept profile '%s': bad separator after entry %d", spec, count);
            p = end;
        }
        if (count != block)
            return mimo_fail(err, "accept profile '%s': %d entries, block %d needs exactly %d (P(tau=1..%d))", spec, count,
                             block, block, block);
        if (!(sum > 0))
            return mimo_fail(err, "accept profile '%s': histogram has no mass", spec);
        out->mean_tau = 0;
        for (int t = 1; t <= block; t++) {
            out->histogram[t] /= sum;
            out->mean_tau += t * out->histogram[t];
        }
        snprintf(out->name, sizeof out->name, "hist:%.50s", arg);
        out->block = block;
        out->has_histogram = true;
        out->alpha = 0;
        return 0;
    }
    return mimo_fail(err, "accept profile '%s': unknown (%s)", spec, mimo_accept_profiles_help());
}

void mimo_accept_profile_tau_law(const mimo_accept_profile *p, int block, double *probs)
{
    memset(probs, 0, (size_t)(block + 1) * sizeof *probs);
    if (p->has_histogram) {
        for (int t = 1; t <= MIMO_DFLASH_MAX_BLOCK; t++)
            probs[t < block ? t : block] += p->histogram[t];   /* a shorter block folds the tail into tau = B */
        return;
    }
    double a = 1.0;   /* alpha^(t-1) */
    for (int t = 1; t < block; t++) {
        probs[t] = a * (1.0 - p->alpha);
        a *= p->alpha;
    }
    probs[block] = a;
}

int mimo_accept_profile_draw(const mimo_accept_profile *p, int block, mimo_rng *rng)
{
    if (block < 2)
        return 0;
    if (!p->has_histogram) {
        /* Each further position is accepted with probability alpha, given the previous one was. */
        int accepted = 0;
        while (accepted < block - 1 && mimo_rng_uniform(rng) < p->alpha)
            accepted++;
        return accepted;
    }
    double law[MIMO_DFLASH_MAX_BLOCK + 1];
    mimo_accept_profile_tau_law(p, block, law);
    double u = mimo_rng_uniform(rng), c = 0;
    for (int t = 1; t <= block; t++) {
        c += law[t];
        if (u < c)
            return t - 1;
    }
    return block - 1;
}
