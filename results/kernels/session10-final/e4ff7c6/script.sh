#!/bin/bash
# the final binary: kernels at 1 token (isolated and chained), the trace test
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
$B/mimo-bench --version | tee $R/version.txt
timeout 150 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1 --reps 30 --no-steps --out $R/kern-final.json > $R/kern-final.log 2>&1; echo "kern rc=$?"; grep -v "^wrote" $R/kern-final.log
timeout 200 $B/cuda_test_trace --verbose > $R/cuda_test_trace.log 2>&1; echo "trace rc=$?"; grep Synthesis $R/cuda_test_trace.log
cd $R && tar czf $OUT/ab33.tgz .
