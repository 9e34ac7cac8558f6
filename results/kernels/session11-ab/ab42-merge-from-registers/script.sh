#!/bin/bash
# session 11: the attention merge from registers (MIMO_CUDA_MERGE_REGISTERS 1 / 0, same binary), GPU tests, memcheck
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R/verify
$B/mimo-bench --version > $R/verify/version.txt; nvidia-smi --query-gpu=name --format=csv,noheader >> $R/verify/version.txt; cat $R/verify/version.txt
for t in cuda_test_cuda_kernels cuda_test_cuda_model cuda_test_cuda_dflash cuda_test_cuda_round; do SECONDS=0; timeout 200 $B/$t --jobs 4 > $R/verify/$t.log 2>&1; echo "$t rc=$? ${SECONDS}s"; grep -E "Synthesis|FAIL" $R/verify/$t.log | head -4; done
SECONDS=0; timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 $B/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention*' > $R/verify/memcheck_attention.log 2>&1; echo "memcheck attention rc=$? ${SECONDS}s"; tail -n 1 $R/verify/memcheck_attention.log
pro(){ local tag=$1; shift; SECONDS=0; env "$@" timeout 150 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 30 --steps-only --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$? ${SECONDS}s $(grep -E '1tok +graph|8tok +graph|1tok +persistent|small_1tok +graph|small_1tok +eager' $R/pro-$tag.log | awk '{printf "%s ", $6}')"; }
pro mr1a X=0
pro mr0a MIMO_CUDA_MERGE_REGISTERS=0
pro mr1b X=0
pro mr0b MIMO_CUDA_MERGE_REGISTERS=0
cd $R && tar czf $OUT/ab42.tgz .
