// The CUDA backend (engine/include/mimo/backend.h): engine creation, the per-step instruction list,
// eager and graph execution, outputs, KV rollback. Kernels are in cuda_kernels.cu, weights in
// cuda_weights.cu (upload) and cuda_synth.cu (generated on the device).
#include "cuda_drafter.cuh"
#include "cuda_engine.cuh"
#include "cuda_persistent.cuh"
#include "cuda_round.cuh"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" bool mimo_cuda_backend_available(char *reason, size_t reason_size)
{
    int count = 0;
    cudaError_t rc = cudaGetDeviceCount(&count);
    if (rc != cudaSuccess || count == 0) {
        if (reason)
            snprintf(reason, reason_size, "no CUDA device: %s",
                     rc != cudaSuccess ? cudaGetErrorString(rc) : "cudaGetDeviceCount returned 0");
        return false;
    }
    return true;
}

int cuda_engine_alloc(CudaEngine *e, void **p, size_t bytes, mimo_error *err)
{
    *p = NULL;
    if (bytes == 0)
        bytes = 16;
    CUDA_CHECK(cudaMalloc(p, bytes));
    e->allocations.push_back(*p);
    return 0;
}

void cuda_engine_free_scratch(CudaEngine *e, bool destroy_stream)
{
    if (e->stream)
        cudaStreamSynchronize(e->stream);
    for (void *p : e->allocations)
        cudaFree(p);
    e->allocations.clear();
    if (destroy_stream && e->stream) {
        cudaStreamDestroy(e->stream);
        e->stream = nullptr;
    }
}

int cuda_alloc_split_workspace(CudaEngine *e, GemvSplitWorkspace *ws, mimo_error *err)
{
    void *p, *q;
    if (cuda_engine_alloc(e, &p, (size_t)MIMO_CUDA_SPLITK_WS_FLOATS * sizeof(float), err) ||
        cuda_engine_alloc(e, &q, (size_t)MIMO_CUDA_SPLITK_COUNTERS * sizeof(unsigned), err))
        return -1;
    CUDA_CHECK(cudaMemsetAsync(q, 0, (size_t)MIMO_CUDA_SPLITK_COUNTERS * sizeof(unsigned), e->stream));
    ws->partials = (float *)p;
    ws->counters = (unsigned *)q;
    return 0;
}

static int alloc_f(CudaEngine *e, float **p, size_t n, mimo_error *err)
{
    void *v;
    if (cuda_engine_alloc(e, &v, n * sizeof(float), err))
        return -1;
    *p = (float *)v;
    return 0;
}

// ---- the step program ----

static CudaInstr instr(CudaOp op, int layer, int n)
{
    CudaInstr i;
    memset(&i, 0, sizeof i);
    i.op = op;
    i.layer = layer;
    i.n = n;
    static const char *const names[] = {"embed", "rmsnorm", "gemv", "qkv_rope_store", "attention", "route_topk",
                                        "argmax", "copy_hidden"};
    i.label = names[op];
    return i;
}

static CudaInstr labelled(CudaInstr i, const char *label)
{
    i.label = label;
    return i;
}

// A GEMV of the step with the engine's split workspace, as its run launches it: the rules that decide the
// program (the qkv epilogue, the norms deferred or folded, the fused top-k) see the launch's parameters.
static CudaInstr gemv_instr(const CudaEngine *e, int layer, const GpuMat &w, const float *x, int ldx, float *y, int ldy,
                            int n, bool acc)
{
    CudaInstr i = instr(OP_GEMV, layer, n);
    i.gemv = gemv_params(w, x, ldx, y, ldy, n, acc);
    i.gemv.split = e->split;
    return i;
}

static CudaInstr rmsnorm_instr(int layer, const float *src, float *dst, const float *w, int dim, int n)
{
    CudaInstr i = instr(OP_RMSNORM, layer, n);
    i.src = src;
    i.dst = dst;
    i.weight = w;
    i.dim = dim;
    return i;
}

GpuMat cuda_expert_at(const GpuMat &set, int s)
{
    GpuMat m = set;
    m.data = expert_data(set, s);
    m.scales = expert_scales(set, s);
    m.count = 1;
    return m;
}

static void defer_norms(CudaEngine *e, std::vector<CudaInstr> &prog, bool op_kernels);
static void fuse_route(CudaEngine *e, std::vector<CudaInstr> &prog);

