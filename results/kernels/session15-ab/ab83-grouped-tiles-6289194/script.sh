#!/bin/bash
# session 15, final: NEW (the grouped split's one-tile build for splits of <= 32 keys, the tiled one for longer
# splits) against PREV (47c1763: the grouped split up to 32 keys, longer splits per head) in one call: steps at
# context 256 and 4096 (1 / 8 / 16 positions, two runs each); NEW's GPU tests, sanitizers and reference
# benchmark (context 256); memcheck of the grouped attention test
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
R=/tmp/r; rm -rf $R /tmp/bins; mkdir -p $R /tmp/bins; tar -C /tmp/bins -xzf .gpu-bin/bins.tar.gz
B=/tmp/bins
for b in new prev; do $B/$b/mimo-bench --version; done > $R/version.txt 2>&1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >> $R/version.txt
cuobjdump -res-usage $B/new/mimo-bench 2>&1 | grep -A1 "attention_group" | cut -c1-220 > $R/res-usage.txt; cat $R/res-usage.txt
SECONDS=0
pro(){ local tag=$1 bin=$2 ctx=$3; timeout 150 $B/$bin/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --reps 20 --steps-only --context $ctx --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$? ${SECONDS}s"; grep -E "calibration|pro_(1|8|16)tok +(graph)" $R/pro-$tag.log; }
for i in 1 2; do pro c256-new-$i new 256; pro c256-prev-$i prev 256; done
for i in 1 2; do pro c4096-new-$i new 4096; pro c4096-prev-$i prev 4096; done
bash scripts/gpu-verify.sh $B/new $R/verify tests,sanitize,kernels,small > $R/verify.txt 2>&1; grep -vE "^\[" $R/verify.txt | grep -E "rc=|failed|ERROR SUMMARY|(1|8|16)tok +(graph|eager|persistent)"; grep -h "Synthesis" $R/verify/cuda_test_*.log
echo "verify ${SECONDS}s"
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 $B/new/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention_grouped*' > $R/memcheck-grouped.log 2>&1; echo "memcheck grouped rc=$? ${SECONDS}s"; tail -1 $R/memcheck-grouped.log
cd $R && tar czf $OUT/ab83.tgz --exclude='*.trace.json' .
