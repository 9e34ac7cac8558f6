#!/bin/bash
# the fused top-k: GPU tests + memcheck, then the steps with MIMO_CUDA_FUSED_ROUTE 1 / 0 (same binary, one call)
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
pro(){ local tag=$1; shift; SECONDS=0; env "$@" timeout 150 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 30 --steps-only --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$? ${SECONDS}s"; grep -E "calib|^step_" $R/pro-$tag.log; }
pro fr1a X=0
pro fr0a MIMO_CUDA_FUSED_ROUTE=0
pro fr1b X=0
pro fr0b MIMO_CUDA_FUSED_ROUTE=0
bash scripts/gpu-verify.sh $B $R/verify tests,sanitize
SECONDS=0; timeout 300 compute-sanitizer --tool memcheck --error-exitcode 9 $B/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/router_topk_fused*' > $R/verify/memcheck_fused_route.log 2>&1; echo "memcheck fused route rc=$? ${SECONDS}s"; tail -2 $R/verify/memcheck_fused_route.log
cd $R && tar czf $OUT/ab28.tgz .
