#!/bin/bash
# the kernels with their PDL-chained figures (weights from memory, and from L2), and the default benchmark run
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv > $R/device.txt
kern(){ local tag=$1; shift; SECONDS=0; env "$@" timeout 200 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --reps 30 --no-steps --out $R/kern-$tag.json > $R/kern-$tag.log 2>&1; echo "kern $tag rc=$? ${SECONDS}s"; grep -v "^wrote" $R/kern-$tag.log; }
kern hot MIMO_KBENCH_L2_HOT=1
SECONDS=0; timeout 400 $B/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --out $R/pro-default.json > $R/pro-default.log 2>&1; echo "default rc=$? ${SECONDS}s"; cat $R/pro-default.log
cd $R && tar czf $OUT/ab27.tgz .
