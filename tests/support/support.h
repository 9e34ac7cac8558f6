/* Helpers shared by the tests. */
#ifndef MIMO_TEST_SUPPORT_H
#define MIMO_TEST_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

/* ../shared next to the source tree (golden vectors, tokenizer, workloads); NULL when absent. */
const char *mimo_test_shared_dir(void);
/* A fresh empty temporary directory (removed by mimo_test_rmtree). */
char *mimo_test_tmpdir(void);
void  mimo_test_rmtree(const char *dir);
/* Reads a whole file (NUL-terminated); NULL when unreadable. */
char *mimo_test_read_file(const char *path, size_t *size);
/* ||a - b|| / ||b|| over n floats (inf if b is zero and a is not; NaN anywhere gives NaN). */
double mimo_test_rel_err(const float *a, const float *b, size_t n);
/* Top-1 minus top-2 of a row of n values (how close an argmax tie is). */
float  mimo_test_top2_margin(const float *x, int n);
/* Runs the built mimo-bench with args (shell-quoted by the caller); returns the exit status,
 * stdout+stderr captured into *output (malloc'd) when output != NULL. */
int mimo_test_run_bench(const char *args, char **output);

#endif
