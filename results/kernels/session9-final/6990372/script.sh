#!/bin/bash
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=$OUT/r; mkdir -p $R
scripts/gpu-verify.sh $B $R/verify tests,sanitize,matrix 2>&1 | tail -45
timeout 200 $B/mimo-bench run --preset small --backend cuda --suite coding,math --requests 4 --max-new 128 --warmup 1 --dflash off --exec persistent --out $R/small-persistent-plain.json > $R/persistent_plain.log 2>&1; echo "plain rc=$?"; tail -3 $R/persistent_plain.log
timeout 200 $B/mimo-bench run --preset small --backend cuda --suite coding,math --requests 4 --max-new 128 --warmup 1 --dflash off --exec graph --out $R/small-graph-plain.json > $R/graph_plain.log 2>&1; echo "graph rc=$?"; tail -3 $R/graph_plain.log
timeout 200 $B/mimo-bench run --preset mimo-v2.5-pro --shard 0/8 --backend cuda --suite coding --requests 1 --max-new 24 --dflash off --exec persistent --trace --out $R/pro-persistent-traced.json > $R/pro_traced.log 2>&1; echo "pro traced rc=$?"; tail -3 $R/pro_traced.log
rm -f $R/*.trace.json $R/verify/*.trace.json
tar czf $OUT/ab22.tgz -C $OUT r && rm -rf $R
