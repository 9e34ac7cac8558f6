/* Each CUDA op against the C reference on fresh random inputs (outputs are NaN-poisoned by the
 * test interface before each run). Skips where no CUDA device is present (CI). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../engine/cpu/cpu_layers.h"
#include "../../engine/cpu/cpu_ops.h"
#include "../../engine/cuda/cuda_testing.h"
#include "mimo/backend.h"
#include "mimo/formats.h"
#include "support.h"

#ifdef MIMO_HAVE_CUDA

static uint64_t rng_state;

static void seed_rng(void)
{
    rng_state = (uint64_t)time(NULL) * 6364136223846793005ull ^ (uint64_t)getpid() ^ (uint64_t)clock();
    if (!rng_state)
        rng_state = 1;
    cr_log_info("random seed %llu", (unsigned long long)rng_state);
}

static float frand(void)   /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

static void need_gpu(void)
{
    char reason[256];
    if (!mimo_cuda_backend_available(reason, sizeof reason))
        cr_skip_test("no CUDA device: %s", reason);
    seed_rng();
}

static bool all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return false;
    return true;
}

/* A random matrix in format fmt; its buffers are malloc'd into *data / *scales. */
static mimo_matrix random_matrix(mimo_weight_format fmt, int rows, int cols, void **data, void **scales)
{
    mimo_matrix m;
    memset(&m, 0, sizeof m);
    m.format = fmt;
    m.rows = rows;
    m.cols = cols;
    float *w = malloc((size_t)rows * cols * sizeof(float));
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        w[i] = frand() * (1.0f + (float)(i % 7));   /* uneven magnitudes across blocks */
    *scales = NULL;
    switch (fmt) {
    case MIMO_WFMT_F32:
        *data = w;
        w = NULL;
        break;
    case MIMO_WFMT_BF16: {
        uint16_t *d = malloc((size_t)rows * cols * 2);
        for (size_t i = 0; i < (size_t)rows * cols; i++)
            d[i] = mimo_f32_to_bf16(w[i]);
        *data = d;
        break;
    }
    case MIMO_WFMT_FP8: {
        uint8_t *d = malloc((size_t)rows * cols);
        float *s = malloc((size_t)((rows + 127) / 128) * ((cols + 127) / 128) * sizeof(float));
        mimo_fp8_block_quantize(w, rows, cols, d, s);
        *data = d;
        *scales = s;
        break;
    }
    default: {
        uint8_t *d = malloc((size_t)rows * cols / 2);
        uint8_t *s = malloc((size_t)rows * cols / 32);
        mimo_mxfp4_quantize(w, rows, cols, d, s);
        *data = d;
        *scales = s;
        break;
    }
    }
    free(w);
    m.data = *data;
    m.scales = *scales;
    return m;
}

static void check_gemv(mimo_weight_format fmt, int rows, int cols, int n, int path)
{
    void *data, *scales;
    mimo_matrix m = random_matrix(fmt, rows, cols, &data, &scales);
    float *x = malloc((size_t)n * cols * sizeof(float));
    float *y = malloc((size_t)n * rows * sizeof(float));
    float *ref = malloc((size_t)n * rows * sizeof(float));
    for (size_t i = 0; i < (size_t)n * cols; i++)
        x[i] = frand();
    for (int t = 0; t < n; t++)
        mimo_matrix_gemv_f32(&m, x + (size_t)t * cols, ref + (size_t)t * rows);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_cuda_test_gemv(&m, x, n, y, &err), 0, "%s", err.msg);
    cr_assert(all_finite(y, (size_t)n * rows), "%s %dx%d n=%d path %d: output not fully written",
              mimo_weight_format_name(fmt), rows, cols, n, path);
    double rel = mimo_test_rel_err(y, ref, (size_t)n * rows);
    cr_log_info("gemv %s %dx%d n=%d path %d: rel err %.3g", mimo_weight_format_name(fmt), rows, cols, n, path, rel);
    cr_assert(rel < 1e-4, "%s %dx%d n=%d path %d: rel err %g", mimo_weight_format_name(fmt), rows, cols, n, path, rel);
    free(x);
    free(y);
    free(ref);
    free(data);
    free(scales);
}

Test(cuda_kernels, gemv_every_format_and_position_count)
{
    need_gpu();
    const int ns[] = {1, 2, 3, 5, 8, 13, 16};
    /* every launch path: defaults, CUDA cores / tensor cores at one position, the pipeline and
     * column-split variants */
    for (int path = 0; path < MIMO_CUDA_TEST_GEMV_PATHS; path++) {
        cr_assert_eq(mimo_cuda_test_set_gemv_path(path), 0);
        for (int f = 0; f < MIMO_WFMT_COUNT; f++)
            for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
                int cols = f == MIMO_WFMT_MXFP4 ? 2080 : 1000 + (int)i;   /* several K chunks, ragged tails */
                check_gemv((mimo_weight_format)f, 77 + 40 * (int)i, cols, ns[i], path);
            }
        /* one position, matrices short in columns (a shard's expert down projection: 256 wide; the
         * tiny preset: 64 and 32 wide, where lanes share rows) */
        for (int f = 0; f < MIMO_WFMT_COUNT; f++) {
            check_gemv((mimo_weight_format)f, 300, 256, 1, path);
            check_gemv((mimo_weight_format)f, 77, 64, 1, path);
            check_gemv((mimo_weight_format)f, 40, 32, 1, path);
            check_gemv((mimo_weight_format)f, 64, 96, 2, path);
        }
    }
    cr_assert_eq(mimo_cuda_test_set_gemv_path(MIMO_CUDA_TEST_GEMV_PATHS), -1);
    mimo_cuda_test_set_gemv_path(0);
}

/* MXFP4 codes lie on the device as [s1 s0 m1 m0] a byte (the odd column's sign, the even one's, then their
 * exponent and mantissa bits; cuda_common.cuh), not the file's [s1 m1 s0 m0]: every byte value, each row shifted,
 * under varied block scales. The device bytes must be the file's codes in that order, and every element decoded
 * there must equal the CPU's value exactly (the fast decoders are the GEMV tests' business). */
Test(cuda_kernels, mxfp4_codes_in_device_byte_order)
{
    need_gpu();
    enum { ROWS = 3, COLS = 512 };
    uint8_t data[ROWS * COLS / 2], scales[ROWS * COLS / 32], device[ROWS * COLS / 2];
    for (int r = 0; r < ROWS; r++) {
        for (int j = 0; j < COLS / 2; j++)
            data[r * COLS / 2 + j] = (uint8_t)(j + 37 * r);
        for (int b = 0; b < COLS / 32; b++)
            scales[r * COLS / 32 + b] = (uint8_t)(120 + (5 * r + b) % 16);
    }
    mimo_matrix m;
    memset(&m, 0, sizeof m);
    m.format = MIMO_WFMT_MXFP4;
    m.rows = ROWS;
    m.cols = COLS;
    m.data = data;
    m.scales = scales;
    float *values = malloc(sizeof(float) * ROWS * COLS), *ref = malloc(sizeof(float) * ROWS * COLS);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_cuda_test_mxfp4_device_codes(&m, device, values, &err), 0, "%s", err.msg);
    for (int i = 0; i < ROWS * COLS / 2; i++) {
        const unsigned even = data[i] & 0xFu, odd = data[i] >> 4;
        const unsigned want = (odd & 8u) << 4 | (even & 8u) << 3 | (odd & 7u) << 3 | (even & 7u);
        cr_assert_eq(device[i], want, "byte %d (file 0x%02x): device 0x%02x, want 0x%02x", i, data[i], device[i], want);
    }
    for (int r = 0; r < ROWS; r++)
        mimo_matrix_row_f32(&m, r, ref + (size_t)r * COLS);
    for (int i = 0; i < ROWS * COLS; i++)
        cr_assert_eq(values[i], ref[i], "element (%d, %d): device %g, CPU %g", i / COLS, i % COLS, values[i], ref[i]);
    free(values);
    free(ref);
}

/* A plain matrix's several positions on the CUDA-core kernel of one position (a block row each, in the
 * one-position launch shape): each position's outputs must equal a one-position launch's bit for bit, and
 * the CPU's; the defaults take f32 matrices (the `small` preset's router, 64 x 2048), path 25 every format up
 * to 1024 rows, path 26 none (the launch counter tells). */
Test(cuda_kernels, gemv1_positions_equal_one_position_bit_for_bit)
{
    need_gpu();
    const struct { mimo_weight_format fmt; int rows, cols, path; bool takes; } cases[] = {
        {MIMO_WFMT_F32, 64, 2048, 0, true},   {MIMO_WFMT_F32, 77, 1000, 0, true},
        {MIMO_WFMT_BF16, 384, 6144, 0, false}, {MIMO_WFMT_BF16, 384, 6144, 25, true},
        {MIMO_WFMT_FP8, 300, 1024, 25, true},  {MIMO_WFMT_MXFP4, 200, 2080, 25, true},
        {MIMO_WFMT_F32, 1025, 512, 25, true},  {MIMO_WFMT_BF16, 1025, 512, 25, false},
        {MIMO_WFMT_F32, 64, 2048, 26, false},
    };
    const int ns[] = {2, 8, 13, 16};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
            const int rows = cases[c].rows, cols = cases[c].cols, n = ns[i];
            const char *fmt = mimo_weight_format_name(cases[c].fmt);
            cr_assert_eq(mimo_cuda_test_set_gemv_path(cases[c].path), 0);
            void *data, *scales;
            mimo_matrix m = random_matrix(cases[c].fmt, rows, cols, &data, &scales);
            float *x = malloc((size_t)n * cols * sizeof(float)), *y = malloc((size_t)n * rows * sizeof(float));
            float *y1 = malloc((size_t)rows * sizeof(float)), *ref = malloc((size_t)n * rows * sizeof(float));
            for (size_t k = 0; k < (size_t)n * cols; k++)
                x[k] = frand();
            for (int t = 0; t < n; t++)
                mimo_matrix_gemv_f32(&m, x + (size_t)t * cols, ref + (size_t)t * rows);
            mimo_error err = {{0}};
            const long long before = mimo_cuda_test_gemv1_positions_launches();
            cr_assert_eq(mimo_cuda_test_gemv(&m, x, n, y, &err), 0, "%s", err.msg);
            const long long taken = mimo_cuda_test_gemv1_positions_launches() - before;
            cr_assert_eq(taken, cases[c].takes ? 1 : 0, "%s %dx%d n=%d path %d: %lld launches of the positions path",
                         fmt, rows, cols, n, cases[c].path, taken);
            const double rel = mimo_test_rel_err(y, ref, (size_t)n * rows);
            cr_assert(all_finite(y, (size_t)n * rows) && rel < 1e-4, "%s %dx%d n=%d path %d: rel err %g", fmt, rows,
                      cols, n, cases[c].path, rel);
            if (cases[c].takes)
                for (int t = 0; t < n; t++) {
                    cr_assert_eq(mimo_cuda_test_gemv(&m, x + (size_t)t * cols, 1, y1, &err), 0, "%s", err.msg);
                    cr_assert(memcmp(y + (size_t)t * rows, y1, (size_t)rows * sizeof(float)) == 0,
                              "%s %dx%d n=%d path %d: position %d differs from its one-position launch", fmt, rows,
                              cols, n, cases[c].path, t);
                }
            free(x);
            free(y);
            free(y1);
            free(ref);
            free(data);
            free(scales);
        }
    mimo_cuda_test_set_gemv_path(0);
}

/* y += W x (o_proj and the dense down projection add into the residual): every format, one position
 * (the CUDA-core kernel reads the old y right after its wait) and several (tensor cores), every path. */