// fuse_qkv: the qkv projection does the RoPE and the cache store itself where its kernel takes it
// (GemvQkvOut; the op kernels only: the persistent kernel's table keeps the qkv_rope_store op).
static void build_step(CudaEngine *e, int n, bool with_head, bool fuse_qkv, std::vector<CudaInstr> &prog)
{
    const mimo_config *c = &e->cfg;
    const int H = c->hidden_size, k = c->experts_per_tok;
    prog.clear();
    CudaInstr emb = instr(OP_EMBED, -1, n);
    emb.label = "embed";
    prog.push_back(emb);
    for (int l = 0; l < e->n_layers; l++) {
        CudaLayer &L = e->layers[l];
        prog.push_back(rmsnorm_instr(l, e->x, e->h, L.input_norm, H, n));
        CudaInstr qkv = labelled(gemv_instr(e, l, L.qkv, e->h, H, e->qkv, e->qkv_ld, n, false), "qkv_proj");
        GemvParams fused = qkv.gemv;   // asked with the epilogue it would carry (its row map decides too)
        fused.qkv_out = GemvQkvOut{e->q, L.kcache, L.vcache, L.qkv_map, e->d_step, L.geom};
        if (fuse_qkv && cuda_gemv_takes_qkv_out(fused, L.geom))
            qkv.gemv = fused;
        prog.push_back(qkv);
        if (!qkv.gemv.qkv_out.q)
            prog.push_back(instr(OP_QKV_ROPE, l, n));
        prog.push_back(instr(OP_ATTENTION, l, n));
        prog.push_back(labelled(gemv_instr(e, l, L.o_proj, e->attn, e->attn_ld, e->x, H, n, true), "o_proj"));
        prog.push_back(rmsnorm_instr(l, e->x, e->h, L.post_norm, H, n));
        if (!L.is_moe) {
            CudaInstr g = labelled(gemv_instr(e, l, L.gate, e->h, H, e->mlp, e->mlp_ld, n, false), "dense_gate_up");
            g.gemv.w2 = L.up;
            g.glu = true;
            prog.push_back(g);
            prog.push_back(labelled(gemv_instr(e, l, L.down, e->mlp, e->mlp_ld, e->x, H, n, true), "dense_down"));
        } else {
            prog.push_back(labelled(gemv_instr(e, l, L.router, e->h, H, e->router_logits, c->n_routed_experts, n, false), "router"));
            prog.push_back(instr(OP_ROUTE, l, n));
            CudaInstr g = labelled(gemv_instr(e, l, L.egate, e->h, H, e->act, e->act_ld, n * k, false), "expert_gate_up");
            g.gemv.w2 = L.eup;
            g.glu = true;
            g.gemv.slot_expert = e->route_ids;
            g.gemv.x_slot_div = k;
            g.gemv.x_settled = 1;   // right after the route op (GemvParams)
            prog.push_back(g);
            // the down projection carries the MoE combine into x (cuda_gemv: inside it where it can be,
            // else the combine kernel after it; MIMO_CUDA_FUSED_COMBINE=0 for A/B)
            CudaInstr d = labelled(gemv_instr(e, l, L.edown, e->act, e->act_ld, e->yslot, H, n * k, false), "expert_down");
            d.gemv.slot_expert = e->route_ids;
            d.gemv.combine_w = e->route_w;
            d.gemv.combine_x = e->x;
            d.gemv.combine_ldx = H;
            d.gemv.combine_k = k;
            d.gemv.ids_settled = 1;   // right after the gate/up slots over the same ids (GemvParams)
            prog.push_back(d);
            for (int s = 0; s < c->n_shared_experts && L.sgate.rows > 0; s++) {
                CudaInstr sg = gemv_instr(e, l, cuda_expert_at(L.sgate, s), e->h, H, e->mlp, e->mlp_ld, n, false);
                sg.gemv.w2 = cuda_expert_at(L.sup, s);
                sg.glu = true;
                prog.push_back(sg);
                prog.push_back(gemv_instr(e, l, cuda_expert_at(L.sdown, s), e->mlp, e->mlp_ld, e->x, H, n, true));
            }
        }
        for (int j = 0; j < e->opts.n_hidden_layers; j++)
            if (e->opts.hidden_layers[j] == l) {
                CudaInstr cp = instr(OP_COPY, l, n);
                cp.copy_dst = e->hidden_out + (size_t)j * MIMO_MAX_DECODE_POSITIONS * H;
                cp.copy_src = e->x;
                cp.copy_bytes = (size_t)n * H * sizeof(float);
                prog.push_back(cp);
            }
    }
    if (with_head) {
        prog.push_back(rmsnorm_instr(-1, e->x, e->h, e->final_norm, H, n));
        prog.push_back(labelled(gemv_instr(e, -1, e->lm_head, e->h, H, e->logits, e->vocab_local, n, false), "lm_head"));
        prog.push_back(instr(OP_ARGMAX, -1, n));
    }
    defer_norms(e, prog, fuse_qkv);
    if (fuse_qkv)
        fuse_route(e, prog);
}

// The writer of x that a norm instruction at prog[i] follows: the last GEMV before it that writes x
// (accumulating or through the MoE combine), -1 where the embedding or nothing does.
static long residual_writer(const CudaEngine *e, const std::vector<CudaInstr> &prog, size_t i)
{
    for (long j = (long)i - 1; j >= 0; j--) {
        const CudaInstr &c = prog[j];
        if (c.op == OP_EMBED)
            return -1;
        if (c.op == OP_GEMV && (c.gemv.y == e->x || c.gemv.combine_x == e->x))
            return j;
    }
    return -1;
}

// The step's RMSNorms deferred into the GEMVs around them where their kernels take it (GemvNormOut /
// GemvNormIn in cuda_ops.cuh): the norm instruction goes, the last GEMV before it that writes x also
// writes h = x * w and its partial sums of squares, and every GEMV after it that reads h (up to the next
// norm) scales its outputs by the norm's factor: plain GEMVs sum the partials themselves, expert slots
// after them (MoE layers: the gate/up slots after the router) take the factor the first one stores
// (GemvNormIn::factor_out, GemvParams::norm_factor). Where the writer or a reader cannot (the embedding,
// the tensor-core kernel of several positions, expert slots with no plain reader before them, the
// defer_norm / norm_factor knobs off), the norm kernel stays. The two partial-sum buffers alternate
// between consecutive norms.
// Where that does not apply (several positions: their writers do not take norm_out) and every reader takes
// it, the norm is folded into its readers instead (fold_norm_x).
static bool fold_norm_x(CudaEngine *e, std::vector<CudaInstr> &prog, size_t i);

