#!/bin/bash
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=$OUT/r; mkdir -p $R
scripts/gpu-verify.sh $B $R/verify tests,sanitize 2>&1 | tail -30
timeout 150 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 30 --out $R/pro.json > $R/pro.log 2>&1; echo "pro rc=$?"; grep -E "calib|^step_" $R/pro.log
tar czf $OUT/ab24.tgz -C $OUT r && rm -rf $R
