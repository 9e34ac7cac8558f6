#!/bin/bash
# session 15: NEW (b0ad2f9: attention_group_split_kernel, the splits of several positions staging their rows
# once for the kv head's query heads) in one call: registers, the attention tests, steps at 8 / 16 positions
# with MIMO_CUDA_ATTN_GROUP 1 (default) / 2 / 0 (the per-head split, as before), the eager op profile at 8,
# memcheck and racecheck of the attention tests
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
R=/tmp/r; rm -rf $R /tmp/bins; mkdir -p $R /tmp/bins; tar -C /tmp/bins -xzf .gpu-bin/bins.tar.gz
B=/tmp/bins
for b in new base; do $B/$b/mimo-bench --version; done > $R/version.txt 2>&1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >> $R/version.txt
cuobjdump -res-usage $B/new/mimo-bench 2>&1 | grep -A1 "attention_group\|attention_split_kernel" | cut -c1-220 > $R/res-usage.txt; cat $R/res-usage.txt
SECONDS=0
timeout 120 $B/new/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention*' > $R/test-attn.log 2>&1; echo "test attention rc=$? ${SECONDS}s"; tail -2 $R/test-attn.log
pro(){ local tag=$1; shift; env "$@" timeout 90 $B/new/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --reps 20 --steps-only --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$? ${SECONDS}s"; grep -E "calibration|pro_(1|8|16)tok +graph" $R/pro-$tag.log; }
for i in 1 2; do pro g1-$i MIMO_CUDA_ATTN_GROUP=1; pro g2-$i MIMO_CUDA_ATTN_GROUP=2; pro g0-$i MIMO_CUDA_ATTN_GROUP=0; done
for m in 1 0; do MIMO_CUDA_ATTN_GROUP=$m MIMO_CUDA_PROFILE=1 timeout 100 $B/new/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8 --reps 10 --steps-only --out $R/profile-g$m.json > $R/profile-g$m.log 2>&1; echo "== profile g$m rc=$?"; grep -E "n=(8|16) +(qkv|attention|o_proj)" $R/profile-g$m.log; done
timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 $B/new/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention*' > $R/memcheck-attn.log 2>&1; echo "memcheck attn rc=$? ${SECONDS}s"; tail -1 $R/memcheck-attn.log
timeout 170 compute-sanitizer --tool racecheck --error-exitcode 9 $B/new/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention_grouped*' > $R/racecheck-attn.log 2>&1; echo "racecheck grouped rc=$? ${SECONDS}s"; grep -E "Synthesis|RACECHECK SUMMARY" $R/racecheck-attn.log | head -3
cd $R && tar czf $OUT/ab73.tgz --exclude='*.trace.json' .
