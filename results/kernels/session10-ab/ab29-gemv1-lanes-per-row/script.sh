#!/bin/bash
# lanes per row of the plain GEMVs (MIMO_CUDA_GEMV1_LPR_MAX) and their warps per SM: kernels at 1 token and the steps
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
kern(){ local tag=$1; shift; SECONDS=0; env "$@" timeout 100 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1 --reps 30 --no-steps --out $R/kern-$tag.json > $R/kern-$tag.log 2>&1; echo "kern $tag rc=$? ${SECONDS}s"; grep -E "^(qkv|o_proj|dense|router|lm_head)" $R/kern-$tag.log; }
pro(){ local tag=$1; shift; SECONDS=0; env "$@" timeout 150 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1 --reps 30 --steps-only --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$? ${SECONDS}s"; grep -E "^step_.*(graph|eager)" $R/pro-$tag.log; }
kern l32 X=0
kern l16 MIMO_CUDA_GEMV1_LPR_MAX=16
kern l8 MIMO_CUDA_GEMV1_LPR_MAX=8
kern l4 MIMO_CUDA_GEMV1_LPR_MAX=4
kern l8w16 MIMO_CUDA_GEMV1_LPR_MAX=8 MIMO_CUDA_GEMV1_WARPS=16
kern l16w16 MIMO_CUDA_GEMV1_LPR_MAX=16 MIMO_CUDA_GEMV1_WARPS=16
pro l32a X=0
pro l8 MIMO_CUDA_GEMV1_LPR_MAX=8
pro l16 MIMO_CUDA_GEMV1_LPR_MAX=16
pro l8w16 MIMO_CUDA_GEMV1_LPR_MAX=8 MIMO_CUDA_GEMV1_WARPS=16
pro l32b X=0
cd $R && tar czf $OUT/ab29.tgz .
