#!/usr/bin/env bash
# The GPU check, as one script for the lent NVIDIA machine (see ../shared/device/README.md):
#   1. builds the addon against the PyTorch install's CUDA libtorch (no network);
#   2. tiny_public parity on cuda + BEiT-B UperNet timings of beitseg (bench/gpu_bench.ts);
#   3. the CLI on cuda end to end: a tiny model trained, evaluated and used for prediction,
#      predictions compared with the CPU's;
#   4. PyTorch in the same run: HF BeitForSemanticSegmentation and the plain-PyTorch peer
#      (bench/peer/gpu_peer.py), same phases.
# PHASES=... / PEER_PHASES=... pick gpu_bench / gpu_peer phases (e.g. infer_fp16_b4@math,infer_fp16_b4@sdpa); SKIP_CLI=1
# skips step 3. Every step is time-boxed and a failing step does not stop the others. Results go to $OUT
# (or ./device-out): log.txt, build.log, beitseg.json, pytorch.json, cli.json.
#
# Prepare here:  bash ../shared/device/pack.sh && npm run build && bash scripts/device-check.sh --prepare
# (--prepare copies the fixtures and the runtime npm packages into .device/), then run there
# with carry [".device", "dist"]:  bash scripts/device-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
  # Runtime packages and the fixtures travel inside .device/ (git-ignored), as one carried path.
  rm -rf .device/fixtures .device/node_modules
  mkdir -p .device/node_modules
  cp -r test/fixtures/tiny_public .device/fixtures
  node -e "
    const fs = require('fs'), path = require('path');
    const seen = new Set();
    const visit = (name) => {
      if (seen.has(name)) return;
      seen.add(name);
      const pkg = JSON.parse(fs.readFileSync(path.join('node_modules', name, 'package.json'), 'utf8'));
      for (const d of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
        if (fs.existsSync(path.join('node_modules', d))) visit(d);
      }
    };
    for (const d of Object.keys(require('./package.json').dependencies)) visit(d);
    console.log([...seen].join('\n'));
  " | while read -r pkg; do mkdir -p ".device/node_modules/$(dirname "$pkg")"; cp -r "node_modules/$pkg" ".device/node_modules/$pkg"; done
  du -sh .device
  exit 0
fi

OUT=${OUT:-device-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
step() { echo; echo "=== $1 ($(date +%T))"; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
source .device/env.sh
# the carried runtime packages stand in for node_modules (node_modules itself does not travel)
[ -d node_modules ] || ln -s .device/node_modules node_modules

step "build the addon against $LIBTORCH"
if timeout 200 node scripts/build-native.mjs >"$OUT/build.log" 2>&1; then
  tail -2 "$OUT/build.log"
  node -e "import('./dist/src/tensor/runtime.js').then(r => console.log(JSON.stringify({cuda: r.cuda.isAvailable(), flags: r.cuda.flags(), build: r.buildInfo().torchVersion, stats: r.buildInfo().cudaStats})))"
  built=1
else
  echo "BUILD FAILED"; grep -m 20 -E "error|Error" "$OUT/build.log"
  built=0
fi

if [ "$built" = 1 ]; then
  step "beitseg: parity + BEiT-B timings"
  timeout 200 node dist/bench/gpu_bench.js --device cuda --preset base --repeat "${REPEAT:-10}" --warmup 3 \
    ${PHASES:+--phases "$PHASES"} --fixtures .device/fixtures --out "$OUT/beitseg.json" >/dev/null || echo "gpu_bench exited with $?"

fi

step "PyTorch peer: HF BeitForSemanticSegmentation + plain PyTorch"
PYTHONUNBUFFERED=1 timeout 200 python3 bench/peer/gpu_peer.py --preset base --repeat "${REPEAT:-10}" --warmup 3 \
  ${PEER_PHASES:+--phases "$PEER_PHASES"} --out "$OUT/pytorch.json" >/dev/null || echo "gpu_peer exited with $?"

if [ "$built" = 1 ] && [ -z "${SKIP_CLI:-}" ]; then
  step "CLI on cuda: train, eval, predict (tiny synthetic model)"
  (
    set -e
    b() { node bin/beitseg.js "$@"; }
    b make-synthetic-dataset data/synthetic --n 60 --size 96x128 --classes 6 --seed 0 >/dev/null
    b train --config configs/tiny_synthetic.json --work-dir work_dirs/gpu --device cuda --max-iters 40 --amp fp16 | tail -3
    ckpt=work_dirs/gpu/$(ls work_dirs/gpu | grep '^iter_[0-9]*$' | sort -t_ -k2 -n | tail -1)/model.safetensors
    b eval --config configs/tiny_synthetic.json --weights "$ckpt" --data data/synthetic --device cuda --out "$OUT/cli.json" | tail -4
    imgs=$(ls data/synthetic/images/validation/*.jpg | head -4)
    b predict --config configs/tiny_synthetic.json --weights "$ckpt" --device cuda --out pred_cuda $imgs >/dev/null
    b predict --config configs/tiny_synthetic.json --weights "$ckpt" --device cpu --out pred_cpu $imgs >/dev/null
    node --input-type=module -e "
      import sharp from 'sharp'; import fs from 'node:fs';
      for (const f of fs.readdirSync('pred_cuda').filter((n) => n.endsWith('_pred.png'))) {
        const [a, b] = await Promise.all(['pred_cuda', 'pred_cpu'].map((d) => sharp(d + '/' + f).raw().toBuffer()));
        let same = 0; for (let i = 0; i < a.length; i++) same += a[i] === b[i] ? 1 : 0;
        console.log('label agreement cuda vs cpu ' + f + ': ' + (100 * same / a.length).toFixed(3) + '%');
      }"
  ) || echo "CLI step failed"
fi

step "done"
