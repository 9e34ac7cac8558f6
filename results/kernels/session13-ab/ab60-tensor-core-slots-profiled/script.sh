#!/bin/bash
# session 13: Nsight Compute on the tensor-core MXFP4 gate/up slots (expert_slots_tc_kernel<0>, 8 positions)
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
$B/mimo-bench --version > $R/version.txt 2>&1
SECONDS=0
K="--kernel-name-base function --kernel-name expert_slots_tc_kernel --launch-count 1"
A="kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8 --reps 3 --no-steps"
MIMO_CUDA_SLOT_TC=1 timeout 200 ncu --set full $K $B/mimo-bench $A > $R/ncu-tc.txt 2>&1; echo "ncu1 rc=$? ${SECONDS}s"
MIMO_CUDA_SLOT_TC=1 timeout 200 ncu --set full --import-source no --page source --print-source sass --csv $K $B/mimo-bench $A > $R/ncu-tc-sass.csv 2>&1; echo "ncu2 rc=$? ${SECONDS}s"
grep -E "Duration|Issue Slots|highest-utilized|Eligible Warps|Warp Cycles Per Issued|Registers Per|Achieved Occ|Theoretical Occ|DRAM Throughput" $R/ncu-tc.txt | head -20
python3 scripts/ncu-sass-mix.py $R/ncu-tc-sass.csv --elements 201326592 --top 14
cd $R && tar czf $OUT/ab60.tgz .
