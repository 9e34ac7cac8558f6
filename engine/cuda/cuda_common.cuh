// Shared pieces of the CUDA backend: error checking, the device-side weight matrix descriptor and
// the element decoders (FORMATS.md). Every kernel and launcher includes this.
#ifndef MIMO_CUDA_COMMON_CUH
#define MIMO_CUDA_COMMON_CUH

#include <cuda_runtime.h>
#include <cuda_fp8.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include <utility>

extern "C" {
#include "mimo/error.h"
#include "mimo/config.h"
}

// Every CUDA call goes through this: on failure it fills err with the call, file and line and
// makes the enclosing function return -1.
#define CUDA_CHECK(call)                                                                          \
    do {                                                                                          \
        cudaError_t cuda_check_rc_ = (call);                                                      \
        if (cuda_check_rc_ != cudaSuccess)                                                        \
            return mimo_fail(err, "cuda: %s failed: %s (%s:%d)", #call,                           \
                             cudaGetErrorString(cuda_check_rc_), __FILE__, __LINE__);             \
    } while (0)

// After a kernel launch: the launch error (bad configuration, missing image) is reported here.
#define CUDA_CHECK_LAUNCH(kernel_name)                                                            \
    do {                                                                                          \
        cudaError_t cuda_check_rc_ = cudaGetLastError();                                          \
        if (cuda_check_rc_ != cudaSuccess)                                                        \
            return mimo_fail(err, "cuda: launch of %s failed: %s (%s:%d)", kernel_name,           \
                             cudaGetErrorString(cuda_check_rc_), __FILE__, __LINE__);             \
    } while (0)

// ---- programmatic dependent launch (PDL, sm_90) ----
// The step's kernels are launched with programmatic stream serialization: a kernel may start while
// its predecessor in the stream is still running. Each one therefore calls pdl_wait() before it
// reads anything an earlier kernel wrote (or writes anything an earlier kernel reads); the GEMVs
// issue their first weight loads before it, which overlaps the next matrix's loads with the tail of
// the previous kernel. pdl_trigger() lets the next kernel's blocks be scheduled early. Both are
// no-ops when a kernel was launched without the attribute.
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_trigger() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }

// Whether launches carry the PDL attribute: only inside a step program (cuda_run_program), after
// another kernel of it (griddepcontrol.wait orders a kernel after a preceding *kernel*, not after a
// copy or an event), and unless MIMO_CUDA_PDL=0. cuda_run_program sets cuda_pdl_chain(true) for an op
// whose predecessor on the stream is a kernel of the program, and false after the program.
bool cuda_pdl_enabled();
void cuda_pdl_chain(bool previous_is_kernel);
bool cuda_pdl_chained();

// Launches kernel on st (with the PDL attribute when enabled); 0, or -1 with err naming the kernel.
template <typename... KArgs, typename... Args>
static inline int cuda_launch(const char *name, mimo_error *err, void (*kernel)(KArgs...), dim3 grid, dim3 block,
                              size_t smem, cudaStream_t st, Args &&...args)
{
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    const bool chained = cuda_pdl_chained();
    cfg.numAttrs = chained && cuda_pdl_enabled() ? 1 : 0;
    cudaError_t rc = cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
    if (rc != cudaSuccess)
        return mimo_fail(err, "cuda: launch of %s failed: %s", name, cudaGetErrorString(rc));
    return 0;
}

// Columns of a device matrix row are padded to a multiple of this many elements so that every
// row starts on a 16-byte boundary and every 16-byte vector lies inside one scale block.
#define MIMO_CUDA_COL_ALIGN 32

// A weight matrix in device memory, in its storage format. Rows are padded to ld elements
// (ld % 32 == 0, padding decodes to zero). An "expert set" is n consecutive matrices of the same
// shape: matrix e starts expert_stride_data bytes / expert_stride_scales scale elements later.
struct GpuMat {
    int fmt;                 // mimo_weight_format
    int rows, cols, ld;
    const void *data;
    const void *scales;      // fp8: float multipliers; mxfp4: uint8 UE8M0 [rows, ld/32]
    int scale_ld;            // scale entries per scale row
    int scale_group_rows;    // fp8: rows per scale group (0 = plain)
    int scale_group_srows;   // fp8: scale rows per group = ceil(scale_group_rows / 128)
    long long expert_stride_data;
    long long expert_stride_scales;
};

// Matrix e of an expert set: its first data byte, and its first scale byte (fp8 scales are 4-byte floats;
// NULL for sets without scales).
__host__ __device__ __forceinline__ const uint8_t *expert_data(const GpuMat &m, int e)
{
    return (const uint8_t *)m.data + (long long)e * m.expert_stride_data;
}
__host__ __device__ __forceinline__ const uint8_t *expert_scales(const GpuMat &m, int e)
{
    return m.scales ? (const uint8_t *)m.scales + (long long)e * m.expert_stride_scales * (m.fmt == MIMO_WFMT_FP8 ? 4 : 1)
                    : nullptr;
}

