/* The CUPTI Activity API collector behind `run --trace` (HARNESS.md "CUPTI"). CONCURRENT_KERNEL (never
 * KERNEL, which serialises kernels), MEMCPY, MEMSET and SYNCHRONIZATION records go into buffers of a
 * few MB that CUPTI hands back full; stop forces a flush of all of them. Built only with MIMO_HAVE_CUDA. */
#include "trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MIMO_HAVE_CUDA

#include <cuda_runtime_api.h>
#include <cupti.h>
#include <pthread.h>

/* The C++ runtime's demangler (CUDA builds link libstdc++): "_Z11gemv_kernelILi2E..." reads better as
 * "void gemv_kernel<2, ...>(GemvParams)". Categories match either form. */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *length, int *status);

#define TRACE_BUFFER_BYTES (4u << 20)
#define TRACE_BUFFER_ALIGN 8

struct mimo_trace {
    mimo_trace_records records;
    bool stopped;
    bool record_error;          /* a record could not be stored (reported at stop) */
    mimo_error error;
    /* contextId -> deviceId, learnt from kernel/memcpy records (sync records carry only the context) */
    uint32_t ctx_ids[64], ctx_devices[64];
    int n_ctx;
};

/* CUPTI's buffer callbacks carry no user pointer: one tracer per process. */
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static mimo_trace *active_trace;

static const char *cupti_text(CUptiResult r)
{
    const char *s = NULL;
    if (cuptiGetResultString(r, &s) != CUPTI_SUCCESS || !s)
        return "unknown CUPTI error";
    return s;
}

#define CUPTI_CHECK(call, err)                                                                          \
    do {                                                                                                \
        CUptiResult cupti_rc_ = (call);                                                                 \
        if (cupti_rc_ != CUPTI_SUCCESS)                                                                 \
            return mimo_fail((err), "CUPTI: %s failed: %s", #call, cupti_text(cupti_rc_));              \
    } while (0)

static void CUPTIAPI buffer_requested(uint8_t **buffer, size_t *size, size_t *max_records)
{
    *buffer = aligned_alloc(TRACE_BUFFER_ALIGN, TRACE_BUFFER_BYTES);
    *size = *buffer ? TRACE_BUFFER_BYTES : 0;   /* size 0: CUPTI drops records (and counts them) */
    *max_records = 0;                           /* as many as fit */
}

static void remember_context(mimo_trace *t, uint32_t ctx, uint32_t device)
{
    for (int i = 0; i < t->n_ctx; i++)
        if (t->ctx_ids[i] == ctx)
            return;
    if (t->n_ctx < 64) {
        t->ctx_ids[t->n_ctx] = ctx;
        t->ctx_devices[t->n_ctx++] = device;
    }
}

static uint32_t device_of_context(const mimo_trace *t, uint32_t ctx)
{
    for (int i = 0; i < t->n_ctx; i++)
        if (t->ctx_ids[i] == ctx)
            return t->ctx_devices[i];
    return 0;
}

static const char *memcpy_kind_name(uint8_t kind)
{
    switch (kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD: return "memcpy HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH: return "memcpy DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD: return "memcpy DtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH: return "memcpy HtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP: return "memcpy PtoP";
    default: return "memcpy (array)";
    }
}

static const char *sync_kind_name(CUpti_ActivitySynchronizationType type)
{
    switch (type) {
    case CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_EVENT_SYNCHRONIZE: return "cudaEventSynchronize";
    case CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_WAIT_EVENT: return "cudaStreamWaitEvent";
    case CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE: return "cudaStreamSynchronize";
    case CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_CONTEXT_SYNCHRONIZE: return "cudaDeviceSynchronize";
    default: return "synchronization";
    }
}

static void store(mimo_trace *t, mimo_trace_kind kind, const char *name, uint64_t start, uint64_t end,
                  uint32_t device, uint32_t stream, uint64_t bytes)
{
    mimo_error err;
    if (mimo_trace_records_add(&t->records, kind, name, start, end, device, stream, bytes, &err) != 0 &&
        !t->record_error) {
        t->record_error = true;
        t->error = err;
    }
}

static void take_record(mimo_trace *t, const CUpti_Activity *rec)
{
    switch (rec->kind) {
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
        const CUpti_ActivityKernel10 *k = (const CUpti_ActivityKernel10 *)rec;
        remember_context(t, k->contextId, k->deviceId);
        size_t before = t->records.n;
        int status = -1;
        char *demangled = k->name && !strncmp(k->name, "_Z", 2) ? __cxa_demangle(k->name, NULL, NULL, &status) : NULL;
        const char *name = status == 0 && demangled ? demangled : k->name ? k->name : "(unnamed kernel)";
        store(t, MIMO_TRACE_KERNEL, name, k->start, k->end, k->deviceId, k->streamId, 0);
        free(demangled);
        if (t->records.n > before) {
            mimo_trace_record *r = &t->records.records[t->records.n - 1];
            r->correlation = k->correlationId;
            r->grid[0] = k->gridX, r->grid[1] = k->gridY, r->grid[2] = k->gridZ;
            r->block[0] = k->blockX, r->block[1] = k->blockY, r->block[2] = k->blockZ;
        }
        break;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
        const CUpti_ActivityMemcpy6 *m = (const CUpti_ActivityMemcpy6 *)rec;
        remember_context(t, m->contextId, m->deviceId);
        store(t, MIMO_TRACE_MEMCPY, memcpy_kind_name(m->copyKind), m->start, m->end, m->deviceId, m->streamId,
              m->bytes);
        break;
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
        const CUpti_ActivityMemset4 *m = (const CUpti_ActivityMemset4 *)rec;
        remember_context(t, m->contextId, m->deviceId);
        store(t, MIMO_TRACE_MEMSET, "memset", m->start, m->end, m->deviceId, m->streamId, m->bytes);
        break;
    }
    case CUPTI_ACTIVITY_KIND_SYNCHRONIZATION: {
        const CUpti_ActivitySynchronization2 *s = (const CUpti_ActivitySynchronization2 *)rec;
        store(t, MIMO_TRACE_SYNC, sync_kind_name(s->type), s->start, s->end, device_of_context(t, s->contextId),
              s->streamId == CUPTI_SYNCHRONIZATION_INVALID_VALUE ? UINT32_MAX : s->streamId, 0);
        break;
    }
    default:
        break;
    }
}

