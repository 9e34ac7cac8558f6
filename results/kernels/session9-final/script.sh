#!/bin/bash
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=$OUT/r; mkdir -p $R
scripts/gpu-verify.sh $B $R/verify tests,sanitize,kernels,small,rounds,trace,matrix 2>&1 | tail -60
rm -f $R/verify/*.trace.json
MIMO_CUDA_PERSIST_PROFILE=1 timeout 150 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1 --reps 30 --out $R/pro-profile.json > $R/pro-profile.log 2>&1; echo "profile rc=$?"; grep -E "^step_.*1tok" $R/pro-profile.log
MIMO_CUDA_PERSIST_BLOCKS_PER_SM=1 timeout 150 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1 --reps 30 --out $R/pro-bps1.json > $R/pro-bps1.log 2>&1; echo "bps1 rc=$?"; grep -E "^step_.*1tok +persistent" $R/pro-bps1.log
timeout 200 $B/mimo-bench-e6d5d83 kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 30 --out $R/pro-base.json > $R/pro-base.log 2>&1; echo "base rc=$?"; grep -E "calib|^step_.*(1|8)tok +graph" $R/pro-base.log
tar czf $OUT/ab21.tgz -C $OUT r && rm -rf $R
