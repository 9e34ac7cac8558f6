#!/bin/bash
# session 13: the MXFP4 slot inputs prescaled once in their staging (cab173d) against the session's start
# (a815913, kernels of b74c630) and the prefetch build (d21768c) in one call: steps and kernel rows; then the
# GPU tests, memcheck and the reference benchmark of cab173d
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
for b in mimo-bench mimo-bench-base; do $B/$b --version; done > $R/version.txt 2>&1
SECONDS=0
kb(){ timeout 60 $B/$2 kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --no-steps --reps 30 --out $R/kb-$1.json > $R/kb-$1.log 2>&1; echo "kb $1 rc=$? ${SECONDS}s"; grep -E "calibration|expert_(gate_up|down) +mxfp4" $R/kb-$1.log; }
pro(){ timeout 100 $B/$2 kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --reps 20 --steps-only --out $R/pro-$1.json > $R/pro-$1.log 2>&1; echo "pro $1 rc=$? ${SECONDS}s"; grep -E "calibration|pro_(1|8|16)tok +(graph|persistent)" $R/pro-$1.log; }
kb base mimo-bench-base; kb new mimo-bench; kb base2 mimo-bench-base; kb new2 mimo-bench
pro base mimo-bench-base; pro new mimo-bench; pro base2 mimo-bench-base; pro new2 mimo-bench
# (cuda_test_trace is not carried this time: the working tree limit; the prefetch build d21768c neither)
bash scripts/gpu-verify.sh $B $R/verify tests,sanitize,kernels,small > $R/verify.txt 2>&1; grep -vE "^\[" $R/verify.txt | grep -E "rc=|failed|ERROR SUMMARY|(1|8|16)tok +(graph|eager|persistent)"; grep -h "Synthesis" $R/verify/cuda_test_*.log
timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 $B/cuda_test_cuda_kernels --jobs 1 --filter 'cuda_kernels/*expert*' > $R/memcheck-expert.log 2>&1; echo "memcheck expert rc=$? ${SECONDS}s"; tail -2 $R/memcheck-expert.log
cd $R && tar czf $OUT/ab57.tgz --exclude='*.trace.json' .
