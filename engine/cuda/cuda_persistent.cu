// Persistent execution (--exec persistent): a one-position step as one kernel launch. The step's
// instruction list is recorded once through the same host launchers that eager mode uses (cuda_launch
// hands each launch to the recorder instead of the stream), each launch becomes a PersistOp (its table
// entry, grid and arguments), and persistent_step_kernel (cuda_kernels.cu) walks the list with all its
// blocks resident, running each op's units in the op's own order. Steps of several positions (prefill
// chunks, DFlash verification) replay their CUDA graphs as in graph mode: the tensor-core GEMV is not in
// the persistent kernel yet.
#include "cuda_engine.cuh"
#include "cuda_persistent.cuh"

#include <algorithm>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string>

struct PersistRecorder {
    std::vector<PersistOp> ops;
    std::vector<std::string> names;   // instruction label : kernel
    const char *label = "";           // the step instruction being recorded (cuda_persist_label)
    size_t dyn_smem = 0;
};

static thread_local PersistRecorder *active_recorder = nullptr;

PersistRecorder *cuda_persist_recorder() { return active_recorder; }

void cuda_persist_label(const char *label)
{
    if (active_recorder)
        active_recorder->label = label;
}

int cuda_persist_record(PersistRecorder *r, const char *name, const void *kernel, dim3 grid, dim3 block, size_t smem,
                        const unsigned char *args, size_t args_size, mimo_error *err)
{
    const int kind = cuda_persist_kind(kernel);
    if (kind < 0)
        return mimo_fail(err, "cuda persistent: %s in this variant is not in the persistent kernel", name);
    // every body runs in blocks of any multiple of 32 threads up to its own (the router's one warp
    // only in warp 0); the persistent kernel's blocks have GEMV_THREADS
    if (block.y != 1 || block.z != 1 || block.x % 32 || block.x > 1024)
        return mimo_fail(err, "cuda persistent: %s launched with a %ux%ux%u block", name, block.x, block.y, block.z);
    if (args_size > PERSIST_ARG_BYTES)
        return mimo_fail(err, "cuda persistent: %s takes %zu bytes of arguments (at most %d)", name, args_size,
                         PERSIST_ARG_BYTES);
    PersistOp op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.grid = make_uint3(grid.x, grid.y, grid.z);
    op.units = grid.x * grid.y * grid.z;
    memcpy(op.args, args, args_size);
    if (op.units == 0)
        return 0;
    r->ops.push_back(op);
    r->names.push_back(std::string(r->label) + ":" + name);
    r->dyn_smem = std::max(r->dyn_smem, smem);
    return 0;
}

// One recorded step on the device.
struct CudaPersistent {
    PersistStep step;      // device arrays (the engine's allocations); step.n_ops instructions
    unsigned *h_status;    // pinned: the last step's status, read after the caller's synchronisation
    int ctas;
    size_t dyn_smem;
    std::vector<std::string> names;
    // The step's timestamps (PersistStep::stamps, 2 x instructions + 1): on the device, and a pinned copy
    // of the last stamped step's. A step is stamped under MIMO_CUDA_PERSIST_PROFILE=1 (profile: per
    // instruction, its last unit's end minus the previous one's, summed over steps by name and printed at
    // destroy) or with the engine's phase stamps on (mimo_engine_set_phase_stamps).
    long long *stamps;
    long long *h_stamps;
    bool profile;
    std::vector<double> profile_us;
    long profile_steps;
};

static size_t stamp_count(int n_ops) { return 2 * (size_t)n_ops + 1; }

// The counters of n instructions (each on its own 128-byte line) and the status word after them.
static size_t counter_bytes(size_t n) { return (n * PERSIST_COUNTER_STRIDE + 1) * sizeof(unsigned); }