static void defer_norms(CudaEngine *e, std::vector<CudaInstr> &prog, bool op_kernels)
{
    if (!e->norm_partials)
        return;
    std::vector<bool> drop(prog.size(), false);
    int site = 0;
    for (size_t i = 0; i < prog.size(); i++) {
        const CudaInstr &norm = prog[i];
        if (norm.op != OP_RMSNORM || norm.src != e->x || norm.dst != e->h)
            continue;
        if (op_kernels && norm.n > 1 && fold_norm_x(e, prog, i)) {
            drop[i] = true;
            continue;
        }
        const long w = residual_writer(e, prog, i);
        if (w < 0)
            continue;
        const int count = cuda_gemv_norm_partials(prog[w].gemv, prog[w].glu);
        std::vector<size_t> readers, factor_readers;
        bool ok = count > 0 && prog[w].gemv.w.rows == norm.dim;
        for (size_t j = i + 1; ok && j < prog.size() && prog[j].op != OP_RMSNORM; j++)
            if (prog[j].op == OP_GEMV && prog[j].gemv.x == e->h) {
                if (cuda_gemv_takes_norm_in(prog[j].gemv, prog[j].glu))
                    readers.push_back(j);
                else if (!readers.empty() && cuda_gemv_takes_norm_factor(prog[j].gemv, prog[j].glu))
                    factor_readers.push_back(j);
                else
                    ok = false;
            }
        if (!ok || readers.empty())
            continue;
        double *partials = e->norm_partials + (size_t)(site++ % 2) * MIMO_MAX_DECODE_POSITIONS * MIMO_CUDA_NORM_PARTIALS_MAX;
        prog[w].gemv.norm_out = GemvNormOut{e->h, e->cfg.hidden_size, norm.weight, partials, MIMO_CUDA_NORM_PARTIALS_MAX};
        for (size_t j : readers)
            prog[j].gemv.norm_in = GemvNormIn{partials, count, MIMO_CUDA_NORM_PARTIALS_MAX, norm.dim, e->cfg.rms_eps, nullptr};
        if (!factor_readers.empty())
            prog[readers[0]].gemv.norm_in.factor_out = e->norm_factor;
        for (size_t j : factor_readers)
            prog[j].gemv.norm_factor = e->norm_factor;
        drop[i] = true;
    }
    size_t k = 0;
    for (size_t i = 0; i < prog.size(); i++)
        if (!drop[i])
            prog[k++] = prog[i];
    prog.resize(k);
}

// The norm at prog[i] folded into the GEMVs that read its h up to the next norm (GemvNormX: each reads the
// residual x and normalises it itself), where every one of them takes it as the program's run launches it
// (the split workspace set); the op kernels only (the persistent kernel's table keeps the norm).
static bool fold_norm_x(CudaEngine *e, std::vector<CudaInstr> &prog, size_t i)
{
    const CudaInstr &norm = prog[i];
    std::vector<size_t> readers;
    for (size_t j = i + 1; j < prog.size() && prog[j].op != OP_RMSNORM; j++) {
        if (prog[j].op != OP_GEMV || prog[j].gemv.x != e->h)
            continue;
        GemvParams q = prog[j].gemv;
        q.x = norm.src;
        q.ldx = e->cfg.hidden_size;
        q.norm_x = GemvNormX{norm.weight, e->cfg.rms_eps};
        if (q.w.ld != norm.dim || !cuda_gemv_takes_norm_x(q, prog[j].glu))
            return false;
        readers.push_back(j);
    }
    if (readers.empty())
        return false;
    for (size_t j : readers) {
        prog[j].gemv.x = norm.src;
        prog[j].gemv.ldx = e->cfg.hidden_size;
        prog[j].gemv.norm_x = GemvNormX{norm.weight, e->cfg.rms_eps};
    }
    return true;
}

// The route op folded into the gate/up slots after it where their kernel takes it (GemvRouteIn: each block
// picks its slot's expert from the router's logits itself, the first of each position stores the ids and
// weights), the op kernels only (the persistent kernel's table keeps the route op). The slots then stage their
// input row after their wait (GemvParams::x_settled off: the kernel before them is the router, which lets them
// launch before its own wait), and the down projection after them reads the ids after its wait (ids_settled
// off: they are written by the kernel before it, not two kernels back).
static void fuse_route(CudaEngine *e, std::vector<CudaInstr> &prog)
{
    const mimo_config *c = &e->cfg;
    std::vector<bool> drop(prog.size(), false);
    for (size_t i = 0; i + 1 < prog.size(); i++) {
        CudaInstr &gate_up = prog[i + 1];
        if (prog[i].op != OP_ROUTE || gate_up.op != OP_GEMV || gate_up.gemv.slot_expert != e->route_ids)
            continue;
        GemvParams q = gate_up.gemv;
        q.x_settled = 0;   // the router before it lets it launch before the router's own wait: h may not be final
        q.route = GemvRouteIn{e->router_logits, e->layers[prog[i].layer].router_bias, c->n_routed_experts,
                              c->experts_per_tok, c->norm_topk_prob ? 1 : 0, cuda_route_redux_knob(),
                              c->routed_scaling_factor, e->route_ids, e->route_w};
        if (!cuda_gemv_takes_route(q, gate_up.glu))
            continue;
        gate_up.gemv.route = q.route;
        gate_up.gemv.x_settled = 0;
        drop[i] = true;
        for (size_t j = i + 2; j < prog.size() && prog[j].op == OP_GEMV && prog[j].gemv.slot_expert == e->route_ids; j++)
            prog[j].gemv.ids_settled = 0;
    }
    size_t k = 0;
    for (size_t i = 0; i < prog.size(); i++)
        if (!drop[i])
            prog[k++] = prog[i];
    prog.resize(k);
}

