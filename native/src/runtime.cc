// Process-wide state: threads, random seeds and generator state, grad mode, autograd entry
// points, autocast, CUDA queries, and build information.
#include "common.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <dlfcn.h>
#include <torch/cuda.h>

#include <ATen/Context.h>

#ifdef BEITSEG_WITH_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

// Peak-memory statistics need CUDA's runtime headers, which a PyTorch install may lack;
// the build defines BEITSEG_CUDA_STATS only when it found them.
#ifdef BEITSEG_CUDA_STATS
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace beitseg {

// Whether optional argument i was given (present, neither undefined nor null). Kept per file: a
// change to common.h rebuilds every object.
static bool Given(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() && !info[i].IsUndefined() && !info[i].IsNull();
}

namespace {
#ifdef BEITSEG_WITH_DNNL
// oneDNN's own name for the ISA it dispatches to: the CPU's, capped by ONEDNN_MAX_CPU_ISA.
const char* OnednnIsaName(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_sse41:
      return "sse41";
    case dnnl_cpu_isa_avx:
      return "avx";
    case dnnl_cpu_isa_avx2:
      return "avx2";
    case dnnl_cpu_isa_avx2_vnni:
      return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core:
      return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}
#endif

}  // namespace

bool OnednnRunsBf16() {
#ifdef BEITSEG_WITH_DNNL
  const unsigned isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
  const unsigned core = static_cast<unsigned>(dnnl_cpu_isa_avx512_core);
  return (isa & core) == core;
#else
  return true;
#endif
}

BEITSEG_OP(setNumThreads) {
  int64_t n = ArgInt(info, 0);
  if (n < 1) throw std::invalid_argument("setNumThreads: need at least 1 thread, got " + std::to_string(n));
  at::set_num_threads(static_cast<int>(n));
  return env.Undefined();
}
BEITSEG_OP(getNumThreads) {
  return Napi::Number::New(env, at::get_num_threads());
}

BEITSEG_OP(manualSeed) {
  at::manual_seed(static_cast<uint64_t>(ArgInt(info, 0)));
  return env.Undefined();
}

// The CPU generator's full state as a uint8 tensor, for exact resume.
BEITSEG_OP(getRngState) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return TensorHandle::Wrap(env, gen.get_state());
}
BEITSEG_OP(setRngState) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(ArgTensor(info, 0));
  return env.Undefined();
}

// setGradEnabled(bool) -> previous mode
BEITSEG_OP(setGradEnabled) {
  bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(ArgBool(info, 0));
  return Napi::Boolean::New(env, prev);
}
BEITSEG_OP(isGradEnabled) {
  return Napi::Boolean::New(env, c10::GradMode::is_enabled());
}

BEITSEG_OP(setRequiresGrad) {
  at::Tensor t = ArgTensor(info, 0);
  t.set_requires_grad(ArgBool(info, 1));
  return env.Undefined();
}
BEITSEG_OP(requiresGrad) {
  return Napi::Boolean::New(env, ArgTensor(info, 0).requires_grad());
}

// backward(t, gradient?): accumulates into the .grad of the leaves.
BEITSEG_OP(backward) {
  const at::Tensor& t = ArgTensor(info, 0);
  std::optional<at::Tensor> g = ArgOptTensor(info, 1);
  if (!t.requires_grad()) throw std::invalid_argument("backward: tensor does not require grad (no graph was recorded)");
  t.backward(g ? *g : at::Tensor());
  return env.Undefined();
}

BEITSEG_OP(grad) {
  const at::Tensor& g = ArgTensor(info, 0).grad();
  if (!g.defined()) return env.Null();
  return TensorHandle::Wrap(env, g);
}
BEITSEG_OP(setGrad) {
  at::Tensor t = ArgTensor(info, 0);
  std::optional<at::Tensor> g = ArgOptTensor(info, 1);
  t.mutable_grad() = g ? *g : at::Tensor();
  return env.Undefined();
}

