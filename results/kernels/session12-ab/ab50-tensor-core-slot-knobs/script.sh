#!/bin/bash
# session 12: the tensor-core MXFP4 gate/up slots (MIMO_CUDA_SLOT_MMA=1) under their launch knobs: warps per
# row tile on the columns (MIMO_CUDA_MMA_KSPLIT 1 / 2 / 4, default 8), loads in flight (MIMO_CUDA_MMA_PIPE=4),
# the inputs per lane (MIMO_CUDA_GEMV1=0 MIMO_CUDA_MMA_STAGE=0); the CUDA-core default beside them
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
$B/mimo-bench --version > $R/version.txt 2>&1
kb(){ local tag=$1; shift; SECONDS=0; env "$@" timeout 100 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8,16 --reps 30 --no-steps --out $R/kb-$tag.json > $R/kb-$tag.log 2>&1; echo "kb $tag rc=$? ${SECONDS}s $(grep -E 'expert_gate_up +mxfp4' $R/kb-$tag.log | awk '{printf "%s/%s ", $9, $11}')"; }
kb gemv1 X=0
kb mma-k8 MIMO_CUDA_SLOT_MMA=1
kb mma-k4 MIMO_CUDA_SLOT_MMA=1 MIMO_CUDA_MMA_KSPLIT=4
kb mma-k2 MIMO_CUDA_SLOT_MMA=1 MIMO_CUDA_MMA_KSPLIT=2
kb mma-k1 MIMO_CUDA_SLOT_MMA=1 MIMO_CUDA_MMA_KSPLIT=1
kb mma-k8-pipe4 MIMO_CUDA_SLOT_MMA=1 MIMO_CUDA_MMA_PIPE=4
kb mma-k4-pipe4 MIMO_CUDA_SLOT_MMA=1 MIMO_CUDA_MMA_KSPLIT=4 MIMO_CUDA_MMA_PIPE=4
kb mma-k8-nostage MIMO_CUDA_GEMV1=0 MIMO_CUDA_MMA_STAGE=0
kb gemv1-again X=0
cd $R && tar czf $OUT/ab50.tgz .