static void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size, size_t valid)
{
    pthread_mutex_lock(&trace_lock);
    mimo_trace *t = active_trace;
    if (t && valid > 0) {
        CUpti_Activity *rec = NULL;
        while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS)
            take_record(t, rec);
        size_t dropped = 0;
        if (cuptiActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS)
            t->records.dropped += dropped;
    }
    pthread_mutex_unlock(&trace_lock);
    free(buffer);
}

static const CUpti_ActivityKind traced_kinds[] = {
    CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY, CUPTI_ACTIVITY_KIND_MEMSET,
    CUPTI_ACTIVITY_KIND_SYNCHRONIZATION};
#define N_TRACED_KINDS (sizeof traced_kinds / sizeof traced_kinds[0])

bool mimo_trace_available(char *why, size_t why_size)
{
    int count = 0;
    cudaError_t rc = cudaGetDeviceCount(&count);
    if (rc != cudaSuccess || count == 0) {
        snprintf(why, why_size, "no CUDA device (%s)", rc != cudaSuccess ? cudaGetErrorString(rc) : "count is 0");
        return false;
    }
    return true;
}

int mimo_trace_start(mimo_trace **out, mimo_error *err)
{
    *out = NULL;
    pthread_mutex_lock(&trace_lock);
    bool busy = active_trace != NULL;
    pthread_mutex_unlock(&trace_lock);
    if (busy)
        return mimo_fail(err, "CUPTI: a trace is already running in this process");
    mimo_trace *t = mimo_xcalloc(1, sizeof *t);
    uint64_t now = 0;
    CUptiResult rc = cuptiGetTimestamp(&now);
    if (rc != CUPTI_SUCCESS) {
        free(t);
        return mimo_fail(err, "CUPTI: cuptiGetTimestamp failed: %s", cupti_text(rc));
    }
    mimo_trace_records_init(&t->records, now);
    pthread_mutex_lock(&trace_lock);
    active_trace = t;
    pthread_mutex_unlock(&trace_lock);
    rc = cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed);
    size_t enabled = 0;
    for (; rc == CUPTI_SUCCESS && enabled < N_TRACED_KINDS; enabled++) {
        rc = cuptiActivityEnable(traced_kinds[enabled]);
        if (rc != CUPTI_SUCCESS)
            break;
    }
    if (rc != CUPTI_SUCCESS) {
        for (size_t k = 0; k < enabled; k++)
            cuptiActivityDisable(traced_kinds[k]);
        pthread_mutex_lock(&trace_lock);
        active_trace = NULL;
        pthread_mutex_unlock(&trace_lock);
        mimo_trace_records_free(&t->records);
        free(t);
        return mimo_fail(err, "CUPTI: enabling activity tracing failed: %s", cupti_text(rc));
    }
    *out = t;
    return 0;
}

