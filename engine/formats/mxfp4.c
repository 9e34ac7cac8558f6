/* MXFP4 (OCP Microscaling v1.0, FORMATS.md): E2M1 elements in blocks of 32 sharing one UE8M0
 * power-of-two scale. Quantization follows the spec's rule (as in microxcaling):
 * shared_exp = floor(log2(amax)) - 2, clamped to [-127, 127], then each element / 2^shared_exp is
 * rounded to the nearest E2M1 value (ties to the even code) and saturated at +-6.
 * Powers of two are applied with ldexpf/frexpf, which are exact, so results do not depend on libm
 * rounding. */
#include "mimo/formats.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define E8M0_NAN        0xFFu
#define E8M0_BIAS       127
#define E2M1_EMAX       2      /* largest element exponent: 6 = 1.5 * 2^2 */
#define SHARED_EXP_MIN  (-127)
#define SHARED_EXP_MAX  127

const float mimo_e2m1_values[16] = {
    0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
    -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f,
};

float mimo_e8m0_to_f32(uint8_t e)
{
    if (e == E8M0_NAN)
        return NAN;
    return ldexpf(1.0f, (int)e - E8M0_BIAS);
}

/* NaN has no E2M1 code: it maps to +0 here; mimo_mxfp4_quantize_block marks a block holding a NaN
 * with the NaN scale instead, so the NaN is not lost. */
uint8_t mimo_f32_to_e2m1(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint8_t sign = (uint8_t)((u >> 28) & 0x8u);   /* keeps -0 and tiny negatives as code 0x8 */
    if (isnan(x))
        return 0;
    float a = fabsf(x);
    /* Walk the 8 magnitudes; every midpoint is exact in float, so the comparisons are exact. */
    for (uint8_t code = 0; code < 7; code++) {
        float mid = 0.5f * (mimo_e2m1_values[code] + mimo_e2m1_values[code + 1]);
        if (a < mid)
            return sign | code;
        if (a == mid)   /* tie: the even code of the two neighbours */
            return sign | ((code & 1u) ? (uint8_t)(code + 1) : code);
    }
    return sign | 7u;   /* saturate at 6 (also Inf) */
}

/* The spec's shared exponent of a block, or false when the block holds a NaN or an Inf
 * (microxcaling turns those blocks into NaN: we encode them with the NaN scale byte). */
static bool mxfp4_shared_exponent(const float x[32], int *shared_exp)
{
    float amax = 0.0f;
    for (int i = 0; i < MIMO_MXFP4_BLOCK; i++) {
        if (!isfinite(x[i]))
            return false;
        float a = fabsf(x[i]);
        if (a > amax)
            amax = a;
    }
    if (amax == 0.0f) {
        *shared_exp = SHARED_EXP_MIN;   /* amax = 0 gives the smallest scale */
        return true;
    }
    int e;
    frexpf(amax, &e);                   /* amax = m * 2^e, m in [0.5, 1): floor(log2 amax) = e - 1 */
    int s = (e - 1) - E2M1_EMAX;
    *shared_exp = s < SHARED_EXP_MIN ? SHARED_EXP_MIN : s > SHARED_EXP_MAX ? SHARED_EXP_MAX : s;
    return true;
}

void mimo_mxfp4_quantize_block(const float x[32], uint8_t packed[16], uint8_t *scale)
{
    int shared_exp;
    if (!mxfp4_shared_exponent(x, &shared_exp)) {
        memset(packed, 0, MIMO_MXFP4_BLOCK / 2);
        *scale = E8M0_NAN;
        return;
    }
    for (int k = 0; k < MIMO_MXFP4_BLOCK / 2; k++) {
        /* Dividing by a power of two is exact (ldexpf); an underflow only touches values that
         * round to zero anyway. */
        uint8_t lo = mimo_f32_to_e2m1(ldexpf(x[2 * k], -shared_exp));
        uint8_t hi = mimo_f32_to_e2m1(ldexpf(x[2 * k + 1], -shared_exp));
        packed[k] = (uint8_t)(lo | (hi << 4));   /* element 2k in the low nibble */
    }
    *scale = (uint8_t)(shared_exp + E8M0_BIAS);
}

void mimo_mxfp4_dequantize_block(const uint8_t packed[16], uint8_t scale, float out[32])
{
    if (scale == E8M0_NAN) {
        for (int i = 0; i < MIMO_MXFP4_BLOCK; i++)
            out[i] = NAN;
        return;
    }
    int exp = (int)scale - E8M0_BIAS;
    for (int k = 0; k < MIMO_MXFP4_BLOCK / 2; k++) {
        out[2 * k]     = ldexpf(mimo_e2m1_values[packed[k] & 0xFu], exp);
        out[2 * k + 1] = ldexpf(mimo_e2m1_values[packed[k] >> 4], exp);
    }
}

void mimo_mxfp4_quantize(const float *w, int64_t rows, int64_t cols, uint8_t *packed, uint8_t *scales)
{
    int64_t blocks = cols / MIMO_MXFP4_BLOCK;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < blocks; b++)
            mimo_mxfp4_quantize_block(w + r * cols + b * MIMO_MXFP4_BLOCK,
                                      packed + r * (cols / 2) + b * (MIMO_MXFP4_BLOCK / 2),
                                      scales + r * blocks + b);
}

void mimo_mxfp4_dequantize(const uint8_t *packed, const uint8_t *scales, int64_t rows, int64_t cols, float *w)
{
    int64_t blocks = cols / MIMO_MXFP4_BLOCK;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < blocks; b++)
            mimo_mxfp4_dequantize_block(packed + r * (cols / 2) + b * (MIMO_MXFP4_BLOCK / 2),
                                        scales[r * blocks + b], w + r * cols + b * MIMO_MXFP4_BLOCK);
}
