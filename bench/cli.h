/* Shared command-line conventions of mimo-bench: exit codes, flag parsing helpers, usage. */
#ifndef MIMO_BENCH_CLI_H
#define MIMO_BENCH_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Documented exit codes (README "Exit codes"). */
enum {
    MIMO_EXIT_OK          = 0,
    MIMO_EXIT_FAILURE     = 1,   /* a run-time failure (device error, I/O error) */
    MIMO_EXIT_USAGE       = 2,   /* unknown command or flag, bad flag value */
    MIMO_EXIT_BAD_INPUT   = 3,   /* malformed checkpoint, config, suite file, results file */
    MIMO_EXIT_UNAVAILABLE = 4,   /* the asked configuration cannot run on this build/machine */
    MIMO_EXIT_REGRESSION  = 5,   /* compare --fail-if-slower tripped */
    MIMO_EXIT_INTERRUPTED = 130  /* SIGINT/SIGTERM; partial results marked incomplete */
};

/* Each subcommand: argv[0] is the subcommand name. */
int mimo_cmd_synth(int argc, char **argv);
int mimo_cmd_inspect(int argc, char **argv);
int mimo_cmd_convert(int argc, char **argv);
int mimo_cmd_generate(int argc, char **argv);
int mimo_cmd_run(int argc, char **argv);
int mimo_cmd_tokenize(int argc, char **argv);
int mimo_cmd_kernels(int argc, char **argv);
int mimo_cmd_validate(int argc, char **argv);
int mimo_cmd_compare(int argc, char **argv);
int mimo_cmd_report(int argc, char **argv);

/* Prints "mimo-bench CMD: message" and the command's usage to stderr; returns MIMO_EXIT_USAGE. */
int mimo_usage_error(const char *cmd, const char *usage, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Strict number parsing: the whole string must be a number in range. */
bool mimo_parse_int(const char *s, long min, long max, long *out);
bool mimo_parse_u64(const char *s, uint64_t *out);
bool mimo_parse_double(const char *s, double min, double max, double *out);
/* "1,2,3" -> ids (malloc'd); false on any bad element. */
bool mimo_parse_int_list(const char *s, long min, long max, int32_t **out, int *n);
/* "R/N" */
bool mimo_parse_shard(const char *s, int *rank, int *count);
bool mimo_parse_on_off(const char *s, bool *out);

/* 1234567 -> "1.23 M" (SI steps, 3 significant digits); with bytes: "1.23 MB". Returns buf. */
const char *mimo_format_si(double v, bool bytes, char *buf, size_t n);

#endif
