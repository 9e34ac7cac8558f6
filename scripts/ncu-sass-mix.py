#!/usr/bin/env python3
"""A kernel's executed instruction mix and warp-stall samples, from Nsight Compute's source page.

Input: the CSV that `ncu --set full --import-source no --page source --print-source sass --csv ...` prints
for one profiled kernel (one row per SASS instruction with its executed count and stall samples; ncu's own
lines before the header are skipped). Prints the opcodes by executed warp instructions (with --elements N
also thread instructions per element: N = the weights the kernel decodes, to compare a decode's cost per
code with its arithmetic), then the stall reasons by sample share.

Usage: scripts/ncu-sass-mix.py SOURCE.csv [--elements N] [--top K]
"""
import csv
import sys
from collections import Counter


def usage(msg):
    sys.stderr.write(f"ncu-sass-mix: {msg}\nusage: scripts/ncu-sass-mix.py SOURCE.csv [--elements N] [--top K]\n")
    sys.exit(2)


def main(argv):
    if not argv:
        usage("no CSV given")
    path, elements, top = argv[0], 0, 20
    rest = argv[1:]
    while rest:
        flag = rest.pop(0)
        if flag not in ("--elements", "--top") or not rest:
            usage(f"unknown or incomplete option {flag!r}")
        value = rest.pop(0)
        try:
            number = int(value)
        except ValueError:
            usage(f"{flag} takes a positive integer, not {value!r}")
        if number <= 0:
            usage(f"{flag} takes a positive integer, not {value!r}")
        if flag == "--elements":
            elements = number
        else:
            top = number
    try:
        with open(path, newline="") as f:
            lines = f.readlines()
    except OSError as e:
        usage(f"{path}: {e.strerror}")
    start = next((i for i, line in enumerate(lines) if line.startswith('"Address","Source"')), None)
    if start is None:
        usage(f"{path}: no source-page header (\"Address\",\"Source\",...): not ncu --page source --csv output")
    rows = list(csv.reader(lines[start:]))
    header, rows = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    for need in ("Source", "Instructions Executed", "# Samples"):
        if need not in col:
            usage(f"{path}: the header has no {need!r} column")
    stall_cols = [n for n in header if n.startswith("stall_") and "Not Issued" not in n]
    ops, stalls = Counter(), Counter()
    executed = samples = 0
    for row in rows:
        if len(row) < len(header):
            continue
        words = row[col["Source"]].split()
        if not words:
            continue
        op = words[1] if words[0].startswith("@") and len(words) > 1 else words[0]
        op = op.split(".")[0].rstrip(";")
        n = int(row[col["Instructions Executed"]] or 0)
        ops[op] += n
        executed += n
        samples += int(row[col["# Samples"]] or 0)
        for s in stall_cols:
            stalls[s] += int(row[col[s]] or 0)
    if executed == 0:
        usage(f"{path}: no executed instructions in the table (was the kernel profiled?)")
    per = f"  {'per element':>11}" if elements else ""
    print(f"{'opcode':<10} {'executed':>12} {'share':>6}{per}")
    for op, n in ops.most_common(top):
        extra = f"  {n * 32 / elements:11.3f}" if elements else ""
        print(f"{op:<10} {n:12d} {100 * n / executed:5.1f}%{extra}")
    total = f"  {executed * 32 / elements:11.3f}" if elements else ""
    print(f"{'all':<10} {executed:12d} {100:5.1f}%{total}")
    print(f"\nwarp-stall samples: {samples}")
    for s, n in stalls.most_common(top):
        if n:
            print(f"  {s[len('stall_'):]:<20} {n:8d} {100 * n / max(samples, 1):5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
