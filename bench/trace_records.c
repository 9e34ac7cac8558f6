/* Trace records (whatever collected them), the kernel categoriser and the per-kernel / per-category
 * summary that goes into the results JSON as "kernels". Plain C: tested without a GPU. */
#include "trace.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

const char *const mimo_trace_category_names[MIMO_TRACE_N_CATEGORIES] = {
    "attention", "moe", "dense-gemv", "norm/rope", "sampling/verify", "draft", "comm", "memcpy", "other"};

/* Substrings of (lower-cased) kernel names, checked in this order: the first rule that matches wins,
 * so the more specific groups come first ("drafter_attention" is draft work, "moe_gemv" and
 * "router_topk" are MoE, "attn_norm" is a norm; the engine's expert slots launch as "gemv1_expert_kernel"
 * and its down projection with the MoE combine as "gemv1_combine_kernel": MoE). */
static const struct {
    const char *category;
    const char *needles[12];
} rules[] = {
    {"draft", {"draft", "dflash", NULL}},
    {"comm", {"nccl", "allreduce", "all_reduce", "allgather", "all_gather", "reduce_scatter", "communicat", NULL}},
    {"norm/rope", {"norm", "rope", "rotary", NULL}},
    {"moe", {"moe", "expert", "router", "routing", "route_", "mxfp4", "gate_up", "combine", NULL}},
    {"sampling/verify", {"sample", "sampling", "argmax", "verify", "accept", "topk", "top_k", "softmax_logits",
                         "logits", NULL}},
    {"attention", {"attn", "attention", "flash", "sdpa", "kv_cache", "kvcache", NULL}},
    {"dense-gemv", {"gemv", "gemm", "matmul", "linear", "lm_head", "proj", "wgmma", "mlp", "embed", NULL}},
    {"memcpy", {"memcpy", "memset", "copy", NULL}},
};

const char *mimo_trace_category(mimo_trace_kind kind, const char *name)
{
    if (kind == MIMO_TRACE_MEMCPY || kind == MIMO_TRACE_MEMSET)
        return "memcpy";
    if (kind == MIMO_TRACE_SYNC)
        return "other";
    if (!name)
        return "other";
    char lower[512];
    size_t n = 0;
    for (; name[n] && n + 1 < sizeof lower; n++)
        lower[n] = (char)tolower((unsigned char)name[n]);
    lower[n] = '\0';
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++)
        for (const char *const *needle = rules[r].needles; *needle; needle++)
            if (strstr(lower, *needle))
                return rules[r].category;
    return "other";
}

void mimo_trace_records_init(mimo_trace_records *r, uint64_t origin_ns)
{
    memset(r, 0, sizeof *r);
    r->origin_ns = origin_ns;
}

int mimo_trace_records_add(mimo_trace_records *r, mimo_trace_kind kind, const char *name, uint64_t start_ns,
                           uint64_t end_ns, uint32_t device, uint32_t stream, uint64_t bytes, mimo_error *err)
{
    if (end_ns < start_ns)
        return mimo_fail(err, "trace record '%s': ends (%llu ns) before it starts (%llu ns)", name ? name : "?",
                         (unsigned long long)end_ns, (unsigned long long)start_ns);
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 1024;
        r->records = mimo_xrealloc(r->records, r->cap * sizeof *r->records);
    }
    mimo_trace_record *rec = &r->records[r->n++];
    memset(rec, 0, sizeof *rec);
    rec->kind = kind;
    rec->name = mimo_xstrdup(name ? name : "?");
    rec->start_ns = start_ns;
    rec->end_ns = end_ns;
    rec->device = device;
    rec->stream = stream;
    rec->bytes = bytes;
    return 0;
}

void mimo_trace_records_free(mimo_trace_records *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->records[i].name);
    free(r->records);
    memset(r, 0, sizeof *r);
}

typedef struct {
    const char *name;
    const char *category;
    long   count;
    double total_us;
    double exclusive_us;
} kernel_total;

static int by_stream_then_start(const void *a, const void *b)
{
    const mimo_trace_record *x = *(const mimo_trace_record *const *)a, *y = *(const mimo_trace_record *const *)b;
    if (x->device != y->device)
        return x->device < y->device ? -1 : 1;
    if (x->stream != y->stream)
        return x->stream < y->stream ? -1 : 1;
    if (x->start_ns != y->start_ns)
        return x->start_ns < y->start_ns ? -1 : 1;
    return (x->end_ns > y->end_ns) - (x->end_ns < y->end_ns);
}

/* Each work record's exclusive time (us), indexed like r->records: the part of its interval after every
 * earlier-starting record of its stream has ended. With programmatic dependent launch a kernel's record
 * starts while its predecessor still runs (its blocks wait on the device), so the records of a stream
 * overlap and their durations add up to more than the stream was busy; the exclusive times add up to
 * exactly that (the union of the stream's intervals), each kernel charged with what it added. */
