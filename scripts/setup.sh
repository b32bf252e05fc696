#!/usr/bin/env bash
# Everything a fresh machine needs before beitseg runs: Node packages (npm ci), the native
# addon (compiled by npm's install step against libtorch; Debian's libtorch-dev is installed
# with apt when missing and we are root), and the TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v g++ >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y g++; else echo "need g++: sudo apt-get install -y g++" >&2; exit 1; fi
fi
# libtorch's fp32 matmuls call whatever libblas.so.3 is installed: Debian's default is the
# reference BLAS (~70x slower); OpenBLAS is what python3-torch recommends.
if ! dpkg -s libopenblas0-pthread >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas0-pthread >/dev/null
  else
    echo "warning: for fast CPU matmuls install OpenBLAS: sudo apt-get install -y libopenblas0-pthread" >&2
  fi
fi
# Debian's Chromium for the `beitseg serve` web-page test (puppeteer-core drives it; no browser download).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: the serve page test needs Chromium: sudo apt-get install -y chromium" >&2
  fi
fi
export PUPPETEER_SKIP_DOWNLOAD=1
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm run --silent build:native
fi
npm run --silent build
