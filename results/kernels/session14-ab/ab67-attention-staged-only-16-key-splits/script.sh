#!/bin/bash
# session 14: the staged attention split only for splits of <= 16 keys (e6c9747) against 9300b47 (the qkv
# RoPE in both GEMV kernels, before the staging) in one call; then the GPU tests, sanitizers and the
# reference benchmark of e6c9747
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
R=/tmp/r; rm -rf $R /tmp/bins; mkdir -p $R /tmp/bins; tar -C /tmp/bins -xzf .gpu-bin/bins.tar.gz
B=/tmp/bins
for b in new/mimo-bench qkv8/mimo-bench; do $B/$b --version; done > $R/version.txt 2>&1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >> $R/version.txt
SECONDS=0
pro(){ timeout 60 env $3 $B/$2 kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 20 --steps-only --out $R/pro-$1.json > $R/pro-$1.log 2>&1; echo "pro $1 rc=$? ${SECONDS}s"; grep -E "calibration|pro_(1|8)tok +(graph|eager)" $R/pro-$1.log; }
for i in 1 2; do pro qkv8-$i qkv8/mimo-bench X=1; pro new$i new/mimo-bench X=1; done
bash scripts/gpu-verify.sh $B/new $R/verify tests,sanitize,kernels,small > $R/verify.txt 2>&1; grep -vE "^\[" $R/verify.txt | grep -E "rc=|failed|ERROR SUMMARY|(1|8|16)tok +(graph|eager|persistent)"; grep -h "Synthesis" $R/verify/cuda_test_*.log
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 9 $B/new/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/[aq]*' > $R/memcheck-attn-qkv.log 2>&1; echo "memcheck attn+qkv rc=$? ${SECONDS}s"; tail -1 $R/memcheck-attn-qkv.log
timeout 150 compute-sanitizer --tool racecheck --error-exitcode 9 $B/new/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention*' > $R/racecheck-attn.log 2>&1; echo "racecheck attn rc=$? ${SECONDS}s"; grep -E "Synthesis|RACECHECK SUMMARY|hazard" $R/racecheck-attn.log | head -3
cd $R && tar czf $OUT/ab67.tgz --exclude='*.trace.json' .
