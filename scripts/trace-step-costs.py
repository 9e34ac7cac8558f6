#!/usr/bin/env python3
"""Where a forward step's time goes inside a stream, from a `mimo-bench run --trace` Chrome trace.

With programmatic dependent launch a kernel is resident (and its record starts) long before its
predecessor ends, so a kernel's own duration says little. What it adds to the step is its *marginal
cost*: its end minus the previous kernel's end in the same stream. This prints, for the steps of one
shape (the kernels between two `embed_kernel` records, grouped by their kernel count), each kernel
name's marginal cost (median over steps, summed within a step) and its share of the step.

The results file of the same run holds a related figure for the whole traced pass, `exclusive_us` per kernel
(bench/trace_records.c): the part of a record after its stream's earlier records ended. The two differ in
idle gaps: here a gap before a kernel is charged to it (a launch gap is a cost of that step), there it is not.

Usage: scripts/trace-step-costs.py TRACE.json [--last N] [--shape K | --all]
  --last N   the last N steps of the chosen shape (default all of them)
  --shape K  the steps of K kernels instead of the most common shape (a DFlash run's verify step, say)
  --all      one table per shape seen at least three times, the most common first
"""
import json
import re
import statistics
import sys
from collections import defaultdict


def short_name(name):
    # "void gemv1_kernel<2, true, 2, 1>(GemvParams, int, int)" -> "gemv1_kernel<2, true, 2, 1>"
    name = re.sub(r"^void ", "", name)
    name = name.replace("(anonymous namespace)::", "")   # the bulk kernels' namespace
    return re.sub(r"\(.*$", "", name)


def int_option(name, default):
    """The positive integer after `name` on the command line, default when absent; exits on a bad value."""
    if name not in sys.argv:
        return default
    i = sys.argv.index(name)
    try:
        value = int(sys.argv[i + 1])
    except (IndexError, ValueError):
        sys.exit(f"{name} needs a positive integer")
    if value < 1:
        sys.exit(f"{name} needs a positive integer")
    return value


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    last = int_option("--last", 0)
    want_shape = int_option("--shape", 0)
    try:
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"{path}: not a Chrome trace ({e})")
    kernels = [e for e in events if e.get("ph") == "X" and "grid" in e.get("args", {})]
    by_stream = defaultdict(list)
    for e in kernels:
        by_stream[e["tid"]].append(e)
    stream = max(by_stream, key=lambda s: len(by_stream[s]))
    ks = sorted(by_stream[stream], key=lambda e: e["ts"])
    steps, cur = [], []
    for e in ks:
        if e["name"].startswith("embed_kernel") and cur:
            steps.append(cur)
            cur = []
        cur.append(e)
    if cur:
        steps.append(cur)
    if not steps:
        sys.exit(f"{path}: no kernels")
    sizes = defaultdict(int)
    for s in steps:
        sizes[len(s)] += 1
    most_common = max(sizes, key=lambda n: (sizes[n], n))
    if want_shape:
        if want_shape not in sizes:
            sys.exit(f"{path}: no step of {want_shape} kernels (step shapes seen: {dict(sizes)})")
        shapes = [want_shape]
    elif "--all" in sys.argv:
        shapes = [n for n in sorted(sizes, key=lambda n: (-sizes[n], -n)) if sizes[n] >= 3] or [most_common]
    else:
        shapes = [most_common]
    for shape in shapes:
        print_shape(path, stream, sizes, [s for s in steps if len(s) == shape], shape, last)


def print_shape(path, stream, sizes, chosen, shape, last):
    if last:
        chosen = chosen[-last:]
    per_name = defaultdict(list)   # name -> [summed marginal cost per step]
    counts = {}
    walls = []
    for s in chosen:
        acc = defaultdict(float)
        cnt = defaultdict(int)
        prev_end = s[0]["ts"]
        for e in s:
            end = e["ts"] + e["dur"]
            acc[short_name(e["name"])] += max(0.0, end - prev_end)
            cnt[short_name(e["name"])] += 1
            prev_end = max(prev_end, end)
        walls.append(prev_end - s[0]["ts"])
        for n, v in acc.items():
            per_name[n].append(v)
        counts = cnt
    wall = statistics.median(walls)
    print(f"{path}: stream {stream}, {len(chosen)} steps of {shape} kernels "
          f"(step shapes seen: {dict(sizes)}); step (first start to last end) median {wall:.1f} us")
    print(f"{'kernel':64s} {'calls':>5s} {'us/step':>9s} {'us/call':>8s} {'share':>6s}")
    for n in sorted(per_name, key=lambda n: -statistics.median(per_name[n])):
        m = statistics.median(per_name[n])
        print(f"{n[:64]:64s} {counts[n]:5d} {m:9.1f} {m / counts[n]:8.2f} {100 * m / wall:5.1f}%")


if __name__ == "__main__":
    main()
