/* The fused qkv row orders (MODEL.md): plain (q | k | v) and TP-interleaved, where each of G groups
 * holds (H/G q heads, K/G k heads, K/G v heads) so that tensor-parallel rank g owns one contiguous
 * slice. FP8 scale rows are padded per group to whole 128-row blocks. */
#include "mimo/weights.h"

void mimo_qkv_interleave_map(const mimo_config *cfg, int layer, int32_t *row_of_plain)
{
    const mimo_attn_shape *a = mimo_layer_attn(cfg, layer);
    const int H = a->n_heads, K = a->n_kv_heads, dqk = a->head_dim, dv = a->v_head_dim;
    const int rows = mimo_qkv_rows(cfg, layer);
    if (!cfg->qkv_interleaved || cfg->qkv_groups <= 1) {
        for (int i = 0; i < rows; i++)
            row_of_plain[i] = i;
        return;
    }
    const int G = cfg->qkv_groups, hq = H / G, hk = K / G;
    const int group_rows = rows / G;
    int i = 0;
    for (int h = 0; h < H; h++)          /* q heads */
        for (int d = 0; d < dqk; d++)
            row_of_plain[i++] = (h / hq) * group_rows + (h % hq) * dqk + d;
    for (int j = 0; j < K; j++)          /* k heads */
        for (int d = 0; d < dqk; d++)
            row_of_plain[i++] = (j / hk) * group_rows + hq * dqk + (j % hk) * dqk + d;
    for (int j = 0; j < K; j++)          /* v heads */
        for (int d = 0; d < dv; d++)
            row_of_plain[i++] = (j / hk) * group_rows + (hq + hk) * dqk + (j % hk) * dv + d;
}

int64_t mimo_qkv_scale_rows(const mimo_config *cfg, int layer)
{
    int64_t rows = mimo_qkv_rows(cfg, layer);
    if (!cfg->qkv_interleaved || cfg->qkv_groups <= 1)
        return (rows + 127) / 128;
    int64_t g = rows / cfg->qkv_groups;
    return cfg->qkv_groups * ((g + 127) / 128);
}
