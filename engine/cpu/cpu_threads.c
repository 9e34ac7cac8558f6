/* A small persistent thread pool for row-parallel matrix-vector products (cpu_threads.h).
 * The caller publishes one job (matrix, x, y) and a new generation number; every thread computes
 * its contiguous share of rows; the caller computes share 0 and waits for the others. */
#include "cpu_threads.h"
#include "cpu_ops.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct {
    mimo_cpu_pool *pool;
    int index;          /* share index: 0 = the caller */
    float *row;         /* decoded row buffer, grown on demand */
    int64_t row_cap;
    pthread_t thread;
} pool_worker;

struct mimo_cpu_pool {
    int n_threads;
    pool_worker *workers;       /* [n_threads]; workers[0] is the calling thread's share */
    pthread_mutex_t lock;
    pthread_cond_t job_ready, job_done;
    uint64_t generation;        /* bumped once per job */
    int pending;                /* shares not yet finished */
    bool stop;
    const mimo_matrix *m;
    const float *x;
    float *y;
};

/* Rows [r0, r1) of y = W x, each row as mimo_matrix_gemv_f32 computes it. */
static void matvec_rows(pool_worker *w, const mimo_matrix *m, const float *x, float *y, int64_t r0, int64_t r1)
{
    if (w->row_cap < m->cols) {
        free(w->row);
        w->row = mimo_xmalloc((size_t)m->cols * sizeof *w->row);
        w->row_cap = m->cols;
    }
    for (int64_t r = r0; r < r1; r++) {
        mimo_matrix_row_f32(m, r, w->row);
        double acc = 0.0;
        for (int64_t c = 0; c < m->cols; c++)
            acc += (double)w->row[c] * (double)x[c];
        y[r] = (float)acc;
    }
}

static void run_share(pool_worker *w)
{
    mimo_cpu_pool *p = w->pool;
    int64_t rows = p->m->rows;
    int64_t r0 = rows * w->index / p->n_threads, r1 = rows * (w->index + 1) / p->n_threads;
    matvec_rows(w, p->m, p->x, p->y, r0, r1);
}

static void *worker_main(void *arg)
{
    pool_worker *w = arg;
    mimo_cpu_pool *p = w->pool;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->job_ready, &p->lock);
        if (p->stop) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);

        run_share(w);

        pthread_mutex_lock(&p->lock);
        if (--p->pending == 0)
            pthread_cond_signal(&p->job_done);
        pthread_mutex_unlock(&p->lock);
    }
}

mimo_cpu_pool *mimo_cpu_pool_create(int n_threads)
{
    if (n_threads <= 1)
        return NULL;
    mimo_cpu_pool *p = mimo_xcalloc(1, sizeof *p);
    p->n_threads = n_threads;
    p->workers = mimo_xcalloc((size_t)n_threads, sizeof *p->workers);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->job_ready, NULL);
    pthread_cond_init(&p->job_done, NULL);
    for (int i = 0; i < n_threads; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i;
    }
    for (int i = 1; i < n_threads; i++) {
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            /* fewer threads than asked: run with the ones that started */
            p->n_threads = i;
            break;
        }
    }
    return p;
}

void mimo_cpu_pool_destroy(mimo_cpu_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->job_ready);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->n_threads; i++)
        pthread_join(p->workers[i].thread, NULL);
    for (int i = 0; i < p->n_threads; i++)
        free(p->workers[i].row);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->job_ready);
    pthread_cond_destroy(&p->job_done);
    free(p->workers);
    free(p);
}

int mimo_cpu_pool_threads(const mimo_cpu_pool *p) { return p ? p->n_threads : 1; }

void mimo_cpu_pool_matvec(mimo_cpu_pool *p, const mimo_matrix *m, const float *x, float *y)
{
    /* small matrices are not worth waking anyone for */
    if (!p || p->n_threads <= 1 || m->rows < 2 * p->n_threads) {
        mimo_cpu_matvec(m, x, y);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->m = m;
    p->x = x;
    p->y = y;
    p->pending = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->job_ready);
    pthread_mutex_unlock(&p->lock);

    run_share(&p->workers[0]);

    pthread_mutex_lock(&p->lock);
    while (p->pending > 0)
        pthread_cond_wait(&p->job_done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}
