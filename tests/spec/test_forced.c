/* Forced acceptance through the decode loop (tiny preset, synthetic drafter that never agrees):
 * the drafter and the verify pass still run every round and the accepted counts are the profile's. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "mimo/generate.h"
#include "spec_rig.h"

Test(forced, loop_draws_the_profile_every_round, .timeout = 240)
{
    /* The loop's accepted counts are exactly the profile's draws from the request's accept stream
     * (so the 50,000-draw statistics of test_accept_profile carry over: mean within 2%, law), and
     * the drafter and the verify pass still run in full. Over ~1,000 rounds the loop's own mean tau
     * is checked against 6.30 at 5% (a 2% check needs ~6,000 rounds: that is test_accept_profile's). */
    spec_rig rig;
    spec_rig_open(&rig, 8, true, 512);
    mimo_error err = {{0}};
    mimo_generate_options o;
    mimo_generate_options_default(&o);
    o.dflash = true;
    o.block = 8;
    o.accept = MIMO_ACCEPT_FORCED;
    o.max_new_tokens = 400;
    cr_assert_eq(mimo_accept_profile_parse("mimo-published", "coding", 8, &o.profile, &err), 0, "%s", err.msg);
    long rounds = 0;
    double tau_sum = 0;
    for (int req = 0; rounds < 1000; req++) {
        int32_t prompt[6];
        spec_random_prompt(prompt, 6, rig.cfg.vocab_size, 500 + req);
        o.seed = (uint64_t)req;
        mimo_generation g;
        cr_assert_eq(mimo_generate(rig.e, prompt, 6, &o, &g, NULL, &err), 0, "%s", err.msg);
        cr_assert_eq(g.n_tokens, 400);
        mimo_rng replay;
        mimo_generate_accept_rng_init(&replay, o.seed);
        for (int r = 0; r < g.n_rounds; r++) {
            const mimo_round_record *rr = &g.rounds[r];
            cr_assert_eq(rr->accepted, mimo_accept_profile_draw(&o.profile, 8, &replay), "round %d", r);
            cr_assert_eq(rr->drafted, 7);
            cr_assert(rr->t_draft_us > 0 && rr->t_verify_us > 0, "drafter and verify run in full");
            if (r + 1 == g.n_rounds)
                break;   /* the last round may be cut by max-new */
            cr_assert_eq(rr->emitted, rr->accepted + 1);
            tau_sum += rr->emitted;
            rounds++;
        }
        mimo_generation_free(&g);
    }
    double mean = tau_sum / rounds;
    cr_expect(fabs(mean - 6.30) <= 0.05 * 6.30, "mean tau %.3f over %ld rounds vs 6.30", mean, rounds);
    spec_rig_close(&rig);
}

Test(forced, a_histogram_profile_and_greedy_bonus)
{
    /* hist:0,0,1 at B=3 forces two accepted drafts every round; the bonus is still the target's. */
    spec_rig rig;
    spec_rig_open(&rig, 8, true, 256);
    mimo_error err = {{0}};
    mimo_generate_options o;
    mimo_generate_options_default(&o);
    o.dflash = true;
    o.block = 3;
    o.accept = MIMO_ACCEPT_FORCED;
    o.max_new_tokens = 31;
    cr_assert_eq(mimo_accept_profile_parse("hist:0,0,1", NULL, 3, &o.profile, &err), 0, "%s", err.msg);
    int32_t prompt[6];
    spec_random_prompt(prompt, 6, rig.cfg.vocab_size, 3);
    mimo_generation g;
    cr_assert_eq(mimo_generate(rig.e, prompt, 6, &o, &g, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(g.n_rounds, 10);
    for (int r = 0; r < g.n_rounds; r++) {
        cr_expect_eq(g.rounds[r].accepted, 2);
        cr_expect_eq(g.rounds[r].emitted, 3);
    }
    cr_expect_eq(mimo_engine_length(rig.e), 6 + 31 - 1);
    cr_expect_eq(mimo_engine_drafter_length(rig.e), 6 + 31 - 1);
    mimo_generation_free(&g);
    spec_rig_close(&rig);
}
