/* CUPTI tracing on a real GPU: a cudaMemset / cudaMemcpy / synchronize sequence must come back as
 * memset, memcpy (both directions, right sizes) and synchronization records, summarised and exported as
 * a valid Chrome trace. Skips without a CUDA build or device. */
#include <criterion/criterion.h>

#include "support.h"

#ifdef MIMO_HAVE_CUDA

#include "mimo/engine.h"
#include "trace.h"
#include "trace_phases.h"

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

/* A persistent kernel is one CUPTI record: the engine's phase stamps of a traced run become phase records
 * (trace_phases.c) on the kernel's device and stream, each inside its step's kernel record (the
 * record's start is where the step's stamps are put), and the summary counts them apart. */
Test(trace_gpu, persistent_phases_land_inside_their_kernel_records, .timeout = 300)
{
    need_gpu();
    char why[256];
    cr_assert(mimo_trace_available(why, sizeof why), "%s", why);
    mimo_config cfg;
    mimo_error err = {""};
    cr_assert_eq(mimo_config_preset("tiny", &cfg, &err), 0, "%s", err.msg);
    mimo_engine_options o;
    mimo_engine_options_default(&o);
    o.backend = MIMO_BACKEND_CUDA;
    o.exec = MIMO_EXEC_PERSISTENT;
    o.max_context = 128;
    mimo_engine *e = NULL;
    cr_assert_eq(mimo_engine_create_synthetic(&cfg, 7, &o, &e, &err), 0, "%s", err.msg);
    int32_t toks[16];
    for (int i = 0; i < 16; i++)
        toks[i] = (int32_t)((i * 7919u + 13u) % (unsigned)cfg.vocab_size);
    int32_t arg[16];
    mimo_forward_out out = {.argmax = arg};
    cr_assert_eq(mimo_engine_forward(e, toks, 16, &out, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_engine_forward(e, toks, 1, &out, &err), 0, "%s", err.msg);   /* records the kernel */

    enum { STEPS = 8 };
    mimo_trace *t = NULL;
    cr_assert_eq(mimo_trace_start(&t, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_engine_set_phase_stamps(e, true, &err), 0, "%s", err.msg);
    for (int s = 0; s < STEPS; s++)
        cr_assert_eq(mimo_engine_forward(e, &toks[s], 1, &out, &err), 0, "%s", err.msg);
    cr_assert_eq(mimo_trace_stop(t, &err), 0, "%s", err.msg);
    int n_phases = 0;
    cr_assert_not_null(mimo_engine_phase_step(e, 0, &n_phases));
    json_t *info = mimo_trace_add_engine_phases(t, e, "persistent_step_kernel");
    cr_assert_eq(json_integer_value(json_object_get(info, "kernel_records")), STEPS);
    cr_assert_eq(json_integer_value(json_object_get(info, "steps_added")), STEPS, "%s", json_dumps(info, 0));
    cr_assert_eq(json_integer_value(json_object_get(info, "phase_records")), (json_int_t)STEPS * n_phases);
    cr_assert_null(json_object_get(info, "error"));
    /* one clock offset for all steps: a pairing off by a step would spread the shifts by a step and more */
    const double spread = json_number_value(json_object_get(info, "shift_spread_us"));
    cr_expect(spread >= 0.0 && spread < 100.0, "shifts spread over %g us", spread);
    json_decref(info);

    const mimo_trace_records *r = mimo_trace_get_records(t);
    mimo_trace_span *spans = NULL;
    cr_assert_eq(mimo_trace_kernel_spans(r, "persistent_step_kernel", &spans), STEPS);
    size_t phases = 0;
    for (size_t i = 0; i < r->n; i++) {
        const mimo_trace_record *rec = &r->records[i];
        if (rec->kind != MIMO_TRACE_PHASE)
            continue;
        phases++;
        bool inside = false;
        for (int k = 0; k < STEPS; k++)
            inside |= rec->device == spans[k].device && rec->stream == spans[k].stream &&
                      rec->start_ns >= spans[k].start_ns && rec->end_ns <= spans[k].end_ns + 20000;
        cr_expect(inside, "phase %s [%llu, %llu] lies in no persistent kernel record", rec->name,
                  (unsigned long long)rec->start_ns, (unsigned long long)rec->end_ns);
    }
    cr_assert_eq(phases, (size_t)STEPS * n_phases);
    free(spans);
    json_t *summary = mimo_trace_summary(r, STEPS);
    cr_expect_eq(json_integer_value(json_object_get(summary, "persistent_phase_records")), (json_int_t)phases);
    cr_expect(json_is_object(json_object_get(summary, "persistent_phases_us")));
    json_decref(summary);
    mimo_trace_free(t);
    mimo_engine_destroy(e);
}

#else

Test(trace_gpu, memset_memcpy_sync_are_recorded)
{
    cr_skip_test("built without CUDA: CUPTI tracing is not compiled in");
}

#endif
