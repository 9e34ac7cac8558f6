/* MXFP4 (FORMATS.md): E2M1 grid and ties, UE8M0 scales, the spec's shared-exponent rule, packing,
 * the microxcaling golden blocks (bit-exact), and quantize-dequantize bounds on random data. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/formats.h"
#include "support.h"

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

Test(mxfp4, spec_vectors)
{
    float x[32] = {1.0f, -6.0f};   /* amax 6 -> shared_exp 0 -> scale byte 127 */
    uint8_t packed[16], scale;
    mimo_mxfp4_quantize_block(x, packed, &scale);
    cr_assert_eq(scale, 127);
    cr_assert_eq(packed[0], 0xF2, "(1.0, -6.0) packed to 0x%02x", packed[0]);
    for (int k = 1; k < 16; k++)
        cr_assert_eq(packed[k], 0x00);

    uint8_t p2[16] = {0x21};
    float out[32];
    mimo_mxfp4_dequantize_block(p2, 127, out);
    cr_assert_eq(out[0], 0.5f);
    cr_assert_eq(out[1], 1.0f);

    uint8_t p3[16] = {0x07};
    mimo_mxfp4_dequantize_block(p3, 130, out);
    cr_assert_eq(out[0], 48.0f);
}

Test(mxfp4, e2m1_every_code_round_trips)
{
    for (uint8_t code = 0; code < 16; code++) {
        float v = mimo_e2m1_values[code];
        cr_assert_eq(signbit(v) != 0, code >= 8, "sign of code %d", code);
        cr_assert_eq(mimo_f32_to_e2m1(v), code, "code %d (%g) re-encodes as %d", code, v, mimo_f32_to_e2m1(v));
    }
    cr_assert_eq(mimo_e2m1_values[7], 6.0f);
    cr_assert_eq(mimo_e2m1_values[15], -6.0f);
}

Test(mxfp4, e2m1_ties_to_even_and_saturation)
{
    const float x[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 0.2f, 0.3f, 5.1f, 7.0f, 100.0f, INFINITY};
    const uint8_t want[] = {0, 2, 2, 4, 4, 6, 6, 0, 1, 7, 7, 7, 7};
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) {
        cr_assert_eq(mimo_f32_to_e2m1(x[i]), want[i], "%g -> %d, want %d", x[i], mimo_f32_to_e2m1(x[i]), want[i]);
        cr_assert_eq(mimo_f32_to_e2m1(-x[i]), want[i] | 8, "-%g", x[i]);
    }
    cr_assert_eq(mimo_f32_to_e2m1(-0.1f), 0x8, "tiny negatives keep their sign (-0)");
}

Test(mxfp4, e8m0_scales)
{
    cr_assert_eq(mimo_e8m0_to_f32(127), 1.0f);
    cr_assert_eq(mimo_e8m0_to_f32(128), 2.0f);
    cr_assert_eq(mimo_e8m0_to_f32(0), ldexpf(1.0f, -127));
    cr_assert_eq(mimo_e8m0_to_f32(254), ldexpf(1.0f, 127));
    cr_assert(isnan(mimo_e8m0_to_f32(0xFF)));
    uint8_t packed[16] = {0x11};
    float out[32];
    mimo_mxfp4_dequantize_block(packed, 0xFF, out);
    for (int i = 0; i < 32; i++)
        cr_assert(isnan(out[i]), "NaN scale: element %d = %g", i, out[i]);
}

