#!/bin/bash
# session 12: MXFP4 expert slots on the tensor cores with a 4-operation pair decode and the input row staged in
# shared memory: GPU tests (GEMV paths 16, 17 new), memcheck of the expert tests, kernels at 8 / 16 positions and
# whole steps with MIMO_CUDA_SLOT_MMA 0 / 1 (and every slot on the tensor cores, MIMO_CUDA_GEMV1=0)
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
$B/mimo-bench --version > $R/version.txt 2>&1
bash scripts/gpu-verify.sh $B $R/verify tests > $R/verify.txt 2>&1; grep -vE "^\[" $R/verify.txt | grep "rc="; grep -h "Synthesis" $R/verify/cuda_test_*.log
grep -h -B2 "FAIL" $R/verify/cuda_test_*.log | head -20
SECONDS=0; timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 $B/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/expert*' > $R/verify/memcheck_expert.log 2>&1; echo "memcheck expert rc=$? ${SECONDS}s"; tail -n 1 $R/verify/memcheck_expert.log
kb(){ local tag=$1; shift; SECONDS=0; env "$@" timeout 100 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8,16 --reps 30 --no-steps --out $R/kb-$tag.json > $R/kb-$tag.log 2>&1; echo "kb $tag rc=$? ${SECONDS}s"; grep -E "expert_(gate_up|down) " $R/kb-$tag.log | head -4; }
kb mma0 X=0
kb mma1 MIMO_CUDA_SLOT_MMA=1
kb gemv1off MIMO_CUDA_GEMV1=0
pro(){ local tag=$1; shift; SECONDS=0; env "$@" timeout 150 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --reps 30 --steps-only --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$? ${SECONDS}s $(grep -E 'pro_(1|8|16)tok +graph|small_1tok +graph' $R/pro-$tag.log | awk '{printf "%s ", $6}')"; }
pro mma0 X=0
pro mma1 MIMO_CUDA_SLOT_MMA=1
pro mma0-again X=0
pro mma1-again MIMO_CUDA_SLOT_MMA=1
cd $R && tar czf $OUT/ab49.tgz --exclude='*.trace.json' .
