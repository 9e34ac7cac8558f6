#!/bin/bash
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=$OUT/r; mkdir -p $R
pro(){ local tag=$1; shift; timeout 150 "$@" kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 30 --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$?"; grep -E "calib|^step_.*(1|8)tok +(graph|persistent)|^expert_|^qkv|^o_proj" $R/pro-$tag.log; }
pro cur1 $B/mimo-bench
MIMO_CUDA_PERSIST_PROFILE=1 pro x2 $B/mimo-bench-x2
grep -A15 "persistent profile" $R/pro-x2.log | head -16
pro cur2 $B/mimo-bench
tar czf $OUT/ab20.tgz -C $OUT r && rm -rf $R
