/* Weight storage formats: names and byte sizes (FORMATS.md), and the fused qkv row count. */
#include "mimo/config.h"

#include <string.h>

static const char *const format_names[MIMO_WFMT_COUNT] = {"f32", "bf16", "fp8", "mxfp4"};

const char *mimo_weight_format_name(mimo_weight_format f)
{
    if ((int)f < 0 || f >= MIMO_WFMT_COUNT)
        return "?";
    return format_names[f];
}

int mimo_weight_format_from_name(const char *s, mimo_weight_format *out)
{
    if (!s)
        return -1;
    /* Accept the short names plus the usual torch / safetensors spellings. */
    static const struct { const char *name; mimo_weight_format f; } aliases[] = {
        {"f32", MIMO_WFMT_F32},   {"fp32", MIMO_WFMT_F32},  {"float32", MIMO_WFMT_F32},
        {"F32", MIMO_WFMT_F32},   {"bf16", MIMO_WFMT_BF16}, {"bfloat16", MIMO_WFMT_BF16},
        {"BF16", MIMO_WFMT_BF16}, {"fp8", MIMO_WFMT_FP8},   {"e4m3", MIMO_WFMT_FP8},
        {"float8_e4m3fn", MIMO_WFMT_FP8}, {"F8_E4M3", MIMO_WFMT_FP8},
        {"mxfp4", MIMO_WFMT_MXFP4}, {"MXFP4", MIMO_WFMT_MXFP4}, {"fp4", MIMO_WFMT_MXFP4},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (!strcmp(s, aliases[i].name)) {
            *out = aliases[i].f;
            return 0;
        }
    return -1;
}

static uint64_t ceil_div(int64_t a, int64_t b) { return (uint64_t)((a + b - 1) / b); }

uint64_t mimo_weight_format_bytes(mimo_weight_format f, int64_t rows, int64_t cols)
{
    if (rows <= 0 || cols <= 0)
        return 0;
    uint64_t n = (uint64_t)rows * (uint64_t)cols;
    switch (f) {
    case MIMO_WFMT_F32:   return 4 * n;
    case MIMO_WFMT_BF16:  return 2 * n;
    case MIMO_WFMT_FP8:   return n + 4 * ceil_div(rows, 128) * ceil_div(cols, 128);
    case MIMO_WFMT_MXFP4: return (uint64_t)rows * (ceil_div(cols, 2) + ceil_div(cols, 32));
    default:              return 0;
    }
}

int mimo_qkv_rows(const mimo_config *c, int layer)
{
    const mimo_attn_shape *a = mimo_layer_attn(c, layer);
    return a->n_heads * a->head_dim + a->n_kv_heads * a->head_dim + a->n_kv_heads * a->v_head_dim;
}
