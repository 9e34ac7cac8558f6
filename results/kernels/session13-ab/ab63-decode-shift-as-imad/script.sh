#!/bin/bash
# session 13: the MXFP4 word decode's left shift as a multiply by an opaque power of two (an IMAD on the FMA
# pipe), against the binary before it (db7c709) in one call; the kernels' tests; the new instruction mix
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
for b in mimo-bench mimo-bench-base; do $B/$b --version; done > $R/version.txt 2>&1
SECONDS=0
kb(){ timeout 40 $B/$2 kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --no-steps --reps 30 --out $R/kb-$1.json > $R/kb-$1.log 2>&1; echo "kb $1 rc=$? ${SECONDS}s"; grep -E "expert_(gate_up|down) +mxfp4" $R/kb-$1.log; }
pro(){ timeout 60 $B/$2 kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --reps 15 --steps-only --out $R/pro-$1.json > $R/pro-$1.log 2>&1; echo "pro $1 rc=$? ${SECONDS}s"; grep -E "calibration|pro_(1|8|16)tok +graph" $R/pro-$1.log; }
kb base mimo-bench-base; kb new mimo-bench; kb base2 mimo-bench-base; kb new2 mimo-bench
pro base mimo-bench-base; pro new mimo-bench; pro base2 mimo-bench-base; pro new2 mimo-bench
timeout 60 $B/cuda_test_cuda_kernels --jobs 4 > $R/test-kernels.log 2>&1; echo "kernels tests rc=$? ${SECONDS}s"; grep -E "Synthesis|FAIL" $R/test-kernels.log | head -4
K="--kernel-name-base function --kernel-name gemv1_expert_kernel --launch-count 1"
timeout 40 ncu --set full --import-source no --page source --print-source sass --csv $K $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8 --reps 3 --no-steps > $R/ncu-sass.csv 2>&1; echo "ncu rc=$? ${SECONDS}s"
python3 scripts/ncu-sass-mix.py $R/ncu-sass.csv --elements 201326592 --top 6
gzip $R/ncu-sass.csv
cd $R && tar czf $OUT/ab63.tgz .
