#!/bin/bash
# session 26, ab152 (experiment binary b3 = 897a654 + b3.diff: the gate/up bulk kernel's stages of 1024 columns,
# one chunk a consumer warp, three blocks an SM) against 87633d0 (2048-column stages, two blocks an SM): its
# gate/up tests; Pro kernels and steps at 8 / 16 positions twice each, with MIMO_CUDA_SLOT_BULK_TILES=4; small
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
R=/tmp/r; rm -rf $R /tmp/bins; mkdir -p $R /tmp/bins; tar -C /tmp/bins -xJf .gpu-bin/bins.tar.xz
B=/tmp/bins
fin(){ cd $R && tar czf $OUT/ab152.tgz .; exit 0; }
$B/b3/mimo-bench --version > $R/version.txt 2>&1
summ(){ python3 -c "
import json
d=json.load(open('$1'))
print('$2', d['calibration_gbps'], [(k['name'][:14],k['tokens'],round(k['median_us_pdl_chained'],1)) for k in d['kernels'] if k['name'] in ('expert_gate_up',) and k['bytes']<1.9e8 and k['tokens']>1], [(s['exec'][:2],s['tokens'],round(s['median_us']/1000,3)) for s in d['steps'] if s['median_us']>3000 or 'small' in s['name']])
" 2>&1 | tail -1; }
timeout 120 $B/b3/cuda_test_cuda_kernels --filter 'cuda_kernels/expert_glu*' > $R/b3-glu-tests.log 2>&1; echo "b3 glu tests rc=$?"; tail -1 $R/b3-glu-tests.log
for v in b3 old b3 old; do
  timeout 120 $B/$v/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8,16 --reps 20 --out $R/pro-$v.json > $R/pro-$v.log 2>&1; echo "$v rc=$?"; summ $R/pro-$v.json $v
done
MIMO_CUDA_SLOT_BULK_TILES=4 timeout 120 $B/b3/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8,16 --reps 20 --out $R/pro-b3-tiles4.json > $R/pro-b3-tiles4.log 2>&1; echo "b3 tiles4 rc=$?"; summ $R/pro-b3-tiles4.json b3-tiles4
for v in b3 old; do
  timeout 60 $B/$v/mimo-bench kernels --preset small --shard 0/1 --tokens 8,16 --reps 20 --out $R/small-$v.json > $R/small-$v.log 2>&1; echo "small $v rc=$?"; summ $R/small-$v.json small-$v
done
fin
