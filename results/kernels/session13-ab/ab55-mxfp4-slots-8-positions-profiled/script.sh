#!/bin/bash
# session 13: where the 8-position MXFP4 expert slots spend their time (Nsight Compute, full set, and the SASS
# with per-instruction stall samples), binary 26f94a3 (the kernels of b74c630)
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
$B/mimo-bench --version > $R/version.txt 2>&1
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv > $R/device.txt
which ncu cuobjdump nvdisasm >> $R/device.txt 2>&1
SECONDS=0
cuobjdump -sass $B/mimo-bench > $R/all.sass 2>&1; echo "sass rc=$? ${SECONDS}s"
grep -n "Function : " $R/all.sass | grep -E "gemv1_expert_kernelILi3|gemv1_combine_kernelILi3" > $R/fns.txt
K="--kernel-name-base function --launch-count 1"
A="kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8 --reps 3 --no-steps"
timeout 200 ncu --set full --kernel-name gemv1_expert_kernel $K $B/mimo-bench $A > $R/ncu-gateup.txt 2>&1; echo "ncu1 rc=$? ${SECONDS}s"
timeout 200 ncu --set full --kernel-name gemv1_combine_kernel $K $B/mimo-bench $A > $R/ncu-down.txt 2>&1; echo "ncu2 rc=$? ${SECONDS}s"
timeout 200 ncu --set full --import-source no --page source --print-source sass --csv --kernel-name gemv1_expert_kernel $K $B/mimo-bench $A > $R/ncu-gateup-sass.csv 2>&1; echo "ncu3 rc=$? ${SECONDS}s"
grep -E "gemv1_|Duration|Pipe|Issue Slots|Eligible|Warp Cycles Per Issued|Registers Per|Achieved Occupancy|Theoretical Occ|highest-utilized" $R/ncu-gateup.txt | head -40
gzip $R/all.sass
cd $R && tar czf $OUT/ab55.tgz .
