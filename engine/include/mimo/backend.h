/* For backend implementers only: the table a backend fills. engine/api dispatches to it. */
#ifndef MIMO_BACKEND_H
#define MIMO_BACKEND_H

#include "mimo/engine.h"

typedef struct mimo_backend_ops {
    const char *name;
    int  (*forward)(void *impl, const int32_t *tokens, int n, mimo_forward_out *out, mimo_error *err);
    int  (*truncate)(void *impl, int length, mimo_error *err);
    int  (*length)(const void *impl);
    int  (*sync)(void *impl, mimo_error *err);
    void (*destroy)(void *impl);
    int  (*attach_drafter)(void *impl, const mimo_drafter_weights *d, mimo_error *err);
    int  (*drafter_append)(void *impl, const float *target_hidden, int n, mimo_error *err);
    int  (*drafter_truncate)(void *impl, int n_context, mimo_error *err);
    int  (*drafter_length)(const void *impl);
    int  (*draft)(void *impl, const int32_t *block, int B, mimo_forward_out *out, mimo_error *err);
    /* Optional (NULL: the decode loop verifies on the host): a whole round on the device. */
    bool (*has_device_round)(const void *impl, const mimo_sampling_params *p);
    int  (*device_round)(void *impl, const mimo_round_request *rq, mimo_round_result *rs, mimo_error *err);
    /* Optional (NULL: no persistent steps, nothing kept): the persistent kernel's phase stamps. */
    int  (*set_phase_stamps)(void *impl, bool on, mimo_error *err);
    int  (*phase_steps)(const void *impl, long *dropped);
    const mimo_phase *(*phase_step)(const void *impl, int s, int *n);
} mimo_backend_ops;

/* Each backend provides these two constructors. */
int mimo_cpu_backend_create(const mimo_weights *w, const mimo_engine_options *o,
                            const mimo_backend_ops **ops, void **impl, mimo_error *err);
int mimo_cuda_backend_create(const mimo_weights *w, const mimo_engine_options *o,
                             const mimo_backend_ops **ops, void **impl, mimo_error *err);
int mimo_cuda_backend_create_synthetic(const mimo_config *cfg, uint64_t seed, const mimo_engine_options *o,
                                       const mimo_backend_ops **ops, void **impl, mimo_error *err);
bool mimo_cuda_backend_available(char *reason, size_t reason_size);

#endif