static double *exclusive_times(const mimo_trace_records *r, const mimo_trace_record **work, size_t n_work)
{
    double *excl = mimo_xcalloc(r->n ? r->n : 1, sizeof *excl);
    const mimo_trace_record **order = mimo_xcalloc(n_work ? n_work : 1, sizeof *order);
    memcpy(order, work, n_work * sizeof *order);
    qsort(order, n_work, sizeof *order, by_stream_then_start);
    uint64_t busy_until = 0;
    for (size_t i = 0; i < n_work; i++) {
        const mimo_trace_record *rec = order[i];
        if (i == 0 || rec->device != order[i - 1]->device || rec->stream != order[i - 1]->stream)
            busy_until = 0;
        const uint64_t from = rec->start_ns > busy_until ? rec->start_ns : busy_until;
        excl[rec - r->records] = rec->end_ns > from ? (double)(rec->end_ns - from) / 1e3 : 0.0;
        if (rec->end_ns > busy_until)
            busy_until = rec->end_ns;
    }
    free(order);
    return excl;
}

static int by_total_desc(const void *a, const void *b)
{
    const kernel_total *x = a, *y = b;
    if (x->total_us != y->total_us)
        return x->total_us < y->total_us ? 1 : -1;
    return strcmp(x->name, y->name);
}

static int by_name(const void *a, const void *b)
{
    const mimo_trace_record *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

json_t *mimo_trace_summary(const mimo_trace_records *r, long rounds)
{
    /* Group kernel/memcpy/memset records by name (sort pointers by name, then run-length). Syncs are
     * host waits, not GPU work: counted apart, not in the busy time. */
    const mimo_trace_record **sorted = mimo_xcalloc(r->n ? r->n : 1, sizeof *sorted);
    size_t n_work = 0, n_sync = 0;
    double sync_us = 0;
    /* Phases of a persistent kernel lie inside that kernel's own record: they are its breakdown, kept
     * apart so that no time is counted twice. */
    double phase_us[MIMO_TRACE_N_CATEGORIES] = {0};
    size_t n_phase = 0;
    for (size_t i = 0; i < r->n; i++) {
        const mimo_trace_record *rec = &r->records[i];
        double us = (double)(rec->end_ns - rec->start_ns) / 1e3;
        if (rec->kind == MIMO_TRACE_SYNC) {
            n_sync++;
            sync_us += us;
        } else if (rec->kind == MIMO_TRACE_PHASE) {
            const char *cat = mimo_trace_category(MIMO_TRACE_KERNEL, rec->name);
            for (int c = 0; c < MIMO_TRACE_N_CATEGORIES; c++)
                if (!strcmp(mimo_trace_category_names[c], cat))
                    phase_us[c] += us;
            n_phase++;
        } else {
            sorted[n_work++] = rec;
        }
    }
    double *excl = exclusive_times(r, sorted, n_work);
    qsort(sorted, n_work, sizeof *sorted, by_name);
    kernel_total *totals = mimo_xcalloc(n_work ? n_work : 1, sizeof *totals);
    size_t n_kernels = 0;
    double busy_us = 0, exclusive_us = 0;
    double cat_us[MIMO_TRACE_N_CATEGORIES] = {0}, cat_excl_us[MIMO_TRACE_N_CATEGORIES] = {0};
    long cat_count[MIMO_TRACE_N_CATEGORIES] = {0};
    for (size_t i = 0; i < n_work; i++) {
        const mimo_trace_record *rec = sorted[i];
        double us = (double)(rec->end_ns - rec->start_ns) / 1e3;
        if (n_kernels == 0 || strcmp(totals[n_kernels - 1].name, rec->name) != 0) {
            totals[n_kernels].name = rec->name;
            totals[n_kernels].category = mimo_trace_category(rec->kind, rec->name);
            n_kernels++;
        }
        const double ex = excl[rec - r->records];
        totals[n_kernels - 1].count++;
        totals[n_kernels - 1].total_us += us;
        totals[n_kernels - 1].exclusive_us += ex;
        busy_us += us;
        exclusive_us += ex;
        for (int c = 0; c < MIMO_TRACE_N_CATEGORIES; c++)
            if (!strcmp(mimo_trace_category_names[c], totals[n_kernels - 1].category)) {
                cat_us[c] += us;
                cat_excl_us[c] += ex;
                cat_count[c]++;
            }
    }
    free(excl);
    qsort(totals, n_kernels, sizeof *totals, by_total_desc);

    json_t *cats = json_object();
    for (int c = 0; c < MIMO_TRACE_N_CATEGORIES; c++) {
        json_t *o = json_object();
        json_object_set_new(o, "count", json_integer(cat_count[c]));
        json_object_set_new(o, "total_us", json_real(cat_us[c]));
        json_object_set_new(o, "mean_us", cat_count[c] ? json_real(cat_us[c] / (double)cat_count[c]) : json_null());
        json_object_set_new(o, "share", busy_us > 0 ? json_real(cat_us[c] / busy_us) : json_null());
        json_object_set_new(o, "exclusive_us", json_real(cat_excl_us[c]));
        json_object_set_new(o, "exclusive_share", exclusive_us > 0 ? json_real(cat_excl_us[c] / exclusive_us) : json_null());
        if (rounds > 0) {
            json_object_set_new(o, "per_round_us", json_real(cat_us[c] / (double)rounds));
            json_object_set_new(o, "per_round_exclusive_us", json_real(cat_excl_us[c] / (double)rounds));
        }
        json_object_set_new(cats, mimo_trace_category_names[c], o);
    }
    json_t *kernels = json_array();
    for (size_t k = 0; k < n_kernels; k++) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(totals[k].name));
        json_object_set_new(o, "category", json_string(totals[k].category));
        json_object_set_new(o, "count", json_integer(totals[k].count));
        json_object_set_new(o, "total_us", json_real(totals[k].total_us));
        json_object_set_new(o, "mean_us", json_real(totals[k].total_us / (double)totals[k].count));
        json_object_set_new(o, "share", busy_us > 0 ? json_real(totals[k].total_us / busy_us) : json_null());
        json_object_set_new(o, "exclusive_us", json_real(totals[k].exclusive_us));
        json_object_set_new(o, "exclusive_share",
                            exclusive_us > 0 ? json_real(totals[k].exclusive_us / exclusive_us) : json_null());
        if (rounds > 0) {
            json_object_set_new(o, "per_round_us", json_real(totals[k].total_us / (double)rounds));
            json_object_set_new(o, "per_round_exclusive_us", json_real(totals[k].exclusive_us / (double)rounds));
        }
        json_array_append_new(kernels, o);
    }
    free(totals);
    free(sorted);

    json_t *out = json_object();
    json_object_set_new(out, "source", json_string("cupti-activity"));
    json_object_set_new(out, "records", json_integer((json_int_t)r->n));
    json_object_set_new(out, "dropped_records", json_integer((json_int_t)r->dropped));
    json_object_set_new(out, "rounds", rounds > 0 ? json_integer(rounds) : json_null());
    if (rounds <= 0)
        json_object_set_new(out, "rounds_null_reason", json_string("decode rounds of the traced pass unknown"));
    json_object_set_new(out, "gpu_time_us", json_real(busy_us));
    json_object_set_new(out, "share_definition",
                        json_string("share = time / summed GPU time of all kernel, memcpy and memset records "
                                    "(syncs and persistent-kernel phases excluded)"));
    json_object_set_new(out, "gpu_exclusive_us", json_real(exclusive_us));
    json_object_set_new(out, "exclusive_definition",
                        json_string("exclusive = the part of a record's interval after every earlier-starting record "
                                    "of its stream has ended: under programmatic dependent launch a kernel's record "
                                    "starts while its predecessor runs, so durations overlap; exclusive times of a "
                                    "stream add up to the time it was busy (gpu_exclusive_us, summed over streams), "
                                    "each kernel charged with what it added; exclusive_share = exclusive / "
                                    "gpu_exclusive_us"));
    json_object_set_new(out, "sync_count", json_integer((json_int_t)n_sync));
    json_object_set_new(out, "sync_us", json_real(sync_us));
    json_object_set_new(out, "categories", cats);
    if (n_phase > 0) {
        json_t *phases = json_object();
        for (int c = 0; c < MIMO_TRACE_N_CATEGORIES; c++)
            json_object_set_new(phases, mimo_trace_category_names[c], json_real(phase_us[c]));
        json_object_set_new(out, "persistent_phases_us", phases);
        json_object_set_new(out, "persistent_phase_records", json_integer((json_int_t)n_phase));
    }
    json_object_set_new(out, "kernels", kernels);
    return out;
}

