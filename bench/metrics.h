/* The harness's measurements, defined once (HARNESS.md "Definitions", DFLASH.md "Acceptance
 * conventions"). Plain functions over arrays of round records, so every number in a results file can
 * be checked by hand.
 *
 * Per request:
 *   ttft_ms    = prefill + first token
 *   tpot_ms    = (e2e_ms - ttft_ms) / (output_tokens - 1)            (NaN when output_tokens < 2)
 *   decode_tps = (output_tokens - 1) / (decode_ms / 1000)            (NaN when undefined)
 * Per suite:
 *   tau.mean   = sum(emitted) / rounds
 *   tau of one round = accepted + 1 (the bonus counts); tau.median and tau.histogram[t-1] (t = 1..B)
 *                 are over these per-round values
 *   draft_acceptance_rate = sum(accepted) / sum(drafted)              (NaN when nothing was drafted)
 *   per_position_acceptance[i-1] = P(draft i accepted | draft i-1 accepted), i = 1..B-1, counted over
 *                 the rounds that drafted position i
 *   stats {mean, median, p5, p95, min, max} over the finite per-request values; percentiles by
 *                 linear interpolation between closest ranks (NumPy's default, Hyndman-Fan type 7)
 *   decode_tps.ratio_of_sums = sum(output_tokens - 1) / sum(decode seconds) (Spec-Bench's convention)
 *   round_ms   = stats of t_total_us / 1000 over every round (one draft + verify; itl per emitted chunk)
 */
#ifndef MIMO_BENCH_METRICS_H
#define MIMO_BENCH_METRICS_H

#include <stdbool.h>
#include "mimo/generate.h"

/* Summary statistics of a sample; n counts the finite values used. All NaN when n == 0. */
typedef struct {
    int    n;
    double mean, median, p5, p95, min, max;
} mimo_stats;

/* p in [0, 100] of sorted[0..n-1] (ascending), linear interpolation: rank h = (n-1) p / 100. */
double mimo_percentile_sorted(const double *sorted, int n, double p);
/* Non-finite values are skipped (counted out of n). */
void   mimo_stats_compute(const double *values, int n, mimo_stats *out);

/* One request as the harness measured it. */
typedef struct {
    const char *suite;
    const char *id;
    int    prompt_tokens;
    int    output_tokens;
    double ttft_ms, decode_ms, e2e_ms;
    const mimo_round_record *rounds;
    int    n_rounds;
    const char *stop_reason;
} mimo_request_record;

double mimo_request_tpot_ms(const mimo_request_record *r);
double mimo_request_decode_tps(const mimo_request_record *r);

#define MIMO_METRICS_MAX_TAU (MIMO_DFLASH_MAX_BLOCK)

typedef struct {
    int    requests;
    long   rounds, drafted, accepted, emitted;
    int    block;                                /* histogram covers tau 1..block */
    double tau_mean, tau_median;
    long   tau_histogram[MIMO_METRICS_MAX_TAU];  /* [t-1] = rounds with tau == t */
    double draft_acceptance_rate;
    int    n_positions;                          /* block - 1 (0 without DFlash) */
    double per_position_acceptance[MIMO_METRICS_MAX_TAU];
    long   position_reached[MIMO_METRICS_MAX_TAU];   /* rounds that drafted position i with i-1 accepted */
    long   position_accepted[MIMO_METRICS_MAX_TAU];
    mimo_stats decode_tps, ttft_ms, tpot_ms;
    mimo_stats round_ms;                         /* per round t_total (= the inter-chunk latency: a round emits one chunk) */
    double decode_tps_ratio_of_sums;
} mimo_suite_metrics;

/* Aggregates reqs[0..n-1] (all of one suite). block: the DFlash block size (1 without DFlash); the
 * histogram grows to cover any larger tau seen. Returns -1 (err) when a round is inconsistent
 * (accepted > drafted, negative counts, tau beyond MIMO_METRICS_MAX_TAU). */
int mimo_suite_metrics_compute(const mimo_request_record *reqs, int n, int block,
                               mimo_suite_metrics *out, mimo_error *err);

#endif
