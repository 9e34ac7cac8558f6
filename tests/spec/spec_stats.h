/* Statistics for the losslessness tests: Pearson's chi-square goodness of fit with its p-value
 * (regularised upper incomplete gamma, series / continued fraction). Test-only. */
#ifndef MIMO_TEST_SPEC_STATS_H
#define MIMO_TEST_SPEC_STATS_H

#include <math.h>
#include <stdlib.h>

/* Q(a, x) = Gamma(a, x) / Gamma(a). */
static inline double spec_gamma_q(double a, double x)
{
    if (x <= 0)
        return 1.0;
    double log_front = -x + a * log(x) - lgamma(a);
    if (x < a + 1) {
        double ap = a, del = 1.0 / a, sum = del;
        for (int n = 0; n < 10000; n++) {
            ap += 1;
            del *= x / ap;
            sum += del;
            if (fabs(del) < fabs(sum) * 1e-15)
                break;
        }
        return 1.0 - sum * exp(log_front);
    }
    const double tiny = 1e-300;
    double b = x + 1 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
    for (int i = 1; i < 10000; i++) {
        double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        if (fabs(d) < tiny)
            d = tiny;
        c = b + an / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < 1e-15)
            break;
    }
    return exp(log_front) * h;
}

/* p-value of observed counts[k] against probabilities probs[k] (k < n) over `total` draws. Bins
 * expecting fewer than 5 draws are pooled. A draw in a bin of probability 0 gives p = 0. */
static inline double spec_chi_square_p(const long *counts, const double *probs, int n, long total, double *stat_out,
                                       int *dof_out)
{
    double stat = 0, pooled_o = 0, pooled_e = 0;
    int bins = 0;
    for (int k = 0; k < n; k++) {
        double e = probs[k] * (double)total;
        if (probs[k] <= 0) {
            if (counts[k] > 0)
                return 0.0;
            continue;
        }
        if (e < 5) {
            pooled_o += counts[k];
            pooled_e += e;
            continue;
        }
        stat += (counts[k] - e) * (counts[k] - e) / e;
        bins++;
    }
    if (pooled_e > 0) {
        stat += (pooled_o - pooled_e) * (pooled_o - pooled_e) / pooled_e;
        bins++;
    }
    if (stat_out)
        *stat_out = stat;
    if (dof_out)
        *dof_out = bins - 1;
    if (bins < 2)
        return 1.0;
    return spec_gamma_q((bins - 1) / 2.0, stat / 2.0);
}

#endif
