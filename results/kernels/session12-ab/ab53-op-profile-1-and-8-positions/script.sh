#!/bin/bash
# session 12: where an 8-token verify step's time goes, op by op (MIMO_CUDA_PROFILE=1: events around each op of
# the eager steps; no overlap between ops, so each op's own time), beside the 1-token step's
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
$B/mimo-bench --version > $R/version.txt 2>&1
SECONDS=0; MIMO_CUDA_PROFILE=1 timeout 150 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 10 --steps-only --out $R/profile.json > $R/profile.log 2>&1; echo "profile rc=$? ${SECONDS}s"
grep -A40 "cuda profile" $R/profile.log | head -60
cd $R && tar czf $OUT/ab53.tgz .
