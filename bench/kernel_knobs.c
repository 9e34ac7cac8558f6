/* The CUDA backend's environment knobs (kernel_knobs.h). */
#include "kernel_knobs.h"

const char *const mimo_cuda_knobs[] = {
    "MIMO_CUDA_GEMV1",          "MIMO_CUDA_MMA_PIPE",       "MIMO_CUDA_MMA_KSPLIT",
    "MIMO_CUDA_GEMV1_BLOCKS",   "MIMO_CUDA_GEMV1_WARPS",    "MIMO_CUDA_GEMV1_KSPLIT_MAX",
    "MIMO_CUDA_GEMV1_WIDE",     "MIMO_CUDA_GEMV1_NARROW",   "MIMO_CUDA_ATTN_SPLIT_KEYS",
    "MIMO_CUDA_PDL",            "MIMO_CUDA_FUSED_COMBINE",  "MIMO_CUDA_MMA_SPLITK",
    "MIMO_CUDA_COMBINE_BLOCKS", "MIMO_CUDA_GEMV1_ONEPASS",  "MIMO_CUDA_SLOT_XSMEM",
    "MIMO_CUDA_DEFER_NORM",     "MIMO_CUDA_EARLY_IDS",      "MIMO_CUDA_NORM_FACTOR",
    "MIMO_CUDA_ROUTE_REDUX",    "MIMO_CUDA_MERGE_REGISTERS", "MIMO_CUDA_PERSIST_BLOCKS_PER_SM",
    "MIMO_CUDA_PROFILE",        "MIMO_CUDA_PERSIST_PROFILE", "MIMO_KBENCH_L2_HOT",
    "MIMO_CUDA_QKV_ROPE",       "MIMO_CUDA_ATTN_GROUP",     "MIMO_CUDA_GEMV_STAGED",    "MIMO_CUDA_SLOT_BULK",
    "MIMO_CUDA_SLOT_BULK_TILES",
};
const size_t mimo_cuda_knob_count = sizeof mimo_cuda_knobs / sizeof mimo_cuda_knobs[0];
