/* Chrome trace JSON (the Trace Event Format read by Perfetto and chrome://tracing): complete events
 * (ph "X") with ts/dur in µs relative to the run's start, pid = device, tid = stream, and metadata
 * events naming processes and threads. */
#include "trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *kind_cat(const mimo_trace_record *rec)
{
    switch (rec->kind) {
    case MIMO_TRACE_MEMCPY:
    case MIMO_TRACE_MEMSET: return "memcpy";
    case MIMO_TRACE_SYNC: return "sync";
    case MIMO_TRACE_PHASE: return mimo_trace_category(MIMO_TRACE_KERNEL, rec->name);
    case MIMO_TRACE_KERNEL:
    default: return mimo_trace_category(rec->kind, rec->name);
    }
}

/* Host waits overlap the kernels they wait for, and Perfetto wants the events of one thread to nest:
 * synchronization records get threads of their own. */
#define SYNC_TID_BASE 1000000000u
static uint32_t event_tid(const mimo_trace_record *rec)
{
    if (rec->kind != MIMO_TRACE_SYNC)
        return rec->stream;
    return rec->stream == UINT32_MAX ? SYNC_TID_BASE : SYNC_TID_BASE + 1 + rec->stream % SYNC_TID_BASE;
}

static int by_start(const void *a, const void *b)
{
    const mimo_trace_record *const *x = a, *const *y = b;
    if ((*x)->start_ns != (*y)->start_ns)
        return (*x)->start_ns < (*y)->start_ns ? -1 : 1;
    return ((*x)->end_ns > (*y)->end_ns) - ((*x)->end_ns < (*y)->end_ns);
}

int mimo_trace_write_chrome(const mimo_trace_records *r, const char *path, mimo_error *err)
{
    /* Times relative to the run's start; a record that CUPTI stamped before it (it can happen for work
     * queued just before tracing began) moves the origin back so no time is negative. */
    uint64_t origin = r->origin_ns;
    for (size_t i = 0; i < r->n; i++)
        if (r->records[i].start_ns < origin)
            origin = r->records[i].start_ns;
    const mimo_trace_record **sorted = mimo_xcalloc(r->n ? r->n : 1, sizeof *sorted);
    for (size_t i = 0; i < r->n; i++)
        sorted[i] = &r->records[i];
    qsort(sorted, r->n, sizeof *sorted, by_start);

    json_t *events = json_array();
    /* Metadata: one process per device, one thread per (device, stream); few of each, so a list. */
    uint32_t (*seen)[2] = NULL;
    size_t n_seen = 0;
    for (size_t i = 0; i < r->n; i++) {
        const mimo_trace_record *rec = sorted[i];
        uint32_t tid = event_tid(rec);
        bool new_device = true, new_stream = true;
        for (size_t j = 0; j < n_seen; j++) {
            if (seen[j][0] == rec->device) {
                new_device = false;
                if (seen[j][1] == tid)
                    new_stream = false;
            }
        }
        if (!new_stream)
            continue;
        seen = mimo_xrealloc(seen, (n_seen + 1) * sizeof *seen);
        seen[n_seen][0] = rec->device;
        seen[n_seen][1] = tid;
        n_seen++;
        if (new_device)
            json_array_append_new(events, json_pack("{s:s, s:s, s:I, s:I, s:{s:o}}", "name", "process_name", "ph",
                                                    "M", "pid", (json_int_t)rec->device, "tid", (json_int_t)0,
                                                    "args", "name", json_sprintf("GPU %u", rec->device)));
        json_array_append_new(events, json_pack("{s:s, s:s, s:I, s:I, s:{s:o}}", "name", "thread_name", "ph", "M",
                                                "pid", (json_int_t)rec->device, "tid", (json_int_t)tid, "args", "name",
                                                rec->kind != MIMO_TRACE_SYNC ? json_sprintf("stream %u", rec->stream)
                                                : rec->stream == UINT32_MAX ? json_string("synchronization (context)")
                                                : json_sprintf("synchronization (stream %u)", rec->stream)));
    }
    free(seen);
    for (size_t i = 0; i < r->n; i++) {
        const mimo_trace_record *rec = sorted[i];
        json_t *args = json_object();
        if (rec->kind == MIMO_TRACE_MEMCPY || rec->kind == MIMO_TRACE_MEMSET)
            json_object_set_new(args, "bytes", json_integer((json_int_t)rec->bytes));
        if (rec->kind == MIMO_TRACE_KERNEL) {
            json_object_set_new(args, "grid", json_pack("[i,i,i]", rec->grid[0], rec->grid[1], rec->grid[2]));
            json_object_set_new(args, "block", json_pack("[i,i,i]", rec->block[0], rec->block[1], rec->block[2]));
        }
        json_array_append_new(events, json_pack("{s:s, s:s, s:s, s:f, s:f, s:I, s:I, s:o}", "name", rec->name,
                                                "cat", kind_cat(rec), "ph", "X",
                                                "ts", (double)(rec->start_ns - origin) / 1e3,
                                                "dur", (double)(rec->end_ns - rec->start_ns) / 1e3,
                                                "pid", (json_int_t)rec->device, "tid", (json_int_t)event_tid(rec),
                                                "args", args));
    }
    free(sorted);
    json_t *root = json_pack("{s:o, s:s, s:{s:s, s:I, s:I}}", "traceEvents", events, "displayTimeUnit", "ns",
                             "otherData", "source", "mimo-bench CUPTI activity", "dropped_records",
                             (json_int_t)r->dropped, "origin_ns", (json_int_t)origin);

    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        json_decref(root);
        return mimo_fail(err, "%s: cannot write trace: %s", tmp, strerror(errno));
    }
    int dump_rc = json_dumpf(root, f, JSON_COMPACT);
    json_decref(root);
    if (fputc('\n', f) == EOF)
        dump_rc = -1;
    if (fclose(f) != 0 || dump_rc != 0) {
        unlink(tmp);
        return mimo_fail(err, "%s: writing the trace failed", path);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mimo_fail(err, "%s: cannot rename the trace into place: %s", path, strerror(e));
    }
    return 0;
}
