#!/bin/bash
# session 29, ab170 (diagnostic): the MXFP4 tensor-core decode at the instruction counts of a repacked layout
# (diag: e2m1_pair_scaled as 1 / 2 / 4 / 3 instructions a pair, outputs wrong) against the unchanged binary (base):
# Pro kernels and steps, each twice
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
R=/tmp/r; rm -rf $R /tmp/bins; mkdir -p $R /tmp/bins; tar -C /tmp/bins -xJf .gpu-bin/bins.tar.xz
B=/tmp/bins
fin(){ cd $R && tar czf $OUT/ab170.tgz .; exit 0; }
SECONDS=0
summ(){ python3 -c "
import json
d=json.load(open('$1'))
ks={}
for k in d['kernels']:
    key=(k['name'],k['tokens'])
    if key not in ks and k['name'] in ('expert_gate_up','expert_down_combine'): ks[key]=round(k['median_us_pdl_chained'],1)
print('$2', d['calibration_gbps'], [(s['exec'][:2],s['tokens'],round(s['median_us']/1000,3)) for s in d['steps'] if s['median_us']>300 and 'drafter' not in s['name'] and s['exec']=='graph'], ks)
" 2>&1 | tail -1; }
P="kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --reps 20"
for run in 1 2; do
  for v in base diag; do
    timeout 150 $B/$v/mimo-bench $P --out $R/pro-$v-$run.json > $R/pro-$v-$run.log 2>&1; summ $R/pro-$v-$run.json $v-$run
  done
done
echo "total ${SECONDS}s"
fin
