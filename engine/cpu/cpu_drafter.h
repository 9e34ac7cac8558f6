/* The DFlash drafter's forward pass on the CPU (internal to the cpu backend, which wires these into
 * its mimo_backend_ops). Uses the shared CPU primitives of cpu_ops.h. */
#ifndef MIMO_CPU_DRAFTER_H
#define MIMO_CPU_DRAFTER_H

#include "mimo/engine.h"

typedef struct mimo_cpu_drafter mimo_cpu_drafter;

/* target supplies embed_tokens and lm_head. */
int  mimo_cpu_drafter_create(const mimo_weights *target, const mimo_drafter_weights *d, int max_context,
                             mimo_cpu_drafter **out, mimo_error *err);
void mimo_cpu_drafter_destroy(mimo_cpu_drafter *d);
int  mimo_cpu_drafter_append(mimo_cpu_drafter *d, const float *target_hidden, int n, mimo_error *err);
int  mimo_cpu_drafter_truncate(mimo_cpu_drafter *d, int n_context, mimo_error *err);
int  mimo_cpu_drafter_length(const mimo_cpu_drafter *d);
int  mimo_cpu_drafter_draft(mimo_cpu_drafter *d, const int32_t *block, int B, mimo_forward_out *out, mimo_error *err);

#endif
