#!/usr/bin/env bash
# `make run`: the embedded default job. The built-in suites through the ablation matrix
# (fp4 x dflash x exec) on the built-in model with forced mimo-published acceptance:
#   - `small` on the cuda backend where a GPU is usable (mimo-bench run --probe-gpu),
#   - `tiny` on the cpu otherwise (a few requests per suite, short outputs: < 2 minutes).
# Writes results/latest.json, then the report into report/latest (plots skipped without gnuplot).
# Usage: scripts/run-default.sh path/to/mimo-bench   (extra arguments are passed to `run`)
set -u
BIN=${1:-build/bin/mimo-bench}
shift || true
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$BIN" ]; then
  echo "run-default: $BIN is not an executable (build first: make build)" >&2
  exit 1
fi
export MIMO_SOURCE_DIR="${MIMO_SOURCE_DIR:-$ROOT}"
mkdir -p "$ROOT/results" "$ROOT/report"
OUT="$ROOT/results/latest.json"

if "$BIN" run --probe-gpu >/dev/null 2>&1; then
  echo "run-default: GPU usable: preset small on the cuda backend" >&2
  ARGS=(--preset small --backend cuda --requests 4 --max-new 64 --warmup 1)
else
  echo "run-default: no usable GPU ($("$BIN" run --probe-gpu 2>&1 | head -1)): preset tiny on the cpu backend" >&2
  ARGS=(--preset tiny --backend cpu --requests 2 --max-new 16)
fi

"$BIN" run "${ARGS[@]}" --suite coding,math,agent,chat --matrix \
  --accept forced:mimo-published --out "$OUT" "$@"
rc=$?
if [ $rc -eq 4 ] && [ "${ARGS[1]}" = small ]; then
  # No configuration could run from the preset (e.g. a backend that cannot generate synthetic
  # weights on the device yet): write the same synthetic checkpoint to disk and replay it from there.
  TMP=$(mktemp -d /tmp/mimo-default-XXXXXX)
  trap 'rm -rf "$TMP"' EXIT
  echo "run-default: replaying preset small from a synthetic checkpoint in $TMP" >&2
  if "$BIN" synth --preset small --out "$TMP/small" >&2; then
    "$BIN" run --model "$TMP/small" "${ARGS[@]:2}" --suite coding,math,agent,chat --matrix \
      --accept forced:mimo-published --out "$OUT" "$@"
    rc=$?
  fi
fi
if [ $rc -ne 0 ] && [ $rc -ne 4 ]; then
  echo "run-default: mimo-bench run failed (exit $rc)" >&2
  exit $rc
fi
"$BIN" validate "$OUT" || { echo "run-default: $OUT does not validate" >&2; exit 1; }

if "$BIN" report "$OUT" --out "$ROOT/report/latest"; then
  echo "run-default: report in $ROOT/report/latest (index.html, index.md)" >&2
else
  echo "run-default: report failed (exit $?); results are in $OUT" >&2
fi
echo "run-default: results in $OUT" >&2
exit 0
