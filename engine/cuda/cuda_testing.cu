// Single-op entry points for the tests (cuda_testing.h).
#include "cuda_drafter.cuh"
#include "cuda_engine.cuh"
#include "cuda_testing.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <vector>

namespace {

// Owns the device allocations and the stream of one test call.
struct TestCtx {
    CudaEngine e;
    TestCtx() : e() {}
    ~TestCtx() { cuda_engine_free_scratch(&e, true); }
    int init(mimo_error *err)
    {
        char reason[256];
        if (!mimo_cuda_backend_available(reason, sizeof reason))
            return mimo_fail(err, "%s", reason);
        CUDA_CHECK(cudaStreamCreateWithFlags(&e.stream, cudaStreamNonBlocking));
        return cuda_gemv_prepare(err);
    }
    // Device copy of host data (or NaN-poisoned space when src is NULL).
    template <typename T> int put(const T *src, size_t n, T **out, mimo_error *err)
    {
        void *d;
        if (cuda_engine_alloc(&e, &d, n * sizeof(T), err))
            return -1;
        if (src)
            CUDA_CHECK(cudaMemcpy(d, src, n * sizeof(T), cudaMemcpyHostToDevice));
        else
            CUDA_CHECK(cudaMemset(d, 0xFF, n * sizeof(T)));   // all-ones bytes: NaN floats, -1 ints
        // the legacy-stream memset must land before the test's stream uses the buffer
        CUDA_CHECK(cudaDeviceSynchronize());
        *out = (T *)d;
        return 0;
    }
    // Inputs [n][cols] on the device with rows padded to the kernels' width (zeros beyond cols).
    int put_rows(const float *src, int n, int cols, float **out, int *ld, mimo_error *err)
    {
        void *d;
        *ld = gpu_pad_cols(cols);
        if (cuda_engine_alloc(&e, &d, (size_t)n * *ld * sizeof(float), err))
            return -1;
        CUDA_CHECK(cudaMemset(d, 0, (size_t)n * *ld * sizeof(float)));
        CUDA_CHECK(cudaMemcpy2D(d, (size_t)*ld * 4, src, (size_t)cols * 4, (size_t)cols * 4, (size_t)n, cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaDeviceSynchronize());   // legacy-stream copies land before the test's stream runs
        *out = (float *)d;
        return 0;
    }
    template <typename T> int get(T *dst, const T *src, size_t n, mimo_error *err)
    {
        CUDA_CHECK(cudaStreamSynchronize(e.stream));
        CUDA_CHECK(cudaMemcpy(dst, src, n * sizeof(T), cudaMemcpyDeviceToHost));
        return 0;
    }
    int matrix(const mimo_matrix *m, int count, GpuMat *out, mimo_error *err)
    {
        if (cuda_alloc_matrix_set(&e, m[0].format, (int)m[0].rows, (int)m[0].cols, m[0].scale_group_rows, count, out, err))
            return -1;
        for (int i = 0; i < count; i++)
            if (cuda_upload_matrix_into(&e, &m[i], *out, i, err))
                return -1;
        CUDA_CHECK(cudaDeviceSynchronize());   // as in put_rows
        return 0;
    }
};

}  // namespace

// Path 15: the down projection with the combine is told its expert ids are final at launch
// (GemvParams::ids_settled, its EARLY kernel), as the step's program tells it.
static bool test_ids_settled = false;
// Path 16: the gate/up slots are told their inputs are final at launch (GemvParams::x_settled).
static bool test_x_settled = false;

extern "C" int mimo_cuda_test_set_gemv_path(int path)
{
    GemvKnobs &k = cuda_gemv_knobs();   // reads the environment once; the path below overrides it
    test_ids_settled = path == 15;
    test_x_settled = path == 16;
    switch (path) {
    case 0: k = GemvKnobs(); break;
    case 1: k = GemvKnobs(); k.gemv1 = 1; break;
    case 2: k = GemvKnobs(); k.gemv1 = 0; break;
    case 3: k = GemvKnobs(); k.gemv1 = 0; k.mma_pipe = 4; break;
    case 4: k = GemvKnobs(); k.gemv1 = 0; k.mma_ksplit = 2; break;
    case 5: k = GemvKnobs(); k.gemv1 = 1; k.gemv1_blocks = 3; break;
    case 6: k = GemvKnobs(); k.gemv1 = 1; k.gemv1_wide = 1; break;
    case 7: k = GemvKnobs(); k.gemv1 = 1; k.gemv1_wide = 1; k.gemv1_blocks = 3; break;
    case 8: k = GemvKnobs(); k.gemv1 = 1; k.gemv1_narrow = 0; break;
    case 9: k = GemvKnobs(); k.gemv1 = 1; k.gemv1_narrow = 1; k.gemv1_blocks = 3; break;
    case 10: k = GemvKnobs(); k.gemv1 = 1; k.gemv1_narrow = 1; break;
    case 11: k = GemvKnobs(); k.combine_blocks = 3; break;
    case 12: k = GemvKnobs(); k.gemv1 = 1; k.gemv1_narrow = 1; k.gemv1_onepass = 0; break;
    case 13: k = GemvKnobs(); k.slot_xsmem = 0; break;
    case 14: k = GemvKnobs(); k.defer_norm = 0; break;
    case 15: k = GemvKnobs(); k.early_ids = 1; break;   // at any position count
    case 16: k = GemvKnobs(); break;
    case 17: k = GemvKnobs(); k.gemv_staged = 0; break;
    case 18: k = GemvKnobs(); k.slot_bulk = 2; break;   // every shape and position count it takes
    case 19: k = GemvKnobs(); k.slot_bulk = 2; k.slot_bulk_tiles = 4; break;   // and several tiles a block
    case 20: k = GemvKnobs(); k.slot_bulk = 2; k.slot_bulk_tiles = 3; break;
    case 21: k = GemvKnobs(); k.down_bulk = 2; break;   // every shape and position count it takes
    case 22: k = GemvKnobs(); k.dense_bulk_chunks = 1; break;   // the dense bulk kernel without a column split
    case 23: k = GemvKnobs(); k.dense_bulk_chunks = 2; break;   // and in two chunks
    case 24: k = GemvKnobs(); k.dense_bulk_qkv = 1; break;   // the qkv epilogue on the dense bulk kernel
    case 25: k = GemvKnobs(); k.gemv1_positions = 2; break;   // plain matrices of several positions, every format
    case 26: k = GemvKnobs(); k.gemv1_positions = 0; break;   // f32 ones on the several-position kernel
    case 27: k = GemvKnobs(); k.norm_x = 0; break;   // the norms of several positions never folded
    case 28: k = GemvKnobs(); k.dense_bulk_chunks = 10; break;   // more chunks than the last block's load batch
    case 29: k = GemvKnobs(); k.dense_bulk_waves = 0; break;   // no launches of several waves on the dense kernel
    default: return -1;
    }
    // the paths of CUDA-core and tensor-core GEMV variants keep the MXFP4 gate/up slots off the bulk kernel
    if (path >= 1 && path <= 17) {
        k.slot_bulk = 0;
        k.down_bulk = 0;
        k.dense_bulk = 0;   // and the dense GEMVs of several positions off the dense bulk kernel
    }
    return 0;
}

extern "C" long long mimo_cuda_test_gemv_staged_launches(void) { return cuda_gemv_staged_launches(); }
extern "C" long long mimo_cuda_test_gemv1_positions_launches(void) { return cuda_gemv1_positions_launches(); }
extern "C" long long mimo_cuda_test_expert_glu_bulk_launches(void) { return cuda_expert_glu_bulk_launches(); }
extern "C" long long mimo_cuda_test_expert_down_bulk_launches(void) { return cuda_expert_down_bulk_launches(); }
extern "C" long long mimo_cuda_test_dense_bulk_launches(void) { return cuda_dense_bulk_launches(); }
extern "C" void mimo_cuda_test_set_draft_attn_group(int mode) { cuda_draft_attn_group_knob() = mode >= 0 && mode <= 2 ? mode : 1; }

// y = W x, or silu(W x) * (U x) with up != NULL, over n positions; y += W x with accumulate.
static int test_gemv(const mimo_matrix *w, const mimo_matrix *up, const float *x, int n, float *y, bool accumulate,
                     mimo_error *err)
{
    TestCtx c;
    GpuMat m, u;
    float *dx = NULL, *dy = NULL;
    int ldx = 0;
    if (c.init(err) || c.matrix(w, 1, &m, err) || (up && c.matrix(up, 1, &u, err)) ||
        c.put_rows(x, n, (int)w->cols, &dx, &ldx, err) ||
        c.put<float>(accumulate ? y : NULL, (size_t)n * w->rows, &dy, err))
        return -1;
    GemvParams p = gemv_params(m, dx, ldx, dy, (int)w->rows, n, accumulate);
    if (up)
        p.w2 = u;
    if (cuda_alloc_split_workspace(&c.e, &p.split, err) ||   // as the engine's step gives its GEMVs
        cuda_gemv(p, up != NULL, c.e.stream, err))
        return -1;
    return c.get(y, dy, (size_t)n * w->rows, err);
}

extern "C" int mimo_cuda_test_norm_between_gemvs(const mimo_matrix *writer, const float *a, float *x,
                                                 const float *norm_w, float eps, const mimo_matrix *reader,
                                                 const mimo_matrix *reader_up, float *y, int *deferred,
                                                 mimo_error *err)
{
    TestCtx c;
    GpuMat wm, rm, ru;
    float *da = NULL, *dx = NULL, *dh = NULL, *dw = NULL, *dy = NULL;
    double *dpart = NULL;
    const int H = (int)writer->rows, M = (int)reader->rows;
    int lda = 0, ldx = 0, ldh = 0;
    if ((int)reader->cols != H)
        return mimo_fail(err, "cuda test norm: the reader takes %d columns, the writer gives %d rows", (int)reader->cols, H);
    std::vector<float> zeros((size_t)H, 0.0f);
    if (c.init(err) || c.matrix(writer, 1, &wm, err) || c.matrix(reader, 1, &rm, err) ||
        (reader_up && c.matrix(reader_up, 1, &ru, err)) || c.put_rows(a, 1, (int)writer->cols, &da, &lda, err) ||
        c.put_rows(x, 1, H, &dx, &ldx, err) || c.put_rows(zeros.data(), 1, H, &dh, &ldh, err) ||
        c.put(norm_w, (size_t)H, &dw, err) || c.put<float>(NULL, (size_t)M, &dy, err) ||
        c.put<double>(NULL, MIMO_CUDA_NORM_PARTIALS_MAX, &dpart, err))   // NaN: a partial read but not written shows
        return -1;
    GemvParams pw = gemv_params(wm, da, lda, dx, H, 1, true);
    GemvParams pr = gemv_params(rm, dh, ldh, dy, M, 1, false);
    if (reader_up)
        pr.w2 = ru;
    const int count = cuda_gemv_norm_partials(pw, false);
    *deferred = count > 0 && cuda_gemv_takes_norm_in(pr, reader_up != NULL);
    if (*deferred) {
        pw.norm_out = GemvNormOut{dh, H, dw, dpart, MIMO_CUDA_NORM_PARTIALS_MAX};
        pr.norm_in = GemvNormIn{dpart, count, MIMO_CUDA_NORM_PARTIALS_MAX, H, eps, nullptr};
    }
    if (cuda_alloc_split_workspace(&c.e, &pw.split, err) || cuda_alloc_split_workspace(&c.e, &pr.split, err) ||
        cuda_gemv(pw, false, c.e.stream, err) ||
        (!*deferred && cuda_rmsnorm(dx, ldx, dw, H, eps, dh, ldh, 1, c.e.stream, err)) ||
        cuda_gemv(pr, reader_up != NULL, c.e.stream, err))
        return -1;
    return c.get(x, dx, (size_t)H, err) || c.get(y, dy, (size_t)M, err);
}

extern "C" int mimo_cuda_test_norm_to_expert_slots(const mimo_matrix *writer, const float *a, float *x,
                                                   const float *norm_w, float eps, const mimo_matrix *router,
                                                   const mimo_matrix *gate, const mimo_matrix *up, int n_experts,
                                                   const int32_t *ids, int k, float *y_router, float *y_slots,
                                                   int *deferred, mimo_error *err)
{
    TestCtx c;
    GpuMat wm, rm, gm, um;
    float *da = NULL, *dx = NULL, *dh = NULL, *dw = NULL, *dyr = NULL, *dys = NULL, *dfactor = NULL;
    double *dpart = NULL;
    int32_t *dids = NULL;
    const int H = (int)writer->rows, R = (int)router->rows, M = (int)gate[0].rows;
    int lda = 0, ldx = 0, ldh = 0;
    if ((int)router->cols != H || (int)gate[0].cols != H)
        return mimo_fail(err, "cuda test norm to slots: the readers take %d / %d columns, the writer gives %d rows",
                         (int)router->cols, (int)gate[0].cols, H);
    std::vector<float> zeros((size_t)H, 0.0f);
    if (c.init(err) || c.matrix(writer, 1, &wm, err) || c.matrix(router, 1, &rm, err) ||
        c.matrix(gate, n_experts, &gm, err) || c.matrix(up, n_experts, &um, err) ||
        c.put_rows(a, 1, (int)writer->cols, &da, &lda, err) || c.put_rows(x, 1, H, &dx, &ldx, err) ||
        c.put_rows(zeros.data(), 1, H, &dh, &ldh, err) || c.put(norm_w, (size_t)H, &dw, err) ||
        c.put<float>(NULL, (size_t)R, &dyr, err) || c.put<float>(NULL, (size_t)k * M, &dys, err) ||
        c.put<float>(NULL, 1, &dfactor, err) || c.put(ids, (size_t)k, &dids, err) ||
        c.put<double>(NULL, MIMO_CUDA_NORM_PARTIALS_MAX, &dpart, err))
        return -1;
    GemvParams pw = gemv_params(wm, da, lda, dx, H, 1, true);
    GemvParams pr = gemv_params(rm, dh, ldh, dyr, R, 1, false);
    GemvParams ps = gemv_params(gm, dh, ldh, dys, M, k, false);
    ps.w2 = um;
    ps.slot_expert = dids;
    ps.x_slot_div = k;
    const int count = cuda_gemv_norm_partials(pw, false);
    *deferred = count > 0 && cuda_gemv_takes_norm_in(pr, false) && cuda_gemv_takes_norm_factor(ps, true);
    if (*deferred) {   // as defer_norms (cuda_backend.cu) sets them
        pw.norm_out = GemvNormOut{dh, H, dw, dpart, MIMO_CUDA_NORM_PARTIALS_MAX};
        pr.norm_in = GemvNormIn{dpart, count, MIMO_CUDA_NORM_PARTIALS_MAX, H, eps, dfactor};
        ps.norm_factor = dfactor;
    }
    if (cuda_alloc_split_workspace(&c.e, &pw.split, err) || cuda_alloc_split_workspace(&c.e, &pr.split, err) ||
        cuda_gemv(pw, false, c.e.stream, err) ||
        (!*deferred && cuda_rmsnorm(dx, ldx, dw, H, eps, dh, ldh, 1, c.e.stream, err)) ||
        cuda_gemv(pr, false, c.e.stream, err) || cuda_gemv(ps, true, c.e.stream, err))
        return -1;
    return c.get(x, dx, (size_t)H, err) || c.get(y_router, dyr, (size_t)R, err) ||
           c.get(y_slots, dys, (size_t)k * M, err);
}

extern "C" int mimo_cuda_test_gemv(const mimo_matrix *w, const float *x, int n, float *y, mimo_error *err)
{
    return test_gemv(w, NULL, x, n, y, false, err);
}

extern "C" int mimo_cuda_test_gemv_accumulate(const mimo_matrix *w, const float *x, int n, float *y, mimo_error *err)
{
    return test_gemv(w, NULL, x, n, y, true, err);
}

extern "C" int mimo_cuda_test_gemv_glu(const mimo_matrix *gate, const mimo_matrix *up, const float *x, int n, float *y,
                                       mimo_error *err)
{
    return test_gemv(gate, up, x, n, y, false, err);
}

extern "C" int mimo_cuda_test_expert_gemv(const mimo_matrix *experts, const mimo_matrix *up_experts, int n_experts,
                                          const int32_t *ids, int n_slots, const float *x, int x_div, float *y,
                                          mimo_error *err)
{
    TestCtx c;
    GpuMat m, u;
    float *dx = NULL, *dy = NULL;
    int32_t *dids = NULL;
    const int rows = (int)experts[0].rows, cols = (int)experts[0].cols;
    const int n_x = (n_slots + x_div - 1) / x_div;
    int ldx = 0;
    if (c.init(err) || c.matrix(experts, n_experts, &m, err) || (up_experts && c.matrix(up_experts, n_experts, &u, err)) ||
        c.put_rows(x, n_x, cols, &dx, &ldx, err) || c.put<float>(NULL, (size_t)n_slots * rows, &dy, err) ||
        c.put(ids, (size_t)n_slots, &dids, err))
        return -1;
    GemvParams p = gemv_params(m, dx, ldx, dy, rows, n_slots);
    if (up_experts)
        p.w2 = u;
    p.slot_expert = dids;
    p.x_slot_div = x_div;
    p.x_settled = test_x_settled;
    if (cuda_gemv(p, up_experts != NULL, c.e.stream, err))
        return -1;
    return c.get(y, dy, (size_t)n_slots * rows, err);
}

extern "C" int mimo_cuda_test_expert_down_combine(const mimo_matrix *experts, int n_experts, const int32_t *ids,
                                                  const float *w, int n_slots, int k, const float *act, float *x,
                                                  bool fused, mimo_error *err)
{
    TestCtx c;
    GpuMat m;
    float *dact = NULL, *dy = NULL, *dw = NULL, *dx = NULL;
    int32_t *dids = NULL;
    const int rows = (int)experts[0].rows, cols = (int)experts[0].cols;
    int ldact = 0;
    if (k < 1 || n_slots % k)
        return mimo_fail(err, "cuda test expert down combine: %d slots are not positions of k = %d", n_slots, k);
    if (c.init(err) || c.matrix(experts, n_experts, &m, err) || c.put_rows(act, n_slots, cols, &dact, &ldact, err) ||
        c.put<float>(NULL, (size_t)n_slots * rows, &dy, err) || c.put(ids, (size_t)n_slots, &dids, err) ||
        c.put(w, (size_t)n_slots, &dw, err) || c.put(x, (size_t)(n_slots / k) * rows, &dx, err))
        return -1;
    GemvParams p = gemv_params(m, dact, ldact, dy, rows, n_slots);
    p.slot_expert = dids;
    p.combine_w = dw;
    p.combine_x = dx;
    p.combine_ldx = rows;
    p.combine_k = k;
    p.ids_settled = test_ids_settled;
    GemvKnobs &kn = cuda_gemv_knobs();
    const int saved = kn.fused_combine;
    kn.fused_combine = fused ? 1 : 0;
    const int rc = cuda_gemv(p, false, c.e.stream, err);
    kn.fused_combine = saved;
    if (rc)
        return -1;
    return c.get(x, dx, (size_t)(n_slots / k) * rows, err);
}

extern "C" int mimo_cuda_test_gemv_rmsnorm_in(const mimo_matrix *w, const mimo_matrix *up, int n_experts,
                                              const int32_t *ids, int k, const float *x, const float *norm_w, float eps,
                                              int n, float *y, int *folded, mimo_error *err)
{
    TestCtx c;
    GpuMat m, u;
    float *dx = NULL, *dh = NULL, *dw = NULL, *dy = NULL;
    int32_t *dids = NULL;
    const int rows = (int)w[0].rows, cols = (int)w[0].cols, sets = ids ? n_experts : 1, n_out = ids ? n * k : n;
    int ldx = 0, ldh = 0, ldw = 0;
    if (ids && (k < 1 || !up))
        return mimo_fail(err, "cuda test rmsnorm in: expert slots need gate and up sets and k >= 1");
    std::vector<float> zeros((size_t)n * cols, 0.0f);
    if (c.init(err) || c.matrix(w, sets, &m, err) || (up && c.matrix(up, sets, &u, err)) ||
        c.put_rows(x, n, cols, &dx, &ldx, err) || c.put_rows(zeros.data(), n, cols, &dh, &ldh, err) ||
        c.put_rows(norm_w, 1, cols, &dw, &ldw, err) || c.put<float>(NULL, (size_t)n_out * rows, &dy, err) ||
        (ids && c.put(ids, (size_t)n * k, &dids, err)))
        return -1;
    GemvParams p = gemv_params(m, dh, ldh, dy, rows, n_out);   // the reader of h, as the step builds it
    if (up)
        p.w2 = u;
    if (ids) {
        p.slot_expert = dids;
        p.x_slot_div = k;
    }
    if (cuda_alloc_split_workspace(&c.e, &p.split, err))
        return -1;
    GemvParams q = p;   // folded: the residual rows and the norm (fold_norm_x in cuda_backend.cu)
    q.x = dx;
    q.ldx = ldx;
    q.norm_x = GemvNormX{dw, eps};
    *folded = m.ld == cols && cuda_gemv_takes_norm_x(q, up != NULL);
    if (*folded ? cuda_gemv(q, up != NULL, c.e.stream, err)
                : cuda_rmsnorm(dx, ldx, dw, cols, eps, dh, ldh, n, c.e.stream, err) ||
                      cuda_gemv(p, up != NULL, c.e.stream, err))
        return -1;
    return c.get(y, dy, (size_t)n_out * rows, err);
}

extern "C" void mimo_cuda_test_set_route_fused(int mode) { cuda_gemv_knobs().route_fused = mode; }

extern "C" int mimo_cuda_test_route_to_expert_slots(const mimo_matrix *gate, const mimo_matrix *up, int n_experts,
                                                    const float *logits, const float *bias, int k, bool norm_topk,
                                                    float scaling, const float *x, const float *norm_w, float eps,
                                                    const float *norm_factor, int n, int32_t *ids, float *weights,
                                                    float *y, int *fused, mimo_error *err)
{
    TestCtx c;
    GpuMat g, u;
    float *dl = NULL, *db = NULL, *dx = NULL, *dnw = NULL, *dnf = NULL, *dw = NULL, *dy = NULL;
    int32_t *di = NULL;
    const int E = n_experts, rows = (int)gate[0].rows, cols = (int)gate[0].cols;
    int ldx = 0;
    if (c.init(err) || c.matrix(gate, E, &g, err) || c.matrix(up, E, &u, err) ||
        c.put(logits, (size_t)n * E, &dl, err) || (bias && c.put(bias, (size_t)E, &db, err)) ||
        c.put_rows(x, n, cols, &dx, &ldx, err) || (norm_w && c.put(norm_w, (size_t)cols, &dnw, err)) ||
        (norm_factor && c.put(norm_factor, (size_t)n, &dnf, err)) ||
        c.put<int32_t>(NULL, (size_t)n * k, &di, err) || c.put<float>(NULL, (size_t)n * k, &dw, err) ||
        c.put<float>(NULL, (size_t)n * k * rows, &dy, err))
        return -1;
    GemvParams p = gemv_params(g, dx, ldx, dy, rows, n * k);   // the gate/up slots, as the step builds them
    p.w2 = u;
    p.slot_expert = di;
    p.x_slot_div = k;
    if (norm_w)
        p.norm_x = GemvNormX{dnw, eps};
    p.norm_factor = dnf;
    if (cuda_alloc_split_workspace(&c.e, &p.split, err))
        return -1;
    if (norm_w && !cuda_gemv_takes_norm_x(p, true))
        return mimo_fail(err, "cuda test route to expert slots: the slots' kernel does not take the folded norm");
    if (norm_factor && !cuda_gemv_takes_norm_factor(p, true))
        return mimo_fail(err, "cuda test route to expert slots: the slots' kernel does not take a norm factor");
    GemvParams q = p;   // fused: the slots pick their experts (fuse_route in cuda_backend.cu)
    q.route = GemvRouteIn{dl, db, E, k, norm_topk ? 1 : 0, cuda_route_redux_knob(), scaling, di, dw};
    *fused = cuda_gemv_takes_route(q, true);
    if (*fused ? cuda_gemv(q, true, c.e.stream, err)
               : cuda_route(dl, db, E, k, norm_topk, scaling, n, di, dw, c.e.stream, err) ||
                     cuda_gemv(p, true, c.e.stream, err))
        return -1;
    return c.get(ids, di, (size_t)n * k, err) || c.get(weights, dw, (size_t)n * k, err) ||
                   c.get(y, dy, (size_t)n * k * rows, err)
               ? -1
               : 0;
}

extern "C" int mimo_cuda_test_rmsnorm(const float *x, const float *w, int dim, float eps, int n, float *out, mimo_error *err)
{
    TestCtx c;
    float *dx = NULL, *dw = NULL, *dout = NULL;
    if (c.init(err) || c.put(x, (size_t)n * dim, &dx, err) || c.put(w, (size_t)dim, &dw, err) ||
        c.put<float>(NULL, (size_t)n * dim, &dout, err))
        return -1;
    if (cuda_rmsnorm(dx, dim, dw, dim, eps, dout, dim, n, c.e.stream, err))
        return -1;
    return c.get(out, dout, (size_t)n * dim, err);
}

// Every element of matrix m by the slow-path decoder (dev_mat_get), row-major [rows][cols].
__global__ void matrix_values_kernel(const GpuMat m, int cols, float *out)
{
    const int r = blockIdx.x;
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        out[(size_t)r * cols + c] = dev_mat_get(m, (const uint8_t *)m.data, (const uint8_t *)m.scales, r, c);
}

extern "C" int mimo_cuda_test_mxfp4_device_codes(const mimo_matrix *m, uint8_t *codes, float *values, mimo_error *err)
{
    if (m->format != MIMO_WFMT_MXFP4)
        return mimo_fail(err, "mimo_cuda_test_mxfp4_device_codes: the matrix is not MXFP4");
    TestCtx c;
    GpuMat d;
    float *dv = NULL;
    const size_t rows = (size_t)m->rows, cols = (size_t)m->cols;
    if (c.init(err) || c.matrix(m, 1, &d, err) || c.put<float>(NULL, rows * cols, &dv, err))
        return -1;
    matrix_values_kernel<<<(unsigned)rows, 256, 0, c.e.stream>>>(d, (int)cols, dv);
    CUDA_CHECK_LAUNCH("matrix_values_kernel");
    if (c.get(values, dv, rows * cols, err))
        return -1;
    CUDA_CHECK(cudaMemcpy2D(codes, cols / 2, d.data, gpu_row_bytes(d.fmt, d.ld), cols / 2, rows, cudaMemcpyDeviceToHost));
    return 0;
}

// The device geometry of a test's attention layout (its RoPE table not yet uploaded).
static AttnGeom test_attn_geom(const mimo_cuda_test_attn *a)
{
    AttnGeom g;
    memset(&g, 0, sizeof g);
    g.n_heads = a->n_heads;
    g.n_kv = a->n_kv;
    g.dqk = a->dqk;
    g.dv = a->dv;
    g.rope_dim = a->rope_dim;
    g.theta = a->theta;
    g.value_scale = a->value_scale;
    g.window = a->window;
    g.ring = a->max_context;
    if (a->window > 0 && a->window + MIMO_MAX_DECODE_POSITIONS < a->max_context)
        g.ring = a->window + MIMO_MAX_DECODE_POSITIONS;
    return g;
}

extern "C" int mimo_cuda_test_qkv_projection(const mimo_cuda_test_attn *a, const mimo_matrix *w, const int32_t *row_map,
                                             const float *x, int pos, int n, int fused, float *q, float *k, float *v,
                                             mimo_error *err)
{
    TestCtx c;
    AttnGeom g = test_attn_geom(a);
    const int qn = a->n_heads * a->dqk, kn = a->n_kv * a->dqk, vn = a->n_kv * a->dv;
    if ((int)w->rows != qn + kn + vn || pos < 0 || n < 1 || n > MIMO_MAX_DECODE_POSITIONS || pos + n > a->max_context)
        return mimo_fail(err, "cuda test qkv projection: %d rows for %d, or positions %d..%d outside the context %d",
                         (int)w->rows, qn + kn + vn, pos, pos + n - 1, a->max_context);
    GpuMat m;
    float *dx = NULL, *dqkv = NULL, *dq = NULL, *dk = NULL, *dv = NULL;
    int32_t *dmap = NULL;
    int *dlen = NULL, ldx = 0;
    if (c.init(err) || c.matrix(w, 1, &m, err) || c.put_rows(x, n, (int)w->cols, &dx, &ldx, err) ||
        c.put<float>(NULL, (size_t)n * (qn + kn + vn), &dqkv, err) || c.put<float>(NULL, (size_t)n * qn, &dq, err) ||
        c.put<float>(NULL, (size_t)g.ring * kn, &dk, err) || c.put<float>(NULL, (size_t)g.ring * vn, &dv, err) ||
        c.put(&pos, 1, &dlen, err) || (row_map && c.put(row_map, (size_t)(qn + kn + vn), &dmap, err)) ||
        cuda_upload_rope_table(&c.e, a->theta, a->rope_dim, &g.inv_freq, err))
        return -1;
    GemvParams p = gemv_params(m, dx, ldx, dqkv, qn + kn + vn, n);
    if (cuda_alloc_split_workspace(&c.e, &p.split, err))   // as the engine's step gives its GEMVs
        return -1;
    if (fused) {
        p.qkv_out = GemvQkvOut{dq, dk, dv, dmap, dlen, g};
        if (!cuda_gemv_takes_qkv_out(p, g))
            return mimo_fail(err, "cuda test qkv projection: its kernel does not take the RoPE and cache store "
                                  "(%s weights)", mimo_weight_format_name(w->format));
        if (cuda_gemv(p, false, c.e.stream, err))
            return -1;
    } else if (cuda_gemv(p, false, c.e.stream, err) ||
               cuda_qkv_rope_store(dqkv, qn + kn + vn, dmap, g, dlen, n, dq, dk, dv, c.e.stream, err)) {
        return -1;
    }
    if (c.get(q, dq, (size_t)n * qn, err))
        return -1;
    for (int t = 0; t < n; t++) {
        const size_t slot = (size_t)(g.window > 0 ? (pos + t) % g.ring : pos + t);
        if (c.get(k + (size_t)t * kn, dk + slot * kn, (size_t)kn, err) ||
            c.get(v + (size_t)t * vn, dv + slot * vn, (size_t)vn, err))
            return -1;
    }
    return 0;
}

// The attention knobs a test sets, back to their values on every way out.
struct AttentionKnobsRestored {
    const int registers = cuda_attention_merge_registers_knob(), group = cuda_attention_group_knob();
    const int split_keys = cuda_attention_split_keys_knob();
    ~AttentionKnobsRestored()
    {
        cuda_attention_merge_registers_knob() = registers;
        cuda_attention_group_knob() = group;
        cuda_attention_split_keys_knob() = split_keys;
    }
};

extern "C" int mimo_cuda_test_attention(const mimo_cuda_test_attn *a, const float *qkv, int P, int chunk, float *out,
                                        mimo_error *err)
{
    TestCtx c;
    AttnGeom g = test_attn_geom(a);
    if (chunk < 1 || chunk > MIMO_MAX_DECODE_POSITIONS || P > a->max_context)
        return mimo_fail(err, "cuda test attention: bad chunk %d or P %d", chunk, P);
    if (a->split_keys != 0 && (a->split_keys < 16 || a->split_keys > 256 || (a->split_keys & (a->split_keys - 1))))
        return mimo_fail(err, "cuda test attention: split keys %d not a power of two in 16..256", a->split_keys);
    const int rows = a->n_heads * a->dqk + a->n_kv * (a->dqk + a->dv);
    const int out_w = a->n_heads * a->dv;
    float *dqkv = NULL, *dq = NULL, *dk = NULL, *dv = NULL, *dpart = NULL, *dout = NULL, *dsink = NULL;
    int *dlen = NULL;
    if (c.init(err) || c.put(qkv, (size_t)P * rows, &dqkv, err) ||
        c.put<float>(NULL, (size_t)MIMO_MAX_DECODE_POSITIONS * a->n_heads * a->dqk, &dq, err) ||
        c.put<float>(NULL, (size_t)g.ring * a->n_kv * a->dqk, &dk, err) ||
        c.put<float>(NULL, (size_t)g.ring * a->n_kv * a->dv, &dv, err) ||
        c.put<float>(NULL, cuda_attention_partial_floats(g, a->max_context, MIMO_MAX_DECODE_POSITIONS), &dpart, err) ||
        c.put<float>(NULL, (size_t)P * out_w, &dout, err) || c.put<int>(NULL, 1, &dlen, err) ||
        (a->sink && c.put(a->sink, (size_t)a->n_heads, &dsink, err)) ||
        cuda_upload_rope_table(&c.e, a->theta, a->rope_dim, &g.inv_freq, err))
        return -1;
    const AttentionKnobsRestored restore;
    cuda_attention_merge_registers_knob() = a->merge_loops ? 0 : 1;
    if (a->group_heads != 0)
        cuda_attention_group_knob() = a->group_heads < 0 ? 0 : a->group_heads;
    if (a->split_keys != 0)
        cuda_attention_split_keys_knob() = a->split_keys;
    for (int p0 = 0; p0 < P; p0 += chunk) {
        int m = P - p0 < chunk ? P - p0 : chunk;
        CUDA_CHECK(cudaMemcpyAsync(dlen, &p0, sizeof(int), cudaMemcpyHostToDevice, c.e.stream));
        if (cuda_qkv_rope_store(dqkv + (size_t)p0 * rows, rows, NULL, g, dlen, m, dq, dk, dv, c.e.stream, err) ||
            cuda_attention(dq, dk, dv, dsink, g, dlen, m, a->max_context, dpart, dout + (size_t)p0 * out_w, out_w, c.e.stream, err))
            return -1;
        CUDA_CHECK(cudaStreamSynchronize(c.e.stream));
    }
    return c.get(out, dout, (size_t)P * out_w, err);
}

extern "C" void mimo_cuda_test_set_route_redux(int on) { cuda_route_redux_knob() = on ? 1 : 0; }

extern "C" int mimo_cuda_test_route(const float *logits, const float *bias, int E, int k, bool norm_topk, float scaling,
                                    int n, int32_t *ids, float *weights, mimo_error *err)
{
    TestCtx c;
    float *dl = NULL, *db = NULL, *dw = NULL;
    int32_t *di = NULL;
    if (c.init(err) || c.put(logits, (size_t)n * E, &dl, err) || (bias && c.put(bias, (size_t)E, &db, err)) ||
        c.put<float>(NULL, (size_t)n * k, &dw, err) || c.put<int32_t>(NULL, (size_t)n * k, &di, err))
        return -1;
    if (cuda_route(dl, db, E, k, norm_topk, scaling, n, di, dw, c.e.stream, err))
        return -1;
    return c.get(ids, di, (size_t)n * k, err) || c.get(weights, dw, (size_t)n * k, err) ? -1 : 0;
}

extern "C" int mimo_cuda_test_argmax(const float *x, int v, int n, int32_t *out, mimo_error *err)
{
    TestCtx c;
    float *dx = NULL;
    int32_t *dout = NULL;
    if (c.init(err) || c.put(x, (size_t)n * v, &dx, err) || c.put<int32_t>(NULL, (size_t)n, &dout, err))
        return -1;
    if (cuda_argmax(dx, v, v, n, 0, dout, c.e.stream, err))
        return -1;
    return c.get(out, dout, (size_t)n, err);
}

namespace {

struct Compare {
    int mismatches = 0;
    char *first;
    size_t first_size;
    std::vector<uint8_t> a, b;

