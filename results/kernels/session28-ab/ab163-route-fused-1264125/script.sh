#!/bin/bash
# session 28, ab163: the router's top-k done by the gate/up bulk kernel (1264125): the new test and the kernel,
# model, DFlash tests; memcheck of the new test; Pro and small steps MIMO_CUDA_ROUTE_FUSED 1 / 0 and 90bac6c, twice
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
R=/tmp/r; rm -rf $R /tmp/bins; mkdir -p $R /tmp/bins; tar -C /tmp/bins -xJf .gpu-bin/bins.tar.xz
B=/tmp/bins
fin(){ cd $R && tar czf $OUT/ab163.tgz .; exit 0; }
$B/new/mimo-bench --version > $R/version.txt 2>&1
SECONDS=0
summ(){ python3 -c "
import json
d=json.load(open('$1'))
print('$2', d['calibration_gbps'], [(s['exec'][:2],s['tokens'],round(s['median_us']/1000,3)) for s in d['steps'] if s['median_us']>300 and 'drafter' not in s['name'] and s['exec']!='persistent'])
" 2>&1 | tail -1; }
timeout 120 $B/new/cuda_test_cuda_kernels --verbose --filter 'cuda_kernels/router_topk*' > $R/test-route.log 2>&1; echo "route test rc=$? ${SECONDS}s"; grep -E "route fused|Synthesis|FAIL|fail" $R/test-route.log | head -20
timeout 300 $B/new/cuda_test_cuda_kernels > $R/test-kernels.log 2>&1; echo "kernels rc=$? ${SECONDS}s"; tail -2 $R/test-kernels.log
for t in model dflash round; do timeout 200 $B/new/cuda_test_cuda_$t > $R/test-$t.log 2>&1; echo "$t rc=$? ${SECONDS}s"; tail -1 $R/test-$t.log; done
timeout 200 compute-sanitizer --tool memcheck $B/new/cuda_test_cuda_kernels --filter 'cuda_kernels/router_topk_fused*' > $R/memcheck-route.log 2>&1; echo "memcheck rc=$? ${SECONDS}s"; tail -1 $R/memcheck-route.log
for rep in 1 2; do
  timeout 100 $B/new/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --reps 20 --steps-only --out $R/pro-fused-$rep.json > $R/pro-fused-$rep.log 2>&1; summ $R/pro-fused-$rep.json fused
  MIMO_CUDA_ROUTE_FUSED=0 timeout 100 $B/new/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --reps 20 --steps-only --out $R/pro-unfused-$rep.json > $R/pro-unfused-$rep.log 2>&1; summ $R/pro-unfused-$rep.json unfused
  timeout 100 $B/old/mimo-bench kernels --preset mimo-v2.5-pro --shard 0/8 --tokens 1,8,16 --reps 20 --steps-only --out $R/pro-old-$rep.json > $R/pro-old-$rep.log 2>&1; summ $R/pro-old-$rep.json old
  echo "${SECONDS}s"
done
for v in fused unfused; do
  [ $v = unfused ] && export MIMO_CUDA_ROUTE_FUSED=0
  timeout 100 $B/new/mimo-bench kernels --preset small --shard 0/1 --tokens 1,8,16 --reps 20 --steps-only --out $R/small-$v.json > $R/small-$v.log 2>&1; summ $R/small-$v.json small-$v
done
unset MIMO_CUDA_ROUTE_FUSED
echo "total ${SECONDS}s"
fin
