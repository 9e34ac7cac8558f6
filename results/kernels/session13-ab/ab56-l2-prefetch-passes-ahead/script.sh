#!/bin/bash
# session 13: weights prefetched into L2 passes ahead in the CUDA-core GEMV (MIMO_CUDA_GEMV1_PREFETCH for
# expert slots, _PLAIN for plain matrices), MXFP4 slot inputs prescaled once when staged; GPU tests, then
# the A/B in one call (kernel rows at 8 / 16 positions, steps at 1 / 8 / 16 positions)
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
$B/mimo-bench --version > $R/version.txt 2>&1
SECONDS=0
timeout 240 $B/cuda_test_cuda_kernels --jobs 4 > $R/test-kernels.log 2>&1; echo "kernels tests rc=$? ${SECONDS}s"; grep -E "Synthesis|FAIL" $R/test-kernels.log | head
kb(){ timeout 60 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --no-steps --reps 30 --out $R/kb-$1.json > $R/kb-$1.log 2>&1; echo "kb $1 rc=$? ${SECONDS}s"; grep -E "calibration|expert_(gate_up|down) +mxfp4|qkv_proj|o_proj" $R/kb-$1.log; }
pro(){ timeout 100 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --reps 20 --steps-only --out $R/pro-$1.json > $R/pro-$1.log 2>&1; echo "pro $1 rc=$? ${SECONDS}s"; grep -E "calibration|pro_(1|8|16)tok +graph" $R/pro-$1.log; }
kb p0; MIMO_CUDA_GEMV1_PREFETCH=1 kb p1; MIMO_CUDA_GEMV1_PREFETCH=2 kb p2; MIMO_CUDA_GEMV1_PREFETCH=4 kb p4
MIMO_CUDA_GEMV1_PREFETCH_PLAIN=1 kb pp1
pro p0; MIMO_CUDA_GEMV1_PREFETCH=1 pro p1; MIMO_CUDA_GEMV1_PREFETCH=2 pro p2; pro p0b; MIMO_CUDA_GEMV1_PREFETCH=2 MIMO_CUDA_GEMV1_PREFETCH_PLAIN=1 pro p2pp1
cd $R && tar czf $OUT/ab56.tgz .
