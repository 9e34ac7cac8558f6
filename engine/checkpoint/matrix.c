/* Decoding of weight matrices in their storage format (weights.h): the CPU reference that every
 * GPU kernel is judged by. Rows are decoded on the fly; nothing is up-converted in memory. */
#include "mimo/formats.h"
#include "mimo/weights.h"

#include <stdlib.h>

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* FP8 scale row of weight row r. With scale_group_rows = G > 0, rows come in groups of G whose
 * scale rows are padded to ceil(G/128) per group (the TP-interleaved fused qkv layout). */
static int64_t fp8_scale_row(const mimo_matrix *m, int64_t r)
{
    int64_t g = m->scale_group_rows;
    if (g <= 0)
        return r / MIMO_FP8_BLOCK;
    return (r / g) * ceil_div(g, MIMO_FP8_BLOCK) + (r % g) / MIMO_FP8_BLOCK;
}

static const float *fp8_scale_row_ptr(const mimo_matrix *m, int64_t r)
{
    return (const float *)m->scales + fp8_scale_row(m, r) * ceil_div(m->cols, MIMO_FP8_BLOCK);
}

void mimo_matrix_row_f32(const mimo_matrix *m, int64_t r, float *out)
{
    int64_t cols = m->cols;
    switch (m->format) {
    case MIMO_WFMT_F32: {
        const float *row = (const float *)m->data + r * cols;
        for (int64_t c = 0; c < cols; c++)
            out[c] = row[c];
        break;
    }
    case MIMO_WFMT_BF16: {
        const uint16_t *row = (const uint16_t *)m->data + r * cols;
        for (int64_t c = 0; c < cols; c++)
            out[c] = mimo_bf16_to_f32(row[c]);
        break;
    }
    case MIMO_WFMT_FP8: {
        const uint8_t *row = (const uint8_t *)m->data + r * cols;
        const float *scale = fp8_scale_row_ptr(m, r);
        for (int64_t c = 0; c < cols; c++)
            out[c] = mimo_fp8_e4m3_to_f32(row[c]) * scale[c / MIMO_FP8_BLOCK];
        break;
    }
    case MIMO_WFMT_MXFP4:
        mimo_mxfp4_dequantize((const uint8_t *)m->data + r * (cols / 2),
                              (const uint8_t *)m->scales + r * (cols / MIMO_MXFP4_BLOCK), 1, cols, out);
        break;
    default:
        abort();   /* a format added to the enum without a decoder is a programming error */
    }
}

float mimo_matrix_get(const mimo_matrix *m, int64_t r, int64_t c)
{
    int64_t cols = m->cols;
    switch (m->format) {
    case MIMO_WFMT_F32:
        return ((const float *)m->data)[r * cols + c];
    case MIMO_WFMT_BF16:
        return mimo_bf16_to_f32(((const uint16_t *)m->data)[r * cols + c]);
    case MIMO_WFMT_FP8:
        return mimo_fp8_e4m3_to_f32(((const uint8_t *)m->data)[r * cols + c]) *
               fp8_scale_row_ptr(m, r)[c / MIMO_FP8_BLOCK];
    case MIMO_WFMT_MXFP4: {
        uint8_t byte = ((const uint8_t *)m->data)[r * (cols / 2) + c / 2];
        uint8_t code = (c & 1) ? (uint8_t)(byte >> 4) : (uint8_t)(byte & 0xFu);
        uint8_t scale = ((const uint8_t *)m->scales)[r * (cols / MIMO_MXFP4_BLOCK) + c / MIMO_MXFP4_BLOCK];
        return mimo_e2m1_values[code] * mimo_e8m0_to_f32(scale);
    }
    default:
        abort();
    }
}

void mimo_matrix_gemv_f32(const mimo_matrix *m, const float *x, float *y)
{
    float *row = mimo_xmalloc((size_t)m->cols * sizeof *row);
    for (int64_t r = 0; r < m->rows; r++) {
        mimo_matrix_row_f32(m, r, row);
        double acc = 0.0;   /* the reference: accumulate wider than the kernels do */
        for (int64_t c = 0; c < m->cols; c++)
            acc += (double)row[c] * (double)x[c];
        y[r] = (float)acc;
    }
    free(row);
}

uint64_t mimo_matrix_bytes(const mimo_matrix *m)
{
    uint64_t rows = (uint64_t)m->rows, cols = (uint64_t)m->cols;
    switch (m->format) {
    case MIMO_WFMT_F32:
        return rows * cols * 4;
    case MIMO_WFMT_BF16:
        return rows * cols * 2;
    case MIMO_WFMT_FP8: {
        uint64_t scale_rows = m->rows > 0 ? (uint64_t)fp8_scale_row(m, m->rows - 1) + 1 : 0;
        return rows * cols + scale_rows * (uint64_t)ceil_div(m->cols, MIMO_FP8_BLOCK) * 4;
    }
    case MIMO_WFMT_MXFP4:
        return rows * cols / 2 + rows * (cols / MIMO_MXFP4_BLOCK);
    default:
        abort();
    }
}
