#!/bin/bash
# session 14: NEW (the staged attention split a function of its own, the plain split's code as before) against
# 9300b47 (no staging) in one call: registers of the split kernels, steps at 1 / 8 positions, the 8-position
# op profile; then NEW's GPU tests, sanitizers and reference benchmark
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
R=/tmp/r; rm -rf $R /tmp/bins; mkdir -p $R /tmp/bins; tar -C /tmp/bins -xzf .gpu-bin/bins.tar.gz
B=/tmp/bins
for b in new qkv8; do $B/$b/mimo-bench --version; done > $R/version.txt 2>&1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >> $R/version.txt
for b in new qkv8; do echo "== $b"; cuobjdump -res-usage $B/$b/mimo-bench 2>&1 | grep -A1 "attention_split" | cut -c1-220; done > $R/res-usage.txt 2>&1; cat $R/res-usage.txt
SECONDS=0
pro(){ timeout 60 $B/$2/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 20 --steps-only --out $R/pro-$1.json > $R/pro-$1.log 2>&1; echo "pro $1 rc=$? ${SECONDS}s"; grep -E "calibration|pro_(1|8)tok +(graph|eager|persistent)" $R/pro-$1.log; }
for i in 1 2; do pro new$i new; pro qkv8-$i qkv8; done
for b in new qkv8; do MIMO_CUDA_PROFILE=1 timeout 100 $B/$b/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 10 --steps-only --out $R/profile-$b.json > $R/profile-$b.log 2>&1; echo "== profile $b rc=$?"; grep -E "n=(1|8) +(qkv|attention|o_proj)" $R/profile-$b.log; done
bash scripts/gpu-verify.sh $B/new $R/verify tests,sanitize,kernels,small > $R/verify.txt 2>&1; grep -vE "^\[" $R/verify.txt | grep -E "rc=|failed|ERROR SUMMARY|(1|8|16)tok +(graph|eager|persistent)"; grep -h "Synthesis" $R/verify/cuda_test_*.log
timeout 100 compute-sanitizer --tool memcheck --error-exitcode 9 $B/new/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/[aq]*' > $R/memcheck-attn-qkv.log 2>&1; echo "memcheck attn+qkv rc=$? ${SECONDS}s"; tail -1 $R/memcheck-attn-qkv.log
timeout 150 compute-sanitizer --tool racecheck --error-exitcode 9 $B/new/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention*' > $R/racecheck-attn.log 2>&1; echo "racecheck attn rc=$? ${SECONDS}s"; grep -E "Synthesis|RACECHECK SUMMARY" $R/racecheck-attn.log | head -3
cd $R && tar czf $OUT/ab69.tgz --exclude='*.trace.json' .
