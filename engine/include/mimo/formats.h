/* Number formats (FORMATS.md), plain C. These are the judges of every GPU kernel. */
#ifndef MIMO_FORMATS_H
#define MIMO_FORMATS_H

#include <stddef.h>
#include <stdint.h>

/* ---- BF16: upper 16 bits of an IEEE float32 ---- */
float    mimo_bf16_to_f32(uint16_t b);
uint16_t mimo_f32_to_bf16(float f); /* round to nearest even; NaN stays a quiet NaN */

/* ---- FP8 E4M3 (OCP "fn"): bias 7, max 448, no Inf, S.1111.111 = NaN ---- */
float   mimo_fp8_e4m3_to_f32(uint8_t b);
uint8_t mimo_f32_to_fp8_e4m3(float f); /* saturating (satfinite), round to nearest even; NaN -> 0x7F */

#define MIMO_FP8_BLOCK 128
/* Block-scaled FP8 weight [rows, cols], scale_inv [ceil(rows/128), ceil(cols/128)] is a multiplier:
 * w = fp8 * scale. Quantize picks scale = amax(block)/448 (1 for an all-zero block). */
void mimo_fp8_block_quantize(const float *w, int64_t rows, int64_t cols, uint8_t *q, float *scale_inv);
void mimo_fp8_block_dequantize(const uint8_t *q, const float *scale_inv, int64_t rows, int64_t cols, float *w);

/* ---- MXFP4 (OCP MX v1.0): E2M1 elements, blocks of 32 along K, UE8M0 scales ---- */
#define MIMO_MXFP4_BLOCK 32
extern const float mimo_e2m1_values[16];  /* code -> value; 8..15 negated (0x8 = -0) */
float   mimo_e8m0_to_f32(uint8_t e);       /* 2^(e-127); 0xFF -> NaN */
uint8_t mimo_f32_to_e2m1(float x);         /* nearest on the grid, ties to even code, saturate at +-6 */
/* One block of 32: computes the shared exponent per the spec rule, writes 16 packed bytes
 * (element 2k in the low nibble) and the scale byte. */
void mimo_mxfp4_quantize_block(const float x[32], uint8_t packed[16], uint8_t *scale);
void mimo_mxfp4_dequantize_block(const uint8_t packed[16], uint8_t scale, float out[32]);
/* Whole weight [rows, cols] (cols % 32 == 0): packed [rows, cols/2], scales [rows, cols/32]. */
void mimo_mxfp4_quantize(const float *w, int64_t rows, int64_t cols, uint8_t *packed, uint8_t *scales);
void mimo_mxfp4_dequantize(const uint8_t *packed, const uint8_t *scales, int64_t rows, int64_t cols, float *w);

#endif