void cuda_build_step(CudaEngine *e, int n, std::vector<CudaInstr> &prog) { build_step(e, n, true, false, prog); }

int cuda_run_program(CudaEngine *e, const std::vector<CudaInstr> &prog, mimo_error *err)
{
    const mimo_config *c = &e->cfg;
    cudaStream_t st = e->stream;
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    CUDA_CHECK(cudaStreamIsCapturing(st, &capturing));
    const bool prof = e->profile && capturing == cudaStreamCaptureStatusNone;
    if (prof)
        while (e->prof_events.size() < prog.size() + 1) {
            cudaEvent_t ev;
            CUDA_CHECK(cudaEventCreate(&ev));
            e->prof_events.push_back(ev);
        }
    size_t idx = 0;
    for (const CudaInstr &i : prog) {
        int rc = 0;
        if (prof)
            CUDA_CHECK(cudaEventRecord(e->prof_events[idx], st));
        // programmatic dependent launch only right after another kernel of the program
        cuda_pdl_chain(!prof && idx > 0 && prog[idx - 1].op != OP_COPY);
        cuda_persist_label(i.label);
        idx++;
        switch (i.op) {
        case OP_EMBED:
            rc = cuda_embed(e->embed, e->d_step + 1, i.n, e->x, c->hidden_size, st, err);
            break;
        case OP_RMSNORM:
            rc = cuda_rmsnorm(i.src, c->hidden_size, i.weight, i.dim, c->rms_eps, i.dst, c->hidden_size, i.n, st, err);
            break;
        case OP_GEMV:
            rc = cuda_gemv(i.gemv, i.glu, st, err);
            break;
        case OP_QKV_ROPE: {
            CudaLayer &L = e->layers[i.layer];
            rc = cuda_qkv_rope_store(e->qkv, e->qkv_ld, L.qkv_map, L.geom, e->d_step, i.n, e->q, L.kcache, L.vcache, st, err);
            break;
        }
        case OP_ATTENTION: {
            CudaLayer &L = e->layers[i.layer];
            rc = cuda_attention(e->q, L.kcache, L.vcache, L.sink, L.geom, e->d_step, i.n, e->max_ctx, e->partial, e->attn,
                                e->attn_ld, st, err);
            break;
        }
        case OP_ROUTE: {
            CudaLayer &L = e->layers[i.layer];
            // the gate/up slots after it (the op kernels' program) may launch before its wait where they wait first
            const bool trigger_first = idx < prog.size() && prog[idx].op == OP_GEMV && !cuda_persist_recorder() &&
                                       cuda_gemv_waits_first(prog[idx].gemv, prog[idx].glu);
            rc = cuda_route(e->router_logits, L.router_bias, c->n_routed_experts, c->experts_per_tok, c->norm_topk_prob,
                            c->routed_scaling_factor, i.n, e->route_ids, e->route_w, st, err, trigger_first);
            break;
        }
        case OP_ARGMAX:
            rc = cuda_argmax(e->logits, e->vocab_local, e->vocab_local, i.n, e->vocab_base, e->d_argmax, st, err);
            break;
        case OP_COPY:   // a kernel while the persistent kernel records the step
            if (cuda_persist_recorder())
                rc = cuda_copy_device(i.copy_dst, i.copy_src, i.copy_bytes, st, err);
            else
                CUDA_CHECK(cudaMemcpyAsync(i.copy_dst, i.copy_src, i.copy_bytes, cudaMemcpyDeviceToDevice, st));
            break;
        }
        if (rc) {
            cuda_pdl_chain(false);
            return mimo_fail_prefix(err, "cuda step op %d (layer %d)", (int)i.op, i.layer);
        }
    }
    cuda_pdl_chain(false);
    if (prof) {
        CUDA_CHECK(cudaEventRecord(e->prof_events[prog.size()], st));
        CUDA_CHECK(cudaEventSynchronize(e->prof_events[prog.size()]));
        for (size_t j = 0; j < prog.size(); j++) {
            float ms = 0;
            CUDA_CHECK(cudaEventElapsedTime(&ms, e->prof_events[j], e->prof_events[j + 1]));
            size_t k = 0;
            const int n = prog[0].n;
            while (k < e->prof.size() && (strcmp(e->prof[k].label, prog[j].label) || e->prof[k].n != n))
                k++;
            if (k == e->prof.size())
                e->prof.push_back(CudaProfileEntry{prog[j].label, n, 0.0, 0});
            e->prof[k].total_us += ms * 1000.0;
            e->prof[k].count++;
        }
    }
    return 0;
}

// ---- the backend table ----

int cuda_run_step_program(CudaEngine *e, int n, mimo_error *err)
{
    build_step(e, n, true, true, e->program);
    return cuda_run_program(e, e->program, err);
}

