#!/usr/bin/env bash
# The main job, end to end on a fresh machine: set-up, then a small BEiT-UperNet is trained on
# CPU on generated scenes (or the earlier run is reused / resumed), evaluated, used to segment
# validation images, and summed up in one page (demo/index.html): input, prediction and ground
# truth side by side with the IoU of each class. Every pixel of these scenes belongs to a class
# (make-synthetic-dataset --scene full), so nothing is ignored and predicted ids are the
# annotations' ids. This is a demo model; docs/getting-started.md shows the real use.
set -euo pipefail
cd "$(dirname "$0")/.."
# BEITSEG_DEMO_SKIP_SETUP=1: the machine is set up and built already (npm ci, addon, tsc)
[ "${BEITSEG_DEMO_SKIP_SETUP:-}" = 1 ] || bash scripts/setup.sh
beitseg() { node bin/beitseg.js "$@"; }

CONFIG=configs/demo_scenes.json
DATA=data/demo_scenes          # configs/demo_scenes.json reads it from here
WORK=work_dirs/demo_scenes
OUT=demo
if [ ! -f "$DATA/metainfo.json" ]; then
  beitseg make-synthetic-dataset "$DATA" --n 300 --size 96x128 --classes 6 --seed 0 --scene full
fi
# --resume continues an interrupted run and returns at once when training already finished
beitseg train --config "$CONFIG" --work-dir "$WORK" --device cpu --resume
CKPT="$WORK/$(ls "$WORK" | grep '^iter_[0-9]*$' | sort -t_ -k2 -n | tail -1)/model.safetensors"
beitseg eval --config "$CONFIG" --weights "$CKPT" --data "$DATA" --device cpu --out "$OUT/eval.json"
rm -rf "$OUT/predictions"
beitseg predict --config "$CONFIG" --weights "$CKPT" --device cpu --out "$OUT/predictions" --color \
  $(ls "$DATA"/images/validation/*.jpg | head -6)
beitseg plot-log "$(ls "$WORK"/*.jsonl | head -1)" --out "$OUT/curves.png"
node scripts/demo-summary.mjs "$DATA" "$OUT/predictions" "$OUT/eval.json" "$OUT/index.html"
echo
echo "demo model: $CKPT (a small BEiT-UperNet trained on synthetic textured scenes, not ADE20K)"
echo "predictions (label ids, colour maps, overlays with legends): $OUT/predictions/"
echo "metrics: $OUT/eval.md   training curves: $OUT/curves.png"
echo "summary page (input / prediction / ground truth, IoU per class): file://$PWD/$OUT/index.html"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && command -v xdg-open >/dev/null; then
  xdg-open "$OUT/index.html" >/dev/null 2>&1 || true
fi
