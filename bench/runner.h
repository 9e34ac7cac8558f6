/* `mimo-bench run`: replays workload suites through one configuration or the whole ablation matrix
 * (fp4 x dflash x exec), records every round, aggregates per suite, and writes the results JSON. */
#ifndef MIMO_BENCH_RUNNER_H
#define MIMO_BENCH_RUNNER_H

#include <stdbool.h>
#include <stdint.h>
#include "mimo/engine.h"

typedef struct {
    const char *model_dir;        /* a checkpoint directory, or NULL */
    const char *preset;           /* a preset name (synthetic weights), or NULL */
    uint64_t    seed;             /* synthetic weights and sampling */
    const char *suites;           /* built-in suite list, "coding,math,agent,chat" */
    const char *suite_file;       /* or a workload file (any supported format) */
    mimo_backend_kind backend;
    bool        fp4, dflash;
    bool        dflash_set;       /* --dflash given (else: on when a drafter exists) */
    mimo_exec_mode exec;
    bool        host_rounds;      /* --rounds host: verify on the host where the backend could on the device */
    bool        matrix;
    bool        accept_set;       /* --accept given */
    bool        accept_forced;
    const char *accept_profile;   /* forced:PROFILE */
    int         shard_rank, shard_count;
    int         layers;           /* 0 = all */
    int         requests;         /* per suite; 0 = all */
    int         max_new;
    double      temperature;
    int         top_k;            /* 0 = off */
    double      top_p;            /* 1 = off */
    int         warmup, repeats;
    bool        trace;
    const char *out_path;
    int         device;
    int         threads;          /* cpu worker threads; 0 = online cores */
} mimo_run_options;

void mimo_run_options_default(mimo_run_options *o);

/* Runs and writes o->out_path. Returns an exit code of cli.h: 0; MIMO_EXIT_INTERRUPTED when
 * *interrupt became non-zero (results written, "incomplete": true); MIMO_EXIT_UNAVAILABLE when no
 * configuration could run (results still written); MIMO_EXIT_BAD_INPUT / MIMO_EXIT_FAILURE with err. */
int mimo_run_execute(const mimo_run_options *o, int argc, char **argv, volatile int *interrupt, mimo_error *err);

#endif
