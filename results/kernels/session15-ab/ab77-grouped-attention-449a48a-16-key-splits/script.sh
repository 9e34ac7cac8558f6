#!/bin/bash
# session 15: NEW (449a48a: the grouped split with its value rows unrolled, the experiments' knobs gone) in one
# call: steps at 1 / 8 / 16 positions, default / MIMO_CUDA_ATTN_SPLIT_KEYS=16 (16-key splits at every position
# count) / MIMO_CUDA_ATTN_GROUP=0 (per head, as before); then NEW's GPU tests, sanitizers and reference
# benchmark; memcheck and racecheck of the grouped attention test
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
R=/tmp/r; rm -rf $R /tmp/bins; mkdir -p $R /tmp/bins; tar -C /tmp/bins -xzf .gpu-bin/bins.tar.gz
B=/tmp/bins
$B/new/mimo-bench --version > $R/version.txt 2>&1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >> $R/version.txt
cuobjdump -res-usage $B/new/mimo-bench 2>&1 | grep -A1 "attention_group\|attention_split_kernel" | cut -c1-220 > $R/res-usage.txt; cat $R/res-usage.txt
SECONDS=0
pro(){ local tag=$1; shift; env "$@" timeout 90 $B/new/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --reps 20 --steps-only --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$? ${SECONDS}s"; grep -E "calibration|pro_(1|8|16)tok +graph" $R/pro-$tag.log; }
for i in 1 2; do pro def-$i X=1; pro keys16-$i MIMO_CUDA_ATTN_SPLIT_KEYS=16; pro g0-$i MIMO_CUDA_ATTN_GROUP=0; done
bash scripts/gpu-verify.sh $B/new $R/verify tests,sanitize,kernels,small > $R/verify.txt 2>&1; grep -vE "^\[" $R/verify.txt | grep -E "rc=|failed|ERROR SUMMARY|(1|8|16)tok +(graph|eager|persistent)"; grep -h "Synthesis" $R/verify/cuda_test_*.log
echo "verify ${SECONDS}s"
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 $B/new/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention_grouped*' > $R/memcheck-grouped.log 2>&1; echo "memcheck grouped rc=$? ${SECONDS}s"; tail -1 $R/memcheck-grouped.log
timeout 120 compute-sanitizer --tool racecheck --error-exitcode 9 $B/new/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention_grouped*' > $R/racecheck-grouped.log 2>&1; echo "racecheck grouped rc=$? ${SECONDS}s"; grep -E "Synthesis|RACECHECK SUMMARY" $R/racecheck-grouped.log | head -3
cd $R && tar czf $OUT/ab77.tgz --exclude='*.trace.json' .
