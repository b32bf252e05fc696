// CUDA graphs: record the kernels of one forward pass once and launch them again as a whole,
// through libtorch's at::cuda::CUDAGraph (present in 1.13 and 2.x with the same calls used
// here). What is captured is decided in TypeScript (src/inference/graphed_forward.ts); this
// file only brackets a capture and replays it.
//
// A capture runs on a side stream (CUDA cannot capture the legacy default stream), after the
// side stream has waited for the work already queued on the current one; libtorch's caching
// allocator serves the tensors made during the capture from a pool private to the graph, so
// they stay valid, at the same addresses, for every replay.
//
// Needs a CUDA build of libtorch and CUDA's runtime headers (the build defines
// BEITSEG_CUDA_HEADERS when it found them); elsewhere every op throws a clear error.
#include "common.h"

#include <map>
#include <memory>

#if defined(BEITSEG_WITH_CUDA) && defined(BEITSEG_CUDA_HEADERS)
#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#define BEITSEG_CUDA_GRAPHS 1
#endif

namespace beitseg {

#ifdef BEITSEG_CUDA_GRAPHS
namespace {

bool g_capturing = false;

struct Capture {
  at::cuda::CUDAGraph graph;
  // held from cudaGraphBegin to cudaGraphEnd: makes the side stream current for the ops between
  std::unique_ptr<c10::cuda::CUDAStreamGuard> stream_guard;
  // autocast's cache of cast weights is off while capturing (casts made in the capture would be
  // cached across it and freed at autocast's exit under the graph), as torch.cuda.graph requires
  bool autocast_cache_was_enabled = true;
  bool captured = false;
};

void EndCapture(Capture& capture) {
  capture.stream_guard.reset();
  at::autocast::set_autocast_cache_enabled(capture.autocast_cache_was_enabled);
  g_capturing = false;
}

std::map<int64_t, std::unique_ptr<Capture>> g_graphs;  // touched on the JS thread only
int64_t g_next_id = 1;

Capture& Find(int64_t id, const char* op) {
  auto it = g_graphs.find(id);
  if (it == g_graphs.end()) throw std::invalid_argument(std::string(op) + ": no CUDA graph " + std::to_string(id));
  return *it->second;
}

}  // namespace
#else
[[noreturn]] static void NoGraphs(const char* op) {
  throw std::runtime_error(std::string(op) +
                           ": CUDA graphs need a CUDA build of libtorch with CUDA's runtime headers "
                           "(LIBTORCH=<a PyTorch 2.x install>, CUDA_HOME; README \"GPU\")");
}
#endif

// cudaGraphsSupported(): whether this build can capture CUDA graphs (a device is still needed).
BEITSEG_OP(cudaGraphsSupported) {
#ifdef BEITSEG_CUDA_GRAPHS
  constexpr bool supported = true;
#else
  constexpr bool supported = false;
#endif
  return Napi::Boolean::New(env, supported);
}

// cudaGraphBegin(deviceIndex): starts capturing the ops that follow on this thread; returns an id.
BEITSEG_OP(cudaGraphBegin) {
#ifdef BEITSEG_CUDA_GRAPHS
  const int64_t device = ArgInt(info, 0);
  if (g_capturing) throw std::runtime_error("cudaGraphBegin: a capture is already in progress");
  auto capture = std::make_unique<Capture>();
  const auto device_index = static_cast<c10::DeviceIndex>(device);
  c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(device_index);
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device_index);
  at::cuda::CUDAEvent queued;
  queued.record(current);
  queued.block(side);
  capture->stream_guard = std::make_unique<c10::cuda::CUDAStreamGuard>(side);
  capture->autocast_cache_was_enabled = at::autocast::is_autocast_cache_enabled();
  at::autocast::set_autocast_cache_enabled(false);
  g_capturing = true;
  try {
    capture->graph.capture_begin();
  } catch (...) {
    EndCapture(*capture);
    throw;
  }
  const int64_t id = g_next_id++;
  g_graphs.emplace(id, std::move(capture));
  return Napi::Number::New(env, static_cast<double>(id));
#else
  NoGraphs("cudaGraphBegin");
#endif
}

// cudaGraphEnd(id, ok): ends the capture; with ok = false (the captured code threw) the capture
// is abandoned and the graph dropped.
BEITSEG_OP(cudaGraphEnd) {
#ifdef BEITSEG_CUDA_GRAPHS
  const int64_t id = ArgInt(info, 0);
  const bool ok = ArgBool(info, 1);
  Capture& capture = Find(id, "cudaGraphEnd");
  try {
    capture.graph.capture_end();
  } catch (...) {
    EndCapture(capture);
    g_graphs.erase(id);
    if (ok) throw;
    return env.Undefined();
  }
  EndCapture(capture);
  if (!ok) {
    g_graphs.erase(id);
    return env.Undefined();
  }
  capture.captured = true;
  return env.Undefined();
#else
  NoGraphs("cudaGraphEnd");
#endif
}

// cudaGraphReplay(id): launches the captured kernels on the current stream.
BEITSEG_OP(cudaGraphReplay) {
#ifdef BEITSEG_CUDA_GRAPHS
  Capture& capture = Find(ArgInt(info, 0), "cudaGraphReplay");
  if (!capture.captured) throw std::runtime_error("cudaGraphReplay: the graph's capture has not ended");
  capture.graph.replay();
  return env.Undefined();
#else
  NoGraphs("cudaGraphReplay");
#endif
}

// cudaGraphDestroy(id): frees the graph (its memory pool goes once no tensor from it is alive).
BEITSEG_OP(cudaGraphDestroy) {
#ifdef BEITSEG_CUDA_GRAPHS
  g_graphs.erase(ArgInt(info, 0));
  return env.Undefined();
#else
  NoGraphs("cudaGraphDestroy");
#endif
}

void RegisterCudaGraph(Napi::Env env, Napi::Object exports) {
  BEITSEG_EXPORT(exports, cudaGraphsSupported);
  BEITSEG_EXPORT(exports, cudaGraphBegin);
  BEITSEG_EXPORT(exports, cudaGraphEnd);
  BEITSEG_EXPORT(exports, cudaGraphReplay);
  BEITSEG_EXPORT(exports, cudaGraphDestroy);
}

}  // namespace beitseg
