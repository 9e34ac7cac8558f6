#!/bin/bash
# L2 warming A/B: the Pro shard's steps with MIMO_CUDA_L2_WARM variants, same binary, one call
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv > $R/device.txt
pro(){ local tag=$1; shift; local t0=$(date +%s); env "$@" timeout 150 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 30 --steps-only --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$? $(( $(date +%s) - t0 ))s"; grep -E "calib|^step_" $R/pro-$tag.log; }
pro base1 X=0
pro w1 MIMO_CUDA_L2_WARM=1
pro w5 MIMO_CUDA_L2_WARM=5
pro w3 MIMO_CUDA_L2_WARM=3
pro w1m2 MIMO_CUDA_L2_WARM=1 MIMO_CUDA_L2_WARM_MODE=2
pro w5m1 MIMO_CUDA_L2_WARM=5 MIMO_CUDA_L2_WARM_MODE=1
pro base2 X=0
tar czf $OUT/ab25.tgz -C $OUT r
