#!/usr/bin/env bash
# Compiles the addon's CUDA-only code (CUDA graphs, GPU memory statistics; -fsyntax-only) against
# Debian's libtorch headers and CUDA's runtime headers, on a machine without a GPU or a CUDA
# libtorch: the check that those paths still compile, short of building them on a GPU machine.
# Debian's libtorch-dev ships ATen/cuda headers but not the one CMake generates
# (c10/cuda/impl/cuda_cmake_macros.h), and a runtime-only CUDA install has no cuBLAS, cuSPARSE
# or cuSOLVER headers, which ATen/cuda/CUDAContext.h includes for their handle types: this script
# declares those few names in a temporary folder searched last, so a real header always wins.
# The NCCL branch of native/src/distributed.cc (ProcessGroupNCCL) is compiled the same way
# against NCCL's nccl.h: libnccl-dev's where installed (NCCL_HOME or /usr/include), else a
# stand-in declaring the part of NCCL's API (after NVIDIA's nccl.h template) that c10d's
# NCCL headers use.
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
# nccl.h stand-in: types, constants and the functions c10d's NCCLUtils/ProcessGroupNCCL headers name
cat >"$stubs/nccl.h" <<'NCCL'
#pragma once
#include <cuda_runtime.h>
#define NCCL_MAJOR 2
#define NCCL_MINOR 18
#define NCCL_PATCH 1
#define NCCL_SUFFIX ""
#define NCCL_VERSION_CODE 21801
#define NCCL_VERSION(X, Y, Z) (((X) <= 2 && (Y) <= 8) ? (X)*1000 + (Y)*100 + (Z) : (X)*10000 + (Y)*100 + (Z))
#ifdef __cplusplus
extern "C" {
#endif
typedef struct ncclComm* ncclComm_t;
#define NCCL_UNIQUE_ID_BYTES 128
typedef struct {
  char internal[NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;
typedef enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7,
  ncclNumResults = 8
} ncclResult_t;
typedef enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4, ncclNumOps = 5, ncclMaxRedOp = 0x7fffffff } ncclRedOp_t;
typedef enum {
  ncclInt8 = 0, ncclChar = 0, ncclUint8 = 1, ncclInt32 = 2, ncclInt = 2, ncclUint32 = 3, ncclInt64 = 4,
  ncclUint64 = 5, ncclFloat16 = 6, ncclHalf = 6, ncclFloat32 = 7, ncclFloat = 7, ncclFloat64 = 8,
  ncclDouble = 8, ncclBfloat16 = 9, ncclNumTypes = 10
} ncclDataType_t;
typedef enum { ncclScalarDevice = 0, ncclScalarHostImmediate = 1 } ncclScalarResidence_t;
ncclResult_t ncclGetVersion(int* version);
ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId);
ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
ncclResult_t ncclCommAbort(ncclComm_t comm);
const char* ncclGetErrorString(ncclResult_t result);
const char* ncclGetLastError(ncclComm_t comm);
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError);
ncclResult_t ncclCommCount(const ncclComm_t comm, int* count);
ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int* device);
ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank);
ncclResult_t ncclRedOpCreatePreMulSum(ncclRedOp_t* op, void* scalar, ncclDataType_t datatype,
                                      ncclScalarResidence_t residence, ncclComm_t comm);
ncclResult_t ncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm);
ncclResult_t ncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                        int root, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclBcast(void* buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                       cudaStream_t stream);
ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclSend(const void* sendbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                      cudaStream_t stream);
ncclResult_t ncclRecv(void* recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                      cudaStream_t stream);
ncclResult_t ncclGroupStart();
ncclResult_t ncclGroupEnd();
#ifdef __cplusplus
}
#endif
NCCL
nccl_include="${NCCL_HOME:+$NCCL_HOME/include}"
if [ -z "$nccl_include" ] && [ -f /usr/include/nccl.h ]; then nccl_include=/usr/include; fi
if [ -n "$nccl_include" ]; then echo "nccl.h: $nccl_include"; else echo "nccl.h: stand-in (no libnccl-dev)"; fi
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
# the NCCL process group (BEITSEG_WITH_NCCL) of the distributed code
if g++ -std=c++17 -fsyntax-only -D_GLIBCXX_USE_CXX11_ABI=1 -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS \
  -DNODE_ADDON_API_DISABLE_DEPRECATED -Wno-deprecated-declarations -DBEITSEG_WITH_CUDA -DBEITSEG_WITH_NCCL -DUSE_C10D_NCCL \
  -isystem"$cuda/include" ${nccl_include:+-isystem"$nccl_include"} -isystem/usr/include/torch/csrc/api/include \
  -I/usr/include/node -I"$addon_api" -idirafter native/shim -idirafter "$stubs" native/src/distributed.cc; then
  echo "ok     native/src/distributed.cc (NCCL)"
else
  echo "FAILED native/src/distributed.cc (NCCL)"
  status=1
fi
exit $status