static int run_chunk(CudaEngine *e, int n, bool with_head, mimo_error *err)
{
    if (cuda_persistent_runs(e, n, with_head))
        return cuda_persistent_step(e, n, err);
    if (e->opts.exec == MIMO_EXEC_GRAPH || e->opts.exec == MIMO_EXEC_PERSISTENT) {
        cudaGraphExec_t *slot = &e->graphs[n];
        if (!with_head) {
            build_step(e, n, false, true, e->program);   // rare (hidden states only): run eagerly
            return cuda_run_program(e, e->program, err);
        }
        return cuda_launch_captured(e, slot, [&] { return cuda_run_step_program(e, n, err); }, err);
    }
    build_step(e, n, with_head, true, e->program);
    return cuda_run_program(e, e->program, err);
}


static int cuda_forward(void *impl, const int32_t *tokens, int n, mimo_forward_out *out, mimo_error *err)
{
    CudaEngine *e = (CudaEngine *)impl;
    const int H = e->cfg.hidden_size, V = e->cfg.vocab_size;
    const bool with_head = out->logits || out->argmax;
    if (e->length + n > e->max_ctx)
        return mimo_fail(err, "cuda: context full (%d + %d > max_context %d)", e->length, n, e->max_ctx);
    for (int off = 0; off < n; off += MIMO_MAX_DECODE_POSITIONS) {
        const int m = n - off < MIMO_MAX_DECODE_POSITIONS ? n - off : MIMO_MAX_DECODE_POSITIONS;
        e->h_step[0] = e->length;
        memcpy(e->h_step + 1, tokens + off, (size_t)m * sizeof(int32_t));
        CUDA_CHECK(cudaMemcpyAsync(e->d_step, e->h_step, (size_t)(1 + m) * sizeof(int), cudaMemcpyHostToDevice, e->stream));
        if (run_chunk(e, m, with_head, err))
            return -1;
        if (out->logits) {
            for (int t = 0; t < m; t++) {
                float *row = out->logits + (size_t)(off + t) * V;
                if (e->nshard > 1)
                    for (int v = 0; v < V; v++)
                        row[v] = -INFINITY;
                CUDA_CHECK(cudaMemcpyAsync(row + e->vocab_base, e->logits + (size_t)t * e->vocab_local,
                                           (size_t)e->vocab_local * sizeof(float), cudaMemcpyDeviceToHost, e->stream));
            }
        }
        if (out->argmax)
            CUDA_CHECK(cudaMemcpyAsync(out->argmax + off, e->d_argmax, (size_t)m * sizeof(int32_t), cudaMemcpyDeviceToHost,
                                       e->stream));
        if (out->hidden)
            for (int j = 0; j < e->opts.n_hidden_layers; j++) {
                float *dst = out->hidden + ((size_t)j * n + off) * H;
                if (e->opts.hidden_layers[j] >= e->n_layers) {
                    memset(dst, 0, (size_t)m * H * sizeof(float));
                    continue;
                }
                CUDA_CHECK(cudaMemcpyAsync(dst, e->hidden_out + (size_t)j * MIMO_MAX_DECODE_POSITIONS * H,
                                           (size_t)m * H * sizeof(float), cudaMemcpyDeviceToHost, e->stream));
            }
        CUDA_CHECK(cudaStreamSynchronize(e->stream));
        if (cuda_persistent_runs(e, m, with_head) && cuda_persistent_check(e, err))
            return -1;
        e->length += m;
    }
    return 0;
}

static int cuda_truncate(void *impl, int length, mimo_error *err)
{
    CudaEngine *e = (CudaEngine *)impl;
    // SWA layers keep a ring of window + 16 slots: a rollback of up to 16 positions never loses a
    // live key; a deeper one could (the slots may have been reused), so it is refused.
    bool has_swa = false;
    int ring = 0;
    for (int l = 0; l < e->n_layers; l++)
        if (e->layers[l].geom.window > 0) {
            has_swa = true;
            ring = e->layers[l].geom.ring;
        }
    if (length != 0 && has_swa && length < e->length - MIMO_MAX_DECODE_POSITIONS && e->length > ring)
        return mimo_fail(err, "cuda: cannot roll back from %d to %d: the sliding-window ring buffer keeps only %d "
                              "positions of slack", e->length, length, MIMO_MAX_DECODE_POSITIONS);
    e->length = length;
    return 0;
}

static int cuda_length(const void *impl) { return ((const CudaEngine *)impl)->length; }

static int cuda_sync(void *impl, mimo_error *err)
{
    CudaEngine *e = (CudaEngine *)impl;
    CUDA_CHECK(cudaStreamSynchronize(e->stream));
    return 0;
}

static void cuda_destroy(void *impl)
{
    CudaEngine *e = (CudaEngine *)impl;
    if (!e)
        return;
    cudaStreamSynchronize(e->stream);
    if (!e->prof.empty()) {
        double total = 0;
        for (const CudaProfileEntry &p : e->prof)
            total += p.total_us;
        fprintf(stderr, "cuda profile (eager steps, events around each op, by positions per step): %.1f us in all\n", total);
        for (const CudaProfileEntry &p : e->prof)
            fprintf(stderr, "  n=%-2d %-16s %8ld calls %12.1f us %9.2f us/call %5.1f%%\n", p.n, p.label, p.count,
                    p.total_us, p.total_us / p.count, 100.0 * p.total_us / total);
    }
    for (cudaEvent_t ev : e->prof_events)
        cudaEventDestroy(ev);
    for (int i = 0; i <= MIMO_MAX_DECODE_POSITIONS; i++)
        if (e->graphs[i])
            cudaGraphExecDestroy(e->graphs[i]);
    cuda_drafter_destroy(e->drafter);
    cuda_round_destroy(e->round);
    cuda_persistent_destroy(e->persist);
    for (void *p : e->allocations)
        cudaFree(p);
    if (e->h_step)
        cudaFreeHost(e->h_step);
    if (e->stream)
        cudaStreamDestroy(e->stream);
    delete e;
}

