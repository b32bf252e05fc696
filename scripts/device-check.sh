#!/usr/bin/env bash
# The GPU check, as one script for the lent NVIDIA machine (see ../shared/device/README.md):
# builds the addon against the PyTorch install's CUDA libtorch, then runs tiny_public parity on
# cuda and the BEiT-B benchmark of beitseg and of PyTorch (HF BeitForSemanticSegmentation and the
# plain-PyTorch peer) in the same run. Results go to $OUT (or ./device-out).
#
# Prepare here first:  bash ../shared/device/pack.sh && npm run build
# then run there with carry: [".device", "dist", "node_modules"].
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-device-out}
mkdir -p "$OUT"
source .device/env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
time node scripts/build-native.mjs 2>&1 | tail -3
node -e "import('./dist/src/tensor/runtime.js').then(r => console.log(JSON.stringify({cuda: r.cuda.isAvailable(), build: r.buildInfo()})))" | tee "$OUT/build.json"
node dist/bench/gpu_bench.js --device cuda --preset base --repeat ${REPEAT:-10} --warmup 3 | tee "$OUT/beitseg.json"
python3 bench/peer/gpu_peer.py --preset base --repeat ${REPEAT:-10} --warmup 3 --out "$OUT/pytorch.json" >/dev/null
cat "$OUT/pytorch.json"
