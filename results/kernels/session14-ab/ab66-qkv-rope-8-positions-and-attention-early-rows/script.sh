#!/bin/bash
# session 14: the qkv projection's RoPE and cache store in the tensor-core kernel too (9300b47, with and
# without MIMO_CUDA_QKV_ROPE), the attention split's early key / value rows (638d826), against a7f7886; GPU tests
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
for b in mimo-bench qkv8/mimo-bench base/mimo-bench; do $B/$b --version; done > $R/version.txt 2>&1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >> $R/version.txt
SECONDS=0
for t in kernels model dflash; do timeout 90 $B/cuda_test_cuda_$t --jobs 4 --verbose > $R/test-$t.log 2>&1; echo "$t rc=$? ${SECONDS}s"; grep -E "Synthesis|FAIL" $R/test-$t.log | head -3; done
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 $B/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/[aq]*' > $R/memcheck-attn-qkv.log 2>&1; echo "memcheck attn+qkv rc=$? ${SECONDS}s"; tail -1 $R/memcheck-attn-qkv.log
timeout 60 compute-sanitizer --tool racecheck --error-exitcode 9 $B/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/attention*' > $R/racecheck-attn.log 2>&1; echo "racecheck attn rc=$? ${SECONDS}s"; tail -1 $R/racecheck-attn.log
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 $B/cuda_test_cuda_model --jobs 1 --filter 'cuda_model/graph_equals*' > $R/memcheck-model.log 2>&1; echo "memcheck model rc=$? ${SECONDS}s"; tail -1 $R/memcheck-model.log
pro(){ timeout 60 env $3 $B/$2 kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 20 --steps-only --out $R/pro-$1.json > $R/pro-$1.log 2>&1; echo "pro $1 rc=$? ${SECONDS}s"; grep -E "calibration|pro_(1|8)tok +(graph|eager)" $R/pro-$1.log; }
for i in 1 2; do
pro base$i base/mimo-bench X=1; pro qkv8-$i qkv8/mimo-bench X=1; pro qkv8off-$i qkv8/mimo-bench MIMO_CUDA_QKV_ROPE=0; pro attn$i mimo-bench X=1
done
sm(){ timeout 60 env $3 $B/$2 kernels --preset small --shard 0/1 --tokens 1,8 --steps-only --reps 30 --out $R/small-$1.json > $R/small-$1.log 2>&1; echo "small $1 rc=$? ${SECONDS}s"; grep -E "^step_small_(1|8)tok " $R/small-$1.log; }
sm base base/mimo-bench X=1; sm qkv8 qkv8/mimo-bench X=1; sm attn mimo-bench X=1
cd $R && tar czf $OUT/ab66.tgz .
