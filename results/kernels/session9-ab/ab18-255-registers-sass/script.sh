#!/bin/bash
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=$OUT/r; mkdir -p $R
which cuobjdump nvdisasm
cuobjdump -sass $B/ck.o > $R/all.sass 2>&1; wc -l $R/all.sass
awk '/Function :/{name=$3} /\/\*[0-9a-f]{4}\*\//{n[name]++} END{for(k in n) print n[k], k}' $R/all.sass | sort -n | tail -3
awk '/Function : /{f=($3 ~ /persistent_step/)} f' $R/all.sass > $R/pk.sass; wc -l $R/pk.sass; echo "LDL $(grep -c LDL $R/pk.sass) STL $(grep -c STL $R/pk.sass) CCTL $(grep -c CCTL $R/pk.sass) MEMBAR $(grep -c MEMBAR $R/pk.sass)"
pro(){ local tag=$1; shift; timeout 150 "$@" kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1 --reps 30 --out $R/pro-$tag.json > $R/pro-$tag.log 2>&1; echo "pro $tag rc=$?"; grep -E "^step_.*1tok +persistent" $R/pro-$tag.log; }
MIMO_CUDA_PERSIST_PROFILE=1 pro x1 $B/mimo-bench-x1
grep -A15 "persistent profile" $R/pro-x1.log | head -16
gzip $R/all.sass
tar czf $OUT/ab18.tgz -C $OUT r && rm -rf $R