// Records the one-position step and puts it on the device.
static int persistent_build(CudaEngine *e, int n, CudaPersistent **out, mimo_error *err)
{
    std::vector<CudaInstr> prog;
    cuda_build_step(e, n, prog);
    PersistRecorder rec;
    active_recorder = &rec;
    const int rc = cuda_run_program(e, prog, err);
    active_recorder = nullptr;
    if (rc)
        return mimo_fail_prefix(err, "cuda persistent: recording the %d-position step", n);
    if (rec.ops.empty())
        return mimo_fail(err, "cuda persistent: the step recorded no work");
    int per_sm = 0, sms = 0, device = 0;
    if (cuda_persistent_occupancy(rec.dyn_smem, &per_sm, err))
        return -1;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    if (per_sm < 1)
        return mimo_fail(err, "cuda persistent: the kernel does not fit an SM with %zu bytes of dynamic shared memory",
                         rec.dyn_smem);
    const char *bps_env = getenv("MIMO_CUDA_PERSIST_BLOCKS_PER_SM");   // A/B: fewer blocks than fit
    if (bps_env && atoi(bps_env) >= 1 && atoi(bps_env) < per_sm)
        per_sm = atoi(bps_env);
    CudaPersistent *p = new CudaPersistent();
    p->ctas = per_sm * sms;
    p->dyn_smem = rec.dyn_smem;
    p->names = rec.names;
    p->profile_steps = 0;
    const char *prof_env = getenv("MIMO_CUDA_PERSIST_PROFILE");
    p->profile = prof_env && prof_env[0] == '1';
    // units round-robin from where the previous instruction's ended: an instruction's first units go to
    // blocks that had none of the previous one, which start its weight loads while that one finishes
    std::vector<std::vector<uint2>> per_block((size_t)p->ctas);
    unsigned first = 0, prev_units = 0;
    for (size_t i = 0; i < rec.ops.size(); i++) {
        PersistOp &op = rec.ops[i];
        op.wait_units = prev_units;
        prev_units = op.units;
        for (unsigned j = 0; j < op.units && j < (unsigned)p->ctas; j++)
            per_block[(first + j) % (unsigned)p->ctas].push_back(make_uint2((unsigned)i, j));
        first = (first + op.units) % (unsigned)p->ctas;
    }
    std::vector<uint2> sched;
    std::vector<unsigned> begin;
    for (const std::vector<uint2> &b : per_block) {
        begin.push_back((unsigned)sched.size());
        sched.insert(sched.end(), b.begin(), b.end());
    }
    begin.push_back((unsigned)sched.size());
    void *ops = nullptr, *done = nullptr, *sch = nullptr, *beg = nullptr, *stamps = nullptr;
    const size_t n_ops = rec.ops.size();
    if (cuda_engine_alloc(e, &ops, n_ops * sizeof(PersistOp), err) ||
        cuda_engine_alloc(e, &done, counter_bytes(n_ops), err) ||
        cuda_engine_alloc(e, &sch, sched.size() * sizeof(uint2), err) ||
        cuda_engine_alloc(e, &beg, begin.size() * sizeof(unsigned), err) ||
        cuda_engine_alloc(e, &stamps, stamp_count((int)n_ops) * sizeof(long long), err)) {
        delete p;
        return -1;
    }
    p->step.ops = (const PersistOp *)ops;
    p->step.sched = (const uint2 *)sch;
    p->step.sched_begin = (const unsigned *)beg;
    p->step.done = (unsigned *)done;
    p->step.status = (unsigned *)done + n_ops * PERSIST_COUNTER_STRIDE;
    p->step.stamps = nullptr;   // per step: p->stamps when it is stamped
    p->stamps = (long long *)stamps;
    p->step.n_ops = (int)n_ops;
    if (p->profile)
        p->profile_us.assign(2 * n_ops, 0.0);
    cudaError_t c = cudaMallocHost((void **)&p->h_status, sizeof(unsigned));
    if (c == cudaSuccess)
        c = cudaMallocHost((void **)&p->h_stamps, stamp_count((int)n_ops) * sizeof(long long));
    if (c != cudaSuccess) {
        cuda_persistent_destroy(p);
        return mimo_fail(err, "cuda persistent: cudaMallocHost failed: %s", cudaGetErrorString(c));
    }
    *p->h_status = 0;
    cudaError_t up = cudaMemcpyAsync(ops, rec.ops.data(), n_ops * sizeof(PersistOp), cudaMemcpyHostToDevice, e->stream);
    if (up == cudaSuccess)
        up = cudaMemcpyAsync(sch, sched.data(), sched.size() * sizeof(uint2), cudaMemcpyHostToDevice, e->stream);
    if (up == cudaSuccess)
        up = cudaMemcpyAsync(beg, begin.data(), begin.size() * sizeof(unsigned), cudaMemcpyHostToDevice, e->stream);
    if (up == cudaSuccess)
        up = cudaStreamSynchronize(e->stream);   // the host vectors are freed on return
    if (up != cudaSuccess) {
        cuda_persistent_destroy(p);
        return mimo_fail(err, "cuda persistent: uploading the step failed: %s", cudaGetErrorString(up));
    }
    *out = p;   // owned by the engine from here (freed by cuda_persistent_destroy)
    return 0;
}

bool cuda_persistent_runs(const CudaEngine *e, int n, bool with_head)
{
    return e->opts.exec == MIMO_EXEC_PERSISTENT && n == 1 && with_head;
}

int cuda_persistent_prepare(CudaEngine *e, int n, mimo_error *err)
{
    return e->persist ? 0 : persistent_build(e, n, &e->persist, err);
}

