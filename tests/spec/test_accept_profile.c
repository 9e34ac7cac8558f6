/* Forced-acceptance profiles (DFLASH.md): alpha from a mean tau, the truncated-geometric law, draws
 * that reproduce the profile, and the spec parser. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "mimo/generate.h"
#include "spec_stats.h"

Test(accept_profile, alpha_for_the_published_means)
{
    /* DFLASH.md: 6.30 -> 0.9304, 5.56 -> 0.8927, 4.29 -> 0.8102 at B = 8 (to 4 decimals) */
    cr_expect_float_eq(round(mimo_alpha_for_mean_tau(6.30, 8) * 1e4) / 1e4, 0.9304, 1e-9);
    cr_expect_float_eq(round(mimo_alpha_for_mean_tau(5.56, 8) * 1e4) / 1e4, 0.8927, 1e-9);
    cr_expect_float_eq(round(mimo_alpha_for_mean_tau(4.29, 8) * 1e4) / 1e4, 0.8102, 1e-9);
    /* E[tau] = 1 + sum alpha^i holds at the solution, and the ends clamp */
    double a = mimo_alpha_for_mean_tau(7.87, 16), s = 1, p = 1;
    for (int i = 1; i < 16; i++)
        s += (p *= a);
    cr_expect_float_eq(s, 7.87, 1e-9);
    cr_expect_float_eq(mimo_alpha_for_mean_tau(1.0, 8), 0.0, 0);
    cr_expect_float_eq(mimo_alpha_for_mean_tau(8.0, 8), 1.0, 0);
}

Test(accept_profile, truncated_geometric_law)
{
    mimo_accept_profile prof;
    mimo_error err = {{0}};
    const char *suites[3] = {"coding", "math", "agent"};
    const double means[3] = {6.30, 5.56, 4.29};
    for (int s = 0; s < 3; s++) {
        cr_assert_eq(mimo_accept_profile_parse("mimo-published", suites[s], 8, &prof, &err), 0, "%s", err.msg);
        cr_expect(!prof.has_histogram);
        cr_expect_float_eq(prof.mean_tau, means[s], 1e-9);
        double law[9], total = 0, mean = 0;
        mimo_accept_profile_tau_law(&prof, 8, law);
        for (int t = 1; t <= 8; t++) {
            double expected = t < 8 ? pow(prof.alpha, t - 1) * (1 - prof.alpha) : pow(prof.alpha, 7);
            cr_expect_float_eq(law[t], expected, 1e-12, "P(tau=%d)", t);
            total += law[t];
            mean += t * law[t];
        }
        cr_expect_float_eq(total, 1.0, 1e-12);
        cr_expect_float_eq(mean, means[s], 1e-9);
    }
}

/* Draws of one profile: mean within 2% and the histogram follows the law (chi-square). */
static void check_draws(const mimo_accept_profile *prof, int block, int rounds, uint64_t seed)
{
    mimo_rng rng;
    mimo_rng_init(&rng, seed);
    long counts[MIMO_DFLASH_MAX_BLOCK + 1] = {0};
    double sum = 0;
    for (int r = 0; r < rounds; r++) {
        int a = mimo_accept_profile_draw(prof, block, &rng);
        cr_assert(a >= 0 && a <= block - 1);
        counts[a + 1]++;
        sum += a + 1;
    }
    double law[MIMO_DFLASH_MAX_BLOCK + 1];
    mimo_accept_profile_tau_law(prof, block, law);
    double mean = 0;
    for (int t = 1; t <= block; t++)
        mean += t * law[t];
    cr_expect(fabs(sum / rounds - mean) <= 0.02 * mean, "%s: mean tau %.4f vs %.4f", prof->name, sum / rounds, mean);
    double stat;
    int dof;
    double p = spec_chi_square_p(counts + 1, law + 1, block, rounds, &stat, &dof);
    cr_expect(p > 0.001, "%s: tau histogram off the law (chi2 %.1f, dof %d, p %.2g)", prof->name, stat, dof, p);
}