// setAutocast(deviceType, enabled, dtype): the same switch torch.autocast flips.
BEITSEG_OP(setAutocast) {
  std::string dev = ArgString(info, 0);
  bool enabled = ArgBool(info, 1);
  at::ScalarType dtype = ParseDType(ArgString(info, 2));
  if (dev != "cpu" && dev != "cuda") throw std::invalid_argument("setAutocast: device type must be cpu or cuda");
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::DeviceType type = dev == "cpu" ? at::kCPU : at::kCUDA;
  at::autocast::set_autocast_enabled(type, enabled);
  at::autocast::set_autocast_dtype(type, dtype);
#else
  if (dev == "cpu") {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
#endif
  if (!enabled) at::autocast::clear_cache();
  // Under CPU bf16 autocast where oneDNN cannot run bf16 (OnednnRunsBf16, common.h), ATen's own
  // bf16 kernels for every op, as on an AVX2-only CPU; fp32 keeps oneDNN outside the scope.
  if (dev == "cpu" && !OnednnRunsBf16()) {
    at::globalContext().setUserEnabledMkldnn(!(enabled && dtype == at::kBFloat16));
  }
  return env.Undefined();
}

BEITSEG_OP(cudaIsAvailable) {
  return Napi::Boolean::New(env, torch::cuda::is_available());
}
BEITSEG_OP(cudaDeviceCount) {
  return Napi::Number::New(env, static_cast<double>(torch::cuda::device_count()));
}
BEITSEG_OP(cudaSynchronize) {
  if (torch::cuda::is_available()) torch::cuda::synchronize();
  return env.Undefined();
}

// cudaMemory(reset): {allocated, peak} bytes on the current device (zeros without CUDA).
BEITSEG_OP(cudaMemory) {
  [[maybe_unused]] const bool reset = Given(info, 0) && ArgBool(info, 0);
  Napi::Object out = Napi::Object::New(env);
  double allocated = 0, peak = 0;
#ifdef BEITSEG_CUDA_STATS
  if (torch::cuda::is_available()) {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
    allocated = static_cast<double>(stats.allocated_bytes[0].current);
    peak = static_cast<double>(stats.allocated_bytes[0].peak);
    if (reset) {
      c10::cuda::CUDACachingAllocator::resetPeakStats(0);
    }
  }
#endif
  out.Set("allocated", allocated);
  out.Set("peak", peak);
  return out;
}

// cudaFlags({benchmark?, tf32Matmul?, tf32Cudnn?}) sets what torch.backends.cudnn.benchmark,
// torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32 set; returns the
// flags now in force.
BEITSEG_OP(cudaFlags) {
  auto& ctx = at::globalContext();
  if (Given(info, 0)) {
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "cudaFlags: argument 0 must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    auto flag = [&](const char* name, const std::function<void(bool)>& set) {
      Napi::Value v = o.Get(name);
      if (v.IsUndefined()) return;
      if (!v.IsBoolean()) throw std::invalid_argument(std::string("cudaFlags: ") + name + " must be a boolean");
      set(v.As<Napi::Boolean>().Value());
    };
    flag("benchmark", [&](bool b) { ctx.setBenchmarkCuDNN(b); });
    flag("tf32Matmul", [&](bool b) { ctx.setAllowTF32CuBLAS(b); });
    flag("tf32Cudnn", [&](bool b) { ctx.setAllowTF32CuDNN(b); });
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("benchmark", ctx.benchmarkCuDNN());
  out.Set("tf32Matmul", ctx.allowTF32CuBLAS());
  out.Set("tf32Cudnn", ctx.allowTF32CuDNN());
  return out;
}

BEITSEG_OP(buildInfo) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("torchVersion", std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                              std::to_string(TORCH_VERSION_PATCH));
#ifdef BEITSEG_WITH_CUDA
  out.Set("cudaBuild", true);
#ifdef BEITSEG_CUDA_STATS
  out.Set("cudaStats", true);
#else
  out.Set("cudaStats", false);
#endif
#else
  out.Set("cudaBuild", false);
#endif
  out.Set("mkldnn", at::hasMKLDNN());
#ifdef BEITSEG_WITH_DNNL
  // the ISA oneDNN dispatches to (ONEDNN_MAX_CPU_ISA caps it): VNNI decides int8's activation range
  out.Set("onednnIsa", OnednnIsaName(dnnl_get_effective_cpu_isa()));
#else
  out.Set("onednnIsa", env.Null());
#endif
  // the kernel set OpenBLAS chose for this CPU (its DYNAMIC_ARCH builds pick one at load time),
  // where the BLAS libtorch uses is OpenBLAS
  using CoreName = char* (*)();
  auto core_name = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  out.Set("blasCore", core_name ? Napi::Value(Napi::String::New(env, core_name())) : env.Null());
  out.Set("parallel", at::get_parallel_info());
  // the vector ISA of ATen's CPU kernels (ATEN_CPU_CAPABILITY), as torch.__config__.show() says it
  const std::string config = at::show_config();
  const std::string key = "CPU capability usage: ";
  const size_t at_key = config.find(key);
  out.Set("cpuCapability", at_key == std::string::npos
                               ? std::string("unknown")
                               : config.substr(at_key + key.size(), config.find('\n', at_key) - at_key - key.size()));
  return out;
}

void RegisterRuntime(Napi::Env env, Napi::Object exports) {
  BEITSEG_EXPORT(exports, setNumThreads);
  BEITSEG_EXPORT(exports, getNumThreads);
  BEITSEG_EXPORT(exports, manualSeed);
  BEITSEG_EXPORT(exports, getRngState);
  BEITSEG_EXPORT(exports, setRngState);
  BEITSEG_EXPORT(exports, setGradEnabled);
  BEITSEG_EXPORT(exports, isGradEnabled);
  BEITSEG_EXPORT(exports, setRequiresGrad);
  BEITSEG_EXPORT(exports, requiresGrad);
  BEITSEG_EXPORT(exports, backward);
  BEITSEG_EXPORT(exports, grad);
  BEITSEG_EXPORT(exports, setGrad);
  BEITSEG_EXPORT(exports, setAutocast);
  BEITSEG_EXPORT(exports, cudaIsAvailable);
  BEITSEG_EXPORT(exports, cudaDeviceCount);
  BEITSEG_EXPORT(exports, cudaSynchronize);
  BEITSEG_EXPORT(exports, cudaMemory);
  BEITSEG_EXPORT(exports, cudaFlags);
  BEITSEG_EXPORT(exports, buildInfo);
}

}  // namespace beitseg
