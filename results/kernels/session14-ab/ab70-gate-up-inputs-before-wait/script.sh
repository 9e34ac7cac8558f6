#!/bin/bash
# session 14: NEW (the MXFP4 gate/up slots stage their input row before their wait after the route kernel,
# GemvParams::x_settled; the route kernel lets them launch after its own wait) against a472ceb in one call:
# steps at 1 / 8 positions; then NEW's GPU tests, memcheck and reference benchmark
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
R=/tmp/r; rm -rf $R /tmp/bins; mkdir -p $R /tmp/bins; tar -C /tmp/bins -xzf .gpu-bin/bins.tar.gz
B=/tmp/bins
for b in new base; do $B/$b/mimo-bench --version; done > $R/version.txt 2>&1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >> $R/version.txt
SECONDS=0
pro(){ timeout 60 $B/$2/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 20 --steps-only --out $R/pro-$1.json > $R/pro-$1.log 2>&1; echo "pro $1 rc=$? ${SECONDS}s"; grep -E "calibration|pro_(1|8)tok +(graph|eager|persistent)" $R/pro-$1.log; }
for i in 1 2; do pro new$i new; pro base$i base; done
sm(){ timeout 60 $B/$2/mimo-bench kernels --preset small --shard 0/1 --tokens 1,8 --steps-only --reps 30 --out $R/small-$1.json > $R/small-$1.log 2>&1; echo "small $1 rc=$? ${SECONDS}s"; grep -E "^step_small_(1|8)tok " $R/small-$1.log; }
sm new new; sm base base
bash scripts/gpu-verify.sh $B/new $R/verify tests,sanitize,kernels,small > $R/verify.txt 2>&1; grep -vE "^\[" $R/verify.txt | grep -E "rc=|failed|ERROR SUMMARY|(1|8|16)tok +(graph|eager|persistent)"; grep -h "Synthesis" $R/verify/cuda_test_*.log
timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 $B/new/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/gemv_expert*' > $R/memcheck-expert.log 2>&1; echo "memcheck expert rc=$? ${SECONDS}s"; tail -1 $R/memcheck-expert.log
cd $R && tar czf $OUT/ab70.tgz --exclude='*.trace.json' .