// The DFlash drafter: cuda_drafter.cu does the work.
static int cuda_attach_drafter(void *impl, const mimo_drafter_weights *d, mimo_error *err)
{
    return cuda_drafter_attach((CudaEngine *)impl, d, err);
}
static int cuda_drafter_append_op(void *impl, const float *target_hidden, int n, mimo_error *err)
{
    return cuda_drafter_append((CudaEngine *)impl, target_hidden, n, err);
}
static int cuda_drafter_truncate_op(void *impl, int n_context, mimo_error *err)
{
    return cuda_drafter_truncate((CudaEngine *)impl, n_context, err);
}
static int cuda_drafter_length_op(const void *impl) { return cuda_drafter_length((const CudaEngine *)impl); }
static int cuda_draft(void *impl, const int32_t *block, int B, mimo_forward_out *out, mimo_error *err)
{
    return cuda_drafter_draft((CudaEngine *)impl, block, B, out, err);
}

static bool cuda_has_device_round_op(const void *impl, const mimo_sampling_params *p)
{
    return cuda_has_device_round((const CudaEngine *)impl, p);
}
static int cuda_device_round_op(void *impl, const mimo_round_request *rq, mimo_round_result *rs, mimo_error *err)
{
    return cuda_device_round((CudaEngine *)impl, rq, rs, err);
}

// The persistent kernel's phase stamps (engine.h): kept by cuda_persistent_check.
static int cuda_set_phase_stamps(void *impl, bool on, mimo_error *err)
{
    CudaEngine *e = (CudaEngine *)impl;
    CUDA_CHECK(cudaStreamSynchronize(e->stream));
    e->phase_stamps = on;
    e->phase_log.clear();
    e->phase_begin.clear();
    e->phase_dropped = 0;
    cuda_round_drop_graphs(e->round);   // a round's persistent step was captured with the old setting
    return 0;
}
static int cuda_phase_steps(const void *impl, long *dropped)
{
    const CudaEngine *e = (const CudaEngine *)impl;
    if (dropped)
        *dropped = e->phase_dropped;
    return (int)e->phase_begin.size();
}
static const mimo_phase *cuda_phase_step(const void *impl, int s, int *n)
{
    const CudaEngine *e = (const CudaEngine *)impl;
    *n = 0;
    if (s < 0 || (size_t)s >= e->phase_begin.size())
        return nullptr;
    const size_t b = e->phase_begin[s], end = (size_t)s + 1 < e->phase_begin.size() ? e->phase_begin[s + 1] : e->phase_log.size();
    *n = (int)(end - b);
    return e->phase_log.data() + b;
}

static const mimo_backend_ops cuda_ops = {
    "cuda", cuda_forward, cuda_truncate, cuda_length, cuda_sync, cuda_destroy,
    cuda_attach_drafter, cuda_drafter_append_op, cuda_drafter_truncate_op, cuda_drafter_length_op, cuda_draft,
    cuda_has_device_round_op, cuda_device_round_op, cuda_set_phase_stamps, cuda_phase_steps, cuda_phase_step,
};

// ---- creation ----

static int shard_div(int value, int count, const char *what, mimo_error *err)
{
    if (value % count)
        return mimo_fail(err, "cuda: shard %d-way does not divide %s (%d)", count, what, value);
    return 0;
}