int cuda_persistent_step(CudaEngine *e, int n, mimo_error *err)
{
    if (cuda_persistent_prepare(e, n, err))
        return -1;
    CudaPersistent *p = e->persist;
    const int ops = p->step.n_ops;
    PersistStep step = p->step;
    if (p->profile || e->phase_stamps)
        step.stamps = p->stamps;
    CUDA_CHECK(cudaMemsetAsync(p->step.done, 0, counter_bytes((size_t)ops), e->stream));
    if (step.stamps)   // the wait and start stamps take the earliest time
        CUDA_CHECK(cudaMemsetAsync(step.stamps + ops, 0x7F, (stamp_count(ops) - ops) * sizeof(long long), e->stream));
    if (cuda_persistent_launch(step, p->ctas, p->dyn_smem, e->stream, err))
        return -1;
    CUDA_CHECK(cudaMemcpyAsync(p->h_status, p->step.status, sizeof(unsigned), cudaMemcpyDeviceToHost, e->stream));
    if (step.stamps)   // the stamps too (the caller synchronises before cuda_persistent_check)
        CUDA_CHECK(cudaMemcpyAsync(p->h_stamps, step.stamps, stamp_count(ops) * sizeof(long long), cudaMemcpyDeviceToHost,
                                   e->stream));
    return 0;
}

// The step's phases into the engine's log: phase i from instruction i - 1's end (the kernel's start for the
// first) to instruction i's end.
static void keep_phases(CudaEngine *e, const CudaPersistent *p)
{
    if (e->phase_begin.size() >= MIMO_PHASE_MAX_STEPS) {
        e->phase_dropped++;
        return;
    }
    const int n = p->step.n_ops;
    e->phase_begin.push_back(e->phase_log.size());
    long long prev = p->h_stamps[2 * n];
    for (int i = 0; i < n; i++) {
        const long long end = p->h_stamps[i];
        mimo_phase ph;
        ph.name = p->names[i].c_str();
        ph.start_ns = (uint64_t)(prev < end ? prev : end);
        ph.end_ns = (uint64_t)end;
        e->phase_log.push_back(ph);
        prev = end;
    }
}

int cuda_persistent_check(CudaEngine *e, mimo_error *err)
{
    CudaPersistent *p = e->persist;
    if (p && e->phase_stamps && *p->h_status == 0)
        keep_phases(e, p);
    if (p && p->profile && *p->h_status == 0) {
        p->profile_steps++;
        for (int i = 1; i < p->step.n_ops; i++) {
            const long long end = p->h_stamps[i], prev = p->h_stamps[i - 1];
            const long long passed = p->h_stamps[p->step.n_ops + i];
            p->profile_us[i] += (double)(end - prev) / 1000.0;
            if (passed < end)   // the wait's share: from the previous instruction's end to the first pass
                p->profile_us[p->step.n_ops + i] += (double)(passed - prev) / 1000.0;
        }
    }
    if (!p || *p->h_status == 0)
        return 0;
    const int i = (int)*p->h_status - 1;
    return mimo_fail(err, "cuda persistent: instruction %d (%s) waited more than %.0f s for instruction %d; the step's "
                          "outputs are invalid",
                     i, i < p->step.n_ops ? p->names[i].c_str() : "?", PERSIST_WAIT_TIMEOUT_NS / 1e9, i - 1);
}

void cuda_persistent_destroy(CudaPersistent *p)
{
    if (!p)
        return;
    if (p->profile_steps > 0) {
        std::vector<std::string> names;
        std::vector<double> us, wait_us;
        std::vector<long> count;
        double total = 0.0;
        for (int i = 1; i < p->step.n_ops; i++) {
            size_t k = std::find(names.begin(), names.end(), p->names[i]) - names.begin();
            if (k == names.size()) {
                names.push_back(p->names[i]);
                us.push_back(0.0);
                wait_us.push_back(0.0);
                count.push_back(0);
            }
            us[k] += p->profile_us[i] / (double)p->profile_steps;
            wait_us[k] += p->profile_us[p->step.n_ops + i] / (double)p->profile_steps;
            count[k]++;
            total += p->profile_us[i] / (double)p->profile_steps;
        }
        fprintf(stderr, "cuda persistent profile (%ld steps, %d blocks; an instruction's last unit's end minus the "
                        "previous one's): %.1f us per step\n", p->profile_steps, p->ctas, total);
        for (size_t k = 0; k < names.size(); k++)
            fprintf(stderr, "  %-40s %4ld per step %9.1f us %8.2f us each (%5.2f to its first pass) %5.1f%%\n",
                    names[k].c_str(), count[k], us[k], us[k] / (double)count[k], wait_us[k] / (double)count[k],
                    100.0 * us[k] / total);
    }
    if (p->h_status)
        cudaFreeHost(p->h_status);
    if (p->h_stamps)
        cudaFreeHost(p->h_stamps);
    delete p;   // its device arrays are the engine's allocations
}
