/* The persistent kernel's own phase timestamps into a trace (HARNESS.md "CUPTI"): a persistent step is
 * one CUPTI record, so the engine stamps each step's instructions on the device's clock and this pairs
 * the traced pass's steps with the persistent kernel's records and appends their phases. */
#include "trace_phases.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

json_t *mimo_trace_add_engine_phases(mimo_trace *t, const mimo_engine *e, const char *kernel_name)
{
    long dropped = 0;
    const int steps = mimo_engine_phase_steps(e, &dropped);
    mimo_trace_span *spans = NULL;
    const size_t n_spans = mimo_trace_kernel_spans(mimo_trace_get_records(t), kernel_name, &spans);
    long added = 0, mismatched = 0, records = 0;
    int64_t shift_min = INT64_MAX, shift_max = INT64_MIN;
    char failure[256] = "";
    /* step k is the k-th record of the kernel: the engine keeps its first MIMO_PHASE_MAX_STEPS steps */
    for (int k = 0; k < steps && (size_t)k < n_spans && !failure[0]; k++) {
        int n = 0;
        const mimo_phase *ph = mimo_engine_phase_step(e, k, &n);
        int64_t shift = 0;
        if (n == 0 || !mimo_trace_span_matches(&spans[k], ph[0].start_ns, ph[n - 1].end_ns, &shift)) {
            mismatched++;
            continue;
        }
        shift_min = shift < shift_min ? shift : shift_min;
        shift_max = shift > shift_max ? shift : shift_max;
        for (int i = 0; i < n; i++) {
            mimo_error err = {""};
            if (mimo_trace_append(t, MIMO_TRACE_PHASE, ph[i].name, ph[i].start_ns + (uint64_t)shift,
                                  ph[i].end_ns + (uint64_t)shift, spans[k].device, spans[k].stream, &err)) {
                snprintf(failure, sizeof failure, "%s", err.msg);
                break;
            }
            records++;
        }
        added++;
    }
    free(spans);
    json_t *info = json_object();
    json_object_set_new(info, "kernel", json_string(kernel_name));
    json_object_set_new(info, "kernel_records", json_integer((json_int_t)n_spans));
    json_object_set_new(info, "steps_stamped", json_integer(steps));
    json_object_set_new(info, "steps_not_kept", json_integer(dropped));
    json_object_set_new(info, "steps_added", json_integer(added));
    json_object_set_new(info, "steps_unmatched",
                        json_integer(mismatched + (steps > (int)n_spans ? steps - (long)n_spans : 0)));
    json_object_set_new(info, "phase_records", json_integer(records));
    /* the two clocks differ by an offset: steps paired with the right records have nearly one shift, a
     * pairing off by a step would spread them by a step's length */
    if (added > 0)
        json_object_set_new(info, "shift_spread_us", json_real((double)(shift_max - shift_min) / 1e3));
    json_object_set_new(info, "definition",
                        json_string("step k of the engine's stamps (%globaltimer) is the k-th record of the kernel, "
                                    "shifted onto the CUPTI clock by that record's start; phase i of a step spans "
                                    "from instruction i - 1's last unit's end (the kernel's first block's start for "
                                    "the first) to its own; a step whose stamped span differs from its record's by "
                                    "more than 10 % + 20 us is not added (unmatched)"));
    if (failure[0])
        json_object_set_new(info, "error", json_string(failure));
    return info;
}