// Layer geometry for this rank, activations, caches; weights come after (upload or synthetic).
static int engine_init(CudaEngine *e, const mimo_config *cfg, const mimo_engine_options *o, mimo_error *err)
{
    e->cfg = *cfg;
    e->opts = *o;
    e->n_layers = o->layers_limit > 0 ? o->layers_limit : cfg->num_layers;
    e->rank = o->shard_rank;
    e->nshard = o->shard_count > 0 ? o->shard_count : 1;
    e->max_ctx = o->max_context;
    const char *prof_env = getenv("MIMO_CUDA_PROFILE");
    e->profile = prof_env && prof_env[0] == '1' && o->exec == MIMO_EXEC_EAGER;
    if (cfg->n_group > 1 && cfg->topk_group < cfg->n_group)
        return mimo_fail(err, "cuda: group-limited routing (n_group %d, topk_group %d) is not supported on the GPU",
                         cfg->n_group, cfg->topk_group);
    if (2 * cfg->n_routed_experts * 4 > 48 * 1024)
        return mimo_fail(err, "cuda: %d routed experts exceed the router kernel's limit", cfg->n_routed_experts);
    const int N = e->nshard;
    if (shard_div(cfg->vocab_size, N, "vocab_size", err) || shard_div(cfg->full.n_heads, N, "full-attention heads", err) ||
        shard_div(cfg->full.n_kv_heads, N, "full-attention kv heads", err) ||
        shard_div(cfg->swa.n_heads, N, "SWA heads", err) || shard_div(cfg->swa.n_kv_heads, N, "SWA kv heads", err) ||
        shard_div(cfg->moe_intermediate_size, N, "moe_intermediate_size", err) ||
        shard_div(cfg->intermediate_size, N, "intermediate_size", err))
        return -1;
    e->vocab_local = cfg->vocab_size / N;
    e->vocab_base = e->rank * e->vocab_local;

    int dev_count = 0;
    CUDA_CHECK(cudaGetDeviceCount(&dev_count));
    if (o->device < 0 || o->device >= dev_count)
        return mimo_fail(err, "cuda: device %d does not exist (%d devices)", o->device, dev_count);
    CUDA_CHECK(cudaSetDevice(o->device));
    CUDA_CHECK(cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking));
    if (cuda_gemv_prepare(err))
        return -1;

    // Memory check before any large allocation.
    const int T = MIMO_MAX_DECODE_POSITIONS, H = cfg->hidden_size, k = cfg->experts_per_tok;
    uint64_t kv_bytes = 0;
    int max_qkv = 0, max_q = 0, max_attn = 0;
    size_t max_partial = 0;
    e->layers.resize(e->n_layers);
    for (int l = 0; l < e->n_layers; l++) {
        const mimo_attn_shape *a = mimo_layer_attn(cfg, l);
        CudaLayer &L = e->layers[l];
        memset(&L, 0, sizeof L);
        L.is_swa = cfg->layer_is_swa[l];
        L.is_moe = cfg->layer_is_moe[l];
        AttnGeom &g = L.geom;
        g.n_heads = a->n_heads / N;
        g.n_kv = a->n_kv_heads / N;
        g.dqk = a->head_dim;
        g.dv = a->v_head_dim;
        g.rope_dim = a->rope_dim;
        g.theta = a->rope_theta;
        g.value_scale = cfg->attention_value_scale;
        g.window = a->window;
        // SWA: a ring of window + 16 slots (capped at the context: then it never wraps).
        g.ring = e->max_ctx;
        if (a->window > 0 && a->window + MIMO_MAX_DECODE_POSITIONS < e->max_ctx)
            g.ring = a->window + MIMO_MAX_DECODE_POSITIONS;
        kv_bytes += (uint64_t)g.ring * g.n_kv * (g.dqk + g.dv) * sizeof(float);
        int qkv_rows = g.n_heads * g.dqk + g.n_kv * (g.dqk + g.dv);
        max_qkv = qkv_rows > max_qkv ? qkv_rows : max_qkv;
        max_q = g.n_heads * g.dqk > max_q ? g.n_heads * g.dqk : max_q;
        max_attn = g.n_heads * g.dv > max_attn ? g.n_heads * g.dv : max_attn;
        size_t pf = cuda_attention_partial_floats(g, e->max_ctx, T);
        max_partial = pf > max_partial ? pf : max_partial;
    }
    // The full-model storage map keeps storage rows (possibly interleaved) in qkv: size for the padded groups.
    const int qkv_storage_rows = max_qkv + 256;
    e->qkv_ld = gpu_pad_cols(qkv_storage_rows);
    e->q_ld = max_q;
    e->attn_ld = gpu_pad_cols(max_attn);
    e->mlp_ld = gpu_pad_cols(cfg->intermediate_size / N > cfg->moe_intermediate_size / N ? cfg->intermediate_size / N
                                                                                       : cfg->moe_intermediate_size / N);
    e->act_ld = gpu_pad_cols(cfg->moe_intermediate_size / N);
    uint64_t act_floats = (uint64_t)T * H * 2 + (uint64_t)T * e->qkv_ld + (uint64_t)T * max_q + (uint64_t)T * e->attn_ld +
                          max_partial + (uint64_t)T * cfg->n_routed_experts + (uint64_t)T * k * 2 +
                          (uint64_t)T * k * e->act_ld + (uint64_t)T * k * H + (uint64_t)T * e->mlp_ld +
                          (uint64_t)T * e->vocab_local + (uint64_t)o->n_hidden_layers * T * H;
    uint64_t need = cuda_weight_bytes(cfg, o, e->n_layers) + kv_bytes + act_floats * 4 + (64ull << 20);
    size_t free_b = 0, total_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    if (need > free_b)
        return mimo_fail(err, "cuda: not enough device memory: this model%s needs %.2f GiB (weights %.2f, KV %.2f), "
                              "the device has %.2f GiB free of %.2f (try --layers K, a smaller --max-context or --shard)",
                         e->nshard > 1 ? " shard" : "", need / 1073741824.0,
                         cuda_weight_bytes(cfg, o, e->n_layers) / 1073741824.0, kv_bytes / 1073741824.0,
                         free_b / 1073741824.0, total_b / 1073741824.0);

    void *v;
    for (int l = 0; l < e->n_layers; l++) {
        CudaLayer &L = e->layers[l];
        if (alloc_f(e, &L.kcache, (size_t)L.geom.ring * L.geom.n_kv * L.geom.dqk, err) ||
            alloc_f(e, &L.vcache, (size_t)L.geom.ring * L.geom.n_kv * L.geom.dv, err))
            return -1;
        if (cuda_upload_rope_table(e, L.geom.theta, L.geom.rope_dim, &L.geom.inv_freq, err))
            return -1;
    }
    if (cuda_engine_alloc(e, &v, (1 + T) * sizeof(int), err))
        return -1;
    e->d_step = (int *)v;
    CUDA_CHECK(cudaMallocHost((void **)&e->h_step, (1 + T) * sizeof(int)));
    // x and h carry 32 floats of slack: kernels read inputs up to the padded width of a row.
    if (alloc_f(e, &e->x, (size_t)T * H + 32, err) || alloc_f(e, &e->h, (size_t)T * H + 32, err) ||
        alloc_f(e, &e->qkv, (size_t)T * e->qkv_ld, err) || alloc_f(e, &e->q, (size_t)T * max_q, err) ||
        alloc_f(e, &e->attn, (size_t)T * e->attn_ld, err) || alloc_f(e, &e->partial, max_partial, err) ||
        alloc_f(e, &e->router_logits, (size_t)T * (cfg->n_routed_experts > 0 ? cfg->n_routed_experts : 1), err) ||
        alloc_f(e, &e->route_w, (size_t)T * (k > 0 ? k : 1), err) ||
        alloc_f(e, &e->act, (size_t)T * (k > 0 ? k : 1) * e->act_ld, err) ||
        alloc_f(e, &e->yslot, (size_t)T * (k > 0 ? k : 1) * H, err) || alloc_f(e, &e->mlp, (size_t)T * e->mlp_ld, err) ||
        alloc_f(e, &e->logits, (size_t)T * e->vocab_local, err) ||
        alloc_f(e, &e->hidden_out, (size_t)(o->n_hidden_layers > 0 ? o->n_hidden_layers : 1) * T * H, err))
        return -1;
    if (cuda_engine_alloc(e, &v, (size_t)T * (k > 0 ? k : 1) * sizeof(int32_t), err))
        return -1;
    e->route_ids = (int32_t *)v;
    CUDA_CHECK(cudaMemset(e->route_ids, 0, (size_t)T * (k > 0 ? k : 1) * sizeof(int32_t)));
    if (cuda_engine_alloc(e, &v, (size_t)T * sizeof(int32_t), err))
        return -1;
    e->d_argmax = (int32_t *)v;
    if (cuda_alloc_split_workspace(e, &e->split, err))
        return -1;
    if (cuda_engine_alloc(e, &v, (size_t)2 * MIMO_MAX_DECODE_POSITIONS * MIMO_CUDA_NORM_PARTIALS_MAX * sizeof(double), err))
        return -1;
    e->norm_partials = (double *)v;
    if (cuda_engine_alloc(e, &v, (size_t)MIMO_MAX_DECODE_POSITIONS * sizeof(float), err))
        return -1;
    e->norm_factor = (float *)v;
    // Unwritten activations read as zeros, never as garbage (padding columns of act / attn / mlp).
    CUDA_CHECK(cudaMemset(e->act, 0, (size_t)T * (k > 0 ? k : 1) * e->act_ld * sizeof(float)));
    CUDA_CHECK(cudaMemset(e->attn, 0, (size_t)T * e->attn_ld * sizeof(float)));
    CUDA_CHECK(cudaMemset(e->mlp, 0, (size_t)T * e->mlp_ld * sizeof(float)));
    CUDA_CHECK(cudaMemset(e->x, 0, ((size_t)T * H + 32) * sizeof(float)));
    CUDA_CHECK(cudaMemset(e->h, 0, ((size_t)T * H + 32) * sizeof(float)));
    // Hidden-state outputs past the replayed layers are never written: zeros, as forward reports them.
    CUDA_CHECK(cudaMemset(e->hidden_out, 0, (size_t)(o->n_hidden_layers > 0 ? o->n_hidden_layers : 1) * T * H * sizeof(float)));
    return 0;
}