Test(cuda_kernels, gemv_accumulates_into_y)
{
    need_gpu();
    const int ns[] = {1, 8, 13}, rows = 300, cols = 520;
    for (int path = 0; path < MIMO_CUDA_TEST_GEMV_PATHS; path++) {
        cr_assert_eq(mimo_cuda_test_set_gemv_path(path), 0);
        for (int f = 0; f < MIMO_WFMT_COUNT; f++)
            for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
                const int n = ns[i];
                void *data, *scales;
                mimo_matrix m = random_matrix((mimo_weight_format)f, rows, f == MIMO_WFMT_MXFP4 ? 512 : cols, &data,
                                              &scales);
                float *x = malloc((size_t)n * m.cols * sizeof(float));
                float *y = malloc((size_t)n * rows * sizeof(float));
                float *ref = malloc((size_t)n * rows * sizeof(float));
                for (size_t j = 0; j < (size_t)n * m.cols; j++)
                    x[j] = frand();
                for (int t = 0; t < n; t++) {
                    mimo_matrix_gemv_f32(&m, x + (size_t)t * m.cols, ref + (size_t)t * rows);
                    for (int r = 0; r < rows; r++) {
                        y[(size_t)t * rows + r] = 4.0f * frand();
                        ref[(size_t)t * rows + r] += y[(size_t)t * rows + r];
                    }
                }
                mimo_error err = {{0}};
                cr_assert_eq(mimo_cuda_test_gemv_accumulate(&m, x, n, y, &err), 0, "%s", err.msg);
                double rel = mimo_test_rel_err(y, ref, (size_t)n * rows);
                cr_assert(rel < 1e-4, "%s n=%d path %d: rel err %g", mimo_weight_format_name((mimo_weight_format)f), n,
                          path, rel);
                free(x);
                free(y);
                free(ref);
                free(data);
                free(scales);
            }
    }
    mimo_cuda_test_set_gemv_path(0);
}

/* The dense GEMVs of several positions on dense_bulk_kernel (bf16 / fp8 weights in 128-row tiles through
 * tensor copies, the input staged once a block): the MiMo-V2.5-Pro shard's qkv projection (fp8 3392 x 6144,
 * a half tile at the end) at 8 and 16 positions and its o_proj (bf16 6144 x 2048, accumulating into y), and
 * small ragged shapes in one chunk (path 22), two (path 23) and ten (path 28: the tile's last block sums the
 * partials of more chunks than it loads at once: split_sum_in_order's batch), and the shard's lm head (bf16 19072 x
 * 6144), which no column split puts in one wave: several waves of 2 blocks an SM by default (db_chunks). Against
 * the reference and against the per-lane-load tensor-core kernel (path 2); the launch count says it ran. */
static void check_dense_bulk(mimo_weight_format fmt, int rows, int cols, int n, bool accumulate, int path)
{
    void *data, *scales;
    mimo_matrix m = random_matrix(fmt, rows, cols, &data, &scales);
    float *x = malloc((size_t)n * cols * sizeof(float));
    float *y = malloc((size_t)n * rows * sizeof(float)), *y2 = malloc((size_t)n * rows * sizeof(float));
    float *ref = malloc((size_t)n * rows * sizeof(float));
    for (size_t i = 0; i < (size_t)n * cols; i++)
        x[i] = frand();
    for (int t = 0; t < n; t++) {
        mimo_matrix_gemv_f32(&m, x + (size_t)t * cols, ref + (size_t)t * rows);
        for (int r = 0; r < rows; r++) {
            const float old = accumulate ? 4.0f * frand() : 0.0f;
            y[(size_t)t * rows + r] = y2[(size_t)t * rows + r] = old;
            ref[(size_t)t * rows + r] += old;
        }
    }
    mimo_error err = {{0}};
    cr_assert_eq(mimo_cuda_test_set_gemv_path(2), 0);
    cr_assert_eq(accumulate ? mimo_cuda_test_gemv_accumulate(&m, x, n, y2, &err) : mimo_cuda_test_gemv(&m, x, n, y2, &err),
                 0, "%s", err.msg);
    cr_assert_eq(mimo_cuda_test_set_gemv_path(path), 0);
    const long long before = mimo_cuda_test_dense_bulk_launches();
    cr_assert_eq(accumulate ? mimo_cuda_test_gemv_accumulate(&m, x, n, y, &err) : mimo_cuda_test_gemv(&m, x, n, y, &err),
                 0, "%s", err.msg);
    const char *name = mimo_weight_format_name(fmt);
    cr_assert_eq(mimo_cuda_test_dense_bulk_launches() - before, 1, "%s %dx%d n=%d path %d: not on the dense bulk kernel",
                 name, rows, cols, n, path);
    cr_assert(all_finite(y, (size_t)n * rows), "%s %dx%d n=%d path %d: output not finite", name, rows, cols, n, path);
    const double rel = mimo_test_rel_err(y, ref, (size_t)n * rows), rel_mma = mimo_test_rel_err(y, y2, (size_t)n * rows);
    cr_log_info("dense_bulk %s %dx%d n=%d%s path %d: rel err %.3g (reference), %.3g (per-lane-load kernel)", name, rows,
                cols, n, accumulate ? " accumulate" : "", path, rel, rel_mma);
    cr_assert(rel < 1e-4, "%s %dx%d n=%d path %d: rel err %g against the reference", name, rows, cols, n, path, rel);
    cr_assert(rel_mma < 1e-5, "%s %dx%d n=%d path %d: rel err %g against path 2", name, rows, cols, n, path, rel_mma);
    free(x);
    free(y);
    free(y2);
    free(ref);
    free(data);
    free(scales);
}

