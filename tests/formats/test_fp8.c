/* FP8 E4M3 "fn" (FORMATS.md): spec vectors, PyTorch's cast (golden), saturation, NaN, subnormals,
 * an independent nearest-value check on random data, and the 128x128 block scaling. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/formats.h"
#include "support.h"

Test(fp8, spec_vectors)
{
    cr_assert_eq(mimo_fp8_e4m3_to_f32(0x7E), 448.0f);
    cr_assert(isnan(mimo_fp8_e4m3_to_f32(0x7F)));
    cr_assert(isnan(mimo_fp8_e4m3_to_f32(0xFF)));
    cr_assert_eq(mimo_fp8_e4m3_to_f32(0x08), ldexpf(1.0f, -6));
    cr_assert_eq(mimo_fp8_e4m3_to_f32(0x01), ldexpf(1.0f, -9));
    cr_assert_eq(mimo_fp8_e4m3_to_f32(0x38), 1.0f);
    cr_assert_eq(mimo_fp8_e4m3_to_f32(0xB8), -1.0f);
    cr_assert_eq(mimo_f32_to_fp8_e4m3(448.0f), 0x7E);
    cr_assert_eq(mimo_f32_to_fp8_e4m3(ldexpf(1.0f, -6)), 0x08);
    cr_assert_eq(mimo_f32_to_fp8_e4m3(ldexpf(1.0f, -9)), 0x01);
    cr_assert_eq(mimo_f32_to_fp8_e4m3(1.0f), 0x38);
    cr_assert_eq(mimo_f32_to_fp8_e4m3(-1.0f), 0xB8);
}

Test(fp8, every_byte_round_trips)
{
    for (int b = 0; b < 256; b++) {
        float f = mimo_fp8_e4m3_to_f32((uint8_t)b);
        if ((b & 0x7F) == 0x7F) {
            cr_assert(isnan(f), "0x%02x should be NaN", b);
            continue;
        }
        cr_assert(isfinite(f), "0x%02x decodes to %g", b, f);
        cr_assert_eq(mimo_f32_to_fp8_e4m3(f), b, "0x%02x (%g) re-encodes as 0x%02x", b, f, mimo_f32_to_fp8_e4m3(f));
        cr_assert_eq(signbit(f) != 0, (b & 0x80) != 0, "sign of 0x%02x", b);
    }
}

Test(fp8, saturation_and_nan)
{
    cr_assert_eq(mimo_f32_to_fp8_e4m3(449.0f), 0x7E);
    cr_assert_eq(mimo_f32_to_fp8_e4m3(464.0f), 0x7E);
    cr_assert_eq(mimo_f32_to_fp8_e4m3(480.0f), 0x7E);
    cr_assert_eq(mimo_f32_to_fp8_e4m3(1e30f), 0x7E);
    cr_assert_eq(mimo_f32_to_fp8_e4m3(-1e30f), 0xFE);
    cr_assert_eq(mimo_f32_to_fp8_e4m3(INFINITY), 0x7E);
    cr_assert_eq(mimo_f32_to_fp8_e4m3(-INFINITY), 0xFE);
    cr_assert_eq(mimo_f32_to_fp8_e4m3(NAN), 0x7F);
    cr_assert_eq(mimo_f32_to_fp8_e4m3(-NAN), 0x7F);
}

Test(fp8, subnormals_and_ties)
{
    cr_assert_eq(mimo_f32_to_fp8_e4m3(ldexpf(1.0f, -10)), 0x00);       /* half of 2^-9: tie to 0 */
    cr_assert_eq(mimo_f32_to_fp8_e4m3(-ldexpf(1.0f, -10)), 0x80);      /* signed zero kept */
    cr_assert_eq(mimo_f32_to_fp8_e4m3(ldexpf(1.0f, -10) * 1.0001f), 0x01);
    cr_assert_eq(mimo_f32_to_fp8_e4m3(ldexpf(3.0f, -10)), 0x02);       /* 1.5 ulp: tie to even 2 */
    cr_assert_eq(mimo_f32_to_fp8_e4m3(ldexpf(15.0f, -10)), 0x08);      /* 7.5 ulp: rounds up to the smallest normal */
    cr_assert_eq(mimo_f32_to_fp8_e4m3(1.0625f), 0x38);                 /* 1 + 1/16: tie to even 1.0 */
    cr_assert_eq(mimo_f32_to_fp8_e4m3(1.1875f), 0x3A);                 /* 1 + 3/16: tie to even 1.25 */
    cr_assert_eq(mimo_f32_to_fp8_e4m3(1e-30f), 0x00);
    cr_assert_eq(mimo_f32_to_fp8_e4m3(1e-45f), 0x00);                  /* float32 subnormal */
}

