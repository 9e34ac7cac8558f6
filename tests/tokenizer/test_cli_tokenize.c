/* mimo-bench tokenize: encode to a JSON array, decode back, usage errors, --bench output. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

static char tokenizer_path[4096];

static void need_tokenizer(void)
{
    const char *shared = mimo_test_shared_dir();
    if (!shared)
        cr_skip_test("../shared is absent");
    snprintf(tokenizer_path, sizeof tokenizer_path, "%s/tokenizers/qwen3/tokenizer.json", shared);
}

Test(cli_tokenize, encode_prints_a_json_array_and_decode_reverses_it)
{
    need_tokenizer();
    char args[8192], *out;
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' --text 'Hello, world!<|im_end|>'", tokenizer_path);
    cr_assert_eq(mimo_test_run_bench(args, &out), 0, "%s", out);
    cr_assert_str_eq(out, "[9707, 11, 1879, 0, 151645]\n");
    free(out);
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' --decode --text '[9707, 11, 1879, 0, 151645]'", tokenizer_path);
    cr_assert_eq(mimo_test_run_bench(args, &out), 0, "%s", out);
    cr_assert_str_eq(out, "Hello, world!<|im_end|>");
    free(out);
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' --decode --text '9707, 11,1879'", tokenizer_path);
    cr_assert_eq(mimo_test_run_bench(args, &out), 0, "%s", out);
    cr_assert_str_eq(out, "Hello, world");
    free(out);
}

Test(cli_tokenize, text_file_and_directory_tokenizer)
{
    need_tokenizer();
    char *dir = mimo_test_tmpdir();
    char path[4200], args[16384], *out;
    snprintf(path, sizeof path, "%s/in.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("def f():\n    return 1\n", f);
    fclose(f);
    char tok_dir[4096];
    snprintf(tok_dir, sizeof tok_dir, "%s", tokenizer_path);
    *strrchr(tok_dir, '/') = '\0';
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' --text-file '%s'", tok_dir, path);
    cr_assert_eq(mimo_test_run_bench(args, &out), 0, "%s", out);
    json_error_t jerr;
    json_t *ids = json_loads(out, 0, &jerr);
    cr_assert(json_is_array(ids), "not a JSON array: %s", out);
    cr_assert_gt(json_array_size(ids), 3);
    json_decref(ids);
    free(out);
    mimo_test_rmtree(dir);
    free(dir);
}

Test(cli_tokenize, usage_and_input_errors_use_the_documented_exit_codes)
{
    need_tokenizer();
    char args[8192], *out;
    cr_assert_eq(mimo_test_run_bench("tokenize --text hi", &out), 2, "%s", out);
    cr_assert(strstr(out, "--tokenizer"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "tokenize --tokenizer '%s'", tokenizer_path);
    cr_assert_eq(mimo_test_run_bench(args, &out), 2, "%s", out);
    free(out);
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' --text a --text-file b", tokenizer_path);
    cr_assert_eq(mimo_test_run_bench(args, &out), 2, "%s", out);
    free(out);
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' --decode --text '[1, x]'", tokenizer_path);
    cr_assert_eq(mimo_test_run_bench(args, &out), 2, "%s", out);
    free(out);
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' --decode --text '[99999999]'", tokenizer_path);
    cr_assert_eq(mimo_test_run_bench(args, &out), 3, "%s", out);
    cr_assert(strstr(out, "99999999"), "%s", out);
    free(out);
    cr_assert_eq(mimo_test_run_bench("tokenize --tokenizer /nonexistent/tokenizer.json --text hi", &out), 3, "%s", out);
    cr_assert(strstr(out, "/nonexistent/tokenizer.json"), "%s", out);
    free(out);
    cr_assert_eq(mimo_test_run_bench("tokenize --bogus", &out), 2, "%s", out);
    free(out);
}

Test(cli_tokenize, bench_writes_speed_json)
{
    need_tokenizer();
    char *dir = mimo_test_tmpdir();
    char out_path[4200], args[16384], *out;
    snprintf(out_path, sizeof out_path, "%s/sub/encode_speed.json", dir);
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' --bench --min-mb 0.5 --out '%s'", tokenizer_path, out_path);
    cr_assert_eq(mimo_test_run_bench(args, &out), 0, "%s", out);
    free(out);
    json_error_t jerr;
    json_t *doc = json_load_file(out_path, 0, &jerr);
    cr_assert_not_null(doc, "%s", jerr.text);
    cr_assert_gt(json_real_value(json_object_get(doc, "mb_per_s")), 0.0);
    cr_assert(json_is_string(json_object_get(doc, "cpu")));
    cr_assert(json_is_string(json_object_get(doc, "commit")));
    cr_assert_gt(json_integer_value(json_object_get(doc, "corpus_tokens")), 1000);
    json_decref(doc);
    mimo_test_rmtree(dir);
    free(dir);
}