    void mismatch(const char *what, int layer)
    {
        if (mismatches++ == 0 && first)
            snprintf(first, first_size, "%s (layer %d)", what, layer);
    }
    int bytes(const void *pa, const void *pb, size_t n, const char *what, int layer, mimo_error *err)
    {
        if (!pa && !pb)
            return 0;
        if (!pa || !pb) {
            // a missing vector is the same as an all-zero one (the router's correction bias)
            const void *p = pa ? pa : pb;
            a.assign(n, 0);
            CUDA_CHECK(cudaMemcpy(a.data(), p, n, cudaMemcpyDeviceToHost));
            for (size_t i = 0; i < n; i++)
                if (a[i]) {
                    mismatch(what, layer);
                    break;
                }
            return 0;
        }
        a.resize(n);
        b.resize(n);
        CUDA_CHECK(cudaMemcpy(a.data(), pa, n, cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(b.data(), pb, n, cudaMemcpyDeviceToHost));
        if (memcmp(a.data(), b.data(), n))
            mismatch(what, layer);
        return 0;
    }
    int mat(const GpuMat &x, const GpuMat &y, int count, const char *what, int layer, mimo_error *err)
    {
        if (x.fmt != y.fmt || x.rows != y.rows || x.cols != y.cols || x.ld != y.ld) {
            mismatch(what, layer);
            return 0;
        }
        if (bytes(x.data, y.data, (size_t)x.expert_stride_data * count, what, layer, err))
            return -1;
        size_t sb = x.fmt == MIMO_WFMT_FP8 ? 4 : 1;
        size_t ns = (size_t)(x.expert_stride_scales < y.expert_stride_scales ? x.expert_stride_scales : y.expert_stride_scales);
        return bytes(x.scales, y.scales, ns * count * sb, what, layer, err);
    }
};

}  // namespace

extern "C" int mimo_cuda_test_synth_matches_upload(const mimo_weights *w, uint64_t seed, const mimo_engine_options *o,
                                                   int *mismatches, char *first, size_t first_size, mimo_error *err)
{
    const mimo_backend_ops *ops_a = NULL, *ops_b = NULL;
    void *ia = NULL, *ib = NULL;
    if (mimo_cuda_backend_create(w, o, &ops_a, &ia, err))
        return -1;
    if (mimo_cuda_backend_create_synthetic(&w->cfg, seed, o, &ops_b, &ib, err)) {
        ops_a->destroy(ia);
        return -1;
    }
    CudaEngine *A = (CudaEngine *)ia, *B = (CudaEngine *)ib;
    Compare c;
    c.first = first;
    c.first_size = first_size;
    const mimo_config *cfg = &w->cfg;
    const size_t H = (size_t)cfg->hidden_size * 4;
    int rc = c.mat(A->embed, B->embed, 1, "embed", -1, err) || c.mat(A->lm_head, B->lm_head, 1, "lm_head", -1, err) ||
             c.bytes(A->final_norm, B->final_norm, H, "final norm", -1, err);
    for (int l = 0; l < A->n_layers && !rc; l++) {
        CudaLayer &x = A->layers[l], &y = B->layers[l];
        const int E = cfg->n_routed_experts;
        rc = c.bytes(x.input_norm, y.input_norm, H, "input norm", l, err) ||
             c.bytes(x.post_norm, y.post_norm, H, "post-attention norm", l, err) ||
             c.mat(x.qkv, y.qkv, 1, "qkv", l, err) || c.mat(x.o_proj, y.o_proj, 1, "o_proj", l, err) ||
             c.bytes(x.sink, y.sink, (size_t)x.geom.n_heads * 4, "sink", l, err);
        if (rc)
            break;
        if (!x.is_moe)
            rc = c.mat(x.gate, y.gate, 1, "dense gate", l, err) || c.mat(x.up, y.up, 1, "dense up", l, err) ||
                 c.mat(x.down, y.down, 1, "dense down", l, err);
        else
            rc = c.mat(x.router, y.router, 1, "router", l, err) ||
                 c.bytes(x.router_bias, y.router_bias, (size_t)E * 4, "router bias", l, err) ||
                 c.mat(x.egate, y.egate, E, "expert gate", l, err) || c.mat(x.eup, y.eup, E, "expert up", l, err) ||
                 c.mat(x.edown, y.edown, E, "expert down", l, err);
    }
    ops_a->destroy(ia);
    ops_b->destroy(ib);
    *mismatches = c.mismatches;
    return rc ? -1 : 0;
}
