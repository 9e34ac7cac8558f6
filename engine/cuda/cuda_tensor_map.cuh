// Tensor maps for the tensor-memory copy engine's tiled copies (cp.async.bulk.tensor): the driver's encoder,
// reached through the runtime (no libcuda link), with the layout every user here wants — 128-byte swizzle,
// 256-byte L2 promotion, unit element strides, parts past a dimension's end landing as zeros (a swizzle
// other than 128-byte on request).
#ifndef MIMO_CUDA_TENSOR_MAP_CUH
#define MIMO_CUDA_TENSOR_MAP_CUH

#include <cuda.h>   // CUtensorMap, CUtensorMapDataType

#include "cuda_common.cuh"

// Looks the encoder up once (cuda_gemv_prepare's kernels call it); without it (an old driver) no tensor
// map can be made and the kernels that need one are not taken.
int cuda_tensor_map_prepare(mimo_error *err);
bool cuda_tensor_map_available();
// A map of a rank-dimensional tensor at base: dims[0] elements of type in a row, strides[i] bytes between
// steps of dimension i + 1, boxes of box[] elements, landing with the given swizzle (128-byte by default).
// Fails (with the driver's code) on a layout it refuses.
int cuda_tensor_map_encode(CUtensorMap *map, CUtensorMapDataType type, int rank, const void *base,
                           const cuuint64_t *dims, const cuuint64_t *strides, const cuuint32_t *box, mimo_error *err,
                           CUtensorMapSwizzle swizzle = CU_TENSOR_MAP_SWIZZLE_128B);

#endif