Test(mxfp4, shared_exponent_rule)
{
    float x[32] = {0}, out[32];
    uint8_t packed[16], scale;
    /* all zero: the smallest scale, zeros out */
    mimo_mxfp4_quantize_block(x, packed, &scale);
    cr_assert_eq(scale, 0);
    mimo_mxfp4_dequantize_block(packed, scale, out);
    for (int i = 0; i < 32; i++)
        cr_assert_eq(bits_of(out[i]), 0u);
    /* amax in [2^k, 2^(k+1)) gives shared_exp k - 2 */
    for (int k = -120; k <= 120; k += 7) {
        x[5] = ldexpf(1.0f, k);
        x[9] = -ldexpf(1.9f, k);
        mimo_mxfp4_quantize_block(x, packed, &scale);
        cr_assert_eq((int)scale, k - 2 + 127, "k=%d: scale %d", k, scale);
    }
    /* amax one ulp below 2^k: floor(log2 amax) is exactly k - 1 (a float32 log2 would round up to k) */
    const int ks[] = {3, 10, 60, -20};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        memset(x, 0, sizeof x);
        x[3] = nextafterf(ldexpf(1.0f, ks[i]), 0.0f);
        mimo_mxfp4_quantize_block(x, packed, &scale);
        cr_assert_eq((int)scale, ks[i] - 1 - 2 + 127, "k=%d: scale %d", ks[i], scale);
        cr_assert_eq(packed[1] >> 4, 7, "just below 8 * 2^shared saturates to 6");
    }
    /* clamped at -127 for tiny and subnormal blocks */
    memset(x, 0, sizeof x);
    x[0] = ldexpf(1.0f, -140);
    mimo_mxfp4_quantize_block(x, packed, &scale);
    cr_assert_eq(scale, 0);
    x[0] = ldexpf(1.0f, -125);    /* floor(log2) - 2 = -127 exactly: 2^-125 / 2^-127 = 4 */
    mimo_mxfp4_quantize_block(x, packed, &scale);
    cr_assert_eq(scale, 0);
    cr_assert_eq(packed[0] & 0xF, 6);
    /* the largest floats still get a valid scale */
    x[0] = 3.0e38f;
    mimo_mxfp4_quantize_block(x, packed, &scale);
    cr_assert_eq((int)scale, 127 - 2 + 127);
    mimo_mxfp4_dequantize_block(packed, scale, out);
    cr_assert(isfinite(out[0]));
}

Test(mxfp4, nonfinite_block_is_nan)
{
    float x[32] = {1.0f, 2.0f}, out[32];
    uint8_t packed[16], scale;
    x[17] = NAN;
    mimo_mxfp4_quantize_block(x, packed, &scale);
    cr_assert_eq(scale, 0xFF);
    mimo_mxfp4_dequantize_block(packed, scale, out);
    for (int i = 0; i < 32; i++)
        cr_assert(isnan(out[i]));
    x[17] = -INFINITY;
    mimo_mxfp4_quantize_block(x, packed, &scale);
    cr_assert_eq(scale, 0xFF);
}

Test(mxfp4, grid_blocks_quantize_exactly)
{
    srand(99);
    for (int k = -124; k <= 124; k += 4) {
        float x[32], out[32];
        uint8_t packed[16], scale;
        for (int i = 0; i < 32; i++)
            x[i] = ldexpf(mimo_e2m1_values[rand() % 16], k);
        x[rand() % 32] = ldexpf((rand() & 1) ? 6.0f : -6.0f, k);   /* amax = 6 * 2^k */
        mimo_mxfp4_quantize_block(x, packed, &scale);
        mimo_mxfp4_dequantize_block(packed, scale, out);
        for (int i = 0; i < 32; i++)
            cr_assert_eq(bits_of(out[i]), bits_of(x[i]), "k=%d element %d: %g -> %g", k, i, x[i], out[i]);
    }
}

/* Random blocks: every element lands on a grid value nearest to x / 2^shared_exp. */
Test(mxfp4, random_is_nearest_on_grid)
{
    srand(3);
    for (int b = 0; b < 2000; b++) {
        float x[32], out[32];
        uint8_t packed[16], scale;
        int e = rand() % 40 - 20;
        for (int i = 0; i < 32; i++)
            x[i] = ldexpf((float)rand() / (float)RAND_MAX * 2.0f - 1.0f, e);
        mimo_mxfp4_quantize_block(x, packed, &scale);
        mimo_mxfp4_dequantize_block(packed, scale, out);
        float amax = 0;
        for (int i = 0; i < 32; i++)
            amax = fmaxf(amax, fabsf(x[i]));
        int shared = (int)scale - 127;
        cr_assert(ldexpf(4.0f, shared) <= amax && amax < ldexpf(8.0f, shared), "block %d: amax %g scale %d", b, amax, scale);
        for (int i = 0; i < 32; i++) {
            double v = ldexp(x[i], -shared), q = ldexp(out[i], -shared);
            for (int c = 0; c < 16; c++)
                cr_assert_leq(fabs(v - q), fabs(v - mimo_e2m1_values[c]), "block %d element %d: %g -> %g", b, i, x[i], out[i]);
            cr_assert_leq(fabs(v - q), 2.0, "block %d element %d", b, i);
        }
    }
}

