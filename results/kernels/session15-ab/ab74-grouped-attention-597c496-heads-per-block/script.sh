#!/bin/bash
# session 15: NEW (597c496: the grouped split without local memory, 128 registers) in one call: registers,
# the attention tests, steps at 8 / 16 positions with MIMO_CUDA_ATTN_GROUP 16 (default) / 8 / 4 / 0 (the
# per-head split, as before), the eager op profile at 8 and 16 positions for 16 and 0
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
R=/tmp/r; rm -rf $R /tmp/bins; mkdir -p $R /tmp/bins; tar -C /tmp/bins -xzf .gpu-bin/bins.tar.gz
B=/tmp/bins
for b in new base; do $B/$b/mimo-bench --version; done > $R/version.txt 2>&1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >> $R/version.txt
cuobjdump -res-usage $B/new/mimo-bench 2>&1 | grep -A1 "attention_group\|attention_split_kernel" | cut -c1-220 > $R/res-usage.txt; cat $R/res-usage.txt
SECONDS=0
timeout 120 $B/new/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention*' > $R/test-attn.log 2>&1; echo "test attention rc=$? ${SECONDS}s"; tail -1 $R/test-attn.log
pro(){ local tag=$1; shift; env "$@" timeout 90 $B/new/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8,16 --reps 20 --steps-only --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$? ${SECONDS}s"; grep -E "calibration|pro_(1|8|16)tok +graph" $R/pro-$tag.log; }
for i in 1 2; do for h in 16 8 4 0; do pro g$h-$i MIMO_CUDA_ATTN_GROUP=$h; done; done
for m in 16 0; do MIMO_CUDA_ATTN_GROUP=$m MIMO_CUDA_PROFILE=1 timeout 100 $B/new/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8 --reps 10 --steps-only --out $R/profile-g$m.json > $R/profile-g$m.log 2>&1; echo "== profile g$m rc=$?"; grep -E "n=(8|16) +(attention)" $R/profile-g$m.log; done
cd $R && tar czf $OUT/ab74.tgz --exclude='*.trace.json' .
