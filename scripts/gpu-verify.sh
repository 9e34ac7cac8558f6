#!/usr/bin/env bash
# The GPU evidence in one command: CUDA tests, compute-sanitizer, kernel benchmarks, the reference
# runs of the harness. Run on a machine with an NVIDIA GPU from the repository root.
# Usage: scripts/gpu-verify.sh BIN_DIR OUT_DIR [STEPS]
#   BIN_DIR  a CUDA build directory (bin/mimo-bench, tests/cuda_test_*), or one folder holding them all
#   OUT_DIR  receives the logs and JSON files
#   STEPS    comma list of tests,sanitize,kernels,mma1,nopdl,small,rounds,trace,matrix (default: all of them)
# Each step has its own time limit; a step's failure is reported and the next one still runs. The
# exit code is the number of failed steps (0 = all passed).
set -u
BIN=${1:?usage: scripts/gpu-verify.sh BIN_DIR OUT_DIR [STEPS]}
OUT=${2:?usage: scripts/gpu-verify.sh BIN_DIR OUT_DIR [STEPS]}
STEPS=${3:-tests,sanitize,kernels,mma1,nopdl,small,rounds,trace,matrix}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
TESTS=$BIN
if [ -x "$BIN/bin/mimo-bench" ]; then
  TESTS=$BIN/tests
  BIN=$BIN/bin
fi
failed=0

want() { [[ ",$STEPS," == *",$1,"* ]]; }

# step NAME LIMIT_S COMMAND...: runs COMMAND with its log in OUT/NAME.log, prints one status line.
step() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  printf '%-28s rc=%-3d %4ds\n' "$name" "$rc" $((SECONDS - t0))
  [ $rc -eq 0 ] || failed=$((failed + 1))
  return $rc
}

nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem,driver_version --format=csv \
  >"$OUT/device.txt" 2>&1
cat "$OUT/device.txt"
# the checkout's HEAD (may be absent or older on a machine the tree was copied to), then the binaries' own commit
{ git rev-parse HEAD 2>/dev/null || echo "no git checkout"; "$BIN/mimo-bench" --version; } >"$OUT/commit.txt" 2>&1

if want tests; then
  for t in cuda_test_cuda_kernels cuda_test_cuda_model cuda_test_cuda_dflash cuda_test_cuda_round cuda_test_trace; do
    step "$t" 240 "$TESTS/$t" --jobs 4 --verbose
    grep -E "^\[====\] Synthesis|^\[FAIL\]|^\[SKIP\]" "$OUT/$t.log" | head -8
  done
fi

if want sanitize; then
  step memcheck_model 240 compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$TESTS/cuda_test_cuda_model" --jobs 1 --filter 'cuda_model/graph_equals*'
  tail -2 "$OUT/memcheck_model.log"
  step memcheck_dflash 240 compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$TESTS/cuda_test_cuda_dflash" --jobs 1 --filter 'cuda_dflash/drafter_logits*'
  tail -2 "$OUT/memcheck_dflash.log"
  step memcheck_round 300 compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$TESTS/cuda_test_cuda_round" --jobs 1 --filter 'cuda_round/[gv]*'
  tail -2 "$OUT/memcheck_round.log"
  step memcheck_persistent 300 compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$TESTS/cuda_test_cuda_model" --jobs 1 --filter 'cuda_model/persistent*'
  tail -2 "$OUT/memcheck_persistent.log"
fi

if want kernels; then
  step kernels 300 "$BIN/mimo-bench" kernels --preset mimo-v2.5-pro --shard 0/8 --out "$OUT/kernels.json"
  grep -vE "^\[" "$OUT/kernels.log" | tail -40
fi

if want mma1; then
  # A/B: the tensor-core GEMV at one position and for expert slots (the default is the CUDA-core one)
  MIMO_CUDA_GEMV1=0 step kernels_mma1 120 "$BIN/mimo-bench" kernels --preset mimo-v2.5-pro --shard 0/8 \
    --tokens 1,8 --no-steps --out "$OUT/kernels_mma1.json"
fi

if want nopdl; then
  # A/B: whole steps without programmatic dependent launch
  MIMO_CUDA_PDL=0 step steps_nopdl 200 "$BIN/mimo-bench" kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 \
    --out "$OUT/kernels_nopdl.json"
  grep -E "^step" "$OUT/steps_nopdl.log"
fi

if want small; then
  # the small preset's kernels and whole steps (graph vs eager)
  step kernels_small 200 "$BIN/mimo-bench" kernels --preset small --shard 0/1 --out "$OUT/kernels_small.json"
  grep -E "^step" "$OUT/kernels_small.log"
fi

if want rounds; then
  # A/B: decode rounds on the device (one synchronisation per round) vs verified on the host, DFlash on,
  # greedy with the published acceptance forced, and sampled (T 0.8; then with top-k 50, top-p 0.9) with the
  # acceptance measured
  for r in device host; do
    step rounds_greedy_$r 300 "$BIN/mimo-bench" run --preset small --backend cuda --suite coding,math --requests 4 \
      --max-new 128 --warmup 1 --dflash on --exec graph --accept forced:mimo-published --rounds $r \
      --out "$OUT/small-rounds-greedy-$r.json"
    tail -4 "$OUT/rounds_greedy_$r.log"
    step rounds_sampled_$r 300 "$BIN/mimo-bench" run --preset small --backend cuda --suite coding,math --requests 4 \
      --max-new 128 --warmup 1 --dflash on --exec graph --temperature 0.8 --rounds $r \
      --out "$OUT/small-rounds-sampled-$r.json"
    tail -4 "$OUT/rounds_sampled_$r.log"
    step rounds_topkp_$r 300 "$BIN/mimo-bench" run --preset small --backend cuda --suite coding,math --requests 4 \
      --max-new 128 --warmup 1 --dflash on --exec graph --temperature 0.8 --top-k 50 --top-p 0.9 --rounds $r \
      --out "$OUT/small-rounds-topkp-$r.json"
    tail -4 "$OUT/rounds_topkp_$r.log"
  done
fi

if want trace; then
  step trace 300 "$BIN/mimo-bench" run --preset small --backend cuda --suite coding,math --requests 2 \
    --max-new 24 --dflash off --exec eager --trace --out "$OUT/small-traced.json"
  tail -8 "$OUT/trace.log"
  grep -o '"tracing_overhead":[^}]*}' "$OUT/small-traced.json" | head -3
fi

if want matrix; then
  # what `make run` runs on a GPU machine
  step matrix 420 "$BIN/mimo-bench" run --preset small --backend cuda --requests 4 --max-new 64 --warmup 1 \
    --suite coding,math,agent,chat --matrix --accept forced:mimo-published --out "$OUT/small-matrix.json"
  tail -20 "$OUT/matrix.log"
fi

echo "gpu-verify: $failed step(s) failed"
exit "$failed"
