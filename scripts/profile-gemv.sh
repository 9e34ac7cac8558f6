#!/usr/bin/env bash
# Nsight Compute on one GEMV kernel of `mimo-bench kernels` (MiMo-V2.5-Pro shard 0/8 shapes): the
# counters behind a ratio in results/kernels (speed of light, pipes, warp stalls, instruction mix).
# Usage: scripts/profile-gemv.sh BIN_DIR OUT_DIR TOKENS KERNEL_REGEX NAME
#   e.g. scripts/profile-gemv.sh build/bin out 8 'gemv1_expert_kernel<3, true' mxfp4_gate_up_8tok
#   (expert slots launch as gemv1_expert_kernel, plain matrices as gemv1_kernel)
# Clocks are left alone (--clock-control none), as the device machine's METHOD.md asks.
set -u
BIN=${1:?usage}; OUT=${2:?usage}; TOKENS=${3:?usage}; REGEX=${4:?usage}; NAME=${5:?usage}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
ncu --clock-control none --kernel-name-base demangled --kernel-name "regex:$REGEX" --launch-skip 20 --launch-count 1 \
  --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats --section InstructionStats \
  --section Occupancy --section SchedulerStats --section MemoryWorkloadAnalysis \
  "$BIN/mimo-bench" kernels --preset mimo-v2.5-pro --shard 0/8 --tokens "$TOKENS" --no-steps --reps 5 \
  --out "$OUT/$NAME-kernels.json" >"$OUT/ncu-$NAME.log" 2>&1
rc=$?
echo "profile $NAME: rc=$rc"
exit $rc
