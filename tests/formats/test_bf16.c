/* BF16 conversions (FORMATS.md): exact decode, round-to-nearest-even encode, NaN stays quiet NaN. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/formats.h"

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

Test(bf16, known_values)
{
    cr_assert_eq(mimo_f32_to_bf16(1.0f), 0x3F80);
    cr_assert_eq(mimo_f32_to_bf16(-2.0f), 0xC000);
    cr_assert_eq(mimo_f32_to_bf16(0.0f), 0x0000);
    cr_assert_eq(mimo_f32_to_bf16(-0.0f), 0x8000);
    cr_assert_eq(mimo_f32_to_bf16(INFINITY), 0x7F80);
    cr_assert_eq(mimo_f32_to_bf16(-INFINITY), 0xFF80);
    cr_assert_eq(mimo_bf16_to_f32(0x3F80), 1.0f);
    cr_assert_eq(mimo_bf16_to_f32(0x4049), 3.140625f);
}

Test(bf16, every_value_round_trips)
{
    for (uint32_t b = 0; b < 0x10000; b++) {
        float f = mimo_bf16_to_f32((uint16_t)b);
        cr_assert_eq(bits_of(f), b << 16, "decode of 0x%04x", b);
        uint16_t back = mimo_f32_to_bf16(f);
        if (isnan(f))
            cr_assert(isnan(mimo_bf16_to_f32(back)), "NaN 0x%04x re-encoded as a number 0x%04x", b, back);
        else
            cr_assert_eq(back, b, "0x%04x re-encoded as 0x%04x", b, back);
    }
}

Test(bf16, round_to_nearest_even)
{
    /* 1 + 2^-8 is halfway between 0x3F80 and 0x3F81: ties to the even 0x3F80. */
    cr_assert_eq(mimo_f32_to_bf16(float_of(0x3F808000)), 0x3F80);
    /* halfway between 0x3F81 and 0x3F82: ties to the even 0x3F82 */
    cr_assert_eq(mimo_f32_to_bf16(float_of(0x3F818000)), 0x3F82);
    /* just above / below the halfway point */
    cr_assert_eq(mimo_f32_to_bf16(float_of(0x3F808001)), 0x3F81);
    cr_assert_eq(mimo_f32_to_bf16(float_of(0x3F817FFF)), 0x3F81);
    /* the mantissa carry rolls into the exponent */
    cr_assert_eq(mimo_f32_to_bf16(float_of(0x3FFFFFFF)), 0x4000);
    /* past the largest bf16: rounds to Inf, as IEEE rounding does */
    cr_assert_eq(mimo_f32_to_bf16(float_of(0x7F7FFFFF)), 0x7F80);
    /* subnormals round too */
    cr_assert_eq(mimo_f32_to_bf16(float_of(0x00018000)), 0x0002);
}

Test(bf16, nan_stays_quiet_nan)
{
    const uint32_t nans[] = {0x7FC00000, 0x7F800001, 0xFF800001, 0x7F80FFFF, 0xFFFFFFFF, 0x7FFFFFFF};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        uint16_t b = mimo_f32_to_bf16(float_of(nans[i]));
        cr_assert((b & 0x7F80) == 0x7F80 && (b & 0x007F) != 0, "0x%08x -> 0x%04x is not NaN", nans[i], b);
        cr_assert(b & 0x0040, "0x%08x -> 0x%04x is not quiet", nans[i], b);
        cr_assert_eq(b >> 15, nans[i] >> 31, "sign of 0x%08x lost", nans[i]);
    }
}

/* Random floats: the result is the nearer of the two bf16 neighbours (even on a tie). */
Test(bf16, random_is_nearest)
{
    srand(1234);
    for (int i = 0; i < 200000; i++) {
        uint32_t u = ((uint32_t)rand() << 16) ^ (uint32_t)rand();
        float f = float_of(u);
        if (!isfinite(f) || fabsf(f) > 3.0e38f)
            continue;
        uint16_t b = mimo_f32_to_bf16(f);
        uint16_t down = (uint16_t)(u >> 16), up = (uint16_t)(down + 1);
        double dd = fabs((double)f - mimo_bf16_to_f32(down)), du = fabs((double)f - mimo_bf16_to_f32(up));
        uint16_t want = dd < du ? down : du < dd ? up : ((down & 1) ? up : down);
        cr_assert_eq(b, want, "0x%08x -> 0x%04x, want 0x%04x", u, b, want);
    }
}
