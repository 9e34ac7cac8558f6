// Shared pieces of the CUDA backend: error checking, the device-side weight matrix descriptor and
// the element decoders (FORMATS.md). Every kernel and launcher includes this.
#ifndef MIMO_CUDA_COMMON_CUH
#define MIMO_CUDA_COMMON_CUH

#include <cuda_runtime.h>
#include <cuda_fp8.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include <string.h>
#include <tuple>
#include <type_traits>
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

// An RMSNorm's factor 1 / sqrt(mean of x^2 + eps) from the row's sum of squares (summed in double, as the
// reference): one expression for the norm kernel and every kernel that folds a norm in.
__device__ __forceinline__ float rms_norm_factor(double sum_sq, int dim, float eps)
{
    return (float)(1.0 / sqrt(sum_sq / dim + (double)eps));
}

// ---- programmatic dependent launch (PDL, sm_90) ----
// The step's kernels are launched with programmatic stream serialization: a kernel may start while
// its predecessor in the stream is still running. Each one therefore calls pdl_wait() before it
// reads anything an earlier kernel wrote (or writes anything an earlier kernel reads); the GEMVs
// issue their first weight loads before it, which overlaps the next matrix's loads with the tail of
// the previous kernel. pdl_trigger() lets the next kernel's blocks be scheduled early. Both are
// no-ops when a kernel was launched without the attribute.
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_trigger() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }

// ---- where one unit of an op's work runs ----
// An op's body does one unit of work (one block of the op's launch). In the op's own kernel the unit is
// blockIdx and the body waits for its predecessor with griddepcontrol (above); in the persistent kernel
// (cuda_persistent.cu) the unit comes from the instruction, and the wait spins on the previous
// instruction's count of finished units. The kernels' UnitCtx is a constant (kernel_unit), so their
// code is what it was.
struct PersistWait {
    const unsigned *done;   // finished units of the previous instruction
    unsigned need;          // its units; 0: this block has already seen it complete
    unsigned *status;       // the step's status word (PersistStep::status): a wait past the timeout sets it
                            // (instruction + 1), and every later wait returns at once (the outputs are invalid)
    unsigned *ready;        // shared memory: the last instruction + 1 whose wait thread 0 has passed
    long long *passed;      // NULL, or where the first block to pass this wait notes the time (profiling)
    int instr;              // the waiting instruction
};
#define PERSIST_WAIT_TIMEOUT_NS 2000000000ll   // a dependency that takes 2 s never comes (a bug)
#define PERSIST_COUNTER_STRIDE 32               // unsigneds between two instructions' counters (128 bytes)

