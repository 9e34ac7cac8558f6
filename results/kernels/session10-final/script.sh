#!/bin/bash
# persistent phases in traces: GPU tests + memcheck, traced persistent runs (small, Pro shard) with phases
export LD_LIBRARY_PATH=$PWD/.devlibs MIMO_SOURCE_DIR=$PWD PATH=/usr/local/cuda/bin:$PATH
B=.gpu-bin; R=/tmp/r; rm -rf $R; mkdir -p $R
bash scripts/gpu-verify.sh $B $R/verify tests,sanitize
SECONDS=0; timeout 200 $B/mimo-bench run --preset small --backend cuda --suite coding --requests 2 --max-new 48 --warmup 1 --dflash off --exec persistent --trace --out $R/small-persistent-traced.json > $R/small_traced.log 2>&1; echo "small traced rc=$? ${SECONDS}s"; tail -3 $R/small_traced.log
SECONDS=0; timeout 240 $B/mimo-bench run --preset mimo-v2.5-pro --shard 0/8 --backend cuda --suite coding --requests 1 --max-new 24 --dflash off --exec persistent --trace --out $R/pro-persistent-traced.json > $R/pro_traced.log 2>&1; echo "pro traced rc=$? ${SECONDS}s"; tail -3 $R/pro_traced.log
python3 - <<'PY'
import json
for f in ['/tmp/r/small-persistent-traced.json','/tmp/r/pro-persistent-traced.json']:
    try:
        d=json.load(open(f))
    except Exception as e:
        print(f, e); continue
    for c in d.get('configs',[]):
        k=c.get('kernels',{})
        print(f.split('/')[-1], json.dumps(k.get('persistent_phases')), json.dumps(k.get('persistent_phases_us')), k.get('trace_file'))
PY
ls -la $R
cd $R && tar czf $OUT/ab31.tgz --exclude='*.trace.json' . && (ls *.trace.json >/dev/null 2>&1 && tar czf $OUT/traces.tgz *.trace.json)
