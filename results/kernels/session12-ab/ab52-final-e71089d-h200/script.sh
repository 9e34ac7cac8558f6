#!/bin/bash
# session 12, the final binary on the H200: GPU tests, the reference kernel benchmark (Pro shard, small) with the new
# kernel-boundary probe, and the probe's standalone source run beside it (same numbers expected)
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
$B/mimo-bench --version > $R/version.txt 2>&1
bash scripts/gpu-verify.sh $B $R/verify tests,kernels,small > $R/verify.txt 2>&1; grep -vE "^\[" $R/verify.txt | grep -E "rc=|failed|1tok +graph|8tok +graph|16tok +graph|persistent"; grep -h "Synthesis" $R/verify/cuda_test_*.log
grep -h "kernel boundary" $R/verify/kernels.log $R/verify/kernels_small.log
cd $R && tar czf $OUT/ab52.tgz .