__device__ __forceinline__ unsigned ld_acquire_gpu(const unsigned *p)
{
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ unsigned ld_relaxed_gpu(const unsigned *p)
{
    unsigned v;
    asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ unsigned ld_acquire_cta(const unsigned *p)
{
    unsigned v;
    asm volatile("ld.acquire.cta.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void st_release_cta(unsigned *p, unsigned v)
{
    asm volatile("st.release.cta.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ long long globaltimer_ns()
{
    long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

// One thread per block polls the count in L2 (relaxed loads: an acquiring load in the poll would
// invalidate the SM's L1 at every turn, and every thread polling one line would flood its L2 slice),
// acquires once it is complete and releases the block's other threads through shared memory; they
// acquire from it (ordering is transitive), so each thread's later coherent loads see the producers'
// writes. Every thread of a unit therefore calls wait() before any block barrier of its body.
__device__ __noinline__ void persist_wait_poll(const PersistWait &w);
__device__ __forceinline__ void persist_wait(const PersistWait &w)
{
    if (w.need == 0)
        return;
    if (threadIdx.x == 0) {
        persist_wait_poll(w);
        if (w.passed)
            atomicMin((long long *)w.passed, globaltimer_ns());
        st_release_cta(w.ready, (unsigned)w.instr + 1u);
    } else {
        while (ld_acquire_cta(w.ready) != (unsigned)w.instr + 1u)
            __nanosleep(20);
    }
}

struct UnitCtx {
    uint3 block;                  // the unit (blockIdx of the op's own launch)
    uint3 grid;                   // the op's grid (gridDim of its own launch)
    const PersistWait *persist;   // NULL: in the op's own kernel
    __device__ __forceinline__ void wait() const
    {
        if (persist)
            persist_wait(*persist);
        else
            pdl_wait();
    }
    __device__ __forceinline__ void trigger() const
    {
        if (!persist)
            pdl_trigger();
    }
};
__device__ __forceinline__ UnitCtx kernel_unit() { return UnitCtx{blockIdx, (uint3)gridDim, nullptr}; }

// Shared memory a unit gets from whoever runs it: the GEMVs' reduction buffer (UNIT_RED_FLOATS) and the
// launch's dynamic shared memory (the MXFP4 slots' input row, the router's scores past 512 experts). The
// persistent kernel gives every unit the same buffers instead of one static copy per op.
#define UNIT_RED_FLOATS (2 * 32 * 8 * 8)
struct UnitSmem {
    float *red;
    void *dyn;
};

// ---- a kernel's arguments as bytes (the persistent kernel's instructions carry them) ----
// The layout of a struct whose members are T... in order: each at its alignment.
template <typename... T> struct ArgPack {
    static constexpr size_t count = sizeof...(T);
    __host__ __device__ static constexpr size_t align_up(size_t o, size_t a) { return (o + a - 1) / a * a; }
    template <size_t I> __host__ __device__ static constexpr size_t offset()
    {
        constexpr size_t sizes[] = {sizeof(T)..., 0}, aligns[] = {alignof(T)..., 1};
        size_t o = 0;
        for (size_t k = 0; k <= sizeof...(T); k++) {
            o = align_up(o, aligns[k]);
            if (k == I)
                break;
            o += sizes[k];
        }
        return o;
    }
    __host__ __device__ static constexpr size_t size() { return offset<sizeof...(T)>(); }
    template <size_t I> using At = typename std::tuple_element<I, std::tuple<T...>>::type;
    template <size_t I> __device__ static const At<I> &get(const unsigned char *bytes)
    {
        return *reinterpret_cast<const At<I> *>(bytes + offset<I>());
    }
    template <size_t... I> static void pack_at(unsigned char *bytes, std::index_sequence<I...>, const T &...v)
    {
        (memcpy(bytes + offset<I>(), &v, sizeof(T)), ...);
    }
    static void pack(unsigned char *bytes, const T &...v) { pack_at(bytes, std::index_sequence_for<T...>{}, v...); }
};
template <typename F> struct KernelArgs;
template <typename... A> struct KernelArgs<void(A...)> {
    using Pack = ArgPack<typename std::decay<A>::type...>;
};

// While a step is recorded for the persistent kernel (cuda_persistent.cu), cuda_launch hands each launch
// to the recorder instead of the stream: the kernel, its grid, block, dynamic shared memory and arguments.
struct PersistRecorder;
PersistRecorder *cuda_persist_recorder();
void cuda_persist_label(const char *label);   // names the launches that follow (the step instruction's label)
int cuda_persist_record(PersistRecorder *r, const char *name, const void *kernel, dim3 grid, dim3 block, size_t smem,
                        const unsigned char *args, size_t args_size, mimo_error *err);
#define PERSIST_ARG_BYTES 512   // GemvParams with its qkv epilogue (GemvQkvOut) is the largest

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
    if (PersistRecorder *rec = cuda_persist_recorder()) {
        using Pack = typename KernelArgs<void(KArgs...)>::Pack;
        if constexpr (Pack::size() <= PERSIST_ARG_BYTES) {
            alignas(16) unsigned char bytes[PERSIST_ARG_BYTES] = {};
            Pack::pack(bytes, std::forward<Args>(args)...);
            return cuda_persist_record(rec, name, (const void *)kernel, grid, block, smem, bytes, Pack::size(), err);
        } else {   // (kernels with a tensor map: their takes-rules refuse while a step is recorded)
            (void)rec;
            return mimo_fail(err, "cuda: %s's arguments exceed what the persistent kernel records", name);
        }
    }
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
    int count;               // matrices of the set (1: a single matrix); bounds a tensor map over the set
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

// ---- MXFP4 codes in device memory ----
// A byte of MXFP4 codes (columns 2j, 2j+1) is [s1 m1 s0 m0] in files and host memory (FORMATS.md: the low nibble
// the even column, each nibble sign, then exponent and mantissa bits) and [s1 s0 m1 m0] on the device: bit 7 the
// odd code's sign, bit 6 the even code's, bits 5..3 the odd code's exponent and mantissa, 2..0 the even code's.
// With the signs apart from their codes, the tensor-core kernels build the half pairs of codes (i, i + 4) of a
// word in 2, 4, 2 and 3 instructions (e2m1_pair_scaled) instead of 4 each, and every other decoder costs what it
// did: a byte-local permutation, so a word still holds columns 8q..8q+7 of one scale block. Uploads convert
// (cuda_upload_matrix_into), the device generator writes this order (cuda_synth.cu).
__device__ __forceinline__ uint32_t e2m1_bytes_to_device(uint32_t w)
{
    return (w & 0x87878787u) | ((w & 0x08080808u) << 3) | ((w & 0x70707070u) >> 1);
}

// The two E2M1 codes of a device byte -> two halves whose values are the codes' values times 2^-14 (the
// code's exponent/mantissa bits placed in the half's exponent/mantissa); the caller folds the 2^14 into the
// block scale. Exact: every E2M1 value is a half.
__device__ __forceinline__ __half2 dev_e2m1x2_scaled(uint32_t byte)
{
    const uint32_t bits = ((byte & 0x47u) << 9) | ((byte & 0x80u) << 24) | ((byte & 0x38u) << 22);
    return *reinterpret_cast<const __half2 *>(&bits);
}

// E2M1 code e of a device word (byte e / 2, the odd or even code of it) -> the fp32 whose value is the code's
// value times 2^-126: sign to bit 31, the exponent and mantissa bits to bits 24..22 (codes 0 and 0.5 become
// fp32 subnormals, which the FMA takes exactly: the build does not flush denormals). A left shift puts the
// code's sign at bit 31, an arithmetic right shift copies it down past bit 25 and brings the other three bits
// to 24..22 (their top bit is 4 or 2 below the sign), and one mask keeps those four: a shift, a shift and a mask
// per code (the MXFP4 expert GEMVs are bound by this ALU work; results/kernels/README.md).
__device__ __forceinline__ float dev_e2m1_f32_scaled(uint32_t word, int e)
{
    const int odd = e & 1;
    const int32_t t = (int32_t)(word << (25 - 8 * (e >> 1) - odd));
    return __uint_as_float((uint32_t)(t >> (3 + 2 * odd)) & 0x81C00000u);
}

// Codes i and i + 4 of a device word (i < 4) as a half pair whose values are the codes' times 2^-14: signs to
// bits 15 / 31, exponent and mantissa bits to 11..9 / 27..25 (codes 0 and 0.5 become zero and a half
// subnormal, exactly). Codes 0 / 4 and 2 / 6 (the even codes of a byte pair) are one shift and one mask; 1 / 5
// need two shifts and 3 / 7 one, their signs and the other bits moving apart.
__device__ __forceinline__ uint32_t e2m1_pair_scaled(uint32_t w, int i)
{
    if (i == 0)
        return (w << 9) & 0x8E008E00u;
    if (i == 1)
        return ((w << 6) & 0x0E000E00u) | ((w << 8) & 0x80008000u);
    if (i == 2)
        return (w << 1) & 0x8E008E00u;
    return ((w >> 2) & 0x0E000E00u) | (w & 0x80008000u);
}

// The largest magnitude of four floats.
__device__ __forceinline__ float max_abs4(float4 v)
{
    return fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
}

// The tensor-core MXFP4 kernels' inputs (cuda_expert_bulk.cu, cuda_expert_down_bulk.cu) are scaled by 2^kx
// and split as hi + lo halves: kx puts a row's largest magnitude m in [2^14, 2^15), so that the halves keep
// ~22 bits of every input within 2^24 of it (0 for a zero or non-finite m).
__device__ __forceinline__ int half_range_exponent(float m)
{
    return m > 0.0f && m <= 3.0e38f ? max(-100, min(100, 14 - ilogbf(m))) : 0;
}

// A float pair as tensor-core operand halves (fp16 where F16, else bf16): hi = round(v), lo = round(v - hi),
// so that hi + lo keeps ~22 (fp16) / ~16 (bf16) bits of v.
template <bool F16> __device__ __forceinline__ void split_pair(float a, float b, uint32_t *hi, uint32_t *lo)
{
    if (F16) {
        const __half2 h = __floats2half2_rn(a, b);
        const float2 back = __half22float2(h);
        const __half2 l = __floats2half2_rn(a - back.x, b - back.y);
        *hi = *reinterpret_cast<const uint32_t *>(&h);
        *lo = *reinterpret_cast<const uint32_t *>(&l);
    } else {
        const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
        const float2 back = __bfloat1622float2(h);
        const __nv_bfloat162 l = __floats2bfloat162_rn(a - back.x, b - back.y);
        *hi = *reinterpret_cast<const uint32_t *>(&h);
        *lo = *reinterpret_cast<const uint32_t *>(&l);
    }
}

// Columns c..c+7 of an input row (a, b: c..c+3, c+4..c+7) times f as hi + lo halves, in the pairs (c, c+4),
// (c+1, c+5), (c+2, c+6), (c+3, c+7): e2m1_pair_scaled's order.
__device__ __forceinline__ void input_group_halves(float4 a, float4 b, float f, uint4 *hi, uint4 *lo)
{
    const float first[4] = {a.x * f, a.y * f, a.z * f, a.w * f}, second[4] = {b.x * f, b.y * f, b.z * f, b.w * f};
    uint32_t hp[4], lp[4];
#pragma unroll
    for (int k = 0; k < 4; k++)
        split_pair<true>(first[k], second[k], &hp[k], &lp[k]);
    *hi = make_uint4(hp[0], hp[1], hp[2], hp[3]);
    *lo = make_uint4(lp[0], lp[1], lp[2], lp[3]);
}

// Two e4m3 codes (the low 16 bits of w) as halves, the first in the low half.
__device__ __forceinline__ uint32_t fp8x2_to_half2_bits(uint32_t w)
{
    const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)w, __NV_E4M3);
    return (uint32_t)h.x | ((uint32_t)h.y << 16);
}

// The scale row of row r of an fp8 matrix: 128-row blocks, restarting at each scale group's first row where the
// rows come in groups (GpuMat::scale_group_rows).
__device__ __forceinline__ long long fp8_scale_row(const GpuMat &m, int r)
{
    return m.scale_group_rows > 0
               ? (long long)(r / m.scale_group_rows) * m.scale_group_srows + (r % m.scale_group_rows) / 128
               : r / 128;
}

// Element (r, c) of a matrix (slow path: embedding rows, tests).
__device__ __forceinline__ float dev_mat_get(const GpuMat &m, const uint8_t *base, const uint8_t *sbase, int r, int c)
{
    size_t row = (size_t)r * m.ld;
    switch (m.fmt) {
    case MIMO_WFMT_F32: return ((const float *)base)[row + c];
    case MIMO_WFMT_BF16: return dev_bf16_to_f32(((const uint16_t *)base)[row + c]);
    case MIMO_WFMT_FP8: {
        float s = ((const float *)sbase)[fp8_scale_row(m, r) * m.scale_ld + c / 128];
        return dev_fp8_to_f32(base[row + c]) * s;
    }
    default: {
        const __half2 h = dev_e2m1x2_scaled(base[(row + c) / 2]);
        float v = __half2float((c & 1) ? __high2half(h) : __low2half(h)) * 16384.0f;
        return v * dev_e8m0_to_f32(((const uint8_t *)sbase)[(size_t)r * (m.ld / 32) + c / 32]);
    }
    }
}

// SwiGLU's activation.
__device__ __forceinline__ float silu_f(float g) { return g / (1.0f + expf(-g)); }

// D = A B on the tensor cores (fp32 results, halves): one m16n8k16 MMA whose accumulators start at zero.
__device__ __forceinline__ void mma_16816_first(float *d, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                                uint32_t b1)
{
    const float z = 0.0f;
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%10,%10,%10,%10};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "f"(z));
}

// D = A B + D on the tensor cores: one m16n8k16 MMA with fp32 accumulators, halves (F16) or bf16 operands.
template <bool F16>
__device__ __forceinline__ void mma_16816(float *c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                          uint32_t b1)
{
    if (F16)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// One 128-column chunk (4 scale blocks) of M MXFP4 tiles of 16 rows on the tensor cores, the layout of
// expert_glu_bulk_kernel and expert_down_bulk_kernel: w[m][k][j] holds lane (g, t)'s 8 codes of block j
// (columns 32 j + 8 t ..) of tile m's row g + 8 k; xv the staged input's 8-column group 4 jb + t of the chunk,
// hi halves for g even, lo for g odd (jb = g / 2: the block whose B column 2 jb or 2 jb + 1 the lane fills).
// MMA (j, h) sums block j into B's columns 2 j (hi) and 2 j + 1 (lo), B zero elsewhere; two accumulator chains
// a tile (blocks even / odd: shorter dependency chains; a lane's column is non-zero in one of them only, so
// their sum is that one's value exactly). Returns lane (g, t)'s C of each tile: block t's hi and lo sums of
// row g (c[m][0], c[m][1]) and of row g + 8 (c[m][2], c[m][3]).
template <int M>
__device__ __forceinline__ void e2m1_chunk_mma(const uint32_t (&w)[M][2][4], uint4 xv, int jb, float (&c)[M][4])
{
    float c2[2][M][4] = {};
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const uint32_t b0 = jb == j ? (h ? xv.z : xv.x) : 0u, b1 = jb == j ? (h ? xv.w : xv.y) : 0u;
#pragma unroll
            for (int m = 0; m < M; m++)
                mma_16816<true>(c2[j % 2][m], e2m1_pair_scaled(w[m][0][j], 2 * h), e2m1_pair_scaled(w[m][1][j], 2 * h),
                                e2m1_pair_scaled(w[m][0][j], 2 * h + 1), e2m1_pair_scaled(w[m][1][j], 2 * h + 1), b0,
                                b1);
        }
#pragma unroll
    for (int m = 0; m < M; m++)
#pragma unroll
        for (int i = 0; i < 4; i++)
            c[m][i] = c2[0][m][i] + c2[1][m][i];
}

#endif
