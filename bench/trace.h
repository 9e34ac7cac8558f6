/* GPU activity tracing for `run --trace` (HARNESS.md "CUPTI"): kernel, memcpy, memset and
 * synchronization records from the CUPTI Activity API, summarised per kernel and per category for
 * the results JSON ("kernels"), and exported as a Chrome trace JSON that opens in Perfetto.
 *
 * The record store, the categoriser, the summary and the Chrome exporter are plain C and are built
 * everywhere (tests feed them synthetic records); only the CUPTI collector needs MIMO_HAVE_CUDA. */
#ifndef MIMO_BENCH_TRACE_H
#define MIMO_BENCH_TRACE_H

#include "mimo/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    MIMO_TRACE_KERNEL,
    MIMO_TRACE_MEMCPY,
    MIMO_TRACE_MEMSET,
    MIMO_TRACE_SYNC,
    MIMO_TRACE_PHASE     /* a persistent kernel's own per-phase timestamps (globaltimer, ns) */
} mimo_trace_kind;

typedef struct {
    mimo_trace_kind kind;
    uint64_t start_ns, end_ns;   /* absolute timestamps on the CUPTI clock (ns) */
    uint32_t device, stream;
    uint32_t correlation;
    uint64_t bytes;              /* memcpy / memset */
    char    *name;               /* kernel name as CUPTI gives it (may be mangled); owned */
    int32_t  grid[3], block[3];  /* kernels */
} mimo_trace_record;

typedef struct {
    mimo_trace_record *records;
    size_t   n, cap;
    uint64_t origin_ns;          /* the run's start: trace times are relative to it */
    uint64_t dropped;            /* records CUPTI reported as dropped */
} mimo_trace_records;

/* Categories of the step-time breakdown, in report order. */
#define MIMO_TRACE_N_CATEGORIES 9
extern const char *const mimo_trace_category_names[MIMO_TRACE_N_CATEGORIES];
/* "attention", "moe", "dense-gemv", "norm/rope", "sampling/verify", "draft", "comm", "memcpy", "other". */
const char *mimo_trace_category(mimo_trace_kind kind, const char *name);

void mimo_trace_records_init(mimo_trace_records *r, uint64_t origin_ns);
/* Copies name. Records ending before they start are rejected (-1). */
int  mimo_trace_records_add(mimo_trace_records *r, mimo_trace_kind kind, const char *name, uint64_t start_ns,
                            uint64_t end_ns, uint32_t device, uint32_t stream, uint64_t bytes, mimo_error *err);
void mimo_trace_records_free(mimo_trace_records *r);

/* The results JSON "kernels" object: {"source", "records", "dropped_records", "rounds", "gpu_time_us",
 * "categories": {name: {"count","total_us","mean_us","share"}}, "kernels": [{"name","category","count",
 * "total_us","mean_us","share", "per_round_us"}...] (by total time, descending)}. share = fraction of the
 * summed GPU busy time of all records; rounds (decode rounds covered by the trace, <= 0 when unknown)
 * gives per_round_us. MIMO_TRACE_PHASE records are summed apart ("persistent_phases_us" per category): they
 * lie inside their kernel's own record. New reference. */
json_t *mimo_trace_summary(const mimo_trace_records *r, long rounds);

/* Chrome trace JSON (traceEvents; ph "X"; ts/dur in µs relative to origin_ns; pid = device, tid = stream;
 * process/thread name metadata), written atomically. */
int mimo_trace_write_chrome(const mimo_trace_records *r, const char *path, mimo_error *err);

/* ---- a persistent kernel's phases (HARNESS.md "CUPTI") ----
 * The engine stamps each persistent step on the device's clock (mimo_engine_set_phase_stamps); the harness
 * pairs step k with the k-th record of the persistent kernel and shifts the step's phases onto the trace's
 * clock by that record's start. */
typedef struct {
    uint64_t start_ns, end_ns;
    uint32_t device, stream;
} mimo_trace_span;
/* The kernel records whose name contains name, by start time, into *out (malloc'd; NULL when none); their count. */
size_t mimo_trace_kernel_spans(const mimo_trace_records *r, const char *name, mimo_trace_span **out);
/* Whether a step stamped from step_start to step_end (its own clock) is the kernel record span: their lengths
 * agree within 10 % + 20 us (the stamps lie inside the kernel: its launch and the first block's start, the
 * last instruction's end and the kernel's exit are not stamped). *shift: what moves the step's stamps onto
 * the trace's clock (span start - step start). */
bool mimo_trace_span_matches(const mimo_trace_span *span, uint64_t step_start, uint64_t step_end, int64_t *shift);

/* ---- CUPTI collector (MIMO_HAVE_CUDA builds) ---- */
typedef struct mimo_trace mimo_trace;

/* true when this build can trace; otherwise false and why (one line) in why. */
bool mimo_trace_available(char *why, size_t why_size);
/* Enables CONCURRENT_KERNEL, MEMCPY, MEMSET, SYNCHRONIZATION activity with buffers of a few MB; the run's
 * start (trace origin) is now. One tracer at a time per process. */
int  mimo_trace_start(mimo_trace **out, mimo_error *err);
/* Forces a flush of every buffer, disables the activity kinds; records become readable. */
int  mimo_trace_stop(mimo_trace *t, mimo_error *err);
/* Adds a record to a running or stopped tracer (thread-safe): a persistent kernel is one CUPTI record,
 * so it writes its own per-phase device timestamps (%globaltimer, ns) and the harness appends them as
 * MIMO_TRACE_PHASE records. Times must be on the CUPTI clock: shift globaltimer values by (the persistent
 * kernel's CUPTI start - its first globaltimer stamp). -1 on builds without CUDA or a bad record. */
int  mimo_trace_append(mimo_trace *t, mimo_trace_kind kind, const char *name, uint64_t start_ns, uint64_t end_ns,
                       uint32_t device, uint32_t stream, mimo_error *err);
/* The records gathered (valid after stop). */
const mimo_trace_records *mimo_trace_get_records(const mimo_trace *t);
void mimo_trace_free(mimo_trace *t);

#endif
