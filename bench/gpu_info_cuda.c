/* GPU facts for the environment block, through the CUDA runtime C API (every call checked).
 * NCCL and NVML are loaded with dlopen when present, so the harness neither links nor requires
 * them: a missing library is recorded as "unknown", never a failure. */
#include "gpu_info.h"

#include <stdio.h>
#include <string.h>

#ifdef MIMO_HAVE_CUDA

#include <cuda_runtime_api.h>
#include <cupti.h>
#include <dlfcn.h>
#include "mimo/hash.h"

#define CUDA_OK(call, why, n)                                                                   \
    do {                                                                                        \
        cudaError_t e_ = (call);                                                                \
        if (e_ != cudaSuccess) {                                                                \
            snprintf(why, n, "%s: %s", #call, cudaGetErrorString(e_));                          \
            return false;                                                                       \
        }                                                                                       \
    } while (0)

int mimo_gpu_count(char *why, size_t n)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        snprintf(why, n, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
        return 0;
    }
    if (count == 0)
        snprintf(why, n, "no CUDA device visible");
    return count;
}

static int nccl_version(void)
{
    void *h = dlopen("libnccl.so.2", RTLD_LAZY | RTLD_LOCAL);
    if (!h)
        return 0;
    int version = 0;
    int (*get_version)(int *) = (int (*)(int *))dlsym(h, "ncclGetVersion");
    if (!get_version || get_version(&version) != 0)
        version = 0;
    dlclose(h);
    return version;
}

bool mimo_gpu_query(int device, mimo_gpu_info *info, char *why, size_t n)
{
    memset(info, 0, sizeof *info);
    struct cudaDeviceProp prop;
    CUDA_OK(cudaGetDeviceProperties(&prop, device), why, n);
    snprintf(info->name, sizeof info->name, "%s", prop.name);
    char uuid_hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(uuid_hex + 2 * i, 3, "%02x", (unsigned char)prop.uuid.bytes[i]);
    snprintf(info->uuid_hash, sizeof info->uuid_hash, "%016llx", (unsigned long long)mimo_fnv1a64(uuid_hex));
    info->sm_count = prop.multiProcessorCount;
    info->memory_bytes = prop.totalGlobalMem;
    info->compute_major = prop.major;
    info->compute_minor = prop.minor;
    CUDA_OK(cudaDriverGetVersion(&info->driver_version), why, n);
    CUDA_OK(cudaRuntimeGetVersion(&info->runtime_version), why, n);
    CUDA_OK(cudaDeviceGetAttribute(&info->sm_clock_khz, cudaDevAttrClockRate, device), why, n);
    CUDA_OK(cudaDeviceGetAttribute(&info->memory_clock_khz, cudaDevAttrMemoryClockRate, device), why, n);
    CUDA_OK(cudaDeviceGetAttribute(&info->memory_bus_width_bits, cudaDevAttrGlobalMemoryBusWidth, device), why, n);
    info->nccl_version = nccl_version();
    uint32_t cupti = 0;
    if (cuptiGetVersion(&cupti) == CUPTI_SUCCESS)
        info->cupti_version = (int)cupti;
    return true;
}

/* NVML through dlopen: only the three entry points needed for current clocks. */
typedef int (*nvml_init_fn)(void);
typedef int (*nvml_handle_by_pci_fn)(const char *, void **);
typedef int (*nvml_clock_fn)(void *, int, unsigned int *);

bool mimo_gpu_clocks(int device, int *sm_mhz, int *mem_mhz, char *why, size_t n)
{
    char bus_id[64];
    CUDA_OK(cudaDeviceGetPCIBusId(bus_id, (int)sizeof bus_id, device), why, n);
    void *h = dlopen("libnvidia-ml.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!h) {
        snprintf(why, n, "libnvidia-ml.so.1 not loadable: current clocks unknown");
        return false;
    }
    nvml_init_fn init = (nvml_init_fn)dlsym(h, "nvmlInit_v2");
    nvml_handle_by_pci_fn by_pci = (nvml_handle_by_pci_fn)dlsym(h, "nvmlDeviceGetHandleByPciBusId_v2");
    nvml_clock_fn clock = (nvml_clock_fn)dlsym(h, "nvmlDeviceGetClockInfo");
    void *dev = NULL;
    unsigned int sm = 0, mem = 0;
    bool ok = init && by_pci && clock && init() == 0 && by_pci(bus_id, &dev) == 0 &&
              clock(dev, 1 /* NVML_CLOCK_SM */, &sm) == 0 && clock(dev, 2 /* NVML_CLOCK_MEM */, &mem) == 0;
    dlclose(h);  /* NVML stays initialised; nvmlShutdown is optional */
    if (!ok) {
        snprintf(why, n, "NVML clock query failed for %s", bus_id);
        return false;
    }
    *sm_mhz = (int)sm;
    *mem_mhz = (int)mem;
    return true;
}

#else /* !MIMO_HAVE_CUDA */

static const char no_cuda[] = "this build has no CUDA backend";

int mimo_gpu_count(char *why, size_t n)
{
    snprintf(why, n, "%s", no_cuda);
    return 0;
}

bool mimo_gpu_query(int device, mimo_gpu_info *info, char *why, size_t n)
{
    memset(info, 0, sizeof *info);
    snprintf(why, n, "%s", no_cuda);
    return false;
}

bool mimo_gpu_clocks(int device, int *sm_mhz, int *mem_mhz, char *why, size_t n)
{
    snprintf(why, n, "%s", no_cuda);
    return false;
}

#endif
