#!/usr/bin/env bash
# Compiles the addon's CUDA-only code (CUDA graphs, GPU memory statistics; -fsyntax-only) against
# Debian's libtorch headers and CUDA's runtime headers, on a machine without a GPU or a CUDA
# libtorch: the check that those paths still compile, short of building them on a GPU machine.
# Debian's libtorch-dev ships ATen/cuda headers but not the one CMake generates
# (c10/cuda/impl/cuda_cmake_macros.h), and a runtime-only CUDA install has no cuBLAS, cuSPARSE
# or cuSOLVER headers, which ATen/cuda/CUDAContext.h includes for their handle types: this script
# declares those few names in a temporary folder searched last, so a real header always wins.
#   bash scripts/check-cuda-syntax.sh            (CUDA_HOME, default /usr/local/cuda)
set -euo pipefail
cd "$(dirname "$0")/.."
cuda="${CUDA_HOME:-/usr/local/cuda}"
if [ ! -f "$cuda/include/cuda_runtime_api.h" ]; then
  echo "no CUDA runtime headers in $cuda/include (set CUDA_HOME)" >&2
  exit 2
fi
stubs="$(mktemp -d)"
trap 'rm -rf "$stubs"' EXIT
mkdir -p "$stubs/c10/cuda/impl"
echo '#pragma once' >"$stubs/c10/cuda/impl/cuda_cmake_macros.h"
# stub <header> <library prefix>: the library's handle and status types
stub() {
  printf '#pragma once\ntypedef struct %sContext* %sHandle_t;\ntypedef int %sStatus_t;\n' "$2" "$2" "$2" >"$stubs/$1"
}
stub cusparse.h cusparse
stub cublas_v2.h cublas
stub cublasLt.h cublasLt
stub cusolverDn.h cusolverDn
printf '#pragma once\n#include "cusolverDn.h"\ntypedef int cusolverStatus_t;\n' >"$stubs/cusolver_common.h"
addon_api="$(node -p "require('path').dirname(require.resolve('node-addon-api/package.json'))")"
status=0
for f in native/src/*.cc; do
  grep -q 'BEITSEG_WITH_CUDA\|BEITSEG_CUDA' "$f" || continue
  if g++ -std=c++17 -fsyntax-only -D_GLIBCXX_USE_CXX11_ABI=1 -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS \
    -DNODE_ADDON_API_DISABLE_DEPRECATED -Wno-deprecated-declarations -DBEITSEG_WITH_CUDA -DBEITSEG_CUDA_STATS \
    -DBEITSEG_CUDA_HEADERS -isystem"$cuda/include" -isystem/usr/include/torch/csrc/api/include \
    -I/usr/include/node -I"$addon_api" -idirafter native/shim -idirafter "$stubs" "$f"; then
    echo "ok     $f"
  else
    echo "FAILED $f"
    status=1
  fi
done
exit $status
