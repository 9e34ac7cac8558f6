#!/bin/bash
# graph vs eager with and without programmatic dependent launch (small preset and the Pro shard, 1 token)
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
st(){ local tag=$1 preset=$2 shard=$3; shift 3; env "$@" timeout 150 $B/mimo-bench kernels --preset $preset --shard $shard --tokens 1 --reps 30 --steps-only --out $R/$tag.json > $R/$tag.log 2>&1; echo "$tag rc=$?"; grep -E "calib|^step_" $R/$tag.log; }
st small-pdl small 0/1 X=0
st small-nopdl small 0/1 MIMO_CUDA_PDL=0
st pro-nopdl mimo-v2.5-pro 0/8 MIMO_CUDA_PDL=0
st small-pdl-b small 0/1 X=0
st small-nopdl-b small 0/1 MIMO_CUDA_PDL=0
cd $R && tar czf $OUT/ab32.tgz .
