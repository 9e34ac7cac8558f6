/* `mimo-bench generate` end to end on the tiny preset: DFlash on and off give the same greedy
 * tokens, every round's tau is printed, --json has HARNESS.md's fields, forced acceptance is
 * labelled as such and never as lossless, and bad flags exit with a usage error. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "support.h"

static json_t *run_json(const char *args)
{
    char *out = NULL;
    int rc = mimo_test_run_bench(args, &out);
    cr_assert_eq(rc, 0, "generate %s failed:\n%s", args, out ? out : "");
    json_error_t jerr;
    json_t *root = json_loads(out, 0, &jerr);
    cr_assert_not_null(root, "not JSON (%s): %s", jerr.text, out);
    free(out);
    return root;
}

Test(cmd_generate, dflash_on_and_off_agree_and_json_has_the_contract_fields, .timeout = 120)
{
    json_t *on = run_json("generate --preset tiny --prompt-ids 5,6,7,8,9,10,11,12,13,14 --max-new 12 --dflash on --block 5 --json");
    json_t *off = run_json("generate --preset tiny --prompt-ids 5,6,7,8,9,10,11,12,13,14 --max-new 12 --dflash off --json");
    const char *fields[] = {"prompt_ids", "output_ids", "rounds", "acceptance", "ttft_ms", "decode_tps"};
    for (size_t i = 0; i < 6; i++) {
        cr_expect_not_null(json_object_get(on, fields[i]), "missing %s", fields[i]);
        cr_expect_not_null(json_object_get(off, fields[i]), "missing %s", fields[i]);
    }
    cr_expect(json_equal(json_object_get(on, "output_ids"), json_object_get(off, "output_ids")), "greedy DFlash != AR");
    cr_expect_eq(json_array_size(json_object_get(on, "output_ids")), 12);
    json_t *rounds = json_object_get(on, "rounds");
    size_t emitted = 1;
    for (size_t r = 0; r < json_array_size(rounds); r++) {
        json_t *rr = json_array_get(rounds, r);
        cr_expect_eq(json_integer_value(json_object_get(rr, "drafted")), 4);
        emitted += (size_t)json_integer_value(json_object_get(rr, "emitted"));
    }
    cr_expect_eq(emitted, 12);
    json_t *acc = json_object_get(on, "acceptance");
    cr_expect_str_eq(json_string_value(json_object_get(acc, "mode")), "measured");
    cr_expect(json_is_true(json_object_get(acc, "lossless")));
    json_decref(on);
    json_decref(off);
}

Test(cmd_generate, forced_acceptance_is_labelled, .timeout = 120)
{
    json_t *j = run_json("generate --preset tiny --prompt-ids 1,2,3 --max-new 20 --block 8 "
                         "--accept forced:mimo-published:math --json");
    json_t *acc = json_object_get(j, "acceptance");
    cr_expect_str_eq(json_string_value(json_object_get(acc, "mode")), "forced");
    cr_expect_str_eq(json_string_value(json_object_get(acc, "profile")), "mimo-published:math");
    cr_expect(json_is_false(json_object_get(acc, "lossless")));
    json_decref(j);

    char *out = NULL;
    cr_assert_eq(mimo_test_run_bench("generate --preset tiny --prompt-ids 1,2,3 --max-new 20 --accept forced:mean:3.5", &out), 0,
                 "%s", out);
    cr_expect(strstr(out, "acceptance: forced (profile mean:3.5)") != NULL, "%s", out);
    cr_expect(strstr(out, "not lossless") != NULL, "%s", out);
    cr_expect(strstr(out, "tau") != NULL, "every round's tau is printed: %s", out);
    free(out);
}

Test(cmd_generate, bad_flags_are_usage_errors)
{
    const char *bad[] = {
        "generate --prompt-ids 1,2",                                      /* no model */
        "generate --preset tiny",                                         /* no prompt */
        "generate --preset tiny --prompt-ids 1,x",
        "generate --preset tiny --prompt-ids 1 --block 17",
        "generate --preset tiny --prompt-ids 1 --block 1",
        "generate --preset tiny --prompt-ids 1 --dflash maybe",
        "generate --preset tiny --prompt-ids 1 --accept forced:nonsense",
        "generate --preset tiny --prompt-ids 1 --accept sometimes",
        "generate --preset tiny --prompt-ids 1 --dflash off --block 4",
        "generate --preset nosuch --prompt-ids 1",
        "generate --preset tiny --prompt-ids 1 --top-p 0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL;
        int rc = mimo_test_run_bench(bad[i], &out);
        cr_expect_eq(rc, MIMO_EXIT_USAGE, "'%s' exited %d: %s", bad[i], rc, out);
        cr_expect(strstr(out, "usage:") != NULL, "'%s' printed no usage: %s", bad[i], out);
        free(out);
    }
    char *out = NULL;
    int rc = mimo_test_run_bench("generate --model /nonexistent/model --prompt-ids 1", &out);
    cr_expect_eq(rc, MIMO_EXIT_BAD_INPUT, "%s", out);
    cr_expect(strstr(out, "/nonexistent/model") != NULL, "%s", out);
    free(out);
}