static int by_span_start(const void *a, const void *b)
{
    const mimo_trace_span *x = a, *y = b;
    return x->start_ns < y->start_ns ? -1 : x->start_ns > y->start_ns;
}

size_t mimo_trace_kernel_spans(const mimo_trace_records *r, const char *name, mimo_trace_span **out)
{
    mimo_trace_span *s = mimo_xcalloc(r->n ? r->n : 1, sizeof *s);
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) {
        const mimo_trace_record *rec = &r->records[i];
        if (rec->kind == MIMO_TRACE_KERNEL && rec->name && strstr(rec->name, name))
            s[n++] = (mimo_trace_span){rec->start_ns, rec->end_ns, rec->device, rec->stream};
    }
    if (n > 0) {
        qsort(s, n, sizeof *s, by_span_start);
    } else {
        free(s);
        s = NULL;
    }
    *out = s;
    return n;
}

bool mimo_trace_span_matches(const mimo_trace_span *span, uint64_t step_start, uint64_t step_end, int64_t *shift)
{
    *shift = 0;
    if (step_end < step_start || span->end_ns < span->start_ns)
        return false;
    const double kernel = (double)(span->end_ns - span->start_ns), step = (double)(step_end - step_start);
    if (step > kernel + 20e3 || step < kernel * 0.9 - 20e3)
        return false;
    *shift = (int64_t)(span->start_ns - step_start);
    return true;
}
