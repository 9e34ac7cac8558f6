#!/bin/bash
# session 11: the down projection's post-attention norm factor (NORM_FACTOR) vs 276ecfb, one call
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
bash scripts/gpu-verify.sh $B $R/verify tests,sanitize > $R/verify.txt 2>&1; cat $R/verify.txt
SECONDS=0; timeout 240 compute-sanitizer --tool memcheck --error-exitcode 9 $B/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/[er]*' > $R/verify/memcheck_expert.log 2>&1; echo "memcheck expert rc=$? ${SECONDS}s"; tail -n 1 $R/verify/memcheck_expert.log
pro(){ local tag=$1 bin=$2; shift 2; SECONDS=0; env "$@" timeout 150 $B/$bin kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 30 --steps-only --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$? ${SECONDS}s"; grep -E "calib|^step_" $R/pro-$tag.log; }
pro base1 mimo-bench-base X=0
pro new1 mimo-bench X=0
pro nf0a mimo-bench MIMO_CUDA_NORM_FACTOR=0
pro base2 mimo-bench-base X=0
pro new2 mimo-bench X=0
pro nf0b mimo-bench MIMO_CUDA_NORM_FACTOR=0
cd $R && tar czf $OUT/ab36.tgz .
