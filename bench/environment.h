/* The "environment" block of a results file: host, CPU, memory, OS, GPU and its software stack,
 * with GPU clocks sampled at the start and at the end of the run. */
#ifndef MIMO_BENCH_ENVIRONMENT_H
#define MIMO_BENCH_ENVIRONMENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The source checkout's commit read now (`git rev-parse --short=12 HEAD` in MIMO_SOURCE_DIR, "-dirty"
 * appended when tracked files changed); false (buf empty) when it cannot be read. The code that runs
 * is mimo_git_commit(), stamped at build time. */
bool mimo_env_git_commit(char *buf, size_t n);

/* Host facts and, when device >= 0 and CUDA is built, the GPU's (clocks under "clocks_start").
 * Fields that cannot be read are null with a "<field>_null_reason". */
json_t *mimo_environment_collect(int device);
/* Adds "clocks_end" (GPU runs) to an environment block made by mimo_environment_collect. */
void mimo_environment_finish(json_t *env, int device);

#endif
