/* FP8 E4M3 "fn" (FORMATS.md): 1 sign, 4 exponent bits (bias 7), 3 mantissa bits, subnormals,
 * max 448, no Inf, S.1111.111 = NaN. Encoding is pure integer arithmetic on the float32 bits so
 * that the result does not depend on the FP rounding mode or libm. */
#include "mimo/formats.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define FP8_NAN      0x7Fu
#define FP8_MAX_CODE 0x7Eu   /* 448 = 1.75 * 2^8 */

/* Decoding sits on the CPU reference's hot path (every FP8 weight of every GEMV), so it builds the
 * float32 bit pattern directly instead of calling ldexpf. */
float mimo_fp8_e4m3_to_f32(uint8_t b)
{
    uint32_t sign = (uint32_t)(b & 0x80u) << 24;
    uint32_t exp = (b >> 3) & 0xFu, mant = b & 0x7u;
    float f;
    if (exp == 0xF && mant == 0x7)
        return NAN;
    if (exp == 0) { /* subnormal: mant * 2^-9, exact in float */
        f = (float)mant * (1.0f / 512.0f);
        return sign ? -f : f;
    }
    uint32_t bits = sign | ((exp - 7u + 127u) << 23) | (mant << 20);
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* value >> shift, rounded to nearest with ties to even (shift >= 1). */
static uint32_t shift_right_rne(uint32_t value, int shift)
{
    if (shift >= 32)
        return 0;   /* value < 2^24 <= 2^(shift-1): below half of one unit */
    uint32_t kept = value >> shift;
    uint32_t rest = value & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (kept & 1u)))
        kept++;
    return kept;
}

uint8_t mimo_f32_to_fp8_e4m3(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
    uint32_t abs_bits = u & 0x7FFFFFFFu;
    if (abs_bits > 0x7F800000u)
        return FP8_NAN;
    if (abs_bits == 0x7F800000u)       /* satfinite: Inf -> max finite */
        return sign | FP8_MAX_CODE;

    int exp = (int)(abs_bits >> 23) - 127;              /* unbiased float32 exponent */
    uint32_t significand = abs_bits & 0x007FFFFFu;
    if (abs_bits >> 23)
        significand |= 0x00800000u;                     /* implicit leading one */
    else
        exp = -126;                                     /* float32 subnormal */

    uint32_t code;
    if (exp >= -6) {
        /* Normal range: keep 3 of 23 mantissa bits; a carry bumps the exponent, as it should. */
        uint32_t rounded = shift_right_rne(significand, 20);   /* 8..16 = 1.mmm with carry */
        code = ((uint32_t)(exp + 7) << 3) + (rounded - 8u);
    } else {
        /* Subnormal range: code = value / 2^-9, i.e. significand * 2^(exp - 23 + 9). A result of
         * 8 is exactly the smallest normal (code 0x08), so no special case is needed. */
        code = shift_right_rne(significand, 14 - exp);
    }
    if (code > FP8_MAX_CODE)
        code = FP8_MAX_CODE;                            /* saturate (0x7F would be NaN) */
    return (uint8_t)(sign | code);
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

void mimo_fp8_block_quantize(const float *w, int64_t rows, int64_t cols, uint8_t *q, float *scale_inv)
{
    int64_t scale_cols = ceil_div(cols, MIMO_FP8_BLOCK);
    for (int64_t br = 0; br < ceil_div(rows, MIMO_FP8_BLOCK); br++) {
        int64_t r0 = br * MIMO_FP8_BLOCK, r1 = r0 + MIMO_FP8_BLOCK < rows ? r0 + MIMO_FP8_BLOCK : rows;
        for (int64_t bc = 0; bc < scale_cols; bc++) {
            int64_t c0 = bc * MIMO_FP8_BLOCK, c1 = c0 + MIMO_FP8_BLOCK < cols ? c0 + MIMO_FP8_BLOCK : cols;
            float amax = 0.0f;
            bool has_nan = false;
            for (int64_t r = r0; r < r1; r++)
                for (int64_t c = c0; c < c1; c++) {
                    float a = fabsf(w[r * cols + c]);
                    has_nan |= isnan(a);
                    if (a > amax)
                        amax = a;
                }
            /* All-zero block: scale 1 so that dequantization stays exact zeros. A NaN makes the
             * scale NaN so the whole block decodes to NaN: NaN never passes silently. */
            float scale = has_nan ? NAN : amax > 0.0f ? amax / 448.0f : 1.0f;
            scale_inv[br * scale_cols + bc] = scale;
            for (int64_t r = r0; r < r1; r++)
                for (int64_t c = c0; c < c1; c++)
                    q[r * cols + c] = mimo_f32_to_fp8_e4m3(w[r * cols + c] / scale);
        }
    }
}

void mimo_fp8_block_dequantize(const uint8_t *q, const float *scale_inv, int64_t rows, int64_t cols, float *w)
{
    int64_t scale_cols = ceil_div(cols, MIMO_FP8_BLOCK);
    for (int64_t r = 0; r < rows; r++) {
        const float *scale_row = scale_inv + (r / MIMO_FP8_BLOCK) * scale_cols;
        for (int64_t c = 0; c < cols; c++)
            w[r * cols + c] = mimo_fp8_e4m3_to_f32(q[r * cols + c]) * scale_row[c / MIMO_FP8_BLOCK];
    }
}
