#!/bin/bash
# session 12: the cluster attention with its query row fixed: GPU tests, and steps under cluster sizes
# (MIMO_CUDA_ATTN_CLUSTER unset / 0 / 2 / 4 / 16) with and without PDL: where the cluster kernel's cost comes from
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
$B/mimo-bench --version > $R/version.txt 2>&1
bash scripts/gpu-verify.sh $B $R/verify tests > $R/verify.txt 2>&1; grep -vE "^\[" $R/verify.txt; grep -h "Synthesis" $R/verify/cuda_test_*.log
pro(){ local tag=$1; shift; SECONDS=0; env "$@" timeout 150 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8 --reps 30 --steps-only --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$? ${SECONDS}s $(grep -E '1tok +graph|8tok +graph|1tok +persistent|small_1tok +graph|small_1tok +eager' $R/pro-$tag.log | awk '{printf "%s ", $6}')"; }
pro cl X=0
pro cl0 MIMO_CUDA_ATTN_CLUSTER=0
pro cl2 MIMO_CUDA_ATTN_CLUSTER=2
pro cl4 MIMO_CUDA_ATTN_CLUSTER=4
pro nopdl-cl MIMO_CUDA_PDL=0
pro nopdl-cl0 MIMO_CUDA_PDL=0 MIMO_CUDA_ATTN_CLUSTER=0
cd $R && tar czf $OUT/ab45.tgz --exclude='*.trace.json' .
