/* Bad input at the command line, per command: --help prints usage and exits 0; a usage error
 * exits 2 with a reason and "usage:"; bad input exits 3 naming the file, key or line, and leaves
 * no output behind (README "Exit codes"). */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "support.h"

static char *root;       /* a fresh temporary directory per test */
static char ck[1024];    /* a tiny synthetic checkpoint inside it */

static int bench(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bench(char **out, const char *fmt, ...)
{
    char args[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return mimo_test_run_bench(args, out);
}

static void setup(void)
{
    root = mimo_test_tmpdir();
    cr_assert_not_null(root);
    snprintf(ck, sizeof ck, "%s/ck", root);
    char *out = NULL;
    cr_assert_eq(bench(&out, "synth --preset tiny --out '%s'", ck), MIMO_EXIT_OK, "%s", out);
    free(out);
}

static void teardown(void)
{
    mimo_test_rmtree(root);
    free(root);
}

TestSuite(cli_errors, .init = setup, .fini = teardown, .timeout = 60);

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* Replaces the first `from` in the file at path by `to`. */
static void edit_file(const char *path, const char *from, const char *to)
{
    char *text = mimo_test_read_file(path, NULL);
    cr_assert_not_null(text, "%s", path);
    char *at = strstr(text, from);
    cr_assert_not_null(at, "'%s' not in %s", from, path);
    size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *edited = malloc(n);
    snprintf(edited, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    write_text(path, edited);
    free(edited);
    free(text);
}

/* Expects exit code `code` and every needle in the output; frees *outp. (A pointer: as an argument
 * beside bench(&out, ...), a plain `out` could be read before bench sets it.) */
static void expect(int rc, char **outp, int code, const char *what, const char *needle1, const char *needle2)
{
    char *out = *outp;
    cr_expect_eq(rc, code, "%s: exit %d, want %d:\n%s", what, rc, code, out);
    if (needle1)
        cr_expect(strstr(out, needle1), "%s: '%s' not in:\n%s", what, needle1, out);
    if (needle2)
        cr_expect(strstr(out, needle2), "%s: '%s' not in:\n%s", what, needle2, out);
    cr_expect(!strstr(out, "Sanitizer"), "%s: sanitizer report:\n%s", what, out);
    free(out);
}

/* stdout alone (stderr dropped): usage asked for is output, not an error. */
static int stdout_of(const char *args, char **out)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", MIMO_BENCH_BIN, args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap + 1);
    while (n < cap && (got = fread(buf + n, 1, cap - n, p)) > 0)
        n += got;
    buf[n] = '\0';
    int status = pclose(p);
    *out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *const commands[] = {"synth",    "inspect",  "convert", "generate", "run",
                                       "tokenize", "kernels",  "validate", "compare", "report"};

Test(cli_errors, help_prints_usage_to_stdout_and_exits_0)
{
    char *out;
    expect(stdout_of("--help", &out), &out, MIMO_EXIT_OK, "mimo-bench --help", "usage:", "commands:");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char args[64];
        snprintf(args, sizeof args, "%s --help", commands[i]);
        expect(stdout_of(args, &out), &out, MIMO_EXIT_OK, args, "usage: mimo-bench", commands[i]);
    }
    /* --version: the commit the binary was built from (12 hex digits, -dirty, or "unknown") and its build */
    cr_assert_eq(stdout_of("--version", &out), MIMO_EXIT_OK);
    cr_expect(!strncmp(out, "mimo-bench ", 11), "--version printed: %s", out);
    const char *c = out + 11;
    size_t hex = strspn(c, "0123456789abcdef");
    cr_expect(hex == 12 || !strncmp(c, "unknown", 7), "--version printed: %s", out);
    cr_expect(strstr(out, "type=") != NULL, "--version printed: %s", out);
    free(out);
    /* --help wins wherever it stands */
    expect(stdout_of("validate x.json --help", &out), &out, MIMO_EXIT_OK, "validate FILE --help", "usage:", NULL);
}

Test(cli_errors, no_command_or_an_unknown_one_is_a_usage_error)
{
    char *out;
    expect(bench(&out, "%s", ""), &out, MIMO_EXIT_USAGE, "no command", "no command given", "usage:");
    expect(bench(&out, "frobnicate"), &out, MIMO_EXIT_USAGE, "unknown command", "'frobnicate'", "usage:");
}

Test(cli_errors, no_arguments_and_unknown_flags_are_usage_errors)
{
    char *out;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        /* kernels has no required flag: without arguments it would run */
        if (strcmp(commands[i], "kernels") != 0)
            expect(bench(&out, "%s", commands[i]), &out, MIMO_EXIT_USAGE, commands[i], "usage:", NULL);
        /* an unknown flag as the last argument is unknown, not "needs a value" */
        int rc = bench(&out, "%s --no-such-flag", commands[i]);
        expect(rc, &out, MIMO_EXIT_USAGE, commands[i], "'--no-such-flag'", "usage:");
    }
}

Test(cli_errors, a_flag_without_its_value_is_a_usage_error)
{
    char *out;
    expect(bench(&out, "synth --preset tiny --out"), &out, MIMO_EXIT_USAGE, "synth --out", "--out needs a value", "usage:");
    expect(bench(&out, "convert '%s' '%s/o' --experts", ck, root), &out, MIMO_EXIT_USAGE, "convert --experts",
           "--experts needs a value", "usage:");
    expect(bench(&out, "generate --preset tiny --prompt-ids"), &out, MIMO_EXIT_USAGE, "generate --prompt-ids",
           "--prompt-ids needs a value", "usage:");
    expect(bench(&out, "run --preset tiny --max-new"), &out, MIMO_EXIT_USAGE, "run --max-new", "--max-new needs a value",
           "usage:");
    expect(bench(&out, "tokenize --tokenizer"), &out, MIMO_EXIT_USAGE, "tokenize --tokenizer",
           "--tokenizer needs a value", "usage:");
    expect(bench(&out, "kernels --reps"), &out, MIMO_EXIT_USAGE, "kernels --reps", "--reps needs a value", "usage:");
    expect(bench(&out, "kernels --steps-only --no-steps"), &out, MIMO_EXIT_USAGE, "kernels --steps-only --no-steps",
           "leave nothing to run", "usage:");
    expect(bench(&out, "compare a.json b.json --fail-if-slower"), &out, MIMO_EXIT_USAGE, "compare --fail-if-slower",
           "--fail-if-slower", "usage:");
    expect(bench(&out, "report a.json --out"), &out, MIMO_EXIT_USAGE, "report --out", "--out needs a directory", "usage:");
}

Test(cli_errors, bad_numbers_are_usage_errors)
{
    char *out;
    /* leading blanks: strtoull would wrap " -1" to 2^64-1 */
    expect(bench(&out, "synth --preset tiny --out '%s/s' --seed ' -1'", root), &out, MIMO_EXIT_USAGE, "seed ' -1'",
           "--seed", "usage:");
    expect(bench(&out, "synth --preset tiny --out '%s/s' --seed 12x", root), &out, MIMO_EXIT_USAGE, "seed 12x", "'12x'",
           "usage:");
    char s_dir[1100];
    snprintf(s_dir, sizeof s_dir, "%s/s", root);
    cr_expect(!exists(s_dir), "a refused synth writes nothing");
    expect(bench(&out, "generate --preset tiny --prompt-ids 1 --max-new -1"), &out, MIMO_EXIT_USAGE, "max-new -1",
           "'-1'", "usage:");
    expect(bench(&out, "generate --preset tiny --prompt-ids 1 --top-p 1.5"), &out, MIMO_EXIT_USAGE, "top-p 1.5", "'1.5'",
           "usage:");
    expect(bench(&out, "generate --preset tiny --prompt-ids 1,x"), &out, MIMO_EXIT_USAGE, "prompt-ids 1,x", "'1,x'",
           "usage:");
    expect(bench(&out, "run --preset tiny --requests 99999999999999999999"), &out, MIMO_EXIT_USAGE, "requests huge",
           "--requests", "usage:");
    expect(bench(&out, "run --preset tiny --temperature nan"), &out, MIMO_EXIT_USAGE, "temperature nan", "'nan'",
           "usage:");
    expect(bench(&out, "run --preset tiny --top-p 0"), &out, MIMO_EXIT_USAGE, "run top-p 0", "'0'", "usage:");
    expect(bench(&out, "run --preset tiny --top-k -3"), &out, MIMO_EXIT_USAGE, "run top-k -3", "'-3'", "usage:");
    expect(bench(&out, "run --preset tiny --shard 8/8"), &out, MIMO_EXIT_USAGE, "shard 8/8", "'8/8'", "usage:");
    expect(bench(&out, "run --preset tiny --rounds gpu"), &out, MIMO_EXIT_USAGE, "rounds gpu", "'gpu'", "usage:");
    expect(bench(&out, "tokenize --tokenizer '%s' --bench --min-mb abc", ck), &out, MIMO_EXIT_USAGE, "min-mb abc",
           "'abc'", "usage:");
    expect(bench(&out, "kernels --tokens 0"), &out, MIMO_EXIT_USAGE, "kernels --tokens 0", "'0'", "usage:");
    expect(bench(&out, "kernels --context 8"), &out, MIMO_EXIT_USAGE, "kernels --context 8", "--context '8'", "usage:");
    expect(bench(&out, "kernels --context"), &out, MIMO_EXIT_USAGE, "kernels --context", "--context needs a value",
           "usage:");
    expect(bench(&out, "compare a.json b.json --fail-if-slower 101"), &out, MIMO_EXIT_USAGE, "fail-if-slower 101",
           "--fail-if-slower", "usage:");
}

Test(cli_errors, bad_flag_values_found_by_the_run_are_usage_errors_too)
{
    char *out, res[1100];
    snprintf(res, sizeof res, "%s/r.json", root);
    expect(bench(&out, "run --preset nope --out '%s'", res), &out, MIMO_EXIT_USAGE, "run --preset nope", "'nope'",
           "usage:");
    expect(bench(&out, "run --preset tiny --suite chat,cooking --out '%s'", res), &out, MIMO_EXIT_USAGE,
           "run --suite cooking", "'cooking'", "usage:");
    expect(bench(&out, "run --preset tiny --suite chat, --out '%s'", res), &out, MIMO_EXIT_USAGE, "run --suite chat,",
           "--suite", "usage:");
    expect(bench(&out, "run --preset tiny --out ''"), &out, MIMO_EXIT_USAGE, "run --out ''", "--out", "usage:");
    expect(bench(&out, "generate --preset nope --prompt-ids 1"), &out, MIMO_EXIT_USAGE, "generate --preset nope",
           "'nope'", "usage:");
    cr_expect(!exists(res), "no results file for a refused run");
}

Test(cli_errors, malformed_checkpoints_are_bad_input_named_and_write_nothing)
{
    char path[1200], conv[1100], res[1100], *out;
    snprintf(conv, sizeof conv, "%s/converted", root);
    snprintf(res, sizeof res, "%s/r.json", root);
    /* a shard cut short: every command that reads weights names the file */
    snprintf(path, sizeof path, "%s/model-00002-of-00005.safetensors", ck);
    cr_assert_eq(truncate(path, 20000), 0);
    expect(bench(&out, "inspect --summary '%s'", ck), &out, MIMO_EXIT_BAD_INPUT, "inspect truncated",
           "model-00002-of-00005.safetensors", "PROBLEM");
    expect(bench(&out, "convert '%s' '%s' --experts fp8", ck, conv), &out, MIMO_EXIT_BAD_INPUT, "convert truncated",
           "model-00002-of-00005.safetensors", NULL);
    cr_expect(!exists(conv), "convert of a bad checkpoint leaves no half-written OUT");
    expect(bench(&out, "generate --model '%s' --prompt-ids 1,2 --max-new 2", ck), &out, MIMO_EXIT_BAD_INPUT,
           "generate truncated", "model-00002-of-00005.safetensors", NULL);
    expect(bench(&out, "run --model '%s' --suite chat --requests 1 --max-new 2 --out '%s'", ck, res), &out,
           MIMO_EXIT_BAD_INPUT, "run truncated", "model-00002-of-00005.safetensors", NULL);
    cr_expect(!exists(res), "a run refused for bad input writes no results file");
}

Test(cli_errors, malformed_configs_name_the_file_and_key)
{
    char cfg[1200], dcfg[1200], *out;
    snprintf(cfg, sizeof cfg, "%s/config.json", ck);
    snprintf(dcfg, sizeof dcfg, "%s/drafter/config.json", ck);
    char *original = mimo_test_read_file(cfg, NULL);

    edit_file(cfg, "\"hidden_size\": 64,", "");
    expect(bench(&out, "inspect '%s'", ck), &out, MIMO_EXIT_BAD_INPUT, "missing key", "config.json", "'hidden_size'");
    write_text(cfg, original);
    edit_file(cfg, "\"num_hidden_layers\": 4", "\"num_hidden_layers\": \"four\"");
    expect(bench(&out, "generate --model '%s' --prompt-ids 1", ck), &out, MIMO_EXIT_BAD_INPUT, "wrong type",
           "config.json", "'num_hidden_layers'");
    write_text(cfg, original);
    edit_file(cfg, "\"num_experts_per_tok\": 2", "\"num_experts_per_tok\": 99");
    expect(bench(&out, "convert '%s' '%s/c' --experts bf16", ck, root), &out, MIMO_EXIT_BAD_INPUT, "contradictory",
           "config.json", "'num_experts_per_tok'");
    write_text(cfg, original);
    edit_file(cfg, "{", "{,");
    expect(bench(&out, "inspect '%s'", ck), &out, MIMO_EXIT_BAD_INPUT, "invalid JSON", "config.json:1", NULL);
    write_text(cfg, original);
    free(original);

    /* a drafter that does not fit its target: refused up front, not when the engine attaches it */
    edit_file(dcfg, "\"mask_token_id\": 508", "\"mask_token_id\": 100000");
    expect(bench(&out, "inspect --summary '%s'", ck), &out, MIMO_EXIT_BAD_INPUT, "inspect drafter mask",
           "mask_token_id 100000", NULL);
    expect(bench(&out, "generate --model '%s' --prompt-ids 1 --max-new 2", ck), &out, MIMO_EXIT_BAD_INPUT,
           "generate drafter mask", "mask_token_id 100000", NULL);
    expect(bench(&out, "run --model '%s' --suite chat --requests 1 --max-new 2 --out '%s/r.json'", ck, root), &out,
           MIMO_EXIT_BAD_INPUT, "run drafter mask", "mask_token_id 100000", NULL);

    /* a directory where a file is expected, a file where a directory is */
    expect(bench(&out, "inspect '%s/tokenizer.json'", ck), &out, MIMO_EXIT_BAD_INPUT, "file as DIR", "config.json",
           "Not a directory");
    expect(bench(&out, "inspect '%s/nowhere'", root), &out, MIMO_EXIT_BAD_INPUT, "nonexistent DIR", "nowhere",
           "No such file");
}

Test(cli_errors, malformed_suites_and_tokenizers_name_the_file_and_line)
{
    char suite[1100], tok[1200], res[1100], *out;
    snprintf(suite, sizeof suite, "%s/s.jsonl", root);
    snprintf(res, sizeof res, "%s/r.json", root);
    write_text(suite, "{\"question_id\": \"a\", \"category\": \"chat\", \"turns\": [\"hi\"]}\n"
                      "{\"question_id\": \"b\", \"turns\": [\"unterminated\"\n");
    expect(bench(&out, "run --preset tiny --suite-file '%s' --out '%s'", suite, res), &out, MIMO_EXIT_BAD_INPUT,
           "suite bad line", "s.jsonl:2", NULL);
    write_text(suite, "");
    expect(bench(&out, "run --preset tiny --suite-file '%s' --out '%s'", suite, res), &out, MIMO_EXIT_BAD_INPUT,
           "empty suite", "s.jsonl", "no records");
    expect(bench(&out, "run --preset tiny --suite-file '%s' --out '%s'", root, res), &out, MIMO_EXIT_BAD_INPUT,
           "suite is a directory", root, NULL);
    cr_expect(!exists(res), "no results file for a bad suite");

    snprintf(tok, sizeof tok, "%s/tokenizer.json", ck);
    edit_file(tok, "\"type\":\"BPE\"", "\"type\":\"Unigram\"");
    expect(bench(&out, "tokenize --tokenizer '%s' --text hello", tok), &out, MIMO_EXIT_BAD_INPUT, "tokenizer kind",
           "tokenizer.json", "Unigram");
    expect(bench(&out, "generate --model '%s' --prompt hello --max-new 2", ck), &out, MIMO_EXIT_BAD_INPUT,
           "generate tokenizer kind", "tokenizer.json", "Unigram");
    expect(bench(&out, "tokenize --tokenizer '%s/none.json' --text hello", root), &out, MIMO_EXIT_BAD_INPUT,
           "tokenizer missing", "none.json", NULL);
    expect(bench(&out, "tokenize --tokenizer '%s' --text-file '%s'", ck, root), &out, MIMO_EXIT_BAD_INPUT,
           "text-file is a directory", root, "Is a directory");
}

Test(cli_errors, results_files_of_another_schema_or_shape_are_bad_input)
{
    char v99[1100], arr[1100], out_dir[1100], *out;
    snprintf(v99, sizeof v99, "%s/v99.json", root);
    snprintf(arr, sizeof arr, "%s/arr.json", root);
    snprintf(out_dir, sizeof out_dir, "%s/rep", root);
    write_text(v99, "{\"schema_version\": 99, \"configs\": []}\n");
    write_text(arr, "[1, 2]\n");
    expect(bench(&out, "validate '%s'", v99), &out, MIMO_EXIT_BAD_INPUT, "validate v99", "v99.json", "schema_version 99");
    expect(bench(&out, "validate '%s'", arr), &out, MIMO_EXIT_BAD_INPUT, "validate array", "arr.json", NULL);
    expect(bench(&out, "validate '%s/none.json'", root), &out, MIMO_EXIT_BAD_INPUT, "validate missing", "none.json",
           "No such file");
    expect(bench(&out, "compare '%s' '%s'", v99, v99), &out, MIMO_EXIT_BAD_INPUT, "compare v99", "v99.json",
           "schema_version 99");
    expect(bench(&out, "compare '%s' '%s'", v99, root), &out, MIMO_EXIT_BAD_INPUT, "compare v99 first", "v99.json", NULL);
    expect(bench(&out, "report '%s' --out '%s'", root, out_dir), &out, MIMO_EXIT_BAD_INPUT, "report a directory", root,
           "is a directory");
    expect(bench(&out, "report '%s' --out '%s'", v99, out_dir), &out, MIMO_EXIT_BAD_INPUT, "report v99", "v99.json",
           "schema_version 99");
    cr_expect(!exists(out_dir), "report of bad input creates no output directory");
}

Test(cli_errors, unwritable_outputs_fail_before_the_work_and_leave_nothing)
{
    char file[1200], *out;
    snprintf(file, sizeof file, "%s/tokenizer.json", ck);   /* a file: nothing can be created under it */
    expect(bench(&out, "synth --preset tiny --out '%s/sub'", file), &out, MIMO_EXIT_FAILURE, "synth under a file",
           "tokenizer.json/sub", NULL);
    expect(bench(&out, "convert '%s' '%s/sub' --experts bf16", ck, file), &out, MIMO_EXIT_FAILURE,
           "convert under a file", "tokenizer.json/sub", NULL);
    /* a directory as the results file: refused before minutes of benchmarking */
    expect(bench(&out, "run --preset tiny --suite chat --requests 1 --max-new 2 --out '%s'", ck), &out,
           MIMO_EXIT_FAILURE, "run --out DIR", "is a directory", NULL);
    expect(bench(&out, "run --preset tiny --suite chat --requests 1 --max-new 2 --out '%s/r.json'", file), &out,
           MIMO_EXIT_FAILURE, "run --out under a file", "not writable", NULL);
    expect(bench(&out, "report '%s/none.json' --out '%s/sub'", root, file), &out, MIMO_EXIT_BAD_INPUT,
           "report: inputs are read first", "none.json", NULL);
    char probe[1300];
    snprintf(probe, sizeof probe, "ls -a '%s' | grep -c -e '\\.tmp' -e probe > /dev/null", ck);
    cr_expect_neq(system(probe), 0, "temporary files left in %s", ck);
}

Test(cli_errors, a_full_scale_preset_on_the_cpu_is_refused_not_run_out_of_memory)
{
    /* before the guard the cpu backend synthesised the weights in host memory until it was killed */
    double host_gb = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / 1e9;
    if (host_gb > 1000)
        cr_skip_test("this host (%.0f GB) could hold mimo-v2.5-pro's weights", host_gb);
    char *out;
    expect(bench(&out, "generate --preset mimo-v2.5-pro --backend cpu --prompt-ids 1 --max-new 1"), &out,
           MIMO_EXIT_UNAVAILABLE, "generate full-scale on cpu", "host memory", NULL);
}

Test(cli_errors, a_run_of_more_than_16_requests_keeps_every_stop_reason)
{
    /* found by this audit under ASan: the 17th request grew the results array and left each
     * record's stop_reason pointing into the freed one */
    char res[1100], *out;
    snprintf(res, sizeof res, "%s/r.json", root);
    expect(bench(&out, "run --preset tiny --suite chat --requests 1 --repeats 17 --max-new 1 --warmup 0 --out '%s'", res),
           &out, MIMO_EXIT_OK, "run 17 requests", NULL, NULL);
    char *text = mimo_test_read_file(res, NULL);
    cr_assert_not_null(text);
    int n = 0;
    for (const char *p = text; (p = strstr(p, "\"stop_reason\": \"max_tokens\"")); p++)
        n++;
    cr_expect_eq(n, 17, "17 requests, each stopped by --max-new: %d found", n);
    free(text);
    expect(bench(&out, "validate '%s'", res), &out, MIMO_EXIT_OK, "validate", "valid", NULL);
}