Test(mxfp4, matrix_layout_matches_blocks)
{
    enum { ROWS = 3, COLS = 96 };
    float w[ROWS * COLS], back[ROWS * COLS];
    uint8_t packed[ROWS * COLS / 2], scales[ROWS * COLS / 32];
    srand(11);
    for (int i = 0; i < ROWS * COLS; i++)
        w[i] = ldexpf((float)rand() / (float)RAND_MAX - 0.5f, i % 13);
    mimo_mxfp4_quantize(w, ROWS, COLS, packed, scales);
    mimo_mxfp4_dequantize(packed, scales, ROWS, COLS, back);
    for (int r = 0; r < ROWS; r++)
        for (int b = 0; b < COLS / 32; b++) {
            uint8_t p[16], s;
            float out[32];
            mimo_mxfp4_quantize_block(w + r * COLS + b * 32, p, &s);
            cr_assert_eq(s, scales[r * (COLS / 32) + b]);
            cr_assert_eq(memcmp(p, packed + r * (COLS / 2) + b * 16, 16), 0, "row %d block %d", r, b);
            mimo_mxfp4_dequantize_block(p, s, out);
            for (int i = 0; i < 32; i++) {
                cr_assert_eq(bits_of(out[i]), bits_of(back[r * COLS + b * 32 + i]));
                /* element 2k in the low nibble */
                uint8_t code = (i & 1) ? p[i / 2] >> 4 : p[i / 2] & 0xF;
                cr_assert_eq(bits_of(out[i]), bits_of(ldexpf(mimo_e2m1_values[code], (int)s - 127)));
            }
        }
}

Test(mxfp4, golden_microxcaling)
{
    const char *shared = mimo_test_shared_dir();
    if (!shared)
        cr_skip_test("shared folder (golden vectors) not found");
    char path[4096];
    snprintf(path, sizeof path, "%s/golden/mxfp4_dev.jsonl", shared);
    FILE *fp = fopen(path, "r");
    if (!fp)
        cr_skip_test("%s not found", path);
    static char line[1 << 16];
    int records = 0;
    while (fgets(line, sizeof line, fp)) {
        records++;
        json_error_t jerr;
        json_t *rec = json_loads(line, 0, &jerr);
        cr_assert_not_null(rec, "%s:%d: %s", path, records, jerr.text);
        json_t *jx = json_object_get(rec, "x"), *jd = json_object_get(rec, "dequant");
        cr_assert(json_array_size(jx) == 32 && json_array_size(jd) == 32, "%s:%d: bad record", path, records);
        float x[32], out[32];
        uint8_t packed[16], scale;
        for (int i = 0; i < 32; i++)
            x[i] = (float)json_number_value(json_array_get(jx, (size_t)i));
        mimo_mxfp4_quantize_block(x, packed, &scale);
        mimo_mxfp4_dequantize_block(packed, scale, out);
        for (int i = 0; i < 32; i++) {
            float want = (float)json_number_value(json_array_get(jd, (size_t)i));
            cr_assert_eq(bits_of(out[i]), bits_of(want), "%s:%d element %d: x=%a -> %a, microxcaling %a (scale %d)",
                         path, records, i, (double)x[i], (double)out[i], (double)want, scale);
        }
        json_decref(rec);
    }
    fclose(fp);
    cr_assert_gt(records, 50, "only %d records in %s", records, path);
}
