// The driver's tensor-map encoder for the tiled bulk copies (cuda_tensor_map.cuh).
#include <cudaTypedefs.h>   // PFN_cuTensorMapEncodeTiled

#include "cuda_tensor_map.cuh"

static PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder = nullptr;

int cuda_tensor_map_prepare(mimo_error *err)
{
    (void)err;
    if (tensor_map_encoder)
        return 0;
    void *fn = nullptr;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q) == cudaSuccess &&
        q == cudaDriverEntryPointSuccess)
        tensor_map_encoder = (PFN_cuTensorMapEncodeTiled_v12000)fn;
    else
        (void)cudaGetLastError();   // not an error of the run: the kernels that need a map are not taken
    return 0;
}

bool cuda_tensor_map_available() { return tensor_map_encoder != nullptr; }

int cuda_tensor_map_encode(CUtensorMap *map, CUtensorMapDataType type, int rank, const void *base,
                           const cuuint64_t *dims, const cuuint64_t *strides, const cuuint32_t *box, mimo_error *err,
                           CUtensorMapSwizzle swizzle)
{
    if (!tensor_map_encoder)
        return mimo_fail(err, "cuda: no tensor-map encoder in this driver");
    const cuuint32_t elem_strides[5] = {1, 1, 1, 1, 1};
    const CUresult rc = tensor_map_encoder(map, type, (cuuint32_t)rank, const_cast<void *>(base), dims, strides, box,
                                           elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle,
                                           CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (rc != CUDA_SUCCESS)
        return mimo_fail(err, "cuda: a tensor map of %llu x %llu elements (rank %d) refused (driver error %d)",
                         (unsigned long long)dims[0], (unsigned long long)dims[1], rank, (int)rc);
    return 0;
}
