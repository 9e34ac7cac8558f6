#!/bin/bash
# session 13: the tensor-core MXFP4 gate/up slots after the Nsight findings (inputs staged conflict-free,
# scales 8 chunks at a time), against the CUDA-core kernel in one call; tests, memcheck, one profile
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
$B/mimo-bench --version > $R/version.txt 2>&1
SECONDS=0
timeout 240 $B/cuda_test_cuda_kernels --jobs 4 > $R/test-kernels.log 2>&1; echo "kernels tests rc=$? ${SECONDS}s"; grep -E "Synthesis|FAIL|rel err" $R/test-kernels.log | head
for t in model dflash; do MIMO_CUDA_SLOT_TC=1 timeout 240 $B/cuda_test_cuda_$t --jobs 4 > $R/test-$t-tc.log 2>&1; echo "$t tests (tc) rc=$? ${SECONDS}s"; grep -E "Synthesis|FAIL" $R/test-$t-tc.log | head -4; done
kb(){ timeout 60 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8,16 --no-steps --reps 30 --out $R/kb-$1.json > $R/kb-$1.log 2>&1; echo "kb $1 rc=$? ${SECONDS}s"; grep -E "expert_gate_up +mxfp4" $R/kb-$1.log; }
pro(){ timeout 100 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8,16 --reps 20 --steps-only --out $R/pro-$1.json > $R/pro-$1.log 2>&1; echo "pro $1 rc=$? ${SECONDS}s"; grep -E "calibration|pro_(8|16)tok +graph" $R/pro-$1.log; }
kb tc0; MIMO_CUDA_SLOT_TC=1 kb tc1; kb tc0b; MIMO_CUDA_SLOT_TC=1 kb tc1b
pro tc0; MIMO_CUDA_SLOT_TC=1 pro tc1
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 $B/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/gemv_expert_slots' > $R/memcheck-slots.log 2>&1; echo "memcheck slots rc=$? ${SECONDS}s"; tail -1 $R/memcheck-slots.log
K="--kernel-name-base function --kernel-name expert_slots_tc_kernel --launch-count 1"
A="kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8 --reps 3 --no-steps"
MIMO_CUDA_SLOT_TC=1 timeout 100 ncu --set full --import-source no --page source --print-source sass --csv $K $B/mimo-bench $A > $R/ncu-tc-sass.csv 2>&1; echo "ncu rc=$? ${SECONDS}s"
python3 scripts/ncu-sass-mix.py $R/ncu-tc-sass.csv --elements 201326592 --top 8
cd $R && tar czf $OUT/ab61.tgz .
