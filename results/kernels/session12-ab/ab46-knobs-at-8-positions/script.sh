#!/bin/bash
# session 12: where the 8-token verify step's time goes (a traced DFlash run, every step shape's per-kernel
# marginal costs) and the launch knobs re-swept on it (8 positions, graph)
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
$B/mimo-bench --version > $R/version.txt 2>&1
SECONDS=0; timeout 150 $B/mimo-bench run --preset mimo-v2.5-pro --shard 0/8 --backend cuda --suite coding --requests 1 --max-new 64 --dflash on --exec graph --trace --out $R/tr-dflash.json > $R/tr-dflash.log 2>&1; echo "dflash trace rc=$? ${SECONDS}s"
for f in $R/tr-dflash*.trace.json; do python3 scripts/trace-step-costs.py $f --all > $R/costs-dflash.txt 2>&1; done; grep -A12 "steps of" $R/costs-dflash.txt | cut -c1-100 | head -60
pro8(){ local tag=$1; shift; SECONDS=0; env "$@" timeout 100 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8 --reps 30 --steps-only --out $R/pro8-$tag.json > $R/pro8-$tag.log 2>&1; echo "pro8 $tag rc=$? ${SECONDS}s $(grep -E 'pro_8tok +graph|drafter_pass' $R/pro8-$tag.log | awk '{printf "%s ", $6}')"; }
pro8 base X=0
pro8 ksplit4 MIMO_CUDA_MMA_KSPLIT=4
pro8 pipe4 MIMO_CUDA_MMA_PIPE=4
pro8 warps12 MIMO_CUDA_GEMV1_WARPS=12
pro8 warps16 MIMO_CUDA_GEMV1_WARPS=16
pro8 blocks3 MIMO_CUDA_GEMV1_BLOCKS=3
pro8 combine2 MIMO_CUDA_COMBINE_BLOCKS=2
pro8 keys16 MIMO_CUDA_ATTN_SPLIT_KEYS=16
pro8 keys64 MIMO_CUDA_ATTN_SPLIT_KEYS=64
pro8 base-again X=0
cd $R && tar czf $OUT/ab46.tgz --exclude='*.trace.json' .
