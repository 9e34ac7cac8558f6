/* Harness metrics: see metrics.h for the definitions. */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double mimo_percentile_sorted(const double *sorted, int n, double p)
{
    if (n <= 0)
        return NAN;
    if (p <= 0)
        return sorted[0];
    if (p >= 100)
        return sorted[n - 1];
    double h = (double)(n - 1) * p / 100.0;
    int lo = (int)floor(h);
    int hi = lo + 1 < n ? lo + 1 : n - 1;
    return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

void mimo_stats_compute(const double *values, int n, mimo_stats *out)
{
    out->n = 0;
    out->mean = out->median = out->p5 = out->p95 = out->min = out->max = NAN;
    if (n <= 0)
        return;
    double *v = mimo_xmalloc((size_t)n * sizeof *v);
    int m = 0;
    double sum = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(values[i])) {
            v[m++] = values[i];
            sum += values[i];
        }
    if (m > 0) {
        qsort(v, (size_t)m, sizeof *v, compare_doubles);
        out->n = m;
        out->mean = sum / m;
        out->median = mimo_percentile_sorted(v, m, 50);
        out->p5 = mimo_percentile_sorted(v, m, 5);
        out->p95 = mimo_percentile_sorted(v, m, 95);
        out->min = v[0];
        out->max = v[m - 1];
    }
    free(v);
}

double mimo_request_tpot_ms(const mimo_request_record *r)
{
    if (r->output_tokens < 2)
        return NAN;
    return (r->e2e_ms - r->ttft_ms) / (r->output_tokens - 1);
}

double mimo_request_decode_tps(const mimo_request_record *r)
{
    if (r->output_tokens < 2 || !(r->decode_ms > 0))
        return NAN;
    return (r->output_tokens - 1) / (r->decode_ms / 1000.0);
}

int mimo_suite_metrics_compute(const mimo_request_record *reqs, int n, int block,
                               mimo_suite_metrics *out, mimo_error *err)
{
    memset(out, 0, sizeof *out);
    out->requests = n;
    out->block = block < 1 ? 1 : block;
    if (out->block > MIMO_METRICS_MAX_TAU)
        return mimo_fail(err, "metrics: block %d exceeds the maximum %d", block, MIMO_METRICS_MAX_TAU);

    long total_rounds = 0;
    for (int r = 0; r < n; r++)
        total_rounds += reqs[r].n_rounds > 0 ? reqs[r].n_rounds : 0;
    double *taus = mimo_xmalloc((size_t)(total_rounds > 0 ? total_rounds : 1) * sizeof *taus);
    double *round_ms = mimo_xmalloc((size_t)(total_rounds > 0 ? total_rounds : 1) * sizeof *round_ms);

    for (int r = 0; r < n; r++) {
        for (int k = 0; k < reqs[r].n_rounds; k++) {
            const mimo_round_record *rd = &reqs[r].rounds[k];
            if (rd->drafted < 0 || rd->accepted < 0 || rd->emitted < 0 || rd->accepted > rd->drafted) {
                free(taus);
                free(round_ms);
                return mimo_fail(err, "metrics: request %s round %d is inconsistent (drafted %d, accepted %d, emitted %d)",
                                 reqs[r].id ? reqs[r].id : "?", k, rd->drafted, rd->accepted, rd->emitted);
            }
            int tau = rd->accepted + 1;
            if (tau > MIMO_METRICS_MAX_TAU || rd->drafted >= MIMO_METRICS_MAX_TAU) {
                free(taus);
                free(round_ms);
                return mimo_fail(err, "metrics: request %s round %d: tau %d beyond the maximum %d",
                                 reqs[r].id ? reqs[r].id : "?", k, tau, MIMO_METRICS_MAX_TAU);
            }
            if (tau > out->block)
                out->block = tau;
            if (rd->drafted + 1 > out->block)
                out->block = rd->drafted + 1;
            round_ms[out->rounds] = rd->t_total_us / 1000.0;
            taus[out->rounds++] = tau;
            out->drafted += rd->drafted;
            out->accepted += rd->accepted;
            out->emitted += rd->emitted;
            out->tau_histogram[tau - 1]++;
            /* position i (1-based) is reached when it was drafted and i-1 drafts were accepted */
            for (int i = 1; i <= rd->drafted && i - 1 <= rd->accepted; i++) {
                out->position_reached[i - 1]++;
                if (rd->accepted >= i)
                    out->position_accepted[i - 1]++;
            }
        }
    }
    out->tau_mean = out->rounds ? (double)out->emitted / (double)out->rounds : NAN;
    if (out->rounds) {
        qsort(taus, (size_t)out->rounds, sizeof *taus, compare_doubles);
        out->tau_median = mimo_percentile_sorted(taus, (int)out->rounds, 50);
    } else {
        out->tau_median = NAN;
    }
    free(taus);
    mimo_stats_compute(round_ms, (int)out->rounds, &out->round_ms);
    free(round_ms);
    out->draft_acceptance_rate = out->drafted ? (double)out->accepted / (double)out->drafted : NAN;
    out->n_positions = out->drafted ? out->block - 1 : 0;
    for (int i = 0; i < out->n_positions; i++)
        out->per_position_acceptance[i] = out->position_reached[i]
            ? (double)out->position_accepted[i] / (double)out->position_reached[i] : NAN;

    double *tps = mimo_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *tps);
    double *ttft = mimo_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *ttft);
    double *tpot = mimo_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *tpot);
    double tokens = 0, seconds = 0;
    for (int r = 0; r < n; r++) {
        tps[r] = mimo_request_decode_tps(&reqs[r]);
        ttft[r] = reqs[r].ttft_ms;
        tpot[r] = mimo_request_tpot_ms(&reqs[r]);
        if (isfinite(tps[r])) {
            tokens += reqs[r].output_tokens - 1;
            seconds += reqs[r].decode_ms / 1000.0;
        }
    }
    mimo_stats_compute(tps, n, &out->decode_tps);
    mimo_stats_compute(ttft, n, &out->ttft_ms);
    mimo_stats_compute(tpot, n, &out->tpot_ms);
    out->decode_tps_ratio_of_sums = seconds > 0 ? tokens / seconds : NAN;
    free(tps);
    free(ttft);
    free(tpot);
    return 0;
}