Test(accept_profile, draws_reproduce_every_builtin_profile)
{
    mimo_error err = {{0}};
    mimo_accept_profile prof;
    const char *mimo_suites[] = {"coding", "math", "agent"};
    for (int s = 0; s < 3; s++) {
        cr_assert_eq(mimo_accept_profile_parse("mimo-published", mimo_suites[s], 8, &prof, &err), 0, "%s", err.msg);
        check_draws(&prof, 8, 50000, 100 + s);
    }
    const char *paper_suites[] = {"gsm8k", "math500", "humaneval", "mbpp", "mtbench"};
    const double paper_means[] = {6.54, 7.87, 6.50, 5.95, 4.24};
    for (int s = 0; s < 5; s++) {
        cr_assert_eq(mimo_accept_profile_parse("dflash-paper-qwen3-8b", paper_suites[s], 16, &prof, &err), 0, "%s", err.msg);
        cr_expect_float_eq(prof.mean_tau, paper_means[s], 1e-9);
        check_draws(&prof, 16, 50000, 200 + s);
    }
    cr_assert_eq(mimo_accept_profile_parse("hist:0.1,0.2,0.3,0.4", NULL, 4, &prof, &err), 0, "%s", err.msg);
    cr_expect(prof.has_histogram);
    cr_expect_float_eq(prof.mean_tau, 3.0, 1e-12);
    check_draws(&prof, 4, 50000, 300);
    cr_assert_eq(mimo_accept_profile_parse("mean:3.5", NULL, 6, &prof, &err), 0, "%s", err.msg);
    cr_expect_float_eq(prof.mean_tau, 3.5, 1e-9);
    check_draws(&prof, 6, 50000, 400);
}

Test(accept_profile, a_mean_at_another_block_keeps_alpha)
{
    mimo_error err = {{0}};
    mimo_accept_profile at8, at4;
    cr_assert_eq(mimo_accept_profile_parse("mimo-published:coding", NULL, 8, &at8, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_accept_profile_parse("mimo-published:coding", NULL, 4, &at4, &err), 0, "%s", err.msg);
    cr_expect_float_eq(at4.alpha, at8.alpha, 1e-12);
    double a = at8.alpha;
    cr_expect_float_eq(at4.mean_tau, 1 + a + a * a + a * a * a, 1e-9);
    cr_expect_str_eq(at4.name, "mimo-published:coding");
}

Test(accept_profile, parse_errors_are_clear)
{
    mimo_error err = {{0}};
    mimo_accept_profile prof;
    cr_expect_eq(mimo_accept_profile_parse("mimo-published", NULL, 8, &prof, &err), -1);
    cr_expect(strstr(err.msg, "suite") != NULL, "%s", err.msg);
    cr_expect_eq(mimo_accept_profile_parse("mimo-published", "poetry", 8, &prof, &err), -1);
    cr_expect(strstr(err.msg, "poetry") != NULL, "%s", err.msg);
    cr_expect_eq(mimo_accept_profile_parse("nonsense", NULL, 8, &prof, &err), -1);
    cr_expect(strstr(err.msg, "nonsense") != NULL, "%s", err.msg);
    cr_expect_eq(mimo_accept_profile_parse("mean:x", NULL, 8, &prof, &err), -1);
    cr_expect_eq(mimo_accept_profile_parse("mean:9", NULL, 8, &prof, &err), -1);
    cr_expect_eq(mimo_accept_profile_parse("mean:0.5", NULL, 8, &prof, &err), -1);
    cr_expect_eq(mimo_accept_profile_parse("hist:1,2,3", NULL, 4, &prof, &err), -1);
    cr_expect(strstr(err.msg, "exactly 4") != NULL, "%s", err.msg);
    cr_expect_eq(mimo_accept_profile_parse("hist:1,-2,3,4", NULL, 4, &prof, &err), -1);
    cr_expect_eq(mimo_accept_profile_parse("hist:0,0,0,0", NULL, 4, &prof, &err), -1);
    cr_expect_eq(mimo_accept_profile_parse("mean:3", NULL, 1, &prof, &err), -1);
    cr_expect_eq(mimo_accept_profile_parse("mean:3", NULL, 17, &prof, &err), -1);
}
