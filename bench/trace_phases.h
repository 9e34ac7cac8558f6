/* A persistent kernel's phases into a CUPTI trace (trace_phases.c). */
#ifndef MIMO_BENCH_TRACE_PHASES_H
#define MIMO_BENCH_TRACE_PHASES_H

#include "mimo/engine.h"
#include "trace.h"

/* Appends the phases of the steps e kept (mimo_engine_set_phase_stamps) to the stopped tracer t as
 * MIMO_TRACE_PHASE records, step k onto the k-th record of the kernel whose name contains kernel_name;
 * returns what it did as JSON (new reference: kernel records, steps stamped / not kept / added / unmatched,
 * phase records, an error if an append failed). */
json_t *mimo_trace_add_engine_phases(mimo_trace *t, const mimo_engine *e, const char *kernel_name);

#endif
