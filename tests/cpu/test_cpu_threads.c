/* Worker threads change nothing in the results: row-parallel matvec == mimo_matrix_gemv_f32 bit for
 * bit, and a whole engine with n_threads > 1 gives the single-threaded logits exactly. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../engine/cpu/cpu_threads.h"
#include "tiny_model.h"

Test(cpu_threads, pool_matvec_equals_gemv)
{
    enum { ROWS = 67, COLS = 45 };
    static float w[ROWS * COLS], x[COLS], y_ref[ROWS], y[ROWS];
    for (int i = 0; i < ROWS * COLS; i++)
        w[i] = mimo_bits_to_unit_symmetric(mimo_hash2(1, (uint64_t)i));
    for (int i = 0; i < COLS; i++)
        x[i] = mimo_bits_to_unit_symmetric(mimo_hash2(2, (uint64_t)i));
    mimo_matrix m = { .format = MIMO_WFMT_F32, .rows = ROWS, .cols = COLS, .data = w };
    mimo_matrix_gemv_f32(&m, x, y_ref);
    cr_assert_null(mimo_cpu_pool_create(1), "one thread needs no pool");
    for (int t = 2; t <= 5; t++) {
        mimo_cpu_pool *pool = mimo_cpu_pool_create(t);
        cr_assert_eq(mimo_cpu_pool_threads(pool), t);
        for (int rep = 0; rep < 20; rep++) {   /* repeated jobs on the same pool */
            memset(y, 0, sizeof y);
            mimo_cpu_pool_matvec(pool, &m, x, y);
            cr_assert(memcmp(y, y_ref, sizeof y) == 0, "%d threads, job %d", t, rep);
        }
        mimo_cpu_pool_destroy(pool);
    }
}

Test(cpu_threads, engine_results_do_not_depend_on_thread_count)
{
    tiny_model m;
    tiny_model_load(&m, NULL, 5);
    const int V = m.cfg.vocab_size, n = 12;
    int32_t tokens[12];
    tiny_tokens(tokens, n, V, 8);
    float *one = malloc((size_t)n * V * sizeof *one), *many = malloc((size_t)n * V * sizeof *many);
    tiny_engine e1 = tiny_engine_create(&m, n, false);
    tiny_forward(&e1, tokens, n, one, NULL);
    mimo_engine_options o;
    memset(&o, 0, sizeof o);
    o.max_context = n;
    o.shard_count = 1;
    o.n_threads = 3;
    tiny_engine e3 = tiny_engine_create_opts(&m, &o);
    tiny_forward(&e3, tokens, 5, many, NULL);
    for (int i = 5; i < n; i++)
        tiny_forward(&e3, tokens + i, 1, many + (size_t)i * V, NULL);
    cr_assert(memcmp(one, many, (size_t)n * V * sizeof *one) == 0, "3 threads changed the logits");
    tiny_engine_destroy(&e1);
    tiny_engine_destroy(&e3);
    free(one);
    free(many);
    tiny_model_free(&m);
}
