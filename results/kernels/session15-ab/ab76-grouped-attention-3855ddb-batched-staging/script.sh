#!/bin/bash
# session 15: NEW (the grouped split staging ten loads in flight per thread) in one call: steps at 1 / 8 / 16
# positions, default (16 heads a block) / MIMO_CUDA_ATTN_GROUP=8 / MIMO_CUDA_ATTN_GROUP_HPW=4 / MIMO_CUDA_ATTN_GROUP=0 (per head)
# / MIMO_CUDA_ATTN_GROUP_ONE=1 (grouped at one position too)
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
R=/tmp/r; rm -rf $R /tmp/bins; mkdir -p $R /tmp/bins; tar -C /tmp/bins -xzf .gpu-bin/bins.tar.gz
B=/tmp/bins
for b in new; do $B/$b/mimo-bench --version; done > $R/version.txt 2>&1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >> $R/version.txt
SECONDS=0
timeout 120 $B/new/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention*' > $R/test-attn.log 2>&1; echo "test attention rc=$? ${SECONDS}s"; tail -1 $R/test-attn.log
MIMO_CUDA_ATTN_GROUP_HPW=4 timeout 120 $B/new/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention*' > $R/test-attn-hpw4.log 2>&1; echo "test attention hpw4 rc=$? ${SECONDS}s"; tail -1 $R/test-attn-hpw4.log
MIMO_CUDA_ATTN_GROUP_ONE=1 timeout 120 $B/new/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention*' > $R/test-attn-one.log 2>&1; echo "test attention one rc=$? ${SECONDS}s"; tail -1 $R/test-attn-one.log
pro(){ local tag=$1 bin=$2; shift 2; env "$@" timeout 90 $B/$bin/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --reps 20 --steps-only --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$? ${SECONDS}s"; grep -E "calibration|pro_(1|8|16)tok +graph" $R/pro-$tag.log; }
for i in 1 2; do pro def-$i new X=1; pro g8-$i new MIMO_CUDA_ATTN_GROUP=8; pro hpw4-$i new MIMO_CUDA_ATTN_GROUP_HPW=4; pro g0-$i new MIMO_CUDA_ATTN_GROUP=0; pro one-$i new MIMO_CUDA_ATTN_GROUP_ONE=1; done
for m in 16 0; do MIMO_CUDA_ATTN_GROUP=$m MIMO_CUDA_PROFILE=1 timeout 100 $B/new/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8 --reps 10 --steps-only --out $R/profile-g$m.json > $R/profile-g$m.log 2>&1; echo "== profile g$m rc=$?"; grep -E "n=(8|16) +(attention)" $R/profile-g$m.log; done
cd $R && tar czf $OUT/ab76.tgz --exclude='*.trace.json' .
