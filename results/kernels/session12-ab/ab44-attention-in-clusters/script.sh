#!/bin/bash
# session 12: decode attention in thread-block clusters (MIMO_CUDA_ATTN_CLUSTER unset / 0 / 8 / 4): GPU tests,
# memcheck, the attention tests under memcheck and racecheck, steps, a traced step's per-kernel costs
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
$B/mimo-bench --version > $R/version.txt 2>&1
bash scripts/gpu-verify.sh $B $R/verify tests,sanitize > $R/verify.txt 2>&1; grep -vE "^\[" $R/verify.txt; grep -h "Synthesis" $R/verify/cuda_test_*.log
for tool in memcheck racecheck; do SECONDS=0; timeout 200 compute-sanitizer --tool $tool --error-exitcode 9 $B/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention*' > $R/verify/${tool}_attention.log 2>&1; echo "$tool attention rc=$? ${SECONDS}s"; tail -n 2 $R/verify/${tool}_attention.log; done
pro(){ local tag=$1; shift; SECONDS=0; env "$@" timeout 150 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 30 --steps-only --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$? ${SECONDS}s $(grep -E '1tok +graph|8tok +graph|1tok +persistent|small_1tok +graph|small_1tok +eager' $R/pro-$tag.log | awk '{printf "%s ", $6}')"; }
pro cl X=0
pro cl0 MIMO_CUDA_ATTN_CLUSTER=0
pro cl8 MIMO_CUDA_ATTN_CLUSTER=8
pro cl-again X=0
pro cl0-again MIMO_CUDA_ATTN_CLUSTER=0
SECONDS=0; timeout 120 $B/mimo-bench run --preset mimo-v2.5-pro --shard 0/8 --backend cuda --suite coding --requests 1 --max-new 24 --dflash off --exec graph --trace --out $R/tr-cl.json > $R/tr-cl.log 2>&1; echo "trace rc=$? ${SECONDS}s"
for f in $R/tr-cl*.trace.json; do python3 scripts/trace-step-costs.py $f > $R/costs-cl.txt 2>&1; done; head -14 $R/costs-cl.txt
cd $R && tar czf $OUT/ab44.tgz --exclude='*.trace.json' .