Test(cuda_kernels, dense_bulk_gemv)
{
    need_gpu();
    check_dense_bulk(MIMO_WFMT_FP8, 3392, 6144, 8, false, 0);
    check_dense_bulk(MIMO_WFMT_FP8, 3392, 6144, 16, false, 0);
    check_dense_bulk(MIMO_WFMT_BF16, 6144, 2048, 8, true, 0);
    check_dense_bulk(MIMO_WFMT_BF16, 6144, 2048, 13, true, 0);
    const int paths[2] = {22, 23};
    for (int i = 0; i < 2; i++) {
        check_dense_bulk(MIMO_WFMT_BF16, 200, 640, 3, false, paths[i]);
        check_dense_bulk(MIMO_WFMT_BF16, 200, 640, 16, true, paths[i]);
        check_dense_bulk(MIMO_WFMT_FP8, 300, 1024, 13, false, paths[i]);
        check_dense_bulk(MIMO_WFMT_FP8, 77, 512, 2, true, paths[i]);
    }
    check_dense_bulk(MIMO_WFMT_BF16, 200, 1280, 16, true, 28);
    check_dense_bulk(MIMO_WFMT_FP8, 300, 1280, 13, false, 28);
    check_dense_bulk(MIMO_WFMT_FP8, 1100, 1280, 8, true, 28);
    check_dense_bulk(MIMO_WFMT_BF16, 19072, 6144, 8, false, 0);
    /* the default leaves matrices under 1024 rows (the router's 384) to gemv_mma_kernel */
    cr_assert_eq(mimo_cuda_test_set_gemv_path(0), 0);
    void *data, *scales;
    mimo_matrix m = random_matrix(MIMO_WFMT_BF16, 384, 640, &data, &scales);
    float *x = calloc((size_t)8 * 640, sizeof(float)), *y = malloc((size_t)8 * 384 * sizeof(float));
    mimo_error err = {{0}};
    const long long before = mimo_cuda_test_dense_bulk_launches();
    cr_assert_eq(mimo_cuda_test_gemv(&m, x, 8, y, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_cuda_test_dense_bulk_launches(), before, "384 rows on the dense bulk kernel by default");
    free(x);
    free(y);
    free(data);
    free(scales);
}

/* One case of an RMSNorm of several positions folded into the GEMV that reads it (GemvNormX): a plain matrix
 * (k = 0) or MXFP4 gate/up slots (k a position) read the residual rows and normalise them themselves. Against
 * the CPU (the norm, then the GEMV) and against the same GEMV after the norm kernel (path 27); `kernel`: the
 * one `path` must fold it into (the launch counters say so), or FOLD_NONE where it must keep the norm kernel.
 * Residual rows of rms ~10 with outliers of ~200, norm weights in [0.5, 1.5]: an input left unnormalised or
 * unweighted fails the reference. */
enum { FOLD_NONE, FOLD_DENSE_BULK, FOLD_MMA, FOLD_GLU_BULK };
static void check_norm_folded(mimo_weight_format fmt, int rows, int cols, int n, int k, int path, int kernel)
{
    enum { E = 5 };
    const int slots = k > 0, sets = slots ? E : 1, n_out = slots ? n * k : n;
    mimo_matrix w[E], u[E];
    void *wd[E], *ws[E], *ud[E] = {0}, *us[E] = {0};
    for (int e = 0; e < sets; e++) {
        w[e] = random_matrix(fmt, rows, cols, &wd[e], &ws[e]);
        if (slots)
            u[e] = random_matrix(fmt, rows, cols, &ud[e], &us[e]);
    }
    int32_t *ids = slots ? malloc((size_t)n * k * sizeof(int32_t)) : NULL;
    for (int s = 0; slots && s < n * k; s++)
        ids[s] = (s * 3 + s / k) % E;   /* repeats across positions */
    float *x = malloc((size_t)n * cols * sizeof(float)), *nw = malloc((size_t)cols * sizeof(float));
    float *h = malloc((size_t)n * cols * sizeof(float)), *ref = malloc((size_t)n_out * rows * sizeof(float));
    float *y = malloc((size_t)n_out * rows * sizeof(float)), *y_norm = malloc((size_t)n_out * rows * sizeof(float));
    float *a = malloc((size_t)rows * sizeof(float)), *b = malloc((size_t)rows * sizeof(float));
    for (int i = 0; i < n * cols; i++)
        x[i] = frand() * (i % 89 == 0 ? 200.0f : 10.0f);
    for (int i = 0; i < cols; i++)
        nw[i] = 1.0f + 0.5f * frand();
    for (int t = 0; t < n; t++)
        mimo_cpu_rmsnorm(h + (size_t)t * cols, x + (size_t)t * cols, nw, cols, 1e-6f);
    for (int s = 0; s < n_out; s++) {
        const float *hs = h + (size_t)(slots ? s / k : s) * cols;
        if (!slots) {
            mimo_matrix_gemv_f32(&w[0], hs, ref + (size_t)s * rows);
            continue;
        }
        mimo_matrix_gemv_f32(&w[ids[s]], hs, a);
        mimo_matrix_gemv_f32(&u[ids[s]], hs, b);
        mimo_cpu_swiglu(ref + (size_t)s * rows, a, b, rows);
    }
    const char *name = mimo_weight_format_name(fmt);
    mimo_error err = {{0}};
    int folded = -1;
    cr_assert_eq(mimo_cuda_test_set_gemv_path(27), 0);
    cr_assert_eq(mimo_cuda_test_gemv_rmsnorm_in(w, slots ? u : NULL, E, ids, k, x, nw, 1e-6f, n, y_norm, &folded, &err),
                 0, "%s", err.msg);
    cr_assert_eq(folded, 0, "path 27 folded the norm");
    cr_assert_eq(mimo_cuda_test_set_gemv_path(path), 0);
    const long long dense0 = mimo_cuda_test_dense_bulk_launches(), glu0 = mimo_cuda_test_expert_glu_bulk_launches();
    cr_assert_eq(mimo_cuda_test_gemv_rmsnorm_in(w, slots ? u : NULL, E, ids, k, x, nw, 1e-6f, n, y, &folded, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(folded, kernel != FOLD_NONE, "%s %dx%d n=%d k=%d path %d: folded %d", name, rows, cols, n, k, path,
                 folded);
    if (folded) {
        const long long dense = mimo_cuda_test_dense_bulk_launches() - dense0;
        const long long glu = mimo_cuda_test_expert_glu_bulk_launches() - glu0;
        cr_assert(dense == (kernel == FOLD_DENSE_BULK) && glu == (kernel == FOLD_GLU_BULK),
                  "%s %dx%d n=%d k=%d path %d: folded, but %lld dense bulk / %lld gate/up bulk launches (kernel %d)", name,
                  rows, cols, n, k, path, dense, glu, kernel);
    }
    cr_assert(all_finite(y, (size_t)n_out * rows), "%s %dx%d n=%d k=%d path %d: output not finite", name, rows, cols, n, k,
              path);
    const double rel = mimo_test_rel_err(y, ref, (size_t)n_out * rows);
    const double rel_norm = mimo_test_rel_err(y, y_norm, (size_t)n_out * rows);
    const double rel_norm_ref = mimo_test_rel_err(y_norm, ref, (size_t)n_out * rows);
    cr_log_info("norm folded %s %dx%d n=%d k=%d path %d (folded %d): rel err %.3g (reference), %.3g (norm kernel first; "
                "that against the reference %.3g)", name, rows, cols, n, k, path, folded, rel, rel_norm, rel_norm_ref);
    cr_assert(rel < 1e-4 && rel_norm_ref < 1e-4, "%s %dx%d n=%d k=%d path %d: rel err %g (norm kernel first: %g)", name,
              rows, cols, n, k, path, rel, rel_norm_ref);
    cr_assert(rel_norm < 1e-5, "%s %dx%d n=%d k=%d path %d: rel err %g against the norm kernel first", name, rows, cols,
              n, k, path, rel_norm);
    for (int e = 0; e < sets; e++) {
        free(wd[e]);
        free(ws[e]);
        free(ud[e]);
        free(us[e]);
    }
    void *owned[] = {ids, x, nw, h, ref, y, y_norm, a, b};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        free(owned[i]);
    mimo_cuda_test_set_gemv_path(0);
}

/* The defaults fold the norms of the MiMo-V2.5-Pro shard's several-position readers: the qkv projection (fp8
 * 3392 x 6144) at 8 and 16 positions and a bf16 6144 x 2048 at 13 on the dense bulk kernel, the router (bf16
 * 384 x 6144) at 8 and 16 and a plain MXFP4 matrix on the tensor-core kernel, the MXFP4 gate/up slots (256 x
 * 6144, 8 a position) at 8 and `small`'s (768 x 2048) at 13 on the gate/up bulk kernel (and slots of two
 * positions there, path 18); ragged shapes in one chunk (path 22), two (path 23) and ten (path 28), where a
 * chunk that is no multiple of 128 columns (200 x 640 in two) leaves the dense kernel for the tensor-core one,
 * as 1024 rows do with the dense kernel off (path 2). The lm head (bf16 19072 x 6144) at 8 positions folds its
 * norm on the dense kernel's launch of several waves. The norm kernel stays for f32 matrices (`small`'s router),
 * the tensor-core kernel's matrices of more than 1024 rows (the qkv shape on path 2; the lm head without launches
 * of several waves, path 29), its other pipeline (path 3) and slots off the bulk kernel (path 2). */
Test(cuda_kernels, rmsnorm_folded_into_readers)
{
    need_gpu();
    check_norm_folded(MIMO_WFMT_FP8, 3392, 6144, 8, 0, 0, FOLD_DENSE_BULK);
    check_norm_folded(MIMO_WFMT_FP8, 3392, 6144, 16, 0, 0, FOLD_DENSE_BULK);
    check_norm_folded(MIMO_WFMT_BF16, 6144, 2048, 13, 0, 0, FOLD_DENSE_BULK);
    check_norm_folded(MIMO_WFMT_BF16, 384, 6144, 8, 0, 0, FOLD_MMA);
    check_norm_folded(MIMO_WFMT_BF16, 384, 6144, 16, 0, 0, FOLD_MMA);
    check_norm_folded(MIMO_WFMT_MXFP4, 300, 1024, 8, 0, 0, FOLD_MMA);
    check_norm_folded(MIMO_WFMT_MXFP4, 256, 6144, 8, 8, 0, FOLD_GLU_BULK);
    check_norm_folded(MIMO_WFMT_MXFP4, 768, 2048, 13, 8, 0, FOLD_GLU_BULK);
    check_norm_folded(MIMO_WFMT_MXFP4, 200, 2560, 2, 3, 18, FOLD_GLU_BULK);
    const int paths[2] = {22, 23};
    for (int i = 0; i < 2; i++) {
        check_norm_folded(MIMO_WFMT_BF16, 200, 1024, 3, 0, paths[i], FOLD_DENSE_BULK);
        check_norm_folded(MIMO_WFMT_FP8, 300, 1024, 13, 0, paths[i], FOLD_DENSE_BULK);
        check_norm_folded(MIMO_WFMT_FP8, 77, 512, 2, 0, paths[i], FOLD_DENSE_BULK);
    }
    check_norm_folded(MIMO_WFMT_BF16, 200, 1280, 16, 0, 28, FOLD_DENSE_BULK);   /* ten chunks of 128 columns */
    check_norm_folded(MIMO_WFMT_FP8, 300, 1280, 13, 0, 28, FOLD_DENSE_BULK);
    check_norm_folded(MIMO_WFMT_BF16, 200, 640, 16, 0, 23, FOLD_MMA);
    check_norm_folded(MIMO_WFMT_FP8, 1024, 6144, 8, 0, 2, FOLD_MMA);
    check_norm_folded(MIMO_WFMT_BF16, 19072, 6144, 8, 0, 0, FOLD_DENSE_BULK);
    check_norm_folded(MIMO_WFMT_FP8, 3392, 6144, 8, 0, 2, FOLD_NONE);
    check_norm_folded(MIMO_WFMT_BF16, 19072, 6144, 8, 0, 29, FOLD_NONE);
    check_norm_folded(MIMO_WFMT_F32, 64, 2048, 8, 0, 0, FOLD_NONE);
    check_norm_folded(MIMO_WFMT_FP8, 300, 1024, 8, 0, 3, FOLD_NONE);
    check_norm_folded(MIMO_WFMT_MXFP4, 256, 6144, 8, 8, 2, FOLD_NONE);
}

Test(cuda_kernels, gemv_fp8_grouped_scale_rows)
{
    need_gpu();
    /* Rows in groups of 200 whose scale rows are padded per group (the interleaved qkv layout). */
    const int rows = 600, cols = 384, G = 200, srows = 3 * 2;
    uint8_t *q = malloc((size_t)rows * cols);
    float *s = malloc((size_t)srows * 3 * sizeof(float));
    for (int i = 0; i < rows * cols; i++)
        q[i] = (uint8_t)((rand() % 0x7E) | ((rand() & 1) << 7));   /* any code but NaN */
    for (int i = 0; i < srows * 3; i++)
        s[i] = 0.01f + 0.1f * (float)i;
    mimo_matrix m = {.format = MIMO_WFMT_FP8, .rows = rows, .cols = cols, .data = q, .scales = s, .scale_group_rows = G};
    float *x = malloc(cols * sizeof(float)), *y = malloc(rows * sizeof(float)), *ref = malloc(rows * sizeof(float));
    for (int i = 0; i < cols; i++)
        x[i] = frand();
    mimo_matrix_gemv_f32(&m, x, ref);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_cuda_test_gemv(&m, x, 1, y, &err), 0, "%s", err.msg);
    double rel = mimo_test_rel_err(y, ref, rows);
    cr_assert(rel < 1e-5, "rel err %g", rel);
    free(q);
    free(s);
    free(x);
    free(y);
    free(ref);
}

Test(cuda_kernels, gemv_swiglu_fused)
{
    need_gpu();
    for (int path = 0; path < MIMO_CUDA_TEST_GEMV_PATHS; path++)
    for (int f = MIMO_WFMT_BF16; f < MIMO_WFMT_COUNT; f++)
    for (int n = 1; n <= 4; n += 3) {
        const int rows = 200, cols = 512;
        cr_assert_eq(mimo_cuda_test_set_gemv_path(path), 0);
        void *gd, *gs, *ud, *us;
        mimo_matrix g = random_matrix((mimo_weight_format)f, rows, cols, &gd, &gs);
        mimo_matrix u = random_matrix((mimo_weight_format)f, rows, cols, &ud, &us);
        float x[4 * 512], y[4 * 200], ref[4 * 200], a[200], b[200];
        for (int i = 0; i < n * cols; i++)
            x[i] = frand() * 0.1f;
        for (int t = 0; t < n; t++) {
            mimo_matrix_gemv_f32(&g, x + t * cols, a);
            mimo_matrix_gemv_f32(&u, x + t * cols, b);
            mimo_cpu_swiglu(ref + t * rows, a, b, rows);
        }
        mimo_error err = {{0}};
        cr_assert_eq(mimo_cuda_test_gemv_glu(&g, &u, x, n, y, &err), 0, "%s", err.msg);
        double rel = mimo_test_rel_err(y, ref, (size_t)n * rows);
        cr_assert(rel < 1e-4, "%s n=%d path %d: rel err %g", mimo_weight_format_name((mimo_weight_format)f), n, path, rel);
        free(gd);
        free(gs);
        free(ud);
        free(us);
    }
}

/* Expert slots on every GEMV path: plain projections and gate/up pairs (the routed experts' two
 * projections), at a shape of whole tiles and one of partial ones (rows not a multiple of 16,
 * columns not a multiple of 128). */
Test(cuda_kernels, gemv_expert_slots)
{
    need_gpu();
    enum { E = 6, MAX_ROWS = 200, MAX_COLS = 4160, SLOTS = 8, K = 2 };
    /* the third: MXFP4 gate/up rows of 130 vectors, the one-pass shape's range (65..192) */
    const int shapes[3][2] = {{96, 256}, {200, 480}, {40, 4160}};
    static float x[SLOTS / K * MAX_COLS], y[SLOTS * MAX_ROWS], ref[SLOTS * MAX_ROWS], a[MAX_ROWS], b[MAX_ROWS];
    for (int sh = 0; sh < 3; sh++)
    for (int glu = 0; glu < 2; glu++)
    for (int path = 0; path < MIMO_CUDA_TEST_GEMV_PATHS; path++)
    for (int f = MIMO_WFMT_BF16; f < MIMO_WFMT_COUNT; f++) {
        const int ROWS = shapes[sh][0], COLS = shapes[sh][1];
        cr_assert_eq(mimo_cuda_test_set_gemv_path(path), 0);
        mimo_matrix ms[E], us[E];
        void *d[E], *s[E], *ud[E], *usc[E];
        for (int e = 0; e < E; e++) {
            ms[e] = random_matrix((mimo_weight_format)f, ROWS, COLS, &d[e], &s[e]);
            ud[e] = usc[e] = NULL;
            if (glu)
                us[e] = random_matrix((mimo_weight_format)f, ROWS, COLS, &ud[e], &usc[e]);
        }
        int32_t ids[SLOTS] = {5, 0, 3, 3, 1, 5, 2, 4};   /* repeats too */
        for (int i = 0; i < SLOTS / K * COLS; i++)
            x[i] = glu ? frand() * 0.1f : frand();
        for (int sl = 0; sl < SLOTS; sl++) {
            const float *xs = x + (sl / K) * COLS;
            if (glu) {
                mimo_matrix_gemv_f32(&ms[ids[sl]], xs, a);
                mimo_matrix_gemv_f32(&us[ids[sl]], xs, b);
                mimo_cpu_swiglu(ref + sl * ROWS, a, b, ROWS);
            } else {
                mimo_matrix_gemv_f32(&ms[ids[sl]], xs, ref + sl * ROWS);
            }
        }
        mimo_error err = {{0}};
        cr_assert_eq(mimo_cuda_test_expert_gemv(ms, glu ? us : NULL, E, ids, SLOTS, x, K, y, &err), 0, "%s", err.msg);
        const char *fmt = mimo_weight_format_name((mimo_weight_format)f);
        cr_assert(all_finite(y, (size_t)SLOTS * ROWS), "%s %dx%d glu %d path %d: output not fully written", fmt, ROWS,
                  COLS, glu, path);
        double rel = mimo_test_rel_err(y, ref, (size_t)SLOTS * ROWS);
        cr_assert(rel < 1e-4, "%s %dx%d glu %d path %d: rel err %g", fmt, ROWS, COLS, glu, path, rel);
        for (int e = 0; e < E; e++) {
            free(d[e]);
            free(s[e]);
            free(ud[e]);
            free(usc[e]);
        }
    }
}

/* One launch of MXFP4 gate/up slots (npos positions of K = 8 slots over E experts, ids repeating across
 * positions; inputs over a wide range of magnitudes, for the halves' scaling) that must take
 * expert_glu_bulk_kernel on GEMV path `path`: against the reference and against the CUDA-core kernel (path 1),
 * and the launch count says it ran. */
static void check_expert_glu_bulk(int rows, int cols, int npos, int path)
{
    enum { E = 5, K = 8 };
    const int slots = npos * K;
    mimo_matrix gs[E], us[E];
    void *gd[E], *gsc[E], *ud[E], *usc[E];
    for (int e = 0; e < E; e++) {
        gs[e] = random_matrix(MIMO_WFMT_MXFP4, rows, cols, &gd[e], &gsc[e]);
        us[e] = random_matrix(MIMO_WFMT_MXFP4, rows, cols, &ud[e], &usc[e]);
    }
    int32_t *ids = malloc((size_t)slots * sizeof(int32_t));
    for (int s = 0; s < slots; s++)
        ids[s] = (s * 3 + s / K) % E;   /* repeats across positions */
    float *x = malloc((size_t)npos * cols * sizeof(float));
    for (int i = 0; i < npos * cols; i++)   /* magnitudes from ~1e-4 to ~30 */
        x[i] = frand() * (i % 97 == 0 ? 30.0f : i % 5 == 0 ? 1e-3f : 0.05f);
    float *ref = malloc((size_t)slots * rows * sizeof(float)), *y = malloc((size_t)slots * rows * sizeof(float));
    float *core = malloc((size_t)slots * rows * sizeof(float));
    float *a = malloc((size_t)rows * sizeof(float)), *b = malloc((size_t)rows * sizeof(float));
    for (int s = 0; s < slots; s++) {
        mimo_matrix_gemv_f32(&gs[ids[s]], x + (size_t)(s / K) * cols, a);
        mimo_matrix_gemv_f32(&us[ids[s]], x + (size_t)(s / K) * cols, b);
        mimo_cpu_swiglu(ref + (size_t)s * rows, a, b, rows);
    }
    mimo_error err = {{0}};
    cr_assert_eq(mimo_cuda_test_set_gemv_path(1), 0);
    cr_assert_eq(mimo_cuda_test_expert_gemv(gs, us, E, ids, slots, x, K, core, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_cuda_test_set_gemv_path(path), 0);
    const long long before = mimo_cuda_test_expert_glu_bulk_launches();
    cr_assert_eq(mimo_cuda_test_expert_gemv(gs, us, E, ids, slots, x, K, y, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_cuda_test_expert_glu_bulk_launches() - before, 1,
                 "path %d, %dx%d, %d positions: not on the bulk kernel", path, rows, cols, npos);
    cr_assert(all_finite(y, (size_t)slots * rows), "%dx%d, %d positions: output not fully written", rows, cols, npos);
    const double rel = mimo_test_rel_err(y, ref, (size_t)slots * rows);
    const double rel_core = mimo_test_rel_err(y, core, (size_t)slots * rows);
    cr_log_info("expert_glu_bulk path %d, %dx%d, %d positions: rel err %.3g (reference), %.3g (CUDA-core kernel)", path,
                rows, cols, npos, rel, rel_core);
    cr_assert(rel < 1e-4, "path %d, %dx%d, %d positions: rel err %g against the reference", path, rows, cols, npos, rel);
    cr_assert(rel_core < 1e-5, "path %d, %dx%d, %d positions: rel err %g against the CUDA-core kernel", path, rows,
              cols, npos, rel_core);
    for (int e = 0; e < E; e++) {
        free(gd[e]);
        free(gsc[e]);
        free(ud[e]);
        free(usc[e]);
    }
    free(ids);
    free(x);
    free(ref);
    free(y);
    free(core);
    free(a);
    free(b);
    mimo_cuda_test_set_gemv_path(0);
}

/* The MXFP4 gate/up slots on the tensor cores with bulk-copied weights (expert_glu_bulk_kernel): the
 * MiMo-V2.5-Pro shard's shape (256 rows of 6144 columns, 3 stages through the 2-stage ring), ragged rows
 * with a partial last stage (200 x 2560: 20 chunks), one partial stage (40 x 512); two and one positions
 * (path 18 takes one position too); one tile a block where the launch is small (path 18), 4 and 3 tiles a
 * block (paths 19, 20: a block's later tiles through the same ring, the last block's fewer, 3 tiles of 40
 * rows in one block). */
Test(cuda_kernels, expert_glu_bulk_slots)
{
    need_gpu();
    const int shapes[3][2] = {{256, 6144}, {200, 2560}, {40, 512}};
    for (int path = 18; path <= 20; path++)
        for (int sh = 0; sh < 3; sh++)
            for (int npos = 1; npos <= 2; npos++)
                check_expert_glu_bulk(shapes[sh][0], shapes[sh][1], npos, path);
}

/* The defaults (path 0) on `small`'s gate/up shape (768 x 2048) at 8 positions, and a ragged 760 rows (a half
 * last tile) at 13: the bulk kernel takes them (rows of 2048 columns), each slot's tiles split evenly over its
 * share of a wave (12 and 24 tiles a block on 132 SMs). */
Test(cuda_kernels, expert_glu_bulk_default_small_shape)
{
    need_gpu();
    check_expert_glu_bulk(768, 2048, 8, 0);
    check_expert_glu_bulk(760, 2048, 13, 0);
}

/* One case of the expert down projection with the MoE combine: k slots a position over npos positions (ids
 * repeating across positions, combine weights in [0.1, 0.9]), the slots' activations (wide: magnitudes from
 * ~1e-4 to ~30), the residual rows x0 and the reference ref = x0 + sum_j w_j E_j act_j. */
static void down_combine_case(const mimo_matrix *ms, int n_experts, int k, int npos, bool wide, int32_t *ids,
                              float *w, float *act, float *x0, float *ref)
{
    const int rows = (int)ms[0].rows, cols = (int)ms[0].cols, slots = k * npos;
    float *y = malloc((size_t)rows * sizeof(float));
    for (int sl = 0; sl < slots; sl++) {
        ids[sl] = (sl * 5 + 1) % n_experts;
        w[sl] = 0.1f + 0.8f * fabsf(frand());
    }
    for (int i = 0; i < slots * cols; i++)
        act[i] = wide ? frand() * (i % 97 == 0 ? 30.0f : i % 5 == 0 ? 1e-3f : 0.5f) : frand();
    for (int i = 0; i < npos * rows; i++)
        x0[i] = ref[i] = frand();
    for (int sl = 0; sl < slots; sl++) {
        mimo_matrix_gemv_f32(&ms[ids[sl]], act + (size_t)sl * cols, y);
        for (int r = 0; r < rows; r++)
            ref[(size_t)(sl / k) * rows + r] += w[sl] * y[r];
    }
    free(y);
}

/* The routed experts' down projection with the MoE combine folded in (the step's way) on every GEMV
 * path: against the reference (x + sum_j w_j E_j act_j), and against the GEMV-then-combine-kernel
 * route bit for bit where the slots keep whole rows per lane group (MXFP4: the same products in the
 * same order; to 1e-5 on path 21, the only one that must take the bulk kernel at this shape). k = 8
 * (MiMo's) and 3 (warps past k idle), partial row tiles. */
Test(cuda_kernels, expert_down_combine)
{
    need_gpu();
    enum { E = 6, ROWS = 200, COLS = 256, MAX_SLOTS = 16 };
    static float act[MAX_SLOTS * COLS], x0[MAX_SLOTS * ROWS], xf[MAX_SLOTS * ROWS], xu[MAX_SLOTS * ROWS],
        ref[MAX_SLOTS * ROWS];
    const int ks[2] = {8, 3};
    for (int ki = 0; ki < 2; ki++)
    for (int path = 0; path < MIMO_CUDA_TEST_GEMV_PATHS; path++)
    for (int f = MIMO_WFMT_BF16; f < MIMO_WFMT_COUNT; f++) {
        const int k = ks[ki], slots = k * 2, npos = 2;
        cr_assert_eq(mimo_cuda_test_set_gemv_path(path), 0);
        mimo_matrix ms[E];
        void *d[E], *s[E];
        for (int e = 0; e < E; e++)
            ms[e] = random_matrix((mimo_weight_format)f, ROWS, COLS, &d[e], &s[e]);
        int32_t ids[MAX_SLOTS];
        float w[MAX_SLOTS];
        down_combine_case(ms, E, k, npos, false, ids, w, act, x0, ref);
        memcpy(xf, x0, sizeof(float) * npos * ROWS);
        memcpy(xu, x0, sizeof(float) * npos * ROWS);
        mimo_error err = {{0}};
        const long long bulk_before = mimo_cuda_test_expert_down_bulk_launches();
        cr_assert_eq(mimo_cuda_test_expert_down_combine(ms, E, ids, w, slots, k, act, xf, true, &err), 0, "%s", err.msg);
        const bool bulk = mimo_cuda_test_expert_down_bulk_launches() > bulk_before;
        cr_assert_eq(mimo_cuda_test_expert_down_combine(ms, E, ids, w, slots, k, act, xu, false, &err), 0, "%s", err.msg);
        const char *fmt = mimo_weight_format_name((mimo_weight_format)f);
        cr_assert(bulk == (path == 21 && f == MIMO_WFMT_MXFP4), "%s k %d path %d: the bulk down projection %s", fmt, k,
                  path, bulk ? "ran" : "did not run");
        double rel = mimo_test_rel_err(xf, ref, (size_t)npos * ROWS);
        cr_assert(rel < 1e-4, "%s k %d path %d: fused rel err %g", fmt, k, path, rel);
        rel = mimo_test_rel_err(xu, ref, (size_t)npos * ROWS);
        cr_assert(rel < 1e-4, "%s k %d path %d: unfused rel err %g", fmt, k, path, rel);
        if (f == MIMO_WFMT_MXFP4 && !bulk)
            cr_assert(memcmp(xf, xu, sizeof(float) * npos * ROWS) == 0, "mxfp4 k %d path %d: fused != unfused", k, path);
        else if (bulk)   /* the tensor cores' sums: another order */
            cr_assert(mimo_test_rel_err(xf, xu, (size_t)npos * ROWS) < 1e-5, "k %d path %d: bulk fused vs unfused", k,
                      path);
        for (int e = 0; e < E; e++) {
            free(d[e]);
            free(s[e]);
        }
    }
}

/* The MXFP4 down projection with the MoE combine on the tensor cores, weights tensor-copied with the 128-byte
 * swizzle (expert_down_bulk_kernel, path 21): the MiMo-V2.5-Pro shard's shape (6144 rows of 256 columns: 48
 * tiles of 128 rows), two 256-column segments with a ragged last tile (200 x 512: 72 rows, the copies' rows
 * past the end landing as zeros), `small`'s (2048 rows of 768 columns: three segments), k = 8 (stages through
 * the 3-stage ring twice over) and 3, one and two positions; inputs over a wide range of magnitudes (the
 * halves' scaling). Against the reference and against the CUDA-core kernel's fused combine (path 1); the
 * launch count says it ran. The defaults (path 0) take the kernel at 2048 rows or more of several positions,
 * with the same sums bit for bit, and leave one position to the CUDA-core kernel. */
Test(cuda_kernels, expert_down_bulk_combine)
{
    need_gpu();
    enum { E = 6, MAX_K = 8, MAX_POS = 2 };
    const int shapes[3][2] = {{6144, 256}, {200, 512}, {2048, 768}}, ks[2] = {8, 3};
    for (int sh = 0; sh < 3; sh++)
    for (int ki = 0; ki < 2; ki++)
    for (int npos = 1; npos <= MAX_POS; npos++) {
        const int ROWS = shapes[sh][0], COLS = shapes[sh][1], k = ks[ki], slots = k * npos;
        mimo_matrix ms[E];
        void *d[E], *s[E];
        for (int e = 0; e < E; e++)
            ms[e] = random_matrix(MIMO_WFMT_MXFP4, ROWS, COLS, &d[e], &s[e]);
        int32_t ids[MAX_K * MAX_POS];
        float w[MAX_K * MAX_POS];
        float *act = malloc((size_t)slots * COLS * sizeof(float));
        float *x0 = malloc((size_t)npos * ROWS * sizeof(float)), *ref = malloc((size_t)npos * ROWS * sizeof(float));
        float *xb = malloc((size_t)npos * ROWS * sizeof(float)), *xc = malloc((size_t)npos * ROWS * sizeof(float));
        down_combine_case(ms, E, k, npos, true, ids, w, act, x0, ref);
        memcpy(xb, x0, sizeof(float) * npos * ROWS);
        memcpy(xc, x0, sizeof(float) * npos * ROWS);
        mimo_error err = {{0}};
        cr_assert_eq(mimo_cuda_test_set_gemv_path(1), 0);
        cr_assert_eq(mimo_cuda_test_expert_down_combine(ms, E, ids, w, slots, k, act, xc, true, &err), 0, "%s", err.msg);
        cr_assert_eq(mimo_cuda_test_set_gemv_path(21), 0);
        const long long before = mimo_cuda_test_expert_down_bulk_launches();
        cr_assert_eq(mimo_cuda_test_expert_down_combine(ms, E, ids, w, slots, k, act, xb, true, &err), 0, "%s", err.msg);
        cr_assert_eq(mimo_cuda_test_expert_down_bulk_launches() - before, 1,
                     "%dx%d, k %d, %d positions: not on the bulk kernel", ROWS, COLS, k, npos);
        cr_assert(all_finite(xb, (size_t)npos * ROWS), "%dx%d, k %d, %d positions: not finite", ROWS, COLS, k, npos);
        const double rel = mimo_test_rel_err(xb, ref, (size_t)npos * ROWS);
        const double rel_core = mimo_test_rel_err(xb, xc, (size_t)npos * ROWS);
        cr_log_info("expert_down_bulk %dx%d, k %d, %d positions: rel err %.3g (reference), %.3g (CUDA-core kernel)",
                    ROWS, COLS, k, npos, rel, rel_core);
        cr_assert(rel < 1e-4, "%dx%d, k %d, %d positions: rel err %g against the reference", ROWS, COLS, k, npos, rel);
        cr_assert(rel_core < 1e-5, "%dx%d, k %d, %d positions: rel err %g against the CUDA-core kernel", ROWS, COLS, k,
                  npos, rel_core);
        if (ROWS >= 2048) {   /* the defaults' rule */
            memcpy(xc, x0, sizeof(float) * npos * ROWS);
            cr_assert_eq(mimo_cuda_test_set_gemv_path(0), 0);
            const long long before0 = mimo_cuda_test_expert_down_bulk_launches();
            cr_assert_eq(mimo_cuda_test_expert_down_combine(ms, E, ids, w, slots, k, act, xc, true, &err), 0, "%s",
                         err.msg);
            const long long taken = mimo_cuda_test_expert_down_bulk_launches() - before0;
            cr_assert_eq(taken, npos > 1 ? 1 : 0, "%dx%d, k %d, %d positions: the defaults launched the bulk kernel %lld "
                         "times", ROWS, COLS, k, npos, taken);
            if (npos > 1)
                cr_assert(memcmp(xb, xc, sizeof(float) * npos * ROWS) == 0,
                          "%dx%d, k %d, %d positions: the defaults' sums differ from path 21's", ROWS, COLS, k, npos);
        }
        for (int e = 0; e < E; e++) {
            free(d[e]);
            free(s[e]);
        }
        free(act);
        free(x0);
        free(ref);
        free(xb);
        free(xc);
    }
    mimo_cuda_test_set_gemv_path(0);
}

Test(cuda_kernels, rmsnorm)
{
    need_gpu();
    enum { N = 5, DIM = 2000 };
    static float x[N * DIM], w[DIM], y[N * DIM], ref[N * DIM];
    for (int i = 0; i < N * DIM; i++)
        x[i] = frand() * 3.0f;
    for (int i = 0; i < DIM; i++)
        w[i] = 1.0f + 0.5f * frand();
    for (int t = 0; t < N; t++)
        mimo_cpu_rmsnorm(ref + t * DIM, x + t * DIM, w, DIM, 1e-5f);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_cuda_test_rmsnorm(x, w, DIM, 1e-5f, N, y, &err), 0, "%s", err.msg);
    double rel = mimo_test_rel_err(y, ref, N * DIM);
    cr_assert(rel < 1e-6, "rel err %g", rel);
}

/* The RMSNorm between two GEMVs of a one-position step, deferred into them (the writer of the residual
 * leaves h = x * w and partial sums, the reader scales by the norm's factor), against the reference:
 * every writer and reader format, plain and gate/up readers, on every GEMV path; with the defaults also
 * at MiMo-V2.5-Pro's o_proj shape (6144 x 2048: a bf16 writer of 384 blocks, more partial sums than a
 * reader block has threads). The defaults must defer it (but for an f32 writer of 768 blocks), path 14
 * (the knob off) must not. */
/* The inputs of a deferred-norm check and its CPU reference: a (K) and x, nw (H) drawn, xref = x + W a,
 * h = rmsnorm(xref) * nw. */
static void norm_writer_reference(const mimo_matrix *w, int H, int K, float *a, float *x, float *nw, float *xref,
                                  float *h)
{
    for (int i = 0; i < K; i++)
        a[i] = frand() * 0.2f;
    for (int i = 0; i < H; i++) {
        x[i] = frand() * 2.0f;
        nw[i] = 1.0f + 0.5f * frand();
    }
    mimo_matrix_gemv_f32(w, a, xref);
    for (int i = 0; i < H; i++)
        xref[i] += x[i];
    mimo_cpu_rmsnorm(h, xref, nw, H, 1e-6f);
}

/* A MoE layer's post-attention norm deferred into the router and the gate/up slots after it (the router
 * stores the factor, the slots take it): against the CPU (norm, router, top-k slots' SwiGLU) on every GEMV
 * path and expert format, the MiMo-V2.5-Pro shard's widths among them (hidden 6144, 384 experts' router,
 * 256-row slices); the defaults must defer it, path 14 (every norm a kernel) must not. */
Test(cuda_kernels, rmsnorm_deferred_into_router_and_expert_slots)
{
    need_gpu();
    enum { E = 5, K = 3 };
    const int shapes[2][4] = {{320, 512, 40, 64}, {6144, 2048, 384, 256}};   /* H, writer cols, router rows, slot rows */
    const int32_t ids[K] = {3, 0, 3};   /* a repeat, as top-k never gives, still must compute */
    for (int path = 0; path < MIMO_CUDA_TEST_GEMV_PATHS; path++)
    for (int sh = 0; sh < (path == 0 ? 2 : 1); sh++)
    for (int f = MIMO_WFMT_BF16; f < MIMO_WFMT_COUNT; f++) {
        cr_assert_eq(mimo_cuda_test_set_gemv_path(path), 0);
        const int H = shapes[sh][0], KC = shapes[sh][1], RR = shapes[sh][2], M = shapes[sh][3];
        const mimo_weight_format ef = (mimo_weight_format)f;
        void *wd, *ws, *rd, *rs, *gd[E], *gs[E], *ud[E], *us[E];
        mimo_matrix w = random_matrix(MIMO_WFMT_BF16, H, KC, &wd, &ws);
        mimo_matrix r = random_matrix(MIMO_WFMT_BF16, RR, H, &rd, &rs);
        mimo_matrix g[E], u[E];
        for (int e = 0; e < E; e++) {
            g[e] = random_matrix(ef, M, H, &gd[e], &gs[e]);
            u[e] = random_matrix(ef, M, H, &ud[e], &us[e]);
        }
        float *a = malloc(sizeof(float) * KC), *x = malloc(sizeof(float) * H), *xref = malloc(sizeof(float) * H);
        float *nw = malloc(sizeof(float) * H), *h = malloc(sizeof(float) * H);
        float *yr = malloc(sizeof(float) * RR), *yrref = malloc(sizeof(float) * RR);
        float *ys = malloc(sizeof(float) * K * M), *ysref = malloc(sizeof(float) * K * M);
        float *gv = malloc(sizeof(float) * M), *uv = malloc(sizeof(float) * M);
        norm_writer_reference(&w, H, KC, a, x, nw, xref, h);
        mimo_matrix_gemv_f32(&r, h, yrref);
        for (int j = 0; j < K; j++) {
            mimo_matrix_gemv_f32(&g[ids[j]], h, gv);
            mimo_matrix_gemv_f32(&u[ids[j]], h, uv);
            mimo_cpu_swiglu(ysref + (size_t)j * M, gv, uv, M);
        }
        for (int i = 0; i < K * M; i++)
            ys[i] = NAN;
        int deferred = -1;
        mimo_error err = {{0}};
        cr_assert_eq(mimo_cuda_test_norm_to_expert_slots(&w, a, x, nw, 1e-6f, &r, g, u, E, ids, K, yr, ys, &deferred,
                                                         &err), 0, "%s", err.msg);
        const char *fmt = mimo_weight_format_name(ef);
        if (path == 0)
            cr_assert_eq(deferred, 1, "%s slots, H %d: the defaults did not defer the norm", fmt, H);
        if (path == 14)
            cr_assert_eq(deferred, 0, "path 14 deferred the norm");
        cr_assert(all_finite(ys, (size_t)K * M), "path %d: slot outputs not fully written", path);
        const double xrel = mimo_test_rel_err(x, xref, (size_t)H), rrel = mimo_test_rel_err(yr, yrref, (size_t)RR),
                     srel = mimo_test_rel_err(ys, ysref, (size_t)K * M);
        cr_assert(xrel < 1e-4 && rrel < 1e-4 && srel < 1e-4,
                  "path %d, %s slots, H %d (deferred %d): x rel err %g, router %g, slots %g", path, fmt, H, deferred,
                  xrel, rrel, srel);
        void *owned[] = {wd, ws, rd, rs, a, x, xref, nw, h, yr, yrref, ys, ysref, gv, uv};
        for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
            free(owned[i]);
        for (int e = 0; e < E; e++) {
            free(gd[e]);
            free(gs[e]);
            free(ud[e]);
            free(us[e]);
        }
    }
    mimo_cuda_test_set_gemv_path(0);
}

Test(cuda_kernels, rmsnorm_deferred_between_gemvs)
{
    need_gpu();
    const int shapes[2][3] = {{320, 512, 200}, {6144, 2048, 96}};   /* writer rows, writer cols, reader rows */
    for (int path = 0; path < MIMO_CUDA_TEST_GEMV_PATHS; path++)
    for (int sh = 0; sh < (path == 0 ? 2 : 1); sh++)
    for (int f = 0; f < MIMO_WFMT_COUNT; f++)
    for (int glu = 0; glu < 2; glu++) {
        cr_assert_eq(mimo_cuda_test_set_gemv_path(path), 0);
        const int H = shapes[sh][0], K = shapes[sh][1], M = shapes[sh][2];
        const mimo_weight_format wf = (mimo_weight_format)f, rf = (mimo_weight_format)((f + 1 + glu) % MIMO_WFMT_COUNT);
        void *wd, *ws, *rd, *rs, *ud = NULL, *us = NULL;
        mimo_matrix w = random_matrix(wf, H, K, &wd, &ws);
        mimo_matrix r = random_matrix(rf, M, H, &rd, &rs);
        mimo_matrix u;
        if (glu)
            u = random_matrix(rf, M, H, &ud, &us);
        float *a = malloc((size_t)K * sizeof(float)), *x = malloc((size_t)H * sizeof(float));
        float *xref = malloc((size_t)H * sizeof(float)), *nw = malloc((size_t)H * sizeof(float));
        float *h = malloc((size_t)H * sizeof(float)), *y = malloc((size_t)M * sizeof(float));
        float *yref = malloc((size_t)M * sizeof(float)), *g = malloc((size_t)M * sizeof(float));
        float *b = malloc((size_t)M * sizeof(float));
        norm_writer_reference(&w, H, K, a, x, nw, xref, h);
        mimo_matrix_gemv_f32(&r, h, glu ? g : yref);
        if (glu) {
            mimo_matrix_gemv_f32(&u, h, b);
            mimo_cpu_swiglu(yref, g, b, M);
        }
        int deferred = -1;
        mimo_error err = {{0}};
        cr_assert_eq(mimo_cuda_test_norm_between_gemvs(&w, a, x, nw, 1e-6f, &r, glu ? &u : NULL, y, &deferred, &err), 0,
                     "%s", err.msg);
        const char *what = glu ? "gate/up" : "plain";
        /* (an f32 writer of 6144 rows is 768 blocks, more partial sums than MIMO_CUDA_NORM_PARTIALS_MAX:
         * the norm kernel stays there) */
        if (path == 0 && !(sh == 1 && wf == MIMO_WFMT_F32))
            cr_assert_eq(deferred, 1, "writer %s, %s reader %s: the defaults did not defer the norm",
                         mimo_weight_format_name(wf), what, mimo_weight_format_name(rf));
        if (path == 14)
            cr_assert_eq(deferred, 0, "path 14 deferred the norm");
        const double xrel = mimo_test_rel_err(x, xref, (size_t)H), yrel = mimo_test_rel_err(y, yref, (size_t)M);
        cr_assert(all_finite(y, (size_t)M), "path %d: reader output not fully written", path);
        cr_assert(xrel < 1e-4 && yrel < 1e-4, "path %d, writer %s %dx%d, %s reader %s (deferred %d): x rel err %g, y %g",
                  path, mimo_weight_format_name(wf), H, K, what, mimo_weight_format_name(rf), deferred, xrel, yrel);
        free(a);
        free(x);
        free(xref);
        free(nw);
        free(h);
        free(y);
        free(yref);
        free(g);
        free(b);
        free(wd);
        free(ws);
        free(rd);
        free(rs);
        free(ud);
        free(us);
    }
    mimo_cuda_test_set_gemv_path(0);
}

/* The staged GEMV (a plain bf16 matrix of one position whose rows stream into shared memory before its
 * wait) against the plain kernel it replaces (path 17), bit for bit, and against the CPU: the shard's o_proj
 * (6144 x 2048) and a ragged shape (4233 rows: the last 16-row tile holds 9, so of its warps of 4 rows one
 * has a single row and one none; rows with a tail of vectors), accumulating into y, and as a deferred norm's
 * writer (its partial sums feed the reader). The defaults must take it at these shapes, path 17 must not. */
Test(cuda_kernels, gemv_staged_equals_plain_bit_for_bit)
{
    need_gpu();
    const int shapes[2][2] = {{6144, 2048}, {4233, 1960}};
    for (int sh = 0; sh < 2; sh++) {
        const int H = shapes[sh][0], K = shapes[sh][1], M = 96;
        void *wd, *ws, *rd, *rs;
        mimo_matrix w = random_matrix(MIMO_WFMT_BF16, H, K, &wd, &ws);
        mimo_matrix r = random_matrix(MIMO_WFMT_BF16, M, H, &rd, &rs);
        float *a = malloc((size_t)K * sizeof(float)), *x0 = malloc((size_t)H * sizeof(float));
        float *xref = malloc((size_t)H * sizeof(float)), *nw = malloc((size_t)H * sizeof(float));
        float *h = malloc((size_t)H * sizeof(float)), *yref = malloc((size_t)M * sizeof(float));
        float *x[2], *y[2], *acc[2];
        norm_writer_reference(&w, H, K, a, x0, nw, xref, h);
        mimo_matrix_gemv_f32(&r, h, yref);
        for (int v = 0; v < 2; v++) {   /* 0: the defaults (staged), 1: path 17 (plain) */
            x[v] = malloc((size_t)H * sizeof(float));
            y[v] = malloc((size_t)M * sizeof(float));
            acc[v] = malloc((size_t)H * sizeof(float));
            memcpy(x[v], x0, (size_t)H * sizeof(float));
            memcpy(acc[v], x0, (size_t)H * sizeof(float));
            cr_assert_eq(mimo_cuda_test_set_gemv_path(v == 0 ? 0 : 17), 0);
            const long long before = mimo_cuda_test_gemv_staged_launches();
            int deferred = -1;
            mimo_error err = {{0}};
            cr_assert_eq(mimo_cuda_test_gemv_accumulate(&w, a, 1, acc[v], &err), 0, "%s", err.msg);
            cr_assert_eq(mimo_cuda_test_norm_between_gemvs(&w, a, x[v], nw, 1e-6f, &r, NULL, y[v], &deferred, &err), 0,
                         "%s", err.msg);
            const long long staged = mimo_cuda_test_gemv_staged_launches() - before;
            cr_assert_eq(deferred, 1, "%dx%d: the norm was not deferred", H, K);
            cr_assert_eq(staged, v == 0 ? 2 : 0, "%dx%d, %s: %lld staged launches", H, K, v == 0 ? "defaults" : "path 17",
                         staged);
            const double arel = mimo_test_rel_err(acc[v], xref, (size_t)H), xrel = mimo_test_rel_err(x[v], xref, (size_t)H),
                         yrel = mimo_test_rel_err(y[v], yref, (size_t)M);
            cr_assert(arel < 1e-4 && xrel < 1e-4 && yrel < 1e-4, "%dx%d, %s: y += W x rel err %g, writer x %g, reader %g",
                      H, K, v == 0 ? "defaults" : "path 17", arel, xrel, yrel);
        }
        cr_assert(memcmp(acc[0], acc[1], (size_t)H * sizeof(float)) == 0, "%dx%d: y += W x staged != plain", H, K);
        cr_assert(memcmp(x[0], x[1], (size_t)H * sizeof(float)) == 0, "%dx%d: the writer's x staged != plain", H, K);
        cr_assert(memcmp(y[0], y[1], (size_t)M * sizeof(float)) == 0,
                  "%dx%d: the reader's y (the writer's partial sums) staged != plain", H, K);
        void *owned[] = {wd, ws, rd, rs, a, x0, xref, nw, h, yref, x[0], x[1], y[0], y[1], acc[0], acc[1]};
        for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
            free(owned[i]);
    }
    mimo_cuda_test_set_gemv_path(0);
}

/* CPU reference of mimo_cuda_test_attention: RoPE, value scale, attention per head. */
static void attention_reference(const mimo_cuda_test_attn *a, const float *qkv, int P, float *out)
{
    const int rows = a->n_heads * a->dqk + a->n_kv * (a->dqk + a->dv);
    float *q = malloc((size_t)P * a->n_heads * a->dqk * sizeof(float));
    float *k = malloc((size_t)P * a->n_kv * a->dqk * sizeof(float));
    float *v = malloc((size_t)P * a->n_kv * a->dv * sizeof(float));
    float *scratch = malloc((size_t)P * sizeof(float));
    for (int p = 0; p < P; p++) {
        const float *r = qkv + (size_t)p * rows;
        memcpy(q + (size_t)p * a->n_heads * a->dqk, r, (size_t)a->n_heads * a->dqk * sizeof(float));
        memcpy(k + (size_t)p * a->n_kv * a->dqk, r + a->n_heads * a->dqk, (size_t)a->n_kv * a->dqk * sizeof(float));
        for (int i = 0; i < a->n_kv * a->dv; i++)
            v[(size_t)p * a->n_kv * a->dv + i] = r[a->n_heads * a->dqk + a->n_kv * a->dqk + i] * a->value_scale;
        mimo_cpu_rope_neox(q + (size_t)p * a->n_heads * a->dqk, a->n_heads, a->dqk, a->rope_dim, p, a->theta);
        mimo_cpu_rope_neox(k + (size_t)p * a->n_kv * a->dqk, a->n_kv, a->dqk, a->rope_dim, p, a->theta);
    }
    mimo_cpu_attn_mask mask = {.window = a->window, .causal = true};
    const float scale = (float)(1.0 / sqrt((double)a->dqk));
    for (int p = 0; p < P; p++)
        for (int h = 0; h < a->n_heads; h++) {
            int g = h / (a->n_heads / a->n_kv);
            mimo_cpu_attention_one(q + ((size_t)p * a->n_heads + h) * a->dqk, a->dqk, a->dv, p, &mask,
                                   k + (size_t)g * a->dqk, (size_t)a->n_kv * a->dqk, v + (size_t)g * a->dv,
                                   (size_t)a->n_kv * a->dv, 0, p + 1, scale, a->sink ? a->sink[h] : -INFINITY, scratch,
                                   out + ((size_t)p * a->n_heads + h) * a->dv);
        }
    free(q);
    free(k);
    free(v);
    free(scratch);
}

/* Attention of P positions fed in chunks against the C reference, with each way of running the splits of
 * several positions (the default; a block per query head; the kv head's query heads together, 16, 8 or 2 a
 * block; one position always takes the per-head split), and the merge from registers against its loops bit for
 * bit. */
static void check_attention_geometry(const mimo_cuda_test_attn *geometry, int P, int chunk)
{
    mimo_cuda_test_attn a = *geometry;
    const int rows = a.n_heads * a.dqk + a.n_kv * (a.dqk + a.dv);
    const size_t outs = (size_t)P * a.n_heads * a.dv;
    float *qkv = malloc((size_t)P * rows * sizeof(float));
    for (size_t i = 0; i < (size_t)P * rows; i++)
        qkv[i] = frand() * 2.0f;
    float *out = malloc(outs * sizeof(float)), *ref = malloc(outs * sizeof(float));
    float *looped = malloc(outs * sizeof(float));
    attention_reference(&a, qkv, P, ref);
    mimo_error err = {{0}};
    const int modes[] = {0, -1, 16, 8, 2};
    for (int m = 0; m < 5; m++) {
        a.group_heads = modes[m];
        a.merge_loops = false;
        cr_assert_eq(mimo_cuda_test_attention(&a, qkv, P, chunk, out, &err), 0, "%s", err.msg);
        cr_assert(all_finite(out, outs), "group heads %d: attention output not fully written", a.group_heads);
        double rel = mimo_test_rel_err(out, ref, outs);
        cr_assert(rel < 1e-5, "heads %d/%d dims %d/%d window %d sink %d P %d chunk %d group heads %d: rel err %g",
                  a.n_heads, a.n_kv, a.dqk, a.dv, a.window, a.sink != NULL, P, chunk, a.group_heads, rel);
        /* the merge from registers (up to 16 splits, the default) equals the loops over the splits bit for bit */
        a.merge_loops = true;
        cr_assert_eq(mimo_cuda_test_attention(&a, qkv, P, chunk, looped, &err), 0, "%s", err.msg);
        cr_assert(memcmp(out, looped, outs * sizeof(float)) == 0,
                  "window %d P %d chunk %d group heads %d: the merge from registers differs from the loops", a.window, P,
                  chunk, a.group_heads);
    }
    free(looped);
    free(qkv);
    free(out);
    free(ref);
}

static void random_sinks(float *sinks, int n)
{
    for (int i = 0; i < n; i++)
        sinks[i] = frand() * 2.0f;
}

static void check_attention(int window, bool sink, int P, int chunk, int max_ctx)
{
    float sinks[8];
    random_sinks(sinks, 8);
    mimo_cuda_test_attn a = {.n_heads = 8, .n_kv = 2, .dqk = 48, .dv = 32, .rope_dim = 16, .theta = 1e4,
                             .value_scale = 0.707f, .window = window, .sink = sink ? sinks : NULL,
                             .max_context = max_ctx};
    check_attention_geometry(&a, P, chunk);
}

/* The qkv projection of n positions with its RoPE and cache store done by the GEMV (GemvQkvOut: the
 * CUDA-core kernel at one position, a tensor-core one at 2..16: dense_bulk_kernel for the shard's shape
 * without a row map, else gemv_mma_kernel) against the GEMV followed by the
 * qkv_rope_store kernel (bit for bit: the step's graphs run the first, the persistent kernel the second)
 * and against the C reference (the matrix, RoPE, value scale). w holds the rows in storage order: a random
 * permutation of the plain order where mapped. */
static void check_qkv_fused(mimo_weight_format fmt, const mimo_cuda_test_attn *a, int cols, int pos, int n,
                            bool mapped)
{
    const int qn = a->n_heads * a->dqk, kn = a->n_kv * a->dqk, vn = a->n_kv * a->dv, rows = qn + kn + vn;
    const size_t all = (size_t)n * rows;
    void *data, *scales;
    mimo_matrix w = random_matrix(fmt, rows, cols, &data, &scales);
    int32_t *map = malloc((size_t)rows * sizeof(int32_t));
    for (int i = 0; i < rows; i++)
        map[i] = i;
    for (int i = rows - 1; mapped && i > 0; i--) {   /* Fisher-Yates */
        int j = (int)((frand() + 1.0f) * 0.5f * (float)(i + 1));
        j = j > i ? i : j;
        int t = map[i];
        map[i] = map[j];
        map[j] = t;
    }
    float *x = malloc((size_t)n * cols * sizeof(float)), *y = malloc((size_t)rows * sizeof(float));
    float *ref = malloc(all * sizeof(float)), *out[2];
    for (size_t i = 0; i < (size_t)n * cols; i++)
        x[i] = frand();
    /* the reference in the test interface's layout: q [n][qn], then k [n][kn], then v [n][vn] */
    float *rq = ref, *rk = ref + (size_t)n * qn, *rv = ref + (size_t)n * (qn + kn);
    for (int t = 0; t < n; t++) {
        mimo_matrix_gemv_f32(&w, x + (size_t)t * cols, y);
        for (int i = 0; i < qn; i++)   /* plain order, then RoPE and the value scale as the reference does */
            rq[(size_t)t * qn + i] = y[map[i]];
        for (int i = 0; i < kn; i++)
            rk[(size_t)t * kn + i] = y[map[qn + i]];
        for (int i = 0; i < vn; i++)
            rv[(size_t)t * vn + i] = y[map[qn + kn + i]] * a->value_scale;
        mimo_cpu_rope_neox(rq + (size_t)t * qn, a->n_heads, a->dqk, a->rope_dim, pos + t, a->theta);
        mimo_cpu_rope_neox(rk + (size_t)t * kn, a->n_kv, a->dqk, a->rope_dim, pos + t, a->theta);
    }
    mimo_error err = {{0}};
    for (int fused = 0; fused < 2; fused++) {
        out[fused] = malloc(all * sizeof(float));
        float *o = out[fused];
        cr_assert_eq(mimo_cuda_test_qkv_projection(a, &w, mapped ? map : NULL, x, pos, n, fused, o, o + (size_t)n * qn,
                                                   o + (size_t)n * (qn + kn), &err),
                     0, "%s", err.msg);
        cr_assert(all_finite(o, all), "%s n=%d fused %d: q / k / v not fully written", mimo_weight_format_name(fmt), n,
                  fused);
        double rel = mimo_test_rel_err(o, ref, all);
        cr_assert(rel < 1e-4, "%s %d rows n=%d fused %d pos %d: rel err %g", mimo_weight_format_name(fmt), rows, n, fused,
                  pos, rel);
    }
    cr_assert(memcmp(out[0], out[1], all * sizeof(float)) == 0,
              "%s %d rows n=%d pos %d mapped %d: the fused epilogue differs from the qkv_rope_store kernel",
              mimo_weight_format_name(fmt), rows, n, pos, mapped);
    free(out[0]);
    free(out[1]);
    free(map);
    free(x);
    free(y);
    free(ref);
    free(data);
    free(scales);
}

Test(cuda_kernels, qkv_projection_rope_store_fused)
{
    need_gpu();
    /* the tiny preset's full-attention layout, and a MiMo-V2.5-Pro shard's (one kv head, 64 rotated of 192)
     * with a sliding-window ring of 144 slots: one position past the first wrap, several across it */
    const mimo_cuda_test_attn small = {.n_heads = 8, .n_kv = 2, .dqk = 24, .dv = 16, .rope_dim = 8, .theta = 5e6,
                                       .value_scale = 0.707f, .max_context = 64};
    const mimo_cuda_test_attn pro = {.n_heads = 16, .n_kv = 1, .dqk = 192, .dv = 128, .rope_dim = 64, .theta = 1e4,
                                     .value_scale = 1.0f, .window = 128, .max_context = 1024};
    const mimo_weight_format fmts[] = {MIMO_WFMT_BF16, MIMO_WFMT_FP8, MIMO_WFMT_MXFP4};
    const int counts[] = {1, 8, 16};
    for (int f = 0; f < 3; f++)
        for (int c = 0; c < 3; c++)
            for (int mapped = 0; mapped < 2; mapped++) {
                check_qkv_fused(fmts[f], &small, 256, 37, counts[c], mapped);
                /* the shard's 3392 rows of bf16 / fp8 at several positions run on dense_bulk_kernel, which
                 * takes the epilogue with path 24 (no row map); the per-lane-load kernel's epilogue (path 2) */
                const bool dense = fmts[f] != MIMO_WFMT_MXFP4 && counts[c] > 1;
                cr_assert_eq(mimo_cuda_test_set_gemv_path(dense ? (mapped ? 2 : 24) : 0), 0);
                const long long before = mimo_cuda_test_dense_bulk_launches();
                check_qkv_fused(fmts[f], &pro, 1024, counts[c] == 1 ? 300 : 140, counts[c], mapped);
                cr_assert_eq(mimo_cuda_test_dense_bulk_launches() - before, dense && !mapped ? 2 : 0,
                             "%s n=%d mapped %d: dense bulk launches", mimo_weight_format_name(fmts[f]), counts[c], mapped);
                cr_assert_eq(mimo_cuda_test_set_gemv_path(0), 0);
            }
    /* by default (path 0) the step keeps the RoPE kernel after the dense bulk kernel's plain projection: the
     * fused launch is refused there */
    {
        void *data, *scales;
        const int rows = 16 * 192 + 192 + 128, cols = 1024, n = 8;
        mimo_matrix w = random_matrix(MIMO_WFMT_FP8, rows, cols, &data, &scales);
        float *x = calloc((size_t)n * cols, sizeof(float)), *out = malloc((size_t)n * rows * sizeof(float));
        mimo_error err = {{0}};
        cr_assert_neq(mimo_cuda_test_qkv_projection(&pro, &w, NULL, x, 140, n, 1, out, out + (size_t)n * 16 * 192,
                                                    out + (size_t)n * 17 * 192, &err),
                      0, "the fused qkv epilogue taken at 8 positions by default");
        cr_assert(strstr(err.msg, "does not take") != NULL, "unexpected message: %s", err.msg);
        free(x);
        free(out);
        free(data);
        free(scales);
    }
    /* fp32 weights (one row per lane group; no tensor-core build) are refused, and the step keeps the kernel */
    void *data, *scales;
    mimo_matrix w = random_matrix(MIMO_WFMT_F32, 272, 256, &data, &scales);
    float x[256] = {0}, q[192], k[48], v[32];
    mimo_error err = {{0}};
    cr_assert_neq(mimo_cuda_test_qkv_projection(&small, &w, NULL, x, 3, 1, 1, q, k, v, &err), 0,
                  "fp32 qkv weights taken by the fused epilogue");
    cr_assert(strstr(err.msg, "does not take") != NULL, "unexpected message: %s", err.msg);
    free(data);
    free(scales);
}

Test(cuda_kernels, attention_full_and_sliding_window)
{
    need_gpu();
    check_attention(0, false, 40, 1, 64);
    check_attention(0, true, 37, 16, 64);
    check_attention(8, true, 50, 5, 64);      /* ring of 24 slots wraps twice */
    check_attention(8, false, 50, 16, 64);
    check_attention(0, true, 700, 16, 1024);  /* long context: several key splits merged */
    check_attention(300, true, 700, 13, 1024);
    check_attention(0, true, 600, 16, 9000);  /* a span past 8192 keys: 128-key splits, tiles of the grouped kernel */
}

/* MiMo-V2.5-Pro's shard widths: 16 query heads on one kv head, qk 192 / v 128, 64 rotated. */
static mimo_cuda_test_attn pro_shard_attention(int window, const float *sinks, int max_context)
{
    return (mimo_cuda_test_attn){.n_heads = 16, .n_kv = 1, .dqk = 192, .dv = 128, .rope_dim = 64, .theta = 1e4,
                                 .value_scale = 1.0f, .window = window, .sink = sinks, .max_context = max_context};
}

/* The Pro shard's widths, its window and sinks, decode rounds of 8 and 16 positions; then groups of query
 * heads that do not fill a block or a warp (12 and 5 per kv head) and two kv heads of 16. */
Test(cuda_kernels, attention_grouped_heads)
{
    need_gpu();
    float sinks[32];
    random_sinks(sinks, 32);
    mimo_cuda_test_attn pro = pro_shard_attention(128, sinks, 1024);
    check_attention_geometry(&pro, 300, 8);   /* the ring of the window wraps */
    check_attention_geometry(&pro, 150, 16);
    pro.window = 0;   /* a full-attention layer: most of the key splits past the causal end */
    pro.theta = 5e6;
    check_attention_geometry(&pro, 200, 8);
    pro.max_context = 9000;   /* a span past 4096 keys: 128-key splits, four tiles of the grouped kernel */
    check_attention_geometry(&pro, 300, 8);
    const int heads[][2] = {{24, 2}, {10, 2}, {32, 2}};
    for (int i = 0; i < 3; i++) {
        mimo_cuda_test_attn a = {.n_heads = heads[i][0], .n_kv = heads[i][1], .dqk = 64, .dv = 48, .rope_dim = 32,
                                 .theta = 1e4, .value_scale = 0.5f, .window = 40, .sink = sinks, .max_context = 256};
        check_attention_geometry(&a, 100, 7);
    }
}

/* Splits longer than the grouped kernel's 32-key tile where the rule would not take them (a start of 64, 128,
 * 256 keys forced): on the Pro shard's window the ring (144 slots) wraps inside a split's tiles; a
 * full-attention span of eight tiles, the last one short; a window of 40 keys in one split of a 32-key tile
 * and an 8-key one. (Sized for racecheck.) */
Test(cuda_kernels, attention_tiled_splits)
{
    need_gpu();
    float sinks[16];
    random_sinks(sinks, 16);
    mimo_cuda_test_attn pro = pro_shard_attention(128, sinks, 1024);
    pro.split_keys = 64;
    check_attention_geometry(&pro, 160, 16);
    pro.split_keys = 128;
    check_attention_geometry(&pro, 160, 8);
    pro.window = 0;
    pro.sink = NULL;
    pro.split_keys = 256;
    check_attention_geometry(&pro, 300, 16);
    mimo_cuda_test_attn a = {.n_heads = 8, .n_kv = 2, .dqk = 48, .dv = 32, .rope_dim = 16, .theta = 1e4,
                             .value_scale = 0.707f, .window = 40, .sink = sinks, .max_context = 256, .split_keys = 64};
    check_attention_geometry(&a, 100, 7);
    /* a start the kernels do not take is refused, not run */
    mimo_error err = {{0}};
    float qkv[8 * (8 * 48 + 2 * 80)] = {0}, out[8 * 8 * 32];
    a.split_keys = 48;
    cr_assert_neq(mimo_cuda_test_attention(&a, qkv, 8, 8, out, &err), 0);
    cr_assert(strstr(err.msg, "split keys 48") != NULL, "%s", err.msg);
}

/* One position's splits past 16 keys (spans past 2048: per query head, without staging their rows) on the Pro
 * shard's widths: 32-key and 128-key splits (forced), the window's ring wrapping in 64-key ones. */
Test(cuda_kernels, attention_one_position_long_splits)
{
    need_gpu();
    float sinks[16];
    random_sinks(sinks, 16);
    mimo_cuda_test_attn pro = pro_shard_attention(0, NULL, 1024);
    pro.theta = 5e6;
    pro.split_keys = 32;
    check_attention_geometry(&pro, 70, 1);
    pro.split_keys = 128;
    pro.sink = sinks;
    check_attention_geometry(&pro, 90, 1);
    pro.window = 128;   /* the ring wraps */
    pro.split_keys = 64;
    check_attention_geometry(&pro, 150, 1);
}

/* The router tests' configuration: E experts, top-k renormalised and scaled by 2.5, one group (the CPU
 * reference's mimo_cpu_moe_route takes it). */
static mimo_config router_test_config(int E, int k)
{
    mimo_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.n_routed_experts = E;
    cfg.experts_per_tok = k;
    cfg.norm_topk_prob = true;
    cfg.routed_scaling_factor = 2.5f;
    cfg.n_group = 1;
    cfg.topk_group = 1;
    return cfg;
}

/* n positions of router logits over E >= 36 experts and their bias, with ties: a tie of experts 3 and 9 at
 * position 0 (the lower index wins), and with n > 1 an exact three-way tie of biased scores at the top of
 * position 1 (experts 3, 9 and 35: in two lanes, and in one lane twice). */
static void router_test_logits(float *logits, float *bias, int n, int E)
{
    for (int i = 0; i < n * E; i++)
        logits[i] = frand() * 4.0f;
    for (int i = 0; i < E; i++)
        bias[i] = frand() * 0.1f;
    logits[3] = logits[9];
    if (n > 1) {
        logits[E + 3] = logits[E + 9] = logits[E + 35] = 9.0f;
        bias[9] = bias[35] = bias[3];
    }
}

static void check_router(int E)
{
    enum { K = 8, N = 7 };
    const mimo_config cfg = router_test_config(E, K);
    float *logits = malloc(sizeof(float) * N * E), *bias = malloc(sizeof(float) * E), *tmp = malloc(sizeof(float) * 3 * E);
    float w[N * K], ref_w[K];
    int32_t ids[N * K];
    int ref_ids[K];
    router_test_logits(logits, bias, N, E);
    mimo_error err = {{0}};
    cr_assert_eq(mimo_cuda_test_route(logits, bias, E, K, true, 2.5f, N, ids, w, &err), 0, "%s", err.msg);
    for (int t = 0; t < N; t++) {
        mimo_cpu_moe_route(&cfg, logits + t * E, bias, ref_ids, ref_w, tmp);
        for (int j = 0; j < K; j++) {
            cr_assert_eq(ids[t * K + j], ref_ids[j], "position %d rank %d", t, j);
            cr_assert_float_eq(w[t * K + j], ref_w[j], 1e-6f, "position %d rank %d", t, j);
        }
    }
    free(logits);
    free(bias);
    free(tmp);
}

/* 64 and 384 experts rank in registers (integer keys and redux.sync, and the shuffles of (score, index)
 * pairs), 600 in shared memory. */
Test(cuda_kernels, router_topk)
{
    need_gpu();
    for (int redux = 1; redux >= 0; redux--) {
        mimo_cuda_test_set_route_redux(redux);
        check_router(64);
        check_router(384);
        check_router(600);
    }
    mimo_cuda_test_set_route_redux(1);
    /* the kernel keeps pick j in lane j: more than 32 picks are refused with a message */
    enum { E = 64, K = 33 };
    float logits[E], w[K];
    int32_t ids[K];
    for (int i = 0; i < E; i++)
        logits[i] = frand();
    mimo_error err = {{0}};
    cr_assert_neq(mimo_cuda_test_route(logits, NULL, E, K, true, 1.0f, 1, ids, w, &err), 0);
    cr_assert(strstr(err.msg, "top-k 33") != NULL, "message: %s", err.msg);
}

/* One case of the router's top-k done by the MXFP4 gate/up slots themselves (GemvRouteIn): E experts of rows x
 * cols, n positions of k slots, their input with an RMSNorm folded in (ROUTE_IN_NORM_X), a published norm factor
 * (ROUTE_IN_FACTOR: one position) or plain, on GEMV path `path` with the route_fused knob `mode`. Against the route
 * kernel followed by the same path's slots (the knob 0): the same ids, the same weights and the same outputs bit for bit (one top-k function, the
 * same GEMV arithmetic); against the CPU's router (ids, weights to 1e-6) and its GEMVs (1e-4). `kernel`: the one
 * `path` must fuse it into (the gate/up bulk kernel's launch counter tells the two apart), or ROUTE_KEPT where the
 * route kernel must stay. Logits with ties, as check_router's. */
enum { ROUTE_KEPT, ROUTE_IN_BULK, ROUTE_IN_CUDA_CORES };
enum { ROUTE_IN_PLAIN, ROUTE_IN_NORM_X, ROUTE_IN_FACTOR };
static void check_route_fused(int E, int rows, int cols, int n, int k, int input, int path, int mode, int kernel)
{
    const bool norm = input == ROUTE_IN_NORM_X;
    const bool fused = kernel != ROUTE_KEPT;
    mimo_matrix *g = malloc((size_t)E * sizeof *g), *u = malloc((size_t)E * sizeof *u);
    void **data = calloc((size_t)4 * E, sizeof(void *));
    for (int e = 0; e < E; e++) {
        g[e] = random_matrix(MIMO_WFMT_MXFP4, rows, cols, &data[4 * e], &data[4 * e + 1]);
        u[e] = random_matrix(MIMO_WFMT_MXFP4, rows, cols, &data[4 * e + 2], &data[4 * e + 3]);
    }
    const mimo_config cfg = router_test_config(E, k);
    const int slots = n * k;
    float *logits = malloc(sizeof(float) * n * E), *bias = malloc(sizeof(float) * E), *tmp = malloc(sizeof(float) * 3 * E);
    float *x = malloc(sizeof(float) * n * cols), *nw = malloc(sizeof(float) * cols), *h = malloc(sizeof(float) * cols);
    float *w = malloc(sizeof(float) * slots), *w0 = malloc(sizeof(float) * slots), *ref_w = malloc(sizeof(float) * k);
    float *y = malloc(sizeof(float) * slots * rows), *y0 = malloc(sizeof(float) * slots * rows);
    float *ref = malloc(sizeof(float) * slots * rows), *a = malloc(sizeof(float) * rows), *b = malloc(sizeof(float) * rows);
    float *factor = malloc(sizeof(float) * n), *hf = malloc(sizeof(float) * cols);
    int32_t *ids = malloc(sizeof(int32_t) * slots), *ids0 = malloc(sizeof(int32_t) * slots);
    int *ref_ids = malloc(sizeof(int) * k);
    router_test_logits(logits, bias, n, E);
    for (int i = 0; i < n * cols; i++)
        x[i] = norm ? frand() * (i % 89 == 0 ? 200.0f : 10.0f) : frand() * 0.1f;
    for (int i = 0; i < cols; i++)
        nw[i] = 1.0f + 0.5f * frand();
    for (int t = 0; t < n; t++)
        factor[t] = 0.3f + 0.1f * (float)t;
    const float *fac = input == ROUTE_IN_FACTOR ? factor : NULL;
    mimo_error err = {{0}};
    int was_fused = -1;
    cr_assert_eq(mimo_cuda_test_set_gemv_path(path), 0);
    mimo_cuda_test_set_route_fused(0);
    cr_assert_eq(mimo_cuda_test_route_to_expert_slots(g, u, E, logits, bias, k, true, 2.5f, x, norm ? nw : NULL, 1e-6f, fac, n,
                                                      ids0, w0, y0, &was_fused, &err),
                 0, "%s", err.msg);
    cr_assert_eq(was_fused, 0, "the knob off, the top-k was fused");
    mimo_cuda_test_set_route_fused(mode);
    const long long glu0 = mimo_cuda_test_expert_glu_bulk_launches();
    cr_assert_eq(mimo_cuda_test_route_to_expert_slots(g, u, E, logits, bias, k, true, 2.5f, x, norm ? nw : NULL, 1e-6f, fac, n,
                                                      ids, w, y, &was_fused, &err),
                 0, "%s", err.msg);
    const char *what = norm ? "with the norm" : fac ? "with a factor" : "plain";
    cr_assert_eq(was_fused, fused, "E=%d %dx%d n=%d k=%d %s path %d: fused %d", E, rows, cols, n, k, what, path,
                 was_fused);
    if (fused)
        cr_assert_eq(mimo_cuda_test_expert_glu_bulk_launches() - glu0, kernel == ROUTE_IN_BULK,
                     "E=%d n=%d k=%d path %d: kernel %d, bulk kernel launches %lld", E, n, k, path, kernel,
                     mimo_cuda_test_expert_glu_bulk_launches() - glu0);
    for (int t = 0; t < n; t++) {
        mimo_cpu_moe_route(&cfg, logits + (size_t)t * E, bias, ref_ids, ref_w, tmp);
        const float *xt = x + (size_t)t * cols;
        if (norm)
            mimo_cpu_rmsnorm(h, xt, nw, cols, 1e-6f);
        for (int i = 0; fac && i < cols; i++)
            hf[i] = fac[t] * xt[i];
        for (int j = 0; j < k; j++) {
            const int s = t * k + j;
            cr_assert_eq(ids[s], ref_ids[j], "E=%d n=%d k=%d path %d: position %d rank %d", E, n, k, path, t, j);
            cr_assert_float_eq(w[s], ref_w[j], 1e-6f, "E=%d position %d rank %d", E, t, j);
            mimo_matrix_gemv_f32(&g[ids[s]], norm ? h : fac ? hf : xt, a);
            mimo_matrix_gemv_f32(&u[ids[s]], norm ? h : fac ? hf : xt, b);
            mimo_cpu_swiglu(ref + (size_t)s * rows, a, b, rows);
        }
    }
    cr_assert(memcmp(ids, ids0, sizeof(int32_t) * slots) == 0, "E=%d n=%d k=%d path %d: ids differ from the route kernel's",
              E, n, k, path);
    cr_assert(memcmp(w, w0, sizeof(float) * slots) == 0, "E=%d n=%d k=%d path %d: weights differ from the route kernel's",
              E, n, k, path);
    cr_assert(all_finite(y, (size_t)slots * rows), "E=%d n=%d k=%d path %d: output not finite", E, n, k, path);
    cr_assert(memcmp(y, y0, sizeof(float) * slots * rows) == 0,
              "E=%d n=%d k=%d path %d: outputs differ from the route kernel's path (rel %g)", E, n, k, path,
              mimo_test_rel_err(y, y0, (size_t)slots * rows));
    const double rel = mimo_test_rel_err(y, ref, (size_t)slots * rows);
    cr_log_info("route fused E=%d %dx%d n=%d k=%d %s path %d (fused %d): rel err %.3g against the CPU", E, rows, cols, n, k,
                what, path, was_fused, rel);
    cr_assert(rel < 1e-4, "E=%d %dx%d n=%d k=%d path %d: rel err %g", E, rows, cols, n, k, path, rel);
    for (int i = 0; i < 4 * E; i++)
        free(data[i]);
    void *owned[] = {g, u, data, logits, bias, tmp, x, nw, h, w, w0, ref_w, y, y0, ref, a, b, factor, hf, ids, ids0, ref_ids};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        free(owned[i]);
    mimo_cuda_test_set_gemv_path(0);
}

/* The defaults fuse the top-k into the gate/up bulk kernel: the MiMo-V2.5-Pro shard's router (384 experts, 8 a
 * position) at 8 and 16 positions with the post-attention norm folded in, `small`'s (64) at 13 without, 200 experts
 * (not a multiple of 32) at 6 a position on short ragged rows (path 18: the bulk kernel at any shape). Knob 2 fuses
 * it into the CUDA-core kernel of one position too: the shard's with the norm's published factor (the step's way;
 * also its 256-row slots with 64 experts) and without, `small`'s. The route kernel stays for one position by
 * default where the slots' tiles fit one wave of bulk blocks (the shard's 256 rows: the CUDA-core slots), more
 * experts than the registers rank (600), slots on the tensor cores (path 2) and the CUDA-core slots reading their
 * input from global memory (path 13); `small`'s 768 rows take the bulk kernel, and the top-k in it, at one
 * position too. */
Test(cuda_kernels, router_topk_fused_into_gate_up)
{
    need_gpu();
    check_route_fused(384, 32, 6144, 8, 8, ROUTE_IN_NORM_X, 0, 1, ROUTE_IN_BULK);
    check_route_fused(384, 16, 6144, 16, 8, ROUTE_IN_NORM_X, 0, 1, ROUTE_IN_BULK);
    check_route_fused(64, 48, 2048, 13, 8, ROUTE_IN_PLAIN, 0, 1, ROUTE_IN_BULK);
    check_route_fused(200, 20, 2560, 3, 6, ROUTE_IN_PLAIN, 18, 1, ROUTE_IN_BULK);
    check_route_fused(384, 32, 6144, 1, 8, ROUTE_IN_FACTOR, 0, 2, ROUTE_IN_CUDA_CORES);
    check_route_fused(64, 256, 6144, 1, 8, ROUTE_IN_FACTOR, 0, 2, ROUTE_IN_CUDA_CORES);
    check_route_fused(384, 40, 6144, 1, 8, ROUTE_IN_PLAIN, 0, 2, ROUTE_IN_CUDA_CORES);
    check_route_fused(64, 96, 2048, 1, 8, ROUTE_IN_FACTOR, 0, 2, ROUTE_IN_CUDA_CORES);
    check_route_fused(384, 32, 6144, 1, 8, ROUTE_IN_FACTOR, 0, 1, ROUTE_KEPT);
    check_route_fused(16, 768, 2048, 1, 8, ROUTE_IN_FACTOR, 0, 1, ROUTE_IN_BULK);   /* `small`'s rows: one position too */
    check_route_fused(600, 16, 2048, 8, 8, ROUTE_IN_PLAIN, 0, 2, ROUTE_KEPT);
    check_route_fused(384, 16, 2048, 8, 8, ROUTE_IN_PLAIN, 2, 2, ROUTE_KEPT);
    check_route_fused(384, 16, 2048, 1, 8, ROUTE_IN_PLAIN, 13, 2, ROUTE_KEPT);
}

Test(cuda_kernels, argmax_lowest_index_on_ties)
{
    need_gpu();
    enum { V = 5000, N = 3 };
    static float x[N * V];
    for (int i = 0; i < N * V; i++)
        x[i] = frand();
    x[0 * V + 4000] = 5.0f;
    x[0 * V + 1234] = 5.0f;
    x[1 * V + 4999] = 7.0f;
    x[2 * V + 0] = 9.0f;
    x[2 * V + 17] = NAN;
    int32_t out[N];
    mimo_error err = {{0}};
    cr_assert_eq(mimo_cuda_test_argmax(x, V, N, out, &err), 0, "%s", err.msg);
    cr_assert_eq(out[0], 1234);
    cr_assert_eq(out[1], 4999);
    cr_assert_eq(out[2], 0);
}

#else

Test(cuda_kernels, needs_cuda_build)
{
    cr_skip_test("no CUDA device: this build has no CUDA backend (nvcc was not found at configure time)");
}

#endif
