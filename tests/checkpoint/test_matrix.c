/* mimo_matrix decoding in every storage format against dequantize-the-whole-matrix-then-multiply,
 * including the FP8 per-group padded scale layout (scale_group_rows). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/formats.h"
#include "mimo/weights.h"

static float random_weight(void)
{
    return ((float)rand() / (float)RAND_MAX - 0.5f) * 4.0f;
}

/* Checks row_f32 and get bit-exactly against ref [rows, cols], and gemv against a double product. */
static void check_matrix(const mimo_matrix *m, const float *ref)
{
    int64_t rows = m->rows, cols = m->cols;
    float *row = malloc(sizeof(float) * cols), *x = malloc(sizeof(float) * cols), *y = malloc(sizeof(float) * rows);
    for (int64_t r = 0; r < rows; r++) {
        mimo_matrix_row_f32(m, r, row);
        cr_assert_eq(memcmp(row, ref + r * cols, sizeof(float) * cols), 0, "format %d: row %ld differs",
                     (int)m->format, (long)r);
    }
    for (int i = 0; i < 500; i++) {
        int64_t r = rand() % rows, c = rand() % cols;
        float got = mimo_matrix_get(m, r, c);
        cr_assert_eq(got, ref[r * cols + c], "get(%ld, %ld) = %g, want %g", (long)r, (long)c, got, ref[r * cols + c]);
    }
    for (int64_t c = 0; c < cols; c++)
        x[c] = random_weight();
    mimo_matrix_gemv_f32(m, x, y);
    for (int64_t r = 0; r < rows; r++) {
        double want = 0, norm = 0;
        for (int64_t c = 0; c < cols; c++) {
            want += (double)ref[r * cols + c] * x[c];
            norm += fabs((double)ref[r * cols + c] * x[c]);
        }
        cr_assert_leq(fabs(y[r] - want), 1e-6 * norm + 1e-30, "row %ld: %g vs %g", (long)r, y[r], want);
    }
    free(row);
    free(x);
    free(y);
}

Test(matrix, f32)
{
    enum { R = 37, C = 53 };
    float *w = malloc(sizeof(float) * R * C);
    srand(1);
    for (int i = 0; i < R * C; i++)
        w[i] = random_weight();
    mimo_matrix m = {.format = MIMO_WFMT_F32, .rows = R, .cols = C, .data = w};
    check_matrix(&m, w);
    cr_assert_eq(mimo_matrix_bytes(&m), (uint64_t)R * C * 4);
    free(w);
}

Test(matrix, bf16)
{
    enum { R = 37, C = 53 };
    uint16_t *w = malloc(sizeof(uint16_t) * R * C);
    float *ref = malloc(sizeof(float) * R * C);
    srand(2);
    for (int i = 0; i < R * C; i++) {
        w[i] = mimo_f32_to_bf16(random_weight());
        ref[i] = mimo_bf16_to_f32(w[i]);
    }
    mimo_matrix m = {.format = MIMO_WFMT_BF16, .rows = R, .cols = C, .data = w};
    check_matrix(&m, ref);
    cr_assert_eq(mimo_matrix_bytes(&m), (uint64_t)R * C * 2);
    free(w);
    free(ref);
}

Test(matrix, fp8_plain_scales)
{
    enum { R = 300, C = 200, SR = 3, SC = 2 };
    float *w = malloc(sizeof(float) * R * C), *ref = malloc(sizeof(float) * R * C), scales[SR * SC];
    uint8_t *q = malloc(R * C);
    srand(3);
    for (int i = 0; i < R * C; i++)
        w[i] = random_weight() * (float)(1 + (i / C) / 128 * 10);   /* distinct scale per block row */
    mimo_fp8_block_quantize(w, R, C, q, scales);
    mimo_fp8_block_dequantize(q, scales, R, C, ref);
    mimo_matrix m = {.format = MIMO_WFMT_FP8, .rows = R, .cols = C, .data = q, .scales = scales};
    check_matrix(&m, ref);
    cr_assert_eq(mimo_matrix_bytes(&m), (uint64_t)R * C + SR * SC * 4);
    free(w);
    free(ref);
    free(q);
}

/* Interleaved qkv: 3 groups of G = 200 rows; each group's scales start on a fresh scale row, so the
 * scale tensor has 3 * ceil(200/128) = 6 rows (not ceil(600/128) = 5). */
Test(matrix, fp8_scale_group_rows)
{
    enum { G = 200, GROUPS = 3, R = G * GROUPS, C = 260, SC = 3, SR_PER_GROUP = 2 };
    float *w = malloc(sizeof(float) * R * C), *ref = malloc(sizeof(float) * R * C);
    float scales[GROUPS * SR_PER_GROUP * SC];
    uint8_t *q = malloc(R * C);
    srand(4);
    for (int i = 0; i < R * C; i++)
        w[i] = random_weight() * (float)(1 + (i / C) / 64);   /* scale changes inside a group too */
    for (int g = 0; g < GROUPS; g++) {
        mimo_fp8_block_quantize(w + (int64_t)g * G * C, G, C, q + (int64_t)g * G * C, scales + g * SR_PER_GROUP * SC);
        mimo_fp8_block_dequantize(q + (int64_t)g * G * C, scales + g * SR_PER_GROUP * SC, G, C, ref + (int64_t)g * G * C);
    }
    mimo_matrix m = {.format = MIMO_WFMT_FP8, .rows = R, .cols = C, .data = q, .scales = scales, .scale_group_rows = G};
    check_matrix(&m, ref);
    cr_assert_eq(mimo_matrix_bytes(&m), (uint64_t)R * C + GROUPS * SR_PER_GROUP * SC * 4);

    /* row G + 10 uses scale row 2 in the group layout but row 1 in the plain one: the layouts must differ */
    mimo_matrix plain = m;
    plain.scale_group_rows = 0;
    float a = mimo_matrix_get(&m, G + 10, 0), b = mimo_matrix_get(&plain, G + 10, 0);
    cr_assert_neq(a, b, "group layout and plain layout agree; the test data cannot tell them apart");
    free(w);
    free(ref);
    free(q);
}

Test(matrix, mxfp4)
{
    enum { R = 45, C = 160 };
    float *w = malloc(sizeof(float) * R * C), *ref = malloc(sizeof(float) * R * C);
    uint8_t *packed = malloc(R * C / 2), *scales = malloc(R * C / 32);
    srand(5);
    for (int i = 0; i < R * C; i++)
        w[i] = ldexpf(random_weight(), (i / 32) % 9 - 4);
    mimo_mxfp4_quantize(w, R, C, packed, scales);
    mimo_mxfp4_dequantize(packed, scales, R, C, ref);
    mimo_matrix m = {.format = MIMO_WFMT_MXFP4, .rows = R, .cols = C, .data = packed, .scales = scales};
    check_matrix(&m, ref);
    cr_assert_eq(mimo_matrix_bytes(&m), (uint64_t)R * C / 2 + R * C / 32);
    free(w);
    free(ref);
    free(packed);
    free(scales);
}
