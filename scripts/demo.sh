#!/usr/bin/env bash
# The main job, end to end on a fresh machine: set-up, then a small BEiT-UperNet is trained on
# CPU on generated ADE20K-layout data (or the earlier run is reused / resumed), evaluated, and
# used to segment sample images. This is a demo model; README "Real BEiT weights" shows the
# real use (convert official weights, predict, eval, fine-tune).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
beitseg() { node bin/beitseg.js "$@"; }

DATA=data/synthetic            # configs/tiny_synthetic.json reads it from here
WORK=work_dirs/demo
OUT=demo
if [ ! -f "$DATA/metainfo.json" ]; then
  beitseg make-synthetic-dataset "$DATA" --n 300 --size 96x128 --classes 6 --seed 0
fi
# --resume continues an interrupted run and returns at once when training already finished
beitseg train --config configs/tiny_synthetic.json --work-dir "$WORK" --device cpu --resume
CKPT="$WORK/$(ls "$WORK" | grep '^iter_[0-9]*$' | sort -t_ -k2 -n | tail -1)/model.safetensors"
beitseg eval --config configs/tiny_synthetic.json --weights "$CKPT" --data "$DATA" --device cpu --out "$OUT/eval.json"
beitseg predict --config configs/tiny_synthetic.json --weights "$CKPT" --device cpu --out "$OUT/predictions" \
  $(ls "$DATA"/images/validation/*.jpg | head -4)
beitseg plot-log "$(ls "$WORK"/*.jsonl | head -1)" --out "$OUT/curves.png"
echo
echo "demo model: $CKPT (a small BEiT-UperNet trained on synthetic shapes, not ADE20K)"
echo "predictions, overlays and class shares: $OUT/predictions/   metrics: $OUT/eval.md   curves: $OUT/curves.png"
