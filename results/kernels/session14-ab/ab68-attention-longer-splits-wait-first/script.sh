#!/bin/bash
# session 14: the attention split's longer splits and persistent body waiting first again (NEW) against
# e6c9747 (they waited after the early loads' setup) and 9300b47 (no staging) in one call: steps at 1 and 8
# positions with the persistent one; GPU tests and memcheck of NEW
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
R=/tmp/r; rm -rf $R /tmp/bins; mkdir -p $R /tmp/bins; tar -C /tmp/bins -xzf .gpu-bin/bins.tar.gz
B=/tmp/bins
for b in new prev qkv8; do $B/$b/mimo-bench --version; done > $R/version.txt 2>&1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >> $R/version.txt
SECONDS=0
pro(){ timeout 60 $B/$2/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 20 --steps-only --out $R/pro-$1.json > $R/pro-$1.log 2>&1; echo "pro $1 rc=$? ${SECONDS}s"; grep -E "calibration|pro_(1|8)tok +(graph|eager|persistent)" $R/pro-$1.log; }
for i in 1 2; do pro new$i new; pro prev$i prev; pro qkv8-$i qkv8; done
sm(){ timeout 60 $B/$2/mimo-bench kernels --preset small --shard 0/1 --tokens 1,8 --steps-only --reps 30 --out $R/small-$1.json > $R/small-$1.log 2>&1; echo "small $1 rc=$? ${SECONDS}s"; grep -E "^step_small_(1|8)tok " $R/small-$1.log; }
sm new new; sm prev prev; sm qkv8 qkv8
for t in kernels model dflash round; do timeout 90 $B/new/cuda_test_cuda_$t --jobs 4 --verbose > $R/test-$t.log 2>&1; echo "$t rc=$? ${SECONDS}s"; grep -E "Synthesis|FAIL" $R/test-$t.log | head -3; done
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 9 $B/new/cuda_test_cuda_model --jobs 1 --filter 'cuda_model/persistent*' > $R/memcheck-persistent.log 2>&1; echo "memcheck persistent rc=$? ${SECONDS}s"; tail -1 $R/memcheck-persistent.log
cd $R && tar czf $OUT/ab68.tgz .
