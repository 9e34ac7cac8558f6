/* Optional worker threads for the CPU backend: matrix-vector products split by rows.
 * Results do not depend on the thread count: every row is computed exactly as
 * mimo_matrix_gemv_f32 computes it (decode the row, accumulate the dot product in double). */
#ifndef MIMO_CPU_THREADS_H
#define MIMO_CPU_THREADS_H

#include "mimo/weights.h"

typedef struct mimo_cpu_pool mimo_cpu_pool;

/* n_threads <= 1 gives NULL: everything then runs on the calling thread. */
mimo_cpu_pool *mimo_cpu_pool_create(int n_threads);
void mimo_cpu_pool_destroy(mimo_cpu_pool *pool);
int  mimo_cpu_pool_threads(const mimo_cpu_pool *pool);   /* 1 for NULL */

/* y = W x with the rows shared among the pool's threads (the caller works too). pool may be NULL. */
void mimo_cpu_pool_matvec(mimo_cpu_pool *pool, const mimo_matrix *m, const float *x, float *y);

#endif