static int finish_create(CudaEngine *e, const mimo_backend_ops **ops, void **impl, mimo_error *err)
{
    CUDA_CHECK(cudaStreamSynchronize(e->stream));
    CUDA_CHECK(cudaDeviceSynchronize());
    *ops = &cuda_ops;
    *impl = e;
    return 0;
}

extern "C" int mimo_cuda_backend_create(const mimo_weights *w, const mimo_engine_options *o,
                                        const mimo_backend_ops **ops, void **impl, mimo_error *err)
{
    char reason[256];
    if (!mimo_cuda_backend_available(reason, sizeof reason))
        return mimo_fail(err, "cuda backend: %s", reason);
    if (o->shard_count > 1)
        return mimo_fail(err, "cuda backend: shard replay (--shard) runs on weights generated on the device "
                              "(a preset), not on loaded checkpoints");
    CudaEngine *e = new CudaEngine();
    if (engine_init(e, &w->cfg, o, err) || cuda_upload_weights(e, w, err) || finish_create(e, ops, impl, err)) {
        cuda_destroy(e);
        return -1;
    }
    return 0;
}

extern "C" int mimo_cuda_backend_create_synthetic(const mimo_config *cfg, uint64_t seed, const mimo_engine_options *o,
                                                  const mimo_backend_ops **ops, void **impl, mimo_error *err)
{
    char reason[256];
    if (!mimo_cuda_backend_available(reason, sizeof reason))
        return mimo_fail(err, "cuda backend: %s", reason);
    CudaEngine *e = new CudaEngine();
    if (engine_init(e, cfg, o, err) || cuda_synth_weights(e, seed, err) || finish_create(e, ops, impl, err)) {
        cuda_destroy(e);
        return -1;
    }
    return 0;
}