/* Independent reference: the nearest finite E4M3 value, ties to the even code. */
static uint8_t nearest_fp8(float f)
{
    int best = -1;
    double best_d = INFINITY;
    for (int b = 0; b < 0x7F; b++) {
        double d = fabs(fabs((double)f) - mimo_fp8_e4m3_to_f32((uint8_t)b));
        if (d < best_d || (d == best_d && (b & 1) == 0)) {
            best = b;
            best_d = d;
        }
    }
    return (uint8_t)(best | (signbit(f) ? 0x80 : 0));
}

Test(fp8, random_is_nearest)
{
    srand(42);
    for (int i = 0; i < 20000; i++) {
        /* log-uniform magnitudes from far below the subnormals to past the max */
        float mag = ldexpf((float)rand() / (float)RAND_MAX + 0.5f, rand() % 30 - 16);
        float f = (rand() & 1) ? -mag : mag;
        uint8_t want = nearest_fp8(f), got = mimo_f32_to_fp8_e4m3(f);
        cr_assert_eq(got, want, "%a -> 0x%02x, want 0x%02x", (double)f, got, want);
    }
}

Test(fp8, golden_torch_cast)
{
    const char *shared = mimo_test_shared_dir();
    if (!shared)
        cr_skip_test("shared folder (golden vectors) not found");
    char path[4096];
    snprintf(path, sizeof path, "%s/golden/fp8_e4m3_dev.jsonl", shared);
    FILE *fp = fopen(path, "r");
    if (!fp)
        cr_skip_test("%s not found", path);
    char line[4096];
    int records = 0;
    while (fgets(line, sizeof line, fp)) {
        json_error_t jerr;
        json_t *rec = json_loads(line, 0, &jerr);
        cr_assert_not_null(rec, "%s:%d: %s", path, records + 1, jerr.text);
        float x = (float)json_number_value(json_object_get(rec, "x"));
        int bits = (int)json_integer_value(json_object_get(rec, "bits"));
        float value = (float)json_number_value(json_object_get(rec, "value"));
        uint8_t got = mimo_f32_to_fp8_e4m3(x);
        cr_assert_eq(got, bits, "%s:%d: x=%a -> 0x%02x, torch 0x%02x", path, records + 1, (double)x, got, bits);
        float decoded = mimo_fp8_e4m3_to_f32(got);
        cr_assert(decoded == value && signbit(decoded) == signbit(value), "%s:%d: 0x%02x decodes to %g, torch %g",
                  path, records + 1, got, decoded, value);
        json_decref(rec);
        records++;
    }
    fclose(fp);
    cr_assert_gt(records, 1000, "only %d records in %s", records, path);
}

Test(fp8, block_quantize_error_bound)
{
    const int64_t rows = 200, cols = 300;   /* partial blocks on both edges */
    const int64_t srows = 2, scols = 3;
    float *w = malloc(sizeof(float) * rows * cols), *back = malloc(sizeof(float) * rows * cols);
    uint8_t *q = malloc(rows * cols);
    float scale[6];
    srand(7);
    for (int64_t i = 0; i < rows * cols; i++)
        w[i] = ((float)rand() / (float)RAND_MAX - 0.5f) * (float)(1 + i % 97);
    for (int64_t r = 0; r < 128; r++)            /* block (0, 1) all zero */
        for (int64_t c = 128; c < 256; c++)
            w[r * cols + c] = 0.0f;
    mimo_fp8_block_quantize(w, rows, cols, q, scale);
    mimo_fp8_block_dequantize(q, scale, rows, cols, back);
    cr_assert_eq(scale[1], 1.0f, "all-zero block scale %g", scale[1]);
    for (int64_t br = 0; br < srows; br++)
        for (int64_t bc = 0; bc < scols; bc++) {
            float amax = 0;
            for (int64_t r = br * 128; r < rows && r < br * 128 + 128; r++)
                for (int64_t c = bc * 128; c < cols && c < bc * 128 + 128; c++)
                    amax = fmaxf(amax, fabsf(w[r * cols + c]));
            if (amax > 0)
                cr_assert_float_eq(scale[br * scols + bc], amax / 448.0f, 1e-12f);
        }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            float s = scale[(r / 128) * scols + c / 128], x = w[r * cols + c], y = back[r * cols + c];
            /* half an ulp of 3 mantissa bits, or half the subnormal step */
            float bound = fmaxf(fabsf(x) / 16.0f, s * ldexpf(1.0f, -10)) * 1.0001f;
            cr_assert_leq(fabsf(x - y), bound, "(%ld,%ld) %g -> %g", (long)r, (long)c, x, y);
        }
    free(w);
    free(back);
    free(q);
}

Test(fp8, block_nan_is_not_silent)
{
    float w[4] = {1.0f, NAN, 2.0f, 3.0f}, back[4], scale;
    uint8_t q[4];
    mimo_fp8_block_quantize(w, 2, 2, q, &scale);
    mimo_fp8_block_dequantize(q, &scale, 2, 2, back);
    for (int i = 0; i < 4; i++)
        cr_assert(isnan(back[i]), "element %d = %g", i, back[i]);
}
