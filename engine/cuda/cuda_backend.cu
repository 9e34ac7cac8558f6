// Placeholder until the CUDA backend lands: it reports itself unavailable.
#include <cstdio>
extern "C" {
#include "mimo/backend.h"
}

extern "C" bool mimo_cuda_backend_available(char *reason, size_t reason_size)
{
    if (reason)
        snprintf(reason, reason_size, "the CUDA backend is not built yet");
    return false;
}

extern "C" int mimo_cuda_backend_create(const mimo_weights *, const mimo_engine_options *,
                                        const mimo_backend_ops **, void **, mimo_error *err)
{
    return mimo_fail(err, "cuda backend: not built yet");
}

extern "C" int mimo_cuda_backend_create_synthetic(const mimo_config *, uint64_t, const mimo_engine_options *,
                                                  const mimo_backend_ops **, void **, mimo_error *err)
{
    return mimo_fail(err, "cuda backend: not built yet");
}
