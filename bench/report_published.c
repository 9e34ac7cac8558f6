/* The figures the reproduction is measured against (DFLASH.md "Acceptance conventions"): the MiMo seed's
 * mean tau per suite at block 8 and the truncated-geometric tau histograms they imply under a constant
 * per-position acceptance probability. The numbers and the law live once, in the engine's forced-acceptance
 * profiles (engine/spec/accept_profile.c); the report only reads them. */
#include "report.h"

#include <math.h>
#include <string.h>

#include "mimo/generate.h"

double mimo_published_tau(const char *suite)
{
    mimo_accept_profile p;
    mimo_error err;
    if (!suite || mimo_accept_profile_parse("mimo-published", suite, MIMO_PUBLISHED_BLOCK, &p, &err))
        return NAN;
    return p.mean_tau;
}

double mimo_alpha_for_mean(double mean_tau, int block)
{
    if (!(block >= 2) || !isfinite(mean_tau) || mean_tau < 1.0 || mean_tau > block)
        return NAN;
    return mimo_alpha_for_mean_tau(mean_tau, block);
}

void mimo_truncated_geometric(double alpha, int block, double *p)
{
    mimo_accept_profile prof;
    double law[MIMO_DFLASH_MAX_BLOCK + 1];
    memset(&prof, 0, sizeof prof);
    prof.alpha = alpha;
    mimo_accept_profile_tau_law(&prof, block, law);
    for (int t = 1; t <= block; t++)
        p[t - 1] = law[t];
}
