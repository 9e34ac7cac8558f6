#!/bin/bash
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=$OUT/r; mkdir -p $R
MIMO_CUDA_PERSIST_PROFILE=1 timeout 100 $B/mimo-bench kernels --preset tiny --shard 0/1 --tokens 1 --reps 30 --out $R/tiny.json > $R/tiny.log 2>&1; echo "tiny rc=$?"; grep -E "^step_|calib" $R/tiny.log; grep -A16 "persistent profile" $R/tiny.log | head -34
tar czf $OUT/ab19.tgz -C $OUT r && rm -rf $R
