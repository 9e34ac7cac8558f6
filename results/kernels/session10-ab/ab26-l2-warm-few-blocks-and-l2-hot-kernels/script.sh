#!/bin/bash
# L2 warming, second look: few warm blocks; and the GEMVs' speed with their weights in L2
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
pro(){ local tag=$1; shift; local t0=$(date +%s); env "$@" timeout 150 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 30 --steps-only --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$? $(( $(date +%s) - t0 ))s"; grep -E "calib|^step_.*(eager|graph)" $R/pro-$tag.log; }
kern(){ local tag=$1; shift; local t0=$(date +%s); env "$@" timeout 150 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 30 --no-steps --out $R/kern-$tag.json > $R/kern-$tag.log 2>&1; echo "kern $tag rc=$? $(( $(date +%s) - t0 ))s"; grep -E "calib|^[a-z]" $R/kern-$tag.log | grep -v "^kernel"; }
pro base1 X=0
pro w1b16m2 MIMO_CUDA_L2_WARM=1 MIMO_CUDA_L2_WARM_BLOCKS=16 MIMO_CUDA_L2_WARM_MODE=2
pro w1b16 MIMO_CUDA_L2_WARM=1 MIMO_CUDA_L2_WARM_BLOCKS=16
pro w1b1m2 MIMO_CUDA_L2_WARM=1 MIMO_CUDA_L2_WARM_BLOCKS=1 MIMO_CUDA_L2_WARM_MODE=2
kern cold X=0
kern hot MIMO_KBENCH_L2_HOT=1
pro base2 X=0
cd $R && tar czf $OUT/ab26.tgz . 
