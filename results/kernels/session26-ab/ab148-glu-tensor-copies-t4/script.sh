#!/bin/bash
# session 26, ab148 (experiment binaries from 219c974 + the gate/up kernel on tensor copies, uncommitted):
# t4 = expert_glu_bulk_kernel's stages as one 4-d tensor copy a matrix (16 rows x 8 segments, swizzled) and a
# tile's scales as one 3-d box a matrix; t3 = the same smem layout by eight 3-d copies a matrix (one a
# segment); nc4 = t4 with the consumers skipping the decode and MMAs (the copies' ceiling; outputs wrong);
# old = 219c974 (row copies). The t4 kernel tests (the gate/up bulk ones), memcheck of one; kernels and steps.
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
R=/tmp/r; rm -rf $R /tmp/bins; mkdir -p $R /tmp/bins; tar -C /tmp/bins -xJf .gpu-bin/bins.tar.xz
B=/tmp/bins
fin(){ cd $R && tar czf $OUT/ab148.tgz .; exit 0; }
$B/t4/mimo-bench --version > $R/version.txt 2>&1
timeout 120 $B/t4/cuda_test_cuda_kernels --verbose --filter 'cuda_kernels/expert_glu*' > $R/t4-glu-tests.log 2>&1; echo "t4 glu tests rc=$?"; tail -3 $R/t4-glu-tests.log
for v in old t4 t3 nc4 old t4 t3; do
  timeout 120 $B/$v/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 8,16 --reps 20 --out $R/pro-$v.json > $R/pro-$v.log 2>&1; echo "$v rc=$?"; tail -2 $R/pro-$v.log | cut -c1-300
  python3 -c "
import json,sys
d=json.load(open('$R/pro-$v.json'))
print('$v', d['calibration_gbps'], [(k['tokens'],round(k['median_us_pdl_chained'],1)) for k in d['kernels'] if k['name']=='expert_gate_up'], [(s['exec'],s['tokens'],round(s['median_us']/1000,3)) for s in d['steps'] if s['tokens']>1 and s['median_us']>3000])
" 2>&1 | tail -2
done
for v in old t4; do
  timeout 60 $B/$v/mimo-bench kernels --preset small --shard 0/1 --tokens 8,16 --reps 20 --out $R/small-$v.json > $R/small-$v.log 2>&1; echo "small $v rc=$?"
  python3 -c "
import json
d=json.load(open('$R/small-$v.json'))
print('small $v', [(k['tokens'],round(k['median_us_pdl_chained'],1)) for k in d['kernels'] if k['name']=='expert_gate_up'], [(s['exec'],s['tokens'],round(s['median_us']/1000,3)) for s in d['steps']])
" 2>&1 | tail -2
done
timeout 200 compute-sanitizer --tool memcheck $B/t4/cuda_test_cuda_kernels --filter 'cuda_kernels/expert_glu_bulk_slots' > $R/t4-memcheck.log 2>&1; echo "memcheck rc=$?"; tail -2 $R/t4-memcheck.log
fin
