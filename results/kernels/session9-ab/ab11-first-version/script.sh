#!/bin/bash
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total --format=csv > $R/device.txt; cat $R/device.txt
timeout 120 $B/cuda_test_cuda_model --jobs 1 --filter 'cuda_model/persistent*' > $R/persist_test.log 2>&1; echo "persist test rc=$?"; tail -5 $R/persist_test.log
for t in kernels model dflash round; do timeout 200 $B/cuda_test_cuda_$t --jobs 4 > $R/cuda_test_cuda_$t.log 2>&1; echo "$t rc=$?"; grep -E "Synthesis|FAIL|rror" $R/cuda_test_cuda_$t.log | head -5; done
timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 $B/cuda_test_cuda_model --jobs 1 --filter 'cuda_model/persistent*' > $R/memcheck_persist.log 2>&1; echo "memcheck persist rc=$?"; tail -1 $R/memcheck_persist.log
pro(){ local tag=$1; shift; timeout 150 "$@" kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 30 --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$?"; grep -E "calib|^step_mimo-v2.5-pro_(1|8)tok" $R/pro-$tag.log; }
pro new1 $B/mimo-bench
pro base1 $B/mimo-bench-e6d5d83
timeout 100 $B/mimo-bench kernels --preset small --tokens 1 --reps 30 --out $R/small.json > $R/small.log 2>&1; echo "small rc=$?"; grep -E "calib|^step_small" $R/small.log
tar czf $OUT/ab11.tgz -C $OUT r && rm -rf $R
