/* The figures the reproduction is measured against (DFLASH.md "Acceptance conventions"): the MiMo seed's
 * mean tau per suite at block 8 and the truncated-geometric tau histograms they imply under a constant
 * per-position acceptance probability. */
#include "report.h"

#include <math.h>
#include <string.h>

double mimo_published_tau(const char *suite)
{
    if (!suite)
        return NAN;
    if (!strcmp(suite, "coding"))
        return 6.30;
    if (!strcmp(suite, "math"))
        return 5.56;
    if (!strcmp(suite, "agent"))
        return 4.29;
    return NAN;
}

static double expected_tau(double alpha, int block)
{
    double sum = 1.0, term = 1.0;
    for (int i = 1; i < block; i++) {
        term *= alpha;
        sum += term;
    }
    return sum;
}

double mimo_alpha_for_mean(double mean_tau, int block)
{
    if (!(block >= 1) || !isfinite(mean_tau) || mean_tau < 1.0 || mean_tau > block)
        return NAN;
    /* E[tau] grows monotonically with alpha on [0, 1]: bisection. */
    double lo = 0.0, hi = 1.0;
    for (int it = 0; it < 100; it++) {
        double mid = 0.5 * (lo + hi);
        if (expected_tau(mid, block) < mean_tau)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

void mimo_truncated_geometric(double alpha, int block, double *p)
{
    /* tau = t means drafts 1..t-1 accepted and draft t rejected; tau = block means all accepted. */
    double reach = 1.0;   /* alpha^(t-1) */
    for (int t = 1; t <= block; t++) {
        p[t - 1] = t < block ? reach * (1.0 - alpha) : reach;
        reach *= alpha;
    }
}
