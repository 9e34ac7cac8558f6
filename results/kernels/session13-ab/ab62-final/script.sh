#!/bin/bash
# session 13, the final code (the kernels of cab173d): the GPU tests not carried in ab57 (trace) and the
# kernels' test again, then the steps once more with this binary
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
$B/mimo-bench --version > $R/version.txt 2>&1
SECONDS=0
for t in cuda_test_cuda_kernels cuda_test_trace; do timeout 240 $B/$t --jobs 4 --verbose > $R/$t.log 2>&1; echo "$t rc=$? ${SECONDS}s"; grep -E "Synthesis|FAIL" $R/$t.log | head -4; done
timeout 100 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 20 --steps-only --out $R/pro.json > $R/pro.log 2>&1; echo "pro rc=$? ${SECONDS}s"; grep -E "calibration|kernel boundary, pdl|pro_(1|8)tok +(graph|persistent)" $R/pro.log
cd $R && tar czf $OUT/ab62.tgz .
