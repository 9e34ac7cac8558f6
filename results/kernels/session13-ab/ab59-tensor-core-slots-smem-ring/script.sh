#!/bin/bash
# session 13: the tensor-core MXFP4 gate/up slots with their weights through a ring of chunks in shared
# memory (cp.async; MIMO_CUDA_SLOT_TC=3|4) against the register pipeline (=1) and the CUDA-core kernel (=0)
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
$B/mimo-bench --version > $R/version.txt 2>&1
SECONDS=0
timeout 240 $B/cuda_test_cuda_kernels --jobs 4 > $R/test-kernels.log 2>&1; echo "kernels tests rc=$? ${SECONDS}s"; grep -E "Synthesis|FAIL|rel err" $R/test-kernels.log | head
for t in model dflash; do MIMO_CUDA_SLOT_TC=4 timeout 240 $B/cuda_test_cuda_$t --jobs 4 > $R/test-$t-tc4.log 2>&1; echo "$t tests (tc4) rc=$? ${SECONDS}s"; grep -E "Synthesis|FAIL" $R/test-$t-tc4.log | head -4; done
kb(){ timeout 60 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8,16 --no-steps --reps 30 --out $R/kb-$1.json > $R/kb-$1.log 2>&1; echo "kb $1 rc=$? ${SECONDS}s"; grep -E "expert_gate_up +mxfp4" $R/kb-$1.log; }
pro(){ timeout 100 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8,16 --reps 20 --steps-only --out $R/pro-$1.json > $R/pro-$1.log 2>&1; echo "pro $1 rc=$? ${SECONDS}s"; grep -E "calibration|pro_(8|16)tok +graph" $R/pro-$1.log; }
kb tc0; MIMO_CUDA_SLOT_TC=1 kb tc1; MIMO_CUDA_SLOT_TC=3 kb tc3; MIMO_CUDA_SLOT_TC=4 kb tc4; kb tc0b; MIMO_CUDA_SLOT_TC=4 kb tc4b
pro tc0; MIMO_CUDA_SLOT_TC=4 pro tc4; MIMO_CUDA_SLOT_TC=3 pro tc3; pro tc0b; MIMO_CUDA_SLOT_TC=4 pro tc4b
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 $B/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/gemv_expert_slots' > $R/memcheck-slots.log 2>&1; echo "memcheck slots rc=$? ${SECONDS}s"; tail -2 $R/memcheck-slots.log
timeout 150 compute-sanitizer --tool racecheck --error-exitcode 9 $B/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/gemv_expert_slots' > $R/racecheck-slots.log 2>&1; echo "racecheck slots rc=$? ${SECONDS}s"; tail -2 $R/racecheck-slots.log
cd $R && tar czf $OUT/ab59.tgz .
