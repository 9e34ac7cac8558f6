/* CUPTI tracing on a real GPU: a cudaMemset / cudaMemcpy / synchronize sequence must come back as
 * memset, memcpy (both directions, right sizes) and synchronization records, summarised and exported as
 * a valid Chrome trace. Skips without a CUDA build or device. */
#include <criterion/criterion.h>

#include "support.h"

#ifdef MIMO_HAVE_CUDA

#include "trace.h"

#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

#define CUDA_OK(call)                                                                                   \
    do {                                                                                                \
        cudaError_t rc_ = (call);                                                                       \
        cr_assert_eq(rc_, cudaSuccess, "%s: %s", #call, cudaGetErrorString(rc_));                       \
    } while (0)

static void need_gpu(void)
{
    int count = 0;
    cudaError_t rc = cudaGetDeviceCount(&count);
    if (rc != cudaSuccess || count == 0)
        cr_skip_test("no CUDA device: %s", rc != cudaSuccess ? cudaGetErrorString(rc) : "device count is 0");
}

Test(trace_gpu, memset_memcpy_sync_are_recorded, .timeout = 120)
{
    need_gpu();
    char why[256];
    cr_assert(mimo_trace_available(why, sizeof why), "%s", why);
    CUDA_OK(cudaFree(0));   /* create the context before tracing starts */
    const size_t bytes = 8u << 20;
    void *dev = NULL;
    unsigned char *host = malloc(bytes);
    cr_assert_not_null(host);
    memset(host, 7, bytes);
    CUDA_OK(cudaMalloc(&dev, bytes));

    mimo_trace *t = NULL;
    mimo_error err;
    cr_assert_eq(mimo_trace_start(&t, &err), 0, "%s", err.msg);
    mimo_trace *second = NULL;
    cr_expect_eq(mimo_trace_start(&second, &err), -1, "one tracer at a time");
    CUDA_OK(cudaMemset(dev, 0, bytes));
    CUDA_OK(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(host, dev, bytes / 2, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaDeviceSynchronize());
    cr_assert_eq(mimo_trace_stop(t, &err), 0, "%s", err.msg);

    const mimo_trace_records *r = mimo_trace_get_records(t);
    int memsets = 0, htod = 0, dtoh = 0, syncs = 0;
    for (size_t i = 0; i < r->n; i++) {
        const mimo_trace_record *rec = &r->records[i];
        cr_expect(rec->end_ns >= rec->start_ns);
        if (rec->kind == MIMO_TRACE_MEMSET && rec->bytes == bytes)
            memsets++;
        if (rec->kind == MIMO_TRACE_MEMCPY && !strcmp(rec->name, "memcpy HtoD") && rec->bytes == bytes)
            htod++;
        if (rec->kind == MIMO_TRACE_MEMCPY && !strcmp(rec->name, "memcpy DtoH") && rec->bytes == bytes / 2)
            dtoh++;
        syncs += rec->kind == MIMO_TRACE_SYNC;
    }
    cr_expect_eq(memsets, 1, "memset records: %d", memsets);
    cr_expect_eq(htod, 1, "HtoD records: %d", htod);
    cr_expect_eq(dtoh, 1, "DtoH records: %d", dtoh);
    cr_expect_geq(syncs, 1, "the device synchronize must be recorded");
    cr_expect_eq(r->dropped, 0);

    json_t *summary = mimo_trace_summary(r, 1);
    json_t *memcpy_cat = json_object_get(json_object_get(summary, "categories"), "memcpy");
    cr_expect_eq(json_integer_value(json_object_get(memcpy_cat, "count")), 3);
    cr_expect_gt(json_real_value(json_object_get(memcpy_cat, "total_us")), 0.0);
    json_decref(summary);

    char *dir = mimo_test_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/trace.json", dir);
    cr_assert_eq(mimo_trace_write_chrome(r, path, &err), 0, "%s", err.msg);
    json_t *root = json_load_file(path, 0, NULL);
    cr_assert_not_null(root, "the Chrome trace must be valid JSON");
    size_t i;
    json_t *e;
    int n_x = 0;
    json_array_foreach(json_object_get(root, "traceEvents"), i, e) {
        if (strcmp(json_string_value(json_object_get(e, "ph")), "X"))
            continue;
        n_x++;
        cr_expect_geq(json_number_value(json_object_get(e, "ts")), 0.0);
    }
    cr_expect_eq((size_t)n_x, r->n);
    json_decref(root);
    mimo_test_rmtree(dir);
    free(dir);

    mimo_trace_free(t);
    CUDA_OK(cudaFree(dev));
    free(host);
}

#else

Test(trace_gpu, memset_memcpy_sync_are_recorded)
{
    cr_skip_test("built without CUDA: CUPTI tracing is not compiled in");
}

#endif
