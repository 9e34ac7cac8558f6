#!/bin/bash
# session 15: where the steps' time goes at context 4096 (binary 47c1763): the eager op profile (events around
# each op) at 1 / 8 positions, grouped split (default) and per head (MIMO_CUDA_ATTN_GROUP=0)
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
R=/tmp/r; rm -rf $R /tmp/bins; mkdir -p $R /tmp/bins; tar -C /tmp/bins -xzf .gpu-bin/bins.tar.gz
B=/tmp/bins
$B/new/mimo-bench --version > $R/version.txt 2>&1
SECONDS=0
for m in 16 0; do MIMO_CUDA_ATTN_GROUP=$m MIMO_CUDA_PROFILE=1 timeout 200 $B/new/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 10 --steps-only --context 4096 --out $R/profile-c4096-g$m.json > $R/profile-c4096-g$m.log 2>&1; echo "== profile g$m rc=$? ${SECONDS}s"; grep -E "n=(1|8) " $R/profile-c4096-g$m.log | head -40; done
cd $R && tar czf $OUT/ab81.tgz --exclude='*.trace.json' .
