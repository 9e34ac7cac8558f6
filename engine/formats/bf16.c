/* BF16 <-> float32 (FORMATS.md): bf16 is the upper half of an IEEE float32. */
#include "mimo/formats.h"

#include <string.h>

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float mimo_bf16_to_f32(uint16_t b)
{
    return f32_from_bits((uint32_t)b << 16);
}

uint16_t mimo_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    /* NaN: keep sign and top payload bits, force the quiet bit so truncation cannot make it Inf. */
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu) != 0)
        return (uint16_t)((u >> 16) | 0x0040u);
    /* Round to nearest even on the 16 dropped bits; a carry into the exponent is the correct
     * rounding (up to Inf for values past the largest bf16). */
    uint32_t lsb = (u >> 16) & 1u;
    return (uint16_t)((u + 0x7FFFu + lsb) >> 16);
}
