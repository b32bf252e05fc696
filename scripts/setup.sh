#!/usr/bin/env bash
# Everything a fresh machine needs before beitseg runs: Node packages (npm ci), the native
# addon (compiled by npm's install step, scripts/build-native.mjs, which first installs the
# Debian packages the addon needs as root: g++, libtorch-dev, libopenblas0-pthread), any extra
# Debian packages the tests or the demo need (EXTRA_APT_PACKAGES), and the TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages beyond the addon's own, one per line.
EXTRA_APT_PACKAGES=(
  chromium # the `beitseg serve` web-page test (driven by puppeteer-core)
  clang-format # scripts/lint.sh: the addon's C++ style
  python3-torch # torch.distributed.run (torchrun) in the rendezvous test, and the benchmarks' PyTorch peer
  python3-onnx  # the onnx checker in the ONNX export test
)

# Installs the missing ones as root; otherwise stops with the apt command to run.
ensure_apt_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f '${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
}

ensure_apt_packages "${EXTRA_APT_PACKAGES[@]}"
# puppeteer-core drives Debian's Chromium (above) for the serve page test; never a browser download.
export PUPPETEER_SKIP_DOWNLOAD=1
# onnxruntime-node ships its CPU binaries in its npm tarball; its install script would fetch the CUDA
# provider from outside the npm registry, which this machine (and CI) cannot reach.
export ONNXRUNTIME_NODE_INSTALL=skip
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm run --silent build:native
fi
npm run --silent build
