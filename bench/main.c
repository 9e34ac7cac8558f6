/* mimo-bench: one binary, one subcommand per job (HARNESS.md "Command line"). */
#include "cli.h"
#include "mimo/build_info.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"synth",    mimo_cmd_synth,    "write a synthetic checkpoint of a preset"},
    {"inspect",  mimo_cmd_inspect,  "list a checkpoint's tensors, formats, bytes, params, problems"},
    {"convert",  mimo_cmd_convert,  "re-encode expert weights (offline FP4 ablation)"},
    {"generate", mimo_cmd_generate, "generate tokens from a prompt"},
    {"run",      mimo_cmd_run,      "replay workload suites, record every round, write JSON"},
    {"tokenize", mimo_cmd_tokenize, "encode/decode text with a tokenizer.json"},
    {"kernels",  mimo_cmd_kernels,  "roofline benchmarks of the GPU kernels"},
    {"validate", mimo_cmd_validate, "check a results file against results/schema.json"},
    {"compare",  mimo_cmd_compare,  "compare results files; --fail-if-slower is the CI gate"},
    {"report",   mimo_cmd_report,   "draw gnuplot reports and index.html/index.md"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: mimo-bench COMMAND [options]   (mimo-bench COMMAND --help for its options)\n"
               "       mimo-bench --version              (the commit it was built from, and its build)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "mimo-bench: no command given\n");
        usage(stderr);
        return MIMO_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return MIMO_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("mimo-bench %s (%s)\n", mimo_git_commit(), mimo_build_flags());
        return MIMO_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "mimo-bench: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return MIMO_EXIT_USAGE;
}