int mimo_trace_stop(mimo_trace *t, mimo_error *err)
{
    if (!t || t->stopped)
        return 0;
    t->stopped = true;
    /* Records of work still running are only delivered once it completes. */
    cudaError_t sync_rc = cudaDeviceSynchronize();
    CUptiResult flush_rc = cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    for (size_t k = 0; k < N_TRACED_KINDS; k++)
        cuptiActivityDisable(traced_kinds[k]);
    size_t dropped = 0;
    if (cuptiActivityGetNumDroppedRecords(NULL, 0, &dropped) == CUPTI_SUCCESS)
        t->records.dropped += dropped;
    pthread_mutex_lock(&trace_lock);
    active_trace = NULL;
    pthread_mutex_unlock(&trace_lock);
    if (sync_rc != cudaSuccess)
        return mimo_fail(err, "CUDA: cudaDeviceSynchronize before the trace flush failed: %s",
                         cudaGetErrorString(sync_rc));
    if (flush_rc != CUPTI_SUCCESS)
        return mimo_fail(err, "CUPTI: cuptiActivityFlushAll failed: %s", cupti_text(flush_rc));
    if (t->record_error)
        return mimo_fail(err, "CUPTI: a record was rejected: %s", t->error.msg);
    return 0;
}

int mimo_trace_append(mimo_trace *t, mimo_trace_kind kind, const char *name, uint64_t start_ns, uint64_t end_ns,
                      uint32_t device, uint32_t stream, mimo_error *err)
{
    if (!t)
        return mimo_fail(err, "trace: no tracer to append '%s' to", name ? name : "?");
    pthread_mutex_lock(&trace_lock);   /* CUPTI may be delivering a buffer on its own thread */
    int rc = mimo_trace_records_add(&t->records, kind, name, start_ns, end_ns, device, stream, 0, err);
    pthread_mutex_unlock(&trace_lock);
    return rc;
}

const mimo_trace_records *mimo_trace_get_records(const mimo_trace *t)
{
    return &t->records;
}

void mimo_trace_free(mimo_trace *t)
{
    if (!t)
        return;
    if (!t->stopped)
        mimo_trace_stop(t, NULL);
    mimo_trace_records_free(&t->records);
    free(t);
}

#else /* !MIMO_HAVE_CUDA */

struct mimo_trace {
    mimo_trace_records records;
};

bool mimo_trace_available(char *why, size_t why_size)
{
    snprintf(why, why_size, "this build has no CUDA (configured without nvcc or with -DMIMO_CUDA=OFF): "
                            "CUPTI tracing is unavailable");
    return false;
}

int mimo_trace_start(mimo_trace **out, mimo_error *err)
{
    *out = NULL;
    char why[256];
    mimo_trace_available(why, sizeof why);
    return mimo_fail(err, "%s", why);
}

int mimo_trace_stop(mimo_trace *t, mimo_error *err)
{
    return 0;
}

int mimo_trace_append(mimo_trace *t, mimo_trace_kind kind, const char *name, uint64_t start_ns, uint64_t end_ns,
                      uint32_t device, uint32_t stream, mimo_error *err)
{
    char why[256];
    mimo_trace_available(why, sizeof why);
    return mimo_fail(err, "%s", why);
}

const mimo_trace_records *mimo_trace_get_records(const mimo_trace *t)
{
    return t ? &t->records : NULL;
}

void mimo_trace_free(mimo_trace *t)
{
    free(t);
}

#endif