__host__ __device__ static inline size_t gpu_row_bytes(int fmt, int ld)
{
    switch (fmt) {
    case MIMO_WFMT_F32: return (size_t)ld * 4;
    case MIMO_WFMT_BF16: return (size_t)ld * 2;
    case MIMO_WFMT_FP8: return (size_t)ld;
    default: return (size_t)ld / 2;
    }
}
static inline int gpu_pad_cols(int cols) { return (cols + MIMO_CUDA_COL_ALIGN - 1) / MIMO_CUDA_COL_ALIGN * MIMO_CUDA_COL_ALIGN; }
// Scale rows of an fp8 matrix (honouring grouped scale rows) and scale entries per row.
static inline long long gpu_fp8_scale_rows(long long rows, long long group_rows)
{
    if (group_rows <= 0)
        return (rows + 127) / 128;
    long long groups = (rows + group_rows - 1) / group_rows;
    return groups * ((group_rows + 127) / 128);
}

// ---- element decoders ----
__device__ __forceinline__ float dev_bf16_to_f32(uint16_t b) { return __uint_as_float((uint32_t)b << 16); }

__device__ __forceinline__ float dev_fp8_to_f32(uint8_t b)
{
    __half_raw h = __nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t)b, __NV_E4M3);
    return __half2float(__half(h));
}

// UE8M0 scale 2^(e-127); 0xFF is NaN.
__device__ __forceinline__ float dev_e8m0_to_f32(uint8_t e)
{
    if (e == 0xFF)
        return __uint_as_float(0x7FC00000u);
    if (e == 0)
        return __uint_as_float(0x00400000u);   // 2^-127, a float32 subnormal
    return __uint_as_float((uint32_t)e << 23);
}

// Two E2M1 codes of one byte -> two halves whose values are the codes' values times 2^-14
// (the code's exponent/mantissa bits placed in the half's exponent/mantissa); the caller folds the
// 2^14 into the block scale. Exact: every E2M1 value is a half.
__device__ __forceinline__ __half2 dev_e2m1x2_scaled(uint32_t byte)
{
    uint32_t lo = ((byte & 0x8u) << 12) | ((byte & 0x7u) << 9);
    uint32_t hi = ((byte & 0x80u) << 24) | ((byte & 0x70u) << 21);
    uint32_t bits = lo | hi;
    return *reinterpret_cast<__half2 *>(&bits);
}

// E2M1 code e (bits 4e..4e+3 of word) -> the fp32 whose value is the code's value times 2^-126: sign to
// bit 31, the exponent and mantissa bits to bits 24..22 (codes 0 and 0.5 become fp32 subnormals, which
// the FMA takes exactly: the build does not flush denormals). A left shift puts the code's sign at bit
// 31, an arithmetic right shift by 6 copies it down to bit 25 and brings the other three bits to
// 24..22, and one mask keeps those four: a shift, a shift and a mask per code (the MXFP4 expert GEMVs
// are bound by this ALU work; results/kernels/README.md).
__device__ __forceinline__ float dev_e2m1_f32_scaled(uint32_t word, int e)
{
    const int32_t t = (int32_t)(word << (28 - 4 * e));
    return __uint_as_float((uint32_t)(t >> 6) & 0x81C00000u);
}

// Element (r, c) of a matrix (slow path: embedding rows, tests).
__device__ __forceinline__ float dev_mat_get(const GpuMat &m, const uint8_t *base, const uint8_t *sbase, int r, int c)
{
    size_t row = (size_t)r * m.ld;
    switch (m.fmt) {
    case MIMO_WFMT_F32: return ((const float *)base)[row + c];
    case MIMO_WFMT_BF16: return dev_bf16_to_f32(((const uint16_t *)base)[row + c]);
    case MIMO_WFMT_FP8: {
        long long srow = m.scale_group_rows > 0
            ? (long long)(r / m.scale_group_rows) * m.scale_group_srows + (r % m.scale_group_rows) / 128
            : r / 128;
        float s = ((const float *)sbase)[srow * m.scale_ld + c / 128];
        return dev_fp8_to_f32(base[row + c]) * s;
    }
    default: {
        uint8_t byte = base[(row + c) / 2];
        uint32_t code = (c & 1) ? (byte >> 4) : (byte & 0xF);
        float v = __half2float(__low2half(dev_e2m1x2_scaled(code))) * 16384.0f;
        return v * dev_e8m0_to_f32(((const uint8_t *)sbase)[(size_t)r * (m.ld / 32) + c / 32]);
    }
    }
}

#endif
