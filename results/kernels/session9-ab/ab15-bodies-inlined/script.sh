#!/bin/bash
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=$OUT/r; mkdir -p $R
timeout 120 $B/cuda_test_cuda_model --jobs 1 --filter 'cuda_model/persistent*' > $R/persist_test.log 2>&1; echo "persist test rc=$?"; tail -1 $R/persist_test.log
pro(){ local tag=$1; shift; timeout 150 "$@" kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1 --reps 30 --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$?"; grep -E "calib|^step_.*1tok" $R/pro-$tag.log; }
pro w1 $B/mimo-bench
MIMO_CUDA_PERSIST_PROFILE=1 pro prof $B/mimo-bench
grep -A40 "persistent profile" $R/pro-prof.log | head -36
tar czf $OUT/ab15.tgz -C $OUT r && rm -rf $R
