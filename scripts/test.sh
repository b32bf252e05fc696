#!/usr/bin/env bash
# Set-up (scripts/setup.sh), the style check (scripts/lint.sh), then the test suite with node's
# test runner, in lanes run one after another:
#   fast         unit tests (a developer runs this lane on every change: `npm run test:fast`)
#   cli          the commands run as child processes (predict, config, convert, the docs' commands)
#   training     multi-iteration training, kill/resume, memory-capped child processes
#   distributed  2-rank runs over Gloo on 127.0.0.1, the launcher
#   package      `npm pack` installed into a consumer project
#   serve        `beitseg serve` processes and its web page in headless Chromium
#   avx2         the low-precision, parity and distributed numerics under the kernels of an
#                AVX2-only CPU, forced on a larger one (docs/performance.md "CPU kinds")
# Every lane runs even after one fails; the last line sums them up ("tests: N passed, N failed")
# and the exit status is non-zero if any lane failed.
#   bash scripts/test.sh                 set-up, style check, every lane (what CI runs: .ci/run)
#   bash scripts/test.sh --fast          build, then the fast lane only
#   bash scripts/test.sh --lane NAME...  build, then the named lanes
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_LANES=(fast cli training distributed package serve avx2)

# Files (under dist/test, without .test.js) of each lane but fast, which takes every other test file.
LANE_cli=(cli/predict cli/predict_names cli/config_cli cli/conventions cli/predict_windows checkpoint/interop_cli
  checkpoint/unknown_globals_hint data/image_limits evaluation/eval_data_option export/onnx_export docs/commands)
LANE_training=(engine/learns engine/kill_resume engine/resume engine/graphed_train_step engine/hooks
  engine/cli_train engine/mmengine_resume tensor/cpu_allocator tensor/memory tensor/errors evaluation/evaluate_dataset
  models/model_size checkpoint/pickle_bounds config/eval_bounds config/config_fuzz)
LANE_distributed=(distributed/bn_sync distributed/cli distributed/collectives distributed/ddp
  distributed/sampler_split distributed/train distributed/rendezvous distributed/signals distributed/batch_record
  distributed/slurm)
LANE_package=(package/consumer package/onnx_consumer package/engines package/types package/build_native)
LANE_serve=(serve/api serve/scheduler serve/lifecycle serve/load serve/page serve/auth_bypass serve/worker
  serve/operations serve/multi_model serve/deploy_files serve/browser_mode export/browser_page)
LANE_avx2=(inference/cpu_kinds tensor/ops models/tiny_parity inference/bf16 inference/int8 distributed/bn_sync
  distributed/ddp distributed/collectives distributed/train)
# What an AVX2-only CPU runs: ATen's AVX2 kernels, oneDNN capped at AVX2 (no VNNI int8, no bf16:
# ATen's own bf16 kernels), OpenBLAS's Haswell kernels.
AVX2_ENV=(ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Haswell)

lanes=()
case "${1:-}" in
  --fast) lanes=(fast) ;;
  --lane)
    shift
    lanes=("$@")
    ;;
  "") lanes=("${ALL_LANES[@]}") ;;
  *)
    echo "usage: bash scripts/test.sh [--fast | --lane NAME...] (lanes: ${ALL_LANES[*]})" >&2
    exit 2
    ;;
esac
for lane in "${lanes[@]}"; do
  [[ " ${ALL_LANES[*]} " == *" $lane "* ]] || {
    echo "unknown lane '$lane' (lanes: ${ALL_LANES[*]})" >&2
    exit 2
  }
done

if [ ${#lanes[@]} -eq ${#ALL_LANES[@]} ]; then
  bash scripts/setup.sh
  bash scripts/lint.sh
else
  npm run --silent build
fi

# The files of one lane, one per line.
lane_files() {
  local lane=$1 name f
  if [ "$lane" = fast ]; then
    local others=" ${LANE_cli[*]} ${LANE_training[*]} ${LANE_distributed[*]} ${LANE_package[*]} ${LANE_serve[*]} "
    while IFS= read -r f; do
      name=${f#dist/test/}
      name=${name%.test.js}
      [[ "$others" == *" $name "* ]] || echo "$f"
    done < <(find dist/test -name '*.test.js' | sort)
  else
    local -n list="LANE_$lane"
    for name in "${list[@]}"; do
      f="dist/test/$name.test.js"
      [ -f "$f" ] || {
        echo "scripts/test.sh: lane $lane names $f, which does not exist" >&2
        return 1
      }
      echo "$f"
    done
  fi
}

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# Readable output on a terminal, TAP elsewhere (CI); a TAP copy is kept for the totals.
reporter=tap
[ -t 1 ] && reporter=spec
passed=0 failed=0 failed_lanes=()
for lane in "${lanes[@]}"; do
  mapfile -t files < <(lane_files "$lane")
  echo "== lane $lane: ${#files[@]} files"
  env_prefix=()
  [ "$lane" = avx2 ] && env_prefix=("${AVX2_ENV[@]}")
  status=0
  env "${env_prefix[@]}" node --test --test-concurrency=1 \
    --test-reporter="$reporter" --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$logs/$lane.tap" "${files[@]}" || status=$?
  p=$(grep -E '^# pass [0-9]+$' "$logs/$lane.tap" | tail -1 | awk '{print $3}')
  f=$(grep -E '^# fail [0-9]+$' "$logs/$lane.tap" | tail -1 | awk '{print $3}')
  c=$(grep -E '^# cancelled [0-9]+$' "$logs/$lane.tap" | tail -1 | awk '{print $3}')
  f=$((${f:-0} + ${c:-0}))
  # a runner that died before its summary counts as a failure of the lane
  if [ -z "$p" ] || [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=$((f + 1)); fi
  passed=$((passed + ${p:-0}))
  failed=$((failed + f))
  echo "== lane $lane: ${p:-0} passed, $f failed"
  [ "$f" -eq 0 ] || failed_lanes+=("$lane")
done
[ ${#failed_lanes[@]} -eq 0 ] || echo "failed lanes: ${failed_lanes[*]}"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
