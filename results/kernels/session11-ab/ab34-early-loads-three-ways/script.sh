#!/bin/bash
# session 11: early loads (ids before the down's wait, input row after the gate/up's loads, attention prefetch)
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
bash scripts/gpu-verify.sh $B $R/verify tests,sanitize > $R/verify.txt 2>&1; cat $R/verify.txt
SECONDS=0; timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 $B/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/[aer]*' > $R/verify/memcheck_kernels.log 2>&1; echo "memcheck kernels rc=$? ${SECONDS}s"; tail -1 $R/verify/memcheck_kernels.log
SECONDS=0; timeout 200 compute-sanitizer --tool racecheck --error-exitcode 9 $B/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention*' > $R/verify/racecheck_attention.log 2>&1; echo "racecheck attention rc=$? ${SECONDS}s"; tail -1 $R/verify/racecheck_attention.log
pro(){ local tag=$1 bin=$2; shift 2; SECONDS=0; env "$@" timeout 150 $B/$bin kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 30 --steps-only --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$? ${SECONDS}s"; grep -E "calib|^step_" $R/pro-$tag.log; }
pro base1 mimo-bench-base X=0
pro new1 mimo-bench X=0
pro alloff mimo-bench MIMO_CUDA_EARLY_IDS=0 MIMO_CUDA_XS_AFTER_LOADS=0 MIMO_CUDA_ATTN_PREFETCH=0
pro noids mimo-bench MIMO_CUDA_EARLY_IDS=0
pro noxs mimo-bench MIMO_CUDA_XS_AFTER_LOADS=0
pro noattn mimo-bench MIMO_CUDA_ATTN_PREFETCH=0
pro base2 mimo-bench-base X=0
pro new2 mimo-bench X=0
cd $R && tar czf $OUT/ab34.tgz .
